//! The screen's routes. Each page asks the server's own functions (need-to-know, redaction,
//! the access log, the audit service's as-of and access report) exactly as the gRPC services
//! do; nothing here decides what a person may see.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use keten_access::AccessAction;
use keten_domain::classes::{ClassSet, readable};
use keten_domain::{Actor, FamilyId, PartnerId, PersonId};
use keten_projection::{ListFilter, PageRequest};
use keten_proto::v1;
use keten_server::App;
use keten_server::access_log::Access;
use keten_server::audit::AuditService;
use keten_server::auth::Caller;
use maud::Markup;
use serde::Deserialize;

use crate::config::WebConfig;
use crate::html::{self, Frame, Who};
use crate::session::{Lang, Person, Session, Sessions};
use crate::text::{WARNING_KINDS, label, snake, tr};

/// The session cookie: `__Host-` so that it is only ever set over HTTPS, for this host, path /.
pub const COOKIE: &str = "__Host-keten-session";
/// What the access log records as the purpose of a page view.
const PURPOSE: &str = "web";
/// Families one list page shows at most.
const LIST_MAX: usize = 1000;

const CSS: &str = include_str!("../assets/keten.css");
const JS: &str = include_str!("../assets/keten.js");

/// What every request shares.
#[derive(Clone)]
pub struct Web {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub app: Arc<App>,
    pub config: WebConfig,
    pub sessions: Sessions,
    pub oidc: Option<crate::oidc::Oidc>,
}

impl Web {
    pub fn new(app: Arc<App>, config: WebConfig) -> crate::Result<Web> {
        let sessions = Sessions::new(
            Duration::from_secs(config.session_minutes * 60),
            Duration::from_secs(config.session_max_minutes * 60),
        );
        let oidc = config
            .oidc
            .as_ref()
            .map(crate::oidc::Oidc::new)
            .transpose()?;
        Ok(Web {
            inner: Arc::new(Inner {
                app,
                config,
                sessions,
                oidc,
            }),
        })
    }

    /// The sessions, for tests that move time on their own.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/", get(root))
            .route("/login", get(login_page).post(login))
            .route("/logout", post(logout))
            .route("/auth/oidc/start", get(crate::oidc::start))
            .route("/auth/oidc/callback", get(crate::oidc::callback))
            .route("/families", get(families))
            .route("/families/{id}", get(family))
            .route("/families/{id}/live", get(live))
            .route("/families/{id}/history", get(history))
            .route("/families/{id}/as-of", get(as_of))
            .route("/families/{id}/access-report", get(access_report))
            .route(
                "/static/keten.css",
                get(|| asset(CSS, "text/css; charset=utf-8")),
            )
            .route(
                "/static/keten.js",
                get(|| asset(JS, "text/javascript; charset=utf-8")),
            )
            .fallback(fallback)
            .with_state(self.clone())
    }

    fn app(&self) -> &App {
        &self.inner.app
    }

    /// The signed-in session from the request's cookie, if alive.
    fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers)?;
        let session = self.inner.sessions.touch(&id, Instant::now())?;
        Some((id, session))
    }

    /// The caller the rules are asked about: the person's partner, role and id, exactly what
    /// a gRPC caller of that partner sends; `None` when the partner is not configured or may
    /// not act in that role.
    pub(crate) fn caller_for(&self, person: &Person) -> Option<Caller> {
        let partner = self.app().directory.by_id(&person.partner)?.clone();
        partner.roles.contains(&person.role).then(|| Caller {
            actor: Actor {
                person: person.person.clone(),
                role: person.role,
                partner: person.partner.clone(),
                partner_kind: partner.kind,
            },
            partner,
            purpose: Some(PURPOSE.into()),
            emergency: None,
        })
    }

    /// Signs a person in: a new session and its cookie, then on to the families.
    pub(crate) fn sign_in(&self, person: Person, lang: Lang) -> Response {
        tracing::info!(person = %person.person, partner = %person.partner, role = %person.role, via = person.via, "web: signed in");
        let id = self.inner.sessions.start(person, lang, Instant::now());
        let mut response = Redirect::to("/families").into_response();
        response.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&format!(
                "{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax"
            ))
            .expect("a token is a valid header value"),
        );
        response
    }
}

