//! Every rule: one case where it accepts what it should, one where it rejects what it should,
//! with the rejection's field and rule code. Data-driven; a last test checks that every
//! `RuleCode` has both.

mod support;

use chrono::NaiveDate;
use keten_domain::catalogue::InterventionCode;
use keten_domain::zrm::{Zrm2017Domain, ZrmAssessment, ZrmScore, ZrmScores};
use keten_domain::*;
use support::*;

use RuleCode as R;

struct Case {
    rule: RuleCode,
    /// `None`: must be accepted. `Some(field)`: must be rejected on that field with `rule`.
    reject_on: Option<&'static str>,
    given: Vec<Event>,
    event: Event,
    by: Actor,
    now: NaiveDate,
}

fn ok(rule: RuleCode, given: Vec<Event>, event: Event, by: Actor) -> Case {
    Case {
        rule,
        reject_on: None,
        given,
        event,
        by,
        now: now(),
    }
}

fn no(rule: RuleCode, field: &'static str, given: Vec<Event>, event: Event, by: Actor) -> Case {
    Case {
        rule,
        reject_on: Some(field),
        given,
        event,
        by,
        now: now(),
    }
}

impl Case {
    fn at(mut self, now: &str) -> Self {
        self.now = d(now);
        self
    }

    fn run(self) {
        let then = given(self.given).when(self.event, &self.by, self.now);
        match self.reject_on {
            None => {
                then.then_ok();
            }
            Some(field) => then.then_rejected(field, self.rule),
        }
    }
}

fn home_visit(on: &str) -> Event {
    Event::HomeVisitRecorded { occurred_on: d(on) }
}
fn member_left(id: &str, reason: &str) -> Event {
    Event::MemberLeft {
        member_id: mid(id),
        reason: reason.into(),
        occurred_on: d("2026-02-10"),
    }
}
fn partner_left(id: &str) -> Event {
    Event::PartnerLeft {
        partner_id: pid(id),
        reason: "case handed over".into(),
        occurred_on: d("2026-02-20"),
    }
}
fn match_settled(lead: &str) -> Event {
    Event::MatchSettled {
        lead_partner_id: pid(lead),
        contacted_on: d("2026-01-10"),
        occurred_on: d("2026-01-12"),
    }
}
fn type_changed(t: FamilyType) -> Event {
    Event::FamilyTypeChanged {
        family_type: t,
        urgency: Urgency::Urgent,
        reason: "problems became urgent".into(),
        occurred_on: d("2026-02-15"),
    }
}
fn lead_set(partner: &str) -> Event {
    Event::LeadPartnerSet {
        partner_id: pid(partner),
        reason: "acute safety problem: police coordinates".into(),
        occurred_on: d("2026-01-20"),
    }
}
fn extended(to: &str) -> Event {
    Event::PlanExtended {
        new_horizon: d(to),
        reason: "housing takes longer".into(),
        occurred_on: d("2026-02-25"),
    }
}
fn started(a: &str) -> Event {
    Event::ActionStarted {
        action_id: aid(a),
        occurred_on: d("2026-02-06"),
    }
}
fn action_extended(a: &str, to: &str) -> Event {
    Event::ActionDeadlineExtended {
        action_id: aid(a),
        new_expected_end: d(to),
        reason: "waiting list".into(),
        occurred_on: d("2026-02-20"),
    }
}
fn achieved(g: &str) -> Event {
    Event::GoalAchieved {
        goal_id: gid(g),
        occurred_on: d("2026-02-27"),
    }
}
fn abandoned(g: &str) -> Event {
    Event::GoalAbandoned {
        goal_id: gid(g),
        reason: "no longer relevant".into(),
        occurred_on: d("2026-02-28"),
    }
}
fn zrm(member: &str, score: u8) -> ZrmAssessment {
    ZrmAssessment {
        member_id: mid(member),
        matrix: ZrmScores::V2017 {
            scores: [(Zrm2017Domain::Finances, ZrmScore::new(score).unwrap())].into(),
        },
    }
}
fn review(zrm: Vec<ZrmAssessment>, next: Option<&str>) -> Event {
    Event::ReviewHeld {
        zrm,
        next_review: next.map(d),
        occurred_on: d("2026-02-28"),
    }
}
fn closed() -> Event {
    Event::PlanClosed {
        reason: ClosureReason::GoalsAchieved,
        occurred_on: d("2026-02-26"),
    }
}
fn monitoring(interval: u16) -> Event {
    Event::MonitoringStarted {
        until: d("2026-08-27"),
        visit_interval_days: interval,
        occurred_on: d("2026-02-27"),
    }
}
fn monitoring_visit() -> Event {
    Event::MonitoringVisitRecorded {
        occurred_on: d("2026-02-28"),
    }
}
fn chain_resolved(a: &str) -> Event {
    Event::ChainEscalationResolved {
        action_id: aid(a),
        resolution: "housing delivered after management talk".into(),
        occurred_on: d("2026-02-28"),
    }
}
fn informed() -> Event {
    Event::FamilyInformed {
        occurred_on: d("2026-01-20"),
    }
}
fn deferred(until: &str) -> Event {
    Event::InformingDeferred {
        reason: "telling now endangers the child".into(),
        until: d(until),
        occurred_on: d("2026-01-25"),
    }
}
fn police_contact() -> Event {
    Event::PoliceContactRecorded {
        member_id: Some(mid("c1")),
        occurred_on: d("2026-02-10"),
    }
}
fn intervention_action(code: InterventionCode, start: &str, end: &str) -> Event {
    action_with("a2", "g1", "yc", &["c1"], Some(code), start, end)
}

