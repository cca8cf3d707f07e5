//! One family through all of OMPG, every event published by the actor who would publish it
//! and passed through `handle` (validate, then apply), with the plan and its warnings checked
//! at the moments a coordinator would look.

mod support;

use chrono::NaiveDate;
use keten_domain::catalogue::InterventionCode;
use keten_domain::plan::{LeadBasis, Phase, ProposalReason, Share, Transparency};
use keten_domain::state::{ActionStatus, FamilyState};
use keten_domain::zrm::{Zrm2017Domain, ZrmAssessment, ZrmScore, ZrmScores};
use keten_domain::*;
use support::*;

use WarningKind as K;

struct Family {
    state: FamilyState,
}

impl Family {
    #[track_caller]
    fn on(&mut self, date: &str, by: &Actor, event: Event) {
        if let Err(r) = handle(&mut self.state, &event, by, d(date)) {
            panic!(
                "{date}: {} by {} rejected: {r}",
                event.type_name(),
                by.person
            );
        }
    }

    #[track_caller]
    fn refused(&mut self, date: &str, by: &Actor, event: Event, rule: RuleCode) {
        let before = self.state.clone();
        let r = handle(&mut self.state, &event, by, d(date)).expect_err("must be refused");
        assert_eq!(r.rule, rule, "{r}");
        assert_eq!(self.state, before);
    }

    fn plan(&self, date: &str) -> Plan {
        coordinated_plan(&self.state, d(date))
    }
}

fn kinds(plan: &Plan) -> Vec<(WarningKind, Option<String>)> {
    plan.warnings
        .iter()
        .map(|w| {
            let about = w
                .member_id
                .as_ref()
                .map(|m| m.to_string())
                .or(w.goal_id.as_ref().map(|g| g.to_string()))
                .or(w.action_id.as_ref().map(|a| a.to_string()));
            (w.kind, about)
        })
        .collect()
}

fn zrm(member: &str, finances: u8, housing: u8, domestic: u8) -> ZrmAssessment {
    let s = |n| ZrmScore::new(n).unwrap();
    ZrmAssessment {
        member_id: mid(member),
        matrix: ZrmScores::V2017 {
            scores: [
                (Zrm2017Domain::Finances, s(finances)),
                (Zrm2017Domain::Housing, s(housing)),
                (Zrm2017Domain::DomesticRelations, s(domestic)),
            ]
            .into(),
        },
    }
}

fn on(date: &str) -> NaiveDate {
    d(date)
}

