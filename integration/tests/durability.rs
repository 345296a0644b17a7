//! Nothing acknowledged is lost: concurrent remote-write pushes into one `strata all`, kill -9 at
//! an arbitrary moment while pushes are in flight, restart on the same data directory, and every
//! series of every request that got a 2xx before the kill must be there. Twice in a row (the
//! second kill hits a log that was already replayed once), then a clean SIGTERM restart that
//! must keep everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use strata_proto::prometheus::{MetricMetadata, WriteRequest};

const REQUESTS: usize = 200;
const SERIES: usize = 500;
const TASKS: usize = 8;
const METRIC: &str = "durability_test";

/// Request `i`: its own 500 series, one sample each at a timestamp only it uses.
fn request(i: usize, t0: i64) -> WriteRequest {
    let req = i.to_string();
    let mut w = write_request(
        (0..SERIES)
            .map(|j| {
                let s = j.to_string();
                let pod = format!("pod-{}", j % 37);
                let labels =
                    [("__name__", METRIC), ("req", &req), ("s", &s), ("pod", &pod), ("job", "dur")];
                series(&labels, &[(t0 + i as i64 * 1000, j as f64)])
            })
            .collect(),
    );
    w.metadata.push(MetricMetadata {
        r#type: 2,
        metric_family_name: METRIC.into(),
        help: "Durability probe.".into(),
        unit: String::new(),
    });
    w
}

/// A pseudo-random number in `lo..hi` (the clock's nanoseconds; no rand dependency).
fn arbitrary(lo: usize, hi: usize) -> usize {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
            as usize;
    lo + (nanos / 7) % (hi - lo)
}

struct Round {
    acked: Vec<usize>,
    failed: Vec<usize>,
    refused: Vec<(usize, u16, String)>,
}

/// Pushes `todo` from `TASKS` concurrent tasks; with `kill_after = Some(k)`, kills the server
/// with SIGKILL once `k` requests were acknowledged (pushes still in flight).
async fn push_round(s: &mut Strata, todo: Vec<usize>, t0: i64, kill_after: Option<usize>) -> Round {
    let todo = Arc::new(todo);
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (todo, next, acked, failed, refused, killed) = (
            Arc::clone(&todo),
            Arc::clone(&next),
            Arc::clone(&acked),
            Arc::clone(&failed),
            Arc::clone(&refused),
            Arc::clone(&killed),
        );
        let (client, base) = (s.client.clone(), s.base.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if killed.load(Ordering::SeqCst) {
                    break;
                }
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(n) else { break };
                match try_push_v1(&client, &base, &request(i, t0)).await {
                    Ok(r) if (200..300).contains(&r.status) => acked.lock().unwrap().push(i),
                    Ok(r) => refused.lock().unwrap().push((i, r.status, r.body)),
                    Err(_) => failed.lock().unwrap().push(i),
                }
            }
        }));
    }
    if let Some(k) = kill_after {
        let started = Instant::now();
        while acked.lock().unwrap().len() < k {
            assert!(started.elapsed() < Duration::from_secs(120), "pushes stalled before the kill");
            assert!(!tasks.iter().all(|t| t.is_finished()), "every push ended before the kill");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        tokio::time::sleep(Duration::from_micros(arbitrary(0, 3000) as u64)).await;
        killed.store(true, Ordering::SeqCst);
        s.kill9();
    }
    for t in tasks {
        t.await.unwrap();
    }
    let take = |m: &Arc<Mutex<Vec<usize>>>| std::mem::take(&mut *m.lock().unwrap());
    let round = Round {
        acked: take(&acked),
        failed: take(&failed),
        refused: std::mem::take(&mut *refused.lock().unwrap()),
    };
    assert!(
        round.refused.is_empty(),
        "pushes refused while the server was up: {:?}",
        round.refused
    );
    round
}

/// The probe's series as the series API reports them, and how many per request number.
async fn stored(s: &Strata) -> (BTreeSet<LabelSet>, BTreeMap<usize, usize>) {
    let set = s.series_set(METRIC, None).await;
    let mut per_req = BTreeMap::new();
    for l in &set {
        *per_req.entry(l["req"].parse::<usize>().unwrap()).or_insert(0) += 1;
    }
    (set, per_req)
}

