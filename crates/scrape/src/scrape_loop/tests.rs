use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use prost::Message;
use strata_model::{is_stale_nan, PushOutcome, PushRequest, PushSink, TenantId};
use strata_proto::prometheus as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::append::{AppendRules, Out, SeriesMemory};
use super::*;
use crate::config::{Limits, ScrapeSection};
use crate::expfmt::{parse_format, Format};
use crate::targets::{targets_from_group, Outcome};

// ---- pure parts ----

fn rules(target: &[(&str, &str)], honor: bool) -> AppendRules {
    AppendRules {
        target: strata_model::Labels::from_pairs(target.iter().copied()),
        honor_labels: honor,
        honor_timestamps: true,
        track_timestamps_staleness: false,
        metric_relabel: Vec::new(),
        limits: Limits::default(),
    }
}

fn samples(text: &str) -> Vec<crate::expfmt::Sample> {
    // Keyed by their labels: these tests pass no body.
    let mut samples =
        parse_format(text.as_bytes(), Format::PrometheusText, 1000, &Default::default())
            .unwrap()
            .samples;
    for s in &mut samples {
        s.raw = None;
    }
    samples
}

fn render(out: &[Out]) -> Vec<String> {
    out.iter()
        .map(|o| {
            let l: Vec<String> =
                o.series.labels().iter().map(|l| format!("{}={}", l.name, l.value)).collect();
            let v = if is_stale_nan(o.v) { "stale".to_string() } else { o.v.to_string() };
            format!("{{{}}} {v} @{}", l.join(","), o.t)
        })
        .collect()
}

#[test]
fn conflicting_labels_are_exported_unless_honored() {
    let r = rules(&[("job", "j"), ("instance", "i")], false);
    let mut out = Vec::new();
    let s = samples("m{job=\"x\",exported_job=\"y\"} 1\n");
    SeriesMemory::default().append(&r, s.clone(), b"", 1000, &mut out).unwrap();
    assert_eq!(
        render(&out),
        ["{__name__=m,exported_exported_job=x,exported_job=y,instance=i,job=j} 1 @1000"]
    );
    let mut out = Vec::new();
    SeriesMemory::default()
        .append(&rules(&[("job", "j"), ("instance", "i")], true), s, b"", 1000, &mut out)
        .unwrap();
    assert_eq!(render(&out), ["{__name__=m,exported_job=y,instance=i,job=x} 1 @1000"]);
}

#[test]
fn limits_fail_the_scrape_and_leave_nothing() {
    let mut r = rules(&[("job", "j")], false);
    r.limits.sample_limit = 1;
    let mut out = Vec::new();
    let (e, c) = SeriesMemory::default()
        .append(&r, samples("a 1\nb 2\nc 3\n"), b"", 1000, &mut out)
        .unwrap_err();
    assert_eq!(e, "sample limit exceeded");
    assert_eq!((c.total, c.added), (3, 3));
    assert!(out.is_empty());

    let mut r = rules(&[("job", "j")], false);
    r.limits.label_limit = 2;
    let e = SeriesMemory::default()
        .append(&r, samples("a{x=\"1\"} 1\n"), b"", 0, &mut out)
        .unwrap_err()
        .0;
    assert_eq!(e, "label_limit exceeded (metric: a, number of labels: 3, limit: 2)");
    let mut r = rules(&[], false);
    r.limits.label_value_length_limit = 2;
    let e = SeriesMemory::default()
        .append(&r, samples("a{x=\"long\"} 1\n"), b"", 0, &mut out)
        .unwrap_err()
        .0;
    assert!(
        e.starts_with("label_value_length_limit exceeded (metric: a, label value: long"),
        "{e}"
    );
}

