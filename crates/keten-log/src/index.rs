//! The in-memory index, and its checkpoint file.
//!
//! Everything a read or an append needs to find without scanning the log, per event:
//!
//! - per global position: the record's offset in its segment (`u32`, 4 bytes) and its commit
//!   time (4 bytes: [`Times`] keeps the distance from a run's base time); positions are dense,
//!   so these are plain vectors;
//! - per event, in its stream's vector: its position, indexed by version (`u32`, 4 bytes, while
//!   the log holds fewer than 2^32 events; see [`Positions`]);
//! - per event id: a 32-bit fingerprint of the id and the position in a table slot of 8 bytes
//!   plus a control byte, the table at most 7/8 full and grown by doubling: 10 to 21 bytes per
//!   event (see [`IdIndex`]: a lookup reads its candidates' records to compare the ids);
//!
//! so 22 to 33 bytes per event, depending on where the id table is in its growth (at ten
//! million events the table has 2^24 slots: 15 bytes per event, 27 in all). Per stream: the map
//! entry, the name and the vector, about 150 bytes. Per event since the last checkpoint chunk:
//! its 32-byte row, until the chunk is written (bounded by `checkpoint_interval` plus a
//! segment's worth).
//!
//! Architecture invariant: the index holds only durable events. The writer adds a group's
//! entries after its flush, so a reader never sees what a crash could take back.
//!
//! Checkpoint file `index.ckpt`: append-only, a sequence of chunks (little-endian). Each chunk
//! adds the index rows of the events since the previous one, so writing a checkpoint costs in
//! proportion to the events since the last, not to the log:
//!
//! ```text
//! 8      magic "KETENIDX"
//! 4      checkpoint format version (1)
//! 4      reserved, 0
//! 8      from: events covered by the chunks before this one
//! 8      to: events covered with this one (positions 0..to)
//! 8      K: segments
//! 8      M: streams first seen in this chunk (their ordinals follow the earlier chunks' streams)
//! 32     hash of record to-1 (GENESIS when to = 0)
//! K x 32 segment table as of this chunk: id, first position, data end offset, event count
//! M x    stream: name length (u8), name
//! (to-from) x 32  event rows in position order: offset in segment (u32), stream ordinal (u32),
//!        commit time (u64), event id (16)
//! 4      CRC32C of the chunk's bytes before this field
//! ```
//!
//! Loading reads chunks while they are whole and continue each other; a torn or damaged chunk
//! ends the usable prefix (the log after it is replayed, and the next chunk overwrites it). The
//! prefix is trusted only after the record it says is last is found at its offset with the hash it
//! records; otherwise the index is rebuilt from the log and the file rewritten.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;
use crate::format::{
    BODY_FIXED_LEN, FRAME_HEADER_LEN, Hash, MAX_EVENT_DATA, corrupt, decode_record, io_err, u32_at,
    u64_at,
};
use crate::types::{EventId, StreamId};

pub const CHECKPOINT_FILE: &str = "index.ckpt";
const CHECKPOINT_MAGIC: [u8; 8] = *b"KETENIDX";
const CHECKPOINT_VERSION: u32 = 1;

/// An open segment file, shared by readers.
#[derive(Debug)]
pub struct SegmentFile {
    pub id: u64,
    pub path: PathBuf,
    pub file: File,
}

#[derive(Debug)]
pub struct Segment {
    pub file: Arc<SegmentFile>,
    pub first_position: u64,
    /// Offset of each record, by position - first_position.
    pub offsets: Vec<u32>,
    /// Where the last durable record ends.
    pub data_end: u64,
}

impl Segment {
    pub fn end_position(&self) -> u64 {
        self.first_position + self.offsets.len() as u64
    }
}

/// Where a record lies.
#[derive(Clone, Debug)]
pub struct Location {
    pub file: Arc<SegmentFile>,
    pub offset: u64,
    pub len: usize,
    pub position: u64,
}

#[derive(Debug, Default)]
pub struct StreamEntry {
    /// The stream's number in the checkpoint, in order of first appearance.
    pub ordinal: u32,
    /// Position of each version.
    pub positions: Positions,
}

