//! One series: its interned labels, its XOR chunks and its out-of-order buffer.

use std::collections::BTreeMap;
use std::mem::size_of;

use strata_model::{RejectReason, Sample};

use crate::chunk::{first_timestamp, num_samples, XorChunk, XorIter};
use crate::symbols::{vec_heap_bytes, ALLOC_OVERHEAD};

/// A full chunk, trimmed to size.
#[derive(Debug)]
struct ClosedChunk {
    data: Box<[u8]>,
    min_t: i64,
    max_t: i64,
}

/// What happened to one sample offered to a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Appended,
    Duplicate,
    Rejected(RejectReason),
}

/// Where an older-than-newest sample may go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OooPolicy {
    /// No out-of-order window: reject as `OutOfOrder`.
    Disabled,
    /// Accept samples at or after this time into the out-of-order buffer; reject older ones as
    /// `TooOld`.
    From(i64),
}

#[derive(Debug)]
pub(crate) struct Series {
    /// The label set as a series key ([`strata_model::encode_key`]): what lookups compare.
    pub(crate) key: Box<[u8]>,
    /// Oldest sample, in order or not.
    pub(crate) min_t: i64,
    /// Newest sample; always an in-order one.
    pub(crate) max_t: i64,
    closed: Vec<ClosedChunk>,
    open: XorChunk,
    /// Samples older than `max_t` when they arrived, by time (as value bits). A map, so that
    /// samples arriving in any order cost O(log n) each (a sorted vector made a request of
    /// descending timestamps quadratic); boxed so the common case, none, costs 8 bytes.
    #[allow(clippy::box_collection)]
    ooo: Option<Box<BTreeMap<i64, u64>>>,
}

impl Series {
    /// A series holding its first sample.
    pub(crate) fn new(key: Box<[u8]>, t: i64, v: f64) -> Self {
        let mut open = XorChunk::new();
        // An empty chunk always takes a sample.
        let _ = open.append(t, v);
        Series { key, min_t: t, max_t: t, closed: Vec::new(), open, ooo: None }
    }

    /// A byte of each cache line an append reads (key, open chunk), for
    /// [`crate::tenant::TenantHead::warm`].
    #[inline]
    pub(crate) fn touch(&self) -> u8 {
        let mut acc = self.open.touch();
        let mut i = 0;
        while let Some(&b) = self.key.get(i) {
            acc ^= b;
            i += 64;
        }
        acc
    }

    /// Offers one sample, with Prometheus's rules for duplicates and out-of-order samples.
    pub(crate) fn append(
        &mut self,
        t: i64,
        v: f64,
        samples_per_chunk: usize,
        chunk_range_ms: i64,
        ooo: OooPolicy,
    ) -> Outcome {
        if t > self.max_t {
            if self.open.num_samples() >= samples_per_chunk
                || (chunk_range_ms > 0 && self.crosses_range(t, chunk_range_ms))
            {
                self.cut();
            }
            if self.open.append(t, v).is_err() {
                // Only a full chunk refuses a sample; a fresh one never does.
                self.cut();
                let _ = self.open.append(t, v);
            }
            self.max_t = t;
            return Outcome::Appended;
        }
        if t == self.max_t {
            return same_or_conflict(self.last_value_bits(), v);
        }
        match ooo {
            OooPolicy::Disabled => Outcome::Rejected(RejectReason::OutOfOrder),
            OooPolicy::From(min) if t < min => Outcome::Rejected(RejectReason::TooOld),
            OooPolicy::From(_) => {
                if let Some(bits) = self.value_bits_at(t) {
                    return same_or_conflict(bits, v);
                }
                self.ooo.get_or_insert_with(Default::default).insert(t, v.to_bits());
                self.min_t = self.min_t.min(t);
                Outcome::Appended
            }
        }
    }

    /// Whether `t` lies in a later aligned range than the open chunk's first sample, so that
    /// chunks never straddle a block boundary.
    fn crosses_range(&self, t: i64, range: i64) -> bool {
        match first_timestamp(self.open.bytes()) {
            Some(first) => t.div_euclid(range) != first.div_euclid(range),
            None => false,
        }
    }

    fn cut(&mut self) {
        let min_t = first_timestamp(self.open.bytes()).unwrap_or(self.max_t);
        let max_t = self.open.last_t();
        let data = self.open.take_bytes();
        if !data.is_empty() {
            self.closed.push(ClosedChunk { data, min_t, max_t });
        }
    }

    fn last_value_bits(&self) -> u64 {
        if !self.open.is_empty() {
            return self.open.last_value_bits();
        }
        // Not reached today: the open chunk is only emptied right before an append.
        self.closed
            .last()
            .and_then(|c| XorIter::new(&c.data).last())
            .map(|(_, v)| v.to_bits())
            .unwrap_or(0)
    }

    /// Bits of the stored value at exactly `t`, if there is one.
    fn value_bits_at(&self, t: i64) -> Option<u64> {
        if let Some(&bits) = self.ooo.as_ref().and_then(|m| m.get(&t)) {
            return Some(bits);
        }
        self.chunks()
            .filter(|&(_, min, max)| min <= t && t <= max)
            .flat_map(|(data, _, _)| XorIter::new(data))
            .find(|&(st, _)| st == t)
            .map(|(_, v)| v.to_bits())
    }

