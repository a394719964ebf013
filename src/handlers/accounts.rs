//! Ported views of the `accounts` app: `django.contrib.auth.views.LoginView` and `LogoutView`
//! as `accounts/urls.py` configures them, and `accounts.views.profile`.
//!
//! Their templates sit beside this file (`accounts/login.html`, `accounts/profile.html`), and
//! extend the project's `base.html`. The login form is Django's `AuthenticationForm`, drawn by
//! `form_html` as Django's `as_p` draws it.

use chrono::{DateTime, Utc};
use ficus::prelude::form_html::{Attr, Field, Widget};
use ficus::prelude::*;
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

/// `AuthenticationForm.error_messages["invalid_login"]`, with the username field's name.
const INVALID_LOGIN: &str =
    "Please enter a correct username and password. Note that both fields may be case-sensitive.";
const REQUIRED: &str = "This field is required.";

/// `AuthenticationForm`, bound to what was posted (or unbound), with its errors.
#[derive(Default)]
struct LoginForm {
    username: Option<String>,
    username_errors: Vec<String>,
    password_errors: Vec<String>,
    non_field_errors: Vec<String>,
}

impl LoginForm {
    /// The form as Django draws it (`{{ form.as_p }}`).
    fn html(&self) -> form_html::Form {
        let mut username = Field::new("username", "Username", Widget::Input("text"))
            .attr("autofocus", Attr::Flag)
            .attr("autocapitalize", Attr::Value("none".into()))
            .attr("autocomplete", Attr::Value("username".into()))
            .attr("maxlength", Attr::Value("150".into()));
        // `format_value` draws no value for an empty one.
        username.value = self.username.clone().filter(|v| !v.is_empty());
        username.errors = self.username_errors.clone();
        let mut password = Field::new("password", "Password", Widget::Input("password"))
            .attr("autocomplete", Attr::Value("current-password".into()));
        password.errors = self.password_errors.clone();
        form_html::Form {
            non_field_errors: self.non_field_errors.clone(),
            fields: vec![username, password],
        }
    }
}

/// The login page with `form`; `next` is what `LoginView.get_redirect_url()` gives.
async fn login_page(
    templates: &Templates,
    form: &LoginForm,
    next: &str,
) -> Result<Response, Error> {
    let form = form.html().template_value();
    let page = templates
        .render("accounts/login.html", context! { form, next })
        .await?;
    Ok(never_cache(page))
}

/// Replaces `LoginView.as_view(template_name="accounts/login.html")` for `GET`: the empty form.
pub async fn login_form(
    auth: Auth,
    templates: Templates,
    query: QueryDict,
) -> Result<Response, Error> {
    let next = auth.safe_next(query.get("next")).unwrap_or_default();
    login_page(&templates, &LoginForm::default(), &next).await
}

/// Replaces `LoginView` for `POST`: `AuthenticationForm`'s checks, then `login()` and the
/// redirect to a safe `next` or `LOGIN_REDIRECT_URL`; a failed login shows the form again.
pub async fn login(
    auth: Auth,
    templates: Templates,
    query: QueryDict,
    Form(data): Form,
) -> Result<Response, Error> {
    // UsernameField: stripped, then NFKC-normalised; the password is taken as it is.
    let username: Option<String> = data.get("username").map(|u| u.trim().nfkc().collect());
    let password = data.get("password").unwrap_or("");
    let mut form = LoginForm {
        username: data.get("username").map(str::to_owned),
        ..LoginForm::default()
    };
    let username = username.filter(|u| !u.is_empty());
    if username.is_none() {
        form.username_errors.push(REQUIRED.to_owned());
    }
    if password.is_empty() {
        form.password_errors.push(REQUIRED.to_owned());
    }
    let next = data.get("next").or_else(|| query.get("next"));
    if let Some(username) = username.as_deref()
        && !password.is_empty()
    {
        match auth.authenticate(username, password).await? {
            Some(user) => {
                auth.login(&user).await?;
                return Ok(never_cache(redirect(&auth.login_redirect(next))));
            }
            None => form.non_field_errors.push(INVALID_LOGIN.to_owned()),
        }
    }
    let next = auth.safe_next(next).unwrap_or_default();
    login_page(&templates, &form, &next).await
}

/// Replaces `LogoutView.as_view()` for `POST` (Django 5 only logs out on POST; a `GET` stays
/// with Django, whose answer is 405): the session is flushed, then the redirect to a safe
/// `next` or `LOGOUT_REDIRECT_URL`.
pub async fn logout(auth: Auth, query: QueryDict, Form(data): Form) -> Result<Response, Error> {
    auth.logout().await?;
    let next = data.get("next").or_else(|| query.get("next"));
    match auth.logout_redirect(next) {
        Some(url) => Ok(never_cache(redirect(&url))),
        None => Err(Error::internal(
            "LOGOUT_REDIRECT_URL is not set, so Django would render registration/logged_out.html, which is not ported",
        )),
    }
}

/// An article of the profile page.
#[derive(Serialize, sqlx::FromRow)]
struct ProfileArticle {
    title: String,
    #[sqlx(skip)]
    get_absolute_url: String,
    slug: String,
    published_at: DateTime<Utc>,
}

/// Replaces `accounts.views.profile` (`@login_required`): the user's own articles, newest
/// first (`Article.Meta.ordering`).
pub async fn profile(
    LoginRequired(user): LoginRequired,
    State(db): State<Database>,
    templates: Templates,
) -> Result<Response, Error> {
    let mut articles: Vec<ProfileArticle> = db
        .query(
            "SELECT title, slug, published_at FROM articles_article WHERE author_id = $1 \
             ORDER BY published_at DESC, id DESC",
        )
        .bind(user.id)
        .fetch_all()
        .await?;
    for article in &mut articles {
        article.get_absolute_url = format!("/articles/{}/", article.slug);
    }
    templates
        .render("accounts/profile.html", context! { articles })
        .await
}
