//! `cargo run --release -p keten-bench -- server`: keten's `Publish` end to end, over gRPC with
//! mutual TLS, side by side in one run with the file log's own append rate and PostgreSQL's
//! transactions, and the projection rebuild of a cold log of 1,000,000 events over 10,000
//! families.
//!
//! The server runs in this process (the real `keten_server::serve` on a real socket, fsync
//! durability); each client is a partner system with its own TLS connection, publishing to its
//! own family with an exact expected version, as partner systems do.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use keten_domain::{Event, FamilyId, FamilyType, PartnerKind, PersonId, Role, Urgency};
use keten_log::{
    Direction, Durability, EventId, EventStore, ExpectedVersion, FileLog, FileLogOptions,
    GlobalPosition, ReadFrom, Until,
};
use keten_projection::stored::{self, EventMetadata};
use keten_projection::{ProjectionOptions, Projections};
use keten_proto::convert;
use keten_proto::v1::{self, expected_version::Kind};
use keten_server::config::{PartnerConfig, TlsConfig};
use tokio::sync::oneshot;

use crate::stats::{self, Measured, Table, fmt_rate, fmt_us};
use crate::workload::event_id;

#[derive(Parser)]
pub struct ServerArgs {
    /// Seconds each publish case runs, per round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds over all publish cases; a case's rounds are pooled.
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// Concurrent clients in the many-client cases.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Events in the log the projection is rebuilt from.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Families those events are spread over.
    #[arg(long, default_value_t = 10_000)]
    families: u64,
    /// PostgreSQL connection string, for its rows beside keten's.
    #[arg(
        long,
        default_value = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    )]
    pg: String,
    /// Leave PostgreSQL out.
    #[arg(long)]
    no_pg: bool,
    /// Where the data goes (a temporary directory inside it, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the tables as Markdown.
    #[arg(long)]
    markdown: bool,
    /// Run only these publish cases, named `system-events-clients` with system one of `grpc`,
    /// `log`, `pg` (e.g. `grpc-1-16,log-1-16`); all of them when empty. For profiling one case.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Leave out the projection rebuild.
    #[arg(long)]
    no_rebuild: bool,
}

const PARTNER: &str = "politie";
/// Calls to one family before a client moves on to a new one: at most 20 or 2,000 events a
/// family, as real families have tens to hundreds.
const CALLS_PER_FAMILY: u64 = 20;

#[derive(Clone, Copy, Debug)]
enum Case {
    /// Events per call, clients.
    Grpc(usize, usize),
    Log(usize, usize),
    Pg(usize, usize),
}

impl Case {
    /// As `--only` names it.
    fn name(&self) -> String {
        match *self {
            Case::Grpc(b, c) => format!("grpc-{b}-{c}"),
            Case::Log(b, c) => format!("log-{b}-{c}"),
            Case::Pg(b, c) => format!("pg-{b}-{c}"),
        }
    }
}

pub async fn run(args: ServerArgs) -> Result<()> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("keten-bench-server-")
        .tempdir_in(&base)?;
    let pki = tmp.path().join("pki");
    keten::pki::write_pki(&pki, &[(PARTNER.into(), PARTNER.into())])?;
    let secs = Duration::from_secs_f64(args.seconds);
    if !args.no_pg {
        crate::pg::setup(&args.pg).await?;
    }
    let mut cases = Vec::new();
    for clients in [1, args.clients] {
        for batch in [1, 100] {
            cases.push(Case::Grpc(batch, clients));
            cases.push(Case::Log(batch, clients));
            if !args.no_pg {
                cases.push(Case::Pg(batch, clients));
            }
        }
    }
    cases.retain(|c| args.only.is_empty() || args.only.contains(&c.name()));
    let mut pooled: Vec<Option<Measured>> = cases.iter().map(|_| None).collect();
    let mut diagnosed: Vec<Diagnosis> = cases.iter().map(|_| Diagnosis::default()).collect();
    for round in 1..=args.rounds {
        for ((case, pool), diag) in cases.iter().zip(&mut pooled).zip(&mut diagnosed) {
            eprintln!("[keten-bench] round {round}/{}: {case:?}", args.rounds);
            let cpu_before = process_cpu();
            let m = match *case {
                Case::Grpc(batch, clients) => {
                    let (m, behind) =
                        grpc(&tmp.path().join("grpc"), &pki, clients, batch, secs).await?;
                    diag.waited += behind.waited;
                    diag.folded += behind.folded;
                    m
                }
                Case::Log(batch, clients) => {
                    let d = tmp.path().join("log");
                    let m =
                        crate::keten::write(&d, clients, batch, secs, Durability::Fsync).await?;
                    std::fs::remove_dir_all(&d)?;
                    m
                }
                Case::Pg(batch, clients) => {
                    crate::pg::truncate(&args.pg).await?;
                    crate::pg::write(&args.pg, clients, batch, secs).await?
                }
            };
            // PostgreSQL works in its own processes: only its client's share is ours.
            if !matches!(case, Case::Pg(..)) {
                diag.cpu += process_cpu().saturating_sub(cpu_before);
                diag.calls += m.ops;
            }
            match pool {
                Some(p) => p.pool(m),
                None => *pool = Some(m.first_round()),
            }
        }
    }
    if !args.no_pg {
        crate::pg::drop_schema(&args.pg).await?;
    }
    let rebuild = if args.no_rebuild {
        None
    } else {
        eprintln!(
            "[keten-bench] a log of {} events over {} families: fill, rebuild",
            args.events, args.families
        );
        Some(rebuild(&tmp.path().join("rebuild"), args.events, args.families).await?)
    };
    tmp.close()?;

    let measured: Vec<(Case, Measured)> = cases
        .into_iter()
        .zip(pooled)
        .map(|(c, m)| (c, m.expect("at least one round")))
        .collect();
    report(&args, &measured, rebuild.as_ref());
    report_diagnosis(&args, &measured, &diagnosed);
    Ok(())
}

