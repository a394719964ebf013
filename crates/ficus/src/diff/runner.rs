//! Getting the three answers parity compares, in-process: Django's answer, the Rust handler's,
//! and Django's again (to measure noise), each against its own fresh copy of the database so a
//! POST on one side never leaks into another.
//!
//! It loads the project as `serve` does, without sockets, and runs one request at a time (the
//! Django side switches its database by changing the shared connection settings). SQLite only:
//! copies are made with `VACUUM INTO`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use pyo3::prelude::*;

use crate::conventions::Conventions;
use crate::db::{Database, DatabaseSettings};
use crate::ported::python::PythonCalls;
use crate::ported::{AppState, Dispatcher, Registry};
use crate::project::Project;
use crate::python::pool::PythonPool;
use crate::python::{app, django};
use crate::routes::RouteTable;
use crate::routes::pattern::decode_path;
use crate::server::listen::Address;
use crate::server::proxy::Client;
use crate::wsgi::{BodySource, WsgiApp, WsgiRequest};
use ficus_parity::Answer;
use ficus_parity::requests::Request;

const TIMEOUT: Duration = Duration::from_secs(30);
/// The Host a request gets when it names none: Django's test client uses `testserver`.
const DEFAULT_HOST: &str = "testserver";

/// The three answers for one request.
#[derive(Debug)]
pub struct Trio {
    /// Django's answer.
    pub django: Answer,
    /// Django's answer once more, on another copy of the database: what differs is noise.
    pub django_again: Answer,
    /// None when no Rust route serves this request (it is Django's either way).
    pub rust: Option<Answer>,
    /// The routes.toml path and handler that served the Rust answer.
    pub route: Option<(String, String)>,
}

/// The project loaded in this process, ready to answer requests from both sides.
pub struct Runner {
    tokio: tokio::runtime::Runtime,
    pool: Arc<PythonPool>,
    wsgi: Arc<WsgiApp>,
    registry: Registry,
    conventions: Conventions,
    web: crate::ported::request::settings::WebSettings,
    patterns: Vec<crate::routes::summary::UrlPattern>,
    routes: RouteTable,
    database: DatabaseSettings,
}

impl Runner {
    /// Starts Python in this process and loads the project; `routes` says which requests the
    /// Rust side answers (every entry counts, whatever its mode: parity is checked before a
    /// route takes traffic).
    pub(crate) fn start(
        project: &Project,
        registry: Registry,
        routes: RouteTable,
    ) -> anyhow::Result<Self> {
        project.start_python()?;
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .worker_threads(2)
            .build()
            .context("cannot start the async runtime")?;
        let venv = project.venv_shown();
        let (wsgi, facts, web, patterns) = Python::attach(|py| -> anyhow::Result<_> {
            let loaded = app::load(py, &project.config, &venv)?;
            let wsgi = WsgiApp::new(py, loaded.app, tokio.handle().clone(), TIMEOUT)
                .map_err(|e| anyhow::anyhow!("cannot prepare the WSGI bridge: {e}"))?;
            Ok((
                wsgi,
                django::facts(py)?,
                django::web::<crate::ported::request::settings::WebSettings>(py)?,
                django::url_patterns(py)?,
            ))
        })?;
        if facts.database.engine != "django.db.backends.sqlite3" {
            bail!(
                "parity runs need a SQLite database to copy for each side; Django's engine is {}",
                facts.database.engine
            );
        }
        // One thread: the Django side switches the shared connection settings per request.
        let pool = Arc::new(
            PythonPool::start(1, 4, Arc::new(app::close_thread_resources))
                .context("cannot start the Python thread")?,
        );
        Ok(Self {
            tokio,
            pool,
            wsgi: Arc::new(wsgi),
            registry,
            conventions: facts.conventions,
            web,
            patterns,
            routes,
            database: facts.database,
        })
    }

    /// Loads the project a routes file names (its `[django]` section), in the virtualenv
    /// `venv`, with `registry` answering every route the file lists: what a migration's parity
    /// tests start from.
    pub fn for_project(
        routes_file: &Path,
        venv: &Path,
        registry: Registry,
    ) -> anyhow::Result<Self> {
        let project = Project::find(&crate::config::ProjectOptions {
            routes: Some(routes_file.to_owned()),
            venv: Some(venv.to_owned()),
            ..Default::default()
        })?;
        let routes = RouteTable::read(project.config.routes_file.as_deref(), &registry.names())?;
        Self::start(&project, registry, routes)
    }

