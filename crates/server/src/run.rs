//! Wiring of `strata all`: data directory, Raft shards, ingester, PromQL engine, HTTP, shutdown.
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use strata_api::{ActiveTarget, ApiState, BuildInfo, DroppedTarget, TargetsSnapshot};
use strata_block::compact::Compactor;
use strata_block::Catalog;
use strata_ingester::flush::{FlushConfig, FlushMetrics, Flusher};
use strata_ingester::{Ingester, IngesterMetrics, ShardState};
use strata_objstore::Bucket;
use strata_raft::{Group, LocalRouter, LogDb};
use strata_scrape::config::format_duration;
use strata_scrape::manager::{Snapshot, TargetManager};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::info;

use crate::cli::RunArgs;
use crate::config::{parse_addr, Config, RawConfig};

/// The node id of the single node in `all`.
const NODE_ID: u64 = 1;

/// Facts fixed when a data directory is created; a later start must agree.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ClusterFile {
    shards: u32,
    /// Random, made when the directory is created; part of the ids of the blocks it flushes.
    #[serde(default)]
    incarnation: u64,
}

/// Checks (or writes, for a new directory) `cluster.json`; returns the directory's incarnation.
fn check_cluster_file(dir: &Path, shards: u32) -> anyhow::Result<u64> {
    let path = dir.join("cluster.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let f: ClusterFile = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", path.display()))?;
            if f.shards != shards {
                bail!(
                    "ingester.shards is {shards} but the data in {} was created with {} shards; \
                     the shard count cannot change",
                    dir.display(),
                    f.shards
                );
            }
            Ok(f.incarnation)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed = format!(
                "{}-{:?}-{}",
                std::process::id(),
                std::time::SystemTime::now(),
                dir.display()
            );
            let incarnation = xxhash_rust::xxh3::xxh3_64(seed.as_bytes());
            let text = serde_json::to_string(&ClusterFile { shards, incarnation })?;
            let tmp = dir.join("cluster.json.tmp");
            std::fs::write(&tmp, text)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(incarnation)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A running `strata all`.
pub struct Running {
    /// The bound HTTP address (useful when the config asked for port 0).
    pub http_addr: SocketAddr,
    /// The bound gRPC address.
    pub grpc_addr: SocketAddr,
    pub ingester: Arc<Ingester>,
    /// The blocks queries read besides the heads.
    pub catalog: Arc<Catalog>,
    /// The scrape pools, when `scrape_configs` has any.
    scrape: Option<Arc<TargetManager>>,
    /// Stops the flusher, the compactor and the bucket sync.
    background_stop: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops scraping, then HTTP, then background work, then the Raft groups.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop_scraping().await;
        self.stop_background().await;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.server).await??;
        for g in self.ingester.groups() {
            g.shutdown().await?;
        }
        Ok(())
    }

    /// Stops flushing, compaction and bucket syncing (a flush in progress is abandoned; it is
    /// repeated after the next start).
    pub async fn stop_background(&mut self) {
        let _ = self.background_stop.send(true);
        for h in self.background.drain(..) {
            let _ = h.await;
        }
    }

    /// Stops every scrape loop (no staleness markers, as on a Prometheus shutdown).
    pub async fn stop_scraping(&mut self) {
        if let Some(m) = self.scrape.take() {
            m.stop().await;
        }
    }

    /// Waits until the HTTP server ends (after a signal).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.server).await??;
        Ok(())
    }
}

