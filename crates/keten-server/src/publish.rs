//! Publish: validate against the family at version N and append expecting N, as one step.
//!
//! The append's expected version is what makes validation and append atomic: if another publish
//! lands in between, the log refuses the append and nothing is written. With "any" (or "stream
//! exists", which still holds on the newer state) the whole step is retried against the newer
//! state; with an exact or "no stream" expectation the caller hears ABORTED with the version the
//! family is really at.
//!
//! Retries: the log answers an append whose event ids it already holds with the first answer.
//! A retried request may however fail validation against the newer state (a second
//! `FamilyRegistered`), or miss its expectation (the family moved on by the retried events
//! themselves), so before any such refusal the events are offered to the log once more under an
//! expectation no stream can meet: if the ids are known the log answers with the first result,
//! otherwise it refuses and writes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::NaiveDate;
use keten_domain::{Event, FamilyId, FamilyState, handle, validate};
use keten_log::{
    AppendResult, Direction, EventId, EventStore, ExpectedVersion, ReadFrom, StreamVersion, Until,
};
use keten_projection::stored::{self, EventMetadata};
use keten_projection::{FamilyView, Projections};

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// How long a publish waits for the projection to fold the family's last event before it
/// folds the family from the log itself.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
/// Rounds of "any" against a family that keeps moving before giving up.
const MAX_ATTEMPTS: usize = 16;
/// Families whose state after their last publish is kept (see [`Recent`]): enough for every
/// partner system publishing at the same moment on a busy server, few enough that the copies
/// stay small beside the projection (a family of a few hundred events is tens of kilobytes).
const RECENT_FAMILIES: usize = 64;

pub struct Publisher {
    pub store: Arc<dyn EventStore>,
    /// Loads the family's state at the stream's current version (from memory when the
    /// projection is there, else from the log).
    pub projections: Projections,
    pub metrics: Arc<Metrics>,
    /// The states this publisher's own last appends left families in.
    pub recent: Recent,
}

impl Publisher {
    /// Appends `events` to `family` if the rules allow them all, in order, for `caller` today.
    pub async fn publish(
        &self,
        caller: &Caller,
        family: &FamilyId,
        expected: ExpectedVersion,
        events: &[(EventId, Event)],
        correlation_id: Option<String>,
        today: NaiveDate,
    ) -> Result<AppendResult> {
        let stream = stored::stream_id(family);
        let meta = EventMetadata {
            correlation_id,
            ..EventMetadata::from_actor(&caller.actor)
        };
        let mut last_actual = None;
        for attempt in 0..MAX_ATTEMPTS {
            let (state, version) = self.current(family, &stream).await?;
            if !satisfies(expected, version) {
                let refusal = Error::WrongExpectedVersion {
                    expected,
                    actual: version,
                };
                return self.first_answer_or(&stream, events, &meta, refusal).await;
            }
            // Checking consumes the state: a view is let go of before the append, since the
            // projection folds the new event into it next and would have to copy the whole
            // view if a reader still held it.
            let after = match check(state, events, caller, today) {
                Ok(after) => after,
                Err(refusal) => return self.first_answer_or(&stream, events, &meta, refusal).await,
            };
            let guard = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            // Encoded here rather than once before the loop: the append takes the events, and
            // a copy kept for a retry would cost every publish what only a conflict needs.
            let proposed = stored::encode_all(events, &meta);
            let started = Instant::now();
            let appended = self.store.append(&stream, guard, proposed).await;
            self.metrics
                .append_seconds
                .observe(started.elapsed().as_secs_f64());
            match appended {
                Ok(result) => {
                    self.metrics.appends.inc();
                    self.metrics.events_appended.inc_by(events.len() as u64);
                    // Only if these events are the ones just appended after `version`: the
                    // first answer to a retry (events already in the log, lower down) says
                    // nothing about the state they leave.
                    if let Some(after) = after
                        && result.first_version == StreamVersion(version.map_or(0, |v| v.0 + 1))
                    {
                        self.recent.put(family, result.last_version, after);
                    }
                    return Ok(result);
                }
                Err(keten_log::Error::WrongExpectedVersion { actual, .. }) => {
                    let may_retry = matches!(
                        expected,
                        ExpectedVersion::Any | ExpectedVersion::StreamExists
                    );
                    last_actual = actual;
                    if may_retry {
                        self.metrics.publish_retries.inc();
                        tracing::debug!(%family, attempt, "concurrent append; trying again");
                        continue;
                    }
                    return Err(Error::WrongExpectedVersion { expected, actual });
                }
                Err(e) => return Err(map_append_error(e)),
            }
        }
        // The family kept moving under every attempt: the caller may try again, as after any
        // conflict.
        tracing::warn!(%family, attempts = MAX_ATTEMPTS, "publish gave up on a busy family");
        Err(Error::WrongExpectedVersion {
            expected,
            actual: last_actual,
        })
    }

