//! Long-term storage end to end: `strata all` with 10 s blocks flushes its heads into Parquet
//! blocks in a bucket (a local folder, or a real S3-compatible server), queries answer the same
//! before and after the flush, and after the data directory is deleted the flushed range is
//! still answered from the bucket alone. Crashes at each step of a flush lose nothing and
//! duplicate nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use object_store::ObjectStore;
use serde_json::Value;

const METRIC: &str = "blocks_test";
const RANGE_MS: i64 = 10_000;

/// The data set: `series` series with a sample every second for `steps` seconds from `t0`;
/// series 0 ends with a staleness marker.
struct Data {
    t0: i64,
    series: usize,
    steps: i64,
}

impl Data {
    /// Starts two ranges past a range boundary well in the past, so every range is closed.
    fn new(series: usize, steps: i64) -> Data {
        let t0 = (now_ms() - 600_000).div_euclid(RANGE_MS) * RANGE_MS;
        Data { t0, series, steps }
    }

    fn value(&self, s: usize, k: i64) -> f64 {
        if s == 0 && k == self.steps - 1 {
            return f64::from_bits(0x7ff0_0000_0000_0002);
        }
        (s as f64) * 1.5 + (k as f64) * 0.25 + if k % 7 == 0 { 1e-3 } else { 0.0 }
    }

    /// Pushes everything, `chunk` steps per request, in time order.
    async fn push(&self, s: &Strata) {
        let mut k0 = 0;
        while k0 < self.steps {
            let k1 = (k0 + 30).min(self.steps);
            let req = write_request(
                (0..self.series)
                    .map(|i| {
                        let si = i.to_string();
                        let gpu = (i % 4).to_string();
                        let samples: Vec<(i64, f64)> =
                            (k0..k1).map(|k| (self.t0 + k * 1000, self.value(i, k))).collect();
                        series(&[("__name__", METRIC), ("gpu", &gpu), ("s", &si)], &samples)
                    })
                    .collect(),
            );
            let r = s.push_v1(&req, None).await;
            assert_eq!(r.status, 204, "push: {}", r.body);
            k0 = k1;
        }
    }

    /// The end of the last range the flusher will cut: it waits until the head holds samples
    /// half a range past a range's end.
    fn flushed_end(&self) -> i64 {
        let max = self.t0 + (self.steps - 1) * 1000;
        let mut end = self.t0 + RANGE_MS;
        while end + RANGE_MS + RANGE_MS / 2 <= max {
            end += RANGE_MS;
        }
        end
    }
}

/// Answers to a fixed set of queries over `[t0, until)`, as JSON.
async fn answers(s: &Strata, d: &Data, until: i64) -> Vec<(String, Value)> {
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let (start, end) = (secs(d.t0), secs(until - 1000));
    let window = format!("{}s", (until - d.t0) / 1000);
    let mut out = Vec::new();
    let ranges = [
        METRIC.to_string(),
        format!("sum by (gpu) (rate({METRIC}[5s]))"),
        format!("max_over_time({METRIC}{{gpu=\"1\"}}[3s])"),
    ];
    for q in &ranges {
        let data = s
            .data(
                "/api/v1/query_range",
                &[("query", q), ("start", &start), ("end", &end), ("step", "1")],
                None,
            )
            .await;
        out.push((format!("range {q}"), data));
    }
    let instants = [
        format!("count_over_time({METRIC}[{window}])"),
        format!("sum_over_time({METRIC}[{window}])"),
        format!("count({METRIC})"),
    ];
    for q in &instants {
        let data = s.data("/api/v1/query", &[("query", q), ("time", &end)], None).await;
        out.push((format!("instant {q}"), data));
    }
    let series = s
        .data("/api/v1/series", &[("match[]", METRIC), ("start", &start), ("end", &end)], None)
        .await;
    out.push(("series".into(), series));
    let values =
        s.data("/api/v1/label/gpu/values", &[("start", &start), ("end", &end)], None).await;
    out.push(("gpu values".into(), values));
    out
}

fn assert_same(what: &str, want: &[(String, Value)], got: &[(String, Value)]) {
    for ((q, a), (_, b)) in want.iter().zip(got) {
        assert_eq!(a, b, "{what}: {q} differs");
    }
}

