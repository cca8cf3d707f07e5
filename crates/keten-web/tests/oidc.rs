//! OpenID Connect sign-in against a small identity provider run by the test: a real HTTP
//! server with discovery, an authorization endpoint, a token endpoint that checks the client
//! secret and the PKCE verifier, and a JWKS; its ID tokens are signed with a real RSA key.
//! A good token signs in; a bad signature, a wrong audience, an expired token and a wrong
//! nonce do not.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

const IDP_KEY: &str = include_str!("fixtures/idp.key");
const OTHER_KEY: &str = include_str!("fixtures/other.key");
const IDP_N: &str = include_str!("fixtures/idp.n");
const CLIENT_ID: &str = "keten-test";
const CLIENT_SECRET: &str = "s3cret-of-the-client";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Good,
    BadSignature,
    WrongAudience,
    Expired,
    WrongNonce,
}

#[derive(Default)]
struct Idp {
    issuer: String,
    token: Option<Token>,
    /// code → (nonce, PKCE challenge)
    codes: HashMap<String, (String, String)>,
}

type Shared = Arc<Mutex<Idp>>;

async fn discovery(State(idp): State<Shared>) -> Response {
    let issuer = idp.lock().unwrap().issuer.clone();
    json(serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

async fn jwks() -> Response {
    json(serde_json::json!({
        "keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": IDP_N.trim(), "e": "AQAB"}]
    }))
    .into_response()
}

