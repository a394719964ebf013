//! How a response is framed where gunicorn and hyper differ: no Content-Length on a 1xx or 204
//! (RFC 9110 section 8.6; an application's, or the one Django's CommonMiddleware adds, is
//! dropped), and an HTTP/1.0 response says whether its connection stays (`Connection:
//! keep-alive`, when the client asked and the body has a length) or ends (`close`), as
//! gunicorn's does.
//!
//! It looks at the head only; bodies are hyper's to frame.

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, Version};
use http_body::Body as _;

use crate::body::Body;

/// What framing needs to know of the request, taken before the request is handed on.
pub(super) struct Framing {
    http10: bool,
    /// An HTTP/1.0 client asked to keep the connection (`Connection: keep-alive`).
    keep_alive: bool,
    head: bool,
}

impl Framing {
    pub(super) fn of<B>(req: &Request<B>) -> Self {
        let keep_alive = req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("keep-alive"));
        Self {
            http10: req.version() == Version::HTTP_10,
            keep_alive,
            head: req.method() == Method::HEAD,
        }
    }

    pub(super) fn apply(&self, response: &mut Response<Body>) {
        let status = response.status().as_u16();
        let bodiless = self.head || status < 200 || status == 204 || status == 304;
        if status < 200 || status == 204 {
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
        if !self.http10 {
            return;
        }
        // HTTP/1.0 has no chunked framing: without a length, the end of the body is the end
        // of the connection.
        let length_known = bodiless
            || response.headers().contains_key(header::CONTENT_LENGTH)
            || response.body().size_hint().exact().is_some();
        // hyper keeps an HTTP/1.0 connection open only when a 1.0 response says keep-alive
        // (to a 1.1 response it would add `keep-alive` after our `close`).
        *response.version_mut() = Version::HTTP_10;
        let connection = if self.keep_alive && length_known {
            "keep-alive"
        } else {
            "close"
        };
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static(connection));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{empty, full};

    fn request(version: Version, connection: Option<&str>) -> Request<()> {
        let mut req = Request::builder().version(version);
        if let Some(value) = connection {
            req = req.header(header::CONNECTION, value);
        }
        req.body(()).unwrap()
    }

    fn response(status: u16, length: Option<&str>) -> Response<Body> {
        let mut response = Response::new(empty());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        if let Some(length) = length {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, length.parse().unwrap());
        }
        response
    }

    #[test]
    fn a_204_loses_its_content_length_and_a_304_keeps_the_applications() {
        let framing = Framing::of(&request(Version::HTTP_11, None));
        let mut no_content = response(204, Some("0"));
        framing.apply(&mut no_content);
        assert!(!no_content.headers().contains_key(header::CONTENT_LENGTH));
        let mut not_modified = response(304, Some("512"));
        framing.apply(&mut not_modified);
        assert_eq!(not_modified.headers()[header::CONTENT_LENGTH], "512");
        assert!(!not_modified.headers().contains_key(header::CONNECTION));
    }

    #[test]
    fn http10_says_close_unless_kept_alive_with_a_known_length() {
        let mut plain = response(200, Some("2"));
        Framing::of(&request(Version::HTTP_10, None)).apply(&mut plain);
        assert_eq!(plain.headers()[header::CONNECTION], "close");

        let kept = Framing::of(&request(Version::HTTP_10, Some("Keep-Alive")));
        let mut known = response(200, Some("2"));
        kept.apply(&mut known);
        assert_eq!(known.headers()[header::CONNECTION], "keep-alive");
        let mut sized = Response::new(full("ok"));
        kept.apply(&mut sized);
        assert_eq!(sized.headers()[header::CONNECTION], "keep-alive");
        // A body whose size is not announced, as a WSGI response without Content-Length.
        let unsized_body = crate::body::OneChunk(Some(bytes::Bytes::from_static(b"ok")));
        let mut streamed = Response::new(http_body_util::BodyExt::boxed_unsync(unsized_body));
        kept.apply(&mut streamed);
        assert_eq!(streamed.headers()[header::CONNECTION], "close");
    }
}
