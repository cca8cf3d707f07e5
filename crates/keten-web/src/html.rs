//! The pages, as maud templates: every interpolated value is escaped by maud at compile time,
//! so free text from partners' events (descriptions, reasons) cannot become markup.
//!
//! What a person may not see never reaches these functions: they render a
//! `keten_domain::Redacted` plan, from which the server's need-to-know has already removed it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use keten_domain::classes::{DataClass, Redacted};
use keten_domain::plan::{Plan, Warning, WarningKind};
use keten_domain::{ActionId, LifeDomain, PartnerId};
use maud::{DOCTYPE, Markup, html};

use crate::session::Lang;
use crate::text::{WARNING_KINDS, label, snake, tr, warning_advice, warning_title};

/// Who is signed in, as the header shows it.
pub struct Who {
    pub person: String,
    pub partner_name: String,
    pub role: String,
}

/// What every page needs.
pub struct Frame<'a> {
    pub lang: Lang,
    pub who: Option<&'a Who>,
    pub csrf: Option<&'a str>,
    /// The path of this page, for the language links.
    pub path: &'a str,
}

/// The whole page around `content` (which carries its own `<main id=..>`).
pub fn page(f: &Frame, title: &str, main_id: &str, content: Markup) -> Markup {
    let lang = f.lang;
    let other = match lang {
        Lang::Nl => Lang::En,
        Lang::En => Lang::Nl,
    };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · keten" }
                link rel="stylesheet" href="/static/keten.css";
                script src="/static/keten.js" defer {}
            }
            body {
                a.skip href=(format!("#{main_id}")) { (tr(lang, "Naar de inhoud", "Skip to content")) }
                header.top {
                    nav aria-label=(tr(lang, "Hoofdmenu", "Main")) {
                        a.brand href="/families" { "keten" }
                        @if f.who.is_some() {
                            a href="/families" { (tr(lang, "Gezinnen", "Families")) }
                        }
                    }
                    a.lang href=(format!("{}?lang={}", f.path, other.code())) lang=(other.code()) hreflang=(other.code()) {
                        (tr(lang, "English", "Nederlands"))
                    }
                    @if let Some(who) = f.who {
                        span #who {
                            strong { (who.person) } " · " (who.partner_name) " · " (who.role)
                        }
                        form #sign-out-form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(f.csrf.unwrap_or(""));
                            button #sign-out type="submit" { (tr(lang, "Afmelden", "Sign out")) }
                        }
                    }
                }
                (content)
            }
        }
    }
}

/// A page with a title and one paragraph: not found, not allowed, an error.
pub fn message(f: &Frame, title: &str, id: &str, text: &str) -> Markup {
    page(
        f,
        title,
        "message",
        html! {
            main #message {
                h1 { (title) }
                p id=(id) { (text) }
            }
        },
    )
}

/// One person that may sign in locally, as the form lists them.
pub struct LoginChoice {
    pub login: String,
    pub describe: String,
}

pub struct LoginPage<'a> {
    pub demo: bool,
    pub people: &'a [LoginChoice],
    pub password: bool,
    pub oidc: bool,
    pub error: Option<&'a str>,
}

pub fn login(f: &Frame, p: &LoginPage) -> Markup {
    let lang = f.lang;
    let title = tr(lang, "Aanmelden", "Sign in");
    page(
        f,
        title,
        "login",
        html! {
            main #login {
                h1 { (title) }
                @if let Some(e) = p.error {
                    p.error role="alert" { (e) }
                }
                @if p.oidc {
                    p { a #oidc-login.button href="/auth/oidc/start" {
                        (tr(lang, "Aanmelden bij de gemeente (OpenID Connect)", "Sign in with the municipality (OpenID Connect)"))
                    } }
                }
                @if !p.people.is_empty() {
                    @if p.demo {
                        p.demo { strong { (tr(lang, "Demo-aanmelding", "Demo sign-in")) } ": "
                            (tr(lang, "kies een persoon van de demo; er is geen wachtwoord. Alleen voor de demo.",
                                "pick one of the demo's people; there is no password. For the demo only.")) }
                    }
                    form #local-login method="post" action="/login" {
                        input type="hidden" name="lang" value=(lang.code());
                        p {
                            label for="person" { (tr(lang, "Persoon", "Person")) }
                            select #person name="login" {
                                @for c in p.people {
                                    option value=(c.login) { (c.describe) }
                                }
                            }
                        }
                        @if p.password {
                            p {
                                label for="password" { (tr(lang, "Wachtwoord", "Password")) }
                                input #password name="password" type="password" autocomplete="current-password";
                            }
                        }
                        p { button #sign-in type="submit" { (title) } }
                    }
                }
            }
        },
    )
}

