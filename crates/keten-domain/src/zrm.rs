//! The Zelfredzaamheidsmatrix (ZRM): self-reliance per domain, 1 (acute) to 5 (fully
//! self-reliant). Two versions are in use; each score names a domain *of its own version*, so a
//! 2010 assessment cannot carry a 2017-only domain: the domain enums differ per version.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ScoreError;
use crate::ids::MemberId;

/// A score from 1 (acute problems) to 5 (fully self-reliant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct ZrmScore(u8);

impl ZrmScore {
    pub fn new(score: u8) -> Result<Self, ScoreError> {
        if (1..=5).contains(&score) {
            Ok(Self(score))
        } else {
            Err(ScoreError::OutOfRange(score))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for ZrmScore {
    type Error = ScoreError;
    fn try_from(v: u8) -> Result<Self, ScoreError> {
        Self::new(v)
    }
}

impl From<ZrmScore> for u8 {
    fn from(s: ZrmScore) -> u8 {
        s.0
    }
}

/// Which matrix a set of scores was taken with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ZrmVersion {
    #[serde(rename = "2010")]
    V2010,
    #[serde(rename = "2017")]
    V2017,
}

impl fmt::Display for ZrmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V2010 => "2010",
            Self::V2017 => "2017",
        })
    }
}

/// The eleven domains of the 2010 matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zrm2010Domain {
    Finances,
    /// Dagbesteding: split into work/education and time use in 2017.
    DaytimeActivities,
    Housing,
    DomesticRelations,
    MentalHealth,
    PhysicalHealth,
    SubstanceUse,
    /// ADL: split into basic and instrumental ADL in 2017.
    DailyLiving,
    SocialNetwork,
    SocialParticipation,
    Justice,
}

/// The thirteen domains of the 2017 matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zrm2017Domain {
    Finances,
    WorkAndEducation,
    TimeUse,
    Housing,
    DomesticRelations,
    MentalHealth,
    PhysicalHealth,
    SubstanceUse,
    BasicAdl,
    InstrumentalAdl,
    SocialNetwork,
    SocialParticipation,
    Justice,
}

impl Zrm2010Domain {
    pub const ALL: [Zrm2010Domain; 11] = [
        Self::Finances,
        Self::DaytimeActivities,
        Self::Housing,
        Self::DomesticRelations,
        Self::MentalHealth,
        Self::PhysicalHealth,
        Self::SubstanceUse,
        Self::DailyLiving,
        Self::SocialNetwork,
        Self::SocialParticipation,
        Self::Justice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finances => "finances",
            Self::DaytimeActivities => "daytime_activities",
            Self::Housing => "housing",
            Self::DomesticRelations => "domestic_relations",
            Self::MentalHealth => "mental_health",
            Self::PhysicalHealth => "physical_health",
            Self::SubstanceUse => "substance_use",
            Self::DailyLiving => "daily_living",
            Self::SocialNetwork => "social_network",
            Self::SocialParticipation => "social_participation",
            Self::Justice => "justice",
        }
    }
}

impl Zrm2017Domain {
    pub const ALL: [Zrm2017Domain; 13] = [
        Self::Finances,
        Self::WorkAndEducation,
        Self::TimeUse,
        Self::Housing,
        Self::DomesticRelations,
        Self::MentalHealth,
        Self::PhysicalHealth,
        Self::SubstanceUse,
        Self::BasicAdl,
        Self::InstrumentalAdl,
        Self::SocialNetwork,
        Self::SocialParticipation,
        Self::Justice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finances => "finances",
            Self::WorkAndEducation => "work_and_education",
            Self::TimeUse => "time_use",
            Self::Housing => "housing",
            Self::DomesticRelations => "domestic_relations",
            Self::MentalHealth => "mental_health",
            Self::PhysicalHealth => "physical_health",
            Self::SubstanceUse => "substance_use",
            Self::BasicAdl => "basic_adl",
            Self::InstrumentalAdl => "instrumental_adl",
            Self::SocialNetwork => "social_network",
            Self::SocialParticipation => "social_participation",
            Self::Justice => "justice",
        }
    }
}

/// Scores taken with one version of the matrix; the version travels with the scores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version")]
pub enum ZrmScores {
    #[serde(rename = "2010")]
    V2010 {
        scores: BTreeMap<Zrm2010Domain, ZrmScore>,
    },
    #[serde(rename = "2017")]
    V2017 {
        scores: BTreeMap<Zrm2017Domain, ZrmScore>,
    },
}

impl ZrmScores {
    pub fn version(&self) -> ZrmVersion {
        match self {
            Self::V2010 { .. } => ZrmVersion::V2010,
            Self::V2017 { .. } => ZrmVersion::V2017,
        }
    }

    /// The scores as (domain name, score), in domain order.
    pub fn entries(&self) -> Vec<(&'static str, ZrmScore)> {
        match self {
            Self::V2010 { scores } => scores.iter().map(|(d, s)| (d.as_str(), *s)).collect(),
            Self::V2017 { scores } => scores.iter().map(|(d, s)| (d.as_str(), *s)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Self::V2010 { scores } => scores.is_empty(),
            Self::V2017 { scores } => scores.is_empty(),
        }
    }
}

/// One member's scores at one review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZrmAssessment {
    pub member_id: MemberId,
    pub matrix: ZrmScores,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_one_to_five() {
        assert!(ZrmScore::new(0).is_err());
        assert!(ZrmScore::new(6).is_err());
        assert_eq!(ZrmScore::new(5).unwrap().get(), 5);
        assert!(serde_json::from_str::<ZrmScore>("7").is_err());
    }

    #[test]
    fn versions_have_eleven_and_thirteen_domains() {
        assert_eq!(Zrm2010Domain::ALL.len(), 11);
        assert_eq!(Zrm2017Domain::ALL.len(), 13);
    }

    #[test]
    fn a_2010_assessment_cannot_name_a_2017_domain() {
        let bad = r#"{"version":"2010","scores":{"basic_adl":3}}"#;
        assert!(serde_json::from_str::<ZrmScores>(bad).is_err());
        let good = r#"{"version":"2017","scores":{"basic_adl":3}}"#;
        let s: ZrmScores = serde_json::from_str(good).unwrap();
        assert_eq!(s.version(), ZrmVersion::V2017);
    }
}
