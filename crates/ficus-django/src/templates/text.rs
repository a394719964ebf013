//! The string transformations behind Django's text filters, from `django.utils.text`,
//! `django.utils.html` and Python's `str` methods and `urllib.parse.quote`.
//!
//! Each function takes and returns plain text; whether the result is escaped or marked safe is
//! the filter's business (`filters.rs`). What must not be here: template values or minijinja.

use super::escape;
use super::unicode_tables::{ASCII_FOLD, COMBINING};

/// Python's `str.isspace`, which `str.split()` splits on: Unicode white space plus the
/// information separators U+001C..U+001F.
pub(super) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.split()` without arguments.
pub(super) fn py_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_py_space).filter(|word| !word.is_empty())
}

/// `normalize_newlines`: `\r\n` and `\r` become `\n`.
pub(super) fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// `django.utils.html.linebreaks`: paragraphs split on two or more newlines, each in `<p>`,
/// with single newlines as `<br>`, joined by a blank line.
pub(super) fn linebreaks(text: &str, autoescape: bool) -> String {
    let text = normalize_newlines(text);
    let mut paragraphs = Vec::new();
    let mut rest = text.as_str();
    loop {
        // `re.split("\n{2,}")`: a run of two or more newlines separates, a single one does not.
        let split = rest.match_indices("\n\n").next().map(|(at, _)| {
            let end = at + rest[at..].bytes().take_while(|&b| b == b'\n').count();
            (at, end)
        });
        match split {
            Some((at, end)) => {
                paragraphs.push(&rest[..at]);
                rest = &rest[end..];
            }
            None => {
                paragraphs.push(rest);
                break;
            }
        }
    }
    let paragraphs: Vec<String> = paragraphs
        .into_iter()
        .map(|p| {
            let p = if autoescape { escape(p) } else { p.to_owned() };
            format!("<p>{}</p>", p.replace('\n', "<br>"))
        })
        .collect();
    paragraphs.join("\n\n")
}

/// The `linebreaksbr` filter: every newline becomes `<br>`.
pub(super) fn linebreaksbr(text: &str, autoescape: bool) -> String {
    let text = normalize_newlines(text);
    let text = if autoescape { escape(&text) } else { text };
    text.replace('\n', "<br>")
}

/// `unicodedata.combining(c) != 0`.
fn is_combining(c: char) -> bool {
    COMBINING
        .binary_search_by(|&(low, high)| {
            if high < c {
                std::cmp::Ordering::Less
            } else if low > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `Truncator(text).chars(length)`: at most `length` characters including the "…", with
/// combining characters not counted.
pub(super) fn truncate_chars(text: &str, length: i64) -> String {
    if length <= 0 {
        return String::new();
    }
    let limit = length as u64;
    // The "…" takes one of the places.
    let keep = limit - 1;
    let mut counted = 0u64;
    let mut end = None;
    for (at, c) in text.char_indices() {
        if is_combining(c) {
            continue;
        }
        counted += 1;
        if end.is_none() && counted > keep {
            end = Some(at);
        }
        if counted > limit {
            return format!("{}…", &text[..end.unwrap_or(0)]);
        }
    }
    text.to_owned()
}

/// `Truncator(text).words(length, truncate=" …")`: the first `length` words, joined by single
/// spaces (so white space is collapsed even when nothing is cut), then " …" if some were cut.
pub(super) fn truncate_words(text: &str, length: i64) -> String {
    if length <= 0 {
        return String::new();
    }
    let words: Vec<&str> = py_words(text).collect();
    let limit = usize::try_from(length).unwrap_or(usize::MAX);
    if words.len() > limit {
        let kept = words[..limit].join(" ");
        // add_truncation_text leaves the text alone when it already ends with the marker.
        if kept.ends_with(" …") {
            kept
        } else {
            format!("{kept} …")
        }
    } else {
        words.join(" ")
    }
}

/// Python's "cased" characters, after which `str.title` lower-cases (the title-case digraphs
/// are cased too, though Rust counts them neither upper nor lower).
fn is_cased(c: char) -> bool {
    c.is_uppercase() || c.is_lowercase() || matches!(c, 'ǅ' | 'ǈ' | 'ǋ' | 'ǲ')
}

/// Python's title case of a character, where it is not its upper case; the Greek letters
/// with iota subscript are left to `to_uppercase`, which differs from Python there.
fn push_titlecase(out: &mut Vec<char>, c: char) {
    let special = match c {
        'ß' => "Ss",
        'Ǆ' | 'ǅ' | 'ǆ' => "ǅ",
        'Ǉ' | 'ǈ' | 'ǉ' => "ǈ",
        'Ǌ' | 'ǋ' | 'ǌ' => "ǋ",
        'Ǳ' | 'ǲ' | 'ǳ' => "ǲ",
        'ﬀ' => "Ff",
        'ﬁ' => "Fi",
        'ﬂ' => "Fl",
        'ﬃ' => "Ffi",
        'ﬄ' => "Ffl",
        'ﬅ' | 'ﬆ' => "St",
        // Georgian letters are their own title case; their upper case is Mtavruli.
        '\u{10d0}'..='\u{10ff}' => {
            out.push(c);
            return;
        }
        _ => {
            out.extend(c.to_uppercase());
            return;
        }
    };
    out.extend(special.chars());
}

/// The `title` filter: `str.title()`, then a letter after an apostrophe (`don'T`) or after a
/// digit (`1St`) lower-cased again.
pub(super) fn title(text: &str) -> String {
    let mut titled: Vec<char> = Vec::with_capacity(text.len());
    let mut previous_cased = false;
    for c in text.chars() {
        if previous_cased {
            titled.extend(c.to_lowercase());
        } else {
            push_titlecase(&mut titled, c);
        }
        previous_cased = is_cased(c);
    }
    // re.sub("([a-z])'([A-Z])", ...), matches taken left to right without overlap.
    let mut i = 0;
    while i + 2 < titled.len() {
        if titled[i].is_ascii_lowercase()
            && titled[i + 1] == '\''
            && titled[i + 2].is_ascii_uppercase()
        {
            titled[i + 2] = titled[i + 2].to_ascii_lowercase();
            i += 3;
        } else {
            i += 1;
        }
    }
    // re.sub(r"\d([A-Z])", ...)
    let mut i = 0;
    while i + 1 < titled.len() {
        if titled[i].is_numeric() && titled[i + 1].is_ascii_uppercase() {
            titled[i + 1] = titled[i + 1].to_ascii_lowercase();
            i += 2;
        } else {
            i += 1;
        }
    }
    titled.into_iter().collect()
}

