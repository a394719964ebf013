//! Django's built-in filters, registered on the environment under their Django names.
//!
//! Each filter takes what Django's takes and gives what Django's gives, including whether the
//! result is marked safe: Django's `is_safe=True` filters keep a safe input safe, the others
//! give plain text that autoescaping will escape. Undefined input is `""`, as Django's
//! `string_if_invalid` hands it to filters. Where minijinja has a builtin of the same name
//! (`length`, `join`, `default`, ...), Django's replaces it, aliases (`e`, `d`, `count`)
//! included. What must not be here: the text algorithms themselves (`text.rs`, `numbers.rs`,
//! `dateformat.rs`, `timesince.rs`, `striptags.rs`).

use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::dateformat::{self, Failure, Subject, named_format};
use super::moment::Moment;
use super::pyfmt::py_str;
use super::{Options, escaping, numbers, striptags, text, timesince};

/// Adds every filter to `env`.
pub(super) fn register(env: &mut Environment<'static>, opts: Options) {
    env.add_filter("date", move |value: Value, arg: Option<Value>| {
        date(&opts, &value, arg.as_ref())
    });
    env.add_filter("time", move |value: Value, arg: Option<Value>| {
        time(&opts, &value, arg.as_ref())
    });
    env.add_filter("timesince", move |value: Value, now: Option<Value>| {
        since(&opts, &value, now, false)
    });
    env.add_filter("timeuntil", move |value: Value, now: Option<Value>| {
        since(&opts, &value, now, true)
    });
    env.add_filter("pluralize", pluralize);
    env.add_filter("truncatechars", truncatechars);
    env.add_filter("truncatewords", truncatewords);
    env.add_filter("linebreaks", linebreaks);
    env.add_filter("linebreaksbr", linebreaksbr);
    env.add_filter("urlencode", urlencode);
    env.add_filter("escape", escape);
    env.add_filter("e", escape);
    env.add_filter("force_escape", force_escape);
    env.add_filter("safe", safe);
    env.add_filter("striptags", striptags);
    env.add_filter("default", default);
    env.add_filter("d", default);
    env.add_filter("default_if_none", default_if_none);
    env.add_filter("yesno", yesno);
    env.add_filter("length", length);
    env.add_filter("count", length);
    env.add_filter("floatformat", |value: Value, arg: Option<Value>| {
        numbers::floatformat(&value, arg.as_ref())
    });
    env.add_filter("join", join);
    env.add_filter("title", |value: Value| {
        keep_safety(&value, text::title(&py_str(&value)))
    });
    env.add_filter("capfirst", |value: Value| {
        keep_safety(&value, text::capfirst(&py_str(&value)))
    });
    env.add_filter("upper", |value: Value| {
        Value::from(py_str(&value).to_uppercase())
    });
    env.add_filter("lower", |value: Value| {
        keep_safety(&value, py_str(&value).to_lowercase())
    });
    env.add_filter("slugify", |value: Value| {
        keep_safety(&value, text::slugify(&py_str(&value)))
    });
    env.add_filter("filesizeformat", |value: Value| {
        numbers::filesizeformat(&value)
    });
    env.add_filter("wordcount", |value: Value| {
        Value::from(text::py_words(&py_str(&value)).count())
    });
    env.add_filter("first", first);
    env.add_filter("last", last);
}

/// What an `is_safe=True` filter gives: its text, safe when the input was.
fn keep_safety(input: &Value, text: String) -> Value {
    if input.is_safe() {
        Value::from_safe_string(text)
    } else {
        Value::from(text)
    }
}

/// `conditional_escape(value)` as text.
fn conditional_escape(value: &Value) -> String {
    if value.is_safe() {
        py_str(value)
    } else {
        super::escape(&py_str(value))
    }
}

/// `value in (None, "")`, undefined counting as `""`.
fn is_blank(value: &Value) -> bool {
    value.is_undefined() || value.is_none() || value.as_str() == Some("")
}

/// `get_format(arg or default)`.
fn format_arg(arg: Option<&Value>, default: &str) -> String {
    match arg {
        Some(arg) if arg.is_true() => named_format(&py_str(arg)).to_owned(),
        _ => named_format(default).to_owned(),
    }
}

