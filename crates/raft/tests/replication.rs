//! Three replicas of one group in one process, talking through the `LocalRouter`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, fast_settings, payload, Recorder};
use strata_raft::{Error, Group, LocalRouter, LogDb, RaftSettings};
use tempfile::TempDir;

const GROUP: u32 = 7;
const WAIT: Duration = Duration::from_secs(10);

struct Replica {
    dir: TempDir,
    applier: Arc<Recorder>,
    group: Option<Group>,
}

async fn start_replica(
    router: &Arc<LocalRouter>,
    node: u64,
    dir: TempDir,
    settings: &RaftSettings,
) -> Replica {
    let applier = Recorder::new();
    let db = LogDb::open(dir.path()).unwrap();
    let group = Group::start(
        db,
        GROUP,
        node,
        Arc::<Recorder>::clone(&applier),
        router.node(node),
        settings,
    )
    .await
    .unwrap();
    Replica { dir, applier, group: Some(group) }
}

async fn cluster(settings: &RaftSettings) -> (Arc<LocalRouter>, Vec<Replica>) {
    let router = LocalRouter::new();
    let mut replicas = Vec::new();
    for node in 1..=3 {
        replicas.push(start_replica(&router, node, tempfile::tempdir().unwrap(), settings).await);
    }
    replicas[0].group.as_ref().unwrap().initialize([1, 2, 3].into()).await.unwrap();
    (router, replicas)
}

fn group(r: &Replica) -> &Group {
    r.group.as_ref().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_converge_and_fail_over() {
    let (router, mut replicas) = cluster(&fast_settings()).await;
    let leader = group(&replicas[0]).wait_for_leader(WAIT).await.unwrap();
    let li = (leader - 1) as usize;
    eventually("every replica knows the leader", || {
        replicas.iter().all(|r| group(r).metrics().leader == Some(leader))
    })
    .await;

    let expected: Vec<_> = (0..20).map(payload).collect();
    for p in &expected {
        group(&replicas[li]).propose(p.clone()).await.unwrap();
    }
    eventually("all appliers converge", || replicas.iter().all(|r| r.applier.len() == 20)).await;
    for r in &replicas {
        assert_eq!(r.applier.payloads(), expected);
        assert_eq!(group(r).metrics().voters, [1, 2, 3].into());
    }

    // A follower refuses and names the leader.
    let fi = (li + 1) % 3;
    let err = group(&replicas[fi]).propose(payload(99)).await.unwrap_err();
    assert_eq!(err, Error::NotLeader { leader: Some(leader) });

    // The leader goes away: the other two elect a new one that accepts writes.
    let old = replicas[li].group.take().unwrap();
    old.shutdown().await.unwrap();
    drop(old);
    let survivor = &replicas[fi];
    eventually("a new leader", || group(survivor).metrics().leader.is_some_and(|l| l != leader))
        .await;
    let new_leader = group(survivor).metrics().leader.unwrap();
    group(&replicas[(new_leader - 1) as usize]).propose(payload(20)).await.unwrap();
    eventually("survivors apply the new write", || {
        replicas.iter().filter(|r| r.group.is_some()).all(|r| r.applier.len() == 21)
    })
    .await;

    // The old leader restarts from its log and catches up.
    let dir = std::mem::replace(&mut replicas[li].dir, tempfile::tempdir().unwrap());
    replicas[li] = start_replica(&router, leader, dir, &fast_settings()).await;
    eventually("the old leader catches up", || replicas[li].applier.len() == 21).await;
    assert_eq!(replicas[li].applier.payloads()[20], payload(20));

    for r in &replicas {
        group(r).shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_follower_receives_a_snapshot() {
    let settings = RaftSettings {
        snapshot_every_logs: Some(5),
        logs_to_keep_after_snapshot: 0,
        ..fast_settings()
    };
    let (router, replicas) = cluster(&settings).await;
    let leader = group(&replicas[0]).wait_for_leader(WAIT).await.unwrap();
    eventually("every replica knows the leader", || {
        replicas.iter().all(|r| group(r).metrics().leader == Some(leader))
    })
    .await;
    let li = (leader - 1) as usize;
    let lagging = (li + 1) % 3;
    router.isolate(lagging as u64 + 1, true);

    for i in 0..30 {
        group(&replicas[li]).propose(payload(i)).await.unwrap();
    }
    eventually("the leader purged its log", || group(&replicas[li]).metrics().purged >= Some(20))
        .await;

    router.isolate(lagging as u64 + 1, false);
    eventually("the lagging follower catches up", || replicas[lagging].applier.len() == 30).await;
    assert!(
        *replicas[lagging].applier.restores.lock().unwrap() >= 1,
        "caught up through a snapshot"
    );
    assert_eq!(replicas[lagging].applier.payloads(), (0..30).map(payload).collect::<Vec<_>>());

    for r in &replicas {
        group(r).shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_joins_and_becomes_a_voter() {
    let router = LocalRouter::new();
    let settings = fast_settings();
    let one = start_replica(&router, 1, tempfile::tempdir().unwrap(), &settings).await;
    group(&one).initialize_single().await.unwrap();
    group(&one).wait_for_leader(WAIT).await.unwrap();
    for i in 0..5 {
        group(&one).propose(payload(i)).await.unwrap();
    }

    let two = start_replica(&router, 2, tempfile::tempdir().unwrap(), &settings).await;
    group(&one).add_learner(2).await.unwrap();
    eventually("the learner catches up", || two.applier.len() == 5).await;
    assert_eq!(group(&one).metrics().voters, [1].into());

    group(&one).change_membership([1, 2].into()).await.unwrap();
    assert_eq!(group(&one).metrics().voters, [1, 2].into());
    group(&one).propose(payload(5)).await.unwrap();
    eventually("the new voter applies", || two.applier.len() == 6).await;
    assert_eq!(two.applier.payloads(), (0..6).map(payload).collect::<Vec<_>>());

    for r in [&one, &two] {
        group(r).shutdown().await.unwrap();
    }
}
