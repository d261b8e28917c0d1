//! Records → adapter → events and dead letters, and the file-ingest driver
//! that streams an input through it into the event log in group commits.
//!
//! Parsing runs on every core (records are parsed in parallel, in order);
//! the log then seals each day's rows in parallel. Nothing read is lost:
//! every record ends up stored, as a duplicate of something stored, as a
//! dead letter, or counted as skipped (valid, but not authentication).

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{AsArray, RecordBatch};
use chrono::{DateTime, Utc};
use rayon::prelude::*;

use authtrail_schemas::arrow_schema::EventBatchBuilder;
use authtrail_schemas::{AuthEvent, CommitSummary, DeadLetter, EventSink, Outcome};

use crate::IngestError;
use crate::adapters::{Adapter, ParseError, util};
use crate::records::{self, Chunk, ChunkReader, Framing, JsonShape, Record};
use crate::store::EventLog;

/// A record that became a dead letter, as reported back to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Where the record came from.
    pub origin: String,
    /// Its 1-based line or element number.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

/// What parsing a set of records produced.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Events, in input order, in the segments parsing produced them in
    /// (joining them would copy every event once more).
    pub events: Vec<Vec<AuthEvent>>,
    /// Events already built into `events` batches, in input order, where
    /// the pipeline builds them as it parses (file ingest).
    pub batches: Vec<RecordBatch>,
    /// Events in all segments and batches.
    pub event_count: usize,
    /// Rejected records.
    pub dead_letters: Vec<DeadLetter>,
    /// Valid records that are not authentication events, by kind.
    pub skipped: BTreeMap<String, u64>,
    /// Records looked at.
    pub records: u64,
}

impl Parsed {
    /// Events by outcome (indexed by `Outcome as usize`), in events and
    /// batches alike.
    pub fn events_by_outcome(&self) -> [u64; Outcome::ALL.len()] {
        let mut counts = [0u64; Outcome::ALL.len()];
        for event in self.events.iter().flatten() {
            counts[event.outcome as usize] += 1;
        }
        for batch in &self.batches {
            let Some(outcomes) = batch.column_by_name("outcome") else {
                continue;
            };
            for outcome in outcomes.as_string::<i32>().iter().flatten() {
                if let Some(outcome) = Outcome::parse(outcome) {
                    counts[outcome as usize] += 1;
                }
            }
        }
        counts
    }

    /// Appends another piece's results, in order.
    pub fn absorb(&mut self, other: Parsed) {
        self.events
            .extend(other.events.into_iter().filter(|s| !s.is_empty()));
        self.batches.extend(other.batches);
        self.event_count += other.event_count;
        self.dead_letters.extend(other.dead_letters);
        for (kind, count) in other.skipped {
            *self.skipped.entry(kind).or_default() += count;
        }
        self.records += other.records;
    }
}

/// Builds the dead letter for a rejected record.
pub fn dead_letter(
    source: &str,
    origin: &str,
    line: u64,
    raw: &[u8],
    reason: String,
    received_at: DateTime<Utc>,
) -> DeadLetter {
    let mut key = Vec::with_capacity(origin.len() + raw.len() + 24);
    key.extend_from_slice(origin.as_bytes());
    key.push(0);
    key.extend_from_slice(line.to_string().as_bytes());
    key.push(0);
    key.extend_from_slice(raw);
    DeadLetter {
        dead_letter_id: util::hashed_id(source, &String::from_utf8_lossy(&key)),
        received_at,
        source: source.to_owned(),
        origin: origin.to_owned(),
        line,
        reason,
        raw: raw.to_vec(),
    }
}

/// The dead letter of a record that could not even be framed.
fn framing_dead_letter(
    adapter: &dyn Adapter,
    origin: &str,
    error: records::FramingError,
    received_at: DateTime<Utc>,
) -> DeadLetter {
    dead_letter(
        adapter.name(),
        origin,
        error.line,
        &error.raw,
        error.reason,
        received_at,
    )
}

/// A whole input refused as one record (a document that does not frame).
fn refused_whole(
    adapter: &dyn Adapter,
    origin: &str,
    error: records::FramingError,
    received_at: DateTime<Utc>,
) -> Parsed {
    Parsed {
        records: 1,
        dead_letters: vec![framing_dead_letter(adapter, origin, error, received_at)],
        ..Parsed::default()
    }
}

