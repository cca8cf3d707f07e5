//! A typed event from the wire: prost decodes a `keten.v1.FamilyEvent` from the bytes, then
//! `keten_proto::convert::event_from_proto` makes it a domain event or names the bad field. Neither
//! may panic. An event it accepts converts back and forth to itself, and survives the store's
//! JSON form (`keten_domain::encode`/`decode`), since the server stores what it accepts.

#![no_main]

use keten_proto::convert::{event_from_proto, event_to_proto};
use keten_proto::v1;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|bytes: &[u8]| {
    let Ok(message) = v1::FamilyEvent::decode(bytes) else {
        return;
    };
    let Ok(event) = event_from_proto(message) else {
        return;
    };
    let wire = event_to_proto(&event);
    let again = v1::FamilyEvent::decode(wire.encode_to_vec().as_slice())
        .expect("an encoded message decodes");
    assert_eq!(again, wire, "protobuf round trip");
    let back = event_from_proto(again)
        .unwrap_or_else(|e| panic!("{event:?} converted to the wire is refused: {e}"));
    assert_eq!(back, event, "wire round trip");
    let stored = keten_domain::encode(&event);
    let read = keten_domain::decode(&stored).unwrap_or_else(|e| {
        panic!(
            "{event:?} accepted from the wire does not decode from its stored form {}: {e}",
            String::from_utf8_lossy(&stored)
        )
    });
    assert_eq!(read, event, "stored round trip");
});
