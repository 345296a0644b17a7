//! `strata bench remote-write`: a load generator that speaks remote-write 1.0 to any
//! receiver (Strata, or Prometheus with `--web.enable-remote-write-receiver`), so both can
//! be measured side by side on the same load.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use prost::Message;
use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};

mod backfill;
pub mod fleet;
pub mod gpu_fleet;
mod targets;

pub use backfill::{backfill, BackfillArgs};
pub use targets::{targets, TargetsArgs};

#[derive(Debug, Args, Clone)]
pub struct RemoteWriteArgs {
    /// Remote-write URL of the receiver.
    #[arg(long, default_value = "http://127.0.0.1:9009/api/v1/push")]
    pub url: String,
    /// Active series.
    #[arg(long, default_value_t = 10_000)]
    pub series: usize,
    /// Samples per series (one scrape of every series per step).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Samples per request, as Prometheus's `max_samples_per_send`.
    #[arg(long, default_value_t = 2000)]
    pub samples_per_request: usize,
    /// Requests in flight, as Prometheus's shards.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Milliseconds between steps in sample timestamps.
    #[arg(long, default_value_t = 15_000)]
    pub interval_ms: i64,
    /// Tenant sent as X-Scope-OrgID (none when empty).
    #[arg(long, default_value = "")]
    pub tenant: String,
    /// Process id of the receiver: report its CPU time and resident memory.
    #[arg(long)]
    pub pid: Option<u32>,
}

fn label(n: &str, v: String) -> Label {
    Label { name: Bytes::copy_from_slice(n.as_bytes()), value: Bytes::from(v) }
}

/// The label set of series `i`: 8 labels, realistic for a GPU fleet, unique per `i`.
pub fn series_labels(i: usize) -> Vec<Label> {
    gpu_fleet::label_pairs(i).into_iter().map(|(n, v)| label(n, v)).collect()
}

/// Builds every request up front, snappy-compressed, so sending measures the receiver.
pub fn build_requests(args: &RemoteWriteArgs, start_ms: i64) -> Vec<Bytes> {
    let labels: Vec<Vec<Label>> = (0..args.series).map(series_labels).collect();
    let per_req = args.samples_per_request.max(1);
    let mut out = Vec::new();
    for step in 0..args.steps {
        let t = start_ms + step as i64 * args.interval_ms;
        for (c, chunk) in labels.chunks(per_req).enumerate() {
            let timeseries = chunk
                .iter()
                .enumerate()
                .map(|(j, l)| TimeSeries {
                    labels: l.clone(),
                    samples: vec![Sample {
                        value: gpu_fleet::value(c * per_req + j, step),
                        timestamp: t,
                    }],
                    ..Default::default()
                })
                .collect();
            let raw = WriteRequest { timeseries, metadata: vec![] }.encode_to_vec();
            let compressed = snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default();
            out.push(Bytes::from(compressed));
        }
    }
    out
}

/// CPU seconds (user + system) and resident bytes of a process, from /proc.
fn proc_usage(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc/PID/stat")?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name; ticks of 1/100 s.
    let ticks: u64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((ticks as f64 / 100.0, rss_kb * 1024))
}

pub async fn remote_write(args: RemoteWriteArgs) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let start_ms = now - args.steps as i64 * args.interval_ms;
    let built = Instant::now();
    let requests = build_requests(&args, start_ms);
    let total_samples = (args.series * args.steps) as u64;
    eprintln!(
        "built {} requests ({} samples) in {:.1}s",
        requests.len(),
        total_samples,
        built.elapsed().as_secs_f64()
    );
    let before = args.pid.map(proc_usage).transpose()?;
    let started = Instant::now();
    let per_step = args.series.div_ceil(args.samples_per_request.max(1)).max(1);
    let sender = Sender::new(&args.url, &args.tenant, args.concurrency)?;
    // Steps go in order (a series' samples must arrive in time order).
    for step in requests.chunks(per_step) {
        sender.send(step.to_vec()).await?;
    }
    let wall = started.elapsed().as_secs_f64();
    let errors = sender.errors();
    println!(
        "sent {total_samples} samples in {} requests over {wall:.2}s: {:.0} samples/s, {errors} failed requests",
        requests.len(),
        total_samples as f64 / wall
    );
    if let (Some(pid), Some((cpu0, _))) = (args.pid, before) {
        // Let the receiver finish what it queued before reading its counters.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (cpu1, rss) = proc_usage(pid)?;
        let cpu = (cpu1 - cpu0).max(0.01);
        println!(
            "receiver pid {pid}: {cpu:.2} CPU-s, {:.0} samples per CPU-second, RSS {:.1} MiB ({:.0} bytes per series)",
            total_samples as f64 / cpu,
            rss as f64 / 1048576.0,
            rss as f64 / args.series.max(1) as f64
        );
    }
    sender.finish()
}

