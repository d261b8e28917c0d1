//! The event log's side of staging: reserving the keys of staged events so
//! that nothing is staged or sealed twice, and sealing staged Arrow batches
//! in three steps (prepare under the writer's lock, encode and fsync
//! without it, publish under it again) so that commits go on while
//! Parquet is being encoded.

use std::path::PathBuf;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use chrono::NaiveDate;
use rayon::prelude::*;

use authtrail_schemas::layout::{self, GENESIS_SHA256, MICROS_PER_DAY};
use authtrail_schemas::{CommitSummary, DeadLetter, SourcePositions, Table};

use super::chain::{self, Head};
use super::parquet_io::{self, WrittenFile};
use super::{EventLog, KeySet, fsio, hash_key};
use crate::IngestError;

/// One day's file of a seal, ready to be written.
struct PreparedFile {
    day: NaiveDate,
    /// (batch, row) of the file's rows among the seal's inputs, in order.
    rows: Vec<(usize, usize)>,
    keys: Vec<u128>,
    name: String,
    prev: Option<Head>,
    range: (i64, i64),
}

/// Staged rows split by day, sorted by time and deduplicated against the
/// sealed log: what [`PreparedSeal::write`] encodes.
pub struct PreparedSeal {
    root: PathBuf,
    options: parquet_io::FileOptions,
    /// The log's positions when the seal was prepared (named): files named
    /// later carry later positions.
    positions: SourcePositions,
    /// The batches the files' rows are gathered from.
    inputs: Vec<RecordBatch>,
    files: Vec<PreparedFile>,
    /// Rows dropped because they were sealed already (a crash between
    /// publishing and removing their segment), or twice among the inputs.
    pub already_sealed: u64,
}

/// One day's file, written and fsync'd under its in-progress name.
pub struct WrittenDay {
    day: NaiveDate,
    dir: PathBuf,
    keys: Vec<u128>,
    prev: Option<Head>,
    file: WrittenFile,
}

/// A day's file in place and its head advanced, on disk; what is left is
/// for the log to record ([`EventLog::record_published`]).
pub struct PublishedDay {
    day: NaiveDate,
    keys: Vec<u128>,
    head: Head,
}

/// Files written and fsync'd under in-progress names: what
/// [`EventLog::publish_staged`] makes visible.
pub struct WrittenSeal {
    days: Vec<WrittenDay>,
}

impl WrittenSeal {
    /// The seal's files, one a day, to publish one at a time.
    pub fn into_days(self) -> Vec<WrittenDay> {
        self.days
    }
}

impl WrittenDay {
    /// Renames the file into place and advances the day's head, each
    /// fsync'd with its directory (three fsyncs). It needs nothing of the
    /// log, so a seal does it without holding the log, which every commit
    /// needs.
    pub fn publish(self) -> Result<PublishedDay, IngestError> {
        parquet_io::publish(&self.dir, &self.file)?;
        let head = Head {
            file: self.file.sealed.name,
            sha256: self.file.sealed.sha256,
            files: self.prev.map_or(0, |h| h.files) + 1,
        };
        chain::write_head(&self.dir, &head)?;
        Ok(PublishedDay {
            day: self.day,
            keys: self.keys,
            head,
        })
    }
}

impl PreparedSeal {
    /// Files the seal will write, one per day.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The first and last time of the rows to be sealed.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.files
            .iter()
            .map(|file| file.range)
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// Gathers, encodes and fsyncs every day's file (in parallel), without
    /// publishing any.
    pub fn write(self) -> Result<WrittenSeal, IngestError> {
        let root = self.root;
        let options = self.options;
        let positions = self.positions;
        let inputs: Vec<&RecordBatch> = self.inputs.iter().collect();
        let days = self
            .files
            .into_par_iter()
            .map(|file| {
                let parts = gather(&inputs, &file.rows)?;
                drop(file.rows);
                let dir = chain::partition_dir(&root, Table::Events, file.day);
                fsio::create_dir_durable(&dir)?;
                let metadata = parquet_io::file_metadata(
                    Table::Events,
                    file.keys.len(),
                    file.range,
                    file.prev.as_ref().map(|h| h.file.as_str()),
                    file.prev
                        .as_ref()
                        .map_or(GENESIS_SHA256, |h| h.sha256.as_str()),
                    &positions,
                );
                let written = parquet_io::write_in_progress(
                    &dir,
                    &file.name,
                    Table::Events,
                    &parts,
                    metadata,
                    options,
                )?;
                Ok(WrittenDay {
                    day: file.day,
                    dir,
                    keys: file.keys,
                    prev: file.prev,
                    file: written,
                })
            })
            .collect::<Result<Vec<_>, IngestError>>()?;
        Ok(WrittenSeal { days })
    }
}