/// Starts every role in this process.
pub async fn start_all(cfg: Config) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    let incarnation = check_cluster_file(&cfg.data_dir, cfg.ingester.shards)?;
    let db = LogDb::open(&cfg.data_dir.join("raft")).context("opening the Raft log store")?;
    let net = LocalRouter::new().node(NODE_ID);

    let mut registry = Registry::default();
    let metrics = IngesterMetrics::new(&mut registry);
    let bucket = Bucket::open(&cfg.storage.bucket, Some(&mut registry))
        .with_context(|| format!("opening the bucket {}", cfg.storage.bucket.url))?;
    let store = Arc::clone(bucket.store());
    let catalog = Arc::new(Catalog::new(Arc::clone(&store)));
    let blocks = catalog.refresh().await.context("listing the blocks in the bucket")?;
    info!(bucket = %cfg.storage.bucket.url, blocks, "bucket opened");
    let mut states = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for shard in 0..cfg.ingester.shards {
        let state = Arc::new(ShardState::new(cfg.ingester.head.clone()));
        let applier: Arc<dyn strata_raft::Applier> = Arc::clone(&state) as _;
        let group =
            Group::start(Arc::clone(&db), shard, NODE_ID, applier, Arc::clone(&net), &cfg.raft)
                .await
                .with_context(|| format!("starting shard {shard}"))?;
        group.initialize_single().await?;
        states.push(state);
        groups.push(group);
    }
    for (i, g) in groups.iter().enumerate() {
        g.wait_for_leader(Duration::from_secs(30))
            .await
            .with_context(|| format!("shard {i} elected no leader"))?;
    }
    info!(shards = cfg.ingester.shards, dir = %cfg.data_dir.display(), "shards ready");
    let ingester = Arc::new(Ingester::new(cfg.ingester.clone(), states, groups, metrics));
    ingester
        .pin_ooo_window(cfg.ingester.head.ooo_window_ms)
        .await
        .context("logging the out-of-order window")?;

    let (background_stop, stop_rx) = watch::channel(false);
    let mut background = Vec::new();
    let flush_cfg = FlushConfig {
        block: cfg.storage.block.clone(),
        incarnation,
        ..FlushConfig::new(cfg.storage.block_range_ms)
    };
    let flusher = Flusher::new(
        Arc::clone(&ingester),
        Arc::clone(&store),
        Arc::clone(&catalog),
        flush_cfg,
        FlushMetrics::new(&mut registry),
    );
    background.push(flusher.spawn(stop_rx.clone()));
    background.push(spawn_sync(Arc::clone(&catalog), cfg.storage.sync_interval, stop_rx.clone()));
    if cfg.storage.compactor_enabled {
        let c = Compactor::new(
            Arc::clone(&store),
            cfg.storage.compactor.clone(),
            cfg.storage.block.clone(),
        );
        background.push(spawn_compactor(
            c,
            CompactorMetrics::new(&mut registry),
            Some(Arc::clone(&catalog)),
            cfg.storage.compactor_interval,
            stop_rx.clone(),
        ));
    }
    let merged = Arc::new(strata_querier::Merged::new(
        Arc::clone(&ingester) as _,
        Arc::clone(&ingester) as _,
        Arc::clone(&catalog) as _,
        Arc::clone(&catalog) as _,
    ));

    let registry = Arc::new(Mutex::new(registry));
    let render = {
        let (ingester, registry) = (Arc::clone(&ingester), Arc::clone(&registry));
        move || {
            ingester.refresh_gauges();
            let mut out = String::new();
            if let Ok(r) = registry.lock() {
                let _ = prometheus_client::encoding::text::encode(&mut out, &r);
            }
            out
        }
    };
    let ready = {
        let ingester = Arc::clone(&ingester);
        move || ingester.groups().iter().all(|g| g.metrics().leader.is_some())
    };
    let scrape = (!cfg.scrape.scrape_configs.is_empty()).then(|| {
        info!(pools = cfg.scrape.scrape_configs.len(), "scraping");
        Arc::new(TargetManager::start(cfg.scrape.clone(), Arc::clone(&ingester) as _))
    });
    let targets = {
        let scrape = scrape.clone();
        move || scrape.as_ref().map(|m| api_targets(m.snapshot())).unwrap_or_default()
    };
    let state = ApiState {
        push: Arc::clone(&ingester) as _,
        reader: Arc::clone(&merged) as _,
        queryable: Arc::clone(&merged) as _,
        engine: strata_promql::Engine::new(cfg.querier.engine.clone()),
        query_timeout: cfg.querier.timeout,
        metrics: Arc::new(render),
        ready: Arc::new(ready),
        targets: Arc::new(targets),
        build: BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: option_env!("STRATA_REVISION").unwrap_or("").to_string(),
        },
        max_request_bytes: cfg.ingester.limits.max_request_bytes,
    };
    let listener = tokio::net::TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("binding HTTP on {}", cfg.http_addr))?;
    let http_addr = listener.local_addr()?;
    info!(%http_addr, "http listening");
    let grpc_listener = tokio::net::TcpListener::bind(cfg.grpc_addr)
        .await
        .with_context(|| format!("binding gRPC on {}", cfg.grpc_addr))?;
    let grpc_addr = grpc_listener.local_addr()?;
    info!(%grpc_addr, "grpc listening");
    let (tx, rx) = oneshot::channel::<()>();
    let (grpc_tx, grpc_rx) = oneshot::channel::<()>();
    let grpc = tonic::transport::Server::builder()
        .add_service(crate::grpc::RaftService::server(Arc::clone(&net)))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc_listener),
            async move {
                let _ = grpc_rx.await;
            },
        );
    let grpc = tokio::spawn(grpc);
    let app = strata_api::router(state);
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = rx => {}
                    _ = shutdown_signal() => {}
                }
            })
            .await;
        let _ = grpc_tx.send(());
        let _ = grpc.await;
        served
    });
    Ok(Running {
        http_addr,
        grpc_addr,
        ingester,
        catalog,
        scrape,
        background_stop,
        background,
        shutdown: Some(tx),
        server,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs `task` every `every` until `stop` turns true.
fn spawn_every<F, Fut>(every: Duration, mut stop: watch::Receiver<bool>, task: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            // A panic in one round (a bug meeting odd data) must not end the loop for good.
            let round = std::panic::AssertUnwindSafe(task());
            if let Err(panic) = futures::FutureExt::catch_unwind(round).await {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown");
                tracing::error!(panic = why, "a periodic task panicked; it runs again next time");
            }
        }
    })
}

