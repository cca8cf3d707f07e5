//! Erasure and retention in the domain: a request, a legal hold that blocks erasure, the
//! erasure itself (after which the state holds nothing of the family and the stream accepts
//! nothing), the deadline and retention warnings, and participation history.

mod support;

use keten_domain::plan::Phase;
use keten_domain::state::Interval;
use keten_domain::*;
use support::*;

fn run(state: &mut FamilyState, event: Event, by: &Actor, now: &str) {
    handle(state, &event, by, d(now))
        .unwrap_or_else(|r| panic!("{} refused: {r}", event.type_name()));
}

fn base_state() -> FamilyState {
    given(with_plan()).state
}

fn of_kind(p: &Plan, kind: WarningKind) -> Vec<&Warning> {
    p.warnings.iter().filter(|w| w.kind == kind).collect()
}

#[test]
fn request_hold_lift_erase_and_nothing_after() {
    let mut s = base_state();
    run(
        &mut s,
        erasure_requested("p1", "2026-02-10"),
        &coordinator(),
        "2026-02-10",
    );
    run(
        &mut s,
        hold_placed("h1", LegalGround::CriminalInvestigation, "2026-02-12"),
        &police(),
        "2026-02-12",
    );

    // The hold blocks erasure, and the answer names the hold and its ground.
    let erase = erased_on_request("2026-02-10", MemberRole::Parent, "2026-03-01");
    let r = validate(&s, &erase, &coordinator(), d("2026-03-01")).unwrap_err();
    assert_eq!(r.rule, RuleCode::LegalHoldActive);
    assert!(r.message.contains("h1"), "{r}");
    assert!(r.message.contains("criminal_investigation"), "{r}");

    let p = coordinated_plan(&s, d("2026-03-01"));
    assert_eq!(p.legal_holds.len(), 1);
    assert_eq!(p.legal_holds[0].hold_id, hid("h1"));

    run(
        &mut s,
        hold_lifted("h1", "2026-03-05"),
        &coordinator(),
        "2026-03-05",
    );
    assert!(coordinated_plan(&s, d("2026-03-05")).legal_holds.is_empty());
    run(&mut s, erase.clone(), &coordinator(), "2026-03-06");

    // Nothing of the family is left but its pseudonym, when and why, and who took part.
    assert!(s.is_erased());
    assert!(s.registration.is_none());
    assert!(s.members.is_empty() && s.goals.is_empty() && s.actions.is_empty());
    assert!(s.privacy.holds.is_empty() && s.privacy.erasure_request.is_none());
    assert_eq!(s.participations.len(), 3, "every partner must be told");
    let json = serde_json::to_string(&s).unwrap();
    for personal in ["p1", "c1", "goal g1", "action a1", "prosecutor", "1985"] {
        assert!(!json.contains(personal), "{personal} left in {json}");
    }

    let p = coordinated_plan(&s, d("2026-03-07"));
    assert_eq!(p.phase, Phase::Erased);
    assert_eq!(p.family_id, Some(fam()));
    let erased = p.erased.as_ref().unwrap();
    assert_eq!(erased.on, d("2026-03-01"));
    assert_eq!(
        erased.ground,
        ErasureGround::Request {
            requested_on: d("2026-02-10"),
            requester_role: MemberRole::Parent,
        }
    );
    assert!(p.members.is_empty() && p.goals.is_empty() && p.warnings.is_empty());
    assert!(p.escalation.is_none() && p.transparency.is_none());

    // The stream accepts nothing more, not even a new registration under the same pseudonym.
    for (event, by) in [
        (home_visit_on("2026-03-08"), fm()),
        (registered(FamilyType::Refresh, "2026-03-08"), coordinator()),
        (erase, coordinator()),
    ] {
        let r = validate(&s, &event, &by, d("2026-03-08")).unwrap_err();
        assert_eq!(r.rule, RuleCode::FamilyErased, "{}", event.type_name());
    }
}

fn home_visit_on(on: &str) -> Event {
    Event::HomeVisitRecorded { occurred_on: d(on) }
}

#[test]
fn the_erasure_deadline_shows_until_the_family_is_erased() {
    let mut s = base_state();
    run(
        &mut s,
        erasure_requested("p1", "2026-02-10"),
        &fm(),
        "2026-02-10",
    );
    for now in ["2026-02-10", "2026-05-10", "2026-09-01"] {
        let p = coordinated_plan(&s, d(now));
        let line = p.erasure.as_ref().expect("the pending request");
        assert_eq!(line.requested_on, d("2026-02-10"));
        assert_eq!(line.requester_role, MemberRole::Parent);
        assert_eq!(line.due, d("2026-05-10"));
        let w = of_kind(&p, WarningKind::ErasureDeadline);
        assert_eq!(w.len(), 1, "on {now}");
        assert_eq!(w[0].since, d("2026-02-10"));
        assert_eq!(w[0].due, Some(d("2026-05-10")));
        assert!(w[0].message.contains("2026-05-10"), "{}", w[0].message);
    }
    run(
        &mut s,
        erased_on_request("2026-02-10", MemberRole::Parent, "2026-09-01"),
        &coordinator(),
        "2026-09-01",
    );
    let p = coordinated_plan(&s, d("2026-09-02"));
    assert!(of_kind(&p, WarningKind::ErasureDeadline).is_empty());
    assert!(p.erasure.is_none());
}