/// One family in the list.
pub struct Row<'a> {
    pub family: &'a str,
    pub plan: &'a Plan,
    pub months_left: Option<i64>,
}

pub struct Filters<'a> {
    pub warning: Option<&'a str>,
    pub rung: Option<&'a str>,
    pub partner: Option<&'a str>,
    pub manager: Option<&'a str>,
    pub sort: &'a str,
    /// The configured partners: (id, name).
    pub partners: &'a [(String, String)],
}

pub const SORTS: [&str; 7] = [
    "family",
    "rung",
    "manager",
    "lead",
    "review",
    "months-left",
    "warnings",
];

pub fn families(f: &Frame, filters: &Filters, rows: &[Row]) -> Markup {
    let lang = f.lang;
    let title = tr(lang, "Gezinnen", "Families");
    let col = |name: &str, nl: &'static str, en: &'static str| {
        html! {
            th scope="col" aria-sort=[(filters.sort == name).then_some("ascending")] {
                a href=(sort_link(filters, name)) { (tr(lang, nl, en)) }
            }
        }
    };
    page(
        f,
        title,
        "families-main",
        html! {
            main #families-main {
                h1 { (title) }
                form #filter method="get" action="/families" {
                    fieldset {
                        legend { (tr(lang, "Filteren en sorteren", "Filter and sort")) }
                        label for="f-warning" { (tr(lang, "Waarschuwing", "Warning")) }
                        select #f-warning name="warning" {
                            option value="" { (tr(lang, "alle", "any")) }
                            @for k in WARNING_KINDS {
                                @let name = snake(&k);
                                option value=(name) selected[filters.warning == Some(name.as_str())] { (warning_title(lang, k)) }
                            }
                        }
                        label for="f-rung" { (tr(lang, "Trede", "Rung")) }
                        select #f-rung name="rung" {
                            option value="" { (tr(lang, "alle", "any")) }
                            @for r in keten_domain::Rung::ALL {
                                option value=(r.as_str()) selected[filters.rung == Some(r.as_str())] { (label(lang, r.as_str())) }
                            }
                        }
                        label for="f-partner" { (tr(lang, "Partner", "Partner")) }
                        select #f-partner name="partner" {
                            option value="" { (tr(lang, "alle", "any")) }
                            @for (id, name) in filters.partners {
                                option value=(id) selected[filters.partner == Some(id.as_str())] { (name) }
                            }
                        }
                        label for="f-manager" { (tr(lang, "Gezinsmanager", "Family manager")) }
                        input #f-manager name="manager" type="text" value=(filters.manager.unwrap_or(""));
                        label for="f-sort" { (tr(lang, "Sorteren op", "Sort by")) }
                        select #f-sort name="sort" {
                            @for s in SORTS {
                                option value=(s) selected[filters.sort == s] { (sort_label(lang, s)) }
                            }
                        }
                        button type="submit" { (tr(lang, "Toon", "Show")) }
                    }
                }
                table #families {
                    caption { (rows.len()) " " (tr(lang, "gezinnen die u mag zien", "families you may see")) }
                    thead { tr {
                        (col("family", "Gezin", "Family"))
                        th scope="col" { (tr(lang, "Fase", "Phase")) }
                        (col("rung", "Trede", "Rung"))
                        (col("manager", "Gezinsmanager", "Family manager"))
                        (col("lead", "Regie", "Lead"))
                        (col("review", "Volgende evaluatie", "Next review"))
                        (col("months-left", "Maanden over", "Months left"))
                        (col("warnings", "Waarschuwingen", "Warnings"))
                    } }
                    tbody {
                        @for r in rows {
                            @let urgent = r.plan.warnings.iter().any(|w| matches!(w.kind, WarningKind::ErasureDeadline | WarningKind::MatchNotSettled));
                            tr data-family=(r.family) class=[urgent.then_some("urgent")] {
                                th scope="row" { a.family-link href=(format!("/families/{}", r.family)) { (r.family) } }
                                td data-col="phase" { (label(lang, &snake(&r.plan.phase))) }
                                td data-col="rung" { @if let Some(e) = &r.plan.escalation { (label(lang, e.rung.as_str())) } }
                                td data-col="manager" { @if let Some(m) = &r.plan.family_manager { (m.manager) " (" (m.partner_id) ")" } }
                                td data-col="lead" { @if let Some(l) = &r.plan.lead { (l.partner_id) } }
                                td data-col="review" { @if let Some(d) = r.plan.next_review { (d) } }
                                td data-col="months-left" { @if let Some(m) = r.months_left { (m) } }
                                td data-col="warnings" {
                                    @if !r.plan.warnings.is_empty() { span.count { (r.plan.warnings.len()) } " " }
                                    @for (kind, n) in warning_kinds(&r.plan.warnings) {
                                        span.warning data-kind=(snake(&kind)) title=(warning_title(lang, kind)) {
                                            (warning_title(lang, kind)) @if n > 1 { " ×" (n) }
                                        }
                                        " "
                                    }
                                }
                            }
                        }
                    }
                }
                @if rows.is_empty() {
                    p { (tr(lang, "Geen gezinnen gevonden.", "No families found.")) }
                }
            }
        },
    )
}

