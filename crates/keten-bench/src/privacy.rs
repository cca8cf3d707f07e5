//! `cargo run --release -p keten-bench -- privacy`: what encryption and the access log cost
//! (issue 7), side by side in one run. The real `keten_server::serve` over mTLS on the
//! embedded `FileLog` (fsync durability), once with privacy off (no key store, no access log)
//! and once as production runs it (a `FileKeyStore` of its own, a second `FileLog` for the
//! access log); the two take turns, case by case and round by round, so that a shared
//! machine's noise falls on both alike. Each target is judged on the median over rounds of the
//! on/off ratio within a round.
//!
//! - Publish: the `server` benchmark's clients (each its own families, exact expected versions,
//!   a new family every 20 calls), on a fresh data directory per round. With privacy on every
//!   call also seals its payload, binds a key made ahead to each new family (keys are made
//!   durable in batches before they are handed out; see `keten_keys`' `file.rs`), and writes
//!   an access record before it answers.
//! - GetFamilyPlan: readers over families of 50 events each that the benchmark partner takes
//!   part in (it published `PartnerJoined` itself, so need-to-know lets it in). The plan comes
//!   from the in-memory projection, so encryption costs nothing here; with privacy on every
//!   read waits for its access record.
//!
//! The access log runs as `keten serve` runs it: `Durability::Interval` of
//! `[privacy] access_log_flush_ms` (acknowledged once written, flushed within the interval);
//! `--access-flush-ms 0` measures the strict mode (every record flushed before its answer).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use keten_domain::{Event, FamilyId, FamilyType, MemberId, MemberRole, PartnerKind, Role, Urgency};
use keten_keys::{DataKey, FileKeyStore};
use keten_log::{EventStore, FileLog, FileLogOptions, LogStats};
use keten_proto::v1::{self, expected_version::Kind};
use tokio::sync::{Barrier, oneshot};

use crate::server::{self, Privacy};
use crate::stats::{self, Measured, Table, fmt_rate, fmt_us};

#[derive(Parser)]
pub struct PrivacyArgs {
    /// Seconds each case runs, per round and per mode.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds; in each, every case runs with privacy off and on, in alternating order.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Concurrent clients in the many-client cases (publishers and readers).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Families the readers read.
    #[arg(long, default_value_t = 64)]
    families: usize,
    /// Events in each family read (a registration, the partner joining, members, police
    /// contacts and nuisance reports).
    #[arg(long, default_value_t = 50)]
    family_events: usize,
    /// Where the data goes (a temporary directory inside it, removed afterwards).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Print the tables as Markdown.
    #[arg(long)]
    markdown: bool,
    /// The access log's flush interval, as `[privacy] access_log_flush_ms` (0: flush every
    /// record before its access is answered).
    #[arg(long, default_value_t = keten_server::config::DEFAULT_ACCESS_LOG_FLUSH_MS)]
    access_flush_ms: u64,
    /// Run only these cases (to profile one): `publish` (the many-client publish),
    /// `publish1` (one client), `read`. All three when not given.
    #[arg(long, value_delimiter = ',')]
    only: Vec<CaseKind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CaseKind {
    Publish,
    Publish1,
    Read,
}

fn access_mode(flush_ms: u64) -> String {
    match flush_ms {
        0 => "flushed before each answer (access_log_flush_ms = 0)".into(),
        ms => format!("flushed within {ms} ms of the write (access_log_flush_ms = {ms})"),
    }
}

/// How the access logs of this run are opened (`--access-flush-ms`), set once at its start.
static ACCESS_LOG: std::sync::OnceLock<keten_log::Durability> = std::sync::OnceLock::new();

/// The access log's options, as `keten serve` opens it.
fn access_log_options() -> FileLogOptions {
    FileLogOptions {
        durability: *ACCESS_LOG.get().expect("set at the start of the run"),
        ..FileLogOptions::default()
    }
}

/// CPU time this process has used so far (every thread, user and system).
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The target of issue 7: with privacy on, at most 15% slower.
const TARGET_RATIO: f64 = 0.85;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// No encryption, no access log.
    Off,
    /// Per-family keys in a `FileKeyStore`, the access log in a `FileLog`: production.
    On,
}

