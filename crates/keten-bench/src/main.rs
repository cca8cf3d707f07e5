//! `cargo run --release -p keten-bench -- log`: keten's file log side by side with PostgreSQL and
//! raw `write` + `fdatasync`, in one run, with the targets judged as ratios within that
//! run. Never run in CI: figures and the command go in BENCHMARKS.md.

mod audit;
mod keten;
mod nats;
mod pg;
mod privacy;
mod raw;
mod scale;
mod server;
mod stats;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use keten_log::Durability;

use stats::{Measured, Table, fmt_rate, fmt_us};

#[derive(Parser)]
#[command(about = "keten benchmarks, side by side with the alternatives")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The embedded file log vs PostgreSQL vs raw fdatasync.
    Log(LogArgs),
    /// keten's JetStream backend vs raw JetStream publishes (see `nats.rs`).
    Nats(nats::NatsArgs),
    /// keten's Publish end to end over gRPC + mTLS, and the projection rebuild (see `server.rs`).
    Server(server::ServerArgs),
    /// As-of plans, Merkle proofs and checkpoint signing, beside PostgreSQL (see `audit.rs`).
    Audit(audit::AuditArgs),
    /// Publish and GetFamilyPlan with encryption and the access log off and on (see
    /// `privacy.rs`).
    Privacy(privacy::PrivacyArgs),
    /// A data set of up to millions of events written through the API into the real `keten
    /// serve`, and what holding it costs at each size (see `scale.rs`).
    Scale(scale::ScaleArgs),
    /// Partner systems publishing while coordinators watch and query, then `keten verify` and
    /// every acknowledged event read back (see `scale.rs`).
    Load(scale::LoadArgs),
}

#[derive(Parser)]
struct LogArgs {
    /// Seconds each write case runs, per round. Short cases and many rounds suit a shared
    /// machine: the cases compared run within seconds of each other.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Rounds over all write cases; each case shows its median round, and each target is
    /// judged on the median over rounds of the ratio within a round.
    #[arg(long, default_value_t = 15)]
    rounds: u32,
    /// Concurrent writers in the many-writer cases.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Events in the log whose open time and full scan are measured.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events in the stream whose read is measured.
    #[arg(long, default_value_t = 10_000)]
    stream_events: u64,
    /// How many times that stream is read (after one warm-up read).
    #[arg(long, default_value_t = 100)]
    reads: usize,
    /// PostgreSQL connection string.
    #[arg(
        long,
        default_value = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    )]
    pg: String,
    /// Where the data goes (a temporary directory inside it, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run only these groups (comma-separated); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Group>,
    /// Also run keten without fsync (1 event per append), to show what the log costs besides
    /// the flush. Never a durable figure, never judged against a target.
    #[arg(long)]
    diagnostics: bool,
    /// Print the tables as Markdown.
    #[arg(long)]
    markdown: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Group {
    /// Raw write + fdatasync.
    Raw,
    /// PostgreSQL writes.
    Pg,
    /// keten writes.
    Keten,
    /// Reading one stream, keten and PostgreSQL.
    Read,
    /// Opening and scanning a large log.
    Open,
}

#[derive(Default)]
struct Results {
    raw: Vec<Measured>,
    pg: Vec<Measured>,
    keten: Vec<Measured>,
    read_keten: Option<Measured>,
    read_pg: Option<Measured>,
    big: Option<keten::BigLog>,
}

