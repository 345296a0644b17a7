use super::*;

#[test]
fn negotiate_like_prometheus() {
    let f = |ct: &str| Format::negotiate(ct, None).map(|(f, _)| f);
    assert_eq!(f("text/plain; version=0.0.4; charset=utf-8"), Ok(Format::PrometheusText));
    assert_eq!(f("text/plain;version=1.0.0;escaping=allow-utf-8"), Ok(Format::PrometheusText));
    assert_eq!(
        f("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        Ok(Format::OpenMetrics)
    );
    assert_eq!(f("Application/OpenMetrics-Text;version=0.0.1"), Ok(Format::OpenMetrics));
    assert!(f("").is_err());
    assert!(f("text/html").is_err());
    assert!(f("garbage").is_err());
    assert!(f("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited").is_err());
    let (fmt, warning) = Format::negotiate("", Some(Format::PrometheusText)).unwrap();
    assert_eq!(fmt, Format::PrometheusText);
    assert!(warning.is_some());
}

fn om(s: &str) -> Parsed {
    parse_format(
        s.as_bytes(),
        Format::OpenMetrics,
        5,
        &ParseOptions { fallback: None, strict_openmetrics: true },
    )
    .unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn pairs(s: &Sample) -> Vec<(&str, &str)> {
    s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect()
}

#[test]
fn openmetrics_escaping_and_help() {
    let p = om("# TYPE a counter\n# HELP a he\\n\\\\l\\tp\na_total{foo=\"b\\\"a\\nr\"} 1\na_total{foo=\"b\\\\a\\z\"} 2\n# EOF\n");
    assert_eq!(p.metadata[0].help, "he\n\\l\\tp");
    assert_eq!(p.metadata[0].kind, MetricType::Counter);
    assert_eq!(pairs(&p.samples[0]), [("__name__", "a_total"), ("foo", "b\"a\nr")]);
    assert_eq!(pairs(&p.samples[1]), [("__name__", "a_total"), ("foo", "b\\a\\z")]);
}

#[test]
fn openmetrics_timestamps_are_seconds() {
    let p =
        om("# TYPE a gauge\na{x=\"1\"} 1 1.5e3\na{x=\"2\"} 1 0.0000000001\na{x=\"3\"} 1\n# EOF");
    let ts: Vec<_> = p.samples.iter().map(|s| (s.timestamp_ms, s.explicit_timestamp)).collect();
    assert_eq!(ts, [(1_500_000, true), (0, true), (5, false)]);
}

#[test]
fn openmetrics_exemplars_and_le_normalization() {
    let p = om("# TYPE a histogram\na_bucket{le=\"1\"} 0 # {a=\"b\"} 0.5\na_bucket{le=\"+Inf\"} 3 # {a=\"d\"} 4 123.5\na_count 3\na_sum 2\na_created 1.5\n# EOF\n");
    assert_eq!(p.samples.len(), 5);
    assert_eq!(p.samples[0].labels.get("le"), Some("1.0"));
    let e = p.samples[1].exemplar.as_ref().unwrap();
    assert_eq!((e.value, e.timestamp_ms), (4.0, Some(123_500)));
    assert_eq!(e.labels.get("a"), Some("d"));
    assert_eq!(p.samples[4].labels.get("__name__"), Some("a_created"));
}

#[test]
fn text_format_details() {
    let p = parse_format(
        b"# TYPE s summary\ns{quantile=\"0.50\"} NaN\n{\"my.metric\", \"k.1\"=\"v\", e=\"\"} 2 -3\n# TYPE h histogram\nh_bucket{le=\"1e6\"} 1\n",
        Format::PrometheusText,
        0,
        &ParseOptions::default(),
    )
    .unwrap();
    assert_eq!(p.samples[0].labels.get("quantile"), Some("0.5"));
    assert_eq!(p.samples[0].value.to_bits(), NORMAL_NAN_BITS);
    assert_eq!(pairs(&p.samples[1]), [("__name__", "my.metric"), ("k.1", "v")]);
    assert_eq!(p.samples[1].timestamp_ms, -3);
    assert_eq!(p.samples[2].labels.get("le"), Some("1e+06"));
}

#[test]
fn rejections_name_the_line() {
    let bad: &[&[u8]] =
        &[b"a 1\nb{x=\"1\",x=\"2\"} 1\n", b"a 1\nb{__name__=\"c\"} 1\n", b"a 1\nb{x=\"\xff\"} 1\n"];
    for body in bad {
        let e =
            parse_format(body, Format::PrometheusText, 0, &ParseOptions::default()).unwrap_err();
        assert_eq!(e.line(), Some(2), "{e}");
    }
    let e = parse_format(b"a 1\n", Format::OpenMetrics, 0, &ParseOptions::default()).unwrap_err();
    assert!(e.to_string().contains("# EOF"), "{e}");
}
