//! End-to-end tests: the real `authtrail` binary, real files, the real
//! Parquet event log, and DuckDB reading what it wrote.

#![allow(clippy::unwrap_used)]

mod api;
mod attempts;
mod kafka;
mod rules;
mod util;

use std::io::Write;

use util::{Workspace, sealed_files};

#[test]
fn a_garbage_line_becomes_one_dead_letter_and_a_replay_stores_nothing() {
    let ws = Workspace::new();
    let mut lines = ws.demo_lines(60, 3);
    assert!(lines.len() >= 1000, "demo too small: {}", lines.len());
    lines.truncate(1000);
    lines[499] = "{\"class_uid\": 3002, this is not json".to_owned();
    let input = ws.path("batch.ndjson");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();

    let first = ws.ingest_ocsf(&input).ok();
    assert!(
        first.stdout.contains("stored                 999"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("dead letters             1"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("batch.ndjson:500: not valid JSON"),
        "{}",
        first.stdout
    );
    assert_eq!(ws.query_number("SELECT count(*) FROM events"), 999);
    assert_eq!(
        ws.query_number("SELECT count(DISTINCT event_id) FROM events"),
        999
    );
    let dead = ws.query_csv("SELECT line, source, reason, length(raw) > 0 FROM dead_letters");
    assert_eq!(dead.len(), 1);
    assert!(dead[0].starts_with("500,ocsf,not valid JSON"), "{dead:?}");

    let second = ws.ingest_ocsf(&input).ok();
    assert!(
        second.stdout.contains("stored                   0"),
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.contains("duplicates             999"),
        "{}",
        second.stdout
    );
    assert_eq!(ws.query_number("SELECT count(*) FROM events"), 999);
    assert_eq!(ws.query_number("SELECT count(*) FROM dead_letters"), 1);
    ws.run(&["verify"]).ok();
}

#[test]
fn strict_mode_fails_on_rejected_lines() {
    let ws = Workspace::new();
    let input = ws.path("bad.ndjson");
    std::fs::write(&input, b"\xff\xfe binary\nnot json\n").unwrap();
    let run = ws.run(&[
        "ingest",
        "file",
        "--strict",
        "--source",
        "okta",
        input.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let first = run
        .stdout
        .find("bad.ndjson:1: line is not valid UTF-8")
        .expect(&run.stdout);
    let second = run
        .stdout
        .find("bad.ndjson:2: not valid JSON")
        .expect(&run.stdout);
    assert!(
        first < second,
        "rejections out of line order:\n{}",
        run.stdout
    );
    assert_eq!(
        ws.query_csv("SELECT line FROM dead_letters ORDER BY line"),
        vec!["1", "2"]
    );
}

#[test]
fn gzip_from_standard_input() {
    let ws = Workspace::new();
    let lines = ws.demo_lines(20, 2);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
    let compressed = gz.finish().unwrap();
    let run = ws
        .run_with_stdin(&["ingest", "file", "--source", "ocsf", "-"], &compressed)
        .ok();
    assert!(
        run.stdout.contains("dead letters             0"),
        "{}",
        run.stdout
    );
    assert_eq!(
        ws.query_number("SELECT count(*) FROM events"),
        lines.len() as u64
    );
}

#[test]
fn every_adapter_ingests_its_samples_from_the_command_line() {
    let ws = Workspace::new();
    let samples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ingest/tests/data/adapters");
    for source in [
        "okta", "auth0", "keycloak", "harness", "github", "ocsf", "ecs", "sshd", "windows",
        "generic",
    ] {
        let dir = samples.join(source);
        let mut args = vec![
            "ingest".to_owned(),
            "file".to_owned(),
            "--source".to_owned(),
            source.to_owned(),
        ];
        if source == "generic" {
            args.extend([
                "--mapping".to_owned(),
                dir.join("mapping.toml").display().to_string(),
            ]);
        }
        if source == "sshd" {
            args.extend(["--syslog-year".to_owned(), "2024".to_owned()]);
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".expected.json") && !name.ends_with(".toml") {
                args.push(path.display().to_string());
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ws.run(&args).ok();
        assert!(
            ws.query_number(&format!(
                "SELECT count(*) FROM events WHERE source = '{source}'"
            )) > 0,
            "nothing stored for {source}"
        );
    }
    let by_reason =
        ws.query_csv("SELECT DISTINCT reason FROM events WHERE reason IS NOT NULL ORDER BY reason");
    for reason in [
        "account_locked",
        "domain_not_allowed",
        "invalid_credentials",
        "mfa_denied",
        "mfa_failed",
        "replay",
        "unknown_user",
    ] {
        assert!(
            by_reason.iter().any(|r| r == reason),
            "no {reason} in {by_reason:?}"
        );
    }
    ws.run(&["verify"]).ok();
}

#[test]
fn verify_names_a_changed_truncated_or_removed_file() {
    let ws = Workspace::new();
    let lines = ws.demo_lines(30, 2);
    let (a, b) = lines.split_at(lines.len() / 2);
    for (name, part) in [("a.ndjson", a), ("b.ndjson", b)] {
        let path = ws.path(name);
        std::fs::write(&path, part.join("\n") + "\n").unwrap();
        // Two ingests make chains of more than one file per day.
        ws.run(&[
            "ingest",
            "file",
            "--source",
            "ocsf",
            "--commit-events",
            "200",
            path.to_str().unwrap(),
        ])
        .ok();
    }
    let clean = ws.run(&["verify"]).ok();
    assert!(clean.stdout.starts_with("ok:"), "{}", clean.stdout);
    let files = sealed_files(&ws.data().join("events"));
    assert!(files.len() >= 4, "{files:?}");

    let flip = |path: &std::path::Path, offset_from_end: usize| {
        let mut bytes = std::fs::read(path).unwrap();
        let at = bytes.len() / 2 - offset_from_end.min(bytes.len() / 2);
        bytes[at] ^= 0x01;
        std::fs::write(path, bytes).unwrap();
    };
    // A byte in the middle of the first file of a chain, and in the last.
    for target in [&files[0], files.last().unwrap()] {
        let original = std::fs::read(target).unwrap();
        flip(target, 0);
        let run = ws.run(&["verify"]);
        assert_eq!(run.code, 1, "{}", run.stdout);
        let name = target.file_name().unwrap().to_string_lossy();
        assert!(
            run.stdout.contains(&*name),
            "{name} not named in:\n{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("changed after it was sealed"),
            "{}",
            run.stdout
        );
        std::fs::write(target, original).unwrap();
        ws.run(&["verify"]).ok();
    }
    // Truncation.
    let original = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[1], &original[..original.len() - 100]).unwrap();
    let run = ws.run(&["verify"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains(&*files[1].file_name().unwrap().to_string_lossy()),
        "{}",
        run.stdout
    );
    std::fs::write(&files[1], &original).unwrap();
    // Removal.
    std::fs::remove_file(&files[1]).unwrap();
    let run = ws.run(&["verify"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains(&*files[1].file_name().unwrap().to_string_lossy()),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("removed"), "{}", run.stdout);
}

#[test]
fn queries_are_read_only() {
    let ws = Workspace::new();
    let lines = ws.demo_lines(10, 1);
    ws.ingest_lines("d.ndjson", &lines);
    for sql in [
        "DROP TABLE events",
        "INSERT INTO events SELECT * FROM events",
        "CREATE TABLE x AS SELECT 1",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "COPY events TO '/tmp/authtrail-copy-test.parquet'",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let run = ws.run(&["query", sql]);
        assert_ne!(run.code, 0, "{sql} was allowed");
        assert!(run.stderr.contains("error:"), "{sql}: {}", run.stderr);
    }
    assert!(!std::path::Path::new("/tmp/authtrail-copy-test.parquet").exists());
    assert_eq!(
        ws.query_number("SELECT count(*) FROM events"),
        lines.len() as u64
    );
}

#[test]
fn query_output_formats() {
    let ws = Workspace::new();
    let lines = ws.demo_lines(10, 1);
    ws.ingest_lines("d.ndjson", &lines);
    let sql = "SELECT outcome, count(*) AS n FROM events GROUP BY outcome ORDER BY outcome";
    let json = ws.run(&["query", "--format", "json", sql]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).unwrap();
    let total: u64 = rows.iter().map(|r| r["n"].as_u64().unwrap()).sum();
    assert_eq!(total, lines.len() as u64);
    let ndjson = ws.run(&["query", "--format", "ndjson", sql]).ok();
    assert_eq!(ndjson.stdout.lines().count(), rows.len());
    let table = ws.run(&["query", sql]).ok();
    assert!(table.stdout.contains("| outcome"), "{}", table.stdout);
    let empty = ws
        .run(&[
            "query",
            "--format",
            "json",
            "SELECT * FROM events WHERE false",
        ])
        .ok();
    assert_eq!(empty.stdout.trim(), "[]");
}

#[test]
fn demo_is_deterministic_and_stores_attacks_with_ground_truth() {
    let ws = Workspace::new();
    let one = ws.path("one.ndjson");
    let two = ws.path("two.ndjson");
    for path in [&one, &two] {
        ws.run(&[
            "demo",
            "--users",
            "50",
            "--days",
            "4",
            "--seed",
            "9",
            "--start",
            "2026-02-02",
            "--ndjson",
            path.to_str().unwrap(),
        ])
        .ok();
    }
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());

    let truth = ws.path("truth.json");
    let run = ws
        .run(&[
            "demo",
            "--users",
            "200",
            "--days",
            "10",
            "--start",
            "2026-02-02",
            "--truth",
            truth.to_str().unwrap(),
        ])
        .ok();
    assert!(run.stdout.contains("injected"), "{}", run.stdout);
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&truth).unwrap()).unwrap();
    let attacks = truth["attacks"].as_array().unwrap();
    let stored = ws.query_number("SELECT count(*) FROM events");
    assert_eq!(stored, truth["events"].as_u64().unwrap());
    for attack in attacks {
        if attack["kind"] == "brute_force" {
            let user = attack["user"].as_str().unwrap();
            let ip = attack["src_ip"].as_str().unwrap();
            let failures = ws.query_number(&format!(
                "SELECT count(*) FROM events WHERE user = '{user}' AND src_ip = '{ip}' AND outcome = 'failure'"
            ));
            assert_eq!(failures, attack["events"].as_u64().unwrap());
        }
    }
    let days = ws.query_csv(
        "SELECT date, count(*) FROM events WHERE outcome = 'failure' GROUP BY date ORDER BY date",
    );
    assert!(days.len() >= 10, "{days:?}");
    // Running the demo again adds nothing: same seed, same ids.
    let again = ws
        .run(&[
            "demo",
            "--users",
            "200",
            "--days",
            "10",
            "--start",
            "2026-02-02",
        ])
        .ok();
    assert!(
        again.stdout.contains("were already there"),
        "{}",
        again.stdout
    );
    assert_eq!(ws.query_number("SELECT count(*) FROM events"), stored);
}

/// Runs each query with DuckDB over the Parquet files of `ws`'s `events`
/// (the query's `{files}` is `read_parquet(…)` of them) and returns the
/// single number each one answers.
fn duckdb_numbers(ws: &Workspace, queries: &[&str]) -> Vec<u64> {
    let files = format!(
        "read_parquet('{}/events/**/*.parquet', hive_partitioning=true, filename=true, file_row_number=true)",
        ws.data().display()
    );
    let mut script = String::from("import duckdb\nc = duckdb.connect()\n");
    for query in queries {
        let sql = query.replace("{files}", &files);
        script.push_str(&format!("print(c.execute({sql:?}).fetchone()[0])\n"));
    }
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 is needed for this test");
    assert!(
        output.status.success(),
        "DuckDB could not read the log (install it with `python3 -m pip install duckdb`): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().map(|l| l.trim().parse().unwrap()).collect()
}

#[test]
fn duckdb_reads_the_log_and_counts_the_same_rows() {
    let ws = Workspace::new();
    let lines = ws.demo_lines(100, 3);
    ws.ingest_lines("d.ndjson", &lines);
    let ours = ws.query_number("SELECT count(*) FROM events");
    let failures = ws.query_number("SELECT count(*) FROM events WHERE outcome = 'failure'");
    let counts = duckdb_numbers(
        &ws,
        &[
            "SELECT count(*) FROM {files}",
            "SELECT count(*) FROM {files} WHERE outcome = 'failure'",
        ],
    );
    assert_eq!(counts, vec![ours, failures]);
}

/// Rows out of time order in any sealed file of `ws`'s log, by DuckDB.
fn rows_out_of_time_order(ws: &Workspace) -> u64 {
    duckdb_numbers(
        ws,
        &["SELECT count(*) FROM (SELECT time, lag(time) OVER \
           (PARTITION BY filename ORDER BY file_row_number) AS prev FROM {files}) \
           WHERE time < prev"],
    )[0]
}

#[test]
fn ordered_and_shuffled_inputs_seal_the_same_time_sorted_rows() {
    let sorted = Workspace::new();
    let lines = sorted.demo_lines(150, 3);
    assert!(lines.len() > 2000, "demo too small: {}", lines.len());
    sorted.ingest_lines("sorted.ndjson", &lines);
    // A fixed permutation that leaves almost no two neighbours together,
    // so that every day's file is gathered row by row.
    let stride = 7919;
    let shuffled_lines: Vec<String> = (0..lines.len())
        .map(|i| lines[(i * stride) % lines.len()].clone())
        .collect();
    assert_ne!(
        lines.len() % stride,
        0,
        "the stride must be coprime to the length"
    );
    let shuffled = Workspace::new();
    shuffled.ingest_lines("shuffled.ndjson", &shuffled_lines);
    let digest = "SELECT count(*), count(DISTINCT event_id), min(time), max(time), \
                  sum(length(raw)), count(DISTINCT date) FROM events";
    assert_eq!(sorted.query_csv(digest), shuffled.query_csv(digest));
    assert_eq!(
        sorted.query_number("SELECT count(*) FROM events"),
        lines.len() as u64
    );
    for ws in [&sorted, &shuffled] {
        assert_eq!(rows_out_of_time_order(ws), 0);
        ws.run(&["verify"]).ok();
    }
}

#[test]
fn helpful_errors() {
    let ws = Workspace::new();
    let run = ws.run(&["ingest", "file", "--source", "nope", "x.json"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("unknown source \"nope\"") && run.stderr.contains("okta"),
        "{}",
        run.stderr
    );
    let run = ws.run(&["ingest", "file", "--source", "generic", "x.json"]);
    assert!(run.stderr.contains("--mapping"), "{}", run.stderr);
    let run = ws.run(&["ingest", "file", "--source", "okta", "/does/not/exist.json"]);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    let run = ws.run(&["query", "SELECT 1"]);
    assert!(run.stderr.contains("no event log"), "{}", run.stderr);
}

/// `--data logs`, a bare name relative to the working directory, is
/// created there (its parent is the empty path, which cannot be opened).
#[test]
fn a_bare_relative_data_directory_is_created_in_the_working_directory() {
    let ws = Workspace::new();
    let lines = ws.demo_lines(5, 1);
    std::fs::write(ws.path("in.ndjson"), lines.join("\n") + "\n").unwrap();
    let output = ws
        .command(&[
            "ingest",
            "file",
            "--source",
            "ocsf",
            "--data",
            "logs",
            "in.ndjson",
        ])
        .current_dir(ws.dir.path())
        .output()
        .unwrap();
    let run = util::Run::from(output).ok();
    assert!(run.stdout.contains("stored"), "{}", run.stdout);
    assert!(!sealed_files(&ws.path("logs").join("events")).is_empty());
}

/// The HTTP benchmark end to end at a small size, with either credential:
/// the real server as a child process, every batch and single delivery
/// answered 2xx and counted as stored (the bench fails otherwise), and
/// both phases reported. With HMAC, two runs, each phase also against the
/// nginx baseline, the ratios and the medians; with JWT, authtrail alone.
#[test]
fn bench_http_stores_every_delivery_it_reports() {
    for (auth, label, baseline) in [("hmac", "HMAC-signed", true), ("jwt", "bearer JWT", false)] {
        let ws = Workspace::new();
        let dir = ws.path("bench");
        let mut args = vec![
            "bench",
            "http",
            "--users",
            "40",
            "--days",
            "3",
            "--batch",
            "100",
            "--single-requests",
            "300",
            "--single-connections",
            "8",
            "--auth",
            auth,
            "--dir",
            dir.to_str().unwrap(),
        ];
        if baseline {
            args.extend(["--runs", "2"]);
        } else {
            args.push("--no-nginx");
        }
        let run = ws.run(&args).ok();
        let rows: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with('|')).collect();
        let batches = format!("| NDJSON batches of 100 events, 16 connections, {label} |");
        let singles =
            format!("| 1 event per POST, 8 keep-alive connections, {label} | 300 events |");
        let stored = |row: &str| row.contains(" events/s durable |");
        if !baseline {
            assert_eq!(rows.len(), 2, "{}", run.stdout);
            assert!(
                rows[0].starts_with(&batches) && stored(rows[0]),
                "{}",
                rows[0]
            );
            assert!(
                rows[1].starts_with(&singles) && stored(rows[1]),
                "{}",
                rows[1]
            );
            assert!(rows[1].contains(" p99 "), "{}", rows[1]);
            assert!(!run.stdout.contains("nginx"), "{}", run.stdout);
            continue;
        }
        // Each run: authtrail, then nginx, for batches and for singles.
        assert_eq!(rows.len(), 8, "{}", run.stdout);
        for run_rows in rows.chunks(4) {
            assert!(run_rows[0].starts_with(&batches), "{}", run_rows[0]);
            assert!(run_rows[2].starts_with(&singles), "{}", run_rows[2]);
            for nginx_row in [run_rows[1], run_rows[3]] {
                assert!(nginx_row.starts_with("| nginx/"), "{nginx_row}");
                assert!(
                    nginx_row.contains("(baseline, stores nothing)"),
                    "{nginx_row}"
                );
                assert!(nginx_row.contains(" events/s answered |"), "{nginx_row}");
            }
            // nginx was sent (and answered) exactly what authtrail stored.
            let events = |row: &str| row.split(" | ").nth(1).unwrap().to_owned();
            assert_eq!(events(run_rows[1]), events(run_rows[0]), "{run_rows:?}");
            assert_eq!(events(run_rows[3]), "300 events", "{run_rows:?}");
        }
        let ratios: Vec<f64> = run
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("authtrail / nginx: NDJSON batches "))
            .map(|rest| rest.split('x').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ratios.len(), 2, "{}", run.stdout);
        assert!(ratios.iter().all(|&r| r > 0.0), "{}", run.stdout);
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("median of 2 runs: NDJSON batches ")
                    && l.contains("x nginx); single POSTs ")
                    && l.contains(", p99 ")),
            "{}",
            run.stdout
        );
    }
}
