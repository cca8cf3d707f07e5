//! keten's event store on NATS JetStream: the [`keten_log::EventStore`] API on one shared,
//! replicated stream, so that several keten servers serve the same families.
//!
//! See `DESIGN.md` beside this crate for the mapping (subjects, headers, stream configuration,
//! atomicity, versions, idempotency, the hash chain, subscriptions, what an ack means).
//!
//! Architecture invariant: like the file log, this crate knows nothing of families: stream ids
//! are opaque strings and payloads opaque bytes.

mod error;
mod index;
mod jsapi;
pub mod keys;
mod log;
mod options;
mod record;
mod subject;

pub use error::{NatsError, Result};
pub use keys::{NatsKeyStore, NatsKeyStoreOptions};
pub use log::NatsLog;
pub use options::{FsyncCheck, MAX_BATCH, MIN_SERVER_VERSION, NatsLogOptions};
pub use record::{H_BATCH, H_HASH, H_ID, H_POSITION, H_TIME, H_VERSION};
pub use subject::{escape as escape_stream_id, unescape as unescape_stream_id};
