//! The events of one family's stream, their stored JSON form and its schema versions.
//!
//! Every event carries `occurred_on`: the date on which it happened according to the partner
//! that publishes it. When keten recorded it is the log's business, not the domain's.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::catalogue::InterventionCode;
use crate::error::DecodeError;
use crate::ids::{ActionId, FamilyId, GoalId, HoldId, MemberId, PartnerId, PersonId};
use crate::kinds::{
    ChainLevel, ClosureReason, FamilyType, LegalGround, LifeDomain, MemberFlags, MemberRole,
    PartnerKind, Rung, Urgency,
};
use crate::zrm::ZrmAssessment;

/// The schema version new events are written with.
///
/// History:
/// - 1: `MemberAdded` carried `intellectual_disability` at top level; `ActionCommitted` named a
///   single `member_id`.
/// - 2: `MemberAdded` has `flags`; `ActionCommitted` has `member_ids` (one or more members).
///   The privacy events (`ErasureRequested`, `LegalHoldPlaced`, `LegalHoldLifted`,
///   `FamilyErased`) were added within schema 2: new types change no stored event, so no
///   upcast is needed.
pub const CURRENT_SCHEMA: u16 = 2;

/// The stored form of an event: the schema it was written with, and the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub schema: u16,
    pub event: Event,
}

