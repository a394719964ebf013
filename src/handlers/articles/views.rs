//! The ported HTML views of `articles/views.py`: the home page, the article list and the
//! article page with its comment form. The templates sit beside this file
//! (`articles/article_list.html`, `articles/article_detail.html`), the home page's with the
//! layout (`home.html`), as in the Django project.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ficus::prelude::form_html::{Attr, Field, Widget};
use ficus::prelude::*;
use serde::Serialize;

use super::{ArticleRow, ORDER, SELECT_ARTICLE};

/// `Comment._meta.get_field("author_name").max_length`.
const AUTHOR_NAME_MAX_LENGTH: usize = 80;
const REQUIRED: &str = "This field is required.";
const POSTED: &str = "Thanks, your comment was posted.";

/// `ARTICLES_PER_PAGE`.
const ARTICLES_PER_PAGE: i64 = 10;
/// How many articles the home page shows.
const LATEST: i64 = 5;

#[derive(Serialize, sqlx::FromRow)]
struct TagRow {
    name: String,
    slug: String,
}

/// A tag with the article it was fetched for, as `prefetch_related("tags")` groups them.
#[derive(sqlx::FromRow)]
struct ArticleTagRow {
    article_id: i64,
    name: String,
    slug: String,
}

/// `Tag.objects.all()`, in `Tag.Meta.ordering`.
const ALL_TAGS: &str = "SELECT name, slug FROM articles_tag ORDER BY name";

#[derive(Serialize, sqlx::FromRow)]
struct CommentRow {
    author_name: String,
    body: String,
    created_at: DateTime<Utc>,
}

/// `CommentForm(request.POST)`: the values as posted and the errors of `is_valid()`.
struct CommentForm {
    author_name: Option<String>,
    body: Option<String>,
    author_name_errors: Vec<String>,
    body_errors: Vec<String>,
}

impl CommentForm {
    /// `CommentForm()`: nothing posted, no errors.
    fn unbound() -> Self {
        CommentForm {
            author_name: None,
            body: None,
            author_name_errors: Vec::new(),
            body_errors: Vec::new(),
        }
    }

    /// Binds and cleans: both fields required and stripped, the name at most 80 characters.
    fn bind(data: &ficus::ficus_django::forms::FormData) -> (Self, Option<(String, String)>) {
        let raw = |name: &str| data.get(name).map(str::to_owned);
        let mut form = CommentForm {
            author_name: raw("author_name"),
            body: raw("body"),
            author_name_errors: Vec::new(),
            body_errors: Vec::new(),
        };
        let author_name = py_strip(data.get("author_name").unwrap_or("")).to_owned();
        let body = py_strip(data.get("body").unwrap_or("")).to_owned();
        let length = author_name.chars().count();
        if author_name.is_empty() {
            form.author_name_errors.push(REQUIRED.to_owned());
        } else if length > AUTHOR_NAME_MAX_LENGTH {
            form.author_name_errors.push(format!(
                "Ensure this value has at most {AUTHOR_NAME_MAX_LENGTH} characters (it has {length})."
            ));
        }
        if body.is_empty() {
            form.body_errors.push(REQUIRED.to_owned());
        }
        let valid = form.author_name_errors.is_empty() && form.body_errors.is_empty();
        (form, valid.then_some((author_name, body)))
    }

    /// The form as Django draws it (`{{ form.as_p }}`), with the labels and widgets of
    /// `CommentForm.Meta`.
    fn html(&self) -> form_html::Form {
        let mut author_name = Field::new("author_name", "Your name", Widget::Input("text"))
            .attr("maxlength", Attr::Value(AUTHOR_NAME_MAX_LENGTH.to_string()));
        author_name.value = self.author_name.clone().filter(|v| !v.is_empty());
        author_name.errors = self.author_name_errors.clone();
        let mut body =
            Field::new("body", "Comment", Widget::Textarea).attr("rows", Attr::Value("4".into()));
        body.value = self.body.clone().filter(|v| !v.is_empty());
        body.errors = self.body_errors.clone();
        form_html::Form {
            non_field_errors: Vec::new(),
            fields: vec![author_name, body],
        }
    }
}

