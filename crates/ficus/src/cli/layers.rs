//! gunicorn's layers of settings under the command line, stacked as gunicorn's `load_config`
//! stacks them: the configuration file (`-c FILE` on the command line, else in
//! GUNICORN_CMD_ARGS, else `./gunicorn.conf.py` when it exists), then GUNICORN_CMD_ARGS (then
//! FICUS_CMD_ARGS, ficus's own name, over it), then the command line. Each layer becomes the
//! defaults of the one above, so a later flag wins and a later list replaces an earlier one, as
//! gunicorn's `cfg.set` replaces; a layer that sets what an environment variable would
//! (`workers`, WEB_CONCURRENCY) wins over the variable, which is only gunicorn's default.
//!
//! The file is Python: the project's own interpreter (the venv's) runs it in a child process,
//! and the settings it defines come back as JSON. Not the embedded interpreter: these settings
//! decide how that one starts (chdir, pythonpath, raw_env) and whether this process starts one
//! at all (the main process of `-w N` never does).
//!
//! Settings only: nothing is bound, started or imported here but the file itself.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use serde_json::Value;

use super::{Cli, Command};

/// The environment variables holding more command line, the later over the earlier.
const ENV_ARGS: [&str; 2] = ["GUNICORN_CMD_ARGS", "FICUS_CMD_ARGS"];
/// What gunicorn loads when no `-c` is given, from the working directory.
const DEFAULT_FILE: &str = "gunicorn.conf.py";
/// How the main process hands a worker the layers it resolved (JSON: `[[id, [values]]]`): a
/// worker re-executes the same command line, and must neither run the configuration file again
/// nor read the variables differently.
const WORKER_LAYERS: &str = "FICUS_WORKER_LAYERS";

