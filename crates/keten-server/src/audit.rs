//! `Audit`: the events as stored, the plan as it stood, the integrity of the log.
//!
//! Only auditors and coordinators read here: the history names every person who acted.

use std::sync::Arc;

use keten_domain::Role;
use keten_log::{Direction, GlobalPosition, ReadFrom, StreamVersion, Until};
use keten_projection::stored;
use keten_proto::convert;
use keten_proto::v1::{self, audit_server::Audit, get_family_plan_as_of_request::AsOf};
use tonic::{Request, Response, Status};

use crate::App;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::wire;

const HISTORY_DEFAULT: usize = 1000;
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
            let s = stored::decode(recorded)?;
            events.push(v1::StoredEvent {
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
            });
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
        let view = keten_projection::family_as_of(&*self.app.store, &family, until)
            .await?
            .ok_or_else(|| Error::NotFound(family.to_string()))?;
        // A plan as of a moment is judged on that moment's date; as of a position, on the
        // date its last event was committed.
        let day = keten_projection::date_of(at.unwrap_or(view.committed_at));
        Ok(v1::GetFamilyPlanAsOfResponse {
            plan: Some(convert::plan_to_proto(&view.plan(day))),
            version: view.version.0,
            last_position: view.position.0,
            last_committed_at: Some(wire::timestamp(view.committed_at)),
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
