use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use crate::{DataKey, KeyError, KeyId, KeyState, KeyStore, Result};

/// The server's cache of keys in front of a [`KeyStore`]: loaded whole at startup, read without
/// waiting on hot decode paths ([`Keyring::cached`]), filled from the store on a miss (another
/// server may have created the key). Cheap to clone; every clone shares one cache.
///
/// Only `Live` and `Destroyed` are cached: a missing key may be created elsewhere at any time.
/// With several servers on one store, a key destroyed by another server stays `Live` in this
/// cache until [`Keyring::refresh`] (or [`Keyring::destroy`]) is called here, so an erasure must
/// reach every server (keten's erasure event does).
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn KeyStore>,
    cache: RwLock<HashMap<KeyId, KeyState>>,
}

impl Keyring {
    pub async fn load(store: Arc<dyn KeyStore>) -> Result<Self> {
        let all = store.load_all().await?;
        let cache = all
            .into_iter()
            .filter(|(_, s)| !matches!(s, KeyState::Missing))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                cache: RwLock::new(cache),
            }),
        })
    }

    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.inner.store
    }

    /// What the cache holds for `id`; `None` when it holds nothing (ask [`Keyring::key`]).
    pub fn cached(&self, id: &KeyId) -> Option<KeyState> {
        self.read().get(id).cloned()
    }

    /// The cache's answer, else the store's (which is then cached unless `Missing`).
    pub async fn key(&self, id: &KeyId) -> Result<KeyState> {
        match self.cached(id) {
            Some(s) => Ok(s),
            None => self.refresh(id).await,
        }
    }

    /// Asks the store, bypassing the cache, and caches its answer (`Missing` evicts).
    pub async fn refresh(&self, id: &KeyId) -> Result<KeyState> {
        let state = self.inner.store.get(id).await?;
        self.remember(id, &state);
        Ok(state)
    }

    /// Get-or-create (see [`KeyStore::create`]): the live key, from the cache when it is there.
    pub async fn create(&self, id: &KeyId) -> Result<DataKey> {
        match self.cached(id) {
            Some(KeyState::Live(k)) => return Ok(k),
            Some(KeyState::Destroyed { destroyed_at }) => {
                return Err(KeyError::Destroyed {
                    id: id.clone(),
                    destroyed_at,
                });
            }
            _ => {}
        }
        match self.inner.store.create(id).await {
            Ok(k) => {
                self.remember(id, &KeyState::Live(k.clone()));
                Ok(k)
            }
            Err(KeyError::Destroyed { id, destroyed_at }) => {
                self.remember(&id, &KeyState::Destroyed { destroyed_at });
                Err(KeyError::Destroyed { id, destroyed_at })
            }
            Err(e) => Err(e),
        }
    }

    /// See [`KeyStore::adopt`]; the key it returns is cached.
    pub async fn adopt(&self, id: &KeyId, fits: crate::Fits) -> Result<Option<DataKey>> {
        let adopted = self.inner.store.adopt(id, fits).await?;
        if let Some(k) = &adopted {
            self.remember(id, &KeyState::Live(k.clone()));
        }
        Ok(adopted)
    }

    /// Destroys the key in the store first; only then does the cache forget the key and hold
    /// `Destroyed`, with the time the store remembers (the first destruction's, on a repeat).
    pub async fn destroy(&self, id: &KeyId, at: DateTime<Utc>) -> Result<()> {
        self.inner.store.destroy(id, at).await?;
        let state = match self.inner.store.get(id).await {
            Ok(s @ KeyState::Destroyed { .. }) => s,
            // The store said it destroyed the key; if it cannot be asked now, `at` is the best
            // time there is (and the cache must not keep the key in any case).
            _ => KeyState::Destroyed {
                destroyed_at: crate::record::tombstone_time(at),
            },
        };
        self.remember(id, &state);
        Ok(())
    }

    fn remember(&self, id: &KeyId, state: &KeyState) {
        let mut cache = self.inner.cache.write().unwrap_or_else(|p| p.into_inner());
        match state {
            KeyState::Missing => {
                cache.remove(id);
            }
            s => {
                cache.insert(id.clone(), s.clone());
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<KeyId, KeyState>> {
        self.inner.cache.read().unwrap_or_else(|p| p.into_inner())
    }
}
