//! Crash test: a child process appends under load and is killed with SIGKILL at random moments,
//! again and again on the same directory. After each kill the parent opens the log itself and
//! checks that every append the child acknowledged (a line on its stdout, written only after
//! `append` returned) is there, at its position and version, with its id, in order, with a valid
//! chain, and that nothing an earlier recovery kept has gone.
//!
//! The child is this test binary run again with `--exact crash_child --ignored`, so it works the
//! same under `cargo test` and `cargo nextest`. Randomness is seeded: the seed is printed and
//! `KETEN_CRASH_SEED=<seed>` replays a run's kill points (not the child's timing, which is the
//! point of the test).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keten_log::{
    Direction, Error, EventId, EventStore, EventType, ExpectedVersion, FileLog, FileLogOptions,
    GlobalPosition, ProposedEvent, ReadFrom, RecordedEvent, StreamId, StreamVersion, Until,
};

const CHILD_TEST: &str = "crash_child";
const ENV_DIR: &str = "KETEN_CRASH_CHILD_DIR";
const ENV_CHILD_SEED: &str = "KETEN_CRASH_CHILD_SEED";
const ENV_SEED: &str = "KETEN_CRASH_SEED";

const ROUNDS: u32 = 20;
/// Streams owned by one appender each, so their exact expected versions always hold.
const OWN_STREAMS: usize = 4;
/// Appenders that race for one shared stream with exact expected versions: losers get
/// `WrongExpectedVersion` and retry, so the kill also lands amid conflicts.
const SHARED_APPENDERS: usize = 2;
const SHARED_STREAM: &str = "crash-shared";
/// Small segments, so kills also land around segment rolls.
const SEGMENT_SIZE: u64 = 256 << 10;
/// A checkpoint at nearly every roll, so kills also land amid index checkpoints.
const CHECKPOINT_INTERVAL: u64 = 300;

const READY: &str = "KETEN-CRASH-READY";
const ACK: &str = "KETEN-CRASH-ACK ";

/// xorshift64*: enough randomness for kill points and batch sizes, with no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn options() -> FileLogOptions {
    FileLogOptions {
        segment_size: SEGMENT_SIZE,
        checkpoint_interval: CHECKPOINT_INTERVAL,
        ..FileLogOptions::default()
    }
}

/// The payload is a function of the id, so the parent can check content it never saw.
fn payload_for(id: EventId, len: usize) -> Vec<u8> {
    id.0.as_bytes().iter().copied().cycle().take(len).collect()
}

fn payload_matches(id: EventId, payload: &[u8]) -> bool {
    payload
        .iter()
        .zip(id.0.as_bytes().iter().cycle())
        .all(|(a, b)| a == b)
}

// ---------------------------------------------------------------------------------------------
// The child.

#[test]
#[ignore = "the child half of sigkill_loses_no_acknowledged_event, which starts it"]
fn crash_child() {
    // Run by hand (`--ignored`) without the parent, it has nothing to do.
    let Some(dir) = std::env::var_os(ENV_DIR) else {
        return;
    };
    let seed: u64 = std::env::var(ENV_CHILD_SEED)
        .expect("child seed")
        .parse()
        .expect("child seed is a number");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(child(PathBuf::from(dir), seed));
}