/// A stream's positions by version: 4 bytes each while the log holds fewer than 2^32 events
/// (a stream switches to 8 bytes each when it gets a position beyond).
#[derive(Debug)]
pub enum Positions {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Default for Positions {
    fn default() -> Self {
        Self::Narrow(Vec::new())
    }
}

impl Positions {
    pub fn len(&self) -> usize {
        match self {
            Self::Narrow(v) => v.len(),
            Self::Wide(v) => v.len(),
        }
    }

    /// The position of version `v`.
    pub fn get(&self, v: usize) -> Option<u64> {
        match self {
            Self::Narrow(p) => p.get(v).map(|&p| u64::from(p)),
            Self::Wide(p) => p.get(v).copied(),
        }
    }

    /// The position of version `v`, which the stream has.
    pub fn at(&self, v: usize) -> u64 {
        self.get(v).expect("a version of the stream")
    }

    /// How many versions come before the first whose position fails `pred` (positions rise
    /// with versions).
    pub fn partition_point(&self, pred: impl Fn(u64) -> bool) -> usize {
        match self {
            Self::Narrow(p) => p.partition_point(|&x| pred(u64::from(x))),
            Self::Wide(p) => p.partition_point(|&x| pred(x)),
        }
    }

    pub fn push(&mut self, position: u64) {
        match self {
            Self::Narrow(p) => match u32::try_from(position) {
                Ok(narrow) => p.push(narrow),
                Err(_) => {
                    let mut wide: Vec<u64> = p.iter().map(|&x| u64::from(x)).collect();
                    wide.push(position);
                    *self = Self::Wide(wide);
                }
            },
            Self::Wide(p) => p.push(position),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Self::Narrow(p) => p.shrink_to_fit(),
            Self::Wide(p) => p.shrink_to_fit(),
        }
    }
}

/// Commit times by position, 4 bytes each: runs of events whose times lie within `u32::MAX`
/// microseconds (71 minutes) of the run's first, each event's time stored as its distance from
/// that base. A run costs 16 bytes (a new one starts at least every 71 minutes of the log's
/// life: about 150,000 runs, 2.4 MB, over twenty years of constant use).
#[derive(Debug, Default)]
pub struct Times {
    /// (first position, base time) of each run, in position order.
    runs: Vec<(u64, u64)>,
    deltas: Vec<u32>,
}

impl Times {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            runs: Vec::new(),
            deltas: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.deltas.len()
    }

    pub fn push(&mut self, time: u64) {
        let delta = self
            .runs
            .last()
            .and_then(|&(_, base)| time.checked_sub(base))
            .and_then(|d| u32::try_from(d).ok());
        let delta = delta.unwrap_or_else(|| {
            self.runs.push((self.deltas.len() as u64, time));
            0
        });
        self.deltas.push(delta);
    }

    /// The commit time of `position`, which the log holds.
    pub fn get(&self, position: u64) -> u64 {
        let run = self.runs.partition_point(|&(first, _)| first <= position) - 1;
        self.runs[run].1 + u64::from(self.deltas[position as usize])
    }

    pub fn last(&self) -> Option<u64> {
        let &(_, base) = self.runs.last()?;
        Some(base + u64::from(*self.deltas.last()?))
    }

    /// The number of events committed at or before `time` (times never decrease along the
    /// positions).
    pub fn count_at_or_before(&self, time: u64) -> u64 {
        let run = self.runs.partition_point(|&(_, base)| base <= time);
        let Some(run) = run.checked_sub(1) else {
            return 0;
        };
        let (first, base) = self.runs[run];
        let end = self
            .runs
            .get(run + 1)
            .map_or(self.deltas.len(), |&(next, _)| next as usize);
        let within =
            self.deltas[first as usize..end].partition_point(|&d| base + u64::from(d) <= time);
        first + within as u64
    }
}

/// Event id to position, for idempotent retries, in 9 bytes a slot (8 and a control byte): a
/// 32-bit fingerprint of the id with a 32-bit position. The table keeps its slots at most 7/8
/// full and doubles, so it holds 10 to 21 bytes per event. A fingerprint is not the id: a
/// lookup yields candidate positions, and [`Index::find_id`] reads each candidate's record to
/// compare ids, so that two ids with one fingerprint cost a disk read, never a wrong answer.
/// A new id meets another's fingerprint with a chance of (events / 2^32): one append in 430 at
/// ten million events reads one record more.
///
/// Positions from 2^32 on (a log that large) are kept with their whole ids in `wide`.
#[derive(Default)]
pub struct IdIndex {
    hasher: std::hash::RandomState,
    /// (fingerprint << 32) | position.
    narrow: hashbrown::HashTable<u64>,
    wide: HashMap<EventId, u64>,
}

