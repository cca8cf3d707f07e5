//! The bytes a store keeps for one key id: a key record or a tombstone. Shared by the file
//! store (a tombstone file per destroyed id; key files of this format only in stores made
//! before its key table, whose slots are in `file`'s docs) and the JetStream store (one KV
//! value each), so an auditor reads one format.
//!
//! ```text
//! key record (45 bytes):  "KETENKEY" | 0x01 | key (32) | crc32c of the 41 bytes before (u32 LE)
//! tombstone  (21 bytes):  "KETENTMB" | 0x01 | destroyed_at, µs since 1970 UTC (i64 LE) | crc32c (u32 LE)
//! ```
//!
//! The key is stored raw (not hex), so a search for its 32 bytes finds every copy, which is how
//! the tests show that destroying a key leaves none.

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::DataKey;

const KEY_MAGIC: &[u8; 8] = b"KETENKEY";
const TOMB_MAGIC: &[u8; 8] = b"KETENTMB";
const FORMAT: u8 = 1;
pub const KEY_RECORD_LEN: usize = 8 + 1 + DataKey::LEN + 4;
pub const TOMBSTONE_LEN: usize = 8 + 1 + 8 + 4;

/// What one stored record says.
#[derive(Debug)]
pub enum Record {
    Key(DataKey),
    Tombstone { destroyed_at: DateTime<Utc> },
}

/// A key record; the buffer is wiped when dropped.
pub fn encode_key(key: &DataKey) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(KEY_RECORD_LEN));
    out.extend_from_slice(KEY_MAGIC);
    out.push(FORMAT);
    out.extend_from_slice(key.expose_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A tombstone; the time is kept to the microsecond.
pub fn encode_tombstone(destroyed_at: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::with_capacity(TOMBSTONE_LEN);
    out.extend_from_slice(TOMB_MAGIC);
    out.push(FORMAT);
    out.extend_from_slice(&destroyed_at.timestamp_micros().to_le_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// `t` as a tombstone will give it back: to the microsecond.
pub fn tombstone_time(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).expect("a time chrono made fits")
}

/// Reads a record; the error says what is wrong with it.
pub fn decode(bytes: &[u8]) -> Result<Record, String> {
    let (magic, len) = match bytes.get(..8) {
        Some(m) if m == KEY_MAGIC => ("key record", KEY_RECORD_LEN),
        Some(m) if m == TOMB_MAGIC => ("tombstone", TOMBSTONE_LEN),
        _ => return Err("neither a key record nor a tombstone (bad magic)".into()),
    };
    if bytes.len() != len {
        return Err(format!("{magic} of {} bytes, expected {len}", bytes.len()));
    }
    if bytes[8] != FORMAT {
        return Err(format!("{magic} of format {}, expected {FORMAT}", bytes[8]));
    }
    let (body, crc) = bytes.split_at(len - 4);
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err(format!("{magic} fails its checksum"));
    }
    if len == KEY_RECORD_LEN {
        let mut k = Zeroizing::new([0u8; DataKey::LEN]);
        k.copy_from_slice(&body[9..]);
        Ok(Record::Key(DataKey::from_bytes(*k)))
    } else {
        let micros = i64::from_le_bytes(body[9..17].try_into().expect("8 bytes"));
        let destroyed_at = DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| format!("tombstone time {micros} µs is out of range"))?;
        Ok(Record::Tombstone { destroyed_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let k = DataKey::generate();
        let rec = encode_key(&k);
        assert!(matches!(decode(&rec), Ok(Record::Key(k2)) if k2 == k));
        let t = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        let tomb = encode_tombstone(t);
        assert!(
            matches!(decode(&tomb), Ok(Record::Tombstone { destroyed_at }) if destroyed_at == t)
        );
        for i in 0..rec.len() {
            let mut bad = rec.to_vec();
            bad[i] ^= 1;
            assert!(decode(&bad).is_err(), "flipped byte {i} accepted");
        }
        assert!(decode(&rec[..rec.len() - 1]).is_err());
        assert!(decode(b"").is_err());
    }
}
