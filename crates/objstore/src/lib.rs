//! The object store Strata keeps its blocks in: one [`Bucket`] opened from a URL
//! (`file:///path`, `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`,
//! `memory://`), with request timeouts and retries (the cloud clients' own, configured here), a
//! metrics layer counting operations, failures and bytes, and typed paths for what Strata stores.
//!
//! ```
//! # async fn demo() -> Result<(), strata_objstore::Error> {
//! use strata_objstore::object_store::{ObjectStoreExt, PutPayload};
//! use strata_objstore::{Bucket, BucketConfig};
//! let bucket = Bucket::open(&BucketConfig::from_url("memory://"), None)?;
//! let path = strata_objstore::paths::block_file("tenant-a", "01J0000000000000000000000A", "meta.json");
//! bucket.store().put(&path, PutPayload::from_static(b"{}")).await?;
//! assert_eq!(bucket.store().get(&path).await?.bytes().await?.as_ref(), b"{}");
//! # Ok(()) }
//! ```

mod metrics;
pub mod paths;

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

pub use crate::metrics::StoreMetrics;
pub use object_store;

/// A problem opening or using the bucket.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bucket URL {url:?}: {message}")]
    Url { url: String, message: String },
    /// object_store's own text already says which store and operation failed.
    #[error(transparent)]
    Store(#[from] object_store::Error),
    #[error("{path}: not found")]
    NotFound { path: String },
}

impl Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. } | Error::Store(object_store::Error::NotFound { .. }))
    }
}

/// S3 settings beyond the URL; each falls back to the usual `AWS_*` environment variables.
/// Also the `bucket.s3` section of the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Options {
    /// `http://127.0.0.1:9000` for a local S3-compatible server; empty for AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Virtual-hosted style (`bucket.host/key`) instead of path style (`host/bucket/key`).
    /// Unset: `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, else path style (what S3-compatible
    /// servers expect).
    pub virtual_hosted_style: Option<bool>,
    /// Allow plain-HTTP endpoints. Unset: `AWS_ALLOW_HTTP`, else allowed exactly when the
    /// endpoint (from here or `AWS_ENDPOINT`) is an `http://` URL.
    pub allow_http: Option<bool>,
}

impl S3Options {
    /// Whether plain HTTP is allowed, given the environment variables `env` reads.
    fn allow_http_with(&self, env: impl Fn(&str) -> Option<String>) -> bool {
        if let Some(v) = self.allow_http {
            return v;
        }
        if let Some(v) = env("AWS_ALLOW_HTTP") {
            return matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on");
        }
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| env("AWS_ENDPOINT"));
        endpoint.is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("http://"))
    }
}

/// Where the blocks live and how requests behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketConfig {
    pub url: String,
    pub s3: S3Options,
    /// Timeout of one request to a cloud store.
    pub request_timeout: Duration,
    /// Retries of a failed cloud request (with exponential backoff) before it fails.
    pub max_retries: usize,
}

impl BucketConfig {
    pub fn from_url(url: &str) -> Self {
        BucketConfig {
            url: url.to_string(),
            s3: S3Options::default(),
            request_timeout: Duration::from_secs(30),
            max_retries: 5,
        }
    }
}

/// An open bucket: the `Arc<dyn ObjectStore>` everything reads and writes through.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl Bucket {
    /// Opens the bucket `cfg.url` names. A `file://` folder is created if missing. With a
    /// registry, operation metrics are registered under `strata_objstore_*`.
    pub fn open(
        cfg: &BucketConfig,
        registry: Option<&mut prometheus_client::registry::Registry>,
    ) -> Result<Bucket, Error> {
        let store = open_store(cfg)?;
        let store: Arc<dyn ObjectStore> = match registry {
            Some(r) => Arc::new(metrics::MetricsStore::new(store, StoreMetrics::new(r))),
            None => store,
        };
        Ok(Bucket { store, url: cfg.url.clone() })
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Cloud clients need a TLS provider; the process may already have installed one.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A bucket URL taken apart: `scheme://host/prefix`.
struct BucketUrl<'a> {
    scheme: &'a str,
    host: &'a str,
    prefix: &'a str,
}

