//! The durable event log: an idempotent, hash-chained, Hive-partitioned set
//! of sealed Parquet files, one writer process at a time.
//!
//! One [`EventLog::append`] is one group commit: its events are split by
//! day, duplicates (by `source` + `event_id`, within the batch and against
//! everything stored) are dropped, each day's rows are sorted by time and
//! sealed as one new file chained to that day's previous file, and only
//! when every file and directory is fsync'd does `append` return.

mod chain;
pub mod fsio;
mod parquet_io;
mod positions;
mod staged;
pub mod verify;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use arrow::array::Array;
use chrono::{NaiveDate, Utc};
use rayon::prelude::*;
use xxhash_rust::xxh3::{xxh3_64_with_seed, xxh3_128_with_seed};

use authtrail_schemas::arrow_schema::{dead_letters_to_batch, events_to_batch, findings_to_batch};
use authtrail_schemas::layout::{self, GENESIS_SHA256, meta};
use authtrail_schemas::{
    AppendLog, AuthEvent, CommitSummary, DeadLetter, Finding, SourcePositions, Table,
};

pub use chain::{Head, list_partitions, list_sealed, partition_dir, read_head, table_dir};
pub use parquet_io::{FileOptions, footer_value, read_footer};
pub use staged::{PreparedSeal, PublishedDay, WrittenDay, WrittenSeal};

use crate::IngestError;

/// Builds the Arrow batch of some rows, in the order given.
type ToBatch<R> =
    dyn Fn(&[&R]) -> Result<arrow::array::RecordBatch, arrow::error::ArrowError> + Sync;

/// What one table's share of a commit stored.
struct Sealed {
    rows: u64,
    files: u64,
    time_range: Option<(i64, i64)>,
}

/// Name of the lock file that keeps a second writer out.
pub const LOCK_FILE: &str = ".writer.lock";

/// A row of one of the log's tables, as the writer handles it.
trait LogRow: Sync {
    const TABLE: Table;
    fn time_micros(&self) -> i64;
    /// The row's idempotency key under `seed`.
    fn key(&self, seed: u64) -> u128;
}

impl LogRow for AuthEvent {
    const TABLE: Table = Table::Events;
    fn time_micros(&self) -> i64 {
        self.time.timestamp_micros()
    }
    fn key(&self, seed: u64) -> u128 {
        hash_key(seed, &[&self.source, &self.event_id])
    }
}

impl LogRow for DeadLetter {
    const TABLE: Table = Table::DeadLetters;
    fn time_micros(&self) -> i64 {
        self.received_at.timestamp_micros()
    }
    fn key(&self, seed: u64) -> u128 {
        hash_key(seed, &[&self.dead_letter_id])
    }
}

impl LogRow for Finding {
    const TABLE: Table = Table::Findings;
    fn time_micros(&self) -> i64 {
        self.first_time.timestamp_micros()
    }
    fn key(&self, seed: u64) -> u128 {
        hash_key(seed, &[&self.version_id])
    }
}

/// The idempotency key of a row given its key columns' values: the xxh3
/// 128-bit hash of the last part, seeded by the 64-bit hash of the part
/// before it, and so on back to `seed`. Parts cannot run into each other
/// (`["ab", "c"]` and `["a", "bc"]` seed the last part's hash
/// differently); two different first parts would share a seed with odds
/// of 2^-64, and there are only a handful of sources. Keys are never
/// stored (each process draws its own `seed` and rehashes sealed files),
/// so the scheme is free to change.
///
/// Each part is hashed where it lies. Copying the parts into one buffer
/// on the stack first cost about 10 ns an event more at the commit and
/// again at the seal (`cargo bench -p authtrail-ingest --bench dedup`):
/// xxh3 reads that buffer in words that straddle the copy's stores, and
/// waits for the stores to reach the cache.
fn hash_key(seed: u64, parts: &[&str]) -> u128 {
    let Some((last, before)) = parts.split_last() else {
        return xxh3_128_with_seed(&[], seed);
    };
    let seed = before
        .iter()
        .fold(seed, |seed, part| xxh3_64_with_seed(part.as_bytes(), seed));
    xxh3_128_with_seed(last.as_bytes(), seed)
}

/// Keys are already uniform 128-bit hashes: hashing them again is waste.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}

type KeySet = HashSet<u128, BuildHasherDefault<KeyHasher>>;

/// What the writer knows about one partition: every key it holds, the keys
/// staged for it (acknowledged, not yet sealed), and the head of its chain.
struct Partition {
    keys: KeySet,
    staged: KeySet,
    head: Option<Head>,
}

