//! The Merkle tree of RFC 6962 §2.1 over the global log, built incrementally.
//!
//! Leaf `i` is the event at global position `i`. Proofs are computed from cached nodes, never by
//! rehashing the log: a complete subtree (a power of two leaves, aligned to its size) is looked
//! up; the only incomplete subtrees an RFC proof can need are the suffixes along the right edge
//! of the tree of the requested size, and all of those come from folding that size's "peaks"
//! (one complete subtree per set bit of the size) once per request.
//!
//! Memory: 32 bytes per leaf for the leaf hashes, which cannot be recomputed without the events,
//! plus the complete nodes at levels 4 and up (32/16 + 32/32 + ... < 4 bytes per leaf). Levels 1
//! to 3 are not kept: a node there costs at most 7 hashes to rebuild, and keeping them would add
//! 28 bytes per leaf. About 36 bytes per event, 36 MB per million (plus `Vec` growth slack,
//! up to twice that transiently; see [`TreeBuilder::memory_bytes`]).

use keten_log::{
    CommitTime, Direction, EventStore, GlobalPosition, ReadFrom, RecordedEvent, Until,
};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::hash::{Hash, empty_root, hash_children};
use crate::leaf::leaf_hash;

/// The lowest level whose complete nodes are kept (level 0 being the leaves).
const CACHED_FROM: u32 = 4;

/// How many events [`TreeBuilder::catch_up`] reads at a time.
const READ_BATCH: usize = 4096;

/// An append-only Merkle tree that answers roots and proofs for its current size or any
/// earlier one. Not synchronised: a server keeps it behind a lock and appends in global order.
#[derive(Clone, Debug, Default)]
pub struct TreeBuilder {
    leaves: Vec<Hash>,
    /// `upper[j]` holds the complete nodes of level `CACHED_FROM + j`, left to right.
    upper: Vec<Vec<Hash>>,
}

/// The hashes of the right-edge suffixes `[start, size)` of the tree of one size, from the
/// shortest suffix to the whole tree.
struct RightEdge {
    size: u64,
    starts: Vec<u64>,
    hashes: Vec<Hash>,
}

impl RightEdge {
    fn get(&self, start: u64, end: u64) -> Option<Hash> {
        if end != self.size {
            return None;
        }
        self.starts
            .iter()
            .position(|&s| s == start)
            .map(|i| self.hashes[i])
    }
}

/// The largest power of two strictly below `n` (n > 1): the RFC's split point.
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