#[derive(Clone, Copy, Debug)]
enum Case {
    /// Clients, one event per call.
    Publish(usize),
    /// Concurrent `GetFamilyPlan` readers.
    Read(usize),
}

impl Case {
    fn kind(self) -> CaseKind {
        match self {
            Case::Publish(1) => CaseKind::Publish1,
            Case::Publish(_) => CaseKind::Publish,
            Case::Read(_) => CaseKind::Read,
        }
    }

    fn name(self) -> String {
        match self {
            Case::Publish(n) => format!("Publish, {n} client(s) × 1 event/call"),
            Case::Read(n) => format!("GetFamilyPlan, {n} reader(s)"),
        }
    }
}

/// One case's two modes: pooled over rounds (latencies over all rounds, each round's rate kept
/// in run order).
struct Pair {
    case: Case,
    off: Option<Measured>,
    on: Option<Measured>,
    /// CPU µs (this process: clients and server, user + system) per call, each round, off and
    /// on: what privacy costs in work, which the machine's neighbours disturb far less than
    /// the rate.
    cpu: [Vec<f64>; 2],
}

pub async fn run(args: PrivacyArgs) -> Result<()> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("keten-bench-privacy-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a directory in {}", base.display()))?;
    let pki = tmp.path().join("pki");
    server::write_pki(&pki)?;
    let secs = Duration::from_secs_f64(args.seconds);
    let privacy = keten_server::config::PrivacyConfig {
        access_log_flush_ms: args.access_flush_ms,
        ..keten_server::config::PrivacyConfig::default()
    };
    privacy.check()?;
    let _ = ACCESS_LOG.set(privacy.access_log_durability());
    let load_before = crate::loadavg();

    let crypto = seal_open_cost();
    crate::progress("key creation and access records on their own");
    let parts = parts(tmp.path(), args.clients, secs.min(Duration::from_secs(2))).await?;

    // The read cases' servers live through the whole run: reads change no family, and the
    // access log growing from round to round is what production's does.
    crate::progress(&format!(
        "filling {} families of {} events, privacy off and on",
        args.families, args.family_events
    ));
    let mut readers = Vec::new();
    let reads = args.only.is_empty() || args.only.contains(&CaseKind::Read);
    for mode in [Mode::Off, Mode::On].into_iter().filter(|_| reads) {
        let dir = tmp.path().join(format!("read-{mode:?}").to_lowercase());
        let running = Running::start(&dir, &pki, mode).await?;
        let families = fill(&running.url, &pki, args.families, args.family_events).await?;
        readers.push((mode, running, Arc::new(families)));
    }

    let mut pairs: Vec<Pair> = [
        Case::Publish(args.clients),
        Case::Publish(1),
        Case::Read(args.clients),
    ]
    .into_iter()
    .filter(|case| args.only.is_empty() || args.only.contains(&case.kind()))
    .map(|case| Pair {
        case,
        off: None,
        on: None,
        cpu: [Vec::new(), Vec::new()],
    })
    .collect();
    for round in 1..=args.rounds {
        for pair in &mut pairs {
            // Which mode goes first alternates, so neither always follows the other's disk
            // writes.
            let order = if round % 2 == 1 {
                [Mode::Off, Mode::On]
            } else {
                [Mode::On, Mode::Off]
            };
            for mode in order {
                crate::progress(&format!(
                    "round {round}/{}: {}, privacy {mode:?}",
                    args.rounds,
                    pair.case.name()
                ));
                let cpu_before = cpu_time();
                let m = match pair.case {
                    Case::Publish(clients) => {
                        let dir = tmp.path().join(format!("publish-{mode:?}").to_lowercase());
                        publish(&dir, &pki, mode, clients, secs).await?
                    }
                    Case::Read(n) => {
                        let (_, running, families) = readers
                            .iter()
                            .find(|(m, ..)| *m == mode)
                            .expect("a read server per mode");
                        read(running, &pki, families, n, secs).await?
                    }
                };
                let cpu = (cpu_time() - cpu_before).as_secs_f64() * 1e6 / m.ops.max(1) as f64;
                pair.cpu[mode as usize].push(cpu);
                let slot = match mode {
                    Mode::Off => &mut pair.off,
                    Mode::On => &mut pair.on,
                };
                match slot {
                    Some(p) => p.pool(m),
                    None => *slot = Some(m.first_round()),
                }
            }
        }
    }
    for (_, running, _) in readers {
        running.stop().await?;
    }
    let load_after = crate::loadavg();
    tmp.close().context("removing the benchmark directory")?;
    report(&args, &pairs, &crypto, &parts);
    println!("\nload average (1/5/15 min) before: {load_before}; after: {load_after}");
    Ok(())
}

