//! One shard's replicated state: its head and its metric metadata. Implements the Raft
//! `Applier`, so every replica builds the same state from the same log.
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use bytes::Bytes;
use strata_head::{Head, HeadConfig};
use strata_model::{ApplyReport, MetricMetadata};
use strata_proto::raft_v1;

use crate::batch::{BatchWriter, DecodedBatch};

/// Metadata kept per tenant and metric family; a family may carry several distinct entries.
type MetadataMap = HashMap<String, BTreeMap<String, Vec<MetricMetadata>>>;

/// Most distinct metadata entries kept per metric family (Prometheus keeps one per target).
const MAX_METADATA_PER_METRIC: usize = 10;

/// Size at which a snapshot starts another batch for the same tenant: a restore holds one
/// batch decoded at a time (about 16 bytes per sample, ten times its encoded size).
const SNAPSHOT_BATCH_BYTES: usize = 8 << 20;

/// First byte of a control payload. A `ShardBatch` never starts with it (0xFF would be a tag
/// of wire type 7, which does not exist), so the two share the log.
const CONTROL_MARKER: u8 = 0xFF;

/// Log entries that move the flush boundary; see [`crate::flush`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Control {
    /// From now on, refuse samples older than `before`: that range is about to be flushed.
    Seal { before: i64 },
    /// Everything before `before` is in these uploaded blocks; drop it from the head.
    Flushed { before: i64, blocks: Vec<String> },
    /// From now on, take samples up to `ms` older than a tenant's newest (the configured
    /// `ingester.out_of_order_window`). In the log, so that replaying it after a restart
    /// with another setting takes and refuses what the first apply did.
    OooWindow { ms: i64 },
}

impl Control {
    pub fn encode(&self) -> Bytes {
        let mut out = vec![CONTROL_MARKER];
        // Serializing these plain enums cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        Bytes::from(out)
    }

    fn decode(payload: &[u8]) -> Option<Result<Control, serde_json::Error>> {
        match payload.split_first() {
            Some((&CONTROL_MARKER, rest)) => Some(serde_json::from_slice(rest)),
            _ => None,
        }
    }
}

/// The flush boundaries, kept in snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct FlushMarks {
    sealed_before: i64,
    flushed_before: i64,
    /// The out-of-order window in effect (snapshots of earlier versions have none: the
    /// configured one is used for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ooo_window_ms: Option<i64>,
}

pub struct ShardState {
    head_config: HeadConfig,
    head: RwLock<Head>,
    metadata: RwLock<MetadataMap>,
    /// Everything before this is in blocks (`i64::MIN` before the first flush).
    flushed_before: AtomicI64,
}

impl ShardState {
    pub fn new(head_config: HeadConfig) -> Self {
        ShardState {
            head: RwLock::new(Head::new(head_config.clone())),
            head_config,
            metadata: RwLock::new(HashMap::new()),
            flushed_before: AtomicI64::new(i64::MIN),
        }
    }

    /// Samples before this are refused (their range is being or was flushed).
    pub fn sealed_before(&self) -> i64 {
        self.head().min_valid_time()
    }

    /// Samples before this are in blocks.
    pub fn flushed_before(&self) -> i64 {
        self.flushed_before.load(Ordering::Acquire)
    }

    fn apply_control(&self, c: Control) {
        match c {
            Control::Seal { before } => {
                self.head
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .set_min_valid_time(before);
            }
            Control::OooWindow { ms } => {
                self.head.write().unwrap_or_else(PoisonError::into_inner).set_ooo_window(ms);
                tracing::info!(ms, "out-of-order window set");
            }
            Control::Flushed { before, blocks } => {
                let mut head = self.head.write().unwrap_or_else(PoisonError::into_inner);
                head.set_min_valid_time(before);
                head.truncate_before(before);
                self.flushed_before.fetch_max(before, Ordering::AcqRel);
                tracing::info!(before, blocks = blocks.len(), "head truncated after flush");
            }
        }
    }

