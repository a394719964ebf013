//! The ported HTML views of `articles/views.py`: the comment form of an article page. The page's
//! GET (which counts the view) stays in Django until the pages are ported; the template sits
//! beside this file (`articles/article_detail.html`).

use chrono::{DateTime, Utc};
use ficus::prelude::form_html::{Attr, Field, Widget};
use ficus::prelude::*;
use serde::Serialize;

use super::{ArticleRow, SELECT_ARTICLE};

/// `Comment._meta.get_field("author_name").max_length`.
const AUTHOR_NAME_MAX_LENGTH: usize = 80;
const REQUIRED: &str = "This field is required.";
const POSTED: &str = "Thanks, your comment was posted.";

#[derive(Serialize, sqlx::FromRow)]
struct TagRow {
    name: String,
    slug: String,
}

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

    /// `{{ form.as_p }}` with the labels and widgets of `CommentForm.Meta`.
    fn as_p(&self) -> String {
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
        .as_p()
    }
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
    let article: Option<ArticleRow> = db
        .query(format!("{SELECT_ARTICLE} WHERE a.slug = $1"))
        .bind(slug.as_str())
        .fetch_optional()
        .await?;
    let Some(article) = article else {
        let mut page = templates.render("404.html", context! {}).await?;
        *page.status_mut() = StatusCode::NOT_FOUND;
        return Ok(page);
    };
    let url = format!("/articles/{}/", article.slug);
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
        return Ok(redirect(&url));
    }
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
    let author = context! { get_username => article.author.clone() };
    let article = context! {
        title => article.title,
        body => article.body,
        published_at => article.published_at,
        get_absolute_url => url,
        author,
    };
    let form = context! { as_p => minijinja::Value::from_safe_string(form.as_p()) };
    templates
        .render(
            "articles/article_detail.html",
            context! { article, tags, comments, form },
        )
        .await
}
