//! The gRPC listener (`--grpc-addr`): today it carries Raft messages between nodes into
//! [`RaftNet::handle`]; the ingester `Select` service for queriers joins it later.
use std::sync::Arc;

use strata_proto::raft_v1::raft_server::{Raft, RaftServer};
use strata_proto::raft_v1::{RaftCall, RaftReply};
use strata_raft::{RaftNet, RpcKind};
use tonic::{Request, Response, Status};

/// Serves `strata.raft.v1.Raft/Call` for this node's groups.
pub struct RaftService {
    net: Arc<RaftNet>,
}

impl RaftService {
    pub fn server(net: Arc<RaftNet>) -> RaftServer<RaftService> {
        RaftServer::new(RaftService { net })
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
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
