//! The HTTP client settings of a scrape config (`prometheus/common/config.HTTPClientConfig`,
//! inlined into each `scrape_configs` entry): authentication, TLS, redirects. Prometheus'
//! proxy and OAuth2 settings are refused by name rather than ignored, since a scrape that
//! silently skips the proxy or the token would go to the wrong place or fail obscurely.
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

/// A credential given inline or read from a file at scrape time.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Inline(String),
    File(PathBuf),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Inline(<secret>)"),
            Secret::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

impl Secret {
    /// At most one of `inline` and `file`; `what` names the pair in the error.
    fn pick(
        inline: Option<String>,
        file: Option<PathBuf>,
        what: &str,
    ) -> Result<Option<Secret>, String> {
        match (inline.filter(|s| !s.is_empty()), file.filter(|p| !p.as_os_str().is_empty())) {
            (Some(_), Some(_)) => Err(format!("at most one of {what} must be configured")),
            (Some(s), None) => Ok(Some(Secret::Inline(s))),
            (None, Some(p)) => Ok(Some(Secret::File(p))),
            (None, None) => Ok(None),
        }
    }

    fn join_dir(&mut self, dir: &Path) {
        if let Secret::File(p) = self {
            *p = join_dir(dir, p);
        }
    }
}

/// Makes a relative path relative to `dir` (the config file's folder), as Prometheus does.
pub(crate) fn join_dir(dir: &Path, p: &Path) -> PathBuf {
    if p.as_os_str().is_empty() || p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub username: Option<String>,
    pub username_file: Option<PathBuf>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<PathBuf>,
}

/// How a scrape authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `basic_auth`; the username may be empty, as in Prometheus.
    Basic { username: Option<Secret>, password: Option<Secret> },
    /// `authorization` (or the legacy `bearer_token`/`bearer_token_file`): the header
    /// `Authorization: <kind> <credentials>`.
    Header { kind: String, credentials: Option<Secret> },
}

/// TLS protocol versions, named as Prometheus names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::parse_scalar(d, "a TLS version", |s| match s {
            "TLS10" => Ok(TlsVersion::Tls10),
            "TLS11" => Ok(TlsVersion::Tls11),
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            _ => Err(format!("unknown TLS version: {s} (use TLS10, TLS11, TLS12 or TLS13)")),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTlsConfig {
    ca: Option<String>,
    ca_file: Option<PathBuf>,
    cert: Option<String>,
    cert_file: Option<PathBuf>,
    key: Option<String>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
    min_version: Option<TlsVersion>,
    max_version: Option<TlsVersion>,
}

/// `tls_config`, checked as `TLSConfig.Validate` checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTlsConfig")]
pub struct TlsConfig {
    pub ca: Option<Secret>,
    pub cert: Option<Secret>,
    pub key: Option<Secret>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
}

impl TryFrom<RawTlsConfig> for TlsConfig {
    type Error = String;
    fn try_from(r: RawTlsConfig) -> Result<Self, String> {
        // serde reports this error at the enclosing entry, so name the key here.
        Self::check(r).map_err(|e| format!("tls_config: {e}"))
    }
}

impl TlsConfig {
    fn check(r: RawTlsConfig) -> Result<Self, String> {
        let ca = Secret::pick(r.ca, r.ca_file, "ca & ca_file")?;
        let cert = Secret::pick(r.cert, r.cert_file, "cert & cert_file")?;
        let key = Secret::pick(r.key, r.key_file, "key & key_file")?;
        match (&cert, &key) {
            (Some(_), None) => {
                return Err("exactly one of key or key_file must be configured when a client \
                            certificate is configured"
                    .into())
            }
            (None, Some(_)) => {
                return Err("exactly one of cert or cert_file must be configured when a client \
                            key is configured"
                    .into())
            }
            _ => {}
        }
        if r.server_name.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err("server_name is not supported by Strata's scraper yet; scrape the \
                        name the certificate was issued for"
                .into());
        }
        if let (Some(min), Some(max)) = (r.min_version, r.max_version) {
            if min > max {
                return Err("tls_config min_version is greater than max_version".into());
            }
        }
        Ok(TlsConfig {
            ca,
            cert,
            key,
            server_name: r.server_name.filter(|s| !s.is_empty()),
            insecure_skip_verify: r.insecure_skip_verify,
            min_version: r.min_version,
            max_version: r.max_version,
        })
    }
}

impl TlsConfig {
    pub(crate) fn join_dir(&mut self, dir: &Path) {
        for s in [&mut self.ca, &mut self.cert, &mut self.key].into_iter().flatten() {
            s.join_dir(dir);
        }
    }
}

/// The HTTP client of one scrape config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpClientConfig {
    pub auth: Option<Auth>,
    pub tls: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
}

