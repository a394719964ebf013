//! `django.utils.html.strip_tags`: the text of some HTML, as Python 3.11's `HTMLParser` finds
//! it.
//!
//! Django feeds the value to an `HTMLParser` that keeps data, entity and character references
//! and drops everything else, and repeats while that removes tags. What counts as a tag is the
//! parser's, so this is a port of its scanning rules (start and end tags, comments,
//! declarations, processing instructions, `<script>`/`<style>` content, `&name` references and
//! the two passes of `feed` and `close`). What must not be here: escaping or a different idea
//! of HTML than that parser's.

use super::text::is_py_space;

/// Django gives up (`SuspiciousOperation`) after this many passes.
const MAX_DEPTH: usize = 50;

/// Django's `SuspiciousOperation`: input built to make stripping slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Suspicious;

/// `strip_tags(value)`.
pub(super) fn strip_tags(value: &str) -> Result<String, Suspicious> {
    if has_deep_open_tag(value) {
        return Err(Suspicious);
    }
    let mut value = value.to_owned();
    let mut depth = 0;
    while value.contains('<') && value.contains('>') {
        if depth >= MAX_DEPTH {
            return Err(Suspicious);
        }
        let stripped = strip_once(&value);
        if value.matches('<').count() == stripped.matches('<').count() {
            break;
        }
        value = stripped;
        depth += 1;
    }
    Ok(value)
}

/// `long_open_tag_without_closing_re` (`<[a-zA-Z][^>]{1000,}`) matching with 50 or more `<`.
fn has_deep_open_tag(value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'<' && bytes[i + 1].is_ascii_alphabetic() {
            let run = value[i + 2..].find('>').unwrap_or(value.len() - i - 2);
            let tail = &value[i + 2..i + 2 + run];
            if tail.chars().count() >= 1000 {
                if value[i..i + 2 + run].matches('<').count() >= MAX_DEPTH {
                    return true;
                }
                i += 2 + run;
                continue;
            }
        }
        i += 1;
    }
    false
}

fn strip_once(value: &str) -> String {
    let mut parser = Parser {
        raw: value.to_owned(),
        out: String::new(),
        cdata: None,
    };
    parser.goahead(false);
    parser.goahead(true);
    parser.out
}

/// `MLStripper`: an `HTMLParser` with `convert_charrefs=False` collecting the data.
struct Parser {
    raw: String,
    out: String,
    /// The element (`script` or `style`) whose raw content is being read.
    cdata: Option<String>,
}

