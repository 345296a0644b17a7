//! openraft's state machine for one group: committed payloads go to the [`Applier`]; snapshots
//! are the applier's serialized state, stored in the shared [`LogDb`](crate::LogDb).
//!
//! The state itself lives in memory (the ingester's head). At start-up it is rebuilt from the
//! stored snapshot, then openraft re-applies the committed log after it.

// openraft's storage traits return its (large) `StorageError` by value; the helpers here
// return what the traits need.
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EmptyNode, EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use rocksdb::WriteBatch;
use strata_model::ApplyReport;

use crate::codec::{read_u32, CodecError};
use crate::db::{snapshot_key, snapshot_part_key, GroupDb, CF_SNAPSHOT};
use crate::{Applier, Entry, LogId, StorageError, TypeConfig};

type Meta = SnapshotMeta<u64, EmptyNode>;

/// Batches with fewer payload bytes than this are applied on the calling task: the hand-off to
/// a blocking thread would cost more than the work. Bigger ones go to `spawn_blocking`, so a busy
/// applier cannot starve Raft's heartbeats on the async workers.
const INLINE_APPLY_BYTES: usize = 32 << 10;

pub(crate) struct StateMachine {
    g: Arc<GroupDb>,
    applier: Arc<dyn Applier>,
    last_applied: Option<LogId>,
    membership: StoredMembership<u64, EmptyNode>,
}

impl StateMachine {
    /// Opens the state machine of a group, restoring the applier from the stored snapshot.
    pub(crate) async fn open(
        g: Arc<GroupDb>,
        applier: Arc<dyn Applier>,
    ) -> Result<Self, StorageError> {
        let mut sm = StateMachine {
            g,
            applier,
            last_applied: None,
            membership: StoredMembership::default(),
        };
        if let Some((meta, data)) = read_snapshot(&sm.g)? {
            tracing::info!(group = sm.g.group, snapshot = %meta, "restoring state from snapshot");
            sm.restore(&meta, data).await?;
        }
        Ok(sm)
    }

    async fn restore(&mut self, meta: &Meta, data: Vec<u8>) -> Result<(), StorageError> {
        let applier = Arc::clone(&self.applier);
        let res = tokio::task::spawn_blocking(move || applier.restore(&data)).await;
        let signature = Some(meta.signature());
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(StorageIOError::read_snapshot(signature, AnyError::error(e)).into())
            }
            Err(e) => {
                return Err(StorageIOError::read_snapshot(signature, AnyError::new(&e)).into())
            }
        }
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<u64, EmptyNode>), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    /// Hands all proposals of the batch to the applier in one call; each normal entry gets one
    /// report per proposal it carries.
    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<ApplyReport>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let payloads: Vec<Bytes> = entries
            .iter()
            .flat_map(|e| match &e.payload {
                EntryPayload::Normal(d) => d.0.as_slice(),
                _ => &[],
            })
            .cloned()
            .collect();

        let reports = if payloads.is_empty() {
            Vec::new()
        } else if payloads.iter().map(Bytes::len).sum::<usize>() < INLINE_APPLY_BYTES {
            self.applier.apply_batch(&payloads)
        } else {
            let applier = Arc::clone(&self.applier);
            tokio::task::spawn_blocking(move || applier.apply_batch(&payloads))
                .await
                .map_err(|e| StorageIOError::apply(last, AnyError::new(&e)))?
        };
        let n_payloads: usize = entries
            .iter()
            .map(|e| match &e.payload {
                EntryPayload::Normal(d) => d.0.len(),
                _ => 0,
            })
            .sum();
        if reports.len() != n_payloads {
            let msg =
                format!("applier returned {} reports for {n_payloads} payloads", reports.len());
            return Err(StorageIOError::apply(last, AnyError::error(msg)).into());
        }

        let mut reports = reports.into_iter();
        let mut replies = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry.payload {
                EntryPayload::Normal(d) => replies.push(reports.by_ref().take(d.0.len()).collect()),
                EntryPayload::Blank => replies.push(Vec::new()),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    replies.push(Vec::new());
                }
            }
        }
        self.last_applied = Some(last);
        Ok(replies)
    }

    /// Captures the state now: openraft builds the snapshot beside later applies, so the data
    /// must be taken while nothing else is applied.
    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let applier = Arc::clone(&self.applier);
        let data = tokio::task::spawn_blocking(move || applier.snapshot())
            .await
            .map_err(|e| e.to_string());
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let snapshot_id = match self.last_applied {
            Some(id) => {
                format!("{}-{}-{}-{millis}", id.leader_id.term, id.leader_id.node_id, id.index)
            }
            None => format!("0-0-0-{millis}"),
        };
        SnapshotBuilder {
            g: Arc::clone(&self.g),
            meta: Meta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
                snapshot_id,
            },
            data,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        tracing::info!(group = self.g.group, snapshot = %meta, bytes = data.len(), "installing snapshot");
        save_snapshot(&self.g, meta, &data).await?;
        self.restore(meta, data).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(read_snapshot(&self.g)?
            .map(|(meta, data)| Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}

/// Writes a snapshot taken by [`StateMachine::get_snapshot_builder`] to the database.
pub(crate) struct SnapshotBuilder {
    g: Arc<GroupDb>,
    meta: Meta,
    data: Result<Vec<u8>, String>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data = std::mem::replace(&mut self.data, Err("snapshot already built".to_string()))
            .map_err(|e| {
                StorageIOError::write_snapshot(Some(self.meta.signature()), AnyError::error(e))
            })?;
        save_snapshot(&self.g, &self.meta, &data).await?;
        tracing::info!(group = self.g.group, snapshot = %self.meta, bytes = data.len(), "built snapshot");
        Ok(Snapshot { meta: self.meta.clone(), snapshot: Box::new(Cursor::new(data)) })
    }
}