    /// In-order chunks, oldest first, with their time ranges.
    fn chunks(&self) -> impl Iterator<Item = (&[u8], i64, i64)> + '_ {
        let open = (!self.open.is_empty()).then(|| {
            let min = first_timestamp(self.open.bytes()).unwrap_or(self.max_t);
            (self.open.bytes(), min, self.open.last_t())
        });
        self.closed.iter().map(|c| (&c.data[..], c.min_t, c.max_t)).chain(open)
    }

    /// The bytes of every chunk, oldest first.
    pub(crate) fn chunk_bytes(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks().map(|(data, _, _)| data)
    }

    /// The samples held outside the chunks (arrived out of order), sorted by time.
    pub(crate) fn out_of_order(&self) -> Vec<Sample> {
        self.ooo_in(i64::MIN, i64::MAX)
    }

    /// Out-of-order samples in `[mint, maxt]`, sorted by time.
    fn ooo_in(&self, mint: i64, maxt: i64) -> Vec<Sample> {
        match &self.ooo {
            Some(m) if mint <= maxt => m
                .range(mint..=maxt)
                .map(|(&t, &bits)| Sample { t, v: f64::from_bits(bits) })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether at least one sample lies in `[mint, maxt]`.
    pub(crate) fn has_sample_in(&self, mint: i64, maxt: i64) -> bool {
        if self.max_t < mint || self.min_t > maxt {
            return false;
        }
        if self.ooo.as_ref().is_some_and(|m| m.range(mint..=maxt).next().is_some()) {
            return true;
        }
        self.chunks().any(|(data, min, max)| {
            if max < mint || min > maxt {
                false
            } else if min >= mint || max <= maxt {
                // An end of the chunk lies in the range.
                true
            } else {
                XorIter::new(data).any(|(t, _)| mint <= t && t <= maxt)
            }
        })
    }

    /// Samples in `[mint, maxt]`, ascending, in-order and out-of-order ones merged.
    pub(crate) fn samples(&self, mint: i64, maxt: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        if self.max_t < mint || self.min_t > maxt {
            return out;
        }
        for (data, min, max) in self.chunks() {
            if max < mint || min > maxt {
                continue;
            }
            out.extend(
                XorIter::new(data)
                    .filter(|&(t, _)| mint <= t && t <= maxt)
                    .map(|(t, v)| Sample { t, v }),
            );
        }
        let extra = self.ooo_in(mint, maxt);
        if extra.is_empty() {
            return out;
        }
        let mut merged = Vec::with_capacity(out.len() + extra.len());
        let (mut i, mut j) = (0, 0);
        while i < out.len() && j < extra.len() {
            if out[i].t <= extra[j].t {
                merged.push(out[i]);
                i += 1;
            } else {
                merged.push(extra[j]);
                j += 1;
            }
        }
        merged.extend_from_slice(&out[i..]);
        merged.extend_from_slice(&extra[j..]);
        merged
    }

    /// Drops the chunks and out-of-order samples entirely before `t`; a chunk that straddles `t`
    /// is kept whole. Returns whether the series still holds anything.
    pub(crate) fn truncate_before(&mut self, t: i64) -> bool {
        if self.min_t >= t {
            return true;
        }
        self.closed.retain(|c| c.max_t >= t);
        if let Some(m) = &mut self.ooo {
            **m = m.split_off(&t);
            if m.is_empty() {
                self.ooo = None;
            }
        }
        let open_live = !self.open.is_empty() && self.open.last_t() >= t;
        if !open_live && self.closed.is_empty() && self.ooo.is_none() {
            return false;
        }
        let mut min_t = self.max_t;
        if let Some(c) = self.closed.first() {
            min_t = min_t.min(c.min_t);
        } else if !self.open.is_empty() {
            min_t = min_t.min(first_timestamp(self.open.bytes()).unwrap_or(self.max_t));
        }
        if let Some((&first, _)) = self.ooo.as_ref().and_then(|m| m.first_key_value()) {
            min_t = min_t.min(first);
        }
        self.min_t = min_t;
        true
    }

    pub(crate) fn num_samples(&self) -> usize {
        self.closed.iter().map(|c| num_samples(&c.data)).sum::<usize>()
            + self.open.num_samples()
            + self.ooo.as_ref().map_or(0, |m| m.len())
    }

    pub(crate) fn num_chunks(&self) -> usize {
        self.closed.len() + usize::from(!self.open.is_empty())
    }

    /// Heap bytes owned by the series (its inline size is counted by its container).
    pub(crate) fn heap_bytes(&self) -> usize {
        let mut bytes = self.key.len() + ALLOC_OVERHEAD;
        bytes += vec_heap_bytes(&self.closed);
        bytes += self.closed.iter().map(|c| c.data.len() + ALLOC_OVERHEAD).sum::<usize>();
        if self.open.heap_bytes() > 0 {
            bytes += self.open.heap_bytes() + ALLOC_OVERHEAD;
        }
        if let Some(m) = &self.ooo {
            // A B-tree node holds up to 11 entries of 16 bytes, with its lengths and links.
            bytes += size_of::<BTreeMap<i64, u64>>() + ALLOC_OVERHEAD + m.len() * 24;
        }
        bytes
    }
}

fn same_or_conflict(stored_bits: u64, v: f64) -> Outcome {
    if stored_bits == v.to_bits() {
        Outcome::Duplicate
    } else {
        Outcome::Rejected(RejectReason::DuplicateTimestamp)
    }
}
