//! `ficus serve`: puts the pieces together in the order embedding needs. Sockets are bound
//! first (a busy port fails fast), then Python starts on the main thread, then tokio and its
//! signal handlers (registered before Django imports `signal`, so Ctrl-C and SIGTERM reach us),
//! then the application is imported, and only then are requests accepted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use pyo3::prelude::*;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::admin::Admin;
use crate::db::Database;
use crate::logfile::LogFile;
use crate::metrics::Metrics;
use crate::ported::python::PythonCalls;
use crate::ported::{AppState, Dispatcher, Registry};
use crate::project::Project;
use crate::python::{app, django, pool::PythonPool, runtime};
use crate::record::Recorder;
use crate::routes::{LiveRoutes, Mode};
use crate::server::access_log::AccessLog;
use crate::server::guard::HeadLimits;
use crate::server::proxy::ForwardedPolicy;
use crate::server::shared::{Recycle, Shared};
use crate::server::tls::Tls;
use crate::server::{self, HeaderCase, ServerSettings, Stop, listen};
use crate::shadow::Shadow;
use crate::state::{self, State};
use crate::static_files::StaticFiles;
use crate::supervisor;
use crate::traffic_log::RotatingLog;
use crate::wsgi::WsgiApp;

/// What `ficus serve` runs with, resolved from the command line: plain values, every default
/// and floor already applied (clap's types stay in `cli`).
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    pub(crate) project: crate::config::ProjectOptions,
    /// `-b`: addresses as given (`HOST:PORT`, `:PORT`); none means the default.
    pub(crate) bind: Vec<String>,
    pub(crate) workers: usize,
    pub(crate) max_requests: u64,
    pub(crate) max_requests_jitter: u64,
    /// Python threads, and requests that may wait for one.
    pub(crate) threads: usize,
    pub(crate) queue_size: usize,
    /// `-` for stdout, else a file.
    pub(crate) access_logfile: Option<String>,
    /// At least a second.
    pub(crate) timeout: Duration,
    pub(crate) graceful_timeout: Duration,
    /// At least a second.
    pub(crate) keep_alive: Duration,
    pub(crate) limits: HeadLimits,
    pub(crate) max_body_size: u64,
    pub(crate) shadow_log: PathBuf,
    pub(crate) shadow_log_max_bytes: u64,
    pub(crate) record_log: PathBuf,
    pub(crate) record_log_max_bytes: u64,
    /// None when not given or empty.
    pub(crate) admin_token: Option<String>,
    /// None when it does not start with `/` (metrics off).
    pub(crate) metrics_path: Option<String>,
    /// Empty for none.
    pub(crate) state_file: String,
    pub(crate) forwarded_allow_ips: String,
    /// `-m`/`--umask`: what a unix socket's mode leaves out (0: anyone on the host connects).
    pub(crate) umask: u32,
    /// `--reload`, with its extra files.
    pub(crate) reload: Option<Vec<PathBuf>>,
    /// `--no-static`: neither the collected static files nor, under DEBUG, the finders'.
    pub(crate) no_static: bool,
    /// `--certfile`/`--keyfile`: TLS on every socket.
    pub(crate) tls: Option<crate::server::tls::TlsFiles>,
    /// `-e KEY=VALUE`, set before the application loads.
    pub(crate) raw_env: Vec<String>,
    /// `--pid FILE`, written by the main process.
    pub(crate) pid_file: Option<PathBuf>,
    pub(crate) log: LogOptions,
    /// Lines the configuration layers left for the log (settings not implemented).
    pub(crate) notes: Vec<String>,
    /// What workers are started with besides the command line (the resolved layers).
    pub(crate) worker_env: Vec<(String, String)>,
}

