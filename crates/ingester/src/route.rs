//! Decoding remote-write bodies (1.0 and 2.0) and splitting them into per-shard batches.
use bytes::Bytes;
use prost::Message;
use strata_model::{label_hash, Error, Result, ShardId, WireVersion};
use strata_proto::prometheus::{metric_metadata::MetricType as V1Type, WriteRequest};
use strata_proto::raft_v1::{MetricMetadata, SeriesSamples, ShardBatch};
use strata_proto::write_v2::{metadata::MetricType as V2Type, Request as V2Request};

use crate::validate::check_labels;

/// Size limits applied before any decoding work is done.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest compressed body accepted (413 above).
    pub max_request_bytes: usize,
    /// Largest decompressed body accepted (413 above).
    pub max_decompressed_bytes: usize,
}

/// A push split by shard, plus what was dropped on the way.
#[derive(Debug, Default)]
pub struct Routed {
    /// One batch per shard that received anything.
    pub batches: Vec<(ShardId, ShardBatch)>,
    /// Float samples routed to shards.
    pub samples: u64,
    /// Native histogram samples received (not stored yet).
    pub histograms_dropped: u64,
    /// Exemplars received (not stored yet).
    pub exemplars_dropped: u64,
    /// Series refused by validation, and their samples.
    pub invalid_series: u64,
    pub invalid_samples: u64,
    /// The first few validation errors, for the 400 body.
    pub errors: Vec<String>,
}

impl Routed {
    fn invalid(&mut self, err: String, samples: usize) {
        self.invalid_series += 1;
        self.invalid_samples += samples as u64;
        if self.errors.len() < 3 {
            self.errors.push(err);
        }
    }
}

/// Decompresses a snappy block-format body, enforcing both limits.
pub fn decompress(body: &[u8], limits: &DecodeLimits) -> Result<Bytes> {
    if body.is_empty() {
        return Err(Error::Invalid("empty request body".into()));
    }
    if body.len() > limits.max_request_bytes {
        return Err(Error::TooLarge(format!(
            "request body of {} bytes exceeds the limit of {} bytes",
            body.len(),
            limits.max_request_bytes
        )));
    }
    let len = snap::raw::decompress_len(body)
        .map_err(|e| Error::Invalid(format!("snappy: corrupt input: {e}")))?;
    if len > limits.max_decompressed_bytes {
        return Err(Error::TooLarge(format!(
            "decompressed body of {len} bytes exceeds the limit of {} bytes",
            limits.max_decompressed_bytes
        )));
    }
    let out = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| Error::Invalid(format!("snappy: corrupt input: {e}")))?;
    Ok(Bytes::from(out))
}

/// The shard of a series: mixes the tenant in so tenants spread independently.
pub fn shard_of(tenant_hash: u64, series_hash: u64, shards: u32) -> ShardId {
    let mixed = (series_hash ^ tenant_hash.rotate_left(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ShardId(((mixed >> 32) % u64::from(shards.max(1))) as u32)
}

/// Hash of a tenant id, for routing.
pub fn tenant_hash(tenant: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(tenant.as_bytes())
}

struct Router<'a> {
    tenant: &'a str,
    tenant_hash: u64,
    shards: u32,
    slots: Vec<Option<ShardBatch>>,
    out: Routed,
}

impl<'a> Router<'a> {
    fn new(tenant: &'a str, shards: u32) -> Self {
        Router {
            tenant,
            tenant_hash: tenant_hash(tenant),
            shards,
            slots: (0..shards).map(|_| None).collect(),
            out: Routed::default(),
        }
    }

    fn slot(&mut self, shard: ShardId) -> &mut ShardBatch {
        let tenant = self.tenant;
        self.slots[shard.0 as usize]
            .get_or_insert_with(|| ShardBatch { tenant: tenant.to_string(), ..Default::default() })
    }

    /// Validates one series and adds it to its shard's batch.
    fn add(&mut self, mut pairs: Vec<(Bytes, Bytes)>, timestamps: Vec<i64>, values: Vec<f64>) {
        if let Err(e) = check_labels(&mut pairs) {
            self.out.invalid(e, timestamps.len());
            return;
        }
        if timestamps.is_empty() {
            return;
        }
        let hash = label_hash(pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref())));
        let shard = shard_of(self.tenant_hash, hash, self.shards);
        self.out.samples += timestamps.len() as u64;
        let mut labels = Vec::with_capacity(pairs.len() * 2);
        for (n, v) in pairs {
            labels.push(n);
            labels.push(v);
        }
        self.slot(shard).series.push(SeriesSamples { hash, labels, timestamps, values });
    }

    fn add_metadata(&mut self, md: MetricMetadata) {
        let empty = md.r#type == "unknown" && md.help.is_empty() && md.unit.is_empty();
        if md.metric_family_name.is_empty() || empty {
            return;
        }
        let h = xxhash_rust::xxh3::xxh3_64(md.metric_family_name.as_bytes());
        let shard = shard_of(self.tenant_hash, h, self.shards);
        let batch = self.slot(shard);
        if !batch.metadata.contains(&md) {
            batch.metadata.push(md);
        }
    }

    fn finish(mut self) -> Routed {
        for (i, slot) in self.slots.into_iter().enumerate() {
            if let Some(b) = slot {
                self.out.batches.push((ShardId(i as u32), b));
            }
        }
        self.out
    }
}

