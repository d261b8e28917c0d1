//! The read API: `GET /v1/events` (filtered, cursor-paginated),
//! `GET /v1/reports/failed-logins` (the failed-login trend, bucketed and
//! grouped, with totals and failure rates) and
//! `GET /v1/users/{user}/timeline`. Results stream as JSON, NDJSON or CSV
//! with no row cap.
//!
//! Filters are DataFusion expressions with literal values, never SQL text
//! spliced together, so a query string cannot change a query's shape.

use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::DataFrame;
use serde::Deserialize;

use authtrail_query::ReadOnlySession;
use authtrail_schemas::{Method, Outcome, Reason};

use crate::SharedState;
use crate::auth::Permission;
use crate::error::ApiError;
use crate::stream::{Encoder, Format, response};

/// Columns of `/v1/events` rows: every column of the table but the raw
/// payload, which `raw=true` adds.
fn event_columns(raw: bool) -> Vec<String> {
    authtrail_schemas::arrow_schema::events_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|name| raw || name != "raw")
        .collect()
}

/// Largest page `limit` takes.
const MAX_PAGE: usize = 10_000;

/// Filters of `/v1/events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilters {
    /// Earliest event time (RFC 3339), inclusive.
    pub from: Option<String>,
    /// Latest event time (RFC 3339), exclusive.
    pub to: Option<String>,
    /// Normalised login name.
    pub user: Option<String>,
    /// Client address.
    pub src_ip: Option<String>,
    /// success, failure, unknown.
    pub outcome: Option<String>,
    /// password, saml, push, …
    pub method: Option<String>,
    /// invalid_credentials, mfa_denied, …
    pub reason: Option<String>,
    /// Adapter name.
    pub source: Option<String>,
    /// Application.
    pub app: Option<String>,
    /// Page size (at most 10,000). Without it, every matching event
    /// streams.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Include the raw payload.
    pub raw: Option<bool>,
    /// json, ndjson or csv.
    pub format: Option<String>,
}

pub(crate) fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = day.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(ApiError::bad_request(
        "invalid_time",
        format!(
            "`{name}` must be RFC 3339 (2026-03-09T12:00:00Z) or a date (2026-03-09); got {text:?}"
        ),
    ))
}

pub(crate) fn timestamp(t: DateTime<Utc>) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(t.timestamp_micros()),
        Some("UTC".into()),
    ))
}

pub(crate) fn date(t: DateTime<Utc>) -> Expr {
    let days = t.timestamp().div_euclid(86_400);
    lit(ScalarValue::Date32(Some(days as i32)))
}

/// Time-range filters, on `time` and (for partition pruning) on `date`.
fn time_range(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Vec<Expr> {
    let mut filters = Vec::new();
    if let Some(from) = from {
        filters.push(col("time").gt_eq(timestamp(from)));
        filters.push(col("date").gt_eq(date(from)));
    }
    if let Some(to) = to {
        filters.push(col("time").lt(timestamp(to)));
        filters.push(col("date").lt_eq(date(to)));
    }
    filters
}

fn vocabulary<T>(
    name: &str,
    value: &str,
    parse: fn(&str) -> Option<T>,
    all: &[&str],
) -> Result<Expr, ApiError> {
    if parse(value).is_none() {
        return Err(ApiError::bad_request(
            "invalid_filter",
            format!("`{name}` must be one of {}; got {value:?}", all.join(", ")),
        ));
    }
    Ok(col(name).eq(lit(value.to_owned())))
}

impl EventFilters {
    fn exprs(&self) -> Result<Vec<Expr>, ApiError> {
        let from = self
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?;
        let to = self
            .to
            .as_deref()
            .map(|t| parse_time("to", t))
            .transpose()?;
        let mut filters = time_range(from, to);
        for (name, value) in [
            ("user", &self.user),
            ("src_ip", &self.src_ip),
            ("source", &self.source),
            ("app", &self.app),
        ] {
            if let Some(value) = value {
                let value = if name == "user" {
                    value.to_lowercase()
                } else {
                    value.clone()
                };
                filters.push(col(name).eq(lit(value)));
            }
        }
        if let Some(v) = &self.outcome {
            let all: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            filters.push(vocabulary("outcome", v, Outcome::parse, &all)?);
        }
        if let Some(v) = &self.method {
            let all: Vec<&str> = Method::ALL.iter().map(|o| o.as_str()).collect();
            filters.push(vocabulary("method", v, Method::parse, &all)?);
        }
        if let Some(v) = &self.reason {
            let all: Vec<&str> = Reason::ALL.iter().map(|o| o.as_str()).collect();
            filters.push(vocabulary("reason", v, Reason::parse, &all)?);
        }
        if let Some(cursor) = &self.cursor {
            let (time, id) = decode_cursor(cursor)?;
            let at = lit(ScalarValue::TimestampMicrosecond(
                Some(time),
                Some("UTC".into()),
            ));
            filters.push(
                col("time")
                    .gt(at.clone())
                    .or(col("time").eq(at).and(col("event_id").gt(lit(id)))),
            );
        }
        Ok(filters)
    }
}

fn encode_cursor(time: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{time}.{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_cursor",
            "`cursor` must be a next_cursor this API returned",
        )
    };
    let text = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (time, id) = text.split_once('.').ok_or_else(bad)?;
    Ok((time.parse().map_err(|_| bad())?, id.to_owned()))
}

