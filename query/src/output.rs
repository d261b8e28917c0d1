//! Encoding query results for people and programs: an aligned text table,
//! CSV with a header, a JSON array, or NDJSON. CSV and the JSON forms are
//! written batch by batch, so a result of any size streams in bounded
//! memory.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::json::{ArrayWriter, LineDelimitedWriter};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use crate::QueryError;

/// A result encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned text table (holds the whole result in memory).
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            "ndjson" => Ok(OutputFormat::Ndjson),
            other => Err(format!(
                "unknown format {other:?}: use table, csv, json or ndjson"
            )),
        }
    }
}

fn io_error(err: std::io::Error) -> QueryError {
    QueryError::DataFusion(err.into())
}

/// Writes every batch of `stream` to `out` in `format`; returns the row
/// count.
pub async fn write_stream(
    mut stream: SendableRecordBatchStream,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> Result<u64, QueryError> {
    let mut rows = 0u64;
    match format {
        OutputFormat::Table => {
            let mut batches: Vec<RecordBatch> = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                batches.push(batch);
            }
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(stream.schema()));
            }
            writeln!(out, "{}", pretty_format_batches(&batches)?).map_err(io_error)?;
        }
        OutputFormat::Csv => {
            let mut writer = CsvWriterBuilder::new().with_header(true).build(&mut *out);
            let mut wrote_any = false;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
                wrote_any = true;
            }
            if !wrote_any {
                writer.write(&RecordBatch::new_empty(stream.schema()))?;
            }
        }
        OutputFormat::Json => {
            let mut writer = ArrayWriter::new(&mut *out);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            // Writes `[]` when there were no rows.
            writer.finish()?;
            out.write_all(b"\n").map_err(io_error)?;
        }
        OutputFormat::Ndjson => {
            let mut writer = LineDelimitedWriter::new(&mut *out);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            writer.finish()?;
        }
    }
    out.flush().map_err(io_error)?;
    Ok(rows)
}
