use std::path::PathBuf;

use keten_log::GlobalPosition;

pub type Result<T, E = NatsError> = std::result::Result<T, E>;

/// What can go wrong between keten and JetStream. Conflicts and bad input are not here: they are
/// the same typed [`keten_log::Error`] variants as the file log's, decided by the same rules.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },

    /// The server or the stream cannot keep the log's promises; every problem is listed.
    #[error("JetStream stream `{stream}` cannot keep keten's promises: {}", problems.join("; "))]
    Unsafe {
        stream: String,
        problems: Vec<String>,
    },

    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("JetStream request {what} failed: {reason}")]
    Request { what: String, reason: String },

    /// JetStream answered with an API error.
    #[error("JetStream rejected {what}: {description} (code {code}, err_code {err_code})")]
    Api {
        what: String,
        code: u16,
        err_code: u64,
        description: String,
    },

    #[error("timed out after {elapsed_ms} ms: {what}")]
    Timeout { what: String, elapsed_ms: u64 },

    /// The stream's content breaks the chain, the sequence or the record format.
    #[error(
        "stream `{stream}` is corrupt at stream sequence {seq} (global position {position}): {reason}"
    )]
    Corrupt {
        stream: String,
        seq: u64,
        position: GlobalPosition,
        reason: String,
    },

    #[error("the log is closed")]
    Closed,
}

impl NatsError {
    pub(crate) fn request(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Request {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// The one place where backend errors become the API's: damage is `Corrupt` (naming the stream
/// as `jetstream:<name>` and the stream sequence as the offset), configuration is `Config`,
/// everything else is `Backend`.
impl From<NatsError> for keten_log::Error {
    fn from(e: NatsError) -> Self {
        match e {
            NatsError::Corrupt {
                stream,
                seq,
                position,
                reason,
            } => keten_log::Error::Corrupt {
                file: PathBuf::from(format!("jetstream:{stream}")),
                offset: seq,
                position,
                reason,
            },
            NatsError::Unsafe { .. } | NatsError::Config(_) => {
                keten_log::Error::Config(e.to_string())
            }
            NatsError::Closed => keten_log::Error::Closed,
            other => keten_log::Error::Backend(other.to_string()),
        }
    }
}
