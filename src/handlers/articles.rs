//! Ported views of the `articles` app: the JSON API of `articles/api.py` here, the HTML views of
//! `articles/views.py` in `articles/views.rs`.
//!
//! The SQL is what Django's ORM runs for those views (same joins, same ordering, the same
//! `LOWER(...) LIKE` search), written once for SQLite and PostgreSQL.

mod views;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ficus::ficus_django::templates::slugify;
use ficus::prelude::*;
use serde::Serialize;
use serde_json::json;

pub use views::{article_list, article_page, comment, home};

const DEFAULT_PAGE_SIZE: i128 = 10;
const MAX_PAGE_SIZE: i128 = 50;
const EXCERPT_LENGTH: usize = 200;

/// Columns of `article_to_dict`, in one row.
const SELECT_ARTICLE: &str = "SELECT CAST(a.id AS BIGINT) AS id, a.title, a.slug, a.body, \
     u.username AS author, a.published_at, CAST(a.view_count AS BIGINT) AS view_count \
     FROM articles_article a JOIN auth_user u ON u.id = a.author_id";

/// `Article.Meta.ordering`.
const ORDER: &str = " ORDER BY a.published_at DESC, a.id DESC";

/// Django's `contains` lookup on `Lower(...)`: both sides lowered, `%`, `_` and `\` escaped.
const SEARCH: &str =
    " WHERE (LOWER(a.title) LIKE $1 ESCAPE '\\' OR LOWER(a.body) LIKE $1 ESCAPE '\\')";

#[derive(sqlx::FromRow)]
struct ArticleRow {
    id: i64,
    title: String,
    slug: String,
    body: String,
    author: String,
    published_at: DateTime<Utc>,
    view_count: i64,
}

#[derive(sqlx::FromRow)]
struct TagRow {
    article_id: i64,
    slug: String,
}

/// `article_to_dict`: field order is the JSON key order.
#[derive(Serialize)]
struct ArticleJson {
    id: i64,
    title: String,
    slug: String,
    author: String,
    tags: Vec<String>,
    published_at: String,
    view_count: i64,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    excerpt: Option<String>,
}

#[derive(Serialize)]
struct ArticlePage {
    count: i64,
    page: i128,
    num_pages: i64,
    results: Vec<ArticleJson>,
}

/// `api.error`: the API's own JSON error answer.
fn error(status: StatusCode, message: &str) -> Response {
    (status, JsonResponse(json!({"error": message}))).into_response()
}

/// Replaces `articles.api.list_articles` (`GET /api/articles/`): pagination (`page`,
/// `page_size` up to 50) and the `?q=` search over title and body.
pub async fn list(State(db): State<Database>, query: QueryDict) -> Result<Response, Error> {
    let page_size = match query
        .get("page_size")
        .map_or(PyInt::Value(DEFAULT_PAGE_SIZE), py_int)
    {
        PyInt::Invalid => {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "page_size must be an integer",
            ));
        }
        PyInt::Huge { negative: true } => i128::MIN,
        PyInt::Huge { negative: false } => MAX_PAGE_SIZE,
        PyInt::Value(n) => n,
    };
    if page_size < 1 {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "page_size must be at least 1",
        ));
    }
    let page_size = page_size.min(MAX_PAGE_SIZE) as i64;

    // Paginator.validate_number: not an integer is "invalid page"; below 1 or past the end
    // (however large) is "page out of range".
    let page = match query.get("page").map(py_int) {
        None => 1,
        Some(PyInt::Value(n)) => n,
        Some(PyInt::Huge { .. }) => 0,
        Some(PyInt::Invalid) => return Ok(error(StatusCode::NOT_FOUND, "invalid page")),
    };

    let search = like_pattern(query.get("q").unwrap_or(""));
    Ok(
        match fetch_page(&db, search.as_deref(), page, page_size).await? {
            Some(page) => JsonResponse(page).into_response(),
            None => error(StatusCode::NOT_FOUND, "page out of range"),
        },
    )
}

/// `search_articles`: the stripped, lower-cased query as a LIKE pattern, or None for no filter.
fn like_pattern(q: &str) -> Option<String> {
    let q = py_strip(q).to_lowercase();
    if q.is_empty() {
        return None;
    }
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Some(format!("%{escaped}%"))
}

