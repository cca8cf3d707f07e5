//! Erasure and retention: the dates the law sets, and the policy a deployment may change.
//!
//! The texts: youth-care files are kept at least 20 years after help ends (Jeugdwet); a parent,
//! or a child from 12, may ask for early destruction, honoured within 3 months unless a legal bar
//! applies (AVG art. 17, Jeugdwet). The events are in [`crate::event`], the rules in
//! [`crate::rules`], the warnings in [`crate::plan`].

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// An erasure request is honoured within this many months.
pub const ERASURE_DEADLINE_MONTHS: u32 = 3;

/// A child may ask for erasure from this age.
pub const CHILD_REQUEST_AGE: i32 = 12;

/// What a deployment may set about retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Years after the end of help after which a family is due for destruction. The Jeugdwet
    /// says 20 (its original text said 15); a municipality may keep longer, never shorter.
    pub retention_years: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            retention_years: 20,
        }
    }
}

impl Policy {
    /// The first day a family whose help ended on `help_ended_on` is due for destruction.
    pub fn destruction_due(&self, help_ended_on: NaiveDate) -> NaiveDate {
        help_ended_on
            .checked_add_months(Months::new(self.retention_years.saturating_mul(12)))
            .unwrap_or(NaiveDate::MAX)
    }
}

/// The day by which an erasure requested on `requested_on` must be carried out.
pub fn erasure_due(requested_on: NaiveDate) -> NaiveDate {
    requested_on
        .checked_add_months(Months::new(ERASURE_DEADLINE_MONTHS))
        .unwrap_or(NaiveDate::MAX)
}

/// Whether someone born in `birth_year` is certainly `age` years old on `on`. Only the birth
/// year is known (no more personal data than the rules need), so the birthday is taken as the
/// last day of that year: the answer is never yes for someone who might be younger. A child
/// born early in the year waits at most until 31 December; a parent may ask meanwhile.
pub fn certainly_aged(birth_year: i32, age: i32, on: NaiveDate) -> bool {
    match NaiveDate::from_ymd_opt(birth_year.saturating_add(age), 12, 31) {
        Some(latest_birthday) => on >= latest_birthday,
        None => on.year() > birth_year.saturating_add(age),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn a_child_is_certainly_twelve_only_from_the_last_day_of_the_year_it_turns_twelve() {
        assert!(!certainly_aged(2014, 12, d(2026, 12, 30)));
        assert!(certainly_aged(2014, 12, d(2026, 12, 31)));
        assert!(certainly_aged(2014, 12, d(2027, 1, 1)));
        assert!(!certainly_aged(2015, 12, d(2026, 12, 31)));
    }

    #[test]
    fn deadlines() {
        assert_eq!(erasure_due(d(2026, 11, 30)), d(2027, 2, 28));
        assert_eq!(
            Policy::default().destruction_due(d(2026, 2, 1)),
            d(2046, 2, 1)
        );
        let short = Policy { retention_years: 1 };
        assert_eq!(short.destruction_due(d(2024, 2, 29)), d(2025, 2, 28));
    }
}
