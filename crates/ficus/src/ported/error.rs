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
    /// What Django answers with `handler400` (a `SuspiciousOperation` or `BadRequest`): a
    /// form over `DATA_UPLOAD_MAX_NUMBER_FIELDS`, say. The reason is logged, not shown.
    #[error("{0}")]
    BadRequest(String),
    /// The session was deleted while the request ran (a logout elsewhere): Django's
    /// `SessionInterrupted`, a 400.
    #[error(
        "The request's session was deleted before the request completed. The user may have logged out in a concurrent request, for example."
    )]
    SessionInterrupted,
    /// `raise Http404` (what `get_object_or_404` and an out-of-range page do): the project's
    /// 404 page for this request, as [`Templates::not_found`](super::Templates::not_found)
    /// renders it: `let tag = row.ok_or(Error::NotFound)?;`.
    #[error("not found")]
    NotFound,
    /// `raise PermissionDenied` (what `@permission_required(..., raise_exception=True)` does
    /// for a user without the permission): the project's `handler403` page.
    #[error("permission denied")]
    PermissionDenied,
    /// A template did not render (a missing template, a `url()` that does not reverse).
    #[error("a template did not render: {0}")]
    Template(String),
    /// Anything else the view cannot go on from (a broken invariant), in the view's words.
    #[error("{0}")]
    Internal(String),
}

/// A response that asks the dispatcher for the project's 400 page, with the reason to log.
#[derive(Clone, Debug)]
pub(crate) struct BadRequestPage(pub(crate) String);

/// A response that asks the dispatcher for the project's 403 page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ForbiddenPage;

/// A response that asks the dispatcher for the project's 404 page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NotFoundPage;

/// An error page rendered as Django's `@requires_csrf_token` views render theirs
/// (`page_not_found`, `permission_denied`): the CSRF cookie a `{% csrf_token %}` in it asked
/// for, and its `Vary: Cookie`, are written by the view, before any middleware adds its headers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequiresCsrfToken;

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
            Error::NotFound => {
                let mut response = http::StatusCode::NOT_FOUND.into_response();
                response.extensions_mut().insert(NotFoundPage);
                response
            }
            Error::PermissionDenied => {
                let mut response = http::StatusCode::FORBIDDEN.into_response();
                response.extensions_mut().insert(ForbiddenPage);
                response
            }
            Error::BadRequest(_) | Error::SessionInterrupted => {
                let mut response = http::StatusCode::BAD_REQUEST.into_response();
                response
                    .extensions_mut()
                    .insert(BadRequestPage(self.to_string()));
                response
            }
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
    fn not_found_asks_the_dispatcher_for_the_projects_404_page() {
        let response = Error::NotFound.into_response();
        assert_eq!(response.status(), 404);
        assert!(response.extensions().get::<NotFoundPage>().is_some());
    }

    #[test]
    fn a_full_python_pool_stays_a_503() {
        let err = Error::from(PythonError::Pool(crate::python::pool::PoolError::Full));
        assert_eq!(err.into_response().status(), 503);
    }
}
