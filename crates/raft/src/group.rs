//! One replica of one shard's Raft group.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{InitializeError, RaftError};
use openraft::{Config, EmptyNode, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use strata_model::ApplyReport;

use crate::batcher::{client_write_error, Batcher};
use crate::db::{GroupDb, Released};
use crate::error::{Error, Result};
use crate::log_store::LogStore;
use crate::network::RaftNet;
use crate::state_machine::StateMachine;
use crate::{Applier, LogDb, TypeConfig};

/// Raft timing and log-compaction settings, shared by all groups of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSettings {
    /// How often a leader sends heartbeats.
    pub heartbeat_interval_ms: u64,
    /// A follower that heard nothing from a leader for a random time in
    /// `[election_timeout_min_ms, election_timeout_max_ms)` starts an election.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Take a snapshot (serialize the applier's state) after this many entries since the last;
    /// `None`: never by policy, only through [`Group::trigger_snapshot`].
    pub snapshot_every_logs: Option<u64>,
    /// Entries kept in the log behind a snapshot, to catch up lagging followers without sending
    /// them the snapshot.
    pub logs_to_keep_after_snapshot: u64,
    /// Most entries in one append-entries message.
    pub max_entries_per_append: u64,
    /// Concurrent proposals are batched into one log entry of up to this many payload bytes.
    pub max_batch_bytes: usize,
    /// How long [`Group::propose`] waits for commit before answering [`Error::Unavailable`].
    pub propose_timeout_ms: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_interval_ms: 200,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            snapshot_every_logs: Some(10_000),
            logs_to_keep_after_snapshot: 1000,
            max_entries_per_append: 16,
            max_batch_bytes: 1 << 20,
            propose_timeout_ms: 10_000,
        }
    }
}

impl RaftSettings {
    fn to_config(&self) -> Result<Config> {
        let config = Config {
            cluster_name: "strata".to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: match self.snapshot_every_logs {
                Some(n) => SnapshotPolicy::LogsSinceLast(n),
                None => SnapshotPolicy::Never,
            },
            max_in_snapshot_log_to_keep: self.logs_to_keep_after_snapshot,
            max_payload_entries: self.max_entries_per_append,
            ..Config::default()
        };
        config.validate().map_err(|e| Error::Invalid(format!("raft settings: {e}")))
    }
}

/// What a replica knows about its group, from [`Group::metrics`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetrics {
    pub group_id: u32,
    pub node_id: u64,
    /// The leader this replica knows of.
    pub leader: Option<u64>,
    pub is_leader: bool,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    /// Last index covered by the current snapshot.
    pub snapshot: Option<u64>,
    /// Last index removed from the log.
    pub purged: Option<u64>,
    pub voters: BTreeSet<u64>,
}

