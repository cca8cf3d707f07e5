//! Two times kept apart: when a thing happened (`occurred_on`, the partner's word) and when
//! keten recorded it (the commit time).
//!
//! "As known at T" is [`crate::family_as_of`] with `Until::Time(T)`: the events committed by T,
//! what a coordinator could have seen then. "As true at T, as known now" is
//! [`family_as_true_at`]: every event recorded so far whose `occurred_on` is on or before T's
//! date, including facts recorded later (a late police report). [`knowledge_difference`] lists
//! the events that are in one and not the other: what was known, and when.

use chrono::NaiveDate;
use keten_domain::FamilyId;
use keten_log::{CommitTime, EventStore, GlobalPosition, StreamVersion, Until};

use crate::error::Result;
use crate::fold::FamilyView;
use crate::query::for_each_event;
use crate::stored;

/// An event that one view has and the other has not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub version: StreamVersion,
    pub position: GlobalPosition,
    pub event_type: String,
    /// When it happened, according to its publisher.
    pub occurred_on: NaiveDate,
    /// When keten recorded it.
    pub committed_at: CommitTime,
    /// The partner that published it.
    pub partner: String,
    /// True: recorded after T about a day on or before T's ("known later"); false: recorded by
    /// T about a day after T's date.
    pub known_later: bool,
}

/// The family folded from every event now recorded whose `occurred_on` is on or before `day`,
/// in the order they were recorded. `None` when its registration is not among them.
///
/// The view's version and position are those of the last event folded; the events left out are
/// the ones [`knowledge_difference`] names.
pub async fn family_as_true_at(
    store: &dyn EventStore,
    family: &FamilyId,
    day: NaiveDate,
) -> Result<Option<FamilyView>> {
    let mut view: Option<FamilyView> = None;
    for_each(store, family, |rec, event| {
        if event.occurred_on() > day {
            return Ok(());
        }
        match &mut view {
            Some(v) => v.advance_omitting(rec, event),
            // Before the registration there is no family to fold into.
            None if rec.version.0 == 0 => {
                view = Some(FamilyView::start(family.clone(), rec, event)?);
                Ok(())
            }
            None => Ok(()),
        }
    })
    .await?;
    Ok(view)
}

/// The events of the family that "as known at `at`" and "as true at `at`'s date, as known now"
/// do not share, in recording order.
pub async fn knowledge_difference(
    store: &dyn EventStore,
    family: &FamilyId,
    at: CommitTime,
) -> Result<Vec<Difference>> {
    let day = crate::date_of(at);
    let mut out = Vec::new();
    for_each(store, family, |rec, event| {
        let known = rec.committed_at <= at;
        let happened = event.occurred_on() <= day;
        if known != happened {
            let partner = serde_json::from_slice::<stored::EventMetadata>(&rec.metadata)
                .map(|m| m.partner.to_string())
                .unwrap_or_default();
            out.push(Difference {
                version: rec.version,
                position: rec.position,
                event_type: rec.event_type.as_str().to_owned(),
                occurred_on: event.occurred_on(),
                committed_at: rec.committed_at,
                partner,
                known_later: happened,
            });
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

async fn for_each(
    store: &dyn EventStore,
    family: &FamilyId,
    mut f: impl FnMut(&keten_log::RecordedEvent, &keten_domain::Event) -> Result<()>,
) -> Result<()> {
    for_each_event(store, family, StreamVersion(0), Until::Latest, |rec| {
        if crate::sealed::is_erased(rec) {
            return Ok(());
        }
        let event = stored::decode_payload(rec)?.event;
        f(rec, &event)
    })
    .await
}
