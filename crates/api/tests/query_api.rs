//! The PromQL endpoints through the router (tower `oneshot`) against a fixed in-memory store:
//! JSON shapes per result type, parameter errors with Prometheus's texts and statuses, GET
//! and POST forms, and the requests Grafana's Prometheus data source sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};
use strata_api::{router, ApiState, BuildInfo};
use strata_model::{
    Error, Labels, Matcher, MetricMetadata, PushOutcome, PushRequest, PushSink, Queryable,
    RawSeries, Result, Sample, SeriesReader, TenantId,
};
use strata_promql::{Engine, EngineOpts};
use tower::ServiceExt;

/// `up` for two jobs, `x` (three series, two jobs) every 15 s from 0 to 300 s, tenant `anonymous`.
struct Store {
    series: Vec<RawSeries>,
    /// Fail every select with this error.
    fail: Option<Error>,
    /// Sleep this long before answering.
    delay: Duration,
}

impl Store {
    fn new() -> Self {
        let mk = |pairs: &[(&str, &str)], f: fn(i64) -> f64| RawSeries {
            labels: Labels::from_pairs(pairs.iter().copied()),
            samples: (0..=20).map(|i| Sample { t: i * 15_000, v: f(i) }).collect(),
        };
        Store {
            series: vec![
                mk(&[("__name__", "up"), ("job", "node"), ("instance", "a:9100")], |_| 1.0),
                mk(&[("__name__", "up"), ("job", "prom"), ("instance", "b:9090")], |_| 0.0),
                mk(&[("__name__", "x"), ("job", "a"), ("i", "1")], |i| i as f64),
                mk(&[("__name__", "x"), ("job", "a"), ("i", "2")], |i| 2.0 * i as f64),
                mk(&[("__name__", "x"), ("job", "b"), ("i", "3")], |_| 1e21),
            ],
            fail: None,
            delay: Duration::ZERO,
        }
    }
}

#[async_trait]
impl Queryable for Store {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<RawSeries>> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        if tenant.as_str() != "anonymous" {
            return Ok(Vec::new());
        }
        Ok(self
            .series
            .iter()
            .filter(|s| matchers.iter().all(|m| m.matches(s.labels.get(&m.name).unwrap_or(""))))
            .map(|s| RawSeries {
                labels: s.labels.clone(),
                samples: s.samples.iter().copied().filter(|p| p.t >= mint && p.t <= maxt).collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect())
    }
}

struct Nothing;

#[async_trait]
impl PushSink for Nothing {
    async fn push(&self, _: PushRequest) -> std::result::Result<PushOutcome, (Error, PushOutcome)> {
        Ok(PushOutcome::default())
    }
}

#[async_trait]
impl SeriesReader for Nothing {
    async fn series(
        &self,
        _: &TenantId,
        _: &[Vec<Matcher>],
        _: i64,
        _: i64,
    ) -> Result<Vec<Labels>> {
        Ok(vec![Labels::from_pairs([("__name__", "up"), ("job", "node")])])
    }
    async fn label_names(
        &self,
        _: &TenantId,
        _: &[Vec<Matcher>],
        _: i64,
        _: i64,
    ) -> Result<Vec<String>> {
        Ok(vec!["__name__".into(), "job".into()])
    }
    async fn label_values(
        &self,
        _: &TenantId,
        _: &str,
        _: &[Vec<Matcher>],
        _: i64,
        _: i64,
    ) -> Result<Vec<String>> {
        Ok(vec!["up".into(), "x".into()])
    }
    async fn metadata(
        &self,
        _: &TenantId,
        _: Option<&str>,
    ) -> Result<Vec<(String, Vec<MetricMetadata>)>> {
        Ok(Vec::new())
    }
}

fn app_with(store: Store) -> axum::Router {
    router(ApiState {
        push: Arc::new(Nothing),
        reader: Arc::new(Nothing),
        queryable: Arc::new(store),
        engine: Engine::new(EngineOpts::default()),
        query_timeout: Duration::from_secs(120),
        metrics: Arc::new(String::new),
        ready: Arc::new(|| true),
        targets: Arc::new(strata_api::TargetsSnapshot::default),
        build: BuildInfo { version: "0.1.0".into(), revision: "abc".into() },
        max_request_bytes: 1 << 20,
    })
}

fn app() -> axum::Router {
    app_with(Store::new())
}

fn form(params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Asserts a success and returns `data`.
    fn data(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.content_type, "application/json");
        let v = self.json();
        assert_eq!(v["status"], "success", "{v}");
        v["data"].clone()
    }

