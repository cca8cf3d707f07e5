//! The screen's words in Dutch and English. Domain values (rungs, life domains, statuses,
//! classes) are named by their snake_case names, as the API and the markup's data attributes
//! use them; here they get words a person reads.

use keten_domain::plan::WarningKind;

use crate::session::Lang;

/// Dutch or English.
pub fn tr(lang: Lang, nl: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Nl => nl,
        Lang::En => en,
    }
}

/// The snake_case name a domain value has in the API (its serde name).
pub fn snake<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Words for a domain value's snake_case name; a name without words shows as itself.
pub fn label(lang: Lang, name: &str) -> String {
    let (nl, en) = match name {
        "voluntary" => ("vrijwillig", "voluntary"),
        "pressure" => ("drang", "pressure"),
        "coercion" => ("dwang", "coercion"),
        "sanction" => ("sanctie", "sanction"),
        "parenting" => ("opvoeding", "parenting"),
        "safety" => ("veiligheid", "safety"),
        "housing" => ("wonen", "housing"),
        "finances" => ("financiën", "finances"),
        "health" => ("gezondheid", "health"),
        "school_work" => ("school en werk", "school and work"),
        "justice_nuisance" => ("justitie en overlast", "justice and nuisance"),
        "social_network" => ("sociaal netwerk", "social network"),
        "committed" => ("toegezegd", "committed"),
        "started" => ("gestart", "started"),
        "delivered" => ("geleverd", "delivered"),
        "not_delivered" => ("niet geleverd", "not delivered"),
        "open" => ("open", "open"),
        "achieved" => ("bereikt", "achieved"),
        "abandoned" => ("losgelaten", "abandoned"),
        "not_registered" => ("niet aangemeld", "not registered"),
        "intake" => ("intake", "intake"),
        "plan_active" => ("plan actief", "plan active"),
        "closed" => ("gesloten", "closed"),
        "monitoring" => ("monitoring", "monitoring"),
        "finished" => ("afgerond", "finished"),
        "erased" => ("gewist", "erased"),
        "parent" => ("ouder", "parent"),
        "child" => ("kind", "child"),
        "other" => ("ander", "other"),
        "identity" => ("identiteit", "identity"),
        "plan" => ("plan", "plan"),
        "escalation" => ("escalatie", "escalation"),
        "police" => ("politie", "police"),
        "school" => ("school", "school"),
        "social" => ("sociaal", "social"),
        "partner_system" => ("partnersysteem", "partner system"),
        "family_manager" => ("gezinsmanager", "family manager"),
        "coordinator" => ("coördinator", "coordinator"),
        "auditor" => ("auditor", "auditor"),
        "case" => ("casusniveau", "case level"),
        "management" => ("managementniveau", "management level"),
        "administrative" => ("bestuurlijk niveau", "administrative level"),
        "up" => ("op", "up"),
        "down" => ("af", "down"),
        "normal" => ("normaal", "normal"),
        "urgent" => ("urgent", "urgent"),
        "acute" => ("acuut", "acute"),
        "orde_op_zaken" => ("orde op zaken", "put things in order"),
        "vinger_aan_de_pols" => ("vinger aan de pols", "finger on the pulse"),
        "stut_en_steun" => ("stut en steun", "prop and support"),
        "direct_help" => ("direct hulpaanbod", "direct help"),
        "refresh" => ("refresh", "refresh"),
        _ => return name.replace('_', " "),
    };
    tr(lang, nl, en).to_owned()
}

/// Every warning kind, in the domain's order (the filter's choices).
pub const WARNING_KINDS: [WarningKind; 14] = [
    WarningKind::NoFamilyManager,
    WarningKind::FamilyManagerNotFromWsg,
    WarningKind::FamilyNotInformed,
    WarningKind::MatchNotSettled,
    WarningKind::PlanPastHorizon,
    WarningKind::ReviewOverdue,
    WarningKind::MemberWithoutHelp,
    WarningKind::GoalWithoutActions,
    WarningKind::ActionOverdue,
    WarningKind::ActionPastInterventionMaximum,
    WarningKind::InterventionNotEligible,
    WarningKind::MonitoringVisitDue,
    WarningKind::ErasureDeadline,
    WarningKind::DueForDestruction,
];

