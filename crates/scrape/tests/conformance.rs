//! Runs the parsers over ../shared/conformance/expfmt (see its README.md) in place.
//! Prints pass counts per group and asserts floors. Skips when the folder is missing,
//! unless STRATA_REQUIRE_INTEROP=1.

use std::path::{Path, PathBuf};

use strata_scrape::expfmt::{parse_format, Format, ParseOptions, Parsed, Result};

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/expfmt");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("STRATA_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("conformance folder not found at {}", dir.display());
    }
    println!("skipped: conformance folder not found");
    None
}

fn run(body: &[u8], format: Format, strict: bool) -> Result<Parsed> {
    let opts = ParseOptions { fallback: None, strict_openmetrics: strict };
    parse_format(body, format, 0, &opts)
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(val).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n =
            chunk.iter().enumerate().fold(0u32, |n, (i, &d)| n | (u32::from(d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn openmetrics_testsuite() {
    let Some(root) = corpus() else { return };
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("openmetrics-testsuite"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("test.json").is_file())
        .collect();
    dirs.sort();
    let (mut good, mut good_ok, mut bad, mut bad_ok, mut lenient_rejects) = (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for dir in &dirs {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("test.json")).unwrap()).unwrap();
        let should_parse = spec["shouldParse"].as_bool().unwrap();
        let body = std::fs::read(dir.join("metrics")).unwrap();
        let strict = run(&body, Format::OpenMetrics, true);
        let lenient = run(&body, Format::OpenMetrics, false);
        if should_parse {
            good += 1;
            // What strict accepts, the Prometheus-compatible mode accepts too.
            assert!(lenient.is_ok(), "{case}: lenient mode rejects a good case: {lenient:?}");
            if strict.is_ok() {
                good_ok += 1;
            } else {
                failures.push(format!("{case}: {:?}", strict.err()));
            }
        } else {
            bad += 1;
            if lenient.is_err() {
                lenient_rejects += 1;
            }
            match strict {
                Err(_) => bad_ok += 1,
                Ok(_) => failures.push(format!("{case}: accepted")),
            }
        }
    }
    println!("openmetrics-testsuite (strict): good {good_ok}/{good}, bad rejected {bad_ok}/{bad}");
    println!("openmetrics-testsuite (Prometheus-compatible): bad rejected {lenient_rejects}/{bad}");
    for f in &failures {
        println!("  FAIL {f}");
    }
    assert_eq!(good, 44);
    assert_eq!(good_ok, good, "every good case parses");
    assert!(bad_ok >= 167, "bad rejected floor");
}

#[test]
fn textparse_error_cases() {
    let Some(root) = corpus() else { return };
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("textparse-error-cases.json")).unwrap())
            .unwrap();
    let (mut total, mut passed) = (0, 0);
    for case in cases.as_array().unwrap() {
        let format = match case["format"].as_str().unwrap() {
            "openmetrics-1.0" => Format::OpenMetrics,
            _ => Format::PrometheusText,
        };
        let input = base64(case["input_b64"].as_str().unwrap());
        let should_parse = case["should_parse"].as_bool().unwrap();
        let got = run(&input, format, false);
        total += 1;
        if got.is_ok() == should_parse {
            passed += 1;
        } else {
            println!(
                "  FAIL {:?} {:?}: got {:?}, upstream {:?}",
                format,
                String::from_utf8_lossy(&input),
                got.err(),
                case["upstream_error"]
            );
        }
    }
    println!("textparse-error-cases: {passed}/{total}");
    assert_eq!(total, 109);
    assert_eq!(passed, total);
}

/// Inputs of prometheus/common's fuzz corpus that promtool (prometheus/common's stricter
/// parser) rejects but Prometheus' scrape parser accepts; we follow Prometheus.
const PROMETHEUS_ACCEPTS: &[(&str, &str)] = &[
    ("from_test_parse_error_0", "no newline at the end of the body"),
    ("from_test_parse_error_1", "unknown escape `\\t` in a label value is kept as written"),
    ("from_test_parse_error_7", "quantile label that is not a number"),
    ("from_test_parse_error_12", "second HELP for a family"),
    ("from_test_parse_error_13", "second TYPE for a family"),
    ("from_test_parse_error_14", "TYPE after the family's samples"),
    ("from_test_parse_error_19", "le label that is not a number"),
];

#[test]
fn prometheus_common_corpus() {
    let Some(root) = corpus() else { return };
    let base = root.join("prometheus-common");
    let mut good = (0, 0);
    for e in std::fs::read_dir(base.join("fuzz-corpus/should-parse")).unwrap() {
        let p = e.unwrap().path();
        good.1 += 1;
        match run(&std::fs::read(&p).unwrap(), Format::PrometheusText, false) {
            Ok(_) => good.0 += 1,
            Err(err) => println!("  FAIL {}: {err}", p.display()),
        }
    }
    let mut bad = (0, 0, 0);
    for e in std::fs::read_dir(base.join("fuzz-corpus/should-fail")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        bad.1 += 1;
        let got = run(&std::fs::read(&p).unwrap(), Format::PrometheusText, false);
        let accepted_upstream = PROMETHEUS_ACCEPTS.iter().any(|(n, _)| *n == name);
        match (got.is_err(), accepted_upstream) {
            (true, false) => bad.0 += 1,
            (false, true) => bad.2 += 1,
            (rejected, _) => println!(
                "  FAIL {name}: rejected={rejected}, Prometheus accepts={accepted_upstream}"
            ),
        }
    }
    let text =
        run(&std::fs::read(base.join("testdata/text")).unwrap(), Format::PrometheusText, false)
            .expect("testdata/text parses");
    println!(
        "prometheus-common: should-parse {}/{}, should-fail rejected {}/{} (+{} accepted as Prometheus does), testdata/text {} samples",
        good.0, good.1, bad.0, bad.1, bad.2, text.samples.len()
    );
    assert_eq!(good, (6, 6));
    assert_eq!(bad.0 + bad.2, 20);
    assert_eq!(text.samples.len(), 248);
}

fn sample_lines(body: &[u8]) -> usize {
    body.split(|&c| c == b'\n').filter(|l| !l.is_empty() && !l.starts_with(b"#")).count()
}

#[test]
fn prometheus_textparse_testdata() {
    let Some(root) = corpus() else { return };
    let dir = root.join("prometheus-textparse");
    let mut passed = 0;
    for (file, format) in [
        ("alltypes.237mfs.prom.txt", Format::PrometheusText),
        ("alltypes.237mfs.nometa.prom.txt", Format::PrometheusText),
        ("alltypes.5mfs.om.txt", Format::OpenMetrics),
        ("1histogram.om.txt", Format::OpenMetrics),
    ] {
        let body = std::fs::read(dir.join(file)).unwrap();
        let parsed = run(&body, format, false).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(parsed.samples.len(), sample_lines(&body), "{file}");
        if file == "alltypes.237mfs.prom.txt" {
            assert_eq!(parsed.samples.len(), 1857);
            assert_eq!(parsed.metadata.len(), 237);
        }
        if file.ends_with(".om.txt") {
            let exemplars = parsed.samples.iter().filter(|s| s.exemplar.is_some()).count();
            let expected = body.windows(4).filter(|w| w == b" # {").count();
            assert_eq!(exemplars, expected, "{file}");
        }
        passed += 1;
    }
    println!("prometheus-textparse: {passed}/4 files parse with the expected sample counts");
}
