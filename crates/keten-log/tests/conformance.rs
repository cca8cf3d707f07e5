//! The conformance suite against the file log, one test per case.

use keten_log::conformance;
use keten_log::{
    AppendResult, CommitTime, Direction, EventStore, EventStream, ExpectedVersion, FileLog,
    FileLogOptions, GlobalPosition, ProposedEvent, ReadFrom, RecordedEvent, Result, StreamId,
    StreamVersion, SubscriptionFilter, Until,
};

/// A file log in its own temporary directory, removed when the test ends.
struct TempLog {
    log: FileLog,
    _dir: tempfile::TempDir,
}

async fn fresh() -> TempLog {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so that the cases also cross segment boundaries.
    let options = FileLogOptions {
        segment_size: 16 << 10,
        ..FileLogOptions::default()
    };
    let log = FileLog::open(dir.path(), options).await.unwrap();
    TempLog { log, _dir: dir }
}

#[async_trait::async_trait]
impl EventStore for TempLog {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult> {
        self.log.append(stream, expected, events).await
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: ReadFrom<StreamVersion>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        self.log
            .read_stream(stream, from, direction, limit, until)
            .await
    }
    async fn read_all(
        &self,
        from: ReadFrom<GlobalPosition>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        self.log.read_all(from, direction, limit, until).await
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<StreamVersion>> {
        self.log.stream_version(stream).await
    }
    async fn head(&self) -> Result<Option<GlobalPosition>> {
        self.log.head().await
    }
    async fn position_at(&self, time: CommitTime) -> Result<Option<GlobalPosition>> {
        self.log.position_at(time).await
    }
    async fn subscribe_all(
        &self,
        after: Option<GlobalPosition>,
        filter: SubscriptionFilter,
    ) -> Result<EventStream> {
        self.log.subscribe_all(after, filter).await
    }
    async fn subscribe_stream(
        &self,
        stream: &StreamId,
        after: Option<StreamVersion>,
    ) -> Result<EventStream> {
        self.log.subscribe_stream(stream, after).await
    }
    async fn verify(&self) -> Result<u64> {
        self.log.verify().await
    }
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            conformance::$case(fresh).await;
        }
    )*};
}

cases!(
    expected_any,
    expected_no_stream,
    expected_stream_exists,
    expected_exact,
    idempotent_retry,
    idempotency_conflicts,
    invalid_appends,
    atomic_multi_event_append,
    read_stream_directions,
    read_all_order,
    read_until,
    subscribe_all_catch_up_then_live,
    subscribe_all_filters,
    subscribe_stream_catch_up_then_live,
    slow_subscriber_catches_up,
);

/// `run_all` itself, as another backend would call it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_one_factory() {
    conformance::run_all(fresh).await;
}