async fn refresh(catalog: &Catalog) {
    if let Err(e) = catalog.refresh().await {
        tracing::warn!(error = %e, "listing the bucket failed");
    }
}

/// Re-lists the bucket now and then, so blocks written or removed elsewhere (another node, the
/// compactor) are seen.
fn spawn_sync(
    catalog: Arc<Catalog>,
    every: Duration,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    spawn_every(every, stop, move || {
        let catalog = Arc::clone(&catalog);
        async move { refresh(&catalog).await }
    })
}

/// What the compactor did, as `strata_compactor_*` metrics.
#[derive(Clone, Default)]
pub(crate) struct CompactorMetrics {
    runs: Counter,
    failed_runs: Counter,
    merged: Counter,
    marked: Counter,
    deleted: Counter,
    failures: Counter,
    last_success: Gauge,
}

impl CompactorMetrics {
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let m = CompactorMetrics::default();
        let r = registry.sub_registry_with_prefix("strata_compactor");
        r.register("runs", "Compactor runs", m.runs.clone());
        r.register(
            "failed_runs",
            "Compactor runs that failed as a whole (listing the bucket)",
            m.failed_runs.clone(),
        );
        r.register("blocks_merged", "Merged blocks written", m.merged.clone());
        r.register(
            "blocks_marked",
            "Blocks marked for deletion (replaced or past retention)",
            m.marked.clone(),
        );
        r.register("blocks_deleted", "Marked blocks deleted after the delay", m.deleted.clone());
        r.register(
            "block_failures",
            "Blocks or windows skipped for an error (an unreadable meta.json, a failed merge)",
            m.failures.clone(),
        );
        r.register(
            "last_successful_run_timestamp_seconds",
            "When the last run finished without failing as a whole",
            m.last_success.clone(),
        );
        m
    }

    fn record(&self, result: &strata_block::Result<strata_block::compact::RunReport>) {
        self.runs.inc();
        match result {
            Ok(r) => {
                self.merged.inc_by(r.merged as u64);
                self.marked.inc_by(r.marked as u64);
                self.deleted.inc_by(r.deleted as u64);
                self.failures.inc_by(r.failures as u64);
                self.last_success.set(now_ms() / 1000);
            }
            Err(_) => {
                self.failed_runs.inc();
            }
        }
    }
}

/// One compactor run, logged and counted; whether it changed the bucket.
async fn compact_once(c: &Compactor, metrics: &CompactorMetrics) -> bool {
    let result = c.run_once(now_ms()).await;
    metrics.record(&result);
    match result {
        Ok(r) => {
            if r.merged + r.marked + r.deleted + r.failures > 0 {
                info!(
                    merged = r.merged,
                    marked = r.marked,
                    deleted = r.deleted,
                    failures = r.failures,
                    "compaction run"
                );
            }
            r.merged + r.marked + r.deleted > 0
        }
        Err(e) => {
            tracing::warn!(error = %e, "compaction run failed");
            false
        }
    }
}

/// Runs the compactor every `every`; with a catalog (the queriers' view, in `all`), re-lists
/// the bucket after a run that changed it.
pub(crate) fn spawn_compactor(
    c: Compactor,
    metrics: CompactorMetrics,
    catalog: Option<Arc<Catalog>>,
    every: Duration,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let c = Arc::new(c);
    spawn_every(every, stop, move || {
        let (c, catalog, metrics) = (Arc::clone(&c), catalog.clone(), metrics.clone());
        async move {
            if compact_once(&c, &metrics).await {
                if let Some(catalog) = &catalog {
                    refresh(catalog).await;
                }
            }
        }
    })
}

