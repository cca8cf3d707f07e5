//! The file key store: durable get-or-create, idempotent destroy with a tombstone that survives
//! reopening, refusal to create a destroyed key, no copy of a destroyed key's bytes in any file,
//! and refusal to open a directory with a damaged or foreign file.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use keten_keys::{FileKeyStore, KeyError, KeyId, KeyState, KeyStore, Keyring, open, seal};

fn id(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

fn t(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap()
}

/// Every regular file under `dir`, recursively, with its bytes.
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(all_files(&e.path()));
        } else if ft.is_file() {
            out.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    out
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(p, _)| p)
        .collect()
}

#[tokio::test]
async fn create_is_get_or_create_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let a = id("family-a");
    let k = {
        let store = FileKeyStore::open(dir.path()).await.unwrap();
        assert_eq!(store.get(&a).await.unwrap(), KeyState::Missing);
        let k = store.create(&a).await.unwrap();
        assert_eq!(
            store.create(&a).await.unwrap(),
            k,
            "a second create made a new key"
        );
        assert_eq!(store.get(&a).await.unwrap(), KeyState::Live(k.clone()));
        // The key is on disk, raw, in its own file.
        assert_eq!(
            files_containing(dir.path(), k.expose_bytes()),
            vec![dir.path().join("family-a.key")]
        );
        k
    };
    let store = FileKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(
        store.create(&a).await.unwrap(),
        k,
        "reopened store made a new key"
    );
    let b = store.create(&id("family-b")).await.unwrap();
    assert_ne!(b, k);
    assert_eq!(
        store.load_all().await.unwrap(),
        vec![(a, KeyState::Live(k)), (id("family-b"), KeyState::Live(b))]
    );
}

#[tokio::test]
async fn concurrent_creates_of_one_id_get_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKeyStore::open(dir.path()).await.unwrap();
    let a = id("family-race");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, a) = (store.clone(), a.clone());
            tokio::spawn(async move { store.create(&a).await.unwrap() })
        })
        .collect();
    let mut keys = Vec::new();
    for t in tasks {
        keys.push(t.await.unwrap());
    }
    assert!(keys.iter().all(|k| *k == keys[0]));
}

#[tokio::test]
async fn destroy_leaves_a_tombstone_and_no_key_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, other) = (id("family-a"), id("family-other"));
    let when = t(1_800_000_000_000_001);
    let (k, kept) = {
        let store = FileKeyStore::open(dir.path()).await.unwrap();
        let k = store.create(&a).await.unwrap();
        let kept = store.create(&other).await.unwrap();
        store.destroy(&a, when).await.unwrap();
        let gone = KeyState::Destroyed { destroyed_at: when };
        assert_eq!(store.get(&a).await.unwrap(), gone);
        // Idempotent, and the first time is the one remembered.
        store.destroy(&a, t(1_900_000_000_000_000)).await.unwrap();
        assert_eq!(store.get(&a).await.unwrap(), gone);
        match store.create(&a).await {
            Err(KeyError::Destroyed { id, destroyed_at }) => {
                assert_eq!((id, destroyed_at), (a.clone(), when));
            }
            other => panic!("create after destroy: {other:?}"),
        }
        (k, kept)
    };
    assert_eq!(
        files_containing(dir.path(), k.expose_bytes()),
        Vec::<std::path::PathBuf>::new(),
        "the destroyed key's bytes are still on disk"
    );
    // The other key is untouched (and the search would have found a key: it finds this one).
    assert_eq!(files_containing(dir.path(), kept.expose_bytes()).len(), 1);

    let store = FileKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(
        store.get(&a).await.unwrap(),
        KeyState::Destroyed { destroyed_at: when }
    );
    assert!(matches!(
        store.create(&a).await,
        Err(KeyError::Destroyed { .. })
    ));
    assert_eq!(
        store.load_all().await.unwrap(),
        vec![
            (a, KeyState::Destroyed { destroyed_at: when }),
            (other, KeyState::Live(kept))
        ]
    );
}

#[tokio::test]
async fn destroying_an_unknown_id_keeps_it_from_being_created() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKeyStore::open(dir.path()).await.unwrap();
    let a = id("never-created");
    store.destroy(&a, t(5)).await.unwrap();
    assert_eq!(
        store.get(&a).await.unwrap(),
        KeyState::Destroyed { destroyed_at: t(5) }
    );
    assert!(matches!(
        store.create(&a).await,
        Err(KeyError::Destroyed { .. })
    ));
}

