//! The access log over an event store of its own: the one place that knows how an access
//! record lives in a store.

use std::collections::BTreeMap;
use std::sync::Arc;

use keten_domain::FamilyId;
use keten_log::{
    Direction, EventId, EventStore, EventType, ExpectedVersion, GlobalPosition, ProposedEvent,
    ReadFrom, RecordedEvent, StreamId, StreamVersion, TailCut, Until,
};

use crate::error::{AccessError, Result};
use crate::record::AccessRecord;

/// Every access stream starts with this; a whole-log reader passes over other streams.
pub const STREAM_PREFIX: &str = "access-";
/// The streams of single families start with this.
pub const FAMILY_STREAM_PREFIX: &str = "access-family-";
/// The stream of searches over many families (records with `family: None`).
pub const SEARCH_STREAM: &str = "access-search";

/// The stream of the access log's own notes about itself: the records a power loss cost. Not an
/// access stream (no `access-` prefix), so readers of access records pass over it; it is in the
/// chain like every record, so `keten verify` covers it.
pub const LOSS_STREAM: &str = "log-loss";
/// The event type of a note in [`LOSS_STREAM`].
pub const LOSS_EVENT: &str = "RecordsLost";

/// Records read back per store call.
const PAGE: usize = 1024;

/// The stream an access record belongs to: `access-family-<family id>` for one family,
/// [`SEARCH_STREAM`] otherwise. The family streams have a prefix of their own so that no family
/// id (`search` is a valid one) can name the search stream.
pub fn stream_id(family: Option<&FamilyId>) -> StreamId {
    match family {
        Some(family) => StreamId::new(format!("{FAMILY_STREAM_PREFIX}{family}"))
            .expect("a family id is at most 64 ASCII characters without control characters"),
        None => StreamId::new(SEARCH_STREAM).expect("a constant, valid stream id"),
    }
}

/// An access record as stored, with its place in the access log's global order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub position: GlobalPosition,
    pub record: AccessRecord,
}

impl AsRef<AccessRecord> for Logged {
    fn as_ref(&self) -> &AccessRecord {
        &self.record
    }
}

/// The access log (NEN 7513) over its own [`EventStore`]: a `FileLog` in `<data>/access/` on
/// the embedded backend, a stream of its own on JetStream. Never the event log's store: the
/// access log is kept on its own terms (five years, also after erasure) and has its own chain.
///
/// Cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    store: Arc<dyn EventStore>,
    ids: Arc<RecordIds>,
}

/// Event ids for access records: unique, not secret. A random half drawn once per access log
/// and a counter, instead of a `getrandom` system call per record (on the path of every read).
#[derive(Debug)]
struct RecordIds {
    random: u64,
    next: std::sync::atomic::AtomicU64,
}

impl RecordIds {
    fn new() -> Self {
        let seed = uuid::Uuid::new_v4().as_u64_pair();
        Self {
            random: seed.0,
            next: std::sync::atomic::AtomicU64::new(seed.1),
        }
    }