fn date(opts: &Options, value: &Value, arg: Option<&Value>) -> Result<Value, Error> {
    if is_blank(value) {
        return Ok(Value::from(""));
    }
    let subject = Moment::from_value(value).and_then(|moment| Subject::new(moment, opts));
    match dateformat::format(subject.as_ref(), &format_arg(arg, "DATE_FORMAT"), false) {
        Ok(text) => Ok(Value::from(text)),
        Err(Failure::Unsupported) => Ok(Value::from("")),
        Err(Failure::TimeOnDate(c)) => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "The format for date objects may not contain time-related format specifiers (found '{c}')."
            ),
        )),
    }
}

fn time(opts: &Options, value: &Value, arg: Option<&Value>) -> Value {
    if is_blank(value) {
        return Value::from("");
    }
    let subject = Moment::from_value(value).and_then(|moment| Subject::new(moment, opts));
    Value::from(
        dateformat::format(subject.as_ref(), &format_arg(arg, "TIME_FORMAT"), true)
            .unwrap_or_default(),
    )
}

/// `timesince`/`timeuntil`: `""` for a falsy value, and where Django's raise is caught.
fn since(opts: &Options, value: &Value, now: Option<Value>, reversed: bool) -> Value {
    if !value.is_true() {
        return Value::from("");
    }
    let Some(d) = Moment::from_value(value) else {
        return Value::from("");
    };
    let now = match now.filter(Value::is_true) {
        Some(now) => match Moment::from_value(&now) {
            Some(now) => Some(now),
            None => return Value::from(""),
        },
        None => None,
    };
    let text = timesince::timesince(d, now, reversed, chrono::Utc::now(), opts.time_zone);
    Value::from(text.unwrap_or_default())
}

fn pluralize(value: Value, arg: Option<Value>) -> Value {
    let arg = arg.map_or_else(|| "s".to_owned(), |arg| py_str(&arg));
    let arg = if arg.contains(',') {
        arg
    } else {
        format!(",{arg}")
    };
    let bits: Vec<&str> = arg.split(',').collect();
    let [singular, plural] = bits[..] else {
        return Value::from("");
    };
    let one = match numbers::py_float(&value) {
        Ok(x) => x == 1.0,
        Err(numbers::NotFloat::Value) => return Value::from(""),
        Err(numbers::NotFloat::Type) => match value.kind() {
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => value.len() == Some(1),
            _ => return Value::from(""),
        },
    };
    Value::from(if one { singular } else { plural })
}

/// `int(arg)` for the truncation filters: `None` where Django gives the value back.
fn length_arg(arg: &Value) -> Result<Option<i64>, Error> {
    Ok(numbers::py_int(arg)?.map(|n| n.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64))
}

fn truncatechars(value: Value, arg: Value) -> Result<Value, Error> {
    let text = py_str(&value);
    Ok(match length_arg(&arg)? {
        Some(length) => keep_safety(&value, text::truncate_chars(&text, length)),
        None => keep_safety(&value, text),
    })
}

fn truncatewords(value: Value, arg: Value) -> Result<Value, Error> {
    let text = py_str(&value);
    Ok(match length_arg(&arg)? {
        Some(length) => keep_safety(&value, text::truncate_words(&text, length)),
        None => keep_safety(&value, text),
    })
}

fn linebreaks(state: &State, value: Value) -> Value {
    let autoescape = escaping(state) && !value.is_safe();
    Value::from_safe_string(text::linebreaks(&py_str(&value), autoescape))
}

fn linebreaksbr(state: &State, value: Value) -> Value {
    let autoescape = escaping(state) && !value.is_safe();
    Value::from_safe_string(text::linebreaksbr(&py_str(&value), autoescape))
}

fn urlencode(value: Value, safe: Option<Value>) -> Value {
    let safe = safe.map_or_else(|| "/".to_owned(), |safe| py_str(&safe));
    Value::from(text::quote(&py_str(&value), &safe))
}

/// Django's `escape` is `conditional_escape`: what is already safe is not escaped twice.
fn escape(value: Value) -> Value {
    if value.is_safe() {
        value
    } else {
        Value::from_safe_string(super::escape(&py_str(&value)))
    }
}

fn force_escape(value: Value) -> Value {
    Value::from_safe_string(super::escape(&py_str(&value)))
}

fn safe(value: Value) -> Value {
    if value.is_safe() {
        value
    } else {
        Value::from_safe_string(py_str(&value))
    }
}

fn striptags(value: Value) -> Result<Value, Error> {
    match striptags::strip_tags(&py_str(&value)) {
        Ok(text) => Ok(keep_safety(&value, text)),
        Err(striptags::Suspicious) => Err(Error::new(
            ErrorKind::InvalidOperation,
            "striptags: the value is nested too deeply (Django's SuspiciousOperation)",
        )),
    }
}

