//! What ficus learns from the loaded Django project through `django.py`: the database settings
//! the Rust handlers share, what Django's middleware adds around a view, and the URLconf.
//!
//! It only asks; it never changes settings or the URLconf. Answers come back as JSON so the Rust
//! side is plain serde types.

use std::ffi::CString;

use pyo3::prelude::*;
use pyo3::types::PyModule;
use serde::Deserialize;

use crate::conventions::Conventions;
use crate::db::DatabaseSettings;
use crate::routes::summary::UrlPattern;

const SOURCE: &str = include_str!("django.py");

#[derive(Debug, Deserialize)]
pub(crate) struct DjangoFacts {
    pub database: DatabaseSettings,
    #[serde(flatten)]
    pub conventions: Conventions,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot inspect the Django project: {0}")]
pub(crate) struct InspectError(String);

fn call(py: Python<'_>, function: &str) -> Result<String, InspectError> {
    let fail = |e: PyErr| InspectError(e.to_string());
    let code = CString::new(SOURCE).map_err(|e| InspectError(e.to_string()))?;
    let module =
        PyModule::from_code(py, &code, c"ficus_django.py", c"ficus_django").map_err(fail)?;
    module
        .getattr(function)
        .and_then(|f| f.call0())
        .and_then(|r| r.extract::<String>())
        .map_err(fail)
}

/// Reads the settings; the application must have been loaded (django.setup() has run).
pub(crate) fn facts(py: Python<'_>) -> Result<DjangoFacts, InspectError> {
    let json = call(py, "facts")?;
    serde_json::from_str(&json).map_err(|e| InspectError(e.to_string()))
}

/// Walks the live URLconf.
pub(crate) fn url_patterns(py: Python<'_>) -> Result<Vec<UrlPattern>, InspectError> {
    let json = call(py, "url_patterns")?;
    serde_json::from_str(&json).map_err(|e| InspectError(e.to_string()))
}
