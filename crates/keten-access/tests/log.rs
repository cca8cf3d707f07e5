//! The access log through a real FileLog: records come back per family and over all, after a
//! reopen, and never in another family's list.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use keten_access::{
    AccessAction, AccessError, AccessLog, AccessRecord, AccessResult, Logged, SEARCH_STREAM,
    stream_id,
};
use keten_domain::{DataClass, FamilyId, PartnerId, PartnerKind, PersonId, Role};
use keten_log::{
    Direction, EventId, EventStore, EventType, ExpectedVersion, FileLog, FileLogOptions,
    GlobalPosition, ProposedEvent, ReadFrom, StreamId, Until,
};

fn fam(id: &str) -> FamilyId {
    FamilyId::new(id).unwrap()
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 3, 10, minute, 0).unwrap()
}

fn rec(family: Option<&str>, action: AccessAction, minute: u32) -> AccessRecord {
    AccessRecord {
        at: at(minute),
        person: PersonId::new("agent-17").unwrap(),
        role: Role::PartnerSystem,
        partner: PartnerId::new("politie-ams").unwrap(),
        partner_kind: PartnerKind::Police,
        partner_name: "Politie Amsterdam".into(),
        family: family.map(fam),
        classes: vec![DataClass::Plan, DataClass::Police],
        action,
        method: "keten.v1.Query/GetPlan".into(),
        purpose: Some("safety check".into()),
        result: AccessResult::Granted,
        emergency: None,
        families_returned: if action == AccessAction::Search { 3 } else { 0 },
    }
}

/// Durable appends (fsync), as in production: this is the log the durability promise rests on.
async fn open(dir: &std::path::Path) -> FileLog {
    FileLog::open(dir, FileLogOptions::default()).await.unwrap()
}

fn records(logged: &[Logged]) -> Vec<AccessRecord> {
    logged.iter().map(|l| l.record.clone()).collect()
}

#[tokio::test]
async fn records_survive_a_reopen_and_read_back_per_family_and_over_all() {
    let dir = tempfile::tempdir().unwrap();
    let written = vec![
        rec(Some("fam-a"), AccessAction::Create, 1),
        rec(Some("fam-b"), AccessAction::Read, 2),
        rec(None, AccessAction::Search, 3),
        rec(Some("fam-a"), AccessAction::Read, 4),
        rec(Some("fam-a"), AccessAction::Export, 5),
    ];
    let mut positions = Vec::new();
    {
        let log = open(dir.path()).await;
        let access = AccessLog::new(Arc::new(log.clone()));
        for r in &written {
            let synced_before = log.stats().syncs;
            positions.push(access.record(r).await.unwrap());
            assert!(
                log.stats().syncs > synced_before,
                "record returned before its append was synced to disk"
            );
        }
        drop(access);
        log.close().await.unwrap();
    }
    assert_eq!(
        positions,
        (0..5).map(GlobalPosition).collect::<Vec<_>>(),
        "one store of its own: the records are positions 0..5"
    );

    let log = open(dir.path()).await;
    let access = AccessLog::new(Arc::new(log));

    let all = access.read(None, 100).await.unwrap();
    assert_eq!(records(&all), written);
    assert_eq!(
        all.iter().map(|l| l.position).collect::<Vec<_>>(),
        positions
    );

    let a = access.for_family(&fam("fam-a")).await.unwrap();
    assert_eq!(
        records(&a),
        vec![written[0].clone(), written[3].clone(), written[4].clone()]
    );
    assert_eq!(
        a.iter().map(|l| l.position).collect::<Vec<_>>(),
        vec![positions[0], positions[3], positions[4]]
    );
    assert_eq!(
        records(&access.for_family(&fam("fam-b")).await.unwrap()),
        vec![written[1].clone()]
    );
    assert!(access.for_family(&fam("fam-c")).await.unwrap().is_empty());

    // Paging over all: from is inclusive, a limit is honoured.
    let page = access.read(Some(GlobalPosition(2)), 2).await.unwrap();
    assert_eq!(records(&page), written[2..4].to_vec());

    assert_eq!(access.verify().await.unwrap(), 5);
}

#[tokio::test]
async fn a_record_for_one_family_never_shows_for_another() {
    let dir = tempfile::tempdir().unwrap();
    let access = AccessLog::new(Arc::new(open(dir.path()).await));
    // "search" is a valid family id: it must not collide with the stream of searches.
    for (i, family) in ["fam-a", "fam-b", "search", "fam-a"].iter().enumerate() {
        access
            .record(&rec(Some(family), AccessAction::Read, i as u32))
            .await
            .unwrap();
    }
    access
        .record(&rec(None, AccessAction::Search, 9))
        .await
        .unwrap();

    for family in ["fam-a", "fam-b", "search"] {
        let got = access.for_family(&fam(family)).await.unwrap();
        assert!(!got.is_empty());
        assert!(
            got.iter()
                .all(|l| l.record.family.as_ref() == Some(&fam(family))),
            "for_family({family}) returned another family's record: {got:?}"
        );
    }
    assert_eq!(access.for_family(&fam("fam-a")).await.unwrap().len(), 2);
    assert_eq!(access.for_family(&fam("search")).await.unwrap().len(), 1);
    assert_ne!(stream_id(Some(&fam("search"))).as_str(), SEARCH_STREAM);
}

