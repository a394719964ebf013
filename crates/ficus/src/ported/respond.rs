//! Responses in Django's shapes: `JsonResponse` writes the bytes Django's `JsonResponse` writes,
//! `never_cache` adds what Django's `@never_cache` adds.
//!
//! Only the view's own part of a response is built here; the middleware's part (security
//! headers, Content-Length) is added by `conventions` for every handler.

use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use serde::Serialize;

use super::pyjson;
use super::python::ServerError;

/// `JsonResponse(data)`: Python's `json.dumps` bytes, `Content-Type: application/json`.
/// Pair it with a status as axum does:
/// `(StatusCode::NOT_FOUND, JsonResponse(json!({"error": "not found"})))`.
pub struct JsonResponse<T>(pub T);

impl<T: Serialize> IntoResponse for JsonResponse<T> {
    fn into_response(self) -> Response {
        match pyjson::to_vec(&self.0) {
            Ok(bytes) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                bytes,
            )
                .into_response(),
            Err(err) => {
                tracing::error!("cannot serialise a JSON response: {err}");
                ServerError::response()
            }
        }
    }
}

/// Django's `add_never_cache_headers`: `Expires` now, and a Cache-Control that forbids caching.
pub fn never_cache(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::EXPIRES)
        && let Ok(now) =
            HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now()))
    {
        headers.insert(header::EXPIRES, now);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=0, no-cache, no-store, must-revalidate, private"),
    );
    response
}