#[tokio::test]
async fn a_crash_mid_destroy_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let a = id("family-a");
    let k = {
        let store = FileKeyStore::open(dir.path()).await.unwrap();
        store.create(&a).await.unwrap()
    };
    // What a crash after the tombstone's rename and before the key's removal leaves: both
    // files, and a temporary file of another write.
    let tomb_dir = tempfile::tempdir().unwrap();
    {
        let other = FileKeyStore::open(tomb_dir.path()).await.unwrap();
        other.destroy(&a, t(7)).await.unwrap();
    }
    std::fs::copy(
        tomb_dir.path().join("family-a.destroyed"),
        dir.path().join("family-a.destroyed"),
    )
    .unwrap();
    std::fs::copy(
        dir.path().join("family-a.key"),
        dir.path().join("x.key.tmp"),
    )
    .unwrap();
    assert_eq!(files_containing(dir.path(), k.expose_bytes()).len(), 2);

    let store = FileKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(
        store.get(&a).await.unwrap(),
        KeyState::Destroyed { destroyed_at: t(7) }
    );
    assert!(files_containing(dir.path(), k.expose_bytes()).is_empty());
    assert!(!dir.path().join("x.key.tmp").exists());
}

#[tokio::test]
async fn open_refuses_a_damaged_or_foreign_file_naming_it() {
    for (name, bytes) in [
        ("family-a.key", &b"not a key"[..]),
        ("family-a.destroyed", b"KETENTMB\x01short"),
        ("notes.txt", b"hello"),
        (".hidden.key", b""),
    ] {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = FileKeyStore::open(dir.path()).await.unwrap();
            store.create(&id("family-b")).await.unwrap();
        }
        std::fs::write(dir.path().join(name), bytes).unwrap();
        match FileKeyStore::open(dir.path()).await {
            Err(e @ KeyError::Malformed { .. }) => {
                let KeyError::Malformed { path, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(path, &dir.path().join(name));
                assert!(e.to_string().contains(name), "{e}");
            }
            Err(e) => panic!("{name}: wrong error {e}"),
            Ok(_) => panic!("{name}: opened a directory with a bad file"),
        }
    }
    // A key file whose bytes were flipped: its checksum fails.
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FileKeyStore::open(dir.path()).await.unwrap();
        store.create(&id("family-c")).await.unwrap();
    }
    let path = dir.path().join("family-c.key");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let e = FileKeyStore::open(dir.path()).await.err().expect("opened");
    assert!(e.to_string().contains("family-c.key"), "{e}");
}

#[tokio::test]
async fn a_second_open_of_one_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = FileKeyStore::open(dir.path()).await.unwrap();
    assert!(matches!(
        FileKeyStore::open(dir.path()).await,
        Err(KeyError::Locked { .. })
    ));
}

#[tokio::test]
async fn keyring_caches_and_destroys_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileKeyStore::open(dir.path()).await.unwrap());
    let a = id("family-a");
    let pre = store.create(&a).await.unwrap();
    let ring = Keyring::load(store.clone()).await.unwrap();
    assert_eq!(
        ring.cached(&a),
        Some(KeyState::Live(pre.clone())),
        "load_all fills the cache"
    );

    let b = id("family-b");
    assert_eq!(ring.cached(&b), None);
    // Created behind the ring's back (another server): `key` finds it in the store.
    let kb = store.create(&b).await.unwrap();
    assert_eq!(ring.cached(&b), None);
    assert_eq!(ring.key(&b).await.unwrap(), KeyState::Live(kb.clone()));
    assert_eq!(ring.cached(&b), Some(KeyState::Live(kb.clone())));
    assert_eq!(ring.create(&b).await.unwrap(), kb);

    let c = id("family-c");
    assert_eq!(ring.key(&c).await.unwrap(), KeyState::Missing);
    assert_eq!(ring.cached(&c), None, "Missing is not cached");
    let kc = ring.create(&c).await.unwrap();
    assert_eq!(store.get(&c).await.unwrap(), KeyState::Live(kc.clone()));

    let sealed = seal(&kc, b"family-c/1", b"{\"x\":1}");
    let clone = ring.clone();
    clone.destroy(&c, t(42)).await.unwrap();
    let gone = KeyState::Destroyed {
        destroyed_at: t(42),
    };
    assert_eq!(
        ring.cached(&c),
        Some(gone.clone()),
        "clones share the cache"
    );
    assert_eq!(store.get(&c).await.unwrap(), gone);
    assert!(matches!(
        ring.create(&c).await,
        Err(KeyError::Destroyed { .. })
    ));
    // Only the caller's own copy can still open it; the ring has none to give.
    assert!(open(&kc, b"family-c/1", &sealed).is_ok());
    assert!(!matches!(ring.key(&c).await.unwrap(), KeyState::Live(_)));

    fn is_send_sync<T: Send + Sync + Clone>() {}
    is_send_sync::<Keyring>();
}

#[tokio::test]
async fn only_the_owner_can_read_the_keys() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("keys");
    let store = FileKeyStore::open(&dir).await.unwrap();
    store.create(&id("family-a")).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("family-a.key")), 0o600);
}
