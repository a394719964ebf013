//! The command line, in gunicorn's conventions (`ficus serve APP -b ADDR --threads N ...`), with
//! gunicorn's other sources of settings under it (`layers`: the configuration file and
//! `GUNICORN_CMD_ARGS`).
//!
//! Only parsing and defaults live here; nothing is started, bound or imported (a configuration
//! file is Python, so Python reads it, in a process of its own).

mod layers;

pub(crate) use layers::{ParseError, parse};

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ficus",
    version,
    about = "Serve an unmodified Django project in-process, and port it to Rust one route at a time."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve a WSGI application (a Django project) over HTTP, as gunicorn would.
    Serve(Box<ServeArgs>),
    /// `manage.py runserver`'s one-word replacement: `serve --reload` on [ADDR:]PORT, with
    /// static files from the finders under DEBUG.
    Runserver(Box<RunserverArgs>),
    /// List every Django URL pattern beside its state in routes.toml (rust, shadow, django).
    Routes(InspectArgs),
    /// Validate routes.toml against the Rust handlers and the Django URLconf.
    Check(InspectArgs),
    /// Replay request lists or recorded traffic against Django and Rust, and show the differences.
    Diff(DiffArgs),
    /// Make the running server read routes.toml again (as SIGHUP does), and say how it went.
    Reload(ServerArgs),
    /// Start a migration beside an existing Django project (where its manage.py is).
    Init(InitArgs),
}

/// `ficus init`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InitArgs {
    /// The Django project's directory, holding manage.py; the migration is written beside it.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,

    /// Depend on the ficus engine in this directory (the `crates/ficus` of a checkout). Defaults
    /// to the checkout this ficus was built from.
    #[arg(long = "ficus-path", conflicts_with = "ficus_git")]
    pub(crate) ficus_path: Option<PathBuf>,

    /// Depend on the ficus engine from this git repository instead.
    #[arg(long = "ficus-git")]
    pub(crate) ficus_git: Option<String>,

    /// The project's virtualenv, checked for Django. Defaults to $VIRTUAL_ENV, else the project's
    /// .venv when it has one (otherwise `make run` makes it).
    #[arg(long)]
    pub(crate) venv: Option<PathBuf>,
}

