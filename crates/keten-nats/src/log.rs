//! [`NatsLog`]: the [`EventStore`] on a JetStream stream.
//!
//! Every keten server keeps an [`Index`] rebuilt from the stream. Appends go through one writer
//! task per server, which groups the appends waiting at that moment into a round, decides each
//! against the index exactly as the file log does (idempotency, expected version), and publishes
//! the round's events as one message or one atomic batch whose first message carries
//! `Nats-Expected-Last-Sequence: <the index's last sequence>`. So a round lands right after what
//! this server has seen, or not at all; when another server got there first, the writer reads the
//! new events into its index and decides again. JetStream is the replicated log and the
//! compare-and-set on its tail; keten is a deterministic state machine over it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use keten_log::{
    AppendResult, CommitTime, Direction, Error, EventStore, EventStream, ExpectedVersion,
    GlobalPosition, ProposedEvent, ReadFrom, RecordedEvent, StreamId, StreamVersion,
    SubscriptionFilter, Until,
};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::error::{NatsError, Result};
use crate::index::Index;
use crate::jsapi::{self, Fetched, Js, Outgoing, PublishOutcome};
use crate::options::{FsyncCheck, MAX_BATCH, MIN_SERVER_VERSION, NatsLogOptions, parse_version};
use crate::record::Record;

/// Appends waiting for the writer; beyond this, `append` waits (backpressure on writers).
const QUEUE: usize = 4096;

pub struct NatsLog {
    inner: Arc<Inner>,
    writer: mpsc::Sender<Request>,
}

struct Inner {
    js: Js,
    opts: NatsLogOptions,
    index: Mutex<Index>,
    max_payload: usize,
}

struct Request {
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<ProposedEvent>,
    reply: oneshot::Sender<keten_log::Result<AppendResult>>,
}

impl NatsLog {
    /// Connects to `url` (comma-separated for a cluster), checks the servers and the stream (or
    /// creates the stream when allowed and missing), and reads the whole log into the index,
    /// checking its chain on the way: a damaged log is refused here.
    pub async fn connect(url: &str, opts: NatsLogOptions) -> Result<Self> {
        let addrs = url
            .split(',')
            .map(|u| u.trim().parse::<async_nats::ServerAddr>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| NatsError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let client = async_nats::ConnectOptions::new()
            .name("keten")
            .request_timeout(Some(opts.request_timeout))
            .connection_timeout(opts.request_timeout)
            .connect(addrs)
            .await
            .map_err(|e| NatsError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let info = client.server_info();
        let mut problems = Vec::new();
        match parse_version(&info.version) {
            Some(v) if v >= MIN_SERVER_VERSION => {}
            _ => problems.push(format!(
                "server {} is older than {}.{}.{}: no atomic batch publish{}",
                info.version,
                MIN_SERVER_VERSION.0,
                MIN_SERVER_VERSION.1,
                MIN_SERVER_VERSION.2,
                if parse_version(&info.version).is_some_and(|v| v < (2, 10, 0)) {
                    ", and it cannot fsync before acknowledging"
                } else {
                    ""
                }
            )),
        }
        if !info.jetstream {
            problems.push(format!(
                "server {} has JetStream disabled",
                info.server_name
            ));
        }
        if let FsyncCheck::Verify { monitor_urls } = &opts.fsync {
            problems.extend(check_fsync(monitor_urls, opts.request_timeout).await);
        }
        if !problems.is_empty() {
            return Err(NatsError::Unsafe {
                stream: opts.stream.clone(),
                problems,
            });
        }

        let js = async_nats::jetstream::new(client.clone());
        let config =
            jsapi::ensure_stream(&js, opts.stream_config(), opts.create, opts.request_timeout)
                .await?;
        let problems = opts.check_stream(&config);
        if !problems.is_empty() {
            return Err(NatsError::Unsafe {
                stream: opts.stream.clone(),
                problems,
            });
        }

        let inner = Arc::new(Inner {
            js: Js {
                client,
                js,
                stream: opts.stream.clone(),
                timeout: opts.request_timeout,
            },
            max_payload: info.max_payload,
            opts,
            index: Mutex::new(Index::new()),
        });
        {
            let mut index = inner.index.lock().await;
            inner.catch_up(&mut index).await?;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(inner.clone(), rx));
        Ok(Self { inner, writer: tx })
    }

    pub fn options(&self) -> &NatsLogOptions {
        &self.inner.opts
    }

    /// The NATS client this log uses (for tools and tests).
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.js.client
    }
}

/// Each server's `/varz` must say `sync_always` (the server fsyncs before it acknowledges) and a
/// new enough version.
async fn check_fsync(monitor_urls: &[String], timeout: Duration) -> Vec<String> {
    if monitor_urls.is_empty() {
        return vec![
            "no monitoring URL to check that the servers fsync before acknowledging: give every \
             server's http://host:port, or accept acknowledgements before fsync explicitly"
                .into(),
        ];
    }
    let mut problems = Vec::new();
    for url in monitor_urls {
        match tokio::time::timeout(timeout, http_get_json(url, "/varz")).await {
            Ok(Ok(v)) => {
                if v["jetstream"]["config"]["sync_always"] != true {
                    problems.push(format!(
                        "server at {url} does not fsync before acknowledging (set jetstream \
                         {{ sync_interval: always }})"
                    ));
                }
                let version = v["version"].as_str().unwrap_or("?");
                if parse_version(version).is_none_or(|x| x < MIN_SERVER_VERSION) {
                    problems.push(format!("server at {url} is version {version}"));
                }
            }
            Ok(Err(e)) => problems.push(format!("cannot read {url}/varz: {e}")),
            Err(_) => problems.push(format!("no answer from {url}/varz")),
        }
    }
    problems
}

/// HTTP/1.0 GET on `http://host:port`: enough for a monitoring endpoint, no HTTP stack.
async fn http_get_json(base: &str, path: &str) -> std::io::Result<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("{base}: only http:// monitoring URLs")))?
        .trim_end_matches('/');
    let mut conn = tokio::net::TcpStream::connect(host).await?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut text = Vec::new();
    conn.read_to_end(&mut text).await?;
    let text = String::from_utf8_lossy(&text);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| invalid("no HTTP body".into()))?;
    serde_json::from_str(body).map_err(|e| invalid(e.to_string()))
}

