//! The projection service against a real `FileLog`: live folding while partners append,
//! determinism against a rebuild, snapshots (resumed, and each kind of mismatch discarded),
//! read-your-writes, listings, and an undecodable stored event.
// The test kit varies families by `i % n`; written alike everywhere, it reads as one table.
#![allow(clippy::manual_is_multiple_of)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use keten_domain::{Event, FamilyId, Rung, WarningKind};
use keten_log::{
    EventStore, EventType, ExpectedVersion, GlobalPosition, ProposedEvent, StreamVersion, Until,
};
use keten_projection::{
    Error, ListFilter, PageRequest, ProjectionOptions, Projections, StartedFrom, family_as_of,
    rebuild, snapshot, stored,
};
use support::*;

const WAIT: Duration = Duration::from_secs(20);

fn options(dir: Option<&std::path::Path>) -> ProjectionOptions {
    ProjectionOptions {
        snapshot_dir: dir.map(|d| d.to_path_buf()),
        snapshot_every: 0,
        ..ProjectionOptions::default()
    }
}

async fn head(store: &dyn EventStore) -> GlobalPosition {
    store.head().await.unwrap().expect("a non-empty log")
}

/// Every family of the projection equals the rebuild's, and the rebuild's every family equals
/// its own as-of fold: the three ways of folding agree.
async fn assert_matches_rebuild(store: &dyn EventStore, p: &Projections) {
    let rebuilt = rebuild(store, |_, _| {}).await.unwrap();
    assert_eq!(p.position(), rebuilt.last_position);
    assert_eq!(p.family_count(), rebuilt.views.len());
    for view in &rebuilt.views {
        let live = p.family(&view.family).expect("family in the projection");
        assert_eq!(*live, **view, "family {}", view.family);
        let as_of = family_as_of(store, &view.family, Until::Latest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(as_of, **view);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fold_while_appending_equals_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let store: Arc<dyn EventStore> = log.clone();
    let p = Projections::start(store.clone(), options(None))
        .await
        .unwrap();
    assert_eq!(p.position(), None);

    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut fams = publish_families(store.as_ref(), 40).await;
            for (i, fam) in fams.iter_mut().enumerate() {
                fam.publish(store.as_ref(), more(i, 3)).await;
            }
        })
    };
    writer.await.unwrap();
    p.wait_for(head(store.as_ref()).await, WAIT).await.unwrap();
    assert_eq!(p.family_count(), 40);
    p.health().unwrap();
    assert_matches_rebuild(store.as_ref(), &p).await;
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_resume_equals_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let store: Arc<dyn EventStore> = log.clone();
    let mut fams = publish_families(store.as_ref(), 20).await;

    let p = Projections::start(store.clone(), options(Some(snaps.path())))
        .await
        .unwrap();
    assert_eq!(p.started_from(), &StartedFrom::Scratch { discarded: None });
    let at_snapshot = head(store.as_ref()).await;
    p.wait_for(at_snapshot, WAIT).await.unwrap();
    p.shutdown().await.unwrap();
    assert!(snapshot::path_in(snaps.path()).exists());

    // More history after the snapshot, including a family the snapshot never saw.
    for (i, fam) in fams.iter_mut().enumerate().step_by(3) {
        fam.publish(store.as_ref(), more(i, 2)).await;
    }
    let mut late = Fam::new(fid(100));
    for step in history(100) {
        late.publish(store.as_ref(), step).await;
    }

    let p = Projections::start(store.clone(), options(Some(snaps.path())))
        .await
        .unwrap();
    assert_eq!(
        p.started_from(),
        &StartedFrom::Snapshot {
            position: at_snapshot
        }
    );
    p.wait_for(head(store.as_ref()).await, WAIT).await.unwrap();
    assert_eq!(p.family_count(), 21);
    assert_matches_rebuild(store.as_ref(), &p).await;

    // On demand, then resumed again with nothing new: the same views.
    p.snapshot_now().await.unwrap();
    let again = Projections::start(store.clone(), options(Some(snaps.path())))
        .await
        .unwrap();
    assert_eq!(
        again.started_from(),
        &StartedFrom::Snapshot {
            position: head(store.as_ref()).await
        }
    );
    assert_matches_rebuild(store.as_ref(), &again).await;
    again.shutdown().await.unwrap();
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_snapshots_are_written_every_n_events() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let store: Arc<dyn EventStore> = log.clone();
    let p = Projections::start(
        store.clone(),
        ProjectionOptions {
            snapshot_dir: Some(snaps.path().to_path_buf()),
            snapshot_every: 10,
            ..ProjectionOptions::default()
        },
    )
    .await
    .unwrap();
    // Published while the projection runs live (a snapshot after catching up is another path).
    publish_families(store.as_ref(), 10).await;
    p.wait_for(head(store.as_ref()).await, WAIT).await.unwrap();
    let file = snapshot::path_in(snaps.path());
    eventually("a periodic snapshot", WAIT, || {
        let exists = file.exists();
        async move { exists }
    })
    .await;
    // Dropped, not shut down: a shutdown would write a snapshot of its own.
    drop(p);
    let again = Projections::start(store.clone(), options(Some(snaps.path())))
        .await
        .unwrap();
    assert!(
        matches!(again.started_from(), StartedFrom::Snapshot { .. }),
        "{:?}",
        again.started_from()
    );
    again
        .wait_for(head(store.as_ref()).await, WAIT)
        .await
        .unwrap();
    assert_matches_rebuild(store.as_ref(), &again).await;
}

