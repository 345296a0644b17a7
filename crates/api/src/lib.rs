//! Strata's HTTP API: remote-write intake and the Prometheus read API, over axum.
//!
//! The API knows nothing of ingesters or queriers; it calls the [`PushSink`] and
//! [`SeriesReader`] traits from `strata-model`, so any role can serve it.
//!
//! Routes: `POST /api/v1/push` (alias `/api/v1/write`), `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/{name}/values`, `/api/v1/metadata`, `/api/v1/status/buildinfo`,
//! `/-/ready`, `/-/healthy`, `/metrics`.

mod params;
mod push;
mod read;
mod response;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use strata_model::{PushSink, SeriesReader};

pub use params::{parse_selector, parse_time};

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
    /// Renders `/metrics` in the Prometheus text format.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// Whether the node is ready to take traffic (`/-/ready`).
    pub ready: Arc<dyn Fn() -> bool + Send + Sync>,
    pub build: BuildInfo,
    /// Largest compressed push body read from the wire; larger gets 413.
    pub max_request_bytes: usize,
}

/// The full HTTP router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/push", post(push::push))
        .route("/api/v1/write", post(push::push))
        .route("/api/v1/series", get(read::series).post(read::series))
        .route("/api/v1/labels", get(read::labels).post(read::labels))
        .route("/api/v1/label/{name}/values", get(read::label_values))
        .route("/api/v1/metadata", get(read::metadata))
        .route("/api/v1/status/buildinfo", get(read::buildinfo))
        .route("/-/ready", get(read::ready))
        .route("/-/healthy", get(read::healthy))
        .route("/metrics", get(read::metrics))
        .with_state(state)
}
