//! Data classes: every field of a family's data belongs to one, and a partner kind may read
//! only the classes its work needs (need-to-know, deny by default).
//!
//! The table of which kind reads which class, the classification of every event and plan field,
//! and the redaction of a plan live here so that the API, the access log and the docs share one
//! answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::ids::{ActionId, GoalId, PartnerId};
use crate::kinds::{LifeDomain, PartnerKind};
use crate::plan::{GoalStatus, Plan, ProposalReason, Share, WarningKind};
use crate::state::FamilyState;
use crate::zrm::{Zrm2010Domain, Zrm2017Domain, ZrmScores, ZrmVersion};

/// A class of family data, the unit of need-to-know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// Who is in the family: members, roles, birth years.
    Identity,
    /// The plan's frame: type, partners, family manager, lead, dates, reviews, transparency,
    /// monitoring, erasure requests and legal holds, goals and actions in the parenting and
    /// safety domains, and domestic-relations ZRM scores.
    Plan,
    /// The escalation ladder and chain escalations.
    Escalation,
    /// Police contacts, nuisance reports, the justice and nuisance domain and justice ZRM
    /// scores.
    Police,
    /// Health: the health domain, an intellectual disability flag (and the family manager's
    /// reason, which exists only for one), health, substance-use and ADL ZRM scores.
    Health,
    /// Housing: the housing domain and housing ZRM scores.
    Housing,
    /// School and work: the school and work domain, work/education and time-use ZRM scores.
    School,
    /// Finances: debts, income, the finances domain and finances ZRM scores.
    Finances,
    /// The social network domain and social ZRM scores.
    Social,
}
crate::kinds::snake_display!(DataClass { Identity => "identity", Plan => "plan",
    Escalation => "escalation", Police => "police", Health => "health", Housing => "housing",
    School => "school", Finances => "finances", Social => "social" });

impl DataClass {
    pub const ALL: [DataClass; 9] = [
        Self::Identity,
        Self::Plan,
        Self::Escalation,
        Self::Police,
        Self::Health,
        Self::Housing,
        Self::School,
        Self::Finances,
        Self::Social,
    ];
}

impl DataClass {
    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of [`DataClass`]es: what a reader may see, or what an event or a read touches. Small
/// and `Copy`; iterates in the order of [`DataClass::ALL`]; serialized as a list of names.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ClassSet(u16);

impl ClassSet {
    pub const EMPTY: ClassSet = ClassSet(0);
    pub const ALL: ClassSet = ClassSet::of(&DataClass::ALL);
    /// The classes a goal or an action can fall in: the classes of the life domains.
    pub const DOMAINS: ClassSet = ClassSet::of(&[
        DataClass::Plan,
        DataClass::Police,
        DataClass::Health,
        DataClass::Housing,
        DataClass::School,
        DataClass::Finances,
        DataClass::Social,
    ]);

    pub const fn of(classes: &[DataClass]) -> ClassSet {
        let mut bits = 0;
        let mut i = 0;
        while i < classes.len() {
            bits |= classes[i].bit();
            i += 1;
        }
        ClassSet(bits)
    }

    pub fn contains(self, class: DataClass) -> bool {
        self.0 & class.bit() != 0
    }

    pub fn insert(&mut self, class: DataClass) {
        self.0 |= class.bit();
    }

    #[must_use]
    pub fn with(mut self, class: DataClass) -> ClassSet {
        self.insert(class);
        self
    }

    #[must_use]
    pub fn without(self, class: DataClass) -> ClassSet {
        ClassSet(self.0 & !class.bit())
    }

    #[must_use]
    pub fn union(self, other: ClassSet) -> ClassSet {
        ClassSet(self.0 | other.0)
    }

    /// Every class not in this set.
    #[must_use]
    pub fn complement(self) -> ClassSet {
        ClassSet(Self::ALL.0 & !self.0)
    }

