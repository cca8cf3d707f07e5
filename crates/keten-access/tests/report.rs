//! The family's report, word for word: these strings are the specification of its wording.

use chrono::{DateTime, TimeZone, Utc};
use keten_access::{AccessAction, AccessRecord, AccessResult, Language, describe, report};
use keten_domain::{DataClass, FamilyId, PartnerId, PartnerKind, PersonId, Role};

fn fam(id: &str) -> FamilyId {
    FamilyId::new(id).unwrap()
}

fn utc(mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, mo, d, h, mi, 0).unwrap()
}

struct Who {
    person: &'static str,
    role: Role,
    partner: &'static str,
    kind: PartnerKind,
    name: &'static str,
}

const POLICE: Who = Who {
    person: "agent-17",
    role: Role::PartnerSystem,
    partner: "politie-ams",
    kind: PartnerKind::Police,
    name: "Politie Amsterdam",
};
const FAMILY_MANAGER: Who = Who {
    person: "fm-anna",
    role: Role::FamilyManager,
    partner: "wsg",
    kind: PartnerKind::Wsg,
    name: "William Schrikker Groep",
};
const COORDINATOR: Who = Who {
    person: "coord-3",
    role: Role::Coordinator,
    partner: "gem-ams",
    kind: PartnerKind::Municipality,
    name: "Gemeente Amsterdam",
};
const SCHOOL: Who = Who {
    person: "teacher-9",
    role: Role::PartnerSystem,
    partner: "obs-zuid",
    kind: PartnerKind::School,
    name: "OBS De Zuidpool",
};
const HOUSING: Who = Who {
    person: "consulent-2",
    role: Role::PartnerSystem,
    partner: "ymere",
    kind: PartnerKind::Housing,
    name: "Ymere",
};
const AUDITOR: Who = Who {
    person: "audit-1",
    role: Role::Auditor,
    partner: "gem-ams",
    kind: PartnerKind::Municipality,
    name: "Gemeente Amsterdam",
};

fn rec(
    who: &Who,
    family: Option<&str>,
    at: DateTime<Utc>,
    action: AccessAction,
    classes: &[DataClass],
    purpose: Option<&str>,
) -> AccessRecord {
    AccessRecord {
        at,
        person: PersonId::new(who.person).unwrap(),
        role: who.role,
        partner: PartnerId::new(who.partner).unwrap(),
        partner_kind: who.kind,
        partner_name: who.name.into(),
        family: family.map(fam),
        classes: classes.to_vec(),
        action,
        method: "keten.v1.Query/GetPlan".into(),
        purpose: purpose.map(Into::into),
        result: AccessResult::Granted,
        emergency: None,
        families_returned: 0,
    }
}

/// A family's year: written out of order, with one record of another family and one search
/// that names no family, neither of which may appear.
fn scenario() -> Vec<AccessRecord> {
    use AccessAction::*;
    use DataClass::*;
    let f = Some("fam-7");
    let mut search = rec(
        &COORDINATOR,
        f,
        utc(3, 1, 8, 0),
        Search,
        &[Plan],
        Some("weekly review of open cases"),
    );
    search.families_returned = 12;
    let mut refused = rec(
        &SCHOOL,
        f,
        utc(3, 4, 13, 45),
        Read,
        &[Police, School],
        Some("absence from school"),
    );
    refused.result = AccessResult::Refused {
        reason: "the school may not read police data".into(),
    };
    let mut emergency = rec(
        &HOUSING,
        f,
        utc(4, 2, 22, 10),
        Read,
        &[Housing, Health],
        Some("preventing the eviction"),
    );
    emergency.emergency = Some("eviction tomorrow morning,\nchildren at home.".into());
    let mut other_family = rec(
        &POLICE,
        Some("fam-8"),
        utc(3, 3, 9, 16),
        Read,
        &[Plan],
        None,
    );
    other_family.purpose = Some("must not appear".into());
    let mut unnamed_search = rec(&POLICE, None, utc(3, 3, 9, 17), Search, &[Plan], None);
    unnamed_search.families_returned = 40;
    vec![
        rec(
            &POLICE,
            f,
            utc(3, 3, 9, 15),
            Read,
            &[Police, Plan],
            Some("safety check after a report of domestic violence"),
        ),
        other_family,
        search,
        rec(
            &FAMILY_MANAGER,
            f,
            utc(3, 2, 23, 30),
            Create,
            &[Plan, Health],
            Some("the plan for the coming months"),
        ),
        unnamed_search,
        refused,
        emergency,
        rec(
            &COORDINATOR,
            f,
            utc(6, 15, 11, 0),
            Export,
            &[Identity, Plan, Escalation],
            Some("hand-over to Veilig Thuis"),
        ),
        rec(
            &AUDITOR,
            f,
            utc(9, 1, 14, 0),
            Replay,
            &[Plan],
            Some("complaint of the family"),
        ),
        rec(&AUDITOR, f, utc(9, 1, 14, 5), Verify, &[], None),
        rec(
            &COORDINATOR,
            f,
            utc(11, 30, 10, 0),
            Erase,
            &DataClass::ALL,
            Some("erasure request of the parent (AVG art. 17)."),
        ),
    ]
}

