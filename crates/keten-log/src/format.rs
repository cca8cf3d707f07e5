//! The bytes on disk: segment names, the segment header and the record frame.
//!
//! `FORMAT.md` in this crate is the full description; this is its summary, kept next to the code
//! that reads and writes it. All integers are little-endian.
//!
//! Segment file `<id:020>.log` (the id zero-padded to 20 digits, so names sort as numbers):
//!
//! ```text
//! offset size  field
//! 0      8     magic "KETENLOG"
//! 8      4     format version (1)
//! 12     4     reserved, 0
//! 16     8     segment id (equals the number in the file name)
//! 24     8     global position of the first record in this segment
//! 32     32    BLAKE3 hash of the last record of the previous segment (GENESIS for segment 0)
//! 64     60    reserved, 0
//! 124    4     CRC32C of bytes 0..124
//! 128    ...   records, back to back; then zeros up to the preallocated size
//! ```
//!
//! Record frame:
//!
//! ```text
//! offset size  field
//! 0      4     len: bytes of the body that follows the 8-byte frame header
//! 4      4     CRC32C over bytes 0..4 (len) then the body
//! 8      1     record version (1)
//! 9      1     stream id length S (1..=255)
//! 10     1     event type length T (1..=255)
//! 11     1     reserved, 0
//! 12     4     index of this event in its append (0-based)
//! 16     4     number of events in its append (>= 1)
//! 20     4     write start: segment offset of the first byte of the write this record was in
//! 24     8     global position
//! 32     8     stream version
//! 40     8     commit time, microseconds since the Unix epoch
//! 48     16    event id (UUID bytes)
//! 64     32    BLAKE3 hash of the previous record's whole frame (GENESIS for position 0)
//! 96     4     metadata length M
//! 100    4     payload length P
//! 104    S+T+M+P  stream id, event type, metadata, payload
//! ```
//!
//! A zero `len` never starts a record, which is how the end of data is told from the
//! preallocated zeros after it.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::types::{
    CommitTime, EventId, EventType, GlobalPosition, RecordedEvent, StreamId, StreamVersion,
};

pub const SEGMENT_MAGIC: [u8; 8] = *b"KETENLOG";
pub const FORMAT_VERSION: u32 = 1;
pub const RECORD_VERSION: u8 = 1;
pub const SEGMENT_HEADER_LEN: usize = 128;
pub const FRAME_HEADER_LEN: usize = 8;
/// Body bytes before the variable part.
pub const BODY_FIXED_LEN: usize = 96;
/// The smallest possible frame: fixed part plus one-byte stream id and event type.
pub const MIN_FRAME_LEN: usize = FRAME_HEADER_LEN + BODY_FIXED_LEN + 2;
/// Metadata plus payload of one event. Bounded so that a damaged length field cannot make
/// recovery allocate gigabytes, and so that segment offsets fit in a `u32`.
pub const MAX_EVENT_DATA: usize = 16 << 20;
/// All frames of one append. An append never spans two segments, so this also bounds how far a
/// segment can overshoot its nominal size.
pub const MAX_APPEND_BYTES: usize = 64 << 20;
/// The most events in one append.
pub const MAX_APPEND_EVENTS: usize = 100_000;
/// Segments hold offsets as `u32`.
pub const MAX_SEGMENT_SIZE: u64 = 1 << 31;

pub type Hash = [u8; 32];

/// What the first record chains from.
pub fn genesis() -> Hash {
    *blake3::hash(b"keten-log genesis v1").as_bytes()
}

pub fn segment_file_name(id: u64) -> String {
    format!("{id:020}.log")
}

/// The id of a segment file name, `None` for anything else in the directory.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(segment_file_name(id))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SegmentHeader {
    pub id: u64,
    pub first_position: u64,
    pub prev_hash: Hash,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[16..24].copy_from_slice(&self.id.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_position.to_le_bytes());
        b[32..64].copy_from_slice(&self.prev_hash);
        let crc = crc32c::crc32c(&b[..124]);
        b[124..128].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header; the error is the reason it is not one.
    pub fn decode(b: &[u8]) -> std::result::Result<Self, String> {
        if b.len() < SEGMENT_HEADER_LEN {
            return Err(format!(
                "segment header is {} bytes, expected {SEGMENT_HEADER_LEN}",
                b.len()
            ));
        }
        if b[0..8] != SEGMENT_MAGIC {
            return Err("segment header has the wrong magic".into());
        }
        let crc = u32_at(b, 124);
        if crc != crc32c::crc32c(&b[..124]) {
            return Err("segment header checksum mismatch".into());
        }
        let version = u32_at(b, 8);
        if version != FORMAT_VERSION {
            return Err(format!("unsupported segment format version {version}"));
        }
        Ok(Self {
            id: u64_at(b, 16),
            first_position: u64_at(b, 24),
            prev_hash: b[32..64].try_into().expect("32 bytes"),
        })
    }
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// One record's fields, as the writer hands them to [`encode_record`].
pub struct RecordFields<'a> {
    pub batch_index: u32,
    pub batch_len: u32,
    pub write_start: u32,
    pub position: u64,
    pub version: u64,
    pub commit_time: u64,
    pub id: [u8; 16],
    pub prev_hash: &'a Hash,
    pub stream: &'a str,
    pub event_type: &'a str,
    pub metadata: &'a [u8],
    pub payload: &'a [u8],
}

