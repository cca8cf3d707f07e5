//! The projection: each warning kind is raised when it should and not otherwise, the
//! escalation proposal, the lead, reviews, ZRM change and outcome figures.

mod support;

use keten_domain::catalogue::InterventionCode;
use keten_domain::plan::{LeadBasis, Phase, ProposalReason, Share, Transparency, Warning};
use keten_domain::zrm::{Zrm2017Domain, ZrmAssessment, ZrmScore, ZrmScores, ZrmVersion};
use keten_domain::*;
use support::*;

use WarningKind as K;

fn plan_at(events: Vec<Event>, now: &str) -> Plan {
    coordinated_plan(&fold(&events), d(now))
}

fn of_kind(plan: &Plan, kind: WarningKind) -> Vec<&Warning> {
    plan.warnings.iter().filter(|w| w.kind == kind).collect()
}

fn informed() -> Event {
    Event::FamilyInformed {
        occurred_on: d("2026-01-20"),
    }
}

#[test]
fn no_family_manager_is_warned_from_registration_until_one_is_assigned() {
    let mut events = base_family();
    let assigned = events.pop().unwrap();
    let p = plan_at(events.clone(), "2026-01-10");
    let w = of_kind(&p, K::NoFamilyManager);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].since, d("2026-01-05"));
    assert!(
        of_kind(
            &plan_at(plus(events, [assigned]), "2026-01-20"),
            K::NoFamilyManager
        )
        .is_empty()
    );
}

#[test]
fn family_not_informed_unless_informed_or_deferred() {
    let p = plan_at(base_family(), "2026-01-10");
    assert_eq!(of_kind(&p, K::FamilyNotInformed)[0].since, d("2026-01-05"));
    assert_eq!(p.transparency, Some(Transparency::NotInformed));

    let p = plan_at(plus(base_family(), [informed()]), "2026-01-21");
    assert!(of_kind(&p, K::FamilyNotInformed).is_empty());
    assert_eq!(
        p.transparency,
        Some(Transparency::Informed {
            on: d("2026-01-20")
        })
    );

    let deferred = plus(
        base_family(),
        [Event::InformingDeferred {
            reason: "safety".into(),
            until: d("2026-04-01"),
            occurred_on: d("2026-01-25"),
        }],
    );
    let p = plan_at(deferred.clone(), "2026-03-01");
    assert!(of_kind(&p, K::FamilyNotInformed).is_empty());
    assert!(
        matches!(p.transparency, Some(Transparency::Deferred { until, .. }) if until == d("2026-04-01"))
    );
    // When the deferral runs out, the warning returns, dated from its end.
    let p = plan_at(deferred, "2026-04-02");
    assert_eq!(of_kind(&p, K::FamilyNotInformed)[0].since, d("2026-04-01"));
}

#[test]
fn match_signal_opens_on_a_second_partner_and_closes_on_settlement() {
    let one = vec![
        registered(FamilyType::OrdeOpZaken, "2026-01-05"),
        joined("yc", PartnerKind::YouthCare, "2026-01-06"),
    ];
    assert!(of_kind(&plan_at(one.clone(), "2026-01-07"), K::MatchNotSettled).is_empty());

    let two = plus(one, [joined("pol", PartnerKind::Police, "2026-01-07")]);
    let p = plan_at(two.clone(), "2026-01-08");
    let w = of_kind(&p, K::MatchNotSettled);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].since, d("2026-01-07"));
    assert_eq!(w[0].due, Some(d("2026-01-21")));
    assert_eq!(
        p.open_match.as_ref().unwrap().partner_ids,
        vec![pid("pol"), pid("yc")]
    );

    let settled = plus(
        two,
        [Event::MatchSettled {
            lead_partner_id: pid("yc"),
            contacted_on: d("2026-01-09"),
            occurred_on: d("2026-01-10"),
        }],
    );
    let p = plan_at(settled.clone(), "2026-01-11");
    assert!(of_kind(&p, K::MatchNotSettled).is_empty());
    assert_eq!(p.lead.as_ref().unwrap().basis, LeadBasis::MatchSettlement);

    // A third partner joining later raises a new signal.
    let p = plan_at(
        plus(
            settled,
            [joined("hous", PartnerKind::Housing, "2026-01-15")],
        ),
        "2026-01-16",
    );
    assert_eq!(of_kind(&p, K::MatchNotSettled)[0].since, d("2026-01-15"));
}

