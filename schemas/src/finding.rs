//! A finding: what a detection rule concluded from a set of events. Findings
//! are events too: appended, through the same seam and into the same
//! hash-chained Parquet layout, to `<root>/findings/`.
//!
//! A finding grows while its window is open (more evidence arrives, or
//! repeats are folded into it by suppression). Sealed files are never
//! edited, so each state of a finding is a *version*, one row of
//! `findings/`: its `finding_id` stays, its `version_id` (a hash of what it
//! says) changes. The `findings` SQL table shows the newest version of each
//! finding; `finding_versions` shows them all. Writing a version again adds
//! nothing, so reruns and replays are idempotent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many evidence ids a finding lists; `evidence_capped` says when it
/// holds more.
pub const EVIDENCE_CAP: usize = 1000;

/// One version of a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Deterministic: a hash of the rule, the group and the window anchored
    /// at the first evidence event.
    pub finding_id: String,
    /// A hash of everything below but `detected_at`: the idempotency key.
    pub version_id: String,
    /// The rule that raised it.
    pub rule_id: String,
    /// The rule's title.
    pub title: String,
    /// info, low, medium, high or critical.
    pub severity: String,
    /// MITRE ATT&CK techniques and SOC 2 criteria.
    pub tags: Vec<String>,
    /// The group's values as text, e.g. `src_ip=203.0.113.7`.
    pub group_key: String,
    /// Time of the first evidence event (the window's anchor).
    pub first_time: DateTime<Utc>,
    /// Time of the last evidence event.
    pub last_time: DateTime<Utc>,
    /// Evidence events, suppressed repeats included.
    pub count: u64,
    /// Repeats within the suppression window folded into this finding.
    pub suppressed: u64,
    /// `event_id`s of the evidence, in time order, at most [`EVIDENCE_CAP`].
    pub evidence_ids: Vec<String>,
    /// Whether there was more evidence than `evidence_ids` lists.
    pub evidence_capped: bool,
    /// One sentence with the numbers.
    pub summary: String,
    /// When this version was written (wall clock).
    pub detected_at: DateTime<Utc>,
}
