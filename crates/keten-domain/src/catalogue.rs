//! The intervention catalogue: the interventions from the Dutch database of effective youth
//! interventions (DEJ) that the chain uses for multi-problem families, as data.
//!
//! How the rules use it (the texts leave this open; these are keten's choices):
//! - **Age outside the target range is a warning, not a rejection**
//!   ([`crate::plan::WarningKind::InterventionNotEligible`]). Members carry only a birth year,
//!   so an age is known to within a year; and parents legitimately take part in interventions
//!   aimed at their children. The family manager decides; the coordinator sees the warning.
//! - **A planned duration longer than the intervention's maximum is a rejection**
//!   ([`crate::error::RuleCode::ActionLongerThanIntervention`]): the commitment contradicts
//!   the intervention's own definition, so the partner should plan a follow-up action instead.
//!   Running past the maximum later (a late start, an extension) is a warning.
//! - **A compulsory intervention (VIG) needs the family on the pressure rung or higher**, a
//!   rejection ([`crate::error::RuleCode::CompulsoryInterventionNeedsPressure`]): compulsory
//!   help without a recorded escalation would have no legal basis in the plan.
//! - An expired recognition is shown in the plan, not warned about: the texts still describe
//!   these interventions as in use.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// A catalogue intervention, by its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InterventionCode {
    Ipt,
    Wrap,
    Iag,
    Iog,
    Jht,
    Reset,
    Wig,
    Vig,
}

impl InterventionCode {
    pub const ALL: [InterventionCode; 8] = [
        Self::Ipt,
        Self::Wrap,
        Self::Iag,
        Self::Iog,
        Self::Jht,
        Self::Reset,
        Self::Wig,
        Self::Vig,
    ];

    /// The code as stored in events ("IOG").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipt => "IPT",
            Self::Wrap => "WRAP",
            Self::Iag => "IAG",
            Self::Iog => "IOG",
            Self::Jht => "JHT",
            Self::Reset => "RESET",
            Self::Wig => "WIG",
            Self::Vig => "VIG",
        }
    }

    pub fn info(self) -> &'static Intervention {
        CATALOGUE
            .iter()
            .find(|i| i.code == self)
            .expect("every code has a catalogue entry")
    }
}

/// Whom an intervention is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// The family as a whole, children of any age.
    AnyFamily,
    /// Children whose age (in whole years) lies in `min..=max`.
    ChildrenAged { min: u8, max: u8 },
}

/// A length of time as the catalogue states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "unit", content = "count", rename_all = "snake_case")]
pub enum Span {
    Weeks(u32),
    Months(u32),
}

impl Span {
    /// The date this span after `start`; saturates rather than panics at the calendar's end.
    pub fn after(self, start: NaiveDate) -> NaiveDate {
        match self {
            Span::Weeks(w) => start
                .checked_add_days(chrono::Days::new(u64::from(w) * 7))
                .unwrap_or(NaiveDate::MAX),
            Span::Months(m) => start
                .checked_add_months(Months::new(m))
                .unwrap_or(NaiveDate::MAX),
        }
    }
}

/// The intervention's standing in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recognition {
    /// An umbrella term for a family of interventions, not one programme.
    Category,
    /// A way of working rather than a recognised programme.
    Model,
    /// Recognised as "goed onderbouwd" (well founded).
    WellFounded,
    /// Recognition expired in March 2017.
    ExpiredMarch2017,
    /// Evaluated in a pilot only.
    Pilot,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Intervention {
    pub code: InterventionCode,
    pub name: &'static str,
    pub target: Target,
    pub min_duration: Option<Span>,
    pub max_duration: Option<Span>,
    /// The usual duration where the texts give only an average ("about five months").
    pub typical_duration: Option<Span>,
    pub visit_intensity: &'static str,
    pub recognition: Recognition,
    /// Help under pressure or coercion: needs the family on the pressure rung or higher.
    pub compulsory: bool,
}

