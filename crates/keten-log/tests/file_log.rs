//! The file log on real files: reopen with and without the index checkpoint, the lock, concurrent
//! writers, group commit, and damage done to the files between runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use keten_log::{
    Direction, Durability, Error, EventId, EventStore, EventType, ExpectedVersion, FileLog,
    FileLogOptions, GlobalPosition, LogIo, ProposedEvent, ReadFrom, RecordedEvent, RecoveryMode,
    StreamId, StreamVersion, Until, verify_dir,
};
use keten_testkit::SmallFs;

fn event(n: u128, body: &str) -> ProposedEvent {
    ProposedEvent {
        id: EventId(uuid::Uuid::from_u128(n)),
        event_type: EventType::new("Happened").unwrap(),
        metadata: b"{}".to_vec(),
        payload: body.as_bytes().to_vec(),
    }
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

/// Small segments, so a few hundred events span many of them.
fn small() -> FileLogOptions {
    FileLogOptions {
        segment_size: 4096,
        ..FileLogOptions::default()
    }
}

async fn all(log: &FileLog) -> Vec<RecordedEvent> {
    log.read_all(
        ReadFrom::Start,
        Direction::Forward,
        usize::MAX,
        Until::Latest,
    )
    .await
    .unwrap()
}

/// Writes `n` single-event appends over three streams, then a three-event append; closes.
async fn populate(dir: &Path, n: u128) -> Vec<RecordedEvent> {
    let log = FileLog::open(dir, small()).await.unwrap();
    for i in 0..n {
        let s = stream(&format!("s-{}", i % 3));
        let r = log
            .append(
                &s,
                ExpectedVersion::Any,
                vec![event(i, &format!("body {i}"))],
            )
            .await
            .unwrap();
        assert_eq!(r.first_position, GlobalPosition(i as u64));
    }
    let batch = (0..3).map(|k| event(1000 + k, "batch")).collect();
    log.append(&stream("s-batch"), ExpectedVersion::NoStream, batch)
        .await
        .unwrap();
    let events = all(&log).await;
    log.close().await.unwrap();
    events
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// (start, end) of every record frame in a segment file.
fn frames(path: &Path) -> Vec<(u64, u64)> {
    let b = std::fs::read(path).unwrap();
    let mut at = 128usize;
    let mut out = Vec::new();
    while at + 4 <= b.len() {
        let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        out.push((at as u64, (at + 8 + len) as u64));
        at += 8 + len;
    }
    out
}

fn remove_checkpoint(dir: &Path) {
    std::fs::remove_file(dir.join("index.ckpt")).unwrap();
}

fn flip_bit(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 0x10;
    std::fs::write(path, b).unwrap();
}

#[track_caller]
fn assert_corrupt(r: Result<impl std::fmt::Debug, Error>, want_file: &Path, want_offset: u64) {
    match r {
        Err(Error::Corrupt { file, offset, .. }) => {
            assert_eq!(file, want_file, "file");
            assert_eq!(offset, want_offset, "offset");
        }
        other => panic!("expected Corrupt in {}, got {other:?}", want_file.display()),
    }
}

/// Collects warnings from every thread, for the tests that check what recovery logs.
fn captured_warnings() -> &'static Mutex<Vec<String>> {
    static LOG: OnceLock<&'static Mutex<Vec<String>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static Mutex<Vec<String>> = Box::leak(Box::default());
        let _ = tracing::subscriber::set_global_default(Capture(log));
        log
    })
}

struct Capture(&'static Mutex<Vec<String>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields(format!("{} ", event.metadata().level()));
        event.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn warnings_about(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    captured_warnings()
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains(&needle))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------- reopen and the index

async fn assert_reopens_intact(dir: &Path, events: &[RecordedEvent]) {
    let log = FileLog::open(dir, small()).await.unwrap();
    assert_eq!(all(&log).await, events);
    assert_eq!(log.verify().await.unwrap(), events.len() as u64);
    for s in ["s-0", "s-1", "s-2", "s-batch"] {
        let s = stream(s);
        let want: Vec<&RecordedEvent> = events.iter().filter(|e| e.stream == s).collect();
        let got = log
            .read_stream(
                &s,
                ReadFrom::Start,
                Direction::Forward,
                usize::MAX,
                Until::Latest,
            )
            .await
            .unwrap();
        assert_eq!(got.iter().collect::<Vec<_>>(), want);
        assert_eq!(
            log.stream_version(&s).await.unwrap(),
            Some(StreamVersion(want.len() as u64 - 1))
        );
    }
    // Commit times survived: "as it stood then" gives the same answer.
    let middle = &events[events.len() / 2];
    let then = log
        .read_all(
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Time(middle.committed_at),
        )
        .await
        .unwrap();
    let want: Vec<&RecordedEvent> = events
        .iter()
        .filter(|e| e.committed_at <= middle.committed_at)
        .collect();
    assert_eq!(then.iter().collect::<Vec<_>>(), want);
    assert_eq!(
        log.position_at(middle.committed_at).await.unwrap(),
        Some(want.last().unwrap().position)
    );
    // The id index survived: an old append retried returns its original result.
    let r = log
        .append(
            &stream("s-1"),
            ExpectedVersion::NoStream,
            vec![event(1, "body 1")],
        )
        .await
        .unwrap();
    assert_eq!(r.first_position, GlobalPosition(1));
    // And appends continue the chain.
    let next = log
        .append(
            &stream("s-0"),
            ExpectedVersion::Any,
            vec![event(5000, "after")],
        )
        .await
        .unwrap();
    assert_eq!(next.first_position.0, events.len() as u64);
    assert_eq!(log.verify().await.unwrap(), events.len() as u64 + 1);
    assert_eq!(log.stats().torn_bytes_dropped, 0);
    log.close().await.unwrap();
}

#[tokio::test]
async fn reopen_with_checkpoint_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let events = populate(dir.path(), 200).await;
    assert!(segments(dir.path()).len() > 5, "several segments");
    assert!(dir.path().join("index.ckpt").exists());
    assert_reopens_intact(dir.path(), &events).await;
}

#[tokio::test]
async fn reopen_without_checkpoint_rebuilds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let events = populate(dir.path(), 200).await;
    remove_checkpoint(dir.path());
    assert_reopens_intact(dir.path(), &events).await;
}

#[tokio::test]
async fn a_forged_checkpoint_is_caught_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let events = populate(dir.path(), 100).await;
    let ckpt = dir.path().join("index.ckpt");
    let mut b = std::fs::read(&ckpt).unwrap();
    // One chunk; its last row is the last event: give it another commit time and a valid CRC.
    let n = b.len();
    let time = n - 4 - 32 + 8;
    let t = u64::from_le_bytes(b[time..time + 8].try_into().unwrap()) + 1;
    b[time..time + 8].copy_from_slice(&t.to_le_bytes());
    let crc = crc32c::crc32c(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&ckpt, b).unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    match log.verify().await {
        Err(Error::Corrupt {
            position, reason, ..
        }) => {
            assert_eq!(position, events.last().unwrap().position);
            assert!(reason.contains("commit time"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    log.close().await.unwrap();
    assert_corrupt(verify_dir(dir.path()), &ckpt, (n - 4 - 32) as u64);
}

#[tokio::test]
async fn torn_checkpoint_chunk_uses_the_chunks_before_it() {
    captured_warnings();
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path(), 100).await;
    let ckpt = dir.path().join("index.ckpt");
    let first_chunk = std::fs::metadata(&ckpt).unwrap().len();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    for i in 0..50 {
        log.append(
            &stream("s-1"),
            ExpectedVersion::Any,
            vec![event(7000 + i, "more")],
        )
        .await
        .unwrap();
    }
    let events = all(&log).await;
    log.close().await.unwrap();
    let both = std::fs::metadata(&ckpt).unwrap().len();
    assert!(both > first_chunk, "the second close appended a chunk");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ckpt)
        .unwrap()
        .set_len((first_chunk + both) / 2)
        .unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    let warned = warnings_about(&ckpt);
    assert!(
        warned.iter().any(|w| w.contains("covered=103")),
        "{warned:?}"
    );
    assert_eq!(all(&log).await, events);
    log.close().await.unwrap();
    // The torn chunk was replaced: the whole file is good again.
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    assert_eq!(warnings_about(&ckpt).len(), warned.len(), "no new warning");
    assert_eq!(all(&log).await, events);
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_long_replay_writes_a_checkpoint_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let events = populate(dir.path(), 100).await;
    remove_checkpoint(dir.path());
    let options = FileLogOptions {
        checkpoint_interval: 50,
        ..small()
    };
    let log = FileLog::open(dir.path(), options).await.unwrap();
    assert!(dir.path().join("index.ckpt").exists());
    let image = tempfile::tempdir().unwrap();
    crash_image(dir.path(), image.path());
    log.close().await.unwrap();
    captured_warnings();
    let log = FileLog::open(image.path(), small()).await.unwrap();
    assert!(warnings_about(&image.path().join("index.ckpt")).is_empty());
    assert_eq!(all(&log).await, events);
    log.close().await.unwrap();
}

#[tokio::test]
async fn corrupt_or_stale_checkpoint_is_ignored_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let events = populate(dir.path(), 200).await;
    let ckpt = dir.path().join("index.ckpt");
    let len = std::fs::metadata(&ckpt).unwrap().len();
    flip_bit(&ckpt, len / 2);
    assert_reopens_intact(dir.path(), &events).await;
    // A checkpoint from an earlier state of the log is only a shorter prefix: still usable.
    let old = std::fs::read(&ckpt).unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    for i in 0..50 {
        log.append(
            &stream("s-2"),
            ExpectedVersion::Any,
            vec![event(6000 + i, "more")],
        )
        .await
        .unwrap();
    }
    let events = all(&log).await;
    log.close().await.unwrap();
    std::fs::write(&ckpt, old).unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    assert_eq!(all(&log).await, events);
    log.close().await.unwrap();
}