#[test]
fn explicit_timestamps_are_not_marked_stale_and_duplicates_keep_the_first() {
    let r = rules(&[], false);
    let mut mem = SeriesMemory::default();
    let mut out = Vec::new();
    mem.append(&r, samples("a 1 500\nb 2\nb 3\n"), b"", 1000, &mut out).unwrap();
    assert_eq!(render(&out), ["{__name__=a} 1 @500", "{__name__=b} 2 @1000"]);
    out.clear();
    let c = mem.append(&r, samples("c 1\n"), b"", 2000, &mut out).unwrap();
    assert_eq!(c.series_added, 1);
    assert_eq!(render(&out), ["{__name__=c} 1 @2000", "{__name__=b} stale @2000"]);
}

#[test]
fn start_offset_stays_within_the_interval_and_keeps_the_phase() {
    let iv = Duration::from_secs(10);
    for (hash, now) in [(0, 0), (7, 3), (u64::MAX, 12_345), (99_999_999_999, 9_999)] {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(now);
        let off = start_offset(hash, 0, iv, at);
        assert!(off <= iv, "{off:?}");
        let slot =
            (at + off).duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() % iv.as_nanos();
        assert_eq!(slot, u128::from(hash) % iv.as_nanos());
    }
    assert_eq!(start_offset(1, 1, Duration::ZERO, SystemTime::now()), Duration::ZERO);
}

// ---- the loop against a local HTTP server ----

#[derive(Clone)]
struct Reply {
    status: &'static str,
    body: String,
}

