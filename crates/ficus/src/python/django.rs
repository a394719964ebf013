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

fn module(py: Python<'_>) -> Result<Bound<'_, PyModule>, InspectError> {
    let code = CString::new(SOURCE).map_err(|e| InspectError(e.to_string()))?;
    PyModule::from_code(py, &code, c"ficus_django.py", c"ficus_django")
        .map_err(|e| InspectError(e.to_string()))
}

fn call(py: Python<'_>, function: &str) -> Result<String, InspectError> {
    module(py)?
        .getattr(function)
        .and_then(|f| f.call0())
        .and_then(|r| r.extract::<String>())
        .map_err(|e| InspectError(e.to_string()))
}

/// The settings ported views follow (sessions, CSRF, users, messages, uploads, templates), read
/// into the porting toolkit's own type (`ported::request::settings::WebSettings`; this layer
/// does not know it).
pub(crate) fn web<T: serde::de::DeserializeOwned>(py: Python<'_>) -> Result<T, InspectError> {
    let json = call(py, "web")?;
    serde_json::from_str(&json).map_err(|e| InspectError(e.to_string()))
}

/// `CSRF_FAILURE_VIEW`'s answer to a request refused for `reason`: status, type and body.
pub(crate) fn csrf_failure(
    py: Python<'_>,
    reason: &str,
    method: &str,
    path: &str,
) -> PyResult<(u16, String, bytes::Bytes)> {
    let module = module(py).map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.0))?;
    let (status, content_type, body): (u16, String, Vec<u8>) = module
        .getattr("csrf_failure")?
        .call1((reason, method, path))?
        .extract()?;
    Ok((status, content_type, bytes::Bytes::from(body)))
}

/// Django's `handler404` page for `path`, rendered for an anonymous request: status, type, body.
pub(crate) fn not_found_page(py: Python<'_>, path: &str) -> PyResult<(u16, String, bytes::Bytes)> {
    let module = module(py).map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.0))?;
    let (status, content_type, body): (u16, String, Vec<u8>) = module
        .getattr("not_found_page")?
        .call1((path,))?
        .extract()?;
    Ok((status, content_type, bytes::Bytes::from(body)))
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