impl Parser {
    /// `HTMLParser.goahead(end)`; what it cannot finish stays in `raw` for the next call.
    fn goahead(&mut self, end: bool) {
        let raw = std::mem::take(&mut self.raw);
        let n = raw.len();
        let mut i = 0;
        while i < n {
            let j = match &self.cdata {
                Some(elem) => match find_cdata_end(&raw, i, elem) {
                    Some(j) => j,
                    None => break,
                },
                None => raw[i..].find(['&', '<']).map_or(n, |k| i + k),
            };
            self.out.push_str(&raw[i..j]);
            i = j;
            if i == n {
                break;
            }
            let rest = &raw[i..];
            if let Some(after_lt) = rest.strip_prefix('<') {
                let parsed = if after_lt.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    self.parse_starttag(&raw, i)
                } else if rest.starts_with("</") {
                    self.parse_endtag(&raw, i)
                } else if rest.starts_with("<!--") {
                    parse_comment(&raw, i)
                } else if rest.starts_with("<?") {
                    raw[i + 2..].find('>').map(|k| i + 2 + k + 1)
                } else if rest.starts_with("<!") {
                    parse_html_declaration(&raw, i)
                } else if i + 1 < n {
                    self.out.push('<');
                    Some(i + 1)
                } else {
                    break;
                };
                let k = match parsed {
                    Some(k) => k,
                    None if !end => break,
                    None => {
                        let k = match raw[i + 1..].find('>') {
                            Some(gt) => i + 1 + gt + 1,
                            None => raw[i + 1..].find('<').map_or(i + 1, |lt| i + 1 + lt),
                        };
                        self.out.push_str(&raw[i..k]);
                        k
                    }
                };
                i = k;
            } else if rest.starts_with("&#") {
                match charref(rest) {
                    Some((name, consumed)) => {
                        self.out.push_str(&format!("&#{name};"));
                        i += consumed;
                    }
                    None => {
                        if rest.contains(';') {
                            self.out.push_str("&#");
                            i += 2;
                        }
                        break;
                    }
                }
            } else {
                match entityref(rest) {
                    Some((name, consumed)) => {
                        self.out.push_str(&format!("&{name};"));
                        i += consumed;
                    }
                    None if rest[1..]
                        .starts_with(|c: char| c.is_ascii_alphabetic() || c == '#') =>
                    {
                        // `incomplete`: at the very end, close() drops the `&` and keeps the rest.
                        if end && rest.len() == 2 {
                            i += 1;
                        }
                        break;
                    }
                    None if i + 1 < n => {
                        self.out.push('&');
                        i += 1;
                    }
                    None => break,
                }
            }
        }
        if end && i < n && self.cdata.is_none() {
            self.out.push_str(&raw[i..]);
            i = n;
        }
        self.raw = raw[i..].to_owned();
    }

    /// `parse_starttag`: the end of the tag, or `None` when it is not complete.
    fn parse_starttag(&mut self, raw: &str, i: usize) -> Option<usize> {
        let end = whole_start_tag_end(raw, i)?;
        let tag = &raw[i..end];
        if !tag.ends_with('>') {
            // Not a tag after all: HTMLParser hands its text on as data.
            self.out.push_str(tag);
            return Some(end);
        }
        let name_len = tag[1..]
            .find(|c: char| "\t\n\r\u{c} />\0".contains(c))
            .unwrap_or(tag.len() - 1);
        let name = tag[1..1 + name_len].to_ascii_lowercase();
        if !tag.ends_with("/>") && (name == "script" || name == "style") {
            self.cdata = Some(name);
        }
        Some(end)
    }

    /// `parse_endtag`.
    fn parse_endtag(&mut self, raw: &str, i: usize) -> Option<usize> {
        let gtpos = i + 1 + raw[i + 1..].find('>')? + 1;
        let tag = &raw[i..gtpos];
        match end_tag_name(tag) {
            Some(elem) => {
                if let Some(cdata) = &self.cdata
                    && !elem.eq_ignore_ascii_case(cdata)
                {
                    self.out.push_str(tag);
                    return Some(gtpos);
                }
                self.cdata = None;
                Some(gtpos)
            }
            None if self.cdata.is_some() => {
                self.out.push_str(tag);
                Some(gtpos)
            }
            None if raw[i + 2..].starts_with(|c: char| c.is_ascii_alphabetic()) => Some(gtpos),
            None if raw[i..].starts_with("</>") => Some(i + 3),
            None => parse_bogus_comment(raw, i),
        }
    }
}

/// `endtagfind`: `</\s*([a-zA-Z][-.a-zA-Z0-9:_]*)\s*>` over the whole of `tag`.
fn end_tag_name(tag: &str) -> Option<&str> {
    let inner = tag.strip_prefix("</")?.strip_suffix('>')?;
    let inner = inner.trim_matches(is_py_space);
    let valid = inner.starts_with(|c: char| c.is_ascii_alphabetic())
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:_".contains(c));
    valid.then_some(inner)
}

/// Where `interesting` (`</\s*elem\s*>`, any case) next matches.
fn find_cdata_end(raw: &str, from: usize, elem: &str) -> Option<usize> {
    let mut at = from;
    while let Some(k) = raw[at..].find("</") {
        let start = at + k;
        let after = raw[start + 2..].trim_start_matches(is_py_space);
        if after.len() >= elem.len()
            && after.is_char_boundary(elem.len())
            && after[..elem.len()].eq_ignore_ascii_case(elem)
            && after[elem.len()..]
                .trim_start_matches(is_py_space)
                .starts_with('>')
        {
            return Some(start);
        }
        at = start + 2;
    }
    None
}

