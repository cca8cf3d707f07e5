//! Zero-filled spare segments.
//!
//! A segment whose blocks were reserved with `fallocate` is made of *unwritten* extents: the
//! first write into each block also converts its extent, so the flush that follows writes
//! metadata as well as data. Measured here (BENCHMARKS.md, issue 4): one writer flushing 100
//! records at a time reached about 340,000 events/s on a fallocated file and 690,000 on one whose
//! blocks had been written with zeros and synced beforehand; single `fdatasync`s about 5,800/s
//! against 8,000/s. So a segment is best made by writing zeros over its whole size and syncing
//! them, which takes time in proportion to the segment (about 0.35 s for 64 MiB here): too slow
//! for the writer thread, on which appends wait.
//!
//! A background thread therefore keeps one spare ready: the file [`SPARE_FILE`], zero-filled to
//! the segment size and made durable (`fsync`). At a roll the writer takes it, writes the new
//! segment's header into it, syncs and renames it into place ([`segment_from_spare`]); without a
//! spare ready it falls back to `create_segment` (fallocate), so a slow or failed spare never
//! holds an append up. The name ends in `.log.tmp`, which open removes as the leftover of an
//! interrupted segment creation: a spare is never mistaken for a segment, and one left by a crash
//! (whether or not the writer had written a header into it) is removed, not trusted.
//!
//! Full disk: a spare is made only when the file system has at least [`ROOM_FACTOR`] times its
//! size free, so it never takes the last of the space; one whose writes fail for lack of space
//! is removed at once; and when an append fails for lack of space the writer discards the spare
//! (waiting for a spare in the making to stop) before it answers, so the room it took is given
//! back to the data. Zeros are what recovery expects after a segment's data end, and a spare
//! holds nothing else.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::error::{Error, Result, is_storage_full};
use crate::format::{SegmentHeader, segment_path};
use crate::io::{LogIo, sync_dir};

/// The spare segment's file name. Open removes it (it ends in `.log.tmp`).
pub const SPARE_FILE: &str = "spare.log.tmp";

/// A spare (or a zero-filled first segment) is made only when the file system has at least this
/// many times its size free.
pub const ROOM_FACTOR: u64 = 4;

/// Zeros written per `write`.
const ZERO_CHUNK: usize = 1 << 20;

/// Whether the file system holding `dir` has room for a zero-filled file of `size` bytes, with
/// [`ROOM_FACTOR`] to spare. An unknown amount counts as no room.
pub fn room_for(dir: &Path, size: u64) -> bool {
    rustix::fs::statvfs(dir)
        .is_ok_and(|s| s.f_bavail.saturating_mul(s.f_frsize) >= size.saturating_mul(ROOM_FACTOR))
}

/// Creates `path` (truncating any file there) holding `size` zero bytes, written and made
/// durable. On failure, or when `cancel` is set between two writes, the file is removed.
pub fn make_zeroed(
    io: &dyn LogIo,
    path: &Path,
    size: u64,
    cancel: Option<&AtomicBool>,
) -> std::io::Result<()> {
    let made = (|| {
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut at = 0;
        while at < size {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "spare segment discarded",
                ));
            }
            let n = (size - at).min(ZERO_CHUNK as u64) as usize;
            io.write_at(&f, &zeros[..n], at)?;
            at += n as u64;
        }
        // `fsync`, not `fdatasync`: the size changed, and it must be durable before the file is
        // renamed into a segment.
        io.sync_all(&f)
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Turns the zero-filled file `zeroed` into segment `header.id`: header written and made durable
/// under the temporary name, then renamed into place and the directory synced, as
/// `create_segment` does (a segment file with a bad header is damage, never a crash). On failure
/// nothing is left: neither `zeroed` nor, if the rename was done but not made durable, the
/// segment (the caller checks for a segment file that could not be removed).
pub fn segment_from_zeroed(
    dir: &Path,
    zeroed: &Path,
    header: &SegmentHeader,
    io: &dyn LogIo,
) -> Result<File> {
    let path = segment_path(dir, header.id);
    let mut renamed = false;
    let result = (|| -> std::io::Result<File> {
        let f = File::options().read(true).write(true).open(zeroed)?;
        io.write_at(&f, &header.encode(), 0)?;
        // The size was made durable with the zeros: the header is data only.
        io.sync_data(&f)?;
        std::fs::rename(zeroed, &path)?;
        renamed = true;
        sync_dir(dir)?;
        Ok(f)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(zeroed);
        if renamed && let Err(e) = std::fs::remove_file(&path).and_then(|()| sync_dir(dir)) {
            tracing::error!(file = %path.display(), error = %e, "cannot remove an unused segment");
        }
        Error::from_io(&path, e)
    })
}

