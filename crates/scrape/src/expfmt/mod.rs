//! Parsers for the Prometheus text format (0.0.4, and 1.0.0's quoted UTF-8 names) and
//! OpenMetrics 1.0 text.
//!
//! Both parsers accept what Prometheus' `model/textparse` accepts and reject what it
//! rejects, with the label handling of Prometheus' scrape loop on top (duplicate label
//! names fail the scrape, empty label values are dropped). [`ParseOptions::strict_openmetrics`]
//! adds the OpenMetrics 1.0 rules Prometheus does not check (family grouping, histogram
//! bucket order, counter signs, ...), for validating exporters; real exporters break some
//! of them (client_golang writes a negative `_sum` next to negative buckets), so scraping
//! leaves it off.

mod error;
mod lex;
mod meta;
mod openmetrics;
mod strict;
mod text;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use strata_model::{Labels, METRIC_NAME};

pub use error::{ParseError, Result};
pub use meta::{FamilyMetadata, MetricType};

/// The bit pattern Prometheus gives every NaN it parses, so that a scraped NaN can never be
/// mistaken for a staleness marker.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// An exposition format we can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain`: the Prometheus text format, version 0.0.4 or 1.0.0.
    PrometheusText,
    /// `application/openmetrics-text`: OpenMetrics 1.0 (0.0.1 is the same text).
    OpenMetrics,
}

impl Format {
    /// The media type Prometheus maps to this format.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain",
            Format::OpenMetrics => "application/openmetrics-text",
        }
    }

    /// Picks the parser for a response's `Content-Type` as Prometheus'
    /// `textparse.New` does: only the media type counts (not `version`); a blank,
    /// unparsable or unknown type uses `fallback` (the scrape config's
    /// `fallback_scrape_protocol`) with a warning, or fails the scrape when there is none.
    /// Returns the format and the warning to log, if any.
    pub fn negotiate(
        content_type: &str,
        fallback: Option<Format>,
    ) -> Result<(Format, Option<String>)> {
        let problem = if content_type.trim().is_empty() {
            "non-compliant scrape target sending blank Content-Type".to_string()
        } else {
            match media_type(content_type) {
                Some(mt) if mt == "text/plain" => return Ok((Format::PrometheusText, None)),
                Some(mt) if mt == "application/openmetrics-text" => {
                    return Ok((Format::OpenMetrics, None))
                }
                Some(mt) if mt == "application/vnd.google.protobuf" => {
                    // Prometheus would parse it; we never ask for it (see `ScrapeProtocol::accept_header`).
                    return Err(ParseError::UnsupportedContentType(format!(
                        "protobuf exposition format {content_type:?} is not supported yet"
                    )));
                }
                Some(_) => format!("received unsupported Content-Type {content_type:?}"),
                None => format!("cannot parse Content-Type {content_type:?}"),
            }
        };
        match fallback {
            Some(f) => Ok((
                f,
                Some(format!("{problem}, using fallback_scrape_protocol {:?}", f.media_type())),
            )),
            None => Err(ParseError::UnsupportedContentType(format!(
                "{problem} and no fallback_scrape_protocol specified for target"
            ))),
        }
    }
}

/// The lowercased media type of a `Content-Type` value, or `None` when it does not parse
/// (like Go's `mime.ParseMediaType`, but without decoding parameter values).
fn media_type(ct: &str) -> Option<String> {
    let mut parts = ct.split(';');
    let mt = parts.next()?.trim().to_ascii_lowercase();
    let (ty, sub) = mt.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|c| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&c))
    };
    if !token(ty) || !token(sub) {
        return None;
    }
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (k, _) = p.split_once('=')?;
        if !token(k.trim()) {
            return None;
        }
    }
    Some(mt)
}

/// How to parse.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Format to use when the `Content-Type` is blank, unparsable or unknown.
    pub fallback: Option<Format>,
    /// Enforce all of OpenMetrics 1.0 (what its conformance suite checks), not just what
    /// Prometheus enforces. Off for scraping.
    pub strict_openmetrics: bool,
}

