//! `Coordination`: the coordinated plans, as the projection holds them.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use keten_log::GlobalPosition;
use keten_proto::v1::{self, coordination_server::Coordination};
use tonic::{Request, Response, Status};

use keten_access::AccessAction;

use crate::App;
use crate::access_log::Access;
use crate::error::{Error, Result};
use crate::wire;

pub struct CoordinationService {
    pub app: Arc<App>,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<v1::WatchFamilyPlanResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Coordination for CoordinationService {
    async fn get_family_plan(
        &self,
        request: Request<v1::GetFamilyPlanRequest>,
    ) -> Result<Response<v1::GetFamilyPlanResponse>, Status> {
        Ok(Response::new(self.get_family_plan(request).await?))
    }

    async fn list_families(
        &self,
        request: Request<v1::ListFamiliesRequest>,
    ) -> Result<Response<v1::ListFamiliesResponse>, Status> {
        Ok(Response::new(self.list_families(request).await?))
    }

    type WatchFamilyPlanStream = WatchStream;

    async fn watch_family_plan(
        &self,
        request: Request<v1::WatchFamilyPlanRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        Ok(Response::new(self.watch(request).await?))
    }

    async fn erase_family(
        &self,
        request: Request<v1::EraseFamilyRequest>,
    ) -> Result<Response<v1::EraseFamilyResponse>, Status> {
        Ok(Response::new(self.erase(request).await?))
    }
}

impl CoordinationService {
    async fn get_family_plan(
        &self,
        request: Request<v1::GetFamilyPlanRequest>,
    ) -> Result<v1::GetFamilyPlanResponse> {
        const METHOD: &str = "Coordination.GetFamilyPlan";
        let caller = self.app.directory.caller(&request)?;
        let req = request.into_inner();
        let family = wire::family_id(&req.family_id, "family_id")?;
        self.app.wait_for(req.min_position).await?;
        let view = self.app.projections.family(&family);
        let sight = self.app.sight(&caller, view.as_deref());
        let access = Access::new(METHOD, AccessAction::Read, Some(&family)).sight(sight);
        // The record is taken before the plan is rendered and written after, with the records
        // of reads served meanwhile; the answer, whatever it is, leaves only once it is written.
        let recorded = self.app.record_access_deferred(&caller, access);
        let answer = self
            .app
            .visible(&family, view, sight)
            .map(|view| v1::GetFamilyPlanResponse {
                plan: Some(self.app.plan_to_proto(&view, sight, crate::today())),
                version: view.version.0,
                last_position: view.position.0,
                position: self.app.position().max(view.position.0),
            });
        recorded.await?;
        answer
    }

    async fn list_families(
        &self,
        request: Request<v1::ListFamiliesRequest>,
    ) -> Result<v1::ListFamiliesResponse> {
        const METHOD: &str = "Coordination.ListFamilies";
        let caller = self.app.directory.caller(&request)?;
        let req = request.into_inner();
        self.app.wait_for(req.min_position).await?;
        let response = crate::list::list_families(&self.app, &caller, req)?;
        let access = Access::new(METHOD, AccessAction::Search, None)
            .classes(keten_domain::classes::readable(caller.actor.partner_kind))
            .families_returned(response.families.len());
        self.app.record_access(&caller, access).await?;
        Ok(response)
    }

    async fn watch(&self, request: Request<v1::WatchFamilyPlanRequest>) -> Result<WatchStream> {
        const METHOD: &str = "Coordination.WatchFamilyPlan";
        let caller = self.app.directory.caller(&request)?;
        let req = request.into_inner();
        let family = wire::family_id(&req.family_id, "family_id")?;
        // Judged on the projection as far as the log is now, so that a family just published
        // to is not refused as unknown.
        if let Some(head) = self.app.store.head().await? {
            self.app.wait_for(Some(head.0)).await?;
        }
        let view = self.app.projections.family(&family);
        let sight = self.app.sight(&caller, view.as_deref());
        let access = Access::new(METHOD, AccessAction::Read, Some(&family)).sight(sight);
        self.app.record_access(&caller, access).await?;
        self.app.visible(&family, view, sight)?;
        let watch = keten_projection::watch_family(self.app.store.clone(), family).await?;
        let mut stopping = self.app.stopping.clone();
        let app = self.app.clone();
        let stream = watch
            // The rules are applied again at every change: a partner that leaves the family,
            // or a family that is erased, ends the watch.
            .take_while(move |item| {
                let keep = match item {
                    Ok(view) => {
                        !app.sight(&caller, Some(view)).is_denied() && !view.state.is_erased()
                    }
                    Err(_) => true,
                };
                std::future::ready(keep)
            })
            .map({
                let app = self.app.clone();
                move |item| {
                    item.map(|view| v1::WatchFamilyPlanResponse {
                        plan: Some(app.plan_to_proto(&view, sight, crate::today())),
                        version: view.version.0,
                        last_position: view.position.0,
                    })
                    .map_err(|e| Status::from(Error::from(e)))
                }
            })
            // A watch never ends by itself; on shutdown it must, or graceful shutdown waits for
            // it forever.
            .take_until(async move {
                let _ = stopping.wait_for(|s| *s).await;
            });
        Ok(Box::pin(stream))
    }

    async fn erase(
        &self,
        request: Request<v1::EraseFamilyRequest>,
    ) -> Result<v1::EraseFamilyResponse> {
        let caller = self.app.directory.caller(&request)?;
        let req = request.into_inner();
        let family = wire::family_id(&req.family_id, "family_id")?;
        let event_id = wire::event_id(&req.event_id, "event_id")?;
        crate::erasure::erase(&self.app, &caller, &family, event_id).await
    }
}

impl App {
    /// Read-your-writes: waits (bounded) until the projection has folded `min_position`.
    pub async fn wait_for(&self, min_position: Option<u64>) -> Result<()> {
        if let Some(p) = min_position {
            self.projections
                .wait_for(GlobalPosition(p), self.read_wait)
                .await?;
        }
        Ok(())
    }

    /// The position the projection has folded, 0 before the first event.
    pub fn position(&self) -> u64 {
        self.projections.position().map_or(0, |p| p.0)
    }
}
