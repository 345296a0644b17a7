//! The seam between groups and the network: [`Transport`] carries encoded messages out,
//! [`RaftNet::handle`] takes them in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{EmptyNode, Raft};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, TransportError};
use crate::{wire, TypeConfig};

/// The kinds of message Raft peers exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RpcKind {
    AppendEntries = 1,
    Vote = 2,
    InstallSnapshot = 3,
}

impl RpcKind {
    /// The kind's number on the wire.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The kind numbered `n` on the wire.
    pub fn from_u8(n: u8) -> Option<RpcKind> {
        match n {
            1 => Some(RpcKind::AppendEntries),
            2 => Some(RpcKind::Vote),
            3 => Some(RpcKind::InstallSnapshot),
            _ => None,
        }
    }
}

/// Carries one encoded Raft message of `group` to node `target` and brings back the encoded reply
/// that [`RaftNet::handle`] produced there. Bodies are opaque to the transport.
pub trait Transport: Send + Sync + 'static {
    fn call(
        &self,
        target: u64,
        group: u32,
        kind: RpcKind,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Bytes, TransportError>>;
}

/// This node's Raft endpoint: the transport its groups send through, and the groups that
/// incoming messages are delivered to. One per node, shared by all its groups.
pub struct RaftNet {
    transport: Arc<dyn Transport>,
    /// Running groups, each with the token of its registration.
    groups: RwLock<HashMap<u32, (u64, Raft<TypeConfig>)>>,
    next_token: AtomicU64,
}

impl RaftNet {
    pub fn new(transport: Arc<dyn Transport>) -> Arc<RaftNet> {
        Arc::new(RaftNet {
            transport,
            groups: RwLock::new(HashMap::new()),
            next_token: AtomicU64::new(1),
        })
    }

    /// Delivers a message that [`Transport::call`] sent from a peer to a group on this node and
    /// returns the encoded reply. [`Error::Unavailable`] when the group does not run here (the
    /// transport should report that as [`TransportError::Unreachable`]); [`Error::Invalid`] for
    /// a body that does not decode.
    pub async fn handle(&self, group: u32, kind: RpcKind, body: Bytes) -> Result<Bytes> {
        let raft = self
            .groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&group)
            .map(|(_, raft)| raft.clone())
            .ok_or_else(|| {
                Error::Unavailable(format!("group {group} does not run on this node"))
            })?;
        let invalid =
            |e: crate::codec::CodecError| Error::Invalid(format!("{kind:?} message: {e}"));
        let reply = match kind {
            RpcKind::AppendEntries => {
                let req = wire::decode_append(body).map_err(invalid)?;
                wire::encode_json(&raft.append_entries(req).await)
            }
            RpcKind::Vote => {
                let req: VoteRequest<u64> = wire::decode_json(&body).map_err(invalid)?;
                wire::encode_json(&raft.vote(req).await)
            }
            RpcKind::InstallSnapshot => {
                let req = wire::decode_snapshot(&body).map_err(invalid)?;
                wire::encode_json(&raft.install_snapshot(req).await)
            }
        };
        reply.map_err(|e| Error::Fatal(format!("cannot encode a {kind:?} reply: {e}")))
    }

    /// Routes incoming messages for `group` to `raft`; returns the token to unregister with.
    pub(crate) fn register(&self, group: u32, raft: Raft<TypeConfig>) -> Result<u64> {
        let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
        if groups.contains_key(&group) {
            return Err(Error::Invalid(format!("group {group} already runs on this node")));
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        groups.insert(group, (token, raft));
        Ok(token)
    }

    /// Stops routing to `group` if it is still the registration `token` (a restarted replica
    /// of the group may have taken its place).
    pub(crate) fn unregister(&self, group: u32, token: u64) {
        let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
        if groups.get(&group).is_some_and(|(t, _)| *t == token) {
            groups.remove(&group);
        }
    }

    pub(crate) fn peers(&self, group: u32) -> Peers {
        Peers { transport: Arc::clone(&self.transport), group }
    }
}

/// openraft's network factory for one group.
pub(crate) struct Peers {
    transport: Arc<dyn Transport>,
    group: u32,
}

impl RaftNetworkFactory<TypeConfig> for Peers {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, _node: &EmptyNode) -> Peer {
        Peer { transport: Arc::clone(&self.transport), group: self.group, target }
    }
}

/// One group's connection to the same group on node `target`.
pub(crate) struct Peer {
    transport: Arc<dyn Transport>,
    group: u32,
    target: u64,
}

type RpcResult<T, E = openraft::error::Infallible> =
    std::result::Result<T, RPCError<u64, EmptyNode, RaftError<u64, E>>>;

impl Peer {
    async fn call<T, E>(&self, kind: RpcKind, body: Bytes, ttl: Duration) -> RpcResult<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned + 'static,
    {
        let call = self.transport.call(self.target, self.group, kind, body);
        let reply = match tokio::time::timeout(ttl, call).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e @ TransportError::Unreachable(_))) => {
                return Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Ok(Err(e @ TransportError::Network(_))) => {
                return Err(RPCError::Network(NetworkError::new(&e)))
            }
            Err(elapsed) => return Err(RPCError::Network(NetworkError::new(&elapsed))),
        };
        let res: std::result::Result<T, RaftError<u64, E>> =
            wire::decode_json(&reply).map_err(|e| NetworkError::new(&e))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        let body = wire::encode_append(&rpc).map_err(|e| NetworkError::new(&e))?;
        self.call(RpcKind::AppendEntries, body, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let body = wire::encode_snapshot(&rpc).map_err(|e| NetworkError::new(&e))?;
        self.call(RpcKind::InstallSnapshot, body, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        let body = wire::encode_json(&rpc).map_err(|e| NetworkError::new(&e))?;
        self.call(RpcKind::Vote, body, option.hard_ttl()).await
    }
}
