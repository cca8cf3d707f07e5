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
    append_with(log, from, count, proposed).await
}

async fn append_with(log: &FileLog, from: u64, count: u64, make: impl Fn(u64) -> ProposedEvent) {
    for batch in (from..from + count).collect::<Vec<_>>().chunks(10) {
        let stream = StreamId::new(format!("family-{}", batch[0] % 7)).unwrap();
        log.append(
            &stream,
            ExpectedVersion::Any,
            batch.iter().map(|&n| make(n)).collect(),
        )
        .await
        .unwrap();
    }
}

fn unsynced() -> FileLogOptions {
    FileLogOptions {
        durability: Durability::NoSyncUnsafe,
        ..FileLogOptions::default()
    }
}

#[tokio::test]
async fn from_store_proves_every_event_of_a_file_log() {
    let dir = tempfile::tempdir().unwrap();
    let options = unsynced();
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

/// A log rewritten wholesale to change one old payload (valid records, a valid hash chain that
/// `verify` accepts) cannot prove that it extends a checkpoint signed before the rewrite. (The
/// rewrite also gives every event a new commit time; the unit tests in `rfc6962.rs` change one
/// leaf alone.)
#[tokio::test]
async fn a_rewritten_log_fails_consistency_with_an_earlier_checkpoint() {
    let key = keten_proof::SigningKey::from_bytes(&[5; 32]);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let honest = FileLog::open(a.path(), unsynced()).await.unwrap();
    append(&honest, 0, 300).await;
    let tree = TreeBuilder::from_store(&honest).await.unwrap();
    let signed = tree
        .checkpoint("keten.test/log", keten_log::CommitTime(1))
        .sign(&key)
        .unwrap();

    let rewritten = FileLog::open(b.path(), unsynced()).await.unwrap();
    append_with(&rewritten, 0, 400, |n| {
        let mut e = proposed(n);
        if n == 123 {
            e.payload = b"what the operator wishes had been recorded".to_vec();
        }
        e
    })
    .await;
    rewritten.verify().await.unwrap();
    let tree = TreeBuilder::from_store(&rewritten).await.unwrap();
    let later = tree
        .checkpoint("keten.test/log", keten_log::CommitTime(2))
        .sign(&key)
        .unwrap();
    let proof = tree.consistency_proof(300, 400).unwrap();
    let err =
        keten_proof::verify_checkpoint_consistency(&signed, &later, &proof, &key.verifying_key())
            .unwrap_err();
    assert!(err.to_string().contains("earlier log was changed"), "{err}");
}
