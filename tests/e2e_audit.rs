//! The auditor's trust, through the real binary over mutual TLS: signed checkpoints, inclusion
//! and consistency proofs, `keten audit-export` and the offline `keten audit-verify`, tampered
//! bundles and a log rewritten behind an auditor's back.

mod util;

use chrono::NaiveDate;
use keten::client::{Session, publish_request};
use keten::scenario;
use keten_domain::{Event, FamilyId, Role};
use keten_proof::{Bundle, SignedCheckpoint, VerifyingKey};
use keten_proto::convert;
use keten_proto::v1::{self, expected_version::Kind};
use util::{Dir, Server};

fn today() -> NaiveDate {
    keten_projection::today()
}

/// A test directory whose configuration has the checkpoint signer `keten dev-pki` wrote.
fn audit_dir() -> Dir {
    let dir = Dir::new();
    let mut text = std::fs::read_to_string(&dir.config).unwrap();
    // An hour: the tests ask for every checkpoint they use, so the timer never races them.
    text.push_str(
        "\n[proofs]\nsigning_key = \"pki/checkpoint.key\"\npublic_key = \"pki/checkpoint.pub\"\n\
         origin = \"keten.test/log\"\ncheckpoint_interval_secs = 3600\n",
    );
    std::fs::write(&dir.config, text).unwrap();
    dir
}

fn public_key(dir: &Dir) -> VerifyingKey {
    keten_proof::load_verifying_key(&dir.pki.join("checkpoint.pub")).unwrap()
}

fn request(family: &FamilyId, kind: Kind, events: &[Event]) -> v1::PublishRequest {
    publish_request(
        family,
        Some(v1::ExpectedVersion { kind: Some(kind) }),
        events,
    )
}

/// Plays the demo's course for each family, interleaved so that one family's events are not
/// contiguous in the log.
async fn play(server: &Server, families: &[FamilyId]) {
    let courses: Vec<_> = families
        .iter()
        .map(|f| scenario::steps(f, today()))
        .collect();
    let mut versions = vec![None; families.len()];
    let longest = courses.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for (f, fam) in families.iter().enumerate() {
            let Some(step) = courses[f].get(i) else {
                continue;
            };
            let s = server
                .session(step.who.partner, step.who.person, step.who.role)
                .await;
            let kind = versions[f].map_or(Kind::NoStream(v1::Empty {}), Kind::Exact);
            let r = s
                .gateway()
                .publish(s.request(request(fam, kind, &step.events)))
                .await
                .unwrap_or_else(|st| panic!("{}: {st:?}", step.label))
                .into_inner();
            versions[f] = Some(r.version);
        }
    }
}

async fn auditor(server: &Server) -> Session {
    server
        .session(scenario::MUNICIPALITY, "auditor-1", Role::Auditor)
        .await
}

async fn checkpoint(auditor: &Session, fresh: bool) -> SignedCheckpoint {
    let note = auditor
        .audit()
        .get_checkpoint(auditor.request(v1::GetCheckpointRequest { fresh }))
        .await
        .unwrap()
        .into_inner()
        .checkpoint
        .unwrap()
        .note;
    SignedCheckpoint::from_note(&note).unwrap()
}

