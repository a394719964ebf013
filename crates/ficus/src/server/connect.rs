//! CONNECT answered as gunicorn answers it: the application's response, body included, and then
//! the connection closed. ficus is no proxy and never opens a tunnel.
//!
//! hyper sends a 2xx answer to CONNECT without a length or a body and then hands the connection
//! over (RFC 9110 section 9.3.6: the tunnel starts there), so for such an answer the body is
//! written on the handed-over connection, which is then shut. Any other answer goes out as
//! usual, with `Connection: close`. It must not read from the connection: after a CONNECT the
//! client's bytes are tunnel data, never another request.

use http::{HeaderValue, Response, header};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::body::{Body, empty};

/// The answer to a CONNECT, and the task that writes a 2xx answer's body after hyper's head.
pub(super) fn answer(upgrade: OnUpgrade, response: Response<Body>) -> Response<Body> {
    let (mut parts, mut body) = response.into_parts();
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    if !parts.status.is_success() {
        return Response::from_parts(parts, body);
    }
    // hyper refuses to send a length on a 2xx to CONNECT; the body ends with the connection.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data()
                && io.write_all(&data).await.is_err()
            {
                return;
            }
        }
        // The access log line is written when the body goes: before the client sees the end.
        drop(body);
        let _ = io.shutdown().await;
    });
    Response::from_parts(parts, empty())
}
