//! One `serve()` that wires the services, health, reflection, mutual TLS, metrics and graceful
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keten_log::EventStore;
use keten_projection::{ProjectionOptions, Projections};
use keten_proto::v1::{
    audit_server::AuditServer, coordination_server::CoordinationServer,
    partner_gateway_server::PartnerGatewayServer,
};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::App;
use crate::audit::AuditService;
use crate::auth::Directory;
use crate::config::{LimitsConfig, PartnerConfig, TlsConfig};
use crate::coordination::CoordinationService;
use crate::error::{Error, Result};
use crate::gateway::Gateway;
use crate::metrics::{self, Metrics};
use crate::proofs::{Proofs, Signer};
use crate::publish::Publisher;

/// Everything `serve` needs besides the store.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub tls: TlsConfig,
    pub partners: Vec<PartnerConfig>,
    /// Where the projection keeps its snapshot; `None` folds from the start on every start.
    pub snapshot_dir: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    /// How long a query with `min_position` waits for the projection.
    pub read_wait: Duration,
    /// The checkpoint signer; `None` refuses the proof calls.
    pub proofs: Option<crate::config::ProofConfig>,
    pub privacy: crate::config::PrivacyConfig,
    /// What one client may cost the server.
    pub limits: LimitsConfig,
}

/// The stores a server runs on: the event log, and beside it, never in it, the families' keys
/// and the access log (with its own chain).
pub struct Stores {
    pub log: Arc<dyn EventStore>,
    /// Required unless `[privacy] encryption = false`.
    pub keys: Option<Arc<dyn keten_keys::KeyStore>>,
    /// Required unless `[privacy] access_log = false`.
    pub access: Option<Arc<dyn EventStore>>,
}

/// Where the server listens, known once the sockets are bound (port 0 picks one), and what its
/// services share, for a front end served beside them (the web screen) that must apply the same
/// rules through the same functions.
#[derive(Clone)]
pub struct Bound {
    pub grpc: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub app: Arc<App>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("grpc", &self.grpc)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

/// Serves until `shutdown` completes, then stops taking calls, lets the calls in flight (appends
/// among them) finish, ends watch streams, and writes the projection's snapshot.
pub async fn serve(
    settings: Settings,
    stores: Stores,
    on_ready: impl FnOnce(&Bound),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    settings.limits.check()?;
    let tls = tls_config(&settings.tls)?.timeout(Duration::from_secs(
        settings.limits.tls_handshake_timeout_secs,
    ));
    let raw = stores.log;
    let keys = match (settings.privacy.encryption, stores.keys) {
        (true, Some(keys)) => Some(
            keten_keys::Keyring::load(keys)
                .await
                .map_err(|e| Error::Config(format!("the key store does not load: {e}")))?,
        ),
        (true, None) => {
            return Err(Error::Config(
                "encryption is on but no key store was given".into(),
            ));
        }
        (false, _) => {
            tracing::warn!("[privacy] encryption = false: families' payloads are stored in clear");
            None
        }
    };
    let access = match (settings.privacy.access_log, stores.access) {
        (true, Some(store)) => Some(keten_access::AccessLog::new(store)),
        (true, None) => {
            return Err(Error::Config(
                "the access log is on but no store was given for it".into(),
            ));
        }
        (false, _) => {
            tracing::warn!("[privacy] access_log = false: accesses are not recorded");
            None
        }
    };
    // Every service reads and writes families through the sealing store; proofs and
    // verification cover the log as stored.
    let store: Arc<dyn EventStore> = match &keys {
        Some(keys) => Arc::new(keten_projection::sealed::Sealed::new(
            raw.clone(),
            keys.clone(),
        )),
        None => raw.clone(),
    };
    let projections = Projections::start(
        store.clone(),
        ProjectionOptions {
            snapshot_dir: settings.snapshot_dir.clone(),
            ..ProjectionOptions::default()
        },
    )
    .await?;
    catch_up(&store, &projections).await?;
    if let Some(keys) = &keys {
        bind_leftover_keys(&store, keys, &projections).await?;
    }
    let proofs = match &settings.proofs {
        Some(config) => Some(Proofs::start(raw.clone(), Signer::load(config)?).await?),
        None => None,
    };
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let app = Arc::new(App {
        store: store.clone(),
        raw: raw.clone(),
        keys,
        access,
        policy: keten_domain::privacy::Policy {
            retention_years: settings.privacy.retention_years,
        },
        projections: projections.clone(),
        directory: Directory::new(&settings.partners),
        metrics: metrics.clone(),
        publisher: Publisher {
            store: store.clone(),
            projections: projections.clone(),
            metrics: metrics.clone(),
            recent: Default::default(),
        },
        read_wait: settings.read_wait,
        data_dir: settings.data_dir.clone(),
        stopping: stop_rx,
        proofs: proofs.clone(),
        as_of: keten_projection::AsOfCache::default(),
    });
    crate::erasure::finish_interrupted(&app).await?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<PartnerGatewayServer<Gateway>>().await;
    health
        .set_serving::<CoordinationServer<CoordinationService>>()
        .await;
    health.set_serving::<AuditServer<AuditService>>().await;
    // Both reflection versions: grpcurl speaks v1, many clients (Python's grpcio among them)
    // still only v1alpha.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(keten_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(keten_proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;

    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| Error::Io {
            what: format!("listen address {}", settings.listen),
            source,
        })?;
    let grpc = listener.local_addr().map_err(|source| Error::Io {
        what: "listen address".into(),
        source,
    })?;
    let mut background = Vec::new();
    let metrics_addr = match settings.metrics_listen {
        Some(addr) => {
            let l = metrics::bind(addr).await.map_err(|source| Error::Io {
                what: format!("metrics address {addr}"),
                source,
            })?;
            let bound = l.local_addr().ok();
            background.push(tokio::spawn(metrics::serve_metrics(l, metrics.clone())));
            bound
        }
        None => None,
    };
    background.push(tokio::spawn(watch_projection(app.clone(), health.clone())));
    if let Some(proofs) = proofs {
        background.push(tokio::spawn(crate::proofs::checkpoint_timer(proofs)));
    }

