//! A malformed or hostile client against the real `keten serve` (real sockets, real mTLS):
//! oversized messages, huge batches, deep nesting and garbage, watchers that never read, and
//! connection floods. After every attack a normal client still publishes and reads, and the
//! server process is still alive. The limits are the `[limits]` of the configuration (README,
//! "Limits").

mod util;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use keten::client::{Session, publish_request as request};
use keten::scenario::{self, mid};
use keten_domain::{Event, FamilyId};
use keten_proto::v1::{self, expected_version::Kind};
use prost::Message;
use prost::bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use util::{Dir, Server};

/// Every legitimate step after an attack must finish before this; generous, so that a slow CI
/// machine does not fail it, and far below "never".
const DEADLINE: Duration = Duration::from_secs(20);

fn family(name: &str) -> FamilyId {
    FamilyId::new(name).unwrap()
}

fn any() -> Option<v1::ExpectedVersion> {
    Some(v1::ExpectedVersion {
        kind: Some(Kind::Any(v1::Empty {})),
    })
}

/// Sets `[limits]` keys in the test's configuration.
fn with_limits(dir: &Dir, limits: &[(&str, i64)]) {
    let text = std::fs::read_to_string(&dir.config).unwrap();
    let mut config: toml::Table = toml::from_str(&text).unwrap();
    let table = config
        .entry("limits")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap();
    for (key, value) in limits {
        table.insert((*key).into(), toml::Value::Integer(*value));
    }
    std::fs::write(&dir.config, toml::to_string(&config).unwrap()).unwrap();
}

fn coordinator_who() -> scenario::Who {
    scenario::coordinator()
}

async fn coordinator(server: &Server) -> Session {
    let c = coordinator_who();
    server.session(c.partner, c.person, c.role).await
}

async fn police(server: &Server) -> Session {
    let p = scenario::police_system();
    server.session(p.partner, p.person, p.role).await
}

/// Registers `fam` with its members, and the police joined: the first three scenario steps.
async fn register(server: &Server, fam: &FamilyId) {
    scenario_steps(server, fam, 3).await;
}

/// The first `n` steps of the demo scenario (13: up to an agreed plan with its actions).
async fn scenario_steps(server: &Server, fam: &FamilyId, n: usize) {
    for step in scenario::steps(fam, keten_projection::today())
        .into_iter()
        .take(n)
    {
        let s = server
            .session(step.who.partner, step.who.person, step.who.role)
            .await;
        s.gateway()
            .publish(s.request(request(fam, any(), &step.events)))
            .await
            .unwrap_or_else(|st| panic!("{}: {st:?}", step.label));
    }
}

/// `n` police contacts: an event the police may record any number of times.
fn contacts(n: usize) -> Vec<Event> {
    let on = scenario::ago(keten_projection::today(), 1);
    (0..n)
        .map(|_| Event::PoliceContactRecorded {
            member_id: Some(mid("c1")),
            occurred_on: on,
        })
        .collect()
}

/// What a normal client does: the police publish one contact, the coordinator reads the plan
/// at that position. Returns the plan's version; panics past the deadline or on any error.
async fn normal_client_works(server: &Server, fam: &FamilyId) -> u64 {
    let started = Instant::now();
    let work = async {
        // New connections, so that a flood that blocks new clients is caught.
        let police = police(server).await;
        let coordinator = coordinator(server).await;
        let r = police
            .gateway()
            .publish(police.request(request(fam, any(), &contacts(1))))
            .await
            .expect("a normal publish")
            .into_inner();
        let p = coordinator
            .coordination()
            .get_family_plan(coordinator.request(v1::GetFamilyPlanRequest {
                family_id: fam.to_string(),
                min_position: Some(r.last_position),
            }))
            .await
            .expect("a normal read")
            .into_inner();
        assert_eq!(p.version, r.version, "the read sees the publish");
        p.version
    };
    let version = tokio::time::timeout(DEADLINE, work)
        .await
        .expect("a normal client publishes and reads before the deadline");
    eprintln!("normal client: publish + read in {:?}", started.elapsed());
    version
}

fn assert_alive(server: &Server) {
    assert!(
        std::path::Path::new(&format!("/proc/{}/status", server.pid())).exists()
            && !proc_status(server, "State:").contains("zombie"),
        "the server process is alive"
    );
}

