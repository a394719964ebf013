//! Resolves what to serve: the command line, completed by the `[django]` section of routes.toml.
//!
//! It reads files and checks them; it does not start Python or bind sockets. Route entries
//! (`[[route]]`) are not interpreted here.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read the routes file {path}: {source}")]
    RoutesUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} line {line}: {message}", path.display())]
    RoutesInvalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "no application to serve: pass one (`ficus serve mysite.wsgi`), set `wsgi` under [django] in routes.toml, or run from the directory of the project's manage.py"
    )]
    NoApp,
    #[error(
        "APP `{0}` is not of the form `module` or `module:attribute` (for example `mysite.wsgi:application`)"
    )]
    BadApp(String),
    #[error("--chdir {path}: {source}")]
    Chdir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The `[django]` section of routes.toml.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DjangoSection {
    pub wsgi: Option<String>,
    pub settings: Option<String>,
    /// A directory put on sys.path, relative to the routes file.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct RoutesFile {
    #[serde(default)]
    django: DjangoSection,
}

/// `module:attr` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppRef {
    pub module: String,
    pub attr: String,
}

impl AppRef {
    pub(crate) fn parse(text: &str) -> Result<Self, ConfigError> {
        let (module, attr) = text.split_once(':').unwrap_or((text, "application"));
        let valid = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|part| {
                    !part.is_empty()
                        && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                        && !part.starts_with(|c: char| c.is_ascii_digit())
                })
        };
        if !valid(module) || !valid(attr) {
            return Err(ConfigError::BadApp(text.to_owned()));
        }
        Ok(Self {
            module: module.to_owned(),
            attr: attr.to_owned(),
        })
    }
}

impl std::fmt::Display for AppRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.module, self.attr)
    }
}

/// Where the project is and how to load it, as the command line gives it (clap's types stay in
/// `cli`; this is what they resolve into).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProjectOptions {
    /// The WSGI application, `module:attr` or `module`; else routes.toml's `[django] wsgi`.
    pub(crate) app: Option<String>,
    /// The routes file; else ./routes.toml when it exists.
    pub(crate) routes: Option<PathBuf>,
    /// The directory to change to before loading the application.
    pub(crate) chdir: Option<PathBuf>,
    /// Comma-separated directories for sys.path.
    pub(crate) pythonpath: Option<String>,
    /// The virtualenv; else $VIRTUAL_ENV, else ./.venv.
    pub(crate) venv: Option<PathBuf>,
    /// The Django settings module.
    pub(crate) settings: Option<String>,
}

/// Everything the Python side needs to load the application.
#[derive(Debug, Clone)]
pub(crate) struct AppConfig {
    pub app: AppRef,
    pub settings: Option<String>,
    /// Absolute directories to prepend to sys.path, in order.
    pub python_path: Vec<PathBuf>,
    /// The routes file in use (absolute), when there is one.
    pub routes_file: Option<PathBuf>,
}

/// Reads the routes file (when there is one), changes directory if asked, and resolves the app.
pub(crate) fn resolve(args: &ProjectOptions) -> Result<AppConfig, ConfigError> {
    let (routes_path, explicit) = match &args.routes {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("routes.toml"), false),
    };
    let routes_path = absolute(&routes_path);
    let routes_file = (explicit || routes_path.is_file()).then(|| routes_path.clone());
    let django = match &routes_file {
        Some(path) => load_django_section(path)?,
        None => DjangoSection::default(),
    };

    let mut python_path = Vec::new();
    if let Some(dir) = &django.path {
        let base = routes_path.parent().unwrap_or(Path::new("."));
        python_path.push(base.join(dir));
    }

    if let Some(dir) = &args.chdir {
        std::env::set_current_dir(dir).map_err(|source| ConfigError::Chdir {
            path: dir.clone(),
            source,
        })?;
    }
    // gunicorn puts the working directory on sys.path, so `ficus serve mysite.wsgi` run from the
    // project directory finds `mysite`.
    if let Ok(cwd) = std::env::current_dir() {
        python_path.insert(0, cwd);
    }
    if let Some(dirs) = &args.pythonpath {
        for dir in dirs.split(',').filter(|d| !d.is_empty()) {
            python_path.insert(0, absolute(Path::new(dir)));
        }
    }

    let project = from_manage_py();
    let app_text = args
        .app
        .clone()
        .or(django.wsgi)
        .or_else(|| project.as_ref().map(|(wsgi, _)| wsgi.clone()))
        .ok_or(ConfigError::NoApp)?;
    Ok(AppConfig {
        app: AppRef::parse(&app_text)?,
        settings: args
            .settings
            .clone()
            .or(django.settings)
            .or_else(|| project.map(|(_, settings)| settings)),
        python_path,
        routes_file,
    })
}

/// In a Django project's directory with nothing else said, what `manage.py runserver` serves:
/// the `wsgi` module beside the settings module manage.py names (`mysite.settings` →
/// `mysite.wsgi`; `config.settings.dev` → `config.wsgi`), and those settings.
fn from_manage_py() -> Option<(String, String)> {
    let text = std::fs::read_to_string("manage.py").ok()?;
    let pattern =
        regex::Regex::new(r#"DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][\w.]*)["']"#).ok()?;
    let settings = pattern.captures(&text)?.get(1)?.as_str().to_owned();
    let mut package = settings.as_str();
    while let Some((parent, _)) = package.rsplit_once('.') {
        package = parent;
        let wsgi = Path::new(&package.replace('.', "/")).join("wsgi.py");
        if wsgi.is_file() {
            return Some((format!("{package}.wsgi"), settings));
        }
    }
    None
}

fn load_django_section(path: &Path) -> Result<DjangoSection, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::RoutesUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let file: RoutesFile = toml::from_str(&text).map_err(|e| ConfigError::RoutesInvalid {
        path: path.to_owned(),
        line: e.span().map_or(1, |span| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        }),
        message: e.message().trim_end().to_owned(),
    })?;
    Ok(file.django)
}

/// The path made absolute against the working directory (as given when that fails).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_without_attribute_means_application() {
        let app = AppRef::parse("legacy.wsgi").unwrap();
        assert_eq!(app.module, "legacy.wsgi");
        assert_eq!(app.attr, "application");
    }

    #[test]
    fn app_with_attribute_is_split() {
        let app = AppRef::parse("legacy.wsgi:app").unwrap();
        assert_eq!(
            (app.module.as_str(), app.attr.as_str()),
            ("legacy.wsgi", "app")
        );
    }

    #[test]
    fn malformed_app_is_refused() {
        for bad in [
            "",
            "legacy..wsgi",
            "legacy.wsgi:",
            "legacy/wsgi",
            "1abc",
            "a:b:c",
        ] {
            assert!(AppRef::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