async fn child(dir: PathBuf, seed: u64) {
    let log = Arc::new(FileLog::open(&dir, options()).await.expect("child: open"));
    say(READY);
    let mut tasks = Vec::new();
    for t in 0..OWN_STREAMS + SHARED_APPENDERS {
        let log = Arc::clone(&log);
        let rng = Rng::new(seed ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        tasks.push(tokio::spawn(appender(log, t, rng)));
    }
    for t in tasks {
        t.await.expect("child: appender panicked");
    }
}

async fn appender(log: Arc<FileLog>, task: usize, mut rng: Rng) {
    let shared = task >= OWN_STREAMS;
    let stream = if shared {
        StreamId::new(SHARED_STREAM).unwrap()
    } else {
        StreamId::new(format!("crash-own-{task}")).unwrap()
    };
    let event_type = EventType::new("CrashTested").unwrap();
    // Earlier rounds may have left events that were durable but never acknowledged: start from
    // what the log says, not from what the parent saw.
    let mut version = log
        .stream_version(&stream)
        .await
        .expect("child: stream_version");
    // The parent kills the child long before this; the cap only stops an orphan.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let n = match rng.below(4) {
            0 => 1 + rng.below(8) as usize,
            _ => 1,
        };
        let events: Vec<ProposedEvent> = (0..n)
            .map(|_| {
                let id = EventId(uuid::Uuid::from_u128(
                    u128::from(rng.next()) << 64 | u128::from(rng.next()),
                ));
                ProposedEvent {
                    id,
                    event_type: event_type.clone(),
                    metadata: format!("{{\"task\":{task}}}").into_bytes(),
                    payload: payload_for(id, rng.below(700) as usize),
                }
            })
            .collect();
        let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
        let expected = match version {
            None => ExpectedVersion::NoStream,
            Some(v) => ExpectedVersion::Exact(v),
        };
        match log.append(&stream, expected, events).await {
            Ok(r) => {
                assert_eq!(
                    r.last_version.0 - r.first_version.0 + 1,
                    n as u64,
                    "child: versions of a {n}-event append"
                );
                assert_eq!(
                    r.first_version.0,
                    version.map_or(0, |v| v.0 + 1),
                    "child: first version after expecting {expected}"
                );
                version = Some(r.last_version);
                say(&format!(
                    "{ACK}{stream} {} {} {} {} {}",
                    r.first_version.0,
                    r.last_version.0,
                    r.first_position.0,
                    r.last_position.0,
                    ids.join(",")
                ));
            }
            Err(Error::WrongExpectedVersion { actual, .. }) if shared => version = actual,
            Err(e) => panic!("child: append to {stream} expecting {expected}: {e}"),
        }
    }
}

/// One whole line per write, flushed: the parent counts a line as an acknowledgement only when
/// its newline has arrived.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A dead parent (broken pipe) must stop the child rather than leave it appending.
    out.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| out.flush())
        .expect("child: stdout");
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// One event the child acknowledged.
#[derive(Clone, Debug)]
struct Acked {
    stream: String,
    version: u64,
    position: u64,
    id: String,
}

/// Kills the child if the parent fails half-way, so no orphan goes on writing.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigkill_loses_no_acknowledged_event() {
    let seed = std::env::var(ENV_SEED)
        .ok()
        .map(|s| s.parse::<u64>().expect("KETEN_CRASH_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (replay the kill points with {ENV_SEED}={seed})");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let began = Instant::now();
    let mut acked: Vec<Acked> = Vec::new();
    let mut kept: Vec<(String, u64, String)> = Vec::new();
    let (mut torn_total, mut torn_rounds) = (0u64, 0u32);
    for round in 0..ROUNDS {
        let ctx = format!("seed {seed}, round {round}");
        // Mostly a kill after 1..600 acks; a third of those wait a little past the last ack to
        // land mid-write or mid-flush rather than just after an acknowledgement. Now and then
        // a kill right after the child opened the log, or one within a few milliseconds of its
        // start, which can land amid its recovery.
        let kill = match rng.below(10) {
            0 => Kill::AfterSpawn(Duration::from_micros(rng.below(8_000))),
            1 => Kill::AfterAcks(0, Duration::ZERO),
            _ => Kill::AfterAcks(
                1 + rng.below(600) as usize,
                if rng.below(3) == 0 {
                    Duration::from_micros(rng.below(3_000))
                } else {
                    Duration::ZERO
                },
            ),
        };
        let new = run_child(dir.path(), rng.next(), kill, &ctx);
        let new_events: usize = new.len();
        acked.extend(new);

        let (log, torn) = rt.block_on(check(dir.path(), &acked, &kept, &ctx));
        eprintln!(
            "round {round}: {kill:?}: {new_events} events acknowledged, log holds {}, \
             recovery cut a torn tail of {torn} bytes",
            log.len()
        );
        kept = log;
        torn_total += torn;
        torn_rounds += u32::from(torn > 0);
    }
    assert!(
        acked.len() > 100,
        "seed {seed}: only {} events acknowledged over {ROUNDS} rounds; the test tested little",
        acked.len()
    );
    eprintln!(
        "{ROUNDS} rounds, {} acknowledged events checked, {} more made durable but never \
         acknowledged (killed between flush and ack), torn tails cut in {torn_rounds} rounds \
         ({torn_total} bytes), in {:.1} s",
        acked.len(),
        kept.len() - acked.len(),
        began.elapsed().as_secs_f64()
    );
}

