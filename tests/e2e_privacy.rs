//! Need-to-know, the access log and erasure, end to end: the real `keten serve`, real sockets,
//! mutual TLS, on the embedded log and on JetStream.

mod util;

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use futures::StreamExt;
use keten::client::{Session, publish_request as request};
use keten::scenario::{self, gid, mid, pid};
use keten_domain::{
    ClassSet, DataClass, Event, FamilyId, HoldId, LegalGround, LifeDomain, PartnerKind, Role,
    readable,
};
use keten_proto::v1::{self, expected_version::Kind};
use keten_testkit::NatsServer;
use tonic::Code;
use util::{Dir, Server};

/// Words that appear only in the family's own data: none of them may be found on disk once the
/// family is erased, nor in the log's files at any time.
const HEALTH_MARKER: &str = "Zeldzaamwoord-gezondheid-7f3a";
const SCHOOL_MARKER: &str = "Zeldzaamwoord-school-91c2";
const FINANCES_MARKER: &str = "Zeldzaamwoord-schulden-44d0";
const SOCIAL_MARKER: &str = "Zeldzaamwoord-netwerk-0be5";
const MARKERS: [&str; 4] = [HEALTH_MARKER, SCHOOL_MARKER, FINANCES_MARKER, SOCIAL_MARKER];

const SCHOOL: &str = "school";

fn today() -> NaiveDate {
    keten_projection::today()
}

fn family(name: &str) -> FamilyId {
    FamilyId::new(name).unwrap()
}

fn any() -> Option<v1::ExpectedVersion> {
    Some(v1::ExpectedVersion {
        kind: Some(Kind::Any(v1::Empty {})),
    })
}

async fn session(server: &Server, partner: &str, person: &str, role: Role) -> Session {
    server.session(partner, person, role).await
}

async fn who(server: &Server, w: &scenario::Who) -> Session {
    server.session(w.partner, w.person, w.role).await
}

async fn auditor(server: &Server) -> Session {
    session(server, scenario::MUNICIPALITY, "auditor-1", Role::Auditor).await
}

async fn publish(s: &Session, fam: &FamilyId, events: &[Event]) -> v1::PublishResponse {
    s.gateway()
        .publish(s.request(request(fam, any(), events)))
        .await
        .unwrap_or_else(|e| panic!("publish by {} ({:?}): {e}", s.person, s.role))
        .into_inner()
}

/// The demo's family, plus the data that puts something in every class: goals in the health,
/// school, finances and social domains, and WSG taking part. Returns the last position.
async fn family_with_every_class(server: &Server, fam: &FamilyId) -> u64 {
    for step in scenario::steps(fam, today()) {
        let s = who(server, &step.who).await;
        publish(&s, fam, &step.events).await;
    }
    let day = today();
    let wsg = session(server, scenario::WSG, "sys-wsg", Role::PartnerSystem).await;
    publish(
        &wsg,
        fam,
        &[Event::PartnerJoined {
            partner_id: pid(scenario::WSG),
            partner_kind: PartnerKind::Wsg,
            display_name: "William Schrikker Groep".into(),
            occurred_on: day,
        }],
    )
    .await;
    let fm = who(server, &scenario::family_manager()).await;
    let goal = |id: &str, domain, description: &str| Event::GoalSet {
        goal_id: gid(id),
        life_domain: domain,
        description: description.into(),
        target_date: None,
        occurred_on: day,
    };
    publish(
        &fm,
        fam,
        &[
            goal("g-gezondheid", LifeDomain::Health, HEALTH_MARKER),
            goal("g-school", LifeDomain::SchoolWork, SCHOOL_MARKER),
            goal("g-schulden", LifeDomain::Finances, FINANCES_MARKER),
            goal("g-netwerk", LifeDomain::SocialNetwork, SOCIAL_MARKER),
        ],
    )
    .await
    .last_position
}

async fn join_school(server: &Server, fam: &FamilyId) -> u64 {
    let school = session(server, SCHOOL, "sys-school", Role::PartnerSystem).await;
    publish(
        &school,
        fam,
        &[Event::PartnerJoined {
            partner_id: pid(SCHOOL),
            partner_kind: PartnerKind::School,
            display_name: "Basisschool De Regenboog".into(),
            occurred_on: today(),
        }],
    )
    .await
    .last_position
}

