//! Views of the `legacy` project package itself.

use ficus::prelude::*;
use serde_json::json;

/// Replaces `legacy.views.healthz` (`GET /healthz`): liveness plus a real round trip to the
/// database, never cached.
pub async fn healthz(State(db): State<Database>) -> Response {
    let reached = db.query("SELECT 1").fetch_scalar::<i32>().await;
    let response = match reached {
        Ok(_) => JsonResponse(json!({"status": "ok", "db": true})).into_response(),
        // The view's own answer for an unreachable database, not a server error.
        Err(err) => {
            tracing::error!("health check could not reach the database: {err}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                JsonResponse(json!({"status": "error", "db": false})),
            )
                .into_response()
        }
    };
    never_cache(response)
}