/// `check_for_whole_start_tag`: where the start tag at `i` ends, following
/// `locatestarttagend_tolerant`; `None` when the input ends inside it.
fn whole_start_tag_end(raw: &str, i: usize) -> Option<usize> {
    let chars: Vec<(usize, char)> = raw[i..].char_indices().map(|(at, c)| (i + at, c)).collect();
    let at = |p: usize| chars.get(p).map(|&(_, c)| c);
    let is_space = |p: usize| at(p).is_some_and(is_py_space);
    // `<` and the tag name.
    let mut p = 2;
    while at(p).is_some_and(|c| !"\t\n\r\u{c} />\0".contains(c)) {
        p += 1;
    }
    while at(p).is_some_and(|c| is_py_space(c) || c == '/') {
        p += 1;
    }
    // Attributes: a name after a quote, space or slash, then an optional value.
    while p > 0
        && at(p - 1).is_some_and(|c| c == '\'' || c == '"' || c == '/' || is_py_space(c))
        && at(p).is_some_and(|c| !(is_py_space(c) || c == '/' || c == '>'))
    {
        p += 1;
        while at(p).is_some_and(|c| !(is_py_space(c) || "/=>".contains(c))) {
            p += 1;
        }
        let mut q = p;
        while is_space(q) {
            q += 1;
        }
        if at(q) == Some('=') {
            while at(q) == Some('=') {
                q += 1;
            }
            while is_space(q) {
                q += 1;
            }
            let value_end = match at(q) {
                Some(quote @ ('\'' | '"')) => (q + 1..chars.len())
                    .find(|&r| at(r) == Some(quote))
                    .map(|r| r + 1),
                _ => {
                    let mut r = q;
                    while at(r).is_some_and(|c| c != '>' && !is_py_space(c)) {
                        r += 1;
                    }
                    Some(r)
                }
            };
            if let Some(mut r) = value_end {
                while is_space(r) {
                    r += 1;
                }
                p = r;
            }
        }
        while is_space(p) || (at(p) == Some('/') && at(p + 1) != Some('>')) {
            p += 1;
        }
    }
    while is_space(p) {
        p += 1;
    }
    let offset = |p: usize| chars.get(p).map_or(raw.len(), |&(at, _)| at);
    match at(p) {
        Some('>') => Some(offset(p) + 1),
        Some('/') if at(p + 1) == Some('>') => Some(offset(p) + 2),
        None | Some('/' | '=') => None,
        Some(c) if c.is_ascii_alphabetic() => None,
        Some(_) => Some(offset(p.max(1))),
    }
}

/// `_markupbase.parse_comment`: up to `--`, white space, `>`.
fn parse_comment(raw: &str, i: usize) -> Option<usize> {
    let mut at = i + 4;
    while let Some(k) = raw[at..].find("--") {
        let start = at + k + 2;
        let after = raw[start..].trim_start_matches(is_py_space);
        if after.starts_with('>') {
            return Some(raw.len() - after.len() + 1);
        }
        at = at + k + 1;
    }
    None
}

/// `parse_html_declaration`: `<!DOCTYPE ...>`, `<![CDATA[...]]>`, or a bogus comment.
fn parse_html_declaration(raw: &str, i: usize) -> Option<usize> {
    let rest = &raw[i..];
    if rest.starts_with("<![") {
        let close = rest.find("]]>").or_else(|| rest.find("]>"))?;
        return Some(i + close + rest[close..].find('>')? + 1);
    }
    if rest.len() >= 9 && rest.is_char_boundary(9) && rest[..9].eq_ignore_ascii_case("<!doctype") {
        return raw[i + 9..].find('>').map(|k| i + 9 + k + 1);
    }
    parse_bogus_comment(raw, i)
}

fn parse_bogus_comment(raw: &str, i: usize) -> Option<usize> {
    raw[i + 2..].find('>').map(|k| i + 2 + k + 1)
}