/// A family with a member flagged with an intellectual disability, youth care and WSG joined.
fn wsg_family() -> Vec<Event> {
    vec![
        registered(FamilyType::StutEnSteun, "2026-01-05"),
        member_with_disability("p1", MemberRole::Parent, 1980),
        member("c1", MemberRole::Child, 2015),
        joined("yc", PartnerKind::YouthCare, "2026-01-06"),
        joined("wsg", PartnerKind::Wsg, "2026-01-07"),
    ]
}

fn base_without_fm() -> Vec<Event> {
    let mut e = base_family();
    e.pop();
    e
}

fn with_not_delivered() -> Vec<Event> {
    plus(with_plan(), [not_delivered("a1", "2026-02-20")])
}

fn cases() -> Vec<Case> {
    let fresh = Vec::new;
    vec![
        // who may publish
        no(
            R::AuditorMayNotPublish,
            "actor.role",
            base_family(),
            home_visit("2026-02-01"),
            auditor(),
        ),
        no(
            R::AuditorMayNotPublish,
            "actor.role",
            fresh(),
            registered(FamilyType::Refresh, "2026-01-05"),
            auditor(),
        ),
        ok(
            R::AuditorMayNotPublish,
            base_family(),
            home_visit("2026-02-01"),
            fm(),
        ),
        no(
            R::RoleMayNotPublish,
            "actor.role",
            with_plan(),
            goal("g2", LifeDomain::Housing, None),
            police(),
        ),
        ok(
            R::RoleMayNotPublish,
            with_plan(),
            goal("g2", LifeDomain::Housing, None),
            coordinator(),
        ),
        no(
            R::NotTheFamilyManager,
            "actor.person",
            with_plan(),
            goal("g2", LifeDomain::Housing, None),
            other_fm(),
        ),
        no(
            R::NotTheFamilyManager,
            "actor.person",
            base_family(),
            home_visit("2026-02-01"),
            other_fm(),
        ),
        ok(
            R::NotTheFamilyManager,
            with_plan(),
            goal("g2", LifeDomain::Housing, None),
            fm(),
        ),
        // the stream
        no(
            R::FamilyNotRegistered,
            "type",
            fresh(),
            member("c1", MemberRole::Child, 2014),
            coordinator(),
        ),
        ok(
            R::FamilyNotRegistered,
            fresh(),
            registered(FamilyType::OrdeOpZaken, "2026-01-05"),
            youth_care(),
        ),
        no(
            R::FamilyAlreadyRegistered,
            "family_id",
            base_family(),
            registered(FamilyType::OrdeOpZaken, "2026-01-05"),
            coordinator(),
        ),
        ok(
            R::FamilyAlreadyRegistered,
            fresh(),
            registered(FamilyType::DirectHelp, "2026-01-05"),
            coordinator(),
        ),
        no(
            R::OccurredInFuture,
            "occurred_on",
            base_family(),
            home_visit("2026-03-02"),
            fm(),
        ),
        ok(
            R::OccurredInFuture,
            base_family(),
            home_visit("2026-03-01"),
            fm(),
        ),
        no(
            R::OccurredBeforeRegistration,
            "occurred_on",
            base_family(),
            home_visit("2026-01-04"),
            fm(),
        ),
        ok(
            R::OccurredBeforeRegistration,
            base_family(),
            home_visit("2026-01-05"),
            fm(),
        ),
        ok(
            R::OccurredBeforeRegistration,
            base_family(),
            Event::PoliceContactRecorded {
                member_id: None,
                occurred_on: d("2025-09-01"),
            },
            police(),
        ),
        no(
            R::ReasonRequired,
            "reason",
            base_family(),
            member_left("c2", "  "),
            fm(),
        ),
        ok(
            R::ReasonRequired,
            base_family(),
            member_left("c2", "moved to grandparents"),
            fm(),
        ),
        no(
            R::DateOutOfOrder,
            "contacted_on",
            base_family(),
            Event::MatchSettled {
                lead_partner_id: pid("yc"),
                contacted_on: d("2026-01-13"),
                occurred_on: d("2026-01-12"),
            },
            coordinator(),
        ),
        no(
            R::DateOutOfOrder,
            "contacted_on",
            base_family(),
            Event::MatchSettled {
                lead_partner_id: pid("yc"),
                contacted_on: d("2026-01-06"),
                occurred_on: d("2026-01-12"),
            },
            coordinator(),
        ),
        ok(
            R::DateOutOfOrder,
            base_family(),
            Event::MatchSettled {
                lead_partner_id: pid("yc"),
                contacted_on: d("2026-01-07"),
                occurred_on: d("2026-01-12"),
            },
            coordinator(),
        ),
        no(
            R::DateOutOfOrder,
            "agreed_on",
            base_family(),
            Event::PlanAgreed {
                agreed_on: d("2026-02-02"),
                review_moments: vec![],
                occurred_on: d("2026-02-01"),
            },
            fm(),
        ),
        no(
            R::DateOutOfOrder,
            "agreed_on",
            base_family(),
            Event::PlanAgreed {
                agreed_on: d("2026-01-04"),
                review_moments: vec![],
                occurred_on: d("2026-02-01"),
            },
            fm(),
        ),
        ok(
            R::DateOutOfOrder,
            base_family(),
            Event::PlanAgreed {
                agreed_on: d("2026-01-30"),
                review_moments: vec![],
                occurred_on: d("2026-02-01"),
            },
            fm(),
        ),
        no(
            R::DateOutOfOrder,
            "target_date",
            with_plan(),
            goal("g2", LifeDomain::Finances, Some("2026-02-01")),
            fm(),
        ),
        ok(
            R::DateOutOfOrder,
            with_plan(),
            goal("g2", LifeDomain::Finances, Some("2026-02-02")),
            fm(),
        ),
        // the family
        no(
            R::FamilyTypeUnchanged,
            "family_type",
            base_family(),
            type_changed(FamilyType::OrdeOpZaken),
            fm(),
        ),
        ok(
            R::FamilyTypeUnchanged,
            base_family(),
            type_changed(FamilyType::DirectHelp),
            fm(),
        ),
        no(
            R::BirthYearImplausible,
            "birth_year",
            base_family(),
            member("c3", MemberRole::Child, 2027),
            fm(),
        ),
        no(
            R::BirthYearImplausible,
            "birth_year",
            base_family(),
            member("p2", MemberRole::Parent, 1900),
            fm(),
        ),
        ok(
            R::BirthYearImplausible,
            base_family(),
            member("c3", MemberRole::Child, 2026),
            fm(),
        ),
        no(
            R::DuplicateMemberId,
            "member_id",
            base_family(),
            member("c1", MemberRole::Child, 2014),
            fm(),
        ),
        ok(
            R::DuplicateMemberId,
            base_family(),
            member("c3", MemberRole::Child, 2016),
            fm(),
        ),
        no(
            R::UnknownMember,
            "member_id",
            base_family(),
            member_left("x9", "moved"),
            fm(),
        ),
        no(
            R::UnknownMember,
            "member_ids[1]",
            with_plan(),
            action("a2", "g1", "yc", &["c1", "x9"], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        no(
            R::UnknownMember,
            "member_ids[0]",
            plus(with_plan(), [member_left("c2", "moved")]),
            action("a2", "g1", "yc", &["c2"], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        ok(
            R::UnknownMember,
            base_family(),
            member_left("c2", "moved"),
            fm(),
        ),
        // participation
        no(
            R::PartnerJoinsOnlyItself,
            "partner_id",
            base_family(),
            joined("school1", PartnerKind::School, "2026-02-01"),
            housing(),
        ),
        no(
            R::PartnerJoinsOnlyItself,
            "partner_id",
            base_family(),
            joined("school1", PartnerKind::Police, "2026-02-01"),
            system("school1", PartnerKind::School),
        ),
        ok(
            R::PartnerJoinsOnlyItself,
            base_family(),
            joined("school1", PartnerKind::School, "2026-02-01"),
            system("school1", PartnerKind::School),
        ),
        ok(
            R::PartnerJoinsOnlyItself,
            base_family(),
            joined("school1", PartnerKind::School, "2026-02-01"),
            coordinator(),
        ),
        no(
            R::PartnerAlreadyJoined,
            "partner_id",
            base_family(),
            joined("pol", PartnerKind::Police, "2026-02-01"),
            police(),
        ),
        ok(
            R::PartnerAlreadyJoined,
            plus(base_family(), [partner_left("pol")]),
            joined("pol", PartnerKind::Police, "2026-02-21"),
            police(),
        ),
        no(
            R::PartnerNotJoined,
            "partner_id",
            with_plan(),
            action("a2", "g1", "school1", &["c1"], "2026-03-01", "2026-05-01"),
            coordinator(),
        ),
        no(
            R::PartnerNotJoined,
            "partner_id",
            base_family(),
            partner_left("school1"),
            coordinator(),
        ),
        ok(
            R::PartnerNotJoined,
            plus(
                with_plan(),
                [joined("school1", PartnerKind::School, "2026-02-10")],
            ),
            action("a2", "g1", "school1", &["c1"], "2026-03-01", "2026-05-01"),
            coordinator(),
        ),
        no(
            R::PartnerHasOpenActions,
            "partner_id",
            with_plan(),
            partner_left("hous"),
            housing(),
        ),
        ok(
            R::PartnerHasOpenActions,
            plus(with_plan(), [delivered("a1", "2026-02-15")]),
            partner_left("hous"),
            housing(),
        ),
        no(
            R::NoOpenMatch,
            "type",
            vec![
                registered(FamilyType::OrdeOpZaken, "2026-01-05"),
                joined("yc", PartnerKind::YouthCare, "2026-01-06"),
            ],
            match_settled("yc"),
            coordinator(),
        ),
        no(
            R::NoOpenMatch,
            "type",
            plus(base_family(), [match_settled("yc")]),
            match_settled("yc"),
            coordinator(),
        ),
        ok(
            R::NoOpenMatch,
            base_family(),
            match_settled("yc"),
            coordinator(),
        ),
        no(
            R::NotInMatch,
            "actor.partner",
            base_family(),
            match_settled("yc"),
            system("school1", PartnerKind::School),
        ),
        ok(R::NotInMatch, base_family(), match_settled("yc"), police()),
        // lead
        no(
            R::ActorMayNotAssignFamilyManager,
            "actor.partner_kind",
            base_family(),
            fm_assigned("fm-bert", "yc", None),
            police(),
        ),
        ok(
            R::ActorMayNotAssignFamilyManager,
            base_family(),
            fm_assigned("fm-bert", "yc", None),
            youth_care(),
        ),
        no(
            R::FamilyManagerNotFromYouthCareOrWsg,
            "partner_id",
            base_family(),
            fm_assigned("hans", "hous", None),
            coordinator(),
        ),
        no(
            R::FamilyManagerNotFromYouthCareOrWsg,
            "partner_id",
            base_family(),
            fm_assigned("hans", "pol", None),
            coordinator(),
        ),
        ok(
            R::FamilyManagerNotFromYouthCareOrWsg,
            base_family(),
            fm_assigned("fm-bert", "yc", None),
            coordinator(),
        ),
        no(
            R::FamilyNeedsWsg,
            "partner_id",
            wsg_family(),
            fm_assigned("fm-anna", "yc", None),
            coordinator(),
        ),
        no(
            R::FamilyNeedsWsg,
            "partner_id",
            wsg_family(),
            fm_assigned("fm-anna", "yc", Some(" ")),
            coordinator(),
        ),
        ok(
            R::FamilyNeedsWsg,
            wsg_family(),
            fm_assigned("fm-wim", "wsg", None),
            coordinator(),
        ),
        ok(
            R::FamilyNeedsWsg,
            wsg_family(),
            fm_assigned(
                "fm-anna",
                "yc",
                Some("WSG has no capacity; agreed with WSG"),
            ),
            coordinator(),
        ),
        no(
            R::LeadPartnerOnlyForDirectHelp,
            "type",
            base_family(),
            lead_set("pol"),
            coordinator(),
        ),
        ok(
            R::LeadPartnerOnlyForDirectHelp,
            base_family_of(FamilyType::DirectHelp),
            lead_set("pol"),
            coordinator(),
        ),
        // the plan
        no(
            R::NoFamilyManager,
            "type",
            base_without_fm(),
            plan_agreed("2026-02-01", &[]),
            coordinator(),
        ),
        ok(
            R::NoFamilyManager,
            base_family(),
            plan_agreed("2026-02-01", &[]),
            coordinator(),
        ),
        no(
            R::PlanAlreadyAgreed,
            "type",
            with_plan(),
            plan_agreed("2026-02-10", &[]),
            fm(),
        ),
        ok(
            R::PlanAlreadyAgreed,
            base_family(),
            plan_agreed("2026-02-10", &[]),
            fm(),
        ),
        no(
            R::NoPlan,
            "type",
            base_family(),
            goal("g1", LifeDomain::Safety, None),
            fm(),
        ),
        ok(
            R::NoPlan,
            with_plan(),
            goal("g2", LifeDomain::Safety, None),
            fm(),
        ),
        no(
            R::PlanIsClosed,
            "type",
            plus(with_plan(), [closed()]),
            action("a2", "g1", "yc", &["c1"], "2026-03-01", "2026-05-01"),
            coordinator(),
        ),
        no(
            R::PlanIsClosed,
            "type",
            plus(with_plan(), [closed()]),
            goal("g2", LifeDomain::Safety, None),
            fm(),
        ),
        ok(
            R::PlanIsClosed,
            with_plan(),
            action("a2", "g1", "yc", &["c1"], "2026-03-01", "2026-05-01"),
            coordinator(),
        ),
        no(
            R::ReviewMomentBeforeAgreement,
            "review_moments[1]",
            base_family(),
            plan_agreed("2026-02-01", &["2026-05-01", "2026-01-20"]),
            fm(),
        ),
        ok(
            R::ReviewMomentBeforeAgreement,
            base_family(),
            plan_agreed("2026-02-01", &["2026-05-01", "2026-08-01"]),
            fm(),
        ),
        no(
            R::PlanAlreadyExtended,
            "type",
            plus(with_plan(), [extended("2027-01-01")]),
            extended("2027-02-01"),
            fm(),
        ),
        ok(
            R::PlanAlreadyExtended,
            with_plan(),
            extended("2027-01-01"),
            fm(),
        ),
        no(
            R::ExtensionNotLater,
            "new_horizon",
            with_plan(),
            extended("2026-12-01"),
            fm(),
        ),
        ok(
            R::ExtensionNotLater,
            with_plan(),
            extended("2026-12-02"),
            fm(),
        ),
        no(
            R::DuplicateGoalId,
            "goal_id",
            with_plan(),
            goal("g1", LifeDomain::Safety, None),
            fm(),
        ),
        ok(
            R::DuplicateGoalId,
            with_plan(),
            goal("g2", LifeDomain::Safety, None),
            fm(),
        ),
        no(
            R::UnknownGoal,
            "goal_id",
            with_plan(),
            action("a2", "g9", "yc", &["c1"], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        no(R::UnknownGoal, "goal_id", with_plan(), achieved("g9"), fm()),
        ok(
            R::UnknownGoal,
            with_plan(),
            action("a2", "g1", "yc", &["c1"], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        no(
            R::GoalNotOpen,
            "goal_id",
            plus(with_plan(), [achieved("g1")]),
            abandoned("g1"),
            fm(),
        ),
        no(
            R::GoalNotOpen,
            "goal_id",
            plus(with_plan(), [abandoned("g1")]),
            action("a2", "g1", "yc", &["c1"], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        ok(R::GoalNotOpen, with_plan(), abandoned("g1"), fm()),
        no(
            R::DuplicateActionId,
            "action_id",
            with_plan(),
            action("a1", "g1", "yc", &["c1"], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        ok(
            R::DuplicateActionId,
            with_plan(),
            action("a2", "g1", "yc", &["c1"], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        no(
            R::UnknownAction,
            "action_id",
            with_plan(),
            started("a9"),
            housing(),
        ),
        ok(R::UnknownAction, with_plan(), started("a1"), housing()),
        no(
            R::ActionWithoutMembers,
            "member_ids",
            with_plan(),
            action("a2", "g1", "yc", &[], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        ok(
            R::ActionWithoutMembers,
            with_plan(),
            action("a2", "g1", "yc", &["c2"], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        no(
            R::DuplicateMemberInAction,
            "member_ids[1]",
            with_plan(),
            action("a2", "g1", "yc", &["c1", "c1"], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        ok(
            R::DuplicateMemberInAction,
            with_plan(),
            action("a2", "g1", "yc", &["c1", "c2"], "2026-03-01", "2026-05-01"),
            fm(),
        ),
        no(
            R::ExpectedEndNotAfterStart,
            "expected_end",
            with_plan(),
            action("a2", "g1", "yc", &["c1"], "2026-03-01", "2026-03-01"),
            fm(),
        ),
        ok(
            R::ExpectedEndNotAfterStart,
            with_plan(),
            action("a2", "g1", "yc", &["c1"], "2026-03-01", "2026-03-02"),
            fm(),
        ),
        no(
            R::ActionByOtherPartner,
            "action_id",
            with_plan(),
            delivered("a1", "2026-02-20"),
            police(),
        ),
        no(
            R::ActionByOtherPartner,
            "action_id",
            with_plan(),
            started("a1"),
            fm(),
        ),
        no(
            R::ActionByOtherPartner,
            "action_id",
            with_plan(),
            not_delivered("a1", "2026-02-20"),
            youth_care(),
        ),
        no(
            R::ActionByOtherPartner,
            "partner_id",
            with_plan(),
            action("a2", "g1", "hous", &["c1"], "2026-03-01", "2026-05-01"),
            police(),
        ),
        no(
            R::ActionByOtherPartner,
            "action_id",
            with_plan(),
            action_extended("a1", "2026-05-01"),
            police(),
        ),
        ok(
            R::ActionByOtherPartner,
            with_plan(),
            delivered("a1", "2026-02-20"),
            housing(),
        ),
        ok(
            R::ActionByOtherPartner,
            with_plan(),
            action("a2", "g1", "hous", &["c1"], "2026-03-01", "2026-05-01"),
            housing(),
        ),
        no(
            R::ActionAlreadyStarted,
            "action_id",
            plus(with_plan(), [started("a1")]),
            started("a1"),
            housing(),
        ),
        ok(
            R::ActionAlreadyStarted,
            with_plan(),
            started("a1"),
            housing(),
        ),
        no(
            R::ActionAlreadyFinished,
            "action_id",
            plus(with_plan(), [delivered("a1", "2026-02-20")]),
            delivered("a1", "2026-02-21"),
            housing(),
        ),
        no(
            R::ActionAlreadyFinished,
            "action_id",
            plus(with_plan(), [not_delivered("a1", "2026-02-20")]),
            started("a1"),
            housing(),
        ),
        ok(
            R::ActionAlreadyFinished,
            plus(with_plan(), [started("a1")]),
            not_delivered("a1", "2026-02-20"),
            housing(),
        ),
        no(
            R::ActionAlreadyExtended,
            "action_id",
            plus(with_plan(), [action_extended("a1", "2026-05-01")]),
            action_extended("a1", "2026-06-01"),
            housing(),
        ),
        ok(
            R::ActionAlreadyExtended,
            with_plan(),
            action_extended("a1", "2026-05-01"),
            housing(),
        ),
        no(
            R::ExtensionNotLater,
            "new_expected_end",
            with_plan(),
            action_extended("a1", "2026-04-01"),
            fm(),
        ),
        no(
            R::ActionLongerThanIntervention,
            "expected_end",
            with_plan(),
            intervention_action(InterventionCode::Iog, "2026-03-01", "2026-09-02"),
            youth_care(),
        ),
        ok(
            R::ActionLongerThanIntervention,
            with_plan(),
            intervention_action(InterventionCode::Iog, "2026-03-01", "2026-09-01"),
            youth_care(),
        ),
        ok(
            R::ActionLongerThanIntervention,
            with_plan(),
            intervention_action(InterventionCode::Ipt, "2026-03-01", "2028-03-01"),
            youth_care(),
        ),
        no(
            R::CompulsoryInterventionNeedsPressure,
            "intervention",
            with_plan(),
            intervention_action(InterventionCode::Vig, "2026-03-01", "2026-08-01"),
            youth_care(),
        ),
        ok(
            R::CompulsoryInterventionNeedsPressure,
            plus(
                with_plan(),
                [raised(Rung::Pressure, "fm-anna", "2026-02-15")],
            ),
            intervention_action(InterventionCode::Vig, "2026-03-01", "2026-08-01"),
            youth_care(),
        ),
        no(
            R::NextReviewNotAfterReview,
            "next_review",
            with_plan(),
            review(vec![], Some("2026-02-28")),
            fm(),
        ),
        ok(
            R::NextReviewNotAfterReview,
            with_plan(),
            review(vec![], Some("2026-05-28")),
            fm(),
        ),
        no(
            R::DuplicateMemberInReview,
            "zrm[1].member_id",
            with_plan(),
            review(vec![zrm("c1", 2), zrm("c1", 3)], None),
            fm(),
        ),
        no(
            R::UnknownMember,
            "zrm[0].member_id",
            with_plan(),
            review(vec![zrm("x9", 2)], None),
            fm(),
        ),
        ok(
            R::DuplicateMemberInReview,
            with_plan(),
            review(vec![zrm("c1", 2), zrm("p1", 3)], None),
            fm(),
        ),
        // monitoring
        no(R::PlanNotClosed, "type", with_plan(), monitoring(30), fm()),
        ok(
            R::PlanNotClosed,
            plus(with_plan(), [closed()]),
            monitoring(30),
            fm(),
        ),
        no(
            R::MonitoringAlreadyStarted,
            "type",
            plus(with_plan(), [closed(), monitoring(30)]),
            monitoring(30),
            fm(),
        ),
        ok(
            R::MonitoringAlreadyStarted,
            plus(with_plan(), [closed()]),
            monitoring(14),
            fm(),
        ),
        no(
            R::NoMonitoring,
            "type",
            plus(with_plan(), [closed()]),
            monitoring_visit(),
            fm(),
        ),
        ok(
            R::NoMonitoring,
            plus(with_plan(), [closed(), monitoring(30)]),
            monitoring_visit(),
            fm(),
        ),
        no(
            R::MonitoringByOtherWorker,
            "actor.person",
            plus(with_plan(), [closed()]),
            monitoring(30),
            coordinator(),
        ),
        no(
            R::MonitoringByOtherWorker,
            "actor.person",
            plus(with_plan(), [closed(), monitoring(30)]),
            monitoring_visit(),
            other_fm(),
        ),
        ok(
            R::MonitoringByOtherWorker,
            plus(with_plan(), [closed()]),
            monitoring(30),
            fm(),
        ),
        no(
            R::InvalidMonitoringPeriod,
            "visit_interval_days",
            plus(with_plan(), [closed()]),
            monitoring(0),
            fm(),
        ),
        ok(
            R::InvalidMonitoringPeriod,
            plus(with_plan(), [closed()]),
            monitoring(1),
            fm(),
        ),
        // the escalation ladder
        no(
            R::EscalationSkipsRung,
            "to",
            base_family(),
            raised(Rung::Coercion, "fm-anna", "2026-02-01"),
            fm(),
        ),
        no(
            R::EscalationSkipsRung,
            "to",
            plus(
                base_family_of(FamilyType::DirectHelp),
                [raised(Rung::Pressure, "fm-anna", "2026-02-01")],
            ),
            raised(Rung::Sanction, "fm-anna", "2026-02-02"),
            fm(),
        ),
        ok(
            R::EscalationSkipsRung,
            base_family(),
            raised(Rung::Pressure, "fm-anna", "2026-02-01"),
            fm(),
        ),
        ok(
            R::EscalationSkipsRung,
            base_family_of(FamilyType::DirectHelp),
            raised(Rung::Coercion, "fm-anna", "2026-02-01"),
            fm(),
        ),
        no(
            R::AlreadyAtTopRung,
            "to",
            plus(
                base_family(),
                [
                    raised(Rung::Pressure, "fm-anna", "2026-02-01"),
                    raised(Rung::Coercion, "fm-anna", "2026-02-02"),
                    raised(Rung::Sanction, "fm-anna", "2026-02-03"),
                ],
            ),
            raised(Rung::Sanction, "fm-anna", "2026-02-04"),
            fm(),
        ),
        ok(
            R::AlreadyAtTopRung,
            plus(
                base_family(),
                [
                    raised(Rung::Pressure, "fm-anna", "2026-02-01"),
                    raised(Rung::Coercion, "fm-anna", "2026-02-02"),
                ],
            ),
            raised(Rung::Sanction, "fm-anna", "2026-02-04"),
            fm(),
        ),
        no(
            R::NotALowerRung,
            "to",
            base_family(),
            lowered(Rung::Voluntary, "fm-anna", "2026-02-01"),
            fm(),
        ),
        ok(
            R::NotALowerRung,
            plus(
                base_family(),
                [raised(Rung::Pressure, "fm-anna", "2026-02-01")],
            ),
            lowered(Rung::Voluntary, "fm-anna", "2026-02-10"),
            fm(),
        ),
        no(
            R::EscalatedByOtherPerson,
            "by",
            base_family(),
            raised(Rung::Pressure, "fm-bert", "2026-02-01"),
            fm(),
        ),
        ok(
            R::EscalatedByOtherPerson,
            base_family(),
            raised(Rung::Pressure, "coord-1", "2026-02-01"),
            coordinator(),
        ),
        no(
            R::ReasonRequired,
            "legal_basis",
            base_family(),
            Event::EscalationRaised {
                to: Rung::Pressure,
                by: person("fm-anna"),
                reason: "no show".into(),
                legal_basis: "".into(),
                occurred_on: d("2026-02-01"),
            },
            fm(),
        ),
        // chain escalation
        no(
            R::ChainEscalationWithoutCause,
            "action_id",
            with_plan(),
            chain_raised("a1", "hous", ChainLevel::Case, "2026-02-20"),
            fm(),
        ),
        ok(
            R::ChainEscalationWithoutCause,
            with_not_delivered(),
            chain_raised("a1", "hous", ChainLevel::Case, "2026-02-21"),
            fm(),
        ),
        ok(
            R::ChainEscalationWithoutCause,
            with_plan(),
            chain_raised("a1", "hous", ChainLevel::Case, "2026-04-02"),
            fm(),
        )
        .at("2026-04-02"),
        no(
            R::ChainEscalationWrongPartner,
            "partner_id",
            with_not_delivered(),
            chain_raised("a1", "pol", ChainLevel::Case, "2026-02-21"),
            fm(),
        ),
        ok(
            R::ChainEscalationWrongPartner,
            with_not_delivered(),
            chain_raised("a1", "hous", ChainLevel::Case, "2026-02-21"),
            coordinator(),
        ),
        no(
            R::ChainEscalationSkipsLevel,
            "level",
            with_not_delivered(),
            chain_raised("a1", "hous", ChainLevel::Management, "2026-02-21"),
            fm(),
        ),
        no(
            R::ChainEscalationSkipsLevel,
            "level",
            plus(
                with_not_delivered(),
                [chain_raised("a1", "hous", ChainLevel::Case, "2026-02-21")],
            ),
            chain_raised("a1", "hous", ChainLevel::Administrative, "2026-02-22"),
            fm(),
        ),
        ok(
            R::ChainEscalationSkipsLevel,
            plus(
                with_not_delivered(),
                [chain_raised("a1", "hous", ChainLevel::Case, "2026-02-21")],
            ),
            chain_raised("a1", "hous", ChainLevel::Management, "2026-02-22"),
            fm(),
        ),
        no(
            R::NoOpenChainEscalation,
            "action_id",
            with_not_delivered(),
            chain_resolved("a1"),
            fm(),
        ),
        ok(
            R::NoOpenChainEscalation,
            plus(
                with_not_delivered(),
                [chain_raised("a1", "hous", ChainLevel::Case, "2026-02-21")],
            ),
            chain_resolved("a1"),
            fm(),
        ),
        // transparency
        no(
            R::FamilyAlreadyInformed,
            "type",
            plus(base_family(), [informed()]),
            deferred("2026-04-01"),
            fm(),
        ),
        ok(
            R::FamilyAlreadyInformed,
            base_family(),
            deferred("2026-04-01"),
            fm(),
        ),
        no(
            R::DeferralEndNotAfterOccurrence,
            "until",
            base_family(),
            deferred("2026-01-25"),
            fm(),
        ),
        ok(
            R::DeferralEndNotAfterOccurrence,
            base_family(),
            deferred("2026-01-26"),
            fm(),
        ),
        // outcomes
        no(
            R::OnlyPoliceRecordsPoliceContact,
            "actor.partner_kind",
            base_family(),
            police_contact(),
            housing(),
        ),
        no(
            R::UnknownMember,
            "member_id",
            base_family(),
            Event::PoliceContactRecorded {
                member_id: Some(mid("x9")),
                occurred_on: d("2026-02-10"),
            },
            police(),
        ),
        ok(
            R::OnlyPoliceRecordsPoliceContact,
            base_family(),
            police_contact(),
            police(),
        ),
        // erasure and retention
        no(
            R::FamilyErased,
            "type",
            erased_family(),
            home_visit("2026-02-20"),
            fm(),
        ),
        no(
            R::FamilyErased,
            "type",
            erased_family(),
            registered(FamilyType::Refresh, "2026-02-20"),
            coordinator(),
        ),
        no(
            R::FamilyErased,
            "type",
            erased_family(),
            erasure_requested("p1", "2026-02-20"),
            coordinator(),
        ),
        ok(
            R::FamilyErased,
            base_family(),
            home_visit("2026-02-20"),
            fm(),
        ),
        no(
            R::MayNotRecordErasureRequest,
            "actor.partner",
            base_family(),
            erasure_requested("p1", "2026-02-01"),
            police(),
        ),
        ok(
            R::MayNotRecordErasureRequest,
            base_family(),
            erasure_requested("p1", "2026-02-01"),
            coordinator(),
        ),
        ok(
            R::MayNotRecordErasureRequest,
            base_family(),
            erasure_requested("p1", "2026-02-01"),
            youth_care(),
        ),
        no(
            R::ErasureAlreadyRequested,
            "type",
            plus(base_family(), [erasure_requested("p1", "2026-02-01")]),
            erasure_requested("p1", "2026-02-10"),
            coordinator(),
        ),
        ok(
            R::ErasureAlreadyRequested,
            base_family(),
            erasure_requested("p1", "2026-02-10"),
            fm(),
        ),
        no(
            R::UnknownMember,
            "requester",
            base_family(),
            erasure_requested("x9", "2026-02-01"),
            coordinator(),
        ),
        no(
            R::ErasureRequesterUnder12,
            "requester",
            base_family(),
            // Born 2014: 12 at the latest on 2026-12-31.
            erasure_requested("c1", "2026-02-01"),
            coordinator(),
        ),
        ok(
            R::ErasureRequesterUnder12,
            base_family(),
            erasure_requested("c1", "2026-12-31"),
            coordinator(),
        )
        .at("2026-12-31"),
        no(
            R::ErasureRequesterNotParentOrChild,
            "requester",
            plus(base_family(), [member("o1", MemberRole::Other, 1950)]),
            erasure_requested("o1", "2026-02-01"),
            coordinator(),
        ),
        ok(
            R::ErasureRequesterNotParentOrChild,
            base_family(),
            erasure_requested("p1", "2026-02-01"),
            coordinator(),
        ),
        no(
            R::MayNotPlaceLegalHold,
            "actor.partner",
            base_family(),
            hold_placed("h1", LegalGround::CourtOrder, "2026-02-01"),
            system("school", PartnerKind::School),
        ),
        ok(
            R::MayNotPlaceLegalHold,
            base_family(),
            hold_placed("h1", LegalGround::CriminalInvestigation, "2026-02-01"),
            police(),
        ),
        ok(
            R::MayNotPlaceLegalHold,
            base_family(),
            hold_placed("h1", LegalGround::SupervisionOrder, "2026-02-01"),
            coordinator(),
        ),
        no(
            R::DuplicateHoldId,
            "hold_id",
            plus(
                base_family(),
                [
                    hold_placed("h1", LegalGround::CourtOrder, "2026-02-01"),
                    hold_lifted("h1", "2026-02-05"),
                ],
            ),
            hold_placed("h1", LegalGround::CourtOrder, "2026-02-10"),
            coordinator(),
        ),
        ok(
            R::DuplicateHoldId,
            plus(
                base_family(),
                [hold_placed("h1", LegalGround::CourtOrder, "2026-02-01")],
            ),
            hold_placed("h2", LegalGround::Guardianship, "2026-02-10"),
            coordinator(),
        ),
        no(
            R::ReasonRequired,
            "reason",
            base_family(),
            Event::LegalHoldPlaced {
                hold_id: hid("h1"),
                ground: LegalGround::Other,
                reason: " ".into(),
                occurred_on: d("2026-02-01"),
            },
            coordinator(),
        ),
        no(
            R::MayNotLiftLegalHold,
            "actor.role",
            plus(
                base_family(),
                [hold_placed(
                    "h1",
                    LegalGround::CriminalInvestigation,
                    "2026-02-01",
                )],
            ),
            hold_lifted("h1", "2026-02-10"),
            police(),
        ),
        ok(
            R::MayNotLiftLegalHold,
            plus(
                base_family(),
                [hold_placed(
                    "h1",
                    LegalGround::CriminalInvestigation,
                    "2026-02-01",
                )],
            ),
            hold_lifted("h1", "2026-02-10"),
            coordinator(),
        ),
        no(
            R::UnknownHold,
            "hold_id",
            plus(
                base_family(),
                [hold_placed("h1", LegalGround::CourtOrder, "2026-02-01")],
            ),
            hold_lifted("h9", "2026-02-10"),
            coordinator(),
        ),
        ok(
            R::UnknownHold,
            plus(
                base_family(),
                [hold_placed("h1", LegalGround::CourtOrder, "2026-02-01")],
            ),
            hold_lifted("h1", "2026-02-10"),
            coordinator(),
        ),
        no(
            R::HoldAlreadyLifted,
            "hold_id",
            plus(
                base_family(),
                [
                    hold_placed("h1", LegalGround::CourtOrder, "2026-02-01"),
                    hold_lifted("h1", "2026-02-05"),
                ],
            ),
            hold_lifted("h1", "2026-02-10"),
            coordinator(),
        ),
        ok(
            R::HoldAlreadyLifted,
            plus(
                base_family(),
                [hold_placed("h1", LegalGround::CourtOrder, "2026-02-01")],
            ),
            hold_lifted("h1", "2026-02-10"),
            coordinator(),
        ),
        no(
            R::MayNotErase,
            "actor",
            requested(),
            erased_on_request("2026-02-01", MemberRole::Parent, "2026-02-20"),
            fm(),
        ),
        no(
            R::MayNotErase,
            "actor",
            requested(),
            erased_on_request("2026-02-01", MemberRole::Parent, "2026-02-20"),
            actor("coord-2", Role::Coordinator, "yc", PartnerKind::YouthCare),
        ),
        ok(
            R::MayNotErase,
            requested(),
            erased_on_request("2026-02-01", MemberRole::Parent, "2026-02-20"),
            coordinator(),
        ),
        no(
            R::LegalHoldActive,
            "type",
            plus(
                requested(),
                [hold_placed(
                    "h1",
                    LegalGround::CriminalInvestigation,
                    "2026-02-05",
                )],
            ),
            erased_on_request("2026-02-01", MemberRole::Parent, "2026-02-20"),
            coordinator(),
        ),
        ok(
            R::LegalHoldActive,
            plus(
                requested(),
                [
                    hold_placed("h1", LegalGround::CriminalInvestigation, "2026-02-05"),
                    hold_lifted("h1", "2026-02-10"),
                ],
            ),
            erased_on_request("2026-02-01", MemberRole::Parent, "2026-02-20"),
            coordinator(),
        ),
        no(
            R::NoErasureRequest,
            "ground",
            base_family(),
            erased_on_request("2026-02-01", MemberRole::Parent, "2026-02-20"),
            coordinator(),
        ),
        ok(
            R::NoErasureRequest,
            requested(),
            erased_on_request("2026-02-01", MemberRole::Parent, "2026-02-20"),
            coordinator(),
        ),
        no(
            R::ErasureGroundMismatch,
            "ground.requested_on",
            requested(),
            erased_on_request("2026-02-02", MemberRole::Parent, "2026-02-20"),
            coordinator(),
        ),
        no(
            R::ErasureGroundMismatch,
            "ground.requester_role",
            requested(),
            erased_on_request("2026-02-01", MemberRole::Child, "2026-02-20"),
            coordinator(),
        ),
        no(
            R::ErasureGroundMismatch,
            "ground.help_ended_on",
            closed_on("2026-02-20"),
            erased_after_retention("2026-02-21", "2046-02-21"),
            coordinator(),
        )
        .at("2046-02-21"),
        ok(
            R::ErasureGroundMismatch,
            requested(),
            erased_on_request("2026-02-01", MemberRole::Parent, "2026-02-20"),
            coordinator(),
        ),
        no(
            R::RetentionNotEnded,
            "ground.help_ended_on",
            closed_on("2026-02-20"),
            erased_after_retention("2026-02-20", "2046-02-19"),
            coordinator(),
        )
        .at("2046-02-19"),
        no(
            R::RetentionNotEnded,
            "ground.help_ended_on",
            with_plan(),
            erased_after_retention("2026-02-20", "2046-02-20"),
            coordinator(),
        )
        .at("2046-02-20"),
        ok(
            R::RetentionNotEnded,
            closed_on("2026-02-20"),
            erased_after_retention("2026-02-20", "2046-02-20"),
            coordinator(),
        )
        .at("2046-02-20"),
    ]
}

/// The base family with an erasure requested by parent p1 on 2026-02-01.
fn requested() -> Vec<Event> {
    plus(base_family(), [erasure_requested("p1", "2026-02-01")])
}

/// The base family erased on that request on 2026-02-10.
fn erased_family() -> Vec<Event> {
    plus(
        requested(),
        [erased_on_request(
            "2026-02-01",
            MemberRole::Parent,
            "2026-02-10",
        )],
    )
}

/// The family of [`with_plan`], its plan closed on `on`.
fn closed_on(on: &str) -> Vec<Event> {
    plus(
        with_plan(),
        [Event::PlanClosed {
            reason: ClosureReason::GoalsAchieved,
            occurred_on: d(on),
        }],
    )
}

#[test]
fn every_case_gets_the_outcome_it_names() {
    let mut failures = Vec::new();
    for (i, case) in cases().into_iter().enumerate() {
        let label = format!(
            "case {i}: {} {}",
            if case.reject_on.is_some() {
                "rejects"
            } else {
                "accepts"
            },
            case.rule
        );
        if let Err(panic) = std::panic::catch_unwind(move || case.run()) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{label}: {msg}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_has_an_accepting_and_a_rejecting_case() {
    let cases = cases();
    let mut missing = Vec::new();
    for rule in RuleCode::ALL {
        let rejects = cases
            .iter()
            .any(|c| c.rule == *rule && c.reject_on.is_some());
        let accepts = cases
            .iter()
            .any(|c| c.rule == *rule && c.reject_on.is_none());
        if !rejects || !accepts {
            missing.push(format!("{rule}: rejects {rejects}, accepts {accepts}"));
        }
    }
    assert!(
        missing.is_empty(),
        "rules without both cases:\n{}",
        missing.join("\n")
    );
}

#[test]
fn rejection_displays_field_rule_and_words() {
    let r = given(base_family())
        .when(
            raised(Rung::Coercion, "fm-anna", "2026-02-01"),
            &fm(),
            now(),
        )
        .result
        .unwrap_err();
    let shown = r.to_string();
    assert!(shown.starts_with("to: "), "{shown}");
    assert!(shown.contains("[escalation_skips_rung]"), "{shown}");
    assert!(shown.contains("next rung is pressure"), "{shown}");
}
