//! The batch driver: every rule over a time range of the log, one after
//! another on one snapshot, each rule's failure reported beside the others'
//! findings; and `check`, which plans every rule without running it.

use std::path::Path;

use chrono::{DateTime, Utc};

use authtrail_query::{QueryLimits, ReadOnlySession};
use authtrail_schemas::{AppendLog, CommitSummary, Finding};

use crate::RuleError;
use crate::engine::{self, RuleOutcome};
use crate::model::{Kind, Rule};
use crate::plan::{self, TimeRange};

/// What a batch run did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// One entry per rule, in the order run.
    pub outcomes: Vec<RuleOutcome>,
    /// What storing the findings did.
    pub stored: CommitSummary,
}

impl BatchReport {
    /// Every finding of the rules that ran.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().ok())
            .flatten()
    }

    /// The rules that failed, with why.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &RuleError)> {
        self.outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(|e| (o.rule_id.as_str(), e)))
    }
}

/// Plans every rule against the log at `root` (an empty directory will do)
/// without running it, so that a bad column or expression is reported with
/// its file and line. Returns every error.
pub async fn check(root: &Path, rules: &[Rule]) -> Vec<RuleError> {
    let session = match ReadOnlySession::open(root, QueryLimits::default()).await {
        Ok(s) => s,
        Err(source) => {
            return vec![RuleError::Query {
                rule: "(all)".into(),
                source,
            }];
        }
    };
    let mut errors = Vec::new();
    for rule in rules {
        let planned = match &rule.kind {
            Kind::Sql { query } => plan::sql_plan(&session, rule, query).await.map(|_| ()),
            _ => plan::scan(&session, rule, TimeRange::ALL).await.map(|_| ()),
        };
        if let Err(err) = planned {
            errors.push(err);
        }
    }
    errors
}

/// Evaluates `rules` over `range` of the log at `root` and appends their
/// findings to `log` in one durable commit. A rule that fails is reported
/// in the outcome and the others go on. `progress` is called after each
/// rule with the number done.
pub async fn run_batch<L: AppendLog>(
    root: &Path,
    rules: &[Rule],
    range: TimeRange,
    log: &mut L,
    at: DateTime<Utc>,
    mut progress: impl FnMut(usize, &RuleOutcome),
) -> Result<BatchReport, BatchError<L::Error>> {
    let session = ReadOnlySession::open(root, QueryLimits::default())
        .await
        .map_err(BatchError::Open)?;
    let mut report = BatchReport::default();
    for (done, rule) in rules.iter().enumerate() {
        let outcome = engine::evaluate(&session, rule, range, at).await;
        if let Err(err) = &outcome.result {
            tracing::warn!(rule = %rule.id, error = %err, "rule failed");
        }
        progress(done + 1, &outcome);
        report.outcomes.push(outcome);
    }
    session.release_snapshot();
    let findings: Vec<Finding> = report.findings().cloned().collect();
    if !findings.is_empty() {
        report.stored = log.append_findings(findings).map_err(BatchError::Store)?;
    }
    Ok(report)
}

/// Why a batch run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BatchError<E: std::error::Error + 'static> {
    /// The log could not be read.
    #[error("opening the log: {0}")]
    Open(authtrail_query::QueryError),
    /// Storing the findings failed; nothing of them may be assumed stored.
    #[error("storing findings: {0}")]
    Store(E),
}