/// One replica of a Raft group: the group's log in the node's [`LogDb`], its state in an
/// [`Applier`], and its peers reached through the node's [`RaftNet`].
///
/// Dropping a `Group` stops it in the background; [`Group::shutdown`] stops it and waits.
pub struct Group {
    raft: Raft<TypeConfig>,
    group_id: u32,
    node_id: u64,
    net: Arc<RaftNet>,
    /// Identifies this replica's registration in `net`.
    registration: u64,
    batcher: Batcher,
    released: Mutex<Option<Released>>,
    propose_timeout: Duration,
    /// Set by [`Group::shutdown`], so dropping the group does not stop it a second time.
    stopped: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("group_id", &self.group_id)
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl Group {
    /// Starts this node's replica of group `group_id`. After a restart it first rebuilds the
    /// applier's state: the stored snapshot, then every committed entry after it.
    pub async fn start(
        db: Arc<LogDb>,
        group_id: u32,
        node_id: u64,
        applier: Arc<dyn Applier>,
        net: Arc<RaftNet>,
        settings: &RaftSettings,
    ) -> Result<Group> {
        let config = Arc::new(settings.to_config()?);
        let (g, released) = GroupDb::new(db, group_id);
        let sm = StateMachine::open(Arc::clone(&g), applier)
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        let log = LogStore::new(g);
        let raft = Raft::new(node_id, config, net.peers(group_id), log, sm).await?;
        let registration = match net.register(group_id, raft.clone()) {
            Ok(r) => r,
            Err(e) => {
                let _ = raft.shutdown().await;
                return Err(e);
            }
        };
        tracing::info!(group = group_id, node = node_id, "raft group started");
        Ok(Group {
            batcher: Batcher::spawn(raft.clone(), settings.max_batch_bytes),
            raft,
            group_id,
            node_id,
            net,
            registration,
            released: Mutex::new(Some(released)),
            propose_timeout: Duration::from_millis(settings.propose_timeout_ms),
            stopped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn group_id(&self) -> u32 {
        self.group_id
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Makes this node the single voter if the group has never been initialized; a no-op after
    /// restart.
    pub async fn initialize_single(&self) -> Result<()> {
        self.initialize(BTreeSet::from([self.node_id])).await
    }

    /// Makes `members` the voters if this replica has never been initialized (call it on one
    /// replica; the others learn it from the leader); a no-op when it was.
    pub async fn initialize(&self, members: BTreeSet<u64>) -> Result<()> {
        match self.raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(RaftError::APIError(e @ InitializeError::NotInMembers(_))) => {
                Err(Error::Invalid(e.to_string()))
            }
            Err(RaftError::Fatal(f)) => Err(f.into()),
        }
    }

    /// Appends `payload` to the log, waits until it is committed on a quorum and applied here,
    /// and returns the applier's report. [`Error::NotLeader`] on a follower.
    ///
    /// Proposals made while others are in flight share a log entry (and an fsync); each still
    /// gets its own report, and one caller's sequential proposals keep their order.
    pub async fn propose(&self, payload: Bytes) -> Result<ApplyReport> {
        match tokio::time::timeout(self.propose_timeout, self.batcher.propose(payload)).await {
            Ok(res) => res,
            Err(_) => Err(Error::Unavailable(format!(
                "not committed within {:?}; it may still be",
                self.propose_timeout
            ))),
        }
    }

    /// Waits until this replica knows a leader and returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        let m = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        m.current_leader.ok_or_else(|| Error::Unavailable("no leader".to_string()))
    }

    /// A snapshot of what this replica knows about the group.
    pub fn metrics(&self) -> GroupMetrics {
        let rx = self.raft.metrics();
        let m = rx.borrow();
        GroupMetrics {
            group_id: self.group_id,
            node_id: self.node_id,
            leader: m.current_leader,
            is_leader: m.state == ServerState::Leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            snapshot: m.snapshot.map(|l| l.index),
            purged: m.purged.map(|l| l.index),
            voters: m.membership_config.membership().voter_ids().collect(),
        }
    }

    /// Adds `node` as a learner (it receives the log but does not vote) and waits until it caught
    /// up. Leader only.
    pub async fn add_learner(&self, node: u64) -> Result<()> {
        self.raft
            .add_learner(node, EmptyNode::new(), true)
            .await
            .map(|_| ())
            .map_err(client_write_error)
    }

    /// Makes `voters` the voting members; voters not in it leave the group. Leader only.
    pub async fn change_membership(&self, voters: BTreeSet<u64>) -> Result<()> {
        self.raft.change_membership(voters, false).await.map(|_| ()).map_err(client_write_error)
    }

    /// Asks for a snapshot now (e.g. after the head was flushed), so the log can be purged.
    pub async fn trigger_snapshot(&self) -> Result<()> {
        Ok(self.raft.trigger().snapshot().await?)
    }

    /// Stops the replica and waits until it no longer uses the database.
    pub async fn shutdown(&self) -> Result<()> {
        self.batcher.stop();
        self.net.unregister(self.group_id, self.registration);
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        self.raft
            .shutdown()
            .await
            .map_err(|e| Error::Fatal(format!("raft core task failed: {e}")))?;
        // Only once it did stop: a shutdown given up halfway leaves the drop's to do.
        self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        let released = self.released.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(released) = released {
            // The state machine worker stops once it notices the core is gone.
            if tokio::time::timeout(Duration::from_secs(10), released.wait()).await.is_err() {
                tracing::warn!(
                    group = self.group_id,
                    "raft group still holds the log database after shutdown"
                );
            }
        }
        tracing::info!(group = self.group_id, node = self.node_id, "raft group stopped");
        Ok(())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.batcher.stop();
        self.net.unregister(self.group_id, self.registration);
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let raft = self.raft.clone();
            rt.spawn(async move {
                let _ = raft.shutdown().await;
            });
        }
    }
}
