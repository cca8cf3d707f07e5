//! `keten-bench scale` and `keten-bench load` (issue 9): a city's worth of families written
//! through the API into the real `keten serve` process, and what it costs to hold them.
//!
//! Both drive the real binary (`target/release/keten serve`, production settings: fsync,
//! encryption at rest and the access log on) over gRPC with mutual TLS, with the example
//! configuration's partners and a PKI from `keten dev-pki`. Every family follows the domain
//! scenario's course (registration and members, partners joining, the match, the plan, goals,
//! actions, police contacts, a non-delivery, escalations, a review), dated back from a day spread
//! over twenty simulated years, then a tail of police contacts, home visits and reviews, so that
//! families hold 100 events on average.
//!
//! `scale` grows one data set through several sizes (`--events 1000000,10000000`), and measures
//! at each: open and first query after a clean stop and after SIGKILL, resident memory,
//! `GetFamilyPlan` under a publishing load, `ListFamilies` with a warning filter over all
//! families, `keten replay` and `keten verify`, and disk per event beside PostgreSQL holding the
//! same events. `load` runs partner systems publishing while coordinators watch and query, then
//! checks the log and reads every acknowledged event back as an auditor.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::NaiveDate;
use clap::Parser;
use keten::scenario::{self, Step, Who, ago, mid};
use keten_domain::{Actor, Event, FamilyId, PartnerKind, PersonId, Role};
use keten_log::EventId;
use keten_projection::stored::{self, EventMetadata};
use keten_proto::convert;
use keten_proto::v1::{self, expected_version::Kind};
use tonic::transport::Channel;

use crate::stats::{self, Table, fmt_rate, fmt_us};
use crate::workload::event_id;

const EXAMPLE_CONFIG: &str = include_str!("../../../deploy/keten.example.toml");
/// The partners whose certificates publish the scenario's steps.
const PUBLISHERS: [&str; 4] = [
    scenario::MUNICIPALITY,
    scenario::YOUTH_CARE,
    scenario::POLICE,
    scenario::HOUSING,
];
/// At most this many events in one call of a family's tail.
const TAIL_BATCH: usize = 20;

#[derive(Parser)]
pub struct ScaleArgs {
    /// The sizes to measure at, in events: the data set grows through them in turn.
    #[arg(long, value_delimiter = ',', default_value = "1000000")]
    events: Vec<u64>,
    /// Average events per family (the scenario's course plus a tail of varying length).
    #[arg(long, default_value_t = 100)]
    events_per_family: u64,
    /// Concurrent generating clients, each a set of partner connections driving one family at
    /// a time.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds of publishing load during which GetFamilyPlan is timed, at each size.
    #[arg(long, default_value_t = 20.0)]
    query_seconds: f64,
    /// Coordinators querying during that load.
    #[arg(long, default_value_t = 4)]
    coordinators: usize,
    /// Stop generating after this many seconds in all and measure the size reached instead
    /// (for a machine too slow for the last size in the time at hand).
    #[arg(long)]
    max_gen_seconds: Option<f64>,
    /// The directory the data set is written to (kept afterwards; must not exist yet).
    #[arg(long)]
    dir: PathBuf,
    /// The `keten` binary (default: beside this one).
    #[arg(long)]
    keten: Option<PathBuf>,
    /// PostgreSQL connection string, for the disk space of the same events.
    #[arg(
        long,
        default_value = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    )]
    pg: String,
    /// Leave PostgreSQL out.
    #[arg(long)]
    no_pg: bool,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

#[derive(Parser)]
pub struct LoadArgs {
    /// Seconds the load runs.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Partner clients driving families through their course.
    #[arg(long, default_value_t = 16)]
    partners: usize,
    /// Police systems publishing contacts to families the others drive, with the version they
    /// last saw (the source of expected-version conflicts).
    #[arg(long, default_value_t = 4)]
    police: usize,
    /// Coordinators querying (GetFamilyPlan, and ListFamilies every 20th query).
    #[arg(long, default_value_t = 4)]
    coordinators: usize,
    /// Families each of two coordinators watches (WatchFamilyPlan).
    #[arg(long, default_value_t = 50)]
    watches: usize,
    /// Stop after this many acknowledged events, if sooner than `--seconds`.
    #[arg(long, default_value_t = 5_000_000)]
    max_events: u64,
    /// Where the data directory goes (a new directory inside it, kept afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `keten` binary (default: beside this one).
    #[arg(long)]
    keten: Option<PathBuf>,
    /// Print the tables as Markdown.
    #[arg(long)]
    markdown: bool,
}

// ---------------------------------------------------------------------------------------------
// The families' courses.

/// The last day of family `f`'s course: spread over twenty years before today (and at least
/// 150 days back, so that every date of the course is in the past).
fn course_day(f: u64) -> NaiveDate {
    let spread = f.wrapping_mul(2_654_435_761) % (20 * 365);
    ago(keten_projection::today(), 150 + spread)
}