    /// The family at `version`, the stream's current version: the state this publisher's own
    /// last append left it in, else the projection's view when it has caught up with the
    /// stream, else folded from the log. Borrowed where possible, since a family's state grows
    /// with its history and a publish of one event only needs to read it.
    async fn current(
        &self,
        family: &FamilyId,
        stream: &keten_log::StreamId,
    ) -> Result<(State, Option<StreamVersion>)> {
        let version = self.store.stream_version(stream).await?;
        if let Some(v) = version
            && let Some(state) = self.recent.take(family, v)
        {
            return Ok((State::Recent(state), version));
        }
        match (self.projections.family(family), version) {
            (Some(view), Some(v)) if view.version == v => {
                let view = State::View {
                    view,
                    behind: false,
                };
                return Ok((view, version));
            }
            (None, None) => return Ok((State::Owned(Box::default()), None)),
            _ => {}
        }
        // The projection is behind the stream, typically by the caller's own previous publish,
        // which it folds within moments: waiting briefly for it is much cheaper than folding
        // the whole stream here.
        let last = self
            .store
            .read_stream(stream, ReadFrom::End, Direction::Backward, 1, Until::Latest)
            .await?;
        if let Some(last) = last.first()
            && self
                .projections
                .wait_for(last.position, CATCH_UP_WAIT)
                .await
                .is_ok()
            && let Some(view) = self.projections.family(family)
            && Some(view.version) == version
        {
            self.metrics.projection_behind("waited");
            return Ok((State::View { view, behind: true }, version));
        }
        self.metrics.projection_behind("folded");
        let (state, version) = keten_projection::load_family(&*self.store, family).await?;
        Ok((State::Owned(Box::new(state)), version))
    }

    /// If these events were already appended (a retry), the first answer; else `refusal`.
    async fn first_answer_or(
        &self,
        stream: &keten_log::StreamId,
        events: &[(EventId, Event)],
        meta: &EventMetadata,
        refusal: Error,
    ) -> Result<AppendResult> {
        // No stream is ever at u64::MAX, so this appends nothing; the log checks ids first.
        let probe = ExpectedVersion::Exact(StreamVersion(u64::MAX));
        match self
            .store
            .append(stream, probe, stored::encode_all(events, meta))
            .await
        {
            Ok(first) => Ok(first),
            Err(keten_log::Error::WrongExpectedVersion { .. }) => Err(refusal),
            Err(e) => Err(map_append_error(e)),
        }
    }
}

/// A family's state at the version a publish validates against.
enum State {
    /// Left by this publisher's own last append to the family, and now the publish's own.
    Recent(Box<FamilyState>),
    /// The projection's; `behind` when the publish had to wait for it (a caller publishing
    /// to the family in quick succession, whose next publish the state is kept for).
    View { view: Arc<FamilyView>, behind: bool },
    /// Folded from the log for this publish, or a family's first.
    Owned(Box<FamilyState>),
}

/// Every event in order against the state the ones before it leave; the state after them all
/// when it comes at no extra copy (or the caller is publishing to the family in quick
/// succession), to be kept for the family's next publish. A single event is checked against a
/// view as it is; only a batch needs a copy of it to evolve.
fn check(
    state: State,
    events: &[(EventId, Event)],
    caller: &Caller,
    today: NaiveDate,
) -> Result<Option<Box<FamilyState>>> {
    let rejected = |index, rejection| Error::Rejected { index, rejection };
    let mut evolving = match state {
        State::Recent(state) | State::Owned(state) => state,
        State::View {
            view,
            behind: false,
        } if events.len() == 1 => {
            let (_, event) = &events[0];
            validate(&view.state, event, &caller.actor, today).map_err(|r| rejected(0, r))?;
            return Ok(None);
        }
        State::View { view, .. } => Box::new(view.state.clone()),
    };
    for (i, (_, event)) in events.iter().enumerate() {
        handle(&mut evolving, event, &caller.actor, today).map_err(|r| rejected(i, r))?;
    }
    Ok(Some(evolving))
}

