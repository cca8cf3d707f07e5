//! How a family lives in the log: the one place that knows it.
//!
//! - One stream per family, named `family-<family id>` ([`stream_id`], [`family_of`]).
//! - The event type is the domain's type name ([`keten_domain::Event::type_name`]).
//! - The payload is the domain's versioned JSON envelope ([`keten_domain::encode`]), so old
//!   schemas keep decoding through the domain's upcasting.
//! - The metadata is [`EventMetadata`] as JSON: who published the event, for whom, and why.
//!
//! Architecture invariant: nothing else in keten builds a stream id, an event type or a payload
//! for a family by hand.

use keten_domain::{
    Actor, CURRENT_SCHEMA, Event, EventEnvelope, FamilyId, PartnerId, PartnerKind, PersonId, Role,
};
use keten_log::{
    CommitTime, EventId, EventType, GlobalPosition, ProposedEvent, RecordedEvent, StreamId,
    StreamVersion,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Every family stream starts with this; a whole-log reader recognises families by it.
pub const STREAM_PREFIX: &str = "family-";

/// The stream of one family.
pub fn stream_id(family: &FamilyId) -> StreamId {
    StreamId::new(format!("{STREAM_PREFIX}{family}"))
        .expect("a family id is at most 64 ASCII characters without control characters")
}

/// The family a stream belongs to, `None` for a stream that is not a family's.
pub fn family_of(stream: &StreamId) -> Option<FamilyId> {
    family_str(stream.as_str()).and_then(|id| FamilyId::new(id).ok())
}

/// The family id part of a family stream's name, unchecked.
pub(crate) fn family_str(stream: &str) -> Option<&str> {
    stream.strip_prefix(STREAM_PREFIX)
}

/// Who published an event, recorded with it. The partner comes from the caller's certificate,
/// the person and role from the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub partner: PartnerId,
    pub partner_kind: PartnerKind,
    pub person: PersonId,
    pub role: Role,
    /// Ties the events of one request (or one business process across partners) together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Why the event was published, where the publisher says so (purpose limitation, AVG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

impl EventMetadata {
    pub fn from_actor(actor: &Actor) -> Self {
        Self {
            partner: actor.partner.clone(),
            partner_kind: actor.partner_kind,
            person: actor.person.clone(),
            role: actor.role,
            correlation_id: None,
            purpose: None,
        }
    }

    /// The actor the domain's rules judged the event by.
    pub fn actor(&self) -> Actor {
        Actor {
            person: self.person.clone(),
            role: self.role,
            partner: self.partner.clone(),
            partner_kind: self.partner_kind,
        }
    }
}

/// An event ready to append to the family's stream.
pub fn encode(event_id: EventId, event: &Event, meta: &EventMetadata) -> ProposedEvent {
    proposed(event_id, event, encode_metadata(meta))
}

/// Events published together, ready to append: one publisher, so the metadata is encoded once
/// for all of them.
pub fn encode_all(events: &[(EventId, Event)], meta: &EventMetadata) -> Vec<ProposedEvent> {
    let metadata = encode_metadata(meta);
    events
        .iter()
        .map(|(id, e)| proposed(*id, e, metadata.clone()))
        .collect()
}

fn encode_metadata(meta: &EventMetadata) -> Vec<u8> {
    serde_json::to_vec(meta).expect("metadata always serializes")
}

fn proposed(event_id: EventId, event: &Event, metadata: Vec<u8>) -> ProposedEvent {
    ProposedEvent {
        id: event_id,
        event_type: EventType::new(event.type_name()).expect("domain type names are valid"),
        metadata,
        payload: keten_domain::encode(event),
    }
}

/// A family's event as stored, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub family: FamilyId,
    pub stream: StreamId,
    pub id: EventId,
    pub version: StreamVersion,
    pub position: GlobalPosition,
    pub committed_at: CommitTime,
    /// The schema it was stored with, and the event upcast to the current schema.
    pub envelope: EventEnvelope,
    pub metadata: EventMetadata,
}