/// What a case cost beyond its rate: this process's CPU time (clients, server, projection and
/// log writer share it, as they share the machine's cores), and how often a publish found the
/// projection behind the family it validates against.
#[derive(Default)]
struct Diagnosis {
    cpu: Duration,
    calls: u64,
    waited: u64,
    folded: u64,
}

/// User plus system CPU time of this process so far, threads that ended included
/// (`/proc/self/stat`, in clock ticks of 10 ms: about 0.3% of a 3-second case).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name in parentheses may hold spaces; the fields after it do not.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |n: usize| {
        after
            .split_whitespace()
            .nth(n)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    const TICK: Duration = Duration::from_millis(10);
    TICK * u32::try_from(field(11) + field(12)).unwrap_or(u32::MAX)
}

fn report_diagnosis(args: &ServerArgs, measured: &[(Case, Measured)], diagnosed: &[Diagnosis]) {
    let mut t = Table::new(&[
        "case",
        "calls",
        "process CPU µs/call",
        "process CPU µs/event",
        "publishes that waited for the projection",
        "…that folded the family from the log",
    ]);
    for ((case, m), d) in measured.iter().zip(diagnosed) {
        if matches!(case, Case::Pg(..)) {
            continue;
        }
        let per_call = d.cpu.as_secs_f64() * 1e6 / d.calls.max(1) as f64;
        let grpc = matches!(case, Case::Grpc(..));
        t.row(vec![
            m.system.clone() + &format!(", {} client(s)", m.writers),
            fmt_rate(d.calls as f64),
            format!("{per_call:.0}"),
            format!("{:.1}", per_call / m.batch as f64),
            if grpc {
                fmt_rate(d.waited as f64)
            } else {
                String::new()
            },
            if grpc {
                fmt_rate(d.folded as f64)
            } else {
                String::new()
            },
        ]);
    }
    println!(
        "\nDiagnostics, not targets: CPU time of the benchmark process (clients and server share \
         it) per call, all rounds\n"
    );
    println!("{}", t.render(args.markdown));
}

/// Publishes that found the projection behind the family's stream, by what they did.
#[derive(Default)]
struct Behind {
    waited: u64,
    folded: u64,
}

/// One fresh server on a fresh data directory; `clients` partner systems publish `batch`
/// events per call for `duration`.
async fn grpc(
    dir: &Path,
    pki: &Path,
    clients: usize,
    batch: usize,
    duration: Duration,
) -> Result<(Measured, Behind)> {
    let log = FileLog::open(dir.join("log"), FileLogOptions::default()).await?;
    let store: Arc<dyn EventStore> = Arc::new(log.clone());
    let (url, stop_tx, server, app) = start_app(store, pki, None).await?;
    let barrier = Arc::new(tokio::sync::Barrier::new(clients));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let channel = keten::client::connect(&url, pki, PARTNER).await?;
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            client(channel, c, batch, duration, &barrier).await
        }));
    }
    let mut m = Measured::new(
        format!("keten Publish over gRPC+mTLS, {batch} event(s)/call"),
        clients,
        batch,
    );
    for t in tasks {
        let (ops, elapsed, hist) = t.await??;
        m.add_writer(ops, elapsed, &hist);
    }
    let st = log.stats();
    m.note = format!("{:.1}", st.appends as f64 / st.syncs.max(1) as f64);
    let behind = |outcome: &str| {
        app.metrics
            .projection_behind
            .get_or_create(&vec![("outcome".to_string(), outcome.to_string())])
            .get()
    };
    let behind = Behind {
        waited: behind("waited"),
        folded: behind("folded"),
    };
    drop(app);
    let _ = stop_tx.send(());
    server.await??;
    log.close().await?;
    std::fs::remove_dir_all(dir)?;
    Ok((m, behind))
}

