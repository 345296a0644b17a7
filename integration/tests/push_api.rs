//! The push endpoint and the series/labels API of `strata all`, over HTTP: every kind of bad
//! input gets the status Prometheus senders expect and a message naming the problem; the good
//! part of a partly bad request is kept; sample ordering; tenants; read parameters.
//! Remote-write 2.0, native histograms and exemplars are in `push_v2.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use prost::Message;

#[tokio::test]
async fn bad_bodies_are_refused_with_a_reason() {
    let s = Strata::start_with_config(Some(
        "ingester:\n  max_request_bytes: 2000\n  max_decompressed_bytes: 20000\n",
    ))
    .await;
    let pb = [("Content-Type", V1_CONTENT_TYPE), ("Content-Encoding", "snappy")];
    let now = now_ms();

    let r = s.push_raw(b"this is not snappy data".to_vec(), &pb).await;
    assert_refused(&r, 400, &["snappy"], "not snappy at all");
    let valid =
        snappy(&write_request(vec![series(&[("__name__", "cut")], &[(now, 1.0)])]).encode_to_vec());
    let r = s.push_raw(valid[..valid.len() - 3].to_vec(), &pb).await;
    assert_refused(&r, 400, &["snappy"], "truncated snappy");

    // Field 1 (timeseries), length-delimited, claiming far more bytes than follow.
    let r = s.push_raw(snappy(&[0x0a, 0xff, 0xff, 0x03, 0x01, 0x02]), &pb).await;
    assert_refused(&r, 400, &["protobuf"], "corrupt protobuf");
    let r = s.push_raw(snappy(b"\x0a\x05\x0a\x03\x0a\x01"), &pb).await;
    assert_refused(&r, 400, &["protobuf"], "truncated nested protobuf");

    let r = s.push_raw(Vec::new(), &pb).await;
    assert_refused(&r, 400, &["empty"], "empty body");

    // A body over max_request_bytes (random-ish values compress badly).
    let big = write_request(
        (0..400)
            .map(|i| {
                series(
                    &[("__name__", "big"), ("i", &format!("{i}-{}", i * 7919))],
                    &[(now, i as f64)],
                )
            })
            .collect(),
    );
    let body = snappy(&big.encode_to_vec());
    assert!(body.len() > 2000, "test body must exceed the limit: {}", body.len());
    let r = s.push_raw(body, &pb).await;
    assert_refused(&r, 413, &["2000"], "over max_request_bytes");

    // Small on the wire, over max_decompressed_bytes once decompressed.
    let raw = write_request(vec![series(
        &[("__name__", "wide"), ("v", &"x".repeat(25_000))],
        &[(now, 1.0)],
    )])
    .encode_to_vec();
    let body = snappy(&raw);
    assert!(body.len() < 2000 && raw.len() > 20_000, "{} / {}", body.len(), raw.len());
    let r = s.push_raw(body, &pb).await;
    assert_refused(&r, 413, &["20000"], "over max_decompressed_bytes");

    let ok_body = snappy(
        &write_request(vec![series(&[("__name__", "fine")], &[(now, 1.0)])]).encode_to_vec(),
    );
    let r = s.push_raw(ok_body.clone(), &[("Content-Type", "application/json")]).await;
    assert_refused(&r, 415, &["content-type", "application/json"], "JSON content type");
    let r = s
        .push_raw(
            ok_body.clone(),
            &[("Content-Type", V1_CONTENT_TYPE), ("Content-Encoding", "gzip")],
        )
        .await;
    assert_refused(&r, 415, &["content-encoding", "gzip"], "gzip encoding");
    let r = s
        .push_raw(ok_body.clone(), &[("Content-Type", "application/x-protobuf;proto=foo.Bar")])
        .await;
    assert_refused(&r, 415, &["foo.Bar"], "unknown proto= message");
    let r = s
        .push_raw(ok_body.clone(), &[("Content-Type", V1_CONTENT_TYPE), ("X-Scope-OrgID", "a/b")])
        .await;
    assert_refused(&r, 400, &["a/b"], "invalid tenant id");

    // Nothing of the refused requests was stored; the same body, sent right, is.
    assert!(s.series_set(r#"{__name__=~".+"}"#, None).await.is_empty());
    let r = s.push_raw(ok_body, &pb).await;
    assert_eq!(r.status, 204, "{}", r.body);
    // No Content-Type at all means remote-write 1.0.
    let body = snappy(
        &write_request(vec![series(&[("__name__", "no_ct")], &[(now, 1.0)])]).encode_to_vec(),
    );
    let r = s.push_raw(body, &[("Content-Encoding", "snappy")]).await;
    assert_eq!(r.status, 204, "{}", r.body);
    // The 1.0 message named explicitly.
    let body = snappy(
        &write_request(vec![series(&[("__name__", "named_v1")], &[(now, 1.0)])]).encode_to_vec(),
    );
    let ct = "application/x-protobuf; proto=prometheus.WriteRequest";
    let r = s.push_raw(body, &[("Content-Type", ct), ("Content-Encoding", "snappy")]).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let all = names(&s.series_set(r#"{__name__=~".+"}"#, None).await);
    assert_eq!(all, ["fine", "named_v1", "no_ct"]);
}

#[tokio::test]
async fn invalid_series_are_refused_and_the_rest_kept() {
    let s = Strata::start().await;
    let now = now_ms();
    #[allow(clippy::type_complexity)]
    let cases: [(&[(&str, &str)], &[&str]); 5] = [
        (&[("job", "nameless")], &["__name__"]),
        (&[("__name__", "m"), ("bad-name", "x")], &["invalid label name", "bad-name"]),
        (&[("__name__", "m"), ("1abc", "x")], &["invalid label name", "1abc"]),
        (&[("__name__", "m"), ("dup", "a"), ("dup", "b")], &["duplicate label name", "dup"]),
        (&[("__name__", "1metric")], &["invalid metric name", "1metric"]),
    ];
    for (i, (bad, needles)) in cases.iter().enumerate() {
        let keep_a = format!("kept_a_{i}");
        let keep_b = format!("kept_b_{i}");
        let req = write_request(vec![
            series(&[("__name__", &keep_a), ("case", "x")], &[(now, 1.0)]),
            series(bad, &[(now, 2.0)]),
            series(&[("__name__", &keep_b)], &[(now, 3.0)]),
        ]);
        let r = s.push_v1(&req, None).await;
        assert_refused(&r, 400, needles, &format!("bad series {bad:?}"));
        let got = names(&s.series_set(&format!(r#"{{__name__=~"kept_._{i}"}}"#), None).await);
        assert_eq!(got, [keep_a, keep_b], "valid series of the request with {bad:?}");
    }
    // A label value that is not UTF-8.
    let mut bad_utf8 = series(&[("__name__", "m"), ("v", "x")], &[(now, 1.0)]);
    bad_utf8.labels[1].value = prost::bytes::Bytes::from_static(b"caf\xe9");
    let keep = series(&[("__name__", "kept_utf8")], &[(now, 1.0)]);
    let r = s.push_v1(&write_request(vec![bad_utf8, keep]), None).await;
    assert_refused(&r, 400, &["utf-8"], "label value not UTF-8");
    assert_eq!(names(&s.series_set("kept_utf8", None).await), ["kept_utf8"]);
    // Samples more than 10 minutes past the receiver's clock are out of bounds, as in
    // Prometheus's receiver; the series' other samples and the other series are kept, and a
    // later current sample of the series is still taken.
    let ahead = write_request(vec![
        series(&[("__name__", "clock")], &[(now, 1.0), (now + 3_600_000, 2.0)]),
        series(&[("__name__", "kept_clock")], &[(now, 1.0)]),
    ]);
    let r = s.push_v1(&ahead, None).await;
    assert_refused(&r, 400, &["too far in the future", "clock"], "a sample an hour ahead");
    assert_eq!(
        names(&s.series_set(r#"{__name__=~".*clock"}"#, None).await),
        ["clock", "kept_clock"]
    );
    let later = write_request(vec![series(&[("__name__", "clock")], &[(now + 1000, 3.0)])]);
    assert_eq!(s.push_v1(&later, None).await.status, 204);
    // A timestamp near the oldest an i64 holds is out of bounds too (its block range could
    // not be computed, so it would stop the shard's flushes for good).
    let ancient = write_request(vec![
        series(&[("__name__", "ancient")], &[(i64::MIN, 1.0)]),
        series(&[("__name__", "kept_ancient")], &[(-1_000, 1.0)]),
    ]);
    let r = s.push_v1(&ancient, None).await;
    assert_refused(&r, 400, &["out of bounds", "older than", "ancient"], "a sample at i64::MIN");
    assert_eq!(names(&s.series_set(r#"{__name__=~".*ancient"}"#, None).await), ["kept_ancient"]);

    // Unsorted labels and empty-valued labels are normalised, not refused.
    let r = s
        .push_v1(
            &write_request(vec![series(
                &[("zz", "1"), ("__name__", "unsorted"), ("e", "")],
                &[(now, 1.0)],
            )]),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let set = s.series_set("unsorted", None).await;
    let want: BTreeSet<LabelSet> = [[("__name__", "unsorted"), ("zz", "1")]]
        .iter()
        .map(|l| l.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect())
        .collect();
    assert_eq!(set, want);

    // Sample ordering, as Prometheus decides it.
    let t = now - 10_000;
    let ord = |v: f64, ts: i64| series(&[("__name__", "ordered")], &[(ts, v)]);
    assert_eq!(s.push_v1(&write_request(vec![ord(1.0, t)]), None).await.status, 204);
    let r = s
        .push_v1(
            &write_request(vec![
                ord(0.5, t - 1000),
                series(&[("__name__", "after_ooo")], &[(t, 1.0)]),
            ]),
            None,
        )
        .await;
    assert_refused(&r, 400, &["out of order sample"], "out-of-order sample");
    let r = s
        .push_v1(
            &write_request(vec![ord(2.0, t), series(&[("__name__", "after_dup")], &[(t, 1.0)])]),
            None,
        )
        .await;
    assert_refused(&r, 400, &["duplicate sample for timestamp"], "same timestamp, new value");
    let r = s.push_v1(&write_request(vec![ord(1.0, t)]), None).await;
    assert_eq!(r.status, 204, "same timestamp, same value must be accepted: {}", r.body);
    let r = s.push_v1(&write_request(vec![ord(3.0, t + 1000)]), None).await;
    assert_eq!(r.status, 204, "in-order sample after refusals: {}", r.body);
    assert_eq!(
        names(&s.series_set(r#"{__name__=~"after_.*|ordered"}"#, None).await),
        ["after_dup", "after_ooo", "ordered"]
    );
    let m = s.metrics().await;
    for name in
        ["strata_samples_received_total", "strata_samples_rejected_total", "strata_head_series"]
    {
        assert!(metric_sum(&m, name, &[]).is_some(), "/metrics lacks {name}");
    }
    assert!(
        metric_sum(&m, "strata_samples_rejected_total", &["reason="]).unwrap_or(0.0) >= 7.0,
        "{m}"
    );
}

#[tokio::test]
async fn tenants_are_separate_and_read_parameters_work() {
    let s = Strata::start().await;
    let now = now_ms();
    let old = now - 2 * 3_600_000;
    // Older samples first: nothing may be out of order within a series.
    let req = write_request(vec![
        series(&[("__name__", "range_old"), ("env", "prod")], &[(old, 1.0), (old + 1000, 1.0)]),
        series(&[("__name__", "range_new"), ("env", "dev")], &[(now - 1000, 1.0), (now, 2.0)]),
        series(&[("__name__", "other"), ("env", "staging")], &[(now, 1.0)]),
    ]);
    assert_eq!(s.push_v1(&req, None).await.status, 204);
    let a = write_request(vec![series(&[("__name__", "only_a"), ("team", "a")], &[(now, 1.0)])]);
    assert_eq!(s.push_v1(&a, Some("team-a")).await.status, 204);

    // Tenants.
    let all = r#"{__name__=~".+"}"#;
    assert_eq!(names(&s.series_set(all, Some("team-a")).await), ["only_a"]);
    assert!(s.series_set(all, Some("team-b")).await.is_empty(), "team-b sees team-a's series");
    assert_eq!(names(&s.series_set(all, None).await), ["other", "range_new", "range_old"]);
    assert_eq!(s.series_set(all, Some("anonymous")).await, s.series_set(all, None).await);
    let labels_b = s.data("/api/v1/labels", &[], Some("team-b")).await;
    assert!(strings(&labels_b).is_empty(), "team-b labels: {labels_b}");
    let names_anon = strings(&s.data("/api/v1/label/__name__/values", &[], None).await);
    assert_eq!(names_anon, ["other", "range_new", "range_old"]);
    let team_vals = strings(&s.data("/api/v1/label/team/values", &[], None).await);
    assert!(team_vals.is_empty(), "anonymous sees team-a's labels: {team_vals:?}");
    assert_eq!(strings(&s.data("/api/v1/labels", &[], Some("team-a")).await), ["__name__", "team"]);

    // limit: truncated, with a warning.
    let r = s.get("/api/v1/series", &[("match[]", all), ("limit", "2")], None).await.json();
    assert_eq!(r["data"].as_array().map(Vec::len), Some(2), "{r}");
    assert!(r["warnings"].as_array().is_some_and(|w| !w.is_empty()), "{r}");

    // POST form-encoded is the same as GET.
    let params = [("match[]", "range_new"), ("match[]", r#"{env="staging"}"#)];
    let via_get = s.data("/api/v1/series", &params, None).await;
    let via_post =
        data_of(s.post_form("/api/v1/series", &params, None).await, "POST /api/v1/series");
    assert_eq!(series_set(&via_get), series_set(&via_post));
    assert_eq!(series_set(&via_get).len(), 2);
    let lp =
        data_of(s.post_form("/api/v1/labels", &[("match[]", "other")], None).await, "POST labels");
    assert_eq!(strings(&lp), ["__name__", "env"]);

    // Label values narrowed by match[].
    let env = "/api/v1/label/env/values";
    assert_eq!(strings(&s.data(env, &[], None).await), ["dev", "prod", "staging"]);
    let one = s.data(env, &[("match[]", r#"{__name__=~"range_.*"}"#)], None).await;
    assert_eq!(strings(&one), ["dev", "prod"]);
    let two = s.data(env, &[("match[]", "other"), ("match[]", "range_old")], None).await;
    assert_eq!(strings(&two), ["prod", "staging"]);

    // start/end: a series whose samples all lie outside the window is not returned.
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let (hour_ago, before_new) = (secs(now - 3_600_000), secs(old + 3_600_000));
    let sel = r#"{__name__=~"range_.*"}"#;
    let recent = s.data("/api/v1/series", &[("match[]", sel), ("start", &hour_ago)], None).await;
    assert_eq!(names(&series_set(&recent)), ["range_new"]);
    let early = s.data("/api/v1/series", &[("match[]", sel), ("end", &before_new)], None).await;
    assert_eq!(names(&series_set(&early)), ["range_old"]);
    // An end before the start is a range nothing falls in, as Prometheus answers it.
    let backwards = [("match[]", sel), ("start", hour_ago.as_str()), ("end", before_new.as_str())];
    for path in ["/api/v1/series", "/api/v1/labels", "/api/v1/label/__name__/values"] {
        assert_eq!(s.data(path, &backwards, None).await, serde_json::json!([]), "{path}");
    }
    let both = s
        .data(
            "/api/v1/series",
            &[("match[]", sel), ("start", &secs(old)), ("end", &secs(now))],
            None,
        )
        .await;
    assert_eq!(series_set(&both).len(), 2);
    let rfc = s
        .data(
            "/api/v1/series",
            &[
                ("match[]", sel),
                ("start", "2000-01-01T00:00:00Z"),
                ("end", "2000-01-02T00:00:00.5Z"),
            ],
            None,
        )
        .await;
    assert!(series_set(&rfc).is_empty(), "{rfc}");

    // Bad parameters: 400 with errorType bad_data, naming the parameter.
    for (params, needle) in [
        (vec![("match[]", "up"), ("start", "yesterday")], "start"),
        (vec![("match[]", "up"), ("end", "soon")], "end"),
        // Dates Go's RFC 3339 parser refuses (this one is not read as March 3).
        (vec![("match[]", "up"), ("start", "2023-02-31T00:00:00Z")], "start"),
        (vec![("match[]", "up"), ("end", "2015-06-30T23:59:60Z")], "end"),
        (vec![("match[]", "up{")], "match[]"),
        (vec![], "match[]"),
    ] {
        let (status, v) = s.get_json("/api/v1/series", &params, None).await;
        assert_eq!(status, 400, "{params:?}: {v}");
        assert_eq!(v["status"], "error", "{v}");
        assert_eq!(v["errorType"], "bad_data", "{v}");
        assert!(v["error"].as_str().unwrap_or("").contains(needle), "{params:?}: {v}");
    }

    // A label name that does not decode is refused the same way.
    let (status, v) = s.get_json("/api/v1/label/%ff/values", &[], None).await;
    assert_eq!((status, &v["errorType"]), (400, &serde_json::json!("bad_data")), "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("invalid label name"), "{v}");
    // Grafana sends long `match[]` lists as POST forms: Go reads up to 10 MiB of them.
    let many: Vec<String> = (0..30_000).map(|i| format!("range_new{{i=\"{i:0>90}\"}}")).collect();
    let params: Vec<(&str, &str)> = many.iter().map(|m| ("match[]", m.as_str())).collect();
    let r = s.post_form("/api/v1/labels", &params, None).await;
    assert_eq!(r.status, 200, "a 3 MiB form: {}", &r.body[..r.body.len().min(300)]);

    // Build info, health.
    let bi = s.data("/api/v1/status/buildinfo", &[], None).await;
    assert!(bi["version"].as_str().is_some_and(|v| !v.is_empty()), "{bi}");
    assert_eq!(s.get("/-/healthy", &[], None).await.status, 200);
    assert_eq!(s.get("/-/ready", &[], None).await.status, 200);
}

/// Late samples taken inside the out-of-order window are still there after a kill -9 and a
/// restart with a smaller window: the log is replayed with the window it was written with.
#[tokio::test]
async fn a_restart_with_another_out_of_order_window_keeps_what_was_taken() {
    let mut s = Strata::start_with_config(Some("ingester:\n  out_of_order_window: 10m\n")).await;
    let now = now_ms();
    let push = |t: i64| write_request(vec![series(&[("__name__", "late")], &[(t, 1.0)])]);
    assert_eq!(s.push_v1(&push(now), None).await.status, 204);
    let r = s.push_v1(&push(now - 300_000), None).await;
    assert_eq!(r.status, 204, "a sample 5 minutes late inside a 10m window: {}", r.body);
    assert_eq!(late_count(&s, now).await, "2");
    s.kill9();
    std::fs::write(s.dir.path().join("strata.yaml"), "ingester:\n  out_of_order_window: 0s\n")
        .unwrap();
    s.start_again();
    s.wait_ready().await;
    assert_eq!(late_count(&s, now).await, "2", "after a restart with no window");
    // The new window applies to what comes next.
    let r = s.push_v1(&push(now - 200_000), None).await;
    assert_eq!(r.status, 400, "a late sample with no window: {}", r.body);
}

/// How many samples of `late` lie in the 20 minutes before `now`.
async fn late_count(s: &Strata, now: i64) -> String {
    let at = format!("{:.3}", now as f64 / 1000.0);
    let q = [("query", "count_over_time(late[20m])"), ("time", at.as_str())];
    let v = s.data("/api/v1/query", &q, None).await;
    v["result"][0]["value"][1].as_str().unwrap_or("none").to_string()
}