/// Reads a stored family event back: payload, metadata and stream. An event that does not
/// decode is an [`Error::Decode`] naming its position.
pub fn decode(recorded: &RecordedEvent) -> Result<StoredEvent> {
    let family = family_of(&recorded.stream)
        .ok_or_else(|| decode_error(recorded, "the stream is not a family stream".into()))?;
    let envelope = decode_payload(recorded)?;
    let metadata: EventMetadata = serde_json::from_slice(&recorded.metadata)
        .map_err(|e| decode_error(recorded, format!("metadata: {e}")))?;
    Ok(StoredEvent {
        family,
        stream: recorded.stream.clone(),
        id: recorded.id,
        version: recorded.version,
        position: recorded.position,
        committed_at: recorded.committed_at,
        envelope,
        metadata,
    })
}

/// The payload alone: what the fold needs. Checks that the stored type is the payload's.
pub(crate) fn decode_payload(recorded: &RecordedEvent) -> Result<EventEnvelope> {
    let envelope = decode_envelope(&recorded.payload)
        .map_err(|reason| decode_error(recorded, format!("payload: {reason}")))?;
    let stored_type = recorded.event_type.as_str();
    if stored_type != envelope.event.type_name() {
        return Err(decode_error(
            recorded,
            format!(
                "stored as `{stored_type}` but the payload is a `{}`",
                envelope.event.type_name()
            ),
        ));
    }
    Ok(envelope)
}

/// Decodes an envelope, parsing the JSON once, straight into the event, when it is of the
/// current schema in the encoder's shape (nearly every event; see [`crate::fast`]). Otherwise
/// the domain's general `decode`, which builds a `serde_json::Value` first so that it can
/// upcast, and whose error is the one reported.
fn decode_envelope(bytes: &[u8]) -> std::result::Result<EventEnvelope, String> {
    if leading_schema(bytes) == Some(CURRENT_SCHEMA)
        && let Ok(event) = crate::fast::decode(bytes, CURRENT_SCHEMA)
    {
        return Ok(EventEnvelope {
            schema: CURRENT_SCHEMA,
            event,
        });
    }
    #[derive(Deserialize)]
    struct SchemaOnly {
        schema: u16,
    }
    let event = keten_domain::decode(bytes).map_err(|e| e.to_string())?;
    let schema = serde_json::from_slice::<SchemaOnly>(bytes)
        .map_err(|e| e.to_string())?
        .schema;
    Ok(EventEnvelope { schema, event })
}

/// The schema number when the JSON starts with it, as `keten_domain::encode` writes it.
fn leading_schema(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"{\"schema\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 5 || rest.get(digits) != Some(&b',') {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

fn decode_error(recorded: &RecordedEvent, reason: String) -> Error {
    Error::Decode {
        position: recorded.position,
        stream: recorded.stream.clone(),
        version: recorded.version,
        id: recorded.id,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_schema_reads_only_the_encoders_prefix() {
        assert_eq!(leading_schema(br#"{"schema":2,"event":{}}"#), Some(2));
        assert_eq!(leading_schema(br#"{"schema":12,"event":{}}"#), Some(12));
        assert_eq!(leading_schema(br#"{"event":{},"schema":2}"#), None);
        assert_eq!(leading_schema(br#"{"schema":"2","event":{}}"#), None);
        assert_eq!(leading_schema(br#"{"schema":2}"#), None);
        assert_eq!(leading_schema(br#"{"schema":999999,"#), None);
    }

    #[test]
    fn schema_1_events_are_upcast_and_keep_their_schema() {
        let v1 = br#"{"schema":1,"event":{"type":"MemberAdded","member_id":"m1","role":"parent","birth_year":1980,"intellectual_disability":true,"occurred_on":"2026-01-05"}}"#;
        let env = decode_envelope(v1).unwrap();
        assert_eq!(env.schema, 1);
        let Event::MemberAdded { flags, .. } = env.event else {
            panic!("{:?}", env.event)
        };
        assert!(flags.intellectual_disability);
    }

    #[test]
    fn the_fast_path_agrees_with_the_domain() {
        let e = Event::FamilyInformed {
            occurred_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
        };
        let bytes = keten_domain::encode(&e);
        assert_eq!(leading_schema(&bytes), Some(CURRENT_SCHEMA));
        assert_eq!(decode_envelope(&bytes).unwrap().event, e);
        assert_eq!(keten_domain::decode(&bytes).unwrap(), e);
        assert!(decode_envelope(br#"{"schema":2,"schema":2,"event":{}}"#).is_err());
        assert!(decode_envelope(br#"{"schema":3,"event":{}}"#).is_err());
    }
}
