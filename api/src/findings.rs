//! `GET /v1/findings` (the newest version of each finding, filtered and
//! paged like `/v1/events`) and `GET /v1/findings/{id}` (one finding with
//! its evidence events).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::RecordBatch;
use datafusion::functions::expr_fn::{concat, strpos};
use datafusion::functions_nested::expr_fn::{array_has, array_to_string};
use datafusion::logical_expr::{Expr, col, lit};
use serde::Deserialize;

use crate::SharedState;
use crate::auth::Permission;
use crate::error::ApiError;
use crate::read::{
    Listing, after_cursor, df, filtered, parse_time, session, stream_rows, timestamp,
};
use crate::stream::Format;

/// Severities, least first.
const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// Filters of `/v1/findings`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingFilters {
    /// Earliest first evidence (RFC 3339 or date), inclusive.
    pub from: Option<String>,
    /// Latest first evidence, exclusive.
    pub to: Option<String>,
    /// The rule's id.
    pub rule: Option<String>,
    /// This severity or worse.
    pub severity: Option<String>,
    /// A tag: an ATT&CK technique (`T1110.003`) or a SOC 2 criterion (`CC6.1`).
    pub tag: Option<String>,
    /// Findings about this user.
    pub user: Option<String>,
    /// Findings about this source address (or host).
    pub src_ip: Option<String>,
    /// Page size (at most 10,000).
    pub limit: Option<usize>,
    /// `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
    /// json, ndjson or csv.
    pub format: Option<String>,
}

fn listing() -> Listing<'static> {
    Listing {
        table: "findings",
        time: "first_time",
        id: "finding_id",
        schema: authtrail_schemas::arrow_schema::findings_schema(),
    }
}

/// `group_key` holds `name=value` pairs joined by `, `: a finding is about
/// `value` if one of the pairs is `name=value` for one of `names`.
fn about(names: &[&str], value: &str) -> Expr {
    let padded = concat(vec![lit(", "), col("group_key"), lit(", ")]);
    names
        .iter()
        .map(|name| strpos(padded.clone(), lit(format!(", {name}={value}, "))).gt(lit(0)))
        .reduce(Expr::or)
        .unwrap_or(lit(false))
}

impl FindingFilters {
    fn exprs(&self) -> Result<Vec<Expr>, ApiError> {
        let mut filters = Vec::new();
        if let Some(from) = &self.from {
            filters.push(col("first_time").gt_eq(timestamp(parse_time("from", from)?)));
        }
        if let Some(to) = &self.to {
            filters.push(col("first_time").lt(timestamp(parse_time("to", to)?)));
        }
        if let Some(rule) = &self.rule {
            filters.push(col("rule_id").eq(lit(rule.clone())));
        }
        if let Some(severity) = &self.severity {
            let at = SEVERITIES
                .iter()
                .position(|s| s == severity)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_severity",
                        format!(
                            "`severity` must be one of {}; got {severity:?}",
                            SEVERITIES.join(", ")
                        ),
                    )
                })?;
            let allowed = SEVERITIES[at..].iter().map(|s| lit(*s)).collect();
            filters.push(col("severity").in_list(allowed, false));
        }
        if let Some(tag) = &self.tag {
            filters.push(array_has(col("tags"), lit(tag.clone())));
        }
        if let Some(user) = &self.user {
            filters.push(about(&["user"], &user.to_lowercase()));
        }
        if let Some(ip) = &self.src_ip {
            filters.push(about(&["source", "src_ip"], ip));
        }
        if let Some(cursor) = &self.cursor {
            filters.push(after_cursor(&listing(), cursor)?);
        }
        Ok(filters)
    }
}

/// The columns of a finding; CSV has no lists, so there the lists are
/// joined with `,`.
fn columns(format: Format) -> Vec<Expr> {
    authtrail_schemas::arrow_schema::findings_schema()
        .fields()
        .iter()
        .map(|f| match (f.name().as_str(), format) {
            (list @ ("tags" | "evidence_ids"), Format::Csv) => {
                array_to_string(col(list), lit(",")).alias(list)
            }
            (name, _) => col(name),
        })
        .collect()
}

