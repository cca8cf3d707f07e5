//! `Audit`: the events as stored, the plan as it stood, the integrity of the log.
//!
//! Only auditors read here: the history names every person who acted. Every call is an access
//! (a replay, a verification, a read of the access log) and is recorded as one.

use std::sync::Arc;

use keten_domain::Role;
use keten_log::{CommitTime, Direction, EventId, GlobalPosition, ReadFrom, StreamVersion, Until};
use keten_projection::stored;
use keten_proto::convert;
use keten_proto::v1::{
    self, audit_server::Audit, get_family_plan_as_of_request::AsOf,
    prove_inclusion_request::Event as Which,
};
use tonic::{Request, Response, Status};

use keten_access::AccessAction;
use keten_domain::classes::ClassSet;

use crate::App;
use crate::access_log::Access;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::wire;

const HISTORY_DEFAULT: usize = 1000;
const READ_ALL_BATCH: usize = 1024;

type ReadAllStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<v1::ReadAllResponse, Status>> + Send>>;
const HISTORY_MAX: usize = 10_000;

pub struct AuditService {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn read_family_history(
        &self,
        request: Request<v1::ReadFamilyHistoryRequest>,
    ) -> Result<Response<v1::ReadFamilyHistoryResponse>, Status> {
        Ok(Response::new(self.history(request).await?))
    }

    async fn get_family_plan_as_of(
        &self,
        request: Request<v1::GetFamilyPlanAsOfRequest>,
    ) -> Result<Response<v1::GetFamilyPlanAsOfResponse>, Status> {
        Ok(Response::new(self.as_of(request).await?))
    }

    async fn verify_log(
        &self,
        request: Request<v1::VerifyLogRequest>,
    ) -> Result<Response<v1::VerifyLogResponse>, Status> {
        Ok(Response::new(self.verify(request).await?))
    }

    type ReadAllStream = ReadAllStream;

