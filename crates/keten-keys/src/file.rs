//! The embedded backend's key store: a directory of its own, one small file per key id.
//!
//! ```text
//! <dir>/LOCK              held (flock) by the one process that has the store open
//! <dir>/<id>.key          a key record (see `record`), 45 bytes
//! <dir>/<id>.destroyed    a tombstone, 21 bytes
//! <dir>/*.tmp             a write in progress; removed (zeroed first) on open
//! ```
//!
//! Create writes `<id>.key.tmp`, fsyncs it, renames it to `<id>.key` and fsyncs the directory
//! before it returns. Destroy writes the tombstone the same way first, then overwrites the key
//! file's bytes with zeros, fsyncs it, removes it and fsyncs the directory. A crash anywhere in
//! between leaves either no tombstone (the key is still live: destroy again) or a tombstone,
//! which wins: open finishes the job on any key file it finds beside one.
//!
//! What overwriting cannot do: the zeros go to the same file blocks on ext4 and xfs, but not
//! necessarily to the same flash cells (an SSD's wear-levelling keeps old pages until it
//! reuses them), not on copy-on-write filesystems (btrfs, ZFS) or under filesystem or volume
//! snapshots, and not in backups. That part is the operator's: keep the key directory out of
//! the log's backups (or back it up separately, with a retention no longer than erasure
//! allows), out of snapshots, and preferably on an encrypted volume.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::record::{self, Record};
use crate::{DataKey, KeyError, KeyId, KeyState, KeyStore, Result};

const LOCK: &str = "LOCK";
const KEY_EXT: &str = ".key";
const TOMB_EXT: &str = ".destroyed";
const TMP_EXT: &str = ".tmp";

/// Keys in files. Cheap to clone; one process per directory (a second open is refused with
/// [`KeyError::Locked`]).
#[derive(Clone)]
pub struct FileKeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// Held for the store's life: the flock on `LOCK`.
    _lock: File,
    /// One operation at a time per id (striped by the id's hash): get never sees a destroy
    /// half-done, and two creates of one id never both write; creates of different families
    /// overlap their fsyncs instead of queueing behind one another.
    ops: Vec<Mutex<()>>,
    /// Whole-store operations (loading every key at open) take every stripe.
    all: Mutex<()>,
}

/// Stripes of the per-id lock: enough that concurrent creates of new families rarely share one.
const STRIPES: usize = 64;