/// Rows a run of consecutive input rows must have on average for a file
/// to be written straight from slices of its inputs.
const MIN_AVERAGE_RUN: usize = 32;

/// Rows gathered into one batch. A day's file is gathered piece by piece,
/// so that no second copy of a whole day's `raw` column is held at once,
/// and pieces of this size are reused from one to the next.
const GATHER_CHUNK_ROWS: usize = 8192;

/// A file's rows, given as (input, row) in file order, as batches to write
/// in turn. Logs arrive mostly in time order, so a day's rows are mostly
/// long runs of consecutive rows of one input: those are written as
/// zero-copy slices of it. Rows scattered among the inputs are gathered
/// into one batch (one copy), as slices of a few rows each would cost
/// more to encode than the copy.
fn gather(
    inputs: &[&RecordBatch],
    rows: &[(usize, usize)],
) -> Result<Vec<RecordBatch>, IngestError> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for &(input, row) in rows {
        match runs.last_mut() {
            Some((last_input, start, len)) if *last_input == input && *start + *len == row => {
                *len += 1;
            }
            _ => runs.push((input, row, 1)),
        }
    }
    if runs.len().saturating_mul(MIN_AVERAGE_RUN) > rows.len() {
        let mut slots = vec![usize::MAX; inputs.len()];
        return rows
            .chunks(GATHER_CHUNK_ROWS)
            .map(|chunk| gather_chunk(inputs, chunk, &mut slots))
            .collect();
    }
    Ok(runs
        .into_iter()
        .map(|(input, start, len)| inputs[input].slice(start, len))
        .collect())
}

/// Gathers one chunk of a file's rows into a batch, interleaving only the
/// inputs the chunk draws from. Interleaving walks every input it is given
/// for every column (types, null counts, value offsets), and a segment of
/// single deliveries holds thousands of inputs of a dozen rows each, of
/// which a chunk of rows near in time uses a few hundred.
///
/// `slots` is as long as `inputs` and all `usize::MAX`, and is left so.
fn gather_chunk(
    inputs: &[&RecordBatch],
    chunk: &[(usize, usize)],
    slots: &mut [usize],
) -> Result<RecordBatch, IngestError> {
    let mut used: Vec<usize> = Vec::new();
    let indices: Vec<(usize, usize)> = chunk
        .iter()
        .map(|&(input, row)| {
            if slots[input] == usize::MAX {
                slots[input] = used.len();
                used.push(input);
            }
            (slots[input], row)
        })
        .collect();
    for &input in &used {
        slots[input] = usize::MAX;
    }
    let used: Vec<&RecordBatch> = used.into_iter().map(|input| inputs[input]).collect();
    Ok(interleave_record_batch(&used, &indices)?)
}

type KeyColumns<'a> = (
    &'a arrow::array::TimestampMicrosecondArray,
    &'a arrow::array::StringArray,
    &'a arrow::array::StringArray,
);

/// The time and idempotency-key columns of an `events` batch.
fn key_columns(batch: &RecordBatch) -> Result<KeyColumns<'_>, IngestError> {
    let schema = batch.schema();
    Ok((
        batch
            .column(schema.index_of("time")?)
            .as_primitive::<TimestampMicrosecondType>(),
        batch.column(schema.index_of("source")?).as_string::<i32>(),
        batch
            .column(schema.index_of("event_id")?)
            .as_string::<i32>(),
    ))
}

impl EventLog {
    /// Checks the rows of an `events` batch against everything sealed or
    /// staged (and against each other) and reserves the keys of the new
    /// ones. Returns, per row, whether it is new and must be staged.
    pub fn stage_batch(&mut self, batch: &RecordBatch) -> Result<Vec<bool>, IngestError> {
        let (times, sources, ids) = key_columns(batch)?;
        let rows = batch.num_rows();
        let seed = self.key_seed;
        let mut accepted = Vec::with_capacity(rows);
        // Runs of rows of one day look their partition up once.
        let day_number = |row: usize| times.value(row).div_euclid(MICROS_PER_DAY);
        let mut start = 0;
        while start < rows {
            let mut end = start + 1;
            while end < rows && day_number(end) == day_number(start) {
                end += 1;
            }
            let day = layout::day_of_micros(times.value(start)).unwrap_or_default();
            self.load_partition(Table::Events, day)?;
            let partition = self.partition_mut(day)?;
            for row in start..end {
                let key = hash_key(seed, &[sources.value(row), ids.value(row)]);
                accepted.push(!partition.keys.contains(&key) && partition.staged.insert(key));
            }
            start = end;
        }
        Ok(accepted)
    }

