//! The gRPC API end to end: the real `keten serve`, real sockets, mutual TLS, the generated
//! tonic clients.

mod util;

use std::collections::HashMap;

use chrono::NaiveDate;
use futures::StreamExt;
use keten::client::{Session, publish_request as request};
use keten::scenario::{self, aid, mid, pid};
use keten_domain::{Event, FamilyId, PersonId, Role};
use keten_proto::v1::{self, expected_version::Kind};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use util::{Dir, STRANGER, Server};

fn today() -> NaiveDate {
    keten_projection::today()
}

fn family(name: &str) -> FamilyId {
    FamilyId::new(name).unwrap()
}

fn expected(kind: Kind) -> Option<v1::ExpectedVersion> {
    Some(v1::ExpectedVersion { kind: Some(kind) })
}

fn exact(v: u64) -> Option<v1::ExpectedVersion> {
    expected(Kind::Exact(v))
}

fn any() -> Option<v1::ExpectedVersion> {
    expected(Kind::Any(v1::Empty {}))
}

fn no_stream() -> Option<v1::ExpectedVersion> {
    expected(Kind::NoStream(v1::Empty {}))
}

async fn publish(s: &Session, req: v1::PublishRequest) -> Result<v1::PublishResponse, Status> {
    s.gateway()
        .publish(s.request(req))
        .await
        .map(|r| r.into_inner())
}

async fn plan(s: &Session, family: &FamilyId, min: Option<u64>) -> v1::GetFamilyPlanResponse {
    s.coordination()
        .get_family_plan(s.request(v1::GetFamilyPlanRequest {
            family_id: family.to_string(),
            min_position: min,
        }))
        .await
        .expect("plan")
        .into_inner()
}

/// The number of events in the whole log, by walking it.
async fn log_events(auditor: &Session) -> u64 {
    let r = auditor
        .audit()
        .verify_log(auditor.request(v1::VerifyLogRequest {}))
        .await
        .expect("verify")
        .into_inner();
    assert!(r.intact);
    r.events_verified
}

async fn sessions(server: &Server) -> HashMap<&'static str, Session> {
    let mut m = HashMap::new();
    for (name, who) in [
        ("coordinator", scenario::coordinator()),
        ("fm", scenario::family_manager()),
        ("youth_care", scenario::youth_care_system()),
        ("police", scenario::police_system()),
        ("housing", scenario::housing_system()),
    ] {
        m.insert(
            name,
            server.session(who.partner, who.person, who.role).await,
        );
    }
    m.insert(
        "auditor",
        server
            .session(scenario::MUNICIPALITY, "auditor-1", Role::Auditor)
            .await,
    );
    m
}

fn session_for(server_sessions: &HashMap<&str, Session>, who: &scenario::Who) -> Session {
    let mut s = server_sessions
        .values()
        .find(|s| s.person == who.person)
        .expect("a session for every scenario actor")
        .clone();
    s.role = who.role;
    s
}

fn warning_kinds(p: &v1::FamilyPlan) -> Vec<(String, String)> {
    p.warnings
        .iter()
        .map(|w| {
            let about = w
                .action_id
                .clone()
                .or(w.member_id.clone())
                .or(w.goal_id.clone())
                .unwrap_or_default();
            (keten::report::warning_kind(w.kind), about)
        })
        .collect()
}

fn w(kind: &str, about: &str) -> (String, String) {
    (kind.to_string(), about.to_string())
}

