//! Python-exact encodings for ported handlers.
//!
//! A native handler replaces a Django view only if clients cannot tell the
//! difference, so this module reproduces two pieces of CPython behaviour byte
//! for byte: the body Django's `JsonResponse(data)` writes
//! (`json.dumps(data, cls=DjangoJSONEncoder)` with Python's defaults), and
//! `int(str)` as views apply it to query parameters. It is pure: no HTTP, no
//! I/O, no Python interpreter; headers and status codes belong to the caller.
//! Expected values in the tests were produced by CPython 3.11.7.

use std::fmt::LowerExp;
use std::io::{self, Write};
use std::str::FromStr;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};

/// Serialises `value` as Django's `JsonResponse(value)` body: `", "` and
/// `": "` separators, `ensure_ascii` escaping, floats as `repr(float)`, keys
/// in the order given, no trailing newline.
///
/// Divergence: Python writes non-finite floats as `NaN`/`Infinity`/
/// `-Infinity`, but serde_json turns them into `null` before any formatter
/// sees them, so they come out as `null` here (and as an error when used as
/// a map key). Handlers whose data can hold them must deal with them first.
///
/// Errors only where serde_json's own serialiser would: a failing `Serialize`
/// impl, a map key that is neither string nor number, a non-finite float key.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, DjangoJsonFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// The formatter behind [`to_vec`], public so callers can stream into their
/// own writer. Integers use serde_json's defaults, which already match
/// Python's `str(int)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DjangoJsonFormatter;

impl Formatter for DjangoJsonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(float_repr(value).as_bytes())
    }

    // Python has no single-precision float. Printing the shortest digits that
    // round-trip the f32 gives what the view would have printed had it held
    // the same decimal value ("0.1", not widened "0.10000000149011612").
    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        w.write_all(float_repr(value).as_bytes())
    }

    // serde_json has already split out quotes, backslashes and C0 controls;
    // what remains that Python's ensure_ascii still escapes is DEL and every
    // non-ASCII character.
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, s: &str) -> io::Result<()> {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            w.write_all(&s.as_bytes()[plain..i])?;
            plain = i + c.len_utf8();
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
        }
        w.write_all(&s.as_bytes()[plain..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        esc: CharEscape,
    ) -> io::Result<()> {
        match esc {
            CharEscape::Quote => w.write_all(b"\\\""),
            CharEscape::ReverseSolidus => w.write_all(b"\\\\"),
            // Python never escapes '/'; serde_json does not ask today either.
            CharEscape::Solidus => w.write_all(b"/"),
            CharEscape::Backspace => w.write_all(b"\\b"),
            CharEscape::FormFeed => w.write_all(b"\\f"),
            CharEscape::LineFeed => w.write_all(b"\\n"),
            CharEscape::CarriageReturn => w.write_all(b"\\r"),
            CharEscape::Tab => w.write_all(b"\\t"),
            CharEscape::AsciiControl(byte) => write!(w, "\\u{byte:04x}"),
        }
    }
}

// Rust's shortest form breaks an exact tie between two shortest candidates
// upwards (-30452248614633.563), CPython's dtoa to even (.562). std's
// fixed-precision formatting rounds half to even, so re-rounding to the same
// digit count gives Python's pick; it is kept only if it still round-trips.
fn float_repr<F: LowerExp + FromStr + PartialEq>(value: F) -> String {
    let shortest = format!("{value:e}");
    let mantissa = shortest.split('e').next().unwrap_or(&shortest);
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let nearest = format!("{value:.*e}", digits.saturating_sub(1));
    let round_trips = nearest.parse::<F>().is_ok_and(|parsed| parsed == value);
    python_float_repr(if round_trips { &nearest } else { &shortest })
}

