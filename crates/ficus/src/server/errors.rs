//! The answers ficus gives itself, before or instead of the application: small HTML pages in
//! gunicorn's shape, so clients and monitors see what they saw before.

use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{Body, full};

/// An error page; `close` also ends the connection (after a malformed request, the rest of the
/// stream cannot be trusted).
pub(super) fn page(status: StatusCode, detail: &str, close: bool) -> Response<Body> {
    let title = status.canonical_reason().unwrap_or("Error");
    let html = format!(
        "<html>\n  <head>\n    <title>{title}</title>\n  </head>\n  <body>\n    <h1><p>{title}</p></h1>\n    {}\n  </body>\n</html>\n",
        escape(detail)
    );
    let mut response = Response::new(full(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
