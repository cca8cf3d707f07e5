//! What a running server is configured with. The binary reads it from TOML (plus flags and
//! environment); this crate only defines its shape and checks it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use keten_domain::{PartnerId, PartnerKind, Role};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded log and the projection snapshot live.
    pub data_dir: Option<PathBuf>,
    /// The gRPC address; port 0 picks a free port.
    pub listen: Option<SocketAddr>,
    /// The Prometheus metrics address; absent means no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    pub tls: TlsConfig,
    #[serde(default, rename = "partner")]
    pub partners: Vec<PartnerConfig>,
    /// Signed checkpoints of the log's Merkle tree; absent means the proof calls are refused.
    pub proofs: Option<ProofConfig>,
    #[serde(default)]
    pub privacy: PrivacyConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// What one client may cost the server (see the README's "Limits"). Each has a default an
/// operator can keep; raising one is a capacity decision, not a fix for a client's error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// The largest request message the server decodes; a larger one is OUT_OF_RANGE before
    /// its body is read. Far above a publish of `max_events_per_publish` ordinary events.
    pub max_decoding_message_bytes: usize,
    /// The largest response message the server sends; a larger one is OUT_OF_RANGE. Pages
    /// (history, access log, families) keep ordinary answers far below it.
    pub max_encoding_message_bytes: usize,
    /// Events in one `Publish`; more is INVALID_ARGUMENT naming `events`, and nothing is
    /// written. 1000 is the most one JetStream atomic batch holds.
    pub max_events_per_publish: usize,
    /// Open connections (TLS handshakes in progress included); further ones wait in the
    /// listen queue until one closes. Keep it well below the process's file limit.
    pub max_connections: usize,
    /// A TCP connection that has not finished the TLS handshake in this time is closed.
    pub tls_handshake_timeout_secs: u64,
    /// HTTP/2 streams (calls, watches included) open at once on one connection.
    pub max_concurrent_streams_per_connection: u32,
    /// Calls being handled at once on one connection (until their response starts); more
    /// wait their turn.
    pub max_concurrent_calls_per_connection: usize,
    /// A call whose answer has not started in this time is CANCELLED; 0 for no limit. A
    /// client's shorter `grpc-timeout` wins.
    pub request_timeout_secs: u64,
    /// TCP keepalive probes after this idle time, so that a vanished peer's connection is
    /// closed; 0 turns them off.
    pub tcp_keepalive_secs: u64,
    /// HTTP/2 pings at this interval on an idle connection; 0 turns them off.
    pub http2_keepalive_interval_secs: u64,
    /// A connection whose ping is not answered in this time is closed.
    pub http2_keepalive_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_decoding_message_bytes: 4 << 20,
            max_encoding_message_bytes: 16 << 20,
            max_events_per_publish: 1000,
            max_connections: 1024,
            tls_handshake_timeout_secs: 10,
            max_concurrent_streams_per_connection: 100,
            max_concurrent_calls_per_connection: 64,
            request_timeout_secs: 300,
            tcp_keepalive_secs: 60,
            http2_keepalive_interval_secs: 60,
            http2_keepalive_timeout_secs: 20,
        }
    }
}

/// Encryption at rest, the access log and retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Years after help ended that a family's file is kept before it shows as due for
    /// destruction (the Jeugdwet's 20 by default).
    #[serde(default = "default_retention_years")]
    pub retention_years: u32,
    /// Seal every family's payloads with its own key. Only a benchmark measuring its cost
    /// turns it off.
    #[serde(default = "yes")]
    pub encryption: bool,
    /// Record every access in the access log before answering. Only a benchmark measuring its
    /// cost turns it off.
    #[serde(default = "yes")]
    pub access_log: bool,
    /// How long an access record may wait for its flush to disk after it was written (the
    /// access is answered once the record is written, not flushed). A power loss or kernel
    /// crash can lose the records of at most this last interval; a crash of keten itself loses
    /// none. 0: every record is flushed before its access is answered. README, "Access log".
    #[serde(default = "default_access_log_flush_ms")]
    pub access_log_flush_ms: u64,
}

impl PrivacyConfig {
    /// How the access log's `FileLog` is opened: [`keten_log::Durability::Interval`] of
    /// `access_log_flush_ms`, or `Fsync` for 0.
    pub fn access_log_durability(&self) -> keten_log::Durability {
        match self.access_log_flush_ms {
            0 => keten_log::Durability::Fsync,
            ms => keten_log::Durability::Interval(std::time::Duration::from_millis(ms)),
        }
    }

