//! An access record's JSON, written by hand. One is written for every read and every publish,
//! and serde's derived serializer (with chrono's timestamp formatting through `fmt`) cost more
//! than the rest of the record's append; this writes the same bytes in a fraction of that time.
//! `serde_json::to_vec(&record)` stays the definition: a property test holds the two equal, and
//! anything this writer does not handle itself (a year outside 0–9999, a leap second) it hands
//! to serde_json.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::record::{AccessRecord, AccessResult};

/// Appends `rec` as JSON to `out`, byte for byte as `serde_json::to_writer(out, rec)` would.
pub(crate) fn write_record(out: &mut Vec<u8>, rec: &AccessRecord) {
    out.extend_from_slice(b"{\"at\":");
    write_time(out, &rec.at);
    field(out, "person");
    string(out, rec.person.as_str());
    field(out, "role");
    string(out, rec.role.as_str());
    field(out, "partner");
    string(out, rec.partner.as_str());
    field(out, "partner_kind");
    string(out, rec.partner_kind.as_str());
    field(out, "partner_name");
    string(out, &rec.partner_name);
    if let Some(family) = &rec.family {
        field(out, "family");
        string(out, family.as_str());
    }
    field(out, "classes");
    out.push(b'[');
    for (i, class) in rec.classes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, class.as_str());
    }
    out.push(b']');
    field(out, "action");
    string(out, rec.action.as_str());
    field(out, "method");
    string(out, &rec.method);
    if let Some(purpose) = &rec.purpose {
        field(out, "purpose");
        string(out, purpose);
    }
    field(out, "result");
    match &rec.result {
        AccessResult::Granted => out.extend_from_slice(b"{\"outcome\":\"granted\"}"),
        AccessResult::Refused { reason } => {
            out.extend_from_slice(b"{\"outcome\":\"refused\",\"reason\":");
            string(out, reason);
            out.push(b'}');
        }
    }
    if let Some(emergency) = &rec.emergency {
        field(out, "emergency");
        string(out, emergency);
    }
    field(out, "families_returned");
    out.extend_from_slice(rec.families_returned.to_string().as_bytes());
    out.push(b'}');
}

/// `,"name":`
fn field(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// A JSON string as serde_json escapes it: `"` and `\`, and control characters (the short
/// forms where JSON has them, else `\u00XX` in lower-case hex); everything else as it is.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0C => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x00..=0x1F => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// chrono's serde form of a UTC time: RFC 3339 with `Z`, the fraction in 0, 3, 6 or 9 digits,
/// as few as show it exactly (`SecondsFormat::AutoSi`).
fn write_time(out: &mut Vec<u8>, at: &DateTime<Utc>) {
    let year = at.year();
    let nanos = at.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        serde_json::to_writer(&mut *out, at).expect("a time always serializes");
        return;
    }
    out.push(b'"');
    digits(out, year as u32, 4);
    out.push(b'-');
    digits(out, at.month(), 2);
    out.push(b'-');
    digits(out, at.day(), 2);
    out.push(b'T');
    digits(out, at.hour(), 2);
    out.push(b':');
    digits(out, at.minute(), 2);
    out.push(b':');
    digits(out, at.second(), 2);
    if nanos != 0 {
        out.push(b'.');
        if nanos.is_multiple_of(1_000_000) {
            digits(out, nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            digits(out, nanos / 1_000, 6);
        } else {
            digits(out, nanos, 9);
        }
    }
    out.extend_from_slice(b"Z\"");
}

/// `n` in `width` decimal digits, zero-padded (`n` has no more).
fn digits(out: &mut Vec<u8>, mut n: u32, width: usize) {
    let mut buf = [b'0'; 9];
    for d in buf[..width].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use keten_domain::{DataClass, FamilyId, PartnerId, PartnerKind, PersonId, Role};
    use proptest::prelude::*;

    use super::*;
    use crate::record::AccessAction;

    /// Any text, control characters, quotes, backslashes and non-ASCII included.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,24}",
            "[\\x00-\\x1f\"\\\\a\\u{7f}\\u{e9}\\u{2028}\\u{1f600}]{0,12}",
            any::<String>(),
        ]
    }

    fn id<T: std::fmt::Debug>(make: fn(String) -> Option<T>) -> impl Strategy<Value = T> {
        "[a-zA-Z0-9._:-]{1,24}".prop_filter_map("a valid id", make)
    }

    fn time() -> impl Strategy<Value = DateTime<Utc>> {
        // Whole seconds, milli-, micro- and nanoseconds, over chrono's whole range (years
        // outside 0–9999 take serde_json's path).
        let secs = prop_oneof![0i64..4_102_444_800, -400_000_000_000i64..400_000_000_000];
        let nanos = prop_oneof![
            Just(0u32),
            (0u32..1000).prop_map(|m| m * 1_000_000),
            (0u32..1_000_000).prop_map(|u| u * 1_000),
            0u32..1_000_000_000,
        ];
        (secs, nanos).prop_filter_map("a time chrono holds", |(s, n)| {
            Utc.timestamp_opt(s, n).single()
        })
    }

    fn record() -> impl Strategy<Value = AccessRecord> {
        (
            (
                time(),
                id(|s| PersonId::new(s).ok()),
                prop::sample::select(vec![
                    Role::PartnerSystem,
                    Role::FamilyManager,
                    Role::Coordinator,
                    Role::Auditor,
                ]),
                id(|s| PartnerId::new(s).ok()),
                prop::sample::select(PartnerKind::ALL.to_vec()),
                text(),
                prop::option::of(id(|s| FamilyId::new(s).ok())),
            ),
            (
                prop::collection::vec(prop::sample::select(DataClass::ALL.to_vec()), 0..4),
                prop::sample::select(AccessAction::ALL.to_vec()),
                text(),
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(text()),
                any::<u32>(),
            ),
        )
            .prop_map(
                |(
                    (at, person, role, partner, partner_kind, partner_name, family),
                    (classes, action, method, purpose, refused, emergency, families_returned),
                )| AccessRecord {
                    at,
                    person,
                    role,
                    partner,
                    partner_kind,
                    partner_name,
                    family,
                    classes,
                    action,
                    method,
                    purpose,
                    result: refused.map_or(AccessResult::Granted, |reason| AccessResult::Refused {
                        reason,
                    }),
                    emergency,
                    families_returned,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn writes_what_serde_json_writes(rec in record()) {
            let mut ours = Vec::new();
            write_record(&mut ours, &rec);
            let theirs = serde_json::to_vec(&rec).unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        }
    }
}