impl std::fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdIndex")
            .field("narrow", &self.narrow.len())
            .field("wide", &self.wide.len())
            .finish()
    }
}

/// The table's hash from a fingerprint: the table must rehash its entries when it grows, and
/// holds nothing of an id but its fingerprint. The multiplier spreads the 32 bits over the
/// whole word, where the table takes its bucket (low bits) and its tag (high bits).
fn spread(fingerprint: u32) -> u64 {
    u64::from(fingerprint).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl IdIndex {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            narrow: hashbrown::HashTable::with_capacity(n),
            ..Self::default()
        }
    }

    fn fingerprint(&self, id: &EventId) -> u32 {
        use std::hash::BuildHasher;
        (self.hasher.hash_one(id) >> 32) as u32
    }

    pub fn insert(&mut self, id: EventId, position: u64) {
        match u32::try_from(position) {
            Ok(p) => {
                let f = self.fingerprint(&id);
                self.narrow
                    .insert_unique(spread(f), (u64::from(f) << 32) | u64::from(p), |&e| {
                        spread((e >> 32) as u32)
                    });
            }
            Err(_) => {
                self.wide.insert(id, position);
            }
        }
    }

    /// The positions that may hold `id`: the one that does, if any, is among them.
    pub fn candidates(&self, id: &EventId) -> impl Iterator<Item = u64> + '_ {
        let f = self.fingerprint(id);
        self.narrow
            .iter_hash(spread(f))
            .filter(move |&&e| (e >> 32) as u32 == f)
            .map(|&e| e & u64::from(u32::MAX))
            .chain(self.wide.get(id).copied())
    }

    /// Whether the index has `id` at `position` (as far as a fingerprint tells; for checking
    /// the index against the log, which has the id at that position).
    pub fn has(&self, id: &EventId, position: u64) -> bool {
        self.candidates(id).any(|p| p == position)
    }
}

#[derive(Debug, Default)]
pub struct Index {
    pub segments: Vec<Segment>,
    pub times: Times,
    pub streams: HashMap<StreamId, StreamEntry>,
    pub ids: IdIndex,
    /// The hash of the last durable record.
    pub head_hash: Hash,
    /// Events the checkpoint file covers.
    pub checkpointed: u64,
    /// Bytes of the checkpoint file that hold valid chunks; the next chunk goes there.
    pub checkpoint_len: u64,
    /// Rows of the events after `checkpointed`, ready for the next chunk (32 bytes each).
    pub pending_rows: Vec<u8>,
    /// Streams first seen after `checkpointed`.
    pub pending_streams: Vec<StreamId>,
}

impl Index {
    pub fn count(&self) -> u64 {
        self.times.len() as u64
    }

    pub fn push(&mut self, offset: u64, stream: &str, id: EventId, time: u64) {
        let position = self.count();
        let seg = self.segments.last_mut().expect("a segment");
        debug_assert_eq!(seg.end_position(), position);
        seg.offsets.push(offset as u32);
        self.times.push(time);
        let ordinal = match self.streams.get_mut(stream) {
            Some(entry) => {
                entry.positions.push(position);
                entry.ordinal
            }
            None => {
                let ordinal = self.streams.len() as u32;
                let name = StreamId::from_stored(stream.to_owned());
                self.pending_streams.push(name.clone());
                let mut positions = Positions::default();
                positions.push(position);
                self.streams
                    .insert(name, StreamEntry { ordinal, positions });
                ordinal
            }
        };
        self.ids.insert(id, position);
        self.pending_rows
            .extend_from_slice(&row(offset as u32, ordinal, time, id));
    }

    /// The position of the event with `id`, if the log has it. A candidate of the id's
    /// fingerprint is read from its segment (checksum checked) and its id compared.
    pub fn find_id(&self, id: &EventId) -> Result<Option<u64>> {
        for position in self.ids.candidates(id) {
            if self.id_at(position)? == *id {
                return Ok(Some(position));
            }
        }
        Ok(None)
    }

