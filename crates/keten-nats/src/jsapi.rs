//! The few JetStream requests keten makes, with their answers parsed and their failures sorted
//! into "certainly not stored", "conflict" and "unknown".

use std::time::Duration;

use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::{Client, HeaderMap, jetstream};
use bytes::Bytes;
use futures::StreamExt;

use crate::error::{NatsError, Result};

/// The server's error code for `Nats-Expected-Last-Sequence` not holding.
const WRONG_LAST_SEQUENCE: u64 = 10071;

/// Most messages one batched direct get asks for.
pub const FETCH_BATCH: u64 = 256;
/// Most bytes one batched direct get asks for (at least one message always comes).
const FETCH_MAX_BYTES: u64 = 4 << 20;

/// One stored message, as a direct get or a stream get returns it.
pub struct Fetched {
    pub seq: u64,
    pub subject: String,
    pub headers: Option<HeaderMap>,
    pub payload: Bytes,
}

pub struct Outgoing {
    pub subject: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub enum PublishOutcome {
    /// Stored; the last message's stream sequence.
    Stored(u64),
    /// Another writer got there first: nothing of the round was stored.
    WrongLastSequence,
    /// Rejected: nothing of the round was stored, and trying again will not help.
    Rejected(NatsError),
    /// No answer: stored or not, catching up with the stream will tell.
    Unknown(String),
}

pub struct StreamState {
    pub first_seq: u64,
    pub last_seq: u64,
    pub deleted: Vec<u64>,
}

#[derive(Clone)]
pub struct Js {
    pub client: Client,
    pub js: jetstream::Context,
    pub stream: String,
    pub timeout: Duration,
}

impl Js {
    async fn request(&self, subject: String, payload: Bytes) -> Result<async_nats::Message> {
        let what = subject.clone();
        match tokio::time::timeout(self.timeout, self.client.request(subject, payload)).await {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(e)) => Err(NatsError::request(what, e)),
            Err(_) => Err(NatsError::Timeout {
                what,
                elapsed_ms: self.timeout.as_millis() as u64,
            }),
        }
    }

