//! The audit bundle: one stream's events as stored, each with its inclusion proof under one
//! signed checkpoint, as versioned JSON; and [`verify_bundle`], which needs nothing but the
//! bundle and the log's public key.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::VerifyingKey;
use keten_log::{GlobalPosition, RecordedEvent, StreamId};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::error::{Error, Result};
use crate::hash::{Hash, to_hex};
use crate::leaf::LeafFields;
use crate::tree::TreeBuilder;
use crate::verify::verify_inclusion;

/// The `format` field of every bundle.
pub const BUNDLE_FORMAT: &str = "keten-audit-bundle";
/// The `version` field this crate writes and reads.
pub const BUNDLE_VERSION: u32 = 1;

/// One stream's events under a signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub version: u32,
    /// The stream (the family) the bundle is about.
    pub stream: String,
    /// The signed note, as text.
    pub checkpoint: SignedCheckpoint,
    /// The stream's events in global order, from its first.
    pub events: Vec<BundleEvent>,
    /// Decrypted payloads for an authorised auditor. Not covered by any proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<Vec<PlaintextPayload>>,
}

/// An event exactly as stored, and its audit path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEvent {
    pub position: u64,
    pub stream: String,
    pub version: u64,
    pub id: uuid::Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Microseconds since the Unix epoch, UTC.
    pub committed_at: u64,
    #[serde(with = "base64_bytes")]
    pub metadata: Vec<u8>,
    /// The stored payload: ciphertext once payloads are encrypted.
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    /// From the leaf's sibling up, hex.
    #[serde(with = "hex_hashes")]
    pub inclusion_proof: Vec<Hash>,
}

/// A decrypted payload, by the global position of its event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaintextPayload {
    pub position: u64,
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
}

impl BundleEvent {
    pub fn leaf_fields(&self) -> LeafFields<'_> {
        LeafFields {
            position: self.position,
            stream: &self.stream,
            version: self.version,
            event_id: *self.id.as_bytes(),
            event_type: &self.event_type,
            committed_at: self.committed_at,
            metadata: &self.metadata,
            payload: &self.payload,
        }
    }

    pub fn leaf_hash(&self) -> Hash {
        self.leaf_fields().hash()
    }
}

impl Bundle {
    /// A bundle of `events` (one stream's, in global order) under `checkpoint`, with proofs from
    /// `tree`. Refuses when the tree does not back the checkpoint or an event differs from its
    /// leaf: a server must not hand out a bundle that it knows will not verify.
    pub fn build(
        tree: &TreeBuilder,
        checkpoint: SignedCheckpoint,
        stream: &StreamId,
        events: &[RecordedEvent],
    ) -> Result<Self> {
        let size = checkpoint.checkpoint.tree_size;
        if tree.root_at(size)? != checkpoint.checkpoint.root_hash {
            return Err(Error::BundleMismatch(format!(
                "the checkpoint's root is not this tree's root at size {size}"
            )));
        }
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let position = event.position.0;
            if event.stream != *stream {
                return Err(Error::BundleMismatch(format!(
                    "event at position {position} is in stream `{}`, not `{stream}`",
                    event.stream
                )));
            }
            if position >= size {
                return Err(Error::BundleMismatch(format!(
                    "event at position {position} is not under the checkpoint (tree size {size})"
                )));
            }
            if tree.leaf_hash(position) != Some(crate::leaf::leaf_hash(event)) {
                return Err(Error::BundleMismatch(format!(
                    "event at position {position} differs from the tree's leaf there"
                )));
            }
            out.push(BundleEvent {
                position,
                stream: event.stream.as_str().to_owned(),
                version: event.version.0,
                id: event.id.0,
                event_type: event.event_type.as_str().to_owned(),
                committed_at: event.committed_at.0,
                metadata: event.metadata.clone(),
                payload: event.payload.clone(),
                inclusion_proof: tree.inclusion_proof(position, size)?,
            });
        }
        Ok(Self {
            format: BUNDLE_FORMAT.to_owned(),
            version: BUNDLE_VERSION,
            stream: stream.as_str().to_owned(),
            checkpoint,
            events: out,
            plaintext: None,
        })
    }

    /// Adds the decrypted payloads, by global position.
    pub fn with_plaintext(mut self, payloads: Vec<(GlobalPosition, Vec<u8>)>) -> Self {
        self.plaintext = Some(
            payloads
                .into_iter()
                .map(|(position, payload)| PlaintextPayload {
                    position: position.0,
                    payload,
                })
                .collect(),
        );
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a bundle always serialises")
    }

    /// Parses a bundle of a version this crate knows.
    pub fn from_json(json: &str) -> Result<Self> {
        let bundle: Self = serde_json::from_str(json)?;
        if bundle.format != BUNDLE_FORMAT {
            return Err(Error::MalformedBundle(format!(
                "format `{}` is not `{BUNDLE_FORMAT}`",
                bundle.format
            )));
        }
        if bundle.version != BUNDLE_VERSION {
            return Err(Error::MalformedBundle(format!(
                "version {} is not {BUNDLE_VERSION}, the one this verifier knows",
                bundle.version
            )));
        }
        Ok(bundle)
    }
}

