//! The HTTP side of a scrape: the request Prometheus sends and a size-limited body.
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, USER_AGENT};

use crate::config::{Auth, HttpClientConfig, Secret};
use crate::expfmt::ACCEPT_HEADER;

/// `Strata/<version>`, sent as `User-Agent`.
pub const USER_AGENT_VALUE: &str = concat!("Strata/", env!("CARGO_PKG_VERSION"));

/// A scraped body and its `Content-Type`.
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    pub content_type: String,
}

/// Builds the client of one target. Fails only when reqwest cannot set up its connector.
pub(crate) fn client(cfg: &HttpClientConfig) -> Result<reqwest::Client, String> {
    let redirects = if cfg.follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .redirect(redirects)
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

fn read_secret(s: &Secret) -> Result<String, String> {
    match s {
        Secret::Inline(v) => Ok(v.clone()),
        Secret::File(p) => std::fs::read_to_string(p)
            .map(|v| v.trim().to_string())
            .map_err(|e| format!("unable to read {}: {e}", p.display())),
    }
}

/// GETs `url` as Prometheus' `targetScraper` does, reading at most `body_limit` bytes
/// (0: no limit). The caller bounds the whole call with the scrape timeout.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    http: &HttpClientConfig,
    url: &str,
    timeout: Duration,
    body_limit: u64,
) -> Result<Fetched, String> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_HEADER));
    // No gzip support (yet): ask for the body as it is.
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    let secs = timeout.as_secs_f64().to_string();
    if let Ok(v) = HeaderValue::from_str(&secs) {
        headers.insert("X-Prometheus-Scrape-Timeout-Seconds", v);
    }
    let mut req = client.get(url).headers(headers).timeout(timeout);
    match &http.auth {
        Some(Auth::Basic { username, password }) => {
            let user = username.as_ref().map(read_secret).transpose()?.unwrap_or_default();
            let pass = password.as_ref().map(read_secret).transpose()?;
            req = req.basic_auth(user, pass);
        }
        Some(Auth::Header { kind, credentials }) => {
            let creds = credentials.as_ref().map(read_secret).transpose()?.unwrap_or_default();
            let mut value = HeaderValue::from_str(&format!("{kind} {creds}"))
                .map_err(|_| "authorization credentials are not a valid header value")?;
            value.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, value);
        }
        None => {}
    }
    let mut resp = req.send().await.map_err(|e| describe(&e))?;
    let status = resp.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!(
            "server returned HTTP status {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        ));
    }
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        if body_limit > 0 && (body.len() + chunk.len()) as u64 > body_limit {
            return Err("body size limit exceeded".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { body, content_type })
}

/// reqwest's error with its causes, which hold the useful part ("connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
