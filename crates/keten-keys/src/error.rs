use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::KeyId;

pub type Result<T, E = KeyError> = std::result::Result<T, E>;

/// What can go wrong with a key, a sealed blob or a key store. Store errors name the key and,
/// for the file store, the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("invalid key id {id:?}: {reason}")]
    InvalidKeyId { id: String, reason: &'static str },

    /// The key was destroyed (erased): it cannot be used or created again.
    #[error("key {id} was destroyed at {destroyed_at}")]
    Destroyed {
        id: KeyId,
        destroyed_at: DateTime<Utc>,
    },

    /// Too short to be sealed data, or not of a format this version reads.
    #[error("not sealed data: {reason}")]
    NotSealed { reason: String },

    /// Authentication failed: the wrong key, the wrong associated data, or tampered bytes. No
    /// plaintext is ever returned in this case.
    #[error("sealed data failed authentication (wrong key, wrong associated data, or tampered)")]
    Unauthentic,

    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file in the key directory that is not a well-formed key, tombstone or temporary file.
    #[error("key store file {} is malformed: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },

    /// Another process has the key directory open.
    #[error("key directory {} is in use by another process", dir.display())]
    Locked { dir: PathBuf },

    /// A remote store (JetStream) failed or answered something unexpected.
    #[error("key store {store}{}: {reason}", id.as_ref().map(|i| format!(", key {i}")).unwrap_or_default())]
    Backend {
        store: String,
        id: Option<KeyId>,
        reason: String,
    },
}

impl KeyError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}
