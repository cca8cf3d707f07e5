//! Folding stored events into one [`FamilyView`] per family. Every fold in the crate (the live
//! projection, a rebuild, a snapshot's resume, watching one family, as-of reads) goes through
//! [`FamilyView::start`] and [`FamilyView::advance`], so that they cannot disagree.

use std::collections::{BTreeMap, VecDeque};
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

/// One family in [`Views`]: open (decoded, as folded) or packed (its snapshot line, deflated:
/// a tenth of the memory of the decoded state).
#[derive(Clone)]
pub(crate) enum Slot {
    Open(Arc<FamilyView>),
    Packed(Arc<Packed>),
}

/// A family's view as its snapshot line (see [`crate::snapshot`]), deflated; with what a
/// listing asks of every family without opening it.
pub(crate) struct Packed {
    pub deflated: Box<[u8]>,
    pub erased: bool,
}

impl Slot {
    /// The view, unpacked if it is packed (tens of microseconds).
    pub fn view(&self) -> Arc<FamilyView> {
        match self {
            Slot::Open(view) => view.clone(),
            Slot::Packed(packed) => Arc::new(crate::snapshot::unpack(packed)),
        }
    }

    pub fn is_erased(&self) -> bool {
        match self {
            Slot::Open(view) => view.state.is_erased(),
            Slot::Packed(packed) => packed.erased,
        }
    }
}

/// Families kept open at most in the live projection: the ones being folded (a family's events
/// come in bursts: a publish of several, a course of calls). The others are packed, so that
/// memory grows with the families by about a kilobyte each, not by their whole state.
pub(crate) const MAX_OPEN: usize = 1024;

/// Every family by id, as the projection and a rebuild hold them. Keyed by the id's text so that
/// an event finds its family from the stream name without allocating; the order is
/// [`FamilyId`]'s order. At most `max_open` families are open; folding an event into a packed
/// one opens it, and packs the family opened longest ago.
pub(crate) struct Views {
    map: BTreeMap<Box<str>, Slot>,
    /// The open families, in the order they were opened.
    open: VecDeque<Box<str>>,
    max_open: usize,
}

impl Views {
    /// Views that keep at most [`MAX_OPEN`] families open.
    pub fn new() -> Self {
        Self::with_max_open(MAX_OPEN)
    }

    /// Views that never pack (a rebuild, whose caller wants every view).
    pub fn unpacked() -> Self {
        Self::with_max_open(usize::MAX)
    }

    pub fn with_max_open(max_open: usize) -> Self {
        Self {
            map: BTreeMap::new(),
            open: VecDeque::new(),
            max_open: max_open.max(1),
        }
    }

    pub fn set_max_open(&mut self, max_open: usize) {
        self.max_open = max_open.max(1);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn get(&self, id: &str) -> Option<&Slot> {
        self.map.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(|k| &**k)
    }

    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.map.values()
    }

    pub fn range_after<'a>(
        &'a self,
        lower: std::ops::Bound<&'a str>,
    ) -> impl Iterator<Item = &'a Slot> + 'a {
        self.map
            .range::<str, _>((lower, std::ops::Bound::Unbounded))
            .map(|(_, s)| s)
    }

    /// Adds a family read from a snapshot, packed.
    pub fn insert_packed(&mut self, id: Box<str>, packed: Packed) {
        self.map.insert(id, Slot::Packed(Arc::new(packed)));
    }

    /// Every view, unpacked, in family id order.
    pub fn into_views(self) -> Vec<Arc<FamilyView>> {
        self.map.into_values().map(|s| s.view()).collect()
    }

    fn opened(&mut self, id: &str) {
        self.open.push_back(id.into());
        while self.open.len() > self.max_open {
            let Some(oldest) = self.open.pop_front() else {
                break;
            };
            let Some(slot) = self.map.get_mut(&*oldest) else {
                continue;
            };
            let packed = match slot {
                Slot::Open(view) => crate::snapshot::pack(view),
                Slot::Packed(_) => continue,
            };
            *slot = Slot::Packed(Arc::new(packed));
        }
    }
}

/// Folds one decoded event into `views`. Events of streams that are not families' are not
/// keten's business and are passed over (their position still counts as folded).
///
/// Copy on write: a view is cloned only when a reader still holds the previous `Arc`.
pub(crate) fn apply(views: &mut Views, rec: &RecordedEvent, event: &Event) -> Result<()> {
    let Some(id) = stored::family_str(rec.stream.as_str()) else {
        return Ok(());
    };
    match views.map.get_mut(id) {
        Some(Slot::Open(view)) => Arc::make_mut(view).advance(rec, event),
        Some(slot @ Slot::Packed(_)) => {
            let mut view = slot.view();
            Arc::make_mut(&mut view).advance(rec, event)?;
            *slot = Slot::Open(view);
            views.opened(id);
            Ok(())
        }
        None => {
            let family = FamilyId::new(id).map_err(|e| {
                fold_error(rec, format!("the stream names no valid family id: {e}"))
            })?;
            let view = FamilyView::start(family, rec, event)?;
            views.map.insert(id.into(), Slot::Open(Arc::new(view)));
            views.opened(id);
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
