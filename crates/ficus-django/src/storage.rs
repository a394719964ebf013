//! The names Django gives uploaded and stored files, and the headers of a `FileResponse`, so a
//! ported upload or download names and describes a file as Django would.
//!
//! From Django 5.2: `MultiPartParser.sanitize_file_name`, the `UploadedFile.name` setter,
//! `get_valid_filename`, `validate_file_name`, `FileField.generate_filename` with
//! `Storage.generate_filename`, `Storage.get_available_name`, `django.utils._os.safe_join` and
//! `FileResponse.set_headers` with `content_disposition_header`, and Python 3.11's
//! `mimetypes.MimeTypes.guess_type` that it relies on. Lengths are counted in characters, as
//! Python's `len` counts them, and paths are POSIX paths.
//!
//! What must not be here: the file system and the host's Python. Whether a name is taken and
//! the random suffix are the caller's to give; `safe_join` is lexical: resolving symlinks
//! (canonicalizing on disk, then checking again) is the caller's job; and the `mimetypes`
//! tables ([`MimeTypes`]) are the host Python's, read by the caller (once, at start-up), so a
//! `Content-Type` is what that Python would say.

use std::collections::HashMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// A name Django refuses with `SuspiciousFileOperation`, with the message of that exception.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// Nothing usable is left of the name (`validate_file_name`, `get_valid_filename`).
    #[error("Could not derive file name from '{0}'")]
    NoFileName(String),
    /// The name is absolute or goes up with `..`.
    #[error("Detected path traversal attempt in '{0}'")]
    PathTraversal(String),
    /// Every free name was longer than `max_length`, even with the whole root cut.
    #[error(
        "Storage can not find an available filename for \"{0}\". Please make sure that the \
         corresponding file field allows sufficient \"max_length\"."
    )]
    NoAvailableName(String),
}

/// `MultiPartParser.sanitize_file_name`: the file name a browser sent, HTML-unescaped, without
/// its directories (`/` or `\`) and without the characters Python does not print. None where
/// Django drops the file (nothing, `.` or `..` is left).
///
/// The unescaping is the WHATWG one, which Python's `html.unescape` follows, with one
/// difference: a numeric reference to a control character or a noncharacter (`&#1;`,
/// `&#xFDD0;`) is that character here and nothing in Python; neither is printable, so the
/// name is the same. Printable is Unicode 18's here and Unicode 14's in Python 3.11: the
/// characters assigned since (new emoji, say) are kept here and dropped by Python.
pub fn sanitize_file_name(raw: &str) -> Option<String> {
    let unescaped = htmlize::unescape(raw);
    let name = after_last(&unescaped, '/');
    let name = after_last(name, '\\');
    let name: String = name.chars().filter(|&c| is_printable(c)).collect();
    (!matches!(name.as_str(), "" | "." | "..")).then_some(name)
}

/// What the `UploadedFile.name` setter keeps of `name`: its base name, cut to 255 characters
/// keeping the extension, then checked by `validate_file_name`.
pub fn uploaded_file_name(name: &str) -> Result<String, StorageError> {
    let mut name = after_last(name, '/').to_owned();
    // Older file systems fail on longer names; Django cuts the root and keeps the extension.
    if name.chars().count() > 255 {
        let (root, ext) = splitext(&name);
        let ext: String = ext.chars().take(255).collect();
        let keep = 255 - ext.chars().count();
        name = root.chars().take(keep).chain(ext.chars()).collect();
    }
    check_base_name(&name)?;
    Ok(name)
}

/// `django.utils.text.get_valid_filename`: `name` stripped, its spaces made `_`, and every
/// character that is not `-`, `.` or a word character (Python's Unicode `\w`: letters, numbers
/// and `_`, not marks) removed. Letters and numbers assigned after Unicode 14 (Python 3.11's)
/// are kept here and removed by Python.
pub fn get_valid_filename(name: &str) -> Result<String, StorageError> {
    let valid: String = name
        .trim_matches(is_python_space)
        .chars()
        .map(|c| if c == ' ' { '_' } else { c })
        .filter(|&c| c == '-' || c == '.' || is_word(c))
        .collect();
    if matches!(valid.as_str(), "" | "." | "..") {
        return Err(StorageError::NoFileName(name.to_owned()));
    }
    Ok(valid)
}

/// The name `FileField(upload_to=upload_to)` stores `filename` under before
/// `get_available_name`: `upload_to` joined with the file name, checked for traversal, and the
/// base name made valid by `get_valid_filename`, the whole normalized.
///
/// `upload_to` is used as it is: Django first passes a string `upload_to` through `strftime`,
/// so a caller whose `upload_to` has `%` codes expands them before calling this.
pub fn generate_filename(upload_to: &str, filename: &str) -> Result<String, StorageError> {
    let joined = join(upload_to, filename);
    check_base_name(&joined)?;
    if is_traversal(&joined.replace('\\', "/")) {
        return Err(StorageError::PathTraversal(joined));
    }
    let unix = joined.replace('\\', "/");
    let (dir, file) = split(&unix);
    if has_parent_part(dir) {
        return Err(StorageError::PathTraversal(dir.to_owned()));
    }
    Ok(normpath(&join(dir, &get_valid_filename(file)?)))
}

