//! keten's data keys: one key per stream (keten uses a family's stream id, `family-<id>`, as the
//! [`KeyId`]), payloads sealed with it, and the stores that keep the keys beside the log, never
//! in it. Destroying a key is how a family is erased: its events stay in the log as ciphertext
//! that nobody can read again.
//!
//! Architecture invariant: like the log, this crate knows nothing of families; a key id is an
//! opaque name.
//!
//! # Sealed format
//!
//! [`seal`] uses XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha: RustCrypto's HChaCha20 for the
//! subkey, then ring's ChaCha20-Poly1305, whose assembly seals a 300-byte event in a quarter of
//! the time `chacha20poly1305` took; a test checks every byte against that crate) with a fresh
//! random 24-byte nonce from the OS RNG per call, and produces:
//!
//! ```text
//! offset  length  content
//! 0       1       format version, 0xC1 (SEALED_VERSION)
//! 1       24      nonce (XNonce), random
//! 25      n       ciphertext (XChaCha20, same length n as the plaintext)
//! 25+n    16      Poly1305 tag over the associated data and the ciphertext
//! ```
//!
//! The associated data (for keten: what the sealed payload belongs to, so that a ciphertext
//! moved to another event does not open) is authenticated but not stored: [`open`] needs the same
//! bytes. [`open`] fails with [`KeyError::Unauthentic`] for another key, other associated data or
//! any changed byte, and never returns unauthenticated plaintext. The version byte 0xC1 cannot
//! begin JSON or any UTF-8 text (see [`SEALED_VERSION`]), so [`is_sealed`] tells sealed payloads
//! from plaintext JSON ones; a random 24-byte nonce makes a nonce collision under one key
//! negligible (about 2^-96 after 2^48 seals).
//!
//! [`seal_deterministic`] writes the same format with a synthetic nonce instead of a random one
//! (keyed BLAKE3 of the associated data and the plaintext, under a key derived from the data
//! key), so that a retried append carries the same bytes; [`open`] reads both alike.
//!
//! # Stores
//!
//! [`KeyStore`] is the contract; [`FileKeyStore`] (the embedded backend) keeps the keys in one
//! preallocated table file of fixed 256-byte slots, with keys made ahead in batches (one
//! `fdatasync` for 256) so that creating a key costs one `pwrite` and no flush, and a
//! tombstone file per destroyed id (the
//! format, byte by byte, is in its source, `src/file.rs`; stores made before the table, with
//! one `<id>.key` file per key, still open and work). `keten_nats::keys::NatsKeyStore` keeps
//! them in a JetStream KV bucket. Tombstones (and the JetStream values, and legacy key files)
//! are the bytes of [`record`]. [`Keyring`] is the server's cache in front of a store.

mod error;
mod file;
mod id;
mod key;
mod keyring;
pub mod record;
mod store;
mod table;

/// The time type of [`KeyState::Destroyed`], re-exported so users need not pin chrono.
pub use chrono;
pub use error::{KeyError, Result};
pub use file::FileKeyStore;
pub use id::KeyId;
pub use key::{
    DataKey, NONCE_LEN, SEALED_OVERHEAD, SEALED_VERSION, TAG_LEN, is_sealed, open, seal,
    seal_deterministic,
};
pub use keyring::Keyring;
pub use store::{Fits, KeyState, KeyStore};
