//! The error a ported view returns with `?`. Whatever would reach Django's `handler500` in the
//! view it replaces (a database error, a Python exception, a bug) is logged with its cause and
//! answered with the project's own 500 page, as Django answers it.
//!
//! A view's own error answers (the `{"error": ...}` JSON with a 4xx that a Django API view
//! returns) are not errors here: they are the view's normal output, returned as `Ok`.

use axum::response::{IntoResponse, Response};

use super::python::{PythonError, ServerError};
use crate::db::DbError;

/// A ported view's failure; `?` turns sqlx, database and Python errors into it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A query failed.
    #[error("a database query failed")]
    Database(#[from] sqlx::Error),
    /// The shared database could not be used.
    #[error("the database is not usable")]
    DatabaseSettings(#[from] DbError),
    /// A Python call raised, or the Python threads could not take it.
    #[error("a Python call failed")]
    Python(#[from] PythonError),
    /// Anything else the view cannot go on from (a broken invariant), in the view's words.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// A failure in the view's own words: `Err(Error::internal("no author for article 7"))?`.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            // The pool's own answers (503 when every Python thread is busy) stand as they are.
            Error::Python(err) => err.into_response(),
            other => {
                tracing::error!("a Rust handler failed: {}", chain(&other));
                ServerError::response()
            }
        }
    }
}

/// The error and its sources, as one line: "a database query failed: no such table: x".
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_query_is_the_projects_500_with_its_cause_kept() {
        let err = Error::from(sqlx::Error::RowNotFound);
        assert_eq!(
            chain(&err),
            "a database query failed: no rows returned by a query that expected to return at least one row"
        );
        let response = err.into_response();
        assert_eq!(response.status(), 500);
        assert!(response.extensions().get::<ServerError>().is_some());
    }

    #[test]
    fn a_full_python_pool_stays_a_503() {
        let err = Error::from(PythonError::Pool(crate::python::pool::PoolError::Full));
        assert_eq!(err.into_response().status(), 503);
    }
}
