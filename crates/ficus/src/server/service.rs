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
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::access_log::{AccessLog, Entry};
use super::body::Logged;
use super::errors::page;
use super::guard::Verdicts;
use super::header_case::HeaderCase;
use super::proxy::ForwardedPolicy;
use crate::admin::{self, Admin};
use crate::body::{Body, ChannelBody, OneChunk};
use crate::canary;
use crate::metrics::{Backend, Metrics, UNLISTED};
use crate::ported::Dispatcher;
use crate::python::pool::{PoolError, PythonPool};
use crate::record::Recorder;
use crate::routes::pattern::decode_path;
use crate::routes::{LiveRoutes, Matched, Mode, SAFE_METHODS};
use crate::shadow::{COPY_CAP, DjangoAgain, Shadow, answer as shadow_answer};
use crate::static_files::StaticFiles;
use crate::wsgi::{BodySource, Reply, ResponseHead, WsgiApp, WsgiRequest};
use ficus_parity::Answer;

/// Chunks a streamed response may have in flight between Python and the socket.
const BODY_CHANNEL_CHUNKS: usize = 16;

/// What every connection shares.
pub(crate) struct Shared {
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
    pub metrics: Arc<Metrics>,
    /// `record = ...` sampling (the file is created at the first recorded request).
    pub recorder: Recorder,
    /// `/metrics` and the `/_ficus/` dashboard.
    pub admin: Arc<Admin>,
    /// `--max-requests` in a worker: drain and exit after so many, for a fresh one.
    pub recycle: Option<Recycle>,
}

/// Counts a worker's requests and starts its drain at its limit (`--max-requests`, plus up to
/// `--max-requests-jitter`); the supervisor starts a fresh worker when it exits.
pub(crate) struct Recycle {
    limit: u64,
    served: std::sync::atomic::AtomicU64,
    stop: Arc<tokio::sync::watch::Sender<Option<super::Stop>>>,
}

impl Recycle {
    pub(crate) fn new(
        max: u64,
        jitter: u64,
        stop: Arc<tokio::sync::watch::Sender<Option<super::Stop>>>,
    ) -> Self {
        use std::hash::BuildHasher;
        let extra = match jitter {
            0 => 0,
            j => std::hash::RandomState::new().hash_one(std::process::id()) % (j + 1),
        };
        Self {
            limit: max + extra,
            served: Default::default(),
            stop,
        }
    }

    fn count(&self) {
        if self.served.fetch_add(1, Ordering::Relaxed) + 1 == self.limit {
            tracing::info!(
                "Served {} requests (--max-requests): finishing in-flight requests, then a fresh worker takes over",
                self.limit
            );
            let _ = self.stop.send(Some(super::Stop::Drain));
        }
    }
}

