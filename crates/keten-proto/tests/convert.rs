//! The conversions between the wire and the domain: every event round trips, every kind of
//! malformed input is refused with the field named, and the plan reaches the wire whole.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use keten_domain::catalogue::InterventionCode;
use keten_domain::zrm::{Zrm2010Domain, Zrm2017Domain, ZrmAssessment, ZrmScore, ZrmScores};
use keten_domain::{
    ActionId, ChainLevel, ClosureReason, ErasureGround, Event, FamilyId, FamilyType, GoalId,
    HoldId, LegalGround, LifeDomain, MemberFlags, MemberId, MemberRole, PartnerId, PartnerKind,
    PersonId, Rung, Urgency, WarningKind,
};
use keten_proto::convert::{
    FieldError, event_from_proto, event_to_proto, plan_to_proto, redacted_to_proto, rule,
    summary_to_proto,
};
use keten_proto::v1;
use keten_proto::v1::family_event::Event as P;
use prost::Message;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}
fn fam() -> FamilyId {
    FamilyId::new("fam-0192e4a1").unwrap()
}
fn mid(s: &str) -> MemberId {
    MemberId::new(s).unwrap()
}
fn pid(s: &str) -> PartnerId {
    PartnerId::new(s).unwrap()
}
fn gid(s: &str) -> GoalId {
    GoalId::new(s).unwrap()
}
fn aid(s: &str) -> ActionId {
    ActionId::new(s).unwrap()
}
fn person(s: &str) -> PersonId {
    PersonId::new(s).unwrap()
}
fn text(s: &str) -> String {
    s.to_owned()
}

