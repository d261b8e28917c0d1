//! Staging: the write-ahead end of the event log, for producers that commit
//! small batches often (webhooks, Kafka partitions).
//!
//! Sealing a Parquet file per small commit would bury the log in tiny files,
//! so a [`Stager`] group-commits instead: one thread takes every batch that
//! is queued, drops events already in the log or already staged, appends
//! the rest to the current staging segment (`<root>/staging/<ULID>.arrows`,
//! an Arrow IPC stream: one message per producer's batch, and one for all
//! the commit's single deliveries), fsyncs it once, and only then answers
//! each producer. Staged rows are visible to queries at once (the query crate
//! reads the segments beside the sealed files). A second thread seals full
//! segments into the usual day-partitioned Parquet files; the sealed files
//! and the removal of their segment are published together under the
//! staging lock, so no query sees a row twice or misses one.
//!
//! A segment's disk space is reserved (it reads as zeros) when it is
//! opened, sized for a full segment at the last one's bytes per row: a
//! commit's sync then neither allocates blocks nor changes the file's
//! size (the file system only marks the reserved blocks it wrote into as
//! written). Readers take the zeros after the last message as the
//! stream's end; a segment that used its reservation is sealed.
//!
//! A crash loses nothing acknowledged: on start, segments left behind are
//! read back (up to a torn, unacknowledged tail) and sealed before anything
//! new is accepted. Sealing is idempotent, so a crash after the Parquet
//! files were published but before the segment was removed stores nothing
//! twice.
//!
//! A batch may carry source positions (the Kafka offsets after its
//! records). They go to the segment's position journal
//! (`<ULID>.positions`, one JSON line per commit naming the segment's row
//! count once the commit is in), which is synced before the segment: a
//! journal line counts only if the segment holds its rows, so a position
//! is durable exactly when the records before it are. Sealing copies the
//! log's positions into every file's metadata.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::{filter_record_batch, max, min};
use arrow::datatypes::TimestampMicrosecondType;
use arrow::ipc::reader::{StreamDecoder, StreamReader};
use arrow::ipc::writer::StreamWriter;
use chrono::Utc;

use authtrail_schemas::arrow_schema::{events_schema, events_to_batch};
use authtrail_schemas::layout::{
    STAGING_DIR, STAGING_EXTENSION, STAGING_LOCK, STAGING_POSITIONS_EXTENSION,
};
use authtrail_schemas::{AuthEvent, CommitSummary, DeadLetter, SourcePositions};

use crate::IngestError;
use crate::store::{EventLog, fsio};

/// Settings of a [`Stager`].
#[derive(Debug, Clone, Copy)]
pub struct StagingOptions {
    /// Staged events that make a segment due for sealing.
    pub seal_events: usize,
    /// Age at which a segment is sealed even if it is not full.
    pub seal_interval: Duration,
    /// Events accepted but not yet durable; beyond this, producers are
    /// told to retry later.
    pub max_queued_events: usize,
    /// Most events one group commit takes.
    pub max_commit_events: usize,
    /// Most bytes of disk reserved for one segment (see
    /// [`fsio::reserve`]); a segment is sealed once it has used them.
    pub max_segment_bytes: u64,
}

impl Default for StagingOptions {
    fn default() -> Self {
        StagingOptions {
            seal_events: 100_000,
            seal_interval: Duration::from_secs(120),
            max_queued_events: 1_000_000,
            max_commit_events: 100_000,
            max_segment_bytes: 256 << 20,
        }
    }
}

/// What a producer hands over.
#[derive(Debug, Default)]
pub struct Batch {
    /// Parsed events.
    pub events: Vec<AuthEvent>,
    /// Events already built into Arrow batches of the `events` schema (by
    /// producers that parse in parallel and build each piece's batch
    /// where it was parsed).
    pub record_batches: Vec<RecordBatch>,
    /// Rejected records.
    pub dead_letters: Vec<DeadLetter>,
    /// Where the source stands once this batch is stored (e.g. the Kafka
    /// offsets after its messages); recorded with it, atomically.
    pub positions: SourcePositions,
}

/// What became of one producer's batch once it is durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Events stored by this batch.
    pub stored: u64,
    /// Events already in the log (or earlier in the same commit).
    pub duplicates: u64,
    /// Dead letters stored.
    pub dead_letters: u64,
}

/// Why a batch was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Too much is queued: retry after a moment.
    #[error("ingest queue is full ({queued} events waiting); retry later")]
    Overloaded {
        /// Events waiting when the batch was refused.
        queued: usize,
    },
    /// The stager has stopped (shutting down, or after a storage failure).
    #[error("the event log writer has stopped")]
    Closed,
    /// The events could not be encoded (a bug: every event fits the
    /// schema).
    #[error("encoding the events: {0}")]
    Encoding(String),
}

