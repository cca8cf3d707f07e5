//! Reads that fold from the log on demand: one family as of a position or time, one family
//! now (for validation before an append), a watch on one family, and a whole rebuild.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use futures::StreamExt;
use futures::stream::BoxStream;
use keten_domain::{FamilyId, FamilyState};
use keten_log::{
    CommitTime, Direction, EventId, EventStore, GlobalPosition, ReadFrom, RecordedEvent,
    StreamVersion, Until,
};

use crate::error::{Error, Result};
use crate::fold::{self, Anchor, FamilyView, Slot, Views};
use crate::stored;

/// Events read from the log at a time by the folds that read rather than subscribe.
const READ_BATCH: usize = 2048;

/// The calendar day (UTC) of a commit time: the "today" an as-of plan is computed for, so that
/// the server and tests agree on it.
pub fn date_of(time: CommitTime) -> NaiveDate {
    let micros = i64::try_from(time.0).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
        .date_naive()
}

/// Today (UTC) by the wall clock, without chrono's `clock` feature (which the domain forbids).
pub fn today() -> NaiveDate {
    date_of(CommitTime::now())
}

/// The family as it stood at `until` (a global position or a commit time), folded from its
/// stream; `None` when it had no events then.
pub async fn family_as_of(
    store: &dyn EventStore,
    family: &FamilyId,
    until: Until,
) -> Result<Option<FamilyView>> {
    let mut view: Option<FamilyView> = None;
    for_each_event(store, family, StreamVersion(0), until, |rec| {
        fold_one(&mut view, family, rec)
    })
    .await?;
    Ok(view)
}

/// Folds the events of the view's family after the view's version, up to the stream's end.
pub(crate) async fn fold_rest(store: &dyn EventStore, view: FamilyView) -> Result<FamilyView> {
    let family = view.family.clone();
    let from = StreamVersion(view.version.0 + 1);
    let mut view = Some(view);
    for_each_event(store, &family, from, Until::Latest, |rec| {
        fold_one(&mut view, &family, rec)
    })
    .await?;
    Ok(view.expect("a view"))
}

/// Hands every stored event of one family from version `from` up to `until` to `f`, in order,
/// reading the family's own stream in batches: the one loop behind every fold that reads on
/// demand rather than subscribes.
pub(crate) async fn for_each_event(
    store: &dyn EventStore,
    family: &FamilyId,
    from: StreamVersion,
    until: Until,
    mut f: impl FnMut(&RecordedEvent) -> Result<()>,
) -> Result<()> {
    let stream = stored::stream_id(family);
    let mut next = from;
    loop {
        let batch = store
            .read_stream(
                &stream,
                ReadFrom::At(next),
                Direction::Forward,
                READ_BATCH,
                until,
            )
            .await?;
        for rec in &batch {
            f(rec)?;
        }
        match batch.last() {
            Some(last) if batch.len() == READ_BATCH => next = StreamVersion(last.version.0 + 1),
            _ => return Ok(()),
        }
    }
}

/// The family's state and version now, read from its stream: what the server validates a
/// publish against before appending with `ExpectedVersion::Exact(version)` (or `NoStream` when
/// the version is `None`). [`crate::Projections::load_family`] is the cheaper way when a
/// projection runs.
pub async fn load_family(
    store: &dyn EventStore,
    family: &FamilyId,
) -> Result<(FamilyState, Option<StreamVersion>)> {
    Ok(match family_as_of(store, family, Until::Latest).await? {
        Some(view) => (view.state, Some(view.version)),
        None => (FamilyState::default(), None),
    })
}

pub(crate) fn fold_one(
    view: &mut Option<FamilyView>,
    family: &FamilyId,
    rec: &RecordedEvent,
) -> Result<()> {
    if crate::sealed::is_erased(rec) {
        return Ok(());
    }
    let event = stored::decode_payload(rec)?.event;
    match view {
        Some(v) => v.advance(rec, &event),
        None => {
            *view = Some(FamilyView::start(family.clone(), rec, &event)?);
            Ok(())
        }
    }
}

