//! Replication for Strata: every shard of the series space is one [openraft] group, and the Raft
//! log is the write-ahead log.
//!
//! One node hosts many groups. They share one RocksDB instance ([`LogDb`]) that holds their logs,
//! votes and snapshots under keys prefixed with the group id; one fsync makes the appends of all
//! groups durable together. A write ([`Group::propose`]) is acknowledged only after its entry is
//! durable (fsynced) on a quorum and applied; applying hands the payload to an [`Applier`] (the
//! ingester's head), which is deterministic so every replica ends up with the same state.
//! Concurrent proposals to a group share a log entry. Snapshots are the applier's serialized
//! state, also kept in RocksDB; after a restart a group rebuilds its state from the snapshot and
//! the committed log after it before it serves.
//!
//! Groups on different nodes talk through a [`Transport`]: an in-process [`LocalRouter`] for tests,
//! a gRPC one in the server. Incoming messages enter a node through [`RaftNet::handle`].
//!
//! Main types: [`LogDb`], [`Group`], [`Applier`], [`RaftSettings`], [`RaftNet`], [`Transport`],
//! [`LocalRouter`], [`Error`]. openraft's type configuration stays inside this crate.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use strata_model::ApplyReport;
//! use strata_raft::{Applier, Group, LocalRouter, LogDb, RaftSettings};
//!
//! struct Count(std::sync::atomic::AtomicU64);
//! impl Applier for Count {
//!     fn apply(&self, payload: &[u8]) -> ApplyReport {
//!         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!         ApplyReport { appended: payload.len() as u64, ..ApplyReport::default() }
//!     }
//!     fn snapshot(&self) -> Vec<u8> {
//!         self.0.load(std::sync::atomic::Ordering::Relaxed).to_le_bytes().to_vec()
//!     }
//!     fn restore(&self, data: &[u8]) -> Result<(), String> {
//!         let n = u64::from_le_bytes(data.try_into().map_err(|_| "bad snapshot")?);
//!         self.0.store(n, std::sync::atomic::Ordering::Relaxed);
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> strata_raft::Result<()> {
//! let db = LogDb::open(std::path::Path::new("/var/lib/strata/raft"))?;
//! let net = LocalRouter::new().node(1);
//! let applier = Arc::new(Count(Default::default()));
//! let group = Group::start(db, 0, 1, applier, net, &RaftSettings::default()).await?;
//! group.initialize_single().await?;
//! group.wait_for_leader(std::time::Duration::from_secs(5)).await?;
//! let report = group.propose(bytes::Bytes::from_static(b"payload")).await?;
//! assert_eq!(report.appended, 7);
//! group.shutdown().await?;
//! # Ok(()) }
//! ```

use std::io::Cursor;

use bytes::Bytes;
use strata_model::ApplyReport;

mod batcher;
mod codec;
mod db;
mod error;
mod group;
mod local;
mod log_store;
mod network;
mod state_machine;
mod wire;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod suite_tests;

pub use db::LogDb;
pub use error::{Error, Result, TransportError};
pub use group::{Group, GroupMetrics, RaftSettings};
pub use local::LocalRouter;
pub use network::{RaftNet, RpcKind, Transport};

openraft::declare_raft_types!(
    /// openraft's type configuration for Strata's groups; private to this crate.
    pub(crate) TypeConfig:
        D = codec::AppData,
        R = Vec<ApplyReport>,
        NodeId = u64,
        Node = openraft::EmptyNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<u64>;
pub(crate) type StorageError = openraft::StorageError<u64>;

/// Turns committed payloads into state (the ingester's head). Implemented by the ingester.
///
/// Must be deterministic: every replica applies the same payloads in the same order and must end
/// in the same state with the same reports.
pub trait Applier: Send + Sync + 'static {
    /// Applies one committed payload.
    fn apply(&self, payload: &[u8]) -> ApplyReport;

    /// Applies consecutive committed payloads, returning exactly one report per payload, in
    /// order. Override it to amortize per-call costs (locks) over a batch.
    fn apply_batch(&self, payloads: &[Bytes]) -> Vec<ApplyReport> {
        payloads.iter().map(|p| self.apply(p)).collect()
    }

    /// Serializes the whole state. Called between two applies (nothing is applied meanwhile), so
    /// it should be quick or copy-on-write.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with one produced by [`Applier::snapshot`].
    fn restore(&self, data: &[u8]) -> std::result::Result<(), String>;
}
