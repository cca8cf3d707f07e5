//! PostgreSQL as an event store: the table an application would use, one event per transaction
//! and 100 per transaction, `synchronous_commit = on`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio_postgres::{Client, NoTls};

use crate::stats::{self, Measured};
use crate::workload::{EVENT_TYPE, payload};

/// A schema of its own, so a run never touches another user's `events` table in the database,
/// nor another run's.
fn schema() -> &'static str {
    static SCHEMA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| format!("keten_bench_{}", std::process::id()))
}

pub async fn connect(conn: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(conn, NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL ({conn})"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection: {e}");
        }
    });
    // The server default is `on`; set it anyway so a changed default can't flatter the figures.
    client
        .batch_execute(&format!(
            "SET synchronous_commit = on; SET search_path = {}",
            schema()
        ))
        .await?;
    Ok(client)
}

/// A fresh table for this run.
pub async fn setup(conn: &str) -> Result<()> {
    let client = connect(conn).await?;
    let fsync: String = client.query_one("SHOW fsync", &[]).await?.get(0);
    if fsync != "on" {
        bail!("PostgreSQL runs with fsync = {fsync}: its figures would not be durable ones");
    }
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
             DROP TABLE IF EXISTS {s}.events;
             CREATE TABLE {s}.events (
                 global_position bigserial PRIMARY KEY,
                 stream_id text NOT NULL,
                 version bigint NOT NULL,
                 type text NOT NULL,
                 data jsonb NOT NULL,
                 UNIQUE (stream_id, version)
             );",
            s = schema()
        ))
        .await?;
    Ok(())
}

/// Empties the table between cases, so each starts as keten's fresh log does.
pub async fn truncate(conn: &str) -> Result<()> {
    let client = connect(conn).await?;
    client
        .batch_execute(&format!("TRUNCATE {}.events RESTART IDENTITY", schema()))
        .await?;
    Ok(())
}

pub async fn drop_schema(conn: &str) -> Result<()> {
    let client = connect(conn).await?;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", schema()))
        .await?;
    Ok(())
}

const INSERT_ONE: &str =
    "INSERT INTO events (stream_id, version, type, data) VALUES ($1, $2, $3, $4::text::jsonb)";

/// One statement for the whole batch, the fastest way to put 100 rows in one transaction.
const INSERT_MANY: &str = "INSERT INTO events (stream_id, version, type, data)
     SELECT s, v, t, d::jsonb FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[]) AS u(s, v, t, d)";

/// `writers` connections, each appending to its own stream, `batch` events per transaction.
pub async fn write(
    conn: &str,
    writers: usize,
    batch: usize,
    duration: Duration,
) -> Result<Measured> {
    let mut clients = Vec::with_capacity(writers);
    for _ in 0..writers {
        clients.push(connect(conn).await?);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(writers));
    let mut tasks = Vec::with_capacity(writers);
    for (w, client) in clients.into_iter().enumerate() {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            writer(client, w, batch, duration, &barrier).await
        }));
    }
    let system = if batch == 1 {
        "PostgreSQL, 1 event/tx".to_string()
    } else {
        format!("PostgreSQL, {batch} events/tx")
    };
    let mut measured = Measured::new(system, writers, batch);
    for t in tasks {
        let (ops, elapsed, hist) = t.await??;
        measured.add_writer(ops, elapsed, &hist);
    }
    Ok(measured)
}

async fn writer(
    client: Client,
    w: usize,
    batch: usize,
    duration: Duration,
    barrier: &tokio::sync::Barrier,
) -> Result<(u64, Duration, hdrhistogram::Histogram<u64>)> {
    let stream = format!("bench-{w}");
    let stmt = client
        .prepare(if batch == 1 { INSERT_ONE } else { INSERT_MANY })
        .await?;
    let mut hist = stats::histogram();
    let mut ops = 0u64;
    let mut version = 0i64;
    barrier.wait().await;
    let began = Instant::now();
    while began.elapsed() < duration {
        // The parameters are built before the clock starts, as keten's events are.
        if batch == 1 {
            let data = payload(version as u64);
            let t = Instant::now();
            client
                .execute(&stmt, &[&stream, &version, &EVENT_TYPE, &data])
                .await?;
            stats::record(&mut hist, t.elapsed());
        } else {
            let streams = vec![stream.as_str(); batch];
            let versions: Vec<i64> = (version..version + batch as i64).collect();
            let types = vec![EVENT_TYPE; batch];
            let data: Vec<String> = versions.iter().map(|v| payload(*v as u64)).collect();
            let t = Instant::now();
            client
                .execute(&stmt, &[&streams, &versions, &types, &data])
                .await?;
            stats::record(&mut hist, t.elapsed());
        }
        version += batch as i64;
        ops += 1;
    }
    Ok((ops, began.elapsed(), hist))
}

/// Fills one stream of `events` events, interleaved with as many of another stream so the rows
/// are spread as a busy log spreads them.
pub async fn fill_stream(conn: &str, stream: &str, events: u64) -> Result<()> {
    let client = connect(conn).await?;
    let stmt = client.prepare(INSERT_MANY).await?;
    let mut version = 0i64;
    while (version as u64) < events {
        let n = 100.min(events as i64 - version);
        for s in [stream, "bench-read-other"] {
            let streams = vec![s; n as usize];
            let versions: Vec<i64> = (version..version + n).collect();
            let types = vec![EVENT_TYPE; n as usize];
            let data: Vec<String> = versions.iter().map(|v| payload(*v as u64)).collect();
            client
                .execute(&stmt, &[&streams, &versions, &types, &data])
                .await?;
        }
        version += n;
    }
    client.batch_execute("ANALYZE events").await?;
    Ok(())
}

/// Reads the whole stream `reads` times (after one warm-up read) and returns each read's time.
pub async fn read_stream(conn: &str, stream: &str, expect: u64, reads: usize) -> Result<Measured> {
    let client = connect(conn).await?;
    let stmt = client
        .prepare(
            "SELECT global_position, version, type, data::text FROM events
             WHERE stream_id = $1 ORDER BY version",
        )
        .await?;
    let mut measured = Measured::new("PostgreSQL", 1, expect as usize);
    let mut hist = stats::histogram();
    let began = Instant::now();
    for i in 0..=reads {
        let t = Instant::now();
        let rows = client.query(&stmt, &[&stream]).await?;
        let mut bytes = 0usize;
        for row in &rows {
            let data: &str = row.get(3);
            bytes += data.len();
        }
        let took = t.elapsed();
        if rows.len() as u64 != expect || bytes == 0 {
            bail!(
                "PostgreSQL read {} events of {stream}, expected {expect}",
                rows.len()
            );
        }
        if i > 0 {
            stats::record(&mut hist, took);
        }
    }
    measured.add_writer(reads as u64, began.elapsed(), &hist);
    Ok(measured)
}
