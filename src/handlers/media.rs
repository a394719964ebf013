//! Ported views of the `media` app.
//!
//! The object-storage SDKs stay in Python (Alibaba Cloud's `oss2` and Tencent Cloud's
//! `cos-python-sdk-v5` have no official Rust SDK): the handler validates in Rust and signs
//! through the Python helper, with the keys from Django's settings.

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
