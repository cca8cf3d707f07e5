//! The projection's snapshot: every family's view plus the position they reflect, so that a
//! restart resumes the subscription after it instead of replaying all history.
//!
//! # Format (version [`FORMAT`])
//!
//! One file, `projection.snapshot`, replaced atomically (written to `projection.snapshot.tmp`,
//! fsynced, renamed, directory fsynced):
//!
//! ```text
//! {"magic":"keten-projection-snapshot","format":2,"event_schema":2,"position":N,
//!  "event_id":"<uuid>","families":K,"body_len":L,"body_blake3":"<hex>"}\n   <- header, one line
//! {"family":..,"version":..,"position":..,"committed_at":..,"state":{..}}\n      <- body, L bytes:
//! {"family":..,...}\n                                                             one line a family
//! ```
//!
//! `position` and `event_id` are those of the last event folded. The body is the families in id
//! order, one JSON object a line (so that loading parses them on all cores); `state` is the
//! domain's `FamilyState` in its serde form. Format 1 (the body one JSON array) was never
//! released.
//!
//! # When a snapshot is not trusted
//!
//! On start the projection uses a snapshot only if all of these hold; otherwise it logs why,
//! reports it in `StartedFrom::Scratch { discarded }` and folds from the start of the log:
//! the magic and format are this version's; the event schema is the domain's current one (a
//! state folded under other upcasting rules may differ); the body has the recorded length and
//! BLAKE3 hash; it parses, with `K` families in strictly increasing id order, none past
//! `position`; and the log holds an event at `position` whose id is `event_id` (so a log that
//! was replaced, truncated or restored from elsewhere is noticed).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use keten_domain::catalogue::InterventionCode;
use keten_domain::state::{
    Action, ActionExtension, ActionOutcome, ChainEscalation, ChainResolution, ChainStep, Closure,
    Deferral, Direction, EscalationStep, FamilyManager, Goal, GoalOutcome, LeadPartner,
    MatchSettlement, Member, Monitoring, NuisanceReport, Participation, PlanExtension, PlanRecord,
    PoliceContact, Privacy, Refusal, Registration, Review, TypeChange,
};
use keten_domain::zrm::ZrmAssessment;
use keten_domain::{
    ActionId, CURRENT_SCHEMA, ChainLevel, ClosureReason, FamilyId, FamilyState, FamilyType, GoalId,
    LifeDomain, MemberFlags, MemberId, MemberRole, PartnerId, PartnerKind, PersonId, Rung, Urgency,
};
use keten_log::{CommitTime, EventId, EventStore, GlobalPosition, ReadFrom, StreamVersion, Until};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fold::{Anchor, FamilyView, Packed, Slot, Views};

/// The snapshot format this build writes and reads; any other is discarded.
pub const FORMAT: u32 = 2;
pub const FILE_NAME: &str = "projection.snapshot";
const TMP_NAME: &str = "projection.snapshot.tmp";
const MAGIC: &str = "keten-projection-snapshot";

pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

#[derive(Serialize, Deserialize)]
struct Header {
    magic: String,
    format: u32,
    event_schema: u16,
    position: u64,
    event_id: uuid::Uuid,
    families: u64,
    body_len: u64,
    body_blake3: String,
}

#[derive(Serialize)]
struct ViewOut<'a> {
    family: &'a FamilyId,
    version: u64,
    position: u64,
    committed_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    registered_by: Option<&'a PartnerId>,
    state: &'a FamilyState,
}

#[derive(Deserialize)]
struct ViewIn {
    family: FamilyId,
    version: u64,
    position: u64,
    committed_at: u64,
    #[serde(default)]
    registered_by: Option<PartnerId>,
    state: StateM,
}

/// A view's line of the snapshot body (without the newline).
fn line_of(v: &FamilyView) -> std::result::Result<Vec<u8>, String> {
    let out = ViewOut {
        family: &v.family,
        version: v.version.0,
        position: v.position.0,
        committed_at: v.committed_at.0,
        registered_by: v.registered_by.as_ref(),
        state: &v.state,
    };
    serde_json::to_vec(&out).map_err(|e| format!("cannot serialize family `{}`: {e}", v.family))
}

