//! The file key store: durable get-or-create, idempotent destroy with a tombstone that survives
//! reopening, refusal to create a destroyed key, no copy of a destroyed key's bytes in any file,
//! and refusal to open a directory with a damaged or foreign file. The key table (`keys.tbl`,
//! laid out as `src/file.rs` documents: a 512-byte header, then 256-byte slots) is damaged here
//! with plain file writes; stores of the earlier layout (one `<id>.key` per key) are made by
//! hand from `record`.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use keten_keys::{
    DataKey, FileKeyStore, KeyError, KeyId, KeyState, KeyStore, Keyring, open, record, seal,
};

/// The table's header length and slot length (the format in `src/file.rs`).
const HEADER: u64 = 512;
const SLOT: u64 = 256;

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

/// Every offset in `path` where `needle` begins.
fn occurrences(path: &Path, needle: &[u8]) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i as u64)
        .collect()
}

/// The offset of the one table slot that holds `key`.
fn slot_of(table: &Path, key: &[u8]) -> u64 {
    let found = occurrences(table, key);
    assert_eq!(found.len(), 1, "the key is in {} slots", found.len());
    HEADER + (found[0] - HEADER) / SLOT * SLOT
}

/// Overwrites bytes of `path` at `offset`, as a disk or a crash might.
fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

fn read_at(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    std::fs::read(path).unwrap()[offset as usize..(offset + len) as usize].to_vec()
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
        // The key is on disk, raw, once, in the table.
        assert_eq!(
            files_containing(dir.path(), k.expose_bytes()),
            vec![dir.path().join("keys.tbl")]
        );
        assert_eq!(
            occurrences(&dir.path().join("keys.tbl"), k.expose_bytes()).len(),
            1
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
    // What a crash after the tombstone's rename and before the slot's zeros were written
    // leaves: a tombstone and a live slot, and a temporary file of another write.
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
    std::fs::copy(dir.path().join("keys.tbl"), dir.path().join("x.key.tmp")).unwrap();
    assert_eq!(files_containing(dir.path(), k.expose_bytes()).len(), 2);

    let store = FileKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(
        store.get(&a).await.unwrap(),
        KeyState::Destroyed { destroyed_at: t(7) }
    );
    assert!(files_containing(dir.path(), k.expose_bytes()).is_empty());
    assert!(!dir.path().join("x.key.tmp").exists());
    // The zeroed slot is free again: the next create takes it.
    let b = store.create(&id("family-b")).await.unwrap();
    assert_eq!(
        occurrences(&dir.path().join("keys.tbl"), b.expose_bytes()),
        vec![HEADER + 12],
        "the freed slot 0 was not reused"
    );
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
    // A legacy key file whose bytes were flipped: its checksum fails.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = record::encode_key(&DataKey::generate()).to_vec();
    bytes[20] ^= 0x40;
    std::fs::write(dir.path().join("family-c.key"), bytes).unwrap();
    let e = FileKeyStore::open(dir.path()).await.err().expect("opened");
    assert!(e.to_string().contains("family-c.key"), "{e}");
    // A table whose header was changed: refused, naming it.
    let dir = tempfile::tempdir().unwrap();
    drop(FileKeyStore::open(dir.path()).await.unwrap());
    let table = dir.path().join("keys.tbl");
    patch(&table, 12, &[0x80]);
    let e = FileKeyStore::open(dir.path()).await.err().expect("opened");
    assert!(
        e.to_string().contains("keys.tbl") && e.to_string().contains("offset 0"),
        "{e}"
    );
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
    assert_eq!(mode(&dir.join("keys.tbl")), 0o600);
}

/// Many creates at once: each returns only once durable, each key in a slot of its own, and
/// every one is there after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_many_ids_are_all_durable_in_distinct_slots() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKeyStore::open(dir.path()).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let a = id(&format!("family-{i}"));
                let k = store.create(&a).await.unwrap();
                (a, k)
            })
        })
        .collect();
    let mut made = Vec::new();
    for t in tasks {
        made.push(t.await.unwrap());
    }
    drop(store);
    let table = dir.path().join("keys.tbl");
    let mut slots: Vec<u64> = made
        .iter()
        .map(|(_, k)| slot_of(&table, k.expose_bytes()))
        .collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), made.len(), "two keys share a slot");

    let store = FileKeyStore::open(dir.path()).await.unwrap();
    made.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<_> = made
        .into_iter()
        .map(|(a, k)| (a, KeyState::Live(k)))
        .collect();
    assert_eq!(store.load_all().await.unwrap(), want);
}