fn now_micros() -> u64 {
    CommitTime::now().0
}

/// Polls `attempt` until it succeeds or the deadline passes, with a short growing pause between
/// tries (a leader election, a reconnect).
async fn retry<T, F, Fut>(deadline: Instant, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut pause = Duration::from_millis(5);
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e @ NatsError::Corrupt { .. }) => return Err(e),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(e) => {
                tracing::debug!("retrying: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        }
    }
}

impl Inner {
    fn corrupt(&self, seq: u64, reason: impl Into<String>) -> NatsError {
        NatsError::Corrupt {
            stream: self.opts.stream.clone(),
            seq,
            position: GlobalPosition(seq.saturating_sub(1)),
            reason: reason.into(),
        }
    }

    fn decode(&self, f: &Fetched) -> Result<(Record, Vec<u8>, crate::record::Hash)> {
        let (r, hash) =
            Record::decode(f.headers.as_ref(), &f.payload).map_err(|e| self.corrupt(f.seq, e))?;
        if f.subject != self.opts.subject(&r.stream) {
            return Err(self.corrupt(
                f.seq,
                format!(
                    "stored on subject {} but belongs to stream `{}`",
                    f.subject, r.stream
                ),
            ));
        }
        if r.position + 1 != f.seq {
            return Err(self.corrupt(
                f.seq,
                format!(
                    "record says position {}, but stream sequence {} holds position {}",
                    r.position,
                    f.seq,
                    f.seq - 1
                ),
            ));
        }
        Ok((r, f.payload.to_vec(), hash))
    }

