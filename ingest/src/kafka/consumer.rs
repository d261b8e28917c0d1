//! The consumer loop: poll, batch, parse, hand to the stager, and store and
//! commit offsets once the batch is durable.
//!
//! One thread polls and parses (parsing fans out over the rayon pool while
//! librdkafka keeps prefetching); an acknowledger thread waits for each
//! batch's receipt, in order, then stores and commits its offsets. Up to
//! [`IN_FLIGHT`] batches are between the two, so reading, parsing and the
//! writer's fsync overlap. The rebalance callback runs on the polling
//! thread: on revoke it flushes and drains everything before giving the
//! partitions up.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use arrow::array::RecordBatch;
use authtrail_schemas::SourcePositions;
use authtrail_schemas::arrow_schema::EventBatchBuilder;
use authtrail_schemas::positions::kafka_key;

use super::{KafkaReport, KafkaSettings, KafkaStats, PartitionStats, lock, origin};
use crate::IngestError;
use crate::adapters::{self, Adapter, AdapterOptions, ParseError};
use crate::pipeline::{self, Output, Parsed};
use crate::staging::{Batch, CommitResult, Stager};

/// Batches handed to the writer and not yet acknowledged, at most.
const IN_FLIGHT: usize = 4;

/// Messages one parallel parsing task takes on.
const PARSE_CHUNK: usize = 2048;

/// How long broker requests made from the loop may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// A topic and its adapter.
struct Topic {
    name: String,
    adapter: Box<dyn Adapter>,
}

/// A message read and not yet handed to the writer; its payload lives in
/// [`Pending::payloads`].
struct Message {
    topic: usize,
    partition: i32,
    offset: i64,
    payload: Option<Range<usize>>,
}

/// Messages read since the last hand-over.
#[derive(Default)]
struct Pending {
    messages: Vec<Message>,
    payloads: Vec<u8>,
    since: Option<Instant>,
}

/// A batch handed to the writer: its answer, and the offsets to store once
/// it is durable.
struct InFlight {
    answer: tokio::sync::oneshot::Receiver<CommitResult>,
    offsets: Vec<(usize, i32, i64)>,
}

/// A partition as the consumer tracks it.
#[derive(Debug, Clone, Copy)]
struct Assigned {
    /// Where reading started: the later of the group's committed offset and
    /// the log's position, when either is known.
    start: Option<i64>,
    /// The log's position at assignment: messages below it are stored.
    floor: Option<i64>,
    /// The offset after the last message read.
    next: Option<i64>,
}

/// What the polling thread, the acknowledger and the rebalance callback
/// share.
struct Shared {
    topics: Vec<Topic>,
    stager: Arc<Stager>,
    stats: Arc<KafkaStats>,
    batch_messages: usize,
    batch_bytes: usize,
    pending: Mutex<Pending>,
    /// The previous batch's buffers, emptied, for the next one: a fresh
    /// 32 MiB buffer per batch would mostly cost page faults.
    spare: Mutex<Pending>,
    in_flight: Mutex<Option<SyncSender<InFlight>>>,
    outstanding: Mutex<usize>,
    settled: Condvar,
    failure: Mutex<Option<String>>,
    assigned: Mutex<BTreeMap<(usize, i32), Assigned>>,
}

