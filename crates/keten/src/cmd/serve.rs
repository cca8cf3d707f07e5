//! `keten serve`: the gRPC server on the embedded file log, or on NATS JetStream with `--store`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use keten_log::{Durability, FileLog, FileLogOptions};
use keten_nats::{FsyncCheck, NatsLogOptions};
use keten_server::config::Config;
use keten_server::{Bound, Settings, Stores};

use crate::cli::ServeArgs;
pub use crate::cli::StoreArgs;
use crate::settings::{StoreConfig, access_dir, keys_dir, load, log_dir, snapshot_dir};

const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

pub fn run(args: ServeArgs) -> Result<()> {
    let (config, store_config) = load(&args.config)?;
    let listen = args
        .listen
        .or(config.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
    let metrics_listen = args.metrics_listen.or(config.metrics_listen);
    if let Some((url, opts)) = nats_store(&args.store, store_config)? {
        // The data directory, when there is one, keeps only the projection's snapshot.
        let data = args.data.clone().or(config.data_dir.clone());
        let rt = runtime()?;
        let shutdown = {
            let _in = rt.enter();
            shutdown_signal()
        };
        return rt.block_on(serve_nats(
            config,
            (url, opts),
            data,
            (listen, metrics_listen),
            Duration::from_millis(args.read_wait_ms),
            shutdown,
        ));
    }
    let data = args
        .data
        .clone()
        .or(config.data_dir.clone())
        .context("no data directory: give --data or `data_dir` in the configuration")?;
    let durability = if args.no_fsync_unsafe {
        Durability::NoSyncUnsafe
    } else {
        Durability::Fsync
    };
    let rt = runtime()?;
    let shutdown = {
        let _in = rt.enter();
        shutdown_signal()
    };
    rt.block_on(serve(
        config,
        data,
        (listen, metrics_listen),
        (durability, Duration::from_millis(args.read_wait_ms)),
        print_ready,
        shutdown,
    ))
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Opens the log in `data`, serves until `shutdown`, then closes the log.
pub async fn serve(
    config: Config,
    data: std::path::PathBuf,
    (listen, metrics_listen): (SocketAddr, Option<SocketAddr>),
    (durability, read_wait): (Durability, Duration),
    on_ready: impl FnOnce(&Bound),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let log = FileLog::open(
        log_dir(&data),
        FileLogOptions {
            durability,
            ..FileLogOptions::default()
        },
    )
    .await
    .with_context(|| format!("cannot open the log in {}", log_dir(&data).display()))?;
    let access = FileLog::open(
        access_dir(&data),
        FileLogOptions {
            durability,
            ..FileLogOptions::default()
        },
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the access log in {}",
            access_dir(&data).display()
        )
    })?;
    let keys = keten_keys::FileKeyStore::open(keys_dir(&data))
        .await
        .with_context(|| format!("cannot open the key store in {}", keys_dir(&data).display()))?;
    let settings = Settings {
        listen,
        metrics_listen,
        tls: config.tls.clone(),
        partners: config.partners.clone(),
        snapshot_dir: Some(snapshot_dir(&data)),
        data_dir: Some(data.clone()),
        read_wait,
        proofs: config.proofs.clone(),
        privacy: config.privacy.clone(),
        limits: config.limits.clone(),
    };
    let stores = Stores {
        log: Arc::new(log.clone()),
        keys: Some(Arc::new(keys)),
        access: Some(Arc::new(access.clone())),
    };
    let served = keten_server::serve(settings, stores, on_ready, shutdown).await;
    // The logs close after the server: appends in flight have finished by now.
    let closed = log.close().await;
    let access_closed = access.close().await;
    served.context("server failed")?;
    closed.context("closing the log")?;
    access_closed.context("closing the access log")?;
    Ok(())
}