/// The answer a producer waits for: its receipt, or why nothing of its
/// batch may be assumed stored.
pub type CommitResult = Result<Receipt, Arc<IngestError>>;

/// A producer's batch as the commit thread takes it: the events already
/// built into an Arrow batch on the producer's thread (so that the parsed
/// events are freed where they were allocated, and the commit thread only
/// deduplicates, writes and syncs).
struct Job {
    events: Vec<RecordBatch>,
    /// The events of a small delivery, which the commit thread builds into
    /// one batch with those of every other small delivery of its commit.
    small: Vec<AuthEvent>,
    dead_letters: Vec<DeadLetter>,
    positions: SourcePositions,
    reply: tokio::sync::oneshot::Sender<CommitResult>,
}

impl Job {
    fn event_count(&self) -> usize {
        self.events.iter().map(RecordBatch::num_rows).sum::<usize>() + self.small.len()
    }
}

/// Deliveries of at most this many events (a single webhook call) are
/// built into Arrow by the commit thread, one batch a commit: a batch per
/// delivery would cost more to build, concatenate and free than the
/// events themselves, and would be freed by another thread than the one
/// that allocated it.
const SMALL_DELIVERY_EVENTS: usize = 32;

/// A segment handed to the sealer: its file and the rows committed to it.
///
/// The rows are read back from the file (the page cache, just written)
/// rather than kept in memory since their commit: a whole segment of
/// per-commit batches was most of the server's memory between seals, and
/// every segment's worth was fresh memory the kernel had to fault in and
/// zero.
struct FullSegment {
    path: PathBuf,
    rows: usize,
    /// Where the last commit's data ends (the reserved zeros follow).
    bytes: u64,
}

/// The space reserved for a segment is sized for `seal_events` rows at the
/// last segment's bytes per row plus this share, between these bounds.
const RESERVE_MARGIN_PERCENT: u64 = 25;
const MIN_SEGMENT_BYTES: u64 = 1 << 20;
/// Bytes per row assumed before a segment has been filled.
const INITIAL_ROW_BYTES: u64 = 1024;

/// The position journal beside a segment.
fn journal_path(segment: &Path) -> PathBuf {
    segment.with_extension(STAGING_POSITIONS_EXTENSION)
}

/// The group-commit front of the event log. Cheap to share behind an `Arc`.
pub struct Stager {
    log: Arc<Mutex<EventLog>>,
    jobs: Mutex<Option<SyncSender<Job>>>,
    queued: Arc<AtomicUsize>,
    failed: Arc<std::sync::atomic::AtomicBool>,
    options: StagingOptions,
    commits: tokio::sync::broadcast::Sender<CommitSummary>,
    threads: Mutex<Vec<JoinHandle<Result<(), IngestError>>>>,
}

impl Stager {
    /// Recovers what earlier runs left staged (sealing it), then starts the
    /// commit and seal threads over `log`.
    pub fn start(log: EventLog, options: StagingOptions) -> Result<Self, IngestError> {
        let root = log.root().to_owned();
        let dir = root.join(STAGING_DIR);
        fsio::create_dir_durable(&dir)?;
        // The publish lock exists before any segment does: a query that
        // finds no lock file could otherwise read a segment's rows and then
        // list the files its first seal publishes, and see them twice.
        drop(open_publish_lock(&dir)?);
        fsio::sync_dir(&dir)?;
        let log = Arc::new(Mutex::new(log));
        recover(&log, &dir)?;
        let (jobs, job_receiver) = std::sync::mpsc::sync_channel::<Job>(4096);
        // One segment fills while at most one waits to be sealed: a sealer
        // that falls behind slows commits instead of growing memory.
        let (full, full_receiver) = std::sync::mpsc::sync_channel::<FullSegment>(1);
        let (commits, _) = tokio::sync::broadcast::channel(1024);
        let queued = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let commit_failed = Arc::clone(&failed);
        let seal_failed = Arc::clone(&failed);
        let committer = Committer {
            log: Arc::clone(&log),
            dir: dir.clone(),
            options,
            queued: Arc::clone(&queued),
            commits: commits.clone(),
            full,
            segment: None,
            row_bytes: INITIAL_ROW_BYTES,
        };
        let commit_thread = std::thread::Builder::new()
            .name("authtrail-commit".into())
            .spawn(move || {
                let result = committer.run(job_receiver);
                if let Err(err) = &result {
                    commit_failed.store(true, Ordering::Release);
                    tracing::error!(error = %err, "the commit thread stopped: no more ingest is acknowledged");
                }
                result
            })
            .map_err(IngestError::io("starting the commit thread", &dir))?;
        let seal_log = Arc::clone(&log);
        let seal_dir = dir.clone();
        let seal_thread = std::thread::Builder::new()
            .name("authtrail-seal".into())
            .spawn(move || {
                for segment in full_receiver {
                    let sealed = read_full_segment(&segment).and_then(|batches| {
                        seal_segment(&seal_log, &seal_dir, &segment.path, &batches)
                    });
                    if let Err(err) = sealed {
                        // The segment stays on disk and is sealed at the
                        // next start; staged rows stay visible meanwhile.
                        seal_failed.store(true, Ordering::Release);
                        tracing::error!(error = %err, "sealing a staging segment failed");
                        return Err(err);
                    }
                }
                Ok(())
            })
            .map_err(IngestError::io("starting the seal thread", &dir))?;
        Ok(Stager {
            log,
            jobs: Mutex::new(Some(jobs)),
            queued,
            failed,
            options,
            commits,
            threads: Mutex::new(vec![commit_thread, seal_thread]),
        })
    }

