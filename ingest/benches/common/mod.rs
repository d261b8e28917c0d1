//! What the ingest benchmarks share: the fixed demo they read (1,500
//! users over 7 days, seed 42: 61,306 OCSF records), and a delivery of
//! its records parsed into one Arrow batch, as the server's parsing pool
//! does it.

use std::io::Read;

use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

use authtrail_ingest::adapters::{self, Adapter, AdapterOptions};
use authtrail_ingest::demo::{DemoConfig, DemoReader};
use authtrail_schemas::arrow_schema::EventBatchBuilder;

/// Records per delivery, as in `bench http`.
pub const BATCH: usize = 1000;

/// The demo as NDJSON text, and the OCSF adapter that reads it.
pub fn demo() -> (String, Box<dyn Adapter>) {
    let start = NaiveDate::from_ymd_opt(2026, 11, 2);
    let mut text = String::new();
    DemoReader::new(DemoConfig::new(1500, 7, 42, start))
        .read_to_string(&mut text)
        .unwrap();
    let adapter = adapters::build("ocsf", &AdapterOptions::default()).unwrap();
    (text, adapter)
}

/// One delivery's records parsed into one Arrow batch.
pub fn parse_batch(adapter: &dyn Adapter, lines: &[&str]) -> RecordBatch {
    let bytes = lines.iter().map(|line| line.len()).sum();
    let mut builder = EventBatchBuilder::with_capacity(lines.len(), bytes);
    for line in lines {
        adapter.parse(line, &mut builder).unwrap();
    }
    builder.finish(0).unwrap()
}
