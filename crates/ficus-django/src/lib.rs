//! Django's request-level conventions, as pure Rust that gives the bytes Django gives.
//!
//! A ported view must read and write what Django reads and writes: the session a Django view
//! saved, the CSRF cookie Django set, the message a Django page will show. Each module here is
//! one of those conventions, written from Django 5.2's source and checked against its output:
//!
//! - `signing`: `django.core.signing` (salted HMAC, `Signer`, `TimestampSigner`, `dumps`/`loads`
//!   with the compressed-JSON format), with `SECRET_KEY_FALLBACKS`.
//! - `sessions`: how the database and signed-cookie backends encode a session, and session keys.
//! - `passwords`: `check_password` for the hashers Django ships, and the session-auth hash.
//! - `csrf`: `CsrfViewMiddleware`'s tokens (masking, the cookie secret) and its checks.
//! - `messages`: the cookie and session encodings of `django.contrib.messages`.
//! - `forms`: `application/x-www-form-urlencoded` bodies read under Django's limits, and
//!   `form_html`: a form drawn as Django's default form templates draw it.
//! - `cookies`: a `Set-Cookie` value written as Django's `HttpResponse.set_cookie` writes it.
//! - `csv`: a row written as Python's `csv.writer` (the `excel` dialect) writes it.
//! - `templates`: a minijinja environment that escapes as Django does, with Django's filters.
//! - `storage`: the names of uploaded and stored files (`FileSystemStorage`), and the headers of
//!   a `FileResponse`.
//! - `urls`: `urlsplit`'s scheme and location, and where a redirect may go.
//!
//! What must not be here: Python, the database, the network, or settings of its own. Callers
//! pass every key, salt and limit in; the engine reads them from the live Django settings.

pub mod cookies;
pub mod csrf;
pub mod csv;
pub mod form_html;
pub mod forms;
pub mod messages;
pub mod passwords;
pub mod sessions;
pub mod signing;
pub mod storage;
pub mod templates;
pub mod urls;