    async fn read_all(
        &self,
        request: Request<v1::ReadAllRequest>,
    ) -> Result<Response<ReadAllStream>, Status> {
        let caller = self.auditor(&request)?;
        let req = request.into_inner();
        let family = req
            .family_id
            .as_deref()
            .map(|f| wire::family_id(f, "family_id"))
            .transpose()?;
        let access = Access::new("Audit.ReadAll", AccessAction::Replay, family.as_ref())
            .classes(ClassSet::ALL);
        self.app.record_access(&caller, access).await?;
        let time = |t: Option<&prost_types::Timestamp>, field| {
            t.map(|t| wire::commit_time(t, field)).transpose()
        };
        let filter = ReadAllFilter {
            family: family.as_ref().map(stored::stream_id),
            partner: req.partner_id.clone(),
            types: req.event_types.clone(),
            from: time(req.committed_from.as_ref(), "committed_from")?,
            until: time(req.committed_until.as_ref(), "committed_until")?,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let store = self.app.store.clone();
        tokio::spawn(async move {
            let failed = tx.clone();
            if let Err(e) = read_all(store, filter, req.from_position, req.max_count, tx).await {
                let _ = failed.send(Err(Status::from(e))).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_checkpoint(
        &self,
        request: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::GetCheckpointResponse>, Status> {
        let caller = self.auditor(&request)?;
        let access = Access::new("Audit.GetCheckpoint", AccessAction::Verify, None);
        self.app.record_access(&caller, access).await?;
        let signed = self.proofs()?.checkpoint(request.get_ref().fresh).await?;
        Ok(Response::new(v1::GetCheckpointResponse {
            checkpoint: Some(checkpoint_to_proto(&signed)),
        }))
    }

    async fn prove_inclusion(
        &self,
        request: Request<v1::ProveInclusionRequest>,
    ) -> Result<Response<v1::ProveInclusionResponse>, Status> {
        Ok(Response::new(self.inclusion(request).await?))
    }

    async fn prove_consistency(
        &self,
        request: Request<v1::ProveConsistencyRequest>,
    ) -> Result<Response<v1::ProveConsistencyResponse>, Status> {
        let caller = self.auditor(&request)?;
        let access = Access::new("Audit.ProveConsistency", AccessAction::Verify, None);
        self.app.record_access(&caller, access).await?;
        let req = request.into_inner();
        let (new_size, proof, signed) = self
            .proofs()?
            .consistency(req.old_size, req.new_size)
            .await?;
        Ok(Response::new(v1::ProveConsistencyResponse {
            old_size: req.old_size,
            new_size,
            proof: proof.iter().map(|h| h.to_vec()).collect(),
            checkpoint: signed.as_ref().map(checkpoint_to_proto),
        }))
    }

    async fn read_access_log(
        &self,
        request: Request<v1::ReadAccessLogRequest>,
    ) -> Result<Response<v1::ReadAccessLogResponse>, Status> {
        Ok(Response::new(self.access_records(request).await?))
    }

    async fn access_report(
        &self,
        request: Request<v1::AccessReportRequest>,
    ) -> Result<Response<v1::AccessReportResponse>, Status> {
        Ok(Response::new(self.access_report(request).await?))
    }
}

/// An event for the auditor: decoded, or, of an erased family, what is left of it in clear
/// (who published what type when), with `erased` set.
fn recorded_to_proto(rec: &keten_log::RecordedEvent) -> Result<v1::StoredEvent> {
    if !keten_projection::sealed::is_erased(rec) {
        return Ok(stored_to_proto(&stored::decode(rec)?));
    }
    let meta: stored::EventMetadata = serde_json::from_slice(&rec.metadata)
        .map_err(|e| Error::Internal(format!("metadata at position {}: {e}", rec.position)))?;
    Ok(v1::StoredEvent {
        event_id: rec.id.to_string(),
        version: rec.version.0,
        position: rec.position.0,
        committed_at: Some(wire::timestamp(rec.committed_at)),
        partner_id: meta.partner.to_string(),
        partner_kind: v1::PartnerKind::from(meta.partner_kind) as i32,
        person_id: meta.person.to_string(),
        role: v1::Role::from(meta.role) as i32,
        correlation_id: meta.correlation_id,
        schema: 0,
        event: None,
        erased: true,
        event_type: rec.event_type.as_str().to_owned(),
    })
}

fn stored_to_proto(s: &stored::StoredEvent) -> v1::StoredEvent {
    v1::StoredEvent {
        event_id: s.id.to_string(),
        version: s.version.0,
        position: s.position.0,
        committed_at: Some(wire::timestamp(s.committed_at)),
        partner_id: s.metadata.partner.to_string(),
        partner_kind: v1::PartnerKind::from(s.metadata.partner_kind) as i32,
        person_id: s.metadata.person.to_string(),
        role: v1::Role::from(s.metadata.role) as i32,
        correlation_id: s.metadata.correlation_id.clone(),
        schema: u32::from(s.envelope.schema),
        event: Some(convert::event_to_proto(&s.envelope.event)),
        erased: false,
        event_type: s.envelope.event.type_name().to_owned(),
    }
}

/// A checked `ReadAllRequest`.
struct ReadAllFilter {
    family: Option<keten_log::StreamId>,
    partner: Option<String>,
    types: Vec<String>,
    from: Option<CommitTime>,
    until: Option<CommitTime>,
}

impl ReadAllFilter {
    fn keeps(&self, rec: &keten_log::RecordedEvent) -> bool {
        self.family.as_ref().is_none_or(|f| rec.stream == *f)
            && (self.types.is_empty() || self.types.iter().any(|t| t == rec.event_type.as_str()))
            && self.from.is_none_or(|t| rec.committed_at >= t)
    }
}

/// Streams the matching events from `position` to the log's end as it was at the call.
async fn read_all(
    store: Arc<dyn keten_log::EventStore>,
    filter: ReadAllFilter,
    mut position: u64,
    max: u64,
    tx: tokio::sync::mpsc::Sender<Result<v1::ReadAllResponse, Status>>,
) -> Result<()> {
    let Some(head) = store.head().await? else {
        return Ok(());
    };
    let until = filter.until.map_or(Until::Position(head), Until::Time);
    let mut sent = 0u64;
    loop {
        let batch = store
            .read_all(
                ReadFrom::At(GlobalPosition(position)),
                Direction::Forward,
                READ_ALL_BATCH,
                until,
            )
            .await?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        position = last.position.0 + 1;
        for rec in batch
            .iter()
            .filter(|r| r.position <= head && filter.keeps(r))
        {
            let event = recorded_to_proto(rec)?;
            if filter
                .partner
                .as_ref()
                .is_some_and(|p| *p != event.partner_id)
            {
                continue;
            }
            let item = v1::ReadAllResponse { event: Some(event) };
            if tx.send(Ok(item)).await.is_err() {
                // The caller has gone.
                return Ok(());
            }
            sent += 1;
            if max != 0 && sent >= max {
                return Ok(());
            }
        }
        if position > head.0 {
            return Ok(());
        }
    }
}

fn access_error(e: keten_access::AccessError) -> Error {
    Error::Internal(format!("access log: {e}"))
}

fn access_record_to_proto(l: &keten_access::Logged) -> v1::AccessRecord {
    let r = &l.record;
    let (granted, refusal) = match &r.result {
        keten_access::AccessResult::Granted => (true, None),
        keten_access::AccessResult::Refused { reason } => (false, Some(reason.clone())),
    };
    v1::AccessRecord {
        position: l.position.0,
        at: Some(convert::timestamp_from_micros(
            u64::try_from(r.at.timestamp_micros()).unwrap_or(0),
        )),
        person: r.person.to_string(),
        role: v1::Role::from(r.role) as i32,
        partner_id: r.partner.to_string(),
        partner_kind: v1::PartnerKind::from(r.partner_kind) as i32,
        partner_name: r.partner_name.clone(),
        family_id: r.family.as_ref().map(|f| f.to_string()),
        classes: r.classes.iter().map(|c| c.as_str().to_owned()).collect(),
        action: r.action.as_str().to_owned(),
        method: r.method.clone(),
        purpose: r.purpose.clone(),
        granted,
        refusal,
        emergency: r.emergency.clone(),
        families_returned: r.families_returned,
    }
}

fn checkpoint_to_proto(signed: &keten_proof::SignedCheckpoint) -> v1::Checkpoint {
    v1::Checkpoint {
        note: signed.to_note(),
        tree_size: signed.checkpoint.tree_size,
        root_hash: signed.checkpoint.root_hash.to_vec(),
        time: Some(wire::timestamp(signed.checkpoint.time)),
    }
}

/// A family as it stood, for an auditor.
pub struct AsOfFamily {
    pub view: keten_projection::FamilyView,
    /// The day the plan is judged on: the cut-off's date.
    pub day: chrono::NaiveDate,
    pub cutoff: CommitTime,
    pub knowledge: v1::Knowledge,
}

/// The audit service is for auditors, whoever authenticated them.
fn require_auditor(caller: &Caller) -> Result<&Caller> {
    if caller.actor.role != Role::Auditor {
        return Err(Error::PermissionDenied(format!(
            "the audit service is for auditors, not {}",
            caller.actor.role
        )));
    }
    Ok(caller)
}

impl AuditService {
    fn auditor<T>(&self, request: &Request<T>) -> Result<Caller> {
        let caller = self.app.directory.caller(request)?;
        require_auditor(&caller)?;
        Ok(caller)
    }

    fn proofs(&self) -> Result<&crate::proofs::Proofs> {
        self.app
            .proofs
            .as_deref()
            .ok_or_else(|| Error::NoProofs("no `[proofs]` signing key in the configuration".into()))
    }

    async fn inclusion(
        &self,
        request: Request<v1::ProveInclusionRequest>,
    ) -> Result<v1::ProveInclusionResponse> {
        let caller = self.auditor(&request)?;
        let access = Access::new("Audit.ProveInclusion", AccessAction::Verify, None);
        self.app.record_access(&caller, access).await?;
        let req = request.into_inner();
        let proofs = self.proofs()?;
        let position = match req.event {
            Some(Which::Position(p)) => p,
            Some(Which::EventId(id)) => {
                let uuid = uuid::Uuid::parse_str(&id).map_err(|e| Error::InvalidArgument {
                    field: "event_id".into(),
                    description: e.to_string(),
                })?;
                proofs
                    .position_of(EventId(uuid))
                    .await?
                    .ok_or_else(|| Error::InvalidArgument {
                        field: "event_id".into(),
                        description: format!("no event {id} in the log"),
                    })?
            }
            None => {
                return Err(Error::InvalidArgument {
                    field: "event".into(),
                    description: "required: position or event_id".into(),
                });
            }
        };
        let (tree_size, path, signed) = proofs.inclusion(position, req.tree_size).await?;
        // As stored: the proof covers the stored bytes, ciphertext and all.
        let event = self
            .app
            .raw
            .read_all(
                ReadFrom::At(GlobalPosition(position)),
                Direction::Forward,
                1,
                Until::Latest,
            )
            .await?
            .into_iter()
            .next()
            .filter(|e| e.position.0 == position)
            .ok_or_else(|| Error::Internal(format!("position {position} is not in the log")))?;
        Ok(v1::ProveInclusionResponse {
            event: Some(v1::RecordedEvent {
                position,
                stream: event.stream.as_str().to_owned(),
                version: event.version.0,
                event_id: event.id.0.to_string(),
                event_type: event.event_type.as_str().to_owned(),
                committed_at_micros: event.committed_at.0,
                metadata: event.metadata,
                payload: event.payload,
            }),
            tree_size,
            audit_path: path.iter().map(|h| h.to_vec()).collect(),
            checkpoint: signed.as_ref().map(checkpoint_to_proto),
        })
    }

    async fn access_records(
        &self,
        request: Request<v1::ReadAccessLogRequest>,
    ) -> Result<v1::ReadAccessLogResponse> {
        let caller = self.auditor(&request)?;
        let req = request.into_inner();
        let family = req
            .family_id
            .as_deref()
            .map(|f| wire::family_id(f, "family_id"))
            .transpose()?;
        let limit = match req.max_count as usize {
            0 => HISTORY_DEFAULT,
            n => n.min(HISTORY_MAX),
        };
        let access = Access::new("Audit.ReadAccessLog", AccessAction::Read, family.as_ref());
        self.app.record_access(&caller, access).await?;
        let log = self.app.access_log()?;
        let from = GlobalPosition(req.from_position);
        let (logged, more) = match &family {
            Some(f) => {
                let all: Vec<_> = log
                    .for_family(f)
                    .await
                    .map_err(access_error)?
                    .into_iter()
                    .filter(|l| l.position >= from)
                    .collect();
                let more = all.len() > limit;
                (all.into_iter().take(limit).collect::<Vec<_>>(), more)
            }
            None => {
                let page = log.read(Some(from), limit).await.map_err(access_error)?;
                let more = page.len() == limit;
                (page, more)
            }
        };
        let next_from_position = more
            .then(|| logged.last().map(|l| l.position.0 + 1))
            .flatten();
        let records = logged
            .iter()
            .filter(|l| !req.emergency_only || l.record.emergency.is_some())
            .map(access_record_to_proto)
            .collect();
        Ok(v1::ReadAccessLogResponse {
            records,
            next_from_position,
        })
    }

    async fn access_report(
        &self,
        request: Request<v1::AccessReportRequest>,
    ) -> Result<v1::AccessReportResponse> {
        let caller = self.auditor(&request)?;
        self.access_report_for(&caller, request.into_inner()).await
    }

    /// `AccessReport` for a caller authenticated otherwise (the web screen's signed-in person).
    pub async fn access_report_for(
        &self,
        caller: &Caller,
        req: v1::AccessReportRequest,
    ) -> Result<v1::AccessReportResponse> {
        let caller = require_auditor(caller)?;
        let family = wire::family_id(&req.family_id, "family_id")?;
        let language = match v1::ReportLanguage::try_from(req.language) {
            Ok(v1::ReportLanguage::English) => keten_access::Language::English,
            Ok(_) => keten_access::Language::Dutch,
            Err(_) => {
                return Err(Error::InvalidArgument {
                    field: "language".into(),
                    description: format!("unknown value {}", req.language),
                });
            }
        };
        let access = Access::new("Audit.AccessReport", AccessAction::Read, Some(&family));
        self.app.record_access(caller, access).await?;
        let logged = self
            .app
            .access_log()?
            .for_family(&family)
            .await
            .map_err(access_error)?;
        Ok(v1::AccessReportResponse {
            text: keten_access::report(&family, &logged, language),
            records: logged.iter().map(access_record_to_proto).collect(),
        })
    }

    async fn history(
        &self,
        request: Request<v1::ReadFamilyHistoryRequest>,
    ) -> Result<v1::ReadFamilyHistoryResponse> {
        let caller = self.auditor(&request)?;
        self.history_for(&caller, request.into_inner()).await
    }

    /// `ReadFamilyHistory` for a caller authenticated otherwise (the web screen's signed-in person).
    pub async fn history_for(
        &self,
        caller: &Caller,
        req: v1::ReadFamilyHistoryRequest,
    ) -> Result<v1::ReadFamilyHistoryResponse> {
        let caller = require_auditor(caller)?;
        let family = wire::family_id(&req.family_id, "family_id")?;
        let access = Access::new(
            "Audit.ReadFamilyHistory",
            AccessAction::Replay,
            Some(&family),
        )
        .classes(ClassSet::ALL);
        self.app.record_access(caller, access).await?;
        let stream = stored::stream_id(&family);
        if self.app.store.stream_version(&stream).await?.is_none() {
            return Err(Error::NotFound(family.to_string()));
        }
        let limit = match req.max_count as usize {
            0 => HISTORY_DEFAULT,
            n => n.min(HISTORY_MAX),
        };
        let page = self
            .app
            .store
            .read_stream(
                &stream,
                ReadFrom::At(StreamVersion(req.from_version)),
                Direction::Forward,
                limit,
                Until::Latest,
            )
            .await?;
        let next_from_version = (page.len() == limit)
            .then(|| page.last().map(|r| r.version.0 + 1))
            .flatten();
        let mut events = Vec::with_capacity(page.len());
        for recorded in &page {
            events.push(recorded_to_proto(recorded)?);
        }
        Ok(v1::ReadFamilyHistoryResponse {
            events,
            next_from_version,
        })
    }

    async fn as_of(
        &self,
        request: Request<v1::GetFamilyPlanAsOfRequest>,
    ) -> Result<v1::GetFamilyPlanAsOfResponse> {
        let caller = self.auditor(&request)?;
        self.as_of_for(&caller, request.into_inner()).await
    }

    /// `GetFamilyPlanAsOf` for a caller authenticated otherwise (the web screen's signed-in person).
    pub async fn as_of_for(
        &self,
        caller: &Caller,
        req: v1::GetFamilyPlanAsOfRequest,
    ) -> Result<v1::GetFamilyPlanAsOfResponse> {
        let AsOfFamily {
            view,
            day,
            cutoff,
            knowledge,
        } = self.family_as_of_for(caller, &req).await?;
        let family = &view.family;
        let store = &*self.app.store;
        let differences = if req.show_differences {
            keten_projection::knowledge_difference(store, family, cutoff)
                .await?
                .into_iter()
                .map(|d| v1::KnowledgeDifference {
                    version: d.version.0,
                    position: d.position.0,
                    event_type: d.event_type,
                    occurred_on: Some(convert::date_to_proto(d.occurred_on)),
                    committed_at: Some(wire::timestamp(d.committed_at)),
                    partner_id: d.partner,
                    known_later: d.known_later,
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(v1::GetFamilyPlanAsOfResponse {
            plan: Some(convert::plan_to_proto(&view.plan(day))),
            version: view.version.0,
            last_position: view.position.0,
            last_committed_at: Some(wire::timestamp(view.committed_at)),
            knowledge: knowledge as i32,
            differences,
        })
    }

    /// The family as it stood (the access recorded, the auditor's rule applied), before it is
    /// put in an answer: for `GetFamilyPlanAsOf` and for the web screen's time slider.
    pub async fn family_as_of_for(
        &self,
        caller: &Caller,
        req: &v1::GetFamilyPlanAsOfRequest,
    ) -> Result<AsOfFamily> {
        let caller = require_auditor(caller)?;
        let family = wire::family_id(&req.family_id, "family_id")?;
        let access = Access::new(
            "Audit.GetFamilyPlanAsOf",
            AccessAction::Replay,
            Some(&family),
        )
        .classes(ClassSet::ALL);
        self.app.record_access(caller, access).await?;
        let (until, at) = match req.as_of {
            Some(AsOf::At(t)) => {
                let t = wire::commit_time(&t, "at")?;
                (Until::Time(t), Some(t))
            }
            Some(AsOf::Position(p)) => (Until::Position(GlobalPosition(p)), None),
            None => {
                return Err(Error::InvalidArgument {
                    field: "as_of".into(),
                    description: "required: at (a timestamp) or position".into(),
                });
            }
        };
        let knowledge = match v1::Knowledge::try_from(req.knowledge) {
            Ok(v1::Knowledge::AsTrue) => v1::Knowledge::AsTrue,
            Ok(_) => v1::Knowledge::AsKnown,
            Err(_) => {
                return Err(Error::InvalidArgument {
                    field: "knowledge".into(),
                    description: format!("unknown value {}", req.knowledge),
                });
            }
        };
        let store = &*self.app.store;
        let known = self.app.as_of.family_as_of(store, &family, until).await?;
        // The cut-off moment: the one asked for, or as of a position the commit time of the
        // family's last event then. A plan is judged on the cut-off's date.
        let cutoff = match (at, &known) {
            (Some(t), _) => t,
            (None, Some(view)) => view.committed_at,
            (None, None) => return Err(Error::NotFound(family.to_string())),
        };
        let day = keten_projection::date_of(cutoff);
        let view = match knowledge {
            v1::Knowledge::AsTrue => {
                keten_projection::family_as_true_at(store, &family, day).await?
            }
            _ => known,
        }
        .ok_or_else(|| Error::NotFound(family.to_string()))?;
        if let Some(erased) = crate::erasure::erased_answer(&family, &view.state) {
            return Err(erased);
        }
        Ok(AsOfFamily {
            view,
            day,
            cutoff,
            knowledge,
        })
    }

    async fn verify(
        &self,
        request: Request<v1::VerifyLogRequest>,
    ) -> Result<v1::VerifyLogResponse> {
        let caller = self.auditor(&request)?;
        let access = Access::new("Audit.VerifyLog", AccessAction::Verify, None);
        self.app.record_access(&caller, access).await?;
        match self.app.raw.verify().await {
            Ok(n) => Ok(v1::VerifyLogResponse {
                intact: true,
                events_verified: n,
                first_break: None,
            }),
            Err(keten_log::Error::Corrupt {
                file,
                offset,
                position,
                reason,
            }) => {
                let file = self
                    .app
                    .data_dir
                    .as_ref()
                    .and_then(|d| file.strip_prefix(d).ok())
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                Ok(v1::VerifyLogResponse {
                    intact: false,
                    events_verified: position.0,
                    first_break: Some(v1::LogBreak {
                        file,
                        offset,
                        position: position.0,
                        reason,
                    }),
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}
