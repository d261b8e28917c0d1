//! Where things live in the event log, and what each sealed file says about
//! itself. Writer, reader and `authtrail verify` all go through here.
//!
//! ```text
//! <root>/events/date=YYYY-MM-DD/<ULID>.parquet
//! <root>/events/date=YYYY-MM-DD/_HEAD.json        newest file of the chain
//! <root>/dead_letters/date=YYYY-MM-DD/<ULID>.parquet
//! <root>/findings/date=YYYY-MM-DD/<ULID>.parquet     by the first evidence's day
//! <root>/staging/<ULID>.arrows                    acknowledged, not yet sealed
//! ```
//!
//! Plain Hive-partitioned Parquet: DuckDB, Spark, Trino and Polars read
//! `events/**/*.parquet` as is. Names starting with `.` or `_` are not data
//! and every Hive-aware reader skips them.

use arrow::datatypes::SchemaRef;
use chrono::NaiveDate;

/// Version of the canonical event schema written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// Name of the Hive partition column.
pub const PARTITION_COLUMN: &str = "date";

/// Extension of sealed data files.
pub const FILE_EXTENSION: &str = "parquet";

/// Suffix of a file still being written; never read, removed on start-up.
pub const IN_PROGRESS_SUFFIX: &str = ".inprogress";

/// Per-partition record of the newest sealed file and its hash, so that a
/// change to the last file of a chain is caught as well.
pub const HEAD_FILE: &str = "_HEAD.json";

/// The hash a chain's first file names as its predecessor.
pub const GENESIS_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Directory under the root holding staged (acknowledged, not yet sealed)
/// events: Arrow IPC stream segments that queries read beside the sealed
/// files.
pub const STAGING_DIR: &str = "staging";

/// Extension of a staging segment (an Arrow IPC stream of `events` rows).
pub const STAGING_EXTENSION: &str = "arrows";

/// Extension of a staging segment's position journal: one JSON line per
/// commit that carried source positions (Kafka offsets), beside the
/// segment of the same name.
pub const STAGING_POSITIONS_EXTENSION: &str = "positions";

/// Lock file in the staging directory. Sealing takes it exclusively while
/// it publishes sealed files and removes their segment; a reader takes it
/// shared while it lists files and reads segments, so that it never sees a
/// row both staged and sealed, nor in neither.
pub const STAGING_LOCK: &str = ".publish.lock";

/// Keys of the Parquet key-value metadata every sealed file carries.
pub mod meta {
    /// Schema version of the rows (`"1"`).
    pub const SCHEMA_VERSION: &str = "authtrail.schema_version";
    /// Table name (`events`, `dead_letters`).
    pub const TABLE: &str = "authtrail.table";
    /// Number of rows in the file.
    pub const ROWS: &str = "authtrail.rows";
    /// Smallest event time, µs since the epoch.
    pub const MIN_TIME_MICROS: &str = "authtrail.min_time_us";
    /// Largest event time, µs since the epoch.
    pub const MAX_TIME_MICROS: &str = "authtrail.max_time_us";
    /// SHA-256 (hex) of the previous file in this partition's chain.
    pub const PREV_SHA256: &str = "authtrail.prev_sha256";
    /// File name of the previous file in this partition's chain.
    pub const PREV_FILE: &str = "authtrail.prev_file";
    /// The authtrail version that wrote the file.
    pub const WRITER: &str = "authtrail.writer";
    /// Source positions (e.g. Kafka offsets) the log held when the file was
    /// sealed: a JSON object of stream key to next position.
    pub const SOURCE_POSITIONS: &str = "authtrail.source_positions";
}

/// A table of the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Canonical authentication events.
    Events,
    /// Input that could not be parsed.
    DeadLetters,
    /// What the detection rules found: every version of every finding.
    Findings,
}

impl Table {
    /// Every table, in a stable order.
    pub const ALL: [Table; 3] = [Table::Events, Table::DeadLetters, Table::Findings];

    /// Directory name under the root, also the SQL table name.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::DeadLetters => "dead_letters",
            Table::Findings => "findings",
        }
    }

    /// The string columns whose values together are a row's idempotency
    /// key: a row whose key is already stored is not stored again.
    pub const fn key_columns(self) -> &'static [&'static str] {
        match self {
            Table::Events => &["source", "event_id"],
            Table::DeadLetters => &["dead_letter_id"],
            Table::Findings => &["version_id"],
        }
    }

    /// The Arrow schema of the table's files (without the partition column).
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Events => crate::arrow_schema::events_schema(),
            Table::DeadLetters => crate::arrow_schema::dead_letters_schema(),
            Table::Findings => crate::arrow_schema::findings_schema(),
        }
    }

    /// The time column files are sorted and partitioned by.
    pub const fn time_column(self) -> &'static str {
        match self {
            Table::Events => "time",
            Table::DeadLetters => "received_at",
            Table::Findings => "first_time",
        }
    }
}

/// The partition directory name for a day: `date=YYYY-MM-DD`.
pub fn partition_dir_name(date: NaiveDate) -> String {
    format!("{PARTITION_COLUMN}={}", date.format("%Y-%m-%d"))
}

/// The day a partition directory name stands for, if it is one.
pub fn parse_partition_dir(name: &str) -> Option<NaiveDate> {
    let value = name.strip_prefix(PARTITION_COLUMN)?.strip_prefix('=')?;
    NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}

/// Whether a directory entry is a sealed data file (not hidden, not
/// in progress, not a sidecar).
pub fn is_sealed_file_name(name: &str) -> bool {
    !name.starts_with('.')
        && !name.starts_with('_')
        && name
            .strip_suffix(FILE_EXTENSION)
            .is_some_and(|stem| stem.ends_with('.') && stem.len() > 1)
}

/// Microseconds in a (UTC) day: rows are partitioned by `time / MICROS_PER_DAY`.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The day (UTC) of a timestamp in µs since the epoch.
pub fn day_of_micros(micros: i64) -> Option<NaiveDate> {
    chrono::DateTime::from_timestamp_micros(micros).map(|t| t.date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(partition_dir_name(day), "date=2026-03-09");
        assert_eq!(parse_partition_dir("date=2026-03-09"), Some(day));
        assert_eq!(parse_partition_dir("date=2026-13-09"), None);
        assert_eq!(parse_partition_dir("day=2026-03-09"), None);
    }

    #[test]
    fn only_sealed_parquet_files_count() {
        assert!(is_sealed_file_name("01J9Z.parquet"));
        assert!(!is_sealed_file_name(".01J9Z.parquet.inprogress"));
        assert!(!is_sealed_file_name("_HEAD.json"));
        assert!(!is_sealed_file_name("_x.parquet"));
        assert!(!is_sealed_file_name(".parquet"));
        assert!(!is_sealed_file_name("notes.txt"));
    }
}