fn sort_label(lang: Lang, s: &str) -> &'static str {
    match s {
        "rung" => tr(lang, "trede", "rung"),
        "manager" => tr(lang, "gezinsmanager", "family manager"),
        "lead" => tr(lang, "regie", "lead"),
        "review" => tr(lang, "volgende evaluatie", "next review"),
        "months-left" => tr(lang, "maanden over", "months left"),
        "warnings" => tr(lang, "waarschuwingen", "warnings"),
        _ => tr(lang, "gezin", "family"),
    }
}

fn sort_link(filters: &Filters, sort: &str) -> String {
    let mut q = vec![format!("sort={sort}")];
    for (k, v) in [
        ("warning", filters.warning),
        ("rung", filters.rung),
        ("partner", filters.partner),
        ("manager", filters.manager),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", query_escape(v)));
        }
    }
    format!("/families?{}", q.join("&"))
}

/// Percent-encodes a query value (ids are plain, but a manager filter is typed by a person).
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Each warning kind once, with how often, in the domain's order.
fn warning_kinds(warnings: &[Warning]) -> BTreeMap<WarningKind, usize> {
    let mut kinds = BTreeMap::new();
    for w in warnings {
        *kinds.entry(w.kind).or_insert(0) += 1;
    }
    kinds
}

/// The family page: `main#family` and what the live updates replace inside it.
pub fn family(f: &Frame, id: &str, position: u64, inner: Markup) -> Markup {
    page(
        f,
        id,
        "family",
        html! {
            main #family data-family=(id) data-position=(position) {
                (inner)
            }
        },
    )
}

/// Partner names for display: the plan's partners, else the id.
fn partner_names(plan: &Plan) -> HashMap<&PartnerId, &str> {
    plan.partners
        .iter()
        .map(|p| (&p.partner_id, p.display_name.as_str()))
        .collect()
}

