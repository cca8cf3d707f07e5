//! The embedded backend's key store: a directory of its own, the keys in one preallocated table
//! of fixed slots, a tombstone file per destroyed id.
//!
//! ```text
//! <dir>/LOCK              held (flock) by the one process that has the store open
//! <dir>/keys.tbl          the key table: a 512-byte header, then 256-byte slots
//! <dir>/<id>.destroyed    a tombstone (see `record`), 21 bytes
//! <dir>/<id>.key          a key record (see `record`), 45 bytes: only in stores made before
//!                         the table (2026-11); read and destroyed, never written any more
//! <dir>/*.tmp             a write in progress; removed (zeroed first) on open
//! ```
//!
//! # Keys made ahead: no flush on a create
//!
//! The table is made of zeros, in chunks of 4,096 slots (1 MiB) written and fsync'd before any
//! slot in them is used, so no write to it changes the directory, the file's size or its block
//! map. Keys are made ahead, 256 at a time: each written into a free slot as a pool record (a
//! key with no id), then one `fdatasync` of the table for all of them. A create takes a key
//! from this pool and writes its slot again with the id (one `pwrite` over one sector, on the
//! caller's thread), and returns without a flush of its own: the key itself was durable before
//! it was handed out, and the binding becomes durable with the table's next flush (the next
//! refill, destroy or adoption) or the kernel's writeback. When fewer than a quarter of the
//! pool is left, a create starts the next refill on a thread of its own; a create that finds
//! the pool empty waits for (or does) the refill. When fewer than a quarter of a chunk's slots
//! are left, the next chunk's growth starts on a thread of its own in the same way.
//!
//! What a crash can do, and why nothing is lost:
//! - A process crash loses nothing: the binding's `pwrite` is in the page cache.
//! - A power cut (or kernel crash) can lose bindings written since the last flush. The slot
//!   then holds the pool record it had, a key with no id, and the family's events, sealed with
//!   that key, are in the log. Open keeps every pool record as a *leftover*, never to be handed
//!   out again (a leftover may belong to such a family, and two families must never share a
//!   key). The server, before it takes calls, reads the first event of every family without
//!   a key: the sealed payload, authenticated together with its stream and event id, opens
//!   with its own key and no other, so it proves which leftover is that family's, and
//!   [`KeyStore::adopt`] binds it, durably. Then the server zeroes the other leftovers
//!   ([`KeyStore::retire_leftovers`]), so that no copy of a key survives that a later erasure
//!   would miss. The keys that a run made ahead and did not hand out are leftovers at the next
//!   open too, and are zeroed the same way.
//!
//! The first open of a directory makes the table (temporary file, fsync, rename, fsync of the
//! directory); a directory opened by this version cannot be opened by an older one, which
//! refuses the file it does not know (and, since 2026-11-26, the pool records in it).
//!
//! # The table, byte by byte
//!
//! All integers little-endian; CRC32C (Castagnoli) as the `crc32c` crate computes it.
//!
//! ```text
//! header, offset 0, 512 bytes (one sector):
//!   0    8    "KETENKTB"
//!   8    1    format, 0x01
//!   9    3    zero
//!   12   4    slot length, u32: 256
//!   16   4    crc32c of bytes 0..16, u32
//!   20   492  zero
//!
//! slot i, offset 512 + 256·i, 256 bytes (so no slot spans a 512-byte sector):
//!   empty: 256 zero bytes
//!   key (a pool record when n is 0: a key made ahead, bound to no id):
//!   0    8    "KETENKTS"
//!   8    1    format, 0x01
//!   9    1    n, the key id's length in bytes, 0..=128
//!   10   2    zero
//!   12   32   the key, raw
//!   44   n    the key id (ASCII, a valid KeyId)
//!   44+n 208-n zero
//!   252  4    crc32c of bytes 0..252, u32
//! ```
//!
//! The file's length is 512 + 256·k; a shorter tail than a slot (a growth a crash cut; growth
//! writes only zeros) is ignored and written over by the next growth.
//!
//! Why sectors: the table assumes, as the disk promises, that a 512-byte sector is written all
//! or nothing. A slot lies in one sector, which it shares with one other slot; writing it writes
//! the other slot's bytes again unchanged, so a power cut mid-write can tear only the slot being
//! written (caught by its checksum), never a neighbour that was already acknowledged.
//!
//! # Open
//!
//! Open refuses anything in the directory but the files above, naming the file, and refuses a
//! damaged tombstone, legacy key file or table header. In the table, a slot that has the shape
//! of a write cut short is a torn write that was never acknowledged: a record whose checksum
//! (its last four bytes) is still zeros (a create that did not return), or zeros over the head
//! of a record (a destroy, whose tombstone is durable first). Open zeroes it, logs it
//! (`tracing`, warn, with the offset) and goes on. A slot whose id has a tombstone is zeroed
//! too (a destroy a crash interrupted). Anything else that is not zeros nor a whole, readable
//! record is damage: a checksum present but wrong (a bit flipped after the key was
//! acknowledged), or a whole record of a format this version cannot read. It may hold a live
//! family's key, so open refuses, naming the file, the offset and why, rather than zero it. Two
//! live slots of one id, or a live slot beside a legacy `<id>.key`, are damage too: open
//! refuses, naming the file and the offsets.
//!
//! # Destroy
//!
//! Destroy writes the tombstone first (temporary file, fsync, rename, fsync of the directory),
//! then overwrites the key's slot with zeros and waits for an `fdatasync` (a legacy key file is
//! overwritten with zeros, fsync'd, removed, and the directory fsync'd, as before). A crash in
//! between leaves the tombstone, which wins: open finishes the job. Only once the zeros are
//! durable may a later create reuse the slot.
//!
//! What overwriting cannot do: the zeros go to the same file blocks on ext4 (in its default
//! `data=ordered` mode; `data=journal` also writes every data block to the journal, where a copy
//! lasts until the journal wraps) and on xfs, but not necessarily to the same flash cells (an
//! SSD's wear-levelling keeps old pages until it reuses them), not on copy-on-write filesystems
//! (btrfs, ZFS) or under filesystem or volume snapshots, and not in backups. That part is the
//! operator's: keep the key directory out of the log's backups (or back it up separately, with
//! a retention no longer than erasure allows), out of snapshots, and preferably on an encrypted
//! volume.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::record::{self, Record};
use crate::table::{TABLE, Table};
use crate::{DataKey, KeyError, KeyId, KeyState, KeyStore, Result};

