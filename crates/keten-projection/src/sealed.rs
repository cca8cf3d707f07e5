//! Families' payloads sealed at rest: an [`EventStore`] in front of the log that seals every
//! family event's payload with that family's key on append and opens it on read.
//!
//! - The key of a family is named by its stream id (a pseudonym) and lives in a
//!   [`keten_keys::KeyStore`] beside the log, never in it. Appending a family's first event
//!   creates the key, durably, before the event is written: an event sealed with a key that a
//!   crash then lost would be lost data.
//! - The associated data binds a ciphertext to its stream and event id, so that a sealed
//!   payload moved to another family or event does not open.
//! - Sealing is deterministic for the same key, place and plaintext (see
//!   [`keten_keys::seal_deterministic`]): a retried append carries the same bytes, so the log
//!   recognises it as the same event instead of an id reused for other content.
//! - What stays in clear: stream ids (pseudonyms), event types, metadata (who published, for
//!   which purpose) and the `FamilyErased` event, which holds no personal data and must stay
//!   readable after the key is gone.
//! - Once a family's key is destroyed (crypto-shredding), its events read back with an empty
//!   payload ([`is_erased`]); their stored bytes, and so the hash chain, checksums and Merkle
//!   proofs over them, are unchanged. Reads of the stored bytes themselves (verification,
//!   proofs, an auditor's export of ciphertext) go to [`Sealed::raw`].
//!
//! Architecture invariant: every read of family data in keten goes through this store; only
//! the proofs and the verification read the raw log.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use keten_keys::{KeyId, KeyState, Keyring};
use keten_log::{
    AppendResult, CommitTime, Direction, EventStore, EventStream, ExpectedVersion, GlobalPosition,
    ProposedEvent, ReadFrom, RecordedEvent, StreamId, StreamVersion, SubscriptionFilter, Until,
};

use crate::stored;

/// The type of the one family event stored in clear.
pub const ERASED_TYPE: &str = "FamilyErased";

/// An event of an erased family, read back: its payload could not be opened because the key
/// is gone.
pub fn is_erased(rec: &RecordedEvent) -> bool {
    rec.payload.is_empty() && stored::family_str(rec.stream.as_str()).is_some()
}

/// The key id of a family's stream.
pub fn key_id(stream: &StreamId) -> KeyId {
    KeyId::new(stream.as_str()).expect("a family stream id is a valid key id")
}

/// The log with families' payloads sealed.
#[derive(Clone)]
pub struct Sealed {
    inner: Arc<dyn EventStore>,
    keys: Keyring,
    /// Families whose `FamilyErased` this store has seen. Their events read back as erased at
    /// once, also while this server still holds their key in its cache: with several servers
    /// on one JetStream, the one that erases destroys the key in the shared store, and the
    /// others learn of it from the event.
    erased: Arc<Mutex<HashSet<KeyId>>>,
}

impl Sealed {
    pub fn new(inner: Arc<dyn EventStore>, keys: Keyring) -> Self {
        Self {
            inner,
            keys,
            erased: Arc::default(),
        }
    }

    fn is_erased_here(&self, id: &KeyId) -> bool {
        self.erased.lock().expect("not poisoned").contains(id)
    }

    fn note_erased(&self, id: KeyId) {
        self.erased.lock().expect("not poisoned").insert(id);
    }

    /// The log as stored: ciphertext and all.
    pub fn raw(&self) -> &Arc<dyn EventStore> {
        &self.inner
    }

    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    async fn seal(
        &self,
        stream: &StreamId,
        mut events: Vec<ProposedEvent>,
    ) -> keten_log::Result<Vec<ProposedEvent>> {
        if stored::family_str(stream.as_str()).is_none()
            || events.iter().all(|e| e.event_type.as_str() == ERASED_TYPE)
        {
            return Ok(events);
        }
        let id = key_id(stream);
        let key = self.keys.create(&id).await.map_err(|e| match e {
            keten_keys::KeyError::Destroyed { .. } => keten_log::Error::InvalidAppend(format!(
                "family stream `{stream}` is erased: its key was destroyed"
            )),
            other => keten_log::Error::Backend(format!("key store: {other}")),
        })?;
        for e in events
            .iter_mut()
            .filter(|e| e.event_type.as_str() != ERASED_TYPE)
        {
            e.payload = keten_keys::seal_deterministic(&key, &aad(stream, &e.id), &e.payload);
        }
        Ok(events)
    }

