//! The HTTP side of a scrape: the request Prometheus sends and a size-limited body.
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT,
};

use crate::config::{Auth, HttpClientConfig, Secret, TlsVersion};

/// `Strata/<version>`, sent as `User-Agent`.
pub const USER_AGENT_VALUE: &str = concat!("Strata/", env!("CARGO_PKG_VERSION"));

/// A scraped body and its `Content-Type`.
/// The error of a scrape whose body passed `body_size_limit`.
pub(crate) const BODY_LIMIT_EXCEEDED: &str = "body size limit exceeded";

pub(crate) struct Fetched {
    pub body: Vec<u8>,
    pub content_type: String,
}

/// Installs rustls' ring provider as the process default, once. reqwest is built without a
/// provider of its own, so every process must call this before building any reqwest client.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only when another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Builds the client of one target: redirects and `tls_config` (CA, client certificate,
/// `insecure_skip_verify`, TLS versions). Fails when reqwest cannot set up its connector or
/// a certificate or key cannot be read.
pub(crate) fn client(cfg: &HttpClientConfig) -> Result<reqwest::Client, String> {
    install_tls_provider();
    let redirects = if cfg.follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut b = reqwest::Client::builder().redirect(redirects);
    let tls = &cfg.tls;
    if let Some(ca) = &tls.ca {
        let pem = read_secret(ca)?;
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| format!("tls_config: cannot read CA certificates: {e}"))?;
        if certs.is_empty() {
            return Err("tls_config: no CA certificate found in ca / ca_file".into());
        }
        // As Prometheus: a configured CA replaces the system's roots.
        b = b.tls_certs_only(certs);
    }
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        let pem = format!("{}\n{}", read_secret(cert)?, read_secret(key)?);
        let identity = reqwest::Identity::from_pem(pem.as_bytes())
            .map_err(|e| format!("tls_config: cannot read client certificate and key: {e}"))?;
        b = b.identity(identity);
    }
    if tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    // rustls speaks TLS 1.2 and 1.3; older minimums mean 1.2.
    let version = |v: TlsVersion| match v {
        TlsVersion::Tls13 => reqwest::tls::Version::TLS_1_3,
        _ => reqwest::tls::Version::TLS_1_2,
    };
    if let Some(v) = tls.min_version {
        b = b.tls_version_min(version(v));
    }
    if let Some(v) = tls.max_version {
        if v < TlsVersion::Tls12 {
            return Err("tls_config: max_version below TLS12 is not supported (rustls)".into());
        }
        b = b.tls_version_max(version(v));
    }
    b.build().map_err(|e| format!("cannot build HTTP client: {e}"))
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
    compression: bool,
    accept: &str,
) -> Result<Fetched, String> {
    let mut headers = HeaderMap::new();
    let accept = HeaderValue::from_str(accept).map_err(|e| format!("Accept header: {e}"))?;
    headers.insert(ACCEPT, accept);
    // `enable_compression` (default true) asks for gzip, as Prometheus does.
    let encoding = if compression { "gzip" } else { "identity" };
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(encoding));
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
    let gzipped = resp
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        // A compressed body is never larger than what it expands to, so the limit holds
        // for it too; the expanded size is checked below.
        if body_limit > 0 && (body.len() + chunk.len()) as u64 > body_limit {
            return Err(BODY_LIMIT_EXCEEDED.into());
        }
        body.extend_from_slice(&chunk);
    }
    if gzipped {
        body = gunzip(&body, body_limit)?;
    }
    Ok(Fetched { body, content_type })
}

/// Expands a gzip body, refusing to expand past `limit` bytes (0: no limit).
pub(crate) fn gunzip(body: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::with_capacity(body.len().saturating_mul(4));
    let decoder = flate2::read::MultiGzDecoder::new(body);
    let read = if limit > 0 {
        // One byte past the limit tells "exactly at the limit" from "over it".
        decoder.take(limit + 1).read_to_end(&mut out)
    } else {
        let mut d = decoder;
        d.read_to_end(&mut out)
    };
    read.map_err(|e| format!("decompressing gzip body: {e}"))?;
    if limit > 0 && out.len() as u64 > limit {
        return Err(BODY_LIMIT_EXCEEDED.into());
    }
    Ok(out)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::gunzip;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_expands_within_the_limit() {
        let body = b"up 1\n".repeat(1000);
        let z = gzip(&body);
        assert_eq!(gunzip(&z, 0).unwrap(), body);
        assert_eq!(gunzip(&z, body.len() as u64).unwrap(), body);
        assert_eq!(gunzip(&z, body.len() as u64 - 1).unwrap_err(), "body size limit exceeded");
    }

    #[test]
    fn gunzip_rejects_corrupt_input() {
        let mut z = gzip(b"up 1\n");
        z.truncate(z.len() - 6);
        assert!(gunzip(&z, 0).unwrap_err().starts_with("decompressing gzip body"));
        assert!(gunzip(b"not gzip", 0).is_err());
    }
}
