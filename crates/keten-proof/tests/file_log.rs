//! The tree built from a real `FileLog` proves every event in it, and keeps up as the log grows.

use keten_log::{
    Direction, Durability, EventId, EventStore, EventType, ExpectedVersion, FileLog,
    FileLogOptions, ProposedEvent, ReadFrom, StreamId, Until,
};
use keten_proof::{TreeBuilder, leaf_hash, verify_consistency, verify_inclusion};

fn proposed(n: u64) -> ProposedEvent {
    ProposedEvent {
        id: EventId(uuid::Uuid::from_u128(n as u128 + 1)),
        event_type: EventType::new("Noted").unwrap(),
        metadata: b"{}".to_vec(),
        payload: format!("payload {n}").into_bytes(),
    }
}

async fn append(log: &FileLog, from: u64, count: u64) {
    for batch in (from..from + count).collect::<Vec<_>>().chunks(10) {
        let stream = StreamId::new(format!("family-{}", batch[0] % 7)).unwrap();
        log.append(
            &stream,
            ExpectedVersion::Any,
            batch.iter().map(|&n| proposed(n)).collect(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn from_store_proves_every_event_of_a_file_log() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileLogOptions {
        durability: Durability::NoSyncUnsafe,
        ..FileLogOptions::default()
    };
    let log = FileLog::open(dir.path(), options.clone()).await.unwrap();
    append(&log, 0, 5000).await;

    let mut tree = TreeBuilder::from_store(&log).await.unwrap();
    assert_eq!(tree.size(), 5000);
    let root = tree.root();
    let events = log
        .read_all(ReadFrom::Start, Direction::Forward, 10_000, Until::Latest)
        .await
        .unwrap();
    for e in &events {
        let proof = tree.inclusion_proof(e.position.0, tree.size()).unwrap();
        verify_inclusion(&leaf_hash(e), e.position.0, tree.size(), &proof, &root).unwrap();
    }

    // The log grows; the tree catches up and the new root extends the old one.
    append(&log, 5000, 301).await;
    assert_eq!(tree.catch_up(&log).await.unwrap(), 301);
    let proof = tree.consistency_proof(5000, 5301).unwrap();
    verify_consistency(5000, 5301, &root, &tree.root(), &proof).unwrap();

    // Reopened, the log gives the same tree.
    log.close().await.unwrap();
    let log = FileLog::open(dir.path(), options).await.unwrap();
    let again = TreeBuilder::from_store(&log).await.unwrap();
    assert_eq!(again.root(), tree.root());
    assert!(again.memory_bytes() < 5301 * 80, "{}", again.memory_bytes());
}
