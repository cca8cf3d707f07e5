//! The crate's errors. Decoding failures (bytes that are not a valid event) and rejections (a
//! valid event that the rules do not allow now) are kept apart: a server answers the first with
//! "malformed" and the second with "not allowed", and only the second names a domain rule.

use std::fmt;

use serde::Serialize;

/// An id that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} contains {character:?}; use letters, digits, '-', '_', '.' or ':'")]
    BadCharacter { kind: &'static str, character: char },
    #[error(
        "family id is nine digits, which may be a citizen service number (BSN); shared events must carry a pseudonym"
    )]
    LooksLikeBsn,
}

/// A ZRM score outside 1..=5.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    #[error("a ZRM score is 1 (acute) to 5 (fully self-reliant), not {0}")]
    OutOfRange(u8),
}

/// Stored bytes that are not an event keten can read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not valid event JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the envelope has no numeric `schema`")]
    MissingSchema,
    #[error("the envelope has no `event`")]
    MissingEvent,
    #[error("schema {0} is unknown to this version of keten")]
    UnknownSchema(u16),
    #[error("cannot upcast a schema {schema} event: {reason}")]
    Upcast { schema: u16, reason: &'static str },
}

macro_rules! rule_codes {
    ($($(#[$meta:meta])* $variant:ident,)*) => {
        /// The rule an event broke. Stable, machine-readable codes: partners may branch on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum RuleCode {
            $($(#[$meta])* $variant,)*
        }

        impl RuleCode {
            /// Every rule, so that tests can check each one is exercised.
            pub const ALL: &'static [RuleCode] = &[$(RuleCode::$variant,)*];
        }
    };
}

rule_codes! {
    // who may publish
    AuditorMayNotPublish,
    RoleMayNotPublish,
    NotTheFamilyManager,
    // the stream
    FamilyNotRegistered,
    FamilyAlreadyRegistered,
    OccurredInFuture,
    OccurredBeforeRegistration,
    ReasonRequired,
    /// A date in the event that contradicts another (a contact after it was reported, a plan
    /// agreed before the family was registered, a goal's target before it was set).
    DateOutOfOrder,
    // the family
    FamilyTypeUnchanged,
    BirthYearImplausible,
    DuplicateMemberId,
    UnknownMember,
    // participation
    PartnerJoinsOnlyItself,
    PartnerAlreadyJoined,
    PartnerNotJoined,
    PartnerHasOpenActions,
    NoOpenMatch,
    NotInMatch,
    // lead
    ActorMayNotAssignFamilyManager,
    FamilyManagerNotFromYouthCareOrWsg,
    FamilyNeedsWsg,
    LeadPartnerOnlyForDirectHelp,
    // the plan
    NoFamilyManager,
    PlanAlreadyAgreed,
    NoPlan,
    PlanIsClosed,
    ReviewMomentBeforeAgreement,
    PlanAlreadyExtended,
    ExtensionNotLater,
    DuplicateGoalId,
    UnknownGoal,
    GoalNotOpen,
    DuplicateActionId,
    UnknownAction,
    ActionWithoutMembers,
    DuplicateMemberInAction,
    ExpectedEndNotAfterStart,
    ActionByOtherPartner,
    ActionAlreadyStarted,
    ActionAlreadyFinished,
    ActionAlreadyExtended,
    ActionLongerThanIntervention,
    CompulsoryInterventionNeedsPressure,
    NextReviewNotAfterReview,
    DuplicateMemberInReview,
    // monitoring
    PlanNotClosed,
    MonitoringAlreadyStarted,
    NoMonitoring,
    MonitoringByOtherWorker,
    InvalidMonitoringPeriod,
    // the escalation ladder
    EscalationSkipsRung,
    AlreadyAtTopRung,
    NotALowerRung,
    EscalatedByOtherPerson,
    // chain escalation
    ChainEscalationWithoutCause,
    ChainEscalationWrongPartner,
    ChainEscalationSkipsLevel,
    NoOpenChainEscalation,
    // transparency
    FamilyAlreadyInformed,
    DeferralEndNotAfterOccurrence,
    // outcomes
    OnlyPoliceRecordsPoliceContact,
    // erasure and retention
    /// The family was erased: its stream accepts no event at all.
    FamilyErased,
    MayNotRecordErasureRequest,
    ErasureRequesterNotParentOrChild,
    ErasureRequesterUnder12,
    ErasureAlreadyRequested,
    MayNotPlaceLegalHold,
    DuplicateHoldId,
    UnknownHold,
    HoldAlreadyLifted,
    MayNotLiftLegalHold,
    MayNotErase,
    /// A legal hold that is not lifted blocks erasure.
    LegalHoldActive,
    NoErasureRequest,
    /// The ground of an erasure does not match the pending request or the end of help.
    ErasureGroundMismatch,
    RetentionNotEnded,
}

impl RuleCode {
    /// The code as it appears in JSON and logs.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl fmt::Display for RuleCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// A valid event that the rules refuse: which field, which rule, and why in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message} [{rule}]")]
pub struct Rejection {
    /// Path of the offending field inside the event, e.g. `member_ids[1]`, or `actor` when
    /// the publisher itself is the problem.
    pub field: String,
    pub rule: RuleCode,
    pub message: String,
}

impl Rejection {
    pub fn new(field: impl Into<String>, rule: RuleCode, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule,
            message: message.into(),
        }
    }
}

pub type Result<T, E = Rejection> = std::result::Result<T, E>;
