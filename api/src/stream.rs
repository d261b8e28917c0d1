//! Streaming query results as HTTP bodies: JSON (one array), NDJSON or CSV,
//! encoded batch by batch so that a result of any size flows in bounded
//! memory, chosen by `?format=` or the `Accept` header, and cut off at the
//! query's deadline.

use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
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

/// Streams `stream` as the response body in `format`. The first batch is
/// awaited before the status is sent, so that a query failing at once
/// (bad column, memory limit, time limit) gets a proper error status. Past
/// `deadline` the body is cut off with an error (the client sees a
/// truncated transfer, never a silently partial result that looks
/// complete).
pub async fn response(
    stream: SendableRecordBatchStream,
    format: Format,
    deadline: Instant,
    extra_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut response = body_response(stream, format, deadline, Bytes::new(), Bytes::new()).await?;
    response.headers_mut().extend(extra_headers);
    Ok(response)
}

/// A JSON response whose streamed array of rows sits between `prefix` and
/// `suffix` (e.g. `{"totals":…,"rows":` and `}`).
pub async fn wrapped_response(
    stream: SendableRecordBatchStream,
    deadline: Instant,
    prefix: Bytes,
    suffix: Bytes,
) -> Result<Response, ApiError> {
    body_response(stream, Format::Json, deadline, prefix, suffix).await
}

/// The end of a body: a CSV header if no batch carried one, the format's
/// closing bytes, and `suffix`.
fn tail(encoder: &mut Encoder, schema: SchemaRef, suffix: &[u8]) -> Bytes {
    let mut tail = Vec::new();
    if encoder.format == Format::Csv
        && !encoder.wrote_header
        && let Ok(bytes) = encoder.batch(&RecordBatch::new_empty(schema))
    {
        tail.extend_from_slice(&bytes);
    }
    tail.extend_from_slice(&encoder.finish());
    tail.extend_from_slice(suffix);
    Bytes::from(tail)
}

async fn body_response(
    mut stream: SendableRecordBatchStream,
    format: Format,
    deadline: Instant,
    prefix: Bytes,
    suffix: Bytes,
) -> Result<Response, ApiError> {
    let mut encoder = Encoder::new(format);
    let schema = stream.schema();
    let first = match tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        stream.next(),
    )
    .await
    {
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "query_timeout",
                "the query ran past its time limit before its first row; narrow it or raise [query] timeout_s",
            ));
        }
        Ok(Some(Err(err))) => {
            return Err(ApiError::from(authtrail_query::QueryError::from(err)));
        }
        Ok(first) => first.and_then(Result::ok),
    };
    let mut start = prefix.to_vec();
    start.extend_from_slice(&encoder.start());
    let stream = match first {
        Some(batch) => {
            start.extend_from_slice(
                &encoder
                    .batch(&batch)
                    .map_err(|e| ApiError::internal("encoding", e))?,
            );
            Some(stream)
        }
        None => {
            start.extend_from_slice(&tail(&mut encoder, schema.clone(), &suffix));
            None
        }
    };
    let body = futures::stream::unfold(
        (stream, encoder, Some(Bytes::from(start))),
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
                        let end = tail(&mut encoder, schema, &suffix);
                        Some((Ok(end), (None, encoder, None)))
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
    Ok(response)
}
