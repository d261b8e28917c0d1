//! `POST /v1/ingest/{source}`: webhook deliveries and batches (a JSON
//! object, a JSON array or NDJSON, optionally gzip-compressed) parsed by
//! the source's adapter and handed to the group-commit writer. The answer
//! comes only once the batch is durable, and lists every rejected record
//! with its line number and reason (those are stored as dead letters).
//!
//! `GET /v1/ingest/okta` answers Okta's one-time event-hook verification.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;

use authtrail_ingest::pipeline::{Output, Parsed, parse_body};
use authtrail_ingest::staging::{Batch, SubmitError};
use authtrail_schemas::Outcome;

use crate::SharedState;
use crate::auth::{self, Permission, Principal, webhook};
use crate::error::ApiError;
use crate::metrics::{EventLabels, SourceLabels};

/// Bodies larger than this are parsed on the parsing pool, so that a big
/// batch does not hold up the requests sharing its worker thread.
const INLINE_PARSE_BYTES: usize = 64 << 10;

/// One rejected record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rejected {
    /// 1-based line (NDJSON) or element (JSON array) number.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

/// The answer to an ingest request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestResponse {
    /// Records in the body.
    pub records: u64,
    /// Events newly stored.
    pub stored: u64,
    /// Events already in the log (a redelivery), not stored again.
    pub duplicates: u64,
    /// Records rejected (stored as dead letters).
    pub rejected: Vec<Rejected>,
    /// Valid records that are not authentication events, by kind.
    pub skipped: BTreeMap<String, u64>,
}