/// A one-route HTTP/1.1 server answering every request with the current reply and
/// recording request heads.
async fn server(reply: Arc<Mutex<Reply>>, heads: Arc<Mutex<Vec<String>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let reply = reply.lock().unwrap().clone();
            let heads = Arc::clone(&heads);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                // Compress when asked to, as exporters do.
                let gzip = head.to_ascii_lowercase().contains("accept-encoding: gzip");
                heads.lock().unwrap().push(head);
                let (body, encoding) = if gzip {
                    use std::io::Write;
                    let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                    e.write_all(reply.body.as_bytes()).unwrap();
                    (e.finish().unwrap(), "Content-Encoding: gzip\r\n")
                } else {
                    (reply.body.clone().into_bytes(), "")
                };
                let head = format!(
                    "HTTP/1.1 {}\r\nContent-Type: text/plain; version=0.0.4\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    reply.status,
                    body.len(),
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    addr
}

/// Decoded series of one push: (labels as `{a=b,...}`, value or "stale", timestamp).
type Push = Vec<(String, String, i64)>;

struct FakeSink(mpsc::UnboundedSender<(String, Push)>);

#[async_trait]
impl PushSink for FakeSink {
    async fn push(
        &self,
        req: PushRequest,
    ) -> Result<PushOutcome, (strata_model::Error, PushOutcome)> {
        let raw = snap::raw::Decoder::new().decompress_vec(&req.body).unwrap();
        let wr = pb::WriteRequest::decode(&raw[..]).unwrap();
        let push = wr
            .timeseries
            .iter()
            .map(|ts| {
                let l: Vec<String> = ts
                    .labels
                    .iter()
                    .map(|l| {
                        format!(
                            "{}={}",
                            String::from_utf8_lossy(&l.name),
                            String::from_utf8_lossy(&l.value)
                        )
                    })
                    .collect();
                let s = ts.samples[0];
                let v = if is_stale_nan(s.value) { "stale".into() } else { s.value.to_string() };
                (format!("{{{}}}", l.join(",")), v, s.timestamp)
            })
            .collect();
        let _ = self.0.send((req.tenant.0, push));
        Ok(PushOutcome::default())
    }
}

fn job(addr: &str, extra: &str) -> (ScrapeConfig, Target) {
    let yaml = format!(
        "scrape_configs:\n  - job_name: test\n    scrape_interval: 100ms\n    scrape_timeout: 100ms\n{extra}    static_configs:\n      - targets: ['{addr}']\n"
    );
    let mut cfgs =
        ScrapeSection::from_yaml(&yaml, "test").unwrap().validate(Path::new(".")).unwrap();
    let cfg = cfgs.scrape_configs.remove(0);
    let (outcomes, errors) = targets_from_group(&cfg, &cfg.static_configs[0]);
    assert!(errors.is_empty(), "{errors:?}");
    let Outcome::Active(t) = outcomes.into_iter().next().unwrap() else { panic!("dropped") };
    (cfg, t)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(String, Push)>) -> Push {
    let (tenant, push) =
        tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
    assert_eq!(tenant, "t1");
    push
}

/// The value of the series whose labels render as `labels`, checking its timestamp.
fn value(push: &Push, labels: &str, ts: i64) -> Option<String> {
    push.iter().find(|(l, _, _)| l == labels).map(|(_, v, t)| {
        assert_eq!(*t, ts, "{labels}");
        v.clone()
    })
}

fn start(
    cfg: &ScrapeConfig,
    t: &Target,
) -> (ScrapeHandle, mpsc::UnboundedReceiver<(String, Push)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let opts = ScrapeOptions { tenant: TenantId("t1".into()), offset_seed: 0, batch: None };
    (spawn(cfg, t, Arc::new(FakeSink(tx)), opts).unwrap(), rx)
}

#[tokio::test]
async fn scrape_loop_writes_samples_report_series_and_staleness() {
    let reply = Arc::new(Mutex::new(Reply {
        status: "200 OK",
        body: "# TYPE a counter\na_total{job=\"exposed\"} 1\nb 2\ndropme 3\n".into(),
    }));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let addr = server(Arc::clone(&reply), Arc::clone(&heads)).await;
    let relabel = "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: dropme\n        action: drop\n";
    let (cfg, target) = job(&addr, relabel);
    let (handle, mut rx) = start(&cfg, &target);
    let t = |name: &str| format!("{{__name__={name},instance={addr},job=test}}");
    let a = format!("{{__name__=a_total,exported_job=exposed,instance={addr},job=test}}");
    let b = t("b");

    let p = next(&mut rx).await;
    let ts = p[0].2;
    assert_eq!(p.len(), 7, "{p:?}");
    assert_eq!(value(&p, &a, ts).as_deref(), Some("1"));
    assert_eq!(value(&p, &b, ts).as_deref(), Some("2"));
    assert_eq!(value(&p, &t("up"), ts).as_deref(), Some("1"));
    assert_eq!(value(&p, &t("scrape_samples_scraped"), ts).as_deref(), Some("3"));
    assert_eq!(value(&p, &t("scrape_samples_post_metric_relabeling"), ts).as_deref(), Some("2"));
    assert_eq!(value(&p, &t("scrape_series_added"), ts).as_deref(), Some("2"));
    assert!(value(&p, &t("scrape_duration_seconds"), ts).is_some());
    let status = handle.status();
    assert_eq!((status.health, status.last_scrape_ms), (Health::Up, Some(ts)));
    assert_eq!((status.last_samples_scraped, status.last_samples_post_relabel), (3, 2));
    {
        let heads = heads.lock().unwrap();
        let head = heads[0].to_ascii_lowercase();
        assert!(head.starts_with("get /metrics http/1.1"), "{head}");
        assert!(head.contains(
            "accept: application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,"
        ));
        assert!(head.contains("x-prometheus-scrape-timeout-seconds: 0.1\r\n"), "{head}");
        assert!(head.contains(&format!("user-agent: strata/{}", env!("CARGO_PKG_VERSION"))));
        // The body came back gzipped (the server compresses when asked) and parsed above.
        assert!(head.contains("accept-encoding: gzip\r\n"), "{head}");
    }
    let md = &status.metadata;
    assert_eq!(md.len(), 1, "{md:?}");
    assert_eq!((md[0].0.as_str(), md[0].1.kind.as_str()), ("a", "counter"));

    // b disappears: a marker at the next scrape's time.
    reply.lock().unwrap().body = "a_total{job=\"exposed\"} 5\n".into();
    let p = next(&mut rx).await;
    let ts2 = p[0].2;
    assert!(ts2 > ts);
    assert_eq!(value(&p, &a, ts2).as_deref(), Some("5"));
    assert_eq!(value(&p, &b, ts2).as_deref(), Some("stale"));
    assert_eq!(value(&p, &t("scrape_series_added"), ts2).as_deref(), Some("0"));

    // The target fails: up=0 and markers for what it had.
    reply.lock().unwrap().status = "500 Internal Server Error";
    let p = next(&mut rx).await;
    let ts3 = p[0].2;
    assert_eq!(value(&p, &a, ts3).as_deref(), Some("stale"));
    assert_eq!(value(&p, &t("up"), ts3).as_deref(), Some("0"));
    assert_eq!(value(&p, &t("scrape_samples_scraped"), ts3).as_deref(), Some("0"));
    assert_eq!(p.len(), 6, "{p:?}");
    let status = handle.status();
    assert_eq!(status.health, Health::Down);
    assert_eq!(
        status.last_error.as_deref(),
        Some("server returned HTTP status 500 Internal Server Error")
    );

    // Back up, then the target goes away: markers for its series and the report series.
    reply.lock().unwrap().status = "200 OK";
    let p = next(&mut rx).await;
    assert_eq!(value(&p, &t("up"), p[0].2).as_deref(), Some("1"));
    handle.stop(StopMode::Stale).await;
    let p = next(&mut rx).await;
    let ts5 = p[0].2;
    assert_eq!(p.len(), 6, "{p:?}");
    assert!(p.iter().all(|(_, v, t)| v == "stale" && *t == ts5), "{p:?}");
    assert!(value(&p, &a, ts5).is_some());
    assert!(value(&p, &t("up"), ts5).is_some());
    assert!(rx.recv().await.is_none(), "the loop ended and dropped its sink");
}

#[tokio::test]
async fn honor_labels_and_sample_limit() {
    let reply = Arc::new(Mutex::new(Reply {
        status: "200 OK",
        body: "a{job=\"exposed\"} 1\nb 2\n".into(),
    }));
    let addr = server(Arc::clone(&reply), Arc::default()).await;
    let (cfg, target) = job(&addr, "    honor_labels: true\n");
    let (handle, mut rx) = start(&cfg, &target);
    let p = next(&mut rx).await;
    let ts = p[0].2;
    let a = format!("{{__name__=a,instance={addr},job=exposed}}");
    assert_eq!(value(&p, &a, ts).as_deref(), Some("1"));
    handle.stop(StopMode::Now).await;

    let (cfg, target) = job(&addr, "    sample_limit: 1\n");
    let (handle, mut rx) = start(&cfg, &target);
    let p = next(&mut rx).await;
    let ts = p[0].2;
    let t = |name: &str| format!("{{__name__={name},instance={addr},job=test}}");
    assert_eq!(p.len(), 5, "only the report series: {p:?}");
    assert_eq!(value(&p, &t("up"), ts).as_deref(), Some("0"));
    assert_eq!(value(&p, &t("scrape_samples_scraped"), ts).as_deref(), Some("2"));
    assert_eq!(handle.status().last_error.as_deref(), Some("sample limit exceeded"));
    handle.stop(StopMode::Now).await;

    let (cfg, target) = job(&addr, "    body_size_limit: 10B\n");
    let (handle, mut rx) = start(&cfg, &target);
    let p = next(&mut rx).await;
    assert_eq!(value(&p, &t("up"), p[0].2).as_deref(), Some("0"));
    assert_eq!(handle.status().last_error.as_deref(), Some("body size limit exceeded"));
    handle.stop(StopMode::Now).await;
}

#[tokio::test]
async fn unreachable_target_is_down() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let (cfg, target) = job(&addr, "");
    let (handle, mut rx) = start(&cfg, &target);
    let p = next(&mut rx).await;
    let up = format!("{{__name__=up,instance={addr},job=test}}");
    assert_eq!(value(&p, &up, p[0].2).as_deref(), Some("0"));
    let status = handle.status();
    assert_eq!(status.health, Health::Down);
    assert!(status.last_error.is_some());
    handle.stop(StopMode::Now).await;
}