fn proc_status(server: &Server, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .expect("the server's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The server's resident memory in KiB.
fn rss_kib(server: &Server) -> u64 {
    proc_status(server, "VmRSS:")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmRSS in kB")
}

/// The sockets the server process holds open.
fn sockets(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .expect("the server's fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count()
}

/// A codec that sends and receives raw bytes, for what the generated clients cannot send.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Sends `bytes` as the body of one `PartnerGateway.Publish` call.
async fn publish_raw(s: &Session, bytes: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(s.channel.clone());
    grpc.ready().await.expect("channel ready");
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/keten.v1.PartnerGateway/Publish");
    grpc.unary(s.request(bytes), path, Raw)
        .await
        .map(|r| r.into_inner())
}

/// A request larger than `max_decoding_message_bytes` (4 MiB by default) is OUT_OF_RANGE, on a
/// connection that then goes on serving, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_out_of_range_and_the_connection_goes_on() {
    let dir = Dir::new();
    let server = dir.serve();
    let fam = family("gezin-groot");
    register(&server, &fam).await;
    let police = police(&server).await;
    let before = normal_client_works(&server, &fam).await;

    // A 5 MiB correlation id: a well-formed request, just too large.
    let mut big = request(&fam, any(), &contacts(1));
    big.correlation_id = Some("x".repeat(5 << 20));
    let st = police
        .gateway()
        .publish(police.request(big))
        .await
        .expect_err("a 5 MiB request is refused");
    assert_eq!(st.code(), Code::OutOfRange, "{st:?}");
    assert!(
        st.message().contains("the limit is: 4194304"),
        "names the limit: {st:?}"
    );

    // The same connection serves the next call.
    let r = police
        .gateway()
        .publish(police.request(request(&fam, any(), &contacts(1))))
        .await
        .expect("the same connection publishes after the refusal")
        .into_inner();
    assert_eq!(r.version, before + 1, "the oversized publish wrote nothing");
    normal_client_works(&server, &fam).await;
    assert_alive(&server);
}

/// The limit is the configured one: a request just over a configured 64 KiB is refused, one
/// under it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_size_limit_is_configured() {
    let dir = Dir::new();
    with_limits(&dir, &[("max_decoding_message_bytes", 65536)]);
    let server = dir.serve();
    let fam = family("gezin-klein");
    register(&server, &fam).await;
    let police = police(&server).await;
    let mut over = request(&fam, any(), &contacts(1));
    over.correlation_id = Some("x".repeat(70_000));
    let st = police
        .gateway()
        .publish(police.request(over))
        .await
        .expect_err("70 kB over a 64 KiB limit");
    assert_eq!(st.code(), Code::OutOfRange, "{st:?}");
    assert!(st.message().contains("the limit is: 65536"), "{st:?}");
    let mut under = request(&fam, any(), &contacts(1));
    under.correlation_id = Some("x".repeat(60_000));
    police
        .gateway()
        .publish(police.request(under))
        .await
        .expect("60 kB under a 64 KiB limit");
    normal_client_works(&server, &fam).await;
    assert_alive(&server);
}

/// More events in one publish than `max_events_per_publish` (1000 by default, JetStream's
/// atomic batch) is INVALID_ARGUMENT naming `events` and the limit; nothing is written. 1000
/// is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_batch_is_refused_naming_events_and_the_limit() {
    let dir = Dir::new();
    let server = dir.serve();
    let fam = family("gezin-batch");
    register(&server, &fam).await;
    let police = police(&server).await;
    let before = normal_client_works(&server, &fam).await;

    let st = police
        .gateway()
        .publish(police.request(request(&fam, any(), &contacts(1001))))
        .await
        .expect_err("1001 events are refused");
    assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
    let details = st.get_error_details();
    let field = &details.bad_request().expect("BadRequest").field_violations[0];
    assert_eq!(field.field, "events");
    assert!(field.description.contains("at most 1000"), "{field:?}");

    let r = police
        .gateway()
        .publish(police.request(request(&fam, any(), &contacts(1000))))
        .await
        .expect("1000 events are accepted")
        .into_inner();
    assert_eq!(
        r.version,
        before + 1000,
        "the refused batch wrote nothing, the accepted one all"
    );
    normal_client_works(&server, &fam).await;
    assert_alive(&server);
}

/// A configured lower limit holds too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_limit_is_configured() {
    let dir = Dir::new();
    with_limits(&dir, &[("max_events_per_publish", 10)]);
    let server = dir.serve();
    let fam = family("gezin-batch-klein");
    register(&server, &fam).await;
    let police = police(&server).await;
    let st = police
        .gateway()
        .publish(police.request(request(&fam, any(), &contacts(11))))
        .await
        .expect_err("11 events over a limit of 10");
    assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
    assert!(st.message().contains("at most 10 "), "{st:?}");
    police
        .gateway()
        .publish(police.request(request(&fam, any(), &contacts(10))))
        .await
        .expect("10 events");
    normal_client_works(&server, &fam).await;
    assert_alive(&server);
}