/// Builds a log of `n` families with a snapshot of it in `snaps`; returns the log's store.
async fn log_with_snapshot(
    dir: &std::path::Path,
    snaps: &std::path::Path,
    n: usize,
) -> Arc<dyn EventStore> {
    let log = open_log(dir).await;
    let store: Arc<dyn EventStore> = log;
    publish_families(store.as_ref(), n).await;
    let p = Projections::start(store.clone(), options(Some(snaps)))
        .await
        .unwrap();
    p.wait_for(head(store.as_ref()).await, WAIT).await.unwrap();
    p.shutdown().await.unwrap();
    store
}

/// Starts on `store` with the snapshot in `snaps`, expects it discarded for a reason containing
/// `why`, and the projection rebuilt from scratch to equal a rebuild.
async fn assert_discarded(store: Arc<dyn EventStore>, snaps: &std::path::Path, why: &str) {
    let p = Projections::start(store.clone(), options(Some(snaps)))
        .await
        .unwrap();
    match p.started_from() {
        StartedFrom::Scratch {
            discarded: Some(reason),
        } => assert!(
            reason.contains(why),
            "discarded for {reason:?}, not {why:?}"
        ),
        other => panic!("the snapshot was not discarded: {other:?}"),
    }
    if let Some(h) = store.head().await.unwrap() {
        p.wait_for(h, WAIT).await.unwrap();
    }
    assert_matches_rebuild(store.as_ref(), &p).await;
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_past_the_end_of_the_log_is_discarded() {
    let (a, b, snaps) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    log_with_snapshot(a.path(), snaps.path(), 12).await;
    // Another, shorter log: no event at the snapshot's position.
    let shorter: Arc<dyn EventStore> = open_log(b.path()).await;
    publish_families(shorter.as_ref(), 3).await;
    assert_discarded(shorter, snaps.path(), "has no event at position").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_another_log_is_discarded() {
    let (a, b, snaps) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    log_with_snapshot(a.path(), snaps.path(), 12).await;
    // The same histories again: the same positions, other event ids.
    let other: Arc<dyn EventStore> = open_log(b.path()).await;
    publish_families(other.as_ref(), 12).await;
    assert_discarded(other, snaps.path(), "the snapshot recorded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_with_a_bad_checksum_is_discarded() {
    let (a, snaps) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = log_with_snapshot(a.path(), snaps.path(), 12).await;
    let path = snapshot::path_in(snaps.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // A digit in the body changed to another digit: still valid JSON, wrong content.
    let body = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let at = body
        + bytes[body..]
            .windows(13)
            .position(|w| w == b"\"birth_year\":")
            .unwrap()
        + 13;
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&path, bytes).unwrap();
    assert_discarded(store, snaps.path(), "checksum mismatch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_a_newer_format_is_discarded() {
    let (a, snaps) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = log_with_snapshot(a.path(), snaps.path(), 12).await;
    let path = snapshot::path_in(snaps.path());
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    let newer = format!("\"format\":{}", snapshot::FORMAT + 1);
    let text = text.replacen(&format!("\"format\":{}", snapshot::FORMAT), &newer, 1);
    std::fs::write(&path, text).unwrap();
    assert_discarded(store, snaps.path(), "is not this keten's format").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_snapshot_is_discarded() {
    let (a, snaps) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = log_with_snapshot(a.path(), snaps.path(), 12).await;
    let path = snapshot::path_in(snaps.path());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    assert_discarded(store, snaps.path(), "bytes, the header says").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_returns_when_reached_and_times_out_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    let mut fams = publish_families(store.as_ref(), 2).await;
    let p = Projections::start(store.clone(), options(None))
        .await
        .unwrap();
    let h = head(store.as_ref()).await;
    p.wait_for(h, WAIT).await.unwrap();

    let beyond = GlobalPosition(h.0 + 1);
    match p.wait_for(beyond, Duration::from_millis(50)).await {
        Err(Error::NotYet { wanted, reached }) => {
            assert_eq!((wanted, reached), (beyond, Some(h)));
        }
        other => panic!("expected NotYet, got {other:?}"),
    }

    // Waiting first, the append arriving while it waits.
    let waiter = {
        let p = p.clone();
        tokio::spawn(async move { p.wait_for(beyond, WAIT).await })
    };
    let written = fams[0].publish(store.as_ref(), more(0, 1)).await;
    assert_eq!(written.last_position, beyond);
    waiter.await.unwrap().unwrap();
    assert_eq!(p.family(&fid(0)).unwrap().position, beyond);
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    let n = 30;
    publish_families(store.as_ref(), n).await;
    let p = Projections::start(store.clone(), options(None))
        .await
        .unwrap();
    p.wait_for(head(store.as_ref()).await, WAIT).await.unwrap();
    let today = today();
    let all = |filter: ListFilter| -> Vec<FamilyId> {
        let page = p.list(
            &filter,
            today,
            PageRequest {
                after: None,
                size: 1000,
            },
        );
        assert_eq!(page.next, None);
        page.items.iter().map(|v| v.family.clone()).collect()
    };
    let expect = |pred: &dyn Fn(usize) -> bool| -> Vec<FamilyId> {
        (0..n).filter(|&i| pred(i)).map(fid).collect()
    };
    // The test kit's history: police only where i % 3 != 0, no manager where i % 5 == 2,
    // escalated (with a manager) where i % 4 == 1, an unsettled match where i % 7 == 1.
    let has_fm = |i: usize| i % 5 != 2;
    assert_eq!(all(ListFilter::default()), expect(&|_| true));
    assert_eq!(
        all(ListFilter {
            partner: Some(pid("pol")),
            ..Default::default()
        }),
        expect(&|i| i % 3 != 0)
    );
    assert_eq!(
        all(ListFilter {
            rung: Some(Rung::Pressure),
            ..Default::default()
        }),
        expect(&|i| i % 4 == 1 && has_fm(i))
    );
    assert_eq!(
        all(ListFilter {
            family_manager: Some(person("fm-anna")),
            ..Default::default()
        }),
        expect(&|i| i % 2 == 0 && has_fm(i))
    );
    assert_eq!(
        all(ListFilter {
            warning: Some(WarningKind::NoFamilyManager),
            ..Default::default()
        }),
        expect(&|i| !has_fm(i))
    );
    assert_eq!(
        all(ListFilter {
            warning: Some(WarningKind::MatchNotSettled),
            ..Default::default()
        }),
        expect(&|i| i % 3 != 0 && i % 7 == 1)
    );
    // Conditions combine.
    assert_eq!(
        all(ListFilter {
            partner: Some(pid("pol")),
            family_manager: Some(person("fm-bert")),
            rung: Some(Rung::Pressure),
            warning: None,
        }),
        expect(&|i| i % 3 != 0 && i % 2 == 1 && i % 4 == 1 && has_fm(i))
    );
    // Each warning filter agrees with the plans themselves.
    for kind in [
        WarningKind::NoFamilyManager,
        WarningKind::FamilyNotInformed,
        WarningKind::MatchNotSettled,
    ] {
        let listed = all(ListFilter {
            warning: Some(kind),
            ..Default::default()
        });
        let planned: Vec<FamilyId> = (0..n)
            .map(fid)
            .filter(|f| {
                p.family(f)
                    .unwrap()
                    .plan(today)
                    .warnings
                    .iter()
                    .any(|w| w.kind == kind)
            })
            .collect();
        assert_eq!(listed, planned, "{kind:?}");
    }

    // Pages of 7 over a filtered listing: in order, none repeated, none missed.
    let filter = ListFilter {
        partner: Some(pid("pol")),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = p.list(
            &filter,
            today,
            PageRequest {
                after: after.clone(),
                size: 7,
            },
        );
        assert!(page.items.len() <= 7);
        assert_eq!(page.position, p.position());
        seen.extend(page.items.iter().map(|v| v.family.clone()));
        pages += 1;
        match page.next {
            Some(token) => {
                assert_eq!(Some(&token), seen.last());
                after = Some(token);
            }
            None => break,
        }
    }
    assert_eq!(seen, expect(&|i| i % 3 != 0));
    assert_eq!(pages, seen.len().div_ceil(7));
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_stored_event_stops_the_projection_naming_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    let mut fams = publish_families(store.as_ref(), 3).await;
    let p = Projections::start(store.clone(), options(None))
        .await
        .unwrap();
    let good = head(store.as_ref()).await;
    p.wait_for(good, WAIT).await.unwrap();

    // Written around the domain, as a buggy or hostile writer might.
    let stream = stored::stream_id(&fid(1));
    let bad = store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![ProposedEvent {
                id: event_id(),
                event_type: EventType::new("HomeVisitRecorded").unwrap(),
                metadata: b"{}".to_vec(),
                payload: br#"{"schema":2,"event":{"type":"HomeVisitRecorded","occurred_on":"not a date"}}"#.to_vec(),
            }],
        )
        .await
        .unwrap()
        .last_position;
    // A good event after it is not folded either.
    fams[2].publish(store.as_ref(), more(2, 1)).await;
    let after = head(store.as_ref()).await;

    match p.wait_for(after, WAIT).await {
        Err(Error::Stopped(e)) => {
            assert_eq!(e.position(), Some(bad));
            assert!(
                e.to_string().contains(&format!("global position {bad}")),
                "{e}"
            );
        }
        other => panic!("expected Stopped, got {other:?}"),
    }
    let e = p.health().expect_err("unhealthy");
    assert!(
        matches!(*e, Error::Decode { position, .. } if position == bad),
        "{e}"
    );
    assert_eq!(p.position(), Some(good));
    assert!(matches!(p.snapshot_now().await, Err(Error::Stopped(_))));

    // Every other way of folding refuses it too.
    let err = rebuild(store.as_ref(), |_, _| {}).await.unwrap_err();
    assert_eq!(err.position(), Some(bad));
    let err = family_as_of(store.as_ref(), &fid(1), Until::Latest)
        .await
        .unwrap_err();
    assert_eq!(err.position(), Some(bad));
    // A restart does not get past it either.
    let again = Projections::start(store.clone(), options(None))
        .await
        .unwrap();
    assert!(matches!(
        again.wait_for(after, WAIT).await,
        Err(Error::Stopped(_))
    ));
    assert_eq!(again.position(), Some(GlobalPosition(bad.0 - 1)));
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_type_that_differs_from_the_payload_stops_the_projection() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    publish_families(store.as_ref(), 1).await;
    let event = Event::HomeVisitRecorded {
        occurred_on: d("2026-02-01"),
    };
    let mut proposed = stored::encode(
        event_id(),
        &event,
        &stored::EventMetadata::from_actor(&fm(0)),
    );
    proposed.event_type = EventType::new("FamilyInformed").unwrap();
    let bad = store
        .append(
            &stored::stream_id(&fid(0)),
            ExpectedVersion::Any,
            vec![proposed],
        )
        .await
        .unwrap()
        .last_position;
    let p = Projections::start(store.clone(), options(None))
        .await
        .unwrap();
    let err = p.wait_for(bad, WAIT).await.unwrap_err();
    assert_eq!(err.position(), Some(bad));
    assert!(
        err.to_string().contains("stored as `FamilyInformed`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_family_gives_the_streams_current_state_whether_the_projection_is_current_or_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    let mut fams = publish_families(store.as_ref(), 2).await;
    let p = Projections::start(store.clone(), options(None))
        .await
        .unwrap();
    p.wait_for(head(store.as_ref()).await, WAIT).await.unwrap();
    let (state, version) = p.load_family(&fid(0)).await.unwrap();
    assert_eq!((&state, version), (&fams[0].state, fams[0].version));
    let (state, version) = p.load_family(&fid(99)).await.unwrap();
    assert_eq!((state, version), (Default::default(), None));
    // Right after an append, before or after the fold has it: always the stream's version.
    fams[1].publish(store.as_ref(), more(1, 2)).await;
    let (state, version) = p.load_family(&fid(1)).await.unwrap();
    assert_eq!((&state, version), (&fams[1].state, fams[1].version));
    // A projection that folds no more (its fold was shut down; this handle still reads):
    // its views fall behind, and the missing events are read and folded on top.
    let reader = p.clone();
    p.shutdown().await.unwrap();
    let at_shutdown = reader.family(&fid(1)).unwrap().version;
    fams[1].publish(store.as_ref(), more(1, 3)).await;
    assert_eq!(reader.family(&fid(1)).unwrap().version, at_shutdown);
    let (state, version) = reader.load_family(&fid(1)).await.unwrap();
    assert_eq!((&state, version), (&fams[1].state, fams[1].version));
    let (state, version) = keten_projection::load_family(store.as_ref(), &fid(1))
        .await
        .unwrap();
    assert_eq!((&state, version), (&fams[1].state, fams[1].version));
    assert_eq!(version, Some(StreamVersion(fams[1].version.unwrap().0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_writes_a_snapshot_the_projection_resumes_from() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    let mut fams = publish_families(store.as_ref(), 15).await;
    let mut calls = Vec::new();
    let report = rebuild(store.as_ref(), |done, total| calls.push((done, total)))
        .await
        .unwrap();
    let h = head(store.as_ref()).await;
    assert_eq!(report.last_position, Some(h));
    assert_eq!(report.events, h.0 + 1);
    assert_eq!(calls.last(), Some(&(h.0 + 1, h.0 + 1)));
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0));
    report.write_snapshot(snaps.path()).unwrap();

    fams[4].publish(store.as_ref(), more(4, 2)).await;
    let p = Projections::start(store.clone(), options(Some(snaps.path())))
        .await
        .unwrap();
    assert_eq!(p.started_from(), &StartedFrom::Snapshot { position: h });
    p.wait_for(head(store.as_ref()).await, WAIT).await.unwrap();
    assert_matches_rebuild(store.as_ref(), &p).await;
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_in_another_familys_stream_stops_the_projection() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    publish_families(store.as_ref(), 2).await;
    let p = Projections::start(store.clone(), options(None))
        .await
        .unwrap();
    let good = head(store.as_ref()).await;
    p.wait_for(good, WAIT).await.unwrap();
    assert_eq!(p.lag().await.unwrap(), 0);
    // Valid JSON of a valid event, in the wrong stream: the fold refuses it.
    let mut step = history(5).remove(0);
    let (actor, event) = step.remove(0);
    let proposed = stored::encode(
        event_id(),
        &event,
        &stored::EventMetadata::from_actor(&actor),
    );
    let bad = store
        .append(
            &stored::stream_id(&fid(77)),
            ExpectedVersion::NoStream,
            vec![proposed],
        )
        .await
        .unwrap()
        .last_position;
    let err = p.wait_for(bad, WAIT).await.unwrap_err();
    assert_eq!(err.position(), Some(bad));
    assert!(
        matches!(&err, Error::Stopped(e) if matches!(**e, Error::Fold { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("registers family `fam-00005`"),
        "{err}"
    );
    assert_eq!(p.lag().await.unwrap(), 1);
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_folded_under_another_event_schema_is_discarded() {
    let (a, snaps) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = log_with_snapshot(a.path(), snaps.path(), 12).await;
    let path = snapshot::path_in(snaps.path());
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    let current = format!("\"event_schema\":{}", keten_domain::CURRENT_SCHEMA);
    assert!(text.contains(&current));
    let text = text.replacen(&current, "\"event_schema\":1", 1);
    std::fs::write(&path, text).unwrap();
    assert_discarded(store, snaps.path(), "folded with event schema 1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_whose_families_are_out_of_order_is_discarded_even_with_a_good_checksum() {
    let (a, snaps) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = log_with_snapshot(a.path(), snaps.path(), 12).await;
    let path = snapshot::path_in(snaps.path());
    let bytes = std::fs::read(&path).unwrap();
    let split = bytes.iter().position(|&b| b == b'\n').unwrap();
    let mut lines: Vec<&[u8]> = bytes[split + 1..]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    lines.swap(0, 1);
    let mut body = lines.join(&b'\n');
    body.push(b'\n');
    // A header that vouches for the reordered body, as a buggy writer would produce.
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[..split]).unwrap();
    header["body_blake3"] = blake3::hash(&body).to_hex().to_string().into();
    let mut file = serde_json::to_vec(&header).unwrap();
    file.push(b'\n');
    file.extend_from_slice(&body);
    std::fs::write(&path, file).unwrap();
    assert_discarded(store, snaps.path(), "is out of order").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_snapshotted_of_an_empty_log_and_it_starts_from_scratch() {
    let (a, snaps) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store: Arc<dyn EventStore> = open_log(a.path()).await;
    let p = Projections::start(store.clone(), options(Some(snaps.path())))
        .await
        .unwrap();
    assert_eq!(p.position(), None);
    assert_eq!(p.lag().await.unwrap(), 0);
    p.snapshot_now().await.unwrap();
    p.shutdown().await.unwrap();
    assert!(!snapshot::path_in(snaps.path()).exists());
    let p = Projections::start(store.clone(), options(Some(snaps.path())))
        .await
        .unwrap();
    assert_eq!(p.started_from(), &StartedFrom::Scratch { discarded: None });
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_while_catching_up_leaves_a_snapshot_to_resume_from() {
    let (a, snaps) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store: Arc<dyn EventStore> = open_log(a.path()).await;
    let mut fams = publish_families(store.as_ref(), 50).await;
    for (i, fam) in fams.iter_mut().enumerate() {
        fam.publish(store.as_ref(), more(i, 60)).await;
    }
    // Asked at once: the fold may be anywhere in its catch-up (or done with it).
    let p = Projections::start(store.clone(), options(Some(snaps.path())))
        .await
        .unwrap();
    let asked = p.clone();
    let snapshot = tokio::spawn(async move { asked.snapshot_now().await });
    p.shutdown().await.unwrap();
    // Answered either way: written, or refused because the fold was shut down first.
    let _ = snapshot.await.unwrap();
    let p = Projections::start(store.clone(), options(Some(snaps.path())))
        .await
        .unwrap();
    assert!(
        matches!(p.started_from(), StartedFrom::Snapshot { .. }),
        "{:?}",
        p.started_from()
    );
    p.wait_for(head(store.as_ref()).await, WAIT).await.unwrap();
    assert_matches_rebuild(store.as_ref(), &p).await;
    p.shutdown().await.unwrap();
}
