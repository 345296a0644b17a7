//! The RocksDB instance shared by all groups of a node, and its key layout.
//!
//! Column families: `log` (`group:u32be index:u64be` → entry), `meta` (`group:u32be tag:u8` →
//! vote, committed log id, last purged log id) and `snapshot` (`group:u32be` → snapshot meta,
//! `group:u32be part:u32be` → its data in parts).
//! Big-endian keys keep one group's log contiguous and in index order.
//!
//! Durability: writes go to RocksDB unsynced — so they are readable at once and survive a process
//! crash, since RocksDB hands each write to the OS before returning — and one syncer thread per
//! database makes them durable with `FlushWAL(sync = true)`. Every caller that needs durability
//! (a log append's flush callback, a vote) waits for a sync that started after its write returned;
//! because the WAL is one sequential file, that sync covers the write. All requests queued while
//! one fsync runs share the next one: group commit across all groups of the node.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options, WriteBatch, WriteOptions, DB,
};

use crate::error::{Error, Result};

pub(crate) const CF_LOG: &str = "log";
pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_SNAPSHOT: &str = "snapshot";

/// Tags of the per-group keys in the `meta` column family.
pub(crate) const META_VOTE: u8 = 1;
pub(crate) const META_COMMITTED: u8 = 2;
pub(crate) const META_PURGED: u8 = 3;

/// Called once the writes issued before the request are durable.
type SyncCallback = Box<dyn FnOnce(io::Result<()>) + Send>;

/// The RocksDB instance holding the Raft logs, votes and snapshots of every group on this node.
pub struct LogDb {
    db: Arc<DB>,
    path: PathBuf,
    syncer: Mutex<Option<Syncer>>,
}

struct Syncer {
    tx: mpsc::Sender<SyncCallback>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for LogDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDb").field("path", &self.path).finish()
    }
}

impl LogDb {
    /// Opens (or creates) the database in directory `path`.
    pub fn open(path: &Path) -> Result<Arc<LogDb>> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(4);
        // The WAL is only recycled when every column family flushed past it; bound it so a quiet
        // column family cannot pin gigabytes of log.
        opts.set_max_total_wal_size(512 << 20);

        let mut log_opts = Options::default();
        // Entries are short-lived (deleted after the next snapshot) and mostly read back from
        // the memtable: compression would only cost CPU.
        log_opts.set_compression_type(DBCompressionType::None);
        log_opts.set_write_buffer_size(64 << 20);

        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_LOG, log_opts),
            ColumnFamilyDescriptor::new(CF_META, Options::default()),
            ColumnFamilyDescriptor::new(CF_SNAPSHOT, Options::default()),
        ];
        let db = Arc::new(DB::open_cf_descriptors(&opts, path, cfs)?);

        let (tx, rx) = mpsc::channel::<SyncCallback>();
        let sync_db = Arc::clone(&db);
        let thread = std::thread::Builder::new()
            .name("raft-wal-sync".to_string())
            .spawn(move || sync_loop(&sync_db, &rx))
            .map_err(|e| Error::Storage(format!("cannot start the wal sync thread: {e}")))?;

        Ok(Arc::new(LogDb {
            db,
            path: path.to_path_buf(),
            syncer: Mutex::new(Some(Syncer { tx, thread })),
        }))
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn rocks(&self) -> &DB {
        &self.db
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("LogDb::open creates every column family")
    }

    /// Writes `batch` without waiting for it to be durable; see [`LogDb::request_sync`].
    pub(crate) fn write(&self, batch: WriteBatch) -> std::result::Result<(), rocksdb::Error> {
        let mut opts = WriteOptions::default();
        opts.set_sync(false);
        self.db.write_opt(batch, &opts)
    }

    /// Calls `done` once every write that returned before this call is durable.
    pub(crate) fn request_sync(&self, done: SyncCallback) {
        let guard = self.syncer.lock().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(s) => {
                if let Err(mpsc::SendError(done)) = s.tx.send(done) {
                    done(Err(io::Error::other("the wal sync thread stopped")));
                }
            }
            None => done(Err(io::Error::other("the log database is closing"))),
        }
    }

    /// Waits until every write that returned before this call is durable.
    pub(crate) async fn sync(&self) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.request_sync(Box::new(move |res| {
            let _ = tx.send(res);
        }));
        rx.await.unwrap_or_else(|_| Err(io::Error::other("the wal sync thread stopped")))
    }
}

