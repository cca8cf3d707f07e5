//! What one client may cost the server: the `[limits]` a hostile or broken client meets before
//! it can crowd out the others.
//!
//! Most limits are the transport's (tonic, hyper, h2, rustls), set in `serve`; this module holds
//! the two the transport has no knob for: a cap on open connections, and the number of events
//! in one `Publish`. Why no limit for slow readers of streams: a watch or a subscription is
//! pulled from the log only when h2 has send capacity for it (read-all runs at most 256 events
//! ahead), and h2 buffers at most 400 KiB per stream whatever window the client advertises; a
//! reader that stops reading costs that much and no more, and is served from the log when it
//! reads again.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use keten_proto::v1::{self, partner_gateway_server::PartnerGateway};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Request, Response, Status};

use crate::config::LimitsConfig;
use crate::error::Error;
use crate::gateway::Gateway;

/// Accepts a connection only while fewer than `max` are open; beyond that, new connections wait
/// in the kernel's listen queue until one closes (a handshake that does not finish in time
/// closes too, see `tls_handshake_timeout_secs`).
pub(crate) fn cap_connections<S>(
    incoming: S,
    max: usize,
) -> impl Stream<Item = io::Result<Counted>> + Send
where
    S: Stream<Item = io::Result<TcpStream>> + Send + Unpin,
{
    let open = Arc::new(Semaphore::new(max));
    futures::stream::unfold((incoming, open), |(mut incoming, open)| async move {
        // The permit is taken before the accept, so that a full server leaves the connection
        // in the listen queue rather than accepting and dropping it.
        let permit = open.clone().acquire_owned().await.ok()?;
        let accepted = incoming.next().await?;
        let item = accepted.map(|tcp| Counted {
            tcp,
            _permit: permit,
        });
        Some((item, (incoming, open)))
    })
}

/// A connection that counts as open until it is dropped.
pub(crate) struct Counted {
    tcp: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Connected for Counted {
    // The TCP stream's own, so that the mTLS peer certificates are found where tonic looks.
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.tcp.connect_info()
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// The partner gateway behind the per-request limits: a publish with more events than
/// `max_events_per_publish` is refused before anything is checked or written.
pub(crate) struct LimitedGateway {
    pub inner: Gateway,
    pub max_events_per_publish: usize,
}

#[tonic::async_trait]
impl PartnerGateway for LimitedGateway {
    async fn publish(
        &self,
        request: Request<v1::PublishRequest>,
    ) -> Result<Response<v1::PublishResponse>, Status> {
        let n = request.get_ref().events.len();
        if n > self.max_events_per_publish {
            let e = too_many_events(n, self.max_events_per_publish);
            self.inner.app.metrics.reject(&e.reason());
            tracing::info!(events = n, "publish refused: too many events");
            return Err(e.into());
        }
        PartnerGateway::publish(&self.inner, request).await
    }

    type SubscribeStream = <Gateway as PartnerGateway>::SubscribeStream;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        PartnerGateway::subscribe(&self.inner, request).await
    }
}

fn too_many_events(n: usize, max: usize) -> Error {
    Error::InvalidArgument {
        field: "events".into(),
        description: format!(
            "{n} events in one publish; at most {max} (the server's \
             limits.max_events_per_publish): split them over several publishes"
        ),
    }
}

impl LimitsConfig {
    /// Limits that would refuse every call or every connection are configuration errors.
    pub fn check(&self) -> crate::Result<()> {
        let positive = [
            (
                "max_decoding_message_bytes",
                self.max_decoding_message_bytes,
            ),
            (
                "max_encoding_message_bytes",
                self.max_encoding_message_bytes,
            ),
            ("max_events_per_publish", self.max_events_per_publish),
            ("max_connections", self.max_connections),
            (
                "max_concurrent_streams_per_connection",
                self.max_concurrent_streams_per_connection as usize,
            ),
            (
                "max_concurrent_calls_per_connection",
                self.max_concurrent_calls_per_connection,
            ),
            (
                "tls_handshake_timeout_secs",
                self.tls_handshake_timeout_secs as usize,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::Config(format!("limits.{name} must be at least 1")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_limits_section_keeps_the_other_defaults() {
        let l: LimitsConfig =
            serde_json::from_str(r#"{"max_events_per_publish": 10}"#).expect("parses");
        assert_eq!(l.max_events_per_publish, 10);
        assert_eq!(l.max_decoding_message_bytes, 4 << 20);
        assert_eq!(l.max_connections, LimitsConfig::default().max_connections);
        l.check().expect("valid");
    }

    #[test]
    fn unknown_keys_and_zero_limits_are_refused() {
        assert!(serde_json::from_str::<LimitsConfig>(r#"{"max_events": 10}"#).is_err());
        let l: LimitsConfig = serde_json::from_str(r#"{"max_connections": 0}"#).unwrap();
        let e = l.check().expect_err("zero connections");
        assert!(e.to_string().contains("limits.max_connections"), "{e}");
    }

    #[test]
    fn too_many_events_names_the_field_and_the_limit() {
        match too_many_events(1001, 1000) {
            Error::InvalidArgument { field, description } => {
                assert_eq!(field, "events");
                assert!(description.contains("at most 1000"), "{description}");
            }
            other => panic!("{other:?}"),
        }
    }
}
