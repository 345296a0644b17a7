use std::collections::HashMap;

use strata_model::MetricMetadata;

/// A metric family's type. The text format knows the first five (`untyped` is read as
/// [`MetricType::Unknown`]); OpenMetrics adds the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    #[default]
    Unknown,
    GaugeHistogram,
    Info,
    StateSet,
}

impl MetricType {
    /// The name Prometheus' metadata API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Unknown => "unknown",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }

    pub(crate) fn from_text_format(s: &[u8]) -> Option<Self> {
        Some(match s {
            b"counter" => MetricType::Counter,
            b"gauge" => MetricType::Gauge,
            b"histogram" => MetricType::Histogram,
            b"summary" => MetricType::Summary,
            b"untyped" => MetricType::Unknown,
            _ => return None,
        })
    }

    pub(crate) fn from_openmetrics(s: &[u8]) -> Option<Self> {
        Some(match s {
            b"counter" => MetricType::Counter,
            b"gauge" => MetricType::Gauge,
            b"histogram" => MetricType::Histogram,
            b"gaugehistogram" => MetricType::GaugeHistogram,
            b"summary" => MetricType::Summary,
            b"info" => MetricType::Info,
            b"stateset" => MetricType::StateSet,
            b"unknown" => MetricType::Unknown,
            _ => return None,
        })
    }
}

/// What `# TYPE`, `# HELP` and `# UNIT` said about one family. Later lines win.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMetadata {
    pub name: String,
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

impl FamilyMetadata {
    pub fn to_model(&self) -> MetricMetadata {
        MetricMetadata {
            kind: self.kind.as_str().to_string(),
            help: self.help.clone(),
            unit: self.unit.clone(),
        }
    }
}

#[derive(Default)]
pub(crate) struct MetaSet {
    families: Vec<FamilyMetadata>,
    index: HashMap<String, usize>,
}

impl MetaSet {
    fn entry(&mut self, name: &str) -> &mut FamilyMetadata {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(FamilyMetadata {
                    name: name.to_string(),
                    kind: MetricType::Unknown,
                    help: String::new(),
                    unit: String::new(),
                });
                let i = self.families.len() - 1;
                self.index.insert(name.to_string(), i);
                i
            }
        };
        &mut self.families[i]
    }

    pub fn set_type(&mut self, name: &str, kind: MetricType) {
        self.entry(name).kind = kind;
    }

    pub fn set_help(&mut self, name: &str, help: String) {
        self.entry(name).help = help;
    }

    pub fn set_unit(&mut self, name: &str, unit: String) {
        self.entry(name).unit = unit;
    }

    pub fn into_vec(self) -> Vec<FamilyMetadata> {
        self.families
    }
}