/// `charref` (`&#(?:[0-9]+|[xX][0-9a-fA-F]+)[^0-9a-fA-F]`) at the start of `rest`: the
/// reference's name and how far the parser moves (past a `;`, up to anything else).
fn charref(rest: &str) -> Option<(&str, usize)> {
    let body = &rest[2..];
    let digits_len = if body.starts_with(['x', 'X']) {
        let hex = body[1..].bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 0 {
            return None;
        }
        1 + hex
    } else {
        let decimal = body.bytes().take_while(u8::is_ascii_digit).count();
        if decimal == 0 {
            return None;
        }
        decimal
    };
    let terminator = body[digits_len..].chars().next()?;
    if terminator.is_ascii_hexdigit() {
        return None;
    }
    let consumed = 2 + digits_len + if terminator == ';' { 1 } else { 0 };
    Some((&body[..digits_len], consumed))
}

/// `entityref` (`&([a-zA-Z][-.a-zA-Z0-9]*)[^a-zA-Z0-9]`) at the start of `rest`, with the
/// regex's backtracking to a `-` or `.` when the name runs to the end of the input.
fn entityref(rest: &str) -> Option<(&str, usize)> {
    let body = &rest[1..];
    if !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let run = body
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
        .count();
    let name_len = match body[run..].chars().next() {
        Some(_) => run,
        // Backtrack: the last `-` or `.` of the run can end the match instead.
        None => body[1..run].rfind(['-', '.']).map(|k| k + 1)?,
    };
    let terminator = body[name_len..].chars().next()?;
    let consumed = 1 + name_len + if terminator == ';' { 1 } else { 0 };
    Some((&body[..name_len], consumed))
}

#[cfg(test)]
mod tests {
    //! The expected strings are Django 5.2's `strip_tags` (Python 3.11.7's `HTMLParser`).

    use super::*;

    fn strip(value: &str) -> String {
        strip_tags(value).unwrap_or_else(|_| "SUSPICIOUS".to_owned())
    }

    #[test]
    fn tags_comments_and_declarations_go() {
        assert_eq!(
            strip(
                "<!DOCTYPE html><p class=\"a>b\">Hello <b>world</b><br/>!</p><!-- note --><?php x ?>"
            ),
            "Hello world!"
        );
        assert_eq!(
            strip("<a href='x' title=\"y\" data-z=w>link</a > end"),
            "link end"
        );
    }

    #[test]
    fn references_stay_and_get_their_semicolon() {
        assert_eq!(
            strip("<b>a &amp; b &copy c &#169; d &#x27e</b>"),
            "a &amp; b &copy; c &#169; d &#x27e;"
        );
        assert_eq!(strip("<i>x</i> &a"), "x a");
        assert_eq!(strip("<p>a.b &a.b"), "a.b &a;.b");
        assert_eq!(strip("<b>x</b>&"), "x&");
    }

    #[test]
    fn unfinished_constructs_end_the_stripping() {
        assert_eq!(
            strip("<b>x</b> &#; <i>y</i> &#; <u>z</u>"),
            "x &#; y &#; <u>z</u>"
        );
        assert_eq!(strip("<b>q</b><a b='c>d"), "q<a b='c>d");
        assert_eq!(strip("<b>x</b><!-- unclosed"), "x<!-- unclosed");
    }

    #[test]
    fn quoted_brackets_and_cdata() {
        assert_eq!(strip("<b title='>'>t</b>"), "t");
        assert_eq!(strip("<p>x</p><![CDATA[y]]>z"), "xz");
        assert_eq!(strip("<b>été</b> <img src=x onerror=alert(1)//>"), "été ");
    }

    #[test]
    fn text_that_only_looks_like_tags_stays() {
        assert_eq!(strip("1 < 2 and 3 > 2"), "1 < 2 and 3 > 2");
        assert_eq!(strip("<b>x</b> a<b"), "x a<b");
        assert_eq!(strip("<3 <b>love</b>"), "<3 love");
    }

    #[test]
    fn script_and_style_content_is_data() {
        assert_eq!(
            strip("<script>if (a < b) x();</script><style>p{}</style>ok"),
            "if (a < b) x();p{}ok"
        );
        assert_eq!(strip("<p>x</p><script>never closed"), "x");
    }

    #[test]
    fn nested_tags_are_stripped_until_none_are_left() {
        assert_eq!(strip("<<b>i>text<</b>/i>"), "text");
    }
}
