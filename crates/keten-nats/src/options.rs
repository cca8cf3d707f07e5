//! How keten connects, and the stream configuration it requires.

use std::time::Duration;

use async_nats::jetstream::stream::{
    Config, DiscardPolicy, PersistenceMode, RetentionPolicy, StorageType,
};

/// The oldest server keten accepts: 2.12 brought atomic batch publish (one append of several
/// events is one atomic unit) and 2.10 `sync_interval: always` (fsync before the ack). Not 2.12.0
/// itself: its batched direct gets time out under two concurrent writers (the `two_writers`
/// test), while 2.12.8, the last 2.12 release, passes every single-node suite. `cargo xtask test`
/// runs those suites against exactly this version.
pub const MIN_SERVER_VERSION: (u32, u32, u32) = (2, 12, 8);

/// At most this many events in one atomic batch: the server's limit (ADR-50).
pub const MAX_BATCH: usize = 1000;

#[derive(Clone, Debug)]
pub struct NatsLogOptions {
    /// The JetStream stream that holds the log.
    pub stream: String,
    /// Subjects are `<prefix>.e.<escaped stream id>`.
    pub subject_prefix: String,
    /// Replicas the stream must have (3 on a cluster, 1 on a single server).
    pub replicas: usize,
    /// Create the stream when it does not exist (an existing one is only checked, never changed).
    pub create: bool,
    /// How keten knows that the servers fsync before they acknowledge.
    pub fsync: FsyncCheck,
    /// One request to JetStream (a publish, a read).
    pub request_timeout: Duration,
    /// How long an append keeps trying through a leader change or a lost connection before it
    /// fails (unknown outcome: a retry with the same event ids is then safe).
    pub append_timeout: Duration,
}

impl Default for NatsLogOptions {
    fn default() -> Self {
        Self {
            stream: "KETEN".into(),
            subject_prefix: "keten".into(),
            replicas: 1,
            create: true,
            fsync: FsyncCheck::Verify {
                monitor_urls: Vec::new(),
            },
            request_timeout: Duration::from_secs(5),
            append_timeout: Duration::from_secs(30),
        }
    }
}

/// An acknowledged append must be on disk. A client cannot see a server's `sync_interval`, but
/// each server's monitoring endpoint (`/varz`) reports it.
#[derive(Clone, Debug)]
pub enum FsyncCheck {
    /// Every listed server (`http://host:8222`, all nodes of the cluster) must report
    /// `sync_always` and a version of at least [`MIN_SERVER_VERSION`].
    Verify { monitor_urls: Vec<String> },
    /// Start without that check: an acknowledged append is then replicated to a quorum's memory
    /// but perhaps on no disk yet (a server's default flushes every two minutes), and a power
    /// loss on a quorum can lose it. Named so that nobody turns it on by accident.
    AcceptAckBeforeFsync,
}

impl NatsLogOptions {
    pub fn subject_filter(&self) -> String {
        format!("{}.e.>", self.subject_prefix)
    }

    pub fn subject(&self, stream: &keten_log::StreamId) -> String {
        format!(
            "{}.e.{}",
            self.subject_prefix,
            crate::subject::escape(stream.as_str())
        )
    }

    /// The configuration keten creates: everything that could drop, rewrite or expire a stored
    /// event is off, and what keten needs (atomic batches, direct reads) is on.
    pub fn stream_config(&self) -> Config {
        Config {
            name: self.stream.clone(),
            description: Some("keten event log".into()),
            subjects: vec![self.subject_filter()],
            storage: StorageType::File,
            num_replicas: self.replicas,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::New,
            max_messages: -1,
            max_bytes: -1,
            max_messages_per_subject: -1,
            max_age: Duration::ZERO,
            deny_delete: true,
            deny_purge: true,
            allow_rollup: false,
            allow_direct: true,
            allow_atomic_publish: true,
            // Deduplication is keten's own (for the log's whole life); a short window is enough
            // for nothing.
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        }
    }

    /// Every way `c` falls short of [`Self::stream_config`]'s promises; empty when it keeps them.
    pub fn check_stream(&self, c: &Config) -> Vec<String> {
        let mut p = Vec::new();
        let mut need = |ok: bool, what: &str| {
            if !ok {
                p.push(what.to_string());
            }
        };
        need(
            c.storage == StorageType::File,
            "storage must be file (memory storage loses everything on restart)",
        );
        need(
            c.num_replicas >= self.replicas,
            &format!(
                "replicas must be at least {} (it is {})",
                self.replicas, c.num_replicas
            ),
        );
        need(
            c.retention == RetentionPolicy::Limits,
            "retention must be limits (interest and work-queue retention remove consumed events)",
        );
        need(
            c.discard == DiscardPolicy::New,
            "discard must be new (discard old deletes the oldest events when a limit is hit)",
        );
        need(
            c.max_messages <= 0 && c.max_bytes <= 0 && c.max_messages_per_subject <= 0,
            "max_msgs, max_bytes and max_msgs_per_subject must be unlimited",
        );
        need(
            c.max_age.is_zero(),
            "max_age must be unlimited (events never expire)",
        );
        need(
            c.deny_delete,
            "deny_delete must be set (a deleted event breaks the log)",
        );
        need(
            c.deny_purge,
            "deny_purge must be set (a purge removes events)",
        );
        need(
            !c.allow_rollup,
            "rollups must be denied (a rollup removes a subject's earlier events)",
        );
        need(!c.sealed, "the stream is sealed: it takes no appends");
        need(
            c.allow_atomic_publish,
            "allow_atomic must be set (multi-event appends are atomic batches)",
        );
        need(
            c.allow_direct,
            "allow_direct must be set (reads use batched direct get)",
        );
        need(
            c.subjects == [self.subject_filter()],
            &format!(
                "subjects must be exactly [{}] (other subjects would put foreign messages in the log)",
                self.subject_filter()
            ),
        );
        need(
            c.mirror.is_none() && c.sources.as_ref().is_none_or(Vec::is_empty),
            "the stream must not be a mirror or have sources",
        );
        need(
            c.subject_transform.is_none() && c.republish.is_none(),
            "no subject transform or republish",
        );
        need(!c.allow_message_ttl, "per-message TTLs must be off");
        need(
            !c.allow_message_counter && !c.allow_message_schedules,
            "counters and schedules must be off",
        );
        need(!c.no_ack, "publishes must be acknowledged (no_ack is set)");
        need(
            c.persist_mode != Some(PersistenceMode::Async),
            "persist_mode must not be async (it acknowledges before storing)",
        );
        p
    }
}

/// `2.15.1` or `v2.12.0-beta` → (2, 15, 1).
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let v = v.trim().trim_start_matches('v');
    let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_config_passes_its_check() {
        let o = NatsLogOptions::default();
        assert_eq!(o.check_stream(&o.stream_config()), Vec::<String>::new());
        let mut c = o.stream_config();
        c.deny_delete = false;
        c.storage = StorageType::Memory;
        c.discard = DiscardPolicy::Old;
        let p = o.check_stream(&c);
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("v2.12.0-RC.1"), Some((2, 12, 0)));
        assert!(parse_version("2.9.10").unwrap() < MIN_SERVER_VERSION);
    }
}
