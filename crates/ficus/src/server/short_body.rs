//! A response that declares a Content-Length and ends short of it, sent as gunicorn sends it:
//! the head and the bytes the application produced, then the connection closed, so the client
//! sees a short body rather than no answer, and one log line names the route.
//!
//! hyper will not end such a body: it drops the connection with whatever it had not written yet
//! (often everything, head included). So at the short end this body first yields once, which
//! lets hyper flush what it holds, and then fails, which makes hyper close. It changes no byte.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::body::Body;

pub(crate) struct Declared {
    inner: Body,
    declared: u64,
    sent: u64,
    /// What the log line names: the routes.toml path, or the request path.
    route: String,
    end: End,
}

#[derive(PartialEq)]
enum End {
    Sending,
    /// Short: hyper is given a turn to flush before the body fails.
    Flushing,
    Failed,
}

impl Declared {
    pub(crate) fn wrap(inner: Body, declared: u64, route: String) -> Body {
        Self {
            inner,
            declared,
            sent: 0,
            route,
            end: End::Sending,
        }
        .boxed_unsync()
    }
}

impl HttpBody for Declared {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.end {
            End::Sending => {}
            End::Flushing => {
                self.end = End::Failed;
                let message = format!(
                    "the response ended {} bytes short of its Content-Length",
                    self.declared - self.sent
                );
                return Poll::Ready(Some(Err(std::io::Error::other(message))));
            }
            End::Failed => return Poll::Ready(None),
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) if self.sent < self.declared => {
                tracing::warn!(
                    "{}: the application declared Content-Length {} and sent {} bytes; the client got those, and the connection was closed",
                    self.route,
                    self.declared,
                    self.sent
                );
                self.end = End::Flushing;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.end == End::Failed || (self.sent >= self.declared && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // An exact hint other than the declared length would make hyper frame it its own way.
        let hint = self.inner.size_hint();
        if hint.exact() == Some(self.declared) {
            hint
        } else {
            SizeHint::default()
        }
    }
}

/// The Content-Length a response declares, when its body is one that must carry it (not an
/// answer to HEAD, nor a 1xx, 204 or 304).
pub(crate) fn declared_length(head_request: bool, response: &http::Response<Body>) -> Option<u64> {
    let status = response.status();
    if head_request
        || status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED
    {
        return None;
    }
    response
        .headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
