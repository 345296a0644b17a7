//! Scraped samples as remote-write 1.0 requests, so that they enter the store through the
//! same [`strata_model::PushSink`] as remote-write does.
use bytes::Bytes;
use prost::Message;
use strata_model::Labels;
use strata_proto::prometheus as pb;

use super::append::Out;
use crate::expfmt::{FamilyMetadata, MetricType};

/// Series per request: scrapes of any size are split so that no request comes near the
/// ingester's body limits (remote-write senders send 2000 samples by default).
pub(crate) const MAX_SERIES_PER_REQUEST: usize = 5_000;

fn labels(l: Labels) -> Vec<pb::Label> {
    l.0.into_iter()
        .map(|l| pb::Label { name: Bytes::from(l.name), value: Bytes::from(l.value) })
        .collect()
}

/// One `WriteRequest.timeseries` entry: the series' pre-encoded labels, its sample and
/// exemplar, as prost would encode the same `TimeSeries`.
fn put_series(o: Out, buf: &mut Vec<u8>) {
    use prost::encoding::{encode_varint, encoded_len_varint};
    let t = o.t as u64;
    // Sample { value = 1 (fixed64), timestamp = 2 (varint) }, both always written.
    let sample_len = 1 + 8 + 1 + encoded_len_varint(t);
    let exemplar = o.exemplar.map(|e| pb::Exemplar {
        labels: labels(e.labels),
        value: e.value,
        timestamp: e.timestamp_ms.unwrap_or(o.t),
    });
    let exemplar_len = exemplar.as_ref().map_or(0, |e| {
        let n = e.encoded_len();
        1 + encoded_len_varint(n as u64) + n
    });
    let len = o.series.encoded.len()
        + 1
        + encoded_len_varint(sample_len as u64)
        + sample_len
        + exemplar_len;
    buf.push(0x0a); // WriteRequest.timeseries
    encode_varint(len as u64, buf);
    buf.extend_from_slice(&o.series.encoded);
    buf.push(0x12); // TimeSeries.samples
    encode_varint(sample_len as u64, buf);
    buf.push(0x09); // Sample.value
    buf.extend_from_slice(&o.v.to_le_bytes());
    buf.push(0x10); // Sample.timestamp
    encode_varint(t, buf);
    if let Some(e) = exemplar {
        prost::encoding::message::encode(3, &e, buf);
    }
}

fn metric_type(k: MetricType) -> pb::metric_metadata::MetricType {
    use pb::metric_metadata::MetricType as T;
    match k {
        MetricType::Counter => T::Counter,
        MetricType::Gauge => T::Gauge,
        MetricType::Histogram => T::Histogram,
        MetricType::Summary => T::Summary,
        MetricType::Unknown => T::Unknown,
        MetricType::GaugeHistogram => T::Gaugehistogram,
        MetricType::Info => T::Info,
        MetricType::StateSet => T::Stateset,
    }
}

/// Snappy-compressed `prometheus.WriteRequest` bodies, one per [`MAX_SERIES_PER_REQUEST`]
/// series; the metadata goes with the first.
pub(crate) fn encode(series: Vec<Out>, metadata: &[FamilyMetadata]) -> Vec<Bytes> {
    let mut bodies = Vec::new();
    for raw in encode_raw(series, metadata) {
        // Snappy's block encoder fails only on inputs over ~4 GiB, far past our chunk size.
        match snap::raw::Encoder::new().compress_vec(&raw) {
            Ok(b) => bodies.push(Bytes::from(b)),
            Err(error) => tracing::error!(%error, "cannot compress scraped samples"),
        }
    }
    bodies
}

/// [`encode`] without the compression.
pub(crate) fn encode_raw(series: Vec<Out>, metadata: &[FamilyMetadata]) -> Vec<Vec<u8>> {
    let mut bodies = Vec::with_capacity(series.len() / MAX_SERIES_PER_REQUEST + 1);
    let mut metadata: Vec<pb::MetricMetadata> = metadata
        .iter()
        .map(|m| pb::MetricMetadata {
            r#type: metric_type(m.kind).into(),
            metric_family_name: m.name.clone(),
            help: m.help.clone(),
            unit: m.unit.clone(),
        })
        .collect();
    let mut series = series.into_iter().peekable();
    while series.peek().is_some() || !metadata.is_empty() {
        let mut buf = Vec::with_capacity(64 * 1024);
        for o in series.by_ref().take(MAX_SERIES_PER_REQUEST) {
            put_series(o, &mut buf);
        }
        for m in std::mem::take(&mut metadata) {
            prost::encoding::message::encode(3, &m, &mut buf);
        }
        bodies.push(buf);
    }
    bodies
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decode(body: &Bytes) -> pb::WriteRequest {
        let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
        pb::WriteRequest::decode(&raw[..]).unwrap()
    }

    #[test]
    fn requests_hold_every_series_sample_exemplar_and_metadata() {
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
        let mut with_exemplar = Out::new(&l(&[("__name__", "b"), ("x", "é")]), -5, 0.0);
        with_exemplar.exemplar = Some(crate::expfmt::Exemplar {
            labels: l(&[("trace_id", "abc")]),
            value: 2.5,
            timestamp_ms: None,
        });
        let mut out =
            vec![Out::new(&l(&[("__name__", "a"), ("job", "j")]), 1_700_000_000_000, 1.5)];
        out.push(with_exemplar);
        out.extend(
            (0..MAX_SERIES_PER_REQUEST)
                .map(|i| Out::new(&l(&[("__name__", "c"), ("i", &i.to_string())]), 7, f64::NAN)),
        );
        let md = [FamilyMetadata {
            name: "a".into(),
            kind: MetricType::Counter,
            help: "Help.".into(),
            unit: String::new(),
        }];
        let bodies = encode(out, &md);
        assert_eq!(bodies.len(), 2);
        let first = decode(&bodies[0]);
        assert_eq!(first.timeseries.len(), MAX_SERIES_PER_REQUEST);
        assert_eq!(first.metadata.len(), 1);
        assert_eq!(first.metadata[0].metric_family_name, "a");
        assert_eq!(first.metadata[0].r#type, i32::from(pb::metric_metadata::MetricType::Counter));
        let a = &first.timeseries[0];
        assert_eq!(a.labels, labels(l(&[("__name__", "a"), ("job", "j")])));
        assert_eq!(a.samples, vec![pb::Sample { value: 1.5, timestamp: 1_700_000_000_000 }]);
        let b = &first.timeseries[1];
        assert_eq!(b.labels, labels(l(&[("__name__", "b"), ("x", "é")])));
        assert_eq!(b.samples, vec![pb::Sample { value: 0.0, timestamp: -5 }]);
        assert_eq!(b.exemplars.len(), 1);
        assert_eq!((b.exemplars[0].value, b.exemplars[0].timestamp), (2.5, -5));
        let second = decode(&bodies[1]);
        assert_eq!(second.timeseries.len(), 2);
        assert!(second.metadata.is_empty());
        assert!(second.timeseries[1].samples[0].value.is_nan());
        assert_eq!(
            second.timeseries[1].labels[1].value,
            Bytes::from(format!("{}", MAX_SERIES_PER_REQUEST - 1))
        );
    }
}
