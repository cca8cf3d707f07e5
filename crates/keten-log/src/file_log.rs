//! [`FileLog`]: the embedded segmented file log.
//!
//! One writer thread owns the active segment. Appends reach it over a bounded channel; it takes
//! every append waiting, checks each against the index (plus the appends before it in the same
//! group), encodes them into one buffer, writes it with one `write` and one `fdatasync`, adds the
//! group to the index, publishes the new head and only then answers every waiter: group commit.
//!
//! Before it writes a group, the writer waits briefly (at most half the last flush's time, and
//! never more than 2 ms) until the group holds as many appends as could be on their way: those
//! that were queued plus those answered when the last group was. Writers woken by a flush take a
//! while to come back with their next append; without the wait, each flush took only those
//! already queued, and concurrent writers split into two halves flushed alternately (8 appends
//! per `fdatasync` with 16 writers instead of 16). A lone writer never waits: its next append is
//! the only one expected, and the group already holds it.
//!
//! Readers never wait for the writer: they look positions up in the index under a read lock,
//! then read the segment files with `pread`.
//!
//! Architecture invariant: nothing enters the index before it is durable, so nothing a reader or
//! a subscriber has seen can be lost by a crash. The one exception is a log opened with
//! [`Durability::Interval`] (the access log's mode): there an append is acknowledged and indexed
//! once written to the page cache, and a flusher thread makes it durable within the interval.
//! A process crash loses nothing (the kernel still has the bytes); a power loss or kernel crash
//! can lose what the last interval wrote, and open then cuts that tail and reports it
//! (`recovery`, rule 6). The flusher records how far it flushed in a flush mark, so that open
//! cuts only after it and refuses damage before it.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result, is_storage_full};
use crate::format::{
    self, Hash, MAX_APPEND_BYTES, MAX_APPEND_EVENTS, MAX_EVENT_DATA, MAX_SEGMENT_SIZE,
    RecordFields, SEGMENT_HEADER_LEN, SegmentHeader, corrupt, decode_record, frame_len, io_err,
    segment_path,
};
use crate::index::{Index, Location, Segment, SegmentFile, checkpoint_path};
use crate::io::{LogIo, StdIo, sync_dir};
use crate::recovery::{
    Chain, FLUSH_MARK_FILE, FlushMark, RecoveryMode, TailCut, check_header_chain,
    open_segment_file, read_header, recover, scan_segment,
};
use crate::spare::{self, SpareShared, Spares};
use crate::store::{EventStore, EventStream};
use crate::types::{
    AppendResult, CommitTime, Direction, EventId, ExpectedVersion, GlobalPosition, ProposedEvent,
    ReadFrom, RecordedEvent, StreamId, StreamVersion, SubscriptionFilter, Until,
};

/// When an append counts as done.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Durability {
    /// Acknowledge only after `fdatasync`: an acknowledged event survives power loss.
    #[default]
    Fsync,
    /// Acknowledge after `write` (the bytes are in the page cache); a flusher thread
    /// `fdatasync`s what was written at most this long after the first unflushed write (plus
    /// the flush's own time), and on every segment roll and on close. A process crash loses
    /// nothing. A power loss or kernel crash can lose the appends acknowledged in the last
    /// interval: open then cuts the tail after the flush mark, logs the bytes and records
    /// dropped and reports them in [`FileLog::tail_cut`]; damage before the mark still refuses.
    /// For the access log, whose bounded loss is argued in the README; never the event log's.
    /// A zero interval means [`Durability::Fsync`].
    Interval(Duration),
    /// Acknowledge after `write`, never flush: survives the process crashing, but power loss
    /// or a kernel crash can lose acknowledged events, and can leave damage that open refuses
    /// (holes in more than the last write). For tests and throwaway data only.
    NoSyncUnsafe,
}

#[derive(Clone, Debug)]
pub struct FileLogOptions {
    pub durability: Durability,
    /// Nominal segment size; a segment is preallocated to it and rolled over when the next append
    /// would not fit. One append is never split, so a segment can exceed this by one append.
    pub segment_size: u64,
    pub recovery: RecoveryMode,
    /// Walk and check every record on open (CRCs and the whole hash chain) instead of trusting
    /// the index checkpoint for the part it covers. Open then takes time in proportion to the
    /// log (about 1.4 s per million 300-byte events here), but damage anywhere refuses to open.
    pub full_check_on_open: bool,
    /// When a segment fills and at least this many events were appended since the last index
    /// checkpoint, a checkpoint chunk is appended for them (32 bytes per event), by a background
    /// thread: appends do not wait for it. Open does the same after replaying this many events. A crash costs a replay
    /// of the events since the last chunk.
    pub checkpoint_interval: u64,
    /// Keep a zero-filled spare segment ready for the next roll (a background thread writes
    /// it; see `spare`), and, in [`Durability::Fsync`], zero-fill the first segment of a new log
    /// at open. A flush into blocks written beforehand writes data only, where one into
    /// `fallocate`d blocks writes extent metadata too. Off, segments are fallocated at the roll,
    /// on the writer thread. Only in [`Durability::Fsync`], where a flush is on the path of
    /// every answer: an `Interval` log flushes behind its answers, so a spare would buy nothing
    /// for its 64 MiB of zeros written per segment, and `NoSyncUnsafe` does not flush.
    pub spare_segments: bool,
    /// Where writes go; tests put a fault-injecting implementation here.
    pub io: Arc<dyn LogIo>,
}

impl Default for FileLogOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            segment_size: 64 << 20,
            recovery: RecoveryMode::TruncateTornTail,
            full_check_on_open: false,
            checkpoint_interval: 100_000,
            spare_segments: true,
            io: Arc::new(StdIo),
        }
    }
}

/// Counters, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Appends that wrote events (retries and rejections excluded).
    pub appends: u64,
    pub events: u64,
    /// Groups written (one `write` each).
    pub groups: u64,
    /// `fdatasync` calls for appends.
    pub syncs: u64,
    /// Bytes of torn tail cut off when this log was opened.
    pub torn_bytes_dropped: u64,
    /// Segments started from a zero-filled file (a spare, or the first segment of a new log)
    /// rather than a fallocated one.
    pub zero_filled_segments: u64,
}

/// The longest flush interval accepted: beyond it the loss a power cut can cause stops being
/// small.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Stats {
    appends: AtomicU64,
    events: AtomicU64,
    groups: AtomicU64,
    syncs: AtomicU64,
    torn_bytes_dropped: AtomicU64,
    zero_filled_segments: AtomicU64,
}

/// What readers and subscribers share.
pub(crate) struct Shared {
    index: RwLock<Index>,
    /// Number of durable events; closes when the writer stops.
    head: watch::Receiver<u64>,
    stats: Stats,
    /// What open cut off the tail.
    cut: Option<TailCut>,
    /// The spare segment thread's state, when there is one.
    spare: Option<Arc<SpareShared>>,
    /// The checkpoint thread's state.
    checkpoint: CheckpointShared,
}

/// A handle to an open log; cheap to clone. The log closes when [`FileLog::close`] is called
/// or the last handle is dropped.
#[derive(Clone)]
pub struct FileLog {
    writer: WriterHandle,
    shared: Arc<Shared>,
    dir: Arc<PathBuf>,
}

/// How an append reaches the writer.
#[derive(Clone)]
enum WriterHandle {
    /// The writer thread, which gathers concurrent appends into one group and one flush.
    Thread(mpsc::Sender<Request>),
    /// With [`Durability::Interval`]: the writer, which appends in the caller's thread.
    Inline(Arc<Inline>),
}

/// The writer of a log that does not flush before it answers ([`Durability::Interval`]). Such
/// an append is a `pwrite` into the page cache and an index update, a few microseconds: handing
/// it to a writer thread and back (a wake-up each way) would cost several times the work, and
/// the access log, which runs in this mode, makes one small append per read. So the caller
/// appends under this lock; the flusher thread flushes behind it as before. `None` once closed.
///
/// A caller that finds the writer busy does not wait for the lock (that parked a tokio worker
/// on a futex for the length of someone else's `pwrite`): it leaves its append in `queued`
/// and awaits the answer, and whoever holds the writer writes the queued appends too, in the
/// same `pwrite` when they are there in time. See [`Inline::drain`] for why none is left behind.
///
/// A roll (cutting the old segment and starting the next: several `fsync`s, milliseconds) is
/// the exception: near the end of a segment, appends go through the blocking pool (see
/// `rolls_soon`), so that whoever holds the writer when the roll comes is not a tokio worker.
struct Inline {
    writer: Mutex<Option<(Writer, Group)>>,
    queued: Mutex<Vec<AppendRequest>>,
    /// [`Writer::near_roll`] after the last group: the next appends may roll the segment.
    rolls_soon: AtomicBool,
}

impl Inline {
    /// Appends `append` now, or leaves it to the current holder of the writer.
    fn append(&self, append: AppendRequest) {
        self.enqueue(append);
        self.drain();
    }

    /// Leaves `append` for the next [`Inline::drain`]: its caller's own, or any other
    /// append's, which writes it in the same group (see `EventStore::append_deferred`).
    fn enqueue(&self, append: AppendRequest) {
        self.queued.lock().expect("queue lock").push(append);
    }

    /// Writes what is queued while the writer is free. The invariant: an append is never left
    /// in `queued` with no one bound to write it. Whoever queued it tries the writer after
    /// queuing; if that fails, the holder at that moment looks at the queue again after it lets
    /// the writer go (the queue lock orders the two), and writes it or hands it on the same way.
    fn drain(&self) {
        loop {
            {
                let mut held = match self.writer.try_lock() {
                    Ok(held) => held,
                    Err(std::sync::TryLockError::WouldBlock) => return,
                    Err(std::sync::TryLockError::Poisoned(_)) => panic!("writer lock poisoned"),
                };
                let batch = std::mem::take(&mut *self.queued.lock().expect("queue lock"));
                if batch.is_empty() {
                    return;
                }
                // Closed: dropping the appends drops their reply senders, and their callers
                // answer `Error::Closed`.
                if let Some((writer, group)) = held.as_mut() {
                    let outcomes = writer.commit_group(&batch, group);
                    self.rolls_soon.store(writer.near_roll(), Ordering::Relaxed);
                    answer(batch, outcomes);
                }
            }
            if self.queued.lock().expect("queue lock").is_empty() {
                return;
            }
        }
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        let taken = self.writer.get_mut().map(Option::take).unwrap_or(None);
        if let Some((mut writer, _)) = taken
            && let Err(e) = writer.shutdown()
        {
            tracing::error!(error = %e, "closing the log failed");
        }
    }
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog").field("dir", &self.dir).finish()
    }
}

