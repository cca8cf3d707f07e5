//! Crashes, restarts and damage, through the real binary: SIGKILL after acknowledged publishes,
//! graceful SIGTERM, a corrupted segment, and the offline `verify` and `replay` commands.

mod util;

use chrono::NaiveDate;
use keten::client::{Session, publish_request};
use keten::scenario;
use keten_domain::{Event, FamilyId, Role};
use keten_proto::v1::{self, expected_version::Kind};
use util::{Dir, Server, log_dir};

fn today() -> NaiveDate {
    keten_projection::today()
}

fn request(family: &FamilyId, kind: Kind, events: &[Event]) -> v1::PublishRequest {
    publish_request(
        family,
        Some(v1::ExpectedVersion { kind: Some(kind) }),
        events,
    )
}

async fn session(server: &Server, who: &scenario::Who) -> Session {
    server.session(who.partner, who.person, who.role).await
}

/// Plays the scenario for `families`; returns every acknowledged (family, last position).
async fn play(server: &Server, families: &[FamilyId]) -> u64 {
    let mut last = 0;
    for fam in families {
        let mut version = None;
        for step in scenario::steps(fam, today()) {
            let s = session(server, &step.who).await;
            let kind = version.map_or(Kind::NoStream(v1::Empty {}), Kind::Exact);
            let r = s
                .gateway()
                .publish(s.request(request(fam, kind, &step.events)))
                .await
                .unwrap_or_else(|st| panic!("{}: {st:?}", step.label))
                .into_inner();
            version = Some(r.version);
            last = last.max(r.last_position);
        }
    }
    last
}

