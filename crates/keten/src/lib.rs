//! What the `keten` binary and its end-to-end tests share: an mTLS client for a partner system
//! ([`client`]), a development PKI ([`pki`]), the OMPG demo scenario ([`scenario`]) and the plain-text plan a coordinator
//! reads ([`report`]).

pub mod client;
pub mod pki;
pub mod report;
pub mod scenario;
