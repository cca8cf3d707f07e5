use std::fmt;
use std::str::FromStr;

use crate::KeyError;

/// The name of one data key. Opaque to this crate (keten uses a family's stream id); validated
/// so that it is safe as a file name and as a NATS KV key: 1..=128 bytes of `[A-Za-z0-9._-]`,
/// and no empty dot-separated part (no leading or trailing `.`, no `..`), which rules out the
/// file names `.` and `..`, hidden files, and empty NATS subject tokens.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    pub const MAX_LEN: usize = 128;

    pub fn new(id: impl Into<String>) -> Result<Self, KeyError> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("empty")
        } else if id.len() > Self::MAX_LEN {
            Some("longer than 128 bytes")
        } else if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            Some("only A-Z, a-z, 0-9, '.', '_' and '-' are allowed")
        } else if id.split('.').any(str::is_empty) {
            Some("a '.' may not lead, trail or follow another '.'")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(KeyError::InvalidKeyId { id, reason }),
            None => Ok(Self(id)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:?})", self.0)
    }
}

impl FromStr for KeyId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::new(s)
    }
}

impl TryFrom<String> for KeyId {
    type Error = KeyError;
    fn try_from(s: String) -> Result<Self, KeyError> {
        Self::new(s)
    }
}

impl TryFrom<&str> for KeyId {
    type Error = KeyError;
    fn try_from(s: &str) -> Result<Self, KeyError> {
        Self::new(s)
    }
}

impl AsRef<str> for KeyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid() {
        for ok in ["a", "family-42", "family-0b3c.x_y", &"x".repeat(128)] {
            assert_eq!(KeyId::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "trailing.",
            "a..b",
            "a/b",
            "a b",
            "é",
            "a*",
            "a>",
            &"x".repeat(129),
        ] {
            assert!(KeyId::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
