//! `POST /api/v1/push`: remote-write 1.0 and 2.0.
use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use strata_model::{Error, PushOutcome, PushRequest, TenantId, WireVersion, DEFAULT_TENANT};

use crate::ApiState;

const V2_PROTO: &str = "io.prometheus.write.v2.Request";
const V1_PROTO: &str = "prometheus.WriteRequest";

/// Which protocol a Content-Type names; `None` for an unsupported type.
fn wire_version(headers: &HeaderMap) -> Result<WireVersion, Error> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else { return Ok(WireVersion::V1) };
    let ct = ct.to_str().map_err(|_| Error::Unsupported("unreadable Content-Type".into()))?;
    let mut parts = ct.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(Error::Unsupported(format!(
            "unsupported Content-Type {ct:?}; expected application/x-protobuf"
        )));
    }
    for p in parts {
        if let Some(proto) = p.strip_prefix("proto=") {
            return match proto.trim_matches('"') {
                V2_PROTO => Ok(WireVersion::V2),
                V1_PROTO => Ok(WireVersion::V1),
                other => {
                    Err(Error::Unsupported(format!("unsupported remote-write message {other:?}")))
                }
            };
        }
    }
    Ok(WireVersion::V1)
}

/// The tenant from `X-Scope-OrgID`, checked the way Mimir checks it.
pub(crate) fn tenant(headers: &HeaderMap) -> Result<TenantId, Error> {
    let Some(v) = headers.get("x-scope-orgid") else {
        return Ok(TenantId(DEFAULT_TENANT.into()));
    };
    let s = v.to_str().map_err(|_| Error::Invalid("X-Scope-OrgID is not valid ASCII".into()))?;
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c);
    if s.is_empty() || s.len() > 150 || s == "." || s == ".." || !s.chars().all(ok_char) {
        return Err(Error::Invalid(format!("invalid tenant id {s:?} in X-Scope-OrgID")));
    }
    Ok(TenantId(s.to_string()))
}

fn written_headers(resp: &mut Response, o: &PushOutcome) {
    let h = resp.headers_mut();
    for (name, n) in [
        ("x-prometheus-remote-write-samples-written", o.samples_written),
        ("x-prometheus-remote-write-histograms-written", o.histograms_written),
        ("x-prometheus-remote-write-exemplars-written", o.exemplars_written),
    ] {
        h.insert(name, HeaderValue::from(n));
    }
}

fn plain(status: StatusCode, msg: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg + "\n").into_response()
}

fn fail(err: &Error, version: Option<WireVersion>, outcome: &PushOutcome) -> Response {
    let status =
        StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = plain(status, err.to_string());
    if version == Some(WireVersion::V2) {
        written_headers(&mut resp, outcome);
    }
    resp
}

pub(crate) async fn push(State(st): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    let none = PushOutcome::default();
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        if !enc.to_str().is_ok_and(|e| e.trim().eq_ignore_ascii_case("snappy")) {
            let e = Error::Unsupported(format!(
                "unsupported Content-Encoding {enc:?}; expected snappy"
            ));
            return fail(&e, None, &none);
        }
    }
    let version = match wire_version(&headers) {
        Ok(v) => v,
        Err(e) => return fail(&e, None, &none),
    };
    let tenant = match tenant(&headers) {
        Ok(t) => t,
        Err(e) => return fail(&e, Some(version), &none),
    };
    let body = match to_bytes(body, st.max_request_bytes).await {
        Ok(b) => b,
        Err(_) => {
            let e = Error::TooLarge(format!(
                "request body exceeds the limit of {} bytes",
                st.max_request_bytes
            ));
            return fail(&e, Some(version), &none);
        }
    };
    match st.push.push(PushRequest { tenant, version, body }).await {
        Ok(outcome) => {
            let mut resp = match &outcome.partial_error {
                None => StatusCode::NO_CONTENT.into_response(),
                Some(msg) => plain(StatusCode::BAD_REQUEST, msg.clone()),
            };
            if version == WireVersion::V2 {
                written_headers(&mut resp, &outcome);
            }
            resp
        }
        Err((e, outcome)) => fail(&e, Some(version), &outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(ct: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        m
    }

    #[test]
    fn content_types() {
        assert_eq!(wire_version(&HeaderMap::new()).unwrap(), WireVersion::V1);
        assert_eq!(wire_version(&h("application/x-protobuf")).unwrap(), WireVersion::V1);
        assert_eq!(
            wire_version(&h("application/x-protobuf;proto=io.prometheus.write.v2.Request"))
                .unwrap(),
            WireVersion::V2
        );
        assert_eq!(
            wire_version(&h("application/x-protobuf; proto=prometheus.WriteRequest")).unwrap(),
            WireVersion::V1
        );
        assert!(wire_version(&h("application/json")).is_err());
        assert!(wire_version(&h("application/x-protobuf;proto=foo.Bar")).is_err());
    }

    #[test]
    fn tenants() {
        let mut m = HeaderMap::new();
        assert_eq!(tenant(&m).unwrap().0, "anonymous");
        m.insert("x-scope-orgid", HeaderValue::from_static("team-a"));
        assert_eq!(tenant(&m).unwrap().0, "team-a");
        m.insert("x-scope-orgid", HeaderValue::from_static("a/b"));
        assert!(tenant(&m).is_err());
        m.insert("x-scope-orgid", HeaderValue::from_static(".."));
        assert!(tenant(&m).is_err());
    }
}