async fn authorize(
    State(idp): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    let code = format!("code-{}", uuid::Uuid::new_v4().simple());
    idp.lock().unwrap().codes.insert(
        code.clone(),
        (q["nonce"].clone(), q["code_challenge"].clone()),
    );
    let mut url = reqwest::Url::parse(&q["redirect_uri"]).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q["state"]);
    (AxumStatus::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

async fn token(
    State(idp): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(basic.as_str())
    {
        return (AxumStatus::UNAUTHORIZED, "invalid_client").into_response();
    }
    assert_eq!(f["grant_type"], "authorization_code");
    let mut idp = idp.lock().unwrap();
    let Some((nonce, challenge)) = idp.codes.remove(&f["code"]) else {
        return (AxumStatus::BAD_REQUEST, "invalid_grant").into_response();
    };
    let verified = URL_SAFE_NO_PAD.encode(Sha256::digest(f["code_verifier"].as_bytes()));
    if verified != challenge {
        return (AxumStatus::BAD_REQUEST, "invalid_grant: PKCE").into_response();
    }
    let mode = idp.token.expect("the test chose a token");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (exp, iat) = if mode == Token::Expired {
        (now - 3600, now - 7200)
    } else {
        (now + 300, now)
    };
    let claims = serde_json::json!({
        "iss": idp.issuer,
        "aud": if mode == Token::WrongAudience { "another-client" } else { CLIENT_ID },
        "sub": "coord-oidc",
        "exp": exp,
        "iat": iat,
        "nonce": if mode == Token::WrongNonce { "not-this-sign-ins-nonce".to_string() } else { nonce },
        "keten_partner": "gemeente",
        "keten_role": "coordinator",
    });
    let key = if mode == Token::BadSignature {
        OTHER_KEY
    } else {
        IDP_KEY
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("k1".into());
    let id_token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap();
    json(serde_json::json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

fn json(value: serde_json::Value) -> Json {
    Json(value)
}

/// A JSON answer (axum's `Json` needs a feature keten does not otherwise use).
struct Json(serde_json::Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json")],
            self.0.to_string(),
        )
            .into_response()
    }
}

async fn start_idp() -> (Shared, String) {
    let idp: Shared = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    idp.lock().unwrap().issuer = issuer.clone();
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (idp, issuer)
}

fn oidc_config(issuer: &str) -> String {
    format!(
        r#"
[oidc]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
redirect_url = "https://127.0.0.1/auth/oidc/callback"
scopes = ["openid", "profile"]
person_claim = "sub"
partner_claim = "keten_partner"
role_claim = "keten_role"
"#
    )
}

/// The browser's way: keten sends it to the provider, the provider back with a code; returns
/// keten's answer to the callback and the callback's path (to try it again).
async fn round_trip(b: &mut Browser, plain: &reqwest::Client) -> (Answer, String) {
    let start = b.get("/auth/oidc/start").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let state_cookie = start.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        state_cookie.starts_with("__Host-keten-oidc="),
        "{state_cookie}"
    );
    let authorize = start.location().unwrap().to_owned();
    let at_idp = plain.get(&authorize).send().await.unwrap();
    assert_eq!(at_idp.status(), StatusCode::FOUND);
    let back = reqwest::Url::parse(at_idp.headers()["location"].to_str().unwrap()).unwrap();
    let path = format!("{}?{}", back.path(), back.query().unwrap());
    let cookie = state_cookie.split(';').next().unwrap().to_owned();
    b.cookie = Some(cookie);
    (b.get(&path).await, path)
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_good_id_token_signs_in_and_the_callback_cannot_be_replayed() {
    let (idp, issuer) = start_idp().await;
    let h = Harness::start(&oidc_config(&issuer)).await;
    let mut b = h.browser();
    let login = b.get("/login").await;
    assert!(
        login
            .body
            .contains(r#"id="oidc-login" href="/auth/oidc/start""#),
        "{}",
        login.body
    );
    assert!(login.body.contains(r#"href="/auth/oidc/start""#));
    // No local people configured: no local form.
    assert!(!login.body.contains("local-login"));

    idp.lock().unwrap().token = Some(Token::Good);
    let plain = plain_client();
    let (answer, path) = round_trip(&mut b, &plain).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), Some("/families"));
    let session = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with(keten_web::COOKIE))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    b.cookie = Some(session.clone());
    let families = b.get("/families").await;
    assert_eq!(families.status, StatusCode::OK);
    assert!(families.body.contains("coord-oidc"));

    // The same callback again (a replayed or stolen URL) signs nobody in.
    let mut other = h.browser();
    other.cookie = b
        .cookie
        .clone()
        .map(|_| "__Host-keten-oidc=whatever".to_owned());
    let again = other.get(&path).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

#[tokio::test]
async fn bad_id_tokens_are_refused() {
    let (idp, issuer) = start_idp().await;
    let h = Harness::start(&oidc_config(&issuer)).await;
    let plain = plain_client();
    for bad in [
        Token::BadSignature,
        Token::WrongAudience,
        Token::Expired,
        Token::WrongNonce,
    ] {
        idp.lock().unwrap().token = Some(bad);
        let mut b = h.browser();
        let (answer, _) = round_trip(&mut b, &plain).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{bad:?}: {}",
            answer.body
        );
        assert!(
            answer
                .headers
                .get_all("set-cookie")
                .iter()
                .all(|c| !c.to_str().unwrap().starts_with(keten_web::COOKIE)),
            "{bad:?} set a session"
        );
        assert!(answer.body.contains("identity provider"), "{bad:?}");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_callback_without_this_browsers_state_is_refused() {
    let (idp, issuer) = start_idp().await;
    let h = Harness::start(&oidc_config(&issuer)).await;
    idp.lock().unwrap().token = Some(Token::Good);
    let mut b = h.browser();
    let start = b.get("/auth/oidc/start").await;
    let authorize = start.location().unwrap().to_owned();
    let at_idp = plain_client().get(&authorize).send().await.unwrap();
    let back = reqwest::Url::parse(at_idp.headers()["location"].to_str().unwrap()).unwrap();
    // Another browser (an attacker's link) without the state cookie.
    let mut victim = h.browser();
    let answer = victim
        .get(&format!("{}?{}", back.path(), back.query().unwrap()))
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}
