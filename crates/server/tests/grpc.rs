//! The gRPC listener of `strata all` serves the Raft transport service for this node's groups.
use strata_proto::raft_v1::raft_client::RaftClient;
use strata_proto::raft_v1::RaftCall;
use strata_server::config::RawConfig;
use tonic::Code;

#[tokio::test]
async fn grpc_listener_routes_raft_messages_to_groups() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = RawConfig {
        data_dir: dir.path().to_path_buf(),
        http_addr: "127.0.0.1:0".into(),
        grpc_addr: "127.0.0.1:0".into(),
        ..RawConfig::default()
    };
    raw.ingester.shards = 2;
    let running = strata_server::start_all(raw.validate().unwrap()).await.unwrap();
    let url = format!("http://{}", running.grpc_addr);
    let mut client = RaftClient::connect(url).await.unwrap();

    let call = |group, kind, body: &'static [u8]| RaftCall {
        group,
        kind,
        body: bytes::Bytes::from_static(body),
    };
    // A group this node does not run.
    let e = client.call(call(99, 2, b"{}")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    // A running group, but a body that is not a vote request: refused, not a crash.
    let e = client.call(call(0, 2, b"not json")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    // An unknown message kind.
    let e = client.call(call(0, 77, b"")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    // The node still takes writes afterwards.
    assert!(running.ingester.groups().iter().all(|g| g.metrics().leader.is_some()));
    running.shutdown().await.unwrap();
}
