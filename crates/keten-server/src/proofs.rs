//! The server's Merkle tree over the log, and the checkpoints it signs.
//!
//! The tree follows the log lazily: every proof call and every checkpoint first appends what
//! the log has beyond the tree (one `read_all` from the tree's size), so an answer never lags
//! behind an append that was acknowledged before the call. The tree is built once at start.
//!
//! Architecture invariant: the tree is built from the events as the store returns them, never
//! from what the server was asked to append, so a proof is about what is stored.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use keten_log::{CommitTime, Direction, EventId, EventStore, GlobalPosition, ReadFrom, Until};
use keten_proof::{Hash, SignedCheckpoint, SigningKey, TreeBuilder};
use tokio::sync::Mutex;

use crate::config::ProofConfig;
use crate::error::{Error, Result};

const READ_BATCH: usize = 4096;

/// What `ProofConfig` becomes once its keys are read and checked.
pub struct Signer {
    key: SigningKey,
    origin: String,
    pub interval: Duration,
}

impl Signer {
    /// Reads the keys; refuses a public key that is not the signing key's.
    pub fn load(config: &ProofConfig) -> Result<Self> {
        let read = |p: &Path| -> Result<String> {
            std::fs::read_to_string(p).map_err(|source| Error::Io {
                what: format!("checkpoint key {}", p.display()),
                source,
            })
        };
        let key = keten_proof::signing_key_from_pem(&read(&config.signing_key)?)
            .map_err(|e| Error::Config(format!("{}: {e}", config.signing_key.display())))?;
        let public = keten_proof::parse_verifying_key(&read(&config.public_key)?)
            .map_err(|e| Error::Config(format!("{}: {e}", config.public_key.display())))?;
        if public != key.verifying_key() {
            return Err(Error::Config(format!(
                "the public key {} is not the signing key {}'s",
                config.public_key.display(),
                config.signing_key.display()
            )));
        }
        keten_proof::check_origin(&config.origin).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self {
            key,
            origin: config.origin.clone(),
            interval: Duration::from_secs(config.checkpoint_interval_secs.max(1)),
        })
    }
}

struct State {
    tree: TreeBuilder,
    /// Event id to global position, for `ProveInclusion` by id.
    ids: HashMap<EventId, u64>,
    /// Every checkpoint signed since start, by tree size.
    checkpoints: Vec<SignedCheckpoint>,
}

/// The tree, the signer and the checkpoints; shared by the audit service and the timer.
pub struct Proofs {
    store: Arc<dyn EventStore>,
    signer: Signer,
    state: Mutex<State>,
}

impl Proofs {
    /// Reads the whole log into a tree and signs a first checkpoint.
    pub async fn start(store: Arc<dyn EventStore>, signer: Signer) -> Result<Arc<Self>> {
        let proofs = Arc::new(Self {
            store,
            signer,
            state: Mutex::new(State {
                tree: TreeBuilder::new(),
                ids: HashMap::new(),
                checkpoints: Vec::new(),
            }),
        });
        proofs.checkpoint(true).await?;
        Ok(proofs)
    }

    pub fn interval(&self) -> Duration {
        self.signer.interval
    }

    async fn follow(&self, state: &mut State) -> Result<()> {
        if let Some(head) = self.store.head().await? {
            state
                .tree
                .reserve((head.0 + 1).saturating_sub(state.tree.size()) as usize);
        }
        loop {
            let batch = self
                .store
                .read_all(
                    ReadFrom::At(GlobalPosition(state.tree.size())),
                    Direction::Forward,
                    READ_BATCH,
                    Until::Latest,
                )
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            for event in &batch {
                state.tree.append(event).map_err(proof_error)?;
                state.ids.insert(event.id, event.position.0);
            }
        }
    }

