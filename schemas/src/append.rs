//! The append seam: the one interface through which anything writes to the
//! event log. `authtrail-ingest` implements it with the durable Parquet
//! writer; the rules append their findings through it without depending on
//! the writer itself.

use crate::{AuthEvent, DeadLetter, Finding};

/// What one durable commit stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitSummary {
    /// New events stored.
    pub stored: u64,
    /// Events skipped because an event with the same `event_id` is already
    /// in the log (or earlier in the same batch).
    pub duplicates: u64,
    /// Dead letters stored.
    pub dead_letters: u64,
    /// Sealed files written by this commit.
    pub files: u64,
    /// Smallest and largest event time stored, in µs since the epoch.
    pub time_range: Option<(i64, i64)>,
}

impl CommitSummary {
    /// Adds another commit's counts to this one.
    pub fn absorb(&mut self, other: &CommitSummary) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.dead_letters += other.dead_letters;
        self.files += other.files;
        self.time_range = match (self.time_range, other.time_range) {
            (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
            (a, b) => a.or(b),
        };
    }
}

/// A durable, idempotent append-only log of events and dead letters.
///
/// `append` returns only once everything it was given is on disk (file and
/// directory fsync'd); an error means nothing of the batch may be assumed
/// stored, and the caller must not acknowledge it.
pub trait AppendLog {
    /// The writer's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores events given as segments (skipping ids already stored, in
    /// the log or earlier in the batch) and `dead_letters` durably, as one
    /// commit. Segments let producers hand over what they parsed in pieces
    /// (per thread, per request) without copying it into one vector.
    fn append_segments(
        &mut self,
        events: Vec<Vec<AuthEvent>>,
        dead_letters: Vec<DeadLetter>,
    ) -> Result<CommitSummary, Self::Error>;

    /// Stores versions of findings durably, as one commit, skipping
    /// versions already stored (by `version_id`). The summary's `stored`
    /// counts the new versions.
    fn append_findings(&mut self, findings: Vec<Finding>) -> Result<CommitSummary, Self::Error>;

    /// [`AppendLog::append_segments`] with the events in one segment.
    fn append(
        &mut self,
        events: Vec<AuthEvent>,
        dead_letters: Vec<DeadLetter>,
    ) -> Result<CommitSummary, Self::Error> {
        self.append_segments(vec![events], dead_letters)
    }
}
