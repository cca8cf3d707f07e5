//! `keten serve`: the gRPC server on the embedded file log.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use keten_log::{Durability, FileLog, FileLogOptions};
use keten_server::config::Config;
use keten_server::{Bound, Settings};

use crate::cli::ServeArgs;
use crate::settings::{load_config, log_dir, snapshot_dir};

const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

pub fn run(args: ServeArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let data = args
        .data
        .clone()
        .or(config.data_dir.clone())
        .context("no data directory: give --data or `data_dir` in the configuration")?;
    let listen = args
        .listen
        .or(config.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
    let metrics_listen = args.metrics_listen.or(config.metrics_listen);
    let durability = if args.no_fsync_unsafe {
        Durability::NoSyncUnsafe
    } else {
        Durability::Fsync
    };
    runtime()?.block_on(serve(
        config,
        data,
        (listen, metrics_listen),
        (durability, Duration::from_millis(args.read_wait_ms)),
        print_ready,
        shutdown_signal(),
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
    let settings = Settings {
        listen,
        metrics_listen,
        tls: config.tls.clone(),
        partners: config.partners.clone(),
        snapshot_dir: Some(snapshot_dir(&data)),
        data_dir: Some(data.clone()),
        read_wait,
    };
    let store: Arc<dyn keten_log::EventStore> = Arc::new(log.clone());
    let served = keten_server::serve(settings, store, on_ready, shutdown).await;
    // The log closes after the server: appends in flight have finished by now.
    let closed = log.close().await;
    served.context("server failed")?;
    closed.context("closing the log")?;
    Ok(())
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
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
