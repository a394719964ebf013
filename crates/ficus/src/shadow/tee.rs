//! A response body that passes every frame to the client unchanged and keeps a copy, up to a
//! cap, for the shadow comparison.
//!
//! It never delays or alters what the client gets; when the body ends it hands the copy over
//! (nothing when the cap was passed, the body failed or the client left early).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::oneshot;

use crate::body::Body;

pub(super) struct Tee {
    inner: Body,
    copy: BytesMut,
    cap: usize,
    overflowed: bool,
    /// The response's Content-Length: hyper stops polling once it has sent that many bytes,
    /// so reaching it is how a complete body is recognised.
    expected: Option<u64>,
    received: u64,
    done: Option<oneshot::Sender<Option<Bytes>>>,
}

impl Tee {
    pub(super) fn new(
        inner: Body,
        cap: usize,
        expected: Option<u64>,
    ) -> (Self, oneshot::Receiver<Option<Bytes>>) {
        let (done, copied) = oneshot::channel();
        let tee = Self {
            inner,
            copy: BytesMut::new(),
            cap,
            overflowed: false,
            expected,
            received: 0,
            done: Some(done),
        };
        (tee, copied)
    }

    fn finish(&mut self, complete: bool) {
        if let Some(done) = self.done.take() {
            let copy =
                (complete && !self.overflowed).then(|| std::mem::take(&mut self.copy).freeze());
            let _ = done.send(copy);
        }
    }
}

impl HttpBody for Tee {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                    if self.copy.len() + data.len() > self.cap {
                        self.overflowed = true;
                        self.copy = BytesMut::new();
                    } else if !self.overflowed {
                        self.copy.extend_from_slice(data);
                    }
                }
            }
            Poll::Ready(None) => self.finish(true),
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Pending => {}
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

impl Drop for Tee {
    fn drop(&mut self) {
        // hyper drops a body it has sent Content-Length bytes of without a final poll; anything
        // else unfinished was cut short.
        let complete =
            self.inner.is_end_stream() || self.expected.is_some_and(|n| n == self.received);
        self.finish(complete);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_client_gets_every_byte_and_the_copy_matches() {
        let (tee, copied) = Tee::new(full("hello"), 16, None);
        let sent = tee.collect().await.unwrap().to_bytes();
        assert_eq!(sent, "hello");
        assert_eq!(copied.await.unwrap(), Some(Bytes::from("hello")));
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_sent_but_not_copied() {
        let (tee, copied) = Tee::new(full("hello world"), 5, None);
        assert_eq!(tee.collect().await.unwrap().to_bytes(), "hello world");
        assert_eq!(copied.await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_body_dropped_unread_gives_no_copy() {
        let (tee, copied) = Tee::new(full("hello"), 16, Some(5));
        drop(tee);
        assert_eq!(copied.await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_body_dropped_after_its_content_length_is_complete() {
        let (mut tee, copied) = Tee::new(full("hello"), 16, Some(5));
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut tee).poll_frame(cx)).await;
        assert!(frame.is_some());
        drop(tee);
        assert_eq!(copied.await.unwrap(), Some(Bytes::from("hello")));
    }
}