    /// Reads the stream from `index`'s end to its last sequence into `index`, and on until the
    /// index does not end inside an append: the leader reports its last sequence while it is
    /// still storing an atomic batch message by message, so a catch-up can stop mid-batch.
    async fn catch_up(&self, index: &mut Index) -> Result<()> {
        let deadline = Instant::now() + self.opts.append_timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            let last = retry(deadline, || self.js.stream_state(false))
                .await?
                .last_seq;
            self.apply_to(index, last, deadline).await?;
            let Some(reason) = index.open_tail() else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(self.corrupt(
                    index.len() + 1,
                    format!("{reason}, and the rest never came (an atomic batch was cut)"),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn apply_to(&self, index: &mut Index, last: u64, deadline: Instant) -> Result<()> {
        while index.len() < last {
            let from = index.len() + 1;
            let got = retry(deadline, || self.fetch_some(from, last - index.len(), None)).await?;
            for (k, f) in got.into_iter().enumerate() {
                let expected = index.len() + 1;
                if f.seq != expected && k > 0 {
                    // A hole in one replica's answer: ask again from there (the leader decides).
                    break;
                }
                if f.seq != expected {
                    return Err(self.corrupt(
                        expected,
                        format!(
                            "the event at position {} is missing: stream sequence {expected} was deleted (the next one stored is {})",
                            expected - 1,
                            f.seq
                        ),
                    ));
                }
                let (r, body, hash) = self.decode(&f)?;
                index
                    .apply(&r, &body, &hash)
                    .map_err(|reason| self.corrupt(f.seq, reason))?;
            }
        }
        Ok(())
    }

    /// Messages from `from` on, the first of them `from` itself unless the leader says it is
    /// gone: a batched direct get, and the leader when the replica that answered had nothing
    /// yet or lacked `from` (a replica still catching up).
    async fn fetch_some(
        &self,
        from: u64,
        count: u64,
        subject: Option<&str>,
    ) -> Result<Vec<Fetched>> {
        let got = self.js.fetch(from, count, subject).await?;
        if got.first().is_some_and(|f| f.seq == from) {
            return Ok(got);
        }
        match self.js.get_from_leader(from).await? {
            Some(f) => Ok(vec![f]),
            None if !got.is_empty() => Ok(got),
            None => Err(self.corrupt(
                from,
                format!(
                    "the event at position {} is missing: stream sequence {from} was deleted",
                    from - 1
                ),
            )),
        }
    }

    /// Exactly the messages at `seqs` (ascending), all on `subject` when given.
    async fn fetch_exact(&self, seqs: &[u64], subject: Option<&str>) -> Result<Vec<Record>> {
        let deadline = Instant::now() + self.opts.append_timeout;
        let mut out = Vec::with_capacity(seqs.len());
        while out.len() < seqs.len() {
            let want = seqs[out.len()];
            let left = (seqs.len() - out.len()) as u64;
            let batch = match subject {
                // Messages of one subject are not contiguous: ask for them by subject.
                Some(s) => retry(deadline, || self.fetch_some(want, left, Some(s))).await?,
                None => retry(deadline, || self.fetch_some(want, left, None)).await?,
            };
            for (k, f) in batch.into_iter().enumerate() {
                let Some(&want) = seqs.get(out.len()) else {
                    break;
                };
                if f.seq != want && k > 0 {
                    break;
                }
                if f.seq != want {
                    return Err(self.corrupt(
                        want,
                        format!(
                            "the event at position {} is missing (found stream sequence {} instead)",
                            want - 1,
                            f.seq
                        ),
                    ));
                }
                out.push(self.decode(&f)?.0);
            }
        }
        Ok(out)
    }

    /// The index, caught up with the stream: reads see every append acknowledged before they
    /// started, by any server.
    async fn synced(&self) -> Result<tokio::sync::MutexGuard<'_, Index>> {
        let mut index = self.index.lock().await;
        self.catch_up(&mut index).await?;
        Ok(index)
    }

    /// Decides each request of a round against the index (writing the new events into it) and
    /// publishes what is new; on a lost race or an unknown outcome, takes the round back, reads
    /// what the stream has now, and decides again.
    async fn run_round(&self, reqs: Vec<Request>) {
        let deadline = Instant::now() + self.opts.append_timeout;
        let mut index = self.index.lock().await;
        let answers = loop {
            // A failed catch-up can leave the index inside an append: nothing can follow that.
            if index.open_tail().is_some()
                && let Err(e) = self.catch_up(&mut index).await
            {
                let e = Error::from(e);
                break reqs.iter().map(|_| Err(clone_err(&e))).collect();
            }
            let saved_len = index.len();
            let saved_hash = index.tail_hash;
            let time = now_micros().max(index.last_time());
            let mut answers = Vec::with_capacity(reqs.len());
            let mut written = Vec::new();
            let mut msgs = Vec::new();
            for req in &reqs {
                answers.push(self.decide(&mut index, req, time, &mut written, &mut msgs));
            }
            if msgs.is_empty() {
                break answers;
            }
            let n = msgs.len() as u64;
            let retry_reason = match self.js.publish_round(msgs, saved_len).await {
                PublishOutcome::Stored(seq) if seq == saved_len + n => break answers,
                PublishOutcome::Stored(seq) => {
                    format!(
                        "round stored ending at sequence {seq}, not {}",
                        saved_len + n
                    )
                }
                PublishOutcome::WrongLastSequence => "another writer appended first".into(),
                PublishOutcome::Unknown(why) => why,
                PublishOutcome::Rejected(e) => {
                    index.rollback(&written, saved_hash);
                    let e = Error::from(e);
                    break reqs.iter().map(|_| Err(clone_err(&e))).collect();
                }
            };
            index.rollback(&written, saved_hash);
            tracing::debug!("append round again: {retry_reason}");
            if Instant::now() >= deadline {
                let e = Error::Backend(format!(
                    "append not confirmed within {:?} ({retry_reason}); it may or may not be stored: retrying with the same event ids is safe",
                    self.opts.append_timeout
                ));
                break reqs.iter().map(|_| Err(clone_err(&e))).collect();
            }
            if let Err(e) = self.catch_up(&mut index).await {
                let e = Error::from(e);
                break reqs.iter().map(|_| Err(clone_err(&e))).collect();
            }
        };
        drop(index);
        for (req, answer) in reqs.into_iter().zip(answers) {
            let _ = req.reply.send(answer);
        }
    }

    fn decide(
        &self,
        index: &mut Index,
        req: &Request,
        time: u64,
        written: &mut Vec<Record>,
        msgs: &mut Vec<Outgoing>,
    ) -> keten_log::Result<AppendResult> {
        let n = req.events.len() as u32;
        let mut records: Vec<Record> = req
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| Record {
                stream: req.stream.clone(),
                id: e.id,
                event_type: e.event_type.clone(),
                version: 0,
                position: 0,
                batch_index: i as u32,
                batch_len: n,
                committed_at: time,
                metadata: e.metadata.clone(),
                payload: e.payload.clone(),
            })
            .collect();
        let bodies: Vec<Vec<u8>> = records.iter().map(Record::body).collect();

        // Idempotency, for the log's whole life: the index holds every event id.
        let found: Vec<Option<u64>> = records.iter().map(|r| index.position_of(&r.id)).collect();
        if let Some((i, p)) = found
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.map(|p| (i, p)))
        {
            let p0 = found[0];
            let exact = p0.is_some_and(|p0| {
                found.iter().enumerate().all(|(i, p)| {
                    *p == Some(p0 + i as u64) && {
                        let s = index.slots[(p0 + i as u64) as usize];
                        s.batch_index == i as u32
                            && s.batch_len == n
                            && s.digest == crate::record::digest(&bodies[i])
                    }
                }) && index.stream_of(p0) == &req.stream
            });
            return if exact {
                Ok(index.append_result(p0.expect("exact")))
            } else {
                Err(Error::IdempotencyConflict {
                    id: records[i].id,
                    stored_stream: index.stream_of(p).clone(),
                    stored_position: GlobalPosition(p),
                })
            };
        }

        let current = index.stream_version(&req.stream);
        let ok = match req.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.is_none(),
            ExpectedVersion::StreamExists => current.is_some(),
            ExpectedVersion::Exact(v) => current == Some(v.0),
        };
        if !ok {
            return Err(Error::WrongExpectedVersion {
                stream: req.stream.clone(),
                expected: req.expected,
                actual: current.map(StreamVersion),
            });
        }

