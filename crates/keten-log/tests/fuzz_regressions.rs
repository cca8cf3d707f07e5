//! Inputs the fuzz targets in the repository's `fuzz/` found, kept as tests (see
//! `fuzz/README.md`).

use std::path::Path;

use keten_log::{
    Error, EventId, EventStore as _, EventType, ExpectedVersion, FileLog, FileLogOptions,
    ProposedEvent, RecoveryMode, StreamId, verify_dir,
};

const SEGMENT_0: &str = "00000000000000000000.log";
/// The first record starts right after the segment header.
const FIRST_RECORD: u64 = 128;

fn options(full_check_on_open: bool) -> FileLogOptions {
    FileLogOptions {
        segment_size: 4096,
        full_check_on_open,
        ..FileLogOptions::default()
    }
}

fn event(n: u128) -> ProposedEvent {
    ProposedEvent {
        id: EventId(uuid::Uuid::from_u128(n)),
        event_type: EventType::new("Registered").unwrap(),
        metadata: Vec::new(),
        payload: vec![b'x'; 40],
    }
}

/// A closed log whose only write is one append of two events, so that the checkpoint written
/// on close counts both; returns the length of the data in segment 0.
async fn one_append_of_two(dir: &Path) -> u64 {
    let log = FileLog::open(dir, options(false)).await.unwrap();
    let stream = StreamId::new("family-1").unwrap();
    log.append(&stream, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    log.close().await.unwrap();
    let report = verify_dir(dir).unwrap();
    assert_eq!((report.events, report.checkpoint_events), (2, Some(2)));
    let segment = std::fs::read(dir.join(SEGMENT_0)).unwrap();
    segment.iter().rposition(|&b| b != 0).unwrap() as u64 + 1
}

fn overwrite(dir: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::options()
        .write(true)
        .open(dir.join(SEGMENT_0))
        .unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

fn assert_refused_as_missing(result: keten_log::Result<FileLog>, dir: &Path) {
    match result {
        Err(Error::Corrupt { file, reason, .. }) => {
            assert_eq!(file, dir.join("index.ckpt"), "{reason}");
            assert!(
                reason.contains("covers 2 events but the log holds 0"),
                "{reason}"
            );
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(log) => panic!(
            "opened a log whose checkpoint counts 2 acknowledged events: {:?}",
            log.stats()
        ),
    }
}

/// Found by `segment_open`: with `full_check_on_open` (which does not use the checkpoint), a
/// damaged length in the first record of the last write made the whole write look torn, and
/// open cut it off and opened an empty log, although the checkpoint on disk counted those
/// events as acknowledged (`verify_dir` refused the same directory). A torn tail is only what
/// was never acknowledged: open must refuse and leave the bytes for inspection.
#[tokio::test]
async fn a_full_check_open_does_not_cut_events_the_checkpoint_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data_end = one_append_of_two(dir).await;
    overwrite(dir, FIRST_RECORD, &u32::MAX.to_le_bytes());

    assert!(verify_dir(dir).is_err());
    assert_refused_as_missing(FileLog::open(dir, options(true)).await, dir);
    let len = std::fs::metadata(dir.join(SEGMENT_0)).unwrap().len();
    assert!(len >= data_end, "open cut the segment to {len} bytes");
}

/// The same, when open does use checkpoints but ignores this one because the last record it
/// covers is damaged: the rebuild from the log must not cut what the checkpoint counted either.
#[tokio::test]
async fn an_ignored_checkpoint_still_counts_acknowledged_events() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data_end = one_append_of_two(dir).await;
    // The last payload byte of the second record: its CRC no longer matches.
    overwrite(dir, data_end - 1, b"y");

    for recovery in [RecoveryMode::TruncateTornTail, RecoveryMode::Refuse] {
        let opened = FileLog::open(
            dir,
            FileLogOptions {
                recovery,
                ..options(false)
            },
        )
        .await;
        assert_refused_as_missing(opened, dir);
    }
    let len = std::fs::metadata(dir.join(SEGMENT_0)).unwrap().len();
    assert!(len >= data_end, "open cut the segment to {len} bytes");
}

/// A directory whose segments hold fewer events than its checkpoint, without any torn bytes to
/// cut (the records zeroed): a full-check open refuses, as `verify_dir` does.
#[tokio::test]
async fn a_full_check_open_refuses_a_log_shorter_than_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data_end = one_append_of_two(dir).await;
    overwrite(
        dir,
        FIRST_RECORD,
        &vec![0; (data_end - FIRST_RECORD) as usize],
    );

    assert!(verify_dir(dir).is_err());
    assert_refused_as_missing(FileLog::open(dir, options(true)).await, dir);
}

