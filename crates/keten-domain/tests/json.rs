//! The stored JSON form: every event type round-trips, the `type` tag is `type_name()`, and
//! events written with an older schema still decode and fold.

mod support;

use std::collections::BTreeSet;

use keten_domain::*;
use support::*;

#[test]
fn every_event_type_round_trips_through_json() {
    let events = one_of_each();
    let names: BTreeSet<&str> = events.iter().map(Event::type_name).collect();
    let all: BTreeSet<&str> = Event::TYPE_NAMES.into_iter().collect();
    assert_eq!(names, all, "one_of_each must hold every event type");
    assert_eq!(events.len(), Event::TYPE_NAMES.len());

    for event in events {
        let bytes = encode(&event);
        let back = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", event.type_name()));
        assert_eq!(back, event);

        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["schema"], u64::from(CURRENT_SCHEMA));
        assert_eq!(value["event"]["type"], event.type_name());
        // The envelope type decodes the current schema directly too.
        let env: EventEnvelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(env.event, event);
    }
}

/// Schema 1 had `intellectual_disability` at the top of `MemberAdded` and a single
/// `member_id` on `ActionCommitted`. This stream is written as a schema-1 writer wrote it.
const V1_STREAM: &[&str] = &[
    r#"{"schema":1,"event":{"type":"FamilyRegistered","family_id":"fam-old","family_type":"stut_en_steun","urgency":"normal","occurred_on":"2024-03-01"}}"#,
    r#"{"schema":1,"event":{"type":"MemberAdded","member_id":"p1","role":"parent","birth_year":1979,"intellectual_disability":true,"occurred_on":"2024-03-01"}}"#,
    r#"{"schema":1,"event":{"type":"MemberAdded","member_id":"c1","role":"child","birth_year":2012,"occurred_on":"2024-03-01"}}"#,
    r#"{"schema":1,"event":{"type":"PartnerJoined","partner_id":"wsg","partner_kind":"wsg","display_name":"WSG","occurred_on":"2024-03-02"}}"#,
    r#"{"schema":1,"event":{"type":"FamilyManagerAssigned","manager":"fm-wim","partner_id":"wsg","occurred_on":"2024-03-03"}}"#,
    r#"{"schema":1,"event":{"type":"PlanAgreed","agreed_on":"2024-03-10","review_moments":["2024-06-10"],"occurred_on":"2024-03-10"}}"#,
    r#"{"schema":1,"event":{"type":"GoalSet","goal_id":"g1","life_domain":"finances","description":"debts in order","occurred_on":"2024-03-10"}}"#,
    r#"{"schema":1,"event":{"type":"ActionCommitted","action_id":"a1","goal_id":"g1","partner_id":"wsg","member_id":"p1","description":"budget coaching","start_on":"2024-03-15","expected_end":"2024-09-15","occurred_on":"2024-03-10"}}"#,
];

#[test]
fn a_schema_1_stream_still_decodes_and_folds() {
    let events: Vec<Event> = V1_STREAM
        .iter()
        .map(|s| decode(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect();
    let state = fold(&events);
    assert!(state.members[&mid("p1")].flags.intellectual_disability);
    assert!(!state.members[&mid("c1")].flags.intellectual_disability);
    assert_eq!(state.actions[&aid("a1")].member_ids, vec![mid("p1")]);

    let plan = coordinated_plan(&state, d("2024-04-01"));
    assert_eq!(plan.family_type, Some(FamilyType::StutEnSteun));
    assert_eq!(plan.horizon, Some(d("2025-01-10")));
    assert_eq!(plan.actions[&pid("wsg")][0].member_ids, vec![mid("p1")]);
    // c1 has no help yet: the upcast stream projects like any other.
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.kind == WarningKind::MemberWithoutHelp && w.member_id == Some(mid("c1")))
    );

    // Re-encoding writes the current schema, which decodes to the same event.
    for e in &events {
        assert_eq!(&decode(&encode(e)).unwrap(), e);
    }
}

#[test]
fn unknown_and_missing_schemas_are_decode_errors_not_rejections() {
    let future = format!(
        r#"{{"schema":{},"event":{{"type":"FamilyInformed","occurred_on":"2026-01-01"}}}}"#,
        CURRENT_SCHEMA + 1
    );
    assert!(matches!(
        decode(future.as_bytes()),
        Err(DecodeError::UnknownSchema(_))
    ));
    assert!(matches!(
        decode(br#"{"event":{"type":"FamilyInformed","occurred_on":"2026-01-01"}}"#),
        Err(DecodeError::MissingSchema)
    ));
    assert!(matches!(
        decode(br#"{"schema":2}"#),
        Err(DecodeError::MissingEvent)
    ));
    assert!(matches!(
        decode(br#"{"schema":2,"event":{"type":"NoSuchEvent","occurred_on":"2026-01-01"}}"#),
        Err(DecodeError::Json(_))
    ));
    // A BSN-like family id is refused at decoding: it never reaches the rules.
    assert!(matches!(
        decode(br#"{"schema":2,"event":{"type":"FamilyRegistered","family_id":"123456782","family_type":"refresh","urgency":"normal","occurred_on":"2026-01-01"}}"#),
        Err(DecodeError::Json(_))
    ));
    // A v1 ActionCommitted without its member cannot be upcast.
    assert!(matches!(
        decode(br#"{"schema":1,"event":{"type":"ActionCommitted","action_id":"a1"}}"#),
        Err(DecodeError::Upcast { schema: 1, .. })
    ));
}
