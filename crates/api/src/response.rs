//! Prometheus-shaped JSON responses.
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use strata_model::Error;

/// `{"status":"success","data":...}` with optional warnings, keys in Prometheus's order.
pub(crate) fn success(data: Value, warnings: Vec<String>) -> Response {
    let mut body = String::from("{\"status\":\"success\",\"data\":");
    body.push_str(&data.to_string());
    if !warnings.is_empty() {
        body.push_str(",\"warnings\":");
        body.push_str(&json!(warnings).to_string());
    }
    body.push('}');
    json_text(body)
}

/// `{"status":"error","errorType":...,"error":...}` with the status the error maps to.
pub(crate) fn error(err: &Error) -> Response {
    ApiError::from(err.clone()).into_response()
}

/// A body already written as JSON text, status 200.
pub(crate) fn json_text(body: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A failed API call as Prometheus reports it: `errorType`, message and HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub error_type: &'static str,
    pub message: String,
}

impl ApiError {
    /// 400 `bad_data`.
    pub(crate) fn bad_data(message: impl Into<String>) -> Self {
        ApiError { status: 400, error_type: "bad_data", message: message.into() }
    }

    /// 500 `internal`.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ApiError { status: 500, error_type: "internal", message: message.into() }
    }

    pub(crate) fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = format!(
            "{{\"status\":\"error\",\"errorType\":{},\"error\":{}}}",
            json!(self.error_type),
            json!(self.message)
        );
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError { status: e.http_status(), error_type: e.error_type(), message: e.to_string() }
    }
}

impl From<strata_promql::QueryError> for ApiError {
    fn from(e: strata_promql::QueryError) -> Self {
        ApiError { status: e.http_status(), error_type: e.error_type(), message: e.to_string() }
    }
}
