//! `Coordination`: the coordinated plans, as the projection holds them.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use keten_log::GlobalPosition;
use keten_proto::convert;
use keten_proto::v1::{self, coordination_server::Coordination};
use tonic::{Request, Response, Status};

use crate::App;
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
}

impl CoordinationService {
    async fn get_family_plan(
        &self,
        request: Request<v1::GetFamilyPlanRequest>,
    ) -> Result<v1::GetFamilyPlanResponse> {
        let caller = self.app.directory.caller(&request)?;
        let req = request.into_inner();
        let family = wire::family_id(&req.family_id, "family_id")?;
        crate::access_log(&caller, "GetFamilyPlan", Some(&family));
        self.app.wait_for(req.min_position).await?;
        let view = self
            .app
            .projections
            .family(&family)
            .ok_or_else(|| Error::NotFound(family.to_string()))?;
        Ok(v1::GetFamilyPlanResponse {
            plan: Some(convert::plan_to_proto(&view.plan(crate::today()))),
            version: view.version.0,
            last_position: view.position.0,
            position: self.app.position().max(view.position.0),
        })
    }

    async fn list_families(
        &self,
        request: Request<v1::ListFamiliesRequest>,
    ) -> Result<v1::ListFamiliesResponse> {
        let caller = self.app.directory.caller(&request)?;
        let req = request.into_inner();
        crate::access_log(&caller, "ListFamilies", None);
        self.app.wait_for(req.min_position).await?;
        crate::list::list_families(&self.app, req)
    }

    async fn watch(&self, request: Request<v1::WatchFamilyPlanRequest>) -> Result<WatchStream> {
        let caller = self.app.directory.caller(&request)?;
        let req = request.into_inner();
        let family = wire::family_id(&req.family_id, "family_id")?;
        crate::access_log(&caller, "WatchFamilyPlan", Some(&family));
        let watch = keten_projection::watch_family(self.app.store.clone(), family).await?;
        let mut stopping = self.app.stopping.clone();
        let stream = watch
            .map(|item| {
                item.map(|view| v1::WatchFamilyPlanResponse {
                    plan: Some(convert::plan_to_proto(&view.plan(crate::today()))),
                    version: view.version.0,
                    last_position: view.position.0,
                })
                .map_err(|e| Status::from(Error::from(e)))
            })
            // A watch never ends by itself; on shutdown it must, or graceful shutdown waits for
            // it forever.
            .take_until(async move {
                let _ = stopping.wait_for(|s| *s).await;
            });
        Ok(Box::pin(stream))
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
