//! JetStream's `Nats-Msg-Id` deduplication forgets after its window; keten's idempotency does
//! not. A retry after the window, through a keten server that has just started (its index
//! rebuilt from the stream), returns the first result and writes nothing.

mod common;

use std::time::Duration;

use async_nats::jetstream;
use keten_log::{EventStore, ExpectedVersion, GlobalPosition, StreamId, StreamVersion};
use keten_nats::NatsLog;
use keten_testkit::NatsServer;

use common::{event, options_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_dedup_window_and_a_restart_returns_the_first_result() {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let opts = options_for(vec![server.monitor_url()]);
    // keten's stream, with the shortest deduplication window the server takes.
    let window = Duration::from_millis(100);
    let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let mut config = opts.stream_config();
    config.duplicate_window = window;
    js.create_stream(config).await.unwrap();

    let s = StreamId::new("family-7").unwrap();
    let batch = vec![event("a"), event("b"), event("c")];
    let first = {
        let log = NatsLog::connect(&server.url(), opts.clone()).await.unwrap();
        let r = log
            .append(&s, ExpectedVersion::NoStream, batch.clone())
            .await
            .unwrap();
        log.append(&s, ExpectedVersion::Any, vec![event("d")])
            .await
            .unwrap();
        r
    };
    // The window is a span of time: letting it pass is what this test is about.
    tokio::time::sleep(window * 3).await;

    let restarted = NatsLog::connect(&server.url(), opts).await.unwrap();
    let again = restarted
        .append(&s, ExpectedVersion::Exact(StreamVersion(42)), batch)
        .await
        .expect("the retry is recognised");
    assert_eq!(again, first);
    assert_eq!(restarted.head().await.unwrap(), Some(GlobalPosition(3)));
    assert_eq!(restarted.verify().await.unwrap(), 4);
}