async fn fetch_page(
    db: &Database,
    search: Option<&str>,
    page: i128,
    page_size: i64,
) -> Result<Option<ArticlePage>, sqlx::Error> {
    let filter = if search.is_some() { SEARCH } else { "" };
    let count_sql = format!("SELECT COUNT(*) FROM articles_article a{filter}");
    // The search pattern is bound only when the SQL has its placeholder.
    let count: i64 = search
        .iter()
        .fold(db.query(count_sql), |query, pattern| query.bind(*pattern))
        .fetch_scalar()
        .await?;
    // allow_empty_first_page: no results is still one (empty) page.
    let num_pages = if count == 0 {
        1
    } else {
        (count + page_size - 1) / page_size
    };
    if page < 1 || page > i128::from(num_pages) {
        return Ok(None);
    }
    let offset = (page as i64 - 1) * page_size;
    let rows_sql = format!("{SELECT_ARTICLE}{filter}{ORDER} LIMIT {page_size} OFFSET {offset}");
    let rows: Vec<ArticleRow> = search
        .iter()
        .fold(db.query(rows_sql), |query, pattern| query.bind(*pattern))
        .fetch_all()
        .await?;
    let mut tags = tags_of(db, rows.iter().map(|r| r.id)).await?;
    let results = rows
        .into_iter()
        .map(|row| {
            let tags = tags.remove(&row.id).unwrap_or_default();
            to_json(row, tags, false)
        })
        .collect();
    Ok(Some(ArticlePage {
        count,
        page,
        num_pages,
        results,
    }))
}

/// Replaces `articles.api.article_detail` (`GET /api/articles/<int:pk>/`).
pub async fn detail(
    State(db): State<Database>,
    Kwarg(pk): Kwarg<String>,
) -> Result<Response, Error> {
    // `<int:pk>` is any run of digits; one beyond the column's range matches no row, as in
    // Django, whose lookup yields an empty result for it.
    let Ok(pk) = pk.parse::<i64>() else {
        return Ok(error(StatusCode::NOT_FOUND, "not found"));
    };
    let sql = format!("{SELECT_ARTICLE} WHERE a.id = $1{ORDER} LIMIT 1");
    let Some(row) = db
        .query(sql)
        .bind(pk)
        .fetch_optional::<ArticleRow>()
        .await?
    else {
        return Ok(error(StatusCode::NOT_FOUND, "not found"));
    };
    let tags = tags_of(&db, [row.id]).await?.remove(&row.id);
    Ok(JsonResponse(to_json(row, tags.unwrap_or_default(), true)).into_response())
}

/// `api.error(message, status, fields=...)`.
fn field_error(message: &str, fields: &[&str]) -> Response {
    (
        StatusCode::BAD_REQUEST,
        JsonResponse(json!({"error": message, "fields": fields})),
    )
        .into_response()
}

/// `Article._meta.get_field("title").max_length`.
const TITLE_MAX_LENGTH: usize = 200;
/// `Article._meta.get_field("slug").max_length - 10`: room for the `-<n>` of a clash.
const SLUG_BASE_LENGTH: usize = 210;
/// How often a clash on the unique slug is retried, as the view's loop does.
const CREATE_ATTEMPTS: usize = 5;