/// What a crash mid-`pwrite` can leave: the head of a record with zeros after it, or any
/// bytes. Open zeroes such slots (they were never acknowledged), keeps the good ones, and the
/// slots are used again.
#[tokio::test]
async fn a_torn_slot_is_zeroed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("keys.tbl");
    let (a, ka) = (id("family-a"), {
        let store = FileKeyStore::open(dir.path()).await.unwrap();
        store.create(&id("family-a")).await.unwrap()
    });
    let slot_a = slot_of(&table, ka.expose_bytes());
    let whole = read_at(&table, slot_a, SLOT);
    // The slots after the key's hold keys made ahead; past them, in zeroed slots: the first
    // 100 bytes of a record (id and key included), the rest never written, and garbage.
    let mut torn = slot_a + SLOT;
    while read_at(&table, torn, SLOT).iter().any(|&b| b != 0) {
        torn += SLOT;
    }
    let garbage = torn + 4 * SLOT;
    patch(&table, torn, &whole[..100]);
    patch(&table, garbage, &[0xA5; 77]);
    assert_eq!(occurrences(&table, ka.expose_bytes()).len(), 2);

    let store = FileKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(store.get(&a).await.unwrap(), KeyState::Live(ka.clone()));
    assert_eq!(read_at(&table, torn, SLOT), vec![0; SLOT as usize]);
    assert_eq!(read_at(&table, garbage, SLOT), vec![0; SLOT as usize]);
    assert_eq!(occurrences(&table, ka.expose_bytes()), vec![slot_a + 12]);
    let kb = store.create(&id("family-b")).await.unwrap();
    assert_eq!(
        slot_of(&table, kb.expose_bytes()),
        torn,
        "the zeroed slot is free"
    );
}

/// A copy of a live slot elsewhere in the table is damage this store never writes: open
/// refuses, naming the file and both offsets.
#[tokio::test]
async fn two_live_slots_of_one_id_are_refused_naming_the_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("keys.tbl");
    let k = {
        let store = FileKeyStore::open(dir.path()).await.unwrap();
        store.create(&id("family-z")).await.unwrap();
        store.create(&id("family-a")).await.unwrap()
    };
    let slot = slot_of(&table, k.expose_bytes());
    let copy_at = slot + 3 * SLOT;
    patch(&table, copy_at, &read_at(&table, slot, SLOT));
    match FileKeyStore::open(dir.path()).await {
        Err(e @ KeyError::Malformed { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("keys.tbl"), "{msg}");
            assert!(msg.contains(&format!("offset {slot}")), "{msg}");
            assert!(msg.contains(&format!("offset {copy_at}")), "{msg}");
            assert!(msg.contains("family-a"), "{msg}");
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("opened a table with two live slots of one id"),
    }
}

/// A store of the earlier layout: one `<id>.key` file per key, tombstones beside them, and a
/// destroy that a crash interrupted (a key file beside its tombstone). It opens; its keys are
/// read and destroyed the old way; new keys go to the table; no destroyed key's bytes remain.
#[tokio::test]
async fn a_store_of_key_files_still_opens_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let (old, gone, half) = (id("family-old"), id("family-gone"), id("family-half"));
    let (k_old, k_half) = (DataKey::generate(), DataKey::generate());
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("family-old.key"), record::encode_key(&k_old)).unwrap();
    std::fs::write(
        path("family-gone.destroyed"),
        record::encode_tombstone(t(3)),
    )
    .unwrap();
    std::fs::write(path("family-half.key"), record::encode_key(&k_half)).unwrap();
    std::fs::write(
        path("family-half.destroyed"),
        record::encode_tombstone(t(4)),
    )
    .unwrap();
    std::fs::write(path("LOCK"), b"").unwrap();

    let store = FileKeyStore::open(dir.path()).await.unwrap();
    assert!(files_containing(dir.path(), k_half.expose_bytes()).is_empty());
    assert!(!path("family-half.key").exists());
    assert_eq!(
        store.get(&old).await.unwrap(),
        KeyState::Live(k_old.clone())
    );
    assert_eq!(
        store.create(&old).await.unwrap(),
        k_old,
        "a new key for a legacy id"
    );
    let new = id("family-new");
    let k_new = store.create(&new).await.unwrap();
    assert_eq!(
        files_containing(dir.path(), k_new.expose_bytes()),
        vec![path("keys.tbl")]
    );
    assert_eq!(
        store.load_all().await.unwrap(),
        vec![
            (gone.clone(), KeyState::Destroyed { destroyed_at: t(3) }),
            (half.clone(), KeyState::Destroyed { destroyed_at: t(4) }),
            (new.clone(), KeyState::Live(k_new.clone())),
            (old.clone(), KeyState::Live(k_old.clone())),
        ]
    );
    store.destroy(&old, t(9)).await.unwrap();
    assert!(!path("family-old.key").exists());
    assert!(files_containing(dir.path(), k_old.expose_bytes()).is_empty());
    drop(store);

    let store = FileKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(
        store.get(&old).await.unwrap(),
        KeyState::Destroyed { destroyed_at: t(9) }
    );
    assert_eq!(store.get(&new).await.unwrap(), KeyState::Live(k_new));
    assert!(matches!(
        store.create(&gone).await,
        Err(KeyError::Destroyed { .. })
    ));
}

