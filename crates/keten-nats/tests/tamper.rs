//! Tamper evidence on JetStream: an event removed, changed or reordered by someone with the
//! JetStream admin API is found by `verify`, which names its position; a damaged stream is
//! refused at connect; a stream configured so that it could lose events is refused too.

mod common;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::StreamMessage};
use keten_log::{Error, EventStore, ExpectedVersion, GlobalPosition, StreamId};
use keten_nats::{FsyncCheck, NatsLog, NatsLogOptions};
use keten_testkit::NatsServer;

use common::{event, fresh, options_for};

/// 20 events over three streams, one append of three.
async fn write_history(log: &NatsLog) {
    for i in 0..17 {
        let s = StreamId::new(format!("family-{}", i % 3)).unwrap();
        log.append(&s, ExpectedVersion::Any, vec![event(&format!("e{i}"))])
            .await
            .unwrap();
    }
    let s = StreamId::new("family.dotted").unwrap();
    log.append(
        &s,
        ExpectedVersion::NoStream,
        vec![event("a"), event("b"), event("c")],
    )
    .await
    .unwrap();
}

async fn stored(url: &str) -> Vec<StreamMessage> {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let stream = js.get_stream("KETEN").await.unwrap();
    let mut out = Vec::new();
    for seq in 1..=20 {
        out.push(stream.get_raw_message(seq).await.unwrap());
    }
    out
}

/// What an admin with publish rights can do: put a message on the log's subject, with the
/// headers keten wrote (JetStream's own `Nats-*` headers dropped).
async fn republish(js: &jetstream::Context, m: &StreamMessage, payload: Option<&[u8]>) {
    let mut headers = HeaderMap::new();
    for (name, values) in m.headers.iter() {
        if name.to_string().starts_with("Keten-") {
            for v in values {
                headers.append(name.to_string(), v.as_str());
            }
        }
    }
    let body = payload.map_or(m.payload.clone(), |p| p.to_vec().into());
    js.publish_with_headers(m.subject.clone(), headers, body)
        .await
        .unwrap()
        .await
        .unwrap();
}

fn assert_corrupt_at(r: keten_log::Result<u64>, position: u64, words: &str) {
    match r {
        Err(Error::Corrupt {
            position: p,
            reason,
            file,
            ..
        }) => {
            assert_eq!(p, GlobalPosition(position), "{reason}");
            assert!(reason.contains(words), "reason {reason:?} lacks {words:?}");
            assert_eq!(file.to_str(), Some("jetstream:KETEN"));
        }
        other => panic!("expected Corrupt at {position}, got {other:?}"),
    }
}

