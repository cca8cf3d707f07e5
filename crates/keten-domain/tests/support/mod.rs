//! Test kit: a given/when/then helper over `validate` + `apply`, and a small family to start
//! from. Shared by the integration tests; not every test uses every item.
#![allow(dead_code)]

use chrono::NaiveDate;
use keten_domain::catalogue::InterventionCode;
use keten_domain::state::FamilyState;
use keten_domain::*;

#[track_caller]
pub fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

/// The default "today" of rule tests.
pub fn now() -> NaiveDate {
    d("2026-03-01")
}

pub fn fam() -> FamilyId {
    FamilyId::new("fam-7f3a").unwrap()
}
pub fn mid(s: &str) -> MemberId {
    MemberId::new(s).unwrap()
}
pub fn pid(s: &str) -> PartnerId {
    PartnerId::new(s).unwrap()
}
pub fn gid(s: &str) -> GoalId {
    GoalId::new(s).unwrap()
}
pub fn aid(s: &str) -> ActionId {
    ActionId::new(s).unwrap()
}
pub fn person(s: &str) -> PersonId {
    PersonId::new(s).unwrap()
}

// --- actors ---

pub fn actor(person_id: &str, role: Role, partner: &str, kind: PartnerKind) -> Actor {
    Actor {
        person: person(person_id),
        role,
        partner: pid(partner),
        partner_kind: kind,
    }
}
pub fn coordinator() -> Actor {
    actor(
        "coord-1",
        Role::Coordinator,
        "gemeente",
        PartnerKind::Municipality,
    )
}
/// The family manager of the base family.
pub fn fm() -> Actor {
    actor("fm-anna", Role::FamilyManager, "yc", PartnerKind::YouthCare)
}
pub fn other_fm() -> Actor {
    actor("fm-bert", Role::FamilyManager, "yc", PartnerKind::YouthCare)
}
pub fn system(partner: &str, kind: PartnerKind) -> Actor {
    actor(
        &format!("sys-{partner}"),
        Role::PartnerSystem,
        partner,
        kind,
    )
}
pub fn police() -> Actor {
    system("pol", PartnerKind::Police)
}
pub fn housing() -> Actor {
    system("hous", PartnerKind::Housing)
}
pub fn youth_care() -> Actor {
    system("yc", PartnerKind::YouthCare)
}
pub fn auditor() -> Actor {
    actor(
        "aud-1",
        Role::Auditor,
        "gemeente",
        PartnerKind::Municipality,
    )
}

// --- events ---

