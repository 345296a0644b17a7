use strata_promql::{MatrixSeries, VectorSample};

use super::*;

#[test]
fn values_are_formatted_as_prometheus_does() {
    // Expected texts are what Go's strconv.AppendFloat(v, 'f' or 'e', -1, 64) produces under
    // Prometheus's jsonutil.MarshalFloat cut-offs.
    let cases: &[(f64, &str)] = &[
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1266464.0146205237, "1266464.0146205237"),
        (123456789.0, "123456789"),
        (1e20, "100000000000000000000"),
        (999999999999999900000.0, "999999999999999900000"),
        (1e21, "1e+21"),
        (-1e21, "-1e+21"),
        (1.5e22, "1.5e+22"),
        (1e100, "1e+100"),
        (f64::MAX, "1.7976931348623157e+308"),
        (0.000001, "0.000001"),
        (1e-7, "1e-07"),
        (-1.5e-7, "-1.5e-07"),
        (1.2345e-10, "1.2345e-10"),
        (5e-324, "5e-324"),
        (f64::NAN, "NaN"),
        (f64::from_bits(strata_model::STALE_NAN_BITS), "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
    ];
    for (v, want) in cases {
        assert_eq!(format_value(*v), *want, "{v:e}");
    }
}

#[test]
fn timestamps_are_seconds_with_millisecond_fractions() {
    let cases: &[(i64, &str)] = &[
        (0, "0"),
        (1000, "1"),
        (1_435_781_451_781, "1435781451.781"),
        (1500, "1.500"),
        (5, "0.005"),
        (1_050, "1.050"),
        (-5, "-0.005"),
        (-1500, "-1.500"),
    ];
    for (t, want) in cases {
        let mut s = String::new();
        push_timestamp(&mut s, *t);
        assert_eq!(s, *want, "{t}");
    }
}

#[test]
fn strings_escape_like_go() {
    let mut s = String::new();
    push_str(&mut s, "a\"b\\c\nd\te<f>&g\u{1}h\u{2028}ü");
    assert_eq!(s, r#""a\"b\\c\nd\te\u003cf\u003e\u0026g\u0001h\u2028ü""#);
    // Whatever we write is valid JSON that reads back as the original.
    let back: String = serde_json::from_str(&s).unwrap();
    assert_eq!(back, "a\"b\\c\nd\te<f>&g\u{1}h\u{2028}ü");
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn every_result_type_has_prometheus_shape() {
    let none = Annotations::default();
    let body = query_body(&QueryValue::Scalar { t: 1_435_781_451_781, v: 1.0 }, None, &none);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"1"]}}"#
    );
    let body = query_body(&QueryValue::String { t: 1000, v: "a<b".into() }, None, &none);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"string","result":[1,"a\u003cb"]}}"#
    );
    let v = QueryValue::Vector(vec![
        VectorSample { labels: labels(&[("__name__", "up"), ("job", "a")]), t: 2000, v: 0.5 },
        VectorSample { labels: Labels::default(), t: 2000, v: f64::INFINITY },
    ]);
    assert_eq!(
        query_body(&v, None, &none),
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[2,"0.5"]},{"metric":{},"value":[2,"+Inf"]}]}}"#
    );
    assert_eq!(
        query_body(&QueryValue::Vector(Vec::new()), None, &none),
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
    );
    let m = QueryValue::Matrix(vec![MatrixSeries {
        labels: labels(&[("job", "a")]),
        samples: vec![Sample { t: 1000, v: 1.0 }, Sample { t: 16_000, v: f64::NAN }],
    }]);
    assert_eq!(
        query_body(&m, None, &none),
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[1,"1"],[16,"NaN"]]}]}}"#
    );
}

#[test]
fn warnings_infos_and_stats() {
    let mut ann = Annotations::default();
    ann.warn("w1");
    ann.info("i1");
    let stats = QueryStats { samples_loaded: 12, peak_samples: 7, series_loaded: 3 };
    let t = Timings { prepare: 0.5, eval: 0.25, total: 1.0 };
    let body = query_body(&QueryValue::Scalar { t: 0, v: 2.0 }, Some((&stats, &t)), &ann);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["warnings"], serde_json::json!(["PromQL warning: w1"]));
    assert_eq!(v["infos"], serde_json::json!(["PromQL info: i1"]));
    let s = &v["data"]["stats"];
    assert_eq!(s["samples"], serde_json::json!({"totalQueryableSamples": 12, "peakSamples": 7}));
    assert_eq!(s["timings"]["evalTotalTime"], 0.25);
    assert_eq!(s["timings"]["execTotalTime"], 1.0);
    assert_eq!(s["timings"]["queryPreparationTime"], 0.5);
    // Prometheus's key order: status, data (resultType, result, stats), warnings, infos.
    let order =
        ["\"status\"", "\"resultType\"", "\"result\"", "\"stats\"", "\"warnings\"", "\"infos\""];
    let pos: Vec<usize> = order.iter().map(|k| body.find(k).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{body}");
    assert_eq!(go_json_number(1e-7), "1e-7");
    assert_eq!(go_json_number(0.000123), "0.000123");
}
