//! As-of reads of one family that cost the same whatever the family's or the log's size.
//!
//! Folding a family of 10,000 events from its first event on every as-of question takes tens of
//! milliseconds. [`AsOfCache`] keeps, per family asked about, the view after every `every`-th
//! event (a mark); a question folds from the last mark at or before its cut-off, so at most
//! `every - 1` events, read from the family's own stream (never the whole log).
//!
//! A mark is the full view after its event, so it is valid for every cut-off at or after that
//! event: positions and commit times both grow along a stream. Marks are made by the questions
//! themselves as they fold, so a family nobody audits costs nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keten_domain::FamilyId;
use keten_log::{EventStore, StreamVersion, Until};

use crate::error::Result;
use crate::fold::FamilyView;
use crate::query::{fold_one, for_each_event};

/// Marks of the families asked about.
pub struct AsOfCache {
    every: u64,
    max_families: usize,
    families: Mutex<HashMap<FamilyId, Vec<Arc<FamilyView>>>>,
}

impl Default for AsOfCache {
    fn default() -> Self {
        Self::new(256, 4096)
    }
}

impl AsOfCache {
    /// A mark every `every` events, for at most `max_families` families (a family beyond that
    /// evicts an arbitrary one: its marks are made again if it is asked about again).
    pub fn new(every: u64, max_families: usize) -> Self {
        Self {
            every: every.max(1),
            max_families: max_families.max(1),
            families: Mutex::new(HashMap::new()),
        }
    }

    /// The same answer as [`crate::family_as_of`], folded from the nearest mark.
    pub async fn family_as_of(
        &self,
        store: &dyn EventStore,
        family: &FamilyId,
        until: Until,
    ) -> Result<Option<FamilyView>> {
        let base = self.base(family, until);
        let mut view = base.map(|b| (*b).clone());
        let mut new_marks = Vec::new();
        let from = StreamVersion(view.as_ref().map_or(0, |v| v.version.0 + 1));
        for_each_event(store, family, from, until, |rec| {
            fold_one(&mut view, family, rec)?;
            if (rec.version.0 + 1).is_multiple_of(self.every) {
                new_marks.push(Arc::new(view.clone().expect("folded")));
            }
            Ok(())
        })
        .await?;
        if !new_marks.is_empty() {
            self.remember(family, new_marks);
        }
        Ok(view)
    }

    /// Drops the family's marks: after its erasure nothing of it may stay in memory.
    pub fn forget(&self, family: &FamilyId) {
        self.families.lock().expect("not poisoned").remove(family);
    }

    /// How many marks are held, over all families (for tests and the benchmark).
    pub fn marks(&self) -> usize {
        self.families
            .lock()
            .expect("not poisoned")
            .values()
            .map(Vec::len)
            .sum()
    }

    fn base(&self, family: &FamilyId, until: Until) -> Option<Arc<FamilyView>> {
        let families = self.families.lock().expect("not poisoned");
        let marks = families.get(family)?;
        let before = |m: &Arc<FamilyView>| match until {
            Until::Latest => true,
            Until::Position(p) => m.position <= p,
            Until::Time(t) => m.committed_at <= t,
        };
        // Marks are in version order, and "before the cut-off" holds for a prefix of them.
        let n = marks.partition_point(before);
        n.checked_sub(1).map(|i| marks[i].clone())
    }

    fn remember(&self, family: &FamilyId, new_marks: Vec<Arc<FamilyView>>) {
        let mut families = self.families.lock().expect("not poisoned");
        if !families.contains_key(family)
            && families.len() >= self.max_families
            && let Some(evict) = families.keys().next().cloned()
        {
            families.remove(&evict);
        }
        let marks = families.entry(family.clone()).or_default();
        for mark in new_marks {
            // Two questions folding the same stretch at once both make its marks.
            if marks.last().is_none_or(|m| m.version < mark.version) {
                marks.push(mark);
            }
        }
    }
}