    /// The id stored in the record at `position`, read from its segment. Reads the frame's
    /// length first, so that it does not depend on where the segment's data ends (which open
    /// learns only after scanning it).
    fn id_at(&self, position: u64) -> Result<EventId> {
        let i = self
            .segments
            .partition_point(|s| s.first_position <= position)
            - 1;
        let seg = &self.segments[i];
        let offset = u64::from(seg.offsets[(position - seg.first_position) as usize]);
        let path = &seg.file.path;
        let mut head = [0u8; FRAME_HEADER_LEN];
        seg.file
            .file
            .read_exact_at(&mut head, offset)
            .map_err(io_err(path))?;
        let body = u32_at(&head, 0) as usize;
        if body > BODY_FIXED_LEN + 2 * 255 + MAX_EVENT_DATA {
            return Err(corrupt(
                path,
                offset,
                position,
                format!("a frame of {body} bytes"),
            ));
        }
        let mut frame = vec![0u8; FRAME_HEADER_LEN + body];
        seg.file
            .file
            .read_exact_at(&mut frame, offset)
            .map_err(io_err(path))?;
        let record =
            decode_record(&frame).map_err(|e| corrupt(path, offset, position, e.to_string()))?;
        if record.position != position {
            return Err(corrupt(
                path,
                offset,
                position,
                format!(
                    "the index puts position {position} here, the record says {}",
                    record.position
                ),
            ));
        }
        Ok(EventId(uuid::Uuid::from_bytes(record.id)))
    }

    /// The commit time of `position`, which the log holds.
    pub fn time(&self, position: u64) -> u64 {
        self.times.get(position)
    }

    /// The index a checkpoint describes (already checked against the log). Each stream's
    /// positions are counted first and allocated at their size, so that open leaves neither
    /// spare capacity nor the holes of vectors grown by doubling.
    pub fn from_checkpoint(mut ckpt: Checkpoint, files: &[Arc<SegmentFile>]) -> Self {
        let n = ckpt.count as usize;
        let names = std::mem::take(&mut ckpt.streams);
        let mut lens = vec![0usize; names.len()];
        for (_, stream, _, _) in ckpt.rows() {
            if let Some(len) = lens.get_mut(stream as usize) {
                *len += 1;
            }
        }
        let mut per_stream: Vec<Positions> = lens
            .into_iter()
            .map(|len| Positions::Narrow(Vec::with_capacity(len)))
            .collect();
        let mut index = Index {
            segments: Vec::with_capacity(ckpt.segments.len()),
            times: Times::with_capacity(n),
            streams: HashMap::with_capacity(names.len()),
            ids: IdIndex::with_capacity(n),
            head_hash: ckpt.head_hash,
            checkpointed: ckpt.count,
            checkpoint_len: ckpt.valid_len,
            ..Index::default()
        };
        let mut rows = ckpt.rows();
        let mut p = 0u64;
        for (k, &[_, first_position, data_end, count]) in ckpt.segments.iter().enumerate() {
            let mut offsets = Vec::with_capacity(count as usize);
            for (offset, stream, time, id) in rows.by_ref().take(count as usize) {
                offsets.push(offset);
                index.times.push(time);
                if let Some(v) = per_stream.get_mut(stream as usize) {
                    v.push(p);
                }
                index.ids.insert(id, p);
                p += 1;
            }
            index.segments.push(Segment {
                file: files[k].clone(),
                first_position,
                offsets,
                data_end,
            });
        }
        for (ordinal, (name, positions)) in names.into_iter().zip(per_stream).enumerate() {
            index.streams.insert(
                name,
                StreamEntry {
                    ordinal: ordinal as u32,
                    positions,
                },
            );
        }
        index
    }

    /// Gives back what the per-stream vectors reserved beyond their contents (after open
    /// replayed events into them: a quarter of their size on average). The log-wide vectors
    /// and the id table are left as they are: their spare capacity is not yet touched, so it
    /// is not resident, and they grow again with the next append.
    pub fn shrink_streams(&mut self) {
        for entry in self.streams.values_mut() {
            entry.positions.shrink_to_fit();
        }
        self.streams.shrink_to_fit();
    }