/// The HTTP fields of a scrape config as written (they sit inline in the entry).
pub(crate) struct RawHttp {
    pub basic_auth: Option<RawBasicAuth>,
    pub authorization: Option<RawAuthorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls_config: Option<TlsConfig>,
    pub follow_redirects: bool,
    pub enable_http2: bool,
}

impl RawHttp {
    /// `HTTPClientConfig.Validate`, with its messages.
    pub(crate) fn validate(self) -> Result<HttpClientConfig, String> {
        let bearer = Secret::pick(
            self.bearer_token,
            self.bearer_token_file,
            "bearer_token & bearer_token_file",
        )?;
        if self.basic_auth.is_some() && bearer.is_some() {
            return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
        }
        let auth = match (self.basic_auth, self.authorization) {
            (Some(_), Some(_)) => {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into()
                )
            }
            (Some(b), None) => Some(Auth::Basic {
                username: Secret::pick(
                    b.username,
                    b.username_file,
                    "basic_auth username & username_file",
                )?,
                password: Secret::pick(
                    b.password,
                    b.password_file,
                    "basic_auth password & password_file",
                )?,
            }),
            (None, Some(a)) => {
                if bearer.is_some() {
                    return Err(
                        "authorization is not compatible with bearer_token & bearer_token_file"
                            .into(),
                    );
                }
                let credentials = Secret::pick(
                    a.credentials,
                    a.credentials_file,
                    "authorization credentials & credentials_file",
                )?;
                let kind = a.kind.as_deref().map(str::trim).unwrap_or_default();
                let kind = if kind.is_empty() { "Bearer" } else { kind };
                if kind.eq_ignore_ascii_case("basic") {
                    return Err(
                        r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
                            .into(),
                    );
                }
                Some(Auth::Header { kind: kind.to_string(), credentials })
            }
            (None, None) => {
                bearer.map(|s| Auth::Header { kind: "Bearer".into(), credentials: Some(s) })
            }
        };
        Ok(HttpClientConfig {
            auth,
            tls: self.tls_config.unwrap_or_default(),
            follow_redirects: self.follow_redirects,
            enable_http2: self.enable_http2,
        })
    }
}

impl HttpClientConfig {
    pub(crate) fn join_dir(&mut self, dir: &Path) {
        self.tls.join_dir(dir);
        match &mut self.auth {
            Some(Auth::Basic { username, password }) => {
                for s in [username, password].into_iter().flatten() {
                    s.join_dir(dir);
                }
            }
            Some(Auth::Header { credentials: Some(s), .. }) => s.join_dir(dir),
            _ => {}
        }
    }
}

/// A Prometheus setting Strata refuses: reading one fails with `why`, so the error carries
/// the key's path and line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused;

/// Fails on whatever value the key has, from inside the visitor so that the error carries
/// the key's path and line.
pub(crate) fn refuse<'de, D: Deserializer<'de>>(
    why: &'static str,
    d: D,
) -> Result<Refused, D::Error> {
    use serde::de::{Error, MapAccess, SeqAccess, Visitor};
    struct V(&'static str);
    impl<'de> Visitor<'de> for V {
        type Value = Refused;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_bool<E: Error>(self, _: bool) -> Result<Refused, E> {
            Err(E::custom(self.0))
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<Refused, E> {
            Err(E::custom(self.0))
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<Refused, E> {
            Err(E::custom(self.0))
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<Refused, E> {
            Err(E::custom(self.0))
        }
        fn visit_str<E: Error>(self, _: &str) -> Result<Refused, E> {
            Err(E::custom(self.0))
        }
        fn visit_unit<E: Error>(self) -> Result<Refused, E> {
            Err(E::custom(self.0))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Refused, A::Error> {
            Err(A::Error::custom(self.0))
        }
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Refused, A::Error> {
            Err(A::Error::custom(self.0))
        }
    }
    d.deserialize_any(V(why))
}

pub(crate) fn refuse_proxy<'de, D: Deserializer<'de>>(d: D) -> Result<Refused, D::Error> {
    refuse("proxies are not supported by Strata's scraper yet; remove the proxy settings", d)
}

pub(crate) fn refuse_oauth2<'de, D: Deserializer<'de>>(d: D) -> Result<Refused, D::Error> {
    refuse("oauth2 is not supported by Strata's scraper yet; use authorization or basic_auth", d)
}

pub(crate) fn refuse_headers<'de, D: Deserializer<'de>>(d: D) -> Result<Refused, D::Error> {
    refuse("http_headers is not supported by Strata's scraper yet", d)
}

pub(crate) fn refuse_sd<'de, D: Deserializer<'de>>(d: D) -> Result<Refused, D::Error> {
    refuse(
        "this service discovery is not supported by Strata yet; use static_configs or \
         file_sd_configs",
        d,
    )
}
