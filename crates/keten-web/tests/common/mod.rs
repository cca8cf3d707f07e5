//! A real keten server (file log, key store, access log, mutual TLS on gRPC) with its web
//! screen on a real HTTPS socket, and a small browser-like client (reqwest trusting the test
//! CA, cookies kept by hand so that a test can also send an old one).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use keten_domain::{
    Actor, Event, FamilyId, FamilyType, LifeDomain, MemberFlags, MemberRole, PartnerKind, PersonId,
    Role, Urgency,
};
use keten_log::{Durability, EventId, ExpectedVersion, FileLog, FileLogOptions};
use keten_server::config::{PartnerConfig, PrivacyConfig, TlsConfig};
use keten_server::{App, Settings, Stores};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

pub const PARTNERS: &str = r#"
[[partner]]
id = "jeugdzorg"
kind = "youth_care"
name = "Jeugdzorg Amsterdam"
certificate = "jeugdzorg.keten.example"
roles = ["partner_system", "family_manager"]
municipality = "Amsterdam"

[[partner]]
id = "politie"
kind = "police"
name = "Politie Amsterdam"
certificate = "politie.keten.example"
roles = ["partner_system"]
municipality = "Amsterdam"

[[partner]]
id = "gemeente"
kind = "municipality"
name = "Gemeente Amsterdam"
certificate = "gemeente.keten.example"
roles = ["partner_system", "coordinator", "auditor"]
municipality = "Amsterdam"
"#;

pub const LOCAL_PEOPLE: &str = r#"
[local]
demo = true

[[local.person]]
login = "coordinator"
name = "coord-sanne"
partner = "gemeente"
role = "coordinator"

[[local.person]]
login = "auditor"
name = "audit-ruud"
partner = "gemeente"
role = "auditor"

[[local.person]]
login = "agent"
name = "agent-jan"
partner = "politie"
role = "partner_system"

[[local.person]]
login = "manager"
name = "fm-anna"
partner = "jeugdzorg"
role = "family_manager"
"#;

/// The test CA and the server's certificate for 127.0.0.1 and localhost.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
}

pub fn write_pki(dir: &Path) -> Pki {
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "keten-web test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    Pki {
        dir: dir.to_path_buf(),
        ca_pem: ca_cert.pem(),
    }
}

pub struct Harness {
    pub tmp: tempfile::TempDir,
    pub app: Arc<App>,
    pub web: keten_web::Web,
    pub url: String,
    pub ca_pem: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    /// A server with the partners above and the web screen configured by `web_toml` (the
    /// inside of `[web]`).
    pub async fn start(web_toml: &str) -> Harness {
        Self::start_with(web_toml, |_| {}).await
    }

