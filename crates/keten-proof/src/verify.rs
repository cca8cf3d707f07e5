//! The offline verifiers, step for step as RFC 9162 §2.1.3.2 and §2.1.4.2 write them, so that an
//! auditor can hold this code against the RFC. They need nothing but hashes.

use ed25519_dalek::VerifyingKey;

use crate::checkpoint::SignedCheckpoint;
use crate::error::{Error, Result};
use crate::hash::{Hash, empty_root, hash_children};

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidProof(reason.into())
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `tree_size` leaves whose root is
/// `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    if index >= tree_size {
        return Err(invalid(format!(
            "leaf index {index} is not below tree size {tree_size}"
        )));
    }
    let mut fn_ = index;
    let mut sn = tree_size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(invalid(
                "the inclusion proof is longer than the tree is deep",
            ));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = hash_children(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = hash_children(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(invalid(
            "the inclusion proof is shorter than the tree is deep",
        ));
    }
    if r != *root {
        return Err(invalid(
            "the root computed from the leaf and its path differs from the root",
        ));
    }
    Ok(())
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of `old_size`
/// leaves with root `old_root`: nothing in the first `old_size` leaves was changed or removed
/// (RFC 9162 §2.1.4.2).
///
/// The RFC covers `0 < old_size < new_size`; at the edges, equal sizes need equal roots and an
/// empty proof, and the empty tree (root SHA-256("")) is extended by every tree.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    if old_size > new_size {
        return Err(invalid(format!(
            "old tree size {old_size} exceeds new tree size {new_size}"
        )));
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(invalid("a proof between equal sizes must be empty"));
        }
        if old_root != new_root {
            return Err(invalid("equal tree sizes with different roots"));
        }
        return Ok(());
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(invalid("a proof from the empty tree must be empty"));
        }
        if *old_root != empty_root() {
            return Err(invalid("the old root is not the root of the empty tree"));
        }
        return Ok(());
    }
    // 1.
    if proof.is_empty() {
        return Err(invalid("the consistency proof is empty"));
    }
    // 2.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    // 3.
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    // 4.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5.
    let mut fr = path[0];
    let mut sr = path[0];
    // 6.
    for c in &path[1..] {
        if sn == 0 {
            return Err(invalid(
                "the consistency proof is longer than the tree is deep",
            ));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = hash_children(c, &fr);
            sr = hash_children(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = hash_children(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7.
    if sn != 0 {
        return Err(invalid(
            "the consistency proof is shorter than the tree is deep",
        ));
    }
    if fr != *old_root {
        return Err(invalid(
            "the old root computed from the proof differs from the old root: the earlier log was changed",
        ));
    }
    if sr != *new_root {
        return Err(invalid(
            "the new root computed from the proof differs from the new root",
        ));
    }
    Ok(())
}

/// Checks that the signed checkpoint `new` extends `old`: both are signed by `key` for one
/// origin, and `proof` shows that the log of `new` begins with the log of `old`. What an auditor
/// who kept an old checkpoint asks of a new one.
pub fn verify_checkpoint_consistency(
    old: &SignedCheckpoint,
    new: &SignedCheckpoint,
    proof: &[Hash],
    key: &VerifyingKey,
) -> Result<()> {
    old.verify(key)?;
    new.verify(key)?;
    let (old, new) = (&old.checkpoint, &new.checkpoint);
    if old.origin != new.origin {
        return Err(invalid(format!(
            "the checkpoints are of two logs, `{}` and `{}`",
            old.origin, new.origin
        )));
    }
    verify_consistency(
        old.tree_size,
        new.tree_size,
        &old.root_hash,
        &new.root_hash,
        proof,
    )
}