#[test]
fn plan_past_its_ten_months_unless_extended() {
    let p = plan_at(with_plan(), "2026-12-01");
    assert_eq!(p.horizon, Some(d("2026-12-01")));
    assert!(of_kind(&p, K::PlanPastHorizon).is_empty());
    let p = plan_at(with_plan(), "2026-12-02");
    assert_eq!(of_kind(&p, K::PlanPastHorizon)[0].since, d("2026-12-01"));

    let extended = plus(
        with_plan(),
        [Event::PlanExtended {
            new_horizon: d("2027-03-01"),
            reason: "housing".into(),
            occurred_on: d("2026-11-01"),
        }],
    );
    let p = plan_at(extended, "2026-12-02");
    assert!(p.extended);
    assert_eq!(p.horizon, Some(d("2027-03-01")));
    assert!(of_kind(&p, K::PlanPastHorizon).is_empty());
}

#[test]
fn review_overdue_after_a_review_moment_passes_without_review() {
    let p = plan_at(with_plan(), "2026-05-01");
    assert_eq!(p.next_review, Some(d("2026-05-01")));
    assert!(of_kind(&p, K::ReviewOverdue).is_empty());
    let p = plan_at(with_plan(), "2026-05-02");
    assert_eq!(of_kind(&p, K::ReviewOverdue)[0].since, d("2026-05-01"));

    let reviewed = plus(
        with_plan(),
        [Event::ReviewHeld {
            zrm: vec![],
            next_review: Some(d("2026-08-01")),
            occurred_on: d("2026-05-02"),
        }],
    );
    let p = plan_at(reviewed, "2026-05-03");
    assert!(of_kind(&p, K::ReviewOverdue).is_empty());
    assert_eq!(p.next_review, Some(d("2026-08-01")));
}

#[test]
fn member_without_help_names_each_member_with_no_open_action() {
    let p = plan_at(with_plan(), "2026-03-01");
    let members: Vec<_> = of_kind(&p, K::MemberWithoutHelp)
        .iter()
        .map(|w| (w.member_id.clone().unwrap(), w.since))
        .collect();
    assert_eq!(
        members,
        vec![(mid("c1"), d("2026-02-01")), (mid("c2"), d("2026-02-01"))]
    );

    // When p1's only action is delivered, p1 is without help from that day.
    let p = plan_at(
        plus(with_plan(), [delivered("a1", "2026-02-20")]),
        "2026-03-01",
    );
    let p1 = of_kind(&p, K::MemberWithoutHelp)
        .into_iter()
        .find(|w| w.member_id == Some(mid("p1")))
        .expect("p1 warned");
    assert_eq!(p1.since, d("2026-02-20"));
    // Before a plan there are no such warnings: there is nothing to be in yet.
    assert!(of_kind(&plan_at(base_family(), "2026-01-20"), K::MemberWithoutHelp).is_empty());
}

#[test]
fn goal_without_actions_counts_only_actions_still_working_on_it() {
    let events = plus(with_plan(), [goal("g2", LifeDomain::Housing, None)]);
    let p = plan_at(events.clone(), "2026-03-01");
    let goals: Vec<_> = of_kind(&p, K::GoalWithoutActions)
        .iter()
        .map(|w| w.goal_id.clone())
        .collect();
    assert_eq!(goals, vec![Some(gid("g2"))]);

    let p = plan_at(
        plus(events, [not_delivered("a1", "2026-02-20")]),
        "2026-03-01",
    );
    assert_eq!(of_kind(&p, K::GoalWithoutActions).len(), 2);
}

#[test]
fn action_overdue_after_its_expected_end_until_reported() {
    assert!(of_kind(&plan_at(with_plan(), "2026-04-01"), K::ActionOverdue).is_empty());
    let p = plan_at(with_plan(), "2026-04-02");
    let w = of_kind(&p, K::ActionOverdue);
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].action_id.clone(), w[0].partner_id.clone(), w[0].since),
        (Some(aid("a1")), Some(pid("hous")), d("2026-04-01"))
    );
    let p = plan_at(
        plus(with_plan(), [delivered("a1", "2026-03-30")]),
        "2026-04-02",
    );
    assert!(of_kind(&p, K::ActionOverdue).is_empty());
}

