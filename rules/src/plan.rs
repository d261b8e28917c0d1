//! Rule → DataFusion plan: the rule's filter, exceptions and group keys
//! become one filtered, projected and sorted scan of `events` (partition
//! pruned by day, Parquet filters pushed down), whose rows the window scan
//! of [`crate::detect`] reads group by group in time order.

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr as DfExpr, cast, col, lit};
use datafusion::prelude::DataFrame;

use authtrail_query::ReadOnlySession;

use crate::RuleError;
use crate::model::{Expr, Kind, Rule};

/// The half-open span of event time a run looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First instant included; `None` for the log's beginning.
    pub from: Option<DateTime<Utc>>,
    /// First instant excluded; `None` for no end.
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// The whole log.
    pub const ALL: TimeRange = TimeRange {
        from: None,
        to: None,
    };
}

/// Names of the scan's columns.
pub mod columns {
    /// The event's id.
    pub const ID: &str = "event_id";
    /// The event's time.
    pub const TIME: &str = "time";
    /// The `distinct` or `new_value` field, as text.
    pub const VALUE: &str = "rule_value";
    /// Whether the event is a `sequence`'s leading event.
    pub const FIRST: &str = "rule_first";
    /// Whether the event is a `sequence`'s closing event.
    pub const THEN: &str = "rule_then";
    /// Whether the event cancels a `sequence`.
    pub const UNTIL: &str = "rule_until";
    /// Latitude and longitude, for `travel`.
    pub const LATITUDE: &str = "latitude";
    /// See [`LATITUDE`].
    pub const LONGITUDE: &str = "longitude";
    /// The `i`-th group key, as text.
    pub fn group(i: usize) -> String {
        format!("rule_group_{i}")
    }
}

fn timestamp(at: DateTime<Utc>) -> DfExpr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(at.timestamp_micros()),
        Some("UTC".into()),
    ))
}

fn date(at: DateTime<Utc>) -> DfExpr {
    lit(ScalarValue::Date32(Some(
        (at.date_naive() - chrono::NaiveDate::default()).num_days() as i32,
    )))
}

/// Parses one of the rule's expressions against `frame`, naming the rule
/// file and line if DataFusion refuses it.
fn parse(rule: &Rule, frame: &DataFrame, expr: &Expr) -> Result<DfExpr, RuleError> {
    frame
        .parse_sql_expr(&expr.sql)
        .map_err(|err| RuleError::Invalid {
            file: rule.origin.clone(),
            line: Some(expr.line),
            message: format!("`{}` = {:?}: {}", expr.key, expr.sql, err.strip_backtrace()),
        })
}

/// Checks one condition of a rule: as an expression over `events`, or, if
/// it holds a subquery, as the WHERE clause of a query over `events`.
async fn check_condition(
    session: &ReadOnlySession,
    rule: &Rule,
    events: &DataFrame,
    condition: &Expr,
) -> Result<(), RuleError> {
    if events.parse_sql_expr(&condition.sql).is_ok() {
        return Ok(());
    }
    match session
        .plan(&format!("SELECT * FROM events WHERE ({})", condition.sql))
        .await
    {
        Ok(_) => Ok(()),
        // Both failed: the expression's own error says more.
        Err(_) => parse(rule, events, condition).map(|_| ()),
    }
}

