//! Views of the `legacy` project package itself.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::db::Database;
use crate::on_db;
use crate::ported::respond::{Json, never_cache};

/// Replaces `legacy.views.healthz` (`GET /healthz`): liveness plus a real round trip to the
/// database, never cached.
pub async fn healthz(State(db): State<Database>) -> Response {
    let reached = on_db!(&db, |pool| {
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(pool)
            .await
    });
    let response = match reached {
        Ok(_) => Json(json!({"status": "ok", "db": true})).into_response(),
        Err(err) => {
            tracing::error!("health check could not reach the database: {err}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "error", "db": false})),
            )
                .into_response()
        }
    };
    never_cache(response)
}