/// A page for a signed-in person: the session, the caller and the frame to draw in.
struct Ctx {
    /// The session's id, for a live stream that must end with the session.
    session: String,
    caller: Caller,
    lang: Lang,
    who: Who,
    csrf: String,
}

impl Ctx {
    fn frame<'a>(&'a self, path: &'a str) -> Frame<'a> {
        Frame {
            lang: self.lang,
            who: Some(&self.who),
            csrf: Some(&self.csrf),
            path,
        }
    }
}

/// The signed-in person, or the answer to give instead (to the sign-in page).
// The error is the answer itself, handed straight back to axum: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn signed_in(web: &Web, headers: &HeaderMap, lang: Option<&str>) -> Result<Ctx, Response> {
    let Some((id, session)) = web.session(headers) else {
        return Err(Redirect::to("/login").into_response());
    };
    let Some(caller) = web.caller_for(&session.person) else {
        // The configuration no longer knows the partner or lets it act in that role.
        web.inner.sessions.end(&id);
        return Err(Redirect::to("/login").into_response());
    };
    let lang = match lang.and_then(Lang::parse) {
        Some(l) => {
            web.inner.sessions.set_lang(&id, l);
            l
        }
        None => session.lang,
    };
    let who = Who {
        person: session.person.person.to_string(),
        partner_name: caller.partner.name.clone(),
        role: label(lang, session.person.role.as_str()),
    };
    Ok(Ctx {
        session: id,
        caller,
        lang,
        who,
        csrf: session.csrf,
    })
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .map(str::to_owned)
}

/// A POST from a page of another site is refused: browsers send `Origin` with every POST, and
/// it must name this host. (The session cookie is SameSite=Lax as well, and signed-in forms
/// carry the session's token.)
fn same_origin(headers: &HeaderMap, uri: &Uri) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    // HTTP/1.1 names the host in `Host`, HTTP/2 in the request's authority.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    host.is_some_and(|h| origin == format!("https://{h}"))
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// An HTML answer with the headers every page carries.
pub(crate) fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.0).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    response
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

fn bare_frame(lang: Lang) -> Frame<'static> {
    Frame {
        lang,
        who: None,
        csrf: None,
        path: "/login",
    }
}

/// The one answer for a family that does not exist and for one the person may not see.
pub(crate) fn not_found(lang: Lang) -> Response {
    let title = tr(lang, "Niet gevonden", "Not found");
    let text = tr(
        lang,
        "Dit gezin bestaat niet, of u mag het niet zien.",
        "This family does not exist, or you may not see it.",
    );
    page(
        StatusCode::NOT_FOUND,
        html::message(&bare_frame(lang), title, "not-found", text),
    )
}

/// The server's error as a page; the texts a caller of the API would get.
fn server_error(ctx: &Ctx, path: &str, e: keten_server::Error) -> Response {
    let lang = ctx.lang;
    use keten_server::Error as E;
    let (status, title, id, text) = match e {
        E::NotFound(_) => return not_found(lang),
        E::PermissionDenied(_) => (
            StatusCode::FORBIDDEN,
            tr(lang, "Niet toegestaan", "Not allowed"),
            "not-allowed",
            tr(
                lang,
                "Alleen auditors mogen dit zien, zoals in de API (Audit).",
                "Only auditors may see this, as in the API (Audit).",
            )
            .to_owned(),
        ),
        E::Erased(text) => (
            StatusCode::GONE,
            tr(lang, "Gewist", "Erased"),
            "erased",
            text,
        ),
        E::InvalidArgument { field, description } => (
            StatusCode::BAD_REQUEST,
            tr(lang, "Ongeldige vraag", "Bad request"),
            "bad-request",
            format!("{field}: {description}"),
        ),
        E::Unavailable(text) => (
            StatusCode::SERVICE_UNAVAILABLE,
            tr(lang, "Niet beschikbaar", "Unavailable"),
            "unavailable",
            text,
        ),
        other => {
            tracing::error!(error = %other, path, "web: a page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                tr(lang, "Fout", "Error"),
                "error",
                tr(
                    lang,
                    "Er ging iets mis aan de kant van keten.",
                    "Something went wrong on keten's side.",
                )
                .to_owned(),
            )
        }
    };
    page(status, html::message(&ctx.frame(path), title, id, &text))
}