/// A warning kind's title.
pub fn warning_title(lang: Lang, kind: WarningKind) -> &'static str {
    use WarningKind::*;
    let (nl, en) = match kind {
        NoFamilyManager => ("geen gezinsmanager", "no family manager"),
        FamilyManagerNotFromWsg => ("gezinsmanager niet van WSG", "family manager not from WSG"),
        FamilyNotInformed => ("gezin niet geïnformeerd", "family not informed"),
        MatchNotSettled => ("match niet afgehandeld", "match not settled"),
        PlanPastHorizon => ("plan over de tien maanden", "plan past its ten months"),
        ReviewOverdue => ("evaluatie te laat", "review overdue"),
        MemberWithoutHelp => ("gezinslid zonder hulp", "member without help"),
        GoalWithoutActions => ("doel zonder acties", "goal without actions"),
        ActionOverdue => ("actie over tijd", "action overdue"),
        ActionPastInterventionMaximum => (
            "actie langer dan de interventie toestaat",
            "action past its intervention's maximum",
        ),
        InterventionNotEligible => (
            "interventie past niet bij gezinslid",
            "intervention not eligible",
        ),
        MonitoringVisitDue => ("monitoringsbezoek nodig", "monitoring visit due"),
        ErasureDeadline => ("termijn voor vernietiging", "erasure deadline"),
        DueForDestruction => ("bewaartermijn verstreken", "due for destruction"),
    };
    tr(lang, nl, en)
}

/// What a coordinator does about a warning.
pub fn warning_advice(lang: Lang, kind: WarningKind) -> &'static str {
    use WarningKind::*;
    let (nl, en) = match kind {
        NoFamilyManager => (
            "Laat jeugdzorg of de WSG een gezinsmanager toewijzen.",
            "Have youth care or WSG assign a family manager.",
        ),
        FamilyManagerNotFromWsg => (
            "Draag het gezin over aan de WSG, of leg vast waarom jeugdzorg het houdt.",
            "Hand the family over to WSG, or record why youth care keeps it.",
        ),
        FamilyNotInformed => (
            "Vertel het gezin over de aanpak, of leg vast waarom dat wordt uitgesteld en tot wanneer.",
            "Tell the family about the approach, or record why telling is deferred and until when.",
        ),
        MatchNotSettled => (
            "Controleer dat de gematchte professionals contact hadden en wie de regie heeft.",
            "Check that the matched professionals made contact and who takes the lead.",
        ),
        PlanPastHorizon => (
            "Evalueer het plan: verleng het eenmaal of sluit het.",
            "Review the plan: extend it once or close it.",
        ),
        ReviewOverdue => (
            "Plan de evaluatie met het gezin en de partners.",
            "Schedule the review with the family and the partners.",
        ),
        MemberWithoutHelp => (
            "Spreek een actie af voor dit gezinslid: elk gezinslid krijgt hulp.",
            "Agree an action for this member: every member gets help.",
        ),
        GoalWithoutActions => (
            "Vraag een partner een actie toe te zeggen voor dit doel.",
            "Ask a partner to commit an action to this goal.",
        ),
        ActionOverdue => (
            "Vraag de partner naar de stand; escaleer in de keten als die niet levert.",
            "Ask the partner where it stands; escalate in the chain if it does not deliver.",
        ),
        ActionPastInterventionMaximum => (
            "Beoordeel of de interventie nog past; kies zo nodig een andere.",
            "Judge whether the intervention still fits; choose another if needed.",
        ),
        InterventionNotEligible => (
            "Kies een interventie die bij de leeftijd van het gezinslid past.",
            "Choose an intervention that fits the member's age.",
        ),
        MonitoringVisitDue => (
            "Laat de gezinsmanager op huisbezoek gaan.",
            "Have the family manager visit the family.",
        ),
        ErasureDeadline => (
            "Vernietig het dossier voor de termijn, tenzij een wettelijke grond dat verbiedt.",
            "Erase the file before the deadline, unless a legal ground forbids it.",
        ),
        DueForDestruction => (
            "Vernietig het dossier: de bewaartermijn is voorbij.",
            "Erase the file: its retention period has passed.",
        ),
    };
    tr(lang, nl, en)
}