    /// Queues `batch` for the next group commit. The receiver answers once
    /// it is durable (or failed). Refuses at once when the queue is full.
    pub fn submit(
        &self,
        batch: Batch,
    ) -> Result<tokio::sync::oneshot::Receiver<CommitResult>, SubmitError> {
        self.enqueue(batch, false)
    }

    /// Like [`Stager::submit`], but waits for room instead of refusing: for
    /// producers that can hold back at the source (a Kafka consumer).
    pub fn submit_waiting(
        &self,
        batch: Batch,
    ) -> Result<tokio::sync::oneshot::Receiver<CommitResult>, SubmitError> {
        self.enqueue(batch, true)
    }

    fn enqueue(
        &self,
        batch: Batch,
        wait: bool,
    ) -> Result<tokio::sync::oneshot::Receiver<CommitResult>, SubmitError> {
        let size = batch.events.len()
            + batch
                .record_batches
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>()
            + batch.dead_letters.len();
        let before = loop {
            let before = self.queued.fetch_add(size, Ordering::AcqRel);
            if before == 0 || before + size <= self.options.max_queued_events {
                break before;
            }
            self.queued.fetch_sub(size, Ordering::AcqRel);
            if !wait {
                return Err(SubmitError::Overloaded { queued: before });
            }
            if !self.is_healthy() || lock(&self.jobs).is_none() {
                return Err(SubmitError::Closed);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let mut events = batch.record_batches;
        let mut small = Vec::new();
        if batch.events.len() <= SMALL_DELIVERY_EVENTS {
            small = batch.events;
        } else {
            let rows: Vec<&AuthEvent> = batch.events.iter().collect();
            match events_to_batch(&rows, Utc::now().timestamp_micros()) {
                Ok(built) => events.push(built),
                Err(err) => {
                    self.queued.fetch_sub(size, Ordering::AcqRel);
                    return Err(SubmitError::Encoding(err.to_string()));
                }
            }
            drop(rows);
            drop(batch.events);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            events,
            small,
            dead_letters: batch.dead_letters,
            positions: batch.positions,
            reply,
        };
        let Some(jobs) = lock(&self.jobs).clone() else {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            return Err(SubmitError::Closed);
        };
        let sent = if wait {
            jobs.send(job).map_err(|_| SubmitError::Closed)
        } else {
            jobs.try_send(job).map_err(|err| match err {
                std::sync::mpsc::TrySendError::Full(_) => {
                    SubmitError::Overloaded { queued: before }
                }
                std::sync::mpsc::TrySendError::Disconnected(_) => SubmitError::Closed,
            })
        };
        match sent {
            Ok(()) => Ok(answer),
            Err(err) => {
                self.queued.fetch_sub(size, Ordering::AcqRel);
                Err(err)
            }
        }
    }

    /// Whether the writer is healthy: false once a commit or a seal failed
    /// (the process should be restarted; nothing unacknowledged is lost).
    pub fn is_healthy(&self) -> bool {
        !self.failed.load(Ordering::Acquire)
    }

    /// Events accepted and not yet durable.
    pub fn queued_events(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// How far into each external stream the log holds everything (sealed
    /// or staged).
    pub fn source_positions(&self) -> SourcePositions {
        lock(&self.log).source_positions().clone()
    }

    /// Announcements of every durable commit (its counts and time range),
    /// for whoever derives from the log as it grows.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<CommitSummary> {
        self.commits.subscribe()
    }

    /// Stops taking batches, commits what is queued, seals every staged
    /// event into Parquet, and waits for both threads.
    pub fn shutdown(&self) -> Result<(), IngestError> {
        lock(&self.jobs).take();
        let threads = std::mem::take(&mut *lock(&self.threads));
        let mut result = Ok(());
        for thread in threads {
            let outcome = thread.join().unwrap_or(Err(IngestError::CommitThreadLost));
            if let Err(err) = outcome {
                result = result.and(Err(err));
            }
        }
        result
    }
}

impl Drop for Stager {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            tracing::error!(error = %err, "event log writer stopped with an error");
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it;
/// the data behind these locks stays consistent between operations.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The segment being filled.
struct Segment {
    path: PathBuf,
    /// Buffered: one commit's message goes out in a few large writes.
    writer: StreamWriter<BufWriter<File>>,
    /// The position journal, once a commit carried positions.
    journal: Option<File>,
    rows: usize,
    /// Bytes written (the stream's end) and bytes reserved on disk.
    bytes: u64,
    reserved: u64,
    opened: Instant,
}

impl Segment {
    fn is_full(&self, options: &StagingOptions) -> bool {
        self.rows >= options.seal_events
            || self.bytes >= self.reserved
            || self.opened.elapsed() >= options.seal_interval
    }
}

struct Committer {
    log: Arc<Mutex<EventLog>>,
    dir: PathBuf,
    options: StagingOptions,
    queued: Arc<AtomicUsize>,
    commits: tokio::sync::broadcast::Sender<CommitSummary>,
    full: SyncSender<FullSegment>,
    segment: Option<Segment>,
    /// Encoded bytes per row of the last full segment, to size the next
    /// one's reservation.
    row_bytes: u64,
}

impl Committer {
    fn run(mut self, jobs: Receiver<Job>) -> Result<(), IngestError> {
        loop {
            let wait = self
                .segment
                .as_ref()
                .map_or(Duration::from_secs(3600), |s| {
                    self.options
                        .seal_interval
                        .saturating_sub(s.opened.elapsed())
                });
            let first = match jobs.recv_timeout(wait) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Some(first) = first {
                let mut batch = vec![first];
                let mut events = batch[0].event_count();
                while events < self.options.max_commit_events {
                    match jobs.try_recv() {
                        Ok(job) => {
                            events += job.event_count();
                            batch.push(job);
                        }
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
                if let Err(err) = self.commit(batch) {
                    // Storage failed: every producer of this commit was told
                    // so; stop taking more rather than acknowledge anything
                    // on a log in an unknown state.
                    self.finish_segment();
                    return Err(err);
                }
            }
            if self
                .segment
                .as_ref()
                .is_some_and(|s| s.is_full(&self.options))
            {
                self.finish_segment();
            }
        }
        self.finish_segment();
        Ok(())
    }

    /// Hands the current segment to the sealer.
    fn finish_segment(&mut self) {
        let Some(segment) = self.segment.take() else {
            return;
        };
        if segment.rows > 0 {
            self.row_bytes = (segment.bytes / segment.rows as u64).max(1);
        }
        drop(segment.writer);
        let full = FullSegment {
            path: segment.path,
            rows: segment.rows,
            bytes: segment.bytes,
        };
        // A closed channel means the sealer failed; its error is reported
        // when the threads are joined, and the segment stays on disk to be
        // recovered on the next start.
        let _ = self.full.send(full);
    }

    fn commit(&mut self, jobs: Vec<Job>) -> Result<(), IngestError> {
        let size: usize = jobs
            .iter()
            .map(|j| j.event_count() + j.dead_letters.len())
            .sum();
        let result = self.store(&jobs);
        self.queued.fetch_sub(size, Ordering::AcqRel);
        match result {
            Ok((receipts, summary)) => {
                for (job, receipt) in jobs.into_iter().zip(receipts) {
                    // A producer that stopped waiting is no reason to stop.
                    let _ = job.reply.send(Ok(receipt));
                }
                if summary.stored > 0 || summary.dead_letters > 0 {
                    let _ = self.commits.send(summary);
                }
                Ok(())
            }
            Err(err) => {
                let shared = Arc::new(err);
                for job in jobs {
                    let _ = job.reply.send(Err(Arc::clone(&shared)));
                }
                Err(
                    Arc::try_unwrap(shared).unwrap_or_else(|shared| IngestError::Damaged {
                        path: self.dir.clone(),
                        message: shared.to_string(),
                    }),
                )
            }
        }
    }

    /// Deduplicates, writes and fsyncs one group commit. Returns each job's
    /// receipt and the commit's totals.
    fn store(&mut self, jobs: &[Job]) -> Result<(Vec<Receipt>, CommitSummary), IngestError> {
        let mut receipts = Vec::with_capacity(jobs.len());
        let mut fresh: Vec<RecordBatch> = Vec::new();
        let mut summary = CommitSummary::default();
        let small_rows: Vec<&AuthEvent> = jobs.iter().flat_map(|job| job.small.iter()).collect();
        // Built before the log is locked: staging must not wait on it.
        let small = if small_rows.is_empty() {
            None
        } else {
            Some(events_to_batch(&small_rows, Utc::now().timestamp_micros())?)
        };
        drop(small_rows);
        {
            let mut log = lock(&self.log);
            let small_accepted = match &small {
                Some(batch) => log.stage_batch(batch)?,
                None => Vec::new(),
            };
            let mut small_rest = small_accepted.as_slice();
            for job in jobs {
                let mut receipt = Receipt {
                    dead_letters: job.dead_letters.len() as u64,
                    ..Receipt::default()
                };
                let (mine, rest) = small_rest.split_at(job.small.len().min(small_rest.len()));
                small_rest = rest;
                let stored = mine.iter().filter(|&&keep| keep).count();
                receipt.stored += stored as u64;
                receipt.duplicates += (mine.len() - stored) as u64;
                for events in &job.events {
                    let accepted = log.stage_batch(events)?;
                    let stored = accepted.iter().filter(|&&keep| keep).count();
                    receipt.stored += stored as u64;
                    receipt.duplicates += (accepted.len() - stored) as u64;
                    if stored == accepted.len() {
                        fresh.push(events.clone());
                    } else if stored > 0 {
                        fresh.push(filter_record_batch(events, &BooleanArray::from(accepted))?);
                    }
                }
                summary.stored += receipt.stored;
                summary.duplicates += receipt.duplicates;
                receipts.push(receipt);
            }
            if let Some(batch) = small {
                let stored = small_accepted.iter().filter(|&&keep| keep).count();
                if stored == small_accepted.len() {
                    fresh.push(batch);
                } else if stored > 0 {
                    fresh.push(filter_record_batch(
                        &batch,
                        &BooleanArray::from(small_accepted),
                    )?);
                }
            }
        }
        let letters: Vec<DeadLetter> = jobs
            .iter()
            .flat_map(|j| j.dead_letters.iter().cloned())
            .collect();
        let mut positions = SourcePositions::new();
        for job in jobs {
            positions.merge(&job.positions);
        }
        let result = (|| {
            if !letters.is_empty() {
                // Rejections are rare: they go straight to their own sealed
                // files rather than through staging. They are durable
                // before any position past them is.
                summary.dead_letters = lock(&self.log).append_dead_letters(letters)?;
            }
            if !positions.is_empty() {
                let rows = fresh.iter().map(RecordBatch::num_rows).sum();
                self.journal_positions(&positions, rows)?;
            }
            if !fresh.is_empty() {
                self.append_to_segment(&fresh)?;
                summary.time_range = time_range(&fresh);
            }
            Ok(())
        })();
        if let Err(err) = result {
            // Nothing of this commit is acknowledged; its keys must not
            // block a retry.
            let mut log = lock(&self.log);
            for events in &fresh {
                log.unstage_batch(events);
            }
            return Err(err);
        }
        if !positions.is_empty() {
            lock(&self.log).advance_positions(&positions);
        }
        Ok((receipts, summary))
    }

    /// Appends a journal line for a commit carrying `positions` that will
    /// add `rows` rows to the segment, and syncs it. The line counts only
    /// once the segment holds those rows (see [`read_journal`]).
    fn journal_positions(
        &mut self,
        positions: &SourcePositions,
        rows: usize,
    ) -> Result<(), IngestError> {
        use std::io::Write;
        if self.segment.is_none() {
            self.segment = Some(self.open_segment()?);
        }
        let Some(segment) = self.segment.as_mut() else {
            return Ok(());
        };
        let path = journal_path(&segment.path);
        if segment.journal.is_none() {
            let file = File::options()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(IngestError::io("creating", &path))?;
            fsio::sync_dir(&self.dir)?;
            segment.journal = Some(file);
        }
        let line = format!(
            "{{\"rows\":{},\"positions\":{}}}\n",
            segment.rows + rows,
            positions.to_json()
        );
        let Some(journal) = segment.journal.as_mut() else {
            return Ok(());
        };
        journal
            .write_all(line.as_bytes())
            .map_err(IngestError::io("writing", &path))?;
        journal
            .sync_data()
            .map_err(IngestError::io("syncing", &path))
    }

    /// Appends a commit's batches to the segment, each as its own IPC
    /// message (concatenating them first would copy every row once more
    /// on this, the one commit thread), with one flush and one sync.
    fn append_to_segment(&mut self, batches: &[RecordBatch]) -> Result<(), IngestError> {
        if self.segment.is_none() {
            self.segment = Some(self.open_segment()?);
        }
        let Some(segment) = self.segment.as_mut() else {
            return Ok(());
        };
        let path = segment.path.clone();
        for batch in batches {
            segment.writer.write(batch)?;
        }
        segment
            .writer
            .flush()
            .map_err(|err| IngestError::io("writing", &path)(std::io::Error::other(err)))?;
        let file = segment.writer.get_mut().get_mut();
        file.sync_data()
            .map_err(IngestError::io("syncing", &path))?;
        segment.bytes = file
            .stream_position()
            .map_err(IngestError::io("reading the position in", &path))?;
        segment.rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        Ok(())
    }

    fn open_segment(&self) -> Result<Segment, IngestError> {
        let path = self
            .dir
            .join(format!("{}.{STAGING_EXTENSION}", ulid::Ulid::new()));
        let file = File::create(&path).map_err(IngestError::io("creating", &path))?;
        let reserved = (self.options.seal_events as u64)
            .saturating_mul(self.row_bytes)
            .saturating_mul(100 + RESERVE_MARGIN_PERCENT)
            / 100;
        let reserved = reserved.clamp(
            MIN_SEGMENT_BYTES,
            self.options.max_segment_bytes.max(MIN_SEGMENT_BYTES),
        );
        fsio::reserve(&file, reserved).map_err(IngestError::io("reserving space for", &path))?;
        // The reservation's metadata is synced here, once, and not by
        // the first commit's sync.
        file.sync_all().map_err(IngestError::io("syncing", &path))?;
        let writer = StreamWriter::try_new(
            BufWriter::with_capacity(STAGING_WRITE_BUFFER, file),
            &events_schema(),
        )?;
        // The segment's name must be durable before anything in it is
        // acknowledged.
        fsio::sync_dir(&self.dir)?;
        Ok(Segment {
            path,
            writer,
            journal: None,
            rows: 0,
            bytes: 0,
            reserved,
            opened: Instant::now(),
        })
    }
}

/// The earliest and latest event time among `batches`.
fn time_range(batches: &[RecordBatch]) -> Option<(i64, i64)> {
    batches
        .iter()
        .filter_map(|batch| {
            let times = batch
                .column_by_name("time")?
                .as_primitive::<TimestampMicrosecondType>();
            Some((min(times)?, max(times)?))
        })
        .reduce(|(lo, hi), (l, h)| (lo.min(l), hi.max(h)))
}

/// Seals one segment's events into Parquet and removes the segment, both
/// published under the exclusive staging lock.
fn seal_segment(
    log: &Mutex<EventLog>,
    dir: &Path,
    path: &Path,
    batches: &[RecordBatch],
) -> Result<(), IngestError> {
    let prepared = lock(log).prepare_staged(batches)?;
    if prepared.already_sealed > 0 {
        tracing::info!(
            segment = %path.display(),
            rows = prepared.already_sealed,
            "skipping staged rows sealed before a crash kept their segment"
        );
    }
    // Encoding and fsyncing the files happens without the log's lock, so
    // commits go on meanwhile.
    let written = prepared.write()?;
    let publish_lock = open_publish_lock(dir)?;
    publish_lock
        .lock()
        .map_err(IngestError::io("locking", dir.join(STAGING_LOCK)))?;
    let result = (|| {
        // A day's file goes into place and its head advances on disk (two
        // renames, three fsyncs) without the log's lock, which every commit
        // needs: held through a seal of many days, it stalled commits for
        // tens of milliseconds. Only the keys and the head are recorded
        // under it.
        for day in written.into_days() {
            let published = day.publish()?;
            lock(log).record_published(published)?;
        }
        std::fs::remove_file(path).map_err(IngestError::io("removing sealed segment", path))?;
        // Its positions are in the log's (and so in the files just
        // sealed); a journal left by a crash here is removed at start.
        remove_if_present(&journal_path(path))?;
        fsio::sync_dir(dir)
    })();
    // Closing the file releases the lock.
    drop(publish_lock);
    result
}

/// Gathers a commit's small column buffers into a few writes. A buffer at
/// least this large (the raw payloads of a big commit) goes to the file
/// directly rather than being copied through.
const STAGING_WRITE_BUFFER: usize = 256 << 10;

/// Reads a full segment back, and checks that it holds every row that was
/// committed to it.
///
/// The segment's committed bytes are mapped, not read: its batches are
/// decoded in place (the IPC writer aligns every buffer), so sealing
/// neither copies the segment out of the page cache, where the commits
/// just put it, nor asks the allocator for zeroed memory the size of each
/// commit. The mapping lives as long as the batches that point into it.
fn read_full_segment(segment: &FullSegment) -> Result<Vec<RecordBatch>, IngestError> {
    if segment.rows == 0 {
        // Opened (for a position journal, say) but never written to: not
        // even its schema may be on disk.
        return Ok(Vec::new());
    }
    let path = &segment.path;
    let damaged = |message: String| IngestError::Damaged {
        path: path.clone(),
        message,
    };
    let file = File::open(path).map_err(IngestError::io("opening", path))?;
    let on_disk = file
        .metadata()
        .map_err(IngestError::io("reading the size of", path))?
        .len();
    // Touching a mapped page past the file's end would kill the process
    // (SIGBUS): a file cut short is refused before it is mapped.
    if on_disk < segment.bytes {
        return Err(damaged(format!(
            "it is {on_disk} bytes long where {} were committed",
            segment.bytes
        )));
    }
    let len = usize::try_from(segment.bytes)
        .map_err(|_| damaged(format!("{} bytes cannot be mapped", segment.bytes)))?;
    let mapped = map_read_only(&file, len).map_err(IngestError::io("mapping", path))?;
    let mut committed = arrow::buffer::Buffer::from(bytes::Bytes::from_owner(mapped));
    let cannot_read = |err: arrow::error::ArrowError| {
        damaged(format!("its committed rows cannot be read back: {err}"))
    };
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    while !committed.is_empty() {
        match decoder.decode(&mut committed).map_err(cannot_read)? {
            Some(batch) => batches.push(batch),
            None => break,
        }
    }
    decoder.finish().map_err(cannot_read)?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows != segment.rows {
        return Err(damaged(format!(
            "the segment holds {rows} rows where {} were committed",
            segment.rows
        )));
    }
    Ok(batches)
}

/// Maps the first `len` bytes of a full segment, which the caller has
/// checked the file holds.
#[allow(unsafe_code)]
fn map_read_only(file: &File, len: usize) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: a mapping is undefined behaviour if the file changes under
    // it, and nothing writes to or shortens a full segment: the commit
    // thread has moved on to the next one, the seal thread only reads it
    // and then removes it (which leaves a live mapping intact), and the
    // log's lock file keeps a second process out of the data directory.
    unsafe { memmap2::MmapOptions::new().len(len).populate().map(file) }
}

fn open_publish_lock(dir: &Path) -> Result<File, IngestError> {
    let path = dir.join(STAGING_LOCK);
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(IngestError::io("opening", &path))
}

fn remove_if_present(path: &Path) -> Result<(), IngestError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(IngestError::io("removing", path)(err)),
    }
}

/// Seals every segment an earlier run left behind, with the positions its
/// journal holds for rows that made it to disk.
fn recover(log: &Mutex<EventLog>, dir: &Path) -> Result<(), IngestError> {
    for path in list_segments(dir)? {
        let batches = read_segment_batches(&path)?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let positions = read_journal(&journal_path(&path), rows)?;
        tracing::info!(segment = %path.display(), rows, "sealing staged events left by an earlier run");
        lock(log).advance_positions(&positions);
        seal_segment(log, dir, &path, &batches)?;
    }
    // A journal whose segment is gone was sealed already.
    let entries = std::fs::read_dir(dir).map_err(IngestError::io("listing", dir))?;
    for entry in entries {
        let path = entry.map_err(IngestError::io("listing", dir))?.path();
        if path
            .extension()
            .is_some_and(|e| e == STAGING_POSITIONS_EXTENSION)
            && !path.with_extension(STAGING_EXTENSION).exists()
        {
            remove_if_present(&path)?;
        }
    }
    Ok(())
}

/// The positions of a segment's journal whose commits are on disk: a line
/// counts if the segment holds at least the rows it names (a line is
/// synced before its commit's rows are written). A torn last line was
/// never acknowledged.
pub fn read_journal(path: &Path, segment_rows: usize) -> Result<SourcePositions, IngestError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SourcePositions::new());
        }
        Err(err) => return Err(IngestError::io("reading", path)(err)),
    };
    let mut positions = SourcePositions::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(entry) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let rows = entry.get("rows").and_then(serde_json::Value::as_u64);
        let held = entry
            .get("positions")
            .map(|p| SourcePositions::from_json(&p.to_string()));
        match (rows, held) {
            (Some(rows), Some(Ok(held))) if rows as usize <= segment_rows => positions.merge(&held),
            (Some(_), Some(Ok(_))) => {}
            _ => {
                tracing::warn!(journal = %path.display(), "ignoring an unreadable position journal line")
            }
        }
    }
    Ok(positions)
}