pub static CATALOGUE: [Intervention; 8] = [
    Intervention {
        code: InterventionCode::Ipt,
        name: "Intensieve Pedagogische Thuishulp",
        target: Target::AnyFamily,
        min_duration: None,
        max_duration: None,
        typical_duration: None,
        visit_intensity: "long-term, intensive help at home",
        recognition: Recognition::Category,
        compulsory: false,
    },
    Intervention {
        code: InterventionCode::Wrap,
        name: "Wraparound care",
        target: Target::AnyFamily,
        min_duration: None,
        max_duration: None,
        typical_duration: None,
        visit_intensity: "family guidance and coordination of care by one generalist",
        recognition: Recognition::Model,
        compulsory: false,
    },
    Intervention {
        code: InterventionCode::Iag,
        name: "Intensieve Ambulante Gezinsbegeleiding",
        target: Target::AnyFamily,
        min_duration: None,
        max_duration: None,
        typical_duration: Some(Span::Months(5)),
        visit_intensity: "2 home visits a week",
        recognition: Recognition::WellFounded,
        compulsory: false,
    },
    Intervention {
        code: InterventionCode::Iog,
        name: "IOG-Erger Voorkomen",
        target: Target::ChildrenAged { min: 8, max: 17 },
        min_duration: Some(Span::Weeks(6)),
        max_duration: Some(Span::Months(6)),
        typical_duration: None,
        visit_intensity: "2 to 3 home visits a week of 1 to 2 hours",
        recognition: Recognition::ExpiredMarch2017,
        compulsory: false,
    },
    Intervention {
        code: InterventionCode::Jht,
        name: "Jeugdhulp Thuis",
        target: Target::ChildrenAged { min: 0, max: 18 },
        min_duration: Some(Span::Months(6)),
        max_duration: Some(Span::Months(24)),
        typical_duration: None,
        visit_intensity: "intensive, at home",
        recognition: Recognition::ExpiredMarch2017,
        compulsory: false,
    },
    Intervention {
        code: InterventionCode::Reset,
        name: "ReSet",
        target: Target::ChildrenAged { min: 0, max: 18 },
        min_duration: None,
        max_duration: None,
        typical_duration: None,
        visit_intensity: "intensive, practical home guidance",
        recognition: Recognition::WellFounded,
        compulsory: false,
    },
    Intervention {
        code: InterventionCode::Wig,
        name: "Wijkgerichte Intensieve Gezinsbegeleiding",
        target: Target::ChildrenAged { min: 0, max: 11 },
        min_duration: None,
        max_duration: None,
        typical_duration: Some(Span::Months(12)),
        visit_intensity: "intensive ambulant help at home; activates neighbourhood networks",
        recognition: Recognition::ExpiredMarch2017,
        compulsory: false,
    },
    Intervention {
        code: InterventionCode::Vig,
        name: "Voorwaardelijke Interventie in Gezinnen",
        target: Target::AnyFamily,
        min_duration: None,
        max_duration: Some(Span::Months(6)),
        typical_duration: None,
        visit_intensity: "family coach reachable 24 hours a day, 7 days a week",
        recognition: Recognition::Pilot,
        compulsory: true,
    },
];

/// Whether a member born in `birth_year` may be of an age in `min..=max` on `on`. Only the
/// birth year is known, so the age is `year - birth_year` or one less: eligible when either fits.
pub fn age_may_fit(birth_year: i32, on: NaiveDate, min: u8, max: u8) -> bool {
    use chrono::Datelike;
    let oldest = on.year() - birth_year;
    let youngest = oldest - 1;
    youngest <= i32::from(max) && oldest >= i32::from(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_entry() {
        for code in InterventionCode::ALL {
            assert_eq!(CATALOGUE.iter().filter(|i| i.code == code).count(), 1);
        }
    }

    #[test]
    fn as_str_is_the_stored_code() {
        for code in InterventionCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn age_fit_allows_for_unknown_birthday() {
        let on = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        assert!(age_may_fit(2018, on, 8, 17)); // 7 or 8
        assert!(!age_may_fit(2019, on, 8, 17)); // 6 or 7
        assert!(age_may_fit(2008, on, 8, 17)); // 17 or 18
        assert!(!age_may_fit(2007, on, 8, 17)); // 18 or 19
    }
}