    /// Asserts a Prometheus error answer.
    fn error(&self, status: u16, error_type: &str, message: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.content_type, "application/json");
        let v = self.json();
        assert_eq!(v["status"], "error", "{v}");
        assert_eq!(v["errorType"], error_type, "{v}");
        assert_eq!(v["error"], message, "{v}");
        assert!(self.body.starts_with(r#"{"status":"error","errorType":"#), "{}", self.body);
    }
}

async fn send(app: &axum::Router, req: Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    Answer { status, content_type, body: String::from_utf8(body.to_vec()).unwrap() }
}

async fn get(app: &axum::Router, path: &str, params: &[(&str, &str)]) -> Answer {
    let uri = if params.is_empty() { path.to_string() } else { format!("{path}?{}", form(params)) };
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// A POST form the way Grafana sends it.
async fn post(app: &axum::Router, path: &str, params: &[(&str, &str)]) -> Answer {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form(params)))
        .unwrap();
    send(app, req).await
}

// --- Parameter checks: no evaluation involved. ---

#[tokio::test]
async fn instant_query_parameter_errors() {
    let app = app();
    let q = "/api/v1/query";
    get(&app, q, &[]).await.error(
        400,
        "bad_data",
        "invalid parameter \"query\": no expression found in input",
    );
    let r = get(&app, q, &[("query", "up{")]).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("invalid parameter \"query\": "));
    get(&app, q, &[("query", "up"), ("time", "yesterday")]).await.error(
        400,
        "bad_data",
        "invalid parameter \"time\": invalid time value for 'time': cannot parse \"yesterday\" to a valid timestamp",
    );
    get(&app, q, &[("query", "up"), ("timeout", "soon")]).await.error(
        400,
        "bad_data",
        "invalid parameter \"timeout\": cannot parse \"soon\" to a valid duration",
    );
    get(&app, q, &[("query", "up"), ("lookback_delta", "1x")]).await.error(
        400,
        "bad_data",
        "error parsing lookback delta duration: cannot parse \"1x\" to a valid duration",
    );
    get(&app, q, &[("query", "up"), ("limit", "-1")]).await.error(
        400,
        "bad_data",
        "invalid parameter \"limit\": limit must be non-negative",
    );
    get(&app, q, &[("query", "up"), ("limit", "ten")]).await.error(
        400,
        "bad_data",
        "invalid parameter \"limit\": strconv.Atoi: parsing \"ten\": invalid syntax",
    );
    // Parameters are checked in Prometheus's order: limit, then time, then the query.
    get(&app, q, &[("query", "("), ("time", "x"), ("limit", "x")]).await.error(
        400,
        "bad_data",
        "invalid parameter \"limit\": strconv.Atoi: parsing \"x\": invalid syntax",
    );
    let req = Request::get("/api/v1/query?query=up")
        .header("X-Scope-OrgID", "a/b")
        .body(Body::empty())
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!((r.status.as_u16(), r.json()["errorType"].clone()), (400, json!("bad_data")));
}

