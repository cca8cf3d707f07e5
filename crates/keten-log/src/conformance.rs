//! The conformance suite: what every [`EventStore`] backend must do, written once against the
//! trait. Each case takes a factory that makes a fresh, empty store, and panics on a failure;
//! a backend's tests call [`run_all`] or one case per test.
//!
//! ```ignore
//! keten_log::conformance::run_all(|| async { MyStore::connect_fresh().await }).await;
//! ```
//!
//! No case sleeps to synchronise: concurrent writers are awaited, subscriptions are read until
//! they delivered what was written (under a generous timeout that only fails a hung backend).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::{
    AppendResult, CommitTime, Direction, Error, EventId, EventStore, EventStream, EventType,
    ExpectedVersion, GlobalPosition, ProposedEvent, ReadFrom, RecordedEvent, Result, StreamId,
    StreamVersion, SubscriptionFilter, Until,
};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A store together with what must outlive it in a test (its temporary directory, its server
/// process): the factory a backend's tests hand the suite returns one of these, so that no
/// backend writes the delegation again.
pub struct Guarded<S, G> {
    pub store: S,
    pub guard: G,
}

#[async_trait::async_trait]
impl<S: EventStore, G: Send + Sync + 'static> EventStore for Guarded<S, G> {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult> {
        self.store.append(stream, expected, events).await
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: ReadFrom<StreamVersion>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        self.store
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
        self.store.read_all(from, direction, limit, until).await
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<StreamVersion>> {
        self.store.stream_version(stream).await
    }
    async fn head(&self) -> Result<Option<GlobalPosition>> {
        self.store.head().await
    }
    async fn position_at(&self, time: CommitTime) -> Result<Option<GlobalPosition>> {
        self.store.position_at(time).await
    }
    async fn subscribe_all(
        &self,
        after: Option<GlobalPosition>,
        filter: SubscriptionFilter,
    ) -> Result<EventStream> {
        self.store.subscribe_all(after, filter).await
    }
    async fn subscribe_stream(
        &self,
        stream: &StreamId,
        after: Option<StreamVersion>,
    ) -> Result<EventStream> {
        self.store.subscribe_stream(stream, after).await
    }
    async fn verify(&self) -> Result<u64> {
        self.store.verify().await
    }
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream id")
}

/// Unique within the process (cases run on fresh stores, so that is enough), without needing a
/// random source.
fn next_id() -> EventId {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    EventId(uuid::Uuid::from_u128(
        (0x6b65_7465_6e00_0000_u128 << 64) | n as u128,
    ))
}

fn ev(event_type: &str, payload: &str) -> ProposedEvent {
    ProposedEvent {
        id: next_id(),
        event_type: EventType::new(event_type).expect("valid type"),
        metadata: br#"{"by":"conformance"}"#.to_vec(),
        payload: payload.as_bytes().to_vec(),
    }
}

async fn all<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    store
        .read_all(
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await
        .expect("read_all")
}

async fn versions<S: EventStore>(
    store: &S,
    s: &StreamId,
    from: ReadFrom<StreamVersion>,
    direction: Direction,
    limit: usize,
) -> Vec<u64> {
    store
        .read_stream(s, from, direction, limit, Until::Latest)
        .await
        .expect("read_stream")
        .iter()
        .map(|e| e.version.0)
        .collect()
}

