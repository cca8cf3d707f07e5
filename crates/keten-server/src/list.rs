//! `ListFamilies`: the request's filters and page token to the projection's, and back.

use keten_domain::{PartnerId, PersonId};
use keten_projection::{ListFilter, PageRequest};
use keten_proto::convert;
use keten_proto::v1;

use crate::App;
use crate::auth::Caller;
use crate::error::Result;
use crate::need_to_know::by_need;
use crate::wire;

const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1000;

/// Need-to-know applies as in a single read, without the broken glass: a list shows only the
/// families the caller takes part in, and filters on what the caller may see (a warning about
/// data the caller may not read neither shows nor matches).
pub fn list_families(
    app: &App,
    caller: &Caller,
    req: v1::ListFamiliesRequest,
) -> Result<v1::ListFamiliesResponse> {
    let warning = req
        .warning_kind
        .map(|k| convert::enum_from_proto::<v1::WarningKind, _>("warning_kind", k))
        .transpose()?;
    let filter = ListFilter {
        warning: None,
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
    let mut plans = std::collections::HashMap::new();
    let page = app
        .projections
        .list_where(&filter, today, PageRequest { after, size }, |view| {
            if view.state.is_erased() {
                return false;
            }
            let Some(classes) = by_need(&app.directory, caller, view) else {
                return false;
            };
            let redacted = app.redacted_plan(view, classes, today);
            let keep = warning.is_none_or(|k| redacted.plan.warnings.iter().any(|w| w.kind == k));
            if keep {
                plans.insert(view.family.clone(), redacted);
            }
            keep
        });
    let families = page
        .items
        .iter()
        .map(|view| {
            convert::summary_to_proto(&plans[&view.family].plan, view.version.0, view.position.0)
        })
        .collect();
    Ok(v1::ListFamiliesResponse {
        families,
        next_page_token: page.next.map(|f| f.to_string()).unwrap_or_default(),
        position: page.position.map_or(0, |p| p.0),
    })
}
