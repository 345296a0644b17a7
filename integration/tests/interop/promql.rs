//! The PromQL half of the interop test: the same queries, instant and range, against Debian's
//! Prometheus (2.42) and Strata over the same remote-written samples, answers compared exactly
//! (values within a relative 1e-6).
//!
//! Strata implements Prometheus 3 semantics. The 2.x → 3.x changes that touch these queries are
//! kept out of reach rather than papered over:
//! - Range windows are left-open in 3.x (`(t-r, t]`) and closed in 2.x: every evaluation time is
//!   put at a millisecond phase far from both targets' scrape phases, and all ranges, offsets,
//!   steps and `@` times are whole seconds, so no sample sits on a window's left edge.
//! - 3.x caps a counter's extrapolation towards zero after deciding whether the window start
//!   is near the first sample, 2.x before; the two differ only when a window starts well
//!   before a series' first sample. Counters that start near zero with the test
//!   (`prometheus_*`, `process_cpu_seconds_total`) get windows short enough to start inside
//!   their data at every evaluation time.
//! - The lookback boundary (exclusive in 3.x) is 5 m away; the data is under a minute old.
//! - `holt_winters` (renamed in 3.x) and 3.x-only functions are not used.
//!
//! Queries are chosen so their answers are determined by the samples alone: no `topk`/`bottomk`
//! over values that may tie, no `scalar()` of something that may change between scrapes in a
//! way the systems could order differently.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::common::{get, LabelSet, Resp};