async fn consistency(auditor: &Session, old: u64) -> (Vec<[u8; 32]>, SignedCheckpoint) {
    let r = auditor
        .audit()
        .prove_consistency(auditor.request(v1::ProveConsistencyRequest {
            old_size: old,
            new_size: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    let proof = r
        .proof
        .iter()
        .map(|h| h.as_slice().try_into().unwrap())
        .collect();
    let new = SignedCheckpoint::from_note(&r.checkpoint.unwrap().note).unwrap();
    (proof, new)
}

fn export(dir: &Dir, server: &Server, family: &FamilyId, out: &std::path::Path) -> String {
    let key = dir.pki.join("checkpoint.pub");
    dir.run_ok(&[
        "audit-export",
        family.as_str(),
        "--out",
        out.to_str().unwrap(),
        "--server",
        &server.url(),
        "--pki",
        dir.pki.to_str().unwrap(),
        "--cert",
        scenario::MUNICIPALITY,
        "--person",
        "auditor-1",
        "--key",
        key.to_str().unwrap(),
        "--plaintext",
    ])
}

/// `keten audit-verify` on `bundle`: (success, stdout + stderr).
fn verify(dir: &Dir, bundle: &std::path::Path) -> (bool, String) {
    let key = dir.pki.join("checkpoint.pub");
    let out = dir.run(&[
        "audit-verify",
        bundle.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_bundle_verifies_offline_and_every_tampering_fails_with_its_reason() {
    let dir = audit_dir();
    let fam = FamilyId::new("gezin-audit").unwrap();
    let other = FamilyId::new("gezin-ander").unwrap();
    let server = dir.serve();
    play(&server, &[fam.clone(), other.clone()]).await;

    let path = dir.tmp.path().join("bundle.json");
    let out = export(&dir, &server, &fam, &path);
    assert!(out.contains("wrote"), "{out}");
    let bundle = Bundle::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let steps = scenario::steps(&fam, today());
    let expected: usize = steps.iter().map(|s| s.events.len()).sum();
    assert_eq!(bundle.events.len(), expected, "every event of the family");
    assert!(
        bundle
            .events
            .windows(2)
            .any(|w| w[1].position > w[0].position + 1),
        "the families are interleaved, so the proofs are about a sparse set of leaves"
    );

    // The server is gone: the verification needs nothing but the bundle and the key.
    drop(server);
    let (ok, text) = verify(&dir, &path);
    assert!(ok, "{text}");
    assert!(text.contains("VERDICT: the bundle holds"), "{text}");
    // The independent verifier beside PROOFS.md (Python, shares no code with keten) agrees,
    // when Python's `cryptography` is installed: it is the auditor's tool, not a build
    // dependency.
    let python = |args: &[&str]| std::process::Command::new("python3").args(args).output();
    if python(&["-c", "import cryptography"]).is_ok_and(|o| o.status.success()) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../keten-proof/verify_bundle.py"
        );
        let key = dir.pki.join("checkpoint.pub");
        let out = python(&[script, path.to_str().unwrap(), key.to_str().unwrap()]).unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("the bundle holds"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("python3 with `cryptography` not installed: verify_bundle.py not run");
    }

    let tamper = |name: &str, change: &dyn Fn(&mut Bundle)| {
        let mut b = bundle.clone();
        change(&mut b);
        let p = dir.tmp.path().join(format!("{name}.json"));
        std::fs::write(&p, b.to_json()).unwrap();
        verify(&dir, &p)
    };

    let (ok, text) = tamper("one-byte", &|b| b.events[3].payload[10] ^= 0x01);
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAILS  inclusion: event #3") && text.contains("does NOT hold"),
        "{text}"
    );

    let (ok, text) = tamper("dropped", &|b| {
        b.events.remove(2);
    });
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAILS  versions") && text.contains("versions 2..=2 are missing"),
        "{text}"
    );

    let (ok, text) = tamper("swapped", &|b| b.events.swap(4, 5));
    assert!(!ok, "{text}");
    assert!(text.contains("FAILS  order"), "{text}");

    // A checkpoint that claims a root the key never signed.
    let (ok, text) = tamper("forged-root", &|b| {
        b.checkpoint.checkpoint.root_hash[0] ^= 0x01
    });
    assert!(!ok, "{text}");
    assert!(text.contains("FAILS  checkpoint signature"), "{text}");

    // A checkpoint signed well, but by another key (an operator's own).
    let (ok, text) = tamper("forged-key", &|b| {
        let key = keten_proof::SigningKey::from_bytes(&[9; 32]);
        b.checkpoint = b.checkpoint.checkpoint.clone().sign(&key).unwrap();
    });
    assert!(!ok, "{text}");
    assert!(text.contains("FAILS  checkpoint signature"), "{text}");

    // Not a bundle at all.
    let p = dir.tmp.path().join("garbage.json");
    std::fs::write(&p, "{\"format\": \"something else\"}").unwrap();
    let (ok, text) = verify(&dir, &p);
    assert!(!ok && text.contains("not a readable bundle"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_over_grpc_hold_across_a_restart_and_name_events_by_id() {
    let dir = audit_dir();
    let key = public_key(&dir);
    let fam = FamilyId::new("gezin-bewijs").unwrap();
    let server = dir.serve();
    play(&server, std::slice::from_ref(&fam)).await;
    let a = auditor(&server).await;
    let old = checkpoint(&a, true).await;
    old.verify(&key).unwrap();

    // By event id: the event comes back as stored, with a path to the latest checkpoint's root.
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
    let target = &history[3];
    let r = a
        .audit()
        .prove_inclusion(a.request(v1::ProveInclusionRequest {
            event: Some(v1::prove_inclusion_request::Event::EventId(
                target.event_id.clone(),
            )),
            tree_size: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    let e = r.event.unwrap();
    assert_eq!(e.position, target.position);
    let leaf = keten_proof::LeafFields {
        position: e.position,
        stream: &e.stream,
        version: e.version,
        event_id: *uuid::Uuid::parse_str(&e.event_id).unwrap().as_bytes(),
        event_type: &e.event_type,
        committed_at: e.committed_at_micros,
        metadata: &e.metadata,
        payload: &e.payload,
    }
    .hash();
    let path: Vec<[u8; 32]> = r
        .audit_path
        .iter()
        .map(|h| h.as_slice().try_into().unwrap())
        .collect();
    let signed = SignedCheckpoint::from_note(&r.checkpoint.unwrap().note).unwrap();
    signed.verify(&key).unwrap();
    keten_proof::verify_inclusion(
        &leaf,
        e.position,
        signed.checkpoint.tree_size,
        &path,
        &signed.checkpoint.root_hash,
    )
    .unwrap();

    // A restart rebuilds the tree from the log: the old checkpoint is still extended.
    assert!(server.terminate());
    let server = dir.serve();
    play(&server, &[FamilyId::new("gezin-later").unwrap()]).await;
    let a = auditor(&server).await;
    let new = checkpoint(&a, true).await;
    assert!(new.checkpoint.tree_size > old.checkpoint.tree_size);
    let (proof, latest) = consistency(&a, old.checkpoint.tree_size).await;
    assert_eq!(latest, new);
    keten_proof::verify_checkpoint_consistency(&old, &new, &proof, &key).unwrap();

    // A tree size beyond the log is refused, not answered with a made-up proof.
    let status = a
        .audit()
        .prove_consistency(a.request(v1::ProveConsistencyRequest {
            old_size: 1,
            new_size: new.checkpoint.tree_size + 1,
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    // Partners' systems do not read proofs: the audit service is for auditors.
    let police = server
        .session(scenario::POLICE, "sys-politie", Role::PartnerSystem)
        .await;
    let status = police
        .audit()
        .get_checkpoint(police.request(v1::GetCheckpointRequest { fresh: false }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_rewritten_after_a_checkpoint_fails_consistency() {
    let dir = audit_dir();
    let key = public_key(&dir);
    let server = dir.serve();
    play(&server, &[FamilyId::new("gezin-echt").unwrap()]).await;
    let a = auditor(&server).await;
    // What the auditor keeps.
    let old = checkpoint(&a, true).await;
    assert!(server.terminate());

    // The operator swaps the data directory for another history of the same length, made by
    // the same software with the same signing key: every record's checksum and chain link is
    // valid, and the log's own verification passes.
    std::fs::rename(&dir.data, dir.tmp.path().join("data-original")).unwrap();
    let server = dir.serve();
    play(&server, &[FamilyId::new("gezin-vals").unwrap()]).await;
    drop(server);
    dir.run_ok(&["verify", dir.data.to_str().unwrap()]);

    let server = dir.serve();
    let a = auditor(&server).await;
    let new = checkpoint(&a, true).await;
    new.verify(&key).unwrap();
    assert_eq!(new.checkpoint.tree_size, old.checkpoint.tree_size);
    let (proof, latest) = consistency(&a, old.checkpoint.tree_size).await;
    assert_eq!(latest, new);
    let err = keten_proof::verify_checkpoint_consistency(&old, &new, &proof, &key)
        .expect_err("a rewritten history cannot extend the kept checkpoint");
    assert!(matches!(err, keten_proof::Error::InvalidProof(_)), "{err}");
    // Also when it grows on: the rewritten prefix stays inconsistent.
    play(&server, &[FamilyId::new("gezin-erna").unwrap()]).await;
    let newer = checkpoint(&a, true).await;
    let (proof, _) = consistency(&a, old.checkpoint.tree_size).await;
    assert!(keten_proof::verify_checkpoint_consistency(&old, &newer, &proof, &key).is_err());
}

/// Publishes one event for `fam` at whatever version it is at; returns its position.
async fn publish_one(server: &Server, who: &scenario::Who, fam: &FamilyId, event: Event) -> u64 {
    let s = server.session(who.partner, who.person, who.role).await;
    s.gateway()
        .publish(s.request(request(fam, Kind::Any(v1::Empty {}), &[event])))
        .await
        .unwrap()
        .into_inner()
        .last_position
}

fn as_of_position(
    family: &FamilyId,
    position: u64,
    knowledge: v1::Knowledge,
) -> v1::GetFamilyPlanAsOfRequest {
    v1::GetFamilyPlanAsOfRequest {
        family_id: family.to_string(),
        as_of: Some(v1::get_family_plan_as_of_request::AsOf::Position(position)),
        knowledge: knowledge as i32,
        show_differences: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_as_of_every_position_is_the_plan_the_watch_streamed_then() {
    use futures::StreamExt;

    let dir = Dir::new();
    let fam = FamilyId::new("gezin-lang").unwrap();
    let other = FamilyId::new("gezin-buur").unwrap();
    let server = dir.serve();
    let steps = scenario::steps(&fam, today());
    let (first, rest) = steps.split_first().unwrap();
    let s = server
        .session(first.who.partner, first.who.person, first.who.role)
        .await;
    s.gateway()
        .publish(s.request(request(&fam, Kind::NoStream(v1::Empty {}), &first.events)))
        .await
        .unwrap();

    // The auditor watches: it sees every class, as the as-of answers do.
    let watcher = auditor(&server).await;
    let mut watch = watcher
        .coordination()
        .watch_family_plan(watcher.request(v1::WatchFamilyPlanRequest {
            family_id: fam.to_string(),
        }))
        .await
        .unwrap()
        .into_inner();

    // The demo's course, then months of police contacts and nuisance reports, with the
    // neighbours' family publishing in between so that positions and versions part ways.
    let mut events = first.events.len();
    for step in rest {
        let s = server
            .session(step.who.partner, step.who.person, step.who.role)
            .await;
        s.gateway()
            .publish(s.request(request(&fam, Kind::Any(v1::Empty {}), &step.events)))
            .await
            .unwrap_or_else(|st| panic!("{}: {st:?}", step.label));
        events += step.events.len();
    }
    play(&server, std::slice::from_ref(&other)).await;
    for i in 0..300u64 {
        let on = scenario::ago(today(), 80 - i / 4);
        let event = if i % 3 == 0 {
            Event::NuisanceReported {
                description: format!("report {i}"),
                occurred_on: on,
            }
        } else {
            Event::PoliceContactRecorded {
                member_id: Some(scenario::mid(if i % 2 == 0 { "c1" } else { "p1" })),
                occurred_on: on,
            }
        };
        let who = if i % 3 == 0 {
            scenario::housing_system()
        } else {
            scenario::police_system()
        };
        publish_one(&server, &who, &fam, event).await;
        if i % 25 == 0 {
            let contact = Event::PoliceContactRecorded {
                member_id: None,
                occurred_on: today(),
            };
            publish_one(&server, &scenario::police_system(), &other, contact).await;
        }
        events += 1;
    }
    let last_version = events as u64 - 1;

    // Every change of the family, as a coordinator watching saw it.
    let mut streamed = Vec::new();
    let collect = async {
        while let Some(item) = watch.next().await {
            let item = item.unwrap();
            let done = item.version == last_version;
            streamed.push(item);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), collect)
        .await
        .expect("the watch streams every change");
    assert_eq!(streamed.len(), events - first.events.len() + 1);

    let auditor = auditor(&server).await;
    for seen in &streamed {
        let then = auditor
            .audit()
            .get_family_plan_as_of(auditor.request(as_of_position(
                &fam,
                seen.last_position,
                v1::Knowledge::AsKnown,
            )))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(then.version, seen.version);
        assert_eq!(then.last_position, seen.last_position);
        assert_eq!(
            then.plan, seen.plan,
            "as of position {} (version {})",
            seen.last_position, seen.version
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_police_report_is_true_then_but_was_not_known_then() {
    let dir = Dir::new();
    let fam = FamilyId::new("gezin-laat").unwrap();
    let server = dir.serve();
    play(&server, std::slice::from_ref(&fam)).await;
    let a = auditor(&server).await;
    let plan_then = a
        .coordination()
        .get_family_plan(a.request(v1::GetFamilyPlanRequest {
            family_id: fam.to_string(),
            min_position: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .plan;
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
    let t = history.last().unwrap().committed_at.unwrap();

    // Recorded now, about a contact two days ago: after T, about a day before T's.
    let happened = scenario::ago(today(), 2);
    let late = publish_one(
        &server,
        &scenario::police_system(),
        &fam,
        Event::PoliceContactRecorded {
            member_id: Some(scenario::mid("c1")),
            occurred_on: happened,
        },
    )
    .await;

    let at = |knowledge: v1::Knowledge| v1::GetFamilyPlanAsOfRequest {
        family_id: fam.to_string(),
        as_of: Some(v1::get_family_plan_as_of_request::AsOf::At(t)),
        knowledge: knowledge as i32,
        show_differences: true,
    };
    let known = a
        .audit()
        .get_family_plan_as_of(a.request(at(v1::Knowledge::AsKnown)))
        .await
        .unwrap()
        .into_inner();
    let true_then = a
        .audit()
        .get_family_plan_as_of(a.request(at(v1::Knowledge::AsTrue)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(known.knowledge, v1::Knowledge::AsKnown as i32);
    assert_eq!(true_then.knowledge, v1::Knowledge::AsTrue as i32);
    assert_eq!(
        known.plan, plan_then,
        "as known at T: what the coordinator saw at T"
    );
    assert_eq!(known.version, history.last().unwrap().version);
    assert_eq!(
        true_then.last_position, late,
        "as true at T: the late report is in"
    );
    assert_ne!(
        known.plan.as_ref().unwrap().outcomes,
        true_then.plan.as_ref().unwrap().outcomes,
        "the late contact counts in the outcome figures of the plan as true at T"
    );

    // The difference: what was known, and when.
    for r in [&known, &true_then] {
        let later: Vec<_> = r.differences.iter().filter(|d| d.known_later).collect();
        assert_eq!(later.len(), 1, "{:?}", r.differences);
        let d = later[0];
        assert_eq!(d.position, late);
        assert_eq!(d.event_type, "PoliceContactRecorded");
        assert_eq!(d.partner_id, scenario::POLICE);
        assert_eq!(d.occurred_on, Some(convert::date_to_proto(happened)));
        let recorded = d.committed_at.unwrap();
        assert!((recorded.seconds, recorded.nanos) > (t.seconds, t.nanos));
    }
}

async fn read_all(a: &Session, req: v1::ReadAllRequest) -> Vec<v1::StoredEvent> {
    use futures::StreamExt;
    let mut stream = a
        .audit()
        .read_all(a.request(req))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        out.push(item.unwrap().event.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_all_streams_the_log_filtered_and_resumes_from_a_position() {
    let dir = Dir::new();
    let fam = FamilyId::new("gezin-een").unwrap();
    let other = FamilyId::new("gezin-twee").unwrap();
    let server = dir.serve();
    play(&server, &[fam.clone(), other.clone()]).await;
    let a = auditor(&server).await;

    let all = read_all(&a, v1::ReadAllRequest::default()).await;
    let per_family: usize = scenario::steps(&fam, today())
        .iter()
        .map(|s| s.events.len())
        .sum();
    assert_eq!(all.len(), 2 * per_family);
    assert!(all.iter().enumerate().all(|(i, e)| e.position == i as u64));

    // Resumed in pages of 7: the same events, none twice.
    let mut paged = Vec::new();
    let mut from = 0;
    loop {
        let page = read_all(
            &a,
            v1::ReadAllRequest {
                from_position: from,
                max_count: 7,
                ..Default::default()
            },
        )
        .await;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        paged.extend(page);
    }
    assert_eq!(paged, all);

    let family = read_all(
        &a,
        v1::ReadAllRequest {
            family_id: Some(fam.to_string()),
            ..Default::default()
        },
    )
    .await;
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
    assert_eq!(family, history);
    assert!(family.windows(2).all(|w| w[1].version == w[0].version + 1));

    let police = read_all(
        &a,
        v1::ReadAllRequest {
            partner_id: Some(scenario::POLICE.into()),
            event_types: vec!["PoliceContactRecorded".into()],
            ..Default::default()
        },
    )
    .await;
    assert!(!police.is_empty());
    assert_eq!(
        police.len(),
        all.iter()
            .filter(|e| e.partner_id == scenario::POLICE
                && matches!(
                    e.event.as_ref().and_then(|e| e.event.as_ref()),
                    Some(v1::family_event::Event::PoliceContactRecorded(_))
                ))
            .count()
    );

    // A time range: from the 5th event's commit time to the 20th's.
    let range = read_all(
        &a,
        v1::ReadAllRequest {
            committed_from: all[5].committed_at,
            committed_until: all[20].committed_at,
            ..Default::default()
        },
    )
    .await;
    let key = |e: &v1::StoredEvent| {
        let t = e.committed_at.unwrap();
        (t.seconds, t.nanos)
    };
    let (lo, hi) = (key(&all[5]), key(&all[20]));
    let expected: Vec<_> = all
        .iter()
        .filter(|e| (lo..=hi).contains(&key(e)))
        .cloned()
        .collect();
    assert_eq!(range, expected);
    assert!(range.len() >= 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_until_rebuilds_the_projections_as_they_stood_then() {
    let dir = Dir::new();
    let early = FamilyId::new("gezin-vroeg").unwrap();
    let late = FamilyId::new("gezin-later").unwrap();
    let server = dir.serve();
    play(&server, std::slice::from_ref(&early)).await;
    let a = auditor(&server).await;
    let history = a
        .audit()
        .read_family_history(a.request(v1::ReadFamilyHistoryRequest {
            family_id: early.to_string(),
            from_version: 0,
            max_count: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .events;
    let last = history.last().unwrap();
    let t = last.committed_at.unwrap();
    play(&server, std::slice::from_ref(&late)).await;
    assert!(server.terminate());

    let rfc3339 = |seconds: i64, nanos: u32| {
        chrono::DateTime::from_timestamp(seconds, nanos)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    };
    let data = dir.data.to_str().unwrap();
    let out_dir = dir.tmp.path().join("then");
    let out = dir.run_ok(&[
        "replay",
        "--data",
        data,
        "--until",
        &rfc3339(t.seconds, t.nanos as u32),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.contains(&format!("folded {} events committed by", last.position + 1))
            && out.contains(&format!(
                "(up to position {}) into 1 families",
                last.position
            )),
        "{out}"
    );
    assert!(out.contains("each equals its family's as-of fold"), "{out}");
    assert!(
        std::fs::read_dir(&out_dir).unwrap().next().is_some(),
        "a snapshot"
    );

    // Before the first event: nothing stood.
    let out = dir.run_ok(&["replay", "--data", data, "--until", "2000-01-01T00:00:00Z"]);
    assert!(
        out.contains("folded 0 events") && out.contains("into 0 families"),
        "{out}"
    );

    let out = dir.run(&["replay", "--data", data, "--until", "yesterday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_signed_at_the_configured_interval() {
    let dir = audit_dir();
    let text = std::fs::read_to_string(&dir.config).unwrap().replace(
        "checkpoint_interval_secs = 3600",
        "checkpoint_interval_secs = 1",
    );
    std::fs::write(&dir.config, text).unwrap();
    let key = public_key(&dir);
    let server = dir.serve();
    let a = auditor(&server).await;
    // Signed at start, over the empty log.
    let first = checkpoint(&a, false).await;
    first.verify(&key).unwrap();
    assert_eq!(first.checkpoint.tree_size, 0);

    let fam = FamilyId::new("gezin-klok").unwrap();
    play(&server, std::slice::from_ref(&fam)).await;
    let expected: usize = scenario::steps(&fam, today())
        .iter()
        .map(|s| s.events.len())
        .sum();
    // Without asking for a fresh one, the latest checkpoint comes to cover the log: the timer
    // signed it. Checked once per interval, for at most ten intervals.
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut latest = first;
    for _ in 0..10 {
        tick.tick().await;
        latest = checkpoint(&a, false).await;
        if latest.checkpoint.tree_size == expected as u64 {
            break;
        }
    }
    assert_eq!(latest.checkpoint.tree_size, expected as u64, "{latest:?}");
    latest.verify(&key).unwrap();
}

#[test]
fn keygen_writes_a_key_pair_and_never_overwrites_one() {
    let dir = Dir::new();
    let out = dir.tmp.path().join("keys");
    let text = dir.run_ok(&["keygen", "--out", out.to_str().unwrap()]);
    assert!(text.contains("checkpoint.pub"), "{text}");
    let key = keten_proof::load_signing_key(&out.join("checkpoint.key")).unwrap();
    let public = keten_proof::load_verifying_key(&out.join("checkpoint.pub")).unwrap();
    assert_eq!(key.verifying_key(), public);
    let again = dir.run(&["keygen", "--out", out.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not overwriting"));
    assert_eq!(
        keten_proof::load_signing_key(&out.join("checkpoint.key")).unwrap(),
        key
    );
}

/// Crypto-shredding does not break the proofs: they cover the events as stored, sealed under
/// the family's key, and erasure destroys the key, not the events. A checkpoint from before the
/// erasure is extended by the one after it, and the family's bundle still verifies offline,
/// with no plaintext left to give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_family_still_proves_under_old_and_new_checkpoints() {
    let dir = audit_dir();
    let key = public_key(&dir);
    let fam = FamilyId::new("gezin-gewist").unwrap();
    let server = dir.serve();
    play(&server, std::slice::from_ref(&fam)).await;
    let a = auditor(&server).await;
    let before = checkpoint(&a, true).await;
    let path = dir.tmp.path().join("before.json");
    export(&dir, &server, &fam, &path);
    let sealed_before = Bundle::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        sealed_before.plaintext.as_ref().map(Vec::len),
        Some(sealed_before.events.len()),
        "before the erasure an auditor gets every event in plaintext too"
    );
    assert!(
        sealed_before
            .events
            .iter()
            .all(|e| e.payload.first() == Some(&keten_keys::SEALED_VERSION)),
        "the events are stored sealed"
    );

    let municipality = server
        .session(scenario::MUNICIPALITY, "sys-gemeente", Role::PartnerSystem)
        .await;
    municipality
        .gateway()
        .publish(municipality.request(request(
            &fam,
            Kind::Any(v1::Empty {}),
            &[Event::ErasureRequested {
                requester: scenario::mid("p1"),
                occurred_on: today(),
            }],
        )))
        .await
        .unwrap();
    let who = scenario::coordinator();
    let coordinator = server.session(who.partner, who.person, who.role).await;
    coordinator
        .coordination()
        .erase_family(coordinator.request(v1::EraseFamilyRequest {
            family_id: fam.to_string(),
            event_id: uuid::Uuid::new_v4().to_string(),
        }))
        .await
        .expect("erased");

    let after = checkpoint(&a, true).await;
    let (proof, latest) = consistency(&a, before.checkpoint.tree_size).await;
    assert_eq!(latest, after);
    keten_proof::verify_checkpoint_consistency(&before, &after, &proof, &key)
        .expect("the log after the erasure extends the log before it");

    let path = dir.tmp.path().join("after.json");
    export(&dir, &server, &fam, &path);
    drop(server);
    let (ok, text) = verify(&dir, &path);
    assert!(ok, "{text}");
    let bundle = Bundle::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (erasure, earlier) = bundle.events.split_last().unwrap();
    assert_eq!(erasure.event_type, "FamilyErased");
    for (old, now) in sealed_before.events.iter().zip(earlier) {
        // Proven under a larger tree now, so with a longer audit path; stored as it was.
        let stored = |e: &keten_proof::BundleEvent| {
            (
                e.position,
                e.id,
                e.committed_at,
                e.metadata.clone(),
                e.payload.clone(),
            )
        };
        assert_eq!(
            stored(old),
            stored(now),
            "an erased event is stored as it was"
        );
    }
    let plain = bundle.plaintext.unwrap();
    assert_eq!(plain.len(), 1, "only the erasure itself is left to read");
    assert_eq!(plain[0].position, erasure.position);
}

/// The same proofs over JetStream: a bundle exported from a server on a NATS stream verifies
/// offline, and a checkpoint made before more events is extended by the one after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_hold_the_same_over_jetstream() {
    let nats = keten_testkit::NatsServer::start();
    let dir = audit_dir();
    let key = public_key(&dir);
    let args = [
        "--store",
        &nats.url(),
        "--nats-monitor",
        &nats.monitor_url(),
    ];
    let server = dir.serve_with(&args);
    let fam = FamilyId::new("gezin-bewijs-nats").unwrap();
    let other = FamilyId::new("gezin-ander-nats").unwrap();
    play(&server, &[fam.clone(), other.clone()]).await;
    let a = auditor(&server).await;
    let old = checkpoint(&a, true).await;
    old.verify(&key).unwrap();

    let path = dir.tmp.path().join("nats-bundle.json");
    export(&dir, &server, &fam, &path);
    let bundle = Bundle::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let expected: usize = scenario::steps(&fam, today())
        .iter()
        .map(|s| s.events.len())
        .sum();
    assert_eq!(bundle.events.len(), expected);

    // More events, a restart of keten (the tree is rebuilt from the stream), and consistency.
    publish_one(
        &server,
        &scenario::police_system(),
        &other,
        Event::PoliceContactRecorded {
            member_id: Some(scenario::mid("c1")),
            occurred_on: today(),
        },
    )
    .await;
    assert!(server.terminate());
    let server = dir.serve_with(&args);
    let a = auditor(&server).await;
    let new = checkpoint(&a, true).await;
    assert!(new.checkpoint.tree_size > old.checkpoint.tree_size);
    let (proof, latest) = consistency(&a, old.checkpoint.tree_size).await;
    assert_eq!(latest, new);
    keten_proof::verify_checkpoint_consistency(&old, &new, &proof, &key)
        .expect("the stream after extends the stream before");
    drop(server);
    let (ok, text) = verify(&dir, &path);
    assert!(ok, "{text}");
}