/// One family's story with every event type at least once, and the optional fields both set
/// and left out. Not validated: the conversions must carry anything the domain can hold.
fn samples() -> Vec<Event> {
    use Event as E;
    let scores2010 = BTreeMap::from([
        (Zrm2010Domain::Finances, ZrmScore::new(2).unwrap()),
        (Zrm2010Domain::DailyLiving, ZrmScore::new(4).unwrap()),
    ]);
    let scores2017 = BTreeMap::from([
        (Zrm2017Domain::Housing, ZrmScore::new(1).unwrap()),
        (Zrm2017Domain::BasicAdl, ZrmScore::new(3).unwrap()),
        (Zrm2017Domain::Justice, ZrmScore::new(5).unwrap()),
    ]);
    vec![
        E::FamilyRegistered {
            family_id: fam(),
            family_type: FamilyType::StutEnSteun,
            urgency: Urgency::Urgent,
            occurred_on: d("2026-01-05"),
        },
        E::FamilyTypeChanged {
            family_type: FamilyType::DirectHelp,
            urgency: Urgency::Acute,
            reason: text("safety of the youngest child"),
            occurred_on: d("2026-01-06"),
        },
        E::MemberAdded {
            member_id: mid("m-mother"),
            role: MemberRole::Parent,
            birth_year: 1988,
            flags: MemberFlags::default(),
            occurred_on: d("2026-01-05"),
        },
        E::MemberAdded {
            member_id: mid("m-son"),
            role: MemberRole::Child,
            birth_year: 2014,
            flags: MemberFlags {
                intellectual_disability: true,
            },
            occurred_on: d("2026-01-05"),
        },
        E::MemberLeft {
            member_id: mid("m-uncle"),
            reason: text("moved out"),
            occurred_on: d("2026-03-01"),
        },
        E::PartnerJoined {
            partner_id: pid("wsg-rotterdam"),
            partner_kind: PartnerKind::Wsg,
            display_name: text("William Schrikker Groep Rotterdam"),
            occurred_on: d("2026-01-05"),
        },
        E::PartnerLeft {
            partner_id: pid("school-1"),
            reason: text("the son changed school"),
            occurred_on: d("2026-04-01"),
        },
        E::MatchSettled {
            lead_partner_id: pid("wsg-rotterdam"),
            contacted_on: d("2026-01-08"),
            occurred_on: d("2026-01-09"),
        },
        E::FamilyManagerAssigned {
            manager: person("fm-anna"),
            partner_id: pid("wsg-rotterdam"),
            reason: None,
            occurred_on: d("2026-01-10"),
        },
        E::FamilyManagerAssigned {
            manager: person("fm-bram"),
            partner_id: pid("yc-1"),
            reason: Some(text("WSG has no capacity; agreed with WSG")),
            occurred_on: d("2026-01-10"),
        },
        E::LeadPartnerSet {
            partner_id: pid("police-zuid"),
            reason: text("domestic violence"),
            occurred_on: d("2026-01-07"),
        },
        E::PlanAgreed {
            agreed_on: d("2026-01-20"),
            review_moments: vec![d("2026-04-20"), d("2026-07-20")],
            occurred_on: d("2026-01-21"),
        },
        E::PlanAgreed {
            agreed_on: d("2026-01-20"),
            review_moments: vec![],
            occurred_on: d("2026-01-20"),
        },
        E::PlanExtended {
            new_horizon: d("2027-01-20"),
            reason: text("housing not yet settled"),
            occurred_on: d("2026-10-01"),
        },
        E::GoalSet {
            goal_id: gid("g-housing"),
            life_domain: LifeDomain::Housing,
            description: text("no eviction; rent arrears paid off"),
            target_date: Some(d("2026-06-30")),
            occurred_on: d("2026-01-20"),
        },
        E::GoalSet {
            goal_id: gid("g-school"),
            life_domain: LifeDomain::SchoolWork,
            description: text("the son attends school every day"),
            target_date: None,
            occurred_on: d("2026-01-20"),
        },
        E::ActionCommitted {
            action_id: aid("a-iog"),
            goal_id: gid("g-school"),
            partner_id: pid("wsg-rotterdam"),
            member_ids: vec![mid("m-mother"), mid("m-son")],
            intervention: Some(InterventionCode::Iog),
            description: text("IOG for mother and son"),
            start_on: d("2026-02-01"),
            expected_end: d("2026-07-01"),
            occurred_on: d("2026-01-21"),
        },
        E::ActionCommitted {
            action_id: aid("a-debt"),
            goal_id: gid("g-housing"),
            partner_id: pid("housing-1"),
            member_ids: vec![mid("m-mother")],
            intervention: None,
            description: text("payment plan for the arrears"),
            start_on: d("2026-02-01"),
            expected_end: d("2026-03-01"),
            occurred_on: d("2026-01-21"),
        },
        E::ActionStarted {
            action_id: aid("a-iog"),
            occurred_on: d("2026-02-02"),
        },
        E::ActionDelivered {
            action_id: aid("a-iog"),
            occurred_on: d("2026-06-30"),
        },
        E::ActionNotDelivered {
            action_id: aid("a-debt"),
            reason: text("no payment plan offered"),
            occurred_on: d("2026-03-05"),
        },
        E::ActionDeadlineExtended {
            action_id: aid("a-iog"),
            new_expected_end: d("2026-08-01"),
            reason: text("started late"),
            occurred_on: d("2026-05-01"),
        },
        E::GoalAchieved {
            goal_id: gid("g-school"),
            occurred_on: d("2026-07-01"),
        },
        E::GoalAbandoned {
            goal_id: gid("g-housing"),
            reason: text("family moved to social housing elsewhere"),
            occurred_on: d("2026-08-01"),
        },
        E::ReviewHeld {
            zrm: vec![
                ZrmAssessment {
                    member_id: mid("m-mother"),
                    matrix: ZrmScores::V2017 { scores: scores2017 },
                },
                ZrmAssessment {
                    member_id: mid("m-son"),
                    matrix: ZrmScores::V2010 { scores: scores2010 },
                },
            ],
            next_review: Some(d("2026-07-20")),
            occurred_on: d("2026-04-20"),
        },
        E::ReviewHeld {
            zrm: vec![],
            next_review: None,
            occurred_on: d("2026-07-20"),
        },
        E::CooperationRefused {
            reason: text("mother refuses home visits"),
            occurred_on: d("2026-03-10"),
        },
        E::PlanClosed {
            reason: ClosureReason::HandedOverToRegularCare,
            occurred_on: d("2026-11-01"),
        },
        E::MonitoringStarted {
            until: d("2027-05-01"),
            visit_interval_days: 42,
            occurred_on: d("2026-11-01"),
        },
        E::MonitoringVisitRecorded {
            occurred_on: d("2026-12-10"),
        },
        E::HomeVisitRecorded {
            occurred_on: d("2026-02-15"),
        },
        E::EscalationRaised {
            to: Rung::Pressure,
            by: person("fm-anna"),
            reason: text("payment plan not kept; home visits refused"),
            legal_basis: text("Jeugdwet art. 2.4"),
            occurred_on: d("2026-03-12"),
        },
        E::EscalationLowered {
            to: Rung::Voluntary,
            by: person("fm-anna"),
            reason: text("cooperation restored"),
            legal_basis: text("Jeugdwet art. 2.4"),
            occurred_on: d("2026-05-12"),
        },
        E::ChainEscalationRaised {
            action_id: aid("a-debt"),
            partner_id: pid("housing-1"),
            level: ChainLevel::Management,
            reason: text("still no payment plan"),
            occurred_on: d("2026-03-20"),
        },
        E::ChainEscalationResolved {
            action_id: aid("a-debt"),
            resolution: text("payment plan offered after management talks"),
            occurred_on: d("2026-04-02"),
        },
        E::FamilyInformed {
            occurred_on: d("2026-01-22"),
        },
        E::InformingDeferred {
            reason: text("telling the family now endangers the mother"),
            until: d("2026-02-15"),
            occurred_on: d("2026-01-06"),
        },
        E::PoliceContactRecorded {
            member_id: Some(mid("m-son")),
            occurred_on: d("2025-11-30"),
        },
        E::PoliceContactRecorded {
            member_id: None,
            occurred_on: d("2026-02-14"),
        },
        E::NuisanceReported {
            description: text("loud quarrels at night, reported by neighbours"),
            occurred_on: d("2026-02-13"),
        },
        E::ErasureRequested {
            requester: mid("m-mother"),
            occurred_on: d("2026-03-02"),
        },
        E::LegalHoldPlaced {
            hold_id: HoldId::new("hold-om-1").unwrap(),
            ground: LegalGround::CriminalInvestigation,
            reason: text("the public prosecutor asked to keep the file"),
            occurred_on: d("2026-03-03"),
        },
        E::LegalHoldLifted {
            hold_id: HoldId::new("hold-om-1").unwrap(),
            reason: text("the investigation was closed"),
            occurred_on: d("2026-04-03"),
        },
        E::FamilyErased {
            ground: ErasureGround::Request {
                requested_on: d("2026-03-02"),
                requester_role: MemberRole::Parent,
            },
            notified: vec![
                PartnerId::new("jeugdzorg").unwrap(),
                PartnerId::new("politie").unwrap(),
            ],
            occurred_on: d("2026-04-10"),
        },
        E::FamilyErased {
            ground: ErasureGround::RetentionEnded {
                help_ended_on: d("2006-04-10"),
            },
            notified: Vec::new(),
            occurred_on: d("2026-04-10"),
        },
    ]
}