    /// Releases the reservations of a batch's rows whose commit failed, so
    /// that a retry can store them.
    pub fn unstage_batch(&mut self, batch: &RecordBatch) {
        let Ok((times, sources, ids)) = key_columns(batch) else {
            return;
        };
        for row in 0..batch.num_rows() {
            let day = layout::day_of_micros(times.value(row)).unwrap_or_default();
            let key = self.key_of_parts(sources.value(row), ids.value(row));
            if let Some(partition) = self.partitions.get_mut(&(Table::Events, day)) {
                partition.staged.remove(&key);
            }
        }
    }

    fn key_of_parts(&self, source: &str, id: &str) -> u128 {
        hash_key(self.key_seed, &[source, id])
    }

    /// Splits staged `events` batches by day, sorts each day by time, drops
    /// rows already sealed, and names each day's next file.
    pub fn prepare_staged(&mut self, batches: &[RecordBatch]) -> Result<PreparedSeal, IngestError> {
        let mut prepared = PreparedSeal {
            root: self.root.clone(),
            options: self.options.file,
            positions: self.positions.clone(),
            inputs: batches.to_vec(),
            files: Vec::new(),
            already_sealed: 0,
        };
        // (time, batch, row) of every staged row, in time order (arrival
        // order among equal times). Each day's file is then gathered from
        // the staged batches in one copy, without concatenating them first.
        let mut order: Vec<(i64, usize, usize)> =
            Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
        let mut sources = Vec::with_capacity(batches.len());
        let mut ids = Vec::with_capacity(batches.len());
        for (b, batch) in batches.iter().enumerate() {
            let schema = batch.schema();
            let times = batch
                .column(schema.index_of("time")?)
                .as_primitive::<TimestampMicrosecondType>();
            order.extend(times.values().iter().enumerate().map(|(r, &t)| (t, b, r)));
            sources.push(batch.column(schema.index_of("source")?).as_string::<i32>());
            ids.push(
                batch
                    .column(schema.index_of("event_id")?)
                    .as_string::<i32>(),
            );
        }
        if order.is_empty() {
            return Ok(prepared);
        }
        order.sort_unstable();
        let mut start = 0;
        while start < order.len() {
            let day_number = order[start].0.div_euclid(MICROS_PER_DAY);
            let mut end = start + 1;
            while end < order.len() && order[end].0.div_euclid(MICROS_PER_DAY) == day_number {
                end += 1;
            }
            let day = layout::day_of_micros(order[start].0).unwrap_or_default();
            self.load_partition(Table::Events, day)?;
            let seed = self.key_seed;
            let partition = self.partition_mut(day)?;
            let mut keep: Vec<(usize, usize)> = Vec::with_capacity(end - start);
            let mut keys = Vec::with_capacity(end - start);
            let mut range = (i64::MAX, i64::MIN);
            let mut seen = KeySet::with_capacity_and_hasher(end - start, Default::default());
            for &(time, b, r) in &order[start..end] {
                let key = hash_key(seed, &[sources[b].value(r), ids[b].value(r)]);
                if partition.keys.contains(&key) || !seen.insert(key) {
                    prepared.already_sealed += 1;
                } else {
                    keep.push((b, r));
                    keys.push(key);
                    range = (range.0.min(time), range.1.max(time));
                }
            }
            if !keep.is_empty() {
                let prev = self.partition_mut(day)?.head.clone();
                let name = self.next_name(prev.as_ref().map(|h| h.file.as_str()));
                prepared.files.push(PreparedFile {
                    day,
                    rows: keep,
                    keys,
                    name,
                    prev,
                    range,
                });
            }
            start = end;
        }
        Ok(prepared)
    }

    /// Makes written files visible: renames each into place, fsyncs its
    /// directory, advances the day's head, and moves the keys from staged
    /// to sealed. The caller holds the staging lock, so readers switch from
    /// the staged rows to the sealed ones in one step.
    pub fn publish_staged(&mut self, written: WrittenSeal) -> Result<u64, IngestError> {
        let mut rows = 0u64;
        for day in written.into_days() {
            rows += self.record_published(day.publish()?)?;
        }
        Ok(rows)
    }

    /// Records a day published on disk: its keys move from staged to
    /// sealed (a key is in one or the other throughout, so a commit
    /// meanwhile finds it either way) and its head advances. Returns the
    /// rows it sealed.
    pub fn record_published(&mut self, published: PublishedDay) -> Result<u64, IngestError> {
        let partition = self.partition_mut(published.day)?;
        for key in &published.keys {
            partition.staged.remove(key);
        }
        let rows = published.keys.len() as u64;
        partition.keys.extend(published.keys);
        partition.head = Some(published.head);
        Ok(rows)
    }

