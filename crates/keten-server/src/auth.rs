//! Who is calling: the partner from the client certificate (mutual TLS), the person and role
//! from request metadata.
//!
//! The TLS layer has already checked that the certificate chains to the configured CA; here its
//! subject common name is looked up among the configured partners. The role must be one the
//! partner may act in. Nothing else about the caller is trusted.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use keten_domain::{Actor, PartnerId, PartnerKind, PersonId, Role};
use tonic::Request;

use crate::config::PartnerConfig;
use crate::error::{Error, Result};

pub const PERSON_HEADER: &str = "x-keten-person";
pub const ROLE_HEADER: &str = "x-keten-role";
/// The purpose or legal ground of a call, recorded in the access log.
pub const PURPOSE_HEADER: &str = "x-keten-purpose";
/// "Break the glass": the reason a person reads a family outside need-to-know.
pub const EMERGENCY_HEADER: &str = "x-keten-emergency";

/// A configured partner organisation.
#[derive(Debug, Clone)]
pub struct Partner {
    pub id: PartnerId,
    pub kind: PartnerKind,
    pub name: String,
    pub roles: Vec<Role>,
    pub municipality: Option<String>,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub partner: Arc<Partner>,
    pub actor: Actor,
    /// What the call is for, as the caller says (`x-keten-purpose`).
    pub purpose: Option<String>,
    /// Why the caller reads outside need-to-know, if it does (`x-keten-emergency`).
    pub emergency: Option<String>,
}

/// Certificate name → partner, and partner id → partner.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    by_certificate: HashMap<String, Arc<Partner>>,
    by_id: HashMap<PartnerId, Arc<Partner>>,
    /// Client certificates (DER) already found to belong to a partner: every call on a
    /// connection presents the same certificate, and looking its bytes up costs a fraction of
    /// parsing it again. Only certificates of configured partners are kept, at most
    /// [`KNOWN_CERTIFICATES`] of them.
    known: Arc<RwLock<HashMap<Vec<u8>, Arc<Partner>>>>,
}

/// Certificates kept in [`Directory::known`] at most: every partner's current and next
/// certificate many times over.
const KNOWN_CERTIFICATES: usize = 1024;

impl Directory {
    pub fn new(partners: &[PartnerConfig]) -> Self {
        let mut by_certificate = HashMap::new();
        let mut by_id = HashMap::new();
        for p in partners {
            let partner = Arc::new(Partner {
                id: p.id.clone(),
                kind: p.kind,
                name: p.name.clone(),
                roles: p.roles.clone(),
                municipality: p.municipality.clone(),
            });
            by_certificate.insert(p.certificate.clone(), partner.clone());
            by_id.insert(p.id.clone(), partner);
        }
        Self {
            by_certificate,
            by_id,
            known: Arc::default(),
        }
    }

    /// Every configured partner, in no particular order.
    pub fn partners(&self) -> impl Iterator<Item = &Arc<Partner>> {
        self.by_id.values()
    }

    /// A configured partner by id.
    pub fn by_id(&self, id: &PartnerId) -> Option<&Arc<Partner>> {
        self.by_id.get(id)
    }

    /// The caller of `request`: partner from the certificate, actor from the metadata.
    pub fn caller<T>(&self, request: &Request<T>) -> Result<Caller> {
        let partner = self.partner(request)?;
        let person = header(request, PERSON_HEADER)?;
        let person = PersonId::new(person).map_err(|e| {
            Error::Unauthenticated(format!("{PERSON_HEADER} is not a usable person id: {e}"))
        })?;
        let role_text = header(request, ROLE_HEADER)?;
        let role = parse_role(role_text).ok_or_else(|| {
            Error::PermissionDenied(format!(
                "{ROLE_HEADER} `{role_text}` is not a role; use partner_system, family_manager, coordinator or auditor"
            ))
        })?;
        if !partner.roles.contains(&role) {
            return Err(Error::PermissionDenied(format!(
                "partner `{}` may not act as {role}; its roles are {}",
                partner.id,
                partner
                    .roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let actor = Actor {
            person,
            role,
            partner: partner.id.clone(),
            partner_kind: partner.kind,
        };
        Ok(Caller {
            partner,
            actor,
            purpose: optional_header(request, PURPOSE_HEADER)?,
            emergency: optional_header(request, EMERGENCY_HEADER)?,
        })
    }

    /// The partner whose certificate made this connection.
    pub fn partner<T>(&self, request: &Request<T>) -> Result<Arc<Partner>> {
        let certs = request.peer_certs().ok_or_else(|| {
            Error::Unauthenticated("no client certificate on this connection".into())
        })?;
        let leaf = certs.first().ok_or_else(|| {
            Error::Unauthenticated("no client certificate on this connection".into())
        })?;
        let der: &[u8] = leaf.as_ref();
        // The same bytes name the same subject: what the parse below found once holds.
        if let Some(partner) = self.lock_known().get(der) {
            return Ok(partner.clone());
        }
        let name = common_name(der).ok_or_else(|| {
            Error::Unauthenticated("the client certificate has no subject CN".into())
        })?;
        let partner = self.by_certificate.get(&name).cloned().ok_or_else(|| {
            Error::Unauthenticated(format!(
                "certificate `{name}` belongs to no configured partner"
            ))
        })?;
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if known.len() < KNOWN_CERTIFICATES {
            known.insert(der.to_vec(), partner.clone());
        }
        Ok(partner)
    }

    fn lock_known(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Vec<u8>, Arc<Partner>>> {
        // The map holds only complete entries: a panic elsewhere leaves it usable.
        self.known.read().unwrap_or_else(|p| p.into_inner())
    }
}

fn header<'a, T>(request: &'a Request<T>, name: &str) -> Result<&'a str> {
    let value = request
        .metadata()
        .get(name)
        .ok_or_else(|| Error::Unauthenticated(format!("missing request metadata {name}")))?;
    let text = value
        .to_str()
        .map_err(|_| Error::Unauthenticated(format!("{name} is not ASCII text")))?;
    if text.trim().is_empty() {
        return Err(Error::Unauthenticated(format!("{name} is empty")));
    }
    Ok(text)
}

fn optional_header<T>(request: &Request<T>, name: &str) -> Result<Option<String>> {
    if request.metadata().get(name).is_none() {
        return Ok(None);
    }
    header(request, name).map(|text| Some(text.trim().to_owned()))
}

fn parse_role(s: &str) -> Option<Role> {
    [
        Role::PartnerSystem,
        Role::FamilyManager,
        Role::Coordinator,
        Role::Auditor,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
}

fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}