/// The oneof case each domain event must travel in. Exhaustive, without a wildcard: a variant
/// added to `keten_domain::Event` does not compile here until the wire has its counterpart.
fn expected_case(e: &Event) -> &'static str {
    match e {
        Event::FamilyRegistered { .. } => "family_registered",
        Event::FamilyTypeChanged { .. } => "family_type_changed",
        Event::MemberAdded { .. } => "member_added",
        Event::MemberLeft { .. } => "member_left",
        Event::PartnerJoined { .. } => "partner_joined",
        Event::PartnerLeft { .. } => "partner_left",
        Event::MatchSettled { .. } => "match_settled",
        Event::FamilyManagerAssigned { .. } => "family_manager_assigned",
        Event::LeadPartnerSet { .. } => "lead_partner_set",
        Event::PlanAgreed { .. } => "plan_agreed",
        Event::PlanExtended { .. } => "plan_extended",
        Event::GoalSet { .. } => "goal_set",
        Event::ActionCommitted { .. } => "action_committed",
        Event::ActionStarted { .. } => "action_started",
        Event::ActionDelivered { .. } => "action_delivered",
        Event::ActionNotDelivered { .. } => "action_not_delivered",
        Event::ActionDeadlineExtended { .. } => "action_deadline_extended",
        Event::GoalAchieved { .. } => "goal_achieved",
        Event::GoalAbandoned { .. } => "goal_abandoned",
        Event::ReviewHeld { .. } => "review_held",
        Event::CooperationRefused { .. } => "cooperation_refused",
        Event::PlanClosed { .. } => "plan_closed",
        Event::MonitoringStarted { .. } => "monitoring_started",
        Event::MonitoringVisitRecorded { .. } => "monitoring_visit_recorded",
        Event::HomeVisitRecorded { .. } => "home_visit_recorded",
        Event::EscalationRaised { .. } => "escalation_raised",
        Event::EscalationLowered { .. } => "escalation_lowered",
        Event::ChainEscalationRaised { .. } => "chain_escalation_raised",
        Event::ChainEscalationResolved { .. } => "chain_escalation_resolved",
        Event::FamilyInformed { .. } => "family_informed",
        Event::InformingDeferred { .. } => "informing_deferred",
        Event::PoliceContactRecorded { .. } => "police_contact_recorded",
        Event::NuisanceReported { .. } => "nuisance_reported",
        Event::ErasureRequested { .. } => "erasure_requested",
        Event::LegalHoldPlaced { .. } => "legal_hold_placed",
        Event::LegalHoldLifted { .. } => "legal_hold_lifted",
        Event::FamilyErased { .. } => "family_erased",
    }
}

