//! The conformance suite against the file log, one test per case.

use keten_log::conformance::{self, Guarded};
use keten_log::{FileLog, FileLogOptions};

/// A file log in its own temporary directory, removed when the test ends.
type TempLog = Guarded<FileLog, tempfile::TempDir>;

async fn fresh() -> TempLog {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so that the cases also cross segment boundaries.
    let options = FileLogOptions {
        segment_size: 16 << 10,
        ..FileLogOptions::default()
    };
    let log = FileLog::open(dir.path(), options).await.unwrap();
    Guarded {
        store: log,
        guard: dir,
    }
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            conformance::$case(fresh).await;
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
    slow_subscriber_catches_up,
);

/// `run_all` itself, as another backend would call it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_one_factory() {
    conformance::run_all(fresh).await;
}

/// The same suite on a log in `Durability::Interval` (the access log's mode), whose appends run
/// in the caller's thread rather than the writer thread's.
mod interval {
    use std::time::Duration;

    use keten_log::conformance::{self, Guarded};
    use keten_log::{Durability, FileLog, FileLogOptions};

    async fn fresh() -> super::TempLog {
        let dir = tempfile::tempdir().unwrap();
        let options = FileLogOptions {
            segment_size: 16 << 10,
            durability: Durability::Interval(Duration::from_millis(5)),
            ..FileLogOptions::default()
        };
        let log = FileLog::open(dir.path(), options).await.unwrap();
        Guarded {
            store: log,
            guard: dir,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run_all_on_an_interval_log() {
        conformance::run_all(fresh).await;
    }
}
