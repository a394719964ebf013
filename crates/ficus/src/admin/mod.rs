//! The operator's side of a running server: `/metrics` for Prometheus, the `/_ficus/` dashboard
//! with its JSON (`/_ficus/api/status`), and `/_ficus/api/reload` (what `ficus reload` calls).
//!
//! None of it is reachable from outside unless configured: a request is let in when it comes
//! from loopback without passing through a proxy, or carries the admin token
//! (`--admin-token`). Any other request to these paths goes on to Django as if ficus had no such
//! paths, so a project's own `/metrics` view keeps working for the public.

pub(crate) mod peers;
mod status;

use crate::server::shared::Peer;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};

use crate::body::{Body, full};
use crate::metrics::Metrics;
use crate::metrics::prometheus;
use crate::python::pool::PythonPool;
use crate::routes::LiveRoutes;
use crate::routes::summary::UrlPattern;
use crate::shadow::Shadow;

const PREFIX: &str = "/_ficus/";
const DASHBOARD: &str = include_str!("dashboard.html");
/// The cookie a browser keeps the token in after opening `/_ficus/?token=...` once.
const TOKEN_COOKIE: &str = "ficus_admin";
/// Asked of reload requests so a web page elsewhere cannot trigger one from a browser (a
/// custom header needs a CORS preflight, which ficus never grants).
pub(crate) const RELOAD_HEADER: &str = "x-ficus-reload";

/// The operator's pages: how they are reached, and the live parts of the server they show (a
/// narrow view of it, so this module needs nothing of the request path).
pub(crate) struct Admin {
    /// Lets requests from other hosts in when they carry it.
    pub token: Option<String>,
    /// Where Prometheus scrapes (`/metrics`); None turns it off.
    pub metrics_path: Option<String>,
    /// The application being served, for the dashboard's header.
    pub app: String,
    /// Django's URL patterns, read at start, for the migration progress.
    pub patterns: Vec<UrlPattern>,
    /// The route table, for the progress and for reloads.
    pub routes: Arc<LiveRoutes>,
    /// This worker's figures.
    pub metrics: Arc<Metrics>,
    /// The Python threads, for their figures.
    pub pool: Arc<PythonPool>,
    /// Shadow runs, for their figures and the latest mismatches.
    pub shadow: Option<Arc<Shadow>>,
}

impl Admin {
    /// Whether a request may see the operator's pages.
    fn admits(&self, peer: Peer, headers: &HeaderMap, query: Option<&str>) -> bool {
        let local = peer.is_local() && !proxied(headers);
        local
            || self
                .token
                .as_deref()
                .is_some_and(|token| offered(headers, query, token))
    }
}

/// A request a proxy passed on: its socket peer is the proxy, not the client.
fn proxied(headers: &HeaderMap) -> bool {
    ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// Whether the request carries the token: `Authorization: Bearer`, the cookie, or `?token=`.
fn offered(headers: &HeaderMap, query: Option<&str>, token: &str) -> bool {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .collect::<Vec<_>>();
    let cookies = crate::cookies::values(headers, TOKEN_COOKIE).map(str::to_owned);
    let queried = query_token(query);
    bearer
        .into_iter()
        .map(str::to_owned)
        .chain(cookies)
        .chain(queried)
        .any(|candidate| same(candidate.as_bytes(), token.as_bytes()))
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
}

/// Compares without stopping at the first differing byte, so timing does not leak the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answers the operator's paths; None hands the request on (not one of them, or not admitted).
pub(crate) async fn serve<B>(
    admin: &Admin,
    peer: Peer,
    req: &Request<B>,
) -> Option<Response<Body>> {
    let path = req.uri().path();
    let is_metrics = admin.metrics_path.as_deref() == Some(path);
    if !is_metrics && path != "/_ficus" && !path.starts_with(PREFIX) {
        return None;
    }
    if !admin.admits(peer, req.headers(), req.uri().query()) {
        return None;
    }
    let method = req.method();
    let read = method == Method::GET || method == Method::HEAD;
    Some(match path {
        _ if is_metrics && read => {
            let text = prometheus::render(&peers::gather(admin), admin.metrics.uptime());
            answer(StatusCode::OK, prometheus::CONTENT_TYPE, text)
        }
        "/_ficus" => redirect(PREFIX, None),
        "/_ficus/" if read => match query_token(req.uri().query()) {
            // Opened with ?token=: keep it in a cookie and drop it from the address bar.
            Some(token) => redirect(PREFIX, Some(token)),
            None => answer(StatusCode::OK, "text/html; charset=utf-8", DASHBOARD),
        },
        "/_ficus/api/status" if read => {
            let body = status::status(admin).to_string();
            answer(StatusCode::OK, "application/json", body)
        }
        "/_ficus/api/reload" if method == Method::POST => {
            if !req.headers().contains_key(RELOAD_HEADER) {
                answer(
                    StatusCode::FORBIDDEN,
                    "text/plain; charset=utf-8",
                    format!("A reload must carry the {RELOAD_HEADER} header.\n"),
                )
            } else {
                let outcome = admin.routes.reload_logged();
                // This worker answers for all; the supervisor passes the reload on to the rest.
                crate::supervisor::reload_all_workers();
                let status = if outcome.reloaded {
                    StatusCode::OK
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                let body = serde_json::to_string(&outcome).unwrap_or_default();
                answer(status, "application/json", body)
            }
        }
        _ if is_metrics || path == "/_ficus/" || path.starts_with("/_ficus/api/") => {
            let mut response = answer(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "Method not allowed.\n",
            );
            let allow = if path.ends_with("/reload") {
                "POST"
            } else {
                "GET, HEAD"
            };
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            response
        }
        _ => answer(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Not found.\n",
        ),
    })
}

fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(header::SERVER, HeaderValue::from_static("ficus"));
    response
}

fn redirect(location: &'static str, token: Option<String>) -> Response<Body> {
    let mut response = answer(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    if let Some(token) = token {
        let cookie = format!("{TOKEN_COOKIE}={token}; Path={PREFIX}; HttpOnly; SameSite=Strict");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_accepted_from_a_bearer_header_the_cookie_or_the_query() {
        let mut bearer = HeaderMap::new();
        bearer.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(offered(&bearer, None, "s3cret"));
        assert!(!offered(&bearer, None, "s3cret2"));
        let mut cookie = HeaderMap::new();
        cookie.insert("cookie", "a=b; ficus_admin=s3cret".parse().unwrap());
        assert!(offered(&cookie, None, "s3cret"));
        assert!(offered(
            &HeaderMap::new(),
            Some("x=1&token=s3cret"),
            "s3cret"
        ));
        assert!(!offered(&HeaderMap::new(), Some("token="), "s3cret"));
    }

    #[test]
    fn a_proxied_request_is_not_local_even_from_loopback() {
        let mut headers = HeaderMap::new();
        assert!(!proxied(&headers));
        headers.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert!(proxied(&headers));
    }
}
