//! Conversions between the wire (`keten.v1`) and the domain (`keten_domain`).
//!
//! From the wire, conversions are fallible and reject *malformed* input only: a missing date, a
//! date that does not exist, an enum left unspecified or out of range, an id the domain cannot
//! hold, a score outside 1..=5. The answer is a [`FieldError`] that names the field by its path
//! in the proto message (`action_committed.member_ids[1]`) and the rule it breaks, so that a
//! server can answer `INVALID_ARGUMENT` with a `BadRequest` field violation. Whether a
//! well-formed event is *allowed* is the domain's business (`keten_domain::validate`).
//!
//! To the wire, conversions cannot fail.
//!
//! Dates travel as [`v1::Date`] (year, month, day); commit times as
//! `google.protobuf.Timestamp` (see [`timestamp_from_micros`]).

mod enums;
mod event;
mod plan;

use chrono::{Datelike, NaiveDate};
use keten_domain::IdError;

use crate::v1;

pub use enums::Unspecified;
pub use event::{erasure_ground_to_proto, event_from_proto, event_to_proto};
pub use plan::{plan_to_proto, redacted_to_proto, summary_to_proto};

/// Descriptions of the rules a malformed field breaks. Stable: tests and clients may match them.
pub mod rule {
    /// A required field (a message, a date, a oneof) is absent.
    pub const MUST_BE_SET: &str = "must be set";
    /// A date whose year, month and day do not form a calendar date.
    pub const MUST_BE_A_DATE: &str = "must be a date";
    /// An enum left at its zero value.
    pub const MUST_NOT_BE_UNSPECIFIED: &str = "must not be unspecified";
    /// An enum number this version of keten does not know.
    pub const MUST_BE_A_KNOWN_VALUE: &str = "must be a known value";
    /// An event id that is not a UUID (or is the nil UUID).
    pub const MUST_BE_A_UUID: &str = "must be a UUID";
    /// An id the domain refuses (empty, too long, odd characters, a BSN as family id).
    pub const MUST_BE_AN_ID: &str = "must be an id";
    /// A ZRM score outside 1..=5.
    pub const MUST_BE_A_SCORE: &str = "must be a score from 1 to 5";
    /// A number that does not fit the domain's type.
    pub const MUST_BE_IN_RANGE: &str = "must be in range";
    /// A ZRM domain scored twice in one assessment.
    pub const MUST_NOT_REPEAT: &str = "must not repeat";
    /// A timestamp before 1970 or with nanos outside 0..1e9.
    pub const MUST_BE_A_TIMESTAMP: &str = "must be a timestamp after 1970";
}

/// A malformed field in a message from the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {description}")]
pub struct FieldError {
    /// The field's path in the proto message, e.g. `action_committed.member_ids[1]`; a caller
    /// that converts a part of a larger request prefixes it with [`FieldError::within`].
    pub field: String,
    /// The rule the field breaks, starting with one of the phrases in [`rule`], sometimes
    /// followed by `: ` and details.
    pub description: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }

    /// The same error inside `prefix`: `within("events[0]")` turns `goal_set.goal_id` into
    /// `events[0].goal_set.goal_id`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// A date on the wire.
pub fn date_to_proto(date: NaiveDate) -> v1::Date {
    v1::Date {
        year: date.year(),
        month: date.month(),
        day: date.day(),
    }
}

/// A date from the wire; `field` names it in the error.
pub fn date_from_proto(field: &str, date: Option<&v1::Date>) -> Result<NaiveDate, FieldError> {
    let d = date.ok_or_else(|| FieldError::new(field, rule::MUST_BE_SET))?;
    NaiveDate::from_ymd_opt(d.year, d.month, d.day).ok_or_else(|| {
        FieldError::new(
            field,
            format!(
                "{}: {}-{:02}-{:02} is not in the calendar",
                rule::MUST_BE_A_DATE,
                d.year,
                d.month,
                d.day
            ),
        )
    })
}

/// A domain id (family, partner, member, goal, action, person) from the wire.
pub fn id_from_proto<T>(field: &str, id: impl Into<String>) -> Result<T, FieldError>
where
    T: TryFrom<String, Error = IdError>,
{
    T::try_from(id.into())
        .map_err(|e| FieldError::new(field, format!("{}: {e}", rule::MUST_BE_AN_ID)))
}

/// A client-chosen event id: a UUID in any of its text forms, not the nil UUID.
pub fn event_id_from_proto(field: &str, id: &str) -> Result<uuid::Uuid, FieldError> {
    match uuid::Uuid::try_parse(id) {
        Ok(u) if !u.is_nil() => Ok(u),
        Ok(_) => Err(FieldError::new(
            field,
            format!("{}: the nil UUID identifies nothing", rule::MUST_BE_A_UUID),
        )),
        Err(_) => Err(FieldError::new(
            field,
            format!("{}, not {id:?}", rule::MUST_BE_A_UUID),
        )),
    }
}

/// A proto enum field (an `i32` on the wire) to the domain's enum: unknown numbers and the
/// unspecified zero value are rejected.
pub fn enum_from_proto<P, D>(field: &str, value: i32) -> Result<D, FieldError>
where
    P: TryFrom<i32>,
    D: TryFrom<P, Error = Unspecified>,
{
    let p = P::try_from(value).map_err(|_| {
        FieldError::new(
            field,
            format!("{}, not {value}", rule::MUST_BE_A_KNOWN_VALUE),
        )
    })?;
    D::try_from(p).map_err(|_| FieldError::new(field, rule::MUST_NOT_BE_UNSPECIFIED))
}