async fn get_plan(
    s: &Session,
    fam: &FamilyId,
    min: Option<u64>,
) -> Result<v1::GetFamilyPlanResponse, tonic::Status> {
    s.coordination()
        .get_family_plan(s.request(v1::GetFamilyPlanRequest {
            family_id: fam.to_string(),
            min_position: min,
        }))
        .await
        .map(|r| r.into_inner())
}

/// Whether the plan shows data of `class`.
fn shows(plan: &v1::FamilyPlan, class: DataClass) -> bool {
    let domain = |d: LifeDomain| {
        plan.goals
            .iter()
            .any(|g| g.life_domain == v1::LifeDomain::from(d) as i32 && !g.goals.is_empty())
    };
    match class {
        DataClass::Identity => !plan.members.is_empty(),
        DataClass::Plan => domain(LifeDomain::Parenting),
        DataClass::Escalation => plan.escalation.is_some(),
        DataClass::Police => domain(LifeDomain::JusticeNuisance),
        DataClass::Health => domain(LifeDomain::Health),
        DataClass::Housing => domain(LifeDomain::Housing),
        DataClass::School => domain(LifeDomain::SchoolWork),
        DataClass::Finances => domain(LifeDomain::Finances),
        DataClass::Social => domain(LifeDomain::SocialNetwork),
    }
}

fn omitted(plan: &v1::FamilyPlan) -> ClassSet {
    plan.omitted_classes
        .iter()
        .map(|c| {
            let c = v1::DataClass::try_from(*c).expect("a data class");
            DataClass::try_from(c).expect("specified")
        })
        .collect()
}

async fn access_log(auditor: &Session, fam: Option<&FamilyId>) -> Vec<v1::AccessRecord> {
    auditor
        .audit()
        .read_access_log(auditor.request(v1::ReadAccessLogRequest {
            family_id: fam.map(|f| f.to_string()),
            emergency_only: false,
            from_position: 0,
            max_count: 10_000,
        }))
        .await
        .expect("read the access log")
        .into_inner()
        .records
}

/// The status an unknown family gets, with its id taken out, to compare refusals with.
fn as_unknown(status: &tonic::Status, fam: &FamilyId) -> (Code, String) {
    (
        status.code(),
        status.message().replace(fam.as_str(), "<family>"),
    )
}

/// For every partner kind and role: the classes it sees are exactly its kind's, the others are
/// named as left out, and a list shows only the families it takes part in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partner_kind_and_role_sees_exactly_its_classes() {
    let dir = Dir::new();
    let server = dir.serve();
    let fam = family("gezin-klassen");
    family_with_every_class(&server, &fam).await;
    let last = join_school(&server, &fam).await;

    let cases = [
        (
            scenario::YOUTH_CARE,
            "sys-jeugdzorg",
            Role::PartnerSystem,
            PartnerKind::YouthCare,
        ),
        (
            scenario::YOUTH_CARE,
            scenario::FAMILY_MANAGER,
            Role::FamilyManager,
            PartnerKind::YouthCare,
        ),
        (
            scenario::WSG,
            "sys-wsg",
            Role::PartnerSystem,
            PartnerKind::Wsg,
        ),
        (
            scenario::POLICE,
            "sys-politie",
            Role::PartnerSystem,
            PartnerKind::Police,
        ),
        (
            scenario::HOUSING,
            "sys-woningcorporatie",
            Role::PartnerSystem,
            PartnerKind::Housing,
        ),
        (
            SCHOOL,
            "sys-school",
            Role::PartnerSystem,
            PartnerKind::School,
        ),
        (
            scenario::MUNICIPALITY,
            scenario::COORDINATOR,
            Role::Coordinator,
            PartnerKind::Municipality,
        ),
    ];
    for (partner, person, role, kind) in cases {
        let s = session(&server, partner, person, role).await;
        let plan = get_plan(&s, &fam, Some(last))
            .await
            .unwrap_or_else(|e| panic!("{partner} as {role}: {e}"))
            .plan
            .expect("a plan");
        let may = readable(kind);
        for class in DataClass::ALL {
            assert_eq!(
                shows(&plan, class),
                may.contains(class),
                "{partner} as {role}: class {class}"
            );
        }
        assert_eq!(omitted(&plan), may.complement(), "{partner} as {role}");
        // Nothing of a hidden class leaks through the goals' text either.
        let text = format!("{plan:?}");
        for (marker, class) in [
            (HEALTH_MARKER, DataClass::Health),
            (SCHOOL_MARKER, DataClass::School),
            (FINANCES_MARKER, DataClass::Finances),
            (SOCIAL_MARKER, DataClass::Social),
        ] {
            assert_eq!(
                text.contains(marker),
                may.contains(class),
                "{partner}: {marker}"
            );
        }
    }
    // The auditor sees every class.
    let a = auditor(&server).await;
    let plan = get_plan(&a, &fam, Some(last)).await.unwrap().plan.unwrap();
    assert!(DataClass::ALL.iter().all(|c| shows(&plan, *c)));
    assert!(plan.omitted_classes.is_empty());

    // A family manager of another person sees nothing of this family.
    let other_fm = session(
        &server,
        scenario::YOUTH_CARE,
        "fm-bert",
        Role::FamilyManager,
    )
    .await;
    let refused = get_plan(&other_fm, &fam, None).await.unwrap_err();
    let unknown = get_plan(&other_fm, &family("gezin-bestaat-niet"), None)
        .await
        .unwrap_err();
    assert_eq!(
        as_unknown(&refused, &fam),
        as_unknown(&unknown, &family("gezin-bestaat-niet"))
    );
}