/// Replaces `articles.api.create_article` (`POST /api/articles/`): session authentication
/// (`CsrfViewMiddleware`, here the engine's check, has vetted the token), the JSON checks in the
/// view's order and words, then the article, its unique slug and its tags in one transaction,
/// retried when a concurrent request took the same slug.
pub async fn create(
    CurrentUser(user): CurrentUser,
    State(db): State<Database>,
    body: bytes::Bytes,
) -> Result<Response, Error> {
    let Some(user) = user else {
        return Ok(error(StatusCode::FORBIDDEN, "authentication required"));
    };
    // json.loads(bytes) reads a UTF-8 byte order mark; serde_json does not.
    let text = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&body);
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(text) else {
        return Ok(error(StatusCode::BAD_REQUEST, "invalid JSON"));
    };
    let Some(payload) = payload.as_object() else {
        return Ok(error(StatusCode::BAD_REQUEST, "expected a JSON object"));
    };
    let text_of = |field: &str| payload.get(field).and_then(serde_json::Value::as_str);
    let missing: Vec<&str> = ["title", "body"]
        .into_iter()
        .filter(|field| text_of(field).is_none_or(|v| py_strip(v).is_empty()))
        .collect();
    if !missing.is_empty() {
        return Ok(field_error("missing fields", &missing));
    }
    let title = py_strip(text_of("title").unwrap_or_default()).to_owned();
    let body = text_of("body").unwrap_or_default().to_owned();
    if title.chars().count() > TITLE_MAX_LENGTH {
        return Ok(field_error("title too long", &["title"]));
    }
    let names: Option<Vec<&str>> = match payload.get("tags") {
        None => Some(Vec::new()),
        Some(serde_json::Value::Array(items)) => items.iter().map(|t| t.as_str()).collect(),
        Some(_) => None,
    };
    let Some(names) = names else {
        return Ok(field_error("tags must be a list of strings", &["tags"]));
    };
    let names: Vec<&str> = names
        .into_iter()
        .map(py_strip)
        .filter(|n| !n.is_empty())
        .collect();
    if names.iter().any(|name| slugify(name).is_empty()) {
        return Ok(field_error(
            "tags must contain letters or digits",
            &["tags"],
        ));
    }

    let mut created = None;
    for _ in 0..CREATE_ATTEMPTS {
        match insert_article(&db, &title, &body, user.id, &names).await {
            Ok(id) => {
                created = Some(id);
                break;
            }
            Err(err) if is_integrity_error(&err) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    let Some(id) = created else {
        return Ok(error(
            StatusCode::CONFLICT,
            "could not allocate a unique slug",
        ));
    };
    tracing::info!("article {id} created by {}", user.username);
    let sql = format!("{SELECT_ARTICLE} WHERE a.id = $1");
    let row = db
        .query(sql)
        .bind(id)
        .fetch_optional::<ArticleRow>()
        .await?
        .ok_or_else(|| Error::internal(format!("article {id} vanished after its insert")))?;
    let tags = tags_of(&db, [id]).await?.remove(&id).unwrap_or_default();
    let mut response =
        (StatusCode::CREATED, JsonResponse(to_json(row, tags, true))).into_response();
    if let Ok(location) = http::HeaderValue::from_str(&format!("/api/articles/{id}/")) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    Ok(response)
}

fn is_integrity_error(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation() || e.is_foreign_key_violation())
}

/// The body of the view's `with transaction.atomic():` block; the new article's id.
async fn insert_article(
    db: &Database,
    title: &str,
    body: &str,
    author: i64,
    tag_names: &[&str],
) -> Result<i64, sqlx::Error> {
    let tx = db.begin().await?;
    let slug = unique_slug(&tx, title).await?;
    let id: i64 = tx
        .query(
            "INSERT INTO articles_article (title, slug, body, author_id, published_at, view_count) \
             VALUES ($1, $2, $3, $4, $5, 0) RETURNING CAST(id AS BIGINT)",
        )
        .bind(title)
        .bind(slug)
        .bind(body)
        .bind(author)
        .bind(tx.timestamp(Utc::now()))
        .fetch_scalar()
        .await?;
    let mut linked = Vec::new();
    for name in tag_names {
        let tag = get_or_create_tag(&tx, name).await?;
        if !linked.contains(&tag) {
            tx.query("INSERT INTO articles_article_tags (article_id, tag_id) VALUES ($1, $2)")
                .bind(id)
                .bind(tag)
                .execute()
                .await?;
            linked.push(tag);
        }
    }
    tx.commit().await?;
    Ok(id)
}