/// Deeply nested, truncated and random protobuf bodies are refused by the decoder (prost stops
/// at a nesting depth of 100), and the connection and the server go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_and_garbage_are_refused_and_the_server_goes_on() {
    let dir = Dir::new();
    let server = dir.serve();
    let fam = family("gezin-nest");
    register(&server, &fam).await;
    let police = police(&server).await;
    let before = normal_client_works(&server, &fam).await;

    // An unknown field 15 as a group nested 100,000 deep: each level would be a stack frame
    // of the decoder if it did not stop.
    let depth = 100_000;
    let mut nested = vec![(15 << 3) | 3; depth];
    nested.extend(std::iter::repeat_n((15 << 3) | 4, depth));
    let st = publish_raw(&police, nested)
        .await
        .expect_err("deep nesting is refused");
    assert_eq!(st.code(), Code::Internal, "{st:?}");
    assert!(st.message().contains("recursion limit"), "{st:?}");

    // A known field (events, 3) whose length runs past the end of the message.
    let st = publish_raw(&police, vec![(3 << 3) | 2, 0xff, 0xff, 0x03, 1, 2, 3])
        .await
        .expect_err("a truncated message is refused");
    assert_eq!(st.code(), Code::Internal, "{st:?}");

    // Random bytes (a fixed xorshift, so a failure is reproducible): whatever they decode to,
    // the answer is an error, never a crash.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..50 {
        let garbage: Vec<u8> = (0..1 + round * 37)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let st = publish_raw(&police, garbage)
            .await
            .expect_err("garbage is refused");
        assert!(
            matches!(st.code(), Code::Internal | Code::InvalidArgument),
            "round {round}: {st:?}"
        );
    }

    // A well-formed body through the same raw path is served: the refusals were the bytes'.
    let ok = request(&fam, any(), &contacts(1)).encode_to_vec();
    let answer = publish_raw(&police, ok).await.expect("a valid raw publish");
    let r = v1::PublishResponse::decode(answer.as_slice()).expect("a PublishResponse");
    assert_eq!(r.version, before + 1, "nothing of the garbage was written");
    normal_client_works(&server, &fam).await;
    assert_alive(&server);
}

/// Watchers that never read: the server pulls a watch from the log only as HTTP/2 flow control
/// lets it send, so their cost is bounded (h2 buffers at most 400 KiB per stream) however many
/// events are published, other clients keep working, and a lagging watcher that reads again
/// gets every change, none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_that_never_read_cost_bounded_memory_and_block_no_one() {
    const WATCHERS: usize = 64;
    const EVENTS: usize = 2000;
    let dir = Dir::new();
    let server = dir.serve();
    let fam = family("gezin-watch");
    // A family with a plan, goals and actions: each change a watcher is sent is a full plan.
    scenario_steps(&server, &fam, 13).await;
    let police = police(&server).await;
    let start = normal_client_works(&server, &fam).await;

    // The watchers share one connection of their own, as a hostile client would.
    let watcher = coordinator(&server).await;
    let mut streams = Vec::new();
    for _ in 0..WATCHERS {
        let s = watcher
            .coordination()
            .watch_family_plan(watcher.request(v1::WatchFamilyPlanRequest {
                family_id: fam.to_string(),
            }))
            .await
            .expect("watch")
            .into_inner();
        streams.push(s);
    }
    // A round first, so that the baseline includes what a large publish allocates once.
    police
        .gateway()
        .publish(police.request(request(&fam, any(), &contacts(200))))
        .await
        .expect("publish");
    let baseline = rss_kib(&server);

    // EVENTS more changes, none of which the watchers read.
    let mut normal = Vec::new();
    for _ in 0..EVENTS / 1000 {
        police
            .gateway()
            .publish(police.request(request(&fam, any(), &contacts(1000))))
            .await
            .expect("publish while watchers do not read");
        let t = Instant::now();
        normal_client_works(&server, &fam).await;
        normal.push(t.elapsed());
    }
    let last = normal_client_works(&server, &fam).await;
    let after = rss_kib(&server);

    // What the server would hold if it buffered every change for every watcher.
    let plan_bytes = coordinator(&server)
        .await
        .coordination()
        .get_family_plan(watcher.request(v1::GetFamilyPlanRequest {
            family_id: fam.to_string(),
            min_position: None,
        }))
        .await
        .expect("plan")
        .into_inner()
        .encoded_len() as u64;
    let unbounded_kib = WATCHERS as u64 * EVENTS as u64 * plan_bytes / 1024;
    // h2's 400 KiB send buffer and tonic's encoding buffer per watcher, and room for the
    // allocator and the state the events themselves add.
    let bound_kib = 16 * 1024 + WATCHERS as u64 * 512;
    eprintln!(
        "RSS {baseline} KiB -> {after} KiB with {WATCHERS} watchers not reading {EVENTS} \
         changes; unbounded buffering would add ~{unbounded_kib} KiB; normal rounds {normal:?}"
    );
    assert!(
        unbounded_kib > 2 * bound_kib,
        "the test would not tell a bounded server from an unbounded one"
    );
    assert!(
        after.saturating_sub(baseline) < bound_kib,
        "RSS grew by {} KiB with watchers that do not read",
        after.saturating_sub(baseline)
    );

    // A lagging watcher that reads again gets every change in order, up to the last. (The
    // others go first: the server would otherwise keep filling their windows as the reader
    // frees the connection's.)
    let mut first = streams.pop().unwrap();
    drop(streams);
    let read_all = async {
        let mut version = None;
        while let Some(item) = first.message().await.expect("watch item") {
            if let Some(v) = version {
                assert_eq!(item.version, v + 1, "no change skipped");
            }
            version = Some(item.version);
            if item.version == last {
                break;
            }
        }
        version
    };
    let started = Instant::now();
    let seen = tokio::time::timeout(DEADLINE, read_all)
        .await
        .expect("the lagging watcher catches up before the deadline");
    eprintln!("the lagging watcher caught up in {:?}", started.elapsed());
    assert_eq!(seen, Some(last));
    assert!(start < last);
    normal_client_works(&server, &fam).await;
    assert_alive(&server);
}

