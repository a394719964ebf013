//! What a Django view gets from its request beyond the URL and the body: the session, the user,
//! the CSRF token, messages, form data and templates. Here they are Rust, read and written as
//! Django's middleware reads and writes them, so a login made by either side holds on both.
//!
//! Layout:
//! - `settings`: the Django settings these follow, and the start-up refusals.
//! - `session`, `auth`, `csrf`, `messages`: each a middleware's per-request state and the
//!   handle a handler extracts (`Session`, `CurrentUser`/`LoginRequired`/`Auth`, `Csrf`,
//!   `Messages`).
//! - `form`: the `Form` extractor (`request.POST`).
//! - `templates`: the `Templates` extractor, which renders with the context processors' values.
//! - `urls`: `reverse()` over the live URLconf, for templates and redirects.
//!
//! The flow: the dispatcher puts an empty [`Slot`] in each request's extensions; the first
//! extractor that needs the request's state makes it (so `/healthz` pays for none of this);
//! before the handler the dispatcher checks CSRF for unsafe methods; after it, [`finish`] does
//! what Django's middleware does to the response, in the order Django's response phase runs:
//! messages, then the CSRF cookie, then the session (saved, its cookie set or deleted).

pub(crate) mod auth;
pub(crate) mod csrf;
pub(crate) mod form;
pub(crate) mod messages;
pub(crate) mod session;
pub(crate) mod settings;
pub(crate) mod storage;
pub(crate) mod templates;
pub(crate) mod upload;
pub(crate) mod urls;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::response::Response;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};

use crate::conventions::Middleware;
use crate::db::Database;
use crate::ported::python::{PythonCalls, ServerError};
use settings::WebSettings;

/// Everything per process: the settings and what is derived from them once.
pub(crate) struct Web {
    pub(crate) settings: WebSettings,
    pub(crate) keys: ficus_django::signing::Keys,
    pub(crate) hashers: ficus_django::passwords::Hashers,
    pub(crate) csrf_policy: ficus_django::csrf::Policy,
    pub(crate) templates: templates::Engine,
    pub(crate) urls: Arc<urls::Urls>,
    pub(crate) db: Database,
    pub(crate) python: PythonCalls,
    pub(crate) csrf_pages: csrf::FailurePages,
    /// The session encodings, made once: each holds its signer's keys and salt.
    pub(crate) stored_sessions: ficus_django::sessions::StoredCodec,
    pub(crate) cookie_sessions: ficus_django::sessions::CookieCodec,
    pub(crate) message_cookies: ficus_django::messages::CookieCodec,
}

impl Web {
    /// What the handlers share, from the project's settings; refused when a setting cannot be
    /// followed.
    pub(crate) fn new(
        settings: WebSettings,
        state: &crate::ported::AppState,
        patterns: &[crate::routes::summary::UrlPattern],
        loaders: &[templates::TemplateLoader],
    ) -> Result<Self, settings::Unsupported> {
        settings.check()?;
        let urls = Arc::new(urls::Urls::new(patterns));
        let options = ficus_django::templates::Options {
            time_zone: settings.time_zone()?,
            use_tz: settings.templates.use_tz,
        };
        let templates = templates::Engine::new(
            &options,
            loaders,
            urls.clone(),
            settings.templates.static_url.clone(),
            settings.templates.static_storage.clone(),
        );
        let csrf_policy = ficus_django::csrf::Policy {
            trusted_origins: settings.csrf.trusted_origins.clone(),
            cookie_domain: if settings.csrf.use_sessions {
                settings.session.cookie.domain.clone()
            } else {
                settings.csrf.cookie.domain.clone()
            },
            header_meta_name: settings.csrf.header_meta_name.clone(),
        };
        let keys = settings.keys();
        Ok(Self {
            stored_sessions: ficus_django::sessions::StoredCodec::new(keys.clone()),
            cookie_sessions: ficus_django::sessions::CookieCodec::new(
                keys.clone(),
                settings.session.cookie_age,
            ),
            message_cookies: ficus_django::messages::CookieCodec::new(&keys),
            keys,
            hashers: settings.hashers()?,
            csrf_policy,
            templates,
            urls,
            db: state.db.clone(),
            python: state.python.clone(),
            csrf_pages: csrf::FailurePages::default(),
            settings,
        })
    }

