use std::path::PathBuf;

use crate::types::{EventId, ExpectedVersion, GlobalPosition, StreamId, StreamVersion};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the log. Conflicts and bad input are the caller's to handle;
/// corruption is never skipped: it names the file, byte offset and global position.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "wrong expected version for stream `{stream}`: expected {expected}, but the stream is at {}",
        match actual { Some(v) => v.to_string(), None => "no stream".to_string() }
    )]
    WrongExpectedVersion {
        stream: StreamId,
        expected: ExpectedVersion,
        /// The stream's current version, `None` when the stream does not exist.
        actual: Option<StreamVersion>,
    },

    #[error(
        "event id {id} was already stored with different content (stream `{stored_stream}`, position {stored_position})"
    )]
    IdempotencyConflict {
        id: EventId,
        stored_stream: StreamId,
        stored_position: GlobalPosition,
    },

    #[error("invalid append: {0}")]
    InvalidAppend(String),

    #[error("invalid stream id: {0}")]
    InvalidStreamId(String),

    #[error("data directory {dir} is in use by another process (lock file {lock})")]
    Locked { dir: PathBuf, lock: PathBuf },

    #[error(
        "log is corrupt in {file} at byte offset {offset} (global position {position}): {reason}"
    )]
    Corrupt {
        file: PathBuf,
        offset: u64,
        /// The global position of the record that is damaged or expected there.
        position: GlobalPosition,
        reason: String,
    },

    /// The file system holding the log has no room (ENOSPC, EDQUOT) or the file may grow no
    /// further (EFBIG: a file-size limit). Nothing of the append that met it was stored or
    /// acknowledged, the log on disk is intact, and appends go through again once there is room:
    /// no reopen needed.
    #[error("storage full: no room to write {path}: {source}")]
    StorageFull {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the log is closed")]
    Closed,

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("backend error: {0}")]
    Backend(String),
}

impl Error {
    /// Maps an IO error on `path`, giving a full disk its own variant: the caller can act on it,
    /// and nothing acknowledged is lost by it.
    pub fn from_io(path: &std::path::Path, source: std::io::Error) -> Self {
        if is_storage_full(&source) {
            return Self::StorageFull {
                path: path.to_path_buf(),
                source,
            };
        }
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A full file system, a full quota, or a file that may not grow (a file-size limit).
pub(crate) fn is_storage_full(e: &std::io::Error) -> bool {
    const EFBIG: i32 = 27;
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull
            | std::io::ErrorKind::QuotaExceeded
            | std::io::ErrorKind::FileTooLarge
    ) || matches!(e.raw_os_error(), Some(EFBIG | ENOSPC | EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_a_full_quota_and_a_file_size_limit_are_storage_full() {
        let path = std::path::Path::new("log/00.log");
        for (errno, what) in [(28, "ENOSPC"), (122, "EDQUOT"), (27, "EFBIG")] {
            let e = Error::from_io(path, std::io::Error::from_raw_os_error(errno));
            assert!(
                matches!(&e, Error::StorageFull { path: p, .. } if p == path),
                "{what}: {e:?}"
            );
            assert!(
                e.to_string()
                    .starts_with("storage full: no room to write log/00.log: ")
            );
        }
        let eio = Error::from_io(path, std::io::Error::from_raw_os_error(5));
        assert!(matches!(eio, Error::Io { .. }), "{eio:?}");
    }
}
