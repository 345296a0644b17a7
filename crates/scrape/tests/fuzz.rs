//! Property-based fuzzing: arbitrary bytes, and random byte edits of the conformance
//! inputs, fed to both parsers in both modes. The property is only "returns, no panic".
//! (cargo-fuzz needs nightly; `fuzz/` holds the libFuzzer target for those who have it.)

use proptest::prelude::*;
use std::collections::HashSet;

use strata_scrape::expfmt::{parse_cached, parse_format, Format, ParseOptions};

fn all_parsers(body: &[u8]) {
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        for strict in [false, true] {
            let opts = ParseOptions { fallback: None, strict_openmetrics: strict };
            let _ = parse_format(body, format, 0, &opts);
        }
    }
    same_with_cache(body);
}

/// A body that parses, parsed again with every series known to the scrape cache, gives the
/// same samples (values, timestamps, keys), labels skipped (except on OpenMetrics lines with
/// an exemplar, which always take the full parser).
fn same_with_cache(body: &[u8]) {
    let opts = ParseOptions::default();
    let formats = [
        (Format::PrometheusText, "text/plain; version=0.0.4"),
        (Format::OpenMetrics, "application/openmetrics-text; version=1.0.0"),
    ];
    for (format, content_type) in formats {
        let Ok(full) = parse_format(body, format, 7, &opts) else { continue };
        let mut keys = HashSet::new();
        for s in &full.samples {
            let mut k = Vec::new();
            s.raw.expect("samples have a raw key").write(body, &mut k);
            keys.insert(k);
        }
        let cached = parse_cached(body, content_type, 7, &opts, &|k| keys.contains(k))
            .expect("a body that parsed parses with the cache");
        assert_eq!(cached.samples.len(), full.samples.len());
        assert_eq!(cached.metadata, full.metadata);
        for (c, f) in cached.samples.iter().zip(&full.samples) {
            if f.exemplar.is_some() {
                assert_eq!(c, f);
                continue;
            }
            assert!(c.labels.is_empty());
            assert_eq!(c.raw, f.raw);
            assert_eq!(c.value.to_bits(), f.value.to_bits());
            assert_eq!(
                (c.timestamp_ms, c.explicit_timestamp),
                (f.timestamp_ms, f.explicit_timestamp)
            );
        }
    }
}

fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(load_seeds)
}

fn load_seeds() -> Vec<Vec<u8>> {
    let mut out = vec![
        b"# TYPE a histogram\na_bucket{le=\"1\"} 0 # {a=\"b\"} 0.5 1\na_bucket{le=\"+Inf\"} 3\na_count 3\na_sum 2\n# EOF\n".to_vec(),
        b"# HELP m x\\ny\n# TYPE m summary\nm{quantile=\"0.5\",\"k.v\"=\"\\\"\"} NaN 12\n{\"m.x\"} +Inf\n".to_vec(),
    ];
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/expfmt");
    if let Ok(dirs) = std::fs::read_dir(root.join("openmetrics-testsuite")) {
        for d in dirs.flatten() {
            if let Ok(b) = std::fs::read(d.path().join("metrics")) {
                out.push(b);
            }
        }
    }
    for sub in
        ["prometheus-common/fuzz-corpus/should-parse", "prometheus-common/fuzz-corpus/should-fail"]
    {
        if let Ok(files) = std::fs::read_dir(root.join(sub)) {
            for f in files.flatten() {
                if let Ok(b) = std::fs::read(f.path()) {
                    out.push(b);
                }
            }
        }
    }
    out
}

/// Bytes that matter to the grammars, so mutations hit interesting paths.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"{}\",=\\# \t\n\0.+-_eE0123456789aInfNa:\xff\xc3".to_vec()),
        any::<u8>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(interesting_byte(), 0..200)) {
        all_parsers(&body);
    }

    #[test]
    fn mutated_inputs(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, interesting_byte()), 1..8),
    ) {
        let seeds = seeds();
        let mut body = seed.get(seeds).clone();
        for (at, op, byte) in edits {
            let i = if body.is_empty() { 0 } else { at.index(body.len()) };
            match op {
                0 if !body.is_empty() => { body.remove(i); }
                1 if !body.is_empty() => body[i] = byte,
                _ => body.insert(i, byte),
            }
        }
        all_parsers(&body);
    }
}