/// What a request knows of its connection.
pub(crate) struct Connection {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub verdicts: Verdicts,
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let in_flight = shared.metrics.in_flight();
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
    let (mut response, served) = respond(&shared, &conn, client, req).await;
    shared.metrics.record(
        served.route.as_deref().unwrap_or(UNLISTED),
        served.backend,
        response.status().as_u16(),
        started.elapsed(),
    );
    drop(in_flight);
    if let Some(recycle) = &shared.recycle {
        recycle.count();
    }
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

/// Who answered a request, for the metrics.
struct Served {
    /// The routes.toml path of the entry the request matched, if any.
    route: Option<String>,
    backend: Backend,
}

impl Served {
    fn ficus() -> Self {
        Served {
            route: None,
            backend: Backend::Ficus,
        }
    }
}

/// How a request matched by routes.toml is served this time.
enum Plan {
    Rust,
    Canary,
    Shadow,
    Django,
}

/// A request whose body is either still on the socket, or read whole (to give it to two sides,
/// or to record it).
enum Pending {
    Streaming(Request<Incoming>),
    Read(http::request::Parts, Bytes),
}

async fn respond(
    shared: &Arc<Shared>,
    conn: &Connection,
    client: SocketAddr,
    req: Request<Incoming>,
) -> (Response<Body>, Served) {
    if let Some(rejection) = conn.verdicts.pop() {
        return (
            page(rejection.status(), &rejection.reason(), true),
            Served::ficus(),
        );
    }
    if let Some(response) = admin::serve(&shared.admin, conn.peer, &req).await {
        return (response, Served::ficus());
    }
    if let Some(files) = &shared.static_files
        && let Some(response) = files
            .serve(req.method(), req.uri().path(), req.headers())
            .await
    {
        return (response, Served::ficus());
    }
    // The route table decides who answers: read it, and decode the path, once per request.
    let table = shared.routes.table();
    let path = (!table.routes.is_empty()).then(|| decode_path(req.uri().path()));
    let matched = path
        .as_deref()
        .and_then(|p| table.listed(req.method().as_str(), p));
    let route = matched.as_ref().map(|m| m.route);
    let copyable = copyable(shared, &req);
    let (plan, secure) = plan(shared, conn, client, matched.as_ref(), &req, copyable);
    let record = Some(&shared.recorder)
        .filter(|recorder| recorder.sampled(route.and_then(|r| r.record).unwrap_or(table.record)));
    let needs_body = record.is_some() || matches!(plan, Plan::Canary | Plan::Shadow);
    let pending = if needs_body && copyable {
        match read_whole(shared, req).await {
            Ok(read) => read,
            Err(response) => return (response, Served::ficus()),
        }
    } else {
        Pending::Streaming(req)
    };
    if let (Some(recorder), Pending::Read(parts, body)) = (record, &pending) {
        recorder.write(parts, body, route.map(|r| r.pattern.source()));
    }
    let served = |backend| Served {
        route: route.map(|r| r.pattern.source().to_owned()),
        backend,
    };
    let (Some(matched), Some(secure)) = (matched, secure) else {
        let response = serve_django(shared, conn, client, pending).await;
        return (response, served(Backend::Django));
    };
    match (plan, pending) {
        (Plan::Rust, pending) => {
            let response = serve_rust(shared, &matched, pending, secure).await;
            (response, served(Backend::Rust))
        }
        (Plan::Canary, Pending::Read(parts, body)) => {
            let (response, backend) =
                serve_canary(shared, conn, client, &matched, parts, body, secure).await;
            (response, served(backend))
        }
        (Plan::Shadow, Pending::Read(parts, body)) => {
            let response = serve_shadowed(shared, conn, client, matched, parts, body, secure).await;
            (response, served(Backend::Django))
        }
        (_, pending) => {
            let response = serve_django(shared, conn, client, pending).await;
            (response, served(Backend::Django))
        }
    }
}

/// Decides how a matched request is served, and whether it came over https; a request Django
/// would refuse before any view (see `admitted`) always goes to Django.
fn plan(
    shared: &Shared,
    conn: &Connection,
    client: SocketAddr,
    matched: Option<&Matched<'_>>,
    req: &Request<Incoming>,
    copyable: bool,
) -> (Plan, Option<bool>) {
    let Some(matched) = matched else {
        return (Plan::Django, None);
    };
    let route = matched.route;
    let method = req.method().as_str();
    let wanted = match route.mode {
        Mode::Rust => Plan::Rust,
        Mode::Canary if canary::serves(route, req.headers(), client.ip()) => Plan::Canary,
        Mode::Shadow
            if route.shadows(method)
                && shared
                    .shadow
                    .as_ref()
                    .is_some_and(|s| s.sampled_for(matched)) =>
        {
            Plan::Shadow
        }
        _ => return (Plan::Django, None),
    };
    let Some(secure) = admitted(shared, conn, req) else {
        return (Plan::Django, None);
    };
    // Canary and shadow need the body twice; a body too large to hold stays with Django.
    if matches!(wanted, Plan::Canary | Plan::Shadow) && !copyable {
        return (Plan::Django, None);
    }
    (wanted, Some(secure))
}

/// Whether the body is small enough to be read whole before anyone answers: empty, or with a
/// declared length within the copy cap (chunked bodies of unknown length are not).
fn copyable<B: http_body::Body>(shared: &Shared, req: &Request<B>) -> bool {
    if req.body().is_end_stream() {
        return true;
    }
    declared_length(req.headers())
        .is_some_and(|length| length <= COPY_CAP as u64 && length <= shared.max_body_size)
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

async fn read_whole(shared: &Shared, req: Request<Incoming>) -> Result<Pending, Response<Body>> {
    let (parts, incoming) = req.into_parts();
    let body = if incoming.is_end_stream() {
        Bytes::new()
    } else {
        buffer_body(incoming, shared.max_body_size, shared.timeout).await?
    };
    Ok(Pending::Read(parts, body))
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
fn copy_parts(parts: &http::request::Parts) -> http::request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = parts.method.clone();
    *copy.uri_mut() = parts.uri.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    copy.into_parts().0
}

/// The route's Rust handler answers.
async fn serve_rust(
    shared: &Shared,
    matched: &Matched<'_>,
    pending: Pending,
    secure: bool,
) -> Response<Body> {
    let Some(ported) = &shared.ported else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Rust handlers are unavailable.",
            true,
        );
    };
    let (handler, params) = (&matched.route.handler, matched.params.clone());
    let mut response = match pending {
        Pending::Streaming(req) => {
            let limit = usize::try_from(shared.max_body_size).unwrap_or(usize::MAX);
            let req = req.map(|body| http_body_util::Limited::new(body, limit));
            ported.dispatch(handler, params, req, secure).await
        }
        Pending::Read(parts, body) => {
            let req = Request::from_parts(parts, Full::new(body));
            ported.dispatch(handler, params, req, secure).await
        }
    };
    response
        .headers_mut()
        .entry(header::SERVER)
        .or_insert(HeaderValue::from_static("ficus"));
    response
}