#[tokio::test]
async fn record_many_returns_each_records_position_in_the_order_given() {
    let dir = tempfile::tempdir().unwrap();
    let access = AccessLog::new(Arc::new(open(dir.path()).await));
    let batch = vec![
        rec(None, AccessAction::Search, 1),
        rec(Some("fam-b"), AccessAction::Search, 1),
        rec(Some("fam-a"), AccessAction::Search, 1),
        rec(Some("fam-b"), AccessAction::Read, 2),
    ];
    let positions = access.record_many(&batch).await.unwrap();
    assert_eq!(positions.len(), batch.len());
    let all = access.read(None, 100).await.unwrap();
    for (r, p) in batch.iter().zip(&positions) {
        let stored = all.iter().find(|l| l.position == *p).unwrap();
        assert_eq!(&stored.record, r);
    }
    assert_eq!(
        records(&access.for_family(&fam("fam-b")).await.unwrap()),
        vec![batch[1].clone(), batch[3].clone()]
    );
}

#[tokio::test]
async fn a_record_is_stored_in_its_familys_stream_as_json_typed_by_its_action() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()).await);
    let access = AccessLog::new(log.clone());
    let r = rec(Some("fam-a"), AccessAction::Export, 1);
    access.record(&r).await.unwrap();
    let stored = log
        .read_all(ReadFrom::Start, Direction::Forward, 10, Until::Latest)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].stream.as_str(), "access-family-fam-a");
    assert_eq!(stored[0].event_type.as_str(), "export");
    assert!(stored[0].metadata.is_empty());
    let json: serde_json::Value = serde_json::from_slice(&stored[0].payload).unwrap();
    assert_eq!(json["family"], "fam-a");
    assert_eq!(json["action"], "export");
    assert_eq!(json["result"]["outcome"], "granted");
    assert_eq!(json["classes"], serde_json::json!(["plan", "police"]));
    assert_eq!(json["at"], "2027-03-03T10:01:00Z");
}

#[tokio::test]
async fn a_record_that_does_not_match_its_stream_is_a_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()).await);
    // Written by hand into fam-b's stream, but about fam-a.
    let payload = serde_json::to_vec(&rec(Some("fam-a"), AccessAction::Read, 1)).unwrap();
    log.append(
        &StreamId::new("access-family-fam-b").unwrap(),
        ExpectedVersion::Any,
        vec![ProposedEvent {
            id: EventId(uuid::Uuid::from_u128(1)),
            event_type: EventType::new("read").unwrap(),
            metadata: Vec::new(),
            payload,
        }],
    )
    .await
    .unwrap();
    let access = AccessLog::new(log);
    assert!(matches!(
        access.for_family(&fam("fam-b")).await,
        Err(AccessError::Decode { .. })
    ));
}

#[tokio::test]
async fn a_granted_emergency_access_without_a_reason_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let access = AccessLog::new(Arc::new(open(dir.path()).await));
    let mut r = rec(Some("fam-a"), AccessAction::Read, 1);
    r.emergency = Some("  ".into());
    assert!(matches!(
        access.record(&r).await,
        Err(AccessError::InvalidRecord(_))
    ));
    // Refused, it is recorded all the same: a refused attempt is never lost.
    r.result = AccessResult::Refused {
        reason: "no reason given".into(),
    };
    access.record(&r).await.unwrap();
    assert_eq!(access.read(None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn reads_page_through_more_records_than_one_store_call_returns() {
    let dir = tempfile::tempdir().unwrap();
    let access = AccessLog::new(Arc::new(open(dir.path()).await));
    let mut batch: Vec<AccessRecord> = (0..1100)
        .map(|i| rec(Some("fam-a"), AccessAction::Read, (i % 60) as u32))
        .collect();
    batch.insert(500, rec(Some("fam-b"), AccessAction::Read, 0));
    access.record_many(&batch).await.unwrap();

    let a = access.for_family(&fam("fam-a")).await.unwrap();
    assert_eq!(a.len(), 1100);
    assert!(a.windows(2).all(|w| w[0].position < w[1].position));
    let all = access.read(None, 5000).await.unwrap();
    assert_eq!(all.len(), 1101);
    assert_eq!(
        access
            .read(Some(GlobalPosition(100)), 1050)
            .await
            .unwrap()
            .len(),
        1001
    );
}

#[tokio::test]
async fn concurrent_records_all_land_at_positions_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let access = AccessLog::new(Arc::new(open(dir.path()).await));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let access = access.clone();
            let family = format!("fam-{}", i % 4);
            tokio::spawn(async move {
                access
                    .record(&rec(Some(&family), AccessAction::Read, i))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut positions = Vec::new();
    for t in tasks {
        positions.push(t.await.unwrap());
    }
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), 40);
    for i in 0..4 {
        assert_eq!(
            access
                .for_family(&fam(&format!("fam-{i}")))
                .await
                .unwrap()
                .len(),
            10
        );
    }
}

#[tokio::test]
async fn a_read_over_all_passes_over_streams_that_are_not_access_streams() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()).await);
    let access = AccessLog::new(log.clone());
    access
        .record(&rec(Some("fam-a"), AccessAction::Read, 1))
        .await
        .unwrap();
    log.append(
        &StreamId::new("family-fam-a").unwrap(),
        ExpectedVersion::Any,
        vec![ProposedEvent {
            id: EventId(uuid::Uuid::from_u128(7)),
            event_type: EventType::new("FamilyRegistered").unwrap(),
            metadata: Vec::new(),
            payload: b"{}".to_vec(),
        }],
    )
    .await
    .unwrap();
    access
        .record(&rec(Some("fam-a"), AccessAction::Export, 2))
        .await
        .unwrap();
    let all = access.read(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|l| l.record.action).collect::<Vec<_>>(),
        vec![AccessAction::Read, AccessAction::Export]
    );
    assert_eq!(all[1].position, GlobalPosition(2));
}