enum Request {
    Append(AppendRequest),
    Close(oneshot::Sender<Result<()>>),
}

struct AppendRequest {
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<ProposedEvent>,
    reply: oneshot::Sender<Result<AppendResult>>,
}

const LOCK_FILE: &str = "LOCK";
/// Appends taken into one group at most; bounds the latency of the first one.
const MAX_GROUP_APPENDS: usize = 4096;
/// Event data taken into one group at most, bounding the writer's buffer.
const MAX_GROUP_BYTES: usize = 8 << 20;
/// A group waits for the writers coming back at most this fraction of the last flush's time...
const GATHER_FRACTION: u32 = 2;
/// ... and at most this long, whatever a slow flush took.
const MAX_GATHER_WAIT: Duration = Duration::from_millis(2);
/// What [`Writer::zeroed`] pads a write to: the page size of x86-64 and the usual block size.
/// Where pages are larger, the padding does not reach a page's end and the read stays.
const PAGE: u64 = 4096;
/// Events a subscription reads from storage at a time: its whole buffer.
const SUBSCRIPTION_BATCH: usize = 256;
/// A subscriber at most this many events behind reads them in its own task (see
/// [`subscriber_read`]).
const INLINE_READ_EVENTS: u64 = 256;

impl FileLog {
    /// Opens (or creates) the log in `dir`, recovering from a crash if need be.
    pub async fn open(dir: impl AsRef<Path>, options: FileLogOptions) -> Result<FileLog> {
        let dir = dir.as_ref().to_path_buf();
        blocking(move || open_blocking(dir, options)).await
    }

    /// Finishes pending appends, writes the index checkpoint and releases the directory.
    /// Other handles to this log see [`Error::Closed`] on append afterwards.
    pub async fn close(self) -> Result<()> {
        match self.writer {
            WriterHandle::Inline(inline) => {
                blocking(move || {
                    let taken = inline.writer.lock().expect("writer lock").take();
                    // Appends queued while this held the writer are answered `Error::Closed`.
                    inline.drain();
                    taken.map_or(Ok(()), |(mut writer, _)| writer.close())
                })
                .await
            }
            WriterHandle::Thread(tx) => {
                let (reply, done) = oneshot::channel();
                if tx.send(Request::Close(reply)).await.is_err() {
                    return Ok(());
                }
                done.await.unwrap_or(Ok(()))
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stats(&self) -> LogStats {
        let s = &self.shared.stats;
        LogStats {
            appends: s.appends.load(Ordering::Relaxed),
            events: s.events.load(Ordering::Relaxed),
            groups: s.groups.load(Ordering::Relaxed),
            syncs: s.syncs.load(Ordering::Relaxed),
            torn_bytes_dropped: s.torn_bytes_dropped.load(Ordering::Relaxed),
            zero_filled_segments: s.zero_filled_segments.load(Ordering::Relaxed),
        }
    }

    /// Waits until no index checkpoint chunk is asked for or being written (they are written
    /// by a background thread at rolls). For tests and diagnostics: appends never wait for one.
    #[doc(hidden)]
    pub async fn checkpoint_settled(&self) {
        let state = self.shared.checkpoint.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let (lock, wake) = &*state;
            let mut st = lock.lock().expect("checkpoint state");
            while (st.requested || st.busy) && !st.stop {
                st = wake.wait(st).expect("checkpoint state");
            }
        })
        .await;
    }

    /// Waits until the spare segment thread is neither asked for a spare nor making one, and
    /// says whether a spare is ready for the next roll. For tests and diagnostics: appends never
    /// wait for a spare.
    #[doc(hidden)]
    pub async fn spare_settled(&self) -> bool {
        let Some(spare) = self.shared.spare.clone() else {
            return false;
        };
        tokio::task::spawn_blocking(move || spare.settled())
            .await
            .unwrap_or(false)
    }

    /// What open cut off the end of the log, if anything: a torn write never acknowledged, or
    /// (with [`Durability::Interval`], after a power loss or kernel crash) acknowledged appends
    /// that were never flushed. The owner of the log can record the loss.
    pub fn tail_cut(&self) -> Option<&TailCut> {
        self.shared.cut.as_ref()
    }
}

/// A subscription's read of events that begin `behind` events before the log's head. A live
/// subscriber is a group or two behind, and those events were just written: they are in the page cache, and reading
/// them takes microseconds, less than handing the read to the blocking pool and back (two
/// thread wake-ups per group, for the projection on every append). A subscriber further
/// behind is catching up, possibly from disk, and reads on the blocking pool.
async fn subscriber_read<T: Send + 'static>(
    behind: u64,
    read: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    if behind <= INLINE_READ_EVENTS {
        read()
    } else {
        blocking(read).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend(format!("blocking task failed: {e}")))?
}

