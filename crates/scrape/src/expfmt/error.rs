use thiserror::Error;

/// Why a scraped body was rejected. The whole scrape fails on the first error, as in
/// Prometheus.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The `Content-Type` names no format we parse and no fallback was configured.
    #[error("{0}")]
    UnsupportedContentType(String),
    /// The body is malformed at `line` (1-based).
    #[error("line {line}: {msg}")]
    Invalid { line: usize, msg: String },
}

impl ParseError {
    pub(crate) fn at(line: usize, msg: impl Into<String>) -> Self {
        ParseError::Invalid { line, msg: msg.into() }
    }

    /// The 1-based line of a syntax error.
    pub fn line(&self) -> Option<usize> {
        match self {
            ParseError::Invalid { line, .. } => Some(*line),
            ParseError::UnsupportedContentType(_) => None,
        }
    }
}

pub type Result<T, E = ParseError> = std::result::Result<T, E>;
