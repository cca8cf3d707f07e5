//! Reading a data directory back: the segment chain, the torn tail, the index.
//!
//! The rules, in the order they are checked:
//!
//! 1. Segment ids are contiguous from 0; a gap is a missing segment: refuse.
//! 2. Each segment header is intact, names its own id, starts at the position where the previous
//!    segment ended and chains from the previous segment's last record hash: else refuse.
//! 3. Every record has a valid CRC, the next global position, the previous record's hash, a commit
//!    time not before its predecessor, and its place in its append; each record of a complete
//!    append has the next version of its stream and an event id new to the log: else refuse,
//!    except:
//! 4. At the end of the *last* segment, bytes that are not a whole valid record (or that leave
//!    an append incomplete) are a torn write when every valid record after them belongs to the
//!    same write as the damage (each record names the offset where its write began). The last
//!    write is acknowledged only after its flush, so a torn one was never acknowledged:
//!    [`RecoveryMode::TruncateTornTail`] cuts the segment back to the last complete append before
//!    the damage and logs how many bytes it dropped. A valid record from a later write after the
//!    damage means acknowledged data was damaged: refuse.
//! 5. A checkpoint that claims more data than the log has means acknowledged data is missing:
//!    refuse. A checkpoint that does not match the log in any other way is ignored and the index
//!    is rebuilt from the log.
//! 6. A log written with `Durability::Interval` keeps a flush mark (the file `FLUSHED`, see
//!    [`FlushMark`]): where the data known durable ends. Before the mark, rules 1 to 5 hold with
//!    no exception: damage there refuses, naming file and offset. After it, in the last segment
//!    only, the data was acknowledged but possibly never flushed, and a power loss can leave
//!    anything there (holes of zeros, stale or torn pages, valid records after them): the
//!    segment is cut back to the last complete append before the first bad byte, and the bytes
//!    and records dropped are logged and reported ([`TailCut`]). A mark naming a segment that is
//!    not there, or data the file does not hold, means durable data is missing: refuse.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{
    FrameError, Hash, MIN_FRAME_LEN, RecordView, SEGMENT_HEADER_LEN, SegmentHeader, corrupt,
    decode_record, genesis, io_err, parse_segment_file_name, segment_path,
};
use crate::index::{Checkpoint, Index, Segment, SegmentFile, checkpoint_path, decode_checkpoint};

/// The flush mark's file in the log directory.
pub const FLUSH_MARK_FILE: &str = "FLUSHED";
const MARK_MAGIC: [u8; 8] = *b"KTNFLSH1";
const MARK_SLOT: usize = 64;

/// Where the data known durable ends, for a log written with `Durability::Interval`: the flusher
/// writes it after each `fdatasync` of the active segment returned, so a mark never claims more
/// than was durable when it was written.
///
/// The file `FLUSHED` holds two 64-byte slots; mark number `seq` goes to slot `seq % 2`, written
/// in place and flushed, so a write torn by a power loss spoils one slot and the other still holds
/// the previous mark (an older mark is only more lenient about the tail, never wrong). A slot,
/// integers little-endian:
///
/// ```text
///  0..8   magic "KTNFLSH1"
///  8..16  seq         u64, the mark's number; the valid slot with the higher one counts
/// 16..24  segment     u64, id of the segment the mark is in
/// 24..32  offset      u64, data known durable in that segment ends here (an append boundary)
/// 32..40  count       u64, events known durable (the next global position)
/// 40..60  zero
/// 60..64  crc32c      u32 over bytes 0..60
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushMark {
    pub seq: u64,
    pub segment: u64,
    pub offset: u64,
    pub count: u64,
}

