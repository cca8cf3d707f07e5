//! Shared by the integration tests: a NatsLog on a server of its own.
#![allow(dead_code)]

use keten_log::{
    AppendResult, CommitTime, Direction, EventStore, EventStream, ExpectedVersion, GlobalPosition,
    ProposedEvent, ReadFrom, RecordedEvent, Result, StreamId, StreamVersion, SubscriptionFilter,
    Until,
};
use keten_nats::{FsyncCheck, NatsLog, NatsLogOptions};
use keten_testkit::NatsServer;

/// A NatsLog on a fresh single-node server that lives as long as it does.
pub struct Fresh {
    pub log: NatsLog,
    pub server: NatsServer,
}

pub fn options_for(monitor_urls: Vec<String>) -> NatsLogOptions {
    NatsLogOptions {
        fsync: FsyncCheck::Verify { monitor_urls },
        ..NatsLogOptions::default()
    }
}

pub async fn fresh() -> Fresh {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let log = NatsLog::connect(&server.url(), options_for(vec![server.monitor_url()]))
        .await
        .expect("connect");
    Fresh { log, server }
}

#[async_trait::async_trait]
impl EventStore for Fresh {
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

pub fn event(payload: &str) -> ProposedEvent {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() as u128;
    ProposedEvent {
        id: keten_log::EventId(uuid::Uuid::from_u128((pid << 64) | n as u128)),
        event_type: keten_log::EventType::new("T").unwrap(),
        metadata: b"{}".to_vec(),
        payload: payload.as_bytes().to_vec(),
    }
}
