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

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use keten_domain::{Event, FamilyId, FamilyState, handle, validate};
use keten_log::{
    AppendResult, Direction, EventId, EventStore, ExpectedVersion, ProposedEvent, ReadFrom,
    StreamVersion, Until,
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

pub struct Publisher {
    pub store: Arc<dyn EventStore>,
    /// Loads the family's state at the stream's current version (from memory when the
    /// projection is there, else from the log).
    pub projections: Projections,
    pub metrics: Arc<Metrics>,
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
        let proposed: Vec<ProposedEvent> = events
            .iter()
            .map(|(id, e)| stored::encode(*id, e, &meta))
            .collect();
        let mut last_actual = None;
        for attempt in 0..MAX_ATTEMPTS {
            let (view, version) = self.current(family, &stream).await?;
            if !satisfies(expected, version) {
                let refusal = Error::WrongExpectedVersion {
                    expected,
                    actual: version,
                };
                return self.first_answer_or(&stream, &proposed, refusal).await;
            }
            if let Err(refusal) = check(&view, events, caller, today) {
                return self.first_answer_or(&stream, &proposed, refusal).await;
            }
            // Let go of the view before the append: the projection folds the new event into it
            // next, and would have to copy the whole view if a reader still held it.
            drop(view);
            let guard = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            let started = Instant::now();
            let appended = self.store.append(&stream, guard, proposed.clone()).await;
            self.metrics
                .append_seconds
                .observe(started.elapsed().as_secs_f64());
            match appended {
                Ok(result) => {
                    self.metrics.appends.inc();
                    self.metrics.events_appended.inc_by(events.len() as u64);
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

    /// The family at its current version: the projection's view when it has caught up with
    /// the stream, else folded from the log. Borrowed where possible, since a family's state
    /// grows with its history and a publish of one event only needs to read it.
    async fn current(
        &self,
        family: &FamilyId,
        stream: &keten_log::StreamId,
    ) -> Result<(State, Option<StreamVersion>)> {
        let version = self.store.stream_version(stream).await?;
        match (self.projections.family(family), version) {
            (Some(view), Some(v)) if view.version == v => return Ok((State::View(view), version)),
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
            return Ok((State::View(view), version));
        }
        self.metrics.projection_behind("folded");
        let (state, version) = keten_projection::load_family(&*self.store, family).await?;
        Ok((State::Owned(Box::new(state)), version))
    }

    /// If these events were already appended (a retry), the first answer; else `refusal`.
    async fn first_answer_or(
        &self,
        stream: &keten_log::StreamId,
        proposed: &[ProposedEvent],
        refusal: Error,
    ) -> Result<AppendResult> {
        // No stream is ever at u64::MAX, so this appends nothing; the log checks ids first.
        let probe = ExpectedVersion::Exact(StreamVersion(u64::MAX));
        match self.store.append(stream, probe, proposed.to_vec()).await {
            Ok(first) => Ok(first),
            Err(keten_log::Error::WrongExpectedVersion { .. }) => Err(refusal),
            Err(e) => Err(map_append_error(e)),
        }
    }
}

enum State {
    View(Arc<FamilyView>),
    Owned(Box<FamilyState>),
}

impl State {
    fn get(&self) -> &FamilyState {
        match self {
            State::View(v) => &v.state,
            State::Owned(s) => s,
        }
    }
}

/// Every event in order against the state the ones before it leave. A single event is checked
/// against the state as it is; only a batch needs a copy to evolve.
fn check(
    state: &State,
    events: &[(EventId, Event)],
    caller: &Caller,
    today: NaiveDate,
) -> Result<()> {
    let rejected = |index, rejection| Error::Rejected { index, rejection };
    if let [(_, event)] = events {
        return validate(state.get(), event, &caller.actor, today).map_err(|r| rejected(0, r));
    }
    let mut evolving = state.get().clone();
    for (i, (_, event)) in events.iter().enumerate() {
        handle(&mut evolving, event, &caller.actor, today).map_err(|r| rejected(i, r))?;
    }
    Ok(())
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
