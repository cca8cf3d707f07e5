//! The `[web]` section of keten's configuration: where the screen listens, how long sessions
//! last, and who may sign in (local people for the demo, OpenID Connect for a municipality's
//! staff). The binary reads it from TOML; here its shape and its checks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use keten_domain::{PartnerId, PersonId, Role};
use keten_server::auth::Directory;
use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// The HTTPS address; absent means the screen is off unless `--web-listen` gives one.
    pub listen: Option<SocketAddr>,
    /// A session idle this long ends.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
    /// A session ends this long after sign-in, however busy.
    #[serde(default = "default_session_max_minutes")]
    pub session_max_minutes: u64,
    pub local: Option<LocalConfig>,
    pub oidc: Option<OidcConfig>,
}

fn default_session_minutes() -> u64 {
    30
}

fn default_session_max_minutes() -> u64 {
    12 * 60
}

/// Local sign-in: a list of people, each acting for one partner in one role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// People without a password may sign in; the sign-in page says it is a demo.
    #[serde(default)]
    pub demo: bool,
    #[serde(default, rename = "person")]
    pub people: Vec<LocalPerson>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalPerson {
    /// What the person picks or types at sign-in.
    pub login: String,
    /// The person's pseudonymous id, recorded with every access (as `x-keten-person` is).
    pub name: PersonId,
    pub partner: PartnerId,
    pub role: Role,
    /// Required unless `[web.local] demo = true`.
    pub password: Option<String>,
}

/// OpenID Connect, authorization-code flow with PKCE and a nonce.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL; its discovery document is at `issuer/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// A file holding the client secret (kept out of the configuration file).
    pub client_secret_file: Option<PathBuf>,
    /// Where the identity provider sends the browser back: `https://<web>/auth/oidc/callback`.
    pub redirect_url: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID-token claim holding the person's pseudonymous id.
    #[serde(default = "default_person_claim")]
    pub person_claim: String,
    /// The claim holding the partner id the person acts for.
    pub partner_claim: String,
    /// The claim holding the role.
    pub role_claim: String,
    /// A CA (PEM) to trust for the identity provider besides none: keten trusts only this CA,
    /// so that a test identity provider or a municipality's private CA works.
    pub ca: Option<PathBuf>,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into()]
}

fn default_person_claim() -> String {
    "sub".into()
}

impl WebConfig {
    /// Resolves relative paths against `base` (the configuration file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(oidc) = &mut self.oidc {
            for p in [&mut oidc.client_secret_file, &mut oidc.ca]
                .into_iter()
                .flatten()
            {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
    }

    /// Every person acts for a configured partner in a role that partner has; people without a
    /// password only in a demo; at least one way to sign in.
    pub fn check(&self, directory: &Directory) -> Result<()> {
        let bad = |field: &str, rule: String| Error::Config {
            field: field.to_owned(),
            rule,
        };
        if self.session_minutes == 0 {
            return Err(bad("web.session_minutes", "must be at least 1".into()));
        }
        if self.session_max_minutes < self.session_minutes {
            return Err(bad(
                "web.session_max_minutes",
                "must be at least session_minutes".into(),
            ));
        }
        if self.local.is_none() && self.oidc.is_none() {
            return Err(bad(
                "web",
                "needs [web.local] or [web.oidc]: nobody could sign in".into(),
            ));
        }
        if let Some(local) = &self.local {
            let mut logins = std::collections::HashSet::new();
            for (i, p) in local.people.iter().enumerate() {
                let field = format!("web.local.person[{i}]");
                if p.login.trim().is_empty() {
                    return Err(bad(&format!("{field}.login"), "must not be empty".into()));
                }
                if !logins.insert(p.login.as_str()) {
                    return Err(bad(
                        &format!("{field}.login"),
                        format!("`{}` appears twice", p.login),
                    ));
                }
                let Some(partner) = directory.by_id(&p.partner) else {
                    return Err(bad(
                        &format!("{field}.partner"),
                        format!("`{}` is not a configured partner", p.partner),
                    ));
                };
                if !partner.roles.contains(&p.role) {
                    return Err(bad(
                        &format!("{field}.role"),
                        format!("partner `{}` may not act as {}", p.partner, p.role),
                    ));
                }
                if p.password.is_none() && !local.demo {
                    return Err(bad(
                        &format!("{field}.password"),
                        "required unless [web.local] demo = true".into(),
                    ));
                }
            }
        }
        if let Some(oidc) = &self.oidc {
            if oidc.client_secret.is_some() == oidc.client_secret_file.is_some() {
                return Err(bad(
                    "web.oidc.client_secret",
                    "give exactly one of client_secret and client_secret_file".into(),
                ));
            }
            if !oidc.scopes.iter().any(|s| s == "openid") {
                return Err(bad("web.oidc.scopes", "must include `openid`".into()));
            }
            for (field, url) in [
                ("issuer", &oidc.issuer),
                ("redirect_url", &oidc.redirect_url),
            ] {
                if !url.starts_with("https://") && !url.starts_with("http://") {
                    return Err(bad(
                        &format!("web.oidc.{field}"),
                        format!("`{url}` is not an http(s) URL"),
                    ));
                }
            }
        }
        Ok(())
    }
}
