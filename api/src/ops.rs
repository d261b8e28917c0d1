//! Operations endpoints: `/healthz` (the process answers), `/readyz` (it
//! takes traffic: the writer runs and shutdown has not begun), `/metrics`
//! (Prometheus text) and `/v1/openapi.json`.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::SharedState;

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<SharedState>) -> Response {
    if !state.stager.is_healthy() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "event log writer failed; see the server log and restart\n",
        )
            .into_response()
    } else if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<SharedState>) -> Response {
    state
        .metrics
        .queued
        .set(state.stager.queued_events() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}