pub fn registered(family_type: FamilyType, on: &str) -> Event {
    Event::FamilyRegistered {
        family_id: fam(),
        family_type,
        urgency: Urgency::Normal,
        occurred_on: d(on),
    }
}
pub fn member(id: &str, role: MemberRole, birth_year: i32) -> Event {
    Event::MemberAdded {
        member_id: mid(id),
        role,
        birth_year,
        flags: MemberFlags::default(),
        occurred_on: d("2026-01-05"),
    }
}
pub fn member_with_disability(id: &str, role: MemberRole, birth_year: i32) -> Event {
    Event::MemberAdded {
        member_id: mid(id),
        role,
        birth_year,
        flags: MemberFlags {
            intellectual_disability: true,
        },
        occurred_on: d("2026-01-05"),
    }
}
pub fn joined(id: &str, kind: PartnerKind, on: &str) -> Event {
    Event::PartnerJoined {
        partner_id: pid(id),
        partner_kind: kind,
        display_name: format!("{kind} {id}"),
        occurred_on: d(on),
    }
}
pub fn fm_assigned(manager: &str, partner: &str, reason: Option<&str>) -> Event {
    Event::FamilyManagerAssigned {
        manager: person(manager),
        partner_id: pid(partner),
        reason: reason.map(str::to_owned),
        occurred_on: d("2026-01-15"),
    }
}
pub fn plan_agreed(on: &str, reviews: &[&str]) -> Event {
    Event::PlanAgreed {
        agreed_on: d(on),
        review_moments: reviews.iter().map(|r| d(r)).collect(),
        occurred_on: d(on),
    }
}
pub fn goal(id: &str, domain: LifeDomain, target: Option<&str>) -> Event {
    Event::GoalSet {
        goal_id: gid(id),
        life_domain: domain,
        description: format!("goal {id}"),
        target_date: target.map(d),
        occurred_on: d("2026-02-01"),
    }
}
pub fn action(
    id: &str,
    goal: &str,
    partner: &str,
    members: &[&str],
    start: &str,
    end: &str,
) -> Event {
    action_with(id, goal, partner, members, None, start, end)
}
pub fn action_with(
    id: &str,
    goal: &str,
    partner: &str,
    members: &[&str],
    intervention: Option<InterventionCode>,
    start: &str,
    end: &str,
) -> Event {
    Event::ActionCommitted {
        action_id: aid(id),
        goal_id: gid(goal),
        partner_id: pid(partner),
        member_ids: members.iter().map(|m| mid(m)).collect(),
        intervention,
        description: format!("action {id}"),
        start_on: d(start),
        expected_end: d(end),
        occurred_on: d("2026-02-02"),
    }
}
pub fn raised(to: Rung, by: &str, on: &str) -> Event {
    Event::EscalationRaised {
        to,
        by: person(by),
        reason: "agreements not kept".into(),
        legal_basis: "Jeugdwet art. 2.4".into(),
        occurred_on: d(on),
    }
}
pub fn lowered(to: Rung, by: &str, on: &str) -> Event {
    Event::EscalationLowered {
        to,
        by: person(by),
        reason: "family cooperates again".into(),
        legal_basis: "Jeugdwet art. 2.4".into(),
        occurred_on: d(on),
    }
}
pub fn not_delivered(action: &str, on: &str) -> Event {
    Event::ActionNotDelivered {
        action_id: aid(action),
        reason: "no capacity".into(),
        occurred_on: d(on),
    }
}
pub fn delivered(action: &str, on: &str) -> Event {
    Event::ActionDelivered {
        action_id: aid(action),
        occurred_on: d(on),
    }
}
pub fn chain_raised(action: &str, partner: &str, level: ChainLevel, on: &str) -> Event {
    Event::ChainEscalationRaised {
        action_id: aid(action),
        partner_id: pid(partner),
        level,
        reason: "action not delivered".into(),
        occurred_on: d(on),
    }
}

/// A registered family (orde op zaken) with a parent, two children, three partners (youth
/// care, police, housing), a family manager from youth care, and nothing more.
pub fn base_family() -> Vec<Event> {
    base_family_of(FamilyType::OrdeOpZaken)
}

pub fn base_family_of(family_type: FamilyType) -> Vec<Event> {
    vec![
        registered(family_type, "2026-01-05"),
        member("p1", MemberRole::Parent, 1985),
        member("c1", MemberRole::Child, 2014),
        member("c2", MemberRole::Child, 2020),
        joined("yc", PartnerKind::YouthCare, "2026-01-06"),
        joined("pol", PartnerKind::Police, "2026-01-07"),
        joined("hous", PartnerKind::Housing, "2026-01-08"),
        fm_assigned("fm-anna", "yc", None),
    ]
}

/// The base family with an agreed plan (2026-02-01, review 2026-05-01), goal g1 (parenting,
/// target 2026-06-01) and action a1 by housing for p1 (2026-02-05 to 2026-04-01).
pub fn with_plan() -> Vec<Event> {
    let mut e = base_family();
    e.push(plan_agreed("2026-02-01", &["2026-05-01"]));
    e.push(goal("g1", LifeDomain::Parenting, Some("2026-06-01")));
    e.push(action(
        "a1",
        "g1",
        "hous",
        &["p1"],
        "2026-02-05",
        "2026-04-01",
    ));
    e
}

pub fn plus(mut events: Vec<Event>, more: impl IntoIterator<Item = Event>) -> Vec<Event> {
    events.extend(more);
    events
}