    /// Django, Rust, then Django again, each on a fresh copy of the database.
    pub fn run(&self, request: &Request) -> anyhow::Result<Trio> {
        self.run_with(request, &self.registry)
    }

    /// As `run`, with other handlers under the routes' names (tests swap in wrong ones).
    pub fn run_with(&self, request: &Request, registry: &Registry) -> anyhow::Result<Trio> {
        self.tokio.block_on(async {
            let scratch = tempfile::tempdir().context("cannot make a scratch directory")?;
            let request = &self.with_session_cookie(request);
            let django = self
                .django(
                    request,
                    &self.copy(scratch.path(), "django", request).await?,
                )
                .await?;
            let rust_db = self.copy(scratch.path(), "rust", request).await?;
            let (rust, route) = match self.rust(request, &rust_db, registry).await? {
                Some((answer, route)) => (Some(answer), Some(route)),
                None => (None, None),
            };
            let django_again = self
                .django(
                    request,
                    &self.copy(scratch.path(), "django-again", request).await?,
                )
                .await?;
            Ok(Trio {
                django,
                django_again,
                rust,
                route,
            })
        })
    }

    /// The parity rules of the routes.toml entry with this path and handler (one path may have
    /// several entries, one per method).
    pub fn rules_for(&self, route: &str, handler: &str) -> ficus_parity::Rules {
        self.routes
            .routes
            .iter()
            .find(|r| r.pattern.source() == route && r.handler == handler)
            .map(|r| r.rules.clone())
            .unwrap_or_default()
    }

    /// The key of the session a request made as `user` carries, the same on every side.
    fn session_key(user: &str) -> String {
        format!("paritysessionof{user}")
    }

    /// The request with the session cookie of its `user`, added to any cookies it has.
    fn with_session_cookie(&self, request: &Request) -> Request {
        let mut request = request.clone();
        let Some(user) = &request.user else {
            return request;
        };
        let cookie = format!(
            "{}={}",
            self.web.session.cookie.name,
            Self::session_key(user)
        );
        match request
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        {
            Some((_, value)) => *value = format!("{value}; {cookie}"),
            None => request.headers.push(("Cookie".to_owned(), cookie)),
        }
        request
    }

    /// Logs `user` in on the database copy `db`: the session row Django's `login()` stores,
    /// written with the engine's own session encoding (which Django then reads back).
    async fn log_in(&self, db: &DatabaseSettings, user: &str) -> anyhow::Result<()> {
        let auth = &self.web.auth;
        let table = auth
            .user_table
            .as_deref()
            .context("django.contrib.auth is not installed")?;
        let username = auth.username_field.as_deref().unwrap_or("username");
        let database = Database::open(db)?;
        let row: Option<(i64, String)> = database
            .query(format!(
                "SELECT CAST(id AS BIGINT), password FROM \"{table}\" WHERE \"{username}\" = $1"
            ))
            .bind(user)
            .fetch_optional()
            .await?;
        let (id, password) =
            row.with_context(|| format!("the seeded database has no user {user:?}"))?;
        let keys = self.web.keys();
        let hash = ficus_django::passwords::session_auth_hash(&password, &keys.current);
        let data: ficus_django::sessions::SessionData =
            crate::ported::request::auth::logged_in(id, hash)
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect();
        let encoded = ficus_django::sessions::StoredCodec::new(keys)
            .encode(&data, ficus_django::signing::now());
        let expires = chrono::Utc::now() + chrono::Duration::days(1);
        database
            .query("INSERT INTO django_session (session_key, session_data, expire_date) VALUES ($1, $2, $3)")
            .bind(Self::session_key(user))
            .bind(encoded)
            .bind(database.timestamp(expires))
            .execute()
            .await?;
        if let Database::Sqlite(pool) = &database {
            pool.close().await;
        }
        Ok(())
    }

    /// A consistent copy of Django's database (WAL content included), with the session of
    /// the request's user when it has one.
    async fn copy(
        &self,
        dir: &Path,
        name: &str,
        request: &Request,
    ) -> anyhow::Result<DatabaseSettings> {
        let target = dir.join(format!("{name}.sqlite3"));
        let source = Database::open(&self.database)?;
        let Database::Sqlite(pool) = &source else {
            bail!("parity runs need SQLite");
        };
        sqlx::query("VACUUM INTO $1")
            .bind(target.display().to_string())
            .execute(pool)
            .await
            .with_context(|| format!("cannot copy the database {}", self.database.name))?;
        pool.close().await;
        let copy = DatabaseSettings {
            name: target.display().to_string(),
            ..self.database.clone()
        };
        if let Some(user) = &request.user {
            self.log_in(&copy, user)
                .await
                .with_context(|| format!("cannot log {user:?} in for the request"))?;
        }
        Ok(copy)
    }