#[test]
fn action_past_its_interventions_maximum_even_when_extended() {
    let iog = action_with(
        "a2",
        "g1",
        "yc",
        &["c1"],
        Some(InterventionCode::Iog),
        "2026-03-01",
        "2026-09-01",
    );
    let events = plus(with_plan(), [iog]);
    assert!(
        of_kind(
            &plan_at(events.clone(), "2026-09-01"),
            K::ActionPastInterventionMaximum
        )
        .is_empty()
    );
    let p = plan_at(events.clone(), "2026-09-02");
    assert_eq!(
        of_kind(&p, K::ActionPastInterventionMaximum)[0].since,
        d("2026-09-01")
    );

    let extended = plus(
        events,
        [Event::ActionDeadlineExtended {
            action_id: aid("a2"),
            new_expected_end: d("2026-10-15"),
            reason: "waiting list".into(),
            occurred_on: d("2026-08-20"),
        }],
    );
    let p = plan_at(extended, "2026-09-02");
    assert!(
        of_kind(&p, K::ActionOverdue)
            .iter()
            .all(|w| w.action_id != Some(aid("a2")))
    );
    assert_eq!(of_kind(&p, K::ActionPastInterventionMaximum).len(), 1);
}

#[test]
fn intervention_not_eligible_is_a_warning_per_member_out_of_range() {
    // IOG is for ages 8 to 17: c1 (born 2014) fits, c2 (born 2020) does not.
    let events = plus(
        with_plan(),
        [action_with(
            "a2",
            "g1",
            "yc",
            &["c1", "c2"],
            Some(InterventionCode::Iog),
            "2026-03-01",
            "2026-06-01",
        )],
    );
    let p = plan_at(events, "2026-03-01");
    let w = of_kind(&p, K::InterventionNotEligible);
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].member_id.clone(), w[0].action_id.clone()),
        (Some(mid("c2")), Some(aid("a2")))
    );

    // An age-bound intervention for a parent only: warned on the action.
    let events = plus(
        with_plan(),
        [action_with(
            "a2",
            "g1",
            "yc",
            &["p1"],
            Some(InterventionCode::Wig),
            "2026-03-01",
            "2026-06-01",
        )],
    );
    let w = plan_at(events, "2026-03-01").warnings;
    let w: Vec<_> = w
        .iter()
        .filter(|w| w.kind == K::InterventionNotEligible)
        .collect();
    assert_eq!(
        (w.len(), w[0].member_id.clone(), w[0].action_id.clone()),
        (1, None, Some(aid("a2")))
    );

    // A family-wide intervention is never age-bound.
    let events = plus(
        with_plan(),
        [action_with(
            "a2",
            "g1",
            "yc",
            &["p1"],
            Some(InterventionCode::Iag),
            "2026-03-01",
            "2026-08-01",
        )],
    );
    assert!(of_kind(&plan_at(events, "2026-03-01"), K::InterventionNotEligible).is_empty());
}

#[test]
fn monitoring_visit_due_after_the_interval() {
    let events = plus(
        with_plan(),
        [
            delivered("a1", "2026-02-20"),
            Event::PlanClosed {
                reason: ClosureReason::GoalsAchieved,
                occurred_on: d("2026-02-26"),
            },
            Event::MonitoringStarted {
                until: d("2026-08-27"),
                visit_interval_days: 30,
                occurred_on: d("2026-02-27"),
            },
        ],
    );
    let p = plan_at(events.clone(), "2026-03-28");
    assert_eq!(p.phase, Phase::Monitoring);
    assert!(of_kind(&p, K::MonitoringVisitDue).is_empty());
    let p = plan_at(events.clone(), "2026-03-29");
    assert_eq!(of_kind(&p, K::MonitoringVisitDue)[0].since, d("2026-03-29"));
    let visited = plus(
        events.clone(),
        [Event::MonitoringVisitRecorded {
            occurred_on: d("2026-03-29"),
        }],
    );
    assert!(of_kind(&plan_at(visited, "2026-04-10"), K::MonitoringVisitDue).is_empty());
    // After monitoring ends nothing is due.
    let p = plan_at(events, "2026-09-01");
    assert_eq!(p.phase, Phase::Finished);
    assert!(of_kind(&p, K::MonitoringVisitDue).is_empty());
}