/// The stores one server runs on.
struct Stores {
    log: FileLog,
    /// With privacy on: the key store and the access log.
    privacy: Option<(FileKeyStore, FileLog)>,
}

impl Stores {
    /// As `keten serve` lays them out: `log/`, and with privacy on `keys/` and `access/`.
    async fn open(dir: &Path, mode: Mode) -> Result<Self> {
        let log = FileLog::open(dir.join("log"), FileLogOptions::default()).await?;
        let privacy = match mode {
            Mode::Off => None,
            Mode::On => Some((
                FileKeyStore::open(dir.join("keys")).await?,
                FileLog::open(dir.join("access"), access_log_options()).await?,
            )),
        };
        Ok(Self { log, privacy })
    }

    fn for_server(&self) -> (Arc<dyn EventStore>, Privacy) {
        let privacy: Privacy = self.privacy.as_ref().map(|(keys, access)| {
            let keys: Arc<dyn keten_keys::KeyStore> = Arc::new(keys.clone());
            let access: Arc<dyn EventStore> = Arc::new(access.clone());
            (keys, access)
        });
        (Arc::new(self.log.clone()), privacy)
    }

    /// The access log's counters (all zero with privacy off).
    fn access_stats(&self) -> LogStats {
        self.privacy
            .as_ref()
            .map_or_else(LogStats::default, |(_, access)| access.stats())
    }

    async fn close(self) -> Result<()> {
        self.log.close().await?;
        if let Some((_, access)) = self.privacy {
            access.close().await?;
        }
        Ok(())
    }
}

/// A server on its stores.
struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<keten_server::Result<()>>,
    stores: Stores,
}

impl Running {
    async fn start(dir: &Path, pki: &Path, mode: Mode) -> Result<Self> {
        let stores = Stores::open(dir, mode).await?;
        let (log, privacy) = stores.for_server();
        let (url, stop, task) = server::start(log, pki, privacy).await?;
        Ok(Self {
            url,
            stop,
            task,
            stores,
        })
    }

    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        // The logs close after the server: appends in flight have finished by now.
        self.stores.close().await
    }
}

/// "appends/fsync" of a log over the span between two readings of its counters.
fn per_fsync(before: &LogStats, after: &LogStats) -> String {
    let appends = after.appends - before.appends;
    let syncs = after.syncs - before.syncs;
    if appends == 0 {
        "–".into()
    } else {
        format!("{:.1}", appends as f64 / syncs.max(1) as f64)
    }
}

/// A fresh server on a fresh directory; `clients` partner systems publish one event per call
/// for `duration` (the `server` benchmark's clients).
async fn publish(
    dir: &Path,
    pki: &Path,
    mode: Mode,
    clients: usize,
    duration: Duration,
) -> Result<Measured> {
    let running = Running::start(dir, pki, mode).await?;
    let barrier = Arc::new(Barrier::new(clients));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let channel = server::connect(&running.url, pki).await?;
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            server::client(channel, c, 1, duration, &barrier).await
        }));
    }
    let mut m = Measured::new(Case::Publish(clients).name(), clients, 1);
    for t in tasks {
        let (ops, elapsed, hist) = t.await??;
        m.add_writer(ops, elapsed, &hist);
    }
    let zero = LogStats::default();
    m.note = format!(
        "{} | {}",
        per_fsync(&zero, &running.stores.log.stats()),
        per_fsync(&zero, &running.stores.access_stats())
    );
    running.stop().await?;
    std::fs::remove_dir_all(dir)?;
    Ok(m)
}

