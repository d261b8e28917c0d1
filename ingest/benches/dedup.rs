//! How long deduplication takes per event, on the two paths every
//! stored event goes through: the commit checks each row's idempotency
//! key against the log and reserves it (`EventLog::stage_batch`), and
//! the seal sorts a segment's rows by time and checks their keys again
//! against what is already sealed (`EventLog::prepare_staged`). One
//! thread, no I/O: the log is opened empty in a temporary directory.
//!
//!   cargo bench -p authtrail-ingest --bench dedup
//!
//! Prints the best of several passes over 61,306 demo events (1,500
//! users over 7 days, in Arrow batches of 1,000), in nanoseconds per
//! event for each path.

// A benchmark reports on stdout, and stops at the first surprise.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::Read;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

use authtrail_ingest::adapters::{self, AdapterOptions};
use authtrail_ingest::demo::{DemoConfig, DemoReader};
use authtrail_ingest::store::{EventLog, LogOptions};
use authtrail_schemas::arrow_schema::EventBatchBuilder;

/// Events per batch, as in the benchmark's deliveries.
const BATCH: usize = 1000;
const PASSES: usize = 9;

fn main() {
    let batches = demo_batches();
    let events: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut best_stage = Duration::MAX;
    let mut best_prepare = Duration::MAX;
    for _ in 0..PASSES {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
        let started = Instant::now();
        for batch in &batches {
            let accepted = log.stage_batch(batch).unwrap();
            assert!(accepted.iter().all(|&new| new), "the demo repeats no event");
        }
        best_stage = best_stage.min(started.elapsed());
        let started = Instant::now();
        let prepared = log.prepare_staged(&batches).unwrap();
        best_prepare = best_prepare.min(started.elapsed());
        assert!(prepared.file_count() >= 7, "one file per day of the demo");
    }
    let per_event = |d: Duration| d.as_secs_f64() * 1e9 / events as f64;
    println!(
        "dedup: {events} events; commit (stage_batch) {:.0} ns, seal (prepare_staged) {:.0} ns per event (best of {PASSES} passes)",
        per_event(best_stage),
        per_event(best_prepare)
    );
}

/// The demo's events as the server's parsing pool builds them.
fn demo_batches() -> Vec<RecordBatch> {
    let start = NaiveDate::from_ymd_opt(2026, 11, 2);
    let mut text = String::new();
    DemoReader::new(DemoConfig::new(1500, 7, 42, start))
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let adapter = adapters::build("ocsf", &AdapterOptions::default()).unwrap();
    lines
        .chunks(BATCH)
        .map(|chunk| {
            let bytes = chunk.iter().map(|line| line.len()).sum();
            let mut builder = EventBatchBuilder::with_capacity(chunk.len(), bytes);
            for line in chunk {
                adapter.parse(line, &mut builder).unwrap();
            }
            builder.finish(0).unwrap()
        })
        .collect()
}
