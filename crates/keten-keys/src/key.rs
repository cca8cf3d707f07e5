use std::fmt;

use chacha20::cipher::consts::U10;
use chacha20::cipher::generic_array::GenericArray;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::KeyError;

/// One stream's secret: 32 bytes for XChaCha20-Poly1305. The bytes are wiped when a value is
/// dropped (clones included), and `Debug` never shows them.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; DataKey::LEN]);

impl DataKey {
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's random number generator.
    ///
    /// # Panics
    /// When the OS RNG fails (on Linux `getrandom(2)` only fails on a broken system): a key
    /// from anything weaker must never be made, and there is nothing sensible to go on with.
    pub fn generate() -> Self {
        let mut k = Self([0; Self::LEN]);
        os_random(&mut k.0);
        k
    }

    /// A key from stored bytes. The caller's array is a copy this type cannot wipe: zeroize it.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes, for a store to write them and for tests.
    pub fn expose_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Compares without an early exit, so a comparison's time says nothing of where keys differ.
impl PartialEq for DataKey {
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for DataKey {}

fn os_random(buf: &mut [u8]) {
    getrandom::getrandom(buf).expect("the operating system's random number generator failed");
}

/// The first byte of every sealed blob: the format version.
///
/// 0xC1 can begin neither JSON nor any UTF-8 text: it is never valid anywhere in UTF-8 (it
/// would be an overlong two-byte sequence), and JSON (RFC 8259) is UTF-8 that begins with
/// whitespace, `{`, `[`, `"`, a digit, `-`, `t`, `f` or `n`. So [`is_sealed`] tells a sealed
/// payload from a plaintext JSON one by its first byte. The "C1" reads as "ciphertext, format 1".
pub const SEALED_VERSION: u8 = 0xC1;
/// XChaCha20-Poly1305's nonce: 24 bytes, enough that random nonces never repeat in practice
/// (unlike a 12-byte nonce, which a busy key could exhaust).
pub const NONCE_LEN: usize = 24;
/// Poly1305's tag.
pub const TAG_LEN: usize = 16;
/// What sealing adds to a plaintext: the version byte, the nonce and the tag.
pub const SEALED_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// Encrypts and authenticates `plaintext` under `key`, binding `aad` (associated data, not
/// stored: the same bytes must be given to [`open`]). The result is
/// `SEALED_VERSION (1) | nonce (24) | ciphertext (len of plaintext) | tag (16)`, with a fresh
/// random nonce each call.
///
/// # Panics
/// When the OS RNG fails, as [`DataKey::generate`].
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    os_random(&mut nonce);
    seal_with_nonce(key, aad, plaintext, &nonce)
}

/// [`seal`] with the nonce derived from the key, the associated data and the plaintext (a
/// synthetic nonce, as in SIV modes), so that sealing the same plaintext at the same place
/// twice gives the same bytes. An append log needs this: a retried append must carry the
/// bytes of the first one to be recognised as the same event. What it reveals is only that two
/// sealed blobs with the same associated data hold the same plaintext; a nonce never repeats
/// for different plaintexts (that would take a BLAKE3 collision). The output opens with
/// [`open`] like any other.
pub fn seal_deterministic(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    // A key of its own for the nonces, so that the encryption key is used for nothing else.
    let nonce_key = blake3::derive_key("keten-keys 2026-11 synthetic nonce", key.expose_bytes());
    let mut h = blake3::Hasher::new_keyed(&nonce_key);
    h.update(&(aad.len() as u64).to_le_bytes());
    h.update(aad);
    h.update(plaintext);
    let mut nonce = [0u8; NONCE_LEN];
    h.finalize_xof().fill(&mut nonce);
    seal_with_nonce(key, aad, plaintext, &nonce)
}

fn seal_with_nonce(
    key: &DataKey,
    aad: &[u8],
    plaintext: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEALED_OVERHEAD + plaintext.len());
    out.push(SEALED_VERSION);
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let (cipher, nonce) = xchacha(key, nonce);
    let tag = cipher
        .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut out[1 + NONCE_LEN..])
        // Only fails for plaintexts beyond 256 GiB, which nothing here makes.
        .expect("plaintext too long for ChaCha20-Poly1305");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Checks and decrypts what [`seal`] made with the same key and associated data. Anything else