fn assert_wrong_version(r: Result<AppendResult, Error>, want_actual: Option<u64>) {
    match r {
        Err(Error::WrongExpectedVersion { actual, .. }) => {
            assert_eq!(actual, want_actual.map(StreamVersion), "actual version")
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
}

async fn take(sub: &mut EventStream, n: usize) -> Vec<RecordedEvent> {
    let mut out = Vec::with_capacity(n);
    let collect = async {
        while out.len() < n {
            match sub.next().await {
                Some(Ok(e)) => out.push(e),
                Some(Err(e)) => panic!("subscription failed: {e}"),
                None => panic!("subscription ended after {} of {n} events", out.len()),
            }
        }
    };
    if tokio::time::timeout(TIMEOUT, collect).await.is_err() {
        panic!("subscription delivered only part of {n} events in {TIMEOUT:?}");
    }
    out
}

/// `Any` never fails; versions count from 0.
pub async fn expected_any<S: EventStore, Fut: Future<Output = S>>(factory: impl Fn() -> Fut) {
    let store = factory().await;
    let s = stream("any-1");
    for v in 0..3 {
        let r = store
            .append(&s, ExpectedVersion::Any, vec![ev("T", "x")])
            .await
            .expect("append any");
        assert_eq!((r.first_version.0, r.last_version.0), (v, v));
    }
    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        Some(StreamVersion(2))
    );
}

/// `NoStream` succeeds once, then fails with the actual version.
pub async fn expected_no_stream<S: EventStore, Fut: Future<Output = S>>(factory: impl Fn() -> Fut) {
    let store = factory().await;
    let s = stream("nostream-1");
    assert_eq!(store.stream_version(&s).await.unwrap(), None);
    let r = store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![ev("T", "a"), ev("T", "b")],
        )
        .await
        .expect("first append to a new stream");
    assert_eq!((r.first_version.0, r.last_version.0), (0, 1));
    assert_wrong_version(
        store
            .append(&s, ExpectedVersion::NoStream, vec![ev("T", "c")])
            .await,
        Some(1),
    );
    assert_eq!(
        all(&store).await.len(),
        2,
        "a rejected append writes nothing"
    );
}

/// `StreamExists` fails on a new stream (actual: none) and succeeds once it has events.
pub async fn expected_stream_exists<S: EventStore, Fut: Future<Output = S>>(
    factory: impl Fn() -> Fut,
) {
    let store = factory().await;
    let s = stream("exists-1");
    assert_wrong_version(
        store
            .append(&s, ExpectedVersion::StreamExists, vec![ev("T", "a")])
            .await,
        None,
    );
    store
        .append(&s, ExpectedVersion::Any, vec![ev("T", "a")])
        .await
        .unwrap();
    let r = store
        .append(&s, ExpectedVersion::StreamExists, vec![ev("T", "b")])
        .await
        .expect("stream exists");
    assert_eq!(r.first_version, StreamVersion(1));
}

/// `Exact(v)` succeeds only at the current version and reports the actual one otherwise.
pub async fn expected_exact<S: EventStore, Fut: Future<Output = S>>(factory: impl Fn() -> Fut) {
    let store = factory().await;
    let s = stream("exact-1");
    assert_wrong_version(
        store
            .append(
                &s,
                ExpectedVersion::Exact(StreamVersion(0)),
                vec![ev("T", "a")],
            )
            .await,
        None,
    );
    store
        .append(&s, ExpectedVersion::NoStream, vec![ev("T", "a")])
        .await
        .unwrap();
    let r = store
        .append(
            &s,
            ExpectedVersion::Exact(StreamVersion(0)),
            vec![ev("T", "b")],
        )
        .await
        .expect("exact 0");
    assert_eq!(r.first_version, StreamVersion(1));
    assert_wrong_version(
        store
            .append(
                &s,
                ExpectedVersion::Exact(StreamVersion(0)),
                vec![ev("T", "c")],
            )
            .await,
        Some(1),
    );
    assert_wrong_version(
        store
            .append(
                &s,
                ExpectedVersion::Exact(StreamVersion(5)),
                vec![ev("T", "c")],
            )
            .await,
        Some(1),
    );
    // Another stream's version does not count.
    assert_wrong_version(
        store
            .append(
                &stream("exact-2"),
                ExpectedVersion::Exact(StreamVersion(1)),
                vec![ev("T", "c")],
            )
            .await,
        None,
    );
    assert_eq!(all(&store).await.len(), 2);
}

/// A retry of the same event ids to the same stream returns the original result and writes
/// nothing, even after other appends and with an expected version that no longer holds.
pub async fn idempotent_retry<S: EventStore, Fut: Future<Output = S>>(factory: impl Fn() -> Fut) {
    let store = factory().await;
    let s = stream("idem-1");
    let batch = vec![ev("T", "a"), ev("T", "b")];
    let first = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let again = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("retry is not a conflict");
    assert_eq!(again, first);
    store
        .append(&s, ExpectedVersion::Any, vec![ev("T", "c")])
        .await
        .unwrap();
    store
        .append(&stream("idem-2"), ExpectedVersion::Any, vec![ev("T", "d")])
        .await
        .unwrap();
    let late = store
        .append(&s, ExpectedVersion::Exact(StreamVersion(0)), batch)
        .await
        .expect("late retry");
    assert_eq!(late, first);
    assert_eq!(all(&store).await.len(), 4, "retries write nothing");
    assert_eq!(store.head().await.unwrap(), Some(GlobalPosition(3)));
}

