//! Stream ids in NATS subjects.
//!
//! A stream id is any UTF-8 without control characters, but a subject token must not contain
//! `.`, `*`, `>` or whitespace, and keten wants subjects that tools and permissions can use. So a
//! stream id becomes one token: ASCII letters, digits, `-` and `_` stay, every other byte becomes
//! `%XX` (upper-case hex), `%` included. The mapping is injective, so one stream is exactly one
//! subject and a subject names back its stream.

use std::fmt::Write as _;

pub fn escape(stream: &str) -> String {
    let mut out = String::with_capacity(stream.len());
    for b in stream.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub fn unescape(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_one_token() {
        for id in [
            "family-1",
            "a.b",
            "*",
            ">",
            "with space",
            "100%",
            "%41",
            "ünï/cødé",
            "tab\u{2009}thin",
        ] {
            let t = escape(id);
            assert!(
                !t.contains(['.', '*', '>', ' ', '\t']),
                "{id:?} -> {t:?} is one token"
            );
            assert_eq!(unescape(&t).as_deref(), Some(id));
        }
        assert_eq!(escape("family-1"), "family-1");
        assert_eq!(escape("a.b"), "a%2Eb");
        assert_ne!(escape("%41"), escape("A"));
    }
}
