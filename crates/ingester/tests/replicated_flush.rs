//! One shard with three replicas (in one process, through the in-process router): the leader
//! flushes a closed range into a block, and the `Flushed` entry makes every replica drop that
//! range from its head; a follower restarted from its log comes back to the same state.
#![allow(clippy::unwrap_used)]

// The Raft crate's test helpers: `fast_settings`, `eventually`.
#[path = "../../raft/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{eventually, fast_settings};
use object_store::memory::InMemory;
use object_store::ObjectStore;
use prometheus_client::registry::Registry;
use prost::Message;
use strata_block::{list_blocks, read_meta, Catalog};
use strata_head::HeadConfig;
use strata_ingester::flush::{FlushConfig, FlushMetrics, Flusher};
use strata_ingester::route::DecodeLimits;
use strata_ingester::{Ingester, IngesterConfig, IngesterMetrics, ShardState};
use strata_model::{PushRequest, PushSink, TenantId, WireVersion};
use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use strata_raft::{Applier, Group, LocalRouter, LogDb};
use tempfile::TempDir;

const RANGE: i64 = 10_000;
const WAIT: Duration = Duration::from_secs(10);

fn head_config() -> HeadConfig {
    // Chunks never straddle a block range, so a flush drops exactly the flushed range.
    HeadConfig { chunk_range_ms: RANGE, ..HeadConfig::default() }
}

async fn start(router: &Arc<LocalRouter>, node: u64, dir: &TempDir) -> (Arc<ShardState>, Group) {
    let state = Arc::new(ShardState::new(head_config()));
    let applier: Arc<dyn Applier> = Arc::<ShardState>::clone(&state);
    let db = LogDb::open(dir.path()).unwrap();
    let group =
        Group::start(db, 0, node, applier, router.node(node), &fast_settings()).await.unwrap();
    (state, group)
}

/// `series` series with a sample every second from `t0` for `steps` seconds.
fn request(t0: i64, series: usize, steps: i64) -> Bytes {
    let label = |name: &str, value: String| Label {
        name: Bytes::from(name.to_string()),
        value: Bytes::from(value),
    };
    let timeseries = (0..series)
        .map(|i| TimeSeries {
            labels: vec![label("__name__", "replicated".into()), label("s", i.to_string())],
            samples: (0..steps)
                .map(|k| Sample { value: k as f64, timestamp: t0 + k * 1000 })
                .collect(),
            ..Default::default()
        })
        .collect();
    let raw = WriteRequest { timeseries, metadata: vec![] }.encode_to_vec();
    Bytes::from(snap::raw::Encoder::new().compress_vec(&raw).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_drops_the_range_its_leader_flushed() {
    let router = LocalRouter::new();
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(start(&router, i as u64 + 1, dir).await);
    }
    nodes[0].1.initialize([1, 2, 3].into()).await.unwrap();
    let leader = nodes[0].1.wait_for_leader(WAIT).await.unwrap();
    eventually("every replica knows the leader", || {
        nodes.iter().all(|(_, g)| g.metrics().leader == Some(leader))
    })
    .await;

    // The leader's node takes pushes and flushes; its followers only apply.
    let li = (leader - 1) as usize;
    let (leader_state, leader_group) = nodes.remove(li);
    let mut registry = Registry::default();
    let cfg = IngesterConfig {
        shards: 1,
        head: head_config(),
        limits: DecodeLimits { max_request_bytes: 1 << 20, max_decompressed_bytes: 8 << 20 },
    };
    let metrics = IngesterMetrics::new(&mut registry);
    let ingester =
        Arc::new(Ingester::new(cfg, vec![Arc::clone(&leader_state)], vec![leader_group], metrics));

    // 60 s of samples ending 10 minutes ago: every range but the last is closed.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let t0 = (now.as_millis() as i64 - 600_000).div_euclid(RANGE) * RANGE;
    let (series, steps) = (20usize, 60i64);
    let push = PushRequest {
        tenant: TenantId("t".into()),
        version: WireVersion::V1,
        body: request(t0, series, steps),
    };
    let out = ingester.push(push).await.unwrap();
    assert_eq!(out.samples_written, (series as u64) * steps as u64);
    eventually("followers apply the push", || {
        nodes.iter().all(|(s, _)| s.head().stats().samples == (series * steps as usize) as u64)
    })
    .await;

    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let catalog = Arc::new(Catalog::new(Arc::clone(&store)));
    let flusher = Flusher::new(
        Arc::clone(&ingester),
        Arc::clone(&store),
        catalog,
        FlushConfig::new(RANGE),
        FlushMetrics::new(&mut registry),
    );
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut blocks = 0;
    while let n @ 1.. = flusher.flush_once(&stop).await.unwrap() {
        blocks += n;
    }
    assert!(blocks >= 1);
    let flushed = leader_state.flushed_before();
    assert!(flushed > t0, "the leader flushed");

    // Every sample before the boundary is in the bucket, once.
    let listing = list_blocks(&store, "t").await.unwrap();
    let mut in_blocks = 0;
    for id in &listing.complete {
        let meta = read_meta(&store, "t", &id.to_string()).await.unwrap().unwrap();
        assert!(meta.max_time <= flushed);
        in_blocks += meta.stats.num_samples;
    }
    let before = (flushed - t0) / 1000;
    assert_eq!(in_blocks, series as u64 * before as u64);

    // Every replica dropped that range, and kept the rest.
    let left = (series as u64) * (steps - before) as u64;
    for s in nodes.iter().map(|n| &n.0).chain([&leader_state]) {
        eventually("replicas apply the flush", || s.flushed_before() == flushed).await;
        assert_eq!(s.head().stats().samples, left);
        assert_eq!(s.head().min_max_time("t").map(|m| m.0), Some(flushed));
    }

    // A follower restarted from its log replays the flush the same way.
    let (state, group) = nodes.remove(0);
    let node = group.node_id();
    group.shutdown().await.unwrap();
    drop((state, group));
    let dir = &dirs[(node - 1) as usize];
    let (state, group) = start(&router, node, dir).await;
    eventually("the restarted follower catches up", || state.flushed_before() == flushed).await;
    assert_eq!(state.head().stats().samples, left);

    group.shutdown().await.unwrap();
    for (_, g) in nodes {
        g.shutdown().await.unwrap();
    }
    for g in ingester.groups() {
        g.shutdown().await.unwrap();
    }
}