/// Every change of one family: the view now, then one view per new event, in order.
pub type FamilyWatch = BoxStream<'static, Result<Arc<FamilyView>>>;

/// Watches one family: first the view now, then one per event appended after it, none
/// skipped. Folded from the family's own stream subscription, event by event through the same
/// fold as [`family_as_of`], so that at every version the two agree exactly. A family without
/// events is [`Error::UnknownFamily`]. After an error the stream ends.
pub async fn watch_family(store: Arc<dyn EventStore>, family: FamilyId) -> Result<FamilyWatch> {
    let stream = stored::stream_id(&family);
    let now = store
        .stream_version(&stream)
        .await?
        .ok_or_else(|| Error::UnknownFamily(family.to_string()))?;
    let events = store.subscribe_stream(&stream, None).await?;
    struct Watch {
        events: keten_log::EventStream,
        family: FamilyId,
        view: Option<FamilyView>,
        now: StreamVersion,
        failed: bool,
    }
    let state = Watch {
        events,
        family,
        view: None,
        now,
        failed: false,
    };
    Ok(futures::stream::unfold(state, |mut w| async move {
        if w.failed {
            return None;
        }
        loop {
            let rec = match w.events.next().await? {
                Ok(rec) => rec,
                Err(e) => {
                    w.failed = true;
                    return Some((Err(e.into()), w));
                }
            };
            if let Err(e) = fold_one(&mut w.view, &w.family, &rec) {
                w.failed = true;
                return Some((Err(e), w));
            }
            let view = w.view.as_ref().expect("folded");
            // The history up to "now" makes the first item; every later event one item.
            if view.version >= w.now {
                let item = Arc::new(view.clone());
                return Some((Ok(item), w));
            }
        }
    })
    .boxed())
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    /// Events read and folded (events of streams that are not families' included).
    pub events: u64,
    pub families: u64,
    /// The position of the last event folded; `None` for an empty log.
    pub last_position: Option<GlobalPosition>,
    /// The id of that event (what a snapshot of this rebuild is checked by).
    pub last_event_id: Option<EventId>,
    pub elapsed: Duration,
    /// Every family, in family id order.
    pub views: Vec<Arc<FamilyView>>,
}