/// Bytes of snapshot data per stored part (RocksDB values must stay under 4 GiB).
const SNAPSHOT_PART_BYTES: usize = 256 << 20;

/// Marks the parted layout in place of a meta length (no meta is 4 GiB long).
const PARTED: u32 = u32::MAX;

/// Stored as `PARTED:u32le parts:u32le meta_len:u32le meta_json` under the group's key and the
/// data in `parts` values of at most [`SNAPSHOT_PART_BYTES`] under its part keys. Earlier
/// versions stored `meta_len:u32le meta_json data` in one value; those are still read.
async fn save_snapshot(g: &GroupDb, meta: &Meta, data: &[u8]) -> Result<(), StorageError> {
    save_snapshot_parts(g, meta, data, SNAPSHOT_PART_BYTES).await
}

async fn save_snapshot_parts(
    g: &GroupDb,
    meta: &Meta,
    data: &[u8],
    part_bytes: usize,
) -> Result<(), StorageError> {
    let err = |e: &dyn std::fmt::Display| {
        StorageError::from(StorageIOError::write_snapshot(
            Some(meta.signature()),
            AnyError::error(e.to_string()),
        ))
    };
    let meta_json = serde_json::to_vec(meta).map_err(|e| err(&e))?;
    let meta_len = u32::try_from(meta_json.len()).map_err(|e| err(&e))?;
    let parts: Vec<&[u8]> = data.chunks(part_bytes.max(1)).collect();
    let n_parts = u32::try_from(parts.len()).map_err(|e| err(&e))?;
    let mut head = Vec::with_capacity(12 + meta_json.len());
    for x in [PARTED, n_parts, meta_len] {
        head.extend_from_slice(&x.to_le_bytes());
    }
    head.extend_from_slice(&meta_json);
    {
        let _lock = g.snapshot_lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Never replace a snapshot with an older one (a build finishing after an install).
        if let Some(current) = read_snapshot_meta(g)? {
            if current.last_log_id > meta.last_log_id {
                tracing::info!(group = g.group, %current, stale = %meta, "dropping stale snapshot");
                return Ok(());
            }
        }
        // One batch: the meta and its parts replace the old ones together, or not at all.
        let cf = g.db.cf(CF_SNAPSHOT);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            cf,
            snapshot_part_key(g.group, 0),
            snapshot_part_key(g.group, u32::MAX),
        );
        batch.delete_cf(cf, snapshot_part_key(g.group, u32::MAX));
        for (i, part) in (0..).zip(&parts) {
            batch.put_cf(cf, snapshot_part_key(g.group, i), part);
        }
        batch.put_cf(cf, snapshot_key(g.group), head);
        g.db.write(batch).map_err(|e| err(&e))?;
    }
    // Logs are purged up to the snapshot afterwards: it must be on disk first.
    g.db.sync().await.map_err(|e| err(&e))
}

fn read_err(e: &dyn std::fmt::Display) -> StorageError {
    StorageError::from(StorageIOError::read_snapshot(None, AnyError::error(e.to_string())))
}

/// A stored snapshot's head: its meta, and how many parts its data has (`None`: the data
/// follows the meta in the same value).
fn read_snapshot_head(value: &[u8]) -> Result<(Meta, Option<u32>, usize), StorageError> {
    let first = read_u32(value, 0).map_err(|e| read_err(&e))?;
    let (parts, meta_at) = if first == PARTED {
        (Some(read_u32(value, 4).map_err(|e| read_err(&e))?), 8)
    } else {
        (None, 0)
    };
    let meta_len = read_u32(value, meta_at).map_err(|e| read_err(&e))? as usize;
    let start = meta_at + 4;
    let meta_json = value
        .get(start..start + meta_len)
        .ok_or_else(|| read_err(&CodecError::new("truncated snapshot meta")))?;
    let meta: Meta = serde_json::from_slice(meta_json).map_err(|e| read_err(&e))?;
    Ok((meta, parts, start + meta_len))
}