    pub fn is_subset(self, of: ClassSet) -> bool {
        self.0 & !of.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn iter(self) -> impl Iterator<Item = DataClass> {
        DataClass::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl std::fmt::Debug for ClassSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<DataClass> for ClassSet {
    fn from_iter<I: IntoIterator<Item = DataClass>>(iter: I) -> Self {
        let mut set = ClassSet::EMPTY;
        set.extend(iter);
        set
    }
}

impl Extend<DataClass> for ClassSet {
    fn extend<I: IntoIterator<Item = DataClass>>(&mut self, iter: I) {
        for c in iter {
            self.insert(c);
        }
    }
}

impl Serialize for ClassSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ClassSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<DataClass>::deserialize(d)?.into_iter().collect())
    }
}

// --- the table ---

/// The classes a partner of `kind` may read: need-to-know, deny by default.
///
/// - youth care and WSG carry the family plan and its family manager: everything.
/// - the municipality coordinates and decides on escalation, not on care: all but health.
/// - the police: who is in the family, the plan's frame, the ladder, police data, and housing
///   (nuisance is tied to the address). No health (the rule), school or finances.
/// - housing: its own domain and finances (rent arrears are the usual cause of eviction), no
///   health (the rule) and no police data.
/// - a school: school and the social network; no police contacts (the rule), no health.
/// - any other partner: the plan's frame only.
pub fn readable(kind: PartnerKind) -> ClassSet {
    use DataClass as C;
    match kind {
        PartnerKind::YouthCare | PartnerKind::Wsg => ClassSet::ALL,
        PartnerKind::Municipality => ClassSet::ALL.without(C::Health),
        PartnerKind::Police => {
            ClassSet::of(&[C::Identity, C::Plan, C::Escalation, C::Police, C::Housing])
        }
        PartnerKind::Housing => {
            ClassSet::of(&[C::Identity, C::Plan, C::Escalation, C::Housing, C::Finances])
        }
        PartnerKind::School => {
            ClassSet::of(&[C::Identity, C::Plan, C::Escalation, C::School, C::Social])
        }
        PartnerKind::Other => ClassSet::of(&[C::Plan]),
    }
}

// --- classification ---

impl LifeDomain {
    /// The class of a goal in this domain, and of the actions working on it. Parenting and
    /// safety are the plan itself, which every partner works from.
    pub fn data_class(self) -> DataClass {
        match self {
            LifeDomain::Parenting | LifeDomain::Safety => DataClass::Plan,
            LifeDomain::Housing => DataClass::Housing,
            LifeDomain::Finances => DataClass::Finances,
            LifeDomain::Health => DataClass::Health,
            LifeDomain::SchoolWork => DataClass::School,
            LifeDomain::JusticeNuisance => DataClass::Police,
            LifeDomain::SocialNetwork => DataClass::Social,
        }
    }
}

impl Zrm2010Domain {
    /// The class of a score on this domain, as the life domain it matches.
    pub fn data_class(self) -> DataClass {
        match self {
            Zrm2010Domain::Finances => DataClass::Finances,
            Zrm2010Domain::DaytimeActivities => DataClass::School,
            Zrm2010Domain::Housing => DataClass::Housing,
            Zrm2010Domain::DomesticRelations => DataClass::Plan,
            Zrm2010Domain::MentalHealth
            | Zrm2010Domain::PhysicalHealth
            | Zrm2010Domain::SubstanceUse
            | Zrm2010Domain::DailyLiving => DataClass::Health,
            Zrm2010Domain::SocialNetwork | Zrm2010Domain::SocialParticipation => DataClass::Social,
            Zrm2010Domain::Justice => DataClass::Police,
        }
    }
}

impl Zrm2017Domain {
    /// The class of a score on this domain. Time use follows the 2010 daytime activities it
    /// was split from; the ADL domains are about a member's functioning, so health.
    pub fn data_class(self) -> DataClass {
        match self {
            Zrm2017Domain::Finances => DataClass::Finances,
            Zrm2017Domain::WorkAndEducation | Zrm2017Domain::TimeUse => DataClass::School,
            Zrm2017Domain::Housing => DataClass::Housing,
            Zrm2017Domain::DomesticRelations => DataClass::Plan,
            Zrm2017Domain::MentalHealth
            | Zrm2017Domain::PhysicalHealth
            | Zrm2017Domain::SubstanceUse
            | Zrm2017Domain::BasicAdl
            | Zrm2017Domain::InstrumentalAdl => DataClass::Health,
            Zrm2017Domain::SocialNetwork | Zrm2017Domain::SocialParticipation => DataClass::Social,
            Zrm2017Domain::Justice => DataClass::Police,
        }
    }
}

/// The class of a ZRM domain named as in a plan's [`crate::plan::ZrmLine`]; `None` for a name
/// the version does not have.
pub fn zrm_domain_class(version: ZrmVersion, domain: &str) -> Option<DataClass> {
    match version {
        ZrmVersion::V2010 => Zrm2010Domain::ALL
            .into_iter()
            .find(|d| d.as_str() == domain)
            .map(Zrm2010Domain::data_class),
        ZrmVersion::V2017 => Zrm2017Domain::ALL
            .into_iter()
            .find(|d| d.as_str() == domain)
            .map(Zrm2017Domain::data_class),
    }
}

fn zrm_classes(scores: &ZrmScores) -> ClassSet {
    match scores {
        ZrmScores::V2010 { scores } => scores.keys().map(|d| d.data_class()).collect(),
        ZrmScores::V2017 { scores } => scores.keys().map(|d| d.data_class()).collect(),
    }
}

/// The classes of the fields `event` carries, without the family's state. An event about a
/// goal or an action by id (an action committed, started, delivered; a goal achieved; a chain
/// escalation) does not name the life domain that decides its class, so it is counted in every
/// class it may be in ([`ClassSet::DOMAINS`]): an over-estimate, the safe side for deciding who
/// may see it. [`classes_of_in`] answers exactly.
pub fn classes_of(event: &Event) -> ClassSet {
    classes_of_in(&FamilyState::default(), event)
}

/// The classes of the fields `event` carries, with goals and actions looked up in `state`
/// (the family's state before or after the event; both know the goal or action). An id the
/// state does not know counts as [`ClassSet::DOMAINS`].
///
/// The match is exhaustive: a new event does not compile until it is classified here.
pub fn classes_of_in(state: &FamilyState, event: &Event) -> ClassSet {
    use DataClass as C;
    let plan = ClassSet::of(&[C::Plan]);
    let goal = |id: &GoalId| {
        state.goals.get(id).map_or(ClassSet::DOMAINS, |g| {
            ClassSet::of(&[g.life_domain.data_class()])
        })
    };
    let action = |id: &ActionId| {
        state
            .actions
            .get(id)
            .map_or(ClassSet::DOMAINS, |a| goal(&a.goal_id))
    };
    match event {
        Event::FamilyRegistered { .. }
        | Event::FamilyTypeChanged { .. }
        | Event::PartnerJoined { .. }
        | Event::PartnerLeft { .. }
        | Event::MatchSettled { .. }
        | Event::LeadPartnerSet { .. }
        | Event::PlanAgreed { .. }
        | Event::PlanExtended { .. }
        | Event::CooperationRefused { .. }
        | Event::PlanClosed { .. }
        | Event::MonitoringStarted { .. }
        | Event::MonitoringVisitRecorded { .. }
        | Event::HomeVisitRecorded { .. }
        | Event::FamilyInformed { .. }
        | Event::InformingDeferred { .. }
        | Event::ErasureRequested { .. }
        | Event::LegalHoldPlaced { .. }
        | Event::LegalHoldLifted { .. }
        | Event::FamilyErased { .. } => plan,
        // The flags are health data whatever their value: "no disability" is health data too.
        Event::MemberAdded { .. } => ClassSet::of(&[C::Identity, C::Health]),
        Event::MemberLeft { .. } => ClassSet::of(&[C::Identity]),
        // The reason is given only when youth care manages a family with a member flagged with
        // an intellectual disability, so it says that much about the family's health.
        Event::FamilyManagerAssigned { reason, .. } => match reason {
            Some(_) => ClassSet::of(&[C::Plan, C::Health]),
            None => plan,
        },
        Event::GoalSet { life_domain, .. } => ClassSet::of(&[life_domain.data_class()]),
        Event::GoalAchieved { goal_id, .. } | Event::GoalAbandoned { goal_id, .. } => goal(goal_id),
        Event::ActionCommitted { goal_id, .. } => goal(goal_id),
        Event::ActionStarted { action_id, .. }
        | Event::ActionDelivered { action_id, .. }
        | Event::ActionNotDelivered { action_id, .. }
        | Event::ActionDeadlineExtended { action_id, .. } => action(action_id),
        Event::ReviewHeld { zrm, .. } => zrm
            .iter()
            .fold(plan, |set, a| set.union(zrm_classes(&a.matrix))),
        Event::EscalationRaised { .. } | Event::EscalationLowered { .. } => {
            ClassSet::of(&[C::Escalation])
        }
        Event::ChainEscalationRaised { action_id, .. }
        | Event::ChainEscalationResolved { action_id, .. } => action(action_id).with(C::Escalation),
        Event::PoliceContactRecorded { .. } | Event::NuisanceReported { .. } => {
            ClassSet::of(&[C::Police])
        }
    }
}

// --- redaction ---

/// A plan with the fields its reader may not see left out, and the classes left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redacted {
    pub plan: Plan,
    /// Every class not allowed, whether or not the family has data in it: so the answer says
    /// what was left out without saying whether there was anything to leave out.
    pub omitted: Vec<DataClass>,
}

