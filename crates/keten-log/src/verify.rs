//! Offline verification of a data directory, for `keten verify`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::format::{SEGMENT_HEADER_LEN, corrupt, io_err};
use crate::index::checkpoint_path;
use crate::recovery::{
    Chain, check_acknowledged, check_contiguous, check_header_chain, list_segments,
    open_segment_file, read_checkpoint, read_header, scan_segment, stream_misfit,
};
use crate::types::GlobalPosition;

/// What a full walk of a data directory found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: u64,
    /// Events in complete appends, all with valid checksums and chain links.
    pub events: u64,
    pub head: Option<GlobalPosition>,
    /// BLAKE3 of the last record, hex: the value a later walk must reach again.
    pub head_hash: String,
    /// A torn write at the end of the last segment, which the next open would cut off.
    pub torn_tail: Option<TornTail>,
    /// Events the index checkpoint covers, each row checked against its record; `None` when
    /// there is no usable checkpoint (open then rebuilds the index).
    pub checkpoint_events: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    pub offset: u64,
    pub bytes: u64,
}

/// Walks every segment of `dir`: headers, every record's CRC, the hash chain, positions and
/// appends, stream versions and the uniqueness of event ids; and checks every row of the index
/// checkpoint against its record. Changes nothing and takes no lock, so on a live directory the
/// tail being written may show up as torn. The first damage is an [`crate::Error::Corrupt`]
/// naming file, offset and position.
pub fn verify_dir(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let ids = list_segments(dir, false)?;
    check_contiguous(dir, &ids)?;
    let checkpoint = read_checkpoint(dir)?;
    let mut rows = checkpoint.as_ref().map(|c| c.rows());
    let mut mismatch: Option<(u64, String)> = None;
    let mut chain = Chain::start();
    let mut torn_tail = None;
    // Per stream, the next version; every event id seen (16 bytes each, plus the table's slack).
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut event_ids: HashSet<[u8; 16]> = HashSet::new();
    let mut misfit = None;
    for (k, &id) in ids.iter().enumerate() {
        let f = open_segment_file(dir, id, false)?;
        let header = read_header(&f.path, &f.file, id)?;
        check_header_chain(&f.path, &header, &chain)?;
        let len = f.file.metadata().map_err(io_err(&f.path))?.len();
        let last = k + 1 == ids.len();
        let scanned = scan_segment(
            &f.path,
            &f.file,
            SEGMENT_HEADER_LEN as u64,
            len,
            &mut chain,
            last,
            &mut |r, offset| {
                if misfit.is_none() {
                    let next = versions.get(r.stream).copied().unwrap_or(0);
                    let id_seen = !event_ids.insert(r.id);
                    misfit = stream_misfit(r, next, id_seen)
                        .map(|why| corrupt(&f.path, offset, r.position, why));
                }
                match versions.get_mut(r.stream) {
                    Some(next) => *next += 1,
                    None => {
                        versions.insert(r.stream.to_owned(), 1);
                    }
                }
                let Some(row) = rows.as_mut().and_then(Iterator::next) else {
                    return;
                };
                let (row_offset, ordinal, time, id) = row;
                let ckpt = checkpoint.as_ref().expect("rows come from it");
                let stream = ckpt.streams.get(ordinal as usize).map(|s| s.as_str());
                let why = if u64::from(row_offset) != offset {
                    Some(format!("offset {row_offset}, the record is at {offset}"))
                } else if stream != Some(r.stream) {
                    Some(format!(
                        "stream {stream:?}, the record is in `{}`",
                        r.stream
                    ))
                } else if time != r.commit_time {
                    Some(format!("commit time {time}, the record {}", r.commit_time))
                } else if id.0.as_bytes() != &r.id {
                    Some(format!("id {id}"))
                } else {
                    None
                };
                if let Some(why) = why
                    && mismatch.is_none()
                {
                    mismatch = Some((r.position, why));
                }
            },
        )?;
        if let Some(e) = misfit.take() {
            return Err(e);
        }
        if let Some(t) = scanned.torn {
            torn_tail = Some(TornTail {
                file: f.path.clone(),
                offset: t.cut,
                bytes: t.dropped,
            });
        }
    }
    drop(rows);
    if let Some((position, why)) = mismatch {
        let ckpt = checkpoint.as_ref().expect("a mismatch needs a checkpoint");
        return Err(corrupt(
            &checkpoint_path(dir),
            ckpt.row_offset(position),
            position,
            format!("the index checkpoint disagrees with the log: it has {why}"),
        ));
    }
    check_acknowledged(dir, checkpoint.as_ref(), chain.next_position)?;
    let checkpoint_events = checkpoint.as_ref().map(|c| c.count);
    Ok(VerifyReport {
        segments: ids.len() as u64,
        events: chain.next_position,
        head: chain.next_position.checked_sub(1).map(GlobalPosition),
        head_hash: chain.prev_hash.iter().map(|b| format!("{b:02x}")).collect(),
        torn_tail,
        checkpoint_events,
    })
}
