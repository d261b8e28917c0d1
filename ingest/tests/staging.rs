//! The group-commit stager against the real file system: receipts of
//! concurrent producers, deduplication against staged and sealed events,
//! sealing on shutdown, and recovery of a segment with a torn tail or
//! with the unused space reserved after its last commit.

#![allow(clippy::unwrap_used)]

use std::io::Write;

use chrono::{TimeZone, Utc};

use authtrail_ingest::staging::{Batch, Stager, StagingOptions, list_segments};
use authtrail_ingest::store::{EventLog, LogOptions, list_sealed, partition_dir, verify};
use authtrail_schemas::arrow_schema::{events_schema, events_to_batch};
use authtrail_schemas::{Action, AuthEvent, Outcome, Table};

fn event(id: &str, day: u32, second: u32) -> AuthEvent {
    let time = Utc.with_ymd_and_hms(2026, 3, day, 10, 0, second).unwrap();
    let mut e = AuthEvent::new(id.to_owned(), time, "okta", Action::Login, Outcome::Failure);
    e.raw = format!("{{\"id\":\"{id}\"}}");
    e
}

fn batch(ids: &[(&str, u32)]) -> Batch {
    Batch {
        events: ids.iter().map(|(id, day)| event(id, *day, 0)).collect(),
        ..Batch::default()
    }
}

/// A stager on the log at `root`, with default options.
fn start(root: &std::path::Path) -> Stager {
    let log = EventLog::open(root, LogOptions::default()).unwrap();
    Stager::start(log, StagingOptions::default()).unwrap()
}

/// A runtime to await receipts on.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn sealed_rows(root: &std::path::Path) -> u64 {
    let report = verify::verify(root, |_| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    report.rows
}

