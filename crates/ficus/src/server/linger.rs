//! Closing a connection the client may still be sending on, as nginx's lingering close does:
//! shut the write side (the client gets the answer and a FIN), then read and discard what keeps
//! coming, for at most `LINGER_TIME` and `LINGER_BYTES`, and only then close. Closing at once
//! with unread bytes makes the kernel answer them with a reset, which can destroy the response
//! before the client reads it (RFC 9112 section 9.6): a client uploading too much would see
//! "connection reset" instead of its 413.
//!
//! It never writes, and never holds a connection longer than its bounds.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// How long a closing connection is read and discarded, at most.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much of it is read, at most, before the connection is closed regardless.
const LINGER_BYTES: usize = 8 * 1024 * 1024;

/// What becomes of a socket when hyper is done with it.
pub(crate) trait Close {
    /// `client_may_send`: the client was in the middle of a request when the connection ended.
    fn close(self, client_may_send: bool);
}

/// In unit tests the guard reads from no socket.
impl Close for () {
    fn close(self, _client_may_send: bool) {}
}

impl Close for TcpStream {
    fn close(self, client_may_send: bool) {
        // Bytes already waiting are unread request bytes whatever the guard thought.
        let mut probe = [0u8; 1];
        let waiting = matches!(self.try_read(&mut probe), Ok(n) if n > 0);
        linger_if(self, client_may_send || waiting);
    }
}

impl Close for UnixStream {
    fn close(self, client_may_send: bool) {
        let mut probe = [0u8; 1];
        let waiting = matches!(self.try_read(&mut probe), Ok(n) if n > 0);
        linger_if(self, client_may_send || waiting);
    }
}

fn linger_if<S>(stream: S, needed: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if !needed {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(linger(stream));
    }
}

async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let _ = stream.shutdown().await;
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut discarded = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while discarded < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => break,
        }
    }
}
