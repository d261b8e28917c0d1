//! Writing one sealed Parquet file (in progress → fsync → rename → fsync of
//! the directory) and reading back what the writer needs from existing
//! files: their footer metadata and their idempotency keys.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, ParquetMetaData, ParquetMetaDataReader, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use authtrail_schemas::layout::{IN_PROGRESS_SUFFIX, meta};
use authtrail_schemas::{SourcePositions, Table};

use super::fsio::{self, HashingWriter};
use crate::IngestError;

/// How sealed files are encoded.
#[derive(Debug, Clone, Copy)]
pub struct FileOptions {
    /// zstd level for every column.
    pub zstd_level: i32,
    /// Rows per row group.
    pub row_group_rows: usize,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            zstd_level: 1,
            row_group_rows: 128 * 1024,
        }
    }
}

/// What a freshly sealed file is.
#[derive(Debug, Clone)]
pub struct SealedFile {
    /// File name within the partition.
    pub name: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

fn properties(
    table: Table,
    options: FileOptions,
    metadata: Vec<KeyValue>,
) -> Result<WriterProperties, IngestError> {
    let level = ZstdLevel::try_new(options.zstd_level).map_err(|source| IngestError::Parquet {
        path: Default::default(),
        source,
    })?;
    let time_column = table
        .schema()
        .index_of(table.time_column())
        .map_err(IngestError::Arrow)?;
    let mut builder = WriterProperties::builder()
        // Version 2 data pages compress a page's values where they were
        // encoded; version 1 copies them behind the page's levels first,
        // into a buffer that compressing then outgrows and copies again.
        // Every reader named in DESIGN.md reads them.
        .set_writer_version(WriterVersion::PARQUET_2_0)
        // Version 2 would otherwise change what the columns fall back to
        // (delta encodings, slower to write); the few that gain from one
        // are set below.
        .set_encoding(Encoding::PLAIN)
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(options.row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: time_column as i32,
            descending: false,
            nulls_first: false,
        }]))
        .set_created_by(format!("authtrail {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(metadata));
    // Unique, high-entropy columns gain nothing from a dictionary.
    let unique: &[&str] = match table {
        Table::Events => &["event_id", "raw", "session_id"],
        Table::DeadLetters => &["dead_letter_id", "raw"],
        Table::Findings => &["finding_id", "version_id", "summary"],
    };
    for column in unique {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), false);
    }
    // Min/max of payloads, random ids and free text prunes nothing (a
    // page's range of such values spans nearly all of them) and costs two
    // comparisons of every value, long ones with long common prefixes.
    let unprunable: &[&str] = match table {
        Table::Events => &[
            "raw",
            "event_id",
            "session_id",
            "user_agent",
            "reason_detail",
        ],
        Table::DeadLetters => &["raw"],
        Table::Findings => &["version_id", "summary"],
    };
    for column in unprunable {
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None);
    }
    let id_column = match table {
        Table::Events => "event_id",
        Table::DeadLetters => "dead_letter_id",
        Table::Findings => "version_id",
    };
    builder = builder.set_column_encoding(ColumnPath::from(id_column), Encoding::DELTA_BYTE_ARRAY);
    // Rows are sorted by time, so time deltas are small: delta encoding
    // stores them in a few bits each, where a dictionary would not.
    let time = ColumnPath::from(table.time_column());
    builder = builder
        .set_column_dictionary_enabled(time.clone(), false)
        .set_column_encoding(time, Encoding::DELTA_BINARY_PACKED);
    Ok(builder.build())
}

/// Writes `batch` as the sealed file `dir/name`: into a hidden in-progress
/// file first, fsync'd, then renamed into place and the directory fsync'd.
/// When this returns, the file is durable under its final name.
pub fn write_sealed(
    dir: &Path,
    name: &str,
    table: Table,
    batch: &RecordBatch,
    metadata: Vec<KeyValue>,
    options: FileOptions,
) -> Result<SealedFile, IngestError> {
    let written = write_in_progress(
        dir,
        name,
        table,
        std::slice::from_ref(batch),
        metadata,
        options,
    )?;
    publish(dir, &written)?;
    Ok(written.sealed)
}

/// A sealed file written and fsync'd under its in-progress name, not yet
/// visible to readers.
#[derive(Debug)]
pub struct WrittenFile {
    /// The in-progress path.
    pub temp_path: std::path::PathBuf,
    /// Its final name and hash.
    pub sealed: SealedFile,
}

