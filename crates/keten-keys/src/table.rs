//! The key table: every key the file store creates, in fixed slots of one preallocated file, so
//! that creating a key is a `pwrite` into blocks that already exist and one `fdatasync` shared
//! by every create under way (group commit), with no change to the directory or to the file's
//! size on that path. The format is in the module docs of `file` (the store's on-disk layout).
//!
//! Every slot that is not in use is all zeros: the file is made of zeros, a destroy writes zeros
//! back, and open zeroes what a crash left half-written. So a slot is empty, a whole record, or
//! torn; anything else is damage, and open refuses it, naming the offset.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use zeroize::Zeroizing;

use crate::{DataKey, KeyError, KeyId, Result};

/// The table's file name in the key directory.
pub(crate) const TABLE: &str = "keys.tbl";
/// The header: one 512-byte sector, so that slot 0 begins on a sector of its own.
pub(crate) const HEADER_LEN: u64 = 512;
/// A slot: 256 bytes at offset 512 + 256·i, so no slot spans a 512-byte sector (a sector is
/// what a disk writes all or nothing of; a slot in one sector is torn by a power cut only as a
/// sector is, which the checksum catches either way).
pub(crate) const SLOT_LEN: usize = 256;
/// Slots added at a time when the table grows: 1 MiB of zeros. Small in the unit tests so that
/// they grow the table.
const CHUNK_SLOTS: u64 = if cfg!(test) { 8 } else { 4096 };
/// Fewer free slots than this and a create starts growing the table in the background, so that
/// the creates after it do not wait for the growth's write and fsync.
const LOW_WATER: usize = (CHUNK_SLOTS / 4) as usize;
/// Keys made ahead at a time: written into free slots as pool records and made durable by one
/// `fdatasync`, so that binding one to an id later needs no flush of its own. Small in the unit
/// tests so that they refill the pool often.
const POOL_BATCH: usize = if cfg!(test) { 3 } else { 256 };
/// Fewer keys than this left in the pool and a bind starts the next refill in the background.
const POOL_LOW: usize = POOL_BATCH.div_ceil(4);

const HEADER_MAGIC: &[u8; 8] = b"KETENKTB";
const SLOT_MAGIC: &[u8; 8] = b"KETENKTS";
const FORMAT: u8 = 1;
/// Where the parts of a slot are.
const SLOT_KEY: usize = 12;
const SLOT_ID: usize = SLOT_KEY + DataKey::LEN;
const SLOT_CRC: usize = SLOT_LEN - 4;

pub(crate) fn slot_offset(slot: u64) -> u64 {
    HEADER_LEN + slot * SLOT_LEN as u64
}