/// Which running server a command talks to.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// The server's address (`http://127.0.0.1:8000`). Defaults to the one in the state file
    /// that `ficus serve` writes.
    #[arg(long)]
    pub server: Option<String>,

    /// The state file `ficus serve` wrote.
    #[arg(long = "state-file", default_value = crate::state::DEFAULT_PATH)]
    pub state_file: PathBuf,

    /// The admin token, for a server on another host.
    #[arg(
        long = "admin-token",
        env = "FICUS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub project: ProjectArgs,

    /// gunicorn's configuration file (Python), or `python:MODULE`. Defaults to
    /// ./gunicorn.conf.py when it exists. Its settings come under GUNICORN_CMD_ARGS (or
    /// FICUS_CMD_ARGS), which come under the command line.
    #[arg(short = 'c', long = "config")]
    pub config: Option<String>,

    /// KEY=VALUE set in the environment before the application loads (gunicorn's raw_env);
    /// repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub raw_env: Vec<String>,

    /// A file the main process writes its pid to, removed when it stops.
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pid: Option<PathBuf>,

    /// The least important log lines written: debug, info, warning, error or critical
    /// (FICUS_LOG, a tracing filter, wins when set).
    #[arg(
        long = "log-level",
        default_value = "info",
        ignore_case = true,
        value_parser = ["debug", "info", "warning", "error", "critical"]
    )]
    pub log_level: String,

    /// Where the server's log goes: `-` for stderr (the default), else a file appended to.
    #[arg(
        long = "error-logfile",
        visible_alias = "log-file",
        value_name = "FILE"
    )]
    pub error_logfile: Option<String>,

    /// What the layers under the command line said about themselves (settings not
    /// implemented), logged at start-up.
    #[arg(skip)]
    pub layer_notes: Vec<String>,

    /// The defaults the layers gave, for workers to start with (`layers::worker_env`).
    #[arg(skip)]
    pub layer_defaults: Vec<(String, Vec<String>)>,

    /// Address to listen on: HOST, HOST:PORT, [IPV6]:PORT, unix:PATH, or fd://N for a socket
    /// already bound; repeatable. Defaults to 127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is
    /// set. Sockets passed by systemd (LISTEN_FDS) replace them.
    #[arg(short = 'b', long = "bind")]
    pub bind: Vec<String>,

    /// Replace the worker when the project's source changes (its Python files, its templates,
    /// the routes file): requests in flight finish on the old one, and a change that breaks
    /// the import leaves the old one serving. The main process then runs even with one worker.
    #[arg(long)]
    pub reload: bool,

    /// A file whose change also replaces the worker under --reload; repeatable.
    #[arg(long = "reload-extra-file", value_name = "FILE")]
    pub reload_extra_files: Vec<PathBuf>,

    /// Serve no static files: neither STATIC_ROOT natively nor, under DEBUG, the finders' (as
    /// runserver does); STATIC_URL then goes to the application like any path.
    #[arg(long = "no-static")]
    pub no_static: bool,

    /// A PEM certificate chain: every socket speaks TLS (ALPN h2 and http/1.1), and
    /// wsgi.url_scheme is https. Read again on SIGHUP.
    #[arg(long = "certfile", value_name = "FILE")]
    pub certfile: Option<PathBuf>,

    /// The certificate's PEM private key (default: the certfile, which may hold both).
    #[arg(long = "keyfile", value_name = "FILE", requires = "certfile")]
    pub keyfile: Option<PathBuf>,

    /// The bits a unix socket's mode leaves out, as gunicorn's umask (octal like 007 or 0o007,
    /// hex 0x7, or decimal); 0 lets every local user connect.
    #[arg(short = 'm', long = "umask", default_value = "0", value_parser = umask)]
    pub umask: u32,

    /// Worker processes, each with its own interpreter and Python threads, sharing the listening
    /// sockets under a small main process that replaces any that dies.
    #[arg(
        short = 'w',
        long = "workers",
        env = "WEB_CONCURRENCY",
        default_value_t = 1
    )]
    pub workers: usize,

    /// Requests a worker serves before it is replaced by a fresh one (0: never); the main
    /// process then runs even with one worker.
    #[arg(long = "max-requests", default_value_t = 0)]
    pub max_requests: u64,

    /// Up to this many requests added at random to --max-requests per worker, so workers are not
    /// all replaced at once.
    #[arg(long = "max-requests-jitter", default_value_t = 0)]
    pub max_requests_jitter: u64,

    /// Python threads that run the WSGI application.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,

    /// Requests allowed to wait for a free Python thread before new ones get 503.
    #[arg(long = "queue-size", default_value_t = 128)]
    pub queue_size: usize,

    /// Access log file, `-` for stdout. Off when not given.
    #[arg(long = "access-logfile")]
    pub access_logfile: Option<String>,

    /// Seconds a request may wait for the application to start answering before it gets 504,
    /// and the longest a request body up to 4 MiB may take to arrive (408 beyond it).
    #[arg(short = 't', long, default_value_t = 30)]
    pub timeout: u64,

    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long = "graceful-timeout", default_value_t = 30)]
    pub graceful_timeout: u64,

    /// Seconds an idle keep-alive connection, or a client sending its headers, is waited for.
    #[arg(long = "keep-alive", default_value_t = 5)]
    pub keep_alive: u64,

    /// Longest request line, in bytes (414 beyond it; 0 is unlimited, at most 8190).
    #[arg(long = "limit-request-line", default_value_t = 4094)]
    pub limit_request_line: usize,

    /// Most header fields in a request (431 beyond it; 0 is the most, 32768).
    #[arg(long = "limit-request-fields", default_value_t = 100)]
    pub limit_request_fields: usize,

    /// Longest header field line, CRLF included, in bytes (431 beyond it; 0 is the default).
    // gunicorn spells it with an underscore; both are taken.
    #[arg(
        long = "limit-request-field-size",
        alias = "limit-request-field_size",
        default_value_t = 8190
    )]
    pub limit_request_field_size: usize,

    /// Largest request body, in bytes (413 beyond it).
    #[arg(long = "max-body-size", default_value_t = 100 * 1024 * 1024)]
    pub max_body_size: u64,

    /// Where shadow mode appends its mismatches (JSON Lines; `ficus diff FILE` replays them).
    #[arg(long = "shadow-log", default_value = "ficus-shadow.jsonl")]
    pub shadow_log: PathBuf,

    /// Size at which the shadow log is rotated to FILE.1.
    #[arg(long = "shadow-log-max-bytes", default_value_t = 10 * 1024 * 1024)]
    pub shadow_log_max_bytes: u64,

    /// Where requests sampled by `record = ...` in routes.toml are appended (JSON Lines that
    /// `ficus diff FILE` replays).
    #[arg(long = "record-log", default_value = "ficus-recorded.jsonl")]
    pub record_log: PathBuf,

    /// Size at which the recorded-traffic log is rotated to FILE.1.
    #[arg(long = "record-log-max-bytes", default_value_t = 10 * 1024 * 1024)]
    pub record_log_max_bytes: u64,

    /// Lets requests from other hosts see /metrics and the /_ficus/ dashboard when they carry
    /// it (`Authorization: Bearer TOKEN`, or `/_ficus/?token=TOKEN` once in a browser). Without
    /// it those pages answer only on loopback.
    #[arg(
        long = "admin-token",
        env = "FICUS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Path Prometheus scrapes; `""` turns it off (when the project has its own /metrics view,
    /// say).
    #[arg(long = "metrics-path", default_value = "/metrics")]
    pub metrics_path: String,

    /// Where the running server writes its address and pid, for `ficus reload` and
    /// `ficus routes`; `""` writes none.
    #[arg(long = "state-file", default_value = crate::state::DEFAULT_PATH)]
    pub state_file: String,

    /// Comma-separated addresses or networks whose X-Forwarded-* headers are trusted; `*` for all.
    #[arg(
        long = "forwarded-allow-ips",
        env = "FORWARDED_ALLOW_IPS",
        default_value = "127.0.0.1,::1"
    )]
    pub forwarded_allow_ips: String,
}

