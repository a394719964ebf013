//! `ficus init [DIR]`: starts a migration beside an existing Django project. It finds the
//! project's settings and WSGI modules the way `manage.py` and `settings.py` name them, and
//! writes the files of a migration package (Cargo.toml on the ficus engine, the build script,
//! `src/`, `tests/requests/`, routes.toml, a Makefile with `make run` and `make test`, a
//! .gitignore and a README) next to `manage.py`.
//!
//! It never overwrites: a file that exists is reported and left alone. It starts no Python of
//! its own; the venv, when there is one, is asked whether it has Django.

use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

use crate::config::absolute;

/// The pyo3 the engine is built with. The migration depends on it directly (pyo3's build
/// configuration, which its build script reads, requires that; its Python calls use it), at the
/// same version, as does its `pyo3-build-config` (a test holds them together).
const PYO3: &str = "0.30";
/// sqlx, for `#[derive(sqlx::FromRow)]` row types (the derive names the crate itself).
const SQLX: &str = "0.8";
/// The `minijinja-embed` the engine's templates are embedded with (the workspace's).
const MINIJINJA_EMBED: &str = "2";
/// Cargo's environment for the build: the system libsqlite3, the one Python's sqlite3 module
/// loads, not sqlx's bundled copy (`db::DbError::TwoSqlites`). The workspace's own
/// `.cargo/config.toml` says the same (a test holds them together).
const CARGO_ENV: &str = "LIBSQLITE3_SYS_USE_PKG_CONFIG = \"1\"";