/// `$T` is replaced by the instant evaluation time and `$T10` by ten seconds before it, both as
/// `@` timestamps (`12345.678`).
const QUERIES: &[&str] = &[
    // Plain selectors, regex and negative matchers.
    "up",
    r#"node_cpu_seconds_total{mode=~"idle|user",cpu!="1"}"#,
    r#"node_filesystem_avail_bytes{mountpoint!~"/run.*",fstype!=""}"#,
    r#"{__name__=~"go_(goroutines|threads)",job!~"nod.+"}"#,
    r#"prometheus_http_requests_total{handler=~"/api/v1/.*|/-/ready"}"#,
    // Counters and gauges over windows.
    r#"rate(node_cpu_seconds_total{mode="user"}[10s])"#,
    "irate(node_network_receive_bytes_total[5s])",
    "increase(prometheus_tsdb_head_samples_appended_total[8s])",
    "delta(go_goroutines[10s])",
    "deriv(process_resident_memory_bytes[15s])",
    "rate(prometheus_http_requests_total[8s])",
    "idelta(go_memstats_alloc_bytes[5s])",
    "resets(go_memstats_heap_objects[20s])",
    "changes(go_goroutines[20s])",
    "predict_linear(node_memory_MemAvailable_bytes[15s], 60)",
    "rate(process_cpu_seconds_total[7s])",
    // Aggregations.
    "sum by (mode) (rate(node_cpu_seconds_total[10s]))",
    "avg without (cpu) (node_cpu_seconds_total)",
    "max(node_scrape_collector_duration_seconds)",
    "min by (job) (scrape_duration_seconds)",
    r#"count by (job) ({__name__=~"go_.*"})"#,
    "topk(3, node_scrape_collector_duration_seconds)",
    "bottomk(2, node_scrape_collector_duration_seconds)",
    "quantile(0.9, node_scrape_collector_duration_seconds)",
    "stddev by (mode) (rate(node_cpu_seconds_total[10s]))",
    "stdvar(node_scrape_collector_duration_seconds)",
    r#"count_values("ok", node_scrape_collector_success)"#,
    "group by (job, instance) (up)",
    "sum without (handler) (prometheus_http_requests_total)",
    "count(node_cpu_seconds_total) by (mode)",
    // Arithmetic, vector-scalar and vector-vector.
    "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100",
    "2 * go_goroutines - 1",
    "-go_threads % 7 + go_goroutines ^ 0.5",
    "node_filesystem_avail_bytes / on (device, mountpoint, fstype) node_filesystem_size_bytes",
    "rate(node_cpu_seconds_total[10s]) / ignoring (mode) group_left \
     sum without (mode) (rate(node_cpu_seconds_total[10s]))",
    "sum without (mode) (node_cpu_seconds_total) / ignoring (mode) group_right \
     node_cpu_seconds_total",
    "up * on (instance) group_left (version, goversion) prometheus_build_info",
    "go_memstats_alloc_bytes - on (job, instance) go_memstats_heap_alloc_bytes",
    // Comparisons, filtering and bool.
    "process_resident_memory_bytes > 1e6",
    "go_goroutines > bool 10",
    "up == 1",
    "node_scrape_collector_duration_seconds >= on () group_left () \
     avg(node_scrape_collector_duration_seconds)",
    "node_scrape_collector_duration_seconds < bool 0.001",
    "1 < bool 2",
    // Set operators.
    r#"node_cpu_seconds_total{mode="idle"} and on (cpu) node_cpu_seconds_total{mode="user"}"#,
    "go_goroutines or node_load1",
    r#"{__name__=~"go_(goroutines|threads)"} unless on (job) up{job="node"}"#,
    // Histograms.
    "histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[8s])))",
    "histogram_quantile(0.5, sum by (le, handler) (prometheus_http_request_duration_seconds_bucket))",
    "histogram_quantile(0.99, prometheus_tsdb_compaction_chunk_range_seconds_bucket)",
    "histogram_quantile(0.75, rate(prometheus_http_response_size_bytes_bucket[8s]))",
    // *_over_time.
    "avg_over_time(go_goroutines[10s])",
    "max_over_time(process_resident_memory_bytes[15s])",
    "min_over_time(scrape_duration_seconds[20s])",
    "sum_over_time(scrape_samples_scraped[10s])",
    "count_over_time(up[15s])",
    "quantile_over_time(0.5, go_memstats_alloc_bytes[20s])",
    "stddev_over_time(go_memstats_heap_objects[20s])",
    "last_over_time(go_goroutines[10s])",
    "present_over_time(up[5s])",
    // Subqueries.
    r#"max_over_time(rate(node_cpu_seconds_total{mode="user"}[5s])[20s:2s])"#,
    "avg_over_time(sum(go_goroutines)[10s:1s])",
    "rate(prometheus_tsdb_head_samples_appended_total[8s:1s])",
    "min_over_time(deriv(go_memstats_alloc_bytes[5s])[15s:3s] offset 2s)",
    // offset and @.
    "go_goroutines offset 5s",
    r#"rate(node_cpu_seconds_total{mode="system"}[10s] offset 3s)"#,
    "go_goroutines - go_goroutines offset 10s",
    "go_goroutines @ $T10",
    "rate(process_cpu_seconds_total[10s] @ $T)",
    "go_goroutines @ start()",
    "max_over_time(go_goroutines[5s] @ end())",
    "sum(rate(prometheus_http_requests_total[10s] @ end() offset 2s))",
    "go_memstats_alloc_bytes - go_memstats_alloc_bytes @ start()",
    // Labels, absence, time, scalar/vector, sorting, math.
    r#"label_replace(up, "port", "$1", "instance", ".*:(\\d+)")"#,
    r#"label_join(node_filesystem_avail_bytes, "dev_mount", "@", "device", "mountpoint")"#,
    r#"absent(nonexistent_metric{job="x"})"#,
    "absent(up)",
    "absent_over_time(nonexistent_metric[10s])",
    "time()",
    "time() - process_start_time_seconds",
    "timestamp(up)",
    "minute(process_start_time_seconds) + hour(process_start_time_seconds)",
    "day_of_week() + days_in_month() + year(vector(time()))",
    "vector(1) + scalar(count(up))",
    r#"scalar(up{job="node"}) * go_threads"#,
    "sort(node_scrape_collector_duration_seconds)",
    "sort_desc(go_threads)",
    "abs(delta(go_goroutines[10s])) + sqrt(go_threads) + ln(go_threads)",
    "clamp(go_goroutines, 10, 20) + round(node_load1, 0.1) + ceil(node_load5) + floor(node_load15)",
    "exp(-go_threads) + sgn(delta(go_memstats_alloc_bytes[10s])) + log2(go_threads)",
    "1 + 2 * 3",
    // KNOWN DIFFERENCE: Strata always removes `__name__` late (Prometheus 3's
    // `promql-delayed-name-removal`, off by default there), so an aggregation over a range
    // function of several metrics, e.g.
    // `sum by (job) (rate({__name__=~"go_memstats_alloc_bytes_total|process_cpu_seconds_total"}[10s]))`
    // or `sum(count_over_time({__name__=~".+"}[5m]))`, answers in Strata where Prometheus 2.42
    // (and 3.x by default) fail with "vector cannot contain metrics with the same labelset".
];

/// Relative tolerance of the comparison, with an absolute floor for values that cancel to
/// (almost) zero, where summation order decides the last bits.
const REL_TOL: f64 = 1e-6;
const ABS_FLOOR: f64 = 1e-12;