    /// Read access to the head. A poisoned lock still holds consistent data: every write
    /// finishes its series before it could panic, so reads go on.
    pub fn head(&self) -> RwLockReadGuard<'_, Head> {
        self.head.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn metadata(&self) -> RwLockReadGuard<'_, MetadataMap> {
        self.metadata.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn apply_batch(&self, batch: DecodedBatch<'_>, report: &mut ApplyReport) {
        {
            let mut head = self.head.write().unwrap_or_else(PoisonError::into_inner);
            head.append_all(batch.tenant, batch.series(), report);
        }
        if !batch.metadata.is_empty() {
            let mut md = self.metadata.write().unwrap_or_else(PoisonError::into_inner);
            let tenant = md.entry(batch.tenant.to_owned()).or_default();
            for m in batch.metadata {
                let entry = MetricMetadata { kind: m.r#type, help: m.help, unit: m.unit };
                let list = tenant.entry(m.metric_family_name).or_default();
                if !list.contains(&entry) {
                    if list.len() >= MAX_METADATA_PER_METRIC {
                        list.remove(0);
                    }
                    list.push(entry);
                }
            }
        }
    }
}

impl strata_raft::Applier for ShardState {
    fn apply(&self, payload: &[u8]) -> ApplyReport {
        let mut report = ApplyReport::default();
        if let Some(c) = Control::decode(payload) {
            match c {
                Ok(c) => self.apply_control(c),
                Err(e) => {
                    tracing::error!(error = %e, "undecodable control entry skipped");
                    report.examples.push(format!("undecodable control entry: {e}"));
                }
            }
            return report;
        }
        // Read in place: labels are slices of the payload, nothing is copied before the head
        // interns a new series' strings.
        match DecodedBatch::decode(payload) {
            Ok(batch) => self.apply_batch(batch, &mut report),
            // The leader encoded this entry itself, so this means a corrupt log; skip it
            // rather than stop the shard, and say so.
            Err(e) => {
                tracing::error!(error = %e, "undecodable log entry skipped");
                report.examples.push(format!("undecodable log entry: {e}"));
            }
        }
        report
    }

    fn snapshot(&self) -> Vec<u8> {
        // A header with the flush marks, then length-delimited batches of at most about
        // SNAPSHOT_BATCH_BYTES each (several per tenant when it has more), so that a restore
        // decodes one at a time.
        let marks = FlushMarks {
            sealed_before: self.sealed_before(),
            flushed_before: self.flushed_before(),
            ooo_window_ms: Some(self.head().config().ooo_window_ms),
        };
        let mut out = vec![CONTROL_MARKER];
        let header = serde_json::to_vec(&marks).unwrap_or_default();
        // Encoding into a Vec cannot run out of space.
        let _ = prost::encode_length_delimiter(header.len(), &mut out);
        out.extend_from_slice(&header);
        let put = |out: &mut Vec<u8>, w: BatchWriter| {
            let batch = w.finish();
            let _ = prost::encode_length_delimiter(batch.len(), out);
            out.extend_from_slice(&batch);
        };
        let mut per_tenant: BTreeMap<String, BatchWriter> = BTreeMap::new();
        let writer = |per_tenant: &mut BTreeMap<String, BatchWriter>, tenant: &str| {
            if !per_tenant.contains_key(tenant) {
                per_tenant.insert(tenant.to_string(), BatchWriter::new(tenant, 1 << 16));
            }
        };
        // The head is held for copies only: labels and chunks go in as they are, nothing is
        // decoded.
        let mut loose = Vec::new();
        self.head().for_each_series_chunks(|tenant, key, chunks, out_of_order| {
            writer(&mut per_tenant, tenant);
            let Some(w) = per_tenant.get_mut(tenant) else { return };
            loose.clear();
            loose.extend(out_of_order.iter().map(|s| (s.t, s.v)));
            w.push_series(strata_model::key_hash(key), key, &loose, chunks);
            // A full batch goes out; the tenant's next series starts another.
            if w.series_bytes() >= SNAPSHOT_BATCH_BYTES {
                if let Some(full) = per_tenant.remove(tenant) {
                    put(&mut out, full);
                }
            }
        });
        for (tenant, families) in self.metadata().iter() {
            writer(&mut per_tenant, tenant);
            let Some(w) = per_tenant.get_mut(tenant) else { continue };
            // Distinct already: kept that way on apply.
            w.extend_metadata(families.iter().flat_map(|(name, list)| {
                list.iter().map(|m| raft_v1::MetricMetadata {
                    metric_family_name: name.clone(),
                    r#type: m.kind.clone(),
                    help: m.help.clone(),
                    unit: m.unit.clone(),
                })
            }));
        }
        for w in per_tenant.into_values() {
            put(&mut out, w);
        }
        out
    }

