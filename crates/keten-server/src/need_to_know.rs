//! Need-to-know: whether a caller may see a family at all, and which classes of its data.
//!
//! Deny by default. The answer depends on the caller's role:
//! - `partner_system`: while its partner takes part in the family (from `PartnerJoined` to
//!   `PartnerLeft`). After the partner left it sees nothing of the family: its part in the case
//!   ended, and with it its need to know (AVG data minimisation); what it published is in its
//!   own file. It is still told of an erasure (AVG art. 19), through its subscription.
//! - `family_manager`: the families this person manages for this partner.
//! - `coordinator`: the families in its municipality, that is, registered by a partner of the
//!   coordinator's own municipality (the partners' `municipality` in the configuration).
//! - `auditor`: every family, every class; every auditor read is logged like any other.
//!
//! Within a family the partner's kind decides the classes ([`keten_domain::classes::readable`]);
//! the rest is left out of the answer and named as left out, whether or not the family has such
//! data, so that nothing leaks its existence.
//!
//! A person outside need-to-know may still read one family by giving a reason
//! (`x-keten-emergency`, "break the glass"): allowed with the classes of its kind, logged as
//! emergency access, and shown to auditors.
//!
//! A family the caller may not see is answered exactly as an unknown family is (NOT_FOUND with
//! the same message), so that a refusal does not tell that the family exists.

use keten_domain::Role;
use keten_domain::classes::{ClassSet, readable};
use keten_projection::FamilyView;

use crate::auth::{Caller, Directory};

/// What a caller may see of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sight {
    /// These classes; `emergency` when only a broken glass allows it.
    Granted { classes: ClassSet, emergency: bool },
    /// Nothing: the family is answered as unknown.
    Denied,
}

impl Sight {
    pub fn classes(self) -> ClassSet {
        match self {
            Sight::Granted { classes, .. } => classes,
            Sight::Denied => ClassSet::EMPTY,
        }
    }

    pub fn is_denied(self) -> bool {
        self == Sight::Denied
    }
}

/// What `caller` may see of the family in `view` (`None`: the family is unknown). A caller with
/// an emergency reason is let in where need-to-know would refuse it.
pub fn sight(directory: &Directory, caller: &Caller, view: Option<&FamilyView>) -> Sight {
    let Some(view) = view else {
        return Sight::Denied;
    };
    match by_need(directory, caller, view) {
        Some(classes) => Sight::Granted {
            classes,
            emergency: false,
        },
        None if caller.emergency.is_some() => Sight::Granted {
            classes: readable(caller.actor.partner_kind),
            emergency: true,
        },
        None => Sight::Denied,
    }
}

/// Need-to-know alone, without the broken glass: what lists and watches apply.
pub fn by_need(directory: &Directory, caller: &Caller, view: &FamilyView) -> Option<ClassSet> {
    let state = &view.state;
    let actor = &caller.actor;
    let kind_classes = readable(actor.partner_kind);
    let allowed = match actor.role {
        Role::Auditor => return Some(ClassSet::ALL),
        Role::PartnerSystem => state.active_partner(&actor.partner).is_some(),
        Role::FamilyManager => state
            .family_manager
            .as_ref()
            .is_some_and(|m| m.manager == actor.person && m.partner_id == actor.partner),
        Role::Coordinator => caller.partner.municipality.as_ref().is_some_and(|own| {
            view.registered_by
                .as_ref()
                .and_then(|p| directory.by_id(p))
                .and_then(|partner| partner.municipality.as_ref())
                == Some(own)
        }),
    };
    allowed.then_some(kind_classes)
}

/// Whether the caller's partner is among those told of the family's erasure.
pub fn told_of_erasure(state: &keten_domain::FamilyState, caller: &Caller) -> bool {
    state
        .privacy
        .erased
        .as_ref()
        .is_some_and(|e| e.notified.contains(&caller.actor.partner))
}

impl crate::App {
    /// What `caller` may see of the family in `view`.
    pub fn sight(&self, caller: &Caller, view: Option<&FamilyView>) -> Sight {
        match view {
            // Of an erased family there is nothing to see; those who took part (and auditors)
            // are told that it was erased, see [`crate::App::visible`].
            Some(v) if v.state.is_erased() => {
                let took_part = by_need(&self.directory, caller, v).is_some()
                    || told_of_erasure(&v.state, caller);
                if took_part {
                    Sight::Granted {
                        classes: ClassSet::EMPTY,
                        emergency: false,
                    }
                } else {
                    Sight::Denied
                }
            }
            view => sight(&self.directory, caller, view),
        }
    }

    /// The view if the caller may see it; otherwise the same NOT_FOUND an unknown family gets,
    /// or, to those who took part in an erased family, that it was erased.
    pub fn visible(
        &self,
        family: &keten_domain::FamilyId,
        view: Option<std::sync::Arc<FamilyView>>,
        sight: Sight,
    ) -> crate::Result<std::sync::Arc<FamilyView>> {
        match view {
            Some(view) if !sight.is_denied() => {
                match crate::erasure::erased_answer(family, &view.state) {
                    Some(erased) => Err(erased),
                    None => Ok(view),
                }
            }
            _ => Err(crate::Error::NotFound(family.to_string())),
        }
    }

    /// The plan on `today` with what the caller may not see left out, and named as left out.
    pub fn plan_to_proto(
        &self,
        view: &FamilyView,
        sight: Sight,
        today: chrono::NaiveDate,
    ) -> keten_proto::v1::FamilyPlan {
        keten_proto::convert::redacted_to_proto(&self.redacted_plan(view, sight.classes(), today))
    }

    /// The plan on `today`, under the server's retention policy, with only `classes` in it.
    pub fn redacted_plan(
        &self,
        view: &FamilyView,
        classes: ClassSet,
        today: chrono::NaiveDate,
    ) -> keten_domain::Redacted {
        let plan = keten_domain::plan::coordinated_plan_with(&view.state, today, &self.policy);
        keten_domain::classes::redact(plan, classes)
    }
}
