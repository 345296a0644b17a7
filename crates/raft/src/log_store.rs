//! openraft's log store for one group, kept in the shared [`LogDb`](crate::LogDb).

// openraft's storage traits return its (large) `StorageError` by value; the helpers here
// return what the traits need.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, EntryPayload, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote,
};
use rocksdb::{ReadOptions, WriteBatch};

use crate::codec::{decode_entry, decode_log_id, encode_entry, encode_log_id, entry_log_id};
use crate::db::{
    log_key, meta_key, GroupDb, CF_LOG, CF_META, META_COMMITTED, META_PURGED, META_VOTE,
};
use crate::{Entry, LogId, StorageError, TypeConfig};

/// The Raft log, vote and committed pointer of one group. Cloning it is cheap; clones are the
/// log readers of replication tasks.
#[derive(Clone)]
pub(crate) struct LogStore {
    g: Arc<GroupDb>,
    /// The newest entries, also in RocksDB: what the state machine and replication read back
    /// right after an append, served without a seek and a decode.
    recent: Arc<Mutex<Recent>>,
}

/// Entries with consecutive indexes, oldest first, within [`RECENT_ENTRIES`] and
/// [`RECENT_BYTES`] per group (entries are applied right after they commit, so a short tail
/// is enough, and a node runs many groups).
#[derive(Default)]
struct Recent {
    entries: VecDeque<Entry>,
    bytes: usize,
}

const RECENT_ENTRIES: usize = 16;
const RECENT_BYTES: usize = 4 << 20;

fn entry_bytes(e: &Entry) -> usize {
    match &e.payload {
        EntryPayload::Normal(d) => d.encoded_len(),
        _ => 0,
    }
}

impl Recent {
    fn push(&mut self, e: Entry) {
        let index = e.log_id.index;
        if self.entries.back().is_some_and(|last| last.log_id.index + 1 != index) {
            // Overwritten or out of sequence: keep only what precedes it.
            self.truncate_from(index);
            if self.entries.back().is_some_and(|last| last.log_id.index + 1 != index) {
                self.clear();
            }
        }
        self.bytes += entry_bytes(&e);
        self.entries.push_back(e);
        while self.entries.len() > RECENT_ENTRIES || self.bytes > RECENT_BYTES {
            let Some(old) = self.entries.pop_front() else { break };
            self.bytes -= entry_bytes(&old);
        }
    }

    /// Drops entries with `index >= from`.
    fn truncate_from(&mut self, from: u64) {
        while self.entries.back().is_some_and(|e| e.log_id.index >= from) {
            if let Some(e) = self.entries.pop_back() {
                self.bytes -= entry_bytes(&e);
            }
        }
    }

    /// Drops entries with `index <= upto`.
    fn purge_upto(&mut self, upto: u64) {
        while self.entries.front().is_some_and(|e| e.log_id.index <= upto) {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= entry_bytes(&e);
            }
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Entries `start..end` when all of them are here.
    fn get(&self, start: u64, end: u64) -> Option<Vec<Entry>> {
        let first = self.entries.front()?.log_id.index;
        let last = self.entries.back()?.log_id.index;
        if start < first || end > last.saturating_add(1) {
            return None;
        }
        let from = usize::try_from(start - first).ok()?;
        let to = usize::try_from(end - first).ok()?;
        Some(self.entries.range(from..to).cloned().collect())
    }
}

impl LogStore {
    pub(crate) fn new(g: Arc<GroupDb>) -> Self {
        LogStore { g, recent: Arc::default() }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        // A poisoned lock only means a panic elsewhere; the cache is dropped to be safe.
        self.recent.lock().unwrap_or_else(|e| {
            let mut g = e.into_inner();
            g.clear();
            g
        })
    }

    #[cfg(test)]
    pub(crate) fn db(&self) -> &crate::LogDb {
        &self.g.db
    }

    /// Entries with `start <= index < end`, in order.
    fn read_entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        if start >= end {
            return Ok(Vec::new());
        }
        if let Some(entries) = self.recent().get(start, end) {
            return Ok(entries);
        }
        let rocks = self.g.db.rocks();
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(log_key(self.g.group, end).to_vec());
        let mut it = rocks.raw_iterator_cf_opt(self.g.db.cf(CF_LOG), opts);
        it.seek(log_key(self.g.group, start));
        let mut entries = Vec::new();
        while let Some(value) = it.value() {
            let entry = decode_entry(Bytes::copy_from_slice(value))
                .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
            entries.push(entry);
            it.next();
        }
        it.status().map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
        Ok(entries)
    }

    fn read_log_id_meta(&self, tag: u8) -> Result<Option<LogId>, StorageError> {
        let Some(v) = self.g.get_meta(tag).map_err(|e| StorageIOError::read(AnyError::new(&e)))?
        else {
            return Ok(None);
        };
        let id = decode_log_id(&v).map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        Ok(Some(id))
    }

