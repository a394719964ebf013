//! What Django's middleware does around every view, done around Rust handlers so a ported route
//! answers with the same headers: the security headers, X-Frame-Options and Content-Length (in
//! the order Django's middleware adds them), ALLOWED_HOSTS, and the project's own 500, 400 and
//! 403 pages.
//!
//! The values come from the live settings at start-up (see `python/django.py`); nothing here is
//! specific to one project. What a single view adds (`never_cache`, cookies) is the handler's job.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Conventions {
    allowed_hosts: Vec<String>,
    use_x_forwarded_host: bool,
    x_frame_options: Option<String>,
    content_length: bool,
    /// Bodies Django refuses to read (`RequestDataTooBig`, a 400); None means no limit.
    data_upload_max_memory_size: Option<u64>,
    nosniff: bool,
    referrer_policy: Option<String>,
    cross_origin_opener_policy: Option<String>,
    hsts: Option<String>,
    ssl_redirect: bool,
    server_error: ErrorPage,
    bad_request: ErrorPage,
    forbidden: ErrorPage,
    /// The middleware that add to a response, in the order Django's response phase runs them
    /// (MIDDLEWARE reversed): the header order of a response follows it.
    #[serde(default = "startproject_response_phase")]
    response_phase: Vec<Middleware>,
}

/// A middleware whose response phase adds headers or cookies to a view's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Middleware {
    /// `SecurityMiddleware`: nosniff, Referrer-Policy, COOP, HSTS.
    Security,
    /// `SessionMiddleware`: the session cookie, `Vary: Cookie` when the session was read.
    Session,
    /// `CommonMiddleware`: Content-Length.
    Common,
    /// `CsrfViewMiddleware`: the CSRF cookie and its `Vary: Cookie`.
    Csrf,
    /// `MessageMiddleware`: the messages cookie or session entry.
    Messages,
    /// `XFrameOptionsMiddleware`.
    XFrameOptions,
}

/// The response phase of the MIDDLEWARE `startproject` writes.
fn startproject_response_phase() -> Vec<Middleware> {
    use Middleware::*;
    vec![XFrameOptions, Messages, Csrf, Common, Session, Security]
}

#[derive(Debug, Clone, Deserialize)]
struct ErrorPage {
    status: u16,
    content_type: String,
    /// Latin-1 text standing for bytes (see `django.py`).
    body: String,
}

impl Conventions {
    /// Whether a Rust handler may answer this request. Requests Django would refuse or redirect
    /// before reaching the view (a Host outside ALLOWED_HOSTS, plain HTTP under
    /// SECURE_SSL_REDIRECT, a forwarded host), and declared bodies larger than Django reads, go
    /// to Django, which answers them its own way. `authority` is the request target's
    /// authority, which stands for Host in HTTP/2.
    pub(crate) fn admits(
        &self,
        headers: &HeaderMap,
        authority: Option<&str>,
        secure: bool,
    ) -> bool {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // The limit is on what Django reads into memory: a multipart body's files go to disk.
        let multipart = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(ficus_django::forms::is_multipart);
        if let (Some(limit), Some(length)) = (self.data_upload_max_memory_size, declared)
            && length > limit
            && !multipart
        {
            return false;
        }
        if self.ssl_redirect && !secure {
            return false;
        }
        if self.use_x_forwarded_host && headers.contains_key("x-forwarded-host") {
            return false;
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let Some(host) = host.or(authority) else {
            return false;
        };
        self.host_allowed(host)
    }

    /// Django's `split_domain_port` + `validate_host`.
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let Some(domain) = domain_of(&host) else {
            return false;
        };
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        self.allowed_hosts.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            pattern == "*"
                || (pattern.starts_with('.')
                    && (domain.ends_with(&pattern) || domain == &pattern[1..]))
                || pattern == domain
        })
    }

    /// The middleware whose response phase the engine follows, in the order Django runs them.
    pub(crate) fn response_phase(&self) -> &[Middleware] {
        &self.response_phase
    }

    /// What `middleware`'s response phase adds to a view's response, where it is a header
    /// middleware (the session, CSRF and messages ones belong to the request's state).
    pub(crate) fn add<B: http_body::Body>(
        &self,
        middleware: Middleware,
        response: &mut Response<B>,
        secure: bool,
    ) {
        match middleware {
            Middleware::XFrameOptions => {
                if let Some(value) = &self.x_frame_options {
                    set_default(response.headers_mut(), header::X_FRAME_OPTIONS, value);
                }
            }
            Middleware::Common => {
                let length = http_body::Body::size_hint(response.body()).exact();
                let headers = response.headers_mut();
                if self.content_length
                    && let Some(length) = length
                    && !headers.contains_key(header::CONTENT_LENGTH)
                {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
                }
            }
            Middleware::Security => self.security(response.headers_mut(), secure),
            Middleware::Session | Middleware::Csrf | Middleware::Messages => {}
        }
    }

    fn security(&self, headers: &mut HeaderMap, secure: bool) {
        if secure && let Some(value) = &self.hsts {
            set_default(headers, header::STRICT_TRANSPORT_SECURITY, value);
        }
        if self.nosniff {
            set_default(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        }
        if let Some(value) = &self.referrer_policy {
            set_default(headers, header::REFERRER_POLICY, value);
        }
        if let Some(value) = &self.cross_origin_opener_policy {
            set_default(
                headers,
                HeaderName::from_static("cross-origin-opener-policy"),
                value,
            );
        }
    }

    /// The project's 500 answer (its `handler500`, rendered at start-up).
    pub(crate) fn server_error(&self) -> Response<Bytes> {
        self.server_error.response()
    }

    /// The project's 400 answer (its `handler400`), for a body over Django's limits.
    pub(crate) fn bad_request(&self) -> Response<Bytes> {
        self.bad_request.response()
    }

    /// The project's 403 answer (its `handler403`), for `PermissionDenied`.
    pub(crate) fn forbidden(&self) -> Response<Bytes> {
        self.forbidden.response()
    }
}