/// The staging segments under `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let mut segments = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(segments),
        Err(err) => return Err(IngestError::io("listing", dir)(err)),
    };
    for entry in entries {
        let entry = entry.map_err(IngestError::io("listing", dir))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == STAGING_EXTENSION) {
            segments.push(path);
        }
    }
    segments.sort();
    Ok(segments)
}

/// Reads a segment's complete batches. A torn last message is what a crash
/// in the middle of an (unacknowledged) commit leaves, and is ignored.
pub fn read_segment_batches(path: &Path) -> Result<Vec<RecordBatch>, IngestError> {
    let file = File::open(path).map_err(IngestError::io("opening", path))?;
    let reader = match StreamReader::try_new(BufReader::new(file), None) {
        Ok(reader) => reader,
        // Not even the schema made it to disk: nothing was acknowledged.
        Err(_) => return Ok(Vec::new()),
    };
    let mut batches = Vec::new();
    for batch in reader {
        match batch {
            Ok(batch) => batches.push(batch),
            Err(err) => {
                tracing::warn!(segment = %path.display(), error = %err, "ignoring a torn, unacknowledged tail");
                break;
            }
        }
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{TimeZone, Utc};

    use authtrail_schemas::{Action, Outcome};

    use super::*;

    /// A segment file holding `commits` commits of two rows each, followed
    /// by reserved zeros; returns it with the bytes its commits take.
    fn segment_file(dir: &Path, commits: usize) -> (PathBuf, u64) {
        let path = dir.join("segment.arrows");
        let file = File::create(&path).unwrap();
        fsio::reserve(&file, 1 << 20).unwrap();
        let mut writer = StreamWriter::try_new(BufWriter::new(file), &events_schema()).unwrap();
        for commit in 0..commits {
            let time = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
            let events: Vec<AuthEvent> = (0..2)
                .map(|row| {
                    AuthEvent::new(
                        format!("e{commit}-{row}"),
                        time,
                        "okta",
                        Action::Login,
                        Outcome::Failure,
                    )
                })
                .collect();
            let refs: Vec<&AuthEvent> = events.iter().collect();
            writer.write(&events_to_batch(&refs, 0).unwrap()).unwrap();
        }
        writer.flush().unwrap();
        let bytes = writer.get_mut().get_mut().stream_position().unwrap();
        (path, bytes)
    }

    #[test]
    fn a_full_segment_is_read_back_with_every_committed_row() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = segment_file(dir.path(), 3);
        let batches = read_full_segment(&FullSegment {
            path,
            rows: 6,
            bytes,
        })
        .unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 6);
        assert_eq!(batches.len(), 3);
        // A segment no commit wrote to has nothing to read.
        let empty = dir.path().join("empty.arrows");
        File::create(&empty).unwrap();
        let batches = read_full_segment(&FullSegment {
            path: empty,
            rows: 0,
            bytes: 0,
        })
        .unwrap();
        assert!(batches.is_empty());
    }

    #[test]
    fn a_full_segment_missing_committed_rows_is_refused_not_sealed_short() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = segment_file(dir.path(), 3);
        // More rows committed than the file holds.
        let err = read_full_segment(&FullSegment {
            path: path.clone(),
            rows: 8,
            bytes,
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("holds 6 rows where 8 were committed"),
            "{err}"
        );
        // The file ends inside a committed message.
        let err = read_full_segment(&FullSegment {
            path,
            rows: 6,
            bytes: bytes - 10,
        })
        .unwrap_err();
        assert!(err.to_string().contains("cannot be read back"), "{err}");
    }

    #[test]
    fn a_full_segment_cut_short_on_disk_is_refused_before_it_is_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = segment_file(dir.path(), 3);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(bytes - 100)
            .unwrap();
        let err = read_full_segment(&FullSegment {
            path,
            rows: 6,
            bytes,
        })
        .unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "{} bytes long where {bytes} were committed",
                bytes - 100
            )),
            "{err}"
        );
    }
}
