//! The coordinated plan to the wire. One way: plans are computed by the server, never sent to it.

use keten_domain::plan::{ProposalReason, Transparency};
use keten_domain::{Plan, Redacted, WarningKind};

use super::date_to_proto as date;
use super::event::erasure_ground_to_proto;
use crate::v1;

fn ids<T: ToString>(ids: &[T]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// A plan redacted for its reader, with the classes left out in `omitted_classes`.
pub fn redacted_to_proto(redacted: &Redacted) -> v1::FamilyPlan {
    let mut plan = plan_to_proto(&redacted.plan);
    plan.omitted_classes = redacted
        .omitted
        .iter()
        .map(|c| v1::DataClass::from(*c).into())
        .collect();
    plan
}

/// The coordinated plan as `FamilyPlan`. Orders are kept: goals by life domain, actions by
/// partner, both as the domain's maps order them. `omitted_classes` is empty: a plan that was
/// not redacted leaves nothing out ([`redacted_to_proto`] for one that was).
pub fn plan_to_proto(plan: &Plan) -> v1::FamilyPlan {
    let o = &plan.outcomes;
    v1::FamilyPlan {
        as_of: Some(date(plan.as_of)),
        family_id: plan.family_id.as_ref().map(ToString::to_string),
        phase: v1::Phase::from(plan.phase).into(),
        family_type: plan
            .family_type
            .map_or(v1::FamilyType::Unspecified, Into::into)
            .into(),
        strategy: plan.strategy.map(str::to_owned),
        urgency: plan
            .urgency
            .map_or(v1::Urgency::Unspecified, Into::into)
            .into(),
        members: plan
            .members
            .iter()
            .map(|m| v1::Member {
                member_id: m.member_id.to_string(),
                role: v1::MemberRole::from(m.role).into(),
                birth_year: m.birth_year,
                intellectual_disability: m.intellectual_disability,
                present: m.present,
                action_ids: ids(&m.action_ids),
            })
            .collect(),
        partners: plan
            .partners
            .iter()
            .map(|p| v1::Partner {
                partner_id: p.partner_id.to_string(),
                kind: v1::PartnerKind::from(p.kind).into(),
                display_name: p.display_name.clone(),
                joined_on: Some(date(p.joined_on)),
            })
            .collect(),
        open_match: plan.open_match.as_ref().map(|m| v1::MatchSignal {
            raised_on: Some(date(m.raised_on)),
            deadline: Some(date(m.deadline)),
            partner_ids: ids(&m.partner_ids),
        }),
        family_manager: plan.family_manager.as_ref().map(|f| v1::FamilyManager {
            manager: f.manager.to_string(),
            partner_id: f.partner_id.to_string(),
            assigned_on: Some(date(f.assigned_on)),
            reason: f.reason.clone(),
        }),
        lead: plan.lead.as_ref().map(|l| v1::Lead {
            partner_id: l.partner_id.to_string(),
            basis: v1::LeadBasis::from(l.basis).into(),
        }),
        agreed_on: plan.agreed_on.map(date),
        horizon: plan.horizon.map(date),
        extended: plan.extended,
        next_review: plan.next_review.map(date),
        closed_on: plan.closed_on.map(date),
        goals: plan
            .goals
            .iter()
            .map(|(domain, goals)| v1::LifeDomainGoals {
                life_domain: v1::LifeDomain::from(*domain).into(),
                goals: goals
                    .iter()
                    .map(|g| v1::Goal {
                        goal_id: g.goal_id.to_string(),
                        description: g.description.clone(),
                        target_date: g.target_date.map(date),
                        status: v1::GoalStatus::from(g.status).into(),
                        action_ids: ids(&g.action_ids),
                    })
                    .collect(),
            })
            .collect(),
        actions: plan
            .actions
            .iter()
            .map(|(partner, actions)| v1::PartnerActions {
                partner_id: partner.to_string(),
                actions: actions
                    .iter()
                    .map(|a| v1::Action {
                        action_id: a.action_id.to_string(),
                        goal_id: a.goal_id.to_string(),
                        member_ids: ids(&a.member_ids),
                        description: a.description.clone(),
                        intervention: a.intervention.as_ref().map(|i| v1::Intervention {
                            code: v1::InterventionCode::from(i.code).into(),
                            name: i.name.to_owned(),
                            recognition: v1::Recognition::from(i.recognition).into(),
                        }),
                        start_on: Some(date(a.start_on)),
                        expected_end: Some(date(a.expected_end)),
                        extended: a.extended,
                        status: v1::ActionStatus::from(a.status).into(),
                        finished_on: a.finished_on.map(date),
                        on_time: a.on_time,
                        chain_escalations: a.chain_escalations,
                    })
                    .collect(),
            })
            .collect(),
        escalation: plan.escalation.as_ref().map(|e| v1::EscalationState {
            rung: v1::Rung::from(e.rung).into(),
            since: e.since.map(date),
            history: e
                .history
                .iter()
                .map(|s| v1::EscalationStep {
                    direction: v1::EscalationDirection::from(s.direction).into(),
                    from: v1::Rung::from(s.from).into(),
                    to: v1::Rung::from(s.to).into(),
                    by: s.by.to_string(),
                    reason: s.reason.clone(),
                    legal_basis: s.legal_basis.clone(),
                    on: Some(date(s.on)),
                })
                .collect(),
            proposal: e.proposal.as_ref().map(|p| v1::EscalationProposal {
                to: v1::Rung::from(p.to).into(),
                reasons: p.reasons.iter().map(proposal_reason).collect(),
            }),
        }),
        open_chain_escalations: plan
            .open_chain_escalations
            .iter()
            .map(|c| v1::ChainEscalation {
                action_id: c.action_id.to_string(),
                partner_id: c.partner_id.to_string(),
                level: v1::ChainLevel::from(c.level).into(),
                raised_on: Some(date(c.raised_on)),
                level_since: Some(date(c.level_since)),
            })
            .collect(),
        transparency: plan.transparency.as_ref().map(|t| v1::Transparency {
            state: Some(match t {
                Transparency::NotInformed => v1::transparency::State::NotInformed(v1::Empty {}),
                Transparency::Deferred { reason, until } => {
                    v1::transparency::State::Deferred(v1::InformingDeferral {
                        reason: reason.clone(),
                        until: Some(date(*until)),
                    })
                }
                Transparency::Informed { on } => v1::transparency::State::InformedOn(date(*on)),
            }),
        }),
        zrm: plan
            .zrm
            .iter()
            .map(|z| v1::ZrmChange {
                member_id: z.member_id.to_string(),
                version: v1::ZrmVersion::from(z.version).into(),
                domain: z.domain.to_owned(),
                intake: u32::from(z.intake),
                intake_on: Some(date(z.intake_on)),
                latest: u32::from(z.latest),
                latest_on: Some(date(z.latest_on)),
                change: i32::from(z.change),
            })
            .collect(),
        monitoring: plan.monitoring.as_ref().map(|m| v1::Monitoring {
            started_on: Some(date(m.started_on)),
            until: Some(date(m.until)),
            visit_interval_days: u32::from(m.visit_interval_days),
            last_visit: m.last_visit.map(date),
            next_visit_due: Some(date(m.next_visit_due)),
        }),
        warnings: plan
            .warnings
            .iter()
            .map(|w| v1::Warning {
                kind: v1::WarningKind::from(w.kind).into(),
                since: Some(date(w.since)),
                member_id: w.member_id.as_ref().map(ToString::to_string),
                goal_id: w.goal_id.as_ref().map(ToString::to_string),
                action_id: w.action_id.as_ref().map(ToString::to_string),
                partner_id: w.partner_id.as_ref().map(ToString::to_string),
                due: w.due.map(date),
                message: w.message.clone(),
            })
            .collect(),
        outcomes: Some(v1::Outcomes {
            police_contacts_before: o.police_contacts_before,
            police_contacts_after: o.police_contacts_after,
            after_window_complete: o.after_window_complete,
            goals_achieved: Some(v1::Share {
                count: o.goals_achieved.count,
                of: o.goals_achieved.of,
            }),
            actions_on_time: o
                .actions_on_time
                .iter()
                .map(|(p, s)| v1::PartnerShare {
                    partner_id: p.to_string(),
                    share: Some(v1::Share {
                        count: s.count,
                        of: s.of,
                    }),
                })
                .collect(),
            escalations: o.escalations,
            de_escalations: o.de_escalations,
            chain_escalations: o.chain_escalations,
            nuisance_reports: o.nuisance_reports,
        }),
        help_ended_on: plan.help_ended_on.map(date),
        erasure: plan.erasure.as_ref().map(|e| v1::Erasure {
            requested_on: Some(date(e.requested_on)),
            requester_role: v1::MemberRole::from(e.requester_role).into(),
            due: Some(date(e.due)),
        }),
        legal_holds: plan
            .legal_holds
            .iter()
            .map(|h| v1::LegalHold {
                hold_id: h.hold_id.to_string(),
                ground: v1::LegalGround::from(h.ground).into(),
                reason: h.reason.clone(),
                placed_on: Some(date(h.placed_on)),
            })
            .collect(),
        erased: plan.erased.as_ref().map(|e| v1::Erased {
            on: Some(date(e.on)),
            ground: Some(erasure_ground_to_proto(&e.ground)),
        }),
        omitted_classes: Vec::new(),
    }
}

fn proposal_reason(r: &ProposalReason) -> v1::ProposalReason {
    use v1::proposal_reason as pr;
    let reason = match r {
        ProposalReason::ActionNotDelivered { action_id, on } => {
            pr::Reason::ActionNotDelivered(pr::ActionNotDelivered {
                action_id: action_id.to_string(),
                on: Some(date(*on)),
            })
        }
        ProposalReason::GoalOverdue {
            goal_id,
            target_date,
        } => pr::Reason::GoalOverdue(pr::GoalOverdue {
            goal_id: goal_id.to_string(),
            target_date: Some(date(*target_date)),
        }),
        ProposalReason::FamilyRefused { on } => pr::Reason::FamilyRefused(pr::FamilyRefused {
            on: Some(date(*on)),
        }),
    };
    v1::ProposalReason {
        reason: Some(reason),
    }
}

/// One family in a `ListFamilies` page, from its plan, its version and the position of its
/// last event. The family id is the plan's (empty if, impossibly, the plan has none).
pub fn summary_to_proto(plan: &Plan, version: u64, last_position: u64) -> v1::FamilySummary {
    let mut kinds: Vec<WarningKind> = plan.warnings.iter().map(|w| w.kind).collect();
    kinds.sort();
    kinds.dedup();
    v1::FamilySummary {
        family_id: plan
            .family_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        version,
        last_position,
        phase: v1::Phase::from(plan.phase).into(),
        family_type: plan
            .family_type
            .map_or(v1::FamilyType::Unspecified, Into::into)
            .into(),
        urgency: plan
            .urgency
            .map_or(v1::Urgency::Unspecified, Into::into)
            .into(),
        rung: plan
            .escalation
            .as_ref()
            .map_or(v1::Rung::Unspecified, |e| v1::Rung::from(e.rung))
            .into(),
        family_manager: plan.family_manager.as_ref().map(|f| f.manager.to_string()),
        lead_partner_id: plan.lead.as_ref().map(|l| l.partner_id.to_string()),
        partner_ids: plan
            .partners
            .iter()
            .map(|p| p.partner_id.to_string())
            .collect(),
        warning_kinds: kinds
            .into_iter()
            .map(|k| v1::WarningKind::from(k).into())
            .collect(),
        warning_count: u32::try_from(plan.warnings.len()).unwrap_or(u32::MAX),
        next_review: plan.next_review.map(date),
        horizon: plan.horizon.map(date),
    }
}
