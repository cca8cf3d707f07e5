//! Property test: random sequences of appends (every kind of expected version), retries, retries
//! with changed content, reads and reopens, run against the file log and against a plain
//! in-memory model of the specification. Both must give the same answers.

use std::collections::HashMap;

use keten_log::{
    AppendResult, Direction, Error, EventId, EventStore, EventType, ExpectedVersion, FileLog,
    FileLogOptions, GlobalPosition, ProposedEvent, ReadFrom, RecordedEvent, StreamId,
    StreamVersion, Until,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append {
        stream: u8,
        expected: Expected,
        events: u8,
    },
    /// Sends an earlier append again, unchanged.
    Retry {
        which: usize,
    },
    /// Sends an earlier append again with the same ids but another payload.
    RetryChanged {
        which: usize,
    },
    /// Sends only the first event of an earlier append again.
    RetryFirst {
        which: usize,
    },
    ReadStream {
        stream: u8,
        from: Option<u8>,
        backward: bool,
        limit: u8,
    },
    ReadAll {
        from: Option<u8>,
        backward: bool,
        limit: u8,
    },
    Reopen {
        drop_checkpoint: bool,
    },
}

#[derive(Clone, Copy, Debug)]
enum Expected {
    Any,
    NoStream,
    Exists,
    Exact(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let expected = prop_oneof![
        Just(Expected::Any),
        Just(Expected::NoStream),
        Just(Expected::Exists),
        (0u8..6).prop_map(Expected::Exact),
    ];
    prop_oneof![
        6 => (0u8..3, expected, 1u8..4).prop_map(|(stream, expected, events)| Op::Append { stream, expected, events }),
        2 => any::<usize>().prop_map(|which| Op::Retry { which }),
        1 => any::<usize>().prop_map(|which| Op::RetryChanged { which }),
        1 => any::<usize>().prop_map(|which| Op::RetryFirst { which }),
        2 => (0u8..3, proptest::option::of(0u8..12), any::<bool>(), 0u8..6)
            .prop_map(|(stream, from, backward, limit)| Op::ReadStream { stream, from, backward, limit }),
        1 => (proptest::option::of(0u8..40), any::<bool>(), 0u8..10)
            .prop_map(|(from, backward, limit)| Op::ReadAll { from, backward, limit }),
        1 => any::<bool>().prop_map(|drop_checkpoint| Op::Reopen { drop_checkpoint }),
    ]
}

#[derive(Clone, Debug)]
struct Request {
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<ProposedEvent>,
}

/// What the model predicts; the commit time is not modelled.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok {
        first_version: u64,
        last_version: u64,
        first_position: u64,
        last_position: u64,
    },
    Wrong(Option<u64>),
    Conflict,
}

#[derive(Default)]
struct Model {
    /// (stream, event, first position of its append, events in its append)
    events: Vec<(StreamId, ProposedEvent, u64, u64)>,
    versions: HashMap<StreamId, u64>,
    ids: HashMap<EventId, u64>,
}