/// What [`verify_bundle`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The bundle's format and version.
    Format,
    /// The checkpoint is signed by the given key.
    Signature,
    /// Every event is of the bundle's stream.
    Stream,
    /// Every event is in the log under the checkpoint's root.
    Inclusion,
    /// Global positions strictly increase.
    Order,
    /// Stream versions run 0, 1, 2, ... without gap.
    Versions,
    /// Every plaintext belongs to an event of the bundle.
    Plaintext,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Format => "format",
            Self::Signature => "checkpoint signature",
            Self::Stream => "stream",
            Self::Inclusion => "inclusion",
            Self::Order => "order",
            Self::Versions => "versions",
            Self::Plaintext => "plaintext",
        })
    }
}

/// The event a failure is about: its place in the bundle and what it claims to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRef {
    /// Index in the bundle's `events`, from 0.
    pub index: usize,
    pub position: u64,
    pub version: u64,
    pub id: uuid::Uuid,
}

impl fmt::Display for EventRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event #{} (position {}, version {}, id {})",
            self.index, self.position, self.version, self.id
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub check: Check,
    pub event: Option<EventRef>,
    pub reason: String,
}

/// What holds and what does not. [`BundleReport::holds`] is the verdict; `Display` prints it
/// for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleReport {
    pub stream: String,
    pub checkpoint: Checkpoint,
    pub key_id: [u8; 4],
    pub events: usize,
    /// Events whose inclusion proof verified under the checkpoint's root.
    pub events_included: usize,
    pub plaintexts: usize,
    pub failures: Vec<Failure>,
}

impl BundleReport {
    /// True when every check passed.
    pub fn holds(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn failures_of(&self, check: Check) -> impl Iterator<Item = &Failure> {
        self.failures.iter().filter(move |f| f.check == check)
    }

    fn holds_line(&self, check: Check) -> String {
        let c = &self.checkpoint;
        match check {
            Check::Format => format!("{BUNDLE_FORMAT} version {BUNDLE_VERSION}"),
            Check::Signature => format!(
                "signed by the given key (key id {}) for `{}`",
                to_hex(&self.key_id),
                c.origin
            ),
            Check::Stream => format!("all {} events are of stream `{}`", self.events, self.stream),
            Check::Inclusion if self.failures_of(Check::Signature).next().is_some() => format!(
                "all {} events are under the checkpoint's root (tree size {}), but that root is \
                 not vouched for: the checkpoint signature fails",
                self.events, c.tree_size
            ),
            Check::Inclusion => format!(
                "all {} events are in the log under the checkpoint's root (tree size {})",
                self.events, c.tree_size
            ),
            Check::Order => "global positions strictly increase".into(),
            Check::Versions if self.events == 0 => "no events".into(),
            Check::Versions => format!("stream versions 0..={} without gap", self.events - 1),
            Check::Plaintext => format!(
                "{} plaintext payloads, each of an event in the bundle (not covered by the proofs: \
                 they are what keten decrypted)",
                self.plaintexts
            ),
        }
    }
}

impl fmt::Display for BundleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.checkpoint;
        writeln!(
            f,
            "audit bundle of stream `{}`: {} events, checkpoint `{}` tree size {} root {} made {}",
            self.stream,
            self.events,
            c.origin,
            c.tree_size,
            to_hex(&c.root_hash),
            utc(c.time.0)
        )?;
        for check in [
            Check::Format,
            Check::Signature,
            Check::Stream,
            Check::Inclusion,
            Check::Order,
            Check::Versions,
            Check::Plaintext,
        ] {
            let mut failed = false;
            for failure in self.failures_of(check) {
                failed = true;
                match &failure.event {
                    Some(event) => writeln!(f, "FAILS  {check}: {event}: {}", failure.reason)?,
                    None => writeln!(f, "FAILS  {check}: {}", failure.reason)?,
                }
            }
            let nothing_to_say = check == Check::Plaintext && self.plaintexts == 0;
            if !failed && !nothing_to_say {
                writeln!(f, "holds  {check}: {}", self.holds_line(check))?;
            }
        }
        if self.holds() {
            writeln!(f, "VERDICT: the bundle holds")
        } else {
            writeln!(
                f,
                "VERDICT: the bundle does NOT hold ({} failures)",
                self.failures.len()
            )
        }
    }
}

