//! Durability: committed entries come back after a restart, from the log and from snapshots.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, fast_settings, payload, Recorder};
use strata_raft::{Group, LocalRouter, LogDb, RaftSettings};

const WAIT: Duration = Duration::from_secs(10);

async fn start(dir: &std::path::Path, applier: Arc<Recorder>, settings: &RaftSettings) -> Group {
    let db = LogDb::open(dir).unwrap();
    let net = LocalRouter::new().node(1);
    let group = Group::start(db, 3, 1, applier, net, settings).await.unwrap();
    group.initialize_single().await.unwrap();
    group.wait_for_leader(WAIT).await.unwrap();
    group
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_entries_are_reapplied_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let expected: Vec<_> = (0..40).map(payload).collect();
    {
        let applier = Recorder::new();
        let group = start(dir.path(), Arc::<Recorder>::clone(&applier), &fast_settings()).await;
        for p in &expected {
            let report = group.propose(p.clone()).await.unwrap();
            assert_eq!(report.appended, p.len() as u64);
        }
        assert_eq!(applier.payloads(), expected);
        group.shutdown().await.unwrap();
    }

    let applier = Recorder::new();
    let db = LogDb::open(dir.path()).unwrap();
    let group = Group::start(
        db,
        3,
        1,
        Arc::<Recorder>::clone(&applier),
        LocalRouter::new().node(1),
        &fast_settings(),
    )
    .await
    .unwrap();
    // Re-applied while starting, before anything new was proposed.
    assert_eq!(applier.payloads(), expected);
    assert_eq!(*applier.restores.lock().unwrap(), 0);

    group.initialize_single().await.unwrap(); // a no-op now
    group.wait_for_leader(WAIT).await.unwrap();
    group.propose(payload(40)).await.unwrap();
    assert_eq!(applier.len(), 41);
    assert_eq!(group.metrics().voters, [1].into());
    group.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_restored_from_snapshot_and_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let settings = RaftSettings {
        snapshot_every_logs: Some(10),
        logs_to_keep_after_snapshot: 0,
        ..fast_settings()
    };
    let expected: Vec<_> = (0..35).map(payload).collect();
    let purged;
    {
        let applier = Recorder::new();
        let group = start(dir.path(), Arc::<Recorder>::clone(&applier), &settings).await;
        for p in &expected {
            group.propose(p.clone()).await.unwrap();
        }
        eventually("a snapshot and a purge", || {
            let m = group.metrics();
            m.snapshot >= Some(20) && m.purged >= Some(20)
        })
        .await;
        purged = group.metrics().purged.unwrap();
        group.shutdown().await.unwrap();
    }

    let applier = Recorder::new();
    let db = LogDb::open(dir.path()).unwrap();
    let group = Group::start(
        db,
        3,
        1,
        Arc::<Recorder>::clone(&applier),
        LocalRouter::new().node(1),
        &settings,
    )
    .await
    .unwrap();
    assert_eq!(*applier.restores.lock().unwrap(), 1, "restored from the snapshot");
    assert_eq!(applier.payloads(), expected, "snapshot + re-applied tail");
    let reapplied = *applier.apply_calls.lock().unwrap();
    assert!(reapplied < 35 - 15, "only the tail after the snapshot is re-applied: {reapplied}");
    eventually("the purge survives", || group.metrics().purged >= Some(purged)).await;

    group.wait_for_leader(WAIT).await.unwrap();
    group.propose(payload(35)).await.unwrap();
    assert_eq!(applier.len(), 36);
    group.shutdown().await.unwrap();
}

const CRASH_DIR: &str = "STRATA_RAFT_CRASH_DIR";

/// Run by `acknowledged_writes_survive_a_crash` in a child process: proposes, reports what was
/// acknowledged, and dies without any cleanup.
#[test]
#[ignore = "child process of acknowledged_writes_survive_a_crash"]
fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let group = start(dir.as_ref(), Recorder::new(), &fast_settings()).await;
        for i in 0..25 {
            group.propose(payload(i)).await.unwrap();
            println!("\nacked {i}");
        }
        std::process::abort();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CRASH_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the child aborts");
    let acked = stdout.lines().filter(|l| l.starts_with("acked ")).count();
    assert_eq!(acked, 25, "child output: {stdout}");

    let applier = Recorder::new();
    let db = LogDb::open(dir.path()).unwrap();
    let group = Group::start(
        db,
        3,
        1,
        Arc::<Recorder>::clone(&applier),
        LocalRouter::new().node(1),
        &fast_settings(),
    )
    .await
    .unwrap();
    group.wait_for_leader(WAIT).await.unwrap();
    // Entries committed but not yet known committed on disk are applied once the leader commits.
    eventually("every acknowledged write applied", || applier.len() >= 25).await;
    assert_eq!(applier.payloads(), (0..25).map(payload).collect::<Vec<_>>());
    group.shutdown().await.unwrap();
}
