//! Streaming query results as HTTP bodies: JSON (one array), NDJSON or CSV,
//! encoded batch by batch so that a result of any size flows in bounded
//! memory, chosen by `?format=` or the `Accept` header, and cut off at the
//! query's deadline.

use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use crate::error::ApiError;

/// A result encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// CSV with a header row.
    Csv,
}

impl Format {
    /// From `?format=` if given, else from `Accept`; JSON by default.
    pub fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Result<Format, ApiError> {
        if let Some(name) = query {
            return match name {
                "json" => Ok(Format::Json),
                "ndjson" => Ok(Format::Ndjson),
                "csv" => Ok(Format::Csv),
                other => Err(ApiError::bad_request(
                    "unknown_format",
                    format!("unknown format {other:?}: use json, ndjson or csv"),
                )),
            };
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(if accept.contains("text/csv") {
            Format::Csv
        } else if accept.contains("application/x-ndjson") || accept.contains("application/ndjson") {
            Format::Ndjson
        } else {
            Format::Json
        })
    }

    /// The `Content-Type` of the encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Encodes batches one by one.
pub struct Encoder {
    format: Format,
    wrote_rows: bool,
    wrote_header: bool,
}

impl Encoder {
    /// An encoder for `format`.
    pub fn new(format: Format) -> Self {
        Encoder {
            format,
            wrote_rows: false,
            wrote_header: false,
        }
    }

    /// What goes before the first batch.
    pub fn start(&self) -> Bytes {
        match self.format {
            Format::Json => Bytes::from_static(b"["),
            _ => Bytes::new(),
        }
    }

    /// One batch's rows.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes, String> {
        if batch.num_rows() == 0 && self.format != Format::Csv {
            return Ok(Bytes::new());
        }
        let mut out = Vec::with_capacity(batch.get_array_memory_size() / 2 + 64);
        match self.format {
            Format::Csv => {
                let mut writer = WriterBuilder::new()
                    .with_header(!self.wrote_header)
                    .build(&mut out);
                writer.write(batch).map_err(|e| e.to_string())?;
                self.wrote_header = true;
            }
            Format::Ndjson => {
                let mut writer = LineDelimitedWriter::new(&mut out);
                writer.write(batch).map_err(|e| e.to_string())?;
                writer.finish().map_err(|e| e.to_string())?;
            }
            Format::Json => {
                let mut lines = Vec::new();
                let mut writer = LineDelimitedWriter::new(&mut lines);
                writer.write(batch).map_err(|e| e.to_string())?;
                writer.finish().map_err(|e| e.to_string())?;
                // JSON escapes newlines inside strings, so every raw
                // newline separates two objects.
                for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    if self.wrote_rows {
                        out.push(b',');
                    }
                    out.push(b'\n');
                    out.extend_from_slice(line);
                    self.wrote_rows = true;
                }
            }
        }
        Ok(Bytes::from(out))
    }

    /// What goes after the last batch.
    pub fn finish(&self) -> Bytes {
        match self.format {
            Format::Json if self.wrote_rows => Bytes::from_static(b"\n]\n"),
            Format::Json => Bytes::from_static(b"]\n"),
            _ => Bytes::new(),
        }
    }
}

/// Streams `stream` as the response body in `format`. Past `deadline` the
/// body is cut off with an error (the client sees a truncated transfer,
/// never a silently partial result that looks complete).
pub fn response(
    stream: SendableRecordBatchStream,
    format: Format,
    deadline: Instant,
    extra_headers: HeaderMap,
) -> Response {
    let mut response = body_response(stream, format, deadline, Bytes::new(), Bytes::new());
    response.headers_mut().extend(extra_headers);
    response
}

/// A JSON response whose streamed array of rows sits between `prefix` and
/// `suffix` (e.g. `{"totals":…,"rows":` and `}`).
pub fn wrapped_response(
    stream: SendableRecordBatchStream,
    deadline: Instant,
    prefix: Bytes,
    suffix: Bytes,
) -> Response {
    body_response(stream, Format::Json, deadline, prefix, suffix)
}

fn body_response(
    stream: SendableRecordBatchStream,
    format: Format,
    deadline: Instant,
    prefix: Bytes,
    suffix: Bytes,
) -> Response {
    let encoder = Encoder::new(format);
    let mut start = prefix.to_vec();
    start.extend_from_slice(&encoder.start());
    let start = Bytes::from(start);
    let schema = stream.schema();
    let body = futures::stream::unfold(
        (Some(stream), encoder, Some(start)),
        move |(stream, mut encoder, pending)| {
            let schema = schema.clone();
            let suffix = suffix.clone();
            async move {
                if let Some(first) = pending {
                    return Some((Ok::<Bytes, std::io::Error>(first), (stream, encoder, None)));
                }
                let mut stream = stream?;
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, stream.next()).await {
                    Err(_) => Some((
                        Err(std::io::Error::other(
                            "query time limit reached; result truncated",
                        )),
                        (None, encoder, None),
                    )),
                    Ok(Some(Ok(batch))) => match encoder.batch(&batch) {
                        Ok(bytes) => Some((Ok(bytes), (Some(stream), encoder, None))),
                        Err(err) => Some((Err(std::io::Error::other(err)), (None, encoder, None))),
                    },
                    Ok(Some(Err(err))) => {
                        tracing::warn!(error = %err, "query failed while streaming");
                        Some((
                            Err(std::io::Error::other(err.to_string())),
                            (None, encoder, None),
                        ))
                    }
                    Ok(None) => {
                        // A CSV of no rows still carries its header.
                        let mut tail = Vec::new();
                        if format == Format::Csv
                            && !encoder.wrote_header
                            && let Ok(bytes) = encoder.batch(&RecordBatch::new_empty(schema))
                        {
                            tail.extend_from_slice(&bytes);
                        }
                        tail.extend_from_slice(&encoder.finish());
                        tail.extend_from_slice(&suffix);
                        Some((Ok(Bytes::from(tail)), (None, encoder, None)))
                    }
                }
            }
        },
    );
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}
