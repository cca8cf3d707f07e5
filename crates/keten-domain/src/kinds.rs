//! The closed vocabularies of the domain: kinds of partner, roles, family types, life domains,
//! rungs of the escalation ladder and levels of chain escalation.

use serde::{Deserialize, Serialize};

macro_rules! snake_display {
    ($name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $name {
            /// The stable name, as it appears in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use snake_display;

/// What kind of organisation a partner is. Drives who may publish what (only police records
/// police contacts; family managers come from youth care or WSG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerKind {
    YouthCare,
    /// William Schrikker Groep: youth care for families where a parent or child has an
    /// intellectual disability.
    Wsg,
    Police,
    Housing,
    Municipality,
    School,
    Other,
}
snake_display!(PartnerKind { YouthCare => "youth_care", Wsg => "wsg", Police => "police",
    Housing => "housing", Municipality => "municipality", School => "school", Other => "other" });

impl PartnerKind {
    pub const ALL: [PartnerKind; 7] = [
        Self::YouthCare,
        Self::Wsg,
        Self::Police,
        Self::Housing,
        Self::Municipality,
        Self::School,
        Self::Other,
    ];

    /// Only these organisations employ family managers (gezinsmanagers).
    pub fn may_provide_family_manager(self) -> bool {
        matches!(self, Self::YouthCare | Self::Wsg)
    }
}

/// The role a person or system acts in, inside its partner organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A partner's own system publishing on behalf of the organisation.
    PartnerSystem,
    FamilyManager,
    /// The municipal or chain coordinator who oversees the approach.
    Coordinator,
    /// Reads, never writes.
    Auditor,
}
snake_display!(Role { PartnerSystem => "partner_system", FamilyManager => "family_manager",
    Coordinator => "coordinator", Auditor => "auditor" });

/// The five kinds of multi-problem family (Rotterdam practice research), each with its strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyType {
    OrdeOpZaken,
    VingerAanDePols,
    StutEnSteun,
    DirectHelp,
    Refresh,
}
snake_display!(FamilyType { OrdeOpZaken => "orde_op_zaken", VingerAanDePols => "vinger_aan_de_pols",
    StutEnSteun => "stut_en_steun", DirectHelp => "direct_help", Refresh => "refresh" });

impl FamilyType {
    pub const ALL: [FamilyType; 5] = [
        Self::OrdeOpZaken,
        Self::VingerAanDePols,
        Self::StutEnSteun,
        Self::DirectHelp,
        Self::Refresh,
    ];

    /// The strategy the practice research attaches to this type, shown in the plan so that every
    /// partner works from the same approach.
    pub fn strategy(self) -> &'static str {
        match self {
            Self::OrdeOpZaken => {
                "Vulnerable family with one or more risk factors, at risk of exclusion: teach the family to reach the services available."
            }
            Self::VingerAanDePols => {
                "No explicit request for help and no wish for active involvement: a case manager visits regularly to see whether a possible problem has become a real one, then offers help."
            }
            Self::StutEnSteun => {
                "Chronic, persistent, problematic situation: long-term, intensive guidance in organising daily life."
            }
            Self::DirectHelp => {
                "Clear, urgent problems: select the chain partners needed; the urgency of the problem decides which partner coordinates care."
            }
            Self::Refresh => {
                "Help has been closed but monitoring is still useful: monitoring by the worker who was responsible during the trajectory."
            }
        }
    }
}

/// How urgent the family's problems are. For the direct-help type, urgency decides which partner
/// coordinates (see `LeadPartnerSet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Normal,
    Urgent,
    /// Safety of a child or others is at stake now.
    Acute,
}
snake_display!(Urgency { Normal => "normal", Urgent => "urgent", Acute => "acute" });

/// The eight life domains a goal belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifeDomain {
    Parenting,
    Safety,
    Housing,
    Finances,
    Health,
    SchoolWork,
    JusticeNuisance,
    SocialNetwork,
}
snake_display!(LifeDomain { Parenting => "parenting", Safety => "safety", Housing => "housing",
    Finances => "finances", Health => "health", SchoolWork => "school_work",
    JusticeNuisance => "justice_nuisance", SocialNetwork => "social_network" });

