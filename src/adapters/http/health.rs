//! `GET /health`: 200 while the store can be read and written, 503 otherwise. A
//! durability warning (the last change is in place but its folder's fsync failed) is
//! shown without making the answer 503.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::domain::timestamp_text;

pub async fn health(State(state): State<AppState>) -> Response {
    let report = state.services.check_health.execute().await;
    let storage = &report.storage;
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| at.map(timestamp_text);
    let body = json!({
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
    });
    let status = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