#[derive(Default)]
struct State {
    /// The writer wants a spare and none is ready or in the making.
    requested: bool,
    /// The thread is making one.
    busy: bool,
    /// [`SPARE_FILE`] is complete: zero-filled to the segment size and durable.
    ready: bool,
    stop: bool,
}

/// What the spare thread, the writer and [`crate::FileLog`] share.
#[derive(Default)]
pub struct SpareShared {
    state: Mutex<State>,
    changed: Condvar,
    /// Set to stop the spare in the making at its next write.
    cancel: AtomicBool,
    /// Spares completed.
    pub made: AtomicU64,
}

impl SpareShared {
    /// Blocks until no spare is asked for or in the making; says whether one is ready.
    pub fn settled(&self) -> bool {
        let mut st = self.state.lock().expect("spare state");
        while (st.requested || st.busy) && !st.stop {
            st = self.changed.wait(st).expect("spare state");
        }
        st.ready
    }
}

/// The writer's handle on the spare thread.
pub struct Spares {
    shared: Arc<SpareShared>,
    path: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spares {
    pub fn start(dir: &Path, size: u64, io: Arc<dyn LogIo>) -> Result<Self> {
        let shared = Arc::new(SpareShared::default());
        let path = dir.join(SPARE_FILE);
        let thread = {
            let shared = shared.clone();
            let path = path.clone();
            let owned = dir.to_path_buf();
            std::thread::Builder::new()
                .name("keten-log-spare".into())
                .spawn(move || spare_loop(&shared, &owned, &path, size, &*io))
                .map_err(|e| Error::from_io(dir, e))?
        };
        Ok(Self {
            shared,
            path,
            thread: Some(thread),
        })
    }

    pub fn shared(&self) -> Arc<SpareShared> {
        self.shared.clone()
    }

    /// Asks for a spare unless one is ready or in the making. Never waits.
    pub fn request(&self) {
        let mut st = self.shared.state.lock().expect("spare state");
        if !st.ready && !st.busy && !st.requested {
            st.requested = true;
            self.shared.changed.notify_all();
        }
    }

    /// The ready spare's path, now the caller's to rename or remove; `None` when none is ready
    /// (the caller makes its segment the old way). Never waits.
    pub fn take(&self) -> Option<PathBuf> {
        let mut st = self.shared.state.lock().expect("spare state");
        std::mem::take(&mut st.ready).then(|| self.path.clone())
    }

    /// Gives the spare's space back: stops one in the making (waiting for its current write to
    /// end), removes a ready one. For a full disk: the data needs the room more.
    pub fn discard(&self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
        let mut st = self.shared.state.lock().expect("spare state");
        st.requested = false;
        while st.busy {
            st = self.shared.changed.wait(st).expect("spare state");
        }
        let had = std::mem::take(&mut st.ready);
        self.shared.cancel.store(false, Ordering::Relaxed);
        self.shared.changed.notify_all();
        drop(st);
        if had && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot remove the spare segment");
        }
    }

    /// Stops the thread and removes the spare (the next open would remove it anyway).
    pub fn stop(mut self) {
        self.signal_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot remove the spare segment");
            }
        }
    }

    fn signal_stop(&self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        st.stop = true;
        self.shared.changed.notify_all();
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        // A writer that panicked must not leave the thread waiting for ever.
        self.signal_stop();
    }
}

fn spare_loop(shared: &SpareShared, dir: &Path, path: &Path, size: u64, io: &dyn LogIo) {
    loop {
        {
            let mut st = shared.state.lock().expect("spare state");
            while !st.requested && !st.stop {
                st = shared.changed.wait(st).expect("spare state");
            }
            if st.stop {
                return;
            }
            st.requested = false;
            st.busy = true;
        }
        let made = if room_for(dir, size) {
            make_zeroed(io, path, size, Some(&shared.cancel)).map(|()| true)
        } else {
            tracing::debug!(
                dir = %dir.display(),
                "not enough free space for a spare segment; the next one is made at the roll"
            );
            Ok(false)
        };
        let mut st = shared.state.lock().expect("spare state");
        st.busy = false;
        match made {
            Ok(ready) => {
                st.ready = ready;
                if ready {
                    shared.made.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_storage_full(&e) => {
                tracing::info!(error = %e, "no room for a spare segment");
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "making a spare segment failed");
            }
        }
        shared.changed.notify_all();
    }
}