struct Context {
    shared: Arc<Shared>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        use RDKafkaLogLevel::*;
        match level {
            Emerg | Alert | Critical | Error => {
                tracing::error!(target: "librdkafka", facility, "{message}")
            }
            Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
            Notice | Info => tracing::info!(target: "librdkafka", facility, "{message}"),
            Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching the end of a partition is how catching up is noticed,
        // not a problem.
        if matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::error::RDKafkaErrorCode::PartitionEOF)
        ) {
            return;
        }
        tracing::warn!(target: "librdkafka", error = %error, "{reason}");
    }

    /// The client's periodic statistics carry each partition's high
    /// watermark: the lag is measured against it.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let assigned = lock(&self.shared.assigned);
        for (&(topic, partition), _) in assigned.iter() {
            let name = &self.shared.topics[topic].name;
            let high = statistics
                .topics
                .get(name)
                .and_then(|t| t.partitions.get(&partition))
                .map(|p| p.hi_offset);
            if let Some(high) = high.filter(|&h| h >= 0) {
                self.shared
                    .stats
                    .update_partition(name, partition, |p| p.high_watermark = high);
            }
        }
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.shared.stats.add(&self.shared.stats.rebalances, 1);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.shared.on_assign(consumer, tpl);
                if let Err(err) = consumer.assign(tpl) {
                    self.shared
                        .fail(format!("taking the assigned partitions: {err}"));
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Err(err) = self.shared.drain(consumer) {
                    self.shared.fail(err.to_string());
                }
                self.shared.forget_assignment();
                if let Err(err) = consumer.unassign() {
                    tracing::warn!(error = %err, "giving up the revoked partitions");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed; giving up every partition");
                if let Err(err) = self.shared.drain(consumer) {
                    self.shared.fail(err.to_string());
                }
                self.shared.forget_assignment();
                let _ = consumer.unassign();
            }
        }
    }
}

impl Shared {
    fn fail(&self, message: String) {
        tracing::error!("{message}");
        lock(&self.failure).get_or_insert(message);
    }