impl Drop for LogDb {
    fn drop(&mut self) {
        let syncer = self.syncer.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(Syncer { tx, thread }) = syncer {
            drop(tx);
            // The thread holds a reference to the database: join it so the database is closed
            // (and its lock released) when this returns.
            if thread.join().is_err() {
                tracing::error!("wal sync thread panicked");
            }
        }
    }
}

/// Batches all sync requests that arrive while an fsync runs into the next fsync.
fn sync_loop(db: &DB, rx: &mpsc::Receiver<SyncCallback>) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        let res = db.flush_wal(true).map_err(|e| e.to_string());
        if let Err(error) = &res {
            tracing::error!(%error, "raft wal sync failed");
        }
        for done in waiting {
            done(res.clone().map_err(io::Error::other));
        }
    }
}

pub(crate) fn log_key(group: u32, index: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&group.to_be_bytes());
    k[4..].copy_from_slice(&index.to_be_bytes());
    k
}

pub(crate) fn meta_key(group: u32, tag: u8) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[..4].copy_from_slice(&group.to_be_bytes());
    k[4] = tag;
    k
}

pub(crate) fn snapshot_key(group: u32) -> [u8; 4] {
    group.to_be_bytes()
}

/// Part `part` of a group's snapshot data (`group:u32be part:u32be`): a RocksDB value holds
/// less than 4 GiB, and a larger one is silently left out of its write batch.
pub(crate) fn snapshot_part_key(group: u32, part: u32) -> [u8; 8] {
    let mut k = [0; 8];
    k[..4].copy_from_slice(&group.to_be_bytes());
    k[4..].copy_from_slice(&part.to_be_bytes());
    k
}

/// One group's handle on the shared database. Every storage component of a group holds it, so
/// once the last one is dropped the group no longer uses the database; [`GroupDb::new`] returns a
/// [`Released`] that resolves then.
pub(crate) struct GroupDb {
    pub(crate) db: Arc<LogDb>,
    pub(crate) group: u32,
    /// Serializes snapshot replacement (a snapshot build runs beside the state machine).
    pub(crate) snapshot_lock: Mutex<()>,
    _alive: tokio::sync::mpsc::Sender<()>,
}

/// Resolves once every component of a group dropped its [`GroupDb`].
pub(crate) struct Released(tokio::sync::mpsc::Receiver<()>);

impl Released {
    pub(crate) async fn wait(mut self) {
        while self.0.recv().await.is_some() {}
    }
}

impl GroupDb {
    pub(crate) fn new(db: Arc<LogDb>, group: u32) -> (Arc<GroupDb>, Released) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let g = GroupDb { db, group, snapshot_lock: Mutex::new(()), _alive: tx };
        (Arc::new(g), Released(rx))
    }

    pub(crate) fn get_meta(&self, tag: u8) -> std::result::Result<Option<Vec<u8>>, rocksdb::Error> {
        self.db.rocks().get_cf(self.db.cf(CF_META), meta_key(self.group, tag))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_group_then_index() {
        assert!(log_key(1, u64::MAX) < log_key(2, 0));
        assert!(log_key(1, 255) < log_key(1, 256));
        assert!(meta_key(1, 3) < meta_key(2, 1));
    }

    #[tokio::test]
    async fn sync_after_write_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = LogDb::open(dir.path()).unwrap();
            let mut b = WriteBatch::default();
            b.put_cf(db.cf(CF_META), meta_key(9, 1), b"x");
            db.write(b).unwrap();
            db.sync().await.unwrap();
        }
        // Dropping the last handle closed the database: it opens again in this process.
        let db = LogDb::open(dir.path()).unwrap();
        let v = db.rocks().get_cf(db.cf(CF_META), meta_key(9, 1)).unwrap();
        assert_eq!(v.as_deref(), Some(&b"x"[..]));
    }
}