#[test]
fn the_english_report_for_a_scenario() {
    let expected = "\
Overview of the use of your family's data (family fam-7), oldest first. Times are Dutch time.

On 1 March 2027 at 09:00, a coordinator of the municipality (Gemeente Amsterdam) searched the list of families (plan), for: weekly review of open cases. Your family was one of the 12 results.
On 3 March 2027 at 00:30, a family manager of the William Schrikker Groep recorded new data about your family (plan, health), for: the plan for the coming months.
On 3 March 2027 at 10:15, the police (Politie Amsterdam) read your family's data (plan, police), for: safety check after a report of domestic violence.
On 4 March 2027 at 14:45, the school (OBS De Zuidpool) tried to read your family's data (police, school and work) and was refused. The purpose given was: absence from school.
On 3 April 2027 at 00:10, the housing corporation (Ymere) read your family's data (health, housing) in an emergency, giving as reason: eviction tomorrow morning, children at home. The purpose given was: preventing the eviction.
On 15 June 2027 at 13:00, a coordinator of the municipality (Gemeente Amsterdam) exported a copy of your family's data (family members, plan, escalation), for: hand-over to Veilig Thuis.
On 1 September 2027 at 16:00, an auditor of the municipality (Gemeente Amsterdam) looked through the history of your family's data (plan), for: complaint of the family.
On 1 September 2027 at 16:05, an auditor of the municipality (Gemeente Amsterdam) checked that the record of your family's data is complete and unchanged.
On 30 November 2027 at 11:00, a coordinator of the municipality (Gemeente Amsterdam) erased your family's data (family members, plan, escalation, police, health, housing, school and work, finances, social network), for: erasure request of the parent (AVG art. 17).

Do you have a question about this overview, or do you disagree with one of these accesses? Please contact your municipality; you can also make a complaint there. You may also complain to the Dutch Data Protection Authority (Autoriteit Persoonsgegevens).
";
    assert_eq!(
        report(&fam("fam-7"), &scenario(), Language::English),
        expected
    );
}

#[test]
fn the_dutch_report_for_a_scenario() {
    let expected = "\
Overzicht van het gebruik van de gegevens van uw gezin (gezin fam-7), de oudste eerst. Tijden zijn in Nederlandse tijd.

Op 1 maart 2027 om 09:00 heeft een coördinator van de gemeente (Gemeente Amsterdam) de lijst van gezinnen doorzocht (plan), met als doel: weekly review of open cases. Uw gezin was een van de 12 resultaten.
Op 3 maart 2027 om 00:30 heeft een gezinsmanager van de William Schrikker Groep nieuwe gegevens over uw gezin vastgelegd (plan, gezondheid), met als doel: the plan for the coming months.
Op 3 maart 2027 om 10:15 heeft de politie (Politie Amsterdam) de gegevens van uw gezin ingezien (plan, politie), met als doel: safety check after a report of domestic violence.
Op 4 maart 2027 om 14:45 heeft de school (OBS De Zuidpool) geprobeerd de gegevens van uw gezin in te zien (politie, school en werk), maar dat werd geweigerd. Het opgegeven doel was: absence from school.
Op 3 april 2027 om 00:10 heeft de woningcorporatie (Ymere) in een noodsituatie de gegevens van uw gezin ingezien (gezondheid, wonen), met als reden: eviction tomorrow morning, children at home. Het opgegeven doel was: preventing the eviction.
Op 15 juni 2027 om 13:00 heeft een coördinator van de gemeente (Gemeente Amsterdam) een kopie van de gegevens van uw gezin geëxporteerd (gezinsleden, plan, opschaling), met als doel: hand-over to Veilig Thuis.
Op 1 september 2027 om 16:00 heeft een controleur van de gemeente (Gemeente Amsterdam) de geschiedenis van de gegevens van uw gezin doorgenomen (plan), met als doel: complaint of the family.
Op 1 september 2027 om 16:05 heeft een controleur van de gemeente (Gemeente Amsterdam) de vastlegging van de gegevens van uw gezin op volledigheid en echtheid gecontroleerd.
Op 30 november 2027 om 11:00 heeft een coördinator van de gemeente (Gemeente Amsterdam) de gegevens van uw gezin gewist (gezinsleden, plan, opschaling, politie, gezondheid, wonen, school en werk, financiën, sociaal netwerk), met als doel: erasure request of the parent (AVG art. 17).

Heeft u een vraag over dit overzicht, of bent u het niet eens met een van deze inzages? Neem dan contact op met uw gemeente; daar kunt u ook een klacht indienen. U kunt ook een klacht indienen bij de Autoriteit Persoonsgegevens.
";
    assert_eq!(
        report(&fam("fam-7"), &scenario(), Language::Dutch),
        expected
    );
}

