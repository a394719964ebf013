//! Ported views of the `media` app: the upload form and uploads (stored by the engine's
//! `Storage` as Django's `FileSystemStorage` stores them), stored files sent as `FileResponse`
//! sends them, and pre-signed object-storage URLs.
//!
//! The object-storage SDKs stay in Python (Alibaba Cloud's `oss2` and Tencent Cloud's
//! `cos-python-sdk-v5` have no official Rust SDK): the handler validates in Rust and signs
//! through the Python helper, with the keys from Django's settings. The upload page's template
//! sits beside this file (`media/upload.html`).

use chrono::{DateTime, Utc};
use ficus::prelude::form_html::{Field, Widget};
use ficus::prelude::*;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::json;

const PROVIDERS: [&str; 2] = ["oss", "cos"];
const DEFAULT_EXPIRES: i128 = 3600;
/// A week, the usual ceiling for pre-signed URLs.
const MAX_EXPIRES: i128 = 7 * 24 * 3600;

/// Replaces `media.views.signed_url` (`GET /api/media/<path:key>/signed-url/`):
/// `?provider=oss|cos&expires=SECONDS`.
pub async fn signed_url(
    State(python): State<PythonCalls>,
    Kwarg(key): Kwarg<String>,
    query: QueryDict,
) -> Result<Response, Error> {
    let provider = query.get("provider").unwrap_or("");
    if !PROVIDERS.contains(&provider) {
        let message = format!("provider must be one of: {}", PROVIDERS.join(", "));
        return Ok(bad_request(&message));
    }
    // The view turns a non-integer into 0, so it fails the range check with the same message.
    let expires = match query.get("expires").map(py_int) {
        None => DEFAULT_EXPIRES,
        Some(PyInt::Value(n)) => n,
        Some(PyInt::Huge { .. } | PyInt::Invalid) => 0,
    };
    if !(1..=MAX_EXPIRES).contains(&expires) {
        let message = format!("expires must be an integer between 1 and {MAX_EXPIRES}");
        return Ok(bad_request(&message));
    }
    let expires = expires as i64;

    let provider = provider.to_owned();
    let signing_key = key.clone();
    let is_oss = provider == "oss";
    let url = python
        .call(move |py| {
            if is_oss {
                sign_oss(py, &signing_key, expires)
            } else {
                sign_cos(py, &signing_key, expires)
            }
        })
        .await?;
    Ok(JsonResponse(json!({
        "provider": provider,
        "key": key,
        "url": url,
        "expires": expires,
    }))
    .into_response())
}

/// The view's `JsonResponse({"error": message}, status=400)`.
fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        JsonResponse(json!({"error": message})),
    )
        .into_response()
}

fn settings<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
    py.import("django.conf")?.getattr("settings")
}

/// `oss2.Bucket(...).sign_url("GET", key, expires, slash_safe=True)`; slash_safe keeps "a/b.txt"
/// a path instead of "a%2Fb.txt".
fn sign_oss(py: Python<'_>, key: &str, expires: i64) -> PyResult<String> {
    let settings = settings(py)?;
    let oss2 = py.import("oss2")?;
    let auth = oss2.call_method1(
        "Auth",
        (
            settings.getattr("OSS_ACCESS_KEY_ID")?,
            settings.getattr("OSS_ACCESS_KEY_SECRET")?,
        ),
    )?;
    let bucket = oss2.call_method1(
        "Bucket",
        (
            auth,
            settings.getattr("OSS_ENDPOINT")?,
            settings.getattr("OSS_BUCKET")?,
        ),
    )?;
    let options = PyDict::new(py);
    options.set_item("slash_safe", true)?;
    bucket
        .call_method("sign_url", ("GET", key, expires), Some(&options))?
        .extract()
}

/// `CosS3Client(CosConfig(...)).get_presigned_url(Method="GET", Bucket=..., Key=key, Expired=...)`.
fn sign_cos(py: Python<'_>, key: &str, expires: i64) -> PyResult<String> {
    let settings = settings(py)?;
    let cos = py.import("qcloud_cos")?;
    let config = PyDict::new(py);
    config.set_item("Region", settings.getattr("COS_REGION")?)?;
    config.set_item("SecretId", settings.getattr("COS_SECRET_ID")?)?;
    config.set_item("SecretKey", settings.getattr("COS_SECRET_KEY")?)?;
    let client = cos.call_method1(
        "CosS3Client",
        (cos.call_method("CosConfig", (), Some(&config))?,),
    )?;
    let request = PyDict::new(py);
    request.set_item("Method", "GET")?;
    request.set_item("Bucket", settings.getattr("COS_BUCKET")?)?;
    request.set_item("Key", key)?;
    request.set_item("Expired", expires)?;
    client
        .call_method("get_presigned_url", (), Some(&request))?
        .extract()
}

