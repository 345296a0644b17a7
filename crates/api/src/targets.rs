//! `GET /api/v1/targets`: the scrape targets, as Prometheus lists them. The API does not
//! know the scrape manager; it reads a [`TargetsSnapshot`] through `ApiState::targets`.
//! `/api/v1/targets/metadata` lists the metric metadata each active target's last scrape gave.
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};
use strata_model::{Labels, Matcher, MetricMetadata, DEFAULT_TENANT};

use crate::params::Params;
use crate::response::{success, ApiError};
use crate::ApiState;

/// The targets of every scrape pool at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetsSnapshot {
    pub active: Vec<ActiveTarget>,
    /// The dropped targets kept (at most `keep_dropped_targets` per pool when that is set).
    pub dropped: Vec<DroppedTarget>,
    /// How many targets each pool dropped, kept or not.
    pub dropped_counts: BTreeMap<String, usize>,
}

/// A target being scraped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActiveTarget {
    pub discovered_labels: Labels,
    /// The labels its series get.
    pub labels: Labels,
    pub scrape_pool: String,
    pub scrape_url: String,
    pub global_url: String,
    /// `"up"`, `"down"` or `"unknown"`.
    pub health: &'static str,
    /// Empty when the last scrape succeeded.
    pub last_error: String,
    /// Milliseconds since the epoch; `None` before the first scrape.
    pub last_scrape_ms: Option<i64>,
    pub last_scrape_duration_s: f64,
    /// As Prometheus prints durations: `15s`, `1m`.
    pub scrape_interval: String,
    pub scrape_timeout: String,
    /// Metric family name and metadata, from the last successful scrape.
    pub metadata: Arc<Vec<(String, MetricMetadata)>>,
}

/// A target that relabeling dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DroppedTarget {
    pub discovered_labels: Labels,
    pub scrape_pool: String,
}

fn labels_json(l: &Labels) -> Value {
    Value::Object(l.iter().map(|l| (l.name.clone(), json!(l.value))).collect::<Map<_, _>>())
}

/// Whether the request's tenant is the one scraped data is written as: targets are shown
/// to it only (their URLs, labels and errors belong with that data). Another tenant sees no
/// targets; a malformed tenant id is an error.
fn scrape_tenant(headers: &HeaderMap) -> Result<bool, strata_model::Error> {
    crate::push::tenant(headers).map(|t| t.as_str() == DEFAULT_TENANT)
}

pub(crate) async fn targets(State(st): State<ApiState>, headers: HeaderMap, p: Params) -> Response {
    let mine = match scrape_tenant(&headers) {
        Ok(m) => m,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (show_active, show_dropped) = match p.get("state").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("any") => (true, true),
        Some("active") => (true, false),
        Some("dropped") => (false, true),
        Some(other) => {
            return ApiError::bad_data(format!("invalid state {other:?}")).into_response();
        }
    };
    let pools: Vec<&str> = p.all("scrapePool").into_iter().filter(|s| !s.is_empty()).collect();
    let in_pool = |pool: &str| pools.is_empty() || pools.contains(&pool);
    let snap = if mine { (st.targets)() } else { TargetsSnapshot::default() };
    let active: Vec<Value> = if show_active {
        snap.active.iter().filter(|t| in_pool(&t.scrape_pool)).map(active_json).collect()
    } else {
        Vec::new()
    };
    let dropped: Vec<Value> = if show_dropped {
        snap.dropped
            .iter()
            .filter(|t| in_pool(&t.scrape_pool))
            .map(|t| json!({"discoveredLabels": labels_json(&t.discovered_labels)}))
            .collect()
    } else {
        Vec::new()
    };
    let counts = if show_dropped { json!(snap.dropped_counts) } else { Value::Null };
    success(
        json!({"activeTargets": active, "droppedTargets": dropped, "droppedTargetCounts": counts}),
        Vec::new(),
    )
}

/// `/api/v1/targets/metadata`, as Prometheus answers it: for each active target whose labels
/// match `match_target` (a series selector), the metadata of every family it exposes, or of
/// `metric` only (then without the `metric` key); at most `limit` entries.
pub(crate) async fn targets_metadata(
    State(st): State<ApiState>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    let mine = match scrape_tenant(&headers) {
        Ok(m) => m,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let limit = match p.get("limit").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => usize::try_from(n).ok(),
            Err(_) => return ApiError::bad_data("limit must be a number").into_response(),
        },
    };
    let matchers: Vec<Vec<Matcher>> = match p.get("match_target").filter(|s| !s.is_empty()) {
        None => Vec::new(),
        Some(s) => match crate::params::parse_selector(s) {
            Ok(sets) => sets,
            Err(e) => return ApiError::bad_data(e).into_response(),
        },
    };
    let metric = p.get("metric").unwrap_or_default();
    let snap = if mine { (st.targets)() } else { TargetsSnapshot::default() };
    let mut out = Vec::new();
    for t in &snap.active {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let matches = |set: &Vec<Matcher>| {
            set.iter().all(|m| m.matches(t.labels.get(&m.name).unwrap_or_default()))
        };
        if !matchers.is_empty() && !matchers.iter().any(matches) {
            continue;
        }
        let target = labels_json(&t.labels);
        for (name, md) in t.metadata.iter() {
            if metric.is_empty() {
                out.push(json!({"target": target, "metric": name, "type": md.kind, "help": md.help, "unit": md.unit}));
            } else if name == metric {
                out.push(
                    json!({"target": target, "type": md.kind, "help": md.help, "unit": md.unit}),
                );
                break;
            }
        }
    }
    success(Value::Array(out), Vec::new())
}

fn active_json(t: &ActiveTarget) -> Value {
    let last =
        t.last_scrape_ms.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), strata_model::rfc3339);
    let mut m = Map::new();
    m.insert("discoveredLabels".into(), labels_json(&t.discovered_labels));
    m.insert("labels".into(), labels_json(&t.labels));
    m.insert("scrapePool".into(), json!(t.scrape_pool));
    m.insert("scrapeUrl".into(), json!(t.scrape_url));
    m.insert("globalUrl".into(), json!(t.global_url));
    m.insert("lastError".into(), json!(t.last_error));
    m.insert("lastScrape".into(), json!(last));
    m.insert("lastScrapeDuration".into(), json!(t.last_scrape_duration_s));
    m.insert("health".into(), json!(t.health));
    m.insert("scrapeInterval".into(), json!(t.scrape_interval));
    m.insert("scrapeTimeout".into(), json!(t.scrape_timeout));
    Value::Object(m)
}
