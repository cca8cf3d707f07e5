//! Events near the server's max_payload: stored, read back in several direct-get answers, and
//! one too large for the server refused before anything is written.

mod common;

use keten_log::{Direction, Error, EventStore, ExpectedVersion, ReadFrom, StreamId, Until};

use common::{event, fresh};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_round_trip_and_oversized_ones_are_refused() {
    let store = fresh().await;
    let s = StreamId::new("large").unwrap();
    let big = "x".repeat(900 << 10);
    for i in 0..10 {
        let mut e = event(&big);
        e.payload.push(i);
        store
            .append(&s, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
    }
    for (from, direction) in [
        (ReadFrom::Start, Direction::Forward),
        (ReadFrom::End, Direction::Backward),
    ] {
        let events = store
            .read_all(from, direction, usize::MAX, Until::Latest)
            .await
            .unwrap();
        assert_eq!(events.len(), 10);
        for e in &events {
            assert_eq!(e.payload.len(), big.len() + 1);
            assert_eq!(*e.payload.last().unwrap() as u64, e.position.0);
        }
    }
    let too_big = event(&"y".repeat(2 << 20));
    assert!(matches!(
        store.append(&s, ExpectedVersion::Any, vec![too_big]).await,
        Err(Error::InvalidAppend(_))
    ));
    assert_eq!(store.verify().await.unwrap(), 10);
}
