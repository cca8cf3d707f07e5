//! Prometheus metrics and the tiny HTTP listener that serves them.
//!
//! A hand-written HTTP/1.1 responder on purpose: one path, one content type, and no web framework
//! to configure or keep up to date for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Labels = Vec<(String, String)>;

/// Everything keten counts.
pub struct Metrics {
    registry: Registry,
    /// Publish calls that wrote events (retries answered from the log included).
    pub appends: Counter,
    pub events_appended: Counter,
    /// Publish calls refused, by reason (a domain rule code, or the status class).
    pub rejections: Family<Labels, Counter>,
    /// From the append call to its durable acknowledgement (includes the log's fsync).
    pub append_seconds: Histogram,
    /// Global positions the projection is behind the log's head.
    pub projection_lag: Gauge,
    /// Optimistic retries of a Publish with expected version "any" after a concurrent append.
    pub publish_retries: Counter,
    /// Publishes that found the projection behind the family's stream, by what they did:
    /// `waited` for it to catch up, or `folded` the family from the log.
    pub projection_behind: Family<Labels, Counter>,
    /// Records written to the access log.
    pub access_records: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("keten");
        let appends = Counter::default();
        let events_appended = Counter::default();
        let rejections = Family::<Labels, Counter>::default();
        // 50 µs .. ~1.6 s
        let append_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        let projection_lag = Gauge::default();
        let publish_retries = Counter::default();
        let projection_behind = Family::<Labels, Counter>::default();
        let access_records = Counter::default();
        registry.register(
            "access_records",
            "Records written to the access log (NEN 7513)",
            access_records.clone(),
        );
        registry.register(
            "appends",
            "Publish calls that appended events",
            appends.clone(),
        );
        registry.register(
            "events_appended",
            "Events appended through Publish",
            events_appended.clone(),
        );
        registry.register(
            "rejections",
            "Publish calls refused, by reason",
            rejections.clone(),
        );
        registry.register(
            "append_seconds",
            "Latency of a durable append, fsync included",
            append_seconds.clone(),
        );
        registry.register(
            "projection_lag_events",
            "Events the projection is behind the log head",
            projection_lag.clone(),
        );
        registry.register(
            "publish_retries",
            "Publish retries after a concurrent append (expected version any)",
            publish_retries.clone(),
        );
        registry.register(
            "publish_projection_behind",
            "Publishes that found the projection behind the family, by what they did",
            projection_behind.clone(),
        );
        Self {
            registry,
            appends,
            events_appended,
            rejections,
            append_seconds,
            projection_lag,
            publish_retries,
            projection_behind,
            access_records,
        }
    }
}

impl Metrics {
    pub fn reject(&self, reason: &str) {
        self.rejections
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }

    pub fn projection_behind(&self, outcome: &str) {
        self.projection_behind
            .get_or_create(&vec![("outcome".to_string(), outcome.to_string())])
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `GET /metrics` (any path, in fact) until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            // The request is not parsed: every path answers with the metrics.
            let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await;
            if !matches!(read, Ok(Ok(n)) if n > 0) {
                return;
            }
            let body = metrics.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

/// Binds the metrics listener; the caller spawns [`serve_metrics`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
