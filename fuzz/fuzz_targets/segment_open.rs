//! Opening a data directory: `verify_dir` (what `keten verify` runs) and `FileLog::open`, on
//! segments and an index checkpoint made from the input. Neither may panic: damage is an error.
//! And the two must agree: a directory that verifies opens, with the same events; a directory
//! that opens with a full check verifies after it is closed again.
//!
//! Input: a flag byte (see `keten_fuzz::Layout`: which checksums to repair, whether the last
//! file is `index.ckpt`), then the files, separated by `keten_fuzz::FILE_SEPARATOR`.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use keten_log::{
    Direction, EventStore, FileLog, FileLogOptions, LogIo, ReadFrom, Until, verify_dir,
};
use libfuzzer_sys::fuzz_target;

/// Writes as the real thing does, without the flushes and the preallocation (nothing here has
/// to survive a power cut, and every input would otherwise cost a few fsyncs).
#[derive(Debug)]
struct NoSync;

impl LogIo for NoSync {
    fn sync_data(&self, _: &std::fs::File) -> std::io::Result<()> {
        Ok(())
    }
    fn sync_all(&self, _: &std::fs::File) -> std::io::Result<()> {
        Ok(())
    }
    fn preallocate(&self, _: &std::fs::File, _: u64) -> std::io::Result<()> {
        Ok(())
    }
}

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    rt: tokio::runtime::Runtime,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        // tmpfs where there is one: the directory is rewritten for every input.
        let tmp = if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm")
        } else {
            tempfile::tempdir()
        }
        .expect("a temporary directory");
        let dir = tmp.path().join("log");
        std::fs::create_dir(&dir).expect("the log directory");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        Env { _tmp: tmp, dir, rt }
    })
}

fn options(full_check: bool) -> FileLogOptions {
    FileLogOptions {
        segment_size: 4096,
        full_check_on_open: full_check,
        // Open writes a checkpoint chunk after replaying this many events: exercise that too.
        checkpoint_interval: 2,
        io: Arc::new(NoSync),
        ..FileLogOptions::default()
    }
}

/// Opens, reads everything, closes; the number of events read, or why it did not open.
async fn open_and_read(dir: &Path, full_check: bool) -> Result<u64, keten_log::Error> {
    let log = FileLog::open(dir, options(full_check)).await?;
    let events = log
        .read_all(
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await;
    let head = log.head().await;
    let verified = log.verify().await;
    log.close().await?;
    let events = events?;
    let count = events.len() as u64;
    assert_eq!(
        head?.map(|p| p.0 + 1).unwrap_or(0),
        count,
        "head and read_all"
    );
    for (k, e) in events.iter().enumerate() {
        assert_eq!(e.position.0, k as u64, "positions are dense");
    }
    if full_check {
        assert_eq!(verified?, count, "verify after a full-check open");
    }
    Ok(count)
}

fuzz_target!(|input: &[u8]| {
    let env = env();
    let files = keten_fuzz::files_of(input);

    keten_fuzz::write_dir(&env.dir, &files);
    let verified = verify_dir(&env.dir);

    // Trusting the checkpoint: only must not panic (it does not re-read what the checkpoint
    // covers, so it may open a directory that `verify_dir` refuses).
    keten_fuzz::write_dir(&env.dir, &files);
    let _ = env.rt.block_on(open_and_read(&env.dir, false));

    keten_fuzz::write_dir(&env.dir, &files);
    let opened = env.rt.block_on(open_and_read(&env.dir, true));
    if let Ok(report) = &verified {
        let opened = opened
            .as_ref()
            .unwrap_or_else(|e| panic!("verify_dir passed ({report:?}) but open failed: {e}"));
        assert_eq!(*opened, report.events, "verify_dir and open count alike");
    }
    if let Ok(count) = opened {
        // Open cut any torn tail and closed cleanly: what it leaves verifies, whole.
        let after = verify_dir(&env.dir)
            .unwrap_or_else(|e| panic!("opened with {count} events, closed, then: {e}"));
        assert_eq!(after.events, count);
        assert_eq!(after.torn_tail, None);
    }
});
