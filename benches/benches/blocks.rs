//! The block format's numbers: writes the load generator's GPU-fleet series (the labels and
//! values of `strata bench remote-write`) over days into 2h blocks in a local bucket, compacts
//! them into 24h blocks with the compactor, reports bytes per sample of both, then times range
//! queries over the whole span served from the blocks alone, with the process's peak memory.
//!
//! `cargo bench -p strata-benches --bench blocks` (10 000 series, 7 days, 15 s). Settings come
//! from the environment: `SERIES`, `DAYS`, `INTERVAL_MS`, `STEP_S`, `DIR` (kept), `XOR_ONLY=1`
//! (XOR chunks only), `QUERY` (one query instead of the default set), `PER_METRIC=1` (only
//! bytes per sample of each metric alone, both encodings), `REUSE=1` with `DIR` (query the
//! blocks an earlier run left in `DIR`, written the same UTC day), `OPENMETRICS=FILE` (only one
//! 2h block of all series, with its bytes per sample, and the same samples written to FILE as
//! OpenMetrics text for Prometheus's own block writer: see `benches/blocks_vs_prometheus.sh`).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use strata_block::compact::{Compactor, CompactorConfig};
use strata_block::{
    label_names, series_order, BlockBuilder, BlockDesc, BlockId, BlockOptions, Catalog, Compaction,
};
use strata_model::{Label, Labels, Sample, TenantId};
use strata_objstore::{Bucket, BucketConfig};
use strata_promql::{Engine, QueryOpts};