/// A read-only session with the configured limits, and its deadline.
pub(crate) async fn session(state: &SharedState) -> Result<(ReadOnlySession, Instant), ApiError> {
    let limits = state.config.query.limits();
    let deadline = Instant::now() + limits.timeout;
    let session = ReadOnlySession::open(&state.data, limits).await?;
    Ok((session, deadline))
}

pub(crate) fn filtered(frame: DataFrame, filters: Vec<Expr>) -> Result<DataFrame, ApiError> {
    let mut frame = frame;
    for filter in filters {
        frame = frame.filter(filter).map_err(df)?;
    }
    Ok(frame)
}

pub(crate) fn df(err: datafusion::error::DataFusionError) -> ApiError {
    ApiError::from(authtrail_query::QueryError::from(err))
}

/// Streams events matching `filters`, oldest first.
async fn stream_events(
    state: &SharedState,
    filters: Vec<Expr>,
    limit: Option<usize>,
    raw: bool,
    format: Format,
) -> Result<Response, ApiError> {
    let names = event_columns(raw);
    let listing = Listing {
        table: "events",
        time: "time",
        id: "event_id",
        schema: authtrail_schemas::arrow_schema::events_schema(),
    };
    let columns = names.iter().map(|c| col(c.as_str())).collect();
    stream_rows(state, &listing, columns, filters, limit, format).await
}

/// A table that reads page through: sorted by a time and an id column, the
/// pair a cursor names.
pub(crate) struct Listing<'a> {
    pub table: &'a str,
    pub time: &'a str,
    pub id: &'a str,
    pub schema: datafusion::arrow::datatypes::SchemaRef,
}

/// The filter for the rows after `cursor` in `listing`'s order.
pub(crate) fn after_cursor(listing: &Listing<'_>, cursor: &str) -> Result<Expr, ApiError> {
    let (time, id) = decode_cursor(cursor)?;
    let at = lit(ScalarValue::TimestampMicrosecond(
        Some(time),
        Some("UTC".into()),
    ));
    Ok(col(listing.time)
        .gt(at.clone())
        .or(col(listing.time).eq(at).and(col(listing.id).gt(lit(id)))))
}