impl TreeBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the whole log in global order into a new tree; what a server does on start.
    pub async fn from_store(store: &dyn EventStore) -> Result<Self> {
        let mut tree = Self::new();
        tree.catch_up(store).await?;
        Ok(tree)
    }

    /// Appends every event the log has beyond this tree's size; returns how many.
    pub async fn catch_up(&mut self, store: &dyn EventStore) -> Result<u64> {
        let before = self.size();
        // Sized once up front: growing a `Vec` of a million hashes by doubling would hold the old
        // and the new buffer at once.
        if let Some(head) = store.head().await? {
            self.reserve((head.0 + 1).saturating_sub(before) as usize);
        }
        loop {
            let batch = store
                .read_all(
                    ReadFrom::At(GlobalPosition(self.size())),
                    Direction::Forward,
                    READ_BATCH,
                    Until::Latest,
                )
                .await?;
            if batch.is_empty() {
                break;
            }
            for event in &batch {
                self.append(event)?;
            }
        }
        Ok(self.size() - before)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Appends an event; it must be the next one in global order.
    pub fn append(&mut self, event: &RecordedEvent) -> Result<()> {
        if event.position.0 != self.size() {
            return Err(Error::OutOfOrder {
                expected: self.size(),
                got: event.position.0,
            });
        }
        self.push_leaf_hash(leaf_hash(event));
        Ok(())
    }

    /// Appends a leaf hash computed elsewhere (for instance by a verifier that rebuilds a tree).
    pub fn push_leaf_hash(&mut self, hash: Hash) {
        self.leaves.push(hash);
        let n = self.leaves.len() as u64;
        let block = 1u64 << CACHED_FROM;
        if !n.is_multiple_of(block) {
            return;
        }
        // A block of 16 leaves is complete: its node enters the cache, and carries upwards
        // like a binary counter for as long as it completes a pair.
        let mut node = self.low_node(CACHED_FROM, n / block - 1);
        let mut level = 0;
        loop {
            if self.upper.len() == level {
                self.upper.push(Vec::new());
            }
            let nodes = &mut self.upper[level];
            nodes.push(node);
            if nodes.len() % 2 == 1 {
                break;
            }
            node = hash_children(&nodes[nodes.len() - 2], &nodes[nodes.len() - 1]);
            level += 1;
        }
    }

    /// Reserves room for `additional` more leaves, so that a known log size costs no regrowth.
    pub fn reserve(&mut self, additional: usize) {
        self.leaves.reserve(additional);
    }

    /// Bytes held on the heap, capacity included.
    pub fn memory_bytes(&self) -> usize {
        let hashes: usize =
            self.leaves.capacity() + self.upper.iter().map(Vec::capacity).sum::<usize>();
        hashes * 32 + self.upper.capacity() * std::mem::size_of::<Vec<Hash>>()
    }

    /// The leaf hash at `index`.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        self.leaves.get(usize::try_from(index).ok()?).copied()
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.mth(0, self.size(), &self.right_edge(self.size()))
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size("tree size", size)?;
        Ok(self.mth(0, size, &self.right_edge(size)))
    }

    /// An unsigned checkpoint of the whole tree as it stands, made at `time`.
    pub fn checkpoint(&self, origin: impl Into<String>, time: CommitTime) -> Checkpoint {
        Checkpoint::new(origin, self.size(), self.root(), time)
    }

    /// The audit path of RFC 6962 §2.1.1 for leaf `index` in the tree of `size` leaves, from the
    /// leaf's sibling up to the root's child.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size("tree size", size)?;
        if index >= size {
            return Err(Error::OutOfRange {
                what: "leaf index",
                value: index,
                tree_size: size,
            });
        }
        let edge = self.right_edge(size);
        let mut proof = Vec::with_capacity(64);
        self.path(index, 0, size, &edge, &mut proof);
        Ok(proof)
    }

    /// The consistency proof of RFC 6962 §2.1.2 from the tree of `old_size` leaves to the tree of
    /// `new_size` leaves. Empty when `old_size` is 0 or equal to `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>> {
        self.check_size("new tree size", new_size)?;
        if old_size > new_size {
            return Err(Error::OutOfRange {
                what: "old tree size",
                value: old_size,
                tree_size: new_size,
            });
        }
        let mut proof = Vec::with_capacity(64);
        if old_size == 0 || old_size == new_size {
            return Ok(proof);
        }
        let edge = self.right_edge(new_size);
        self.subproof(old_size, 0, new_size, true, &edge, &mut proof);
        Ok(proof)
    }

    fn check_size(&self, what: &'static str, size: u64) -> Result<()> {
        if size > self.size() {
            return Err(Error::OutOfRange {
                what,
                value: size,
                tree_size: self.size(),
            });
        }
        Ok(())
    }

    /// PATH(m, D[start:end]), appended to `out` deepest first.
    fn path(&self, m: u64, start: u64, end: u64, edge: &RightEdge, out: &mut Vec<Hash>) {
        let n = end - start;
        if n == 1 {
            return;
        }
        let k = split(n);
        if m < start + k {
            self.path(m, start, start + k, edge, out);
            out.push(self.mth(start + k, end, edge));
        } else {
            self.path(m, start + k, end, edge, out);
            out.push(self.mth(start, start + k, edge));
        }
    }

    /// SUBPROOF(m, D[start:end], b), with `m` the absolute old size.
    fn subproof(
        &self,
        m: u64,
        start: u64,
        end: u64,
        whole_old_tree: bool,
        edge: &RightEdge,
        out: &mut Vec<Hash>,
    ) {
        if m == end {
            if !whole_old_tree {
                out.push(self.mth(start, end, edge));
            }
            return;
        }
        let k = split(end - start);
        if m - start <= k {
            self.subproof(m, start, start + k, whole_old_tree, edge, out);
            out.push(self.mth(start + k, end, edge));
        } else {
            self.subproof(m, start + k, end, false, edge, out);
            out.push(self.mth(start, start + k, edge));
        }
    }

    /// MTH(D[start:end]). Every subtree an RFC proof asks for is complete or on `edge`; the
    /// recursion at the end is a fallback that keeps this correct for any range.
    fn mth(&self, start: u64, end: u64, edge: &RightEdge) -> Hash {
        let n = end - start;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros();
            return self.node(level, start >> level);
        }
        if let Some(hash) = edge.get(start, end) {
            return hash;
        }
        let k = split(n);
        hash_children(
            &self.mth(start, start + k, edge),
            &self.mth(start + k, end, edge),
        )
    }

    /// The complete node at `level` covering leaves `[index << level, (index + 1) << level)`.
    fn node(&self, level: u32, index: u64) -> Hash {
        if level >= CACHED_FROM {
            self.upper[(level - CACHED_FROM) as usize][index as usize]
        } else {
            self.low_node(level, index)
        }
    }

    /// A node at or below `CACHED_FROM`, rebuilt from the leaves.
    fn low_node(&self, level: u32, index: u64) -> Hash {
        if level == 0 {
            return self.leaves[index as usize];
        }
        hash_children(
            &self.low_node(level - 1, 2 * index),
            &self.low_node(level - 1, 2 * index + 1),
        )
    }

    /// Folds the peaks of the tree of `size` leaves from the right.
    fn right_edge(&self, size: u64) -> RightEdge {
        let mut peaks = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0;
        for level in (0..64).rev() {
            if size & (1 << level) != 0 {
                peaks.push((start, self.node(level, start >> level)));
                start += 1 << level;
            }
        }
        let mut starts = Vec::with_capacity(peaks.len());
        let mut hashes: Vec<Hash> = Vec::with_capacity(peaks.len());
        for &(start, peak) in peaks.iter().rev() {
            let hash = match hashes.last() {
                None => peak,
                Some(right) => hash_children(&peak, right),
            };
            starts.push(start);
            hashes.push(hash);
        }
        RightEdge {
            size,
            starts,
            hashes,
        }
    }
}