/// The same id with other content, in another stream, or in a batch that is not exactly the
/// stored one, is a conflict, and writes nothing.
pub async fn idempotency_conflicts<S: EventStore, Fut: Future<Output = S>>(
    factory: impl Fn() -> Fut,
) {
    let store = factory().await;
    let s = stream("conflict-1");
    let a = ev("T", "a");
    let b = ev("T", "b");
    let stored = store
        .append(&s, ExpectedVersion::Any, vec![a.clone(), b.clone()])
        .await
        .unwrap();
    let conflict = |r: Result<AppendResult, Error>, what: &str| match r {
        Err(Error::IdempotencyConflict {
            stored_stream,
            stored_position,
            ..
        }) => {
            assert_eq!(stored_stream, s, "{what}: stored stream");
            assert!(
                stored_position >= stored.first_position && stored_position <= stored.last_position,
                "{what}: stored position"
            );
        }
        other => panic!("{what}: expected IdempotencyConflict, got {other:?}"),
    };
    let mut changed = a.clone();
    changed.payload = b"other".to_vec();
    conflict(
        store
            .append(&s, ExpectedVersion::Any, vec![changed, b.clone()])
            .await,
        "different payload",
    );
    let mut retyped = a.clone();
    retyped.event_type = EventType::new("Other").unwrap();
    conflict(
        store
            .append(&s, ExpectedVersion::Any, vec![retyped, b.clone()])
            .await,
        "different type",
    );
    conflict(
        store
            .append(
                &stream("conflict-2"),
                ExpectedVersion::Any,
                vec![a.clone(), b.clone()],
            )
            .await,
        "other stream",
    );
    conflict(
        store
            .append(&s, ExpectedVersion::Any, vec![a.clone()])
            .await,
        "part of the stored batch",
    );
    conflict(
        store
            .append(
                &s,
                ExpectedVersion::Any,
                vec![a.clone(), b.clone(), ev("T", "new")],
            )
            .await,
        "stored batch plus a new event",
    );
    conflict(
        store
            .append(&s, ExpectedVersion::Any, vec![b.clone(), a.clone()])
            .await,
        "reordered",
    );
    assert_eq!(all(&store).await.len(), 2, "conflicts write nothing");
}

/// Malformed appends are rejected before anything is written.
pub async fn invalid_appends<S: EventStore, Fut: Future<Output = S>>(factory: impl Fn() -> Fut) {
    let store = factory().await;
    let s = stream("invalid-1");
    assert!(matches!(
        store.append(&s, ExpectedVersion::Any, vec![]).await,
        Err(Error::InvalidAppend(_))
    ));
    let a = ev("T", "a");
    assert!(matches!(
        store
            .append(&s, ExpectedVersion::Any, vec![a.clone(), a])
            .await,
        Err(Error::InvalidAppend(_))
    ));
    assert_eq!(store.head().await.unwrap(), None);
}