/// An exemplar attached to an OpenMetrics sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the epoch, when the exposition gave one.
    pub timestamp_ms: Option<i64>,
}

/// One scraped float sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sorted, `__name__` included, empty values dropped.
    pub labels: Labels,
    pub value: f64,
    /// The exposed timestamp, or the scrape's default timestamp when none was exposed.
    pub timestamp_ms: i64,
    /// Whether the exposition gave the timestamp (for `honor_timestamps`).
    pub explicit_timestamp: bool,
    pub exemplar: Option<Exemplar>,
    /// Where the series (name and label set, as written) lies in the body, for the scrape
    /// cache; `None` when parsed without one in mind (strict OpenMetrics).
    pub raw: Option<RawKey>,
}

/// A text-format sample's series as written: `body[start..end]`, under a `# TYPE` of `kind`
/// (which decides whether `le`/`quantile` are normalized, so it is part of the identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawKey {
    pub start: u32,
    pub end: u32,
    pub kind: MetricType,
    /// OpenMetrics rather than the text format (the same bytes may read differently).
    pub openmetrics: bool,
}

impl RawKey {
    /// The cache key: a tag byte for the format and `kind` (never 0), then the series bytes.
    pub fn write(&self, body: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.push((1 + self.kind as u8) | if self.openmetrics { 0x80 } else { 0 });
        out.extend_from_slice(body.get(self.start as usize..self.end as usize).unwrap_or_default());
    }
}

/// Says whether a scrape cache already knows a series key (see [`RawKey::write`]).
pub type KnownSeries<'a> = &'a dyn Fn(&[u8]) -> bool;

/// A parsed body.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub format: Format,
    /// In exposition order. OpenMetrics `_created` lines are samples too, as Prometheus
    /// ingests them by default.
    pub samples: Vec<Sample>,
    /// One entry per family that had `# TYPE`, `# HELP` or `# UNIT`, in order of first
    /// appearance.
    pub metadata: Vec<FamilyMetadata>,
    /// A Content-Type problem that the fallback format papered over.
    pub warning: Option<String>,
}

/// Parses a scraped (already decompressed) body. Samples without a timestamp get
/// `default_ts_ms`.
pub fn parse(
    body: &[u8],
    content_type: &str,
    default_ts_ms: i64,
    opts: &ParseOptions,
) -> Result<Parsed> {
    parse_cached(body, content_type, default_ts_ms, opts, &|_| false)
}

/// [`parse`] for a scrape loop with a cache: samples whose series `known` says the cache has
/// (and so were parsed and checked before, byte for byte, under the same `# TYPE`) are
/// returned with empty labels and their [`RawKey`] only, skipping label parsing. OpenMetrics
/// lines with an exemplar always take the full parser.
pub fn parse_cached(
    body: &[u8],
    content_type: &str,
    default_ts_ms: i64,
    opts: &ParseOptions,
    known: KnownSeries<'_>,
) -> Result<Parsed> {
    let (format, warning) = Format::negotiate(content_type, opts.fallback)?;
    let mut parsed = parse_in(body, format, default_ts_ms, opts, known)?;
    parsed.warning = warning;
    Ok(parsed)
}

/// Parses a body in a known format.
pub fn parse_format(
    body: &[u8],
    format: Format,
    default_ts_ms: i64,
    opts: &ParseOptions,
) -> Result<Parsed> {
    parse_in(body, format, default_ts_ms, opts, &|_| false)
}