fn bad_request(ctx: &Ctx, path: &str, field: &str, rule: String) -> Response {
    server_error(
        ctx,
        path,
        keten_server::Error::InvalidArgument {
            field: field.into(),
            description: rule,
        },
    )
}

#[derive(Debug, Default, Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

async fn root(State(web): State<Web>, headers: HeaderMap) -> Response {
    match web.session(&headers) {
        Some(_) => Redirect::to("/families").into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

async fn fallback(State(web): State<Web>, headers: HeaderMap) -> Response {
    let lang = web.session(&headers).map_or(Lang::Nl, |(_, s)| s.lang);
    not_found(lang)
}

pub(crate) fn login_form(
    web: &Web,
    lang: Lang,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let config = &web.inner.config;
    let people: Vec<html::LoginChoice> = config
        .local
        .iter()
        .flat_map(|l| &l.people)
        .map(|p| {
            let partner = web
                .app()
                .directory
                .by_id(&p.partner)
                .map_or(p.partner.to_string(), |x| x.name.clone());
            html::LoginChoice {
                login: p.login.clone(),
                describe: format!(
                    "{} ({}, {})",
                    p.login,
                    partner,
                    label(lang, p.role.as_str())
                ),
            }
        })
        .collect();
    let local = config.local.as_ref();
    let markup = html::login(
        &bare_frame(lang),
        &html::LoginPage {
            demo: local.is_some_and(|l| l.demo),
            people: &people,
            password: local.is_some_and(|l| l.people.iter().any(|p| p.password.is_some())),
            oidc: web.inner.oidc.is_some(),
            error,
        },
    );
    page(status, markup)
}

async fn login_page(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    if web.session(&headers).is_some() {
        return Redirect::to("/families").into_response();
    }
    let lang = q.lang.as_deref().and_then(Lang::parse).unwrap_or(Lang::Nl);
    login_form(&web, lang, StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    login: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

async fn login(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = form
        .lang
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or(Lang::Nl);
    if !same_origin(&headers, &uri) {
        return forbidden_post(lang);
    }
    let Some(local) = &web.inner.config.local else {
        return not_found(lang);
    };
    let person = local.people.iter().find(|p| p.login == form.login);
    // One answer for an unknown login and a wrong password.
    let ok = person.is_some_and(|p| match (&p.password, &form.password) {
        (Some(want), Some(given)) => same_secret(want, given),
        (Some(_), None) => false,
        (None, _) => local.demo,
    });
    let (true, Some(p)) = (ok, person) else {
        tracing::info!(login = %form.login, "web: local sign-in refused");
        return login_form(
            &web,
            lang,
            StatusCode::UNAUTHORIZED,
            Some(tr(
                lang,
                "Onbekende persoon of verkeerd wachtwoord.",
                "Unknown person or wrong password.",
            )),
        );
    };
    web.sign_in(
        Person {
            person: p.name.clone(),
            partner: p.partner.clone(),
            role: p.role,
            via: "local",
        },
        lang,
    )
}

fn forbidden_post(lang: Lang) -> Response {
    page(
        StatusCode::FORBIDDEN,
        html::message(
            &bare_frame(lang),
            tr(lang, "Geweigerd", "Refused"),
            "csrf",
            tr(
                lang,
                "Dit formulier kwam niet van deze pagina; er is niets gedaan.",
                "This form did not come from this page; nothing was done.",
            ),
        ),
    )
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some((id, session)) = web.session(&headers) else {
        return Redirect::to("/login").into_response();
    };
    if !same_origin(&headers, &uri) || !same_secret(&session.csrf, &form.csrf) {
        return forbidden_post(session.lang);
    }
    web.inner.sessions.end(&id);
    tracing::info!(person = %session.person.person, "web: signed out");
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
        ))
        .expect("valid header"),
    );
    response
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    lang: Option<String>,
    warning: Option<String>,
    rung: Option<String>,
    partner: Option<String>,
    manager: Option<String>,
    sort: Option<String>,
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Read-your-writes for a person who just published elsewhere: the projection is brought as
/// far as the log is now (bounded, like a watch's start).
async fn catch_up(app: &App) -> keten_server::Result<()> {
    if let Some(head) = app.store.head().await? {
        app.wait_for(Some(head.0)).await?;
    }
    Ok(())
}

async fn families(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    const PATH: &str = "/families";
    let ctx = match signed_in(&web, &headers, q.lang.as_deref()) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let app = web.app();
    let warning = match given(&q.warning) {
        None => None,
        Some(w) => match WARNING_KINDS.iter().find(|k| snake(*k) == w) {
            Some(k) => Some(*k),
            None => {
                return bad_request(
                    &ctx,
                    PATH,
                    "warning",
                    format!("`{w}` is not a warning kind"),
                );
            }
        },
    };
    let rung = match given(&q.rung) {
        None => None,
        Some(r) => match keten_domain::Rung::ALL.iter().find(|k| k.as_str() == r) {
            Some(k) => Some(*k),
            None => {
                return bad_request(
                    &ctx,
                    PATH,
                    "rung",
                    format!("`{r}` is not a rung; use voluntary, pressure, coercion or sanction"),
                );
            }
        },
    };
    let partner = match given(&q.partner).map(PartnerId::new).transpose() {
        Ok(p) => p,
        Err(e) => return bad_request(&ctx, PATH, "partner", e.to_string()),
    };
    let manager = match given(&q.manager).map(PersonId::new).transpose() {
        Ok(p) => p,
        Err(e) => return bad_request(&ctx, PATH, "manager", e.to_string()),
    };
    let sort = given(&q.sort).unwrap_or("family");
    if !html::SORTS.contains(&sort) {
        return bad_request(
            &ctx,
            PATH,
            "sort",
            format!(
                "`{sort}` is not a column; use one of {}",
                html::SORTS.join(", ")
            ),
        );
    }
    if let Err(e) = catch_up(app).await {
        return server_error(&ctx, PATH, e);
    }
    // As `Coordination.ListFamilies` does: need-to-know without the broken glass, and a warning
    // filter on what the person may see.
    let filter = ListFilter {
        warning: None,
        rung,
        partner: partner.clone(),
        family_manager: manager.clone(),
    };
    let today = keten_server::today();
    let caller = &ctx.caller;
    let mut plans = std::collections::HashMap::new();
    let found = app.projections.list_where(
        &filter,
        today,
        PageRequest {
            after: None,
            size: LIST_MAX,
        },
        |view| {
            if view.state.is_erased() {
                return false;
            }
            let Some(classes) = keten_server::need_to_know::by_need(&app.directory, caller, view)
            else {
                return false;
            };
            let redacted = app.redacted_plan(view, classes, today);
            let keep = warning.is_none_or(|k| redacted.plan.warnings.iter().any(|w| w.kind == k));
            if keep {
                plans.insert(view.family.clone(), redacted);
            }
            keep
        },
    );
    let access = Access::new("Web.Families", AccessAction::Search, None)
        .classes(readable(caller.actor.partner_kind))
        .families_returned(found.items.len());
    if let Err(e) = app.record_access(caller, access).await {
        return server_error(&ctx, PATH, e);
    }
    let mut rows: Vec<html::Row> = found
        .items
        .iter()
        .map(|view| {
            let plan = &plans[&view.family].plan;
            html::Row {
                family: view.family.as_str(),
                plan,
                months_left: plan.horizon.map(|h| months_between(today, h)),
            }
        })
        .collect();
    sort_rows(&mut rows, sort);
    let partners: Vec<(String, String)> = {
        let mut ps: Vec<_> = app
            .directory
            .partners()
            .map(|p| (p.id.to_string(), p.name.clone()))
            .collect();
        ps.sort();
        ps
    };
    let warning_name = warning.map(|k| snake(&k));
    let filters = html::Filters {
        warning: warning_name.as_deref(),
        rung: rung.map(|r| r.as_str()),
        partner: partner.as_ref().map(|p| p.as_str()),
        manager: manager.as_ref().map(|p| p.as_str()),
        sort,
        partners: &partners,
    };
    page(
        StatusCode::OK,
        html::families(&ctx.frame(PATH), &filters, &rows),
    )
}

/// Whole months from `today` to `horizon`, negative once past it.
fn months_between(today: chrono::NaiveDate, horizon: chrono::NaiveDate) -> i64 {
    use chrono::Datelike;
    let months = (i64::from(horizon.year()) - i64::from(today.year())) * 12
        + i64::from(horizon.month())
        - i64::from(today.month());
    // A month counts once its day is reached.
    if horizon >= today && horizon.day() < today.day() {
        months - 1
    } else if horizon < today && horizon.day() > today.day() {
        months + 1
    } else {
        months
    }
}

fn sort_rows(rows: &mut [html::Row], sort: &str) {
    use std::cmp::Reverse;
    match sort {
        // Highest rung first: that is what needs attention.
        "rung" => rows.sort_by_key(|r| Reverse(r.plan.escalation.as_ref().map(|e| e.rung))),
        "manager" => rows.sort_by(|a, b| {
            let m = |r: &html::Row| {
                r.plan
                    .family_manager
                    .as_ref()
                    .map(|m| m.manager.to_string())
            };
            m(a).cmp(&m(b))
        }),
        "lead" => rows.sort_by(|a, b| {
            let l = |r: &html::Row| r.plan.lead.as_ref().map(|l| l.partner_id.to_string());
            l(a).cmp(&l(b))
        }),
        // Soonest first, families without a review last.
        "review" => rows.sort_by_key(|r| (r.plan.next_review.is_none(), r.plan.next_review)),
        "months-left" => rows.sort_by_key(|r| (r.months_left.is_none(), r.months_left)),
        "warnings" => rows.sort_by_key(|r| Reverse(r.plan.warnings.len())),
        _ => rows.sort_by(|a, b| a.family.cmp(b.family)),
    }
}

/// The family a path names, or the not-found answer (a malformed id is as unknown as any).
#[allow(clippy::result_large_err)]
fn family_id(ctx: &Ctx, id: &str) -> Result<FamilyId, Response> {
    FamilyId::new(id).map_err(|_| not_found(ctx.lang))
}

/// The signed-in person and the family a `/families/<id>…` page is about: every family page
/// starts here.
#[allow(clippy::result_large_err)]
fn family_page(
    web: &Web,
    headers: &HeaderMap,
    lang: Option<&str>,
    id: &str,
) -> Result<(Ctx, FamilyId), Response> {
    let ctx = signed_in(web, headers, lang)?;
    let family = family_id(&ctx, id)?;
    Ok((ctx, family))
}

async fn family(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (ctx, family) = match family_page(&web, &headers, q.lang.as_deref(), &id) {
        Ok(page) => page,
        Err(r) => return r,
    };
    let path = format!("/families/{id}");
    let app = web.app();
    // As `Coordination.GetFamilyPlan`: the sight, the access record (a refusal too), then
    // the answer only if visible.
    let result = async {
        catch_up(app).await?;
        let view = app.projections.family(&family);
        let sight = app.sight(&ctx.caller, view.as_deref());
        let access = Access::new("Web.Family", AccessAction::Read, Some(&family)).sight(sight);
        app.record_access(&ctx.caller, access).await?;
        let view = app.visible(&family, view, sight)?;
        let red = app.redacted_plan(&view, sight.classes(), keten_server::today());
        Ok::<_, keten_server::Error>((view.position.0, red))
    }
    .await;
    match result {
        Ok((position, red)) => {
            let inner = html::family_inner(ctx.lang, family.as_str(), &red, true);
            page(
                StatusCode::OK,
                html::family(&ctx.frame(&path), family.as_str(), position, inner),
            )
        }
        Err(e) => server_error(&ctx, &path, e),
    }
}

/// Server-sent events: the family page's contents, anew at every change of the family, under
/// the same rules as `Coordination.WatchFamilyPlan` (checked again at every change; a partner
/// that leaves, or an erasure, ends the stream).
async fn live(State(web): State<Web>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let ctx = match signed_in(&web, &headers, None) {
        Ok(c) => c,
        Err(_) => return StatusCode::UNAUTHORIZED.into_response(),
    };
    let path = format!("/families/{id}/live");
    let family = match family_id(&ctx, &id) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let app = web.inner.app.clone();
    let started = async {
        catch_up(&app).await?;
        let view = app.projections.family(&family);
        let sight = app.sight(&ctx.caller, view.as_deref());
        let access = Access::new("Web.FamilyLive", AccessAction::Read, Some(&family)).sight(sight);
        app.record_access(&ctx.caller, access).await?;
        app.visible(&family, view, sight)?;
        let watch = keten_projection::watch_family(app.store.clone(), family.clone())
            .await
            .map_err(keten_server::Error::from)?;
        Ok::<_, keten_server::Error>((sight, watch))
    }
    .await;
    let (sight, watch) = match started {
        Ok(s) => s,
        Err(e) => return server_error(&ctx, &path, e),
    };
    let caller = ctx.caller;
    let lang = ctx.lang;
    let mut stopping = app.stopping.clone();
    let rules = app.clone();
    // A stream outlives the request that opened it: after sign-out or expiry it must not
    // deliver another change (checked with each change, and every few seconds in between).
    let sessions = web.inner.sessions.clone();
    let session = ctx.session;
    let session_alive = {
        let (sessions, session) = (sessions.clone(), session.clone());
        move || sessions.is_alive(&session, Instant::now())
    };
    let still_alive = session_alive.clone();
    let session_ended = async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        while still_alive() {
            tick.tick().await;
        }
    };
    let events = watch
        .take_while(move |item| {
            let keep = match item {
                Ok(view) => {
                    session_alive()
                        && !rules.sight(&caller, Some(view)).is_denied()
                        && !view.state.is_erased()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "web: live updates ended on an error");
                    false
                }
            };
            std::future::ready(keep)
        })
        .filter_map(move |item| {
            let out = item.ok().map(|view| {
                let red = app.redacted_plan(&view, sight.classes(), keten_server::today());
                let inner = html::family_inner(lang, view.family.as_str(), &red, true);
                Ok::<_, Infallible>(
                    Event::default()
                        .id(view.position.0.to_string())
                        .data(html::live_message(view.position.0, &inner)),
                )
            });
            std::future::ready(out)
        })
        .take_until(async move {
            tokio::select! {
                _ = stopping.wait_for(|s| *s) => {}
                () = session_ended => {}
            }
        });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn history(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (ctx, family) = match family_page(&web, &headers, q.lang.as_deref(), &id) {
        Ok(page) => page,
        Err(r) => return r,
    };
    let path = format!("/families/{id}/history");
    let audit = AuditService {
        app: web.inner.app.clone(),
    };
    let result = async {
        // `Audit.ReadFamilyHistory` and `Audit.GetFamilyPlanAsOf`, with their rule (auditors
        // only) and their access records.
        let page = audit
            .history_for(
                &ctx.caller,
                v1::ReadFamilyHistoryRequest {
                    family_id: family.to_string(),
                    from_version: 0,
                    max_count: 10_000,
                },
            )
            .await?;
        let events: Vec<html::HistoryEvent> = page
            .events
            .iter()
            .map(|e| html::HistoryEvent {
                position: e.position,
                at: e.committed_at.as_ref().map(rfc3339).unwrap_or_default(),
                event_type: e.event_type.clone(),
                partner: e.partner_id.clone(),
                person: e.person_id.clone(),
            })
            .collect();
        let Some(last) = events.last().map(|e| e.position) else {
            return Err(keten_server::Error::NotFound(family.to_string()));
        };
        let as_of = as_of_markup(&audit, &ctx, &family, last).await?;
        Ok::<_, keten_server::Error>((events, as_of))
    }
    .await;
    match result {
        Ok((events, as_of)) => page(
            StatusCode::OK,
            html::history(&ctx.frame(&path), family.as_str(), &events, as_of),
        ),
        Err(e) => server_error(&ctx, &path, e),
    }
}

async fn as_of_markup(
    audit: &AuditService,
    ctx: &Ctx,
    family: &FamilyId,
    position: u64,
) -> keten_server::Result<Markup> {
    let found = audit
        .family_as_of_for(
            &ctx.caller,
            &v1::GetFamilyPlanAsOfRequest {
                family_id: family.to_string(),
                as_of: Some(v1::get_family_plan_as_of_request::AsOf::Position(position)),
                knowledge: v1::Knowledge::AsKnown as i32,
                show_differences: false,
            },
        )
        .await?;
    // The auditor reads every class (the Audit service's rule); the plan is judged on the
    // cut-off's date.
    let red = audit
        .app
        .redacted_plan(&found.view, ClassSet::ALL, found.day);
    Ok(html::as_of(
        ctx.lang,
        family.as_str(),
        found.view.position.0,
        found.day,
        &red,
    ))
}

#[derive(Debug, Default, Deserialize)]
struct AsOfQuery {
    position: Option<String>,
}

async fn as_of(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<AsOfQuery>,
) -> Response {
    let ctx = match signed_in(&web, &headers, None) {
        Ok(c) => c,
        Err(_) => return StatusCode::UNAUTHORIZED.into_response(),
    };
    let path = format!("/families/{id}/as-of");
    let family = match family_id(&ctx, &id) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let position = match q.position.as_deref().map(str::parse::<u64>) {
        Some(Ok(p)) => p,
        _ => {
            return bad_request(
                &ctx,
                &path,
                "position",
                "required: a global position (a whole number)".into(),
            );
        }
    };
    let audit = AuditService {
        app: web.inner.app.clone(),
    };
    match as_of_markup(&audit, &ctx, &family, position).await {
        Ok(markup) => page(StatusCode::OK, markup),
        Err(e) => server_error(&ctx, &path, e),
    }
}

async fn access_report(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (ctx, family) = match family_page(&web, &headers, q.lang.as_deref(), &id) {
        Ok(page) => page,
        Err(r) => return r,
    };
    let path = format!("/families/{id}/access-report");
    let audit = AuditService {
        app: web.inner.app.clone(),
    };
    let language = match ctx.lang {
        Lang::Nl => v1::ReportLanguage::Dutch,
        Lang::En => v1::ReportLanguage::English,
    };
    let result = audit
        .access_report_for(
            &ctx.caller,
            v1::AccessReportRequest {
                family_id: family.to_string(),
                language: language as i32,
            },
        )
        .await;
    match result {
        Ok(report) => page(
            StatusCode::OK,
            html::access_report(&ctx.frame(&path), family.as_str(), &report.text),
        ),
        Err(e) => server_error(&ctx, &path, e),
    }
}

fn rfc3339(t: &prost_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_left_count_whole_months_both_ways() {
        let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        assert_eq!(months_between(d("2026-01-15"), d("2026-11-15")), 10);
        assert_eq!(months_between(d("2026-01-15"), d("2026-11-14")), 9);
        assert_eq!(months_between(d("2026-11-15"), d("2026-11-20")), 0);
        assert_eq!(months_between(d("2026-11-15"), d("2026-10-15")), -1);
        assert_eq!(months_between(d("2026-11-15"), d("2026-10-20")), 0);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; __Host-keten-session=xyz; c=d"),
        );
        assert_eq!(cookie(&h).as_deref(), Some("xyz"));
    }

    #[test]
    fn a_post_from_another_origin_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8443"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://127.0.0.1:8443"),
        );
        let uri = Uri::from_static("/logout");
        assert!(same_origin(&h, &uri));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h, &uri));
        // HTTP/2: no Host header, the authority in the URI.
        h.remove(header::HOST);
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://127.0.0.1:8443"),
        );
        assert!(same_origin(
            &h,
            &Uri::from_static("https://127.0.0.1:8443/logout")
        ));
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
