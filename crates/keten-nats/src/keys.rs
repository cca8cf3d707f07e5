//! The JetStream backend's key store ([`NatsKeyStore`]): keten's data keys in a KV bucket beside
//! the log's stream, so that every keten server on the cluster sees the same keys.
//!
//! Layout: bucket `KETEN_KEYS` (stream `KV_KETEN_KEYS`), file storage, history 1, replicas as
//! configured (3 on a cluster). For a key id `<id>`:
//!
//! - `key.<id>` holds the key record (`keten_keys::record`, the key's 32 raw bytes in it);
//! - `tomb.<id>` holds the tombstone (the destruction's time). It is a key of its own, written
//!   *before* the key is erased, so that no moment exists in which the key is gone but `get`
//!   answers `Missing` (which would let `create` make a fresh key for an erased family).
//!
//! Both are written with KV create (`Nats-Expected-Last-Subject-Sequence: 0`), the one
//! compare-and-set between servers: two servers racing to create a key both end up with the
//! winner's key, and a second destruction keeps the first one's time. An acknowledged create is
//! on disk because keten only runs on servers that fsync before acknowledging (`NatsLog::connect`
//! checks that; build this store on its client, [`crate::NatsLog::client`]).
//!
//! Destroy erases the key's message with `$JS.API.STREAM.MSG.DELETE` and `no_erase: false`:
//! the server overwrites the stored message with random bytes in its block file. A plain
//! delete (`no_erase: true`; checked: the key's bytes then stay in the block file), a KV delete
//! or purge, or a replacement through history 1 only mark it deleted and leave the bytes until
//! the block is compacted. That is why the bucket allows message delete, unlike the log's
//! stream. History 1 means no older revision of a key exists to erase.
//!
//! Limits, stated (and tested in `tests/keys.rs`): on a single server the key's bytes are gone
//! from the store directory when destroy returns. On a replicated bucket every replica erases
//! its copy of the stream when it applies the delete, but each replica's Raft log
//! (`$SYS/_js_/S-R3F-*/msgs/`) still holds the original publish until the stream's next
//! snapshot compacts it; nats-server snapshots on a two-minute timer when the stream changed,
//! and with 2.15.1 the last copy went 2.5 to 3 minutes after the destroy (compaction removes
//! those log blocks; that it overwrites them is not something keten relies on). And like any
//! overwrite, erasure cannot reach SSD wear-levelling copies, copy-on-write filesystems,
//! snapshots or backups of the servers' store directories: keep those out of backups, or back
//! them up with a retention no longer than erasure allows. Reads go to the stream leader (direct get is off), so a server never
//! reads a stale "missing" from a lagging replica.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_trait::async_trait;
use keten_keys::chrono::{DateTime, Utc};
use keten_keys::record::{self, Record};
use keten_keys::{DataKey, KeyError, KeyId, KeyState, KeyStore};

/// The server's error code for "no message found".
const NO_MESSAGE_FOUND: u64 = 10037;

#[derive(Clone, Debug)]
pub struct NatsKeyStoreOptions {
    /// The KV bucket (its stream is `KV_<bucket>`).
    pub bucket: String,
    /// Replicas the bucket must have (3 on a cluster, 1 on a single server).
    pub replicas: usize,
    /// Create the bucket when it does not exist (an existing one is only checked).
    pub create: bool,
    /// One request to JetStream.
    pub request_timeout: Duration,
}