/// Streams the rows of `listing` matching `filters`, in time order, as
/// `columns`. With a page limit the page is gathered first so that the
/// next cursor can go in the headers.
pub(crate) async fn stream_rows(
    state: &SharedState,
    listing: &Listing<'_>,
    columns: Vec<Expr>,
    filters: Vec<Expr>,
    limit: Option<usize>,
    format: Format,
) -> Result<Response, ApiError> {
    let (session, deadline) = session(state).await?;
    let frame = session.context().table(listing.table).await.map_err(df)?;
    let frame = filtered(frame, filters)?
        .sort(vec![
            col(listing.time).sort(true, false),
            col(listing.id).sort(true, false),
        ])
        .map_err(df)?
        .select(columns)
        .map_err(df)?;
    let names: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let columns: Vec<&str> = names.iter().map(String::as_str).collect();
    let Some(limit) = limit else {
        let stream = session.execute(frame).await?;
        return response(stream, format, deadline, HeaderMap::new()).await;
    };
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("`limit` must be between 1 and {MAX_PAGE}; leave it out to stream everything"),
        ));
    }
    let frame = frame.limit(0, Some(limit)).map_err(df)?;
    let stream = session.execute(frame).await?;
    let batches: Vec<RecordBatch> = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        datafusion::physical_plan::common::collect(stream),
    )
    .await
    .map_err(|_| ApiError::from(authtrail_query::QueryError::Timeout(session.timeout())))?
    .map_err(df)?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut headers = HeaderMap::new();
    if rows == limit
        && let Some(last) = batches.iter().rev().find(|b| b.num_rows() > 0)
    {
        let row = last.num_rows() - 1;
        let time = last
            .column_by_name(listing.time)
            .map(|c| c.as_primitive::<TimestampMicrosecondType>().value(row));
        let id = last
            .column_by_name(listing.id)
            .map(|c| c.as_string::<i32>().value(row).to_owned());
        if let (Some(time), Some(id)) = (time, id)
            && let Ok(value) = HeaderValue::from_str(&encode_cursor(time, &id))
        {
            headers.insert("x-next-cursor", value);
        }
    }
    let mut encoder = Encoder::new(format);
    let mut body = encoder.start().to_vec();
    for batch in &batches {
        body.extend_from_slice(
            &encoder
                .batch(batch)
                .map_err(|e| ApiError::internal("encoding", e))?,
        );
    }
    if batches.is_empty() && format == Format::Csv {
        let empty = RecordBatch::new_empty(frame_schema(&listing.schema, &columns));
        body.extend_from_slice(
            &encoder
                .batch(&empty)
                .map_err(|e| ApiError::internal("encoding", e))?,
        );
    }
    body.extend_from_slice(&encoder.finish());
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response.headers_mut().extend(headers);
    Ok(response)
}

fn frame_schema(
    full: &datafusion::arrow::datatypes::SchemaRef,
    columns: &[&str],
) -> datafusion::arrow::datatypes::SchemaRef {
    let fields: Vec<_> = columns
        .iter()
        .filter_map(|c| full.field_with_name(c).ok().cloned())
        .collect();
    std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
}

/// `GET /v1/events`.
#[utoipa::path(
    get,
    path = "/v1/events",
    params(
        ("from" = Option<String>, Query, description = "Earliest time (RFC 3339 or date), inclusive"),
        ("to" = Option<String>, Query, description = "Latest time, exclusive"),
        ("user" = Option<String>, Query), ("src_ip" = Option<String>, Query),
        ("outcome" = Option<String>, Query), ("method" = Option<String>, Query),
        ("reason" = Option<String>, Query), ("source" = Option<String>, Query),
        ("app" = Option<String>, Query),
        ("limit" = Option<usize>, Query, description = "Page size (≤ 10,000); the next page's cursor comes in X-Next-Cursor. Without it, everything streams"),
        ("cursor" = Option<String>, Query, description = "X-Next-Cursor of the previous page"),
        ("raw" = Option<bool>, Query, description = "Include the raw payload"),
        ("format" = Option<String>, Query, description = "json, ndjson or csv (or use Accept)"),
    ),
    responses(
        (status = 200, description = "Events, oldest first"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
    )
)]
pub async fn events(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(filters): Query<EventFilters>,
) -> Result<Response, ApiError> {
    let what = "GET /v1/events";
    let principal = state.authorize(&headers, Permission::Read, what).await?;
    let result = async {
        let format = Format::negotiate(filters.format.as_deref(), &headers)?;
        let exprs = filters.exprs()?;
        stream_events(
            &state,
            exprs,
            filters.limit,
            filters.raw.unwrap_or(false),
            format,
        )
        .await
    }
    .await;
    state.audited(&principal, what, result)
}

