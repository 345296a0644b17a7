//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_model::ApplyReport;
use strata_raft::{Applier, RaftSettings};

/// Records every payload it applies; its snapshot is the list of payloads.
#[derive(Default)]
pub struct Recorder {
    pub applied: Mutex<Vec<Bytes>>,
    pub restores: Mutex<u32>,
    pub apply_calls: Mutex<u64>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn payloads(&self) -> Vec<Bytes> {
        self.applied.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.applied.lock().unwrap().len()
    }
}

impl Applier for Recorder {
    fn apply(&self, payload: &[u8]) -> ApplyReport {
        *self.apply_calls.lock().unwrap() += 1;
        self.applied.lock().unwrap().push(Bytes::copy_from_slice(payload));
        ApplyReport { appended: payload.len() as u64, ..ApplyReport::default() }
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in self.applied.lock().unwrap().iter() {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    fn restore(&self, mut data: &[u8]) -> Result<(), String> {
        let mut applied = Vec::new();
        while !data.is_empty() {
            let len = u32::from_le_bytes(data[..4].try_into().map_err(|_| "short")?) as usize;
            applied.push(Bytes::copy_from_slice(&data[4..4 + len]));
            data = &data[4 + len..];
        }
        *self.applied.lock().unwrap() = applied;
        *self.restores.lock().unwrap() += 1;
        Ok(())
    }
}

/// Fast timeouts so elections take tens of milliseconds.
pub fn fast_settings() -> RaftSettings {
    RaftSettings {
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        snapshot_every_logs: None,
        propose_timeout_ms: 5_000,
        ..RaftSettings::default()
    }
}

pub fn payload(i: usize) -> Bytes {
    Bytes::from(format!("payload-{i:05}"))
}

/// Polls `cond` until it holds or 10 s passed.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