/// Copies a live directory: what a crash would leave, page cache included.
fn crash_image(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

#[tokio::test]
async fn crash_image_opens_from_the_periodic_checkpoint() {
    captured_warnings();
    let dir = tempfile::tempdir().unwrap();
    let options = || FileLogOptions {
        checkpoint_interval: 20,
        ..small()
    };
    let log = FileLog::open(dir.path(), options()).await.unwrap();
    for i in 0..300 {
        let s = stream(&format!("s-{}", i % 4));
        log.append(&s, ExpectedVersion::Any, vec![event(i, "x")])
            .await
            .unwrap();
    }
    let events = all(&log).await;
    // Chunks are written by a background thread: an image taken amid one has a torn chunk
    // (that case is `torn_checkpoint_chunk_uses_the_chunks_before_it`).
    log.checkpoint_settled().await;
    let image = tempfile::tempdir().unwrap();
    crash_image(dir.path(), image.path());
    log.close().await.unwrap();
    assert!(
        image.path().join("index.ckpt").exists(),
        "written at a roll"
    );
    let last = segments(image.path()).pop().unwrap();
    assert!(
        std::fs::metadata(&last).unwrap().len() >= 4096,
        "preallocated tail"
    );

    let log = FileLog::open(image.path(), options()).await.unwrap();
    assert!(
        warnings_about(&image.path().join("index.ckpt")).is_empty(),
        "the checkpoint was used"
    );
    assert_eq!(all(&log).await, events);
    assert_eq!(log.verify().await.unwrap(), 300);
    assert_eq!(log.stats().torn_bytes_dropped, 0);
    log.close().await.unwrap();
}

#[tokio::test]
async fn an_append_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    let big = "b".repeat(10_000);
    log.append(&stream("s"), ExpectedVersion::Any, vec![event(1, "small")])
        .await
        .unwrap();
    log.append(
        &stream("s"),
        ExpectedVersion::Any,
        vec![event(2, &big), event(3, &big)],
    )
    .await
    .unwrap();
    log.append(&stream("s"), ExpectedVersion::Any, vec![event(4, "after")])
        .await
        .unwrap();
    let too_big = ProposedEvent {
        payload: vec![0; (16 << 20) + 1],
        ..event(5, "")
    };
    assert!(matches!(
        log.append(&stream("s"), ExpectedVersion::Any, vec![too_big])
            .await,
        Err(Error::InvalidAppend(_))
    ));
    let events = all(&log).await;
    log.close().await.unwrap();
    assert_eq!(segments(dir.path()).len(), 3);
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    assert_eq!(all(&log).await, events);
    assert_eq!(events[1].payload.len(), 10_000);
    assert_eq!(log.verify().await.unwrap(), 4);
    log.close().await.unwrap();
}

#[tokio::test]
async fn second_opener_is_refused_until_close() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    match FileLog::open(dir.path(), small()).await {
        Err(Error::Locked { lock, .. }) => assert_eq!(lock, dir.path().join("LOCK")),
        other => panic!("expected Locked, got {other:?}"),
    }
    log.close().await.unwrap();
    FileLog::open(dir.path(), small())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
}

#[tokio::test]
async fn closed_log_refuses_appends_and_ends_subscriptions() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    let other = log.clone();
    log.append(&stream("a"), ExpectedVersion::Any, vec![event(1, "x")])
        .await
        .unwrap();
    let mut sub = log
        .subscribe_all(None, keten_log::SubscriptionFilter::all())
        .await
        .unwrap();
    log.close().await.unwrap();
    assert!(matches!(
        other
            .append(&stream("a"), ExpectedVersion::Any, vec![event(2, "y")])
            .await,
        Err(Error::Closed)
    ));
    assert_eq!(
        sub.next().await.unwrap().unwrap().position,
        GlobalPosition(0)
    );
    assert!(
        sub.next().await.is_none(),
        "the subscription ends with the log"
    );
}

// ---------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exact_appends_one_winner_per_version() {
    one_winner_per_version(small()).await;
}

/// The same on a log in `Durability::Interval`, whose appends run in the callers' threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exact_appends_one_winner_per_version_interval() {
    one_winner_per_version(FileLogOptions {
        durability: Durability::Interval(Duration::from_millis(5)),
        ..small()
    })
    .await;
}

async fn one_winner_per_version(options: FileLogOptions) {
    const TASKS: u64 = 16;
    const VERSIONS: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), options).await.unwrap();
    let s = stream("contended");
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let log = log.clone();
            let s = s.clone();
            tokio::spawn(async move {
                let mut won = Vec::new();
                for v in 0..VERSIONS {
                    let expected = match v {
                        0 => ExpectedVersion::NoStream,
                        v => ExpectedVersion::Exact(StreamVersion(v - 1)),
                    };
                    let id = (t as u128) << 32 | v as u128;
                    match log
                        .append(&s, expected, vec![event(id, &format!("{t}:{v}"))])
                        .await
                    {
                        Ok(r) => {
                            assert_eq!(r.first_version, StreamVersion(v));
                            won.push(v);
                        }
                        Err(Error::WrongExpectedVersion { actual, .. }) => {
                            assert!(actual >= Some(StreamVersion(v)), "lost to a later version");
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                (t, won)
            })
        })
        .collect();
    let mut winner = BTreeMap::new();
    for task in tasks {
        let (t, won) = task.await.unwrap();
        for v in won {
            assert!(winner.insert(v, t).is_none(), "version {v} won twice");
        }
    }
    assert_eq!(winner.len() as u64, VERSIONS, "every version has a winner");
    let events = log
        .read_stream(
            &s,
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await
        .unwrap();
    assert_eq!(events.len() as u64, VERSIONS, "nothing skipped or doubled");
    for e in &events {
        let t = winner[&e.version.0];
        assert_eq!(e.payload, format!("{t}:{}", e.version.0).as_bytes());
    }
    assert_eq!(log.verify().await.unwrap(), VERSIONS);
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_and_verify_see_gap_free_prefixes_while_writers_roll_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    let writers: Vec<_> = (0..4u128)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let s = stream(&format!("w-{w}"));
                for i in 0..100u128 {
                    let batch = (0..1 + i % 3)
                        .map(|k| event(w << 40 | i << 8 | k, "x"))
                        .collect();
                    log.append(&s, ExpectedVersion::Any, batch).await.unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut rounds = 0;
            loop {
                let head = log.head().await.unwrap();
                let events = all(&log).await;
                let positions: Vec<u64> = events.iter().map(|e| e.position.0).collect();
                assert_eq!(positions, (0..positions.len() as u64).collect::<Vec<_>>());
                assert!(positions.len() as u64 >= head.map_or(0, |h| h.0 + 1));
                let verified = log.verify().await.unwrap();
                assert!(verified >= positions.len() as u64);
                rounds += 1;
                if positions.len() == 4 * 199 {
                    return rounds;
                }
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    assert!(reader.await.unwrap() >= 1);
    assert!(segments(dir.path()).len() > 10);
    log.close().await.unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.events, 4 * 199);
    assert_eq!(report.head, Some(GlobalPosition(4 * 199 - 1)));
    assert_eq!(report.segments, segments(dir.path()).len() as u64);
    assert!(report.torn_tail.is_none());
    assert_eq!(report.checkpoint_events, Some(4 * 199));
    assert_eq!(report.head_hash.len(), 64);
    assert_eq!(
        verify_dir(dir.path()).unwrap(),
        report,
        "verify changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), FileLogOptions::default())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64u128)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let s = stream(&format!("writer-{t}"));
                for i in 0..10u128 {
                    log.append(&s, ExpectedVersion::Any, vec![event(t << 32 | i, "x")])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.appends, 640);
    assert_eq!(stats.events, 640);
    assert!(
        stats.syncs < stats.appends / 2,
        "group commit: {} flushes for {} appends",
        stats.syncs,
        stats.appends
    );
    log.close().await.unwrap();
}

/// After a burst of writers, the group commit waits for them to come back; when most do not, the
/// one that does must still be answered (after a bounded wait), and every append in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_writer_after_a_burst_is_not_stalled() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), FileLogOptions::default())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16u128)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let s = stream(&format!("burst-{t}"));
                log.append(&s, ExpectedVersion::NoStream, vec![event(t, "x")])
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let lone = stream("lone");
    for i in 0..50u64 {
        let expected = match i {
            0 => ExpectedVersion::NoStream,
            _ => ExpectedVersion::Exact(StreamVersion(i - 1)),
        };
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            log.append(&lone, expected, vec![event(1000 + i as u128, "y")]),
        )
        .await
        .expect("an append waits for writers that never come back only briefly")
        .unwrap();
        assert_eq!(r.first_version, StreamVersion(i));
        assert_eq!(r.first_position, GlobalPosition(16 + i));
    }
    let stats = log.stats();
    assert_eq!(stats.appends, 66);
    assert_eq!(all(&log).await.len(), 66);
    assert_eq!(log.verify().await.unwrap(), 66);
    log.close().await.unwrap();
}

// ---------------------------------------------------------------- damage

#[tokio::test]
async fn torn_write_at_the_tail_is_cut_and_logged() {
    captured_warnings();
    let dir = tempfile::tempdir().unwrap();
    let events = populate(dir.path(), 100).await;
    let last = segments(dir.path()).pop().unwrap();
    let (start, end) = *frames(&last).last().unwrap();
    // A crash in the middle of writing the next record: half a frame after the data, then the
    // preallocated zeros.
    let mut bytes = std::fs::read(&last).unwrap();
    let half = bytes[start as usize..end as usize].to_vec();
    let torn = &half[..half.len() / 2];
    bytes.extend_from_slice(torn);
    bytes.resize(bytes.len() + 4096, 0);
    std::fs::write(&last, &bytes).unwrap();
    remove_checkpoint(dir.path());
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.events, events.len() as u64);
    let tail = report.torn_tail.expect("verify reports the torn tail");
    assert_eq!((tail.offset, tail.bytes), (end, torn.len() as u64));

    let log = FileLog::open(dir.path(), small()).await.unwrap();
    assert_eq!(log.stats().torn_bytes_dropped, torn.len() as u64);
    assert_eq!(all(&log).await, events);
    let warned = warnings_about(&last);
    assert!(
        warned
            .iter()
            .any(|w| w.contains(&format!("bytes_dropped={}", torn.len()))),
        "{warned:?}"
    );
    log.append(
        &stream("s-0"),
        ExpectedVersion::Any,
        vec![event(9999, "after")],
    )
    .await
    .unwrap();
    assert_eq!(log.verify().await.unwrap(), events.len() as u64 + 1);
    log.close().await.unwrap();
    assert!(verify_dir(dir.path()).unwrap().torn_tail.is_none());
}

