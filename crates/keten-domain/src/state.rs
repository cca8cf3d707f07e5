//! The state of one family, folded from its events. [`apply`] only records what an event says;
//! every judgement lives in [`crate::rules::validate`] and [`crate::plan::coordinated_plan`].
//! The read helpers at the bottom are shared by both so they cannot disagree.

use std::collections::BTreeMap;

use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::catalogue::InterventionCode;
use crate::event::{ErasureGround, Event};
use crate::ids::{ActionId, FamilyId, GoalId, HoldId, MemberId, PartnerId, PersonId};
use crate::kinds::{
    ChainLevel, ClosureReason, FamilyType, LegalGround, LifeDomain, MemberFlags, MemberRole,
    PartnerKind, Rung, Urgency,
};
use crate::zrm::ZrmAssessment;

/// The plan is carried out, in principle, within ten months of being agreed.
pub const PLAN_MONTHS: u32 = 10;
/// Partners matched on a family must record contact and the lead within this many days. The
/// texts give no number; two weeks (ten working days) is keten's choice.
pub const MATCH_DEADLINE_DAYS: u64 = 14;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FamilyState {
    /// How many events were folded; orders participation against match settlements.
    pub events_applied: u64,
    pub registration: Option<Registration>,
    pub members: BTreeMap<MemberId, Member>,
    /// Every time a partner joined, in order (a partner may leave and join again).
    pub participations: Vec<Participation>,
    pub match_settlements: Vec<MatchSettlement>,
    pub family_manager: Option<FamilyManager>,
    pub lead_partner: Option<LeadPartner>,
    pub plan: Option<PlanRecord>,
    pub goals: BTreeMap<GoalId, Goal>,
    pub actions: BTreeMap<ActionId, Action>,
    pub reviews: Vec<Review>,
    pub refusals: Vec<Refusal>,
    pub rung: Rung,
    pub escalations: Vec<EscalationStep>,
    pub chain_escalations: Vec<ChainEscalation>,
    pub informed_on: Option<NaiveDate>,
    pub deferrals: Vec<Deferral>,
    pub monitoring: Option<Monitoring>,
    pub home_visits: Vec<NaiveDate>,
    pub police_contacts: Vec<PoliceContact>,
    pub nuisance_reports: Vec<NuisanceReport>,
    /// Erasure requests, legal holds and the erasure itself.
    pub privacy: Privacy,
}

/// The erasure side of a family. Deserializable (unlike the rest of the state) so that a
/// snapshot can read it back as one plain field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privacy {
    /// The request not yet carried out; at most one at a time.
    pub erasure_request: Option<ErasureRequest>,
    /// Every hold ever placed, lifted or not, by id (an id is never reused).
    pub holds: BTreeMap<HoldId, LegalHold>,
    /// Set once the family is erased; the state then holds nothing else of the family (see
    /// [`FamilyState::evolve`]).
    pub erased: Option<Erased>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRequest {
    pub requester: MemberId,
    pub requester_role: MemberRole,
    pub requested_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    pub ground: LegalGround,
    pub reason: String,
    pub placed_on: NaiveDate,
    pub lifted: Option<HoldLift>,
}

impl LegalHold {
    pub fn is_active(&self) -> bool {
        self.lifted.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldLift {
    pub reason: String,
    pub on: NaiveDate,
}

/// What is left of an erased family: when, why, and its pseudonym.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    pub family_id: Option<FamilyId>,
    pub on: NaiveDate,
    pub ground: ErasureGround,
    /// The partners told of the erasure: every partner that took part.
    #[serde(default)]
    pub notified: Vec<PartnerId>,
}

/// One period in which a partner took part in a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Interval {
    pub joined_on: NaiveDate,
    /// `None` while it still takes part.
    pub left_on: Option<NaiveDate>,
}

