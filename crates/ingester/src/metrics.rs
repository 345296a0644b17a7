//! The ingester's own metrics, registered into a registry the caller owns.
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone)]
pub struct IngesterMetrics {
    pub samples_received: Counter,
    pub samples_appended: Counter,
    pub samples_rejected: Family<ReasonLabel, Counter>,
    pub series_created: Counter,
    pub push_requests: Family<OutcomeLabel, Counter>,
    pub commit_seconds: Histogram,
    pub head_series: Gauge,
    pub head_samples: Gauge,
    pub head_bytes: Gauge,
}

impl IngesterMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = IngesterMetrics {
            samples_received: Counter::default(),
            samples_appended: Counter::default(),
            samples_rejected: Family::default(),
            series_created: Counter::default(),
            push_requests: Family::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            head_series: Gauge::default(),
            head_samples: Gauge::default(),
            head_bytes: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("strata");
        r.register(
            "samples_received",
            "Float samples received in push requests, before validation",
            m.samples_received.clone(),
        );
        r.register(
            "samples_appended",
            "Float samples committed to the log and appended to the head",
            m.samples_appended.clone(),
        );
        r.register(
            "samples_rejected",
            "Samples, histograms and exemplars refused or dropped, by reason",
            m.samples_rejected.clone(),
        );
        r.register("series_created", "Series created in the head", m.series_created.clone());
        r.register("push_requests", "Push requests by outcome", m.push_requests.clone());
        r.register(
            "commit_latency_seconds",
            "Time from a push's decode to its commit and apply on every touched shard",
            m.commit_seconds.clone(),
        );
        r.register("head_series", "Series held in the in-memory head", m.head_series.clone());
        r.register("head_samples", "Samples held in the in-memory head", m.head_samples.clone());
        r.register(
            "head_bytes",
            "Estimated heap bytes used by the in-memory head",
            m.head_bytes.clone(),
        );
        m
    }

    pub fn rejected(&self, reason: &str, n: u64) {
        if n > 0 {
            self.samples_rejected
                .get_or_create(&ReasonLabel { reason: reason.to_string() })
                .inc_by(n);
        }
    }

    pub fn request(&self, outcome: &str) {
        self.push_requests.get_or_create(&OutcomeLabel { outcome: outcome.to_string() }).inc();
    }
}