    async fn django(&self, request: &Request, db: &DatabaseSettings) -> anyhow::Result<Answer> {
        let (call, answering) = self.wsgi.prepare(wsgi_request(request)?);
        let path = db.name.clone();
        let job = self.pool.run(move |py| -> PyResult<()> {
            use_database(py, &path)?;
            call(py);
            // Closed again, so nothing holds the copy open once the request is done.
            use_database(py, &path)
        });
        let (job, collected) = tokio::join!(job, answering.collect());
        job.context("the Python thread failed")?
            .context("cannot point Django at the database copy")?;
        let (head, streamed) = collected.context("the response body failed")?;
        match head {
            Some(mut head) => Ok(Answer {
                body: head.body.take().unwrap_or(streamed),
                status: head.status,
                headers: head
                    .headers
                    .into_iter()
                    .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
                    .collect(),
            }),
            None => Ok(Answer {
                status: 500,
                headers: Vec::new(),
                body: Bytes::from_static(b"(the application failed before answering)"),
            }),
        }
    }

    async fn rust(
        &self,
        request: &Request,
        db: &DatabaseSettings,
        registry: &Registry,
    ) -> anyhow::Result<Option<(Answer, (String, String))>> {
        let Some(matched) = self
            .routes
            .routes
            .iter()
            .filter(|r| r.methods.contains(&request.method))
            .find_map(|r| {
                r.pattern
                    .matches(&decode_path(&request.path))
                    .map(|p| (r, p))
            })
        else {
            return Ok(None);
        };
        let http_request = http_request(request)?;
        if !self.conventions.admits(http_request.headers(), None, false) {
            return Ok(None);
        }
        let (route, params) = matched;
        let state = AppState {
            db: Database::open(db)?,
            python: PythonCalls::new(self.pool.clone()),
        };
        let dispatcher = Dispatcher::new(
            registry.clone(),
            state.clone(),
            self.conventions.clone(),
            self.web.clone(),
            &self.patterns,
            TIMEOUT,
        )?;
        let response = dispatcher
            .dispatch(&route.handler, params, http_request, false)
            .await;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .context("the Rust response body failed")?;
        if let Database::Sqlite(pool) = &state.db {
            pool.close().await;
        }
        Ok(Some((
            Answer {
                status: parts.status.as_u16(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: body.to_bytes(),
            },
            (route.pattern.source().to_owned(), route.handler.clone()),
        )))
    }
}

/// Points this thread's Django connection at `path` (closing it, so the next query reconnects).
fn use_database(py: Python<'_>, path: &str) -> PyResult<()> {
    let connection = py
        .import("django.db")?
        .getattr("connections")?
        .get_item("default")?;
    connection.call_method0("close")?;
    connection.getattr("settings_dict")?.set_item("NAME", path)
}

fn headers_of(request: &Request) -> anyhow::Result<http::HeaderMap> {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &request.headers {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("`{name}` is not a header name"))?,
            http::HeaderValue::from_str(value)
                .with_context(|| format!("the value of `{name}` is not a header value"))?,
        );
    }
    if !headers.contains_key(http::header::HOST) {
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_static(DEFAULT_HOST),
        );
    }
    if !request.body.is_empty() && !headers.contains_key(http::header::CONTENT_LENGTH) {
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(request.body.len()),
        );
    }
    Ok(headers)
}

fn wsgi_request(request: &Request) -> anyhow::Result<WsgiRequest> {
    let headers = headers_of(request)?;
    Ok(WsgiRequest {
        method: request.method.parse().context("not an HTTP method")?,
        uri: request.target().parse().context("not a request target")?,
        raw_target: None,
        version: http::Version::HTTP_11,
        headers,
        client: Client::Tcp(SocketAddr::from(([127, 0, 0, 1], 50000))),
        local: Address::Tcp(SocketAddr::from(([127, 0, 0, 1], 8000))),
        url_scheme: "http",
        content_length: (!request.body.is_empty()).then_some(request.body.len() as u64),
        body: BodySource::Buffered(request.body.clone()),
    })
}

fn http_request(request: &Request) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let mut built = http::Request::builder()
        .method(request.method.as_str())
        .uri(request.target())
        .body(Full::new(request.body.clone()))
        .context("not a valid request")?;
    *built.headers_mut() = headers_of(request)?;
    Ok(built)
}
