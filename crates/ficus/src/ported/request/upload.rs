//! `request.POST` and `request.FILES` of a `multipart/form-data` body, as Django's
//! `MultiPartParser` reads them: `Multipart(upload): Multipart` in a handler.
//!
//! Each file streams to a temporary file as it arrives (Django's `TemporaryFileUploadHandler`),
//! so memory stays bounded whatever the upload's size; the temporary file is removed when the
//! `UploadedFile` is dropped, unless a `Storage` moved it into place. A body that breaks off
//! (a client leaving mid-upload) or stops matching its boundary keeps, as Django's parser
//! does, only the parts that were complete: a half-sent file is never handed on, so nothing
//! half-written is ever stored. Django's limits hold: the fields (not the files) under
//! `DATA_UPLOAD_MAX_MEMORY_SIZE`, at most `DATA_UPLOAD_MAX_NUMBER_FIELDS` fields and
//! `DATA_UPLOAD_MAX_NUMBER_FILES` files; over one, the project's 400 page.
//!
//! What must not be here: where a file ends up (that is `Storage`'s), or a whole file in memory.

use std::path::Path;

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use ficus_django::forms::FormData;
use ficus_django::storage;

use super::settings::UploadSettings;
use super::state_of;
use crate::ported::error::Error;
use crate::ported::pyjson::py_strip;

/// `django.http.multipartparser.MAX_TOTAL_HEADER_SIZE`.
const MAX_TOTAL_HEADER_SIZE: usize = 1024;

/// One uploaded file of a multipart body (`request.FILES[name]`), held in a temporary file.
#[derive(Debug)]
pub struct UploadedFile {
    name: String,
    content_type: String,
    size: u64,
    pub(crate) file: tempfile::NamedTempFile,
}

impl UploadedFile {
    /// `UploadedFile.name`: the client's file name as Django cleans it (no directories, no
    /// unprintable characters, at most 255 characters).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `UploadedFile.content_type`: the part's type, lower-cased and without parameters; empty
    /// when the client sent none.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// `UploadedFile.size`, in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where the file's bytes are until it is stored (`temporary_file_path()`).
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// The fields and files of a multipart body.
#[derive(Debug, Default)]
pub struct Uploads {
    /// `request.POST`.
    pub fields: FormData,
    files: Vec<(String, UploadedFile)>,
}

impl Uploads {
    /// `request.FILES.get(name)`: the last file sent under `name`, taken out of the body.
    pub fn take_file(&mut self, name: &str) -> Option<UploadedFile> {
        let index = self.files.iter().rposition(|(field, _)| field == name)?;
        Some(self.files.remove(index).1)
    }

    /// The names of the file fields sent, in order (`request.FILES.keys()`).
    pub fn file_fields(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(field, _)| field.as_str())
    }
}

/// The multipart body of the request: `Multipart(mut upload): Multipart`. A request of another
/// type has no fields and no files, as `request.POST` and `request.FILES` are then empty.
#[derive(Debug, Default)]
pub struct Multipart(pub Uploads);

/// The parsed body, when the CSRF check had to read it first (as Django's does, through
/// `request.POST`); the extractors take it from there.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParsedBody(pub(crate) std::sync::Arc<std::sync::Mutex<Option<Uploads>>>);

impl<S: Send + Sync> FromRequest<S> for Multipart {
    type Rejection = Response;
    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        if let Some(parsed) = parts.extensions.get::<ParsedBody>()
            && let Some(uploads) = parsed.0.lock().ok().and_then(|mut taken| taken.take())
        {
            return Ok(Multipart(uploads));
        }
        let state = state_of(&parts).map_err(IntoResponse::into_response)?;
        let content_type = state.facts.content_type.as_deref().unwrap_or("");
        if !is_multipart(content_type) {
            return Ok(Multipart::default());
        }
        parse(content_type, body, &state.web.settings.uploads)
            .await
            .map(Multipart)
            .map_err(IntoResponse::into_response)
    }
}

pub(crate) use ficus_django::forms::is_multipart;

