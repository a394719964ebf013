//! Response body types: the one body type every answer has, the channel a Python thread (or a
//! file reader) streams chunks into, and a body handed over whole.
//!
//! It knows nothing of who produces the bytes; the access log's counting wrapper is the
//! server's (`server/body.rs`).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

/// One chunk of a streamed body, or the error that ended it.
pub(crate) type Chunk = Result<Bytes, std::io::Error>;

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