/// The oneof case a wire event is in; exhaustive on the proto side.
fn case(e: &v1::FamilyEvent) -> &'static str {
    match e.event.as_ref().expect("set") {
        P::FamilyRegistered(_) => "family_registered",
        P::FamilyTypeChanged(_) => "family_type_changed",
        P::MemberAdded(_) => "member_added",
        P::MemberLeft(_) => "member_left",
        P::PartnerJoined(_) => "partner_joined",
        P::PartnerLeft(_) => "partner_left",
        P::MatchSettled(_) => "match_settled",
        P::FamilyManagerAssigned(_) => "family_manager_assigned",
        P::LeadPartnerSet(_) => "lead_partner_set",
        P::PlanAgreed(_) => "plan_agreed",
        P::PlanExtended(_) => "plan_extended",
        P::GoalSet(_) => "goal_set",
        P::ActionCommitted(_) => "action_committed",
        P::ActionStarted(_) => "action_started",
        P::ActionDelivered(_) => "action_delivered",
        P::ActionNotDelivered(_) => "action_not_delivered",
        P::ActionDeadlineExtended(_) => "action_deadline_extended",
        P::GoalAchieved(_) => "goal_achieved",
        P::GoalAbandoned(_) => "goal_abandoned",
        P::ReviewHeld(_) => "review_held",
        P::CooperationRefused(_) => "cooperation_refused",
        P::PlanClosed(_) => "plan_closed",
        P::MonitoringStarted(_) => "monitoring_started",
        P::MonitoringVisitRecorded(_) => "monitoring_visit_recorded",
        P::HomeVisitRecorded(_) => "home_visit_recorded",
        P::EscalationRaised(_) => "escalation_raised",
        P::EscalationLowered(_) => "escalation_lowered",
        P::ChainEscalationRaised(_) => "chain_escalation_raised",
        P::ChainEscalationResolved(_) => "chain_escalation_resolved",
        P::FamilyInformed(_) => "family_informed",
        P::InformingDeferred(_) => "informing_deferred",
        P::PoliceContactRecorded(_) => "police_contact_recorded",
        P::NuisanceReported(_) => "nuisance_reported",
        P::ErasureRequested(_) => "erasure_requested",
        P::LegalHoldPlaced(_) => "legal_hold_placed",
        P::LegalHoldLifted(_) => "legal_hold_lifted",
        P::FamilyErased(_) => "family_erased",
    }
}

fn snake(type_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in type_name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn every_event_round_trips_through_the_wire_and_its_bytes() {
    for e in samples() {
        let wire = event_to_proto(&e);
        assert_eq!(case(&wire), expected_case(&e), "{e:?}");
        assert_eq!(case(&wire), snake(e.type_name()));
        let bytes = wire.encode_to_vec();
        let decoded = v1::FamilyEvent::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded, wire);
        assert_eq!(event_from_proto(decoded), Ok(e));
    }
}

#[test]
fn every_domain_event_type_has_a_sample_and_a_wire_counterpart() {
    let mut sampled: Vec<&str> = samples().iter().map(Event::type_name).collect();
    sampled.sort();
    sampled.dedup();
    let mut all = Event::TYPE_NAMES.to_vec();
    all.sort();
    assert_eq!(sampled, all, "samples() must hold every event type");
    assert_eq!(Event::TYPE_NAMES.len(), 37);
}

#[test]
fn the_family_event_oneof_lists_every_event_in_domain_order() {
    let fds = prost_types::FileDescriptorSet::decode(keten_proto::FILE_DESCRIPTOR_SET).unwrap();
    let family_event = fds
        .file
        .iter()
        .filter(|f| f.package() == "keten.v1")
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == "FamilyEvent")
        .expect("FamilyEvent");
    assert_eq!(family_event.oneof_decl.len(), 1);
    let cases: Vec<(i32, &str, &str)> = family_event
        .field
        .iter()
        .map(|f| {
            assert_eq!(f.oneof_index, Some(0), "{} outside the oneof", f.name());
            (f.number(), f.name(), f.type_name())
        })
        .collect();
    assert_eq!(cases.len(), Event::TYPE_NAMES.len());
    for (i, (number, name, type_name)) in cases.into_iter().enumerate() {
        let domain = Event::TYPE_NAMES[i];
        assert_eq!(number, i as i32 + 1);
        assert_eq!(name, snake(domain));
        assert_eq!(type_name, format!(".keten.v1.{domain}"));
    }
}

// --- malformed input ---

