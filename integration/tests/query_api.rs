//! PromQL over HTTP against a real `strata all`: remote-write data in, `/api/v1/query` and
//! `/api/v1/query_range` answers out, for a plain selector and `sum by (job) (x)`, as GET and
//! as the POST forms Grafana sends; tenants are kept apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};

/// Five samples 15 s apart ending at `end` (ms): x{i="1"} = k, x{i="2"} = 10k, x{i="3"} = 100.
fn data(end: i64) -> strata_proto::prometheus::WriteRequest {
    let at = |f: fn(i64) -> f64| -> Vec<(i64, f64)> {
        (0..5).map(|k| (end - 60_000 + k * 15_000, f(k))).collect()
    };
    write_request(vec![
        series(&[("__name__", "x"), ("i", "1"), ("job", "a")], &at(|k| k as f64)),
        series(&[("__name__", "x"), ("i", "2"), ("job", "a")], &at(|k| 10.0 * k as f64)),
        series(&[("__name__", "x"), ("i", "3"), ("job", "b")], &at(|_| 100.0)),
    ])
}

/// `data.result` sorted by its `metric` objects (the API's order is not part of the contract).
fn sorted_result(data: &Value) -> Vec<Value> {
    let mut r = data["result"].as_array().expect("result array").clone();
    r.sort_by_key(|s| s["metric"].to_string());
    r
}

#[tokio::test]
async fn instant_and_range_queries_over_pushed_data() {
    let s = Strata::start().await;
    // Whole seconds, so that every timestamp prints exactly.
    let end = now_ms() / 1000 * 1000;
    let r = s.push_v1(&data(end), None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let t = (end / 1000).to_string();
    let start = (end / 1000 - 60).to_string();
    let secs = |ms: i64| json!(ms / 1000);

    // Instant query, plain selector (GET).
    let d = s.data("/api/v1/query", &[("query", "x"), ("time", &t)], None).await;
    assert_eq!(d["resultType"], "vector", "{d}");
    assert_eq!(
        sorted_result(&d),
        [
            json!({"metric": {"__name__": "x", "i": "1", "job": "a"}, "value": [secs(end), "4"]}),
            json!({"metric": {"__name__": "x", "i": "2", "job": "a"}, "value": [secs(end), "40"]}),
            json!({"metric": {"__name__": "x", "i": "3", "job": "b"}, "value": [secs(end), "100"]}),
        ]
    );

    // Instant query, aggregation (POST form, as Grafana).
    let r =
        s.post_form("/api/v1/query", &[("query", "sum by (job) (x)"), ("time", &t)], None).await;
    let d = data_of(r, "sum by (job) (x)");
    assert_eq!(
        sorted_result(&d),
        [
            json!({"metric": {"job": "a"}, "value": [secs(end), "44"]}),
            json!({"metric": {"job": "b"}, "value": [secs(end), "100"]}),
        ]
    );

    // Range query, plain selector (GET, duration step).
    let p = [("query", "x{job=\"a\"}"), ("start", start.as_str()), ("end", &t), ("step", "15s")];
    let d = s.data("/api/v1/query_range", &p, None).await;
    assert_eq!(d["resultType"], "matrix", "{d}");
    let points = |f: fn(i64) -> f64| -> Value {
        (0..5).map(|k| json!([secs(end - 60_000 + k * 15_000), format!("{}", f(k))])).collect()
    };
    assert_eq!(
        sorted_result(&d),
        [
            json!({"metric": {"__name__": "x", "i": "1", "job": "a"}, "values": points(|k| k as f64)}),
            json!({"metric": {"__name__": "x", "i": "2", "job": "a"}, "values": points(|k| 10.0 * k as f64)}),
        ]
    );

    // Range query, aggregation (POST form with a float step, as Grafana).
    let p = [("query", "sum by (job) (x)"), ("start", start.as_str()), ("end", &t), ("step", "15")];
    let d = data_of(s.post_form("/api/v1/query_range", &p, None).await, "range sum");
    assert_eq!(
        sorted_result(&d),
        [
            json!({"metric": {"job": "a"}, "values": points(|k| 11.0 * k as f64)}),
            json!({"metric": {"job": "b"}, "values": points(|_| 100.0)}),
        ]
    );

    // Another tenant sees nothing.
    let d = s.data("/api/v1/query", &[("query", "x"), ("time", &t)], Some("other")).await;
    assert_eq!(d, json!({"resultType": "vector", "result": []}));

    // A bad query is a 400 bad_data, as Prometheus answers it.
    let (status, v) = s.get_json("/api/v1/query", &[("query", "sum(")], None).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["errorType"], "bad_data", "{v}");

    // Queries that would nest too deeply for any stack, or hold numbers the parser cannot
    // take as durations, are 400s too, and the server goes on answering.
    let deep = format!("{}x{}", "(".repeat(200_000), ")".repeat(200_000));
    let chain = format!("x{}", " + x".repeat(200_000));
    let dur = format!("x[{}1s]", "-".repeat(200_000));
    for (q, want) in [
        (deep.as_str(), Some("too complex")),
        (chain.as_str(), Some("too complex")),
        (dur.as_str(), Some("too complex")),
        // The parser panics on these; the panic is caught.
        ("x offset 1e30", None),
        ("x[5m:1e300]", None),
    ] {
        let r = s.post_form("/api/v1/query", &[("query", q), ("time", &t)], None).await;
        let body = &r.body[..r.body.len().min(300)];
        assert_eq!(r.status, 400, "{body}");
        assert!(body.contains("bad_data"), "{body}");
        assert!(want.is_none_or(|w| body.contains(w)), "{body}");
        let r = s.post_form("/api/v1/series", &[("match[]", q)], None).await;
        assert_eq!(r.status, 400, "{}", &r.body[..r.body.len().min(300)]);
    }
    let d = s.data("/api/v1/query", &[("query", "sum(x)"), ("time", &t)], None).await;
    assert_eq!(d["result"][0]["value"][1], "144", "{d}");
}
