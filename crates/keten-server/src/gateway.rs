//! `PartnerGateway`: check the caller, convert the request, publish, convert the answer back.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use keten_access::AccessAction;
use keten_domain::classes::{ClassSet, classes_of, classes_of_in};
use keten_domain::{Event, FamilyId};
use keten_log::{
    EventId, ExpectedVersion, GlobalPosition, RecordedEvent, StreamVersion, SubscriptionFilter,
};
use keten_proto::convert;
use keten_proto::v1::{self, expected_version::Kind, partner_gateway_server::PartnerGateway};
use tonic::{Request, Response, Status};

use crate::App;
use crate::access_log::Access;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::need_to_know::{by_need, told_of_erasure};
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

    type SubscribeStream = NotificationStream;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<NotificationStream>, Status> {
        Ok(Response::new(self.subscribe(request).await?))
    }
}

type NotificationStream =
    Pin<Box<dyn Stream<Item = Result<v1::Notification, Status>> + Send + 'static>>;

impl Gateway {
    async fn publish(&self, request: Request<v1::PublishRequest>) -> Result<v1::PublishResponse> {
        let caller = self.app.directory.caller(&request)?;
        let req = request.into_inner();
        let family = wire::family_id(&req.family_id, "family_id")?;
        let expected = expected_version(req.expected)?;
        let events = events(&family, req.events)?;
        // The access record is taken before the append and written after it, together with
        // the records of the other publishes under way, so that a publish waits for one fsync
        // rather than two in a row and the records share their writes. A publish that then
        // fails leaves the record of an attempt (the access log may say too much, never too
        // little); a record
        // that fails while the append succeeds loses nothing, because the event itself records
        // who created it, for whom and when (its metadata, in clear). Classified against the
        // family as it stands, so that an action is judged by its goal's life domain.
        let classes = match self.app.projections.family(&family) {
            Some(view) => events.iter().fold(ClassSet::EMPTY, |all, (_, e)| {
                all.union(classes_of_in(&view.state, e))
            }),
            None => events
                .iter()
                .fold(ClassSet::EMPTY, |all, (_, e)| all.union(classes_of(e))),
        };
        let access = Access::new(
            "PartnerGateway.Publish",
            AccessAction::Create,
            Some(&family),
        )
        .classes(classes);
        let recorded = self.app.record_access_deferred(&caller, access);
        let published = self
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
            .await;
        let recorded = recorded.await;
        let r = published?;
        if let Err(error) = recorded {
            tracing::error!(
                %family,
                %error,
                "published, but its access record was not written; the event records its creator"
            );
        }
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

impl Gateway {
    /// Thin notifications from the raw log: they carry no payload, so they need no key, and an
    /// erased family's `FamilyErased` flows like any other event.
    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<NotificationStream> {
        let caller = self.app.directory.caller(&request)?;
        let req = request.into_inner();
        let access = Access::new("PartnerGateway.Subscribe", AccessAction::Search, None);
        self.app.record_access(&caller, access).await?;
        let filter = SubscriptionFilter {
            stream_prefix: Some(keten_projection::stored::STREAM_PREFIX.to_owned()),
            event_types: Vec::new(),
        };
        let events = self
            .app
            .raw
            .subscribe_all(req.after_position.map(GlobalPosition), filter)
            .await?;
        let app = self.app.clone();
        let mut stopping = self.app.stopping.clone();
        let stream = events
            .then(move |item| {
                let app = app.clone();
                let caller = caller.clone();
                async move {
                    let rec = match item {
                        Ok(rec) => rec,
                        Err(e) => return Some(Err(Status::from(Error::from(e)))),
                    };
                    // Judged on the family as folded up to this event at least, so that a
                    // partner that just joined is not passed over.
                    if let Err(e) = app.projections.wait_for(rec.position, app.read_wait).await {
                        return Some(Err(Status::from(Error::from(e))));
                    }
                    notification(&app, &caller, &rec).map(Ok)
                }
            })
            .filter_map(std::future::ready)
            .take_until(async move {
                let _ = stopping.wait_for(|s| *s).await;
            });
        Ok(Box::pin(stream))
    }
}

/// The notification of `rec` for `caller`, if the caller's partner takes part in the family
/// now, or, for an erasure, ever took part in it.
fn notification(app: &App, caller: &Caller, rec: &RecordedEvent) -> Option<v1::Notification> {
    let family = keten_projection::stored::family_of(&rec.stream)?;
    let view = app.projections.family(&family)?;
    let erasure = rec.event_type.as_str() == keten_projection::sealed::ERASED_TYPE;
    let told = if erasure || view.state.is_erased() {
        erasure && told_of_erasure(&view.state, caller)
    } else {
        by_need(&app.directory, caller, &view).is_some()
    };
    told.then(|| v1::Notification {
        position: rec.position.0,
        family_id: family.to_string(),
        version: rec.version.0,
        event_type: rec.event_type.as_str().to_owned(),
        committed_at: Some(wire::timestamp(rec.committed_at)),
    })
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
    let mut seen = std::collections::HashMap::with_capacity(published.len());
    for (i, p) in published.into_iter().enumerate() {
        // The field's path is spelled out only for an error, not for every event.
        let id = convert::event_id_from_proto("event_id", &p.event_id)
            .map_err(|e| e.within(&format!("events[{i}]")))?;
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
        // The key must go with the event, and only EraseFamily destroys it.
        if matches!(event, Event::FamilyErased { .. }) {
            return Err(Error::InvalidArgument {
                field: format!("events[{i}].family_erased"),
                description: "an erasure is not published: call Coordination.EraseFamily, \
                              which records it and destroys the family's key"
                    .into(),
            });
        }
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