    fn last_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let rocks = self.g.db.rocks();
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(log_key(self.g.group, 0).to_vec());
        let mut it = rocks.raw_iterator_cf_opt(self.g.db.cf(CF_LOG), opts);
        it.seek_for_prev(log_key(self.g.group, u64::MAX));
        let last = match it.value() {
            Some(v) => {
                Some(entry_log_id(v).map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?)
            }
            None => None,
        };
        it.status().map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
        Ok(last)
    }

    /// Writes entries (unsynced) in one batch.
    pub(crate) fn put_entries(
        &self,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<(), StorageError> {
        let cf = self.g.db.cf(CF_LOG);
        let mut batch = WriteBatch::default();
        let mut buf = Vec::new();
        let entries: Vec<Entry> = entries.into_iter().collect();
        for entry in &entries {
            buf.clear();
            encode_entry(entry, &mut buf)
                .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
            batch.put_cf(cf, log_key(self.g.group, entry.log_id.index), &buf);
        }
        if let Err(e) = self.write(batch) {
            // What RocksDB holds for these indexes is unknown now: read it from there.
            self.recent().clear();
            return Err(e);
        }
        let mut recent = self.recent();
        for entry in entries {
            recent.push(entry);
        }
        Ok(())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.g.db.write(batch).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        self.read_entries(start, end)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.read_log_id_meta(META_PURGED)?;
        let last_log_id = self.last_log_id()?.or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let value =
            serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.g.db.cf(CF_META), meta_key(self.g.group, META_VOTE), value);
        self.g.db.write(batch).map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        // A vote must be on disk before the node acts on it.
        self.g.db.sync().await.map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        let Some(v) =
            self.g.get_meta(META_VOTE).map_err(|e| StorageIOError::read_vote(AnyError::new(&e)))?
        else {
            return Ok(None);
        };
        let vote =
            serde_json::from_slice(&v).map_err(|e| StorageIOError::read_vote(AnyError::new(&e)))?;
        Ok(Some(vote))
    }

    /// Not synced: a committed pointer lost in a power failure only means fewer entries are
    /// re-applied at start-up; the rest are applied once the leader tells the commit again. A
    /// pointer that did survive is behind the entries it points to in the WAL, so they survived too.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let key = meta_key(self.g.group, META_COMMITTED);
        let mut batch = WriteBatch::default();
        match committed {
            Some(id) => {
                let mut v = Vec::with_capacity(crate::codec::LOG_ID_LEN);
                encode_log_id(&id, &mut v);
                batch.put_cf(self.g.db.cf(CF_META), key, v);
            }
            None => batch.delete_cf(self.g.db.cf(CF_META), key),
        }
        self.write(batch)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.read_log_id_meta(META_COMMITTED)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Readable as soon as this returns; durable when the syncer calls back.
        self.put_entries(entries)?;
        self.g.db.request_sync(Box::new(move |res| callback.log_io_completed(res)));
        Ok(())
    }

    /// Not synced: truncated entries were never acknowledged, and the appends that replace them
    /// are synced after this write in WAL order.
    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.recent().truncate_from(log_id.index);
        let mut batch = WriteBatch::default();
        let cf = self.g.db.cf(CF_LOG);
        batch.delete_range_cf(
            cf,
            log_key(self.g.group, log_id.index),
            log_key(self.g.group, u64::MAX),
        );
        batch.delete_cf(cf, log_key(self.g.group, u64::MAX));
        self.write(batch)
    }

    /// Not synced: entries that come back after a power failure are purged again.
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.recent().purge_upto(log_id.index);
        let mut batch = WriteBatch::default();
        let mut v = Vec::with_capacity(crate::codec::LOG_ID_LEN);
        encode_log_id(&log_id, &mut v);
        batch.put_cf(self.g.db.cf(CF_META), meta_key(self.g.group, META_PURGED), v);
        batch.delete_range_cf(
            self.g.db.cf(CF_LOG),
            log_key(self.g.group, 0),
            log_key(self.g.group, log_id.index.saturating_add(1)),
        );
        self.write(batch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod recent_tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::codec::AppData;

    fn entry(index: u64, bytes: usize) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(AppData(vec![Bytes::from(vec![0u8; bytes])])),
        }
    }

    fn indexes(v: &[Entry]) -> Vec<u64> {
        v.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn keeps_a_bounded_consecutive_tail() {
        let mut r = Recent::default();
        for i in 1..=100 {
            r.push(entry(i, 10));
        }
        assert_eq!(r.entries.len(), RECENT_ENTRIES);
        assert_eq!(indexes(&r.get(90, 101).unwrap()), (90..=100).collect::<Vec<_>>());
        assert!(r.get(30, 40).is_none(), "evicted: read from RocksDB");
        assert!(r.get(99, 102).is_none(), "past the end");
        // Overwriting from 95 (after a truncate the leader would have asked for) keeps 37..=94.
        r.push(entry(95, 10));
        assert_eq!(r.entries.back().unwrap().log_id.index, 95);
        assert!(r.get(96, 97).is_none());
        // A gap forgets everything before it.
        r.push(entry(200, 10));
        assert_eq!(indexes(&r.get(200, 201).unwrap()), [200]);
        assert!(r.get(95, 96).is_none());
        r.truncate_from(200);
        assert!(r.entries.is_empty() && r.bytes == 0);
        // Bytes bound too.
        for i in 1..=4 {
            r.push(entry(i, RECENT_BYTES / 3));
        }
        assert!(r.bytes <= RECENT_BYTES && r.entries.len() == 2, "{}", r.entries.len());
        r.purge_upto(3);
        assert_eq!(indexes(&r.get(4, 5).unwrap()), [4]);
    }
}