/// Replaces `articles.views.home` (`GET /`): the five latest articles and every tag.
pub async fn home(State(db): State<Database>, templates: Templates) -> Result<Response, Error> {
    let latest: Vec<ArticleRow> = db
        .query(format!("{SELECT_ARTICLE}{ORDER} LIMIT {LATEST}"))
        .fetch_all()
        .await?;
    let tags: Vec<TagRow> = db.query(ALL_TAGS).fetch_all().await?;
    let latest: Vec<minijinja::Value> = latest.iter().map(|a| article_value(a, None)).collect();
    templates
        .render("home.html", context! { latest, tags })
        .await
}

/// Replaces `articles.views.article_list` (`GET /articles/`): ten articles a page, `?tag=` a
/// tag's slug; an unknown tag, a page number that is not one, or a page past the end is the
/// project's 404 page (the view uses `Paginator.page()`, not `get_page()`).
pub async fn article_list(
    State(db): State<Database>,
    templates: Templates,
    query: QueryDict,
) -> Result<Response, Error> {
    let tag = match query.get("tag").filter(|slug| !slug.is_empty()) {
        None => None,
        Some(slug) => {
            let tag: Option<(i64, String, String)> = db
                .query("SELECT CAST(id AS BIGINT), name, slug FROM articles_tag WHERE slug = $1")
                .bind(slug)
                .fetch_optional()
                .await?;
            Some(tag.ok_or(Error::NotFound)?)
        }
    };
    let filter = if tag.is_some() {
        " JOIN articles_article_tags at ON at.article_id = a.id WHERE at.tag_id = $1"
    } else {
        ""
    };
    let tag_id = tag.as_ref().map(|(id, _, _)| *id);
    let count: i64 = tag_id
        .iter()
        .fold(
            db.query(format!("SELECT COUNT(*) FROM articles_article a{filter}")),
            |query, id| query.bind(*id),
        )
        .fetch_scalar()
        .await?;
    // Paginator.num_pages with allow_empty_first_page: no articles is still one page.
    let num_pages = ((count + ARTICLES_PER_PAGE - 1) / ARTICLES_PER_PAGE).max(1);
    // Paginator.validate_number: int() of the last `page` value, 1 to num_pages.
    let number = match query.get("page").map(py_int) {
        None => 1,
        Some(PyInt::Value(n)) if (1..=i128::from(num_pages)).contains(&n) => n as i64,
        Some(_) => return Err(Error::NotFound),
    };
    let offset = (number - 1) * ARTICLES_PER_PAGE;
    let rows: Vec<ArticleRow> = tag_id
        .iter()
        .fold(
            db.query(format!(
                "{SELECT_ARTICLE}{filter}{ORDER} LIMIT {ARTICLES_PER_PAGE} OFFSET {offset}"
            )),
            |query, id| query.bind(*id),
        )
        .fetch_all()
        .await?;
    let mut tags_of = tags_by_article(&db, rows.iter().map(|row| row.id)).await?;
    let articles: Vec<minijinja::Value> = rows
        .iter()
        .map(|row| article_value(row, Some(tags_of.remove(&row.id).unwrap_or_default())))
        .collect();
    let page = context! {
        number,
        has_other_pages => num_pages > 1,
        has_previous => number > 1,
        has_next => number < num_pages,
        previous_page_number => number - 1,
        next_page_number => number + 1,
        paginator => context! { num_pages },
    };
    let tag = tag.map(|(_, name, slug)| context! { name, slug });
    let tags: Vec<TagRow> = db.query(ALL_TAGS).fetch_all().await?;
    templates
        .render(
            "articles/article_list.html",
            context! { page, articles, tag, tags },
        )
        .await
}

/// Replaces `articles.views.article_detail` for `GET`: the article, its tags and comments and
/// an empty comment form. The read counts one view, in the database as `F("view_count") + 1`
/// counts it, so concurrent readers never overwrite each other's increments.
pub async fn article_page(
    Kwarg(slug): Kwarg<String>,
    State(db): State<Database>,
    templates: Templates,
) -> Result<Response, Error> {
    let article = find_article(&db, &slug).await?.ok_or(Error::NotFound)?;
    db.query("UPDATE articles_article SET view_count = view_count + 1 WHERE id = $1")
        .bind(article.id)
        .execute()
        .await?;
    render_article(&db, &templates, &article, &CommentForm::unbound()).await
}

