//! A shard's Raft log entry: one tenant's share of one push, the `strata.raft.v1.ShardBatch`
//! protobuf message.
//!
//! [`BatchWriter`] encodes it straight from the slices of the decoded request and
//! [`DecodedBatch`] reads it in place, without the per-label `Bytes` and per-series `Vec`s of
//! the generated type. Both speak exactly the generated type's wire format (the writer emits
//! the bytes prost's `encode` would, fields in number order), so log entries written by
//! earlier versions still apply and the generated `ShardBatch` can still read new ones.
use std::ops::Range;

use bytes::Bytes;
use prost::Message;
use strata_head::chunk::XorIter;
use strata_model::{merge_samples, Sample};
use strata_proto::raft_v1::MetricMetadata;

use crate::wire::{
    bytes_field_len, put_bytes, put_key, put_varint, varint_len, Fields, WireError, WireResult,
    WireType,
};

// Field numbers of `ShardBatch` and `SeriesSamples`.
const BATCH_TENANT: u32 = 1;
const BATCH_SERIES: u32 = 2;
const BATCH_METADATA: u32 = 3;
const SERIES_HASH: u32 = 1;
const SERIES_LABELS: u32 = 2;
const SERIES_TIMESTAMPS: u32 = 3;
const SERIES_VALUES: u32 = 4;
const SERIES_LABEL_PAIRS: u32 = 5;
const SERIES_XOR_CHUNKS: u32 = 6;
/// The one-byte key of a `SeriesSamples.labels` string.
const LABELS_KEY: u8 = (SERIES_LABELS << 3) as u8 | WireType::LengthDelimited as u8;
/// The one-byte keys inside `label_pairs`: `TimeSeries.labels`, `Label.name`, `Label.value`.
pub(crate) const PAIR_KEY: u8 = 0x0a;
pub(crate) const NAME_KEY: u8 = 0x0a;
pub(crate) const VALUE_KEY: u8 = 0x12;

/// One `prometheus.Label` in its short form (a name then a value, each under 128 bytes, and
/// nothing else), the form [`SeriesLabels::Encoded`] holds; `None` otherwise.
#[inline(always)]
pub(crate) fn short_label(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut l = Fields::new(msg);
    match (l.short_bytes(NAME_KEY), l.short_bytes(VALUE_KEY)) {
        (Some(name), Some(value)) if l.is_empty() => Some((name, value)),
        _ => None,
    }
}

