use keten_log::GlobalPosition;

pub type Result<T, E = AccessError> = std::result::Result<T, E>;

/// Everything that can go wrong with the access log. A caller that gets any of these for
/// [`crate::AccessLog::record`] must not answer the access it was recording.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The store failed (or refused the append); nothing is known to be durable.
    #[error("access log store: {0}")]
    Store(#[from] keten_log::Error),

    /// A stored access record does not read back as one.
    #[error("access record at position {position} (stream `{stream}`) does not decode: {reason}")]
    Decode {
        position: GlobalPosition,
        stream: String,
        reason: String,
    },

    /// The record would hide what the log exists to show; see [`crate::AccessRecord::validate`].
    #[error("invalid access record: {0}")]
    InvalidRecord(String),
}
