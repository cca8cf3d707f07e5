//! The coordinator's screen in a real browser: headless Chromium against the real `keten serve`.
//!
//! For now the harness's own proof (the screen's tests follow when its pages land): Chromium,
//! driven over WebDriver, loads a page over HTTPS from a server holding the dev PKI's server
//! certificate, trusted by its public key only.

mod util;
mod web_util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use util::Dir;
use web_util::{Chromedriver, spki_sha256};

/// A tiny HTTPS server with the dev PKI's server certificate; prints its port.
const PY_SERVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!doctype html><html><body><main id=hello data-position=3>Hallo keten</main></body></html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_loads_an_https_page_with_the_dev_certificate_and_only_that_one() {
    let dir = Dir::new();
    let cert = dir.pki.join("server.pem");
    let key = dir.pki.join("server.key");
    let mut py = Command::new("python3")
        .args(["-c", PY_SERVER])
        .arg(&cert)
        .arg(&key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(py.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();

    let driver = Chromedriver::start();
    let browser = driver.browser(&spki_sha256(&cert)).await;
    browser.goto(&format!("https://127.0.0.1:{port}/")).await;
    let main = browser.wait_for("main#hello").await;
    assert_eq!(main.text().await.unwrap(), "Hallo keten");
    browser.close().await;

    // Another key: the same page must now be Chromium's certificate error, not the page.
    let other = driver
        .browser("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .await;
    let _ = other
        .client
        .goto(&format!("https://127.0.0.1:{port}/"))
        .await;
    assert!(!other.source().await.contains("Hallo keten"));
    other.close().await;
    let _ = py.kill();
    let _ = py.wait();
}
