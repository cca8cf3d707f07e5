use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{DataKey, KeyId, Result};

/// What a store knows of one key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyState {
    Live(DataKey),
    /// Destroyed at that time (to the microsecond); the key bytes are gone for good.
    Destroyed {
        destroyed_at: DateTime<Utc>,
    },
    /// Never created (or never seen by this store).
    Missing,
}

/// Where data keys live, beside the log and never in it.
///
/// Contract, which every implementation keeps:
/// - [`create`](KeyStore::create) returns a key only once it is durable (fsync'd, or
///   acknowledged by a quorum that fsyncs), because an event sealed with a key that is then lost
///   is lost data. What must be durable is the key, and a way back to it from `id`: either its
///   binding to `id`, or (a store that makes keys ahead) the key among the
///   [`leftovers`](KeyStore::leftovers) of the next run, where the sealed data proves it
///   ([`adopt`](KeyStore::adopt)). It is get-or-create: the live key when there is one (two callers racing get
///   the same key), [`KeyError::Destroyed`](crate::KeyError::Destroyed) once destroyed.
/// - [`destroy`](KeyStore::destroy) is idempotent and durable; afterwards the store holds no
///   copy of the key bytes, and a tombstone that remembers the first destruction's time, so that
///   `get` answers `Destroyed` (not `Missing`) and `create` refuses, across restarts. Destroying
///   an id that never had a key leaves a tombstone too: an erased id stays erased.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every id the store knows, live or destroyed, sorted by id (at startup).
    async fn load_all(&self) -> Result<Vec<(KeyId, KeyState)>>;

    async fn get(&self, id: &KeyId) -> Result<KeyState>;

    async fn create(&self, id: &KeyId) -> Result<DataKey>;

    async fn destroy(&self, id: &KeyId, at: DateTime<Utc>) -> Result<()>;

    /// How many keys an earlier run made ahead and left bound to no id as far as the store
    /// knows (a store that makes keys ahead, [`FileKeyStore`](crate::FileKeyStore)). Some may
    /// be the keys of ids whose binding a power cut lost: the caller that can tell (it holds
    /// the sealed data) calls [`adopt`](KeyStore::adopt) for each such id, then
    /// [`retire_leftovers`](KeyStore::retire_leftovers). None are ever handed out again.
    async fn leftovers(&self) -> Result<usize> {
        Ok(0)
    }

    /// For an id that has no key (`get` answers `Missing`) but has data sealed with one: binds
    /// `id`, durably, to the leftover key that `fits` (opens that data), and returns it;
    /// `None` when no leftover fits. The live key when `id` has one; `None` once destroyed.
    async fn adopt(&self, _id: &KeyId, _fits: Fits) -> Result<Option<DataKey>> {
        Ok(None)
    }

    /// Zeroes every leftover key, durably; returns how many. Only once every id with data
    /// sealed under a leftover has adopted it: the rest then protect nothing.
    async fn retire_leftovers(&self) -> Result<usize> {
        Ok(0)
    }
}

/// A caller's test of a candidate key for [`KeyStore::adopt`]: true when it opens the data.
pub type Fits = Box<dyn Fn(&DataKey) -> bool + Send>;
