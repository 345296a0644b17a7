use super::*;

#[test]
fn negotiate_like_prometheus() {
    let f = |ct: &str| Format::negotiate(ct, None).map(|(f, _)| f);
    assert_eq!(f("text/plain; version=0.0.4; charset=utf-8"), Ok(Format::PrometheusText));
    assert_eq!(f("text/plain;version=1.0.0;escaping=allow-utf-8"), Ok(Format::PrometheusText));
    assert_eq!(f("application/openmetrics-text; version=1.0.0; charset=utf-8"), Ok(Format::OpenMetrics));
    assert_eq!(f("Application/OpenMetrics-Text;version=0.0.1"), Ok(Format::OpenMetrics));
    assert!(f("").is_err());
    assert!(f("text/html").is_err());
    assert!(f("garbage").is_err());
    assert!(f("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited").is_err());
    let (fmt, warning) = Format::negotiate("", Some(Format::PrometheusText)).unwrap();
    assert_eq!(fmt, Format::PrometheusText);
    assert!(warning.is_some());
}