fn open_blocking(dir: PathBuf, mut opts: FileLogOptions) -> Result<FileLog> {
    if let Durability::Interval(every) = opts.durability {
        if every.is_zero() {
            opts.durability = Durability::Fsync;
        } else if every > MAX_FLUSH_INTERVAL {
            return Err(Error::Config(format!(
                "flush interval {every:?} is longer than the {MAX_FLUSH_INTERVAL:?} allowed"
            )));
        }
    }
    if opts.segment_size < 4096 || opts.segment_size > MAX_SEGMENT_SIZE {
        return Err(Error::Config(format!(
            "segment_size {} is outside 4096..={MAX_SEGMENT_SIZE}",
            opts.segment_size
        )));
    }
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Locked {
                dir: dir.clone(),
                lock: lock_path,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::from_io(&lock_path, e)),
    }
    let recovered = recover(&dir, opts.recovery, !opts.full_check_on_open)?;
    let mut index = recovered.index;
    let chain = recovered.chain;
    let mut zero_filled = 0;
    let (active, active_id, write_offset) = if let Some(last) = index.segments.last() {
        let f = &last.file;
        let w = File::options()
            .read(true)
            .write(true)
            .open(&f.path)
            .map_err(io_err(&f.path))?;
        // What a crashed process wrote but never flushed may still be only in the page cache:
        // flush it before it enters the index, which holds only durable events.
        opts.io.sync_all(&w).map_err(io_err(&f.path))?;
        if last.data_end < opts.segment_size
            && let Err(e) = opts.io.preallocate(&w, opts.segment_size)
        {
            // A log on a full disk still opens, for reads and for appends once there is room:
            // without its reservation the segment grows as it is written.
            if !is_storage_full(&e) {
                return Err(Error::from_io(&f.path, e));
            }
            tracing::warn!(file = %f.path.display(), error = %e,
                "no room to preallocate the active segment; it grows as written");
            // A failed reservation may have kept part of its blocks (ext4 does): give them back.
            opts.io
                .set_len(&w, last.data_end)
                .and_then(|()| opts.io.sync_all(&w))
                .map_err(io_err(&f.path))?;
        }
        (w, f.id, last.data_end)
    } else {
        let header = SegmentHeader {
            id: 0,
            first_position: 0,
            prev_hash: chain.prev_hash,
        };
        let w = match zero_filled_first_segment(&dir, &header, &opts) {
            Some(w) => {
                zero_filled = 1;
                w
            }
            None => create_segment(&dir, &header, &opts)?,
        };
        index.segments.push(Segment {
            file: Arc::new(open_segment_file(&dir, 0, false)?),
            first_position: 0,
            offsets: Vec::new(),
            data_end: SEGMENT_HEADER_LEN as u64,
        });
        (w, 0, SEGMENT_HEADER_LEN as u64)
    };
    // Everything kept is durable now (synced above or at creation): the mark starts there. In
    // the other modes a mark left by an earlier open would make the tail lenient: remove it.
    let durable_count = index.count();
    let mark = match opts.durability {
        Durability::Interval(_) => {
            let start = FlushMark {
                seq: 0,
                segment: active_id,
                offset: write_offset,
                count: durable_count,
            };
            match MarkFile::create(&dir, start, opts.io.clone()) {
                Ok(mark) => Some(mark),
                // A full disk must not keep the log from opening (reads still work): the mark
                // of an earlier open is rewritten where it stands, in blocks it already has;
                // with none to rewrite, this open holds the strict rule instead.
                Err(e @ Error::StorageFull { .. }) => {
                    match MarkFile::rewrite(&dir, start, opts.io.clone())? {
                        Some(mark) => Some(mark),
                        None => {
                            tracing::warn!(
                                error = %e,
                                "no room for the flush mark: this open flushes every append before acknowledging it"
                            );
                            opts.durability = Durability::Fsync;
                            None
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Durability::Fsync | Durability::NoSyncUnsafe => {
            remove_flush_mark(&dir)?;
            None
        }
    };
    let spares = if opts.spare_segments && opts.durability == Durability::Fsync {
        Some(Spares::start(&dir, opts.segment_size, opts.io.clone())?)
    } else {
        None
    };
    let (head_tx, head_rx) = watch::channel(index.count());
    let shared = Arc::new(Shared {
        index: RwLock::new(index),
        head: head_rx,
        stats: Stats::default(),
        cut: recovered.cut,
        spare: spares.as_ref().map(Spares::shared),
        checkpoint: CheckpointShared::default(),
    });
    shared
        .stats
        .zero_filled_segments
        .store(zero_filled, Ordering::Relaxed);
    // A long replay (a crash after many events) is not repeated by the next open. The checkpoint
    // is an optimisation: on a full disk the log opens without writing it.
    if recovered.replayed >= opts.checkpoint_interval {
        match write_checkpoint(&dir, &shared.index) {
            Err(e @ Error::StorageFull { .. }) => {
                tracing::warn!(error = %e, "no room to write the index checkpoint at open");
            }
            other => other?,
        }
    }
    shared
        .stats
        .torn_bytes_dropped
        .store(recovered.torn_bytes, Ordering::Relaxed);
    let active = Arc::new(active);
    let flusher = match (mark, opts.durability) {
        (Some(mark), Durability::Interval(every)) => Some(Flusher::start(
            every,
            mark,
            Written {
                file: active.clone(),
                segment: active_id,
                offset: write_offset,
                count: durable_count,
            },
            shared.clone(),
            opts.io.clone(),
        )?),
        _ => None,
    };
    let writer = Writer {
        flusher,
        active_path: segment_path(&dir, active_id),
        dir: dir.clone(),
        shared: shared.clone(),
        head_tx,
        active,
        active_id,
        write_offset,
        zeroed: zero_filled > 0,
        chain,
        durable: chain,
        poisoned: None,
        lock: Some(lock),
        expected: 0,
        last_flush: Duration::ZERO,
        spares,
        spare_asked: false,
        checkpointer: Some(Checkpointer::start(dir.clone(), shared.clone())?),
        opts,
    };
    let writer = if matches!(writer.opts.durability, Durability::Interval(_)) {
        let rolls_soon = writer.near_roll();
        WriterHandle::Inline(Arc::new(Inline {
            writer: Mutex::new(Some((writer, Group::default()))),
            queued: Mutex::new(Vec::new()),
            rolls_soon: AtomicBool::new(rolls_soon),
        }))
    } else {
        let (tx, rx) = mpsc::channel(MAX_GROUP_APPENDS);
        std::thread::Builder::new()
            .name("keten-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::from_io(&dir, e))?;
        WriterHandle::Thread(tx)
    };
    Ok(FileLog {
        writer,
        shared,
        dir: Arc::new(dir),
    })
}

/// The first segment of a new log, zero-filled (see `spare`) rather than fallocated, when that
/// is worth it (a log that flushes every append) and there is room; `None` to make it the usual
/// way. Costs one write of the segment size at the creation of a log (about 0.35 s for 64 MiB
/// here), never on an append.
fn zero_filled_first_segment(
    dir: &Path,
    header: &SegmentHeader,
    opts: &FileLogOptions,
) -> Option<File> {
    if !opts.spare_segments
        || opts.durability != Durability::Fsync
        || !spare::room_for(dir, opts.segment_size)
    {
        return None;
    }
    let tmp = dir.join(format!("{}.tmp", format::segment_file_name(header.id)));
    let made = spare::make_zeroed(&*opts.io, &tmp, opts.segment_size, None)
        .map_err(io_err(&tmp))
        .and_then(|()| spare::segment_from_zeroed(dir, &tmp, header, &*opts.io));
    match made {
        Ok(f) => Some(f),
        Err(e) => {
            // Both steps leave nothing behind on failure; the usual way may still work.
            tracing::warn!(error = %e, "zero-filling the first segment failed; it is fallocated");
            None
        }
    }
}

/// Creates a segment: header and preallocation made durable under a temporary name, then
/// renamed into place, so a segment file with a bad header is damage, never a crash.
///
/// The preallocation only spares each flush some metadata: where the disk has no room for a
/// whole segment, the segment is made without it (a warning) and grows as written, so the log
/// uses the space there is and a full disk shows up as a failed write (see `recover_from_full`).
///
/// On failure nothing is left behind: neither the temporary file nor, if the rename was done but
/// not made durable, the segment. A segment file that the writer does not use would break the
/// chain once the previous segment grew past the first position in its header.
fn create_segment(dir: &Path, header: &SegmentHeader, opts: &FileLogOptions) -> Result<File> {
    let path = segment_path(dir, header.id);
    let tmp = dir.join(format!("{}.tmp", format::segment_file_name(header.id)));
    let mut renamed = false;
    let result = (|| -> std::io::Result<File> {
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        opts.io.write_at(&f, &header.encode(), 0)?;
        if let Err(e) = opts.io.preallocate(&f, opts.segment_size) {
            if !is_storage_full(&e) {
                return Err(e);
            }
            tracing::warn!(file = %path.display(), error = %e,
                "no room to preallocate a new segment; it grows as written");
            // A failed reservation may have kept part of its blocks (ext4 does): give them back.
            opts.io.set_len(&f, SEGMENT_HEADER_LEN as u64)?;
        }
        opts.io.sync_all(&f)?;
        std::fs::rename(&tmp, &path)?;
        renamed = true;
        sync_dir(dir)?;
        Ok(f)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        if renamed {
            remove_segment(dir, &path);
        }
        Error::from_io(&path, e)
    })
}

/// Removes a segment file the writer never used. If that fails too, the writer must not go on
/// (it would grow the previous segment past the file's first position): the caller finds the
/// file still there and poisons the log.
fn remove_segment(dir: &Path, path: &Path) {
    if let Err(e) = std::fs::remove_file(path).and_then(|()| sync_dir(dir)) {
        tracing::error!(file = %path.display(), error = %e, "cannot remove an unused segment");
    }
}

/// Appends a chunk with the events since the last one to the checkpoint file and makes it
/// durable. One caller at a time: open (before the writer starts), the [`Checkpointer`] thread
/// while the writer runs, the writer's close (after that thread stopped). The chunk is a
/// snapshot taken under the index's read lock (the writer adds whole groups under the write
/// lock, so it is of a consistent index); the writer may add events and streams while it is
/// written, and `checkpoint_written` keeps those pending for the next chunk.
fn write_checkpoint(dir: &Path, index: &RwLock<Index>) -> Result<()> {
    let (chunk, to, at, streams) = {
        let index = index.read().expect("index lock");
        match index.checkpoint_chunk() {
            None => return Ok(()),
            Some(chunk) => (
                chunk,
                index.count(),
                index.checkpoint_len,
                index.pending_streams.len(),
            ),
        }
    };
    let path = checkpoint_path(dir);
    let write = || -> std::io::Result<()> {
        let created = !path.exists();
        let f = File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        // Drops a torn or damaged tail, or everything when the index was rebuilt from the log.
        f.set_len(at)?;
        let written = f.write_all_at(&chunk, at).and_then(|()| f.sync_data());
        if written.is_err() {
            // A failed chunk (a full disk) is not left to take space; were it left, loading
            // would stop at it anyway, as at a torn chunk. The next checkpoint goes at `at`.
            let _ = f.set_len(at);
        }
        written?;
        if created {
            sync_dir(dir)?;
        }
        Ok(())
    };
    write().map_err(io_err(&path))?;
    index
        .write()
        .expect("index lock")
        .checkpoint_written(to, chunk.len() as u64, streams);
    Ok(())
}

#[derive(Default)]
struct CheckpointState {
    requested: bool,
    busy: bool,
    stop: bool,
}

/// The checkpoint thread's state, shared with [`FileLog::checkpoint_settled`].
type CheckpointShared = Arc<(Mutex<CheckpointState>, Condvar)>;

/// The thread that writes index checkpoint chunks for the writer, so that a roll does not make
/// the appends behind it wait for a chunk of `checkpoint_interval` rows (3.2 MB at the default)
/// to be written and flushed. The writer only asks; the chunk is taken here.
struct Checkpointer {
    state: CheckpointShared,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(dir: PathBuf, shared: Arc<Shared>) -> Result<Self> {
        let state = shared.checkpoint.clone();
        let for_thread = state.clone();
        let thread = std::thread::Builder::new()
            .name("keten-log-checkpoint".into())
            .spawn(move || checkpoint_loop(&for_thread, &dir, &shared))
            .map_err(|e| Error::Backend(format!("starting the checkpoint thread: {e}")))?;
        Ok(Self {
            state,
            thread: Some(thread),
        })
    }

    /// Asks for a chunk with the events since the last one. Never waits.
    fn request(&self) {
        let (lock, wake) = &*self.state;
        let mut st = lock.lock().expect("checkpoint state");
        st.requested = true;
        wake.notify_all();
    }

    /// Lets a chunk being written finish, drops one only asked for (close writes the last
    /// chunk itself), and ends the thread: after this the caller is the only checkpoint writer.
    fn stop(mut self) {
        self.signal_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn signal_stop(&self) {
        let (lock, wake) = &*self.state;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        wake.notify_all();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // A writer that panicked must not leave the thread waiting for ever.
        self.signal_stop();
    }
}

fn checkpoint_loop(state: &(Mutex<CheckpointState>, Condvar), dir: &Path, shared: &Shared) {
    let (lock, wake) = state;
    loop {
        {
            let mut st = lock.lock().expect("checkpoint state");
            while !st.requested && !st.stop {
                st = wake.wait(st).expect("checkpoint state");
            }
            if st.stop {
                return;
            }
            st.requested = false;
            st.busy = true;
        }
        // Every event in the index is durable, so a chunk of it is always true; one that
        // cannot be written is skipped (cut back) and its rows stay for the next.
        if let Err(e) = write_checkpoint(dir, &shared.index) {
            tracing::warn!(error = %e, "writing the index checkpoint failed");
        }
        lock.lock().expect("checkpoint state").busy = false;
        wake.notify_all();
    }
}

/// A copy of an error for the other waiters of a failed group.
fn error_copy(e: &Error) -> Error {
    match e {
        Error::StorageFull { path, source } => Error::StorageFull {
            path: path.clone(),
            source: copy_io(source),
        },
        Error::Io { path, source } => Error::Io {
            path: path.clone(),
            source: copy_io(source),
        },
        other => Error::Backend(other.to_string()),
    }
}

fn copy_io(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

struct Writer {
    dir: PathBuf,
    opts: FileLogOptions,
    shared: Arc<Shared>,
    head_tx: watch::Sender<u64>,
    /// Shared with the flusher ([`Durability::Interval`]), which syncs it.
    active: Arc<File>,
    active_path: PathBuf,
    active_id: u64,
    /// Where the durable data of the active segment ends.
    write_offset: u64,
    /// The active segment was written full of zeros before its first record (a spare, or the
    /// first segment of a new log). Its blocks hold data as far as the kernel knows, so a write
    /// that ends inside a page no longer in the page cache (a spare made long before its roll,
    /// its clean pages dropped since) must first read that page from disk: one synchronous
    /// read per new page on the append path. A flush into such a segment therefore writes on
    /// to the end of its last page: zeros over zeros, and the page is whole without a read.
    zeroed: bool,
    /// The chain including appends prepared in the current group.
    chain: Chain,
    /// The chain at the durable end (`write_offset`): where `chain` goes back to when a group
    /// fails.
    durable: Chain,
    /// Set when a write or flush failed: the file state is unknown, so no more appends until the
    /// log is reopened and recovered.
    poisoned: Option<String>,
    /// The directory is ours while this is held; released before `close` answers, so that the
    /// caller can reopen right away.
    lock: Option<File>,
    /// Appends the next group can expect: those queued and those answered when the last group
    /// was answered.
    expected: usize,
    /// How long the last group's write and flush took.
    last_flush: Duration,
    /// With [`Durability::Interval`]: the thread that flushes behind the writer.
    flusher: Option<Flusher>,
    /// The thread that keeps a zero-filled spare segment ready for the next roll.
    spares: Option<Spares>,
    /// A spare was asked for since the active segment started.
    spare_asked: bool,
    /// The thread that writes index checkpoints at rolls.
    checkpointer: Option<Checkpointer>,
}

/// The appends of one group not yet flushed.
#[derive(Default)]
struct Group {
    buf: Vec<u8>,
    entries: Vec<(u64, StreamId, EventId, u64)>,
    /// Events per stream prepared in this group.
    stream_added: HashMap<StreamId, u64>,
    /// Event ids prepared in this group: (append index in the group, event index).
    ids: HashMap<EventId, (usize, usize)>,
    results: HashMap<usize, AppendResult>,
}

impl Group {
    fn clear(&mut self) {
        self.buf.clear();
        self.entries.clear();
        self.stream_added.clear();
        self.ids.clear();
        self.results.clear();
    }
}

/// The requests taken for one group.
#[derive(Default)]
struct Taken {
    appends: Vec<AppendRequest>,
    close: Option<oneshot::Sender<Result<()>>>,
    /// Event data of the appends.
    bytes: usize,
}

impl Taken {
    fn push(&mut self, request: Request) {
        match request {
            Request::Append(a) => {
                self.bytes += a
                    .events
                    .iter()
                    .map(|e| e.payload.len() + e.metadata.len())
                    .sum::<usize>();
                self.appends.push(a);
            }
            Request::Close(reply) => self.close = Some(reply),
        }
    }
}

impl Writer {
    /// The writer thread of a [`Durability::Fsync`] or [`Durability::NoSyncUnsafe`] log: takes
    /// appends from `rx` in groups, until it is closed.
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut group = Group::default();
        while let Some(first) = rx.blocking_recv() {
            let mut taken = Taken::default();
            taken.push(first);
            self.take_queued(&mut rx, &mut taken, None);
            // The writers answered last are on their way back with their next append: wait a
            // little for them so that one flush carries them all, instead of flushing the ones
            // queued now and leaving them for the next flush (groups alternating between two
            // halves of the writers). Bounded by a fraction of a flush, so an append waits at
            // most that much longer when fewer come back.
            if self.opts.durability == Durability::Fsync && taken.appends.len() < self.expected {
                let wait = (self.last_flush / GATHER_FRACTION).min(MAX_GATHER_WAIT);
                self.take_queued(&mut rx, &mut taken, Some(Instant::now() + wait));
            }
            let Taken { appends, close, .. } = taken;
            if !appends.is_empty() {
                let outcomes = self.commit_group(&appends, &mut group);
                // Those queued now and those answered now are the appends the next group can
                // count on; counted before the answers, which send writers back to the queue.
                self.expected = (rx.len() + appends.len()).min(MAX_GROUP_APPENDS);
                answer(appends, outcomes);
            }
            if let Some(reply) = close {
                let _ = reply.send(self.close());
                return;
            }
        }
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "closing the log failed");
        }
    }

    /// Takes what is queued into the group, up to its bounds; with a deadline, also what arrives
    /// until then or until the group holds `self.expected` appends.
    fn take_queued(
        &self,
        rx: &mut mpsc::Receiver<Request>,
        taken: &mut Taken,
        until: Option<Instant>,
    ) {
        while taken.close.is_none()
            && taken.appends.len() < MAX_GROUP_APPENDS
            && taken.bytes < MAX_GROUP_BYTES
        {
            match rx.try_recv() {
                Ok(request) => taken.push(request),
                Err(mpsc::error::TryRecvError::Empty) => match until {
                    Some(deadline)
                        if taken.appends.len() < self.expected && Instant::now() < deadline =>
                    {
                        // The writers coming back need the CPU more than this thread does.
                        std::thread::yield_now();
                    }
                    _ => break,
                },
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
    }

    /// The active segment is close enough to its end that the next appends may roll it: less
    /// than a sixteenth of it is left, at most 1 MiB (about 1,500 access records of a 64 MiB
    /// segment's 100,000). See [`Inline::rolls_soon`].
    fn near_roll(&self) -> bool {
        let margin = (self.opts.segment_size / 16).min(1 << 20);
        self.opts.segment_size.saturating_sub(self.write_offset) < margin
    }

    /// Writes the appends as one group (flushed as [`Durability`] says) and returns the answer
    /// for each, in order, for [`answer`].
    fn commit_group(
        &mut self,
        appends: &[AppendRequest],
        g: &mut Group,
    ) -> Vec<Result<AppendResult>> {
        g.clear();
        if self.poisoned.is_none()
            && let Some(why) = self.flusher.as_ref().and_then(Flusher::failed)
        {
            // What was acknowledged since the last good flush may not be on disk: as after a
            // failed flush of our own, only a reopen (which walks the tail) is safe.
            self.poisoned = Some(why);
        }
        let mut outcomes: Vec<Result<AppendResult>> = Vec::with_capacity(appends.len());
        // Appends before this index are durable.
        let mut flushed = 0;
        // A write of this group failed: the appends after it get the same answer rather than a
        // second try at a disk that just said no (a full disk would fail them one by one).
        let mut failed: Option<Error> = None;
        for (i, a) in appends.iter().enumerate() {
            if let Some(why) = &self.poisoned {
                outcomes.push(Err(Error::Backend(format!(
                    "the log stopped accepting appends after a write failure ({why}); reopen it"
                ))));
                continue;
            }
            if let Some(e) = &failed {
                outcomes.push(Err(error_copy(e)));
                continue;
            }
            let bytes: usize = a
                .events
                .iter()
                .map(|e| {
                    frame_len(
                        a.stream.as_str(),
                        e.event_type.as_str(),
                        &e.metadata,
                        &e.payload,
                    )
                })
                .sum();
            let end = self.write_offset + g.buf.len() as u64;
            if end + bytes as u64 > self.opts.segment_size && end > SEGMENT_HEADER_LEN as u64 {
                if !g.buf.is_empty() {
                    if let Err(e) = self.flush(g) {
                        fail_from(&mut outcomes, flushed, &e);
                        outcomes.push(Err(error_copy(&e)));
                        failed = Some(e);
                        continue;
                    }
                    flushed = i;
                }
                if let Err(e) = self.roll() {
                    outcomes.push(Err(error_copy(&e)));
                    failed = Some(e);
                    continue;
                }
            }
            outcomes.push(self.prepare(i, a, appends, g));
        }
        if !g.buf.is_empty()
            && let Err(e) = self.flush(g)
        {
            fail_from(&mut outcomes, flushed, &e);
        }
        outcomes
    }

    fn prepare(
        &mut self,
        i: usize,
        a: &AppendRequest,
        appends: &[AppendRequest],
        g: &mut Group,
    ) -> Result<AppendResult> {
        let committed_len = {
            let index = self.shared.index.read().expect("index lock");
            let mut stored = Vec::new();
            let mut pending = Vec::new();
            for (k, e) in a.events.iter().enumerate() {
                if let Some(p) = index.find_id(&e.id)? {
                    stored.push((k, p));
                } else if let Some(&(j, kk)) = g.ids.get(&e.id) {
                    pending.push((k, j, kk));
                }
            }
            if !stored.is_empty() || !pending.is_empty() {
                drop(index);
                return self.check_retry(a, &stored, &pending, appends, g);
            }
            index
                .streams
                .get(a.stream.as_str())
                .map_or(0, |s| s.positions.len() as u64)
        };
        let len = committed_len + g.stream_added.get(&a.stream).copied().unwrap_or(0);
        let actual = len.checked_sub(1).map(StreamVersion);
        let ok = match a.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => len == 0,
            ExpectedVersion::StreamExists => len > 0,
            ExpectedVersion::Exact(v) => actual == Some(v),
        };
        if !ok {
            return Err(Error::WrongExpectedVersion {
                stream: a.stream.clone(),
                expected: a.expected,
                actual,
            });
        }
        let time = CommitTime::now().0.max(self.chain.last_time);
        let n = a.events.len() as u64;
        let result = AppendResult {
            first_version: StreamVersion(len),
            last_version: StreamVersion(len + n - 1),
            first_position: GlobalPosition(self.chain.next_position),
            last_position: GlobalPosition(self.chain.next_position + n - 1),
            committed_at: CommitTime(time),
        };
        for (k, e) in a.events.iter().enumerate() {
            let offset = self.write_offset + g.buf.len() as u64;
            let hash = format::encode_record(
                &mut g.buf,
                &RecordFields {
                    batch_index: k as u32,
                    batch_len: n as u32,
                    // The group is written with one `write` at the current data end.
                    write_start: self.write_offset as u32,
                    position: self.chain.next_position,
                    version: len + k as u64,
                    commit_time: time,
                    id: *e.id.0.as_bytes(),
                    prev_hash: &self.chain.prev_hash,
                    stream: a.stream.as_str(),
                    event_type: e.event_type.as_str(),
                    metadata: &e.metadata,
                    payload: &e.payload,
                },
            );
            self.chain.next_position += 1;
            self.chain.prev_hash = hash;
            g.entries.push((offset, a.stream.clone(), e.id, time));
            g.ids.insert(e.id, (i, k));
        }
        self.chain.last_time = time;
        *g.stream_added.entry(a.stream.clone()).or_insert(0) += n;
        g.results.insert(i, result);
        Ok(result)
    }

    /// Some of the ids are known: this is a retry of exactly one earlier append (the same ids, in
    /// the same order, to the same stream, with the same content), or a conflict.
    fn check_retry(
        &self,
        a: &AppendRequest,
        stored: &[(usize, u64)],
        pending: &[(usize, usize, usize)],
        appends: &[AppendRequest],
        g: &Group,
    ) -> Result<AppendResult> {
        let n = a.events.len();
        if let Some(&(k, j, kk)) = pending.first() {
            let orig = &appends[j];
            let result = g.results[&j];
            let same = stored.is_empty()
                && pending.len() == n
                && orig.events.len() == n
                && orig.stream == a.stream
                && pending.iter().all(|&(k, jj, kk)| jj == j && kk == k)
                && orig.events == a.events;
            if same {
                return Ok(result);
            }
            return Err(Error::IdempotencyConflict {
                id: a.events[k].id,
                stored_stream: orig.stream.clone(),
                stored_position: GlobalPosition(result.first_position.0 + kk as u64),
            });
        }
        let (k0, p0) = stored[0];
        let conflict = |stored_stream: StreamId| Error::IdempotencyConflict {
            id: a.events[k0].id,
            stored_stream,
            stored_position: GlobalPosition(p0),
        };
        let same = k0 == 0 && stored.len() == n && stored.iter().all(|&(k, p)| p == p0 + k as u64);
        if !same {
            let first = self.shared.read_sync(&[p0])?;
            return Err(conflict(first[0].event.stream.clone()));
        }
        let records = self
            .shared
            .read_sync(&(p0..p0 + n as u64).collect::<Vec<_>>())?;
        let whole = records.iter().enumerate().all(|(k, r)| {
            r.batch_index == k as u32
                && r.batch_len == n as u32
                && r.event.stream == a.stream
                && r.event.id == a.events[k].id
                && r.event.event_type == a.events[k].event_type
                && r.event.metadata == a.events[k].metadata
                && r.event.payload == a.events[k].payload
        });
        if !whole {
            return Err(conflict(records[0].event.stream.clone()));
        }
        let first = &records[0].event;
        let last = &records[n - 1].event;
        Ok(AppendResult {
            first_version: first.version,
            last_version: last.version,
            first_position: first.position,
            last_position: last.position,
            committed_at: first.committed_at,
        })
    }

    /// Writes and flushes the group, then makes it visible. On failure nothing of the group is
    /// visible or acknowledged, and the group is dropped.
    fn flush(&mut self, g: &mut Group) -> Result<()> {
        let io = &self.opts.io;
        let started = Instant::now();
        let data = g.buf.len();
        if self.zeroed {
            let end = self.write_offset + data as u64;
            let page_end = end.next_multiple_of(PAGE).min(self.opts.segment_size);
            g.buf
                .resize(data + page_end.saturating_sub(end) as usize, 0);
        }
        let written = io.write_at(&self.active, &g.buf, self.write_offset);
        g.buf.truncate(data);
        let written = written.and_then(|()| match self.opts.durability {
            Durability::Fsync => io.sync_data(&self.active),
            Durability::Interval(_) | Durability::NoSyncUnsafe => Ok(()),
        });
        if let Err(e) = written {
            let e = Error::from_io(&self.active_path, e);
            g.clear();
            self.chain = self.durable;
            if !matches!(e, Error::StorageFull { .. }) {
                // EIO and the like: the device may have lost or torn what it was given, and
                // after a failed flush the kernel may report success for data it dropped
                // (fsyncgate). Only a reopen, whose recovery walks the tail, is safe.
                self.poisoned = Some(e.to_string());
            } else if let Err(why) = {
                // The room a spare takes goes back to the data before anyone is answered.
                self.discard_spare();
                self.recover_from_full()
            } {
                tracing::error!(error = %why, "cannot restore the log after a full disk");
                self.poisoned = Some(format!("{e}; then restoring the segment failed: {why}"));
            } else {
                tracing::warn!(error = %e, "append failed: storage full");
            }
            return Err(e);
        }
        self.last_flush = started.elapsed();
        let stats = &self.shared.stats;
        if self.opts.durability == Durability::Fsync {
            stats.syncs.fetch_add(1, Ordering::Relaxed);
        }
        stats.groups.fetch_add(1, Ordering::Relaxed);
        stats
            .appends
            .fetch_add(g.results.len() as u64, Ordering::Relaxed);
        stats
            .events
            .fetch_add(g.entries.len() as u64, Ordering::Relaxed);
        self.write_offset += g.buf.len() as u64;
        self.durable = self.chain;
        let count = {
            let mut index = self.shared.index.write().expect("index lock");
            for (offset, stream, id, time) in g.entries.drain(..) {
                index.push(offset, stream.as_str(), id, time);
            }
            index.segments.last_mut().expect("active").data_end = self.write_offset;
            index.head_hash = self.chain.prev_hash;
            index.count()
        };
        self.head_tx.send_replace(count);
        if let Some(flusher) = &self.flusher {
            flusher.written(Written {
                file: self.active.clone(),
                segment: self.active_id,
                offset: self.write_offset,
                count,
            });
        }
        g.clear();
        // Half of a segment that did not come from a roll (the first one, or the active one at
        // open) is written: time to make the next one, while the other half gives the spare
        // thread time. Not at once at open: a log that writes little would hold a second
        // segment's worth of zeros for nothing, and a new log's first writes would share the
        // disk with the zeros. After a roll the next spare is asked for at once.
        if !self.spare_asked && self.write_offset >= self.opts.segment_size / 2 {
            self.spare_asked = true;
            if let Some(spares) = &self.spares {
                spares.request();
            }
        }
        Ok(())
    }

    /// Gives the spare segment's room back, after a write failed for lack of space.
    fn discard_spare(&mut self) {
        if let Some(spares) = &self.spares {
            spares.discard();
        }
        // Ask again at the next roll or half-segment; the thread checks the room first.
        self.spare_asked = false;
    }

    /// The next segment: from the spare if one is ready (zero-filled; see `spare`), else
    /// created and fallocated here.
    /// Also says whether the segment is zero-filled (see [`Writer::zeroed`]).
    fn new_segment(&mut self, header: &SegmentHeader) -> Result<(File, bool)> {
        if let Some(zeroed) = self.spares.as_ref().and_then(Spares::take) {
            match spare::segment_from_zeroed(&self.dir, &zeroed, header, &*self.opts.io) {
                Ok(f) => {
                    self.shared
                        .stats
                        .zero_filled_segments
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok((f, true));
                }
                Err(e) => {
                    // The spare is gone either way; a segment left in place that could not be
                    // removed is found by the caller. Otherwise the usual way may still work.
                    if segment_path(&self.dir, header.id).exists() {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, "starting a segment from the spare failed; it is fallocated");
                }
            }
        }
        create_segment(&self.dir, header, &self.opts).map(|f| (f, false))
    }

    /// Closes the active segment at its data end and starts the next one.
    ///
    /// On a full disk the old segment stays active (cut to its data end) and the append that
    /// needed the new one fails; the next append that does not fit tries again.
    fn roll(&mut self) -> Result<()> {
        let io = &self.opts.io;
        // A closed segment ends exactly at its data, so recovery has no tail to scan in it.
        if let Err(e) = io
            .set_len(&self.active, self.write_offset)
            .and_then(|()| io.sync_all(&self.active))
        {
            // Cutting a file needs no space, and its data was flushed before: after a full
            // disk, the old segment simply stays active, with or without its preallocated tail
            // (zeros after the data end are what recovery expects).
            let e = Error::from_io(&self.active_path, e);
            if !matches!(e, Error::StorageFull { .. }) {
                self.poisoned = Some(e.to_string());
            }
            return Err(e);
        }
        let header = SegmentHeader {
            id: self.active_id + 1,
            first_position: self.chain.next_position,
            prev_hash: self.chain.prev_hash,
        };
        let next_path = segment_path(&self.dir, header.id);
        let created = self.new_segment(&header).and_then(|(file, zeroed)| {
            let read = open_segment_file(&self.dir, header.id, false).inspect_err(|_| {
                remove_segment(&self.dir, &next_path);
            })?;
            Ok((file, zeroed, Arc::new(read)))
        });
        let (file, zeroed, read) = match created {
            Ok(created) => created,
            Err(e) => {
                if matches!(e, Error::StorageFull { .. }) {
                    self.discard_spare();
                }
                if next_path.exists() {
                    self.poisoned = Some(format!(
                        "{e}; and the unused segment {} could not be removed",
                        next_path.display()
                    ));
                }
                return Err(e);
            }
        };
        self.shared
            .index
            .write()
            .expect("index lock")
            .segments
            .push(Segment {
                file: read,
                first_position: header.first_position,
                offsets: Vec::new(),
                data_end: SEGMENT_HEADER_LEN as u64,
            });
        self.active = Arc::new(file);
        self.active_id = header.id;
        self.active_path = segment_path(&self.dir, header.id);
        self.write_offset = SEGMENT_HEADER_LEN as u64;
        self.zeroed = zeroed;
        // The spare was used (or there was none): make the next one now, so that it is ready
        // long before this segment fills.
        self.spare_asked = true;
        if let Some(spares) = &self.spares {
            spares.request();
        }
        let due = {
            let index = self.shared.index.read().expect("index lock");
            index.count() - index.checkpointed >= self.opts.checkpoint_interval
        };
        if due {
            // Off this thread: appends do not wait for the chunk (see `Checkpointer`).
            match &self.checkpointer {
                Some(c) => c.request(),
                None => {
                    if let Err(e) = write_checkpoint(&self.dir, &self.shared.index) {
                        tracing::warn!(error = %e, "writing the index checkpoint failed");
                    }
                }
            }
        }
        Ok(())
    }

    /// [`Self::shutdown`] for `FileLog::close`: the directory is released before the caller is
    /// answered, so that it can reopen right away.
    fn close(&mut self) -> Result<()> {
        let result = self.shutdown();
        drop(self.lock.take());
        result
    }

    fn shutdown(&mut self) -> Result<()> {
        if let Some(spares) = self.spares.take() {
            spares.stop();
        }
        // From here on this thread is the only checkpoint writer.
        if let Some(c) = self.checkpointer.take() {
            c.stop();
        }
        let mark = self.flusher.take().and_then(Flusher::stop);
        if self.poisoned.is_some() {
            // Recovery on the next open sorts out the tail; a checkpoint now could be wrong.
            return Ok(());
        }
        let io = &self.opts.io;
        io.set_len(&self.active, self.write_offset)
            .and_then(|()| io.sync_all(&self.active))
            .map_err(io_err(&self.active_path))?;
        if let Some(mut mark) = mark {
            // Closed cleanly: all of it is known durable, so open will refuse any damage.
            mark.write(
                self.active_id,
                self.write_offset,
                self.durable.next_position,
            )
            .map_err(io_err(&mark.path))?;
        }
        match write_checkpoint(&self.dir, &self.shared.index) {
            // Every event is durable in the segments; the next open replays what the
            // checkpoint would have spared it.
            Err(e @ Error::StorageFull { .. }) => {
                tracing::warn!(error = %e, "no room to write the index checkpoint on close");
                Ok(())
            }
            other => other,
        }
    }

    /// After a write or flush of the active segment failed for lack of space: makes the file
    /// hold exactly the durable data again, so that appends can go on once there is room,
    /// without a reopen. The failed group was never acknowledged nor indexed, and `chain` is
    /// already back at `durable`.
    ///
    /// Why this is safe:
    /// - Every byte before `write_offset` was made durable by its own successful flush before
    ///   it was acknowledged; a later failure cannot undo that. A full disk refuses to allocate,
    ///   it does not tear blocks it was given (that is EIO, which poisons the log instead).
    /// - The failed write may have left part of the group after `write_offset` (a short write,
    ///   or all of it when the flush failed). After a failed flush the kernel may have marked
    ///   those pages clean without writing them (fsyncgate), so retrying the flush proves
    ///   nothing, and the bytes are not ours to keep anyway. Cutting the file at `write_offset`
    ///   removes every one of them from the page cache and the disk, and frees their blocks: no
    ///   stale frame is left for recovery or a later write to trip over, and the next write
    ///   starts on a clean end. The page that holds both the durable tail and the start of the
    ///   failed write is zeroed after `write_offset` by the cut, so cache and disk agree on it,
    ///   and the next successful flush writes it whole.
    /// - The cut is flushed (`fsync`: it changes the size) before anything else is accepted, and
    ///   the durable tail is read back and checked against the chain head: the last record's
    ///   CRC and hash (or the segment header when the segment has no record yet). Appends
    ///   resume only if all of this holds; otherwise the log is poisoned until reopened.
    ///
    /// The segment loses its preallocated tail with the cut; it grows as written until the next
    /// segment, which is preallocated again.
    fn recover_from_full(&mut self) -> std::result::Result<(), String> {
        let io = &self.opts.io;
        io.set_len(&self.active, self.write_offset)
            .and_then(|()| io.sync_all(&self.active))
            .map_err(|e| format!("cutting {} back: {e}", self.active_path.display()))?;
        self.check_durable_tail().map_err(|e| e.to_string())
    }

    /// Reads back the end of the active segment's durable data and holds it against `durable`.
    fn check_durable_tail(&self) -> Result<()> {
        let last = {
            let index = self.shared.index.read().expect("index lock");
            let segment = index.segments.last().expect("active segment");
            (!segment.offsets.is_empty()).then(|| index.locate(index.count() - 1))
        };
        let path = &self.active_path;
        let Some(last) = last else {
            let header = read_header(path, &self.active, self.active_id)?;
            return check_header_chain(path, &header, &self.durable);
        };
        let mut buf = vec![0u8; last.len];
        self.active
            .read_exact_at(&mut buf, last.offset)
            .map_err(io_err(path))?;
        let bad = |why: String| corrupt(path, last.offset, last.position, why);
        let record = decode_record(&buf).map_err(|e| bad(e.to_string()))?;
        if last.offset + last.len as u64 != self.write_offset
            || record.position + 1 != self.durable.next_position
            || record.hash() != self.durable.prev_hash
        {
            return Err(bad(
                "after a failed write, the last durable record is not the chain head".into(),
            ));
        }
        Ok(())
    }
}

/// The active segment as far as it was written: what a flush makes durable.
#[derive(Clone)]
struct Written {
    file: Arc<File>,
    segment: u64,
    offset: u64,
    count: u64,
}

struct FlushState {
    written: Written,
    /// When the first write not yet taken by a flush was made; `None` when nothing waits.
    dirty_since: Option<Instant>,
    stop: bool,
    /// Why a flush failed; the writer stops accepting appends.
    failed: Option<String>,
}

/// The thread that flushes a [`Durability::Interval`] log behind its writer, and records each
/// flush in the flush mark. It is the only one writing the mark while it runs (open writes the
/// first, the writer the last on close), so marks only ever move forward.
struct Flusher {
    state: Arc<(Mutex<FlushState>, Condvar)>,
    thread: Option<std::thread::JoinHandle<MarkFile>>,
}

impl Flusher {
    fn start(
        every: Duration,
        mark: MarkFile,
        written: Written,
        shared: Arc<Shared>,
        io: Arc<dyn LogIo>,
    ) -> Result<Self> {
        let state = Arc::new((
            Mutex::new(FlushState {
                written,
                dirty_since: None,
                stop: false,
                failed: None,
            }),
            Condvar::new(),
        ));
        let for_thread = state.clone();
        let path = mark.path.clone();
        let thread = std::thread::Builder::new()
            .name("keten-log-flusher".into())
            .spawn(move || flush_loop(&for_thread, every, mark, &shared, &*io))
            .map_err(|e| Error::from_io(&path, e))?;
        Ok(Self {
            state,
            thread: Some(thread),
        })
    }

    /// The writer wrote up to `w`: flush it within the interval.
    fn written(&self, w: Written) {
        let (lock, wake) = &*self.state;
        let mut st = lock.lock().expect("flush state");
        st.written = w;
        if st.dirty_since.is_none() {
            st.dirty_since = Some(Instant::now());
            wake.notify_one();
        }
    }

    fn failed(&self) -> Option<String> {
        self.state.0.lock().expect("flush state").failed.clone()
    }

    /// Stops the thread and returns its mark file, for the writer's last mark.
    fn stop(mut self) -> Option<MarkFile> {
        self.signal_stop();
        self.thread.take().and_then(|t| t.join().ok())
    }

    fn signal_stop(&self) {
        let (lock, wake) = &*self.state;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        wake.notify_all();
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // A writer that panicked must not leave the thread waiting for ever.
        self.signal_stop();
    }
}

fn flush_loop(
    state: &(Mutex<FlushState>, Condvar),
    every: Duration,
    mut mark: MarkFile,
    shared: &Shared,
    io: &dyn LogIo,
) -> MarkFile {
    let (lock, wake) = state;
    let mut st = lock.lock().expect("flush state");
    loop {
        while st.dirty_since.is_none() && !st.stop {
            st = wake.wait(st).expect("flush state");
        }
        // On stop the writer flushes the rest itself, and writes the last mark.
        if st.stop {
            return mark;
        }
        let deadline = st.dirty_since.expect("dirty") + every;
        while !st.stop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = wake
                .wait_timeout(st, deadline - now)
                .expect("flush state")
                .0;
        }
        if st.stop {
            return mark;
        }
        let w = st.written.clone();
        st.dirty_since = None;
        drop(st);
        // The writer wrote up to `w` before it handed `w` over, so this flush covers it; the
        // mark is written only once the flush returned, so it never claims more than is durable.
        let flushed = io
            .sync_data(&w.file)
            .and_then(|()| mark.write(w.segment, w.offset, w.count));
        st = lock.lock().expect("flush state");
        match flushed {
            Ok(()) => {
                shared.stats.syncs.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(
                    segment = w.segment,
                    error = %e,
                    "flushing the log failed; appends stop until it is reopened"
                );
                st.failed = Some(format!("flushing segment {} failed: {e}", w.segment));
                return mark;
            }
        }
    }
}

/// The flush mark file ([`FlushMark`]) open for writing.
struct MarkFile {
    file: File,
    path: PathBuf,
    next_seq: u64,
    io: Arc<dyn LogIo>,
}

impl MarkFile {
    /// Writes a fresh mark file with both slots holding `mark`, durably and under a temporary
    /// name first, so that the file is never seen without a valid slot.
    fn create(dir: &Path, mark: FlushMark, io: Arc<dyn LogIo>) -> Result<Self> {
        let path = dir.join(FLUSH_MARK_FILE);
        let tmp = dir.join(format!("{FLUSH_MARK_FILE}.tmp"));
        let make = || -> std::io::Result<File> {
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            let first = FlushMark { seq: 0, ..mark };
            let second = FlushMark { seq: 1, ..mark };
            let mut both = Vec::with_capacity(128);
            both.extend_from_slice(&first.encode());
            both.extend_from_slice(&second.encode());
            io.write_at(&f, &both, 0)?;
            io.sync_all(&f)?;
            std::fs::rename(&tmp, &path)?;
            sync_dir(dir)?;
            Ok(f)
        };
        let file = make().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::from_io(&path, e)
        })?;
        Ok(Self {
            file,
            path,
            next_seq: 2,
            io,
        })
    }

    /// Rewrites the mark file an earlier open left, in place, to say `mark`: one slot, then the
    /// other, each flushed, so that a torn write still leaves a valid slot (never one claiming
    /// more than is durable: everything kept is durable when this runs). `None` when there is
    /// no whole mark file to rewrite.
    fn rewrite(dir: &Path, mark: FlushMark, io: Arc<dyn LogIo>) -> Result<Option<Self>> {
        let path = dir.join(FLUSH_MARK_FILE);
        let Some(last) = crate::recovery::read_flush_mark(dir)? else {
            return Ok(None);
        };
        let file = match File::options().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::from_io(&path, e)),
        };
        if file.metadata().map_err(io_err(&path))?.len() < 128 {
            return Ok(None);
        }
        let mut this = Self {
            file,
            path,
            next_seq: last.seq + 1,
            io,
        };
        for _ in 0..2 {
            this.write(mark.segment, mark.offset, mark.count)
                .map_err(|e| Error::from_io(&this.path, e))?;
        }
        Ok(Some(this))
    }

    fn write(&mut self, segment: u64, offset: u64, count: u64) -> std::io::Result<()> {
        let mark = FlushMark {
            seq: self.next_seq,
            segment,
            offset,
            count,
        };
        self.io
            .write_at(&self.file, &mark.encode(), mark.slot_offset())?;
        self.io.sync_data(&self.file)?;
        self.next_seq += 1;
        Ok(())
    }
}

