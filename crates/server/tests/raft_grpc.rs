//! Three replicas of one Raft group, each a node with its own gRPC listener on loopback,
//! talking only through `GrpcTransport` and `RaftService`: entries replicate, a follower that
//! was cut off catches up through a snapshot sent over gRPC, and a lost leader is replaced.
#![allow(clippy::unwrap_used)]

// The Raft crate's test helpers: the `Recorder` applier and `payload`.
#[path = "../../raft/tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{payload, Recorder};
use strata_raft::{Applier, Group, LogDb, RaftNet, RaftSettings};
use strata_server::grpc::{GrpcTransport, RaftService};
use tempfile::TempDir;
use tokio::sync::oneshot;

const GROUP: u32 = 3;
const WAIT: Duration = Duration::from_secs(20);

/// One node: its log folder, gRPC listener and replica of the group.
struct Node {
    id: u64,
    addr: SocketAddr,
    dir: TempDir,
    applier: Arc<Recorder>,
    group: Option<Group>,
    stop_server: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Node {
    fn group(&self) -> &Group {
        self.group.as_ref().unwrap()
    }

    /// Starts (or restarts) the listener and the replica, over the node's existing log.
    async fn start(&mut self, peers: &[(u64, SocketAddr)], settings: &RaftSettings) {
        let transport =
            GrpcTransport::new(peers.iter().map(|(id, a)| (*id, a.to_string()))).unwrap();
        let net = RaftNet::new(transport);
        self.serve(&net).await;
        let db = LogDb::open(self.dir.path()).unwrap();
        let applier: Arc<dyn Applier> = Arc::<Recorder>::clone(&self.applier);
        self.group = Some(Group::start(db, GROUP, self.id, applier, net, settings).await.unwrap());
    }

    async fn serve(&mut self, net: &Arc<RaftNet>) {
        // The port was this node's before; it may take a moment to be free again.
        let start = Instant::now();
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if start.elapsed() < WAIT => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot bind {}: {e}", self.addr),
            }
        };
        let (tx, rx) = oneshot::channel();
        let svc = RaftService::server(Arc::clone(net));
        self.server = Some(tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async {
                        let _ = rx.await;
                    },
                )
                .await
                .unwrap();
        }));
        self.stop_server = Some(tx);
    }

    /// Stops the listener: the node can neither be reached nor (its replica being stopped too
    /// where asked) take part.
    async fn stop_listener(&mut self) {
        if let Some(tx) = self.stop_server.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            // Open streams keep a graceful shutdown waiting; the port is what matters.
            h.abort();
            let _ = h.await;
        }
    }

    async fn stop(&mut self) {
        self.stop_listener().await;
        if let Some(g) = self.group.take() {
            g.shutdown().await.unwrap();
        }
    }
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_replicate_catch_up_and_fail_over_over_grpc() {
    let settings = RaftSettings {
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        snapshot_every_logs: Some(10),
        logs_to_keep_after_snapshot: 0,
        propose_timeout_ms: 10_000,
        ..RaftSettings::default()
    };
    // Reserve three loopback ports, then give them back for the nodes to bind.
    let mut peers = Vec::new();
    for id in 1..=3u64 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        peers.push((id, l.local_addr().unwrap()));
    }
    let mut nodes: Vec<Node> = peers
        .iter()
        .map(|&(id, addr)| Node {
            id,
            addr,
            dir: tempfile::tempdir().unwrap(),
            applier: Arc::new(Recorder::default()),
            group: None,
            stop_server: None,
            server: None,
        })
        .collect();
    for n in &mut nodes {
        n.start(&peers, &settings).await;
    }
    nodes[0].group().initialize([1, 2, 3].into()).await.unwrap();
    let leader = nodes[0].group().wait_for_leader(WAIT).await.unwrap();
    eventually("every node knows the leader", || {
        nodes.iter().all(|n| n.group().metrics().leader == Some(leader))
    })
    .await;
    let li = (leader - 1) as usize;

    // Entries proposed on the leader reach every node, in order.
    for i in 0..5 {
        nodes[li].group().propose(payload(i)).await.unwrap();
    }
    eventually("all nodes apply the first entries", || {
        nodes.iter().all(|n| n.applier.payloads().len() == 5)
    })
    .await;
    for n in &nodes {
        assert_eq!(n.applier.payloads(), (0..5).map(payload).collect::<Vec<_>>());
    }

    // A follower stops (listener and replica); the other two still commit, and the leader
    // snapshots and drops its log behind it.
    let fi = (li + 1) % 3;
    nodes[fi].stop().await;
    for i in 5..40 {
        nodes[li].group().propose(payload(i)).await.unwrap();
    }
    eventually("the leader purged the entries the follower lacks", || {
        nodes[li].group().metrics().purged >= Some(20)
    })
    .await;
    // Back from its own log, it can only catch up through a snapshot sent over gRPC.
    nodes[fi].start(&peers, &settings).await;
    eventually("the follower catches up", || nodes[fi].applier.payloads().len() == 40).await;
    assert!(*nodes[fi].applier.restores.lock().unwrap() >= 1, "caught up through a snapshot");
    assert_eq!(nodes[fi].applier.payloads(), (0..40).map(payload).collect::<Vec<_>>());

    // The leader goes away: the others elect a new one that takes writes.
    nodes[li].stop().await;
    let survivor = (li + 2) % 3;
    eventually("a new leader", || {
        nodes[survivor].group().metrics().leader.is_some_and(|l| l != leader)
    })
    .await;
    let new_leader = nodes[survivor].group().metrics().leader.unwrap();
    nodes[(new_leader - 1) as usize].group().propose(payload(40)).await.unwrap();
    eventually("the survivors apply the new entry", || {
        nodes.iter().filter(|n| n.group.is_some()).all(|n| n.applier.payloads().len() == 41)
    })
    .await;

    // The old leader restarts from its log and hears of the entry it missed.
    nodes[li].start(&peers, &settings).await;
    eventually("the old leader catches up", || nodes[li].applier.payloads().len() == 41).await;
    assert_eq!(nodes[li].applier.payloads()[40], payload(40));

    for n in &mut nodes {
        n.stop().await;
    }
}

#[tokio::test]
async fn unknown_peers_and_bad_addresses_are_errors_not_panics() {
    assert!(GrpcTransport::new([(1, "not a uri \u{0}".to_string())]).is_err());
    // A node nobody gave an address for, and one with nothing listening: unreachable, so
    // Raft backs off rather than retrying at once.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let t = GrpcTransport::new([(2, closed.to_string())]).unwrap();
    use strata_raft::{RpcKind, Transport, TransportError};
    let e = t.call(9, 0, RpcKind::Vote, Bytes::new()).await.unwrap_err();
    assert!(matches!(e, TransportError::Unreachable(_)), "{e}");
    let e = t.call(2, 0, RpcKind::Vote, Bytes::new()).await.unwrap_err();
    assert!(matches!(e, TransportError::Unreachable(_)), "{e}");
}
