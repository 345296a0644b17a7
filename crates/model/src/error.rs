use thiserror::Error;

/// Errors named for what the caller can do about them.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// The input was malformed; retrying the same input will fail again (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The request body exceeded a size limit (HTTP 413).
    #[error("{0}")]
    TooLarge(String),
    /// The media type or encoding is not supported (HTTP 415).
    #[error("{0}")]
    Unsupported(String),
    /// A limit was hit; retry later (HTTP 429).
    #[error("{0}")]
    LimitExceeded(String),
    /// The service cannot answer now, e.g. no Raft leader; retry later (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// Something broke inside Strata (HTTP 500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status code for this error; the one place that mapping lives.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Invalid(_) => 400,
            Error::TooLarge(_) => 413,
            Error::Unsupported(_) => 415,
            Error::LimitExceeded(_) => 429,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// The Prometheus API `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Invalid(_) | Error::TooLarge(_) | Error::Unsupported(_) => "bad_data",
            Error::LimitExceeded(_) | Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
