//! How long the OCSF adapter takes per demo record, parsing it and adding
//! its row to an Arrow batch, as the server does for every event of an
//! NDJSON delivery. One thread, no I/O: the part of a batch-ingested
//! event's CPU that this crate's adapter decides.
//!
//!   cargo bench -p authtrail-ingest --bench parse
//!
//! Prints the best of several passes over 61,306 records (a fixed
//! demo: 1,500 users over 7 days), in nanoseconds per record.

// A benchmark reports on stdout, and stops at the first surprise.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::Read;
use std::time::Instant;

use chrono::NaiveDate;

use authtrail_ingest::adapters::{self, AdapterOptions};
use authtrail_ingest::demo::{DemoConfig, DemoReader};
use authtrail_schemas::arrow_schema::EventBatchBuilder;

/// Records per batch, as in the benchmark's deliveries.
const BATCH: usize = 1000;
const PASSES: usize = 7;

fn main() {
    let start = NaiveDate::from_ymd_opt(2026, 11, 2);
    let mut text = String::new();
    DemoReader::new(DemoConfig::new(1500, 7, 42, start))
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let adapter = adapters::build("ocsf", &AdapterOptions::default()).unwrap();
    let mut best = f64::MAX;
    for _ in 0..PASSES {
        let started = Instant::now();
        for chunk in lines.chunks(BATCH) {
            let bytes = chunk.iter().map(|line| line.len()).sum();
            let mut builder = EventBatchBuilder::with_capacity(chunk.len(), bytes);
            for line in chunk {
                adapter.parse(line, &mut builder).unwrap();
            }
            std::hint::black_box(builder.finish(0).unwrap());
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "ocsf: {} records, {:.0} ns per record parsed into an Arrow row (best of {PASSES} passes)",
        lines.len(),
        best * 1e9 / lines.len() as f64
    );
}
