//! The coordinator's screen: keten's projection as plain HTML pages, served by keten itself on
//! its own HTTPS listener with the gRPC API's certificate, live through server-sent events.
//!
//! - [`config`]: the `[web]` section (listener, sessions, local people, OpenID Connect).
//! - [`session`]: server-side sessions; the browser holds a random id only.
//! - `routes`: the pages. Each asks keten-server's own functions what the signed-in person may
//!   see (`App::sight`, `App::redacted_plan`, the audit service's as-of and access report) and
//!   writes an access record through `App::record_access`, exactly as a gRPC call does.
//! - `html` and `text`: maud templates (escaped at compile time) and the Dutch and English words.
//! - `oidc`: sign-in at the municipality's identity provider (authorization code, PKCE, nonce).
//! - `server`: TLS, HTTP/1.1 and HTTP/2, graceful shutdown.
//!
//! Dependency direction: keten-web → keten-server → projection, log, domain. The server knows
//! nothing of the web; the binary wires the two together.

pub mod config;
pub mod error;
mod html;
mod oidc;
mod routes;
mod server;
pub mod session;
mod text;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::WebConfig;
pub use error::{Error, Result};
pub use routes::{COOKIE, Web};

/// The web screen with its socket bound and its certificate loaded, ready to start once the
/// server's shared state exists.
pub struct Prepared {
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    config: WebConfig,
    addr: SocketAddr,
}

impl Prepared {
    /// Checks the configuration against the partners, loads the server's certificate and
    /// binds `listen` (port 0 picks a free port).
    pub fn new(
        config: WebConfig,
        listen: SocketAddr,
        tls: &keten_server::config::TlsConfig,
        partners: &[keten_server::config::PartnerConfig],
    ) -> Result<Prepared> {
        config.check(&keten_server::auth::Directory::new(partners))?;
        let tls = server::tls_config(tls)?;
        let listener = server::bind(listen)?;
        let addr = listener.local_addr().map_err(|source| Error::Io {
            what: "web listen address".into(),
            source,
        })?;
        Ok(Prepared {
            listener,
            tls,
            config,
            addr,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on the server's shared state until the server begins to stop (`App::stopping`);
    /// call inside the runtime. The task ends once requests in flight have finished.
    pub fn start(
        self,
        app: Arc<keten_server::App>,
    ) -> Result<(Web, tokio::task::JoinHandle<Result<()>>)> {
        let listener =
            tokio::net::TcpListener::from_std(self.listener).map_err(|source| Error::Io {
                what: "web listener".into(),
                source,
            })?;
        let mut stopping = app.stopping.clone();
        let web = Web::new(app, self.config)?;
        let router = web.router();
        let task = tokio::spawn(server::run(listener, self.tls, router, async move {
            let _ = stopping.wait_for(|s| *s).await;
        }));
        tracing::info!(addr = %self.addr, "web: serving");
        Ok((web, task))
    }
}