const LOCK: &str = "LOCK";
const KEY_EXT: &str = ".key";
const TOMB_EXT: &str = ".destroyed";
const TMP_EXT: &str = ".tmp";

/// Keys in a table file, tombstones in files. Cheap to clone; one process per directory (a
/// second open is refused with [`KeyError::Locked`]).
#[derive(Clone)]
pub struct FileKeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// The key table; it holds the flock on `LOCK` for the store's life.
    table: Arc<Table>,
    /// One operation at a time per id (striped by the id's hash): get never sees a destroy
    /// half-done, and two creates of one id never both write; creates of different families
    /// share the table's flushes instead of queueing behind one another.
    ops: Vec<Mutex<()>>,
    /// Whole-store operations (loading every key) take every stripe.
    all: Mutex<()>,
    /// The ids that have a tombstone or a legacy key file: read from the directory at open,
    /// kept by destroy. The flock makes this process the directory's only writer, so a look
    /// here stands for a `stat`.
    files: Mutex<BTreeMap<KeyId, Found>>,
}

/// Stripes of the per-id lock: enough that concurrent creates of new families rarely share one.
const STRIPES: usize = 64;

impl FileKeyStore {
    /// Opens (creating it when missing) the key directory. Refuses a directory that holds
    /// anything but the table, tombstones, legacy key files and temporary files, naming the
    /// file. Finishes what a crash interrupted: temporary files are zeroed and removed, a key
    /// (slot or legacy file) beside a tombstone is zeroed, a torn slot is zeroed (see the
    /// module docs).
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        blocking(move || {
            // Owner only: the directory and every file in it.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(KeyError::io("create key directory", &dir))?;
            // A directory just made exists for good only once its parent's entry is durable.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
            let lock_path = dir.join(LOCK);
            let lock = OpenOptions::new()
                .mode(0o600)
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(KeyError::io("open", &lock_path))?;
            match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                    return Err(KeyError::Locked { dir });
                }
                Err(e) => return Err(KeyError::io("lock", &lock_path)(e.into())),
            }
            let (table, files) = recover(&dir, lock)?;
            Ok(Self {
                inner: Arc::new(Inner {
                    dir,
                    table,
                    ops: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                    all: Mutex::new(()),
                    files: Mutex::new(files),
                }),
            })
        })
        .await
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs `f` holding every stripe: nothing else runs meanwhile.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let _all = inner.all.lock().unwrap_or_else(|p| p.into_inner());
            let _ops: Vec<_> = inner
                .ops
                .iter()
                .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
                .collect();
            f(&inner)
        })
        .await
    }

    /// Runs `f` holding `id`'s stripe only.
    async fn run_for<T: Send + 'static>(
        &self,
        id: &KeyId,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let stripe = stripe(id);
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            // A whole-store operation waits for the stripes it takes, so taking `all` here
            // briefly orders this after any that is under way.
            drop(inner.all.lock().unwrap_or_else(|p| p.into_inner()));
            let _op = inner.ops[stripe].lock().unwrap_or_else(|p| p.into_inner());
            f(&inner)
        })
        .await
    }
}