    /// The request's state, made from its head.
    fn state_for(self: &Arc<Self>, parts: &Parts, secure: bool) -> Arc<RequestState> {
        Arc::new_cyclic(|me| RequestState {
            me: me.clone(),
            web: self.clone(),
            facts: Facts::of(parts, secure, &self.settings),
            session: tokio::sync::Mutex::new(session::SessionState::default()),
            session_accessed: AtomicBool::new(false),
            csrf: Mutex::new(csrf::CsrfState::default()),
            user: tokio::sync::Mutex::new(None),
            messages: Mutex::new(messages::MessagesState::default()),
        })
    }
}

/// The parts of the request head the conventions look at, copied once.
pub(crate) struct Facts {
    pub(crate) method: http::Method,
    pub(crate) path: String,
    /// `request.get_full_path()`: the path and, when there is one, `?` and the query.
    pub(crate) full_path: String,
    pub(crate) secure: bool,
    /// `request.get_host()` (the dispatcher only runs handlers for allowed hosts).
    pub(crate) host: Option<String>,
    pub(crate) port: String,
    pub(crate) cookies: Vec<(String, String)>,
    pub(crate) origin: Option<String>,
    pub(crate) referer: Option<String>,
    pub(crate) csrf_header: Option<String>,
    pub(crate) content_type: Option<String>,
}

impl Facts {
    fn of(parts: &Parts, secure: bool, settings: &WebSettings) -> Self {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let host = header("host").or_else(|| parts.uri.authority().map(|a| a.to_string()));
        let port = host
            .as_deref()
            .and_then(|h| h.rsplit_once(':'))
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map(|(_, p)| p.to_owned())
            .unwrap_or_else(|| if secure { "443" } else { "80" }.to_owned());
        let path = parts.uri.path().to_owned();
        let full_path = match parts.uri.query() {
            Some(query) if !query.is_empty() => format!("{path}?{query}"),
            _ => path.clone(),
        };
        Self {
            method: parts.method.clone(),
            path,
            full_path,
            secure,
            host,
            port,
            cookies: parse_cookies(&parts.headers),
            origin: header("origin"),
            referer: header("referer"),
            csrf_header: settings.csrf.header.as_deref().and_then(header),
            content_type: header("content-type"),
        }
    }

    /// `request.COOKIES.get(name)`.
    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        // Django's parse_cookie keeps the last of repeated names.
        self.cookies
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `django.http.cookie.parse_cookie`: `;`-separated pairs, a chunk without `=` is a value
/// with an empty name, both sides stripped, quoted values unquoted.
fn parse_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|chunk| {
            let (name, value) = chunk.split_once('=').unwrap_or(("", chunk));
            let (name, value) = (name.trim(), value.trim());
            (!name.is_empty() || !value.is_empty()).then(|| (name.to_owned(), unquote(value)))
        })
        .collect()
}

/// `http.cookies._unquote`: a double-quoted value loses its quotes and escapes.
fn unquote(value: &str) -> String {
    let Some(inner) = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|_| value.len() >= 2)
    else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let octal = &inner[i + 1..(i + 4).min(inner.len())];
            if octal.len() == 3
                && octal.bytes().all(|b| (b'0'..=b'7').contains(&b))
                && let Ok(code) = u8::from_str_radix(octal, 8)
            {
                out.push(char::from(code));
                i += 4;
                continue;
            }
            out.push(char::from(bytes[i + 1]));
            i += 2;
            continue;
        }
        let c = inner[i..].chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8().max(1);
    }
    out
}

/// One request's Django state: what the middleware would keep on `request`.
pub(crate) struct RequestState {
    /// The state's own Arc, for handles made from within (a session read for the CSRF secret).
    me: std::sync::Weak<RequestState>,
    pub(crate) web: Arc<Web>,
    pub(crate) facts: Facts,
    pub(crate) session: tokio::sync::Mutex<session::SessionState>,
    /// Whether the handler (or a template) read the session: Django then adds `Vary: Cookie`.
    pub(crate) session_accessed: AtomicBool,
    pub(crate) csrf: Mutex<csrf::CsrfState>,
    /// The user once looked up: `Some(None)` is the anonymous user.
    pub(crate) user: tokio::sync::Mutex<Option<Option<auth::User>>>,
    pub(crate) messages: Mutex<messages::MessagesState>,
}

impl std::fmt::Debug for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestState")
            .field("path", &self.facts.path)
            .finish_non_exhaustive()
    }
}

impl RequestState {
    pub(crate) fn self_arc(&self) -> Arc<RequestState> {
        // Only ever called on a state reached through its Arc, which is alive while it runs.
        self.me
            .upgrade()
            .unwrap_or_else(|| unreachable!("a request state is only used through its Arc"))
    }

    pub(crate) fn mark_session_accessed(&self) {
        self.session_accessed.store(true, Ordering::Relaxed);
    }
}

