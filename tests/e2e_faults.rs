//! Faults through the real binary: `keten serve` with its data directory on a small file system
//! (a 16 MB ext4 image, loop-mounted by the test: root only, and a failure rather than a skip
//! where mounting is refused) that filler files bring to full.

mod util;

use std::path::Path;

use chrono::NaiveDate;
use keten::client::{Session, publish_request};
use keten::scenario;
use keten_domain::{Event, FamilyId, Role};
use keten_proto::v1::{self, expected_version::Kind};
use keten_testkit::SmallFs;
use tonic::Code;
use util::{Dir, Server, log_dir};

fn today() -> NaiveDate {
    keten_projection::today()
}

async fn session(server: &Server, who: &scenario::Who) -> Session {
    server.session(who.partner, who.person, who.role).await
}

/// Publishes the scenario's steps for `fam`; returns the event ids acknowledged, in order.
async fn register(server: &Server, fam: &FamilyId) -> Vec<String> {
    let mut acked = Vec::new();
    let mut version = None;
    for step in scenario::steps(fam, today()) {
        let s = session(server, &step.who).await;
        let kind = version.map_or(Kind::NoStream(v1::Empty {}), Kind::Exact);
        let request = publish_request(
            fam,
            Some(v1::ExpectedVersion { kind: Some(kind) }),
            &step.events,
        );
        let ids: Vec<String> = request.events.iter().map(|e| e.event_id.clone()).collect();
        let r = s
            .gateway()
            .publish(s.request(request))
            .await
            .unwrap_or_else(|st| panic!("{}: {st:?}", step.label))
            .into_inner();
        version = Some(r.version);
        acked.extend(ids);
    }
    acked
}

/// One police contact published to `fam`: its event id when acknowledged, the status when not.
async fn publish_contact(police: &Session, fam: &FamilyId) -> Result<String, tonic::Status> {
    let contact = Event::PoliceContactRecorded {
        member_id: None,
        occurred_on: today(),
    };
    let request = publish_request(
        fam,
        Some(v1::ExpectedVersion {
            kind: Some(Kind::Any(v1::Empty {})),
        }),
        &[contact],
    );
    let id = request.events[0].event_id.clone();
    police
        .gateway()
        .publish(police.request(request))
        .await
        .map(|_| id)
}

/// Publishes until one is refused; returns the status of the refusal.
async fn publish_until_refused(
    police: &Session,
    fam: &FamilyId,
    acked: &mut Vec<String>,
) -> tonic::Status {
    for _ in 0..20_000 {
        match publish_contact(police, fam).await {
            Ok(id) => acked.push(id),
            Err(status) => return status,
        }
    }
    panic!("20,000 publishes and the disk is not full");
}

#[track_caller]
fn assert_storage_full(status: &tonic::Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("storage full") && status.message().contains("no room"),
        "the message names the cause: {}",
        status.message()
    );
}

/// The event ids of `fam`'s stored history, read back through the audit API.
async fn try_history(server: &Server, fam: &FamilyId) -> Result<Vec<String>, tonic::Status> {
    let auditor = server
        .session(scenario::MUNICIPALITY, "auditor-1", Role::Auditor)
        .await;
    Ok(auditor
        .audit()
        .read_family_history(auditor.request(v1::ReadFamilyHistoryRequest {
            family_id: fam.to_string(),
            from_version: 0,
            max_count: 0,
        }))
        .await?
        .into_inner()
        .events
        .into_iter()
        .map(|e| e.event_id)
        .collect())
}

async fn history(server: &Server, fam: &FamilyId) -> Vec<String> {
    try_history(server, fam).await.expect("the history reads")
}

/// A read needs its access record on disk before it is answered: on a full disk it is refused
/// the way a publish is, unless the small record still fits (a failed append is cut back, which
/// may leave room for it); then it answers exactly the acknowledged events.
async fn assert_read_on_full_disk(server: &Server, fam: &FamilyId, acked: &[String]) {
    match try_history(server, fam).await {
        Ok(history) => assert_eq!(history, acked, "every acknowledged event, nothing else"),
        Err(refused) => assert_storage_full(&refused),
    }
}

