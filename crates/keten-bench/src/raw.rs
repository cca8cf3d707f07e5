//! The physical limit: `write` + `fdatasync` of the same bytes, with no log around them.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::stats::{self, Measured};

/// How much each preallocated file holds before a writer wraps around to its start. Wrapping
/// keeps every write inside already-allocated, already-written blocks, which is what makes a
/// preallocated file cheaper to flush (no extent or size change to journal).
const PREALLOCATED: u64 = 32 << 20;

/// `writers` threads, each with its own file, each writing `record` and calling `fdatasync`
/// after every write, for `duration`.
pub fn run(
    dir: &Path,
    writers: usize,
    preallocate: bool,
    duration: Duration,
    record: &[u8],
) -> Result<Measured> {
    let system = if preallocate {
        "raw fdatasync, preallocated"
    } else {
        "raw fdatasync, growing file"
    };
    let mut files = Vec::with_capacity(writers);
    for w in 0..writers {
        let path = dir.join(format!(
            "raw-{}-{w}",
            if preallocate { "pre" } else { "grow" }
        ));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        if preallocate {
            // Zeros written and synced, not `set_len` (sparse) or `fallocate` (unwritten extents
            // that still need a metadata change on first write).
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..PREALLOCATED / chunk.len() as u64 {
                file.write_all(&chunk)?;
            }
            file.sync_all()?;
            file.seek(SeekFrom::Start(0))?;
        }
        files.push(file);
    }

    let start = Arc::new(Barrier::new(writers));
    let threads: Vec<_> = files
        .into_iter()
        .map(|file| {
            let start = Arc::clone(&start);
            let record = record.to_vec();
            std::thread::spawn(move || writer(file, preallocate, &start, duration, &record))
        })
        .collect();

    let mut measured = Measured::new(system, writers, 1);
    for t in threads {
        let (ops, elapsed, hist) = t.join().expect("raw writer panicked")?;
        measured.add_writer(ops, elapsed, &hist);
    }
    Ok(measured)
}

fn writer(
    mut file: File,
    preallocate: bool,
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
        if preallocate && offset + record.len() as u64 > PREALLOCATED {
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