#[test]
fn receipts_count_new_and_duplicate_events_and_shutdown_seals_them() {
    let dir = tempfile::tempdir().unwrap();
    let stager = start(dir.path());
    let runtime = runtime();
    let a = stager
        .submit(batch(&[("a", 1), ("b", 1), ("a", 1)]))
        .unwrap();
    let b = stager.submit(batch(&[("b", 1), ("c", 2)])).unwrap();
    let (a, b) = runtime.block_on(async { (a.await.unwrap().unwrap(), b.await.unwrap().unwrap()) });
    assert_eq!((a.stored, a.duplicates), (2, 1));
    assert_eq!((b.stored, b.duplicates), (1, 1));
    // Staged, acknowledged, not sealed yet.
    assert_eq!(list_segments(&dir.path().join("staging")).unwrap().len(), 1);
    assert!(
        list_sealed(&partition_dir(dir.path(), Table::Events, day(1)))
            .unwrap()
            .is_empty()
    );

    stager.shutdown().unwrap();
    assert!(
        list_segments(&dir.path().join("staging"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(sealed_rows(dir.path()), 3);

    // A later writer knows the sealed events.
    drop(stager);
    let stager = start(dir.path());
    let again = stager
        .submit(batch(&[("a", 1), ("c", 2), ("d", 3)]))
        .unwrap();
    let again = runtime.block_on(async { again.await.unwrap().unwrap() });
    assert_eq!((again.stored, again.duplicates), (1, 2));
    stager.shutdown().unwrap();
    assert_eq!(sealed_rows(dir.path()), 4);
}

#[test]
fn small_and_large_deliveries_committed_together_get_their_own_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let stager = start(dir.path());
    let runtime = runtime();
    // Single deliveries are built into one batch per commit by the commit
    // thread; a delivery of 40 events brings its own batch. Whichever way
    // they are grouped into commits, every receipt accounts for exactly
    // its own events, and each distinct event is stored once.
    let large_ids: Vec<String> = (0..39).map(|i| format!("x{i}")).collect();
    let mut large: Vec<(&str, u32)> = large_ids.iter().map(|id| (id.as_str(), 2)).collect();
    large.push(("b", 1));
    let deliveries: Vec<Vec<(&str, u32)>> = vec![
        vec![("a", 1), ("b", 1), ("a", 1)],
        vec![("c", 1)],
        large,
        vec![("x0", 2), ("d", 3)],
        vec![("c", 1)],
        vec![("e", 3)],
    ];
    let answers: Vec<_> = deliveries
        .iter()
        .map(|ids| stager.submit(batch(ids)).unwrap())
        .collect();
    let receipts: Vec<_> = runtime.block_on(async {
        let mut receipts = Vec::new();
        for answer in answers {
            receipts.push(answer.await.unwrap().unwrap());
        }
        receipts
    });
    for (ids, receipt) in deliveries.iter().zip(&receipts) {
        assert_eq!(
            receipt.stored + receipt.duplicates,
            ids.len() as u64,
            "{ids:?}: {receipt:?}"
        );
    }
    assert_eq!((receipts[0].stored, receipts[0].duplicates), (2, 1));
    assert_eq!((receipts[4].stored, receipts[4].duplicates), (0, 1));
    assert_eq!((receipts[5].stored, receipts[5].duplicates), (1, 0));
    let distinct = 39 + ["a", "b", "c", "d", "e"].len() as u64;
    assert_eq!(receipts.iter().map(|r| r.stored).sum::<u64>(), distinct);
    stager.shutdown().unwrap();
    assert_eq!(sealed_rows(dir.path()), distinct);
}

#[test]
fn a_full_segment_is_sealed_while_commits_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
    let options = StagingOptions {
        seal_events: 10,
        ..StagingOptions::default()
    };
    let stager = Stager::start(log, options).unwrap();
    let runtime = runtime();
    let mut stored = 0;
    for round in 0..10 {
        let ids: Vec<String> = (0..7).map(|i| format!("r{round}-{i}")).collect();
        let pairs: Vec<(&str, u32)> = ids.iter().map(|id| (id.as_str(), 1 + round % 3)).collect();
        let answer = stager.submit(batch(&pairs)).unwrap();
        stored += runtime.block_on(answer).unwrap().unwrap().stored;
    }
    assert_eq!(stored, 70);
    stager.shutdown().unwrap();
    assert_eq!(sealed_rows(dir.path()), 70);
    let files = list_sealed(&partition_dir(dir.path(), Table::Events, day(1))).unwrap();
    assert!(files.len() >= 2, "several seals of day 1: {files:?}");
}

#[test]
fn a_segment_left_by_a_crash_is_sealed_up_to_its_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    // What a crash leaves: two acknowledged commits, then half a third.
    let path = staging.join("01JTESTSEGMENT0000000000000.arrows");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(file, &events_schema()).unwrap();
    let first = [event("x", 4, 1), event("y", 4, 2)];
    let second = [event("z", 5, 3)];
    writer
        .write(&events_to_batch(&first.iter().collect::<Vec<_>>(), 1).unwrap())
        .unwrap();
    writer
        .write(&events_to_batch(&second.iter().collect::<Vec<_>>(), 2).unwrap())
        .unwrap();
    let mut file = writer.into_inner().unwrap();
    file.write_all(&[0xff, 0xff, 0xff, 0xff, 0x40, 0x01, 0x00])
        .unwrap();
    drop(file);

    let stager = start(dir.path());
    assert!(list_segments(&staging).unwrap().is_empty());
    assert_eq!(sealed_rows(dir.path()), 3);
    // Recovered events are known: a redelivery stores nothing.
    let runtime = runtime();
    let answer = stager.submit(batch(&[("x", 4), ("z", 5)])).unwrap();
    let receipt = runtime.block_on(answer).unwrap().unwrap();
    assert_eq!((receipt.stored, receipt.duplicates), (0, 2));
    stager.shutdown().unwrap();
}

