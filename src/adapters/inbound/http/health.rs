//! `GET /health`: 200 while the store can be read and written, 503 otherwise. A durability
//! warning (the last change is in place but its folder's fsync failed) is shown without making
//! the answer 503. Open to probes; when a read token is set, only callers presenting a token
//! see more than `status` and `timestamp` (docs/src/operations.md, Health).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::domain::timestamp_text;

pub async fn health(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let report = state.edge.services.check_health.execute().await;
    let storage = &report.storage;
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| at.map(timestamp_text);
    let access = state.edge.tokens.access(&headers).unwrap_or_default();
    let body = if !state.edge.tokens.policy().can_read(access) {
        json!({
            "status": if report.healthy { "ok" } else { "unavailable" },
            "timestamp": time(Some(report.checked_at)),
        })
    } else {
        json!({
        "status": if report.healthy { "ok" } else { "unavailable" },
        "timestamp": time(Some(report.checked_at)),
        "users": report.users,
        "dataFile": storage.location,
        "lastReload": time(storage.last_reload),
        "lastWrite": time(storage.last_write),
        "corrupt": storage.corrupt,
        "writeError": storage.write_error,
        "durabilityWarning": storage.durability_warning,
        "readError": report.read_error,
        })
    };
    let status = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
