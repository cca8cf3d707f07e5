//! Signed checkpoints: a C2SP `tlog-checkpoint` body in a C2SP `signed-note`, Ed25519.
//!
//! ```text
//! <origin>\n                      the log's name, also the signing key's name
//! <tree size, decimal>\n
//! <root hash, base64>\n
//! time <unix microseconds>\n      extension line: when the checkpoint was made (UTC)
//! \n
//! — <origin> <base64(key id || Ed25519 signature of the four lines above)>\n
//! ```
//!
//! The format is someone else's on purpose: Go's `golang.org/x/mod/sumdb/note`, and the
//! transparency-dev and sigsum tools, read and verify these notes as they are, so an auditor does
//! not have to trust a verifier written by us.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use keten_log::CommitTime;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::hash::Hash;

/// The signature type byte of Ed25519 in a signed note.
const ED25519_ALGORITHM: u8 = 0x01;
/// "— ": U+2014 and a space, the start of a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
const TIME_PREFIX: &str = "time ";

/// What the log commits to at one moment: its first `tree_size` events hash to `root_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name: printable, no spaces, no `+` (a signed-note key name), e.g.
    /// `keten.example.nl/log`.
    pub origin: String,
    pub tree_size: u64,
    pub root_hash: Hash,
    /// When the checkpoint was made; every event in it was committed at or before.
    pub time: CommitTime,
}

/// A checkpoint with its signature, as it travels: [`SignedCheckpoint::to_note`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The first four bytes of SHA-256(origin || "\n" || 0x01 || public key): names the key.
    pub key_id: [u8; 4],
    pub signature: [u8; 64],
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::MalformedCheckpoint(reason.into())
}

/// A signed-note key name: non-empty, printable, no whitespace and no `+`.
pub fn check_origin(origin: &str) -> Result<()> {
    if origin.is_empty() {
        return Err(malformed("the origin is empty"));
    }
    if origin.len() > 255 {
        return Err(malformed("the origin is longer than 255 bytes"));
    }
    if origin
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '+')
    {
        return Err(malformed(format!(
            "the origin `{origin}` contains whitespace, a control character or `+`"
        )));
    }
    Ok(())
}

/// The signed-note key id of `key` under `name`.
pub fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_ALGORITHM]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The verifier key string of Go's `note.NewVerifier`: `name+hex(key id)+base64(0x01 || key)`.
pub fn note_verifier_key(name: &str, key: &VerifyingKey) -> String {
    let mut encoded = vec![ED25519_ALGORITHM];
    encoded.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        crate::hash::to_hex(&key_id(name, key)),
        BASE64.encode(encoded)
    )
}

impl Checkpoint {
    pub fn new(
        origin: impl Into<String>,
        tree_size: u64,
        root_hash: Hash,
        time: CommitTime,
    ) -> Self {
        Self {
            origin: origin.into(),
            tree_size,
            root_hash,
            time,
        }
    }

    /// The signed text: four lines, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{TIME_PREFIX}{}\n",
            self.origin,
            self.tree_size,
            BASE64.encode(self.root_hash),
            self.time.0
        )
    }

    /// Parses a body; only the exact text [`Checkpoint::body`] writes is accepted, so that one
    /// checkpoint has one encoding.
    pub fn parse_body(body: &str) -> Result<Self> {
        let lines: Vec<&str> = body
            .strip_suffix('\n')
            .ok_or_else(|| malformed("the body does not end in a newline"))?
            .split('\n')
            .collect();
        let [origin, size, root, time] = lines[..] else {
            return Err(malformed(format!(
                "the body has {} lines, not 4 (origin, size, root, time)",
                lines.len()
            )));
        };
        check_origin(origin)?;
        let tree_size: u64 = size
            .parse()
            .map_err(|_| malformed(format!("tree size `{size}` is not a decimal number")))?;
        let root_hash: Hash = BASE64
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed("the root hash is not base64 of 32 bytes"))?;
        let micros: u64 = time
            .strip_prefix(TIME_PREFIX)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| malformed(format!("`{time}` is not `time <unix microseconds>`")))?;
        let checkpoint = Self::new(origin, tree_size, root_hash, CommitTime(micros));
        if checkpoint.body() != body {
            return Err(malformed("the body is not in canonical form"));
        }
        Ok(checkpoint)
    }

    /// Signs with the log's key. Ed25519 signing is deterministic: no randomness here.
    pub fn sign(self, key: &SigningKey) -> Result<SignedCheckpoint> {
        check_origin(&self.origin)?;
        let signature = key.sign(self.body().as_bytes()).to_bytes();
        Ok(SignedCheckpoint {
            key_id: key_id(&self.origin, &key.verifying_key()),
            checkpoint: self,
            signature,
        })
    }
}

