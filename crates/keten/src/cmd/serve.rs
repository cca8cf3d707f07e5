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
use keten_web::{Prepared, WebConfig};

use crate::cli::ServeArgs;
pub use crate::cli::StoreArgs;
use crate::settings::{StoreConfig, access_dir, keys_dir, load_all, log_dir, snapshot_dir};

const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

pub fn run(args: ServeArgs) -> Result<()> {
    let (config, store_config, web_config) = load_all(&args.config)?;
    let web = prepare_web(web_config, args.web_listen, &config)?;
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
            web,
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
        web,
        print_ready,
        shutdown,
    ))
}

/// The web screen, when an address is given (`--web-listen` or `[web] listen`): its
/// configuration checked, the certificate loaded and the socket bound, before the server
/// starts, so that a mistake stops the start.
pub fn prepare_web(
    web: Option<WebConfig>,
    flag: Option<SocketAddr>,
    config: &Config,
) -> Result<Option<Prepared>> {
    let Some(web) = web else {
        if flag.is_some() {
            bail!("--web-listen needs a [web] section in the configuration (who may sign in)");
        }
        return Ok(None);
    };
    let Some(addr) = flag.or(web.listen) else {
        return Ok(None);
    };
    Ok(Some(
        Prepared::new(web, addr, &config.tls, &config.partners)
            .context("the web screen cannot start")?,
    ))
}

/// Starts the web screen (if any) on the server's shared state when the server is ready, then
/// calls `on_ready` with the web address; `finish` waits for the screen to stop.
fn with_web(
    web: Option<Prepared>,
    on_ready: impl FnOnce(&Bound, Option<SocketAddr>),
) -> (impl FnOnce(&Bound), WebTask) {
    let task = WebTask::default();
    let slot = task.clone();
    let ready = move |bound: &Bound| {
        let addr = web.as_ref().map(Prepared::addr);
        if let Some(web) = web {
            match web.start(bound.app.clone()) {
                Ok((_, handle)) => *slot.0.lock().expect("web task lock") = Some(handle),
                Err(e) => tracing::error!(error = %e, "the web screen did not start"),
            }
        }
        on_ready(bound, addr);
    };
    (ready, task)
}

/// The web screen's task, once started.
#[derive(Clone, Default)]
struct WebTask(Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<keten_web::Result<()>>>>>);

impl WebTask {
    /// Waits (bounded) for the screen's requests in flight; it stops with the server.
    async fn finish(self) {
        let handle = self.0.lock().expect("web task lock").take();
        if let Some(handle) = handle {
            match tokio::time::timeout(Duration::from_secs(30), handle).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the web screen failed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "the web screen's task failed"),
                Err(_) => tracing::warn!("the web screen did not stop in 30 s"),
            }
        }
    }
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
    web: Option<Prepared>,
    on_ready: impl FnOnce(&Bound, Option<SocketAddr>),
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
            // Its own bounded-loss flush ([privacy] access_log_flush_ms), unless the whole
            // server runs without fsync.
            durability: match durability {
                Durability::NoSyncUnsafe => Durability::NoSyncUnsafe,
                _ => config.privacy.access_log_durability(),
            },
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
    keten_server::access_log::record_tail_cut(&access)
        .await
        .context("cannot record in the access log what a power loss cut off it")?;
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
    let (on_ready, web) = with_web(web, on_ready);
    let served = keten_server::serve(settings, stores, on_ready, shutdown).await;
    // The web screen began stopping with the server; its requests in flight write access
    // records, so it finishes before the logs close.
    web.finish().await;
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
    web: Option<Prepared>,
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
    let (on_ready, web) = with_web(web, print_ready);
    let served = keten_server::serve(settings, stores, on_ready, shutdown).await;
    web.finish().await;
    served.context("server failed")
}

/// Tests and scripts wait for these lines; they are the only thing `serve` writes to stdout.
/// The web line comes before the metrics line, so a reader that stops at the metrics line has
/// seen it.
fn print_ready(bound: &Bound, web: Option<SocketAddr>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "keten listening on {}", bound.grpc);
    if let Some(w) = web {
        let _ = writeln!(out, "keten web on https://{w}");
    }
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