/// `Storage.get_available_name(name, max_length)`: `name` if it is free and short enough,
/// otherwise `<root>_<random><extensions>` (every suffix of the base name counts as its
/// extension, so `a.tar.gz` gives `a_XXXXXXX.tar.gz`), the root cut when the name would be
/// longer than `max_length`.
///
/// `exists` says whether a name is taken; `random` gives the seven characters (see
/// [`random_suffix`]). As in Django, a `max_length` of `Some(0)` checks no length until a name
/// is taken, and there is no bound on the tries: an `exists` that is always true never returns.
pub fn get_available_name(
    name: &str,
    max_length: Option<usize>,
    mut exists: impl FnMut(&str) -> bool,
    mut random: impl FnMut() -> String,
) -> Result<String, StorageError> {
    let mut name = name.replace('\\', "/");
    let (dir_name, file_name) = split(&name);
    let (dir_name, file_name) = (dir_name.to_owned(), file_name.to_owned());
    if has_parent_part(&dir_name) {
        return Err(StorageError::PathTraversal(dir_name));
    }
    check_base_name(&file_name)?;
    let file_ext = suffixes(&file_name);
    let mut file_root: String = file_name[..file_name.len() - file_ext.len()].to_owned();
    let mut available = |name: &str| {
        // Django computes the length test first, then asks the storage either way.
        let too_long = max_length.is_some_and(|max| max > 0 && name.chars().count() > max);
        !exists(name) && !too_long
    };
    while !available(&name) {
        name = join(&dir_name, &format!("{file_root}_{}{file_ext}", random()));
        let Some(max) = max_length else { continue };
        let truncation = name.chars().count().saturating_sub(max);
        if truncation > 0 {
            let keep = file_root.chars().count().saturating_sub(truncation);
            file_root = file_root.chars().take(keep).collect();
            if file_root.is_empty() {
                return Err(StorageError::NoAvailableName(name));
            }
            name = join(&dir_name, &format!("{file_root}_{}{file_ext}", random()));
        }
    }
    Ok(name)
}

/// Seven random letters and digits, as `get_random_string(7)` gives for a new file name.
/// Django draws them from `secrets`; pass an OS-seeded generator.
pub fn random_suffix<R: Rng + ?Sized>(rng: &mut R) -> String {
    (0..7)
        .map(|_| char::from(rng.sample(rand::distributions::Alphanumeric)))
        .collect()
}

/// `django.utils._os.safe_join(base, name)`, lexically: the normalized absolute path of `name`
/// under `base`, or None where Django raises `SuspiciousFileOperation` because it is outside.
///
/// `base` must be absolute, as `FileSystemStorage.location` always is; a relative one is None
/// (Python would resolve it against the working directory). Symlinks are not looked at: the
/// caller canonicalizes the result on disk and checks it again.
pub fn safe_join(base: &str, name: &str) -> Option<String> {
    if !base.starts_with('/') {
        return None;
    }
    let final_path = normpath(&join(base, name));
    let base_path = normpath(base);
    // The root ("/", or POSIX's "//") holds every path.
    let is_root = split(&base_path).0 == base_path;
    let inside = final_path == base_path
        || final_path
            .strip_prefix(base_path.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
    (inside || is_root).then_some(final_path)
}

/// The headers `FileResponse(file, as_attachment=..., filename=...)` sets for a file whose path
/// or name is `filename` and whose size is `size`, in Django's order: `Content-Type`,
/// `Content-Length` and, where there is a name or an attachment, `Content-Disposition`.
///
/// The `Content-Type` is `mimetypes.guess_type`'s for the base name in `types` (the host
/// Python's tables), except that a compressed file is its compression's type (`gzip` gives
/// `application/gzip`, and so on) so that browsers keep it compressed, and that no type (or no
/// name) gives `application/octet-stream`.
///
/// One difference from Django: a name whose only unquotable character is a final `\n` makes
/// Django write that newline into the header and then refuse it (`BadHeaderError`, a 500);
/// here it is written in the `filename*=` form.
pub fn file_response_headers(
    filename: &str,
    size: u64,
    as_attachment: bool,
    types: &MimeTypes,
) -> Vec<(&'static str, String)> {
    let name = after_last(filename, '/');
    let content_type = if name.is_empty() {
        None
    } else {
        let (content_type, encoding) = types.guess_type(name);
        match encoding {
            Some("br") => Some("application/x-brotli"),
            Some("bzip2") => Some("application/x-bzip"),
            Some("compress") => Some("application/x-compress"),
            Some("gzip") => Some("application/gzip"),
            Some("xz") => Some("application/x-xz"),
            _ => content_type,
        }
    };
    // `content_type or "application/octet-stream"`: an empty type is no type.
    let content_type = content_type
        .filter(|t| !t.is_empty())
        .unwrap_or("application/octet-stream");
    let mut headers = vec![
        ("Content-Type", content_type.to_owned()),
        ("Content-Length", size.to_string()),
    ];
    if let Some(disposition) = content_disposition(as_attachment, name) {
        headers.push(("Content-Disposition", disposition));
    }
    headers
}

/// `content_disposition_header(as_attachment, filename)`.
fn content_disposition(as_attachment: bool, filename: &str) -> Option<String> {
    if filename.is_empty() {
        return as_attachment.then(|| "attachment".to_owned());
    }
    let disposition = if as_attachment {
        "attachment"
    } else {
        "inline"
    };
    // RFC 9110's quoted-string: tab, space and the visible ASCII characters.
    let quotable = filename
        .chars()
        .all(|c| c == '\t' || (' '..='~').contains(&c));
    if quotable {
        let escaped = filename.replace('\\', "\\\\").replace('"', "\\\"");
        Some(format!("{disposition}; filename=\"{escaped}\""))
    } else {
        let encoded = utf8_percent_encode(filename, URL_QUOTE);
        Some(format!("{disposition}; filename*=utf-8''{encoded}"))
    }
}

/// What `urllib.parse.quote` leaves as it is: letters, digits, `_.-~` and `/`.
const URL_QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'/');