        let first_version = current.map_or(0, |v| v + 1);
        let first_position = index.len();
        let subject = self.opts.subject(&req.stream);
        for (i, (r, body)) in records.iter_mut().zip(bodies).enumerate() {
            r.version = first_version + i as u64;
            r.position = first_position + i as u64;
            let hash = r.chain_hash(&index.tail_hash, &body);
            index
                .apply(r, &body, &hash)
                .map_err(|e| Error::Backend(format!("internal: own record refused: {e}")))?;
            msgs.push(Outgoing {
                subject: subject.clone(),
                headers: r.headers(&hash),
                body: body.into(),
            });
        }
        written.extend(records);
        Ok(AppendResult {
            first_version: StreamVersion(first_version),
            last_version: StreamVersion(first_version + n as u64 - 1),
            first_position: GlobalPosition(first_position),
            last_position: GlobalPosition(first_position + n as u64 - 1),
            committed_at: CommitTime(time),
        })
    }

    async fn subscribe(
        &self,
        start_seq: u64,
        filter_subject: String,
    ) -> Result<async_nats::jetstream::consumer::pull::Ordered> {
        let stream = self
            .js
            .js
            .get_stream_no_info(&self.opts.stream)
            .await
            .map_err(|e| NatsError::request("stream lookup", e))?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start_seq,
                },
                filter_subject,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::request("create ordered consumer", e))?;
        consumer
            .messages()
            .await
            .map_err(|e| NatsError::request("consume", e))
    }

    fn decode_delivered(&self, m: &async_nats::jetstream::Message) -> Result<Record> {
        let seq = m
            .info()
            .map_err(|e| NatsError::request("message info", e))?
            .stream_sequence;
        let f = Fetched {
            seq,
            subject: m.subject.to_string(),
            headers: m.headers.clone(),
            payload: m.payload.clone(),
        };
        Ok(self.decode(&f)?.0)
    }
}

