//! Django's default file storage for a handler: `storage: Storage`, then
//! `storage.save("uploads/", file)` to store an upload as `FileField.save` does, or
//! `storage.file_response(name)` to send a stored file as `FileResponse` sends it.
//!
//! Only `FileSystemStorage` (Django's default) is followed: MEDIA_ROOT, MEDIA_URL and the
//! upload permissions from the live settings. Names are Django's: cleaned by
//! `get_valid_filename`, never overwriting (the `_<7 characters>` suffix of
//! `get_available_name`, and a retry when a concurrent request took the name between the check
//! and the move). A name that resolves outside MEDIA_ROOT, lexically or through a symlink, is
//! no file at all. What must not be here: a whole file in memory, or a write that can replace
//! a file already stored.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue};

use ficus_django::storage::{self as names, StorageError};

use super::RequestState;
use super::settings::MediaSettings;
use super::upload::UploadedFile;
use crate::ported::error::Error;

/// The project's default storage, for this request.
#[derive(Clone)]
pub struct Storage(pub(crate) Arc<RequestState>);

/// How often a name taken by a concurrent request between the check and the move is chosen
/// again before giving up.
const SAVE_ATTEMPTS: usize = 20;

impl Storage {
    fn media(&self) -> Result<&MediaSettings, Error> {
        let media = &self.0.web.settings.media;
        if media.backend != "django.core.files.storage.filesystem.FileSystemStorage" {
            return Err(Error::internal(format!(
                "the default storage is {}, which ficus's Storage does not follow; keep this route in Django",
                media.backend
            )));
        }
        Ok(media)
    }

    /// `mimetypes.guess_type(name)[0]`, from the project's Python tables.
    pub fn guess_type<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.0.web.settings.media.mimetypes.guess_type(name).0
    }

    /// `storage.url(name)`: MEDIA_URL and the name, quoted as `filepath_to_uri` quotes it.
    pub fn url(&self, name: &str) -> String {
        const SAFE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'/')
            .remove(b'~')
            .remove(b'!')
            .remove(b'*')
            .remove(b'(')
            .remove(b')')
            .remove(b'\'')
            .remove(b'_')
            .remove(b'.')
            .remove(b'-');
        let base = &self.0.web.settings.media.url;
        let name = name.replace('\\', "/");
        let quoted = percent_encoding::utf8_percent_encode(name.trim_start_matches('/'), SAFE);
        if base.ends_with('/') {
            format!("{base}{quoted}")
        } else {
            format!("{base}/{quoted}")
        }
    }

    /// `FieldFile.save(name, file)` for a `FileField(upload_to=upload_to, max_length=...)`:
    /// the upload moved under MEDIA_ROOT with the name the storage chose, which is returned.
    pub async fn save(
        &self,
        upload_to: &str,
        file: UploadedFile,
        max_length: Option<usize>,
    ) -> Result<String, Error> {
        let media = self.media()?.clone();
        let name = names::generate_filename(upload_to, file.name()).map_err(suspicious)?;
        tokio::task::spawn_blocking(move || save_blocking(&media, &name, file, max_length))
            .await
            .map_err(|err| Error::internal(format!("storing an upload stopped: {err}")))?
    }

    /// `FileResponse(open(safe_join(MEDIA_ROOT, name), "rb"), filename=...)`, or None when
    /// there is no such file under MEDIA_ROOT (the view's 404).
    pub async fn file_response(&self, name: &str) -> Result<Option<FileResponse>, Error> {
        let media = self.media()?;
        let Some((path, filename)) = resolve(&media.root, name).await else {
            return Ok(None);
        };
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::internal(format!("a stored file: {err}"))),
        };
        let size = file
            .metadata()
            .await
            .map_err(|err| Error::internal(format!("a stored file: {err}")))?
            .len();
        let headers = names::file_response_headers(&filename, size, false, &media.mimetypes);
        Ok(Some(FileResponse { file, headers }))
    }
}