/// Lays out Rust's scientific form (`"-1.5e-7"`) as `repr(float)` does:
/// positional for decimal exponents -4..=15, otherwise `d.ddde±XX` with at
/// least two exponent digits.
fn python_float_repr(sci: &str) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0); // Rust always prints a valid exponent
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits = mantissa.replace(['-', '.'], "");
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let (first, rest) = digits.split_at(1.min(digits.len()));
    if !(-4..16).contains(&exp) {
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.unsigned_abs());
    }
    if exp < 0 {
        let zeros = "0".repeat(exp.unsigned_abs() as usize - 1);
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        let zeros = "0".repeat(int_len - digits.len());
        format!("{sign}{digits}{zeros}.0")
    } else {
        let (int_part, frac) = digits.split_at(int_len);
        format!("{sign}{int_part}.{frac}")
    }
}

/// CPython's default `sys.get_int_max_str_digits()`: `int()` raises
/// `ValueError` on strings with more digits than this.
pub const INT_MAX_STR_DIGITS: usize = 4300;

/// Outcome of Python's `int(text)`. `Huge` is kept apart from `Invalid`
/// because Django tells them apart: a huge page number is "out of range",
/// an unparsable one "not an integer".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyInt {
    /// An integer that fits `i128`.
    Value(i128),
    /// A valid integer outside `i128`.
    Huge {
        /// Below zero.
        negative: bool,
    },
    /// `int()` would raise `ValueError`.
    Invalid,
}

/// Python's `int(text)` (base 10) under the default digit limit.
///
/// Whitespace: `int()` does NOT strip like `str.strip()`. It turns non-ASCII
/// Unicode whitespace into spaces but strips only C `isspace` among ASCII,
/// so `"\x1c12"` is a `ValueError`. That set is exactly Rust's
/// `char::is_whitespace` (pinned by a test), hence `str::trim`.
#[must_use]
pub fn py_int(text: &str) -> PyInt {
    py_int_with_max_digits(text, INT_MAX_STR_DIGITS)
}

/// [`py_int`] for a process that changed `sys.set_int_max_str_digits`;
/// `0` means unlimited, as in Python.
#[must_use]
pub fn py_int_with_max_digits(text: &str, max_str_digits: usize) -> PyInt {
    let body = text.trim();
    let (negative, digits) = match body.as_bytes().first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    let mut magnitude = Some(0u128);
    let mut count = 0usize;
    // Starting "after an underscore" refuses a leading one like a doubled one.
    let mut after_underscore = true;
    for c in digits.chars() {
        match (c, decimal_value(c)) {
            ('_', _) if !after_underscore => after_underscore = true,
            (_, Some(d)) => {
                after_underscore = false;
                count += 1;
                magnitude = magnitude.and_then(|m| m.checked_mul(10)?.checked_add(d.into()));
            }
            _ => return PyInt::Invalid,
        }
    }
    if count == 0 || after_underscore || (max_str_digits > 0 && count > max_str_digits) {
        return PyInt::Invalid;
    }
    match magnitude {
        Some(m) if negative && m <= i128::MIN.unsigned_abs() => {
            PyInt::Value(0i128.wrapping_sub_unsigned(m))
        }
        Some(m) if !negative => i128::try_from(m).map_or(PyInt::Huge { negative }, PyInt::Value),
        _ => PyInt::Huge { negative },
    }
}

