//! Scraping interop with the real thing: Strata and Debian's `prometheus` (2.42) get the same
//! `scrape_configs` (one YAML text, pasted into both) and scrape, every second and at the same
//! time, a real `prometheus-node-exporter`, a real Python `prometheus_client` app
//! (`scrape_interop/model_server.py`: counters, a histogram, a summary, info and enum metrics,
//! the client's process and platform collectors) and a DCGM-exporter-style target (a static
//! exposition built here from `../shared/conformance/dcgm/default-counters.csv`). Then the
//! series (names and label sets), label names and values, targets and per-target metadata each
//! reports must be the same, and the DCGM series must carry their labels (`gpu`, `UUID`,
//! `device`, `modelName`, `Hostname`) and values intact. Skipped (with a message) when the
//! programs are missing, unless `STRATA_REQUIRE_INTEROP=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const GPUS: usize = 4;
/// Scraping both sides do before the comparison, after every target is up on both.
const SCRAPE_FOR: Duration = Duration::from_secs(6);

/// Whether python3 can import `prometheus_client`; as `require_program` when it cannot.
fn require_prometheus_client() -> bool {
    let ok = std::process::Command::new(which("python3"))
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    require(ok, "python3 cannot import prometheus_client (pip install prometheus_client)")
}

/// A DCGM-exporter scrape: every active field of `default-counters.csv` for `GPUS` GPUs, with
/// the exporter's labels; fields of type `label` become labels of every series, as the exporter
/// does. Values are fixed, so both servers must store the same ones.
fn dcgm_exposition(csv: &str) -> String {
    let mut fields = Vec::new();
    let mut label_fields = Vec::new();
    for line in csv.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, ',').map(str::trim);
        let (Some(name), Some(kind), Some(help)) = (parts.next(), parts.next(), parts.next())
        else {
            panic!("bad line in default-counters.csv: {line}");
        };
        if kind == "label" {
            label_fields.push(name.to_string());
        } else {
            fields.push((name.to_string(), kind.to_string(), help.to_string()));
        }
    }
    assert!(fields.len() >= 20, "default-counters.csv has {} fields", fields.len());
    let mut out = String::new();
    for (i, (name, kind, help)) in fields.iter().enumerate() {
        out += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for gpu in 0..GPUS {
            let mut labels = format!(
                "gpu=\"{gpu}\",UUID=\"GPU-{gpu:08x}-7a1e-4c2b-9d3f-0000000000{gpu:02}\",\
                 pci_bus_id=\"00000000:{:02X}:00.0\",device=\"nvidia{gpu}\",\
                 modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"gpu-node-1\"",
                0x17 + gpu
            );
            for l in &label_fields {
                labels += &format!(",{l}=\"550.54.15\"");
            }
            out += &format!("{name}{{{labels}}} {}\n", dcgm_value(i, gpu));
        }
    }
    out
}

fn dcgm_value(field: usize, gpu: usize) -> f64 {
    (field * 100 + gpu) as f64 + 0.25
}

/// Serves `body` as the text format on every request, like the exporter's `/metrics`.
async fn serve_static(listener: TcpListener, body: String) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { return };
        let body = body.clone();
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 2048];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// The `scrape_configs` both servers get, word for word.
fn scrape_config(node: u16, app: u16, dcgm: u16) -> String {
    format!(
        "global:\n\
         \x20 scrape_interval: 1s\n\
         \x20 scrape_timeout: 1s\n\
         scrape_configs:\n\
         \x20 - job_name: node\n\
         \x20   static_configs:\n\
         \x20     - targets: ['127.0.0.1:{node}']\n\
         \x20 - job_name: model-server\n\
         \x20   static_configs:\n\
         \x20     - targets: ['127.0.0.1:{app}']\n\
         \x20       labels: {{team: inference}}\n\
         \x20   metric_relabel_configs:\n\
         \x20     - source_labels: [__name__]\n\
         \x20       regex: python_gc_.+\n\
         \x20       action: drop\n\
         \x20 - job_name: dcgm\n\
         \x20   static_configs:\n\
         \x20     - targets: ['127.0.0.1:{dcgm}']\n\
         \x20   relabel_configs:\n\
         \x20     - source_labels: [__address__]\n\
         \x20       regex: '127\\.0\\.0\\.1:(\\d+)'\n\
         \x20       target_label: exporter_port\n\
         \x20       replacement: $1\n"
    )
}

async fn data(client: &reqwest::Client, base: &str, path: &str, params: &[(&str, &str)]) -> Value {
    data_of(get(client, base, path, params, None).await, &format!("{base}{path}"))
}

