//! `keten replay --data DIR`: fold the whole log from scratch and write a fresh snapshot.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use keten_log::{CommitTime, FileLog, FileLogOptions};
use keten_projection::sealed::Sealed;
use keten_projection::{ProjectionOptions, Projections};

use crate::cli::ReplayArgs;
use crate::cmd::serve::runtime;
use crate::settings::{keys_dir, log_dir, snapshot_dir};

pub fn run(args: ReplayArgs) -> Result<()> {
    runtime()?.block_on(replay(args))
}

async fn replay(args: ReplayArgs) -> Result<()> {
    if let Some(until) = &args.until {
        let until = parse_time(until)?;
        return replay_until(&args, until).await;
    }
    let dir = log_dir(&args.data);
    if !dir.is_dir() {
        anyhow::bail!(
            "{} holds no log (expected {})",
            args.data.display(),
            dir.display()
        );
    }
    let (log, sealed) = open_sealed(&args.data).await?;
    let bar = progress_bar()?;
    let report = keten_projection::rebuild(&sealed, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await;
    bar.finish_and_clear();
    let report = report.context("rebuild failed")?;
    println!(
        "folded {} events into {} families in {:.2?} ({:.0} events/s)",
        report.events,
        report.families,
        report.elapsed,
        report.events_per_second()
    );
    // The rebuilt plans replace the snapshot: the old one is removed and a fresh projection
    // writes its own from the same fold.
    let snapshots = snapshot_dir(&args.data);
    if snapshots.exists() {
        std::fs::remove_dir_all(&snapshots)
            .with_context(|| format!("cannot remove {}", snapshots.display()))?;
    }
    let store: Arc<dyn keten_log::EventStore> = Arc::new(sealed.clone());
    let projections = Projections::start(
        store,
        ProjectionOptions {
            snapshot_dir: Some(snapshots.clone()),
            ..ProjectionOptions::default()
        },
    )
    .await?;
    if let Some(last) = report.last_position {
        projections
            .wait_for(last, std::time::Duration::from_secs(3600))
            .await?;
    }
    // The rebuild and the projection service fold the same log by the same steps; a difference
    // would mean a fold that depends on more than the events.
    let differing: Vec<String> = report
        .views
        .iter()
        .filter(|v| projections.family(&v.family).as_deref() != Some(v.as_ref()))
        .map(|v| v.family.to_string())
        .collect();
    if projections.family_count() as u64 != report.families || !differing.is_empty() {
        bail!(
            "the rebuilt plans differ from the projection's for {} famil(ies), e.g. {:?}",
            differing.len().max(1),
            differing.first()
        );
    }
    projections.shutdown().await?;
    log.close().await?;
    println!(
        "the projection service folds the same {} families; wrote a fresh snapshot to {}",
        report.families,
        snapshots.display()
    );
    Ok(())
}

fn progress_bar() -> Result<ProgressBar> {
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} events ({per_sec}, {eta} left)",
    )?);
    Ok(bar)
}

/// An RFC 3339 moment as a commit time.
fn parse_time(text: &str) -> Result<CommitTime> {
    let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
        anyhow::anyhow!("--until `{text}` is not an RFC 3339 time (2026-03-01T12:00:00Z): {e}")
    })?;
    let micros = u64::try_from(t.timestamp_micros())
        .with_context(|| format!("--until `{text}` is before 1970"))?;
    Ok(CommitTime(micros))
}

/// Every projection as it stood at `until`, checked family by family against an as-of fold of
/// the family's own stream (two folds by different reads must agree), written as a snapshot
/// apart from the live one.
/// The log in `data` as the server reads it: families' payloads opened with their keys.
async fn open_sealed(data: &std::path::Path) -> Result<(FileLog, Sealed)> {
    let dir = log_dir(data);
    let log = FileLog::open(&dir, FileLogOptions::default())
        .await
        .with_context(|| format!("cannot open the log in {}", dir.display()))?;
    let keys_dir = keys_dir(data);
    let keys = keten_keys::FileKeyStore::open(&keys_dir)
        .await
        .with_context(|| format!("cannot open the key store in {}", keys_dir.display()))?;
    let keyring = keten_keys::Keyring::load(Arc::new(keys))
        .await
        .context("the key store does not load")?;
    let sealed = Sealed::new(Arc::new(log.clone()), keyring);
    Ok((log, sealed))
}

async fn replay_until(args: &ReplayArgs, until: CommitTime) -> Result<()> {
    let dir = log_dir(&args.data);
    if !dir.is_dir() {
        bail!(
            "{} holds no log (expected {})",
            args.data.display(),
            dir.display()
        );
    }
    let (log, sealed) = open_sealed(&args.data).await?;
    let bar = progress_bar()?;
    let report = keten_projection::rebuild_until(&sealed, Some(until), |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await;
    bar.finish_and_clear();
    let report = report.context("rebuild failed")?;
    for view in &report.views {
        let as_of =
            keten_projection::family_as_of(&sealed, &view.family, keten_log::Until::Time(until))
                .await?;
        if as_of.as_ref() != Some(view.as_ref()) {
            bail!(
                "family {} rebuilt up to {} differs from its as-of fold",
                view.family,
                keten_proof::utc(until.0)
            );
        }
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.data.join("projection-until"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    report.write_snapshot(&out)?;
    log.close().await?;
    println!(
        "folded {} events committed by {} (up to position {}) into {} families in {:.2?}; \
         each equals its family's as-of fold; wrote their snapshot to {}",
        report.events,
        keten_proof::utc(until.0),
        report
            .last_position
            .map_or("none".to_string(), |p| p.0.to_string()),
        report.families,
        report.elapsed,
        out.display()
    );
    Ok(())
}