    fn sign(&self, state: &mut State) -> Result<SignedCheckpoint> {
        let signed = state
            .tree
            .checkpoint(self.signer.origin.clone(), CommitTime::now())
            .sign(&self.signer.key)
            .map_err(proof_error)?;
        state.checkpoints.push(signed.clone());
        Ok(signed)
    }

    /// The latest checkpoint; a new one when `fresh`, or when the log has grown and `fresh` is
    /// not asked but no checkpoint exists yet.
    pub async fn checkpoint(&self, fresh: bool) -> Result<SignedCheckpoint> {
        let mut state = self.state.lock().await;
        if fresh || state.checkpoints.is_empty() {
            self.follow(&mut state).await?;
            return self.sign(&mut state);
        }
        Ok(state.checkpoints.last().cloned().expect("not empty"))
    }

    /// Signs a checkpoint if the log has grown since the last one (the timer's tick).
    pub async fn tick(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        self.follow(&mut state).await?;
        let last = state.checkpoints.last().map(|c| c.checkpoint.tree_size);
        if last != Some(state.tree.size()) {
            self.sign(&mut state)?;
        }
        Ok(())
    }

    /// Resolves `tree_size` 0 to the latest checkpoint, and finds a signed checkpoint of that size.
    async fn under(
        &self,
        state: &mut State,
        tree_size: u64,
    ) -> Result<(u64, Option<SignedCheckpoint>)> {
        self.follow(state).await?;
        if tree_size == 0 {
            let latest = match state.checkpoints.last() {
                Some(c) => c.clone(),
                None => self.sign(state)?,
            };
            return Ok((latest.checkpoint.tree_size, Some(latest)));
        }
        if tree_size > state.tree.size() {
            return Err(Error::InvalidArgument {
                field: "tree_size".into(),
                description: format!(
                    "{tree_size} is beyond the log's {} events",
                    state.tree.size()
                ),
            });
        }
        let signed = state
            .checkpoints
            .iter()
            .rev()
            .find(|c| c.checkpoint.tree_size == tree_size)
            .cloned();
        Ok((tree_size, signed))
    }

    /// The position of an event id, if the log has it.
    pub async fn position_of(&self, id: EventId) -> Result<Option<u64>> {
        let mut state = self.state.lock().await;
        self.follow(&mut state).await?;
        Ok(state.ids.get(&id).copied())
    }

    /// The audit path of leaf `position` under `tree_size` (0: the latest checkpoint).
    pub async fn inclusion(
        &self,
        position: u64,
        tree_size: u64,
    ) -> Result<(u64, Vec<Hash>, Option<SignedCheckpoint>)> {
        let mut state = self.state.lock().await;
        let (size, signed) = self.under(&mut state, tree_size).await?;
        let path = state
            .tree
            .inclusion_proof(position, size)
            .map_err(proof_error)?;
        Ok((size, path, signed))
    }

    /// The consistency proof from `old_size` to `new_size` (0: the latest checkpoint).
    pub async fn consistency(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<(u64, Vec<Hash>, Option<SignedCheckpoint>)> {
        let mut state = self.state.lock().await;
        let (size, signed) = self.under(&mut state, new_size).await?;
        let proof = state
            .tree
            .consistency_proof(old_size, size)
            .map_err(proof_error)?;
        Ok((size, proof, signed))
    }
}

/// Signs checkpoints at the configured interval while the server runs.
pub async fn checkpoint_timer(proofs: Arc<Proofs>) {
    let mut tick = tokio::time::interval(proofs.interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = proofs.tick().await {
            tracing::error!(error = %e, "cannot sign a checkpoint");
        }
    }
}

fn proof_error(e: keten_proof::Error) -> Error {
    match e {
        keten_proof::Error::Log(e) => Error::Log(e),
        keten_proof::Error::OutOfRange { what, .. } => Error::InvalidArgument {
            field: what.replace(' ', "_"),
            description: e.to_string(),
        },
        e => Error::Internal(e.to_string()),
    }
}
