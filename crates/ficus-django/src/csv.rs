//! A CSV row written as Python's `csv.writer` writes it with the default `excel` dialect, so a
//! ported CSV export is the bytes the Django view's would be.
//!
//! From Python 3.11's `_csv.c`: fields joined by `,` and the row ended by `\r\n`; a field is
//! quoted (`QUOTE_MINIMAL`) only when it holds `,`, `"`, `\r` or `\n`, with `"` doubled inside;
//! nothing else (a leading space, a `#`, a tab) is quoted. A row of one empty field is `""`, so
//! that it reads back as a field and not as an empty row. Numbers are written as Python's
//! `str()` writes them. The text is UTF-8, as a Django response encodes it by default.
//!
//! What must not be here: other dialects, reading CSV, or deciding what a row holds.

use std::borrow::Cow;

/// One value of a row, as the Python view would pass it to `writerow`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    /// A `str`.
    Str(&'a str),
    /// An `int`.
    Int(i64),
    /// A `float`, written as `repr` writes it (`1e+16`, `0.0001`, `1e-05`, `nan`).
    Float(f64),
    /// `None`, written as an empty field.
    None,
}

impl<'a> From<&'a str> for Field<'a> {
    fn from(value: &'a str) -> Self {
        Field::Str(value)
    }
}

impl From<i64> for Field<'_> {
    fn from(value: i64) -> Self {
        Field::Int(value)
    }
}

impl From<f64> for Field<'_> {
    fn from(value: f64) -> Self {
        Field::Float(value)
    }
}

impl Field<'_> {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Field::Str(s) => Cow::Borrowed(s),
            Field::Int(i) => Cow::Owned(i.to_string()),
            Field::Float(f) => Cow::Owned(float_repr(*f)),
            Field::None => Cow::Borrowed(""),
        }
    }
}

/// Appends `fields` to `out` as `csv.writer(f).writerow(fields)` writes them, `\r\n` included.
pub fn write_row(out: &mut Vec<u8>, fields: &[Field<'_>]) {
    let texts: Vec<Cow<'_, str>> = fields.iter().map(Field::text).collect();
    // A lone empty field would write an empty line, which reads back as no field at all.
    if let [only] = texts.as_slice()
        && only.is_empty()
    {
        out.extend_from_slice(b"\"\"\r\n");
        return;
    }
    for (i, text) in texts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if text.contains([',', '"', '\r', '\n']) {
            out.push(b'"');
            out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(text.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Python's `repr(float)`: the shortest digits that read back as `f`, in positional notation
/// when the decimal point falls within 16 digits of them (with `.0` for a whole number), and
/// as `d.ddde±XX` otherwise.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let (digits, exp) = shortest_digits(f.abs());
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // Where the decimal point goes, counted in digits from the first.
    let point = exp + 1;
    let body = if !(-3..=16).contains(&point) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{first}{dot}{rest}e{exp_sign}{:02}", exp.unsigned_abs())
    } else if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if point >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            let (whole, fraction) = digits.split_at(point);
            format!("{whole}.{fraction}")
        }
    };
    format!("{sign}{body}")
}

/// The shortest digits that read back as `f` (not negative), and the exponent of the first.
///
/// Rust's `{:e}` gives the shortest digits, as Python does, except where `f` lies exactly
/// halfway between two shortest candidates: Rust then takes the upper one and Python the even
/// one (`204300847914537.625` is `...537.62` in Python).
fn shortest_digits(f: f64) -> (String, i32) {
    let (mut digits, exp) = scientific(&format!("{f:e}"));
    let Some(last) = digits.bytes().last().filter(|d| d % 2 == 1) else {
        return (digits, exp);
    };
    for neighbour in [last - 1, last + 1].into_iter().filter(u8::is_ascii_digit) {
        let mut candidate = digits.clone();
        candidate.pop();
        candidate.push(char::from(neighbour));
        let (first, rest) = candidate.split_at(1);
        if format!("{first}.{rest}e{exp}").parse::<f64>() != Ok(f) {
            continue;
        }
        // Both read back as `f`: is `f` exactly the midpoint, the lower one followed by 5?
        let mut midpoint = if neighbour < last {
            candidate.clone()
        } else {
            digits.clone()
        };
        midpoint.push('5');
        // 800 digits hold the exact value of any double.
        let (exact, exact_exp) = scientific(&format!("{f:.800e}"));
        if exact_exp == exp && exact.trim_end_matches('0') == midpoint {
            digits = candidate;
            break;
        }
    }
    (digits, exp)
}

