//! The remote-write load generator's series: about 8 labels each, realistic for a GPU fleet, and
//! its values. Uses only `std`: `benches/benches/blocks.rs` includes it with `#[path]`, so the
//! block bench does not link the server (and with it RocksDB).

/// Metric names, one per series in turn.
pub const METRICS: [&str; 25] = [
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_DEV_XID_ERRORS",
    "node_cpu_seconds_total",
    "node_memory_MemAvailable_bytes",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_filesystem_avail_bytes",
    "node_load1",
    "vllm:num_requests_running",
    "vllm:gpu_cache_usage_perc",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "process_resident_memory_bytes",
];

/// The label pairs of series `i`, sorted by name, unique per `i`.
pub fn label_pairs(i: usize) -> Vec<(&'static str, String)> {
    let metric = METRICS[i % METRICS.len()];
    let gpu = (i / METRICS.len()) % 8;
    let host = i / (METRICS.len() * 8);
    let mut l = vec![
        ("__name__", metric.to_string()),
        ("cluster", format!("gpu-cluster-{}", host % 4)),
        ("gpu", gpu.to_string()),
        ("instance", format!("10.{}.{}.{}:9400", host / 65536, (host / 256) % 256, host % 256)),
        ("job", if metric.starts_with("DCGM") { "dcgm-exporter" } else { "node" }.to_string()),
        ("modelName", "NVIDIA H100 80GB HBM3".to_string()),
        ("namespace", format!("team-{}", host % 13)),
        ("pod", format!("trainer-{}-{}", host % 97, gpu)),
    ];
    l.sort_by(|a, b| a.0.cmp(b.0));
    l
}

/// The value series `i` has at scrape `step`: what its exporter would report, so bytes per
/// sample measured on it mean something. Deterministic and stateless (any step of any series
/// can be computed alone), shaped per metric: integer percentages, temperatures and clocks;
/// power with 3 decimals and DCGM's profiling ratios with 6 (dcgm-exporter prints `%f`);
/// counters that only grow, by irregular amounts, from a large value since boot; byte gauges in
/// whole pages; vLLM's cache usage as a full-precision ratio. GPUs alternate between busy
/// (training) and idle spells of a few hours.
pub fn value(i: usize, step: usize) -> f64 {
    let h = mix(i as u64);
    let host = (i / (METRICS.len() * 8)) as u64;
    // One in five spells of 4h (960 steps of 15 s) is idle, per host.
    let busy = !((step as u64 + mix(host) % 960) / 960 + mix(host ^ 1)).is_multiple_of(5);
    // A slow wave in [-1, 1] with a per-series period of 1–6 h, and per-scrape noise in [0, 1).
    let period = 240.0 + (h % 1200) as f64;
    let wave = (std::f64::consts::TAU * step as f64 / period + (h >> 32) as f64).sin();
    let noise = unit(h, step as u64);
    let round = |v: f64, decimals: i32| {
        let p = 10f64.powi(decimals);
        (v * p).round() / p
    };
    // A counter growing by `rate` per scrape on average, never backwards.
    let counter = |base: f64, rate: f64| (base + rate * step as f64 + rate * 0.5 * noise).floor();
    let pages = |bytes: f64| (bytes / 4096.0).floor() * 4096.0;
    let rate = 1.0 + (h % 1000) as f64 / 100.0;
    match i % METRICS.len() {
        // DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_MEM_COPY_UTIL
        0 if busy => (92.0 + 6.0 * wave + 4.0 * noise).round().min(100.0),
        1 if busy => (40.0 + 15.0 * wave + 10.0 * noise).round(),
        0 | 1 => 0.0,
        // DCGM_FI_DEV_FB_USED / _FREE (MiB), changing every 10 minutes.
        2 | 3 => {
            let used =
                if busy { 70_000.0 } else { 500.0 } + (mix(h ^ (step as u64 / 40)) % 4096) as f64;
            if i % METRICS.len() == 2 {
                used
            } else {
                81_559.0 - used
            }
        }
        // DCGM_FI_DEV_GPU_TEMP
        4 if busy => (68.0 + 8.0 * wave + 2.0 * noise).round(),
        4 => (34.0 + 2.0 * noise).round(),
        // DCGM_FI_DEV_POWER_USAGE (W, 3 decimals)
        5 if busy => round(560.0 + 90.0 * wave + 40.0 * noise, 3),
        5 => round(70.0 + 5.0 * noise, 3),
        // DCGM_FI_DEV_SM_CLOCK (throttling now and then), DCGM_FI_DEV_MEM_CLOCK
        6 if busy => {
            if noise < 0.05 {
                1755.0
            } else {
                1980.0
            }
        }
        6 => 345.0,
        7 => 2619.0,
        // DCGM_FI_PROF_GR_ENGINE_ACTIVE, _PIPE_TENSOR_ACTIVE, _DRAM_ACTIVE (ratios, 6 decimals)
        8 if busy => round((0.9 + 0.07 * wave + 0.03 * noise).min(1.0), 6),
        9 if busy => round(0.45 + 0.2 * wave + 0.05 * noise, 6),
        10 if busy => round(0.3 + 0.1 * wave + 0.05 * noise, 6),
        8..=10 => 0.0,
        // DCGM_FI_DEV_XID_ERRORS
        11 => 0.0,
        // node_cpu_seconds_total (USER_HZ: 2 decimals; at most 15 s per 15 s)
        12 => round(counter(3.0e6 + (h % 100_000) as f64, 1.0 + (h % 1300) as f64 / 100.0), 2),
        // node_memory_MemAvailable_bytes
        13 => pages(1.2e12 + 2.0e11 * wave + 1.0e9 * noise),
        // node_network_{receive,transmit}_bytes_total
        14 | 15 => counter(1.0e13 + (h % 1_000_000) as f64, rate * 3.0e7),
        // node_disk_{read,written}_bytes_total
        16 | 17 => pages(counter(4.0e12, rate * 2.0e6)),
        // node_filesystem_avail_bytes, changing every 2 minutes.
        18 => pages(2.5e12 - 1.0e6 * (step / 8) as f64 + 1.0e8 * unit(h, (step / 8) as u64)),
        // node_load1
        19 => round(40.0 + 10.0 * wave + 3.0 * noise, 2),
        // vllm:num_requests_running
        20 if busy => (24.0 + 16.0 * wave + 8.0 * noise).round(),
        20 => 0.0,
        // vllm:gpu_cache_usage_perc: used blocks / total blocks, printed in full by Python.
        21 => ((0.5 + 0.4 * wave) * 12_345.0).round() / 12_345.0,
        // vllm:prompt_tokens_total, vllm:generation_tokens_total
        22 => counter(1.0e9, rate * 4_000.0),
        23 => counter(4.0e8, rate * 1_500.0),
        // process_resident_memory_bytes
        _ => pages(2.0e9 + 3.0e8 * wave + 1.0e7 * noise),
    }
}

/// A number in [0, 1) drawn from `(h, step)`.
fn unit(h: u64, step: u64) -> f64 {
    (mix(h ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 11) as f64 / (1u64 << 53) as f64
}

/// splitmix64's finalizer.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
