//! Need-to-know: the class table, the class of every event, and redaction. The main test is
//! table-driven: for every partner kind and every class, a family with data in every class,
//! redacted for that kind, shows that class's data if and only if the kind may read it.

mod support;

use keten_domain::classes::zrm_domain_class;
use keten_domain::plan::Plan;
use keten_domain::zrm::{Zrm2017Domain, ZrmAssessment, ZrmScore, ZrmScores};
use keten_domain::*;
use support::*;

use DataClass as C;

fn slug(domain: LifeDomain) -> &'static str {
    domain.as_str()
}
fn goal_of(domain: LifeDomain) -> String {
    format!("g-{}", slug(domain))
}
fn action_of(domain: LifeDomain) -> String {
    format!("a-{}", slug(domain))
}

/// A family with data in every class: a member flagged with an intellectual disability, a goal
/// and an overdue, chain-escalated action in every life domain, every 2017 ZRM domain scored,
/// a rung raised, police contacts and nuisance, an erasure request and a legal hold.
/// `health`: whether the health data is there at all (the flag, the health goal and action,
/// the health ZRM scores).
fn family(health: bool) -> FamilyState {
    let mut events = base_family();
    events.push(if health {
        member_with_disability("c3", MemberRole::Child, 2016)
    } else {
        member("c3", MemberRole::Child, 2016)
    });
    events.push(Event::PoliceContactRecorded {
        member_id: Some(mid("c1")),
        occurred_on: d("2025-12-01"),
    });
    events.push(plan_agreed("2026-02-01", &["2026-05-01"]));
    for domain in LifeDomain::ALL {
        if domain == LifeDomain::Health && !health {
            continue;
        }
        events.push(goal(&goal_of(domain), domain, Some("2026-03-15")));
        // Every action for p1 (who has help in every domain), so that hiding one domain
        // changes nobody's "without help" warning.
        events.push(action(
            &action_of(domain),
            &goal_of(domain),
            "yc",
            &["p1"],
            "2026-02-05",
            "2026-03-01",
        ));
        events.push(chain_raised(
            &action_of(domain),
            "yc",
            ChainLevel::Case,
            "2026-03-10",
        ));
    }
    let scores = Zrm2017Domain::ALL
        .into_iter()
        .filter(|d| health || d.data_class() != C::Health)
        .map(|d| (d, ZrmScore::new(3).unwrap()))
        .collect();
    events.push(Event::ReviewHeld {
        zrm: vec![ZrmAssessment {
            member_id: mid("p1"),
            matrix: ZrmScores::V2017 { scores },
        }],
        next_review: None,
        occurred_on: d("2026-03-15"),
    });
    events.push(raised(Rung::Pressure, "fm-anna", "2026-03-20"));
    events.push(Event::PoliceContactRecorded {
        member_id: None,
        occurred_on: d("2026-03-21"),
    });
    events.push(Event::NuisanceReported {
        description: "noise".into(),
        occurred_on: d("2026-03-22"),
    });
    events.push(erasure_requested("p1", "2026-03-25"));
    events.push(hold_placed(
        "h1",
        LegalGround::SubstantialInterestOfOther,
        "2026-03-26",
    ));
    given(events).state
}

fn full_plan() -> Plan {
    coordinated_plan(&family(true), d("2026-04-01"))
}