/// Leaves out of `plan` every field of a class not in `allowed`:
///
/// - goals of a hidden life domain, the actions on them (and their ids in members' lines),
///   ZRM lines of a hidden ZRM domain;
/// - Identity: the members; Health: members' intellectual disability flags and the family
///   manager's reason (which exists only for such a flag); Escalation: the ladder, chain
///   escalations and their counts; Police: police contacts and nuisance figures;
/// - Plan: the frame (type, partners, family manager, lead, dates, transparency, monitoring,
///   erasure request and holds). The phase, and that the family was erased, are always shown:
///   they are what a read of the family answers first.
/// - Warnings about anything hidden (a goal, an action, a member, a flag). Figures computed
///   over goals and actions (goals achieved, actions on time, chain escalations) are counted
///   again over what stays, so that a count does not betray a hidden goal either.
///
/// Known limits: free text is not classified (an escalation's reason may mention a hidden
/// matter; its author answers for that), and the *absence* of a "member without help" warning
/// can hint that a member gets help the reader cannot see; showing a false warning instead
/// would mislead the coordinator who acts on it.
pub fn redact(mut plan: Plan, allowed: ClassSet) -> Redacted {
    use DataClass as C;
    let may = |c: DataClass| allowed.contains(c);
    let omitted = allowed.complement().iter().collect();

    let goal_class: BTreeMap<GoalId, DataClass> = plan
        .goals
        .iter()
        .flat_map(|(d, gs)| gs.iter().map(|g| (g.goal_id.clone(), d.data_class())))
        .collect();
    let action_class: BTreeMap<ActionId, DataClass> = plan
        .actions
        .values()
        .flatten()
        .filter_map(|a| Some((a.action_id.clone(), *goal_class.get(&a.goal_id)?)))
        .collect();
    let goal_visible = |id: &GoalId| goal_class.get(id).is_some_and(|c| may(*c));
    let action_visible = |id: &ActionId| action_class.get(id).is_some_and(|c| may(*c));

    plan.goals.retain(|d, _| may(d.data_class()));
    for actions in plan.actions.values_mut() {
        actions.retain(|a| action_visible(&a.action_id));
    }
    plan.actions.retain(|_, actions| !actions.is_empty());
    if may(C::Identity) {
        for m in &mut plan.members {
            m.action_ids.retain(|a| action_visible(a));
            if !may(C::Health) {
                m.intellectual_disability = None;
            }
        }
    } else {
        plan.members.clear();
    }
    plan.zrm
        .retain(|z| zrm_domain_class(z.version, z.domain).is_some_and(may));

    if may(C::Escalation) {
        if let Some(e) = &mut plan.escalation
            && let Some(p) = &mut e.proposal
        {
            p.reasons.retain(|r| match r {
                ProposalReason::ActionNotDelivered { action_id, .. } => action_visible(action_id),
                ProposalReason::GoalOverdue { goal_id, .. } => goal_visible(goal_id),
                ProposalReason::FamilyRefused { .. } => may(C::Plan),
            });
            if p.reasons.is_empty() {
                e.proposal = None;
            }
        }
        plan.open_chain_escalations
            .retain(|c| action_visible(&c.action_id));
    } else {
        plan.escalation = None;
        plan.open_chain_escalations.clear();
    }

    if !may(C::Plan) {
        plan.family_type = None;
        plan.strategy = None;
        plan.urgency = None;
        plan.partners.clear();
        plan.open_match = None;
        plan.family_manager = None;
        plan.lead = None;
        plan.agreed_on = None;
        plan.horizon = None;
        plan.extended = false;
        plan.next_review = None;
        plan.closed_on = None;
        plan.transparency = None;
        plan.monitoring = None;
        plan.help_ended_on = None;
        plan.erasure = None;
        plan.legal_holds.clear();
    }
    if !may(C::Health)
        && let Some(fm) = &mut plan.family_manager
    {
        fm.reason = None;
    }

    plan.warnings.retain(|w| {
        warning_extra_classes(w.kind).is_subset(allowed)
            && w.goal_id.as_ref().is_none_or(goal_visible)
            && w.action_id.as_ref().is_none_or(action_visible)
            && (w.member_id.is_none() || may(C::Identity))
    });

    let o = &mut plan.outcomes;
    if !may(C::Police) {
        o.police_contacts_before = None;
        o.police_contacts_after = None;
        o.after_window_complete = false;
        o.nuisance_reports = None;
    }
    let visible_actions = || plan.actions.values().flatten();
    if may(C::Escalation) {
        o.chain_escalations = Some(visible_actions().map(|a| a.chain_escalations).sum());
    } else {
        o.escalations = None;
        o.de_escalations = None;
        o.chain_escalations = None;
    }
    let goals: Vec<_> = plan.goals.values().flatten().collect();
    o.goals_achieved = Share {
        count: count(
            goals
                .iter()
                .filter(|g| g.status == GoalStatus::Achieved)
                .count(),
        ),
        of: count(goals.len()),
    };
    let mut on_time: BTreeMap<PartnerId, Share> = BTreeMap::new();
    for (partner, actions) in &plan.actions {
        for in_time in actions.iter().filter_map(|a| a.on_time) {
            let share = on_time.entry(partner.clone()).or_default();
            share.of += 1;
            share.count += u32::from(in_time);
        }
    }
    o.actions_on_time = on_time;

    Redacted { plan, omitted }
}

/// The classes a warning of this kind touches beyond the plan's frame and the goal, action
/// and member it names.
fn warning_extra_classes(kind: WarningKind) -> ClassSet {
    use DataClass as C;
    match kind {
        // It says a member has an intellectual disability.
        WarningKind::FamilyManagerNotFromWsg => ClassSet::of(&[C::Plan, C::Health]),
        // Its message gives the member's birth year.
        WarningKind::InterventionNotEligible => ClassSet::of(&[C::Plan, C::Identity]),
        WarningKind::MemberWithoutHelp => ClassSet::of(&[C::Plan, C::Identity]),
        WarningKind::NoFamilyManager
        | WarningKind::FamilyNotInformed
        | WarningKind::MatchNotSettled
        | WarningKind::PlanPastHorizon
        | WarningKind::ReviewOverdue
        | WarningKind::GoalWithoutActions
        | WarningKind::ActionOverdue
        | WarningKind::ActionPastInterventionMaximum
        | WarningKind::MonitoringVisitDue
        | WarningKind::ErasureDeadline
        | WarningKind::DueForDestruction => ClassSet::of(&[C::Plan]),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
