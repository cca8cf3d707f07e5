//! The projection: the one coordinated plan of a family as a coordinator sees it on a given
//! day, with the warnings to act on, an escalation proposal and outcome figures.
//!
//! Everything here is derived from [`FamilyState`] and `now`; nothing is stored, and the
//! output is ordered (BTreeMap, sorted Vecs) so that the same events give the same plan.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::catalogue::{InterventionCode, Recognition, Target, age_may_fit};
use crate::event::ErasureGround;
use crate::ids::{ActionId, FamilyId, GoalId, HoldId, MemberId, PartnerId, PersonId};
use crate::kinds::{
    ChainLevel, FamilyType, LegalGround, LifeDomain, MemberRole, PartnerKind, Rung, Urgency,
};
use crate::privacy::{Policy, erasure_due};
use crate::state::{
    Action, ActionOutcome, ActionStatus, Direction, EscalationStep, FamilyState, GoalOutcome,
    MatchSignal,
};
use crate::zrm::ZrmVersion;

/// Police contacts are compared over this many months before and after the plan's start.
pub const OUTCOME_WINDOW_MONTHS: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub as_of: NaiveDate,
    pub family_id: Option<FamilyId>,
    pub phase: Phase,
    pub family_type: Option<FamilyType>,
    pub strategy: Option<&'static str>,
    pub urgency: Option<Urgency>,
    pub members: Vec<MemberLine>,
    pub partners: Vec<PartnerLine>,
    pub open_match: Option<MatchSignal>,
    pub family_manager: Option<FamilyManagerLine>,
    pub lead: Option<Lead>,
    pub agreed_on: Option<NaiveDate>,
    /// Agreed date plus ten months, or the date it was extended to.
    pub horizon: Option<NaiveDate>,
    pub extended: bool,
    pub next_review: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
    pub goals: BTreeMap<LifeDomain, Vec<GoalLine>>,
    pub actions: BTreeMap<PartnerId, Vec<ActionLine>>,
    /// `None` only when left out by [`crate::classes::redact`].
    pub escalation: Option<EscalationView>,
    /// Chain escalations not yet resolved, by action.
    pub open_chain_escalations: Vec<ChainEscalationLine>,
    /// `None` only when left out by [`crate::classes::redact`].
    pub transparency: Option<Transparency>,
    pub zrm: Vec<ZrmLine>,
    pub monitoring: Option<MonitoringLine>,
    pub warnings: Vec<Warning>,
    pub outcomes: Outcomes,
    /// The day help ended (the plan closed, or monitoring after it finished), once it has.
    pub help_ended_on: Option<NaiveDate>,
    /// The pending erasure request, until the family is erased.
    pub erasure: Option<ErasureLine>,
    /// Legal holds not lifted, in id order; each blocks erasure.
    pub legal_holds: Vec<HoldLine>,
    /// Set when the family was erased; the plan then shows nothing else of it.
    pub erased: Option<ErasedLine>,
}

/// A pending erasure request: asked by a member in this role, due three months after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureLine {
    pub requested_on: NaiveDate,
    pub requester_role: MemberRole,
    pub due: NaiveDate,
}

/// A legal hold not lifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldLine {
    pub hold_id: HoldId,
    pub ground: LegalGround,
    pub reason: String,
    pub placed_on: NaiveDate,
}

/// When and why the family was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasedLine {
    pub on: NaiveDate,
    pub ground: ErasureGround,
}

