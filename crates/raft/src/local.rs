//! An in-process [`Transport`]: groups of several "nodes" in one process talk through it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock, Weak};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;

use crate::error::{Error, TransportError};
use crate::network::{RaftNet, RpcKind, Transport};

/// Connects the [`RaftNet`]s of nodes living in one process. Messages still go through the wire
/// encoding, as they would over gRPC.
#[derive(Default)]
pub struct LocalRouter {
    nodes: RwLock<HashMap<u64, Arc<RaftNet>>>,
    isolated: RwLock<HashSet<u64>>,
}

impl LocalRouter {
    pub fn new() -> Arc<LocalRouter> {
        Arc::new(LocalRouter::default())
    }

    /// The endpoint of node `node_id`, created on first use.
    pub fn node(self: &Arc<Self>, node_id: u64) -> Arc<RaftNet> {
        let mut nodes = self.nodes.write().unwrap_or_else(PoisonError::into_inner);
        let net = nodes.entry(node_id).or_insert_with(|| {
            RaftNet::new(Arc::new(LocalTransport { router: Arc::downgrade(self), from: node_id }))
        });
        Arc::clone(net)
    }

    /// Cuts node `node_id` off from every other node (`true`) or reconnects it (`false`).
    pub fn isolate(&self, node_id: u64, isolated: bool) {
        let mut set = self.isolated.write().unwrap_or_else(PoisonError::into_inner);
        if isolated {
            set.insert(node_id);
        } else {
            set.remove(&node_id);
        }
    }

    fn route(&self, from: u64, target: u64) -> Result<Arc<RaftNet>, TransportError> {
        let isolated = self.isolated.read().unwrap_or_else(PoisonError::into_inner);
        if isolated.contains(&from) || isolated.contains(&target) {
            return Err(TransportError::Unreachable(format!(
                "node {from} and node {target} are cut off"
            )));
        }
        self.nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&target)
            .cloned()
            .ok_or_else(|| TransportError::Unreachable(format!("no node {target}")))
    }
}

struct LocalTransport {
    router: Weak<LocalRouter>,
    from: u64,
}

impl Transport for LocalTransport {
    fn call(
        &self,
        target: u64,
        group: u32,
        kind: RpcKind,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Bytes, TransportError>> {
        let net = match self.router.upgrade() {
            Some(router) => router.route(self.from, target),
            None => Err(TransportError::Unreachable("the router is gone".to_string())),
        };
        async move {
            // The receiver handles the message on its own task, as a server would.
            let handled =
                tokio::spawn(
                    async move { net?.handle(group, kind, body).await.map_err(to_transport) },
                );
            handled.await.map_err(|e| TransportError::Network(format!("handler failed: {e}")))?
        }
        .boxed()
    }
}

fn to_transport(e: Error) -> TransportError {
    match e {
        Error::Unavailable(msg) => TransportError::Unreachable(msg),
        e => TransportError::Network(e.to_string()),
    }
}
