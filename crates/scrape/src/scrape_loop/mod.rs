//! The scrape loop of one target, as Prometheus' `scrapeLoop`: every `scrape_interval`,
//! starting at an offset derived from the target's hash, it GETs the target, parses the
//! body, merges in the target's labels, applies `metric_relabel_configs` and the limits,
//! adds the `up`/`scrape_*` report series and staleness markers, and writes the lot as
//! remote-write requests to a [`PushSink`] — the same path remote-write takes.
//!
//! [`spawn`] starts a loop and returns a [`ScrapeHandle`]: [`ScrapeHandle::status`] is the
//! cheap snapshot `/api/v1/targets` reads; [`ScrapeHandle::stop`] ends it, by default
//! writing staleness markers for all its series as Prometheus does when a target goes away.

mod append;
pub mod batch;
mod encode;
mod fetch;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_model::{MetricMetadata, PushRequest, PushSink, TenantId, WireVersion};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{HttpClientConfig, ScrapeConfig, ScrapeProtocol};
use crate::expfmt::{parse_cached, FamilyMetadata, ParseOptions};
use crate::targets::Target;
use append::{report, report_stale, AppendRules, Counts, ExtraReport, Out, SeriesMemory};

pub(crate) use fetch::client as http_client;
pub use fetch::{install_tls_provider, USER_AGENT_VALUE};

/// Metadata is written when it changes, and at least this often otherwise.
const METADATA_RESEND: Duration = Duration::from_secs(600);

/// A target's health, as `/api/v1/targets` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    /// Not scraped yet.
    #[default]
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The outcome of a target's last scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetStatus {
    pub health: Health,
    /// Why the last scrape failed.
    pub last_error: Option<String>,
    /// The last scrape's timestamp, milliseconds since the epoch.
    pub last_scrape_ms: Option<i64>,
    pub last_duration: Duration,
    /// `scrape_samples_scraped` of the last scrape.
    pub last_samples_scraped: u64,
    /// `scrape_samples_post_metric_relabeling` of the last scrape.
    pub last_samples_post_relabel: u64,
    /// What the target's last successful scrape said about its metric families (`# TYPE`,
    /// `# HELP`, `# UNIT`), for `/api/v1/targets/metadata`. Shared, so a snapshot is cheap.
    pub metadata: Arc<Vec<(String, MetricMetadata)>>,
}

/// What a loop does when it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// The target went away: wait until its next scrape would have been written, and a
    /// bit more (in case the target was recreated), then write staleness markers for all
    /// its series at the time of that next scrape. The loop ends about two intervals later.
    Stale,
    /// Shutdown or reload: end now, without markers.
    Now,
}

/// Who the loop writes as.
#[derive(Debug, Clone)]
pub struct ScrapeOptions {
    pub tenant: TenantId,
    /// Mixed into each target's start offset, so that two servers scraping the same target
    /// do not scrape it at the same instant (Prometheus seeds it from its external labels).
    pub offset_seed: u64,
    /// Hand requests to this group-commit writer (see [`batch`]) instead of pushing each
    /// scrape's own.
    pub batch: Option<batch::BatchSender>,
}

/// A running scrape loop. Dropping it aborts the loop without staleness markers.
#[derive(Debug)]
pub struct ScrapeHandle {
    status: Arc<Mutex<TargetStatus>>,
    forced: Arc<Mutex<Option<String>>>,
    stop: Option<oneshot::Sender<StopMode>>,
    task: Option<JoinHandle<()>>,
}

impl ScrapeHandle {
    /// Makes every scrape fail with `error` instead of fetching, until cleared with `None`
    /// (Prometheus's forced error: a pool over its `target_limit`).
    pub fn set_forced_error(&self, error: Option<String>) {
        *lock(&self.forced) = error;
    }

    /// A copy of the last scrape's outcome.
    pub fn status(&self) -> TargetStatus {
        lock(&self.status).clone()
    }

    /// Stops the loop. The returned future ends with the loop; dropping it lets the loop
    /// finish (and write its markers) on its own.
    pub fn stop(mut self, mode: StopMode) -> impl std::future::Future<Output = ()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(mode);
        }
        let task = self.task.take();
        async move {
            if let Some(task) = task {
                let _ = task.await;
            }
        }
    }
}

impl Drop for ScrapeHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the status is still a valid value.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts scraping `target` with the settings of its job `cfg`. Fails only when the HTTP
/// client cannot be built. Must be called inside a tokio runtime.
pub fn spawn(
    cfg: &ScrapeConfig,
    target: &Target,
    sink: Arc<dyn PushSink>,
    opts: ScrapeOptions,
) -> Result<ScrapeHandle, String> {
    Ok(spawn_with_client(cfg, target, fetch::client(&cfg.http)?, sink, opts, None))
}