impl FlushMark {
    pub fn encode(&self) -> [u8; MARK_SLOT] {
        let mut b = [0u8; MARK_SLOT];
        b[0..8].copy_from_slice(&MARK_MAGIC);
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.segment.to_le_bytes());
        b[24..32].copy_from_slice(&self.offset.to_le_bytes());
        b[32..40].copy_from_slice(&self.count.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; MARK_SLOT] = b.try_into().ok()?;
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(b[60..64].try_into().expect("4 bytes"));
        (b[0..8] == MARK_MAGIC && crc == crc32c::crc32c(&b[..60])).then(|| Self {
            seq: u64_at(8),
            segment: u64_at(16),
            offset: u64_at(24),
            count: u64_at(32),
        })
    }

    /// The slot this mark is written to.
    pub fn slot_offset(&self) -> u64 {
        (self.seq % 2) * MARK_SLOT as u64
    }
}

/// The directory's flush mark: `None` when there is no mark file; a file with no valid slot is
/// damage (it is created whole, both slots valid, before any append relies on it).
pub fn read_flush_mark(dir: &Path) -> Result<Option<FlushMark>> {
    let path = dir.join(FLUSH_MARK_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::from_io(&path, e)),
    };
    let best = bytes
        .chunks(MARK_SLOT)
        .take(2)
        .filter_map(FlushMark::decode)
        .max_by_key(|m| m.seq);
    match best {
        Some(mark) => Ok(Some(mark)),
        None => Err(corrupt(
            &path,
            0,
            0,
            format!(
                "the flush mark file ({} bytes) holds no valid mark: where durable data ends is unknown",
                bytes.len()
            ),
        )),
    }
}

/// The tail of the last segment that open cut off: for the log's stats and for the owner of the
/// log to record the loss (the access log does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailCut {
    pub file: std::path::PathBuf,
    /// Where the kept data ends: the file was cut here.
    pub offset: u64,
    /// The first global position not kept: the next append gets it.
    pub position: u64,
    /// Non-zero bytes dropped.
    pub bytes: u64,
    /// Whole valid records found in what was dropped (a complete count only if the damage left
    /// the rest readable).
    pub records: u64,
    /// True when the cut lies after the flush mark: acknowledged but unflushed data lost to a
    /// power loss or kernel crash (`Durability::Interval`). False for a torn write that was
    /// never acknowledged.
    pub unflushed: bool,
    pub reason: String,
}

/// What happens to a torn tail on open.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum RecoveryMode {
    /// Cut a torn tail off the last segment (see the module rules) and log the bytes dropped.
    #[default]
    TruncateTornTail,
    /// Refuse to open on any damage, a torn tail included: for looking at a directory as it is.
    Refuse,
}

/// Where the chain stands while walking the log.
#[derive(Clone, Copy, Debug)]
pub struct Chain {
    pub next_position: u64,
    pub prev_hash: Hash,
    pub last_time: u64,
}

impl Chain {
    pub fn start() -> Self {
        Self {
            next_position: 0,
            prev_hash: genesis(),
            last_time: 0,
        }
    }
}

/// A torn tail found at the end of the last segment.
#[derive(Clone, Debug)]
pub struct Torn {
    /// Where the data that is kept ends.
    pub cut: u64,
    /// Non-zero bytes after `cut`.
    pub dropped: u64,
    /// Valid records found after `cut`.
    pub records: u64,
    /// The cut is after the flush mark (rule 6).
    pub unflushed: bool,
    pub reason: String,
}

pub struct Scanned {
    pub data_end: u64,
    pub torn: Option<Torn>,
}

