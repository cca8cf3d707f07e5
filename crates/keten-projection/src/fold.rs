//! Folding stored events into one [`FamilyView`] per family. Every fold in the crate (the live
//! projection, a rebuild, a snapshot's resume, watching one family, as-of reads) goes through
//! [`FamilyView::start`] and [`FamilyView::advance`], so that they cannot disagree.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use keten_domain::{Event, FamilyId, FamilyState, PartnerId, Plan, coordinated_plan};
use keten_log::{CommitTime, EventId, GlobalPosition, RecordedEvent, StreamVersion};

use crate::error::{Error, Result};
use crate::stored;

/// One family as folded from its stream up to (and including) the event at `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyView {
    pub family: FamilyId,
    pub state: FamilyState,
    /// The version of the family's last folded event.
    pub version: StreamVersion,
    /// The global position of the family's last folded event.
    pub position: GlobalPosition,
    /// When the log committed the family's last folded event.
    pub committed_at: CommitTime,
    /// The partner that published the family's first event (from its metadata, which is
    /// stored in clear): the family belongs to that partner's municipality.
    pub registered_by: Option<PartnerId>,
}

impl FamilyView {
    /// The coordinated plan on `today` (see [`crate::date_of`] for a commit time's date).
    pub fn plan(&self, today: NaiveDate) -> Plan {
        coordinated_plan(&self.state, today)
    }

    /// The view after the family's first event.
    pub(crate) fn start(family: FamilyId, rec: &RecordedEvent, event: &Event) -> Result<Self> {
        // An erased family's earlier events no longer open: its view starts at the erasure.
        if rec.version != StreamVersion(0) && !is_erasure(event) {
            return Err(fold_error(
                rec,
                format!(
                    "the family's first event is at version {}, not 0",
                    rec.version
                ),
            ));
        }
        let registered_by = serde_json::from_slice::<stored::EventMetadata>(&rec.metadata)
            .ok()
            .map(|m| m.partner);
        let mut view = FamilyView {
            family,
            state: FamilyState::default(),
            version: rec.version,
            position: rec.position,
            committed_at: rec.committed_at,
            registered_by,
        };
        view.evolve(rec, event)?;
        Ok(view)
    }

    /// Folds the family's next event; it must directly follow the last one.
    pub(crate) fn advance(&mut self, rec: &RecordedEvent, event: &Event) -> Result<()> {
        let follows = rec.version.0 == self.version.0 + 1
            || (is_erasure(event) && rec.version > self.version);
        if !follows || rec.position <= self.position {
            return Err(fold_error(
                rec,
                format!(
                    "version {} at position {} does not follow version {} at position {}",
                    rec.version, rec.position, self.version, self.position
                ),
            ));
        }
        self.evolve(rec, event)?;
        self.version = rec.version;
        self.position = rec.position;
        self.committed_at = rec.committed_at;
        Ok(())
    }

    /// Folds a later event of the family when events between may be left out (the "as true
    /// at" view leaves out what happened after its day).
    pub(crate) fn advance_omitting(&mut self, rec: &RecordedEvent, event: &Event) -> Result<()> {
        if rec.version <= self.version || rec.position <= self.position {
            return Err(fold_error(
                rec,
                format!(
                    "version {} at position {} does not come after version {} at position {}",
                    rec.version, rec.position, self.version, self.position
                ),
            ));
        }
        self.evolve(rec, event)?;
        self.version = rec.version;
        self.position = rec.position;
        self.committed_at = rec.committed_at;
        Ok(())
    }

    fn evolve(&mut self, rec: &RecordedEvent, event: &Event) -> Result<()> {
        if let Event::FamilyRegistered { family_id, .. } = event
            && family_id != &self.family
        {
            return Err(fold_error(
                rec,
                format!("it registers family `{family_id}` in another family's stream"),
            ));
        }
        // On `FamilyErased` the domain leaves nothing of the family in the state (and so in
        // the snapshot made from it) but the erasure itself.
        self.state.evolve(event);
        Ok(())
    }
}

fn is_erasure(event: &Event) -> bool {
    event.type_name() == crate::sealed::ERASED_TYPE
}

pub(crate) fn fold_error(rec: &RecordedEvent, reason: String) -> Error {
    Error::Fold {
        position: rec.position,
        stream: rec.stream.clone(),
        reason,
    }
}

/// Every family by id, as the projection and a rebuild hold them. Keyed by the id's text so that
/// an event finds its family from the stream name without allocating; the order is
/// [`FamilyId`]'s order.
pub(crate) type Views = BTreeMap<Box<str>, Arc<FamilyView>>;

/// Folds one decoded event into `views`. Events of streams that are not families' are not
/// keten's business and are passed over (their position still counts as folded).
///
/// Copy on write: a view is cloned only when a reader still holds the previous `Arc`.
pub(crate) fn apply(views: &mut Views, rec: &RecordedEvent, event: &Event) -> Result<()> {
    let Some(id) = stored::family_str(rec.stream.as_str()) else {
        return Ok(());
    };
    match views.get_mut(id) {
        Some(view) => Arc::make_mut(view).advance(rec, event),
        None => {
            let family = FamilyId::new(id).map_err(|e| {
                fold_error(rec, format!("the stream names no valid family id: {e}"))
            })?;
            let view = FamilyView::start(family, rec, event)?;
            views.insert(id.into(), Arc::new(view));
            Ok(())
        }
    }
}

/// Decodes and folds, as the whole-log folds do. `None` for a stream that is not a family's.
pub(crate) fn decode_for_fold(rec: &RecordedEvent) -> Result<Option<Event>> {
    if stored::family_str(rec.stream.as_str()).is_none() || crate::sealed::is_erased(rec) {
        return Ok(None);
    }
    stored::decode_payload(rec).map(|env| Some(env.event))
}

/// Where a whole-log fold stands: the last event folded, with its id (a snapshot records both
/// so that it can be checked against the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub position: GlobalPosition,
    pub id: EventId,
}