impl Model {
    fn append(&mut self, r: &Request) -> Outcome {
        let found: Vec<Option<u64>> = r
            .events
            .iter()
            .map(|e| self.ids.get(&e.id).copied())
            .collect();
        if found.iter().any(Option::is_some) {
            let n = r.events.len() as u64;
            let Some(p0) = found[0] else {
                return Outcome::Conflict;
            };
            let (_, _, batch_start, batch_len) = &self.events[p0 as usize];
            let same = *batch_start == p0
                && *batch_len == n
                && found
                    .iter()
                    .enumerate()
                    .all(|(k, p)| *p == Some(p0 + k as u64))
                && r.events.iter().enumerate().all(|(k, e)| {
                    let (s, stored, ..) = &self.events[(p0 + k as u64) as usize];
                    *s == r.stream && stored == e
                });
            if !same {
                return Outcome::Conflict;
            }
            let first_version = self.version_of(p0);
            return Outcome::Ok {
                first_version,
                last_version: first_version + n - 1,
                first_position: p0,
                last_position: p0 + n - 1,
            };
        }
        let len = self.versions.get(&r.stream).copied().unwrap_or(0);
        let actual = len.checked_sub(1);
        let ok = match r.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => len == 0,
            ExpectedVersion::StreamExists => len > 0,
            ExpectedVersion::Exact(v) => actual == Some(v.0),
        };
        if !ok {
            return Outcome::Wrong(actual);
        }
        let first_position = self.events.len() as u64;
        let n = r.events.len() as u64;
        for e in &r.events {
            self.ids.insert(e.id, self.events.len() as u64);
            self.events
                .push((r.stream.clone(), e.clone(), first_position, n));
        }
        self.versions.insert(r.stream.clone(), len + n);
        Outcome::Ok {
            first_version: len,
            last_version: len + n - 1,
            first_position,
            last_position: first_position + n - 1,
        }
    }

    fn version_of(&self, position: u64) -> u64 {
        let s = &self.events[position as usize].0;
        self.events[..position as usize]
            .iter()
            .filter(|(x, ..)| x == s)
            .count() as u64
    }

    /// (stream, version, position, payload) of every event, in global order.
    fn rows(&self) -> Vec<(StreamId, u64, u64, Vec<u8>)> {
        let mut next: HashMap<&StreamId, u64> = HashMap::new();
        self.events
            .iter()
            .enumerate()
            .map(|(p, (s, e, ..))| {
                let v = next.entry(s).or_insert(0);
                *v += 1;
                (s.clone(), *v - 1, p as u64, e.payload.clone())
            })
            .collect()
    }
}

fn rows(events: &[RecordedEvent]) -> Vec<(StreamId, u64, u64, Vec<u8>)> {
    events
        .iter()
        .map(|e| {
            (
                e.stream.clone(),
                e.version.0,
                e.position.0,
                e.payload.clone(),
            )
        })
        .collect()
}

/// Naive selection, written apart from the log's own.
fn pick<T: Clone>(items: &[T], from: Option<u8>, backward: bool, limit: u8) -> Vec<T> {
    let n = items.len();
    if backward {
        let start = from.map_or(n as isize - 1, |f| (f as isize).min(n as isize - 1));
        (0..=start)
            .rev()
            .take(limit as usize)
            .map(|i| items[i as usize].clone())
            .collect()
    } else {
        let start = from.map_or(0, |f| f as usize);
        items
            .iter()
            .skip(start)
            .take(limit as usize)
            .cloned()
            .collect()
    }
}