    fn restore(&self, data: &[u8]) -> Result<(), String> {
        let no_marks =
            FlushMarks { sealed_before: i64::MIN, flushed_before: i64::MIN, ooo_window_ms: None };
        // Snapshots written before the header existed start with a batch's length, whose
        // first byte is 0xFF one time in 128: one whose header does not read is one of those.
        let (marks, batches) = match snapshot_header(data) {
            Ok(Some((marks, rest))) => (marks, batch_slices(rest)?),
            Ok(None) => (no_marks, batch_slices(data)?),
            Err(e) => (no_marks, batch_slices(data).map_err(|_| e)?),
        };
        self.restore_batches(marks, &batches)
    }
}

impl ShardState {
    /// Replaces the state with the snapshot's, decoding one batch at a time (a snapshot's
    /// decoded samples take about ten times its bytes). A batch that does not decode fails the
    /// restore with the state partly replaced: every caller treats that as fatal (the group
    /// does not start, or stops).
    fn restore_batches(&self, marks: FlushMarks, batches: &[&[u8]]) -> Result<(), String> {
        let mut head = Head::new(self.head_config.clone());
        if let Some(ms) = marks.ooo_window_ms {
            head.set_ooo_window(ms);
        }
        *self.head.write().unwrap_or_else(PoisonError::into_inner) = head;
        self.flushed_before.store(marks.flushed_before, Ordering::Release);
        self.metadata.write().unwrap_or_else(PoisonError::into_inner).clear();
        let mut report = ApplyReport::default();
        for entry in batches {
            let b = DecodedBatch::decode(entry).map_err(|e| format!("decoding snapshot: {e}"))?;
            self.apply_batch(b, &mut report);
        }
        // After the samples: a chunk kept across the flushed boundary holds older ones.
        self.head
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .set_min_valid_time(marks.sealed_before);
        Ok(())
    }
}

/// The flush marks heading a snapshot and the bytes after them; `None` for a snapshot
/// without a header.
fn snapshot_header(data: &[u8]) -> Result<Option<(FlushMarks, &[u8])>, String> {
    let Some((&CONTROL_MARKER, mut buf)) = data.split_first() else { return Ok(None) };
    let len = prost::decode_length_delimiter(&mut buf)
        .map_err(|e| format!("decoding snapshot header: {e}"))?;
    let header = buf.get(..len).ok_or("decoding snapshot: truncated header")?;
    let marks =
        serde_json::from_slice(header).map_err(|e| format!("decoding snapshot header: {e}"))?;
    Ok(Some((marks, &buf[len..])))
}

/// Length-delimited `ShardBatch`es, back to back: each one's bytes.
fn batch_slices(mut buf: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut batches = Vec::new();
    while !buf.is_empty() {
        let len = prost::decode_length_delimiter(&mut buf)
            .map_err(|e| format!("decoding snapshot: {e}"))?;
        if len > buf.len() {
            return Err("decoding snapshot: truncated batch".into());
        }
        let (entry, rest) = buf.split_at(len);
        buf = rest;
        batches.push(entry);
    }
    Ok(batches)
}

#[cfg(test)]
pub(crate) mod tests {
    use prost::Message;
    use strata_model::{MatchOp, Matcher, RejectReason, Sample, STALE_NAN_BITS};
    use strata_proto::raft_v1::{SeriesSamples, ShardBatch};
    use strata_raft::Applier;