    fn next(&self) -> EventId {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let bytes = uuid::Uuid::from_u64_pair(self.random, n).into_bytes();
        EventId(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog").finish_non_exhaustive()
    }
}

impl AccessLog {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            ids: Arc::new(RecordIds::new()),
        }
    }

    /// Writes one record and returns its position once the store has taken it: durable with a
    /// `FileLog` in `Durability::Fsync` (concurrent records share one `fdatasync` by group
    /// commit); written to the page cache and flushed within the interval with
    /// `Durability::Interval`, the access log's default (README, "Access log": what a power
    /// loss can cost and why that is acceptable). The caller answers the access only after
    /// this returned `Ok`.
    ///
    /// Each record gets a fresh event id, so a caller that retries after an error may log an
    /// access twice: the log over-reports rather than under-reports.
    pub async fn record(&self, rec: &AccessRecord) -> Result<GlobalPosition> {
        // Taken and written at once: the deferred form, awaited straight away.
        self.record_deferred(rec).await
    }

    /// [`AccessLog::record`] for a caller with other work to wait for first (a publish, which
    /// waits for its event's flush): the record is checked and taken now, and may be written
    /// together with other records (see `EventStore::append_deferred`); the returned future
    /// answers as `record` would, once the record is written. The caller answers the access
    /// only after that. A record that fails its check fails the future.
    pub fn record_deferred(
        &self,
        rec: &AccessRecord,
    ) -> futures::future::BoxFuture<'_, Result<GlobalPosition>> {
        if let Err(e) = rec.validate() {
            return Box::pin(std::future::ready(Err(e)));
        }
        let appended = self.store.append_deferred(
            stream_id(rec.family.as_ref()),
            ExpectedVersion::Any,
            vec![encode(rec, self.ids.next())],
        );
        Box::pin(async move { Ok(appended.await?.first_position) })
    }

    /// Writes several records and returns their positions in the order given, once all are
    /// durable. The records of one stream (one family, or the searches) are appended together,
    /// all or none; different streams are appended concurrently, so the store commits them in
    /// one group. On an error some streams' records may be durable and others not: the caller
    /// must treat the whole access as not logged (and not answer it).
    ///
    /// For a search, this records the search itself and one record per listed family, so that
    /// each family's report shows it was found.
    pub async fn record_many(&self, recs: &[AccessRecord]) -> Result<Vec<GlobalPosition>> {
        for rec in recs {
            rec.validate()?;
        }
        // Per stream, the indexes of its records in `recs`, in order.
        let mut by_stream: BTreeMap<StreamId, Vec<usize>> = BTreeMap::new();
        for (i, rec) in recs.iter().enumerate() {
            by_stream
                .entry(stream_id(rec.family.as_ref()))
                .or_default()
                .push(i);
        }
        let appends = by_stream.into_iter().map(|(stream, indexes)| async move {
            let events = indexes
                .iter()
                .map(|&i| encode(&recs[i], self.ids.next()))
                .collect();
            let result = self
                .store
                .append(&stream, ExpectedVersion::Any, events)
                .await?;
            Ok::<_, AccessError>((indexes, result.first_position))
        });
        let mut positions = vec![GlobalPosition(0); recs.len()];
        for (indexes, first) in futures::future::try_join_all(appends).await? {
            // One append's events take consecutive global positions.
            for (k, i) in indexes.into_iter().enumerate() {
                positions[i] = GlobalPosition(first.0 + k as u64);
            }
        }
        Ok(positions)
    }

    /// Every record about one family, in the order they were logged. Searches over many
    /// families are not included (they name no family).
    pub async fn for_family(&self, family: &FamilyId) -> Result<Vec<Logged>> {
        let stream = stream_id(Some(family));
        let mut out = Vec::new();
        let mut from = ReadFrom::Start;
        loop {
            let page = self
                .store
                .read_stream(&stream, from, Direction::Forward, PAGE, Until::Latest)
                .await?;
            for recorded in &page {
                out.push(decode(recorded)?);
            }
            match page.last() {
                Some(last) if page.len() == PAGE => {
                    from = ReadFrom::At(StreamVersion(last.version.0 + 1));
                }
                _ => return Ok(out),
            }
        }
    }

    /// Up to `limit` records of the whole access log from position `from` (inclusive; the start
    /// when `None`), in order. To page on, pass the last position plus one. Events of streams
    /// that are not access streams are passed over: the store should hold none.
    pub async fn read(&self, from: Option<GlobalPosition>, limit: usize) -> Result<Vec<Logged>> {
        let mut out = Vec::new();
        let mut from = from.map_or(ReadFrom::Start, ReadFrom::At);
        while out.len() < limit {
            let want = (limit - out.len()).min(PAGE);
            let page = self
                .store
                .read_all(from, Direction::Forward, want, Until::Latest)
                .await?;
            for recorded in &page {
                if recorded.stream.as_str().starts_with(STREAM_PREFIX) {
                    out.push(decode(recorded)?);
                }
            }
            match page.last() {
                Some(last) if page.len() == want => {
                    from = ReadFrom::At(GlobalPosition(last.position.0 + 1));
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Writes into the access log itself what opening it had to cut off after a power loss or
    /// kernel crash (`Durability::Interval`: records acknowledged within the last flush
    /// interval), so that the loss is on the record, in the chain, at the place it happened:
    /// the note takes the first lost position. A torn write that was never acknowledged is not
    /// a loss and is not noted. Returns the note's position, if one was written.
    pub async fn record_tail_cut(
        &self,
        cut: &TailCut,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<GlobalPosition>> {
        if !cut.unflushed {
            return Ok(None);
        }
        let note = serde_json::json!({
            "at": at,
            "what": "access records acknowledged but not yet flushed were lost in a power loss \
                     or kernel crash; the access log was cut where they began",
            "file": cut.file.display().to_string(),
            "offset": cut.offset,
            "first_lost_position": cut.position,
            "bytes_lost": cut.bytes,
            "records_lost_at_least": cut.records,
            "reason": cut.reason,
        });
        let event = ProposedEvent {
            id: EventId(uuid::Uuid::new_v4()),
            event_type: EventType::new(LOSS_EVENT).expect("a constant, valid event type"),
            metadata: Vec::new(),
            payload: serde_json::to_vec(&note).expect("a JSON value always serializes"),
        };
        let stream = StreamId::new(LOSS_STREAM).expect("a constant, valid stream id");
        let result = self
            .store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await?;
        Ok(Some(result.first_position))
    }

    /// Walks the access log's own hash chain and checksums (the store's verification); `Ok`
    /// carries the number of records verified.
    pub async fn verify(&self) -> Result<u64> {
        Ok(self.store.verify().await?)
    }
}

fn encode(rec: &AccessRecord, id: EventId) -> ProposedEvent {
    // A record is 300 to 600 bytes: one allocation instead of growing from serde_json's 128.
    let mut payload = Vec::with_capacity(768);
    crate::json::write_record(&mut payload, rec);
    ProposedEvent {
        id,
        event_type: EventType::new(rec.action.as_str()).expect("action names are valid"),
        metadata: Vec::new(),
        payload,
    }
}

/// Reads a record back and checks it against where it was stored: its stream must be its
/// family's (or the search stream), its event type its action.
fn decode(recorded: &RecordedEvent) -> Result<Logged> {
    let fail = |reason: String| AccessError::Decode {
        position: recorded.position,
        stream: recorded.stream.as_str().to_string(),
        reason,
    };
    let record: AccessRecord =
        serde_json::from_slice(&recorded.payload).map_err(|e| fail(format!("payload: {e}")))?;
    if stream_id(record.family.as_ref()) != recorded.stream {
        return Err(fail(format!(
            "the record is about {} but is stored in another stream",
            record
                .family
                .as_ref()
                .map_or("no single family".to_string(), |f| format!("family {f}"))
        )));
    }
    if recorded.event_type.as_str() != record.action.as_str() {
        return Err(fail(format!(
            "stored as `{}` but the record's action is `{}`",
            recorded.event_type, record.action
        )));
    }
    Ok(Logged {
        position: recorded.position,
        record,
    })
}