impl FileKeyStore {
    /// Opens (creating it when missing) the key directory. Refuses a directory that holds
    /// anything but well-formed key, tombstone and temporary files, naming the file. Finishes
    /// what a crash interrupted: temporary files are zeroed and removed, a key file beside a
    /// tombstone is zeroed and removed.
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
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(KeyError::io("fsync directory", parent))?;
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
            let inner = Inner {
                dir,
                _lock: lock,
                ops: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                all: Mutex::new(()),
            };
            inner.recover()?;
            Ok(Self {
                inner: Arc::new(inner),
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
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        let stripe = (h.finish() as usize) % STRIPES;
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

#[async_trait]
impl KeyStore for FileKeyStore {
    async fn load_all(&self) -> Result<Vec<(KeyId, KeyState)>> {
        self.run(|inner| {
            let scan = inner.scan()?;
            let mut out = Vec::with_capacity(scan.len());
            for (id, found) in scan {
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
        let id = id.clone();
        self.run_for(&id.clone(), move |inner| {
            match inner.get(&id)? {
                KeyState::Live(k) => return Ok(k),
                KeyState::Destroyed { destroyed_at } => {
                    return Err(KeyError::Destroyed { id, destroyed_at });
                }
                KeyState::Missing => {}
            }
            let key = DataKey::generate();
            inner.write_durably(&inner.key_path(&id), &record::encode_key(&key))?;
            Ok(key)
        })
        .await
    }

    async fn destroy(&self, id: &KeyId, at: DateTime<Utc>) -> Result<()> {
        let id = id.clone();
        self.run_for(&id.clone(), move |inner| {
            let tomb = inner.tomb_path(&id);
            if !exists(&tomb)? {
                inner.write_durably(&tomb, &record::encode_tombstone(at))?;
            }
            // Also on a repeated destroy: a crash may have stopped the first one here.
            inner.scrub(&inner.key_path(&id))
        })
        .await
    }
}

/// The files one id has.
#[derive(Default)]
struct Found {
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

    fn get(&self, id: &KeyId) -> Result<KeyState> {
        let found = Found {
            key: exists(&self.key_path(id))?,
            tomb: exists(&self.tomb_path(id))?,
        };
        self.read_state(id, &found)
    }

    /// A tombstone wins over a key file (a destroy that a crash interrupted).
    fn read_state(&self, id: &KeyId, found: &Found) -> Result<KeyState> {
        if found.tomb {
            let path = self.tomb_path(id);
            match read_record(&path)? {
                Record::Tombstone { destroyed_at } => Ok(KeyState::Destroyed { destroyed_at }),
                Record::Key(_) => Err(KeyError::Malformed {
                    path,
                    reason: "a key record where a tombstone belongs".into(),
                }),
            }
        } else if found.key {
            let path = self.key_path(id);
            match read_record(&path)? {
                Record::Key(k) => Ok(KeyState::Live(k)),
                Record::Tombstone { .. } => Err(KeyError::Malformed {
                    path,
                    reason: "a tombstone where a key record belongs".into(),
                }),
            }
        } else {
            Ok(KeyState::Missing)
        }
    }

    /// Every id with a file, checking that nothing else is in the directory. Temporary files
    /// are reported through `tmp`.
    fn scan_all(&self, tmp: &mut Vec<PathBuf>) -> Result<BTreeMap<KeyId, Found>> {
        let mut ids: BTreeMap<KeyId, Found> = BTreeMap::new();
        let entries =
            std::fs::read_dir(&self.dir).map_err(KeyError::io("read directory", &self.dir))?;
        for entry in entries {
            let entry = entry.map_err(KeyError::io("read directory", &self.dir))?;
            let path = entry.path();
            let unexpected = |reason: &str| KeyError::Malformed {
                path: path.clone(),
                reason: reason.into(),
            };
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(unexpected("not a key store file (name is not UTF-8)"));
            };
            if name == LOCK {
                continue;
            }
            let file_type = entry.file_type().map_err(KeyError::io("stat", &path))?;
            if !file_type.is_file() {
                return Err(unexpected("not a regular file"));
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
                    "not a key store file (expected <id>.key, <id>.destroyed or *.tmp)",
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

    fn scan(&self) -> Result<BTreeMap<KeyId, Found>> {
        self.scan_all(&mut Vec::new())
    }

    fn recover(&self) -> Result<()> {
        let mut tmp = Vec::new();
        let ids = self.scan_all(&mut tmp)?;
        for path in tmp {
            // A create or destroy that never returned: its key was never handed out, but its
            // bytes are wiped all the same.
            self.scrub(&path)?;
        }
        for (id, found) in &ids {
            // Every file is read, so a damaged one is refused now rather than at first use.
            if found.key {
                read_record(&self.key_path(id))?;
            }
            if found.tomb {
                self.read_state(id, found)?;
                if found.key {
                    self.scrub(&self.key_path(id))?;
                }
            }
        }
        Ok(())
    }

    /// Temporary file, fsync, rename, fsync of the directory: when this returns, `bytes` are at
    /// `path` for good, and a crash before leaves no `path` at all.
    fn write_durably(&self, path: &Path, bytes: &[u8]) -> Result<()> {
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
        self.sync_dir()
    }

    /// Overwrites the file's bytes with zeros, fsyncs, removes it and fsyncs the directory; a
    /// missing file is fine.
    fn scrub(&self, path: &Path) -> Result<()> {
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
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(KeyError::io("fsync directory", &self.dir))
    }
}

fn exists(path: &Path) -> Result<bool> {
    path.try_exists().map_err(KeyError::io("stat", path))
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