fn stripe(id: &KeyId) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    (h.finish() as usize) % STRIPES
}

#[async_trait]
impl KeyStore for FileKeyStore {
    async fn load_all(&self) -> Result<Vec<(KeyId, KeyState)>> {
        self.run(|inner| {
            let mut ids = inner.files().clone();
            for (id, _) in inner.table.live() {
                ids.entry(id).or_default();
            }
            let mut out = Vec::with_capacity(ids.len());
            for (id, found) in ids {
                let state = inner.read_state(&id, &found)?;
                out.push((id, state));
            }
            Ok(out)
        })
        .await
    }

    async fn get(&self, id: &KeyId) -> Result<KeyState> {
        let id = id.clone();
        self.run_for(&id.clone(), move |inner| inner.get(&id)).await
    }

    async fn create(&self, id: &KeyId) -> Result<DataKey> {
        if let Some(created) = self.inner.create_now(id) {
            return created;
        }
        let id = id.clone();
        self.run_for(&id.clone(), move |inner| match inner.get(&id)? {
            KeyState::Live(k) => Ok(k),
            KeyState::Destroyed { destroyed_at } => Err(KeyError::Destroyed { id, destroyed_at }),
            KeyState::Missing => inner.table.bind(&id),
        })
        .await
    }

    async fn leftovers(&self) -> Result<usize> {
        Ok(self.inner.table.leftovers())
    }

    async fn adopt(&self, id: &KeyId, fits: crate::Fits) -> Result<Option<DataKey>> {
        let id = id.clone();
        self.run_for(&id.clone(), move |inner| {
            // A tombstone wins: an erased id gets no key back.
            match inner.get(&id)? {
                KeyState::Live(k) => Ok(Some(k)),
                KeyState::Destroyed { .. } => Ok(None),
                KeyState::Missing => inner.table.adopt(&id, &*fits),
            }
        })
        .await
    }

    async fn retire_leftovers(&self) -> Result<usize> {
        self.run(|inner| inner.table.retire_leftovers()).await
    }