/// A commit time (microseconds since the Unix epoch, UTC, as the log keeps it) on the wire.
pub fn timestamp_from_micros(micros: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: i64::try_from(micros / 1_000_000).unwrap_or(i64::MAX),
        // Below 1e9, so it fits.
        nanos: ((micros % 1_000_000) * 1_000) as i32,
    }
}

/// A timestamp from the wire as microseconds since the Unix epoch (rounded down to the
/// microsecond): the form of the log's commit times.
pub fn timestamp_to_micros(
    field: &str,
    ts: Option<&prost_types::Timestamp>,
) -> Result<u64, FieldError> {
    let ts = ts.ok_or_else(|| FieldError::new(field, rule::MUST_BE_SET))?;
    let bad = || FieldError::new(field, rule::MUST_BE_A_TIMESTAMP);
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(bad());
    }
    let secs = u64::try_from(ts.seconds).map_err(|_| bad())?;
    secs.checked_mul(1_000_000)
        .and_then(|m| m.checked_add(ts.nanos as u64 / 1_000))
        .ok_or_else(bad)
}

/// The UTC date of a time in microseconds since the Unix epoch: "today" for the plan, from the
/// wall clock or a commit time, without chrono's `clock` feature.
pub fn date_of_micros(micros: u64) -> NaiveDate {
    i64::try_from(micros)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map_or(NaiveDate::MAX, |t| t.date_naive())
}

/// Builds field paths while converting one message.
#[derive(Clone, Debug)]
struct Path(String);

impl Path {
    fn new(prefix: &str) -> Self {
        Self(prefix.to_owned())
    }

    fn at(&self, field: &str) -> String {
        if self.0.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.0)
        }
    }

    fn nested(&self, field: &str) -> Path {
        Path(self.at(field))
    }

    fn id<T: TryFrom<String, Error = IdError>>(
        &self,
        field: &str,
        id: String,
    ) -> Result<T, FieldError> {
        id_from_proto(&self.at(field), id)
    }

    fn opt_id<T: TryFrom<String, Error = IdError>>(
        &self,
        field: &str,
        id: Option<String>,
    ) -> Result<Option<T>, FieldError> {
        id.map(|i| self.id(field, i)).transpose()
    }

    fn ids<T: TryFrom<String, Error = IdError>>(
        &self,
        field: &str,
        ids: Vec<String>,
    ) -> Result<Vec<T>, FieldError> {
        ids.into_iter()
            .enumerate()
            .map(|(i, id)| id_from_proto(&format!("{}[{i}]", self.at(field)), id))
            .collect()
    }

    fn date(&self, field: &str, date: Option<v1::Date>) -> Result<NaiveDate, FieldError> {
        date_from_proto(&self.at(field), date.as_ref())
    }

    fn opt_date(
        &self,
        field: &str,
        date: Option<v1::Date>,
    ) -> Result<Option<NaiveDate>, FieldError> {
        date.map(|d| self.date(field, Some(d))).transpose()
    }

    fn dates(&self, field: &str, dates: Vec<v1::Date>) -> Result<Vec<NaiveDate>, FieldError> {
        dates
            .iter()
            .enumerate()
            .map(|(i, d)| date_from_proto(&format!("{}[{i}]", self.at(field)), Some(d)))
            .collect()
    }

    fn enumeration<P, D>(&self, field: &str, value: i32) -> Result<D, FieldError>
    where
        P: TryFrom<i32>,
        D: TryFrom<P, Error = Unspecified>,
    {
        enum_from_proto::<P, D>(&self.at(field), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_impossible_dates_are_refused() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        assert_eq!(date_from_proto("x", Some(&date_to_proto(d))), Ok(d));
        let bad = v1::Date {
            year: 2026,
            month: 2,
            day: 30,
        };
        let e = date_from_proto("x", Some(&bad)).unwrap_err();
        assert_eq!(e.field, "x");
        assert!(e.description.starts_with(rule::MUST_BE_A_DATE), "{e}");
        assert_eq!(
            date_from_proto("x", None),
            Err(FieldError::new("x", rule::MUST_BE_SET))
        );
    }

    #[test]
    fn event_ids_must_be_uuids() {
        let u = uuid::Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001);
        assert_eq!(event_id_from_proto("e", &u.to_string()), Ok(u));
        for bad in ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
            let e = event_id_from_proto("events[0].event_id", bad).unwrap_err();
            assert_eq!(e.field, "events[0].event_id");
            assert!(e.description.starts_with(rule::MUST_BE_A_UUID), "{e}");
        }
    }

    #[test]
    fn timestamps_carry_microseconds() {
        let micros = 1_764_000_000_123_456;
        let ts = timestamp_from_micros(micros);
        assert_eq!(ts.seconds, 1_764_000_000);
        assert_eq!(ts.nanos, 123_456_000);
        assert_eq!(timestamp_to_micros("t", Some(&ts)), Ok(micros));
        let before_1970 = prost_types::Timestamp {
            seconds: -1,
            nanos: 0,
        };
        assert!(timestamp_to_micros("t", Some(&before_1970)).is_err());
        let bad_nanos = prost_types::Timestamp {
            seconds: 1,
            nanos: 1_000_000_000,
        };
        assert!(timestamp_to_micros("t", Some(&bad_nanos)).is_err());
        assert_eq!(
            date_of_micros(micros),
            NaiveDate::from_ymd_opt(2025, 11, 24).unwrap()
        );
    }

    #[test]
    fn field_errors_nest() {
        let e = FieldError::new("goal_set.goal_id", rule::MUST_BE_AN_ID).within("events[2]");
        assert_eq!(e.field, "events[2].goal_set.goal_id");
        assert_eq!(e.to_string(), "events[2].goal_set.goal_id: must be an id");
    }
}