/// `ficus runserver`: runserver's own arguments, then everything `serve` takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunserverArgs {
    /// `[ADDR:]PORT` as runserver takes it: `8000`, `0:8000` (every interface),
    /// `0.0.0.0:8000`, `[::1]:8000`. Defaults to 127.0.0.1:8000.
    pub addrport: Option<String>,

    /// runserver's --noreload: changes do not replace the worker.
    #[arg(long)]
    pub noreload: bool,

    /// runserver's --nostatic: no static files served.
    #[arg(long)]
    pub nostatic: bool,

    #[command(flatten)]
    pub serve: ServeArgs,
}

impl RunserverArgs {
    pub(crate) fn resolved(&self) -> crate::serve::ServeOptions {
        let mut options = self.serve.resolved();
        if !self.noreload && options.reload.is_none() {
            options.reload = Some(Vec::new());
        }
        options.no_static |= self.nostatic;
        if let Some(addrport) = &self.addrport {
            options.bind = vec![runserver_bind(addrport)];
        }
        options
    }
}

/// runserver's `[ADDR:]PORT` as a `-b` address: a bare port is on 127.0.0.1, and an address of
/// `0` means every interface.
fn runserver_bind(addrport: &str) -> String {
    if addrport.bytes().all(|b| b.is_ascii_digit()) {
        return format!("127.0.0.1:{addrport}");
    }
    match addrport.rsplit_once(':') {
        Some(("0", port)) => format!("0.0.0.0:{port}"),
        _ => addrport.to_owned(),
    }
}

