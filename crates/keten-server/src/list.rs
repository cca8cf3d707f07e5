//! `ListFamilies`: the request's filters and page token to the projection's, and back.

use keten_domain::{PartnerId, PersonId};
use keten_projection::{ListFilter, PageRequest};
use keten_proto::convert;
use keten_proto::v1;

use crate::App;
use crate::error::Result;
use crate::wire;

const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1000;

pub fn list_families(app: &App, req: v1::ListFamiliesRequest) -> Result<v1::ListFamiliesResponse> {
    let filter = ListFilter {
        warning: req
            .warning_kind
            .map(|k| convert::enum_from_proto::<v1::WarningKind, _>("warning_kind", k))
            .transpose()?,
        rung: req
            .rung
            .map(|r| convert::enum_from_proto::<v1::Rung, _>("rung", r))
            .transpose()?,
        partner: req
            .partner_id
            .map(|p| convert::id_from_proto::<PartnerId>("partner_id", p))
            .transpose()?,
        family_manager: req
            .family_manager
            .map(|p| convert::id_from_proto::<PersonId>("family_manager", p))
            .transpose()?,
    };
    let after = if req.page_token.is_empty() {
        None
    } else {
        Some(wire::family_id(&req.page_token, "page_token")?)
    };
    let size = match req.page_size as usize {
        0 => PAGE_DEFAULT,
        n => n.min(PAGE_MAX),
    };
    let today = crate::today();
    let page = app
        .projections
        .list(&filter, today, PageRequest { after, size });
    let families = page
        .items
        .iter()
        .map(|view| convert::summary_to_proto(&view.plan(today), view.version.0, view.position.0))
        .collect();
    Ok(v1::ListFamiliesResponse {
        families,
        next_page_token: page.next.map(|f| f.to_string()).unwrap_or_default(),
        position: page.position.map_or(0, |p| p.0),
    })
}
