//! HTML pages rendered in Rust from the migration's ported templates, with what Django's
//! context processors put in every page: `user`, `messages`, `csrf_input` and `csrf_token`
//! (the names Django's own Jinja2 backend gives them), and `request`; plus the functions
//! `url(name, *args)` and `static(path)`.
//!
//! The engine is minijinja with Django's escaping, value formatting and filters
//! (`ficus_django::templates`). Templates are the migration's, embedded in its binary and
//! named by their path below `src/handlers/` (`accounts/login.html`); see migration.md for how
//! a Django template is ported.
//!
//! What it must not do: make a page differ from Django's by what it reads. The user and the
//! messages are looked up before rendering, but the session counts as read (`Vary: Cookie`) only
//! when the page uses them, and the CSRF cookie is only set when the page shows a token.

use std::fmt;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Environment, Error as TemplateError, ErrorKind};

use ficus_django::messages::MessageValue;

use super::RequestState;
use super::auth::User;
use super::urls::Urls;
use crate::ported::error::{Error, RequiresCsrfToken};

/// Marks where a page shows a CSRF token; replaced after rendering, so a token (and the cookie
/// that goes with it) exists only for pages that show one. Control characters never occur in
/// a rendered page otherwise.
const CSRF_INPUT: &str = "\u{1}ficus:csrf_input\u{1}";
const CSRF_TOKEN: &str = "\u{1}ficus:csrf_token\u{1}";

/// How a migration puts its templates into the environment (`minijinja_embed::load_templates!`).
pub(crate) type TemplateLoader = fn(&mut Environment<'static>);

/// The template environment, shared by every request.
pub(crate) struct Engine {
    env: Environment<'static>,
}

impl Engine {
    pub(crate) fn new(
        options: &ficus_django::templates::Options,
        loaders: &[TemplateLoader],
        urls: Arc<Urls>,
        static_url: String,
        static_storage: String,
    ) -> Self {
        let mut env = ficus_django::templates::environment(options);
        for load in loaders {
            load(&mut env);
        }
        env.add_function(
            "url",
            move |name: String, args: minijinja::value::Rest<Value>| {
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                urls.reverse(&name, &args)
                    .map_err(|e| TemplateError::new(ErrorKind::InvalidOperation, e.to_string()))
            },
        );
        env.add_function("static", move |path: String| {
            let plain = [
                "",
                "django.contrib.staticfiles.storage.StaticFilesStorage",
                "django.core.files.storage.FileSystemStorage",
            ];
            if !plain.contains(&static_storage.as_str()) {
                return Err(TemplateError::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "static() knows the plain static files storage only, not {static_storage}"
                    ),
                ));
            }
            Ok(format!(
                "{static_url}{}",
                super::urls::iri_to_uri(path.trim_start_matches('/'))
            ))
        });
        Self { env }
    }
}

/// Renders the migration's templates for this request: `templates: Templates`, then
/// `templates.render("accounts/profile.html", context! { articles })`.
#[derive(Clone)]
pub struct Templates(pub(crate) Arc<RequestState>);

impl Templates {
    /// `raise Http404`: the project's `404.html` with status 404, rendered for this request as
    /// Django's `page_not_found` renders it (the layout sees the user).
    ///
    /// A migration that has not ported `404.html` answers with the page Django's `handler404`
    /// renders for this path, as for an anonymous request (the user is Django's to load).
    pub async fn not_found(&self) -> Result<Response, Error> {
        if self.0.web.templates.env.get_template("404.html").is_err() {
            return django_not_found(&self.0.web, self.0.facts.path.clone()).await;
        }
        let mut page = self.render("404.html", Value::from(())).await?;
        *page.status_mut() = http::StatusCode::NOT_FOUND;
        page.extensions_mut().insert(RequiresCsrfToken);
        Ok(page)
    }

    /// Django's `permission_denied` view when the migration has a ported `403.html`: that page
    /// for this request, status 403; None without one, or when it did not render (logged).
    pub(crate) async fn permission_denied(&self) -> Option<Response> {
        if self.0.web.templates.env.get_template("403.html").is_err() {
            return None;
        }
        match self
            .render("403.html", minijinja::context! { exception => "" })
            .await
        {
            Ok(mut page) => {
                *page.status_mut() = StatusCode::FORBIDDEN;
                page.extensions_mut().insert(RequiresCsrfToken);
                Some(page)
            }
            Err(err) => {
                tracing::error!("the ported 403.html did not render: {err}");
                None
            }
        }
    }