    use super::*;

    /// One series of a log entry as the writer encodes it: `labels` sorted by name.
    pub(crate) fn series_samples(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> SeriesSamples {
        let mut key = Vec::new();
        strata_model::encode_key(
            labels.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            &mut key,
        );
        SeriesSamples {
            key_hash: strata_model::key_hash(&key),
            label_pairs: key,
            timestamps: samples.iter().map(|s| s.0).collect(),
            values: samples.iter().map(|s| s.1).collect(),
            ..Default::default()
        }
    }

    #[allow(clippy::type_complexity)]
    fn batch(tenant: &str, series: &[(&[(&str, &str)], &[(i64, f64)])]) -> Vec<u8> {
        let series =
            series.iter().map(|(labels, samples)| series_samples(labels, samples)).collect();
        let md = vec![raft_v1::MetricMetadata {
            metric_family_name: "up".into(),
            r#type: "gauge".into(),
            help: "Up.".into(),
            unit: String::new(),
        }];
        ShardBatch { tenant: tenant.into(), series, metadata: md }.encode_to_vec()
    }

    #[test]
    fn apply_reports_prometheus_rejections() {
        let st = ShardState::new(HeadConfig::default());
        let up: &[(&str, &str)] = &[("__name__", "up"), ("job", "a")];
        let r = st.apply(&batch("t", &[(up, &[(10, 1.0), (20, 1.0)])]));
        assert_eq!((r.appended, r.series_created), (2, 1));
        let r = st.apply(&batch("t", &[(up, &[(5, 1.0), (20, 1.0), (20, 2.0), (30, 3.0)])]));
        assert_eq!(r.appended, 1);
        assert_eq!(r.duplicates_ignored, 1);
        assert!(r.rejected.contains(&(RejectReason::OutOfOrder, 1)), "{r:?}");
        assert!(r.rejected.contains(&(RejectReason::DuplicateTimestamp, 1)), "{r:?}");
        assert!(r.examples.iter().any(|e| e.contains("out of order sample")), "{r:?}");
    }

    #[test]
    fn control_entries_seal_and_truncate_and_survive_snapshots() {
        let st = ShardState::new(HeadConfig { samples_per_chunk: 2, ..HeadConfig::default() });
        let up: &[(&str, &str)] = &[("__name__", "up"), ("job", "a")];
        st.apply(&batch("t", &[(up, &[(10, 1.0), (20, 1.0), (30, 1.0), (40, 1.0)])]));
        st.apply(&Control::Seal { before: 35 }.encode());
        assert_eq!(st.sealed_before(), 35);
        let r = st.apply(&batch("t", &[(up, &[(34, 1.0), (50, 1.0)])]));
        assert_eq!(r.appended, 1);
        assert!(r.rejected.contains(&(RejectReason::OutOfBounds, 1)), "{r:?}");
        st.apply(&Control::Flushed { before: 35, blocks: vec!["B".into()] }.encode());
        assert_eq!(st.flushed_before(), 35);
        let snap = st.snapshot();
        let copy = ShardState::new(HeadConfig::default());
        copy.restore(&snap).unwrap();
        assert_eq!((copy.sealed_before(), copy.flushed_before()), (35, 35));
        let head = copy.head();
        let refs = head.select("t", &[], i64::MIN, i64::MAX);
        let ts: Vec<i64> =
            head.samples("t", refs[0], i64::MIN, i64::MAX).iter().map(|s| s.t).collect();
        // Chunks of two: [10,20] went, [30,40] straddles 35 and stays, [50] stays.
        assert_eq!(ts, vec![30, 40, 50]);
        assert!(st.apply(b"\xff{not json").examples[0].contains("control"));
    }

    /// A snapshot bigger than one batch is written as several for the same tenant and
    /// restored batch by batch into the same state.
    #[test]
    fn big_snapshots_are_split_into_batches() {
        let st = ShardState::new(HeadConfig::default());
        let pad = "p".repeat(200);
        let ids: Vec<String> = (0..45_000).map(|i| format!("{i}{pad}")).collect();
        for chunk in ids.chunks(5000) {
            let series: Vec<SeriesSamples> = chunk
                .iter()
                .map(|id| series_samples(&[("__name__", "up"), ("id", id)], &[(1000, 1.0)]))
                .collect();
            let entry = ShardBatch { tenant: "t".into(), series, metadata: vec![] };
            assert_eq!(st.apply(&entry.encode_to_vec()).appended, 5000);
        }
        let snap = st.snapshot();
        let (_, rest) = snapshot_header(&snap).unwrap().unwrap();
        let batches = batch_slices(rest).unwrap();
        assert!(batches.len() >= 2, "{} bytes in {} batch", snap.len(), batches.len());
        assert!(batches.iter().all(|b| b.len() < SNAPSHOT_BATCH_BYTES + (1 << 16)));
        let copy = ShardState::new(HeadConfig::default());
        copy.restore(&snap).unwrap();
        assert_eq!(copy.head().select("t", &[], i64::MIN, i64::MAX).len(), 45_000);
        assert_eq!(copy.snapshot(), snap);
    }

    /// The out-of-order window comes from the log and the snapshot, not from the setting a
    /// replica starts with: a restart with another setting replays the same decisions.
    #[test]
    fn the_out_of_order_window_is_replicated_state() {
        let up: &[(&str, &str)] = &[("__name__", "up"), ("job", "a")];
        let late = |st: &ShardState, t| st.apply(&batch("t", &[(up, &[(t, 1.0)])])).appended;
        let st = ShardState::new(HeadConfig { ooo_window_ms: 0, ..HeadConfig::default() });
        st.apply(&batch("t", &[(up, &[(100_000, 1.0)])]));
        assert_eq!(late(&st, 90_000), 0);
        st.apply(&Control::OooWindow { ms: 60_000 }.encode());
        assert_eq!(st.head().config().ooo_window_ms, 60_000);
        assert_eq!(late(&st, 90_000), 1);
        assert_eq!(late(&st, 10_000), 0, "older than the window");
        // A replica started with no window restores the logged one from the snapshot.
        let copy = ShardState::new(HeadConfig { ooo_window_ms: 0, ..HeadConfig::default() });
        copy.restore(&st.snapshot()).unwrap();
        assert_eq!(copy.head().config().ooo_window_ms, 60_000);
        assert_eq!(late(&copy, 80_000), 1);
        // And the log can take it away again.
        copy.apply(&Control::OooWindow { ms: 0 }.encode());
        assert_eq!(late(&copy, 70_000), 0);
        // A snapshot of earlier versions (no window in its header) keeps the configured one.
        let old = br#"{"sealed_before":5,"flushed_before":5}"#;
        let mut data = vec![CONTROL_MARKER, old.len() as u8];
        data.extend_from_slice(old);
        let fresh = ShardState::new(HeadConfig { ooo_window_ms: 7, ..HeadConfig::default() });
        fresh.restore(&data).unwrap();
        assert_eq!((fresh.head().config().ooo_window_ms, fresh.sealed_before()), (7, 5));
    }

    #[test]
    fn snapshot_restores_the_same_state() {
        let st = ShardState::new(HeadConfig::default());
        let stale = f64::from_bits(STALE_NAN_BITS);
        st.apply(&batch("a", &[(&[("__name__", "up"), ("job", "x")], &[(1, 1.0), (2, stale)])]));
        st.apply(&batch("b", &[(&[("__name__", "up"), ("job", "y")], &[(3, 7.5)])]));
        let snap = st.snapshot();
        let copy = ShardState::new(HeadConfig::default());
        copy.apply(&batch("a", &[(&[("__name__", "junk")], &[(1, 1.0)])]));
        copy.restore(&snap).unwrap();
        assert_eq!(copy.snapshot(), snap);
        let all = [Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()];
        let head = copy.head();
        let refs = head.select("a", &all, i64::MIN, i64::MAX);
        assert_eq!(refs.len(), 1, "junk series must be gone");
        let samples = head.samples("a", refs[0], i64::MIN, i64::MAX);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[1].v.to_bits(), STALE_NAN_BITS);
        assert_eq!(copy.metadata().get("b").map(|m| m.len()), Some(1));
        assert!(copy.restore(b"\xff\xff").is_err());
    }

