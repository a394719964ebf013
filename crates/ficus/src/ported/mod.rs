//! The toolkit ported views are written with, and the dispatcher that runs them.
//!
//! A ported view is an axum handler (`async fn` with extractors) registered under a name that
//! routes.toml refers to. Handlers get the shared database and the Python thread pool as state,
//! Django-flavoured extractors (`extract`), Django-shaped responses (`respond`), and around every
//! answer the dispatcher adds what Django's middleware would (`conventions`), catches panics and
//! applies the server's deadline. Nothing here knows a particular project's views: those live in
//! `crate::handlers`.

pub mod error;
pub mod extract;
pub mod pyjson;
pub mod python;
pub(crate) mod request;
pub mod respond;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use http::StatusCode;
use http_body_util::BodyExt;

use crate::conventions::{Conventions, Middleware};
use crate::db::Database;
use crate::routes::summary::UrlPattern;
use error::{BadRequestPage, ForbiddenPage, NotFoundPage, RequiresCsrfToken};
use extract::Kwargs;
use python::{PythonCalls, ServerError};
use request::settings::{Unsupported, WebSettings};
use request::templates::TemplateLoader;
use request::{Slot, Web};

/// What handlers can extract with `State<...>`.
#[derive(Clone)]
pub struct AppState {
    /// The database shared with Django: `State<Database>`.
    pub db: Database,
    /// The Python thread pool: `State<PythonCalls>`.
    pub python: PythonCalls,
}

impl FromRef<AppState> for Database {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

impl FromRef<AppState> for PythonCalls {
    fn from_ref(state: &AppState) -> Self {
        state.python.clone()
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = Response> + Send>>;
type Endpoint = Arc<dyn Fn(axum::extract::Request, AppState) -> HandlerFuture + Send + Sync>;

/// Handlers by the name routes.toml uses (`articles::detail`).
#[derive(Default, Clone)]
pub struct Registry {
    handlers: BTreeMap<&'static str, Endpoint>,
    csrf_exempt: BTreeSet<&'static str>,
    csrf_protect: BTreeSet<&'static str>,
    templates: Vec<TemplateLoader>,
}

impl Registry {
    /// A registry without handlers: every route goes to Django.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an axum handler under `name`; a second registration of a name replaces the
    /// first (tests swap in deliberately different handlers this way). [`registry!`](crate::registry)
    /// registers handlers under their own paths.
    pub fn register<H, T>(mut self, name: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        // Body size is ficus's to police (--max-body-size, and Django's own limit through
        // `Conventions::admits`), not axum's default of 2 MB.
        let handler = handler.layer(DefaultBodyLimit::disable());
        let endpoint: Endpoint =
            Arc::new(move |request, state| Box::pin(handler.clone().call(request, state)));
        self.handlers.insert(name, endpoint);
        self
    }

    /// Exempts the handler `name` from the CSRF check, as `@csrf_exempt` exempts the Django
    /// view it replaces (`#[csrf_exempt] app::view` in [`registry!`](crate::registry)).
    pub fn csrf_exempt(mut self, name: &'static str) -> Self {
        self.csrf_exempt.insert(name);
        self
    }

    /// Writes the CSRF cookie of handler `name`'s answers as the view's own decorator does:
    /// `@csrf_protect` (Django's `LoginView` and `LogoutView` have it) sets the cookie and its
    /// `Vary` before the middleware add their headers, which is where Django's answer has them
    /// (`#[csrf_protect] app::view` in [`registry!`](crate::registry)).
    pub fn csrf_protect(mut self, name: &'static str) -> Self {
        self.csrf_protect.insert(name);
        self
    }

    /// Adds the migration's templates: `.templates(|env| minijinja_embed::load_templates!(env))`.
    pub fn templates(mut self, loader: TemplateLoader) -> Self {
        self.templates.push(loader);
        self
    }

    /// The names handlers are registered under.
    pub fn names(&self) -> BTreeSet<&'static str> {
        self.handlers.keys().copied().collect()
    }

    fn get(&self, name: &str) -> Option<Endpoint> {
        self.handlers.get(name).cloned()
    }
}

/// Runs Rust handlers for the server.
pub(crate) struct Dispatcher {
    registry: Registry,
    state: AppState,
    conventions: Conventions,
    web: Arc<Web>,
    timeout: Duration,
}

impl Dispatcher {
    /// The handlers with what they share; refused when the project uses a setting the
    /// toolkit cannot follow (one sentence, for `serve` to stop with).
    pub(crate) fn new(
        registry: Registry,
        state: AppState,
        conventions: Conventions,
        web: WebSettings,
        patterns: &[UrlPattern],
        timeout: Duration,
    ) -> Result<Self, Unsupported> {
        let web = Web::new(web, &state, patterns, &registry.templates)?;
        Ok(Self {
            registry,
            state,
            conventions,
            web: Arc::new(web),
            timeout,
        })
    }

    pub(crate) fn conventions(&self) -> &Conventions {
        &self.conventions
    }