/// (another key, other associated data, any changed byte) is [`KeyError::Unauthentic`];
/// something too short or of another version is [`KeyError::NotSealed`].
pub fn open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
    if sealed.len() < SEALED_OVERHEAD {
        return Err(KeyError::NotSealed {
            reason: format!(
                "{} bytes, shorter than the {SEALED_OVERHEAD}-byte minimum",
                sealed.len()
            ),
        });
    }
    if sealed[0] != SEALED_VERSION {
        return Err(KeyError::NotSealed {
            reason: format!(
                "format byte 0x{:02x}, expected 0x{SEALED_VERSION:02x}",
                sealed[0]
            ),
        });
    }
    let nonce: &[u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().expect("24 bytes");
    let (cipher, nonce) = xchacha(key, nonce);
    let mut plain = sealed[1 + NONCE_LEN..].to_vec();
    let opened = cipher
        .open_in_place(nonce, Aad::from(aad), &mut plain)
        .map(|p| p.len());
    match opened {
        Ok(len) => {
            plain.truncate(len);
            Ok(plain)
        }
        Err(_) => {
            // ring decrypts before it compares the tag: what failed to authenticate is not
            // left behind, not even in freed memory.
            plain.zeroize();
            Err(KeyError::Unauthentic)
        }
    }
}

/// Whether `bytes` look sealed: long enough and starting with [`SEALED_VERSION`]. A cheap
/// test to tell sealed payloads from plaintext JSON ones (see [`SEALED_VERSION`] for why that
/// is unambiguous); only [`open`] proves anything.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.len() >= SEALED_OVERHEAD && bytes[0] == SEALED_VERSION
}

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) as ChaCha20-Poly1305 (RFC 8439) under a
/// subkey: HChaCha20 of the key and the nonce's first 16 bytes is the subkey, and four zero
/// bytes followed by the nonce's last 8 are the 12-byte nonce. The subkey opens only what was
/// sealed with this nonce, one event; our copy of it is wiped, ring's is not (it offers no way).
fn xchacha(key: &DataKey, nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
    let subkey = Zeroizing::new(<[u8; 32]>::from(chacha20::hchacha::<U10>(
        GenericArray::from_slice(key.expose_bytes()),
        GenericArray::from_slice(&nonce[..16]),
    )));
    let cipher = LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, &subkey[..]).expect("a 32-byte ChaCha20 key"),
    );
    let mut short = [0u8; 12];
    short[4..].copy_from_slice(&nonce[16..]);
    (cipher, Nonce::assume_unique_for_key(short))
}

#[cfg(test)]
mod deterministic_tests {
    use super::*;

    #[test]
    fn deterministic_sealing_repeats_only_for_the_same_place_and_plaintext() {
        let key = DataKey::generate();
        let a = seal_deterministic(&key, b"family-a\0id1", b"{\"x\":1}");
        assert_eq!(a, seal_deterministic(&key, b"family-a\0id1", b"{\"x\":1}"));
        assert_ne!(a, seal_deterministic(&key, b"family-a\0id1", b"{\"x\":2}"));
        assert_ne!(a, seal_deterministic(&key, b"family-a\0id2", b"{\"x\":1}"));
        assert_ne!(
            a,
            seal_deterministic(&DataKey::generate(), b"family-a\0id1", b"{\"x\":1}")
        );
        assert_eq!(open(&key, b"family-a\0id1", &a).unwrap(), b"{\"x\":1}");
        assert!(open(&key, b"family-a\0id2", &a).is_err());
    }
}
