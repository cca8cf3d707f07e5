//! Test kit: families whose every event passes the domain's `handle` (validate, then apply)
//! with the actor who would publish it, appended to a real `FileLog` through `stored::encode`.
#![allow(dead_code)]
// Families vary by `i % n`; written alike everywhere, it reads as one table.
#![allow(clippy::manual_is_multiple_of)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use keten_domain::*;
use keten_log::{
    AppendResult, Durability, EventId, EventStore, ExpectedVersion, FileLog, FileLogOptions,
    StreamVersion,
};
use keten_projection::stored::{self, EventMetadata};

#[track_caller]
pub fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

/// The "today" every event is validated on.
pub fn today() -> NaiveDate {
    d("2026-03-01")
}

pub fn fid(i: usize) -> FamilyId {
    FamilyId::new(format!("fam-{i:05}")).unwrap()
}

pub fn person(s: &str) -> PersonId {
    PersonId::new(s).unwrap()
}

pub fn pid(s: &str) -> PartnerId {
    PartnerId::new(s).unwrap()
}

pub fn actor(p: &str, role: Role, partner: &str, kind: PartnerKind) -> Actor {
    Actor {
        person: person(p),
        role,
        partner: pid(partner),
        partner_kind: kind,
    }
}

pub fn coordinator() -> Actor {
    actor(
        "coord-1",
        Role::Coordinator,
        "gemeente",
        PartnerKind::Municipality,
    )
}

pub fn system(partner: &str, kind: PartnerKind) -> Actor {
    actor(
        &format!("sys-{partner}"),
        Role::PartnerSystem,
        partner,
        kind,
    )
}

pub fn manager_of(i: usize) -> &'static str {
    if i % 2 == 0 { "fm-anna" } else { "fm-bert" }
}

pub fn fm(i: usize) -> Actor {
    actor(
        manager_of(i),
        Role::FamilyManager,
        "yc",
        PartnerKind::YouthCare,
    )
}

pub async fn open_log(dir: &Path) -> Arc<FileLog> {
    let options = FileLogOptions {
        durability: Durability::NoSyncUnsafe,
        ..FileLogOptions::default()
    };
    Arc::new(FileLog::open(dir, options).await.expect("open log"))
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub fn event_id() -> EventId {
    EventId(uuid::Uuid::from_u128(
        0x6b65_7465_6e00_0000_0000_0000_0000_0000 | NEXT_ID.fetch_add(1, Ordering::Relaxed) as u128,
    ))
}

/// One append's events, each with the actor publishing it.
pub type Step = Vec<(Actor, Event)>;

/// A family as its publishers see it: its state, to validate the next event against.
pub struct Fam {
    pub id: FamilyId,
    pub state: FamilyState,
    pub version: Option<StreamVersion>,
}

impl Fam {
    pub fn new(id: FamilyId) -> Self {
        Self {
            id,
            state: FamilyState::default(),
            version: None,
        }
    }

    /// Validates and applies `events` in order, then appends them in one append.
    #[track_caller]
    pub fn publish<'a>(
        &mut self,
        store: &'a dyn EventStore,
        events: Vec<(Actor, Event)>,
    ) -> impl Future<Output = AppendResult> + 'a {
        let proposed: Vec<_> = events
            .iter()
            .map(|(actor, event)| {
                if let Err(r) = handle(&mut self.state, event, actor, today()) {
                    panic!("{} by {} rejected: {r}", event.type_name(), actor.person);
                }
                stored::encode(event_id(), event, &EventMetadata::from_actor(actor))
            })
            .collect();
        let expected = match self.version {
            None => ExpectedVersion::NoStream,
            Some(v) => ExpectedVersion::Exact(v),
        };
        let stream = stored::stream_id(&self.id);
        let n = proposed.len() as u64;
        self.version = Some(StreamVersion(self.version.map_or(0, |v| v.0 + 1) + n - 1));
        async move {
            store
                .append(&stream, expected, proposed)
                .await
                .expect("append")
        }
    }
}

