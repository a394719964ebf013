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

use crate::conventions::Conventions;
use crate::db::Database;
use extract::Kwargs;
use python::{PythonCalls, ServerError};

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
    timeout: Duration,
}

impl Dispatcher {
    pub(crate) fn new(
        registry: Registry,
        state: AppState,
        conventions: Conventions,
        timeout: Duration,
    ) -> Self {
        Self {
            registry,
            state,
            conventions,
            timeout,
        }
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
        let mut response = match self.registry.get(name) {
            Some(endpoint) => {
                tracing::debug!(
                    "{} {} served by the Rust handler {name}",
                    request.method(),
                    request.uri().path()
                );
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(Kwargs(params));
                self.run(name, endpoint(request, self.state.clone())).await
            }
            None => {
                // The route table only holds registered names, so this is a ficus bug.
                tracing::error!("no handler is registered as `{name}`");
                ServerError::response()
            }
        };
        if response.extensions().get::<ServerError>().is_some() {
            response = self.conventions.server_error().map(axum::body::Body::from);
        }
        self.conventions.finish(&mut response, secure);
        response.map(|body| body.map_err(std::io::Error::other).boxed_unsync())
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

/// A [`Registry`] of handlers under the names routes.toml uses, each written once as the path of
/// the handler below `handlers`: `registry![articles::list, articles::detail]` registers
/// `articles::list` as "articles::list".
#[macro_export]
macro_rules! registry {
    ($($module:ident :: $handler:ident),* $(,)?) => {
        $crate::ported::Registry::new()
            $(.register(concat!(stringify!($module), "::", stringify!($handler)), $module::$handler))*
    };
}