/// Parameters of `/v1/users/{user}/timeline`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineParams {
    /// Earliest event time, inclusive.
    pub from: Option<String>,
    /// Latest event time, exclusive.
    pub to: Option<String>,
    /// Include the raw payload.
    pub raw: Option<bool>,
    /// json, ndjson or csv.
    pub format: Option<String>,
}

/// `GET /v1/users/{user}/timeline`: every event of one user, oldest first.
#[utoipa::path(
    get,
    path = "/v1/users/{user}/timeline",
    params(
        ("user" = String, Path, description = "Login name (case-insensitive)"),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("raw" = Option<bool>, Query), ("format" = Option<String>, Query),
    ),
    responses((status = 200, description = "The user's events, oldest first"), (status = 401, body = crate::error::ErrorBody))
)]
pub async fn timeline(
    State(state): State<SharedState>,
    Path(user): Path<String>,
    headers: HeaderMap,
    Query(params): Query<TimelineParams>,
) -> Result<Response, ApiError> {
    let what = format!("GET /v1/users/{user}/timeline");
    let principal = state.authorize(&headers, Permission::Read, &what).await?;
    let result = async {
        let format = Format::negotiate(params.format.as_deref(), &headers)?;
        let filters = EventFilters {
            from: params.from.clone(),
            to: params.to.clone(),
            user: Some(user.clone()),
            ..EventFilters::default()
        };
        stream_events(
            &state,
            filters.exprs()?,
            None,
            params.raw.unwrap_or(false),
            format,
        )
        .await
    }
    .await;
    state.audited(&principal, &what, result)
}

/// Parameters of the failed-login report.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedLoginParams {
    /// Start (inclusive); default seven days before `to`.
    pub from: Option<String>,
    /// End (exclusive); default now.
    pub to: Option<String>,
    /// `hour` or `day` (default).
    pub bucket: Option<String>,
    /// Group each bucket by `method`, `reason`, `user_domain`, `app`,
    /// `source`, `country` or `user`.
    pub by: Option<String>,
    /// json (default), ndjson or csv.
    pub format: Option<String>,
}

/// Columns the report may group by.
const GROUPS: &[&str] = &[
    "method",
    "reason",
    "user_domain",
    "app",
    "source",
    "country",
    "user",
];

/// `GET /v1/reports/failed-logins`: per bucket (and group), login and MFA
/// attempts, failures and the failure rate. JSON wraps the rows with the
/// report's parameters and totals; NDJSON and CSV carry the rows alone.
#[utoipa::path(
    get,
    path = "/v1/reports/failed-logins",
    params(
        ("from" = Option<String>, Query, description = "Default: seven days before `to`"),
        ("to" = Option<String>, Query, description = "Default: now"),
        ("bucket" = Option<String>, Query, description = "hour or day (default)"),
        ("by" = Option<String>, Query, description = "method, reason, user_domain, app, source, country or user"),
        ("format" = Option<String>, Query, description = "json (with totals), ndjson or csv"),
    ),
    responses((status = 200, description = "Buckets with attempts, failures and failure_rate"), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody))
)]
pub async fn failed_logins(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(params): Query<FailedLoginParams>,
) -> Result<Response, ApiError> {
    let what = "GET /v1/reports/failed-logins";
    let principal = state.authorize(&headers, Permission::Read, what).await?;
    let result = failed_logins_inner(&state, &headers, &params).await;
    state.audited(&principal, what, result)
}

