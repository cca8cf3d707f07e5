//! `cargo run --release -p keten-bench -- audit`: the auditor's reads and proofs (issue 8).
//!
//! One family of `--family-events` events spread through a log of each `--log-sizes` size
//! (the rest are other families' events, appended in between):
//!
//! - the as-of plan of that family at random moments of its history, through the server's
//!   `AsOfCache` (fold from the nearest mark, then compute the plan on that day), and for
//!   comparison a fold from the family's first event;
//! - the Merkle tree over the whole log: built from the log, inclusion and consistency proofs,
//!   their verification, and signing a checkpoint;
//! - PostgreSQL reading a stream of as many events (`SELECT ... WHERE stream_id = $1`), what
//!   an as-of over a plain event table must at least do.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use keten::scenario;
use keten_domain::{Event, FamilyId, PartnerKind, Role};
use keten_log::{
    CommitTime, Direction, Durability, EventId, EventStore, ExpectedVersion, FileLog,
    FileLogOptions, ReadFrom, StreamVersion, Until,
};
use keten_projection::{AsOfCache, EventMetadata, date_of, family_as_of, stored};

use crate::stats::{self, Table, fmt_us};

#[derive(clap::Parser)]
pub struct AuditArgs {
    /// Events of the audited family.
    #[arg(long, default_value_t = 10_000)]
    family_events: u64,
    /// Total log sizes (events), comma-separated: the as-of time must not grow with them.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    log_sizes: Vec<u64>,
    /// As-of questions (and proofs) timed per log size.
    #[arg(long, default_value_t = 2000)]
    queries: usize,
    /// Folds from the first event timed per log size (each takes tens of milliseconds).
    #[arg(long, default_value_t = 30)]
    full_folds: usize,
    /// PostgreSQL connection string; the PostgreSQL row is left out when it cannot connect.
    #[arg(
        long,
        default_value = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    )]
    pg: String,
    /// Where the logs go (a temporary directory inside it, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// A small deterministic generator: the same questions on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn metadata(partner: &str, kind: PartnerKind) -> EventMetadata {
    EventMetadata {
        partner: scenario::pid(partner),
        partner_kind: kind,
        person: keten_domain::PersonId::new("bench").expect("valid"),
        role: Role::PartnerSystem,
        correlation_id: None,
        purpose: None,
    }
}

fn event_id(n: u64) -> EventId {
    EventId(uuid::Uuid::from_u128((0xa0d1u128 << 64) | u128::from(n)))
}

/// The audited family's events: the demo's course, then police contacts and nuisance reports.
fn family_events(family: &FamilyId, count: u64) -> Vec<Event> {
    let today = keten_projection::today();
    let mut events: Vec<Event> = scenario::steps(family, today)
        .into_iter()
        .flat_map(|s| s.events)
        .collect();
    let mut k = 0u64;
    while (events.len() as u64) < count {
        let on = scenario::ago(today, 80 - (k * 80 / count));
        events.push(if k.is_multiple_of(3) {
            Event::NuisanceReported {
                description: format!("report {k}"),
                occurred_on: on,
            }
        } else {
            Event::PoliceContactRecorded {
                member_id: Some(scenario::mid("c1")),
                occurred_on: on,
            }
        });
        k += 1;
    }
    events.truncate(count as usize);
    events
}