#[test]
fn a_segment_with_reserved_space_is_recovered_to_its_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
    let options = StagingOptions {
        // About a megabyte reserved.
        seal_events: 1000,
        ..StagingOptions::default()
    };
    let stager = Stager::start(log, options).unwrap();
    for round in 0..3 {
        let ids: Vec<String> = (0..5).map(|i| format!("k{round}-{i}")).collect();
        let pairs: Vec<(&str, u32)> = ids.iter().map(|id| (id.as_str(), 6)).collect();
        let answer = stager.submit(batch(&pairs)).unwrap();
        assert_eq!(runtime.block_on(answer).unwrap().unwrap().stored, 5);
    }
    // What a crash now would leave: the segment as it is on disk, its
    // reserved space still zeros after the three commits.
    let staging = dir.path().join("staging");
    let segments = list_segments(&staging).unwrap();
    assert_eq!(segments.len(), 1);
    let on_disk = std::fs::read(&segments[0]).unwrap();
    let written = on_disk.iter().rposition(|&b| b != 0).unwrap() + 1;
    assert!(
        on_disk.len() >= 1 << 20 && written < on_disk.len() / 2,
        "space is reserved ahead of the commits: {written} of {} bytes written",
        on_disk.len()
    );
    let copy = crashed.path().join("staging");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::write(copy.join(segments[0].file_name().unwrap()), &on_disk).unwrap();
    stager.shutdown().unwrap();

    let recovered = start(crashed.path());
    assert!(list_segments(&copy).unwrap().is_empty());
    assert_eq!(sealed_rows(crashed.path()), 15);
    recovered.shutdown().unwrap();
}

fn day(d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

#[test]
fn source_positions_are_durable_with_their_events_and_carried_by_sealed_files() {
    use authtrail_schemas::SourcePositions;
    use authtrail_schemas::positions::kafka_key;
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let with_positions = |ids: &[(&str, u32)], partition: i32, next: i64| {
        let mut positions = SourcePositions::new();
        positions.advance(&kafka_key("auth", partition), next);
        Batch {
            positions,
            ..batch(ids)
        }
    };
    {
        let stager = start(dir.path());
        let first = stager.submit(with_positions(&[("a", 1)], 0, 10)).unwrap();
        let second = stager
            .submit(with_positions(&[("b", 2), ("c", 3)], 1, 7))
            .unwrap();
        runtime.block_on(async {
            first.await.unwrap().unwrap();
            second.await.unwrap().unwrap();
        });
        // A batch of duplicates still moves its position forward.
        let again = stager.submit(with_positions(&[("a", 1)], 0, 11)).unwrap();
        let receipt = runtime.block_on(again).unwrap().unwrap();
        assert_eq!((receipt.stored, receipt.duplicates), (0, 1));
        let held = stager.source_positions();
        assert_eq!(held.get("kafka:auth/0"), Some(11));
        assert_eq!(held.get("kafka:auth/1"), Some(7));
        stager.shutdown().unwrap();
    }
    // Read back from the sealed files' metadata alone.
    let log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(log.source_positions().get("kafka:auth/0"), Some(11));
    assert_eq!(log.source_positions().get("kafka:auth/1"), Some(7));
    assert!(
        list_segments(&dir.path().join("staging"))
            .unwrap()
            .is_empty(),
        "sealed segments are removed with their journals"
    );
}

#[test]
fn a_journal_line_counts_only_once_its_rows_are_in_the_segment() {
    use authtrail_ingest::staging::read_journal;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("segment.positions");
    std::fs::write(
        &path,
        concat!(
            "{\"rows\":10,\"positions\":{\"kafka:t/0\":100}}\n",
            "{\"rows\":10,\"positions\":{\"kafka:t/1\":5}}\n",
            "{\"rows\":25,\"positions\":{\"kafka:t/0\":250}}\n",
            "{\"rows\":30,\"posit"
        ),
    )
    .unwrap();
    // The segment holds 20 rows: the commit that would have made 25 never
    // reached it, so its position does not count.
    let positions = read_journal(&path, 20).unwrap();
    assert_eq!(positions.get("kafka:t/0"), Some(100));
    assert_eq!(positions.get("kafka:t/1"), Some(5));
    let all = read_journal(&path, 30).unwrap();
    assert_eq!(all.get("kafka:t/0"), Some(250));
    assert_eq!(
        read_journal(&dir.path().join("missing"), 5).unwrap(),
        Default::default()
    );
}
