//! Newtype ids. Every id is an opaque, non-empty string chosen by whoever mints it (a partner
//! system, the server); the domain only checks that it cannot smuggle personal data.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::IdError;

/// The longest id accepted. Long enough for a UUID with a prefix; short enough that free text
/// (a name, an address) does not fit in an id by accident.
pub const MAX_ID_LEN: usize = 64;

fn check_common(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            max: MAX_ID_LEN,
        });
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(IdError::BadCharacter { kind, character: c });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        // By hand rather than `into = "String"`, which would clone the id for every
        // serialization: ids are in every stored event and every access record.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                Self::check(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A family's pseudonym. Never a BSN: an id of exactly nine digits (with or without
    /// separators) is refused, see [`IdError::LooksLikeBsn`].
    FamilyId,
    "family id"
);
string_id!(
    /// A partner organisation (a youth care provider, a police unit, a housing corporation).
    PartnerId,
    "partner id"
);
string_id!(
    /// A member of a family, pseudonymous within the family's stream.
    MemberId,
    "member id"
);
string_id!(
    /// A goal of the plan.
    GoalId,
    "goal id"
);
string_id!(
    /// An action of the plan, committed by one partner.
    ActionId,
    "action id"
);
string_id!(
    /// A person or a system acting inside a partner organisation: a worker, a family manager,
    /// a coordinator, or a partner's system account.
    PersonId,
    "person id"
);

string_id!(
    /// A legal hold on a family's data, chosen by whoever places it, so that it can be lifted
    /// by name.
    HoldId,
    "hold id"
);

impl FamilyId {
    /// A family id travels in every shared event, so it must not be a citizen service number
    /// (BSN): those are nine digits. An id that consists of exactly nine digits, possibly with
    /// separators (`123.456.789`, `123-45-6789`), is refused rather than guessed at; pseudonyms
    /// are minted by the caller (for instance from a UUID, see [`FamilyId::from_uuid`]).
    fn check(s: &str) -> Result<(), IdError> {
        check_common("family id", s)?;
        let digits = s.chars().filter(|c| c.is_ascii_digit()).count();
        let only_digits_and_separators = s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '_' | ':'));
        if digits == 9 && only_digits_and_separators {
            return Err(IdError::LooksLikeBsn);
        }
        Ok(())
    }

    /// A pseudonym from a UUID the caller generated (the domain has no randomness).
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(format!("fam-{}", uuid.as_hyphenated()))
    }
}

macro_rules! plain_check {
    ($($name:ident, $kind:literal);*) => {
        $(impl $name {
            fn check(s: &str) -> Result<(), IdError> {
                check_common($kind, s)
            }
        })*
    };
}
plain_check!(PartnerId, "partner id"; MemberId, "member id"; GoalId, "goal id";
    ActionId, "action id"; PersonId, "person id"; HoldId, "hold id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_id_refuses_nine_digits_because_it_may_be_a_bsn() {
        assert_eq!(FamilyId::new("123456782"), Err(IdError::LooksLikeBsn));
        assert_eq!(FamilyId::new("123.456.782"), Err(IdError::LooksLikeBsn));
        assert!(FamilyId::new("12345678").is_ok());
        assert!(FamilyId::new("1234567890").is_ok());
        assert!(FamilyId::new("fam-123456782").is_ok());
    }

    #[test]
    fn ids_refuse_empty_long_and_odd_characters() {
        assert_eq!(MemberId::new(""), Err(IdError::Empty { kind: "member id" }));
        assert!(matches!(
            PartnerId::new("a".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
        assert!(matches!(
            GoalId::new("Jan Jansen"),
            Err(IdError::BadCharacter { character: ' ', .. })
        ));
    }

    #[test]
    fn ids_deserialize_through_validation() {
        let bad: Result<FamilyId, _> = serde_json::from_str("\"123456782\"");
        assert!(bad.is_err());
        let good: FamilyId = serde_json::from_str("\"fam-1\"").unwrap();
        assert_eq!(good.as_str(), "fam-1");
    }

    #[test]
    fn ids_serialize_as_their_string() {
        let goal = GoalId::new("goal-1.a").unwrap();
        assert_eq!(serde_json::to_string(&goal).unwrap(), "\"goal-1.a\"");
        let back: GoalId = serde_json::from_str(&serde_json::to_string(&goal).unwrap()).unwrap();
        assert_eq!(back, goal);
    }

    #[test]
    fn family_id_from_uuid_is_valid() {
        let id = FamilyId::from_uuid(uuid::Uuid::nil());
        assert_eq!(FamilyId::new(id.as_str()), Ok(id));
    }
}