/// `n` families of `events` events each, published through `url` by the benchmark partner,
/// one call per family (16 at a time), and read once each so that the projection has folded
/// them before any timed read.
async fn fill(url: &str, pki: &Path, n: usize, events: usize) -> Result<Vec<FamilyId>> {
    ensure!(events >= 4, "a family read needs at least 4 events");
    let families: Vec<FamilyId> = (0..n)
        .map(|i| FamilyId::new(format!("read-{i:05}")))
        .collect::<Result<_, _>>()?;
    let families = Arc::new(families);
    let workers = 16.min(n.max(1));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let channel = server::connect(url, pki).await?;
        let families = families.clone();
        tasks.push(tokio::spawn(async move {
            let session = keten::client::Session::new(channel, "sys-fill", Role::PartnerSystem);
            let mut gateway = session.gateway();
            let mut coordination = session.coordination();
            for family in families.iter().skip(w).step_by(workers) {
                let expected = v1::ExpectedVersion {
                    kind: Some(Kind::NoStream(v1::Empty {})),
                };
                let req = keten::client::publish_request(
                    family,
                    Some(expected),
                    &family_history(family, events),
                );
                let r = gateway.publish(session.request(req)).await?.into_inner();
                let plan = coordination
                    .get_family_plan(session.request(v1::GetFamilyPlanRequest {
                        family_id: family.to_string(),
                        min_position: Some(r.last_position),
                    }))
                    .await?
                    .into_inner();
                ensure!(
                    plan.version == r.version && plan.plan.is_some(),
                    "family {family}: read back version {} without a plan, published {}",
                    plan.version,
                    r.version
                );
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(Arc::try_unwrap(families).expect("the fill tasks are done"))
}

/// A family as the police see one: registered, the police joining (so that need-to-know lets
/// the benchmark partner read it), two members, then police contacts and nuisance reports.
fn family_history(family: &FamilyId, events: usize) -> Vec<Event> {
    let today = keten_projection::today();
    let day = |n: u64| today - chrono::Days::new(n);
    let child = MemberId::new("c1").expect("a valid member id");
    let mut out = vec![
        Event::FamilyRegistered {
            family_id: family.clone(),
            family_type: FamilyType::StutEnSteun,
            urgency: Urgency::Normal,
            occurred_on: day(100),
        },
        Event::PartnerJoined {
            partner_id: server::partner_id(),
            partner_kind: PartnerKind::Police,
            display_name: "Politie (benchmark)".into(),
            occurred_on: day(99),
        },
        Event::MemberAdded {
            member_id: MemberId::new("p1").expect("a valid member id"),
            role: MemberRole::Parent,
            birth_year: 1984,
            flags: Default::default(),
            occurred_on: day(99),
        },
        Event::MemberAdded {
            member_id: child.clone(),
            role: MemberRole::Child,
            birth_year: 2012,
            flags: Default::default(),
            occurred_on: day(99),
        },
    ];
    let mut i = 0u64;
    while out.len() < events {
        out.push(if i.is_multiple_of(2) {
            Event::PoliceContactRecorded {
                member_id: Some(child.clone()),
                occurred_on: day(90 - i.min(89)),
            }
        } else {
            Event::NuisanceReported {
                description: "Geluidsoverlast gemeld door de buren, 's avonds laat; \
                              wijkagent heeft contact gehad met de ouders."
                    .into(),
                occurred_on: day(90 - i.min(89)),
            }
        });
        i += 1;
    }
    out
}

/// `readers` partner-system readers, each with its own connection, calling `GetFamilyPlan`
/// over `families` in turn for `duration`.
async fn read(
    running: &Running,
    pki: &Path,
    families: &Arc<Vec<FamilyId>>,
    readers: usize,
    duration: Duration,
) -> Result<Measured> {
    let before = running.stores.access_stats();
    let barrier = Arc::new(Barrier::new(readers));
    let mut tasks = Vec::new();
    for r in 0..readers {
        let channel = server::connect(&running.url, pki).await?;
        let barrier = barrier.clone();
        let families = families.clone();
        tasks.push(tokio::spawn(async move {
            reader(channel, r, &families, duration, &barrier).await
        }));
    }
    let mut m = Measured::new(Case::Read(readers).name(), readers, 1);
    for t in tasks {
        let (ops, elapsed, hist) = t.await??;
        m.add_writer(ops, elapsed, &hist);
    }
    m.note = format!("– | {}", per_fsync(&before, &running.stores.access_stats()));
    Ok(m)
}

/// One reader: the families in turn, starting at its own place among them.
async fn reader(
    channel: tonic::transport::Channel,
    r: usize,
    families: &[FamilyId],
    duration: Duration,
    barrier: &Barrier,
) -> Result<(u64, Duration, hdrhistogram::Histogram<u64>)> {
    let session = keten::client::Session::new(channel, format!("reader-{r}"), Role::PartnerSystem);
    let mut coordination = session.coordination();
    let mut next = r * 7;
    let mut hist = stats::histogram();
    let mut ops = 0u64;
    barrier.wait().await;
    let began = Instant::now();
    while began.elapsed() < duration {
        let family = &families[next % families.len()];
        next += 1;
        let req = session.request(v1::GetFamilyPlanRequest {
            family_id: family.to_string(),
            min_position: None,
        });
        let t = Instant::now();
        let plan = coordination.get_family_plan(req).await?.into_inner();
        stats::record(&mut hist, t.elapsed());
        ensure!(
            plan.plan.is_some(),
            "family {family}: no plan in the answer"
        );
        ops += 1;
    }
    Ok((ops, began.elapsed(), hist))
}

/// The raw cost of the AEAD on one event's stored payload, outside the server.
struct Crypto {
    payload_bytes: usize,
    seal_ns: f64,
    open_ns: f64,
}

/// `seal_deterministic` and `open` of a typical stored payload (a `NuisanceReported` of about
/// 300 bytes in keten's stored JSON), timed over many calls.
fn seal_open_cost() -> Crypto {
    const CALLS: u32 = 200_000;
    let actor = keten_domain::Actor {
        person: keten_domain::PersonId::new("sys-politie").expect("a valid person id"),
        role: Role::PartnerSystem,
        partner: server::partner_id(),
        partner_kind: PartnerKind::Police,
    };
    let event = Event::NuisanceReported {
        description: "x".repeat(210),
        occurred_on: keten_projection::today(),
    };
    let id = keten_log::EventId(crate::workload::event_id(0, 1));
    let stored = keten_projection::stored::encode(
        id,
        &event,
        &keten_projection::stored::EventMetadata::from_actor(&actor),
    );
    let payload = stored.payload;
    // As the sealed store binds a payload to its place: stream id and event id.
    let mut aad = b"family-bench-0".to_vec();
    aad.push(0);
    aad.extend_from_slice(id.0.as_bytes());
    let key = DataKey::generate();

    let t = Instant::now();
    let mut sealed = Vec::new();
    for _ in 0..CALLS {
        sealed = keten_keys::seal_deterministic(&key, &aad, std::hint::black_box(&payload));
    }
    let seal = t.elapsed();
    let t = Instant::now();
    for _ in 0..CALLS {
        let plain = keten_keys::open(&key, &aad, std::hint::black_box(&sealed))
            .expect("what was just sealed opens");
        std::hint::black_box(plain);
    }
    let open = t.elapsed();
    Crypto {
        payload_bytes: payload.len(),
        seal_ns: seal.as_nanos() as f64 / f64::from(CALLS),
        open_ns: open.as_nanos() as f64 / f64::from(CALLS),
    }
}

/// The durable steps privacy adds to a call, each on its own: creating a family's key (a
/// `FileKeyStore` write: fsync of the file, rename, fsync of the directory, one at a time), and
/// an access record (`AccessLog::record` on a `FileLog`: a group-committed durable append).
/// Each measured with one caller and with `many`.
struct Parts {
    many: usize,
    /// (one caller, `many` callers)
    key_create: [Measured; 2],
    access_record: [Measured; 2],
}

async fn parts(dir: &Path, many: usize, duration: Duration) -> Result<Parts> {
    let mut key_create = Vec::new();
    let mut access_record = Vec::new();
    for callers in [1, many] {
        let d = dir.join("parts-keys");
        let keys = keten_keys::Keyring::load(Arc::new(FileKeyStore::open(&d).await?)).await?;
        key_create.push(
            timed(callers, duration, "key creation", move |c, i| {
                let keys = keys.clone();
                async move {
                    let id = keten_keys::KeyId::new(format!("family-part-{c}-{i}"))?;
                    keys.create(&id).await?;
                    Ok(())
                }
            })
            .await?,
        );
        std::fs::remove_dir_all(&d)?;

        let d = dir.join("parts-access");
        let log = FileLog::open(&d, access_log_options()).await?;
        let access = keten_access::AccessLog::new(Arc::new(log.clone()));
        let record = Arc::new(access_record_of_a_read()?);
        let mut m = timed(callers, duration, "access record", move |_, _| {
            let access = access.clone();
            let record = record.clone();
            async move {
                access.record(&record).await?;
                Ok(())
            }
        })
        .await?;
        m.note = per_fsync(&LogStats::default(), &log.stats());
        access_record.push(m);
        log.close().await?;
        std::fs::remove_dir_all(&d)?;
    }
    let two = |v: Vec<Measured>| -> [Measured; 2] { v.try_into().ok().expect("two measurements") };
    Ok(Parts {
        many,
        key_create: two(key_create),
        access_record: two(access_record),
    })
}

/// What `Coordination.GetFamilyPlan` records for the benchmark partner.
fn access_record_of_a_read() -> Result<keten_access::AccessRecord> {
    use keten_domain::DataClass as C;
    Ok(keten_access::AccessRecord {
        at: chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("a valid time"),
        person: keten_domain::PersonId::new("reader-0")?,
        role: Role::PartnerSystem,
        partner: server::partner_id(),
        partner_kind: PartnerKind::Police,
        partner_name: "Politie (benchmark)".into(),
        family: Some(FamilyId::new("read-00000")?),
        classes: vec![C::Identity, C::Plan, C::Escalation, C::Police, C::Housing],
        action: keten_access::AccessAction::Read,
        method: "Coordination.GetFamilyPlan".into(),
        purpose: None,
        result: keten_access::AccessResult::Granted,
        emergency: None,
        families_returned: 0,
    })
}

/// `callers` tasks calling `op(caller, i)` back to back for `duration`.
async fn timed<F, Fut>(callers: usize, duration: Duration, what: &str, op: F) -> Result<Measured>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let barrier = Arc::new(Barrier::new(callers));
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let op = op.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mut hist = stats::histogram();
                let mut ops = 0u64;
                barrier.wait().await;
                let began = Instant::now();
                while began.elapsed() < duration {
                    let t = Instant::now();
                    op(c, ops).await?;
                    stats::record(&mut hist, t.elapsed());
                    ops += 1;
                }
                anyhow::Ok((ops, began.elapsed(), hist))
            })
        })
        .collect();
    let mut m = Measured::new(what, callers, 1);
    for t in tasks {
        let (ops, elapsed, hist) = t.await??;
        m.add_writer(ops, elapsed, &hist);
    }
    Ok(m)
}

