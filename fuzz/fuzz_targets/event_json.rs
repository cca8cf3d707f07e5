//! A stored event: `keten_domain::decode` reads the versioned JSON envelope (upcasting older
//! schemas) or says why not; it must never panic. An event it accepts encodes (as the current
//! schema) and decodes back to itself, and goes to the wire and back unchanged, since history
//! reads send stored events to clients as protobuf.

#![no_main]

use keten_proto::convert::{event_from_proto, event_to_proto};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(event) = keten_domain::decode(bytes) else {
        return;
    };
    let stored = keten_domain::encode(&event);
    let back = keten_domain::decode(&stored).unwrap_or_else(|e| {
        panic!(
            "{event:?} re-encoded as {} does not decode: {e}",
            String::from_utf8_lossy(&stored)
        )
    });
    assert_eq!(back, event, "JSON round trip");
    let wire = event_from_proto(event_to_proto(&event));
    assert_eq!(wire.as_ref(), Ok(&event), "wire round trip");
});