/// A legacy key file and a table slot for one id: damage (a key is written in one place),
/// refused naming the file and the slot's offset.
#[tokio::test]
async fn a_key_both_in_a_file_and_in_the_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let k = {
        let store = FileKeyStore::open(dir.path()).await.unwrap();
        store.create(&id("family-a")).await.unwrap()
    };
    let slot = slot_of(&dir.path().join("keys.tbl"), k.expose_bytes());
    std::fs::write(
        dir.path().join("family-a.key"),
        record::encode_key(&DataKey::generate()),
    )
    .unwrap();
    let e = FileKeyStore::open(dir.path()).await.err().expect("opened");
    let msg = e.to_string();
    assert!(msg.contains("family-a.key"), "{msg}");
    assert!(msg.contains(&format!("offset {slot}")), "{msg}");
}

/// Destroying keys in the table and re-creating others in their slots: after it, none of the
/// destroyed keys' bytes is in any file of the directory.
#[tokio::test]
async fn destroyed_keys_leave_no_bytes_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKeyStore::open(dir.path()).await.unwrap();
    let mut destroyed = Vec::new();
    let mut kept = Vec::new();
    for i in 0..40 {
        let a = id(&format!("family-{i}"));
        let k = store.create(&a).await.unwrap();
        if i % 3 == 0 {
            store.destroy(&a, t(i)).await.unwrap();
            destroyed.push(k);
        } else {
            kept.push(k);
        }
    }
    for k in &destroyed {
        assert!(files_containing(dir.path(), k.expose_bytes()).is_empty());
    }
    for k in &kept {
        assert_eq!(files_containing(dir.path(), k.expose_bytes()).len(), 1);
    }
}

/// A bit flipped in a live key's slot after it was acknowledged is damage, not a torn write:
/// zeroing it would destroy the family's key, so open refuses, naming the file and the offset,
/// and leaves the bytes as they are.
#[tokio::test]
async fn a_damaged_live_slot_is_refused_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("keys.tbl");
    let k = {
        let store = FileKeyStore::open(dir.path()).await.unwrap();
        store.create(&id("family-d")).await.unwrap()
    };
    let at = slot_of(&table, k.expose_bytes());
    let mut whole = read_at(&table, at, SLOT);
    whole[40] ^= 0x10;
    patch(&table, at, &whole);

    let e = FileKeyStore::open(dir.path())
        .await
        .err()
        .expect("a damaged slot must refuse to open")
        .to_string();
    assert!(e.contains("keys.tbl"), "{e}");
    assert!(e.contains(&format!("offset {at}")), "{e}");
    assert!(e.contains("checksum"), "{e}");
    assert_eq!(
        read_at(&table, at, SLOT),
        whole,
        "the damaged bytes are left as found"
    );
}

/// Through the store's API: a create binds a key made ahead; a power cut that loses the binding
/// (the slot as the refill's flush left it: the key, no id) leaves the key as a leftover that
/// no create hands out. `adopt` binds it again only for data it opens, never for an erased id,
/// and durably; `retire_leftovers` zeroes the others.
#[tokio::test]
async fn a_lost_binding_is_adopted_through_the_store_and_an_erased_id_adopts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("keys.tbl");
    let (a, b) = (id("family-a"), id("family-b"));
    let kb = {
        let store = FileKeyStore::open(dir.path()).await.unwrap();
        assert_eq!(store.leftovers().await.unwrap(), 0);
        store.create(&a).await.unwrap();
        store.create(&b).await.unwrap()
    };
    let at = slot_of(&table, kb.expose_bytes());
    let mut slot = read_at(&table, at, SLOT);
    slot[9] = 0;
    slot[44..44 + b.as_str().len()].fill(0);
    let crc = crc32c::crc32c(&slot[..252]);
    slot[252..].copy_from_slice(&crc.to_le_bytes());
    patch(&table, at, &slot);

    let store = FileKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(store.get(&b).await.unwrap(), KeyState::Missing);
    let left = store.leftovers().await.unwrap();
    assert!(left > 1, "b's key and the unused ones: {left}");
    let kc = store.create(&id("family-c")).await.unwrap();
    assert_ne!(kc, kb, "a leftover was handed out");
    store.destroy(&a, t(9)).await.unwrap();
    assert_eq!(store.adopt(&a, Box::new(|_| true)).await.unwrap(), None);
    assert_eq!(store.adopt(&b, Box::new(|_| false)).await.unwrap(), None);
    let proof = kb.clone();
    let adopted = store
        .adopt(&b, Box::new(move |k| *k == proof))
        .await
        .unwrap();
    assert_eq!(adopted, Some(kb.clone()));
    assert_eq!(store.leftovers().await.unwrap(), left - 1);
    assert_eq!(store.retire_leftovers().await.unwrap(), left - 1);
    assert_eq!(store.leftovers().await.unwrap(), 0);
    assert_eq!(occurrences(&table, kb.expose_bytes()), vec![at + 12]);
    drop(store);

    let store = FileKeyStore::open(dir.path()).await.unwrap();
    assert_eq!(store.get(&b).await.unwrap(), KeyState::Live(kb));
    assert!(matches!(
        store.get(&a).await.unwrap(),
        KeyState::Destroyed { .. }
    ));
}