/// The `capfirst` filter: the first character upper-cased.
pub(super) fn capfirst(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `django.utils.text.slugify(value)`: ASCII by NFKD, lower case, only word characters, spaces
/// and hyphens kept, runs of spaces and hyphens as one hyphen, `-` and `_` stripped at the ends.
pub fn slugify(text: &str) -> String {
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else if let Ok(at) = ASCII_FOLD.binary_search_by_key(&c, |&(from, _)| from) {
            ascii.push_str(ASCII_FOLD[at].1);
        }
    }
    let kept: String = ascii
        .to_ascii_lowercase()
        .chars()
        .filter(|&c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || is_py_space(c))
        .collect();
    let mut slug = String::with_capacity(kept.len());
    let mut in_run = false;
    for c in kept.chars() {
        if c == '-' || is_py_space(c) {
            if !in_run {
                slug.push('-');
            }
            in_run = true;
        } else {
            slug.push(c);
            in_run = false;
        }
    }
    slug.trim_matches(['-', '_']).to_owned()
}

/// `urllib.parse.quote(text, safe)`: UTF-8 bytes percent-encoded, except letters, digits,
/// `_.-~` and the ASCII characters of `safe`.
pub(super) fn quote(text: &str, safe: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        let c = char::from(byte);
        if byte.is_ascii_alphanumeric()
            || b"_.-~".contains(&byte)
            || (byte.is_ascii() && safe.contains(c))
        {
            out.push(c);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The expected strings are Django 5.2's output for the same text (see `filters.rs` for the
    //! filters as a template applies them).

    use super::*;

    #[test]
    fn linebreaks_splits_paragraphs_on_blank_lines() {
        let text = "one\ntwo\r\n\r\nthree\n\n\n\nfour & <five>";
        assert_eq!(
            linebreaks(text, true),
            "<p>one<br>two</p>\n\n<p>three</p>\n\n<p>four &amp; &lt;five&gt;</p>"
        );
        assert_eq!(linebreaks("\n\nx\n", false), "<p></p>\n\n<p>x<br></p>");
    }

    #[test]
    fn truncate_chars_counts_the_ellipsis() {
        assert_eq!(truncate_chars("Joel is a slug", 7), "Joel i…");
        assert_eq!(truncate_chars("Joel", 4), "Joel");
        assert_eq!(truncate_chars("Joel", 1), "…");
        assert_eq!(truncate_chars("Joel", 0), "");
        assert_eq!(truncate_chars("x\u{301}yz abc", 4), "x\u{301}yz…");
    }

    #[test]
    fn truncate_words_joins_with_single_spaces() {
        assert_eq!(truncate_words("Joel is  a\nslug", 2), "Joel is …");
        assert_eq!(truncate_words("Joel  is\ta slug", 9), "Joel is a slug");
    }

    #[test]
    fn title_and_capfirst_as_django() {
        assert_eq!(
            title("they're bill's 1st friends' o'NEIL"),
            "They're Bill's 1st Friends' O'Neil"
        );
        assert_eq!(title("élan vital ß ǆx ﬁx"), "Élan Vital Ss ǅx Fix");
        assert_eq!(capfirst("élan vital"), "Élan vital");
    }

    #[test]
    fn slugify_folds_to_ascii() {
        assert_eq!(
            slugify(" Héllo, Wörld! -- ǅemal_ ﬁne 北京 "),
            "hello-world-dzemal_-fine"
        );
        assert_eq!(slugify("__a  b--c__"), "a-b-c");
    }

    #[test]
    fn quote_keeps_slash_by_default() {
        assert_eq!(quote("a b/c?d=é&x~", "/"), "a%20b/c%3Fd%3D%C3%A9%26x~");
        assert_eq!(quote("a b/c?d=é&x~", ""), "a%20b%2Fc%3Fd%3D%C3%A9%26x~");
    }
}