/// The variables a worker is started with for the layers `defaults` resolved to (set even when
/// they resolved to nothing, so a file that sets nothing ficus reads is not run again).
pub(super) fn worker_env(defaults: &[(String, Vec<String>)]) -> Vec<(String, String)> {
    let json = serde_json::to_string(defaults).unwrap_or_else(|_| "[]".to_owned());
    vec![(WORKER_LAYERS.to_owned(), json)]
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ParseError {
    /// A wrong command line, `--help` or `--version`: clap's own text and status.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    #[error("{var}: its quotes do not close")]
    Quoting { var: &'static str },
    /// clap's complaint about a layer, in its first line (the usage text is the command
    /// line's, not the layer's).
    #[error("{origin}: {complaint}")]
    Layer { origin: String, complaint: String },
    #[error("{location}: no such file")]
    Missing { location: String },
    #[error("cannot read the configuration file {location}: {reason}")]
    Unreadable { location: String, reason: String },
    #[error("{location}: `{setting}` is {value}, which is not a value ficus reads for it")]
    BadValue {
        location: String,
        setting: &'static str,
        value: String,
    },
    #[error(transparent)]
    Python(#[from] crate::python::runtime::RuntimeError),
}

fn first_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// How a setting's Python value becomes the values of its argument.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// One value.
    One,
    /// A string or a list, each item a value (`bind`, `raw_env`).
    Many,
    /// A string or a list, joined with commas (`forwarded_allow_ips`).
    Joined,
    /// One value, lower-cased (`loglevel = "INFO"`).
    Lower,
}

/// The gunicorn settings ficus implements, and the `serve` argument each one sets.
const IMPLEMENTED: &[(&str, &str, Shape)] = &[
    ("wsgi_app", "app", Shape::One),
    ("bind", "bind", Shape::Many),
    ("workers", "workers", Shape::One),
    ("threads", "threads", Shape::One),
    ("timeout", "timeout", Shape::One),
    ("graceful_timeout", "graceful_timeout", Shape::One),
    ("keepalive", "keep_alive", Shape::One),
    ("max_requests", "max_requests", Shape::One),
    ("max_requests_jitter", "max_requests_jitter", Shape::One),
    ("limit_request_line", "limit_request_line", Shape::One),
    ("limit_request_fields", "limit_request_fields", Shape::One),
    (
        "limit_request_field_size",
        "limit_request_field_size",
        Shape::One,
    ),
    ("accesslog", "access_logfile", Shape::One),
    ("errorlog", "error_logfile", Shape::One),
    ("loglevel", "log_level", Shape::Lower),
    ("forwarded_allow_ips", "forwarded_allow_ips", Shape::Joined),
    ("chdir", "chdir", Shape::One),
    ("pythonpath", "pythonpath", Shape::One),
    ("raw_env", "raw_env", Shape::Many),
    ("pidfile", "pid", Shape::One),
    ("umask", "umask", Shape::One),
    ("certfile", "certfile", Shape::One),
    ("reload", "reload", Shape::One),
    ("reload_extra_files", "reload_extra_files", Shape::Many),
    ("keyfile", "keyfile", Shape::One),
];

/// Every setting gunicorn 27.0.1 knows (`gunicorn.config.KNOWN_SETTINGS`): a file's other names
/// are its own helpers and imports, which gunicorn ignores too.
const GUNICORN_SETTINGS: &[&str] = &[
    "config",
    "wsgi_app",
    "bind",
    "backlog",
    "workers",
    "worker_class",
    "threads",
    "worker_connections",
    "max_requests",
    "max_requests_jitter",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "limit_request_line",
    "limit_request_fields",
    "limit_request_field_size",
    "reload",
    "reload_engine",
    "reload_extra_files",
    "spew",
    "check_config",
    "print_config",
    "preload_app",
    "sendfile",
    "reuse_port",
    "chdir",
    "daemon",
    "raw_env",
    "pidfile",
    "worker_tmp_dir",
    "user",
    "group",
    "umask",
    "initgroups",
    "tmp_upload_dir",
    "secure_scheme_headers",
    "forwarded_allow_ips",
    "accesslog",
    "disable_redirect_access_to_syslog",
    "access_log_format",
    "errorlog",
    "loglevel",
    "capture_output",
    "logger_class",
    "logconfig",
    "logconfig_dict",
    "logconfig_json",
    "syslog_addr",
    "syslog",
    "syslog_prefix",
    "syslog_facility",
    "enable_stdio_inheritance",
    "statsd_host",
    "dogstatsd_tags",
    "statsd_prefix",
    "enable_backlog_metric",
    "proc_name",
    "default_proc_name",
    "pythonpath",
    "paste",
    "on_starting",
    "on_reload",
    "when_ready",
    "pre_fork",
    "post_fork",
    "post_worker_init",
    "worker_int",
    "worker_abort",
    "pre_exec",
    "pre_request",
    "post_request",
    "child_exit",
    "worker_exit",
    "nworkers_changed",
    "on_exit",
    "ssl_context",
    "proxy_protocol",
    "proxy_allow_ips",
    "protocol",
    "uwsgi_allow_ips",
    "keyfile",
    "certfile",
    "ssl_version",
    "cert_reqs",
    "ca_certs",
    "suppress_ragged_eofs",
    "do_handshake_on_connect",
    "ciphers",
    "http_protocols",
    "http2_cleartext",
    "http2_max_concurrent_streams",
    "http2_initial_window_size",
    "http2_max_frame_size",
    "http2_max_header_list_size",
    "raw_paste_global_conf",
    "permit_obsolete_folding",
    "strip_header_spaces",
    "permit_unconventional_http_method",
    "permit_unconventional_http_version",
    "casefold_http_method",
    "forwarder_headers",
    "header_map",
    "asgi_loop",
    "asgi_lifespan",
    "asgi_disconnect_grace_period",
    "websocket_max_message_size",
    "http_parser",
    "root_path",
    "dirty_apps",
    "dirty_workers",
    "dirty_timeout",
    "dirty_threads",
    "dirty_graceful_timeout",
    "on_dirty_starting",
    "dirty_post_fork",
    "dirty_worker_init",
    "dirty_worker_exit",
    "control_socket",
    "control_socket_mode",
    "control_socket_disable",
];

/// Runs the file's Python and writes the gunicorn settings it defines to the file in argv[3].
const READER: &str = r#"
import importlib, importlib.machinery, importlib.util, json, os, sys, traceback
location, known, out = sys.argv[1], set(sys.argv[2].split(",")), sys.argv[3]
def plain(v):
    simple = (bool, int, float, str)
    if v is None or isinstance(v, simple):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, simple) for x in v):
        return list(v)
    if callable(v):
        return {"callable": getattr(v, "__name__", repr(v))}
    return {"repr": repr(v)}
try:
    if location.startswith("python:"):
        mod = importlib.import_module(location[len("python:"):])
    else:
        name = location[len("file:"):] if location.startswith("file:") else location
        loader = importlib.machinery.SourceFileLoader("__config__", name)
        spec = importlib.util.spec_from_file_location("__config__", name, loader=loader)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["__config__"] = mod
        spec.loader.exec_module(mod)
    result = {"settings": {k: plain(v) for k, v in vars(mod).items() if k in known}}