/// When the parent kills a child. The durations are fault-injection moments, not
/// synchronisation: nothing waits on them to be long enough.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// This long after the spawn, whatever the child is doing (perhaps recovering).
    AfterSpawn(Duration),
    /// After this many acknowledged appends, and this long past the last one.
    AfterAcks(usize, Duration),
}

/// Runs one child, kills it with SIGKILL at `kill`, and returns every event it acknowledged,
/// including acks still in the pipe when it died.
fn run_child(dir: &Path, child_seed: u64, kill: Kill, ctx: &str) -> Vec<Acked> {
    let exe = std::env::current_exe().expect("current_exe");
    let child = Command::new(exe)
        .args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_DIR, dir)
        .env(ENV_CHILD_SEED, child_seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let mut out = BufReader::new(stdout);
    let mut acked = Vec::new();
    let mut acks = 0usize;
    let mut ready = false;
    let mut line = String::new();
    let mut killed = false;
    if let Kill::AfterSpawn(delay) = kill {
        std::thread::sleep(delay);
        child.0.kill().expect("SIGKILL the child");
        killed = true;
    }
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("reading child stdout");
        // EOF, or a last line cut off by the kill: that ack never reached the parent.
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        // libtest may put its own "test crash_child ... " before the first line.
        if line.contains(READY) {
            ready = true;
        } else if let Some(i) = line.find(ACK) {
            acked.extend(parse_ack(&line[i + ACK.len()..], ctx));
            acks += 1;
        }
        if let Kill::AfterAcks(kill_after, linger) = kill
            && !killed
            && ready
            && acks >= kill_after
        {
            if !linger.is_zero() {
                std::thread::sleep(linger);
            }
            child.0.kill().expect("SIGKILL the child");
            killed = true;
            // Go on reading: lines the child wrote before it died are acknowledgements too.
        }
    }
    let status = child.0.wait().expect("wait for child");
    let stderr = stderr.join().unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    assert!(
        killed && status.signal() == Some(9),
        "{ctx}: the child ended on its own ({status}) after {acks} acks, before the kill \
         ({kill:?}); its stderr:\n{stderr}"
    );
    acked
}

fn parse_ack(rest: &str, ctx: &str) -> Vec<Acked> {
    let f: Vec<&str> = rest.split_whitespace().collect();
    assert_eq!(f.len(), 6, "{ctx}: malformed ack line {rest:?}");
    let num = |s: &str| {
        s.parse::<u64>()
            .unwrap_or_else(|_| panic!("{ctx}: bad number in {rest:?}"))
    };
    let (first_v, last_v, first_p, last_p) = (num(f[1]), num(f[2]), num(f[3]), num(f[4]));
    let ids: Vec<&str> = f[5].split(',').collect();
    assert_eq!(
        last_v - first_v + 1,
        ids.len() as u64,
        "{ctx}: versions vs ids in {rest:?}"
    );
    assert_eq!(
        last_p - first_p + 1,
        ids.len() as u64,
        "{ctx}: an atomic append's positions must be contiguous: {rest:?}"
    );
    ids.iter()
        .enumerate()
        .map(|(i, id)| Acked {
            stream: f[0].to_string(),
            version: first_v + i as u64,
            position: first_p + i as u64,
            id: id.to_string(),
        })
        .collect()
}

