//! keten's domain: families, partners, the one plan, the escalation ladder.
//!
//! Pure: no async, no IO, no clock, no randomness. Dates (`now`, `occurred_on`) and ids are
//! passed in. The flow is `validate` (decide) then `apply` (evolve), and `coordinated_plan`
//! projects what a coordinator sees.

pub mod catalogue;
pub mod error;
pub mod event;
pub mod ids;
pub mod kinds;
pub mod plan;
pub mod rules;
pub mod state;
pub mod zrm;

pub use error::{DecodeError, IdError, Rejection, RuleCode, ScoreError};
pub use event::{CURRENT_SCHEMA, Event, EventEnvelope, decode, encode};
pub use ids::{ActionId, FamilyId, GoalId, MemberId, PartnerId, PersonId};
pub use kinds::{
    ChainLevel, ClosureReason, FamilyType, LifeDomain, MemberFlags, MemberRole, PartnerKind, Role,
    Rung, Urgency,
};
pub use plan::{Plan, Warning, WarningKind, coordinated_plan};
pub use rules::{Actor, handle, validate};
pub use state::{FamilyState, apply, fold};
