//! Checkpoint notes and key files.

use keten_log::CommitTime;
use keten_proof::{
    Checkpoint, SignedCheckpoint, SigningKey, hash_leaf_bytes, key_id, load_signing_key,
    load_verifying_key, note_verifier_key, parse_verifying_key, save_signing_key,
    save_verifying_key, signing_key_from_pem, signing_key_to_pem, to_hex, verifying_key_to_pem,
};

fn signed() -> (SigningKey, SignedCheckpoint) {
    let key = SigningKey::from_bytes(&[9; 32]);
    let cp = Checkpoint::new(
        "keten.test/log",
        1234,
        hash_leaf_bytes(b"x"),
        CommitTime(1_764_000_000_123_456),
    );
    (key.clone(), cp.sign(&key).unwrap())
}

#[test]
fn a_note_round_trips_and_verifies() {
    let (key, signed) = signed();
    let note = signed.to_note();
    let lines: Vec<&str> = note.split('\n').collect();
    assert_eq!(lines[0], "keten.test/log");
    assert_eq!(lines[1], "1234");
    assert_eq!(lines[3], "time 1764000000123456");
    assert_eq!(lines[4], "");
    assert!(lines[5].starts_with("\u{2014} keten.test/log "));
    assert_eq!(lines[6], "");
    let back = SignedCheckpoint::from_note(&note).unwrap();
    assert_eq!(back, signed);
    back.verify(&key.verifying_key()).unwrap();
    // The signature line's first four bytes are the key id of the origin and key.
    assert_eq!(back.key_id, key_id("keten.test/log", &key.verifying_key()));
    let vkey = note_verifier_key("keten.test/log", &key.verifying_key());
    assert!(
        vkey.starts_with(&format!("keten.test/log+{}+", to_hex(&back.key_id))),
        "{vkey}"
    );
}

#[test]
fn a_changed_or_non_canonical_note_is_refused() {
    let (key, signed) = signed();
    let note = signed.to_note();
    for bad in [
        note.replace("1234", "01234"),
        note.replace("1234", "1235"),
        note.replace("time ", "time  "),
        note.replace("\n\n", "\n"),
        note.replace('\u{2014}', "-"),
        note.replace("keten.test/log ", "other "),
        format!("{note}\u{2014} keten.test/log AAAA\n"),
        note.trim_end().to_owned(),
    ] {
        let verdict =
            SignedCheckpoint::from_note(&bad).and_then(|s| s.verify(&key.verifying_key()));
        assert!(verdict.is_err(), "accepted:\n{bad}");
    }
    for origin in ["", "has space", "a+b", "tab\there"] {
        assert!(
            Checkpoint::new(origin, 1, [0; 32], CommitTime(0))
                .sign(&key)
                .is_err()
        );
    }
}

#[test]
fn pem_keys_round_trip_and_read_openssl_output() {
    let key = SigningKey::from_bytes(&[7; 32]);
    assert_eq!(
        signing_key_from_pem(&signing_key_to_pem(&key)).unwrap(),
        key
    );
    let public = key.verifying_key();
    assert_eq!(
        parse_verifying_key(&verifying_key_to_pem(&public)).unwrap(),
        public
    );
    assert_eq!(
        parse_verifying_key(&to_hex(public.as_bytes())).unwrap(),
        public
    );

    // Made by `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` (OpenSSL 3).
    let openssl_private = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEINFVdflGCmd1x5Y3yRmQK+RrZoQN8eOTYuxd0KvxulYU\n\
        -----END PRIVATE KEY-----\n";
    let openssl_public = "-----BEGIN PUBLIC KEY-----\n\
        MCowBQYDK2VwAyEAPZO/U6x0n1aAGBTotBPzw7ON9vlNFkfzCv4odVf3xco=\n\
        -----END PUBLIC KEY-----\n";
    let key = signing_key_from_pem(openssl_private).unwrap();
    assert_eq!(
        key.verifying_key(),
        parse_verifying_key(openssl_public).unwrap()
    );
    assert_eq!(signing_key_to_pem(&key), openssl_private);
    assert_eq!(verifying_key_to_pem(&key.verifying_key()), openssl_public);
    // The raw key in base64, as a one-line configuration value.
    assert_eq!(
        parse_verifying_key("PZO/U6x0n1aAGBTotBPzw7ON9vlNFkfzCv4odVf3xco=").unwrap(),
        key.verifying_key()
    );

    assert!(parse_verifying_key("not a key").is_err());
    assert!(signing_key_from_pem(openssl_public).is_err());
}

#[test]
fn key_files_save_and_load_and_a_key_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let key = keten_proof::generate_signing_key().unwrap();
    let private = dir.path().join("log.key");
    let public = dir.path().join("log.pub");
    save_signing_key(&private, &key).unwrap();
    save_verifying_key(&public, &key.verifying_key()).unwrap();
    assert_eq!(load_signing_key(&private).unwrap(), key);
    assert_eq!(load_verifying_key(&public).unwrap(), key.verifying_key());
    assert!(save_signing_key(&private, &SigningKey::from_bytes(&[1; 32])).is_err());
    assert_eq!(load_signing_key(&private).unwrap(), key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_later_checkpoint_extends_an_earlier_one_and_a_rewritten_log_does_not() {
    let key = SigningKey::from_bytes(&[3; 32]);
    let mut tree = keten_proof::TreeBuilder::new();
    let mut forged = keten_proof::TreeBuilder::new();
    for i in 0u32..50 {
        tree.push_leaf_hash(hash_leaf_bytes(&i.to_be_bytes()));
        let rewritten = if i == 17 { 1017 } else { i };
        forged.push_leaf_hash(hash_leaf_bytes(&rewritten.to_be_bytes()));
    }
    let sign = |t: &keten_proof::TreeBuilder, size: u64| {
        Checkpoint::new(
            "keten.test/log",
            size,
            t.root_at(size).unwrap(),
            CommitTime(size),
        )
        .sign(&key)
        .unwrap()
    };
    let old = sign(&tree, 20);
    let new = sign(&tree, 50);
    let proof = tree.consistency_proof(20, 50).unwrap();
    keten_proof::verify_checkpoint_consistency(&old, &new, &proof, &key.verifying_key()).unwrap();

    let rewritten = sign(&forged, 50);
    let proof = forged.consistency_proof(20, 50).unwrap();
    let err =
        keten_proof::verify_checkpoint_consistency(&old, &rewritten, &proof, &key.verifying_key())
            .unwrap_err();
    assert!(err.to_string().contains("earlier log was changed"), "{err}");

    let other = SigningKey::from_bytes(&[4; 32]);
    assert!(
        keten_proof::verify_checkpoint_consistency(&old, &new, &proof, &other.verifying_key())
            .is_err()
    );
}
