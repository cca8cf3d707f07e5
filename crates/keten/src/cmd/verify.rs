//! `keten verify DATA_DIR`: walk the log's hash chain offline.

use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::VerifyArgs;
use crate::settings::log_dir;

pub fn run(args: VerifyArgs) -> Result<()> {
    // Accept the data directory (which holds `log/`) or the log directory itself.
    let dir = if log_dir(&args.data_dir).is_dir() {
        log_dir(&args.data_dir)
    } else {
        args.data_dir.clone()
    };
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    // verify_dir reports no progress of its own; a spinner shows it is alive on a large log.
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template(
        "{spinner} verifying {msg} ({elapsed})",
    )?);
    bar.set_message(dir.display().to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    let outcome = keten_log::verify_dir(&dir);
    bar.finish_and_clear();
    match outcome {
        Ok(report) => {
            println!(
                "ok: {} events in {} segments, head position {}, head hash {}",
                report.events,
                report.segments,
                report
                    .head
                    .map_or("none (empty log)".to_string(), |p| p.to_string()),
                report.head_hash
            );
            if let Some(t) = report.torn_tail {
                println!(
                    "note: a torn write of {} bytes at the end of {} (offset {}); the next open cuts it off",
                    t.bytes,
                    t.file.display(),
                    t.offset
                );
            }
            Ok(())
        }
        Err(e) => bail!("{} is damaged: {e}", dir.display()),
    }
}