    /// The next checkpoint chunk, `None` when the file already covers every event.
    pub fn checkpoint_chunk(&self) -> Option<Vec<u8>> {
        let to = self.count();
        if to == self.checkpointed {
            return None;
        }
        let mut out = Vec::with_capacity(
            100 + self.segments.len() * 32
                + self.pending_streams.len() * 64
                + self.pending_rows.len(),
        );
        out.extend_from_slice(&CHECKPOINT_MAGIC);
        out.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.checkpointed.to_le_bytes());
        out.extend_from_slice(&to.to_le_bytes());
        out.extend_from_slice(&(self.segments.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.pending_streams.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.head_hash);
        for s in &self.segments {
            for v in [
                s.file.id,
                s.first_position,
                s.data_end,
                s.offsets.len() as u64,
            ] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        for name in &self.pending_streams {
            out.push(name.as_str().len() as u8);
            out.extend_from_slice(name.as_str().as_bytes());
        }
        out.extend_from_slice(&self.pending_rows);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Some(out)
    }

    /// Records that a chunk covering the first `to` events, and the first `streams` of the
    /// pending streams, was made durable. Events and streams added since the chunk was taken
    /// (the checkpoint is written off the writer thread, which goes on appending) stay pending
    /// for the next chunk.
    pub fn checkpoint_written(&mut self, to: u64, chunk_len: u64, streams: usize) {
        let rows = (to - self.checkpointed) as usize * ROW_LEN;
        self.pending_rows.drain(..rows);
        self.pending_streams.drain(..streams);
        self.checkpointed = to;
        self.checkpoint_len += chunk_len;
    }

    pub fn locate(&self, position: u64) -> Location {
        let i = self
            .segments
            .partition_point(|s| s.first_position <= position)
            - 1;
        let seg = &self.segments[i];
        let k = (position - seg.first_position) as usize;
        let offset = seg.offsets[k] as u64;
        let end = seg
            .offsets
            .get(k + 1)
            .map_or(seg.data_end, |&next| next as u64);
        Location {
            file: seg.file.clone(),
            offset,
            len: (end - offset) as usize,
            position,
        }
    }

    /// The number of events committed at or before `time`.
    pub fn count_at_time(&self, time: u64) -> u64 {
        self.times.count_at_or_before(time)
    }
}

const ROW_LEN: usize = 32;

fn row(offset: u32, ordinal: u32, time: u64, id: EventId) -> [u8; ROW_LEN] {
    let mut r = [0u8; ROW_LEN];
    r[0..4].copy_from_slice(&offset.to_le_bytes());
    r[4..8].copy_from_slice(&ordinal.to_le_bytes());
    r[8..16].copy_from_slice(&time.to_le_bytes());
    r[16..32].copy_from_slice(id.0.as_bytes());
    r
}

/// A decoded checkpoint file (its valid prefix), before it is checked against the log.
pub struct Checkpoint {
    pub count: u64,
    pub head_hash: Hash,
    /// The last chunk's segment table: id, first position, data end, event count.
    pub segments: Vec<[u64; 4]>,
    /// All streams, by ordinal.
    pub streams: Vec<StreamId>,
    /// Bytes of the file that hold the chunks used.
    pub valid_len: u64,
    /// Why the file was not used to its end, if it was not.
    pub cut_short: Option<String>,
    /// The whole file, and where each chunk's rows are in it: kept as read, not copied (at ten
    /// million events the rows are 320 MB).
    bytes: Vec<u8>,
    row_ranges: Vec<(usize, usize)>,
}

impl Checkpoint {
    /// (offset, stream ordinal, commit time, id) of every covered event, in position order.
    pub fn rows(&self) -> impl Iterator<Item = (u32, u32, u64, EventId)> + '_ {
        self.row_ranges.iter().flat_map(move |&(at, n)| {
            self.bytes[at..at + n * ROW_LEN]
                .chunks_exact(ROW_LEN)
                .map(|b| {
                    (
                        u32_at(b, 0),
                        u32_at(b, 4),
                        u64_at(b, 8),
                        EventId(uuid::Uuid::from_bytes(b[16..32].try_into().expect("16"))),
                    )
                })
        })
    }