// --- given / when / then ---

pub struct Given {
    pub state: FamilyState,
}

/// The history of the family, folded without validation (as the log would replay it).
pub fn given(events: impl IntoIterator<Item = Event>) -> Given {
    let mut state = FamilyState::default();
    for e in events {
        state.evolve(&e);
    }
    Given { state }
}

pub struct Then {
    pub before: FamilyState,
    pub after: FamilyState,
    pub result: Result<(), Rejection>,
    pub event: Event,
}

impl Given {
    /// Validate, and apply only if accepted: the pipeline a server runs.
    pub fn when(self, event: Event, by: &Actor, now: NaiveDate) -> Then {
        let before = self.state.clone();
        let result = validate(&self.state, &event, by, now);
        let after = if result.is_ok() {
            apply(self.state, &event)
        } else {
            self.state
        };
        Then {
            before,
            after,
            result,
            event,
        }
    }
}

impl Then {
    #[track_caller]
    pub fn then_ok(self) -> FamilyState {
        if let Err(r) = &self.result {
            panic!(
                "expected {} to be accepted, got: {r}",
                self.event.type_name()
            );
        }
        self.after
    }

    #[track_caller]
    pub fn then_rejected(self, field: &str, rule: RuleCode) {
        match &self.result {
            Ok(()) => panic!(
                "expected {} to be rejected with {rule} on {field}, but it was accepted",
                self.event.type_name()
            ),
            Err(r) => {
                assert_eq!(
                    (r.field.as_str(), r.rule),
                    (field, rule),
                    "wrong rejection: {r}"
                );
                assert!(!r.message.is_empty());
                assert_eq!(
                    self.before, self.after,
                    "a rejected event changed the state"
                );
            }
        }
    }
}

