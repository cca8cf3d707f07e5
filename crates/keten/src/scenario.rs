//! The demo's family through OMPG, as partner systems would publish it.
//!
//! Dates are counted back from the server's today, so that the plan a coordinator reads at the
//! end is the same whenever the demo runs: registration 100 days ago, the plan agreed 90 days
//! ago, housing's action due 30 days ago and reported not delivered, the review 5 days ago.
//!
//! The partners are those of `deploy/keten.example.toml`: each step names the partner whose
//! certificate publishes it, the person acting and the role.

use chrono::{Days, NaiveDate};
use keten_domain::catalogue::InterventionCode;
use keten_domain::{
    ActionId, ChainLevel, Event, FamilyId, FamilyType, GoalId, LifeDomain, MemberFlags, MemberId,
    MemberRole, PartnerId, PartnerKind, PersonId, Role, Urgency,
};

pub const YOUTH_CARE: &str = "jeugdzorg";
pub const WSG: &str = "wsg";
pub const POLICE: &str = "politie";
pub const HOUSING: &str = "woningcorporatie";
pub const MUNICIPALITY: &str = "gemeente";

/// The family manager (a person at youth care).
pub const FAMILY_MANAGER: &str = "fm-anna";
pub const COORDINATOR: &str = "coord-sanne";

/// Who publishes a step.
#[derive(Debug, Clone)]
pub struct Who {
    /// The partner id, which is also the name of its certificate files.
    pub partner: &'static str,
    pub person: &'static str,
    pub role: Role,
}

/// One thing that happens, published in one call.
#[derive(Debug, Clone)]
pub struct Step {
    pub label: &'static str,
    pub who: Who,
    pub events: Vec<Event>,
}

const fn who(partner: &'static str, person: &'static str, role: Role) -> Who {
    Who {
        partner,
        person,
        role,
    }
}

pub fn coordinator() -> Who {
    who(MUNICIPALITY, COORDINATOR, Role::Coordinator)
}
pub fn family_manager() -> Who {
    who(YOUTH_CARE, FAMILY_MANAGER, Role::FamilyManager)
}
pub fn youth_care_system() -> Who {
    who(YOUTH_CARE, "sys-jeugdzorg", Role::PartnerSystem)
}
pub fn police_system() -> Who {
    who(POLICE, "sys-politie", Role::PartnerSystem)
}
pub fn housing_system() -> Who {
    who(HOUSING, "sys-woningcorporatie", Role::PartnerSystem)
}

fn id<T>(r: Result<T, keten_domain::IdError>) -> T {
    r.expect("the scenario's ids are valid")
}
pub fn mid(s: &str) -> MemberId {
    id(MemberId::new(s))
}
pub fn gid(s: &str) -> GoalId {
    id(GoalId::new(s))
}
pub fn aid(s: &str) -> ActionId {
    id(ActionId::new(s))
}
pub fn pid(s: &str) -> PartnerId {
    id(PartnerId::new(s))
}

/// The day `n` days before `today`.
pub fn ago(today: NaiveDate, n: u64) -> NaiveDate {
    today - Days::new(n)
}
/// The day `n` days after `today`.
pub fn ahead(today: NaiveDate, n: u64) -> NaiveDate {
    today + Days::new(n)
}

fn joined(partner: &str, kind: PartnerKind, name: &str, on: NaiveDate) -> Event {
    Event::PartnerJoined {
        partner_id: pid(partner),
        partner_kind: kind,
        display_name: name.into(),
        occurred_on: on,
    }
}