/// Where the project is and how to load it: shared by every command that starts Python.
#[derive(Debug, Clone, Args)]
pub(crate) struct ProjectArgs {
    /// The WSGI application, `module:attr` or `module` (attr `application`). Defaults to the
    /// `[django] wsgi` entry of the routes file.
    pub app: Option<String>,

    #[command(flatten)]
    pub options: ProjectOptions,
}

/// The project options besides APP (`ficus diff` takes APP as `--app`, its positionals being
/// the files to replay).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ProjectOptions {
    /// The routes file; its `[django]` section supplies APP, settings and path when not given.
    /// Defaults to ./routes.toml when that file exists.
    #[arg(long)]
    pub routes: Option<PathBuf>,

    /// Change to this directory before loading the application.
    #[arg(long)]
    pub chdir: Option<PathBuf>,

    /// Comma-separated directories to put on sys.path before loading the application.
    #[arg(long)]
    pub pythonpath: Option<String>,

    /// The virtualenv to run in. Defaults to $VIRTUAL_ENV, else ./.venv.
    #[arg(long)]
    pub venv: Option<PathBuf>,

    /// Django settings module (sets DJANGO_SETTINGS_MODULE).
    #[arg(long)]
    pub settings: Option<String>,
}

/// `ficus diff`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DiffArgs {
    /// Request lists (`.toml`) or recorded traffic (`.jsonl`).
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,

    /// The WSGI application, `module:attr`; defaults to routes.toml's `[django] wsgi`.
    #[arg(long)]
    pub(crate) app: Option<String>,

    #[command(flatten)]
    pub(crate) options: ProjectOptions,

    /// Print JSON for tools instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    /// Print each request that differs as a request-list entry, ready to paste into a route's
    /// parity list.
    #[arg(long)]
    pub(crate) toml: bool,
}

/// `ficus routes` and `ficus check`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InspectArgs {
    #[command(flatten)]
    pub project: ProjectArgs,

    /// Print JSON for tools instead of a table.
    #[arg(long)]
    pub json: bool,

    /// `ficus routes`: the running server whose live figures are shown beside each route.
    #[command(flatten)]
    pub live: ServerArgs,
}

impl InitArgs {
    /// The plain options `init` runs with (clap refuses both engine sources at once).
    pub(crate) fn resolved(&self) -> crate::init::InitOptions {
        use crate::init::EngineSource;
        let engine = match (&self.ficus_git, &self.ficus_path) {
            (Some(url), _) => EngineSource::Git(url.clone()),
            (None, Some(path)) => EngineSource::Path(path.clone()),
            (None, None) => EngineSource::ThisCheckout,
        };
        crate::init::InitOptions {
            dir: self.dir.clone(),
            engine,
            venv: self.venv.clone(),
        }
    }
}

/// gunicorn's `auto_int`: a leading 0 before a digit means octal (`022`), else Python's
/// `int(x, 0)` (`0o22`, `0x12`, `18`).
fn umask(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let bad = || format!("`{text}` is not a umask (use an octal number such as 022)");
    let (digits, radix) = if let Some(hex) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
        (hex, 16)
    } else if let Some(octal) = text.strip_prefix("0o").or(text.strip_prefix("0O")) {
        (octal, 8)
    } else if text.len() > 1 && text.starts_with('0') {
        (&text[1..], 8)
    } else {
        (text, 10)
    };
    let mask = u32::from_str_radix(digits, radix).map_err(|_| bad())?;
    if mask > 0o777 {
        return Err(bad());
    }
    Ok(mask)
}

