//! Interop with the real thing: Debian's `prometheus` (2.42) scrapes itself and
//! `prometheus-node-exporter` (1.5) every second and remote-writes everything to Strata. Once
//! Prometheus stops scraping, Strata's series, label names and label values must equal
//! Prometheus's own exactly, and its metadata must match; then again after a kill -9 and restart
//! of Strata. About 90 PromQL queries (see `interop/promql.rs`), instant and range, must
//! answer the same on both, before and after the restart. Skipped (with a message) when the programs are not on PATH, unless
//! `STRATA_REQUIRE_INTEROP=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "interop/promql.rs"]
mod promql;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Long enough for the PromQL windows (up to 20 s, over a 10 s range) to hold data.
const SCRAPE_FOR: Duration = Duration::from_secs(30);
/// Selectors whose series must match too: Prometheus is the oracle for matcher semantics.
const SELECTORS: [&str; 6] = [
    "up",
    r#"node_cpu_seconds_total{mode=~"idle|user",cpu!="1"}"#,
    r#"{job="node",__name__=~"node_(cpu|memory)_.*"}"#,
    r#"{__name__=~"prometheus_http_requests_total|scrape_.+",handler!~"/api/.*"}"#,
    r#"{__name__=~".+",instance=~".*:.*",job!="node"}"#,
    r#"{__name__=~"node_.*",device=""}"#,
];
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);

fn prometheus_config(strata: &str, targets: Option<(u16, u16)>) -> String {
    let mut c = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
    if let Some((prom, node)) = targets {
        c += &format!(
            "scrape_configs:\n\
             \x20 - job_name: prometheus\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{prom}']}}]\n\
             \x20 - job_name: node\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{node}']}}]\n"
        );
    }
    c += &format!(
        "remote_write:\n\
         \x20 - url: {strata}/api/v1/push\n\
         \x20   queue_config: {{batch_send_deadline: 1s}}\n\
         \x20   metadata_config: {{send_interval: 1s}}\n"
    );
    c
}

/// One Prometheus-compatible API endpoint and how to read it.
struct Api<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
}

impl Api<'_> {
    async fn data(&self, path: &str, params: &[(&str, &str)]) -> Value {
        data_of(
            get(self.client, self.base, path, params, None).await,
            &format!("{}{path}", self.base),
        )
    }
}

/// What is compared between the two servers over one time window.
#[derive(Debug, PartialEq)]
struct View {
    series: BTreeSet<LabelSet>,
    labels: Vec<String>,
    names: Vec<String>,
    jobs: Vec<String>,
    instances: Vec<String>,
    /// Series for each of `SELECTORS`, and `mode` values narrowed by `match[]`.
    selected: Vec<BTreeSet<LabelSet>>,
    modes: Vec<String>,
}

