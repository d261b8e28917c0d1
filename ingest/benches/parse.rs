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

mod common;

use std::time::Instant;

use common::{BATCH, demo, parse_batch};

const PASSES: usize = 7;

fn main() {
    let (text, adapter) = demo();
    let lines: Vec<&str> = text.lines().collect();
    let mut best = f64::MAX;
    for _ in 0..PASSES {
        let started = Instant::now();
        for chunk in lines.chunks(BATCH) {
            std::hint::black_box(parse_batch(adapter.as_ref(), chunk));
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "ocsf: {} records, {:.0} ns per record parsed into an Arrow row (best of {PASSES} passes)",
        lines.len(),
        best * 1e9 / lines.len() as f64
    );
}
