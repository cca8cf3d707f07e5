//! One family folded from its own stream: watched as it changes, and as of a position or a
//! time. At every version the watch and the as-of read must agree exactly.
// The test kit varies families by `i % n`; written alike everywhere, it reads as one table.
#![allow(clippy::manual_is_multiple_of)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use keten_log::{CommitTime, Direction, EventStore, ReadFrom, StreamVersion, Until};
use keten_projection::{Error, date_of, family_as_of, stored, watch_family};
use support::*;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_family_delivers_every_change_in_order_while_another_task_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    let mut fams = publish_families(store.as_ref(), 3).await;
    let now = fams[1].version.unwrap();

    let mut watch = watch_family(store.clone(), fid(1)).await.unwrap();
    let first = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.version, now);
    assert_eq!(first.state, fams[1].state);

    // Another task appends to this family (one event per append, and some in one append) and
    // to others in between.
    let appends = 12;
    let writer = {
        let store = store.clone();
        let mut mine = std::mem::replace(&mut fams[1], Fam::new(fid(1)));
        let mut other = std::mem::replace(&mut fams[0], Fam::new(fid(0)));
        tokio::spawn(async move {
            for k in 0..appends {
                let n = if k % 4 == 3 { 3 } else { 1 };
                mine.publish(store.as_ref(), more(1, n)).await;
                other.publish(store.as_ref(), more(0, 1)).await;
            }
            mine
        })
    };
    let mut seen = vec![first];
    let expected_changes = (0..appends)
        .map(|k| if k % 4 == 3 { 3 } else { 1 })
        .sum::<u64>();
    while (seen.len() as u64) < expected_changes + 1 {
        let view = tokio::time::timeout(WAIT, watch.next())
            .await
            .expect("a change in time")
            .expect("the watch goes on")
            .unwrap();
        seen.push(view);
    }
    let mine = writer.await.unwrap();
    for pair in seen.windows(2) {
        assert_eq!(
            pair[1].version.0,
            pair[0].version.0 + 1,
            "no change skipped"
        );
        assert!(pair[1].position > pair[0].position);
    }
    let last = seen.last().unwrap();
    assert_eq!(Some(last.version), mine.version);
    assert_eq!(last.state, mine.state);
    // At every version the watch agrees with the as-of fold at that position.
    for view in &seen {
        let as_of = family_as_of(store.as_ref(), &fid(1), Until::Position(view.position))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(as_of, **view);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_an_unknown_family_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    publish_families(store.as_ref(), 1).await;
    assert!(matches!(
        watch_family(store.clone(), fid(7)).await,
        Err(Error::UnknownFamily(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn family_as_of_a_position_and_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    let fams = publish_families(store.as_ref(), 4).await;
    let stream = stored::stream_id(&fid(2));
    let events = store
        .read_stream(
            &stream,
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await
        .unwrap();
    assert_eq!(Some(events.last().unwrap().version), fams[2].version);

    // Before its first event the family did not exist.
    let first = &events[0];
    if first.position.0 > 0 {
        let before = keten_log::GlobalPosition(first.position.0 - 1);
        assert_eq!(
            family_as_of(store.as_ref(), &fid(2), Until::Position(before))
                .await
                .unwrap(),
            None
        );
    }
    // At each of its events, and between them (at another family's event), it stands at the
    // last of its own events so far.
    let all = store
        .read_all(
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await
        .unwrap();
    let mut own = 0usize;
    for e in &all {
        if e.stream == stream {
            own += 1;
        }
        let view = family_as_of(store.as_ref(), &fid(2), Until::Position(e.position))
            .await
            .unwrap();
        match own {
            0 => assert_eq!(view, None),
            n => {
                let view = view.unwrap();
                assert_eq!(view.version, StreamVersion(n as u64 - 1));
                assert_eq!(view.position, events[n - 1].position);
                assert_eq!(view.state.events_applied, n as u64);
            }
        }
    }

    // By time: at each event's commit time the family includes every event committed by then.
    for e in &events {
        let view = family_as_of(store.as_ref(), &fid(2), Until::Time(e.committed_at))
            .await
            .unwrap()
            .unwrap();
        let last_by_then = events
            .iter()
            .rfind(|o| o.committed_at <= e.committed_at)
            .unwrap();
        assert_eq!(view.version, last_by_then.version);
        assert!(view.committed_at <= e.committed_at);
    }
    // Before the first commit: nothing; long after: everything.
    assert_eq!(
        family_as_of(
            store.as_ref(),
            &fid(2),
            Until::Time(CommitTime(first.committed_at.0 - 1))
        )
        .await
        .unwrap(),
        None
    );
    let latest = family_as_of(
        store.as_ref(),
        &fid(2),
        Until::Time(CommitTime(u64::MAX / 2)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(latest.state, fams[2].state);
}

#[test]
fn date_of_is_the_utc_calendar_day() {
    // 2026-03-01T00:00:00Z and one microsecond before it.
    let midnight = 1_772_323_200_000_000u64;
    assert_eq!(date_of(CommitTime(midnight)), d("2026-03-01"));
    assert_eq!(date_of(CommitTime(midnight - 1)), d("2026-02-28"));
    assert_eq!(date_of(CommitTime(0)), d("1970-01-01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_event_reads_back_with_who_published_it() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    let fams = publish_families(store.as_ref(), 1).await;
    let event = keten_domain::Event::HomeVisitRecorded {
        occurred_on: d("2026-02-03"),
    };
    let meta = stored::EventMetadata {
        correlation_id: Some("req-42".into()),
        purpose: Some("plan coordination".into()),
        ..stored::EventMetadata::from_actor(&fm(0))
    };
    let id = event_id();
    let proposed = stored::encode(id, &event, &meta);
    assert_eq!(proposed.event_type.as_str(), "HomeVisitRecorded");
    let stream = stored::stream_id(&fid(0));
    assert_eq!(stream.as_str(), "family-fam-00000");
    assert_eq!(stored::family_of(&stream), Some(fid(0)));
    assert_eq!(
        stored::family_of(&keten_log::StreamId::new("other-1").unwrap()),
        None
    );
    let written = store
        .append(
            &stream,
            keten_log::ExpectedVersion::Exact(fams[0].version.unwrap()),
            vec![proposed],
        )
        .await
        .unwrap();
    let recorded = store
        .read_stream(
            &stream,
            ReadFrom::End,
            Direction::Backward,
            1,
            Until::Latest,
        )
        .await
        .unwrap()
        .remove(0);
    let back = stored::decode(&recorded).unwrap();
    assert_eq!(back.family, fid(0));
    assert_eq!(back.id, id);
    assert_eq!(back.version, written.last_version);
    assert_eq!(back.position, written.last_position);
    assert_eq!(back.committed_at, written.committed_at);
    assert_eq!(back.envelope.schema, keten_domain::CURRENT_SCHEMA);
    assert_eq!(back.envelope.event, event);
    assert_eq!(back.metadata, meta);
    assert_eq!(back.metadata.actor(), fm(0));
}
