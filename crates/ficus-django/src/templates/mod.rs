//! A minijinja environment that renders ported Django templates byte for byte as Django does.
//!
//! A view ported to Rust renders the Jinja rewrite of a Django template; its page must be the
//! page Django gave. So this module gives minijinja Django's output conventions: every template
//! is HTML-escaped as `django.utils.html.escape` escapes, values print as Django's
//! `render_value_in_context` prints them (`None`, `True`, `1.0`, localized dates), and the
//! filters a Django template uses exist under their Django names with Django's behaviour
//! (`filters.rs`, with dates in `dateformat.rs` and `timesince.rs`).
//!
//! What must not be here: loaders, globals, `url`/`static`/`csrf_token` functions, or settings
//! read from anywhere but [`Options`]; the caller adds those to the environment it gets.

mod dateformat;
mod filters;
mod moment;
mod numbers;
mod pyfmt;
mod striptags;
mod text;
mod timesince;
mod unicode_tables;

use std::fmt;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, Output, State, UndefinedBehavior, Value};

pub use moment::{date_value, datetime_value, naive_datetime_value, time_value};
pub use text::slugify;

/// What the environment needs to know of the Django settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `settings.TIME_ZONE`: aware datetimes are shown in it when `use_tz` is set, and naive
    /// ones are taken to be in it (as Django takes them) for `O`, `T`, `U` and `r`.
    pub time_zone: chrono_tz::Tz,
    /// `settings.USE_TZ`.
    pub use_tz: bool,
}

/// A minijinja environment with Django's escaping, value formatting and filters.
///
/// Every template is HTML-escaped whatever its name, since Django's engine escapes every
/// template. Undefined values print as `""` and chain (`{{ missing.attr }}` is `""`), as
/// Django's `string_if_invalid` does. The caller adds a loader, globals and functions (`url`,
/// `static`, `csrf_token`) itself.
pub fn environment(options: &Options) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    // Django keeps a template's last newline; minijinja drops it unless told.
    env.set_keep_trailing_newline(true);
    let opts = *options;
    env.set_formatter(move |out, state, value| write_value(out, state, value, &opts));
    filters::register(&mut env, opts);
    env
}

/// `django.utils.html.escape`: `& < > " '` become `&amp; &lt; &gt; &quot; &#x27;`.
///
/// Unlike minijinja's own escaping, `/` is left alone, as Django leaves it.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Writing to a String cannot fail.
    let _ = write_escaped(&mut out, text);
    out
}

/// [`escape`] into a writer, copying the runs between the five characters as they are.
fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut copied = 0;
    for (at, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            _ => continue,
        };
        out.write_str(&text[copied..at])?;
        out.write_str(entity)?;
        copied = at + 1;
    }
    out.write_str(&text[copied..])
}

/// Whether the template is being escaped at this point (`{% autoescape false %}` turns it off).
fn escaping(state: &State) -> bool {
    !matches!(state.auto_escape(), AutoEscape::None)
}

