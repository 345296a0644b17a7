//! The Prometheus read API for series, labels and metadata, plus health and metrics.
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use strata_model::{Error, Result};

use crate::params::Params;
use crate::push::tenant;
use crate::response::{error, success};
use crate::ApiState;

const TRUNCATED: &str = "results truncated due to limit";

fn answer(r: Result<(Value, Vec<String>)>) -> Response {
    match r {
        Ok((data, warnings)) => success(data, warnings),
        Err(e) => error(&e),
    }
}

fn truncate<T>(v: &mut Vec<T>, limit: usize, warnings: &mut Vec<String>) {
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        warnings.push(TRUNCATED.to_string());
    }
}

pub(crate) async fn series(State(st): State<ApiState>, headers: HeaderMap, p: Params) -> Response {
    answer(
        async {
            let tenant = tenant(&headers)?;
            let sets = p.match_sets()?;
            if sets.is_empty() {
                return Err(Error::Invalid("no match[] parameter provided".into()));
            }
            let limit = p.limit()?;
            let Some((start, end)) = p.range()? else { return Ok((json!([]), Vec::new())) };
            let mut list = st.reader.series(&tenant, &sets, start, end).await?;
            let mut warnings = Vec::new();
            truncate(&mut list, limit, &mut warnings);
            let data: Vec<Value> = list
                .into_iter()
                .map(|ls| {
                    let m: Map<String, Value> =
                        ls.0.into_iter().map(|l| (l.name, Value::String(l.value))).collect();
                    Value::Object(m)
                })
                .collect();
            Ok((Value::Array(data), warnings))
        }
        .await,
    )
}

pub(crate) async fn labels(State(st): State<ApiState>, headers: HeaderMap, p: Params) -> Response {
    answer(
        async {
            let tenant = tenant(&headers)?;
            let sets = p.match_sets()?;
            let limit = p.limit()?;
            let Some((start, end)) = p.range()? else { return Ok((json!([]), Vec::new())) };
            let mut names = st.reader.label_names(&tenant, &sets, start, end).await?;
            let mut warnings = Vec::new();
            truncate(&mut names, limit, &mut warnings);
            Ok((json!(names), warnings))
        }
        .await,
    )
}

pub(crate) async fn label_values(
    State(st): State<ApiState>,
    name: std::result::Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    answer(
        async {
            // A name that does not decode (`%ff`) is an invalid label name, as in Prometheus.
            let Path(name) =
                name.map_err(|e| Error::Invalid(format!("invalid label name: {}", e.body_text())))?;
            let tenant = tenant(&headers)?;
            let valid =
                name.as_bytes().first().is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
                    && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
            if !valid {
                return Err(Error::Invalid(format!("invalid label name: {name:?}")));
            }
            let sets = p.match_sets()?;
            let limit = p.limit()?;
            let Some((start, end)) = p.range()? else { return Ok((json!([]), Vec::new())) };
            let mut values = st.reader.label_values(&tenant, &name, &sets, start, end).await?;
            let mut warnings = Vec::new();
            truncate(&mut values, limit, &mut warnings);
            Ok((json!(values), warnings))
        }
        .await,
    )
}

fn count_param(p: &Params, key: &str) -> Result<Option<usize>> {
    match p.get(key) {
        None | Some("") => Ok(None),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n < 0 => Ok(None),
            Ok(n) => Ok(Some(n as usize)),
            // Prometheus's words.
            Err(_) => Err(Error::Invalid(format!("{key} must be a number"))),
        },
    }
}

pub(crate) async fn metadata(
    State(st): State<ApiState>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    answer(
        async {
            let tenant = tenant(&headers)?;
            let limit = count_param(&p, "limit")?;
            // As in Prometheus, a limit per metric of 0 is no limit (a `limit` of 0 is
            // an empty answer).
            let per_metric = count_param(&p, "limit_per_metric")?.filter(|&n| n > 0);
            let metric = p.get("metric").filter(|m| !m.is_empty());
            let all = st.reader.metadata(&tenant, metric).await?;
            let mut out = Map::new();
            for (name, mut list) in all {
                if limit.is_some_and(|l| out.len() >= l) {
                    break;
                }
                if let Some(n) = per_metric {
                    list.truncate(n);
                }
                out.insert(name, json!(list));
            }
            Ok((Value::Object(out), Vec::new()))
        }
        .await,
    )
}

pub(crate) async fn buildinfo(State(st): State<ApiState>) -> Response {
    success(
        json!({
            "version": st.build.version,
            "revision": st.build.revision,
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }),
        Vec::new(),
    )
}

pub(crate) async fn ready(State(st): State<ApiState>) -> Response {
    if (st.ready)() {
        (StatusCode::OK, "Strata is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Strata is not ready.\n").into_response()
    }
}

pub(crate) async fn healthy() -> Response {
    (StatusCode::OK, "Strata is Healthy.\n").into_response()
}

pub(crate) async fn metrics(State(st): State<ApiState>) -> Response {
    let text = (st.metrics)();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        text,
    )
        .into_response()
}