#[tokio::test]
async fn truncated_mid_record_recovers_dropping_the_whole_torn_append() {
    let dir = tempfile::tempdir().unwrap();
    let events = populate(dir.path(), 100).await;
    let last = segments(dir.path()).pop().unwrap();
    let f = frames(&last);
    // The last append has three events; cut inside its third: the first two must go too.
    let (third_start, third_end) = f[f.len() - 1];
    let cut = third_start + (third_end - third_start) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(cut)
        .unwrap();
    // With the checkpoint, these bytes were acknowledged: losing them is refused.
    assert_corrupt(FileLog::open(dir.path(), small()).await, &last, cut);
    // Without it (a crash before any checkpoint), this is a torn tail.
    remove_checkpoint(dir.path());
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    let (kept_end, _) = f[f.len() - 3];
    assert_eq!(log.stats().torn_bytes_dropped, cut - kept_end);
    assert_eq!(all(&log).await, events[..events.len() - 3]);
    assert_eq!(log.stream_version(&stream("s-batch")).await.unwrap(), None);
    log.close().await.unwrap();
}

#[tokio::test]
async fn hole_inside_the_last_write_is_a_torn_write() {
    // Power loss can persist a later page of the last write and not an earlier one. The last
    // append (three events) was one write; lose its middle record.
    let dir = tempfile::tempdir().unwrap();
    let events = populate(dir.path(), 100).await;
    let last = segments(dir.path()).pop().unwrap();
    let f = frames(&last);
    let (start, end) = f[f.len() - 2];
    let mut bytes = std::fs::read(&last).unwrap();
    bytes[start as usize..end as usize].fill(0);
    std::fs::write(&last, bytes).unwrap();
    remove_checkpoint(dir.path());
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    assert_eq!(all(&log).await, events[..events.len() - 3]);
    assert!(log.stats().torn_bytes_dropped > 0);
    log.close().await.unwrap();
}

#[tokio::test]
async fn preallocated_zeros_after_a_crash_are_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let events = populate(dir.path(), 100).await;
    let last = segments(dir.path()).pop().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(4096 * 4)
        .unwrap();
    remove_checkpoint(dir.path());
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    assert_eq!(log.stats().torn_bytes_dropped, 0);
    assert_eq!(all(&log).await, events);
    log.close().await.unwrap();
}

#[tokio::test]
async fn bit_flip_in_an_old_record_is_refused_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let events = populate(dir.path(), 200).await;
    let segs = segments(dir.path());
    let victim = &segs[2];
    let (start, end) = frames(victim)[3];
    let position = {
        // The position of that record: count the frames of the segments before it.
        let before: usize = segs[..2].iter().map(|s| frames(s).len()).sum();
        (before + 3) as u64
    };
    flip_bit(victim, (start + end) / 2);

    // With the checkpoint, open trusts the covered part (that is what makes it fast), but the
    // record itself and a full verify refuse it.
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    let read = log
        .read_all(
            ReadFrom::At(GlobalPosition(position)),
            Direction::Forward,
            1,
            Until::Latest,
        )
        .await;
    assert_corrupt(read, victim, start);
    match log.verify().await {
        Err(Error::Corrupt {
            file,
            offset,
            position: p,
            ..
        }) => {
            assert_eq!(
                (file, offset, p),
                (victim.clone(), start, GlobalPosition(position))
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    log.close().await.unwrap();
    assert_corrupt(verify_dir(dir.path()), victim, start);
    // Asked to check everything on open, it refuses even with the checkpoint.
    let full = FileLogOptions {
        full_check_on_open: true,
        ..small()
    };
    assert_corrupt(FileLog::open(dir.path(), full).await, victim, start);

    // Without a checkpoint, open walks the log and refuses.
    remove_checkpoint(dir.path());
    match FileLog::open(dir.path(), small()).await {
        Err(Error::Corrupt {
            file,
            offset,
            position: p,
            reason,
        }) => {
            assert_eq!(
                (file, offset, p),
                (victim.clone(), start, GlobalPosition(position))
            );
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let _ = events;
}

#[tokio::test]
async fn missing_middle_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path(), 200).await;
    let segs = segments(dir.path());
    std::fs::remove_file(&segs[3]).unwrap();
    assert_corrupt(FileLog::open(dir.path(), small()).await, &segs[3], 0);
    assert_corrupt(verify_dir(dir.path()), &segs[3], 0);
    remove_checkpoint(dir.path());
    assert_corrupt(FileLog::open(dir.path(), small()).await, &segs[3], 0);
}

#[tokio::test]
async fn missing_last_segment_is_refused_when_the_checkpoint_saw_it() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path(), 200).await;
    let segs = segments(dir.path());
    std::fs::remove_file(segs.last().unwrap()).unwrap();
    assert!(matches!(
        FileLog::open(dir.path(), small()).await,
        Err(Error::Corrupt { .. })
    ));
}

#[tokio::test]
async fn garbage_in_the_last_segment_followed_by_valid_records_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path(), 100).await;
    let last = segments(dir.path()).pop().unwrap();
    let f = frames(&last);
    assert!(f.len() >= 4);
    let (start, end) = f[1];
    let mut bytes = std::fs::read(&last).unwrap();
    for b in &mut bytes[start as usize..end as usize] {
        *b = 0xA5;
    }
    std::fs::write(&last, bytes).unwrap();
    remove_checkpoint(dir.path());
    match FileLog::open(dir.path(), small()).await {
        Err(Error::Corrupt {
            file,
            offset,
            reason,
            ..
        }) => {
            assert_eq!((file, offset), (last.clone(), start));
            assert!(reason.contains("valid record follows"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Zeroed instead (a hole): the same.
    let mut bytes = std::fs::read(&last).unwrap();
    for b in &mut bytes[start as usize..end as usize] {
        *b = 0;
    }
    std::fs::write(&last, bytes).unwrap();
    assert_corrupt(FileLog::open(dir.path(), small()).await, &last, start);
}

#[tokio::test]
async fn reordered_records_break_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path(), 200).await;
    let segs = segments(dir.path());
    let victim = &segs[1];
    let f = frames(victim);
    // Two records of equal length, swapped in place: every checksum still holds.
    let (a, b) = (0..f.len() - 1)
        .map(|i| (f[i], f[i + 1]))
        .find(|(a, b)| a.1 - a.0 == b.1 - b.0)
        .expect("two neighbours of equal length");
    let mut bytes = std::fs::read(victim).unwrap();
    let ra = bytes[a.0 as usize..a.1 as usize].to_vec();
    let rb = bytes[b.0 as usize..b.1 as usize].to_vec();
    bytes[a.0 as usize..a.1 as usize].copy_from_slice(&rb);
    bytes[b.0 as usize..b.1 as usize].copy_from_slice(&ra);
    std::fs::write(victim, bytes).unwrap();
    assert_corrupt(verify_dir(dir.path()), victim, a.0);
    remove_checkpoint(dir.path());
    assert_corrupt(FileLog::open(dir.path(), small()).await, victim, a.0);
}

#[tokio::test]
async fn damaged_segment_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path(), 200).await;
    let segs = segments(dir.path());
    flip_bit(&segs[1], 20);
    assert_corrupt(FileLog::open(dir.path(), small()).await, &segs[1], 0);
}

