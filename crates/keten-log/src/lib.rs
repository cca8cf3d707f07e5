//! keten's event store.
//!
//! An EventStore-style log of opaque events: streams with expected-version concurrency, one global
//! order over all streams, idempotent retries, catch-up subscriptions and a hash chain for tamper
//! evidence. [`EventStore`] is the one API; the embedded segmented file log in this crate is its
//! default backend, and `keten-nats` implements it on NATS JetStream.
//!
//! Architecture invariant: this crate knows nothing of families, plans or partners. A stream id is
//! an opaque string, a payload opaque bytes.
//!
//! Module map of the file log (`FORMAT.md` has the bytes):
//!
//! - `format`: segment names, the segment header, the record frame and their codecs;
//! - `io`: [`LogIo`], the trait every write goes through, so that tests inject faults;
//! - `recovery`: what open does with a data directory, torn tails and damage ([`RecoveryMode`]);
//! - `index`: the in-memory index and its append-only checkpoint file;
//! - `spare`: the zero-filled spare segment a background thread keeps ready for the next roll;
//! - `file_log`: [`FileLog`]: the writer thread and group commit, reads, subscriptions;
//! - `verify`: [`verify_dir`], the offline walk for `keten verify`;
//! - `conformance` (feature `conformance`): the suite every [`EventStore`] backend passes.

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod file_log;
mod format;
mod index;
mod io;
mod recovery;
mod spare;
mod store;
mod types;
mod verify;

pub use error::{Error, Result};
pub use file_log::{Durability, FileLog, FileLogOptions, LogStats, MAX_FLUSH_INTERVAL};
pub use io::{LogIo, StdIo};
pub use recovery::{RecoveryMode, TailCut};
pub use store::{EventStore, EventStream};
pub use types::{
    AppendResult, CommitTime, Direction, EventId, EventType, ExpectedVersion, GlobalPosition,
    ProposedEvent, ReadFrom, RecordedEvent, StreamId, StreamVersion, SubscriptionFilter, Until,
};
pub use verify::{TornTail, VerifyReport, verify_dir};

/// The record frame and segment header codecs, for the fuzz targets in the repository's `fuzz/`
/// only: not part of the API, and they change with the format.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::format::{
        FRAME_HEADER_LEN, FrameError, RecordFields, RecordView, SEGMENT_HEADER_LEN, SegmentHeader,
        decode_record, encode_record, genesis, peek_frame_len,
    };
}