/// Writes `{{ value }}` as Django's `render_value_in_context` does: localized, then escaped
/// unless the value is marked safe.
fn write_value(
    out: &mut Output,
    state: &State,
    value: &Value,
    opts: &Options,
) -> Result<(), Error> {
    let safe_message = value
        .downcast_object_ref::<crate::messages::MessageValue>()
        .is_some_and(|m| m.0.safe);
    let raw = value.is_safe() || safe_message || !escaping(state);
    // Strings, the usual case, are written without a copy.
    let localized;
    let text = match (value.as_str(), value.kind()) {
        (Some(text), ValueKind::String) => text,
        _ => {
            localized = pyfmt::localize(value, opts);
            &localized
        }
    };
    if raw {
        out.write_str(text)?;
    } else {
        write_escaped(out, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The expected strings come from Django 5.2's own engine, rendering the Django-syntax
    //! version of each template with the same data.

    use super::*;
    use minijinja::context;

    fn options() -> Options {
        Options {
            time_zone: chrono_tz::UTC,
            use_tz: true,
        }
    }

    fn render(source: &str, ctx: Value) -> String {
        let env = environment(&options());
        match env.render_str(source, ctx) {
            Ok(text) => text,
            Err(err) => panic!("{source}: {err:#}"),
        }
    }

    #[test]
    fn escape_is_djangos_and_leaves_slash_alone() {
        let text = render("{{ v }}", context! { v => "<a href='/x'>&\"</a>" });
        assert_eq!(text, "&lt;a href=&#x27;/x&#x27;&gt;&amp;&quot;&lt;/a&gt;");
        assert_eq!(escape("a/b 'c'"), "a/b &#x27;c&#x27;");
    }

    #[test]
    fn every_template_name_is_escaped() {
        let mut env = environment(&options());
        for name in ["page.html", "mail.txt", "feed.xml", "plain"] {
            if let Err(err) = env.add_template_owned(name.to_owned(), "{{ v }}".to_owned()) {
                panic!("{err}");
            }
        }
        for name in ["page.html", "mail.txt", "feed.xml", "plain"] {
            let text = env
                .get_template(name)
                .and_then(|t| t.render(context! { v => "<&>" }));
            assert_eq!(text.ok().as_deref(), Some("&lt;&amp;&gt;"), "{name}");
        }
    }

    #[test]
    fn safe_values_are_written_as_they_are() {
        let ctx = context! { v => "<b>x</b>", s => Value::from_safe_string("<i>y</i>".into()) };
        let text = render("{{ v|safe }} {{ s }}", ctx);
        assert_eq!(text, "<b>x</b> <i>y</i>");
    }

    #[test]
    fn autoescape_false_block_writes_unescaped() {
        let text = render(
            "{% autoescape false %}{{ v }}{% endautoescape %}",
            context! { v => "<&>" },
        );
        assert_eq!(text, "<&>");
    }

    #[test]
    fn none_bool_and_numbers_print_as_python() {
        // Django: None True False 1.0 0.1 1e20 1.5e-7 7 -0.0 1e15, each as {{ v }}.
        let values = serde_json::json!([null, true, false, 1.0, 0.1, 1e20, 1.5e-7, 7, -0.0, 1e15]);
        let text = render(
            "{% for v in values %}{{ v }}{% if not loop.last %} {% endif %}{% endfor %}",
            context! { values => Value::from_serialize(values) },
        );
        assert_eq!(
            text,
            "None True False 1.0 0.1 100000000000000000000 0.00000015 7 -0.0 1000000000000000.0"
        );
    }

    #[test]
    fn undefined_prints_empty_and_chains() {
        assert_eq!(
            render("[{{ missing }}|{{ missing.attr.deeper }}]", context! {}),
            "[|]"
        );
    }

    #[test]
    fn lists_and_dicts_print_as_python_repr() {
        // Django: {{ a }}|{{ b }} with [1, 'x', None, 1.5, "it's", {'k': True}], {'a': 'say "hi"'}
        let list = serde_json::json!([1, "x", null, 1.5, "it's", {"k": true}]);
        let dict = serde_json::json!({"a": "say \"hi\""});
        let ctx = context! { a => Value::from_serialize(list), b => Value::from_serialize(dict) };
        assert_eq!(
            render("{{ a }}|{{ b }}", ctx),
            "[1, &#x27;x&#x27;, None, 1.5, &quot;it&#x27;s&quot;, {&#x27;k&#x27;: True}]|{&#x27;a&#x27;: &#x27;say &quot;hi&quot;&#x27;}"
        );
    }

    #[test]
    fn datetimes_print_localized_in_the_time_zone() {
        // Django, TIME_ZONE="Europe/Paris", USE_TZ=True: {{ v }} with 2024-07-01 12:00 UTC,
        // date(2024, 3, 5), time(0, 0), and a string, which prints as it is.
        let env = environment(&Options {
            time_zone: chrono_tz::Europe::Paris,
            use_tz: true,
        });
        let noon_utc = chrono::DateTime::from_timestamp(1_719_835_200, 0).unwrap_or_default();
        let day = chrono::NaiveDate::from_ymd_opt(2024, 3, 5).unwrap_or_default();
        let ctx = context! {
            v => datetime_value(&noon_utc),
            e => date_value(&day),
            t => time_value(&chrono::NaiveTime::MIN),
            d => "2024-07-01T12:00:00Z",
        };
        let text = env
            .render_str("{{ v }}|{{ e }}|{{ t }}|{{ d }}", ctx)
            .map_err(|e| e.to_string());
        assert_eq!(
            text.as_deref(),
            Ok("July 1, 2024, 2 p.m.|March 5, 2024|midnight|2024-07-01T12:00:00Z")
        );
    }

    #[test]
    fn inheritance_goes_through_the_formatter() {
        // Django: base.html "<title>{% block title %}Site{% endblock %}</title>{% block body %}{% endblock %}",
        // page.html extends it; body "{{ user }} {{ n }} {{ missing }}" with "O'Brien & co", None.
        let mut env = environment(&options());
        let base =
            "<title>{% block title %}Site{% endblock %}</title>{% block body %}{% endblock %}";
        let page = "{% extends \"base.html\" %}{% block title %}{{ user }} - {{ super() }}{% endblock %}\
                    {% block body %}<p>{{ n }} {{ missing }}</p>{% endblock %}";
        let added = env
            .add_template_owned("base.html".to_owned(), base.to_owned())
            .and_then(|()| env.add_template_owned("page.html".to_owned(), page.to_owned()));
        assert!(added.is_ok(), "{added:?}");
        let text = env
            .get_template("page.html")
            .and_then(|t| t.render(context! { user => "O'Brien & co", n => () }));
        assert_eq!(
            text.ok().as_deref(),
            Some("<title>O&#x27;Brien &amp; co - Site</title><p>None </p>")
        );
    }
}