/// Python's `str.strip()` with no argument. Unlike `int()`, it strips the
/// ASCII separators \x1c-\x1f too, which `char::is_whitespace` does not.
#[must_use]
pub fn py_strip(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// The zero of every run of Unicode decimal digits (general category Nd) in
/// Unicode 14.0, the database of CPython 3.11; `int()` accepts all of them.
/// Each run is ten consecutive code points. Generated with `unicodedata`.
const ND_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

fn decimal_value(c: char) -> Option<u8> {
    let cp = u32::from(c);
    let zero = ND_ZEROS[ND_ZEROS.partition_point(|&z| z <= cp).checked_sub(1)?];
    u8::try_from(cp - zero).ok().filter(|&d| d < 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BIG: PyInt = PyInt::Huge { negative: false };

    fn dumps<T: Serialize + ?Sized>(value: &T) -> String {
        String::from_utf8(to_vec(value).unwrap()).unwrap()
    }

    #[derive(Serialize)]
    struct Page {
        zeta: u32,
        alpha: Vec<u32>,
        none: Option<u32>,
    }

    #[test]
    fn keys_keep_given_order_with_python_separators() {
        let v = json!({"b": 1, "a": [1, 2, {"c": null}], "z": true, "y": false});
        let want = r#"{"b": 1, "a": [1, 2, {"c": null}], "z": true, "y": false}"#;
        assert_eq!(dumps(&v), want);
        let page = Page {
            zeta: 1,
            alpha: vec![2, 3],
            none: None,
        };
        let want = r#"{"zeta": 1, "alpha": [2, 3], "none": null}"#;
        assert_eq!(dumps(&page), want);
    }

    #[test]
    fn empty_containers_have_no_inner_space() {
        assert_eq!(dumps(&json!({})), "{}");
        assert_eq!(dumps(&json!([])), "[]");
        assert_eq!(dumps(&json!({"a": {}, "b": []})), r#"{"a": {}, "b": []}"#);
    }

    #[test]
    fn non_ascii_is_escaped_lowercase_with_surrogate_pairs() {
        let want = r#""caf\u00e9 \u4e2d\u6587 \ud83d\ude00""#;
        assert_eq!(dumps("café 中文 😀"), want);
        let v = json!({"k": "\u{ff}\u{100}\u{ffff}\u{10000}\u{10ffff}"});
        let want = r#"{"k": "\u00ff\u0100\uffff\ud800\udc00\udbff\udfff"}"#;
        assert_eq!(dumps(&v), want);
        assert_eq!(dumps("a\u{2028}b"), r#""a\u2028b""#);
    }

    #[test]
    fn quotes_controls_and_del_escaped_but_not_slash() {
        let s = "q\"b\\n\nr\rt\tb\u{8}f\u{c}\u{1}\u{1f}\u{7f}/";
        assert_eq!(dumps(s), r#""q\"b\\n\nr\rt\tb\bf\f\u0001\u001f\u007f/""#);
    }

    #[test]
    fn integers_and_literals_print_as_python() {
        let want = "[0, -1, 18446744073709551615, -9223372036854775808]";
        assert_eq!(dumps(&(0, -1, u64::MAX, i64::MIN)), want);
        let want = "-170141183460469231731687303715884105728";
        assert_eq!(dumps(&i128::MIN), want);
        let want = "[true, false, null]";
        assert_eq!(dumps(&[Some(true), Some(false), None]), want);
    }

    // (Rust literal, what CPython's json.dumps printed for it)
    #[rustfmt::skip]
    const FLOATS: &[(f64, &str)] = &[
        (0.1, "0.1"), (1.0, "1.0"), (1e16, "1e+16"), (1.5e-7, "1.5e-07"), (0.0001, "0.0001"),
        (123456789012345680.0, "1.2345678901234568e+17"), (0.00001, "1e-05"), (-0.0, "-0.0"),
        (1e15, "1000000000000000.0"), (9999999999999998.0, "9999999999999998.0"),
        (5e-324, "5e-324"), (f64::MAX, "1.7976931348623157e+308"), (-2.5, "-2.5"),
        (100.0, "100.0"), (1e22, "1e+22"), (123.456, "123.456"), (3.0e-5, "3e-05"),
        (1.2e-4, "0.00012"), (1234567890123456.7, "1234567890123456.8"), (0.5, "0.5"),
        (12345678901234567.0, "1.2345678901234568e+16"), (1e100, "1e+100"), (-1e-10, "-1e-10"),
        (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
    ];

    #[test]
    fn floats_match_python_repr() {
        for &(value, want) in FLOATS {
            assert_eq!(dumps(&value), want);
        }
        assert_eq!(dumps(&0.1f32), "0.1");
    }

    #[test]
    fn float_ties_between_shortest_candidates_round_to_even() {
        // Exactly -30452248614633.5625: .562 and .563 both round-trip.
        let v = f64::from_bits(0xc2bb_b237_7616_e990);
        assert_eq!(dumps(&v), "-30452248614633.562");
    }

    #[test]
    fn non_finite_floats_become_null_unlike_python() {
        // Python writes [NaN, Infinity, -Infinity]; serde_json cannot.
        let v = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        assert_eq!(dumps(&v), "[null, null, null]");
    }

    // (text, CPython's int(text))
    #[rustfmt::skip]
    const ACCEPTED: &[(&str, i128)] = &[
        ("1_000", 1000), ("٣", 3), ("５", 5), ("۳", 3), ("३", 3), ("  -7 ", -7), ("+0", 0),
        ("007", 7), ("0_0", 0), ("-0", 0), ("\u{a0}12\u{3000}", 12), ("\u{85}12", 12),
        ("\u{1d7d7}", 9), ("\u{e59}\u{e50}", 90), ("-\u{ff11}\u{ff12}", -12),
        ("\u{663}_\u{664}", 34), ("\u{1fbf9}", 9), (" \t\n\u{b}\u{c}\r42\n", 42),
    ];

    // Texts on which CPython's int() raised ValueError.
    #[rustfmt::skip]
    const REFUSED: &[&str] = &[
        "", "1.0", "1e3", "0x10", " ", "--1", "_1", "1_", "1__0", "- 1", "+_1", "1 2", "²",
        "\u{200b}1", "1\0", "\x1c12\n", "12\x1f", "\x7f1", "+", "-",
    ];

    #[test]
    fn py_int_accepts_what_python_accepts() {
        for &(text, want) in ACCEPTED {
            assert_eq!(py_int(text), PyInt::Value(want), "{text:?}");
        }
    }

    #[test]
    fn py_int_refuses_what_python_refuses() {
        for &text in REFUSED {
            assert_eq!(py_int(text), PyInt::Invalid, "{text:?}");
        }
    }

    #[test]
    fn py_int_tells_huge_from_invalid() {
        let (max, min) = (PyInt::Value(i128::MAX), PyInt::Value(i128::MIN));
        assert_eq!(py_int("170141183460469231731687303715884105727"), max);
        assert_eq!(py_int("-170141183460469231731687303715884105728"), min);
        assert_eq!(py_int("170141183460469231731687303715884105728"), BIG);
        let below = PyInt::Huge { negative: true };
        assert_eq!(py_int("-170141183460469231731687303715884105729"), below);
        assert_eq!(py_int(&"9".repeat(4300)), BIG);
        assert_eq!(py_int(&format!("{}x", "9".repeat(100))), PyInt::Invalid);
    }

    #[test]
    fn py_int_counts_digits_against_python_limit() {
        // Over 4300 digits (leading zeros count, underscores do not) int() raises ValueError.
        assert_eq!(py_int(&format!("{}1", "0".repeat(4300))), PyInt::Invalid);
        let underscored = |n| format!("{}{}", "1_".repeat(10), "1".repeat(n));
        assert_eq!(py_int(&underscored(4290)), BIG);
        assert_eq!(py_int(&underscored(4291)), PyInt::Invalid);
        assert_eq!(py_int_with_max_digits(&"1".repeat(5000), 0), BIG);
    }

    #[test]
    fn py_strip_strips_what_python_strips() {
        assert_eq!(py_strip(" \x1c a b \x1f\u{3000}\u{85}\n"), "a b");
        assert_eq!(py_strip("\u{200b}x\u{200b}"), "\u{200b}x\u{200b}");
        assert_eq!(py_strip("\x1c\x1d\x1e\x1f"), "");
    }

    #[test]
    fn int_whitespace_is_rust_whitespace_and_strip_adds_separators() {
        // Python: [c for c in range(0x110000) if chr(c).isspace()]; int() leaves out
        // \x1c-\x1f because they are ASCII but not C isspace.
        let py = |c| {
            matches!(c, 0x9..=0xd | 0x20 | 0x85 | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029)
                || matches!(c, 0x202f | 0x205f | 0x3000)
        };
        for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
            let cp = u32::from(c);
            assert_eq!(c.is_whitespace(), py(cp), "{c:?}");
            let stripped = py_strip(c.encode_utf8(&mut [0; 4])).is_empty();
            assert_eq!(stripped, py(cp) || (0x1c..=0x1f).contains(&cp), "{c:?}");
        }
    }
}