/// The history of family `i`: registration, members, partners joining (the police only for
/// some), the match settled, a family manager (not for every family), the family informed, a
/// plan with a goal and an action, and for some an escalation. Every step as its publisher
/// would publish it.
pub fn history(i: usize) -> Vec<Vec<(Actor, Event)>> {
    let id = fid(i);
    let coord = coordinator();
    let yc = system("yc", PartnerKind::YouthCare);
    let pol = system("pol", PartnerKind::Police);
    let mut steps = vec![vec![
        (
            coord.clone(),
            Event::FamilyRegistered {
                family_id: id,
                family_type: FamilyType::StutEnSteun,
                urgency: Urgency::Normal,
                occurred_on: d("2026-01-05"),
            },
        ),
        (
            coord.clone(),
            Event::MemberAdded {
                member_id: MemberId::new("p1").unwrap(),
                role: MemberRole::Parent,
                birth_year: 1984,
                flags: MemberFlags::default(),
                occurred_on: d("2026-01-05"),
            },
        ),
    ]];
    steps.push(vec![(
        yc.clone(),
        Event::PartnerJoined {
            partner_id: pid("yc"),
            partner_kind: PartnerKind::YouthCare,
            display_name: "Jeugdzorg".into(),
            occurred_on: d("2026-01-06"),
        },
    )]);
    let police = i % 3 != 0;
    if police {
        steps.push(vec![(
            pol.clone(),
            Event::PartnerJoined {
                partner_id: pid("pol"),
                partner_kind: PartnerKind::Police,
                display_name: "Politie".into(),
                occurred_on: d("2026-01-08"),
            },
        )]);
        steps.push(vec![(
            pol.clone(),
            Event::PoliceContactRecorded {
                member_id: None,
                occurred_on: d("2025-12-01"),
            },
        )]);
        if i % 7 != 1 {
            steps.push(vec![(
                pol.clone(),
                Event::MatchSettled {
                    lead_partner_id: pid("yc"),
                    contacted_on: d("2026-01-11"),
                    occurred_on: d("2026-01-12"),
                },
            )]);
        }
    }
    if i % 5 == 2 {
        // No family manager: the NoFamilyManager warning.
        return steps;
    }
    steps.push(vec![(
        yc.clone(),
        Event::FamilyManagerAssigned {
            manager: person(manager_of(i)),
            partner_id: pid("yc"),
            reason: None,
            occurred_on: d("2026-01-13"),
        },
    )]);
    let fm = fm(i);
    steps.push(vec![
        (
            fm.clone(),
            Event::FamilyInformed {
                occurred_on: d("2026-01-15"),
            },
        ),
        (
            fm.clone(),
            Event::PlanAgreed {
                agreed_on: d("2026-01-20"),
                review_moments: vec![d("2026-04-20")],
                occurred_on: d("2026-01-20"),
            },
        ),
    ]);
    steps.push(vec![(
        fm.clone(),
        Event::GoalSet {
            goal_id: GoalId::new("g1").unwrap(),
            life_domain: LifeDomain::Parenting,
            description: "parenting in order".into(),
            target_date: None,
            occurred_on: d("2026-01-20"),
        },
    )]);
    steps.push(vec![(
        yc.clone(),
        Event::ActionCommitted {
            action_id: ActionId::new("a1").unwrap(),
            goal_id: GoalId::new("g1").unwrap(),
            partner_id: pid("yc"),
            member_ids: vec![MemberId::new("p1").unwrap()],
            intervention: None,
            description: "parenting support".into(),
            start_on: d("2026-01-25"),
            expected_end: d("2026-06-25"),
            occurred_on: d("2026-01-22"),
        },
    )]);
    if i % 4 == 1 {
        steps.push(vec![(
            fm.clone(),
            Event::EscalationRaised {
                to: Rung::Pressure,
                by: person(manager_of(i)),
                reason: "the family does not keep appointments".into(),
                legal_basis: "Jeugdwet art. 2.4".into(),
                occurred_on: d("2026-02-01"),
            },
        )]);
    }
    steps
}

/// More events for family `i` that are always valid once its history is in: home visits by its
/// family manager (or police contacts when it has none).
pub fn more(i: usize, n: usize) -> Vec<(Actor, Event)> {
    (0..n)
        .map(|k| {
            if i % 5 == 2 {
                (
                    coordinator(),
                    Event::NuisanceReported {
                        description: format!("report {k}"),
                        occurred_on: d("2026-02-10"),
                    },
                )
            } else {
                (
                    fm(i),
                    Event::HomeVisitRecorded {
                        occurred_on: d("2026-02-10"),
                    },
                )
            }
        })
        .collect()
}

/// Appends the histories of families `0..n`, interleaved step by step (round robin), as
/// partners publishing at the same time would.
pub async fn publish_families(store: &dyn EventStore, n: usize) -> Vec<Fam> {
    let mut fams: Vec<Fam> = (0..n).map(|i| Fam::new(fid(i))).collect();
    let mut histories: Vec<std::vec::IntoIter<Vec<(Actor, Event)>>> =
        (0..n).map(|i| history(i).into_iter()).collect();
    loop {
        let mut any = false;
        for (fam, h) in fams.iter_mut().zip(histories.iter_mut()) {
            if let Some(step) = h.next() {
                fam.publish(store, step).await;
                any = true;
            }
        }
        if !any {
            return fams;
        }
    }
}

/// Waits until `cond` holds, checking whenever `tick` fires, failing after `deadline`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
    }
}
