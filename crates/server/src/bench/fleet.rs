//! A deterministic GPU-fleet data set for query benchmarks: the same series and samples go
//! into the criterion PromQL bench (in memory) and, through `strata bench backfill`, into
//! Strata and Prometheus, so all three answer the same queries over the same data.
//!
//! This file uses only `std`: `benches/benches/promql.rs` includes it with `#[path]`, so the
//! PromQL bench does not link the server (and with it RocksDB, a long release build).
//!
//! For `n` requested series the set holds:
//! - `n` counters `gpu_requests_total{cluster, node, gpu, job, replica}`: 8 GPUs per node, 50
//!   nodes in 4 clusters, 8 jobs, then further replicas of that grid (10 000 series: 4
//!   replicas, the last partial). Each has its own rate; about 1 % are reset once.
//! - in addition, a classic histogram `request_duration_seconds_bucket{le, cluster, node, job,
//!   replica}` with 12 buckets for each of `max(1, n / 25)` node × job pairs (10 000 series:
//!   400 pairs, 4 800 bucket series). Bucket counts are cumulative and monotone.

/// Upper bounds of the histogram buckets (`le`), the last is `+Inf`.
pub const BUCKETS: [f64; 12] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, f64::INFINITY];
const JOBS: [&str; 8] = [
    "vllm-llama3-70b",
    "vllm-llama3-8b",
    "vllm-mixtral-8x7b",
    "triton-embeddings",
    "trainer-pretrain",
    "trainer-finetune",
    "batch-eval",
    "notebook",
];
const GPUS_PER_NODE: usize = 8;
const NODES: usize = 50;
const CLUSTERS: usize = 4;

/// The data set for a requested series count. See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct Fleet {
    counters: usize,
    pairs: usize,
}

impl Fleet {
    pub fn new(series: usize) -> Self {
        Fleet { counters: series, pairs: (series / 25).max(1) }
    }

    /// Total series: counters plus histogram buckets.
    pub fn len(&self) -> usize {
        self.counters + self.pairs * BUCKETS.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counter series (the first of the set).
    pub fn counters(&self) -> usize {
        self.counters
    }

    /// The labels of series `i`, sorted by name, `__name__` included.
    pub fn labels(&self, i: usize) -> Vec<(&'static str, String)> {
        let node = |n: usize| (format!("gpu-cluster-{}", n % CLUSTERS), format!("gpu-node-{n:02}"));
        let mut l = if i < self.counters {
            let gpu = i % GPUS_PER_NODE;
            let n = (i / GPUS_PER_NODE) % NODES;
            let job = (i / (GPUS_PER_NODE * NODES)) % JOBS.len();
            let replica = i / (GPUS_PER_NODE * NODES * JOBS.len());
            let (cluster, node) = node(n);
            vec![
                ("__name__", "gpu_requests_total".to_string()),
                ("cluster", cluster),
                ("gpu", gpu.to_string()),
                ("job", JOBS[job].to_string()),
                ("node", node),
                ("replica", replica.to_string()),
            ]
        } else {
            let (pair, bucket) = self.bucket_of(i);
            let n = pair % NODES;
            let job = (pair / NODES) % JOBS.len();
            let replica = pair / (NODES * JOBS.len());
            let (cluster, node) = node(n);
            let le = BUCKETS[bucket];
            let le = if le.is_infinite() { "+Inf".to_string() } else { le.to_string() };
            vec![
                ("__name__", "request_duration_seconds_bucket".to_string()),
                ("cluster", cluster),
                ("job", JOBS[job].to_string()),
                ("le", le),
                ("node", node),
                ("replica", replica.to_string()),
            ]
        };
        l.sort_by(|a, b| a.0.cmp(b.0));
        l
    }

    /// The first `steps` values of series `i`, one per scrape.
    pub fn values(&self, i: usize, steps: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(steps);
        if i < self.counters {
            let h = mix(i as u64);
            // 0.2 .. 20 requests per second, with per-scrape jitter.
            let rate = 0.2 + (h % 1000) as f64 / 50.0;
            let reset_at = if h % 1000 < 10 { (h >> 20) as usize % 400 + 40 } else { usize::MAX };
            let mut v = 0.0;
            for s in 0..steps {
                if s == reset_at {
                    v = 0.0;
                }
                v += rate * 15.0 * (0.5 + (mix(h ^ s as u64) % 1000) as f64 / 1000.0);
                out.push(v.floor());
            }
        } else {
            let (pair, bucket) = self.bucket_of(i);
            // Each pair's latency is the base distribution scaled by 0.5x .. 4x.
            let share =
                latency_cdf(BUCKETS[bucket] / (0.5 + (mix(pair as u64 + 7) % 350) as f64 / 100.0));
            let mut requests = 0.0;
            for s in 0..steps {
                requests += 20.0 + (mix(pair as u64 ^ ((s as u64) << 32)) % 80) as f64;
                out.push((requests * share).floor());
            }
        }
        out
    }

    fn bucket_of(&self, i: usize) -> (usize, usize) {
        let j = i - self.counters;
        (j / BUCKETS.len(), j % BUCKETS.len())
    }
}

/// The share of requests at most `x` seconds long: log-logistic with median 0.12 s.
fn latency_cdf(x: f64) -> f64 {
    if x.is_infinite() {
        1.0
    } else {
        let r = (x / 0.12).powf(2.5);
        r / (1.0 + r)
    }
}

/// splitmix64: a cheap, well-mixed deterministic hash.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
