use async_trait::async_trait;
use strata_model::{is_stale_nan, Labels, MatchOp, Matcher, Queryable, Sample, STALE_NAN_BITS};

use super::check::{almost_equal, EPSILON};
use super::syntax::{parse_descriptor, parse_duration, parse_scalar, parse_values, SeqValue};
use super::{run_script, Outcome, ScriptEngine};
use crate::value::{
    Annotations, MatrixSeries, QueryError, QueryOutput, QueryStats, QueryValue, VectorSample,
};

fn floats(s: &str) -> Vec<f64> {
    parse_values(s)
        .unwrap()
        .into_iter()
        .map(|v| match v {
            SeqValue::Float(f) => f,
            other => panic!("not a float: {other:?}"),
        })
        .collect()
}

#[test]
fn value_sequences() {
    assert_eq!(floats("1+1x3"), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(floats("-2+4x3"), [-2.0, 2.0, 6.0, 10.0]);
    assert_eq!(floats("1-2x4"), [1.0, -1.0, -3.0, -5.0, -7.0]);
    assert_eq!(floats("1x3"), [1.0; 4]);
    // No hex in value sequences: 0x5 is "0, repeated 5 more times".
    assert_eq!(floats("0x5"), [0.0; 6]);
    assert_eq!(floats("0+0x10"), [0.0; 11]);
    assert_eq!(floats("1e3x1 .5 -1.5e-1"), [1000.0, 1000.0, 0.5, -0.15]);
    let v = floats("Inf -Inf +Inf inf");
    assert_eq!(v, [f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::INFINITY]);
    assert!(floats("NaN")[0].is_nan());
    // Increments accumulate by repeated addition.
    let mut acc = 0.0;
    let want: Vec<f64> = (0..=10)
        .map(|_| {
            let v = acc;
            acc += 0.1;
            v
        })
        .collect();
    assert_eq!(floats("0+0.1x10"), want);

    let v = parse_values("1 _ _x2 stale 2").unwrap();
    assert_eq!(v.len(), 6);
    assert_eq!(&v[1..4], [SeqValue::Omitted; 3]);
    assert!(matches!(v[4], SeqValue::Float(f) if f.to_bits() == STALE_NAN_BITS));

    let h = parse_values("{{schema:0 sum:1 buckets:[1 2]}} {{}}x2 {{count:1}}+{{count:1}}x3 _")
        .unwrap();
    assert_eq!(h.iter().filter(|v| **v == SeqValue::Histogram).count(), 1 + 3 + 4);
    assert_eq!(h.last(), Some(&SeqValue::Omitted));

    for bad in ["1+2", "abc", "1x", "1xx2", "{{schema:0", "{{}}y", "1x99999999999", "--1"] {
        assert!(parse_values(bad).is_err(), "{bad} should not parse");
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("0"), Ok(0));
    assert_eq!(parse_duration("5m"), Ok(300_000));
    assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
    assert_eq!(parse_duration("1500ms"), Ok(1500));
    assert_eq!(parse_duration("1d1s"), Ok(86_401_000));
    for bad in ["", "5", "5m1h", "-1m", "1.5m", "1mm", "m"] {
        assert!(parse_duration(bad).is_err(), "{bad} should not parse");
    }
}

#[test]
fn scalar_lines() {
    assert_eq!(parse_scalar("0x1f"), Some(31.0));
    assert_eq!(parse_scalar("010"), Some(8.0));
    assert_eq!(parse_scalar("-3"), Some(-3.0));
    assert_eq!(parse_scalar("1e3"), Some(1000.0));
    assert_eq!(parse_scalar(".5"), Some(0.5));
    assert_eq!(parse_scalar("-Inf"), Some(f64::NEG_INFINITY));
    assert!(parse_scalar("NaN").is_some_and(f64::is_nan));
    for not in ["foo", "1x3", "1 2", "{}", "0x", "inf{}"] {
        assert_eq!(parse_scalar(not), None, "{not}");
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn descriptors() {
    let d = |s: &str| parse_descriptor(s).map(|(l, rest)| (l, rest.to_string()));
    assert_eq!(d("up 1"), Ok((labels(&[("__name__", "up")]), " 1".into())));
    assert_eq!(
        d(r#"m{a="b", c='d', e=`\n`,} 1"#).unwrap().0,
        labels(&[("__name__", "m"), ("a", "b"), ("c", "d"), ("e", "\\n")])
    );
    assert_eq!(d(r#"{__name__="x"}"#).unwrap().0, labels(&[("__name__", "x")]));
    assert_eq!(d("{}").unwrap().0, labels(&[]));
    assert_eq!(
        d(r#"{"my.metric", "a.b"="c\u00e9\x41"}"#).unwrap().0,
        labels(&[("__name__", "my.metric"), ("a.b", "cé\u{41}")])
    );
    // Empty values are not labels.
    assert_eq!(d(r#"m{a=""}"#).unwrap().0, labels(&[("__name__", "m")]));
    for bad in [r#"m{a=~"b"}"#, r#"m{__name__="x"}"#, r#"{a="b""#, r#"{a=b}"#, "1", r#"{a="\q"}"#] {
        assert!(d(bad).is_err(), "{bad} should not parse");
    }
}

#[test]
fn float_comparison() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    assert!(almost_equal(stale, stale, EPSILON));
    assert!(!almost_equal(stale, f64::NAN, EPSILON));
    assert!(!almost_equal(f64::NAN, stale, EPSILON));
    assert!(!almost_equal(stale, 1.0, EPSILON));
    assert!(almost_equal(f64::NAN, -f64::NAN, EPSILON));
    assert!(almost_equal(f64::INFINITY, f64::INFINITY, EPSILON));
    assert!(!almost_equal(f64::INFINITY, f64::NEG_INFINITY, EPSILON));
    assert!(!almost_equal(f64::INFINITY, f64::MAX, EPSILON));
    // Relative epsilon.
    assert!(almost_equal(1_000_000.0, 1_000_000.9, EPSILON));
    assert!(!almost_equal(1_000_000.0, 1_000_003.0, EPSILON));
    assert!(almost_equal(1e-300, 1.0000001e-300, EPSILON));
    assert!(almost_equal(0.1 + 0.2, 0.3, EPSILON));
    // Near zero the difference must be essentially nil.
    assert!(!almost_equal(0.0, 1e-20, EPSILON));
    assert!(almost_equal(0.0, -0.0, EPSILON));
}

/// A tiny engine for the runner's own tests: a bare metric name selects that metric
/// (5m lookback, stale markers hide), `"..."` is a string, `fail` fails, `warn` warns, any
/// other text is parsed as a scalar.
struct FakeEngine;

impl FakeEngine {
    async fn eval(
        &self,
        store: &dyn Queryable,
        q: &str,
        t: i64,
    ) -> Result<QueryOutput, QueryError> {
        let mut annotations = Annotations::default();
        let value = if let Some(s) = q.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            QueryValue::String { t, v: s.to_string() }
        } else if q == "fail" {
            return Err(QueryError::Execution("boom".into()));
        } else if q == "warn" {
            annotations.warn("quantile value should be between 0 and 1, got NaN");
            QueryValue::Vector(Vec::new())
        } else if q.chars().all(|c| c.is_ascii_alphabetic()) {
            let m = Matcher::new(MatchOp::Equal, "__name__", q).unwrap();
            let series = store.select(&super::TEST_TENANT, &[m], t - 300_000 + 1, t).await?;
            let mut out: Vec<VectorSample> = series
                .into_iter()
                .filter_map(|s| {
                    let last = s.samples.last()?;
                    (!is_stale_nan(last.v)).then_some(VectorSample {
                        labels: s.labels,
                        t,
                        v: last.v,
                    })
                })
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            QueryValue::Vector(out)
        } else {
            QueryValue::Scalar { t, v: q.parse().map_err(|_| QueryError::BadData(q.into()))? }
        };
        Ok(QueryOutput { value, annotations, stats: QueryStats::default() })
    }
}

#[async_trait]
impl ScriptEngine for FakeEngine {
    async fn instant(
        &self,
        store: &dyn Queryable,
        q: &str,
        t: i64,
    ) -> Result<QueryOutput, QueryError> {
        self.eval(store, q, t).await
    }

    async fn range(
        &self,
        store: &dyn Queryable,
        q: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryOutput, QueryError> {
        let mut series: Vec<MatrixSeries> = Vec::new();
        let mut t = start;
        while t <= end {
            let points = match self.eval(store, q, t).await?.value {
                QueryValue::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
                QueryValue::Scalar { v, .. } => vec![(Labels::default(), v)],
                _ => return Err(QueryError::BadData("not a range query type".into())),
            };
            for (labels, v) in points {
                match series.iter_mut().find(|s| s.labels == labels) {
                    Some(s) => s.samples.push(Sample { t, v }),
                    None => series.push(MatrixSeries { labels, samples: vec![Sample { t, v }] }),
                }
            }
            t += step;
        }
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let value = QueryValue::Matrix(series);
        Ok(QueryOutput { value, annotations: Annotations::default(), stats: QueryStats::default() })
    }
}

const SCRIPT: &str = r#"
# A comment.
load 5m
  m{a="1"} 0+10x10
  m{a="2"} 1 _ stale
  h {{schema:0 count:1}}

eval instant at 50m m
  m{a="1"} 100.00000001

eval instant at 50m m
  m{a="1"} 101

eval range from 0 to 10m step 5m m
  m{a="1"} 0 10 20
  m{a="2"} 1 1

eval range from 0 to 10m step 5m m
  m{a="1"} 0 10 20
  m{a="2"} 1 _ _

eval instant at 0 31
  0x1f

eval instant at 0 2
  3

eval instant at 0 fail
  expect fail msg: boom

eval instant at 0 fail
  expect fail regex: ^bo+m$

eval instant at 0 fail
  expect fail msg: bang

eval_fail instant at 0 1

eval instant at 0 warn
  expect warn regex: quantile
  expect no_info

eval instant at 0 warn
  expect warn msg: quantile value should be between 0 and 1, got NaN

eval instant at 0 warn
  expect warn msg: PromQL warning: quantile value should be between 0 and 1, got NaN

eval instant at 0 warn
  expect no_warn

eval instant at 0 warn

eval instant at 0 "x"
  expect string "x"

eval instant at 0 h
  h {{schema:0 count:1}}

eval instant at 0 sum(h)

eval instant at 0 m
  m{a="1"} 0 1

eval instant at 0 m{
  {} 1

frobnicate

clear

eval instant at 50m m
"#;

#[tokio::test]
async fn runs_a_script_against_a_fake_engine() {
    let report = run_script("self.test", SCRIPT, &FakeEngine).await;
    let got: Vec<(usize, &str)> = report
        .results
        .iter()
        .map(|r| {
            let kind = match &r.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail(_) => "fail",
                Outcome::Skip(_) => "skip",
            };
            (r.line, kind)
        })
        .collect();
    let want = [
        (8, "pass"),
        (11, "fail"),
        (14, "fail"),
        (18, "pass"),
        (22, "pass"),
        (25, "fail"),
        (28, "pass"),
        (31, "pass"),
        (34, "fail"),
        (37, "fail"),
        (39, "pass"),
        (43, "fail"),
        (46, "pass"),
        (49, "fail"),
        (52, "pass"),
        (54, "pass"),
        (57, "skip"),
        (60, "skip"),
        (62, "fail"),
        (65, "fail"),
        (72, "pass"),
    ];
    for r in &report.results {
        println!("{r}");
    }
    assert_eq!(got, want);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(report.errors[0].line, 68);
    assert_eq!((report.passed(), report.failed(), report.skipped()), (10, 10, 2));
    let msg = |line: usize| match &report.results.iter().find(|r| r.line == line).unwrap().outcome {
        Outcome::Fail(m) | Outcome::Skip(m) => m.clone(),
        Outcome::Pass => String::new(),
    };
    assert!(msg(11).contains("expected 101"), "{}", msg(11));
    assert_eq!(msg(57), "native histogram");
    assert!(msg(60).starts_with("native histogram: reads histogram series h"), "{}", msg(60));
    assert!(msg(62).starts_with("malformed eval"), "{}", msg(62));
    assert!(msg(65).starts_with("parse error"), "{}", msg(65));
}

#[tokio::test]
async fn load_errors_and_unreadable_files_are_reported() {
    let script = "load 1m\n  a 1 2\n\nload 1m\n  a 5\n\nload 1m\n  a _ 2 3\n";
    let report = run_script("x.test", script, &FakeEngine).await;
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(report.errors[0].line, 5);
    assert!(report.errors[0].message.contains("out of order"));

    let report = super::run_file(std::path::Path::new("/nonexistent/x.test"), &FakeEngine).await;
    assert_eq!(report.failed(), 1);
}

#[test]
fn unsupported_syntax_is_named_only_for_known_gaps() {
    use super::unsupported_syntax;
    let err = "invalid promql query";
    for q in [
        "rate(x[5m+1m])",
        "x[step()]",
        "x offset (2 * 2)",
        "x offset -step()",
        "x offset +min_of(step(), 1s)^0",
    ] {
        assert_eq!(unsupported_syntax(q, err), Some("duration expression"), "{q}");
    }
    assert!(unsupported_syntax("increase(x[1m] anchored)", err).is_some());
    assert!(unsupported_syntax("histogram_count(h >/ 2)", err).is_some());
    let empty = "vector selector must contain at least one non-empty matcher";
    assert!(unsupported_syntax(r#"info(m, {data=~".*"})"#, empty).is_some());
    for q in ["rate(x[5m])", "x[1h:5m]", "x[1h:]", "x offset 5m", "sum(x) by (", r#"{a=~".*"}"#] {
        assert_eq!(unsupported_syntax(q, empty), None, "{q}");
    }
}
