//! Decoding remote-write bodies (1.0 and 2.0) and splitting them into per-shard batches.
use bytes::Bytes;
use prost::Message;
use strata_model::{encode_key, key_hash, Error, Result, ShardId, WireVersion};
use strata_proto::prometheus::{
    metric_metadata::MetricType as V1Type, Exemplar as V1Exemplar, Histogram as V1Histogram,
    MetricMetadata as V1Metadata,
};
use strata_proto::raft_v1::MetricMetadata;
use strata_proto::write_v2::{metadata::MetricType as V2Type, Request as V2Request};

use crate::batch::{short_label, BatchWriter, PAIR_KEY};
use crate::validate::{check_labels_ascii, render};
use crate::wire::{Fields, WireError, WireResult};

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
    /// One encoded `strata.raft.v1.ShardBatch` (the Raft log entry) per shard that received
    /// anything, in shard order.
    pub batches: Vec<(ShardId, Bytes)>,
    /// Float samples routed to shards.
    pub samples: u64,
    /// Native histogram samples received (not stored yet).
    pub histograms_dropped: u64,
    /// Exemplars received (not stored yet).
    pub exemplars_dropped: u64,
    /// Samples refused for a timestamp more than [`MAX_AHEAD_MS`] past the receiver's clock.
    pub future_samples: u64,
    /// Samples refused for a timestamp before [`MIN_TIMESTAMP_MS`].
    pub ancient_samples: u64,
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

/// Splits one push into per-shard log entries as its series are decoded.
struct Router<'a> {
    tenant: &'a str,
    tenant_hash: u64,
    shards: u32,
    slots: Vec<Option<BatchWriter>>,
    /// Initial size of a shard's entry: its even share of the body (entries take about as
    /// many bytes per series as the request does), so most never grow.
    slot_capacity: usize,
    /// A series key built from pairs, reused.
    key: Vec<u8>,
    /// Samples after this (Unix ms) are refused as too far in the future.
    max_t: i64,
    /// Bytes the log entries have taken, and may take. A 2.0 request names each label string
    /// once in its symbol table and every series that uses it copies it, so a small body
    /// could otherwise expand into more entries than memory holds.
    used: usize,
    max_used: usize,
    out: Routed,
}

/// How far past its own clock the receiver takes samples, as Prometheus's remote-write
/// receiver does (10 minutes): one sample from a wrong clock would otherwise stop its series
/// (every later sample out of order) until that time came.
pub const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// The oldest timestamp taken (about 146 million years before 1970): blocks are aligned to
/// multiples of their range, and a range this far from `i64::MIN` never overflows when it is
/// computed, so no sample can make a range that cannot be flushed.
pub const MIN_TIMESTAMP_MS: i64 = -(1 << 62);

impl<'a> Router<'a> {
    fn new(tenant: &'a str, shards: u32, body_len: usize, limits: &DecodeLimits) -> Self {
        Router {
            tenant,
            tenant_hash: tenant_hash(tenant),
            shards,
            slots: (0..shards).map(|_| None).collect(),
            slot_capacity: body_len / shards.max(1) as usize * 9 / 8 + 64,
            key: Vec::new(),
            max_t: crate::now_ms().saturating_add(MAX_AHEAD_MS),
            used: 0,
            max_used: max_routed_bytes(limits),
            out: Routed::default(),
        }
    }