#[test]
fn escalation_is_proposed_on_broken_agreements_and_never_raised_by_the_projection() {
    let p = plan_at(with_plan(), "2026-03-01");
    assert!(p.escalation.as_ref().unwrap().proposal.is_none());

    let events = plus(with_plan(), [not_delivered("a1", "2026-02-20")]);
    let state = fold(&events);
    let p = coordinated_plan(&state, d("2026-03-01"));
    let proposal = p.escalation.clone().unwrap().proposal.expect("a proposal");
    assert_eq!(proposal.to, Rung::Pressure);
    assert_eq!(
        proposal.reasons,
        vec![ProposalReason::ActionNotDelivered {
            action_id: aid("a1"),
            on: d("2026-02-20")
        }]
    );
    assert_eq!(state.rung, Rung::Voluntary, "the projection does not raise");
    assert_eq!(p.escalation.as_ref().unwrap().rung, Rung::Voluntary);

    // Once the family manager decided, the same broken agreement proposes nothing more...
    let events = plus(events, [raised(Rung::Pressure, "fm-anna", "2026-02-21")]);
    assert!(
        plan_at(events.clone(), "2026-03-01")
            .escalation
            .unwrap()
            .proposal
            .is_none()
    );
    // ...but a refusal afterwards, or a goal that runs past its target, does.
    let refused = plus(
        events.clone(),
        [Event::CooperationRefused {
            reason: "door not opened".into(),
            occurred_on: d("2026-02-25"),
        }],
    );
    let p = plan_at(refused, "2026-03-01");
    let proposal = p.escalation.clone().unwrap().proposal.unwrap();
    assert_eq!(proposal.to, Rung::Coercion);
    assert_eq!(
        proposal.reasons,
        vec![ProposalReason::FamilyRefused {
            on: d("2026-02-25")
        }]
    );
    let p = plan_at(events, "2026-06-02");
    assert_eq!(
        p.escalation.clone().unwrap().proposal.unwrap().reasons,
        vec![ProposalReason::GoalOverdue {
            goal_id: gid("g1"),
            target_date: d("2026-06-01")
        }]
    );
}

#[test]
fn lead_follows_direct_help_then_family_manager() {
    let p = plan_at(base_family(), "2026-02-01");
    let lead = p.lead.unwrap();
    assert_eq!(
        (lead.partner_id, lead.basis),
        (pid("yc"), LeadBasis::FamilyManager)
    );

    let direct = plus(
        base_family_of(FamilyType::DirectHelp),
        [Event::LeadPartnerSet {
            partner_id: pid("pol"),
            reason: "acute safety".into(),
            occurred_on: d("2026-01-20"),
        }],
    );
    let lead = plan_at(direct, "2026-02-01").lead.unwrap();
    assert_eq!(
        (lead.partner_id, lead.basis),
        (pid("pol"), LeadBasis::DirectHelpUrgency)
    );
}

#[test]
fn plan_groups_goals_per_domain_and_actions_per_partner() {
    let events = plus(
        with_plan(),
        [
            goal("g2", LifeDomain::Finances, None),
            action("a2", "g2", "yc", &["c1"], "2026-03-01", "2026-05-01"),
            action("a3", "g1", "yc", &["c2"], "2026-03-01", "2026-05-01"),
        ],
    );
    let p = plan_at(events, "2026-03-01");
    assert_eq!(
        p.goals.keys().copied().collect::<Vec<_>>(),
        vec![LifeDomain::Parenting, LifeDomain::Finances]
    );
    assert_eq!(
        p.goals[&LifeDomain::Parenting][0].action_ids,
        vec![aid("a1"), aid("a3")]
    );
    assert_eq!(
        p.actions.keys().cloned().collect::<Vec<_>>(),
        vec![pid("hous"), pid("yc")]
    );
    assert_eq!(p.actions[&pid("yc")].len(), 2);
    assert_eq!(p.strategy, Some(FamilyType::OrdeOpZaken.strategy()));
    assert_eq!(p.phase, Phase::PlanActive);
}

fn zrm_review(on: &str, finances: u8, housing: u8) -> Event {
    Event::ReviewHeld {
        zrm: vec![ZrmAssessment {
            member_id: mid("p1"),
            matrix: ZrmScores::V2017 {
                scores: [
                    (Zrm2017Domain::Finances, ZrmScore::new(finances).unwrap()),
                    (Zrm2017Domain::Housing, ZrmScore::new(housing).unwrap()),
                ]
                .into(),
            },
        }],
        next_review: None,
        occurred_on: d(on),
    }
}

#[test]
fn zrm_shows_change_since_intake_per_member_and_domain() {
    let events = plus(
        with_plan(),
        [
            zrm_review("2026-02-02", 1, 3),
            zrm_review("2026-05-01", 3, 3),
        ],
    );
    let p = plan_at(events, "2026-05-02");
    let lines: Vec<_> = p
        .zrm
        .iter()
        .map(|l| (l.domain, l.intake, l.latest, l.change, l.version))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("finances", 1, 3, 2, ZrmVersion::V2017),
            ("housing", 3, 3, 0, ZrmVersion::V2017)
        ]
    );
    assert_eq!(p.zrm[0].intake_on, d("2026-02-02"));
}