/// The whole course, in order. `family` is the pseudonym the municipality registers.
pub fn steps(family: &FamilyId, today: NaiveDate) -> Vec<Step> {
    let d = |n| ago(today, n);
    let commit = |action: &str,
                  goal: &str,
                  partner: &str,
                  members: &[&str],
                  intervention: Option<InterventionCode>,
                  description: &str,
                  start: NaiveDate,
                  end: NaiveDate| Event::ActionCommitted {
        action_id: aid(action),
        goal_id: gid(goal),
        partner_id: pid(partner),
        member_ids: members.iter().map(|m| mid(m)).collect(),
        intervention,
        description: description.into(),
        start_on: start,
        expected_end: end,
        occurred_on: d(89),
    };
    let mut members = vec![Event::FamilyRegistered {
        family_id: family.clone(),
        family_type: FamilyType::StutEnSteun,
        urgency: Urgency::Urgent,
        occurred_on: d(100),
    }];
    for (m, role, year) in [
        ("p1", MemberRole::Parent, 1984),
        ("p2", MemberRole::Parent, 1982),
        ("c1", MemberRole::Child, 2012),
        ("c2", MemberRole::Child, 2017),
    ] {
        members.push(Event::MemberAdded {
            member_id: mid(m),
            role,
            birth_year: year,
            flags: MemberFlags::default(),
            occurred_on: d(100),
        });
    }
    vec![
        Step {
            label: "the municipality registers the family and its four members",
            who: coordinator(),
            events: members,
        },
        Step {
            label: "youth care joins",
            who: youth_care_system(),
            events: vec![joined(
                YOUTH_CARE,
                PartnerKind::YouthCare,
                "Jeugdzorg Amsterdam",
                d(99),
            )],
        },
        Step {
            label: "the police join and bring the contacts of the months before",
            who: police_system(),
            events: vec![
                joined(POLICE, PartnerKind::Police, "Politie Amsterdam", d(97)),
                Event::PoliceContactRecorded {
                    member_id: Some(mid("c1")),
                    occurred_on: d(160),
                },
                Event::PoliceContactRecorded {
                    member_id: Some(mid("c1")),
                    occurred_on: d(130),
                },
                Event::PoliceContactRecorded {
                    member_id: Some(mid("c1")),
                    occurred_on: d(102),
                },
            ],
        },
        Step {
            label: "housing joins",
            who: housing_system(),
            events: vec![joined(
                HOUSING,
                PartnerKind::Housing,
                "Woningcorporatie Amstelstad",
                d(96),
            )],
        },
        Step {
            label: "the police settle the match: youth care takes the lead",
            who: police_system(),
            events: vec![Event::MatchSettled {
                lead_partner_id: pid(YOUTH_CARE),
                contacted_on: d(95),
                occurred_on: d(94),
            }],
        },
        Step {
            label: "youth care assigns Anna as family manager",
            who: youth_care_system(),
            events: vec![Event::FamilyManagerAssigned {
                manager: id(PersonId::new(FAMILY_MANAGER)),
                partner_id: pid(YOUTH_CARE),
                reason: None,
                occurred_on: d(93),
            }],
        },
        Step {
            label: "the family manager visits the family and informs it of the approach",
            who: family_manager(),
            events: vec![
                Event::HomeVisitRecorded { occurred_on: d(92) },
                Event::FamilyInformed { occurred_on: d(91) },
            ],
        },
        Step {
            label: "the family manager agrees the plan with three goals",
            who: family_manager(),
            events: vec![
                Event::PlanAgreed {
                    agreed_on: d(90),
                    review_moments: vec![ahead(today, 30), ahead(today, 120)],
                    occurred_on: d(90),
                },
                Event::GoalSet {
                    goal_id: gid("g-opvoeding"),
                    life_domain: LifeDomain::Parenting,
                    description: "the parents set rules and routines together".into(),
                    target_date: Some(ahead(today, 90)),
                    occurred_on: d(90),
                },
                Event::GoalSet {
                    goal_id: gid("g-wonen"),
                    life_domain: LifeDomain::Housing,
                    description: "a dwelling without overcrowding".into(),
                    target_date: Some(ahead(today, 30)),
                    occurred_on: d(90),
                },
                Event::GoalSet {
                    goal_id: gid("g-overlast"),
                    life_domain: LifeDomain::JusticeNuisance,
                    description: "no more police contacts for c1".into(),
                    target_date: Some(ahead(today, 150)),
                    occurred_on: d(90),
                },
            ],
        },
        Step {
            label: "youth care commits intensive home help for the whole family",
            who: youth_care_system(),
            events: vec![commit(
                "a-iag",
                "g-opvoeding",
                YOUTH_CARE,
                &["p1", "p2", "c1", "c2"],
                Some(InterventionCode::Iag),
                "IAG: two home visits a week",
                d(85),
                ahead(today, 60),
            )],
        },
        Step {
            label: "housing commits to find a larger dwelling",
            who: housing_system(),
            events: vec![commit(
                "a-woning",
                "g-wonen",
                HOUSING,
                &["p1", "p2"],
                None,
                "offer a larger dwelling",
                d(85),
                d(30),
            )],
        },
        Step {
            label: "the family manager commits IOG for c1",
            who: family_manager(),
            events: vec![commit(
                "a-iog",
                "g-overlast",
                YOUTH_CARE,
                &["c1"],
                Some(InterventionCode::Iog),
                "IOG-Erger Voorkomen for c1",
                d(80),
                ahead(today, 90),
            )],
        },
        Step {
            label: "the police commit a youth officer for c1",
            who: police_system(),
            events: vec![commit(
                "a-jeugdagent",
                "g-overlast",
                POLICE,
                &["c1"],
                None,
                "monthly talk with the youth officer",
                d(80),
                ahead(today, 20),
            )],
        },
        Step {
            label: "the actions start",
            who: youth_care_system(),
            events: vec![
                Event::ActionStarted {
                    action_id: aid("a-iag"),
                    occurred_on: d(85),
                },
                Event::ActionStarted {
                    action_id: aid("a-iog"),
                    occurred_on: d(80),
                },
            ],
        },
        Step {
            label: "housing starts looking",
            who: housing_system(),
            events: vec![Event::ActionStarted {
                action_id: aid("a-woning"),
                occurred_on: d(84),
            }],
        },
        Step {
            label: "the police report a new contact with c1",
            who: police_system(),
            events: vec![Event::PoliceContactRecorded {
                member_id: Some(mid("c1")),
                occurred_on: d(60),
            }],
        },
        Step {
            label: "housing reports that it did not deliver",
            who: housing_system(),
            events: vec![Event::ActionNotDelivered {
                action_id: aid("a-woning"),
                reason: "no larger dwelling available in the district".into(),
                occurred_on: d(28),
            }],
        },
        Step {
            label: "the family manager escalates to housing: case level, then management",
            who: family_manager(),
            events: vec![
                Event::ChainEscalationRaised {
                    action_id: aid("a-woning"),
                    partner_id: pid(HOUSING),
                    level: ChainLevel::Case,
                    reason: "the dwelling was promised for the plan".into(),
                    occurred_on: d(27),
                },
                Event::ChainEscalationRaised {
                    action_id: aid("a-woning"),
                    partner_id: pid(HOUSING),
                    level: ChainLevel::Management,
                    reason: "no answer at case level within a week".into(),
                    occurred_on: d(20),
                },
            ],
        },
        Step {
            label: "the family manager reviews the plan",
            who: family_manager(),
            events: vec![Event::ReviewHeld {
                zrm: vec![],
                next_review: Some(ahead(today, 30)),
                occurred_on: d(5),
            }],
        },
    ]
}

/// The partner kinds and names of the demo configuration, for messages.
pub const PARTNERS: [(&str, PartnerKind, &str); 5] = [
    (YOUTH_CARE, PartnerKind::YouthCare, "Jeugdzorg Amsterdam"),
    (WSG, PartnerKind::Wsg, "William Schrikker Groep"),
    (POLICE, PartnerKind::Police, "Politie Amsterdam"),
    (HOUSING, PartnerKind::Housing, "Woningcorporatie Amstelstad"),
    (
        MUNICIPALITY,
        PartnerKind::Municipality,
        "Gemeente Amsterdam",
    ),
];
