use thiserror::Error;

/// Errors of the head and its chunk codec.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A chunk's bytes do not decode; the chunk is corrupt or not an XOR chunk.
    #[error("invalid XOR chunk: {0}")]
    InvalidChunk(&'static str),
    /// The chunk already holds the most samples its 16-bit count allows; cut a new one.
    #[error("chunk is full")]
    ChunkFull,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