    #[test]
    fn snapshots_carry_chunks_and_out_of_order_samples() {
        let cfg = HeadConfig { ooo_window_ms: 10_000_000, ..HeadConfig::default() };
        let st = ShardState::new(cfg.clone());
        let l: &[(&str, &str)] = &[("__name__", "gpu_temp"), ("gpu", "0")];
        // 300 samples in order (three chunks of 120), then some that arrive late, one of them
        // between the chunks' samples.
        let in_order: Vec<(i64, f64)> = (0..300).map(|k| (k * 15_000, 40.0 + k as f64)).collect();
        st.apply(&batch("a", &[(l, &in_order)]));
        st.apply(&batch("a", &[(l, &[(7_500, -1.0), (22_500, -2.0)])]));
        let all = [Matcher::new(MatchOp::Equal, "__name__", "gpu_temp").unwrap()];
        let samples_of = |st: &ShardState| {
            let head = st.head();
            let refs = head.select("a", &all, i64::MIN, i64::MAX);
            assert_eq!(refs.len(), 1);
            head.samples("a", refs[0], i64::MIN, i64::MAX)
        };
        let want = samples_of(&st);
        assert_eq!(want.len(), 302);

        let snap = st.snapshot();
        // The chunks go in as the head holds them; only the late samples are written out.
        let mut body = &snap[1..];
        let header = prost::decode_length_delimiter(&mut body).unwrap();
        let mut body = &body[header..];
        let batch = ShardBatch::decode_length_delimited(&mut body).unwrap();
        assert_eq!(batch.series[0].xor_chunks.len(), 3);
        assert_eq!(batch.series[0].timestamps, vec![7_500, 22_500]);
        assert!(snap.len() < 302 * 4, "snapshot of {} bytes", snap.len());

        let copy = ShardState::new(cfg);
        copy.restore(&snap).unwrap();
        let got = samples_of(&copy);
        let bits = |s: &[Sample]| s.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));