    /// Answers `request` with the handler `name`. A panic or an error the handler signals becomes
    /// the project's 500 page, a handler slower than `--timeout` a 504; the server carries on.
    pub(crate) async fn dispatch<B>(
        &self,
        name: &str,
        params: Vec<(String, String)>,
        request: http::Request<B>,
        secure: bool,
    ) -> http::Response<crate::body::Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let slot = Slot::new(Some(self.web.clone()), secure);
        // For a 404 page of a handler that never read the request (a cheap, shared copy).
        let uri = request.uri().clone();
        let mut response = match self.registry.get(name) {
            Some(endpoint) => {
                tracing::debug!(
                    "{} {} served by the Rust handler {name}",
                    request.method(),
                    request.uri().path()
                );
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(Kwargs(params));
                request.extensions_mut().insert(slot.clone());
                match self.check_csrf(name, &slot, request).await {
                    Ok(request) => self.run(name, endpoint(request, self.state.clone())).await,
                    Err(refusal) => refusal,
                }
            }
            None => {
                // The route table only holds registered names, so this is a ficus bug.
                tracing::error!("no handler is registered as `{name}`");
                ServerError::response()
            }
        };
        if let Some(BadRequestPage(reason)) = response.extensions().get::<BadRequestPage>() {
            tracing::warn!("Bad Request: {reason}");
            response = self.conventions.bad_request().map(axum::body::Body::from);
        }
        if response.extensions().get::<NotFoundPage>().is_some() {
            // `raise Http404`: the project's 404 page for this request, as page_not_found.
            let page = match slot.made() {
                Some(state) => request::templates::Templates(state).not_found().await,
                None => {
                    request::templates::django_not_found(&self.web, uri.path().to_owned()).await
                }
            };
            response = page.into_response();
        }
        if response.extensions().get::<ForbiddenPage>().is_some() {
            // A handler that checked a permission has read the user, so its state exists.
            let state = slot.made();
            let path = state
                .as_ref()
                .map(|state| state.facts.path.clone())
                .unwrap_or_default();
            tracing::warn!("Forbidden (Permission denied): {path}");
            // `permission_denied` renders 403.html for the request: a ported one is rendered
            // here, for this user; without one, Django's page as it rendered it at start-up.
            let ported = match state {
                Some(state) => {
                    request::templates::Templates(state)
                        .permission_denied()
                        .await
                }
                None => None,
            };
            response =
                ported.unwrap_or_else(|| self.conventions.forbidden().map(axum::body::Body::from));
        }
        if response.extensions().get::<ServerError>().is_some() {
            response = self.conventions.server_error().map(axum::body::Body::from);
        }
        // What the middleware add, each in its turn: the header order is Django's.
        let state = slot.made();
        let view_writes_csrf = self.registry.csrf_protect.contains(name)
            || response.extensions().get::<RequiresCsrfToken>().is_some();
        if view_writes_csrf && let Some(state) = &state {
            request::finish(state, Middleware::Csrf, &mut response).await;
        }
        for &middleware in self.conventions.response_phase() {
            if let Some(state) = &state {
                request::finish(state, middleware, &mut response).await;
            }
            self.conventions.add(middleware, &mut response, secure);
        }
        cookies_last(response.headers_mut());
        response.map(|body| KeepLength(body.map_err(std::io::Error::other)).boxed_unsync())
    }

    /// `CsrfViewMiddleware.process_view` for a route not `#[csrf_exempt]`: the request to go on
    /// with (its body read and put back when the token may be in it), or the refusal. A CSRF
    /// cookie Django would not take is replaced on any request, as `process_request` does.
    async fn check_csrf(
        &self,
        name: &str,
        slot: &Slot,
        request: axum::extract::Request,
    ) -> Result<axum::extract::Request, Response> {
        let settings = &self.web.settings;
        if !settings.csrf_middleware {
            return Ok(request);
        }
        let safe = matches!(
            *request.method(),
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::TRACE
        );
        if safe || self.registry.csrf_exempt.contains(name) {
            let malformed = crate::cookies::values(request.headers(), &settings.csrf.cookie.name)
                .any(|v| ficus_django::csrf::check_format(v).is_err());
            if malformed {
                let (parts, body) = request.into_parts();
                if let Some(state) = slot.get_or_make(&parts) {
                    let _ = request::csrf::prepare(&state).await;
                }
                return Ok(axum::extract::Request::from_parts(parts, body));
            }
            return Ok(request);
        }
        let (parts, body) = request.into_parts();
        let Some(state) = slot.get_or_make(&parts) else {
            return Ok(axum::extract::Request::from_parts(parts, body));
        };
        let content_type = state.facts.content_type.as_deref().unwrap_or("");
        let is_post = state.facts.method == http::Method::POST;
        let multipart = is_post && request::upload::is_multipart(content_type);
        let urlencoded = is_post && request::form::is_urlencoded(content_type);
        if !multipart && !urlencoded {
            return match request::csrf::check(&state, None).await {
                Some(refusal) => Err(refusal),
                None => Ok(axum::extract::Request::from_parts(parts, body)),
            };
        }
        // Django reads request.POST for the token only once the Origin, Referer and cookie
        // checks have passed: a refusal there never reads the body.
        if let Some(refusal) = request::csrf::check_before_body(&state).await {
            return Err(refusal);
        }
        let mut parts = parts;
        // What was read is handed on, so the handler's extractor does not read it again.
        let (body, form) = if multipart {
            let uploads = request::upload::parse(content_type, body, &settings.uploads)
                .await
                .map_err(IntoResponse::into_response)?;
            let form = uploads.fields.clone();
            parts
                .extensions
                .insert(request::upload::ParsedBody(Arc::new(
                    std::sync::Mutex::new(Some(uploads)),
                )));
            (axum::body::Body::empty(), form)
        } else {
            let (bytes, form) = request::form::read_urlencoded(body, &settings.uploads)
                .await
                .map_err(IntoResponse::into_response)?;
            parts
                .extensions
                .insert(request::form::ParsedForm(form.clone()));
            (axum::body::Body::from(bytes), form)
        };
        match request::csrf::check(&state, Some(&form)).await {
            Some(refusal) => Err(refusal),
            None => Ok(axum::extract::Request::from_parts(parts, body)),
        }
    }

