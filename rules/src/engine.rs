//! Evaluating rules: run a rule's scan, cut its rows into groups, run the
//! window scan of its kind over each group, and turn every hit into a
//! finding with a deterministic id and version.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, TimeUnit, TimestampMicrosecondType};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use authtrail_query::ReadOnlySession;
use authtrail_schemas::{EVIDENCE_CAP, Finding};

use crate::RuleError;
use crate::detect::{self, Hit, Row};
use crate::model::{Kind, Rule};
use crate::plan::{self, TimeRange, columns};

/// What evaluating one rule produced.
#[derive(Debug)]
pub struct RuleOutcome {
    /// The rule.
    pub rule_id: String,
    /// Its findings, or why it failed.
    pub result: Result<Vec<Finding>, RuleError>,
    /// Events its scan read.
    pub events: u64,
    /// How long it took.
    pub elapsed: Duration,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

fn time_of(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Builds a finding of `rule` about the group `group_key` from the evidence
/// `ids` (in time order) spanning `first`..`last`.
#[allow(clippy::too_many_arguments)]
pub fn finding(
    rule: &Rule,
    group_key: &str,
    anchor_id: &str,
    ids: Vec<String>,
    count: u64,
    suppressed: u64,
    (first, last): (i64, i64),
    detail: &str,
    detected_at: DateTime<Utc>,
) -> Finding {
    let finding_id = hash(&[&rule.id, group_key, anchor_id]);
    let capped = ids.len() > EVIDENCE_CAP;
    let mut evidence_ids = ids;
    evidence_ids.truncate(EVIDENCE_CAP);
    let (first_time, last_time) = (time_of(first), time_of(last));
    let mut summary = format!(
        "{}: {detail} for {group_key}, {} to {}",
        rule.title,
        first_time.format("%Y-%m-%d %H:%M:%S"),
        last_time.format("%Y-%m-%d %H:%M:%S UTC"),
    );
    if suppressed > 0 {
        summary.push_str(&format!(
            "; {suppressed} repeats within {} folded in",
            detect::human(micros(rule.suppress))
        ));
    }
    if capped {
        summary.push_str(&format!(
            "; {count} evidence events, the first {EVIDENCE_CAP} listed"
        ));
    }
    let numbers = format!("{count}/{suppressed}/{last}/{capped}");
    let version_id = hash(&[
        &finding_id,
        &numbers,
        &evidence_ids.join(","),
        &summary,
        rule.severity.as_str(),
        &rule.tags.join(","),
    ]);
    Finding {
        finding_id,
        version_id,
        rule_id: rule.id.clone(),
        title: rule.title.clone(),
        severity: rule.severity.as_str().to_owned(),
        tags: rule.tags.clone(),
        group_key: group_key.to_owned(),
        first_time,
        last_time,
        count,
        suppressed,
        evidence_ids,
        evidence_capped: capped,
        summary,
        detected_at,
    }
}

/// One group's rows while they are read.
#[derive(Default)]
struct Group {
    key: Vec<String>,
    ids: Vec<String>,
    rows: Vec<Row>,
}

impl Group {
    fn hits(&self, rule: &Rule, range: TimeRange) -> Vec<Hit> {
        let (window, suppress) = (micros(rule.window), micros(rule.suppress));
        match &rule.kind {
            Kind::Threshold { count } => detect::threshold(&self.rows, *count, window, suppress),
            Kind::Distinct {
                count,
                min_events,
                per_value_min,
                per_value_max,
                ..
            } => detect::distinct(
                &self.rows,
                *count,
                *min_events,
                (*per_value_min, *per_value_max),
                window,
                suppress,
            ),
            Kind::Sequence { first_count, .. } => {
                detect::sequence(&self.rows, *first_count, window, suppress)
            }
            Kind::NewValue { lookback, .. } => detect::new_value(
                &self.rows,
                micros(*lookback),
                suppress,
                range.from.map_or(i64::MIN, |t| t.timestamp_micros()),
            ),
            Kind::Travel { min_km, min_kmh } => {
                detect::travel(&self.rows, *min_km, *min_kmh, suppress)
            }
            Kind::Sql { .. } => Vec::new(),
        }
    }

    fn flush(&mut self, rule: &Rule, range: TimeRange, at: DateTime<Utc>, out: &mut Vec<Finding>) {
        if self.rows.is_empty() {
            return;
        }
        let group_key = rule
            .group_by
            .iter()
            .zip(&self.key)
            .map(|(g, v)| format!("{}={v}", g.name))
            .collect::<Vec<_>>()
            .join(", ");
        for hit in self.hits(rule, range) {
            let ids = hit.evidence.iter().map(|&i| self.ids[i].clone()).collect();
            let first = self.rows[hit.anchor].time;
            let last = hit.evidence.last().map_or(first, |&i| self.rows[i].time);
            out.push(finding(
                rule,
                &group_key,
                &self.ids[hit.anchor],
                ids,
                hit.evidence.len() as u64,
                hit.suppressed,
                (first, last),
                &hit.detail,
                at,
            ));
        }
        self.ids.clear();
        self.rows.clear();
    }
}

fn shape(rule: &Rule, message: impl Into<String>) -> RuleError {
    RuleError::Shape {
        rule: rule.id.clone(),
        message: message.into(),
    }
}

/// A column of `batch` as text.
fn text_column(
    rule: &Rule,
    batch: &RecordBatch,
    name: &str,
) -> Result<Vec<Option<String>>, RuleError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| shape(rule, format!("the query returns no column `{name}`")))?;
    let column =
        cast(column, &DataType::Utf8).map_err(|e| shape(rule, format!("`{name}`: {e}")))?;
    let strings = column.as_string::<i32>();
    Ok((0..strings.len())
        .map(|i| strings.is_valid(i).then(|| strings.value(i).to_owned()))
        .collect())
}

