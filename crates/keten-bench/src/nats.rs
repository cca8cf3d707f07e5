//! `cargo run --release -p keten-bench -- nats`: raw JetStream publishes (async-nats) against
//! keten's JetStream backend appends and against `Publish` end to end over gRPC+mTLS on that
//! backend, 300-byte events, 1 and 16 clients, on one node and on a
//! three-node loopback cluster, with the same stream settings (file storage, `sync_interval:
//! always`, replicas 1 or 3, keten's limits). The servers are started by keten-testkit. Target:
//! keten at least 80% of raw JetStream at the same concurrency, judged in the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use keten_log::{EventId, EventStore, EventType, ExpectedVersion, ProposedEvent, StreamId};
use keten_nats::{FsyncCheck, NatsLog, NatsLogOptions};
use keten_testkit::{NatsCluster, NatsServer};

use crate::stats::{fmt_rate, fmt_us, histogram, record};

#[derive(clap::Parser)]
pub struct NatsArgs {
    /// Seconds each case runs.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Payload bytes per event.
    #[arg(long, default_value_t = 300)]
    payload: usize,
    /// Concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    clients: Vec<usize>,
    /// Rounds over all cases; a case's rounds are pooled.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Outstanding acks of the one pipelined raw publisher (a context row, not a target).
    #[arg(long, default_value_t = 256)]
    window: usize,
}

/// Event ids, unique over the run.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One client's task: events written and their latencies.
type Client = tokio::task::JoinHandle<Result<(u64, Histogram<u64>)>>;

struct Row {
    topology: &'static str,
    clients: usize,
    system: String,
    events: u64,
    elapsed: Duration,
    hist: Histogram<u64>,
}

impl Row {
    /// Adds another round of the same case: rate over the summed time, latencies merged.
    fn pool(&mut self, other: Row) {
        self.events += other.events;
        self.elapsed += other.elapsed;
        self.hist.add(&other.hist).expect("same bounds");
    }

    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

enum Servers {
    One(NatsServer),
    Three(NatsCluster),
}

impl Servers {
    fn url(&self) -> String {
        match self {
            Self::One(s) => s.url(),
            Self::Three(c) => c.urls(),
        }
    }
    fn monitors(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.monitor_url()],
            Self::Three(c) => c.monitor_urls(),
        }
    }
}

pub async fn run(args: NatsArgs) -> Result<()> {
    let pki_dir = tempfile::Builder::new()
        .prefix("keten-bench-nats-pki-")
        .tempdir()?;
    let pki = pki_dir.path().to_path_buf();
    crate::server::write_pki(&pki)?;
    let mut rows: Vec<Row> = Vec::new();
    let mut opens = Vec::new();
    for (topology, replicas) in [("1 node", 1), ("3-node cluster", 3)] {
        let servers = tokio::task::spawn_blocking(move || {
            if replicas == 1 {
                Servers::One(NatsServer::start())
            } else {
                Servers::Three(NatsCluster::start())
            }
        })
        .await?;
        // One raw stream and one keten log per client count, kept over the rounds.
        let mut setups = Vec::new();
        for (i, &clients) in args.clients.iter().enumerate() {
            let opts = NatsLogOptions {
                stream: format!("BENCH{i}"),
                subject_prefix: format!("bench{i}"),
                replicas,
                fsync: FsyncCheck::Verify {
                    monitor_urls: servers.monitors(),
                },
                ..NatsLogOptions::default()
            };
            let js = raw_stream(&servers.url(), &opts).await?;
            let log = Arc::new(
                NatsLog::connect(&servers.url(), opts.clone())
                    .await
                    .context("keten NatsLog")?,
            );
            setups.push((clients, opts, js, log));
        }
        // Cases take turns, round after round, and each case's rounds are pooled, so drift in
        // the shared machine's load falls on both alike.
        let mut pooled: Vec<Row> = Vec::new();
        for _ in 0..args.rounds {
            let mut round = Vec::new();
            for (clients, opts, js, log) in &setups {
                round.push(raw(js, &opts.subject_prefix, *clients, &args, topology).await?);
                round.push(keten(log, *clients, &args, topology).await?);
                round.push(grpc(&servers, opts, &pki, *clients, &args, topology).await?);
            }
            let (_, opts, js, _) = &setups[0];
            round.push(pipelined(js, &opts.subject_prefix, &args, topology).await?);
            if pooled.is_empty() {
                pooled = round;
            } else {
                for (p, r) in pooled.iter_mut().zip(round) {
                    p.pool(r);
                }
            }
        }
        rows.extend(pooled);
        // What a keten server pays at start: replaying (and checking) the whole log.
        for (_, opts, _, log) in &setups {
            let events = log.head().await?.map_or(0, |p| p.0 + 1);
            let t = Instant::now();
            let reopened = NatsLog::connect(&servers.url(), opts.clone()).await?;
            let took = t.elapsed();
            drop(reopened);
            opens.push(format!(
                "{topology}: connect replayed and checked {events} events in {} ms ({} events/s)",
                took.as_millis(),
                fmt_rate(events as f64 / took.as_secs_f64())
            ));
        }
        drop(setups);
        drop(servers);
    }
    print(&rows);
    println!();
    for line in opens {
        println!("{line}");
    }
    Ok(())
}

