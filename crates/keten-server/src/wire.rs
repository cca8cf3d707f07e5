//! Small conversions at the server's edge: ids from request fields (with the field named on
//! failure) and commit times, through `keten_proto::convert`.

use keten_domain::FamilyId;
use keten_log::CommitTime;
use keten_proto::convert::{self, FieldError};

use crate::error::{Error, Result};

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        Error::InvalidArgument {
            field: e.field,
            description: e.description,
        }
    }
}

pub fn family_id(text: &str, field: &str) -> Result<FamilyId> {
    Ok(convert::id_from_proto(field, text)?)
}

pub fn event_id(text: &str, field: &str) -> Result<keten_log::EventId> {
    Ok(keten_log::EventId(convert::event_id_from_proto(
        field, text,
    )?))
}

pub fn timestamp(t: CommitTime) -> prost_types::Timestamp {
    convert::timestamp_from_micros(t.0)
}

pub fn commit_time(t: &prost_types::Timestamp, field: &str) -> Result<CommitTime> {
    Ok(CommitTime(convert::timestamp_to_micros(field, Some(t))?))
}