    async fn run(&self, name: &str, future: HandlerFuture) -> Response {
        // A panic is caught where it unwinds, in this task: no task of its own per request.
        // Dropping this future (a canary or shadow budget ran out) drops the handler too.
        let guarded = std::panic::AssertUnwindSafe(future).catch_unwind();
        match tokio::time::timeout(self.timeout, guarded).await {
            Ok(Ok(response)) => response,
            Ok(Err(panic)) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!("the Rust handler `{name}` panicked: {message}");
                ServerError::response()
            }
            Err(_) => {
                tracing::error!("the Rust handler `{name}` did not answer within the timeout");
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    "The application did not answer in time.",
                )
                    .into_response()
            }
        }
    }
}

/// Puts the `Set-Cookie` headers after all others, where Django's WSGI handler writes them (it
/// sends `response.cookies` after `response.items()`), so the head reads as gunicorn sends it.
fn cookies_last(headers: &mut http::HeaderMap) {
    if !headers.contains_key(http::header::SET_COOKIE) {
        return;
    }
    // HeaderMap::remove moves the last header into the gap; rebuilding keeps every order.
    let mut others = Vec::with_capacity(headers.len());
    let mut cookies = Vec::new();
    let mut name = None;
    for (next, value) in std::mem::take(headers) {
        if next.is_some() {
            name = next;
        }
        match &name {
            Some(n) if n == http::header::SET_COOKIE => cookies.push(value),
            Some(n) => others.push((n.clone(), value)),
            None => {}
        }
    }
    for (n, value) in others {
        headers.append(n, value);
    }
    for cookie in cookies {
        headers.append(http::header::SET_COOKIE, cookie);
    }
}

/// A response body as it is, except that it never says it has ended before it is read: hyper
/// drops the `Content-Length: 0` of a body that has, and writes its own after every other
/// header, where Django's CommonMiddleware put it among them.
struct KeepLength<B>(B);

impl<B: http_body::Body + Unpin> http_body::Body for KeepLength<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().0).poll_frame(cx)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// A [`Registry`] of handlers under the names routes.toml uses, each written once as the path of
/// the handler below `handlers`: `registry![articles::list, articles::detail]` registers
/// `articles::list` as "articles::list". `#[csrf_exempt]` before a handler exempts it from the
/// CSRF check, and `#[csrf_protect]` writes its CSRF cookie as the view's decorator does, as
/// the decorators of the Django view it replaces do.
#[macro_export]
macro_rules! registry {
    ($($(#[$flag:ident])* $module:ident :: $handler:ident),* $(,)?) => {{
        let registry = $crate::ported::Registry::new();
        $(
            let name = concat!(stringify!($module), "::", stringify!($handler));
            let registry = registry.register(name, $module::$handler);
            $(let registry = $crate::registry!(@flag $flag, registry, name);)*
        )*
        registry
    }};
    (@flag csrf_exempt, $registry:expr, $name:expr) => {
        $registry.csrf_exempt($name)
    };
    (@flag csrf_protect, $registry:expr, $name:expr) => {
        $registry.csrf_protect($name)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_go_after_every_other_header_in_their_order() {
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::CONTENT_TYPE, "text/html".parse().unwrap());
        headers.append(http::header::SET_COOKIE, "csrftoken=a".parse().unwrap());
        headers.append(http::header::VARY, "Cookie".parse().unwrap());
        headers.append(http::header::SET_COOKIE, "sessionid=b".parse().unwrap());
        headers.append(http::header::CONTENT_LENGTH, "0".parse().unwrap());
        cookies_last(&mut headers);
        let order: Vec<String> = headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("")))
            .collect();
        assert_eq!(
            order,
            [
                "content-type: text/html",
                "vary: Cookie",
                "content-length: 0",
                "set-cookie: csrftoken=a",
                "set-cookie: sessionid=b",
            ]
        );
    }
}
