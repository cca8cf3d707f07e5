//! The report a family can be shown (AVG art. 15, NEN 7513's readable overview): one sentence
//! per access, in plain Dutch or English, written by hand here (no translation crate: the
//! wording is the specification, and the tests hold it word for word).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};
use keten_domain::{DataClass, FamilyId, PartnerKind, Role};

use crate::record::{AccessAction, AccessRecord, AccessResult};

/// The language of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Dutch,
    English,
}

/// The report for one family: a header, one line per access in time order (records logged at
/// the same moment keep the order given), and a footer saying where the family can ask and
/// complain. Records about other families, and searches that name no family, are left out, so
/// a caller that passes too much never shows one family another's accesses.
///
/// Times are shown in Dutch time (CET/CEST). A refusal's reason is not quoted: it is written
/// for the auditor, in the server's words; the family learns that the attempt was refused.
pub fn report<R: AsRef<AccessRecord>>(family: &FamilyId, records: &[R], lang: Language) -> String {
    let mut mine: Vec<&AccessRecord> = records
        .iter()
        .map(AsRef::as_ref)
        .filter(|r| r.family.as_ref() == Some(family))
        .collect();
    mine.sort_by_key(|r| r.at);

    let mut out = String::new();
    out.push_str(&match lang {
        Language::English => format!(
            "Overview of the use of your family's data (family {family}), oldest first. Times are Dutch time."
        ),
        Language::Dutch => format!(
            "Overzicht van het gebruik van de gegevens van uw gezin (gezin {family}), de oudste eerst. Tijden zijn in Nederlandse tijd."
        ),
    });
    out.push_str("\n\n");
    if mine.is_empty() {
        out.push_str(match lang {
            Language::English => "Nobody has used your family's data.",
            Language::Dutch => "Niemand heeft de gegevens van uw gezin gebruikt.",
        });
        out.push('\n');
    }
    for rec in mine {
        out.push_str(&describe(rec, lang));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(match lang {
        Language::English => {
            "Do you have a question about this overview, or do you disagree with one of these accesses? \
             Please contact your municipality; you can also make a complaint there. \
             You may also complain to the Dutch Data Protection Authority (Autoriteit Persoonsgegevens)."
        }
        Language::Dutch => {
            "Heeft u een vraag over dit overzicht, of bent u het niet eens met een van deze inzages? \
             Neem dan contact op met uw gemeente; daar kunt u ook een klacht indienen. \
             U kunt ook een klacht indienen bij de Autoriteit Persoonsgegevens."
        }
    });
    out.push('\n');
    out
}

/// One access as one line of plain words, as it appears in [`report`].
pub fn describe(rec: &AccessRecord, lang: Language) -> String {
    match lang {
        Language::English => english(rec),
        Language::Dutch => dutch(rec),
    }
}

fn english(rec: &AccessRecord) -> String {
    let t = dutch_time(rec.at);
    let when = format!(
        "On {} {} {} at {:02}:{:02}",
        t.day(),
        EN_MONTHS[t.month0() as usize],
        t.year(),
        t.hour(),
        t.minute()
    );
    let who = english_subject(rec);
    let (object, past, infinitive) = match rec.action {
        AccessAction::Create => ("new data about your family", "recorded", "record"),
        AccessAction::Read => ("your family's data", "read", "read"),
        AccessAction::Search => ("the list of families", "searched", "search"),
        AccessAction::Export => ("a copy of your family's data", "exported", "export"),
        AccessAction::Erase => ("your family's data", "erased", "erase"),
        AccessAction::Replay => (
            "the history of your family's data",
            "looked through",
            "look through",
        ),
        AccessAction::Verify => (
            "that the record of your family's data is complete and unchanged",
            "checked",
            "check",
        ),
    };
    let classes = class_list(&rec.classes, Language::English);
    let purpose = rec.purpose.as_deref().map(clean);
    let emergency = rec.emergency.as_deref().map(clean);
    let mut s = match (&rec.result, &emergency) {
        (AccessResult::Granted, None) => {
            let mut s = format!("{when}, {who} {past} {object}{classes}");
            if let Some(p) = &purpose {
                s.push_str(&format!(", for: {p}"));
            }
            s.push('.');
            s
        }
        (AccessResult::Granted, Some(reason)) => {
            let mut s = format!(
                "{when}, {who} {past} {object}{classes} in an emergency, giving as reason: {reason}."
            );
            if let Some(p) = &purpose {
                s.push_str(&format!(" The purpose given was: {p}."));
            }
            s
        }
        (AccessResult::Refused { .. }, None) => {
            let mut s =
                format!("{when}, {who} tried to {infinitive} {object}{classes} and was refused.");
            if let Some(p) = &purpose {
                s.push_str(&format!(" The purpose given was: {p}."));
            }
            s
        }
        (AccessResult::Refused { .. }, Some(reason)) => {
            let mut s = format!(
                "{when}, {who} tried to {infinitive} {object}{classes} in an emergency and was refused. \
                 The reason given for the emergency was: {reason}."
            );
            if let Some(p) = &purpose {
                s.push_str(&format!(" The purpose given was: {p}."));
            }
            s
        }
    };
    if rec.action == AccessAction::Search && rec.result == AccessResult::Granted {
        match rec.families_returned {
            0 => {}
            1 => s.push_str(" Your family was the only result."),
            n => s.push_str(&format!(" Your family was one of the {n} results.")),
        }
    }
    s
}

fn dutch(rec: &AccessRecord) -> String {
    let t = dutch_time(rec.at);
    let when = format!(
        "Op {} {} {} om {:02}:{:02}",
        t.day(),
        NL_MONTHS[t.month0() as usize],
        t.year(),
        t.hour(),
        t.minute()
    );
    let who = dutch_subject(rec);
    // Dutch puts the object before the participle ("de gegevens ... ingezien") and before the
    // infinitive ("geprobeerd de gegevens ... in te zien").
    let (object, participle, infinitive) = match rec.action {
        AccessAction::Create => (
            "nieuwe gegevens over uw gezin",
            "vastgelegd",
            "vast te leggen",
        ),
        AccessAction::Read => ("de gegevens van uw gezin", "ingezien", "in te zien"),
        AccessAction::Search => ("de lijst van gezinnen", "doorzocht", "te doorzoeken"),
        AccessAction::Export => (
            "een kopie van de gegevens van uw gezin",
            "geëxporteerd",
            "te exporteren",
        ),
        AccessAction::Erase => ("de gegevens van uw gezin", "gewist", "te wissen"),
        AccessAction::Replay => (
            "de geschiedenis van de gegevens van uw gezin",
            "doorgenomen",
            "door te nemen",
        ),
        AccessAction::Verify => (
            "de vastlegging van de gegevens van uw gezin op volledigheid en echtheid",
            "gecontroleerd",
            "te controleren",
        ),
    };
    let classes = class_list(&rec.classes, Language::Dutch);
    let purpose = rec.purpose.as_deref().map(clean);
    let emergency = rec.emergency.as_deref().map(clean);
    let mut s = match (&rec.result, &emergency) {
        (AccessResult::Granted, None) => {
            let mut s = format!("{when} heeft {who} {object} {participle}{classes}");
            if let Some(p) = &purpose {
                s.push_str(&format!(", met als doel: {p}"));
            }
            s.push('.');
            s
        }
        (AccessResult::Granted, Some(reason)) => {
            let mut s = format!(
                "{when} heeft {who} in een noodsituatie {object} {participle}{classes}, met als reden: {reason}."
            );
            if let Some(p) = &purpose {
                s.push_str(&format!(" Het opgegeven doel was: {p}."));
            }
            s
        }
        (AccessResult::Refused { .. }, None) => {
            let mut s = format!(
                "{when} heeft {who} geprobeerd {object} {infinitive}{classes}, maar dat werd geweigerd."
            );
            if let Some(p) = &purpose {
                s.push_str(&format!(" Het opgegeven doel was: {p}."));
            }
            s
        }
        (AccessResult::Refused { .. }, Some(reason)) => {
            let mut s = format!(
                "{when} heeft {who} in een noodsituatie geprobeerd {object} {infinitive}{classes}, maar dat werd geweigerd. \
                 De opgegeven reden voor de noodsituatie was: {reason}."
            );
            if let Some(p) = &purpose {
                s.push_str(&format!(" Het opgegeven doel was: {p}."));
            }
            s
        }
    };
    if rec.action == AccessAction::Search && rec.result == AccessResult::Granted {
        match rec.families_returned {
            0 => {}
            1 => s.push_str(" Uw gezin was het enige resultaat."),
            n => s.push_str(&format!(" Uw gezin was een van de {n} resultaten.")),
        }
    }
    s
}

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const NL_MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];

