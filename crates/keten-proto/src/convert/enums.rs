//! The closed vocabularies, both ways. To the wire every domain value has a proto value; from
//! the wire the unspecified zero value is refused with [`Unspecified`].

use crate::v1;

/// The domain types, under one name each (several share a name with their proto message).
mod d {
    pub use keten_domain::catalogue::{InterventionCode, Recognition};
    pub use keten_domain::classes::DataClass;
    pub use keten_domain::kinds::{
        ChainLevel, ClosureReason, FamilyType, LegalGround, LifeDomain, MemberRole, PartnerKind,
        Role, Rung, Urgency,
    };
    pub use keten_domain::plan::{GoalStatus, LeadBasis, Phase, WarningKind};
    pub use keten_domain::state::{ActionStatus, Direction};
    pub use keten_domain::zrm::{Zrm2010Domain, Zrm2017Domain, ZrmVersion};
}

/// A proto enum at its zero value, `..._UNSPECIFIED`, which no domain value corresponds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must not be unspecified")]
pub struct Unspecified;

macro_rules! enums {
    ($($proto:ident <=> $domain:ident { $($p:ident <=> $d:ident),* $(,)? })*) => {$(
        impl From<d::$domain> for v1::$proto {
            fn from(value: d::$domain) -> Self {
                match value {
                    $(d::$domain::$d => Self::$p,)*
                }
            }
        }

        impl TryFrom<v1::$proto> for d::$domain {
            type Error = Unspecified;
            fn try_from(value: v1::$proto) -> Result<Self, Unspecified> {
                match value {
                    v1::$proto::Unspecified => Err(Unspecified),
                    $(v1::$proto::$p => Ok(d::$domain::$d),)*
                }
            }
        }
    )*};
}

