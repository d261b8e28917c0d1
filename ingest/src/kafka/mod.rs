//! Kafka ingest: a well-behaved consumer-group member that turns each
//! topic's messages into events with the topic's source adapter and hands
//! them to the [`Stager`](crate::staging::Stager).
//!
//! Exactly once, as queries see it:
//! - a batch's offsets travel with it into the log (the staging journal,
//!   then every sealed file's metadata), atomically with its events;
//! - offsets are stored in the client and committed to the group only once
//!   the batch is durable, in order per partition;
//! - on assignment a partition resumes from the later of the group's
//!   committed offset and the log's own position, so a crash between the
//!   write and the commit re-reads nothing (and whatever would be re-read
//!   is dropped again by the log's idempotency on `event_id`);
//! - on revoke and shutdown, everything read is made durable and committed
//!   synchronously before the partitions are given up.
//!
//! Poison messages (not UTF-8, not JSON, not the source's shape, empty)
//! become dead letters whose origin names their topic, partition and
//! offset; consumption moves on.

mod consumer;
pub mod produce;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use consumer::run;

/// librdkafka settings authtrail sets itself, because its guarantees
/// depend on them; a value given for one of these is refused.
pub const FORCED_OPTIONS: &[(&str, &str)] = &[
    // Offsets are stored only once their batch is durable…
    ("enable.auto.offset.store", "false"),
    // …and committed by authtrail: after each durable batch, and
    // synchronously on revoke and shutdown.
    ("enable.auto.commit", "false"),
    // Needed to tell when a partition is caught up.
    ("enable.partition.eof", "true"),
];

/// Options set unless the configuration says otherwise.
pub const DEFAULT_OPTIONS: &[(&str, &str)] = &[
    // An audit consumer must not skip history when its group is new.
    ("auto.offset.reset", "earliest"),
    // Eager rebalancing: a revoke hands back every partition, after
    // authtrail has made what it read durable and committed it.
    ("partition.assignment.strategy", "range,roundrobin"),
    // Fetch in large pieces: authtrail group-commits anyway.
    ("fetch.wait.max.ms", "100"),
    ("queued.max.messages.kbytes", "262144"),
    // Each partition's high watermark, for the lag, once a second.
    ("statistics.interval.ms", "1000"),
];

/// A topic and the source adapter its messages are parsed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicBinding {
    /// The Kafka topic.
    pub topic: String,
    /// The adapter name (`okta`, `ocsf`…).
    pub source: String,
}

impl FromStr for TopicBinding {
    type Err = String;

    /// `TOPIC=SOURCE`, or `TOPIC` alone when the topic is named after its
    /// source (`okta`, `sshd`…).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (topic, source) = match text.split_once('=') {
            Some((topic, source)) => (topic.trim(), source.trim()),
            None if crate::adapters::NAMES.contains(&text.trim()) => (text.trim(), text.trim()),
            None => {
                return Err(format!(
                    "bind topic {text:?} to a source: --topic {text}=SOURCE (sources: {})",
                    crate::adapters::NAMES.join(", ")
                ));
            }
        };
        if topic.is_empty()
            || !topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(format!(
                "{topic:?} is not a Kafka topic name (letters, digits, '.', '_' and '-')"
            ));
        }
        if !crate::adapters::NAMES.contains(&source) {
            return Err(format!(
                "unknown source {source:?} for topic {topic}; sources: {}",
                crate::adapters::NAMES.join(", ")
            ));
        }
        Ok(TopicBinding {
            topic: topic.to_owned(),
            source: source.to_owned(),
        })
    }
}

/// What to consume and how.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Consumer group.
    pub group: String,
    /// Topics and their sources.
    pub topics: Vec<TopicBinding>,
    /// librdkafka settings passed through (security, timeouts…).
    pub client_options: BTreeMap<String, String>,
    /// Stop once every assigned partition is read to its end and stored.
    pub until_caught_up: bool,
    /// Most messages in one batch handed to the writer.
    pub batch_messages: usize,
    /// Most payload bytes in one batch.
    pub batch_bytes: usize,
    /// Longest a message waits for its batch to fill.
    pub linger: Duration,
}

impl KafkaSettings {
    /// Settings with the defaults for everything but what must be given.
    pub fn new(brokers: String, group: String, topics: Vec<TopicBinding>) -> Self {
        KafkaSettings {
            brokers,
            group,
            topics,
            client_options: BTreeMap::new(),
            until_caught_up: false,
            batch_messages: 50_000,
            batch_bytes: 32 << 20,
            linger: Duration::from_millis(100),
        }
    }

    /// The librdkafka configuration: defaults, then the given options,
    /// then the forced ones. Refuses options that would break delivery
    /// guarantees rather than silently overriding them.
    pub fn client_config(&self) -> Result<BTreeMap<String, String>, crate::IngestError> {
        let mut config: BTreeMap<String, String> = DEFAULT_OPTIONS
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (key, value) in &self.client_options {
            if let Some((_, forced)) = FORCED_OPTIONS.iter().find(|(k, _)| k == key)
                && value != forced
            {
                return Err(crate::IngestError::KafkaConfig(format!(
                    "{key}={value} is not allowed: authtrail sets {key}={forced} because it \
                     stores and commits offsets only after their events are durable"
                )));
            }
            if key == "partition.assignment.strategy" && value.contains("cooperative") {
                return Err(crate::IngestError::KafkaConfig(
                    "partition.assignment.strategy=cooperative-sticky is not supported: authtrail \
                     drains and commits everything on each (eager) revoke"
                        .into(),
                ));
            }
            if ["bootstrap.servers", "group.id"].contains(&key.as_str()) {
                return Err(crate::IngestError::KafkaConfig(format!(
                    "set {key} with --brokers / --group (or brokers / group in [kafka]), not as an option"
                )));
            }
            config.insert(key.clone(), value.clone());
        }
        for &(key, value) in FORCED_OPTIONS {
            config.insert(key.to_owned(), value.to_owned());
        }
        config.insert("bootstrap.servers".into(), self.brokers.clone());
        config.insert("group.id".into(), self.group.clone());
        Ok(config)
    }
}