fn wire(type_name: &str) -> v1::FamilyEvent {
    let e = samples()
        .into_iter()
        .find(|e| e.type_name() == type_name)
        .unwrap();
    event_to_proto(&e)
}

/// Takes the wire form of the first sample of `type_name`, breaks it with `breaks`, and
/// expects the conversion to refuse it at `field` with a description starting with `rule`.
fn check<M>(type_name: &str, breaks: M, field: &str, rule: &str)
where
    M: FnOnce(&mut P),
{
    let mut w = wire(type_name);
    breaks(w.event.as_mut().unwrap());
    let err = event_from_proto(w).expect_err("malformed input must be refused");
    assert_eq!(err.field, field, "{err}");
    assert!(
        err.description.starts_with(rule),
        "{field}: expected {rule:?}, got {:?}",
        err.description
    );
}

macro_rules! case_mut {
    ($e:expr, $variant:ident) => {
        match $e {
            P::$variant(m) => m,
            _ => unreachable!(),
        }
    };
}

#[test]
fn an_event_without_a_case_is_refused() {
    assert_eq!(
        event_from_proto(v1::FamilyEvent { event: None })
            .unwrap_err()
            .field,
        "event"
    );
}

#[test]
fn missing_and_impossible_dates_are_refused() {
    check(
        "ActionCommitted",
        |e| case_mut!(e, ActionCommitted).start_on = None,
        "action_committed.start_on",
        rule::MUST_BE_SET,
    );
    check(
        "FamilyInformed",
        |e| case_mut!(e, FamilyInformed).occurred_on = None,
        "family_informed.occurred_on",
        rule::MUST_BE_SET,
    );
    check(
        "PlanAgreed",
        |e| {
            case_mut!(e, PlanAgreed).review_moments[1] = v1::Date {
                year: 2026,
                month: 2,
                day: 30,
            }
        },
        "plan_agreed.review_moments[1]",
        rule::MUST_BE_A_DATE,
    );
    check(
        "GoalSet",
        |e| {
            case_mut!(e, GoalSet).target_date = Some(v1::Date {
                year: 2026,
                month: 13,
                day: 1,
            })
        },
        "goal_set.target_date",
        rule::MUST_BE_A_DATE,
    );
    check(
        "MatchSettled",
        |e| case_mut!(e, MatchSettled).contacted_on = Some(v1::Date::default()),
        "match_settled.contacted_on",
        rule::MUST_BE_A_DATE,
    );
}

#[test]
fn unspecified_and_unknown_enums_are_refused() {
    check(
        "FamilyRegistered",
        |e| case_mut!(e, FamilyRegistered).family_type = 0,
        "family_registered.family_type",
        rule::MUST_NOT_BE_UNSPECIFIED,
    );
    check(
        "PartnerJoined",
        |e| case_mut!(e, PartnerJoined).partner_kind = 0,
        "partner_joined.partner_kind",
        rule::MUST_NOT_BE_UNSPECIFIED,
    );
    check(
        "EscalationRaised",
        |e| case_mut!(e, EscalationRaised).to = 99,
        "escalation_raised.to",
        rule::MUST_BE_A_KNOWN_VALUE,
    );
    check(
        "ActionCommitted",
        |e| case_mut!(e, ActionCommitted).intervention = Some(0),
        "action_committed.intervention",
        rule::MUST_NOT_BE_UNSPECIFIED,
    );
    check(
        "PlanClosed",
        |e| case_mut!(e, PlanClosed).reason = -1,
        "plan_closed.reason",
        rule::MUST_BE_A_KNOWN_VALUE,
    );
}

#[test]
fn ids_the_domain_cannot_hold_are_refused() {
    check(
        "ActionCommitted",
        |e| case_mut!(e, ActionCommitted).member_ids[1] = "Jan Jansen".into(),
        "action_committed.member_ids[1]",
        rule::MUST_BE_AN_ID,
    );
    check(
        "FamilyRegistered",
        |e| case_mut!(e, FamilyRegistered).family_id = "123456782".into(),
        "family_registered.family_id",
        rule::MUST_BE_AN_ID,
    );
    check(
        "GoalSet",
        |e| case_mut!(e, GoalSet).goal_id = String::new(),
        "goal_set.goal_id",
        rule::MUST_BE_AN_ID,
    );
    check(
        "PoliceContactRecorded",
        |e| case_mut!(e, PoliceContactRecorded).member_id = Some("x".repeat(65)),
        "police_contact_recorded.member_id",
        rule::MUST_BE_AN_ID,
    );
    check(
        "EscalationLowered",
        |e| case_mut!(e, EscalationLowered).by = "anna@wsg".into(),
        "escalation_lowered.by",
        rule::MUST_BE_AN_ID,
    );
}

