//! The state every keten server rebuilds from the stream and keeps in step with it: where each
//! stream's events are, every event id, the commit times and the chain's tail.
//!
//! Architecture invariant: the index changes only by [`Index::apply`], in stream-sequence order,
//! and `apply` checks that each record continues the log (position, version, batch, time, id,
//! hash). The writer's own records go through the same door, so what a server decides on is
//! exactly what any other server rebuilding from the stream would have.

use std::collections::HashMap;

use keten_log::{
    AppendResult, CommitTime, EventId, GlobalPosition, StreamId, StreamVersion, Until,
};

use crate::record::{GENESIS, Hash, Record, digest};

#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub stream: u32,
    pub version: u64,
    pub batch_index: u32,
    pub batch_len: u32,
    pub committed_at: u64,
    pub digest: [u8; 16],
}

pub struct StreamEntry {
    pub id: StreamId,
    /// Global positions, by version.
    pub positions: Vec<u64>,
}

pub struct Index {
    pub slots: Vec<Slot>,
    pub streams: Vec<StreamEntry>,
    by_name: HashMap<StreamId, u32>,
    ids: HashMap<EventId, u64>,
    pub tail_hash: Hash,
}

impl Index {
    pub fn new() -> Self {
        Self {
            slots: Vec::new(),
            streams: Vec::new(),
            by_name: HashMap::new(),
            ids: HashMap::new(),
            tail_hash: GENESIS,
        }
    }

    /// Events in the log; also the next position, and the stream's last sequence.
    pub fn len(&self) -> u64 {
        self.slots.len() as u64
    }

    pub fn last_time(&self) -> u64 {
        self.slots.last().map_or(0, |s| s.committed_at)
    }

    pub fn stream(&self, s: &StreamId) -> Option<&StreamEntry> {
        self.by_name.get(s).map(|&i| &self.streams[i as usize])
    }

    pub fn stream_version(&self, s: &StreamId) -> Option<u64> {
        self.stream(s).map(|e| e.positions.len() as u64 - 1)
    }

    pub fn position_of(&self, id: &EventId) -> Option<u64> {
        self.ids.get(id).copied()
    }

    pub fn stream_of(&self, position: u64) -> &StreamId {
        &self.streams[self.slots[position as usize].stream as usize].id
    }

    /// The original result of the append that wrote the event at `position`.
    pub fn append_result(&self, position: u64) -> AppendResult {
        let s = self.slots[position as usize];
        let first = position - s.batch_index as u64;
        let n = s.batch_len as u64;
        let first_version = s.version - s.batch_index as u64;
        AppendResult {
            first_version: StreamVersion(first_version),
            last_version: StreamVersion(first_version + n - 1),
            first_position: GlobalPosition(first),
            last_position: GlobalPosition(first + n - 1),
            committed_at: CommitTime(s.committed_at),
        }
    }

    /// The last event committed at or before `time`; commit times never decrease along the log.
    pub fn position_at(&self, time: u64) -> Option<u64> {
        let n = self.slots.partition_point(|s| s.committed_at <= time);
        n.checked_sub(1).map(|p| p as u64)
    }

    /// The last position a read may include, `None` when it includes nothing.
    pub fn cut(&self, until: Until) -> Option<u64> {
        let head = self.len().checked_sub(1)?;
        match until {
            Until::Latest => Some(head),
            Until::Position(p) => Some(p.0.min(head)),
            Until::Time(t) => self.position_at(t.0),
        }
    }

    /// Adds the next record, after checking that it continues the log. `Err` names what is
    /// wrong, for a `Corrupt` error; the index is unchanged then.
    pub fn apply(&mut self, r: &Record, body: &[u8], stored_hash: &Hash) -> Result<(), String> {
        let position = self.len();
        if r.position != position {
            return Err(format!(
                "record says position {} where position {position} belongs (removed, reordered or republished)",
                r.position
            ));
        }
        let expected_hash = r.chain_hash(&self.tail_hash, body);
        if &expected_hash != stored_hash {
            return Err(
                "hash chain broken: the record or one before it was changed, removed or reordered"
                    .into(),
            );
        }
        let next_version = self.stream_version(&r.stream).map_or(0, |v| v + 1);
        if r.version != next_version {
            return Err(format!(
                "stream `{}`: version {} where {next_version} comes next",
                r.stream, r.version
            ));
        }
        if let Some(prev) = self.slots.last() {
            if r.committed_at < prev.committed_at {
                return Err("commit time goes backwards".into());
            }
            let prev_open = prev.batch_index + 1 < prev.batch_len;
            if r.batch_index > 0 {
                let same = prev_open
                    && prev.batch_index + 1 == r.batch_index
                    && prev.batch_len == r.batch_len
                    && prev.committed_at == r.committed_at
                    && self.streams[prev.stream as usize].id == r.stream;
                if !same {
                    return Err(format!(
                        "event {}/{} of an append does not follow the rest of its append",
                        r.batch_index, r.batch_len
                    ));
                }
            } else if prev_open {
                return Err("the append before this one is incomplete".into());
            }
        } else if r.batch_index > 0 {
            return Err("the log starts inside an append".into());
        }
        if let Some(&p) = self.ids.get(&r.id) {
            return Err(format!("event id {} already stored at position {p}", r.id));
        }
        let stream = match self.by_name.get(&r.stream) {
            Some(&i) => i,
            None => {
                let i = self.streams.len() as u32;
                self.streams.push(StreamEntry {
                    id: r.stream.clone(),
                    positions: Vec::new(),
                });
                self.by_name.insert(r.stream.clone(), i);
                i
            }
        };
        self.streams[stream as usize].positions.push(position);
        self.ids.insert(r.id, position);
        self.slots.push(Slot {
            stream,
            version: r.version,
            batch_index: r.batch_index,
            batch_len: r.batch_len,
            committed_at: r.committed_at,
            digest: digest(body),
        });
        self.tail_hash = expected_hash;
        Ok(())
    }

    /// Takes back `records`, the last ones applied (a round that was not stored), restoring the
    /// tail hash as it was before them.
    pub fn rollback(&mut self, records: &[Record], tail_hash: Hash) {
        for r in records.iter().rev() {
            let slot = self.slots.pop().expect("rolled-back record was applied");
            let stream = slot.stream as usize;
            self.streams[stream].positions.pop();
            if self.streams[stream].positions.is_empty() {
                let gone = self.streams.pop().expect("new stream is the last");
                debug_assert_eq!(gone.id, r.stream);
                self.by_name.remove(&gone.id);
            }
            self.ids.remove(&r.id);
        }
        self.tail_hash = tail_hash;
    }

    /// `Some(reason)` when the log ends inside an append (its other events never came).
    pub fn open_tail(&self) -> Option<String> {
        let s = self.slots.last()?;
        (s.batch_index + 1 < s.batch_len).then(|| {
            format!(
                "the log ends after event {} of an append of {}",
                s.batch_index + 1,
                s.batch_len
            )
        })
    }
}
