//! What happens to one request: the head guard's verdict, proxy headers, static files, a Rust
//! handler when routes.toml ports the route, else the body limit and the WSGI application on the
//! Python pool, with back-pressure (503) and a deadline for the application to start answering
//! (504).
//!
//! It runs on tokio and never attaches to Python; the Python side is reached only through the
//! pool's queue.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::access_log::{AccessLog, Entry};
use super::body::{Body, ChannelBody, Logged};
use super::errors::page;
use super::guard::Verdicts;
use super::header_case::HeaderCase;
use super::proxy::ForwardedPolicy;
use crate::ported::Dispatcher;
use crate::python::pool::{PoolError, PythonPool};
use crate::routes::pattern::decode_path;
use crate::routes::{LiveRoutes, RouteTable};
use crate::shadow::{Run, Shadow};
use crate::static_files::StaticFiles;
use crate::wsgi::{BodySource, Reply, ResponseHead, WsgiApp, WsgiRequest};

/// Chunks a streamed response may have in flight between Python and the socket.
const BODY_CHANNEL_CHUNKS: usize = 16;

/// What every connection shares.
pub struct Shared {
    pub routes: Arc<LiveRoutes>,
    /// The Rust handlers; None when they cannot run (not a Django project, unsupported database).
    pub ported: Option<Arc<Dispatcher>>,
    /// Shadow runs of the Rust handlers beside Django (present whenever `ported` is).
    pub shadow: Option<Arc<Shadow>>,
    pub pool: Arc<PythonPool>,
    pub wsgi: Arc<WsgiApp>,
    pub static_files: Option<StaticFiles>,
    pub forwarded: ForwardedPolicy,
    pub access_log: Option<Arc<AccessLog>>,
    pub header_case: HeaderCase,
    pub timeout: Duration,
    pub max_body_size: u64,
}

/// What a request knows of its connection.
pub struct Connection {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub verdicts: Verdicts,
}

pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let client = shared.forwarded.client(conn.peer, req.headers());
    let entry = shared.access_log.as_ref().map(|_| {
        Entry::new(
            client.ip(),
            req.method(),
            req.uri(),
            req.version(),
            req.headers(),
        )
    });
    let is_http1 = req.version() < http::Version::HTTP_2;
    let mut response = respond(&shared, &conn, client, req).await;
    if is_http1 {
        preserve_case(&shared.header_case, &mut response).await;
    }
    if let (Some(log), Some(mut entry)) = (&shared.access_log, entry) {
        entry.status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        response = Response::from_parts(parts, Logged::wrap(body, entry, log.clone()));
    }
    Ok(response)
}

async fn respond(
    shared: &Shared,
    conn: &Connection,
    client: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    if let Some(rejection) = conn.verdicts.pop() {
        return page(rejection.status(), &rejection.reason(), true);
    }
    if let Some(files) = &shared.static_files
        && let Some(response) = files
            .serve(req.method(), req.uri().path(), req.headers())
            .await
    {
        return response;
    }
    // The route table decides who answers: read it, and decode the path, once per request.
    let table = shared.routes.table();
    let path = (!table.routes.is_empty()).then(|| decode_path(req.uri().path()));
    let req = match serve_ported(shared, conn, &table, path.as_deref(), req).await {
        Ok(response) => return response,
        Err(req) => req,
    };
    let shadow = start_shadow(shared, conn, &table, path.as_deref(), &req);
    let response = serve_django(shared, conn, client, req).await;
    match shadow {
        Some(run) => run.observe(response),
        None => response,
    }
}

/// Starts the Rust side of a shadow route for this request, when it has one. Requests with a
/// body are not shadowed yet.
fn start_shadow(
    shared: &Shared,
    conn: &Connection,
    table: &RouteTable,
    path: Option<&str>,
    req: &Request<Incoming>,
) -> Option<Run> {
    let shadow = shared.shadow.as_ref()?;
    if !req.body().is_end_stream() {
        return None;
    }
    let matched = table.shadowed(req.method().as_str(), path?)?;
    let secure = admitted(shared, conn, req)?;
    shadow.start(matched, &request_parts(req), secure)
}

/// Whether Django would let this request reach a view (see `Conventions::admits`), and so a
/// Rust handler may see it; Some(whether it came over https) when it would.
fn admitted<B>(shared: &Shared, conn: &Connection, req: &Request<B>) -> Option<bool> {
    let ported = shared.ported.as_ref()?;
    let secure = shared.forwarded.scheme(conn.peer, req.headers()) == "https";
    let authority = req.uri().authority().map(|a| a.as_str());
    ported
        .conventions()
        .admits(req.headers(), authority, secure)
        .then_some(secure)
}

/// The request line and headers, without the body.
fn request_parts(req: &Request<Incoming>) -> http::request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy.into_parts().0
}

