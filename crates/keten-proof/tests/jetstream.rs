//! The same proofs over JetStream: the tree is built from what `NatsLog` returns, exactly as from
//! the file log, and a bundle of one stream verifies. Needs `nats-server` (keten-testkit finds or
//! fetches it, as for keten-nats's own tests).

use keten_log::{
    CommitTime, Direction, EventId, EventStore, EventType, ExpectedVersion, ProposedEvent,
    ReadFrom, StreamId, StreamVersion, Until,
};
use keten_nats::{FsyncCheck, NatsLog, NatsLogOptions};
use keten_proof::{
    Bundle, SigningKey, TreeBuilder, leaf_hash, verify_bundle, verify_checkpoint_consistency,
    verify_inclusion,
};
use keten_testkit::NatsServer;

fn proposed(n: u64) -> ProposedEvent {
    ProposedEvent {
        id: EventId(uuid::Uuid::from_u128(n as u128 + 1)),
        event_type: EventType::new("Noted").unwrap(),
        metadata: b"{}".to_vec(),
        payload: format!("payload {n}").into_bytes(),
    }
}

async fn append(log: &NatsLog, from: u64, count: u64) {
    for n in from..from + count {
        let stream = StreamId::new(format!("family-{}", n % 5)).unwrap();
        log.append(&stream, ExpectedVersion::Any, vec![proposed(n)])
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inclusion_consistency_and_bundles_hold_over_jetstream() {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let options = NatsLogOptions {
        fsync: FsyncCheck::Verify {
            monitor_urls: vec![server.monitor_url()],
        },
        ..NatsLogOptions::default()
    };
    let log = NatsLog::connect(&server.url(), options.clone())
        .await
        .unwrap();
    append(&log, 0, 137).await;
    let key = SigningKey::from_bytes(&[3; 32]);

    let mut tree = TreeBuilder::from_store(&log).await.unwrap();
    assert_eq!(tree.size(), 137);
    let old = tree
        .checkpoint("keten.test/log", CommitTime(1))
        .sign(&key)
        .unwrap();
    let events = log
        .read_all(ReadFrom::Start, Direction::Forward, 1000, Until::Latest)
        .await
        .unwrap();
    for e in &events {
        let proof = tree.inclusion_proof(e.position.0, tree.size()).unwrap();
        verify_inclusion(&leaf_hash(e), e.position.0, 137, &proof, &tree.root()).unwrap();
    }

    append(&log, 137, 40).await;
    assert_eq!(tree.catch_up(&log).await.unwrap(), 40);
    let new = tree
        .checkpoint("keten.test/log", CommitTime(2))
        .sign(&key)
        .unwrap();
    let proof = tree.consistency_proof(137, 177).unwrap();
    verify_checkpoint_consistency(&old, &new, &proof, &key.verifying_key()).unwrap();

    // A second connection (another keten server on the same stream) builds the same tree.
    let other = NatsLog::connect(&server.url(), options).await.unwrap();
    assert_eq!(
        TreeBuilder::from_store(&other).await.unwrap().root(),
        tree.root()
    );

    let stream = StreamId::new("family-2").unwrap();
    let family = log
        .read_stream(
            &stream,
            ReadFrom::At(StreamVersion(0)),
            Direction::Forward,
            1000,
            Until::Latest,
        )
        .await
        .unwrap();
    let bundle = Bundle::build(&tree, new, &stream, &family).unwrap();
    let report = verify_bundle(&bundle, &key.verifying_key());
    assert!(report.holds(), "{report}");
    assert_eq!(report.events_included, family.len());
}