/// [`spawn`] with the job's HTTP client, which the loops of one scrape pool share (its
/// connection pool and TLS settings, read once), and the error its scrapes fail with from the
/// start, if any (see [`ScrapeHandle::set_forced_error`]).
pub(crate) fn spawn_with_client(
    cfg: &ScrapeConfig,
    target: &Target,
    client: reqwest::Client,
    sink: Arc<dyn PushSink>,
    opts: ScrapeOptions,
    forced: Option<String>,
) -> ScrapeHandle {
    let status = Arc::new(Mutex::new(TargetStatus::default()));
    let forced = Arc::new(Mutex::new(forced));
    let (tx, rx) = oneshot::channel();
    let offset =
        start_offset(target_hash(target), opts.offset_seed, target.interval(), SystemTime::now());
    let scraper = Scraper {
        client,
        http: cfg.http.clone(),
        url: target.url(),
        interval: target.interval(),
        timeout: target.timeout(),
        body_limit: cfg.limits.body_size_limit,
        compression: cfg.enable_compression,
        accept: ScrapeProtocol::accept_header(
            &cfg.scrape_protocols,
            &cfg.metric_name_escaping_scheme,
        ),
        extra_metrics: cfg.extra_scrape_metrics,
        sample_limit: cfg.limits.sample_limit,
        parse_opts: ParseOptions {
            fallback: cfg.fallback_scrape_protocol.and_then(|p| p.format()),
            strict_openmetrics: false,
        },
        rules: AppendRules {
            target: target.public_labels(),
            honor_labels: cfg.honor_labels,
            honor_timestamps: cfg.honor_timestamps,
            track_timestamps_staleness: cfg.track_timestamps_staleness,
            metric_relabel: cfg.metric_relabel_configs.clone(),
            limits: cfg.limits,
        },
        memory: SeriesMemory::default(),
        sink,
        batch: opts.batch,
        tenant: opts.tenant,
        status: Arc::clone(&status),
        forced: Arc::clone(&forced),
        last_metadata: None,
        families: Vec::new(),
        target_metadata: Arc::default(),
    };
    let task = tokio::spawn(scraper.run(offset, rx));
    ScrapeHandle { status, forced, stop: Some(tx), task: Some(task) }
}

/// FNV-1a over the target's labels and URL, like Prometheus' `Target.hash`.
fn target_hash(t: &Target) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for l in t.labels.iter() {
        feed(l.name.as_bytes());
        feed(&[0xff]);
        feed(l.value.as_bytes());
        feed(&[0xff]);
    }
    feed(t.url().as_bytes());
    h
}

/// How long to wait before the first scrape, as Prometheus' `Target.offset`: the target's
/// slot is `(hash ^ seed) % interval` past each multiple of the interval since the epoch,
/// so restarts keep a target's phase and targets spread evenly over the interval.
pub fn start_offset(hash: u64, seed: u64, interval: Duration, now: SystemTime) -> Duration {
    let iv = interval.as_nanos();
    if iv == 0 {
        return Duration::ZERO;
    }
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let base = iv - now % iv;
    let mut next = base + u128::from(hash ^ seed) % iv;
    if next > iv {
        next -= iv;
    }
    Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
}

fn now_ms() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

struct Scraper {
    client: reqwest::Client,
    http: HttpClientConfig,
    url: String,
    interval: Duration,
    timeout: Duration,
    body_limit: u64,
    /// Ask for gzip (`enable_compression`).
    compression: bool,
    /// The `Accept` header (`scrape_protocols`, `metric_name_escaping_scheme`).
    accept: String,
    /// `extra_scrape_metrics`.
    extra_metrics: bool,
    sample_limit: u64,
    parse_opts: ParseOptions,
    rules: AppendRules,
    memory: SeriesMemory,
    sink: Arc<dyn PushSink>,
    batch: Option<batch::BatchSender>,
    tenant: TenantId,
    status: Arc<Mutex<TargetStatus>>,
    /// An error every scrape fails with, unfetched, while it is set.
    forced: Arc<Mutex<Option<String>>>,
    /// The metadata last written and when.
    last_metadata: Option<(Vec<FamilyMetadata>, Instant)>,
    /// The families of the last successful scrape, and the same for the API.
    families: Vec<FamilyMetadata>,
    target_metadata: Arc<Vec<(String, MetricMetadata)>>,
}