/// Writes and fsyncs `batches` (one file's rows, in order) under the
/// hidden in-progress name of `dir/name`. Readers and the chain ignore it
/// until [`publish`].
pub fn write_in_progress(
    dir: &Path,
    name: &str,
    table: Table,
    batches: &[RecordBatch],
    metadata: Vec<KeyValue>,
    options: FileOptions,
) -> Result<WrittenFile, IngestError> {
    let temp_path = dir.join(format!(".{name}{IN_PROGRESS_SUFFIX}"));
    let parquet_err = |source| IngestError::Parquet {
        path: temp_path.clone(),
        source,
    };
    let file = File::create(&temp_path).map_err(IngestError::io("creating", &temp_path))?;
    let props = properties(table, options, metadata)?;
    let schema = batches
        .first()
        .map_or_else(|| table.schema(), RecordBatch::schema);
    let mut writer =
        ArrowWriter::try_new(HashingWriter::new(file), schema, Some(props)).map_err(parquet_err)?;
    for batch in batches {
        writer.write(batch).map_err(parquet_err)?;
    }
    let hashing = writer.into_inner().map_err(parquet_err)?;
    let (file, sha256, _) = hashing.finish();
    file.sync_all()
        .map_err(IngestError::io("syncing", &temp_path))?;
    Ok(WrittenFile {
        temp_path,
        sealed: SealedFile {
            name: name.to_owned(),
            sha256,
        },
    })
}

/// Renames a written file into place and fsyncs its directory.
pub fn publish(dir: &Path, written: &WrittenFile) -> Result<(), IngestError> {
    let final_path = dir.join(&written.sealed.name);
    std::fs::rename(&written.temp_path, &final_path)
        .map_err(IngestError::io("renaming into place", &final_path))?;
    fsio::sync_dir(dir)
}

/// Reads the footer of a Parquet file.
pub fn read_footer(path: &Path) -> Result<ParquetMetaData, IngestError> {
    let file = File::open(path).map_err(IngestError::io("opening", path))?;
    ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|source| IngestError::Parquet {
            path: path.to_owned(),
            source,
        })
}

/// A footer's authtrail key-value entry.
pub fn footer_value<'a>(footer: &'a ParquetMetaData, key: &str) -> Option<&'a str> {
    footer
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_deref())
}

/// Builds the key-value metadata of a sealed file.
pub fn file_metadata(
    table: Table,
    rows: usize,
    time_range: (i64, i64),
    prev_file: Option<&str>,
    prev_sha256: &str,
    positions: &SourcePositions,
) -> Vec<KeyValue> {
    let mut kv = vec![
        KeyValue::new(
            meta::SCHEMA_VERSION.into(),
            authtrail_schemas::SCHEMA_VERSION.to_string(),
        ),
        KeyValue::new(meta::TABLE.into(), table.name().to_owned()),
        KeyValue::new(meta::ROWS.into(), rows.to_string()),
        KeyValue::new(meta::MIN_TIME_MICROS.into(), time_range.0.to_string()),
        KeyValue::new(meta::MAX_TIME_MICROS.into(), time_range.1.to_string()),
        KeyValue::new(meta::PREV_SHA256.into(), prev_sha256.to_owned()),
        KeyValue::new(
            meta::WRITER.into(),
            format!("authtrail {}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    if let Some(prev) = prev_file {
        kv.push(KeyValue::new(meta::PREV_FILE.into(), prev.to_owned()));
    }
    if !positions.is_empty() {
        kv.push(KeyValue::new(
            meta::SOURCE_POSITIONS.into(),
            positions.to_json(),
        ));
    }
    kv
}

/// Calls `each` with the idempotency-key columns of every row group of a
/// file ([`Table::key_columns`]).
pub fn for_each_key_batch(
    path: &Path,
    table: Table,
    mut each: impl FnMut(&[&StringArray]),
) -> Result<(), IngestError> {
    let parquet_err = |source| IngestError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(IngestError::io("opening", path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?;
    let names = table.key_columns();
    let roots: Vec<usize> = names
        .iter()
        .map(|name| builder.schema().index_of(name))
        .collect::<Result<_, _>>()
        .map_err(IngestError::Arrow)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(parquet_err)?;
    for batch in reader {
        let batch = batch.map_err(IngestError::Arrow)?;
        let columns: Vec<Arc<dyn Array>> = names
            .iter()
            .map(|name| batch.column_by_name(name).cloned())
            .collect::<Option<_>>()
            .ok_or_else(|| IngestError::Damaged {
                path: path.to_owned(),
                message: "key columns missing".into(),
            })?;
        let strings: Vec<&StringArray> = columns
            .iter()
            .map(|c| c.as_any().downcast_ref::<StringArray>())
            .collect::<Option<_>>()
            .ok_or_else(|| IngestError::Damaged {
                path: path.to_owned(),
                message: "key columns are not strings".into(),
            })?;
        each(&strings);
    }
    Ok(())
}