/// Who did it, as the family would recognise it: the organisation by kind and name, and the
/// role when it was a person rather than the organisation's system. The person's id is left
/// out: it is a pseudonym that means nothing to the family (the auditor has it).
fn english_subject(rec: &AccessRecord) -> String {
    let kind = match rec.partner_kind {
        PartnerKind::YouthCare => "the youth care provider",
        PartnerKind::Wsg => "the William Schrikker Groep",
        PartnerKind::Police => "the police",
        PartnerKind::Housing => "the housing corporation",
        PartnerKind::Municipality => "the municipality",
        PartnerKind::School => "the school",
        PartnerKind::Other => "an organisation",
    };
    let org = organisation(kind, &rec.partner_name);
    match rec.role {
        Role::PartnerSystem => org,
        Role::FamilyManager => format!("a family manager of {org}"),
        Role::Coordinator => format!("a coordinator of {org}"),
        Role::Auditor => format!("an auditor of {org}"),
    }
}

fn dutch_subject(rec: &AccessRecord) -> String {
    let kind = match rec.partner_kind {
        PartnerKind::YouthCare => "de jeugdhulpaanbieder",
        PartnerKind::Wsg => "de William Schrikker Groep",
        PartnerKind::Police => "de politie",
        PartnerKind::Housing => "de woningcorporatie",
        PartnerKind::Municipality => "de gemeente",
        PartnerKind::School => "de school",
        PartnerKind::Other => "een organisatie",
    };
    let org = organisation(kind, &rec.partner_name);
    match rec.role {
        Role::PartnerSystem => org,
        Role::FamilyManager => format!("een gezinsmanager van {org}"),
        Role::Coordinator => format!("een coördinator van {org}"),
        Role::Auditor => format!("een controleur van {org}"),
    }
}

