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
///   is lost data. It is get-or-create: the live key when there is one (two callers racing get
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
}
