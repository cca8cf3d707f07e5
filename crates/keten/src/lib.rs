//! What the `keten` binary and its end-to-end tests share: an mTLS client for a partner system
//! ([`client`]), the OMPG demo scenario ([`scenario`]) and the plain-text plan a coordinator
//! reads ([`report`]).

pub mod client;
pub mod report;
pub mod scenario;