/// One event of every type (not a valid history: for encoding tests).
pub fn one_of_each() -> Vec<Event> {
    use keten_domain::zrm::{Zrm2010Domain, Zrm2017Domain, ZrmAssessment, ZrmScore, ZrmScores};
    let on = d("2026-02-01");
    vec![
        registered(FamilyType::VingerAanDePols, "2026-01-05"),
        Event::FamilyTypeChanged {
            family_type: FamilyType::DirectHelp,
            urgency: Urgency::Acute,
            reason: "violence at home".into(),
            occurred_on: on,
        },
        member_with_disability("p1", MemberRole::Parent, 1984),
        Event::MemberLeft {
            member_id: mid("p1"),
            reason: "moved out".into(),
            occurred_on: on,
        },
        joined("yc", PartnerKind::YouthCare, "2026-01-06"),
        Event::PartnerLeft {
            partner_id: pid("yc"),
            reason: "handed over".into(),
            occurred_on: on,
        },
        Event::MatchSettled {
            lead_partner_id: pid("yc"),
            contacted_on: on,
            occurred_on: on,
        },
        fm_assigned("fm-anna", "yc", Some("WSG agreed youth care leads")),
        Event::LeadPartnerSet {
            partner_id: pid("pol"),
            reason: "acute".into(),
            occurred_on: on,
        },
        plan_agreed("2026-02-01", &["2026-05-01", "2026-08-01"]),
        Event::PlanExtended {
            new_horizon: d("2027-02-01"),
            reason: "more time".into(),
            occurred_on: on,
        },
        goal("g1", LifeDomain::JusticeNuisance, Some("2026-06-01")),
        action_with(
            "a1",
            "g1",
            "yc",
            &["c1", "c2"],
            Some(InterventionCode::Wig),
            "2026-02-05",
            "2026-12-01",
        ),
        Event::ActionStarted {
            action_id: aid("a1"),
            occurred_on: on,
        },
        delivered("a1", "2026-02-01"),
        not_delivered("a1", "2026-02-01"),
        Event::ActionDeadlineExtended {
            action_id: aid("a1"),
            new_expected_end: d("2027-01-01"),
            reason: "waiting list".into(),
            occurred_on: on,
        },
        Event::GoalAchieved {
            goal_id: gid("g1"),
            occurred_on: on,
        },
        Event::GoalAbandoned {
            goal_id: gid("g1"),
            reason: "moved".into(),
            occurred_on: on,
        },
        Event::ReviewHeld {
            zrm: vec![
                ZrmAssessment {
                    member_id: mid("p1"),
                    matrix: ZrmScores::V2017 {
                        scores: [
                            (Zrm2017Domain::Finances, ZrmScore::new(2).unwrap()),
                            (Zrm2017Domain::BasicAdl, ZrmScore::new(4).unwrap()),
                        ]
                        .into(),
                    },
                },
                ZrmAssessment {
                    member_id: mid("c1"),
                    matrix: ZrmScores::V2010 {
                        scores: [(Zrm2010Domain::DailyLiving, ZrmScore::new(1).unwrap())].into(),
                    },
                },
            ],
            next_review: Some(d("2026-05-01")),
            occurred_on: on,
        },
        Event::CooperationRefused {
            reason: "door not opened".into(),
            occurred_on: on,
        },
        Event::PlanClosed {
            reason: ClosureReason::HandedOverToRegularCare,
            occurred_on: on,
        },
        Event::MonitoringStarted {
            until: d("2026-08-01"),
            visit_interval_days: 30,
            occurred_on: on,
        },
        Event::MonitoringVisitRecorded { occurred_on: on },
        Event::HomeVisitRecorded { occurred_on: on },
        raised(Rung::Pressure, "fm-anna", "2026-02-01"),
        lowered(Rung::Voluntary, "fm-anna", "2026-02-01"),
        chain_raised("a1", "yc", ChainLevel::Management, "2026-02-01"),
        Event::ChainEscalationResolved {
            action_id: aid("a1"),
            resolution: "delivered".into(),
            occurred_on: on,
        },
        Event::FamilyInformed { occurred_on: on },
        Event::InformingDeferred {
            reason: "safety".into(),
            until: d("2026-03-01"),
            occurred_on: on,
        },
        Event::PoliceContactRecorded {
            member_id: None,
            occurred_on: on,
        },
        Event::NuisanceReported {
            description: "noise at night".into(),
            occurred_on: on,
        },
        erasure_requested("p1", "2026-02-01"),
        hold_placed("h1", LegalGround::CriminalInvestigation, "2026-02-01"),
        hold_lifted("h1", "2026-02-01"),
        erased_on_request("2026-02-01", MemberRole::Parent, "2026-02-01"),
    ]
}

// --- erasure ---

pub fn hid(s: &str) -> HoldId {
    HoldId::new(s).unwrap()
}
pub fn erasure_requested(requester: &str, on: &str) -> Event {
    Event::ErasureRequested {
        requester: mid(requester),
        occurred_on: d(on),
    }
}
pub fn hold_placed(id: &str, ground: LegalGround, on: &str) -> Event {
    Event::LegalHoldPlaced {
        hold_id: hid(id),
        ground,
        reason: "the public prosecutor asked to keep the file".into(),
        occurred_on: d(on),
    }
}
pub fn hold_lifted(id: &str, on: &str) -> Event {
    Event::LegalHoldLifted {
        hold_id: hid(id),
        reason: "the investigation was closed".into(),
        occurred_on: d(on),
    }
}
pub fn erased_on_request(requested_on: &str, role: MemberRole, on: &str) -> Event {
    Event::FamilyErased {
        ground: ErasureGround::Request {
            requested_on: d(requested_on),
            requester_role: role,
        },
        notified: Vec::new(),
        occurred_on: d(on),
    }
}
pub fn erased_after_retention(help_ended_on: &str, on: &str) -> Event {
    Event::FamilyErased {
        ground: ErasureGround::RetentionEnded {
            help_ended_on: d(help_ended_on),
        },
        notified: Vec::new(),
        occurred_on: d(on),
    }
}
