//! Every rule in one place: may this actor publish this event on this family now?
//!
//! [`validate`] decides; [`crate::state::apply`] records. Checks run in a fixed order (who is
//! asking, is the stream there, are the dates sane, then the event's own rules), so that the
//! first rejection is the most fundamental one.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Rejection, Result, RuleCode as R};
use crate::event::ErasureGround;
use crate::event::Event;
use crate::ids::{ActionId, GoalId, MemberId, PartnerId, PersonId};
use crate::kinds::{FamilyType, MemberRole, PartnerKind, Role, Rung};
use crate::privacy::{CHILD_REQUEST_AGE, Policy, certainly_aged};
use crate::state::{Action, FamilyState};

/// Who publishes an event: a person or system, in a role, inside a partner organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub person: PersonId,
    pub role: Role,
    pub partner: PartnerId,
    pub partner_kind: PartnerKind,
}

/// The oldest birth year taken as plausible, counted back from `now`.
const MAX_AGE_YEARS: i32 = 120;

fn reject<T>(field: impl Into<String>, rule: R, message: impl Into<String>) -> Result<T> {
    Err(Rejection::new(field, rule, message))
}

fn require_text(field: &str, text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return reject(
            field,
            R::ReasonRequired,
            format!("{field} must say why, in words"),
        );
    }
    Ok(())
}

/// Decides whether `actor` may publish `event` on the family in `state` on `now`, under the
/// default [`Policy`].
pub fn validate(state: &FamilyState, event: &Event, actor: &Actor, now: NaiveDate) -> Result<()> {
    validate_with(state, event, actor, now, &Policy::default())
}

/// [`validate`] under a deployment's `policy` (the retention period decides when a family may
/// be erased because its retention ended).
pub fn validate_with(
    state: &FamilyState,
    event: &Event,
    actor: &Actor,
    now: NaiveDate,
    policy: &Policy,
) -> Result<()> {
    if actor.role == Role::Auditor {
        return reject(
            "actor.role",
            R::AuditorMayNotPublish,
            "an auditor reads the family's record and never changes it",
        );
    }
    // Before the registration check: an erased family has no registration left in its state,
    // and must not be registered again under the same pseudonym.
    if let Some(erased) = &state.privacy.erased {
        return reject(
            "type",
            R::FamilyErased,
            format!(
                "this family was erased on {}; its stream accepts no {} or any other event",
                erased.on,
                event.type_name()
            ),
        );
    }
    let occurred_on = event.occurred_on();
    if occurred_on > now {
        return reject(
            "occurred_on",
            R::OccurredInFuture,
            format!("occurred_on {occurred_on} is after today ({now}); report what has happened"),
        );
    }
    let Some(registration) = &state.registration else {
        return match event {
            Event::FamilyRegistered { .. } => check_registering_role(actor),
            _ => reject(
                "type",
                R::FamilyNotRegistered,
                format!(
                    "{} needs a registered family; publish FamilyRegistered first",
                    event.type_name()
                ),
            ),
        };
    };
    if let Event::FamilyRegistered { .. } = event {
        return reject(
            "family_id",
            R::FamilyAlreadyRegistered,
            "this family is already registered",
        );
    }
    // Police contacts and nuisance from before the approach are what the "six months before"
    // outcome figure is made of, so they may predate the registration.
    let may_predate = matches!(
        event,
        Event::PoliceContactRecorded { .. } | Event::NuisanceReported { .. }
    );
    if occurred_on < registration.registered_on && !may_predate {
        return reject(
            "occurred_on",
            R::OccurredBeforeRegistration,
            format!(
                "occurred_on {occurred_on} is before the family was registered on {}",
                registration.registered_on
            ),
        );
    }
    Check {
        state,
        actor,
        now,
        policy,
    }
    .event(event)
}

/// The pipeline every writer runs: decide, then record only what was accepted. On a
/// rejection the state is untouched.
pub fn handle(state: &mut FamilyState, event: &Event, actor: &Actor, now: NaiveDate) -> Result<()> {
    handle_with(state, event, actor, now, &Policy::default())
}

/// [`handle`] under a deployment's `policy`.
pub fn handle_with(
    state: &mut FamilyState,
    event: &Event,
    actor: &Actor,
    now: NaiveDate,
    policy: &Policy,
) -> Result<()> {
    validate_with(state, event, actor, now, policy)?;
    state.evolve(event);
    Ok(())
}

