//! Errors, named for what the caller can do about them.

use openraft::error::Fatal;

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// This replica is not the group's leader: retry on `leader` (unknown while an election runs).
    #[error("not the leader of this group (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// The group cannot serve now (no quorum, no leader yet, shutting down): retry later or
    /// elsewhere. A timed-out proposal may still be committed later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request itself is wrong (bad settings, a membership that does not fit); do not retry.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Reading or writing the local RocksDB failed; this replica should be taken out of service.
    #[error("storage error: {0}")]
    Storage(String),
    /// This replica is broken (its Raft core panicked); restart the node.
    #[error("fatal: {0}")]
    Fatal(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a [`Transport`](crate::Transport) could not deliver a message or bring back its reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The peer (or the group on it) is down or cut off: Raft backs off before trying again.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The message was lost or garbled on the way: Raft retries soon.
    #[error("network: {0}")]
    Network(String),
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<Fatal<u64>> for Error {
    fn from(e: Fatal<u64>) -> Self {
        match e {
            Fatal::Stopped => Error::Unavailable("raft group is shut down".to_string()),
            Fatal::StorageError(e) => Error::Storage(e.to_string()),
            Fatal::Panicked => Error::Fatal("raft core panicked".to_string()),
        }
    }
}