/// A stored file, sent as Django's `FileResponse` sends it: read from disk as the client takes
/// it, never whole in memory. A `Range` header is ignored, as Django ignores it.
pub struct FileResponse {
    file: tokio::fs::File,
    headers: Vec<(&'static str, String)>,
}

impl IntoResponse for FileResponse {
    fn into_response(self) -> Response {
        let stream = tokio_util::io::ReaderStream::new(self.file);
        let mut response = Response::new(axum::body::Body::from_stream(stream));
        for (name, value) in self.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(name), Ok(value)) => {
                    response.headers_mut().insert(name, value);
                }
                _ => tracing::error!("a file's {name} cannot be a header: {value:?}"),
            }
        }
        response
    }
}

/// `safe_join(MEDIA_ROOT, name)` and `is_file()`, with symlinks resolved: a file that is really
/// under MEDIA_ROOT and the name it is sent under (the joined path's, as Django's
/// `path.name`, so a link inside MEDIA_ROOT keeps its own name), or None.
async fn resolve(root: &Path, name: &str) -> Option<(PathBuf, String)> {
    if name.contains('\0') {
        return None;
    }
    let joined = names::safe_join(&root.to_string_lossy(), name)?;
    let real_root = tokio::fs::canonicalize(root).await.ok()?;
    let real = tokio::fs::canonicalize(&joined).await.ok()?;
    if !real.starts_with(&real_root) {
        return None;
    }
    let metadata = tokio::fs::metadata(&real).await.ok()?;
    let filename = Path::new(&joined)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    metadata.is_file().then_some((real, filename))
}

fn suspicious(err: StorageError) -> Error {
    Error::BadRequest(err.to_string())
}

/// `FileSystemStorage._save`: the directories made, the file moved into a name nobody has, its
/// permissions set.
fn save_blocking(
    media: &MediaSettings,
    name: &str,
    file: UploadedFile,
    max_length: Option<usize>,
) -> Result<String, Error> {
    let io = |err: std::io::Error| Error::internal(format!("an upload could not be stored: {err}"));
    let root = &media.root;
    let mut rng = rand::thread_rng();
    let mut temp = file.file;
    for _ in 0..SAVE_ATTEMPTS {
        let chosen = names::get_available_name(
            name,
            max_length,
            |candidate| root.join(candidate).exists(),
            || names::random_suffix(&mut rng),
        )
        .map_err(suspicious)?;
        let path = root.join(&chosen);
        // safe_join again: the chosen name may not leave MEDIA_ROOT either.
        if names::safe_join(&root.to_string_lossy(), &chosen).is_none() {
            return Err(Error::BadRequest(format!(
                "Detected path traversal attempt in '{chosen}'"
            )));
        }
        if let Some(directory) = path.parent() {
            make_directories(directory, media.directory_permissions).map_err(io)?;
        }
        // persist_noclobber never replaces a file: one that appeared since the check means
        // choosing again. Across filesystems it cannot link, so the bytes are copied into a
        // file created only if absent.
        match temp.persist_noclobber(&path) {
            Ok(_) => {
                set_permissions(&path, media.file_permissions).map_err(io)?;
                return Ok(chosen.replace('\\', "/"));
            }
            Err(err) if err.error.kind() == ErrorKind::AlreadyExists => temp = err.file,
            Err(err) if err.error.raw_os_error() == Some(libc::EXDEV) => {
                temp = err.file;
                match copy_new(temp.path(), &path) {
                    Ok(()) => {
                        set_permissions(&path, media.file_permissions).map_err(io)?;
                        return Ok(chosen.replace('\\', "/"));
                    }
                    Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
                    Err(err) => return Err(io(err)),
                }
            }
            Err(err) => return Err(io(err.error)),
        }
    }
    Err(Error::internal(format!(
        "no free name for an upload of {name} after {SAVE_ATTEMPTS} attempts"
    )))
}

/// Copies `from` to a file created at `to`, which must not exist; a partial copy is removed.
fn copy_new(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut source = std::fs::File::open(from)?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let copied = std::io::copy(&mut source, &mut target).and_then(|_| target.sync_all());
    if let Err(err) = copied {
        let _ = std::fs::remove_file(to);
        return Err(err);
    }
    Ok(())
}

fn make_directories(directory: &Path, mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    if let Some(mode) = mode {
        builder.mode(mode);
    }
    builder.create(directory)
}

fn set_permissions(path: &Path, mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match mode {
        Some(mode) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)),
        None => Ok(()),
    }
}
