//! The server's one error type, and the one place where errors become gRPC statuses.
//!
//! Every status carries a `google.rpc.ErrorInfo` (domain `keten`, a stable upper-case reason and
//! machine-readable metadata); malformed input also carries a `BadRequest` naming the field, and
//! a domain rejection a `PreconditionFailure` naming the rule.

use std::collections::HashMap;

use keten_domain::{Rejection, RuleCode};
use keten_log::{ExpectedVersion, GlobalPosition, StreamVersion};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The `ErrorInfo.domain` of every keten error.
pub const ERROR_DOMAIN: &str = "keten";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),

    #[error("permission denied: {0}")]
    PermissionDenied(String),

    /// Malformed input: `field` is the path inside the request, e.g. `events[2].goal_set.goal_id`.
    #[error("{field}: {description}")]
    InvalidArgument { field: String, description: String },

    /// A well-formed event the domain rules refuse. `index` is the event's place in the request.
    #[error("events[{index}].{}: {} [{}]", rejection.field, rejection.message, rejection.rule)]
    Rejected { index: usize, rejection: Rejection },

    #[error("wrong expected version: expected {expected}, but the family is at {}", version_text(*actual))]
    WrongExpectedVersion {
        expected: ExpectedVersion,
        actual: Option<StreamVersion>,
    },

    /// An event id already used for other content: the client reused an id.
    #[error(
        "event id {id} was already used for another event (at global position {stored_position})"
    )]
    IdempotencyConflict {
        id: String,
        stored_position: GlobalPosition,
    },

    #[error("family `{0}` is unknown")]
    NotFound(String),

    /// Read-your-writes: the projection did not reach the position asked for within the wait.
    #[error("the projection has not reached global position {wanted} yet (it is at {})",
        reached.map_or("the start".to_string(), |p| p.to_string()))]
    NotYet {
        wanted: GlobalPosition,
        reached: Option<GlobalPosition>,
    },

    #[error(transparent)]
    Log(#[from] keten_log::Error),

    #[error(transparent)]
    Projection(keten_projection::Error),

    #[error("invalid configuration: {0}")]
    Config(String),

    /// A proof call to a server without a checkpoint signing key.
    #[error("this server signs no checkpoints: {0}")]
    NoProofs(String),

    #[error("TLS setup: {0}")]
    Tls(String),

    #[error("I/O error on {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// The call cannot be served now (e.g. its access record could not be written).
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// The server's configuration or the family's state rules the call out.
    #[error("{0}")]
    FailedPrecondition(String),

    /// The family was erased: what the caller may know of it is when and on what ground.
    #[error("{0}")]
    Erased(String),

    #[error("internal error: {0}")]
    Internal(String),
}

fn version_text(v: Option<StreamVersion>) -> String {
    v.map_or("no stream".to_string(), |v| format!("version {v}"))
}

impl From<keten_projection::Error> for Error {
    fn from(e: keten_projection::Error) -> Self {
        match e {
            keten_projection::Error::Log(e) => Self::Log(e),
            keten_projection::Error::NotYet { wanted, reached } => Self::NotYet { wanted, reached },
            keten_projection::Error::UnknownFamily(f) => Self::NotFound(f),
            e => Self::Projection(e),
        }
    }
}

