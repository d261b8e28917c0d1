//! Golden tests of the source adapters: every input file under
//! `tests/data/adapters/<source>/` is framed and parsed as `authtrail ingest
//! file` would, and the result is compared with `<input>.expected.json`
//! beside it. Adding a case is adding a file. Every case is also parsed
//! straight into Arrow columns, which must give the same batch.
//!
//! `UPDATE_GOLDEN=1 cargo test -p authtrail-ingest --test golden` rewrites
//! the expected files; review the diff before committing it.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use chrono::TimeZone;
use serde_json::{Value, json};

use authtrail_ingest::adapters::{self, AdapterOptions, Framing, GenericMapping, ParseError};
use authtrail_ingest::demo::{DemoConfig, DemoReader};
use authtrail_ingest::pipeline::{Output, parse_body};
use authtrail_ingest::records::{self, Chunk, JsonShape};
use authtrail_schemas::AuthEvent;
use authtrail_schemas::arrow_schema::{EventBatchBuilder, events_to_batch};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/adapters")
}

fn options(dir: &Path) -> AdapterOptions {
    let mapping = dir.join("mapping.toml");
    AdapterOptions {
        syslog_year: None,
        generic_mapping: mapping.is_file().then(|| {
            GenericMapping::from_toml(&std::fs::read_to_string(&mapping).unwrap()).unwrap()
        }),
        // Fixed, so that syslog year inference is reproducible.
        now: chrono::Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap(),
    }
}

/// Parses one input file into the golden representation: one entry per
/// record, with its events, its rejection or its skip.
fn run_case(source: &str, input: &Path) -> Value {
    let adapter = adapters::build(source, &options(input.parent().unwrap())).unwrap();
    let bytes = std::fs::read(input).unwrap();
    let mut reader = std::io::Cursor::new(bytes.clone());
    let shape = match adapter.framing() {
        Framing::Text => JsonShape::Lines,
        Framing::Json => records::detect_json_shape(&mut reader).unwrap(),
    };
    let chunk = Chunk {
        first_line: 1,
        bytes: bytes.clone(),
    };
    let records = match shape {
        JsonShape::Lines => {
            let (records, errors) = records::split_lines(chunk.first_line, &chunk.bytes);
            assert!(
                errors.is_empty(),
                "{}: framing errors {errors:?}",
                input.display()
            );
            records
        }
        JsonShape::Document => records::split_document(&bytes).unwrap(),
    };
    let mut out = Vec::new();
    for record in records {
        let mut events = Vec::new();
        let result = adapter.parse(record.text, &mut events);
        assert_builder_matches(adapter.as_ref(), record.text, &result, &events, input);
        let entry = match result {
            Ok(()) => {
                for event in &events {
                    assert!(
                        !event.raw.is_empty(),
                        "{}:{}: raw payload missing",
                        input.display(),
                        record.line
                    );
                    assert!(
                        record.text.contains(event.raw.as_str()),
                        "{}:{}: raw payload is not the bytes received",
                        input.display(),
                        record.line
                    );
                    assert_eq!(event.source, source);
                }
                let events: Vec<Value> = events
                    .into_iter()
                    .map(|mut e| {
                        e.raw.clear();
                        serde_json::to_value(e).unwrap()
                    })
                    .collect();
                json!({"line": record.line, "events": events})
            }
            Err(ParseError::Rejected(reason)) => {
                assert!(events.is_empty(), "a rejected record left events behind");
                json!({"line": record.line, "rejected": reason})
            }
            Err(ParseError::NotAuthentication(kind)) => {
                json!({"line": record.line, "skipped": kind})
            }
        };
        out.push(entry);
    }
    Value::Array(out)
}

/// Parsing straight into Arrow columns gives what parsing into owned
/// events and building their batch gives.
fn assert_builder_matches(
    adapter: &dyn adapters::Adapter,
    record: &str,
    result: &Result<(), ParseError>,
    events: &[AuthEvent],
    input: &Path,
) {
    let mut builder = EventBatchBuilder::with_capacity(1, record.len());
    let again = adapter.parse(record, &mut builder);
    assert_eq!(&again, result, "{}: {record}", input.display());
    let built = builder.finish(7).unwrap();
    let expected = events_to_batch(&events.iter().collect::<Vec<_>>(), 7).unwrap();
    assert_eq!(
        built,
        expected,
        "{}: the Arrow builder differs from the owned events of {record}",
        input.display()
    );
}

/// The whole demo (every attack kind, OCSF) parsed from one body straight
/// into Arrow equals its owned events built into a batch, and the outcome
/// counts agree.
#[test]
fn demo_body_parses_to_the_same_batch_either_way() {
    let config = DemoConfig::new(300, 3, 11, None);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut DemoReader::new(config), &mut body).unwrap();
    // One bad line in the middle, which must be a dead letter either way.
    let middle = body.len() / 2 + memchr::memchr(b'\n', &body[body.len() / 2..]).unwrap() + 1;
    body.splice(middle..middle, b"{not json\n".iter().copied());
    let adapter = adapters::build("ocsf", &AdapterOptions::default()).unwrap();
    let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let owned = parse_body(adapter.as_ref(), &body, "demo", at, Output::Events).unwrap();
    let ingested_at_micros = at.timestamp_micros();
    let built = parse_body(
        adapter.as_ref(),
        &body,
        "demo",
        at,
        Output::Batches { ingested_at_micros },
    )
    .unwrap();
    assert!(owned.event_count > 1000, "{} events", owned.event_count);
    assert_eq!(built.event_count, owned.event_count);
    assert_eq!(built.records, owned.records);
    assert_eq!(built.dead_letters, owned.dead_letters);
    assert_eq!(built.dead_letters.len(), 1);
    assert_eq!(built.events_by_outcome(), owned.events_by_outcome());
    let rows: Vec<&AuthEvent> = owned.events.iter().flatten().collect();
    let expected = events_to_batch(&rows, ingested_at_micros).unwrap();
    assert_eq!(built.batches, vec![expected]);
}

#[test]
fn adapters_match_their_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut sources_seen = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let source = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                !name.ends_with(".expected.json") && !name.ends_with(".toml")
            })
            .collect();
        inputs.sort();
        for input in inputs {
            cases += 1;
            let actual = run_case(&source, &input);
            let expected_path = PathBuf::from(format!("{}.expected.json", input.display()));
            if update {
                let mut text = serde_json::to_string_pretty(&actual).unwrap();
                text.push('\n');
                std::fs::write(&expected_path, text).unwrap();
                continue;
            }
            let Ok(expected_text) = std::fs::read_to_string(&expected_path) else {
                failures.push(format!(
                    "{}: no expected file (run with UPDATE_GOLDEN=1)",
                    input.display()
                ));
                continue;
            };
            let expected: Value = serde_json::from_str(&expected_text).unwrap();
            if expected != actual {
                failures.push(format!(
                    "{} differs from {}:\n{}",
                    input.display(),
                    expected_path.display(),
                    serde_json::to_string_pretty(&actual).unwrap()
                ));
            }
        }
        sources_seen.push(source);
    }
    for name in adapters::NAMES {
        assert!(
            sources_seen.iter().any(|s| s == name),
            "no golden cases for adapter {name}"
        );
    }
    assert!(cases >= adapters::NAMES.len());
    assert!(
        failures.is_empty(),
        "{} of {cases} golden cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
