//! `request.POST` for a handler: `Form(form): Form` parses an `application/x-www-form-urlencoded`
//! body under `DATA_UPLOAD_MAX_MEMORY_SIZE` and `DATA_UPLOAD_MAX_NUMBER_FIELDS`.
//!
//! Over a limit the answer is Django's: the project's 400 page (`handler400`), with Django's
//! message logged. A multipart body's fields are its `request.POST` (its files are
//! `Multipart`'s); a body of another type is an empty form, as `request.POST` is for JSON.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use ficus_django::forms::{FormData, Limits};

use super::state_of;
use super::upload::{self, Multipart};
use crate::ported::error::Error;

/// The form fields of the request body.
#[derive(Debug, Clone, Default)]
pub struct Form(pub FormData);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;
    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let state = state_of(&parts).map_err(IntoResponse::into_response)?;
        if upload::is_multipart(state.facts.content_type.as_deref().unwrap_or("")) {
            let request = Request::from_parts(parts, body);
            let Multipart(uploads) = Multipart::from_request(request, &()).await?;
            return Ok(Form(uploads.fields));
        }
        let uploads = &state.web.settings.uploads;
        let content_type = state.facts.content_type.as_deref().unwrap_or("");
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return Ok(Form(FormData::default()));
        }
        let bytes = body
            .collect()
            .await
            .map_err(|e| {
                Error::internal(format!("the request body could not be read: {e}")).into_response()
            })?
            .to_bytes();
        let limits = Limits {
            max_memory_size: uploads.data_upload_max_memory_size,
            max_number_fields: uploads.data_upload_max_number_fields,
        };
        FormData::parse(&bytes, limits)
            .map(Form)
            .map_err(|limit| Error::BadRequest(limit.to_string()).into_response())
    }
}
