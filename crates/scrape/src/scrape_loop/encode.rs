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
        let timeseries = series
            .by_ref()
            .take(MAX_SERIES_PER_REQUEST)
            .map(|o| pb::TimeSeries {
                labels: labels(o.labels),
                samples: vec![pb::Sample { value: o.v, timestamp: o.t }],
                exemplars: o
                    .exemplar
                    .map(|e| pb::Exemplar {
                        labels: labels(e.labels),
                        value: e.value,
                        timestamp: e.timestamp_ms.unwrap_or(o.t),
                    })
                    .into_iter()
                    .collect(),
                histograms: Vec::new(),
            })
            .collect();
        let req = pb::WriteRequest { timeseries, metadata: std::mem::take(&mut metadata) };
        // Snappy's block encoder fails only on inputs over ~4 GiB, far past our chunk size.
        match snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()) {
            Ok(b) => bodies.push(Bytes::from(b)),
            Err(error) => tracing::error!(%error, "cannot compress scraped samples"),
        }
    }
    bodies
}