impl LifeDomain {
    pub const ALL: [LifeDomain; 8] = [
        Self::Parenting,
        Self::Safety,
        Self::Housing,
        Self::Finances,
        Self::Health,
        Self::SchoolWork,
        Self::JusticeNuisance,
        Self::SocialNetwork,
    ];
}

/// A rung of the escalation ladder. Ordered: `Voluntary < Pressure < Coercion < Sanction`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Rung {
    #[default]
    Voluntary,
    /// Drang.
    Pressure,
    /// Dwang.
    Coercion,
    Sanction,
}
snake_display!(Rung { Voluntary => "voluntary", Pressure => "pressure", Coercion => "coercion",
    Sanction => "sanction" });

impl Rung {
    pub const ALL: [Rung; 4] = [
        Self::Voluntary,
        Self::Pressure,
        Self::Coercion,
        Self::Sanction,
    ];

    pub fn next(self) -> Option<Rung> {
        match self {
            Self::Voluntary => Some(Self::Pressure),
            Self::Pressure => Some(Self::Coercion),
            Self::Coercion => Some(Self::Sanction),
            Self::Sanction => None,
        }
    }
}

/// The level at which a partner that did not deliver is escalated to, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainLevel {
    Case,
    Management,
    Administrative,
}
snake_display!(ChainLevel { Case => "case", Management => "management",
    Administrative => "administrative" });

impl ChainLevel {
    pub const ALL: [ChainLevel; 3] = [Self::Case, Self::Management, Self::Administrative];

    pub fn next(self) -> Option<ChainLevel> {
        match self {
            Self::Case => Some(Self::Management),
            Self::Management => Some(Self::Administrative),
            Self::Administrative => None,
        }
    }
}

/// A member's place in the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Parent,
    Child,
    Other,
}
snake_display!(MemberRole { Parent => "parent", Child => "child", Other => "other" });

/// Facts about a member that the rules need. Only flags that change what the chain must do are
/// recorded, never diagnoses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberFlags {
    /// Routes the family to WSG for its family manager.
    #[serde(default)]
    pub intellectual_disability: bool,
}

/// Why a plan was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosureReason {
    GoalsAchieved,
    HandedOverToRegularCare,
    FamilyMovedAway,
    FamilyRefused,
    Other,
}
snake_display!(ClosureReason { GoalsAchieved => "goals_achieved",
    HandedOverToRegularCare => "handed_over_to_regular_care", FamilyMovedAway => "family_moved_away",
    FamilyRefused => "family_refused", Other => "other" });

/// Why a family's data must be kept although erasure is asked or due: the legal bars of the
/// Jeugdwet and the AVG (art. 17(3)). A hold with any of these grounds blocks erasure until it is
/// lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalGround {
    /// A court ordered the data kept.
    CourtOrder,
    /// A criminal investigation needs the data.
    CriminalInvestigation,
    /// A child protection measure (ondertoezichtstelling) applies; its files may be kept up to
    /// 30 years after majority.
    SupervisionOrder,
    /// Guardianship (voogdij) applies; as for a supervision order.
    Guardianship,
    /// Keeping the data matters substantially to someone other than the requester (Jeugdwet).
    SubstantialInterestOfOther,
    /// Another legal obligation, named in the reason.
    Other,
}
snake_display!(LegalGround { CourtOrder => "court_order",
    CriminalInvestigation => "criminal_investigation", SupervisionOrder => "supervision_order",
    Guardianship => "guardianship", SubstantialInterestOfOther => "substantial_interest_of_other",
    Other => "other" });

impl LegalGround {
    pub const ALL: [LegalGround; 6] = [
        Self::CourtOrder,
        Self::CriminalInvestigation,
        Self::SupervisionOrder,
        Self::Guardianship,
        Self::SubstantialInterestOfOther,
        Self::Other,
    ];
}

impl MemberRole {
    pub const ALL: [MemberRole; 3] = [Self::Parent, Self::Child, Self::Other];
}
