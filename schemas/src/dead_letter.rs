//! A record that could not be turned into events, kept whole with the reason
//! so that nothing received is ever silently dropped.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One rejected input record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Deterministic id (hash of source, origin, line and payload), so that a
    /// replayed input does not store the same dead letter twice.
    pub dead_letter_id: String,
    /// When authtrail received it.
    pub received_at: DateTime<Utc>,
    /// The adapter it was meant for.
    pub source: String,
    /// Where it came from: a file path, `stdin`, an HTTP request, or a Kafka
    /// `topic/partition@offset`.
    pub origin: String,
    /// 1-based line (NDJSON, text) or element (JSON array) number.
    pub line: u64,
    /// Why it was rejected, in words a person can act on.
    pub reason: String,
    /// The bytes exactly as received.
    #[serde(skip)]
    pub raw: Vec<u8>,
}