/// The states this server's own appends left the families it published to last, each with the
/// version it is at: the next publish to such a family starts from it instead of waiting for
/// the projection to fold the previous one (a partner system sends its events one after the
/// other, each as soon as the last is acknowledged) or copying the projection's view to evolve
/// a batch.
///
/// A family's state is the domain's fold of its events in order (`FamilyState::evolve`, as the
/// projection folds them), and a version names one sequence of events: a state kept at version
/// N is the state of any stream at version N. A state is used only when the stream is at its
/// version, taken out while a publish uses it (a concurrent publish to the same family does
/// without), and put back only after the append that took the family to the new version.
/// An erased family's state is not kept, and the erasure forgets the family.
#[derive(Default)]
pub struct Recent {
    kept: Mutex<RecentStates>,
}

#[derive(Default)]
struct RecentStates {
    families: HashMap<FamilyId, Kept>,
    /// Counts puts: the family put least recently is the one that makes room.
    clock: u64,
}

struct Kept {
    version: StreamVersion,
    state: Box<FamilyState>,
    put_at: u64,
}

impl Recent {
    /// The state kept for `family` if it is at `version`; taken out either way.
    fn take(&self, family: &FamilyId, version: StreamVersion) -> Option<Box<FamilyState>> {
        let kept = self.lock().families.remove(family)?;
        // A state at another version can never be used again: the stream has moved on.
        (kept.version == version).then_some(kept.state)
    }

    fn put(&self, family: &FamilyId, version: StreamVersion, state: Box<FamilyState>) {
        if state.is_erased() {
            return;
        }
        let mut kept = self.lock();
        kept.clock += 1;
        let put_at = kept.clock;
        // Dropped after the lock is let go of: a family's state can be large.
        let mut evicted = None;
        if kept.families.len() >= RECENT_FAMILIES
            && !kept.families.contains_key(family)
            && let Some(oldest) = kept
                .families
                .iter()
                .min_by_key(|(_, k)| k.put_at)
                .map(|(f, _)| f.clone())
        {
            evicted = kept.families.remove(&oldest);
        }
        let previous = kept.families.insert(
            family.clone(),
            Kept {
                version,
                state,
                put_at,
            },
        );
        drop(kept);
        drop((evicted, previous));
    }