#[allow(dead_code)]
#[path = "../../crates/server/src/bench/gpu_fleet.rs"]
mod gpu_fleet;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct BlocksArgs {
    series: usize,
    days: i64,
    interval_ms: i64,
    dir: Option<PathBuf>,
    step_s: i64,
    query: Vec<String>,
    xor_only: bool,
    reuse: bool,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let args = BlocksArgs {
        series: env("SERIES", 10_000),
        days: env("DAYS", 7),
        interval_ms: env("INTERVAL_MS", 15_000),
        dir: std::env::var("DIR").ok().map(PathBuf::from),
        step_s: env("STEP_S", 600),
        query: std::env::var("QUERY").ok().into_iter().collect(),
        xor_only: env("XOR_ONLY", 0) == 1,
        reuse: env("REUSE", 0) == 1,
    };
    if env("PER_METRIC", 0) == 1 {
        return per_metric(&args);
    }
    if let Ok(path) = std::env::var("OPENMETRICS") {
        return openmetrics(&args, &PathBuf::from(path));
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

/// `PER_METRIC=1`: bytes per sample of each metric alone, in one 2h block of its series, in
/// both encodings: where the bytes go.
fn per_metric(args: &BlocksArgs) -> Result<()> {
    let interval = args.interval_ms.max(1);
    let steps = (2 * H / interval) as usize;
    println!("{:<36} {:>8} {:>10} {:>10}", "metric", "series", "auto B/s", "xor B/s");
    for (m, name) in gpu_fleet::METRICS.iter().enumerate() {
        let mut rows: Vec<(Labels, Vec<Sample>)> = (m..args.series)
            .step_by(gpu_fleet::METRICS.len())
            .map(|i| {
                let labels = fleet_labels(i);
                // Two hours somewhere in the second day, busy and idle spells included.
                let samples = (0..steps)
                    .map(|k| Sample {
                        t: 2 * H + k as i64 * interval,
                        v: gpu_fleet::value(i, 5760 + k),
                    })
                    .collect();
                (labels, samples)
            })
            .collect();
        rows.sort_by(|a, b| series_order(&a.0, &b.0));
        let mut line = format!("{name:<36} {:>8}", rows.len());
        for enc in [strata_block::Encoding::Auto, strata_block::Encoding::Xor] {
            let opts = BlockOptions { encoding: enc, ..BlockOptions::default() };
            let desc = BlockDesc {
                id: BlockId::derived(0, name.as_bytes()),
                tenant: "bench".into(),
                min_time: 2 * H,
                max_time: 4 * H,
                compaction: Compaction { level: 1, sources: vec![] },
                shard: None,
            };
            let b = strata_block::build(desc, rows.clone(), &opts)?;
            line += &format!(
                " {:>10.3}",
                b.meta.stats.num_bytes as f64 / b.meta.stats.num_samples.max(1) as f64
            );
        }
        println!("{line}");
    }
    Ok(())
}

/// `OPENMETRICS=FILE`: one 2h block of every series (the window `PER_METRIC` uses), its bytes
/// per sample, and the same samples as OpenMetrics text in FILE (grouped by metric family,
/// each series in time order, timestamps in seconds), which `promtool tsdb
/// create-blocks-from openmetrics` turns into a Prometheus block of the same data.
fn openmetrics(args: &BlocksArgs, path: &std::path::Path) -> Result<()> {
    use std::io::Write;
    let interval = args.interval_ms.max(1);
    let steps = (2 * H / interval) as usize;
    let mut rows: Vec<(Labels, Vec<Sample>)> = Vec::with_capacity(args.series);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for m in 0..gpu_fleet::METRICS.len() {
        for i in (m..args.series).step_by(gpu_fleet::METRICS.len()) {
            let labels = fleet_labels(i);
            let samples: Vec<Sample> = (0..steps)
                .map(|k| Sample {
                    t: 2 * H + k as i64 * interval,
                    v: gpu_fleet::value(i, 5760 + k),
                })
                .collect();
            let mut series = String::new();
            for l in labels.iter().filter(|l| l.name != "__name__") {
                if !series.is_empty() {
                    series.push(',');
                }
                series += &format!("{}={:?}", l.name, l.value);
            }
            let name = gpu_fleet::METRICS[m];
            for s in &samples {
                // `{}` prints the shortest text that parses back to the same f64.
                writeln!(out, "{name}{{{series}}} {} {}.{:03}", s.v, s.t / 1000, s.t % 1000)?;
            }
            rows.push((labels, samples));
        }
    }
    writeln!(out, "# EOF")?;
    out.flush()?;
    rows.sort_by(|a, b| series_order(&a.0, &b.0));
    let desc = BlockDesc {
        id: BlockId::derived(2 * H, b"openmetrics"),
        tenant: "bench".into(),
        min_time: 2 * H,
        max_time: 4 * H,
        compaction: Compaction { level: 1, sources: vec![] },
        shard: None,
    };
    let mut opts = BlockOptions::default();
    if args.xor_only {
        opts.encoding = strata_block::Encoding::Xor;
    }
    let b = strata_block::build(desc, rows, &opts)?;
    let samples = b.meta.stats.num_samples.max(1);
    println!(
        "strata 2h block: {} series, {samples} samples, {} bytes: {:.3} bytes/sample",
        b.meta.stats.num_series,
        b.meta.stats.num_bytes,
        b.meta.stats.num_bytes as f64 / samples as f64
    );
    println!("openmetrics: {}", path.display());
    Ok(())
}

const H: i64 = 3_600_000;

/// The generator's labels of series `i`.
fn fleet_labels(i: usize) -> Labels {
    Labels(
        gpu_fleet::label_pairs(i)
            .into_iter()
            .map(|(name, value)| Label { name: name.to_string(), value })
            .collect(),
    )
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn run(args: BlocksArgs) -> Result<()> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            if !args.reuse {
                let _ = std::fs::remove_dir_all(d);
            }
            d.clone()
        }
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    std::fs::create_dir_all(&dir)?;
    let url = format!("file://{}", std::path::absolute(&dir)?.display());
    let bucket = Bucket::open(&BucketConfig::from_url(&url), None)?;
    let store = Arc::clone(bucket.store());
    let mut opts = BlockOptions::default();
    if args.xor_only {
        opts.encoding = strata_block::Encoding::Xor;
    }
    let tenant = "bench";

    // Series sorted as blocks store them, each with its index in the generator.
    let mut series: Vec<(Labels, usize)> = (0..args.series).map(|i| (fleet_labels(i), i)).collect();
    series.sort_by(|a, b| series_order(&a.0, &b.0));
    let names = label_names(series.iter().map(|(l, _)| l));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let end = (now / (24 * H)) * (24 * H);
    let start = end - args.days * 24 * H;
    let interval = args.interval_ms.max(1);
    if args.reuse {
        let catalog = Arc::new(Catalog::new(Arc::clone(&store)));
        let n = catalog.refresh().await?;
        println!("querying the {n} blocks in {}", dir.display());
        return run_queries(&args, catalog, tenant, start, end).await;
    }
    println!(
        "writing {} series × {} days at {}s into 2h blocks in {}",
        args.series,
        args.days,
        interval / 1000,
        dir.display()
    );
    let started = Instant::now();
    let (mut bytes2h, mut samples2h, mut blocks) = (0u64, 0u64, 0);
    let mut t = start;
    while t < end {
        let desc = BlockDesc {
            id: BlockId::derived(t, format!("bench/{t}").as_bytes()),
            tenant: tenant.into(),
            min_time: t,
            max_time: t + 2 * H,
            compaction: Compaction { level: 1, sources: vec![] },
            shard: Some(0),
        };
        let opts2 = opts.clone();
        let names2 = names.clone();
        let rows = series.clone();
        let built = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut b = BlockBuilder::new(desc, names2, &opts2)?;
            for group in rows.chunks(b.row_group_rows()) {
                let data: Vec<(Labels, Vec<Sample>)> = group
                    .iter()
                    .map(|(l, j)| {
                        let samples = (0..2 * H / interval)
                            .map(|k| {
                                let ts = t + k * interval;
                                let step = ((ts - start) / interval) as usize;
                                Sample { t: ts, v: gpu_fleet::value(*j, step) }
                            })
                            .collect();
                        (l.clone(), samples)
                    })
                    .collect();
                b.add_row_group(data.iter().map(|(l, s)| (l, s.as_slice())))?;
            }
            Ok(b.finish()?)
        })
        .await??;
        bytes2h += built.meta.stats.num_bytes;
        samples2h += built.meta.stats.num_samples;
        strata_block::upload(&store, &built).await?;
        blocks += 1;
        t += 2 * H;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "2h blocks:  {blocks} blocks, {samples2h} samples, {bytes2h} bytes: {:.3} bytes/sample \
         ({:.1}M samples/s written)",
        bytes2h as f64 / samples2h.max(1) as f64,
        samples2h as f64 / secs / 1e6
    );

    let started = Instant::now();
    let cfg = CompactorConfig {
        range_ms: 24 * H,
        grace_ms: 0,
        retention_ms: None,
        tenant_retention_ms: Default::default(),
        deletion_delay_ms: 0,
        partial_delay_ms: 24 * H,
    };
    let c = Compactor::new(Arc::clone(&store), cfg, opts.clone());
    let rep = c.run_once(end + 1).await?;
    // A second run deletes the replaced blocks (deletion delay 0).
    c.run_once(end + 1).await?;
    let catalog = Arc::new(Catalog::new(Arc::clone(&store)));
    catalog.refresh().await?;
    let metas = catalog.metas(tenant);
    let bytes: u64 = metas.iter().map(|m| m.stats.num_bytes).sum();
    let samples: u64 = metas.iter().map(|m| m.stats.num_samples).sum();
    println!(
        "24h blocks: {} blocks from {} merges in {:.1}s, {samples} samples, {bytes} bytes: {:.3} bytes/sample; peak RSS so far {:.0} MiB",
        metas.len(),
        rep.merged,
        started.elapsed().as_secs_f64(),
        bytes as f64 / samples.max(1) as f64,
        peak_rss_mib()
    );

    run_queries(&args, catalog, tenant, start, end).await?;
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Times each query over `[start, end)` from the blocks alone.
async fn run_queries(
    args: &BlocksArgs,
    catalog: Arc<Catalog>,
    tenant: &str,
    start: i64,
    end: i64,
) -> Result<()> {
    let queries = if args.query.is_empty() {
        vec![
            "avg(DCGM_FI_DEV_GPU_TEMP)".to_string(),
            "sum by (cluster) (rate(node_network_receive_bytes_total[5m]))".to_string(),
            "max by (gpu) (max_over_time(DCGM_FI_DEV_POWER_USAGE[1h]))".to_string(),
            "sum(rate(DCGM_FI_PROF_PIPE_TENSOR_ACTIVE[5m]))".to_string(),
        ]
    } else {
        args.query.clone()
    };
    let engine = Engine::new(Default::default());
    let tid = TenantId(tenant.to_string());
    let step = args.step_s.max(1) * 1000;
    for q in &queries {
        let expr = Engine::parse(q).map_err(|e| format!("parsing {q}: {e}"))?;
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t0 = Instant::now();
            engine
                .range_expr(&*catalog, &tid, &expr, start, end - 1, step, &QueryOpts::default())
                .await
                .map_err(|e| format!("{q}: {e}"))?;
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!(
            "query {q:<70} over {} days, step {}s: best of 3 {:.3}s; peak RSS {:.0} MiB",
            args.days,
            step / 1000,
            best,
            peak_rss_mib()
        );
    }
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("strata-bench-blocks-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
