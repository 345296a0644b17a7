//! The target manager: turns [`ScrapeConfigs`] into running scrape loops and keeps them in
//! step with discovery, like Prometheus' `scrape.Manager` with its discovery manager.
//!
//! Each `scrape_configs` entry is a scrape pool named after its job. Its targets come from
//! `static_configs` and from `file_sd_configs`, whose files are re-read every
//! `refresh_interval` (a poll; changes between polls are seen at the next one). After each
//! refresh every pool runs one loop per active target: new targets get a loop, targets that
//! went away are stopped with [`StopMode::Stale`] so their series get staleness markers, and
//! unchanged targets keep theirs. Targets dropped by relabeling are kept for the API (at most
//! `keep_dropped_targets` per pool when that is set). [`TargetManager::snapshot`] is what
//! `/api/v1/targets` shows.
//!
//! Not done yet: reloading the configuration.

#[cfg(test)]
mod tests;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use strata_model::{Labels, PushSink, TenantId, DEFAULT_TENANT};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::warn;

use crate::config::{ScrapeConfig, ScrapeConfigs};
use crate::scrape_loop::{
    batch, http_client, spawn_with_client, ScrapeHandle, ScrapeOptions, StopMode, TargetStatus,
};
use crate::targets::{load_file_sd, targets_from_group, FileGroups, Outcome, Target, TargetGroup};

/// A target being scraped, with the outcome of its last scrape.
#[derive(Debug, Clone)]
pub struct ActiveTargetInfo {
    /// The scrape pool (job name).
    pub pool: String,
    pub target: Target,
    pub status: TargetStatus,
}

/// A target dropped by relabeling: its labels before relabeling.
#[derive(Debug, Clone)]
pub struct DroppedTargetInfo {
    pub pool: String,
    pub discovered_labels: Labels,
}

/// The targets of all pools, pools in name order.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub active: Vec<ActiveTargetInfo>,
    pub dropped: Vec<DroppedTargetInfo>,
    /// Targets dropped per pool, including those not kept.
    pub dropped_counts: BTreeMap<String, usize>,
}

/// A target is the same target while its labels and URL are.
type Key = (Labels, String);

struct Running {
    key: Key,
    target: Target,
    handle: ScrapeHandle,
}

#[derive(Default)]
struct Pool {
    /// The job's HTTP client, built with its first loop and shared by all of them.
    client: Option<reqwest::Client>,
    active: Vec<Running>,
    dropped: Vec<Labels>,
    dropped_count: usize,
}

type Pools = Arc<Mutex<BTreeMap<String, Pool>>>;

fn lock(p: &Mutex<BTreeMap<String, Pool>>) -> MutexGuard<'_, BTreeMap<String, Pool>> {
    // A poisoned lock only means a panic elsewhere; the pools are still consistent.
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the scrape pools of a configuration. Stop it with [`TargetManager::stop`];
/// dropping it aborts discovery and every loop without staleness markers.
pub struct TargetManager {
    pools: Pools,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for TargetManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetManager").finish_non_exhaustive()
    }
}

impl TargetManager {
    /// Starts discovery and scraping, writing as the default tenant. Must be called inside
    /// a tokio runtime.
    pub fn start(configs: ScrapeConfigs, sink: Arc<dyn PushSink>) -> TargetManager {
        // Prometheus seeds target offsets from the external labels, so that HA pairs
        // (which differ in them) do not scrape in lockstep.
        let mut h = DefaultHasher::new();
        configs.global.external_labels.hash(&mut h);
        let tenant = TenantId(DEFAULT_TENANT.to_string());
        let batch = batch::start(Arc::clone(&sink), tenant.clone(), batch::BATCH_WINDOW);
        let opts = ScrapeOptions { tenant, offset_seed: h.finish(), batch: Some(batch) };
        let pools: Pools = Arc::new(Mutex::new(BTreeMap::new()));
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(discover(configs, Arc::clone(&pools), sink, opts, rx));
        TargetManager { pools, stop: Mutex::new(Some(tx)), task: Mutex::new(Some(task)) }
    }

    /// The targets now, with each one's last scrape.
    pub fn snapshot(&self) -> Snapshot {
        let pools = lock(&self.pools);
        let mut out = Snapshot::default();
        for (name, pool) in pools.iter() {
            out.active.extend(pool.active.iter().map(|r| ActiveTargetInfo {
                pool: name.clone(),
                target: r.target.clone(),
                status: r.handle.status(),
            }));
            out.dropped.extend(
                pool.dropped.iter().map(|l| DroppedTargetInfo {
                    pool: name.clone(),
                    discovered_labels: l.clone(),
                }),
            );
            out.dropped_counts.insert(name.clone(), pool.dropped_count);
        }
        out
    }

    /// Stops discovery and every scrape loop (shutdown: no staleness markers). Later
    /// calls do nothing.
    pub async fn stop(&self) {
        if let Some(tx) = take(&self.stop) {
            let _ = tx.send(());
        }
        if let Some(task) = take(&self.task) {
            let _ = task.await;
        }
        let running: Vec<Running> =
            std::mem::take(&mut *lock(&self.pools)).into_values().flat_map(|p| p.active).collect();
        for r in running {
            r.handle.stop(StopMode::Now).await;
        }
    }
}

