//! The log's record frame decoder (`decode_record`, what open, reads and `verify` run on every
//! record). It must refuse anything that is not a record with a `FrameError`, never panic; and a
//! frame it accepts encodes back to the same record.
//!
//! Input: one flag byte, then the bytes at a record's offset. A checksum stops nearly every
//! mutation at the CRC check, so the flags let the fuzzer repair the length (bit 0) and the CRC
//! (bit 1) and reach the checks behind them.

#![no_main]

use keten_log::fuzzing::{FRAME_HEADER_LEN, RecordFields, decode_record, encode_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&flags, bytes)) = input.split_first() else {
        return;
    };
    let mut bytes = bytes.to_vec();
    if flags & 1 != 0 && bytes.len() >= FRAME_HEADER_LEN {
        let body = u32::try_from(bytes.len() - FRAME_HEADER_LEN).unwrap_or(u32::MAX);
        bytes[..4].copy_from_slice(&body.to_le_bytes());
    }
    if flags & 2 != 0 {
        keten_fuzz::fix_frame_crc(&mut bytes, 0);
    }
    let Ok(r) = decode_record(&bytes) else {
        return;
    };
    assert!(r.frame.len() <= bytes.len());
    let mut again = Vec::new();
    let hash = encode_record(
        &mut again,
        &RecordFields {
            batch_index: r.batch_index,
            batch_len: r.batch_len,
            write_start: r.write_start,
            position: r.position,
            version: r.version,
            commit_time: r.commit_time,
            id: r.id,
            prev_hash: &r.prev_hash,
            stream: r.stream,
            event_type: r.event_type,
            metadata: r.metadata,
            payload: r.payload,
        },
    );
    assert_eq!(again.len(), r.frame.len(), "re-encoded frame length");
    let back = decode_record(&again).expect("a re-encoded record decodes");
    assert_eq!(back.hash(), hash);
    assert_eq!(
        (back.batch_index, back.batch_len, back.write_start),
        (r.batch_index, r.batch_len, r.write_start)
    );
    assert_eq!(
        (back.position, back.version, back.commit_time, back.id),
        (r.position, r.version, r.commit_time, r.id)
    );
    assert_eq!(back.prev_hash, r.prev_hash);
    assert_eq!((back.stream, back.event_type), (r.stream, r.event_type));
    assert_eq!((back.metadata, back.payload), (r.metadata, r.payload));
    // What reads hand out is built from the same view.
    let e = r.to_event();
    assert_eq!(e.payload, r.payload);
});
