//! The coordinated plan as a coordinator reads it: plain text from the wire's `FamilyPlan`.

use std::fmt::Write;

use keten_proto::v1;

fn date(d: &Option<v1::Date>) -> String {
    match d {
        Some(d) => format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
        None => "-".into(),
    }
}

/// `WARNING_KIND_GOAL_WITHOUT_ACTIONS` → `goal without actions`.
fn words(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', " ")
}

macro_rules! enum_words {
    ($fn:ident, $ty:ty, $prefix:literal) => {
        pub fn $fn(v: i32) -> String {
            <$ty>::try_from(v)
                .map(|e| words(e.as_str_name(), $prefix))
                .unwrap_or_else(|_| format!("unknown ({v})"))
        }
    };
}

enum_words!(warning_kind, v1::WarningKind, "WARNING_KIND_");
enum_words!(phase, v1::Phase, "PHASE_");
enum_words!(family_type, v1::FamilyType, "FAMILY_TYPE_");
enum_words!(urgency, v1::Urgency, "URGENCY_");
enum_words!(rung, v1::Rung, "RUNG_");
enum_words!(life_domain, v1::LifeDomain, "LIFE_DOMAIN_");
enum_words!(action_status, v1::ActionStatus, "ACTION_STATUS_");
enum_words!(goal_status, v1::GoalStatus, "GOAL_STATUS_");
enum_words!(chain_level, v1::ChainLevel, "CHAIN_LEVEL_");
enum_words!(member_role, v1::MemberRole, "MEMBER_ROLE_");
enum_words!(lead_basis, v1::LeadBasis, "LEAD_BASIS_");
enum_words!(data_class, v1::DataClass, "DATA_CLASS_");

/// The plan in plain text, section by section.
pub fn plan_text(p: &v1::FamilyPlan) -> String {
    let mut o = String::new();
    let _ = write_plan(&mut o, p);
    o
}

fn write_plan(o: &mut String, p: &v1::FamilyPlan) -> std::fmt::Result {
    writeln!(
        o,
        "Family {} — as of {}",
        p.family_id.as_deref().unwrap_or("?"),
        date(&p.as_of)
    )?;
    writeln!(
        o,
        "  phase: {}; type: {} ({} urgency)",
        phase(p.phase),
        family_type(p.family_type),
        urgency(p.urgency)
    )?;
    if let Some(s) = &p.strategy {
        writeln!(o, "  strategy: {s}")?;
    }
    if let Some(fm) = &p.family_manager {
        writeln!(
            o,
            "  family manager: {} ({}), since {}",
            fm.manager,
            fm.partner_id,
            date(&fm.assigned_on)
        )?;
    }
    if let Some(l) = &p.lead {
        writeln!(o, "  lead: {} ({})", l.partner_id, lead_basis(l.basis))?;
    }
    if p.agreed_on.is_some() {
        writeln!(
            o,
            "  plan agreed {}, horizon {}, next review {}",
            date(&p.agreed_on),
            date(&p.horizon),
            date(&p.next_review)
        )?;
    }
    writeln!(o, "  members:")?;
    for m in &p.members {
        writeln!(
            o,
            "    {} {} born {}{}, actions: {}",
            m.member_id,
            member_role(m.role),
            m.birth_year,
            if m.present { "" } else { " (left)" },
            if m.action_ids.is_empty() {
                "none".to_string()
            } else {
                m.action_ids.join(", ")
            }
        )?;
    }
    writeln!(o, "  partners:")?;
    for pa in &p.partners {
        writeln!(
            o,
            "    {} — {} (joined {})",
            pa.partner_id,
            pa.display_name,
            date(&pa.joined_on)
        )?;
    }
    if !p.goals.is_empty() {
        writeln!(o, "  goals:")?;
        for d in &p.goals {
            for g in &d.goals {
                writeln!(
                    o,
                    "    [{}] {} — {} (target {}, {})",
                    life_domain(d.life_domain),
                    g.goal_id,
                    g.description,
                    date(&g.target_date),
                    goal_status(g.status)
                )?;
            }
        }
    }
    if !p.actions.is_empty() {
        writeln!(o, "  actions:")?;
        for pa in &p.actions {
            for a in &pa.actions {
                writeln!(
                    o,
                    "    {} by {}: {} ({} → {}, {}{})",
                    a.action_id,
                    pa.partner_id,
                    a.description,
                    date(&a.start_on),
                    date(&a.expected_end),
                    action_status(a.status),
                    a.finished_on
                        .as_ref()
                        .map(|d| format!(" on {}", date(&Some(*d))))
                        .unwrap_or_default()
                )?;
            }
        }
    }
    if let Some(e) = &p.escalation {
        write!(o, "  escalation ladder: {}", rung(e.rung))?;
        if let Some(pr) = &e.proposal {
            write!(
                o,
                "; proposed: {} ({} agreement(s) not kept)",
                rung(pr.to),
                pr.reasons.len()
            )?;
        }
        writeln!(o)?;
    }
    for c in &p.open_chain_escalations {
        writeln!(
            o,
            "  chain escalation: {} on {} at {} level (raised {}, this level since {})",
            c.partner_id,
            c.action_id,
            chain_level(c.level),
            date(&c.raised_on),
            date(&c.level_since)
        )?;
    }
    if p.warnings.is_empty() {
        writeln!(o, "  warnings: none")?;
    } else {
        writeln!(o, "  warnings:")?;
        for w in &p.warnings {
            writeln!(
                o,
                "    ! {} (since {}): {}",
                warning_kind(w.kind),
                date(&w.since),
                w.message
            )?;
        }
    }
    if let Some(out) = &p.outcomes {
        let n = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
        writeln!(
            o,
            "  outcomes: police contacts {} in the six months before the plan, {} since; goals achieved {}/{}; chain escalations {}",
            n(out.police_contacts_before),
            n(out.police_contacts_after),
            out.goals_achieved.map_or(0, |s| s.count),
            out.goals_achieved.map_or(0, |s| s.of),
            n(out.chain_escalations)
        )?;
    }
    if !p.omitted_classes.is_empty() {
        let classes: Vec<String> = p.omitted_classes.iter().map(|c| data_class(*c)).collect();
        writeln!(
            o,
            "  left out for this reader (need-to-know): {}",
            classes.join(", ")
        )?;
    }
    Ok(())
}