#[tokio::test]
async fn refuse_mode_does_not_cut_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path(), 50).await;
    let last = segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&[7; 40]);
    std::fs::write(&last, &bytes).unwrap();
    remove_checkpoint(dir.path());
    let strict = FileLogOptions {
        recovery: RecoveryMode::Refuse,
        ..small()
    };
    assert!(matches!(
        FileLog::open(dir.path(), strict).await,
        Err(Error::Corrupt { .. })
    ));
    assert_eq!(std::fs::read(&last).unwrap(), bytes, "nothing changed");
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    assert_eq!(log.stats().torn_bytes_dropped, 40);
    log.close().await.unwrap();
}

/// Injects the faults a disk can produce, each switched on and off by a test.
#[derive(Debug, Default)]
struct Faults {
    /// `write` fails with ENOSPC, having written nothing.
    full_on_write: AtomicBool,
    /// `write` writes the first half of its buffer, then fails with ENOSPC (a short write).
    full_half_way: AtomicBool,
    /// Reserving a new segment's space fails with ENOSPC.
    full_on_preallocate: AtomicBool,
    /// `fdatasync` fails with ENOSPC (delayed allocation, thin provisioning, NFS).
    full_on_flush: AtomicBool,
    /// `fdatasync` fails with EIO.
    flush_fails: AtomicBool,
    /// Cutting a file (`set_len`) fails with EIO.
    cut_fails: AtomicBool,
}

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

impl LogIo for Faults {
    fn write_at(&self, file: &std::fs::File, buf: &[u8], offset: u64) -> std::io::Result<()> {
        if self.full_on_write.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(ENOSPC));
        }
        if self.full_half_way.load(Ordering::SeqCst) {
            std::os::unix::fs::FileExt::write_all_at(file, &buf[..buf.len() / 2], offset)?;
            return Err(std::io::Error::from_raw_os_error(ENOSPC));
        }
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
    fn preallocate(&self, file: &std::fs::File, len: u64) -> std::io::Result<()> {
        if self.full_on_preallocate.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(ENOSPC));
        }
        keten_log::StdIo.preallocate(file, len)
    }
    fn set_len(&self, file: &std::fs::File, len: u64) -> std::io::Result<()> {
        if self.cut_fails.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(EIO));
        }
        file.set_len(len)
    }
    fn sync_data(&self, file: &std::fs::File) -> std::io::Result<()> {
        if self.full_on_flush.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(ENOSPC));
        }
        if self.flush_fails.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(EIO));
        }
        file.sync_data()
    }
}

#[track_caller]
fn assert_storage_full<T: std::fmt::Debug>(r: Result<T, Error>, dir: &Path) {
    match r {
        Err(e @ Error::StorageFull { .. }) => {
            let Error::StorageFull { path, .. } = &e else {
                unreachable!()
            };
            assert!(path.starts_with(dir), "{e}");
            let message = e.to_string();
            assert!(
                message.contains("storage full") && message.contains(&path.display().to_string()),
                "the message names the cause and the file: {message}"
            );
        }
        other => panic!("expected StorageFull, got {other:?}"),
    }
}

/// A full disk at `write` (nothing written, or half of the group written), or at `fdatasync`:
/// the append fails with `StorageFull`, nothing unacknowledged is visible, and once there is
/// room the log takes appends again without a reopen; a retry of the failed append is stored
/// once, and the files hold no trace of the failed write.
#[tokio::test]
async fn full_disk_is_storage_full_loses_nothing_and_appends_resume() {
    for (fault, what) in [
        (0, "write fails"),
        (1, "short write, then full"),
        (2, "flush fails with ENOSPC"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(Faults::default());
        let switch = |on: bool| {
            let flag = match fault {
                0 => &disk.full_on_write,
                1 => &disk.full_half_way,
                _ => &disk.full_on_flush,
            };
            flag.store(on, Ordering::SeqCst);
        };
        let options = || FileLogOptions {
            io: disk.clone(),
            ..small()
        };
        let log = FileLog::open(dir.path(), options()).await.unwrap();
        for i in 0..30 {
            log.append(&stream("s"), ExpectedVersion::Any, vec![event(i, "ok")])
                .await
                .unwrap();
        }
        let acknowledged = all(&log).await;
        switch(true);
        let lost = vec![event(100, "lost"), event(101, "lost too")];
        let r = log
            .append(&stream("s"), ExpectedVersion::Any, lost.clone())
            .await;
        assert_storage_full(r, dir.path());
        assert_eq!(
            all(&log).await,
            acknowledged,
            "{what}: nothing unacknowledged is visible"
        );
        // Still full: still refused, with the same clear error (not a poisoned log).
        let r = log
            .append(&stream("s"), ExpectedVersion::Any, vec![event(102, "x")])
            .await;
        assert_storage_full(r, dir.path());
        switch(false);
        let r = log
            .append(
                &stream("s"),
                ExpectedVersion::Exact(StreamVersion(29)),
                lost.clone(),
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: appends resume once there is room: {e}"));
        assert_eq!(r.first_position, GlobalPosition(30), "{what}");
        // The retry of the acknowledged append is answered from the log, not stored twice.
        let again = log
            .append(&stream("s"), ExpectedVersion::Any, lost.clone())
            .await
            .unwrap();
        assert_eq!(again.first_position, GlobalPosition(30));
        assert_eq!(log.verify().await.unwrap(), 32, "{what}");
        log.close().await.unwrap();
        verify_dir(dir.path()).unwrap();
        let log = FileLog::open(dir.path(), small()).await.unwrap();
        assert_eq!(
            log.stats().torn_bytes_dropped,
            0,
            "{what}: the failed write was cut back at once, not left for recovery"
        );
        let events = all(&log).await;
        assert_eq!(events.len(), 32);
        assert_eq!(events[..30], acknowledged[..]);
        assert_eq!(
            events[30..].iter().map(|e| e.id).collect::<Vec<_>>(),
            lost.iter().map(|e| e.id).collect::<Vec<_>>()
        );
        log.close().await.unwrap();
    }
}

/// When the failed write cannot be cut back, the log stops taking appends until it is reopened,
/// and the open cuts the leftover as the torn tail it is, keeping every acknowledged event.
#[tokio::test]
async fn a_full_disk_write_that_cannot_be_cut_back_is_a_torn_tail_for_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(Faults::default());
    let log = FileLog::open(
        dir.path(),
        FileLogOptions {
            io: disk.clone(),
            ..FileLogOptions::default()
        },
    )
    .await
    .unwrap();
    for i in 0..10 {
        log.append(&stream("s"), ExpectedVersion::Any, vec![event(i, "ok")])
            .await
            .unwrap();
    }
    let acknowledged = all(&log).await;
    disk.full_half_way.store(true, Ordering::SeqCst);
    disk.cut_fails.store(true, Ordering::SeqCst);
    let big: Vec<ProposedEvent> = (0..20).map(|k| event(100 + k, "lost")).collect();
    let r = log.append(&stream("s"), ExpectedVersion::Any, big).await;
    assert_storage_full(r, dir.path());
    disk.full_half_way.store(false, Ordering::SeqCst);
    disk.cut_fails.store(false, Ordering::SeqCst);
    let r = log
        .append(&stream("s"), ExpectedVersion::Any, vec![event(200, "x")])
        .await;
    assert!(
        matches!(&r, Err(Error::Backend(m)) if m.contains("reopen")),
        "{r:?}"
    );
    assert_eq!(all(&log).await, acknowledged);
    log.close().await.unwrap();
    let log = FileLog::open(dir.path(), FileLogOptions::default())
        .await
        .unwrap();
    assert!(
        log.stats().torn_bytes_dropped > 0,
        "the half write was cut by recovery"
    );
    assert_eq!(all(&log).await, acknowledged);
    log.append(&stream("s"), ExpectedVersion::Any, vec![event(200, "x")])
        .await
        .unwrap();
    log.close().await.unwrap();
    verify_dir(dir.path()).unwrap();
}

/// Many appenders when the disk fills: every append of the failing group gets `StorageFull`
/// (none an acknowledgement for bytes that did not make it), and they all go through afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_append_of_a_group_that_meets_a_full_disk_is_storage_full() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(Faults::default());
    let log = FileLog::open(
        dir.path(),
        FileLogOptions {
            io: disk.clone(),
            ..small()
        },
    )
    .await
    .unwrap();
    disk.full_on_flush.store(true, Ordering::SeqCst);
    let appends = (0..16u128).map(|k| {
        let log = log.clone();
        tokio::spawn(async move {
            log.append(
                &stream(&format!("s-{k}")),
                ExpectedVersion::NoStream,
                vec![event(k, "x")],
            )
            .await
        })
    });
    for r in futures::future::join_all(appends.collect::<Vec<_>>()).await {
        assert_storage_full(r.unwrap(), dir.path());
    }
    assert!(all(&log).await.is_empty());
    disk.full_on_flush.store(false, Ordering::SeqCst);
    for k in 0..16u128 {
        log.append(
            &stream(&format!("s-{k}")),
            ExpectedVersion::NoStream,
            vec![event(k, "x")],
        )
        .await
        .unwrap();
    }
    assert_eq!(log.verify().await.unwrap(), 16);
    log.close().await.unwrap();
    verify_dir(dir.path()).unwrap();
}

