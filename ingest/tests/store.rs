//! The durable writer against the real file system: idempotency across
//! commits and restarts, one file per day per commit chained to the last,
//! crash leftovers, the writer lock, the verifier, and how sealed files are
//! encoded.

#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};

use authtrail_ingest::IngestError;
use authtrail_ingest::store::{
    EventLog, LogOptions, list_sealed, partition_dir, read_head, verify,
};
use authtrail_schemas::{Action, AppendLog, AuthEvent, Outcome, Table};

fn event(id: &str, day: u32, second: u32) -> AuthEvent {
    let time = Utc.with_ymd_and_hms(2026, 3, day, 10, 0, second).unwrap();
    let mut e = AuthEvent::new(id.to_owned(), time, "okta", Action::Login, Outcome::Failure);
    e.set_user("alice@acme.example");
    e.raw = format!("{{\"id\":\"{id}\"}}");
    e
}

/// The `events` partition of March `day`, 2026, where [`event`]'s rows go.
fn events_dir(root: &std::path::Path, day: u32) -> std::path::PathBuf {
    let date = chrono::NaiveDate::from_ymd_opt(2026, 3, day).unwrap();
    partition_dir(root, Table::Events, date)
}

#[test]
fn duplicates_are_dropped_within_a_batch_across_commits_and_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
        let first = log
            .append(
                vec![
                    event("a", 1, 0),
                    event("b", 1, 1),
                    event("a", 1, 0),
                    event("c", 2, 0),
                ],
                vec![],
            )
            .unwrap();
        assert_eq!((first.stored, first.duplicates, first.files), (3, 1, 2));
        let second = log
            .append(vec![event("b", 1, 1), event("d", 1, 2)], vec![])
            .unwrap();
        assert_eq!((second.stored, second.duplicates), (1, 1));
    }
    let mut reopened = EventLog::open(dir.path(), LogOptions::default()).unwrap();
    let third = reopened
        .append(
            vec![event("a", 1, 0), event("c", 2, 0), event("e", 3, 0)],
            vec![],
        )
        .unwrap();
    assert_eq!((third.stored, third.duplicates), (1, 2));
    // Same id from another source is another event.
    let mut other = event("a", 1, 0);
    other.source = "auth0".into();
    assert_eq!(reopened.append(vec![other], vec![]).unwrap().stored, 1);

    let day1 = events_dir(dir.path(), 1);
    let files = list_sealed(&day1).unwrap();
    assert_eq!(files.len(), 3);
    let head = read_head(&day1).unwrap().unwrap();
    assert_eq!(head.file, files[2]);
    assert_eq!(head.files, 3);
    let report = verify::verify(dir.path(), |_| {}).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.rows, 6);
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EventLog::open(dir.path(), LogOptions::default()).unwrap();
    match EventLog::open(dir.path(), LogOptions::default()) {
        Err(IngestError::Locked(_)) => {}
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("two writers on one log"),
    }
}

#[test]
fn crash_leftovers_are_cleaned_and_a_lagging_head_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let partition = events_dir(dir.path(), 1);
    {
        let mut log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
        log.append(vec![event("a", 1, 0)], vec![]).unwrap();
        log.append(vec![event("b", 1, 1)], vec![]).unwrap();
    }
    // A crash after sealing the second file but before its head was
    // written looks like a head one file behind, plus a stray temporary.
    let files = list_sealed(&partition).unwrap();
    let first_sha = authtrail_ingest::store::fsio::sha256_file(&partition.join(&files[0]))
        .unwrap()
        .0;
    let lagging = format!(
        "{{\"file\":\"{}\",\"sha256\":\"{first_sha}\",\"files\":1}}",
        files[0]
    );
    std::fs::write(partition.join("_HEAD.json"), lagging).unwrap();
    std::fs::write(
        partition.join(".01ZZZZZZZZZZZZZZZZZZZZZZZZ.parquet.inprogress"),
        b"partial",
    )
    .unwrap();

    let mut log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
    assert!(
        !partition
            .join(".01ZZZZZZZZZZZZZZZZZZZZZZZZ.parquet.inprogress")
            .exists()
    );
    let summary = log
        .append(vec![event("b", 1, 1), event("c", 1, 2)], vec![])
        .unwrap();
    assert_eq!((summary.stored, summary.duplicates), (1, 1));
    drop(log);
    let report = verify::verify(dir.path(), |_| {}).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.files, 3);
}

#[test]
fn a_head_naming_a_removed_file_stops_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let partition = events_dir(dir.path(), 1);
    {
        let mut log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
        log.append(vec![event("a", 1, 0)], vec![]).unwrap();
        log.append(vec![event("b", 1, 1)], vec![]).unwrap();
    }
    let files = list_sealed(&partition).unwrap();
    std::fs::remove_file(partition.join(&files[1])).unwrap();
    let mut log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
    let err = log.append(vec![event("c", 1, 2)], vec![]).unwrap_err();
    assert!(matches!(err, IngestError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("authtrail verify"), "{err}");
}

/// Sealed files use version 2 data pages (their values are compressed
/// where they were encoded) without version 2's delta fallbacks: payloads
/// stay plain, and only the id and the sorted time are delta-encoded.
#[test]
fn sealed_files_have_version_2_pages_and_plain_payloads() {
    use parquet::basic::{Encoding, PageType};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let dir = tempfile::tempdir().unwrap();
    let mut log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
    let events = (0..50).map(|i| event(&format!("e{i}"), 1, i)).collect();
    log.append(events, vec![]).unwrap();
    let day = events_dir(dir.path(), 1);
    let files = list_sealed(&day).unwrap();
    assert_eq!(files.len(), 1);
    let reader =
        SerializedFileReader::new(std::fs::File::open(day.join(&files[0])).unwrap()).unwrap();
    let row_group = reader.get_row_group(0).unwrap();
    let columns = row_group.metadata().columns();
    let index_of = |name: &str| {
        columns
            .iter()
            .position(|c| c.column_path().string() == name)
            .unwrap()
    };
    for (column, expected, refused) in [
        ("raw", Encoding::PLAIN, Encoding::DELTA_BYTE_ARRAY),
        ("session_id", Encoding::PLAIN, Encoding::DELTA_BYTE_ARRAY),
        ("event_id", Encoding::DELTA_BYTE_ARRAY, Encoding::PLAIN),
        ("time", Encoding::DELTA_BINARY_PACKED, Encoding::PLAIN),
    ] {
        let encodings: Vec<Encoding> = columns[index_of(column)].encodings().collect();
        assert!(encodings.contains(&expected), "{column}: {encodings:?}");
        assert!(!encodings.contains(&refused), "{column}: {encodings:?}");
    }
    let mut pages = row_group.get_column_page_reader(index_of("raw")).unwrap();
    let mut data_pages = 0;
    while let Some(page) = pages.get_next_page().unwrap() {
        assert_eq!(page.page_type(), PageType::DATA_PAGE_V2);
        data_pages += 1;
    }
    assert!(data_pages > 0);
}
