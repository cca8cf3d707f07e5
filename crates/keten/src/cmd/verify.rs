//! `keten verify DATA_DIR`: walk the log's hash chain offline.

use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::VerifyArgs;
use crate::settings::log_dir;

pub fn run(args: VerifyArgs) -> Result<()> {
    if let Some(url) = args.data_dir.to_str().filter(|s| s.starts_with("nats://")) {
        return verify_nats(url, &args.nats_stream);
    }
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

/// Walks the JetStream stream with a fresh index and names the first break. Verifying only
/// reads, so the servers' fsync setting is not this command's concern, and a missing stream is
/// not created.
fn verify_nats(url: &str, stream: &str) -> Result<()> {
    let store = crate::cmd::serve::StoreArgs {
        store: Some(url.to_string()),
        nats_stream: Some(stream.to_string()),
        nats_accept_ack_before_fsync: true,
        ..Default::default()
    };
    let (url, mut opts) =
        crate::cmd::serve::nats_store(&store, Default::default())?.expect("a nats:// store");
    opts.create = false;
    let what = format!("JetStream stream `{stream}` at {url}");
    crate::cmd::serve::runtime()?.block_on(async {
        use keten_log::EventStore;
        // connect reads the whole stream into its index, checking the chain: a damaged stream
        // is named here already.
        let log = keten_nats::NatsLog::connect(&url, opts)
            .await
            .map_err(|e| anyhow::anyhow!("{what} is damaged or unreachable: {e}"))?;
        match log.verify().await {
            Ok(events) => {
                println!("ok: {events} events in {what}");
                Ok(())
            }
            // The API's Corrupt names a byte offset in a file; here it is a stream sequence.
            Err(keten_log::Error::Corrupt {
                offset,
                position,
                reason,
                ..
            }) => bail!(
                "{what} is damaged at stream sequence {offset} (global position {position}): {reason}"
            ),
            Err(e) => bail!("{what} is damaged: {e}"),
        }
    })
}