/// The raw stream: keten's stream settings on other subjects, written by plain publishes.
async fn raw_stream(url: &str, opts: &NatsLogOptions) -> Result<async_nats::jetstream::Context> {
    let client = connect(url).await?;
    let js = async_nats::jetstream::new(client);
    let mut config = opts.stream_config();
    config.name = format!("RAW{}", opts.stream);
    config.subjects = vec![format!("raw{}.>", opts.subject_prefix)];
    js.create_stream(config)
        .await
        .context("create raw stream")?;
    Ok(js)
}

async fn connect(url: &str) -> Result<async_nats::Client> {
    let addrs = url
        .split(',')
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(async_nats::connect(addrs).await?)
}

/// Each client publishes one event and awaits its ack, like an append; the clients share one
/// connection, so their acks are pipelined on it.
async fn raw(
    js: &async_nats::jetstream::Context,
    prefix: &str,
    clients: usize,
    args: &NatsArgs,
    topology: &'static str,
) -> Result<Row> {
    let payload = bytes_of(args.payload);
    let until = Instant::now() + Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let js = js.clone();
            let payload = payload.clone();
            let subject = format!("raw{prefix}.e.client-{c}");
            tokio::spawn(async move {
                let mut hist = histogram();
                let mut n = 0u64;
                while Instant::now() < until {
                    let t = Instant::now();
                    js.publish(subject.clone(), payload.clone().into())
                        .await?
                        .await?;
                    record(&mut hist, t.elapsed());
                    n += 1;
                }
                anyhow::Ok((n, hist))
            })
        })
        .collect();
    finish(tasks, start, topology, clients, "raw JetStream publish").await
}

/// One publisher keeping `window` acks outstanding: what the connection can carry.
async fn pipelined(
    js: &async_nats::jetstream::Context,
    prefix: &str,
    args: &NatsArgs,
    topology: &'static str,
) -> Result<Row> {
    let payload = bytes_of(args.payload);
    let subject = format!("raw{prefix}.e.pipelined");
    let until = Instant::now() + Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut inflight = std::collections::VecDeque::new();
    let mut hist = histogram();
    let mut n = 0u64;
    while Instant::now() < until || !inflight.is_empty() {
        if Instant::now() < until && inflight.len() < args.window {
            let ack = js.publish(subject.clone(), payload.clone().into()).await?;
            inflight.push_back((Instant::now(), ack));
            continue;
        }
        let (t, ack) = inflight.pop_front().expect("in flight");
        ack.await?;
        record(&mut hist, t.elapsed());
        n += 1;
    }
    Ok(Row {
        topology,
        clients: 1,
        system: format!("raw JetStream, {} acks in flight (context)", args.window),
        events: n,
        elapsed: start.elapsed(),
        hist,
    })
}

