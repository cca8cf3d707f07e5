//! Proofs over keten's global log, checkable by an auditor without trusting keten's operators.
//!
//! A Merkle tree in the style of RFC 6962 (certificate transparency) over every event in global
//! order, signed checkpoints of it, inclusion and consistency proofs, and audit bundles of one
//! family's events that verify offline. `PROOFS.md` beside this crate documents every byte.
//!
//! Architecture invariant: this crate does no IO but reading the log through
//! [`keten_log::EventStore`] and reading or writing key files. It knows nothing of families:
//! a bundle is about one stream, whatever that stream means.
//!
//! API boundary: the leaf encoding ([`leaf_bytes`]), the checkpoint note and the bundle JSON are
//! a public format; changing any of them needs a new version tag, not an edit.
//!
//! Module map:
//!
//! - `hash`: SHA-256 with the RFC's leaf and node prefixes;
//! - `leaf`: the canonical bytes of a recorded event;
//! - `tree`: [`TreeBuilder`], the incremental tree that answers roots and proofs for any size;
//! - `verify`: [`verify_inclusion`], [`verify_consistency`], as RFC 9162 writes them;
//! - `checkpoint`: [`Checkpoint`], [`SignedCheckpoint`] as a C2SP signed note;
//! - `keys`: Ed25519 key files (PEM as OpenSSL writes them);
//! - `bundle`: [`Bundle`] and [`verify_bundle`].

mod bundle;
mod checkpoint;
mod error;
mod hash;
mod keys;
mod leaf;
mod tree;
mod verify;

pub use bundle::{
    BUNDLE_FORMAT, BUNDLE_VERSION, Bundle, BundleEvent, BundleReport, Check, EventRef, Failure,
    PlaintextPayload, utc, verify_bundle,
};
pub use checkpoint::{Checkpoint, SignedCheckpoint, check_origin, key_id, note_verifier_key};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use error::{Error, Result};
pub use hash::{
    Hash, LEAF_PREFIX, NODE_PREFIX, empty_root, from_hex, hash_children, hash_from_hex,
    hash_leaf_bytes, to_hex,
};
pub use keys::{
    generate_signing_key, load_signing_key, load_verifying_key, parse_verifying_key,
    save_signing_key, save_verifying_key, signing_key_from_pem, signing_key_to_pem,
    verifying_key_to_pem,
};
pub use leaf::{LEAF_ENCODING_V1, LeafFields, leaf_bytes, leaf_hash};
pub use tree::TreeBuilder;
pub use verify::{verify_checkpoint_consistency, verify_consistency, verify_inclusion};