/// Everything that can happen to a family, in the words of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    // --- the family ---
    FamilyRegistered {
        family_id: FamilyId,
        family_type: FamilyType,
        urgency: Urgency,
        occurred_on: NaiveDate,
    },
    /// Added beyond the issue: practice moves a family between types (for instance to
    /// direct help when problems become urgent), and the strategy in the plan must follow.
    FamilyTypeChanged {
        family_type: FamilyType,
        urgency: Urgency,
        reason: String,
        occurred_on: NaiveDate,
    },
    MemberAdded {
        member_id: MemberId,
        role: MemberRole,
        birth_year: i32,
        #[serde(default)]
        flags: MemberFlags,
        occurred_on: NaiveDate,
    },
    MemberLeft {
        member_id: MemberId,
        reason: String,
        occurred_on: NaiveDate,
    },

    // --- participation ---
    PartnerJoined {
        partner_id: PartnerId,
        partner_kind: PartnerKind,
        display_name: String,
        occurred_on: NaiveDate,
    },
    PartnerLeft {
        partner_id: PartnerId,
        reason: String,
        occurred_on: NaiveDate,
    },
    /// Closes the open match signal: the partners made contact and agreed who takes the lead.
    MatchSettled {
        lead_partner_id: PartnerId,
        contacted_on: NaiveDate,
        occurred_on: NaiveDate,
    },

    // --- lead ---
    FamilyManagerAssigned {
        manager: PersonId,
        partner_id: PartnerId,
        /// Required when youth care (not WSG) is assigned to a family with a member flagged with
        /// an intellectual disability.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        occurred_on: NaiveDate,
    },
    /// For the direct-help type only: the partner that coordinates, decided by urgency.
    LeadPartnerSet {
        partner_id: PartnerId,
        reason: String,
        occurred_on: NaiveDate,
    },

    // --- the plan ---
    PlanAgreed {
        agreed_on: NaiveDate,
        review_moments: Vec<NaiveDate>,
        occurred_on: NaiveDate,
    },
    /// Added beyond the issue: like an Open Zaak case, the ten months may be extended once.
    PlanExtended {
        new_horizon: NaiveDate,
        reason: String,
        occurred_on: NaiveDate,
    },
    GoalSet {
        goal_id: GoalId,
        life_domain: LifeDomain,
        description: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_date: Option<NaiveDate>,
        occurred_on: NaiveDate,
    },
    ActionCommitted {
        action_id: ActionId,
        goal_id: GoalId,
        partner_id: PartnerId,
        member_ids: Vec<MemberId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intervention: Option<InterventionCode>,
        description: String,
        start_on: NaiveDate,
        expected_end: NaiveDate,
        occurred_on: NaiveDate,
    },
    ActionStarted {
        action_id: ActionId,
        occurred_on: NaiveDate,
    },
    ActionDelivered {
        action_id: ActionId,
        occurred_on: NaiveDate,
    },
    ActionNotDelivered {
        action_id: ActionId,
        reason: String,
        occurred_on: NaiveDate,
    },
    /// Added beyond the issue: an action's expected end may be moved once.
    ActionDeadlineExtended {
        action_id: ActionId,
        new_expected_end: NaiveDate,
        reason: String,
        occurred_on: NaiveDate,
    },
    GoalAchieved {
        goal_id: GoalId,
        occurred_on: NaiveDate,
    },
    GoalAbandoned {
        goal_id: GoalId,
        reason: String,
        occurred_on: NaiveDate,
    },
    ReviewHeld {
        #[serde(default)]
        zrm: Vec<ZrmAssessment>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_review: Option<NaiveDate>,
        occurred_on: NaiveDate,
    },
    /// Added beyond the issue: the family refuses the help agreed. One of the signals on which
    /// the projection proposes the next rung.
    CooperationRefused {
        reason: String,
        occurred_on: NaiveDate,
    },
    PlanClosed {
        reason: ClosureReason,
        occurred_on: NaiveDate,
    },
    MonitoringStarted {
        until: NaiveDate,
        visit_interval_days: u16,
        occurred_on: NaiveDate,
    },
    MonitoringVisitRecorded {
        occurred_on: NaiveDate,
    },
    HomeVisitRecorded {
        occurred_on: NaiveDate,
    },

    // --- the escalation ladder ---
    EscalationRaised {
        to: Rung,
        by: PersonId,
        reason: String,
        legal_basis: String,
        occurred_on: NaiveDate,
    },
    EscalationLowered {
        to: Rung,
        by: PersonId,
        reason: String,
        legal_basis: String,
        occurred_on: NaiveDate,
    },

    // --- chain escalation ---
    ChainEscalationRaised {
        action_id: ActionId,
        partner_id: PartnerId,
        level: ChainLevel,
        reason: String,
        occurred_on: NaiveDate,
    },
    ChainEscalationResolved {
        action_id: ActionId,
        resolution: String,
        occurred_on: NaiveDate,
    },

    // --- transparency ---
    FamilyInformed {
        occurred_on: NaiveDate,
    },
    InformingDeferred {
        reason: String,
        until: NaiveDate,
        occurred_on: NaiveDate,
    },

    // --- outcomes ---
    PoliceContactRecorded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member_id: Option<MemberId>,
        occurred_on: NaiveDate,
    },
    NuisanceReported {
        description: String,
        occurred_on: NaiveDate,
    },

    // --- erasure and retention ---
    /// A parent, or a child from 12, asks for the family's file to be destroyed (AVG art. 17;
    /// the Jeugdwet's three months). See [`crate::rules`] for who records it and how a child's
    /// age is judged.
    ErasureRequested {
        requester: MemberId,
        occurred_on: NaiveDate,
    },
    /// A legal bar on erasure: while the hold is not lifted, the family cannot be erased.
    LegalHoldPlaced {
        hold_id: HoldId,
        ground: LegalGround,
        reason: String,
        occurred_on: NaiveDate,
    },
    LegalHoldLifted {
        hold_id: HoldId,
        reason: String,
        occurred_on: NaiveDate,
    },
    /// The family's data is destroyed (its key, in keten's log). Carries no personal data: it
    /// stays readable after the family's key is gone, and the family's stream accepts nothing
    /// after it.
    FamilyErased {
        ground: ErasureGround,
        /// Every partner that took part in the family, each told of the erasure (AVG art. 19).
        /// Kept in the event because the events that recorded their participation no longer
        /// open once the key is gone.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notified: Vec<PartnerId>,
        occurred_on: NaiveDate,
    },
}

/// Why a family was erased. Holds no personal data: a role, not a member.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ErasureGround {
    /// On the pending request of a member in this role.
    Request {
        requested_on: NaiveDate,
        requester_role: MemberRole,
    },
    /// The retention period after the end of help has passed.
    RetentionEnded { help_ended_on: NaiveDate },
}