/// A view read back from its line.
fn view_of_line(line: &[u8]) -> std::result::Result<FamilyView, String> {
    let v = serde_json::from_slice::<ViewIn>(line)
        .map_err(|e| format!("a family does not parse: {e}"))?;
    Ok(FamilyView {
        family: v.family,
        state: v.state.dom(),
        version: StreamVersion(v.version),
        position: GlobalPosition(v.position),
        committed_at: CommitTime(v.committed_at),
        registered_by: v.registered_by,
    })
}

fn deflate(line: &[u8]) -> Box<[u8]> {
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(line.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(line).expect("writing to memory");
    encoder
        .finish()
        .expect("writing to memory")
        .into_boxed_slice()
}

fn inflate(deflated: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(deflated.len() * 6);
    flate2::read::DeflateDecoder::new(deflated)
        .read_to_end(&mut line)
        .expect("a packed view inflates: it was deflated in memory");
    line
}

/// A view packed: its snapshot line, deflated.
pub(crate) fn pack(view: &FamilyView) -> Packed {
    let line = line_of(view).expect("a family's view serializes");
    Packed {
        deflated: deflate(&line),
        erased: view.state.is_erased(),
    }
}

/// A packed view, unpacked.
pub(crate) fn unpack(packed: &Packed) -> FamilyView {
    view_of_line(&inflate(&packed.deflated)).expect("a packed view reads back as it was written")
}

/// Writes the snapshot of `views` at `anchor` into `dir`, atomically. Blocking.
pub(crate) fn write(dir: &Path, anchor: Anchor, views: &[Slot]) -> Result<()> {
    let mut body = Vec::new();
    for slot in views {
        match slot {
            Slot::Open(v) => {
                let line = line_of(v).map_err(|reason| Error::Snapshot {
                    path: path_in(dir),
                    reason,
                })?;
                body.extend_from_slice(&line);
            }
            Slot::Packed(p) => body.extend_from_slice(&inflate(&p.deflated)),
        }
        body.push(b'\n');
    }
    let header = Header {
        magic: MAGIC.into(),
        format: FORMAT,
        event_schema: CURRENT_SCHEMA,
        position: anchor.position.0,
        event_id: anchor.id.0,
        families: views.len() as u64,
        body_len: body.len() as u64,
        body_blake3: blake3::hash(&body).to_hex().to_string(),
    };
    let mut head = serde_json::to_vec(&header).expect("a header serializes");
    head.push(b'\n');
    // Written in two parts: joined, the body (hundreds of megabytes at ten million events)
    // would be copied once more.
    write_atomically(dir, &[&head, &body])
}

/// Replaces the snapshot file with `parts`, one after the other: a crash leaves the old file or
/// the new one, never a mix.
pub(crate) fn write_atomically(dir: &Path, parts: &[&[u8]]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(TMP_NAME);
    let target = path_in(dir);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        for part in parts {
            f.write_all(part)?;
        }
        f.sync_all()
    });
    if let Err(e) = written {
        // A snapshot that cannot be written (a full disk) leaves the previous one in place and
        // no half-written file holding on to the space; the caller warns and a later snapshot
        // tries again. The temporary file is never read.
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, &target).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(&target, e)
    })?;
    // The rename is durable only once the directory is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    Ok(())
}

/// What was found on start.
pub(crate) enum Loaded {
    /// No snapshot file.
    None,
    Discarded(String),
    Usable(Anchor, Views),
}