#[tokio::test]
async fn range_query_parameter_errors() {
    let app = app();
    let q = "/api/v1/query_range";
    let base = [("query", "up"), ("start", "0"), ("end", "300"), ("step", "15")];
    let with = |key: &'static str, value: &'static str| {
        let mut p: Vec<(&str, &str)> = base.iter().copied().filter(|(k, _)| *k != key).collect();
        if !value.is_empty() {
            p.push((key, value));
        }
        p
    };
    let cases: &[(&str, &str, &str)] = &[
        ("start", "", "invalid parameter \"start\": cannot parse \"\" to a valid timestamp"),
        ("end", "x", "invalid parameter \"end\": cannot parse \"x\" to a valid timestamp"),
        ("end", "-1", "invalid parameter \"end\": end timestamp must not be before start time"),
        ("step", "", "invalid parameter \"step\": cannot parse \"\" to a valid duration"),
        ("step", "1x", "invalid parameter \"step\": cannot parse \"1x\" to a valid duration"),
        (
            "step",
            "0",
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            "step",
            "-15s",
            "invalid parameter \"step\": cannot parse \"-15s\" to a valid duration",
        ),
        (
            "step",
            "0.02",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        ("query", "", "invalid parameter \"query\": no expression found in input"),
        ("timeout", "1y1y", "invalid parameter \"timeout\": cannot parse \"1y1y\" to a valid duration"),
    ];
    for (key, value, message) in cases {
        get(&app, q, &with(key, value)).await.error(400, "bad_data", message);
        post(&app, q, &with(key, value)).await.error(400, "bad_data", message);
    }
    // Exactly 11,000 points is still allowed: (300 s - 0) / step must not exceed 11,000.
    let r = get(&app, q, &with("step", "0.0275")).await;
    assert_ne!(r.json()["error"].as_str().map(|s| s.contains("11,000")), Some(true), "{}", r.body);
}

#[tokio::test]
async fn format_parse_and_exemplars() {
    let app = app();
    let data =
        get(&app, "/api/v1/format_query", &[("query", "sum(rate(x[5m]))by(job)")]).await.data();
    assert_eq!(data, "sum by (job) (rate(x[5m]))");
    let data = post(&app, "/api/v1/format_query", &[("query", "up  +  1")]).await.data();
    assert_eq!(data, "up + 1");
    assert_eq!(get(&app, "/api/v1/format_query", &[("query", "up +")]).await.status, 400);
    assert_eq!(get(&app, "/api/v1/format_query", &[("query", "(")]).await.status, 400);

    let data = get(&app, "/api/v1/parse_query", &[("query", "up{job=\"a\"}")]).await.data();
    assert_eq!(data["type"], "vectorSelector", "{data}");
    assert_eq!(data["name"], "up");
    assert_eq!(data["matchers"][0], json!({"name": "job", "type": "=", "value": "a"}));
    let data = post(&app, "/api/v1/parse_query", &[("query", "sum by (job) (x) > 1")]).await.data();
    assert_eq!(data["type"], "binaryExpr", "{data}");
    assert_eq!(data["lhs"]["type"], "aggregation", "{data}");
    assert_eq!(get(&app, "/api/v1/parse_query", &[("query", "up{")]).await.status, 400);

    let r = get(&app, "/api/v1/query_exemplars", &[("query", "up"), ("start", "0"), ("end", "10")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, r#"{"status":"success","data":[]}"#);
    let r =
        post(&app, "/api/v1/query_exemplars", &[("query", "up"), ("start", "10"), ("end", "0")])
            .await;
    r.error(400, "bad_data", "end timestamp must not be before start timestamp");
    let r = get(&app, "/api/v1/query_exemplars", &[("query", "up"), ("start", "x")]).await;
    r.error(
        400,
        "bad_data",
        "invalid parameter \"start\": invalid time value for 'start': cannot parse \"x\" to a valid timestamp",
    );
    assert_eq!(get(&app, "/api/v1/query_exemplars", &[("query", "up{")]).await.status, 400);
}

// --- Evaluation: these need the engine. ---

#[tokio::test]
async fn instant_vector_scalar_and_string() {
    let app = app();
    let r = get(&app, "/api/v1/query", &[("query", "up"), ("time", "300")]).await;
    assert_eq!(
        r.body,
        concat!(
            r#"{"status":"success","data":{"resultType":"vector","result":["#,
            r#"{"metric":{"__name__":"up","instance":"a:9100","job":"node"},"value":[300,"1"]},"#,
            r#"{"metric":{"__name__":"up","instance":"b:9090","job":"prom"},"value":[300,"0"]}]}}"#
        )
    );
    let data = get(&app, "/api/v1/query", &[("query", "x{i=\"3\"}"), ("time", "300")]).await.data();
    assert_eq!(data["result"][0]["value"], json!([300, "1e+21"]));

    let data =
        get(&app, "/api/v1/query", &[("query", "1 + 1"), ("time", "1435781451.781")]).await.data();
    assert_eq!(data, json!({"resultType": "scalar", "result": [1435781451.781, "2"]}));
    let r = get(&app, "/api/v1/query", &[("query", "1 + 1"), ("time", "1435781451.781")]).await;
    assert!(r.body.contains("[1435781451.781,\"2\"]"), "{}", r.body);

    let data = get(&app, "/api/v1/query", &[("query", "\"hello\""), ("time", "10")]).await.data();
    assert_eq!(data, json!({"resultType": "string", "result": [10, "hello"]}));

    let data = get(&app, "/api/v1/query", &[("query", "up[20s]"), ("time", "300")]).await.data();
    assert_eq!(data["resultType"], "matrix");
    assert_eq!(data["result"][0]["values"], json!([[285, "1"], [300, "1"]]));

    let data =
        get(&app, "/api/v1/query", &[("query", "sum by (job) (x)"), ("time", "150")]).await.data();
    assert_eq!(
        data["result"],
        json!([
            {"metric": {"job": "a"}, "value": [150, "30"]},
            {"metric": {"job": "b"}, "value": [150, "1e+21"]},
        ])
    );
    let data = get(&app, "/api/v1/query", &[("query", "1 / 0")]).await.data();
    assert_eq!(data["result"][1], "+Inf");
    let data = get(&app, "/api/v1/query", &[("query", "0 / 0")]).await.data();
    assert_eq!(data["result"][1], "NaN");
}

#[tokio::test]
async fn range_query_get_and_post_agree() {
    let app = app();
    let p = [("query", "x{i=\"1\"}"), ("start", "0"), ("end", "60"), ("step", "30s")];
    let g = get(&app, "/api/v1/query_range", &p).await;
    let data = g.data();
    assert_eq!(
        data,
        json!({"resultType": "matrix", "result": [
            {"metric": {"__name__": "x", "i": "1", "job": "a"}, "values": [[0, "0"], [30, "2"], [60, "4"]]}
        ]})
    );
    let pst = post(&app, "/api/v1/query_range", &p).await;
    assert_eq!(pst.body, g.body);
    // A form body with a charset, and body values taking precedence over the URL's.
    let req = Request::post("/api/v1/query_range?query=nonexistent")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=UTF-8")
        .body(Body::from(form(&p)))
        .unwrap();
    assert_eq!(send(&app, req).await.body, g.body);

    let data = get(
        &app,
        "/api/v1/query_range",
        &[("query", "sum by (job) (x)"), ("start", "0"), ("end", "30"), ("step", "15")],
    )
    .await
    .data();
    assert_eq!(
        data["result"][0],
        json!({"metric": {"job": "a"}, "values": [[0, "0"], [15, "3"], [30, "6"]]})
    );
    assert_eq!(data["result"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn limit_and_stats() {
    let app = app();
    let r = get(&app, "/api/v1/query", &[("query", "x"), ("time", "300"), ("limit", "2")]).await;
    let v = r.json();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));
    assert!(v.get("infos").is_none());
    let v = get(&app, "/api/v1/query", &[("query", "x"), ("time", "300")]).await.json();
    assert!(v.get("warnings").is_none() && v["data"].get("stats").is_none(), "{v}");

    let data = get(
        &app,
        "/api/v1/query_range",
        &[("query", "x"), ("start", "0"), ("end", "300"), ("step", "15"), ("stats", "all")],
    )
    .await
    .data();
    let stats = &data["stats"];
    assert!(stats["timings"]["execTotalTime"].as_f64().unwrap() >= 0.0, "{stats}");
    assert!(stats["samples"]["totalQueryableSamples"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["samples"]["peakSamples"].is_u64(), "{stats}");
}

#[tokio::test]
async fn storage_errors_and_timeouts() {
    let app =
        app_with(Store { fail: Some(Error::Unavailable("no leader".into())), ..Store::new() });
    let r = get(&app, "/api/v1/query", &[("query", "up")]).await;
    assert_eq!(r.json()["status"], "error", "{}", r.body);
    assert!(r.status.is_server_error(), "{}", r.body);

    let app = app_with(Store { delay: Duration::from_secs(30), ..Store::new() });
    let r = get(&app, "/api/v1/query", &[("query", "up"), ("timeout", "100ms")]).await;
    r.error(503, "timeout", "query timed out in expression evaluation");
    let r = post(
        &app,
        "/api/v1/query_range",
        &[("query", "up"), ("start", "0"), ("end", "60"), ("step", "15"), ("timeout", "0.1")],
    )
    .await;
    r.error(503, "timeout", "query timed out in expression evaluation");
}

/// The requests Grafana's Prometheus data source makes (pkg/promlib): range and instant
/// queries as POST forms with float-second times and steps, exemplars, label and metadata
/// lookups, build info.
#[tokio::test]
async fn grafana_requests() {
    let app = app();
    let data = post(
        &app,
        "/api/v1/query_range",
        &[("query", "up"), ("start", "0"), ("end", "300"), ("step", "15"), ("timeout", "30s")],
    )
    .await
    .data();
    assert_eq!(data["resultType"], "matrix");
    assert_eq!(data["result"][0]["values"].as_array().unwrap().len(), 21);
    let data =
        post(&app, "/api/v1/query", &[("query", "1+1"), ("time", "1700000000.123")]).await.data();
    assert_eq!(data["result"], json!([1700000000.123, "2"]));
    let data = post(
        &app,
        "/api/v1/query_exemplars",
        &[("query", "up"), ("start", "1700000000"), ("end", "1700003600.5")],
    )
    .await
    .data();
    assert_eq!(data, json!([]));
    // Health check: an instant query of `1+1`, then build info.
    assert_eq!(
        get(&app, "/api/v1/query", &[("query", "1+1")]).await.data()["resultType"],
        "scalar"
    );
    let data = get(&app, "/api/v1/status/buildinfo", &[]).await.data();
    assert_eq!(data["version"], "0.1.0");
    let p = [("start", "1700000000"), ("end", "1700003600")];
    assert_eq!(post(&app, "/api/v1/labels", &p).await.data(), json!(["__name__", "job"]));
    assert_eq!(get(&app, "/api/v1/label/__name__/values", &p).await.data(), json!(["up", "x"]));
    let series = post(&app, "/api/v1/series", &[("match[]", "up"), p[0], p[1]]).await.data();
    assert_eq!(series, json!([{"__name__": "up", "job": "node"}]));
    assert_eq!(get(&app, "/api/v1/metadata", &[]).await.data(), json!({}));
}

#[tokio::test]
async fn duration_expressions_use_the_query_step() {
    let app = app();
    let range = |q: &'static str| [("query", q), ("start", "0"), ("end", "60"), ("step", "30s")];
    let folded =
        get(&app, "/api/v1/query_range", &range("count_over_time(x{i=\"1\"}[step()])")).await;
    let plain = get(&app, "/api/v1/query_range", &range("count_over_time(x{i=\"1\"}[30s])")).await;
    assert!(!folded.data()["result"].as_array().unwrap().is_empty(), "{}", folded.body);
    assert_eq!(folded.body, plain.body);
    let at = |q: &'static str| [("query", q), ("time", "60")];
    let folded = get(&app, "/api/v1/query", &at("x{i=\"1\"} offset (10 + 20)")).await;
    let plain = get(&app, "/api/v1/query", &at("x{i=\"1\"} offset 30s")).await;
    assert!(!folded.data()["result"].as_array().unwrap().is_empty(), "{}", folded.body);
    assert_eq!(folded.body, plain.body);
}