/// Sends remote-write bodies to one receiver, `concurrency` requests at a time, counting
/// failed requests and keeping the first failure's text.
pub(crate) struct Sender {
    client: reqwest::Client,
    url: String,
    tenant: String,
    concurrency: usize,
    errors: Arc<AtomicU64>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl Sender {
    pub(crate) fn new(url: &str, tenant: &str, concurrency: usize) -> anyhow::Result<Self> {
        Ok(Sender {
            client: {
                strata_scrape::scrape_loop::install_tls_provider();
                reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?
            },
            url: url.to_string(),
            tenant: tenant.to_string(),
            concurrency: concurrency.max(1),
            errors: Arc::new(AtomicU64::new(0)),
            first_error: Arc::new(std::sync::Mutex::new(None)),
        })
    }

    /// Sends every body, in no particular order; returns when all have been answered.
    pub(crate) async fn send(&self, bodies: Vec<Bytes>) -> anyhow::Result<()> {
        let queue = Arc::new(std::sync::Mutex::new(bodies));
        let mut workers = Vec::new();
        for _ in 0..self.concurrency {
            let (client, url, tenant) =
                (self.client.clone(), self.url.clone(), self.tenant.clone());
            let (queue, errors, first_error) =
                (Arc::clone(&queue), Arc::clone(&self.errors), Arc::clone(&self.first_error));
            workers.push(tokio::spawn(async move {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some(body) = next else { break };
                    let mut req = client
                        .post(&url)
                        .header("Content-Encoding", "snappy")
                        .header("Content-Type", "application/x-protobuf")
                        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                        .body(body);
                    if !tenant.is_empty() {
                        req = req.header("X-Scope-OrgID", tenant.clone());
                    }
                    let problem = match req.send().await {
                        Ok(r) if r.status().is_success() => None,
                        Ok(r) => {
                            Some(format!("{}: {}", r.status(), r.text().await.unwrap_or_default()))
                        }
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(p) = problem {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut f) = first_error.lock() {
                            f.get_or_insert(p);
                        }
                    }
                }
            }));
        }
        for w in workers {
            w.await?;
        }
        Ok(())
    }

    pub(crate) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Fails when any request failed, quoting the first failure.
    pub(crate) fn finish(&self) -> anyhow::Result<()> {
        if let Ok(Some(e)) = self.first_error.lock().map(|f| f.clone()) {
            bail!("{} requests failed; first: {e}", self.errors());
        }
        Ok(())
    }
}

#[cfg(test)]
mod gpu_fleet_tests {
    use super::gpu_fleet::{value, METRICS};

    #[test]
    fn counters_never_go_backwards_and_gauges_stay_in_range() {
        for i in 0..(METRICS.len() * 16) {
            let name = METRICS[i % METRICS.len()];
            let mut prev = f64::NEG_INFINITY;
            for step in 0..3000 {
                let v = value(i, step);
                assert!(v.is_finite() && v >= 0.0, "{name} step {step}: {v}");
                if name.ends_with("_total") {
                    assert!(v >= prev, "{name} went back at step {step}: {prev} -> {v}");
                }
                if name.contains("UTIL") {
                    assert!(v <= 100.0, "{name} step {step}: {v}");
                }
                prev = v;
            }
        }
    }
}