async fn failed_logins_inner(
    state: &SharedState,
    headers: &HeaderMap,
    params: &FailedLoginParams,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(params.format.as_deref(), headers)?;
    let to = match &params.to {
        Some(t) => parse_time("to", t)?,
        None => Utc::now(),
    };
    let from = match &params.from {
        Some(t) => parse_time("from", t)?,
        None => to - chrono::Duration::days(7),
    };
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_time",
            "`from` must be before `to`",
        ));
    }
    let bucket = match params.bucket.as_deref().unwrap_or("day") {
        b @ ("hour" | "day") => b,
        other => {
            return Err(ApiError::bad_request(
                "invalid_bucket",
                format!("`bucket` must be hour or day; got {other:?}"),
            ));
        }
    };
    let by = match params.by.as_deref() {
        None => None,
        Some(b) if GROUPS.contains(&b) => Some(b),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_group",
                format!("`by` must be one of {}; got {other:?}", GROUPS.join(", ")),
            ));
        }
    };
    let (session, deadline) = session(state).await?;
    let events = || async {
        let frame = session.context().table("events").await.map_err(df)?;
        let mut filters = time_range(Some(from), Some(to));
        filters.push(col("action").in_list(vec![lit("login"), lit("mfa_verify")], false));
        filtered(frame, filters)
    };
    use datafusion::functions::expr_fn::date_trunc;
    use datafusion::functions_aggregate::expr_fn::{count, sum};
    use datafusion::logical_expr::{cast, when};
    let failure = when(col("outcome").eq(lit("failure")), lit(1i64))
        .otherwise(lit(0i64))
        .map_err(df)?;
    let aggregates = || {
        vec![
            count(lit(1i64)).alias("attempts"),
            sum(failure.clone()).alias("failures"),
        ]
    };
    let rate = |frame: DataFrame| -> Result<DataFrame, ApiError> {
        frame
            .with_column(
                "failure_rate",
                cast(
                    col("failures"),
                    datafusion::arrow::datatypes::DataType::Float64,
                ) / cast(
                    col("attempts"),
                    datafusion::arrow::datatypes::DataType::Float64,
                ),
            )
            .map_err(df)
    };
    let mut group = vec![date_trunc(lit(bucket), col("time")).alias("bucket")];
    if let Some(by) = by {
        group.push(col(by));
    }
    let mut order = vec![col("bucket").sort(true, false)];
    if let Some(by) = by {
        order.push(col(by).sort(true, true));
    }
    let rows = rate(events().await?.aggregate(group, aggregates()).map_err(df)?)?
        .sort(order)
        .map_err(df)?;
    if format != Format::Json {
        let stream = session.execute(rows).await?;
        return response(stream, format, deadline, HeaderMap::new()).await;
    }
    // Both plans are made under the same snapshot (the rows' execution
    // releases it), so totals and rows count the same events.
    let totals_frame = rate(
        events()
            .await?
            .aggregate(vec![], aggregates())
            .map_err(df)?,
    )?;
    let totals_plan = totals_frame.create_physical_plan().await.map_err(df)?;
    let rows_stream = session.execute(rows).await?;
    let totals: Vec<RecordBatch> = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        datafusion::physical_plan::collect(totals_plan, session.context().task_ctx()),
    )
    .await
    .map_err(|_| ApiError::from(authtrail_query::QueryError::Timeout(session.timeout())))?
    .map_err(df)?;
    let (attempts, failures) = totals
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| {
            let get = |name: &str| {
                b.column_by_name(name)
                    .and_then(|c| {
                        let c = c.as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()?;
                        (!c.is_null(0)).then(|| c.value(0))
                    })
                    .unwrap_or(0)
            };
            (get("attempts"), get("failures"))
        })
        .unwrap_or((0, 0));
    let header = serde_json::json!({
        "from": from.to_rfc3339(),
        "to": to.to_rfc3339(),
        "bucket": bucket,
        "by": by,
        "totals": {
            "attempts": attempts,
            "failures": failures,
            "failure_rate": if attempts > 0 { failures as f64 / attempts as f64 } else { 0.0 },
        },
    });
    // `{...,"rows":` + the streamed array + `}`.
    let mut prefix = header.to_string();
    prefix.pop();
    prefix.push_str(",\"rows\":");
    crate::stream::wrapped_response(
        rows_stream,
        deadline,
        prefix.into(),
        bytes::Bytes::from_static(b"}\n"),
    )
    .await
}
