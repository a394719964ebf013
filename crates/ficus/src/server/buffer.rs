//! Reading a request body on tokio before anyone answers: whole, within the body limit and the
//! deadline (408 for a trickle, 413 beyond the limit), without a copy when it arrives in one frame.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::errors::page;
use super::guard::Verdicts;
use super::shared::{Connection, Shared};
use crate::body::Body;
use crate::shadow::COPY_CAP;

pub(super) fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Collects a request body of at most `limit` bytes, which must arrive whole within `deadline`
/// (408 otherwise, so a trickling client is cut off). A body that arrives in one frame is kept
/// as it is, without a copy.
pub(super) async fn buffer_body(
    mut incoming: Incoming,
    limit: u64,
    deadline: Duration,
    verdicts: &Verdicts,
) -> Result<Bytes, Response<Body>> {
    let deadline = tokio::time::Instant::now() + deadline;
    let mut first: Option<Bytes> = None;
    let mut collected = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, incoming.frame()).await {
            Err(_) => {
                return Err(page(
                    StatusCode::REQUEST_TIMEOUT,
                    "The request body did not arrive in time.",
                    true,
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                // What the guard refused in the body, in its words; else hyper's, whose source
                // says what was wrong.
                let reason = match verdicts.body_fault() {
                    Some(fault) => fault.reason(),
                    None => match std::error::Error::source(&err) {
                        Some(source) => format!("Invalid request body ({err}): {source}"),
                        None => format!("Invalid request body ({err})"),
                    },
                };
                return Err(page(StatusCode::BAD_REQUEST, &reason, true));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let held = first.as_ref().map_or(0, Bytes::len) + collected.len();
        if held as u64 + data.len() as u64 > limit {
            return Err(page(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("Request body is larger than {limit} bytes"),
                true,
            ));
        }
        match first.take() {
            None if collected.is_empty() => first = Some(data),
            earlier => {
                if let Some(earlier) = earlier {
                    collected.extend_from_slice(&earlier);
                }
                collected.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| collected.freeze()))
}

/// A request whose body is either still on the socket, or read whole (to give it to two sides,
/// or to record it).
pub(super) enum Pending {
    Streaming(Request<Incoming>),
    Read(http::request::Parts, Bytes),
}

/// Whether the body is small enough to be read whole before anyone answers: empty, or with a
/// declared length within the copy cap (chunked bodies of unknown length are not).
pub(super) fn copyable<B: http_body::Body>(shared: &Shared, req: &Request<B>) -> bool {
    if req.body().is_end_stream() {
        return true;
    }
    declared_length(req.headers())
        .is_some_and(|length| length <= COPY_CAP as u64 && length <= shared.max_body_size)
}

pub(super) async fn read_whole(
    shared: &Shared,
    conn: &Connection,
    req: Request<Incoming>,
) -> Result<Pending, Response<Body>> {
    let (parts, incoming) = req.into_parts();
    let body = if incoming.is_end_stream() {
        Bytes::new()
    } else {
        buffer_body(
            incoming,
            shared.max_body_size,
            shared.timeout,
            &conn.verdicts,
        )
        .await?
    };
    Ok(Pending::Read(parts, body))
}