    /// The stream's sequences, as its leader knows them.
    pub async fn stream_state(&self, deleted_details: bool) -> Result<StreamState> {
        let subject = format!("$JS.API.STREAM.INFO.{}", self.stream);
        let body = serde_json::json!({ "deleted_details": deleted_details }).to_string();
        let m = self.request(subject.clone(), body.into()).await?;
        let v: serde_json::Value = serde_json::from_slice(&m.payload)
            .map_err(|e| NatsError::request(&subject, format!("bad answer: {e}")))?;
        if let Some(err) = v.get("error") {
            return Err(api_error(&subject, err));
        }
        let state = &v["state"];
        Ok(StreamState {
            first_seq: state["first_seq"].as_u64().unwrap_or(0),
            last_seq: state["last_seq"].as_u64().unwrap_or(0),
            deleted: state["deleted"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                .unwrap_or_default(),
        })
    }

    /// Publishes one round: one message, or an atomic batch, whose first message carries
    /// `Nats-Expected-Last-Sequence`, so that the round lands right after `expected_last` or
    /// not at all.
    pub async fn publish_round(&self, msgs: Vec<Outgoing>, expected_last: u64) -> PublishOutcome {
        let n = msgs.len();
        // A NUID: unique among the batches in flight, which is all the server asks.
        let inbox = self.client.new_inbox();
        let batch_id = inbox.rsplit('.').next().unwrap_or(&inbox).to_string();
        let mut last = None;
        for (i, mut m) in msgs.into_iter().enumerate() {
            if i == 0 {
                m.headers.insert(
                    "Nats-Expected-Last-Sequence",
                    expected_last.to_string().as_str(),
                );
            }
            if n > 1 {
                m.headers.insert("Nats-Batch-Id", batch_id.as_str());
                m.headers
                    .insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
                if i + 1 == n {
                    m.headers.insert("Nats-Batch-Commit", "1");
                }
            }
            if i + 1 < n {
                // The batch's middle messages need no answer: the commit's ack (or error)
                // speaks for the whole batch, and one connection keeps their order.
                if let Err(e) = self
                    .client
                    .publish_with_headers(m.subject, m.headers, m.body)
                    .await
                {
                    return PublishOutcome::Unknown(e.to_string());
                }
            } else {
                last = Some(m);
            }
        }
        let m = last.expect("a round has at least one message");
        let answer = tokio::time::timeout(
            self.timeout,
            self.client
                .request_with_headers(m.subject, m.headers, m.body),
        )
        .await;
        let reply = match answer {
            Err(_) => return PublishOutcome::Unknown("no acknowledgement in time".into()),
            Ok(Err(e)) => return PublishOutcome::Unknown(e.to_string()),
            Ok(Ok(reply)) => reply,
        };
        let v: serde_json::Value = match serde_json::from_slice(&reply.payload) {
            Ok(v) => v,
            Err(_) => {
                return PublishOutcome::Unknown(format!(
                    "unreadable acknowledgement (status {:?})",
                    reply.status
                ));
            }
        };
        if let Some(err) = v.get("error") {
            if err["err_code"].as_u64() == Some(WRONG_LAST_SEQUENCE) {
                return PublishOutcome::WrongLastSequence;
            }
            // 503s and leadership changes say nothing certain about a batch in flight.
            if err["code"].as_u64() == Some(503) {
                return PublishOutcome::Unknown(err.to_string());
            }
            return PublishOutcome::Rejected(api_error("publish", err));
        }
        match v["seq"].as_u64() {
            Some(seq) => PublishOutcome::Stored(seq),
            None => PublishOutcome::Unknown(format!("acknowledgement without sequence: {v}")),
        }
    }

    /// Up to `count` messages from stream sequence `from` on (only those on `subject` when
    /// given), in one batched direct get. Any replica answers, so a lagging one may return
    /// fewer or none: callers ask again, or ask the leader ([`Self::get_from_leader`]).
    pub async fn fetch(
        &self,
        from: u64,
        count: u64,
        subject: Option<&str>,
    ) -> Result<Vec<Fetched>> {
        let api = format!("$JS.API.DIRECT.GET.{}", self.stream);
        // max_bytes bounds one answer when events are large (256 of 1 MiB each otherwise).
        let mut req = serde_json::json!({
            "seq": from,
            "batch": count.min(FETCH_BATCH),
            "max_bytes": FETCH_MAX_BYTES,
        });
        if let Some(s) = subject {
            req["next_by_subj"] = s.into();
        }
        let inbox = self.client.new_inbox();
        let mut sub = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| NatsError::request(&api, e))?;
        self.client
            .publish_with_reply(api.clone(), inbox, req.to_string().into())
            .await
            .map_err(|e| NatsError::request(&api, e))?;
        let mut out = Vec::new();
        let collect = async {
            while let Some(m) = sub.next().await {
                if let Some(status) = m.status {
                    // 204 ends the batch; 404: nothing at or after `from`; anything else is an
                    // error that a retry may cure.
                    return match status.as_u16() {
                        204 | 404 => Ok(()),
                        code => Err(NatsError::request(
                            &api,
                            format!("status {code} {:?}", m.description),
                        )),
                    };
                }
                let headers = m.headers.as_ref();
                let seq = headers
                    .and_then(|h| h.get("Nats-Sequence"))
                    .and_then(|v| v.as_str().parse::<u64>().ok());
                let subject = headers
                    .and_then(|h| h.get("Nats-Subject"))
                    .map(|v| v.as_str().to_string());
                let (Some(seq), Some(subject)) = (seq, subject) else {
                    return Err(NatsError::request(&api, "answer without Nats-Sequence"));
                };
                out.push(Fetched {
                    seq,
                    subject,
                    headers: m.headers,
                    payload: m.payload,
                });
            }
            Err(NatsError::request(&api, "connection closed"))
        };
        match tokio::time::timeout(self.timeout, collect).await {
            Ok(Ok(())) => Ok(out),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(NatsError::Timeout {
                what: api,
                elapsed_ms: self.timeout.as_millis() as u64,
            }),
        }
    }