/// Every sample of the flushed range, exactly once: per-series counts over the range.
async fn assert_counts(s: &Strata, d: &Data, until: i64) {
    let window = format!("{}s", (until - d.t0) / 1000);
    let at = format!("{:.3}", (until - 1000) as f64 / 1000.0);
    let q = format!("count_over_time({METRIC}[{window}])");
    let data = s.data("/api/v1/query", &[("query", &q), ("time", &at)], None).await;
    let result = data["result"].as_array().expect("vector");
    assert_eq!(result.len(), d.series, "{q}: {data}");
    let per_series = ((until - d.t0) / 1000).min(d.steps);
    for r in result {
        let stale_dropped = i64::from(r["metric"]["s"] == "0" && until - d.t0 >= d.steps * 1000);
        assert_eq!(
            r["value"][1].as_str().unwrap(),
            (per_series - stale_dropped).to_string(),
            "{q}: {r}"
        );
    }
}

/// The bucket a test's Strata writes to, read with Strata's own object store client.
struct Blocks(Arc<dyn ObjectStore>);

impl Blocks {
    fn open(url: &str, s3_endpoint: Option<&str>) -> Blocks {
        let mut cfg = strata_objstore::BucketConfig::from_url(url);
        if let Some(e) = s3_endpoint {
            cfg.s3.endpoint = Some(e.to_string());
            cfg.s3.allow_http = Some(true);
            cfg.s3.region = Some("us-east-1".into());
            cfg.s3.access_key_id = Some("test".into());
            cfg.s3.secret_access_key = Some("test".into());
        }
        let b = strata_objstore::Bucket::open(&cfg, None).expect("open bucket");
        Blocks(Arc::clone(b.store()))
    }

    /// Every complete block's meta.json, as JSON.
    async fn metas(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let Ok(listing) = strata_block::list_blocks(&self.0, "anonymous").await else { return out };
        for id in listing.complete {
            if let Ok(Some(m)) =
                strata_block::read_meta(&self.0, "anonymous", &id.to_string()).await
            {
                out.push(serde_json::to_value(m).unwrap());
            }
        }
        out
    }
}