pub fn frame_len(stream: &str, event_type: &str, metadata: &[u8], payload: &[u8]) -> usize {
    FRAME_HEADER_LEN
        + BODY_FIXED_LEN
        + stream.len()
        + event_type.len()
        + metadata.len()
        + payload.len()
}

/// Appends one frame to `out` and returns the BLAKE3 hash of the frame (the next record's
/// `prev_hash`).
pub fn encode_record(out: &mut Vec<u8>, r: &RecordFields<'_>) -> Hash {
    let start = out.len();
    let total = frame_len(r.stream, r.event_type, r.metadata, r.payload);
    let body_len = (total - FRAME_HEADER_LEN) as u32;
    out.reserve(total);
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(RECORD_VERSION);
    out.push(r.stream.len() as u8);
    out.push(r.event_type.len() as u8);
    out.push(0);
    out.extend_from_slice(&r.batch_index.to_le_bytes());
    out.extend_from_slice(&r.batch_len.to_le_bytes());
    out.extend_from_slice(&r.write_start.to_le_bytes());
    out.extend_from_slice(&r.position.to_le_bytes());
    out.extend_from_slice(&r.version.to_le_bytes());
    out.extend_from_slice(&r.commit_time.to_le_bytes());
    out.extend_from_slice(&r.id);
    out.extend_from_slice(r.prev_hash);
    out.extend_from_slice(&(r.metadata.len() as u32).to_le_bytes());
    out.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(r.stream.as_bytes());
    out.extend_from_slice(r.event_type.as_bytes());
    out.extend_from_slice(r.metadata);
    out.extend_from_slice(r.payload);
    debug_assert_eq!(out.len() - start, total);
    let mut crc = crc32c::crc32c(&out[start..start + 4]);
    crc = crc32c::crc32c_append(crc, &out[start + FRAME_HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    *blake3::hash(&out[start..]).as_bytes()
}

/// A record decoded in place from a buffer.
#[derive(Debug)]
pub struct RecordView<'a> {
    pub batch_index: u32,
    pub batch_len: u32,
    pub write_start: u32,
    pub position: u64,
    pub version: u64,
    pub commit_time: u64,
    pub id: [u8; 16],
    pub prev_hash: Hash,
    pub stream: &'a str,
    pub event_type: &'a str,
    pub metadata: &'a [u8],
    pub payload: &'a [u8],
    /// The whole frame, for hashing.
    pub frame: &'a [u8],
}

/// Why the bytes at an offset are not a record.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A zero length: the end of data (or a zeroed hole).
    Zero,
    /// Fewer bytes left than the frame needs.
    Short,
    /// A length no writer could have produced.
    BadLength(u32),
    /// The checksum does not match.
    Checksum,
    /// The checksum matches but the content is not a valid record (unknown version, bad UTF-8,
    /// lengths that do not add up): written by something else, never torn.
    Invalid(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Zero => f.write_str("zero length where a record was expected"),
            Self::Short => f.write_str("record runs past the end of the file"),
            Self::BadLength(n) => write!(f, "impossible record length {n}"),
            Self::Checksum => f.write_str("record checksum mismatch"),
            Self::Invalid(why) => write!(f, "invalid record: {why}"),
        }
    }
}

/// The frame length announced at the start of `b`, if plausible.
pub fn peek_frame_len(b: &[u8]) -> std::result::Result<usize, FrameError> {
    if b.len() < 4 {
        return Err(if b.iter().all(|&x| x == 0) {
            FrameError::Zero
        } else {
            FrameError::Short
        });
    }
    let len = u32_at(b, 0);
    if len == 0 {
        return Err(FrameError::Zero);
    }
    let max_body = BODY_FIXED_LEN + 2 * 255 + MAX_EVENT_DATA;
    if (len as usize) < BODY_FIXED_LEN + 2 || len as usize > max_body {
        return Err(FrameError::BadLength(len));
    }
    let total = FRAME_HEADER_LEN + len as usize;
    if b.len() < total {
        return Err(FrameError::Short);
    }
    Ok(total)
}

