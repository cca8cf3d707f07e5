//! Shared by the integration tests: a NatsLog on a server of its own.
#![allow(dead_code)]

use keten_log::ProposedEvent;
use keten_log::conformance::Guarded;
use keten_nats::{FsyncCheck, NatsLog, NatsLogOptions};
use keten_testkit::NatsServer;

/// A NatsLog on a fresh single-node server that lives as long as it does.
pub type Fresh = Guarded<NatsLog, NatsServer>;

pub fn options_for(monitor_urls: Vec<String>) -> NatsLogOptions {
    NatsLogOptions {
        fsync: FsyncCheck::Verify { monitor_urls },
        ..NatsLogOptions::default()
    }
}

pub async fn fresh() -> Fresh {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let log = NatsLog::connect(&server.url(), options_for(vec![server.monitor_url()]))
        .await
        .expect("connect");
    Guarded {
        store: log,
        guard: server,
    }
}

pub fn event(payload: &str) -> ProposedEvent {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() as u128;
    ProposedEvent {
        id: keten_log::EventId(uuid::Uuid::from_u128((pid << 64) | n as u128)),
        event_type: keten_log::EventType::new("T").unwrap(),
        metadata: b"{}".to_vec(),
        payload: payload.as_bytes().to_vec(),
    }
}