#[tokio::main]
async fn main() -> Result<()> {
    ::keten::no_huge_pages();
    let cli = Cli::parse();
    // These run for tens of minutes against a separate `keten serve` process: they report the
    // load average beside their figures rather than queue behind another run's lock.
    let cli = match cli.cmd {
        Cmd::Scale(args) => return scale::run_scale(args).await,
        Cmd::Load(args) => return scale::run_load(args).await,
        cmd => Cli { cmd },
    };
    // Two runs at once would measure each other: a second one waits for the first.
    let lock_path = std::env::temp_dir().join("keten-bench.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        progress(&format!(
            "another keten-bench run holds {}; waiting for it",
            lock_path.display()
        ));
        lock.lock()?;
    }
    let args = match cli.cmd {
        Cmd::Log(args) => args,
        Cmd::Nats(args) => return nats::run(args).await,
        Cmd::Server(args) => return server::run(args).await,
        Cmd::Audit(args) => return audit::run(args).await,
        Cmd::Privacy(args) => return privacy::run(args).await,
        Cmd::Scale(_) | Cmd::Load(_) => unreachable!("run before the lock"),
    };
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("keten-bench-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a directory in {}", base.display()))?;
    let load_before = loadavg();
    let result = run(&args, tmp.path()).await;
    let load_after = loadavg();
    let cleanup = if args.only.is_empty() || args.only.contains(&Group::Pg) {
        pg::drop_schema(&args.pg).await
    } else {
        Ok(())
    };
    tmp.close().context("removing the benchmark directory")?;
    let results = result?;
    cleanup?;
    print_report(&args, &results);
    println!("\nload average (1/5/15 min) before: {load_before}; after: {load_after}");
    Ok(())
}

/// The machine is shared: the load around a run says how far to trust its absolute figures.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

async fn run(args: &LogArgs, dir: &Path) -> Result<Results> {
    let wants = |g: Group| args.only.is_empty() || args.only.contains(&g);
    let secs = Duration::from_secs_f64(args.seconds);
    let many = args.writers;
    let mut r = Results::default();

    if wants(Group::Pg) || wants(Group::Read) {
        pg::setup(&args.pg).await?;
    }

    // The cases take turns, round after round, so drift in a shared machine's load falls on
    // every system alike; each case reports its median round, so one round spoilt by a
    // neighbour's burst of IO does not decide a ratio.
    let mut cases = Vec::new();
    for writers in [1, many] {
        if wants(Group::Raw) {
            cases.extend(raw::Layout::ALL.map(|l| Case::Raw(l, 1, writers)));
        }
        if wants(Group::Raw) && writers == 1 {
            // The physical limit for 100-event appends too; one writer says enough.
            cases.extend(raw::Layout::ALL.map(|l| Case::Raw(l, 100, 1)));
        }
        for batch in [1, 100] {
            if wants(Group::Pg) {
                cases.push(Case::Pg(batch, writers));
            }
            if wants(Group::Keten) {
                cases.push(Case::Keten(batch, writers));
            }
        }
        if wants(Group::Keten) && args.diagnostics {
            cases.push(Case::KetenNoSync(writers));
        }
    }
    let mut rounds: Vec<Vec<Measured>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 1..=args.rounds {
        for (case, runs) in cases.iter().zip(&mut rounds) {
            progress(&format!("round {round}/{}: {case:?}", args.rounds));
            runs.push(run_case(*case, args, dir, secs).await?);
        }
    }
    for (case, runs) in cases.iter().zip(rounds) {
        let m = Measured::median_round(runs);
        match case {
            Case::Raw(..) => r.raw.push(m),
            Case::Pg(..) => r.pg.push(m),
            Case::Keten(..) | Case::KetenNoSync(..) => r.keten.push(m),
        }
    }

    if wants(Group::Read) {
        let stream = "bench-read";
        progress(&format!(
            "reading a stream of {} events, {} times each",
            args.stream_events, args.reads
        ));
        pg::truncate(&args.pg).await?;
        pg::fill_stream(&args.pg, stream, args.stream_events).await?;
        r.read_pg = Some(pg::read_stream(&args.pg, stream, args.stream_events, args.reads).await?);
        pg::truncate(&args.pg).await?;
        let d = dir.join("keten-read");
        r.read_keten = Some(keten::read_stream(&d, stream, args.stream_events, args.reads).await?);
        std::fs::remove_dir_all(&d)?;
    }

    if wants(Group::Open) {
        progress(&format!(
            "a log of {} events: fill, open, scan",
            args.events
        ));
        let d = dir.join("keten-big");
        r.big = Some(keten::big_log(&d, args.events).await?);
        std::fs::remove_dir_all(&d)?;
    }
    Ok(r)
}

