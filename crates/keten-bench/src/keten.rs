//! keten's embedded file log, with its default (fsync) durability throughout.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use keten_log::{
    Direction, Durability, EventId, EventStore, EventType, ExpectedVersion, FileLog,
    FileLogOptions, GlobalPosition, ProposedEvent, ReadFrom, StreamId, StreamVersion, Until,
};

use crate::stats::{self, Measured};
use crate::workload::{EVENT_TYPE, event_id, payload};

pub struct BigLog {
    pub events: u64,
    pub fill: Duration,
    pub open_clean: Duration,
    /// Open with `full_check_on_open`: every record's CRC and the whole chain checked.
    pub open_full_check: Duration,
    /// `None` when no checkpoint file was found to remove.
    pub open_rebuild: Option<Duration>,
    pub removed: Vec<String>,
    pub scan: Duration,
}

async fn open(dir: &Path) -> Result<FileLog> {
    open_with(dir, Durability::Fsync).await
}

async fn open_with(dir: &Path, durability: Durability) -> Result<FileLog> {
    let options = FileLogOptions {
        durability,
        ..FileLogOptions::default()
    };
    FileLog::open(dir, options)
        .await
        .with_context(|| format!("opening keten's log in {}", dir.display()))
}

async fn close(log: FileLog) -> Result<()> {
    log.close().await.context("closing keten's log")
}

fn events(writer: usize, first_seq: u64, n: usize, event_type: &EventType) -> Vec<ProposedEvent> {
    (0..n as u64)
        .map(|i| ProposedEvent {
            id: EventId(event_id(writer, first_seq + i)),
            event_type: event_type.clone(),
            metadata: Vec::new(),
            payload: payload(first_seq + i).into_bytes(),
        })
        .collect()
}

fn expected(version: Option<StreamVersion>) -> ExpectedVersion {
    version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
}

/// `writers` tasks, each appending `batch` events at a time to its own stream with an exact
/// expected version, for `duration`, on a fresh log.
///
/// With `Durability::NoSyncUnsafe` it is a diagnostic, not a durable figure: what the log costs
/// besides the flush.
pub async fn write(
    dir: &Path,
    writers: usize,
    batch: usize,
    duration: Duration,
    durability: Durability,
) -> Result<Measured> {
    let log = open_with(dir, durability).await?;
    let barrier = Arc::new(tokio::sync::Barrier::new(writers));
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move { writer(&log, w, batch, duration, &barrier).await })
        })
        .collect();
    let system = match durability {
        Durability::Fsync => format!("keten FileLog, {batch} event(s)/append"),
        _ => format!("diagnostic: keten with {durability:?}"),
    };
    let mut measured = Measured::new(system, writers, batch);
    for t in tasks {
        let (ops, elapsed, hist) = t.await??;
        measured.add_writer(ops, elapsed, &hist);
    }
    let st = log.stats();
    if durability == Durability::Fsync {
        measured.note = format!("{:.1}", st.appends as f64 / st.syncs.max(1) as f64);
    }
    close(log).await?;
    Ok(measured)
}

async fn writer(
    log: &FileLog,
    w: usize,
    batch: usize,
    duration: Duration,
    barrier: &tokio::sync::Barrier,
) -> Result<(u64, Duration, hdrhistogram::Histogram<u64>)> {
    let stream = StreamId::new(format!("bench-{w}"))?;
    let event_type = EventType::new(EVENT_TYPE)?;
    let mut hist = stats::histogram();
    let mut ops = 0u64;
    let mut version = None;
    let mut seq = 0u64;
    barrier.wait().await;
    let began = Instant::now();
    while began.elapsed() < duration {
        let proposed = events(w, seq, batch, &event_type);
        let t = Instant::now();
        let r = log.append(&stream, expected(version), proposed).await?;
        stats::record(&mut hist, t.elapsed());
        version = Some(r.last_version);
        seq += batch as u64;
        ops += 1;
    }
    Ok((ops, began.elapsed(), hist))
}