    /// One message from the stream's leader: the authority on whether it exists.
    pub async fn get_from_leader(&self, seq: u64) -> Result<Option<Fetched>> {
        let stream = self
            .js
            .get_stream_no_info(&self.stream)
            .await
            .map_err(|e| NatsError::request("stream lookup", e))?;
        match tokio::time::timeout(self.timeout, stream.get_raw_message(seq)).await {
            Ok(Ok(m)) => Ok(Some(Fetched {
                seq: m.sequence,
                subject: m.subject.to_string(),
                headers: Some(m.headers),
                payload: m.payload,
            })),
            Ok(Err(e)) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
            Ok(Err(e)) => Err(NatsError::request(format!("get sequence {seq}"), e)),
            Err(_) => Err(NatsError::Timeout {
                what: format!("get sequence {seq}"),
                elapsed_ms: self.timeout.as_millis() as u64,
            }),
        }
    }
}

fn api_error(what: &str, err: &serde_json::Value) -> NatsError {
    NatsError::Api {
        what: what.to_string(),
        code: err["code"].as_u64().unwrap_or(0) as u16,
        err_code: err["err_code"].as_u64().unwrap_or(0),
        description: err["description"].as_str().unwrap_or("").to_string(),
    }
}

/// How many request timeouts opening a stream keeps trying for.
const OPEN_PATIENCE: u32 = 6;

/// The configuration of stream `config.name`, created from `config` when it is missing and
/// `create` allows.
///
/// Servers that start together race to create the same stream, and a busy cluster (or one still
/// electing the new stream's leader) can time a create out although it went in. So a lookup or
/// create that timed out, found JetStream unavailable, or lost the race is tried again, looking
/// the stream up first each time (a create that landed is then found), for up to
/// [`OPEN_PATIENCE`] request timeouts. Any other refusal (a bad configuration, no resources) is
/// returned at once.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: jetstream::stream::Config,
    create: bool,
    request_timeout: Duration,
) -> Result<jetstream::stream::Config> {
    use jetstream::context::{CreateStreamErrorKind as Create, GetStreamErrorKind as Get};
    let deadline = tokio::time::Instant::now() + request_timeout * OPEN_PATIENCE;
    loop {
        let failure = match js.get_stream(&config.name).await {
            Ok(mut s) => match s.info().await {
                Ok(info) => return Ok(info.config.clone()),
                Err(e) => NatsError::request("stream info", e),
            },
            Err(e)
                if matches!(e.kind(), Get::JetStream(ref j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                if !create {
                    return Err(NatsError::Config(format!(
                        "stream {} does not exist (and creating it is off)",
                        config.name
                    )));
                }
                match js.create_stream(config.clone()).await {
                    Ok(s) => return Ok(s.cached_info().config.clone()),
                    Err(e) => {
                        let transient = match e.kind() {
                            Create::TimedOut | Create::JetStreamUnavailable | Create::Response => {
                                true
                            }
                            Create::JetStream(j) => {
                                j.error_code() == jetstream::ErrorCode::STREAM_NAME_EXIST
                                    || j.code() == 503
                            }
                            _ => false,
                        };
                        let failure = NatsError::request("create stream", e);
                        if !transient {
                            return Err(failure);
                        }
                        failure
                    }
                }
            }
            Err(e) if matches!(e.kind(), Get::Request) => NatsError::request("stream lookup", e),
            Err(e) => return Err(NatsError::request("stream lookup", e)),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(failure);
        }
        tracing::warn!(stream = %config.name, error = %failure, "opening the stream; trying again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
