//! Ported views of the `ai` app.
//!
//! The request is validated and the database read in Rust; the text work stays in Python
//! (`legacy/ai.py`), called through the Python helper, because that is where a team's model
//! code lives.

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

/// How many related articles the view returns.
const RELATED_COUNT: usize = 5;

#[derive(sqlx::FromRow)]
struct Candidate {
    id: i64,
    title: String,
    slug: String,
    body: String,
}

/// Replaces `ai.views.related` (`GET /api/articles/<int:pk>/related/`): the articles most like
/// this one. The database work and the JSON are Rust's; the TF-IDF ranking stays in Python
/// (`legacy.ai.related_articles`, the code a team keeps), which gets the texts as the view
/// builds them and gives back the ranking, its scores rounded there as the view rounds them.
pub async fn related(
    Kwarg(pk): Kwarg<String>,
    State(db): State<Database>,
    State(python): State<PythonCalls>,
) -> Result<Response, Error> {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            JsonResponse(json!({"error": "not found"})),
        )
    };
    // `<int:pk>` is any run of digits; one beyond the column's range matches no row.
    let Ok(pk) = pk.parse::<i64>() else {
        return Ok(not_found().into_response());
    };
    let article: Option<(String, String)> = db
        .query("SELECT title, body FROM articles_article WHERE id = $1")
        .bind(pk)
        .fetch_optional()
        .await?;
    let Some((title, body)) = article else {
        return Ok(not_found().into_response());
    };
    let others: Vec<Candidate> = db
        .query(
            "SELECT CAST(id AS BIGINT) AS id, title, slug, body FROM articles_article \
             WHERE NOT (id = $1) ORDER BY id",
        )
        .bind(pk)
        .fetch_all()
        .await?;
    let target = format!("{title}\n{body}");
    let texts: Vec<(i64, String)> = others
        .iter()
        .map(|other| (other.id, format!("{}\n{}", other.title, other.body)))
        .collect();
    let ranked: Vec<(i64, f64)> = python
        .call(move |py| {
            let ai = py.import("legacy.ai")?;
            let builtins = py.import("builtins")?;
            let mut rounded = Vec::new();
            for item in ai
                .call_method1("related_articles", (target, texts, RELATED_COUNT))?
                .try_iter()?
            {
                let (id, score): (i64, Bound<'_, PyAny>) = item?.extract()?;
                rounded.push((id, builtins.call_method1("round", (score, 4))?.extract()?));
            }
            Ok(rounded)
        })
        .await?;
    let related: Vec<Value> = ranked
        .into_iter()
        .filter_map(|(id, score)| {
            let other = others.iter().find(|other| other.id == id)?;
            Some(json!({"id": id, "title": other.title, "slug": other.slug, "score": score}))
        })
        .collect();
    Ok(JsonResponse(json!({"article": pk, "related": related})).into_response())
}
