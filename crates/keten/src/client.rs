//! A partner system's connection to keten: mutual TLS with its own certificate, and the acting
//! person and role on every request.

use std::path::Path;

use anyhow::{Context, Result};
use keten_domain::{Event, FamilyId, Role};
use keten_proto::convert;
use keten_proto::v1::{
    self, audit_client::AuditClient, coordination_client::CoordinationClient,
    partner_gateway_client::PartnerGatewayClient,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A connection made with the client certificate `<pki>/<name>.pem` (and `.key`), trusting the
/// CA `<pki>/ca.pem`.
pub async fn connect(url: &str, pki: &Path, name: &str) -> Result<Channel> {
    let read = |file: String| {
        let path = pki.join(&file);
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem".into())?))
        .identity(Identity::from_pem(
            read(format!("{name}.pem"))?,
            read(format!("{name}.key"))?,
        ))
        .domain_name("localhost");
    Endpoint::from_shared(url.to_string())?
        .tls_config(tls)?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url} as {name}"))
}

/// One person acting in one role through one partner's connection.
#[derive(Clone)]
pub struct Session {
    pub channel: Channel,
    pub person: String,
    pub role: Role,
    /// Sent as `x-keten-purpose`: what the calls are for, recorded in the access log.
    pub purpose: Option<String>,
    /// Sent as `x-keten-emergency`: "break the glass", the reason to read outside need-to-know.
    pub emergency: Option<String>,
}

impl Session {
    pub fn new(channel: Channel, person: impl Into<String>, role: Role) -> Self {
        Self {
            channel,
            person: person.into(),
            role,
            purpose: None,
            emergency: None,
        }
    }

    pub fn with_purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }

    pub fn with_emergency(mut self, reason: impl Into<String>) -> Self {
        self.emergency = Some(reason.into());
        self
    }

    /// `message` with this session's `x-keten-person` and `x-keten-role`.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        let md = r.metadata_mut();
        if let Ok(v) = self.person.parse() {
            md.insert("x-keten-person", v);
        }
        if let Ok(v) = self.role.as_str().parse() {
            md.insert("x-keten-role", v);
        }
        if let Some(v) = self.purpose.as_deref().and_then(|p| p.parse().ok()) {
            md.insert("x-keten-purpose", v);
        }
        if let Some(v) = self.emergency.as_deref().and_then(|p| p.parse().ok()) {
            md.insert("x-keten-emergency", v);
        }
        r
    }

    pub fn gateway(&self) -> PartnerGatewayClient<Channel> {
        PartnerGatewayClient::new(self.channel.clone())
    }

    pub fn coordination(&self) -> CoordinationClient<Channel> {
        CoordinationClient::new(self.channel.clone())
    }

    pub fn audit(&self) -> AuditClient<Channel> {
        AuditClient::new(self.channel.clone())
    }
}

/// A publish of `events` to `family`, each under a fresh event id (a retry sends the same request
/// again, ids and all).
pub fn publish_request(
    family: &FamilyId,
    expected: Option<v1::ExpectedVersion>,
    events: &[Event],
) -> v1::PublishRequest {
    v1::PublishRequest {
        family_id: family.to_string(),
        expected,
        events: events
            .iter()
            .map(|e| v1::PublishedEvent {
                event_id: uuid::Uuid::new_v4().to_string(),
                event: Some(convert::event_to_proto(e)),
            })
            .collect(),
        correlation_id: None,
    }
}