/// `keten_log::Error` is not `Clone` (it carries `io::Error`); a round's shared failure is
/// rebuilt per request.
fn clone_err(e: &Error) -> Error {
    match e {
        Error::Corrupt {
            file,
            offset,
            position,
            reason,
        } => Error::Corrupt {
            file: file.clone(),
            offset: *offset,
            position: *position,
            reason: reason.clone(),
        },
        Error::Config(s) => Error::Config(s.clone()),
        Error::Closed => Error::Closed,
        other => Error::Backend(other.to_string()),
    }
}

async fn writer(inner: Arc<Inner>, mut rx: mpsc::Receiver<Request>) {
    let mut pending: VecDeque<Request> = VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(r) => pending.push_back(r),
                None => return,
            }
        }
        // Group commit: the appenders just answered are usually about to send their next
        // append. Letting them run first (a few scheduler turns, while the queue still grows)
        // makes the next round carry them instead of leaving them for the one after.
        for _ in 0..4 {
            let before = rx.len();
            tokio::task::yield_now().await;
            if rx.len() == before {
                break;
            }
        }
        while let Ok(r) = rx.try_recv() {
            pending.push_back(r);
        }
        let mut round = Vec::new();
        let mut events = 0;
        while let Some(r) = pending.front() {
            if !round.is_empty() && events + r.events.len() > MAX_BATCH {
                break;
            }
            events += r.events.len();
            round.push(pending.pop_front().expect("front"));
        }
        inner.run_round(round).await;
    }
}

#[async_trait::async_trait]
impl EventStore for NatsLog {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> keten_log::Result<AppendResult> {
        if events.is_empty() {
            return Err(Error::InvalidAppend("no events".into()));
        }
        if events.len() > MAX_BATCH {
            return Err(Error::InvalidAppend(format!(
                "{} events in one append; JetStream's atomic batches hold at most {MAX_BATCH}",
                events.len()
            )));
        }
        let mut ids = std::collections::HashSet::with_capacity(events.len());
        for e in &events {
            if !ids.insert(e.id) {
                return Err(Error::InvalidAppend(format!(
                    "event id {} appears twice in one append",
                    e.id
                )));
            }
            // The body plus headers must fit the server's max_payload.
            let size = e.payload.len() + e.metadata.len() + stream.as_str().len() + 600;
            if size > self.inner.max_payload {
                return Err(Error::InvalidAppend(format!(
                    "event {} is {size} bytes with its framing; the server takes at most {}",
                    e.id, self.inner.max_payload
                )));
            }
        }
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Request {
                stream: stream.clone(),
                expected,
                events,
                reply,
            })
            .await
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: ReadFrom<StreamVersion>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> keten_log::Result<Vec<RecordedEvent>> {
        let seqs: Vec<u64> = {
            let index = self.inner.synced().await?;
            let Some(entry) = index.stream(stream) else {
                return Ok(Vec::new());
            };
            let visible = match index.cut(until) {
                Some(cut) => entry.positions.partition_point(|&p| p <= cut),
                None => 0,
            };
            let range = select(visible, from.map(|v| v.0), direction, limit);
            entry.positions[range].iter().map(|p| p + 1).collect()
        };
        let subject = self.inner.opts.subject(stream);
        let mut events: Vec<RecordedEvent> = self
            .inner
            .fetch_exact(&seqs, Some(&subject))
            .await?
            .into_iter()
            .map(Record::into_event)
            .collect();
        if direction == Direction::Backward {
            events.reverse();
        }
        Ok(events)
    }

