//! Reading staged events: rows that are acknowledged and durable but not
//! yet sealed into Parquet, kept by the writer as Arrow IPC segments under
//! `<root>/staging/`. Queries see them beside the sealed files, which is
//! what makes an acknowledged event visible at once.
//!
//! The writer publishes sealed files and removes their segment under an
//! exclusive lock on `staging/.publish.lock`; a [`Snapshot`] holds the same
//! lock shared while a query lists the sealed files and reads the segments,
//! so a query never sees a row twice or misses one while a segment is being
//! sealed.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Date32Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};
use datafusion::arrow::ipc::reader::StreamReader;

use authtrail_schemas::arrow_schema::events_schema;
use authtrail_schemas::layout::{
    MICROS_PER_DAY, PARTITION_COLUMN, STAGING_DIR, STAGING_EXTENSION, STAGING_LOCK,
};

use crate::QueryError;

/// A shared hold on the staging lock: while it lives, no sealed file is
/// published and no segment removed.
pub struct Snapshot {
    _lock: Option<File>,
}

impl Snapshot {
    /// Takes the shared lock of the log at `root` (waiting for a publish in
    /// progress). A log that never staged anything has no lock to take.
    pub fn take(root: &Path) -> Result<Snapshot, QueryError> {
        let path = root.join(STAGING_DIR).join(STAGING_LOCK);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Snapshot { _lock: None });
            }
            Err(err) => return Err(store_error(&path, err)),
        };
        file.lock_shared().map_err(|err| store_error(&path, err))?;
        Ok(Snapshot { _lock: Some(file) })
    }
}

fn store_error(path: &Path, err: impl std::fmt::Display) -> QueryError {
    QueryError::Store {
        path: path.to_owned(),
        message: err.to_string(),
    }
}

/// The schema of `events` as queries see it: the file columns plus the
/// partition column `date`.
pub fn events_with_date_schema() -> SchemaRef {
    let mut fields: Vec<Field> = events_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(PARTITION_COLUMN, DataType::Date32, false));
    Arc::new(Schema::new(fields))
}

/// Every staged row of the log at `root`, with its `date` column added.
pub fn read_staged(root: &Path) -> Result<Vec<RecordBatch>, QueryError> {
    let dir = root.join(STAGING_DIR);
    let mut segments: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == STAGING_EXTENSION))
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(store_error(&dir, err)),
    };
    segments.sort();
    let schema = events_with_date_schema();
    let mut batches = Vec::new();
    for path in segments {
        let file = match File::open(&path) {
            Ok(file) => file,
            // Sealed and removed between listing and opening: its rows are
            // in the sealed files, which this snapshot lists after.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(store_error(&path, err)),
        };
        let Ok(reader) = StreamReader::try_new(BufReader::new(file), None) else {
            // Not even the schema is written yet: nothing acknowledged.
            continue;
        };
        for batch in reader {
            // A message still being written is not acknowledged yet.
            let Ok(batch) = batch else { break };
            batches.push(with_date(&batch, &schema)?);
        }
    }
    Ok(batches)
}

fn with_date(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, QueryError> {
    let time = batch
        .column(batch.schema().index_of("time")?)
        .as_primitive::<TimestampMicrosecondType>();
    let dates: Date32Array = time.unary(|t| t.div_euclid(MICROS_PER_DAY) as i32);
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(dates));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