#[test]
fn a_child_asks_from_the_last_day_of_the_year_it_turns_twelve() {
    let s = given(plus(base_family(), [member("c3", MemberRole::Child, 2014)])).state;
    let ask = |on: &str| validate(&s, &erasure_requested("c3", on), &coordinator(), d(on));
    assert_eq!(
        ask("2026-12-30").unwrap_err().rule,
        RuleCode::ErasureRequesterUnder12
    );
    assert!(ask("2026-12-31").is_ok());
    let mut s = s.clone();
    run(
        &mut s,
        erasure_requested("c3", "2026-12-31"),
        &coordinator(),
        "2026-12-31",
    );
    assert_eq!(
        s.privacy.erasure_request.as_ref().unwrap().requester_role,
        MemberRole::Child
    );
}

fn closed(on: &str) -> Event {
    Event::PlanClosed {
        reason: ClosureReason::GoalsAchieved,
        occurred_on: d(on),
    }
}

#[test]
fn a_family_is_due_for_destruction_when_retention_after_help_ended() {
    let s = given(plus(with_plan(), [closed("2026-02-20")])).state;
    assert_eq!(s.help_ended_on(), Some(d("2026-02-20")));

    let before = coordinated_plan(&s, d("2046-02-19"));
    assert!(of_kind(&before, WarningKind::DueForDestruction).is_empty());
    assert_eq!(before.help_ended_on, Some(d("2026-02-20")));
    let due = coordinated_plan(&s, d("2046-02-20"));
    let w = of_kind(&due, WarningKind::DueForDestruction);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].since, d("2046-02-20"));

    // The retention period is the deployment's.
    let five = Policy { retention_years: 5 };
    let p = coordinated_plan_with(&s, d("2031-02-20"), &five);
    assert_eq!(of_kind(&p, WarningKind::DueForDestruction).len(), 1);
    let erase = erased_after_retention("2026-02-20", "2031-02-20");
    assert_eq!(
        validate(&s, &erase, &coordinator(), d("2031-02-20"))
            .unwrap_err()
            .rule,
        RuleCode::RetentionNotEnded
    );
    assert!(validate_with(&s, &erase, &coordinator(), d("2031-02-20"), &five).is_ok());

    // Erased, it is no longer due.
    let mut s = s;
    handle_with(&mut s, &erase, &coordinator(), d("2031-02-20"), &five).unwrap();
    let p = coordinated_plan_with(&s, d("2031-02-21"), &five);
    assert!(p.warnings.is_empty());
    assert_eq!(
        p.erased.unwrap().ground,
        ErasureGround::RetentionEnded {
            help_ended_on: d("2026-02-20")
        }
    );
}

#[test]
fn help_ends_when_monitoring_after_the_plan_ends() {
    let s = given(plus(
        with_plan(),
        [
            closed("2026-02-20"),
            Event::MonitoringStarted {
                until: d("2026-08-01"),
                visit_interval_days: 30,
                occurred_on: d("2026-02-20"),
            },
        ],
    ))
    .state;
    assert_eq!(s.help_ended_on(), Some(d("2026-08-01")));
    assert_eq!(coordinated_plan(&s, d("2026-07-31")).help_ended_on, None);
    assert_eq!(
        coordinated_plan(&s, d("2026-08-01")).help_ended_on,
        Some(d("2026-08-01"))
    );
    assert_eq!(given(with_plan()).state.help_ended_on(), None);
}

#[test]
fn participation_keeps_every_interval() {
    let s = given(plus(
        base_family(),
        [
            Event::PartnerLeft {
                partner_id: pid("pol"),
                reason: "case handed over".into(),
                occurred_on: d("2026-02-01"),
            },
            joined("pol", PartnerKind::Police, "2026-03-01"),
        ],
    ))
    .state;
    let history = s.participation_history();
    assert_eq!(
        history[&pid("pol")],
        vec![
            Interval {
                joined_on: d("2026-01-07"),
                left_on: Some(d("2026-02-01")),
            },
            Interval {
                joined_on: d("2026-03-01"),
                left_on: None,
            },
        ]
    );
    assert!(s.took_part_on(&pid("pol"), d("2026-02-01")));
    assert!(!s.took_part_on(&pid("pol"), d("2026-02-15")));
    assert!(s.took_part_on(&pid("pol"), d("2027-01-01")));
    assert!(!s.took_part_on(&pid("school"), d("2026-02-15")));
}