/// `Upload._meta.get_field("file")`: `upload_to` and `max_length`.
const UPLOAD_TO: &str = "uploads/";
const FILE_MAX_LENGTH: usize = 255;
/// How many recent uploads the page lists.
const RECENT: i64 = 10;

#[derive(sqlx::FromRow)]
struct UploadRow {
    file: String,
    original_name: String,
    size: i64,
}

/// Replaces `media.views.upload` for `GET`: the form and the ten latest uploads.
pub async fn upload_form(
    State(db): State<Database>,
    templates: Templates,
    storage: Storage,
) -> Result<Response, Error> {
    let rows: Vec<UploadRow> = db
        .query(format!(
            "SELECT file, original_name, CAST(size AS BIGINT) AS size FROM media_upload \
             ORDER BY uploaded_at DESC, id DESC LIMIT {RECENT}"
        ))
        .fetch_all()
        .await?;
    let recent: Vec<minijinja::Value> = rows
        .iter()
        .map(|row| {
            context! {
                original_name => row.original_name,
                size => row.size,
                file => context! { url => storage.url(&row.file) },
            }
        })
        .collect();
    let form = form_html::Form {
        non_field_errors: Vec::new(),
        fields: vec![Field::new("file", "File", Widget::Input("file"))],
    };
    let form = form.template_value();
    templates
        .render("media/upload.html", context! { form, recent })
        .await
}

/// Replaces `media.views.upload` for `POST` (multipart, CSRF-checked by the engine): the file
/// stored under MEDIA_ROOT with the name `FileSystemStorage` chooses, the `Upload` row written,
/// and 201 with the record and its `Location`; without a file (or with an empty one) the
/// view's 400.
pub async fn upload(
    State(db): State<Database>,
    storage: Storage,
    Multipart(mut upload): Multipart,
) -> Result<Response, Error> {
    // UploadForm(request.POST, request.FILES).is_valid(): a FileField is required and may not
    // be empty.
    let Some(file) = upload.take_file("file").filter(|file| file.size() > 0) else {
        let body = json!({"error": "missing fields", "fields": ["file"]});
        return Ok((StatusCode::BAD_REQUEST, JsonResponse(body)).into_response());
    };
    let original_name = file.name().to_owned();
    let size = file.size();
    let content_type = match file.content_type() {
        "" => storage
            .guess_type(&original_name)
            .unwrap_or("application/octet-stream")
            .to_owned(),
        given => given.to_owned(),
    };
    // The storage picks the final name: it sanitises it and never overwrites.
    let name = storage.save(UPLOAD_TO, file, Some(FILE_MAX_LENGTH)).await?;
    let uploaded_at: DateTime<Utc> = Utc::now();
    let id: i64 = db
        .query(
            "INSERT INTO media_upload (file, original_name, size, content_type, uploaded_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING CAST(id AS BIGINT)",
        )
        .bind(name.as_str())
        .bind(original_name.as_str())
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(content_type.as_str())
        .bind(db.timestamp(uploaded_at))
        .fetch_scalar()
        .await?;
    tracing::info!("stored upload {name} ({size} bytes)");
    let url = storage.url(&name);
    let body = json!({
        "id": id,
        "name": name,
        "original_name": original_name,
        "size": size,
        "content_type": content_type,
        "url": url,
    });
    let mut response = (StatusCode::CREATED, JsonResponse(body)).into_response();
    if let Ok(location) = http::HeaderValue::from_str(&url) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    Ok(response)
}

/// Replaces `media.views.serve_file` (`GET /media/files/<path:name>`): the stored file as
/// `FileResponse` sends it, or the project's 404 page for a name outside MEDIA_ROOT or no file.
pub async fn serve_file(Kwarg(name): Kwarg<String>, storage: Storage) -> Result<Response, Error> {
    let file = storage.file_response(&name).await?.ok_or(Error::NotFound)?;
    Ok(file.into_response())
}