    /// As [`Harness::start`], with a hook that sees the PKI directory before the configuration
    /// is read (a test identity provider's CA, say).
    pub async fn start_with(web_toml: &str, before: impl FnOnce(&Pki)) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let pki = write_pki(&tmp.path().join("pki"));
        before(&pki);
        #[derive(serde::Deserialize)]
        struct Partners {
            partner: Vec<PartnerConfig>,
        }
        let partners: Partners = toml::from_str(PARTNERS).unwrap();
        let mut web: keten_web::WebConfig = toml::from_str(web_toml).unwrap();
        web.resolve_paths(tmp.path());
        let tls = TlsConfig {
            ca: pki.dir.join("ca.pem"),
            cert: pki.dir.join("server.pem"),
            key: pki.dir.join("server.key"),
        };
        let prepared =
            keten_web::Prepared::new(web, "127.0.0.1:0".parse().unwrap(), &tls, &partners.partner)
                .unwrap();
        let web_addr = prepared.addr();
        let data = tmp.path().join("data");
        let options = FileLogOptions {
            durability: Durability::NoSyncUnsafe,
            ..FileLogOptions::default()
        };
        let log = FileLog::open(data.join("log"), options.clone())
            .await
            .unwrap();
        let access = FileLog::open(data.join("access"), options).await.unwrap();
        let keys = keten_keys::FileKeyStore::open(data.join("keys"))
            .await
            .unwrap();
        let settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: None,
            tls,
            partners: partners.partner,
            snapshot_dir: None,
            data_dir: Some(data),
            read_wait: std::time::Duration::from_secs(5),
            proofs: None,
            privacy: PrivacyConfig::default(),
            limits: Default::default(),
        };
        let stores = Stores {
            log: Arc::new(log),
            keys: Some(Arc::new(keys)),
            access: Some(Arc::new(access)),
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let mut prepared = Some(prepared);
            let mut ready_tx = Some(ready_tx);
            keten_server::serve(
                settings,
                stores,
                move |bound| {
                    let (web, task) = prepared.take().unwrap().start(bound.app.clone()).unwrap();
                    let _ = ready_tx
                        .take()
                        .unwrap()
                        .send((bound.app.clone(), web, task));
                },
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
            .unwrap();
        });
        let (app, web, _task) = ready_rx.await.expect("the server started");
        Harness {
            tmp,
            app,
            web,
            url: format!("https://{web_addr}"),
            ca_pem: pki.ca_pem,
            stop: Some(stop_tx),
            server: Some(server),
        }
    }

    pub fn browser(&self) -> Browser {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            client,
            url: self.url.clone(),
            cookie: None,
        }
    }

    /// Publishes `events` to `family` as `person` of `partner` in `role`, through the same
    /// publisher the gRPC gateway uses (rules and all).
    pub async fn publish(
        &self,
        (partner, person, role): (&str, &str, Role),
        family: &FamilyId,
        events: Vec<Event>,
    ) -> u64 {
        let p = self
            .app
            .directory
            .by_id(&keten_domain::PartnerId::new(partner).unwrap())
            .unwrap()
            .clone();
        let caller = keten_server::auth::Caller {
            actor: Actor {
                person: PersonId::new(person).unwrap(),
                role,
                partner: p.id.clone(),
                partner_kind: p.kind,
            },
            partner: p,
            purpose: None,
            emergency: None,
        };
        let events: Vec<(EventId, Event)> = events
            .into_iter()
            .map(|e| (EventId(uuid::Uuid::new_v4()), e))
            .collect();
        let r = self
            .app
            .publisher
            .publish(
                &caller,
                family,
                ExpectedVersion::Any,
                &events,
                None,
                keten_server::today(),
            )
            .await
            .unwrap();
        r.last_position.0
    }

    /// Access records about `family` written by `method`.
    pub async fn access_records(&self, family: &FamilyId, method: &str) -> usize {
        self.app
            .access
            .as_ref()
            .unwrap()
            .for_family(family)
            .await
            .unwrap()
            .iter()
            .filter(|l| l.record.method == method)
            .count()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server.take().unwrap().await.unwrap();
    }
}

pub const COORDINATOR: (&str, &str, Role) = ("gemeente", "coord-sanne", Role::Coordinator);
pub const YOUTH_CARE: (&str, &str, Role) = ("jeugdzorg", "sys-jeugdzorg", Role::PartnerSystem);
pub const POLICE: (&str, &str, Role) = ("politie", "sys-politie", Role::PartnerSystem);
pub const MANAGER: (&str, &str, Role) = ("jeugdzorg", "fm-anna", Role::FamilyManager);

pub fn today() -> NaiveDate {
    keten_server::today()
}

fn ago(n: u64) -> NaiveDate {
    today() - chrono::Days::new(n)
}

fn id<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    r.unwrap()
}