/// Waits until `up` is 1 for all three jobs.
async fn wait_all_up(client: &reqwest::Client, base: &str, who: &str, log: &Path) {
    let started = Instant::now();
    loop {
        let d = data(client, base, "/api/v1/query", &[("query", "up == 1")]).await;
        let jobs: BTreeSet<String> = d["result"]
            .as_array()
            .map(|r| {
                r.iter().filter_map(|s| s["metric"]["job"].as_str().map(String::from)).collect()
            })
            .unwrap_or_default();
        if jobs.len() == 3 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{who}: targets up after 30 s: {jobs:?}; targets: {}\nlog:\n{}",
            data(client, base, "/api/v1/targets", &[]).await,
            log_tail(log, 3000)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Series of one job over the window, as label sets.
async fn job_series(
    client: &reqwest::Client,
    base: &str,
    job: &str,
    start: &str,
    end: &str,
) -> BTreeSet<LabelSet> {
    let m = format!("{{job=\"{job}\"}}");
    series_set(
        &data(client, base, "/api/v1/series", &[("match[]", &m), ("start", start), ("end", end)])
            .await,
    )
}

/// Prometheus 3 normalizes the `le` of histogram buckets and the `quantile` of summaries to
/// OpenMetrics floats on ingestion (`quantile="0"` from the text format is stored as
/// `quantile="0.0"`), and so does Strata; Debian's Prometheus 2.42 stores them as scraped. This
/// maps 2.42's label sets to 3.x's, the one deliberate difference in this comparison.
fn as_prometheus_3(series: BTreeSet<LabelSet>) -> BTreeSet<LabelSet> {
    series
        .into_iter()
        .map(|mut l| {
            let is_bucket = l.get("__name__").is_some_and(|n| n.ends_with("_bucket"));
            for key in ["le", "quantile"] {
                if key == "le" && !is_bucket {
                    continue;
                }
                if let Some(v) = l.get_mut(key) {
                    let integral =
                        v.parse::<f64>().is_ok_and(|f| f.is_finite() && f.fract() == 0.0);
                    if integral && !v.contains(['.', 'e', 'E']) {
                        v.push_str(".0");
                    }
                }
            }
            l
        })
        .collect()
}

/// What `/api/v1/targets` says about each target that both servers must agree on.
fn targets_view(d: &Value) -> BTreeMap<String, Value> {
    d["activeTargets"]
        .as_array()
        .expect("activeTargets")
        .iter()
        .map(|t| {
            let key = t["scrapeUrl"].as_str().unwrap_or_default().to_string();
            let keep = serde_json::json!({
                "discoveredLabels": t["discoveredLabels"],
                "labels": t["labels"],
                "scrapePool": t["scrapePool"],
                "scrapeUrl": t["scrapeUrl"],
                "health": t["health"],
                "lastError": t["lastError"],
                "scrapeInterval": t["scrapeInterval"],
                "scrapeTimeout": t["scrapeTimeout"],
            });
            (key, keep)
        })
        .collect()
}

/// `/api/v1/targets/metadata` as a sorted list (Prometheus lists targets in map order).
fn metadata_view(d: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        d.as_array().expect("metadata list").iter().map(Value::to_string).collect();
    v.sort();
    v
}

fn diff<T: Ord + std::fmt::Debug + Clone>(want: &BTreeSet<T>, got: &BTreeSet<T>) -> String {
    let missing: Vec<_> = want.difference(got).take(8).cloned().collect();
    let extra: Vec<_> = got.difference(want).take(8).cloned().collect();
    format!("missing in Strata (first 8): {missing:?}\nextra in Strata (first 8): {extra:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strata_scrapes_what_prometheus_scrapes() {
    if !require_program("prometheus")
        || !require_program("prometheus-node-exporter")
        || !require_prometheus_client()
    {
        return;
    }
    let csv_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/dcgm/default-counters.csv");
    let Ok(csv) = std::fs::read_to_string(&csv_path) else {
        println!("skipped: {} not found", csv_path.display());
        return;
    };
    let started = Instant::now();
    let window_start = format!("{:.3}", (now_ms() - 5_000) as f64 / 1000.0);
    let tmp = tempfile::Builder::new().prefix("strata-scrape-interop-").tempdir().unwrap();
    let client = http_client_builder().timeout(Duration::from_secs(30)).build().unwrap();

    // The targets.
    let (node, node_port) = start_node_exporter(&client, tmp.path()).await;
    let app_port = free_port();
    let app_script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../integration/tests/scrape_interop/model_server.py");
    let mut app = Guard::spawn(
        "model_server.py",
        &which("python3"),
        &[app_script.display().to_string(), app_port.to_string()],
        &tmp.path().join("model_server.log"),
    );
    let dcgm_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dcgm_port = dcgm_listener.local_addr().unwrap().port();
    let exposition = dcgm_exposition(&csv);
    tokio::spawn(serve_static(dcgm_listener, exposition.clone()));
    wait_ok(
        &client,
        &format!("http://127.0.0.1:{app_port}/metrics"),
        &mut app,
        Duration::from_secs(30),
    )
    .await;

    // The two scrapers, same configuration.
    let config = scrape_config(node_port, app_port, dcgm_port);
    let strata = Strata::start_with_config(Some(&config)).await;
    let prom_port = free_port();
    let prom_base = format!("http://127.0.0.1:{prom_port}");
    let prom_config = tmp.path().join("prometheus.yml");
    std::fs::write(&prom_config, &config).unwrap();
    let prom_log = tmp.path().join("prometheus.log");
    let mut prom = Guard::spawn(
        "prometheus",
        &which("prometheus"),
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", tmp.path().join("prometheus-data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &prom_log,
    );
    wait_ok(&client, &format!("{prom_base}/-/ready"), &mut prom, Duration::from_secs(30)).await;
    wait_all_up(&client, &prom_base, "Prometheus", &prom_log).await;
    wait_all_up(&client, &strata.base, "Strata", &strata.log()).await;
    tokio::time::sleep(SCRAPE_FOR).await;
    let end = format!("{:.3}", now_ms() as f64 / 1000.0);

    // Series, per job, over the same window.
    for job in ["node", "model-server", "dcgm"] {
        let p = as_prometheus_3(job_series(&client, &prom_base, job, &window_start, &end).await);
        let s = job_series(&client, &strata.base, job, &window_start, &end).await;
        assert!(!p.is_empty(), "Prometheus has no series of job {job}");
        assert!(
            p == s,
            "job {job}: Prometheus {} series, Strata {}\n{}",
            p.len(),
            s.len(),
            diff(&p, &s)
        );
        println!("job {job}: {} series, equal", p.len());
    }
    let w = [("start", window_start.as_str()), ("end", end.as_str())];
    for path in ["/api/v1/labels", "/api/v1/label/__name__/values", "/api/v1/label/instance/values"]
    {
        let p = strings(&data(&client, &prom_base, path, &w).await);
        let s = strings(&data(&client, &strata.base, path, &w).await);
        assert_eq!(s, p, "{path}");
    }

    // The DCGM series keep the exporter's labels and values.
    let gpu_temp = data(
        &client,
        &strata.base,
        "/api/v1/query",
        &[("query", "DCGM_FI_DEV_GPU_TEMP"), ("time", &end)],
    )
    .await;
    let result = gpu_temp["result"].as_array().expect("vector");
    assert_eq!(result.len(), GPUS, "{gpu_temp}");
    let field = csv
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with('#')
                && !l.contains(", label,")
                && !l.contains(",label,")
        })
        .position(|l| l.starts_with("DCGM_FI_DEV_GPU_TEMP,"))
        .expect("DCGM_FI_DEV_GPU_TEMP in the metric list");
    for s in result {
        let m = &s["metric"];
        let gpu: usize = m["gpu"].as_str().and_then(|g| g.parse().ok()).expect("gpu label");
        assert_eq!(m["device"], format!("nvidia{gpu}"), "{m}");
        assert_eq!(m["modelName"], "NVIDIA H100 80GB HBM3", "{m}");
        assert_eq!(m["Hostname"], "gpu-node-1", "{m}");
        assert!(m["UUID"].as_str().is_some_and(|u| u.starts_with("GPU-")), "{m}");
        assert_eq!(m["exporter_port"], dcgm_port.to_string(), "{m}");
        assert_eq!(s["value"][1], format!("{}", dcgm_value(field, gpu)), "{s}");
    }
    for q in [
        "sum by (job) (DCGM_FI_DEV_POWER_USAGE)",
        "count by (job) ({job=\"dcgm\"})",
        "max by (model) (inference_requests_total) >= 0",
    ] {
        let p = data(&client, &prom_base, "/api/v1/query", &[("query", q), ("time", &end)]).await;
        let s = data(&client, &strata.base, "/api/v1/query", &[("query", q), ("time", &end)]).await;
        let labels = |d: &Value| -> BTreeSet<String> {
            d["result"]
                .as_array()
                .expect("vector")
                .iter()
                .map(|r| r["metric"].to_string())
                .collect()
        };
        assert_eq!(labels(&s), labels(&p), "{q}: Prometheus {p}\nStrata {s}");
        if q.starts_with("sum") || q.starts_with("count") {
            assert_eq!(s["result"][0]["value"][1], p["result"][0]["value"][1], "{q}");
        }
    }

    // Targets and what each target said about its metrics.
    let p =
        targets_view(&data(&client, &prom_base, "/api/v1/targets", &[("state", "active")]).await);
    let s =
        targets_view(&data(&client, &strata.base, "/api/v1/targets", &[("state", "active")]).await);
    assert_eq!(s, p, "/api/v1/targets");
    for params in [
        vec![("metric", "inference_requests")],
        vec![("metric", "node_cpu_seconds_total")],
        vec![("match_target", "{job=\"dcgm\"}")],
        vec![("match_target", "{job=\"model-server\"}")],
    ] {
        let p =
            metadata_view(&data(&client, &prom_base, "/api/v1/targets/metadata", &params).await);
        let s =
            metadata_view(&data(&client, &strata.base, "/api/v1/targets/metadata", &params).await);
        assert!(!p.is_empty(), "Prometheus has no metadata for {params:?}");
        assert_eq!(s, p, "/api/v1/targets/metadata {params:?}");
    }
    println!("scrape interop: done in {:.1}s", started.elapsed().as_secs_f64());
    drop(prom);
    drop(app);
    drop(node);
}
