//! `Audit`: the events as stored, the plan as it stood, the integrity of the log.
//!
//! Only auditors and coordinators read here: the history names every person who acted.

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

use crate::App;
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
        crate::access_log(&caller, "ReadAll", family.as_ref());
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
        crate::access_log(&caller, "GetCheckpoint", None);
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
        crate::access_log(&caller, "ProveConsistency", None);
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
            let s = stored::decode(rec)?;
            if filter
                .partner
                .as_ref()
                .is_some_and(|p| *p != s.metadata.partner.to_string())
            {
                continue;
            }
            let item = v1::ReadAllResponse {
                event: Some(stored_to_proto(&s)),
            };
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

fn checkpoint_to_proto(signed: &keten_proof::SignedCheckpoint) -> v1::Checkpoint {
    v1::Checkpoint {
        note: signed.to_note(),
        tree_size: signed.checkpoint.tree_size,
        root_hash: signed.checkpoint.root_hash.to_vec(),
        time: Some(wire::timestamp(signed.checkpoint.time)),
    }
}

impl AuditService {
    fn auditor<T>(&self, request: &Request<T>) -> Result<Caller> {
        let caller = self.app.directory.caller(request)?;
        if !matches!(caller.actor.role, Role::Auditor | Role::Coordinator) {
            return Err(Error::PermissionDenied(format!(
                "the audit service is for auditors and coordinators, not {}",
                caller.actor.role
            )));
        }
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
        crate::access_log(&caller, "ProveInclusion", None);
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
        let event = self
            .app
            .store
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

    async fn history(
        &self,
        request: Request<v1::ReadFamilyHistoryRequest>,
    ) -> Result<v1::ReadFamilyHistoryResponse> {
        let caller = self.auditor(&request)?;
        let req = request.into_inner();
        let family = wire::family_id(&req.family_id, "family_id")?;
        crate::access_log(&caller, "ReadFamilyHistory", Some(&family));
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
            events.push(stored_to_proto(&stored::decode(recorded)?));
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
        let req = request.into_inner();
        let family = wire::family_id(&req.family_id, "family_id")?;
        crate::access_log(&caller, "GetFamilyPlanAsOf", Some(&family));
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
        let differences = if req.show_differences {
            keten_projection::knowledge_difference(store, &family, cutoff)
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

    async fn verify(
        &self,
        request: Request<v1::VerifyLogRequest>,
    ) -> Result<v1::VerifyLogResponse> {
        let caller = self.auditor(&request)?;
        crate::access_log(&caller, "VerifyLog", None);
        match self.app.store.verify().await {
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