/// Facts that say a class's data is in the plan, each with the other classes it also belongs
/// to (a chain escalation on a housing action is escalation data too). A fact must hold when
/// its reader may read all its classes, and must not hold otherwise.
fn facts(class: DataClass, p: &Plan) -> Vec<(String, bool, ClassSet)> {
    let mut out: Vec<(String, bool, ClassSet)> = Vec::new();
    let mut also = |name: &str, holds: bool, classes: &[DataClass]| {
        out.push((name.to_owned(), holds, ClassSet::of(classes)))
    };
    macro_rules! fact {
        ($name:expr, $holds:expr $(,)?) => {
            also($name, $holds, &[])
        };
    }
    for domain in LifeDomain::ALL
        .into_iter()
        .filter(|d| d.data_class() == class)
    {
        let g = gid(&goal_of(domain));
        let a = aid(&action_of(domain));
        fact!(&format!("goal {g}"), p.goals.contains_key(&domain));
        fact!(
            &format!("action {a}"),
            p.actions.values().flatten().any(|l| l.action_id == a),
        );
        also(
            &format!("warning on {a}"),
            p.warnings.iter().any(|w| w.action_id.as_ref() == Some(&a)),
            &[C::Plan],
        );
        also(
            &format!("chain escalation on {a}"),
            p.open_chain_escalations.iter().any(|c| c.action_id == a),
            &[C::Escalation],
        );
        also(
            &format!("{a} among p1's actions"),
            p.members.iter().any(|m| m.action_ids.contains(&a)),
            &[C::Identity],
        );
    }
    if Zrm2017Domain::ALL.iter().any(|d| d.data_class() == class) {
        fact!(
            "zrm line",
            p.zrm
                .iter()
                .any(|z| zrm_domain_class(z.version, z.domain) == Some(class)),
        );
    }
    match class {
        C::Identity => {
            fact!("members", !p.members.is_empty());
            also(
                "warning about a member",
                p.warnings.iter().any(|w| w.member_id.is_some()),
                &[C::Plan],
            );
        }
        C::Plan => {
            fact!("family manager", p.family_manager.is_some());
            fact!("partners", !p.partners.is_empty());
            fact!("transparency", p.transparency.is_some());
            fact!("family type", p.family_type.is_some());
            fact!("horizon", p.horizon.is_some());
            fact!("erasure request", p.erasure.is_some());
            fact!("legal holds", !p.legal_holds.is_empty());
            fact!(
                "erasure deadline warning",
                p.warnings
                    .iter()
                    .any(|w| w.kind == WarningKind::ErasureDeadline),
            );
        }
        C::Escalation => {
            fact!("ladder", p.escalation.is_some());
            fact!("escalation count", p.outcomes.escalations.is_some());
            fact!(
                "chain escalation count",
                p.outcomes.chain_escalations.is_some(),
            );
        }
        C::Police => {
            fact!(
                "police contacts before",
                p.outcomes.police_contacts_before.is_some(),
            );
            fact!(
                "police contacts after",
                p.outcomes.police_contacts_after.is_some(),
            );
            fact!("nuisance reports", p.outcomes.nuisance_reports.is_some());
        }
        C::Health => {
            also(
                "intellectual disability flags",
                p.members
                    .iter()
                    .any(|m| m.intellectual_disability.is_some()),
                &[C::Identity],
            );
            also(
                "family manager not from WSG warning",
                p.warnings
                    .iter()
                    .any(|w| w.kind == WarningKind::FamilyManagerNotFromWsg),
                &[C::Plan],
            );
        }
        C::Housing | C::School | C::Finances | C::Social => {}
    }
    out
}

#[test]
fn the_full_family_has_data_in_every_class() {
    let p = full_plan();
    for class in DataClass::ALL {
        let facts = facts(class, &p);
        assert!(facts.len() >= 2, "{class}: too few facts to say anything");
        let missing: Vec<_> = facts.iter().filter(|f| !f.1).map(|f| &f.0).collect();
        assert!(missing.is_empty(), "{class}: the family lacks {missing:?}");
    }
}

