//! The access log in its default mode (`Durability::Interval`): a simulated power loss cuts the
//! unflushed records, and the loss is itself written into the access log, in the chain, at the
//! first lost position, where readers of access records pass over it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use keten_access::{AccessAction, AccessLog, AccessRecord, AccessResult, LOSS_EVENT, LOSS_STREAM};
use keten_domain::{DataClass, FamilyId, PartnerId, PartnerKind, PersonId, Role};
use keten_log::{
    Direction, Durability, EventStore, FileLog, FileLogOptions, GlobalPosition, ReadFrom, Until,
};

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 3, 10, minute, 0).unwrap()
}

fn read_of(family: &str, minute: u32) -> AccessRecord {
    AccessRecord {
        at: at(minute),
        person: PersonId::new("agent-17").unwrap(),
        role: Role::PartnerSystem,
        partner: PartnerId::new("politie-ams").unwrap(),
        partner_kind: PartnerKind::Police,
        partner_name: "Politie Amsterdam".into(),
        family: Some(FamilyId::new(family).unwrap()),
        classes: vec![DataClass::Plan],
        action: AccessAction::Read,
        method: "keten.v1.Coordination/GetFamilyPlan".into(),
        purpose: None,
        result: AccessResult::Granted,
        emergency: None,
        families_returned: 0,
    }
}

/// No flush happens within the test: everything recorded after open is unflushed.
fn interval() -> FileLogOptions {
    FileLogOptions {
        durability: Durability::Interval(Duration::from_secs(10)),
        ..FileLogOptions::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test]
async fn a_power_loss_cut_is_recorded_in_the_access_log_at_the_first_lost_position() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let log = FileLog::open(&live, interval()).await.unwrap();
    let access = AccessLog::new(Arc::new(log.clone()));
    for m in 0..4 {
        access.record(&read_of("fam-a", m)).await.unwrap();
    }
    log.close().await.unwrap();
    let segment = live.join("00000000000000000000.log");
    let flushed = std::fs::metadata(&segment).unwrap().len();

    let log = FileLog::open(&live, interval()).await.unwrap();
    let access = AccessLog::new(Arc::new(log.clone()));
    for m in 4..8 {
        access.record(&read_of("fam-a", m)).await.unwrap();
    }
    // The power fails: the copy holds what the page cache had, and the disk lost a page
    // just after the flush mark.
    let copy = root.path().join("copy");
    copy_dir(&live, &copy);
    log.close().await.unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.join("00000000000000000000.log"))
            .unwrap();
        f.write_all_at(&[0u8; 64], flushed + 8).unwrap();
    }

    let log = FileLog::open(&copy, interval()).await.unwrap();
    let cut = log.tail_cut().expect("the unflushed tail was cut").clone();
    assert!(cut.unflushed);
    assert_eq!(cut.position, 4, "the four flushed records are kept");
    assert!(
        cut.records >= 3,
        "records after the hole are counted: {cut:?}"
    );
    let access = AccessLog::new(Arc::new(log.clone()));
    let noted = access
        .record_tail_cut(&cut, at(30))
        .await
        .unwrap()
        .expect("a note");
    assert_eq!(
        noted,
        GlobalPosition(4),
        "the note takes the first lost position"
    );

    let raw = log
        .read_all(ReadFrom::At(noted), Direction::Forward, 1, Until::Latest)
        .await
        .unwrap();
    assert_eq!(raw[0].stream.as_str(), LOSS_STREAM);
    assert_eq!(raw[0].event_type.as_str(), LOSS_EVENT);
    let note: serde_json::Value = serde_json::from_slice(&raw[0].payload).unwrap();
    assert_eq!(note["first_lost_position"], 4);
    assert_eq!(note["offset"], cut.offset);
    assert_eq!(note["bytes_lost"], cut.bytes);

    // Readers of access records pass over the note; the chain covers it.
    let family = access
        .for_family(&FamilyId::new("fam-a").unwrap())
        .await
        .unwrap();
    let minutes: Vec<_> = family.iter().map(|l| l.record.at).collect();
    assert_eq!(minutes, (0..4).map(at).collect::<Vec<_>>());
    assert_eq!(access.read(None, 100).await.unwrap().len(), 4);
    assert_eq!(access.verify().await.unwrap(), 5);
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_torn_write_that_was_never_acknowledged_is_not_noted() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path(), FileLogOptions::default())
        .await
        .unwrap();
    let access = AccessLog::new(Arc::new(log.clone()));
    let cut = keten_log::TailCut {
        file: dir.path().join("00000000000000000000.log"),
        offset: 128,
        position: 0,
        bytes: 10,
        records: 0,
        unflushed: false,
        reason: "a torn write".into(),
    };
    assert_eq!(access.record_tail_cut(&cut, at(1)).await.unwrap(), None);
    assert_eq!(log.head().await.unwrap(), None, "nothing written");
    log.close().await.unwrap();
}