/// A family the municipality registers, that youth care and (when `police`) the police join,
/// with a plan whose health goal and action carry `health_text`.
pub async fn family_with_plan(
    h: &Harness,
    name: &str,
    police: bool,
    health_text: &str,
) -> FamilyId {
    let family = FamilyId::new(name).unwrap();
    h.publish(
        COORDINATOR,
        &family,
        vec![
            Event::FamilyRegistered {
                family_id: family.clone(),
                family_type: FamilyType::StutEnSteun,
                urgency: Urgency::Urgent,
                occurred_on: ago(100),
            },
            Event::MemberAdded {
                member_id: id(keten_domain::MemberId::new("p1")),
                role: MemberRole::Parent,
                birth_year: 1984,
                flags: MemberFlags::default(),
                occurred_on: ago(100),
            },
            Event::MemberAdded {
                member_id: id(keten_domain::MemberId::new("c1")),
                role: MemberRole::Child,
                birth_year: 2012,
                flags: MemberFlags::default(),
                occurred_on: ago(100),
            },
        ],
    )
    .await;
    let joined = |partner: &str, kind, name: &str| Event::PartnerJoined {
        partner_id: id(keten_domain::PartnerId::new(partner)),
        partner_kind: kind,
        display_name: name.into(),
        occurred_on: ago(99),
    };
    h.publish(
        YOUTH_CARE,
        &family,
        vec![joined(
            "jeugdzorg",
            PartnerKind::YouthCare,
            "Jeugdzorg Amsterdam",
        )],
    )
    .await;
    if police {
        h.publish(
            POLICE,
            &family,
            vec![joined("politie", PartnerKind::Police, "Politie Amsterdam")],
        )
        .await;
    }
    h.publish(
        YOUTH_CARE,
        &family,
        vec![Event::FamilyManagerAssigned {
            manager: id(PersonId::new("fm-anna")),
            partner_id: id(keten_domain::PartnerId::new("jeugdzorg")),
            reason: None,
            occurred_on: ago(93),
        }],
    )
    .await;
    h.publish(
        MANAGER,
        &family,
        vec![
            Event::PlanAgreed {
                agreed_on: ago(90),
                review_moments: vec![today() + chrono::Days::new(30)],
                occurred_on: ago(90),
            },
            Event::GoalSet {
                goal_id: id(keten_domain::GoalId::new("g-health")),
                life_domain: LifeDomain::Health,
                description: health_text.into(),
                target_date: None,
                occurred_on: ago(90),
            },
            Event::GoalSet {
                goal_id: id(keten_domain::GoalId::new("g-safety")),
                life_domain: LifeDomain::Safety,
                description: "a safe home for c1".into(),
                target_date: None,
                occurred_on: ago(90),
            },
        ],
    )
    .await;
    h.publish(
        YOUTH_CARE,
        &family,
        vec![Event::ActionCommitted {
            action_id: id(keten_domain::ActionId::new("a-health")),
            goal_id: id(keten_domain::GoalId::new("g-health")),
            partner_id: id(keten_domain::PartnerId::new("jeugdzorg")),
            member_ids: vec![id(keten_domain::MemberId::new("p1"))],
            intervention: None,
            description: format!("action: {health_text}"),
            start_on: ago(85),
            expected_end: today() + chrono::Days::new(60),
            occurred_on: ago(89),
        }],
    )
    .await;
    family
}

/// A client that keeps the session cookie by hand.
pub struct Browser {
    pub client: reqwest::Client,
    pub url: String,
    pub cookie: Option<String>,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }
}

impl Browser {
    pub async fn get(&mut self, path: &str) -> Answer {
        let mut req = self.client.get(format!("{}{path}", self.url));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        self.answer(req.send().await.unwrap()).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.url))
            .header("origin", &self.url)
            .form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        self.answer(req.send().await.unwrap()).await
    }

    async fn answer(&mut self, r: reqwest::Response) -> Answer {
        let status = r.status();
        let headers = r.headers().clone();
        if let Some(set) = headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap().to_owned();
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        Answer {
            status,
            headers,
            body: r.text().await.unwrap(),
        }
    }

    /// Signs in as a local person and checks the way to the families.
    pub async fn sign_in(&mut self, login: &str) {
        let a = self.post("/login", &[("login", login)]).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        assert_eq!(a.location(), Some("/families"));
        assert!(self.cookie.is_some());
    }

    /// The session's form token, from a signed-in page.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/families").await;
        let at = page
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        page.body[at..].split('"').next().unwrap().to_owned()
    }
}
