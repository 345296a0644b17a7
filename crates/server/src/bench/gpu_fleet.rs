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

/// The value the generator sends at `step` for the `j`-th series of a request.
pub fn value(step: usize, j: usize) -> f64 {
    (step * 31 + j) as f64 * 0.5
}