enums! {
    PartnerKind <=> PartnerKind {
        YouthCare <=> YouthCare, Wsg <=> Wsg, Police <=> Police, Housing <=> Housing,
        Municipality <=> Municipality, School <=> School, Other <=> Other,
    }
    Role <=> Role {
        PartnerSystem <=> PartnerSystem, FamilyManager <=> FamilyManager,
        Coordinator <=> Coordinator, Auditor <=> Auditor,
    }
    FamilyType <=> FamilyType {
        OrdeOpZaken <=> OrdeOpZaken, VingerAanDePols <=> VingerAanDePols,
        StutEnSteun <=> StutEnSteun, DirectHelp <=> DirectHelp, Refresh <=> Refresh,
    }
    Urgency <=> Urgency { Normal <=> Normal, Urgent <=> Urgent, Acute <=> Acute }
    LifeDomain <=> LifeDomain {
        Parenting <=> Parenting, Safety <=> Safety, Housing <=> Housing, Finances <=> Finances,
        Health <=> Health, SchoolWork <=> SchoolWork, JusticeNuisance <=> JusticeNuisance,
        SocialNetwork <=> SocialNetwork,
    }
    Rung <=> Rung {
        Voluntary <=> Voluntary, Pressure <=> Pressure, Coercion <=> Coercion,
        Sanction <=> Sanction,
    }
    ChainLevel <=> ChainLevel {
        Case <=> Case, Management <=> Management, Administrative <=> Administrative,
    }
    MemberRole <=> MemberRole { Parent <=> Parent, Child <=> Child, Other <=> Other }
    ClosureReason <=> ClosureReason {
        GoalsAchieved <=> GoalsAchieved, HandedOverToRegularCare <=> HandedOverToRegularCare,
        FamilyMovedAway <=> FamilyMovedAway, FamilyRefused <=> FamilyRefused, Other <=> Other,
    }
    InterventionCode <=> InterventionCode {
        Ipt <=> Ipt, Wrap <=> Wrap, Iag <=> Iag, Iog <=> Iog, Jht <=> Jht, Reset <=> Reset,
        Wig <=> Wig, Vig <=> Vig,
    }
    Zrm2010Domain <=> Zrm2010Domain {
        Finances <=> Finances, DaytimeActivities <=> DaytimeActivities, Housing <=> Housing,
        DomesticRelations <=> DomesticRelations, MentalHealth <=> MentalHealth,
        PhysicalHealth <=> PhysicalHealth, SubstanceUse <=> SubstanceUse,
        DailyLiving <=> DailyLiving, SocialNetwork <=> SocialNetwork,
        SocialParticipation <=> SocialParticipation, Justice <=> Justice,
    }
    Zrm2017Domain <=> Zrm2017Domain {
        Finances <=> Finances, WorkAndEducation <=> WorkAndEducation, TimeUse <=> TimeUse,
        Housing <=> Housing, DomesticRelations <=> DomesticRelations,
        MentalHealth <=> MentalHealth, PhysicalHealth <=> PhysicalHealth,
        SubstanceUse <=> SubstanceUse, BasicAdl <=> BasicAdl,
        InstrumentalAdl <=> InstrumentalAdl, SocialNetwork <=> SocialNetwork,
        SocialParticipation <=> SocialParticipation, Justice <=> Justice,
    }
    ZrmVersion <=> ZrmVersion { V2010 <=> V2010, V2017 <=> V2017 }
    Phase <=> Phase {
        NotRegistered <=> NotRegistered, Intake <=> Intake, PlanActive <=> PlanActive,
        Closed <=> Closed, Monitoring <=> Monitoring, Finished <=> Finished,
        Erased <=> Erased,
    }
    LeadBasis <=> LeadBasis {
        DirectHelpUrgency <=> DirectHelpUrgency, FamilyManager <=> FamilyManager,
        MatchSettlement <=> MatchSettlement,
    }
    GoalStatus <=> GoalStatus { Open <=> Open, Achieved <=> Achieved, Abandoned <=> Abandoned }
    ActionStatus <=> ActionStatus {
        Committed <=> Committed, Started <=> Started, Delivered <=> Delivered,
        NotDelivered <=> NotDelivered,
    }
    Recognition <=> Recognition {
        Category <=> Category, Model <=> Model, WellFounded <=> WellFounded,
        ExpiredMarch2017 <=> ExpiredMarch2017, Pilot <=> Pilot,
    }
    EscalationDirection <=> Direction { Raised <=> Raised, Lowered <=> Lowered }
    WarningKind <=> WarningKind {
        NoFamilyManager <=> NoFamilyManager, FamilyManagerNotFromWsg <=> FamilyManagerNotFromWsg,
        FamilyNotInformed <=> FamilyNotInformed, MatchNotSettled <=> MatchNotSettled,
        PlanPastHorizon <=> PlanPastHorizon, ReviewOverdue <=> ReviewOverdue,
        MemberWithoutHelp <=> MemberWithoutHelp, GoalWithoutActions <=> GoalWithoutActions,
        ActionOverdue <=> ActionOverdue,
        ActionPastInterventionMaximum <=> ActionPastInterventionMaximum,
        InterventionNotEligible <=> InterventionNotEligible,
        MonitoringVisitDue <=> MonitoringVisitDue,
        ErasureDeadline <=> ErasureDeadline, DueForDestruction <=> DueForDestruction,
    }
    DataClass <=> DataClass {
        Identity <=> Identity, Plan <=> Plan, Escalation <=> Escalation, Police <=> Police,
        Health <=> Health, Housing <=> Housing, School <=> School, Finances <=> Finances,
        Social <=> Social,
    }
    LegalGround <=> LegalGround {
        CourtOrder <=> CourtOrder, CriminalInvestigation <=> CriminalInvestigation,
        SupervisionOrder <=> SupervisionOrder, Guardianship <=> Guardianship,
        SubstantialInterestOfOther <=> SubstantialInterestOfOther, Other <=> Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{FieldError, enum_from_proto, rule};

    /// Every value of a proto enum other than unspecified maps to a distinct domain value and
    /// back; so a value added on one side only fails here (or does not compile above).
    fn check_all<P, D>(values: impl IntoIterator<Item = i32>)
    where
        P: TryFrom<i32> + From<D> + Into<i32> + Copy + std::fmt::Debug,
        D: TryFrom<P, Error = Unspecified> + Copy + PartialEq + std::fmt::Debug,
    {
        let mut seen = Vec::new();
        for v in values {
            let Ok(p) = P::try_from(v) else { break };
            match D::try_from(p) {
                Ok(dv) => {
                    assert!(!seen.contains(&dv), "{dv:?} twice");
                    seen.push(dv);
                    assert_eq!(P::from(dv).into(), v);
                }
                Err(Unspecified) => assert_eq!(v, 0),
            }
        }
        assert!(!seen.is_empty());
    }

    #[test]
    fn every_enum_round_trips() {
        check_all::<v1::PartnerKind, d::PartnerKind>(0..);
        check_all::<v1::Role, d::Role>(0..);
        check_all::<v1::FamilyType, d::FamilyType>(0..);
        check_all::<v1::Urgency, d::Urgency>(0..);
        check_all::<v1::LifeDomain, d::LifeDomain>(0..);
        check_all::<v1::Rung, d::Rung>(0..);
        check_all::<v1::ChainLevel, d::ChainLevel>(0..);
        check_all::<v1::MemberRole, d::MemberRole>(0..);
        check_all::<v1::ClosureReason, d::ClosureReason>(0..);
        check_all::<v1::InterventionCode, d::InterventionCode>(0..);
        check_all::<v1::Zrm2010Domain, d::Zrm2010Domain>(0..);
        check_all::<v1::Zrm2017Domain, d::Zrm2017Domain>(0..);
        check_all::<v1::ZrmVersion, d::ZrmVersion>(0..);
        check_all::<v1::Phase, d::Phase>(0..);
        check_all::<v1::LeadBasis, d::LeadBasis>(0..);
        check_all::<v1::GoalStatus, d::GoalStatus>(0..);
        check_all::<v1::ActionStatus, d::ActionStatus>(0..);
        check_all::<v1::Recognition, d::Recognition>(0..);
        check_all::<v1::EscalationDirection, d::Direction>(0..);
        check_all::<v1::WarningKind, d::WarningKind>(0..);
        check_all::<v1::DataClass, d::DataClass>(0..);
        check_all::<v1::LegalGround, d::LegalGround>(0..);
    }

    #[test]
    fn domain_lists_are_covered() {
        assert_eq!(d::PartnerKind::ALL.len(), 7);
        for k in d::PartnerKind::ALL {
            assert_eq!(d::PartnerKind::try_from(v1::PartnerKind::from(k)), Ok(k));
        }
        for c in d::InterventionCode::ALL {
            // The proto names are the stored codes.
            assert_eq!(
                v1::InterventionCode::from(c).as_str_name(),
                format!("INTERVENTION_CODE_{}", c.as_str())
            );
        }
        for c in d::DataClass::ALL {
            // The proto names are the domain's names.
            assert_eq!(
                v1::DataClass::from(c).as_str_name(),
                format!("DATA_CLASS_{}", c.as_str().to_uppercase())
            );
        }
        for g in d::LegalGround::ALL {
            assert_eq!(
                v1::LegalGround::from(g).as_str_name(),
                format!("LEGAL_GROUND_{}", g.as_str().to_uppercase())
            );
        }
        for r in d::Rung::ALL {
            assert_eq!(
                v1::Rung::from(r).as_str_name(),
                format!("RUNG_{}", r.as_str().to_uppercase())
            );
        }
    }

    #[test]
    fn unspecified_and_unknown_values_are_refused() {
        assert_eq!(
            enum_from_proto::<v1::Rung, d::Rung>("to", 0),
            Err(FieldError::new("to", rule::MUST_NOT_BE_UNSPECIFIED))
        );
        let e = enum_from_proto::<v1::Rung, d::Rung>("to", 99).unwrap_err();
        assert_eq!(e.field, "to");
        assert!(e.description.starts_with(rule::MUST_BE_A_KNOWN_VALUE));
    }
}