    fn failed(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    fn topic_index(&self, name: &str) -> Option<usize> {
        self.topics.iter().position(|t| t.name == name)
    }

    /// Starts each assigned partition at the later of the group's committed
    /// offset and the log's own position.
    fn on_assign(&self, consumer: &BaseConsumer<Context>, tpl: &mut TopicPartitionList) {
        let positions = self.stager.source_positions();
        let committed = match consumer.committed_offsets(tpl.clone(), BROKER_TIMEOUT) {
            Ok(committed) => Some(committed),
            Err(err) => {
                // Still exact: messages below the log's position are
                // skipped as they arrive.
                tracing::warn!(error = %err, "reading the group's committed offsets; resuming from the log's positions");
                None
            }
        };
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let mut assigned = lock(&self.assigned);
        for (topic, partition) in partitions {
            let Some(index) = self.topic_index(&topic) else {
                continue;
            };
            let floor = positions.get(&kafka_key(&topic, partition));
            let group = committed
                .as_ref()
                .and_then(|c| c.find_partition(&topic, partition))
                .and_then(|e| match e.offset() {
                    Offset::Offset(n) => Some(n),
                    _ => None,
                });
            let start = match (floor, group) {
                (Some(log), Some(group)) => Some(log.max(group)),
                (log, group) => log.or(group),
            };
            if let (Some(start), Some(_)) = (start, floor)
                && let Err(err) = tpl.set_partition_offset(&topic, partition, Offset::Offset(start))
            {
                tracing::warn!(topic, partition, error = %err, "setting the start offset");
            }
            tracing::info!(
                topic,
                partition,
                log_position = ?floor,
                group_offset = ?group,
                start = ?start,
                "partition assigned"
            );
            assigned.insert(
                (index, partition),
                Assigned {
                    start,
                    floor,
                    next: None,
                },
            );
            self.stats.set_partition(
                &topic,
                partition,
                PartitionStats {
                    committed: start.unwrap_or(0),
                    ..PartitionStats::default()
                },
            );
        }
    }

    fn forget_assignment(&self) {
        lock(&self.assigned).clear();
        self.stats.forget_partitions();
    }

    /// Takes one message into the pending batch, unless the log holds it.
    /// Returns whether the batch is full.
    fn accept(&self, message: &rdkafka::message::BorrowedMessage<'_>) -> bool {
        let Some(topic) = self.topic_index(message.topic()) else {
            return false;
        };
        let (partition, offset) = (message.partition(), message.offset());
        let payload = message.payload();
        self.stats.add(&self.stats.messages, 1);
        self.stats
            .add(&self.stats.bytes, payload.map_or(0, <[u8]>::len) as u64);
        {
            let mut assigned = lock(&self.assigned);
            if let Some(state) = assigned.get_mut(&(topic, partition)) {
                state.next = Some(offset + 1);
                if state.floor.is_some_and(|floor| offset < floor) {
                    self.stats.add(&self.stats.already_stored, 1);
                    return false;
                }
            }
        }
        let mut pending = lock(&self.pending);
        let payload = payload.map(|bytes| {
            let start = pending.payloads.len();
            pending.payloads.extend_from_slice(bytes);
            start..pending.payloads.len()
        });
        pending.messages.push(Message {
            topic,
            partition,
            offset,
            payload,
        });
        pending.since.get_or_insert_with(Instant::now);
        pending.messages.len() >= self.batch_messages || pending.payloads.len() >= self.batch_bytes
    }

    /// Whether the pending batch has waited `linger`.
    fn due(&self, linger: Duration) -> bool {
        lock(&self.pending)
            .since
            .is_some_and(|since| since.elapsed() >= linger)
    }

    /// Parses the pending batch and hands it to the writer.
    fn dispatch(&self) -> Result<(), IngestError> {
        let mut pending = {
            let mut current = lock(&self.pending);
            if current.messages.is_empty() {
                return Ok(());
            }
            std::mem::replace(&mut *current, std::mem::take(&mut *lock(&self.spare)))
        };
        let mut offsets: HashMap<(usize, i32), i64> = HashMap::new();
        for message in &pending.messages {
            let next = offsets
                .entry((message.topic, message.partition))
                .or_insert(0);
            *next = (*next).max(message.offset + 1);
        }
        let mut positions = SourcePositions::new();
        for (&(topic, partition), &next) in &offsets {
            positions.advance(&kafka_key(&self.topics[topic].name, partition), next);
        }
        let parsed = parse_messages(&self.topics, &pending, Utc::now())?;
        self.stats
            .add(&self.stats.skipped, parsed.skipped.values().sum::<u64>());
        let batch = Batch {
            record_batches: parsed.batches,
            dead_letters: parsed.dead_letters,
            positions,
            ..Batch::default()
        };
        pending.messages.clear();
        pending.payloads.clear();
        pending.since = None;
        *lock(&self.spare) = pending;
        // Kafka keeps what the writer cannot take yet: wait for room rather
        // than refuse.
        let answer = self
            .stager
            .submit_waiting(batch)
            .map_err(|err| IngestError::Writer(err.to_string()))?;
        self.hand_over(answer, offsets)
    }

    /// Queues a submitted batch for the acknowledger.
    fn hand_over(
        &self,
        answer: tokio::sync::oneshot::Receiver<CommitResult>,
        offsets: HashMap<(usize, i32), i64>,
    ) -> Result<(), IngestError> {
        let Some(sender) = lock(&self.in_flight).clone() else {
            return Err(IngestError::Writer("the consumer is stopping".into()));
        };
        *lock(&self.outstanding) += 1;
        let flight = InFlight {
            answer,
            offsets: offsets
                .into_iter()
                .map(|((topic, partition), next)| (topic, partition, next))
                .collect(),
        };
        // Blocks while IN_FLIGHT batches wait for the writer: reading
        // pauses instead of memory growing.
        if sender.send(flight).is_err() {
            self.settle_one();
            return Err(IngestError::Writer("the acknowledger stopped".into()));
        }
        Ok(())
    }

    fn settle_one(&self) {
        let mut outstanding = lock(&self.outstanding);
        *outstanding = outstanding.saturating_sub(1);
        self.settled.notify_all();
    }

    /// Hands over what is pending, waits until every batch is durable and
    /// its offsets stored, then commits synchronously.
    fn drain(&self, consumer: &BaseConsumer<Context>) -> Result<(), IngestError> {
        self.dispatch()?;
        let mut outstanding = lock(&self.outstanding);
        while *outstanding > 0 {
            outstanding = self
                .settled
                .wait(outstanding)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        drop(outstanding);
        if let Some(failure) = self.failed() {
            return Err(IngestError::Writer(failure));
        }
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => Ok(()),
            // Nothing stored since the last commit.
            Err(KafkaError::ConsumerCommit(rdkafka::error::RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(err) => {
                // The offsets are in the log: a partition's next owner
                // re-reads at most what this commit would have covered,
                // and (with the same log) skips it.
                tracing::warn!(error = %err, "committing offsets");
                Ok(())
            }
        }
    }

    /// Waits for each batch's receipt in order; once durable, stores and
    /// commits its offsets.
    fn acknowledge(
        &self,
        consumer: &BaseConsumer<Context>,
        batches: std::sync::mpsc::Receiver<InFlight>,
    ) {
        for flight in batches {
            match flight.answer.blocking_recv() {
                Ok(Ok(receipt)) => {
                    let stats = &self.stats;
                    stats.add(&stats.stored, receipt.stored);
                    stats.add(&stats.duplicates, receipt.duplicates);
                    stats.add(&stats.dead_letters, receipt.dead_letters);
                    stats.add(&stats.batches, 1);
                    let mut tpl = TopicPartitionList::new();
                    for &(topic, partition, next) in &flight.offsets {
                        let name = &self.topics[topic].name;
                        if let Err(err) =
                            tpl.add_partition_offset(name, partition, Offset::Offset(next))
                        {
                            tracing::warn!(topic = name, partition, error = %err, "recording an offset");
                        }
                        stats.update_partition(name, partition, |p| {
                            p.committed = p.committed.max(next)
                        });
                    }
                    if let Err(err) = consumer.store_offsets(&tpl) {
                        tracing::warn!(error = %err, "storing offsets (the log holds them)");
                    } else if let Err(err) = consumer.commit_consumer_state(CommitMode::Async) {
                        tracing::warn!(error = %err, "committing offsets (the log holds them)");
                    }
                }
                Ok(Err(err)) => self.fail(format!("storing a batch failed: {err}")),
                Err(_) => self.fail("the event log writer stopped".into()),
            }
            self.settle_one();
        }
    }

    /// Whether every assigned partition has been read to its end (asking
    /// the broker for the ends).
    fn caught_up(&self, consumer: &BaseConsumer<Context>) -> bool {
        let assigned: Vec<((usize, i32), Assigned)> =
            lock(&self.assigned).iter().map(|(k, v)| (*k, *v)).collect();
        if assigned.is_empty() {
            return false;
        }
        for ((topic, partition), state) in assigned {
            let name = &self.topics[topic].name;
            let Ok((low, high)) = consumer.fetch_watermarks(name, partition, BROKER_TIMEOUT) else {
                return false;
            };
            self.stats
                .update_partition(name, partition, |p| p.high_watermark = high);
            let next = state.next.or(state.start).unwrap_or(low);
            if next < high && low < high {
                return false;
            }
        }
        let mut held: Vec<(String, i32)> = lock(&self.assigned)
            .keys()
            .map(|&(topic, partition)| (self.topics[topic].name.clone(), partition))
            .collect();
        held.sort();
        self.stats.set_caught_up_on(held);
        true
    }
}

/// Parses every pending message with its topic's adapter, in parallel,
/// straight into Arrow batches (one per piece, built on the thread that
/// parsed it), with the dead letters and counts.
fn parse_messages(
    topics: &[Topic],
    pending: &Pending,
    received_at: DateTime<Utc>,
) -> Result<Parsed, IngestError> {
    let ingested_at = received_at.timestamp_micros();
    let pieces: Vec<Parsed> = pending
        .messages
        .par_chunks(PARSE_CHUNK)
        .map(|chunk| {
            let mut parsed = Parsed::default();
            let bytes = chunk
                .iter()
                .filter_map(|message| message.payload.as_ref().map(|range| range.len()))
                .sum();
            let mut singles = EventBatchBuilder::with_capacity(chunk.len(), bytes);
            // Batches of multi-record messages, in message order with the
            // single records' batch that precedes them.
            let mut batches = Vec::new();
            let output = Output::Batches {
                ingested_at_micros: ingested_at,
            };
            for message in chunk {
                let topic = &topics[message.topic];
                let body = message
                    .payload
                    .as_ref()
                    .map(|range| &pending.payloads[range.clone()]);
                let multi = parse_message(
                    topic,
                    message,
                    body,
                    received_at,
                    output,
                    &mut singles,
                    &mut parsed,
                )?;
                if let Some(mut piece) = multi {
                    if !singles.is_empty() {
                        let full = std::mem::replace(
                            &mut singles,
                            EventBatchBuilder::with_capacity(chunk.len(), bytes),
                        );
                        batches.push(full.finish(ingested_at)?);
                    }
                    batches.append(&mut piece.batches);
                    parsed.absorb(piece);
                }
            }
            if !singles.is_empty() {
                batches.push(singles.finish(ingested_at)?);
            }
            parsed.event_count = batches.iter().map(RecordBatch::num_rows).sum();
            parsed.batches = batches;
            Ok(parsed)
        })
        .collect::<Result<_, IngestError>>()?;
    let mut all = Parsed::default();
    for piece in pieces {
        all.absorb(piece);
    }
    Ok(all)
}

/// One message: a single record goes straight to `singles`; NDJSON,
/// arrays and envelopes go through the body parser, which numbers their
/// lines, and come back as their own `Parsed`.
fn parse_message(
    topic: &Topic,
    message: &Message,
    body: Option<&[u8]>,
    received_at: DateTime<Utc>,
    output: Output,
    singles: &mut EventBatchBuilder,
    parsed: &mut Parsed,
) -> Result<Option<Parsed>, IngestError> {
    let adapter = &*topic.adapter;
    let reject = |parsed: &mut Parsed, line: u64, raw: &[u8], reason: String| {
        parsed.dead_letters.push(pipeline::dead_letter(
            adapter.name(),
            &origin(&topic.name, message.partition, message.offset),
            line,
            raw,
            reason,
            received_at,
        ));
    };
    let body = body.unwrap_or_default();
    let record = body.trim_ascii();
    if record.is_empty() {
        parsed.records += 1;
        let reason = if message.payload.is_none() {
            "message has no payload (a tombstone?)"
        } else {
            "message is empty"
        };
        reject(parsed, 1, body, reason.into());
        return Ok(None);
    }
    let single = memchr::memchr(b'\n', record).is_none()
        && (adapter.framing() == adapters::Framing::Text || record[0] != b'[');
    if !single {
        let origin = origin(&topic.name, message.partition, message.offset);
        return pipeline::parse_body(adapter, body, &origin, received_at, output).map(Some);
    }
    parsed.records += 1;
    let Ok(text) = std::str::from_utf8(record) else {
        reject(parsed, 1, body, "message is not UTF-8".into());
        return Ok(None);
    };
    match adapter.parse(text, singles) {
        Ok(()) => {}
        Err(ParseError::Rejected(reason)) => reject(parsed, 1, body, reason),
        Err(ParseError::NotAuthentication(kind)) => *parsed.skipped.entry(kind).or_default() += 1,
    }
    Ok(None)
}

/// Consumes `settings.topics` as a member of `settings.group` into the log
/// behind `stager`, until `stop` is set (or, with `until_caught_up`, every
/// assigned partition is stored to its end). Returns what was done; fails
/// if the writer fails (no offset past a failed batch is committed).
pub fn run(
    settings: &KafkaSettings,
    stager: Arc<Stager>,
    adapter_options: &AdapterOptions,
    stop: &AtomicBool,
    stats: Arc<KafkaStats>,
) -> Result<KafkaReport, IngestError> {
    if settings.topics.is_empty() {
        return Err(IngestError::KafkaConfig(
            "no topic to consume: give --topic TOPIC=SOURCE".into(),
        ));
    }
    let topics = settings
        .topics
        .iter()
        .map(|binding| {
            Ok(Topic {
                name: binding.topic.clone(),
                adapter: adapters::build(&binding.source, adapter_options)?,
            })
        })
        .collect::<Result<Vec<_>, IngestError>>()?;
    let (sender, batches) = std::sync::mpsc::sync_channel(IN_FLIGHT);
    let shared = Arc::new(Shared {
        topics,
        stager,
        stats: Arc::clone(&stats),
        batch_messages: settings.batch_messages.max(1),
        batch_bytes: settings.batch_bytes.max(1),
        pending: Mutex::default(),
        spare: Mutex::default(),
        in_flight: Mutex::new(Some(sender)),
        outstanding: Mutex::new(0),
        settled: Condvar::new(),
        failure: Mutex::default(),
        assigned: Mutex::default(),
    });
    let mut config = ClientConfig::new();
    for (key, value) in settings.client_config()? {
        config.set(key, value);
    }
    let consumer: Arc<BaseConsumer<Context>> = Arc::new(
        config
            .create_with_context(Context {
                shared: Arc::clone(&shared),
            })
            .map_err(IngestError::kafka("creating the consumer"))?,
    );
    check_topics(&consumer, settings)?;
    let names: Vec<&str> = settings.topics.iter().map(|t| t.topic.as_str()).collect();
    consumer
        .subscribe(&names)
        .map_err(IngestError::kafka("subscribing"))?;
    let acknowledger = {
        let shared = Arc::clone(&shared);
        let consumer = Arc::clone(&consumer);
        std::thread::Builder::new()
            .name("authtrail-kafka-ack".into())
            .spawn(move || shared.acknowledge(&consumer, batches))
            .map_err(|err| IngestError::Writer(format!("starting the acknowledger: {err}")))?
    };
    let result = poll_loop(settings, &shared, &consumer, stop);
    // Make everything read durable and committed, whatever ended the loop.
    let drained = shared.drain(&consumer);
    lock(&shared.in_flight).take();
    if acknowledger.join().is_err() {
        shared.fail("the acknowledger thread panicked".into());
    }
    // Leaving the group (on drop) revokes the partitions, draining nothing
    // more.
    consumer.unsubscribe();
    drop(consumer);
    result?;
    drained?;
    if let Some(failure) = shared.failed() {
        return Err(IngestError::Writer(failure));
    }
    Ok(KafkaReport::from_stats(&stats))
}

/// Fails early, with what to do, when a topic does not exist.
fn check_topics(
    consumer: &BaseConsumer<Context>,
    settings: &KafkaSettings,
) -> Result<(), IngestError> {
    for binding in &settings.topics {
        let metadata = consumer
            .fetch_metadata(Some(&binding.topic), BROKER_TIMEOUT)
            .map_err(IngestError::kafka(format!(
                "reaching the brokers at {} (are they up?)",
                settings.brokers
            )))?;
        let missing = metadata
            .topics()
            .iter()
            .find(|t| t.name() == binding.topic)
            .is_none_or(|t| t.error().is_some() || t.partitions().is_empty());
        if missing {
            return Err(IngestError::KafkaConfig(format!(
                "topic {} does not exist on {}; create it first (authtrail does not create topics)",
                binding.topic, settings.brokers
            )));
        }
    }
    Ok(())
}

fn poll_loop(
    settings: &KafkaSettings,
    shared: &Shared,
    consumer: &BaseConsumer<Context>,
    stop: &AtomicBool,
) -> Result<(), IngestError> {
    let mut last_check = Instant::now();
    while !stop.load(Ordering::Acquire) {
        if let Some(failure) = shared.failed() {
            return Err(IngestError::Writer(failure));
        }
        let mut idle = false;
        match consumer.poll(Duration::from_millis(50)) {
            None => idle = true,
            Some(Ok(message)) => {
                if shared.accept(&message) {
                    drop(message);
                    shared.dispatch()?;
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => idle = true,
            Some(Err(err)) => {
                // librdkafka retries by itself; the error is worth a line.
                tracing::warn!(error = %err, "kafka consumer");
                idle = true;
            }
        }
        if shared.due(settings.linger) || (idle && !lock(&shared.pending).messages.is_empty()) {
            shared.dispatch()?;
        }
        if settings.until_caught_up
            && idle
            && last_check.elapsed() >= Duration::from_millis(200)
            && lock(&shared.pending).messages.is_empty()
        {
            last_check = Instant::now();
            if shared.caught_up(consumer) {
                return Ok(());
            }
        }
    }
    Ok(())
}
