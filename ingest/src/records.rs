//! Splitting an input into numbered records: NDJSON (one value per line), a
//! JSON array (one record per element), a single JSON document, or plain
//! text lines (syslog). Gzip is detected by its magic bytes.
//!
//! Records borrow from one chunk of the input so that a large file is read
//! in bounded pieces and parsed without copying each line.

use std::io::{BufRead, BufReader, Read};

use serde_json::value::RawValue;

/// How an adapter wants its input split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// JSON: NDJSON lines, the elements of a top-level array, or one value.
    Json,
    /// Plain text, one record per line.
    Text,
}

/// One record of an input.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// 1-based line number (NDJSON, text) or element number (JSON array).
    pub line: u64,
    /// The record's text, without the line terminator.
    pub text: &'a str,
}

/// A record that could not even be framed (e.g. not UTF-8).
#[derive(Debug, Clone)]
pub struct FramingError {
    /// 1-based line or element number.
    pub line: u64,
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// Why.
    pub reason: String,
}

/// A bounded piece of an input: whole lines, with the number of the first.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Line number of the first line in `bytes`.
    pub first_line: u64,
    /// Whole lines, each ending in `\n` except maybe the input's last.
    pub bytes: Vec<u8>,
}

/// Opens a reader over `input`, transparently gunzipping it when it starts
/// with the gzip magic bytes.
pub fn decompressing<R: Read + 'static>(input: R) -> std::io::Result<Box<dyn BufRead>> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// What a JSON input turned out to be, decided from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonShape {
    /// One JSON value per line.
    Lines,
    /// A top-level array, or one (possibly pretty-printed) document; read
    /// whole.
    Document,
}

/// Decides how a JSON input is laid out: a top-level `[`, or a first line
/// that is not a complete value (pretty-printed JSON), means a document.
pub fn detect_json_shape(reader: &mut dyn BufRead) -> std::io::Result<JsonShape> {
    let head = reader.fill_buf()?;
    let start = head.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Ok(JsonShape::Lines);
    };
    if head[start] == b'[' {
        return Ok(JsonShape::Document);
    }
    let first_line = head[start..]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    // A first line cut short by the buffer is treated as NDJSON: lines of a
    // megabyte are far more likely than pretty JSON with such a line.
    if first_line.len() + start < head.len()
        && serde_json::from_slice::<serde::de::IgnoredAny>(first_line).is_err()
        && head[start] == b'{'
    {
        return Ok(JsonShape::Document);
    }
    Ok(JsonShape::Lines)
}

/// Reads whole lines into chunks of about `target_bytes`.
pub struct ChunkReader<R> {
    reader: R,
    next_line: u64,
    target_bytes: usize,
    done: bool,
}

impl<R: BufRead> ChunkReader<R> {
    /// Chunks `reader` into pieces of about `target_bytes` (whole lines).
    pub fn new(reader: R, target_bytes: usize) -> Self {
        ChunkReader {
            reader,
            next_line: 1,
            target_bytes: target_bytes.max(1),
            done: false,
        }
    }

    /// The next chunk, or `None` at the end of the input.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        let mut chunk = Chunk {
            first_line: self.next_line,
            bytes: Vec::with_capacity(self.target_bytes + 4096),
        };
        while chunk.bytes.len() < self.target_bytes {
            let read = self.reader.read_until(b'\n', &mut chunk.bytes)?;
            if read == 0 {
                self.done = true;
                break;
            }
            self.next_line += 1;
        }
        if chunk.bytes.is_empty() {
            return Ok(None);
        }
        Ok(Some(chunk))
    }
}