    async fn destroy(&self, id: &KeyId, at: DateTime<Utc>) -> Result<()> {
        let id = id.clone();
        self.run_for(&id.clone(), move |inner| {
            // The first destruction's time stays: a tombstone is written once.
            if !inner.files().get(&id).is_some_and(|f| f.tomb) {
                let tomb = inner.tomb_path(&id);
                write_durably(&inner.dir, &tomb, &record::encode_tombstone(at))?;
                inner.files().entry(id.clone()).or_default().tomb = true;
            }
            // Also on a repeated destroy: a crash may have stopped the first one here.
            inner.table.erase(&id)?;
            scrub(&inner.dir, &inner.key_path(&id))?;
            if let Some(found) = inner.files().get_mut(&id) {
                found.key = false;
            }
            Ok(())
        })
        .await
    }
}

/// The files one id has.
#[derive(Clone, Copy, Default)]
struct Found {
    /// A legacy `<id>.key`.
    key: bool,
    tomb: bool,
}

impl Inner {
    fn key_path(&self, id: &KeyId) -> PathBuf {
        self.dir.join(format!("{id}{KEY_EXT}"))
    }

    fn tomb_path(&self, id: &KeyId) -> PathBuf {
        self.dir.join(format!("{id}{TOMB_EXT}"))
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<KeyId, Found>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &KeyId) -> Result<KeyState> {
        let found = self.files().get(id).copied().unwrap_or_default();
        self.read_state(id, &found)
    }

    /// A create that needs neither a file read nor a wait: `id` has no key, no tombstone and no
    /// legacy file, the pool has a key, and nothing else holds `id`'s stripe. `None` (nothing
    /// done) otherwise, for the blocking path. Runs on the caller's thread: its one system call
    /// is the binding's `pwrite` into the page cache.
    fn create_now(&self, id: &KeyId) -> Option<Result<DataKey>> {
        let all = self.all.try_lock().ok()?;
        let _op = self.ops[stripe(id)].try_lock().ok()?;
        drop(all);
        if self.files().contains_key(id) || self.table.offset_of(id).is_some() {
            return None;
        }
        self.table.try_bind(id)
    }

    /// A tombstone wins over a key (a destroy that a crash interrupted); then the table's slot,
    /// then a legacy key file.
    fn read_state(&self, id: &KeyId, found: &Found) -> Result<KeyState> {
        if found.tomb {
            let path = self.tomb_path(id);
            return match read_record(&path)? {
                Record::Tombstone { destroyed_at } => Ok(KeyState::Destroyed { destroyed_at }),
                Record::Key(_) => Err(KeyError::Malformed {
                    path,
                    reason: "a key record where a tombstone belongs".into(),
                }),
            };
        }
        if let Some(k) = self.table.get(id)? {
            return Ok(KeyState::Live(k));
        }
        if found.key {
            let path = self.key_path(id);
            return match read_record(&path)? {
                Record::Key(k) => Ok(KeyState::Live(k)),
                Record::Tombstone { .. } => Err(KeyError::Malformed {
                    path,
                    reason: "a tombstone where a key record belongs".into(),
                }),
            };
        }
        Ok(KeyState::Missing)
    }
}

/// Every id with a tombstone or legacy key file, checking that nothing else is in the
/// directory. Temporary files are reported through `tmp`.
fn scan(dir: &Path, tmp: &mut Vec<PathBuf>) -> Result<BTreeMap<KeyId, Found>> {
    let mut ids: BTreeMap<KeyId, Found> = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(KeyError::io("read directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(KeyError::io("read directory", dir))?;
        let path = entry.path();
        let unexpected = |reason: &str| KeyError::Malformed {
            path: path.clone(),
            reason: reason.into(),
        };
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(unexpected("not a key store file (name is not UTF-8)"));
        };
        let file_type = entry.file_type().map_err(KeyError::io("stat", &path))?;
        if !file_type.is_file() {
            return Err(unexpected("not a regular file"));
        }
        if name == LOCK || name == TABLE {
            continue;
        }
        if name.ends_with(TMP_EXT) {
            tmp.push(path);
            continue;
        }
        let (stem, is_key) = if let Some(s) = name.strip_suffix(KEY_EXT) {
            (s, true)
        } else if let Some(s) = name.strip_suffix(TOMB_EXT) {
            (s, false)
        } else {
            return Err(unexpected(
                "not a key store file (expected keys.tbl, <id>.destroyed, <id>.key or *.tmp)",
            ));
        };
        let id = KeyId::new(stem).map_err(|e| unexpected(&e.to_string()))?;
        let found = ids.entry(id).or_default();
        if is_key {
            found.key = true;
        } else {
            found.tomb = true;
        }
    }
    Ok(ids)
}

