//! Sealing: what is sealed opens with the same key and associated data, and anything else
//! (another key, other associated data, any changed byte, a cut) fails; never garbage.

use keten_keys::{DataKey, KeyError, SEALED_OVERHEAD, SEALED_VERSION, is_sealed, open, seal};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(plain in proptest::collection::vec(any::<u8>(), 0..2048),
                  aad in proptest::collection::vec(any::<u8>(), 0..64)) {
        let k = DataKey::generate();
        let sealed = seal(&k, &aad, &plain);
        prop_assert_eq!(sealed.len(), plain.len() + SEALED_OVERHEAD);
        prop_assert_eq!(sealed[0], SEALED_VERSION);
        prop_assert!(is_sealed(&sealed));
        prop_assert_eq!(open(&k, &aad, &sealed).unwrap(), plain);
    }

    #[test]
    fn any_flipped_bit_fails(plain in proptest::collection::vec(any::<u8>(), 0..256),
                             pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let k = DataKey::generate();
        let mut sealed = seal(&k, b"aad", &plain);
        let i = pos.index(sealed.len());
        sealed[i] ^= 1 << bit;
        let r = open(&k, b"aad", &sealed);
        // Byte 0 is the version: a changed one is "not sealed"; any other is unauthentic.
        if i == 0 {
            prop_assert!(matches!(r, Err(KeyError::NotSealed { .. })), "{:?}", r);
        } else {
            prop_assert!(matches!(r, Err(KeyError::Unauthentic)), "{:?}", r);
        }
    }

    #[test]
    fn wrong_aad_or_key_fails(plain in proptest::collection::vec(any::<u8>(), 0..256),
                              aad in proptest::collection::vec(any::<u8>(), 0..32),
                              other in proptest::collection::vec(any::<u8>(), 0..32)) {
        prop_assume!(aad != other);
        let k = DataKey::generate();
        let sealed = seal(&k, &aad, &plain);
        prop_assert!(matches!(open(&k, &other, &sealed), Err(KeyError::Unauthentic)));
        prop_assert!(matches!(open(&DataKey::generate(), &aad, &sealed), Err(KeyError::Unauthentic)));
    }

    /// The bytes are XChaCha20-Poly1305's as RustCrypto's reference implementation makes them
    /// (the crate keten sealed with before it used ring's ChaCha20-Poly1305 under an HChaCha20
    /// subkey): what either seals, the other opens, so payloads sealed before the change still
    /// open and nothing about the format changed.
    #[test]
    fn the_bytes_are_the_reference_xchacha20_poly1305(
        key in any::<[u8; 32]>(),
        plain in proptest::collection::vec(any::<u8>(), 0..1024),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        nonce in any::<[u8; 24]>(),
    ) {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let reference = chacha20poly1305::XChaCha20Poly1305::new(&key.into());
        let k = DataKey::from_bytes(key);

        let ours = seal(&k, &aad, &plain);
        let theirs = reference
            .encrypt(ours[1..25].into(), Payload { msg: &plain, aad: &aad })
            .unwrap();
        prop_assert_eq!(&ours[25..], &theirs[..]);

        let mut sealed = vec![SEALED_VERSION];
        sealed.extend_from_slice(&nonce);
        sealed.extend(reference.encrypt(&nonce.into(), Payload { msg: &plain, aad: &aad }).unwrap());
        prop_assert_eq!(open(&k, &aad, &sealed).unwrap(), plain);
    }
}

#[test]
fn fresh_nonce_per_seal() {
    let k = DataKey::generate();
    let a = seal(&k, b"", b"same plaintext");
    let b = seal(&k, b"", b"same plaintext");
    assert_ne!(a[1..25], b[1..25], "two seals shared a nonce");
    assert_ne!(a, b);
}

#[test]
fn truncated_and_appended_fail() {
    let k = DataKey::generate();
    let sealed = seal(&k, b"x", b"hello");
    for n in 0..sealed.len() {
        assert!(open(&k, b"x", &sealed[..n]).is_err(), "cut to {n} opened");
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(matches!(
        open(&k, b"x", &longer),
        Err(KeyError::Unauthentic)
    ));
    assert!(matches!(
        open(&k, b"x", &sealed[..SEALED_OVERHEAD - 1]),
        Err(KeyError::NotSealed { .. })
    ));
}

#[test]
fn json_is_never_taken_for_sealed() {
    for json in [
        &b"{\"type\":\"FamilyRegistered\",\"padding\":\"..................................\"}"[..],
        b"[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23]",
        b"  \n\t{\"a\": \"whitespace first, then an object of some length\"}",
        b"\"a string that is long enough to be as long as a sealed blob\"",
    ] {
        assert!(!is_sealed(json), "{:?}", String::from_utf8_lossy(json));
    }
    // 0xC1 is never valid UTF-8, so no text at all starts with it.
    assert!(std::str::from_utf8(&[SEALED_VERSION, b'a']).is_err());
}

#[test]
fn debug_hides_the_key() {
    let k = DataKey::from_bytes([0xAB; 32]);
    let shown = format!("{k:?} {:?}", keten_keys::KeyState::Live(k.clone()));
    assert!(!shown.to_lowercase().contains("ab"), "{shown}");
    assert!(!shown.contains("171"), "{shown}");
}