/// Settings of the writer.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    /// How sealed files are encoded.
    pub file: FileOptions,
}

/// The writer side of the event log. Holds the log's lock for its lifetime.
pub struct EventLog {
    root: PathBuf,
    options: LogOptions,
    /// Keys are hashed with a per-process random seed, so that nobody can
    /// craft an event id that collides with another's.
    key_seed: u64,
    partitions: HashMap<(Table, NaiveDate), Partition>,
    /// Every durable source position (sealed or staged); each sealed file
    /// records them all.
    positions: SourcePositions,
    names: ulid::Generator,
    _lock: File,
}

/// One partition's share of a commit.
struct PartitionWrite {
    table: Table,
    day: NaiveDate,
    order: Vec<usize>,
    keys: Vec<u128>,
    name: String,
    prev: Option<Head>,
}

impl EventLog {
    /// Opens (creating if needed) the log at `root` for writing: takes the
    /// writer lock and removes what a crash left in progress.
    pub fn open(root: impl Into<PathBuf>, options: LogOptions) -> Result<Self, IngestError> {
        let root = root.into();
        for table in Table::ALL {
            fsio::create_dir_durable(&chain::table_dir(&root, table))?;
        }
        let lock_path = root.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(IngestError::io("opening lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(IngestError::Locked(root)),
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(IngestError::io("locking", &lock_path)(err));
            }
        }
        for table in Table::ALL {
            for (_, dir) in chain::list_partitions(&root, table)? {
                let removed = chain::remove_in_progress(&dir)?;
                if removed > 0 {
                    tracing::info!(dir = %dir.display(), removed, "removed files a crash left in progress");
                }
            }
        }
        let positions = positions::load(&root)?;
        Ok(EventLog {
            root,
            options,
            key_seed: rand::random(),
            partitions: HashMap::new(),
            positions,
            names: ulid::Generator::new(),
            _lock: lock,
        })
    }

    /// The log's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How far into each external stream the log holds everything.
    pub fn source_positions(&self) -> &SourcePositions {
        &self.positions
    }

    /// Records positions whose records are durable (sealed, staged or
    /// dead-lettered); every file sealed from now on carries them.
    pub fn advance_positions(&mut self, positions: &SourcePositions) {
        self.positions.merge(positions);
    }

    fn key_of(&self, row: &impl LogRow) -> u128 {
        row.key(self.key_seed)
    }

    /// Loads a partition's keys and head the first time it is touched, and
    /// repairs a head that a crash left one file behind.
    fn load_partition(&mut self, table: Table, day: NaiveDate) -> Result<(), IngestError> {
        if self.partitions.contains_key(&(table, day)) {
            return Ok(());
        }
        let dir = chain::partition_dir(&self.root, table, day);
        let names = chain::list_sealed(&dir)?;
        let head = reconcile_head(&dir, &names, chain::read_head(&dir)?)?;
        let seed = self.key_seed;
        let per_file: Vec<Vec<u128>> = names
            .par_iter()
            .map(|name| {
                let mut keys = Vec::new();
                parquet_io::for_each_key_batch(&dir.join(name), table, |columns| {
                    for row in 0..columns[0].len() {
                        let parts: Vec<&str> = columns.iter().map(|c| c.value(row)).collect();
                        keys.push(hash_key(seed, &parts));
                    }
                })?;
                Ok(keys)
            })
            .collect::<Result<_, IngestError>>()?;
        let mut keys = KeySet::default();
        keys.reserve(per_file.iter().map(Vec::len).sum());
        keys.extend(per_file.into_iter().flatten());
        self.partitions.insert(
            (table, day),
            Partition {
                keys,
                staged: KeySet::default(),
                head,
            },
        );
        Ok(())
    }

    /// A fresh file name that sorts after every file of the partition.
    fn next_name(&mut self, after: Option<&str>) -> String {
        let mut id = self.names.generate().unwrap_or_else(|_| ulid::Ulid::new());
        if let Some(previous) = after
            .and_then(|name| name.strip_suffix(".parquet"))
            .and_then(|s| ulid::Ulid::from_string(s).ok())
        {
            while id <= previous {
                id = id.increment().unwrap_or_default();
            }
        }
        format!("{id}.{}", layout::FILE_EXTENSION)
    }