/// The manager's snapshot in the API's terms.
fn api_targets(s: Snapshot) -> TargetsSnapshot {
    let active = s
        .active
        .into_iter()
        .map(|a| {
            let url = a.target.url();
            ActiveTarget {
                discovered_labels: a.target.discovered_labels.clone(),
                labels: a.target.public_labels(),
                scrape_pool: a.pool,
                global_url: url.clone(),
                scrape_url: url,
                health: a.status.health.as_str(),
                last_error: a.status.last_error.unwrap_or_default(),
                last_scrape_ms: a.status.last_scrape_ms,
                last_scrape_duration_s: a.status.last_duration.as_secs_f64(),
                scrape_interval: format_duration(a.target.interval()),
                scrape_timeout: format_duration(a.target.timeout()),
                metadata: a.status.metadata,
            }
        })
        .collect();
    let dropped = s
        .dropped
        .into_iter()
        .map(|d| DroppedTarget { discovered_labels: d.discovered_labels, scrape_pool: d.pool })
        .collect();
    TargetsSnapshot { active, dropped, dropped_counts: s.dropped_counts }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Builds the configuration from a file (if any) and flags.
pub fn load_config(args: &RunArgs) -> anyhow::Result<Config> {
    let mut raw = match &args.config {
        Some(path) => RawConfig::from_file(path)?,
        None => RawConfig::default(),
    };
    if let Some(d) = &args.data_dir {
        raw.data_dir = d.clone();
    }
    if let Some(a) = &args.http_addr {
        parse_addr("--http-addr", a)?;
        raw.http_addr = a.clone();
    }
    if let Some(a) = &args.grpc_addr {
        parse_addr("--grpc-addr", a)?;
        raw.grpc_addr = a.clone();
    }
    if let Some(b) = &args.bucket {
        raw.bucket.url = b.clone();
    }
    if let Some(r) = &args.block_range {
        raw.blocks.range = crate::config::Millis(
            crate::config::parse_duration(r).map_err(|e| anyhow::anyhow!("--block-range: {e}"))?,
        );
    }
    Ok(raw.validate()?)
}

/// `strata compactor`: only the compactor, against the configured bucket.
pub async fn run_compactor(args: RunArgs) -> anyhow::Result<()> {
    init_logging(&args.log_level);
    let cfg = load_config(&args)?;
    let mut registry = Registry::default();
    let bucket = Bucket::open(&cfg.storage.bucket, Some(&mut registry))
        .with_context(|| format!("opening the bucket {}", cfg.storage.bucket.url))?;
    let store = Arc::clone(bucket.store());
    let c = Compactor::new(
        Arc::clone(&store),
        cfg.storage.compactor.clone(),
        cfg.storage.block.clone(),
    );
    let metrics = CompactorMetrics::new(&mut registry);
    // `/metrics`, `/-/ready` and `/-/healthy`, as every role serves them.
    let listener = tokio::net::TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("binding HTTP on {}", cfg.http_addr))?;
    let registry = Arc::new(registry);
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let registry = Arc::clone(&registry);
                async move {
                    let mut out = String::new();
                    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        out,
                    )
                }
            }),
        )
        .route("/-/ready", axum::routing::get(|| async { "Strata compactor is Ready.\n" }))
        .route("/-/healthy", axum::routing::get(|| async { "Strata compactor is Healthy.\n" }));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.changed().await;
            })
            .await
    });
    info!(bucket = %cfg.storage.bucket.url, http = %cfg.http_addr, "compactor started");
    // The first run happens right away.
    compact_once(&c, &metrics).await;
    let task = spawn_compactor(c, metrics, None, cfg.storage.compactor_interval, stop_rx);
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = task.await;
    let _ = http.await;
    Ok(())
}

fn init_logging(level: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

pub async fn run_all(args: RunArgs) -> anyhow::Result<()> {
    init_logging(&args.log_level);
    let cfg = load_config(&args)?;
    let mut running = start_all(cfg).await?;
    running.wait().await?;
    info!("shutting down");
    running.stop_scraping().await;
    running.stop_background().await;
    for g in running.ingester.groups() {
        g.shutdown().await?;
    }
    Ok(())
}