/// Rewrites the last record of segment 0 with `edit` applied to its body and its CRC made
/// valid again: a record no torn write makes, which only its stream's content can betray (the
/// last record has no successor whose hash link would break).
fn edit_last_record(dir: &Path, edit: impl FnOnce(&mut [u8])) {
    let path = dir.join(SEGMENT_0);
    let mut b = std::fs::read(&path).unwrap();
    let mut at = FIRST_RECORD as usize;
    let mut last = at;
    while at + 4 <= b.len() {
        let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        last = at;
        at += 8 + len;
    }
    let len = u32::from_le_bytes(b[last..last + 4].try_into().unwrap()) as usize;
    edit(&mut b[last + 8..last + 8 + len]);
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&b[last..last + 4]),
        &b[last + 8..last + 8 + len],
    );
    b[last + 4..last + 8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, b).unwrap();
}

/// Two appends to two streams, one event each, closed; no checkpoint, so that open walks them.
async fn two_streams(dir: &Path) {
    let log = FileLog::open(dir, options(false)).await.unwrap();
    for (stream, n) in [("family-1", 1), ("family-2", 2)] {
        let stream = StreamId::new(stream).unwrap();
        log.append(&stream, ExpectedVersion::NoStream, vec![event(n)])
            .await
            .unwrap();
    }
    log.close().await.unwrap();
    std::fs::remove_file(dir.join("index.ckpt")).unwrap();
    assert_eq!(verify_dir(dir).unwrap().events, 2);
}

fn assert_refused_at_the_last_record(result: keten_log::Result<FileLog>, expect: &str) {
    match result {
        Err(Error::Corrupt {
            position, reason, ..
        }) => {
            assert_eq!(position.0, 1, "{reason}");
            assert!(reason.contains(expect), "{reason}");
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(log) => panic!("opened: {:?}", log.stats()),
    }
}

/// Found by `segment_open`: a record whose stream version does not follow its stream (here the
/// first event of `family-2` claiming version 1) passed `verify_dir` and open, while the online
/// `verify` refused it and reads by version disagreed with the version the event carried.
#[tokio::test]
async fn a_record_with_the_wrong_stream_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    two_streams(dir).await;
    // Body offset 24: the stream version.
    edit_last_record(dir, |body| {
        body[24..32].copy_from_slice(&1u64.to_le_bytes())
    });

    let expect = "version 1 of stream `family-2`, expected version 0";
    assert_refused_at_the_last_record(verify_dir(dir).map(|_| unreachable!()), expect);
    assert_refused_at_the_last_record(FileLog::open(dir, options(false)).await, expect);
    assert_refused_at_the_last_record(FileLog::open(dir, options(true)).await, expect);
}

/// The same family of damage: an event id that is already in the log (ids are unique for the
/// life of the log; the index would map it to one of the two).
#[tokio::test]
async fn a_record_repeating_an_event_id_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    two_streams(dir).await;
    // Body offset 40: the event id.
    edit_last_record(dir, |body| {
        body[40..56].copy_from_slice(uuid::Uuid::from_u128(1).as_bytes())
    });

    let expect = "is already in the log";
    assert_refused_at_the_last_record(verify_dir(dir).map(|_| unreachable!()), expect);
    assert_refused_at_the_last_record(FileLog::open(dir, options(false)).await, expect);
    assert_refused_at_the_last_record(FileLog::open(dir, options(true)).await, expect);
}

/// Found by `segment_open`: open trusts the rows of an index checkpoint that matches the log at
/// its last record, and a row pointing before its predecessor (a checkpoint damaged with its
/// CRC intact) made a read compute a negative length and panic. Such a checkpoint is now
/// ignored and the index rebuilt from the log, so reads return the events.
#[tokio::test]
async fn checkpoint_rows_out_of_order_are_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let log = FileLog::open(dir, options(false)).await.unwrap();
    let stream = StreamId::new("family-1").unwrap();
    log.append(
        &stream,
        ExpectedVersion::NoStream,
        vec![event(1), event(2), event(3)],
    )
    .await
    .unwrap();
    log.close().await.unwrap();

    // One chunk: 80 fixed bytes, K segments of 32, M streams (length byte and name), then
    // the rows (offset first) and a CRC.
    let path = dir.join("index.ckpt");
    let mut c = std::fs::read(&path).unwrap();
    let k = u64::from_le_bytes(c[32..40].try_into().unwrap()) as usize;
    let mut rows = 80 + 32 * k;
    for _ in 0..u64::from_le_bytes(c[40..48].try_into().unwrap()) {
        rows += 1 + c[rows] as usize;
    }
    // Rows 0 and 1 trade offsets; the last row, which open checks, stays right.
    let (a, b) = (rows, rows + 32);
    let first: [u8; 4] = c[a..a + 4].try_into().unwrap();
    c.copy_within(b..b + 4, a);
    c[b..b + 4].copy_from_slice(&first);
    let end = c.len() - 4;
    let crc = crc32c::crc32c(&c[..end]);
    c[end..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, c).unwrap();

    let log = FileLog::open(dir, options(false)).await.unwrap();
    let events = log
        .read_all(
            keten_log::ReadFrom::Start,
            keten_log::Direction::Forward,
            10,
            keten_log::Until::Latest,
        )
        .await
        .unwrap();
    let ids: Vec<u128> = events.iter().map(|e| e.id.0.as_u128()).collect();
    assert_eq!(ids, [1, 2, 3]);
    log.close().await.unwrap();
}