/// Why a migration cannot be started here; each says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    #[error(
        "{0} has no manage.py; run `ficus init` in your Django project's directory (where manage.py is), or pass that directory"
    )]
    NoManagePy(String),
    #[error(
        "{0} does not set DJANGO_SETTINGS_MODULE (os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", ...)); add it, as `django-admin startproject` writes it"
    )]
    NoSettings(String),
    #[error(
        "the settings module `{module}` is not in {dir} (no {module_path}.py or {module_path}/__init__.py); run `ficus init` where manage.py finds it"
    )]
    SettingsMissing {
        module: String,
        module_path: String,
        dir: String,
    },
    #[error(
        "no WSGI application found: {settings} sets no WSGI_APPLICATION and there is no {wsgi}; add one, as `django-admin startproject` writes it"
    )]
    NoWsgi { settings: String, wsgi: String },
    #[error(
        "the virtualenv {0} has no Django; install the project's requirements into it (`{0}/bin/python -m pip install -r requirements.txt`), or pass another with --venv"
    )]
    NoDjango(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What `ficus init` learnt of the project.
#[derive(Debug, PartialEq, Eq)]
struct Found {
    /// The settings module, as `mysite.settings`.
    settings: String,
    /// The WSGI application, as `mysite.wsgi:application`.
    wsgi: String,
}

/// What `ficus init` runs with, resolved from the command line.
#[derive(Debug, Clone)]
pub(crate) struct InitOptions {
    /// The directory holding `manage.py`.
    pub(crate) dir: PathBuf,
    /// Where the new migration takes the engine from.
    pub(crate) engine: EngineSource,
    /// The venv to check for Django (else `.venv` or `venv` beside `manage.py`, when present).
    pub(crate) venv: Option<PathBuf>,
}

/// Where a new migration's `Cargo.toml` takes the engine from.
#[derive(Debug, Clone)]
pub(crate) enum EngineSource {
    /// This checkout of the engine (the default).
    ThisCheckout,
    /// A path dependency (`--ficus-path`).
    Path(PathBuf),
    /// A git dependency (`--ficus-git`).
    Git(String),
}

/// `ficus init`: writes the migration's files beside `manage.py`, prints what it wrote and what
/// it left alone, and what to do next.
pub(crate) fn run(args: InitOptions) -> anyhow::Result<()> {
    let dir = absolute(&args.dir);
    let found = inspect(&dir)?;
    if let Some(venv) = venv(&dir, args.venv.as_deref()) {
        check_django(&venv)?;
    }
    let engine = match &args.engine {
        EngineSource::Git(url) => format!("{{ git = \"{url}\" }}"),
        EngineSource::Path(path) => format!("{{ path = \"{}\" }}", absolute(path).display()),
        EngineSource::ThisCheckout => format!("{{ path = \"{}\" }}", env!("CARGO_MANIFEST_DIR")),
    };
    let project = project_name(&dir, &found);
    let files = files(&dir, &found, &project, &engine);
    let mut written = Vec::new();
    let mut kept = Vec::new();
    for (name, text) in &files {
        let path = dir.join(name);
        if path.exists() {
            kept.push(*name);
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| InitError::Write {
                path: parent.display().to_string(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| InitError::Write {
            path: path.display().to_string(),
            source,
        })?;
        written.push(*name);
    }
    println!(
        "Started a ficus migration of {} ({}, {}) in {}",
        project,
        found.settings,
        found.wsgi,
        dir.display()
    );
    for name in &written {
        println!("  wrote      {name}");
    }
    for name in &kept {
        println!("  left alone {name} (it exists)");
    }
    println!(
        "Next: `make routes` lists the project's URLs, all \"not listed\"; port the first one \
         as README.md (or, if yours was kept, the ficus guide migration.md) says."
    );
    Ok(())
}

/// The settings and WSGI modules of the project in `dir`.
fn inspect(dir: &Path) -> Result<Found, InitError> {
    let manage = dir.join("manage.py");
    if !manage.is_file() {
        return Err(InitError::NoManagePy(dir.display().to_string()));
    }
    let manage_text = read(&manage)?;
    let settings = settings_module(&manage_text)
        .ok_or_else(|| InitError::NoSettings(manage.display().to_string()))?;
    let module_path = settings.replace('.', "/");
    let settings_file = [
        dir.join(format!("{module_path}.py")),
        dir.join(&module_path).join("__init__.py"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or_else(|| InitError::SettingsMissing {
        module: settings.clone(),
        module_path: module_path.clone(),
        dir: dir.display().to_string(),
    })?;
    let package = settings.rsplit_once('.').map_or("", |(package, _)| package);
    let wsgi = match wsgi_application(&read(&settings_file)?) {
        Some(wsgi) => wsgi,
        None => {
            let module = if package.is_empty() {
                "wsgi".to_owned()
            } else {
                format!("{package}.wsgi")
            };
            let file = dir.join(format!("{}.py", module.replace('.', "/")));
            if !file.is_file() {
                return Err(InitError::NoWsgi {
                    settings: settings_file.display().to_string(),
                    wsgi: file.display().to_string(),
                });
            }
            format!("{module}:application")
        }
    };
    Ok(Found { settings, wsgi })
}

/// `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")` in manage.py.
fn settings_module(manage: &str) -> Option<String> {
    let pattern = Regex::new(
        r#"(?m)^[^#\n]*setdefault\(\s*["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']"#,
    )
    .ok()?;
    Some(pattern.captures(manage)?.get(1)?.as_str().to_owned())
}

/// `WSGI_APPLICATION = "mysite.wsgi.application"` in the settings, as `mysite.wsgi:application`.
fn wsgi_application(settings: &str) -> Option<String> {
    let pattern = Regex::new(r#"(?m)^WSGI_APPLICATION\s*=\s*["']([\w.]+)\.(\w+)["']"#).ok()?;
    let captures = pattern.captures(settings)?;
    Some(format!(
        "{}:{}",
        captures.get(1)?.as_str(),
        captures.get(2)?.as_str()
    ))
}

/// The venv to check: --venv, else $VIRTUAL_ENV, else the project's `.venv`; None when there
/// is none yet (the Makefile makes one).
fn venv(dir: &Path, flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(venv) = flag {
        return Some(absolute(venv));
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(venv));
    }
    let local = dir.join(".venv");
    local.join("pyvenv.cfg").is_file().then_some(local)
}

fn check_django(venv: &Path) -> Result<(), InitError> {
    let has_django = Command::new(venv.join("bin").join("python"))
        .args(["-c", "import django"])
        .output()
        .is_ok_and(|out| out.status.success());
    if has_django {
        Ok(())
    } else {
        Err(InitError::NoDjango(venv.display().to_string()))
    }
}

/// The package's name: the project package (the settings module's first part), or the
/// directory's name.
fn project_name(dir: &Path, found: &Found) -> String {
    let first = found.settings.split('.').next().unwrap_or_default();
    let name = if first.is_empty() || first == "settings" || first == "config" {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        first.to_owned()
    };
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.trim_matches('_') {
        "" => "site".to_owned(),
        name if name.starts_with(|c: char| c.is_ascii_digit()) => format!("site_{name}"),
        name => name.to_owned(),
    }
}

/// Every file of a new migration, by path relative to the project.
fn files(dir: &Path, found: &Found, project: &str, engine: &str) -> Vec<(&'static str, String)> {
    let crate_name = format!("{project}_migration");
    let (requirements, install) = if dir.join("requirements.txt").is_file() {
        ("requirements.txt", "-r requirements.txt")
    } else if dir.join("pyproject.toml").is_file() {
        ("pyproject.toml", "-e .")
    } else {
        ("manage.py", "django")
    };
    vec![
        (
            "Cargo.toml",
            format!(
                "# The migration of {project} to Rust: its ported views and the `ficus` binary built with them.\n\
                 [package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
                 [lib]\npath = \"src/lib.rs\"\n\n[[bin]]\nname = \"ficus\"\npath = \"src/main.rs\"\n\n\
                 [dependencies]\nficus = {engine}\npyo3 = \"{PYO3}\"\n\
                 serde = {{ version = \"1\", features = [\"derive\"] }}\n\
                 serde_json = {{ version = \"1\", features = [\"preserve_order\"] }}\n\
                 sqlx = {{ version = \"{SQLX}\", default-features = false, features = [\"derive\"] }}\n\
                 minijinja-embed = \"{MINIJINJA_EMBED}\"\n\n\
                 [build-dependencies]\npyo3-build-config = \"{PYO3}\"\nminijinja-embed = \"{MINIJINJA_EMBED}\"\n\n\
                 # Its own workspace, even inside another one.\n[workspace]\n",
                package = crate_name.replace('_', "-"),
            ),
        ),
        (
            ".cargo/config.toml",
            format!(
                "# Link the system libsqlite3 (the shared library Python's sqlite3 module loads) instead\n\
                 # of sqlx's bundled copy: one process, one SQLite, or Django and the Rust handlers\n\
                 # do not see each other's locks on the database file.\n[env]\n{CARGO_ENV}\n"
            ),
        ),
        (
            "build.rs",
            "//! Bakes libpython's path into the `ficus` binary's rpath, so it runs without\n\
             //! LD_LIBRARY_PATH, and embeds the ported templates (every `.html` below\n\
             //! `src/handlers/`, named by its path from there) in the binary.\n\n\
             fn main() {\n    minijinja_embed::embed_templates!(\"src/handlers\", &[\".html\"][..]);\n    \
             pyo3_build_config::add_libpython_rpath_link_args();\n    \
             println!(\"cargo:rerun-if-env-changed=PYO3_PYTHON\");\n}\n"
                .to_owned(),
        ),
        (
            "src/main.rs",
            format!(
                "//! The `ficus` command of this migration: the engine, with this project's ported views.\n\n\
                 fn main() -> std::process::ExitCode {{\n    ficus::main({crate_name}::handlers::registry())\n}}\n"
            ),
        ),
        (
            "src/lib.rs",
            format!(
                "//! The migration of {project} to Rust: its ported views, one module per Django app.\n\n\
                 pub mod handlers;\n"
            ),
        ),
        (
            "src/handlers/mod.rs",
            "//! The ported views, one file per Django app they come from (`notes.rs` for the `notes`\n\
             //! app), and the registry routes.toml names them by (`notes::detail`).\n\n\
             use ficus::prelude::*;\n\
             // The embedded templates' loader names `minijinja`: the engine's, so the types agree.\n\
             use ficus::minijinja;\n\n\
             /// Every handler routes.toml may name: add each as `app::view`. Ported templates\n\
             /// sit beside the handlers of their app (`notes/detail.html`), embedded by build.rs.\n\
             pub fn registry() -> Registry {\n    registry![]\n        \
             .templates(|env| minijinja_embed::load_templates!(*env))\n}\n"
                .to_owned(),
        ),
        (
            "tests/requests/README.md",
            include_str!("requests.md.in").to_owned(),
        ),
        (
            "routes.toml",
            format!(
                "# Which routes of {project} are served by Rust handlers; everything else goes to Django.\n\n\
                 [django]\nwsgi = \"{wsgi}\"\nsettings = \"{settings}\"\npath = \".\"\n\n\
                 # [[route]]\n# path = \"/api/notes/<int:pk>/\"   # Django path syntax, from urls.py\n\
                 # name = \"note-detail\"              # the Django URL name\n\
                 # handler = \"notes::detail\"         # registered in src/handlers/mod.rs\n\
                 # mode = \"shadow\"                   # rust | canary | shadow | django (off)\n",
                wsgi = found.wsgi,
                settings = found.settings,
            ),
        ),
        (
            "Makefile",
            include_str!("Makefile.in")
                .replace("@REQUIREMENTS_FILE@", requirements)
                .replace("@INSTALL@", install),
        ),
        (
            ".gitignore",
            "/target\n/.venv\n.ficus/\nficus-shadow.jsonl*\nficus-recorded.jsonl*\n".to_owned(),
        ),
        (
            "README.md",
            include_str!("README.md.in")
                .replace("@PROJECT@", project)
                .replace("@REQUIREMENTS@", requirements),
        ),
    ]
}

fn read(path: &Path) -> Result<String, InitError> {
    std::fs::read_to_string(path).map_err(|source| InitError::Read {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_manage_py_as_startproject_writes_it() {
        let manage =
            "def main():\n    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n";
        assert_eq!(settings_module(manage).as_deref(), Some("mysite.settings"));
        let commented = "# os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"old.settings\")\n";
        assert_eq!(settings_module(commented), None);
    }

    #[test]
    fn wsgi_application_setting_names_module_and_attribute() {
        let settings = "DEBUG = True\nWSGI_APPLICATION = \"config.wsgi.app\"\n";
        assert_eq!(
            wsgi_application(settings).as_deref(),
            Some("config.wsgi:app")
        );
        assert_eq!(wsgi_application("DEBUG = True\n"), None);
    }

    #[test]
    fn a_migration_uses_the_engines_pyo3() {
        let manifest = include_str!("../../../../Cargo.toml");
        for line in [
            format!("pyo3 = {{ version = \"{PYO3}\" }}"),
            format!("pyo3-build-config = \"{PYO3}\""),
            format!("sqlx = {{ version = \"{SQLX}\""),
            format!("minijinja-embed = \"{MINIJINJA_EMBED}\""),
        ] {
            assert!(
                manifest.contains(&line),
                "init writes what the workspace does not: `{line}`"
            );
        }
    }

    #[test]
    fn a_migration_links_sqlite_as_the_engine_does() {
        let config = include_str!("../../../../.cargo/config.toml");
        assert!(
            config.lines().any(|line| line == CARGO_ENV),
            "init writes what the workspace does not: `{CARGO_ENV}`"
        );
    }

    #[test]
    fn a_package_name_is_a_crate_name() {
        let found = |settings: &str| Found {
            settings: settings.to_owned(),
            wsgi: String::new(),
        };
        assert_eq!(
            project_name(Path::new("/x/My Site"), &found("mysite.settings")),
            "mysite"
        );
        assert_eq!(
            project_name(Path::new("/x/My-Site"), &found("config.settings")),
            "my_site"
        );
        assert_eq!(
            project_name(Path::new("/x/2go"), &found("settings")),
            "site_2go"
        );
    }
}