#[tokio::test]
async fn compression_can_be_turned_off() {
    let reply = Arc::new(Mutex::new(Reply { status: "200 OK", body: "a 1\n".into() }));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let addr = server(Arc::clone(&reply), Arc::clone(&heads)).await;
    let (cfg, target) = job(&addr, "    enable_compression: false\n");
    let (handle, mut rx) = start(&cfg, &target);
    let p = next(&mut rx).await;
    assert_eq!(
        value(&p, &format!("{{__name__=a,instance={addr},job=test}}"), p[0].2).as_deref(),
        Some("1")
    );
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.contains("accept-encoding: identity\r\n"), "{head}");
    drop(handle);
}

#[test]
fn scraped_sets_that_become_one_series_are_one_series() {
    // `{job="x"}` is exported; `{exported_job="x"}` is already: both end up the same.
    let r = rules(&[("job", "j")], false);
    let mut mem = SeriesMemory::default();
    let mut out = Vec::new();
    let c = mem
        .append(&r, samples("a{job=\"x\"} 1\na{exported_job=\"x\"} 2\n"), b"", 1000, &mut out)
        .unwrap();
    assert_eq!(render(&out), ["{__name__=a,exported_job=x,job=j} 1 @1000"]);
    assert_eq!((c.total, c.added, c.series_added), (2, 2, 1));
    // Still there through the other scraped set: no marker, not added.
    let mut out = Vec::new();
    let c = mem.append(&r, samples("a{exported_job=\"x\"} 3\n"), b"", 2000, &mut out).unwrap();
    assert_eq!(render(&out), ["{__name__=a,exported_job=x,job=j} 3 @2000"]);
    assert_eq!(c.series_added, 0);
    // Gone: a marker.
    let mut out = Vec::new();
    mem.append(&r, samples("b 1\n"), b"", 3000, &mut out).unwrap();
    assert_eq!(
        render(&out),
        ["{__name__=b,job=j} 1 @3000", "{__name__=a,exported_job=x,job=j} stale @3000"]
    );
}