impl IngestResponse {
    /// The answer's JSON. Most answers reject and skip nothing, and are
    /// written straight out: serde's writer costs several times as much
    /// for these five fields, paid on every single-event delivery.
    fn to_json(&self) -> Result<Vec<u8>, ApiError> {
        if self.rejected.is_empty() && self.skipped.is_empty() {
            let mut numbers = itoa::Buffer::new();
            let mut json = Vec::with_capacity(128);
            json.extend_from_slice(br#"{"records":"#);
            json.extend_from_slice(numbers.format(self.records).as_bytes());
            json.extend_from_slice(br#","stored":"#);
            json.extend_from_slice(numbers.format(self.stored).as_bytes());
            json.extend_from_slice(br#","duplicates":"#);
            json.extend_from_slice(numbers.format(self.duplicates).as_bytes());
            json.extend_from_slice(br#","rejected":[],"skipped":{}}"#);
            return Ok(json);
        }
        serde_json::to_vec(self).map_err(|err| ApiError::internal("writing the answer", err))
    }
}

/// `POST /v1/ingest/{source}`.
#[utoipa::path(
    post,
    path = "/v1/ingest/{source}",
    params(("source" = String, Path, description = "Adapter: okta, auth0, keycloak, harness, github, ocsf, ecs, sshd, windows, generic")),
    request_body(content = String, description = "A JSON object, a JSON array or NDJSON (sshd: syslog lines); `Content-Encoding: gzip` accepted", content_type = "application/json"),
    responses(
        (status = 200, description = "Durable. Rejected records (if any) are listed and stored as dead letters", body = IngestResponse),
        (status = 401, description = "Missing or invalid signature or token", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks the ingest permission", body = crate::error::ErrorBody),
        (status = 413, description = "Body too large", body = crate::error::ErrorBody),
        (status = 422, description = "Every record was rejected", body = IngestResponse),
        (status = 503, description = "Overloaded or shutting down; see Retry-After", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("webhook_hmac" = []))
)]
pub async fn ingest(
    State(state): State<SharedState>,
    Path(source): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    // The request taken whole rather than through the `HeaderMap` and
    // `Bytes` extractors: the first clones every header, the second
    // answers an oversized body in plain text.
    let (parts, body) = request.into_parts();
    let body = read_body(body, state.config.server.max_body_bytes).await?;
    let result = ingest_inner(&state, &source, &parts.headers, body).await;
    if let Err(err) = &result
        && (err.status == StatusCode::UNAUTHORIZED || err.status == StatusCode::FORBIDDEN)
    {
        state.audit(None, &format!("POST /v1/ingest/{source}"), Err(err));
    }
    result
}

async fn ingest_inner(
    state: &SharedState,
    source: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !state.adapters.contains_key(source) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!(
                "no source {source:?}; this server takes: {}",
                sorted_sources(state).join(", ")
            ),
        ));
    }
    let principal = authenticate(state, source, headers, &body).await?;
    let body = decompress(headers, body, state.config.server.max_decompressed_bytes)?;
    let origin = origin_of(&principal.subject);
    // A small body's events go to the stager as they are (it builds one
    // Arrow batch for all of a commit's single deliveries). A large
    // body is parsed on the parsing pool, straight into Arrow batches.
    let parsed = if body.len() <= INLINE_PARSE_BYTES {
        parse(state, source, &body, &origin, Output::Events)?
    } else {
        let state = Arc::clone(state);
        let source = source.to_owned();
        let origin = origin.clone();
        on_parsing_pool(move || {
            let output = Output::Batches {
                ingested_at_micros: Utc::now().timestamp_micros(),
            };
            parse(&state, &source, &body, &origin, output)
        })
        .await?
    };
    let by_outcome = parsed.events_by_outcome();
    let Parsed {
        events,
        batches,
        event_count,
        dead_letters,
        skipped,
        records,
    } = parsed;
    let events: Vec<_> = events.into_iter().flatten().collect();
    // One metric update per outcome, not per event.
    for (code, (outcome, count)) in Outcome::ALL.iter().zip(by_outcome).enumerate() {
        if count > 0 {
            state
                .metrics
                .events
                .inc_by(source, code as u16, count, || EventLabels {
                    source: source.to_owned(),
                    outcome: outcome.as_str().to_owned(),
                });
        }
    }
    if !dead_letters.is_empty() {
        state
            .metrics
            .dead_letters
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .inc_by(dead_letters.len() as u64);
    }
    let rejected: Vec<Rejected> = dead_letters
        .iter()
        .map(|letter| Rejected {
            line: letter.line,
            reason: letter.reason.clone(),
        })
        .collect();
    let started = Instant::now();
    let answer = state
        .stager
        .submit(Batch {
            events,
            record_batches: batches,
            dead_letters,
            ..Batch::default()
        })
        .map_err(|err| match err {
            SubmitError::Overloaded { .. } => ApiError::unavailable(
                "overloaded",
                "the ingest queue is full; retry shortly (nothing of this request was stored)",
                1,
            ),
            SubmitError::Closed => ApiError::unavailable(
                "shutting_down",
                "the server is shutting down; retry against another instance",
                5,
            ),
            err @ SubmitError::Encoding(_) => ApiError::internal("storing the batch", err),
        })?;
    state
        .metrics
        .queued
        .set(state.stager.queued_events() as i64);
    let receipt = answer
        .await
        .map_err(|_| ApiError::internal("storing the batch", "the writer stopped"))?
        .map_err(|err| ApiError::internal("storing the batch", err))?;
    state
        .metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    let status = if records > 0 && event_count == 0 && !rejected.is_empty() {
        // Nothing usable: the sender must fix its payload.
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let response = IngestResponse {
        records,
        stored: receipt.stored,
        duplicates: receipt.duplicates,
        rejected,
        skipped,
    };
    let json = [(header::CONTENT_TYPE, "application/json")];
    Ok((status, json, response.to_json()?).into_response())
}

/// Where a delivery's events came from: `http:<subject>:<ULID>`. Written
/// piece by piece: `format!` costs a request twice as much.
fn origin_of(subject: &str) -> String {
    let mut id = [0u8; ulid::ULID_LEN];
    let id = ulid::Ulid::new().array_to_str(&mut id);
    let mut origin = String::with_capacity("http::".len() + subject.len() + id.len());
    origin.push_str("http:");
    origin.push_str(subject);
    origin.push(':');
    origin.push_str(id);
    origin
}

fn sorted_sources(state: &SharedState) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = state.adapters.keys().copied().collect();
    names.sort_unstable();
    names
}

/// Runs `work` on the parsing threads (rayon's pool, one per core, which
/// also seals the log), not on a thread of its own: a few threads
/// allocating and freeing batches keep the allocator's memory warm, where
/// tokio's blocking pool spreads them over a dozen threads, each with its
/// own heap to fault in.
async fn on_parsing_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let (done, result) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        // rayon aborts the process on a panic; a request must not.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
                Err(ApiError::internal(
                    "parsing the batch",
                    "the parser panicked",
                ))
            });
        // The request may have been dropped meanwhile.
        let _ = done.send(outcome);
    });
    result
        .await
        .map_err(|_| ApiError::internal("parsing the batch", "the parser stopped"))?
}

fn parse(
    state: &SharedState,
    source: &str,
    body: &[u8],
    origin: &str,
    output: Output,
) -> Result<Parsed, ApiError> {
    let adapter = state
        .adapters
        .get(source)
        .ok_or_else(|| ApiError::internal("parsing", format!("adapter {source} vanished")))?;
    parse_body(adapter.as_ref(), body, origin, Utc::now(), output)
        .map_err(|err| ApiError::internal("encoding the batch", err))
}