impl Interval {
    /// Whether the partner took part on `day` (the days it joined and left included).
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.joined_on <= day && self.left_on.is_none_or(|l| day <= l)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    pub family_id: FamilyId,
    pub family_type: FamilyType,
    pub urgency: Urgency,
    pub registered_on: NaiveDate,
    /// Earlier types, with the date the family left them and why.
    pub type_changes: Vec<TypeChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeChange {
    pub from: FamilyType,
    pub to: FamilyType,
    pub reason: String,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub role: MemberRole,
    pub birth_year: i32,
    pub flags: MemberFlags,
    pub added_on: NaiveDate,
    pub left_on: Option<NaiveDate>,
}

impl Member {
    pub fn is_present(&self) -> bool {
        self.left_on.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Participation {
    pub partner_id: PartnerId,
    pub kind: PartnerKind,
    pub display_name: String,
    pub joined_on: NaiveDate,
    pub joined_seq: u64,
    pub left_on: Option<NaiveDate>,
    pub left_seq: Option<u64>,
}

impl Participation {
    pub fn is_active(&self) -> bool {
        self.left_seq.is_none()
    }

    fn active_at(&self, seq: u64) -> bool {
        self.joined_seq < seq && self.left_seq.is_none_or(|l| l > seq)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchSettlement {
    pub lead_partner_id: PartnerId,
    pub contacted_on: NaiveDate,
    pub settled_on: NaiveDate,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FamilyManager {
    pub manager: PersonId,
    pub partner_id: PartnerId,
    pub reason: Option<String>,
    pub assigned_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeadPartner {
    pub partner_id: PartnerId,
    pub reason: String,
    pub set_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanRecord {
    pub agreed_on: NaiveDate,
    pub review_moments: Vec<NaiveDate>,
    pub extension: Option<PlanExtension>,
    pub closure: Option<Closure>,
}

impl PlanRecord {
    /// Agreed date plus ten months, or the extended date.
    pub fn horizon(&self) -> NaiveDate {
        match &self.extension {
            Some(e) => e.new_horizon,
            None => self.original_horizon(),
        }
    }

    pub fn original_horizon(&self) -> NaiveDate {
        self.agreed_on
            .checked_add_months(Months::new(PLAN_MONTHS))
            .unwrap_or(NaiveDate::MAX)
    }

    pub fn is_closed(&self) -> bool {
        self.closure.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanExtension {
    pub new_horizon: NaiveDate,
    pub reason: String,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closure {
    pub reason: ClosureReason,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Goal {
    pub life_domain: LifeDomain,
    pub description: String,
    pub target_date: Option<NaiveDate>,
    pub set_on: NaiveDate,
    pub outcome: Option<GoalOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum GoalOutcome {
    Achieved { on: NaiveDate },
    Abandoned { on: NaiveDate, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub goal_id: GoalId,
    pub partner_id: PartnerId,
    pub member_ids: Vec<MemberId>,
    pub intervention: Option<InterventionCode>,
    pub description: String,
    pub start_on: NaiveDate,
    /// The expected end now in force (after an extension, the new one).
    pub expected_end: NaiveDate,
    pub committed_on: NaiveDate,
    pub extension: Option<ActionExtension>,
    pub started_on: Option<NaiveDate>,
    pub outcome: Option<ActionOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionExtension {
    pub original_end: NaiveDate,
    pub reason: String,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ActionOutcome {
    Delivered { on: NaiveDate },
    NotDelivered { on: NaiveDate, reason: String },
}

/// Where an action stands; FHIR CarePlan calls this the activity status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    Committed,
    Started,
    Delivered,
    NotDelivered,
}

impl Action {
    pub fn status(&self) -> ActionStatus {
        match (&self.outcome, self.started_on) {
            (Some(ActionOutcome::Delivered { .. }), _) => ActionStatus::Delivered,
            (Some(ActionOutcome::NotDelivered { .. }), _) => ActionStatus::NotDelivered,
            (None, Some(_)) => ActionStatus::Started,
            (None, None) => ActionStatus::Committed,
        }
    }

    pub fn is_open(&self) -> bool {
        self.outcome.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    pub held_on: NaiveDate,
    pub next_review: Option<NaiveDate>,
    pub zrm: Vec<ZrmAssessment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub reason: String,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Raised,
    Lowered,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationStep {
    pub direction: Direction,
    pub from: Rung,
    pub to: Rung,
    pub by: PersonId,
    pub reason: String,
    pub legal_basis: String,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainEscalation {
    pub action_id: ActionId,
    pub partner_id: PartnerId,
    /// The levels reached, lowest first.
    pub steps: Vec<ChainStep>,
    pub resolution: Option<ChainResolution>,
}

impl ChainEscalation {
    pub fn level(&self) -> Option<ChainLevel> {
        self.steps.last().map(|s| s.level)
    }

    pub fn is_open(&self) -> bool {
        self.resolution.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainStep {
    pub level: ChainLevel,
    pub reason: String,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainResolution {
    pub resolution: String,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deferral {
    pub reason: String,
    pub until: NaiveDate,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Monitoring {
    pub started_on: NaiveDate,
    pub until: NaiveDate,
    pub visit_interval_days: u16,
    pub visits: Vec<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoliceContact {
    pub member_id: Option<MemberId>,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NuisanceReport {
    pub description: String,
    pub on: NaiveDate,
}

/// A match signal: a second (or later) partner joined a family that another partner already
/// takes part in. Derived from participations and settlements, never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchSignal {
    pub raised_on: NaiveDate,
    pub deadline: NaiveDate,
    /// The partners taking part now, who must make contact.
    pub partner_ids: Vec<PartnerId>,
}

/// Folds one event into the state. Records only: the event was validated before it was stored.
pub fn apply(mut state: FamilyState, event: &Event) -> FamilyState {
    state.evolve(event);
    state
}

/// Folds a whole stream from the empty state.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> FamilyState {
    events.into_iter().fold(FamilyState::default(), apply)
}

impl FamilyState {
    /// [`apply`] in place.
    pub fn evolve(&mut self, event: &Event) {
        self.events_applied += 1;
        let seq = self.events_applied;
        match event.clone() {
            Event::FamilyRegistered {
                family_id,
                family_type,
                urgency,
                occurred_on,
            } => {
                self.registration = Some(Registration {
                    family_id,
                    family_type,
                    urgency,
                    registered_on: occurred_on,
                    type_changes: Vec::new(),
                })
            }
            Event::FamilyTypeChanged {
                family_type,
                urgency,
                reason,
                occurred_on,
            } => {
                if let Some(r) = &mut self.registration {
                    r.type_changes.push(TypeChange {
                        from: r.family_type,
                        to: family_type,
                        reason,
                        on: occurred_on,
                    });
                    r.family_type = family_type;
                    r.urgency = urgency;
                }
            }
            Event::MemberAdded {
                member_id,
                role,
                birth_year,
                flags,
                occurred_on,
            } => {
                self.members.insert(
                    member_id,
                    Member {
                        role,
                        birth_year,
                        flags,
                        added_on: occurred_on,
                        left_on: None,
                    },
                );
            }
            Event::MemberLeft {
                member_id,
                occurred_on,
                ..
            } => {
                if let Some(m) = self.members.get_mut(&member_id) {
                    m.left_on = Some(occurred_on);
                }
            }
            Event::PartnerJoined {
                partner_id,
                partner_kind,
                display_name,
                occurred_on,
            } => self.participations.push(Participation {
                partner_id,
                kind: partner_kind,
                display_name,
                joined_on: occurred_on,
                joined_seq: seq,
                left_on: None,
                left_seq: None,
            }),
            Event::PartnerLeft {
                partner_id,
                occurred_on,
                ..
            } => {
                if let Some(p) = self
                    .participations
                    .iter_mut()
                    .rev()
                    .find(|p| p.partner_id == partner_id && p.is_active())
                {
                    p.left_on = Some(occurred_on);
                    p.left_seq = Some(seq);
                }
            }
            Event::MatchSettled {
                lead_partner_id,
                contacted_on,
                occurred_on,
            } => self.match_settlements.push(MatchSettlement {
                lead_partner_id,
                contacted_on,
                settled_on: occurred_on,
                seq,
            }),
            Event::FamilyManagerAssigned {
                manager,
                partner_id,
                reason,
                occurred_on,
            } => {
                self.family_manager = Some(FamilyManager {
                    manager,
                    partner_id,
                    reason,
                    assigned_on: occurred_on,
                })
            }
            Event::LeadPartnerSet {
                partner_id,
                reason,
                occurred_on,
            } => {
                self.lead_partner = Some(LeadPartner {
                    partner_id,
                    reason,
                    set_on: occurred_on,
                })
            }
            Event::PlanAgreed {
                agreed_on,
                review_moments,
                ..
            } => {
                self.plan = Some(PlanRecord {
                    agreed_on,
                    review_moments,
                    extension: None,
                    closure: None,
                })
            }
            Event::PlanExtended {
                new_horizon,
                reason,
                occurred_on,
            } => {
                if let Some(p) = &mut self.plan {
                    p.extension = Some(PlanExtension {
                        new_horizon,
                        reason,
                        on: occurred_on,
                    });
                }
            }
            Event::GoalSet {
                goal_id,
                life_domain,
                description,
                target_date,
                occurred_on,
            } => {
                self.goals.insert(
                    goal_id,
                    Goal {
                        life_domain,
                        description,
                        target_date,
                        set_on: occurred_on,
                        outcome: None,
                    },
                );
            }
            Event::ActionCommitted {
                action_id,
                goal_id,
                partner_id,
                member_ids,
                intervention,
                description,
                start_on,
                expected_end,
                occurred_on,
            } => {
                self.actions.insert(
                    action_id,
                    Action {
                        goal_id,
                        partner_id,
                        member_ids,
                        intervention,
                        description,
                        start_on,
                        expected_end,
                        committed_on: occurred_on,
                        extension: None,
                        started_on: None,
                        outcome: None,
                    },
                );
            }
            Event::ActionStarted {
                action_id,
                occurred_on,
            } => {
                if let Some(a) = self.actions.get_mut(&action_id) {
                    a.started_on = Some(occurred_on);
                }
            }
            Event::ActionDelivered {
                action_id,
                occurred_on,
            } => {
                if let Some(a) = self.actions.get_mut(&action_id) {
                    a.outcome = Some(ActionOutcome::Delivered { on: occurred_on });
                }
            }
            Event::ActionNotDelivered {
                action_id,
                reason,
                occurred_on,
            } => {
                if let Some(a) = self.actions.get_mut(&action_id) {
                    a.outcome = Some(ActionOutcome::NotDelivered {
                        on: occurred_on,
                        reason,
                    });
                }
            }
            Event::ActionDeadlineExtended {
                action_id,
                new_expected_end,
                reason,
                occurred_on,
            } => {
                if let Some(a) = self.actions.get_mut(&action_id) {
                    a.extension = Some(ActionExtension {
                        original_end: a.expected_end,
                        reason,
                        on: occurred_on,
                    });
                    a.expected_end = new_expected_end;
                }
            }
            Event::GoalAchieved {
                goal_id,
                occurred_on,
            } => {
                if let Some(g) = self.goals.get_mut(&goal_id) {
                    g.outcome = Some(GoalOutcome::Achieved { on: occurred_on });
                }
            }
            Event::GoalAbandoned {
                goal_id,
                reason,
                occurred_on,
            } => {
                if let Some(g) = self.goals.get_mut(&goal_id) {
                    g.outcome = Some(GoalOutcome::Abandoned {
                        on: occurred_on,
                        reason,
                    });
                }
            }
            Event::ReviewHeld {
                zrm,
                next_review,
                occurred_on,
            } => self.reviews.push(Review {
                held_on: occurred_on,
                next_review,
                zrm,
            }),
            Event::CooperationRefused {
                reason,
                occurred_on,
            } => self.refusals.push(Refusal {
                reason,
                on: occurred_on,
            }),
            Event::PlanClosed {
                reason,
                occurred_on,
            } => {
                if let Some(p) = &mut self.plan {
                    p.closure = Some(Closure {
                        reason,
                        on: occurred_on,
                    });
                }
            }
            Event::MonitoringStarted {
                until,
                visit_interval_days,
                occurred_on,
            } => {
                self.monitoring = Some(Monitoring {
                    started_on: occurred_on,
                    until,
                    visit_interval_days,
                    visits: Vec::new(),
                })
            }
            Event::MonitoringVisitRecorded { occurred_on } => {
                if let Some(m) = &mut self.monitoring {
                    m.visits.push(occurred_on);
                }
            }
            Event::HomeVisitRecorded { occurred_on } => self.home_visits.push(occurred_on),
            Event::EscalationRaised {
                to,
                by,
                reason,
                legal_basis,
                occurred_on,
            } => self.step_rung(Direction::Raised, to, by, reason, legal_basis, occurred_on),
            Event::EscalationLowered {
                to,
                by,
                reason,
                legal_basis,
                occurred_on,
            } => self.step_rung(Direction::Lowered, to, by, reason, legal_basis, occurred_on),
            Event::ChainEscalationRaised {
                action_id,
                partner_id,
                level,
                reason,
                occurred_on,
            } => {
                let step = ChainStep {
                    level,
                    reason,
                    on: occurred_on,
                };
                match self
                    .chain_escalations
                    .iter_mut()
                    .find(|c| c.action_id == action_id && c.is_open())
                {
                    Some(open) => open.steps.push(step),
                    None => self.chain_escalations.push(ChainEscalation {
                        action_id,
                        partner_id,
                        steps: vec![step],
                        resolution: None,
                    }),
                }
            }
            Event::ChainEscalationResolved {
                action_id,
                resolution,
                occurred_on,
            } => {
                if let Some(open) = self
                    .chain_escalations
                    .iter_mut()
                    .find(|c| c.action_id == action_id && c.is_open())
                {
                    open.resolution = Some(ChainResolution {
                        resolution,
                        on: occurred_on,
                    });
                }
            }
            Event::FamilyInformed { occurred_on } => self.informed_on = Some(occurred_on),
            Event::InformingDeferred {
                reason,
                until,
                occurred_on,
            } => self.deferrals.push(Deferral {
                reason,
                until,
                on: occurred_on,
            }),
            Event::PoliceContactRecorded {
                member_id,
                occurred_on,
            } => self.police_contacts.push(PoliceContact {
                member_id,
                on: occurred_on,
            }),
            Event::NuisanceReported {
                description,
                occurred_on,
            } => self.nuisance_reports.push(NuisanceReport {
                description,
                on: occurred_on,
            }),
            Event::ErasureRequested {
                requester,
                occurred_on,
            } => {
                let requester_role = self
                    .members
                    .get(&requester)
                    .map_or(MemberRole::Other, |m| m.role);
                self.privacy.erasure_request = Some(ErasureRequest {
                    requester,
                    requester_role,
                    requested_on: occurred_on,
                });
            }
            Event::LegalHoldPlaced {
                hold_id,
                ground,
                reason,
                occurred_on,
            } => {
                self.privacy.holds.insert(
                    hold_id,
                    LegalHold {
                        ground,
                        reason,
                        placed_on: occurred_on,
                        lifted: None,
                    },
                );
            }
            Event::LegalHoldLifted {
                hold_id,
                reason,
                occurred_on,
            } => {
                if let Some(h) = self.privacy.holds.get_mut(&hold_id) {
                    h.lifted = Some(HoldLift {
                        reason,
                        on: occurred_on,
                    });
                }
            }
            Event::FamilyErased {
                ground,
                notified,
                occurred_on,
            } => {
                // Erasure leaves nothing of the family in the state, so that projections and
                // snapshots built from it hold nothing either. Kept: the pseudonym, when and
                // why (no personal data), and which partners took part, because each of them
                // must be told (AVG art. 19).
                let erased = Erased {
                    family_id: self.registration.as_ref().map(|r| r.family_id.clone()),
                    on: occurred_on,
                    ground,
                    notified,
                };
                *self = FamilyState {
                    events_applied: seq,
                    participations: std::mem::take(&mut self.participations),
                    privacy: Privacy {
                        erased: Some(erased),
                        ..Privacy::default()
                    },
                    ..FamilyState::default()
                };
            }
        }
    }

    fn step_rung(
        &mut self,
        direction: Direction,
        to: Rung,
        by: PersonId,
        reason: String,
        legal_basis: String,
        on: NaiveDate,
    ) {
        self.escalations.push(EscalationStep {
            direction,
            from: self.rung,
            to,
            by,
            reason,
            legal_basis,
            on,
        });
        self.rung = to;
    }

    // --- read helpers shared by the rules and the projection ---

    /// The partner's current participation, if it takes part now.
    pub fn active_partner(&self, id: &PartnerId) -> Option<&Participation> {
        self.participations
            .iter()
            .rev()
            .find(|p| &p.partner_id == id && p.is_active())
    }

    /// Partners taking part now, by id.
    pub fn active_partners(&self) -> BTreeMap<&PartnerId, &Participation> {
        self.participations
            .iter()
            .filter(|p| p.is_active())
            .map(|p| (&p.partner_id, p))
            .collect()
    }

    pub fn present_member(&self, id: &MemberId) -> Option<&Member> {
        self.members.get(id).filter(|m| m.is_present())
    }

    pub fn family_type(&self) -> Option<FamilyType> {
        self.registration.as_ref().map(|r| r.family_type)
    }

    pub fn has_intellectual_disability(&self) -> bool {
        self.members
            .values()
            .any(|m| m.is_present() && m.flags.intellectual_disability)
    }

    /// The open match signal: a partner joined while another took part, after the last
    /// settlement. Later joins before settlement fold into the same signal.
    pub fn open_match(&self) -> Option<MatchSignal> {
        let settled_seq = self.match_settlements.last().map_or(0, |s| s.seq);
        let first_join = self.participations.iter().find(|p| {
            p.joined_seq > settled_seq
                && self
                    .participations
                    .iter()
                    .any(|o| o.partner_id != p.partner_id && o.active_at(p.joined_seq))
        })?;
        let partner_ids: Vec<PartnerId> = self.active_partners().into_keys().cloned().collect();
        if partner_ids.len() < 2 {
            // Everyone else left again: nobody to make contact with.
            return None;
        }
        Some(MatchSignal {
            raised_on: first_join.joined_on,
            deadline: first_join
                .joined_on
                .checked_add_days(Days::new(MATCH_DEADLINE_DAYS))
                .unwrap_or(NaiveDate::MAX),
            partner_ids,
        })
    }

    /// The open chain escalation about an action, if any.
    pub fn open_chain_escalation(&self, action_id: &ActionId) -> Option<&ChainEscalation> {
        self.chain_escalations
            .iter()
            .find(|c| &c.action_id == action_id && c.is_open())
    }

    pub fn is_erased(&self) -> bool {
        self.privacy.erased.is_some()
    }

    /// The holds not lifted, by id.
    pub fn active_holds(&self) -> impl Iterator<Item = (&HoldId, &LegalHold)> {
        self.privacy.holds.iter().filter(|(_, h)| h.is_active())
    }

    /// The day help ended, which starts the retention period: the end of monitoring (refresh)
    /// if it was started, else the day the plan was closed. `None` while the plan is open or
    /// was never agreed. The end of monitoring may lie after `now`: help has not ended then.
    pub fn help_ended_on(&self) -> Option<NaiveDate> {
        let closed_on = self.plan.as_ref()?.closure.as_ref()?.on;
        Some(self.monitoring.as_ref().map_or(closed_on, |m| m.until))
    }

    /// Every period each partner took part, oldest first (a partner may leave and join again).
    pub fn participation_history(&self) -> BTreeMap<&PartnerId, Vec<Interval>> {
        let mut out: BTreeMap<&PartnerId, Vec<Interval>> = BTreeMap::new();
        for p in &self.participations {
            out.entry(&p.partner_id).or_default().push(Interval {
                joined_on: p.joined_on,
                left_on: p.left_on,
            });
        }
        out
    }

    /// Whether `partner` took part in the family on `day`.
    pub fn took_part_on(&self, partner: &PartnerId, day: NaiveDate) -> bool {
        self.participations.iter().any(|p| {
            &p.partner_id == partner
                && Interval {
                    joined_on: p.joined_on,
                    left_on: p.left_on,
                }
                .covers(day)
        })
    }

    /// The date of the last change of rung, or the registration date.
    pub fn rung_since(&self) -> Option<NaiveDate> {
        self.escalations
            .last()
            .map(|e| e.on)
            .or(self.registration.as_ref().map(|r| r.registered_on))
    }
}