/// Live counters of a consumer, for progress lines and `/metrics`.
#[derive(Debug, Default)]
pub struct KafkaStats {
    /// Messages read from the broker (including ones already in the log).
    pub messages: AtomicU64,
    /// Payload bytes read.
    pub bytes: AtomicU64,
    /// Messages skipped because the log already held them (below its
    /// position after a crash).
    pub already_stored: AtomicU64,
    /// Events stored.
    pub stored: AtomicU64,
    /// Events that were duplicates of stored ones.
    pub duplicates: AtomicU64,
    /// Dead letters stored.
    pub dead_letters: AtomicU64,
    /// Records valid but not about authentication.
    pub skipped: AtomicU64,
    /// Durable batches whose offsets were committed.
    pub batches: AtomicU64,
    /// Rebalances (assignments and revocations) seen.
    pub rebalances: AtomicU64,
    partitions: Mutex<BTreeMap<(String, i32), PartitionStats>>,
    /// The partitions this member held, each read to its end, when it
    /// found itself caught up (`until_caught_up`).
    caught_up_on: Mutex<Vec<(String, i32)>>,
}

/// One assigned partition, as last seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStats {
    /// Next offset to store (after the last durable message).
    pub committed: i64,
    /// The broker's high watermark.
    pub high_watermark: i64,
    /// Messages behind the high watermark.
    pub lag: i64,
}

impl KafkaStats {
    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set_partition(&self, topic: &str, partition: i32, stats: PartitionStats) {
        lock(&self.partitions).insert((topic.to_owned(), partition), stats);
    }

    pub(crate) fn update_partition(
        &self,
        topic: &str,
        partition: i32,
        update: impl FnOnce(&mut PartitionStats),
    ) {
        let mut partitions = lock(&self.partitions);
        let entry = partitions.entry((topic.to_owned(), partition)).or_default();
        update(entry);
        entry.lag = (entry.high_watermark - entry.committed).max(0);
    }

    pub(crate) fn forget_partitions(&self) {
        lock(&self.partitions).clear();
    }

    /// Every assigned partition's offsets and lag.
    pub fn partitions(&self) -> BTreeMap<(String, i32), PartitionStats> {
        lock(&self.partitions).clone()
    }

    /// Records the partitions this member held when it was caught up.
    pub(crate) fn set_caught_up_on(&self, partitions: Vec<(String, i32)>) {
        *lock(&self.caught_up_on) = partitions;
    }

    /// Messages behind, over every assigned partition.
    pub fn total_lag(&self) -> i64 {
        lock(&self.partitions).values().map(|p| p.lag).sum()
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What a consumer run did, for the closing summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaReport {
    /// Messages read.
    pub messages: u64,
    /// Messages skipped as already in the log.
    pub already_stored: u64,
    /// Events stored.
    pub stored: u64,
    /// Duplicate events.
    pub duplicates: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Records skipped as not about authentication.
    pub skipped: u64,
    /// With `until_caught_up`: the partitions read to their end. Others of
    /// the topics belonged to other members of the group.
    pub caught_up_on: Vec<(String, i32)>,
}

impl KafkaReport {
    fn from_stats(stats: &KafkaStats) -> Self {
        KafkaReport {
            messages: KafkaStats::get(&stats.messages),
            already_stored: KafkaStats::get(&stats.already_stored),
            stored: KafkaStats::get(&stats.stored),
            duplicates: KafkaStats::get(&stats.duplicates),
            dead_letters: KafkaStats::get(&stats.dead_letters),
            skipped: KafkaStats::get(&stats.skipped),
            caught_up_on: lock(&stats.caught_up_on).clone(),
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it;
/// the counters behind these locks stay consistent.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The origin named in a Kafka message's dead letters.
pub fn origin(topic: &str, partition: i32, offset: i64) -> String {
    format!("kafka:{topic}/{partition}@{offset}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_name_a_known_source() {
        let binding: TopicBinding = "auth.events=okta".parse().expect("valid");
        assert_eq!(binding.topic, "auth.events");
        assert_eq!(binding.source, "okta");
        let named: TopicBinding = "sshd".parse().expect("topic named after its source");
        assert_eq!(named.source, "sshd");
        assert!("events".parse::<TopicBinding>().is_err());
        assert!("events=nope".parse::<TopicBinding>().is_err());
        assert!("bad topic=okta".parse::<TopicBinding>().is_err());
    }

    #[test]
    fn guarantees_cannot_be_configured_away() {
        let mut settings = KafkaSettings::new("b:9092".into(), "g".into(), vec![]);
        settings
            .client_options
            .insert("enable.auto.commit".into(), "true".into());
        assert!(settings.client_config().is_err());
        settings.client_options.clear();
        settings
            .client_options
            .insert("auto.offset.reset".into(), "latest".into());
        let config = settings.client_config().expect("valid");
        assert_eq!(config["auto.offset.reset"], "latest");
        assert_eq!(config["enable.auto.offset.store"], "false");
        assert_eq!(config["group.id"], "g");
    }
}
