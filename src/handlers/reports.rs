//! Ported views of the `reports` app: CSV exports, streamed from the database as Django's
//! `StreamingHttpResponse` streams them, so a large table never sits in memory.
//!
//! The rows are read in chunks of 200 (`iterator(chunk_size=200)`, each chunk's tags in one
//! more query, as `prefetch_related` batches them) and each chunk is sent before the next is
//! read: memory stays one chunk whatever the table's size, and a client that stops reading
//! stops the queries. What must not be here: a whole table in a `Vec`.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ficus::ficus_django::csv::{self, Field};
use ficus::prelude::*;
use futures_util::stream;
use http::header;

use super::articles::tags_of;

/// `reports.views.HEADER`.
const HEADER: [&str; 7] = [
    "id",
    "title",
    "slug",
    "author",
    "published_at",
    "view_count",
    "tags",
];
/// `iterator(chunk_size=200)`.
const CHUNK: usize = 200;

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    title: String,
    slug: String,
    author: String,
    published_at: DateTime<Utc>,
    view_count: i64,
}

/// Where the export stands between chunks.
enum Next {
    Header,
    After(Option<i64>),
    Done,
}

/// Replaces `reports.views.articles_csv` (`GET /reports/articles.csv`): every article in id
/// order as Python's `csv.writer` writes it, streamed.
pub async fn articles_csv(State(db): State<Database>) -> Result<Response, Error> {
    let chunks = stream::try_unfold(Next::Header, move |next| {
        let db = db.clone();
        async move {
            match next {
                Next::Header => {
                    let mut out = Vec::new();
                    csv::write_row(&mut out, &HEADER.map(Field::Str));
                    Ok(Some((Bytes::from(out), Next::After(None))))
                }
                Next::After(last) => chunk(&db, last).await,
                Next::Done => Ok::<_, Error>(None),
            }
        }
    });
    let mut response = Response::new(axum::body::Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        http::HeaderValue::from_static("attachment; filename=\"articles.csv\""),
    );
    Ok(response)
}

/// The next chunk of rows after the article `last`, written as CSV, or the end.
async fn chunk(db: &Database, last: Option<i64>) -> Result<Option<(Bytes, Next)>, Error> {
    let rows: Vec<Row> = db
        .query(format!(
            "SELECT CAST(a.id AS BIGINT) AS id, a.title, a.slug, u.username AS author, \
             a.published_at, CAST(a.view_count AS BIGINT) AS view_count \
             FROM articles_article a JOIN auth_user u ON u.id = a.author_id \
             WHERE a.id > $1 ORDER BY a.id LIMIT {CHUNK}"
        ))
        .bind(last.unwrap_or(i64::MIN))
        .fetch_all()
        .await?;
    let Some(end) = rows.last().map(|row| row.id) else {
        return Ok(None);
    };
    let mut tags = tags_of(db, rows.iter().map(|row| row.id)).await?;
    let mut out = Vec::with_capacity(rows.len() * 128);
    for row in &rows {
        let slugs = tags.remove(&row.id).unwrap_or_default();
        csv::write_row(
            &mut out,
            &[
                Field::Int(row.id),
                Field::Str(&row.title),
                Field::Str(&row.slug),
                Field::Str(&row.author),
                Field::Str(&isoformat(row.published_at)),
                Field::Int(row.view_count),
                Field::Str(&slugs.join(";")),
            ],
        );
    }
    let next = if rows.len() < CHUNK {
        Next::Done
    } else {
        Next::After(Some(end))
    };
    Ok(Some((Bytes::from(out), next)))
}

/// `datetime.isoformat()` of an aware UTC datetime: microseconds only when there are some.
fn isoformat(at: DateTime<Utc>) -> String {
    if at.timestamp_subsec_micros() == 0 {
        at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}