    on_ready(&Bound {
        grpc,
        metrics: metrics_addr,
        app: app.clone(),
    });
    tracing::info!(%grpc, metrics = ?metrics_addr, "serving");

    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing calls in flight");
        let _ = stop_tx.send(true);
        health
            .set_not_serving::<PartnerGatewayServer<Gateway>>()
            .await;
    };
    let limits = &settings.limits;
    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let mut builder = Server::builder()
        .tls_config(tls)
        .map_err(|e| Error::Tls(e.to_string()))?
        .max_concurrent_streams(limits.max_concurrent_streams_per_connection)
        .concurrency_limit_per_connection(limits.max_concurrent_calls_per_connection)
        .http2_keepalive_interval(secs(limits.http2_keepalive_interval_secs))
        .http2_keepalive_timeout(secs(limits.http2_keepalive_timeout_secs));
    if let Some(timeout) = secs(limits.request_timeout_secs) {
        builder = builder.timeout(timeout);
    }
    let (decode, encode) = (
        limits.max_decoding_message_bytes,
        limits.max_encoding_message_bytes,
    );
    let gateway = crate::limits::LimitedGateway {
        inner: Gateway { app: app.clone() },
        max_events_per_publish: limits.max_events_per_publish,
    };
    // Nagle's algorithm would hold back small responses until the peer's delayed ACK.
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(secs(limits.tcp_keepalive_secs));
    let incoming = crate::limits::cap_connections(incoming, limits.max_connections);
    let served = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(
            PartnerGatewayServer::new(gateway)
                .max_decoding_message_size(decode)
                .max_encoding_message_size(encode),
        )
        .add_service(
            CoordinationServer::new(CoordinationService { app: app.clone() })
                .max_decoding_message_size(decode)
                .max_encoding_message_size(encode),
        )
        .add_service(
            AuditServer::new(AuditService { app: app.clone() })
                .max_decoding_message_size(decode)
                .max_encoding_message_size(encode),
        )
        .serve_with_incoming_shutdown(incoming, signal)
        .await;
    for task in background {
        task.abort();
    }
    drop(app);
    served.map_err(|e| Error::Internal(format!("gRPC server: {e}")))?;
    // The snapshot only shortens the next start: one that cannot be written (a full disk) costs
    // a longer fold then, and loses nothing.
    if let Err(error) = projections.shutdown().await {
        tracing::warn!(%error, "no final snapshot; the next start folds more of the log");
    }
    tracing::info!("stopped");
    Ok(())
}