#[test]
fn a_failed_scrape_marks_what_the_last_good_one_had() {
    let mut r = rules(&[("job", "j")], false);
    let mut mem = SeriesMemory::default();
    let mut out = Vec::new();
    mem.append(&r, samples("a 1\nb 2 123\n"), b"", 1000, &mut out).unwrap();
    // Over the limit after updating `a`: nothing is written, and the markers are those of the
    // first scrape's tracked series (`b` had an explicit timestamp: not tracked).
    r.limits.sample_limit = 1;
    let mut out = Vec::new();
    assert!(mem.append(&r, samples("a 5\nc 6\n"), b"", 2000, &mut out).is_err());
    assert!(out.is_empty());
    mem.stale_all(2000, &mut out);
    assert_eq!(render(&out), ["{__name__=a,job=j} stale @2000"]);
    // The next scrape writes no markers, and (as in Prometheus, whose series cache outlives
    // a failure) does not count the last good scrape's series as added; a new one is. So
    // does a scrape after several failures.
    r.limits.sample_limit = 0;
    let mut out = Vec::new();
    let c = mem.append(&r, samples("a 7\nd 1\n"), b"", 3000, &mut out).unwrap();
    assert_eq!(render(&out), ["{__name__=a,job=j} 7 @3000", "{__name__=d,job=j} 1 @3000"]);
    assert_eq!(c.series_added, 1);
    mem.stale_all(4000, &mut Vec::new());
    mem.stale_all(5000, &mut Vec::new());
    let c = mem.append(&r, samples("a 8\nd 2\ne 3\n"), b"", 6000, &mut Vec::new()).unwrap();
    assert_eq!(c.series_added, 1);
    // Once a good scrape went by, what it lacked counts as added again.
    let c = mem.append(&r, samples("a 9\n"), b"", 7000, &mut Vec::new()).unwrap();
    assert_eq!(c.series_added, 0);
    let c = mem.append(&r, samples("a 9\nd 3\n"), b"", 8000, &mut Vec::new()).unwrap();
    assert_eq!(c.series_added, 1);
}

