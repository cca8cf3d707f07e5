//! What one access record holds.

use chrono::{DateTime, Utc};
use keten_domain::{DataClass, FamilyId, PartnerId, PartnerKind, PersonId, Role};
use serde::{Deserialize, Serialize};

use crate::error::AccessError;

/// One access to a family's data (or one search over many families), as NEN 7513 asks: who
/// (person and role), on behalf of which organisation, when, which family and which classes of
/// data, the action, the purpose or legal ground given, and the result.
///
/// It holds no data of the family itself: only pseudonymous ids and the names of data classes,
/// so that it may be kept for the five years NEN 7513 requires, also after the family's data
/// was erased. Free text (`purpose`, `emergency`, a refusal's `reason`) is what the caller gave
/// as its ground; it must not quote the family's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// When the access happened, on the caller's clock (the server's): the moment it decided.
    pub at: DateTime<Utc>,
    pub person: PersonId,
    pub role: Role,
    /// The organisation the person acted for.
    pub partner: PartnerId,
    pub partner_kind: PartnerKind,
    /// The organisation's name as the family would recognise it ("Politie Amsterdam"). A name of
    /// an organisation, never of a person.
    pub partner_name: String,
    /// The family whose data was touched; `None` for a search over many families.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<FamilyId>,
    /// The classes of data shown or written; for a refused attempt, the classes asked for.
    #[serde(default)]
    pub classes: Vec<DataClass>,
    pub action: AccessAction,
    /// The API method or page that served the access (`keten.v1.Query/GetPlan`).
    pub method: String,
    /// The purpose or legal ground the caller gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    pub result: AccessResult,
    /// Break the glass: the reason given for reading outside need-to-know. `Some` marks the
    /// access as emergency access, which the auditor sees as a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<String>,
    /// For a search: how many families the answer listed. 0 for every other action.
    #[serde(default)]
    pub families_returned: u32,
}

impl AccessRecord {
    /// Break-the-glass access, granted or not: the auditor sees it as a warning.
    pub fn is_emergency(&self) -> bool {
        self.emergency.is_some()
    }

    /// Refuses a record that would hide what the log exists to show. Only granted emergency
    /// access is checked: it is allowed only with a reason, so a granted one without a reason is
    /// a bug in the caller, and since the caller may not answer until its record is written,
    /// refusing the record refuses the read. Refused attempts are always recorded as they come.
    pub fn validate(&self) -> Result<(), AccessError> {
        if self.method.trim().is_empty() {
            return Err(AccessError::InvalidRecord(
                "the method that served the access is empty".into(),
            ));
        }
        if self.result == AccessResult::Granted
            && self
                .emergency
                .as_deref()
                .is_some_and(|r| r.trim().is_empty())
        {
            return Err(AccessError::InvalidRecord(
                "emergency access was granted without a reason".into(),
            ));
        }
        Ok(())
    }
}

impl AsRef<AccessRecord> for AccessRecord {
    fn as_ref(&self) -> &AccessRecord {
        self
    }
}

/// What was done, in NEN 7513's terms. keten's log is append-only, so NEN 7513's "change"
/// (wijzigen) is a [`AccessAction::Create`] too: a correction is a new event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessAction {
    /// New data about the family was recorded: an event published (aanmaken, wijzigen).
    Create,
    /// The family's data was shown: a plan, a list entry, a watch update (inzien).
    Read,
    /// A search or list over families (raadplegen). Logged once with `family: None` and
    /// `families_returned`; a caller that wants each listed family to see it in its report
    /// also records one per family (see [`crate::AccessLog::record_many`]).
    Search,
    /// The family's data left keten as a copy: a download, a print, a hand-over (exporteren).
    Export,
    /// The family's data was destroyed: its key shredded on an erasure request (vernietigen).
    Erase,
    /// An auditor replayed the family's history, event by event or as of a moment.
    Replay,
    /// An auditor checked the log's integrity (hash chain, checksums) for the family or all.
    Verify,
}

impl AccessAction {
    pub const ALL: [AccessAction; 7] = [
        Self::Create,
        Self::Read,
        Self::Search,
        Self::Export,
        Self::Erase,
        Self::Replay,
        Self::Verify,
    ];

    /// The stable name, as in JSON; also the event type of the record in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Read => "read",
            Self::Search => "search",
            Self::Export => "export",
            Self::Erase => "erase",
            Self::Replay => "replay",
            Self::Verify => "verify",
        }
    }
}

impl std::fmt::Display for AccessAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the access was allowed. A refused attempt is logged as much as a granted one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AccessResult {
    Granted,
    /// Refused, and why (for the auditor; the family's report does not quote it, see
    /// [`crate::report`]).
    Refused {
        reason: String,
    },
}