    /// Splits rows by day, drops duplicates, and plans one file per day.
    fn plan<R: LogRow>(
        &mut self,
        rows: &[&R],
        duplicates: &mut u64,
    ) -> Result<Vec<PartitionWrite>, IngestError> {
        let mut by_day: HashMap<NaiveDate, Vec<usize>> = HashMap::new();
        for (index, row) in rows.iter().enumerate() {
            let day = layout::day_of_micros(row.time_micros()).unwrap_or_default();
            by_day.entry(day).or_default().push(index);
        }
        let mut days: Vec<_> = by_day.into_iter().collect();
        days.sort_unstable_by_key(|(day, _)| *day);
        let mut plans = Vec::with_capacity(days.len());
        for (day, indices) in days {
            self.load_partition(R::TABLE, day)?;
            let mut fresh = KeySet::default();
            let mut order = Vec::with_capacity(indices.len());
            let mut keys = Vec::with_capacity(indices.len());
            {
                let partition = &self.partitions[&(R::TABLE, day)];
                for index in indices {
                    let key = self.key_of(rows[index]);
                    if partition.keys.contains(&key)
                        || partition.staged.contains(&key)
                        || !fresh.insert(key)
                    {
                        *duplicates += 1;
                    } else {
                        order.push(index);
                        keys.push(key);
                    }
                }
            }
            if order.is_empty() {
                continue;
            }
            order.sort_by_key(|&i| rows[i].time_micros());
            let prev = self.partitions[&(R::TABLE, day)].head.clone();
            let name = self.next_name(prev.as_ref().map(|h| h.file.as_str()));
            plans.push(PartitionWrite {
                table: R::TABLE,
                day,
                order,
                keys,
                name,
                prev,
            });
        }
        Ok(plans)
    }

    fn seal<R: LogRow>(
        &self,
        rows: &[&R],
        plan: &PartitionWrite,
        to_batch: &ToBatch<R>,
    ) -> Result<parquet_io::SealedFile, IngestError> {
        let dir = chain::partition_dir(&self.root, plan.table, plan.day);
        fsio::create_dir_durable(&dir)?;
        let selected: Vec<&R> = plan.order.iter().map(|&i| rows[i]).collect();
        let batch = to_batch(&selected)?;
        let first = plan.order.first().map_or(0, |&i| rows[i].time_micros());
        let last = plan.order.last().map_or(0, |&i| rows[i].time_micros());
        let metadata = parquet_io::file_metadata(
            plan.table,
            plan.order.len(),
            (first, last),
            plan.prev.as_ref().map(|h| h.file.as_str()),
            plan.prev
                .as_ref()
                .map_or(GENESIS_SHA256, |h| h.sha256.as_str()),
            &self.positions,
        );
        let sealed = parquet_io::write_sealed(
            &dir,
            &plan.name,
            plan.table,
            &batch,
            metadata,
            self.options.file,
        )?;
        let head = Head {
            file: sealed.name.clone(),
            sha256: sealed.sha256.clone(),
            files: plan.prev.as_ref().map_or(0, |h| h.files) + 1,
        };
        chain::write_head(&dir, &head)?;
        Ok(sealed)
    }