/// An HTTPS server (rustls, the test certificates) answering every request with `body`.
fn tls_server(body: &'static str) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{Read, Write};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server-key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}

#[tokio::test]
async fn scrapes_over_tls_with_the_configured_ca() {
    let addr = tls_server("tls_value 7\n");
    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tls/ca.pem");
    let up = |p: &Push| value(p, &format!("{{__name__=up,instance={addr},job=test}}"), p[0].2);

    // The test CA verifies the server.
    let (cfg, target) = job(
        &addr,
        &format!("    scheme: https\n    tls_config:\n      ca_file: {}\n", ca.display()),
    );
    let (handle, mut rx) = start(&cfg, &target);
    let p = next(&mut rx).await;
    assert_eq!(up(&p).as_deref(), Some("1"), "{:?}", handle.status());
    assert_eq!(
        value(&p, &format!("{{__name__=tls_value,instance={addr},job=test}}"), p[0].2).as_deref(),
        Some("7")
    );
    drop(handle);

    // Without it the system's roots do not know the server: down, with the reason.
    let (cfg, target) = job(&addr, "    scheme: https\n");
    let (handle, mut rx) = start(&cfg, &target);
    let p = next(&mut rx).await;
    assert_eq!(up(&p).as_deref(), Some("0"));
    let err = handle.status().last_error.unwrap_or_default();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    drop(handle);

    // insecure_skip_verify accepts it anyway.
    let (cfg, target) =
        job(&addr, "    scheme: https\n    tls_config: {insecure_skip_verify: true}\n");
    let (handle, mut rx) = start(&cfg, &target);
    let p = next(&mut rx).await;
    assert_eq!(up(&p).as_deref(), Some("1"), "{:?}", handle.status());
    drop(handle);

    // A CA file that holds no certificate fails the loop's client, clearly.
    let empty = std::env::temp_dir().join(format!("strata-empty-ca-{}.pem", std::process::id()));
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let (cfg, target) = job(
        &addr,
        &format!("    scheme: https\n    tls_config:\n      ca_file: {}\n", empty.display()),
    );
    let err = spawn(
        &cfg,
        &target,
        Arc::new(FakeSink(mpsc::unbounded_channel().0)),
        ScrapeOptions { tenant: TenantId("t1".into()), offset_seed: 0, batch: None },
    )
    .unwrap_err();
    assert!(err.contains("tls_config"), "{err}");
    let _ = std::fs::remove_file(empty);
}

#[tokio::test]
async fn extra_scrape_metrics_report_timeout_limit_and_body_size() {
    let body = "a 1\nb 2\n";
    let reply = Arc::new(Mutex::new(Reply { status: "200 OK", body: body.into() }));
    let addr = server(Arc::clone(&reply), Arc::new(Mutex::new(Vec::new()))).await;
    let (cfg, target) = job(&addr, "    extra_scrape_metrics: true\n    sample_limit: 50\n");
    let (handle, mut rx) = start(&cfg, &target);
    let t = |name: &str| format!("{{__name__={name},instance={addr},job=test}}");
    let p = next(&mut rx).await;
    let ts = p[0].2;
    assert_eq!(p.len(), 2 + 8, "{p:?}");
    assert_eq!(value(&p, &t("scrape_timeout_seconds"), ts).as_deref(), Some("0.1"));
    assert_eq!(value(&p, &t("scrape_sample_limit"), ts).as_deref(), Some("50"));
    let size = body.len().to_string();
    assert_eq!(value(&p, &t("scrape_body_size_bytes"), ts).as_deref(), Some(size.as_str()));
    handle.stop(StopMode::Now).await;
    // Off by default: five report series.
    let (cfg, target) = job(&addr, "");
    let (handle, mut rx) = start(&cfg, &target);
    assert_eq!(next(&mut rx).await.len(), 2 + 5);
    handle.stop(StopMode::Now).await;
}
