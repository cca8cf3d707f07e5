//! A three-node JetStream cluster on loopback, the log's stream with three replicas, several
//! keten clients appending under load: SIGKILL the stream's leader, then a follower, then the
//! whole cluster. Appends resume within a bound each time, and every acknowledged event is in
//! the log once, where its acknowledgement said, with an unbroken chain, on every node. And
//! several keten clients opening a new stream at once all end up on the one stream.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keten_log::{
    AppendResult, Direction, EventId, EventStore, ExpectedVersion, ReadFrom, StreamId, Until,
};
use keten_nats::{FsyncCheck, NatsLog, NatsLogOptions};
use keten_testkit::NatsCluster;

use common::event;

/// How long appends may stall after a kill before the test fails (a leader election plus the
/// clients' timeouts: about 6 s here, 10 s under load).
const RESUME_BOUND: Duration = Duration::from_secs(30);
const WRITERS: usize = 4;

fn options(cluster: &NatsCluster) -> NatsLogOptions {
    NatsLogOptions {
        replicas: 3,
        fsync: FsyncCheck::Verify {
            monitor_urls: cluster.monitor_urls(),
        },
        request_timeout: Duration::from_secs(2),
        append_timeout: Duration::from_secs(10),
        ..NatsLogOptions::default()
    }
}

type Acked = Vec<(Vec<EventId>, StreamId, AppendResult)>;

