//! Ported views of the `ai` app.
//!
//! The request is validated in Rust; the text work stays in Python (`legacy/ai.py`), called
//! through the Python helper, because that is where a team's model code lives.

use bytes::Bytes;
use ficus::prelude::*;
use pyo3::prelude::*;
use serde_json::{Value, json};

const MAX_SUMMARY_SENTENCES: i64 = 10;
const DEFAULT_SENTENCES: i64 = 3;

/// The view's `JsonResponse(body, status=400)`.
fn bad_request(body: Value) -> Response {
    (StatusCode::BAD_REQUEST, JsonResponse(body)).into_response()
}

/// Replaces `ai.views.summarize` (`POST /api/summarize/`, CSRF-exempt):
/// `{"text": ..., "max_sentences": 1..10}` to `{"summary", "keywords", "sentences"}`.
pub async fn summarize(State(python): State<PythonCalls>, body: Bytes) -> Result<Response, Error> {
    // json.loads(bytes) accepts a UTF-8 byte-order mark.
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&body);
    let Ok(payload) = serde_json::from_slice::<Value>(body) else {
        return Ok(bad_request(json!({"error": "invalid JSON"})));
    };
    let Value::Object(payload) = payload else {
        return Ok(bad_request(json!({"error": "expected a JSON object"})));
    };
    let text = match payload.get("text") {
        Some(Value::String(text)) if !py_strip(text).is_empty() => text.clone(),
        _ => {
            return Ok(bad_request(
                json!({"error": "missing fields", "fields": ["text"]}),
            ));
        }
    };
    // JSON true is not a sentence count, nor is 3.0: only a JSON integer in range will do.
    let max_sentences = match payload.get("max_sentences") {
        None => Some(DEFAULT_SENTENCES),
        Some(Value::Number(n)) => n.as_i64(),
        Some(_) => None,
    };
    let Some(max_sentences) = max_sentences.filter(|n| (1..=MAX_SUMMARY_SENTENCES).contains(n))
    else {
        let message =
            format!("max_sentences must be an integer between 1 and {MAX_SUMMARY_SENTENCES}");
        return Ok(bad_request(json!({"error": message})));
    };

    let (sentences, keywords) = python
        .call(move |py| {
            let ai = py.import("legacy.ai")?;
            let sentences: Vec<String> = ai
                .call_method1("summarize_sentences", (&text, max_sentences))?
                .extract()?;
            let keywords: Vec<String> = ai.call_method1("keywords", (&text,))?.extract()?;
            Ok((sentences, keywords))
        })
        .await?;
    Ok(JsonResponse(json!({
        "summary": sentences.join(" "),
        "keywords": keywords,
        "sentences": sentences.len(),
    }))
    .into_response())
}
