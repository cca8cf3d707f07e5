use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::error::Result;
use crate::types::{
    AppendResult, CommitTime, Direction, ExpectedVersion, GlobalPosition, ProposedEvent, ReadFrom,
    RecordedEvent, StreamId, StreamVersion, SubscriptionFilter, Until,
};

/// A subscription: history first, then live events, in global order, with no gap and no
/// duplicate. It ends only with an error (or when the store closes).
pub type EventStream = BoxStream<'static, Result<RecordedEvent>>;

/// The one API of keten's event store, implemented by the embedded file log and by JetStream.
///
/// Every backend passes the same conformance suite (`keten_log::conformance`).
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically (all or none), if the stream is at `expected`.
    ///
    /// Acknowledged only once durable. A retry with the same event ids to the same stream returns
    /// the first result and writes nothing, for as long as the log lives; the same id with other
    /// content (or in another stream) is [`crate::Error::IdempotencyConflict`].
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult>;

    /// [`EventStore::append`] for a caller that has other work to wait for first: the append
    /// may be taken now and written together with other appends, and the returned future
    /// answers it as `append` would (the same promises). A log that writes in its callers'
    /// threads without flushing first (`FileLog` with `Durability::Interval`) queues it at
    /// once, so that whichever append comes next writes it in the same group; the future
    /// writes it itself if none has by the time it is polled. Dropping the future does not
    /// withdraw a queued append. Other logs append when the future is first polled.
    fn append_deferred(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> BoxFuture<'_, Result<AppendResult>> {
        Box::pin(async move { self.append(&stream, expected, events).await })
    }

    /// Reads up to `limit` events of one stream from `from`, in `direction`, including only
    /// events at or before `until`.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: ReadFrom<StreamVersion>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> Result<Vec<RecordedEvent>>;

    /// Reads up to `limit` events of the whole log from `from`, in `direction`, including only
    /// events at or before `until`.
    async fn read_all(
        &self,
        from: ReadFrom<GlobalPosition>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> Result<Vec<RecordedEvent>>;

    /// The stream's current version (the version of its last event), `None` if it has none.
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<StreamVersion>>;

    /// The position of the last event in the log, `None` if the log is empty.
    async fn head(&self) -> Result<Option<GlobalPosition>>;

    /// The position of the last event committed at or before `time`, `None` if there is none.
    /// Commit times never decrease along the global order, so this is well defined.
    async fn position_at(&self, time: CommitTime) -> Result<Option<GlobalPosition>>;

    /// Catch-up subscription to the whole log: events strictly after `after` (from the start when
    /// `None`) that match `filter`, history first, then live.
    ///
    /// Backpressure: a slow subscriber does not buffer without bound and does not slow writers;
    /// it falls behind and catches up by reading from storage.
    async fn subscribe_all(
        &self,
        after: Option<GlobalPosition>,
        filter: SubscriptionFilter,
    ) -> Result<EventStream>;

    /// Catch-up subscription to one stream: events with versions strictly after `after` (from the
    /// start when `None`), history first, then live.
    async fn subscribe_stream(
        &self,
        stream: &StreamId,
        after: Option<StreamVersion>,
    ) -> Result<EventStream>;

    /// Walks the whole hash chain and every record's checksum. `Ok` carries the number of events
    /// verified; the first break is an [`crate::Error::Corrupt`] that names where it is.
    async fn verify(&self) -> Result<u64>;
}
