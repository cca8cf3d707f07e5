use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate. A proof that does not verify is an error of its
/// own kind ([`Error::InvalidProof`]), apart from malformed input, so that a caller can tell
/// "this does not hold" from "this could not be read".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the log: {0}")]
    Log(#[from] keten_log::Error),

    /// The tree's leaf index is the global position, so leaves must arrive without gap.
    #[error("event at global position {got} appended to a tree of size {expected}")]
    OutOfOrder { expected: u64, got: u64 },

    #[error("{what} {value} is out of range for a tree of size {tree_size}")]
    OutOfRange {
        what: &'static str,
        value: u64,
        tree_size: u64,
    },

    #[error("proof does not verify: {0}")]
    InvalidProof(String),

    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),

    #[error("checkpoint is not signed by this key: {0}")]
    WrongKey(String),

    #[error("checkpoint signature is invalid: {0}")]
    BadSignature(String),

    #[error("invalid key: {0}")]
    InvalidKey(String),

    #[error("malformed bundle: {0}")]
    MalformedBundle(String),

    #[error("bundle does not match the tree: {0}")]
    BundleMismatch(String),

    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("no randomness for key generation: {0}")]
    Random(String),
}
