//! One event as one JetStream message: the body, the headers and the hash chain.
//!
//! Subject: `<prefix>.e.<escaped stream id>` (see `subject.rs`).
//!
//! Headers (ASCII, readable with `nats stream view`):
//! - `Keten-Id`: the event id (UUID, hyphenated).
//! - `Keten-Position`: the global position; always the stream sequence minus one.
//! - `Keten-Version`: the version in its stream.
//! - `Keten-Batch`: `i/n`, the event's index in its append and the append's size.
//! - `Keten-Time`: the commit time, microseconds since the Unix epoch (keten's, not the server's
//!   timestamp: it never decreases along the log, across leader changes and server clocks).
//! - `Keten-Hash`: hex BLAKE3 chain hash of this record and the previous one's hash.
//!
//! Body, little-endian: `format: u8 = 1`, `stream_len: u16`, stream id, `type_len: u16`, event
//! type, `metadata_len: u32`, metadata, then the payload to the end. The stream id is in the body
//! as well as in the subject, so the hash covers it and a message moved to another subject is
//! detected.

use async_nats::HeaderMap;
use keten_log::{
    CommitTime, EventId, EventType, GlobalPosition, RecordedEvent, StreamId, StreamVersion,
};

pub const FORMAT: u8 = 1;
pub type Hash = [u8; 32];
/// The hash before the first record.
pub const GENESIS: Hash = [0; 32];

pub const H_ID: &str = "Keten-Id";
pub const H_POSITION: &str = "Keten-Position";
pub const H_VERSION: &str = "Keten-Version";
pub const H_BATCH: &str = "Keten-Batch";
pub const H_TIME: &str = "Keten-Time";
pub const H_HASH: &str = "Keten-Hash";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub stream: StreamId,
    pub id: EventId,
    pub event_type: EventType,
    pub version: u64,
    pub position: u64,
    pub batch_index: u32,
    pub batch_len: u32,
    pub committed_at: u64,
    pub metadata: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn body(&self) -> Vec<u8> {
        let s = self.stream.as_str().as_bytes();
        let t = self.event_type.as_str().as_bytes();
        let mut b = Vec::with_capacity(
            1 + 2 + s.len() + 2 + t.len() + 4 + self.metadata.len() + self.payload.len(),
        );
        b.push(FORMAT);
        b.extend_from_slice(&(s.len() as u16).to_le_bytes());
        b.extend_from_slice(s);
        b.extend_from_slice(&(t.len() as u16).to_le_bytes());
        b.extend_from_slice(t);
        b.extend_from_slice(&(self.metadata.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.metadata);
        b.extend_from_slice(&self.payload);
        b
    }

    /// The chain link: everything the record says, bound to the previous record's hash.
    pub fn chain_hash(&self, prev: &Hash, body: &[u8]) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(b"keten/jetstream/v1");
        h.update(prev);
        h.update(&self.position.to_le_bytes());
        h.update(&self.version.to_le_bytes());
        h.update(&self.batch_index.to_le_bytes());
        h.update(&self.batch_len.to_le_bytes());
        h.update(&self.committed_at.to_le_bytes());
        h.update(self.id.0.as_bytes());
        h.update(body);
        *h.finalize().as_bytes()
    }

    pub fn headers(&self, hash: &Hash) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(H_ID, self.id.0.hyphenated().to_string().as_str());
        h.insert(H_POSITION, self.position.to_string().as_str());
        h.insert(H_VERSION, self.version.to_string().as_str());
        h.insert(
            H_BATCH,
            format!("{}/{}", self.batch_index, self.batch_len).as_str(),
        );
        h.insert(H_TIME, self.committed_at.to_string().as_str());
        h.insert(H_HASH, hex(hash).as_str());
        h
    }

    /// Reads a stored message back. `Err` says what is wrong with it, for a `Corrupt` error.
    pub fn decode(headers: Option<&HeaderMap>, body: &[u8]) -> Result<(Record, Hash), String> {
        let headers = headers.ok_or("no headers")?;
        let get = |name: &str| {
            headers
                .get(name)
                .map(|v| v.as_str().to_string())
                .ok_or_else(|| format!("header {name} missing"))
        };
        let num = |name: &str| -> Result<u64, String> {
            get(name)?
                .parse::<u64>()
                .map_err(|e| format!("header {name}: {e}"))
        };
        let id = uuid::Uuid::parse_str(&get(H_ID)?).map_err(|e| format!("header {H_ID}: {e}"))?;
        let batch = get(H_BATCH)?;
        let (i, n) = batch
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
            .filter(|&(i, n)| i < n)
            .ok_or_else(|| format!("header {H_BATCH}: bad value {batch:?}"))?;
        let hash =
            unhex(&get(H_HASH)?).ok_or_else(|| format!("header {H_HASH}: not 64 hex digits"))?;

        let mut r = Reader(body);
        if r.take(1)? != [FORMAT] {
            return Err(format!("body format is not {FORMAT}"));
        }
        let len = u16::from_le_bytes(r.take(2)?.try_into().expect("2")) as usize;
        let stream = std::str::from_utf8(r.take(len)?).map_err(|e| format!("stream id: {e}"))?;
        let stream = StreamId::new(stream).map_err(|e| e.to_string())?;
        let len = u16::from_le_bytes(r.take(2)?.try_into().expect("2")) as usize;
        let ty = std::str::from_utf8(r.take(len)?).map_err(|e| format!("event type: {e}"))?;
        let event_type = EventType::new(ty).map_err(|e| e.to_string())?;
        let len = u32::from_le_bytes(r.take(4)?.try_into().expect("4")) as usize;
        let metadata = r.take(len)?.to_vec();
        let payload = r.0.to_vec();
        Ok((
            Record {
                stream,
                id: EventId(id),
                event_type,
                version: num(H_VERSION)?,
                position: num(H_POSITION)?,
                batch_index: i,
                batch_len: n,
                committed_at: num(H_TIME)?,
                metadata,
                payload,
            },
            hash,
        ))
    }

    pub fn into_event(self) -> RecordedEvent {
        RecordedEvent {
            stream: self.stream,
            id: self.id,
            event_type: self.event_type,
            version: StreamVersion(self.version),
            position: GlobalPosition(self.position),
            committed_at: CommitTime(self.committed_at),
            metadata: self.metadata,
            payload: self.payload,
        }
    }
}

/// What an idempotent retry is compared with: the stored content (stream, type, metadata,
/// payload), without the place the log gave it.
pub fn digest(body: &[u8]) -> [u8; 16] {
    blake3::hash(body).as_bytes()[..16]
        .try_into()
        .expect("16 bytes")
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("body truncated".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
}

pub fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = Record {
            stream: StreamId::new("family-1").unwrap(),
            id: EventId(uuid::Uuid::from_u128(7)),
            event_type: EventType::new("Opened").unwrap(),
            version: 3,
            position: 10,
            batch_index: 1,
            batch_len: 2,
            committed_at: 1_700_000_000_000_000,
            metadata: b"{}".to_vec(),
            payload: b"payload".to_vec(),
        };
        let body = r.body();
        let hash = r.chain_hash(&GENESIS, &body);
        let (back, h) = Record::decode(Some(&r.headers(&hash)), &body).unwrap();
        assert_eq!(back, r);
        assert_eq!(h, hash);
        let mut other = r.clone();
        other.position = 11;
        assert_ne!(other.chain_hash(&GENESIS, &body), hash);
        assert_ne!(r.chain_hash(&hash, &body), hash);
    }
}
