//! The coordinator's screen in a real browser: headless Chromium, driven over WebDriver, against
//! the real `keten serve` with its web listener, while partner systems publish over gRPC with
//! mutual TLS, as in production.
//!
//! Chromium accepts exactly the server's certificate (by its public key), not any certificate.

mod util;
mod web_util;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use chrono::NaiveDate;
use fantoccini::key::Key;
use keten::client::{Session, publish_request as request};
use keten::scenario::{self, gid, mid};
use keten_domain::{
    Event, FamilyId, FamilyType, LifeDomain, MemberFlags, MemberRole, PersonId, Rung, Urgency,
};
use keten_proto::v1::{self, expected_version::Kind};
use serde_json::Value;
use util::{Dir, Server};
use web_util::{Browser, Chromedriver, spki_sha256};

/// A word that appears only in a health goal: it must never reach a person without health.
const HEALTH_MARKER: &str = "Zeldzaamwoord-gezondheid-b81e";

fn today() -> NaiveDate {
    keten_projection::today()
}

fn family(name: &str) -> FamilyId {
    FamilyId::new(name).unwrap()
}

fn any() -> Option<v1::ExpectedVersion> {
    Some(v1::ExpectedVersion {
        kind: Some(Kind::Any(v1::Empty {})),
    })
}

/// One test's world: `keten serve` with its web screen on a free port, and chromedriver.
/// Fields drop in order: the browser's driver, then the server, then the directory (whose drop
/// prints the transcript of a failed test, the server's last words included).
struct Web {
    driver: Chromedriver,
    server: Server,
    _dir: Dir,
    base: String,
    spki: String,
}

impl Web {
    fn start() -> Web {
        let dir = Dir::new();
        let server = dir.serve_with(&["--web-listen", "127.0.0.1:0"]);
        let web = server
            .web
            .expect("a `keten web on https://...` line before the metrics line");
        let spki = spki_sha256(&dir.pki.join("server.pem"));
        Web {
            driver: Chromedriver::start(),
            server,
            _dir: dir,
            base: format!("https://{web}"),
            spki,
        }
    }

    async fn browser(&self) -> Browser {
        self.driver.browser(&self.spki).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn session(&self, w: &scenario::Who) -> Session {
        self.server.session(w.partner, w.person, w.role).await
    }
}

async fn publish(s: &Session, fam: &FamilyId, events: &[Event]) -> u64 {
    s.gateway()
        .publish(s.request(request(fam, any(), events)))
        .await
        .unwrap_or_else(|e| panic!("publish by {} ({:?}): {e}", s.person, s.role))
        .into_inner()
        .last_position
}

/// The demo's family through OMPG, every step by the partner that takes it.
async fn scenario_family(web: &Web, fam: &FamilyId) -> u64 {
    let mut last = 0;
    for step in scenario::steps(fam, today()) {
        let s = web.session(&step.who).await;
        last = publish(&s, fam, &step.events).await;
    }
    last
}

/// The scenario's family plus a health goal (with [`HEALTH_MARKER`]) set by its family manager.
async fn family_with_health(web: &Web, fam: &FamilyId) -> u64 {
    scenario_family(web, fam).await;
    let fm = web.session(&scenario::family_manager()).await;
    publish(
        &fm,
        fam,
        &[Event::GoalSet {
            goal_id: gid("g-gezondheid"),
            life_domain: LifeDomain::Health,
            description: HEALTH_MARKER.into(),
            target_date: None,
            occurred_on: today(),
        }],
    )
    .await
}

/// A family registered by the municipality, one parent, who asked for erasure: the deadline
/// runs and nobody manages the family.
async fn family_asking_erasure(web: &Web, fam: &FamilyId) -> u64 {
    let coordinator = web.session(&scenario::coordinator()).await;
    let day = today();
    publish(
        &coordinator,
        fam,
        &[
            Event::FamilyRegistered {
                family_id: fam.clone(),
                family_type: FamilyType::StutEnSteun,
                urgency: Urgency::Urgent,
                occurred_on: scenario::ago(day, 10),
            },
            Event::MemberAdded {
                member_id: mid("p1"),
                role: MemberRole::Parent,
                birth_year: 1980,
                flags: MemberFlags::default(),
                occurred_on: scenario::ago(day, 10),
            },
            Event::ErasureRequested {
                requester: mid("p1"),
                occurred_on: day,
            },
        ],
    )
    .await
}

/// The family manager takes the family one rung up the ladder.
async fn raise_to_pressure(web: &Web, fam: &FamilyId) -> u64 {
    let fm = web.session(&scenario::family_manager()).await;
    publish(
        &fm,
        fam,
        &[Event::EscalationRaised {
            to: Rung::Pressure,
            by: PersonId::new(scenario::FAMILY_MANAGER).unwrap(),
            reason: "agreements on the home visits were not kept".into(),
            legal_basis: "Jeugdwet art. 2.4".into(),
            occurred_on: today(),
        }],
    )
    .await
}

/// Signs in with the local demo sign-in as `login` (in English) and waits for the families.
async fn sign_in(web: &Web, b: &Browser, login: &str) {
    b.goto(&web.url("/login?lang=en")).await;
    let person = b.wait_for("select#person").await;
    person
        .select_by_value(login)
        .await
        .unwrap_or_else(|e| panic!("no demo person `{login}` to pick: {e}"));
    b.wait_for("button#sign-in").await.click().await.unwrap();
    b.wait_for("main#families-main").await;
}

async fn sign_out(b: &Browser) {
    b.wait_for("button#sign-out").await.click().await.unwrap();
    b.wait_for("main#login").await;
}

/// `attr` of the first element matching `css`.
async fn attr(b: &Browser, css: &str, attr: &str) -> String {
    b.wait_for(css)
        .await
        .attr(attr)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("`{css}` has no {attr}"))
}