impl Drop for TargetManager {
    fn drop(&mut self) {
        if let Some(task) = take(&self.task) {
            task.abort();
        }
    }
}

fn take<T>(m: &Mutex<Option<T>>) -> Option<T> {
    m.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// The discovery loop: syncs every pool, then re-reads file SD files as they fall due.
async fn discover(
    configs: ScrapeConfigs,
    pools: Pools,
    sink: Arc<dyn PushSink>,
    opts: ScrapeOptions,
    mut stop: oneshot::Receiver<()>,
) {
    let cfgs = &configs.scrape_configs;
    // Per pool, per file_sd entry: the groups last read and when to read again.
    let mut files: Vec<Vec<(FileGroups, Instant)>> = cfgs
        .iter()
        .map(|c| c.file_sd_configs.iter().map(|_| (FileGroups::new(), Instant::now())).collect())
        .collect();
    let tick = cfgs
        .iter()
        .flat_map(|c| c.file_sd_configs.iter().map(|f| f.refresh_interval))
        .min()
        .map(|d| d.max(Duration::from_millis(10)));
    let mut first = true;
    loop {
        let now = Instant::now();
        for (i, cfg) in cfgs.iter().enumerate() {
            let mut changed = first;
            for (j, sd) in cfg.file_sd_configs.iter().enumerate() {
                let (groups, due) = &mut files[i][j];
                if *due > now {
                    continue;
                }
                *due = now + sd.refresh_interval;
                let (read, errors) = load_file_sd(sd, groups);
                for e in errors {
                    warn!(job = %cfg.job_name, "file_sd: {e}");
                }
                if read != *groups {
                    *groups = read;
                    changed = true;
                }
            }
            if changed {
                let mut groups = cfg.static_configs.clone();
                groups.extend(files[i].iter().flat_map(|(g, _)| g.values().flatten().cloned()));
                let mut pools = lock(&pools);
                let pool = pools.entry(cfg.job_name.clone()).or_default();
                sync_pool(cfg, &groups, pool, &sink, &opts);
            }
        }
        first = false;
        match tick {
            None => {
                let _ = (&mut stop).await;
                return;
            }
            Some(d) => {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(d) => {}
                }
            }
        }
    }
}

/// Brings one pool's loops in line with the targets of `groups`.
fn sync_pool(
    cfg: &ScrapeConfig,
    groups: &[TargetGroup],
    pool: &mut Pool,
    sink: &Arc<dyn PushSink>,
    opts: &ScrapeOptions,
) {
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    for g in groups {
        let (outcomes, errors) = targets_from_group(cfg, g);
        for e in errors {
            warn!(job = %cfg.job_name, "creating target failed: {e}");
        }
        for o in outcomes {
            match o {
                Outcome::Active(t) => active.push(t),
                Outcome::Dropped(l) => dropped.push(l),
            }
        }
    }
    // Over `target_limit`, every target of the pool is down with this error (scrapes fail
    // without fetching) until the pool is back within it, as in Prometheus; new loops start
    // with it, so none fetches first.
    let unique: HashSet<Key> = active.iter().map(|t| (t.labels.clone(), t.url())).collect();
    let (n, limit) = (unique.len(), cfg.limits.target_limit);
    let forced = (limit > 0 && n as u64 > limit)
        .then(|| format!("target_limit exceeded (number of targets: {n}, limit: {limit})"));
    if forced.is_some() {
        warn!(job = %cfg.job_name, targets = n, limit, "target_limit exceeded");
    }
    let mut old: HashMap<Key, Running> =
        std::mem::take(&mut pool.active).into_iter().map(|r| (r.key.clone(), r)).collect();
    let mut seen = HashSet::new();
    for t in active {
        let key = (t.labels.clone(), t.url());
        if !seen.insert(key.clone()) {
            continue;
        }
        if let Some(mut r) = old.remove(&key) {
            // Same target; its discovered labels may still differ.
            r.target = t;
            pool.active.push(r);
            continue;
        }
        let client = match &pool.client {
            Some(c) => c.clone(),
            None => match http_client(&cfg.http) {
                Ok(c) => pool.client.insert(c).clone(),
                Err(e) => {
                    warn!(job = %cfg.job_name, url = %key.1, "starting scrape loop: {e}");
                    continue;
                }
            },
        };
        let handle =
            spawn_with_client(cfg, &t, client, Arc::clone(sink), opts.clone(), forced.clone());
        pool.active.push(Running { key, target: t, handle });
    }
    for (_, r) in old {
        // The loop writes its staleness markers and ends on its own.
        drop(r.handle.stop(StopMode::Stale));
    }
    for r in &pool.active {
        r.handle.set_forced_error(forced.clone());
    }
    pool.dropped_count = dropped.len();
    let keep = usize::try_from(cfg.limits.keep_dropped_targets).unwrap_or(usize::MAX);
    if keep > 0 {
        dropped.truncate(keep);
    }
    pool.dropped = dropped;
}