/// What a coordinator and an auditor see of a family: the plan and the stored events.
async fn observe(server: &Server, fam: &FamilyId) -> (v1::FamilyPlan, Vec<(String, u64, u64)>) {
    let auditor = server
        .session(scenario::MUNICIPALITY, "auditor-1", Role::Auditor)
        .await;
    let plan = auditor
        .coordination()
        .get_family_plan(auditor.request(v1::GetFamilyPlanRequest {
            family_id: fam.to_string(),
            min_position: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    let history = auditor
        .audit()
        .read_family_history(auditor.request(v1::ReadFamilyHistoryRequest {
            family_id: fam.to_string(),
            from_version: 0,
            max_count: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .events
        .into_iter()
        .map(|e| (e.event_id, e.version, e.position))
        .collect();
    (plan, history)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_acknowledged_publishes_loses_nothing() {
    let dir = Dir::new();
    let families: Vec<FamilyId> = (0..3)
        .map(|i| FamilyId::new(format!("gezin-crash-{i}")).unwrap())
        .collect();
    let server = dir.serve();
    let last = play(&server, &families).await;
    // Concurrent publishes in flight at the kill: the acknowledged ones must survive.
    let police = session(&server, &scenario::police_system()).await;
    let contact = Event::PoliceContactRecorded {
        member_id: None,
        occurred_on: today(),
    };
    let acked = futures::future::join_all((0..20).map(|i| {
        let police = police.clone();
        let fam = families[i % families.len()].clone();
        let contact = contact.clone();
        async move {
            police
                .gateway()
                .publish(police.request(request(&fam, Kind::Any(v1::Empty {}), &[contact])))
                .await
                .ok()
                .map(|r| r.into_inner().last_position)
        }
    }))
    .await;
    let acked: Vec<u64> = acked.into_iter().flatten().collect();
    assert_eq!(acked.len(), 20);
    let mut before = Vec::new();
    for fam in &families {
        before.push(observe(&server, fam).await);
    }
    server.kill();

    let server = dir.serve();
    for (fam, seen) in families.iter().zip(&before) {
        let after = observe(&server, fam).await;
        assert_eq!(after.1, seen.1, "every acknowledged event of {fam} is back");
        assert_eq!(after.0, seen.0, "the same plan for {fam}");
    }
    let head = acked.iter().copied().max().unwrap().max(last);
    assert!(before.iter().map(|b| b.1.len() as u64).sum::<u64>() == head + 1);
    drop(server);

    // Offline: the chain verifies and a replay folds every event.
    let out = dir.run_ok(&["verify", dir.data.to_str().unwrap()]);
    assert!(out.contains(&format!("ok: {} events", head + 1)), "{out}");
    let out = dir.run_ok(&["replay", "--data", dir.data.to_str().unwrap()]);
    assert!(
        out.contains(&format!("folded {} events into 3 families", head + 1)),
        "{out}"
    );
    assert!(
        out.contains("the projection service folds the same 3 families"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_graceful_and_a_restart_resumes() {
    let dir = Dir::new();
    let fam = FamilyId::new("gezin-term").unwrap();
    let server = dir.serve();
    play(&server, std::slice::from_ref(&fam)).await;
    let before = observe(&server, &fam).await;
    assert!(server.terminate(), "SIGTERM exits cleanly");
    let server = dir.serve();
    assert_eq!(observe(&server, &fam).await, before);
    assert!(
        server.stderr().contains("snapshot"),
        "the restart resumes from the snapshot written at shutdown: {}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_log_refuses_to_start_and_names_the_place() {
    let dir = Dir::new();
    let fam = FamilyId::new("gezin-damage").unwrap();
    let server = dir.serve();
    play(&server, std::slice::from_ref(&fam)).await;
    // Killed, so that no checkpoint is written: the next open walks every record.
    server.kill();

    let segment = std::fs::read_dir(log_dir(&dir.data))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .min()
        .expect("a segment file");
    let mut bytes = std::fs::read(&segment).unwrap();
    // Inside the first record, with many acknowledged writes after it.
    let at = 128 + 40;
    bytes[at] ^= 0x5a;
    std::fs::write(&segment, &bytes).unwrap();
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();

    let err = match dir.try_serve(&[]) {
        Ok(_) => panic!("keten serve started on a corrupted log"),
        Err(stderr) => stderr,
    };
    assert!(err.contains(&name), "names the file: {err}");
    assert!(err.contains("offset"), "names the offset: {err}");

    let out = dir.run(&["verify", dir.data.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&name) && stderr.contains("offset"),
        "{stderr}"
    );
}

/// The key table's slots (`keten_keys`, `file.rs`): 256 bytes each after a 512-byte header; a
/// record begins with "KETENKTS", and its byte 9 is the id's length, 0 for a key made ahead.
fn key_table_slots(table: &[u8]) -> impl Iterator<Item = &[u8]> {
    table[512..]
        .chunks_exact(256)
        .filter(|s| s.starts_with(b"KETENKTS"))
}

/// A power cut right after a new family's first publish can lose the binding of the family to
/// its key (written without a flush of its own), not the key (made ahead, durable). Simulated
/// here by putting back the key table as it was before that family came, once the server is
/// stopped by `stop`. The restarted server finds the family's key among the leftovers by
/// opening its first event, binds it, zeroes the other leftovers before it takes calls, and
/// serves the family's plan and history as before; the chain verifies.
async fn a_lost_key_binding_is_found_again(stop: impl FnOnce(Server)) -> Dir {
    let dir = Dir::new();
    let table = dir.data.join("keys").join("keys.tbl");
    let (a, b) = (
        FamilyId::new("gezin-voor").unwrap(),
        FamilyId::new("gezin-na").unwrap(),
    );
    let server = dir.serve();
    play(&server, std::slice::from_ref(&a)).await;
    // Keys for families to come were made ahead, durably, when the first family needed one.
    let flushed = std::fs::read(&table).unwrap();
    let pooled = key_table_slots(&flushed).filter(|s| s[9] == 0).count();
    assert!(pooled > 1, "keys made ahead: {pooled}");
    play(&server, std::slice::from_ref(&b)).await;
    // The log's last event is the first family's, so that no check of the log's head at start
    // opens the second family's events by the way.
    let police = session(&server, &scenario::police_system()).await;
    let contact = Event::PoliceContactRecorded {
        member_id: None,
        occurred_on: today(),
    };
    police
        .gateway()
        .publish(police.request(request(&a, Kind::Any(v1::Empty {}), &[contact])))
        .await
        .unwrap();
    let before = observe(&server, &b).await;
    let before_a = observe(&server, &a).await;
    let b_id = format!("family-{b}");
    let bound = std::fs::read(&table).unwrap();
    assert!(bound.windows(b_id.len()).any(|w| w == b_id.as_bytes()));
    stop(server);

    // The disk as a power cut may leave it: the binding of `b` never reached it.
    std::fs::write(&table, &flushed).unwrap();
    let server = dir.serve();
    let after = observe(&server, &b).await;
    assert_eq!(after, before, "the family reads as before the cut");
    assert_eq!(observe(&server, &a).await, before_a);
    let now = std::fs::read(&table).unwrap();
    assert!(
        now.windows(b_id.len()).any(|w| w == b_id.as_bytes()),
        "the binding is written again"
    );
    assert_eq!(
        key_table_slots(&now).filter(|s| s[9] == 0).count(),
        0,
        "the leftover keys are zeroed"
    );
    assert_eq!(
        key_table_slots(&now).count(),
        2,
        "one key per family, no other"
    );
    drop(server);
    let out = dir.run_ok(&["verify", dir.data.to_str().unwrap()]);
    assert!(out.contains("ok: "), "{out}");
    dir
}

/// Killed: the restart folds the family's events from the log, and the first read of them
/// binds its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_binding_lost_in_a_power_cut_is_found_again_on_restart() {
    a_lost_key_binding_is_found_again(Server::kill).await;
}

/// Stopped cleanly: the family comes back from the projection's snapshot, so the restart
/// reads none of its events on its own; the server reads its first event to find its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_binding_lost_is_found_again_for_a_family_from_the_snapshot() {
    let dir = a_lost_key_binding_is_found_again(|server| {
        assert!(server.terminate(), "a clean stop");
    })
    .await;
    let snapshots = std::fs::read_dir(dir.data.join("projection"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(snapshots > 0, "the stop wrote a snapshot");
}