/// Family `f`: the scenario's course, then a tail of police contacts, home visits and reviews
/// whose length varies by family so that families average `per_family` events.
fn course(f: u64, per_family: u64) -> Vec<Step> {
    let family = family_id(f);
    let today = course_day(f);
    let mut steps = scenario::steps(&family, today);
    let base: u64 = steps.iter().map(|s| s.events.len() as u64).sum();
    let room = 2 * per_family.saturating_sub(base);
    let tail = (f.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % (room + 1);
    let mut done = 0u64;
    let mut round = 0u64;
    while done < tail {
        let n = (tail - done).min(TAIL_BATCH as u64) as usize;
        let day = |i: usize| ago(today, 1 + (done + i as u64) * 7 % 95);
        let (label, who, events): (_, Who, Vec<Event>) = match round % 3 {
            0 => (
                "the police record contacts",
                scenario::police_system(),
                (0..n)
                    .map(|i| Event::PoliceContactRecorded {
                        member_id: Some(mid(if i % 2 == 0 { "c1" } else { "p1" })),
                        occurred_on: day(i),
                    })
                    .collect(),
            ),
            1 => (
                "the family manager records home visits",
                scenario::family_manager(),
                (0..n)
                    .map(|i| Event::HomeVisitRecorded {
                        occurred_on: day(i),
                    })
                    .collect(),
            ),
            _ => (
                "the family manager reviews the plan",
                scenario::family_manager(),
                vec![Event::ReviewHeld {
                    zrm: vec![],
                    next_review: Some(today),
                    occurred_on: day(0),
                }],
            ),
        };
        done += events.len() as u64;
        round += 1;
        steps.push(Step { label, who, events });
    }
    steps
}

fn family_id(f: u64) -> FamilyId {
    FamilyId::new(format!("gezin-{f:07}")).expect("a valid family id")
}

/// Event `i` of family `f`: the same id in keten and in PostgreSQL's copy.
fn course_event_id(f: u64, i: u64) -> uuid::Uuid {
    event_id(f as usize, i)
}

/// One client's connections: one per publishing partner, as each partner system has its own.
struct Partners(HashMap<&'static str, Channel>);

impl Partners {
    async fn connect(url: &str, pki: &Path) -> Result<Self> {
        let mut m = HashMap::new();
        for p in PUBLISHERS {
            m.insert(p, keten::client::connect(url, pki, p).await?);
        }
        Ok(Self(m))
    }

    fn session(&self, who: &Who) -> keten::client::Session {
        keten::client::Session::new(self.0[who.partner].clone(), who.person, who.role)
    }
}

/// What one publish returned.
struct Acked {
    version: u64,
    last_position: u64,
}

async fn publish(
    partners: &Partners,
    family: &FamilyId,
    step: &Step,
    expected: Kind,
    ids: impl Iterator<Item = uuid::Uuid>,
) -> Result<Acked, tonic::Status> {
    let session = partners.session(&step.who);
    let events = step
        .events
        .iter()
        .zip(ids)
        .map(|(e, id)| v1::PublishedEvent {
            event_id: id.to_string(),
            event: Some(convert::event_to_proto(e)),
        })
        .collect();
    let r = session
        .gateway()
        .publish(session.request(v1::PublishRequest {
            family_id: family.to_string(),
            expected: Some(v1::ExpectedVersion {
                kind: Some(expected),
            }),
            events,
            correlation_id: None,
        }))
        .await?
        .into_inner();
    Ok(Acked {
        version: r.version,
        last_position: r.last_position,
    })
}

/// Drives family `f` through its whole course with exact expected versions; its events.
async fn drive(partners: &Partners, f: u64, per_family: u64, head: &AtomicU64) -> Result<u64> {
    let family = family_id(f);
    let mut version = None;
    let mut seq = 0u64;
    for step in course(f, per_family) {
        let kind = version.map_or(Kind::NoStream(v1::Empty {}), Kind::Exact);
        let n = step.events.len() as u64;
        let ids = (seq..seq + n).map(|i| course_event_id(f, i));
        let acked = publish(partners, &family, &step, kind, ids)
            .await
            .with_context(|| format!("{family}: {}", step.label))?;
        head.fetch_max(acked.last_position, Ordering::Relaxed);
        version = Some(acked.version);
        seq += n;
    }
    Ok(seq)
}

/// The generator: `clients` workers take the next family number from `next` and drive it
/// through its course, until `stop` says so (checked between families, so every family
/// started is complete).
struct Generator {
    next: Arc<AtomicU64>,
    events: Arc<AtomicU64>,
    head: Arc<AtomicU64>,
    per_family: u64,
}

impl Generator {
    async fn run(
        &self,
        url: &str,
        pki: &Path,
        clients: usize,
        stop: impl Fn(u64) -> bool + Send + Sync + 'static,
    ) -> Result<()> {
        let stop = Arc::new(stop);
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let partners = Partners::connect(url, pki).await?;
            let (next, events, head, stop) = (
                self.next.clone(),
                self.events.clone(),
                self.head.clone(),
                stop.clone(),
            );
            let per_family = self.per_family;
            tasks.push(tokio::spawn(async move {
                while !stop(events.load(Ordering::Relaxed)) {
                    let f = next.fetch_add(1, Ordering::Relaxed);
                    let n = drive(&partners, f, per_family, &head).await?;
                    events.fetch_add(n, Ordering::Relaxed);
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The real `keten serve`.

/// A directory with the example configuration's partners, a dev PKI and a data directory.
struct Setup {
    keten: PathBuf,
    config: PathBuf,
    pki: PathBuf,
    data: PathBuf,
    root: PathBuf,
    starts: u32,
}

impl Setup {
    fn new(root: &Path, keten: Option<PathBuf>) -> Result<Self> {
        let keten = match keten {
            Some(k) => k,
            None => std::env::current_exe()?
                .parent()
                .context("the benchmark binary has no directory")?
                .join("keten"),
        };
        ensure!(
            keten.exists(),
            "no keten binary at {} (cargo build --release -p keten, or --keten)",
            keten.display()
        );
        std::fs::create_dir_all(root)?;
        let config = root.join("keten.toml");
        let text: Vec<&str> = EXAMPLE_CONFIG
            .lines()
            .filter(|l| {
                !l.starts_with("metrics_listen")
                    && !l.starts_with("listen")
                    && !l.starts_with("data_dir")
            })
            .collect();
        std::fs::write(&config, text.join("\n"))?;
        let s = Setup {
            keten,
            pki: root.join("pki"),
            data: root.join("data"),
            config,
            root: root.to_path_buf(),
            starts: 0,
        };
        s.keten_ok(&[
            "dev-pki",
            "--out",
            &s.pki.display().to_string(),
            "--config",
            &s.config.display().to_string(),
        ])?;
        Ok(s)
    }

    /// Runs `keten args…` to completion; its time.
    fn keten_ok(&self, args: &[&str]) -> Result<Duration> {
        let t = Instant::now();
        let out = Command::new(&self.keten)
            .args(args)
            .current_dir(&self.root)
            .output()?;
        let took = t.elapsed();
        if !out.status.success() {
            bail!(
                "keten {} failed ({}):\n{}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(took)
    }

    /// Starts `keten serve` and waits for its listening line.
    fn serve(&mut self) -> Result<Serve> {
        self.starts += 1;
        let stderr = std::fs::File::create(self.root.join(format!("serve-{}.log", self.starts)))?;
        let started = Instant::now();
        let mut child = Command::new(&self.keten)
            .args(["serve", "--config"])
            .arg(&self.config)
            .arg("--data")
            .arg(&self.data)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(&self.root)
            .env("KETEN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("spawning keten serve")?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let addr = loop {
            match lines.next() {
                Some(line) => {
                    if let Some(a) = line?.strip_prefix("keten listening on ") {
                        break a.trim().to_string();
                    }
                }
                None => bail!(
                    "keten serve exited before listening (see {}/serve-{}.log)",
                    self.root.display(),
                    self.starts
                ),
            }
        };
        let listening = started.elapsed();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Serve {
            child,
            url: format!("https://{addr}"),
            started,
            listening,
        })
    }
}

struct Serve {
    child: Child,
    url: String,
    started: Instant,
    listening: Duration,
}

impl Serve {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// VmRSS and VmHWM of the server, in bytes.
    fn memory(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map(|kb| kb * 1024)
                .with_context(|| format!("no {name} in /proc/{}/status", self.pid()))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// SIGTERM, and the wait for a clean exit.
    fn stop(mut self) -> Result<()> {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?
            .success();
        ensure!(ok, "kill -TERM failed");
        let status = self.child.wait()?;
        ensure!(status.success(), "keten serve stopped with {status}");
        Ok(())
    }

    /// SIGKILL: no shutdown at all.
    fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

fn coordinator(channel: Channel, n: usize) -> keten::client::Session {
    keten::client::Session::new(channel, format!("coord-{n}"), Role::Coordinator)
        .with_purpose("benchmark: coordination")
}

/// Waits until the server answers `GetFamilyPlan` for `family` with everything up to `head`
/// folded: the time since the process started.
async fn first_query(serve: &Serve, pki: &Path, family: &FamilyId, head: u64) -> Result<Duration> {
    let channel = loop {
        match keten::client::connect(&serve.url, pki, scenario::MUNICIPALITY).await {
            Ok(c) => break c,
            Err(_) if serve.started.elapsed() < Duration::from_secs(600) => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Err(e) => return Err(e),
        }
    };
    let s = coordinator(channel, 0);
    loop {
        let r = s
            .coordination()
            .get_family_plan(s.request(v1::GetFamilyPlanRequest {
                family_id: family.to_string(),
                min_position: Some(head),
            }))
            .await;
        match r {
            Ok(_) => return Ok(serve.started.elapsed()),
            // The projection is still folding: the server's own wait ran out.
            Err(e)
                if e.code() == tonic::Code::Unavailable
                    && serve.started.elapsed() < Duration::from_secs(1200) => {}
            Err(e) => return Err(e).context("the first GetFamilyPlan"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `keten-bench scale`.

#[derive(Default)]
struct Point {
    events: u64,
    families: u64,
    generating: Duration,
    gen_events: u64,
    gen_rss: u64,
    loadavg_gen: String,
    clean_listen: Duration,
    clean_first: Duration,
    clean_rss: u64,
    list: Duration,
    list_pages: u64,
    list_matched: u64,
    plan_hist: Option<hdrhistogram::Histogram<u64>>,
    load_events: u64,
    load_secs: f64,
    load_rss: u64,
    load_hwm: u64,
    kill_listen: Duration,
    kill_first: Duration,
    kill_rss: u64,
    verify: Duration,
    replay: Duration,
    disk: BTreeMap<&'static str, u64>,
    pg_bytes: Option<u64>,
    loadavg_end: String,
}

pub async fn run_scale(args: ScaleArgs) -> Result<()> {
    ensure!(
        !args.dir.exists(),
        "{} exists: scale writes a new data set",
        args.dir.display()
    );
    let mut setup = Setup::new(&args.dir, args.keten.clone())?;
    let pg = if args.no_pg {
        None
    } else {
        Some(PgCopy::setup(&args.pg).await?)
    };
    let generator = Generator {
        next: Arc::new(AtomicU64::new(0)),
        events: Arc::new(AtomicU64::new(0)),
        head: Arc::new(AtomicU64::new(0)),
        per_family: args.events_per_family,
    };
    let budget = args.max_gen_seconds.map(Duration::from_secs_f64);
    let began = Instant::now();
    let mut points = Vec::new();
    let mut pg_families = 0u64;
    for &target in &args.events {
        let mut p = Point::default();
        progress(&format!("generating up to {target} events"));
        let serve = setup.serve()?;
        let t = Instant::now();
        let before = generator.events.load(Ordering::Relaxed);
        let deadline = budget.map(|b| began + b);
        generator
            .run(&serve.url, &setup.pki, args.clients, move |events| {
                events >= target || deadline.is_some_and(|d| Instant::now() >= d)
            })
            .await?;
        p.generating = t.elapsed();
        p.gen_events = generator.events.load(Ordering::Relaxed) - before;
        p.gen_rss = serve.memory()?.0;
        p.loadavg_gen = loadavg();
        serve.stop()?;
        p.events = generator.events.load(Ordering::Relaxed);
        p.families = generator.next.load(Ordering::Relaxed);
        p.disk = disk(&setup.data)?;
        progress(&format!(
            "{} events over {} families in {:.0} s; disk {:?}",
            p.events,
            p.families,
            p.generating.as_secs_f64(),
            p.disk
        ));
        if let Some(pg) = &pg {
            progress("the same events into PostgreSQL");
            pg.fill(pg_families..p.families, args.events_per_family)
                .await?;
            pg_families = p.families;
            p.pg_bytes = Some(pg.size().await?);
        }

        // Open after a clean stop, then the queries.
        let head = generator.head.load(Ordering::Relaxed);
        let last = family_id(p.families - 1);
        let serve = setup.serve()?;
        p.clean_listen = serve.listening;
        p.clean_first = first_query(&serve, &setup.pki, &last, head).await?;
        p.clean_rss = serve.memory()?.0;
        progress("ListFamilies over all families");
        (p.list, p.list_pages, p.list_matched) = list_all(&serve.url, &setup.pki).await?;
        progress("GetFamilyPlan under a publishing load");
        let before = generator.events.load(Ordering::Relaxed);
        let t = Instant::now();
        p.plan_hist = Some(
            plans_under_load(
                &serve.url,
                &setup.pki,
                &generator,
                args.clients,
                args.coordinators,
                p.families,
                Duration::from_secs_f64(args.query_seconds),
            )
            .await?,
        );
        p.load_secs = t.elapsed().as_secs_f64();
        p.load_events = generator.events.load(Ordering::Relaxed) - before;
        (p.load_rss, p.load_hwm) = serve.memory()?;

        // Open after SIGKILL.
        progress("SIGKILL, and open again");
        serve.kill()?;
        let head = generator.head.load(Ordering::Relaxed);
        let serve = setup.serve()?;
        p.kill_listen = serve.listening;
        p.kill_first = first_query(&serve, &setup.pki, &last, head).await?;
        p.kill_rss = serve.memory()?.0;
        serve.stop()?;

        progress("keten verify, keten replay");
        let data = setup.data.display().to_string();
        p.verify = setup.keten_ok(&["verify", &data])?;
        p.replay = setup.keten_ok(&["replay", "--data", &data])?;
        p.loadavg_end = loadavg();
        let reached_budget = budget.is_some_and(|b| began.elapsed() >= b);
        points.push(p);
        print_scale(&args, &points);
        if reached_budget {
            progress("the generation budget is spent: stopping at this size");
            break;
        }
    }
    if let Some(pg) = pg {
        pg.drop().await?;
    }
    Ok(())
}

/// Pages through every family with a warning that a review moment passed, 1,000 a page: the
/// time, the pages and the families matched.
async fn list_all(url: &str, pki: &Path) -> Result<(Duration, u64, u64)> {
    let s = coordinator(
        keten::client::connect(url, pki, scenario::MUNICIPALITY).await?,
        0,
    );
    let mut c = s.coordination();
    let t = Instant::now();
    let (mut token, mut pages, mut matched) = (String::new(), 0u64, 0u64);
    loop {
        let r = c
            .list_families(s.request(v1::ListFamiliesRequest {
                warning_kind: Some(v1::WarningKind::ReviewOverdue as i32),
                page_size: 1000,
                page_token: token,
                ..Default::default()
            }))
            .await?
            .into_inner();
        pages += 1;
        matched += r.families.len() as u64;
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    Ok((t.elapsed(), pages, matched))
}

/// Coordinators ask for random families' plans while the generator publishes new families.
async fn plans_under_load(
    url: &str,
    pki: &Path,
    generator: &Generator,
    clients: usize,
    coordinators: usize,
    families: u64,
    duration: Duration,
) -> Result<hdrhistogram::Histogram<u64>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut queries = Vec::new();
    for c in 0..coordinators {
        let s = coordinator(
            keten::client::connect(url, pki, scenario::MUNICIPALITY).await?,
            c,
        );
        let stop = stop.clone();
        queries.push(tokio::spawn(async move {
            let mut hist = stats::histogram();
            let mut x = 0x2545_F491_4F6C_DD1D_u64 ^ c as u64;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let family = family_id(x % families);
                let t = Instant::now();
                s.coordination()
                    .get_family_plan(s.request(v1::GetFamilyPlanRequest {
                        family_id: family.to_string(),
                        min_position: None,
                    }))
                    .await?;
                stats::record(&mut hist, t.elapsed());
            }
            anyhow::Ok(hist)
        }));
    }
    let deadline = Instant::now() + duration;
    generator
        .run(url, pki, clients, move |_| Instant::now() >= deadline)
        .await?;
    stop.store(true, Ordering::Relaxed);
    let mut hist = stats::histogram();
    for q in queries {
        hist.add(q.await??)?;
    }
    Ok(hist)
}

/// Allocated bytes (not apparent sizes) of the data directory's parts.
fn disk(data: &Path) -> Result<BTreeMap<&'static str, u64>> {
    fn walk(dir: &Path, f: &mut dyn FnMut(&Path, u64)) -> Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let md = e.metadata()?;
            if md.is_dir() {
                walk(&e.path(), f)?;
            } else {
                use std::os::unix::fs::MetadataExt;
                f(&e.path(), md.blocks() * 512);
            }
        }
        Ok(())
    }
    let mut m = BTreeMap::new();
    walk(data, &mut |path, bytes| {
        let rel = path.strip_prefix(data).unwrap_or(path);
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let part = match top {
            "log" if name.ends_with(".ckpt") => "index",
            "log" => "log",
            "keys" => "keys",
            "access" => "access log",
            "projection" => "projection snapshot",
            _ => "other",
        };
        *m.entry(part).or_insert(0) += bytes;
    })?;
    Ok(m)
}

fn print_scale(args: &ScaleArgs, points: &[Point]) {
    let mut header = vec!["measure".to_string()];
    header.extend(
        points
            .iter()
            .map(|p| format!("{} events", fmt_rate(p.events as f64))),
    );
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    let mut row = |name: &str, f: &dyn Fn(&Point) -> String| {
        let mut r = vec![name.to_string()];
        r.extend(points.iter().map(f));
        t.row(r);
    };
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0));
    let per_event = |b: u64, p: &Point| format!("{:.0} B", b as f64 / p.events.max(1) as f64);
    row("families", &|p| fmt_rate(p.families as f64));
    row("generation through Publish (events/s)", &|p| {
        format!(
            "{} ({} in {:.0} s)",
            fmt_rate(p.gen_events as f64 / p.generating.as_secs_f64().max(1e-9)),
            fmt_rate(p.gen_events as f64),
            p.generating.as_secs_f64()
        )
    });
    row("RSS at the end of generating", &|p| mib(p.gen_rss));
    row("clean stop → listening", &|p| secs(p.clean_listen));
    row("clean stop → first GetFamilyPlan at the head", &|p| {
        secs(p.clean_first)
    });
    row("RSS after opening (clean)", &|p| mib(p.clean_rss));
    row("RSS per event after opening", &|p| {
        per_event(p.clean_rss, p)
    });
    row("ListFamilies review_overdue, all pages", &|p| {
        format!(
            "{} ({} families, {} pages)",
            secs(p.list),
            fmt_rate(p.list_matched as f64),
            p.list_pages
        )
    });
    row("GetFamilyPlan p50 / p99 under publishing", &|p| {
        p.plan_hist.as_ref().map_or("-".into(), |h| {
            format!(
                "{} / {} µs ({} queries)",
                fmt_us(h.value_at_quantile(0.5) as f64 / 1000.0),
                fmt_us(h.value_at_quantile(0.99) as f64 / 1000.0),
                fmt_rate(h.len() as f64)
            )
        })
    });
    row("…publishing meanwhile (events/s)", &|p| {
        fmt_rate(p.load_events as f64 / p.load_secs.max(1e-9))
    });
    row("RSS after that load (peak)", &|p| {
        format!("{} ({})", mib(p.load_rss), mib(p.load_hwm))
    });
    row("SIGKILL → listening", &|p| secs(p.kill_listen));
    row("SIGKILL → first GetFamilyPlan at the head", &|p| {
        secs(p.kill_first)
    });
    row("RSS after opening (after SIGKILL)", &|p| mib(p.kill_rss));
    row("keten replay (projection rebuild)", &|p| {
        format!(
            "{} ({}/s)",
            secs(p.replay),
            fmt_rate(p.events as f64 / p.replay.as_secs_f64().max(1e-9))
        )
    });
    row("keten verify (hash chain)", &|p| secs(p.verify));
    for part in ["log", "index", "keys", "access log", "projection snapshot"] {
        row(&format!("disk: {part} (per event)"), &|p| {
            let b = p.disk.get(part).copied().unwrap_or(0);
            format!("{} ({})", mib(b), per_event(b, p))
        });
    }
    row("disk: keten in all (per event)", &|p| {
        let b: u64 = p.disk.values().sum();
        format!("{} ({})", mib(b), per_event(b, p))
    });
    row("disk: PostgreSQL table + indexes (per event)", &|p| {
        p.pg_bytes
            .map_or("-".into(), |b| format!("{} ({})", mib(b), per_event(b, p)))
    });
    row("load average (generating / at the end)", &|p| {
        format!("{} / {}", p.loadavg_gen, p.loadavg_end)
    });
    println!(
        "\nScale: one data set through the sizes ({} generating clients, {} coordinators)\n",
        args.clients, args.coordinators
    );
    println!("{}", t.render(args.markdown));
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL holding the same events.

/// The events a family's course publishes, in keten's stored form, in a PostgreSQL table as an
/// application would keep them: one row per event, payload and metadata as `jsonb`, unique per
/// (stream, version) and per event id (keten's idempotency).
struct PgCopy {
    conn: String,
}

const PG_SCHEMA: &str = "keten_bench_scale";

/// A statement's rows, column by column: event id, stream, version, type, metadata, payload.
#[derive(Default)]
struct Columns(
    Vec<String>,
    Vec<String>,
    Vec<i64>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
);

impl PgCopy {
    async fn setup(conn: &str) -> Result<Self> {
        let client = crate::pg::connect(conn).await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {s} CASCADE;
                 CREATE SCHEMA {s};
                 CREATE TABLE {s}.events (
                     global_position bigserial PRIMARY KEY,
                     event_id uuid NOT NULL UNIQUE,
                     stream_id text NOT NULL,
                     version bigint NOT NULL,
                     type text NOT NULL,
                     committed_at timestamptz NOT NULL DEFAULT now(),
                     metadata jsonb NOT NULL,
                     data jsonb NOT NULL,
                     UNIQUE (stream_id, version)
                 );",
                s = PG_SCHEMA
            ))
            .await?;
        Ok(Self { conn: conn.into() })
    }

    /// Families `range`, four connections at once, 2,000 rows a statement.
    async fn fill(&self, range: std::ops::Range<u64>, per_family: u64) -> Result<()> {
        let next = Arc::new(AtomicU64::new(range.start));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let client = crate::pg::connect(&self.conn).await?;
            let next = next.clone();
            let end = range.end;
            tasks.push(tokio::spawn(async move {
                let insert = format!(
                    "INSERT INTO {PG_SCHEMA}.events (event_id, stream_id, version, type, metadata, data)
                     SELECT i::uuid, s, v, t, m::jsonb, d::jsonb
                     FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[])
                       AS u(i, s, v, t, m, d)"
                );
                let stmt = client.prepare(&insert).await?;
                let mut cols = Columns::default();
                loop {
                    let f = next.fetch_add(1, Ordering::Relaxed);
                    let done = f >= end;
                    if !done {
                        let family = family_id(f);
                        let stream = stored::stream_id(&family).to_string();
                        let mut v = 0i64;
                        for step in course(f, per_family) {
                            let meta = EventMetadata::from_actor(&actor(&step.who));
                            for e in &step.events {
                                let id = course_event_id(f, v as u64);
                                let p = stored::encode(EventId(id), e, &meta);
                                cols.0.push(id.to_string());
                                cols.1.push(stream.clone());
                                cols.2.push(v);
                                cols.3.push(p.event_type.to_string());
                                cols.4.push(String::from_utf8(p.metadata)?);
                                cols.5.push(String::from_utf8(p.payload)?);
                                v += 1;
                            }
                        }
                    }
                    if cols.0.len() >= 2000 || (done && !cols.0.is_empty()) {
                        client
                            .execute(
                                &stmt,
                                &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5],
                            )
                            .await?;
                        cols = Default::default();
                    }
                    if done {
                        return anyhow::Ok(());
                    }
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        // Vacuumed and analysed, as a production table would be after a while.
        crate::pg::connect(&self.conn)
            .await?
            .batch_execute(&format!("VACUUM ANALYZE {PG_SCHEMA}.events"))
            .await?;
        Ok(())
    }

    async fn size(&self) -> Result<u64> {
        let client = crate::pg::connect(&self.conn).await?;
        let row = client
            .query_one(
                &format!("SELECT pg_total_relation_size('{PG_SCHEMA}.events')"),
                &[],
            )
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn drop(self) -> Result<()> {
        crate::pg::connect(&self.conn)
            .await?
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            .await?;
        Ok(())
    }
}

fn actor(who: &Who) -> Actor {
    let kind = scenario::PARTNERS
        .iter()
        .find(|(id, _, _)| *id == who.partner)
        .map_or(PartnerKind::Municipality, |(_, k, _)| *k);
    Actor {
        person: PersonId::new(who.person).expect("the scenario's persons are valid"),
        role: who.role,
        partner: scenario::pid(who.partner),
        partner_kind: kind,
    }
}

// ---------------------------------------------------------------------------------------------
// `keten-bench load`.

/// What the publishing side saw.
#[derive(Default)]
struct Outcome {
    calls: u64,
    events: u64,
    hist: Option<hdrhistogram::Histogram<u64>>,
    errors: BTreeMap<String, u64>,
    acked: Vec<uuid::Uuid>,
}

impl Outcome {
    fn merge(&mut self, o: Outcome) -> Result<()> {
        self.calls += o.calls;
        self.events += o.events;
        match (&mut self.hist, o.hist) {
            (Some(h), Some(x)) => h.add(x)?,
            (h @ None, x) => *h = x,
            (_, None) => {}
        }
        for (k, v) in o.errors {
            *self.errors.entry(k).or_insert(0) += v;
        }
        self.acked.extend(o.acked);
        Ok(())
    }
}

fn code_name(s: &tonic::Status) -> String {
    format!("{:?}", s.code())
}

/// The version in a wrong-expected-version message ("… but the family is at N").
fn actual_version(s: &tonic::Status) -> Option<u64> {
    s.message()
        .rsplit_once("the family is at ")
        .and_then(|(_, v)| v.trim().parse().ok())
}

pub async fn run_load(args: LoadArgs) -> Result<()> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let root = tempfile::Builder::new()
        .prefix("keten-bench-load-")
        .tempdir_in(&base)?
        .keep();
    let mut setup = Setup::new(&root, args.keten.clone())?;
    let serve = setup.serve()?;
    let url = serve.url.clone();
    let pki = setup.pki.clone();
    let load_before = loadavg();
    let duration = Duration::from_secs_f64(args.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    // Families whose course is done: the police and the coordinators pick from these.
    let done: Arc<Mutex<Vec<u64>>> = Arc::default();
    let began = Instant::now();
    let over = {
        let (stop, events) = (stop.clone(), events.clone());
        let max = args.max_events;
        move || {
            stop.load(Ordering::Relaxed)
                || began.elapsed() >= duration
                || events.load(Ordering::Relaxed) >= max
        }
    };

    let mut publishers = Vec::new();
    for _ in 0..args.partners {
        let partners = Partners::connect(&url, &pki).await?;
        let (next, events, done, over) = (next.clone(), events.clone(), done.clone(), over.clone());
        publishers.push(tokio::spawn(async move {
            let mut o = Outcome {
                hist: Some(stats::histogram()),
                ..Default::default()
            };
            let head = AtomicU64::new(0);
            'families: while !over() {
                let f = next.fetch_add(1, Ordering::Relaxed);
                let family = family_id(f);
                let mut version = None;
                let mut seq = 0u64;
                for step in course(f, 100) {
                    if over() {
                        break 'families;
                    }
                    let n = step.events.len() as u64;
                    let ids: Vec<_> = (seq..seq + n).map(|i| course_event_id(f, i)).collect();
                    let mut kind = version.map_or(Kind::NoStream(v1::Empty {}), Kind::Exact);
                    loop {
                        let t = Instant::now();
                        match publish(&partners, &family, &step, kind, ids.iter().copied()).await {
                            Ok(a) => {
                                stats::record(o.hist.as_mut().expect("set"), t.elapsed());
                                head.fetch_max(a.last_position, Ordering::Relaxed);
                                version = Some(a.version);
                                o.calls += 1;
                                o.events += n;
                                events.fetch_add(n, Ordering::Relaxed);
                                o.acked.extend(&ids);
                                break;
                            }
                            Err(s) => {
                                *o.errors.entry(code_name(&s)).or_insert(0) += 1;
                                // The police slipped a contact in: publish on top of it.
                                match actual_version(&s) {
                                    Some(v) if s.code() == tonic::Code::Aborted => {
                                        kind = Kind::Exact(v)
                                    }
                                    _ => continue 'families,
                                }
                            }
                        }
                    }
                    seq += n;
                }
                done.lock().expect("not poisoned").push(f);
            }
            anyhow::Ok(o)
        }));
    }

    // Police systems publishing contacts to families in their course, with the version they
    // saw last: an expected-version conflict refreshes it and tries again.
    for p in 0..args.police {
        let partners = Partners::connect(&url, &pki).await?;
        let (next, events, over) = (next.clone(), events.clone(), over.clone());
        publishers.push(tokio::spawn(async move {
            let mut o = Outcome {
                hist: Some(stats::histogram()),
                ..Default::default()
            };
            let mut seen: HashMap<u64, u64> = HashMap::new();
            let mut x = 0x9E37_79B9_u64 + p as u64;
            let mut seq = 0u64;
            while !over() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // A family among the last few started: its course is under way, the police
                // have joined it or are about to.
                let latest = next.load(Ordering::Relaxed);
                if latest < 8 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                let f = latest - 1 - x % latest.min(64);
                let step = Step {
                    label: "the police record a contact",
                    who: scenario::police_system(),
                    events: vec![Event::PoliceContactRecorded {
                        member_id: Some(mid("c2")),
                        occurred_on: course_day(f),
                    }],
                };
                seq += 1;
                // Ids of their own, apart from the course's.
                let id = event_id(1_000_000_000 + p, seq);
                let kind = Kind::Exact(seen.get(&f).copied().unwrap_or(0));
                let t = Instant::now();
                match publish(&partners, &family_id(f), &step, kind, std::iter::once(id)).await {
                    Ok(a) => {
                        stats::record(o.hist.as_mut().expect("set"), t.elapsed());
                        seen.insert(f, a.version);
                        o.calls += 1;
                        o.events += 1;
                        events.fetch_add(1, Ordering::Relaxed);
                        o.acked.push(id);
                    }
                    Err(s) => {
                        *o.errors.entry(code_name(&s)).or_insert(0) += 1;
                        if let Some(v) = actual_version(&s) {
                            seen.insert(f, v);
                        }
                    }
                }
            }
            anyhow::Ok(o)
        }));
    }

    // Coordinators: two watch families as they finish their course; the others query.
    let mut watchers = Vec::new();
    for w in 0..2 {
        let s = coordinator(
            keten::client::connect(&url, &pki, scenario::MUNICIPALITY).await?,
            100 + w,
        );
        let (next, stop) = (next.clone(), stop.clone());
        let watches = args.watches;
        watchers.push(tokio::spawn(async move {
            let updates = Arc::new(AtomicU64::new(0));
            let mut streams = Vec::new();
            let mut watched = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let latest = next.load(Ordering::Relaxed);
                if watched.len() < watches && latest > 0 && watched.insert(latest - 1) {
                    let mut c = s.coordination();
                    let req = s.request(v1::WatchFamilyPlanRequest {
                        family_id: family_id(latest - 1).to_string(),
                    });
                    let updates = updates.clone();
                    streams.push(tokio::spawn(async move {
                        let mut stream = c.watch_family_plan(req).await?.into_inner();
                        while stream.message().await?.is_some() {
                            updates.fetch_add(1, Ordering::Relaxed);
                        }
                        anyhow::Ok(())
                    }));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let n = streams.len();
            for t in streams {
                t.abort();
            }
            anyhow::Ok((n, updates.load(Ordering::Relaxed)))
        }));
    }
    let mut queriers = Vec::new();
    for c in 0..args.coordinators {
        let s = coordinator(
            keten::client::connect(&url, &pki, scenario::MUNICIPALITY).await?,
            c,
        );
        let (done, stop) = (done.clone(), stop.clone());
        queriers.push(tokio::spawn(async move {
            let mut hist = stats::histogram();
            let mut list_hist = stats::histogram();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut x = 0x2545_F491_u64 + c as u64;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let f = {
                    let d = done.lock().expect("not poisoned");
                    if d.is_empty() {
                        None
                    } else {
                        Some(d[(x % d.len() as u64) as usize])
                    }
                };
                let Some(f) = f else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                n += 1;
                let t = Instant::now();
                let r = if n.is_multiple_of(20) {
                    s.coordination()
                        .list_families(s.request(v1::ListFamiliesRequest {
                            warning_kind: Some(v1::WarningKind::ReviewOverdue as i32),
                            page_size: 100,
                            ..Default::default()
                        }))
                        .await
                        .map(|_| stats::record(&mut list_hist, t.elapsed()))
                } else {
                    s.coordination()
                        .get_family_plan(s.request(v1::GetFamilyPlanRequest {
                            family_id: family_id(f).to_string(),
                            min_position: None,
                        }))
                        .await
                        .map(|_| stats::record(&mut hist, t.elapsed()))
                };
                if let Err(s) = r {
                    *errors.entry(code_name(&s)).or_insert(0) += 1;
                }
            }
            anyhow::Ok((hist, list_hist, errors))
        }));
    }

    let mut out = Outcome::default();
    for p in publishers {
        out.merge(p.await??)?;
    }
    let elapsed = began.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut plan_hist, mut list_hist) = (stats::histogram(), stats::histogram());
    let mut query_errors: BTreeMap<String, u64> = BTreeMap::new();
    for q in queriers {
        let (h, l, e) = q.await??;
        plan_hist.add(h)?;
        list_hist.add(l)?;
        for (k, v) in e {
            *query_errors.entry(k).or_insert(0) += v;
        }
    }
    let (mut watched, mut updates) = (0, 0);
    for w in watchers {
        let (n, u) = w.await??;
        watched += n;
        updates += u;
    }
    let (rss, hwm) = serve.memory()?;
    let load_after = loadavg();
    serve.stop()?;

    progress("keten verify, then read every acknowledged event back as an auditor");
    let data = setup.data.display().to_string();
    let verify = setup.keten_ok(&["verify", &data]);
    let serve = setup.serve()?;
    let auditor = keten::client::Session::new(
        keten::client::connect(&serve.url, &setup.pki, scenario::MUNICIPALITY).await?,
        "auditor-1",
        Role::Auditor,
    )
    .with_purpose("benchmark: read-back");
    let t = Instant::now();
    let mut stream = auditor
        .audit()
        .read_all(auditor.request(v1::ReadAllRequest::default()))
        .await?
        .into_inner();
    let mut present = HashSet::new();
    while let Some(m) = stream.message().await? {
        if let Some(e) = m.event {
            present.insert(e.event_id);
        }
    }
    let read_back = t.elapsed();
    serve.stop()?;
    let missing = out
        .acked
        .iter()
        .filter(|id| !present.contains(&id.to_string()))
        .count();

    let hist = out.hist.take().unwrap_or_else(stats::histogram);
    let q =
        |h: &hdrhistogram::Histogram<u64>, p: f64| fmt_us(h.value_at_quantile(p) as f64 / 1000.0);
    let mut t = Table::new(&["measure", "value"]);
    let mut row = |k: &str, v: String| t.row(vec![k.into(), v]);
    row(
        "publishing clients",
        format!(
            "{} partner (course) + {} police (contacts, versions they last saw)",
            args.partners, args.police
        ),
    );
    row(
        "coordinators",
        format!(
            "{} querying, 2 watching {watched} families ({updates} plan updates received)",
            args.coordinators
        ),
    );
    row("run", format!("{:.1} s", elapsed.as_secs_f64()));
    row(
        "acknowledged",
        format!(
            "{} events in {} calls over {} families",
            fmt_rate(out.events as f64),
            fmt_rate(out.calls as f64),
            next.load(Ordering::Relaxed)
        ),
    );
    row(
        "sustained throughput",
        format!(
            "{} events/s, {} calls/s",
            fmt_rate(out.events as f64 / elapsed.as_secs_f64()),
            fmt_rate(out.calls as f64 / elapsed.as_secs_f64())
        ),
    );
    row(
        "Publish p50 / p90 / p99 / p99.9 / max",
        format!(
            "{} / {} / {} / {} / {} µs",
            q(&hist, 0.5),
            q(&hist, 0.9),
            q(&hist, 0.99),
            q(&hist, 0.999),
            q(&hist, 1.0)
        ),
    );
    row(
        "GetFamilyPlan p50 / p99 (queries)",
        format!(
            "{} / {} µs ({})",
            q(&plan_hist, 0.5),
            q(&plan_hist, 0.99),
            fmt_rate(plan_hist.len() as f64)
        ),
    );
    row(
        "ListFamilies (first 100) p50 / p99 (queries)",
        format!(
            "{} / {} µs ({})",
            q(&list_hist, 0.5),
            q(&list_hist, 0.99),
            fmt_rate(list_hist.len() as f64)
        ),
    );
    row("publish errors by code", format!("{:?}", out.errors));
    row("query errors by code", format!("{query_errors:?}"));
    let unexpected: u64 = out
        .errors
        .iter()
        .filter(|(k, _)| k.as_str() != "Aborted")
        .map(|(_, v)| v)
        .chain(query_errors.values())
        .sum();
    row(
        "errors other than expected-version conflicts",
        unexpected.to_string(),
    );
    row(
        "server RSS at the end (peak)",
        format!(
            "{:.0} MiB ({:.0} MiB)",
            rss as f64 / 1048576.0,
            hwm as f64 / 1048576.0
        ),
    );
    row(
        "keten verify",
        match &verify {
            Ok(d) => format!("passed in {:.2} s", d.as_secs_f64()),
            Err(e) => format!("FAILED: {e}"),
        },
    );
    row(
        "acknowledged events read back (ReadAll as auditor)",
        format!(
            "{} of {} present, {missing} missing; {} in the log; read in {:.2} s",
            out.acked.len() - missing,
            out.acked.len(),
            present.len(),
            read_back.as_secs_f64()
        ),
    );
    row(
        "load average before / after",
        format!("{load_before} / {load_after}"),
    );
    row("data directory", root.display().to_string());
    println!("\nLoad\n");
    println!("{}", t.render(args.markdown));
    ensure!(missing == 0, "{missing} acknowledged events are missing");
    verify?;
    ensure!(unexpected == 0, "{unexpected} unexpected errors");
    Ok(())
}

fn progress(msg: &str) {
    eprintln!("[keten-bench] {msg}");
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
