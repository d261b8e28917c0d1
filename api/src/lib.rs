//! The authtrail HTTP API (axum), versioned under `/v1`:
//!
//! - [`ingest`]: `POST /v1/ingest/{source}`, webhook deliveries and batches
//!   into the event log, acknowledged only once durable;
//! - [`read`]: events, the failed-login report and user timelines, streamed
//!   as JSON, NDJSON or CSV;
//! - [`sql`]: `POST /v1/query`, read-only SQL with memory and time limits;
//! - [`auth`]: bearer JWTs (an OIDC issuer's, or the local key's) and
//!   webhook signatures;
//! - [`ops`]: health, readiness, Prometheus metrics and the OpenAPI
//!   document.
//!
//! Every call that reads, queries or exports, and every refused call, is
//! itself stored in the log as an event of source `authtrail`.

pub mod auth;
pub mod config;
pub mod error;
pub mod findings;
mod http_client;
pub mod ingest;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod read;
mod response_count;
pub mod sql;
pub mod stream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;

use authtrail_ingest::adapters::{self, Adapter, AdapterOptions};
use authtrail_ingest::staging::{Batch, Stager};
use authtrail_schemas::{Action, AuthEvent, Method, Outcome, Reason};

use auth::local::{LOCAL_ISSUER, LocalKey};
use auth::{JwtVerifier, Permission, Principal, jwt::KeySource};
pub use config::ApiConfig;
use error::ApiError;
use metrics::Metrics;

/// Why the server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Authentication settings are unusable.
    #[error("{0}")]
    Auth(#[from] auth::jwt::SetupError),
    /// The local signing key could not be loaded.
    #[error("local signing key: {0}")]
    LocalKey(#[from] auth::local::LocalKeyError),
    /// A webhook table names no known source.
    #[error("[webhook.{0}]: no such source; known sources: {known}", known = adapters::NAMES.join(", "))]
    UnknownWebhook(String),
}

/// Everything a handler needs.
pub struct AppState {
    /// The data directory (the event log's root).
    pub data: PathBuf,
    /// The configuration.
    pub config: ApiConfig,
    /// The group-commit writer.
    pub stager: Arc<Stager>,
    /// Bearer token verification.
    pub verifier: JwtVerifier,
    /// Adapters by source name.
    pub adapters: HashMap<&'static str, Box<dyn Adapter>>,
    /// Metrics.
    pub metrics: Metrics,
    /// Cleared when shutting down, so that `/readyz` takes the instance out
    /// of rotation before it stops.
    pub ready: AtomicBool,
}

/// Shared state.
pub type SharedState = Arc<AppState>;

impl AppState {
    /// Builds the state: the token verifier (loading the issuer's keys, or
    /// the local key), every adapter, and the metrics.
    pub async fn new(
        data: PathBuf,
        config: ApiConfig,
        stager: Arc<Stager>,
        adapter_options: &AdapterOptions,
    ) -> Result<AppState, SetupError> {
        for source in config.webhook.keys() {
            if !adapters::NAMES.contains(&source.as_str()) {
                return Err(SetupError::UnknownWebhook(source.clone()));
            }
        }
        let verifier = match (&config.auth.issuer, &config.auth.jwks_file) {
            (Some(issuer), Some(file)) => JwtVerifier::new(
                KeySource::File(file.clone()),
                issuer.clone(),
                &config.auth,
                None,
            )?,
            (Some(issuer), None) => JwtVerifier::new(
                KeySource::Discovery(issuer.clone()),
                issuer.clone(),
                &config.auth,
                None,
            )?,
            (None, _) => {
                let local = LocalKey::load_or_create(&data)?;
                let mut auth = config.auth.clone();
                auth.algorithms = vec!["EdDSA".into()];
                JwtVerifier::new(KeySource::Local, LOCAL_ISSUER.into(), &auth, Some(&local))?
            }
        };
        verifier.load_keys().await?;
        let mut map: HashMap<&'static str, Box<dyn Adapter>> = HashMap::new();
        for name in adapters::NAMES {
            // `generic` needs a mapping file; without one it is not served.
            if let Ok(adapter) = adapters::build(name, adapter_options) {
                map.insert(name, adapter);
            }
        }
        Ok(AppState {
            data,
            config,
            stager,
            verifier,
            adapters: map,
            metrics: Metrics::new(),
            ready: AtomicBool::new(true),
        })
    }

    /// Authenticates a bearer-token call and checks its permission. Refused
    /// calls are audited.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        needed: Permission,
        what: &str,
    ) -> Result<Principal, ApiError> {
        let result = async {
            let token = auth::bearer_token(headers)?.ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_token",
                    "send `Authorization: Bearer <token>` (for a local token: authtrail token --role read)",
                )
            })?;
            let principal = self.verifier.verify(token).await?;
            principal.require(needed)?;
            Ok(principal)
        }
        .await;
        if let Err(err) = &result {
            self.audit(None, what, Err(err));
        }
        result
    }

    /// Audits a call made by `principal` with its result, and hands the
    /// result back.
    pub fn audited(
        &self,
        principal: &Principal,
        what: &str,
        result: Result<Response, ApiError>,
    ) -> Result<Response, ApiError> {
        self.audit(
            Some(principal),
            what,
            result.as_ref().map(|r| r.status().as_u16()),
        );
        result
    }

    /// Stores one API call in the log as an event of source `authtrail`:
    /// who (`user`), what (`reason_detail`), and the result. Auditing never
    /// holds up or fails the call it records; a full queue is logged.
    pub fn audit(&self, principal: Option<&Principal>, what: &str, result: Result<u16, &ApiError>) {
        let now = Utc::now();
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut event = AuthEvent::new(
            ulid::Ulid::new().to_string(),
            now,
            "authtrail",
            Action::ApiCall,
            outcome,
        );
        if let Some(principal) = principal {
            event.user = Some(principal.subject.clone());
            event.method = Some(match principal.method {
                "jwt" => Method::Oidc,
                _ => Method::ApiKey,
            });
        }
        let status = match result {
            Ok(status) => status,
            Err(err) => {
                event.reason = Some(match err.status {
                    StatusCode::UNAUTHORIZED => Reason::InvalidCredentials,
                    _ => Reason::Other,
                });
                err.status.as_u16()
            }
        };
        event.reason_detail = Some(format!("{what} -> {status}"));
        event.app = Some("authtrail-api".into());
        event.raw = serde_json::json!({
            "call": what,
            "status": status,
            "subject": principal.map(|p| p.subject.as_str()),
            "error": result.err().map(|e| e.code),
        })
        .to_string();
        let batch = Batch {
            events: vec![event],
            ..Batch::default()
        };
        if let Err(err) = self.stager.submit(batch) {
            tracing::warn!(error = %err, call = what, "could not audit an API call");
        }
    }
}

