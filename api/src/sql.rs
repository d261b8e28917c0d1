//! `POST /v1/query`: read-only SQL over `events` and `dead_letters`, with
//! the configured memory and time limits. DDL, DML, `COPY`, `SET` and
//! anything that reads or writes files are refused before planning; the
//! result streams in the negotiated format until the time limit.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use crate::SharedState;
use crate::auth::Permission;
use crate::error::ApiError;
use crate::stream::{Format, response};

/// Longest SQL text accepted.
const MAX_SQL_BYTES: usize = 64 << 10;

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// One read-only SQL statement.
    pub sql: String,
    /// json (default), ndjson or csv; `Accept` works too.
    pub format: Option<String>,
}

/// `POST /v1/query`.
#[utoipa::path(
    post,
    path = "/v1/query",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The result, streamed"),
        (status = 400, description = "Invalid SQL", body = crate::error::ErrorBody),
        (status = 403, description = "Not read-only, or the token lacks the query permission", body = crate::error::ErrorBody),
        (status = 408, description = "Time limit", body = crate::error::ErrorBody),
        (status = 422, description = "Memory limit", body = crate::error::ErrorBody),
    )
)]
pub async fn query(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let what = "POST /v1/query";
    let principal = state.authorize(&headers, Permission::Query, what).await?;
    let result = async {
        // Any content type: `curl -d '{"sql": …}'` sends a form type.
        let request: QueryRequest = serde_json::from_slice(&body).map_err(|err| {
            ApiError::bad_request(
                "invalid_request",
                format!("expected {{\"sql\": \"SELECT …\"}}: {err}"),
            )
        })?;
        if request.sql.len() > MAX_SQL_BYTES {
            return Err(ApiError::bad_request(
                "query_too_long",
                format!("SQL longer than {MAX_SQL_BYTES} bytes"),
            ));
        }
        let format = Format::negotiate(request.format.as_deref(), &headers)?;
        let (session, deadline) = crate::read::session(&state).await?;
        let stream = session.stream(&request.sql).await?;
        response(stream, format, deadline, HeaderMap::new()).await
    }
    .await;
    state.audited(&principal, what, result)
}