fn report(args: &PrivacyArgs, pairs: &[Pair], crypto: &Crypto, parts: &Parts) {
    let mut t = Table::new(&[
        "case",
        "privacy off",
        "privacy on",
        "on/off",
        "on/off per round",
        "within 15%",
    ]);
    let mut group = Table::new(&[
        "case",
        "privacy",
        "event log appends/fsync",
        "access log records/fsync",
    ]);
    for pair in pairs {
        let (Some(off), Some(on)) = (&pair.off, &pair.on) else {
            continue;
        };
        let name = pair.case.name();
        // Ratios within a round, between runs seconds apart; the median over rounds is judged.
        let ratios: Vec<f64> = off
            .rounds
            .iter()
            .zip(&on.rounds)
            .map(|(off, on)| on / off.max(1e-9))
            .collect();
        let (ratio, lo, hi) = stats::median_range(ratios.clone()).unwrap_or((0.0, 0.0, 0.0));
        let verdict = if ratio >= TARGET_RATIO {
            format!("yes ({:.0}% slower)", (1.0 - ratio).max(0.0) * 100.0)
        } else {
            format!("NO ({:.0}% slower)", (1.0 - ratio) * 100.0)
        };
        t.row(vec![
            format!("{name}: calls/s"),
            fmt_rate(off.ops_per_sec()),
            fmt_rate(on.ops_per_sec()),
            format!("{ratio:.2}×"),
            format!(
                "{} ({lo:.2}–{hi:.2}×)",
                ratios
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            ),
            verdict,
        ]);
        let cpu_off = stats::median_range(pair.cpu[Mode::Off as usize].clone());
        let cpu_on = stats::median_range(pair.cpu[Mode::On as usize].clone());
        if let (Some((a, ..)), Some((b, ..))) = (cpu_off, cpu_on) {
            t.row(vec![
                format!("{name}: CPU µs/call (median round)"),
                format!("{a:.0}"),
                format!("{b:.0}"),
                format!("{:.2}×", b / a.max(1e-9)),
                String::new(),
                String::new(),
            ]);
        }
        for (what, f) in [
            ("p50 µs", Measured::p50_us as fn(&Measured) -> f64),
            ("p99 µs", Measured::p99_us),
        ] {
            let (a, b) = (f(off), f(on));
            t.row(vec![
                format!("{name}: {what}"),
                fmt_us(a),
                fmt_us(b),
                format!("{:.2}×", b / a.max(1e-9)),
                String::new(),
                String::new(),
            ]);
        }
        for (mode, m) in [("off", off), ("on", on)] {
            // Each round's note is "event log | access log"; pooling joins rounds with " / ".
            let (log, access): (Vec<&str>, Vec<&str>) = m
                .note
                .split(" / ")
                .map(|round| round.split_once(" | ").unwrap_or((round, "")))
                .unzip();
            group.row(vec![
                name.clone(),
                mode.into(),
                log.join(" / "),
                access.join(" / "),
            ]);
        }
    }
    println!(
        "\nPrivacy off vs on (issue 7): gRPC + mTLS, FileLog with fsync; access log {}; {} \
         round(s) of {} s per case and mode, latencies pooled over rounds; the target is judged \
         on calls/s, the median over rounds of the on/off ratio within a round (≥ \
         {TARGET_RATIO:.2}×)\n",
        access_mode(args.access_flush_ms),
        args.rounds,
        args.seconds
    );
    println!("{}", t.render(args.markdown));
    println!("\nGroup commit (pooled over rounds, one figure per round)\n");
    println!("{}", group.render(args.markdown));
    let mut p = Table::new(&[
        "step privacy adds, on its own",
        "callers",
        "per second",
        "p50 µs",
        "p99 µs",
        "appends/fsync",
    ]);
    for (what, ms) in [
        (
            "a family's key created (FileKeyStore, made ahead)",
            &parts.key_create,
        ),
        (
            "an access record (AccessLog on a FileLog, as configured)",
            &parts.access_record,
        ),
    ] {
        for m in ms {
            p.row(vec![
                what.into(),
                m.writers.to_string(),
                fmt_rate(m.ops_per_sec()),
                fmt_us(m.p50_us()),
                fmt_us(m.p99_us()),
                m.note.clone(),
            ]);
        }
    }
    println!(
        "\nThe durable steps on their own (1 and {} callers, outside the server)\n",
        parts.many
    );
    println!("{}", p.render(args.markdown));
    println!(
        "\nRaw AEAD cost (XChaCha20-Poly1305, one thread, {}-byte stored payload): \
         seal_deterministic {:.2} µs, open {:.2} µs per event",
        crypto.payload_bytes,
        crypto.seal_ns / 1e3,
        crypto.open_ns / 1e3
    );
}
