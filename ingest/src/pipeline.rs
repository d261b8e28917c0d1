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

use chrono::{DateTime, Utc};
use rayon::prelude::*;

use authtrail_schemas::{AppendLog, AuthEvent, CommitSummary, DeadLetter};

use crate::IngestError;
use crate::adapters::{Adapter, ParseError, util};
use crate::records::{self, ChunkReader, Framing, FramingError, JsonShape, Record};
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
    /// Events, in input order.
    pub events: Vec<AuthEvent>,
    /// Rejected records.
    pub dead_letters: Vec<DeadLetter>,
    /// Valid records that are not authentication events, by kind.
    pub skipped: BTreeMap<String, u64>,
    /// Records looked at.
    pub records: u64,
}

impl Parsed {
    fn absorb(&mut self, other: Parsed) {
        self.events.extend(other.events);
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

/// Parses records with `adapter`, in parallel, keeping input order.
pub fn parse_records(
    adapter: &dyn Adapter,
    records: &[Record<'_>],
    origin: &str,
    received_at: DateTime<Utc>,
) -> Parsed {
    let pieces: Vec<Parsed> = records
        .par_chunks(1024)
        .map(|chunk| {
            let mut parsed = Parsed::default();
            for record in chunk {
                parsed.records += 1;
                match adapter.parse(record.text, &mut parsed.events) {
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
        })
        .collect();
    let mut all = Parsed::default();
    for piece in pieces {
        all.absorb(piece);
    }
    all
}

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
    /// Records read.
    pub records: u64,
    /// What the commits stored.
    pub committed: CommitSummary,
    /// Valid records that are not authentication events, by kind.
    pub skipped: BTreeMap<String, u64>,
    /// The first rejections, for display (all are in `dead_letters`).
    pub rejections: Vec<Rejection>,
}

/// How many rejections a report keeps for display.
const REJECTIONS_SHOWN: usize = 100;

/// Streams inputs through one adapter into the event log.
pub struct FileIngest<'a> {
    adapter: &'a dyn Adapter,
    log: &'a mut EventLog,
    options: IngestOptions,
    pending: Parsed,
    report: IngestReport,
}

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

impl<'a> FileIngest<'a> {
    /// A driver writing into `log` through `adapter`.
    pub fn new(adapter: &'a dyn Adapter, log: &'a mut EventLog, options: IngestOptions) -> Self {
        FileIngest {
            adapter,
            log,
            options,
            pending: Parsed::default(),
            report: IngestReport::default(),
        }
    }

    /// The totals so far (committed only).
    pub fn report(&self) -> &IngestReport {
        &self.report
    }

    /// Reads one whole input (already decompressed) named `origin`.
    /// `progress` is called after each chunk with the totals so far.
    pub fn ingest(
        &mut self,
        input: &mut dyn BufRead,
        origin: &str,
        progress: &mut dyn FnMut(&IngestReport),
    ) -> Result<(), IngestError> {
        let io_err = |err| IngestError::io("reading", origin)(err);
        let shape = match self.adapter.framing() {
            Framing::Text => JsonShape::Lines,
            Framing::Json => records::detect_json_shape(input).map_err(io_err)?,
        };
        if shape == JsonShape::Document {
            let mut document = Vec::new();
            input.read_to_end(&mut document).map_err(io_err)?;
            let received_at = Utc::now();
            match records::split_document(&document) {
                Ok(records) => {
                    for batch in records.chunks(self.options.commit_events.max(1)) {
                        let parsed = parse_records(self.adapter, batch, origin, received_at);
                        self.add(parsed, origin)?;
                    }
                }
                Err(err) => self.add_framing_errors(vec![err], origin, received_at)?,
            }
            progress(&self.report);
            return Ok(());
        }
        let mut chunks = ChunkReader::new(input, self.options.chunk_bytes);
        while let Some(chunk) = chunks.next_chunk().map_err(io_err)? {
            let received_at = Utc::now();
            let (records, errors) = records::split_lines(&chunk);
            let parsed = parse_records(self.adapter, &records, origin, received_at);
            self.add(parsed, origin)?;
            self.add_framing_errors(errors, origin, received_at)?;
            progress(&self.report);
        }
        Ok(())
    }

    fn add_framing_errors(
        &mut self,
        errors: Vec<FramingError>,
        origin: &str,
        received_at: DateTime<Utc>,
    ) -> Result<(), IngestError> {
        if errors.is_empty() {
            return Ok(());
        }
        let mut parsed = Parsed::default();
        for error in errors {
            parsed.records += 1;
            parsed.dead_letters.push(dead_letter(
                self.adapter.name(),
                origin,
                error.line,
                &error.raw,
                error.reason,
                received_at,
            ));
        }
        self.add(parsed, origin)
    }

    fn add(&mut self, parsed: Parsed, _origin: &str) -> Result<(), IngestError> {
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
        if self.pending.events.len() >= self.options.commit_events {
            self.commit()?;
        }
        Ok(())
    }

    /// Commits what is pending.
    pub fn commit(&mut self) -> Result<(), IngestError> {
        let pending = std::mem::take(&mut self.pending);
        if pending.records == 0 && pending.events.is_empty() && pending.dead_letters.is_empty() {
            return Ok(());
        }
        let summary = self.log.append(pending.events, pending.dead_letters)?;
        self.report.records += pending.records;
        self.report.committed.absorb(&summary);
        for (kind, count) in pending.skipped {
            *self.report.skipped.entry(kind).or_default() += count;
        }
        Ok(())
    }

    /// Commits what is pending and returns the totals.
    pub fn finish(mut self) -> Result<IngestReport, IngestError> {
        self.commit()?;
        Ok(self.report)
    }
}