/// Parses a bucket URL and checks what can be checked without touching the store: a known
/// scheme, an absolute path for `file://`, a bucket name for the clouds.
fn parse_url(url: &str) -> Result<BucketUrl<'_>, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        "not a URL (e.g. file:///var/lib/strata/bucket or s3://bucket/prefix)".to_string()
    })?;
    let (host, prefix) = match rest.split_once('/') {
        Some((h, p)) => (h, p.trim_matches('/')),
        None => (rest, ""),
    };
    match scheme {
        "file" if !host.is_empty() && host != "localhost" => {
            Err("file URLs take an absolute path: file:///path".into())
        }
        "file" if prefix.is_empty() => Err("file URLs need a folder: file:///path".into()),
        "file" | "memory" => Ok(BucketUrl { scheme, host, prefix }),
        "s3" | "s3a" | "gs" | "gcs" | "az" | "azure" | "abfs" if host.is_empty() => {
            Err("the URL names no bucket".into())
        }
        "s3" | "s3a" | "gs" | "gcs" | "az" | "azure" | "abfs" => {
            Ok(BucketUrl { scheme, host, prefix })
        }
        other => Err(format!("unknown scheme {other:?} (use file, s3, gs, az or memory)")),
    }
}

/// The folder a valid `file://` bucket URL names (`file:///a/b` and `file://localhost/a/b` are
/// `/a/b`); `None` for any other URL.
pub fn file_dir(url: &str) -> Option<String> {
    parse_url(url).ok().filter(|u| u.scheme == "file").map(|u| format!("/{}", u.prefix))
}

impl BucketConfig {
    /// Checks the URL without opening anything (for `strata check config`; the config
    /// checks the other settings).
    pub fn check(&self) -> Result<(), Error> {
        parse_url(&self.url).map_err(|message| Error::Url { url: self.url.clone(), message })?;
        Ok(())
    }
}