/// Several events go in together: contiguous versions and positions, or not at all, even with
/// concurrent writers.
pub async fn atomic_multi_event_append<S: EventStore, Fut: Future<Output = S>>(
    factory: impl Fn() -> Fut,
) {
    let store = Arc::new(factory().await);
    let s = stream("atomic-1");
    store
        .append(&s, ExpectedVersion::Any, vec![ev("T", "0")])
        .await
        .unwrap();
    assert_wrong_version(
        store
            .append(
                &s,
                ExpectedVersion::NoStream,
                vec![ev("T", "x"), ev("T", "y"), ev("T", "z")],
            )
            .await,
        Some(0),
    );
    assert_eq!(
        all(&*store).await.len(),
        1,
        "a rejected batch writes none of its events"
    );
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = stream(&format!("atomic-writer-{t}"));
            let mut results = Vec::new();
            for i in 0..10 {
                let batch = (0..3).map(|k| ev("T", &format!("{t}-{i}-{k}"))).collect();
                results.push(store.append(&s, ExpectedVersion::Any, batch).await.unwrap());
            }
            results
        }));
    }
    for task in tasks {
        for (i, r) in task.await.unwrap().into_iter().enumerate() {
            assert_eq!(r.last_position.0 - r.first_position.0, 2);
            assert_eq!(r.first_version.0, 3 * i as u64);
            assert_eq!(r.last_version.0, 3 * i as u64 + 2);
        }
    }
    let events = all(&*store).await;
    assert_eq!(events.len(), 1 + 8 * 10 * 3);
    for batch in events[1..].chunks(3) {
        assert!(
            batch.iter().all(|e| e.stream == batch[0].stream),
            "batch interleaved"
        );
        let v: Vec<u64> = batch.iter().map(|e| e.version.0).collect();
        assert_eq!(v, vec![v[0], v[0] + 1, v[0] + 2]);
        assert!(
            batch
                .iter()
                .all(|e| e.committed_at == batch[0].committed_at)
        );
    }
}

/// Stream reads in both directions, with limits, from every kind of start.
pub async fn read_stream_directions<S: EventStore, Fut: Future<Output = S>>(
    factory: impl Fn() -> Fut,
) {
    let store = factory().await;
    let s = stream("read-1");
    let other = stream("read-2");
    for i in 0..10 {
        store
            .append(&s, ExpectedVersion::Any, vec![ev("T", &format!("s{i}"))])
            .await
            .unwrap();
        store
            .append(
                &other,
                ExpectedVersion::Any,
                vec![ev("T", &format!("o{i}"))],
            )
            .await
            .unwrap();
    }
    use Direction::{Backward, Forward};
    assert_eq!(
        versions(&store, &s, ReadFrom::Start, Forward, 3).await,
        [0, 1, 2]
    );
    assert_eq!(
        versions(&store, &s, ReadFrom::At(StreamVersion(5)), Forward, 100).await,
        [5, 6, 7, 8, 9]
    );
    assert_eq!(
        versions(&store, &s, ReadFrom::End, Forward, 10).await,
        [] as [u64; 0]
    );
    assert_eq!(
        versions(&store, &s, ReadFrom::End, Backward, 3).await,
        [9, 8, 7]
    );
    assert_eq!(
        versions(&store, &s, ReadFrom::At(StreamVersion(2)), Backward, 10).await,
        [2, 1, 0]
    );
    assert_eq!(
        versions(&store, &s, ReadFrom::Start, Backward, 10).await,
        [0]
    );
    assert_eq!(
        versions(&store, &s, ReadFrom::At(StreamVersion(50)), Forward, 10).await,
        [] as [u64; 0]
    );
    assert_eq!(
        versions(&store, &s, ReadFrom::Start, Forward, 0).await,
        [] as [u64; 0]
    );
    let events = store
        .read_stream(&s, ReadFrom::Start, Forward, usize::MAX, Until::Latest)
        .await
        .unwrap();
    assert_eq!(events.len(), 10);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.stream, s);
        assert_eq!(e.payload, format!("s{i}").as_bytes());
        assert_eq!(e.position.0, 2 * i as u64);
        assert_eq!(e.metadata, br#"{"by":"conformance"}"#);
    }
    assert_eq!(
        versions(
            &store,
            &stream("read-missing"),
            ReadFrom::Start,
            Forward,
            10
        )
        .await,
        [] as [u64; 0]
    );
    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        Some(StreamVersion(9))
    );
}

