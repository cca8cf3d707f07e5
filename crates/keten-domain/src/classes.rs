//! Data classes: every field of a family's data belongs to one, and a partner kind may read
//! only the classes its work needs (need-to-know, deny by default).
//!
//! The table of which kind reads which class, the classification of every event and plan field,
//! and the redaction of a plan live here so that the API, the access log and the docs share one
//! answer.

use serde::{Deserialize, Serialize};

/// A class of family data, the unit of need-to-know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// Who is in the family: members, roles, birth years.
    Identity,
    /// The plan's frame: phase, partners, family manager, lead, dates, reviews, transparency,
    /// monitoring, and goals and actions in the parenting and safety domains.
    Plan,
    /// The escalation ladder and chain escalations.
    Escalation,
    /// Police contacts, nuisance reports and the justice and nuisance domain.
    Police,
    /// Health: the health domain, an intellectual disability, health ZRM scores.
    Health,
    /// Housing: the housing domain and housing ZRM scores.
    Housing,
    /// School and work: the school and work domain.
    School,
    /// Finances: debts, income, the finances domain.
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
