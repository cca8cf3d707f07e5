//! Key files: PEM as OpenSSL writes them, so `openssl genpkey -algorithm ed25519` makes a key this
//! crate reads and `openssl pkey -pubin -in log.pub -text` shows the public key.
//!
//! - signing key: `-----BEGIN PRIVATE KEY-----`, PKCS#8 v1 (RFC 8410): the fixed DER prefix
//!   `302e020100300506032b657004220420` then the 32-byte seed;
//! - public key: `-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo (RFC 8410): the fixed DER
//!   prefix `302a300506032b6570032100` then the 32-byte key.
//!
//! A public key is also accepted as 64 hex digits or base64 of its 32 bytes, for a one-line
//! configuration value.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::error::{Error, Result};

const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const PRIVATE_LABEL: &str = "PRIVATE KEY";
const PUBLIC_LABEL: &str = "PUBLIC KEY";

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidKey(reason.into())
}

/// A new signing key from the operating system's randomness: for the edge (`keten keygen`),
/// never for the verify path, which needs no randomness.
pub fn generate_signing_key() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn unpem(label: &str, text: &str) -> Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let text = text.trim();
    let inner = text
        .strip_prefix(&begin)
        .and_then(|t| t.strip_suffix(&end))
        .ok_or_else(|| invalid(format!("not a PEM `{label}` block")))?;
    let body: String = inner.split_whitespace().collect();
    BASE64
        .decode(body)
        .map_err(|_| invalid(format!("the `{label}` block is not base64")))
}

pub fn signing_key_to_pem(key: &SigningKey) -> String {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    pem(PRIVATE_LABEL, &der)
}

pub fn signing_key_from_pem(text: &str) -> Result<SigningKey> {
    let der = unpem(PRIVATE_LABEL, text)?;
    let seed: [u8; 32] = der
        .strip_prefix(&PKCS8_PREFIX[..])
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| invalid("not an Ed25519 PKCS#8 v1 private key"))?;
    Ok(SigningKey::from_bytes(&seed))
}

pub fn verifying_key_to_pem(key: &VerifyingKey) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    pem(PUBLIC_LABEL, &der)
}

/// A public key from PEM, 64 hex digits or base64 of 32 bytes.
pub fn parse_verifying_key(text: &str) -> Result<VerifyingKey> {
    let trimmed = text.trim();
    let raw: [u8; 32] = if trimmed.starts_with("-----BEGIN") {
        let der = unpem(PUBLIC_LABEL, trimmed)?;
        der.strip_prefix(&SPKI_PREFIX[..])
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| invalid("not an Ed25519 SubjectPublicKeyInfo"))?
    } else if trimmed.len() == 64 {
        crate::hash::from_hex(trimmed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid("64 characters but not hex"))?
    } else {
        BASE64
            .decode(trimmed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid("neither PEM, 64 hex digits nor base64 of 32 bytes"))?
    };
    VerifyingKey::from_bytes(&raw).map_err(|e| invalid(format!("not an Ed25519 point: {e}")))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a new signing key file readable by its owner only; refuses to overwrite a key.
pub fn save_signing_key(path: &Path, key: &SigningKey) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = options.open(path).map_err(io)?;
    file.write_all(signing_key_to_pem(key).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)
}

pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    signing_key_from_pem(&read(path)?)
}

pub fn save_verifying_key(path: &Path, key: &VerifyingKey) -> Result<()> {
    std::fs::write(path, verifying_key_to_pem(key)).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey> {
    parse_verifying_key(&read(path)?)
}
