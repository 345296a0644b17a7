//! Batches a group's concurrent proposals into log entries.
//!
//! openraft 0.9 appends each client write as its own entry and waits for that append to be
//! durable before it appends the next, so a group commits at most one entry per fsync. Proposals
//! that arrive while entries are in flight wait here and then go out together as one entry,
//! which is what lets a group's throughput grow with its load instead of being capped by the
//! disk's fsync latency.

use std::sync::Arc;

use bytes::Bytes;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{EmptyNode, Raft};
use strata_model::ApplyReport;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

use crate::codec::AppData;
use crate::error::{Error, Result};
use crate::TypeConfig;

/// Entries in flight at once: one being made durable while the previous one is applied.
const MAX_IN_FLIGHT: usize = 2;
/// Proposals waiting for a batch before `propose` itself waits (back-pressure).
const QUEUE: usize = 4096;

struct Proposal {
    payload: Bytes,
    done: oneshot::Sender<Result<ApplyReport>>,
}

pub(crate) struct Batcher {
    tx: mpsc::Sender<Proposal>,
    task: JoinHandle<()>,
}

impl Batcher {
    /// Starts batching for `raft`; an entry carries up to `max_bytes` of payloads (or one
    /// bigger payload).
    pub(crate) fn spawn(raft: Raft<TypeConfig>, max_bytes: usize) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(raft, rx, max_bytes));
        Batcher { tx, task }
    }

    /// Proposes `payload` and waits until it is applied (or failed).
    pub(crate) async fn propose(&self, payload: Bytes) -> Result<ApplyReport> {
        let (done, rx) = oneshot::channel();
        let stopped = || Error::Unavailable("raft group is shut down".to_string());
        self.tx.send(Proposal { payload, done }).await.map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Stops taking proposals; waiting ones fail with [`Error::Unavailable`].
    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

async fn run(raft: Raft<TypeConfig>, mut rx: mpsc::Receiver<Proposal>, max_bytes: usize) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Wait for a slot first: whatever arrives meanwhile joins this batch.
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        let mut bytes = first.payload.len();
        let mut batch = vec![first];
        while bytes < max_bytes {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.payload.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let (payloads, waiters): (Vec<Bytes>, Vec<_>) =
            batch.into_iter().map(|p| (p.payload, p.done)).unzip();
        // Submitting here, not in the spawned task, keeps entries in arrival order.
        let submitted = raft.client_write_ff(AppData(payloads)).await;
        tokio::spawn(async move {
            let res = match submitted {
                Ok(rx) => match rx.await {
                    Ok(Ok(resp)) => Ok(resp.data),
                    Ok(Err(e)) => Err(client_write_error(RaftError::APIError(e))),
                    Err(_) => Err(Error::Unavailable("raft group is shut down".to_string())),
                },
                Err(fatal) => Err(fatal.into()),
            };
            drop(permit);
            match res {
                Ok(reports) => {
                    let mut reports = reports.into_iter();
                    for done in waiters {
                        let report = reports
                            .next()
                            .ok_or_else(|| Error::Fatal("the applier lost a report".to_string()));
                        let _ = done.send(report);
                    }
                }
                Err(e) => {
                    for done in waiters {
                        let _ = done.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}

/// Maps openraft's answer to a write (a proposal or a membership change).
pub(crate) fn client_write_error(e: RaftError<u64, ClientWriteError<u64, EmptyNode>>) -> Error {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            Error::NotLeader { leader: f.leader_id }
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Error::Invalid(e.to_string())
        }
        RaftError::Fatal(f) => f.into(),
    }
}