/// The scan of `events` a rule's windows are computed over, for events in
/// `range` (widened by a `new_value` rule's lookback, whose history the
/// scan needs). `Sql` rules have no scan: see [`sql_plan`].
pub async fn scan(
    session: &ReadOnlySession,
    rule: &Rule,
    range: TimeRange,
) -> Result<DataFrame, RuleError> {
    let query_error = |source| RuleError::Query {
        rule: rule.id.clone(),
        source,
    };
    let events = session
        .context()
        .table("events")
        .await
        .map_err(|e| query_error(e.into()))?;
    // The filter and exceptions may hold subqueries (`src_ip IN (SELECT …
    // FROM events …)`), which only the SQL planner resolves: they become
    // the WHERE clause of a read-only query over `events`, after each is
    // checked on its own so that an error names its line.
    let mut clauses = Vec::new();
    if let Some(filter) = &rule.filter {
        check_condition(session, rule, &events, filter).await?;
        clauses.push(format!("({})", filter.sql));
    }
    for exception in &rule.exceptions {
        check_condition(session, rule, &events, exception).await?;
        clauses.push(format!("NOT coalesce(({}), false)", exception.sql));
    }
    let events = if clauses.is_empty() {
        events
    } else {
        session
            .plan(&format!(
                "SELECT * FROM events WHERE {}",
                clauses.join(" AND ")
            ))
            .await
            .map_err(query_error)?
    };
    let mut conditions = Vec::new();
    let from = match (&rule.kind, range.from) {
        (Kind::NewValue { lookback, .. }, Some(from)) => {
            Some(from - chrono::Duration::from_std(*lookback).unwrap_or(chrono::Duration::MAX))
        }
        (_, from) => from,
    };
    if let Some(from) = from {
        conditions.push(col("time").gt_eq(timestamp(from)));
        conditions.push(col("date").gt_eq(date(from)));
    }
    if let Some(to) = range.to {
        conditions.push(col("time").lt(timestamp(to)));
        conditions.push(col("date").lt_eq(date(to)));
    }
    let mut select = vec![col("event_id"), col("time")];
    let mut order = Vec::new();
    for (i, group) in rule.group_by.iter().enumerate() {
        let e = cast(parse(rule, &events, &group.expr)?, DataType::Utf8);
        conditions.push(e.clone().is_not_null());
        select.push(e.alias(columns::group(i)));
        order.push(col(columns::group(i)).sort(true, false));
    }
    match &rule.kind {
        Kind::Distinct { field, .. } | Kind::NewValue { field, .. } => {
            let e = cast(parse(rule, &events, field)?, DataType::Utf8);
            conditions.push(e.clone().is_not_null());
            select.push(e.alias(columns::VALUE));
        }
        Kind::Sequence {
            first, then, until, ..
        } => {
            let flag = |e: DfExpr| datafusion::functions::expr_fn::coalesce(vec![e, lit(false)]);
            let first = flag(parse(rule, &events, first)?);
            let then = flag(parse(rule, &events, then)?);
            let until = match until {
                Some(u) => flag(parse(rule, &events, u)?),
                None => lit(false),
            };
            conditions.push(first.clone().or(then.clone()).or(until.clone()));
            select.push(first.alias(columns::FIRST));
            select.push(then.alias(columns::THEN));
            select.push(until.alias(columns::UNTIL));
        }
        Kind::Travel { .. } => {
            conditions.push(col("latitude").is_not_null());
            conditions.push(col("longitude").is_not_null());
            select.push(col("latitude"));
            select.push(col("longitude"));
        }
        Kind::Threshold { .. } | Kind::Sql { .. } => {}
    }
    order.push(col("time").sort(true, false));
    order.push(col("event_id").sort(true, false));
    let mut frame = events;
    if let Some(condition) = conditions.into_iter().reduce(DfExpr::and) {
        frame = frame.filter(condition).map_err(|e| query_error(e.into()))?;
    }
    frame
        .select(select)
        .and_then(|f| f.sort(order))
        .map_err(|e| query_error(e.into()))
}

/// The plan of an `sql` rule: its query, read-only.
pub async fn sql_plan(
    session: &ReadOnlySession,
    rule: &Rule,
    query: &Expr,
) -> Result<DataFrame, RuleError> {
    session
        .plan(&query.sql)
        .await
        .map_err(|err| RuleError::Invalid {
            file: rule.origin.clone(),
            line: Some(query.line),
            message: format!("`sql.query`: {err}"),
        })
}
