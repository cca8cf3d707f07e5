use std::fmt;

use crate::error::{Error, Result};

/// The longest stream id or event type, in bytes. Kept small because both are stored in every
/// record and held in the in-memory index.
pub const MAX_NAME_LEN: usize = 255;

/// A stream's name: opaque to the log, 1..=255 bytes of UTF-8 with no control characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        check_name(&id).map_err(|rule| Error::InvalidStreamId(format!("`{id}`: {rule}")))?;
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name read back from the log, already checked by the record's CRC and UTF-8 decoding.
    pub(crate) fn from_stored(id: String) -> Self {
        Self(id)
    }
}

// Lets the index look a stream up by `&str` without allocating: `String` and `str` hash alike.
impl std::borrow::Borrow<str> for StreamId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", self.0)
    }
}

/// An event's type name, chosen by the writer: 1..=255 bytes of UTF-8 with no control characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(String);

impl EventType {
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_name(&name)
            .map_err(|rule| Error::InvalidAppend(format!("event type `{name}`: {rule}")))?;
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_stored(name: String) -> Self {
        Self(name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventType({:?})", self.0)
    }
}

fn check_name(s: &str) -> std::result::Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > MAX_NAME_LEN {
        return Err("must be at most 255 bytes");
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

/// The caller-chosen id of an event; the key of idempotent retries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EventId(pub uuid::Uuid);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An event's place in its stream: 0 for the first event, then 1, 2, ...
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct StreamVersion(pub u64);

impl fmt::Display for StreamVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An event's place in the total order over all streams: 0 for the first event in the log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct GlobalPosition(pub u64);

impl fmt::Display for GlobalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// When the log committed an event: microseconds since the Unix epoch, UTC. Assigned by the log,
/// never decreasing along the global order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct CommitTime(pub u64);

impl CommitTime {
    /// The wall clock now. The log is an IO edge; the domain never calls this.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(since.as_micros() as u64)
    }
}

/// What the writer expects the stream to be at, checked atomically with the append.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must have no events.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version.
    Exact(StreamVersion),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("stream exists"),
            Self::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// An event as a writer proposes it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProposedEvent {
    pub id: EventId,
    pub event_type: EventType,
    /// Opaque to the log (keten stores JSON: who published, on whose behalf, correlation).
    pub metadata: Vec<u8>,
    /// Opaque to the log.
    pub payload: Vec<u8>,
}

/// An event as the log stored it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RecordedEvent {
    pub stream: StreamId,
    pub id: EventId,
    pub event_type: EventType,
    pub version: StreamVersion,
    pub position: GlobalPosition,
    pub committed_at: CommitTime,
    pub metadata: Vec<u8>,
    pub payload: Vec<u8>,
}

/// The outcome of an append: where its events landed. A retry returns the same value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AppendResult {
    pub first_version: StreamVersion,
    /// The stream's version after the append: the next append expects this.
    pub last_version: StreamVersion,
    pub first_position: GlobalPosition,
    pub last_position: GlobalPosition,
    pub committed_at: CommitTime,
}

/// Which way a read walks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    Forward,
    Backward,
}

/// Where a read starts (inclusive).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReadFrom<T> {
    Start,
    End,
    At(T),
}

/// The cut-off of a read: "the log as it stood then".
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Until {
    /// Everything committed so far.
    Latest,
    /// Events at or before this global position.
    Position(GlobalPosition),
    /// Events committed at or before this time.
    Time(CommitTime),
}

/// Which events a whole-log subscription delivers. The empty filter delivers everything.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SubscriptionFilter {
    /// Only streams whose id starts with this.
    pub stream_prefix: Option<String>,
    /// Only events of one of these types (any type when empty).
    pub event_types: Vec<EventType>,
}

impl SubscriptionFilter {
    pub fn all() -> Self {
        Self::default()
    }

    pub fn matches(&self, event: &RecordedEvent) -> bool {
        self.stream_prefix
            .as_deref()
            .is_none_or(|p| event.stream.as_str().starts_with(p))
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
    }
}