impl Event {
    /// Every stored event type, in declaration order.
    pub const TYPE_NAMES: [&'static str; 37] = [
        "FamilyRegistered",
        "FamilyTypeChanged",
        "MemberAdded",
        "MemberLeft",
        "PartnerJoined",
        "PartnerLeft",
        "MatchSettled",
        "FamilyManagerAssigned",
        "LeadPartnerSet",
        "PlanAgreed",
        "PlanExtended",
        "GoalSet",
        "ActionCommitted",
        "ActionStarted",
        "ActionDelivered",
        "ActionNotDelivered",
        "ActionDeadlineExtended",
        "GoalAchieved",
        "GoalAbandoned",
        "ReviewHeld",
        "CooperationRefused",
        "PlanClosed",
        "MonitoringStarted",
        "MonitoringVisitRecorded",
        "HomeVisitRecorded",
        "EscalationRaised",
        "EscalationLowered",
        "ChainEscalationRaised",
        "ChainEscalationResolved",
        "FamilyInformed",
        "InformingDeferred",
        "PoliceContactRecorded",
        "NuisanceReported",
        "ErasureRequested",
        "LegalHoldPlaced",
        "LegalHoldLifted",
        "FamilyErased",
    ];

    /// The stored event type, equal to the JSON `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::FamilyRegistered { .. } => "FamilyRegistered",
            Event::FamilyTypeChanged { .. } => "FamilyTypeChanged",
            Event::MemberAdded { .. } => "MemberAdded",
            Event::MemberLeft { .. } => "MemberLeft",
            Event::PartnerJoined { .. } => "PartnerJoined",
            Event::PartnerLeft { .. } => "PartnerLeft",
            Event::MatchSettled { .. } => "MatchSettled",
            Event::FamilyManagerAssigned { .. } => "FamilyManagerAssigned",
            Event::LeadPartnerSet { .. } => "LeadPartnerSet",
            Event::PlanAgreed { .. } => "PlanAgreed",
            Event::PlanExtended { .. } => "PlanExtended",
            Event::GoalSet { .. } => "GoalSet",
            Event::ActionCommitted { .. } => "ActionCommitted",
            Event::ActionStarted { .. } => "ActionStarted",
            Event::ActionDelivered { .. } => "ActionDelivered",
            Event::ActionNotDelivered { .. } => "ActionNotDelivered",
            Event::ActionDeadlineExtended { .. } => "ActionDeadlineExtended",
            Event::GoalAchieved { .. } => "GoalAchieved",
            Event::GoalAbandoned { .. } => "GoalAbandoned",
            Event::ReviewHeld { .. } => "ReviewHeld",
            Event::CooperationRefused { .. } => "CooperationRefused",
            Event::PlanClosed { .. } => "PlanClosed",
            Event::MonitoringStarted { .. } => "MonitoringStarted",
            Event::MonitoringVisitRecorded { .. } => "MonitoringVisitRecorded",
            Event::HomeVisitRecorded { .. } => "HomeVisitRecorded",
            Event::EscalationRaised { .. } => "EscalationRaised",
            Event::EscalationLowered { .. } => "EscalationLowered",
            Event::ChainEscalationRaised { .. } => "ChainEscalationRaised",
            Event::ChainEscalationResolved { .. } => "ChainEscalationResolved",
            Event::FamilyInformed { .. } => "FamilyInformed",
            Event::InformingDeferred { .. } => "InformingDeferred",
            Event::PoliceContactRecorded { .. } => "PoliceContactRecorded",
            Event::NuisanceReported { .. } => "NuisanceReported",
            Event::ErasureRequested { .. } => "ErasureRequested",
            Event::LegalHoldPlaced { .. } => "LegalHoldPlaced",
            Event::LegalHoldLifted { .. } => "LegalHoldLifted",
            Event::FamilyErased { .. } => "FamilyErased",
        }
    }

    /// When the event happened, according to its publisher.
    pub fn occurred_on(&self) -> NaiveDate {
        match self {
            Event::FamilyRegistered { occurred_on, .. }
            | Event::FamilyTypeChanged { occurred_on, .. }
            | Event::MemberAdded { occurred_on, .. }
            | Event::MemberLeft { occurred_on, .. }
            | Event::PartnerJoined { occurred_on, .. }
            | Event::PartnerLeft { occurred_on, .. }
            | Event::MatchSettled { occurred_on, .. }
            | Event::FamilyManagerAssigned { occurred_on, .. }
            | Event::LeadPartnerSet { occurred_on, .. }
            | Event::PlanAgreed { occurred_on, .. }
            | Event::PlanExtended { occurred_on, .. }
            | Event::GoalSet { occurred_on, .. }
            | Event::ActionCommitted { occurred_on, .. }
            | Event::ActionStarted { occurred_on, .. }
            | Event::ActionDelivered { occurred_on, .. }
            | Event::ActionNotDelivered { occurred_on, .. }
            | Event::ActionDeadlineExtended { occurred_on, .. }
            | Event::GoalAchieved { occurred_on, .. }
            | Event::GoalAbandoned { occurred_on, .. }
            | Event::ReviewHeld { occurred_on, .. }
            | Event::CooperationRefused { occurred_on, .. }
            | Event::PlanClosed { occurred_on, .. }
            | Event::MonitoringStarted { occurred_on, .. }
            | Event::MonitoringVisitRecorded { occurred_on }
            | Event::HomeVisitRecorded { occurred_on }
            | Event::EscalationRaised { occurred_on, .. }
            | Event::EscalationLowered { occurred_on, .. }
            | Event::ChainEscalationRaised { occurred_on, .. }
            | Event::ChainEscalationResolved { occurred_on, .. }
            | Event::FamilyInformed { occurred_on }
            | Event::InformingDeferred { occurred_on, .. }
            | Event::PoliceContactRecorded { occurred_on, .. }
            | Event::NuisanceReported { occurred_on, .. }
            | Event::ErasureRequested { occurred_on, .. }
            | Event::LegalHoldPlaced { occurred_on, .. }
            | Event::LegalHoldLifted { occurred_on, .. }
            | Event::FamilyErased { occurred_on, .. } => *occurred_on,
        }
    }
}