/// The header's 512 bytes.
fn encode_header() -> Vec<u8> {
    let mut h = vec![0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(HEADER_MAGIC);
    h[8] = FORMAT;
    h[12..16].copy_from_slice(&(SLOT_LEN as u32).to_le_bytes());
    let crc = crc32c::crc32c(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

fn check_header(h: &[u8]) -> Result<(), String> {
    if &h[..8] != HEADER_MAGIC {
        return Err("not a key table (bad magic at offset 0)".into());
    }
    if crc32c::crc32c(&h[..16]).to_le_bytes() != h[16..20] {
        return Err("the header (offset 0) fails its checksum".into());
    }
    if h[8] != FORMAT {
        return Err(format!("key table of format {}, expected {FORMAT}", h[8]));
    }
    let slot_len = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes"));
    if slot_len as usize != SLOT_LEN || h[9..12] != [0; 3] || h[20..].iter().any(|&b| b != 0) {
        return Err(format!(
            "header (offset 0) says slots of {slot_len} bytes or has reserved bytes set; \
             this version writes {SLOT_LEN}-byte slots and zeros"
        ));
    }
    Ok(())
}

/// One slot's bytes for a key bound to `id`; wiped when dropped.
pub(crate) fn encode_slot(id: &KeyId, key: &DataKey) -> Zeroizing<[u8; SLOT_LEN]> {
    encode(Some(id), key)
}

/// One slot's bytes for a key made ahead and bound to no id yet (id length 0).
pub(crate) fn encode_pool_slot(key: &DataKey) -> Zeroizing<[u8; SLOT_LEN]> {
    encode(None, key)
}

fn encode(id: Option<&KeyId>, key: &DataKey) -> Zeroizing<[u8; SLOT_LEN]> {
    let id = id.map_or("", KeyId::as_str);
    let mut s = Zeroizing::new([0u8; SLOT_LEN]);
    s[..8].copy_from_slice(SLOT_MAGIC);
    s[8] = FORMAT;
    s[9] = u8::try_from(id.len()).expect("a KeyId is at most 128 bytes");
    s[SLOT_KEY..SLOT_ID].copy_from_slice(key.expose_bytes());
    s[SLOT_ID..SLOT_ID + id.len()].copy_from_slice(id.as_bytes());
    let crc = crc32c::crc32c(&s[..SLOT_CRC]);
    s[SLOT_CRC..].copy_from_slice(&crc.to_le_bytes());
    s
}

/// What one slot holds.
pub(crate) enum Slot {
    Empty,
    Key(KeyId, DataKey),
    /// A key made ahead (a pool record) and bound to no id, as far as the table knows.
    Pool(DataKey),
    /// What a write cut by a crash leaves: a create's record without its checksum (the last
    /// bytes of the record, still zeros), or a destroy's zeros over the head of a record. Never
    /// acknowledged (a create had not returned; a destroy's tombstone was durable first), so
    /// open zeroes it.
    Torn(String),
    /// Anything else that is not zeros nor a whole record: a record whose checksum is there but
    /// does not match (a bit flipped after it was acknowledged), or a whole record this version
    /// cannot read. Zeroing it could destroy a live family's key, so open refuses instead.
    Damaged(String),
}

pub(crate) fn decode_slot(s: &[u8]) -> Slot {
    debug_assert_eq!(s.len(), SLOT_LEN);
    if s.iter().all(|&b| b == 0) {
        return Slot::Empty;
    }
    if crc32c::crc32c(&s[..SLOT_CRC]).to_le_bytes() != s[SLOT_CRC..] {
        if s[SLOT_CRC..].iter().all(|&b| b == 0) {
            return Slot::Torn("a record whose checksum was never written".into());
        }
        if s[..SLOT_MAGIC.len()].iter().all(|&b| b == 0) {
            return Slot::Torn("zeros over the head of a record (a destroy cut short)".into());
        }
        return Slot::Damaged("fails its checksum".into());
    }
    // A whole record past its checksum: anything else wrong is a writer's bug, damage, or a
    // later format; none of them is ours to zero.
    if &s[..8] != SLOT_MAGIC {
        return Slot::Damaged("bad magic".into());
    }
    if s[8] != FORMAT {
        return Slot::Damaged(format!("format {}, expected {FORMAT}", s[8]));
    }
    let n = usize::from(s[9]);
    if n > KeyId::MAX_LEN || s[10..12] != [0, 0] {
        return Slot::Damaged(format!("id length {n} or reserved bytes set"));
    }
    if s[SLOT_ID + n..SLOT_CRC].iter().any(|&b| b != 0) {
        return Slot::Damaged("bytes after the id are not zero".into());
    }
    let key = || {
        let mut k = Zeroizing::new([0u8; DataKey::LEN]);
        k.copy_from_slice(&s[SLOT_KEY..SLOT_ID]);
        DataKey::from_bytes(*k)
    };
    if n == 0 {
        return Slot::Pool(key());
    }
    let id = match std::str::from_utf8(&s[SLOT_ID..SLOT_ID + n])
        .map_err(|e| e.to_string())
        .and_then(|s| KeyId::new(s).map_err(|e| e.to_string()))
    {
        Ok(id) => id,
        Err(e) => return Slot::Damaged(format!("bad id: {e}")),
    };
    Slot::Key(id, key())
}

/// The table, open. Shared with the thread that grows it.
pub(crate) struct Table {
    path: PathBuf,
    file: File,
    /// The store's flock on `LOCK`, held here so that a table still being grown by a
    /// background thread keeps the directory locked until the growth is done.
    _lock: File,
    state: Mutex<State>,
    /// Signalled when a flush ends, a growth ends, or the table fails.
    changed: Condvar,
}

struct State {
    /// Live keys: the slot of each id.
    live: HashMap<KeyId, u64>,
    /// Zeroed, durable slots; the lowest is taken first, so the table stays dense.
    free: BTreeSet<u64>,
    /// Slots in the file.
    capacity: u64,
    growing: bool,
    /// Keys this run made ahead, durable, bound to no id; a bind takes one.
    pool: Vec<(u64, DataKey)>,
    refilling: bool,
    /// Pool records found at open: keys an earlier run made ahead. Each may be bound to an id
    /// whose binding a power cut lost (see `file`, "Keys made ahead"), so none is ever handed
    /// out again; [`Table::adopt`] binds one to the id it proves to be, and
    /// [`Table::retire_leftovers`] zeroes the rest.
    leftover: Vec<(u64, DataKey)>,
    /// Group commit: writes counted once their `pwrite` returned, and the count the last
    /// successful `fdatasync` covers.
    written: u64,
    synced: u64,
    syncing: bool,
    /// A failed `fdatasync` or growth: after one, what is on disk is unknown (Linux may have
    /// marked the unwritten pages clean), so every later write is refused until the store is
    /// opened again, which reads what the disk really holds.
    failed: Option<(io::ErrorKind, String)>,
}

impl Table {
    /// Opens `dir`'s table, making it (durably, with one chunk of slots) when it is missing.
    /// A torn slot, and the slot of an id in `destroyed`, is zeroed (and flushed) before this
    /// returns; two slots of one id refuse the open, naming both offsets.
    pub(crate) fn open(
        dir: &Path,
        lock: File,
        destroyed: &dyn Fn(&KeyId) -> bool,
    ) -> Result<Arc<Table>> {
        let path = dir.join(TABLE);
        if !path.try_exists().map_err(KeyError::io("stat", &path))? {
            make(dir, &path)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(KeyError::io("open", &path))?;
        let malformed = |reason: String| KeyError::Malformed {
            path: path.clone(),
            reason,
        };
        let len = file.metadata().map_err(KeyError::io("stat", &path))?.len();
        if len < HEADER_LEN {
            return Err(malformed(format!(
                "{len} bytes, shorter than its {HEADER_LEN}-byte header"
            )));
        }
        let mut header = vec![0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut header, 0)
            .map_err(KeyError::io("read", &path))?;
        check_header(&header).map_err(malformed)?;
        // A tail shorter than a slot is a growth a crash cut (growth writes only zeros); the
        // next growth writes over it.
        let capacity = (len - HEADER_LEN) / SLOT_LEN as u64;

        let mut live: HashMap<KeyId, u64> = HashMap::new();
        let mut leftover = Vec::new();
        let mut free = BTreeSet::new();
        let mut zeroed = Vec::new();
        let mut buf = Zeroizing::new(vec![0u8; CHUNK_SLOTS as usize * SLOT_LEN]);
        let mut slot = 0u64;
        while slot < capacity {
            let n = (capacity - slot).min(CHUNK_SLOTS) as usize;
            let bytes = &mut buf[..n * SLOT_LEN];
            file.read_exact_at(bytes, slot_offset(slot))
                .map_err(KeyError::io("read", &path))?;
            for (i, s) in bytes.chunks_exact(SLOT_LEN).enumerate() {
                let this = slot + i as u64;
                let at = slot_offset(this);
                match decode_slot(s) {
                    Slot::Empty => {
                        free.insert(this);
                    }
                    Slot::Pool(key) => leftover.push((this, key)),
                    Slot::Torn(why) => {
                        tracing::warn!(
                            file = %path.display(),
                            offset = at,
                            reason = %why,
                            "key table: a slot torn by a write that never finished (a create \
                             that never returned, or a destroy whose tombstone is durable); \
                             zeroing it"
                        );
                        zeroed.push(at);
                        free.insert(this);
                    }
                    Slot::Damaged(why) => {
                        return Err(malformed(format!(
                            "the slot at offset {at} is damaged: it {why}. It may hold a live \
                             family's key, so it is neither used nor zeroed; restore keys.tbl \
                             from a copy, or move the store aside, before keten opens it"
                        )));
                    }
                    Slot::Key(id, _) if destroyed(&id) => {
                        tracing::info!(
                            file = %path.display(),
                            offset = at,
                            key = %id,
                            "key table: finishing a destroy a crash interrupted (the tombstone \
                             is durable); zeroing the key's slot"
                        );
                        zeroed.push(at);
                        free.insert(this);
                    }
                    Slot::Key(id, _) => {
                        if let Some(&other) = live.get(&id) {
                            return Err(malformed(format!(
                                "two live slots hold a key for {id}: at offset {} and at \
                                 offset {at} (damage: this store never writes a second)",
                                slot_offset(other)
                            )));
                        }
                        live.insert(id, this);
                    }
                }
            }
            slot += n as u64;
        }
        if !zeroed.is_empty() {
            let zeros = [0u8; SLOT_LEN];
            for at in &zeroed {
                file.write_all_at(&zeros, *at)
                    .map_err(KeyError::io("overwrite slot", &path))?;
            }
            file.sync_data().map_err(KeyError::io("fdatasync", &path))?;
        }
        Ok(Arc::new(Table {
            path,
            file,
            _lock: lock,
            state: Mutex::new(State {
                live,
                free,
                capacity,
                growing: false,
                pool: Vec::new(),
                refilling: false,
                leftover,
                written: 0,
                synced: 0,
                syncing: false,
                failed: None,
            }),
            changed: Condvar::new(),
        }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self, s: &State) -> Result<()> {
        match &s.failed {
            None => Ok(()),
            Some((kind, what)) => Err(KeyError::Io {
                op: "write (refused since an earlier failure; open the store again)",
                path: self.path.clone(),
                source: io::Error::new(*kind, what.clone()),
            }),
        }
    }

    /// The ids with a live slot, and the slot's offset.
    pub(crate) fn live(&self) -> Vec<(KeyId, u64)> {
        self.lock()
            .live
            .iter()
            .map(|(id, &slot)| (id.clone(), slot_offset(slot)))
            .collect()
    }

    /// The offset of `id`'s slot, if it has one.
    pub(crate) fn offset_of(&self, id: &KeyId) -> Option<u64> {
        self.lock().live.get(id).map(|&s| slot_offset(s))
    }

    /// `id`'s key, read from its slot; `None` when it has none.
    pub(crate) fn get(&self, id: &KeyId) -> Result<Option<DataKey>> {
        let Some(at) = self.offset_of(id) else {
            return Ok(None);
        };
        let mut s = Zeroizing::new([0u8; SLOT_LEN]);
        self.file
            .read_exact_at(&mut s[..], at)
            .map_err(KeyError::io("read", &self.path))?;
        match decode_slot(&s[..]) {
            Slot::Key(found, key) if &found == id => Ok(Some(key)),
            Slot::Key(found, _) => Err(self.damaged(at, format!("holds {found}, not {id}"))),
            Slot::Empty => Err(self.damaged(at, format!("is empty, but holds {id}'s key"))),
            Slot::Pool(_) => Err(self.damaged(at, format!("holds no id, but {id}'s key"))),
            Slot::Torn(why) | Slot::Damaged(why) => {
                Err(self.damaged(at, format!("holds {id}'s key but {why}")))
            }
        }
    }

    fn damaged(&self, at: u64, what: String) -> KeyError {
        KeyError::Malformed {
            path: self.path.clone(),
            reason: format!("the slot at offset {at} {what} (changed behind the store's back)"),
        }
    }

    /// Binds a key made ahead to `id` and returns it: one `pwrite` over its pool record, no
    /// flush (the key itself is durable; see `file`, "Keys made ahead", for what a power cut
    /// can do to the binding). Refills the pool first when it is empty. The caller holds `id`'s
    /// lock and has seen that `id` has no key.
    pub(crate) fn bind(self: &Arc<Self>, id: &KeyId) -> Result<DataKey> {
        let mut s = self.lock();
        loop {
            self.check(&s)?;
            if let Some(key) = self.take_pool(&mut s, id)? {
                return Ok(key);
            }
            if s.refilling {
                s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.refilling = true;
            drop(s);
            let refilled = self.refill();
            s = self.lock();
            refilled?;
        }
    }

    /// [`Table::bind`] if the pool has a key now; `None` (nothing done) when it would have to
    /// wait for a refill.
    pub(crate) fn try_bind(self: &Arc<Self>, id: &KeyId) -> Option<Result<DataKey>> {
        let mut s = self.lock();
        if let Err(e) = self.check(&s) {
            return Some(Err(e));
        }
        self.take_pool(&mut s, id).transpose()
    }

    fn take_pool(self: &Arc<Self>, s: &mut State, id: &KeyId) -> Result<Option<DataKey>> {
        let Some((slot, key)) = s.pool.pop() else {
            return Ok(None);
        };
        if s.pool.len() < POOL_LOW && !s.refilling {
            s.refilling = true;
            let table = Arc::clone(self);
            // A plain thread, like growth: a refill waits for an `fdatasync`.
            let spawned = std::thread::Builder::new()
                .name("keten-keys-pool".into())
                .spawn(move || {
                    if let Err(e) = table.refill() {
                        tracing::error!(
                            file = %table.path.display(),
                            error = %e,
                            "key table: making keys ahead failed"
                        );
                    }
                });
            if spawned.is_err() {
                // No thread: the bind that finds the pool empty refills it.
                s.refilling = false;
            }
        }
        // Under the state lock, so that the binding is in the file before anyone can see `id`
        // live. On an error the slot is neither pool nor live: its bytes are unknown until the
        // next open reads them.
        self.file
            .write_all_at(&encode_slot(id, &key)[..], slot_offset(slot))
            .map_err(KeyError::io("write slot", &self.path))?;
        s.live.insert(id.clone(), slot);
        Ok(Some(key))
    }

    /// Makes [`POOL_BATCH`] keys ahead: pool records in free slots, then one `fdatasync`
    /// (which also makes every binding written before it durable). Runs with `refilling` set,
    /// and clears it.
    fn refill(self: &Arc<Self>) -> Result<()> {
        let made = (|| {
            let mut made = Vec::with_capacity(POOL_BATCH);
            for _ in 0..POOL_BATCH {
                let slot = self.allocate()?;
                let key = DataKey::generate();
                self.file
                    .write_all_at(&encode_pool_slot(&key)[..], slot_offset(slot))
                    .map_err(KeyError::io("write slot", &self.path))?;
                made.push((slot, key));
            }
            self.commit()?;
            Ok(made)
        })();
        let mut s = self.lock();
        s.refilling = false;
        self.changed.notify_all();
        // Handed out lowest slot first (`pop` takes the last), so the table stays dense.
        s.pool.extend(made?.into_iter().rev());
        Ok(())
    }

    /// How many keys made ahead by an earlier run are left (see [`State::leftover`]).
    pub(crate) fn leftovers(&self) -> usize {
        self.lock().leftover.len()
    }

    /// Binds `id`, durably, to the leftover key that `fits` (the caller's proof that data of
    /// `id` was sealed with it), and returns it; `None` when none fits. `id`'s key when it has
    /// one already.
    pub(crate) fn adopt(
        &self,
        id: &KeyId,
        fits: &dyn Fn(&DataKey) -> bool,
    ) -> Result<Option<DataKey>> {
        let mut s = self.lock();
        self.check(&s)?;
        if s.live.contains_key(id) {
            drop(s);
            return self.get(id);
        }
        let Some(i) = s.leftover.iter().position(|(_, k)| fits(k)) else {
            return Ok(None);
        };
        let (slot, key) = s.leftover.swap_remove(i);
        self.file
            .write_all_at(&encode_slot(id, &key)[..], slot_offset(slot))
            .map_err(KeyError::io("write slot", &self.path))?;
        s.live.insert(id.clone(), slot);
        drop(s);
        self.commit()?;
        Ok(Some(key))
    }

    /// Zeroes every leftover key, durably, and frees its slot; returns how many. Only for a
    /// caller that knows no data is sealed with any of them (every id that had one adopted it).
    pub(crate) fn retire_leftovers(&self) -> Result<usize> {
        let mut s = self.lock();
        self.check(&s)?;
        let retired = std::mem::take(&mut s.leftover);
        drop(s);
        for (slot, _) in &retired {
            self.file
                .write_all_at(&[0u8; SLOT_LEN], slot_offset(*slot))
                .map_err(KeyError::io("overwrite slot", &self.path))?;
        }
        if !retired.is_empty() {
            self.commit()?;
        }
        self.lock()
            .free
            .extend(retired.iter().map(|(slot, _)| *slot));
        Ok(retired.len())
    }

    /// Overwrites `id`'s slot with zeros, durably, and frees it; false when `id` has none.
    pub(crate) fn erase(&self, id: &KeyId) -> Result<bool> {
        let Some(slot) = self.lock().live.get(id).copied() else {
            return Ok(false);
        };
        self.file
            .write_all_at(&[0u8; SLOT_LEN], slot_offset(slot))
            .map_err(KeyError::io("overwrite slot", &self.path))?;
        self.commit()?;
        let mut s = self.lock();
        s.live.remove(id);
        // Only now, with the zeros durable, may a create write another key there.
        s.free.insert(slot);
        Ok(true)
    }

    /// Waits until this caller's write, done before the call, is durable: one `fdatasync` for
    /// every write that finished before it began. A caller that finds no flush under way starts
    /// one; the others wait for a flush that began after their write.
    fn commit(&self) -> Result<()> {
        let mut s = self.lock();
        s.written += 1;
        let mine = s.written;
        loop {
            if s.synced >= mine {
                return Ok(());
            }
            self.check(&s)?;
            if s.syncing {
                s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.syncing = true;
            let covers = s.written;
            drop(s);
            let r = self.file.sync_data();
            s = self.lock();
            s.syncing = false;
            match r {
                Ok(()) => s.synced = covers,
                Err(e) => {
                    s.failed = Some((e.kind(), format!("fdatasync failed: {e}")));
                    self.changed.notify_all();
                    return Err(KeyError::io("fdatasync", &self.path)(e));
                }
            }
            self.changed.notify_all();
        }
    }

    /// A free slot, growing the table when there is none (and, when few are left, starting a
    /// growth in the background for the creates to come).
    fn allocate(self: &Arc<Self>) -> Result<u64> {
        let mut s = self.lock();
        loop {
            self.check(&s)?;
            if let Some(slot) = s.free.pop_first() {
                if s.free.len() < LOW_WATER && !s.growing {
                    s.growing = true;
                    let from = s.capacity;
                    let table = Arc::clone(self);
                    // A plain thread: growth is rare, and must not hold up the runtime's
                    // blocking pool. It holds the table (and so the directory's lock) until done.
                    let spawned = std::thread::Builder::new()
                        .name("keten-keys-grow".into())
                        .spawn(move || table.grow_from(from));
                    if spawned.is_err() {
                        // No thread: the create that finds the table full grows it.
                        s.growing = false;
                    }
                }
                return Ok(slot);
            }
            if s.growing {
                s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.growing = true;
            let from = s.capacity;
            drop(s);
            self.grow_from(from);
            s = self.lock();
        }
    }

    /// Appends a chunk of zeroed slots at slot `from` (the end), durably, then makes them free.
    /// Runs with `growing` set, so one growth at a time.
    fn grow_from(&self, from: u64) {
        let zeros = vec![0u8; CHUNK_SLOTS as usize * SLOT_LEN];
        // The file's size changes: `fsync`, not `fdatasync`, so that the size is durable too.
        // The directory entry is not touched.
        let r = self
            .file
            .write_all_at(&zeros, slot_offset(from))
            .and_then(|()| self.file.sync_all());
        let mut s = self.lock();
        s.growing = false;
        match r {
            Ok(()) => {
                s.capacity = from + CHUNK_SLOTS;
                s.free.extend(from..from + CHUNK_SLOTS);
            }
            Err(e) => {
                tracing::error!(file = %self.path.display(), error = %e, "key table: growing it failed");
                s.failed = Some((e.kind(), format!("growing the table failed: {e}")));
            }
        }
        self.changed.notify_all();
    }

    /// Waits for a growth or refill under way to end (for tests that reopen the directory).
    #[cfg(test)]
    pub(crate) fn settle(&self) -> u64 {
        let mut s = self.lock();
        while s.growing || s.refilling {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.capacity
    }
}

/// Makes the table: header and one chunk of zeroed slots, written durably (temporary file,
/// fsync, rename, fsync of the directory). A crash before the rename leaves only the temporary
/// file, which open removes.
fn make(dir: &Path, path: &Path) -> Result<()> {
    let mut bytes = encode_header();
    bytes.resize(HEADER_LEN as usize + CHUNK_SLOTS as usize * SLOT_LEN, 0);
    crate::file::write_durably(dir, path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_damage_is_told_from_a_torn_write() {
        let id = KeyId::new("family-42").unwrap();
        let k = DataKey::generate();
        let s = encode_slot(&id, &k);
        assert!(matches!(decode_slot(&s[..]), Slot::Key(i, k2) if i == id && k2 == k));
        assert!(matches!(decode_slot(&[0u8; SLOT_LEN]), Slot::Empty));
        for i in 0..SLOT_LEN {
            let mut bad = *s;
            bad[i] ^= 1;
            assert!(
                matches!(decode_slot(&bad), Slot::Damaged(_)),
                "flipped byte {i} not taken for damage"
            );
        }
        // A create cut short: the head of a record, zeros after (no checksum yet).
        let mut cut = [0u8; SLOT_LEN];
        cut[..100].copy_from_slice(&s[..100]);
        assert!(matches!(decode_slot(&cut), Slot::Torn(_)));
        // A destroy cut short: zeros over the head, the rest of the record after.
        let mut undone = *s;
        undone[..100].fill(0);
        assert!(matches!(decode_slot(&undone), Slot::Torn(_)));
        // A record of a later format, whole: not ours to zero.
        let mut later = *s;
        later[8] = FORMAT + 1;
        let crc = crc32c::crc32c(&later[..SLOT_CRC]).to_le_bytes();
        later[SLOT_CRC..].copy_from_slice(&crc);
        assert!(matches!(decode_slot(&later), Slot::Damaged(_)));
        // A key made ahead: no id.
        assert!(matches!(decode_slot(&encode_pool_slot(&k)[..]), Slot::Pool(k2) if k2 == k));
        // The longest id fits.
        let long = KeyId::new("x".repeat(KeyId::MAX_LEN)).unwrap();
        assert!(matches!(decode_slot(&encode_slot(&long, &k)[..]), Slot::Key(i, _) if i == long));
        check_header(&encode_header()).unwrap();
        assert_eq!(HEADER_LEN % 512, 0);
        assert_eq!(512 % SLOT_LEN, 0, "a slot would span a sector");
    }

    fn open_in(dir: &Path) -> Arc<Table> {
        // The store's flock is not the table's business: any file stands in for it here.
        let lock = File::create(dir.join("LOCK")).unwrap();
        Table::open(dir, lock, &|_| false).unwrap()
    }

    /// With chunks of 8 slots and keys made 3 at a time, 50 binds from 5 threads refill the
    /// pool and grow the table many times, in the background and in the bind itself; every
    /// key lands in a slot of its own and survives reopening, and the file is exactly header
    /// + whole chunks.
    #[test]
    fn the_table_grows_by_chunks_and_keeps_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let table = open_in(dir.path());
        assert_eq!(table.settle(), CHUNK_SLOTS);
        let ids: Vec<KeyId> = (0..50)
            .map(|i| KeyId::new(format!("k-{i}")).unwrap())
            .collect();
        let keys: Vec<(KeyId, DataKey)> = std::thread::scope(|sc| {
            let parts: Vec<_> = ids
                .chunks(10)
                .map(|part| {
                    let table = &table;
                    sc.spawn(move || {
                        part.iter()
                            .map(|id| (id.clone(), table.bind(id).unwrap()))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            parts.into_iter().flat_map(|p| p.join().unwrap()).collect()
        });
        let capacity = table.settle();
        assert!(
            capacity >= 50 && capacity.is_multiple_of(CHUNK_SLOTS),
            "{capacity}"
        );
        let len = std::fs::metadata(dir.path().join(TABLE)).unwrap().len();
        assert_eq!(len, slot_offset(capacity));
        let mut offsets: Vec<u64> = table.live().into_iter().map(|(_, at)| at).collect();
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), 50);
        // Erase one: its slot is the next one used.
        let freed = table.offset_of(&keys[7].0).unwrap();
        assert!(table.erase(&keys[7].0).unwrap());
        assert!(!table.erase(&keys[7].0).unwrap());
        // The next refill takes the lowest free slots, the freed one among them.
        table.lock().pool.clear();
        let again = KeyId::new("again").unwrap();
        table.bind(&again).unwrap();
        let pooled: Vec<u64> = table
            .lock()
            .pool
            .iter()
            .map(|(s, _)| slot_offset(*s))
            .collect();
        assert!(
            table.offset_of(&again) == Some(freed) || pooled.contains(&freed),
            "the freed slot is used again"
        );
        table.settle();
        drop(table);

        let table = open_in(dir.path());
        for (i, (id, k)) in keys.iter().enumerate() {
            let got = table.get(id).unwrap();
            if i == 7 {
                assert!(got.is_none());
            } else {
                assert!(got.as_ref() == Some(k), "{id}");
            }
        }
    }

    /// What a power cut can do to a bind: the key's pool record was durable, the binding
    /// written over it was not. Reopened, the table holds that key as a leftover, hands no
    /// leftover out again, binds it to the id whose data proves it (and only then), and
    /// zeroes the others when told.
    #[test]
    fn a_binding_a_power_cut_lost_is_adopted_and_no_leftover_is_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let table = open_in(dir.path());
        let a = KeyId::new("family-a").unwrap();
        let key_a = table.bind(&a).unwrap();
        table.settle();
        let at = table.offset_of(&a).unwrap();
        let unused = table.lock().pool.len();
        assert_eq!(unused, POOL_BATCH - 1, "one refill, one key taken");
        // The disk as the refill's flush left it: a pool record where the binding went.
        table
            .file
            .write_all_at(&encode_pool_slot(&key_a)[..], at)
            .unwrap();
        drop(table);

        let table = open_in(dir.path());
        assert!(table.get(&a).unwrap().is_none(), "the binding is lost");
        assert_eq!(table.leftovers(), unused + 1);
        let left: Vec<DataKey> = table
            .lock()
            .leftover
            .iter()
            .map(|(_, k)| k.clone())
            .collect();
        let b = KeyId::new("family-b").unwrap();
        let key_b = table.bind(&b).unwrap();
        assert!(
            !left.contains(&key_b),
            "a leftover key was handed out again"
        );
        assert_eq!(
            table
                .adopt(&KeyId::new("family-c").unwrap(), &|_| false)
                .unwrap(),
            None
        );
        assert_eq!(
            table.adopt(&a, &|k| *k == key_a).unwrap(),
            Some(key_a.clone())
        );
        assert_eq!(table.leftovers(), unused);
        // Adopting again answers with the binding.
        assert_eq!(table.adopt(&a, &|_| false).unwrap(), Some(key_a.clone()));
        assert_eq!(table.retire_leftovers().unwrap(), unused);
        assert_eq!(table.leftovers(), 0);
        table.settle();
        let still_pooled = table.lock().pool.len();
        drop(table);

        let table = open_in(dir.path());
        assert_eq!(
            table.get(&a).unwrap(),
            Some(key_a),
            "the adoption is durable"
        );
        assert_eq!(table.get(&b).unwrap(), Some(key_b));
        // Only the second run's unused keys are left; the retired ones are zeros.
        assert_eq!(table.leftovers(), still_pooled);
        let now: Vec<DataKey> = table
            .lock()
            .leftover
            .iter()
            .map(|(_, k)| k.clone())
            .collect();
        assert!(
            now.iter().all(|k| !left.contains(k)),
            "a retired key is still there"
        );
    }
}