/// "the police (Politie Amsterdam)"; the name is left out when empty or already said
/// ("the William Schrikker Groep", not "... (William Schrikker Groep)").
fn organisation(kind: &str, name: &str) -> String {
    let name = clean(name);
    if name.is_empty() || kind.to_lowercase().ends_with(&name.to_lowercase()) {
        kind.to_string()
    } else {
        format!("{kind} ({name})")
    }
}

/// " (plan, police)": the classes in the domain's order, each once; empty when there are none.
fn class_list(classes: &[DataClass], lang: Language) -> String {
    let mut classes = classes.to_vec();
    classes.sort();
    classes.dedup();
    if classes.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = classes.iter().map(|&c| class_name(c, lang)).collect();
    format!(" ({})", names.join(", "))
}

/// A data class in words a family understands.
pub fn class_name(class: DataClass, lang: Language) -> &'static str {
    match (lang, class) {
        (Language::English, DataClass::Identity) => "family members",
        (Language::English, DataClass::Plan) => "plan",
        (Language::English, DataClass::Escalation) => "escalation",
        (Language::English, DataClass::Police) => "police",
        (Language::English, DataClass::Health) => "health",
        (Language::English, DataClass::Housing) => "housing",
        (Language::English, DataClass::School) => "school and work",
        (Language::English, DataClass::Finances) => "finances",
        (Language::English, DataClass::Social) => "social network",
        (Language::Dutch, DataClass::Identity) => "gezinsleden",
        (Language::Dutch, DataClass::Plan) => "plan",
        (Language::Dutch, DataClass::Escalation) => "opschaling",
        (Language::Dutch, DataClass::Police) => "politie",
        (Language::Dutch, DataClass::Health) => "gezondheid",
        (Language::Dutch, DataClass::Housing) => "wonen",
        (Language::Dutch, DataClass::School) => "school en werk",
        (Language::Dutch, DataClass::Finances) => "financiën",
        (Language::Dutch, DataClass::Social) => "sociaal netwerk",
    }
}

