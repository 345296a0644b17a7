//! Scraping in a real `strata all`: the test serves a static exposition on 127.0.0.1, the
//! server scrapes it every second, and `up`, the scraped series (with `job`/`instance`) and
//! `/api/v1/targets` show it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BODY: &str =
    "# HELP demo_value A value.\n# TYPE demo_value gauge\ndemo_value{kind=\"a\"} 42\n";

/// Answers every request on `listener` with [`BODY`] in the text format.
async fn serve_exposition(listener: TcpListener) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { return };
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
                BODY.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// Polls an instant query until it returns a sample or 8 s pass.
async fn wait_for(s: &Strata, query: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let d = s.data("/api/v1/query", &[("query", query)], None).await;
        let result = d["result"].as_array().cloned().unwrap_or_default();
        if !result.is_empty() || Instant::now() > deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn scrapes_a_static_target() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve_exposition(listener));
    let yaml = format!(
        "scrape_configs:\n  - job_name: demo\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    \
         static_configs:\n      - targets: [\"{addr}\"]\n"
    );
    let s = Strata::start_with_config(Some(&yaml)).await;

    let up = wait_for(&s, "up").await;
    assert_eq!(up.len(), 1, "{up:?}\n{}", log_tail(&s.log(), 4000));
    assert_eq!(up[0]["metric"], json!({"__name__": "up", "job": "demo", "instance": addr}));
    assert_eq!(up[0]["value"][1], "1");

    let v = wait_for(&s, "demo_value").await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        v[0]["metric"],
        json!({"__name__": "demo_value", "job": "demo", "instance": addr, "kind": "a"})
    );
    assert_eq!(v[0]["value"][1], "42");

    let d = s.data("/api/v1/targets", &[], None).await;
    let active = d["activeTargets"].as_array().expect("activeTargets");
    assert_eq!(active.len(), 1, "{d}");
    let t = &active[0];
    assert_eq!(t["health"], "up", "{t}");
    assert_eq!(t["scrapePool"], "demo");
    assert_eq!(t["scrapeUrl"], format!("http://{addr}/metrics"));
    assert_eq!(t["labels"], json!({"job": "demo", "instance": addr}));
    assert_eq!(t["discoveredLabels"]["__address__"], json!(addr));
    assert_eq!(t["lastError"], "");
    assert_eq!(t["scrapeInterval"], "1s");
    assert!(t["lastScrape"].as_str().is_some_and(|s| s.ends_with('Z')), "{t}");
    assert!(t["lastScrapeDuration"].is_number(), "{t}");
    assert_eq!(d["droppedTargets"], json!([]));
    assert_eq!(d["droppedTargetCounts"], json!({"demo": 0}));

    let d = s.data("/api/v1/targets", &[("state", "dropped")], None).await;
    assert_eq!(d["activeTargets"], json!([]));
    let d = s.data("/api/v1/targets", &[("scrapePool", "other")], None).await;
    assert_eq!(d["activeTargets"], json!([]));
    let target = json!({"job": "demo", "instance": addr});
    let d = s.data("/api/v1/targets/metadata", &[], None).await;
    assert_eq!(
        d,
        json!([{"target": target, "metric": "demo_value", "type": "gauge", "help": "A value.", "unit": ""}])
    );
    let d = s.data("/api/v1/targets/metadata", &[("metric", "demo_value")], None).await;
    assert_eq!(d, json!([{"target": target, "type": "gauge", "help": "A value.", "unit": ""}]));
    let d = s.data("/api/v1/targets/metadata", &[("metric", "other")], None).await;
    assert_eq!(d, json!([]));
    let d = s.data("/api/v1/targets/metadata", &[("match_target", r#"{job="demo"}"#)], None).await;
    assert_eq!(d.as_array().map(Vec::len), Some(1), "{d}");
    let d = s.data("/api/v1/targets/metadata", &[("match_target", r#"{job="x"}"#)], None).await;
    assert_eq!(d, json!([]));
    // Scraped data is the default tenant's: other tenants see none of its targets.
    let d = s.data("/api/v1/targets", &[], Some("team-b")).await;
    assert_eq!(d["activeTargets"], json!([]), "{d}");
    assert_eq!(s.data("/api/v1/targets/metadata", &[], Some("team-b")).await, json!([]));
    assert_eq!(
        s.data("/api/v1/targets", &[], Some("anonymous")).await["activeTargets"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let d = s.data("/api/v1/targets/metadata", &[("limit", "0")], None).await;
    assert_eq!(d, json!([]));
    let r = s.get("/api/v1/targets/metadata", &[("match_target", "{job=")], None).await;
    assert_eq!(r.status, 400);
    let r = s.get("/api/v1/targets/metadata", &[("limit", "x")], None).await;
    assert_eq!(r.status, 400);
}
