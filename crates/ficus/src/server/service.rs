//! What happens to one request: the head guard's verdict, the admin pages, static files, then
//! one `match` over what the route table decided (Rust, canary, shadow, Django). Reading a body
//! ahead is `buffer`, the WSGI side is `django`, header-name case is `header_case`.
//!
//! It runs on tokio and never attaches to Python; the Python side is reached only through the
//! pool's queue.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::Full;
use hyper::body::Incoming;

use super::access_log::Entry;
use super::body::Logged;
use super::buffer::{Pending, copyable, declared_length, read_whole};
use super::django::{django_answer, serve_django, wsgi_request};
use super::errors::page;
use super::framing::Framing;
use super::guard::Verdict;
use super::header_case::preserve_case;
use super::proxy::Client;
use super::shared::{Connection, Shared};
use super::short_body;
use crate::admin::{self};
use crate::body::Body;
use crate::canary;
use crate::metrics::{Backend, UNLISTED};
use crate::routes::pattern::decode_path;
use crate::routes::{Matched, Mode, SAFE_METHODS};
use crate::shadow::DjangoAgain;

pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let connect = (req.method() == http::Method::CONNECT && req.version() < http::Version::HTTP_2)
        .then(|| hyper::upgrade::on(&mut req));
    let in_flight = shared.metrics.in_flight();
    let client = shared.forwarded.client(conn.peer, req.headers());
    let verdict = conn.verdicts.pop();
    if let Verdict::Rewritten(raw) = &verdict {
        req.extensions_mut().insert(raw.clone());
    }
    let entry = shared.access_log.as_ref().map(|_| {
        let target = match &verdict {
            Verdict::Rewritten(raw) => raw.0.as_str(),
            _ => crate::wsgi::request_target(req.uri()),
        };
        Entry::new(
            client.ip(),
            req.method(),
            target,
            req.version(),
            req.headers(),
        )
    });
    let is_http1 = req.version() < http::Version::HTTP_2;
    let head_request = req.method() == http::Method::HEAD;
    // For the short-body warning only; a Uri clone shares its bytes.
    let uri = req.uri().clone();
    let framing = Framing::of(&req);
    let (mut response, served) = respond(&shared, &conn, client, req, verdict).await;
    framing.apply(&mut response);
    // A body known to hold its declared length (every whole one) cannot end short: only the
    // others are watched.
    if let Some(declared) = short_body::declared_length(head_request, &response)
        && response.body().size_hint().exact() != Some(declared)
    {
        let route = served
            .route
            .clone()
            .unwrap_or_else(|| uri.path().to_owned());
        let (parts, body) = response.into_parts();
        response = Response::from_parts(parts, short_body::Declared::wrap(body, declared, route));
    }
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
    if let Some(upgrade) = connect {
        response = super::connect::answer(upgrade, response);
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

async fn respond(
    shared: &Arc<Shared>,
    conn: &Connection,
    client: Client,
    req: Request<Incoming>,
    verdict: Verdict,
) -> (Response<Body>, Served) {
    if let Verdict::Refused(rejection) = verdict {
        return (
            page(rejection.status(), &rejection.reason(), true),
            Served::ficus(),
        );
    }
    if let Err(contradiction) = conn.scheme(&shared.forwarded, req.headers()) {
        return (
            page(StatusCode::BAD_REQUEST, &contradiction.to_string(), true),
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
        match read_whole(shared, conn, req).await {
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
    client: Client,
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

/// Whether Django would let this request reach a view (see `Conventions::admits`), and so a
/// Rust handler may see it; Some(whether it came over https) when it would.
fn admitted<B>(shared: &Shared, conn: &Connection, req: &Request<B>) -> Option<bool> {
    let ported = shared.ported.as_ref()?;
    // Refused in `respond` when the headers disagree.
    let secure = conn.scheme(&shared.forwarded, req.headers()) == Ok("https");
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
pub(super) async fn serve_rust(
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
            if declared_length(req.headers()).is_some_and(|length| length > shared.max_body_size) {
                return page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("Request body is larger than {} bytes", shared.max_body_size),
                    true,
                );
            }
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
    client: Client,
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
    client: Client,
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
