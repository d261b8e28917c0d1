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

/// Reads whole lines into chunks of about `target_bytes`, in large blocks
/// (no per-line copies): each chunk ends at a line end, and the partial
/// line after it is carried into the next chunk.
pub struct ChunkReader<R> {
    reader: R,
    next_line: u64,
    target_bytes: usize,
    carry: Vec<u8>,
    done: bool,
}

impl<R: BufRead> ChunkReader<R> {
    /// Chunks `reader` into pieces of about `target_bytes` (whole lines).
    pub fn new(reader: R, target_bytes: usize) -> Self {
        ChunkReader {
            reader,
            next_line: 1,
            target_bytes: target_bytes.max(1),
            carry: Vec::new(),
            done: false,
        }
    }

    /// Appends everything the reader has buffered to `bytes`.
    fn read_block(&mut self, bytes: &mut Vec<u8>) -> std::io::Result<()> {
        let block = self.reader.fill_buf()?;
        if block.is_empty() {
            self.done = true;
            return Ok(());
        }
        let n = block.len();
        bytes.extend_from_slice(block);
        self.reader.consume(n);
        Ok(())
    }

    /// The next chunk, or `None` at the end of the input.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.reserve(self.target_bytes + (1 << 20));
        while bytes.len() < self.target_bytes && !self.done {
            self.read_block(&mut bytes)?;
        }
        // A line longer than the target: read on until it ends.
        let mut searched = 0;
        while !self.done && memchr::memchr(b'\n', &bytes[searched..]).is_none() {
            searched = bytes.len();
            self.read_block(&mut bytes)?;
        }
        if !self.done
            && let Some(last) = memchr::memrchr(b'\n', &bytes)
        {
            self.carry = bytes[last + 1..].to_vec();
            bytes.truncate(last + 1);
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        let first_line = self.next_line;
        self.next_line += memchr::memchr_iter(b'\n', &bytes).count() as u64;
        Ok(Some(Chunk { first_line, bytes }))
    }
}

/// Cuts a chunk into pieces of about `piece_bytes` at line ends, each with
/// the number of its first line, so that pieces can be parsed in parallel.
pub fn pieces(chunk: &Chunk, piece_bytes: usize) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut rest = chunk.bytes.as_slice();
    let mut line = chunk.first_line;
    while !rest.is_empty() {
        let cut = if rest.len() <= piece_bytes {
            rest.len()
        } else {
            memchr::memchr(b'\n', &rest[piece_bytes..]).map_or(rest.len(), |i| piece_bytes + i + 1)
        };
        let (piece, tail) = rest.split_at(cut);
        out.push((line, piece));
        line += memchr::memchr_iter(b'\n', piece).count() as u64;
        rest = tail;
    }
    out
}

/// Splits whole lines (the first numbered `first_line`) into records,
/// skipping blank lines. Lines that are not UTF-8 come back as framing
/// errors.
pub fn split_lines(first_line: u64, bytes: &[u8]) -> (Vec<Record<'_>>, Vec<FramingError>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    for (index, end) in ends.enumerate() {
        let line = &body[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let number = first_line + index as u64;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // simdutf8 checks a line of ASCII several times faster than std,
        // and reports the same error.
        match simdutf8::compat::from_utf8(line) {
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
        let (records, errors) = split_lines(10, b"{\"a\":1}\n\n{\"b\":2}\r\n");
        assert!(errors.is_empty());
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].line, records[0].text), (10, "{\"a\":1}"));
        assert_eq!((records[1].line, records[1].text), (12, "{\"b\":2}"));
    }

    #[test]
    fn invalid_utf8_is_a_framing_error_with_its_line() {
        let (records, errors) = split_lines(1, b"ok\n\xff\xfe\nok\n");
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
    fn chunks_hold_whole_lines_with_their_numbers() {
        let input = "a\nbb\nccc\ndddd\ne\nffffffffff\ng";
        for (buffer, target) in [(1, 1), (3, 4), (2, 7), (64, 5), (64, 1000)] {
            let reader =
                std::io::BufReader::with_capacity(buffer, std::io::Cursor::new(input.as_bytes()));
            let mut chunks = ChunkReader::new(reader, target);
            let mut joined = String::new();
            while let Some(chunk) = chunks.next_chunk().unwrap() {
                let text = String::from_utf8(chunk.bytes).unwrap();
                assert!(
                    text.ends_with('\n') || joined.len() + text.len() == input.len(),
                    "{text:?}"
                );
                assert_eq!(chunk.first_line, joined.matches('\n').count() as u64 + 1);
                joined.push_str(&text);
            }
            assert_eq!(joined, input, "buffer {buffer}, target {target}");
        }
    }

    #[test]
    fn pieces_cut_at_line_ends_and_keep_numbers() {
        let chunk = Chunk {
            first_line: 5,
            bytes: b"aaaa\nbb\ncccccc\nd\n".to_vec(),
        };
        let cut = pieces(&chunk, 3);
        assert_eq!(
            cut,
            vec![
                (5, &b"aaaa\n"[..]),
                (6, &b"bb\ncccccc\n"[..]),
                (8, &b"d\n"[..])
            ]
        );
    }
}