fn time_column(rule: &Rule, batch: &RecordBatch, name: &str) -> Result<Vec<i64>, RuleError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| shape(rule, format!("the query returns no column `{name}`")))?;
    let column = cast(
        column,
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )
    .map_err(|e| shape(rule, format!("`{name}`: {e}")))?;
    let times = column.as_primitive::<TimestampMicrosecondType>();
    Ok((0..times.len()).map(|i| times.value(i)).collect())
}

fn bool_column(batch: &RecordBatch, name: &str) -> Option<Vec<bool>> {
    let column = batch.column_by_name(name)?.as_boolean_opt()?.clone();
    Some(
        (0..column.len())
            .map(|i| column.is_valid(i) && column.value(i))
            .collect(),
    )
}

fn float_column(batch: &RecordBatch, name: &str) -> Option<Vec<Option<f64>>> {
    let column = cast(batch.column_by_name(name)?, &DataType::Float64).ok()?;
    let values = column.as_primitive::<Float64Type>();
    Some(
        (0..values.len())
            .map(|i| values.is_valid(i).then(|| values.value(i)))
            .collect(),
    )
}

/// Evaluates `rule` over the events of `range` in `session`; the findings'
/// `detected_at` is `at`.
pub async fn evaluate(
    session: &ReadOnlySession,
    rule: &Rule,
    range: TimeRange,
    at: DateTime<Utc>,
) -> RuleOutcome {
    let started = Instant::now();
    let mut events = 0u64;
    let result = run(session, rule, range, at, &mut events).await;
    RuleOutcome {
        rule_id: rule.id.clone(),
        result,
        events,
        elapsed: started.elapsed(),
    }
}