async fn position_of(b: &Browser, css: &str) -> u64 {
    attr(b, css, "data-position").await.parse().unwrap()
}

/// The warning kinds shown in the list's row of `fam`.
async fn row_warnings(b: &Browser, fam: &FamilyId) -> Vec<String> {
    let mut kinds = Vec::new();
    for w in b
        .find_all(&format!("tr[data-family='{fam}'] span.warning[data-kind]"))
        .await
    {
        kinds.push(w.attr("data-kind").await.unwrap().unwrap());
    }
    kinds
}

async fn row_classes(b: &Browser, fam: &FamilyId) -> Option<String> {
    b.wait_for(&format!("tr[data-family='{fam}']"))
        .await
        .attr("class")
        .await
        .unwrap()
}

async fn row_is_urgent(b: &Browser, fam: &FamilyId) -> bool {
    b.exists(&format!("tr[data-family='{fam}'].urgent")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_families_list_shows_each_familys_warnings_and_the_urgent_one_stands_out() {
    let web = Web::start();
    let planned = family("gezin-plan");
    let erasing = family("gezin-wissen");
    scenario_family(&web, &planned).await;
    family_asking_erasure(&web, &erasing).await;

    let b = web.browser().await;
    sign_in(&web, &b, "coordinator").await;
    b.wait_for(&format!("tr[data-family='{erasing}']")).await;

    // The scenario's housing action was not delivered and nothing else works on its goal.
    let plan_kinds = row_warnings(&b, &planned).await;
    assert!(
        plan_kinds.iter().any(|k| k == "goal_without_actions"),
        "{plan_kinds:?}"
    );
    assert!(
        !plan_kinds.iter().any(|k| k == "erasure_deadline"),
        "{plan_kinds:?}"
    );
    assert!(
        !row_is_urgent(&b, &planned).await,
        "the planned family is not urgent: class {:?}",
        row_classes(&b, &planned).await
    );

    let erasing_kinds = row_warnings(&b, &erasing).await;
    for kind in ["erasure_deadline", "no_family_manager"] {
        assert!(
            erasing_kinds.iter().any(|k| k == kind),
            "{kind} in {erasing_kinds:?}"
        );
    }
    assert!(
        row_is_urgent(&b, &erasing).await,
        "an unmet erasure deadline stands out"
    );

    // Filtering by a warning kind leaves only the families that have it.
    b.goto(&web.url("/families?warning=erasure_deadline")).await;
    b.wait_for(&format!("tr[data-family='{erasing}']")).await;
    assert!(
        !b.exists(&format!("tr[data-family='{planned}']")).await,
        "the filter leaves out a family without the warning"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_family_page_changes_live_when_a_partner_publishes_without_a_reload() {
    let web = Web::start();
    let fam = family("gezin-live");
    scenario_family(&web, &fam).await;

    let b = web.browser().await;
    sign_in(&web, &b, "coordinator").await;
    b.wait_for(&format!("a.family-link[href='/families/{fam}']"))
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("main#family table#plan").await;
    // The plan grid, the members and who helps them, the ladder.
    assert!(
        b.exists("table#plan tr[data-domain='housing'] li.action[data-action='a-woning'][data-status='not_delivered']")
            .await,
        "the housing action, not delivered, in the grid"
    );
    assert_eq!(b.find_all("section#members li.member").await.len(), 4);
    assert!(b.exists("section#ladder").await);
    assert!(
        !b.exists("tr.step[data-to='pressure']").await,
        "not yet raised"
    );
    let before = position_of(&b, "main#family").await;

    b.eval("window.__keten_marker = 42; return true;").await;
    let raised = raise_to_pressure(&web, &fam).await;
    b.wait_until(&format!(
        "Number(document.querySelector('main#family').dataset.position) >= {raised}"
    ))
    .await;
    assert!(position_of(&b, "main#family").await > before);
    assert_eq!(
        attr(&b, "section#ladder", "data-rung").await,
        "pressure",
        "the ladder shows the new rung"
    );
    assert!(
        b.exists("section#ladder tr.step[data-to='pressure']").await,
        "the ladder's history has the step"
    );
    assert_eq!(
        b.eval("return window.__keten_marker;").await,
        Value::from(42),
        "the page was not reloaded"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_slider_shows_the_family_as_it_stood_earlier() {
    let web = Web::start();
    let fam = family("gezin-geschiedenis");
    scenario_family(&web, &fam).await;
    raise_to_pressure(&web, &fam).await;

    let b = web.browser().await;
    sign_in(&web, &b, "auditor").await;
    b.goto(&web.url(&format!("/families/{fam}/history"))).await;
    let slider = b.wait_for("input#time-slider").await;
    let now = position_of(&b, "div#as-of").await;
    assert_eq!(
        attr(&b, "div#as-of section#ladder", "data-rung").await,
        "pressure"
    );

    // One event back: before the escalation.
    slider.send_keys(&Key::Left.to_string()).await.unwrap();
    b.wait_until(&format!(
        "Number(document.querySelector('div#as-of').dataset.position) < {now}"
    ))
    .await;
    let earlier = position_of(&b, "div#as-of").await;
    assert_eq!(
        attr(&b, "div#as-of section#ladder", "data-rung").await,
        "voluntary",
        "before the escalation the family was on the voluntary rung"
    );

    // Home: the first event, the registration, before any plan.
    slider.send_keys(&Key::Home.to_string()).await.unwrap();
    b.wait_until(&format!(
        "Number(document.querySelector('div#as-of').dataset.position) < {earlier}"
    ))
    .await;
    assert!(
        b.find_all("div#as-of li.goal").await.is_empty()
            && b.find_all("div#as-of li.action").await.is_empty(),
        "no goal and no action at the registration"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_police_user_does_not_see_health_details_and_the_family_manager_does() {
    let web = Web::start();
    let fam = family("gezin-gezondheid");
    family_with_health(&web, &fam).await;
    let page = web.url(&format!("/families/{fam}?lang=en"));

    let b = web.browser().await;
    sign_in(&web, &b, "agent").await;
    b.goto(&page).await;
    b.wait_for("main#family table#plan").await;
    assert!(
        b.exists("section#omitted li[data-class='health']").await,
        "health is named as left out"
    );
    let source = b.source().await;
    assert!(
        !source.contains(HEALTH_MARKER),
        "the police see no health goal"
    );
    assert!(
        !b.exists("table#plan tr[data-domain='health'] li.goal")
            .await,
        "no health goal in the grid"
    );
    // They do see their own class: the justice goal.
    assert!(
        b.exists("table#plan tr[data-domain='justice_nuisance'] li.goal[data-goal='g-overlast']")
            .await,
        "the police see the justice goal"
    );
    sign_out(&b).await;

    sign_in(&web, &b, "manager").await;
    b.goto(&page).await;
    b.wait_for("main#family table#plan").await;
    assert!(
        b.source().await.contains(HEALTH_MARKER),
        "the family manager (youth care) reads health"
    );
    assert!(!b.exists("section#omitted li[data-class='health']").await);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_signing_out_the_families_page_asks_to_sign_in() {
    let web = Web::start();
    let fam = family("gezin-afmelden");
    scenario_family(&web, &fam).await;

    let b = web.browser().await;
    sign_in(&web, &b, "coordinator").await;
    b.wait_for(&format!("tr[data-family='{fam}']")).await;
    sign_out(&b).await;
    b.goto(&web.url("/families")).await;
    b.wait_for("main#login").await;
    assert!(
        b.url().await.contains("/login"),
        "landed on {}",
        b.url().await
    );
    assert!(!b.source().await.contains(fam.as_str()));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_report_says_in_plain_words_that_the_coordinator_read_the_family() {
    let web = Web::start();
    let fam = family("gezin-inzage");
    scenario_family(&web, &fam).await;

    let b = web.browser().await;
    sign_in(&web, &b, "coordinator").await;
    b.goto(&web.url(&format!("/families/{fam}"))).await;
    b.wait_for("main#family").await;
    // The report is the auditors' (as Audit.AccessReport is): a coordinator is told so.
    b.goto(&web.url(&format!("/families/{fam}/access-report")))
        .await;
    b.wait_for("p#not-allowed").await;
    assert!(!b.exists("section#access-report").await);
    sign_out(&b).await;

    sign_in(&web, &b, "auditor").await;
    b.goto(&web.url(&format!("/families/{fam}/access-report?lang=en")))
        .await;
    b.wait_for("section#access-report p").await;
    let mut lines = Vec::new();
    for p in b.find_all("section#access-report p").await {
        lines.push(p.text().await.unwrap());
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("a coordinator of the municipality")
                && l.contains("read your family's data")
                && l.contains("for: web")),
        "a line for the coordinator's page view in {lines:#?}"
    );
    b.close().await;
}

/// `keten demo --serve`: its last line names the dashboard, which signs in and shows the
/// demo's family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keten_demo_ends_with_the_dashboard_address_that_a_browser_opens() {
    let demo = Demo::start();
    let driver = Chromedriver::start();
    let b = driver
        .browser(&spki_sha256(&demo.pki.join("server.pem")))
        .await;
    b.goto(&format!("{}login?lang=en", demo.dashboard)).await;
    b.wait_for("select#person")
        .await
        .select_by_value("coordinator")
        .await
        .unwrap();
    b.wait_for("button#sign-in").await.click().await.unwrap();
    b.wait_for("main#families-main tr[data-family]").await;
    let link = b.wait_for("a.family-link").await;
    link.click().await.unwrap();
    b.wait_for("main#family table#plan").await;
    b.close().await;
    demo.stop();
}

/// A running `keten demo --serve`, stopped with Ctrl-C (SIGINT) so it removes its temporary
/// directory; killed on drop if a test fails first.
struct Demo {
    child: Option<Child>,
    dashboard: String,
    pki: PathBuf,
}

impl Demo {
    fn start() -> Demo {
        let mut child = Command::new(util::KETEN)
            .args(["demo", "--serve", "--web-listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn keten demo");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("Dashboard: ") {
                        let dashboard = rest.split_whitespace().next().unwrap().to_string();
                        let pki = rest
                            .split("trust ")
                            .nth(1)
                            .and_then(|r| r.split("/ca.pem").next())
                            .unwrap_or_else(|| panic!("no PKI directory in {line:?}"));
                        assert!(dashboard.starts_with("https://127.0.0.1:"), "{line}");
                        assert!(dashboard.ends_with('/'), "{line}");
                        return Demo {
                            child: Some(child),
                            dashboard,
                            pki: PathBuf::from(pki),
                        };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "keten demo printed no `Dashboard: ` line; it printed:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    fn stop(mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        let status = c.wait().expect("wait for keten demo");
        assert!(status.success(), "keten demo ended with {status} on Ctrl-C");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The README's pictures: the families list and one family's page, as a coordinator sees them,
/// from a small but realistic set of families. Run by `cargo xtask screenshots`, which writes
/// docs/screenshots/families.png and family.png.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/screenshots/*.png; run by `cargo xtask screenshots`"]
async fn screenshots() {
    let web = Web::start();
    let shown = family("gezin-7f3a");
    family_with_zrm(&web, &shown).await;
    raise_to_pressure(&web, &shown).await;
    scenario_family(&web, &family("gezin-2c91")).await;
    family_asking_erasure(&web, &family("gezin-b044")).await;
    family_not_matched(&web, &family("gezin-e5d8")).await;

    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let b = web.browser().await;
    sign_in(&web, &b, "coordinator").await;
    b.goto(&web.url("/families?lang=en")).await;
    b.wait_for(&format!("tr[data-family='{shown}']")).await;
    let png = b.screenshot().await;
    std::fs::write(out.join("families.png"), png).unwrap();

    b.goto(&web.url(&format!("/families/{shown}?lang=en")))
        .await;
    b.wait_for("main#family table#plan").await;
    let png = b.screenshot_page(3000).await;
    std::fs::write(out.join("family.png"), png).unwrap();
    b.close().await;
}

/// The scenario's family with ZRM scores at an earlier review (the intake figures) and at the
/// scenario's own review, in domains a coordinator reads.
async fn family_with_zrm(web: &Web, fam: &FamilyId) -> u64 {
    use keten_domain::zrm::{Zrm2017Domain as D, ZrmAssessment, ZrmScore, ZrmScores};
    let day = today();
    let scores = |member: &str, s: &[(D, u8)]| ZrmAssessment {
        member_id: mid(member),
        matrix: ZrmScores::V2017 {
            scores: s
                .iter()
                .map(|(d, n)| (*d, ZrmScore::new(*n).unwrap()))
                .collect(),
        },
    };
    let intake = vec![
        scores(
            "p1",
            &[
                (D::Finances, 2),
                (D::Housing, 1),
                (D::DomesticRelations, 2),
                (D::SocialNetwork, 2),
            ],
        ),
        scores("c1", &[(D::Justice, 1), (D::WorkAndEducation, 2)]),
    ];
    let latest = vec![
        scores(
            "p1",
            &[
                (D::Finances, 3),
                (D::Housing, 1),
                (D::DomesticRelations, 3),
                (D::SocialNetwork, 3),
            ],
        ),
        scores("c1", &[(D::Justice, 2), (D::WorkAndEducation, 3)]),
    ];
    let mut steps = scenario::steps(fam, day);
    for step in &mut steps {
        for e in &mut step.events {
            if let Event::ReviewHeld { zrm, .. } = e {
                *zrm = latest.clone();
            }
        }
    }
    let at = steps
        .iter()
        .position(|s| {
            s.events
                .iter()
                .any(|e| matches!(e, Event::ActionStarted { .. }))
        })
        .expect("the actions start");
    steps.insert(
        at + 1,
        scenario::Step {
            label: "the first review, with the intake's ZRM scores",
            who: scenario::family_manager(),
            events: vec![Event::ReviewHeld {
                zrm: intake,
                next_review: Some(scenario::ago(day, 5)),
                occurred_on: scenario::ago(day, 75),
            }],
        },
    );
    let mut last = 0;
    for step in steps {
        let s = web.session(&step.who).await;
        last = publish(&s, fam, &step.events).await;
    }
    last
}

/// Registered, and two partners joined that have not settled who takes the lead.
async fn family_not_matched(web: &Web, fam: &FamilyId) -> u64 {
    let steps = scenario::steps(fam, today());
    let mut last = 0;
    for step in steps.into_iter().take(3) {
        let s = web.session(&step.who).await;
        last = publish(&s, fam, &step.events).await;
    }
    last
}
