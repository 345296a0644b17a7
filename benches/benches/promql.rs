//! PromQL engine benchmarks over the GPU-fleet data set of `strata bench backfill` (10 000
//! counter series plus 4 800 histogram bucket series, 2 h at 15 s: 480 samples each) held in
//! a `MemStorage`, so they measure the engine without storage or HTTP. The same queries run
//! against Strata and Prometheus over HTTP in benches/promql_vs_prometheus.sh.
//!
//! Before timing, prints each query's `QueryStats` and the peak samples of a query that
//! touches 100 series next to the same query over all 10 000: peak memory follows the
//! series a query touches, not the series stored.
//!
//!   cargo bench -p strata-benches --bench promql
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use strata_model::{Labels, Sample, TenantId};
use strata_promql::mem::MemStorage;
use strata_promql::{Engine, QueryOpts, QueryOutput};
use tokio::runtime::Runtime;

// Shared with `strata bench backfill`; std-only, so including it keeps the server (and
// RocksDB) out of this bench's build.
#[path = "../../crates/server/src/bench/fleet.rs"]
#[allow(dead_code)]
mod fleet;

const SERIES: usize = 10_000;
const INTERVAL_MS: i64 = 15_000;
const STEPS: usize = 480;
const START_MS: i64 = 1_700_000_000_000;
const END_MS: i64 = START_MS + (STEPS as i64 - 1) * INTERVAL_MS;
const RANGE_STEP_MS: i64 = 60_000;

const QUERIES: [(&str, &str); 4] = [
    ("sum_rate", "sum by (job) (rate(gpu_requests_total[5m]))"),
    (
        "histogram_quantile",
        "histogram_quantile(0.99, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    ),
    ("topk", "topk(5, rate(gpu_requests_total[5m]))"),
    ("subquery", "max_over_time(rate(gpu_requests_total[5m])[30m:1m])"),
];

fn store() -> MemStorage {
    let fleet = fleet::Fleet::new(SERIES);
    let mut m = MemStorage::new();
    for i in 0..fleet.len() {
        let labels = Labels::from_pairs(fleet.labels(i));
        let samples = fleet.values(i, STEPS).into_iter().enumerate();
        let samples = samples.map(|(s, v)| Sample { t: START_MS + s as i64 * INTERVAL_MS, v });
        m.append_all(&labels, samples).expect("generated samples are in order");
    }
    m
}

struct Bench {
    rt: Runtime,
    engine: Engine,
    store: MemStorage,
    tenant: TenantId,
    opts: QueryOpts,
}

impl Bench {
    fn instant(&self, q: &str) -> QueryOutput {
        let fut = self.engine.instant(&self.store, &self.tenant, q, END_MS, &self.opts);
        self.rt.block_on(fut).expect("query succeeds")
    }

    fn range(&self, q: &str) -> QueryOutput {
        let start = END_MS - 2 * 3600 * 1000;
        let fut = self.engine.range(
            &self.store,
            &self.tenant,
            q,
            start,
            END_MS,
            RANGE_STEP_MS,
            &self.opts,
        );
        self.rt.block_on(fut).expect("query succeeds")
    }
}

fn report(what: &str, out: &QueryOutput) {
    let s = out.stats;
    println!(
        "{what:<36} series_loaded {:>6}  samples_loaded {:>9}  peak_samples {:>9}",
        s.series_loaded, s.samples_loaded, s.peak_samples
    );
}

fn promql(c: &mut Criterion) {
    let built = std::time::Instant::now();
    let store = store();
    println!(
        "store: {} series, {} samples, built in {:.1}s",
        store.series_count(),
        store.sample_count(),
        built.elapsed().as_secs_f64()
    );
    // The engine is async; a current-thread runtime drives it from criterion's sync closures.
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime");
    let b = Bench {
        rt,
        engine: Engine::default(),
        store,
        tenant: TenantId("bench".into()),
        opts: QueryOpts::default(),
    };

    for (name, q) in QUERIES {
        report(&format!("{name} instant"), &b.instant(q));
        report(&format!("{name} range 2h/60s"), &b.range(q));
    }
    // 100 of the 10 000 counters (50 nodes x 2 GPUs of one job and replica) against all.
    let narrow = b.range(
        r#"sum(rate(gpu_requests_total{job="vllm-llama3-70b", replica="0", gpu=~"0|1"}[5m]))"#,
    );
    let wide = b.range("sum(rate(gpu_requests_total[5m]))");
    report("memory: 100 series, range", &narrow);
    report("memory: 10k series, range", &wide);
    println!(
        "memory: narrow/wide peak_samples = {:.4} (series ratio {:.4})",
        narrow.stats.peak_samples as f64 / wide.stats.peak_samples.max(1) as f64,
        narrow.stats.series_loaded as f64 / wide.stats.series_loaded.max(1) as f64
    );

    let mut g = c.benchmark_group("promql");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for (name, q) in QUERIES {
        g.bench_function(format!("{name}/instant"), |bch| bch.iter(|| b.instant(q)));
        g.bench_function(format!("{name}/range_2h_60s"), |bch| bch.iter(|| b.range(q)));
    }
    g.finish();
}

criterion_group!(benches, promql);
criterion_main!(benches);