/// Splits a chunk into records, skipping blank lines. Lines that are not
/// UTF-8 come back as framing errors.
pub fn split_lines(chunk: &Chunk) -> (Vec<Record<'_>>, Vec<FramingError>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let mut body = chunk.bytes.as_slice();
    if body.last() == Some(&b'\n') {
        body = &body[..body.len() - 1];
    }
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let number = chunk.first_line + index as u64;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match std::str::from_utf8(line) {
            Ok(text) => records.push(Record { line: number, text }),
            Err(err) => errors.push(FramingError {
                line: number,
                raw: line.to_vec(),
                reason: format!("line is not valid UTF-8 ({err})"),
            }),
        }
    }
    (records, errors)
}

/// Splits a whole JSON document into records: each element of a top-level
/// array, or the document itself.
pub fn split_document(document: &[u8]) -> Result<Vec<Record<'_>>, FramingError> {
    let failed = |reason: String| FramingError {
        line: 1,
        raw: document.to_vec(),
        reason,
    };
    let text = std::str::from_utf8(document)
        .map_err(|err| failed(format!("input is not valid UTF-8 ({err})")))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let elements: Vec<&RawValue> = serde_json::from_str(text).map_err(|err| {
            failed(format!(
                "input starts with '[' but is not a valid JSON array ({err}); \
                 nothing from it was stored"
            ))
        })?;
        Ok(elements
            .into_iter()
            .enumerate()
            .map(|(index, value)| Record {
                line: index as u64 + 1,
                text: value.get(),
            })
            .collect())
    } else {
        let value: &RawValue = serde_json::from_str(text)
            .map_err(|err| failed(format!("input is not valid JSON ({err})")))?;
        Ok(vec![Record {
            line: 1,
            text: value.get(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_numbers_across_blank_lines() {
        let chunk = Chunk {
            first_line: 10,
            bytes: b"{\"a\":1}\n\n{\"b\":2}\r\n".to_vec(),
        };
        let (records, errors) = split_lines(&chunk);
        assert!(errors.is_empty());
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].line, records[0].text), (10, "{\"a\":1}"));
        assert_eq!((records[1].line, records[1].text), (12, "{\"b\":2}"));
    }

    #[test]
    fn invalid_utf8_is_a_framing_error_with_its_line() {
        let chunk = Chunk {
            first_line: 1,
            bytes: b"ok\n\xff\xfe\nok\n".to_vec(),
        };
        let (records, errors) = split_lines(&chunk);
        assert_eq!(records.len(), 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
    }

    #[test]
    fn arrays_split_into_exact_elements() {
        let records = split_document(b" [ {\"a\": 1},\n {\"b\" : [2]} ] ").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].text, "{\"b\" : [2]}");
        assert_eq!(records[1].line, 2);
        assert!(split_document(b"[{\"a\":1},").is_err());
    }

    #[test]
    fn shape_detection() {
        let shape = |s: &str| detect_json_shape(&mut std::io::Cursor::new(s.as_bytes())).unwrap();
        assert_eq!(shape("{\"a\":1}\n{\"a\":2}\n"), JsonShape::Lines);
        assert_eq!(shape("[{\"a\":1}]"), JsonShape::Document);
        assert_eq!(shape("{\n  \"a\": 1\n}\n"), JsonShape::Document);
        assert_eq!(shape("garbage\n{\"a\":2}\n"), JsonShape::Lines);
    }

    #[test]
    fn chunks_hold_whole_lines() {
        let input = "a\nbb\nccc\ndddd";
        let mut reader = ChunkReader::new(std::io::Cursor::new(input.as_bytes()), 3);
        let first = reader.next_chunk().unwrap().unwrap();
        assert_eq!(
            (first.first_line, first.bytes.as_slice()),
            (1, &b"a\nbb\n"[..])
        );
        let second = reader.next_chunk().unwrap().unwrap();
        assert_eq!(second.first_line, 3);
        let third = reader.next_chunk().unwrap().unwrap();
        assert_eq!(
            (third.first_line, third.bytes.as_slice()),
            (4, &b"dddd"[..])
        );
        assert!(reader.next_chunk().unwrap().is_none());
    }
}