/// Replaces `articles.views.article_detail` for `POST`: a valid comment is saved, a success
/// message added and the browser sent back to the article; an invalid one shows the page with
/// the form's errors; an unknown slug is the project's 404 page.
pub async fn comment(
    Kwarg(slug): Kwarg<String>,
    State(db): State<Database>,
    templates: Templates,
    messages: Messages,
    Form(data): Form,
) -> Result<Response, Error> {
    let article = find_article(&db, &slug).await?.ok_or(Error::NotFound)?;
    let (form, cleaned) = CommentForm::bind(&data);
    if let Some((author_name, body)) = cleaned {
        db.query(
            "INSERT INTO articles_comment (article_id, author_name, body, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(article.id)
        .bind(author_name)
        .bind(body)
        .bind(db.timestamp(Utc::now()))
        .execute()
        .await?;
        messages.success(POSTED);
        return Ok(redirect(&absolute_url(&article)));
    }
    render_article(&db, &templates, &article, &form).await
}

/// `get_object_or_404(Article.objects.select_related("author"), slug=slug)`, the 404 left to
/// the caller.
async fn find_article(db: &Database, slug: &str) -> Result<Option<ArticleRow>, Error> {
    Ok(db
        .query(format!("{SELECT_ARTICLE} WHERE a.slug = $1"))
        .bind(slug)
        .fetch_optional()
        .await?)
}

/// `Article.get_absolute_url()`.
fn absolute_url(article: &ArticleRow) -> String {
    format!("/articles/{}/", article.slug)
}

/// An article as the templates read it; `tags` is `article.tags.all` where the view prefetched
/// them.
fn article_value(article: &ArticleRow, tags: Option<Vec<TagRow>>) -> minijinja::Value {
    context! {
        title => article.title,
        slug => article.slug,
        body => article.body,
        published_at => article.published_at,
        get_absolute_url => absolute_url(article),
        author => context! { get_username => article.author },
        tags => tags.map(|all| context! { all }),
    }
}

/// `prefetch_related("tags")`: each article's tags in `Tag.Meta.ordering`, in one query.
async fn tags_by_article(
    db: &Database,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, Vec<TagRow>>, Error> {
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut by_article: HashMap<i64, Vec<TagRow>> = HashMap::new();
    if ids.is_empty() {
        return Ok(by_article);
    }
    let sql = format!(
        "SELECT CAST(at.article_id AS BIGINT) AS article_id, t.name, t.slug \
         FROM articles_tag t JOIN articles_article_tags at ON at.tag_id = t.id \
         WHERE at.article_id IN ({}) ORDER BY t.name",
        placeholders(1, ids.len())
    );
    let rows: Vec<ArticleTagRow> = ids
        .iter()
        .fold(db.query(sql), |query, id| query.bind(*id))
        .fetch_all()
        .await?;
    for row in rows {
        by_article.entry(row.article_id).or_default().push(TagRow {
            name: row.name,
            slug: row.slug,
        });
    }
    Ok(by_article)
}

/// The article page: the article, its tags and comments, and `form` as it stands.
async fn render_article(
    db: &Database,
    templates: &Templates,
    article: &ArticleRow,
    form: &CommentForm,
) -> Result<Response, Error> {
    let tags: Vec<TagRow> = db
        .query(
            "SELECT t.name, t.slug FROM articles_tag t \
             JOIN articles_article_tags at ON at.tag_id = t.id \
             WHERE at.article_id = $1 ORDER BY t.name",
        )
        .bind(article.id)
        .fetch_all()
        .await?;
    let comments: Vec<CommentRow> = db
        .query(
            "SELECT author_name, body, created_at FROM articles_comment \
             WHERE article_id = $1 ORDER BY created_at, id",
        )
        .bind(article.id)
        .fetch_all()
        .await?;
    let form = form.html().template_value();
    templates
        .render(
            "articles/article_detail.html",
            context! { article => article_value(article, None), tags, comments, form },
        )
        .await
}