/// The digits and the exponent of Rust's `d.ddde<exp>`.
fn scientific(sci: &str) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[Field<'_>]) -> String {
        let mut out = Vec::new();
        write_row(&mut out, fields);
        String::from_utf8(out).unwrap_or_default()
    }

    // Vectors from Python 3.11's csv.writer(io.StringIO()).writerow(...).
    #[test]
    fn fields_are_quoted_only_for_comma_quote_and_line_breaks() {
        use Field::Str;
        for (fields, expected) in [
            (&[Str("a,b")][..], "\"a,b\"\r\n"),
            (&[Str("a\"b")][..], "\"a\"\"b\"\r\n"),
            (&[Str("\"")][..], "\"\"\"\"\r\n"),
            (&[Str("a\rb")][..], "\"a\rb\"\r\n"),
            (&[Str("a\nb")][..], "\"a\nb\"\r\n"),
            (&[Str("\r\n")][..], "\"\r\n\"\r\n"),
            (&[Str("x\"y,z\nw")][..], "\"x\"\"y,z\nw\"\r\n"),
            (&[Str("é,ü")][..], "\"é,ü\"\r\n"),
            (&[Str(" a"), Str("b ")][..], " a,b \r\n"),
            (&[Str(" ")][..], " \r\n"),
            (&[Str("\0")][..], "\0\r\n"),
            (&[Str("\t")][..], "\t\r\n"),
            (&[Str("\u{c}")][..], "\u{c}\r\n"),
            (&[Str("\u{2028}")][..], "\u{2028}\r\n"),
            (&[Str("#a")][..], "#a\r\n"),
            (&[Str("'a")][..], "'a\r\n"),
            (&[Str("a;b")][..], "a;b\r\n"),
        ] {
            assert_eq!(row(fields), expected, "{fields:?}");
        }
    }

    // Vectors from Python 3.11: [""] and [None] are `""`, other empty fields are nothing.
    #[test]
    fn a_row_of_one_empty_field_is_written_as_quotes() {
        assert_eq!(row(&[Field::Str("")]), "\"\"\r\n");
        assert_eq!(row(&[Field::None]), "\"\"\r\n");
        assert_eq!(row(&[]), "\r\n");
        assert_eq!(row(&[Field::Str(""), Field::Str("")]), ",\r\n");
        assert_eq!(row(&[Field::Str(""), Field::None]), ",\r\n");
        assert_eq!(row(&[Field::Str("a"), Field::Str("")]), "a,\r\n");
    }

    // Vectors from Python 3.11's writerow on ints and floats.
    #[test]
    fn numbers_are_written_as_python_prints_them() {
        assert_eq!(
            row(&[
                1.into(),
                (-2).into(),
                0.into(),
                i64::MAX.into(),
                i64::MIN.into()
            ]),
            "1,-2,0,9223372036854775807,-9223372036854775808\r\n"
        );
        let floats = [
            1.5,
            1e16,
            1e-5,
            0.0001,
            1e15,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            123.0,
            0.1 + 0.2,
            1.5e-300,
            1e100,
        ];
        assert_eq!(
            row(&floats.map(Field::Float)),
            "1.5,1e+16,1e-05,0.0001,1000000000000000.0,-0.0,nan,inf,123.0,\
             0.30000000000000004,1.5e-300,1e+100\r\n"
        );
        let floats = [
            5e-324,
            f64::MAX,
            0.1,
            1.0 / 3.0,
            123456789.123,
            -1.5e-7,
            2.5e15,
            9007199254740993.0,
            1e22,
            12345678901234567890.0,
            -1e-4,
            100.0,
            1e-4 * 3.0,
            f64::NEG_INFINITY,
            0.0,
            // Exact ties between two shortest spellings: -835794455749402.25, 204300847914537.625.
            -6_686_355_645_995_218.0 / 8.0,
            1_634_406_783_316_301.0 / 8.0,
        ];
        assert_eq!(
            row(&floats.map(Field::Float)),
            "5e-324,1.7976931348623157e+308,0.1,0.3333333333333333,123456789.123,-1.5e-07,\
             2500000000000000.0,9007199254740992.0,1e+22,1.2345678901234567e+19,-0.0001,100.0,\
             0.00030000000000000003,-inf,0.0,-835794455749402.2,204300847914537.62\r\n"
        );
    }

    #[test]
    fn rows_append_to_what_is_already_written() {
        let mut out = b"id,name\r\n".to_vec();
        write_row(&mut out, &[7.into(), "Ada, Countess".into()]);
        assert_eq!(out, b"id,name\r\n7,\"Ada, Countess\"\r\n");
    }
}