/// Not a timed test (the benchmark measures this): a quick look at open times, run by hand with
/// `cargo test -p keten-log --release --test file_log -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn open_time_of_a_large_log() {
    let n: u128 = std::env::var("KETEN_EVENTS").map_or(1_000_000, |v| v.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let options = || FileLogOptions {
        durability: keten_log::Durability::NoSyncUnsafe,
        ..FileLogOptions::default()
    };
    let log = FileLog::open(dir.path(), options()).await.unwrap();
    let t = std::time::Instant::now();
    let payload = "x".repeat(300);
    for b in 0..n / 100 {
        let s = stream(&format!("stream-{}", b % 1000));
        let batch = (0..100).map(|k| event(b * 100 + k, &payload)).collect();
        log.append(&s, ExpectedVersion::Any, batch).await.unwrap();
    }
    println!("wrote {n} events in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    log.close().await.unwrap();
    println!("close (checkpoint) {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let log = FileLog::open(dir.path(), options()).await.unwrap();
    println!("open with checkpoint {:?}", t.elapsed());
    let rss = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or_default()
        .to_string();
    println!("after open: {rss}");
    log.close().await.unwrap();
    remove_checkpoint(dir.path());
    let t = std::time::Instant::now();
    let log = FileLog::open(dir.path(), options()).await.unwrap();
    println!("open rebuilding the index {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let s = stream("stream-7");
    let events = log
        .read_stream(
            &s,
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await
        .unwrap();
    println!("read a stream of {} events {:?}", events.len(), t.elapsed());
    let t = std::time::Instant::now();
    assert_eq!(log.verify().await.unwrap(), n as u64);
    println!("verify {:?}", t.elapsed());
    log.close().await.unwrap();
}

/// A segment's preallocation is an optimisation: where the disk has no room for a whole
/// segment, a new one is made without it and appends go on into what space there is.
#[tokio::test]
async fn no_room_to_preallocate_a_segment_still_takes_appends() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(Faults::default());
    // The fallocate path: without a spare, every segment is made at the roll.
    let options = FileLogOptions {
        io: disk.clone(),
        spare_segments: false,
        ..small()
    };
    let log = FileLog::open(dir.path(), options).await.unwrap();
    disk.full_on_preallocate.store(true, Ordering::SeqCst);
    for i in 0..200 {
        log.append(&stream("s"), ExpectedVersion::Any, vec![event(i, "fill")])
            .await
            .unwrap();
    }
    let segs = segments(dir.path());
    assert!(segs.len() > 3, "the appends spanned new segments");
    let active = std::fs::metadata(segs.last().unwrap()).unwrap().len();
    assert!(active < 4096, "the new segments were not preallocated");
    assert!(
        !std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .path()
            .to_string_lossy()
            .ends_with(".tmp")),
        "no half-made segment left behind"
    );
    assert_eq!(log.verify().await.unwrap(), 200);
    log.close().await.unwrap();
    // And a log whose active segment cannot be preallocated again still opens.
    let log = FileLog::open(
        dir.path(),
        FileLogOptions {
            io: disk.clone(),
            ..small()
        },
    )
    .await
    .unwrap();
    assert_eq!(all(&log).await.len(), 200);
    log.close().await.unwrap();
    verify_dir(dir.path()).unwrap();
}

#[tokio::test]
async fn failed_flush_is_reported_and_stops_appends_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(Faults::default());
    let options = FileLogOptions {
        io: disk.clone(),
        ..small()
    };
    let log = FileLog::open(dir.path(), options).await.unwrap();
    for i in 0..5 {
        log.append(&stream("s"), ExpectedVersion::Any, vec![event(i, "ok")])
            .await
            .unwrap();
    }
    disk.flush_fails.store(true, Ordering::SeqCst);
    let failed = event(5, "unsure");
    let r = log
        .append(&stream("s"), ExpectedVersion::Any, vec![failed.clone()])
        .await;
    assert!(matches!(r, Err(Error::Io { .. })), "{r:?}");
    disk.flush_fails.store(false, Ordering::SeqCst);
    // After a failed flush the file's state is unknown: no more appends on this handle.
    assert!(
        log.append(&stream("s"), ExpectedVersion::Any, vec![event(6, "x")])
            .await
            .is_err()
    );
    assert_eq!(all(&log).await.len(), 5, "the failed append is not visible");
    log.close().await.unwrap();
    // Reopened, the log recovers. The failed append may or may not have reached the disk; a
    // retry with the same id settles it either way, without a duplicate.
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    let r = log
        .append(&stream("s"), ExpectedVersion::Any, vec![failed])
        .await
        .unwrap();
    assert_eq!(r.first_position, GlobalPosition(5));
    assert_eq!(all(&log).await.len(), 6);
    log.close().await.unwrap();
}

/// Not a timed test: the cost of an append over a bare `write` + `fdatasync` of the same bytes,
/// by hand with
/// `cargo test -p keten-log --release --test file_log append_overhead -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn append_overhead() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let payload = "x".repeat(300);
    let n = 2000u32;
    for round in 0..3 {
        let raw = std::fs::File::create(dir.path().join(format!("raw-{round}"))).unwrap();
        keten_log::StdIo.preallocate(&raw, 64 << 20).unwrap();
        let record = vec![7u8; 420];
        let t = std::time::Instant::now();
        for i in 0..n as u64 {
            raw.write_all_at(&record, i * 420).unwrap();
            raw.sync_data().unwrap();
        }
        let raw_per = t.elapsed() / n;
        for durability in [
            keten_log::Durability::NoSyncUnsafe,
            keten_log::Durability::Fsync,
        ] {
            let log = FileLog::open(
                dir.path().join(format!("{durability:?}-{round}")),
                FileLogOptions {
                    durability,
                    ..FileLogOptions::default()
                },
            )
            .await
            .unwrap();
            let s = stream("one");
            let t = std::time::Instant::now();
            for i in 0..n as u128 {
                log.append(&s, ExpectedVersion::Any, vec![event(i, &payload)])
                    .await
                    .unwrap();
            }
            let per = t.elapsed() / n;
            println!("round {round}: raw {raw_per:?}, keten {durability:?} {per:?} per append");
            log.close().await.unwrap();
        }
    }
}

/// Copies `from` to a fresh directory, without the checkpoint, so that open walks every record.
fn scratch_copy(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for path in segments(from) {
        std::fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
    }
    to
}

/// Opening a damaged copy either refuses, naming a segment file, or gives back a prefix of the
/// events, lacking at most `max_lost`: never altered events.
async fn open_damaged(
    dir: &Path,
    events: &[RecordedEvent],
    max_lost: usize,
    what: &str,
) -> Option<usize> {
    match FileLog::open(dir, small()).await {
        Err(Error::Corrupt { file, .. }) => {
            assert!(file.starts_with(dir), "{what}: names {}", file.display());
            None
        }
        Err(e) => panic!("{what}: unexpected error {e}"),
        Ok(log) => {
            let got = all(&log).await;
            assert!(
                got.len() <= events.len() && got[..] == events[..got.len()],
                "{what}: not a prefix of the original events"
            );
            assert!(
                got.len().saturating_add(max_lost) >= events.len(),
                "{what}: lost {} events",
                events.len() - got.len()
            );
            log.verify().await.unwrap();
            log.close().await.unwrap();
            Some(got.len())
        }
    }
}

