//! The log API's conformance suite, unchanged, against NatsLog on a fresh single-node server
//! per case.

mod common;

use keten_log::conformance;

macro_rules! cases {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            conformance::$case(common::fresh).await;
        }
    )*};
}

cases!(
    expected_any,
    expected_no_stream,
    expected_stream_exists,
    expected_exact,
    idempotent_retry,
    idempotency_conflicts,
    invalid_appends,
    atomic_multi_event_append,
    read_stream_directions,
    read_all_order,
    read_until,
    subscribe_all_catch_up_then_live,
    subscribe_all_filters,
    subscribe_stream_catch_up_then_live,
);
