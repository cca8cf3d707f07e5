//! The command line, parsed and nothing more.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "keten",
    version,
    about = "Chain cooperation around multi-problem families"
)]
pub struct Cli {
    /// Log as JSON lines (to stderr).
    #[arg(long, global = true, env = "KETEN_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server on the embedded log or a NATS JetStream stream.
    Serve(ServeArgs),
    /// Create a local CA, a server certificate and a client certificate per configured partner.
    DevPki(DevPkiArgs),
    /// Play a family's course through OMPG from several partner systems, then print the plan.
    Demo(DemoArgs),
    /// Check a data directory's (or a JetStream stream's) hash chain.
    Verify(VerifyArgs),
    /// Rebuild the projections from the log, from scratch.
    Replay(ReplayArgs),
    /// As an auditor, fetch a family's events with inclusion proofs under a fresh signed
    /// checkpoint, and write them as a bundle that verifies offline.
    AuditExport(AuditExportArgs),
    /// Check an audit bundle offline against the log's public key; exits non-zero unless all holds.
    AuditVerify(AuditVerifyArgs),
    /// Write a new checkpoint signing key (`--out DIR`: checkpoint.key, checkpoint.pub).
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML configuration file.
    #[arg(long, short, env = "KETEN_CONFIG")]
    pub config: PathBuf,
    /// The data directory (overrides `data_dir` in the configuration).
    #[arg(long, env = "KETEN_DATA")]
    pub data: Option<PathBuf>,
    /// The gRPC address (overrides `listen`); port 0 picks a free port.
    #[arg(long, env = "KETEN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The Prometheus metrics address (overrides `metrics_listen`).
    #[arg(long, env = "KETEN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// The web screen's HTTPS address (overrides `[web] listen`); port 0 picks a free port.
    /// Needs a `[web]` section (who may sign in).
    #[arg(long, env = "KETEN_WEB_LISTEN")]
    pub web_listen: Option<SocketAddr>,
    /// Acknowledge appends without fsync. For throwaway data only.
    #[arg(long, hide = true)]
    pub no_fsync_unsafe: bool,
    /// How long a query with `min_position` waits for the projection, in milliseconds.
    #[arg(long, default_value_t = 5000, hide = true)]
    pub read_wait_ms: u64,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Where the log lives: the embedded file log (default) or a NATS JetStream stream.
#[derive(Debug, Args, Default)]
pub struct StoreArgs {
    /// `nats://host:port[,host:port...]` runs on JetStream (overrides `store`); without it,
    /// the embedded log in the data directory.
    #[arg(long, env = "KETEN_STORE")]
    pub store: Option<String>,
    /// The JetStream stream (overrides `[nats] stream`; default KETEN).
    #[arg(long, env = "KETEN_NATS_STREAM")]
    pub nats_stream: Option<String>,
    /// Replicas the stream must have: 3 on a three-node cluster (overrides `[nats] replicas`; default 1).
    #[arg(long, env = "KETEN_NATS_REPLICAS")]
    pub nats_replicas: Option<usize>,
    /// Every node's monitoring URL, http://host:8222, comma-separated: keten checks there that
    /// each node fsyncs before it acknowledges (overrides `[nats] monitor_urls`).
    #[arg(long, env = "KETEN_NATS_MONITOR", value_delimiter = ',')]
    pub nats_monitor: Vec<String>,
    /// Start without checking that the servers fsync before acknowledging: an acknowledged
    /// append may then be in no node's disk yet, and a power loss can lose it.
    #[arg(long, env = "KETEN_NATS_ACCEPT_ACK_BEFORE_FSYNC")]
    pub nats_accept_ack_before_fsync: bool,
}

#[derive(Debug, Args)]
pub struct DevPkiArgs {
    /// Where to write the PEM files.
    #[arg(long)]
    pub out: PathBuf,
    /// The configuration whose partners get a client certificate.
    #[arg(long, short)]
    pub config: PathBuf,
    /// An extra client certificate with this subject CN (for tests: a name no partner has).
    #[arg(long = "extra-client", value_name = "CN")]
    pub extra_clients: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Talk to a running server at this URL (https://host:port) instead of starting one.
    #[arg(long, requires = "config")]
    pub server: Option<String>,
    /// The running server's configuration (partners and PKI directory) with `--server`.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The PKI directory with the partners' client certificates (default: the config's `tls.ca` directory).
    #[arg(long)]
    pub pki: Option<PathBuf>,
    /// After the scenario, keep the server and its web screen running until Ctrl-C (the
    /// default when stdout is a terminal).
    #[arg(long, conflicts_with_all = ["exit", "server"])]
    pub serve: bool,
    /// Stop after the scenario, also in a terminal.
    #[arg(long)]
    pub exit: bool,
    /// The web screen's address while the demo serves (default: the example's
    /// `[web] listen`, 127.0.0.1:8443, or a free port when that one is taken).
    #[arg(long)]
    pub web_listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The data directory to check, or `nats://host:port[,...]` for a JetStream stream.
    pub data_dir: PathBuf,
    /// The JetStream stream to check with a `nats://` URL.
    #[arg(long, default_value = "KETEN")]
    pub nats_stream: String,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The data directory whose projections to rebuild.
    #[arg(long)]
    pub data: PathBuf,
    /// Rebuild the projections as they stood at this moment (RFC 3339, e.g.
    /// 2026-03-01T12:00:00Z): the events committed by then. The live snapshot is left alone;
    /// the rebuilt one is written to `--out`.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// With `--until`: where to write the rebuilt snapshot (default `<data>/projection-until`).
    #[arg(long, requires = "until")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// The family.
    pub family: String,
    /// Where to write the bundle (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// The server (https://host:port).
    #[arg(long, env = "KETEN_SERVER")]
    pub server: String,
    /// The directory with `ca.pem` and the client certificate `<cert>.pem`/`<cert>.key`.
    #[arg(long)]
    pub pki: PathBuf,
    /// The client certificate's file name (without `.pem`): a partner allowed the auditor role.
    #[arg(long)]
    pub cert: String,
    /// The person acting as auditor.
    #[arg(long)]
    pub person: String,
    /// The log's public key: when given, the bundle is checked before it is written.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Add the plaintext section (payloads are stored unencrypted yet, so it repeats them).
    #[arg(long)]
    pub plaintext: bool,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// The bundle written by `keten audit-export`.
    pub bundle: PathBuf,
    /// The log's Ed25519 public key (PEM, hex or base64), from the server's configuration.
    #[arg(long)]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The directory to write `checkpoint.key` (owner-only) and `checkpoint.pub` to; an
    /// existing key is never overwritten.
    #[arg(long)]
    pub out: PathBuf,
}