/// The inside of `main#family`: what a live update replaces.
pub fn family_inner(lang: Lang, id: &str, red: &Redacted, links: bool) -> Markup {
    let plan = &red.plan;
    let omitted: BTreeSet<DataClass> = red.omitted.iter().copied().collect();
    let hidden = |c: DataClass| omitted.contains(&c);
    let names = partner_names(plan);
    let name_of = |p: &PartnerId| names.get(p).copied().unwrap_or(p.as_str()).to_owned();
    html! {
        h1 { (tr(lang, "Gezin", "Family")) " " (id) }
        @if links {
            p.links {
                a href=(format!("/families/{id}/history")) { (tr(lang, "Geschiedenis", "History")) }
                " · "
                a href=(format!("/families/{id}/access-report")) { (tr(lang, "Inzage-overzicht", "Access report")) }
            }
        }
        (summary(lang, plan, &name_of))
        (warnings_section(lang, plan, &omitted))
        (plan_grid(lang, plan, &name_of))
        (members(lang, plan, hidden(DataClass::Identity), &name_of))
        (ladder(lang, plan, hidden(DataClass::Escalation)))
        (chain_escalations(lang, plan, hidden(DataClass::Escalation), &name_of))
        (zrm(lang, plan))
        (police(lang, plan, hidden(DataClass::Police)))
        section #omitted aria-labelledby="h-omitted" {
            h2 #h-omitted { (tr(lang, "Weggelaten gegevens", "Data left out")) }
            @if omitted.is_empty() {
                p { (tr(lang, "U ziet alle gegevens van dit gezin.", "You see all of this family's data.")) }
            } @else {
                p { (tr(lang, "Deze soorten gegevens mag u niet zien; ze zijn weggelaten, of het gezin ze heeft of niet:",
                        "You may not see these classes of data; they are left out, whether or not the family has them:")) }
                ul { @for c in &omitted { li data-class=(c.as_str()) { (label(lang, c.as_str())) } } }
            }
        }
    }
}

fn summary(lang: Lang, plan: &Plan, name_of: &dyn Fn(&PartnerId) -> String) -> Markup {
    html! {
        dl.summary {
            dt { (tr(lang, "Fase", "Phase")) } dd data-field="phase" { (label(lang, &snake(&plan.phase))) }
            @if let Some(t) = plan.family_type {
                dt { (tr(lang, "Type", "Type")) } dd { (label(lang, t.as_str())) @if let Some(s) = plan.strategy { " — " (s) } }
            }
            @if let Some(u) = plan.urgency {
                dt { (tr(lang, "Urgentie", "Urgency")) } dd { (label(lang, u.as_str())) }
            }
            dt { (tr(lang, "Gezinsmanager", "Family manager")) }
            dd data-field="manager" { @match &plan.family_manager {
                Some(m) => { (m.manager) " (" (name_of(&m.partner_id)) ")" }
                None => { "—" }
            } }
            dt { (tr(lang, "Regie", "Lead")) }
            dd { @match &plan.lead { Some(l) => { (name_of(&l.partner_id)) }, None => { "—" } } }
            @if let Some(d) = plan.agreed_on { dt { (tr(lang, "Plan afgesproken", "Plan agreed")) } dd { (d) } }
            @if let Some(d) = plan.horizon { dt { (tr(lang, "Horizon (tien maanden)", "Horizon (ten months)")) } dd { (d) @if plan.extended { " (" (tr(lang, "verlengd", "extended")) ")" } } }
            @if let Some(d) = plan.next_review { dt { (tr(lang, "Volgende evaluatie", "Next review")) } dd { (d) } }
        }
    }
}

fn warnings_section(lang: Lang, plan: &Plan, omitted: &BTreeSet<DataClass>) -> Markup {
    html! {
        section #warnings aria-labelledby="h-warnings" {
            h2 #h-warnings { (tr(lang, "Waarschuwingen", "Warnings")) " (" (plan.warnings.len()) ")" }
            @if plan.warnings.is_empty() {
                p { (tr(lang, "Geen waarschuwingen.", "No warnings.")) }
            } @else {
                ul {
                    @for w in &plan.warnings {
                        li.warning data-kind=(snake(&w.kind)) {
                            strong { (warning_title(lang, w.kind)) } ": " (w.message)
                            " (" (tr(lang, "sinds", "since")) " " (w.since)
                            @if let Some(d) = w.due { "; " (tr(lang, "uiterlijk", "due")) " " (d) }
                            ")"
                            br;
                            span.todo { (tr(lang, "Wat te doen: ", "What to do: ")) (warning_advice(lang, w.kind)) }
                        }
                    }
                }
            }
            @if !omitted.is_empty() {
                p.note { (tr(lang, "Waarschuwingen over gegevens die u niet mag zien, ziet u niet.",
                    "Warnings about data you may not see are not shown.")) }
            }
        }
    }
}