impl Default for NatsKeyStoreOptions {
    fn default() -> Self {
        Self {
            bucket: "KETEN_KEYS".into(),
            replicas: 1,
            create: true,
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl NatsKeyStoreOptions {
    pub fn stream_name(&self) -> String {
        format!("KV_{}", self.bucket)
    }

    /// A KV bucket's stream, with what keys need: history 1, file storage, nothing that
    /// expires or drops a key, message delete allowed (for erasure), purge and rollup denied
    /// (neither erases), reads through the leader.
    pub fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream_name(),
            description: Some("keten data keys".into()),
            subjects: vec![format!("$KV.{}.>", self.bucket)],
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::New,
            max_messages_per_subject: 1,
            max_messages: -1,
            max_bytes: -1,
            max_age: Duration::ZERO,
            deny_delete: false,
            deny_purge: true,
            allow_rollup: false,
            allow_direct: false,
            ..Default::default()
        }
    }

    /// Every way `c` falls short of [`Self::stream_config`]'s promises; empty when it keeps them.
    pub fn check_stream(&self, c: &stream::Config) -> Vec<String> {
        let mut p = Vec::new();
        let mut need = |ok: bool, what: String| {
            if !ok {
                p.push(what);
            }
        };
        need(
            c.storage == stream::StorageType::File,
            "storage must be file (memory storage loses every key on restart)".into(),
        );
        need(
            c.num_replicas >= self.replicas,
            format!(
                "replicas must be at least {} (it is {})",
                self.replicas, c.num_replicas
            ),
        );
        need(
            c.max_messages_per_subject == 1,
            format!(
                "history must be 1 (it is {}): an older revision would be a copy erasure cannot reach",
                c.max_messages_per_subject
            ),
        );
        need(
            c.retention == stream::RetentionPolicy::Limits,
            "retention must be limits".into(),
        );
        need(
            c.max_messages <= 0 && c.max_bytes <= 0 && c.max_age.is_zero(),
            "max_msgs, max_bytes and max_age must be unlimited (a key must never expire)".into(),
        );
        need(
            !c.deny_delete,
            "message delete must be allowed (erasing a key is a message delete)".into(),
        );
        need(
            c.mirror.is_none() && c.sources.as_ref().is_none_or(Vec::is_empty),
            "the bucket must not be a mirror or have sources".into(),
        );
        need(
            c.republish.is_none(),
            "no republish (it would copy keys elsewhere)".into(),
        );
        need(
            c.compression
                .as_ref()
                .is_none_or(|x| *x == stream::Compression::None),
            "compression must be off (erasure overwrites the message's bytes in place)".into(),
        );
        p
    }
}

/// [`KeyStore`] on a JetStream KV bucket. Cheap to clone.
#[derive(Clone)]
pub struct NatsKeyStore {
    js: jetstream::Context,
    kv: kv::Store,
    stream: String,
    /// How long a create retries what a cluster answers while a server there does not yet know
    /// the bucket (the request timeout).
    settle: Duration,
}

impl NatsKeyStore {
    /// Opens the bucket on `client` (creating it when allowed and missing) and checks its
    /// configuration. Give it the client of a connected [`crate::NatsLog`], which checked that
    /// the servers fsync before acknowledging.
    pub async fn open(
        client: async_nats::Client,
        opts: NatsKeyStoreOptions,
    ) -> keten_keys::Result<Self> {
        let stream_name = opts.stream_name();
        let fail = |reason: String| KeyError::Backend {
            store: format!("jetstream:{stream_name}"),
            id: None,
            reason,
        };
        let mut js = jetstream::new(client);
        js.set_timeout(opts.request_timeout);
        let config = crate::jsapi::ensure_stream(
            &js,
            opts.stream_config(),
            opts.create,
            opts.request_timeout,
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        let problems = opts.check_stream(&config);
        if !problems.is_empty() {
            return Err(fail(format!(
                "the bucket cannot keep keten's promises: {}",
                problems.join("; ")
            )));
        }
        let kv = js
            .get_key_value(&opts.bucket)
            .await
            .map_err(|e| fail(format!("open the bucket: {e}")))?;
        // A bucket's replicas answer reads (direct gets, served by any replica) only once they
        // have the stream; right after it is created on a cluster, a read that reaches one
        // that has not fails with "no stream found for given subject". So the store is ready
        // when the bucket has a leader and every replica is current.
        let deadline = tokio::time::Instant::now() + opts.request_timeout;
        let mut stream = js
            .get_stream(&stream_name)
            .await
            .map_err(|e| fail(format!("stream lookup: {e}")))?;
        loop {
            let info = stream
                .info()
                .await
                .map_err(|e| fail(format!("stream info: {e}")))?
                .cluster
                .clone();
            let ready = info.is_none_or(|c| {
                c.leader.is_some() && c.replicas.iter().all(|r| r.current && !r.offline)
            });
            if ready {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(fail(format!(
                    "the bucket's replicas are not all current after {:?}",
                    opts.request_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            js,
            kv,
            stream: stream_name,
            settle: opts.request_timeout,
        })
    }

    fn fail(&self, id: &KeyId, what: &str, e: impl std::fmt::Display) -> KeyError {
        KeyError::Backend {
            store: format!("jetstream:{}", self.stream),
            id: Some(id.clone()),
            reason: format!("{what}: {e}"),
        }
    }

    /// The current value under `name` and its revision (stream sequence), if any.
    async fn entry(&self, id: &KeyId, name: &str) -> keten_keys::Result<Option<(Record, u64)>> {
        let entry = self
            .kv
            .entry(name)
            .await
            .map_err(|e| self.fail(id, &format!("read {name}"), e))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let rec = record::decode(&e.value)
                    .map_err(|r| self.fail(id, &format!("{name} (revision {})", e.revision), r))?;
                Ok(Some((rec, e.revision)))
            }
            _ => Ok(None),
        }
    }

    async fn tombstone(&self, id: &KeyId) -> keten_keys::Result<Option<DateTime<Utc>>> {
        match self.entry(id, &tomb_name(id)).await? {
            Some((Record::Tombstone { destroyed_at }, _)) => Ok(Some(destroyed_at)),
            Some((Record::Key(_), rev)) => Err(self.fail(
                id,
                "tombstone",
                format!("revision {rev} holds a key record"),
            )),
            None => Ok(None),
        }
    }

    async fn live(&self, id: &KeyId) -> keten_keys::Result<Option<(DataKey, u64)>> {
        match self.entry(id, &key_name(id)).await? {
            Some((Record::Key(k), rev)) => Ok(Some((k, rev))),
            Some((Record::Tombstone { .. }, rev)) => {
                Err(self.fail(id, "key", format!("revision {rev} holds a tombstone")))
            }
            None => Ok(None),
        }
    }

    /// Erases every stored message of the key (with history 1, at most one; a racing create
    /// may add one, hence the loop).
    async fn erase_key(&self, id: &KeyId) -> keten_keys::Result<()> {
        // Bounded: a stream that keeps showing an erased message must fail loudly, not spin.
        for _ in 0..8 {
            match self.live(id).await? {
                Some((_, seq)) => self.erase(id, seq).await?,
                None => return Ok(()),
            }
        }
        Err(self.fail(
            id,
            "erase",
            "the key is still stored after repeated erasures",
        ))
    }

    /// `$JS.API.STREAM.MSG.DELETE` with `no_erase: false`: the server overwrites the message.
    /// (async-nats' `Stream::delete_message` sends no `no_erase` and so erases too, by the
    /// server's default; saying it here keeps the promise from resting on a default.)
    async fn erase(&self, id: &KeyId, seq: u64) -> keten_keys::Result<()> {
        let answer: serde_json::Value = self
            .js
            .request(
                format!("STREAM.MSG.DELETE.{}", self.stream),
                &serde_json::json!({ "seq": seq, "no_erase": false }),
            )
            .await
            .map_err(|e| self.fail(id, &format!("erase sequence {seq}"), e))?;
        if answer["success"] == true {
            return Ok(());
        }
        let err = &answer["error"];
        if err["err_code"].as_u64() == Some(NO_MESSAGE_FOUND) {
            // Another server erased it first.
            return Ok(());
        }
        Err(self.fail(id, &format!("erase sequence {seq}"), err))
    }

    async fn state(&self, id: &KeyId) -> keten_keys::Result<KeyState> {
        if let Some(destroyed_at) = self.tombstone(id).await? {
            return Ok(KeyState::Destroyed { destroyed_at });
        }
        Ok(match self.live(id).await? {
            Some((k, _)) => KeyState::Live(k),
            None => KeyState::Missing,
        })
    }

    /// A create that lost to a destroy: the tombstone wins, and the key just written goes.
    async fn refuse_destroyed(&self, id: &KeyId, destroyed_at: DateTime<Utc>) -> KeyError {
        match self.erase_key(id).await {
            Ok(()) => KeyError::Destroyed {
                id: id.clone(),
                destroyed_at,
            },
            Err(e) => e,
        }
    }
}

fn key_name(id: &KeyId) -> String {
    format!("key.{id}")
}

fn tomb_name(id: &KeyId) -> String {
    format!("tomb.{id}")
}

#[async_trait]
impl KeyStore for NatsKeyStore {
    /// Also finishes what a crash interrupted: a key still stored beside its tombstone is erased.
    async fn load_all(&self) -> keten_keys::Result<Vec<(KeyId, KeyState)>> {
        use futures::TryStreamExt;
        let whole = |e: &dyn std::fmt::Display| KeyError::Backend {
            store: format!("jetstream:{}", self.stream),
            id: None,
            reason: format!("list keys: {e}"),
        };
        let names: Vec<String> = match self.kv.keys().await {
            Ok(keys) => keys.try_collect().await.map_err(|e| whole(&e))?,
            Err(e) => return Err(whole(&e)),
        };
        let mut ids = std::collections::BTreeSet::new();
        for name in names {
            let id = name
                .strip_prefix("key.")
                .or_else(|| name.strip_prefix("tomb."))
                .and_then(|s| KeyId::new(s).ok())
                .ok_or_else(|| whole(&format!("unexpected key {name:?} in the bucket")))?;
            ids.insert(id);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let state = self.state(&id).await?;
            if matches!(state, KeyState::Destroyed { .. }) {
                self.erase_key(&id).await?;
            }
            out.push((id, state));
        }
        Ok(out)
    }

    async fn get(&self, id: &KeyId) -> keten_keys::Result<KeyState> {
        self.state(id).await
    }

    async fn create(&self, id: &KeyId) -> keten_keys::Result<DataKey> {
        match self.state(id).await? {
            KeyState::Live(k) => return Ok(k),
            KeyState::Destroyed { destroyed_at } => {
                return Err(KeyError::Destroyed {
                    id: id.clone(),
                    destroyed_at,
                });
            }
            KeyState::Missing => {}
        }
        let key = DataKey::generate();
        let rec = record::encode_key(&key);
        // On a cluster, a server that does not yet know a bucket created moments ago answers
        // "no stream found for given subject", which `create` reports as `Other`: tried again
        // until the request timeout. A retry of a create that did land finds the key there
        // (`AlreadyExists`, below), and it is this very key.
        let deadline = tokio::time::Instant::now() + self.settle;
        let created = loop {
            let created = self
                .kv
                .create(key_name(id), bytes::Bytes::copy_from_slice(&rec))
                .await;
            match &created {
                Err(e)
                    if e.kind() == kv::CreateErrorKind::Other
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => break created,
            }
        };
        let key = match created {
            Ok(_) => key,
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                // Another server won the race: its key is the key.
                match self.live(id).await? {
                    Some((k, _)) => k,
                    None => match self.tombstone(id).await? {
                        Some(at) => return Err(self.refuse_destroyed(id, at).await),
                        None => {
                            return Err(self.fail(
                                id,
                                "create",
                                "lost the race, yet no key is stored (erased meanwhile?)",
                            ));
                        }
                    },
                }
            }
            Err(e) => return Err(self.fail(id, "create", e)),
        };
        // A destroy that ran between the first look and the create put its tombstone before
        // looking for a key to erase, so one of the two sees the other.
        if let Some(at) = self.tombstone(id).await? {
            return Err(self.refuse_destroyed(id, at).await);
        }
        Ok(key)
    }

    async fn destroy(&self, id: &KeyId, at: DateTime<Utc>) -> keten_keys::Result<()> {
        match self
            .kv
            .create(tomb_name(id), record::encode_tombstone(at).into())
            .await
        {
            Ok(_) => {}
            // Destroyed before: the first time stands; erase again in case a crash stopped the
            // first destroy before its erase.
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(self.fail(id, "write the tombstone", e)),
        }
        self.erase_key(id).await
    }
}
