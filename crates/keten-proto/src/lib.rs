//! keten's wire: the `keten.v1` gRPC API that partner systems, coordinators and auditors use.
//!
//! - [`v1`]: the messages and the tonic client and server code generated from
//!   `proto/keten/v1/*.proto` (services `PartnerGateway`, `Coordination`, `Audit`).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors of those files, with their doc comments,
//!   for server reflection.
//! - [`convert`]: the conversions between the wire and `keten_domain`.
//!
//! API boundary: proto types never reach the domain. Everything from the wire passes through
//! [`convert`], which rejects malformed input (a missing date, an unspecified enum, a bad id)
//! with a [`convert::FieldError`] naming the field; the domain's rules stay in `keten_domain`.

pub mod convert;

/// The generated code of package `keten.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/keten.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `keten.v1` and its imports, with source info (comments),
/// for `tonic_reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/keten_v1_descriptor.bin"));