impl Error {
    /// A short, stable label for metrics and logs.
    pub fn reason(&self) -> String {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED".into(),
            Self::PermissionDenied(_) => "ROLE_NOT_ALLOWED".into(),
            Self::InvalidArgument { .. } => "MALFORMED".into(),
            Self::Rejected { rejection, .. } => rejection.rule.as_str().to_ascii_uppercase(),
            Self::WrongExpectedVersion { .. } => "WRONG_EXPECTED_VERSION".into(),
            Self::IdempotencyConflict { .. } => "EVENT_ID_REUSED".into(),
            Self::NotFound(_) => "FAMILY_NOT_FOUND".into(),
            Self::NotYet { .. } => "PROJECTION_BEHIND".into(),
            Self::Log(e) | Self::Projection(keten_projection::Error::Log(e)) => {
                log_reason(e).into()
            }
            Self::Projection(_) => "PROJECTION_FAILED".into(),
            Self::NoProofs(_) => "PROOFS_NOT_CONFIGURED".into(),
            Self::Unavailable(_) => "UNAVAILABLE".into(),
            Self::FailedPrecondition(_) => "FAILED_PRECONDITION".into(),
            Self::Erased(_) => "FAMILY_ERASED".into(),
            Self::Config(_) | Self::Tls(_) | Self::Io { .. } | Self::Internal(_) => {
                "INTERNAL".into()
            }
        }
    }

    fn code(&self) -> Code {
        match self {
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::Rejected { rejection, .. } if is_about_the_actor(rejection.rule) => {
                Code::PermissionDenied
            }
            Self::Rejected { .. } => Code::FailedPrecondition,
            Self::WrongExpectedVersion { .. } => Code::Aborted,
            Self::IdempotencyConflict { .. } => Code::AlreadyExists,
            Self::NotFound(_) => Code::NotFound,
            Self::NotYet { .. } | Self::Unavailable(_) => Code::Unavailable,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::Erased(_) => Code::NotFound,
            Self::Log(e) | Self::Projection(keten_projection::Error::Log(e)) => log_code(e),
            Self::Projection(
                keten_projection::Error::Decode { .. } | keten_projection::Error::Fold { .. },
            ) => Code::DataLoss,
            Self::Projection(keten_projection::Error::Stopped(inner)) => match &**inner {
                keten_projection::Error::Decode { .. } | keten_projection::Error::Fold { .. } => {
                    Code::DataLoss
                }
                keten_projection::Error::Log(e) => log_code(e),
                _ => Code::Unavailable,
            },
            Self::Projection(_) => Code::Internal,
            Self::NoProofs(_) => Code::FailedPrecondition,
            Self::Config(_) | Self::Tls(_) | Self::Io { .. } | Self::Internal(_) => Code::Internal,
        }
    }

    fn metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        match self {
            Self::InvalidArgument { field, .. } => {
                m.insert("field".into(), field.clone());
            }
            Self::Rejected { index, rejection } => {
                m.insert("rule".into(), rejection.rule.as_str());
                m.insert(
                    "field".into(),
                    format!("events[{index}].{}", rejection.field),
                );
                m.insert("event_index".into(), index.to_string());
            }
            Self::WrongExpectedVersion { expected, actual } => {
                m.insert("expected".into(), expected.to_string());
                m.insert(
                    "actual_version".into(),
                    actual.map_or("none".into(), |v| v.0.to_string()),
                );
            }
            Self::IdempotencyConflict {
                id,
                stored_position,
            } => {
                m.insert("event_id".into(), id.clone());
                m.insert("stored_position".into(), stored_position.0.to_string());
            }
            Self::NotFound(family) => {
                m.insert("family_id".into(), family.clone());
            }
            Self::NotYet { wanted, reached } => {
                m.insert("min_position".into(), wanted.0.to_string());
                m.insert(
                    "reached_position".into(),
                    reached.map_or("none".into(), |p| p.0.to_string()),
                );
            }
            Self::Log(keten_log::Error::Corrupt {
                file,
                offset,
                position,
                ..
            }) => {
                m.insert("file".into(), file.display().to_string());
                m.insert("offset".into(), offset.to_string());
                m.insert("position".into(), position.0.to_string());
            }
            Self::Projection(e) => {
                if let Some(p) = e.position() {
                    m.insert("position".into(), p.0.to_string());
                }
            }
            _ => {}
        }
        m
    }
}

/// The rules that refuse an event because of who publishes it (role, partner kind, person)
/// rather than the family's state: the "a role that may not do this".
fn is_about_the_actor(rule: RuleCode) -> bool {
    matches!(
        rule,
        RuleCode::AuditorMayNotPublish
            | RuleCode::RoleMayNotPublish
            | RuleCode::NotTheFamilyManager
            | RuleCode::ActorMayNotAssignFamilyManager
            | RuleCode::OnlyPoliceRecordsPoliceContact
    )
}

fn log_code(e: &keten_log::Error) -> Code {
    use keten_log::Error as L;
    match e {
        L::WrongExpectedVersion { .. } => Code::Aborted,
        L::IdempotencyConflict { .. } => Code::AlreadyExists,
        L::InvalidAppend(_) | L::InvalidStreamId(_) => Code::InvalidArgument,
        L::Corrupt { .. } => Code::DataLoss,
        L::StorageFull { .. } => Code::ResourceExhausted,
        L::Closed | L::Locked { .. } => Code::Unavailable,
        _ => Code::Internal,
    }
}

fn log_reason(e: &keten_log::Error) -> &'static str {
    use keten_log::Error as L;
    match e {
        L::WrongExpectedVersion { .. } => "WRONG_EXPECTED_VERSION",
        L::IdempotencyConflict { .. } => "EVENT_ID_REUSED",
        L::InvalidAppend(_) | L::InvalidStreamId(_) => "MALFORMED",
        L::Corrupt { .. } => "LOG_CORRUPT",
        L::StorageFull { .. } => "STORAGE_FULL",
        L::Closed | L::Locked { .. } => "LOG_UNAVAILABLE",
        _ => "STORAGE_ERROR",
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = e.code();
        if matches!(code, Code::Internal | Code::DataLoss | Code::Unavailable) {
            tracing::error!(error = %e, "request failed");
        }
        let mut details = ErrorDetails::with_error_info(e.reason(), ERROR_DOMAIN, e.metadata());
        match &e {
            Self_::InvalidArgument { field, description } => {
                details.add_bad_request_violation(field.clone(), description.clone());
            }
            Self_::Rejected { index, rejection } => {
                details.add_precondition_failure_violation(
                    rejection.rule.as_str(),
                    format!("events[{index}].{}", rejection.field),
                    rejection.message.clone(),
                );
            }
            _ => {}
        }
        Status::with_error_details(code, e.to_string(), details)
    }
}