#[test]
fn a_family_nobody_touched_gets_a_report_that_says_so() {
    assert_eq!(
        report(&fam("fam-9"), &scenario(), Language::English),
        "\
Overview of the use of your family's data (family fam-9), oldest first. Times are Dutch time.

Nobody has used your family's data.

Do you have a question about this overview, or do you disagree with one of these accesses? Please contact your municipality; you can also make a complaint there. You may also complain to the Dutch Data Protection Authority (Autoriteit Persoonsgegevens).
"
    );
    let dutch = report(&fam("fam-9"), &[] as &[AccessRecord], Language::Dutch);
    assert!(dutch.contains("\n\nNiemand heeft de gegevens van uw gezin gebruikt.\n\n"));
}

/// Every action, granted or refused, with and without emergency and purpose, in both
/// languages: one line, one sentence of its own, saying what the family needs to know.
#[test]
fn every_action_and_result_produces_its_own_sentence() {
    let results = [
        AccessResult::Granted,
        AccessResult::Refused {
            reason: "not a partner of this family".into(),
        },
    ];
    for lang in [Language::English, Language::Dutch] {
        let mut seen = std::collections::BTreeSet::new();
        for action in AccessAction::ALL {
            for result in &results {
                for emergency in [None, Some("child missing")] {
                    for purpose in [None, Some("the review")] {
                        let mut r = rec(
                            &COORDINATOR,
                            Some("fam-7"),
                            utc(3, 3, 9, 15),
                            action,
                            &[DataClass::Plan],
                            purpose,
                        );
                        r.result = result.clone();
                        r.emergency = emergency.map(Into::into);
                        r.families_returned = 2;
                        let s = describe(&r, lang);
                        let context =
                            format!("{lang:?} {action} {result:?} {emergency:?} {purpose:?}: {s}");
                        let (start, refused, urgent, aim) = match lang {
                            Language::English => (
                                "On 3 March 2027 at 10:15, a coordinator",
                                "was refused",
                                "in an emergency",
                                "the review.",
                            ),
                            Language::Dutch => (
                                "Op 3 maart 2027 om 10:15 heeft een coördinator",
                                "werd geweigerd",
                                "in een noodsituatie",
                                "the review.",
                            ),
                        };
                        assert!(s.starts_with(start), "{context}");
                        assert!(s.ends_with('.') && !s.contains('\n'), "{context}");
                        assert_eq!(
                            s.contains(refused),
                            result != &AccessResult::Granted,
                            "{context}"
                        );
                        assert_eq!(s.contains(urgent), emergency.is_some(), "{context}");
                        assert_eq!(
                            s.contains("child missing"),
                            emergency.is_some(),
                            "{context}"
                        );
                        assert_eq!(s.contains(aim), purpose.is_some(), "{context}");
                        assert!(
                            !s.contains("not a partner"),
                            "the refusal's reason is for the auditor: {context}"
                        );
                        assert!(
                            seen.insert(s.clone()),
                            "two combinations read the same: {context}"
                        );
                    }
                }
            }
        }
        assert_eq!(seen.len(), AccessAction::ALL.len() * 2 * 2 * 2);
    }
}

#[test]
fn every_partner_kind_and_role_is_named_in_both_languages() {
    for kind in PartnerKind::ALL {
        for role in [
            Role::PartnerSystem,
            Role::FamilyManager,
            Role::Coordinator,
            Role::Auditor,
        ] {
            let who = Who {
                person: "p-1",
                role,
                partner: "org-1",
                kind,
                name: "Org",
            };
            let r = rec(
                &who,
                Some("fam-7"),
                utc(3, 3, 9, 15),
                AccessAction::Read,
                &[],
                None,
            );
            for lang in [Language::English, Language::Dutch] {
                let s = describe(&r, lang);
                assert!(s.contains("(Org)"), "{s}");
                assert!(!s.contains("_"), "no snake_case names in plain words: {s}");
            }
        }
    }
}