/// `value or arg`.
fn default(value: Value, arg: Value) -> Value {
    if value.is_true() { value } else { arg }
}

fn default_if_none(value: Value, arg: Value) -> Value {
    if value.is_none() {
        arg
    } else if value.is_undefined() {
        Value::from("")
    } else {
        value
    }
}

fn yesno(value: Value, arg: Option<Value>) -> Value {
    let arg = arg
        .filter(|arg| !arg.is_none())
        .map_or_else(|| "yes,no,maybe".to_owned(), |arg| py_str(&arg));
    let bits: Vec<&str> = arg.split(',').collect();
    let (yes, no, maybe) = match bits[..] {
        [yes, no, maybe] => (yes, no, maybe),
        [yes, no, ..] => (yes, no, no),
        _ => {
            return if value.is_undefined() {
                Value::from("")
            } else {
                value
            };
        }
    };
    Value::from(if value.is_none() {
        maybe
    } else if value.is_true() {
        yes
    } else {
        no
    })
}

/// `len(value)`, `0` for what has no length.
fn length(value: Value) -> Value {
    let len = match value.kind() {
        ValueKind::String => value.as_str().map_or(0, |text| text.chars().count()),
        ValueKind::Bytes => value.as_bytes().map_or(0, <[u8]>::len),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => value
            .len()
            .unwrap_or_else(|| value.try_iter().map_or(0, Iterator::count)),
        _ => 0,
    };
    Value::from(len)
}

/// The items `join` joins: a string's characters, a sequence's items, a map's keys; `None`
/// for what Python cannot iterate.
fn items(value: &Value) -> Option<Vec<Value>> {
    match value.kind() {
        ValueKind::Undefined => Some(Vec::new()),
        ValueKind::String | ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            value.try_iter().ok().map(Iterator::collect)
        }
        _ => None,
    }
}

fn join(state: &State, value: Value, sep: Value) -> Value {
    let Some(items) = items(&value) else {
        return value;
    };
    if escaping(state) {
        let parts: Vec<String> = items.iter().map(conditional_escape).collect();
        return Value::from_safe_string(parts.join(&conditional_escape(&sep)));
    }
    // Unescaped, Python's `str.join` refuses anything but strings.
    let (Some(sep), true) = (
        sep.as_str(),
        items.iter().all(|item| item.kind() == ValueKind::String),
    ) else {
        return value;
    };
    let parts: Vec<String> = items.iter().map(py_str).collect();
    Value::from_safe_string(parts.join(sep))
}

/// `value[0]` or `value[-1]`: `""` when empty, Django's exception for what has no index.
fn end_item(value: &Value, last: bool, name: &str) -> Result<Value, Error> {
    let pick = |items: Vec<Value>| {
        let item = if last { items.last() } else { items.first() };
        item.cloned().unwrap_or_else(|| Value::from(""))
    };
    match value.kind() {
        ValueKind::Undefined => Ok(Value::from("")),
        ValueKind::String | ValueKind::Seq | ValueKind::Iterable => Ok(pick(
            value.try_iter().map(Iterator::collect).unwrap_or_default(),
        )),
        kind => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{name}: a {kind} has no first or last item"),
        )),
    }
}

fn first(value: Value) -> Result<Value, Error> {
    end_item(&value, false, "first")
}

/// `last` is `is_safe=True`: the last character of a safe string stays safe.
fn last(value: Value) -> Result<Value, Error> {
    let item = end_item(&value, true, "last")?;
    Ok(if value.kind() == ValueKind::String {
        keep_safety(&value, py_str(&item))
    } else {
        item
    })
}

#[cfg(test)]
mod tests {
    //! Every expected string here is what Django 5.2 renders for the Django-syntax version of
    //! the template (`{{ v|pluralize:"y,ies" }}` for `{{ v|pluralize("y,ies") }}`) with the
    //! same data, `TIME_ZONE = "UTC"` unless a test says otherwise.

    use minijinja::context;

    use super::super::{Options, environment};
    use super::*;

    fn render_with(opts: Options, source: &str, ctx: Value) -> String {
        let env = environment(&opts);
        env.render_str(source, ctx)
            .unwrap_or_else(|err| format!("ERR {err:#}"))
    }

    fn render(source: &str, ctx: Value) -> String {
        render_with(
            Options {
                time_zone: chrono_tz::UTC,
                use_tz: true,
            },
            source,
            ctx,
        )
    }