#[derive(Clone, Copy, Debug)]
enum Case {
    /// Events per write, writers.
    Raw(raw::Layout, usize, usize),
    /// Events per transaction, clients.
    Pg(usize, usize),
    /// Events per append, writers.
    Keten(usize, usize),
    /// keten without its flush, 1 event per append: the log's own overhead.
    KetenNoSync(usize),
}

async fn run_case(case: Case, args: &LogArgs, dir: &Path, secs: Duration) -> Result<Measured> {
    match case {
        Case::Raw(layout, batch, writers) => {
            let d = dir.join("raw");
            std::fs::create_dir_all(&d)?;
            let record = workload::raw_record("bench-0").repeat(batch);
            let m = raw::run(&d, writers, layout, secs, &record, batch)?;
            std::fs::remove_dir_all(&d)?;
            Ok(m)
        }
        Case::Pg(batch, writers) => {
            pg::truncate(&args.pg).await?;
            pg::write(&args.pg, writers, batch, secs).await
        }
        Case::Keten(batch, writers) => {
            let d = dir.join("keten-write");
            let m = keten::write(&d, writers, batch, secs, Durability::Fsync).await?;
            std::fs::remove_dir_all(&d)?;
            Ok(m)
        }
        Case::KetenNoSync(writers) => {
            let d = dir.join("keten-write");
            let m = keten::write(&d, writers, 1, secs, Durability::NoSyncUnsafe).await?;
            std::fs::remove_dir_all(&d)?;
            Ok(m)
        }
    }
}

fn progress(what: &str) {
    eprintln!("[keten-bench] {what}");
}

fn print_report(args: &LogArgs, r: &Results) {
    let md = args.markdown;
    let mut writes = Table::new(&[
        "durable appends (300-byte events)",
        "writers",
        "events/append",
        "appends/s",
        "events/s",
        "p50 µs",
        "p99 µs",
        "events/s of each round (median shown)",
        "appends/fsync",
    ]);
    for m in r.raw.iter().chain(&r.pg).chain(&r.keten) {
        writes.row(vec![
            m.system.clone(),
            m.writers.to_string(),
            m.batch.to_string(),
            fmt_rate(m.ops_per_sec()),
            fmt_rate(m.events_per_sec()),
            fmt_us(m.p50_us()),
            fmt_us(m.p99_us()),
            m.rounds
                .iter()
                .map(|r| fmt_rate(*r))
                .collect::<Vec<_>>()
                .join(" / "),
            m.note.clone(),
        ]);
    }
    if !(r.raw.is_empty() && r.pg.is_empty() && r.keten.is_empty()) {
        println!("{}\n", writes.render(md));
    }

    if r.read_keten.is_some() || r.big.is_some() {
        let mut reads = Table::new(&["reads", "figure", "value"]);
        for m in [&r.read_keten, &r.read_pg].into_iter().flatten() {
            let what = format!("{}: read a {}-event stream", m.system, m.batch);
            reads.row(vec![what.clone(), "p50 ms".into(), fmt_ms(m.p50_us())]);
            reads.row(vec![what, "p99 ms".into(), fmt_ms(m.p99_us())]);
        }
        if let Some(big) = &r.big {
            let n = big.events;
            reads.row(vec![
                format!("keten: fill a {n}-event log"),
                "events/s".into(),
                fmt_rate(n as f64 / big.fill.as_secs_f64()),
            ]);
            reads.row(vec![
                format!("keten: open a {n}-event log after a clean close"),
                "ms".into(),
                fmt_ms(big.open_clean.as_secs_f64() * 1e6),
            ]);
            reads.row(vec![
                format!("keten: open a {n}-event log, full check of every record"),
                "ms".into(),
                fmt_ms(big.open_full_check.as_secs_f64() * 1e6),
            ]);
            match big.open_rebuild {
                Some(t) => reads.row(vec![
                    format!("keten: open a {n}-event log, index checkpoint removed"),
                    "ms".into(),
                    fmt_ms(t.as_secs_f64() * 1e6),
                ]),
                None => reads.row(vec![
                    format!("keten: open a {n}-event log, index checkpoint removed"),
                    "ms".into(),
                    "no checkpoint file found".into(),
                ]),
            }
            if !big.removed.is_empty() {
                eprintln!(
                    "[keten-bench] checkpoint files removed: {}",
                    big.removed.join(", ")
                );
            }
            reads.row(vec![
                format!("keten: full scan (read_all) of a {n}-event log"),
                "events/s".into(),
                fmt_rate(n as f64 / big.scan.as_secs_f64()),
            ]);
        }
        println!("{}\n", reads.render(md));
    }

    let targets = judge(args, r);
    if !targets.is_empty() {
        let mut t = Table::new(&[
            "target (issue 4)",
            "needed",
            "measured",
            "lowest–highest round",
            "verdict",
            "raw-disk ceiling",
        ]);
        for target in targets {
            t.row(vec![
                target.what,
                target.needed,
                target.measured,
                target.range,
                if target.pass { "PASS" } else { "MISS" }.into(),
                target
                    .ceiling
                    .map(|c| format!("{c:.2}×"))
                    .unwrap_or_default(),
            ]);
        }
        println!("{}", t.render(md));
    }
}

