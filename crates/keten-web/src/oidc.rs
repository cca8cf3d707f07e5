//! OpenID Connect sign-in (to be completed).

use axum::extract::State;
use axum::response::Response;

use crate::config::OidcConfig;
use crate::routes::Web;

pub(crate) struct Oidc {
    pub config: OidcConfig,
}

impl Oidc {
    pub fn new(config: &OidcConfig) -> crate::Result<Oidc> {
        Ok(Oidc {
            config: config.clone(),
        })
    }
}

pub(crate) async fn start(State(_web): State<Web>) -> Response {
    axum::http::StatusCode::NOT_FOUND.into_response()
}

pub(crate) async fn callback(State(_web): State<Web>) -> Response {
    axum::http::StatusCode::NOT_FOUND.into_response()
}

use axum::response::IntoResponse;
