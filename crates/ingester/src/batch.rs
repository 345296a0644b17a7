//! A shard's Raft log entry: one tenant's share of one push, the `strata.raft.v1.ShardBatch`
//! protobuf message.
//!
//! [`BatchWriter`] encodes it straight from the slices of the decoded request and
//! [`DecodedBatch`] reads it in place, without the per-label `Bytes` and per-series `Vec`s of
//! the generated type. Both speak exactly the generated type's wire format (the writer emits
//! the bytes prost's `encode` would, fields in number order), so log entries written by
//! earlier versions still apply and the generated `ShardBatch` can still read new ones.
//!
//! A series travels as its series key ([`strata_model::encode_key`]) and the key's hash: the
//! head finds it by those without looking at single labels.
use std::ops::Range;

use bytes::Bytes;
use prost::Message;
use strata_head::chunk::XorIter;
use strata_model::{encode_key, key_hash, merge_samples, Sample};
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
const SERIES_KEY_HASH: u32 = 7;
/// The one-byte key of a `SeriesSamples.labels` string.
const LABELS_KEY: u8 = (SERIES_LABELS << 3) as u8 | WireType::LengthDelimited as u8;
/// The one-byte keys of a series key: `TimeSeries.labels`, `Label.name`, `Label.value`.
pub(crate) const PAIR_KEY: u8 = 0x0a;
pub(crate) const NAME_KEY: u8 = 0x0a;
pub(crate) const VALUE_KEY: u8 = 0x12;

/// One `prometheus.Label` in its short form (a name then a value, each under 128 bytes, and
/// nothing else): exactly how a series key holds a label of that size; `None` otherwise.
#[inline(always)]
pub(crate) fn short_label(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut l = Fields::new(msg);
    match (l.short_bytes(NAME_KEY), l.short_bytes(VALUE_KEY)) {
        (Some(name), Some(value)) if l.is_empty() => Some((name, value)),
        _ => None,
    }
}

/// Builds one shard's log entry series by series.
#[derive(Debug)]
pub(crate) struct BatchWriter {
    buf: Vec<u8>,
    /// Kept apart and written last, as prost orders fields; deduplicated.
    metadata: Vec<MetricMetadata>,
    /// Indexes into `metadata` by a hash of the entry, so deduplicating stays linear in a
    /// request's metadata however much it holds.
    metadata_seen: std::collections::HashMap<u64, Vec<usize>>,
}

impl BatchWriter {
    /// An entry for `tenant`, with room for about `capacity` bytes.
    pub(crate) fn new(tenant: &str, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        // proto3 leaves default values (here "") off the wire.
        if !tenant.is_empty() {
            put_bytes(BATCH_TENANT, tenant.as_bytes(), &mut buf);
        }
        BatchWriter { buf, metadata: Vec::new(), metadata_seen: Default::default() }
    }

    /// Appends a `SeriesSamples`: the series `key` ([`strata_model::encode_key`]), `hash` its
    /// [`key_hash`], and (snapshots only) XOR `chunks` holding more of its samples.
    pub(crate) fn push_series(
        &mut self,
        hash: u64,
        key: &[u8],
        samples: &[(i64, f64)],
        chunks: &[&[u8]],
    ) {
        // The message length comes first on the wire, so size it before writing.
        let ts_len: usize = samples.iter().map(|&(t, _)| varint_len(t as u64)).sum();
        let vs_len = 8 * samples.len();
        let mut len = 0;
        if !samples.is_empty() {
            len += bytes_field_len(ts_len) + bytes_field_len(vs_len);
        }
        if !key.is_empty() {
            len += bytes_field_len(key.len());
        }
        len += chunks.iter().map(|c| bytes_field_len(c.len())).sum::<usize>();
        if hash != 0 {
            len += 1 + varint_len(hash);
        }

        // Fields in number order, as prost writes them.
        let out = &mut self.buf;
        out.reserve(len + 4);
        put_key(BATCH_SERIES, WireType::LengthDelimited, out);
        put_varint(len as u64, out);
        let start = out.len();
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
        if !key.is_empty() {
            put_bytes(SERIES_LABEL_PAIRS, key, out);
        }
        for c in chunks {
            put_bytes(SERIES_XOR_CHUNKS, c, out);
        }
        if hash != 0 {
            put_key(SERIES_KEY_HASH, WireType::Varint, out);
            put_varint(hash, out);
        }
        debug_assert_eq!(out.len() - start, len);
    }

