//! The ported views of the legacy project, one file per Django app they come from, and the
//! registry routes.toml names them by (`articles::detail` is `articles.rs`'s `detail`).
//!
//! Each handler names the Django view it replaces and must answer as that view does; the parity
//! tests hold it to that. Shared machinery (extractors, JSON bytes, the Python helper, the
//! database) is the engine's, in `ficus::prelude`. Ported templates sit beside the handlers of
//! their app (`accounts/login.html`), the shared layout here (`base.html`); build.rs embeds every
//! `.html` file below this directory, named by its path from here.

pub mod accounts;
pub mod ai;
pub mod articles;
pub mod legacy;
pub mod media;
pub mod reports;

use ficus::prelude::*;

/// Every handler routes.toml may name, under its path here (`articles::detail`).
pub fn registry() -> Registry {
    registry![
        legacy::healthz,
        articles::list,
        articles::detail,
        articles::create,
        articles::home,
        articles::article_list,
        articles::article_page,
        articles::comment,
        media::signed_url,
        media::upload_form,
        media::upload,
        media::serve_file,
        #[csrf_exempt]
        ai::summarize,
        ai::related,
        reports::articles_csv,
        // LoginView and LogoutView are @csrf_protect.
        #[csrf_protect]
        accounts::login_form,
        #[csrf_protect]
        accounts::login,
        #[csrf_protect]
        accounts::logout,
        accounts::profile,
    ]
    .templates(|env| minijinja_embed::load_templates!(*env))
}