/// The whole log in global order, both directions, with limits.
pub async fn read_all_order<S: EventStore, Fut: Future<Output = S>>(factory: impl Fn() -> Fut) {
    let store = factory().await;
    assert_eq!(store.head().await.unwrap(), None);
    assert!(all(&store).await.is_empty());
    for i in 0..12 {
        let s = stream(&format!("order-{}", i % 3));
        store
            .append(&s, ExpectedVersion::Any, vec![ev("T", &i.to_string())])
            .await
            .unwrap();
    }
    let events = all(&store).await;
    let positions: Vec<u64> = events.iter().map(|e| e.position.0).collect();
    assert_eq!(positions, (0..12).collect::<Vec<_>>());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.payload, i.to_string().as_bytes());
        assert_eq!(e.version.0, i as u64 / 3);
    }
    assert!(
        events
            .windows(2)
            .all(|w| w[0].committed_at <= w[1].committed_at)
    );
    let pos = |es: Vec<RecordedEvent>| es.iter().map(|e| e.position.0).collect::<Vec<_>>();
    let read = |from, dir, limit| store.read_all(from, dir, limit, Until::Latest);
    assert_eq!(
        pos(
            read(ReadFrom::At(GlobalPosition(10)), Direction::Forward, 5)
                .await
                .unwrap()
        ),
        [10, 11]
    );
    assert_eq!(
        pos(read(ReadFrom::End, Direction::Backward, 3).await.unwrap()),
        [11, 10, 9]
    );
    assert_eq!(
        pos(
            read(ReadFrom::At(GlobalPosition(1)), Direction::Backward, 5)
                .await
                .unwrap()
        ),
        [1, 0]
    );
    assert_eq!(store.head().await.unwrap(), Some(GlobalPosition(11)));
}

/// "As it stood then": reads cut off at a position or at a commit time, and `position_at`.
pub async fn read_until<S: EventStore, Fut: Future<Output = S>>(factory: impl Fn() -> Fut) {
    let store = factory().await;
    let s = stream("until-1");
    let other = stream("until-2");
    let mut results = Vec::new();
    for i in 0..6 {
        results.push(
            store
                .append(&s, ExpectedVersion::Any, vec![ev("T", &i.to_string())])
                .await
                .unwrap(),
        );
        store
            .append(&other, ExpectedVersion::Any, vec![ev("T", "o")])
            .await
            .unwrap();
    }
    // s has positions 0, 2, 4, ...
    let until_pos = Until::Position(GlobalPosition(5));
    let head = store
        .read_all(ReadFrom::Start, Direction::Forward, 100, until_pos)
        .await
        .unwrap();
    assert_eq!(head.len(), 6);
    let back = store
        .read_all(ReadFrom::End, Direction::Backward, 100, until_pos)
        .await
        .unwrap();
    assert_eq!(back.first().unwrap().position, GlobalPosition(5));
    let sv = store
        .read_stream(&s, ReadFrom::End, Direction::Backward, 100, until_pos)
        .await
        .unwrap();
    assert_eq!(
        sv.iter().map(|e| e.version.0).collect::<Vec<_>>(),
        [2, 1, 0]
    );
    // By time: every event committed at or before the third append of s.
    let t = results[2].committed_at;
    let p = store.position_at(t).await.unwrap().expect("a position");
    assert!(p >= results[2].last_position);
    let events = all(&store).await;
    assert!(
        events
            .iter()
            .all(|e| (e.position <= p) == (e.committed_at <= t))
    );
    let by_time = store
        .read_all(ReadFrom::Start, Direction::Forward, 100, Until::Time(t))
        .await
        .unwrap();
    assert_eq!(by_time.len() as u64, p.0 + 1);
    let stream_by_time = store
        .read_stream(&s, ReadFrom::Start, Direction::Forward, 100, Until::Time(t))
        .await
        .unwrap();
    assert!(stream_by_time.iter().all(|e| e.committed_at <= t));
    assert!(stream_by_time.len() >= 3);
    let before = crate::CommitTime(events[0].committed_at.0 - 1);
    assert_eq!(store.position_at(before).await.unwrap(), None);
    assert!(
        store
            .read_all(
                ReadFrom::Start,
                Direction::Forward,
                100,
                Until::Time(before)
            )
            .await
            .unwrap()
            .is_empty()
    );
}

