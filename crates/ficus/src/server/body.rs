//! Response body types: the channel a Python thread streams WSGI chunks into, a body handed over
//! whole, and the wrapper that counts bytes for the access log and writes the log line when the
//! response is done.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use super::access_log::{AccessLog, Entry};
use crate::wsgi::Chunk;

/// Every response ficus sends has this body type.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn empty() -> Body {
    full(Bytes::new())
}

/// Chunks sent by a Python thread (or a file reader). Dropping it tells the sender the client
/// is gone, which stops the WSGI iteration.
pub(crate) struct ChannelBody(pub tokio::sync::mpsc::Receiver<Chunk>);

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(Frame::data)))
    }
}

/// A whole body handed over at once. Its size is not announced, so hyper frames it exactly as
/// it frames a streamed one: by the application's Content-Length, else chunked.
pub(crate) struct OneChunk(pub Option<Bytes>);

impl HttpBody for OneChunk {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(self.0.take().map(|data| Ok(Frame::data(data))))
    }
}

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