impl ServeArgs {
    /// The plain options `serve` runs with.
    pub(crate) fn resolved(&self) -> crate::serve::ServeOptions {
        crate::serve::ServeOptions {
            project: self.project.resolved(),
            bind: self.bind.clone(),
            workers: self.workers,
            max_requests: self.max_requests,
            max_requests_jitter: self.max_requests_jitter,
            threads: self.threads,
            queue_size: self.queue_size,
            access_logfile: self.access_logfile.clone(),
            timeout: Duration::from_secs(self.timeout.max(1)),
            graceful_timeout: Duration::from_secs(self.graceful_timeout),
            keep_alive: Duration::from_secs(self.keep_alive.max(1)),
            limits: crate::server::guard::HeadLimits::gunicorn(
                self.limit_request_line,
                self.limit_request_fields,
                self.limit_request_field_size,
            ),
            max_body_size: self.max_body_size,
            shadow_log: self.shadow_log.clone(),
            shadow_log_max_bytes: self.shadow_log_max_bytes,
            record_log: self.record_log.clone(),
            record_log_max_bytes: self.record_log_max_bytes,
            admin_token: self.admin_token.clone().filter(|t| !t.is_empty()),
            metrics_path: Some(self.metrics_path.clone()).filter(|p| p.starts_with('/')),
            state_file: self.state_file.clone(),
            forwarded_allow_ips: self.forwarded_allow_ips.clone(),
            umask: self.umask,
            no_static: self.no_static,
            reload: self.reload.then(|| self.reload_extra_files.clone()),
            tls: self
                .certfile
                .clone()
                .map(|cert| crate::server::tls::TlsFiles {
                    key: self.keyfile.clone().unwrap_or_else(|| cert.clone()),
                    cert,
                }),
            raw_env: self.raw_env.clone(),
            pid_file: self.pid.clone(),
            log: crate::serve::LogOptions {
                level: match self.log_level.to_ascii_lowercase().as_str() {
                    "debug" => "debug",
                    "warning" => "warn",
                    "error" | "critical" => "error",
                    _ => "info",
                },
                file: self
                    .error_logfile
                    .clone()
                    .filter(|f| f != "-")
                    .map(PathBuf::from),
            },
            notes: self.layer_notes.clone(),
            worker_env: layers::worker_env(&self.layer_defaults),
        }
    }
}

impl ProjectArgs {
    /// The plain options below the command line.
    pub(crate) fn resolved(&self) -> crate::config::ProjectOptions {
        self.options.with_app(self.app.clone())
    }
}

impl ProjectOptions {
    pub(crate) fn with_app(&self, app: Option<String>) -> crate::config::ProjectOptions {
        crate::config::ProjectOptions {
            app,
            routes: self.routes.clone(),
            chdir: self.chdir.clone(),
            pythonpath: self.pythonpath.clone(),
            venv: self.venv.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl ServerArgs {
    pub(crate) fn resolved(&self) -> crate::state::ServerRef {
        crate::state::ServerRef {
            server: self.server.clone(),
            state_file: self.state_file.clone(),
            admin_token: self.admin_token.clone(),
        }
    }
}

impl InspectArgs {
    pub(crate) fn resolved(&self) -> crate::inspect::InspectOptions {
        crate::inspect::InspectOptions {
            project: self.project.resolved(),
            json: self.json,
            live: self.live.resolved(),
        }
    }
}

impl DiffArgs {
    pub(crate) fn resolved(&self) -> crate::diff::DiffOptions {
        crate::diff::DiffOptions {
            files: self.files.clone(),
            project: self.options.with_app(self.app.clone()),
            json: self.json,
            toml: self.toml,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn runserver_addresses_become_binds() {
        assert_eq!(runserver_bind("8000"), "127.0.0.1:8000");
        assert_eq!(runserver_bind("0:8000"), "0.0.0.0:8000");
        assert_eq!(runserver_bind("0.0.0.0:9000"), "0.0.0.0:9000");
        assert_eq!(runserver_bind("[::1]:8000"), "[::1]:8000");
    }

    #[test]
    fn a_umask_is_read_as_gunicorn_reads_it() {
        assert_eq!(umask("0"), Ok(0));
        assert_eq!(umask("007"), Ok(0o007));
        assert_eq!(umask("0o027"), Ok(0o027));
        assert_eq!(umask("0x1f"), Ok(0x1f));
        assert_eq!(umask("18"), Ok(18));
        assert!(umask("08").is_err());
        assert!(umask("rwx").is_err());
    }
}
