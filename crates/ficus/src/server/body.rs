//! The wrapper that counts the bytes of a response for the access log and writes the log line
//! when hyper is done with the body (sent whole, or the client gone).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use super::access_log::{AccessLog, Entry};
use crate::body::Body;

/// Counts the bytes sent and logs the request when hyper drops the body (done or aborted).
pub(crate) struct Logged {
    inner: Body,
    sent: u64,
    entry: Option<(Entry, std::sync::Arc<AccessLog>)>,
}

impl Logged {
    pub(crate) fn wrap(inner: Body, entry: Entry, log: std::sync::Arc<AccessLog>) -> Body {
        Self {
            inner,
            sent: 0,
            entry: Some((entry, log)),
        }
        .boxed_unsync()
    }
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sent += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some((entry, log)) = self.entry.take() {
            log.write(&entry, self.sent);
        }
    }
}