fn outcome(r: Result<AppendResult, Error>) -> Outcome {
    match r {
        Ok(r) => Outcome::Ok {
            first_version: r.first_version.0,
            last_version: r.last_version.0,
            first_position: r.first_position.0,
            last_position: r.last_position.0,
        },
        Err(Error::WrongExpectedVersion { actual, .. }) => Outcome::Wrong(actual.map(|v| v.0)),
        Err(Error::IdempotencyConflict { .. }) => Outcome::Conflict,
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn options() -> FileLogOptions {
    FileLogOptions {
        segment_size: 4096,
        // The flush is not what is under test here; skipping it keeps the cases quick.
        durability: keten_log::Durability::NoSyncUnsafe,
        ..FileLogOptions::default()
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FileLog::open(dir.path(), options()).await.unwrap();
    let mut model = Model::default();
    let mut sent: Vec<Request> = Vec::new();
    let mut first_results: HashMap<u64, AppendResult> = HashMap::new();
    let mut next_id = 1u128;
    let streams: Vec<StreamId> = (0..3)
        .map(|i| StreamId::new(format!("s-{i}")).unwrap())
        .collect();
    for op in ops {
        let request = match op {
            Op::Append {
                stream,
                expected,
                events,
            } => {
                let events = (0..events)
                    .map(|_| {
                        next_id += 1;
                        ProposedEvent {
                            id: EventId(uuid::Uuid::from_u128(next_id)),
                            event_type: EventType::new("E").unwrap(),
                            metadata: vec![],
                            payload: format!("p{next_id}").into_bytes(),
                        }
                    })
                    .collect();
                let expected = match expected {
                    Expected::Any => ExpectedVersion::Any,
                    Expected::NoStream => ExpectedVersion::NoStream,
                    Expected::Exists => ExpectedVersion::StreamExists,
                    Expected::Exact(v) => ExpectedVersion::Exact(StreamVersion(v as u64)),
                };
                Some(Request {
                    stream: streams[stream as usize].clone(),
                    expected,
                    events,
                })
            }
            Op::Retry { which } if !sent.is_empty() => Some(sent[which % sent.len()].clone()),
            Op::RetryChanged { which } if !sent.is_empty() => {
                let mut r = sent[which % sent.len()].clone();
                r.events[0].payload.push(b'!');
                Some(r)
            }
            Op::RetryFirst { which } if !sent.is_empty() => {
                let mut r = sent[which % sent.len()].clone();
                r.events.truncate(1);
                Some(r)
            }
            Op::ReadStream {
                stream,
                from,
                backward,
                limit,
            } => {
                let s = &streams[stream as usize];
                let want: Vec<_> = pick(
                    &model
                        .rows()
                        .into_iter()
                        .filter(|r| &r.0 == s)
                        .collect::<Vec<_>>(),
                    from,
                    backward,
                    limit,
                );
                let got = log
                    .read_stream(
                        s,
                        from.map_or(
                            if backward {
                                ReadFrom::End
                            } else {
                                ReadFrom::Start
                            },
                            |f| ReadFrom::At(StreamVersion(f as u64)),
                        ),
                        if backward {
                            Direction::Backward
                        } else {
                            Direction::Forward
                        },
                        limit as usize,
                        Until::Latest,
                    )
                    .await
                    .unwrap();
                prop_assert_eq!(rows(&got), want);
                None
            }
            Op::ReadAll {
                from,
                backward,
                limit,
            } => {
                let want = pick(&model.rows(), from, backward, limit);
                let got = log
                    .read_all(
                        from.map_or(
                            if backward {
                                ReadFrom::End
                            } else {
                                ReadFrom::Start
                            },
                            |f| ReadFrom::At(GlobalPosition(f as u64)),
                        ),
                        if backward {
                            Direction::Backward
                        } else {
                            Direction::Forward
                        },
                        limit as usize,
                        Until::Latest,
                    )
                    .await
                    .unwrap();
                prop_assert_eq!(rows(&got), want);
                None
            }
            Op::Reopen { drop_checkpoint } => {
                log.close().await.unwrap();
                if drop_checkpoint {
                    // There is none when nothing was appended since the last one was dropped.
                    let _ = std::fs::remove_file(dir.path().join("index.ckpt"));
                }
                log = FileLog::open(dir.path(), options()).await.unwrap();
                None
            }
            Op::Retry { .. } | Op::RetryChanged { .. } | Op::RetryFirst { .. } => None,
        };
        if let Some(request) = request {
            let want = model.append(&request);
            let got = log
                .append(&request.stream, request.expected, request.events.clone())
                .await;
            if let Ok(r) = &got {
                // A retry returns the first result, commit time included.
                let first = first_results.entry(r.first_position.0).or_insert(*r);
                prop_assert_eq!(first, r);
            }
            prop_assert_eq!(outcome(got), want);
            sent.push(request);
        }
    }
    let all = log
        .read_all(
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await
        .unwrap();
    prop_assert_eq!(rows(&all), model.rows());
    for s in &streams {
        let v = model.versions.get(s).map(|&n| StreamVersion(n - 1));
        prop_assert_eq!(log.stream_version(s).await.unwrap(), v);
    }
    prop_assert_eq!(log.verify().await.unwrap(), model.events.len() as u64);
    log.close().await.unwrap();
    let report = keten_log::verify_dir(dir.path()).unwrap();
    prop_assert_eq!(report.events, model.events.len() as u64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn file_log_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
