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
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            retention_years: default_retention_years(),
            encryption: true,
            access_log: true,
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