/// A whole-log subscription delivers history, then live events written concurrently, with no
/// gap and no duplicate; `after` starts it past a position.
pub async fn subscribe_all_catch_up_then_live<S: EventStore, Fut: Future<Output = S>>(
    factory: impl Fn() -> Fut,
) {
    let store = Arc::new(factory().await);
    for i in 0..300 {
        let s = stream(&format!("sub-{}", i % 5));
        store
            .append(&s, ExpectedVersion::Any, vec![ev("T", "history")])
            .await
            .unwrap();
    }
    let mut sub = store
        .subscribe_all(None, SubscriptionFilter::all())
        .await
        .unwrap();
    let mut late = store
        .subscribe_all(Some(GlobalPosition(249)), SubscriptionFilter::all())
        .await
        .unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let s = stream(&format!("live-{w}"));
                for i in 0..50 {
                    let batch = (0..1 + i % 3).map(|_| ev("T", "live")).collect();
                    store.append(&s, ExpectedVersion::Any, batch).await.unwrap();
                }
            })
        })
        .collect();
    // Each writer appends 50 batches of 1, 2 or 3 events: 99 events.
    let total = 300 + 4 * 99;
    let got = take(&mut sub, total).await;
    for w in writers {
        w.await.unwrap();
    }
    let positions: Vec<u64> = got.iter().map(|e| e.position.0).collect();
    assert_eq!(positions, (0..total as u64).collect::<Vec<_>>());
    assert_eq!(got, all(&*store).await, "subscription equals the log");
    let got_late = take(&mut late, total - 250).await;
    assert_eq!(got_late[0].position, GlobalPosition(250));
    assert_eq!(got_late[..], got[250..]);
    // Still live after catching up.
    let r = store
        .append(
            &stream("sub-0"),
            ExpectedVersion::Any,
            vec![ev("T", "last")],
        )
        .await
        .unwrap();
    assert_eq!(take(&mut sub, 1).await[0].position, r.first_position);
}

/// Filters on stream prefix and event type deliver exactly the matching events, in order.
pub async fn subscribe_all_filters<S: EventStore, Fut: Future<Output = S>>(
    factory: impl Fn() -> Fut,
) {
    let store = Arc::new(factory().await);
    let write = |store: Arc<S>, from: usize, to: usize| async move {
        for i in from..to {
            let s = stream(if i % 2 == 0 { "family-1" } else { "partner-1" });
            let t = ["Opened", "Noted", "Closed"][i % 3];
            store
                .append(&s, ExpectedVersion::Any, vec![ev(t, &i.to_string())])
                .await
                .unwrap();
        }
    };
    write(store.clone(), 0, 60).await;
    let by_prefix = SubscriptionFilter {
        stream_prefix: Some("family-".into()),
        event_types: vec![],
    };
    let by_type = SubscriptionFilter {
        stream_prefix: None,
        event_types: vec![
            EventType::new("Opened").unwrap(),
            EventType::new("Closed").unwrap(),
        ],
    };
    let both = SubscriptionFilter {
        stream_prefix: Some("partner".into()),
        event_types: vec![EventType::new("Noted").unwrap()],
    };
    let mut subs = Vec::new();
    for f in [&by_prefix, &by_type, &both] {
        subs.push(store.subscribe_all(None, f.clone()).await.unwrap());
    }
    let live = tokio::spawn(write(store.clone(), 60, 120));
    let events = {
        live.await.unwrap();
        all(&*store).await
    };
    for (f, sub) in [&by_prefix, &by_type, &both].into_iter().zip(&mut subs) {
        let want: Vec<RecordedEvent> = events.iter().filter(|e| f.matches(e)).cloned().collect();
        assert!(!want.is_empty());
        let got = take(sub, want.len()).await;
        assert_eq!(got, want, "filter {f:?}");
    }
    // Nothing else is pending: the next matching event is the next one delivered.
    store
        .append(
            &stream("family-9"),
            ExpectedVersion::Any,
            vec![ev("Other", "x")],
        )
        .await
        .unwrap();
    let r = store
        .append(
            &stream("family-9"),
            ExpectedVersion::Any,
            vec![ev("Closed", "y")],
        )
        .await
        .unwrap();
    let got = take(&mut subs[0], 2).await;
    assert_eq!(got[1].position, r.first_position);
    let got = take(&mut subs[1], 1).await;
    assert_eq!(got[0].position, r.first_position);
}