fn tls_config(tls: &TlsConfig) -> Result<ServerTlsConfig> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| Error::Tls(format!("cannot read {}: {e}", p.display())))
    };
    let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
    // With a client CA root and client auth not optional, a connection without a certificate
    // signed by this CA fails in the handshake, before any call.
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(Certificate::from_pem(read(&tls.ca)?)))
}

/// Keeps the lag gauge current, and reports Coordination as not serving once the projection
/// has stopped on an error (its plans would no longer follow the log).
async fn watch_projection(app: Arc<App>, health: tonic_health::server::HealthReporter) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut reported_failure = false;
    loop {
        tick.tick().await;
        if let Ok(head) = app.store.head().await {
            let head = head.map_or(0, |p| p.0 + 1);
            let folded = app.projections.position().map_or(0, |p| p.0 + 1);
            app.metrics
                .projection_lag
                .set(head.saturating_sub(folded) as i64);
        }
        if !reported_failure && let Err(e) = app.projections.health() {
            tracing::error!(error = %e, "the projection has stopped; Coordination is not serving");
            health
                .set_not_serving::<CoordinationServer<CoordinationService>>()
                .await;
            reported_failure = true;
        }
    }
}

/// After a crash, the key store holds keys an earlier run made ahead and did not hand out, and
/// after a power cut perhaps keys whose binding to a new family was lost (`keten_keys`,
/// `file.rs`, "Keys made ahead"). Before the server takes calls, every family without a key
/// has its first event read through the sealing store, which binds the leftover key that
/// opens it; only then are the other leftovers zeroed, so that no copy of an erased family's
/// key can outlive its erasure. A family whose events no key opens ends the start.
async fn bind_leftover_keys(
    store: &Arc<dyn EventStore>,
    keys: &keten_keys::Keyring,
    projections: &Projections,
) -> Result<()> {
    let key_store = |e: keten_keys::KeyError| Error::Internal(format!("key store: {e}"));
    let left = keys.store().leftovers().await.map_err(key_store)?;
    if left == 0 {
        return Ok(());
    }
    let mut checked = 0;
    for family in projections.family_ids() {
        let stream = keten_projection::stored::stream_id(&family);
        if keys
            .cached(&keten_projection::sealed::key_id(&stream))
            .is_none()
        {
            checked += 1;
            store
                .read_stream(
                    &stream,
                    keten_log::ReadFrom::Start,
                    keten_log::Direction::Forward,
                    1,
                    keten_log::Until::Latest,
                )
                .await?;
        }
    }
    let retired = keys.store().retire_leftovers().await.map_err(key_store)?;
    tracing::info!(
        left,
        checked,
        retired,
        "key store: keys made ahead by the last run were left over; every family has its key, \
         and the unused ones are zeroed"
    );
    Ok(())
}

/// Waits until the projection has folded every event that was in the log at start.
///
/// Until then a query could answer "unknown family" for a family the log holds, so the server
/// does not take calls (nor print that it listens) before this returns. A projection that stops
/// on a damaged or undecodable event ends the start with its error.
async fn catch_up(store: &Arc<dyn EventStore>, projections: &Projections) -> Result<()> {
    let Some(head) = store.head().await? else {
        return Ok(());
    };
    loop {
        match projections.wait_for(head, Duration::from_secs(5)).await {
            Ok(()) => return Ok(()),
            Err(keten_projection::Error::NotYet { reached, .. }) => tracing::info!(
                head = head.0,
                reached = reached.map(|p| p.0),
                "the projection is catching up with the log"
            ),
            Err(e) => return Err(e.into()),
        }
    }
}
