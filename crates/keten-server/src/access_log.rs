//! Every access to a family's data becomes one record in the access log (NEN 7513), written
//! before the answer leaves: a read whose record could not be written is not answered. The
//! record is durable then, or (the default, `[privacy] access_log_flush_ms`) written to the
//! page cache and flushed within that many milliseconds; README, "Access log", says what a
//! power loss can cost and why that is acceptable.

use keten_access::{AccessAction, AccessLog, AccessRecord, AccessResult};
use keten_domain::FamilyId;
use keten_domain::classes::ClassSet;

use crate::App;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::need_to_know::Sight;

/// One access, as a service describes it.
pub struct Access<'a> {
    /// The API method, e.g. `Coordination.GetFamilyPlan`.
    pub method: &'static str,
    pub action: AccessAction,
    pub family: Option<&'a FamilyId>,
    /// What the caller was allowed to see or write; `Denied` records a refused attempt.
    pub sight: Sight,
    /// For a search: how many families it returned.
    pub families_returned: u32,
}

impl<'a> Access<'a> {
    pub fn new(method: &'static str, action: AccessAction, family: Option<&'a FamilyId>) -> Self {
        Self {
            method,
            action,
            family,
            sight: Sight::Granted {
                classes: ClassSet::EMPTY,
                emergency: false,
            },
            families_returned: 0,
        }
    }

    pub fn sight(mut self, sight: Sight) -> Self {
        self.sight = sight;
        self
    }

    pub fn classes(self, classes: ClassSet) -> Self {
        self.sight(Sight::Granted {
            classes,
            emergency: false,
        })
    }

    pub fn refused(self) -> Self {
        self.sight(Sight::Denied)
    }

    pub fn families_returned(mut self, n: usize) -> Self {
        self.families_returned = u32::try_from(n).unwrap_or(u32::MAX);
        self
    }
}

impl App {
    /// Writes the access record and returns once the access log took it (see the module
    /// documentation for when that is durable). With the access log turned off
    /// (a benchmark measuring its cost) it writes a trace line only.
    pub async fn record_access(&self, caller: &Caller, access: Access<'_>) -> Result<()> {
        let Some((log, record)) = self.access_record(caller, access) else {
            return Ok(());
        };
        log.record(&record).await.map_err(access_log_failed)?;
        self.metrics.access_records.inc();
        Ok(())
    }

    /// [`App::record_access`] for a caller with other work to do before it answers (a publish
    /// waits for its event's flush, a read renders the plan): the record is built now, with the
    /// time of the decision, and taken by the access log at once, so that the records of calls
    /// under way are written together (one `pwrite` for the group instead of one each). Await
    /// the future before answering, whatever the answer.
    pub fn record_access_deferred<'a>(
        &'a self,
        caller: &Caller,
        access: Access<'_>,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'a {
        let taken = self
            .access_record(caller, access)
            .map(|(log, record)| log.record_deferred(&record));
        async move {
            if let Some(written) = taken {
                written.await.map_err(access_log_failed)?;
                self.metrics.access_records.inc();
            }
            Ok(())
        }
    }

    /// The record of `access` for the access log, with the log; `None` when there is none (then
    /// a trace line is the record).
    fn access_record(
        &self,
        caller: &Caller,
        access: Access<'_>,
    ) -> Option<(&AccessLog, AccessRecord)> {
        let (result, classes, emergency) = match access.sight {
            Sight::Granted { classes, emergency } => (
                AccessResult::Granted,
                classes,
                emergency.then(|| caller.emergency.clone()).flatten(),
            ),
            Sight::Denied => (
                AccessResult::Refused {
                    reason: "outside need-to-know: the caller does not take part in this family"
                        .into(),
                },
                ClassSet::EMPTY,
                None,
            ),
        };
        // A line per access: at info only when there is no access log to hold the record
        // (then the line is the record); beside the access log it would put a formatted,
        // blocking write to stderr on the path of every call, publishes included.
        macro_rules! access_line {
            ($level:expr) => {
                tracing::event!(
                    target: "keten::access",
                    $level,
                    method = access.method,
                    action = %access.action,
                    partner = %caller.actor.partner,
                    person = %caller.actor.person,
                    role = %caller.actor.role,
                    family = access.family.map(|f| f.as_str()).unwrap_or(""),
                    granted = matches!(result, AccessResult::Granted),
                    emergency = emergency.is_some(),
                    "access"
                )
            };
        }
        if self.access.is_some() {
            access_line!(tracing::Level::DEBUG);
        } else {
            access_line!(tracing::Level::INFO);
        }
        let log = self.access.as_ref()?;
        let record = AccessRecord {
            at: crate::now_utc(),
            person: caller.actor.person.clone(),
            role: caller.actor.role,
            partner: caller.actor.partner.clone(),
            partner_kind: caller.actor.partner_kind,
            partner_name: caller.partner.name.clone(),
            family: access.family.cloned(),
            classes: classes.iter().collect(),
            action: access.action,
            method: access.method.to_owned(),
            purpose: caller.purpose.clone(),
            result,
            emergency,
            families_returned: access.families_returned,
        };
        Some((log, record))
    }

    /// The access log, for the auditor's calls; FAILED_PRECONDITION when it is turned off.
    pub fn access_log(&self) -> Result<&AccessLog> {
        self.access.as_ref().ok_or_else(|| {
            Error::FailedPrecondition(
                "this server keeps no access log ([privacy] access_log = false)".into(),
            )
        })
    }
}

fn access_log_failed(e: keten_access::AccessError) -> Error {
    tracing::error!(error = %e, "an access record could not be written; the access is not answered");
    if let keten_access::AccessError::Store(e @ keten_log::Error::StorageFull { .. }) = e {
        return Error::Log(e);
    }
    Error::Unavailable(format!(
        "the access could not be recorded in the access log, so it is not answered: {e}"
    ))
}

/// Records in the access log what opening it cut off after a power loss or kernel crash (the
/// access records of at most the last flush interval), so that the loss is itself on the record;
/// called once at start, before the server answers anything.
pub async fn record_tail_cut(access: &keten_log::FileLog) -> Result<()> {
    let Some(cut) = access.tail_cut() else {
        return Ok(());
    };
    if let Some(position) = AccessLog::new(std::sync::Arc::new(access.clone()))
        .record_tail_cut(cut, crate::now_utc())
        .await
        .map_err(access_log_failed)?
    {
        tracing::warn!(
            position = position.0,
            records_lost_at_least = cut.records,
            bytes_lost = cut.bytes,
            "access records lost to a power loss or kernel crash; the loss is recorded in the access log"
        );
    }
    Ok(())
}