/// Removes a flush mark left by an earlier open in [`Durability::Interval`], once everything is
/// durable (open syncs first): in the other modes the whole log is held to the strict rules.
fn remove_flush_mark(dir: &Path) -> Result<()> {
    let path = dir.join(FLUSH_MARK_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir).map_err(io_err(dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::from_io(&path, e)),
    }
}

/// Answers each append with its outcome from [`Writer::commit_group`].
fn answer(appends: Vec<AppendRequest>, outcomes: Vec<Result<AppendResult>>) {
    for (a, outcome) in appends.into_iter().zip(outcomes) {
        let _ = a.reply.send(outcome);
    }
}

fn fail_from(outcomes: &mut [Result<AppendResult>], from: usize, e: &Error) {
    for o in outcomes.iter_mut().skip(from) {
        if o.is_ok() {
            *o = Err(error_copy(e));
        }
    }
}

/// A record read back, with its place in its append.
pub(crate) struct StoredRecord {
    pub event: RecordedEvent,
    pub batch_index: u32,
    pub batch_len: u32,
}

impl Shared {
    /// Reads the records at `positions` (all durable), checking each one's CRC.
    fn read_sync(&self, positions: &[u64]) -> Result<Vec<StoredRecord>> {
        let locations: Vec<Location> = {
            let index = self.index.read().expect("index lock");
            positions.iter().map(|&p| index.locate(p)).collect()
        };
        read_locations(&locations)
    }

