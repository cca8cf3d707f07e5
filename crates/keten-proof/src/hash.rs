//! The two hash functions of RFC 6962 §2.1 with SHA-256, and hex for the JSON and the report.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A SHA-256 digest: a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

/// Domain separation of RFC 6962 §2.1: a leaf can never be mistaken for an inner node.
pub const LEAF_PREFIX: u8 = 0x00;
pub const NODE_PREFIX: u8 = 0x01;

/// MTH({}) = SHA-256(""), the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// SHA-256(0x00 || leaf bytes).
pub fn hash_leaf_bytes(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(leaf);
    h.finalize().into()
}

/// SHA-256(0x01 || left || right).
pub fn hash_children(left: &Hash, right: &Hash) -> Hash {
    // One contiguous input: a single `digest` call is the hot path of every proof.
    let mut input = [0u8; 65];
    input[0] = NODE_PREFIX;
    input[1..33].copy_from_slice(left);
    input[33..].copy_from_slice(right);
    Sha256::digest(input).into()
}

/// Lowercase hex, as `sha256sum` prints it.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    s
}

/// Hex of either case to bytes.
pub fn from_hex(s: &str) -> Result<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return Err(Error::MalformedBundle("hex of odd length".into()));
    }
    s.chunks(2)
        .map(|pair| match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(Error::MalformedBundle("not a hex digit".into())),
        })
        .collect()
}

/// Hex of exactly 32 bytes to a [`Hash`].
pub fn hash_from_hex(s: &str) -> Result<Hash> {
    from_hex(s)?.try_into().map_err(|v: Vec<u8>| {
        Error::MalformedBundle(format!("a hash has 32 bytes, not {}", v.len()))
    })
}