#[test]
fn every_kind_sees_a_class_if_and_only_if_it_may_read_it() {
    let full = full_plan();
    let mut failures = Vec::new();
    for kind in PartnerKind::ALL {
        let allowed = readable(kind);
        let r = redact(full.clone(), allowed);
        assert_eq!(r.omitted, allowed.complement().iter().collect::<Vec<_>>());
        for class in DataClass::ALL {
            for (name, holds, also) in facts(class, &r.plan) {
                let may = allowed.contains(class) && also.is_subset(allowed);
                if holds != may {
                    failures.push(format!(
                        "{kind} {} {class} but {name} is {}",
                        if may { "reads" } else { "does not read" },
                        if holds { "shown" } else { "left out" }
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_single_class_hidden_alone_is_left_out_and_nothing_else() {
    let full = full_plan();
    for hidden in DataClass::ALL {
        let r = redact(full.clone(), ClassSet::ALL.without(hidden));
        assert_eq!(r.omitted, vec![hidden]);
        for class in DataClass::ALL {
            for (name, holds, also) in facts(class, &r.plan) {
                let shown = class != hidden && !also.contains(hidden);
                assert_eq!(holds, shown, "{hidden} hidden: {class} {name}");
            }
        }
    }
}

#[test]
fn redacting_with_every_class_changes_nothing() {
    let full = full_plan();
    let r = redact(full.clone(), ClassSet::ALL);
    assert_eq!(r.plan, full);
    assert!(r.omitted.is_empty());
}

/// What a reader without health sees does not depend on whether there was health data: the
/// family with a health goal, action, flag and scores and the family without them redact to
/// the same plan, with the same list of omitted classes.
#[test]
fn a_redacted_plan_does_not_betray_that_hidden_data_exists() {
    let with = coordinated_plan(&family(true), d("2026-04-01"));
    let without = coordinated_plan(&family(false), d("2026-04-01"));
    assert_ne!(with, without);
    for kind in [
        PartnerKind::Police,
        PartnerKind::Housing,
        PartnerKind::School,
        PartnerKind::Municipality,
        PartnerKind::Other,
    ] {
        assert!(!readable(kind).contains(C::Health));
        let a = redact(with.clone(), readable(kind));
        let b = redact(without.clone(), readable(kind));
        assert_eq!(a, b, "{kind}");
        assert!(a.omitted.contains(&C::Health));
    }
}

#[test]
fn counts_are_taken_again_over_what_stays() {
    let full = full_plan();
    assert_eq!(full.outcomes.goals_achieved.of, 8);
    assert_eq!(full.outcomes.chain_escalations, Some(8));
    let police = redact(full, readable(PartnerKind::Police)).plan;
    // Parenting, safety (plan), housing, justice and nuisance (police).
    assert_eq!(police.outcomes.goals_achieved.of, 4);
    assert_eq!(police.outcomes.chain_escalations, Some(4));
    assert_eq!(police.outcomes.actions_on_time[&pid("yc")].of, 4);
}

#[test]
fn the_issue_rules_hold_in_the_table() {
    for kind in [PartnerKind::Police, PartnerKind::Housing] {
        assert!(
            !readable(kind).contains(C::Health),
            "health is not for {kind}"
        );
    }
    assert!(!readable(PartnerKind::School).contains(C::Police));
    for kind in PartnerKind::ALL {
        assert!(
            readable(kind).contains(C::Plan),
            "{kind} works from the plan"
        );
    }
    assert_eq!(readable(PartnerKind::YouthCare), ClassSet::ALL);
    assert_eq!(readable(PartnerKind::Wsg), ClassSet::ALL);
}

#[test]
fn the_family_manager_reason_is_health_data() {
    let events = plus(
        base_family(),
        [
            member_with_disability("c3", MemberRole::Child, 2016),
            fm_assigned("fm-anna", "yc", Some("WSG has no capacity")),
        ],
    );
    let p = coordinated_plan(&given(events.clone()).state, d("2026-02-01"));
    assert!(p.family_manager.as_ref().unwrap().reason.is_some());
    let r = redact(p, readable(PartnerKind::Municipality));
    assert_eq!(r.plan.family_manager.as_ref().unwrap().reason, None);
    assert!(
        classes_of(events.last().unwrap()).contains(C::Health),
        "the reason makes the assignment health data"
    );
}

// --- the classes of events ---

#[test]
fn every_event_type_has_classes() {
    for event in one_of_each() {
        assert!(
            !classes_of(&event).is_empty(),
            "{} is unclassified",
            event.type_name()
        );
    }
}

#[test]
fn events_are_classed_by_their_fields() {
    let set = |cs: &[DataClass]| ClassSet::of(cs);
    assert_eq!(
        classes_of(&member("p1", MemberRole::Parent, 1985)),
        set(&[C::Identity, C::Health])
    );
    assert_eq!(
        classes_of(&goal("g", LifeDomain::Health, None)),
        set(&[C::Health])
    );
    assert_eq!(
        classes_of(&goal("g", LifeDomain::Safety, None)),
        set(&[C::Plan])
    );
    assert_eq!(
        classes_of(&Event::PoliceContactRecorded {
            member_id: None,
            occurred_on: d("2026-01-01")
        }),
        set(&[C::Police])
    );
    assert_eq!(
        classes_of(&raised(Rung::Pressure, "x", "2026-01-01")),
        set(&[C::Escalation])
    );
    assert_eq!(
        classes_of(&erasure_requested("p1", "2026-01-01")),
        set(&[C::Plan])
    );
    // Without the state an action's domain is unknown: every class it may be in.
    let commit = action("a9", "g9", "yc", &["p1"], "2026-02-05", "2026-03-01");
    assert_eq!(classes_of(&commit), ClassSet::DOMAINS);
    // With it, exactly its goal's.
    let state = given(plus(
        with_plan(),
        [goal("g9", LifeDomain::Finances, None), commit.clone()],
    ))
    .state;
    assert_eq!(classes_of_in(&state, &commit), set(&[C::Finances]));
    assert_eq!(
        classes_of_in(&state, &delivered("a9", "2026-02-20")),
        set(&[C::Finances])
    );
    assert_eq!(
        classes_of_in(
            &state,
            &chain_raised("a9", "yc", ChainLevel::Case, "2026-03-02")
        ),
        set(&[C::Finances, C::Escalation])
    );
    // A review is the plan's, plus the classes of the domains scored.
    let review = Event::ReviewHeld {
        zrm: vec![ZrmAssessment {
            member_id: mid("p1"),
            matrix: ZrmScores::V2017 {
                scores: [
                    (Zrm2017Domain::MentalHealth, ZrmScore::new(2).unwrap()),
                    (Zrm2017Domain::Justice, ZrmScore::new(2).unwrap()),
                ]
                .into(),
            },
        }],
        next_review: None,
        occurred_on: d("2026-03-01"),
    };
    assert_eq!(classes_of(&review), set(&[C::Plan, C::Health, C::Police]));
}

// --- the set ---

#[test]
fn class_sets_behave_as_sets_and_serialize_as_names() {
    let mut s = ClassSet::EMPTY;
    assert!(s.is_empty());
    s.insert(C::Police);
    s.insert(C::Identity);
    s.insert(C::Police);
    assert_eq!(s.len(), 2);
    assert!(s.contains(C::Police) && !s.contains(C::Health));
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![C::Identity, C::Police]);
    assert_eq!(s.complement().len(), 7);
    assert_eq!(s.union(s.complement()), ClassSet::ALL);
    assert!(s.is_subset(ClassSet::ALL) && !ClassSet::ALL.is_subset(s));
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, r#"["identity","police"]"#);
    assert_eq!(serde_json::from_str::<ClassSet>(&json).unwrap(), s);
    assert_eq!(ClassSet::ALL.iter().count(), DataClass::ALL.len());
}