/// Checks a bundle offline against the log's public key. Never stops at the first failure: the
/// report names every event that fails and why.
pub fn verify_bundle(bundle: &Bundle, key: &VerifyingKey) -> BundleReport {
    let checkpoint = &bundle.checkpoint.checkpoint;
    let mut failures = Vec::new();
    let mut fail = |check, event: Option<EventRef>, reason: String| {
        failures.push(Failure {
            check,
            event,
            reason,
        })
    };

    if bundle.format != BUNDLE_FORMAT || bundle.version != BUNDLE_VERSION {
        fail(
            Check::Format,
            None,
            format!(
                "`{}` version {} is not {BUNDLE_FORMAT} version {BUNDLE_VERSION}",
                bundle.format, bundle.version
            ),
        );
    }
    if let Err(e) = bundle.checkpoint.verify(key) {
        fail(Check::Signature, None, e.to_string());
    }

    let mut included = 0;
    let mut previous: Option<&BundleEvent> = None;
    for (index, event) in bundle.events.iter().enumerate() {
        let at = EventRef {
            index,
            position: event.position,
            version: event.version,
            id: event.id,
        };
        if event.stream != bundle.stream {
            fail(
                Check::Stream,
                Some(at.clone()),
                format!("of stream `{}`, not `{}`", event.stream, bundle.stream),
            );
        }
        match verify_inclusion(
            &event.leaf_hash(),
            event.position,
            checkpoint.tree_size,
            &event.inclusion_proof,
            &checkpoint.root_hash,
        ) {
            Ok(()) => included += 1,
            Err(e) => fail(
                Check::Inclusion,
                Some(at.clone()),
                format!(
                    "{e} (the event as given, its position or its proof is not what the log holds)"
                ),
            ),
        }
        match previous {
            None if event.version != 0 => fail(
                Check::Versions,
                Some(at.clone()),
                format!(
                    "the first event has version {}, not 0: versions 0..={} are missing",
                    event.version,
                    event.version.saturating_sub(1)
                ),
            ),
            None => {}
            Some(prev) => {
                if event.position <= prev.position {
                    fail(
                        Check::Order,
                        Some(at.clone()),
                        format!(
                            "position {} does not follow the previous event's {}",
                            event.position, prev.position
                        ),
                    );
                }
                if event.version != prev.version.wrapping_add(1) {
                    let reason = if event.version > prev.version {
                        format!(
                            "version {} follows version {}: versions {}..={} are missing",
                            event.version,
                            prev.version,
                            prev.version + 1,
                            event.version - 1
                        )
                    } else {
                        format!(
                            "version {} follows version {}: out of order or repeated",
                            event.version, prev.version
                        )
                    };
                    fail(Check::Versions, Some(at.clone()), reason);
                }
            }
        }
        previous = Some(event);
    }

    let plaintexts = bundle.plaintext.as_ref().map_or(0, Vec::len);
    for plain in bundle.plaintext.iter().flatten() {
        if !bundle.events.iter().any(|e| e.position == plain.position) {
            fail(
                Check::Plaintext,
                None,
                format!(
                    "a plaintext for position {}, which no event in the bundle has",
                    plain.position
                ),
            );
        }
    }

    BundleReport {
        stream: bundle.stream.clone(),
        checkpoint: checkpoint.clone(),
        key_id: bundle.checkpoint.key_id,
        events: bundle.events.len(),
        events_included: included,
        plaintexts,
        failures,
    }
}

/// Unix microseconds as an RFC 3339 UTC time, for people reading a report. The proleptic
/// Gregorian calendar by days since the epoch (H. Hinnant's `civil_from_days`); no clock, no
/// time zone database.
pub fn utc(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3_600,
        rem / 60 % 60,
        rem % 60,
        micros % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_agrees_with_gnu_date() {
        // Expected values from `date -u -d @SECONDS`.
        for (secs, expected) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (1_764_000_060, "2025-11-24T16:01:00"),
            (4_102_444_799, "2099-12-31T23:59:59"),
            (253_402_300_799, "9999-12-31T23:59:59"),
        ] {
            assert_eq!(utc(secs * 1_000_000 + 42), format!("{expected}.000042Z"));
        }
    }
}

mod base64_bytes {
    use super::{BASE64, Engine};

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

mod hex_hashes {
    use crate::hash::{Hash, hash_from_hex, to_hex};

    pub fn serialize<S: serde::Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hashes.iter().map(|h| to_hex(h)))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let texts = <Vec<String> as serde::Deserialize>::deserialize(d)?;
        texts
            .iter()
            .map(|t| hash_from_hex(t).map_err(serde::de::Error::custom))
            .collect()
    }
}
