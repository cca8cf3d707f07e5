//! Sign-in at the municipality's identity provider: OpenID Connect's authorization-code flow
//! with PKCE (S256) and a nonce. The ID token's RS256 signature is checked against the
//! provider's published keys (JWKS), and its issuer, audience, expiry and nonce against what
//! this sign-in sent. Its claims name the person, the partner and the role, which then go
//! through need-to-know like any caller's.
//!
//! The browser carries the sign-in's `state` in a cookie of its own, so that a callback can
//! only finish a sign-in this browser started (no login CSRF).

use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keten_domain::{PartnerId, PersonId, Role};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::config::OidcConfig;
use crate::error::{Error, Result};
use crate::routes::Web;
use crate::session::{Lang, Person, random_token};
use crate::text::tr;

/// The cookie carrying a sign-in's `state` while the browser is at the identity provider.
const STATE_COOKIE: &str = "__Host-keten-oidc";
/// Clock skew allowed on `exp` and `iat`.
const LEEWAY_SECS: u64 = 60;

pub(crate) struct Oidc {
    config: OidcConfig,
    secret: String,
    http: reqwest::Client,
    discovery: OnceCell<Discovery>,
}

/// What the provider publishes at `issuer/.well-known/openid-configuration`.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: String,
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

impl Oidc {
    pub fn new(config: &OidcConfig) -> Result<Oidc> {
        let secret = match (&config.client_secret, &config.client_secret_file) {
            (Some(s), None) => s.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_owned(),
            _ => {
                return Err(Error::Config {
                    field: "web.oidc.client_secret".into(),
                    rule: "give exactly one of client_secret and client_secret_file".into(),
                });
            }
        };
        let mut http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10));
        if let Some(ca) = &config.ca {
            let pem = std::fs::read(ca).map_err(|source| Error::Read {
                path: ca.clone(),
                source,
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| Error::Config {
                field: "web.oidc.ca".into(),
                rule: format!("not a PEM certificate: {e}"),
            })?;
            http = http
                .tls_built_in_root_certs(false)
                .add_root_certificate(cert);
        }
        let http = http
            .build()
            .map_err(|e| Error::Oidc(format!("HTTP client: {e}")))?;
        Ok(Oidc {
            config: config.clone(),
            secret,
            http,
            discovery: OnceCell::new(),
        })
    }

    async fn discovery(&self) -> Result<&Discovery> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let d: Discovery = self.get_json(&url).await?;
                // The document must be the issuer's own (OpenID Connect Discovery 4.3).
                if d.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
                    return Err(Error::Oidc(format!(
                        "the discovery document names issuer `{}`, not `{}`",
                        d.issuer, self.config.issuer
                    )));
                }
                Ok(d)
            })
            .await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T> {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| Error::Oidc(format!("GET {url}: {e}")))?;
        if !r.status().is_success() {
            return Err(Error::Oidc(format!("GET {url}: {}", r.status())));
        }
        r.json()
            .await
            .map_err(|e| Error::Oidc(format!("GET {url}: {e}")))
    }

    /// Where to send the browser: the provider's authorization endpoint with this sign-in's
    /// state, nonce and PKCE challenge.
    async fn authorize_url(&self, state: &str, nonce: &str, verifier: &str) -> Result<String> {
        let d = self.discovery().await?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let scope = self.config.scopes.join(" ");
        let mut url = reqwest::Url::parse(&d.authorization_endpoint)
            .map_err(|e| Error::Oidc(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_url)
            .append_pair("scope", &scope)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Trades the code for an ID token, checks it, and reads the person from its claims.
    async fn finish(&self, code: &str, verifier: &str, nonce: &str) -> Result<Person> {
        let d = self.discovery().await?;
        let r = self
            .http
            .post(&d.token_endpoint)
            .basic_auth(&self.config.client_id, Some(&self.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.config.redirect_url.as_str()),
                ("client_id", self.config.client_id.as_str()),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| Error::Oidc(format!("token endpoint: {e}")))?;
        if !r.status().is_success() {
            return Err(Error::Oidc(format!(
                "the token endpoint refused the code: {}",
                r.status()
            )));
        }
        let tokens: TokenResponse = r
            .json()
            .await
            .map_err(|e| Error::Oidc(format!("token endpoint answer: {e}")))?;
        let claims = self.verify(&tokens.id_token, d, nonce).await?;
        self.person(&claims)
    }

    /// The ID token's claims, if its signature, issuer, audience, expiry and nonce hold.
    async fn verify(
        &self,
        token: &str,
        d: &Discovery,
        nonce: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
        let header =
            decode_header(token).map_err(|e| Error::Oidc(format!("ID token header: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(Error::Oidc(format!(
                "ID token signed with {:?}; only RS256 is accepted",
                header.alg
            )));
        }
        let jwks: Jwks = self.get_json(&d.jwks_uri).await?;
        let key = jwks
            .keys
            .iter()
            .filter(|k| k.kty == "RSA")
            .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == "RS256"))
            .find(|k| header.kid.is_none() || k.kid == header.kid)
            .ok_or_else(|| {
                Error::Oidc("no RSA signing key in the JWKS matches the token".into())
            })?;
        let (Some(n), Some(e)) = (&key.n, &key.e) else {
            return Err(Error::Oidc("the JWKS key lacks n or e".into()));
        };
        let decoding = DecodingKey::from_rsa_components(n, e)
            .map_err(|e| Error::Oidc(format!("the JWKS key: {e}")))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_issuer(&[&d.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let data =
            decode::<serde_json::Map<String, serde_json::Value>>(token, &decoding, &validation)
                .map_err(|e| Error::Oidc(format!("ID token refused: {e}")))?;
        let claims = data.claims;
        match claims.get("nonce").and_then(|v| v.as_str()) {
            Some(n) if crate::routes::same_secret(n, nonce) => Ok(claims),
            Some(_) => Err(Error::Oidc(
                "ID token refused: its nonce is not this sign-in's".into(),
            )),
            None => Err(Error::Oidc("ID token refused: no nonce".into())),
        }
    }

    fn person(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Result<Person> {
        let claim = |name: &str| {
            claims
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| Error::Oidc(format!("the ID token has no string claim `{name}`")))
        };
        let person = PersonId::new(claim(&self.config.person_claim)?)
            .map_err(|e| Error::Oidc(format!("claim `{}`: {e}", self.config.person_claim)))?;
        let partner = PartnerId::new(claim(&self.config.partner_claim)?)
            .map_err(|e| Error::Oidc(format!("claim `{}`: {e}", self.config.partner_claim)))?;
        let role_text = claim(&self.config.role_claim)?;
        let role: Role = serde_json::from_value(serde_json::Value::String(role_text.into()))
            .map_err(|_| {
                Error::Oidc(format!(
                    "claim `{}`: `{role_text}` is not a role (partner_system, family_manager, coordinator, auditor)",
                    self.config.role_claim
                ))
            })?;
        Ok(Person {
            person,
            partner,
            role,
            via: "oidc",
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StartQuery {
    lang: Option<String>,
}

pub(crate) async fn start(State(web): State<Web>, Query(q): Query<StartQuery>) -> Response {
    let lang = q.lang.as_deref().and_then(Lang::parse).unwrap_or(Lang::Nl);
    let Some(oidc) = &web.inner.oidc else {
        return crate::routes::not_found(lang);
    };
    let nonce = random_token();
    let verifier = random_token();
    let state =
        web.inner
            .sessions
            .begin_pending(nonce.clone(), verifier.clone(), lang, Instant::now());
    match oidc.authorize_url(&state, &nonce, &verifier).await {
        Ok(url) => {
            let mut response = Redirect::to(&url).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&format!(
                    "{STATE_COOKIE}={state}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600"
                ))
                .expect("a token is a valid header value"),
            );
            response
        }
        Err(e) => refused(&web, lang, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub(crate) async fn callback(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(oidc) = &web.inner.oidc else {
        return crate::routes::not_found(Lang::Nl);
    };
    let state = q.state.unwrap_or_default();
    let ours = state_cookie(&headers).is_some_and(|c| crate::routes::same_secret(&c, &state));
    let pending = if ours {
        web.inner.sessions.take_pending(&state, Instant::now())
    } else {
        None
    };
    let Some(pending) = pending else {
        return refused(
            &web,
            Lang::Nl,
            &Error::Oidc("the sign-in's state is unknown, used or not this browser's".into()),
        );
    };
    if let Some(error) = q.error {
        return refused(
            &web,
            pending.lang,
            &Error::Oidc(format!("the identity provider answered `{error}`")),
        );
    }
    let Some(code) = q.code else {
        return refused(
            &web,
            pending.lang,
            &Error::Oidc("no code in the callback".into()),
        );
    };
    match oidc.finish(&code, &pending.verifier, &pending.nonce).await {
        Ok(person) => {
            if web.caller_for(&person).is_none() {
                return refused(
                    &web,
                    pending.lang,
                    &Error::Oidc(format!(
                        "partner `{}` is not configured or may not act as {}",
                        person.partner, person.role
                    )),
                );
            }
            let mut response = web.sign_in(person, pending.lang);
            response.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "__Host-keten-oidc=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
                ),
            );
            response
        }
        Err(e) => refused(&web, pending.lang, &e),
    }
}

fn state_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(STATE_COOKIE)?.strip_prefix('='))
        .map(str::to_owned)
}

/// The sign-in page again, saying that signing in at the provider failed; the reason goes to
/// the log, not to the browser.
fn refused(web: &Web, lang: Lang, e: &Error) -> Response {
    tracing::warn!(error = %e, "web: OpenID Connect sign-in refused");
    crate::routes::login_form(
        web,
        lang,
        StatusCode::UNAUTHORIZED,
        Some(tr(
            lang,
            "Aanmelden bij de identity provider is mislukt.",
            "Signing in at the identity provider failed.",
        )),
    )
}