    fn json(value: serde_json::Value) -> Value {
        Value::from_serialize(value)
    }

    #[test]
    fn date_filter_formats_and_defaults_to_date_format() {
        let ctx = context! { d => "2024-01-01T12:00:00Z", e => "2024-03-05" };
        assert_eq!(
            render(
                "{{ d|date }}|{{ d|date('Y-m-d H:i') }}|{{ d|date('SHORT_DATE_FORMAT') }}|{{ e|date('D d M') }}",
                ctx
            ),
            "Jan. 1, 2024|2024-01-01 12:00|01/01/2024|Tue 05 Mar"
        );
    }

    #[test]
    fn date_filter_converts_to_the_time_zone() {
        // Django: TIME_ZONE="Europe/Paris", USE_TZ=True.
        let paris = Options {
            time_zone: chrono_tz::Europe::Paris,
            use_tz: true,
        };
        let ctx = context! { d => "2024-07-01T22:30:00+00:00", n => "2024-07-01 22:30:00" };
        assert_eq!(
            render_with(
                paris,
                "{{ d|date('Y-m-d H:i T') }}|{{ n|date('H:i O') }}|{{ d|time }}",
                ctx
            ),
            "2024-07-02 00:30 CEST|22:30 +0200|12:30 a.m."
        );
    }

    #[test]
    fn date_filter_gives_empty_for_what_is_no_date() {
        let ctx = context! { a => "", b => (), c => "yesterday", d => 5 };
        assert_eq!(
            render(
                "[{{ a|date }}{{ b|date }}{{ c|date('Y') }}{{ d|date('Y') }}{{ m|date }}]",
                ctx
            ),
            "[]"
        );
        assert_eq!(
            render("{{ c|date('-') }}", context! { c => "yesterday" }),
            "-"
        );
    }

    #[test]
    fn date_filter_refuses_time_specifiers_on_a_date() {
        let text = render("{{ d|date('H') }}", context! { d => "2024-03-05" });
        assert!(
            text.starts_with("ERR") && text.contains("time-related format specifiers (found 'H')"),
            "{text}"
        );
    }

    #[test]
    fn time_filter_formats_times_only() {
        let ctx = context! { d => "2024-01-01T14:05:00Z", t => "09:30:00", e => "2024-03-05" };
        assert_eq!(
            render(
                "{{ d|time }}|{{ d|time('H:i') }}|{{ t|time }}|{{ d|time('Y') }}|{{ e|time('H') }}|{{ t|date('H:i') }}",
                ctx
            ),
            "2:05 p.m.|14:05|9:30 a.m.|||09:30"
        );
    }

    #[test]
    fn timesince_and_timeuntil_filters() {
        let ctx = context! {
            d => "2024-03-08T12:00:00Z",
            n => "2024-03-10T15:30:00Z",
            naive => "2024-03-01 12:00:00",
        };
        assert_eq!(
            render(
                "{{ d|timesince(n) }}|{{ n|timeuntil(d) }}|{{ d|timeuntil(n) }}|{{ naive|timesince(n) }}|{{ ''|timesince }}",
                ctx
            ),
            "2\u{a0}days, 3\u{a0}hours|2\u{a0}days, 3\u{a0}hours|0\u{a0}minutes||"
        );
    }

    #[test]
    fn pluralize_follows_django() {
        let ctx = context! {
            zero => 0,
            one => 1,
            two => 2,
            s => "1",
            f => 1.0,
            l1 => vec![1],
            l2 => vec![1, 2],
            bad => "x",
            no => (),
        };
        assert_eq!(
            render(
                "vote{{ zero|pluralize }} vote{{ one|pluralize }} vote{{ two|pluralize }} {{ s|pluralize }}|{{ f|pluralize }}\
                 |class{{ two|pluralize('es') }} cand{{ one|pluralize('y,ies') }} cand{{ two|pluralize('y,ies') }}\
                 |{{ l1|pluralize }}{{ l2|pluralize }}|{{ bad|pluralize }}|{{ no|pluralize }}|{{ two|pluralize('a,b,c') }}|{{ missing|pluralize }}",
                ctx
            ),
            "votes vote votes ||classes candy candies|s||||"
        );
    }

