//! Writes the seed corpora under `fuzz/corpus/<target>/` from real data: a log written by
//! `FileLog` (its segments, its checkpoint, its record frames) and one event of each type (from
//! keten-domain's test kit) as stored JSON and as protobuf. Run from `fuzz/`:
//! `cargo run --example seeds` (stable; no fuzzing flags needed). Seeds are named by content,
//! so running it again adds nothing new.

use std::path::Path;

use keten_fuzz::{Layout, input_of};
use keten_log::fuzzing::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, peek_frame_len};
use keten_log::{
    EventStore, EventType, ExpectedVersion, FileLog, FileLogOptions, ProposedEvent, StreamId,
};
use prost::Message;

#[path = "../../crates/keten-domain/tests/support/mod.rs"]
mod support;

fn save(target: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    let name = blake3_name(bytes);
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

/// A content name, like libFuzzer's (which uses SHA-1; any stable digest does here).
fn blake3_name(bytes: &[u8]) -> String {
    let crc = crc32c::crc32c(bytes);
    format!("seed-{crc:08x}-{}", bytes.len())
}

fn event(n: usize, payload_len: usize) -> ProposedEvent {
    ProposedEvent {
        id: uuid_of(n),
        event_type: EventType::new("FamilyRegistered").expect("an event type"),
        metadata: format!("{{\"n\":{n}}}").into_bytes(),
        payload: vec![b'x'; payload_len],
    }
}

fn uuid_of(n: usize) -> keten_log::EventId {
    keten_log::EventId(uuid::Uuid::from_u128(0x6b65_7465_6e00_0000 + n as u128))
}

/// Writes a log with `appends` (stream, events per append, payload bytes) and returns its
/// files: segments in order, then `index.ckpt` if there is one. Trailing zeros (the
/// preallocated tail) are dropped from segments to keep seeds small.
async fn log_files(appends: &[(&str, usize, usize)], segment_size: u64) -> Vec<Vec<u8>> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let options = FileLogOptions {
        segment_size,
        checkpoint_interval: 1,
        ..FileLogOptions::default()
    };
    let log = FileLog::open(tmp.path(), options).await.expect("open");
    let mut n = 0;
    for &(stream, count, payload) in appends {
        let events = (0..count)
            .map(|_| {
                n += 1;
                event(n, payload)
            })
            .collect();
        let stream = StreamId::new(stream).expect("stream id");
        log.append(&stream, ExpectedVersion::Any, events)
            .await
            .expect("append");
    }
    log.close().await.expect("close");
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    let mut files: Vec<Vec<u8>> = names
        .iter()
        .map(|n| {
            let mut b = std::fs::read(tmp.path().join(n)).expect("read segment");
            let end = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
            b.truncate(end.max(SEGMENT_HEADER_LEN));
            b
        })
        .collect();
    if let Ok(c) = std::fs::read(tmp.path().join("index.ckpt")) {
        files.push(c);
    }
    files
}

fn frames(segment: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    while let Ok(len) = peek_frame_len(&segment[at..]) {
        out.push(segment[at..at + len].to_vec());
        at += len;
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let all = Layout {
        fix_headers: true,
        fix_records: true,
        checkpoint: true,
        fix_checkpoint: true,
    };
    let raw = Layout {
        fix_headers: false,
        fix_records: false,
        checkpoint: true,
        fix_checkpoint: false,
    };
    let one = log_files(
        &[("family-1", 1, 40), ("family-2", 2, 10), ("family-1", 1, 0)],
        4096,
    )
    .await;
    let rolled = log_files(
        &[("a", 1, 1500), ("b", 2, 900), ("a", 1, 1500), ("c", 1, 10)],
        4096,
    )
    .await;
    let empty = log_files(&[], 4096).await;
    for files in [&one, &rolled, &empty] {
        let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        save("segment_open", &input_of(all, &refs));
        save("segment_open", &input_of(raw, &refs));
        // Without the checkpoint: open rebuilds the index from the segments.
        let segments = &refs[..refs.len() - usize::from(files.len() > 1)];
        let no_ckpt = Layout {
            checkpoint: false,
            fix_checkpoint: false,
            ..all
        };
        save("segment_open", &input_of(no_ckpt, segments));
        // A torn tail: the last write cut short.
        if let Some(last) = segments.last()
            && last.len() > SEGMENT_HEADER_LEN + 20
        {
            let mut torn: Vec<&[u8]> = segments.to_vec();
            let cut = &last[..last.len() - 20];
            *torn.last_mut().expect("a segment") = cut;
            save("segment_open", &input_of(no_ckpt, &torn));
        }
    }
    for segment in one
        .iter()
        .chain(&rolled)
        .filter(|f| f.starts_with(b"KETENLOG"))
    {
        for frame in frames(segment) {
            assert!(frame.len() > FRAME_HEADER_LEN);
            for flags in [0u8, 3] {
                let mut seed = vec![flags];
                seed.extend_from_slice(&frame);
                save("record", &seed);
            }
        }
    }
    for event in support::one_of_each() {
        save("event_json", &keten_domain::encode(&event));
        save(
            "event_proto",
            &keten_proto::convert::event_to_proto(&event).encode_to_vec(),
        );
    }
    for line in [
        r#"{"schema":1,"event":{"type":"MemberAdded","member_id":"p1","role":"parent","birth_year":1979,"intellectual_disability":true,"occurred_on":"2024-03-01"}}"#,
        r#"{"schema":1,"event":{"type":"ActionCommitted","action_id":"a1","goal_id":"g1","partner_id":"wsg","member_id":"p1","description":"budget coaching","start_on":"2024-03-15","expected_end":"2024-09-15","occurred_on":"2024-03-10"}}"#,
    ] {
        keten_domain::decode(line.as_bytes()).expect("a schema-1 event decodes");
        save("event_json", line.as_bytes());
    }
}
