//! The gRPC listener (`--grpc-addr`) carries Raft messages between nodes: [`RaftService`]
//! takes them in (into [`RaftNet::handle`]), [`GrpcTransport`] sends them out. The ingester
//! `Select` service for queriers joins it later.
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_proto::raft_v1::raft_client::RaftClient;
use strata_proto::raft_v1::raft_server::{Raft, RaftServer};
use strata_proto::raft_v1::{RaftCall, RaftReply};
use strata_raft::{RaftNet, RpcKind, Transport, TransportError};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

/// The largest Raft message either way (a batch of entries, a snapshot chunk).
const MAX_MESSAGE: usize = 64 << 20;

/// Serves `strata.raft.v1.Raft/Call` for this node's groups.
pub struct RaftService {
    net: Arc<RaftNet>,
}

impl RaftService {
    pub fn server(net: Arc<RaftNet>) -> RaftServer<RaftService> {
        RaftServer::new(RaftService { net })
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }
}

#[tonic::async_trait]
impl Raft for RaftService {
    async fn call(&self, req: Request<RaftCall>) -> Result<Response<RaftReply>, Status> {
        let m = req.into_inner();
        let kind = u8::try_from(m.kind).ok().and_then(RpcKind::from_u8).ok_or_else(|| {
            Status::invalid_argument(format!("unknown raft message kind {}", m.kind))
        })?;
        match self.net.handle(m.group, kind, m.body).await {
            Ok(body) => Ok(Response::new(RaftReply { body })),
            Err(strata_raft::Error::Invalid(e)) => Err(Status::invalid_argument(e)),
            Err(strata_raft::Error::Unavailable(e)) => Err(Status::unavailable(e)),
            Err(e) => Err(Status::internal(e.to_string())),
        }
    }
}

/// The outgoing half of the Raft transport: carries a group's messages to the same group on
/// another node, as `strata.raft.v1.Raft/Call` on that node's gRPC listener (served there by
/// [`RaftService`]). One lazily connected channel per peer, shared by all groups; a peer that
/// is down is reported as unreachable, so Raft backs off before trying it again.
pub struct GrpcTransport {
    peers: HashMap<u64, Channel>,
}

/// How long connecting to a peer may take before the call counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl GrpcTransport {
    /// A transport to `peers` (node id → `host:port` of its gRPC listener, or a URL). Needs a
    /// Tokio runtime; connects on first use, not here. An address that is not one is an error
    /// naming the node.
    pub fn new(
        peers: impl IntoIterator<Item = (u64, String)>,
    ) -> Result<Arc<GrpcTransport>, String> {
        let mut out = HashMap::new();
        for (node, addr) in peers {
            let url = if addr.contains("://") { addr.clone() } else { format!("http://{addr}") };
            let endpoint = Endpoint::from_shared(url)
                .map_err(|e| format!("raft peer {node}: invalid address {addr:?}: {e}"))?
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true);
            out.insert(node, endpoint.connect_lazy());
        }
        Ok(Arc::new(GrpcTransport { peers: out }))
    }
}

impl Transport for GrpcTransport {
    fn call(
        &self,
        target: u64,
        group: u32,
        kind: RpcKind,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, TransportError>> + Send + 'static>> {
        let channel = self.peers.get(&target).cloned();
        Box::pin(async move {
            let Some(channel) = channel else {
                return Err(TransportError::Unreachable(format!("no address for node {target}")));
            };
            let mut client = RaftClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE);
            let call = RaftCall { group, kind: u32::from(kind.as_u8()), body };
            match client.call(call).await {
                Ok(reply) => Ok(reply.into_inner().body),
                // Refused connections and groups that do not run there.
                Err(s) if s.code() == Code::Unavailable => {
                    Err(TransportError::Unreachable(format!("node {target}: {}", s.message())))
                }
                Err(s) => Err(TransportError::Network(format!("node {target}: {s}"))),
            }
        })
    }
}