    /// The number of visible events under `until`.
    fn cutoff(index: &Index, until: Until) -> u64 {
        let count = index.count();
        match until {
            Until::Latest => count,
            Until::Position(p) => count.min(p.0.saturating_add(1)),
            Until::Time(t) => index.count_at_time(t.0),
        }
    }

    fn read_all_sync(
        &self,
        from: ReadFrom<GlobalPosition>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        let positions = {
            let index = self.index.read().expect("index lock");
            let visible = Self::cutoff(&index, until);
            select(visible, start_index(from, |p| p.0), direction, limit)
        };
        self.read_ordered(positions)
    }

    /// Returns the events and the log's event count when they were selected.
    fn read_stream_sync(
        &self,
        stream: &StreamId,
        from: ReadFrom<StreamVersion>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> Result<(Vec<RecordedEvent>, u64)> {
        let (positions, count) = {
            let index = self.index.read().expect("index lock");
            let count = index.count();
            let Some(all) = index.streams.get(stream.as_str()).map(|s| &s.positions) else {
                return Ok((Vec::new(), count));
            };
            let visible = Self::cutoff(&index, until);
            let n = all.partition_point(|p| p < visible) as u64;
            let versions = select(n, start_index(from, |v| v.0), direction, limit);
            let positions: Vec<u64> = versions.iter().map(|&v| all.at(v as usize)).collect();
            (positions, count)
        };
        let events = self.read_ordered(positions)?;
        // The index said these are the stream's; the records must agree.
        if let Some(e) = events.iter().find(|e| &e.stream != stream) {
            let location = self.index.read().expect("index lock").locate(e.position.0);
            return Err(corrupt(
                &location.file.path,
                location.offset,
                e.position.0,
                format!(
                    "the index puts this record in stream `{stream}`, but it is in `{}`",
                    e.stream
                ),
            ));
        }
        Ok((events, count))
    }

    /// Reads positions given in forward or backward order, with the IO done front to back.
    fn read_ordered(&self, mut positions: Vec<u64>) -> Result<Vec<RecordedEvent>> {
        let backward = positions.len() > 1 && positions[0] > positions[1];
        if backward {
            positions.reverse();
        }
        let mut events: Vec<RecordedEvent> = self
            .read_sync(&positions)?
            .into_iter()
            .map(|r| r.event)
            .collect();
        if backward {
            events.reverse();
        }
        Ok(events)
    }
}

/// A read's start as an index into the positions or versions it reads.
fn start_index<T>(from: ReadFrom<T>, index: impl FnOnce(T) -> u64) -> ReadFrom<u64> {
    match from {
        ReadFrom::Start => ReadFrom::Start,
        ReadFrom::End => ReadFrom::End,
        ReadFrom::At(t) => ReadFrom::At(index(t)),
    }
}

/// Picks up to `limit` of the indices `0..n` from `from` in `direction`.
fn select(n: u64, from: ReadFrom<u64>, direction: Direction, limit: usize) -> Vec<u64> {
    let limit = limit as u64;
    match direction {
        Direction::Forward => {
            let start = match from {
                ReadFrom::Start => 0,
                ReadFrom::End => n,
                ReadFrom::At(i) => i.min(n),
            };
            (start..n.min(start.saturating_add(limit))).collect()
        }
        Direction::Backward => {
            if n == 0 {
                return Vec::new();
            }
            let start = match from {
                ReadFrom::Start => 0,
                ReadFrom::End => n - 1,
                ReadFrom::At(i) => i.min(n - 1),
            };
            let stop = (start + 1).saturating_sub(limit);
            (stop..=start).rev().collect()
        }
    }
}

/// Reads records, one `pread` per run of adjacent records in a file.
fn read_locations(locations: &[Location]) -> Result<Vec<StoredRecord>> {
    let mut out = Vec::with_capacity(locations.len());
    let mut i = 0;
    while i < locations.len() {
        let first = &locations[i];
        let mut j = i + 1;
        let mut end = first.offset + first.len as u64;
        while j < locations.len()
            && Arc::ptr_eq(&locations[j].file, &first.file)
            && locations[j].offset == end
            && end - first.offset < (4 << 20)
        {
            end += locations[j].len as u64;
            j += 1;
        }
        let f = &first.file;
        let mut buf = vec![0u8; (end - first.offset) as usize];
        f.file
            .read_exact_at(&mut buf, first.offset)
            .map_err(io_err(&f.path))?;
        let mut at = 0usize;
        for loc in &locations[i..j] {
            let bad = |why: String| corrupt(&f.path, loc.offset, loc.position, why);
            let r = decode_record(&buf[at..at + loc.len]).map_err(|e| bad(e.to_string()))?;
            if r.frame.len() != loc.len || r.position != loc.position {
                return Err(bad(format!(
                    "expected the record of position {} here, found position {}",
                    loc.position, r.position
                )));
            }
            out.push(StoredRecord {
                event: r.to_event(),
                batch_index: r.batch_index,
                batch_len: r.batch_len,
            });
            at += loc.len;
        }
        i = j;
    }
    Ok(out)
}

fn check_append(events: &[ProposedEvent]) -> Result<()> {
    if events.is_empty() {
        return Err(Error::InvalidAppend(
            "an append needs at least one event".into(),
        ));
    }
    if events.len() > MAX_APPEND_EVENTS {
        return Err(Error::InvalidAppend(format!(
            "{} events in one append; at most {MAX_APPEND_EVENTS}",
            events.len()
        )));
    }
    let mut total = 0usize;
    let mut ids = std::collections::HashSet::with_capacity(events.len());
    for e in events {
        let data = e.metadata.len() + e.payload.len();
        if data > MAX_EVENT_DATA {
            return Err(Error::InvalidAppend(format!(
                "event {}: metadata and payload are {data} bytes; at most {MAX_EVENT_DATA}",
                e.id
            )));
        }
        total += data + 400;
        if !ids.insert(e.id) {
            return Err(Error::InvalidAppend(format!(
                "event id {} appears twice in one append",
                e.id
            )));
        }
    }
    if total > MAX_APPEND_BYTES {
        return Err(Error::InvalidAppend(format!(
            "the append is about {total} bytes; at most {MAX_APPEND_BYTES}"
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl EventStore for FileLog {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult> {
        check_append(&events)?;
        let (reply, answer) = oneshot::channel();
        let append = AppendRequest {
            stream: stream.clone(),
            expected,
            events,
            reply,
        };
        match &self.writer {
            WriterHandle::Inline(inline) if inline.rolls_soon.load(Ordering::Relaxed) => {
                let inline = inline.clone();
                // Not awaited: the answer comes through `answer`, and a task that cannot run
                // (the runtime shutting down) drops the append, which answers `Closed`.
                drop(tokio::task::spawn_blocking(move || inline.append(append)));
            }
            WriterHandle::Inline(inline) => inline.append(append),
            WriterHandle::Thread(tx) => tx
                .send(Request::Append(append))
                .await
                .map_err(|_| Error::Closed)?,
        }
        answer.await.map_err(|_| Error::Closed)?
    }

    fn append_deferred(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> futures::future::BoxFuture<'_, Result<AppendResult>> {
        let inline = match &self.writer {
            // Near a roll, the append goes through the blocking pool as `append` sends it.
            WriterHandle::Inline(inline) if !inline.rolls_soon.load(Ordering::Relaxed) => {
                inline.clone()
            }
            _ => return Box::pin(async move { self.append(&stream, expected, events).await }),
        };
        if let Err(e) = check_append(&events) {
            return Box::pin(std::future::ready(Err(e)));
        }
        let (reply, mut answer) = oneshot::channel();
        inline.enqueue(AppendRequest {
            stream,
            expected,
            events,
            reply,
        });
        Box::pin(async move {
            // Written by another append's group meanwhile, or now by this caller (with whatever
            // else is queued).
            if let Ok(answered) = answer.try_recv() {
                return answered;
            }
            inline.drain();
            answer.await.map_err(|_| Error::Closed)?
        })
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: ReadFrom<StreamVersion>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        let shared = self.shared.clone();
        let stream = stream.clone();
        blocking(move || {
            shared
                .read_stream_sync(&stream, from, direction, limit, until)
                .map(|(events, _)| events)
        })
        .await
    }

    async fn read_all(
        &self,
        from: ReadFrom<GlobalPosition>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        let shared = self.shared.clone();
        blocking(move || shared.read_all_sync(from, direction, limit, until)).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<StreamVersion>> {
        let index = self.shared.index.read().expect("index lock");
        Ok(index
            .streams
            .get(stream.as_str())
            .and_then(|s| (s.positions.len() as u64).checked_sub(1))
            .map(StreamVersion))
    }

    async fn head(&self) -> Result<Option<GlobalPosition>> {
        let index = self.shared.index.read().expect("index lock");
        Ok(index.count().checked_sub(1).map(GlobalPosition))
    }

    async fn position_at(&self, time: CommitTime) -> Result<Option<GlobalPosition>> {
        let index = self.shared.index.read().expect("index lock");
        Ok(index
            .count_at_time(time.0)
            .checked_sub(1)
            .map(GlobalPosition))
    }

    async fn subscribe_all(
        &self,
        after: Option<GlobalPosition>,
        filter: SubscriptionFilter,
    ) -> Result<EventStream> {
        let state = AllSubscription {
            shared: self.shared.clone(),
            head: self.shared.head.clone(),
            next: after.map_or(0, |p| p.0 + 1),
            filter,
            buffer: VecDeque::new(),
            failed: false,
        };
        Ok(futures::stream::unfold(state, AllSubscription::next).boxed())
    }

    async fn subscribe_stream(
        &self,
        stream: &StreamId,
        after: Option<StreamVersion>,
    ) -> Result<EventStream> {
        let state = StreamSubscription {
            shared: self.shared.clone(),
            head: self.shared.head.clone(),
            stream: stream.clone(),
            next: after.map_or(0, |v| v.0 + 1),
            buffer: VecDeque::new(),
            failed: false,
        };
        Ok(futures::stream::unfold(state, StreamSubscription::next).boxed())
    }

    async fn verify(&self) -> Result<u64> {
        let shared = self.shared.clone();
        blocking(move || verify_open(&shared)).await
    }
}

/// A whole-log subscription: reads a batch after its last position, filters it, and when caught
/// up waits for the head to move. Its buffer is one batch, whatever the subscriber's pace.
struct AllSubscription {
    shared: Arc<Shared>,
    head: watch::Receiver<u64>,
    next: u64,
    filter: SubscriptionFilter,
    buffer: VecDeque<RecordedEvent>,
    failed: bool,
}

impl AllSubscription {
    async fn next(mut self) -> Option<(Result<RecordedEvent>, Self)> {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                return Some((Ok(e), self));
            }
            if self.failed {
                return None;
            }
            let shared = self.shared.clone();
            let next = self.next;
            let head = *self.head.borrow();
            if head <= next {
                // Caught up: wait for the next group rather than read nothing. The head is what
                // the index holds (sent after it), so nothing before it is missed.
                if self.head.wait_for(|&count| count > next).await.is_err() {
                    return None;
                }
                continue;
            }
            let batch = subscriber_read(head - next, move || {
                shared.read_all_sync(
                    ReadFrom::At(GlobalPosition(next)),
                    Direction::Forward,
                    SUBSCRIPTION_BATCH,
                    Until::Latest,
                )
            })
            .await;
            match batch {
                Err(e) => {
                    self.failed = true;
                    return Some((Err(e), self));
                }
                Ok(events) if events.is_empty() => {
                    if self.head.wait_for(|&count| count > next).await.is_err() {
                        return None;
                    }
                }
                Ok(events) => {
                    self.next = events.last().expect("non-empty").position.0 + 1;
                    let filter = &self.filter;
                    self.buffer
                        .extend(events.into_iter().filter(|e| filter.matches(e)));
                }
            }
        }
    }
}

struct StreamSubscription {
    shared: Arc<Shared>,
    head: watch::Receiver<u64>,
    stream: StreamId,
    next: u64,
    buffer: VecDeque<RecordedEvent>,
    failed: bool,
}

impl StreamSubscription {
    async fn next(mut self) -> Option<(Result<RecordedEvent>, Self)> {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                return Some((Ok(e), self));
            }
            if self.failed {
                return None;
            }
            // The stream's next event's position, if it has one, and the log's event count.
            let (first, seen) = {
                let index = self.shared.index.read().expect("index lock");
                let first = index
                    .streams
                    .get(self.stream.as_str())
                    .and_then(|s| s.positions.get(self.next as usize));
                (first, index.count())
            };
            let Some(first) = first else {
                // Caught up. Most appends are to other streams: each wake-up looks at the index
                // (above) before it reads anything.
                if self.head.wait_for(|&count| count > seen).await.is_err() {
                    return None;
                }
                continue;
            };
            let shared = self.shared.clone();
            let next = self.next;
            let stream = self.stream.clone();
            // How recent the events are, not how many: a stream's older events are spread over
            // the log, and may be on disk.
            let batch = subscriber_read(seen.saturating_sub(first), move || {
                shared.read_stream_sync(
                    &stream,
                    ReadFrom::At(StreamVersion(next)),
                    Direction::Forward,
                    SUBSCRIPTION_BATCH,
                    Until::Latest,
                )
            })
            .await;
            match batch {
                Err(e) => {
                    self.failed = true;
                    return Some((Err(e), self));
                }
                Ok((events, seen)) if events.is_empty() => {
                    if self.head.wait_for(|&count| count > seen).await.is_err() {
                        return None;
                    }
                }
                Ok((events, _)) => {
                    self.next = events.last().expect("non-empty").version.0 + 1;
                    self.buffer.extend(events);
                }
            }
        }
    }
}

/// Walks the durable part of an open log: every header, record checksum and chain link.
fn verify_open(shared: &Shared) -> Result<u64> {
    let (segments, count, head_hash): (Vec<(Arc<SegmentFile>, u64)>, u64, Hash) = {
        let index = shared.index.read().expect("index lock");
        (
            index
                .segments
                .iter()
                .map(|s| (s.file.clone(), s.data_end))
                .collect(),
            index.count(),
            index.head_hash,
        )
    };
    let mut chain = Chain::start();
    for (f, data_end) in &segments {
        let header = read_header(&f.path, &f.file, f.id)?;
        check_header_chain(&f.path, &header, &chain)?;
        // What the records say, then held against the index: a wrong index (a tampered or buggy
        // checkpoint) would misdirect reads and idempotency checks while every record is sound.
        let mut seen = Vec::new();
        scan_segment(
            &f.path,
            &f.file,
            SEGMENT_HEADER_LEN as u64,
            *data_end,
            &mut chain,
            false,
            &mut |r, offset| {
                seen.push((
                    r.position,
                    offset,
                    r.version,
                    r.commit_time,
                    EventId(uuid::Uuid::from_bytes(r.id)),
                    r.stream.to_owned(),
                ))
            },
        )?;
        let index = shared.index.read().expect("index lock");
        for (position, offset, version, time, id, stream) in seen {
            let location = index.locate(position);
            let disagree = if location.offset != offset || location.file.id != f.id {
                Some(format!(
                    "the index locates it at offset {}",
                    location.offset
                ))
            } else if index.time(position) != time {
                Some("the index has another commit time".to_string())
            } else if !index.ids.has(&id, position) {
                Some(format!("the index maps its id {id} elsewhere"))
            } else if index
                .streams
                .get(stream.as_str())
                .and_then(|s| s.positions.get(version as usize))
                != Some(position)
            {
                Some(format!(
                    "the index does not have it as version {version} of `{stream}`"
                ))
            } else {
                None
            };
            if let Some(why) = disagree {
                return Err(corrupt(
                    &f.path,
                    offset,
                    position,
                    format!("the index disagrees with this record: {why}"),
                ));
            }
        }
    }
    if chain.next_position != count || chain.prev_hash != head_hash {
        let (f, end) = segments.last().expect("a segment");
        return Err(corrupt(
            &f.path,
            *end,
            chain.next_position,
            format!(
                "the log holds {} events but the index {count}, or its head hash differs",
                chain.next_position
            ),
        ));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(n: u64, from: ReadFrom<u64>, direction: Direction, limit: usize, expect: &[u64]) {
        assert_eq!(select(n, from, direction, limit), expect);
    }

    #[test]
    fn select_picks_the_right_indices() {
        use Direction::{Backward, Forward};
        use ReadFrom::{At, End, Start};
        check(5, Start, Forward, 2, &[0, 1]);
        check(5, Start, Forward, usize::MAX, &[0, 1, 2, 3, 4]);
        check(5, At(3), Forward, 10, &[3, 4]);
        check(5, At(9), Forward, 10, &[]);
        check(5, End, Forward, 10, &[]);
        check(5, End, Backward, 2, &[4, 3]);
        check(5, At(1), Backward, 10, &[1, 0]);
        check(5, At(9), Backward, 1, &[4]);
        check(5, Start, Backward, 10, &[0]);
        check(5, End, Backward, 0, &[]);
        check(5, Start, Forward, 0, &[]);
        check(0, End, Backward, 3, &[]);
        check(0, Start, Forward, 3, &[]);
    }
}
