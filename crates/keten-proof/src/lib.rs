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
//! How the server and the CLI use it:
//!
//! ```
//! use keten_proof::{Bundle, SigningKey, TreeBuilder, verify_bundle, verify_consistency,
//!     verify_inclusion};
//! # use keten_log::*;
//! # let event = |p: u64| RecordedEvent {
//! #     stream: StreamId::new("family-1").unwrap(), id: EventId(uuid::Uuid::from_u128(p as u128)),
//! #     event_type: EventType::new("Noted").unwrap(), version: StreamVersion(p),
//! #     position: GlobalPosition(p), committed_at: CommitTime(p), metadata: vec![], payload: vec![],
//! # };
//! # let key = SigningKey::from_bytes(&[7; 32]);
//! // On start: `TreeBuilder::from_store(&store).await?`; then each committed event, in order:
//! let mut tree = TreeBuilder::new();
//! for p in 0..10 {
//!     tree.append(&event(p))?;
//! }
//! // Audit.GetCheckpoint (at an interval and on demand):
//! let checkpoint = tree.checkpoint("keten.example/log", CommitTime(10)).sign(&key)?;
//! let note: String = checkpoint.to_note();
//! // Audit.ProveInclusion and Audit.ProveConsistency, for any size up to the tree's:
//! let path = tree.inclusion_proof(3, 10)?;
//! verify_inclusion(&keten_proof::leaf_hash(&event(3)), 3, 10, &path, &tree.root())?;
//! let proof = tree.consistency_proof(4, 10)?;
//! verify_consistency(4, 10, &tree.root_at(4)?, &tree.root(), &proof)?;
//! // keten audit-export FAMILY: the stream's events up to the checkpoint, as stored.
//! let events: Vec<_> = (0..10).map(event).collect();
//! let bundle = Bundle::build(&tree, checkpoint, &events[0].stream, &events)?;
//! let json = bundle.to_json();
//! // keten audit-verify BUNDLE --key PUBKEY: offline.
//! let report = verify_bundle(&Bundle::from_json(&json)?, &key.verifying_key());
//! assert!(report.holds(), "{report}");
//! # Ok::<(), keten_proof::Error>(())
//! ```
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
