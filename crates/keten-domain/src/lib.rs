//! keten's domain: families, partners, the one plan, the escalation ladder.
//!
//! Pure: no async, no IO, no clock, no randomness (checked by `tests/purity.rs`). Dates
//! (`now`, `occurred_on`) and ids are passed in; `now` is a [`chrono::NaiveDate`], like every
//! date in the domain.
//!
//! The flow is decide, then evolve, then project:
//! - [`rules::validate`] holds every rule: may this [`rules::Actor`] publish this [`Event`] on
//!   this family today? It answers with a [`Rejection`] naming the field and the [`RuleCode`].
//! - [`state::apply`] records an accepted event in the [`FamilyState`] and judges nothing.
//!   [`rules::handle`] is the two together, the pipeline a writer runs.
//! - [`plan::coordinated_plan`] projects the one plan a coordinator sees on a given day, with
//!   its warnings, an escalation proposal and outcome figures.
//!
//! Modules: [`ids`] (validated newtype ids; no BSN in a family id), [`kinds`] (closed
//! vocabularies), [`zrm`] (self-reliance scores per matrix version), [`catalogue`] (the
//! interventions as data), [`event`] (the events, their JSON and schema upcasting), [`state`],
//! [`rules`], [`plan`], [`error`], [`classes`] (need-to-know: data classes, which partner kind
//! reads which, the class of every event, redaction of a plan), [`privacy`] (erasure and
//! retention dates, the retention [`Policy`]).

pub mod catalogue;
pub mod classes;
pub mod error;
pub mod event;
pub mod ids;
pub mod kinds;
pub mod plan;
pub mod privacy;
pub mod rules;
pub mod state;
pub mod zrm;

pub use classes::{ClassSet, DataClass, Redacted, classes_of, classes_of_in, readable, redact};
pub use error::{DecodeError, IdError, Rejection, RuleCode, ScoreError};
pub use event::{CURRENT_SCHEMA, ErasureGround, Event, EventEnvelope, decode, encode};
pub use ids::{ActionId, FamilyId, GoalId, HoldId, MemberId, PartnerId, PersonId};
pub use kinds::{
    ChainLevel, ClosureReason, FamilyType, LegalGround, LifeDomain, MemberFlags, MemberRole,
    PartnerKind, Role, Rung, Urgency,
};
pub use plan::{Plan, Warning, WarningKind, coordinated_plan, coordinated_plan_with};
pub use privacy::Policy;
pub use rules::{Actor, handle, handle_with, validate, validate_with};
pub use state::{FamilyState, apply, fold};
