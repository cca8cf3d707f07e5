//! The projection service: one task folds the whole log, through a catch-up subscription, into
//! one [`FamilyView`] per family held in memory; readers take `Arc`s of the views.
//!
//! Architecture invariant: only the fold task writes the views. It decodes a batch of events
//! outside the lock, then folds the batch and publishes the new position under the write lock,
//! so that a view read is never ahead of the position read after it (once `wait_for(p)`
//! returns, every family shows the events up to `p`), and one listing sees every family at the
//! same cut of the log.

use std::ops::{Bound, ControlFlow};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use chrono::NaiveDate;
use futures::StreamExt;
use keten_domain::{FamilyId, FamilyState, PartnerId, PersonId, Rung, WarningKind};
use keten_log::{EventStore, GlobalPosition, RecordedEvent, StreamVersion, SubscriptionFilter};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::fold::{self, Anchor, FamilyView, Slot, Views};
use crate::query::Decoded;
use crate::{query, snapshot, stored};

/// Events folded under the lock at once at most, when the subscription has that many ready.
const MAX_BATCH: usize = 1024;

#[derive(Debug, Clone)]
pub struct ProjectionOptions {
    /// Where the snapshot lives; `None` keeps no snapshot (every start folds the whole log).
    pub snapshot_dir: Option<PathBuf>,
    /// Write a snapshot after this many events folded since the last one; 0 for never (on
    /// demand and on shutdown only).
    pub snapshot_every: u64,
    /// Families held open (decoded) at most; the others are held packed (see
    /// [`crate::FamilyView`]'s snapshot line, deflated) and unpacked when read or folded into.
    pub max_open_families: usize,
}

impl Default for ProjectionOptions {
    fn default() -> Self {
        Self {
            snapshot_dir: None,
            snapshot_every: 100_000,
            max_open_families: fold::MAX_OPEN,
        }
    }
}

/// How the projection started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartedFrom {
    /// From the start of the log; `discarded` says why a snapshot found was not used.
    Scratch { discarded: Option<String> },
    /// From a snapshot, resuming after its position.
    Snapshot { position: GlobalPosition },
}

/// Which families [`Projections::list`] returns; every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// The family's plan on `today` carries a warning of this kind.
    pub warning: Option<WarningKind>,
    /// The family stands on this rung of the escalation ladder.
    pub rung: Option<Rung>,
    /// This partner takes part in the family now.
    pub partner: Option<PartnerId>,
    /// This person is the family's manager.
    pub family_manager: Option<PersonId>,
}

impl ListFilter {
    fn matches_state(&self, s: &FamilyState) -> bool {
        self.rung.is_none_or(|r| s.rung == r)
            && self
                .partner
                .as_ref()
                .is_none_or(|p| s.active_partner(p).is_some())
            && self
                .family_manager
                .as_ref()
                .is_none_or(|m| s.family_manager.as_ref().is_some_and(|f| &f.manager == m))
    }
}

/// A page of a listing, in family id order. The page token is the last family id of the
/// previous page: the next page starts strictly after it, so families registered meanwhile are
/// neither skipped nor repeated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<FamilyId>,
    /// At most this many families (at least 1 is returned per page when there are any).
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The token of the next page; `None` on the last page.
    pub next: Option<FamilyId>,
    /// The position the listing reflects.
    pub position: Option<GlobalPosition>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Progress {
    position: Option<GlobalPosition>,
    failed: bool,
}

/// What the fold task and the handles share. The task does not hold the command sender, so
/// dropping every handle stops it.
struct Inner {
    views: RwLock<Views>,
    progress: watch::Sender<Progress>,
    failure: OnceLock<Arc<Error>>,
    started_from: StartedFrom,
}

impl Inner {
    fn fail(&self, error: Error) {
        tracing::error!(%error, "the projection stopped");
        let _ = self.failure.set(Arc::new(error));
        self.progress.send_modify(|p| p.failed = true);
    }
}

enum Command {
    Snapshot(oneshot::Sender<Result<()>>),
    Shutdown(oneshot::Sender<Result<()>>),
}

