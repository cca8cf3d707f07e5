//! The physical limit: `write` + `fdatasync` of the same bytes, with no log around them.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::stats::{self, Measured};

/// How much a zero-filled file holds before its writer wraps around to the start (filling
/// costs real writes, so it is kept small; wrapping keeps every write in written blocks).
const ZERO_FILLED: u64 = 4 << 20;
/// How much a fallocated file reserves: free to reserve, and large enough that a case never
/// wraps, which would land writes in already-written blocks.
const FALLOCATED: u64 = 1 << 30;

/// How the file is laid out before the writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Layout {
    /// Empty; every write grows it, so every flush also journals a size change.
    Growing,
    /// `fallocate`d: blocks reserved but unwritten, so the first write to each block still
    /// changes an extent's state, which the flush must journal. This is what keten's log does.
    Fallocated,
    /// Filled with zeros and synced first: every write lands in written blocks and a flush has
    /// no metadata to write. The cheapest flush the disk offers.
    ZeroFilled,
}

impl Layout {
    pub const ALL: [Layout; 3] = [Layout::Growing, Layout::Fallocated, Layout::ZeroFilled];

    fn name(self) -> &'static str {
        match self {
            Layout::Growing => "raw fdatasync, growing file",
            Layout::Fallocated => "raw fdatasync, fallocated",
            Layout::ZeroFilled => "raw fdatasync, zero-filled",
        }
    }
}

/// `writers` threads, each with its own file, each writing `record` (`batch` events' worth)
/// and calling `fdatasync` after every write, for `duration`.
pub fn run(
    dir: &Path,
    writers: usize,
    layout: Layout,
    duration: Duration,
    record: &[u8],
    batch: usize,
) -> Result<Measured> {
    let mut files = Vec::with_capacity(writers);
    for w in 0..writers {
        let path = dir.join(format!("raw-{layout:?}-{w}"));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        match layout {
            Layout::Growing => {}
            Layout::Fallocated => {
                rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, FALLOCATED)
                    .context("fallocate")?;
                file.sync_all()?;
            }
            Layout::ZeroFilled => {
                let chunk = vec![0u8; 1 << 20];
                for _ in 0..ZERO_FILLED / chunk.len() as u64 {
                    file.write_all(&chunk)?;
                }
                file.sync_all()?;
                file.seek(SeekFrom::Start(0))?;
            }
        }
        files.push(file);
    }

    let start = Arc::new(Barrier::new(writers));
    let threads: Vec<_> = files
        .into_iter()
        .map(|file| {
            let start = Arc::clone(&start);
            let record = record.to_vec();
            std::thread::spawn(move || writer(file, layout, &start, duration, &record))
        })
        .collect();

    let mut measured = Measured::new(layout.name(), writers, batch);
    for t in threads {
        let (ops, elapsed, hist) = t.join().expect("raw writer panicked")?;
        measured.add_writer(ops, elapsed, &hist);
    }
    Ok(measured)
}

fn writer(
    mut file: File,
    layout: Layout,
    start: &Barrier,
    duration: Duration,
    record: &[u8],
) -> Result<(u64, Duration, hdrhistogram::Histogram<u64>)> {
    let mut hist = stats::histogram();
    let mut ops = 0u64;
    let mut offset = 0u64;
    start.wait();
    let began = Instant::now();
    while began.elapsed() < duration {
        let size = match layout {
            Layout::Growing => u64::MAX,
            Layout::Fallocated => FALLOCATED,
            Layout::ZeroFilled => ZERO_FILLED,
        };
        if offset + record.len() as u64 > size {
            file.seek(SeekFrom::Start(0))?;
            offset = 0;
        }
        let t = Instant::now();
        file.write_all(record)?;
        file.sync_data()?;
        stats::record(&mut hist, t.elapsed());
        offset += record.len() as u64;
        ops += 1;
    }
    Ok((ops, began.elapsed(), hist))
}