/// Open's checks and repairs (see the module docs); returns the open table and the ids with a
/// tombstone or a legacy key file.
fn recover(dir: &Path, lock: File) -> Result<(Arc<Table>, BTreeMap<KeyId, Found>)> {
    let mut tmp = Vec::new();
    let mut ids = scan(dir, &mut tmp)?;
    for path in tmp {
        // A create or destroy that never returned: its key was never handed out, but its
        // bytes are wiped all the same.
        scrub(dir, &path)?;
    }
    let tomb_path = |id: &KeyId| dir.join(format!("{id}{TOMB_EXT}"));
    let key_path = |id: &KeyId| dir.join(format!("{id}{KEY_EXT}"));
    let mut destroyed = BTreeSet::new();
    for (id, found) in &mut ids {
        // Every file is read, so a damaged one is refused now rather than at first use.
        if found.key {
            expect_key(&key_path(id))?;
        }
        if found.tomb {
            let path = tomb_path(id);
            if !matches!(read_record(&path)?, Record::Tombstone { .. }) {
                return Err(KeyError::Malformed {
                    path,
                    reason: "a key record where a tombstone belongs".into(),
                });
            }
            destroyed.insert(id.clone());
            if found.key {
                scrub(dir, &key_path(id))?;
                found.key = false;
            }
        }
    }
    let table = Table::open(dir, lock, &|id| destroyed.contains(id))?;
    for (id, at) in table.live() {
        if ids.get(&id).is_some_and(|f| f.key && !f.tomb) {
            return Err(KeyError::Malformed {
                path: key_path(&id),
                reason: format!(
                    "{id} has a key here and another in {} at offset {at} (damage: a key is \
                     written in one place only)",
                    table.path().display()
                ),
            });
        }
    }
    Ok((table, ids))
}

fn expect_key(path: &Path) -> Result<()> {
    match read_record(path)? {
        Record::Key(_) => Ok(()),
        Record::Tombstone { .. } => Err(KeyError::Malformed {
            path: path.to_path_buf(),
            reason: "a tombstone where a key record belongs".into(),
        }),
    }
}

/// Temporary file, fsync, rename, fsync of the directory: when this returns, `bytes` are at
/// `path` for good, and a crash before leaves no `path` at all.
pub(crate) fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_EXT);
    let tmp = PathBuf::from(tmp);
    let mut f = OpenOptions::new()
        .mode(0o600)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(KeyError::io("create", &tmp))?;
    f.write_all(bytes).map_err(KeyError::io("write", &tmp))?;
    f.sync_all().map_err(KeyError::io("fsync", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(KeyError::io("rename into place", path))?;
    sync_dir(dir)
}

/// Overwrites the file's bytes with zeros, fsyncs, removes it and fsyncs the directory; a
/// missing file is fine.
fn scrub(dir: &Path, path: &Path) -> Result<()> {
    let f = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(KeyError::io("open to overwrite", path)(e)),
    };
    let len = f.metadata().map_err(KeyError::io("stat", path))?.len();
    let zeros = vec![0u8; len as usize];
    f.write_all_at(&zeros, 0)
        .map_err(KeyError::io("overwrite", path))?;
    f.sync_all().map_err(KeyError::io("fsync", path))?;
    drop(f);
    std::fs::remove_file(path).map_err(KeyError::io("remove", path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(KeyError::io("fsync directory", dir))
}

fn read_record(path: &Path) -> Result<Record> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(record::KEY_RECORD_LEN));
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(KeyError::io("read", path))?;
    record::decode(&bytes).map_err(|reason| KeyError::Malformed {
        path: path.to_path_buf(),
        reason,
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("key store task cancelled: {e}"),
    }
}