/// Free text given by a caller, fit for one line: control characters (a newline would break
/// the one-line-per-access layout) become spaces, runs of spaces one, and a final full stop
/// goes, since the sentence adds its own.
fn clean(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = spaced.split_whitespace().collect();
    words.join(" ").trim_end_matches('.').to_string()
}

/// The wall-clock time in the Netherlands: CET (UTC+1), and CEST (UTC+2) from 01:00 UTC on the
/// last Sunday of March to 01:00 UTC on the last Sunday of October, the EU's rule since 1996.
/// Written by hand to spare a time zone database for one zone; should the EU drop summer time,
/// this is the place to change.
fn dutch_time(at: DateTime<Utc>) -> NaiveDateTime {
    let utc = at.naive_utc();
    let year = utc.year();
    let summer_starts = last_sunday(year, 3)
        .and_hms_opt(1, 0, 0)
        .expect("valid time");
    let summer_ends = last_sunday(year, 10)
        .and_hms_opt(1, 0, 0)
        .expect("valid time");
    let offset = if summer_starts <= utc && utc < summer_ends {
        2
    } else {
        1
    };
    utc + Duration::hours(offset)
}

/// The last Sunday of a month that has 31 days (March, October).
fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let last = NaiveDate::from_ymd_opt(year, month, 31).expect("March and October have 31 days");
    let back = last.weekday().num_days_from_sunday();
    last - Duration::days(i64::from(back))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Weekday};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn dutch_time_follows_the_eu_summer_time_rule() {
        // 2027: summer time from Sunday 28 March to Sunday 31 October, at 01:00 UTC.
        assert_eq!(
            last_sunday(2027, 3),
            NaiveDate::from_ymd_opt(2027, 3, 28).unwrap()
        );
        assert_eq!(
            last_sunday(2027, 10),
            NaiveDate::from_ymd_opt(2027, 10, 31).unwrap()
        );
        assert_eq!(last_sunday(2026, 3).weekday(), Weekday::Sun);
        let local = |t| dutch_time(t).format("%Y-%m-%d %H:%M").to_string();
        assert_eq!(local(utc(2027, 1, 10, 12, 0)), "2027-01-10 13:00");
        assert_eq!(local(utc(2027, 3, 28, 0, 59)), "2027-03-28 01:59");
        assert_eq!(local(utc(2027, 3, 28, 1, 0)), "2027-03-28 03:00");
        assert_eq!(local(utc(2027, 7, 1, 12, 0)), "2027-07-01 14:00");
        assert_eq!(local(utc(2027, 10, 31, 0, 59)), "2027-10-31 02:59");
        assert_eq!(local(utc(2027, 10, 31, 1, 0)), "2027-10-31 02:00");
        // Late in the evening in UTC is the next day in the Netherlands.
        assert_eq!(local(utc(2027, 3, 2, 23, 30)), "2027-03-03 00:30");
    }

    #[test]
    fn free_text_is_kept_to_one_line() {
        assert_eq!(clean("  safety\ncheck\t now. "), "safety check now");
        assert_eq!(clean(""), "");
    }

    #[test]
    fn an_organisation_is_named_once() {
        assert_eq!(
            organisation("the police", "Politie Amsterdam"),
            "the police (Politie Amsterdam)"
        );
        assert_eq!(
            organisation("the William Schrikker Groep", "William Schrikker Groep"),
            "the William Schrikker Groep"
        );
        assert_eq!(organisation("the school", " "), "the school");
    }
}
