//! The events, both ways. Both matches are exhaustive: a variant added to
//! `keten_domain::Event` or to the `FamilyEvent` oneof does not compile until it is mapped here.

use std::collections::BTreeMap;

use keten_domain::zrm::{ZrmAssessment, ZrmScore, ZrmScores};
use keten_domain::{ErasureGround, Event};

use super::{FieldError, Path, date_to_proto as date, rule};
use crate::v1;
use crate::v1::family_event::Event as P;

/// A typed event from the wire as a domain event. Field paths in the error start at the oneof
/// case, e.g. `action_committed.member_ids[1]`; the caller prefixes its own place in the
/// request (`events[0]`) with [`FieldError::within`].
pub fn event_from_proto(event: v1::FamilyEvent) -> Result<Event, FieldError> {
    let Some(event) = event.event else {
        return Err(FieldError::new(
            "event",
            format!("{}: one of the typed events", rule::MUST_BE_SET),
        ));
    };
    Ok(match event {
        P::FamilyRegistered(m) => {
            let p = Path::new("family_registered");
            Event::FamilyRegistered {
                family_id: p.id("family_id", m.family_id)?,
                family_type: p.enumeration::<v1::FamilyType, _>("family_type", m.family_type)?,
                urgency: p.enumeration::<v1::Urgency, _>("urgency", m.urgency)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::FamilyTypeChanged(m) => {
            let p = Path::new("family_type_changed");
            Event::FamilyTypeChanged {
                family_type: p.enumeration::<v1::FamilyType, _>("family_type", m.family_type)?,
                urgency: p.enumeration::<v1::Urgency, _>("urgency", m.urgency)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::MemberAdded(m) => {
            let p = Path::new("member_added");
            Event::MemberAdded {
                member_id: p.id("member_id", m.member_id)?,
                role: p.enumeration::<v1::MemberRole, _>("role", m.role)?,
                birth_year: m.birth_year,
                flags: keten_domain::MemberFlags {
                    intellectual_disability: m.flags.is_some_and(|f| f.intellectual_disability),
                },
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::MemberLeft(m) => {
            let p = Path::new("member_left");
            Event::MemberLeft {
                member_id: p.id("member_id", m.member_id)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::PartnerJoined(m) => {
            let p = Path::new("partner_joined");
            Event::PartnerJoined {
                partner_id: p.id("partner_id", m.partner_id)?,
                partner_kind: p
                    .enumeration::<v1::PartnerKind, _>("partner_kind", m.partner_kind)?,
                display_name: m.display_name,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::PartnerLeft(m) => {
            let p = Path::new("partner_left");
            Event::PartnerLeft {
                partner_id: p.id("partner_id", m.partner_id)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::MatchSettled(m) => {
            let p = Path::new("match_settled");
            Event::MatchSettled {
                lead_partner_id: p.id("lead_partner_id", m.lead_partner_id)?,
                contacted_on: p.date("contacted_on", m.contacted_on)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::FamilyManagerAssigned(m) => {
            let p = Path::new("family_manager_assigned");
            Event::FamilyManagerAssigned {
                manager: p.id("manager", m.manager)?,
                partner_id: p.id("partner_id", m.partner_id)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::LeadPartnerSet(m) => {
            let p = Path::new("lead_partner_set");
            Event::LeadPartnerSet {
                partner_id: p.id("partner_id", m.partner_id)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::PlanAgreed(m) => {
            let p = Path::new("plan_agreed");
            Event::PlanAgreed {
                agreed_on: p.date("agreed_on", m.agreed_on)?,
                review_moments: p.dates("review_moments", m.review_moments)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::PlanExtended(m) => {
            let p = Path::new("plan_extended");
            Event::PlanExtended {
                new_horizon: p.date("new_horizon", m.new_horizon)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::GoalSet(m) => {
            let p = Path::new("goal_set");
            Event::GoalSet {
                goal_id: p.id("goal_id", m.goal_id)?,
                life_domain: p.enumeration::<v1::LifeDomain, _>("life_domain", m.life_domain)?,
                description: m.description,
                target_date: p.opt_date("target_date", m.target_date)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::ActionCommitted(m) => {
            let p = Path::new("action_committed");
            Event::ActionCommitted {
                action_id: p.id("action_id", m.action_id)?,
                goal_id: p.id("goal_id", m.goal_id)?,
                partner_id: p.id("partner_id", m.partner_id)?,
                member_ids: p.ids("member_ids", m.member_ids)?,
                intervention: m
                    .intervention
                    .map(|i| p.enumeration::<v1::InterventionCode, _>("intervention", i))
                    .transpose()?,
                description: m.description,
                start_on: p.date("start_on", m.start_on)?,
                expected_end: p.date("expected_end", m.expected_end)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::ActionStarted(m) => {
            let p = Path::new("action_started");
            Event::ActionStarted {
                action_id: p.id("action_id", m.action_id)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::ActionDelivered(m) => {
            let p = Path::new("action_delivered");
            Event::ActionDelivered {
                action_id: p.id("action_id", m.action_id)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::ActionNotDelivered(m) => {
            let p = Path::new("action_not_delivered");
            Event::ActionNotDelivered {
                action_id: p.id("action_id", m.action_id)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::ActionDeadlineExtended(m) => {
            let p = Path::new("action_deadline_extended");
            Event::ActionDeadlineExtended {
                action_id: p.id("action_id", m.action_id)?,
                new_expected_end: p.date("new_expected_end", m.new_expected_end)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::GoalAchieved(m) => {
            let p = Path::new("goal_achieved");
            Event::GoalAchieved {
                goal_id: p.id("goal_id", m.goal_id)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::GoalAbandoned(m) => {
            let p = Path::new("goal_abandoned");
            Event::GoalAbandoned {
                goal_id: p.id("goal_id", m.goal_id)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::ReviewHeld(m) => {
            let p = Path::new("review_held");
            Event::ReviewHeld {
                zrm: m
                    .zrm
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| zrm_from_proto(&p.nested(&format!("zrm[{i}]")), a))
                    .collect::<Result<_, _>>()?,
                next_review: p.opt_date("next_review", m.next_review)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::CooperationRefused(m) => {
            let p = Path::new("cooperation_refused");
            Event::CooperationRefused {
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::PlanClosed(m) => {
            let p = Path::new("plan_closed");
            Event::PlanClosed {
                reason: p.enumeration::<v1::ClosureReason, _>("reason", m.reason)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::MonitoringStarted(m) => {
            let p = Path::new("monitoring_started");
            Event::MonitoringStarted {
                until: p.date("until", m.until)?,
                visit_interval_days: u16::try_from(m.visit_interval_days).map_err(|_| {
                    FieldError::new(
                        p.at("visit_interval_days"),
                        format!("{}: at most {} days", rule::MUST_BE_IN_RANGE, u16::MAX),
                    )
                })?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::MonitoringVisitRecorded(m) => {
            let p = Path::new("monitoring_visit_recorded");
            Event::MonitoringVisitRecorded {
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::HomeVisitRecorded(m) => {
            let p = Path::new("home_visit_recorded");
            Event::HomeVisitRecorded {
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::EscalationRaised(m) => {
            let p = Path::new("escalation_raised");
            Event::EscalationRaised {
                to: p.enumeration::<v1::Rung, _>("to", m.to)?,
                by: p.id("by", m.by)?,
                reason: m.reason,
                legal_basis: m.legal_basis,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::EscalationLowered(m) => {
            let p = Path::new("escalation_lowered");
            Event::EscalationLowered {
                to: p.enumeration::<v1::Rung, _>("to", m.to)?,
                by: p.id("by", m.by)?,
                reason: m.reason,
                legal_basis: m.legal_basis,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::ChainEscalationRaised(m) => {
            let p = Path::new("chain_escalation_raised");
            Event::ChainEscalationRaised {
                action_id: p.id("action_id", m.action_id)?,
                partner_id: p.id("partner_id", m.partner_id)?,
                level: p.enumeration::<v1::ChainLevel, _>("level", m.level)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::ChainEscalationResolved(m) => {
            let p = Path::new("chain_escalation_resolved");
            Event::ChainEscalationResolved {
                action_id: p.id("action_id", m.action_id)?,
                resolution: m.resolution,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::FamilyInformed(m) => {
            let p = Path::new("family_informed");
            Event::FamilyInformed {
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::InformingDeferred(m) => {
            let p = Path::new("informing_deferred");
            Event::InformingDeferred {
                reason: m.reason,
                until: p.date("until", m.until)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::PoliceContactRecorded(m) => {
            let p = Path::new("police_contact_recorded");
            Event::PoliceContactRecorded {
                member_id: p.opt_id("member_id", m.member_id)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::NuisanceReported(m) => {
            let p = Path::new("nuisance_reported");
            Event::NuisanceReported {
                description: m.description,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::ErasureRequested(m) => {
            let p = Path::new("erasure_requested");
            Event::ErasureRequested {
                requester: p.id("requester", m.requester)?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::LegalHoldPlaced(m) => {
            let p = Path::new("legal_hold_placed");
            Event::LegalHoldPlaced {
                hold_id: p.id("hold_id", m.hold_id)?,
                ground: p.enumeration::<v1::LegalGround, _>("ground", m.ground)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::LegalHoldLifted(m) => {
            let p = Path::new("legal_hold_lifted");
            Event::LegalHoldLifted {
                hold_id: p.id("hold_id", m.hold_id)?,
                reason: m.reason,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
        P::FamilyErased(m) => {
            let p = Path::new("family_erased");
            Event::FamilyErased {
                ground: erasure_ground_from_proto(&p.nested("ground"), m.ground)?,
                notified: m
                    .notified
                    .into_iter()
                    .enumerate()
                    .map(|(i, id)| p.id(&format!("notified[{i}]"), id))
                    .collect::<Result<_, _>>()?,
                occurred_on: p.date("occurred_on", m.occurred_on)?,
            }
        }
    })
}

fn erasure_ground_from_proto(
    p: &Path,
    ground: Option<v1::ErasureGround>,
) -> Result<ErasureGround, FieldError> {
    use v1::erasure_ground::Ground;
    let missing = || FieldError::new(p.0.clone(), rule::MUST_BE_SET);
    Ok(match ground.and_then(|g| g.ground).ok_or_else(missing)? {
        Ground::Request(r) => {
            let p = p.nested("request");
            ErasureGround::Request {
                requested_on: p.date("requested_on", r.requested_on)?,
                requester_role: p
                    .enumeration::<v1::MemberRole, _>("requester_role", r.requester_role)?,
            }
        }
        Ground::RetentionEnded(r) => {
            let p = p.nested("retention_ended");
            ErasureGround::RetentionEnded {
                help_ended_on: p.date("help_ended_on", r.help_ended_on)?,
            }
        }
    })
}

/// An erasure ground on the wire.
pub fn erasure_ground_to_proto(ground: &ErasureGround) -> v1::ErasureGround {
    use v1::erasure_ground::{Ground, Request, RetentionEnded};
    v1::ErasureGround {
        ground: Some(match ground {
            ErasureGround::Request {
                requested_on,
                requester_role,
            } => Ground::Request(Request {
                requested_on: Some(date(*requested_on)),
                requester_role: v1::MemberRole::from(*requester_role).into(),
            }),
            ErasureGround::RetentionEnded { help_ended_on } => {
                Ground::RetentionEnded(RetentionEnded {
                    help_ended_on: Some(date(*help_ended_on)),
                })
            }
        }),
    }
}

fn zrm_from_proto(p: &Path, a: v1::ZrmAssessment) -> Result<ZrmAssessment, FieldError> {
    use v1::zrm_assessment::Matrix;

    fn scores<PD, DD>(
        p: &Path,
        entries: impl IntoIterator<Item = (i32, u32)>,
    ) -> Result<BTreeMap<DD, ZrmScore>, FieldError>
    where
        PD: TryFrom<i32>,
        DD: Ord + TryFrom<PD, Error = super::Unspecified>,
    {
        let mut out = BTreeMap::new();
        for (i, (domain, score)) in entries.into_iter().enumerate() {
            let at = p.nested(&format!("scores[{i}]"));
            let domain: DD = at.enumeration::<PD, _>("domain", domain)?;
            let score = u8::try_from(score)
                .ok()
                .and_then(|s| ZrmScore::new(s).ok())
                .ok_or_else(|| {
                    FieldError::new(
                        at.at("score"),
                        format!("{}, not {score}", rule::MUST_BE_A_SCORE),
                    )
                })?;
            if out.insert(domain, score).is_some() {
                return Err(FieldError::new(
                    at.at("domain"),
                    format!("{}: each domain is scored once", rule::MUST_NOT_REPEAT),
                ));
            }
        }
        Ok(out)
    }

    let member_id = p.id("member_id", a.member_id)?;
    let matrix = match a.matrix {
        None => return Err(FieldError::new(p.at("matrix"), rule::MUST_BE_SET)),
        Some(Matrix::Zrm2010(s)) => ZrmScores::V2010 {
            scores: scores::<v1::Zrm2010Domain, _>(
                &p.nested("zrm_2010"),
                s.scores.into_iter().map(|s| (s.domain, s.score)),
            )?,
        },
        Some(Matrix::Zrm2017(s)) => ZrmScores::V2017 {
            scores: scores::<v1::Zrm2017Domain, _>(
                &p.nested("zrm_2017"),
                s.scores.into_iter().map(|s| (s.domain, s.score)),
            )?,
        },
    };
    Ok(ZrmAssessment { member_id, matrix })
}

fn zrm_to_proto(a: &ZrmAssessment) -> v1::ZrmAssessment {
    use v1::zrm_assessment::Matrix;
    let matrix = match &a.matrix {
        ZrmScores::V2010 { scores } => Matrix::Zrm2010(v1::Zrm2010Scores {
            scores: scores
                .iter()
                .map(|(d, s)| v1::Zrm2010Score {
                    domain: v1::Zrm2010Domain::from(*d).into(),
                    score: u32::from(s.get()),
                })
                .collect(),
        }),
        ZrmScores::V2017 { scores } => Matrix::Zrm2017(v1::Zrm2017Scores {
            scores: scores
                .iter()
                .map(|(d, s)| v1::Zrm2017Score {
                    domain: v1::Zrm2017Domain::from(*d).into(),
                    score: u32::from(s.get()),
                })
                .collect(),
        }),
    };
    v1::ZrmAssessment {
        member_id: a.member_id.to_string(),
        matrix: Some(matrix),
    }
}

/// A domain event as the typed event on the wire. Total: every event has a counterpart.
pub fn event_to_proto(event: &Event) -> v1::FamilyEvent {
    let e = match event.clone() {
        Event::FamilyRegistered {
            family_id,
            family_type,
            urgency,
            occurred_on,
        } => P::FamilyRegistered(v1::FamilyRegistered {
            family_id: family_id.into(),
            family_type: v1::FamilyType::from(family_type).into(),
            urgency: v1::Urgency::from(urgency).into(),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::FamilyTypeChanged {
            family_type,
            urgency,
            reason,
            occurred_on,
        } => P::FamilyTypeChanged(v1::FamilyTypeChanged {
            family_type: v1::FamilyType::from(family_type).into(),
            urgency: v1::Urgency::from(urgency).into(),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::MemberAdded {
            member_id,
            role,
            birth_year,
            flags,
            occurred_on,
        } => P::MemberAdded(v1::MemberAdded {
            member_id: member_id.into(),
            role: v1::MemberRole::from(role).into(),
            birth_year,
            flags: Some(v1::MemberFlags {
                intellectual_disability: flags.intellectual_disability,
            }),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::MemberLeft {
            member_id,
            reason,
            occurred_on,
        } => P::MemberLeft(v1::MemberLeft {
            member_id: member_id.into(),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::PartnerJoined {
            partner_id,
            partner_kind,
            display_name,
            occurred_on,
        } => P::PartnerJoined(v1::PartnerJoined {
            partner_id: partner_id.into(),
            partner_kind: v1::PartnerKind::from(partner_kind).into(),
            display_name,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::PartnerLeft {
            partner_id,
            reason,
            occurred_on,
        } => P::PartnerLeft(v1::PartnerLeft {
            partner_id: partner_id.into(),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::MatchSettled {
            lead_partner_id,
            contacted_on,
            occurred_on,
        } => P::MatchSettled(v1::MatchSettled {
            lead_partner_id: lead_partner_id.into(),
            contacted_on: Some(date(contacted_on)),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::FamilyManagerAssigned {
            manager,
            partner_id,
            reason,
            occurred_on,
        } => P::FamilyManagerAssigned(v1::FamilyManagerAssigned {
            manager: manager.into(),
            partner_id: partner_id.into(),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::LeadPartnerSet {
            partner_id,
            reason,
            occurred_on,
        } => P::LeadPartnerSet(v1::LeadPartnerSet {
            partner_id: partner_id.into(),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::PlanAgreed {
            agreed_on,
            review_moments,
            occurred_on,
        } => P::PlanAgreed(v1::PlanAgreed {
            agreed_on: Some(date(agreed_on)),
            review_moments: review_moments.into_iter().map(date).collect(),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::PlanExtended {
            new_horizon,
            reason,
            occurred_on,
        } => P::PlanExtended(v1::PlanExtended {
            new_horizon: Some(date(new_horizon)),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::GoalSet {
            goal_id,
            life_domain,
            description,
            target_date,
            occurred_on,
        } => P::GoalSet(v1::GoalSet {
            goal_id: goal_id.into(),
            life_domain: v1::LifeDomain::from(life_domain).into(),
            description,
            target_date: target_date.map(date),
            occurred_on: Some(date(occurred_on)),
        }),
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
        } => P::ActionCommitted(v1::ActionCommitted {
            action_id: action_id.into(),
            goal_id: goal_id.into(),
            partner_id: partner_id.into(),
            member_ids: member_ids.into_iter().map(String::from).collect(),
            intervention: intervention.map(|i| v1::InterventionCode::from(i).into()),
            description,
            start_on: Some(date(start_on)),
            expected_end: Some(date(expected_end)),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::ActionStarted {
            action_id,
            occurred_on,
        } => P::ActionStarted(v1::ActionStarted {
            action_id: action_id.into(),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::ActionDelivered {
            action_id,
            occurred_on,
        } => P::ActionDelivered(v1::ActionDelivered {
            action_id: action_id.into(),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::ActionNotDelivered {
            action_id,
            reason,
            occurred_on,
        } => P::ActionNotDelivered(v1::ActionNotDelivered {
            action_id: action_id.into(),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::ActionDeadlineExtended {
            action_id,
            new_expected_end,
            reason,
            occurred_on,
        } => P::ActionDeadlineExtended(v1::ActionDeadlineExtended {
            action_id: action_id.into(),
            new_expected_end: Some(date(new_expected_end)),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::GoalAchieved {
            goal_id,
            occurred_on,
        } => P::GoalAchieved(v1::GoalAchieved {
            goal_id: goal_id.into(),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::GoalAbandoned {
            goal_id,
            reason,
            occurred_on,
        } => P::GoalAbandoned(v1::GoalAbandoned {
            goal_id: goal_id.into(),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::ReviewHeld {
            zrm,
            next_review,
            occurred_on,
        } => P::ReviewHeld(v1::ReviewHeld {
            zrm: zrm.iter().map(zrm_to_proto).collect(),
            next_review: next_review.map(date),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::CooperationRefused {
            reason,
            occurred_on,
        } => P::CooperationRefused(v1::CooperationRefused {
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::PlanClosed {
            reason,
            occurred_on,
        } => P::PlanClosed(v1::PlanClosed {
            reason: v1::ClosureReason::from(reason).into(),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::MonitoringStarted {
            until,
            visit_interval_days,
            occurred_on,
        } => P::MonitoringStarted(v1::MonitoringStarted {
            until: Some(date(until)),
            visit_interval_days: u32::from(visit_interval_days),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::MonitoringVisitRecorded { occurred_on } => {
            P::MonitoringVisitRecorded(v1::MonitoringVisitRecorded {
                occurred_on: Some(date(occurred_on)),
            })
        }
        Event::HomeVisitRecorded { occurred_on } => P::HomeVisitRecorded(v1::HomeVisitRecorded {
            occurred_on: Some(date(occurred_on)),
        }),
        Event::EscalationRaised {
            to,
            by,
            reason,
            legal_basis,
            occurred_on,
        } => P::EscalationRaised(v1::EscalationRaised {
            to: v1::Rung::from(to).into(),
            by: by.into(),
            reason,
            legal_basis,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::EscalationLowered {
            to,
            by,
            reason,
            legal_basis,
            occurred_on,
        } => P::EscalationLowered(v1::EscalationLowered {
            to: v1::Rung::from(to).into(),
            by: by.into(),
            reason,
            legal_basis,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::ChainEscalationRaised {
            action_id,
            partner_id,
            level,
            reason,
            occurred_on,
        } => P::ChainEscalationRaised(v1::ChainEscalationRaised {
            action_id: action_id.into(),
            partner_id: partner_id.into(),
            level: v1::ChainLevel::from(level).into(),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::ChainEscalationResolved {
            action_id,
            resolution,
            occurred_on,
        } => P::ChainEscalationResolved(v1::ChainEscalationResolved {
            action_id: action_id.into(),
            resolution,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::FamilyInformed { occurred_on } => P::FamilyInformed(v1::FamilyInformed {
            occurred_on: Some(date(occurred_on)),
        }),
        Event::InformingDeferred {
            reason,
            until,
            occurred_on,
        } => P::InformingDeferred(v1::InformingDeferred {
            reason,
            until: Some(date(until)),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::PoliceContactRecorded {
            member_id,
            occurred_on,
        } => P::PoliceContactRecorded(v1::PoliceContactRecorded {
            member_id: member_id.map(String::from),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::NuisanceReported {
            description,
            occurred_on,
        } => P::NuisanceReported(v1::NuisanceReported {
            description,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::ErasureRequested {
            requester,
            occurred_on,
        } => P::ErasureRequested(v1::ErasureRequested {
            requester: requester.into(),
            occurred_on: Some(date(occurred_on)),
        }),
        Event::LegalHoldPlaced {
            hold_id,
            ground,
            reason,
            occurred_on,
        } => P::LegalHoldPlaced(v1::LegalHoldPlaced {
            hold_id: hold_id.into(),
            ground: v1::LegalGround::from(ground).into(),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::LegalHoldLifted {
            hold_id,
            reason,
            occurred_on,
        } => P::LegalHoldLifted(v1::LegalHoldLifted {
            hold_id: hold_id.into(),
            reason,
            occurred_on: Some(date(occurred_on)),
        }),
        Event::FamilyErased {
            ground,
            notified,
            occurred_on,
        } => P::FamilyErased(v1::FamilyErased {
            ground: Some(erasure_ground_to_proto(&ground)),
            occurred_on: Some(date(occurred_on)),
            notified: notified.into_iter().map(|p| p.to_string()).collect(),
        }),
    };
    v1::FamilyEvent { event: Some(e) }
}