    /// Stores `events` batches and dead letters in one group commit, as
    /// [`AppendLog::append`](authtrail_schemas::AppendLog::append) does for
    /// parsed events: each day's new rows sorted by time into one new
    /// file, duplicates dropped, everything durable when it returns. Only
    /// for a writer with nothing staged (file ingest).
    pub fn append_batches(
        &mut self,
        batches: &[RecordBatch],
        dead_letters: Vec<DeadLetter>,
    ) -> Result<CommitSummary, IngestError> {
        let prepared = self.prepare_staged(batches)?;
        let mut summary = CommitSummary {
            duplicates: prepared.already_sealed,
            files: prepared.file_count() as u64,
            time_range: prepared.time_range(),
            ..CommitSummary::default()
        };
        let written = prepared.write()?;
        summary.stored = self.publish_staged(written)?;
        if !dead_letters.is_empty() {
            let dead = authtrail_schemas::AppendLog::append(self, Vec::new(), dead_letters)?;
            summary.dead_letters = dead.dead_letters;
            summary.files += dead.files;
        }
        Ok(summary)
    }

    /// Stores dead letters at once, in their own sealed files. Returns how
    /// many were new.
    pub fn append_dead_letters(&mut self, letters: Vec<DeadLetter>) -> Result<u64, IngestError> {
        use authtrail_schemas::AppendLog;
        Ok(self.append(Vec::new(), letters)?.dead_letters)
    }

    fn partition_mut(&mut self, day: NaiveDate) -> Result<&mut super::Partition, IngestError> {
        self.partitions
            .get_mut(&(Table::Events, day))
            .ok_or_else(|| IngestError::Damaged {
                path: PathBuf::from(layout::partition_dir_name(day)),
                message: format!("partition {day} was not loaded"),
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use arrow::array::AsArray;
    use chrono::DateTime;

    use authtrail_schemas::arrow_schema::events_to_batch;
    use authtrail_schemas::{Action, AuthEvent, Outcome};

    use super::*;

    fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
        let events: Vec<AuthEvent> = ids
            .map(|i| {
                let time = DateTime::from_timestamp(1_790_000_000 + i, 0).unwrap();
                AuthEvent::new(
                    format!("e{i}"),
                    time,
                    "test",
                    Action::Login,
                    Outcome::Success,
                )
            })
            .collect();
        events_to_batch(&events.iter().collect::<Vec<_>>(), 0).unwrap()
    }

    fn ids(batches: &[RecordBatch]) -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| {
                let column = b.column_by_name("event_id").unwrap().as_string::<i32>();
                column
                    .iter()
                    .map(|v| v.unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn long_runs_become_slices_and_scattered_rows_one_gathered_batch() {
        let (a, b) = (batch(0..100), batch(100..200));
        let inputs = [&a, &b];

        let in_order: Vec<(usize, usize)> = (0..100)
            .map(|r| (0, r))
            .chain((0..100).map(|r| (1, r)))
            .collect();
        let parts = gather(&inputs, &in_order).unwrap();
        assert_eq!(parts.len(), 2, "two runs, written as two slices");
        assert_eq!(ids(&parts), ids(&[a.clone(), b.clone()]));

        let alternating: Vec<(usize, usize)> = (0..100).flat_map(|r| [(1, r), (0, r)]).collect();
        let parts = gather(&inputs, &alternating).unwrap();
        assert_eq!(
            parts.len(),
            1,
            "runs of one row are gathered into one batch"
        );
        let expected: Vec<String> = (0..100)
            .flat_map(|r| [format!("e{}", 100 + r), format!("e{r}")])
            .collect();
        assert_eq!(ids(&parts), expected);
    }

    #[test]
    fn chunks_of_many_small_inputs_gather_each_row_from_its_own_input() {
        // 3,000 single-row inputs, taken in an order that visits each
        // chunk's inputs out of turn, over several chunks.
        let inputs: Vec<RecordBatch> = (0..3_000).map(|i| batch(i..i + 1)).collect();
        let refs: Vec<&RecordBatch> = inputs.iter().collect();
        let order: Vec<(usize, usize)> = (0..3_000)
            .map(|i| ((i * 7 + GATHER_CHUNK_ROWS / 2) % 3_000, 0))
            .cycle()
            .take(GATHER_CHUNK_ROWS * 2 + 5)
            .collect();
        let parts = gather(&refs, &order).unwrap();
        assert_eq!(parts.len(), 3, "gathered in chunks of GATHER_CHUNK_ROWS");
        let expected: Vec<String> = order.iter().map(|&(i, _)| format!("e{i}")).collect();
        assert_eq!(ids(&parts), expected);
    }
}