/// Plays the whole demo scenario, each step from its own partner system, and checks the plan
/// and its warnings after every step as a coordinator reads them (read-your-writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_scenario_step_by_step() {
    let dir = Dir::new();
    let server = dir.serve();
    let s = sessions(&server).await;
    let fam = family("gezin-e2e-1");
    let steps = scenario::steps(&fam, today());
    let nofm = w("no family manager", "");
    let noinf = w("family not informed", "");
    let unhelped = |m: &str| w("member without help", m);
    let goal = |g: &str| w("goal without actions", g);
    let overdue = w("action overdue", "a-woning");
    let expected: Vec<Vec<(String, String)>> = vec![
        vec![nofm.clone(), noinf.clone()],
        vec![nofm.clone(), noinf.clone()],
        vec![nofm.clone(), noinf.clone(), w("match not settled", "")],
        vec![nofm.clone(), noinf.clone(), w("match not settled", "")],
        vec![nofm.clone(), noinf.clone()],
        vec![noinf.clone()],
        vec![],
        vec![
            unhelped("c1"),
            unhelped("c2"),
            unhelped("p1"),
            unhelped("p2"),
            goal("g-opvoeding"),
            goal("g-overlast"),
            goal("g-wonen"),
        ],
        vec![goal("g-overlast"), goal("g-wonen")],
        vec![goal("g-overlast"), overdue.clone()],
        vec![overdue.clone()],
        vec![overdue.clone()],
        vec![overdue.clone()],
        vec![overdue.clone()],
        vec![overdue.clone()],
        vec![goal("g-wonen")],
        vec![goal("g-wonen")],
        vec![goal("g-wonen")],
    ];
    assert_eq!(steps.len(), expected.len());
    let coordinator = &s["coordinator"];
    let mut version = None;
    for (step, want) in steps.iter().zip(&expected) {
        let publisher = session_for(&s, &step.who);
        let exp = version.map_or(no_stream(), exact);
        let r = publish(&publisher, request(&fam, exp, &step.events))
            .await
            .unwrap_or_else(|st| panic!("{}: {st:?}", step.label));
        assert_eq!(
            r.version,
            version.map_or(0, |v| v + 1) + step.events.len() as u64 - 1
        );
        version = Some(r.version);
        let p = plan(coordinator, &fam, Some(r.last_position)).await;
        assert_eq!(
            p.version, r.version,
            "read-your-writes after {}",
            step.label
        );
        assert!(p.position >= r.last_position);
        let plan = p.plan.unwrap();
        assert_eq!(&warning_kinds(&plan), want, "after: {}", step.label);
    }

    let p = plan(coordinator, &fam, None).await.plan.unwrap();
    assert_eq!(p.phase, v1::Phase::PlanActive as i32);
    assert_eq!(p.family_manager.as_ref().unwrap().manager, "fm-anna");
    assert_eq!(p.lead.as_ref().unwrap().partner_id, "jeugdzorg");
    assert_eq!(p.open_chain_escalations.len(), 1);
    let c = &p.open_chain_escalations[0];
    assert_eq!(
        (c.partner_id.as_str(), c.level),
        ("woningcorporatie", v1::ChainLevel::Management as i32)
    );
    let e = p.escalation.as_ref().unwrap();
    assert_eq!(e.rung, v1::Rung::Voluntary as i32);
    assert_eq!(e.proposal.as_ref().unwrap().to, v1::Rung::Pressure as i32);
    let o = p.outcomes.as_ref().unwrap();
    assert_eq!(
        (o.police_contacts_before, o.police_contacts_after),
        (Some(3), Some(1))
    );
    assert_eq!(p.partners.len(), 3);
    assert_eq!(p.members.len(), 4);

    // The history records who published every event.
    let h = s["auditor"]
        .audit()
        .read_family_history(s["auditor"].request(v1::ReadFamilyHistoryRequest {
            family_id: fam.to_string(),
            from_version: 0,
            max_count: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.events.len() as u64, version.unwrap() + 1);
    assert_eq!(
        (
            h.events[0].partner_id.as_str(),
            h.events[0].person_id.as_str()
        ),
        ("gemeente", "coord-sanne")
    );
    assert_eq!(h.events[0].role, v1::Role::Coordinator as i32);
    let last = h.events.last().unwrap();
    assert_eq!(
        (last.partner_id.as_str(), last.role),
        ("jeugdzorg", v1::Role::FamilyManager as i32)
    );

    // The families list finds it by its warning and by the partner taking part.
    let l = coordinator
        .coordination()
        .list_families(coordinator.request(v1::ListFamiliesRequest {
            warning_kind: Some(v1::WarningKind::GoalWithoutActions as i32),
            partner_id: Some("woningcorporatie".into()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.families.len(), 1);
    assert_eq!(l.families[0].family_id, fam.as_str());

    // As of the position of the plan's agreement: no actions yet.
    let agreed_at = h
        .events
        .iter()
        .find(|e| {
            matches!(
                e.event.as_ref().unwrap().event,
                Some(v1::family_event::Event::GoalSet(_))
            )
        })
        .unwrap()
        .position;
    let then = s["auditor"]
        .audit()
        .get_family_plan_as_of(s["auditor"].request(v1::GetFamilyPlanAsOfRequest {
            family_id: fam.to_string(),
            as_of: Some(v1::get_family_plan_as_of_request::AsOf::Position(agreed_at)),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(then.plan.unwrap().actions.is_empty());
}

fn error_info(st: &Status) -> (String, HashMap<String, String>) {
    let d = st.get_error_details();
    let info = d
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {st:?}"));
    assert_eq!(info.domain, "keten");
    (info.reason.clone(), info.metadata.clone())
}

fn bad_field(st: &Status) -> String {
    let d = st.get_error_details();
    let br = d
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {st:?}"));
    br.field_violations[0].field.clone()
}

/// Registers a family with a plan in place; returns its version.
async fn family_with_plan(s: &HashMap<&str, Session>, fam: &FamilyId) -> u64 {
    let mut version = None;
    // Up to the plan and the actions of the scenario.
    for step in scenario::steps(fam, today()).into_iter().take(13) {
        let r = publish(
            &session_for(s, &step.who),
            request(fam, version.map_or(no_stream(), exact), &step.events),
        )
        .await
        .unwrap();
        version = Some(r.version);
    }
    version.unwrap()
}

/// Every class of error, with its status code and machine-readable details; none writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_class_with_details_and_nothing_written() {
    let dir = Dir::new();
    let server = dir.serve();
    let s = sessions(&server).await;
    let fam = family("gezin-e2e-errors");
    let v = family_with_plan(&s, &fam).await;
    let auditor = &s["auditor"];
    let before = log_events(auditor).await;
    let t = today();
    let police_contact = Event::PoliceContactRecorded {
        member_id: Some(mid("c1")),
        occurred_on: t,
    };

    // INVALID_ARGUMENT: a malformed event id, named by its field.
    let mut req = request(&fam, exact(v), std::slice::from_ref(&police_contact));
    req.events[0].event_id = "not-a-uuid".into();
    let st = publish(&s["police"], req).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
    assert_eq!(bad_field(&st), "events[0].event_id");
    assert_eq!(error_info(&st).0, "MALFORMED");

    // INVALID_ARGUMENT: a missing date deep inside the second event.
    let mut req = request(
        &fam,
        exact(v),
        &[police_contact.clone(), police_contact.clone()],
    );
    if let Some(v1::family_event::Event::PoliceContactRecorded(p)) =
        &mut req.events[1].event.as_mut().unwrap().event
    {
        p.occurred_on = None;
    }
    let st = publish(&s["police"], req).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert_eq!(
        bad_field(&st),
        "events[1].police_contact_recorded.occurred_on"
    );

    // INVALID_ARGUMENT: a BSN-like family id, and a missing expectation.
    // INVALID_ARGUMENT: one id for two events of a request.
    let mut req = request(
        &fam,
        exact(v),
        &[police_contact.clone(), police_contact.clone()],
    );
    req.events[1].event_id = req.events[0].event_id.clone();
    let st = publish(&s["police"], req).await.unwrap_err();
    assert_eq!(
        (st.code(), bad_field(&st)),
        (Code::InvalidArgument, "events[1].event_id".into())
    );

    // FAILED_PRECONDITION: an event for a family nobody registered.
    let st = publish(
        &s["police"],
        request(
            &family("gezin-x"),
            any(),
            std::slice::from_ref(&police_contact),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (st.code(), error_info(&st).0),
        (Code::FailedPrecondition, "FAMILY_NOT_REGISTERED".into())
    );
    let mut req = request(&fam, exact(v), std::slice::from_ref(&police_contact));
    req.family_id = "123456789".into();
    let st = publish(&s["police"], req).await.unwrap_err();
    assert_eq!(
        (st.code(), bad_field(&st)),
        (Code::InvalidArgument, "family_id".into())
    );
    let st = publish(
        &s["police"],
        request(&fam, None, std::slice::from_ref(&police_contact)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (st.code(), bad_field(&st)),
        (Code::InvalidArgument, "expected".into())
    );

    // FAILED_PRECONDITION: housing reports on youth care's action; the rule and the field.
    let st = publish(
        &s["housing"],
        request(
            &fam,
            exact(v),
            &[Event::ActionDelivered {
                action_id: aid("a-iog"),
                occurred_on: t,
            }],
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(st.code(), Code::FailedPrecondition, "{st:?}");
    let (reason, md) = error_info(&st);
    assert_eq!(reason, "ACTION_BY_OTHER_PARTNER");
    assert_eq!(md["rule"], "action_by_other_partner");
    assert_eq!(md["event_index"], "0");
    let pf = st.get_error_details();
    let pf = pf.precondition_failure().expect("PreconditionFailure");
    assert_eq!(pf.violations[0].r#type, "action_by_other_partner");

    // FAILED_PRECONDITION in the second of two events: the first is not written either.
    let st = publish(
        &s["fm"],
        request(
            &fam,
            exact(v),
            &[
                Event::HomeVisitRecorded { occurred_on: t },
                Event::ChainEscalationRaised {
                    action_id: aid("a-iog"),
                    partner_id: pid("jeugdzorg"),
                    level: keten_domain::ChainLevel::Administrative,
                    reason: "skips two levels".into(),
                    occurred_on: t,
                },
            ],
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(st.code(), Code::FailedPrecondition);
    assert_eq!(error_info(&st).1["event_index"], "1");

    // PERMISSION_DENIED: the police may not assign a family manager (a domain rule about the
    // actor) ...
    let st = publish(
        &s["police"],
        request(
            &fam,
            exact(v),
            &[Event::FamilyManagerAssigned {
                manager: PersonId::new("fm-bert").unwrap(),
                partner_id: pid("jeugdzorg"),
                reason: None,
                occurred_on: t,
            }],
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
    assert!(error_info(&st).1.contains_key("rule"));
    // ... a police person cannot act as family manager (not one of its roles) ...
    let mut police_as_fm = s["police"].clone();
    police_as_fm.role = Role::FamilyManager;
    let st = publish(
        &police_as_fm,
        request(&fam, exact(v), std::slice::from_ref(&police_contact)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (st.code(), error_info(&st).0),
        (Code::PermissionDenied, "ROLE_NOT_ALLOWED".into())
    );
    // ... and a partner system does not read the audit trail.
    let st = s["police"]
        .audit()
        .verify_log(s["police"].request(v1::VerifyLogRequest {}))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied);

    // ABORTED: a stale expected version, with the actual version in the details.
    let st = publish(
        &s["police"],
        request(&fam, exact(v - 1), std::slice::from_ref(&police_contact)),
    )
    .await
    .unwrap_err();
    assert_eq!(st.code(), Code::Aborted);
    let (reason, md) = error_info(&st);
    assert_eq!(reason, "WRONG_EXPECTED_VERSION");
    assert_eq!(md["actual_version"], v.to_string());
    let st = publish(
        &s["coordinator"],
        request(&fam, no_stream(), std::slice::from_ref(&police_contact)),
    )
    .await
    .unwrap_err();
    assert_eq!(st.code(), Code::Aborted);

    // UNAUTHENTICATED: no person in the metadata, and a certificate of no configured partner.
    let st = s["police"]
        .gateway()
        .publish(tonic::Request::new(request(
            &fam,
            exact(v),
            std::slice::from_ref(&police_contact),
        )))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated);
    let stranger = server
        .session(STRANGER, "someone", Role::PartnerSystem)
        .await;
    let st = publish(
        &stranger,
        request(&fam, exact(v), std::slice::from_ref(&police_contact)),
    )
    .await
    .unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated);
    assert!(st.message().contains(STRANGER), "{st:?}");

    // NOT_FOUND on reads of an unknown family.
    let unknown = family("gezin-onbekend");
    let st = s["coordinator"]
        .coordination()
        .get_family_plan(s["coordinator"].request(v1::GetFamilyPlanRequest {
            family_id: unknown.to_string(),
            min_position: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    assert_eq!(error_info(&st).1["family_id"], "gezin-onbekend");
    let st = auditor
        .audit()
        .read_family_history(auditor.request(v1::ReadFamilyHistoryRequest {
            family_id: unknown.to_string(),
            from_version: 0,
            max_count: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    let st = s["coordinator"]
        .coordination()
        .watch_family_plan(s["coordinator"].request(v1::WatchFamilyPlanRequest {
            family_id: unknown.to_string(),
        }))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);

    // ALREADY_EXISTS: an event id used again for another event.
    let ok = publish(
        &s["police"],
        request(&fam, exact(v), std::slice::from_ref(&police_contact)),
    )
    .await
    .unwrap();
    let mut reuse = request(
        &fam,
        any(),
        &[Event::NuisanceReported {
            description: "noise at night".into(),
            occurred_on: t,
        }],
    );
    let history = auditor
        .audit()
        .read_family_history(auditor.request(v1::ReadFamilyHistoryRequest {
            family_id: fam.to_string(),
            from_version: ok.version,
            max_count: 1,
        }))
        .await
        .unwrap()
        .into_inner();
    reuse.events[0].event_id = history.events[0].event_id.clone();
    let st = publish(&s["police"], reuse).await.unwrap_err();
    assert_eq!(
        (st.code(), error_info(&st).0),
        (Code::AlreadyExists, "EVENT_ID_REUSED".into())
    );

    // UNAVAILABLE: a position the projection will not reach within the wait, with the
    // position reached.
    let st = s["coordinator"]
        .coordination()
        .get_family_plan(s["coordinator"].request(v1::GetFamilyPlanRequest {
            family_id: fam.to_string(),
            min_position: Some(1_000_000),
        }))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::Unavailable);
    assert_eq!(error_info(&st).1["reached_position"], before.to_string());

    // Only the one successful publish wrote anything.
    assert_eq!(log_events(auditor).await, before + 1);
}

/// A certificate from another CA does not get past the TLS handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused() {
    let dir = Dir::new();
    let server = dir.serve();
    let other = Dir::new();
    let refused = keten::client::connect(&server.url(), &other.pki, scenario::POLICE).await;
    match refused {
        Err(_) => {}
        Ok(channel) => {
            // With TLS 1.3 the client may finish its side of the handshake before the server
            // refuses the certificate; then the first call fails, before reaching keten.
            let s = Session::new(channel, "sys-politie", Role::PartnerSystem);
            let st = s
                .coordination()
                .get_family_plan(s.request(v1::GetFamilyPlanRequest {
                    family_id: "gezin-x".into(),
                    min_position: None,
                }))
                .await
                .unwrap_err();
            assert!(
                matches!(
                    st.code(),
                    Code::Unavailable | Code::Unknown | Code::Internal
                ),
                "{st:?}"
            );
            assert!(
                st.get_error_details().error_info().is_none(),
                "never reached keten"
            );
        }
    }
}

/// Two publishers expecting the same version: one wins, the other hears the actual version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_with_expected_versions() {
    let dir = Dir::new();
    let server = dir.serve();
    let s = sessions(&server).await;
    let fam = family("gezin-e2e-race");
    let step = &scenario::steps(&fam, today())[0];
    let mut v = publish(&s["coordinator"], request(&fam, no_stream(), &step.events))
        .await
        .unwrap()
        .version;
    let police = &s["police"];
    let contact = Event::PoliceContactRecorded {
        member_id: Some(mid("c1")),
        occurred_on: today(),
    };
    for _ in 0..10 {
        let (a, b) = tokio::join!(
            publish(
                police,
                request(&fam, exact(v), std::slice::from_ref(&contact))
            ),
            publish(
                police,
                request(&fam, exact(v), std::slice::from_ref(&contact))
            ),
        );
        let (won, lost) = match (a, b) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            other => panic!("exactly one must win: {other:?}"),
        };
        assert_eq!(won.version, v + 1);
        assert_eq!(lost.code(), Code::Aborted, "{lost:?}");
        assert_eq!(error_info(&lost).1["actual_version"], (v + 1).to_string());
        v += 1;
    }
    // With "any", every concurrent publisher gets through, each at its own version.
    let results = futures::future::join_all(
        (0..8).map(|_| publish(police, request(&fam, any(), std::slice::from_ref(&contact)))),
    )
    .await;
    let mut versions: Vec<u64> = results.into_iter().map(|r| r.unwrap().version).collect();
    versions.sort();
    assert_eq!(versions, ((v + 1)..=(v + 8)).collect::<Vec<_>>());
}

/// A retry with the same event ids gets the first answer, even where the events would no longer
/// pass validation or the expectation against the newer state; the log does not grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_returns_the_first_answer() {
    let dir = Dir::new();
    let server = dir.serve();
    let s = sessions(&server).await;
    let fam = family("gezin-e2e-retry");
    let steps = scenario::steps(&fam, today());
    let register = request(&fam, no_stream(), &steps[0].events);
    let first = publish(&s["coordinator"], register.clone()).await.unwrap();
    let joined = request(&fam, exact(first.version), &steps[1].events);
    let second = publish(&s["youth_care"], joined.clone()).await.unwrap();
    let contact = request(
        &fam,
        any(),
        &[Event::PoliceContactRecorded {
            member_id: None,
            occurred_on: today(),
        }],
    );
    // The police join first, so that their contact is allowed.
    publish(&s["police"], request(&fam, any(), &steps[2].events[..1]))
        .await
        .unwrap();
    let third = publish(&s["police"], contact.clone()).await.unwrap();
    let count = log_events(&s["auditor"]).await;

    // A second registration would be refused; the retry is answered as the first time.
    assert_eq!(publish(&s["coordinator"], register).await.unwrap(), first);
    // The family has moved past the expected version since.
    assert_eq!(publish(&s["youth_care"], joined).await.unwrap(), second);
    // Valid again against the newer state, yet not appended twice.
    assert_eq!(publish(&s["police"], contact).await.unwrap(), third);
    assert_eq!(log_events(&s["auditor"]).await, count);
}

/// A watcher sees the plan now, then one plan per event, in order, none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_family_plan_sees_every_change_in_order() {
    let dir = Dir::new();
    let server = dir.serve();
    let s = sessions(&server).await;
    let fam = family("gezin-e2e-watch");
    let steps = scenario::steps(&fam, today());
    let mut version = publish(
        &s["coordinator"],
        request(&fam, no_stream(), &steps[0].events),
    )
    .await
    .unwrap()
    .version;
    let coordinator = &s["coordinator"];
    let mut watch = coordinator
        .coordination()
        .watch_family_plan(coordinator.request(v1::WatchFamilyPlanRequest {
            family_id: fam.to_string(),
        }))
        .await
        .unwrap()
        .into_inner();
    let now = watch.next().await.unwrap().unwrap();
    assert_eq!(now.version, version);
    let start = version;
    for step in &steps[1..6] {
        version = publish(
            &session_for(&s, &step.who),
            request(&fam, exact(version), &step.events),
        )
        .await
        .unwrap()
        .version;
    }
    let mut seen = Vec::new();
    let mut partners = Vec::new();
    while seen.last() != Some(&version) {
        let item = tokio::time::timeout(std::time::Duration::from_secs(10), watch.next())
            .await
            .expect("a change within 10 s")
            .unwrap()
            .unwrap();
        seen.push(item.version);
        partners.push(item.plan.unwrap().partners.len());
    }
    assert_eq!(seen, ((start + 1)..=version).collect::<Vec<_>>());
    // Youth care, police and housing join one after another.
    assert_eq!(partners.first(), Some(&1));
    assert_eq!(partners.iter().max(), Some(&3));
    assert!(partners.windows(2).all(|w| w[0] <= w[1]));
}

/// Health checking and server reflection answer, so that standard tools can talk to keten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_metrics_answer() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let dir = Dir::new();
    let server = dir.serve();
    let channel = server.channel(scenario::POLICE).await;
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "keten.v1.PartnerGateway".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, ServingStatus::Serving as i32);

    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("{answer:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for svc in [
        "keten.v1.PartnerGateway",
        "keten.v1.Coordination",
        "keten.v1.Audit",
    ] {
        assert!(names.iter().any(|n| n == svc), "{names:?}");
    }

    // One publish, then the metrics count it.
    let s = sessions(&server).await;
    let fam = family("gezin-e2e-metrics");
    publish(
        &s["coordinator"],
        request(&fam, no_stream(), &scenario::steps(&fam, today())[0].events),
    )
    .await
    .unwrap();
    let _ = publish(
        &s["coordinator"],
        request(&fam, no_stream(), &scenario::steps(&fam, today())[0].events),
    )
    .await;
    let text = http_get(server.metrics);
    assert!(text.contains("keten_appends_total 1"), "{text}");
    assert!(
        text.contains("keten_rejections_total{reason=\"WRONG_EXPECTED_VERSION\"} 1"),
        "{text}"
    );
    assert!(text.contains("keten_append_seconds_bucket"), "{text}");
}

fn http_get(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}

/// Read-your-writes: a query that names the position of a publish sees it, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_after_every_publish() {
    let dir = Dir::new();
    let server = dir.serve();
    let s = sessions(&server).await;
    let police = &s["police"];
    let coordinator = &s["coordinator"];
    let fam = family("gezin-e2e-ryw");
    let steps = scenario::steps(&fam, today());
    publish(coordinator, request(&fam, no_stream(), &steps[0].events))
        .await
        .unwrap();
    publish(police, request(&fam, any(), &steps[2].events[..1]))
        .await
        .unwrap();
    for _ in 0..50 {
        let r = publish(
            police,
            request(
                &fam,
                any(),
                &[Event::PoliceContactRecorded {
                    member_id: None,
                    occurred_on: today(),
                }],
            ),
        )
        .await
        .unwrap();
        let p = plan(coordinator, &fam, Some(r.last_position)).await;
        assert_eq!((p.version, p.last_position), (r.version, r.last_position));
    }
}

/// The README's first command: `keten demo` starts its own server, plays the scenario and
/// prints the plan a coordinator reads; and the same demo against a running server.
#[test]
fn the_demo_runs_on_its_own_and_against_a_running_server() {
    let dir = Dir::new();
    let out = dir.run_ok(&["demo"]);
    for expected in [
        "keten listening on",
        "the family manager reviews the plan",
        "refused: PermissionDenied",
        "phase: plan active",
        "family manager: fm-anna (jeugdzorg)",
        "chain escalation: woningcorporatie on a-woning at management level",
        "! goal without actions",
        "police contacts 3 in the six months before the plan, 1 since",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let server = dir.serve();
    let out = dir.run_ok(&[
        "demo",
        "--server",
        &server.url(),
        "--config",
        dir.config.to_str().unwrap(),
    ]);
    assert!(
        out.contains("escalation ladder: voluntary; proposed: pressure"),
        "{out}"
    );
}
