//! End-to-end test kit: the real `keten` binary as a child process, on a free port, with its own
//! data directory, PKI and configuration.
//!
//! Readiness is the `keten listening on <addr>` line on stdout, never a sleep. A failing test
//! prints every command it ran, with its output and directory (like ripgrep's `tests/util.rs`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use keten::client::{Session, connect};
use keten_domain::Role;
use tonic::transport::Channel;

pub const KETEN: &str = env!("CARGO_BIN_EXE_keten");
const EXAMPLE_CONFIG: &str = include_str!("../deploy/keten.example.toml");
/// The subject CN of a certificate the dev CA signs but no partner is configured with.
pub const STRANGER: &str = "stranger";

/// What a test did, printed if it fails.
#[derive(Clone, Default)]
pub struct Transcript(Arc<Mutex<Vec<String>>>);

impl Transcript {
    pub fn note(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
}

/// One test's directory: configuration, PKI and data. Prints the transcript on a failing test.
pub struct Dir {
    pub tmp: tempfile::TempDir,
    pub config: PathBuf,
    pub pki: PathBuf,
    pub data: PathBuf,
    pub transcript: Transcript,
}

impl Drop for Dir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n===== keten end-to-end test failed; directory {} =====",
                self.tmp.path().display()
            );
            for line in self.transcript.0.lock().unwrap().iter() {
                eprintln!("{line}");
            }
            eprintln!("===== end of transcript =====");
        }
    }
}

impl Dir {
    /// A configuration with the example's partners, and a dev PKI made by `keten dev-pki`.
    pub fn new() -> Dir {
        let tmp = tempfile::tempdir().expect("temp dir");
        let config = tmp.path().join("keten.toml");
        let text = EXAMPLE_CONFIG
            .lines()
            .filter(|l| !l.starts_with("metrics_listen") && !l.starts_with("listen"))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&config, text).expect("write config");
        let dir = Dir {
            pki: tmp.path().join("pki"),
            data: tmp.path().join("data"),
            config,
            tmp,
            transcript: Transcript::default(),
        };
        dir.run_ok(&[
            "dev-pki",
            "--out",
            dir.pki.to_str().unwrap(),
            "--config",
            dir.config.to_str().unwrap(),
            "--extra-client",
            STRANGER,
        ]);
        dir
    }

    /// Runs `keten args...` to completion.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new(KETEN)
            .args(args)
            .current_dir(self.tmp.path())
            .output()
            .expect("run keten");
        self.transcript.note(format!(
            "$ keten {}\n  (in {})\n  status: {}\n  stdout:\n{}\n  stderr:\n{}",
            args.join(" "),
            self.tmp.path().display(),
            out.status,
            indent(&String::from_utf8_lossy(&out.stdout)),
            indent(&String::from_utf8_lossy(&out.stderr)),
        ));
        out
    }

    #[track_caller]
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "keten {} failed", args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    /// Starts `keten serve` on a free port and waits for its listening line.
    pub fn serve_with(&self, extra: &[&str]) -> Server {
        match self.try_serve(extra) {
            Ok(s) => s,
            Err(e) => panic!("keten serve did not start: {e}"),
        }
    }

    /// Like [`Dir::serve_with`], but a server that exits before listening is an `Err` carrying
    /// its stderr.
    pub fn try_serve(&self, extra: &[&str]) -> Result<Server, String> {
        let mut args = vec![
            "serve".to_string(),
            "--config".into(),
            self.config.display().to_string(),
            "--data".into(),
            self.data.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--metrics-listen".into(),
            "127.0.0.1:0".into(),
            "--read-wait-ms".into(),
            "1000".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.try_launch(KETEN, &args)
    }

    /// Starts `program args...` (a `keten serve` command line, written out in full) and waits
    /// for its listening and metrics lines; one that exits first is an `Err` with its stderr.
    pub fn try_launch(&self, program: &str, args: &[String]) -> Result<Server, String> {
        let cmd_line = format!(
            "$ {program} {} (in {})",
            args.join(" "),
            self.tmp.path().display()
        );
        let mut child = Command::new(program)
            .args(args)
            .current_dir(self.tmp.path())
            .env("KETEN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keten serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut pipe = child.stderr.take().unwrap();
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    stderr
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addr = None;
        let mut metrics = None;
        let mut web = None;
        // The listening line comes first, then the metrics line (we always ask for metrics).
        while metrics.is_none() {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("keten listening on ") {
                        addr = Some(a.parse::<SocketAddr>().expect("address"));
                    } else if let Some(a) = web_address(&line) {
                        web = Some(a);
                    } else if let Some(a) = line.strip_prefix("metrics on ") {
                        metrics = Some(a.parse::<SocketAddr>().expect("address"));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    // Let the stderr thread drain the pipe.
                    std::thread::sleep(Duration::from_millis(100));
                    let err = stderr.lock().unwrap().clone();
                    self.transcript.note(format!(
                        "{cmd_line}\n  exited before listening: {status:?}\n  stderr:\n{}",
                        indent(&err)
                    ));
                    return Err(err);
                }
            }
        }
        Ok(Server {
            child: Some(child),
            addr: addr.expect("listening line before the metrics line"),
            metrics: metrics.unwrap(),
            web,
            stderr,
            cmd_line,
            transcript: self.transcript.clone(),
            pki: self.pki.clone(),
        })
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// A running `keten serve`; killed on drop, its stderr kept for the transcript.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub metrics: SocketAddr,
    /// The web screen's address, when it runs (its line comes before the metrics line).
    pub web: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
    cmd_line: String,
    transcript: Transcript,
    pki: PathBuf,
}

impl Server {
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The server process's id, to read its /proc entries.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub async fn channel(&self, partner: &str) -> Channel {
        connect(&self.url(), &self.pki, partner)
            .await
            .expect("connect")
    }

    /// A session of `person` in `role`, through `partner`'s certificate.
    pub async fn session(&self, partner: &str, person: &str, role: Role) -> Session {
        Session::new(self.channel(partner).await, person, role)
    }

    /// SIGKILL: no shutdown at all, as in a crash.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.note("killed with SIGKILL");
        }
    }

    /// SIGTERM, then waits for the exit; returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        // Bounded like the systemd unit's TimeoutStopSec: a server that does not stop in 30 s
        // is killed and the stop counts as failed.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = c.try_wait().expect("wait") {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.note(&format!("terminated with SIGTERM: {status:?}"));
        status.is_some_and(|s| s.success())
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn note(&self, what: &str) {
        // Let the stderr thread catch up with the last lines.
        std::thread::sleep(Duration::from_millis(50));
        self.transcript.note(format!(
            "{}\n  {what}\n  stderr:\n{}",
            self.cmd_line,
            indent(&self.stderr())
        ));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.note("stopped at the end of the test");
        }
    }
}

/// The directory of the log inside a data directory.
pub fn log_dir(data: &Path) -> PathBuf {
    data.join("log")
}

/// The address in `keten serve`'s `keten web on https://<addr>` line, if `line` is that line.
pub fn web_address(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("keten web on https://")?
        .trim_end_matches('/')
        .parse()
        .ok()
}
