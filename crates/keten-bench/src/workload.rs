//! The events every system is given: the same bytes everywhere.

pub const EVENT_BYTES: usize = 300;
pub const EVENT_TYPE: &str = "BenchEventRecorded";

/// A JSON object of exactly [`EVENT_BYTES`] bytes, so PostgreSQL's `jsonb` accepts the very
/// payload keten and the raw file are given.
pub fn payload(seq: u64) -> String {
    let head = format!("{{\"seq\":{seq},\"pad\":\"");
    let tail = "\"}";
    let pad = EVENT_BYTES.saturating_sub(head.len() + tail.len());
    let mut s = String::with_capacity(EVENT_BYTES);
    s.push_str(&head);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str(tail);
    s
}

/// The fixed part of a keten record frame (format v1: 8-byte frame header, 92-byte body
/// header), before stream id, type, metadata and payload.
const KETEN_FRAME_FIXED: usize = 100;

/// What the raw file gets per event: as many bytes as keten's record of the same event, so the
/// raw case writes the same bytes with nothing around them.
pub fn raw_record(stream: &str) -> Vec<u8> {
    let mut r = vec![7u8; KETEN_FRAME_FIXED];
    r.extend_from_slice(stream.as_bytes());
    r.extend_from_slice(EVENT_TYPE.as_bytes());
    r.extend_from_slice(payload(0).as_bytes());
    r
}

/// Unique per writer and sequence within one case; every case writes to fresh storage.
pub fn event_id(writer: usize, seq: u64) -> uuid::Uuid {
    uuid::Uuid::from_u128(((writer as u128 + 1) << 64) | u128::from(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_exactly_the_event_size() {
        for seq in [0, 9, 1_000_000, u64::MAX] {
            assert_eq!(payload(seq).len(), EVENT_BYTES);
        }
    }
}
