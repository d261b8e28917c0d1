//! Tests of the built-in rules as data: every input under
//! `tests/data/<rule id>/<case>.<source>.<ext>` is stored in a fresh log
//! through the real adapter and writer, the rule is evaluated over it, and
//! its findings are compared with `<input>.expected.json` beside it. A
//! case whose expected file is `[]` is a negative case. Adding a case is
//! adding a file.
//!
//! `UPDATE_GOLDEN=1 cargo test -p authtrail-rules --test rules` rewrites
//! the expected files; review the diff before committing it.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use authtrail_ingest::adapters::{self, AdapterOptions};
use authtrail_ingest::pipeline::{FileIngest, IngestOptions};
use authtrail_ingest::store::{EventLog, LogOptions};
use authtrail_query::{QueryLimits, ReadOnlySession};
use authtrail_rules::{TimeRange, engine, loader};

fn cases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut cases = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        let rule = dir.file_name().unwrap().to_str().unwrap().to_owned();
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            if !path.to_str().unwrap().ends_with(".expected.json") {
                cases.push((rule.clone(), path));
            }
        }
    }
    cases.sort();
    cases
}

/// What a finding says, without the wall-clock `detected_at`.
fn golden(finding: &authtrail_schemas::Finding) -> Value {
    json!({
        "finding_id": finding.finding_id,
        "group_key": finding.group_key,
        "first_time": finding.first_time,
        "last_time": finding.last_time,
        "count": finding.count,
        "suppressed": finding.suppressed,
        "evidence_ids": finding.evidence_ids,
        "summary": finding.summary,
    })
}

async fn run_case(rule_id: &str, input: &Path) -> Value {
    let rule = loader::builtin()
        .unwrap()
        .into_iter()
        .find(|r| r.id == rule_id)
        .unwrap_or_else(|| panic!("tests/data/{rule_id}: no built-in rule of that id"));
    let name = input.file_name().unwrap().to_str().unwrap();
    let source = name.split('.').nth(1).unwrap();
    let adapter = adapters::build(source, &AdapterOptions::default()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut log = EventLog::open(scratch.path(), LogOptions::default()).unwrap();
    let stored = std::sync::atomic::AtomicU64::new(0);
    let mut ingest = FileIngest::new(
        adapter.as_ref(),
        &mut log,
        IngestOptions::default(),
        &stored,
    );
    let bytes = std::fs::read(input).unwrap();
    ingest
        .ingest(&mut bytes.as_slice(), name, &mut |_| {})
        .unwrap();
    let report = ingest.finish().unwrap();
    assert_eq!(report.committed.dead_letters, 0, "{name}: dead letters");
    let session = ReadOnlySession::open(scratch.path(), QueryLimits::default())
        .await
        .unwrap();
    let outcome = engine::evaluate(&session, &rule, TimeRange::ALL, chrono::Utc::now()).await;
    let findings = outcome.result.unwrap();
    Value::Array(findings.iter().map(golden).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rule_case_matches_its_golden_file() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut positives = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for (rule, input) in &cases {
        let actual = run_case(rule, input).await;
        if actual.as_array().is_some_and(|a| !a.is_empty()) {
            positives.insert(rule.clone());
        }
        let expected_path = PathBuf::from(format!("{}.expected.json", input.display()));
        if update {
            std::fs::write(
                &expected_path,
                serde_json::to_string_pretty(&actual).unwrap() + "\n",
            )
            .unwrap();
            continue;
        }
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
                panic!(
                    "{}: missing (UPDATE_GOLDEN=1 writes it)",
                    expected_path.display()
                )
            }),
        )
        .unwrap();
        if actual != expected {
            failures.push(format!(
                "{}:\nexpected {}\nactual   {}",
                input.display(),
                serde_json::to_string_pretty(&expected).unwrap(),
                serde_json::to_string_pretty(&actual).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Every rule with cases has a positive one, and every case directory
    // names a rule that fires on it.
    let rules: std::collections::BTreeSet<String> = cases.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(rules, positives, "rules without a positive case");
    // And every built-in rule has cases.
    let builtin: std::collections::BTreeSet<String> = loader::builtin()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(rules, builtin, "built-in rules without data-file cases");
}