fn parse_in(
    body: &[u8],
    format: Format,
    default_ts_ms: i64,
    opts: &ParseOptions,
    known: KnownSeries<'_>,
) -> Result<Parsed> {
    let mut out = Output {
        default_ts_ms,
        samples: Vec::new(),
        meta: meta::MetaSet::default(),
        known,
        key: Vec::new(),
    };
    match format {
        Format::PrometheusText => text::parse(body, &mut out)?,
        Format::OpenMetrics => openmetrics::parse(body, opts.strict_openmetrics, &mut out)?,
    }
    Ok(Parsed { format, samples: out.samples, metadata: out.meta.into_vec(), warning: None })
}

/// Exemplar labels (in exposition order), value and timestamp.
pub(crate) type RawExemplar = (Vec<(String, String)>, f64, Option<i64>);

/// A sample as the lexers see it, before label checks and normalization.
#[derive(Debug)]
pub(crate) struct RawSample {
    pub line: usize,
    pub name: String,
    /// In exposition order, escapes resolved.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub ts: Option<i64>,
    pub exemplar: Option<RawExemplar>,
    /// Where the series part (name and labels) ended in the body.
    pub series_end: usize,
}

/// What both parsers write into.
pub(crate) struct Output<'k> {
    default_ts_ms: i64,
    samples: Vec<Sample>,
    pub meta: meta::MetaSet,
    known: KnownSeries<'k>,
    /// Reused for cache keys.
    key: Vec<u8>,
}

impl Output<'_> {
    /// Whether the scrape cache knows the series at `raw` in `body`.
    pub fn knows(&mut self, body: &[u8], raw: RawKey) -> bool {
        raw.write(body, &mut self.key);
        (self.known)(&self.key)
    }

    /// Stores a sample of a series the cache knows: no labels, just its key.
    pub fn push_known(&mut self, raw: RawKey, value: f64, ts: Option<i64>) {
        self.samples.push(Sample {
            labels: Labels::default(),
            value,
            timestamp_ms: ts.unwrap_or(self.default_ts_ms),
            explicit_timestamp: ts.is_some(),
            exemplar: None,
            raw: Some(raw),
        });
    }

    /// Checks and stores one sample. `last_type` is the type of the most recent `# TYPE`
    /// line, which Prometheus uses to decide whether `le`/`quantile` are normalized.
    pub fn push(
        &mut self,
        raw: RawSample,
        last_type: MetricType,
        key: Option<RawKey>,
    ) -> Result<()> {
        let line = raw.line;
        let normalize = |name: &str, value: String| -> String {
            let applies = (last_type == MetricType::Histogram && name == "le")
                || (last_type == MetricType::Summary && name == "quantile");
            match applies.then(|| lex::parse_go_float(&value)).flatten() {
                Some(f) => lex::format_om_float(f),
                None => value,
            }
        };
        let mut seen = HashSet::with_capacity(raw.labels.len() + 1);
        seen.insert(METRIC_NAME.to_string());
        let mut pairs = Vec::with_capacity(raw.labels.len() + 1);
        pairs.push((METRIC_NAME.to_string(), raw.name));
        for (name, value) in raw.labels {
            if !seen.insert(name.clone()) {
                return Err(ParseError::at(line, format!("label name {name:?} is not unique")));
            }
            if value.is_empty() {
                continue;
            }
            let value = normalize(&name, value);
            pairs.push((name, value));
        }
        let exemplar = match raw.exemplar {
            None => None,
            Some((labels, value, ts)) => {
                let mut seen = HashSet::with_capacity(labels.len());
                for (name, _) in &labels {
                    if !seen.insert(name.as_str()) {
                        return Err(ParseError::at(
                            line,
                            format!("exemplar label name {name:?} is not unique"),
                        ));
                    }
                }
                Some(Exemplar { labels: Labels::from_pairs(labels), value, timestamp_ms: ts })
            }
        };
        self.samples.push(Sample {
            labels: Labels::from_pairs(pairs),
            value: raw.value,
            timestamp_ms: raw.ts.unwrap_or(self.default_ts_ms),
            explicit_timestamp: raw.ts.is_some(),
            exemplar,
            raw: key,
        });
        Ok(())
    }
}
