//! The browser side of the end-to-end tests: Debian's headless Chromium, driven over WebDriver
//! by its chromedriver, a child process per test on a port of its own.
//!
//! Readiness is chromedriver's "started successfully" line, and every wait in a page is a wait
//! for a condition in the DOM under a deadline, never a sleep.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where Debian's `chromium` and `chromium-driver` install them (`cargo xtask setup`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to show what a test waits for. Generous: two cores run a server,
/// a browser and other tests at once.
pub const PAGE_DEADLINE: Duration = Duration::from_secs(20);

/// A chromedriver child process; killed on drop.
pub struct Chromedriver {
    child: Child,
    pub port: u16,
}

impl Chromedriver {
    /// Starts chromedriver on a port it picks itself (`--port=0`: no race for a free port) and
    /// waits for the line that names it.
    pub fn start() -> Chromedriver {
        for program in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(program).is_file(),
                "{program} is missing: the browser tests need Debian's chromium and \
                 chromium-driver (`cargo xtask setup` installs them)"
            );
        }
        let mut child = Command::new(CHROMEDRIVER)
            .args(["--port=0", "--log-level=WARNING"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn chromedriver");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Past the port line nobody listens; keep draining so chromedriver never blocks.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = started_port(&line) {
                        return Chromedriver { child, port };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!(
                        "chromedriver did not start ({status:?}); it printed:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A fresh headless Chromium session, trusting the certificate whose SubjectPublicKeyInfo
    /// hashes to `trusted_spki` (see [`spki_sha256`]) and no other that its CA does not vouch
    /// for.
    pub async fn browser(&self, trusted_spki: &str) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let args = chromium_args(profile.path(), trusted_spki);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url())
            .await
            .expect("a WebDriver session with headless Chromium");
        Browser {
            client,
            _profile: profile,
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // chromedriver ends the browsers of its sessions when it is killed; a session closed
        // first (Browser::close) leaves nothing behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in chromedriver's "ChromeDriver was started successfully on port 34713." line.
fn started_port(line: &str) -> Option<u16> {
    let rest = line.split("started successfully on port ").nth(1)?;
    rest.trim_end_matches('.').trim().parse().ok()
}

/// Chromium's flags for a test: headless, as root (no sandbox), nothing fetched from outside,
/// a profile of its own, and one self-made certificate accepted by its key.
fn chromium_args(profile: &Path, trusted_spki: &str) -> Vec<String> {
    vec![
        "--headless=new".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,900".into(),
        format!("--user-data-dir={}", profile.display()),
        format!("--ignore-certificate-errors-spki-list={trusted_spki}"),
    ]
}

/// The base64 SHA-256 of the SubjectPublicKeyInfo of the certificate in the PEM file `cert`:
/// the form `--ignore-certificate-errors-spki-list` takes.
pub fn spki_sha256(cert: &Path) -> String {
    let pem = std::fs::read(cert).unwrap_or_else(|e| panic!("read {}: {e}", cert.display()));
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem)
        .unwrap_or_else(|e| panic!("{} is not PEM: {e}", cert.display()));
    let x509 = pem
        .parse_x509()
        .unwrap_or_else(|e| panic!("{} is not an X.509 certificate: {e}", cert.display()));
    let digest = Sha256::digest(x509.public_key().raw);
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// One WebDriver session in headless Chromium, with its own profile directory.
pub struct Browser {
    pub client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("load {url}: {e}"));
    }

    /// The first element matching `css`, once there is one.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PAGE_DEADLINE)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!(
                "no `{css}` on {} within {PAGE_DEADLINE:?}: {e}\npage:\n{}",
                self.url().await,
                self.source().await
            ),
        }
    }

    /// Waits until the JavaScript expression `condition` is true in the page.
    pub async fn wait_until(&self, condition: &str) {
        let script = format!("return Boolean({condition});");
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            // A page in the middle of loading may fail the script; that is "not yet".
            if let Ok(Value::Bool(true)) = self.client.execute(&script, vec![]).await {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "`{condition}` did not become true on {} within {PAGE_DEADLINE:?}\npage:\n{}",
                    self.url().await,
                    self.source().await
                );
            }
            // The WebDriver round trip itself paces this loop; a short pause keeps it from
            // spinning a core that the server under test needs.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script `{script}`: {e}"))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find `{css}`: {e}"))
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap_or_default()
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// The visible page as PNG bytes.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }

    /// The whole page (up to `max_height` CSS pixels tall) as PNG bytes: the window grows to
    /// the page's height first, since WebDriver shows only what is in the viewport.
    pub async fn screenshot_page(&self, max_height: u32) -> Vec<u8> {
        let size = self
            .eval(
                "return [document.documentElement.scrollHeight, \
                 window.outerHeight - window.innerHeight, window.outerWidth];",
            )
            .await;
        let n = |i: usize| size[i].as_u64().expect("a number") as u32;
        let (page, chrome, width) = (n(0), n(1), n(2));
        self.client
            .set_window_size(width, page.min(max_height) + chrome)
            .await
            .expect("resize the window");
        self.screenshot().await
    }

    /// Ends the session (and its browser).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
