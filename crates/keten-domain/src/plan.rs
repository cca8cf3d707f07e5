//! The projection: the one coordinated plan of a family as a coordinator sees it on a given
//! day, with the warnings to act on, an escalation proposal and outcome figures.
//!
//! Everything here is derived from [`FamilyState`] and `now`; nothing is stored, and the
//! output is ordered (BTreeMap, sorted Vecs) so that the same events give the same plan.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::catalogue::{InterventionCode, Recognition, Target, age_may_fit};
use crate::ids::{ActionId, FamilyId, GoalId, MemberId, PartnerId, PersonId};
use crate::kinds::{ChainLevel, FamilyType, LifeDomain, MemberRole, PartnerKind, Rung, Urgency};
use crate::state::{
    ActionOutcome, ActionStatus, Direction, EscalationStep, FamilyState, GoalOutcome, MatchSignal,
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
    pub escalation: EscalationView,
    /// Chain escalations not yet resolved, by action.
    pub open_chain_escalations: Vec<ChainEscalationLine>,
    pub transparency: Transparency,
    pub zrm: Vec<ZrmLine>,
    pub monitoring: Option<MonitoringLine>,
    pub warnings: Vec<Warning>,
    pub outcomes: Outcomes,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberLine {
    pub member_id: MemberId,
    pub role: MemberRole,
    pub birth_year: i32,
    pub intellectual_disability: bool,
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

/// One member's self-reliance on one ZRM domain: the first score (intake) and the latest.
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
    pub escalations: u32,
    pub de_escalations: u32,
    pub chain_escalations: u32,
    pub nuisance_reports: u32,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The one coordinated plan for the family in `state`, as of `now`.
pub fn coordinated_plan(state: &FamilyState, now: NaiveDate) -> Plan {
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
            intellectual_disability: m.flags.intellectual_disability,
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
        escalation,
        open_chain_escalations,
        transparency,
        zrm: zrm_lines(state),
        monitoring,
        warnings: Vec::new(),
        outcomes: outcomes(state, now),
    };
    p.warnings = warnings(state, &p, now);
    p
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
    type Dated = (NaiveDate, u8);
    let mut seen: BTreeMap<Key, (Dated, Dated)> = BTreeMap::new();
    for review in &state.reviews {
        for a in &review.zrm {
            let version = a.matrix.version();
            for (domain, score) in a.matrix.entries() {
                let now = (review.held_on, score.get());
                seen.entry((a.member_id.clone(), version, domain))
                    .and_modify(|(_, latest)| *latest = now)
                    .or_insert((now, now));
            }
        }
    }
    seen.into_iter()
        .map(|((member_id, version, domain), (intake, latest))| ZrmLine {
            member_id,
            version,
            domain,
            intake: intake.1,
            intake_on: intake.0,
            latest: latest.1,
            latest_on: latest.0,
            change: latest.1 as i8 - intake.1 as i8,
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
        let original_end = a
            .extension
            .as_ref()
            .map_or(a.expected_end, |e| e.original_end);
        let judged = !a.is_open() || original_end < now;
        if !judged {
            continue;
        }
        let share = actions_on_time.entry(a.partner_id.clone()).or_default();
        share.of += 1;
        if let Some(ActionOutcome::Delivered { on }) = a.outcome
            && on <= original_end
        {
            share.count += 1;
        }
    }

    Outcomes {
        police_contacts_before: before,
        police_contacts_after: after,
        after_window_complete: complete,
        goals_achieved,
        actions_on_time,
        escalations: count(
            state
                .escalations
                .iter()
                .filter(|e| e.direction == Direction::Raised)
                .count(),
        ),
        de_escalations: count(
            state
                .escalations
                .iter()
                .filter(|e| e.direction == Direction::Lowered)
                .count(),
        ),
        chain_escalations: count(state.chain_escalations.len()),
        nuisance_reports: count(state.nuisance_reports.len()),
    }
}

fn warnings(state: &FamilyState, plan: &Plan, now: NaiveDate) -> Vec<Warning> {
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

    if !closed && let Transparency::NotInformed = plan.transparency {
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

    out.sort();
    out
}