use Error as Self_;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use keten_log::StreamId;

    use super::*;

    #[track_caller]
    fn check(e: Error, code: Code, reason: &str, key: Option<(&str, &str)>) {
        let st = Status::from(e);
        assert_eq!(st.code(), code, "{st:?}");
        let details = st.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(
            (info.domain.as_str(), info.reason.as_str()),
            (ERROR_DOMAIN, reason)
        );
        if let Some((k, v)) = key {
            assert_eq!(
                info.metadata.get(k).map(String::as_str),
                Some(v),
                "{info:?}"
            );
        }
    }

    fn rejected(rule: RuleCode) -> Error {
        Error::Rejected {
            index: 2,
            rejection: Rejection::new("action_id", rule, "not yours"),
        }
    }

    #[test]
    fn every_error_maps_to_one_status_with_details() {
        use keten_log::Error as L;
        check(
            Error::Unauthenticated("x".into()),
            Code::Unauthenticated,
            "UNAUTHENTICATED",
            None,
        );
        check(
            Error::PermissionDenied("x".into()),
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
            None,
        );
        check(
            Error::InvalidArgument {
                field: "events[0].event_id".into(),
                description: "uuid".into(),
            },
            Code::InvalidArgument,
            "MALFORMED",
            Some(("field", "events[0].event_id")),
        );
        check(
            rejected(RuleCode::ActionByOtherPartner),
            Code::FailedPrecondition,
            "ACTION_BY_OTHER_PARTNER",
            Some(("field", "events[2].action_id")),
        );
        check(
            rejected(RuleCode::RoleMayNotPublish),
            Code::PermissionDenied,
            "ROLE_MAY_NOT_PUBLISH",
            Some(("rule", "role_may_not_publish")),
        );
        check(
            Error::WrongExpectedVersion {
                expected: ExpectedVersion::Exact(StreamVersion(3)),
                actual: Some(StreamVersion(5)),
            },
            Code::Aborted,
            "WRONG_EXPECTED_VERSION",
            Some(("actual_version", "5")),
        );
        check(
            Error::IdempotencyConflict {
                id: "u".into(),
                stored_position: GlobalPosition(7),
            },
            Code::AlreadyExists,
            "EVENT_ID_REUSED",
            Some(("stored_position", "7")),
        );
        check(
            Error::NotFound("f".into()),
            Code::NotFound,
            "FAMILY_NOT_FOUND",
            Some(("family_id", "f")),
        );
        check(
            Error::NotYet {
                wanted: GlobalPosition(9),
                reached: Some(GlobalPosition(4)),
            },
            Code::Unavailable,
            "PROJECTION_BEHIND",
            Some(("reached_position", "4")),
        );
        check(
            Error::Log(L::Corrupt {
                file: PathBuf::from("log/00.log"),
                offset: 128,
                position: GlobalPosition(0),
                reason: "crc".into(),
            }),
            Code::DataLoss,
            "LOG_CORRUPT",
            Some(("offset", "128")),
        );
        check(
            Error::Log(L::StorageFull {
                path: PathBuf::from("log/00.log"),
                source: std::io::Error::from(std::io::ErrorKind::StorageFull),
            }),
            Code::ResourceExhausted,
            "STORAGE_FULL",
            None,
        );
        check(
            Error::Log(L::Closed),
            Code::Unavailable,
            "LOG_UNAVAILABLE",
            None,
        );
        check(
            Error::Log(L::WrongExpectedVersion {
                stream: StreamId::new("family-x").unwrap(),
                expected: ExpectedVersion::NoStream,
                actual: None,
            }),
            Code::Aborted,
            "WRONG_EXPECTED_VERSION",
            None,
        );
        check(
            Error::Internal("x".into()),
            Code::Internal,
            "INTERNAL",
            None,
        );
    }

    #[test]
    fn malformed_input_carries_a_bad_request_and_rejections_a_precondition_failure() {
        let st = Status::from(Error::InvalidArgument {
            field: "family_id".into(),
            description: "bsn".into(),
        });
        let d = st.get_error_details();
        assert_eq!(
            d.bad_request().unwrap().field_violations[0].field,
            "family_id"
        );
        let st = Status::from(rejected(RuleCode::ChainEscalationSkipsLevel));
        let d = st.get_error_details();
        let v = &d.precondition_failure().unwrap().violations[0];
        assert_eq!(
            (v.r#type.as_str(), v.subject.as_str()),
            ("chain_escalation_skips_level", "events[2].action_id")
        );
    }
}