async fn run(
    session: &ReadOnlySession,
    rule: &Rule,
    range: TimeRange,
    at: DateTime<Utc>,
    events: &mut u64,
) -> Result<Vec<Finding>, RuleError> {
    let query_error = |source: datafusion::error::DataFusionError| RuleError::Query {
        rule: rule.id.clone(),
        source: source.into(),
    };
    if let Kind::Sql { query } = &rule.kind {
        let frame = plan::sql_plan(session, rule, query).await?;
        return sql_findings(rule, frame, at, events).await;
    }
    let frame = plan::scan(session, rule, range).await?;
    let mut stream = frame.execute_stream().await.map_err(query_error)?;
    let mut out = Vec::new();
    let mut group = Group::default();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(query_error)?;
        *events += batch.num_rows() as u64;
        let ids = text_column(rule, &batch, columns::ID)?;
        let times = time_column(rule, &batch, columns::TIME)?;
        let keys: Vec<Vec<Option<String>>> = (0..rule.group_by.len())
            .map(|i| text_column(rule, &batch, &columns::group(i)))
            .collect::<Result<_, _>>()?;
        let values = match &rule.kind {
            Kind::Distinct { .. } | Kind::NewValue { .. } => {
                Some(text_column(rule, &batch, columns::VALUE)?)
            }
            _ => None,
        };
        let flags = [columns::FIRST, columns::THEN, columns::UNTIL].map(|c| bool_column(&batch, c));
        let positions = (
            float_column(&batch, columns::LATITUDE),
            float_column(&batch, columns::LONGITUDE),
        );
        for row in 0..batch.num_rows() {
            let same = group.key.len() == keys.len()
                && keys
                    .iter()
                    .zip(&group.key)
                    .all(|(k, g)| k[row].as_deref() == Some(g.as_str()));
            if !same {
                group.flush(rule, range, at, &mut out);
                group.key = keys
                    .iter()
                    .map(|k| k[row].clone().unwrap_or_default())
                    .collect();
            }
            let flag = |i: usize| flags[i].as_ref().is_some_and(|f| f[row]);
            group.ids.push(ids[row].clone().unwrap_or_default());
            group.rows.push(Row {
                time: times[row],
                value: values.as_ref().and_then(|v| v[row].clone()),
                first: flag(0),
                then: flag(1),
                until: flag(2),
                position: match &positions {
                    (Some(lat), Some(lon)) => lat[row].zip(lon[row]),
                    _ => None,
                },
            });
        }
    }
    group.flush(rule, range, at, &mut out);
    Ok(out)
}

/// Reads the findings an `sql` rule's query returns: `group_key`,
/// `first_time`, `last_time`, `count`, `evidence_ids` (a list), and
/// optionally `summary`.
async fn sql_findings(
    rule: &Rule,
    frame: datafusion::prelude::DataFrame,
    at: DateTime<Utc>,
    events: &mut u64,
) -> Result<Vec<Finding>, RuleError> {
    let batches = frame.collect().await.map_err(|source| RuleError::Query {
        rule: rule.id.clone(),
        source: source.into(),
    })?;
    let mut out = Vec::new();
    for batch in batches {
        let groups = text_column(rule, &batch, "group_key")?;
        let firsts = time_column(rule, &batch, "first_time")?;
        let lasts = time_column(rule, &batch, "last_time")?;
        let counts = text_column(rule, &batch, "count")?;
        let summaries = batch
            .column_by_name("summary")
            .map(|_| text_column(rule, &batch, "summary"))
            .transpose()?;
        let evidence = batch
            .column_by_name("evidence_ids")
            .ok_or_else(|| shape(rule, "the query returns no column `evidence_ids`"))?;
        let lists = evidence
            .as_list_opt::<i32>()
            .ok_or_else(|| shape(rule, "`evidence_ids` must be a list of event ids"))?;
        for row in 0..batch.num_rows() {
            let ids_array = cast(&lists.value(row), &DataType::Utf8)
                .map_err(|e| shape(rule, format!("`evidence_ids`: {e}")))?;
            let ids_array = ids_array.as_string::<i32>();
            let mut ids: Vec<String> = (0..ids_array.len())
                .filter(|&i| ids_array.is_valid(i))
                .map(|i| ids_array.value(i).to_owned())
                .collect();
            ids.sort();
            let count = counts[row]
                .as_deref()
                .and_then(|c| c.parse().ok())
                .unwrap_or(ids.len() as u64);
            let group_key = groups[row].clone().unwrap_or_default();
            let detail = summaries
                .as_ref()
                .and_then(|s| s[row].clone())
                .unwrap_or_else(|| format!("{count} events"));
            let anchor = ids.first().cloned().unwrap_or_default();
            *events += count;
            out.push(finding(
                rule,
                &group_key,
                &format!("{anchor}@{}", firsts[row]),
                ids,
                count,
                0,
                (firsts[row], lasts[row]),
                &detail,
                at,
            ));
        }
    }
    Ok(out)
}