/// The whole API.
pub fn router(state: SharedState) -> Router {
    let max_body = state.config.server.max_body_bytes;
    let timeout = Duration::from_secs(state.config.server.request_timeout_s.max(1));
    let concurrency = state.config.server.max_concurrent_requests.max(1);
    // What every route has, outermost first: the response counter (so
    // that every answer is counted, refusals and timeouts too), the one
    // place errors of the layers below become answers, a timeout, the
    // body limit. (A macro: the stack's type names the future of
    // `overloaded`, which has no name.)
    macro_rules! common_layers {
        () => {
            tower::ServiceBuilder::new()
                .layer(response_count::CountResponsesLayer::new(state.clone()))
                .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
                .timeout(timeout)
                .layer(DefaultBodyLimit::max(max_body))
        };
    }
    // Full paths rather than a router nested under /v1: a nested router
    // rebuilds every request's URI without its prefix and routes twice.
    //
    // Each `Router::layer` call wraps every route (each method of it, and
    // the fallback) in one more boxed service, and a request clones every
    // box of its route's nesting, inner ones again for each outer one: so
    // each group of routes gets its whole stack in one call, and a
    // request clones two boxes, not fifteen.
    //
    // One semaphore for the whole API: a plain concurrency limit would
    // give every route a limit of its own. The probes and `/metrics` are
    // outside it: they must answer while the API is saturated.
    let api = Router::new()
        .route(
            "/v1/ingest/{source}",
            post(ingest::ingest).get(ingest::okta_verification),
        )
        .route("/v1/events", get(read::events))
        .route("/v1/findings", get(findings::list))
        .route("/v1/findings/{id}", get(findings::one))
        .route("/v1/reports/failed-logins", get(read::failed_logins))
        .route("/v1/users/{user}/timeline", get(read::timeline))
        .route("/v1/query", post(sql::query))
        .route("/v1/openapi.json", get(ops::openapi))
        .layer(
            tower::ServiceBuilder::new()
                .layer(common_layers!())
                .load_shed()
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(concurrency)),
        );
    let outside_limit = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(common_layers!());
    // Merged this way round for the fallback: of two default fallbacks,
    // `merge` keeps the one merged in, so unmatched requests are counted
    // and timed out like the probes, and not held by the API's limit.
    api.merge(outside_limit).with_state(state)
}

async fn overloaded(err: tower::BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::unavailable("timeout", "the request took too long; retry later", 1)
            .into_response()
    } else {
        ApiError::unavailable(
            "overloaded",
            "the server is at its concurrency limit; retry later",
            1,
        )
        .into_response()
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// taking connections and lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ready = state.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            ready.ready.store(false, Ordering::Release);
        })
        .await
}