    async fn read_all(
        &self,
        from: ReadFrom<GlobalPosition>,
        direction: Direction,
        limit: usize,
        until: Until,
    ) -> keten_log::Result<Vec<RecordedEvent>> {
        let range = {
            let index = self.inner.synced().await?;
            let visible = index.cut(until).map_or(0, |c| c as usize + 1);
            select(visible, from.map(|p| p.0), direction, limit)
        };
        let seqs: Vec<u64> = range.map(|p| p as u64 + 1).collect();
        let mut events: Vec<RecordedEvent> = self
            .inner
            .fetch_exact(&seqs, None)
            .await?
            .into_iter()
            .map(Record::into_event)
            .collect();
        if direction == Direction::Backward {
            events.reverse();
        }
        Ok(events)
    }

    async fn stream_version(&self, stream: &StreamId) -> keten_log::Result<Option<StreamVersion>> {
        let index = self.inner.synced().await?;
        Ok(index.stream_version(stream).map(StreamVersion))
    }

    async fn head(&self) -> keten_log::Result<Option<GlobalPosition>> {
        let index = self.inner.synced().await?;
        Ok(index.len().checked_sub(1).map(GlobalPosition))
    }

    async fn position_at(&self, time: CommitTime) -> keten_log::Result<Option<GlobalPosition>> {
        let index = self.inner.synced().await?;
        Ok(index.position_at(time.0).map(GlobalPosition))
    }

    async fn subscribe_all(
        &self,
        after: Option<GlobalPosition>,
        filter: SubscriptionFilter,
    ) -> keten_log::Result<EventStream> {
        let next = after.map_or(0, |p| p.0 + 1);
        let messages = self
            .inner
            .subscribe(next + 1, self.inner.opts.subject_filter())
            .await?;
        let inner = self.inner.clone();
        let events = futures::stream::unfold(
            (messages, next, false),
            move |(mut messages, mut next, done)| {
                let inner = inner.clone();
                let filter = filter.clone();
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        let m = match messages.next().await? {
                            Ok(m) => m,
                            Err(e) => {
                                let e = NatsError::request("subscription", e);
                                return Some((Err(e.into()), (messages, next, true)));
                            }
                        };
                        let r = match inner.decode_delivered(&m) {
                            Ok(r) => r,
                            Err(e) => return Some((Err(e.into()), (messages, next, true))),
                        };
                        if r.position != next {
                            let e = inner.corrupt(
                                next + 1,
                                format!(
                                    "subscription expected position {next}, the stream delivered {}",
                                    r.position
                                ),
                            );
                            return Some((Err(e.into()), (messages, next, true)));
                        }
                        next += 1;
                        let event = r.into_event();
                        if filter.matches(&event) {
                            return Some((Ok(event), (messages, next, false)));
                        }
                    }
                }
            },
        );
        Ok(events.boxed())
    }

    async fn subscribe_stream(
        &self,
        stream: &StreamId,
        after: Option<StreamVersion>,
    ) -> keten_log::Result<EventStream> {
        let next_version = after.map_or(0, |v| v.0 + 1);
        let start_seq = {
            let index = self.inner.synced().await?;
            // Where the next version is, if stored; otherwise anything later than what the index
            // has seen (the versions in between are after it too).
            index
                .stream(stream)
                .and_then(|e| e.positions.get(next_version as usize))
                .map_or(index.len() + 1, |p| p + 1)
        };
        let messages = self
            .inner
            .subscribe(start_seq, self.inner.opts.subject(stream))
            .await?;
        let inner = self.inner.clone();
        let stream = stream.clone();
        let events = futures::stream::unfold(
            (messages, next_version, false),
            move |(mut messages, mut next, done)| {
                let inner = inner.clone();
                let stream = stream.clone();
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        let m = match messages.next().await? {
                            Ok(m) => m,
                            Err(e) => {
                                let e = NatsError::request("subscription", e);
                                return Some((Err(e.into()), (messages, next, true)));
                            }
                        };
                        let r = match inner.decode_delivered(&m) {
                            Ok(r) => r,
                            Err(e) => return Some((Err(e.into()), (messages, next, true))),
                        };
                        if r.stream != stream {
                            let e = inner.corrupt(
                                r.position + 1,
                                "event of another stream on this stream's subject",
                            );
                            return Some((Err(e.into()), (messages, next, true)));
                        }
                        if r.version < next {
                            continue;
                        }
                        if r.version != next {
                            let e = inner.corrupt(
                                r.position + 1,
                                format!(
                                    "stream `{stream}`: version {} delivered where {next} comes next",
                                    r.version
                                ),
                            );
                            return Some((Err(e.into()), (messages, next, true)));
                        }
                        next += 1;
                        return Some((Ok(r.into_event()), (messages, next, false)));
                    }
                }
            },
        );
        Ok(events.boxed())
    }

    /// Walks the whole stream from its first sequence with a fresh index: every position
    /// present, every record well formed, versions and appends whole, times in order, ids
    /// unique, and the hash chain unbroken. Names the first break.
    async fn verify(&self) -> keten_log::Result<u64> {
        let inner = &self.inner;
        let deadline = Instant::now() + inner.opts.append_timeout;
        let state = retry(deadline, || inner.js.stream_state(true)).await?;
        if state.last_seq > 0 && state.first_seq > 1 {
            return Err(inner
                .corrupt(
                    1,
                    format!(
                        "events at positions 0 to {} were removed: the stream starts at sequence {}",
                        state.first_seq - 2,
                        state.first_seq
                    ),
                )
                .into());
        }
        if let Some(&seq) = state.deleted.first() {
            return Err(inner
                .corrupt(
                    seq,
                    format!(
                        "the event at position {} was deleted (stream sequence {seq}; {} deleted in all)",
                        seq - 1,
                        state.deleted.len()
                    ),
                )
                .into());
        }
        let mut fresh = Index::new();
        inner.apply_to(&mut fresh, state.last_seq, deadline).await?;
        if let Some(reason) = fresh.open_tail() {
            return Err(inner.corrupt(state.last_seq, reason).into());
        }
        let known = inner.index.lock().await.len();
        if fresh.len() < known {
            return Err(inner
                .corrupt(
                    fresh.len() + 1,
                    format!(
                        "the stream holds {} events but this server has seen {known}: events were removed at the end",
                        fresh.len()
                    ),
                )
                .into());
        }
        Ok(fresh.len())
    }
}