/// Opens the log as a restarted process would and checks it against everything acknowledged
/// so far and against what the previous recovery kept. Returns (stream, version, id) by position,
/// and the bytes of torn tail the recovery cut off.
async fn check(
    dir: &Path,
    acked: &[Acked],
    kept_before: &[(String, u64, String)],
    ctx: &str,
) -> (Vec<(String, u64, String)>, u64) {
    let log = FileLog::open(dir, options())
        .await
        .unwrap_or_else(|e| panic!("{ctx}: reopening after SIGKILL: {e}"));
    let torn = log.stats().torn_bytes_dropped;
    let verified = log
        .verify()
        .await
        .unwrap_or_else(|e| panic!("{ctx}: verify after SIGKILL: {e}"));

    let all = read_everything(&log, ctx).await;
    assert_eq!(
        verified,
        all.len() as u64,
        "{ctx}: verify counted {verified} events, read_all found {}",
        all.len()
    );
    let head = log.head().await.unwrap();
    assert_eq!(
        head,
        all.last().map(|e| e.position),
        "{ctx}: head vs the last event read"
    );

    // The global order is 0, 1, 2, ... with commit times that never go back, each stream's
    // versions are 0, 1, 2, ... along it, and no event id is stored twice.
    let mut next_version: HashMap<&str, u64> = HashMap::new();
    let mut ids = HashSet::new();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(
            e.position,
            GlobalPosition(i as u64),
            "{ctx}: gap in the global order"
        );
        if i > 0 {
            assert!(
                e.committed_at >= all[i - 1].committed_at,
                "{ctx}: commit time went back at position {i}"
            );
        }
        let v = next_version.entry(e.stream.as_str()).or_insert(0);
        assert_eq!(
            e.version.0, *v,
            "{ctx}: stream {} skips at position {i}",
            e.stream
        );
        *v += 1;
        assert!(ids.insert(e.id), "{ctx}: event id {} stored twice", e.id);
        assert!(
            payload_matches(e.id, &e.payload),
            "{ctx}: payload of {} at position {i} is not what was written",
            e.id
        );
    }

    // Every acknowledged event, where the acknowledgement said.
    for a in acked {
        let e = all.get(a.position as usize).unwrap_or_else(|| {
            panic!(
                "{ctx}: acknowledged event {} ({} v{} @{}) is missing: the log ends at {} events",
                a.id,
                a.stream,
                a.version,
                a.position,
                all.len()
            )
        });
        assert!(
            e.stream.as_str() == a.stream && e.version.0 == a.version && e.id.to_string() == a.id,
            "{ctx}: at position {} the log has {} v{} id {}, but the child was acknowledged {} v{} id {}",
            a.position,
            e.stream,
            e.version,
            e.id,
            a.stream,
            a.version,
            a.id
        );
    }

    // Nothing an earlier recovery kept (acknowledged or not) may go: the child only appends.
    assert!(
        all.len() >= kept_before.len(),
        "{ctx}: the log shrank from {} to {} events",
        kept_before.len(),
        all.len()
    );
    for (i, (stream, version, id)) in kept_before.iter().enumerate() {
        let e = &all[i];
        assert!(
            e.stream.as_str() == stream && e.version.0 == *version && &e.id.to_string() == id,
            "{ctx}: position {i} changed across a restart"
        );
    }

    // The stream index agrees with the log: each stream read on its own is its slice of it.
    let mut by_stream: BTreeMap<&str, Vec<&RecordedEvent>> = BTreeMap::new();
    for e in &all {
        by_stream.entry(e.stream.as_str()).or_default().push(e);
    }
    for (stream, events) in &by_stream {
        let id = StreamId::new(*stream).unwrap();
        let version = log.stream_version(&id).await.unwrap();
        assert_eq!(
            version,
            Some(StreamVersion(events.len() as u64 - 1)),
            "{ctx}: stream_version of {stream}"
        );
        let read = log
            .read_stream(
                &id,
                ReadFrom::Start,
                Direction::Forward,
                usize::MAX,
                Until::Latest,
            )
            .await
            .unwrap_or_else(|e| panic!("{ctx}: read_stream {stream}: {e}"));
        assert_eq!(
            read.len(),
            events.len(),
            "{ctx}: read_stream {stream} length"
        );
        for (r, e) in read.iter().zip(events) {
            assert!(
                r == *e,
                "{ctx}: read_stream {stream} differs from read_all at {}",
                e.position
            );
        }
    }

    log.close()
        .await
        .unwrap_or_else(|e| panic!("{ctx}: close: {e}"));
    let kept = all
        .into_iter()
        .map(|e| (e.stream.to_string(), e.version.0, e.id.to_string()))
        .collect();
    (kept, torn)
}

async fn read_everything(log: &FileLog, ctx: &str) -> Vec<RecordedEvent> {
    let mut all: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = match all.last() {
            None => ReadFrom::Start,
            Some(e) => ReadFrom::At(GlobalPosition(e.position.0 + 1)),
        };
        let page = log
            .read_all(from, Direction::Forward, 1_000, Until::Latest)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: read_all: {e}"));
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}