/// A canary request this client gets from Rust: the Rust answer goes out when it comes within
/// the route's budget with a status the route expects; otherwise Django answers, and the
/// fallback is counted.
async fn serve_canary(
    shared: &Shared,
    conn: &Connection,
    client: SocketAddr,
    matched: &Matched<'_>,
    parts: http::request::Parts,
    body: Bytes,
    secure: bool,
) -> (Response<Body>, Backend) {
    let route = matched.route;
    let figures = shared.metrics.route(route.pattern.source());
    let copy = Pending::Read(copy_parts(&parts), body.clone());
    let attempt = tokio::time::timeout(route.budget, serve_rust(shared, matched, copy, secure));
    let why = match attempt.await {
        Ok(response) if route.expects(response.status().as_u16()) => {
            figures.canary_served.fetch_add(1, Ordering::Relaxed);
            return (response, Backend::Rust);
        }
        Ok(response) => format!("answered {}", response.status().as_u16()),
        Err(_) => format!("took longer than {} ms", route.budget.as_millis()),
    };
    figures.canary_fallbacks.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        "canary: {} {} {} in {}; Django answered instead",
        parts.method,
        parts.uri.path(),
        why,
        route.handler
    );
    let response = serve_django(shared, conn, client, Pending::Read(parts, body)).await;
    (response, Backend::Django)
}

/// Django answers; the Rust handler runs beside it and the two answers are compared later.
async fn serve_shadowed(
    shared: &Arc<Shared>,
    conn: &Connection,
    client: SocketAddr,
    matched: Matched<'_>,
    parts: http::request::Parts,
    body: Bytes,
    secure: bool,
) -> Response<Body> {
    let Some(shadow) = &shared.shadow else {
        return serve_django(shared, conn, client, Pending::Read(parts, body)).await;
    };
    let run = shadow.start(matched, &parts, body.clone(), secure);
    // Only a request that cannot change data may be sent to Django a second time.
    let again: Option<DjangoAgain> = SAFE_METHODS.contains(&parts.method.as_str()).then(|| {
        let request = wsgi_request(shared, conn, client, copy_parts(&parts), body.clone());
        let shared = shared.clone();
        Box::new(move || {
            Box::pin(async move { django_answer(&shared, request).await })
                as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
        }) as DjangoAgain
    });
    let response = serve_django(shared, conn, client, Pending::Read(parts, body)).await;
    run.observe(response, again)
}

/// Django's whole answer to a request (for the noise check), or None when it fails or is too
/// large to compare.
async fn django_answer(shared: &Shared, request: WsgiRequest) -> Option<Answer> {
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
fn wsgi_request(
    shared: &Shared,
    conn: &Connection,
    client: SocketAddr,
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

fn build_wsgi_request(
    shared: &Shared,
    conn: &Connection,
    client: SocketAddr,
    parts: http::request::Parts,
    content_length: Option<u64>,
    body: BodySource,
) -> WsgiRequest {
    let url_scheme = shared.forwarded.scheme(conn.peer, &parts.headers);
    WsgiRequest {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        client,
        local: conn.local,
        url_scheme,
        content_length,
        body,
    }
}

/// Everything Django answers: the body limit, chunked bodies collected, the WSGI application.
async fn serve_django(
    shared: &Shared,
    conn: &Connection,
    client: SocketAddr,
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
            match buffer_body(incoming, length, shared.timeout).await {
                Ok(bytes) => (Some(bytes.len() as u64), BodySource::Buffered(bytes)),
                Err(response) => return response,
            }
        }
        Some(length) => (Some(length), BodySource::Stream(incoming)),
        None if incoming.is_end_stream() => (None, BodySource::Empty),
        // Chunked (or HTTP/2 without a length): Django reads only CONTENT_LENGTH bytes, so the
        // body is collected first and given one.
        None => match buffer_body(incoming, shared.max_body_size, shared.timeout).await {
            Ok(bytes) => (Some(bytes.len() as u64), BodySource::Buffered(bytes)),
            Err(response) => return response,
        },
    };
    let request = build_wsgi_request(shared, conn, client, parts, content_length, body);
    call_application(shared, request).await
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

/// Collects a request body of at most `limit` bytes, which must arrive whole within `deadline`
/// (408 otherwise, so a trickling client is cut off). A body that arrives in one frame is kept
/// as it is, without a copy.
async fn buffer_body(
    mut incoming: Incoming,
    limit: u64,
    deadline: Duration,
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
                return Err(page(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid request body: {err}"),
                    true,
                ));
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
pub(crate) struct OriginalNames(pub Vec<String>);

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