    /// Adds metric metadata unless an identical entry is already in this batch.
    pub(crate) fn push_metadata(&mut self, md: MetricMetadata) {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for part in [&md.metric_family_name, &md.r#type, &md.help, &md.unit] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let same = self.metadata_seen.entry(h.digest()).or_default();
        if !same.iter().any(|&i| self.metadata.get(i) == Some(&md)) {
            same.push(self.metadata.len());
            self.metadata.push(md);
        }
    }

    /// Adds metric metadata entries known to be distinct (and from this batch's others).
    pub(crate) fn extend_metadata(&mut self, md: impl IntoIterator<Item = MetricMetadata>) {
        self.metadata.extend(md);
    }

    /// Bytes of series written so far.
    pub(crate) fn series_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The encoded `ShardBatch`.
    pub(crate) fn finish(mut self) -> Bytes {
        for md in &self.metadata {
            prost::encoding::message::encode(BATCH_METADATA, md, &mut self.buf);
        }
        Bytes::from(self.buf)
    }
}

/// Where a series key lies: in the entry, or (entries of earlier versions, which held label
/// strings) in the batch's own buffer.
#[derive(Debug)]
enum KeyAt<'a> {
    Entry(&'a [u8]),
    Built(Range<usize>),
}

/// Where one `SeriesSamples` lies in a [`DecodedBatch`].
#[derive(Debug)]
struct SeriesEntry<'a> {
    hash: u64,
    key: KeyAt<'a>,
    timestamps: Range<usize>,
    values: Range<usize>,
}

/// A `ShardBatch` read in place: series keys are slices of the entry.
#[derive(Debug, Default)]
pub(crate) struct DecodedBatch<'a> {
    pub(crate) tenant: &'a str,
    timestamps: Vec<i64>,
    values: Vec<f64>,
    series: Vec<SeriesEntry<'a>>,
    /// Keys built from the label strings of earlier versions' entries.
    built: Vec<u8>,
    /// One series' label strings (earlier versions' entries), reused.
    strings: Vec<&'a [u8]>,
    pub(crate) metadata: Vec<MetricMetadata>,
}

/// One series of a [`DecodedBatch`]: key hash, key, timestamps, values.
pub(crate) type SeriesView<'b> = (u64, &'b [u8], &'b [i64], &'b [f64]);