/// Where the family is in the approach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    NotRegistered,
    /// Registered, no plan agreed yet.
    Intake,
    PlanActive,
    Closed,
    /// Refresh: the plan is closed and the family manager still visits.
    Monitoring,
    /// Monitoring has run its course.
    Finished,
    /// The family's data was destroyed.
    Erased,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberLine {
    pub member_id: MemberId,
    pub role: MemberRole,
    pub birth_year: i32,
    /// `None` when health data is left out by [`crate::classes::redact`].
    pub intellectual_disability: Option<bool>,
    pub present: bool,
    /// Actions concerning this member, in id order.
    pub action_ids: Vec<ActionId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerLine {
    pub partner_id: PartnerId,
    pub kind: PartnerKind,
    pub display_name: String,
    pub joined_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FamilyManagerLine {
    pub manager: PersonId,
    pub partner_id: PartnerId,
    pub assigned_on: NaiveDate,
    /// Why youth care was assigned where WSG was expected, if that was the case.
    pub reason: Option<String>,
}

/// Who coordinates care, and on what ground.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lead {
    pub partner_id: PartnerId,
    pub basis: LeadBasis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadBasis {
    /// Direct help: the partner chosen for the urgency of the problem.
    DirectHelpUrgency,
    /// The family manager's organisation.
    FamilyManager,
    /// Agreed between matched partners.
    MatchSettlement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GoalStatus {
    Open,
    Achieved,
    Abandoned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoalLine {
    pub goal_id: GoalId,
    pub description: String,
    pub target_date: Option<NaiveDate>,
    pub status: GoalStatus,
    pub action_ids: Vec<ActionId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterventionLine {
    pub code: InterventionCode,
    pub name: &'static str,
    pub recognition: Recognition,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionLine {
    pub action_id: ActionId,
    pub goal_id: GoalId,
    pub member_ids: Vec<MemberId>,
    pub description: String,
    pub intervention: Option<InterventionLine>,
    pub start_on: NaiveDate,
    pub expected_end: NaiveDate,
    pub extended: bool,
    pub status: ActionStatus,
    /// The date it was reported delivered or not delivered.
    pub finished_on: Option<NaiveDate>,
    /// Whether it was delivered by its original expected end; `None` while it is open and
    /// that end has not passed. The per-partner outcome figure counts these.
    pub on_time: Option<bool>,
    /// How many chain escalations were raised about it (open or resolved).
    pub chain_escalations: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationView {
    pub rung: Rung,
    pub since: Option<NaiveDate>,
    pub history: Vec<EscalationStep>,
    /// A proposal for the family manager to decide on; never applied by keten.
    pub proposal: Option<EscalationProposal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationProposal {
    pub to: Rung,
    pub reasons: Vec<ProposalReason>,
}

/// An agreement not kept since the last decision on the ladder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProposalReason {
    ActionNotDelivered {
        action_id: ActionId,
        on: NaiveDate,
    },
    GoalOverdue {
        goal_id: GoalId,
        target_date: NaiveDate,
    },
    FamilyRefused {
        on: NaiveDate,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainEscalationLine {
    pub action_id: ActionId,
    pub partner_id: PartnerId,
    pub level: ChainLevel,
    pub raised_on: NaiveDate,
    pub level_since: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Transparency {
    NotInformed,
    Deferred { reason: String, until: NaiveDate },
    Informed { on: NaiveDate },
}

/// One member's self-reliance on one ZRM domain: the first score (intake), the latest, and
/// every review's score between them (a family manager reads the course, not only the ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZrmLine {
    pub member_id: MemberId,
    pub version: ZrmVersion,
    pub domain: &'static str,
    pub intake: u8,
    pub intake_on: NaiveDate,
    pub latest: u8,
    pub latest_on: NaiveDate,
    /// Latest minus intake: positive is progress.
    pub change: i8,
    /// Every review's score in the order held, intake first and latest last.
    pub scores: Vec<ZrmPoint>,
}

/// One review's score on one ZRM domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ZrmPoint {
    pub on: NaiveDate,
    pub score: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitoringLine {
    pub started_on: NaiveDate,
    pub until: NaiveDate,
    pub visit_interval_days: u16,
    pub last_visit: Option<NaiveDate>,
    pub next_visit_due: NaiveDate,
}

/// What a coordinator must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    NoFamilyManager,
    /// Added beyond the issue: a member flagged with an intellectual disability joined (or was
    /// flagged) after a youth-care family manager was assigned without a recorded reason. The
    /// assignment itself was valid then, so this cannot be a rejection.
    FamilyManagerNotFromWsg,
    FamilyNotInformed,
    MatchNotSettled,
    PlanPastHorizon,
    /// Added beyond the issue: a review moment passed without a review.
    ReviewOverdue,
    MemberWithoutHelp,
    GoalWithoutActions,
    ActionOverdue,
    ActionPastInterventionMaximum,
    /// A warning, not a rejection: see [`crate::catalogue`].
    InterventionNotEligible,
    MonitoringVisitDue,
    /// A parent or child asked for erasure; it must be carried out within three months
    /// (`due`), and the warning stays until the family is erased, also after that date.
    ErasureDeadline,
    /// Help ended longer ago than the retention period: the file is due for destruction.
    DueForDestruction,
}

/// One warning: what, about whom, since when.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub since: NaiveDate,
    pub member_id: Option<MemberId>,
    pub goal_id: Option<GoalId>,
    pub action_id: Option<ActionId>,
    pub partner_id: Option<PartnerId>,
    /// The deadline, where there is one (a match must be settled by then).
    pub due: Option<NaiveDate>,
    pub message: String,
}

impl Warning {
    fn new(kind: WarningKind, since: NaiveDate, message: String) -> Self {
        Self {
            kind,
            since,
            member_id: None,
            goal_id: None,
            action_id: None,
            partner_id: None,
            due: None,
            message,
        }
    }
}

/// A count out of a total; no floats, so plans compare exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Share {
    pub count: u32,
    pub of: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// Police contacts in the six months before the plan was agreed.
    pub police_contacts_before: Option<u32>,
    /// Police contacts in the six months from the plan's agreement.
    pub police_contacts_after: Option<u32>,
    /// Whether the six months after have passed, so that `police_contacts_after` is final.
    pub after_window_complete: bool,
    pub goals_achieved: Share,
    /// Actions delivered by their original expected end, out of the actions that are finished
    /// or past that end, per partner.
    pub actions_on_time: BTreeMap<PartnerId, Share>,
    /// Raises on the ladder; `None` when escalation data is left out.
    pub escalations: Option<u32>,
    /// Lowerings on the ladder; `None` when escalation data is left out.
    pub de_escalations: Option<u32>,
    /// Chain escalations raised (open or resolved); `None` when escalation data is left out.
    pub chain_escalations: Option<u32>,
    /// `None` when police data is left out.
    pub nuisance_reports: Option<u32>,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The one coordinated plan for the family in `state`, as of `now`, under the default
/// [`Policy`].
pub fn coordinated_plan(state: &FamilyState, now: NaiveDate) -> Plan {
    coordinated_plan_with(state, now, &Policy::default())
}

/// The plan of an erased family: that it was erased, when and why, and nothing else.
fn erased_plan(erased: &crate::state::Erased, now: NaiveDate) -> Plan {
    Plan {
        as_of: now,
        family_id: erased.family_id.clone(),
        phase: Phase::Erased,
        family_type: None,
        strategy: None,
        urgency: None,
        members: Vec::new(),
        partners: Vec::new(),
        open_match: None,
        family_manager: None,
        lead: None,
        agreed_on: None,
        horizon: None,
        extended: false,
        next_review: None,
        closed_on: None,
        goals: BTreeMap::new(),
        actions: BTreeMap::new(),
        escalation: None,
        open_chain_escalations: Vec::new(),
        transparency: None,
        zrm: Vec::new(),
        monitoring: None,
        warnings: Vec::new(),
        outcomes: Outcomes {
            police_contacts_before: None,
            police_contacts_after: None,
            after_window_complete: false,
            goals_achieved: Share::default(),
            actions_on_time: BTreeMap::new(),
            escalations: None,
            de_escalations: None,
            chain_escalations: None,
            nuisance_reports: None,
        },
        help_ended_on: None,
        erasure: None,
        legal_holds: Vec::new(),
        erased: Some(ErasedLine {
            on: erased.on,
            ground: erased.ground.clone(),
        }),
    }
}

/// [`coordinated_plan`] under a deployment's `policy` (the retention period decides when a
/// family shows as due for destruction).
pub fn coordinated_plan_with(state: &FamilyState, now: NaiveDate, policy: &Policy) -> Plan {
    if let Some(erased) = &state.privacy.erased {
        return erased_plan(erased, now);
    }
    let reg = state.registration.as_ref();
    let plan = state.plan.as_ref();
    let plan_open = plan.is_some_and(|p| !p.is_closed());

    let phase = match (reg, plan, &state.monitoring) {
        (None, _, _) => Phase::NotRegistered,
        (Some(_), None, _) => Phase::Intake,
        (Some(_), Some(p), _) if !p.is_closed() => Phase::PlanActive,
        (Some(_), Some(_), Some(m)) if now <= m.until => Phase::Monitoring,
        (Some(_), Some(_), Some(_)) => Phase::Finished,
        (Some(_), Some(_), None) => Phase::Closed,
    };

    let members = state
        .members
        .iter()
        .map(|(id, m)| MemberLine {
            member_id: id.clone(),
            role: m.role,
            birth_year: m.birth_year,
            intellectual_disability: Some(m.flags.intellectual_disability),
            present: m.is_present(),
            action_ids: state
                .actions
                .iter()
                .filter(|(_, a)| a.member_ids.contains(id))
                .map(|(aid, _)| aid.clone())
                .collect(),
        })
        .collect();

    let partners = state
        .active_partners()
        .into_values()
        .map(|p| PartnerLine {
            partner_id: p.partner_id.clone(),
            kind: p.kind,
            display_name: p.display_name.clone(),
            joined_on: p.joined_on,
        })
        .collect();

    let open_match = state.open_match();

    let family_manager = state.family_manager.as_ref().map(|fm| FamilyManagerLine {
        manager: fm.manager.clone(),
        partner_id: fm.partner_id.clone(),
        assigned_on: fm.assigned_on,
        reason: fm.reason.clone(),
    });

    let lead = lead(state);

    let mut goals: BTreeMap<LifeDomain, Vec<GoalLine>> = BTreeMap::new();
    for (id, g) in &state.goals {
        goals.entry(g.life_domain).or_default().push(GoalLine {
            goal_id: id.clone(),
            description: g.description.clone(),
            target_date: g.target_date,
            status: match g.outcome {
                None => GoalStatus::Open,
                Some(GoalOutcome::Achieved { .. }) => GoalStatus::Achieved,
                Some(GoalOutcome::Abandoned { .. }) => GoalStatus::Abandoned,
            },
            action_ids: state
                .actions
                .iter()
                .filter(|(_, a)| &a.goal_id == id)
                .map(|(aid, _)| aid.clone())
                .collect(),
        });
    }

    let mut actions: BTreeMap<PartnerId, Vec<ActionLine>> = BTreeMap::new();
    for (id, a) in &state.actions {
        actions
            .entry(a.partner_id.clone())
            .or_default()
            .push(ActionLine {
                action_id: id.clone(),
                goal_id: a.goal_id.clone(),
                member_ids: a.member_ids.clone(),
                description: a.description.clone(),
                intervention: a.intervention.map(|code| {
                    let info = code.info();
                    InterventionLine {
                        code,
                        name: info.name,
                        recognition: info.recognition,
                    }
                }),
                start_on: a.start_on,
                expected_end: a.expected_end,
                extended: a.extension.is_some(),
                status: a.status(),
                finished_on: a.outcome.as_ref().map(|o| match o {
                    ActionOutcome::Delivered { on } | ActionOutcome::NotDelivered { on, .. } => *on,
                }),
                on_time: on_time(a, now),
                chain_escalations: count(
                    state
                        .chain_escalations
                        .iter()
                        .filter(|c| &c.action_id == id)
                        .count(),
                ),
            });
    }

    let escalation = EscalationView {
        rung: state.rung,
        since: state.rung_since(),
        history: state.escalations.clone(),
        proposal: if plan_open {
            proposal(state, now)
        } else {
            None
        },
    };

    let open_chain_escalations = state
        .chain_escalations
        .iter()
        .filter(|c| c.is_open())
        .filter_map(|c| {
            let first = c.steps.first()?;
            let last = c.steps.last()?;
            Some(ChainEscalationLine {
                action_id: c.action_id.clone(),
                partner_id: c.partner_id.clone(),
                level: last.level,
                raised_on: first.on,
                level_since: last.on,
            })
        })
        .collect();

    let transparency = match (state.informed_on, state.deferrals.last()) {
        (Some(on), _) => Transparency::Informed { on },
        (None, Some(d)) if d.until >= now => Transparency::Deferred {
            reason: d.reason.clone(),
            until: d.until,
        },
        (None, _) => Transparency::NotInformed,
    };

    let monitoring = state.monitoring.as_ref().map(|m| {
        let last_visit = m.visits.iter().max().copied();
        MonitoringLine {
            started_on: m.started_on,
            until: m.until,
            visit_interval_days: m.visit_interval_days,
            last_visit,
            next_visit_due: last_visit
                .unwrap_or(m.started_on)
                .checked_add_days(chrono::Days::new(u64::from(m.visit_interval_days)))
                .unwrap_or(NaiveDate::MAX),
        }
    });

    let mut p = Plan {
        as_of: now,
        family_id: reg.map(|r| r.family_id.clone()),
        phase,
        family_type: reg.map(|r| r.family_type),
        strategy: reg.map(|r| r.family_type.strategy()),
        urgency: reg.map(|r| r.urgency),
        members,
        partners,
        open_match,
        family_manager,
        lead,
        agreed_on: plan.map(|p| p.agreed_on),
        horizon: plan.map(|p| p.horizon()),
        extended: plan.is_some_and(|p| p.extension.is_some()),
        next_review: if plan_open { next_review(state) } else { None },
        closed_on: plan.and_then(|p| p.closure.as_ref().map(|c| c.on)),
        goals,
        actions,
        escalation: Some(escalation),
        open_chain_escalations,
        transparency: Some(transparency),
        zrm: zrm_lines(state),
        monitoring,
        warnings: Vec::new(),
        outcomes: outcomes(state, now),
        help_ended_on: state.help_ended_on().filter(|d| *d <= now),
        erasure: state.privacy.erasure_request.as_ref().map(|r| ErasureLine {
            requested_on: r.requested_on,
            requester_role: r.requester_role,
            due: erasure_due(r.requested_on),
        }),
        legal_holds: state
            .active_holds()
            .map(|(id, h)| HoldLine {
                hold_id: id.clone(),
                ground: h.ground,
                reason: h.reason.clone(),
                placed_on: h.placed_on,
            })
            .collect(),
        erased: None,
    };
    p.warnings = warnings(state, &p, now, policy);
    p
}

/// Delivered by the original expected end (before any extension)? Judged once the action is
/// finished or that end has passed.
fn on_time(a: &Action, now: NaiveDate) -> Option<bool> {
    let original_end = a
        .extension
        .as_ref()
        .map_or(a.expected_end, |e| e.original_end);
    let judged = !a.is_open() || original_end < now;
    judged.then(|| matches!(a.outcome, Some(ActionOutcome::Delivered { on }) if on <= original_end))
}

fn lead(state: &FamilyState) -> Option<Lead> {
    if state.family_type() == Some(FamilyType::DirectHelp)
        && let Some(l) = &state.lead_partner
    {
        return Some(Lead {
            partner_id: l.partner_id.clone(),
            basis: LeadBasis::DirectHelpUrgency,
        });
    }
    if let Some(fm) = &state.family_manager {
        return Some(Lead {
            partner_id: fm.partner_id.clone(),
            basis: LeadBasis::FamilyManager,
        });
    }
    state.match_settlements.last().map(|s| Lead {
        partner_id: s.lead_partner_id.clone(),
        basis: LeadBasis::MatchSettlement,
    })
}

/// The earliest planned review after the last one held: the plan's review moments and the
/// date the last review set.
fn next_review(state: &FamilyState) -> Option<NaiveDate> {
    let plan = state.plan.as_ref()?;
    let last = state.reviews.last();
    let after = last.map_or(plan.agreed_on, |r| r.held_on);
    plan.review_moments
        .iter()
        .copied()
        .chain(last.and_then(|r| r.next_review))
        .filter(|d| *d > after)
        .min()
}

/// Proposes the next rung when agreements were not kept since the last decision on the ladder.
/// Only signals dated after that decision count, so a decided rung is not proposed again for
/// the same broken agreement.
fn proposal(state: &FamilyState, now: NaiveDate) -> Option<EscalationProposal> {
    let to = state.rung.next()?;
    let last_decision = state.escalations.last().map(|e| e.on);
    let after = |d: NaiveDate| last_decision.is_none_or(|l| d > l);
    let mut reasons = Vec::new();
    for (id, a) in &state.actions {
        if let Some(ActionOutcome::NotDelivered { on, .. }) = a.outcome
            && after(on)
        {
            reasons.push(ProposalReason::ActionNotDelivered {
                action_id: id.clone(),
                on,
            });
        }
    }
    for (id, g) in &state.goals {
        if g.outcome.is_none()
            && let Some(t) = g.target_date
            && t < now
            && after(t)
        {
            reasons.push(ProposalReason::GoalOverdue {
                goal_id: id.clone(),
                target_date: t,
            });
        }
    }
    for r in &state.refusals {
        if after(r.on) {
            reasons.push(ProposalReason::FamilyRefused { on: r.on });
        }
    }
    if reasons.is_empty() {
        return None;
    }
    reasons.sort();
    Some(EscalationProposal { to, reasons })
}

fn zrm_lines(state: &FamilyState) -> Vec<ZrmLine> {
    type Key = (MemberId, ZrmVersion, &'static str);
    let mut seen: BTreeMap<Key, Vec<ZrmPoint>> = BTreeMap::new();
    for review in &state.reviews {
        for a in &review.zrm {
            let version = a.matrix.version();
            for (domain, score) in a.matrix.entries() {
                seen.entry((a.member_id.clone(), version, domain))
                    .or_default()
                    .push(ZrmPoint {
                        on: review.held_on,
                        score: score.get(),
                    });
            }
        }
    }
    seen.into_iter()
        .filter_map(|((member_id, version, domain), scores)| {
            let (intake, latest) = (*scores.first()?, *scores.last()?);
            Some(ZrmLine {
                member_id,
                version,
                domain,
                intake: intake.score,
                intake_on: intake.on,
                latest: latest.score,
                latest_on: latest.on,
                change: latest.score as i8 - intake.score as i8,
                scores,
            })
        })
        .collect()
}

fn outcomes(state: &FamilyState, now: NaiveDate) -> Outcomes {
    let start = state.plan.as_ref().map(|p| p.agreed_on);
    let window = Months::new(OUTCOME_WINDOW_MONTHS);
    let (before, after, complete) = match start {
        None => (None, None, false),
        Some(s) => {
            let from = s.checked_sub_months(window).unwrap_or(NaiveDate::MIN);
            let to = s.checked_add_months(window).unwrap_or(NaiveDate::MAX);
            let b = state
                .police_contacts
                .iter()
                .filter(|c| c.on >= from && c.on < s)
                .count();
            let a = state
                .police_contacts
                .iter()
                .filter(|c| c.on >= s && c.on < to)
                .count();
            (Some(count(b)), Some(count(a)), now >= to)
        }
    };

    let goals_achieved = Share {
        count: count(
            state
                .goals
                .values()
                .filter(|g| matches!(g.outcome, Some(GoalOutcome::Achieved { .. })))
                .count(),
        ),
        of: count(state.goals.len()),
    };

    let mut actions_on_time: BTreeMap<PartnerId, Share> = BTreeMap::new();
    for a in state.actions.values() {
        let Some(in_time) = on_time(a, now) else {
            continue;
        };
        let share = actions_on_time.entry(a.partner_id.clone()).or_default();
        share.of += 1;
        share.count += u32::from(in_time);
    }

    Outcomes {
        police_contacts_before: before,
        police_contacts_after: after,
        after_window_complete: complete,
        goals_achieved,
        actions_on_time,
        escalations: Some(count(
            state
                .escalations
                .iter()
                .filter(|e| e.direction == Direction::Raised)
                .count(),
        )),
        de_escalations: Some(count(
            state
                .escalations
                .iter()
                .filter(|e| e.direction == Direction::Lowered)
                .count(),
        )),
        chain_escalations: Some(count(state.chain_escalations.len())),
        nuisance_reports: Some(count(state.nuisance_reports.len())),
    }
}

fn warnings(state: &FamilyState, plan: &Plan, now: NaiveDate, policy: &Policy) -> Vec<Warning> {
    use WarningKind as K;
    let mut out = Vec::new();
    let Some(reg) = &state.registration else {
        return out;
    };
    let record = state.plan.as_ref();
    let closed = record.is_some_and(|p| p.is_closed());
    let plan_open = record.is_some() && !closed;

    if !closed && state.family_manager.is_none() {
        out.push(Warning::new(
            K::NoFamilyManager,
            reg.registered_on,
            "no family manager is assigned; one worker must be responsible for the family".into(),
        ));
    }

    if !closed
        && let Some(fm) = &state.family_manager
        && fm.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        && state
            .participations
            .iter()
            .rev()
            .find(|p| p.partner_id == fm.partner_id)
            .is_some_and(|p| p.kind == PartnerKind::YouthCare)
        && let Some(flagged_on) = state
            .members
            .values()
            .filter(|m| m.is_present() && m.flags.intellectual_disability)
            .map(|m| m.added_on)
            .min()
    {
        out.push(Warning::new(
            K::FamilyManagerNotFromWsg,
            flagged_on.max(fm.assigned_on),
            "a member is flagged with an intellectual disability, so the family manager comes from WSG; reassign or record why youth care stays".into(),
        ));
    }

    if !closed && let Some(Transparency::NotInformed) = plan.transparency {
        let since = state
            .deferrals
            .last()
            .map_or(reg.registered_on, |d| d.until);
        out.push(Warning::new(
            K::FamilyNotInformed,
            since,
            "the family has not been told about the approach, and telling it is not deferred"
                .into(),
        ));
    }

    if let Some(m) = &plan.open_match {
        let mut w = Warning::new(
            K::MatchNotSettled,
            m.raised_on,
            format!(
                "{} partners take part in this family; they must record contact and who takes the lead by {}",
                m.partner_ids.len(),
                m.deadline
            ),
        );
        w.due = Some(m.deadline);
        out.push(w);
    }

    if let Some(p) = record
        && plan_open
        && now > p.horizon()
    {
        out.push(Warning::new(
            K::PlanPastHorizon,
            p.horizon(),
            format!("the plan passed its horizon of {}", p.horizon()),
        ));
    }

    if plan_open
        && let Some(next) = plan.next_review
        && next < now
    {
        out.push(Warning::new(
            K::ReviewOverdue,
            next,
            format!("the review planned for {next} has not been held"),
        ));
    }

    if let Some(p) = record
        && plan_open
    {
        for (id, m) in state.members.iter().filter(|(_, m)| m.is_present()) {
            let mine: Vec<_> = state
                .actions
                .values()
                .filter(|a| a.member_ids.contains(id))
                .collect();
            if mine.iter().any(|a| a.is_open()) {
                continue;
            }
            let last_help_ended = mine
                .iter()
                .filter_map(|a| match &a.outcome {
                    Some(
                        ActionOutcome::Delivered { on } | ActionOutcome::NotDelivered { on, .. },
                    ) => Some(*on),
                    None => None,
                })
                .max();
            let since = [Some(p.agreed_on), Some(m.added_on), last_help_ended]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(p.agreed_on);
            let mut w = Warning::new(
                K::MemberWithoutHelp,
                since,
                format!(
                    "member {id} receives no help in the plan; every member of the family gets help"
                ),
            );
            w.member_id = Some(id.clone());
            out.push(w);
        }

        for (id, g) in state.goals.iter().filter(|(_, g)| g.outcome.is_none()) {
            let live = state
                .actions
                .values()
                .any(|a| &a.goal_id == id && a.status() != ActionStatus::NotDelivered);
            if live {
                continue;
            }
            let mut w = Warning::new(
                K::GoalWithoutActions,
                g.set_on,
                format!("goal {id} has no action that works on it"),
            );
            w.goal_id = Some(id.clone());
            out.push(w);
        }
    }

    for (id, a) in state.actions.iter().filter(|(_, a)| a.is_open()) {
        let action_warning = |kind, since, message: String| {
            let mut w = Warning::new(kind, since, message);
            w.action_id = Some(id.clone());
            w.partner_id = Some(a.partner_id.clone());
            w.goal_id = Some(a.goal_id.clone());
            w
        };
        if a.expected_end < now {
            out.push(action_warning(
                K::ActionOverdue,
                a.expected_end,
                format!(
                    "action {id} of partner {} was expected to end on {} and is not reported delivered",
                    a.partner_id, a.expected_end
                ),
            ));
        }
        let Some(code) = a.intervention else { continue };
        let info = code.info();
        if let Some(max) = info.max_duration {
            let limit = max.after(a.started_on.unwrap_or(a.start_on));
            if now > limit {
                out.push(action_warning(
                    K::ActionPastInterventionMaximum,
                    limit,
                    format!(
                        "action {id} runs past the maximum duration of {} ({limit})",
                        info.name
                    ),
                ));
            }
        }
        if let Target::ChildrenAged { min, max } = info.target {
            let concerned: Vec<_> = a
                .member_ids
                .iter()
                .filter_map(|m| state.members.get(m).map(|mm| (m, mm)))
                .collect();
            let mut any_fit = false;
            for (mid, m) in &concerned {
                if m.role != MemberRole::Child {
                    continue;
                }
                if age_may_fit(m.birth_year, a.start_on, min, max) {
                    any_fit = true;
                } else {
                    let mut w = action_warning(
                        K::InterventionNotEligible,
                        a.committed_on,
                        format!(
                            "{} is for children aged {min} to {max}; member {mid} (born {}) is not in that range",
                            info.name, m.birth_year
                        ),
                    );
                    w.member_id = Some((*mid).clone());
                    out.push(w);
                }
            }
            if !any_fit && !concerned.iter().any(|(_, m)| m.role == MemberRole::Child) {
                out.push(action_warning(
                    K::InterventionNotEligible,
                    a.committed_on,
                    format!(
                        "{} is for children aged {min} to {max}; action {id} concerns no child",
                        info.name
                    ),
                ));
            }
        }
    }

    if let Some(m) = &plan.monitoring
        && now <= m.until
        && m.next_visit_due <= now
    {
        let mut w = Warning::new(
            K::MonitoringVisitDue,
            m.next_visit_due,
            format!("a monitoring visit was due on {}", m.next_visit_due),
        );
        w.due = Some(m.next_visit_due);
        out.push(w);
    }

    if let Some(e) = &plan.erasure {
        let mut w = Warning::new(
            K::ErasureDeadline,
            e.requested_on,
            format!(
                "a {} asked on {} for the family's file to be destroyed; it must be erased by {}{}",
                e.requester_role,
                e.requested_on,
                e.due,
                if plan.legal_holds.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", unless a legal hold applies ({} active)",
                        plan.legal_holds.len()
                    )
                }
            ),
        );
        w.due = Some(e.due);
        out.push(w);
    }

    if let Some(ended) = state.help_ended_on() {
        let due = policy.destruction_due(ended);
        if due <= now {
            out.push(Warning::new(
                K::DueForDestruction,
                due,
                format!(
                    "help ended on {ended}, more than {} years ago: the file is due for destruction",
                    policy.retention_years
                ),
            ));
        }
    }

    out.sort();
    out
}