    /// Refuses a flush interval the log does not accept, naming the setting.
    pub fn check(&self) -> Result<()> {
        let max = keten_log::MAX_FLUSH_INTERVAL.as_millis();
        if u128::from(self.access_log_flush_ms) > max {
            return Err(Error::Config(format!(
                "[privacy] access_log_flush_ms = {}: at most {max} (0 flushes every record)",
                self.access_log_flush_ms
            )));
        }
        Ok(())
    }
}

/// The access log's default flush interval: a power loss costs at most this many milliseconds
/// of access records.
pub const DEFAULT_ACCESS_LOG_FLUSH_MS: u64 = 50;

fn default_access_log_flush_ms() -> u64 {
    DEFAULT_ACCESS_LOG_FLUSH_MS
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            retention_years: default_retention_years(),
            encryption: true,
            access_log: true,
            access_log_flush_ms: DEFAULT_ACCESS_LOG_FLUSH_MS,
        }
    }
}

fn default_retention_years() -> u32 {
    keten_domain::privacy::Policy::default().retention_years
}

fn yes() -> bool {
    true
}

/// The checkpoint signer. Relative paths are taken from the configuration file's directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofConfig {
    /// The Ed25519 private key (PKCS#8 PEM), e.g. written by `keten dev-pki`.
    pub signing_key: PathBuf,
    /// Its public key (SPKI PEM): what auditors are given. The server refuses to start when it
    /// is not the signing key's, so the published key and the signing key cannot drift apart.
    pub public_key: PathBuf,
    /// The log's name in every checkpoint (a signed-note key name: no spaces, no `+`).
    #[serde(default = "default_origin")]
    pub origin: String,
    /// Seconds between checkpoints (one is signed only when the log has grown).
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_secs: u64,
}

fn default_origin() -> String {
    "keten.local/log".into()
}

fn default_checkpoint_interval() -> u64 {
    60
}

/// PEM files; relative paths are taken from the configuration file's directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The CA that signs partners' client certificates.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One partner organisation's system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    pub id: PartnerId,
    pub kind: PartnerKind,
    pub name: String,
    /// The subject common name of the partner's client certificate.
    pub certificate: String,
    /// The roles persons of this partner may act in.
    pub roles: Vec<Role>,
    /// The municipality the partner works for. A coordinator sees the families in which a
    /// partner of its own municipality takes part.
    #[serde(default)]
    pub municipality: Option<String>,
}

impl Config {
    /// Resolves relative paths against `base` (the configuration file's directory).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        for p in [&mut self.tls.ca, &mut self.tls.cert, &mut self.tls.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(d) = &mut self.data_dir
            && d.is_relative()
        {
            *d = base.join(&*d);
        }
        if let Some(proofs) = &mut self.proofs {
            for p in [&mut proofs.signing_key, &mut proofs.public_key] {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
    }

    /// Two partners with one certificate name or one id would make the caller ambiguous.
    pub fn check(&self) -> Result<()> {
        self.limits.check()?;
        self.privacy.check()?;
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        for p in &self.partners {
            if !ids.insert(p.id.as_str()) {
                return Err(Error::Config(format!(
                    "partner id `{}` appears twice",
                    p.id
                )));
            }
            if !names.insert(p.certificate.as_str()) {
                return Err(Error::Config(format!(
                    "certificate name `{}` is given to two partners",
                    p.certificate
                )));
            }
            if p.roles.is_empty() {
                return Err(Error::Config(format!("partner `{}` has no roles", p.id)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod privacy_tests {
    use std::time::Duration;

    use keten_log::Durability;

    use super::PrivacyConfig;

    fn privacy(json: &str) -> PrivacyConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_access_log_flushes_within_50_ms_by_default_and_0_means_fsync() {
        assert_eq!(
            privacy("{}").access_log_durability(),
            Durability::Interval(Duration::from_millis(50))
        );
        assert_eq!(
            privacy(r#"{"access_log_flush_ms": 0}"#).access_log_durability(),
            Durability::Fsync
        );
        assert_eq!(
            PrivacyConfig::default().access_log_durability(),
            privacy("{}").access_log_durability()
        );
    }

    #[test]
    fn a_flush_interval_beyond_the_maximum_is_refused_naming_the_setting() {
        let e = privacy(r#"{"access_log_flush_ms": 60000}"#)
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("access_log_flush_ms = 60000"), "{e}");
        privacy(r#"{"access_log_flush_ms": 10000}"#)
            .check()
            .unwrap();
    }
}
