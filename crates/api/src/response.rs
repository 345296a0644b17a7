//! Prometheus-shaped JSON responses.
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use strata_model::Error;

/// `{"status":"success","data":...}` with optional warnings.
pub(crate) fn success(data: Value, warnings: Vec<String>) -> Response {
    let mut body = json!({"status": "success", "data": data});
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings);
    }
    json_response(StatusCode::OK, &body)
}

/// `{"status":"error","errorType":...,"error":...}` with the status the error maps to.
pub(crate) fn error(err: &Error) -> Response {
    let status =
        StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"status": "error", "errorType": err.error_type(), "error": err.to_string()});
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