/// `GET /v1/findings`: the newest version of each finding, oldest first.
#[utoipa::path(
    get,
    path = "/v1/findings",
    params(
        ("from" = Option<String>, Query, description = "Earliest first evidence (RFC 3339 or date), inclusive"),
        ("to" = Option<String>, Query, description = "Latest first evidence, exclusive"),
        ("rule" = Option<String>, Query), ("severity" = Option<String>, Query, description = "This severity or worse"),
        ("tag" = Option<String>, Query, description = "ATT&CK technique or SOC 2 criterion"),
        ("user" = Option<String>, Query), ("src_ip" = Option<String>, Query),
        ("limit" = Option<usize>, Query, description = "Page size (≤ 10,000); the next page's cursor comes in X-Next-Cursor"),
        ("cursor" = Option<String>, Query), ("format" = Option<String>, Query, description = "json, ndjson or csv"),
    ),
    responses((status = 200, description = "Findings, oldest first"), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody))
)]
pub async fn list(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(filters): Query<FindingFilters>,
) -> Result<Response, ApiError> {
    let what = "GET /v1/findings";
    let principal = state.authorize(&headers, Permission::Read, what).await?;
    let result = async {
        let format = Format::negotiate(filters.format.as_deref(), &headers)?;
        stream_rows(
            &state,
            &listing(),
            columns(format),
            filters.exprs()?,
            filters.limit,
            format,
        )
        .await
    }
    .await;
    state.audited(&principal, what, result)
}

fn to_json(batches: &[RecordBatch]) -> Result<serde_json::Value, ApiError> {
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer
        .write_batches(&refs)
        .and_then(|()| writer.finish())
        .map_err(|e| ApiError::internal("encoding", e))?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::internal("encoding", e))
}

/// `GET /v1/findings/{id}`: one finding (its newest version) and its
/// evidence events, oldest first.
#[utoipa::path(
    get,
    path = "/v1/findings/{id}",
    params(("id" = String, Path, description = "finding_id")),
    responses((status = 200, description = "{\"finding\": …, \"evidence\": [events]}"), (status = 404, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody))
)]
pub async fn one(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let what = format!("GET /v1/findings/{id}");
    let principal = state.authorize(&headers, Permission::Read, &what).await?;
    let result = async {
        let (session, deadline) = session(&state).await?;
        // Both queries together stay within the configured time limit.
        let limit = session.timeout();
        let timed = |frame: datafusion::prelude::DataFrame| async move {
            tokio::time::timeout(
                deadline.saturating_duration_since(std::time::Instant::now()),
                frame.collect(),
            )
            .await
            .map_err(|_| ApiError::from(authtrail_query::QueryError::Timeout(limit)))?
            .map_err(df)
        };
        let frame = session.context().table("findings").await.map_err(df)?;
        let found = timed(filtered(
            frame,
            vec![col("finding_id").eq(lit(id.clone()))],
        )?)
        .await?;
        let finding = to_json(&found)?
            .as_array_mut()
            .and_then(|rows| rows.pop())
            .ok_or_else(|| ApiError::not_found("no_such_finding", format!("no finding {id:?}")))?;
        // The evidence ids are in the finding already: no second read of
        // `findings`.
        let ids: Vec<Expr> = finding["evidence_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|v| v.as_str())
                    .map(|id| lit(id.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let events = session.context().table("events").await.map_err(df)?;
        let evidence = filtered(events, vec![col("event_id").in_list(ids, false)])?
            .sort(vec![
                col("time").sort(true, false),
                col("event_id").sort(true, false),
            ])
            .and_then(|f| f.drop_columns(&["raw"]))
            .map_err(df)?;
        let evidence = timed(evidence).await?;
        let body = serde_json::json!({ "finding": finding, "evidence": to_json(&evidence)? });
        Ok(axum::Json(body).into_response())
    }
    .await;
    state.audited(&principal, &what, result)
}