#[tokio::test]
async fn many_bit_flips_never_alter_events_silently() {
    let pristine = tempfile::tempdir().unwrap();
    let events = populate(pristine.path(), 60).await;
    let files = segments(pristine.path());
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    let total: u64 = sizes.iter().sum();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let (mut refused, mut opened) = (0, 0);
    for _ in 0..150 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut at = seed % total;
        let k = sizes
            .iter()
            .position(|&s| {
                if at < s {
                    true
                } else {
                    at -= s;
                    false
                }
            })
            .unwrap();
        let copy = scratch_copy(pristine.path());
        let victim = copy.path().join(files[k].file_name().unwrap());
        flip_bit(&victim, at);
        let what = format!("bit flip in {} at {at}", victim.display());
        // A flip in the last record is a torn write; the last append has three.
        match open_damaged(copy.path(), &events, 3, &what).await {
            None => refused += 1,
            Some(n) => {
                // Only the very end of the last segment can be cut as a torn write.
                assert_eq!(k, files.len() - 1, "{what}: opened with {n} events");
                opened += 1;
            }
        }
    }
    assert!(refused > 100, "{refused} refused, {opened} opened");
}

#[tokio::test]
async fn truncation_anywhere_is_refused_or_a_torn_tail() {
    let pristine = tempfile::tempdir().unwrap();
    let events = populate(pristine.path(), 60).await;
    let files = segments(pristine.path());
    for (k, file) in files.iter().enumerate() {
        let len = std::fs::metadata(file).unwrap().len();
        for cut in (0..len).step_by(97) {
            let copy = scratch_copy(pristine.path());
            let victim = copy.path().join(file.file_name().unwrap());
            std::fs::OpenOptions::new()
                .write(true)
                .open(&victim)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let what = format!("{} cut at {cut}", victim.display());
            let last = k == files.len() - 1;
            // Without a checkpoint, whatever follows the cut in the last segment is a torn tail.
            match open_damaged(copy.path(), &events, usize::MAX, &what).await {
                None => assert!(!last || cut < 128, "{what}: a torn tail was refused"),
                Some(_) => assert!(last, "{what}: a shortened middle segment was accepted"),
            }
        }
    }
}

/// The segment files of `dir` and whether a half-made one (`*.tmp`) is there.
fn segment_files(dir: &Path) -> (usize, bool) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    (
        names.iter().filter(|n| n.ends_with(".log")).count(),
        // The spare segment is no half-made segment (tests of it look for it by name).
        names.iter().any(|n| n.ends_with(".tmp") && n != SPARE_FILE),
    )
}

/// The spare segment's file name (FORMAT.md).
const SPARE_FILE: &str = "spare.log.tmp";

/// On a real file system that fills up (tmpfs or ext4, 8 MiB, mostly taken by a filler file), eight
/// writers append until the disk is full. Each gets `StorageFull` naming the file; exactly the
/// acknowledged events are in the log; once the filler is deleted every writer's failed append
/// goes through on the same handle; and after a reopen `verify_dir` passes with every event there
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_full_file_system_fails_appends_and_loses_nothing_acknowledged_tmpfs() {
    a_real_full_file_system_fails_appends_and_loses_nothing_acknowledged(SmallFs::tmpfs(8 << 20))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_full_file_system_fails_appends_and_loses_nothing_acknowledged_ext4() {
    a_real_full_file_system_fails_appends_and_loses_nothing_acknowledged(SmallFs::ext4(8 << 20))
        .await;
}

async fn a_real_full_file_system_fails_appends_and_loses_nothing_acknowledged(fs: SmallFs) {
    let dir = fs.path().join("log");
    let options = || FileLogOptions {
        segment_size: 64 << 10,
        ..FileLogOptions::default()
    };
    let log = FileLog::open(&dir, options()).await.unwrap();
    // Room for eight preallocated segments and a bit: the ninth cannot be preallocated, and the
    // disk fills at a write in its middle.
    let filler = fs.fill("filler", (512 + 20) << 10);
    let writers = (0..8u128).map(|w| {
        let log = log.clone();
        let dir = dir.clone();
        tokio::spawn(async move {
            let s = stream(&format!("writer-{w}"));
            let mut acked: Vec<ProposedEvent> = Vec::new();
            for n in 0u128.. {
                // One to three events an append, about 1 KB each.
                let batch: Vec<ProposedEvent> = (0..1 + n % 3)
                    .map(|k| {
                        event(
                            w << 64 | n << 8 | k,
                            &format!("{w}/{n}/{k} {}", "x".repeat(1000)),
                        )
                    })
                    .collect();
                let expected = match acked.len() {
                    0 => ExpectedVersion::NoStream,
                    len => ExpectedVersion::Exact(StreamVersion(len as u64 - 1)),
                };
                match log.append(&s, expected, batch.clone()).await {
                    Ok(r) => {
                        assert_eq!(r.first_version, StreamVersion(acked.len() as u64));
                        acked.extend(batch);
                    }
                    Err(e) => {
                        assert_storage_full(Err::<(), _>(e), &dir);
                        return (s, acked, batch);
                    }
                }
            }
            unreachable!()
        })
    });
    let outcomes: Vec<(StreamId, Vec<ProposedEvent>, Vec<ProposedEvent>)> =
        futures::future::join_all(writers.collect::<Vec<_>>())
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
    let acked_total: usize = outcomes.iter().map(|(_, a, _)| a.len()).sum();
    assert!(
        acked_total > 300,
        "the log took {acked_total} events before the disk was full"
    );

    // Exactly the acknowledged events, with their content, in each stream's order.
    let check_streams = |events: Vec<RecordedEvent>, extra: bool| {
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(p, e)| e.position.0 == p as u64),
            "positions are gap-free"
        );
        let mut by_stream: BTreeMap<StreamId, Vec<(EventId, Vec<u8>)>> = BTreeMap::new();
        for e in events {
            by_stream
                .entry(e.stream)
                .or_default()
                .push((e.id, e.payload));
        }
        for (s, acked, failed) in &outcomes {
            let mut want: Vec<(EventId, Vec<u8>)> =
                acked.iter().map(|e| (e.id, e.payload.clone())).collect();
            if extra {
                want.extend(failed.iter().map(|e| (e.id, e.payload.clone())));
            }
            assert_eq!(by_stream.remove(s).unwrap_or_default(), want, "stream {s}");
        }
        assert!(by_stream.is_empty());
    };
    check_streams(all(&log).await, false);
    // Still full: an append that cannot fit in what is left gets the same clear refusal, not an
    // error of a log that gave up.
    let r = log
        .append(
            &stream("big"),
            ExpectedVersion::Any,
            vec![event(1, &"b".repeat(300 << 10))],
        )
        .await;
    assert_storage_full(r, &dir);

    fs.free(&filler);
    for (s, acked, failed) in &outcomes {
        log.append(
            s,
            ExpectedVersion::Exact(StreamVersion(acked.len() as u64 - 1)),
            failed.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("space is back, the append must go through: {e}"));
    }
    check_streams(all(&log).await, true);
    log.close().await.unwrap();
    let report = verify_dir(&dir).unwrap();
    assert!(report.torn_tail.is_none(), "{report:?}");
    let log = FileLog::open(&dir, options()).await.unwrap();
    assert_eq!(log.stats().torn_bytes_dropped, 0);
    check_streams(all(&log).await, true);
    log.close().await.unwrap();
}

/// The disk fills while the active segment still has preallocated room: appends go on into it,
/// and the one that needs a new segment fails with `StorageFull`, leaving no half-made segment.
/// With room again, the next segment is made and the log is whole.
#[tokio::test]
async fn a_real_full_file_system_at_a_new_segment_tmpfs() {
    a_real_full_file_system_at_a_new_segment(SmallFs::tmpfs(1 << 20)).await;
}

#[tokio::test]
async fn a_real_full_file_system_at_a_new_segment_ext4() {
    a_real_full_file_system_at_a_new_segment(SmallFs::ext4(4 << 20)).await;
}

async fn a_real_full_file_system_at_a_new_segment(fs: SmallFs) {
    let dir = fs.path().join("log");
    let log = FileLog::open(&dir, small()).await.unwrap();
    let filler = fs.fill("filler", 0);
    let mut acked = 0;
    let r = loop {
        match log
            .append(
                &stream("s"),
                ExpectedVersion::Any,
                vec![event(acked, &"y".repeat(300))],
            )
            .await
        {
            Ok(_) => acked += 1,
            Err(e) => break Err::<(), _>(e),
        }
    };
    assert_storage_full(r, &dir);
    assert!(acked >= 5, "the preallocated segment took {acked} appends");
    assert_eq!(
        segment_files(&dir),
        (1, false),
        "still one segment, no half-made one"
    );
    assert_eq!(all(&log).await.len() as u128, acked);
    fs.free(&filler);
    // The same size as the one refused, so that it needs the new segment too.
    log.append(
        &stream("s"),
        ExpectedVersion::Any,
        vec![event(acked, &"y".repeat(300))],
    )
    .await
    .unwrap();
    assert_eq!(segment_files(&dir), (2, false));
    log.close().await.unwrap();
    verify_dir(&dir).unwrap();
    let log = FileLog::open(&dir, small()).await.unwrap();
    assert_eq!(all(&log).await.len() as u128, acked + 1);
    log.close().await.unwrap();
}