#[test]
fn one_family_through_all_of_ompg() {
    let mut f = Family {
        state: FamilyState::default(),
    };
    let coord = coordinator();
    let anna = fm();
    let yc = youth_care();
    let pol = police();
    let hous = housing();

    // --- registration ---
    f.on(
        "2026-01-05",
        &coord,
        Event::FamilyRegistered {
            family_id: fam(),
            family_type: FamilyType::StutEnSteun,
            urgency: Urgency::Urgent,
            occurred_on: on("2026-01-05"),
        },
    );
    for (id, role, year) in [
        ("p1", MemberRole::Parent, 1984),
        ("p2", MemberRole::Parent, 1982),
        ("c1", MemberRole::Child, 2012),
        ("c2", MemberRole::Child, 2017),
    ] {
        f.on(
            "2026-01-05",
            &coord,
            Event::MemberAdded {
                member_id: mid(id),
                role,
                birth_year: year,
                flags: MemberFlags::default(),
                occurred_on: on("2026-01-05"),
            },
        );
    }

    // --- three partners join; the second raises the match ---
    f.on(
        "2026-01-06",
        &yc,
        joined("yc", PartnerKind::YouthCare, "2026-01-06"),
    );
    let p = f.plan("2026-01-06");
    assert_eq!(p.phase, Phase::Intake);
    assert_eq!(p.strategy, Some(FamilyType::StutEnSteun.strategy()));
    assert_eq!(
        kinds(&p),
        vec![(K::NoFamilyManager, None), (K::FamilyNotInformed, None)]
    );
    assert!(p.open_match.is_none());

    f.on(
        "2026-01-08",
        &pol,
        joined("pol", PartnerKind::Police, "2026-01-08"),
    );
    // The police bring the contacts of the months before: they may predate registration.
    for date in ["2025-09-15", "2025-11-02", "2026-01-03"] {
        f.on(
            "2026-01-08",
            &pol,
            Event::PoliceContactRecorded {
                member_id: Some(mid("c1")),
                occurred_on: on(date),
            },
        );
    }
    f.on(
        "2026-01-09",
        &hous,
        joined("hous", PartnerKind::Housing, "2026-01-09"),
    );
    let p = f.plan("2026-01-10");
    assert_eq!(p.partners.len(), 3);
    let m = p.open_match.as_ref().expect("match raised");
    assert_eq!(
        (m.raised_on, m.deadline),
        (on("2026-01-08"), on("2026-01-22"))
    );
    assert_eq!(
        kinds(&p),
        vec![
            (K::NoFamilyManager, None),
            (K::FamilyNotInformed, None),
            (K::MatchNotSettled, None)
        ]
    );

    // --- match settled, family manager, family informed ---
    f.on(
        "2026-01-12",
        &pol,
        Event::MatchSettled {
            lead_partner_id: pid("yc"),
            contacted_on: on("2026-01-11"),
            occurred_on: on("2026-01-12"),
        },
    );
    // The police cannot assign the family manager; youth care can.
    let assign = Event::FamilyManagerAssigned {
        manager: person("fm-anna"),
        partner_id: pid("yc"),
        reason: None,
        occurred_on: on("2026-01-13"),
    };
    f.refused(
        "2026-01-13",
        &pol,
        assign.clone(),
        RuleCode::ActorMayNotAssignFamilyManager,
    );
    f.on("2026-01-13", &yc, assign);
    f.on(
        "2026-01-14",
        &anna,
        Event::HomeVisitRecorded {
            occurred_on: on("2026-01-14"),
        },
    );
    f.on(
        "2026-01-15",
        &anna,
        Event::FamilyInformed {
            occurred_on: on("2026-01-15"),
        },
    );
    let p = f.plan("2026-01-16");
    assert!(p.warnings.is_empty(), "{:?}", kinds(&p));
    let lead = p.lead.clone().unwrap();
    assert_eq!(
        (lead.partner_id, lead.basis),
        (pid("yc"), LeadBasis::FamilyManager)
    );
    assert_eq!(
        p.transparency,
        Some(Transparency::Informed {
            on: on("2026-01-15")
        })
    );

    // --- the plan, its goals and an intake ZRM ---
    f.on(
        "2026-01-20",
        &anna,
        Event::PlanAgreed {
            agreed_on: on("2026-01-20"),
            review_moments: vec![on("2026-04-20"), on("2026-08-20")],
            occurred_on: on("2026-01-20"),
        },
    );
    for (g, domain, target) in [
        ("g-parenting", LifeDomain::Parenting, "2026-07-01"),
        ("g-housing", LifeDomain::Housing, "2026-06-01"),
        ("g-justice", LifeDomain::JusticeNuisance, "2026-10-01"),
    ] {
        f.on(
            "2026-01-20",
            &anna,
            Event::GoalSet {
                goal_id: gid(g),
                life_domain: domain,
                description: format!("{domain} in order"),
                target_date: Some(on(target)),
                occurred_on: on("2026-01-20"),
            },
        );
    }
    f.on(
        "2026-01-21",
        &anna,
        Event::ReviewHeld {
            zrm: vec![zrm("p1", 1, 2, 2), zrm("p2", 2, 2, 3)],
            next_review: None,
            occurred_on: on("2026-01-21"),
        },
    );
    let p = f.plan("2026-01-21");
    assert_eq!(p.phase, Phase::PlanActive);
    assert_eq!(p.horizon, Some(on("2026-11-20")));
    assert_eq!(p.next_review, Some(on("2026-04-20")));
    assert_eq!(
        kinds(&p),
        vec![
            (K::MemberWithoutHelp, Some("c1".into())),
            (K::MemberWithoutHelp, Some("c2".into())),
            (K::MemberWithoutHelp, Some("p1".into())),
            (K::MemberWithoutHelp, Some("p2".into())),
            (K::GoalWithoutActions, Some("g-housing".into())),
            (K::GoalWithoutActions, Some("g-justice".into())),
            (K::GoalWithoutActions, Some("g-parenting".into())),
        ]
    );

    // --- actions, each committed by its own partner ---
    let commit =
        |id: &str, goal: &str, partner: &str, members: &[&str], iv, start: &str, end: &str| {
            Event::ActionCommitted {
                action_id: aid(id),
                goal_id: gid(goal),
                partner_id: pid(partner),
                member_ids: members.iter().map(|m| mid(m)).collect(),
                intervention: iv,
                description: id.to_string(),
                start_on: on(start),
                expected_end: on(end),
                occurred_on: on("2026-01-22"),
            }
        };
    f.on(
        "2026-01-22",
        &yc,
        commit(
            "a-iag",
            "g-parenting",
            "yc",
            &["p1", "p2", "c1", "c2"],
            Some(InterventionCode::Iag),
            "2026-01-25",
            "2026-06-25",
        ),
    );
    f.on(
        "2026-01-22",
        &hous,
        commit(
            "a-house",
            "g-housing",
            "hous",
            &["p1"],
            None,
            "2026-01-25",
            "2026-03-31",
        ),
    );
    f.on(
        "2026-01-22",
        &anna,
        commit(
            "a-iog",
            "g-justice",
            "yc",
            &["c1"],
            Some(InterventionCode::Iog),
            "2026-02-01",
            "2026-07-31",
        ),
    );
    f.on(
        "2026-01-22",
        &pol,
        commit(
            "a-pol",
            "g-justice",
            "pol",
            &["c1"],
            None,
            "2026-02-01",
            "2026-05-01",
        ),
    );
    f.on(
        "2026-01-25",
        &yc,
        Event::ActionStarted {
            action_id: aid("a-iag"),
            occurred_on: on("2026-01-25"),
        },
    );
    f.on(
        "2026-01-26",
        &hous,
        Event::ActionStarted {
            action_id: aid("a-house"),
            occurred_on: on("2026-01-26"),
        },
    );
    f.on(
        "2026-02-01",
        &yc,
        Event::ActionStarted {
            action_id: aid("a-iog"),
            occurred_on: on("2026-02-01"),
        },
    );
    // Housing cannot report on youth care's action.
    f.refused(
        "2026-02-02",
        &hous,
        delivered("a-iog", "2026-02-02"),
        RuleCode::ActionByOtherPartner,
    );
    let p = f.plan("2026-02-02");
    assert!(p.warnings.is_empty(), "{:?}", kinds(&p));
    assert_eq!(p.actions[&pid("yc")].len(), 2);
    assert_eq!(p.actions[&pid("hous")][0].status, ActionStatus::Started);

    // --- one action not delivered; a proposal, not an escalation ---
    f.on(
        "2026-04-02",
        &hous,
        Event::ActionNotDelivered {
            action_id: aid("a-house"),
            reason: "no dwelling available".into(),
            occurred_on: on("2026-04-02"),
        },
    );
    let p = f.plan("2026-04-03");
    assert_eq!(p.escalation.as_ref().unwrap().rung, Rung::Voluntary);
    let proposal = p
        .escalation
        .as_ref()
        .unwrap()
        .proposal
        .clone()
        .expect("proposal");
    assert_eq!(proposal.to, Rung::Pressure);
    assert_eq!(
        proposal.reasons,
        vec![ProposalReason::ActionNotDelivered {
            action_id: aid("a-house"),
            on: on("2026-04-02")
        }]
    );
    assert_eq!(
        kinds(&p),
        vec![(K::GoalWithoutActions, Some("g-housing".into()))]
    );

    // --- chain escalation to housing, case then management, and its resolution ---
    f.on(
        "2026-04-03",
        &anna,
        chain_raised("a-house", "hous", ChainLevel::Case, "2026-04-03"),
    );
    f.refused(
        "2026-04-05",
        &anna,
        chain_raised("a-house", "hous", ChainLevel::Administrative, "2026-04-05"),
        RuleCode::ChainEscalationSkipsLevel,
    );
    f.on(
        "2026-04-10",
        &anna,
        chain_raised("a-house", "hous", ChainLevel::Management, "2026-04-10"),
    );
    let p = f.plan("2026-04-11");
    assert_eq!(p.open_chain_escalations.len(), 1);
    let c = &p.open_chain_escalations[0];
    assert_eq!(
        (c.level, c.raised_on, c.level_since),
        (ChainLevel::Management, on("2026-04-03"), on("2026-04-10"))
    );

    f.on(
        "2026-04-15",
        &hous,
        Event::ActionCommitted {
            action_id: aid("a-house2"),
            goal_id: gid("g-housing"),
            partner_id: pid("hous"),
            member_ids: vec![mid("p1"), mid("p2"), mid("c1"), mid("c2")],
            intervention: None,
            description: "urgent dwelling".into(),
            start_on: on("2026-04-15"),
            expected_end: on("2026-06-15"),
            occurred_on: on("2026-04-15"),
        },
    );
    f.on(
        "2026-04-16",
        &anna,
        Event::ChainEscalationResolved {
            action_id: aid("a-house"),
            resolution: "management allotted an urgent dwelling".into(),
            occurred_on: on("2026-04-16"),
        },
    );
    let p = f.plan("2026-04-17");
    assert!(p.open_chain_escalations.is_empty());
    assert!(!kinds(&p).contains(&(K::GoalWithoutActions, Some("g-housing".into()))));

    // --- the family refuses; escalation to drang and, later, back ---
    f.on(
        "2026-04-18",
        &anna,
        Event::CooperationRefused {
            reason: "appointments for IOG not kept".into(),
            occurred_on: on("2026-04-18"),
        },
    );
    f.on(
        "2026-04-20",
        &anna,
        Event::ReviewHeld {
            zrm: vec![zrm("p1", 2, 2, 3), zrm("p2", 2, 3, 3)],
            next_review: Some(on("2026-06-20")),
            occurred_on: on("2026-04-20"),
        },
    );
    let p = f.plan("2026-04-20");
    let reasons = p
        .escalation
        .as_ref()
        .unwrap()
        .proposal
        .clone()
        .unwrap()
        .reasons;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    f.refused(
        "2026-04-21",
        &anna,
        raised(Rung::Coercion, "fm-anna", "2026-04-21"),
        RuleCode::EscalationSkipsRung,
    );
    f.on(
        "2026-04-21",
        &anna,
        raised(Rung::Pressure, "fm-anna", "2026-04-21"),
    );
    let p = f.plan("2026-04-22");
    assert_eq!(p.escalation.as_ref().unwrap().rung, Rung::Pressure);
    assert_eq!(p.escalation.as_ref().unwrap().history.len(), 1);
    assert!(
        p.escalation.as_ref().unwrap().proposal.is_none(),
        "the decided agreements are not proposed again"
    );

    f.on("2026-04-30", &pol, delivered("a-pol", "2026-04-30"));
    f.on(
        "2026-05-15",
        &pol,
        Event::PoliceContactRecorded {
            member_id: Some(mid("c1")),
            occurred_on: on("2026-05-15"),
        },
    );
    f.on(
        "2026-06-01",
        &anna,
        lowered(Rung::Voluntary, "fm-anna", "2026-06-01"),
    );
    f.on("2026-06-10", &hous, delivered("a-house2", "2026-06-10"));
    f.on(
        "2026-06-12",
        &anna,
        Event::GoalAchieved {
            goal_id: gid("g-housing"),
            occurred_on: on("2026-06-12"),
        },
    );
    f.on("2026-06-20", &yc, delivered("a-iag", "2026-06-20"));
    f.on(
        "2026-06-20",
        &anna,
        Event::ReviewHeld {
            zrm: vec![],
            next_review: None,
            occurred_on: on("2026-06-20"),
        },
    );
    f.on(
        "2026-06-25",
        &anna,
        Event::GoalAchieved {
            goal_id: gid("g-parenting"),
            occurred_on: on("2026-06-25"),
        },
    );
    let p = f.plan("2026-06-26");
    assert_eq!(p.escalation.as_ref().unwrap().rung, Rung::Voluntary);
    assert_eq!(p.next_review, Some(on("2026-08-20")));
    // Only c1 still has help (IOG); the others are flagged.
    assert_eq!(
        kinds(&p),
        vec![
            (K::MemberWithoutHelp, Some("c2".into())),
            (K::MemberWithoutHelp, Some("p1".into())),
            (K::MemberWithoutHelp, Some("p2".into())),
        ]
    );

    f.on("2026-07-25", &yc, delivered("a-iog", "2026-07-25"));
    f.on(
        "2026-07-30",
        &anna,
        Event::GoalAchieved {
            goal_id: gid("g-justice"),
            occurred_on: on("2026-07-30"),
        },
    );

    // --- final review with ZRM, closure ---
    f.on(
        "2026-08-20",
        &anna,
        Event::ReviewHeld {
            zrm: vec![zrm("p1", 3, 4, 4), zrm("p2", 4, 4, 4)],
            next_review: None,
            occurred_on: on("2026-08-20"),
        },
    );
    f.on(
        "2026-08-25",
        &anna,
        Event::PlanClosed {
            reason: ClosureReason::GoalsAchieved,
            occurred_on: on("2026-08-25"),
        },
    );
    f.refused(
        "2026-08-25",
        &hous,
        Event::ActionCommitted {
            action_id: aid("a-late"),
            goal_id: gid("g-housing"),
            partner_id: pid("hous"),
            member_ids: vec![mid("p1")],
            intervention: None,
            description: "late".into(),
            start_on: on("2026-09-01"),
            expected_end: on("2026-10-01"),
            occurred_on: on("2026-08-25"),
        },
        RuleCode::PlanIsClosed,
    );

    let p = f.plan("2026-08-26");
    assert_eq!(p.phase, Phase::Closed);
    assert!(p.warnings.is_empty(), "{:?}", kinds(&p));
    let p1_finances = p
        .zrm
        .iter()
        .find(|l| l.member_id == mid("p1") && l.domain == "finances")
        .unwrap();
    assert_eq!(
        (p1_finances.intake, p1_finances.latest, p1_finances.change),
        (1, 3, 2)
    );
    assert!(p.zrm.iter().all(|l| l.change >= 0));
    let o = &p.outcomes;
    assert_eq!(
        (o.police_contacts_before, o.police_contacts_after),
        (Some(3), Some(1))
    );
    assert!(o.after_window_complete);
    assert_eq!(o.goals_achieved, Share { count: 3, of: 3 });
    assert_eq!(o.actions_on_time[&pid("yc")], Share { count: 2, of: 2 });
    assert_eq!(o.actions_on_time[&pid("hous")], Share { count: 1, of: 2 });
    assert_eq!(o.actions_on_time[&pid("pol")], Share { count: 1, of: 1 });
    assert_eq!(
        (o.escalations, o.de_escalations, o.chain_escalations),
        (Some(1), Some(1), Some(1))
    );

    // --- monitoring (refresh) by the same family manager ---
    f.refused(
        "2026-08-26",
        &coord,
        Event::MonitoringStarted {
            until: on("2027-02-26"),
            visit_interval_days: 42,
            occurred_on: on("2026-08-26"),
        },
        RuleCode::MonitoringByOtherWorker,
    );
    f.on(
        "2026-08-26",
        &anna,
        Event::MonitoringStarted {
            until: on("2027-02-26"),
            visit_interval_days: 42,
            occurred_on: on("2026-08-26"),
        },
    );
    let p = f.plan("2026-10-06");
    assert_eq!(p.phase, Phase::Monitoring);
    assert!(p.warnings.is_empty());
    let p = f.plan("2026-10-08");
    assert_eq!(kinds(&p), vec![(K::MonitoringVisitDue, None)]);
    assert_eq!(p.warnings[0].since, on("2026-10-07"));
    f.on(
        "2026-10-08",
        &anna,
        Event::MonitoringVisitRecorded {
            occurred_on: on("2026-10-08"),
        },
    );
    let p = f.plan("2026-10-09");
    assert!(p.warnings.is_empty());
    assert_eq!(p.monitoring.unwrap().next_visit_due, on("2026-11-19"));
    let p = f.plan("2027-03-01");
    assert_eq!(p.phase, Phase::Finished);
}
