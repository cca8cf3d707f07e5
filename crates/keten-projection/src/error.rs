use std::path::PathBuf;
use std::sync::Arc;

use keten_log::{EventId, GlobalPosition, StreamId, StreamVersion};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the projection crate. A stored event that cannot be read or
/// folded is never skipped: its error names the global position, so that an operator can find it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Log(#[from] keten_log::Error),

    /// The payload or metadata of a stored event is not something keten can read.
    #[error(
        "the stored event at global position {position} (stream `{stream}`, version {version}, id {id}) does not decode: {reason}"
    )]
    Decode {
        position: GlobalPosition,
        stream: StreamId,
        version: StreamVersion,
        id: EventId,
        reason: String,
    },

    /// The event decodes but cannot be folded where it stands (a version gap, a stream id that
    /// is no family, a registration for another family).
    #[error(
        "the stored event at global position {position} (stream `{stream}`) cannot be folded: {reason}"
    )]
    Fold {
        position: GlobalPosition,
        stream: StreamId,
        reason: String,
    },

    /// The projection did not reach the position asked for in time.
    #[error(
        "the projection has not reached global position {wanted} yet (it is at {})",
        match reached { Some(p) => p.to_string(), None => "the start".to_string() }
    )]
    NotYet {
        wanted: GlobalPosition,
        reached: Option<GlobalPosition>,
    },

    /// The projection stopped on an error and folds no more; the cause is the first error.
    #[error("the projection has stopped: {0}")]
    Stopped(Arc<Error>),

    #[error("family `{0}` has no events")]
    UnknownFamily(String),

    /// A snapshot could not be written (a snapshot that cannot be read is discarded, not an
    /// error).
    #[error("snapshot {path}: {reason}")]
    Snapshot { path: PathBuf, reason: String },

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The global position of the stored event this error is about, if it is about one.
    pub fn position(&self) -> Option<GlobalPosition> {
        match self {
            Self::Decode { position, .. }
            | Self::Fold { position, .. }
            | Self::Log(keten_log::Error::Corrupt { position, .. }) => Some(*position),
            Self::Stopped(inner) => inner.position(),
            _ => None,
        }
    }
}