/// A stream subscription delivers that stream's history then its live events, by version, while
/// other streams are written too.
pub async fn subscribe_stream_catch_up_then_live<S: EventStore, Fut: Future<Output = S>>(
    factory: impl Fn() -> Fut,
) {
    let store = Arc::new(factory().await);
    let s = stream("watched-1");
    for i in 0..20 {
        store
            .append(&s, ExpectedVersion::Any, vec![ev("T", &i.to_string())])
            .await
            .unwrap();
        store
            .append(&stream("noise-1"), ExpectedVersion::Any, vec![ev("T", "n")])
            .await
            .unwrap();
    }
    let mut sub = store.subscribe_stream(&s, None).await.unwrap();
    let mut after = store
        .subscribe_stream(&s, Some(StreamVersion(14)))
        .await
        .unwrap();
    let mut missing = store
        .subscribe_stream(&stream("watched-2"), None)
        .await
        .unwrap();
    let writer = {
        let store = store.clone();
        let s = s.clone();
        tokio::spawn(async move {
            for i in 20..60u64 {
                let r = store
                    .append(
                        &s,
                        ExpectedVersion::Exact(StreamVersion(i - 1)),
                        vec![ev("T", &i.to_string())],
                    )
                    .await
                    .unwrap();
                assert_eq!(r.first_version, StreamVersion(i));
                store
                    .append(&stream("noise-2"), ExpectedVersion::Any, vec![ev("T", "n")])
                    .await
                    .unwrap();
            }
        })
    };
    let got = take(&mut sub, 60).await;
    writer.await.unwrap();
    let v: Vec<u64> = got.iter().map(|e| e.version.0).collect();
    assert_eq!(v, (0..60).collect::<Vec<_>>());
    assert!(got.iter().all(|e| e.stream == s));
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, e)| e.payload == i.to_string().as_bytes())
    );
    let got_after = take(&mut after, 45).await;
    assert_eq!(got_after[..], got[15..]);
    // A subscription to a stream that does not exist yet waits for its first event.
    store
        .append(
            &stream("watched-2"),
            ExpectedVersion::NoStream,
            vec![ev("T", "first")],
        )
        .await
        .unwrap();
    let first = take(&mut missing, 1).await;
    assert_eq!(first[0].version, StreamVersion(0));
}

/// A subscriber that does not read does not hold writers back; when it reads again it catches up
/// from storage, in order, then goes on live.
pub async fn slow_subscriber_catches_up<S: EventStore, Fut: Future<Output = S>>(
    factory: impl Fn() -> Fut,
) {
    let store = Arc::new(factory().await);
    let mut idle = store
        .subscribe_all(None, SubscriptionFilter::all())
        .await
        .unwrap();
    let mut first = Vec::new();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let s = stream(&format!("slow-{w}"));
                for _ in 0..250 {
                    store
                        .append(&s, ExpectedVersion::Any, vec![ev("T", "x")])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    // The writers finish while the subscriber is not polled at all.
    let finished = async {
        for w in writers {
            w.await.unwrap();
        }
    };
    if tokio::time::timeout(TIMEOUT, finished).await.is_err() {
        panic!("writers were held back by a subscriber that does not read");
    }
    first.extend(take(&mut idle, 1000).await);
    let positions: Vec<u64> = first.iter().map(|e| e.position.0).collect();
    assert_eq!(positions, (0..1000).collect::<Vec<_>>());
    let r = store
        .append(
            &stream("slow-0"),
            ExpectedVersion::Any,
            vec![ev("T", "live")],
        )
        .await
        .unwrap();
    assert_eq!(take(&mut idle, 1).await[0].position, r.first_position);
}

/// Runs every case, each on a fresh store.
pub async fn run_all<S: EventStore, Fut: Future<Output = S>>(factory: impl Fn() -> Fut) {
    expected_any(&factory).await;
    expected_no_stream(&factory).await;
    expected_stream_exists(&factory).await;
    expected_exact(&factory).await;
    idempotent_retry(&factory).await;
    idempotency_conflicts(&factory).await;
    invalid_appends(&factory).await;
    atomic_multi_event_append(&factory).await;
    read_stream_directions(&factory).await;
    read_all_order(&factory).await;
    read_until(&factory).await;
    subscribe_all_catch_up_then_live(&factory).await;
    subscribe_all_filters(&factory).await;
    subscribe_stream_catch_up_then_live(&factory).await;
    slow_subscriber_catches_up(&factory).await;
}
