//! Remote-write 2.0 (symbols table, metadata, written-count headers, bad references) and
//! native histograms and exemplars in 1.0 and 2.0 requests, against `strata all` over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use prost::Message;
use serde_json::json;
use strata_proto::prometheus::{Exemplar, Label, MetricMetadata};
use strata_proto::write_v2;

#[tokio::test]
async fn remote_write_2_with_symbols_and_metadata() {
    let s = Strata::start().await;
    let now = now_ms();
    let mut b = V2Builder::new();
    let help = b.sym("Requests served.");
    let unit = b.sym("requests");
    for code in ["200", "404", "500"] {
        let ts = b.add(
            &[("__name__", "v2_requests_total"), ("job", "api"), ("code", code)],
            &[(now - 2000, 1.0), (now - 1000, 2.0), (now, 3.0)],
        );
        ts.metadata = Some(write_v2::Metadata { r#type: 1, help_ref: help, unit_ref: unit });
    }
    let help = b.sym("Room temperature.");
    let g = b.add(&[("__name__", "v2_temperature"), ("job", "api")], &[(now, 21.5)]);
    g.metadata = Some(write_v2::Metadata { r#type: 2, help_ref: help, unit_ref: 0 });
    let r = s.push_v2(&b.build(), None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        r.header("X-Prometheus-Remote-Write-Samples-Written"),
        Some("10"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("X-Prometheus-Remote-Write-Histograms-Written"), Some("0"));
    assert_eq!(r.header("X-Prometheus-Remote-Write-Exemplars-Written"), Some("0"));

    let set = s.series_set(r#"{job="api"}"#, None).await;
    assert_eq!(set.len(), 4, "{set:?}");
    assert!(set.iter().any(|l| l.get("code").map(String::as_str) == Some("404")));
    let md = s.data("/api/v1/metadata", &[], None).await;
    assert_eq!(
        md["v2_requests_total"],
        json!([{"type": "counter", "help": "Requests served.", "unit": "requests"}])
    );
    assert_eq!(
        md["v2_temperature"],
        json!([{"type": "gauge", "help": "Room temperature.", "unit": ""}])
    );
    let one = s.data("/api/v1/metadata", &[("metric", "v2_temperature")], None).await;
    assert_eq!(one.as_object().unwrap().len(), 1, "{one}");
    // Prometheus's limits: `limit_per_metric=0` is no limit, `limit=0` an empty answer.
    let p = [("metric", "v2_temperature"), ("limit_per_metric", "0")];
    assert_eq!(s.data("/api/v1/metadata", &p, None).await, one);
    assert_eq!(s.data("/api/v1/metadata", &[("limit", "0")], None).await, json!({}));
    let r = s.get("/api/v1/metadata", &[("limit", "x")], None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("limit must be a number"), "{}", r.body);

    // A label reference past the symbols table: that series is refused, the other kept.
    let mut b = V2Builder::new();
    b.add(&[("__name__", "v2_good")], &[(now, 1.0), (now + 1, 2.0)]);
    let bad = b.add(&[("__name__", "v2_bad")], &[(now, 1.0)]);
    bad.labels_refs.extend([1, 999]);
    // A series refused for its labels leaves no metadata behind.
    let help = b.sym("Never stored.");
    let refused = b.add(&[("__name__", "v2_refused"), ("bad-name", "x")], &[(now, 1.0)]);
    refused.metadata = Some(write_v2::Metadata { r#type: 2, help_ref: help, unit_ref: 0 });
    let r = s.push_v2(&b.build(), None).await;
    assert_refused(&r, 400, &["999"], "out-of-range label reference");
    assert_eq!(s.data("/api/v1/metadata", &[("metric", "v2_refused")], None).await, json!({}));
    assert_eq!(r.header("X-Prometheus-Remote-Write-Samples-Written"), Some("2"), "{:?}", r.headers);
    assert_eq!(names(&s.series_set(r#"{__name__=~"v2_good|v2_bad"}"#, None).await), ["v2_good"]);

    // symbols[0] must be the empty string.
    let mut req = V2Builder::new();
    req.add(&[("__name__", "v2_nonempty_sym0")], &[(now, 1.0)]);
    let mut req = req.build();
    req.symbols[0] = prost::bytes::Bytes::from_static(b"x");
    let r = s.push_v2(&req, None).await;
    assert_refused(&r, 400, &["symbols"], "non-empty symbols[0]");
}

// Full native-histogram wire types (Strata's own .proto declares only the timestamp), so the
// test sends what Prometheus sends.
#[derive(Clone, PartialEq, Message)]
struct BucketSpan {
    #[prost(sint32, tag = "1")]
    offset: i32,
    #[prost(uint32, tag = "2")]
    length: u32,
}

#[derive(Clone, PartialEq, Message)]
struct FullHistogram {
    #[prost(uint64, tag = "1")]
    count_int: u64,
    #[prost(double, tag = "3")]
    sum: f64,
    #[prost(sint32, tag = "4")]
    schema: i32,
    #[prost(double, tag = "5")]
    zero_threshold: f64,
    #[prost(uint64, tag = "6")]
    zero_count_int: u64,
    #[prost(message, repeated, tag = "11")]
    positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    positive_deltas: Vec<i64>,
    #[prost(int64, tag = "15")]
    timestamp: i64,
}

#[derive(Clone, PartialEq, Message)]
struct HistSeriesV1 {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "4")]
    histograms: Vec<FullHistogram>,
}

#[derive(Clone, PartialEq, Message)]
struct HistRequestV1 {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<HistSeriesV1>,
    #[prost(message, repeated, tag = "3")]
    metadata: Vec<MetricMetadata>,
}

#[derive(Clone, PartialEq, Message)]
struct HistSeriesV2 {
    #[prost(uint32, repeated, tag = "1")]
    labels_refs: Vec<u32>,
    #[prost(message, repeated, tag = "3")]
    histograms: Vec<FullHistogram>,
    #[prost(message, repeated, tag = "4")]
    exemplars: Vec<write_v2::Exemplar>,
}

#[derive(Clone, PartialEq, Message)]
struct HistRequestV2 {
    #[prost(string, repeated, tag = "4")]
    symbols: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    timeseries: Vec<HistSeriesV2>,
}

fn histogram(t: i64) -> FullHistogram {
    FullHistogram {
        count_int: 6,
        sum: 12.5,
        schema: 0,
        zero_threshold: 1e-128,
        zero_count_int: 1,
        positive_spans: vec![
            BucketSpan { offset: 0, length: 2 },
            BucketSpan { offset: 1, length: 1 },
        ],
        positive_deltas: vec![2, -1, 1],
        timestamp: t,
    }
}

#[tokio::test]
async fn native_histograms_and_exemplars_are_accepted_and_counted() {
    let s = Strata::start().await;
    let now = now_ms();
    let counted = |m: &str, what: &str| {
        let mut n = 0.0;
        for line in m.lines().filter(|l| l.starts_with("strata_samples_rejected_total{")) {
            let reason =
                line.split("reason=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("");
            if reason.contains(what) {
                n += line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            }
        }
        n
    };
    let before = s.metrics().await;
    let received0 = metric_sum(&before, "strata_samples_received_total", &[]).unwrap_or(0.0);

    // 1.0: a histogram series (3 histograms) plus a float series carrying 2 exemplars.
    let h = HistRequestV1 {
        timeseries: vec![HistSeriesV1 {
            labels: vec![label("__name__", "rpc_duration_seconds"), label("job", "h")],
            histograms: vec![histogram(now - 2000), histogram(now - 1000), histogram(now)],
        }],
        metadata: vec![],
    };
    let pb = [("Content-Type", V1_CONTENT_TYPE), ("Content-Encoding", "snappy")];
    let r = s.push_raw(snappy(&h.encode_to_vec()), &pb).await;
    assert!(r.status < 500, "1.0 native histograms: {} {}", r.status, r.body);
    let mut ex =
        series(&[("__name__", "with_exemplars"), ("job", "h")], &[(now - 1000, 1.0), (now, 2.0)]);
    ex.exemplars = (0..2)
        .map(|i| Exemplar {
            labels: vec![label("trace_id", &format!("abc{i}"))],
            value: 1.0,
            timestamp: now - i,
        })
        .collect();
    let mut req = write_request(vec![ex]);
    req.metadata.push(MetricMetadata {
        r#type: 1,
        metric_family_name: "with_exemplars".into(),
        help: "Has exemplars.".into(),
        unit: String::new(),
    });
    let r = s.push_v1(&req, None).await;
    assert_eq!(r.status, 204, "1.0 exemplars: {}", r.body);

    // 2.0: 2 histograms and 1 exemplar on one series.
    let h2 = HistRequestV2 {
        symbols: ["", "__name__", "v2_latency_seconds", "job", "h2", "trace_id", "xyz"]
            .map(String::from)
            .into(),
        timeseries: vec![HistSeriesV2 {
            labels_refs: vec![1, 2, 3, 4],
            histograms: vec![histogram(now - 1000), histogram(now)],
            exemplars: vec![write_v2::Exemplar {
                labels_refs: vec![5, 6],
                value: 0.3,
                timestamp: now,
            }],
        }],
    };
    let h2body = snappy(&h2.encode_to_vec());
    let r = s
        .push_raw(h2body, &[("Content-Type", V2_CONTENT_TYPE), ("Content-Encoding", "snappy")])
        .await;
    assert!(r.status < 500, "2.0 native histograms: {} {}", r.status, r.body);
    let written = |h: &str| r.header(h).and_then(|v| v.parse::<u64>().ok());
    let hist_written = written("X-Prometheus-Remote-Write-Histograms-Written");
    let ex_written = written("X-Prometheus-Remote-Write-Exemplars-Written");
    assert!(
        hist_written.is_some() && ex_written.is_some(),
        "2.0 answer lacks written counts: {:?}",
        r.headers
    );

    let after = s.metrics().await;
    let received =
        metric_sum(&after, "strata_samples_received_total", &[]).unwrap_or(0.0) - received0;
    assert_eq!(received, 2.0, "float samples received");
    let hist = counted(&after, "histogram") - counted(&before, "histogram");
    let exem = counted(&after, "exemplar") - counted(&before, "exemplar");
    assert_eq!(
        hist + hist_written.unwrap() as f64,
        5.0,
        "histograms dropped + written; /metrics:\n{after}"
    );
    assert_eq!(
        exem + ex_written.unwrap() as f64,
        3.0,
        "exemplars dropped + written; /metrics:\n{after}"
    );
    let stored = names(&s.series_set(r#"{job="h"}"#, None).await);
    assert!(stored.contains(&"with_exemplars".to_string()), "{stored:?}");
    let md = s.data("/api/v1/metadata", &[("metric", "with_exemplars")], None).await;
    assert_eq!(
        md,
        json!({"with_exemplars": [{"type": "counter", "help": "Has exemplars.", "unit": ""}]})
    );
    assert!(metric_sum(&after, "strata_head_series", &[]).unwrap_or(0.0) >= 1.0, "{after}");
}
