//! `keten replay --data DIR`: fold the whole log from scratch and write a fresh snapshot.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use keten_log::{FileLog, FileLogOptions};
use keten_projection::{ProjectionOptions, Projections};

use crate::cli::ReplayArgs;
use crate::cmd::serve::runtime;
use crate::settings::{log_dir, snapshot_dir};

pub fn run(args: ReplayArgs) -> Result<()> {
    runtime()?.block_on(replay(args))
}

async fn replay(args: ReplayArgs) -> Result<()> {
    let dir = log_dir(&args.data);
    if !dir.is_dir() {
        anyhow::bail!(
            "{} holds no log (expected {})",
            args.data.display(),
            dir.display()
        );
    }
    let log = FileLog::open(&dir, FileLogOptions::default())
        .await
        .with_context(|| format!("cannot open the log in {}", dir.display()))?;
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} events ({per_sec}, {eta} left)",
    )?);
    let report = keten_projection::rebuild(&log, |done, total| {
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
    let store: Arc<dyn keten_log::EventStore> = Arc::new(log.clone());
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
