//! `PartnerGateway`: check the caller, convert the request, publish, convert the answer back.

use std::sync::Arc;

use keten_domain::{Event, FamilyId};
use keten_log::{EventId, ExpectedVersion, StreamVersion};
use keten_proto::convert;
use keten_proto::v1::{self, expected_version::Kind, partner_gateway_server::PartnerGateway};
use tonic::{Request, Response, Status};

use crate::App;
use crate::error::{Error, Result};
use crate::wire;

pub struct Gateway {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl PartnerGateway for Gateway {
    async fn publish(
        &self,
        request: Request<v1::PublishRequest>,
    ) -> Result<Response<v1::PublishResponse>, Status> {
        let outcome = self.publish(request).await;
        if let Err(e) = &outcome {
            self.app.metrics.reject(&e.reason());
            tracing::info!(reason = %e.reason(), error = %e, "publish refused");
        }
        outcome.map(Response::new).map_err(Status::from)
    }
}

impl Gateway {
    async fn publish(&self, request: Request<v1::PublishRequest>) -> Result<v1::PublishResponse> {
        let caller = self.app.directory.caller(&request)?;
        let req = request.into_inner();
        let family = wire::family_id(&req.family_id, "family_id")?;
        let expected = expected_version(req.expected)?;
        let events = events(&family, req.events)?;
        let r = self
            .app
            .publisher
            .publish(
                &caller,
                &family,
                expected,
                &events,
                req.correlation_id,
                crate::today(),
            )
            .await?;
        // Debug, not info: the event itself records who published it, and a log line per
        // publish would put a blocking write on the hot path.
        tracing::debug!(
            partner = %caller.actor.partner,
            person = %caller.actor.person,
            role = %caller.actor.role,
            family = %family,
            events = events.len(),
            version = r.last_version.0,
            position = r.last_position.0,
            "published"
        );
        Ok(v1::PublishResponse {
            version: r.last_version.0,
            first_position: r.first_position.0,
            last_position: r.last_position.0,
            first_version: r.first_version.0,
            committed_at: Some(wire::timestamp(r.committed_at)),
        })
    }
}

fn expected_version(expected: Option<v1::ExpectedVersion>) -> Result<ExpectedVersion> {
    match expected.and_then(|e| e.kind) {
        Some(Kind::Any(_)) => Ok(ExpectedVersion::Any),
        Some(Kind::NoStream(_)) => Ok(ExpectedVersion::NoStream),
        Some(Kind::StreamExists(_)) => Ok(ExpectedVersion::StreamExists),
        Some(Kind::Exact(v)) => Ok(ExpectedVersion::Exact(StreamVersion(v))),
        None => Err(Error::InvalidArgument {
            field: "expected".into(),
            description: "required: one of any, no_stream, stream_exists or exact".into(),
        }),
    }
}

/// Every event converted, or the first malformed one named by its path in the request.
fn events(family: &FamilyId, published: Vec<v1::PublishedEvent>) -> Result<Vec<(EventId, Event)>> {
    if published.is_empty() {
        return Err(Error::InvalidArgument {
            field: "events".into(),
            description: "at least one event is required".into(),
        });
    }
    let mut out = Vec::with_capacity(published.len());
    let mut seen = std::collections::HashMap::new();
    for (i, p) in published.into_iter().enumerate() {
        let id = convert::event_id_from_proto(&format!("events[{i}].event_id"), &p.event_id)?;
        if let Some(first) = seen.insert(id, i) {
            return Err(Error::InvalidArgument {
                field: format!("events[{i}].event_id"),
                description: format!(
                    "repeats the id of events[{first}]; every event needs its own"
                ),
            });
        }
        let event = p.event.ok_or_else(|| Error::InvalidArgument {
            field: format!("events[{i}].event"),
            description: "required".into(),
        })?;
        let event =
            convert::event_from_proto(event).map_err(|e| e.within(&format!("events[{i}]")))?;
        // The stream is named by the request; an event that registers another family there
        // would make it unreadable.
        if let Event::FamilyRegistered { family_id, .. } = &event
            && family_id != family
        {
            return Err(Error::InvalidArgument {
                field: format!("events[{i}].family_registered.family_id"),
                description: format!(
                    "registers `{family_id}` but is published to family `{family}`"
                ),
            });
        }
        out.push((EventId(id), event));
    }
    Ok(out)
}
