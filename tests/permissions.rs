//! A permission check in a handler the team writes, answered as Django answers
//! `@permission_required(..., raise_exception=True)`: the anonymous user to the login page, a
//! user without the permission the project's 403 page (a ported `403.html`, rendered for that
//! user as Django's `permission_denied` renders it; logged in one line), a user with it
//! (through a group, or as a superuser) the view. Served in this process by a server built on the engine, with the
//! legacy handlers (for the login) and one of the test's own.

mod support;

use ficus::prelude::*;
use libtest_mimic::{Arguments, Failed, Trial};
use support::browser::Browser;

/// A view behind `@permission_required("articles.add_article", raise_exception=True)`.
async fn add_article_form(
    LoginRequired(user): LoginRequired,
    auth: Auth,
) -> Result<Response, Error> {
    if !user.has_perm(&auth, "articles.add_article").await? {
        return Err(Error::PermissionDenied);
    }
    Ok(format!("{} may add articles", user.username).into_response())
}

fn main() {
    let args = Arguments::from_args();
    let site = support::Site::new();
    for (name, value) in site.env() {
        // SAFETY: no other thread runs yet, so nothing reads the environment meanwhile.
        unsafe { std::env::set_var(name, value) };
    }
    // bob holds the permission through a group, as a team gives it.
    let granted = std::process::Command::new(support::python())
        .args([
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth.models import Group, Permission, User; \
             g = Group.objects.create(name='writers'); \
             g.permissions.add(Permission.objects.get(codename='add_article')); \
             User.objects.get(username='bob').groups.add(g)",
        ])
        .current_dir(support::repo().join("legacy_django"))
        .envs(site.env())
        .status()
        .is_ok_and(|s| s.success());
    assert!(granted, "manage.py shell could not give bob the permission");
    let routes = "[[route]]\npath = \"/accounts/login/\"\nmethods = [\"GET\"]\nhandler = \"accounts::login_form\"\n\n\
                  [[route]]\npath = \"/accounts/login/\"\nmethods = [\"POST\"]\nhandler = \"accounts::login\"\n\n\
                  [[route]]\npath = \"/articles/new/\"\nhandler = \"test::add_article_form\"\nnew = true\n";
    // A project whose 403.html shows the user, ported: Django renders it for the request.
    let registry = legacy_migration::handlers::registry()
        .register("test::add_article_form", add_article_form)
        .templates(|env| {
            let _ = env.add_template(
                "403.html",
                "<h1>403 Forbidden</h1><p>{{ user.get_username }} may not.</p>\n",
            );
        });
    let server = support::in_process::serve(routes, registry, &[]);
    let (addr, log) = (server.addr, server.log.clone());

    let trial = Trial::test(
        "permissions_answer_as_permission_required_does",
        move || {
            let login = |user: &str| {
                let mut browser = Browser::new(addr);
                browser.get("/accounts/login/");
                let done = browser.post_form(
                    "/accounts/login/",
                    &[
                        ("username", user),
                        ("password", &format!("{user}-password")),
                    ],
                );
                if done.status != 302 {
                    return Err(Failed::from(format!(
                        "{user} could not log in: {}",
                        done.text()
                    )));
                }
                Ok(browser)
            };
            let anonymous = Browser::new(addr).get("/articles/new/");
            check(
                anonymous.status == 302,
                "the anonymous user is sent to log in",
            )?;
            check(
                anonymous.header("location") == Some("/accounts/login/?next=/articles/new/"),
                "the redirect names the page",
            )?;

            let refused = login("alice")?.get("/articles/new/");
            check(
                refused.status == 403,
                &format!("alice is refused: {}", refused.status),
            )?;
            check(
                refused.text() == "<h1>403 Forbidden</h1><p>alice may not.</p>\n",
                &refused.text(),
            )?;
            check(
                log.text()
                    .contains("Forbidden (Permission denied): /articles/new/"),
                "the refusal is logged",
            )?;

            let allowed = login("editor")?.get("/articles/new/");
            check(allowed.status == 200, &allowed.text())?;
            check(allowed.text() == "editor may add articles", &allowed.text())
        },
    );
    let conclusion = libtest_mimic::run(&args, vec![trial]);
    drop(server);
    drop(site);
    conclusion.exit();
}

fn check(ok: bool, what: &str) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(Failed::from(what)) }
}