impl SignedCheckpoint {
    /// The signed note: body, blank line, one signature line.
    pub fn to_note(&self) -> String {
        let mut sig = Vec::with_capacity(68);
        sig.extend_from_slice(&self.key_id);
        sig.extend_from_slice(&self.signature);
        format!(
            "{}\n{SIGNATURE_PREFIX}{} {}\n",
            self.checkpoint.body(),
            self.checkpoint.origin,
            BASE64.encode(sig)
        )
    }

    /// Parses a signed note with exactly one signature, by the key named as the origin. Checks
    /// the form only; [`SignedCheckpoint::verify`] checks the signature.
    pub fn from_note(note: &str) -> Result<Self> {
        let split = note
            .find("\n\n")
            .ok_or_else(|| malformed("no blank line between the body and the signature"))?;
        let (body, rest) = note.split_at(split + 1);
        let checkpoint = Checkpoint::parse_body(body)?;
        let line = rest[1..]
            .strip_suffix('\n')
            .ok_or_else(|| malformed("the signature line does not end in a newline"))?;
        if line.contains('\n') {
            return Err(malformed("more than one signature line"));
        }
        let line = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| malformed("the signature line does not start with `\u{2014} `"))?;
        let (name, sig) = line
            .split_once(' ')
            .ok_or_else(|| malformed("the signature line has no space after the key name"))?;
        if name != checkpoint.origin {
            return Err(malformed(format!(
                "signed by `{name}`, not by the origin `{}`",
                checkpoint.origin
            )));
        }
        let sig = BASE64
            .decode(sig)
            .map_err(|_| malformed("the signature is not base64"))?;
        if sig.len() != 68 {
            return Err(malformed(format!(
                "the signature has {} bytes, not 4 (key id) + 64 (Ed25519)",
                sig.len()
            )));
        }
        let signed = Self {
            checkpoint,
            key_id: sig[..4].try_into().expect("4 bytes"),
            signature: sig[4..].try_into().expect("64 bytes"),
        };
        if signed.to_note() != note {
            return Err(malformed("the note is not in canonical form"));
        }
        Ok(signed)
    }

    /// Checks that `key` signed this checkpoint: the key id names it, and the signature over the
    /// body verifies (strictly: no malleable or small-order encodings).
    pub fn verify(&self, key: &VerifyingKey) -> Result<()> {
        let expected = key_id(&self.checkpoint.origin, key);
        if expected != self.key_id {
            return Err(Error::WrongKey(format!(
                "the checkpoint names key id {}, the given key for `{}` has key id {}",
                crate::hash::to_hex(&self.key_id),
                self.checkpoint.origin,
                crate::hash::to_hex(&expected)
            )));
        }
        key.verify_strict(
            self.checkpoint.body().as_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|e| Error::BadSignature(e.to_string()))
    }
}

impl serde::Serialize for SignedCheckpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_note())
    }
}

impl<'de> serde::Deserialize<'de> for SignedCheckpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let note = String::deserialize(d)?;
        Self::from_note(&note).map_err(serde::de::Error::custom)
    }
}