/// The sorted segment ids in `dir`; removes leftovers of interrupted segment creation.
pub fn list_segments(dir: &Path, remove_leftovers: bool) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = parse_segment_file_name(name) {
            ids.push(id);
        } else if remove_leftovers && name.ends_with(".log.tmp") {
            // A segment is renamed into place only once its header is durable.
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Checks that ids run 0, 1, 2, ...; names the first missing segment.
pub fn check_contiguous(dir: &Path, ids: &[u64]) -> Result<()> {
    for (i, &id) in ids.iter().enumerate() {
        if id != i as u64 {
            let missing = segment_path(dir, i as u64);
            // The events just before the next present segment are missing for sure.
            let next_start = open_segment_file(dir, id, false)
                .and_then(|f| read_header(&f.path, &f.file, id))
                .map_or(0, |h| h.first_position);
            return Err(corrupt(
                &missing,
                0,
                next_start.saturating_sub(1),
                format!(
                    "segment {i} is missing (the next one present, {id}, starts at position {next_start})"
                ),
            ));
        }
    }
    Ok(())
}

pub fn read_header(path: &Path, file: &File, id: u64) -> Result<SegmentHeader> {
    let mut b = [0u8; SEGMENT_HEADER_LEN];
    let len = file.metadata().map_err(io_err(path))?.len();
    if len < SEGMENT_HEADER_LEN as u64 {
        return Err(corrupt(
            path,
            0,
            0,
            format!("segment is only {len} bytes long"),
        ));
    }
    file.read_exact_at(&mut b, 0).map_err(io_err(path))?;
    let h = SegmentHeader::decode(&b).map_err(|why| corrupt(path, 0, 0, why))?;
    if h.id != id {
        return Err(corrupt(
            path,
            0,
            h.first_position,
            format!("header names segment {} but the file is segment {id}", h.id),
        ));
    }
    Ok(h)
}

pub fn check_header_chain(path: &Path, h: &SegmentHeader, chain: &Chain) -> Result<()> {
    if h.first_position != chain.next_position {
        return Err(corrupt(
            path,
            0,
            chain.next_position,
            format!(
                "segment starts at position {} but the previous one ends before {}",
                h.first_position, chain.next_position
            ),
        ));
    }
    if h.prev_hash != chain.prev_hash {
        return Err(corrupt(
            path,
            0,
            chain.next_position,
            "segment header does not chain from the previous segment's last record",
        ));
    }
    Ok(())
}

/// Walks the records of one segment from `start` to `end`, checking everything, and hands each
/// record of a complete append to `sink` with its offset. `tail_may_tear` is true only for the
/// last segment.
pub fn scan_segment(
    path: &Path,
    file: &File,
    start: u64,
    end: u64,
    chain: &mut Chain,
    tail_may_tear: bool,
    sink: &mut dyn FnMut(&RecordView<'_>, u64),
) -> Result<Scanned> {
    scan_segment_marked(path, file, start, end, chain, tail_may_tear, None, sink)
}

/// [`scan_segment`] for the last segment of a log with a flush mark (rule 6): from offset
/// `unflushed_from` on, any damage (a bad frame, a record that does not chain or is out of its
/// append's order) ends the kept data instead of refusing, whatever follows it.
#[allow(clippy::too_many_arguments)]
pub fn scan_segment_marked(
    path: &Path,
    file: &File,
    start: u64,
    end: u64,
    chain: &mut Chain,
    tail_may_tear: bool,
    unflushed_from: Option<u64>,
    sink: &mut dyn FnMut(&RecordView<'_>, u64),
) -> Result<Scanned> {
    let unflushed = |at: u64| tail_may_tear && unflushed_from.is_some_and(|from| at >= from);
    // Damage in the unflushed tail that is not a bad frame: why the records stop there.
    let mut stopped: Option<String> = None;
    let mut data = vec![0u8; end.saturating_sub(start) as usize];
    file.read_exact_at(&mut data, start).map_err(io_err(path))?;
    let mut o = 0usize;
    // Records of an append seen so far, delivered once its last record is seen.
    let mut pending: Vec<usize> = Vec::new();
    let mut committed_end = 0usize;
    let mut committed_chain = *chain;
    let failure = loop {
        let r = match decode_record(&data[o..]) {
            Ok(r) => r,
            Err(e) => break e,
        };
        let at = start + o as u64;
        let expected_index = pending.len() as u32;
        let same_append = match pending.first() {
            None => true,
            Some(&first) => {
                let f = decode_record(&data[first..]).expect("decoded before");
                f.batch_len == r.batch_len && f.stream == r.stream
            }
        };
        let problem = if r.position != chain.next_position {
            Some(format!(
                "record has position {}, expected {}",
                r.position, chain.next_position
            ))
        } else if r.prev_hash != chain.prev_hash {
            Some("hash chain broken: the record does not chain from its predecessor".into())
        } else if r.commit_time < chain.last_time {
            Some(format!(
                "commit time {} is before its predecessor's {}",
                r.commit_time, chain.last_time
            ))
        } else if r.batch_index != expected_index || !same_append {
            Some(format!(
                "record is event {} of an append of {}, expected event {expected_index} of the append in progress",
                r.batch_index, r.batch_len
            ))
        } else {
            None
        };
        if let Some(why) = problem {
            if unflushed(at) {
                stopped = Some(why);
                break FrameError::Zero;
            }
            return Err(corrupt(path, at, chain.next_position, why));
        }
        chain.next_position += 1;
        chain.prev_hash = r.hash();
        chain.last_time = r.commit_time;
        pending.push(o);
        o += r.frame.len();
        if r.batch_index + 1 == r.batch_len {
            for &p in &pending {
                let rec = decode_record(&data[p..]).expect("decoded before");
                sink(&rec, start + p as u64);
            }
            pending.clear();
            committed_end = o;
            committed_chain = *chain;
        }
    };
    let clean = stopped.is_none()
        && pending.is_empty()
        && failure == FrameError::Zero
        && data[o..].iter().all(|&b| b == 0);
    if let Some(from) = unflushed_from.filter(|_| tail_may_tear) {
        // Everything before the mark was flushed: the log must reach it.
        let kept_end = if clean {
            start + o as u64
        } else {
            start + committed_end as u64
        };
        if kept_end < from && from > start {
            let reason = if clean {
                "the data ends there".to_string()
            } else {
                stopped.clone().unwrap_or_else(|| failure.to_string())
            };
            return Err(corrupt(
                path,
                kept_end,
                committed_chain.next_position,
                format!(
                    "damage before the flush mark at offset {from}, in data known durable: {reason}"
                ),
            ));
        }
    }
    if clean {
        return Ok(Scanned {
            data_end: start + o as u64,
            torn: None,
        });
    }
    let bad_at = start + o as u64;
    let reason = if let Some(why) = &stopped {
        why.clone()
    } else if pending.is_empty() || failure != FrameError::Zero {
        failure.to_string()
    } else {
        format!(
            "an append of {} events ends after {} of them",
            decode_record(&data[pending[0]..])
                .expect("decoded")
                .batch_len,
            pending.len()
        )
    };
    // Rewind to the last complete append: an incomplete one is dropped whole.
    *chain = committed_chain;
    let last_nonzero = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if unflushed(start + committed_end as u64) {
        // Rule 6: acknowledged but never known flushed; whatever a power loss left here goes.
        return Ok(Scanned {
            data_end: start + committed_end as u64,
            torn: Some(Torn {
                cut: start + committed_end as u64,
                dropped: last_nonzero.saturating_sub(committed_end) as u64,
                records: count_valid_frames(&data, committed_end),
                unflushed: true,
                reason: format!("{reason} at offset {bad_at}"),
            }),
        });
    }
    if matches!(failure, FrameError::Invalid(_)) || !tail_may_tear {
        return Err(corrupt(path, bad_at, chain.next_position, reason));
    }
    // Valid records after the damage: a filesystem may persist a later page of a write and not an
    // earlier one when power fails, so they are allowed when they belong to the same write as the
    // damage (that write was never flushed, hence never acknowledged). Anything else is damage to
    // data that was acknowledged.
    let mut write_start = None;
    let mut at = o + 1;
    while let Some(next) = find_valid_frame(&data, at) {
        let follows = |why: String| {
            corrupt(
                path,
                bad_at,
                chain.next_position,
                format!(
                    "{reason}, and a valid record follows at offset {} ({why}): damage, not a torn write",
                    start + next as u64
                ),
            )
        };
        let r = decode_record(&data[next..]).map_err(|e| follows(e.to_string()))?;
        let w = u64::from(r.write_start);
        if w > bad_at {
            return Err(follows(format!(
                "written after the damaged bytes, from offset {w}"
            )));
        }
        if *write_start.get_or_insert(w) != w {
            return Err(follows("from more than one write".into()));
        }
        at = next + r.frame.len();
    }
    Ok(Scanned {
        data_end: start + committed_end as u64,
        torn: Some(Torn {
            cut: start + committed_end as u64,
            dropped: last_nonzero.saturating_sub(committed_end) as u64,
            records: count_valid_frames(&data, committed_end),
            unflushed: false,
            reason: format!("{reason} at offset {bad_at}"),
        }),
    })
}

/// Whole valid frames at or after `from`, for the report of what a cut dropped.
fn count_valid_frames(data: &[u8], from: usize) -> u64 {
    let mut n = 0;
    let mut at = from;
    while let Some(next) = find_valid_frame(data, at) {
        match decode_record(&data[next..]) {
            Ok(r) => {
                n += 1;
                at = next + r.frame.len();
            }
            Err(_) => at = next + 1,
        }
    }
    n
}

/// The offset of the first frame with a valid length and checksum at or after `from`.
fn find_valid_frame(data: &[u8], from: usize) -> Option<usize> {
    let mut o = from;
    while o + MIN_FRAME_LEN <= data.len() {
        // A length field is never zero, so a candidate starts at most 3 bytes before a non-zero
        // byte: skip runs of zeros (the preallocated tail) quickly.
        let q = o + data[o..].iter().position(|&b| b != 0)?;
        o = o.max(q.saturating_sub(3));
        match decode_record(&data[o..]) {
            Ok(_) | Err(FrameError::Invalid(_)) => return Some(o),
            Err(_) => o += 1,
        }
    }
    None
}

/// The directory, read back.
pub struct Recovered {
    pub index: Index,
    pub chain: Chain,
    /// Bytes of torn tail cut off (0 when the log was closed cleanly).
    pub torn_bytes: u64,
    /// What was cut off the tail, if anything.
    pub cut: Option<TailCut>,
    /// Events read from the segments rather than from the checkpoint.
    pub replayed: u64,
}

pub fn open_segment_file(dir: &Path, id: u64, write: bool) -> Result<SegmentFile> {
    let path = segment_path(dir, id);
    let file = File::options()
        .read(true)
        .write(write)
        .open(&path)
        .map_err(io_err(&path))?;
    Ok(SegmentFile { id, path, file })
}

/// Reads the directory's segments and index, cutting a torn tail per `mode`. The directory
/// must be locked by the caller. An empty directory gives an empty index with no segment.
/// Without `use_checkpoint`, every record is walked and checked.
pub fn recover(dir: &Path, mode: RecoveryMode, use_checkpoint: bool) -> Result<Recovered> {
    let ids = list_segments(dir, true)?;
    check_contiguous(dir, &ids)?;
    let mark = read_flush_mark(dir)?;
    if let Some(m) = mark {
        let last = ids.last().copied();
        if last.is_none_or(|last| m.segment > last) {
            return Err(corrupt(
                &segment_path(dir, m.segment),
                m.offset,
                m.count.saturating_sub(1),
                format!(
                    "the flush mark says {} events are durable, up to offset {} of segment {}, which is missing: durable data lost",
                    m.count, m.offset, m.segment
                ),
            ));
        }
    }
    let mut files = Vec::with_capacity(ids.len());
    let mut headers = Vec::with_capacity(ids.len());
    for &id in &ids {
        let f = open_segment_file(dir, id, false)?;
        headers.push(read_header(&f.path, &f.file, id)?);
        files.push(Arc::new(f));
    }
    let checkpoint = if use_checkpoint {
        load_checkpoint(dir, &files, &headers)?
    } else {
        None
    };
    let used_checkpoint = checkpoint.is_some();
    let (mut index, mut chain, resume_segment, resume_offset) = match checkpoint {
        Some((index, chain)) => {
            let last = index.segments.len() - 1;
            let end = index.segments[last].data_end;
            (index, chain, last, end)
        }
        None => (
            Index {
                head_hash: genesis(),
                ..Index::default()
            },
            Chain::start(),
            0,
            SEGMENT_HEADER_LEN as u64,
        ),
    };
    // Rule 5 also when the index is rebuilt (a full check, or a checkpoint ignored for a
    // mismatch): the events a checkpoint counts were acknowledged, so they are never cut off as
    // a torn tail. A used checkpoint needs no check: the walk starts after what it covers.
    let acknowledged = if used_checkpoint {
        None
    } else {
        read_checkpoint(dir)?
    };
    let mut torn_bytes = 0;
    let mut cut = None;
    let replay_from = chain.next_position;
    // The first record of a complete append that does not fit its stream (rule 3).
    let mut misfit = None;
    for k in resume_segment..files.len() {
        let f = &files[k];
        let is_last = k + 1 == files.len();
        let start = if k == resume_segment && index.segments.len() > k {
            resume_offset
        } else {
            check_header_chain(&f.path, &headers[k], &chain)?;
            index.segments.push(Segment {
                file: f.clone(),
                first_position: headers[k].first_position,
                offsets: Vec::new(),
                data_end: SEGMENT_HEADER_LEN as u64,
            });
            SEGMENT_HEADER_LEN as u64
        };
        let len = f.file.metadata().map_err(io_err(&f.path))?.len();
        // Rule 6: where the last segment's unflushed part begins. Earlier segments were flushed
        // whole before the next one was made; a mark in an earlier segment leaves the last one
        // unflushed after its header (which is made durable before the segment exists).
        let unflushed_from = match mark {
            Some(m) if is_last && m.segment == ids[k] => {
                if m.offset > len || m.offset < SEGMENT_HEADER_LEN as u64 {
                    return Err(corrupt(
                        &f.path,
                        len.min(m.offset),
                        m.count.saturating_sub(1),
                        format!(
                            "the flush mark says data up to offset {} is durable, but the file is {len} bytes: durable data lost",
                            m.offset
                        ),
                    ));
                }
                Some(m.offset)
            }
            Some(_) if is_last => Some(SEGMENT_HEADER_LEN as u64),
            _ => None,
        };
        let scanned = scan_segment_marked(
            &f.path,
            &f.file,
            start,
            len,
            &mut chain,
            is_last,
            unflushed_from,
            &mut |r, at| {
                let id = crate::types::EventId(uuid::Uuid::from_bytes(r.id));
                if misfit.is_none() {
                    let next_version = index
                        .streams
                        .get(r.stream)
                        .map_or(0, |s| s.positions.len() as u64);
                    misfit = match index.find_id(&id) {
                        Ok(seen) => stream_misfit(r, next_version, seen.is_some())
                            .map(|why| corrupt(&f.path, at, r.position, why)),
                        Err(e) => Some(e),
                    };
                }
                index.push(at, r.stream, id, r.commit_time);
            },
        )?;
        if let Some(e) = misfit.take() {
            return Err(e);
        }
        index.segments[k].data_end = scanned.data_end;
        if let Some(torn) = scanned.torn {
            check_acknowledged(dir, acknowledged.as_ref(), chain.next_position)?;
            if mode == RecoveryMode::Refuse {
                return Err(corrupt(
                    &f.path,
                    torn.cut,
                    chain.next_position,
                    format!(
                        "torn tail of {} bytes ({}); recovery mode refuses to truncate",
                        torn.dropped, torn.reason
                    ),
                ));
            }
            if torn.unflushed {
                tracing::warn!(
                    file = %f.path.display(),
                    offset = torn.cut,
                    position = chain.next_position,
                    bytes_dropped = torn.dropped,
                    records_dropped = torn.records,
                    reason = %torn.reason,
                    "cutting the unflushed tail of the log after a power loss or kernel crash: \
                     acknowledged records after the flush mark are lost"
                );
            } else {
                tracing::warn!(
                    file = %f.path.display(),
                    offset = torn.cut,
                    bytes_dropped = torn.dropped,
                    reason = %torn.reason,
                    "truncating a torn write at the tail of the log; it was never acknowledged"
                );
            }
            let w = File::options()
                .write(true)
                .open(&f.path)
                .map_err(io_err(&f.path))?;
            w.set_len(torn.cut).map_err(io_err(&f.path))?;
            w.sync_all().map_err(io_err(&f.path))?;
            torn_bytes = torn.dropped;
            cut = Some(TailCut {
                file: f.path.clone(),
                offset: torn.cut,
                position: chain.next_position,
                bytes: torn.dropped,
                records: torn.records,
                unflushed: torn.unflushed,
                reason: torn.reason,
            });
        }
    }
    check_acknowledged(dir, acknowledged.as_ref(), chain.next_position)?;
    if let Some(m) = mark.filter(|m| m.count > chain.next_position) {
        let f = files.last().expect("a mark implies a segment");
        return Err(corrupt(
            &f.path,
            index.segments.last().map_or(0, |s| s.data_end),
            chain.next_position,
            format!(
                "the flush mark says {} events are durable but the log holds {}: durable data lost",
                m.count, chain.next_position
            ),
        ));
    }
    index.head_hash = chain.prev_hash;
    index.shrink_streams();
    Ok(Recovered {
        index,
        chain,
        torn_bytes,
        cut,
        replayed: chain.next_position - replay_from,
    })
}

/// Why a record of a complete append does not fit its stream, if it does not: its version must
/// follow the stream's last event, and its id must be new to the log (ids are unique for the
/// life of the log).
pub fn stream_misfit(r: &RecordView<'_>, next_version: u64, id_seen: bool) -> Option<String> {
    if r.version != next_version {
        Some(format!(
            "record is version {} of stream `{}`, expected version {next_version}",
            r.version, r.stream
        ))
    } else if id_seen {
        Some(format!(
            "record's event id {} is already in the log",
            uuid::Uuid::from_bytes(r.id)
        ))
    } else {
        None
    }
}

/// The checkpoint file decoded, `None` when there is none or no usable chunk.
pub fn read_checkpoint(dir: &Path) -> Result<Option<Checkpoint>> {
    match std::fs::read(checkpoint_path(dir)) {
        Ok(bytes) => Ok(decode_checkpoint(bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::from_io(&checkpoint_path(dir), e)),
    }
}

/// Refuses a log that holds fewer events than its checkpoint counts (rule 5).
pub fn check_acknowledged(dir: &Path, checkpoint: Option<&Checkpoint>, holds: u64) -> Result<()> {
    match checkpoint {
        Some(c) if c.count > holds => Err(corrupt(
            &checkpoint_path(dir),
            c.row_offset(holds),
            holds,
            format!(
                "the index checkpoint covers {} events but the log holds {holds}: acknowledged data missing",
                c.count
            ),
        )),
        _ => Ok(()),
    }
}

/// Loads the checkpoint if it matches the log; `Ok(None)` means rebuild from the log.
fn load_checkpoint(
    dir: &Path,
    files: &[Arc<SegmentFile>],
    headers: &[SegmentHeader],
) -> Result<Option<(Index, Chain)>> {
    let path = checkpoint_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::from_io(&path, e)),
    };
    let ignore = |why: String| {
        tracing::warn!(file = %path.display(), reason = %why, "index checkpoint ignored; rebuilding the index from the log");
        Ok(None)
    };
    let ckpt = match decode_checkpoint(bytes) {
        Ok(c) => c,
        Err(why) => return ignore(why),
    };
    if let Some(why) = &ckpt.cut_short {
        tracing::warn!(
            file = %path.display(),
            reason = %why,
            covered = ckpt.count,
            "index checkpoint used up to a damaged or torn chunk; the log after it is replayed"
        );
    }
    if ckpt.segments.is_empty() {
        return ignore("no segment table".into());
    }
    // Acknowledged data the checkpoint saw must still be there.
    for (k, &[id, _, data_end, _]) in ckpt.segments.iter().enumerate() {
        let Some(f) = files.get(k) else {
            return Err(corrupt(
                &segment_path(dir, id),
                0,
                ckpt.count - 1,
                format!(
                    "the index checkpoint covers segment {id}, which is missing: acknowledged data lost"
                ),
            ));
        };
        let len = f.file.metadata().map_err(io_err(&f.path))?.len();
        if len < data_end {
            return Err(corrupt(
                &f.path,
                len,
                ckpt.count - 1,
                format!(
                    "the index checkpoint covers data up to offset {data_end} but the file ends at {len}: acknowledged data lost"
                ),
            ));
        }
    }
    let mut first = 0u64;
    for (k, &[id, first_position, data_end, count]) in ckpt.segments.iter().enumerate() {
        if id != k as u64 || first_position != first || headers[k].first_position != first {
            return ignore(format!("segment table disagrees with segment {k}"));
        }
        if data_end < SEGMENT_HEADER_LEN as u64 {
            return ignore("segment data end inside the header".into());
        }
        first += count;
    }
    if first != ckpt.count {
        return ignore("segment counts do not add up".into());
    }
    // The last covered record must be where the checkpoint says, with the hash it says. It is
    // in the last segment that has records (a checkpoint written at a roll ends with an empty
    // segment).
    let holder = ckpt
        .segments
        .iter()
        .rposition(|s| s[3] > 0)
        .expect("count > 0");
    let f = &files[holder];
    let end = ckpt.segments[holder][2];
    let offset = u64::from(ckpt.last_offset());
    if offset >= end {
        return ignore("last record offset past the data end".into());
    }
    let mut buf = vec![0u8; (end - offset) as usize];
    f.file
        .read_exact_at(&mut buf, offset)
        .map_err(io_err(&f.path))?;
    match decode_record(&buf) {
        Ok(r)
            if r.frame.len() == buf.len()
                && r.position == ckpt.count - 1
                && r.hash() == ckpt.head_hash => {}
        _ => return ignore("the last record it covers does not match the log".into()),
    }
    // The rows are trusted without reading their records, but every read must find a span of
    // its segment's data where a row points: offsets rise by at least a frame within a segment
    // and stay inside its data (else a read would compute a negative length).
    let mut rows = ckpt.rows();
    for &[id, _, data_end, count] in &ckpt.segments {
        let mut next_min = SEGMENT_HEADER_LEN as u64;
        for (offset, ..) in rows.by_ref().take(count as usize) {
            let offset = u64::from(offset);
            if offset < next_min || offset >= data_end {
                return ignore(format!(
                    "a row of segment {id} has offset {offset}, outside its data or out of order"
                ));
            }
            next_min = offset + MIN_FRAME_LEN as u64;
        }
    }
    drop(rows);
    Ok(Some(index_from_checkpoint(ckpt, files)))
}

fn index_from_checkpoint(ckpt: Checkpoint, files: &[Arc<SegmentFile>]) -> (Index, Chain) {
    let (count, head_hash) = (ckpt.count, ckpt.head_hash);
    let index = Index::from_checkpoint(ckpt, files);
    let chain = Chain {
        next_position: count,
        prev_hash: head_hash,
        last_time: index.times.last().unwrap_or(0),
    };
    (index, chain)
}