    /// Where the row of `position` is in the file.
    pub fn row_offset(&self, position: u64) -> u64 {
        let mut p = position as usize;
        for &(at, n) in &self.row_ranges {
            if p < n {
                return (at + p * ROW_LEN) as u64;
            }
            p -= n;
        }
        self.valid_len
    }

    /// The offset of the last covered event.
    pub fn last_offset(&self) -> u32 {
        let &(at, n) = self.row_ranges.last().expect("a chunk");
        u32_at(&self.bytes, at + (n - 1) * ROW_LEN)
    }
}

/// Decodes the chunks of a checkpoint file; the error says why none can be used.
pub fn decode_checkpoint(bytes: Vec<u8>) -> Result<Checkpoint, String> {
    let mut ckpt = Checkpoint {
        count: 0,
        head_hash: [0; 32],
        segments: Vec::new(),
        streams: Vec::new(),
        valid_len: 0,
        cut_short: None,
        bytes: Vec::new(),
        row_ranges: Vec::new(),
    };
    let mut at = 0usize;
    while at < bytes.len() {
        match decode_chunk(&bytes[at..], ckpt.count) {
            Ok(chunk) => {
                ckpt.count = chunk.to;
                ckpt.head_hash = chunk.head_hash;
                ckpt.segments = chunk.segments;
                ckpt.streams.extend(chunk.streams);
                ckpt.row_ranges
                    .push((at + chunk.rows_at, (chunk.to - chunk.from) as usize));
                at += chunk.len;
                ckpt.valid_len = at as u64;
            }
            Err(why) if ckpt.row_ranges.is_empty() => return Err(why),
            Err(why) => {
                ckpt.cut_short = Some(format!("chunk at byte {at}: {why}"));
                break;
            }
        }
    }
    if ckpt.row_ranges.is_empty() {
        return Err("empty".into());
    }
    ckpt.bytes = bytes;
    Ok(ckpt)
}

struct Chunk {
    from: u64,
    to: u64,
    head_hash: Hash,
    segments: Vec<[u64; 4]>,
    streams: Vec<StreamId>,
    rows_at: usize,
    len: usize,
}

fn decode_chunk(b: &[u8], expected_from: u64) -> Result<Chunk, String> {
    const FIXED: usize = 8 + 4 + 4 + 8 + 8 + 8 + 8 + 32;
    if b.len() < FIXED + 4 {
        return Err("truncated".into());
    }
    if b[0..8] != CHECKPOINT_MAGIC {
        return Err("wrong magic".into());
    }
    if u32_at(b, 8) != CHECKPOINT_VERSION {
        return Err(format!("unsupported version {}", u32_at(b, 8)));
    }
    let from = u64_at(b, 16);
    let to = u64_at(b, 24);
    let k = u64_at(b, 32) as usize;
    let m = u64_at(b, 40) as usize;
    if from != expected_from || to <= from {
        return Err(format!(
            "covers events {from}..{to}, expected to continue from {expected_from}"
        ));
    }
    let head_hash: Hash = b[48..80].try_into().expect("32");
    let need = |at: usize, n: usize| -> Result<(), String> {
        if at.checked_add(n).is_none_or(|end| end + 4 > b.len()) {
            Err("truncated".into())
        } else {
            Ok(())
        }
    };
    let mut at = FIXED;
    need(at, k.checked_mul(32).ok_or("bad segment count")?)?;
    let mut segments = Vec::with_capacity(k);
    for _ in 0..k {
        segments.push([
            u64_at(b, at),
            u64_at(b, at + 8),
            u64_at(b, at + 16),
            u64_at(b, at + 24),
        ]);
        at += 32;
    }
    let mut streams = Vec::new();
    for _ in 0..m {
        need(at, 1)?;
        let len = b[at] as usize;
        need(at + 1, len)?;
        let name = std::str::from_utf8(&b[at + 1..at + 1 + len])
            .map_err(|_| "stream name is not UTF-8")?;
        streams.push(StreamId::new(name).map_err(|e| e.to_string())?);
        at += 1 + len;
    }
    let rows_len = usize::try_from(to - from)
        .ok()
        .and_then(|n| n.checked_mul(ROW_LEN))
        .ok_or("bad event count")?;
    need(at, rows_len)?;
    let rows_at = at;
    at += rows_len;
    if u32_at(b, at) != crc32c::crc32c(&b[..at]) {
        return Err("checksum mismatch".into());
    }
    Ok(Chunk {
        from,
        to,
        head_hash,
        segments,
        streams,
        rows_at,
        len: at + 4,
    })
}

pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventStore;
    use crate::types::{EventType, ExpectedVersion, ProposedEvent};
    use crate::{FileLog, FileLogOptions, RecoveryMode};

    #[test]
    fn times_keep_every_time_across_long_gaps() {
        // Two hours: longer than a run's 71 minutes.
        let hour = 2 * 3_600_000_000u64;
        let times = [5, 5, 7, 7 + hour, 7 + hour, 9 + 5 * hour, u64::MAX / 2];
        let mut t = Times::default();
        for &x in &times {
            t.push(x);
        }
        assert_eq!(t.runs.len(), 4, "a run per gap longer than 71 minutes");
        for (p, &x) in times.iter().enumerate() {
            assert_eq!(t.get(p as u64), x);
        }
        assert_eq!(t.last(), Some(u64::MAX / 2));
        for probe in [0, 5, 6, 7, 8, 7 + hour, 8 + hour, 9 + 5 * hour, u64::MAX] {
            let want = times.iter().filter(|&&x| x <= probe).count() as u64;
            assert_eq!(t.count_at_or_before(probe), want, "at {probe}");
        }
    }

    #[test]
    fn positions_widen_past_u32() {
        let mut p = Positions::default();
        p.push(7);
        p.push(u64::from(u32::MAX));
        p.push(u64::from(u32::MAX) + 1);
        assert!(matches!(p, Positions::Wide(_)));
        assert_eq!(
            (0..3).map(|v| p.at(v)).collect::<Vec<_>>(),
            [7, u64::from(u32::MAX), u64::from(u32::MAX) + 1]
        );
        assert_eq!(p.partition_point(|x| x < 1 << 32), 2);
    }

    #[test]
    fn ids_past_u32_positions_are_kept_whole() {
        let mut ids = IdIndex::default();
        let a = EventId(uuid::Uuid::from_u128(1));
        let b = EventId(uuid::Uuid::from_u128(2));
        ids.insert(a, 3);
        ids.insert(b, 1 << 40);
        assert!(ids.has(&a, 3));
        assert!(ids.has(&b, 1 << 40));
        assert!(!ids.has(&b, 0));
    }

    /// Two ids with one fingerprint: the lookup reads the records and answers for the id asked
    /// about, never for the other.
    #[tokio::test]
    async fn a_fingerprint_collision_is_told_apart_by_reading_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(dir.path(), FileLogOptions::default())
            .await
            .unwrap();
        let stored: Vec<EventId> = (1..=3).map(|n| EventId(uuid::Uuid::from_u128(n))).collect();
        let events = stored
            .iter()
            .map(|&id| ProposedEvent {
                id,
                event_type: EventType::new("T").unwrap(),
                metadata: vec![],
                payload: b"x".to_vec(),
            })
            .collect();
        let stream = StreamId::new("s").unwrap();
        log.append(&stream, ExpectedVersion::Any, events)
            .await
            .unwrap();
        log.close().await.unwrap();
        let mut index = crate::recovery::recover(dir.path(), RecoveryMode::Refuse, true)
            .unwrap()
            .index;
        let absent = EventId(uuid::Uuid::from_u128(99));
        assert_eq!(index.find_id(&absent).unwrap(), None);
        // Entries as a collision would leave them: the absent id's fingerprint at position 1,
        // and the id at position 2 with its fingerprint at position 0 as well.
        for (id, position) in [(absent, 1u64), (stored[2], 0)] {
            let f = index.ids.fingerprint(&id);
            index
                .ids
                .narrow
                .insert_unique(spread(f), (u64::from(f) << 32) | position, |&e| {
                    spread((e >> 32) as u32)
                });
        }
        assert_eq!(index.find_id(&absent).unwrap(), None);
        for (p, id) in stored.iter().enumerate() {
            assert_eq!(index.find_id(id).unwrap(), Some(p as u64));
        }
    }
}
