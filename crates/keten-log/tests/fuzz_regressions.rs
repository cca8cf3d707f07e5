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