/// The same data as `pg::fill_stream`: the stream interleaved, 100 events at a time, with as
/// many events of another stream; then `reads` reads of the whole stream after one warm-up.
pub async fn read_stream(
    dir: &Path,
    stream: &str,
    events_n: u64,
    reads: usize,
) -> Result<Measured> {
    let log = open(dir).await?;
    let event_type = EventType::new(EVENT_TYPE)?;
    let target = StreamId::new(stream)?;
    let other = StreamId::new("bench-read-other")?;
    let mut version: Option<StreamVersion> = None;
    let mut seq = 0u64;
    while seq < events_n {
        let n = 100.min(events_n - seq) as usize;
        for (w, s) in [(0, &target), (1, &other)] {
            log.append(s, expected(version), events(w, seq, n, &event_type))
                .await?;
        }
        version = Some(StreamVersion(seq + n as u64 - 1));
        seq += n as u64;
    }

    let mut measured = Measured::new("keten FileLog", 1, events_n as usize);
    let mut hist = stats::histogram();
    let began = Instant::now();
    for i in 0..=reads {
        let t = Instant::now();
        let got = log
            .read_stream(
                &target,
                ReadFrom::Start,
                Direction::Forward,
                usize::MAX,
                Until::Latest,
            )
            .await?;
        let took = t.elapsed();
        if got.len() as u64 != events_n || got.iter().any(|e| e.payload.is_empty()) {
            bail!(
                "keten read {} events of {stream}, expected {events_n}",
                got.len()
            );
        }
        if i > 0 {
            stats::record(&mut hist, took);
        }
    }
    measured.add_writer(reads as u64, began.elapsed(), &hist);
    close(log).await?;
    Ok(measured)
}

/// Fills a log with `n` events (100-event appends to fresh streams, 16 writers at once), then
/// times opening it after a clean close, a full forward scan, and opening it again with the
/// index checkpoint removed.
pub async fn big_log(dir: &Path, n: u64) -> Result<BigLog> {
    const WRITERS: usize = 16;
    const PER_APPEND: u64 = 100;
    let log = open(dir).await?;
    let appends = n.div_ceil(PER_APPEND);
    let began = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let event_type = EventType::new(EVENT_TYPE)?;
                let mut a = w as u64;
                while a < appends {
                    let k = PER_APPEND.min(n - a * PER_APPEND) as usize;
                    let stream = StreamId::new(format!("big-{a}"))?;
                    log.append(
                        &stream,
                        ExpectedVersion::NoStream,
                        events(w, a * PER_APPEND, k, &event_type),
                    )
                    .await?;
                    a += WRITERS as u64;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let fill = began.elapsed();
    close(log).await?;

    let t = Instant::now();
    let log = open(dir).await?;
    let open_clean = t.elapsed();
    let head = log.head().await?;
    if head != Some(GlobalPosition(n - 1)) {
        bail!(
            "after reopening, head is {head:?}, expected position {}",
            n - 1
        );
    }

    let t = Instant::now();
    let mut seen = 0u64;
    loop {
        let page = log
            .read_all(
                ReadFrom::At(GlobalPosition(seen)),
                Direction::Forward,
                10_000,
                Until::Latest,
            )
            .await?;
        if page.is_empty() {
            break;
        }
        seen += page.len() as u64;
    }
    let scan = t.elapsed();
    if seen != n {
        bail!("the full scan read {seen} events, expected {n}");
    }
    close(log).await?;

    let t = Instant::now();
    let options = FileLogOptions {
        full_check_on_open: true,
        ..FileLogOptions::default()
    };
    let log = FileLog::open(dir, options).await?;
    let open_full_check = t.elapsed();
    close(log).await?;

    // Whatever in the directory is not a segment or a lock is taken to be the index
    // checkpoint; the names removed are reported so a wrong guess is visible.
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains("ckpt") || name.contains("index") || name.contains("checkpoint") {
            std::fs::remove_file(entry.path())?;
            removed.push(name);
        }
    }
    let open_rebuild = if removed.is_empty() {
        None
    } else {
        let t = Instant::now();
        let log = open(dir).await?;
        let took = t.elapsed();
        let head = log.head().await?;
        if head != Some(GlobalPosition(n - 1)) {
            bail!(
                "after a rebuild, head is {head:?}, expected position {}",
                n - 1
            );
        }
        close(log).await?;
        Some(took)
    };
    Ok(BigLog {
        events: n,
        fill,
        open_clean,
        open_full_check,
        open_rebuild,
        removed,
        scan,
    })
}