#[test]
fn malformed_zrm_scores_are_refused() {
    fn review(e: &mut P) -> &mut v1::ReviewHeld {
        case_mut!(e, ReviewHeld)
    }
    check(
        "ReviewHeld",
        |e| {
            let v1::zrm_assessment::Matrix::Zrm2017(s) = review(e).zrm[0].matrix.as_mut().unwrap()
            else {
                unreachable!()
            };
            s.scores[1].score = 7;
        },
        "review_held.zrm[0].zrm_2017.scores[1].score",
        rule::MUST_BE_A_SCORE,
    );
    check(
        "ReviewHeld",
        |e| {
            let v1::zrm_assessment::Matrix::Zrm2010(s) = review(e).zrm[1].matrix.as_mut().unwrap()
            else {
                unreachable!()
            };
            s.scores[0].domain = 0;
        },
        "review_held.zrm[1].zrm_2010.scores[0].domain",
        rule::MUST_NOT_BE_UNSPECIFIED,
    );
    check(
        "ReviewHeld",
        |e| {
            let v1::zrm_assessment::Matrix::Zrm2010(s) = review(e).zrm[1].matrix.as_mut().unwrap()
            else {
                unreachable!()
            };
            s.scores[1].domain = s.scores[0].domain;
        },
        "review_held.zrm[1].zrm_2010.scores[1].domain",
        rule::MUST_NOT_REPEAT,
    );
    check(
        "ReviewHeld",
        |e| review(e).zrm[0].matrix = None,
        "review_held.zrm[0].matrix",
        rule::MUST_BE_SET,
    );
    check(
        "ReviewHeld",
        |e| review(e).zrm[0].member_id = String::new(),
        "review_held.zrm[0].member_id",
        rule::MUST_BE_AN_ID,
    );
}

#[test]
fn numbers_out_of_the_domain_range_are_refused() {
    check(
        "MonitoringStarted",
        |e| case_mut!(e, MonitoringStarted).visit_interval_days = 70_000,
        "monitoring_started.visit_interval_days",
        rule::MUST_BE_IN_RANGE,
    );
}

#[test]
fn field_errors_take_the_request_prefix() {
    let mut w = wire("ActionCommitted");
    case_mut!(w.event.as_mut().unwrap(), ActionCommitted).member_ids[0] = String::new();
    let err = event_from_proto(w).unwrap_err().within("events[3]");
    assert_eq!(
        err,
        FieldError {
            field: "events[3].action_committed.member_ids[0]".into(),
            description: "must be an id: member id is empty".into(),
        }
    );
}

#[test]
fn domain_rules_are_not_checked_here() {
    // Empty reasons and descriptions are well formed; keten_domain::validate refuses them.
    let mut w = wire("CooperationRefused");
    case_mut!(w.event.as_mut().unwrap(), CooperationRefused).reason = String::new();
    assert!(event_from_proto(w).is_ok());
    let mut w = wire("ActionCommitted");
    case_mut!(w.event.as_mut().unwrap(), ActionCommitted)
        .member_ids
        .clear();
    assert!(event_from_proto(w).is_ok());
}

// --- the plan ---

/// A plain story: registered, two partners, a WSG family manager, a plan with two goals and
/// two actions, one not delivered, escalation raised.
/// The `n`th sample of an event type.
fn pick(name: &str, n: usize) -> Event {
    samples()
        .into_iter()
        .filter(|e| e.type_name() == name)
        .nth(n)
        .unwrap()
}

fn story() -> Vec<Event> {
    vec![
        pick("FamilyRegistered", 0),
        pick("MemberAdded", 0),
        pick("MemberAdded", 1),
        pick("PartnerJoined", 0),
        Event::PartnerJoined {
            partner_id: pid("housing-1"),
            partner_kind: PartnerKind::Housing,
            display_name: text("Woonstad"),
            occurred_on: d("2026-01-06"),
        },
        pick("MatchSettled", 0),
        pick("FamilyManagerAssigned", 0),
        pick("PlanAgreed", 0),
        pick("GoalSet", 0),
        pick("GoalSet", 1),
        pick("ActionCommitted", 0),
        pick("ActionCommitted", 1),
        pick("ActionStarted", 0),
        pick("ActionNotDelivered", 0),
        pick("ReviewHeld", 0),
        pick("EscalationRaised", 0),
        pick("PoliceContactRecorded", 0),
    ]
}

