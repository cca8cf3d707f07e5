//! keten's access log (NEN 7513): every create, read, search, export, erasure, auditor replay
//! and verification of a family's data, granted or refused, and the report in plain words a
//! family can be shown (AVG art. 15).
//!
//! # What a record holds
//!
//! An [`AccessRecord`] says who (the [`keten_domain::PersonId`] and [`keten_domain::Role`]),
//! on behalf of which organisation (its id, kind and name), when (passed in by the caller: this
//! crate has no clock), which family ([`keten_domain::FamilyId`], or none for a search over
//! many), which classes of data ([`keten_domain::DataClass`]), the [`AccessAction`], the API
//! method, the purpose or legal ground given, the [`AccessResult`], the reason for emergency
//! access ("break the glass") and, for a search, how many families it returned.
//!
//! It holds no data of the family: no names, no BSN, no field of the plan, only pseudonymous ids
//! and the names of classes. That is why it can be kept for the five years NEN 7513 requires
//! even after the family's data is erased (crypto-shredded): what remains says that someone
//! looked, never what they saw. Free text (purpose, emergency reason) is the caller's ground for
//! the access and must not quote the family's data.
//!
//! # Durability
//!
//! [`AccessLog::record`] returns only once the store has made the record durable (a
//! [`keten_log::FileLog`] acknowledges after `fdatasync`; concurrent records share one by group
//! commit; JetStream acknowledges after its replicas stored it). The caller answers a read only
//! after its record is durable, and refuses to answer when recording fails: no access goes
//! unlogged, at the cost of one durable append on the read path. Tamper evidence (a hash chain
//! of its own, checksums) and crash recovery are the store's; [`AccessLog::verify`] walks them.
//!
//! # How records live in the store
//!
//! The access log has an [`keten_log::EventStore`] of its own, separate from the event log: a
//! `FileLog` in `<data>/access/`, or a second JetStream stream. [`log`] is the one place that
//! knows the layout:
//! - stream `access-family-<family id>` for the records about one family,
//!   `access-search` ([`SEARCH_STREAM`]) for searches over many families; the family streams have
//!   a prefix of their own so that no family id (`search` is a valid one) names the search stream;
//! - event type: the action's name ([`AccessAction::as_str`]);
//! - payload: the record as JSON; no metadata.
//!
//! # The report
//!
//! [`report`] turns one family's records into a header, one sentence per access in time order
//! and a footer saying where to ask and complain, in Dutch or English ([`Language`]).

mod error;
mod json;
pub mod log;
mod record;
mod report;

pub use error::{AccessError, Result};
pub use log::{
    AccessLog, FAMILY_STREAM_PREFIX, LOSS_EVENT, LOSS_STREAM, Logged, SEARCH_STREAM, STREAM_PREFIX,
    stream_id,
};
pub use record::{AccessAction, AccessRecord, AccessResult};
pub use report::{Language, class_name, describe, report};
