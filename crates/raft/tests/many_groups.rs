//! Many groups sharing one `LogDb`, and a throughput measurement.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{fast_settings, payload, Recorder};
use futures::future::join_all;
use strata_raft::{Group, LocalRouter, LogDb, RaftSettings};

const WAIT: Duration = Duration::from_secs(10);

async fn start_groups(
    db: &Arc<LogDb>,
    n: u32,
    settings: &RaftSettings,
) -> Vec<(Arc<Group>, Arc<Recorder>)> {
    let net = LocalRouter::new().node(1);
    let mut groups = Vec::new();
    for id in 0..n {
        let applier = Recorder::new();
        let g = Group::start(
            Arc::clone(db),
            id,
            1,
            Arc::<Recorder>::clone(&applier),
            Arc::clone(&net),
            settings,
        )
        .await
        .unwrap();
        g.initialize_single().await.unwrap();
        groups.push((Arc::new(g), applier));
    }
    for (g, _) in &groups {
        g.wait_for_leader(WAIT).await.unwrap();
    }
    groups
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_groups_on_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = LogDb::open(dir.path()).unwrap();
    let groups = start_groups(&db, 16, &fast_settings()).await;

    // Every group gets 25 proposals, all groups at once, each group's in order.
    let tasks = groups.iter().map(|(g, _)| {
        let g = Arc::clone(g);
        tokio::spawn(async move {
            for i in 0..25 {
                let p = Bytes::from(format!("g{}-{}", g.group_id(), payload(i).len() + i));
                g.propose(p).await.unwrap();
            }
        })
    });
    for t in join_all(tasks).await {
        t.unwrap();
    }
    for (g, applier) in &groups {
        let want: Vec<_> = (0..25)
            .map(|i| Bytes::from(format!("g{}-{}", g.group_id(), payload(i).len() + i)))
            .collect();
        assert_eq!(applier.payloads(), want, "group {}", g.group_id());
    }

    // After a restart each group gets back exactly its own entries.
    for (g, _) in &groups {
        g.shutdown().await.unwrap();
    }
    drop(groups);
    drop(db);
    let db = LogDb::open(dir.path()).unwrap();
    let groups = start_groups(&db, 16, &fast_settings()).await;
    for (g, applier) in &groups {
        assert_eq!(applier.len(), 25, "group {}", g.group_id());
        assert!(applier.payloads()[0].starts_with(format!("g{}-", g.group_id()).as_bytes()));
        g.shutdown().await.unwrap();
    }
}

/// Proposals per second through 16 single-replica groups on one database (fsync included).
/// `cargo test -p strata-raft --release --test many_groups -- --ignored --nocapture`
#[test]
#[ignore = "measurement; run by hand"]
fn throughput_16_groups() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for (size, writers) in [(100usize, 1usize), (100, 16), (100_000, 1), (100_000, 8)] {
            let dir = tempfile::tempdir().unwrap();
            let db = LogDb::open(dir.path()).unwrap();
            let settings = RaftSettings { snapshot_every_logs: None, ..RaftSettings::default() };
            let groups = start_groups(&db, 16, &settings).await;
            let body = Bytes::from(vec![7u8; size]);
            let deadline = Instant::now() + Duration::from_secs(3);
            let start = Instant::now();
            let tasks = groups.iter().flat_map(|(g, _)| (0..writers).map(move |_| Arc::clone(g))).map(|g| {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        g.propose(body.clone()).await.unwrap();
                        n += 1;
                    }
                    n
                })
            });
            let total: u64 = join_all(tasks).await.into_iter().map(|r| r.unwrap()).sum();
            let secs = start.elapsed().as_secs_f64();
            println!(
                "16 groups, {writers} writers each, {size} B payloads: {:.0} proposals/s, {:.1} MB/s",
                total as f64 / secs,
                total as f64 * size as f64 / secs / 1e6
            );
            for (g, _) in &groups {
                g.shutdown().await.unwrap();
            }
        }
    });
}