/// A series' labels on their way into a log entry.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SeriesLabels<'a> {
    /// Sorted (name, value) pairs, written one string at a time (`SeriesSamples.labels`).
    Pairs(&'a [(&'a [u8], &'a [u8])]),
    /// Back-to-back `TimeSeries.labels` fields of a request, every one with a one-byte length
    /// and in [`short_label`] form, sorted and valid: copied in one piece
    /// (`SeriesSamples.label_pairs`).
    Encoded(&'a [u8]),
}

/// Builds one shard's log entry series by series.
#[derive(Debug)]
pub(crate) struct BatchWriter {
    buf: Vec<u8>,
    /// Kept apart and written last, as prost orders fields; deduplicated.
    metadata: Vec<MetricMetadata>,
}

impl BatchWriter {
    /// An entry for `tenant`, with room for about `capacity` bytes.
    pub(crate) fn new(tenant: &str, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        // proto3 leaves default values (here "") off the wire.
        if !tenant.is_empty() {
            put_bytes(BATCH_TENANT, tenant.as_bytes(), &mut buf);
        }
        BatchWriter { buf, metadata: Vec::new() }
    }

    /// Appends a `SeriesSamples`: `labels` sorted by name, `hash` their [`label_hash`], and
    /// (snapshots only) XOR `chunks` holding more of its samples.
    ///
    /// [`label_hash`]: strata_model::label_hash
    pub(crate) fn push_series(
        &mut self,
        hash: u64,
        labels: SeriesLabels<'_>,
        samples: &[(i64, f64)],
        chunks: &[&[u8]],
    ) {
        // The message length comes first on the wire, so size it before writing.
        let ts_len: usize = samples.iter().map(|&(t, _)| varint_len(t as u64)).sum();
        let vs_len = 8 * samples.len();
        let mut len = 0;
        if hash != 0 {
            len += 1 + varint_len(hash);
        }
        match labels {
            SeriesLabels::Pairs(pairs) => {
                for (n, v) in pairs {
                    len += bytes_field_len(n.len()) + bytes_field_len(v.len());
                }
            }
            SeriesLabels::Encoded(raw) if !raw.is_empty() => len += bytes_field_len(raw.len()),
            SeriesLabels::Encoded(_) => {}
        }
        if !samples.is_empty() {
            len += bytes_field_len(ts_len) + bytes_field_len(vs_len);
        }
        len += chunks.iter().map(|c| bytes_field_len(c.len())).sum::<usize>();

        // Fields in number order, as prost writes them.
        let out = &mut self.buf;
        out.reserve(len + 4);
        put_key(BATCH_SERIES, WireType::LengthDelimited, out);
        put_varint(len as u64, out);
        let start = out.len();
        if hash != 0 {
            put_key(SERIES_HASH, WireType::Varint, out);
            put_varint(hash, out);
        }
        if let SeriesLabels::Pairs(pairs) = labels {
            for (n, v) in pairs {
                put_bytes(SERIES_LABELS, n, out);
                put_bytes(SERIES_LABELS, v, out);
            }
        }
        if !samples.is_empty() {
            // Repeated numbers are packed, the proto3 default.
            put_key(SERIES_TIMESTAMPS, WireType::LengthDelimited, out);
            put_varint(ts_len as u64, out);
            for &(t, _) in samples {
                put_varint(t as u64, out);
            }
            put_key(SERIES_VALUES, WireType::LengthDelimited, out);
            put_varint(vs_len as u64, out);
            for &(_, v) in samples {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        if let SeriesLabels::Encoded(raw) = labels {
            if !raw.is_empty() {
                put_bytes(SERIES_LABEL_PAIRS, raw, out);
            }
        }
        for c in chunks {
            put_bytes(SERIES_XOR_CHUNKS, c, out);
        }
        debug_assert_eq!(out.len() - start, len);
    }

    /// Adds metric metadata unless an identical entry is already in this batch.
    pub(crate) fn push_metadata(&mut self, md: MetricMetadata) {
        if !self.metadata.contains(&md) {
            self.metadata.push(md);
        }
    }

    /// Adds metric metadata entries known to be distinct (and from this batch's others).
    pub(crate) fn extend_metadata(&mut self, md: impl IntoIterator<Item = MetricMetadata>) {
        self.metadata.extend(md);
    }

    /// The encoded `ShardBatch`.
    pub(crate) fn finish(mut self) -> Bytes {
        for md in &self.metadata {
            prost::encoding::message::encode(BATCH_METADATA, md, &mut self.buf);
        }
        Bytes::from(self.buf)
    }
}

/// Where one `SeriesSamples` lies in a [`DecodedBatch`]'s flat arrays.
#[derive(Debug)]
struct SeriesEntry {
    hash: u64,
    labels: Range<usize>,
    timestamps: Range<usize>,
    values: Range<usize>,
}

/// A `ShardBatch` read in place: label strings are slices of the entry.
#[derive(Debug, Default)]
pub(crate) struct DecodedBatch<'a> {
    pub(crate) tenant: &'a str,
    labels: Vec<&'a [u8]>,
    timestamps: Vec<i64>,
    values: Vec<f64>,
    series: Vec<SeriesEntry>,
    pub(crate) metadata: Vec<MetricMetadata>,
}

/// One series of a [`DecodedBatch`]: hash, flattened labels, timestamps, values.
pub(crate) type SeriesView<'b, 'a> = (u64, &'b [&'a [u8]], &'b [i64], &'b [f64]);

impl<'a> DecodedBatch<'a> {
    /// Decodes a whole entry; nothing of a malformed one is returned.
    pub(crate) fn decode(payload: &'a [u8]) -> WireResult<Self> {
        // Sized from typical entries (a label string takes 8 to 20 bytes, a series ~200) so
        // the arrays rarely grow.
        let series = payload.len() / 128;
        let mut b = DecodedBatch {
            labels: Vec::with_capacity(payload.len() / 8),
            timestamps: Vec::with_capacity(series),
            values: Vec::with_capacity(series),
            series: Vec::with_capacity(series),
            ..DecodedBatch::default()
        };
        let mut f = Fields::new(payload);
        while let Some((field, wt)) = f.next_key()? {
            match field {
                BATCH_TENANT => b.tenant = f.str(wt)?,
                BATCH_SERIES => {
                    let msg = f.bytes(wt)?;
                    b.decode_series(msg)?;
                }
                BATCH_METADATA => b.metadata.push(MetricMetadata::decode(f.bytes(wt)?)?),
                _ => f.skip(field, wt)?,
            }
        }
        Ok(b)
    }

    fn decode_series(&mut self, msg: &'a [u8]) -> WireResult<()> {
        let (l0, t0, v0) = (self.labels.len(), self.timestamps.len(), self.values.len());
        let mut hash = 0;
        // Samples of `xor_chunks` (snapshots), put in time order with the others at the end.
        let mut chunked: Vec<Sample> = Vec::new();
        let mut f = Fields::new(msg);
        while let Some((field, wt)) = f.next_key()? {
            match field {
                SERIES_HASH => hash = f.uint64(wt)?,
                SERIES_LABELS => {
                    self.labels.push(f.bytes(wt)?);
                    // The rest of the labels usually follow back to back: read them without
                    // going round the general loop.
                    while let Some(l) = f.short_bytes(LABELS_KEY) {
                        self.labels.push(l);
                    }
                }
                SERIES_LABEL_PAIRS => {
                    let mut p = Fields::new(f.bytes(wt)?);
                    while !p.is_empty() {
                        let (name, value) = p
                            .short_bytes(PAIR_KEY)
                            .and_then(short_label)
                            .ok_or(WireError::from_static("malformed label_pairs"))?;
                        self.labels.push(name);
                        self.labels.push(value);
                    }
                }
                SERIES_TIMESTAMPS => f.repeated_int64(wt, &mut self.timestamps)?,
                SERIES_VALUES => f.repeated_double(wt, &mut self.values)?,
                SERIES_XOR_CHUNKS => {
                    let mut it = XorIter::new(f.bytes(wt)?);
                    chunked.extend(it.by_ref().map(|(t, v)| Sample { t, v }));
                    if it.err().is_some() {
                        return Err(WireError::from_static("malformed xor_chunks"));
                    }
                }
                _ => f.skip(field, wt)?,
            }
        }
        if !chunked.is_empty() {
            self.add_chunked(t0, v0, chunked);
        }
        self.series.push(SeriesEntry {
            hash,
            labels: l0..self.labels.len(),
            timestamps: t0..self.timestamps.len(),
            values: v0..self.values.len(),
        });
        Ok(())
    }

    /// Adds a series' chunk samples to the ones its `timestamps` and `values` (from `t0` and
    /// `v0` on) held, all in time order: the chunk's sample where two share a time.
    fn add_chunked(&mut self, t0: usize, v0: usize, chunked: Vec<Sample>) {
        let loose: Vec<Sample> = self.timestamps[t0..]
            .iter()
            .zip(&self.values[v0..])
            .map(|(&t, &v)| Sample { t, v })
            .collect();
        self.timestamps.truncate(t0);
        self.values.truncate(v0);
        for s in merge_samples(chunked, loose) {
            self.timestamps.push(s.t);
            self.values.push(s.v);
        }
    }

    pub(crate) fn series(&self) -> impl Iterator<Item = SeriesView<'_, 'a>> + '_ {
        self.series.iter().map(|s| {
            (
                s.hash,
                &self.labels[s.labels.clone()],
                &self.timestamps[s.timestamps.clone()],
                &self.values[s.values.clone()],
            )
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use strata_proto::raft_v1::{SeriesSamples, ShardBatch};

    use super::*;

    fn md(name: &str) -> MetricMetadata {
        MetricMetadata {
            metric_family_name: name.into(),
            r#type: "gauge".into(),
            help: "Help.".into(),
            unit: String::new(),
        }
    }

    /// Hash, label pairs and samples of one series.
    type TestSeries = (u64, Vec<(Vec<u8>, Vec<u8>)>, Vec<(i64, f64)>);

    /// The generated type for the same content.
    fn generated(tenant: &str, series: &[TestSeries], metadata: &[MetricMetadata]) -> ShardBatch {
        ShardBatch {
            tenant: tenant.into(),
            series: series
                .iter()
                .map(|(hash, labels, samples)| SeriesSamples {
                    hash: *hash,
                    labels: labels
                        .iter()
                        .flat_map(|(n, v)| [Bytes::from(n.clone()), Bytes::from(v.clone())])
                        .collect(),
                    timestamps: samples.iter().map(|s| s.0).collect(),
                    values: samples.iter().map(|s| s.1).collect(),
                    label_pairs: Vec::new(),
                    xor_chunks: Vec::new(),
                })
                .collect(),
            metadata: metadata.to_vec(),
        }
    }

    #[test]
    fn malformed_xor_chunks_are_errors() {
        let mut chunk = strata_head::chunk::XorChunk::new();
        for k in 0..10 {
            chunk.append(k * 1000, k as f64).unwrap();
        }
        let series = |chunk: Vec<u8>| ShardBatch {
            tenant: "t".into(),
            series: vec![SeriesSamples { xor_chunks: vec![chunk], ..Default::default() }],
            metadata: vec![],
        };
        let good = series(chunk.bytes().to_vec()).encode_to_vec();
        let d = DecodedBatch::decode(&good).unwrap();
        let (_, _, ts, _) = d.series().next().unwrap();
        assert_eq!(ts, (0..10).map(|k| k * 1000).collect::<Vec<i64>>());
        let cut = chunk.bytes()[..chunk.bytes().len() - 3].to_vec();
        assert!(DecodedBatch::decode(&series(cut).encode_to_vec()).is_err());
    }

    proptest! {
        /// The writer emits prost's bytes, and the reader reads them back.
        #[test]
        fn matches_the_generated_codec(
            tenant in "[a-z]{0,8}",
            series in prop::collection::vec(
                (
                    any::<u64>(),
                    prop::collection::vec(
                        (prop::collection::vec(any::<u8>(), 0..200), prop::collection::vec(any::<u8>(), 0..20)),
                        0..5,
                    ),
                    prop::collection::vec((any::<i64>(), any::<f64>()), 0..5),
                ),
                0..6,
            ),
            with_md in any::<bool>(),
        ) {
            let metadata = if with_md { vec![md("a"), md("b")] } else { vec![] };
            let mut w = BatchWriter::new(&tenant, 0);
            for (hash, labels, samples) in &series {
                let pairs: Vec<(&[u8], &[u8])> =
                    labels.iter().map(|(n, v)| (&n[..], &v[..])).collect();
                w.push_series(*hash, SeriesLabels::Pairs(&pairs), samples, &[]);
            }
            for m in &metadata {
                w.push_metadata(m.clone());
                w.push_metadata(m.clone());
            }
            let ours = w.finish();
            let want = generated(&tenant, &series, &metadata);
            prop_assert_eq!(&ours[..], &want.encode_to_vec()[..]);

            let d = DecodedBatch::decode(&ours).unwrap();
            prop_assert_eq!(d.tenant, tenant.as_str());
            prop_assert_eq!(&d.metadata, &metadata);
            let got: Vec<_> = d.series().collect();
            prop_assert_eq!(got.len(), series.len());
            for ((hash, labels, ts, vs), (h, l, s)) in got.into_iter().zip(&series) {
                prop_assert_eq!(hash, *h);
                let flat: Vec<&[u8]> = l.iter().flat_map(|(n, v)| [&n[..], &v[..]]).collect();
                prop_assert_eq!(labels, &flat[..]);
                let want_ts: Vec<i64> = s.iter().map(|x| x.0).collect();
                let want_vs: Vec<u64> = s.iter().map(|x| x.1.to_bits()).collect();
                prop_assert_eq!(ts, &want_ts[..]);
                prop_assert_eq!(vs.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want_vs);
            }
        }

        /// On any input the reader agrees with prost on whether it is a valid `ShardBatch`,
        /// except that it also reads what `xor_chunks` hold, which must be XOR chunks.
        #[test]
        fn accepts_what_prost_accepts(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let ours = DecodedBatch::decode(&bytes).is_ok();
            match ShardBatch::decode(&bytes[..]) {
                Ok(b) if b.series.iter().any(|s| !s.xor_chunks.is_empty()) => {}
                theirs => prop_assert_eq!(ours, theirs.is_ok()),
            }
        }
    }

    #[test]
    fn reads_unpacked_numbers_and_unknown_fields() {
        // SeriesSamples{hash: 7, timestamps: [5] (unpacked), values: [1.5] (unpacked), 9: 1}
        let mut s = vec![0x08, 7, 0x18, 5, 0x21];
        s.extend_from_slice(&1.5f64.to_le_bytes());
        s.extend_from_slice(&[0x48, 1]);
        let mut entry = vec![0x0a, 1, b't', 0x12, s.len() as u8];
        entry.extend_from_slice(&s);
        let d = DecodedBatch::decode(&entry).unwrap();
        let got: Vec<_> = d.series().collect();
        assert_eq!(d.tenant, "t");
        assert_eq!(got, vec![(7, &[][..], &[5i64][..], &[1.5f64][..])]);
        let p = ShardBatch::decode(&entry[..]).unwrap();
        assert_eq!((p.series[0].timestamps[0], p.series[0].values[0]), (5, 1.5));
    }
}
