//! keten's gRPC server: the services partner systems, coordinators and auditors call.
//!
//! - [`gateway`] (`PartnerGateway.Publish`), [`coordination`] (plans from the projection) and
//!   [`audit`] (history, as-of plans, log verification) are thin: check the caller
//!   ([`auth`]), convert the request (`keten_proto::convert`), call, convert back.
//! - [`publish`] is where validation and append become one step.
//! - [`need_to_know`] decides what a caller may see of a family; every service asks it, and
//!   `access_log` records every access before the answer leaves.
//! - [`error`] is the one place where errors become gRPC statuses.
//! - [`serve`] wires the services, health, reflection, mTLS, metrics and graceful shutdown.
//!
//! API boundary: proto types stop at the service modules; the domain and the log never see them.

pub mod access_log;
pub mod audit;
pub mod auth;
pub mod config;
pub mod coordination;
mod erasure;
pub mod error;
pub mod gateway;
mod limits;
mod list;
pub mod metrics;
pub mod need_to_know;
pub mod proofs;
pub mod publish;
mod serve;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use keten_log::EventStore;
use keten_projection::Projections;

pub use error::{Error, Result};
pub use serve::{Bound, Settings, Stores, serve};

/// What every service shares.
pub struct App {
    /// The log as the services read and write it: families' payloads sealed on append and
    /// opened on read (see `keten_projection::sealed`).
    pub store: Arc<dyn EventStore>,
    /// The log as stored (ciphertext): what proofs and verification cover.
    pub raw: Arc<dyn EventStore>,
    /// Families' keys; `None` when encryption is turned off.
    pub keys: Option<keten_keys::Keyring>,
    /// The access log; `None` when turned off.
    pub access: Option<keten_access::AccessLog>,
    pub policy: keten_domain::privacy::Policy,
    pub projections: Projections,
    pub directory: auth::Directory,
    pub metrics: Arc<metrics::Metrics>,
    pub publisher: publish::Publisher,
    /// How long a query with `min_position` waits for the projection.
    pub read_wait: Duration,
    /// The data directory, to name log files relative to it.
    pub data_dir: Option<PathBuf>,
    /// Turns true when shutdown begins; endless streams end on it.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The Merkle tree and signed checkpoints; `None` without a signing key.
    pub proofs: Option<Arc<proofs::Proofs>>,
    /// Marks of the families audited, so that an as-of plan folds a bounded number of events.
    pub as_of: keten_projection::AsOfCache,
}

/// The server's now, as chrono's UTC time (chrono's clock feature stays off: the domain must
/// not read a clock, and features unify across the workspace).
pub fn now_utc() -> chrono::DateTime<chrono::Utc> {
    let micros = keten_log::CommitTime::now().0;
    chrono::DateTime::from_timestamp_micros(i64::try_from(micros).unwrap_or(i64::MAX))
        .expect("the clock reads a time chrono can hold")
}

/// The server's today (UTC), for validation and for plans "as of now".
pub fn today() -> NaiveDate {
    keten_projection::date_of(keten_log::CommitTime::now())
}