fn open_store(cfg: &BucketConfig) -> Result<Arc<dyn ObjectStore>, Error> {
    let bad = |message: String| Error::Url { url: cfg.url.clone(), message };
    let BucketUrl { scheme, host, prefix } = parse_url(&cfg.url).map_err(bad)?;
    let retry = RetryConfig { max_retries: cfg.max_retries, ..RetryConfig::default() };
    let client = ClientOptions::new()
        .with_timeout(cfg.request_timeout)
        .with_connect_timeout(Duration::from_secs(5).min(cfg.request_timeout));
    let store: Arc<dyn ObjectStore> = match scheme {
        "file" => {
            let dir = format!("/{prefix}");
            std::fs::create_dir_all(&dir).map_err(|e| bad(format!("creating {dir}: {e}")))?;
            // Absolute paths only: `new_with_prefix` canonicalizes.
            let fs = LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| bad(format!("opening {dir}: {e}")))?;
            return Ok(Arc::new(fs.with_automatic_cleanup(true)));
        }
        "memory" => return Ok(Arc::new(InMemory::new())),
        "s3" | "s3a" => {
            install_tls_provider();
            let s3 = &cfg.s3;
            // `with_client_options` replaces what `from_env` read into the client options
            // (`AWS_ALLOW_HTTP` among them), so that one is decided here.
            let allow_http = s3.allow_http_with(|k| std::env::var(k).ok());
            if allow_http {
                tracing::warn!(bucket = %cfg.url, "S3 over plain HTTP: requests and credentials are not encrypted");
            }
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(host)
                .with_retry(retry)
                .with_client_options(client.with_allow_http(allow_http));
            if let Some(v) = s3.virtual_hosted_style {
                b = b.with_virtual_hosted_style_request(v);
            }
            if let Some(v) = &s3.endpoint {
                b = b.with_endpoint(v);
            }
            if let Some(v) = &s3.region {
                b = b.with_region(v);
            }
            if let Some(v) = &s3.access_key_id {
                b = b.with_access_key_id(v);
            }
            if let Some(v) = &s3.secret_access_key {
                b = b.with_secret_access_key(v);
            }
            if let Some(v) = &s3.session_token {
                b = b.with_token(v);
            }
            Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
        }
        "gs" | "gcs" => {
            install_tls_provider();
            let b = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(host)
                .with_retry(retry)
                .with_client_options(client);
            Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
        }
        "az" | "azure" | "abfs" => {
            install_tls_provider();
            let b = MicrosoftAzureBuilder::from_env()
                .with_container_name(host)
                .with_retry(retry)
                .with_client_options(client);
            Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
        }
        other => return Err(bad(format!("unknown scheme {other:?}"))),
    };
    Ok(if prefix.is_empty() { store } else { Arc::new(PrefixStore::new(store, prefix)) })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    #[test]
    fn plain_http_follows_the_setting_then_the_environment_then_the_endpoint() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let local =
            S3Options { endpoint: Some("http://127.0.0.1:9000".into()), ..Default::default() };
        assert!(local.allow_http_with(env(&[])));
        assert!(!local.allow_http_with(env(&[("AWS_ALLOW_HTTP", "false")])));
        let refused = S3Options { allow_http: Some(false), ..local.clone() };
        assert!(!refused.allow_http_with(env(&[("AWS_ALLOW_HTTP", "true")])));
        let aws = S3Options::default();
        assert!(!aws.allow_http_with(env(&[])));
        assert!(aws.allow_http_with(env(&[("AWS_ALLOW_HTTP", "true")])));
        assert!(aws.allow_http_with(env(&[("AWS_ENDPOINT", "http://minio:9000")])));
        assert!(!aws.allow_http_with(env(&[("AWS_ENDPOINT", "https://s3.example.com")])));
    }

    #[tokio::test]
    async fn file_bucket_round_trips_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/bucket", dir.path().display());
        let mut reg = prometheus_client::registry::Registry::default();
        let b = Bucket::open(&BucketConfig::from_url(&url), Some(&mut reg)).unwrap();
        let (st, p) = (b.store(), paths::block_file("t1", "B1", "meta.json"));
        st.put(&p, PutPayload::from_static(b"hello")).await.unwrap();
        assert_eq!(st.get(&p).await.unwrap().bytes().await.unwrap().as_ref(), b"hello");
        assert!(dir.path().join("bucket/t1/B1/meta.json").exists());
        let dirs = |r: object_store::ListResult| -> Vec<String> {
            r.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect()
        };
        assert_eq!(dirs(st.list_with_delimiter(None).await.unwrap()), vec!["t1"]);
        let tenant = st.list_with_delimiter(Some(&paths::tenant("t1"))).await.unwrap();
        assert_eq!(dirs(tenant), vec!["B1"]);
        assert!(st.head(&p).await.is_ok());
        st.delete(&p).await.unwrap();
        assert!(!dir.path().join("bucket/t1/B1/meta.json").exists());
        assert!(matches!(st.get(&p).await, Err(object_store::Error::NotFound { .. })));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(text.contains("strata_objstore_operations_total{operation=\"put\"} 1"), "{text}");
    }

    #[test]
    fn file_urls_name_their_folder() {
        assert_eq!(file_dir("file:///a/b").as_deref(), Some("/a/b"));
        assert_eq!(file_dir("file://localhost/a/b/").as_deref(), Some("/a/b"));
        assert_eq!(file_dir("file://relative/a"), None);
        assert_eq!(file_dir("s3://bucket/a"), None);
    }

    #[test]
    fn bad_urls_are_named() {
        for url in ["nope", "ftp://x/y", "s3://", "file://host/x", "file:///"] {
            let e = Bucket::open(&BucketConfig::from_url(url), None).unwrap_err();
            assert!(e.to_string().contains(url), "{e}");
        }
    }

    #[test]
    fn cloud_urls_open_without_network() {
        let mut cfg = BucketConfig::from_url("s3://bucket/some/prefix");
        cfg.s3.endpoint = Some("http://127.0.0.1:1".into());
        cfg.s3.region = Some("us-east-1".into());
        // Plain HTTP follows from the endpoint's scheme.
        Bucket::open(&cfg, None).unwrap();
    }
}
