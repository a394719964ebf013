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

use super::settings::UploadSettings;
use super::state_of;
use super::upload::{self, Multipart};
use crate::ported::error::Error;

/// The form fields of the request body.
#[derive(Debug, Clone, Default)]
pub struct Form(pub FormData);

/// `request.POST` as the CSRF check already read it, so the handler's `Form` does not read and
/// parse the body a second time.
#[derive(Debug, Clone)]
pub(crate) struct ParsedForm(pub(crate) FormData);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;
    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        if let Some(ParsedForm(form)) = parts.extensions.remove::<ParsedForm>() {
            return Ok(Form(form));
        }
        let state = state_of(&parts).map_err(IntoResponse::into_response)?;
        let content_type = state.facts.content_type.as_deref().unwrap_or("");
        if upload::is_multipart(content_type) {
            let request = Request::from_parts(parts, body);
            let Multipart(uploads) = Multipart::from_request(request, &()).await?;
            return Ok(Form(uploads.fields));
        }
        if !is_urlencoded(content_type) {
            return Ok(Form(FormData::default()));
        }
        read_urlencoded(body, &state.web.settings.uploads)
            .await
            .map(|(_, form)| Form(form))
            .map_err(IntoResponse::into_response)
    }
}

/// Whether a body is `application/x-www-form-urlencoded`, which `request.POST` parses.
pub(crate) fn is_urlencoded(content_type: &str) -> bool {
    content_type.starts_with("application/x-www-form-urlencoded")
}

/// An urlencoded body read under `DATA_UPLOAD_MAX_MEMORY_SIZE` (never more than the limit and
/// one byte held) and parsed under `DATA_UPLOAD_MAX_NUMBER_FIELDS`: its bytes and its fields,
/// or Django's 400.
pub(crate) async fn read_urlencoded(
    body: axum::body::Body,
    uploads: &UploadSettings,
) -> Result<(bytes::Bytes, FormData), Error> {
    let held = uploads
        .data_upload_max_memory_size
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX))
        .saturating_add(1);
    let bytes = http_body_util::Limited::new(body, held)
        .collect()
        .await
        .map_err(|err| Error::BadRequest(format!("the request body could not be read: {err}")))?
        .to_bytes();
    let limits = Limits {
        max_memory_size: uploads.data_upload_max_memory_size,
        max_number_fields: uploads.data_upload_max_number_fields,
    };
    let form =
        FormData::parse(&bytes, limits).map_err(|limit| Error::BadRequest(limit.to_string()))?;
    Ok((bytes, form))
}