/// Opens `n` TCP connections that send nothing: TLS never starts.
fn idle_connections(server: &Server, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(server.addr).expect("tcp connect"))
        .collect()
}

/// 200 connections that never complete TLS (the handshakes run concurrently, each bounded by
/// `tls_handshake_timeout_secs`): a legitimate client is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_does_not_keep_others_out() {
    let dir = Dir::new();
    let server = dir.serve();
    let fam = family("gezin-flood");
    register(&server, &fam).await;
    let flood = idle_connections(&server, 200);
    // Half of them send a few bytes of garbage instead of a ClientHello.
    for c in flood.iter().step_by(2) {
        use std::io::Write;
        let _ = (&*c).write_all(b"GET / HTTP/1.1\r\n\r\n");
    }
    normal_client_works(&server, &fam).await;
    assert_alive(&server);
    drop(flood);
    normal_client_works(&server, &fam).await;
    assert_alive(&server);
}

/// With a small `max_connections`, the server never holds more than that many connections
/// however many are opened, closes those that do not finish TLS in
/// `tls_handshake_timeout_secs`, and so a legitimate client queued behind them gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_stalled_handshakes_time_out() {
    const CAP: usize = 16;
    const FLOOD: usize = 64;
    let dir = Dir::new();
    with_limits(
        &dir,
        &[
            ("max_connections", CAP as i64),
            ("tls_handshake_timeout_secs", 1),
        ],
    );
    let server = dir.serve();
    // What the server holds without any client (its listeners): the baseline.
    let idle_sockets = sockets(&server);
    let fam = family("gezin-cap");
    register(&server, &fam).await;
    wait_for(|| (sockets(&server) == idle_sockets).then_some(()))
        .await
        .unwrap_or_else(|| panic!("the registration's connections close: {}", sockets(&server)));

    let flood = idle_connections(&server, FLOOD);
    // A legitimate client queues behind the flood.
    let legit = tokio::spawn({
        let url = server.url();
        let pki = dir.pki.clone();
        async move {
            let p = scenario::police_system();
            let channel = keten::client::connect(&url, &pki, p.partner)
                .await
                .expect("connect");
            let police = Session::new(channel, p.person, p.role);
            police
                .gateway()
                .publish(police.request(request(
                    &FamilyId::new("gezin-cap").unwrap(),
                    any(),
                    &contacts(1),
                )))
                .await
                .map(|r| r.into_inner().version)
        }
    });

    // Every flood connection is closed by the server (none finishes TLS), and at no time does
    // the server hold more than CAP client connections.
    let mut most = 0;
    let closed = std::thread::spawn(move || {
        let mut buf = [0u8; 1];
        flood
            .into_iter()
            .filter(|mut c| {
                c.set_read_timeout(Some(DEADLINE)).unwrap();
                // EOF or a reset: closed by the server. A timeout: still held.
                !matches!(c.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut)
            })
            .count()
    });
    while !closed.is_finished() {
        most = most.max(sockets(&server).saturating_sub(idle_sockets));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        closed.join().unwrap(),
        FLOOD,
        "the server closes stalled handshakes"
    );
    eprintln!("at most {most} client sockets held with a cap of {CAP}");
    assert!(most <= CAP, "{most} connections held, the cap is {CAP}");
    assert!(most > 0, "the sampling saw the flood");
    let version = tokio::time::timeout(DEADLINE, legit)
        .await
        .expect("the queued client gets in before the deadline")
        .unwrap()
        .expect("the queued client publishes");
    assert!(version > 0);
    normal_client_works(&server, &fam).await;
    assert_alive(&server);
}

/// Polls `f` every 20 ms until it answers, for at most the deadline.
async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + DEADLINE;
    while Instant::now() < until {
        if let Some(t) = f() {
            return Some(t);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