fn v1_type(t: i32) -> &'static str {
    match V1Type::try_from(t).unwrap_or(V1Type::Unknown) {
        V1Type::Unknown => "unknown",
        V1Type::Counter => "counter",
        V1Type::Gauge => "gauge",
        V1Type::Histogram => "histogram",
        V1Type::Gaugehistogram => "gaugehistogram",
        V1Type::Summary => "summary",
        V1Type::Info => "info",
        V1Type::Stateset => "stateset",
    }
}

fn v2_type(t: i32) -> &'static str {
    match V2Type::try_from(t).unwrap_or(V2Type::Unspecified) {
        V2Type::Unspecified => "unknown",
        V2Type::Counter => "counter",
        V2Type::Gauge => "gauge",
        V2Type::Histogram => "histogram",
        V2Type::Gaugehistogram => "gaugehistogram",
        V2Type::Summary => "summary",
        V2Type::Info => "info",
        V2Type::Stateset => "stateset",
    }
}

/// Decodes a decompressed body and routes its series to shards.
pub fn route(version: WireVersion, tenant: &str, body: Bytes, shards: u32) -> Result<Routed> {
    match version {
        WireVersion::V1 => route_v1(tenant, body, shards),
        WireVersion::V2 => route_v2(tenant, body, shards),
    }
}

fn route_v1(tenant: &str, body: Bytes, shards: u32) -> Result<Routed> {
    let req = WriteRequest::decode(body)
        .map_err(|e| Error::Invalid(format!("decoding remote-write 1.0 protobuf: {e}")))?;
    let mut r = Router::new(tenant, shards);
    for ts in req.timeseries {
        r.out.histograms_dropped += ts.histograms.len() as u64;
        r.out.exemplars_dropped += ts.exemplars.len() as u64;
        let pairs = ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
        let (t, v) = ts.samples.iter().map(|s| (s.timestamp, s.value)).unzip();
        r.add(pairs, t, v);
    }
    for md in req.metadata {
        let kind = v1_type(md.r#type).to_string();
        r.add_metadata(MetricMetadata {
            metric_family_name: md.metric_family_name,
            r#type: kind,
            help: md.help,
            unit: md.unit,
        });
    }
    Ok(r.finish())
}

fn symbol(symbols: &[Bytes], i: u32) -> Option<&Bytes> {
    symbols.get(i as usize)
}

fn symbol_str(symbols: &[Bytes], i: u32) -> Result<String, String> {
    let b = symbol(symbols, i).ok_or_else(|| format!("symbol reference {i} out of range"))?;
    String::from_utf8(b.to_vec()).map_err(|_| format!("symbol {i} is not valid UTF-8"))
}

fn route_v2(tenant: &str, body: Bytes, shards: u32) -> Result<Routed> {
    let req = V2Request::decode(body)
        .map_err(|e| Error::Invalid(format!("decoding remote-write 2.0 protobuf: {e}")))?;
    if req.symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(Error::Invalid("symbols[0] must be the empty string".into()));
    }
    let syms = &req.symbols;
    let mut r = Router::new(tenant, shards);
    for ts in req.timeseries {
        r.out.histograms_dropped += ts.histograms.len() as u64;
        r.out.exemplars_dropped += ts.exemplars.len() as u64;
        let n = ts.samples.len();
        if ts.labels_refs.len() % 2 != 0 {
            r.out.invalid("odd number of label references in series".into(), n);
            continue;
        }
        let mut pairs = Vec::with_capacity(ts.labels_refs.len() / 2);
        let mut bad = None;
        for c in ts.labels_refs.chunks_exact(2) {
            match (symbol(syms, c[0]), symbol(syms, c[1])) {
                (Some(a), Some(b)) => pairs.push((a.clone(), b.clone())),
                _ => {
                    bad = Some(format!("label reference ({}, {}) out of range", c[0], c[1]));
                    break;
                }
            }
        }
        if let Some(e) = bad {
            r.out.invalid(e, n);
            continue;
        }
        if let Some(md) = &ts.metadata {
            let name = pairs
                .iter()
                .find(|(k, _)| k.as_ref() == b"__name__")
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
                .map(str::to_string);
            let help = symbol_str(syms, md.help_ref);
            let unit = symbol_str(syms, md.unit_ref);
            match (name, help, unit) {
                (Some(name), Ok(help), Ok(unit)) => r.add_metadata(MetricMetadata {
                    metric_family_name: name,
                    r#type: v2_type(md.r#type).to_string(),
                    help,
                    unit,
                }),
                (_, Err(e), _) | (_, _, Err(e)) => {
                    r.out.invalid(format!("metadata: {e}"), n);
                    continue;
                }
                (None, _, _) => {}
            }
        }
        let (t, v) = ts.samples.iter().map(|s| (s.timestamp, s.value)).unzip();
        r.add(pairs, t, v);
    }
    Ok(r.finish())
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