except BaseException as e:
    # The traceback from the file's own frames on: the reader's are no concern of the user's.
    own = getattr(mod, "__file__", None) if "mod" in dir() else None
    def is_own(name):
        return own is not None and os.path.abspath(name) == os.path.abspath(own)
    tb = e.__traceback__
    while tb is not None and not is_own(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    lines = [f.lineno for f in traceback.extract_tb(tb) if is_own(f.filename)]
    where = " (line %d)" % lines[-1] if lines and not isinstance(e, SyntaxError) else ""
    shown = "".join(traceback.format_exception(type(e), e, tb))
    result = {"error": "%s: %s%s" % (type(e).__name__, e, where), "traceback": shown}
with open(out, "w") as f:
    json.dump(result, f)
"#;

/// The command line, with gunicorn's layers under it when the command is `serve`.
pub(crate) fn parse(args: Vec<OsString>) -> Result<Cli, ParseError> {
    let plain = Cli::command().try_get_matches_from(&args)?;
    let Some((name @ ("serve" | "runserver"), given)) = plain.subcommand() else {
        return Ok(Cli::from_arg_matches(&plain)?);
    };
    let program = args.first().cloned().unwrap_or_else(|| "ficus".into());
    if std::env::var_os(crate::supervisor::WORKER_FDS).is_some()
        && let Some(json) = std::env::var_os(WORKER_LAYERS)
    {
        let defaults: Vec<(String, Vec<String>)> =
            serde_json::from_str(&json.to_string_lossy()).unwrap_or_default();
        let mut command = Cli::command();
        for (id, values) in &defaults {
            command = with_defaults(command, name, id, values.clone());
        }
        return Ok(Cli::from_arg_matches(
            &command.try_get_matches_from(&args)?,
        )?);
    }
    let mut env_layers = Vec::new();
    for var in ENV_ARGS {
        let Some(text) = std::env::var_os(var) else {
            continue;
        };
        let text = text.to_string_lossy();
        let tokens = shlex::split(&text).ok_or(ParseError::Quoting { var })?;
        env_layers.push((var, tokens));
    }
    let layered = |command: &clap::Command, origin: &str, tokens: &[String]| {
        let mut argv = vec![program.clone(), name.into()];
        argv.extend(tokens.iter().map(OsString::from));
        command
            .clone()
            .try_get_matches_from(argv)
            .map_err(|err| ParseError::Layer {
                origin: origin.to_owned(),
                complaint: first_line(&err),
            })
    };

    // Where the file is, and which venv runs it: from the command line, else the variables.
    let mut command = Cli::command();
    let mut from_env = Vec::new();
    for (var, tokens) in &env_layers {
        from_env.push(layered(&command, var, tokens)?);
    }
    // The layer that names `id` (the command line, else the later variable first).
    let naming = |id: &str| {
        std::iter::once(given)
            .chain(
                from_env
                    .iter()
                    .rev()
                    .filter_map(|m| m.subcommand_matches(name)),
            )
            .find(|m| m.value_source(id) == Some(ValueSource::CommandLine))
    };
    let location = naming("config")
        .and_then(|m| m.get_one::<String>("config").cloned())
        .or_else(|| {
            std::path::Path::new(DEFAULT_FILE)
                .is_file()
                .then(|| DEFAULT_FILE.to_owned())
        });
    let mut notes = Vec::new();
    let mut applied = Vec::new();
    if let Some(location) = location {
        let venv = naming("venv").and_then(|m| m.get_one::<PathBuf>("venv").cloned());
        let settings = read_file(&location, venv)?;
        let mut ignored = Vec::new();
        for (defined, value) in &settings {
            let Some((setting, id, shape)) = IMPLEMENTED.iter().find(|(s, _, _)| s == defined)
            else {
                if defined != "config" {
                    ignored.push(defined.as_str());
                }
                continue;
            };
            let bad = || ParseError::BadValue {
                location: location.clone(),
                setting,
                value: shown(value),
            };
            if let Some(values) = values_of(value, *shape).ok_or_else(bad)? {
                command = with_defaults(command, name, id, values.clone());
                applied.push(((*id).to_owned(), values));
            }
        }
        if !ignored.is_empty() {
            notes.push(format!(
                "{location}: ficus does not implement {}; ignored",
                ignored.join(", ")
            ));
        }
        layered(&command, &location, &[])?;
    }
    for (var, tokens) in &env_layers {
        let matches = layered(&command, var, tokens)?;
        let Some(serve) = matches.subcommand_matches(name) else {
            continue;
        };
        let ids: Vec<String> = serve.ids().map(|id| id.as_str().to_owned()).collect();
        for id in ids {
            if serve.value_source(&id) != Some(ValueSource::CommandLine) {
                continue;
            }
            let values: Vec<String> = serve
                .get_raw(&id)
                .into_iter()
                .flatten()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            command = with_defaults(command, name, &id, values.clone());
            applied.push((id, values));
        }
    }
    let matches = command.try_get_matches_from(&args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    let serve = match &mut cli.command {
        Command::Serve(serve) => Some(&mut **serve),
        Command::Runserver(runserver) => Some(&mut runserver.serve),
        _ => None,
    };
    if let Some(serve) = serve {
        serve.layer_notes = notes;
        serve.layer_defaults = applied;
    }
    Ok(cli)
}

/// A value as Python showed it: the repr of what JSON cannot hold.
fn shown(value: &Value) -> String {
    match value.get("repr").or_else(|| value.get("callable")) {
        Some(Value::String(python)) => python.clone(),
        _ => value.to_string(),
    }
}

/// The values a setting gives its argument; None for a None setting (the default stays), an
/// error for a value of the wrong kind.
fn values_of(value: &Value, shape: Shape) -> Option<Option<Vec<String>>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    if value.is_null() {
        return Some(None);
    }
    let values = match (shape, value) {
        (Shape::Many | Shape::Joined, Value::Array(items)) => {
            items.iter().map(one).collect::<Option<Vec<_>>>()?
        }
        (_, Value::Array(_)) => return None,
        (_, v) => vec![one(v)?],
    };
    Some(Some(match shape {
        Shape::Joined => vec![values.join(",")],
        Shape::Lower => values.into_iter().map(|v| v.to_lowercase()).collect(),
        Shape::One | Shape::Many => values,
    }))
}

/// The subcommand's argument `id` defaults to `values`; an environment variable that would
/// have set it no longer does (the layer is above it).
fn with_defaults(
    command: clap::Command,
    subcommand: &str,
    id: &str,
    values: Vec<String>,
) -> clap::Command {
    // clap panics on an argument it does not have; a stale or foreign id is left out instead.
    let known = command
        .find_subcommand(subcommand)
        .is_some_and(|sub| sub.get_arguments().any(|arg| arg.get_id() == id));
    if !known {
        return command;
    }
    command.mut_subcommand(subcommand, |serve| {
        serve.mut_arg(id, |arg| arg.env(None::<&str>).default_values(values))
    })
}

/// The gunicorn settings the file (or `python:MODULE`) defines, in its order.
fn read_file(location: &str, venv: Option<PathBuf>) -> Result<Vec<(String, Value)>, ParseError> {
    let file = location.strip_prefix("file:").unwrap_or(location);
    if !location.starts_with("python:") && !std::path::Path::new(file).is_file() {
        return Err(ParseError::Missing {
            location: location.to_owned(),
        });
    }
    let venv = crate::python::runtime::find_venv(venv.as_deref())?;
    let python = crate::python::runtime::check_venv(&venv)?;
    let unreadable = |reason: String| ParseError::Unreadable {
        location: location.to_owned(),
        reason,
    };
    let out = tempfile::NamedTempFile::new().map_err(|e| unreadable(e.to_string()))?;
    let status = std::process::Command::new(&python)
        .args(["-c", READER, location, &GUNICORN_SETTINGS.join(",")])
        .arg(out.path())
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| unreadable(format!("cannot run {}: {e}", python.display())))?;
    let text = std::fs::read(out.path()).map_err(|e| unreadable(e.to_string()))?;
    let result: Value = serde_json::from_slice(&text)
        .map_err(|_| unreadable(format!("its Python ended with {status} and said nothing")))?;
    if let Some(error) = result.get("error").and_then(Value::as_str) {
        let traceback = result
            .get("traceback")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Err(unreadable(format!("{error}\n{}", traceback.trim_end())));
    }
    Ok(result
        .get("settings")
        .and_then(Value::as_object)
        .map(|settings| {
            settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_implemented_setting_names_a_serve_argument_and_a_gunicorn_setting() {
        let command = Cli::command();
        let serve = command.find_subcommand("serve").expect("serve");
        for (setting, id, _) in IMPLEMENTED {
            assert!(GUNICORN_SETTINGS.contains(setting), "{setting}");
            assert!(
                serve.get_arguments().any(|a| a.get_id() == *id),
                "{setting} -> {id}"
            );
        }
    }

    #[test]
    fn python_values_become_argument_values_by_shape() {
        let v = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        let strings = |items: &[&str]| Some(Some(items.iter().map(|s| s.to_string()).collect()));
        assert_eq!(values_of(&v("3"), Shape::One), strings(&["3"]));
        assert_eq!(values_of(&v("null"), Shape::One), Some(None));
        assert_eq!(
            values_of(&v(r#"["a", "b"]"#), Shape::Many),
            strings(&["a", "b"])
        );
        assert_eq!(values_of(&v(r#""a""#), Shape::Many), strings(&["a"]));
        assert_eq!(
            values_of(&v(r#"["10.0.0.1", "10.0.0.2"]"#), Shape::Joined),
            strings(&["10.0.0.1,10.0.0.2"])
        );
        assert_eq!(
            values_of(&v(r#""DEBUG""#), Shape::Lower),
            strings(&["debug"])
        );
        assert_eq!(values_of(&v(r#"["a"]"#), Shape::One), None);
        assert_eq!(values_of(&v(r#"{"callable": "f"}"#), Shape::One), None);
    }
}