/// Appends the audited family's events spread evenly through a log of `total` events; the rest
/// are other families' (registered, then nuisance reports), 100 to an append.
async fn fill(
    log: &dyn EventStore,
    family: &FamilyId,
    family_count: u64,
    total: u64,
) -> Result<()> {
    let today = keten_projection::today();
    let police = metadata(scenario::POLICE, PartnerKind::Police);
    let mine = family_events(family, family_count);
    let stream = stored::stream_id(family);
    let others = total.saturating_sub(family_count);
    let mut n = 0u64;
    let mut own = mine.iter().peekable();
    let mut written_other = 0u64;
    let mut other_family = 0u64;
    let mut version = None;
    while written_other < others || own.peek().is_some() {
        // The family keeps pace with the others, so that its events spread through the log.
        let due = ((written_other + 100) * family_count)
            .checked_div(others)
            .map_or(family_count, |d| d.min(family_count));
        let mut batch = Vec::new();
        while (version.map_or(0, |v: u64| v + 1) + batch.len() as u64) < due {
            let Some(e) = own.next() else { break };
            batch.push(stored::encode(event_id(n), e, &police));
            n += 1;
        }
        if !batch.is_empty() {
            let expected = version.map_or(ExpectedVersion::NoStream, |v| {
                ExpectedVersion::Exact(StreamVersion(v))
            });
            let len = batch.len() as u64;
            log.append(&stream, expected, batch).await?;
            version = Some(version.map_or(len - 1, |v| v + len));
        }
        if written_other < others {
            let size = 100.min(others - written_other);
            let fam = FamilyId::new(format!("gezin-vulling-{other_family}")).expect("valid");
            other_family += 1;
            let mut events = vec![Event::FamilyRegistered {
                family_id: fam.clone(),
                family_type: keten_domain::FamilyType::StutEnSteun,
                urgency: keten_domain::Urgency::Urgent,
                occurred_on: today,
            }];
            while (events.len() as u64) < size {
                events.push(Event::NuisanceReported {
                    description: "filler".into(),
                    occurred_on: today,
                });
            }
            let batch = events
                .iter()
                .map(|e| {
                    let id = event_id(n);
                    n += 1;
                    stored::encode(id, e, &police)
                })
                .collect();
            log.append(&stored::stream_id(&fam), ExpectedVersion::NoStream, batch)
                .await?;
            written_other += size;
        }
    }
    Ok(())
}

fn p(hist: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    hist.value_at_quantile(q) as f64 / 1000.0
}

fn row(table: &mut Table, what: &str, size: u64, hist: &hdrhistogram::Histogram<u64>) {
    table.row(vec![
        what.into(),
        size.to_string(),
        hist.len().to_string(),
        fmt_us(p(hist, 0.5)),
        fmt_us(p(hist, 0.99)),
        fmt_us(hist.max() as f64 / 1000.0),
    ]);
}