/// The disk is full when the log opens, so its active segment cannot be preallocated: the log
/// opens anyway, and the disk fills in the middle of the segment, at a `write`. The partial write
/// is cut back at once (nothing for recovery to cut on the next open), and appends resume on the
/// same handle when there is room.
#[tokio::test]
async fn a_real_full_file_system_in_the_middle_of_a_segment_tmpfs() {
    a_real_full_file_system_in_the_middle_of_a_segment(SmallFs::tmpfs(1 << 20)).await;
}

#[tokio::test]
async fn a_real_full_file_system_in_the_middle_of_a_segment_ext4() {
    a_real_full_file_system_in_the_middle_of_a_segment(SmallFs::ext4(4 << 20)).await;
}

async fn a_real_full_file_system_in_the_middle_of_a_segment(fs: SmallFs) {
    let dir = fs.path().join("log");
    let log = FileLog::open(&dir, FileLogOptions::default())
        .await
        .unwrap();
    for i in 0..10 {
        log.append(&stream("s"), ExpectedVersion::Any, vec![event(i, "before")])
            .await
            .unwrap();
    }
    log.close().await.unwrap();
    let filler = fs.fill("filler", 0);
    let log = FileLog::open(&dir, FileLogOptions::default())
        .await
        .unwrap();
    let mut acked = 10;
    let r = loop {
        match log
            .append(
                &stream("s"),
                ExpectedVersion::Any,
                vec![event(acked, &"z".repeat(700))],
            )
            .await
        {
            Ok(_) => acked += 1,
            Err(e) => break Err::<(), _>(e),
        }
    };
    assert_storage_full(r, &dir);
    assert!(
        acked < 20,
        "without room, only the last page's slack took appends ({acked})"
    );
    assert_eq!(
        segment_files(&dir),
        (1, false),
        "the failure was in the active segment"
    );
    let visible = all(&log).await;
    assert_eq!(visible.len() as u128, acked);
    fs.free(&filler);
    log.append(
        &stream("s"),
        ExpectedVersion::Any,
        vec![event(acked, "room again")],
    )
    .await
    .unwrap();
    log.close().await.unwrap();
    verify_dir(&dir).unwrap();
    let log = FileLog::open(&dir, FileLogOptions::default())
        .await
        .unwrap();
    assert_eq!(log.stats().torn_bytes_dropped, 0);
    let events = all(&log).await;
    assert_eq!(events[..visible.len()], visible[..]);
    assert_eq!(events.len() as u128, acked + 1);
    log.close().await.unwrap();
}

/// Appends one ~300-byte event at a time until the log has started segment `until` (the roll
/// happens inside an append); returns how many were appended, counting from `from`.
async fn append_until_segment(log: &FileLog, dir: &Path, from: u128, until: usize) -> u128 {
    let mut n = from;
    while segments(dir).len() <= until {
        log.append(
            &stream("s"),
            ExpectedVersion::Any,
            vec![event(n, &"p".repeat(300))],
        )
        .await
        .unwrap();
        n += 1;
    }
    n - from
}

/// Where the records of a segment file end (zeros may follow).
fn data_end(path: &Path) -> u64 {
    frames(path).last().map_or(128, |f| f.1)
}

fn spare_path(dir: &Path) -> PathBuf {
    dir.join(SPARE_FILE)
}

/// Once half of the active segment is written, a background thread makes a zero-filled spare,
/// and the roll takes it: the new segment has the full size, zeros after its data, and the log
/// is whole after a reopen. The first segment of a new log is zero-filled at open.
#[tokio::test]
async fn the_roll_takes_the_zero_filled_spare() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    assert_eq!(log.stats().zero_filled_segments, 1, "the first segment");
    assert!(!log.spare_settled().await, "no spare before half a segment");
    let mut n = 0;
    while data_end(&segments(dir.path())[0]) < 2048 {
        n += 1;
        log.append(
            &stream("s"),
            ExpectedVersion::Any,
            vec![event(n, &"p".repeat(300))],
        )
        .await
        .unwrap();
    }
    // Half written: the writer asked for a spare.
    assert!(log.spare_settled().await, "a spare is ready");
    let spare = std::fs::read(spare_path(dir.path())).unwrap();
    assert_eq!(spare.len(), 4096);
    assert!(spare.iter().all(|&b| b == 0), "the spare is zeros");

    n += append_until_segment(&log, dir.path(), n + 1, 1).await;
    assert_eq!(
        log.stats().zero_filled_segments,
        2,
        "the roll took the spare"
    );
    let segs = segments(dir.path());
    let active = std::fs::read(&segs[1]).unwrap();
    assert_eq!(active.len(), 4096, "the spare's size, not cut");
    let data_end = frames(&segs[1]).last().unwrap().1 as usize;
    assert!(active[data_end..].iter().all(|&b| b == 0));
    // The next spare is asked for at once after a roll.
    assert!(log.spare_settled().await);
    assert!(spare_path(dir.path()).exists());
    assert_eq!(log.verify().await.unwrap(), n as u64);
    log.close().await.unwrap();
    assert!(!spare_path(dir.path()).exists(), "close removes the spare");
    verify_dir(dir.path()).unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    assert_eq!(all(&log).await.len() as u128, n);
    log.close().await.unwrap();
}

/// A spare left by a crash, whatever it holds (here, garbage that is neither zeros nor a valid
/// segment), is removed at open and never read as a segment.
#[tokio::test]
async fn a_leftover_spare_is_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    let n = append_until_segment(&log, dir.path(), 0, 1).await;
    log.close().await.unwrap();
    std::fs::write(spare_path(dir.path()), vec![0xA5u8; 4096]).unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    assert!(!spare_path(dir.path()).exists());
    assert_eq!(all(&log).await.len() as u128, n);
    let more = append_until_segment(&log, dir.path(), n, 2).await;
    assert_eq!(log.verify().await.unwrap(), (n + more) as u64);
    log.close().await.unwrap();
    verify_dir(dir.path()).unwrap();
}

/// Writes like the real disk, but "crashes" (the writer thread panics) right after it wrote and
/// flushed a new segment's header into the zero-filled spare, before the rename: the files are
/// left as a SIGKILL at that moment would leave them.
#[derive(Debug)]
struct CrashAfterSpareHeader {
    armed: AtomicBool,
    segment_size: u64,
}

impl LogIo for CrashAfterSpareHeader {
    fn write_at(&self, file: &std::fs::File, buf: &[u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)?;
        // A header (128 bytes at 0) written into a file that already has the segment's size
        // is a segment being started from a zero-filled file.
        if offset == 0
            && buf.len() == 128
            && file.metadata()?.len() == self.segment_size
            && self.armed.load(Ordering::SeqCst)
        {
            file.sync_data()?;
            panic!("simulated crash between the spare's header and its rename");
        }
        Ok(())
    }
}

/// A crash after the writer wrote the next segment's header into the spare and before it
/// renamed it: nothing acknowledged is lost, open removes the spare, and the log goes on
/// (including through rolls) as if the segment had never been started.
#[tokio::test]
async fn a_crash_between_the_spare_header_and_the_rename_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(CrashAfterSpareHeader {
        armed: AtomicBool::new(false),
        segment_size: 4096,
    });
    let options = FileLogOptions {
        io: io.clone(),
        ..small()
    };
    let log = FileLog::open(dir.path(), options).await.unwrap();
    let mut acked = 0u128;
    while data_end(&segments(dir.path())[0]) < 2048 {
        log.append(
            &stream("s"),
            ExpectedVersion::Any,
            vec![event(acked, &"p".repeat(300))],
        )
        .await
        .unwrap();
        acked += 1;
    }
    assert!(log.spare_settled().await);
    io.armed.store(true, Ordering::SeqCst);
    let crashed = loop {
        match log
            .append(
                &stream("s"),
                ExpectedVersion::Any,
                vec![event(acked, &"p".repeat(300))],
            )
            .await
        {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
    };
    assert!(
        !matches!(crashed, Error::StorageFull { .. }),
        "the writer died: {crashed}"
    );
    drop(log);
    assert_eq!(segments(dir.path()).len(), 1, "the rename never happened");
    let spare = std::fs::read(spare_path(dir.path())).unwrap();
    assert!(spare[..128].iter().any(|&b| b != 0), "the header is in it");

    // The dead writer thread may still be unwinding: the directory is free once it has dropped
    // its lock (as a killed process's lock goes with the process).
    let log = loop {
        match FileLog::open(dir.path(), small()).await {
            Err(Error::Locked { .. }) => tokio::task::yield_now().await,
            other => break other.unwrap(),
        }
    };
    assert!(!spare_path(dir.path()).exists(), "open removed the spare");
    let events = all(&log).await;
    assert_eq!(events.len() as u128, acked);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.id == EventId(uuid::Uuid::from_u128(i as u128)))
    );
    let more = append_until_segment(&log, dir.path(), acked, 2).await;
    assert_eq!(log.verify().await.unwrap(), (acked + more) as u64);
    log.close().await.unwrap();
    verify_dir(dir.path()).unwrap();
}