/// Copies the original's first `keep` messages to a fresh server, opens a NatsLog there (a valid
/// log so far), then lets `tamper` publish the rest behind keten's back.
async fn tampered_copy<F, Fut>(original: &[StreamMessage], keep: usize, tamper: F) -> common::Fresh
where
    F: FnOnce(jetstream::Context) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let copy = fresh().await;
    let js = jetstream::new(copy.store.client().clone());
    for m in &original[..keep] {
        republish(&js, m, None).await;
    }
    let reopened = NatsLog::connect(
        &copy.guard.url(),
        options_for(vec![copy.guard.monitor_url()]),
    )
    .await
    .expect("the faithful prefix is a valid log");
    assert_eq!(reopened.verify().await.unwrap(), keep as u64);
    tamper(js).await;
    common::Fresh {
        store: reopened,
        guard: copy.guard,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_removed_changed_or_reordered_event() {
    let origin = fresh().await;
    write_history(&origin.store).await;
    assert_eq!(origin.store.verify().await.unwrap(), 20);
    let original = stored(&origin.guard.url()).await;

    // Removed: position 7 left out, the rest republished.
    let copy = tampered_copy(&original, 7, |js| {
        let rest = original[8..].to_vec();
        async move {
            for m in &rest {
                republish(&js, m, None).await;
            }
        }
    })
    .await;
    assert_corrupt_at(copy.store.verify().await, 7, "record says position 8");

    // Changed: position 10's payload altered, its headers (and hash) kept.
    let copy = tampered_copy(&original, 10, |js| {
        let rest = original[10..].to_vec();
        async move {
            // The event's own payload ends the body: change its last byte.
            let mut forged = rest[0].payload.to_vec();
            *forged.last_mut().unwrap() ^= 0x20;
            republish(&js, &rest[0], Some(&forged)).await;
            for m in &rest[1..] {
                republish(&js, m, None).await;
            }
        }
    })
    .await;
    assert_corrupt_at(copy.store.verify().await, 10, "hash chain broken");

    // Reordered: positions 12 and 13 swapped.
    let copy = tampered_copy(&original, 12, |js| {
        let rest = original[12..].to_vec();
        async move {
            republish(&js, &rest[1], None).await;
            republish(&js, &rest[0], None).await;
            for m in &rest[2..] {
                republish(&js, m, None).await;
            }
        }
    })
    .await;
    assert_corrupt_at(copy.store.verify().await, 12, "record says position 13");

    // Part of an atomic append dropped: the last event of the three-event append.
    let copy = fresh().await;
    let js = jetstream::new(copy.store.client().clone());
    for m in &original[..19] {
        republish(&js, m, None).await;
    }
    assert_corrupt_at(
        copy.store.verify().await,
        18,
        "the log ends after event 2 of an append of 3",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_delete_holds_and_a_restored_stream_with_a_deleted_event_is_named() {
    let origin = fresh().await;
    write_history(&origin.store).await;
    let original = stored(&origin.guard.url()).await;
    let js = jetstream::new(origin.store.client().clone());
    let mut stream = js.get_stream("KETEN").await.unwrap();
    // deny_delete and deny_purge hold, and the server will not lift deny_delete.
    assert!(stream.delete_message(5).await.is_err());
    assert!(stream.purge().await.is_err());
    let mut config = stream.info().await.unwrap().config.clone();
    config.deny_delete = false;
    let refused = js.update_stream(config.clone()).await.expect_err("refused");
    assert!(refused.to_string().contains("deny"), "{refused}");

    // What an admin can still do: delete the whole stream and restore it (here: republish it)
    // without deny_delete, then delete one event. The running keten names the gap.
    js.delete_stream("KETEN").await.unwrap();
    js.create_stream(config).await.unwrap();
    for m in &original {
        republish(&js, m, None).await;
    }
    let stream = js.get_stream("KETEN").await.unwrap();
    stream.delete_message(5).await.unwrap();
    assert_corrupt_at(origin.store.verify().await, 4, "was deleted");
    // A fresh keten refuses the restored stream: its configuration lost a promise.
    let err = NatsLog::connect(
        &origin.guard.url(),
        options_for(vec![origin.guard.monitor_url()]),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("deny_delete"), "{err}");
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_stream_or_server_that_cannot_keep_the_promises() {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let opts = options_for(vec![server.monitor_url()]);
    let mut config = opts.stream_config();
    config.storage = jetstream::stream::StorageType::Memory;
    config.deny_purge = false;
    config.discard = jetstream::stream::DiscardPolicy::Old;
    config.max_age = std::time::Duration::from_secs(3600);
    js.create_stream(config).await.unwrap();
    let err = NatsLog::connect(&server.url(), opts.clone())
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    for words in [
        "storage must be file",
        "deny_purge",
        "discard must be new",
        "max_age",
    ] {
        assert!(text.contains(words), "{text} lacks {words}");
    }
    assert!(matches!(Error::from(err), Error::Config(_)));

    // Without a way to check fsync, keten refuses unless told to accept acks before fsync.
    let unverified = NatsLogOptions {
        stream: "OTHER".into(),
        subject_prefix: "other".into(),
        fsync: FsyncCheck::Verify {
            monitor_urls: vec![],
        },
        ..NatsLogOptions::default()
    };
    let err = NatsLog::connect(&server.url(), unverified.clone())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("fsync"), "{err}");
    let accepted = NatsLogOptions {
        fsync: FsyncCheck::AcceptAckBeforeFsync,
        ..unverified
    };
    NatsLog::connect(&server.url(), accepted)
        .await
        .expect("explicitly accepted");
}
