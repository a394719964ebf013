//! Serves Django's collected static files (STATIC_URL from STATIC_ROOT) natively, with
//! Content-Type, ETag, Last-Modified and 304 answers to conditional requests.
//!
//! A path that could leave the root (`..` in any spelling, a NUL byte, a backslash, an absolute
//! path, a symlink pointing outside) is never opened: like a missing file, it falls through to
//! Django, which answers 404.

use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::io::AsyncReadExt;

use crate::body::{Body, ChannelBody, empty};

const CHUNK: usize = 64 * 1024;

pub(crate) struct StaticFiles {
    prefix: String,
    root: PathBuf,
}

impl StaticFiles {
    /// `prefix` is STATIC_URL (ending in `/`); a root that does not exist yet is fine (nothing
    /// is served until collectstatic fills it).
    pub(crate) fn new(prefix: String, root: &Path) -> Self {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_owned());
        Self { prefix, root }
    }

    /// The file a request path names, if it is safely inside the root and exists.
    pub(crate) fn resolve(&self, raw_path: &str) -> Option<PathBuf> {
        let rest = raw_path.strip_prefix(&self.prefix)?;
        let decoded = percent_encoding::percent_decode_str(rest)
            .decode_utf8()
            .ok()?;
        if decoded.is_empty() || decoded.contains(['\0', '\\']) {
            return None;
        }
        let relative = Path::new(decoded.as_ref());
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let candidate = self.root.join(relative).canonicalize().ok()?;
        (candidate.starts_with(&self.root) && candidate.is_file()).then_some(candidate)
    }

    /// A response for GET/HEAD of a static file, or None to let Django answer.
    pub(crate) async fn serve(
        &self,
        method: &Method,
        raw_path: &str,
        headers: &HeaderMap,
    ) -> Option<Response<Body>> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        let path = self.resolve(raw_path)?;
        let meta = tokio::fs::metadata(&path).await.ok()?;
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let mtime = modified
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let etag = format!("\"{mtime:x}-{:x}\"", meta.len());
        let last_modified =
            httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(mtime));

        let mut response = Response::new(empty());
        let h = response.headers_mut();
        h.insert(header::ETAG, HeaderValue::from_str(&etag).ok()?);
        h.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_str(&last_modified).ok()?,
        );
        if not_modified(headers, &etag, modified) {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return Some(response);
        }
        let mime = mime_guess::from_path(&path).first_or_octet_stream();
        let content_type = match mime.type_() {
            mime_guess::mime::TEXT => format!("{mime}; charset=utf-8"),
            _ if mime.subtype() == "javascript" => format!("{mime}; charset=utf-8"),
            _ => mime.to_string(),
        };
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&content_type).ok()?,
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
        if method == Method::GET {
            let file = tokio::fs::File::open(&path).await.ok()?;
            *response.body_mut() = stream_file(file);
        }
        Some(response)
    }
}

fn not_modified(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(tags) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return tags
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*");
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|since| {
            let modified = modified.duration_since(UNIX_EPOCH).ok()?.as_secs();
            let since = since.duration_since(UNIX_EPOCH).ok()?.as_secs();
            Some(modified <= since)
        })
        .unwrap_or(false)
}

fn stream_file(mut file: tokio::fs::File) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                        break;
                    }
                }
                Err(err) => {
                    let _ = tx.send(Err(err)).await;
                    break;
                }
            }
        }
    });
    ChannelBody(rx).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> (tempfile::TempDir, StaticFiles) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("static");
        std::fs::create_dir_all(root.join("css")).unwrap();
        std::fs::write(root.join("css/site.css"), "body{}").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt")).unwrap();
        let files = StaticFiles::new("/static/".into(), &root);
        (dir, files)
    }

    #[test]
    fn files_inside_the_root_resolve() {
        let (_dir, files) = site();
        assert!(files.resolve("/static/css/site.css").is_some());
        assert!(files.resolve("/static/css%2Fsite.css").is_some());
    }

    #[test]
    fn every_way_out_of_the_root_is_refused() {
        let (_dir, files) = site();
        for path in [
            "/static/../secret.txt",
            "/static/css/../../secret.txt",
            "/static/%2e%2e/secret.txt",
            "/static/%2E%2E%2Fsecret.txt",
            "/static/..%2fsecret.txt",
            "/static//etc/passwd",
            "/static/%2fetc/passwd",
            "/static/css/site.css%00",
            "/static/..\\secret.txt",
            "/static/link.txt",
            "/static/",
            "/other/css/site.css",
        ] {
            assert!(files.resolve(path).is_none(), "{path} must be refused");
        }
    }
}