fn plan_grid(lang: Lang, plan: &Plan, name_of: &dyn Fn(&PartnerId) -> String) -> Markup {
    // Columns: the partners taking part, then any other partner with actions (one that left).
    let mut partners: Vec<&PartnerId> = plan.partners.iter().map(|p| &p.partner_id).collect();
    for p in plan.actions.keys() {
        if !partners.contains(&p) {
            partners.push(p);
        }
    }
    let domain_of: HashMap<_, LifeDomain> = plan
        .goals
        .iter()
        .flat_map(|(d, goals)| goals.iter().map(move |g| (&g.goal_id, *d)))
        .collect();
    html! {
        section #plan-section aria-labelledby="h-plan" {
            h2 #h-plan { (tr(lang, "Eén gezin, één plan", "One family, one plan")) }
            @if plan.goals.is_empty() && plan.actions.is_empty() {
                p { (tr(lang, "Er zijn nog geen doelen of acties die u mag zien.", "There are no goals or actions you may see yet.")) }
            }
            table #plan {
                caption { (tr(lang, "Doelen per levensdomein en acties per partner", "Goals per life domain and actions per partner")) }
                thead { tr {
                    th scope="col" { (tr(lang, "Levensdomein", "Life domain")) }
                    th scope="col" { (tr(lang, "Doelen", "Goals")) }
                    @for p in &partners { th scope="col" data-partner=(p) { (name_of(p)) } }
                } }
                tbody {
                    @for (domain, goals) in &plan.goals {
                        tr data-domain=(domain.as_str()) {
                            th scope="row" { (label(lang, domain.as_str())) }
                            td { ul { @for g in goals {
                                li.goal data-goal=(g.goal_id) data-status=(snake(&g.status)) {
                                    (g.description)
                                    " — " (label(lang, &snake(&g.status)))
                                    @if let Some(d) = g.target_date { ", " (tr(lang, "streefdatum", "target")) " " (d) }
                                }
                            } } }
                            @for p in &partners {
                                td { ul {
                                    @for a in plan.actions.get(*p).into_iter().flatten().filter(|a| domain_of.get(&a.goal_id) == Some(domain)) {
                                        li.action data-action=(a.action_id) data-status=(snake(&a.status)) {
                                            (a.description)
                                            @if let Some(i) = &a.intervention { " [" (i.code.as_str()) "]" }
                                            " — " (label(lang, &snake(&a.status)))
                                            ", " (a.start_on) " – " (a.expected_end)
                                            @if !a.member_ids.is_empty() {
                                                " (" @for (i, m) in a.member_ids.iter().enumerate() { @if i > 0 { ", " } (m) } ")"
                                            }
                                        }
                                    }
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn members(
    lang: Lang,
    plan: &Plan,
    hidden: bool,
    name_of: &dyn Fn(&PartnerId) -> String,
) -> Markup {
    let partner_of: HashMap<&ActionId, &PartnerId> = plan
        .actions
        .iter()
        .flat_map(|(p, actions)| actions.iter().map(move |a| (&a.action_id, p)))
        .collect();
    html! {
        section #members aria-labelledby="h-members" {
            h2 #h-members { (tr(lang, "Gezinsleden en wie helpt", "Members and who helps")) }
            @if hidden {
                p { (tr(lang, "Wie in het gezin zit, mag u niet zien.", "You may not see who is in the family.")) }
            } @else {
                ul {
                    @for m in &plan.members {
                        @let helpers: BTreeSet<String> = m.action_ids.iter().filter_map(|a| partner_of.get(a)).map(|p| name_of(p)).collect();
                        li.member.no-help[m.action_ids.is_empty()] data-member=(m.member_id) {
                            strong { (m.member_id) } ", " (label(lang, m.role.as_str())) ", " (m.birth_year)
                            @if !m.present { " (" (tr(lang, "niet meer in het gezin", "no longer in the family")) ")" }
                            ": "
                            @if m.action_ids.is_empty() {
                                em { (tr(lang, "niemand helpt", "nobody helps")) }
                            } @else {
                                (helpers.into_iter().collect::<Vec<_>>().join(", "))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn ladder(lang: Lang, plan: &Plan, hidden: bool) -> Markup {
    html! {
        @if hidden || plan.escalation.is_none() {
            section #ladder aria-labelledby="h-ladder" {
                h2 #h-ladder { (tr(lang, "Escalatieladder", "Escalation ladder")) }
                p { @if hidden { (tr(lang, "De escalatie mag u niet zien.", "You may not see the escalation.")) }
                    @else { (tr(lang, "Nog geen ladder.", "No ladder yet.")) } }
            }
        } @else if let Some(e) = &plan.escalation {
            section #ladder data-rung=(e.rung.as_str()) aria-labelledby="h-ladder" {
                h2 #h-ladder { (tr(lang, "Escalatieladder", "Escalation ladder")) }
                ol.rungs {
                    @for r in keten_domain::Rung::ALL {
                        li aria-current=[(r == e.rung).then_some("step")] class=[(r == e.rung).then_some("current")] {
                            (label(lang, r.as_str()))
                        }
                    }
                }
                p { (tr(lang, "Huidige trede: ", "Current rung: ")) strong.rung { (label(lang, e.rung.as_str())) }
                    @if let Some(s) = e.since { " " (tr(lang, "sinds", "since")) " " (s) } }
                @if let Some(p) = &e.proposal {
                    p.proposal { (tr(lang, "Voorstel aan de gezinsmanager: ", "Proposal to the family manager: "))
                        (label(lang, p.to.as_str())) " (" (p.reasons.len()) " " (tr(lang, "niet nagekomen afspraken", "agreements not kept")) ")" }
                }
                @if !e.history.is_empty() {
                    table.history {
                        caption { (tr(lang, "Geschiedenis van de ladder", "The ladder's history")) }
                        thead { tr {
                            th scope="col" { (tr(lang, "Datum", "Date")) }
                            th scope="col" { (tr(lang, "Van", "From")) }
                            th scope="col" { (tr(lang, "Naar", "To")) }
                            th scope="col" { (tr(lang, "Door", "By")) }
                            th scope="col" { (tr(lang, "Reden", "Reason")) }
                            th scope="col" { (tr(lang, "Wettelijke grond", "Legal basis")) }
                        } }
                        tbody { @for s in &e.history {
                            tr.step data-to=(s.to.as_str()) {
                                th scope="row" { (s.on) }
                                td { (label(lang, s.from.as_str())) }
                                td { (label(lang, s.to.as_str())) }
                                td { (s.by) }
                                td { (s.reason) }
                                td { (s.legal_basis) }
                            }
                        } }
                    }
                }
            }
        }
    }
}

fn chain_escalations(
    lang: Lang,
    plan: &Plan,
    hidden: bool,
    name_of: &dyn Fn(&PartnerId) -> String,
) -> Markup {
    html! {
        section #escalations aria-labelledby="h-escalations" {
            h2 #h-escalations { (tr(lang, "Open ketenescalaties", "Open chain escalations")) }
            @if hidden {
                p { (tr(lang, "De escalaties mag u niet zien.", "You may not see the escalations.")) }
            } @else if plan.open_chain_escalations.is_empty() {
                p { (tr(lang, "Geen open ketenescalaties.", "No open chain escalations.")) }
            } @else {
                ul { @for c in &plan.open_chain_escalations {
                    li.chain-escalation data-action=(c.action_id) data-level=(c.level.as_str()) {
                        (name_of(&c.partner_id)) ", " (tr(lang, "actie", "action")) " " (c.action_id) ": "
                        (label(lang, c.level.as_str())) " " (tr(lang, "sinds", "since")) " " (c.level_since)
                        " (" (tr(lang, "gestart", "raised")) " " (c.raised_on) ")"
                    }
                } }
            }
        }
    }
}

/// ZRM scores at intake, at each review and now, as a small dot chart (1 acute … 5
/// self-reliant) with the same figures in a table for screen readers and keyboard users.
fn zrm(lang: Lang, plan: &Plan) -> Markup {
    const ROW: usize = 22;
    const LEFT: usize = 200;
    const STEP: usize = 50;
    let height = ROW * plan.zrm.len() + 30;
    let x = |score: u8| LEFT + STEP * usize::from(score.clamp(1, 5));
    html! {
        section #zrm aria-labelledby="h-zrm" {
            h2 #h-zrm { (tr(lang, "Zelfredzaamheid (ZRM)", "Self-reliance (ZRM)")) }
            @if plan.zrm.is_empty() {
                p { (tr(lang, "Geen ZRM-scores die u mag zien.", "No ZRM scores you may see.")) }
            } @else {
                svg role="img" aria-labelledby="zrm-title" width=(LEFT + STEP * 6) height=(height) viewBox=(format!("0 0 {} {height}", LEFT + STEP * 6)) xmlns="http://www.w3.org/2000/svg" {
                    title #zrm-title { (tr(lang, "ZRM-scores bij intake (open), bij elke evaluatie (klein) en nu (dicht)", "ZRM scores at intake (hollow), at each review (small) and now (filled)")) }
                    @for s in 1..=5u8 {
                        line x1=(x(s)) y1="0" x2=(x(s)) y2=(height - 20) stroke="#c8c8c8" {}
                        text x=(x(s)) y=(height - 5) text-anchor="middle" font-size="12" fill="#222" { (s) }
                    }
                    @for (i, z) in plan.zrm.iter().enumerate() {
                        @let y = ROW * i + 14;
                        text x="0" y=(y + 4) font-size="12" fill="#222" { (z.member_id) " " (z.domain) }
                        line x1=(x(z.intake)) y1=(y) x2=(x(z.latest)) y2=(y) stroke="#1d4f91" stroke-width="2" {}
                        @for between in z.scores.iter().skip(1).take(z.scores.len().saturating_sub(2)) {
                            circle.review cx=(x(between.score)) cy=(y) r="3" fill="#6b8fc4" {}
                        }
                        circle cx=(x(z.intake)) cy=(y) r="5" fill="#fff" stroke="#1d4f91" stroke-width="2" {}
                        circle cx=(x(z.latest)) cy=(y) r="5" fill="#1d4f91" {}
                    }
                }
                table.zrm {
                    caption { (tr(lang, "ZRM-scores", "ZRM scores")) }
                    thead { tr {
                        th scope="col" { (tr(lang, "Gezinslid", "Member")) }
                        th scope="col" { (tr(lang, "Domein", "Domain")) }
                        th scope="col" { (tr(lang, "Intake", "Intake")) }
                        th scope="col" { (tr(lang, "Laatst", "Latest")) }
                        th scope="col" { (tr(lang, "Verschil", "Change")) }
                        th scope="col" { (tr(lang, "Per evaluatie", "Each review")) }
                    } }
                    tbody { @for z in &plan.zrm {
                        tr {
                            th scope="row" { (z.member_id) }
                            td { (z.domain) }
                            td { (z.intake) " (" (z.intake_on) ")" }
                            td { (z.latest) " (" (z.latest_on) ")" }
                            td { @if z.change > 0 { "+" } (z.change) }
                            td.course { @for (i, p) in z.scores.iter().enumerate() {
                                @if i > 0 { " → " }
                                span title=(p.on) { (p.score) }
                            } }
                        }
                    } }
                }
            }
        }
    }
}

fn police(lang: Lang, plan: &Plan, hidden: bool) -> Markup {
    let o = &plan.outcomes;
    html! {
        section #police-contacts aria-labelledby="h-police" {
            h2 #h-police { (tr(lang, "Politiecontacten", "Police contacts")) }
            @if hidden {
                p { (tr(lang, "Politiegegevens mag u niet zien.", "You may not see police data.")) }
            } @else {
                dl {
                    dt { (tr(lang, "In de zes maanden voor de start van het plan", "In the six months before the plan's start")) }
                    dd data-field="before" { @match o.police_contacts_before { Some(n) => { (n) }, None => { "—" } } }
                    dt { (tr(lang, "Sinds de start", "Since the start")) }
                    dd data-field="after" { @match o.police_contacts_after { Some(n) => { (n) }, None => { "—" } }
                        @if o.police_contacts_after.is_some() && !o.after_window_complete { " (" (tr(lang, "periode loopt nog", "period still running")) ")" } }
                }
            }
        }
    }
}

/// One event on the history page's slider.
pub struct HistoryEvent {
    pub position: u64,
    /// RFC 3339, UTC.
    pub at: String,
    pub event_type: String,
    pub partner: String,
    pub person: String,
}

pub fn history(f: &Frame, id: &str, events: &[HistoryEvent], as_of: Markup) -> Markup {
    let lang = f.lang;
    let title = format!(
        "{} {id}",
        tr(lang, "Geschiedenis van gezin", "History of family")
    );
    let last = events.len().saturating_sub(1);
    let positions: Vec<String> = events.iter().map(|e| e.position.to_string()).collect();
    let times: Vec<&str> = events.iter().map(|e| e.at.as_str()).collect();
    page(
        f,
        &title,
        "history",
        html! {
            main #history data-family=(id) {
                h1 { (title) }
                p.links {
                    a href=(format!("/families/{id}")) { (tr(lang, "Terug naar het gezin", "Back to the family")) }
                    " · "
                    a #access-report-link href=(format!("/families/{id}/access-report")) { (tr(lang, "Inzage-overzicht", "Access report")) }
                }
                div.slider {
                    label for="time-slider" { (tr(lang, "Het gezin zoals het stond na gebeurtenis", "The family as it stood after event")) }
                    input #time-slider type="range" min="0" max=(last) step="1" value=(last)
                        data-positions=(positions.join(" ")) data-times=(times.join(" "))
                        aria-describedby="as-of-label";
                    output #as-of-label for="time-slider" { (events.last().map_or("", |e| e.at.as_str())) }
                }
                (as_of)
                details {
                    summary { (tr(lang, "Alle gebeurtenissen", "All events")) " (" (events.len()) ")" }
                    table.events {
                        thead { tr {
                            th scope="col" { "#" }
                            th scope="col" { (tr(lang, "Vastgelegd", "Committed")) }
                            th scope="col" { (tr(lang, "Gebeurtenis", "Event")) }
                            th scope="col" { (tr(lang, "Partner", "Partner")) }
                            th scope="col" { (tr(lang, "Persoon", "Person")) }
                        } }
                        tbody { @for (i, e) in events.iter().enumerate() {
                            tr data-position=(e.position) {
                                th scope="row" { (i) }
                                td { (e.at) }
                                td { (e.event_type) }
                                td { (e.partner) }
                                td { (e.person) }
                            }
                        } }
                    }
                }
            }
        },
    )
}

/// The as-of rendering the slider loads: the whole `div#as-of`.
pub fn as_of(lang: Lang, id: &str, position: u64, day: NaiveDate, red: &Redacted) -> Markup {
    html! {
        div #as-of data-position=(position) aria-live="polite" {
            p.as-of-day { (tr(lang, "Stand op", "As it stood on")) " " (day) " (" (tr(lang, "positie", "position")) " " (position) ")" }
            (family_inner(lang, id, red, false))
        }
    }
}

pub fn access_report(f: &Frame, id: &str, text: &str) -> Markup {
    let lang = f.lang;
    let title = format!(
        "{} {id}",
        tr(
            lang,
            "Inzage-overzicht van gezin",
            "Access report of family"
        )
    );
    page(
        f,
        &title,
        "report",
        html! {
            main #report {
                h1 { (title) }
                p.links { a href=(format!("/families/{id}")) { (tr(lang, "Terug naar het gezin", "Back to the family")) } }
                section #access-report aria-labelledby="h-report" {
                    h2 #h-report.visually-hidden { (tr(lang, "Wie heeft de gegevens ingezien", "Who saw the data")) }
                    @for line in text.lines() {
                        @if line.trim().is_empty() { } @else { p { (line) } }
                    }
                }
            }
        },
    )
}

/// A JSON string for the live update: `{"position": p, "html": "..."}`.
pub fn live_message(position: u64, inner: &Markup) -> String {
    serde_json::json!({ "position": position, "html": inner.0 }).to_string()
}
