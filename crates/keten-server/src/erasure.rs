//! Erasure by crypto-shredding: the family's `FamilyErased` event, then its key destroyed.
//!
//! The order makes a crash at any point safe. The event is the decision, durable in the log
//! before anything is destroyed; the key goes last. A crash between the two leaves a family
//! whose erasure is recorded and whose key still exists: [`finish_interrupted`] destroys it at
//! the next start, before the server takes calls. In between, the projection folds the event
//! (which leaves nothing of the family in memory) and writes a fresh snapshot, so that the
//! snapshot on disk holds nothing of the family either.
//!
//! Proofs are not touched: they cover the stored ciphertext, which does not change.

use chrono::NaiveDate;
use keten_access::AccessAction;
use keten_domain::{ErasureGround, Event, FamilyId, FamilyState, PartnerKind, Role};
use keten_log::{EventId, ExpectedVersion};
use keten_proto::v1;

use crate::App;
use crate::access_log::Access;
use crate::auth::Caller;
use crate::error::{Error, Result};

const METHOD: &str = "Coordination.EraseFamily";

/// The answer to a read of an erased family, for those who may know: when, and on what ground.
pub fn erased_answer(family: &FamilyId, state: &FamilyState) -> Option<Error> {
    let erased = state.privacy.erased.as_ref()?;
    let ground = match &erased.ground {
        ErasureGround::Request {
            requested_on,
            requester_role,
        } => format!("at the request of a {requester_role} of {requested_on}"),
        ErasureGround::RetentionEnded { help_ended_on } => {
            format!("because its retention period ended (help ended on {help_ended_on})")
        }
    };
    Some(Error::Erased(format!(
        "family `{family}` was erased on {} {ground}; nothing of it can be read",
        erased.on
    )))
}

/// Erases `family` for `caller`, a municipality's coordinator.
pub async fn erase(
    app: &App,
    caller: &Caller,
    family: &FamilyId,
    event_id: EventId,
) -> Result<v1::EraseFamilyResponse> {
    let view = app.projections.family(family);
    let sight = app.sight(caller, view.as_deref());
    let may_erase = caller.actor.role == Role::Coordinator
        && caller.actor.partner_kind == PartnerKind::Municipality;
    if !may_erase {
        let access = Access::new(METHOD, AccessAction::Erase, Some(family)).refused();
        app.record_access(caller, access).await?;
        return Err(Error::PermissionDenied(
            "only a coordinator of a municipality may erase a family".into(),
        ));
    }
    if sight.is_denied() {
        let access = Access::new(METHOD, AccessAction::Erase, Some(family)).refused();
        app.record_access(caller, access).await?;
        return Err(Error::NotFound(family.to_string()));
    }
    let view = view.expect("a granted sight has a view");
    let today = crate::today();
    let event = match &view.state.privacy.erased {
        // Already erased: a retry offers the very event of the first call, which the log
        // recognises by its id and answers with the first result (another id is refused by
        // the domain: the family accepts nothing more).
        Some(erased) => Event::FamilyErased {
            ground: erased.ground.clone(),
            notified: erased.notified.clone(),
            occurred_on: erased.on,
        },
        None => Event::FamilyErased {
            ground: ground(&view.state, today, &app.policy),
            notified: view
                .state
                .participation_history()
                .into_keys()
                .cloned()
                .collect(),
            occurred_on: today,
        },
    };
    // The domain's rules decide: a legal hold, or no ground at all, refuses it here.
    let appended = app
        .publisher
        .publish(
            caller,
            family,
            ExpectedVersion::Any,
            &[(event_id, event)],
            None,
            today,
        )
        .await?;
    drop(view);
    app.wait_for(Some(appended.last_position.0)).await?;
    shred(app, family).await?;
    let access = Access::new(METHOD, AccessAction::Erase, Some(family)).classes(sight.classes());
    app.record_access(caller, access).await?;
    tracing::info!(%family, position = appended.last_position.0, "family erased");
    Ok(v1::EraseFamilyResponse {
        position: appended.last_position.0,
        erased_on: Some(keten_proto::convert::date_to_proto(
            keten_projection::date_of(appended.committed_at),
        )),
    })
}

/// The ground the family can be erased on today: its pending request, else the end of its
/// retention period. Where there is neither, the request ground is proposed anyway and the
/// domain refuses it with the rule that names what is missing.
fn ground(
    state: &FamilyState,
    today: NaiveDate,
    policy: &keten_domain::privacy::Policy,
) -> ErasureGround {
    if let Some(request) = &state.privacy.erasure_request {
        return ErasureGround::Request {
            requested_on: request.requested_on,
            requester_role: request.requester_role,
        };
    }
    match state.help_ended_on() {
        Some(ended) if policy.destruction_due(ended) <= today => ErasureGround::RetentionEnded {
            help_ended_on: ended,
        },
        _ => ErasureGround::Request {
            requested_on: today,
            requester_role: keten_domain::MemberRole::Parent,
        },
    }
}

/// After the erasure is folded: a snapshot without the family, then the key destroyed.
async fn shred(app: &App, family: &FamilyId) -> Result<()> {
    app.projections.snapshot_now().await?;
    app.as_of.forget(family);
    app.publisher.recent.forget(family);
    if let Some(keys) = &app.keys {
        let stream = keten_projection::stored::stream_id(family);
        keys.destroy(&keten_projection::sealed::key_id(&stream), crate::now_utc())
            .await
            .map_err(|e| {
                Error::Internal(format!("destroying the key of family `{family}`: {e}"))
            })?;
    }
    Ok(())
}

/// Destroys the keys of families whose erasure is recorded but whose key survived a crash.
pub async fn finish_interrupted(app: &App) -> Result<()> {
    let Some(keys) = &app.keys else {
        return Ok(());
    };
    let mut done = 0;
    for view in app.projections.erased_families() {
        let stream = keten_projection::stored::stream_id(&view.family);
        let id = keten_projection::sealed::key_id(&stream);
        let live = matches!(
            keys.key(&id)
                .await
                .map_err(|e| Error::Internal(format!("key store: {e}")))?,
            keten_keys::KeyState::Live(_)
        );
        if live {
            tracing::warn!(family = %view.family, "finishing an erasure a crash interrupted");
            shred(app, &view.family).await?;
            done += 1;
        }
    }
    if done > 0 {
        tracing::info!(families = done, "interrupted erasures finished");
    }
    Ok(())
}