    #[test]
    fn truncation_filters_use_the_ellipsis() {
        let ctx = context! {
            v => "Joel is a slug",
            s => Value::from_safe_string("<b>Joel</b> is a slug".into()),
        };
        assert_eq!(
            render(
                "{{ v|truncatechars(7) }}|{{ v|truncatewords(2) }}|{{ v|truncatechars('x') }}|{{ s|truncatewords(1) }}|{{ v|truncatechars('3') }}",
                ctx
            ),
            "Joel i…|Joel is …|Joel is a slug|<b>Joel</b> …|Jo…"
        );
    }

    #[test]
    fn linebreaks_escapes_unless_safe() {
        let ctx =
            context! { v => "a & b\nc\n\nd", s => Value::from_safe_string("<i>x</i>\ny".into()) };
        assert_eq!(
            render(
                "{{ v|linebreaks }}|{{ s|linebreaks }}|{{ v|linebreaksbr }}|{{ s|linebreaksbr }}",
                ctx
            ),
            "<p>a &amp; b<br>c</p>\n\n<p>d</p>|<p><i>x</i><br>y</p>|a &amp; b<br>c<br><br>d|<i>x</i><br>y"
        );
        let unescaped = render(
            "{% autoescape false %}{{ v|linebreaksbr }}{% endautoescape %}",
            context! { v => "<b>\n" },
        );
        assert_eq!(unescaped, "<b><br>");
    }

    #[test]
    fn urlencode_quotes_as_python() {
        let ctx = context! { v => "a b/c?d=é&x'y" };
        assert_eq!(
            render(
                "{{ v|urlencode }}|{{ v|urlencode('') }}|{{ v|urlencode('/?=&') }}",
                ctx
            ),
            "a%20b/c%3Fd%3D%C3%A9%26x%27y|a%20b%2Fc%3Fd%3D%C3%A9%26x%27y|a%20b/c?d=%C3%A9&amp;x%27y"
        );
    }

    #[test]
    fn escape_is_conditional_and_force_escape_is_not() {
        let ctx = context! { v => "<a&'\"/>", s => Value::from_safe_string("<b>".into()), n => () };
        assert_eq!(
            render(
                "{{ v|escape }}|{{ v|escape|escape }}|{{ s|escape }}|{{ v|force_escape|force_escape }}|{{ s|force_escape }}|{{ n|escape }}|{{ v|e }}",
                ctx
            ),
            "&lt;a&amp;&#x27;&quot;/&gt;|&lt;a&amp;&#x27;&quot;/&gt;|<b>|&amp;lt;a&amp;amp;&amp;#x27;&amp;quot;/&amp;gt;|&lt;b&gt;|None|&lt;a&amp;&#x27;&quot;/&gt;"
        );
    }

    #[test]
    fn safe_and_case_filters_keep_or_drop_safety_as_django() {
        let ctx = context! {
            s => Value::from_safe_string("<b>Hi</b>".into()),
            v => "<i>hi</i>",
            n => (),
        };
        assert_eq!(
            render(
                "{{ s|upper }}|{{ s|lower }}|{{ v|upper }}|{{ s|title }}|{{ v|capfirst }}|{{ n|safe }}|{{ v|safe }}",
                ctx
            ),
            "&lt;B&gt;HI&lt;/B&gt;|<b>hi</b>|&lt;I&gt;HI&lt;/I&gt;|<B>Hi</B>|&lt;i&gt;hi&lt;/i&gt;|None|<i>hi</i>"
        );
    }

    #[test]
    fn striptags_keeps_text_and_safety() {
        let ctx = context! {
            v => "<p>a &amp; <b>b</b></p><script>x<y</script>",
            s => Value::from_safe_string("<b>&lt;x&gt;</b>".into()),
        };
        assert_eq!(
            render("{{ v|striptags }}|{{ s|striptags }}", ctx),
            "a &amp;amp; bx&lt;y|&lt;x&gt;"
        );
    }

    /// As for `join`, the `'<b>'` default stands for a Django variable, not a (safe) literal.
    #[test]
    fn default_and_default_if_none() {
        let ctx =
            context! { e => "", z => 0, n => (), l => Vec::<i32>::new(), v => "x", f => false };
        assert_eq!(
            render(
                "{{ e|default('d') }}{{ z|default('d') }}{{ n|default('d') }}{{ l|default('d') }}{{ v|default('d') }}{{ f|default('d') }}{{ missing|default('d') }}\
                 |{{ n|default_if_none('d') }}{{ e|default_if_none('d') }}{{ z|default_if_none('d') }}[{{ missing|default_if_none('d') }}]|{{ e|d('<b>') }}",
                ctx
            ),
            "ddddxdd|d0[]|&lt;b&gt;"
        );
    }