pub async fn run(args: AuditArgs) -> Result<()> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut table = Table::new(&[
        "measure",
        "log events",
        "n",
        "p50 (µs)",
        "p99 (µs)",
        "max (µs)",
    ]);
    let family = FamilyId::new("gezin-audit").expect("valid");
    for &size in &args.log_sizes {
        if size < args.family_events {
            bail!(
                "log size {size} is smaller than the family ({})",
                args.family_events
            );
        }
        let tmp = tempfile::tempdir_in(&base)?;
        let log = FileLog::open(
            tmp.path(),
            FileLogOptions {
                durability: Durability::NoSyncUnsafe,
                ..FileLogOptions::default()
            },
        )
        .await?;
        // As the server stores families: payloads sealed under the family's key, opened on
        // every read (the proofs below cover the stored ciphertext, read from the raw log).
        let keys = keten_keys::FileKeyStore::open(tmp.path().join("keys")).await?;
        let sealed = keten_projection::sealed::Sealed::new(
            std::sync::Arc::new(log.clone()),
            keten_keys::Keyring::load(std::sync::Arc::new(keys)).await?,
        );
        let t = Instant::now();
        fill(&sealed, &family, args.family_events, size).await?;
        eprintln!("filled a log of {size} events in {:.1?}", t.elapsed());

        let own = sealed
            .read_stream(
                &stored::stream_id(&family),
                ReadFrom::Start,
                Direction::Forward,
                usize::MAX,
                Until::Latest,
            )
            .await?;
        if own.len() as u64 != args.family_events {
            bail!("the family has {} events", own.len());
        }
        let mut rng = Lcg(size);

        // The full fold, for comparison.
        let mut hist = stats::histogram();
        for _ in 0..args.full_folds {
            let at = &own[rng.below(own.len() as u64) as usize];
            let t = Instant::now();
            let view = family_as_of(&sealed, &family, Until::Position(at.position))
                .await?
                .context("a view")?;
            std::hint::black_box(view.plan(date_of(view.committed_at)));
            stats::record(&mut hist, t.elapsed());
        }
        row(
            &mut table,
            "as-of plan, folded from the first event",
            size,
            &hist,
        );

        // The cache, marks made by a first question at the latest.
        let cache = AsOfCache::default();
        let t = Instant::now();
        cache.family_as_of(&sealed, &family, Until::Latest).await?;
        eprintln!(
            "first as-of question (makes {} marks): {:.1?}",
            cache.marks(),
            t.elapsed()
        );
        let mut by_position = stats::histogram();
        let mut by_time = stats::histogram();
        for i in 0..args.queries {
            let at = &own[rng.below(own.len() as u64) as usize];
            let until = if i % 2 == 0 {
                Until::Position(at.position)
            } else {
                Until::Time(at.committed_at)
            };
            let t = Instant::now();
            let view = cache
                .family_as_of(&sealed, &family, until)
                .await?
                .context("a view")?;
            std::hint::black_box(view.plan(date_of(view.committed_at)));
            let hist = if i % 2 == 0 {
                &mut by_position
            } else {
                &mut by_time
            };
            stats::record(hist, t.elapsed());
        }
        row(
            &mut table,
            "as-of plan at a position (AsOfCache)",
            size,
            &by_position,
        );
        row(
            &mut table,
            "as-of plan at a time (AsOfCache)",
            size,
            &by_time,
        );

        // Proofs over the whole log.
        let t = Instant::now();
        let tree = keten_proof::TreeBuilder::from_store(&log).await?;
        let built = t.elapsed();
        let n = tree.size();
        let mut inclusion = stats::histogram();
        let mut verify = stats::histogram();
        let root = tree.root();
        for _ in 0..args.queries {
            let i = rng.below(n);
            let t = Instant::now();
            let path = tree.inclusion_proof(i, n)?;
            stats::record(&mut inclusion, t.elapsed());
            let leaf = tree.leaf_hash(i).context("a leaf")?;
            let t = Instant::now();
            keten_proof::verify_inclusion(&leaf, i, n, &path, &root)?;
            stats::record(&mut verify, t.elapsed());
        }
        let mut consistency = stats::histogram();
        for _ in 0..args.queries {
            let old = 1 + rng.below(n - 1);
            let t = Instant::now();
            std::hint::black_box(tree.consistency_proof(old, n)?);
            stats::record(&mut consistency, t.elapsed());
        }
        let key = keten_proof::SigningKey::from_bytes(&[7; 32]);
        let mut signing = stats::histogram();
        for _ in 0..args.queries.min(500) {
            let t = Instant::now();
            let signed = tree
                .checkpoint("keten.bench/log", CommitTime::now())
                .sign(&key)?;
            std::hint::black_box(signed.to_note());
            stats::record(&mut signing, t.elapsed());
        }
        row(&mut table, "inclusion proof", size, &inclusion);
        row(&mut table, "inclusion proof verified", size, &verify);
        row(&mut table, "consistency proof", size, &consistency);
        row(
            &mut table,
            "checkpoint: root + Ed25519 signature",
            size,
            &signing,
        );
        table.row(vec![
            format!(
                "Merkle tree built from the log ({} MiB)",
                tree.memory_bytes() >> 20
            ),
            size.to_string(),
            "1".into(),
            fmt_us(built.as_secs_f64() * 1e6),
            String::new(),
            String::new(),
        ]);
        log.close().await?;
    }

    match pg_read(&args).await {
        Ok(m) => table.row(vec![
            format!("PostgreSQL: read a {}-event stream", args.family_events),
            format!("{}", args.family_events * 2),
            m.ops.to_string(),
            fmt_us(m.p50_us()),
            fmt_us(m.p99_us()),
            fmt_us(m.hist.max() as f64 / 1000.0),
        ]),
        Err(e) => eprintln!("PostgreSQL left out: {e:#}"),
    }
    println!("{}", table.render(args.markdown));
    Ok(())
}

async fn pg_read(args: &AuditArgs) -> Result<stats::Measured> {
    crate::pg::setup(&args.pg).await?;
    let stream = "bench-audit-family";
    let out = async {
        crate::pg::fill_stream(&args.pg, stream, args.family_events).await?;
        crate::pg::read_stream(&args.pg, stream, args.family_events, 100).await
    }
    .await;
    crate::pg::drop_schema(&args.pg).await?;
    out
}
