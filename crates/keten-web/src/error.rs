use std::path::PathBuf;

/// What can go wrong starting or running the web screen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration `{field}`: {rule}")]
    Config { field: String, rule: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// Sign-in through the identity provider failed; the text says which check.
    #[error("OpenID Connect: {0}")]
    Oidc(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