/// Python's `mimetypes` tables, as the host's Python has them after `mimetypes.init()` (which
/// reads the system's `mime.types` files, `/etc/mime.types` on Debian, over Python's own
/// defaults). They differ from host to host, so the caller reads them from its Python, once,
/// at start-up: `json.dumps({"types_map": mimetypes.types_map, "encodings_map":
/// mimetypes.encodings_map, "suffix_map": mimetypes.suffix_map})` deserializes into this.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct MimeTypes {
    /// `mimetypes.types_map`, the strict table (`mimetypes._db.types_map[True]`): extension,
    /// with its dot and in lower case (`".txt"`), to type (`"text/plain"`).
    pub types_map: HashMap<String, String>,
    /// `mimetypes.encodings_map` (`mimetypes._db.encodings_map`): extension to compression,
    /// `".gz"` to `"gzip"`, `".Z"` to `"compress"`, ...
    pub encodings_map: HashMap<String, String>,
    /// `mimetypes.suffix_map` (`mimetypes._db.suffix_map`): the short spellings of compressed
    /// files, `".tgz"` to `".tar.gz"`, ...
    pub suffix_map: HashMap<String, String>,
}

impl MimeTypes {
    /// Python 3.11's `MimeTypes.guess_type(name, strict=True)` on these tables, as Django's
    /// `mimetypes.guess_type(name)` calls it: the type and the encoding (compression).
    ///
    /// `name` is a path or a URL: a leading `scheme:` (no `/` before the `:`) is dropped, and a
    /// `data:` URL has the type it declares (`text/plain` when it declares none, no type when it
    /// has no `,`). Then `suffix_map` expands the extension (looked up in lower case, again and
    /// again), an extension in `encodings_map` (looked up with its case: `x.GZ` is not gzip) is
    /// the encoding and is taken off, and what extension is left is looked up in lower case in
    /// `types_map`. As in Python, a `suffix_map` whose expansions cycle never ends.
    pub fn guess_type<'a>(&'a self, name: &'a str) -> (Option<&'a str>, Option<&'a str>) {
        let url = match split_scheme(name) {
            Some((scheme, rest)) if scheme.to_lowercase() == "data" => {
                return (data_url_type(rest), None);
            }
            Some((_, rest)) => rest,
            None => name,
        };
        let (mut base, mut ext) = {
            let (base, ext) = splitext(url);
            (base.to_owned(), ext.to_owned())
        };
        while let Some(full) = self.suffix_map.get(&ext.to_lowercase()) {
            let expanded = format!("{base}{full}");
            let (b, e) = splitext(&expanded);
            (base, ext) = (b.to_owned(), e.to_owned());
        }
        let encoding = self.encodings_map.get(&ext).map(String::as_str);
        if encoding.is_some() {
            ext = splitext(&base).1.to_owned();
        }
        let content_type = self.types_map.get(&ext.to_lowercase()).map(String::as_str);
        (content_type, encoding)
    }
}

/// `urllib.parse._splittype`: a URL's scheme (as written; Python lower-cases it) and the rest,
/// where the scheme is what comes before a first `:` that has something before it and no `/`.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    match url.find([':', '/']) {
        Some(i) if i > 0 && url[i..].starts_with(':') => Some((&url[..i], &url[i + 1..])),
        _ => None,
    }
}

/// A `data:` URL's type, from what follows `data:`: `[type/subtype] *(;parameter) ,data`, the
/// type being `text/plain` where there is none; no type without a `,`.
fn data_url_type(url: &str) -> Option<&str> {
    let comma = url.find(',')?;
    let head = &url[..comma];
    let media_type = head.find(';').map_or(head, |semi| &head[..semi]);
    if media_type.contains('=') || !media_type.contains('/') {
        Some("text/plain")
    } else {
        Some(media_type)
    }
}

/// `validate_file_name`'s first check: a base name that is nothing, `.` or `..` is refused.
fn check_base_name(name: &str) -> Result<(), StorageError> {
    if matches!(after_last(name, '/'), "" | "." | "..") {
        return Err(StorageError::NoFileName(name.to_owned()));
    }
    Ok(())
}

/// `validate_file_name(..., allow_relative_path=True)`'s test on a `/` path: absolute, or with
/// a `..` part.
fn is_traversal(path: &str) -> bool {
    path.starts_with('/') || has_parent_part(path)
}

/// `".." in PurePosixPath(path).parts`.
fn has_parent_part(path: &str) -> bool {
    path.split('/').any(|part| part == "..")
}

/// What follows the last `sep`: `os.path.basename` for `/`.
fn after_last(path: &str, sep: char) -> &str {
    path.rsplit(sep).next().unwrap_or(path)
}

/// `posixpath.split`: the directory (trailing slashes dropped unless it is only slashes) and
/// the base name.
fn split(path: &str) -> (&str, &str) {
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    let (head, tail) = path.split_at(cut);
    let trimmed = head.trim_end_matches('/');
    (if trimmed.is_empty() { head } else { trimmed }, tail)
}