    /// Drops what is kept of `family` (its erasure).
    pub fn forget(&self, family: &FamilyId) {
        let forgotten = self.lock().families.remove(family);
        drop(forgotten);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecentStates> {
        // A panic while holding the lock leaves at worst a state that is not used again.
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn map_append_error(e: keten_log::Error) -> Error {
    match e {
        keten_log::Error::IdempotencyConflict {
            id,
            stored_position,
            ..
        } => Error::IdempotencyConflict {
            id: id.to_string(),
            stored_position,
        },
        e => Error::Log(e),
    }
}

fn satisfies(expected: ExpectedVersion, version: Option<StreamVersion>) -> bool {
    match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => version.is_none(),
        ExpectedVersion::StreamExists => version.is_some(),
        ExpectedVersion::Exact(v) => version == Some(v),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keten_domain::{
        Actor, ErasureGround, FamilyType, MemberRole, PartnerId, PartnerKind, PersonId, Role,
        Urgency,
    };
    use keten_log::{FileLog, FileLogOptions};
    use keten_projection::ProjectionOptions;

    use super::*;
    use crate::auth::Partner;

    /// A fresh event id (never the nil UUID).
    fn event_id() -> EventId {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        EventId(uuid::Uuid::from_u128(u128::from(n)))
    }

    struct Fixture {
        dir: std::path::PathBuf,
        log: FileLog,
        publisher: Publisher,
        caller: Caller,
        family: FamilyId,
        today: NaiveDate,
    }

    impl Fixture {
        async fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "keten-server-publish-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let log = FileLog::open(&dir, FileLogOptions::default())
                .await
                .unwrap();
            let store: Arc<dyn EventStore> = Arc::new(log.clone());
            let projections = Projections::start(store.clone(), ProjectionOptions::default())
                .await
                .unwrap();
            let partner = PartnerId::new("politie").unwrap();
            let caller = Caller {
                partner: Arc::new(Partner {
                    id: partner.clone(),
                    kind: PartnerKind::Police,
                    name: "Politie".into(),
                    roles: vec![Role::PartnerSystem],
                    municipality: None,
                }),
                actor: Actor {
                    person: PersonId::new("sys-politie").unwrap(),
                    role: Role::PartnerSystem,
                    partner,
                    partner_kind: PartnerKind::Police,
                },
                purpose: None,
                emergency: None,
            };
            Self {
                dir,
                log,
                publisher: Publisher {
                    store,
                    projections,
                    metrics: Arc::new(Metrics::default()),
                    recent: Recent::default(),
                },
                caller,
                family: FamilyId::new("gezin-1").unwrap(),
                today: keten_projection::today(),
            }
        }

        async fn publish(&self, expected: ExpectedVersion, event: Event) -> Result<AppendResult> {
            let id = event_id();
            self.publisher
                .publish(
                    &self.caller,
                    &self.family,
                    expected,
                    &[(id, event)],
                    None,
                    self.today,
                )
                .await
        }

        fn registration(&self) -> Event {
            Event::FamilyRegistered {
                family_id: self.family.clone(),
                family_type: FamilyType::DirectHelp,
                urgency: Urgency::Normal,
                occurred_on: self.today,
            }
        }

        fn nuisance(&self) -> Event {
            Event::NuisanceReported {
                description: "noise at night".into(),
                occurred_on: self.today,
            }
        }

        async fn version(&self) -> Option<StreamVersion> {
            self.log
                .stream_version(&stored::stream_id(&self.family))
                .await
                .unwrap()
        }

        async fn close(self) {
            drop(self.publisher);
            self.log.close().await.unwrap();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The state a publish keeps for the family's next one includes the publish's own events:
    /// a second registration right after the first is refused, and nothing is written.
    #[tokio::test]
    async fn the_next_publish_sees_the_events_of_the_last() {
        let f = Fixture::new("next").await;
        f.publish(ExpectedVersion::NoStream, f.registration())
            .await
            .unwrap();
        let again = f.publish(ExpectedVersion::Any, f.registration()).await;
        assert!(
            matches!(again, Err(Error::Rejected { index: 0, .. })),
            "{again:?}"
        );
        assert_eq!(f.version().await, Some(StreamVersion(0)));
        // And what is allowed still goes on from the right version.
        let r = f
            .publish(ExpectedVersion::Exact(StreamVersion(0)), f.nuisance())
            .await
            .unwrap();
        assert_eq!(r.first_version, StreamVersion(1));
        f.close().await;
    }

    /// A state kept by the publisher is not used once the family has moved on without it: an
    /// erasure appended behind its back makes the next report refused, not written.
    #[tokio::test]
    async fn an_append_by_another_writer_is_not_missed() {
        let f = Fixture::new("other-writer").await;
        f.publish(ExpectedVersion::NoStream, f.registration())
            .await
            .unwrap();
        f.publish(ExpectedVersion::Any, f.nuisance()).await.unwrap();
        let erasure = Event::FamilyErased {
            ground: ErasureGround::Request {
                requested_on: f.today,
                requester_role: MemberRole::Parent,
            },
            notified: Vec::new(),
            occurred_on: f.today,
        };
        let id = event_id();
        let stream = stored::stream_id(&f.family);
        let meta = EventMetadata::from_actor(&f.caller.actor);
        f.log
            .append(
                &stream,
                ExpectedVersion::Exact(StreamVersion(1)),
                vec![stored::encode(id, &erasure, &meta)],
            )
            .await
            .unwrap();
        // The projection folds the erasure; the publisher's kept state (version 1) does not
        // know it, and must not be what the report is judged by.
        let head = f.log.head().await.unwrap().unwrap();
        f.publisher
            .projections
            .wait_for(head, Duration::from_secs(10))
            .await
            .unwrap();
        let refused = f.publish(ExpectedVersion::Any, f.nuisance()).await;
        assert!(
            matches!(refused, Err(Error::Rejected { .. })),
            "{refused:?}"
        );
        assert_eq!(f.version().await, Some(StreamVersion(2)));
        f.close().await;
    }

    /// Only the families published to last are kept, and a forgotten family is not.
    #[test]
    fn recent_keeps_a_bounded_number_of_families() {
        let recent = Recent::default();
        let family = |i: usize| FamilyId::new(format!("gezin-{i}")).unwrap();
        for i in 0..RECENT_FAMILIES + 10 {
            recent.put(&family(i), StreamVersion(3), Box::default());
        }
        assert_eq!(recent.lock().families.len(), RECENT_FAMILIES);
        // The first ten made room; the others are there at their version only.
        assert!(recent.take(&family(0), StreamVersion(3)).is_none());
        assert!(recent.take(&family(10), StreamVersion(4)).is_none());
        assert!(
            recent.take(&family(10), StreamVersion(3)).is_none(),
            "taken out above"
        );
        assert!(recent.take(&family(11), StreamVersion(3)).is_some());
        recent.forget(&family(12));
        assert!(recent.take(&family(12), StreamVersion(3)).is_none());
    }
}