/// What parsed events are collected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Owned events, in [`Parsed::events`] (for a handful of events, which
    /// the stager builds into one batch with other small deliveries).
    Events,
    /// One Arrow batch per parsed piece, in [`Parsed::batches`], stamped
    /// with this ingest time (µs since the epoch). Adapters that hand over
    /// borrowed events have each field copied once, from the record into
    /// its column.
    Batches {
        /// `ingested_at` of every row.
        ingested_at_micros: i64,
    },
}

/// Parses a run of records with `adapter` into `sink`, in order; the
/// returned `Parsed` holds the dead letters and counts, not the events.
fn parse_into(
    adapter: &dyn Adapter,
    records: &[Record<'_>],
    origin: &str,
    received_at: DateTime<Utc>,
    sink: &mut dyn EventSink,
) -> Parsed {
    let mut parsed = Parsed::default();
    for record in records {
        parsed.records += 1;
        match adapter.parse(record.text, sink) {
            Ok(()) => {}
            Err(ParseError::Rejected(reason)) => parsed.dead_letters.push(dead_letter(
                adapter.name(),
                origin,
                record.line,
                record.text.as_bytes(),
                reason,
                received_at,
            )),
            Err(ParseError::NotAuthentication(kind)) => {
                *parsed.skipped.entry(kind).or_default() += 1
            }
        }
    }
    parsed
}

/// Parses a run of records with `adapter`, in order, into `output`.
fn parse_sequential(
    adapter: &dyn Adapter,
    records: &[Record<'_>],
    origin: &str,
    received_at: DateTime<Utc>,
    output: Output,
) -> Result<Parsed, IngestError> {
    match output {
        Output::Events => {
            let mut events = Vec::with_capacity(records.len());
            let mut parsed = parse_into(adapter, records, origin, received_at, &mut events);
            parsed.event_count = events.len();
            parsed.events.push(events);
            Ok(parsed)
        }
        Output::Batches { ingested_at_micros } => {
            let bytes = records.iter().map(|record| record.text.len()).sum();
            let mut builder = EventBatchBuilder::with_capacity(records.len(), bytes);
            let mut parsed = parse_into(adapter, records, origin, received_at, &mut builder);
            parsed.event_count = builder.len();
            if !builder.is_empty() {
                parsed.batches.push(builder.finish(ingested_at_micros)?);
            }
            Ok(parsed)
        }
    }
}

/// Joins pieces parsed into batches, in order.
fn join_pieces(pieces: Vec<Result<Parsed, IngestError>>) -> Result<Parsed, IngestError> {
    let mut all = Parsed::default();
    for piece in pieces {
        all.absorb(piece?);
    }
    Ok(all)
}

/// Parses records with `adapter`, in parallel, keeping input order; the
/// events come out as Arrow batches.
pub fn parse_records_to_batches(
    adapter: &dyn Adapter,
    records: &[Record<'_>],
    origin: &str,
    received_at: DateTime<Utc>,
) -> Result<Parsed, IngestError> {
    let output = Output::Batches {
        ingested_at_micros: received_at.timestamp_micros(),
    };
    join_pieces(
        records
            .par_chunks(1024)
            .map(|chunk| parse_sequential(adapter, chunk, origin, received_at, output))
            .collect(),
    )
}

/// Splits whole lines (the first numbered `first_line`) and parses them;
/// lines that are not UTF-8 become dead letters, in line order with the
/// rejected ones.
fn parse_lines(
    adapter: &dyn Adapter,
    first_line: u64,
    bytes: &[u8],
    origin: &str,
    received_at: DateTime<Utc>,
    output: Output,
) -> Result<Parsed, IngestError> {
    let (records, errors) = records::split_lines(first_line, bytes);
    let mut parsed = parse_sequential(adapter, &records, origin, received_at, output)?;
    if !errors.is_empty() {
        for error in errors {
            parsed.records += 1;
            parsed
                .dead_letters
                .push(framing_dead_letter(adapter, origin, error, received_at));
        }
        parsed.dead_letters.sort_by_key(|letter| letter.line);
    }
    Ok(parsed)
}

/// Splits a chunk of lines and parses it, piece by piece in parallel;
/// lines that are not UTF-8 become dead letters. The events come out as
/// Arrow batches, one per piece.
pub fn parse_chunk_to_batches(
    adapter: &dyn Adapter,
    chunk: &Chunk,
    origin: &str,
    received_at: DateTime<Utc>,
) -> Result<Parsed, IngestError> {
    let output = Output::Batches {
        ingested_at_micros: received_at.timestamp_micros(),
    };
    join_pieces(
        records::pieces(chunk, PIECE_BYTES)
            .into_par_iter()
            .map(|(first_line, bytes)| {
                parse_lines(adapter, first_line, bytes, origin, received_at, output)
            })
            .collect(),
    )
}

/// Bytes of input one parallel parsing task takes on.
const PIECE_BYTES: usize = 256 << 10;

/// Tuning of the file-ingest driver.
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// Events gathered before a group commit (bounds memory).
    pub commit_events: usize,
    /// Bytes of input read and parsed at a time.
    pub chunk_bytes: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            commit_events: 256 * 1024,
            chunk_bytes: 16 << 20,
        }
    }
}

