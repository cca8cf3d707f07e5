//! Two keten servers (two NatsLogs on one stream) writing at once: the stream's tail serialises
//! them. With exact expected versions exactly one wins each version; the same append sent to
//! both at once is stored once and both get its result; each sees the other's events.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use keten_log::{
    Direction, Error, EventStore, ExpectedVersion, ReadFrom, StreamId, StreamVersion, Until,
};
use keten_nats::NatsLog;

use common::{event, fresh, options_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_take_turns_on_one_stream() {
    let first = fresh().await;
    let second = Arc::new(
        NatsLog::connect(
            &first.guard.url(),
            options_for(vec![first.guard.monitor_url()]),
        )
        .await
        .unwrap(),
    );
    let first_log = Arc::new(first);
    let s = StreamId::new("contended").unwrap();
    // A subscription on one server sees what the other writes, live.
    let mut watch = second.subscribe_stream(&s, None).await.unwrap();

    // Eight writers, four per server, each taking the next version by exact expectation.
    let per_writer = 15;
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let a = first_log.clone();
            let b = second.clone();
            let s = s.clone();
            tokio::spawn(async move {
                let log: &dyn EventStore = if w % 2 == 0 { &*a } else { &*b };
                let mut won = Vec::new();
                let mut conflicts = 0;
                while won.len() < per_writer {
                    let current = log.stream_version(&s).await.unwrap();
                    let expected =
                        current.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                    match log
                        .append(&s, expected, vec![event(&format!("w{w}"))])
                        .await
                    {
                        Ok(r) => won.push(r.first_version.0),
                        Err(Error::WrongExpectedVersion { actual, .. }) => {
                            assert!(actual >= current, "versions never go back");
                            conflicts += 1;
                        }
                        Err(e) => panic!("writer {w}: {e}"),
                    }
                }
                (won, conflicts)
            })
        })
        .collect();
    let mut versions = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (won, c) = t.await.unwrap();
        versions.extend(won);
        conflicts += c;
    }
    versions.sort_unstable();
    assert_eq!(versions, (0..8 * per_writer as u64).collect::<Vec<_>>());
    eprintln!("{} appends, {conflicts} lost races", versions.len());

    // Both servers see the same stream, event for event.
    let read = |log: Arc<dyn EventStore>| {
        let s = s.clone();
        async move {
            log.read_stream(
                &s,
                ReadFrom::Start,
                Direction::Forward,
                usize::MAX,
                Until::Latest,
            )
            .await
            .unwrap()
        }
    };
    let on_first = read(first_log.clone()).await;
    let on_second = read(second.clone()).await;
    assert_eq!(on_first, on_second);
    assert_eq!(on_first.len(), 8 * per_writer);
    let mut watched = Vec::new();
    while watched.len() < on_first.len() {
        let next = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("subscription delivers")
            .expect("subscription open")
            .unwrap();
        watched.push(next);
    }
    assert_eq!(watched, on_first);

    // The same append through both servers at once (a client retrying elsewhere): stored once,
    // one result.
    let batch = vec![event("x"), event("y")];
    let (ra, rb) = tokio::join!(
        first_log.append(&s, ExpectedVersion::Any, batch.clone()),
        second.append(&s, ExpectedVersion::Any, batch.clone())
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra, rb);
    assert_eq!(ra.last_version, StreamVersion(8 * per_writer as u64 + 1));
    let all = second
        .read_all(
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await
        .unwrap();
    let ids: HashSet<_> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), all.len());
    assert_eq!(all.len(), 8 * per_writer + 2);
    assert_eq!(first_log.verify().await.unwrap(), all.len() as u64);
}