impl RebuildReport {
    /// Writes the rebuilt views as the projection's snapshot in `dir` (see [`crate::snapshot`]),
    /// so that the next start resumes from it; nothing for an empty log. Blocking.
    pub fn write_snapshot(&self, dir: &std::path::Path) -> Result<()> {
        match (self.last_position, self.last_event_id) {
            (Some(position), Some(id)) => {
                let slots: Vec<Slot> = self.views.iter().cloned().map(Slot::Open).collect();
                crate::snapshot::write(dir, Anchor { position, id }, &slots)
            }
            _ => Ok(()),
        }
    }

    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Folds the whole log from scratch, as the log stands when called, into one view per family;
/// for `keten replay` and for checking that the live projection is deterministic.
/// `progress(done, total)` is called after each batch of events.
pub async fn rebuild(
    store: &dyn EventStore,
    progress: impl FnMut(u64, u64),
) -> Result<RebuildReport> {
    rebuild_until(store, None, progress).await
}

/// Like [`rebuild`], but only the events committed at or before `until` (when given): every
/// projection as it stood then, for `keten replay --until`.
pub async fn rebuild_until(
    store: &dyn EventStore,
    until: Option<CommitTime>,
    mut progress: impl FnMut(u64, u64),
) -> Result<RebuildReport> {
    let started = Instant::now();
    // Commit times never decrease along the log, so "committed by T" is a prefix of it.
    let limit = match until {
        Some(t) => store.position_at(t).await?,
        None => store.head().await?,
    };
    // Every view is handed back, so none is packed on the way.
    let mut views = Views::unpacked();
    let mut events = 0u64;
    let mut last: Option<Anchor> = None;
    if let Some(limit) = limit {
        let total = limit.0 + 1;
        fold_log(store, None, |batch, _, _| {
            for (rec, event) in batch {
                if rec.position > limit {
                    return Ok(ControlFlow::Break(()));
                }
                if let Some(event) = event {
                    fold::apply(&mut views, rec, event)?;
                }
                events += 1;
                last = Some(Anchor {
                    position: rec.position,
                    id: rec.id,
                });
            }
            progress(events, total);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
    }
    Ok(RebuildReport {
        events,
        families: views.len() as u64,
        last_position: last.map(|a| a.position),
        last_event_id: last.map(|a| a.id),
        elapsed: started.elapsed(),
        views: views.into_views(),
    })
}

/// A batch of stored events with their decoded payloads (`None` for streams that are not
/// families').
pub(crate) type Decoded = Vec<(RecordedEvent, Option<keten_domain::Event>)>;

/// Reads the log after `after` up to its head at the time of the call, decodes it, and hands
/// it to `sink` batch by batch in order with the count done and the total; returns the number
/// of events and the last one. The sink may break off the fold (what it was given is folded).
///
/// Three stages overlap: batch n+1 is read (on the log's blocking thread) and batch n decoded
/// (on another blocking thread) while batch n-1 is folded here. Decoding JSON is most of the
/// work, so this is what lets a rebuild use more than one core.
pub(crate) async fn fold_log(
    store: &dyn EventStore,
    after: Option<Anchor>,
    mut sink: impl FnMut(&Decoded, u64, u64) -> Result<ControlFlow<()>>,
) -> Result<(u64, Option<Anchor>)> {
    let Some(head) = store.head().await? else {
        return Ok((0, after));
    };
    let first = after.map_or(0, |a| a.position.0 + 1);
    if first > head.0 {
        return Ok((0, after));
    }
    let total = head.0 + 1 - first;
    let read = |from: u64| {
        store.read_all(
            ReadFrom::At(GlobalPosition(from)),
            Direction::Forward,
            READ_BATCH,
            Until::Position(head),
        )
    };
    let mut anchor = after;
    let mut done = 0u64;
    let mut batch = read(first).await?;
    let mut decoding: Option<tokio::task::JoinHandle<(Decoded, Option<Error>)>> = None;
    let mut broken_off = false;
    loop {
        let next = batch.last().map(|last| last.position.0 + 1);
        let more = next.is_some_and(|n| n <= head.0);
        let decode_now = (!batch.is_empty()).then(|| {
            let batch = std::mem::take(&mut batch);
            tokio::task::spawn_blocking(move || decode_batch(batch))
        });
        let previous = decoding.take();
        let (read_next, folded) = tokio::join!(
            async {
                match next {
                    Some(n) if more => read(n).await,
                    _ => Ok(Vec::new()),
                }
            },
            async {
                let Some(job) = previous else {
                    return Ok(());
                };
                let (decoded, failure) = job.await.map_err(|e| {
                    Error::Log(keten_log::Error::Backend(format!("decode task: {e}")))
                })?;
                // What decoded before a bad event is folded, so that the error comes after
                // the last good event, as with the live subscription.
                if let Some((last, _)) = decoded.last() {
                    done += decoded.len() as u64;
                    let last = Anchor {
                        position: last.position,
                        id: last.id,
                    };
                    broken_off = sink(&decoded, done, total)?.is_break();
                    anchor = Some(last);
                }
                match failure {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            }
        );
        folded?;
        if broken_off {
            // The read and the decoding under way are dropped unused.
            return Ok((done, anchor));
        }
        batch = read_next?;
        decoding = decode_now;
        if decoding.is_none() {
            return Ok((done, anchor));
        }
    }
}

/// Decodes a batch up to its first bad event; returns what decoded, and the error if any.
pub(crate) fn decode_batch(batch: Vec<RecordedEvent>) -> (Decoded, Option<Error>) {
    let mut decoded = Vec::with_capacity(batch.len());
    for rec in batch {
        match fold::decode_for_fold(&rec) {
            Ok(event) => decoded.push((rec, event)),
            Err(e) => return (decoded, Some(e)),
        }
    }
    (decoded, None)
}