impl ErrorPage {
    fn response(&self) -> Response<Bytes> {
        let body: Vec<u8> = self
            .body
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect();
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Ok(value) = HeaderValue::from_str(&self.content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    }
}

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if !headers.contains_key(&name)
        && let Ok(value) = HeaderValue::from_str(value)
    {
        headers.insert(name, value);
    }
}

/// The domain part of a lower-cased Host header, as Django's `split_domain_port` finds it: a
/// name of `[a-z0-9.-]` or a bracketed IPv6 literal, then an optional numeric port.
fn domain_of(host: &str) -> Option<&str> {
    let (domain, port) = if host.starts_with('[') {
        let end = host.find(']')? + 1;
        (&host[..end], &host[end..])
    } else {
        match host.rfind(':') {
            Some(i) => (&host[..i], &host[i..]),
            None => (host, ""),
        }
    };
    let port_ok = port.is_empty()
        || (port.len() > 1
            && port.starts_with(':')
            && port[1..].bytes().all(|b| b.is_ascii_digit()));
    let domain_ok = if let Some(inner) = domain.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    };
    (port_ok && domain_ok).then_some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conventions(allowed: &[&str]) -> Conventions {
        Conventions {
            allowed_hosts: allowed.iter().map(|s| s.to_string()).collect(),
            use_x_forwarded_host: false,
            x_frame_options: Some("DENY".into()),
            content_length: true,
            data_upload_max_memory_size: Some(10),
            nosniff: true,
            referrer_policy: Some("same-origin".into()),
            cross_origin_opener_policy: Some("same-origin".into()),
            hsts: None,
            ssl_redirect: false,
            server_error: ErrorPage {
                status: 500,
                content_type: "text/html".into(),
                body: "<h1>oops \u{e9}</h1>".into(),
            },
            bad_request: ErrorPage {
                status: 400,
                content_type: "text/html".into(),
                body: "<h1>Bad Request (400)</h1>".into(),
            },
            response_phase: startproject_response_phase(),
            forbidden: ErrorPage {
                status: 403,
                content_type: "text/html".into(),
                body: "<h1>403 Forbidden</h1>".into(),
            },
        }
    }

    fn with_host(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        headers
    }

    #[test]
    fn hosts_are_validated_as_django_validates_them() {
        let c = conventions(&["127.0.0.1", ".example.com", "[::1]"]);
        for ok in [
            "127.0.0.1:8000",
            "example.com",
            "a.example.com.",
            "[::1]:80",
            "EXAMPLE.com",
        ] {
            assert!(c.admits(&with_host(ok), None, false), "{ok}");
        }
        for refused in ["evil.com", "127.0.0.1:80x", "example.com@evil", "", "[::1"] {
            assert!(!c.admits(&with_host(refused), None, false), "{refused}");
        }
        assert!(
            !c.admits(&HeaderMap::new(), None, false),
            "no Host goes to Django"
        );
        assert!(
            c.admits(&HeaderMap::new(), Some("example.com:8000"), false),
            "HTTP/2's :authority stands for Host"
        );
    }

    #[test]
    fn body_larger_than_django_reads_goes_to_django() {
        let c = conventions(&["*"]);
        let mut headers = with_host("example.com");
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert!(c.admits(&headers, None, false));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("11"));
        assert!(!c.admits(&headers, None, false));
    }

    #[test]
    fn wildcard_admits_every_wellformed_host() {
        assert!(conventions(&["*"]).admits(&with_host("anything.test"), None, false));
    }

    #[test]
    fn middleware_headers_follow_djangos_order_and_keep_the_views_own() {
        let c = conventions(&["*"]);
        let mut response = Response::new(http_body_util::Full::new(Bytes::from_static(b"{}")));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response.headers_mut().insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
        for middleware in c.response_phase().to_vec() {
            c.add(middleware, &mut response, false);
        }
        let names: Vec<&str> = response.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "x-frame-options",
                "content-length",
                "x-content-type-options",
                "referrer-policy",
                "cross-origin-opener-policy"
            ]
        );
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "SAMEORIGIN");
        assert_eq!(response.headers()[header::CONTENT_LENGTH], "2");
    }

    #[test]
    fn server_error_page_keeps_its_bytes() {
        let page = conventions(&["*"]).server_error();
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(page.body().as_ref(), b"<h1>oops \xe9</h1>");
    }
}