    async fn open(&self, mut rec: RecordedEvent) -> keten_log::Result<RecordedEvent> {
        if stored::family_str(rec.stream.as_str()).is_none() {
            return Ok(rec);
        }
        if rec.event_type.as_str() == ERASED_TYPE {
            self.note_erased(key_id(&rec.stream));
        }
        if !keten_keys::is_sealed(&rec.payload) {
            return Ok(rec);
        }
        let id = key_id(&rec.stream);
        if self.is_erased_here(&id) {
            rec.payload = Vec::new();
            return Ok(rec);
        }
        let state = match self.keys.cached(&id) {
            Some(state) => state,
            None => self
                .keys
                .key(&id)
                .await
                .map_err(|e| keten_log::Error::Backend(format!("key store: {e}")))?,
        };
        match state {
            KeyState::Live(key) => {
                rec.payload = keten_keys::open(&key, &aad(&rec.stream, &rec.id), &rec.payload)
                    .map_err(|e| {
                        keten_log::Error::Backend(format!(
                            "the payload of event {} at global position {} in `{}` does not open \
                             with the family's key: {e}",
                            rec.id, rec.position, rec.stream
                        ))
                    })?;
            }
            KeyState::Destroyed { .. } => rec.payload = Vec::new(),
            KeyState::Missing => {
                // A family created just before a power cut may have lost the binding to its
                // key, not the key: its sealed payload proves which leftover key is its own.
                let bound = aad(&rec.stream, &rec.id);
                let payload = rec.payload.clone();
                let fits: keten_keys::Fits =
                    Box::new(move |k| keten_keys::open(k, &bound, &payload).is_ok());
                let adopted = self
                    .keys
                    .adopt(&id, fits)
                    .await
                    .map_err(|e| keten_log::Error::Backend(format!("key store: {e}")))?;
                if let Some(key) = adopted {
                    tracing::warn!(
                        family_stream = %rec.stream,
                        "the family's key had lost its binding (a power cut just after the \
                         family's first event); bound again to the key its events open with"
                    );
                    rec.payload = keten_keys::open(&key, &aad(&rec.stream, &rec.id), &rec.payload)
                        .map_err(|e| keten_log::Error::Backend(format!("key store: {e}")))?;
                    return Ok(rec);
                }
                return Err(keten_log::Error::Backend(format!(
                    "event {} at global position {} in `{}` is sealed, but the key store holds \
                     no key for that family: the key store is missing or belongs to another log",
                    rec.id, rec.position, rec.stream
                )));
            }
        }
        Ok(rec)
    }

    async fn open_all(&self, recs: Vec<RecordedEvent>) -> keten_log::Result<Vec<RecordedEvent>> {
        let mut out = Vec::with_capacity(recs.len());
        for rec in recs {
            out.push(self.open(rec).await?);
        }
        Ok(out)
    }

    fn open_stream(&self, stream: EventStream) -> EventStream {
        let this = self.clone();
        stream
            .then(move |item| {
                let this = this.clone();
                async move {
                    match item {
                        Ok(rec) => this.open(rec).await,
                        Err(e) => Err(e),
                    }
                }
            })
            .boxed()
    }
}

/// What a sealed payload is bound to: its stream and its event id.
fn aad(stream: &StreamId, id: &keten_log::EventId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(stream.as_str().len() + 17);
    aad.extend_from_slice(stream.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(id.0.as_bytes());
    aad
}

#[async_trait::async_trait]
impl EventStore for Sealed {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> keten_log::Result<AppendResult> {
        let erasure = events.iter().any(|e| e.event_type.as_str() == ERASED_TYPE);
        let events = self.seal(stream, events).await?;
        let appended = self.inner.append(stream, expected, events).await?;
        if erasure {
            self.note_erased(key_id(stream));
        }
        Ok(appended)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: ReadFrom<StreamVersion>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> keten_log::Result<Vec<RecordedEvent>> {
        let recs = self
            .inner
            .read_stream(stream, from, direction, limit, until)
            .await?;
        self.open_all(recs).await
    }

    async fn read_all(
        &self,
        from: ReadFrom<GlobalPosition>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> keten_log::Result<Vec<RecordedEvent>> {
        let recs = self.inner.read_all(from, direction, limit, until).await?;
        self.open_all(recs).await
    }

    async fn stream_version(&self, stream: &StreamId) -> keten_log::Result<Option<StreamVersion>> {
        self.inner.stream_version(stream).await
    }

    async fn head(&self) -> keten_log::Result<Option<GlobalPosition>> {
        self.inner.head().await
    }

    async fn position_at(&self, time: CommitTime) -> keten_log::Result<Option<GlobalPosition>> {
        self.inner.position_at(time).await
    }

    async fn subscribe_all(
        &self,
        after: Option<GlobalPosition>,
        filter: SubscriptionFilter,
    ) -> keten_log::Result<EventStream> {
        let s = self.inner.subscribe_all(after, filter).await?;
        Ok(self.open_stream(s))
    }

    async fn subscribe_stream(
        &self,
        stream: &StreamId,
        after: Option<StreamVersion>,
    ) -> keten_log::Result<EventStream> {
        let s = self.inner.subscribe_stream(stream, after).await?;
        Ok(self.open_stream(s))
    }

    async fn verify(&self) -> keten_log::Result<u64> {
        self.inner.verify().await
    }
}