#[test]
fn the_plan_reaches_the_wire_whole() {
    let state = keten_domain::fold(&story());
    let plan = keten_domain::coordinated_plan(&state, d("2026-05-01"));
    let w = plan_to_proto(&plan);

    assert_eq!(
        w.as_of,
        Some(v1::Date {
            year: 2026,
            month: 5,
            day: 1
        })
    );
    assert_eq!(w.family_id.as_deref(), Some("fam-0192e4a1"));
    assert_eq!(w.phase(), v1::Phase::PlanActive);
    assert_eq!(w.family_type(), v1::FamilyType::StutEnSteun);
    assert_eq!(w.strategy.as_deref(), plan.strategy);
    assert_eq!(w.members.len(), 2);
    assert_eq!(w.partners.len(), 2);
    let fm = w.family_manager.as_ref().unwrap();
    assert_eq!(
        (fm.manager.as_str(), fm.partner_id.as_str()),
        ("fm-anna", "wsg-rotterdam")
    );
    assert_eq!(
        w.lead.as_ref().unwrap().basis(),
        v1::LeadBasis::FamilyManager
    );

    let domains: Vec<_> = w.goals.iter().map(|g| g.life_domain()).collect();
    assert_eq!(
        domains,
        [v1::LifeDomain::Housing, v1::LifeDomain::SchoolWork]
    );
    let partners: Vec<_> = w.actions.iter().map(|a| a.partner_id.as_str()).collect();
    assert_eq!(partners, ["housing-1", "wsg-rotterdam"]);
    let iog = &w.actions[1].actions[0];
    assert_eq!(iog.status(), v1::ActionStatus::Started);
    assert_eq!(iog.member_ids, ["m-mother", "m-son"]);
    let intervention = iog.intervention.as_ref().unwrap();
    assert_eq!(intervention.code(), v1::InterventionCode::Iog);
    assert_eq!(intervention.name, InterventionCode::Iog.info().name);
    assert_eq!(
        w.actions[0].actions[0].status(),
        v1::ActionStatus::NotDelivered
    );

    let esc = w.escalation.as_ref().unwrap();
    assert_eq!(esc.rung(), v1::Rung::Pressure);
    assert_eq!(esc.history.len(), 1);
    assert_eq!(esc.history[0].direction(), v1::EscalationDirection::Raised);
    assert_eq!(esc.history[0].from(), v1::Rung::Voluntary);

    assert_eq!(w.zrm.len(), plan.zrm.len());
    assert!(
        w.zrm.iter().any(|z| z.domain == "basic_adl"
            && z.version() == v1::ZrmVersion::V2017
            && z.intake == 3)
    );

    assert_eq!(w.warnings.len(), plan.warnings.len());
    for (wire, domain) in w.warnings.iter().zip(&plan.warnings) {
        assert_eq!(wire.kind(), v1::WarningKind::from(domain.kind));
        assert_eq!(wire.message, domain.message);
        assert_eq!(
            wire.action_id.as_deref(),
            domain.action_id.as_ref().map(|a| a.as_str())
        );
    }
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.kind == WarningKind::FamilyNotInformed)
    );
    assert!(matches!(
        w.transparency.as_ref().unwrap().state,
        Some(v1::transparency::State::NotInformed(_))
    ));

    let o = w.outcomes.as_ref().unwrap();
    assert_eq!(o.police_contacts_before, Some(1));
    assert_eq!(o.escalations, Some(1));
    assert_eq!(o.goals_achieved, Some(v1::Share { count: 0, of: 2 }));

    // The same plan encodes to the same bytes.
    assert_eq!(w.encode_to_vec(), plan_to_proto(&plan).encode_to_vec());
}

#[test]
fn an_unregistered_family_has_an_empty_plan_on_the_wire() {
    let plan = keten_domain::coordinated_plan(&Default::default(), d("2026-05-01"));
    let w = plan_to_proto(&plan);
    assert_eq!(w.phase(), v1::Phase::NotRegistered);
    assert_eq!(w.family_id, None);
    assert_eq!(w.family_type(), v1::FamilyType::Unspecified);
    assert!(w.warnings.is_empty());
}

#[test]
fn a_summary_names_what_a_list_filters_on() {
    let state = keten_domain::fold(&story());
    let plan = keten_domain::coordinated_plan(&state, d("2026-05-01"));
    let s = summary_to_proto(&plan, 16, 1234);
    assert_eq!(s.family_id, "fam-0192e4a1");
    assert_eq!((s.version, s.last_position), (16, 1234));
    assert_eq!(s.rung(), v1::Rung::Pressure);
    assert_eq!(s.family_manager.as_deref(), Some("fm-anna"));
    assert_eq!(s.partner_ids, ["housing-1", "wsg-rotterdam"]);
    assert_eq!(s.warning_count as usize, plan.warnings.len());
    let mut kinds = s.warning_kinds.clone();
    kinds.dedup();
    assert_eq!(kinds, s.warning_kinds, "each kind once");
    assert!(
        s.warning_kinds
            .contains(&(v1::WarningKind::FamilyNotInformed as i32))
    );
}

