//! The web screen over real HTTPS sockets against a real server: sign-in and sessions, CSRF,
//! escaping, need-to-know, access records, live updates, history and the access report.

mod common;

use common::*;
use futures::StreamExt;
use keten_domain::Event;
use reqwest::StatusCode;

fn web_config(extra: &str) -> String {
    format!("{extra}\n{LOCAL_PEOPLE}")
}

#[tokio::test]
async fn signing_in_and_out_and_an_old_cookie_leads_back_to_sign_in() {
    let h = Harness::start(&web_config("")).await;
    let mut b = h.browser();
    let root = b.get("/").await;
    assert_eq!(root.location(), Some("/login"));
    let login = b.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    for expected in [
        r#"<form id="local-login" method="post" action="/login">"#,
        r#"<select id="person" name="login">"#,
        r#"<option value="coordinator">"#,
        r#"<button id="sign-in" type="submit">"#,
        "Demo-aanmelding",
        r#"<html lang="nl">"#,
    ] {
        assert!(
            login.body.contains(expected),
            "{expected} in {}",
            login.body
        );
    }
    assert!(!login.body.contains("oidc-login"));

    b.sign_in("coordinator").await;
    let old = b.cookie.clone();
    assert_eq!(b.get("/").await.location(), Some("/families"));
    let families = b.get("/families").await;
    assert_eq!(families.status, StatusCode::OK);
    assert!(families.body.contains(r#"<span id="who">"#));
    assert!(families.body.contains("coord-sanne"));
    assert!(families.body.contains("Gemeente Amsterdam"));
    let csrf = b.csrf().await;
    let out = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.location(), Some("/login"));
    b.cookie = old;
    assert_eq!(b.get("/families").await.location(), Some("/login"));
    h.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_http_only_secure_and_same_site() {
    let h = Harness::start(&web_config("")).await;
    let mut b = h.browser();
    let a = b.post("/login", &[("login", "coordinator")]).await;
    let set = a.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(set.starts_with(&format!("{}=", keten_web::COOKIE)), "{set}");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    // An unknown login is refused with one answer, and no session.
    let mut c = h.browser();
    let refused = c.post("/login", &[("login", "nobody")]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(c.cookie.is_none());
    h.stop().await;
}

#[tokio::test]
async fn a_post_without_the_form_token_or_from_another_site_is_refused() {
    let h = Harness::start(&web_config("")).await;
    let mut b = h.browser();
    b.sign_in("coordinator").await;
    let no_token = b.post("/logout", &[]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let wrong = b.post("/logout", &[("csrf", "guessed")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // Still signed in: nothing was done.
    assert_eq!(b.get("/families").await.status, StatusCode::OK);
    // The right token from another origin.
    let csrf = b.csrf().await;
    let cross = b
        .client
        .post(format!("{}/logout", b.url))
        .header("origin", "https://evil.example")
        .header("cookie", b.cookie.clone().unwrap())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert_eq!(b.get("/families").await.status, StatusCode::OK);
    h.stop().await;
}

#[tokio::test]
async fn a_session_ends_after_its_idle_time() {
    // The session table's clock is tested in `session`; here the configured lifetime reaches
    // the table: one minute idle, checked with a time one minute on.
    let h = Harness::start(&web_config("session_minutes = 1\nsession_max_minutes = 5")).await;
    let mut b = h.browser();
    b.sign_in("coordinator").await;
    let id = b.cookie.clone().unwrap();
    let id = id.split_once('=').unwrap().1;
    let now = std::time::Instant::now();
    assert!(h.web.sessions().touch(id, now).is_some());
    assert!(
        h.web
            .sessions()
            .touch(id, now + std::time::Duration::from_secs(61))
            .is_none()
    );
    assert_eq!(b.get("/families").await.location(), Some("/login"));
    h.stop().await;
}

#[tokio::test]
async fn hostile_text_is_escaped() {
    let h = Harness::start(&web_config("")).await;
    let hostile = r#"<script>alert("x")</script><img src=x onerror=alert(1)>"#;
    let family = family_with_plan(&h, "gezin-hostile", false, hostile).await;
    // Youth care's family manager reads the health class the text is in.
    let mut b = h.browser();
    b.sign_in("manager").await;
    let page = b.get(&format!("/families/{family}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img src=x"));
    assert!(page.body.contains("&lt;script&gt;alert("));
    h.stop().await;
}

#[tokio::test]
async fn the_police_do_not_get_health_and_an_unseen_family_is_not_found() {
    let h = Harness::start(&web_config("")).await;
    let seen = family_with_plan(&h, "gezin-politie", true, "health-secret-text").await;
    let unseen = family_with_plan(&h, "gezin-zonder-politie", false, "other-secret").await;
    let mut agent = h.browser();
    agent.sign_in("agent").await;
    let page = agent.get(&format!("/families/{seen}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("health-secret-text"), "{}", page.body);
    assert!(!page.body.contains(r#"data-goal="g-health""#));
    assert!(page.body.contains(r#"data-goal="g-safety""#));
    assert!(page.body.contains(r#"<li data-class="health">"#));
    assert!(
        page.body
            .contains(r#"<main id="family" data-family="gezin-politie""#)
    );

    let list = agent.get("/families").await;
    assert!(list.body.contains(r#"data-family="gezin-politie""#));
    assert!(!list.body.contains("gezin-zonder-politie"));

    let out_of_sight = agent.get(&format!("/families/{unseen}")).await;
    let unknown = agent.get("/families/gezin-bestaat-niet").await;
    assert_eq!(out_of_sight.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(out_of_sight.body, unknown.body);

    // The coordinator, with the municipality's classes, sees both, and no health either
    // (the municipality does not read health); youth care's manager does.
    let mut manager = h.browser();
    manager.sign_in("manager").await;
    let page = manager.get(&format!("/families/{seen}")).await;
    assert!(page.body.contains("health-secret-text"));
    h.stop().await;
}

#[tokio::test]
async fn every_page_view_is_an_access_record() {
    let h = Harness::start(&web_config("")).await;
    let family = family_with_plan(&h, "gezin-inzage", true, "x").await;
    let mut agent = h.browser();
    agent.sign_in("agent").await;
    assert_eq!(h.access_records(&family, "Web.Family").await, 0);
    agent.get(&format!("/families/{family}")).await;
    agent.get(&format!("/families/{family}")).await;
    assert_eq!(h.access_records(&family, "Web.Family").await, 2);
    let records = h
        .app
        .access
        .as_ref()
        .unwrap()
        .for_family(&family)
        .await
        .unwrap();
    let r = &records
        .iter()
        .find(|l| l.record.method == "Web.Family")
        .unwrap()
        .record;
    assert_eq!(r.person.as_str(), "agent-jan");
    assert_eq!(r.partner.as_str(), "politie");
    assert_eq!(r.purpose.as_deref(), Some("web"));
    assert!(
        !r.classes
            .contains(&keten_domain::classes::DataClass::Health)
    );

    // A refused view is recorded too.
    let unseen = family_with_plan(&h, "gezin-geweigerd", false, "x").await;
    agent.get(&format!("/families/{unseen}")).await;
    let refused = h
        .app
        .access
        .as_ref()
        .unwrap()
        .for_family(&unseen)
        .await
        .unwrap();
    assert!(refused.iter().any(|l| l.record.method == "Web.Family"
        && matches!(l.record.result, keten_access::AccessResult::Refused { .. })));

    // The list is a search record; the auditor's history, as-of and report are the Audit
    // service's own records.
    let before = h
        .app
        .access
        .as_ref()
        .unwrap()
        .read(None, 100_000)
        .await
        .unwrap();
    let searches = |all: &[keten_access::Logged]| {
        all.iter()
            .filter(|l| l.record.method == "Web.Families")
            .count()
    };
    agent.get("/families").await;
    let after = h
        .app
        .access
        .as_ref()
        .unwrap()
        .read(None, 100_000)
        .await
        .unwrap();
    assert_eq!(searches(&after), searches(&before) + 1);

    let mut auditor = h.browser();
    auditor.sign_in("auditor").await;
    auditor.get(&format!("/families/{family}/history")).await;
    auditor
        .get(&format!("/families/{family}/access-report"))
        .await;
    assert_eq!(
        h.access_records(&family, "Audit.ReadFamilyHistory").await,
        1
    );
    assert_eq!(
        h.access_records(&family, "Audit.GetFamilyPlanAsOf").await,
        1
    );
    assert_eq!(h.access_records(&family, "Audit.AccessReport").await, 1);
    h.stop().await;
}

#[tokio::test]
async fn the_family_list_shows_warnings_and_filters_by_them() {
    let h = Harness::start(&web_config("")).await;
    family_with_plan(&h, "gezin-a", true, "x").await;
    let mut b = h.browser();
    b.sign_in("coordinator").await;
    let list = b.get("/families").await;
    assert!(list.body.contains(r#"<table id="families">"#));
    assert!(list.body.contains(r#"<tr data-family="gezin-a""#));
    for col in [
        "rung",
        "manager",
        "lead",
        "review",
        "months-left",
        "warnings",
    ] {
        assert!(list.body.contains(&format!(r#"data-col="{col}""#)), "{col}");
    }
    // Youth care and the police joined without settling the match: it stands out.
    assert!(
        list.body.contains(r#"data-kind="match_not_settled""#),
        "{}",
        list.body
    );
    assert!(list.body.contains(r#"class="urgent""#));
    let filtered = b.get("/families?warning=no_family_manager").await;
    assert!(!filtered.body.contains(r#"data-family="gezin-a""#));
    let bad = b.get("/families?warning=nonsense").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("warning"));
    let en = b.get("/families?lang=en").await;
    assert!(en.body.contains(r#"<html lang="en">"#));
    // Remembered in the session.
    assert!(
        b.get("/families")
            .await
            .body
            .contains(r#"<html lang="en">"#)
    );
    h.stop().await;
}

#[tokio::test]
async fn the_family_page_updates_live_when_a_partner_publishes() {
    let h = Harness::start(&web_config("")).await;
    let family = family_with_plan(&h, "gezin-live", true, "x").await;
    let mut b = h.browser();
    b.sign_in("coordinator").await;
    let live = b
        .client
        .get(format!("{}/families/{family}/live", b.url))
        .header("cookie", b.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert!(
        live.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = live.bytes_stream();
    let mut seen = String::new();
    let first = next_message(&mut body, &mut seen).await;
    assert!(!first["html"].as_str().unwrap().contains("a-new"));
    let position = h
        .publish(
            YOUTH_CARE,
            &family,
            vec![Event::ActionCommitted {
                action_id: keten_domain::ActionId::new("a-new").unwrap(),
                goal_id: keten_domain::GoalId::new("g-safety").unwrap(),
                partner_id: keten_domain::PartnerId::new("jeugdzorg").unwrap(),
                member_ids: vec![keten_domain::MemberId::new("c1").unwrap()],
                intervention: None,
                description: "a new action".into(),
                start_on: today(),
                expected_end: today() + chrono::Days::new(30),
                occurred_on: today(),
            }],
        )
        .await;
    let update = next_message(&mut body, &mut seen).await;
    assert_eq!(update["position"].as_u64(), Some(position));
    assert!(
        update["html"]
            .as_str()
            .unwrap()
            .contains(r#"data-action="a-new""#)
    );
    assert_eq!(h.access_records(&family, "Web.FamilyLive").await, 1);
    drop(body);
    h.stop().await;
}

#[tokio::test]
async fn a_live_stream_ends_when_its_session_is_signed_out() {
    let h = Harness::start(&web_config("")).await;
    let family = family_with_plan(&h, "gezin-uit", true, "x").await;
    let mut b = h.browser();
    b.sign_in("coordinator").await;
    let live = b
        .client
        .get(format!("{}/families/{family}/live", b.url))
        .header("cookie", b.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let mut body = live.bytes_stream();
    let mut seen = String::new();
    next_message(&mut body, &mut seen).await;

    let csrf = b.csrf().await;
    assert_eq!(
        b.post("/logout", &[("csrf", &csrf)]).await.location(),
        Some("/login")
    );
    h.publish(
        YOUTH_CARE,
        &family,
        vec![Event::ActionCommitted {
            action_id: keten_domain::ActionId::new("a-after").unwrap(),
            goal_id: keten_domain::GoalId::new("g-safety").unwrap(),
            partner_id: keten_domain::PartnerId::new("jeugdzorg").unwrap(),
            member_ids: vec![keten_domain::MemberId::new("c1").unwrap()],
            intervention: None,
            description: "published after sign-out".into(),
            start_on: today(),
            expected_end: today() + chrono::Days::new(30),
            occurred_on: today(),
        }],
    )
    .await;
    // The stream ends (the server closes it) without carrying the change.
    while let Some(chunk) = body.next().await {
        seen.push_str(&String::from_utf8_lossy(chunk.unwrap().as_ref()));
    }
    assert!(
        !seen.contains("a-after"),
        "after sign-out the stream sent: {seen}"
    );
    h.stop().await;
}

/// The next server-sent event's data, as JSON.
async fn next_message<S, B>(body: &mut S, seen: &mut String) -> serde_json::Value
where
    S: futures::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    loop {
        if let Some(end) = seen.find("\n\n") {
            let message: String = seen.drain(..end + 2).collect();
            if let Some(data) = message.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str(data).unwrap();
            }
            continue;
        }
        let chunk = body.next().await.expect("the stream goes on").unwrap();
        seen.push_str(&String::from_utf8_lossy(chunk.as_ref()));
    }
}

#[tokio::test]
async fn history_and_the_access_report_are_for_auditors() {
    let h = Harness::start(&web_config("")).await;
    let family = family_with_plan(&h, "gezin-geschiedenis", true, "x").await;
    let mut coordinator = h.browser();
    coordinator.sign_in("coordinator").await;
    let refused = coordinator
        .get(&format!("/families/{family}/history"))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains(r#"id="not-allowed""#));

    let mut auditor = h.browser();
    auditor.sign_in("auditor").await;
    let history = auditor.get(&format!("/families/{family}/history")).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    assert!(history.body.contains(r#"id="time-slider""#));
    assert!(history.body.contains(r#"id="as-of-label""#));
    assert!(history.body.contains(r#"id="access-report-link""#));
    let at = history.body.find("data-positions=\"").unwrap() + 16;
    let positions: Vec<u64> = history.body[at..]
        .split('"')
        .next()
        .unwrap()
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    // The state after the first event: registered, no plan yet.
    let first = auditor
        .get(&format!(
            "/families/{family}/as-of?position={}",
            positions[0]
        ))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.starts_with(&format!(
        r#"<div id="as-of" data-position="{}""#,
        positions[0]
    )));
    assert!(!first.body.contains(r#"data-goal="g-safety""#));
    let last = auditor
        .get(&format!(
            "/families/{family}/as-of?position={}",
            positions.last().unwrap()
        ))
        .await;
    assert!(last.body.contains(r#"data-goal="g-safety""#));

    let report = auditor
        .get(&format!("/families/{family}/access-report?lang=en"))
        .await;
    assert_eq!(report.status, StatusCode::OK);
    assert!(report.body.contains(r#"<section id="access-report""#));
    assert!(report.body.contains("audit-ruud") || report.body.contains("Gemeente Amsterdam"));
    h.stop().await;
}
