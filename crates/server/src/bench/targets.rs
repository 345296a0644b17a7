//! `strata bench targets`: a scrape-target simulator. Serves N targets of M series each in the
//! Prometheus text format, target `i` on `127.0.0.1:(port + i)`, writes a `scrape_configs`
//! file listing them (pasteable into Strata's config or a prometheus.yml), and, given the pid
//! and URL of the scraper, measures the scraper's CPU time over a window and reads back how
//! many samples it scraped in it (`scrape_samples_scraped`), so Strata and Prometheus can be
//! compared on the same targets.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use clap::Args;

use super::gpu_fleet::METRICS;
use super::proc_usage;

#[derive(Debug, Args, Clone)]
pub struct TargetsArgs {
    /// Port of the first target; target i listens on 127.0.0.1:(port + i).
    #[arg(long, default_value_t = 20_000)]
    pub port: u16,
    /// Targets to serve.
    #[arg(long, default_value_t = 1000)]
    pub targets: usize,
    /// Series per target.
    #[arg(long, default_value_t = 1000)]
    pub series: usize,
    /// Write a configuration with one `scrape_configs` job listing every target here.
    #[arg(long)]
    pub config_out: Option<PathBuf>,
    /// Only write the configuration (to --config-out), serve nothing.
    #[arg(long)]
    pub config_only: bool,
    /// `global.scrape_interval` of that configuration, in seconds.
    #[arg(long, default_value_t = 15)]
    pub interval_s: u64,
    /// Process id of the scraper: measure its CPU time (needs --query-url).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Base URL of the scraper's Prometheus query API, to count the samples it scraped.
    #[arg(long)]
    pub query_url: Option<String>,
    /// Seconds to let the scraper warm up (every target scraped, every series created).
    #[arg(long, default_value_t = 45)]
    pub warmup_s: u64,
    /// Seconds of measurement.
    #[arg(long, default_value_t = 120)]
    pub measure_s: u64,
}

/// One target's exposition, rendered anew on each scrape: series `j` is a child of metric
/// family `j / 10` (names from the GPU-fleet list), with labels like an exporter's.
struct Exposition {
    /// `name{labels} ` per series, with `# HELP`/`# TYPE` lines before each family's first.
    lines: Vec<(String, bool)>,
    scrapes: AtomicU64,
}

impl Exposition {
    fn new(series: usize) -> Self {
        let mut lines = Vec::with_capacity(series);
        for j in 0..series {
            let family = j / 10;
            let base = METRICS[family % METRICS.len()].replace(':', "_");
            let name = format!("{base}_{}", family / METRICS.len());
            let counter = name.ends_with("_total") || family % 2 == 0;
            let name =
                if counter && !name.ends_with("_total") { format!("{name}_total") } else { name };
            let mut line = String::new();
            if j % 10 == 0 {
                let kind = if counter { "counter" } else { "gauge" };
                let _ = write!(
                    line,
                    "# HELP {name} Simulated {kind} {family}.\n# TYPE {name} {kind}\n"
                );
            }
            let _ = write!(
                line,
                "{name}{{gpu=\"{}\",device=\"nvidia{}\",modelName=\"NVIDIA H100 80GB HBM3\",pod=\"trainer-{}\"}} ",
                j % 8,
                j % 8,
                j % 10
            );
            lines.push((line, counter));
        }
        Exposition { lines, scrapes: AtomicU64::new(0) }
    }

    fn render(&self) -> String {
        let n = self.scrapes.fetch_add(1, Ordering::Relaxed);
        let mut body = String::with_capacity(self.lines.len() * 96);
        for (j, (prefix, counter)) in self.lines.iter().enumerate() {
            body.push_str(prefix);
            let v = if *counter {
                (n * (j as u64 % 7 + 1)) as f64
            } else {
                ((n + j as u64) % 100) as f64 * 0.5
            };
            let _ = writeln!(body, "{v}");
        }
        body
    }
}

fn scrape_config(args: &TargetsArgs) -> String {
    let mut c = format!(
        "global:\n  scrape_interval: {}s\n  scrape_timeout: {}s\nscrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets:\n",
        args.interval_s,
        args.interval_s.min(10)
    );
    for i in 0..args.targets {
        let _ = writeln!(c, "          - 127.0.0.1:{}", usize::from(args.port) + i);
    }
    c
}

/// `sum(sum_over_time(scrape_samples_scraped[window]))` at `time` from a query API.
async fn scraped_samples(
    client: &reqwest::Client,
    base: &str,
    window_s: u64,
    time: f64,
) -> anyhow::Result<f64> {
    let q = format!("sum(sum_over_time(scrape_samples_scraped{{job=\"sim\"}}[{window_s}s]))");
    let text = client
        .get(format!("{base}/api/v1/query?query={}&time={time:.3}", percent_encode(&q)))
        .send()
        .await
        .context("querying the scraper")?
        .text()
        .await
        .context("reading the scraper's answer")?;
    let resp: serde_json::Value = serde_json::from_str(&text).context("decoding the answer")?;
    let v = resp["data"]["result"][0]["value"][1].as_str().unwrap_or("0");
    v.parse::<f64>().with_context(|| format!("unexpected answer {resp}"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub async fn targets(args: TargetsArgs) -> anyhow::Result<()> {
    if usize::from(args.port) + args.targets > usize::from(u16::MAX) {
        bail!("--port {} + --targets {} runs past port 65535", args.port, args.targets);
    }
    if let Some(path) = &args.config_out {
        std::fs::write(path, scrape_config(&args))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.config_only {
        return Ok(());
    }
    let expo = Arc::new(Exposition::new(args.series));
    for i in 0..args.targets {
        let port = usize::from(args.port) + i;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port as u16))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        let expo = Arc::clone(&expo);
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let expo = Arc::clone(&expo);
                async move {
                    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], expo.render()).into_response()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    println!(
        "serving {} targets of {} series on 127.0.0.1:{}..{}",
        args.targets,
        args.series,
        args.port,
        usize::from(args.port) + args.targets - 1
    );
    let (Some(pid), Some(url)) = (args.pid, args.query_url.clone()) else {
        // Serve until killed.
        std::future::pending::<()>().await;
        return Ok(());
    };
    strata_scrape::scrape_loop::install_tls_provider();
    let client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_secs(args.warmup_s)).await;
    let (cpu0, _) = proc_usage(pid)?;
    let t0 = now_s();
    tokio::time::sleep(Duration::from_secs(args.measure_s)).await;
    let (cpu1, rss) = proc_usage(pid)?;
    let t1 = now_s();
    // Samples the scraper took between t0 and t1, by its own count.
    let samples = scraped_samples(&client, &url, args.measure_s, t1).await?;
    let cpu = cpu1 - cpu0;
    println!(
        "scraper pid {pid}: {samples:.0} samples scraped in {:.0} s, {cpu:.2} CPU-s ({:.3} cores), \
         {:.2} CPU-s per million samples, RSS {:.0} MiB",
        t1 - t0,
        cpu / (t1 - t0),
        cpu / (samples / 1e6).max(1e-9),
        rss as f64 / (1 << 20) as f64
    );
    Ok(())
}