/// Everything Django answers: the body limit, chunked bodies collected, the WSGI application.
async fn serve_django(
    shared: &Shared,
    conn: &Connection,
    client: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, incoming) = req.into_parts();
    let url_scheme = shared.forwarded.scheme(conn.peer, &parts.headers);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (content_length, body) = match declared {
        Some(length) if length > shared.max_body_size => {
            return page(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("Request body is larger than {} bytes", shared.max_body_size),
                true,
            );
        }
        Some(0) => (Some(0), BodySource::Empty),
        Some(length) => (Some(length), BodySource::Stream(incoming)),
        None if incoming.is_end_stream() => (None, BodySource::Empty),
        // Chunked (or HTTP/2 without a length): Django reads only CONTENT_LENGTH bytes, so the
        // body is collected first and given one.
        None => match buffer_body(incoming, shared.max_body_size, shared.timeout).await {
            Ok(bytes) => (Some(bytes.len() as u64), BodySource::Buffered(bytes)),
            Err(response) => return response,
        },
    };

    let request = WsgiRequest {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        client,
        local: conn.local,
        url_scheme,
        content_length,
        body,
    };
    call_application(shared, request).await
}

/// Gives the request to its Rust handler when routes.toml ports it and Django would let it reach
/// the view; otherwise hands it back for Django.
async fn serve_ported(
    shared: &Shared,
    conn: &Connection,
    table: &RouteTable,
    path: Option<&str>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Request<Incoming>> {
    let (Some(ported), Some(path)) = (&shared.ported, path) else {
        return Err(req);
    };
    let Some(matched) = table.resolve(req.method().as_str(), path) else {
        return Err(req);
    };
    let Some(secure) = admitted(shared, conn, &req) else {
        return Err(req);
    };
    let limit = usize::try_from(shared.max_body_size).unwrap_or(usize::MAX);
    let req = req.map(|body| http_body_util::Limited::new(body, limit));
    let mut response = ported
        .dispatch(&matched.route.handler, matched.params, req, secure)
        .await;
    response
        .headers_mut()
        .entry(header::SERVER)
        .or_insert(HeaderValue::from_static("ficus"));
    Ok(response)
}

async fn call_application(shared: &Shared, request: WsgiRequest) -> Response<Body> {
    let (head_tx, head_rx) = tokio::sync::oneshot::channel();
    let (body_tx, body_rx) = tokio::sync::mpsc::channel(BODY_CHANNEL_CHUNKS);
    let wsgi = shared.wsgi.clone();
    let reply = Reply {
        head: head_tx,
        body: body_tx,
    };
    let submitted = shared
        .pool
        .submit(Box::new(move |py| wsgi.handle(py, request, reply)));
    match submitted {
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
    match tokio::time::timeout(shared.timeout, head_rx).await {
        Err(_) => page(
            StatusCode::GATEWAY_TIMEOUT,
            "The application did not answer in time.",
            true,
        ),
        Ok(Ok(Ok(head))) => build_response(head, body_rx),
        Ok(_) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The application failed; the error is in the server log.",
            false,
        ),
    }
}

async fn buffer_body(
    mut incoming: Incoming,
    limit: u64,
    timeout: Duration,
) -> Result<Bytes, Response<Body>> {
    let mut collected = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(timeout, incoming.frame()).await {
            Err(_) => {
                return Err(page(
                    StatusCode::REQUEST_TIMEOUT,
                    "The request body did not arrive in time.",
                    true,
                ));
            }
            Ok(None) => return Ok(collected.freeze()),
            Ok(Some(Err(err))) => {
                return Err(page(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid request body: {err}"),
                    true,
                ));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if collected.len() as u64 + data.len() as u64 > limit {
                return Err(page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("Request body is larger than {limit} bytes"),
                    true,
                ));
            }
            collected.extend_from_slice(&data);
        }
    }
}

fn build_response(
    head: ResponseHead,
    body: tokio::sync::mpsc::Receiver<crate::wsgi::Chunk>,
) -> Response<Body> {
    let mut response = Response::new(ChannelBody(body).boxed_unsync());
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

/// Remembers the application's header-name case for hyper's HTTP/1 writer.
async fn preserve_case(cache: &HeaderCase, response: &mut Response<Body>) {
    // The original spelling travels in a private list kept next to the headers.
    let names = match response.extensions_mut().remove::<OriginalNames>() {
        Some(original) => original.0,
        None => response
            .headers()
            .keys()
            .map(|k| title_case(k.as_str()))
            .collect(),
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    if let Some(mut extensions) = cache.extensions_for(&refs).await {
        if let Some(reason) = response
            .extensions_mut()
            .remove::<hyper::ext::ReasonPhrase>()
        {
            extensions.insert(reason);
        }
        *response.extensions_mut() = extensions;
    }
}

/// The header names in the case the application wrote them, in response order.
#[derive(Clone)]
pub struct OriginalNames(pub Vec<String>);

fn title_case(name: &str) -> String {
    match name {
        "etag" => return "ETag".to_owned(),
        "www-authenticate" => return "WWW-Authenticate".to_owned(),
        _ => {}
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c };
            upper = c == '-';
            out
        })
        .collect()
}