/// Reads the snapshot in `dir` and checks it against the file's own checksum and the log.
pub(crate) async fn load(dir: &Path, store: &dyn EventStore) -> Result<Loaded> {
    let path = path_in(dir);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::None),
        Err(e) => {
            return Ok(Loaded::Discarded(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let parsed = tokio::task::spawn_blocking(move || parse(&bytes))
        .await
        .map_err(|e| Error::Snapshot {
            path: path.clone(),
            reason: format!("parse task failed: {e}"),
        })?;
    let (anchor, views) = match parsed {
        Ok(p) => p,
        Err(reason) => return Ok(Loaded::Discarded(reason)),
    };
    let at = store
        .read_all(
            ReadFrom::At(anchor.position),
            keten_log::Direction::Forward,
            1,
            Until::Latest,
        )
        .await?;
    match at.first() {
        Some(e) if e.position == anchor.position && e.id == anchor.id => {
            Ok(Loaded::Usable(anchor, views))
        }
        Some(e) if e.position == anchor.position => Ok(Loaded::Discarded(format!(
            "the log's event at position {} is {}, the snapshot recorded {}",
            anchor.position, e.id, anchor.id
        ))),
        _ => Ok(Loaded::Discarded(format!(
            "the log has no event at position {} that the snapshot reflects",
            anchor.position
        ))),
    }
}

fn parse(bytes: &[u8]) -> std::result::Result<(Anchor, Views), String> {
    let split = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header: Header = serde_json::from_slice(&bytes[..split])
        .map_err(|e| format!("the header does not parse: {e}"))?;
    if header.magic != MAGIC {
        return Err(format!("not a snapshot (magic `{}`)", header.magic));
    }
    if header.format != FORMAT {
        return Err(format!(
            "snapshot format {} is not this keten's format {FORMAT}",
            header.format
        ));
    }
    if header.event_schema != CURRENT_SCHEMA {
        return Err(format!(
            "folded with event schema {}, this keten reads schema {CURRENT_SCHEMA}",
            header.event_schema
        ));
    }
    let body = &bytes[split + 1..];
    if body.len() as u64 != header.body_len {
        return Err(format!(
            "the body is {} bytes, the header says {}",
            body.len(),
            header.body_len
        ));
    }
    let hash = blake3::hash(body).to_hex().to_string();
    if hash != header.body_blake3 {
        return Err(format!(
            "checksum mismatch: the body hashes to {hash}, the header says {}",
            header.body_blake3
        ));
    }
    let views = parse_lines(body)?;
    if views.len() as u64 != header.families {
        return Err(format!(
            "{} families, the header says {}",
            views.len(),
            header.families
        ));
    }
    let mut map = Views::new();
    let mut last: Option<&FamilyId> = None;
    for (family, position, _) in &views {
        if last.is_some_and(|l| l >= family) {
            return Err(format!("family `{family}` is out of order"));
        }
        if position.0 > header.position {
            return Err(format!(
                "family `{family}` is at position {position}, past the snapshot's {}",
                header.position
            ));
        }
        last = Some(family);
    }
    for (family, _, packed) in views {
        map.insert_packed(family.as_str().into(), packed);
    }
    let anchor = Anchor {
        position: GlobalPosition(header.position),
        id: EventId(header.event_id),
    };
    Ok((anchor, map))
}

/// Parses the body's lines (one family each) on all cores, and keeps each packed: reading a
/// snapshot is mostly parsing JSON, and a snapshot is only worth having if it loads faster than
/// the log folds. Every line is parsed, so that a snapshot that does not read back is discarded
/// on start rather than found out when its family is asked for.
#[allow(clippy::type_complexity)]
fn parse_lines(
    body: &[u8],
) -> std::result::Result<Vec<(FamilyId, GlobalPosition, Packed)>, String> {
    // A JSON line holds no raw newline: serde_json escapes it inside strings.
    let lines: Vec<&[u8]> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = lines.len().div_ceil(threads).max(1);
    let parsed: Vec<std::result::Result<Vec<_>, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = lines
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|line| {
                            let v = view_of_line(line)?;
                            let packed = Packed {
                                deflated: deflate(line),
                                erased: v.state.is_erased(),
                            };
                            Ok((v.family, v.position, packed))
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a parser panicked".into())))
            .collect()
    });
    let mut views = Vec::with_capacity(lines.len());
    for part in parsed {
        views.extend(part?);
    }
    Ok(views)
}

// --- reading the domain's state back ---
//
// The domain serializes `FamilyState` but does not deserialize it (nothing but a snapshot needs
// to). These mirrors read the serde form back. Each converts with an exhaustive struct literal,
// so a field added to the domain breaks this build instead of being dropped silently; a
// round-trip test over folded histories checks that the forms agree.

trait Dom {
    type Out;
    fn dom(self) -> Self::Out;
}

impl<T: Dom> Dom for Option<T> {
    type Out = Option<T::Out>;
    fn dom(self) -> Self::Out {
        self.map(Dom::dom)
    }
}

impl<T: Dom> Dom for Vec<T> {
    type Out = Vec<T::Out>;
    fn dom(self) -> Self::Out {
        self.into_iter().map(Dom::dom).collect()
    }
}

impl<K: Ord, V: Dom> Dom for BTreeMap<K, V> {
    type Out = BTreeMap<K, V::Out>;
    fn dom(self) -> Self::Out {
        self.into_iter().map(|(k, v)| (k, v.dom())).collect()
    }
}

/// A mirror struct: `plain` fields are domain types already, `nested` ones are mirrors.
macro_rules! mirror {
    ($m:ident => $t:ident { $($f:ident : $ty:ty),* $(,)? ; $($n:ident : $nty:ty),* $(,)? }) => {
        #[derive(Deserialize)]
        struct $m {
            $($f: $ty,)*
            $($n: $nty,)*
        }
        impl Dom for $m {
            type Out = $t;
            fn dom(self) -> $t {
                $t {
                    $($f: self.$f,)*
                    $($n: self.$n.dom(),)*
                }
            }
        }
    };
}

mirror!(StateM => FamilyState {
    events_applied: u64,
    rung: Rung,
    informed_on: Option<NaiveDate>,
    home_visits: Vec<NaiveDate>,
    privacy: Privacy;
    registration: Option<RegistrationM>,
    members: BTreeMap<MemberId, MemberM>,
    participations: Vec<ParticipationM>,
    match_settlements: Vec<MatchSettlementM>,
    family_manager: Option<FamilyManagerM>,
    lead_partner: Option<LeadPartnerM>,
    plan: Option<PlanRecordM>,
    goals: BTreeMap<GoalId, GoalM>,
    actions: BTreeMap<ActionId, ActionM>,
    reviews: Vec<ReviewM>,
    refusals: Vec<RefusalM>,
    escalations: Vec<EscalationStepM>,
    chain_escalations: Vec<ChainEscalationM>,
    deferrals: Vec<DeferralM>,
    monitoring: Option<MonitoringM>,
    police_contacts: Vec<PoliceContactM>,
    nuisance_reports: Vec<NuisanceReportM>,
});
mirror!(RegistrationM => Registration {
    family_id: FamilyId,
    family_type: FamilyType,
    urgency: Urgency,
    registered_on: NaiveDate;
    type_changes: Vec<TypeChangeM>,
});
mirror!(TypeChangeM => TypeChange {
    from: FamilyType,
    to: FamilyType,
    reason: String,
    on: NaiveDate;
});
mirror!(MemberM => Member {
    role: MemberRole,
    birth_year: i32,
    flags: MemberFlags,
    added_on: NaiveDate,
    left_on: Option<NaiveDate>;
});
mirror!(ParticipationM => Participation {
    partner_id: PartnerId,
    kind: PartnerKind,
    display_name: String,
    joined_on: NaiveDate,
    joined_seq: u64,
    left_on: Option<NaiveDate>,
    left_seq: Option<u64>;
});
mirror!(MatchSettlementM => MatchSettlement {
    lead_partner_id: PartnerId,
    contacted_on: NaiveDate,
    settled_on: NaiveDate,
    seq: u64;
});
mirror!(FamilyManagerM => FamilyManager {
    manager: PersonId,
    partner_id: PartnerId,
    reason: Option<String>,
    assigned_on: NaiveDate;
});
mirror!(LeadPartnerM => LeadPartner {
    partner_id: PartnerId,
    reason: String,
    set_on: NaiveDate;
});
mirror!(PlanRecordM => PlanRecord {
    agreed_on: NaiveDate,
    review_moments: Vec<NaiveDate>;
    extension: Option<PlanExtensionM>,
    closure: Option<ClosureM>,
});
mirror!(PlanExtensionM => PlanExtension {
    new_horizon: NaiveDate,
    reason: String,
    on: NaiveDate;
});
mirror!(ClosureM => Closure {
    reason: ClosureReason,
    on: NaiveDate;
});
mirror!(GoalM => Goal {
    life_domain: LifeDomain,
    description: String,
    target_date: Option<NaiveDate>,
    set_on: NaiveDate;
    outcome: Option<GoalOutcomeM>,
});
mirror!(ActionM => Action {
    goal_id: GoalId,
    partner_id: PartnerId,
    member_ids: Vec<MemberId>,
    intervention: Option<InterventionCode>,
    description: String,
    start_on: NaiveDate,
    expected_end: NaiveDate,
    committed_on: NaiveDate,
    started_on: Option<NaiveDate>;
    extension: Option<ActionExtensionM>,
    outcome: Option<ActionOutcomeM>,
});
mirror!(ActionExtensionM => ActionExtension {
    original_end: NaiveDate,
    reason: String,
    on: NaiveDate;
});
mirror!(ReviewM => Review {
    held_on: NaiveDate,
    next_review: Option<NaiveDate>,
    zrm: Vec<ZrmAssessment>;
});
mirror!(RefusalM => Refusal {
    reason: String,
    on: NaiveDate;
});
mirror!(EscalationStepM => EscalationStep {
    from: Rung,
    to: Rung,
    by: PersonId,
    reason: String,
    legal_basis: String,
    on: NaiveDate;
    direction: DirectionM,
});
mirror!(ChainEscalationM => ChainEscalation {
    action_id: ActionId,
    partner_id: PartnerId;
    steps: Vec<ChainStepM>,
    resolution: Option<ChainResolutionM>,
});
mirror!(ChainStepM => ChainStep {
    level: ChainLevel,
    reason: String,
    on: NaiveDate;
});
mirror!(ChainResolutionM => ChainResolution {
    resolution: String,
    on: NaiveDate;
});
mirror!(DeferralM => Deferral {
    reason: String,
    until: NaiveDate,
    on: NaiveDate;
});
mirror!(MonitoringM => Monitoring {
    started_on: NaiveDate,
    until: NaiveDate,
    visit_interval_days: u16,
    visits: Vec<NaiveDate>;
});
mirror!(PoliceContactM => PoliceContact {
    member_id: Option<MemberId>,
    on: NaiveDate;
});
mirror!(NuisanceReportM => NuisanceReport {
    description: String,
    on: NaiveDate;
});

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum GoalOutcomeM {
    Achieved { on: NaiveDate },
    Abandoned { on: NaiveDate, reason: String },
}

impl Dom for GoalOutcomeM {
    type Out = GoalOutcome;
    fn dom(self) -> GoalOutcome {
        match self {
            Self::Achieved { on } => GoalOutcome::Achieved { on },
            Self::Abandoned { on, reason } => GoalOutcome::Abandoned { on, reason },
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum ActionOutcomeM {
    Delivered { on: NaiveDate },
    NotDelivered { on: NaiveDate, reason: String },
}

impl Dom for ActionOutcomeM {
    type Out = ActionOutcome;
    fn dom(self) -> ActionOutcome {
        match self {
            Self::Delivered { on } => ActionOutcome::Delivered { on },
            Self::NotDelivered { on, reason } => ActionOutcome::NotDelivered { on, reason },
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum DirectionM {
    Raised,
    Lowered,
}

impl Dom for DirectionM {
    type Out = Direction;
    fn dom(self) -> Direction {
        match self {
            Self::Raised => Direction::Raised,
            Self::Lowered => Direction::Lowered,
        }
    }
}

/// Serializes a state and reads it back, as a snapshot does; for the round-trip tests.
#[doc(hidden)]
pub fn round_trip(state: &FamilyState) -> FamilyState {
    let json = serde_json::to_vec(state).expect("serializes");
    serde_json::from_slice::<StateM>(&json)
        .expect("reads back")
        .dom()
}

#[cfg(test)]
pub(crate) mod tests {
    use keten_domain::Event;
    use keten_domain::zrm::{Zrm2017Domain, ZrmScore, ZrmScores};

    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// One event of every type, applied without validation: only the serde forms of what
    /// they leave in the state matter here.
    pub(crate) fn every_event() -> Vec<Event> {
        let on = d("2026-02-01");
        let m = || MemberId::new("m1").unwrap();
        let p = || PartnerId::new("yc").unwrap();
        let g = || GoalId::new("g1").unwrap();
        let a = || ActionId::new("a1").unwrap();
        let who = || PersonId::new("fm-anna").unwrap();
        let why = || "because".to_string();
        vec![
            Event::FamilyRegistered {
                family_id: FamilyId::new("fam-1").unwrap(),
                family_type: FamilyType::StutEnSteun,
                urgency: Urgency::Urgent,
                occurred_on: on,
            },
            Event::FamilyTypeChanged {
                family_type: FamilyType::OrdeOpZaken,
                urgency: Urgency::Normal,
                reason: why(),
                occurred_on: on,
            },
            Event::MemberAdded {
                member_id: m(),
                role: MemberRole::Parent,
                birth_year: 1980,
                flags: MemberFlags {
                    intellectual_disability: true,
                },
                occurred_on: on,
            },
            Event::MemberAdded {
                member_id: MemberId::new("m2").unwrap(),
                role: MemberRole::Child,
                birth_year: 2015,
                flags: MemberFlags::default(),
                occurred_on: on,
            },
            Event::MemberLeft {
                member_id: MemberId::new("m2").unwrap(),
                reason: why(),
                occurred_on: on,
            },
            Event::PartnerJoined {
                partner_id: p(),
                partner_kind: PartnerKind::YouthCare,
                display_name: "Jeugdzorg".into(),
                occurred_on: on,
            },
            Event::PartnerJoined {
                partner_id: PartnerId::new("pol").unwrap(),
                partner_kind: PartnerKind::Police,
                display_name: "Politie".into(),
                occurred_on: on,
            },
            Event::PartnerLeft {
                partner_id: PartnerId::new("pol").unwrap(),
                reason: why(),
                occurred_on: on,
            },
            Event::MatchSettled {
                lead_partner_id: p(),
                contacted_on: on,
                occurred_on: on,
            },
            Event::FamilyManagerAssigned {
                manager: who(),
                partner_id: p(),
                reason: Some(why()),
                occurred_on: on,
            },
            Event::LeadPartnerSet {
                partner_id: p(),
                reason: why(),
                occurred_on: on,
            },
            Event::PlanAgreed {
                agreed_on: on,
                review_moments: vec![d("2026-04-01")],
                occurred_on: on,
            },
            Event::PlanExtended {
                new_horizon: d("2027-06-01"),
                reason: why(),
                occurred_on: on,
            },
            Event::GoalSet {
                goal_id: g(),
                life_domain: LifeDomain::Housing,
                description: "a home".into(),
                target_date: Some(d("2026-06-01")),
                occurred_on: on,
            },
            Event::GoalSet {
                goal_id: GoalId::new("g2").unwrap(),
                life_domain: LifeDomain::Parenting,
                description: "parenting".into(),
                target_date: None,
                occurred_on: on,
            },
            Event::ActionCommitted {
                action_id: a(),
                goal_id: g(),
                partner_id: p(),
                member_ids: vec![m()],
                intervention: Some(InterventionCode::Iag),
                description: "support".into(),
                start_on: on,
                expected_end: d("2026-05-01"),
                occurred_on: on,
            },
            Event::ActionCommitted {
                action_id: ActionId::new("a2").unwrap(),
                goal_id: g(),
                partner_id: p(),
                member_ids: vec![m()],
                intervention: None,
                description: "more".into(),
                start_on: on,
                expected_end: d("2026-05-01"),
                occurred_on: on,
            },
            Event::ActionStarted {
                action_id: a(),
                occurred_on: on,
            },
            Event::ActionDeadlineExtended {
                action_id: a(),
                new_expected_end: d("2026-07-01"),
                reason: why(),
                occurred_on: on,
            },
            Event::ActionDelivered {
                action_id: a(),
                occurred_on: on,
            },
            Event::ActionNotDelivered {
                action_id: ActionId::new("a2").unwrap(),
                reason: why(),
                occurred_on: on,
            },
            Event::GoalAchieved {
                goal_id: g(),
                occurred_on: on,
            },
            Event::GoalAbandoned {
                goal_id: GoalId::new("g2").unwrap(),
                reason: why(),
                occurred_on: on,
            },
            Event::ReviewHeld {
                zrm: vec![ZrmAssessment {
                    member_id: m(),
                    matrix: ZrmScores::V2017 {
                        scores: [(Zrm2017Domain::Finances, ZrmScore::new(3).unwrap())].into(),
                    },
                }],
                next_review: Some(d("2026-05-01")),
                occurred_on: on,
            },
            Event::CooperationRefused {
                reason: why(),
                occurred_on: on,
            },
            Event::EscalationRaised {
                to: Rung::Pressure,
                by: who(),
                reason: why(),
                legal_basis: "law".into(),
                occurred_on: on,
            },
            Event::EscalationLowered {
                to: Rung::Voluntary,
                by: who(),
                reason: why(),
                legal_basis: "law".into(),
                occurred_on: on,
            },
            Event::ChainEscalationRaised {
                action_id: ActionId::new("a2").unwrap(),
                partner_id: p(),
                level: ChainLevel::Case,
                reason: why(),
                occurred_on: on,
            },
            Event::ChainEscalationResolved {
                action_id: ActionId::new("a2").unwrap(),
                resolution: "solved".into(),
                occurred_on: on,
            },
            Event::FamilyInformed { occurred_on: on },
            Event::InformingDeferred {
                reason: why(),
                until: d("2026-03-01"),
                occurred_on: on,
            },
            Event::PoliceContactRecorded {
                member_id: Some(m()),
                occurred_on: on,
            },
            Event::PoliceContactRecorded {
                member_id: None,
                occurred_on: on,
            },
            Event::NuisanceReported {
                description: "noise".into(),
                occurred_on: on,
            },
            Event::PlanClosed {
                reason: ClosureReason::GoalsAchieved,
                occurred_on: on,
            },
            Event::MonitoringStarted {
                until: d("2026-12-01"),
                visit_interval_days: 30,
                occurred_on: on,
            },
            Event::MonitoringVisitRecorded { occurred_on: on },
            Event::HomeVisitRecorded { occurred_on: on },
            Event::ErasureRequested {
                requester: m(),
                occurred_on: on,
            },
            Event::LegalHoldPlaced {
                hold_id: keten_domain::HoldId::new("h1").unwrap(),
                ground: keten_domain::LegalGround::CourtOrder,
                reason: "court order".into(),
                occurred_on: on,
            },
            Event::LegalHoldLifted {
                hold_id: keten_domain::HoldId::new("h1").unwrap(),
                reason: "order ended".into(),
                occurred_on: on,
            },
            // Last: it clears the state.
            Event::FamilyErased {
                ground: keten_domain::ErasureGround::Request {
                    requested_on: on,
                    requester_role: MemberRole::Parent,
                },
                notified: vec![keten_domain::PartnerId::new("jeugdzorg").unwrap()],
                occurred_on: on,
            },
        ]
    }

    #[test]
    fn every_state_reads_back_as_it_was_written() {
        let events = every_event();
        let mut kinds: Vec<&str> = events.iter().map(Event::type_name).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(
            kinds.len(),
            Event::TYPE_NAMES.len(),
            "an event type is missing"
        );
        let mut state = FamilyState::default();
        assert_eq!(round_trip(&state), state);
        for event in &events {
            state.evolve(event);
            assert_eq!(round_trip(&state), state, "after {}", event.type_name());
        }
    }
}