    /// Counts `bytes` more of log entries; an error once they pass the limit.
    fn charge(&mut self, bytes: usize) -> Result<()> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.max_used {
            return Err(Error::TooLarge(format!(
                "the request's series take more than {} bytes once their label references are \
                 resolved",
                self.max_used
            )));
        }
        Ok(())
    }

    fn slot(&mut self, shard: ShardId) -> &mut BatchWriter {
        let (tenant, capacity) = (self.tenant, self.slot_capacity);
        self.slots[shard.0 as usize].get_or_insert_with(|| BatchWriter::new(tenant, capacity))
    }

    /// Validates one series (sorting its labels) and writes it into its shard's entry.
    /// `pairs` are slices of the request body; nothing is copied until the entry is written.
    /// `raw`, when given, is the same labels as the request encoded them, back to back and
    /// each in [`short_label`] form: if validation left them alone, that is their series key
    /// byte for byte ([`strata_model::encode_key`]), hashed and copied in one piece.
    /// Routes one series; `false` when its labels were refused (and it was counted invalid),
    /// an error when the request's entries grow past their limit.
    fn add(
        &mut self,
        pairs: &mut Vec<(&[u8], &[u8])>,
        raw: Option<&[u8]>,
        samples: &[(i64, f64)],
    ) -> Result<bool> {
        // Counted before any look at the labels: checking them costs as much as copying.
        let labels = match raw {
            Some(raw) => raw.len(),
            None => pairs.iter().map(|(n, v)| n.len() + v.len() + 4).sum(),
        };
        self.charge(labels + 16 * samples.len() + 16)?;
        // The raw labels hold every name and value behind one-byte tags and lengths (all
        // below 0x80): if all their bytes are ASCII, so are the values.
        let ascii = raw.is_some_and(<[u8]>::is_ascii);
        let canonical = match check_labels_ascii(pairs, ascii) {
            Ok(canonical) => canonical,
            Err(e) => {
                self.out.invalid(e, samples.len());
                return Ok(false);
            }
        };
        let max_t = self.max_t;
        let kept: Vec<(i64, f64)>;
        let in_bounds = |t: i64| (MIN_TIMESTAMP_MS..=max_t).contains(&t);
        let samples = if samples.iter().all(|s| in_bounds(s.0)) {
            samples
        } else {
            kept = samples.iter().filter(|s| in_bounds(s.0)).copied().collect();
            let future = samples.iter().filter(|s| s.0 > max_t).count();
            let ancient = samples.len() - kept.len() - future;
            self.out.future_samples += future as u64;
            self.out.ancient_samples += ancient as u64;
            if self.out.errors.len() < 3 && future > 0 {
                self.out.errors.push(format!(
                    "out of bounds: {future} samples too far in the future (more than {} minutes ahead) for series {}",
                    MAX_AHEAD_MS / 60_000,
                    render(pairs)
                ));
            }
            if self.out.errors.len() < 3 && ancient > 0 {
                self.out.errors.push(format!(
                    "out of bounds: {ancient} samples older than {MIN_TIMESTAMP_MS} ms since the epoch for series {}",
                    render(pairs)
                ));
            }
            &kept[..]
        };
        if samples.is_empty() {
            return Ok(true);
        }
        let mut built = std::mem::take(&mut self.key);
        let key = match raw {
            Some(raw) if canonical => raw,
            _ => {
                built.clear();
                encode_key(pairs.iter().copied(), &mut built);
                &built
            }
        };
        let hash = key_hash(key);
        let shard = shard_of(self.tenant_hash, hash, self.shards);
        self.out.samples += samples.len() as u64;
        self.slot(shard).push_series(hash, key, samples, &[]);
        self.key = built;
        Ok(true)
    }

    /// Metadata is not counted here: 1.0 metadata lies in the body, and 2.0 metadata is
    /// counted where its strings are taken from the symbol table.
    fn add_metadata(&mut self, md: MetricMetadata) {
        let empty = md.r#type == "unknown" && md.help.is_empty() && md.unit.is_empty();
        if md.metric_family_name.is_empty() || empty {
            return;
        }
        let h = xxhash_rust::xxh3::xxh3_64(md.metric_family_name.as_bytes());
        let shard = shard_of(self.tenant_hash, h, self.shards);
        self.slot(shard).push_metadata(md);
    }

    fn finish(mut self) -> Routed {
        for (i, slot) in self.slots.into_iter().enumerate() {
            if let Some(b) = slot {
                self.out.batches.push((ShardId(i as u32), b.finish()));
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
/// `limits` bound the log entries too: at most twice `max_decompressed_bytes` (a 1.0
/// request's entries take about as many bytes as its body, so only 2.0 requests, whose series
/// share the strings of a symbol table, can reach it).
pub fn route(
    version: WireVersion,
    tenant: &str,
    body: Bytes,
    shards: u32,
    limits: &DecodeLimits,
) -> Result<Routed> {
    match version {
        WireVersion::V1 => route_v1(tenant, body, shards, limits),
        WireVersion::V2 => route_v2(tenant, body, shards, limits),
    }
}

/// The most bytes the log entries of one request may take.
fn max_routed_bytes(limits: &DecodeLimits) -> usize {
    limits.max_decompressed_bytes.saturating_mul(2)
}

// Field numbers of the remote-write 1.0 messages (proto/prometheus/remote.proto).
const WRITE_TIMESERIES: u32 = 1;
const WRITE_METADATA: u32 = 3;
const SERIES_LABELS: u32 = 1;
const SERIES_SAMPLES: u32 = 2;
const SERIES_EXEMPLARS: u32 = 3;
const SERIES_HISTOGRAMS: u32 = 4;
const LABEL_NAME: u32 = 1;
const LABEL_VALUE: u32 = 2;
const SAMPLE_VALUE: u32 = 1;
const SAMPLE_TIMESTAMP: u32 = 2;

/// Decodes a `prometheus.WriteRequest` in place, one series at a time, with the generated
/// decoder's semantics (see [`crate::wire`]): labels stay slices of `body`.
fn route_v1(tenant: &str, body: Bytes, shards: u32, limits: &DecodeLimits) -> Result<Routed> {
    let invalid = |e: WireError| Error::Invalid(format!("decoding remote-write 1.0 protobuf: {e}"));
    let mut r = Router::new(tenant, shards, body.len(), limits);
    // Reused for every series.
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut samples: Vec<(i64, f64)> = Vec::new();
    let mut metadata = Vec::new();
    let mut f = Fields::new(&body);
    while let Some((field, wt)) = f.next_key().map_err(invalid)? {
        match field {
            WRITE_TIMESERIES => {
                let msg = f.bytes(wt).map_err(invalid)?;
                pairs.clear();
                samples.clear();
                let raw =
                    decode_v1_series(msg, &mut pairs, &mut samples, &mut r.out).map_err(invalid)?;
                r.add(&mut pairs, raw, &samples)?;
            }
            WRITE_METADATA => {
                let msg = f.bytes(wt).map_err(invalid)?;
                metadata.push(V1Metadata::decode(msg).map_err(|e| invalid(e.into()))?);
            }
            _ => f.skip(field, wt).map_err(invalid)?,
        }
    }
    for md in metadata {
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

/// One `prometheus.TimeSeries`: labels into `pairs`, samples into `samples`; exemplars and
/// histograms are checked and counted, not kept. Returns the labels' bytes as they lie in
/// `msg` when they are back to back and every one is in [`short_label`] form.
fn decode_v1_series<'a>(
    msg: &'a [u8],
    pairs: &mut Vec<(&'a [u8], &'a [u8])>,
    samples: &mut Vec<(i64, f64)>,
    out: &mut Routed,
) -> WireResult<Option<&'a [u8]>> {
    // The labels' byte range, while they can still be passed on as they are.
    let mut raw: Option<(usize, usize)> = None;
    let mut raw_ok = true;
    let mut f = Fields::new(msg);
    loop {
        let start = msg.len() - f.remaining();
        let Some((field, wt)) = f.next_key()? else { break };
        match field {
            SERIES_LABELS => {
                let mut label = f.bytes(wt)?;
                // A second run of labels, or a first label with a long key or length: pass
                // the pairs instead.
                raw_ok &= raw.is_none() && msg.len() - f.remaining() == start + 2 + label.len();
                loop {
                    match short_label(label) {
                        Some(pair) => pairs.push(pair),
                        None => {
                            raw_ok = false;
                            pairs.push(decode_v1_label(label)?);
                        }
                    }
                    // The rest of the labels usually follow back to back in short form.
                    match f.short_bytes(PAIR_KEY) {
                        Some(next) => label = next,
                        None => break,
                    }
                }
                raw = Some((start, msg.len() - f.remaining()));
            }
            SERIES_SAMPLES => {
                let msg = f.bytes(wt)?;
                if let Some(sample) = short_sample(msg) {
                    samples.push(sample);
                    continue;
                }
                let (mut t, mut v) = (0, 0.0);
                let mut s = Fields::new(msg);
                while let Some((field, wt)) = s.next_key()? {
                    match field {
                        SAMPLE_VALUE => v = s.double(wt)?,
                        SAMPLE_TIMESTAMP => t = s.int64(wt)?,
                        _ => s.skip(field, wt)?,
                    }
                }
                samples.push((t, v));
            }
            // Rare, and dropped: the generated decoders check them as before.
            SERIES_EXEMPLARS => {
                V1Exemplar::decode(f.bytes(wt)?)?;
                out.exemplars_dropped += 1;
            }
            SERIES_HISTOGRAMS => {
                V1Histogram::decode(f.bytes(wt)?)?;
                out.histograms_dropped += 1;
            }
            _ => f.skip(field, wt)?,
        }
    }
    Ok(match raw {
        Some((start, end)) if raw_ok => msg.get(start..end),
        _ => None,
    })
}

/// A `prometheus.Sample` in the form every sender writes, its value (`0x09`, 8 bytes) then its
/// timestamp (`0x10`, a varint) and nothing else, as (timestamp, value); `None` for any other
/// form, which the general reader then takes.
#[inline]
fn short_sample(msg: &[u8]) -> Option<(i64, f64)> {
    let (&[0x09, b0, b1, b2, b3, b4, b5, b6, b7, 0x10], mut rest) =
        msg.split_first_chunk::<10>()?
    else {
        return None;
    };
    let v = f64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
    let t = prost::encoding::decode_varint(&mut rest).ok()?;
    rest.is_empty().then_some((t as i64, v))
}

/// One `prometheus.Label` as (name, value).
#[inline]
fn decode_v1_label(msg: &[u8]) -> WireResult<(&[u8], &[u8])> {
    // Nearly every label is exactly `name` then `value`, each under 128 bytes.
    if let Some(pair) = short_label(msg) {
        return Ok(pair);
    }
    // Anything else: the general reader, from the start; the last occurrence wins.
    let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
    let mut l = Fields::new(msg);
    while let Some((field, wt)) = l.next_key()? {
        match field {
            LABEL_NAME => name = l.bytes(wt)?,
            LABEL_VALUE => value = l.bytes(wt)?,
            _ => l.skip(field, wt)?,
        }
    }
    Ok((name, value))
}

fn symbol(symbols: &[Bytes], i: u32) -> Option<&[u8]> {
    symbols.get(i as usize).map(|b| &b[..])
}

fn symbol_str(symbols: &[Bytes], i: u32) -> Result<String, String> {
    let b = symbol(symbols, i).ok_or_else(|| format!("symbol reference {i} out of range"))?;
    String::from_utf8(b.to_vec()).map_err(|_| format!("symbol {i} is not valid UTF-8"))
}

fn route_v2(tenant: &str, body: Bytes, shards: u32, limits: &DecodeLimits) -> Result<Routed> {
    let body_len = body.len();
    let req = V2Request::decode(body)
        .map_err(|e| Error::Invalid(format!("decoding remote-write 2.0 protobuf: {e}")))?;
    if req.symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(Error::Invalid("symbols[0] must be the empty string".into()));
    }
    let syms = &req.symbols;
    let mut r = Router::new(tenant, shards, body_len, limits);
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut samples: Vec<(i64, f64)> = Vec::new();
    for ts in &req.timeseries {
        r.out.histograms_dropped += ts.histograms.len() as u64;
        r.out.exemplars_dropped += ts.exemplars.len() as u64;
        let n = ts.samples.len();
        if ts.labels_refs.len() % 2 != 0 {
            r.out.invalid("odd number of label references in series".into(), n);
            continue;
        }
        pairs.clear();
        let mut bad = None;
        for c in ts.labels_refs.chunks_exact(2) {
            match (symbol(syms, c[0]), symbol(syms, c[1])) {
                (Some(a), Some(b)) => pairs.push((a, b)),
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
        let mut metadata = None;
        if let Some(md) = &ts.metadata {
            // Counted before the strings are copied out of the symbol table.
            let len = |i| symbol(syms, i).map_or(0, <[u8]>::len);
            r.charge(len(md.help_ref) + len(md.unit_ref))?;
            let name = pairs
                .iter()
                .find(|(k, _)| *k == b"__name__")
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
                .map(str::to_string);
            let help = symbol_str(syms, md.help_ref);
            let unit = symbol_str(syms, md.unit_ref);
            match (name, help, unit) {
                (Some(name), Ok(help), Ok(unit)) => {
                    metadata = Some(MetricMetadata {
                        metric_family_name: name,
                        r#type: v2_type(md.r#type).to_string(),
                        help,
                        unit,
                    })
                }
                (_, Err(e), _) | (_, _, Err(e)) => {
                    r.out.invalid(format!("metadata: {e}"), n);
                    continue;
                }
                (None, _, _) => {}
            }
        }
        samples.clear();
        samples.extend(ts.samples.iter().map(|s| (s.timestamp, s.value)));
        // A refused series leaves no metadata behind.
        if r.add(&mut pairs, None, &samples)? {
            if let Some(md) = metadata {
                r.add_metadata(md);
            }
        }
    }
    Ok(r.finish())
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