/// Each client appends one event at a time to its own keten stream.
async fn keten(
    log: &Arc<NatsLog>,
    clients: usize,
    args: &NatsArgs,
    topology: &'static str,
) -> Result<Row> {
    let payload = bytes_of(args.payload);
    let until = Instant::now() + Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let log = log.clone();
            let payload = payload.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("client-{c}"))?;
                let ty = EventType::new("Benchmarked")?;
                let mut hist = histogram();
                let mut n = 0u64;
                while Instant::now() < until {
                    let event = ProposedEvent {
                        id: EventId(uuid::Uuid::from_u128(
                            NEXT_ID.fetch_add(1, Ordering::Relaxed) as u128,
                        )),
                        event_type: ty.clone(),
                        metadata: Vec::new(),
                        payload: payload.clone(),
                    };
                    let t = Instant::now();
                    log.append(&stream, ExpectedVersion::Any, vec![event])
                        .await?;
                    record(&mut hist, t.elapsed());
                    n += 1;
                }
                anyhow::Ok((n, hist))
            })
        })
        .collect();
    finish(tasks, start, topology, clients, "keten NatsLog append").await
}

/// Streams for the gRPC cases, a fresh one per case: the clients' families and event ids start
/// over each time.
static NEXT_GRPC_STREAM: AtomicU64 = AtomicU64::new(0);

/// `keten serve` (the real `keten_server::serve`, mTLS) on a NatsLog with the case's stream
/// settings; each client is a partner system publishing one event per call to its own families
/// with exact expected versions, as in the `server` benchmark.
async fn grpc(
    servers: &Servers,
    like: &NatsLogOptions,
    pki: &std::path::Path,
    clients: usize,
    args: &NatsArgs,
    topology: &'static str,
) -> Result<Row> {
    let n = NEXT_GRPC_STREAM.fetch_add(1, Ordering::Relaxed);
    let opts = NatsLogOptions {
        stream: format!("GRPC{n}"),
        subject_prefix: format!("grpc{n}"),
        ..like.clone()
    };
    let log = NatsLog::connect(&servers.url(), opts)
        .await
        .context("keten NatsLog for gRPC")?;
    let (url, stop, server) = crate::server::start(Arc::new(log), pki, None).await?;
    let duration = Duration::from_secs_f64(args.seconds);
    let barrier = Arc::new(tokio::sync::Barrier::new(clients));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let channel = crate::server::connect(&url, pki).await?;
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            crate::server::client(channel, c, 1, duration, &barrier).await
        }));
    }
    let mut hist = histogram();
    let mut events = 0;
    let mut elapsed = Duration::ZERO;
    for t in tasks {
        let (ops, took, h) = t.await??;
        events += ops;
        elapsed = elapsed.max(took);
        hist.add(&h).expect("same bounds");
    }
    let _ = stop.send(());
    server.await??;
    Ok(Row {
        topology,
        clients,
        system: "keten Publish over gRPC+mTLS on NatsLog".into(),
        events,
        elapsed,
        hist,
    })
}

async fn finish(
    tasks: Vec<Client>,
    start: Instant,
    topology: &'static str,
    clients: usize,
    system: &str,
) -> Result<Row> {
    let mut hist = histogram();
    let mut events = 0;
    for t in tasks {
        let (n, h) = t.await??;
        events += n;
        hist.add(&h).expect("same bounds");
    }
    Ok(Row {
        topology,
        clients,
        system: system.into(),
        events,
        elapsed: start.elapsed(),
        hist,
    })
}

fn bytes_of(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn print(rows: &[Row]) {
    println!(
        "| topology | clients | system | events/s | p50 µs | p99 µs | keten / raw | target ≥ 0.80 |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---|");
    for (i, r) in rows.iter().enumerate() {
        // Beside the raw row of the same topology and clients; the target is the backend's.
        let raw = rows[..i].iter().rev().find(|p| {
            p.system == "raw JetStream publish"
                && p.topology == r.topology
                && p.clients == r.clients
        });
        let (ratio, verdict) = if let (true, Some(raw)) = (r.system.starts_with("keten"), raw) {
            let ratio = r.rate() / raw.rate();
            let verdict = if r.system.contains("gRPC") {
                "(end to end)".to_string()
            } else if ratio >= 0.8 {
                "PASS".to_string()
            } else {
                "MISS".to_string()
            };
            (format!("{ratio:.2}"), verdict)
        } else {
            (String::new(), String::new())
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.topology,
            r.clients,
            r.system,
            fmt_rate(r.rate()),
            fmt_us(r.hist.value_at_quantile(0.5) as f64 / 1000.0),
            fmt_us(r.hist.value_at_quantile(0.99) as f64 / 1000.0),
            ratio,
            verdict
        );
    }
}