/// What privacy costs, when a benchmark measures it: the key store and the access log's store.
/// `None` runs the server with encryption and the access log turned off.
pub(crate) type Privacy = Option<(Arc<dyn keten_keys::KeyStore>, Arc<dyn EventStore>)>;

/// The real `keten_server::serve` on `store`, on a free loopback port, with the one benchmark
/// partner of `pki`: its URL, the switch that stops it, and its task.
pub(crate) async fn start(
    store: Arc<dyn EventStore>,
    pki: &Path,
    privacy: Privacy,
) -> Result<(
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<keten_server::Result<()>>,
)> {
    let (url, stop, task, _) = start_app(store, pki, privacy).await?;
    Ok((url, stop, task))
}

/// [`start`], with what the server's services share (its metrics, for the diagnostics).
async fn start_app(
    store: Arc<dyn EventStore>,
    pki: &Path,
    privacy: Privacy,
) -> Result<(
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<keten_server::Result<()>>,
    Arc<keten_server::App>,
)> {
    let settings = keten_server::Settings {
        listen: "127.0.0.1:0".parse()?,
        metrics_listen: None,
        tls: TlsConfig {
            ca: pki.join("ca.pem"),
            cert: pki.join("server.pem"),
            key: pki.join("server.key"),
        },
        partners: vec![PartnerConfig {
            id: partner_id(),
            kind: PartnerKind::Police,
            name: "Politie (benchmark)".into(),
            certificate: PARTNER.into(),
            roles: vec![Role::PartnerSystem],
            municipality: Some("Benchmark".into()),
        }],
        snapshot_dir: None,
        data_dir: None,
        read_wait: Duration::from_secs(5),
        proofs: None,
        privacy: keten_server::config::PrivacyConfig {
            encryption: privacy.is_some(),
            access_log: privacy.is_some(),
            ..Default::default()
        },
        limits: Default::default(),
    };
    let (keys, access) = match privacy {
        Some((keys, access)) => (Some(keys), Some(access)),
        None => (None, None),
    };
    let stores = keten_server::Stores {
        log: store,
        keys,
        access,
    };
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(keten_server::serve(
        settings,
        stores,
        move |b| {
            let _ = ready_tx.send((b.grpc, b.app.clone()));
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let (addr, app) = ready_rx
        .await
        .context("the benchmark server did not start")?;
    Ok((format!("https://{addr}"), stop_tx, server, app))
}

/// One partner system publishing `batch` events per call, each family with exact expected
/// versions: its calls, its time and its latencies.
pub(crate) async fn client(
    channel: tonic::transport::Channel,
    c: usize,
    batch: usize,
    duration: Duration,
    barrier: &tokio::sync::Barrier,
) -> Result<(u64, Duration, hdrhistogram::Histogram<u64>)> {
    let session = keten::client::Session::new(channel, format!("sys-{c}"), Role::PartnerSystem);
    let mut gateway = session.gateway();
    let today = keten_projection::today();
    // About the 300 bytes of the log benchmark's payload once stored as the domain's JSON.
    let nuisance = convert::event_to_proto(&Event::NuisanceReported {
        description: "x".repeat(210),
        occurred_on: today,
    });
    let mut seq = 0u64;
    let mut hist = stats::histogram();
    let mut ops = 0u64;
    let mut family_no = 0u64;
    let mut version = None;
    barrier.wait().await;
    let began = Instant::now();
    while began.elapsed() < duration {
        // A family's history stays the size of a real one: a new family every few calls, its
        // registration the first event of the first call.
        if ops.is_multiple_of(CALLS_PER_FAMILY) {
            family_no += 1;
            version = None;
        }
        let family = FamilyId::new(format!("bench-{c}-{family_no}"))?;
        let mut events = Vec::with_capacity(batch);
        if version.is_none() {
            events.push(convert::event_to_proto(&Event::FamilyRegistered {
                family_id: family.clone(),
                family_type: FamilyType::DirectHelp,
                urgency: Urgency::Urgent,
                occurred_on: today,
            }));
        }
        events.resize(batch, nuisance.clone());
        let kind = version.map_or(Kind::NoStream(v1::Empty {}), Kind::Exact);
        let events = events
            .into_iter()
            .map(|e| {
                seq += 1;
                v1::PublishedEvent {
                    event_id: event_id(c, seq).to_string(),
                    event: Some(e),
                }
            })
            .collect();
        let req = session.request(v1::PublishRequest {
            family_id: family.to_string(),
            expected: Some(v1::ExpectedVersion { kind: Some(kind) }),
            events,
            correlation_id: None,
        });
        let t = Instant::now();
        let r = gateway.publish(req).await?.into_inner();
        stats::record(&mut hist, t.elapsed());
        version = Some(r.version);
        ops += 1;
    }
    Ok((ops, began.elapsed(), hist))
}

/// The one partner the benchmark server knows, with its certificate in `pki`.
pub(crate) fn write_pki(pki: &Path) -> Result<()> {
    keten::pki::write_pki(pki, &[(PARTNER.into(), PARTNER.into())])
}

/// A connection to the benchmark server as its partner.
pub(crate) async fn connect(url: &str, pki: &Path) -> Result<tonic::transport::Channel> {
    keten::client::connect(url, pki, PARTNER).await
}

pub(crate) fn partner_id() -> keten_domain::PartnerId {
    keten_domain::PartnerId::new(PARTNER).expect("a valid partner id")
}

struct Rebuild {
    events: u64,
    families: u64,
    fill: Duration,
    /// `keten_projection::rebuild`: the whole log folded from scratch (`keten replay`).
    rebuild: Duration,
    /// The projection service started cold (no snapshot), until it has folded the head.
    live: Duration,
    /// The log's own `read_all` of the same events, in pages of 10,000.
    scan: Duration,
}

/// A cold log of `events` events over `families` families in keten's stored form (a
/// registration and police contacts), written 16 appends at a time; then timed folds.
async fn rebuild(dir: &Path, events: u64, families: u64) -> Result<Rebuild> {
    let per_family = (events / families).max(1) as usize;
    let fill_started = Instant::now();
    {
        let log = FileLog::open(
            dir,
            FileLogOptions {
                // Filling is not what is measured, and the page cache holds it either way.
                durability: Durability::NoSyncUnsafe,
                ..FileLogOptions::default()
            },
        )
        .await?;
        let meta = EventMetadata::from_actor(&keten_domain::Actor {
            person: PersonId::new("sys-politie")?,
            role: Role::PartnerSystem,
            partner: partner_id(),
            partner_kind: PartnerKind::Police,
        });
        let today = keten_projection::today();
        let writers = 16u64;
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let log = log.clone();
                let meta = meta.clone();
                tokio::spawn(async move {
                    let mut f = w;
                    while f < families {
                        let family = FamilyId::new(format!("gezin-{f:06}"))?;
                        let mut batch = Vec::with_capacity(per_family);
                        for i in 0..per_family {
                            let event = if i == 0 {
                                Event::FamilyRegistered {
                                    family_id: family.clone(),
                                    family_type: FamilyType::StutEnSteun,
                                    urgency: Urgency::Normal,
                                    occurred_on: today,
                                }
                            } else {
                                Event::PoliceContactRecorded {
                                    member_id: None,
                                    occurred_on: today,
                                }
                            };
                            let id = EventId(event_id(f as usize, i as u64));
                            batch.push(stored::encode(id, &event, &meta));
                        }
                        log.append(
                            &stored::stream_id(&family),
                            ExpectedVersion::NoStream,
                            batch,
                        )
                        .await?;
                        f += writers;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for t in tasks {
            t.await??;
        }
        log.close().await?;
    }
    let fill = fill_started.elapsed();

    let log = FileLog::open(dir, FileLogOptions::default()).await?;
    let t = Instant::now();
    let report = keten_projection::rebuild(&log, |_, _| {}).await?;
    let rebuild = t.elapsed();

    let t = Instant::now();
    let mut next = 0u64;
    let mut scanned = 0u64;
    loop {
        let page = log
            .read_all(
                ReadFrom::At(GlobalPosition(next)),
                Direction::Forward,
                10_000,
                Until::Latest,
            )
            .await?;
        let Some(last) = page.last() else { break };
        next = last.position.0 + 1;
        scanned += page.len() as u64;
    }
    let scan = t.elapsed();

    let store: Arc<dyn EventStore> = Arc::new(log.clone());
    let head = log.head().await?.context("the log is empty")?;
    let t = Instant::now();
    let projections = Projections::start(store, ProjectionOptions::default()).await?;
    projections.wait_for(head, Duration::from_secs(600)).await?;
    let live = t.elapsed();
    projections.shutdown().await?;
    log.close().await?;
    std::fs::remove_dir_all(dir)?;
    anyhow::ensure!(scanned == report.events, "scan and rebuild disagree");
    Ok(Rebuild {
        events: report.events,
        families: report.families,
        fill,
        rebuild,
        live,
        scan,
    })
}

fn report(args: &ServerArgs, measured: &[(Case, Measured)], r: Option<&Rebuild>) {
    let mut t = Table::new(&[
        "system",
        "clients",
        "events/call",
        "events/s",
        "calls/s",
        "p50 µs",
        "p99 µs",
        "appends/fsync",
        "rounds (events/s)",
    ]);
    for (_, m) in measured {
        t.row(vec![
            m.system.clone(),
            m.writers.to_string(),
            m.batch.to_string(),
            fmt_rate(m.events_per_sec()),
            fmt_rate(m.ops_per_sec()),
            fmt_us(m.p50_us()),
            fmt_us(m.p99_us()),
            m.note.clone(),
            m.rounds
                .iter()
                .map(|r| fmt_rate(*r))
                .collect::<Vec<_>>()
                .join(" / "),
        ]);
    }
    println!(
        "\nPublish end to end (gRPC + mTLS + validation + fsync), the log alone, PostgreSQL\n"
    );
    println!("{}", t.render(args.markdown));

    if let Some(r) = r {
        print_rebuild(args, r);
    }

    let find = |f: &dyn Fn(&Case) -> bool| measured.iter().find(|(c, _)| f(c)).map(|(_, m)| m);
    let many = args.clients;
    let mut t = Table::new(&["target", "measured", "PASS/MISS"]);
    if let (Some(g), Some(p)) = (
        find(&|c| matches!(c, Case::Grpc(1, n) if *n == many)),
        find(&|c| matches!(c, Case::Pg(1, n) if *n == many)),
    ) {
        let ratio = g.events_per_sec() / p.events_per_sec();
        t.row(vec![
            format!("{many} clients, 1 event/call: ≥ 2× PostgreSQL's {many}-client transactions"),
            format!("{ratio:.2}×"),
            pass(ratio >= 2.0),
        ]);
        t.row(vec![
            "…with p99 under 2 ms".into(),
            format!("{} µs", fmt_us(g.p99_us())),
            pass(g.p99_us() < 2000.0),
        ]);
    }
    for n in [1, many] {
        if let (Some(g), Some(p)) = (
            find(&|c| matches!(c, Case::Grpc(100, k) if *k == n)),
            find(&|c| matches!(c, Case::Pg(100, k) if *k == n)),
        ) {
            let ratio = g.events_per_sec() / p.events_per_sec();
            t.row(vec![
                format!(
                    "100-event publishes, {n} client(s): ≥ PostgreSQL's 100-event transactions"
                ),
                format!("{ratio:.2}×"),
                pass(ratio >= 1.0),
            ]);
        }
    }
    if let Some(r) = r {
        let folded = r.events as f64 / r.rebuild.as_secs_f64().max(1e-9);
        t.row(vec![
            "projection rebuild ≥ 1,000,000 events/s".into(),
            fmt_rate(folded),
            pass(folded >= 1_000_000.0),
        ]);
    }
    println!("\nTargets (issue 5)\n");
    println!("{}", t.render(args.markdown));
}

fn print_rebuild(args: &ServerArgs, r: &Rebuild) {
    let rate = |d: Duration| r.events as f64 / d.as_secs_f64().max(1e-9);
    let mut t = Table::new(&[
        "fold of a cold log",
        "events",
        "families",
        "seconds",
        "events/s",
    ]);
    for (name, d) in [
        ("keten_projection::rebuild (keten replay)", r.rebuild),
        ("Projections::start, no snapshot, to the head", r.live),
        ("the log's own read_all scan (no decoding)", r.scan),
    ] {
        t.row(vec![
            name.into(),
            fmt_rate(r.events as f64),
            fmt_rate(r.families as f64),
            format!("{:.2}", d.as_secs_f64()),
            fmt_rate(rate(d)),
        ]);
    }
    println!(
        "\nProjection rebuild (log filled in {:.1} s, page cache warm)\n",
        r.fill.as_secs_f64()
    );
    println!("{}", t.render(args.markdown));
}

fn pass(ok: bool) -> String {
    if ok { "PASS" } else { "MISS" }.into()
}