fn fmt_ms(us: f64) -> String {
    format!("{:.2}", us / 1e3)
}

fn find<'a>(
    ms: &'a [Measured],
    prefix: &str,
    writers: usize,
    batch: usize,
) -> Option<&'a Measured> {
    ms.iter()
        .find(|m| m.system.starts_with(prefix) && m.writers == writers && m.batch == batch)
}

/// The physical limit in round `i`: the best of the raw layouts, since whichever layout a log
/// chooses, it can't beat that. (events/s, p99 µs)
fn raw_best(r: &Results, writers: usize, batch: usize, i: usize) -> Option<(f64, f64)> {
    let runs: Vec<&Measured> = r
        .raw
        .iter()
        .filter(|m| m.writers == writers && m.batch == batch)
        .collect();
    if runs.is_empty() || runs.iter().any(|m| m.rounds.len() <= i) {
        return None;
    }
    let rate = runs.iter().map(|m| m.rounds[i]).fold(0.0, f64::max);
    let p99 = runs
        .iter()
        .map(|m| m.rounds_p99[i])
        .fold(f64::INFINITY, f64::min);
    Some((rate, p99))
}

/// A figure computed round by round from cases measured side by side in that round; `None`
/// for a round that lacks one of them.
fn per_round(rounds: u32, f: impl Fn(usize) -> Option<f64>) -> Vec<f64> {
    (0..rounds as usize).filter_map(f).collect()
}

struct Target {
    what: String,
    needed: String,
    /// The median over rounds of the ratio within each round.
    measured: String,
    /// The lowest and highest of those ratios.
    range: String,
    pass: bool,
    /// The best ratio a log could reach if it did nothing but the raw writes and flushes
    /// measured in the same rounds (median over rounds); a target above it can't be met on this
    /// machine by any log that flushes before it acknowledges.
    ceiling: Option<f64>,
}

