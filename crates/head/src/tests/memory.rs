use super::*;

/// Prints the memory per series (estimate and RSS) for 200k DCGM-like series with 8 labels and
/// 10 samples each, then a rough append rate. Numbers only, no assertions on them.
/// Run with `cargo test -p strata-head --release -- --ignored --nocapture memory`.
#[test]
#[ignore]
fn memory_per_series() {
    let rss = || -> Option<usize> {
        let s = std::fs::read_to_string("/proc/self/statm").ok()?;
        Some(s.split_whitespace().nth(1)?.parse::<usize>().ok()? * 4096)
    };
    let n = 200_000;
    let before = rss();
    let mut head = Head::default();
    let mut r = ApplyReport::default();
    let ts: Vec<i64> = (0..10).map(|i| 1_700_000_000_000 + i * 15_000).collect();
    for i in 0..n {
        let vs: Vec<f64> = (0..10).map(|j| f64::from(i * 10 + j)).collect();
        let (inst, gpu) =
            (format!("10.0.{}.{}:9400", i / 8 / 256, i / 8 % 256), format!("{}", i % 8));
        let uuid = format!("GPU-{:08x}-0000-0000-0000-{:012x}", i, i * 7);
        let labels = Labels::from_pairs([
            ("__name__", "DCGM_FI_DEV_GPU_UTIL"),
            ("Hostname", &format!("node-{}", i / 8)),
            ("UUID", &uuid),
            ("device", &format!("nvidia{gpu}")),
            ("gpu", &gpu),
            ("instance", &inst),
            ("job", "dcgm"),
            ("modelName", "NVIDIA H100 80GB HBM3"),
        ]);
        head.append_labels("t", &labels, &ts, &vs, &mut r);
    }
    let after = rss();
    let st = head.stats();
    assert_eq!(st.series, n as usize);
    println!("stats: {st:?}");
    println!("estimated bytes per series: {}", st.bytes / st.series);
    if let (Some(b), Some(a)) = (before, after) {
        println!("RSS growth per series: {}", a.saturating_sub(b) / st.series);
    }

    // Append rate on existing series, one sample per call, as a scrape-shaped write does.
    let mut all: Vec<(u64, Vec<u8>)> = Vec::with_capacity(st.series);
    head.for_each_series(|_, labels, _| {
        let key = strata_model::labels_key(labels);
        all.push((hash_of(&key), key));
    });
    let rounds = 10;
    let start = std::time::Instant::now();
    for round in 0..rounds {
        let t = ts[9] + (round + 1) * 15_000;
        for (hash, labels) in &all {
            head.append("t", *hash, labels, &[t], &[1.0], &mut r);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "append rate, 1 sample per call: {:.0} samples/s",
        (rounds as f64 * all.len() as f64) / secs
    );
}