/// Totals of an ingest run.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// Records read and committed.
    pub records: u64,
    /// What the commits stored.
    pub committed: CommitSummary,
    /// Valid records that are not authentication events, by kind.
    pub skipped: BTreeMap<String, u64>,
    /// The first rejections, for display (all are in `dead_letters`).
    pub rejections: Vec<Rejection>,
}

/// What a progress callback is told.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Records parsed so far (this input and those before).
    pub records_parsed: u64,
    /// Events durably stored so far.
    pub stored: u64,
}

/// How many rejections a report keeps for display.
const REJECTIONS_SHOWN: usize = 100;

/// Counts the bytes read through it, for progress.
pub struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    /// Wraps `inner`; `count` grows by every byte read.
    pub fn new(inner: R, count: Arc<AtomicU64>) -> Self {
        CountingReader { inner, count }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// The committing side of a [`FileIngest`]: gathers parsed records and
/// group-commits them to the log.
struct Committer<'a> {
    log: &'a mut EventLog,
    commit_events: usize,
    pending: Parsed,
    report: IngestReport,
    stored: &'a AtomicU64,
}

impl Committer<'_> {
    fn add(&mut self, parsed: Parsed) -> Result<(), IngestError> {
        for letter in &parsed.dead_letters {
            if self.report.rejections.len() < REJECTIONS_SHOWN {
                self.report.rejections.push(Rejection {
                    origin: letter.origin.clone(),
                    line: letter.line,
                    reason: letter.reason.clone(),
                });
            }
        }
        self.pending.absorb(parsed);
        if self.pending.event_count >= self.commit_events {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), IngestError> {
        let pending = std::mem::take(&mut self.pending);
        if pending.records == 0 && pending.event_count == 0 && pending.dead_letters.is_empty() {
            return Ok(());
        }
        let summary = self
            .log
            .append_batches(&pending.batches, pending.dead_letters)?;
        self.report.records += pending.records;
        self.report.committed.absorb(&summary);
        self.stored.fetch_add(summary.stored, Ordering::Relaxed);
        for (kind, count) in pending.skipped {
            *self.report.skipped.entry(kind).or_default() += count;
        }
        Ok(())
    }
}

/// Streams inputs through one adapter into the event log: one thread reads
/// and parses (on every core), another commits, so that parsing the next
/// chunk overlaps writing the last.
pub struct FileIngest<'a> {
    adapter: &'a dyn Adapter,
    options: IngestOptions,
    committer: Committer<'a>,
    parsed: u64,
}

impl<'a> FileIngest<'a> {
    /// A driver writing into `log` through `adapter`; `stored` counts the
    /// events stored, for progress.
    pub fn new(
        adapter: &'a dyn Adapter,
        log: &'a mut EventLog,
        options: IngestOptions,
        stored: &'a AtomicU64,
    ) -> Self {
        FileIngest {
            adapter,
            options,
            committer: Committer {
                log,
                commit_events: options.commit_events.max(1),
                pending: Parsed::default(),
                report: IngestReport::default(),
                stored,
            },
            parsed: 0,
        }
    }