async fn view(api: &Api<'_>, start: &str, end: &str) -> View {
    let w = [("start", start), ("end", end)];
    let sel = [("match[]", r#"{__name__=~".+"}"#), ("start", start), ("end", end)];
    View {
        series: series_set(&api.data("/api/v1/series", &sel).await),
        labels: strings(&api.data("/api/v1/labels", &w).await),
        names: strings(&api.data("/api/v1/label/__name__/values", &w).await),
        jobs: strings(&api.data("/api/v1/label/job/values", &w).await),
        instances: strings(&api.data("/api/v1/label/instance/values", &w).await),
        selected: {
            let mut v = Vec::new();
            for m in SELECTORS {
                v.push(series_set(
                    &api.data("/api/v1/series", &[("match[]", m), w[0], w[1]]).await,
                ));
            }
            v
        },
        modes: {
            let p = [("match[]", "node_cpu_seconds_total"), w[0], w[1]];
            strings(&api.data("/api/v1/label/mode/values", &p).await)
        },
    }
}

fn assert_same(prom: &View, strata: &View, when: &str) {
    let missing: Vec<_> = prom.series.difference(&strata.series).take(10).collect();
    let extra: Vec<_> = strata.series.difference(&prom.series).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{when}: series differ: Prometheus {}, Strata {}; missing in Strata (first 10): {missing:?}; \
         extra in Strata: {extra:?}",
        prom.series.len(),
        strata.series.len()
    );
    assert_eq!(strata.labels, prom.labels, "{when}: /api/v1/labels");
    assert_eq!(strata.names, prom.names, "{when}: /api/v1/label/__name__/values");
    assert_eq!(strata.jobs, prom.jobs, "{when}: /api/v1/label/job/values");
    assert_eq!(strata.instances, prom.instances, "{when}: /api/v1/label/instance/values");
    for (i, sel) in SELECTORS.iter().enumerate() {
        let (p, s) = (&prom.selected[i], &strata.selected[i]);
        let missing: Vec<_> = p.difference(s).take(5).collect();
        let extra: Vec<_> = s.difference(p).take(5).collect();
        assert!(
            p == s,
            "{when}: series for {sel}: Prometheus {}, Strata {}; missing {missing:?}; extra {extra:?}",
            p.len(),
            s.len()
        );
    }
    assert_eq!(strata.modes, prom.modes, "{when}: mode values of node_cpu_seconds_total");
    println!(
        "{when}: equal: {} series, {} label names, {} metric names, jobs {:?}, instances {:?}, \
         series per selector {:?}, cpu modes {:?}",
        prom.series.len(),
        prom.labels.len(),
        prom.names.len(),
        prom.jobs,
        prom.instances,
        prom.selected.iter().map(BTreeSet::len).collect::<Vec<_>>(),
        prom.modes
    );
}

fn secs(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// Evaluation times for the PromQL comparison: shortly before the last scrape (later, the
/// stale markers written when scraping stopped take over), at a millisecond phase away from
/// every scrape timestamp (see `promql.rs`).
async fn promql_times(prom: &Api<'_>, end: &str) -> promql::Times {
    let raw = prom.data("/api/v1/query", &[("query", "up[2m]"), ("time", end)]).await;
    let mut phases = Vec::new();
    let mut last = i64::MAX;
    for s in raw["result"].as_array().expect("matrix") {
        let ts: Vec<i64> = s["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| (v[0].as_f64().expect("timestamp") * 1000.0).round() as i64)
            .collect();
        last = last.min(*ts.last().expect("samples"));
        phases.extend(ts.iter().map(|t| t.rem_euclid(1000)));
    }
    assert!(last != i64::MAX, "no `up` samples in Prometheus: {raw}");
    let phase = promql::free_phase(&phases);
    let mut t_ms = (last - 1000).div_euclid(1000) * 1000 + phase;
    if t_ms > last - 1000 {
        t_ms -= 1000;
    }
    promql::Times { t_ms, range_ms: 10_000, step_s: 1 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_remote_write_matches_prometheus() {
    if !require_program("prometheus") || !require_program("prometheus-node-exporter") {
        return;
    }
    let started = Instant::now();
    let window_start = secs(now_ms() - 60_000);
    let mut strata = Strata::start().await;
    let tmp = tempfile::Builder::new().prefix("strata-interop-").tempdir().unwrap();
    let client = http_client_builder().timeout(Duration::from_secs(30)).build().unwrap();

    let (node, node_port) = start_node_exporter(&client, tmp.path()).await;

    let prom_port = free_port();
    let prom_base = format!("http://127.0.0.1:{prom_port}");
    let config_file = tmp.path().join("prometheus.yml");
    std::fs::write(&config_file, prometheus_config(&strata.base, Some((prom_port, node_port))))
        .unwrap();
    let prom_args = [
        format!("--config.file={}", config_file.display()),
        format!("--storage.tsdb.path={}", tmp.path().join("prometheus-data").display()),
        format!("--web.listen-address=127.0.0.1:{prom_port}"),
        "--storage.remote.flush-deadline=5s".into(),
        "--web.enable-lifecycle".into(),
    ];
    let prom_log = tmp.path().join("prometheus.log");
    let mut prom = Guard::spawn("prometheus", &which("prometheus"), &prom_args, &prom_log);
    let prom_started = Instant::now();
    wait_ok(&client, &format!("{prom_base}/-/ready"), &mut prom, Duration::from_secs(30)).await;
    let prom_api = Api { client: &client, base: &prom_base };

    // Prometheus serves metadata from its active targets only: read it while they exist.
    let md_params = [("metric", "node_cpu_seconds_total")];
    let prom_md = loop {
        let md = prom_api.data("/api/v1/metadata", &md_params).await;
        if md.as_object().is_some_and(|m| !m.is_empty()) {
            break md;
        }
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "Prometheus never scraped node_exporter"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(prom_md["node_cpu_seconds_total"][0]["type"], "counter", "{prom_md}");
    tokio::time::sleep(SCRAPE_FOR.saturating_sub(prom_started.elapsed())).await;

    // Stop scraping (remote_write stays) so Prometheus's data stops changing.
    std::fs::write(&config_file, prometheus_config(&strata.base, None)).unwrap();
    let r = client.post(format!("{prom_base}/-/reload")).send().await.unwrap();
    assert!(
        r.status().is_success(),
        "reload: {} {}",
        r.status(),
        r.text().await.unwrap_or_default()
    );

    // Wait until Strata has as many series as Prometheus.
    let strata_api = Api { client: &client, base: &strata.base };
    let all = [("match[]", r#"{__name__=~".+"}"#)];
    let converge_start = Instant::now();
    loop {
        let p = series_set(&prom_api.data("/api/v1/series", &all).await).len();
        let s = series_set(&strata_api.data("/api/v1/series", &all).await).len();
        if p > 0 && p == s {
            println!("converged: {p} series after {:.1}s", converge_start.elapsed().as_secs_f64());
            break;
        }
        assert!(
            converge_start.elapsed() < CONVERGE_WITHIN,
            "Strata has {s} series, Prometheus {p}, after {CONVERGE_WITHIN:?}; Prometheus log:\n{}",
            log_tail(&prom_log, 3000)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Series are there; now wait for every sample (remote write sends in batches).
    let end = secs(now_ms());
    let raw = [("query", r#"{__name__=~".+"}[5m]"#), ("time", end.as_str())];
    let points = |data: &Value| -> usize {
        let series = data["result"].as_array().expect("matrix");
        series.iter().map(|s| s["values"].as_array().map_or(0, Vec::len)).sum()
    };
    loop {
        let p = points(&prom_api.data("/api/v1/query", &raw).await);
        let s = points(&strata_api.data("/api/v1/query", &raw).await);
        if p == s {
            println!("converged: {p} samples");
            break;
        }
        assert!(converge_start.elapsed() < CONVERGE_WITHIN, "samples: Prometheus {p}, Strata {s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let times = promql_times(&prom_api, &end).await;

    let prom_view = view(&prom_api, &window_start, &end).await;
    assert!(prom_view.jobs == ["node", "prometheus"], "Prometheus jobs: {:?}", prom_view.jobs);
    let check = |strata_view: View, when: &'static str| {
        assert_same(&prom_view, &strata_view, when);
    };
    check(view(&strata_api, &window_start, &end).await, "after remote-write");
    let strata_md = strata_api.data("/api/v1/metadata", &md_params).await;
    assert_eq!(strata_md, prom_md, "metadata of node_cpu_seconds_total");

    let (failed, report) = promql::compare(&client, &prom_base, &strata.base, &times).await;
    assert!(failed == 0, "PromQL answers differ ({failed}):\n{report}");

    // kill -9 and restart Strata: the same answers straight away.
    strata.restart().await;
    let strata_api = Api { client: &client, base: &strata.base };
    check(view(&strata_api, &window_start, &end).await, "after kill -9 and restart");
    let strata_md = strata_api.data("/api/v1/metadata", &md_params).await;
    assert_eq!(strata_md, prom_md, "metadata of node_cpu_seconds_total after restart");
    println!("metadata equal: {strata_md}");
    let (failed, report) = promql::compare(&client, &prom_base, &strata.base, &times).await;
    assert!(failed == 0, "PromQL answers differ after restart ({failed}):\n{report}");
    println!("interop: done in {:.1}s", started.elapsed().as_secs_f64());
    drop(prom);
    drop(node);
}