fn read_snapshot_meta(g: &GroupDb) -> Result<Option<Meta>, StorageError> {
    let key = snapshot_key(g.group);
    let Some(value) =
        g.db.rocks().get_pinned_cf(g.db.cf(CF_SNAPSHOT), key).map_err(|e| read_err(&e))?
    else {
        return Ok(None);
    };
    Ok(Some(read_snapshot_head(&value)?.0))
}

fn read_snapshot(g: &GroupDb) -> Result<Option<(Meta, Vec<u8>)>, StorageError> {
    let cf = g.db.cf(CF_SNAPSHOT);
    let Some(mut value) =
        g.db.rocks().get_cf(cf, snapshot_key(g.group)).map_err(|e| read_err(&e))?
    else {
        return Ok(None);
    };
    let (meta, parts, data_at) = read_snapshot_head(&value)?;
    let Some(parts) = parts else {
        value.drain(..data_at);
        return Ok(Some((meta, value)));
    };
    let mut data = Vec::new();
    for i in 0..parts {
        let part = g
            .db
            .rocks()
            .get_pinned_cf(cf, snapshot_part_key(g.group, i))
            .map_err(|e| read_err(&e))?
            .ok_or_else(|| read_err(&format!("snapshot {meta}: part {i} of {parts} missing")))?;
        data.extend_from_slice(&part);
    }
    Ok(Some((meta, data)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use openraft::CommittedLeaderId;

    use super::*;
    use crate::LogDb;

    fn meta(index: u64) -> Meta {
        Meta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: format!("s{index}"),
        }
    }

    fn part_exists(g: &GroupDb, i: u32) -> bool {
        g.db.rocks().get_cf(g.db.cf(CF_SNAPSHOT), snapshot_part_key(g.group, i)).unwrap().is_some()
    }

    #[tokio::test]
    async fn snapshots_are_stored_in_parts_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(dir.path()).unwrap();
        let (g, _released) = GroupDb::new(Arc::clone(&db), 3);
        let (other, _released_other) = GroupDb::new(Arc::clone(&db), 4);
        let data: Vec<u8> = (0..35u8).collect();
        save_snapshot_parts(&g, &meta(5), &data, 10).await.unwrap();
        save_snapshot_parts(&other, &meta(9), b"other group", 4).await.unwrap();
        assert!((0..4).all(|i| part_exists(&g, i)) && !part_exists(&g, 4));
        let (m, got) = read_snapshot(&g).unwrap().unwrap();
        assert_eq!((m, got), (meta(5), data.clone()));

        // A newer, smaller snapshot leaves none of the older one's parts behind.
        save_snapshot_parts(&g, &meta(7), b"0123456789ab", 10).await.unwrap();
        assert!(part_exists(&g, 1) && !part_exists(&g, 2) && !part_exists(&g, 3));
        assert_eq!(read_snapshot(&g).unwrap().unwrap(), (meta(7), b"0123456789ab".to_vec()));
        // An older one does not replace it.
        save_snapshot_parts(&g, &meta(6), b"stale", 10).await.unwrap();
        assert_eq!(read_snapshot(&g).unwrap().unwrap().0, meta(7));
        // An empty one has no parts.
        save_snapshot_parts(&g, &meta(8), b"", 10).await.unwrap();
        assert_eq!(read_snapshot(&g).unwrap().unwrap(), (meta(8), Vec::new()));
        assert!(!part_exists(&g, 0));
        // The other group's snapshot was never touched.
        assert_eq!(read_snapshot(&other).unwrap().unwrap(), (meta(9), b"other group".to_vec()));

        // The one-value layout of earlier versions still reads; a missing part is an error.
        let json = serde_json::to_vec(&meta(10)).unwrap();
        let mut old = (json.len() as u32).to_le_bytes().to_vec();
        old.extend_from_slice(&json);
        old.extend_from_slice(b"old data");
        db.rocks().put_cf(db.cf(CF_SNAPSHOT), snapshot_key(3), &old).unwrap();
        assert_eq!(read_snapshot(&g).unwrap().unwrap(), (meta(10), b"old data".to_vec()));
        save_snapshot_parts(&g, &meta(11), &data, 10).await.unwrap();
        db.rocks().delete_cf(db.cf(CF_SNAPSHOT), snapshot_part_key(3, 2)).unwrap();
        assert!(read_snapshot(&g).is_err());
    }
}