/// A write that fails for lack of space gives the spare's room back before the append is
/// answered; appends go on once there is room, and a spare is made again.
#[tokio::test]
async fn a_full_disk_discards_the_spare() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(Faults::default());
    let options = FileLogOptions {
        io: disk.clone(),
        ..small()
    };
    let log = FileLog::open(dir.path(), options).await.unwrap();
    let mut n = 0u128;
    while data_end(&segments(dir.path())[0]) < 2048 {
        log.append(&stream("s"), ExpectedVersion::Any, vec![event(n, "x")])
            .await
            .unwrap();
        n += 1;
    }
    assert!(log.spare_settled().await);
    assert!(spare_path(dir.path()).exists());
    disk.full_on_write.store(true, Ordering::SeqCst);
    let r = log
        .append(&stream("s"), ExpectedVersion::Any, vec![event(n, "x")])
        .await;
    assert_storage_full(r, dir.path());
    assert!(
        !spare_path(dir.path()).exists(),
        "the spare was removed before the answer"
    );
    assert!(!log.spare_settled().await);
    disk.full_on_write.store(false, Ordering::SeqCst);
    let more = append_until_segment(&log, dir.path(), n, 2).await;
    assert!(log.stats().zero_filled_segments >= 2, "spares again");
    assert_eq!(log.verify().await.unwrap(), (n + more) as u64);
    log.close().await.unwrap();
    verify_dir(dir.path()).unwrap();
}

/// On a real file system: a spare made while there was room is taken at the roll after the disk
/// filled (its blocks are already the log's), so appends go on into it; no further spare is made
/// on the full disk, the roll after that fails with `StorageFull` leaving no half-made or spare
/// file, and with room again the log goes on and is whole.
#[tokio::test]
async fn a_real_full_file_system_with_a_spare_tmpfs() {
    a_real_full_file_system_with_a_spare(SmallFs::tmpfs(1 << 20)).await;
}

#[tokio::test]
async fn a_real_full_file_system_with_a_spare_ext4() {
    a_real_full_file_system_with_a_spare(SmallFs::ext4(4 << 20)).await;
}

async fn a_real_full_file_system_with_a_spare(fs: SmallFs) {
    let dir = fs.path().join("log");
    let log = FileLog::open(&dir, small()).await.unwrap();
    let mut acked = 0u128;
    while data_end(&segments(&dir)[0]) < 2048 {
        log.append(
            &stream("s"),
            ExpectedVersion::Any,
            vec![event(acked, &"y".repeat(300))],
        )
        .await
        .unwrap();
        acked += 1;
    }
    assert!(
        log.spare_settled().await,
        "room for a spare before the filler"
    );
    let zero_filled = log.stats().zero_filled_segments;
    let filler = fs.fill("filler", 0);
    let r = loop {
        match log
            .append(
                &stream("s"),
                ExpectedVersion::Any,
                vec![event(acked, &"y".repeat(300))],
            )
            .await
        {
            Ok(_) => acked += 1,
            Err(e) => break Err::<(), _>(e),
        }
    };
    assert_storage_full(r, &dir);
    assert_eq!(
        log.stats().zero_filled_segments,
        zero_filled + 1,
        "the roll on the full disk took the spare"
    );
    assert!(!log.spare_settled().await, "no spare on a full disk");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "no spare or half-made segment on the full disk: {names:?}"
    );
    assert_eq!(segment_files(&dir).0, 2);
    assert_eq!(all(&log).await.len() as u128, acked);
    fs.free(&filler);
    log.append(
        &stream("s"),
        ExpectedVersion::Any,
        vec![event(acked, &"y".repeat(300))],
    )
    .await
    .unwrap();
    assert_eq!(segment_files(&dir), (3, false));
    log.close().await.unwrap();
    verify_dir(&dir).unwrap();
    let log = FileLog::open(&dir, small()).await.unwrap();
    assert_eq!(all(&log).await.len() as u128, acked + 1);
    log.close().await.unwrap();
}

/// Index checkpoints are written by a background thread at rolls while the writer goes on
/// appending, new streams included: every chunk must cover exactly the events and streams it was
/// taken with, and leave the later ones for the next chunk. Eight writers, each starting a new
/// stream every few appends, a chunk due at nearly every roll; after a close, `verify_dir`
/// holds every checkpoint row against its record, and a reopen from the checkpoint (and one
/// rebuilding the index) gives every stream back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoints_written_behind_the_writer_cover_exactly_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let options = || FileLogOptions {
        checkpoint_interval: 3,
        ..small()
    };
    let log = FileLog::open(dir.path(), options()).await.unwrap();
    let writers = (0..8u128).map(|w| {
        let log = log.clone();
        tokio::spawn(async move {
            for n in 0..120u128 {
                let s = stream(&format!("w{w}-{}", n / 4));
                log.append(
                    &s,
                    ExpectedVersion::Any,
                    vec![event(w << 32 | n, &"c".repeat(200))],
                )
                .await
                .unwrap();
            }
        })
    });
    for w in futures::future::join_all(writers.collect::<Vec<_>>()).await {
        w.unwrap();
    }
    let events = all(&log).await;
    assert_eq!(events.len(), 960);
    log.close().await.unwrap();
    assert!(segments(dir.path()).len() > 20, "many rolls");
    verify_dir(dir.path()).unwrap();
    captured_warnings();
    let log = FileLog::open(dir.path(), options()).await.unwrap();
    assert!(
        warnings_about(&dir.path().join("index.ckpt")).is_empty(),
        "the checkpoint was used"
    );
    assert_eq!(all(&log).await, events);
    for w in 0..8 {
        for k in 0..30 {
            let s = stream(&format!("w{w}-{k}"));
            let got = log
                .read_stream(
                    &s,
                    ReadFrom::Start,
                    Direction::Forward,
                    usize::MAX,
                    Until::Latest,
                )
                .await
                .unwrap();
            assert_eq!(got.len(), 4, "stream {s}");
        }
    }
    log.close().await.unwrap();
    remove_checkpoint(dir.path());
    let log = FileLog::open(dir.path(), options()).await.unwrap();
    assert_eq!(all(&log).await, events);
    log.close().await.unwrap();
}

/// Records where each write of record data ended.
#[derive(Debug, Default)]
struct RecordWriteEnds {
    ends: Mutex<Vec<u64>>,
}

impl LogIo for RecordWriteEnds {
    fn write_at(&self, file: &std::fs::File, buf: &[u8], offset: u64) -> std::io::Result<()> {
        // Not a segment header (128 bytes at 0), not the zeros of a spare being made.
        if !(offset == 0 && buf.len() == 128) && buf.iter().any(|&b| b != 0) {
            self.ends.lock().unwrap().push(offset + buf.len() as u64);
        }
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
}

/// A flush into a zero-filled segment (the first one of a new log, then each taken from the
/// spare) writes on to the end of its last 4 KiB page, so that a page whose cache was dropped
/// since the zeros were written is never read back from disk on the append path; the zeros
/// written past the data change nothing: the log reopens with every event and a whole chain.
#[tokio::test]
async fn flushes_into_zero_filled_segments_end_on_a_page_boundary() {
    const SEGMENT: u64 = 64 << 10;
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(RecordWriteEnds::default());
    let options = || FileLogOptions {
        segment_size: SEGMENT,
        io: io.clone(),
        ..FileLogOptions::default()
    };
    let log = FileLog::open(dir.path(), options()).await.unwrap();
    let mut n = 0u128;
    for target in 1..=3 {
        n += append_until_segment(&log, dir.path(), n, target).await;
        assert!(log.spare_settled().await);
    }
    assert!(
        log.stats().zero_filled_segments >= 3,
        "the first segment and the ones from the spare are zero-filled"
    );
    let ends = std::mem::take(&mut *io.ends.lock().unwrap());
    assert!(ends.len() as u128 >= n, "one write per append at least");
    for end in &ends {
        assert!(
            end % 4096 == 0 || *end == SEGMENT,
            "a write ended at {end}, inside a page"
        );
    }
    let events = all(&log).await;
    assert_eq!(events.len() as u128, n);
    log.close().await.unwrap();
    let log = FileLog::open(dir.path(), options()).await.unwrap();
    assert_eq!(all(&log).await, events);
    assert_eq!(log.verify().await.unwrap(), n as u64);
    log.close().await.unwrap();
    verify_dir(dir.path()).unwrap();
}