    /// Reads one whole input (already decompressed) named `origin`.
    /// `progress` is called after each chunk.
    pub fn ingest(
        &mut self,
        input: &mut dyn BufRead,
        origin: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), IngestError> {
        let io_err = |err| IngestError::io("reading", origin)(err);
        let shape = match self.adapter.framing() {
            Framing::Text => JsonShape::Lines,
            Framing::Json => records::detect_json_shape(input).map_err(io_err)?,
        };
        if shape == JsonShape::Document {
            return self.ingest_document(input, origin, progress);
        }
        let adapter = self.adapter;
        let stored = self.committer.stored;
        let committer = &mut self.committer;
        let mut parsed_total = self.parsed;
        let mut chunks = ChunkReader::new(input, self.options.chunk_bytes);
        // Bounded: at most two parsed chunks wait for the committer.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Parsed>(2);
        let result = std::thread::scope(|scope| {
            let committing = scope.spawn(move || -> Result<(), IngestError> {
                for parsed in receiver {
                    committer.add(parsed)?;
                }
                Ok(())
            });
            let mut read_result = Ok(());
            loop {
                let chunk = match chunks.next_chunk() {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(err) => {
                        read_result = Err(io_err(err));
                        break;
                    }
                };
                let parsed = match parse_chunk_to_batches(adapter, &chunk, origin, Utc::now()) {
                    Ok(parsed) => parsed,
                    Err(err) => {
                        read_result = Err(err);
                        break;
                    }
                };
                parsed_total += parsed.records;
                // A closed channel means the committer failed; its error
                // is reported below.
                if sender.send(parsed).is_err() {
                    break;
                }
                progress(Progress {
                    records_parsed: parsed_total,
                    stored: stored.load(Ordering::Relaxed),
                });
            }
            drop(sender);
            let committed = committing
                .join()
                .unwrap_or(Err(IngestError::CommitThreadLost));
            committed.and(read_result)
        });
        self.parsed = parsed_total;
        result
    }

    fn ingest_document(
        &mut self,
        input: &mut dyn BufRead,
        origin: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), IngestError> {
        let mut document = Vec::new();
        input
            .read_to_end(&mut document)
            .map_err(IngestError::io("reading", origin))?;
        let received_at = Utc::now();
        match records::split_document(&document) {
            Ok(records) => {
                for batch in records.chunks(self.committer.commit_events) {
                    let parsed =
                        parse_records_to_batches(self.adapter, batch, origin, received_at)?;
                    self.parsed += parsed.records;
                    self.committer.add(parsed)?;
                }
            }
            Err(error) => {
                self.parsed += 1;
                self.committer
                    .add(refused_whole(self.adapter, origin, error, received_at))?;
            }
        }
        progress(Progress {
            records_parsed: self.parsed,
            stored: self.committer.stored.load(Ordering::Relaxed),
        });
        Ok(())
    }

    /// Commits what is pending and returns the totals.
    pub fn finish(mut self) -> Result<IngestReport, IngestError> {
        self.committer.commit()?;
        Ok(self.committer.report)
    }
}

/// Parses one in-memory body (an HTTP request, a Kafka message) of any
/// framing the adapter takes: NDJSON or text lines, a JSON array, or one
/// JSON document. Records that do not parse become dead letters named by
/// line; a body that starts as an array but is not one is refused whole,
/// as one dead letter.
pub fn parse_body(
    adapter: &dyn Adapter,
    body: &[u8],
    origin: &str,
    received_at: DateTime<Utc>,
    output: Output,
) -> Result<Parsed, IngestError> {
    let one_line = memchr::memchr(b'\n', body.strip_suffix(b"\n").unwrap_or(body)).is_none();
    let shape = match adapter.framing() {
        Framing::Text => JsonShape::Lines,
        // A single-line body (one webhook delivery) is the same either way,
        // except for an array, whose elements are the records.
        Framing::Json if one_line && body.trim_ascii_start().first() != Some(&b'[') => {
            JsonShape::Lines
        }
        // Reading a byte slice cannot fail.
        Framing::Json => records::detect_json_shape(&mut &body[..]).unwrap_or(JsonShape::Lines),
    };
    match shape {
        JsonShape::Lines => parse_lines(adapter, 1, body, origin, received_at, output),
        JsonShape::Document => match records::split_document(body) {
            Ok(records) => parse_sequential(adapter, &records, origin, received_at, output),
            Err(error) => Ok(refused_whole(adapter, origin, error, received_at)),
        },
    }
}