/// `MultiPartParser(...).parse()`: the body read to its end, files to temporary files.
pub(crate) async fn parse(
    content_type: &str,
    body: axum::body::Body,
    limits: &UploadSettings,
) -> Result<Uploads, Error> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        Error::BadRequest(format!(
            "Invalid boundary in multipart: {}",
            content_type.split("boundary=").nth(1).unwrap_or("None")
        ))
    })?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut uploads = Uploads::default();
    let mut pairs = Vec::new();
    // DATA_UPLOAD_MAX_MEMORY_SIZE counts each field's name and value, plus 2 for `&=`, as the
    // urlencoded check does; files do not count.
    let mut field_bytes: u64 = 0;
    let mut file_count: u64 = 0;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => {
                tracing::debug!("a multipart body ended before its closing boundary: {err}");
                break;
            }
        };
        // MultiPartParser reads a part's headers in one chunk of MAX_TOTAL_HEADER_SIZE (1024
        // bytes, the blank line included) and refuses a longer block.
        let header_bytes: usize = field
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
            .sum();
        if header_bytes + 2 > MAX_TOTAL_HEADER_SIZE {
            return Err(Error::BadRequest(
                "Unable to parse request body: Request max total header size exceeded.".into(),
            ));
        }
        // A part without a name is skipped; a name is stripped, as the parser does.
        let Some(name) = field.name().map(|name| py_strip(name).to_owned()) else {
            continue;
        };
        // A part is a file when its disposition has a non-empty filename; `filename=""`
        // (a file input left empty) is a field.
        let file_name = field
            .file_name()
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        let Some(file_name) = file_name else {
            if let Some(max) = limits.data_upload_max_number_fields
                && pairs.len() as u64 >= max
            {
                return Err(Error::BadRequest(
                    "The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS."
                        .into(),
                ));
            }
            let mut value = Vec::new();
            while let Some(chunk) = next_chunk(&mut field).await {
                let Ok(chunk) = chunk else {
                    uploads.fields = pairs.into_iter().collect();
                    return Ok(uploads);
                };
                value.extend_from_slice(&chunk);
                if let Some(max) = limits.data_upload_max_memory_size
                    && field_bytes + (name.len() + value.len()) as u64 + 2 > max
                {
                    return Err(Error::BadRequest(
                        "Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.".into(),
                    ));
                }
            }
            field_bytes += (name.len() + value.len()) as u64 + 2;
            pairs.push((name, String::from_utf8_lossy(&value).into_owned()));
            continue;
        };
        file_count += 1;
        if let Some(max) = limits.data_upload_max_number_files
            && file_count > max
        {
            return Err(Error::BadRequest(
                "The number of files exceeded settings.DATA_UPLOAD_MAX_NUMBER_FILES.".into(),
            ));
        }
        // A name Django cannot clean is a part it skips.
        let Some(clean) = storage::sanitize_file_name(&file_name) else {
            continue;
        };
        let clean = storage::uploaded_file_name(&clean)
            .map_err(|err| Error::BadRequest(err.to_string()))?;
        let content_type = field
            .content_type()
            .map(|mime| mime.essence_str().to_ascii_lowercase())
            .unwrap_or_default();
        let temp = match &limits.file_upload_temp_dir {
            Some(dir) => tempfile::Builder::new().prefix("upload").tempfile_in(dir),
            None => tempfile::Builder::new().prefix("upload").tempfile(),
        }
        .map_err(|err| Error::internal(format!("no temporary file for an upload: {err}")))?;
        let mut writer = tokio::fs::File::from_std(
            temp.reopen()
                .map_err(|err| Error::internal(format!("the upload's temporary file: {err}")))?,
        );
        let mut size: u64 = 0;
        while let Some(chunk) = next_chunk(&mut field).await {
            // A file cut off is dropped with its temporary file.
            let Ok(chunk) = chunk else {
                uploads.fields = pairs.into_iter().collect();
                return Ok(uploads);
            };
            size += chunk.len() as u64;
            writer
                .write_all(&chunk)
                .await
                .map_err(|err| Error::internal(format!("an upload could not be written: {err}")))?;
        }
        writer
            .flush()
            .await
            .map_err(|err| Error::internal(format!("an upload could not be written: {err}")))?;
        uploads.files.push((
            name,
            UploadedFile {
                name: clean,
                content_type,
                size,
                file: temp,
            },
        ));
    }
    uploads.fields = pairs.into_iter().collect();
    Ok(uploads)
}

/// The next piece of a part: None at its end, an error where the body broke off.
async fn next_chunk(field: &mut multer::Field<'_>) -> Option<Result<bytes::Bytes, ()>> {
    match field.chunk().await {
        Ok(Some(chunk)) => Some(Ok(chunk)),
        Ok(None) => None,
        Err(err) => {
            tracing::debug!("a multipart body broke off inside a part: {err}");
            Some(Err(()))
        }
    }
}