    #[test]
    fn yesno_maps_true_false_and_none() {
        let ctx = context! { t => true, f => false, n => (), one => 1 };
        assert_eq!(
            render(
                "{{ t|yesno }} {{ f|yesno }} {{ n|yesno }} {{ n|yesno('yeah,no') }} {{ one|yesno('y,n,m') }} {{ t|yesno('a') }} {{ missing|yesno }} {{ t|yesno('a,b,c,d') }}",
                ctx
            ),
            "yes no maybe no y True no a"
        );
    }

    #[test]
    fn length_counts_characters_items_and_nothing_else() {
        let ctx = context! {
            s => "héllo",
            l => vec![1, 2, 3],
            m => json(serde_json::json!({"a": 1})),
            n => 5,
            none => (),
        };
        assert_eq!(
            render(
                "{{ s|length }} {{ l|length }} {{ m|length }} {{ n|length }} {{ none|length }} {{ missing|length }} {{ l|count }}",
                ctx
            ),
            "5 3 1 0 0 0 3"
        );
    }

    /// Django marks string literals in a template safe, so `join:" & "` would not escape the
    /// `&`; the Django template behind these expectations passes the separator as a variable,
    /// which is what a Jinja literal is here (write `join(" & "|safe)` for Django's literal).
    #[test]
    fn join_escapes_items_and_separator() {
        let ctx = context! { l => vec!["<a>", "b&c"], m => json(serde_json::json!([1, 2.0, null, true])),
        s => vec![Value::from_safe_string("<i>x</i>".into()), Value::from("<y>")], t => "abc", n => 5 };
        assert_eq!(
            render(
                "{{ l|join(', ') }}|{{ m|join('-') }}|{{ s|join('<br>'|safe) }}|{{ t|join('.') }}|{{ n|join(',') }}|{{ l|join(' & ') }}",
                ctx
            ),
            "&lt;a&gt;, b&amp;c|1-2.0-None-True|<i>x</i><br>&lt;y&gt;|a.b.c|5|&lt;a&gt; &amp; b&amp;c"
        );
        let raw = render(
            "{% autoescape false %}{{ l|join(' & ') }}|{{ m|join('-') }}{% endautoescape %}",
            ctx_list(),
        );
        assert_eq!(raw, "<a> & b&c|[1, 2.0]");
    }

    fn ctx_list() -> Value {
        context! { l => vec!["<a>", "b&c"], m => json(serde_json::json!([1, 2.0])) }
    }

    #[test]
    fn text_filters_title_capfirst_slugify_wordcount() {
        let ctx = context! {
            v => "they're bill's 1st friends",
            s => " Héllo, Wörld! -- x ",
            w => "a  b\nc\td ",
        };
        assert_eq!(
            render(
                "{{ v|title }}|{{ v|capfirst }}|{{ s|slugify }}|{{ w|wordcount }}|{{ v|upper }}|{{ s|lower }}",
                ctx
            ),
            "They&#x27;re Bill&#x27;s 1st Friends|They&#x27;re bill&#x27;s 1st friends|hello-world-x|4\
             |THEY&#x27;RE BILL&#x27;S 1ST FRIENDS| héllo, wörld! -- x "
        );
    }

    #[test]
    fn number_filters_in_templates() {
        let ctx = context! { f => 34.23234, b => 123_456_789 };
        assert_eq!(
            render(
                "{{ f|floatformat }}|{{ f|floatformat(2) }}|{{ f|floatformat('-3') }}|{{ f|floatformat(0) }}|{{ b|filesizeformat }}",
                ctx
            ),
            "34.2|34.23|34.232|34|117.7\u{a0}MB"
        );
    }

    #[test]
    fn first_and_last() {
        let ctx = context! {
            l => vec!["<a>", "b"],
            s => "xyz",
            e => Vec::<i32>::new(),
            safe => Value::from_safe_string("<b>".into()),
        };
        assert_eq!(
            render(
                "{{ l|first }}{{ l|last }}|{{ s|first }}{{ s|last }}|[{{ e|first }}{{ e|last }}{{ missing|first }}]|{{ safe|first }}{{ safe|last }}",
                ctx
            ),
            "&lt;a&gt;b|xz|[]|&lt;>"
        );
        assert!(render("{{ n|first }}", context! { n => () }).starts_with("ERR"));
    }
}
