//! Template values written as Python writes them: `str()`, `repr()`, and Django's `localize`.
//!
//! A Django template sees Python objects, so `{{ v }}` and every string filter start from
//! Python's text of the value (`None`, `True`, `1.0`, `['a']`), not minijinja's (`none`,
//! `true`, `1`, `["a"]`). What must not be here: escaping, or any filter's own logic.

use minijinja::Value;
use minijinja::value::ValueKind;

use super::Options;
use super::moment::Moment;

/// What `{{ value }}` shows before escaping: `localize(template_localtime(value))`, then `str()`.
pub(super) fn localize(value: &Value, opts: &Options) -> String {
    if let Some(moment) = Moment::from_object(value) {
        return super::dateformat::localized(moment, opts);
    }
    match float_of(value) {
        Some(x) => localized_float(x),
        None => py_str(value),
    }
}

/// Python's `str(value)`; undefined is `""`, Django's `string_if_invalid`.
pub(super) fn py_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => value.as_str().unwrap_or_default().to_owned(),
        _ => py_repr(value),
    }
}

/// Python's `repr(value)`, which is also its `str()` for everything but strings.
pub(super) fn py_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

fn write_repr(out: &mut String, value: &Value) {
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => match float_of(value) {
            Some(x) => out.push_str(&float_repr(x)),
            None => out.push_str(&value.to_string()),
        },
        ValueKind::String => write_str_repr(out, value.as_str().unwrap_or_default()),
        ValueKind::Bytes => {
            out.push('b');
            let text: String = value
                .as_bytes()
                .unwrap_or_default()
                .iter()
                .map(|&b| char::from(b))
                .collect();
            write_str_repr(out, &text);
        }
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, item) in value.try_iter().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, &item);
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in value.try_iter().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, &key);
                out.push_str(": ");
                write_repr(out, &value.get_item(&key).unwrap_or_default());
            }
            out.push('}');
        }
        _ => out.push_str(&value.to_string()),
    }
}

/// Python's quoting: single quotes unless the text has one and no double quote.
fn write_str_repr(out: &mut String, text: &str) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let code = u32::from(c);
                if code < 0x100 {
                    out.push_str(&format!("\\x{code:02x}"));
                } else if code < 0x10000 {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// An approximation of `str.isprintable`: controls, separators other than the space, and the
/// common invisible format characters are not.
fn printable(c: char) -> bool {
    !(c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

/// The value as a float when minijinja holds it as one (not for integers, which stay exact).
pub(super) fn float_of(value: &Value) -> Option<f64> {
    if value.is_number() && !value.is_integer() {
        f64::try_from(value.clone()).ok()
    } else {
        None
    }
}

/// Python's `repr(float)`: the shortest digits that read back, in positional notation when
/// the exponent is in -4..16 (with `.0` on whole numbers) and as `1.5e+16` otherwise.
pub(super) fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sci = format!("{x:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else {
            let point = point as usize;
            if digits.len() > point {
                format!("{}.{}", &digits[..point], &digits[point..])
            } else {
                format!("{digits}{}.0", "0".repeat(point - digits.len()))
            }
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{fraction}e{exp_sign}{:02}",
            exponent.unsigned_abs()
        )
    }
}

/// Django's `localize(float)`: `repr`, except that what Python would write with an exponent is
/// written out positionally, since `numberformat` turns it into a `Decimal` and formats `{:f}`.
pub(super) fn localized_float(x: f64) -> String {
    let repr = float_repr(x);
    if repr.contains('e') {
        // Rust writes the same shortest digits positionally, without a trailing `.0`.
        format!("{x}")
    } else {
        repr
    }
}

#[cfg(test)]
mod tests {
    //! Expectations are Python 3.11's `repr()` and Django 5.2's template output.

    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (123.456, "123.456"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn localized_float_writes_exponents_out() {
        assert_eq!(localized_float(1e20), "100000000000000000000");
        assert_eq!(localized_float(1.5e-7), "0.00000015");
        assert_eq!(localized_float(1e16), "10000000000000000");
        assert_eq!(localized_float(2.5), "2.5");
    }

    #[test]
    fn str_repr_picks_quotes_as_python() {
        assert_eq!(py_repr(&Value::from("it's")), "\"it's\"");
        assert_eq!(py_repr(&Value::from("a'b\"c")), "'a\\'b\"c'");
        assert_eq!(
            py_repr(&Value::from("tab\there\u{a0}")),
            "'tab\\there\\xa0'"
        );
        assert_eq!(py_str(&Value::from("plain")), "plain");
    }
}