/// Waits until the flushed boundary reached `end` on both shards (the data sets' fixed label
/// sets route series to both).
async fn wait_flushed(s: &mut Strata, what: &str, blocks: &Blocks, end: i64) {
    let started = Instant::now();
    loop {
        let m = blocks.metas().await;
        let shards: BTreeSet<i64> = m.iter().filter_map(|v| v["shard"].as_i64()).collect();
        let done: BTreeSet<i64> = m
            .iter()
            .filter(|v| v["maxTime"].as_i64() == Some(end))
            .filter_map(|v| v["shard"].as_i64())
            .collect();
        if shards.len() == 2 && shards == done {
            // The block is uploaded before the head lets go of it; give the commit a moment.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        assert!(!s.has_exited(), "{what}: strata exited; log:\n{}", log_tail(&s.log(), 3000));
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: not flushed up to {end} after 60 s ({} blocks); log:\n{}",
            m.len(),
            log_tail(&s.log(), 3000)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn config(bucket_yaml: &str) -> String {
    format!(
        "ingester:\n  shards: 2\nblocks:\n  range: 10s\n  data_column_duration: 20s\n{bucket_yaml}compactor:\n  enabled: false\n"
    )
}

fn metric_value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Runs the whole story against a started Strata whose blocks `metas` lists.
async fn flush_and_lose_the_data_dir(mut s: Strata, blocks: &Blocks) -> Strata {
    let d = Data::new(20, 90);
    d.push(&s).await;
    let end = d.flushed_end();
    let before = answers(&s, &d, end).await;
    wait_flushed(&mut s, "first flush", blocks, end).await;
    let n = blocks.metas().await.len();
    assert!(n >= 2 * ((end - d.t0) / RANGE_MS) as usize - 2, "only {n} blocks");

    // The flushed range left the heads, and queries answer as before.
    let started = Instant::now();
    let m = loop {
        let m = s.metrics().await;
        let in_head = metric_value(&m, "strata_head_samples");
        if in_head < (d.series as f64) * 30.0 {
            break m;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "head still holds {in_head} samples");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(metric_value(&m, "strata_flush_blocks_total") >= 2.0, "{m}");
    assert_same("after the flush", &before, &answers(&s, &d, end).await);
    assert_counts(&s, &d, end).await;

    // Samples for a flushed range are refused as out of bounds, the rest kept.
    let late = write_request(vec![
        series(&[("__name__", METRIC), ("gpu", "0"), ("s", "late")], &[(d.t0 + 1000, 1.0)]),
        series(&[("__name__", METRIC), ("gpu", "0"), ("s", "new")], &[(now_ms(), 1.0)]),
    ]);
    let r = s.push_v1(&late, None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("out of bounds"), "{}", r.body);

    // A sample from a clock five minutes fast (the receiver takes up to ten) is kept, and
    // closes no range before its time: current samples are still taken after the flusher
    // had a few turns (with 10 s blocks it would otherwise have sealed thirty ranges ahead).
    let future = write_request(vec![
        series(
            &[("__name__", METRIC), ("gpu", "1"), ("s", "future")],
            &[(now_ms() + 300_000, 1.0)],
        ),
        series(&[("__name__", METRIC), ("gpu", "0"), ("s", "new")], &[(now_ms(), 2.0)]),
    ]);
    let r = s.push_v1(&future, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = write_request(vec![series(
        &[("__name__", METRIC), ("gpu", "0"), ("s", "new")],
        &[(now_ms(), 3.0)],
    )]);
    let r = s.push_v1(&now, None).await;
    assert_eq!(r.status, 204, "a current sample after a future one: {}", r.body);

    // kill -9 and lose the data directory: the flushed range comes back from the bucket.
    s.kill9();
    std::fs::remove_dir_all(s.data_dir()).unwrap();
    s.restart().await;
    assert_same("from the bucket alone", &before, &answers(&s, &d, end).await);
    assert_counts(&s, &d, end).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_blocks_answer_like_the_head_and_survive_losing_the_data_dir() {
    let bucket_dir = tempfile::Builder::new().prefix("strata-bucket-").tempdir().unwrap();
    let bucket: PathBuf = bucket_dir.path().join("bucket");
    let yaml = config(&format!("bucket:\n  url: file://{}\n", bucket.display()));
    let s = Strata::start_with_config(Some(&yaml)).await;
    let blocks = Blocks::open(&format!("file://{}", bucket.display()), None);
    let s = flush_and_lose_the_data_dir(s, &blocks).await;

    // The tools read what was written.
    let some_block = std::fs::read_dir(bucket.join("anonymous"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("meta.json").exists())
        .unwrap();
    let bin = env!("CARGO_BIN_EXE_strata");
    let out = std::process::Command::new(bin)
        .args(["block", "inspect", &some_block.display().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "inspect: {text} {}", String::from_utf8_lossy(&out.stderr));
    for want in ["series", "samples", "bytes/sample", "l___name__", "s_data_0"] {
        assert!(text.contains(want), "inspect output lacks {want}:\n{text}");
    }
    let out = std::process::Command::new(bin)
        .args(["block", "verify", &some_block.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stdout));
    // A damaged block is caught.
    let chunks = some_block.join("chunks.parquet");
    let mut bytes = std::fs::read(&chunks).unwrap();
    let mid = bytes.len() / 2;
    bytes.truncate(mid);
    std::fs::write(&chunks, bytes).unwrap();
    let out = std::process::Command::new(bin)
        .args(["block", "verify", &some_block.display().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "verify passed a truncated block");
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_a_flush_loses_and_duplicates_nothing() {
    for point in ["flush-after-seal", "flush-after-upload", "flush-after-commit"] {
        let bucket_dir = tempfile::Builder::new().prefix("strata-bucket-").tempdir().unwrap();
        let bucket = bucket_dir.path().join("bucket");
        let yaml = config(&format!("bucket:\n  url: file://{}\n", bucket.display()));
        let mut s = Strata::start_with_config(Some(&yaml)).await;
        let d = Data::new(20, 40);
        s.env = vec![("STRATA_FAILPOINT".into(), point.into())];
        // Restart with the failpoint armed, push, and wait for the abort.
        s.restart().await;
        d.push(&s).await;
        let started = Instant::now();
        while !s.has_exited() {
            assert!(started.elapsed() < Duration::from_secs(30), "{point}: no abort");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(log_tail(&s.log(), 20_000).contains(point), "{point}: aborted elsewhere");
        s.env.clear();
        s.start_again();
        s.wait_ready().await;
        let end = d.flushed_end();
        let blocks = Blocks::open(&format!("file://{}", bucket.display()), None);
        wait_flushed(&mut s, point, &blocks, end).await;
        assert_counts(&s, &d, end).await;
        assert_counts(&s, &d, d.t0 + d.steps * 1000).await;
        // Restarting once more (replaying the log after the flush) changes nothing.
        s.restart().await;
        assert_counts(&s, &d, d.t0 + d.steps * 1000).await;
    }
}

/// An S3-compatible server from the package registries (moto's), on a free port.
async fn start_s3(client: &reqwest::Client, dir: &Path) -> Option<(Guard, String)> {
    if !require_program("moto_server") {
        return None;
    }
    let port = free_port();
    let mut g = Guard::spawn(
        "moto_server",
        &which("moto_server"),
        &["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()],
        &dir.join("moto.log"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ok(client, &format!("{url}/"), &mut g, Duration::from_secs(30)).await;
    Some((g, url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_go_to_a_real_s3_server_and_come_back() {
    let work = tempfile::Builder::new().prefix("strata-s3-").tempdir().unwrap();
    let client = http_client_builder().build().unwrap();
    let Some((_moto, endpoint)) = start_s3(&client, work.path()).await else { return };
    let r = client.put(format!("{endpoint}/strata-it")).send().await.unwrap();
    assert!(r.status().is_success(), "creating the bucket: {}", r.status());
    let yaml = config(&format!(
        "bucket:\n  url: s3://strata-it/some/prefix\n  s3:\n    endpoint: {endpoint}\n    region: us-east-1\n    access_key_id: test\n    secret_access_key: test\n    allow_http: true\n"
    ));
    let s = Strata::start_with_config(Some(&yaml)).await;
    let blocks = Blocks::open("s3://strata-it/some/prefix", Some(&endpoint));
    let s = flush_and_lose_the_data_dir(s, &blocks).await;
    // The tools read a block straight from S3.
    let id = blocks.metas().await[0]["ulid"].as_str().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["block", "verify", &format!("s3://strata-it/some/prefix/anonymous/{id}")])
        .args(["--s3-endpoint", &endpoint])
        .envs([
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify over S3: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compactor_role_merges_a_day_and_serves_its_metrics() {
    use strata_block::{BlockDesc, BlockId, BlockOptions, Compaction};
    use strata_model::{Labels, Sample};
    const H: i64 = 3_600_000;
    let dir = tempfile::Builder::new().prefix("strata-compactor-").tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("bucket").display());
    let blocks = Blocks::open(&url, None);
    // Two 2h blocks of a day long closed.
    let day = 10 * 24 * H;
    for (k, min) in [(0, day), (1, day + 2 * H)] {
        let desc = BlockDesc {
            id: BlockId::derived(min, format!("compactor-test/{k}").as_bytes()),
            tenant: "anonymous".into(),
            min_time: min,
            max_time: min + 2 * H,
            compaction: Compaction { level: 1, sources: vec![] },
            shard: Some(0),
        };
        let labels = Labels::from_pairs([
            ("__name__".to_string(), "up".to_string()),
            ("k".into(), k.to_string()),
        ]);
        let rows = vec![(labels, vec![Sample { t: min, v: 1.0 }])];
        let built = strata_block::build(desc, rows, &BlockOptions::default()).unwrap();
        strata_block::upload(&blocks.0, &built).await.unwrap();
    }
    let port = free_port();
    let args: Vec<String> = [
        "compactor",
        "--data-dir",
        &dir.path().join("data").display().to_string(),
        "--bucket",
        &url,
        "--http-addr",
        &format!("127.0.0.1:{port}"),
        "--log-level",
        "info",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let log = dir.path().join("compactor.log");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_strata"));
    let mut guard = Guard::spawn("strata compactor", &bin, &args, &log);
    let client = http_client_builder().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(&client, &format!("{base}/-/ready"), &mut guard, Duration::from_secs(30)).await;
    // The first run happens at start: one merged block of the day.
    let started = Instant::now();
    loop {
        let text =
            client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        if text.contains("strata_compactor_blocks_merged_total 1") {
            assert!(text.contains("strata_compactor_runs_total 1"), "{text}");
            assert!(text.contains("strata_objstore_operations_total"), "{text}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no merge counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metas = blocks.metas().await;
    assert!(
        metas.iter().any(|m| m["compaction"]["level"] == 2 && m["minTime"] == day),
        "no merged block: {metas:?}"
    );
}