/// Each target, computed from this run's figures only. Ratios are taken within each round,
/// between cases that ran within seconds of each other, and the median over rounds is judged:
/// on a shared machine the load in one round can differ tenfold from the next.
fn judge(args: &LogArgs, r: &Results) -> Vec<Target> {
    let many = args.writers;
    let n = args.rounds;
    let mut out = Vec::new();
    let mut push = |what: String,
                    needed: &str,
                    xs: Vec<f64>,
                    at_least: Option<f64>,
                    at_most: Option<f64>,
                    ceilings: Vec<f64>| {
        let Some((x, lo, hi)) = stats::median_range(xs) else {
            return;
        };
        out.push(Target {
            what,
            needed: needed.into(),
            measured: format!("{x:.2}×"),
            range: format!("{lo:.2}–{hi:.2}×"),
            pass: at_least.is_none_or(|t| x >= t) && at_most.is_none_or(|t| x <= t),
            ceiling: stats::median_range(ceilings).map(|(c, _, _)| c),
        })
    };
    let k1 = find(&r.keten, "keten", 1, 1);
    let k16 = find(&r.keten, "keten", many, 1);
    let p1 = find(&r.pg, "PostgreSQL", 1, 1);
    let p16 = find(&r.pg, "PostgreSQL", many, 1);
    if let (Some(k), Some(p)) = (k1, p1) {
        push(
            "1 writer: keten appends/s vs PostgreSQL 1 client".into(),
            "≥ 1.50×",
            per_round(n, |i| Some(k.rounds[i] / p.rounds[i])),
            Some(1.5),
            None,
            // One writer, one flush per append: the raw rate is the most any log can do.
            per_round(n, |i| {
                raw_best(r, 1, 1, i).map(|(raw, _)| raw / p.rounds[i])
            }),
        );
    }
    if let Some(k) = k1 {
        push(
            "1 writer: keten p99 vs raw fdatasync p99 (best layout)".into(),
            "≤ 1.50×",
            per_round(n, |i| {
                raw_best(r, 1, 1, i).map(|(_, raw)| k.rounds_p99[i] / raw)
            }),
            None,
            Some(1.5),
            Vec::new(),
        );
    }
    if let (Some(k), Some(p)) = (k16, p16) {
        push(
            format!("{many} writers: keten appends/s vs PostgreSQL {many} clients"),
            "≥ 5.00×",
            per_round(n, |i| Some(k.rounds[i] / p.rounds[i])),
            Some(5.0),
            None,
            // One append in flight per writer: a flush can carry at most `many` of them.
            per_round(n, |i| {
                raw_best(r, 1, 1, i).map(|(raw, _)| many as f64 * raw / p.rounds[i])
            }),
        );
    }
    if let Some(k) = k16 {
        push(
            format!(
                "{many} writers: keten appends/s vs {many} × raw fdatasync ({many} files at once)"
            ),
            "≥ 0.50×",
            per_round(n, |i| {
                raw_best(r, many, 1, i).map(|(raw, _)| k.rounds[i] / raw)
            }),
            Some(0.5),
            None,
            Vec::new(),
        );
    }
    for writers in [1, many] {
        if let (Some(k), Some(p)) = (
            find(&r.keten, "keten", writers, 100),
            find(&r.pg, "PostgreSQL", writers, 100),
        ) {
            push(
                format!(
                    "100-event appends, {writers} writer(s): keten events/s vs PostgreSQL 100/tx"
                ),
                "≥ 2.00×",
                per_round(n, |i| Some(k.rounds[i] / p.rounds[i])),
                Some(2.0),
                None,
                if writers == 1 {
                    per_round(n, |i| {
                        raw_best(r, 1, 100, i).map(|(raw, _)| raw / p.rounds[i])
                    })
                } else {
                    Vec::new()
                },
            );
        }
    }
    if let (Some(k), Some(p)) = (&r.read_keten, &r.read_pg) {
        push(
            format!(
                "read a {}-event stream: keten speed vs PostgreSQL (p50)",
                k.batch
            ),
            "≥ 5.00×",
            vec![p.p50_us() / k.p50_us()],
            Some(5.0),
            None,
            Vec::new(),
        );
    }
    if let Some(big) = &r.big {
        let s = big.open_clean.as_secs_f64();
        out.push(Target {
            what: format!("open a {}-event log (clean close)", big.events),
            needed: "< 1 s".into(),
            measured: format!("{s:.3} s"),
            range: String::new(),
            pass: s < 1.0,
            ceiling: None,
        });
    }
    out
}