impl<'a> DecodedBatch<'a> {
    /// Decodes a whole entry; nothing of a malformed one is returned. Keys are not checked
    /// here: the head checks a key before it creates a series, and a malformed one can never
    /// equal a stored one.
    pub(crate) fn decode(payload: &'a [u8]) -> WireResult<Self> {
        // Sized from typical entries (a series takes ~200 bytes) so the arrays rarely grow.
        let series = payload.len() / 128;
        let mut b = DecodedBatch {
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
        let (t0, v0) = (self.timestamps.len(), self.values.len());
        let mut hash = 0;
        let mut key: &'a [u8] = &[];
        self.strings.clear();
        // Samples of `xor_chunks` (snapshots), put in time order with the others at the end.
        let mut chunked: Vec<Sample> = Vec::new();
        let mut f = Fields::new(msg);
        while let Some((field, wt)) = f.next_key()? {
            match field {
                // The label hash of earlier versions: read (so it must be well formed, as
                // prost requires) and dropped.
                SERIES_HASH => {
                    f.uint64(wt)?;
                }
                SERIES_KEY_HASH => hash = f.uint64(wt)?,
                SERIES_LABELS => {
                    self.strings.push(f.bytes(wt)?);
                    while let Some(l) = f.short_bytes(LABELS_KEY) {
                        self.strings.push(l);
                    }
                }
                SERIES_LABEL_PAIRS => key = f.bytes(wt)?,
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
        let key = if self.strings.is_empty() {
            KeyAt::Entry(key)
        } else {
            // An earlier version's label strings: the key they stand for. An odd one out
            // leaves a truncated field, so the head refuses the series as malformed.
            let start = self.built.len();
            let pairs = self.strings.chunks_exact(2);
            let odd = !pairs.remainder().is_empty();
            encode_key(pairs.map(|p| (p[0], p[1])), &mut self.built);
            if odd {
                self.built.push(PAIR_KEY);
            }
            self.built.extend_from_slice(key);
            KeyAt::Built(start..self.built.len())
        };
        if hash == 0 {
            hash = key_hash(match &key {
                KeyAt::Entry(k) => k,
                KeyAt::Built(r) => &self.built[r.clone()],
            });
        }
        self.series.push(SeriesEntry {
            hash,
            key,
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

    pub(crate) fn series(&self) -> impl Iterator<Item = SeriesView<'_>> + '_ {
        self.series.iter().map(|s| {
            let key = match &s.key {
                KeyAt::Entry(k) => k,
                KeyAt::Built(r) => &self.built[r.clone()],
            };
            (s.hash, key, &self.timestamps[s.timestamps.clone()], &self.values[s.values.clone()])
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

    /// Key hash, key and samples of one series.
    type TestSeries = (u64, Vec<u8>, Vec<(i64, f64)>);

    /// The generated type for the same content.
    fn generated(tenant: &str, series: &[TestSeries], metadata: &[MetricMetadata]) -> ShardBatch {
        ShardBatch {
            tenant: tenant.into(),
            series: series
                .iter()
                .map(|(hash, key, samples)| SeriesSamples {
                    key_hash: *hash,
                    label_pairs: key.clone(),
                    timestamps: samples.iter().map(|s| s.0).collect(),
                    values: samples.iter().map(|s| s.1).collect(),
                    ..Default::default()
                })
                .collect(),
            metadata: metadata.to_vec(),
        }
    }

    #[test]
    fn earlier_versions_label_strings_become_keys() {
        let strings = |l: &[&str]| l.iter().map(|s| Bytes::from(s.to_string())).collect();
        let entry = ShardBatch {
            tenant: "t".into(),
            series: vec![
                SeriesSamples {
                    hash: 99,
                    labels: strings(&["__name__", "up", "job", "a"]),
                    timestamps: vec![5],
                    values: vec![1.0],
                    ..Default::default()
                },
                SeriesSamples {
                    hash: 98,
                    labels: strings(&["__name__", "up", "job"]),
                    timestamps: vec![5],
                    values: vec![1.0],
                    ..Default::default()
                },
            ],
            metadata: vec![],
        }
        .encode_to_vec();
        let d = DecodedBatch::decode(&entry).unwrap();
        let got: Vec<_> = d.series().collect();
        let mut want = Vec::new();
        encode_key([(&b"__name__"[..], &b"up"[..]), (b"job", b"a")], &mut want);
        assert_eq!(got[0], (key_hash(&want), &want[..], &[5i64][..], &[1.0][..]));
        // The old label hash is not used: the key's is.
        assert_eq!(strata_model::check_key(got[0].1), Ok(()));
        assert_eq!(strata_model::check_key(got[1].1), Err("malformed label set"));
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
                    prop_oneof![Just(0u64), any::<u64>()],
                    prop::collection::vec(any::<u8>(), 0..300),
                    prop::collection::vec((any::<i64>(), any::<f64>()), 0..5),
                ),
                0..6,
            ),
            with_md in any::<bool>(),
        ) {
            let metadata = if with_md { vec![md("a"), md("b")] } else { vec![] };
            let mut w = BatchWriter::new(&tenant, 0);
            for (hash, key, samples) in &series {
                w.push_series(*hash, key, samples, &[]);
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
            for ((hash, key, ts, vs), (h, k, s)) in got.into_iter().zip(&series) {
                // A zero hash is left off the wire and computed again.
                prop_assert_eq!(hash, if *h == 0 { key_hash(k) } else { *h });
                prop_assert_eq!(key, &k[..]);
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
        // The label hash of earlier versions (field 1) is not used: the (empty) key's is.
        assert_eq!(got, vec![(key_hash(b""), &[][..], &[5i64][..], &[1.5f64][..])]);
        let p = ShardBatch::decode(&entry[..]).unwrap();
        assert_eq!((p.series[0].timestamps[0], p.series[0].values[0]), (5, 1.5));
    }
}