#[test]
fn erasure_holds_and_omitted_classes_reach_the_wire() {
    let mut events = story();
    events.push(pick("ErasureRequested", 0));
    events.push(pick("LegalHoldPlaced", 0));
    let state = keten_domain::fold(&events);
    let plan = keten_domain::coordinated_plan(&state, d("2026-05-01"));

    let w = plan_to_proto(&plan);
    assert!(w.omitted_classes.is_empty());
    let e = w.erasure.as_ref().expect("the pending request");
    assert_eq!(e.requester_role(), v1::MemberRole::Parent);
    assert_eq!(
        e.due,
        Some(v1::Date {
            year: 2026,
            month: 6,
            day: 2
        })
    );
    assert_eq!(w.legal_holds.len(), 1);
    assert_eq!(w.legal_holds[0].hold_id, "hold-om-1");
    assert_eq!(
        w.legal_holds[0].ground(),
        v1::LegalGround::CriminalInvestigation
    );
    assert!(
        w.warnings
            .iter()
            .any(|x| x.kind() == v1::WarningKind::ErasureDeadline)
    );
    assert!(
        w.members
            .iter()
            .all(|m| m.intellectual_disability.is_some())
    );

    let police = keten_domain::redact(plan, keten_domain::readable(PartnerKind::Police));
    let w = redacted_to_proto(&police);
    assert_eq!(
        w.omitted_classes().collect::<Vec<_>>(),
        vec![
            v1::DataClass::Health,
            v1::DataClass::School,
            v1::DataClass::Finances,
            v1::DataClass::Social
        ]
    );
    assert!(
        w.members
            .iter()
            .all(|m| m.intellectual_disability.is_none())
    );
    assert!(w.escalation.is_some());
    let other = keten_domain::redact(
        keten_domain::coordinated_plan(&state, d("2026-05-01")),
        keten_domain::readable(PartnerKind::Other),
    );
    let w = redacted_to_proto(&other);
    assert!(w.escalation.is_none() && w.members.is_empty());
    let o = w.outcomes.unwrap();
    assert_eq!(
        (o.police_contacts_before, o.escalations, o.nuisance_reports),
        (None, None, None)
    );
}

#[test]
fn an_erased_family_reaches_the_wire_as_erased() {
    let mut events = story();
    events.push(pick("ErasureRequested", 0));
    events.push(pick("FamilyErased", 0));
    let state = keten_domain::fold(&events);
    let w = plan_to_proto(&keten_domain::coordinated_plan(&state, d("2026-05-01")));
    assert_eq!(w.phase(), v1::Phase::Erased);
    assert_eq!(w.family_id.as_deref(), Some("fam-0192e4a1"));
    assert!(w.members.is_empty() && w.goals.is_empty() && w.warnings.is_empty());
    let erased = w.erased.unwrap();
    assert_eq!(
        erased.ground.unwrap().ground,
        Some(v1::erasure_ground::Ground::Request(
            v1::erasure_ground::Request {
                requested_on: Some(v1::Date {
                    year: 2026,
                    month: 3,
                    day: 2
                }),
                requester_role: v1::MemberRole::Parent.into(),
            }
        ))
    );
}

#[test]
fn an_erasure_ground_must_be_set_and_whole() {
    check(
        "FamilyErased",
        |e| case_mut!(e, FamilyErased).ground = None,
        "family_erased.ground",
        rule::MUST_BE_SET,
    );
    check(
        "FamilyErased",
        |e| {
            if let Some(v1::erasure_ground::Ground::Request(r)) =
                &mut case_mut!(e, FamilyErased).ground.as_mut().unwrap().ground
            {
                r.requester_role = 0;
            }
        },
        "family_erased.ground.request.requester_role",
        rule::MUST_NOT_BE_UNSPECIFIED,
    );
    check(
        "LegalHoldPlaced",
        |e| case_mut!(e, LegalHoldPlaced).ground = 0,
        "legal_hold_placed.ground",
        rule::MUST_NOT_BE_UNSPECIFIED,
    );
    check(
        "ErasureRequested",
        |e| case_mut!(e, ErasureRequested).requester = String::new(),
        "erasure_requested.requester",
        rule::MUST_BE_AN_ID,
    );
}