impl Scraper {
    async fn run(mut self, offset: Duration, mut stop: oneshot::Receiver<StopMode>) {
        let mut ticker = tokio::time::interval_at(Instant::now() + offset, self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut scraped = false;
        let mode = loop {
            tokio::select! {
                biased;
                m = &mut stop => break m.unwrap_or(StopMode::Now),
                _ = ticker.tick() => {
                    self.scrape_once().await;
                    scraped = true;
                }
            }
        };
        if mode == StopMode::Now || !scraped {
            return;
        }
        // Prometheus' endOfRunStaleness: the markers carry the next scrape's time, but are
        // written an interval and a bit later, so that a recreated loop for the same
        // target gets its samples in first and the markers are refused as out of order.
        ticker.tick().await;
        let ts = now_ms();
        ticker.tick().await;
        tokio::time::sleep(self.interval / 10).await;
        let mut out = Vec::new();
        self.memory.stale_all(ts, &mut out);
        report_stale(&self.rules.target, ts, self.extra_metrics, &mut out);
        self.write(out, &[]).await;
    }

    async fn scrape_once(&mut self) {
        let start = Instant::now();
        let ts = now_ms();
        let forced = lock(&self.forced).clone();
        let fetched = match forced {
            Some(e) => Err(e),
            None => tokio::time::timeout(
                self.timeout,
                fetch::fetch(
                    &self.client,
                    &self.http,
                    &self.url,
                    self.timeout,
                    self.body_limit,
                    self.compression,
                    &self.accept,
                ),
            )
            .await
            .unwrap_or_else(|_| Err(format!("scrape timed out after {:?}", self.timeout))),
        };
        let body_bytes = match &fetched {
            Ok(f) => i64::try_from(f.body.len()).unwrap_or(i64::MAX),
            Err(e) if e == fetch::BODY_LIMIT_EXCEEDED => -1,
            Err(_) => 0,
        };
        let mut out = Vec::new();
        let mut metadata = Vec::new();
        let result = match fetched {
            Err(e) => Err((e, Counts::default())),
            Ok(f) => match parse_cached(&f.body, &f.content_type, ts, &self.parse_opts, &|key| {
                self.memory.knows(key)
            }) {
                Err(e) => Err((e.to_string(), Counts::default())),
                Ok(p) => {
                    if let Some(warning) = p.warning {
                        tracing::warn!(target_url = %self.url, %warning, "scrape content type");
                    }
                    metadata = p.metadata;
                    self.memory.append(&self.rules, p.samples, &f.body, ts, &mut out)
                }
            },
        };
        let (counts, error) = match result {
            Ok(c) => (c, None),
            Err((e, c)) => {
                self.memory.stale_all(ts, &mut out);
                (Counts { series_added: 0, ..c }, Some(e))
            }
        };
        let duration = start.elapsed();
        let extra = self.extra_metrics.then_some(ExtraReport {
            timeout: self.timeout,
            sample_limit: self.sample_limit,
            body_bytes,
        });
        report(&self.rules.target, ts, error.is_none(), duration, counts, extra, &mut out);
        if let Some(error) = &error {
            tracing::debug!(target_url = %self.url, %error, "scrape failed");
        }
        if error.is_none() && self.families != metadata {
            self.families.clone_from(&metadata);
            self.target_metadata =
                Arc::new(metadata.iter().map(|m| (m.name.clone(), m.to_model())).collect());
        }
        *lock(&self.status) = TargetStatus {
            metadata: Arc::clone(&self.target_metadata),
            health: if error.is_none() { Health::Up } else { Health::Down },
            last_error: error,
            last_scrape_ms: Some(ts),
            last_duration: duration,
            last_samples_scraped: counts.total,
            last_samples_post_relabel: counts.added,
        };
        let metadata = self.metadata_to_send(metadata);
        self.write(out, &metadata).await;
    }

    /// `metadata` when it differs from what was last written or that is old; else nothing.
    fn metadata_to_send(&mut self, metadata: Vec<FamilyMetadata>) -> Vec<FamilyMetadata> {
        if metadata.is_empty() {
            return metadata;
        }
        let fresh = matches!(&self.last_metadata,
            Some((m, at)) if *m == metadata && at.elapsed() < METADATA_RESEND);
        if fresh {
            return Vec::new();
        }
        self.last_metadata = Some((metadata.clone(), Instant::now()));
        metadata
    }

    async fn write(&self, out: Vec<Out>, metadata: &[FamilyMetadata]) {
        if let Some(batch) = &self.batch {
            for raw in encode::encode_raw(out, metadata) {
                if batch.send(raw).await.is_err() {
                    tracing::warn!(target_url = %self.url, "scraped samples not written: writer gone");
                }
            }
            return;
        }
        for body in encode::encode(out, metadata) {
            let req = PushRequest { tenant: self.tenant.clone(), version: WireVersion::V1, body };
            match self.sink.push(req).await {
                Ok(outcome) => {
                    if let Some(error) = outcome.partial_error {
                        tracing::debug!(target_url = %self.url, %error, "scraped samples partly refused");
                    }
                }
                Err((error, _)) => {
                    tracing::warn!(target_url = %self.url, %error, "scraped samples not written");
                }
            }
        }
    }
}
