//! keten's gRPC server: the services partner systems, coordinators and auditors call.
//!
//! - [`gateway`] (`PartnerGateway.Publish`), [`coordination`] (plans from the projection) and
//!   [`audit`] (history, as-of plans, log verification) are thin: check the caller
//!   ([`auth`]), convert the request (`keten_proto::convert`), call, convert back.
//! - [`publish`] is where validation and append become one step.
//! - [`error`] is the one place where errors become gRPC statuses.
//! - [`serve`] wires the services, health, reflection, mTLS, metrics and graceful shutdown.
//!
//! API boundary: proto types stop at the service modules; the domain and the log never see them.

pub mod audit;
pub mod auth;
pub mod config;
pub mod coordination;
pub mod error;
pub mod gateway;
mod list;
pub mod metrics;
pub mod proofs;
pub mod publish;
mod serve;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use keten_domain::FamilyId;
use keten_log::EventStore;
use keten_projection::Projections;

pub use error::{Error, Result};
pub use serve::{Bound, Settings, serve};

/// What every service shares.
pub struct App {
    pub store: Arc<dyn EventStore>,
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

/// The server's today (UTC), for validation and for plans "as of now".
pub fn today() -> NaiveDate {
    keten_projection::date_of(keten_log::CommitTime::now())
}

/// Every read and write is recorded with who did it (the issue: "recorded with every event and
/// every read"); events carry it in their metadata, reads in this log line.
fn access_log(caller: &auth::Caller, method: &str, family: Option<&FamilyId>) {
    tracing::info!(
        target: "keten::access",
        method,
        partner = %caller.actor.partner,
        person = %caller.actor.person,
        role = %caller.actor.role,
        family = family.map(|f| f.as_str()).unwrap_or(""),
        "read"
    );
}