/// Where the server's own log goes, and how much of it.
#[derive(Debug, Clone)]
pub(crate) struct LogOptions {
    /// A tracing level: debug, info, warn or error.
    pub(crate) level: &'static str,
    /// None for stderr.
    pub(crate) file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("-e {0}: not KEY=VALUE")]
    RawEnv(String),
    #[error("cannot open the error log {path}", path = .path.display())]
    ErrorLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--pid {path}: it names process {pid}, which is running (is this server already started?)", path = .path.display())]
    PidRunning { path: PathBuf, pid: i32 },
    #[error("cannot write the pid file {path}", path = .path.display())]
    PidWrite {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The main process's pid in a file, removed when the server stops (gunicorn's `--pid`).
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &std::path::Path) -> Result<Self, StartError> {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse::<i32>()
            && pid > 0
            && u32::try_from(pid).ok() != Some(std::process::id())
            // SAFETY: kill with signal 0 only asks whether the process exists.
            && unsafe { libc::kill(pid, 0) } == 0
        {
            return Err(StartError::PidRunning {
                path: path.to_owned(),
                pid,
            });
        }
        std::fs::write(path, format!("{}\n", std::process::id())).map_err(|source| {
            StartError::PidWrite {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(Self(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves with the migration's handlers until a signal stops the server; the exit status it
/// stopped with, or the start-up error. The caller (`main`) exits right after: Python threads
/// may still be attached, and the interpreter is never finalised.
pub(crate) fn run(args: ServeOptions, registry: Registry) -> anyhow::Result<ExitCode> {
    let error_log = init_logging(&args.log)?;
    let worker = supervisor::worker()?;
    if worker.is_none() {
        for note in &args.notes {
            tracing::warn!("{note}");
        }
    }
    for pair in &args.raw_env {
        let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(StartError::RawEnv(pair.clone()).into());
        };
        // SAFETY: no other thread runs yet (logging writes from the caller's thread), so
        // nothing reads the environment meanwhile.
        unsafe { std::env::set_var(key, value) };
    }
    let project = Project::find(&args.project)?;
    let app_config = &project.config;
    let routes = Arc::new(LiveRoutes::load(
        app_config.routes_file.as_deref(),
        registry.names(),
    )?);
    let forwarded = ForwardedPolicy::parse(&args.forwarded_allow_ips)?;
    // Read before any socket is bound: a bad certificate stops the start at once.
    let tls = args.tls.clone().map(Tls::load).transpose()?.map(Arc::new);
    let access_log = match &args.access_logfile {
        Some(target) => {
            Some(Arc::new(AccessLog::open(target).with_context(|| {
                format!("cannot open the access log {target}")
            })?))
        }
        None => None,
    };
    let worker_id = worker.as_ref().map(|w| w.id);
    // The unix socket files this process made go when it returns (workers make none).
    let (listeners, _unlink) = match worker {
        Some(worker) => (worker.listeners, listen::Unlink::default()),
        None => listen::open(&args.bind, args.umask)?,
    };
    let state_file = state::file(&args.state_file).filter(|_| worker_id.is_none());
    let _pid_file = match (&args.pid_file, worker_id) {
        (Some(path), None) => Some(PidFile::write(path)?),
        _ => None,
    };
    if worker_id.is_none() {
        for listener in &listeners {
            if let Ok(addr) = listener.address() {
                let url = addr.url(tls.is_some());
                tracing::info!("Listening at: {url} ({})", app_config.app);
            }
        }
    }
    let local = admin_address(&listeners);
    let secure = tls.is_some();
    // Several workers, or recycling: this process only supervises, and never starts Python.
    if worker_id.is_none() && (args.workers > 1 || args.max_requests > 0 || args.reload.is_some()) {
        let changes = match &args.reload {
            Some(extra) => Some(crate::reload::watch(watch_plan(&project, extra))?),
            None => None,
        };
        let (written, removed) = (state_file.clone(), state_file);
        let code = supervisor::run(
            listeners,
            supervisor::Plan {
                workers: args.workers.max(1),
                graceful_timeout: args.graceful_timeout,
                on_ready: Box::new(move || write_state(written.as_deref(), local, secure)),
                on_exit: Box::new(move || forget_state(removed.as_deref())),
                worker_env: args.worker_env.clone(),
                changes,
                error_log: error_log.clone(),
            },
        )?;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }

    project.start_python()?;

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ficus-io")
        .build()
        .context("cannot start the async runtime")?;
    let (stop_tx, stop_rx) = watch::channel(None);
    let stop_tx = Arc::new(stop_tx);
    tokio
        .block_on(watch_signals(
            stop_tx.clone(),
            routes.clone(),
            tls.clone(),
            [
                access_log.clone().map(Reopen::Access),
                error_log.clone().map(Reopen::Errors),
            ],
        ))
        .context("cannot install signal handlers")?;

    let timeout = args.timeout;
    let venv_shown = project.venv_shown();
    let (wsgi, static_config, facts, patterns, web) = Python::attach(|py| -> anyhow::Result<_> {
        let loaded = app::load(py, app_config, &venv_shown)?;
        // runserver's static files under DEBUG, else the collected ones served natively.
        let (application, static_files) = match app::finders_handler(py, &loaded.app) {
            _ if args.no_static => (loaded.app, None),
            Some(wrapped) => {
                tracing::info!(
                    "DEBUG is on: static files are served from the finders, as runserver serves them"
                );
                (wrapped, None)
            }
            None => (loaded.app, loaded.static_files),
        };
        let wsgi = WsgiApp::new(py, application, tokio.handle().clone(), timeout)
            .map_err(|e| anyhow::anyhow!("cannot prepare the WSGI bridge: {e}"))?;
        // For the dashboard's progress; a project that is not Django has no URL patterns.
        let patterns = django::url_patterns(py).unwrap_or_default();
        let web = django::web::<crate::ported::request::settings::WebSettings>(py);
        Ok((wsgi, static_files, django::facts(py), patterns, web))
    })?;

    let pool = Arc::new(
        PythonPool::start(
            args.threads,
            args.queue_size,
            Arc::new(app::close_thread_resources),
        )
        .context("cannot start the Python threads")?,
    );
    // sqlx pools start their upkeep tasks on the current runtime.
    let ported = {
        let _runtime = tokio.enter();
        dispatcher(facts, web, &patterns, registry, &pool, timeout)
    };
    let table = routes.table();
    match (&ported, table.count(Mode::Rust)) {
        (Err(reason), served) if served > 0 => anyhow::bail!(
            "routes.toml sends {served} route(s) to Rust handlers, but they cannot run: {reason}"
        ),
        (Err(reason), _) => tracing::info!("Rust handlers are unavailable: {reason}"),
        (Ok(_), _) => {}
    }
    let static_files = static_config.map(|s| StaticFiles::new(s.url_prefix, &s.root));
    let ported = ported.ok().map(Arc::new);
    let shadow = ported.as_ref().map(|ported| {
        Arc::new(Shadow::new(
            ported.clone(),
            RotatingLog::new(
                "shadow log",
                args.shadow_log.clone(),
                args.shadow_log_max_bytes,
            ),
        ))
    });
    let admin = Admin {
        token: args.admin_token.clone(),
        metrics_path: args.metrics_path.clone(),
        app: app_config.app.to_string(),
        patterns,
        routes: routes.clone(),
        metrics: Arc::new(Metrics::new()),
        pool: pool.clone(),
        shadow: shadow.clone(),
    };
    let shared = Arc::new(Shared {
        routes: routes.clone(),
        ported,
        shadow,
        pool: pool.clone(),
        wsgi: Arc::new(wsgi),
        static_files,
        forwarded,
        access_log,
        header_case: HeaderCase::default(),
        timeout,
        max_body_size: args.max_body_size,
        metrics: admin.metrics.clone(),
        recorder: Recorder::new(args.record_log.clone(), args.record_log_max_bytes),
        admin: Arc::new(admin),
        recycle: (worker_id.is_some() && args.max_requests > 0)
            .then(|| Recycle::new(args.max_requests, args.max_requests_jitter, stop_tx.clone())),
        tls,
    });
    let settings = ServerSettings {
        limits: args.limits,
        keep_alive: args.keep_alive,
        graceful_timeout: args.graceful_timeout,
    };

    let who = worker_id.map_or(String::new(), |id| format!("Worker {id}: "));
    tracing::info!(
        "{who}Serving with {} Python threads, Python {} from {}",
        pool.size(),
        runtime::EMBEDDED_VERSION,
        venv_shown
    );
    if let Some(file) = routes.file()
        && worker_id.is_none_or(|id| id == 1)
    {
        tracing::info!("{} ({})", table.describe(), file.display());
    }
    write_state(state_file.as_deref(), local, secure);
    tokio.spawn(crate::admin::peers::publish(shared.admin.clone()));
    supervisor::notify_ready();

    let how = tokio.block_on(server::run(listeners, shared, settings, stop_rx.clone()))?;
    forget_state(state_file.as_deref());
    if how == Stop::Quick {
        tracing::info!("Stopped");
        // Tasks still waiting on Python (a stuck request) must not hold the return.
        tokio.shutdown_background();
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = Instant::now() + settings.graceful_timeout;
    let stopper = std::thread::spawn(move || pool.shutdown());
    let hurried = || *stop_rx.borrow() == Some(Stop::Quick);
    while !stopper.is_finished() && Instant::now() < deadline && !hurried() {
        std::thread::sleep(Duration::from_millis(20));
    }
    if stopper.is_finished() {
        Python::attach(app::finish);
    } else {
        tracing::warn!("Python threads still busy after the graceful timeout; exiting anyway");
    }
    tracing::info!("Shutting down: drained");
    tokio.shutdown_background();
    Ok(ExitCode::SUCCESS)
}

/// What `--reload` watches: the working directory and the sys.path folders ficus adds (the
/// project's source), the routes file and the extra files, never the venv.
fn watch_plan(project: &Project, extra: &[PathBuf]) -> crate::reload::WatchPlan {
    let mut folders = vec![std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))];
    folders.extend(project.config.python_path.iter().cloned());
    folders.dedup();
    let mut files = extra.to_vec();
    files.extend(project.config.routes_file.iter().cloned());
    crate::reload::WatchPlan {
        folders,
        files,
        skip: vec![project.venv.clone()],
    }
}

/// Where `ficus reload` and `ficus routes` reach this server: its first TCP socket, else its
/// first unix one.
fn admin_address(listeners: &[listen::Listener]) -> Option<listen::Address> {
    listeners
        .iter()
        .find_map(|l| l.tcp_addr().map(listen::Address::Tcp))
        .or_else(|| listeners.first().and_then(|l| l.address().ok()))
}

/// A log file SIGUSR1 opens again.
enum Reopen {
    Access(Arc<AccessLog>),
    Errors(Arc<LogFile>),
}

impl Reopen {
    fn reopen(&self) {
        match self {
            Reopen::Access(log) => log.reopen(),
            Reopen::Errors(log) => {
                if let Err(err) = log.reopen() {
                    tracing::error!("cannot open the error log {} again: {err}", log.name());
                }
            }
        }
    }
}

/// Writes where this server answers, for `ficus reload` and `ficus routes`.
fn write_state(path: Option<&std::path::Path>, local: Option<listen::Address>, tls: bool) {
    if let (Some(path), Some(local)) = (path, local)
        && let Err(err) = State::of_this_process(&local, tls).write(path)
    {
        tracing::warn!("cannot write the state file {}: {err}", path.display());
    }
}

fn forget_state(path: Option<&std::path::Path>) {
    if let Some(path) = path {
        State::remove(path);
    }
}

/// The Rust handlers with their database, or why they cannot run (not a Django project, or a
/// database engine sqlx does not speak).
fn dispatcher(
    facts: Result<django::DjangoFacts, django::InspectError>,
    web: Result<crate::ported::request::settings::WebSettings, django::InspectError>,
    patterns: &[crate::routes::summary::UrlPattern],
    registry: Registry,
    pool: &Arc<PythonPool>,
    timeout: Duration,
) -> anyhow::Result<Dispatcher> {
    let facts = facts?;
    let db = Database::open(&facts.database)?;
    let state = AppState {
        db,
        python: PythonCalls::new(pool.clone()),
    };
    Ok(Dispatcher::new(
        registry,
        state,
        facts.conventions,
        web?,
        patterns,
        timeout,
    )?)
}

/// SIGTERM drains, SIGINT stops at once; a second signal of either kind turns a drain into a
/// quick stop (the server and the wait for Python threads both watch for it). SIGHUP
/// reloads routes.toml: a valid file replaces the table, an invalid one leaves it as it was
/// (and so for the TLS certificate).
async fn watch_signals(
    stop: Arc<watch::Sender<Option<Stop>>>,
    routes: Arc<LiveRoutes>,
    tls: Option<Arc<Tls>>,
    logs: [Option<Reopen>; 2],
) -> std::io::Result<()> {
    // Without a main process there is no number of workers to change; the signals' default
    // would stop the process.
    for (raw, name) in [(libc::SIGTTIN, "SIGTTIN"), (libc::SIGTTOU, "SIGTTOU")] {
        let mut changes = signal(SignalKind::from_raw(raw))?;
        tokio::spawn(async move {
            while changes.recv().await.is_some() {
                tracing::warn!(
                    "Received {name}: this server has no main process to change the number of workers (start it with -w 2 or more)"
                );
            }
        });
    }
    let mut usr1 = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            for log in logs.iter().flatten() {
                log.reopen();
            }
        }
    });
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            routes.reload_logged();
            if let Some(tls) = &tls {
                tls.reload();
            }
        }
    });
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = term.recv() => Stop::Drain,
            _ = int.recv() => Stop::Quick,
        };
        tracing::info!(
            "{}",
            match first {
                Stop::Drain => "Received SIGTERM: finishing in-flight requests",
                Stop::Quick => "Received SIGINT: stopping",
            }
        );
        let _ = stop.send(Some(first));
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("Received a second signal: stopping now");
        let _ = stop.send(Some(Stop::Quick));
    });
    Ok(())
}

/// The server's log: FICUS_LOG (a tracing filter) when set, else `--log-level`; to stderr, or
/// appended to `--error-logfile` (returned, for SIGUSR1 to open again).
fn init_logging(options: &LogOptions) -> Result<Option<Arc<LogFile>>, StartError> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FICUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(options.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let Some(path) = &options.file else {
        let _ = builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init();
        return Ok(None);
    };
    let file = Arc::new(
        LogFile::open(path.clone()).map_err(|source| StartError::ErrorLog {
            path: path.clone(),
            source,
        })?,
    );
    let _ = builder
        .with_ansi(false)
        .with_writer(crate::logfile::Lines(file.clone()))
        .try_init();
    Ok(Some(file))
}