/// Appends to its own stream until told to stop; an append that fails (unknown outcome during a
/// failover) is retried with the same event ids until it is acknowledged, as a client would.
async fn writer(
    log: Arc<NatsLog>,
    w: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> Acked {
    let stream = StreamId::new(format!("load-{w}")).unwrap();
    let mut out = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let batch: Vec<_> = (0..1 + i % 2).map(|_| event(&format!("{w}-{i}"))).collect();
        let ids: Vec<EventId> = batch.iter().map(|e| e.id).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        let result = loop {
            match log
                .append(&stream, ExpectedVersion::Any, batch.clone())
                .await
            {
                Ok(r) => break r,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "writer {w}: append kept failing: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        acked.fetch_add(ids.len() as u64, Ordering::Relaxed);
        out.push((ids, stream.clone(), result));
        i += 1;
    }
    out
}

/// Waits until `n` more events are acknowledged than at the call, failing past the bound.
async fn resumes(acked: &AtomicU64, n: u64, what: &str) -> Duration {
    let start = Instant::now();
    let from = acked.load(Ordering::Relaxed);
    while acked.load(Ordering::Relaxed) < from + n {
        assert!(
            start.elapsed() < RESUME_BOUND,
            "{what}: appends did not resume within {RESUME_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = start.elapsed();
    eprintln!("{what}: {n} more events acknowledged after {took:?}");
    took
}

/// Every running node's replica of the stream holds `total` messages, last sequence `total`.
async fn replicas_hold(cluster: &NatsCluster, total: u64) {
    let deadline = Instant::now() + RESUME_BOUND;
    loop {
        let mut states = Vec::new();
        for i in 0..3 {
            let node = cluster.node(i);
            if !node.is_running() {
                continue;
            }
            let jsz = node.monitor_json("/jsz?accounts=true&streams=true");
            let state = jsz.and_then(|j| {
                j["account_details"].as_array()?.iter().find_map(|a| {
                    a["stream_detail"].as_array()?.iter().find_map(|s| {
                        (s["name"] == "KETEN").then(|| {
                            (
                                s["state"]["messages"].as_u64().unwrap_or(0),
                                s["state"]["last_seq"].as_u64().unwrap_or(0),
                            )
                        })
                    })
                })
            });
            states.push((node.name().to_string(), state));
        }
        if states.iter().all(|(_, s)| *s == Some((total, total))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replicas do not hold {total} events: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh keten replays and verifies the whole chain; every acknowledged event is there once,
/// at the place its acknowledgement gave, and nothing else is.
async fn check_log(cluster: &NatsCluster, acked: &[Acked]) -> u64 {
    let log = NatsLog::connect(&cluster.urls(), options(cluster))
        .await
        .expect("a fresh keten opens the log");
    let total = log.verify().await.expect("chain verifies");
    let events = log
        .read_all(
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await
        .unwrap();
    assert_eq!(events.len() as u64, total);
    let by_id: HashMap<EventId, usize> =
        events.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
    assert_eq!(by_id.len(), events.len(), "an event id twice");
    let mut count = 0;
    for writer in acked {
        for (ids, stream, r) in writer {
            for (k, id) in ids.iter().enumerate() {
                let at = *by_id
                    .get(id)
                    .unwrap_or_else(|| panic!("acknowledged {id} lost"));
                let e = &events[at];
                assert_eq!(e.position.0, r.first_position.0 + k as u64);
                assert_eq!(e.version.0, r.first_version.0 + k as u64);
                assert_eq!(&e.stream, stream);
                count += 1;
            }
        }
    }
    assert_eq!(
        count, total,
        "the log holds exactly the acknowledged events"
    );
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_leader_follower_and_cluster_kills() {
    let mut cluster = tokio::task::spawn_blocking(NatsCluster::start)
        .await
        .unwrap();
    // Two keten clients (as two keten servers would be), two writers each: they also race
    // each other for the stream's tail.
    let mut logs = Vec::new();
    for _ in 0..2 {
        logs.push(Arc::new(
            NatsLog::connect(&cluster.urls(), options(&cluster))
                .await
                .expect("connect to the cluster"),
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(logs[w % 2].clone(), w, stop.clone(), acked.clone())))
        .collect();
    resumes(&acked, 200, "warm-up").await;

    // The stream leader, SIGKILLed mid-load.
    let leader = cluster.wait_stream_leader("KETEN", RESUME_BOUND);
    eprintln!("killing the stream leader {}", cluster.node(leader).name());
    cluster.kill(leader);
    resumes(&acked, 100, "after the leader's SIGKILL").await;
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    assert!(cluster.node(a).is_running() && cluster.node(b).is_running());
    cluster.restart(leader);
    resumes(&acked, 100, "after the old leader rejoined").await;

    // A follower.
    let leader = cluster.wait_stream_leader("KETEN", RESUME_BOUND);
    let follower = (leader + 1) % 3;
    eprintln!("killing a follower {}", cluster.node(follower).name());
    cluster.kill(follower);
    resumes(&acked, 100, "after a follower's SIGKILL").await;
    cluster.restart(follower);

    // The whole cluster, at once.
    eprintln!("killing and restarting the whole cluster");
    cluster = tokio::task::spawn_blocking(move || {
        cluster.restart_all();
        cluster
    })
    .await
    .unwrap();
    resumes(&acked, 100, "after the whole cluster restarted").await;

    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for w in writers {
        results.push(w.await.unwrap());
    }
    let total = check_log(&cluster, &results).await;
    assert_eq!(total, acked.load(Ordering::Relaxed));
    replicas_hold(&cluster, total).await;
    eprintln!("{total} acknowledged events, all present once, in order, on all three nodes");
}

/// keten servers that start together on a new cluster race to create the same stream; each
/// must end up on the one stream the first created, whichever create the cluster answered
/// first, timed out or refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_start_together_share_one_new_stream() {
    let cluster = tokio::task::spawn_blocking(NatsCluster::start)
        .await
        .unwrap();
    let opts = NatsLogOptions {
        stream: "RACE".into(),
        subject_prefix: "race".into(),
        ..options(&cluster)
    };
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let (urls, opts) = (cluster.urls(), opts.clone());
            tokio::spawn(async move { NatsLog::connect(&urls, opts).await })
        })
        .collect();
    let mut logs = Vec::new();
    for (i, open) in opens.into_iter().enumerate() {
        logs.push(
            open.await
                .unwrap()
                .unwrap_or_else(|e| panic!("open {i} of the new stream: {e}")),
        );
    }
    // One stream: what one opener appends, every other reads.
    let stream = StreamId::new("gezin-race").unwrap();
    let written = logs[0]
        .append(&stream, ExpectedVersion::NoStream, vec![event("race")])
        .await
        .unwrap();
    for log in &logs[1..] {
        assert_eq!(
            log.stream_version(&stream).await.unwrap(),
            Some(written.last_version),
        );
    }
}