/// The running projection; cheap to clone.
#[derive(Clone)]
pub struct Projections {
    inner: Arc<Inner>,
    store: Arc<dyn EventStore>,
    commands: mpsc::Sender<Command>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Projections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projections")
            .field("position", &self.position())
            .field("started_from", &self.inner.started_from)
            .finish()
    }
}

impl Projections {
    /// Starts folding: from the snapshot in `options.snapshot_dir` if there is one that matches
    /// the log (else from scratch, logging why), then live. Returns at once; the fold catches
    /// up in the background (use [`Projections::wait_for`] with the log's head to wait for it).
    pub async fn start(store: Arc<dyn EventStore>, options: ProjectionOptions) -> Result<Self> {
        let (views, after, started_from) = match &options.snapshot_dir {
            None => (
                Views::with_max_open(options.max_open_families),
                None,
                StartedFrom::Scratch { discarded: None },
            ),
            Some(dir) => match snapshot::load(dir, store.as_ref()).await? {
                snapshot::Loaded::None => (
                    Views::with_max_open(options.max_open_families),
                    None,
                    StartedFrom::Scratch { discarded: None },
                ),
                snapshot::Loaded::Discarded(reason) => {
                    tracing::warn!(
                        snapshot = %snapshot::path_in(dir).display(),
                        %reason,
                        "the snapshot does not match the log; rebuilding the projection from scratch"
                    );
                    (
                        Views::with_max_open(options.max_open_families),
                        None,
                        StartedFrom::Scratch {
                            discarded: Some(reason),
                        },
                    )
                }
                snapshot::Loaded::Usable(anchor, mut views) => {
                    views.set_max_open(options.max_open_families);
                    tracing::info!(position = %anchor.position, families = views.len(),
                        "resuming the projection from its snapshot");
                    (
                        views,
                        Some(anchor),
                        StartedFrom::Snapshot {
                            position: anchor.position,
                        },
                    )
                }
            },
        };
        let (progress, _) = watch::channel(Progress {
            position: after.map(|a| a.position),
            failed: false,
        });
        let inner = Arc::new(Inner {
            views: RwLock::new(views),
            progress,
            failure: OnceLock::new(),
            started_from,
        });
        let (commands, rx) = mpsc::channel(8);
        let fold = FoldTask {
            inner: inner.clone(),
            options,
            anchor: after,
            since_snapshot: 0,
            background: None,
            pending: Vec::new(),
        };
        let task = tokio::spawn(fold.run(store.clone(), rx));
        Ok(Self {
            inner,
            store,
            commands,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    /// The position of the last event folded; `None` before the first.
    pub fn position(&self) -> Option<GlobalPosition> {
        self.inner.progress.borrow().position
    }

    /// How many events the log holds beyond what is folded (for the projection-lag metric).
    pub async fn lag(&self) -> Result<u64> {
        let head = self.store.head().await?;
        Ok(match (head, self.position()) {
            (None, _) => 0,
            (Some(h), None) => h.0 + 1,
            (Some(h), Some(p)) => h.0.saturating_sub(p.0),
        })
    }

    /// How the projection started (from a snapshot, or from scratch and why).
    pub fn started_from(&self) -> &StartedFrom {
        &self.inner.started_from
    }

    /// `Err` with the first error once the projection has stopped (an event that does not
    /// decode or fold, the log failing or closing); it folds nothing after that.
    pub fn health(&self) -> std::result::Result<(), Arc<Error>> {
        match self.inner.failure.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Waits until the projection has folded `position` (read-your-writes after an append), for
    /// at most `timeout`: [`Error::NotYet`] then, or [`Error::Stopped`] if it stopped.
    pub async fn wait_for(&self, position: GlobalPosition, timeout: Duration) -> Result<()> {
        let reached = |p: &Progress| p.position.is_some_and(|at| at >= position);
        let mut rx = self.inner.progress.subscribe();
        // What `wait_for` returns holds the watch's read lock: it must be dropped before the
        // lock is taken again below. A second read while the fold waits to publish a position
        // (it holds the views' lock meanwhile) deadlocks both: seen at 4 million events.
        drop(tokio::time::timeout(timeout, rx.wait_for(|p| reached(p) || p.failed)).await);
        let now = *self.inner.progress.borrow();
        if reached(&now) {
            return Ok(());
        }
        match self.inner.failure.get() {
            Some(e) => Err(Error::Stopped(e.clone())),
            None => Err(Error::NotYet {
                wanted: position,
                reached: now.position,
            }),
        }
    }

    /// The family's view, `None` if it has no events (as far as folded).
    pub fn family(&self, id: &FamilyId) -> Option<Arc<FamilyView>> {
        let slot = self
            .inner
            .views
            .read()
            .expect("views lock")
            .get(id.as_str())
            .cloned();
        // Unpacked outside the lock.
        slot.map(|s| s.view())
    }

    /// The erased families, in family id order.
    pub fn erased_families(&self) -> Vec<Arc<FamilyView>> {
        let erased: Vec<Slot> = self
            .inner
            .views
            .read()
            .expect("views lock")
            .slots()
            .filter(|s| s.is_erased())
            .cloned()
            .collect();
        erased.iter().map(Slot::view).collect()
    }

    /// Every family the projection holds, in id order.
    pub fn family_ids(&self) -> Vec<FamilyId> {
        let views = self.inner.views.read().expect("views lock");
        views
            .ids()
            .map(|id| FamilyId::new(id).expect("a view's key is a family id"))
            .collect()
    }

    /// How many families the projection holds.
    pub fn family_count(&self) -> usize {
        self.inner.views.read().expect("views lock").len()
    }

    /// The families matching `filter`, in family id order, one page at a time.
    /// The warning filter projects each candidate's plan on `today`, outside the lock.
    pub fn list(
        &self,
        filter: &ListFilter,
        today: NaiveDate,
        page: PageRequest,
    ) -> Page<Arc<FamilyView>> {
        self.list_where(filter, today, page, |_| true)
    }

    /// [`Projections::list`] of the families `keep` accepts: the caller's own rules (what a
    /// caller may see), applied before paging so that every page is full.
    pub fn list_where(
        &self,
        filter: &ListFilter,
        today: NaiveDate,
        page: PageRequest,
        mut keep: impl FnMut(&FamilyView) -> bool,
    ) -> Page<Arc<FamilyView>> {
        let size = page.size.max(1);
        let lower = match &page.after {
            Some(after) => Bound::Excluded(after.as_str()),
            None => Bound::Unbounded,
        };
        let (candidates, position) = {
            let views = self.inner.views.read().expect("views lock");
            // Under the lock, so that it is the position of these views.
            let position = self.position();
            // Packed families are unpacked outside the lock, one at a time as the page fills.
            let candidates: Vec<Slot> = views.range_after(lower).cloned().collect();
            (candidates, position)
        };
        let mut items = Vec::new();
        let mut more = false;
        for slot in candidates {
            let view = slot.view();
            if !filter.matches_state(&view.state) || !keep(&view) {
                continue;
            }
            if let Some(kind) = filter.warning
                && !view.plan(today).warnings.iter().any(|w| w.kind == kind)
            {
                continue;
            }
            if items.len() == size {
                more = true;
                break;
            }
            items.push(view);
        }
        let next = if more {
            items.last().map(|v| v.family.clone())
        } else {
            None
        };
        Page {
            items,
            next,
            position,
        }
    }

    /// The family's state and version now, for validation before an append: the in-memory
    /// view when it is at the stream's current version; when it is behind, the view with the
    /// events it misses read from the log and folded; else the whole stream read and folded.
    ///
    /// Safe against a concurrent append: the caller appends expecting the version returned,
    /// so a state that became stale meanwhile fails the append instead of passing it.
    pub async fn load_family(
        &self,
        family: &FamilyId,
    ) -> Result<(FamilyState, Option<StreamVersion>)> {
        let current = self
            .store
            .stream_version(&stored::stream_id(family))
            .await?;
        match (self.family(family), current) {
            (Some(view), Some(v)) if view.version == v => Ok((view.state.clone(), Some(v))),
            // Behind (typically by the append just acknowledged): fold only what is missing.
            (Some(view), Some(v)) if view.version < v => {
                let view = query::fold_rest(self.store.as_ref(), (*view).clone()).await?;
                Ok((view.state, Some(view.version)))
            }
            (None, None) => Ok((FamilyState::default(), None)),
            _ => query::load_family(self.store.as_ref(), family).await,
        }
    }

    /// Writes a snapshot of what is folded now, and returns once it is durable.
    pub async fn snapshot_now(&self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.send(Command::Snapshot(reply)).await?;
        done.await.map_err(|_| self.stopped())?
    }

    /// Stops the fold and writes a final snapshot (if a snapshot directory is configured and
    /// the projection is healthy). Other handles keep reading the views as they stand.
    pub async fn shutdown(self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        let sent = self.send(Command::Shutdown(reply)).await;
        let result = match sent {
            Ok(()) => done.await.unwrap_or(Ok(())),
            Err(_) => Ok(()),
        };
        let task = self.task.lock().expect("task lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
        result
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.commands
            .send(command)
            .await
            .map_err(|_| self.stopped())
    }

    fn stopped(&self) -> Error {
        match self.inner.failure.get() {
            Some(e) => Error::Stopped(e.clone()),
            None => Error::Stopped(Arc::new(Error::Log(keten_log::Error::Closed))),
        }
    }
}

struct FoldTask {
    inner: Arc<Inner>,
    options: ProjectionOptions,
    anchor: Option<Anchor>,
    since_snapshot: u64,
    /// A periodic snapshot being written while the fold goes on.
    background: Option<JoinHandle<Result<()>>>,
    /// Snapshots asked for while catching up, not yet answered.
    pending: Vec<oneshot::Sender<Result<()>>>,
}

impl FoldTask {
    async fn run(mut self, store: Arc<dyn EventStore>, mut commands: mpsc::Receiver<Command>) {
        // Catch up by reading (faster than the subscription: read, decode and fold overlap),
        // then subscribe after the last event folded. A shutdown breaks the catch-up off (a long
        // log must not hold up a SIGTERM); a snapshot asked for meanwhile is written once caught
        // up. No periodic snapshot while catching up: the views it holds would make the fold
        // copy every family it touches; one snapshot once caught up records the same progress.
        let mut asked = Vec::new();
        let mut shutdown = None;
        let caught_up = query::fold_log(store.as_ref(), self.anchor, |decoded, _, _| {
            self.fold_decoded(decoded)?;
            while let Ok(command) = commands.try_recv() {
                match command {
                    Command::Shutdown(reply) => {
                        shutdown = Some(reply);
                        return Ok(ControlFlow::Break(()));
                    }
                    Command::Snapshot(reply) => asked.push(reply),
                }
            }
            Ok(ControlFlow::Continue(()))
        })
        .await;
        if let Err(e) = caught_up {
            self.pending = asked;
            return self.stop(e, commands).await;
        }
        if !asked.is_empty() || shutdown.is_some() {
            let result = self.snapshot_and_wait().await.map_err(|e| e.to_string());
            let path = self.options.snapshot_dir.as_deref().map(snapshot::path_in);
            let answer = || {
                result.clone().map_err(|reason| Error::Snapshot {
                    path: path.clone().unwrap_or_default(),
                    reason,
                })
            };
            for reply in asked {
                let _ = reply.send(answer());
            }
            if let Some(reply) = shutdown {
                let _ = reply.send(answer());
                return;
            }
        }
        self.maybe_snapshot();
        let after = self.anchor.map(|a| a.position);
        let mut events = match store.subscribe_all(after, SubscriptionFilter::all()).await {
            Ok(events) => events.ready_chunks(MAX_BATCH),
            Err(e) => return self.stop(e.into(), commands).await,
        };
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(Command::Snapshot(reply)) => {
                        let _ = reply.send(self.snapshot_and_wait().await);
                    }
                    Some(Command::Shutdown(reply)) => {
                        let _ = reply.send(self.snapshot_and_wait().await);
                        return;
                    }
                    None => {
                        self.finish_background().await;
                        return;
                    }
                },
                batch = events.next() => {
                    let result = match batch {
                        Some(batch) => self.fold_live(batch),
                        None => Err(Error::Log(keten_log::Error::Closed)),
                    };
                    if let Err(e) = result {
                        return self.stop(e, commands).await;
                    }
                    self.maybe_snapshot();
                }
            }
        }
    }

    /// Records the failure and stays to answer commands with it, folding nothing more.
    async fn stop(mut self, error: Error, mut commands: mpsc::Receiver<Command>) {
        self.finish_background().await;
        self.inner.fail(error);
        let stopped = || Error::Stopped(self.inner.failure.get().expect("failed").clone());
        for reply in std::mem::take(&mut self.pending) {
            let _ = reply.send(Err(stopped()));
        }
        while let Some(command) = commands.recv().await {
            match command {
                Command::Snapshot(reply) => {
                    let _ = reply.send(Err(stopped()));
                }
                // Shutting down a stopped projection is not an error.
                Command::Shutdown(reply) => {
                    let _ = reply.send(Ok(()));
                    return;
                }
            }
        }
    }

    /// Decodes a batch from the subscription outside the lock, then folds what decoded.
    fn fold_live(&mut self, batch: Vec<keten_log::Result<RecordedEvent>>) -> Result<()> {
        let mut records = Vec::with_capacity(batch.len());
        let mut failure = None;
        for item in batch {
            match item {
                Ok(rec) => records.push(rec),
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            }
        }
        let (decoded, bad) = query::decode_batch(records);
        // A fold error comes before the decode error: it is at an earlier position.
        self.fold_decoded(&decoded)?;
        match bad.or(failure) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Folds decoded events under the lock in one go, then publishes the new position. A
    /// failure to fold stops the batch there, after the last event that folded.
    fn fold_decoded(&mut self, decoded: &Decoded) -> Result<()> {
        if decoded.is_empty() {
            return Ok(());
        }
        let mut views = self.inner.views.write().expect("views lock");
        let mut result = Ok(());
        let mut folded = 0u64;
        for (rec, event) in decoded {
            if let Some(event) = event
                && let Err(e) = fold::apply(&mut views, rec, event)
            {
                result = Err(e);
                break;
            }
            self.anchor = Some(Anchor {
                position: rec.position,
                id: rec.id,
            });
            folded += 1;
        }
        // Published under the lock: a reader holding the read lock sees views and position
        // of the same cut, and whoever sees the position can find its events in the views.
        let position = self.anchor.map(|a| a.position);
        self.inner.progress.send_modify(|p| p.position = position);
        drop(views);
        self.since_snapshot += folded;
        result
    }

    fn cut(&self) -> Option<(Anchor, Vec<Slot>)> {
        let anchor = self.anchor?;
        let views = self.inner.views.read().expect("views lock");
        Some((anchor, views.slots().cloned().collect()))
    }

    fn maybe_snapshot(&mut self) {
        let every = self.options.snapshot_every;
        if every == 0 || self.since_snapshot < every || self.options.snapshot_dir.is_none() {
            return;
        }
        if self.background.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let (Some(dir), Some((anchor, views))) = (self.options.snapshot_dir.clone(), self.cut())
        else {
            return;
        };
        self.since_snapshot = 0;
        // Written beside the fold: the Arcs taken make the fold copy a family it changes
        // meanwhile, which is cheaper than pausing it.
        self.background = Some(tokio::task::spawn_blocking(move || {
            let result = snapshot::write(&dir, anchor, &views);
            if let Err(e) = &result {
                tracing::warn!(error = %e, "writing a periodic snapshot failed");
            }
            result
        }));
    }

    async fn finish_background(&mut self) {
        if let Some(task) = self.background.take() {
            let _ = task.await;
        }
    }

    async fn snapshot_and_wait(&mut self) -> Result<()> {
        self.finish_background().await;
        let Some(dir) = self.options.snapshot_dir.clone() else {
            return Ok(());
        };
        let Some((anchor, views)) = self.cut() else {
            return Ok(());
        };
        let path = snapshot::path_in(&dir);
        tokio::task::spawn_blocking(move || snapshot::write(&dir, anchor, &views))
            .await
            .map_err(|e| Error::Snapshot {
                path,
                reason: format!("the writing task failed: {e}"),
            })??;
        self.since_snapshot = 0;
        Ok(())
    }
}