/// Where the request's state is made on first use; the dispatcher keeps a clone to finish it.
#[derive(Clone)]
pub(crate) struct Slot {
    web: Option<Arc<Web>>,
    secure: bool,
    state: Arc<OnceLock<Arc<RequestState>>>,
}

impl Slot {
    pub(crate) fn new(web: Option<Arc<Web>>, secure: bool) -> Self {
        Self {
            web,
            secure,
            state: Arc::new(OnceLock::new()),
        }
    }

    pub(crate) fn get_or_make(&self, parts: &Parts) -> Option<Arc<RequestState>> {
        let web = self.web.as_ref()?;
        Some(
            self.state
                .get_or_init(|| web.state_for(parts, self.secure))
                .clone(),
        )
    }

    pub(crate) fn made(&self) -> Option<Arc<RequestState>> {
        self.state.get().cloned()
    }
}

/// The request's state for an extractor; [`MissingState`] when the project's settings could
/// not be read (the dispatcher then has no `Web`), which `serve` reports at start-up.
pub(crate) fn state_of(parts: &Parts) -> Result<Arc<RequestState>, MissingState> {
    parts
        .extensions
        .get::<Slot>()
        .and_then(|slot| slot.get_or_make(parts))
        .ok_or(MissingState)
}

/// No request state: answered with the project's 500 page and a log line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MissingState;

impl axum::response::IntoResponse for MissingState {
    fn into_response(self) -> Response {
        tracing::error!(
            "a Rust handler asked for the session, user, CSRF token or templates, but the project's settings for them could not be read"
        );
        ServerError::response()
    }
}

/// The toolkit's handles (`Session`, `Csrf`, ...) are the request's state under a name each;
/// all are extracted the same way.
macro_rules! state_handles {
    ($($handle:path),* $(,)?) => {$(
        impl<S: Send + Sync> axum::extract::FromRequestParts<S> for $handle {
            type Rejection = Response;
            async fn from_request_parts(
                parts: &mut Parts,
                _state: &S,
            ) -> Result<Self, Self::Rejection> {
                state_of(parts)
                    .map($handle)
                    .map_err(axum::response::IntoResponse::into_response)
            }
        }
    )*};
}

state_handles!(
    session::Session,
    csrf::Csrf,
    messages::Messages,
    templates::Templates,
    storage::Storage,
    auth::RequestUser,
);

/// Django's `patch_vary_headers(response, ("Cookie",))`.
pub(crate) fn vary_cookie(headers: &mut HeaderMap) {
    let existing: Vec<String> = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    if existing
        .iter()
        .any(|v| v == "*" || v.eq_ignore_ascii_case("cookie"))
    {
        return;
    }
    let mut all = existing;
    all.push("Cookie".to_owned());
    if let Ok(value) = HeaderValue::from_str(&all.join(", ")) {
        headers.insert(header::VARY, value);
    }
}

/// Appends a `Set-Cookie` built by `ficus_django::cookies`.
pub(crate) fn add_cookie(headers: &mut HeaderMap, cookie: &str) {
    match HeaderValue::from_str(cookie) {
        Ok(value) => {
            headers.append(header::SET_COOKIE, value);
        }
        Err(_) => tracing::error!("a cookie could not be written as a header: {cookie:?}"),
    }
}

/// What `middleware` (the session, CSRF or messages one) adds to the handler's response in its
/// turn of Django's response phase.
pub(crate) async fn finish(state: &RequestState, middleware: Middleware, response: &mut Response) {
    match middleware {
        Middleware::Messages => messages::finish(state, response).await,
        Middleware::Csrf => csrf::finish(state, response).await,
        Middleware::Session => session::finish(state, response).await,
        Middleware::Security | Middleware::Common | Middleware::XFrameOptions => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_parsed_as_django_parses_them() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; sessionid = abc ; novalue; q=\"x\\073y\"; a=2"),
        );
        let cookies = parse_cookies(&headers);
        assert_eq!(
            cookies,
            [
                ("a".to_owned(), "1".to_owned()),
                ("sessionid".to_owned(), "abc".to_owned()),
                (String::new(), "novalue".to_owned()),
                ("q".to_owned(), "x;y".to_owned()),
                ("a".to_owned(), "2".to_owned()),
            ]
        );
    }

    #[test]
    fn vary_gains_cookie_once() {
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        vary_cookie(&mut headers);
        vary_cookie(&mut headers);
        assert_eq!(headers[header::VARY], "Accept-Encoding, Cookie");
    }
}