/// Encodes an event for storage: an [`EventEnvelope`] of the current schema, as JSON.
pub fn encode(event: &Event) -> Vec<u8> {
    #[derive(Serialize)]
    struct EnvelopeRef<'a> {
        schema: u16,
        event: &'a Event,
    }
    serde_json::to_vec(&EnvelopeRef {
        schema: CURRENT_SCHEMA,
        event,
    })
    .expect("an event always serializes: its map keys are strings")
}

/// Decodes a stored event of any schema up to [`CURRENT_SCHEMA`], upcasting older ones.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
    let schema = value
        .get("schema")
        .and_then(serde_json::Value::as_u64)
        .ok_or(DecodeError::MissingSchema)?;
    let schema = u16::try_from(schema).map_err(|_| DecodeError::UnknownSchema(u16::MAX))?;
    if schema == 0 || schema > CURRENT_SCHEMA {
        return Err(DecodeError::UnknownSchema(schema));
    }
    let event = value
        .get_mut("event")
        .map(serde_json::Value::take)
        .ok_or(DecodeError::MissingEvent)?;
    let event = upcast(schema, event)?;
    Ok(serde_json::from_value(event)?)
}

/// Rewrites an event's JSON from `schema` to the current schema, one step at a time, so that
/// every step is written once and old streams keep folding.
fn upcast(schema: u16, mut event: serde_json::Value) -> Result<serde_json::Value, DecodeError> {
    if schema < 2 {
        event = v1_to_v2(event)?;
    }
    Ok(event)
}

fn v1_to_v2(mut event: serde_json::Value) -> Result<serde_json::Value, DecodeError> {
    let obj = event.as_object_mut().ok_or(DecodeError::Upcast {
        schema: 1,
        reason: "event is not an object",
    })?;
    match obj.get("type").and_then(|t| t.as_str()) {
        Some("MemberAdded") => {
            let disability = obj
                .remove("intellectual_disability")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            obj.insert(
                "flags".into(),
                serde_json::json!({ "intellectual_disability": disability }),
            );
        }
        Some("ActionCommitted") => {
            let member = obj.remove("member_id").ok_or(DecodeError::Upcast {
                schema: 1,
                reason: "ActionCommitted without member_id",
            })?;
            obj.insert("member_ids".into(), serde_json::Value::Array(vec![member]));
        }
        _ => {}
    }
    Ok(event)
}