/// Instants and ranges, as sent to both servers.
pub struct Times {
    /// The instant evaluation time and the range end (ms).
    pub t_ms: i64,
    /// How far the range goes back (ms) and its step (s).
    pub range_ms: i64,
    pub step_s: i64,
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// The queries with their `@` placeholders filled in.
pub fn queries(times: &Times) -> Vec<String> {
    QUERIES
        .iter()
        .map(|q| q.replace("$T10", &secs(times.t_ms - 10_000)).replace("$T", &secs(times.t_ms)))
        .collect()
}

/// A ms phase (0..1000) as far as possible from every phase in `taken` (scrape timestamps
/// modulo a second), so no whole-second window edge lands on a sample.
pub fn free_phase(taken: &[i64]) -> i64 {
    let dist = |a: i64, b: i64| {
        let d = (a - b).rem_euclid(1000);
        d.min(1000 - d)
    };
    (0..1000)
        .max_by_key(|&p| taken.iter().map(|&s| dist(p, s)).min().unwrap_or(1000))
        .unwrap_or(500)
}

/// A query answer in comparable form.
#[derive(Debug)]
enum Answer {
    Scalar(i64, f64),
    Str(i64, String),
    /// In answer order (kept for `sort`), one sample per series.
    Vector(Vec<(LabelSet, i64, f64)>),
    Matrix(BTreeMap<LabelSet, Vec<(i64, f64)>>),
}

fn ts_ms(v: &Value) -> i64 {
    (v.as_f64().expect("timestamp is a number") * 1000.0).round() as i64
}

fn float(v: &Value) -> f64 {
    match v.as_str().expect("sample value is a string") {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap_or_else(|e| panic!("sample value {s:?}: {e}")),
    }
}

fn labels(v: &Value) -> LabelSet {
    v.as_object()
        .expect("metric is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_string()))
        .collect()
}

fn point(v: &Value) -> (i64, f64) {
    (ts_ms(&v[0]), float(&v[1]))
}

fn parse(data: &Value) -> Answer {
    let r = &data["result"];
    match data["resultType"].as_str() {
        Some("scalar") => {
            let (t, v) = point(r);
            Answer::Scalar(t, v)
        }
        Some("string") => Answer::Str(ts_ms(&r[0]), r[1].as_str().unwrap_or("").to_string()),
        Some("vector") => Answer::Vector(
            r.as_array()
                .expect("vector result is an array")
                .iter()
                .map(|s| {
                    assert!(s.get("histogram").is_none(), "native histogram in {s}");
                    let (t, v) = point(&s["value"]);
                    (labels(&s["metric"]), t, v)
                })
                .collect(),
        ),
        Some("matrix") => Answer::Matrix(
            r.as_array()
                .expect("matrix result is an array")
                .iter()
                .map(|s| {
                    assert!(s.get("histograms").is_none(), "native histograms in {s}");
                    let points = s["values"].as_array().expect("values").iter().map(point);
                    (labels(&s["metric"]), points.collect())
                })
                .collect(),
        ),
        other => panic!("unknown resultType {other:?} in {data}"),
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b
        || (a.is_nan() && b.is_nan())
        || (a.is_finite()
            && b.is_finite()
            && (a - b).abs() <= (REL_TOL * a.abs().max(b.abs())).max(ABS_FLOOR))
}

fn fmt_labels(l: &LabelSet) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Differences between Prometheus's answer `p` and Strata's `s`, one line each (empty when
/// equal). `ordered`: the order of the vector's values matters too (`sort`, `topk`).
fn diff(p: &Answer, s: &Answer, ordered: bool) -> Vec<String> {
    let mut out = Vec::new();
    match (p, s) {
        (Answer::Scalar(pt, pv), Answer::Scalar(st, sv)) => {
            if pt != st || !same(*pv, *sv) {
                out.push(format!("scalar: Prometheus {pv} @{pt}, Strata {sv} @{st}"));
            }
        }
        (Answer::Str(pt, pv), Answer::Str(st, sv)) => {
            if pt != st || pv != sv {
                out.push(format!("string: Prometheus {pv:?} @{pt}, Strata {sv:?} @{st}"));
            }
        }
        (Answer::Vector(pv), Answer::Vector(sv)) => {
            let pm: BTreeMap<_, _> = pv.iter().map(|(l, t, v)| (l, (*t, *v))).collect();
            let sm: BTreeMap<_, _> = sv.iter().map(|(l, t, v)| (l, (*t, *v))).collect();
            if pm.len() != pv.len() || sm.len() != sv.len() {
                out.push(format!(
                    "duplicate label sets: Prometheus {} series ({} distinct), Strata {} ({})",
                    pv.len(),
                    pm.len(),
                    sv.len(),
                    sm.len()
                ));
            }
            for (l, (pt, pval)) in &pm {
                match sm.get(l) {
                    None => out.push(format!("missing in Strata: {} {pval}", fmt_labels(l))),
                    Some((st, sval)) if st != pt || !same(*pval, *sval) => out.push(format!(
                        "{}: Prometheus {pval} @{pt}, Strata {sval} @{st}",
                        fmt_labels(l)
                    )),
                    Some(_) => {}
                }
            }
            for (l, (_, sval)) in &sm {
                if !pm.contains_key(l) {
                    out.push(format!("extra in Strata: {} {sval}", fmt_labels(l)));
                }
            }
            // Order by value only, so that ties may come in either order.
            let values = |v: &[(LabelSet, i64, f64)]| v.iter().map(|s| s.2).collect::<Vec<_>>();
            let (po, so) = (values(pv), values(sv));
            if ordered && out.is_empty() && !po.iter().zip(&so).all(|(a, b)| same(*a, *b)) {
                out.push(format!("order of values: Prometheus {po:?}, Strata {so:?}"));
            }
        }
        (Answer::Matrix(pm), Answer::Matrix(sm)) => {
            for (l, pp) in pm {
                let Some(sp) = sm.get(l) else {
                    out.push(format!("missing in Strata: {} {pp:?}", fmt_labels(l)));
                    continue;
                };
                let pts: Vec<i64> = pp.iter().map(|p| p.0).collect();
                let sts: Vec<i64> = sp.iter().map(|p| p.0).collect();
                if pts != sts {
                    out.push(format!(
                        "{}: timestamps: Prometheus {pts:?}, Strata {sts:?}",
                        fmt_labels(l)
                    ));
                    continue;
                }
                for ((t, a), (_, b)) in pp.iter().zip(sp) {
                    if !same(*a, *b) {
                        out.push(format!("{} @{t}: Prometheus {a}, Strata {b}", fmt_labels(l)));
                    }
                }
            }
            for (l, sp) in sm {
                if !pm.contains_key(l) {
                    out.push(format!("extra in Strata: {} {sp:?}", fmt_labels(l)));
                }
            }
        }
        _ => out.push(format!("result types differ: Prometheus {p:?}, Strata {s:?}")),
    }
    out
}

/// Number of series and points, for the summary.
fn size(a: &Answer) -> (usize, usize) {
    match a {
        Answer::Scalar(..) | Answer::Str(..) => (1, 1),
        Answer::Vector(v) => (v.len(), v.len()),
        Answer::Matrix(m) => (m.len(), m.values().map(Vec::len).sum()),
    }
}

async fn ask(client: &reqwest::Client, base: &str, path: &str, p: &[(&str, &str)]) -> Resp {
    get(client, base, path, p, None).await
}

/// Runs every query instant and range on both servers; returns one report line per
/// difference (grouped under the query), and prints a summary.
pub async fn compare(
    client: &reqwest::Client,
    prom: &str,
    strata: &str,
    times: &Times,
) -> (usize, String) {
    let (t, start) = (secs(times.t_ms), secs(times.t_ms - times.range_ms));
    let step = times.step_s.to_string();
    let started = std::time::Instant::now();
    let mut report = String::new();
    let (mut failed, mut series, mut points) = (0, 0, 0);
    let mut empty = Vec::new();
    let qs = queries(times);
    for q in &qs {
        let ordered = ["sort(", "sort_desc(", "topk(", "bottomk("].iter().any(|p| q.starts_with(p));
        let instant = [("query", q.as_str()), ("time", t.as_str())];
        let range = [
            ("query", q.as_str()),
            ("start", start.as_str()),
            ("end", t.as_str()),
            ("step", step.as_str()),
        ];
        let calls = [
            ("instant", "/api/v1/query", &instant[..]),
            ("range", "/api/v1/query_range", &range[..]),
        ];
        for (kind, path, params) in calls {
            let pr = ask(client, prom, path, params).await;
            let sr = ask(client, strata, path, params).await;
            let lines = if pr.status != 200 {
                vec![format!(
                    "Prometheus answered {}: {}; Strata {}: {}",
                    pr.status, pr.body, sr.status, sr.body
                )]
            } else if sr.status == 200 {
                let pa = parse(&pr.json()["data"]);
                let sa = parse(&sr.json()["data"]);
                let (n, p) = size(&pa);
                if n == 0 {
                    empty.push(format!("{kind} {q}"));
                }
                series += n;
                points += p;
                diff(&pa, &sa, ordered && kind == "instant")
            } else {
                vec![format!("Strata answered {}: {}", sr.status, sr.body)]
            };
            if !lines.is_empty() {
                failed += 1;
                let when = if kind == "instant" {
                    format!("time={t}")
                } else {
                    format!("start={start} end={t} step={step}")
                };
                let _ = writeln!(report, "--- {kind} {q}  ({when}), {} differences:", lines.len());
                for l in lines.iter().take(8) {
                    let _ = writeln!(report, "    {l}");
                }
            }
        }
    }
    println!(
        "promql: {} queries × (instant, range) at t={t}, range [{start}, {t}] step {step}s: \
         {series} series, {points} points compared, {failed} differ, in {:.1}s",
        qs.len(),
        started.elapsed().as_secs_f64()
    );
    // Absence checks answer nothing on purpose; anything else here compares little.
    println!("promql: empty on both: {empty:?}");
    (failed, report)
}