/// Webhook credentials when the source has them configured and the request
/// carries them; a bearer token with the `ingest` permission otherwise.
async fn authenticate(
    state: &SharedState,
    source: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Principal, ApiError> {
    let webhook_config = state.config.webhook.get(source);
    if let Some(config) = webhook_config
        && (webhook::has_credential(config, headers) || !config.allow_bearer)
    {
        let method = webhook::verify(config, headers, body, Utc::now().timestamp())?;
        return Ok(Principal {
            subject: format!("webhook:{source}"),
            permissions: [Permission::Ingest].into(),
            method,
        });
    }
    let token = auth::bearer_token(headers)?.ok_or_else(|| {
        ApiError::unauthorized(
            "missing_credentials",
            if webhook_config.is_some() {
                "sign the delivery (see [webhook] in the configuration) or send a bearer token with the ingest role"
            } else {
                "send `Authorization: Bearer <token>` with the ingest role (authtrail token --role ingest)"
            },
        )
    })?;
    let principal = state.verifier.verify(token).await?;
    principal.require(Permission::Ingest)?;
    Ok(principal)
}

/// Reads a request body of at most `limit` bytes (`[server]
/// max_body_bytes`).
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the body is larger than {limit} bytes (the server's max_body_bytes); \
                 send smaller batches"
            ),
        )),
        Err(err) => Err(ApiError::bad_request(
            "unreadable_body",
            format!("the request body could not be read: {err}"),
        )),
    }
}

/// Undoes `Content-Encoding: gzip`, refusing output beyond `limit` (a
/// small compressed body can expand enormously).
fn decompress(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") => Ok(body),
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::with_capacity(body.len() * 4);
            let mut decoder = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1);
            decoder.read_to_end(&mut out).map_err(|err| {
                ApiError::bad_request(
                    "bad_gzip",
                    format!("the gzip body cannot be decompressed: {err}"),
                )
            })?;
            if out.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!(
                        "the body decompresses to more than {limit} bytes; send smaller batches"
                    ),
                ));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("Content-Encoding {other:?} is not supported; use gzip or none"),
        )),
    }
}

#[derive(Serialize)]
struct Verification {
    verification: String,
}

/// `GET /v1/ingest/{source}` with `X-Okta-Verification-Challenge`: Okta's
/// one-time check that it talks to the right endpoint.
#[utoipa::path(
    get,
    path = "/v1/ingest/{source}",
    params(
        ("source" = String, Path, description = "The source, normally okta"),
        ("X-Okta-Verification-Challenge" = String, Header, description = "Okta's challenge"),
    ),
    responses(
        (status = 200, description = "`{\"verification\": <challenge>}`"),
        (status = 404, description = "Verification not enabled for this source", body = crate::error::ErrorBody),
    ),
    security(())
)]
pub async fn okta_verification(
    State(state): State<SharedState>,
    Path(source): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let config = state
        .config
        .webhook
        .get(&source)
        .filter(|c| c.okta_verification)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_verification",
                format!("set okta_verification = true in [webhook.{source}] to answer Okta's verification"),
            )
        })?;
    if config.authorization.is_some() {
        webhook::verify(config, &headers, b"", Utc::now().timestamp())?;
    }
    let challenge = headers
        .get("x-okta-verification-challenge")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_challenge",
                "expected the X-Okta-Verification-Challenge header",
            )
        })?;
    Ok(Json(Verification {
        verification: challenge.to_owned(),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The answer written straight out is, byte for byte, what serde
    /// writes; an answer with rejections or skips goes through serde.
    #[test]
    fn the_answer_is_the_json_serde_writes() {
        let plain = IngestResponse {
            records: 1_000,
            stored: 998,
            duplicates: 2,
            rejected: Vec::new(),
            skipped: BTreeMap::new(),
        };
        let written = plain.to_json().unwrap();
        assert_eq!(written, serde_json::to_vec(&plain).unwrap());
        let value: serde_json::Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(value["stored"], 998);
        assert_eq!(value["duplicates"], 2);
        let full = IngestResponse {
            records: 3,
            stored: 1,
            duplicates: 0,
            rejected: vec![Rejected {
                line: 2,
                reason: "not valid JSON: \"x\"".to_owned(),
            }],
            skipped: BTreeMap::from([("account_change".to_owned(), 1)]),
        };
        assert_eq!(full.to_json().unwrap(), serde_json::to_vec(&full).unwrap());
        let extremes = IngestResponse {
            records: u64::MAX,
            stored: 0,
            ..plain
        };
        assert_eq!(
            extremes.to_json().unwrap(),
            serde_json::to_vec(&extremes).unwrap()
        );
    }

    #[test]
    fn an_origin_names_the_subject_and_a_fresh_ulid() {
        let first = origin_of("webhook:okta");
        let id = first.strip_prefix("http:webhook:okta:").unwrap();
        assert!(ulid::Ulid::from_string(id).is_ok(), "{first}");
        assert_ne!(origin_of("webhook:okta"), first);
    }
}