/// The JetStream store, when flags, environment or configuration name one (flags win). The
/// NATS options come from `[nats]` with flags overriding each.
pub fn nats_store(
    args: &StoreArgs,
    config: StoreConfig,
) -> Result<Option<(String, NatsLogOptions)>> {
    let Some(store) = args.store.clone().or(config.store) else {
        return Ok(None);
    };
    let Some(hosts) = store.strip_prefix("nats://") else {
        bail!(
            "store `{store}` is not understood: give nats://host:port[,host:port...], or no store \
             for the embedded log in the data directory"
        );
    };
    // Each host of the list gets the scheme, so `nats://a:4222,b:4222` names two servers.
    let url = hosts
        .split(',')
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains("://") {
                h.to_string()
            } else {
                format!("nats://{h}")
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    if url.is_empty() {
        bail!("store `{store}` names no NATS server");
    }
    let mut opts = NatsLogOptions::default();
    if let Some(s) = args.nats_stream.clone().or(config.nats.stream) {
        opts.stream = s;
    }
    if let Some(r) = args.nats_replicas.or(config.nats.replicas) {
        opts.replicas = r;
    }
    opts.fsync = if args.nats_accept_ack_before_fsync || config.nats.accept_ack_before_fsync {
        FsyncCheck::AcceptAckBeforeFsync
    } else {
        let monitor_urls = if args.nats_monitor.is_empty() {
            config.nats.monitor_urls
        } else {
            args.nats_monitor.clone()
        };
        FsyncCheck::Verify { monitor_urls }
    };
    Ok(Some((url, opts)))
}

/// Connects to JetStream (refusing a server or stream that cannot keep the log's promises) and
/// serves until `shutdown`.
pub async fn serve_nats(
    config: Config,
    (url, opts): (String, NatsLogOptions),
    data: Option<std::path::PathBuf>,
    (listen, metrics_listen): (SocketAddr, Option<SocketAddr>),
    read_wait: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if matches!(opts.fsync, FsyncCheck::AcceptAckBeforeFsync) {
        tracing::warn!(
            "the NATS servers are not checked for fsync before acknowledging: an acknowledged \
             append may be lost on a power loss"
        );
    }
    let stream = opts.stream.clone();
    // The access log is a stream of its own beside the event log's, with the same promises.
    let access_opts = NatsLogOptions {
        stream: format!("{stream}_ACCESS"),
        subject_prefix: format!("{}_access", opts.subject_prefix),
        ..opts.clone()
    };
    let replicas = opts.replicas;
    let log = keten_nats::NatsLog::connect(&url, opts)
        .await
        .with_context(|| format!("cannot use JetStream stream `{stream}` at {url}"))?;
    let access = keten_nats::NatsLog::connect(&url, access_opts)
        .await
        .with_context(|| format!("cannot use JetStream stream `{stream}_ACCESS` at {url}"))?;
    // The keys' bucket on the log's connection, which checked that the servers fsync.
    let keys = keten_nats::keys::NatsKeyStore::open(
        log.client().clone(),
        keten_nats::keys::NatsKeyStoreOptions {
            bucket: format!("{stream}_KEYS"),
            replicas,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("cannot use the key bucket `{stream}_KEYS` at {url}"))?;
    let settings = Settings {
        listen,
        metrics_listen,
        tls: config.tls.clone(),
        partners: config.partners.clone(),
        snapshot_dir: data.as_deref().map(snapshot_dir),
        data_dir: data,
        read_wait,
        proofs: config.proofs.clone(),
        privacy: config.privacy.clone(),
        limits: config.limits.clone(),
    };
    let stores = Stores {
        log: Arc::new(log),
        keys: Some(Arc::new(keys)),
        access: Some(Arc::new(access)),
    };
    keten_server::serve(settings, stores, print_ready, shutdown)
        .await
        .context("server failed")
}

/// Tests and scripts wait for this line; it is the only thing `serve` writes to stdout.
fn print_ready(bound: &Bound) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "keten listening on {}", bound.grpc);
    if let Some(m) = bound.metrics {
        let _ = writeln!(out, "metrics on {m}");
    }
    let _ = out.flush();
}

/// SIGTERM or Ctrl-C.
/// The handlers are installed when this is called (inside a runtime), not when the future is
/// first polled: a SIGTERM right after the listening line must stop the server cleanly rather
/// than meet the default action and kill it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(term) => {}
            _ = wait(int) => {}
        }
    }
}