/// A partner sees a family only while it takes part: one that never joined, and one that left,
/// get exactly the answer an unknown family gets, in single reads, lists and watches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_case_a_family_is_indistinguishable_from_an_unknown_one() {
    let dir = Dir::new();
    let server = dir.serve();
    let fam = family("gezin-buiten");
    let last = family_with_every_class(&server, &fam).await;
    let unknown_fam = family("gezin-onbekend");

    // The school never joined.
    let school = session(&server, SCHOOL, "sys-school", Role::PartnerSystem).await;
    let never = get_plan(&school, &fam, Some(last)).await.unwrap_err();
    let unknown = get_plan(&school, &unknown_fam, None).await.unwrap_err();
    assert_eq!(never.code(), Code::NotFound);
    assert_eq!(as_unknown(&never, &fam), as_unknown(&unknown, &unknown_fam));
    let watch = school
        .coordination()
        .watch_family_plan(school.request(v1::WatchFamilyPlanRequest {
            family_id: fam.to_string(),
        }))
        .await
        .expect_err("no watch for a family the school is not in");
    assert_eq!(watch.code(), Code::NotFound);
    let list = school
        .coordination()
        .list_families(school.request(v1::ListFamiliesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(list.families.is_empty(), "{:?}", list.families);

    // Housing takes part, watches, then leaves: the watch ends, and it sees nothing after.
    let housing = who(&server, &scenario::housing_system()).await;
    let list = housing
        .coordination()
        .list_families(housing.request(v1::ListFamiliesRequest {
            min_position: Some(last),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.families.len(), 1);
    let mut watch = housing
        .coordination()
        .watch_family_plan(housing.request(v1::WatchFamilyPlanRequest {
            family_id: fam.to_string(),
        }))
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.expect("the plan now").expect("ok");
    assert!(first.plan.is_some());
    let left = publish(
        &housing,
        &fam,
        &[Event::PartnerLeft {
            partner_id: pid(scenario::HOUSING),
            reason: "the dwelling was found elsewhere".into(),
            occurred_on: today(),
        }],
    )
    .await;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(item) = watch.next().await {
            item.expect("no error before the end");
        }
    })
    .await;
    assert!(ended.is_ok(), "the watch ends when the partner leaves");
    let after = get_plan(&housing, &fam, Some(left.last_position))
        .await
        .unwrap_err();
    assert_eq!(as_unknown(&after, &fam), as_unknown(&unknown, &unknown_fam));
    let list = housing
        .coordination()
        .list_families(housing.request(v1::ListFamiliesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(list.families.is_empty());
}

/// Every access writes exactly one access record with who, for whom, what, why and the result;
/// a refused attempt is recorded too; emergency access is allowed with a reason, recorded as
/// such and shown to the auditor; the family's report says it in plain words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_access_is_recorded_once_and_reported_in_plain_words() {
    let dir = Dir::new();
    let server = dir.serve();
    let fam = family("gezin-toegang");
    let last = family_with_every_class(&server, &fam).await;
    let a = auditor(&server).await;

    let before = access_log(&a, Some(&fam)).await;
    // Every publish so far is one create record.
    let creates = before.iter().filter(|r| r.action == "create").count();
    assert!(before.iter().all(|r| r.granted));
    assert_eq!(creates, scenario::steps(&fam, today()).len() + 2);

    let police = who(&server, &scenario::police_system())
        .await
        .with_purpose("weekly safety meeting");
    get_plan(&police, &fam, Some(last)).await.unwrap();
    let school = session(&server, SCHOOL, "sys-school", Role::PartnerSystem).await;
    get_plan(&school, &fam, None).await.unwrap_err();
    let doctor = session(&server, SCHOOL, "doctor-jansen", Role::PartnerSystem)
        .await
        .with_emergency("a child is in danger at school now");
    let emergency_plan = get_plan(&doctor, &fam, None).await.unwrap().plan.unwrap();
    assert_eq!(
        omitted(&emergency_plan),
        readable(PartnerKind::School).complement()
    );

    // A read of the access log is recorded before it reads: the first read's own record is
    // its last.
    assert_eq!(before.last().unwrap().method, "Audit.ReadAccessLog");
    let after = access_log(&a, Some(&fam)).await;
    // The police read, the refused read, the emergency read, and this read of the access log:
    // one record each.
    let new: Vec<_> = after[before.len()..].to_vec();
    assert_eq!(new.len(), 4, "{new:#?}");
    let read = &new[0];
    assert_eq!(read.person, "sys-politie");
    assert_eq!(read.role, v1::Role::PartnerSystem as i32);
    assert_eq!(read.partner_id, scenario::POLICE);
    assert_eq!(read.partner_name, "Politie Amsterdam");
    assert_eq!(read.family_id.as_deref(), Some(fam.as_str()));
    assert_eq!(read.action, "read");
    assert_eq!(read.method, "Coordination.GetFamilyPlan");
    assert_eq!(read.purpose.as_deref(), Some("weekly safety meeting"));
    assert!(read.granted);
    let police_classes: Vec<String> = readable(PartnerKind::Police)
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(read.classes, police_classes);
    let refused = &new[1];
    assert_eq!(refused.person, "sys-school");
    assert!(!refused.granted);
    assert!(refused.refusal.is_some());
    assert!(refused.classes.is_empty());
    let glass = &new[2];
    assert_eq!(glass.person, "doctor-jansen");
    assert!(glass.granted);
    assert_eq!(
        glass.emergency.as_deref(),
        Some("a child is in danger at school now")
    );
    assert_eq!(new[3].method, "Audit.ReadAccessLog");

    // The auditor's view of emergency access.
    let emergencies = a
        .audit()
        .read_access_log(a.request(v1::ReadAccessLogRequest {
            emergency_only: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(emergencies.len(), 1);
    assert_eq!(emergencies[0].person, "doctor-jansen");

    // The report the family could be shown.
    let report = |language| {
        let a = a.clone();
        let fam = fam.clone();
        async move {
            a.audit()
                .access_report(a.request(v1::AccessReportRequest {
                    family_id: fam.to_string(),
                    language: language as i32,
                }))
                .await
                .unwrap()
                .into_inner()
                .text
        }
    };
    let english = report(v1::ReportLanguage::English).await;
    assert!(
        english.contains("the police (Politie Amsterdam) read your family's data (family members, plan, escalation, police, housing), for: weekly safety meeting"),
        "{english}"
    );
    assert!(
        english.contains("in an emergency, giving as reason: a child is in danger at school now"),
        "{english}"
    );
    let dutch = report(v1::ReportLanguage::Dutch).await;
    assert!(
        dutch.contains("heeft de politie (Politie Amsterdam) de gegevens van uw gezin ingezien"),
        "{dutch}"
    );
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The files under `dir` that hold any of the family's marker words.
fn files_with_markers(dir: &Path) -> Vec<(std::path::PathBuf, &'static str)> {
    // The markers share a prefix: one scan for it, then the whole words where it is found.
    const PREFIX: &[u8] = b"Zeldzaamwoord-";
    let mut found = Vec::new();
    for file in files_under(dir) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let mut at = 0;
        while let Some(i) = bytes[at..].iter().position(|&b| b == PREFIX[0]) {
            let start = at + i;
            for m in MARKERS {
                if bytes[start..].starts_with(m.as_bytes()) {
                    found.push((file.clone(), m));
                }
            }
            at = start + 1;
        }
    }
    found
}

/// The erasure's course, shared by both backends: request, a legal hold refuses it, the hold
/// lifted, erased; then what each party can still see, and the notice to every partner.
async fn erase_end_to_end(server: &Server, fam: &FamilyId) {
    let last = family_with_every_class(server, fam).await;
    let municipality = session(
        server,
        scenario::MUNICIPALITY,
        "sys-gemeente",
        Role::PartnerSystem,
    )
    .await;
    let coordinator = who(server, &scenario::coordinator()).await;
    let youth_care = who(server, &scenario::youth_care_system()).await;
    let housing = who(server, &scenario::housing_system()).await;
    let a = auditor(server).await;

    // Housing leaves before the erasure; it received the family's data, so it is told too.
    publish(
        &housing,
        fam,
        &[Event::PartnerLeft {
            partner_id: pid(scenario::HOUSING),
            reason: "done".into(),
            occurred_on: today(),
        }],
    )
    .await;
    let mut notices = housing
        .gateway()
        .subscribe(housing.request(v1::SubscribeRequest {
            after_position: Some(last),
        }))
        .await
        .unwrap()
        .into_inner();

    let requested = publish(
        &municipality,
        fam,
        &[Event::ErasureRequested {
            requester: mid("p1"),
            occurred_on: today(),
        }],
    )
    .await;
    let plan = get_plan(&coordinator, fam, Some(requested.last_position))
        .await
        .unwrap()
        .plan
        .unwrap();
    assert!(plan.erasure.is_some(), "the pending request shows");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.kind == v1::WarningKind::ErasureDeadline as i32),
        "the deadline is a warning to coordinators"
    );
    publish(
        &coordinator,
        fam,
        &[Event::LegalHoldPlaced {
            hold_id: HoldId::new("hold-1").unwrap(),
            ground: LegalGround::CriminalInvestigation,
            reason: "an investigation into the threat of 3 March".into(),
            occurred_on: today(),
        }],
    )
    .await;
    let erase = |id: uuid::Uuid| {
        let coordinator = coordinator.clone();
        let fam = fam.clone();
        async move {
            coordinator
                .coordination()
                .erase_family(coordinator.request(v1::EraseFamilyRequest {
                    family_id: fam.to_string(),
                    event_id: id.to_string(),
                }))
                .await
        }
    };
    // An erasure is not something a partner publishes: the key must go with it.
    let published = coordinator
        .gateway()
        .publish(coordinator.request(request(
            fam,
            any(),
            &[Event::FamilyErased {
                ground: keten_domain::ErasureGround::Request {
                    requested_on: today(),
                    requester_role: keten_domain::MemberRole::Parent,
                },
                notified: Vec::new(),
                occurred_on: today(),
            }],
        )))
        .await
        .unwrap_err();
    assert_eq!(published.code(), Code::InvalidArgument, "{published:?}");
    let held = erase(uuid::Uuid::new_v4()).await.unwrap_err();
    assert_eq!(held.code(), Code::FailedPrecondition, "{held:?}");
    assert!(held.message().contains("hold-1"), "{}", held.message());
    assert!(
        get_plan(&youth_care, fam, None).await.is_ok(),
        "nothing erased"
    );
    publish(
        &coordinator,
        fam,
        &[Event::LegalHoldLifted {
            hold_id: HoldId::new("hold-1").unwrap(),
            reason: "the investigation was closed".into(),
            occurred_on: today(),
        }],
    )
    .await;
    let id = uuid::Uuid::new_v4();
    let erased = erase(id).await.expect("erased").into_inner();
    // A retry is answered as the first call.
    assert_eq!(
        erase(id).await.expect("retry").into_inner().position,
        erased.position
    );

    // Those who took part hear that it was erased, when and on what ground; others that it is
    // unknown.
    let gone = get_plan(&youth_care, fam, Some(erased.position))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert!(gone.message().contains("erased"), "{}", gone.message());
    assert!(gone.message().contains("request"), "{}", gone.message());
    let school = session(server, SCHOOL, "sys-school", Role::PartnerSystem).await;
    let stranger = get_plan(&school, fam, None).await.unwrap_err();
    assert!(
        !stranger.message().contains("erased"),
        "{}",
        stranger.message()
    );

    // The auditor still sees what was stored in clear, nothing of the content.
    let history = a
        .audit()
        .read_family_history(a.request(v1::ReadFamilyHistoryRequest {
            family_id: fam.to_string(),
            from_version: 0,
            max_count: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .events;
    let (last_event, earlier) = history.split_last().unwrap();
    assert!(earlier.iter().all(|e| e.erased && e.event.is_none()));
    assert_eq!(last_event.event_type, "FamilyErased");
    assert!(!last_event.erased);
    let verified = a
        .audit()
        .verify_log(a.request(v1::VerifyLogRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(verified.intact, "{verified:?}");

    // Housing, which left, is told of the erasure (AVG art. 19).
    let told = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(n) = notices.next().await {
            let n = n.expect("notification");
            if n.family_id == fam.as_str() && n.event_type == "FamilyErased" {
                return n;
            }
        }
        panic!("the subscription ended");
    })
    .await
    .expect("housing is told of the erasure");
    assert_eq!(told.position, erased.position);

    // The access log keeps the erasure.
    let records = access_log(&a, Some(fam)).await;
    assert!(records.iter().any(|r| r.action == "erase" && r.granted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_end_to_end_on_the_embedded_log() {
    let dir = Dir::new();
    let server = dir.serve();
    let fam = family("gezin-wissen");
    erase_end_to_end(&server, &fam).await;
    // No plaintext of the family anywhere under the data directory, and the log still verifies.
    assert_eq!(files_with_markers(&dir.data), vec![]);
    assert!(server.terminate(), "a clean stop");
    assert_eq!(
        files_with_markers(&dir.data),
        vec![],
        "nor after the final snapshot"
    );
    dir.run_ok(&["verify", dir.data.to_str().unwrap()]);
    // The ciphertext is still in the log's files: the events were not removed.
    let log_bytes: usize = files_under(&util::log_dir(&dir.data))
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len() as usize)
        .sum();
    assert!(log_bytes > 10_000);

    // A restart keeps it erased, also when the projection is folded from the log again (the
    // family's earlier events no longer open; its erasure tells who took part).
    std::fs::remove_dir_all(dir.data.join("projection")).unwrap();
    let server = dir.serve();
    let youth_care = who(&server, &scenario::youth_care_system()).await;
    let gone = get_plan(&youth_care, &fam, None).await.unwrap_err();
    assert!(gone.message().contains("erased"), "{}", gone.message());
}

/// The log's files never hold a family's payload in clear, erased or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_holds_families_only_as_ciphertext() {
    let dir = Dir::new();
    let server = dir.serve();
    let fam = family("gezin-versleuteld");
    let last = family_with_every_class(&server, &fam).await;
    let fm = who(&server, &scenario::family_manager()).await;
    let plan = get_plan(&fm, &fam, Some(last)).await.unwrap().plan.unwrap();
    assert!(
        format!("{plan:?}").contains(HEALTH_MARKER),
        "readable through the API"
    );
    assert_eq!(files_with_markers(&util::log_dir(&dir.data)), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_end_to_end_on_jetstream() {
    let nats = NatsServer::start();
    let dir = Dir::new();
    let nats_args = [
        "--store",
        &nats.url(),
        "--nats-monitor",
        &nats.monitor_url(),
    ];
    let server = dir.serve_with(&nats_args);
    let fam = family("gezin-wissen-nats");
    erase_end_to_end(&server, &fam).await;
    assert!(server.terminate(), "a clean stop");
    // Neither the JetStream store (log, access log, key bucket) nor the data directory holds
    // anything of the family in clear.
    assert_eq!(files_with_markers(nats.dir()), vec![]);
    assert_eq!(files_with_markers(&dir.data), vec![]);
    dir.run_ok(&["verify", &nats.url()]);
    let server = dir.serve_with(&nats_args);
    let youth_care = who(&server, &scenario::youth_care_system()).await;
    let gone = get_plan(&youth_care, &fam, None).await.unwrap_err();
    assert!(gone.message().contains("erased"), "{}", gone.message());
}