async fn assert_all_present(
    s: &Strata,
    acked: &[usize],
    when: &str,
) -> (BTreeSet<LabelSet>, BTreeMap<usize, usize>) {
    let (set, per_req) = stored(s).await;
    let lost: Vec<(usize, usize)> = acked
        .iter()
        .map(|i| (*i, per_req.get(i).copied().unwrap_or(0)))
        .filter(|(_, n)| *n != SERIES)
        .collect();
    assert!(
        lost.is_empty(),
        "{when}: {} acknowledged requests lost series (request, series found of {SERIES}): {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    let md = s.data("/api/v1/metadata", &[("metric", METRIC)], None).await;
    assert_eq!(
        md,
        json!({METRIC: [{"type": "gauge", "help": "Durability probe.", "unit": ""}]}),
        "{when}"
    );
    (set, per_req)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_pushes_survive_kill_9_and_restarts() {
    let started = Instant::now();
    let mut s = Strata::start().await;
    let t0 = now_ms() - 3_600_000;
    let mut acked: Vec<usize> = Vec::new();
    let mut todo: Vec<usize> = (0..REQUESTS).collect();

    for (round, (lo, hi)) in [(20, 100), (10, 60)].into_iter().enumerate() {
        let k = arbitrary(lo, hi).min(todo.len().saturating_sub(TASKS + 1)).max(1);
        let r = push_round(&mut s, todo.clone(), t0, Some(k)).await;
        println!(
            "[{:.1}s] round {round}: killed after {k} acks: {} acknowledged, {} failed in flight, {} not sent",
            started.elapsed().as_secs_f64(),
            r.acked.len(),
            r.failed.len(),
            todo.len() - r.acked.len() - r.failed.len()
        );
        assert!(r.acked.len() < todo.len(), "the kill came after every push finished");
        acked.extend(&r.acked);
        todo.retain(|i| !r.acked.contains(i));

        s.restart().await;
        let (_, per_req) =
            assert_all_present(&s, &acked, &format!("after kill -9 #{}", round + 1)).await;
        let partial: Vec<_> =
            r.failed.iter().filter_map(|i| per_req.get(i).map(|n| (*i, *n))).collect();
        println!(
            "[{:.1}s] round {round}: {} acknowledged requests all present; in-flight ones found: {partial:?}",
            started.elapsed().as_secs_f64(),
            acked.len()
        );
    }

    // Retry what was not acknowledged (as Prometheus would), then a clean shutdown.
    let r = push_round(&mut s, todo.clone(), t0, None).await;
    assert_eq!(r.acked.len(), todo.len(), "retries after restart failed: {:?}", r.failed);
    acked.extend(&r.acked);
    println!("[{:.1}s] retried the rest", started.elapsed().as_secs_f64());
    let (before, _) = assert_all_present(&s, &acked, "before clean restart").await;
    assert_eq!(before.len(), REQUESTS * SERIES);
    println!(
        "[{:.1}s] all {} series present; SIGTERM",
        started.elapsed().as_secs_f64(),
        before.len()
    );
    let status = s.terminate(Duration::from_secs(30)).await;
    let log = log_tail(&s.log(), 3000);
    assert!(status.is_some(), "strata did not exit within 30 s of SIGTERM; log:\n{log}");
    assert!(status.unwrap().success(), "SIGTERM exit: {status:?}; log:\n{log}");
    println!("[{:.1}s] SIGTERM: {status:?}", started.elapsed().as_secs_f64());
    s.restart().await;
    println!("[{:.1}s] restarted", started.elapsed().as_secs_f64());
    let (after, _) = assert_all_present(&s, &acked, "after clean restart").await;
    assert!(after == before, "series changed across a clean restart");
    println!(
        "durability: {} requests x {SERIES} series all present after 2 kill -9 and a clean restart ({:.1}s)",
        acked.len(),
        started.elapsed().as_secs_f64()
    );
}