/// `posixpath.join(a, b)`.
fn join(a: &str, b: &str) -> String {
    if b.starts_with('/') {
        b.to_owned()
    } else if a.is_empty() || a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

/// `posixpath.splitext`: the extension is from the last `.` of the base name, unless only dots
/// come before it.
fn splitext(path: &str) -> (&str, &str) {
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    match path.rfind('.') {
        Some(dot) if dot > name_start && path[name_start..dot].chars().any(|c| c != '.') => {
            path.split_at(dot)
        }
        _ => (path, ""),
    }
}

/// `"".join(PurePath(name).suffixes)` for a base name: everything from the first `.` after the
/// leading dots, and nothing for a name that ends with `.`.
fn suffixes(name: &str) -> &str {
    if name.ends_with('.') {
        return "";
    }
    let stripped = name.trim_start_matches('.');
    stripped.find('.').map_or("", |i| &stripped[i..])
}

/// `posixpath.normpath`: `.` and empty parts dropped, `..` taken back, and a leading `//` (but
/// not `///`) kept as POSIX allows.
fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let initial = if path.starts_with("//") && !path.starts_with("///") {
        "//"
    } else if path.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if initial.is_empty() && parts.last().is_none_or(|&last| last == "..") => {
                parts.push(part);
            }
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let joined = format!("{initial}{}", parts.join("/"));
    if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

/// `str.isprintable()` for one character: all but the "Other" and "Separator" categories,
/// space excepted.
///
/// The categories are Unicode 18's, Python 3.11's are Unicode 14's: a character assigned since
/// (28,104 code points, mostly CJK and hieroglyph extensions and the emoji added since 2022)
/// is unassigned, so unprintable, in Python and kept here.
fn is_printable(c: char) -> bool {
    c == ' '
        || !matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::Surrogate
                | GeneralCategory::PrivateUse
                | GeneralCategory::Unassigned
                | GeneralCategory::SpaceSeparator
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// Python's `\w` on `str`: `_`, letters and numbers (for Unicode 14, exactly the characters
/// `str.isalnum()` accepts). Marks are not word characters in Python, so a combining accent is
/// removed. The characters assigned after Unicode 14 that are letters or numbers (26,872) are
/// the difference, as in [`is_printable`].
fn is_word(c: char) -> bool {
    c == '_'
        || matches!(
            c.general_category(),
            GeneralCategory::UppercaseLetter
                | GeneralCategory::LowercaseLetter
                | GeneralCategory::TitlecaseLetter
                | GeneralCategory::ModifierLetter
                | GeneralCategory::OtherLetter
                | GeneralCategory::DecimalNumber
                | GeneralCategory::LetterNumber
                | GeneralCategory::OtherNumber
        )
}

/// `str.isspace()`, which `str.strip()` strips: Rust's whitespace lacks U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_file_name(name: &str) -> Result<String, StorageError> {
        Err(StorageError::NoFileName(name.to_owned()))
    }

    fn traversal(name: &str) -> Result<String, StorageError> {
        Err(StorageError::PathTraversal(name.to_owned()))
    }

    // Vectors from Django 5.2's MultiPartParser.sanitize_file_name.
    #[test]
    fn upload_names_are_unescaped_stripped_of_directories_and_unprintables() {
        for (raw, expected) in [
            ("a.txt", Some("a.txt")),
            ("/etc/passwd", Some("passwd")),
            ("C:\\Users\\me\\photo.jpg", Some("photo.jpg")),
            ("a/b\\c.txt", Some("c.txt")),
            ("..\\..\\x", Some("x")),
            ("caf&eacute;.txt", Some("café.txt")),
            ("&lt;script&gt;.html", Some("<script>.html")),
            ("a&amp;b.txt", Some("a&b.txt")),
            ("x&#47;y.txt", Some("y.txt")),
            ("x&#x5c;y.txt", Some("y.txt")),
            ("a\u{0}b.txt", Some("ab.txt")),
            ("tab\there.txt", Some("tabhere.txt")),
            ("new\nline.txt", Some("newline.txt")),
            ("new\n", Some("new")),
            ("nb\u{a0}sp.txt", Some("nbsp.txt")),
            ("zw\u{200b}sp.txt", Some("zwsp.txt")),
            ("rtl\u{202e}exe.txt", Some("rtlexe.txt")),
            ("a\u{2028}b", Some("ab")),
            ("\u{3000}ideo", Some("ideo")),
            ("space .txt", Some("space .txt")),
            (" lead", Some(" lead")),
            ("emoji😀.png", Some("emoji😀.png")),
            ("", None),
            (".", None),
            ("..", None),
            ("dir/../..", None),
            ("a/", None),
            ("a/.", None),
            ("a\\..", None),
            ("&#46;&#46;", None),
            ("&period;&period;", None),
            ("&#46;", None),
            ("x&sol;..", None),
        ] {
            assert_eq!(sanitize_file_name(raw).as_deref(), expected, "{raw:?}");
        }
    }

    // Vectors from Python 3.11's html.unescape, as sanitize_file_name sees them.
    #[test]
    fn html_references_are_unescaped_as_python_does() {
        for (raw, expected) in [
            ("&ampxyz", "&xyz"),
            ("&notit;", "¬it;"),
            ("&notin;", "∉"),
            ("&AMP;", "&"),
            ("&amp", "&"),
            ("&unknown;", "&unknown;"),
            ("&CounterClockwiseContourIntegral;", "∳"),
            ("&NotNestedGreaterGreater;", "⪢̸"),
            ("&nbsp;x", "x"),
            ("&#65", "A"),
            ("&#0065;", "A"),
            ("&#x41g", "Ag"),
            ("&#x1F600;", "😀"),
            ("&#;", "&#;"),
            ("&#x;", "&#x;"),
            ("&#0;x", "\u{fffd}x"),
            ("&#xD800;x", "\u{fffd}x"),
            ("&#99999999999;x", "\u{fffd}x"),
            ("&#x110000;", "\u{fffd}"),
            ("&#x80;", "€"),
            // Python removes these references, htmlize keeps an unprintable character.
            ("&#x81;x", "x"),
            ("&#x7f;del", "del"),
            ("&#xfdd0;nc", "nc"),
            ("&#12;ff", "ff"),
        ] {
            assert_eq!(
                sanitize_file_name(raw).as_deref(),
                Some(expected),
                "{raw:?}"
            );
        }
    }

    // Vectors from Django 5.2's UploadedFile.name setter.
    #[test]
    fn uploaded_names_keep_the_base_name_cut_to_255_characters_with_the_extension() {
        assert_eq!(uploaded_file_name("a.txt").as_deref(), Ok("a.txt"));
        assert_eq!(uploaded_file_name("dir/sub/a.txt").as_deref(), Ok("a.txt"));
        assert_eq!(
            uploaded_file_name("dir\\a.txt").as_deref(),
            Ok("dir\\a.txt")
        );
        assert_eq!(uploaded_file_name(""), no_file_name(""));
        assert_eq!(uploaded_file_name("a/"), no_file_name(""));
        assert_eq!(uploaded_file_name("x/.."), no_file_name(".."));
        assert_eq!(uploaded_file_name("."), no_file_name("."));

        let x255 = "x".repeat(255);
        assert_eq!(uploaded_file_name(&x255).as_deref(), Ok(x255.as_str()));
        assert_eq!(uploaded_file_name(&"x".repeat(256)), Ok(x255));
        for (name, expected) in [
            (
                format!("{}.txt", "a".repeat(300)),
                format!("{}.txt", "a".repeat(251)),
            ),
            ("a".repeat(300), "a".repeat(255)),
            (
                format!(".{}", "b".repeat(300)),
                format!(".{}", "b".repeat(254)),
            ),
            (
                format!("a.{}", "e".repeat(300)),
                format!(".{}", "e".repeat(254)),
            ),
            (
                format!("{}.pdf", "é".repeat(300)),
                format!("{}.pdf", "é".repeat(251)),
            ),
            (
                format!("{}.tar.gz{}", "y".repeat(250), "z".repeat(10)),
                format!("{}.gz{}", "y".repeat(242), "z".repeat(10)),
            ),
            (
                format!("...{}", "q".repeat(300)),
                format!("...{}", "q".repeat(252)),
            ),
        ] {
            assert_eq!(uploaded_file_name(&name), Ok(expected), "{name}");
        }
    }

    // Vectors from Django 5.2's django.utils.text.get_valid_filename.
    #[test]
    fn valid_filenames_keep_only_dashes_dots_and_python_word_characters() {
        for (name, expected) in [
            ("john's portrait in 2004.jpg", "johns_portrait_in_2004.jpg"),
            ("  a b  .txt ", "a_b__.txt"),
            ("ünïcödé.txt", "ünïcödé.txt"),
            ("e\u{301}.txt", "e.txt"),
            ("Ⅻ½²٣.txt", "Ⅻ½²٣.txt"),
            ("a/b\\c.txt", "abc.txt"),
            ("tab\tx", "tabx"),
            ("\u{1f} a", "a"),
            ("\u{3000}a\u{3000}", "a"),
            ("\u{a0}a", "a"),
            ("\u{200b}a", "a"),
            ("\u{85}a\u{85}", "a"),
            ("\u{180e}a", "a"),
            ("a-b_c.d", "a-b_c.d"),
            ("日本語.txt", "日本語.txt"),
            ("中文 名.png", "中文_名.png"),
            ("x@y#z%.txt", "xyz.txt"),
            ("ǅ", "ǅ"),
            ("ʰ", "ʰ"),
            ("〇", "〇"),
            ("😀.txt", ".txt"),
            ("-", "-"),
            ("_", "_"),
        ] {
            assert_eq!(
                get_valid_filename(name).as_deref(),
                Ok(expected),
                "{name:?}"
            );
        }
        for name in ["", ".", "..", " . ", "$$$"] {
            assert_eq!(get_valid_filename(name), no_file_name(name));
        }
        assert_eq!(
            StorageError::NoFileName("$$$".into()).to_string(),
            "Could not derive file name from '$$$'"
        );
    }

    // Vectors from Django 5.2's FileField(upload_to=...).generate_filename on a
    // FileSystemStorage.
    #[test]
    fn generated_names_join_upload_to_and_refuse_traversal() {
        for (upload_to, filename, expected) in [
            ("", "a.txt", "a.txt"),
            ("uploads", "a b.txt", "uploads/a_b.txt"),
            ("uploads/", "x.png", "uploads/x.png"),
            ("a/./b", "c.txt", "a/b/c.txt"),
            ("a//b", "c.txt", "a/b/c.txt"),
            ("up", "sub/x.txt", "up/sub/x.txt"),
            ("up", "sub\\x.txt", "up/sub/x.txt"),
            ("up\\win", "x.txt", "up/win/x.txt"),
            ("up", "café crème.jpg", "up/café_crème.jpg"),
            (".", "x.txt", "x.txt"),
            ("./up", "x y", "up/x_y"),
        ] {
            assert_eq!(
                generate_filename(upload_to, filename).as_deref(),
                Ok(expected),
                "{upload_to:?} {filename:?}"
            );
        }
        for (upload_to, filename, expected) in [
            (
                "uploads/2024",
                "../x.png",
                traversal("uploads/2024/../x.png"),
            ),
            ("../up", "x", traversal("../up/x")),
            ("/abs", "x.txt", traversal("/abs/x.txt")),
            ("up", "/etc/passwd", traversal("/etc/passwd")),
            ("up", "..\\x.txt", traversal("up/..\\x.txt")),
            ("up", "a/../b.txt", traversal("up/a/../b.txt")),
            ("up/..", "x.txt", traversal("up/../x.txt")),
            ("a/../b", "x", traversal("a/../b/x")),
            ("up", "", no_file_name("up/")),
            ("up", ".", no_file_name("up/.")),
            ("up", "..", no_file_name("up/..")),
            ("up", "x/", no_file_name("up/x/")),
            ("up", "x/.", no_file_name("up/x/.")),
            ("up", "$$$", no_file_name("$$$")),
        ] {
            assert_eq!(
                generate_filename(upload_to, filename),
                expected,
                "{upload_to:?} {filename:?}"
            );
        }
        assert_eq!(
            StorageError::PathTraversal("../up/x".into()).to_string(),
            "Detected path traversal attempt in '../up/x'"
        );
    }

    fn available(
        name: &str,
        max_length: Option<usize>,
        taken: &[&str],
    ) -> Result<String, StorageError> {
        let mut randoms = ["AAAAAAA", "BBBBBBB", "CCCCCCC", "DDDDDDD"].into_iter();
        get_available_name(
            name,
            max_length,
            |n| taken.contains(&n),
            || randoms.next().unwrap_or("ZZZZZZZ").to_owned(),
        )
    }

    // Vectors from Django 5.2's FileSystemStorage.get_available_name, with exists() and
    // get_random_string() mocked.
    #[test]
    fn taken_names_get_a_random_suffix_before_all_their_extensions() {
        for (name, taken, expected) in [
            ("a.txt", &[][..], "a.txt"),
            ("a.txt", &["a.txt"][..], "a_AAAAAAA.txt"),
            ("a.txt", &["a.txt", "a_AAAAAAA.txt"][..], "a_BBBBBBB.txt"),
            (
                "dir/a.tar.gz",
                &["dir/a.tar.gz"][..],
                "dir/a_AAAAAAA.tar.gz",
            ),
            ("dir\\a.txt", &["dir/a.txt"][..], "dir/a_AAAAAAA.txt"),
            (
                "my.file.v2.txt",
                &["my.file.v2.txt"][..],
                "my_AAAAAAA.file.v2.txt",
            ),
            (".bashrc", &[".bashrc"][..], ".bashrc_AAAAAAA"),
            ("noext", &["noext"][..], "noext_AAAAAAA"),
            ("trail.", &["trail."][..], "trail._AAAAAAA"),
            ("a..b", &["a..b"][..], "a_AAAAAAA..b"),
            ("..a.b", &["..a.b"][..], "..a_AAAAAAA.b"),
            ("a//b.txt", &["a//b.txt"][..], "a/b_AAAAAAA.txt"),
            ("/abs/b.txt", &["/abs/b.txt"][..], "/abs/b_AAAAAAA.txt"),
        ] {
            assert_eq!(
                available(name, None, taken).as_deref(),
                Ok(expected),
                "{name}"
            );
        }
        assert_eq!(available("x/../a.txt", None, &[]), traversal("x/.."));
        assert_eq!(available("../a.txt", None, &[]), traversal(".."));
        assert_eq!(available("dir/", None, &[]), no_file_name(""));
        assert_eq!(available("dir/..", None, &[]), no_file_name(".."));
        assert_eq!(available("", None, &[]), no_file_name(""));
    }

    // Vectors from Django 5.2's FileSystemStorage.get_available_name with max_length.
    #[test]
    fn names_over_max_length_have_their_root_cut_or_are_refused() {
        let refused = |name: &str| Err(StorageError::NoAvailableName(name.to_owned()));
        assert_eq!(
            available("longname.txt", Some(15), &[]).as_deref(),
            Ok("longname.txt")
        );
        assert_eq!(
            available("longname.txt", Some(20), &["longname.txt"]).as_deref(),
            Ok("longname_AAAAAAA.txt")
        );
        assert_eq!(
            available("longname.txt", Some(15), &["longname.txt"]).as_deref(),
            Ok("lon_BBBBBBB.txt")
        );
        assert_eq!(
            available("abcdefgh.txt", Some(14), &["abcdefgh.txt", "a_AAAAAAA.txt"]).as_deref(),
            Ok("ab_BBBBBBB.txt")
        );
        assert_eq!(
            available(
                "abcdefgh.txt",
                Some(14),
                &["abcdefgh.txt", "ab_BBBBBBB.txt"]
            )
            .as_deref(),
            Ok("ab_CCCCCCC.txt")
        );
        assert_eq!(
            available("éééééé.txt", Some(15), &["éééééé.txt"]).as_deref(),
            Ok("ééé_BBBBBBB.txt")
        );
        assert_eq!(
            available("longname.txt", Some(10), &[]),
            refused("longname_AAAAAAA.txt")
        );
        assert_eq!(
            available("dir/longname.txt", Some(16), &["dir/longname.txt"]),
            refused("dir/longname_AAAAAAA.txt")
        );
        assert_eq!(
            available("ab.txt", Some(12), &["ab.txt"]),
            refused("ab_AAAAAAA.txt")
        );
        assert_eq!(
            available("ab.txt", Some(11), &["ab.txt"]),
            refused("ab_AAAAAAA.txt")
        );
        // Zero is Python's falsy max_length: no length test until the name is taken.
        assert_eq!(available("a.txt", Some(0), &[]).as_deref(), Ok("a.txt"));
        assert_eq!(
            available("a.txt", Some(0), &["a.txt"]),
            refused("a_AAAAAAA.txt")
        );
        assert_eq!(
            StorageError::NoAvailableName("a_AAAAAAA.txt".into()).to_string(),
            "Storage can not find an available filename for \"a_AAAAAAA.txt\". Please make sure \
             that the corresponding file field allows sufficient \"max_length\"."
        );
    }

    #[test]
    fn random_suffixes_are_seven_letters_or_digits() {
        let mut rng = rand::rngs::OsRng;
        let suffixes: Vec<String> = (0..20).map(|_| random_suffix(&mut rng)).collect();
        for suffix in &suffixes {
            assert_eq!(suffix.len(), 7);
            assert!(
                suffix.chars().all(|c| c.is_ascii_alphanumeric()),
                "{suffix}"
            );
        }
        assert!(suffixes.iter().any(|s| s != &suffixes[0]));
    }

    // Vectors from Django 5.2's django.utils._os.safe_join.
    #[test]
    fn joined_paths_are_normalized_and_must_stay_under_the_base() {
        for (base, name, expected) in [
            ("/srv/media", "a.txt", Some("/srv/media/a.txt")),
            ("/srv/media", "", Some("/srv/media")),
            ("/srv/media", ".", Some("/srv/media")),
            ("/srv/media/", "a//b/./c/../d", Some("/srv/media/a/b/d")),
            ("/srv/media", "a/../../media/x", Some("/srv/media/x")),
            ("/srv/media", "/srv/media/x", Some("/srv/media/x")),
            ("/srv/../srv/media", "x", Some("/srv/media/x")),
            ("/srv/media", "x/..", Some("/srv/media")),
            (
                "/srv/media",
                "a\\..\\..\\b",
                Some("/srv/media/a\\..\\..\\b"),
            ),
            ("/", "etc/passwd", Some("/etc/passwd")),
            ("/", "../../x", Some("/x")),
            ("//", "x", Some("//x")),
            ("//srv", "x", Some("//srv/x")),
            ("///srv", "x", Some("/srv/x")),
            ("/srv/media", "../x", None),
            ("/srv/media", "/etc/passwd", None),
            ("/srv/media", "../media2/x", None),
            ("/srv/media", "x/../..", None),
            // Not Django's: a relative base would depend on the working directory.
            ("srv/media", "x", None),
        ] {
            assert_eq!(
                safe_join(base, name).as_deref(),
                expected,
                "{base:?} {name:?}"
            );
        }
    }

    /// Python 3.11's default `encodings_map` and `suffix_map`, with twelve of its default
    /// `types_map` entries: the tables of `mimetypes.MimeTypes(filenames=())` restricted to
    /// these, from which the expected values below were computed.
    fn python_types() -> MimeTypes {
        let map = |entries: &[(&str, &str)]| {
            entries
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<HashMap<_, _>>()
        };
        MimeTypes {
            types_map: map(&[
                (".txt", "text/plain"),
                (".html", "text/html"),
                (".csv", "text/csv"),
                (".pdf", "application/pdf"),
                (".png", "image/png"),
                (".jpg", "image/jpeg"),
                (".svg", "image/svg+xml"),
                (".tar", "application/x-tar"),
                (".json", "application/json"),
                (".js", "application/javascript"),
                (".xml", "text/xml"),
                (".sh", "application/x-sh"),
            ]),
            encodings_map: map(&[
                (".gz", "gzip"),
                (".Z", "compress"),
                (".bz2", "bzip2"),
                (".xz", "xz"),
                (".br", "br"),
            ]),
            suffix_map: map(&[
                (".svgz", ".svg.gz"),
                (".tgz", ".tar.gz"),
                (".taz", ".tar.gz"),
                (".tz", ".tar.gz"),
                (".tbz2", ".tar.bz2"),
                (".txz", ".tar.xz"),
            ]),
        }
    }

    fn headers(filename: &str, size: u64, as_attachment: bool) -> Vec<(&'static str, String)> {
        file_response_headers(filename, size, as_attachment, &python_types())
    }

    fn content_type(filename: &str) -> String {
        headers(filename, 1, false)
            .into_iter()
            .find(|(name, _)| *name == "Content-Type")
            .map(|(_, value)| value)
            .unwrap_or_default()
    }

    // Vectors from Django 5.2's FileResponse(io.BytesIO(...), filename=..., as_attachment=...).
    #[test]
    fn file_responses_get_djangos_type_length_and_disposition() {
        let expect = |t: &str, len: &str, disposition: Option<&str>| {
            let mut h = vec![
                ("Content-Type", t.to_owned()),
                ("Content-Length", len.to_owned()),
            ];
            if let Some(d) = disposition {
                h.push(("Content-Disposition", d.to_owned()));
            }
            h
        };
        let cases: &[(&str, u64, bool, &str, Option<&str>)] = &[
            (
                "report.pdf",
                1234,
                false,
                "application/pdf",
                Some("inline; filename=\"report.pdf\""),
            ),
            (
                "report.pdf",
                0,
                true,
                "application/pdf",
                Some("attachment; filename=\"report.pdf\""),
            ),
            (
                "/var/files/a b.txt",
                5,
                true,
                "text/plain",
                Some("attachment; filename=\"a b.txt\""),
            ),
            (
                "q\"uo\\te.txt",
                1,
                true,
                "text/plain",
                Some("attachment; filename=\"q\\\"uo\\\\te.txt\""),
            ),
            (
                "café.txt",
                3,
                false,
                "text/plain",
                Some("inline; filename*=utf-8''caf%C3%A9.txt"),
            ),
            (
                "tab\tname.txt",
                1,
                true,
                "text/plain",
                Some("attachment; filename=\"tab\tname.txt\""),
            ),
            (
                "new\nline.txt",
                1,
                true,
                "text/plain",
                Some("attachment; filename*=utf-8''new%0Aline.txt"),
            ),
            ("", 7, true, "application/octet-stream", Some("attachment")),
            ("", 7, false, "application/octet-stream", None),
            ("dir/", 2, false, "application/octet-stream", None),
            (
                "日本 語.csv",
                10,
                true,
                "text/csv",
                Some("attachment; filename*=utf-8''%E6%97%A5%E6%9C%AC%20%E8%AA%9E.csv"),
            ),
            (
                "a;b,c%.txt",
                1,
                true,
                "text/plain",
                Some("attachment; filename=\"a;b,c%.txt\""),
            ),
            (
                "~tilde_-.txt",
                1,
                true,
                "text/plain",
                Some("attachment; filename=\"~tilde_-.txt\""),
            ),
            (
                "\u{7f}.txt",
                1,
                true,
                "text/plain",
                Some("attachment; filename*=utf-8''%7F.txt"),
            ),
            (
                "emoji😀.png",
                1,
                true,
                "image/png",
                Some("attachment; filename*=utf-8''emoji%F0%9F%98%80.png"),
            ),
        ];
        for &(name, size, attachment, t, disposition) in cases {
            assert_eq!(
                headers(name, size, attachment),
                expect(t, &size.to_string(), disposition),
                "{name:?}"
            );
        }
        // Django raises BadHeaderError here; the encoded form is what a browser can use.
        assert_eq!(
            headers("end\n", 1, true)[2].1,
            "attachment; filename*=utf-8''end%0A"
        );
    }

    // Vectors from Django 5.2's FileResponse, with mimetypes.guess_type on the tables of
    // python_types(): compressed files are their compression's type.
    #[test]
    fn file_response_types_follow_python_suffix_and_encoding_rules() {
        for (name, expected) in [
            ("archive.tar.gz", "application/gzip"),
            ("x.gz", "application/gzip"),
            ("x.unknown.gz", "application/gzip"),
            ("x.tgz", "application/gzip"),
            ("x.TGZ", "application/gzip"),
            ("x.svgz", "application/gzip"),
            ("x.GZ", "application/octet-stream"),
            ("x.Z", "application/x-compress"),
            ("x.z", "application/octet-stream"),
            ("x.txt.bz2", "application/x-bzip"),
            ("x.tbz2", "application/x-bzip"),
            ("x.br", "application/x-brotli"),
            ("x.xz", "application/x-xz"),
            ("x.txz", "application/x-xz"),
            ("X.PDF", "application/pdf"),
            ("photo.JPG", "image/jpeg"),
            ("README", "application/octet-stream"),
            (".bashrc", "application/octet-stream"),
            ("file.", "application/octet-stream"),
            ("a:.txt", "application/octet-stream"),
            ("data:abc,def", "text/plain"),
            ("data:x;y,z", "text/plain"),
            ("DATA:x", "application/octet-stream"),
            // The base name of this is `png,x`.
            ("data:image/png,x", "application/octet-stream"),
            ("a.unknownext", "application/octet-stream"),
        ] {
            assert_eq!(content_type(name), expected, "{name}");
        }
        assert_eq!(
            file_response_headers("x.txt", 1, false, &MimeTypes::default())[0].1,
            "application/octet-stream"
        );
    }

    // Python 3.11's mimetypes.MimeTypes(filenames=()) with the tables of python_types():
    // guess_type(name), strict.
    #[test]
    fn guess_type_is_pythons() {
        let types = python_types();
        for (name, content_type, encoding) in [
            ("a.txt", Some("text/plain"), None),
            ("A.TXT", Some("text/plain"), None),
            ("a.Txt", Some("text/plain"), None),
            ("photo.JPG", Some("image/jpeg"), None),
            ("a.tar.gz", Some("application/x-tar"), Some("gzip")),
            ("a.TAR.GZ", None, None),
            ("a.tar.GZ", None, None),
            ("x.gz", None, Some("gzip")),
            ("x.GZ", None, None),
            ("x.tgz", Some("application/x-tar"), Some("gzip")),
            ("x.TGZ", Some("application/x-tar"), Some("gzip")),
            ("x.Tgz", Some("application/x-tar"), Some("gzip")),
            ("x.taz", Some("application/x-tar"), Some("gzip")),
            ("x.tz", Some("application/x-tar"), Some("gzip")),
            ("x.tbz2", Some("application/x-tar"), Some("bzip2")),
            ("x.txz", Some("application/x-tar"), Some("xz")),
            ("x.svgz", Some("image/svg+xml"), Some("gzip")),
            ("x.SVGZ", Some("image/svg+xml"), Some("gzip")),
            ("x.Z", None, Some("compress")),
            ("x.z", None, None),
            ("x.tar.Z", Some("application/x-tar"), Some("compress")),
            ("x.txt.bz2", Some("text/plain"), Some("bzip2")),
            ("x.br", None, Some("br")),
            ("x.xz", None, Some("xz")),
            ("x.unknown.gz", None, Some("gzip")),
            ("x.gz.gz", None, Some("gzip")),
            ("x.txt.gz.txt", Some("text/plain"), None),
            ("data:abc,def", Some("text/plain"), None),
            ("data:x;y,z", Some("text/plain"), None),
            ("data:image/png;base64,AAAA", Some("image/png"), None),
            ("DATA:text/html,<p>", Some("text/html"), None),
            ("Data:a=b/c,x", Some("text/plain"), None),
            ("data:text/plain;charset=utf-8,x", Some("text/plain"), None),
            ("data:nocomma", None, None),
            ("DATA:x", None, None),
            ("data:,", Some("text/plain"), None),
            ("a:.txt", None, None),
            ("a:b.pdf", Some("application/pdf"), None),
            ("a:b:c.txt", Some("text/plain"), None),
            (":x.txt", Some("text/plain"), None),
            ("/a:b.txt", Some("text/plain"), None),
            ("dir/a:b.txt", Some("text/plain"), None),
            ("http://host/x.pdf", Some("application/pdf"), None),
            ("dir/x.csv", Some("text/csv"), None),
            ("dir.d/file", None, None),
            ("README", None, None),
            (".bashrc", None, None),
            (".bashrc.sh", Some("application/x-sh"), None),
            ("..txt", None, None),
            ("file.", None, None),
            ("a.unknownext", None, None),
            ("a.b.c", None, None),
            ("", None, None),
        ] {
            assert_eq!(types.guess_type(name), (content_type, encoding), "{name:?}");
        }
    }

    #[test]
    fn mime_types_deserialize_from_pythons_json() {
        let types: MimeTypes = serde_json::from_str(
            r#"{"types_map": {".txt": "text/plain"}, "encodings_map": {".gz": "gzip"},
                "suffix_map": {".tgz": ".tar.gz"}}"#,
        )
        .unwrap();
        assert_eq!(
            types.guess_type("x.txt.gz"),
            (Some("text/plain"), Some("gzip"))
        );
        assert_eq!(types.guess_type("x.tgz"), (None, Some("gzip")));
    }
}