/// Files anywhere under `dir` whose name ends in `.tmp`: half-made files a failed write left.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".tmp") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// The disk under `keten serve` fills: a publish answers RESOURCE_EXHAUSTED saying the storage
/// is full, and so does a read (its access record must be on disk before it is answered); with
/// space freed every acknowledged event reads back and publishing resumes in the same process. A
/// stop while the disk is full (the final projection snapshot cannot be written) leaves no
/// half-written file and an intact log; a start on the still-full disk refuses the same way;
/// with space, publishing resumes, the server stops cleanly and `keten verify` passes with every
/// event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_publishes_with_resource_exhausted_and_loses_nothing() {
    let fs = SmallFs::ext4(16 << 20);
    let mut dir = Dir::new();
    dir.data = fs.path().join("data");
    let fam = FamilyId::new("gezin-vol").unwrap();

    let server = dir.serve();
    let mut acked = register(&server, &fam).await;
    let police = session(&server, &scenario::police_system()).await;
    let filler = fs.fill("filler", 64 << 10);
    let before = acked.len();
    let refused = publish_until_refused(&police, &fam, &mut acked).await;
    assert_storage_full(&refused);
    assert!(
        acked.len() - before > 20,
        "the last 64 KiB took {} publishes",
        acked.len() - before
    );
    assert_read_on_full_disk(&server, &fam, &acked).await;
    assert_storage_full(&publish_contact(&police, &fam).await.unwrap_err());

    // Space returns: the same server takes reads and publishes again, no restart.
    fs.free(&filler);
    assert_eq!(
        history(&server, &fam).await,
        acked,
        "every acknowledged event, nothing else"
    );
    for _ in 0..5 {
        acked.push(publish_contact(&police, &fam).await.expect("space is back"));
    }
    assert_eq!(history(&server, &fam).await, acked);

    // Full again, and stopped while full.
    let filler = fs.fill("filler", 0);
    assert_storage_full(&publish_until_refused(&police, &fam, &mut acked).await);
    assert_read_on_full_disk(&server, &fam, &acked).await;
    // The final projection snapshot cannot be written: the server warns on its way out and
    // stops cleanly (a snapshot only shortens the next start); the log has closed first, its
    // checkpoint skipped with a warning.
    assert!(
        server.terminate(),
        "a full disk does not make the stop fail"
    );
    assert_eq!(
        leftovers(&dir.data),
        Vec::<String>::new(),
        "a snapshot or segment that could not be written leaves nothing half-made behind"
    );
    let out = dir.run_ok(&["verify", dir.data.to_str().unwrap()]);
    assert!(
        out.contains(&format!("ok: {} events", acked.len())),
        "{out}"
    );

    // A start on the full disk: reads and publishes are refused the same way.
    let server = dir.serve();
    assert_read_on_full_disk(&server, &fam, &acked).await;
    let police = session(&server, &scenario::police_system()).await;
    assert_storage_full(&publish_contact(&police, &fam).await.unwrap_err());
    fs.free(&filler);
    for _ in 0..5 {
        acked.push(publish_contact(&police, &fam).await.expect("space is back"));
    }
    assert_eq!(history(&server, &fam).await, acked);
    assert!(server.terminate(), "with space, the server stops cleanly");
    assert_eq!(leftovers(&dir.data), Vec::<String>::new());
    let out = dir.run_ok(&["verify", dir.data.to_str().unwrap()]);
    assert!(
        out.contains(&format!("ok: {} events", acked.len())),
        "{out}"
    );
    assert!(log_dir(&dir.data).join("index.ckpt").exists());

    // And the snapshot written at that stop is read back by the next start.
    let server = dir.serve();
    assert_eq!(history(&server, &fam).await, acked);
    assert!(
        server.stderr().contains("snapshot"),
        "the restart resumes from the snapshot: {}",
        server.stderr()
    );
    drop(server);
    // The server is gone before the file system is unmounted.
    drop(dir);
    drop(fs);
}