/// `unique_slug(title)`: the title's slug, or `article`, then `-2`, `-3`, ... until free.
async fn unique_slug(tx: &Transaction, title: &str) -> Result<String, sqlx::Error> {
    let slug: String = slugify(title).chars().take(SLUG_BASE_LENGTH).collect();
    let base = match slug.trim_matches('-') {
        "" => "article".to_owned(),
        trimmed => trimmed.to_owned(),
    };
    let mut candidate = base.clone();
    for suffix in 2.. {
        let taken: i64 = tx
            .query("SELECT COUNT(*) FROM articles_article WHERE slug = $1")
            .bind(candidate.as_str())
            .fetch_scalar()
            .await?;
        if taken == 0 {
            break;
        }
        candidate = format!("{base}-{suffix}");
    }
    Ok(candidate)
}

/// `get_or_create_tags` for one name: the tag with its slug, else with its name, else a new one.
async fn get_or_create_tag(tx: &Transaction, name: &str) -> Result<i64, sqlx::Error> {
    let slug: String = slugify(name).chars().take(50).collect();
    // `.first()` follows Tag.Meta.ordering (name).
    for (column, value) in [("slug", slug.as_str()), ("name", name)] {
        let found: Option<(i64,)> = tx
            .query(format!(
                "SELECT CAST(id AS BIGINT) FROM articles_tag WHERE {column} = $1 ORDER BY name, id LIMIT 1"
            ))
            .bind(value)
            .fetch_optional()
            .await?;
        if let Some((id,)) = found {
            return Ok(id);
        }
    }
    let name: String = name.chars().take(50).collect();
    tx.query("INSERT INTO articles_tag (name, slug) VALUES ($1, $2) RETURNING CAST(id AS BIGINT)")
        .bind(name)
        .bind(slug)
        .fetch_scalar()
        .await
}

/// Tag slugs per article, sorted as `sorted(tag.slug for tag in article.tags.all())` sorts them
/// (the API's `tags`, and the CSV export's).
pub(crate) async fn tags_of(
    db: &Database,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, Vec<String>>, sqlx::Error> {
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut by_article: HashMap<i64, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(by_article);
    }
    let sql = format!(
        "SELECT CAST(at.article_id AS BIGINT) AS article_id, t.slug \
         FROM articles_article_tags at JOIN articles_tag t ON t.id = at.tag_id \
         WHERE at.article_id IN ({})",
        placeholders(1, ids.len())
    );
    let rows: Vec<TagRow> = ids
        .iter()
        .fold(db.query(sql), |query, id| query.bind(*id))
        .fetch_all()
        .await?;
    for row in rows {
        by_article.entry(row.article_id).or_default().push(row.slug);
    }
    for slugs in by_article.values_mut() {
        slugs.sort();
    }
    Ok(by_article)
}

fn to_json(row: ArticleRow, tags: Vec<String>, with_body: bool) -> ArticleJson {
    let (body, excerpt) = if with_body {
        (Some(row.body), None)
    } else {
        // Python slices by code point.
        (None, Some(row.body.chars().take(EXCERPT_LENGTH).collect()))
    };
    ArticleJson {
        id: row.id,
        url: format!("/articles/{}/", row.slug),
        title: row.title,
        slug: row.slug,
        author: row.author,
        tags,
        published_at: isoformat(row.published_at),
        view_count: row.view_count,
        body,
        excerpt,
    }
}

/// `datetime.isoformat()` of an aware UTC datetime: microseconds only when there are some.
fn isoformat(at: DateTime<Utc>) -> String {
    if at.timestamp_subsec_micros() == 0 {
        at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_pattern_is_stripped_lowered_and_escaped() {
        assert_eq!(like_pattern("  ZÜRICH\x1c").as_deref(), Some("%zürich%"));
        assert_eq!(
            like_pattern("50%_a\\b").as_deref(),
            Some("%50\\%\\_a\\\\b%")
        );
        assert_eq!(like_pattern(" \t"), None);
    }

    #[test]
    fn isoformat_shows_microseconds_only_when_present() {
        let whole = DateTime::parse_from_rfc3339("2023-02-12T20:01:00Z").unwrap();
        let fine = DateTime::parse_from_rfc3339("2026-11-24T01:10:23.08947Z").unwrap();
        assert_eq!(isoformat(whole.into()), "2023-02-12T20:01:00+00:00");
        assert_eq!(isoformat(fine.into()), "2026-11-24T01:10:23.089470+00:00");
    }
}