#[test]
fn zrm_lines_keep_every_reviews_score_in_order() {
    let events = plus(
        with_plan(),
        [
            zrm_review("2026-02-02", 1, 3),
            zrm_review("2026-03-15", 2, 3),
            zrm_review("2026-05-01", 4, 2),
        ],
    );
    let p = plan_at(events, "2026-05-02");
    let course = |domain: &str| {
        let line = p.zrm.iter().find(|l| l.domain == domain).expect("a line");
        line.scores
            .iter()
            .map(|s| (s.on, s.score))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        course("finances"),
        vec![
            (d("2026-02-02"), 1),
            (d("2026-03-15"), 2),
            (d("2026-05-01"), 4)
        ]
    );
    assert_eq!(
        course("housing"),
        vec![
            (d("2026-02-02"), 3),
            (d("2026-03-15"), 3),
            (d("2026-05-01"), 2)
        ]
    );
    let housing = p.zrm.iter().find(|l| l.domain == "housing").unwrap();
    assert_eq!((housing.intake, housing.latest, housing.change), (3, 2, -1));
}

#[test]
fn outcomes_count_police_contacts_goals_and_on_time_delivery() {
    let contact = |on: &str| Event::PoliceContactRecorded {
        member_id: None,
        occurred_on: d(on),
    };
    let events = plus(
        with_plan(),
        [
            contact("2025-07-31"), // more than six months before 2026-02-01
            contact("2025-08-01"),
            contact("2026-01-20"),
            contact("2026-02-01"),
            contact("2026-07-31"),
            contact("2026-08-01"), // six months after: outside
            action("a2", "g1", "yc", &["c1"], "2026-03-01", "2026-05-01"),
            delivered("a1", "2026-03-15"),
            delivered("a2", "2026-05-02"),
            goal("g2", LifeDomain::Housing, None),
            Event::GoalAchieved {
                goal_id: gid("g1"),
                occurred_on: d("2026-06-01"),
            },
            raised(Rung::Pressure, "fm-anna", "2026-04-01"),
            lowered(Rung::Voluntary, "fm-anna", "2026-05-01"),
        ],
    );
    let o = plan_at(events.clone(), "2026-08-01").outcomes;
    assert_eq!(o.police_contacts_before, Some(2));
    assert_eq!(o.police_contacts_after, Some(2));
    assert!(o.after_window_complete);
    assert_eq!(o.goals_achieved, Share { count: 1, of: 2 });
    assert_eq!(o.actions_on_time[&pid("hous")], Share { count: 1, of: 1 });
    assert_eq!(o.actions_on_time[&pid("yc")], Share { count: 0, of: 1 });
    assert_eq!((o.escalations, o.de_escalations), (Some(1), Some(1)));
    assert!(!plan_at(events, "2026-07-31").outcomes.after_window_complete);
}

#[test]
fn warnings_are_sorted_and_the_plan_serializes() {
    let p = plan_at(
        plus(with_plan(), [goal("g2", LifeDomain::Housing, None)]),
        "2026-12-02",
    );
    let mut sorted = p.warnings.clone();
    sorted.sort();
    assert_eq!(sorted, p.warnings);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["phase"], "plan_active");
    assert!(
        json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["kind"] == "plan_past_horizon")
    );
}

#[test]
fn family_manager_not_from_wsg_when_a_flagged_member_arrives_later() {
    let late = plus(
        base_family(),
        [Event::MemberAdded {
            member_id: mid("p2"),
            role: MemberRole::Parent,
            birth_year: 1990,
            flags: MemberFlags {
                intellectual_disability: true,
            },
            occurred_on: d("2026-02-03"),
        }],
    );
    let p = plan_at(late.clone(), "2026-02-04");
    let w = of_kind(&p, K::FamilyManagerNotFromWsg);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].since, d("2026-02-03"));
    assert!(
        of_kind(
            &plan_at(base_family(), "2026-02-04"),
            K::FamilyManagerNotFromWsg
        )
        .is_empty()
    );

    // Reassigning to WSG clears it; so does a recorded reason.
    let to_wsg = plus(
        late.clone(),
        [
            joined("wsg", PartnerKind::Wsg, "2026-02-05"),
            fm_assigned("fm-wim", "wsg", None),
        ],
    );
    assert!(of_kind(&plan_at(to_wsg, "2026-02-06"), K::FamilyManagerNotFromWsg).is_empty());
    let with_reason = plus(
        late,
        [fm_assigned(
            "fm-anna",
            "yc",
            Some("WSG agreed youth care stays"),
        )],
    );
    assert!(
        of_kind(
            &plan_at(with_reason, "2026-02-06"),
            K::FamilyManagerNotFromWsg
        )
        .is_empty()
    );
}
