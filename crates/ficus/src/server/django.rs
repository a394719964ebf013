//! Everything Django answers: the request as the WSGI bridge wants it (body limit, a chunked
//! body collected and given a length), the call on the Python pool with back-pressure (503) and
//! a deadline for the head (504), and the application's head made into hyper's response.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt;

use super::buffer::Pending;
use super::buffer::{buffer_body, declared_length};
use super::errors::page;
use super::guard::RawTarget;
use super::header_case::OriginalNames;
use super::proxy::Client;
use super::shared::{Connection, Shared};
use crate::body::{Body, ChannelBody, OneChunk};
use crate::python::pool::PoolError;
use crate::shadow::{COPY_CAP, answer as shadow_answer};
use crate::wsgi::{BodySource, ResponseHead, WsgiRequest};
use ficus_parity::Answer;

/// Django's whole answer to a request (for the noise check), or None when it fails or is too
/// large to compare.
pub(super) async fn django_answer(shared: &Shared, request: WsgiRequest) -> Option<Answer> {
    let response = call_application(shared, request).await;
    let (parts, body) = response.into_parts();
    let body = http_body_util::Limited::new(body, COPY_CAP)
        .collect()
        .await
        .ok()?
        .to_bytes();
    Some(shadow_answer(parts.status, &parts.headers, body))
}

/// A whole request for the WSGI application.
pub(super) fn wsgi_request(
    shared: &Shared,
    conn: &Connection,
    client: Client,
    parts: http::request::Parts,
    body: Bytes,
) -> WsgiRequest {
    let length = body.len() as u64;
    let source = if body.is_empty() {
        BodySource::Empty
    } else {
        BodySource::Buffered(body)
    };
    let declared = declared_length(&parts.headers).map(|_| length);
    let content_length = if length > 0 { Some(length) } else { declared };
    build_wsgi_request(shared, conn, client, parts, content_length, source)
}

pub(super) fn build_wsgi_request(
    shared: &Shared,
    conn: &Connection,
    client: Client,
    parts: http::request::Parts,
    content_length: Option<u64>,
    body: BodySource,
) -> WsgiRequest {
    // A contradiction was refused before the request got this far.
    let url_scheme = conn
        .scheme(&shared.forwarded, &parts.headers)
        .unwrap_or("http");
    let raw_target = parts.extensions.get::<RawTarget>().map(|raw| raw.0.clone());
    WsgiRequest {
        method: parts.method,
        uri: parts.uri,
        raw_target,
        version: parts.version,
        headers: parts.headers,
        client,
        local: conn.local.clone(),
        url_scheme,
        content_length,
        body,
    }
}

/// Everything Django answers: the body limit, chunked bodies collected, the WSGI application.
pub(super) async fn serve_django(
    shared: &Shared,
    conn: &Connection,
    client: Client,
    pending: Pending,
) -> Response<Body> {
    let req = match pending {
        Pending::Read(parts, body) => {
            let request = wsgi_request(shared, conn, client, parts, body);
            return call_application(shared, request).await;
        }
        Pending::Streaming(req) => req,
    };
    let (parts, incoming) = req.into_parts();
    let (content_length, body) = match declared_length(&parts.headers) {
        Some(length) if length > shared.max_body_size => {
            return page(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("Request body is larger than {} bytes", shared.max_body_size),
                true,
            );
        }
        Some(0) => (Some(0), BodySource::Empty),
        // Read ahead on tokio, so a client trickling its body holds a connection but never a
        // Python thread; only uploads too large to hold reach the application as a stream.
        Some(length) if length <= COPY_CAP as u64 => {
            match buffer_body(incoming, length, shared.timeout, &conn.verdicts).await {
                Ok(bytes) => (Some(bytes.len() as u64), BodySource::Buffered(bytes)),
                Err(response) => return response,
            }
        }
        Some(length) => (Some(length), BodySource::Stream(incoming)),
        None if incoming.is_end_stream() => (None, BodySource::Empty),
        // Chunked (or HTTP/2 without a length): Django reads only CONTENT_LENGTH bytes, so the
        // body is collected first and given one.
        None => match buffer_body(
            incoming,
            shared.max_body_size,
            shared.timeout,
            &conn.verdicts,
        )
        .await
        {
            Ok(bytes) => (Some(bytes.len() as u64), BodySource::Buffered(bytes)),
            Err(response) => return response,
        },
    };
    let request = build_wsgi_request(shared, conn, client, parts, content_length, body);
    call_application(shared, request).await
}

/// The application answers on the Python pool: 503 when every thread is busy and the queue is
/// full, 504 when its head does not come within `--timeout`.
pub(super) async fn call_application(shared: &Shared, request: WsgiRequest) -> Response<Body> {
    let (call, answering) = shared.wsgi.prepare(request);
    match shared.pool.submit(Box::new(call)) {
        Ok(()) => {}
        Err(PoolError::Full) => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Every worker thread is busy; try again shortly.",
                false,
            );
        }
        Err(err) => return page(StatusCode::SERVICE_UNAVAILABLE, &err.to_string(), true),
    }
    match tokio::time::timeout(shared.timeout, answering.head).await {
        Err(_) => page(
            StatusCode::GATEWAY_TIMEOUT,
            "The application did not answer in time.",
            true,
        ),
        Ok(Ok(Ok(head))) => build_response(head, answering.body),
        Ok(_) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The application failed; the error is in the server log.",
            false,
        ),
    }
}

/// The application's head (status, reason, headers in its order and case) as hyper's response,
/// with the body that follows it.
fn build_response(
    mut head: ResponseHead,
    body: tokio::sync::mpsc::Receiver<crate::wsgi::Chunk>,
) -> Response<Body> {
    let body = match head.body.take() {
        Some(whole) => OneChunk(Some(whole)).boxed_unsync(),
        None => ChannelBody(body).boxed_unsync(),
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::OK);
    let canonical = response.status().canonical_reason().unwrap_or("");
    if !head.reason.is_empty()
        && head.reason != canonical
        && let Ok(reason) = hyper::ext::ReasonPhrase::try_from(head.reason.into_bytes())
    {
        response.extensions_mut().insert(reason);
    }
    let mut original = Vec::with_capacity(head.headers.len() + 1);
    let headers = response.headers_mut();
    for (written, value) in head.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(written.as_bytes()),
            HeaderValue::from_maybe_shared(value),
        ) else {
            continue;
        };
        // Framing is hyper's job; an application's Transfer-Encoding would be sent twice.
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        headers.append(name, value);
        original.push(written);
    }
    if !headers.contains_key(header::SERVER) {
        headers.insert(header::SERVER, HeaderValue::from_static("ficus"));
        original.push("Server".to_owned());
    }
    response.extensions_mut().insert(OriginalNames(original));
    response
}