trait MapFrom<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> ReadFrom<U>;
}

impl<T> MapFrom<T> for ReadFrom<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> ReadFrom<U> {
        match self {
            ReadFrom::Start => ReadFrom::Start,
            ReadFrom::End => ReadFrom::End,
            ReadFrom::At(t) => ReadFrom::At(f(t)),
        }
    }
}

/// Which indexes of `0..visible` a read returns, ascending (a backward read reverses them).
fn select(
    visible: usize,
    from: ReadFrom<u64>,
    direction: Direction,
    limit: usize,
) -> std::ops::Range<usize> {
    if visible == 0 || limit == 0 {
        return 0..0;
    }
    match direction {
        Direction::Forward => {
            let start = match from {
                ReadFrom::Start => 0,
                ReadFrom::End => visible,
                ReadFrom::At(i) => (i as usize).min(visible),
            };
            start..visible.min(start.saturating_add(limit))
        }
        Direction::Backward => {
            let last = match from {
                ReadFrom::Start => 0,
                ReadFrom::End => visible - 1,
                ReadFrom::At(i) => (i as usize).min(visible - 1),
            };
            (last + 1).saturating_sub(limit)..last + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ranges() {
        use Direction::*;
        assert_eq!(select(10, ReadFrom::Start, Forward, 3), 0..3);
        assert_eq!(select(10, ReadFrom::At(5), Forward, 100), 5..10);
        assert_eq!(select(10, ReadFrom::End, Forward, 10), 10..10);
        assert_eq!(select(10, ReadFrom::End, Backward, 3), 7..10);
        assert_eq!(select(10, ReadFrom::At(2), Backward, 10), 0..3);
        assert_eq!(select(10, ReadFrom::Start, Backward, 10), 0..1);
        assert_eq!(select(10, ReadFrom::At(50), Forward, 10), 10..10);
        assert_eq!(select(10, ReadFrom::Start, Forward, 0), 0..0);
        assert_eq!(select(0, ReadFrom::End, Backward, 5), 0..0);
        assert_eq!(select(10, ReadFrom::Start, Forward, usize::MAX), 0..10);
    }
}
