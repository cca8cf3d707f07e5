//! The leaf: a canonical byte encoding of one recorded event.
//!
//! Backend-independent: built only from the fields every [`keten_log::EventStore`] returns, never
//! from a segment's frame or a JetStream message, so the same event has the same leaf on both
//! backends. The payload and metadata are the stored bytes: once payloads are encrypted that is
//! ciphertext, and shredding the key later leaves every leaf (and so every proof) intact.
//!
//! ```text
//! leaf = 0x01                                  encoding version
//!     || u64be(global position)
//!     || u64be(len) || stream id (UTF-8)
//!     || u64be(stream version)
//!     || event id (16 bytes, the UUID in RFC 9562 byte order)
//!     || u64be(len) || event type (UTF-8)
//!     || u64be(commit time, microseconds since the Unix epoch, UTC)
//!     || u64be(len) || metadata
//!     || u64be(len) || payload
//! ```
//!
//! Every variable field carries its length, so no two events share an encoding.

use keten_log::RecordedEvent;

use crate::hash::{Hash, hash_leaf_bytes};

/// The first byte of every leaf; a later encoding would take another value.
pub const LEAF_ENCODING_V1: u8 = 0x01;

/// The fields of a leaf, borrowed: from a [`RecordedEvent`] or from a bundle's JSON.
#[derive(Clone, Copy, Debug)]
pub struct LeafFields<'a> {
    pub position: u64,
    pub stream: &'a str,
    pub version: u64,
    pub event_id: [u8; 16],
    pub event_type: &'a str,
    pub committed_at: u64,
    pub metadata: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> LeafFields<'a> {
    pub fn of(event: &'a RecordedEvent) -> Self {
        Self {
            position: event.position.0,
            stream: event.stream.as_str(),
            version: event.version.0,
            event_id: *event.id.0.as_bytes(),
            event_type: event.event_type.as_str(),
            committed_at: event.committed_at.0,
            metadata: &event.metadata,
            payload: &event.payload,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            1 + 8 * 8
                + 16
                + self.stream.len()
                + self.event_type.len()
                + self.metadata.len()
                + self.payload.len(),
        );
        out.push(LEAF_ENCODING_V1);
        out.extend_from_slice(&self.position.to_be_bytes());
        put_bytes(&mut out, self.stream.as_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.event_id);
        put_bytes(&mut out, self.event_type.as_bytes());
        out.extend_from_slice(&self.committed_at.to_be_bytes());
        put_bytes(&mut out, self.metadata);
        put_bytes(&mut out, self.payload);
        out
    }

    pub fn hash(&self) -> Hash {
        hash_leaf_bytes(&self.encode())
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The canonical leaf bytes of an event (see the module docs for the layout).
pub fn leaf_bytes(event: &RecordedEvent) -> Vec<u8> {
    LeafFields::of(event).encode()
}

/// SHA-256(0x00 || leaf_bytes(event)): the event's leaf in the tree.
pub fn leaf_hash(event: &RecordedEvent) -> Hash {
    LeafFields::of(event).hash()
}
