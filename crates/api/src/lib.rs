//! Strata's HTTP API: remote-write intake and the Prometheus read API, over axum.
//!
//! The API knows nothing of ingesters or queriers; it calls the [`PushSink`],
//! [`SeriesReader`] and [`Queryable`] traits from `strata-model`, so any role can serve it.
//!
//! Routes: `POST /api/v1/push` (alias `/api/v1/write`), `/api/v1/query`,
//! `/api/v1/query_range`, `/api/v1/format_query`, `/api/v1/parse_query`,
//! `/api/v1/query_exemplars`, `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/{name}/values`, `/api/v1/metadata`, `/api/v1/targets`,
//! `/api/v1/targets/metadata` (empty for now), `/api/v1/status/buildinfo`,
//! `/-/ready`, `/-/healthy`, `/metrics`. Query endpoints take GET or a POST form, as in
//! Prometheus.

mod params;
mod promjson;
mod push;
mod query;
mod read;
mod response;
mod targets;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use strata_model::{PushSink, Queryable, SeriesReader};
use strata_promql::Engine;

pub use params::{parse_duration, parse_selector, parse_time};
pub use targets::{ActiveTarget, DroppedTarget, TargetsSnapshot};

/// Version facts shown by `/api/v1/status/buildinfo`.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
}

/// What the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub push: Arc<dyn PushSink>,
    pub reader: Arc<dyn SeriesReader>,
    /// What PromQL reads.
    pub queryable: Arc<dyn Queryable>,
    pub engine: Engine,
    /// The longest a query may run; a `timeout` parameter can only shorten it.
    pub query_timeout: Duration,
    /// Renders `/metrics` in the Prometheus text format.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// Whether the node is ready to take traffic (`/-/ready`).
    pub ready: Arc<dyn Fn() -> bool + Send + Sync>,
    /// The scrape targets (`/api/v1/targets`); an empty snapshot where nothing scrapes.
    pub targets: Arc<dyn Fn() -> TargetsSnapshot + Send + Sync>,
    pub build: BuildInfo,
    /// Largest compressed push body read from the wire; larger gets 413.
    pub max_request_bytes: usize,
}

/// The full HTTP router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/push", post(push::push))
        .route("/api/v1/write", post(push::push))
        .route("/api/v1/query", get(query::query).post(query::query))
        .route("/api/v1/query_range", get(query::query_range).post(query::query_range))
        .route("/api/v1/format_query", get(query::format_query).post(query::format_query))
        .route("/api/v1/parse_query", get(query::parse_query).post(query::parse_query))
        .route("/api/v1/query_exemplars", get(query::query_exemplars).post(query::query_exemplars))
        .route("/api/v1/series", get(read::series).post(read::series))
        .route("/api/v1/labels", get(read::labels).post(read::labels))
        .route("/api/v1/label/{name}/values", get(read::label_values))
        .route("/api/v1/metadata", get(read::metadata))
        .route("/api/v1/targets", get(targets::targets))
        .route("/api/v1/targets/metadata", get(targets::targets_metadata))
        .route("/api/v1/status/buildinfo", get(read::buildinfo))
        .route("/-/ready", get(read::ready))
        .route("/-/healthy", get(read::healthy))
        .route("/metrics", get(read::metrics))
        .with_state(state)
}