    /// Seals every planned file in parallel, then records the new heads and
    /// keys. Keys are recorded only for partitions whose file is durable, so
    /// a failed commit can simply be retried.
    fn commit<R: LogRow>(
        &mut self,
        rows: &[&R],
        plans: Vec<PartitionWrite>,
        to_batch: &ToBatch<R>,
    ) -> Result<Sealed, IngestError> {
        let this = &*self;
        let results: Vec<Result<parquet_io::SealedFile, IngestError>> = plans
            .par_iter()
            .map(|plan| this.seal(rows, plan, to_batch))
            .collect();
        let mut stored = 0u64;
        let mut files = 0u64;
        let mut range: Option<(i64, i64)> = None;
        let mut first_error = None;
        for (plan, result) in plans.into_iter().zip(results) {
            match result {
                Ok(sealed) => {
                    let partition = self
                        .partitions
                        .get_mut(&(plan.table, plan.day))
                        .ok_or_else(|| IngestError::Damaged {
                            path: self.root.clone(),
                            message: "partition state lost during commit".into(),
                        })?;
                    partition.keys.extend(plan.keys.iter().copied());
                    partition.head = Some(Head {
                        file: sealed.name,
                        sha256: sealed.sha256,
                        files: partition.head.as_ref().map_or(0, |h| h.files) + 1,
                    });
                    stored += plan.order.len() as u64;
                    files += 1;
                    let first = rows[plan.order[0]].time_micros();
                    let last = rows[plan.order[plan.order.len() - 1]].time_micros();
                    range = Some(range.map_or((first, last), |(a, b)| (a.min(first), b.max(last))));
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(Sealed {
                rows: stored,
                files,
                time_range: range,
            }),
        }
    }
}

/// Checks a partition's head against its files. A head one file behind,
/// with that file naming the head's file as predecessor, is what a crash
/// between sealing and updating the head leaves: it is repaired. Anything
/// else means the log was changed behind the writer's back.
fn reconcile_head(
    dir: &Path,
    names: &[String],
    head: Option<Head>,
) -> Result<Option<Head>, IngestError> {
    let damaged = |message: String| IngestError::Damaged {
        path: dir.to_owned(),
        message,
    };
    let Some(newest) = names.last() else {
        return match head {
            None => Ok(None),
            Some(h) => Err(damaged(format!(
                "head names {} but the partition has no files",
                h.file
            ))),
        };
    };
    if let Some(h) = &head
        && &h.file == newest
    {
        return Ok(head);
    }
    let footer = parquet_io::read_footer(&dir.join(newest))?;
    let prev_file = parquet_io::footer_value(&footer, meta::PREV_FILE);
    let expected_prev = head.as_ref().map(|h| h.file.as_str());
    let second_newest = names.len().checked_sub(2).map(|i| names[i].as_str());
    if prev_file != expected_prev || prev_file != second_newest {
        return Err(damaged(format!(
            "head names {:?} but the newest file is {newest}",
            expected_prev.unwrap_or("nothing")
        )));
    }
    let (sha256, _) = fsio::sha256_file(&dir.join(newest))
        .map_err(IngestError::io("hashing", dir.join(newest)))?;
    let repaired = Head {
        file: newest.clone(),
        sha256,
        files: names.len() as u64,
    };
    chain::write_head(dir, &repaired)?;
    tracing::info!(dir = %dir.display(), file = %newest, "repaired a partition head left behind by a crash");
    Ok(Some(repaired))
}

impl AppendLog for EventLog {
    type Error = IngestError;

    fn append_segments(
        &mut self,
        segments: Vec<Vec<AuthEvent>>,
        dead_letters: Vec<DeadLetter>,
    ) -> Result<CommitSummary, IngestError> {
        let ingested_at = Utc::now().timestamp_micros();
        let events: Vec<&AuthEvent> = segments.iter().flatten().collect();
        let dead_letters: Vec<&DeadLetter> = dead_letters.iter().collect();
        let mut summary = CommitSummary::default();
        let mut duplicates = 0;
        let event_plans = self.plan(&events, &mut duplicates)?;
        summary.duplicates = duplicates;
        let mut dead_duplicates = 0;
        let dead_plans = self.plan(&dead_letters, &mut dead_duplicates)?;
        let events_sealed = self.commit(&events, event_plans, &move |rows| {
            events_to_batch(rows, ingested_at)
        })?;
        summary.stored = events_sealed.rows;
        summary.files = events_sealed.files;
        summary.time_range = events_sealed.time_range;
        let dead_sealed = self.commit(&dead_letters, dead_plans, &dead_letters_to_batch)?;
        summary.dead_letters = dead_sealed.rows;
        summary.files += dead_sealed.files;
        Ok(summary)
    }

    fn append_findings(&mut self, findings: Vec<Finding>) -> Result<CommitSummary, IngestError> {
        let rows: Vec<&Finding> = findings.iter().collect();
        let mut duplicates = 0;
        let plans = self.plan(&rows, &mut duplicates)?;
        let sealed = self.commit(&rows, plans, &findings_to_batch)?;
        Ok(CommitSummary {
            stored: sealed.rows,
            duplicates,
            dead_letters: 0,
            files: sealed.files,
            time_range: sealed.time_range,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_their_parts_apart() {
        let long = "x".repeat(4096);
        let keys = [
            hash_key(7, &["ocsf", "demo-2a-20261117-000000001"]),
            hash_key(7, &["ocsf", "demo-2a-20261117-000000002"]),
            hash_key(7, &["okta", "demo-2a-20261117-000000001"]),
            hash_key(8, &["ocsf", "demo-2a-20261117-000000001"]),
            // Parts cannot run into each other.
            hash_key(7, &["ab", "c"]),
            hash_key(7, &["a", "bc"]),
            hash_key(7, &["", "abc"]),
            hash_key(7, &["abc", ""]),
            hash_key(7, &["", ""]),
            hash_key(7, &["okta", &long]),
            hash_key(7, &["okta", &long[1..]]),
        ];
        let distinct: std::collections::HashSet<u128> = keys.iter().copied().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:x?}");
        // The same parts under the same seed give the same key.
        assert_eq!(
            keys[0],
            hash_key(7, &["ocsf", "demo-2a-20261117-000000001"])
        );
        assert_eq!(hash_key(7, &["a"]), xxh3_128_with_seed(b"a", 7));
    }
}