fn check_registering_role(actor: &Actor) -> Result<()> {
    match actor.role {
        Role::PartnerSystem | Role::FamilyManager | Role::Coordinator => Ok(()),
        Role::Auditor => reject(
            "actor.role",
            R::AuditorMayNotPublish,
            "an auditor cannot register a family",
        ),
    }
}

struct Check<'a> {
    state: &'a FamilyState,
    actor: &'a Actor,
    now: NaiveDate,
    policy: &'a Policy,
}

impl Check<'_> {
    fn event(&self, event: &Event) -> Result<()> {
        match event {
            Event::FamilyRegistered { .. } => unreachable!("handled before"),
            Event::FamilyTypeChanged {
                family_type,
                reason,
                ..
            } => {
                self.case_lead()?;
                require_text("reason", reason)?;
                if self.state.family_type() == Some(*family_type) {
                    return reject(
                        "family_type",
                        R::FamilyTypeUnchanged,
                        format!("the family is already of type {family_type}"),
                    );
                }
                Ok(())
            }
            Event::MemberAdded {
                member_id,
                birth_year,
                ..
            } => {
                use chrono::Datelike;
                if self.state.members.contains_key(member_id) {
                    return reject(
                        "member_id",
                        R::DuplicateMemberId,
                        format!("member {member_id} already exists in this family"),
                    );
                }
                let year = self.now.year();
                if *birth_year > year || *birth_year < year - MAX_AGE_YEARS {
                    return reject(
                        "birth_year",
                        R::BirthYearImplausible,
                        format!(
                            "birth year {birth_year} is not between {} and {year}",
                            year - MAX_AGE_YEARS
                        ),
                    );
                }
                Ok(())
            }
            Event::MemberLeft {
                member_id, reason, ..
            } => {
                self.present_member("member_id", member_id)?;
                require_text("reason", reason)
            }
            Event::PartnerJoined {
                partner_id,
                partner_kind,
                ..
            } => {
                self.only_itself_unless_coordinator(partner_id, Some(*partner_kind))?;
                if self.state.active_partner(partner_id).is_some() {
                    return reject(
                        "partner_id",
                        R::PartnerAlreadyJoined,
                        format!("partner {partner_id} already takes part in this family"),
                    );
                }
                Ok(())
            }
            Event::PartnerLeft {
                partner_id, reason, ..
            } => {
                self.only_itself_unless_coordinator(partner_id, None)?;
                self.joined_partner("partner_id", partner_id)?;
                require_text("reason", reason)?;
                if let Some((id, _)) = self
                    .state
                    .actions
                    .iter()
                    .find(|(_, a)| &a.partner_id == partner_id && a.is_open())
                {
                    return reject(
                        "partner_id",
                        R::PartnerHasOpenActions,
                        format!(
                            "partner {partner_id} still has action {id} open; report it delivered or not delivered before leaving"
                        ),
                    );
                }
                Ok(())
            }
            Event::MatchSettled {
                lead_partner_id,
                contacted_on,
                occurred_on,
            } => {
                let Some(signal) = self.state.open_match() else {
                    return reject(
                        "type",
                        R::NoOpenMatch,
                        "there is no open match on this family to settle",
                    );
                };
                if contacted_on > occurred_on || *contacted_on < signal.raised_on {
                    return reject(
                        "contacted_on",
                        R::DateOutOfOrder,
                        format!(
                            "contacted_on {contacted_on} must lie between the match ({}) and this report ({occurred_on})",
                            signal.raised_on
                        ),
                    );
                }
                if !self.is_case_lead() && !signal.partner_ids.contains(&self.actor.partner) {
                    return reject(
                        "actor.partner",
                        R::NotInMatch,
                        format!(
                            "partner {} is not one of the matched partners and cannot settle the match",
                            self.actor.partner
                        ),
                    );
                }
                self.joined_partner("lead_partner_id", lead_partner_id)?;
                Ok(())
            }
            Event::FamilyManagerAssigned {
                partner_id, reason, ..
            } => {
                if self.actor.role != Role::Coordinator
                    && !self.actor.partner_kind.may_provide_family_manager()
                {
                    return reject(
                        "actor.partner_kind",
                        R::ActorMayNotAssignFamilyManager,
                        format!(
                            "a {} organisation cannot assign a family manager; youth care, WSG or the coordinator can",
                            self.actor.partner_kind
                        ),
                    );
                }
                let partner = self.joined_partner("partner_id", partner_id)?;
                if !partner.kind.may_provide_family_manager() {
                    return reject(
                        "partner_id",
                        R::FamilyManagerNotFromYouthCareOrWsg,
                        format!(
                            "partner {partner_id} is {}; a family manager comes from youth care or WSG",
                            partner.kind
                        ),
                    );
                }
                let has_reason = reason.as_deref().is_some_and(|r| !r.trim().is_empty());
                if partner.kind == PartnerKind::YouthCare
                    && self.state.has_intellectual_disability()
                    && !has_reason
                {
                    return reject(
                        "partner_id",
                        R::FamilyNeedsWsg,
                        "a member of this family is flagged with an intellectual disability, so the family manager comes from WSG; to assign youth care instead, record the reason",
                    );
                }
                Ok(())
            }
            Event::LeadPartnerSet {
                partner_id, reason, ..
            } => {
                self.case_lead()?;
                if self.state.family_type() != Some(FamilyType::DirectHelp) {
                    return reject(
                        "type",
                        R::LeadPartnerOnlyForDirectHelp,
                        "a lead partner is set only for the direct-help type; otherwise the family manager leads",
                    );
                }
                self.joined_partner("partner_id", partner_id)?;
                require_text("reason", reason)
            }
            Event::PlanAgreed {
                agreed_on,
                review_moments,
                occurred_on,
            } => {
                self.case_lead()?;
                if self.state.family_manager.is_none() {
                    return reject(
                        "type",
                        R::NoFamilyManager,
                        "a plan is agreed under a family manager; assign one first",
                    );
                }
                if self.state.plan.is_some() {
                    return reject(
                        "type",
                        R::PlanAlreadyAgreed,
                        "this family already has its one plan",
                    );
                }
                let registered_on = self
                    .state
                    .registration
                    .as_ref()
                    .map_or(*agreed_on, |r| r.registered_on);
                if agreed_on > occurred_on || *agreed_on < registered_on {
                    return reject(
                        "agreed_on",
                        R::DateOutOfOrder,
                        format!(
                            "agreed_on {agreed_on} must lie between the registration ({registered_on}) and this report ({occurred_on})"
                        ),
                    );
                }
                if let Some(i) = review_moments.iter().position(|r| r <= agreed_on) {
                    return reject(
                        format!("review_moments[{i}]"),
                        R::ReviewMomentBeforeAgreement,
                        format!(
                            "review moment {} is not after the agreed date {agreed_on}",
                            review_moments[i]
                        ),
                    );
                }
                Ok(())
            }
            Event::PlanExtended {
                new_horizon,
                reason,
                ..
            } => {
                self.case_lead()?;
                let plan = self.open_plan()?;
                if plan.extension.is_some() {
                    return reject(
                        "type",
                        R::PlanAlreadyExtended,
                        "the plan was extended once already; it may be extended only once",
                    );
                }
                if *new_horizon <= plan.horizon() {
                    return reject(
                        "new_horizon",
                        R::ExtensionNotLater,
                        format!(
                            "new_horizon {new_horizon} is not after the horizon {}",
                            plan.horizon()
                        ),
                    );
                }
                require_text("reason", reason)
            }
            Event::GoalSet {
                goal_id,
                target_date,
                occurred_on,
                ..
            } => {
                self.case_lead()?;
                self.open_plan()?;
                if self.state.goals.contains_key(goal_id) {
                    return reject(
                        "goal_id",
                        R::DuplicateGoalId,
                        format!("goal {goal_id} already exists in this plan"),
                    );
                }
                if let Some(t) = target_date
                    && t <= occurred_on
                {
                    return reject(
                        "target_date",
                        R::DateOutOfOrder,
                        format!(
                            "target_date {t} is not after the day the goal is set ({occurred_on})"
                        ),
                    );
                }
                Ok(())
            }
            Event::ActionCommitted {
                action_id,
                goal_id,
                partner_id,
                member_ids,
                intervention,
                start_on,
                expected_end,
                ..
            } => {
                if !self.is_case_lead() && &self.actor.partner != partner_id {
                    return reject(
                        "partner_id",
                        R::ActionByOtherPartner,
                        format!(
                            "partner {} cannot commit partner {partner_id} to an action; a partner commits itself, or the family manager records it",
                            self.actor.partner
                        ),
                    );
                }
                self.open_plan()?;
                if self.state.actions.contains_key(action_id) {
                    return reject(
                        "action_id",
                        R::DuplicateActionId,
                        format!("action {action_id} already exists in this plan"),
                    );
                }
                self.open_goal("goal_id", goal_id)?;
                self.joined_partner("partner_id", partner_id)?;
                if member_ids.is_empty() {
                    return reject(
                        "member_ids",
                        R::ActionWithoutMembers,
                        "an action concerns at least one member of the family",
                    );
                }
                let mut seen = BTreeSet::new();
                for (i, m) in member_ids.iter().enumerate() {
                    let field = format!("member_ids[{i}]");
                    if !seen.insert(m) {
                        return reject(
                            field,
                            R::DuplicateMemberInAction,
                            format!("member {m} is named twice"),
                        );
                    }
                    self.present_member(&field, m)?;
                }
                if expected_end <= start_on {
                    return reject(
                        "expected_end",
                        R::ExpectedEndNotAfterStart,
                        format!("expected_end {expected_end} is not after start_on {start_on}"),
                    );
                }
                if let Some(code) = intervention {
                    let info = code.info();
                    if let Some(max) = info.max_duration
                        && *expected_end > max.after(*start_on)
                    {
                        return reject(
                            "expected_end",
                            R::ActionLongerThanIntervention,
                            format!(
                                "{} ({}) lasts at most until {} when started on {start_on}; plan a follow-up action instead",
                                info.name,
                                code.as_str(),
                                max.after(*start_on)
                            ),
                        );
                    }
                    if info.compulsory && self.state.rung < Rung::Pressure {
                        return reject(
                            "intervention",
                            R::CompulsoryInterventionNeedsPressure,
                            format!(
                                "{} is compulsory help; raise the escalation to pressure (drang) first, with its legal basis",
                                info.name
                            ),
                        );
                    }
                }
                Ok(())
            }
            Event::ActionStarted { action_id, .. } => {
                let action = self.own_action(action_id)?;
                self.still_open(action_id, action)?;
                if action.started_on.is_some() {
                    return reject(
                        "action_id",
                        R::ActionAlreadyStarted,
                        format!("action {action_id} has already started"),
                    );
                }
                Ok(())
            }
            Event::ActionDelivered { action_id, .. } => {
                let action = self.own_action(action_id)?;
                self.still_open(action_id, action)
            }
            Event::ActionNotDelivered {
                action_id, reason, ..
            } => {
                let action = self.own_action(action_id)?;
                self.still_open(action_id, action)?;
                require_text("reason", reason)
            }
            Event::ActionDeadlineExtended {
                action_id,
                new_expected_end,
                reason,
                ..
            } => {
                let action = self.known_action(action_id)?;
                if !self.is_case_lead() && self.actor.partner != action.partner_id {
                    return reject(
                        "action_id",
                        R::ActionByOtherPartner,
                        format!(
                            "action {action_id} was committed by partner {}; only it or the family manager can extend it",
                            action.partner_id
                        ),
                    );
                }
                self.still_open(action_id, action)?;
                if action.extension.is_some() {
                    return reject(
                        "action_id",
                        R::ActionAlreadyExtended,
                        format!("action {action_id} was extended once already"),
                    );
                }
                if *new_expected_end <= action.expected_end {
                    return reject(
                        "new_expected_end",
                        R::ExtensionNotLater,
                        format!(
                            "new_expected_end {new_expected_end} is not after the expected end {}",
                            action.expected_end
                        ),
                    );
                }
                require_text("reason", reason)
            }
            Event::GoalAchieved { goal_id, .. } => {
                self.case_lead()?;
                self.open_goal("goal_id", goal_id).map(drop)
            }
            Event::GoalAbandoned {
                goal_id, reason, ..
            } => {
                self.case_lead()?;
                self.open_goal("goal_id", goal_id)?;
                require_text("reason", reason)
            }
            Event::ReviewHeld {
                zrm,
                next_review,
                occurred_on,
            } => {
                self.case_lead()?;
                self.open_plan()?;
                let mut seen = BTreeSet::new();
                for (i, a) in zrm.iter().enumerate() {
                    let field = format!("zrm[{i}].member_id");
                    if !seen.insert(&a.member_id) {
                        return reject(
                            field,
                            R::DuplicateMemberInReview,
                            format!("member {} is scored twice in one review", a.member_id),
                        );
                    }
                    self.present_member(&field, &a.member_id)?;
                }
                if let Some(next) = next_review
                    && next <= occurred_on
                {
                    return reject(
                        "next_review",
                        R::NextReviewNotAfterReview,
                        format!("next_review {next} is not after this review ({occurred_on})"),
                    );
                }
                Ok(())
            }
            Event::CooperationRefused { reason, .. } => {
                self.case_lead()?;
                require_text("reason", reason)
            }
            Event::PlanClosed { .. } => {
                self.case_lead()?;
                self.open_plan().map(drop)
            }
            Event::MonitoringStarted {
                until,
                visit_interval_days,
                occurred_on,
            } => {
                self.the_family_manager(R::MonitoringByOtherWorker)?;
                match &self.state.plan {
                    Some(p) if p.is_closed() => {}
                    _ => {
                        return reject(
                            "type",
                            R::PlanNotClosed,
                            "monitoring (refresh) follows the closure of the plan; close the plan first",
                        );
                    }
                }
                if self.state.monitoring.is_some() {
                    return reject(
                        "type",
                        R::MonitoringAlreadyStarted,
                        "monitoring has already started for this family",
                    );
                }
                if until <= occurred_on || *visit_interval_days == 0 {
                    return reject(
                        if *visit_interval_days == 0 {
                            "visit_interval_days"
                        } else {
                            "until"
                        },
                        R::InvalidMonitoringPeriod,
                        "monitoring needs an end after its start and a visit interval of at least one day",
                    );
                }
                Ok(())
            }
            Event::MonitoringVisitRecorded { .. } => {
                self.the_family_manager(R::MonitoringByOtherWorker)?;
                if self.state.monitoring.is_none() {
                    return reject(
                        "type",
                        R::NoMonitoring,
                        "no monitoring has started for this family",
                    );
                }
                Ok(())
            }
            Event::HomeVisitRecorded { .. } => self.the_family_manager(R::NotTheFamilyManager),
            Event::EscalationRaised {
                to,
                by,
                reason,
                legal_basis,
                ..
            } => {
                self.case_lead()?;
                self.by_is_actor(by)?;
                let current = self.state.rung;
                let Some(next) = current.next() else {
                    return reject(
                        "to",
                        R::AlreadyAtTopRung,
                        "the family is already at the sanction rung; there is no higher rung",
                    );
                };
                let direct_help_start = self.state.family_type() == Some(FamilyType::DirectHelp)
                    && current == Rung::Voluntary
                    && *to == Rung::Coercion;
                if *to != next && !direct_help_start {
                    return reject(
                        "to",
                        R::EscalationSkipsRung,
                        format!(
                            "the family is at {current}; the next rung is {next}, not {to} (only the direct-help type may start at coercion)"
                        ),
                    );
                }
                require_text("reason", reason)?;
                require_text("legal_basis", legal_basis)
            }
            Event::EscalationLowered {
                to,
                by,
                reason,
                legal_basis,
                ..
            } => {
                self.case_lead()?;
                self.by_is_actor(by)?;
                if *to >= self.state.rung {
                    return reject(
                        "to",
                        R::NotALowerRung,
                        format!("the family is at {}; {to} is not lower", self.state.rung),
                    );
                }
                require_text("reason", reason)?;
                require_text("legal_basis", legal_basis)
            }
            Event::ChainEscalationRaised {
                action_id,
                partner_id,
                level,
                reason,
                occurred_on,
            } => {
                self.case_lead()?;
                let action = self.known_action(action_id)?;
                if &action.partner_id != partner_id {
                    return reject(
                        "partner_id",
                        R::ChainEscalationWrongPartner,
                        format!(
                            "action {action_id} was committed by partner {}, not {partner_id}",
                            action.partner_id
                        ),
                    );
                }
                let not_delivered =
                    matches!(action.status(), crate::state::ActionStatus::NotDelivered);
                let overdue = action.is_open() && action.expected_end < *occurred_on;
                if !not_delivered && !overdue {
                    return reject(
                        "action_id",
                        R::ChainEscalationWithoutCause,
                        format!(
                            "action {action_id} is not reported as not delivered and not past its expected end {}",
                            action.expected_end
                        ),
                    );
                }
                let expected = match self.state.open_chain_escalation(action_id) {
                    None => Some(crate::kinds::ChainLevel::Case),
                    Some(open) => open.level().and_then(|l| l.next()),
                };
                if expected != Some(*level) {
                    let msg = match expected {
                        Some(e) => {
                            format!("the next level for action {action_id} is {e}, not {level}")
                        }
                        None => format!(
                            "action {action_id} is already escalated to the administrative level"
                        ),
                    };
                    return reject("level", R::ChainEscalationSkipsLevel, msg);
                }
                require_text("reason", reason)
            }
            Event::ChainEscalationResolved {
                action_id,
                resolution,
                ..
            } => {
                self.case_lead()?;
                if self.state.open_chain_escalation(action_id).is_none() {
                    return reject(
                        "action_id",
                        R::NoOpenChainEscalation,
                        format!("there is no open chain escalation about action {action_id}"),
                    );
                }
                require_text("resolution", resolution)
            }
            Event::FamilyInformed { .. } => self.case_lead(),
            Event::InformingDeferred {
                reason,
                until,
                occurred_on,
            } => {
                self.case_lead()?;
                if self.state.informed_on.is_some() {
                    return reject(
                        "type",
                        R::FamilyAlreadyInformed,
                        "the family has already been informed; informing can no longer be deferred",
                    );
                }
                require_text("reason", reason)?;
                if until <= occurred_on {
                    return reject(
                        "until",
                        R::DeferralEndNotAfterOccurrence,
                        format!("until {until} is not after {occurred_on}"),
                    );
                }
                Ok(())
            }
            Event::PoliceContactRecorded { member_id, .. } => {
                if self.actor.partner_kind != PartnerKind::Police {
                    return reject(
                        "actor.partner_kind",
                        R::OnlyPoliceRecordsPoliceContact,
                        format!(
                            "police contacts are recorded by the police, not by a {} organisation",
                            self.actor.partner_kind
                        ),
                    );
                }
                if let Some(m) = member_id
                    && !self.state.members.contains_key(m)
                {
                    return reject(
                        "member_id",
                        R::UnknownMember,
                        format!("member {m} is not a member of this family"),
                    );
                }
                Ok(())
            }
            Event::NuisanceReported { description, .. } => require_text("description", description),
            Event::ErasureRequested {
                requester,
                occurred_on,
            } => self.erasure_requested(requester, *occurred_on),
            Event::LegalHoldPlaced {
                hold_id, reason, ..
            } => {
                // Each partner may be under its own duty to keep (the police for an
                // investigation, youth care for a supervision order), so any partner taking
                // part may place a hold; the coordinator may too.
                if self.actor.role != Role::Coordinator
                    && self.state.active_partner(&self.actor.partner).is_none()
                {
                    return reject(
                        "actor.partner",
                        R::MayNotPlaceLegalHold,
                        format!(
                            "partner {} does not take part in this family; a legal hold is placed by the coordinator or by a partner taking part",
                            self.actor.partner
                        ),
                    );
                }
                if self.state.privacy.holds.contains_key(hold_id) {
                    return reject(
                        "hold_id",
                        R::DuplicateHoldId,
                        format!(
                            "hold_id {hold_id} was used before in this family; a hold id names one hold for good"
                        ),
                    );
                }
                require_text("reason", reason)
            }
            Event::LegalHoldLifted {
                hold_id, reason, ..
            } => {
                // Lifting a legal bar is a decision with legal weight; the state does not
                // record who placed a hold, so the coordinator, who oversees the family, lifts.
                if self.actor.role != Role::Coordinator {
                    return reject(
                        "actor.role",
                        R::MayNotLiftLegalHold,
                        format!(
                            "a {} may not lift legal hold {hold_id}; the coordinator lifts holds",
                            self.actor.role
                        ),
                    );
                }
                match self.state.privacy.holds.get(hold_id) {
                    None => {
                        return reject(
                            "hold_id",
                            R::UnknownHold,
                            format!("hold_id {hold_id} names no legal hold on this family"),
                        );
                    }
                    Some(h) if !h.is_active() => {
                        return reject(
                            "hold_id",
                            R::HoldAlreadyLifted,
                            format!(
                                "legal hold {hold_id} was already lifted on {}",
                                h.lifted.as_ref().map_or(h.placed_on, |l| l.on)
                            ),
                        );
                    }
                    Some(_) => {}
                }
                require_text("reason", reason)
            }
            Event::FamilyErased {
                ground,
                occurred_on,
                ..
            } => self.family_erased(ground, *occurred_on),
        }
    }

    /// Recorded by the municipality, or by the organisation of the family's manager: the two
    /// a family deals with. Who asks must be a parent, or a child that is certainly 12.
    fn erasure_requested(&self, requester: &MemberId, occurred_on: NaiveDate) -> Result<()> {
        let fm_partner = self.state.family_manager.as_ref().map(|f| &f.partner_id);
        if self.actor.partner_kind != PartnerKind::Municipality
            && fm_partner != Some(&self.actor.partner)
        {
            return reject(
                "actor.partner",
                R::MayNotRecordErasureRequest,
                format!(
                    "partner {} ({}) may not record an erasure request; the municipality or the family manager's organisation records it",
                    self.actor.partner, self.actor.partner_kind
                ),
            );
        }
        if let Some(pending) = &self.state.privacy.erasure_request {
            return reject(
                "type",
                R::ErasureAlreadyRequested,
                format!(
                    "an erasure requested on {} is still pending; one request at a time",
                    pending.requested_on
                ),
            );
        }
        let Some(member) = self.state.members.get(requester) else {
            return reject(
                "requester",
                R::UnknownMember,
                format!("requester {requester} is not a member of this family"),
            );
        };
        match member.role {
            MemberRole::Parent => Ok(()),
            MemberRole::Child
                if certainly_aged(member.birth_year, CHILD_REQUEST_AGE, occurred_on) =>
            {
                Ok(())
            }
            MemberRole::Child => reject(
                "requester",
                R::ErasureRequesterUnder12,
                format!(
                    "requester {requester} (born {}) is not certainly {CHILD_REQUEST_AGE} on {occurred_on}: with only the birth year known, a child may ask from 31 December of the year it turns {CHILD_REQUEST_AGE}; a parent may ask before",
                    member.birth_year
                ),
            ),
            MemberRole::Other => reject(
                "requester",
                R::ErasureRequesterNotParentOrChild,
                format!(
                    "requester {requester} is neither a parent nor a child of this family; erasure is asked by a parent, or a child from {CHILD_REQUEST_AGE}"
                ),
            ),
        }
    }

    /// Published by keten itself when it destroys the family's key, in the name of the
    /// municipality's coordinator who asked for it.
    fn family_erased(&self, ground: &ErasureGround, occurred_on: NaiveDate) -> Result<()> {
        if self.actor.role != Role::Coordinator
            || self.actor.partner_kind != PartnerKind::Municipality
        {
            return reject(
                "actor",
                R::MayNotErase,
                format!(
                    "a {} of a {} organisation may not erase a family; the municipality's coordinator does",
                    self.actor.role, self.actor.partner_kind
                ),
            );
        }
        if let Some((id, hold)) = self.state.active_holds().next() {
            return reject(
                "type",
                R::LegalHoldActive,
                format!(
                    "legal hold {id} ({}, placed on {}) blocks erasure; it must be lifted first",
                    hold.ground, hold.placed_on
                ),
            );
        }
        match ground {
            ErasureGround::Request {
                requested_on,
                requester_role,
            } => {
                let Some(pending) = &self.state.privacy.erasure_request else {
                    return reject(
                        "ground",
                        R::NoErasureRequest,
                        "the ground is a request, but no erasure request is pending",
                    );
                };
                if *requested_on != pending.requested_on {
                    return reject(
                        "ground.requested_on",
                        R::ErasureGroundMismatch,
                        format!(
                            "ground.requested_on {requested_on} is not the date of the pending request ({})",
                            pending.requested_on
                        ),
                    );
                }
                if *requester_role != pending.requester_role {
                    return reject(
                        "ground.requester_role",
                        R::ErasureGroundMismatch,
                        format!(
                            "ground.requester_role {requester_role} is not the role of the pending request's requester ({})",
                            pending.requester_role
                        ),
                    );
                }
                Ok(())
            }
            ErasureGround::RetentionEnded { help_ended_on } => {
                let Some(ended) = self.state.help_ended_on() else {
                    return reject(
                        "ground.help_ended_on",
                        R::RetentionNotEnded,
                        "help has not ended for this family (the plan is not closed), so its retention has not started",
                    );
                };
                if *help_ended_on != ended {
                    return reject(
                        "ground.help_ended_on",
                        R::ErasureGroundMismatch,
                        format!(
                            "ground.help_ended_on {help_ended_on} is not the day help ended ({ended})"
                        ),
                    );
                }
                let due = self.policy.destruction_due(ended);
                if occurred_on < due {
                    return reject(
                        "ground.help_ended_on",
                        R::RetentionNotEnded,
                        format!(
                            "help ended on {ended}; the file is kept {} years, until {due}",
                            self.policy.retention_years
                        ),
                    );
                }
                Ok(())
            }
        }
    }

    /// The coordinator, or the family's own family manager.
    fn is_case_lead(&self) -> bool {
        match self.actor.role {
            Role::Coordinator => true,
            Role::FamilyManager => self.is_the_family_manager(),
            _ => false,
        }
    }

    fn is_the_family_manager(&self) -> bool {
        self.state
            .family_manager
            .as_ref()
            .is_some_and(|fm| fm.manager == self.actor.person)
    }

    fn case_lead(&self) -> Result<()> {
        match self.actor.role {
            Role::Coordinator => Ok(()),
            Role::FamilyManager if self.is_the_family_manager() => Ok(()),
            Role::FamilyManager => reject(
                "actor.person",
                R::NotTheFamilyManager,
                format!(
                    "{} is not this family's family manager; only the family manager or the coordinator may do this",
                    self.actor.person
                ),
            ),
            role => reject(
                "actor.role",
                R::RoleMayNotPublish,
                format!("a {role} may not do this; the family manager or the coordinator may"),
            ),
        }
    }

    /// Only the family's own family manager, whatever the role says.
    fn the_family_manager(&self, rule: R) -> Result<()> {
        if self.actor.role == Role::FamilyManager && self.is_the_family_manager() {
            return Ok(());
        }
        reject(
            "actor.person",
            rule,
            format!(
                "{} is not this family's family manager; this is done by the worker responsible for the family",
                self.actor.person
            ),
        )
    }

    fn only_itself_unless_coordinator(
        &self,
        partner_id: &PartnerId,
        kind: Option<PartnerKind>,
    ) -> Result<()> {
        if self.actor.role == Role::Coordinator {
            return Ok(());
        }
        if &self.actor.partner != partner_id || kind.is_some_and(|k| k != self.actor.partner_kind) {
            return reject(
                "partner_id",
                R::PartnerJoinsOnlyItself,
                format!(
                    "partner {} ({}) can only report its own participation; the coordinator can add others",
                    self.actor.partner, self.actor.partner_kind
                ),
            );
        }
        Ok(())
    }

    fn by_is_actor(&self, by: &PersonId) -> Result<()> {
        if by != &self.actor.person {
            return reject(
                "by",
                R::EscalatedByOtherPerson,
                format!(
                    "by names {by}, but {} publishes the escalation",
                    self.actor.person
                ),
            );
        }
        Ok(())
    }

    fn joined_partner(&self, field: &str, id: &PartnerId) -> Result<&crate::state::Participation> {
        self.state.active_partner(id).ok_or_else(|| {
            Rejection::new(
                field,
                R::PartnerNotJoined,
                format!("partner {id} does not take part in this family; it must join first"),
            )
        })
    }

    fn present_member(&self, field: &str, id: &MemberId) -> Result<()> {
        if self.state.present_member(id).is_none() {
            return reject(
                field,
                R::UnknownMember,
                format!("member {id} is not (or no longer) a member of this family"),
            );
        }
        Ok(())
    }

    fn open_plan(&self) -> Result<&crate::state::PlanRecord> {
        match &self.state.plan {
            None => reject("type", R::NoPlan, "the family has no agreed plan yet"),
            Some(p) if p.is_closed() => reject(
                "type",
                R::PlanIsClosed,
                "the plan is closed and takes no changes",
            ),
            Some(p) => Ok(p),
        }
    }

    fn open_goal(&self, field: &str, id: &GoalId) -> Result<&crate::state::Goal> {
        match self.state.goals.get(id) {
            None => reject(
                field,
                R::UnknownGoal,
                format!("goal {id} is not in this plan"),
            ),
            Some(g) if g.outcome.is_some() => reject(
                field,
                R::GoalNotOpen,
                format!("goal {id} is already achieved or abandoned"),
            ),
            Some(g) => Ok(g),
        }
    }

    fn known_action(&self, id: &ActionId) -> Result<&Action> {
        self.state.actions.get(id).ok_or_else(|| {
            Rejection::new(
                "action_id",
                R::UnknownAction,
                format!("action {id} is not in this plan"),
            )
        })
    }

    /// An action reported on by the partner that committed it, and by no one else.
    fn own_action(&self, id: &ActionId) -> Result<&Action> {
        let action = self.known_action(id)?;
        if self.actor.partner != action.partner_id {
            return reject(
                "action_id",
                R::ActionByOtherPartner,
                format!(
                    "action {id} was committed by partner {}; only that partner reports on it",
                    action.partner_id
                ),
            );
        }
        Ok(action)
    }

    fn still_open(&self, id: &ActionId, action: &Action) -> Result<()> {
        if !action.is_open() {
            return reject(
                "action_id",
                R::ActionAlreadyFinished,
                format!("action {id} was already reported delivered or not delivered"),
            );
        }
        Ok(())
    }
}