    /// The page `name` with `context` (the view's values win over the context processors'),
    /// as a `200 text/html; charset=utf-8` response.
    pub async fn render(&self, name: &str, context: Value) -> Result<Response, Error> {
        let html = self.render_to_string(name, context).await?;
        Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response())
    }

    /// The page as text (`render_to_string`).
    pub async fn render_to_string(&self, name: &str, context: Value) -> Result<String, Error> {
        let state = &self.0;
        let was_read = state
            .session_accessed
            .load(std::sync::atomic::Ordering::Relaxed);
        let user = state.user().await?;
        super::messages::prepare(state).await?;
        super::csrf::prepare(state).await?;
        // Looking the user up read the session; the page has not, yet.
        if !was_read {
            state
                .session_accessed
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        let processors = minijinja::context! {
            user => Value::from_object(UserValue { state: state.clone(), user }),
            messages => Value::from_object(MessagesValue { state: state.clone() }),
            csrf_input => Value::from_safe_string(CSRF_INPUT.to_owned()),
            csrf_token => Value::from_safe_string(CSRF_TOKEN.to_owned()),
            request => minijinja::context! {
                path => state.facts.path.clone(),
                method => state.facts.method.as_str(),
                get_full_path => state.facts.full_path.clone(),
            },
        };
        let merged = minijinja::value::merge_maps([context, processors]);
        let template = state
            .web
            .templates
            .env
            .get_template(name)
            .map_err(|e| Error::Template(e.to_string()))?;
        let html = template
            .render(merged)
            .map_err(|e| Error::Template(describe(&e)))?;
        Ok(fill_tokens(state, html))
    }
}

/// A template error with the template, line and cause minijinja knows.
fn describe(err: &TemplateError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn fill_tokens(state: &RequestState, html: String) -> String {
    if !html.contains('\u{1}') {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 128);
    let mut rest = html.as_str();
    loop {
        let input = rest.find(CSRF_INPUT);
        let token = rest.find(CSRF_TOKEN);
        let (at, len, as_input) = match (input, token) {
            (Some(i), Some(t)) if t < i => (t, CSRF_TOKEN.len(), false),
            (Some(i), _) => (i, CSRF_INPUT.len(), true),
            (None, Some(t)) => (t, CSRF_TOKEN.len(), false),
            (None, None) => break,
        };
        out.push_str(&rest[..at]);
        let token = super::csrf::token_now(state);
        if as_input {
            out.push_str(&format!(
                "<input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"{token}\">"
            ));
        } else {
            out.push_str(&token);
        }
        rest = &rest[at + len..];
    }
    out.push_str(rest);
    out
}

/// `user` in a template: `request.user`, read lazily as Django's `SimpleLazyObject` is.
#[derive(Debug)]
struct UserValue {
    state: Arc<RequestState>,
    user: Option<User>,
}

impl Object for UserValue {
    // Plain: `{{ user }}` prints the user name, as `str(request.user)` does.
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.state.mark_session_accessed();
        let user = self.user.as_ref();
        let flag = |f: fn(&User) -> bool| Value::from(user.is_some_and(f));
        Some(match key.as_str()? {
            "is_authenticated" => Value::from(user.is_some()),
            "is_anonymous" => Value::from(user.is_none()),
            "get_username" | "username" => Value::from(user.map_or("", |u| u.username.as_str())),
            "is_active" => flag(|u| u.is_active),
            "is_staff" => flag(|u| u.is_staff),
            "is_superuser" => flag(|u| u.is_superuser),
            "id" | "pk" => user.map_or(Value::from(()), |u| Value::from(u.id)),
            _ => return None,
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.state.mark_session_accessed();
        match &self.user {
            Some(user) => f.write_str(&user.username),
            None => f.write_str("AnonymousUser"),
        }
    }
}

/// `messages` in a template: true when there are any, and used up when iterated.
#[derive(Debug)]
struct MessagesValue {
    state: Arc<RequestState>,
}

impl Object for MessagesValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !self.state.messages_for_page(false).is_empty()
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.state.messages_for_page(false).len())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let messages = self.state.messages_for_page(true);
        Enumerator::Values(messages.into_iter().map(MessageValue::value).collect())
    }
}

/// The page Django's `handler404` renders for `path`, as for an anonymous request: the 404 of a
/// migration that has not ported `404.html`.
pub(crate) async fn django_not_found(web: &super::Web, path: String) -> Result<Response, Error> {
    let (status, content_type, body) = web
        .python
        .call(move |py| crate::python::django::not_found_page(py, &path))
        .await?;
    let mut page = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND),
        body,
    )
        .into_response();
    if let Ok(value) = http::HeaderValue::from_str(&content_type) {
        page.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Ok(page)
}
