//! Audit bundles: an honest one holds, offline and after a JSON round trip; each kind of
//! tampering fails with its reason and names the event.

use keten_log::{
    CommitTime, EventId, EventType, GlobalPosition, RecordedEvent, StreamId, StreamVersion,
};
use keten_proof::{
    Bundle, Check, Checkpoint, SignedCheckpoint, SigningKey, TreeBuilder, verify_bundle,
};

const FAMILY: &str = "family-7";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// 60 events over three streams, interleaved; the family's are every third.
fn log() -> Vec<RecordedEvent> {
    let streams = [FAMILY, "family-8", "partner-3"];
    let mut versions = [0u64; 3];
    (0..60u64)
        .map(|p| {
            let s = (p % 3) as usize;
            let v = versions[s];
            versions[s] += 1;
            RecordedEvent {
                stream: StreamId::new(streams[s]).unwrap(),
                id: EventId(uuid::Uuid::from_u128(0x1000 + p as u128)),
                event_type: EventType::new(if v == 0 { "Opened" } else { "Noted" }).unwrap(),
                version: StreamVersion(v),
                position: GlobalPosition(p),
                committed_at: CommitTime(1_764_000_000_000_000 + p * 1000),
                metadata: format!(r#"{{"by":"partner-{s}"}}"#).into_bytes(),
                payload: format!("ciphertext of event {p}").into_bytes(),
            }
        })
        .collect()
}

struct Fixture {
    tree: TreeBuilder,
    family: Vec<RecordedEvent>,
    checkpoint: SignedCheckpoint,
}

fn fixture() -> Fixture {
    let events = log();
    let mut tree = TreeBuilder::new();
    for e in &events {
        tree.append(e).unwrap();
    }
    let checkpoint = Checkpoint::new(
        "keten.test/log",
        tree.size(),
        tree.root(),
        CommitTime(1_764_000_100_000_000),
    )
    .sign(&key(1))
    .unwrap();
    let family = events
        .into_iter()
        .filter(|e| e.stream.as_str() == FAMILY)
        .collect();
    Fixture {
        tree,
        family,
        checkpoint,
    }
}

fn honest() -> Bundle {
    let f = fixture();
    Bundle::build(
        &f.tree,
        f.checkpoint,
        &StreamId::new(FAMILY).unwrap(),
        &f.family,
    )
    .unwrap()
}

/// The report fails exactly the given checks, and the first failure of `check` names the event
/// at bundle index `index`.
fn assert_fails(bundle: &Bundle, key_seed: u8, check: Check, index: Option<usize>, reason: &str) {
    let report = verify_bundle(bundle, &key(key_seed).verifying_key());
    assert!(!report.holds(), "{report}");
    let failure = report
        .failures_of(check)
        .next()
        .unwrap_or_else(|| panic!("no {check} failure in\n{report}"));
    assert_eq!(failure.event.as_ref().map(|e| e.index), index, "{report}");
    assert!(
        failure.reason.contains(reason),
        "`{}` does not say `{reason}`\n{report}",
        failure.reason
    );
    let text = report.to_string();
    assert!(
        text.contains("FAILS") && text.contains("does NOT hold"),
        "{text}"
    );
}

#[test]
fn an_honest_bundle_holds_after_a_json_round_trip() {
    let bundle = honest().with_plaintext(vec![(GlobalPosition(3), b"{\"plan\":1}".to_vec())]);
    assert_eq!(bundle.events.len(), 20);
    let json = bundle.to_json();
    let back = Bundle::from_json(&json).unwrap();
    assert_eq!(back, bundle);
    let report = verify_bundle(&back, &key(1).verifying_key());
    assert!(report.holds(), "{report}");
    assert_eq!(report.events_included, 20);
    let text = report.to_string();
    for line in [
        "holds  checkpoint signature",
        "holds  inclusion: all 20 events",
        "holds  versions: stream versions 0..=19 without gap",
        "holds  plaintext: 1 plaintext payloads",
        "VERDICT: the bundle holds",
    ] {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
}

#[test]
fn one_byte_of_an_event_changed_fails_inclusion_of_that_event() {
    let mut b = honest();
    b.events[4].payload[0] ^= 1;
    assert_fails(&b, 1, Check::Inclusion, Some(4), "differs from the root");
    let report = verify_bundle(&b, &key(1).verifying_key());
    assert_eq!(report.events_included, 19);
    assert_eq!(report.failures.len(), 1, "{report}");

    for tamper in [
        |e: &mut keten_proof::BundleEvent| e.metadata.push(b' '),
        |e: &mut keten_proof::BundleEvent| e.committed_at += 1,
        |e: &mut keten_proof::BundleEvent| e.event_type.push('x'),
        |e: &mut keten_proof::BundleEvent| e.id = uuid::Uuid::nil(),
        |e: &mut keten_proof::BundleEvent| e.inclusion_proof[0][0] ^= 1,
    ] {
        let mut b = honest();
        tamper(&mut b.events[7]);
        assert_fails(&b, 1, Check::Inclusion, Some(7), "root");
    }
}

#[test]
fn a_byte_changed_in_the_json_fails() {
    let json = honest().to_json();
    // The payload "ciphertext of event 12" in base64, with one character changed.
    let original = "Y2lwaGVydGV4dCBvZiBldmVudCAxMg==";
    assert!(json.contains(original));
    let tampered = json.replace(original, "Y2lwaGVydGV4dCBvZiBldmVudCAxNg==");
    let b = Bundle::from_json(&tampered).unwrap();
    assert_fails(&b, 1, Check::Inclusion, Some(4), "root");
}

#[test]
fn a_dropped_event_fails_versions_and_names_the_gap() {
    let mut b = honest();
    b.events.remove(5);
    assert_fails(
        &b,
        1,
        Check::Versions,
        Some(5),
        "versions 5..=5 are missing",
    );
    let report = verify_bundle(&b, &key(1).verifying_key());
    assert_eq!(report.failures.len(), 1, "{report}");

    let mut b = honest();
    b.events.remove(0);
    assert_fails(&b, 1, Check::Versions, Some(0), "not 0");
}

#[test]
fn a_swapped_order_fails_order_and_versions() {
    let mut b = honest();
    b.events.swap(2, 3);
    assert_fails(&b, 1, Check::Order, Some(3), "does not follow");
    assert_fails(&b, 1, Check::Versions, Some(2), "follows version 1");
}

#[test]
fn a_forged_checkpoint_signature_fails() {
    let mut b = honest();
    b.checkpoint.signature[10] ^= 1;
    assert_fails(&b, 1, Check::Signature, None, "signature is invalid");
    let text = verify_bundle(&b, &key(1).verifying_key()).to_string();
    assert!(text.contains("but that root is not vouched for"), "{text}");

    // A root changed without the key cannot be re-signed; the old signature no longer covers it.
    let mut b = honest();
    b.checkpoint.checkpoint.tree_size += 1;
    assert_fails(&b, 1, Check::Signature, None, "signature is invalid");
}

#[test]
fn a_checkpoint_from_another_key_fails() {
    let f = fixture();
    let forged = f.checkpoint.checkpoint.clone().sign(&key(2)).unwrap();
    let b = Bundle::build(&f.tree, forged, &StreamId::new(FAMILY).unwrap(), &f.family).unwrap();
    assert_fails(&b, 1, Check::Signature, None, "not signed by this key");
    // And the honest bundle against the wrong public key.
    assert_fails(
        &honest(),
        2,
        Check::Signature,
        None,
        "not signed by this key",
    );
}

#[test]
fn an_event_of_another_stream_fails_stream() {
    let f = fixture();
    let mut b = honest();
    let other = log().remove(1);
    let stranger = Bundle::build(
        &f.tree,
        f.checkpoint,
        &other.stream,
        std::slice::from_ref(&other),
    )
    .unwrap()
    .events
    .remove(0);
    b.events.push(stranger);
    assert_fails(&b, 1, Check::Stream, Some(20), "not `family-7`");
    assert_eq!(
        verify_bundle(&b, &key(1).verifying_key()).events_included,
        21
    );
}

#[test]
fn a_plaintext_without_its_event_fails() {
    let b = honest().with_plaintext(vec![(GlobalPosition(1), b"x".to_vec())]);
    assert_fails(&b, 1, Check::Plaintext, None, "position 1");
}

#[test]
fn build_refuses_what_would_not_verify() {
    let f = fixture();
    let family = StreamId::new(FAMILY).unwrap();
    let mut changed = f.family.clone();
    changed[3].payload.push(0);
    assert!(Bundle::build(&f.tree, f.checkpoint.clone(), &family, &changed).is_err());
    let other = Checkpoint::new("keten.test/log", 10, [0; 32], CommitTime(0))
        .sign(&key(1))
        .unwrap();
    assert!(Bundle::build(&f.tree, other, &family, &f.family).is_err());
    let early = Checkpoint::new(
        "keten.test/log",
        10,
        f.tree.root_at(10).unwrap(),
        CommitTime(0),
    )
    .sign(&key(1))
    .unwrap();
    assert!(Bundle::build(&f.tree, early, &family, &f.family).is_err());
    assert!(
        Bundle::build(
            &f.tree,
            f.checkpoint,
            &StreamId::new("family-8").unwrap(),
            &f.family
        )
        .is_err()
    );
}

#[test]
fn an_unknown_version_or_field_is_refused() {
    let json = honest().to_json();
    assert!(Bundle::from_json(&json.replacen("\"version\": 1", "\"version\": 2", 1)).is_err());
    assert!(Bundle::from_json(&json.replacen("{", "{\"extra\": 1,", 1)).is_err());
    assert!(Bundle::from_json(&json.replacen("keten-audit-bundle", "other", 1)).is_err());
}
