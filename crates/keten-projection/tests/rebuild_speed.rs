//! A quick local measure of `rebuild` from a cold log (the benchmark proper is keten-bench's):
//!
//! ```text
//! KETEN_REBUILD_FAMILIES=2000 KETEN_REBUILD_EVENTS_PER_FAMILY=100 \
//!   cargo test -p keten-projection --release --test rebuild_speed -- --ignored --nocapture
//! ```

mod support;

use std::sync::Arc;
use std::time::Instant;

use keten_domain::{ActionId, Event, GoalId, LifeDomain, MemberId, PartnerKind};
use keten_log::EventStore;
use keten_projection::{Projections, rebuild};
use support::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Valid events after a family's history: goals, actions committed and started, home visits.
fn filler(i: usize, n: usize) -> Vec<(keten_domain::Actor, Event)> {
    let yc = system("yc", PartnerKind::YouthCare);
    (0..n)
        .map(|k| {
            let g = GoalId::new(format!("g-{}", k / 4)).unwrap();
            let a = ActionId::new(format!("a-{}", k / 4)).unwrap();
            let on = d("2026-02-10");
            match k % 4 {
                0 => (
                    fm(i),
                    Event::GoalSet {
                        goal_id: g,
                        life_domain: LifeDomain::Finances,
                        description: "debts under control with a budget plan".into(),
                        target_date: Some(d("2026-09-01")),
                        occurred_on: on,
                    },
                ),
                1 => (
                    yc.clone(),
                    Event::ActionCommitted {
                        action_id: a,
                        goal_id: g,
                        partner_id: pid("yc"),
                        member_ids: vec![MemberId::new("p1").unwrap()],
                        intervention: None,
                        description: "budget coaching every week".into(),
                        start_on: d("2026-02-15"),
                        expected_end: d("2026-08-15"),
                        occurred_on: on,
                    },
                ),
                2 => (
                    yc.clone(),
                    Event::ActionStarted {
                        action_id: a,
                        occurred_on: d("2026-02-15"),
                    },
                ),
                _ => (
                    fm(i),
                    Event::HomeVisitRecorded {
                        occurred_on: d("2026-02-20"),
                    },
                ),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
async fn rebuild_speed_from_a_cold_log() {
    let families = env("KETEN_REBUILD_FAMILIES", 2000);
    let per_family = env("KETEN_REBUILD_EVENTS_PER_FAMILY", 100);
    // KETEN_REBUILD_LOG keeps the log in a directory of one's choice, written only once, so
    // that a profiler can watch the rebuild alone.
    let temp = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("KETEN_REBUILD_LOG").map(std::path::PathBuf::from);
    let dir = kept.as_deref().unwrap_or(temp.path());
    let written = kept
        .as_ref()
        .is_some_and(|d| d.join("written-by-rebuild-speed").exists());
    if !written {
        let log = open_log(dir).await;
        let store: &dyn EventStore = log.as_ref();
        let ids: Vec<usize> = (0..).filter(|i| i % 5 != 2).take(families).collect();
        let mut fams = Vec::new();
        for &i in &ids {
            let mut fam = Fam::new(fid(i));
            for step in history(i) {
                fam.publish(store, step).await;
            }
            fams.push(fam);
        }
        // Interleaved, as real traffic is: one chunk per family in turn.
        let mut remaining: Vec<(usize, Vec<_>)> = ids
            .iter()
            .zip(&fams)
            .map(|(&i, f)| {
                let n = per_family.saturating_sub(f.state.events_applied as usize);
                (i, filler(i, n))
            })
            .collect();
        let mut k = 0;
        while remaining.iter().any(|(_, r)| !r.is_empty()) {
            for ((_, rest), fam) in remaining.iter_mut().zip(fams.iter_mut()) {
                let take = rest.len().min(10);
                if take > 0 {
                    let chunk: Vec<_> = rest.drain(..take).collect();
                    fam.publish(store, chunk).await;
                }
            }
            k += 1;
        }
        let _ = k;
        Arc::try_unwrap(log).unwrap().close().await.unwrap();
        std::fs::write(dir.join("written-by-rebuild-speed"), b"").unwrap();
    }
    let log = open_log(dir).await;
    let store: Arc<dyn EventStore> = log.clone();
    let total = store.head().await.unwrap().unwrap().0 + 1;

    let cpu = cpu_seconds();
    let report = rebuild(store.as_ref(), |_, _| {}).await.unwrap();
    let cpu = cpu_seconds() - cpu;
    assert_eq!(report.events, total);
    println!(
        "rebuild: {} events, {} families in {:.3} s = {:.0} events/s; {:.2} CPU s = {:.2} us of CPU per event (load average now {})",
        report.events,
        report.families,
        report.elapsed.as_secs_f64(),
        report.events_per_second(),
        cpu,
        cpu * 1e6 / total as f64,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let again = rebuild(store.as_ref(), |_, _| {}).await.unwrap();
    println!(
        "rebuild (warm page cache): {:.0} events/s",
        again.events_per_second()
    );

    // Where the time goes: reading alone, decoding alone, folding alone.
    let started = Instant::now();
    let mut all = Vec::new();
    let mut next = 0u64;
    loop {
        let batch = store
            .read_all(
                keten_log::ReadFrom::At(keten_log::GlobalPosition(next)),
                keten_log::Direction::Forward,
                2048,
                keten_log::Until::Latest,
            )
            .await
            .unwrap();
        let Some(last) = batch.last() else { break };
        next = last.position.0 + 1;
        all.extend(batch);
    }
    let read = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let events: Vec<Event> = all
        .iter()
        .map(|r| keten_projection::stored::decode(r).unwrap().envelope.event)
        .collect();
    let decode = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let domain: Vec<Event> = all
        .iter()
        .map(|r| keten_domain::decode(&r.payload).unwrap())
        .collect();
    let domain_decode = started.elapsed().as_secs_f64();
    assert_eq!(domain, events);
    let started = Instant::now();
    let mut states: std::collections::HashMap<&str, keten_domain::FamilyState> = Default::default();
    for (r, e) in all.iter().zip(&events) {
        states.entry(r.stream.as_str()).or_default().evolve(e);
    }
    let fold = started.elapsed().as_secs_f64();
    let payload: usize = all.iter().map(|r| r.payload.len()).sum();
    println!(
        "read_all alone {:.0}/s, stored::decode (payload+metadata) alone {:.0}/s, keten_domain::decode (payload) alone {:.0}/s, evolve alone {:.0}/s; mean payload {} bytes",
        total as f64 / read,
        total as f64 / decode,
        total as f64 / domain_decode,
        total as f64 / fold,
        payload / all.len()
    );
    drop(states);
    drop((domain, events, all, report, again));

    let started = Instant::now();
    let p = Projections::start(store.clone(), Default::default())
        .await
        .unwrap();
    p.wait_for(
        keten_log::GlobalPosition(total - 1),
        std::time::Duration::from_secs(600),
    )
    .await
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "projection catch-up (Projections::start until wait_for the head returns): {:.0} events/s",
        total as f64 / secs
    );

    // What a snapshot costs and saves at this size.
    let snaps = tempfile::tempdir().unwrap();
    let options = keten_projection::ProjectionOptions {
        snapshot_dir: Some(snaps.path().to_path_buf()),
        snapshot_every: 0,
        ..keten_projection::ProjectionOptions::default()
    };
    let p = Projections::start(store.clone(), options.clone())
        .await
        .unwrap();
    p.wait_for(
        keten_log::GlobalPosition(total - 1),
        std::time::Duration::from_secs(600),
    )
    .await
    .unwrap();
    let started = Instant::now();
    p.shutdown().await.unwrap();
    let write = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(keten_projection::snapshot::path_in(snaps.path()))
        .unwrap()
        .len();
    let started = Instant::now();
    let p = Projections::start(store.clone(), options).await.unwrap();
    p.wait_for(
        keten_log::GlobalPosition(total - 1),
        std::time::Duration::from_secs(600),
    )
    .await
    .unwrap();
    let resume = started.elapsed().as_secs_f64();
    assert!(matches!(
        p.started_from(),
        keten_projection::StartedFrom::Snapshot { .. }
    ));
    println!(
        "snapshot: {:.1} MB written in {write:.3} s; a start from it takes {resume:.3} s (from scratch {secs:.3} s)",
        size as f64 / 1e6
    );
}

/// User plus system CPU time of this process so far (all threads), from /proc: the machine is
/// shared, so CPU per event says more than wall-clock rate.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime) are 11 and 12 after the name.
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}