/// Decodes the frame at the start of `b`, checking length and CRC.
pub fn decode_record(b: &[u8]) -> std::result::Result<RecordView<'_>, FrameError> {
    let total = peek_frame_len(b)?;
    let frame = &b[..total];
    let stored_crc = u32_at(frame, 4);
    let mut crc = crc32c::crc32c(&frame[0..4]);
    crc = crc32c::crc32c_append(crc, &frame[FRAME_HEADER_LEN..]);
    if crc != stored_crc {
        return Err(FrameError::Checksum);
    }
    let body = &frame[FRAME_HEADER_LEN..];
    if body[0] != RECORD_VERSION {
        return Err(FrameError::Invalid(format!(
            "unsupported record version {}",
            body[0]
        )));
    }
    let s = body[1] as usize;
    let t = body[2] as usize;
    let m = u32_at(body, 88) as usize;
    let p = u32_at(body, 92) as usize;
    if s == 0 || t == 0 || BODY_FIXED_LEN + s + t + m + p != body.len() {
        return Err(FrameError::Invalid("field lengths do not add up".into()));
    }
    let batch_index = u32_at(body, 4);
    let batch_len = u32_at(body, 8);
    if batch_len == 0 || batch_index >= batch_len {
        return Err(FrameError::Invalid(format!(
            "append index {batch_index} of {batch_len}"
        )));
    }
    let var = &body[BODY_FIXED_LEN..];
    let stream = std::str::from_utf8(&var[..s])
        .map_err(|_| FrameError::Invalid("stream id is not UTF-8".into()))?;
    let event_type = std::str::from_utf8(&var[s..s + t])
        .map_err(|_| FrameError::Invalid("event type is not UTF-8".into()))?;
    Ok(RecordView {
        batch_index,
        batch_len,
        write_start: u32_at(body, 12),
        position: u64_at(body, 16),
        version: u64_at(body, 24),
        commit_time: u64_at(body, 32),
        id: body[40..56].try_into().expect("16 bytes"),
        prev_hash: body[56..88].try_into().expect("32 bytes"),
        stream,
        event_type,
        metadata: &var[s + t..s + t + m],
        payload: &var[s + t + m..],
        frame,
    })
}

impl RecordView<'_> {
    pub fn hash(&self) -> Hash {
        *blake3::hash(self.frame).as_bytes()
    }

    pub fn to_event(&self) -> RecordedEvent {
        RecordedEvent {
            stream: StreamId::from_stored(self.stream.to_owned()),
            id: EventId(uuid::Uuid::from_bytes(self.id)),
            event_type: EventType::from_stored(self.event_type.to_owned()),
            version: StreamVersion(self.version),
            position: GlobalPosition(self.position),
            committed_at: CommitTime(self.commit_time),
            metadata: self.metadata.to_vec(),
            payload: self.payload.to_vec(),
        }
    }
}

pub fn corrupt(file: &Path, offset: u64, position: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        file: file.to_path_buf(),
        offset,
        position: GlobalPosition(position),
        reason: reason.into(),
    }
}

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::from_io(path, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_parse_back() {
        for id in [0, 1, 42, u64::MAX] {
            assert_eq!(parse_segment_file_name(&segment_file_name(id)), Some(id));
        }
        assert_eq!(segment_file_name(7), "00000000000000000007.log");
        for bad in [
            "7.log",
            "00000000000000000007.tmp",
            "0000000000000000000x.log",
            "LOCK",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = SegmentHeader {
            id: 3,
            first_position: 99,
            prev_hash: genesis(),
        };
        let mut b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        b[20] ^= 1;
        assert!(SegmentHeader::decode(&b).is_err());
    }

    #[test]
    fn record_round_trips_and_every_bit_flip_is_caught() {
        let prev = genesis();
        let mut out = Vec::new();
        let hash = encode_record(
            &mut out,
            &RecordFields {
                batch_index: 1,
                batch_len: 2,
                write_start: 128,
                position: 7,
                version: 3,
                commit_time: 1234,
                id: [9; 16],
                prev_hash: &prev,
                stream: "family-1",
                event_type: "Opened",
                metadata: b"{}",
                payload: b"hello",
            },
        );
        let r = decode_record(&out).unwrap();
        assert_eq!((r.position, r.version, r.commit_time), (7, 3, 1234));
        assert_eq!((r.stream, r.event_type), ("family-1", "Opened"));
        assert_eq!((r.metadata, r.payload), (&b"{}"[..], &b"hello"[..]));
        assert_eq!((r.batch_index, r.batch_len, r.prev_hash), (1, 2, prev));
        assert_eq!(r.write_start, 128);
        assert_eq!(r.hash(), hash);
        for bit in 0..out.len() * 8 {
            let mut damaged = out.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_record(&damaged).is_err(), "bit {bit} undetected");
        }
    }
}
