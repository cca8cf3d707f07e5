//! keten's projection service: how a family lives in the log, and the coordinated plans folded
//! from it.
//!
//! - [`stored`]: the one place that knows a family's stream, event types, payload and metadata.
//! - [`Projections`]: folds the whole log, through a catch-up subscription, into one
//!   [`FamilyView`] per family in memory, with a [`snapshot`] so that a restart resumes where it
//!   stopped; queries by family, filtered listings and read-your-writes ([`Projections::wait_for`]).
//! - [`family_as_of`], [`watch_family`], [`load_family`]: one family folded from its stream, as
//!   of a position or time, as it changes, or now.
//! - [`rebuild`]: the whole log folded from scratch (`keten replay`, determinism checks).
//! - [`sealed`]: the log with each family's payloads sealed under the family's own key; an
//!   erased family's events read back empty and are passed over, and its `FamilyErased` event
//!   starts a view that holds nothing but the erasure.
//!
//! Architecture invariant: every fold goes through the same two steps (`FamilyView::start`, then
//! `FamilyView::advance` per event, which call the domain's `FamilyState::evolve`), so that the
//! live projection, a rebuild, a snapshot's resume, a watch and an as-of read agree on every
//! family at every version. A stored event that does not decode or fold is never skipped: it
//! stops the fold with an error naming its global position; the one exception is an erased
//! family's event, whose payload no longer exists to decode (see [`sealed`]).
//!
//! What a fold reads: the payload only. Metadata (who published) is for the audit trail and is
//! decoded by [`stored::decode`] when history is read; it does not change a plan.
//!
//! Time: plans are computed for a date passed in; [`date_of`] turns a commit time into its UTC
//! date and [`today`] reads the wall clock, both without chrono's `clock` feature.

mod asof;
mod error;
mod fast;
mod fold;
mod knowledge;
mod projections;
mod query;
pub mod sealed;
pub mod snapshot;
pub mod stored;

pub use asof::AsOfCache;
pub use error::{Error, Result};
pub use fold::FamilyView;
pub use knowledge::{Difference, family_as_true_at, knowledge_difference};
pub use projections::{ListFilter, Page, PageRequest, ProjectionOptions, Projections, StartedFrom};
pub use query::{
    FamilyWatch, RebuildReport, date_of, family_as_of, load_family, rebuild, rebuild_until, today,
    watch_family,
};
pub use stored::{EventMetadata, StoredEvent};