        // A snapshot of earlier versions, every sample in `timestamps` and `values`, restores.
        let old = ShardBatch {
            tenant: "a".into(),
            series: vec![SeriesSamples {
                hash: strata_model::label_hash(l.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))),
                labels: l
                    .iter()
                    .flat_map(|(n, v)| [Bytes::from(n.to_string()), Bytes::from(v.to_string())])
                    .collect(),
                timestamps: want.iter().map(|s| s.t).collect(),
                values: want.iter().map(|s| s.v).collect(),
                ..Default::default()
            }],
            metadata: vec![],
        };
        let copy = ShardState::new(HeadConfig::default());
        copy.restore(&old.encode_length_delimited_to_vec()).unwrap();
        let got = samples_of(&copy);
        assert_eq!(bits(&got), bits(&want));

        // One without a header whose first batch is 127 bytes past a multiple of 128 long:
        // its length starts with the header's marker byte, 0xFF.
        let mut old = old;
        let mut help = String::new();
        while old.encoded_len() < 255 || old.encoded_len() % 128 != 127 {
            help.push('x');
            old.metadata = vec![raft_v1::MetricMetadata {
                metric_family_name: "up".into(),
                r#type: "gauge".into(),
                help: help.clone(),
                unit: String::new(),
            }];
        }
        let data = old.encode_length_delimited_to_vec();
        assert_eq!(data[0], CONTROL_MARKER);
        let copy = ShardState::new(HeadConfig::default());
        copy.restore(&data).unwrap();
        assert_eq!(bits(&samples_of(&copy)), bits(&want));
        assert_eq!(copy.metadata()["a"]["up"][0].help, help);
    }
}
