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

mod common;

use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;

use authtrail_ingest::store::{EventLog, LogOptions};
use common::{BATCH, demo, parse_batch};

const PASSES: usize = 9;

fn main() {
    let (text, adapter) = demo();
    let lines: Vec<&str> = text.lines().collect();
    let batches: Vec<RecordBatch> = lines
        .chunks(BATCH)
        .map(|chunk| parse_batch(adapter.as_ref(), chunk))
        .collect();
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
