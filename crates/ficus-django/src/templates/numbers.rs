//! Numbers as Django's filters read and write them: Python's `int()` and `float()` of a value,
//! `floatformat` (decimal arithmetic with `ROUND_HALF_UP`) and `filesizeformat`.
//!
//! `floatformat` works on the decimal digits Python prints for the value (`str(0.1)` is
//! `0.1`, not the binary fraction), so it is done here on digit strings, never on `f64`.
//! What must not be here: escaping, or grouping other than the `en` locale's.

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};

use super::pyfmt::{float_of, float_repr, py_str};
use super::text::is_py_space;

/// Python's `int(value)`: `Ok(None)` where Python raises `ValueError` (text that is no
/// integer, which the filters answer with their input), an error where it raises `TypeError`.
pub(super) fn py_int(value: &Value) -> Result<Option<i128>, Error> {
    if let Some(x) = float_of(value) {
        return if x.is_finite() {
            Ok(Some(x.trunc() as i128))
        } else if x.is_nan() {
            Ok(None)
        } else {
            Err(Error::new(
                ErrorKind::InvalidOperation,
                "cannot convert float infinity to integer",
            ))
        };
    }
    match value.kind() {
        ValueKind::Number => Ok(i128::try_from(value.clone()).ok()),
        ValueKind::Bool => Ok(Some(i128::from(value.is_true()))),
        ValueKind::String | ValueKind::Undefined => Ok(parse_int(&py_str(value))),
        kind => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("int() argument must be a string or a number, not {kind}"),
        )),
    }
}

/// `int(text)`: optional sign, digits with single underscores between them, white space around.
fn parse_int(text: &str) -> Option<i128> {
    let digits = python_digits(text.trim_matches(is_py_space))?;
    if digits.contains(['.', 'e', 'E']) {
        return None;
    }
    digits.parse().ok()
}

/// The text without the underscores Python allows between digits, or `None` when one is
/// misplaced.
fn python_digits(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (at, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let between = at > 0
                && bytes[at - 1].is_ascii_digit()
                && bytes.get(at + 1).is_some_and(u8::is_ascii_digit);
            if !between {
                return None;
            }
        }
    }
    Some(text.replace('_', ""))
}

/// Why Python's `float(value)` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotFloat {
    /// `ValueError`: text that is no number.
    Value,
    /// `TypeError`: not a number or text at all.
    Type,
}

/// Python's `float(value)`.
pub(super) fn py_float(value: &Value) -> Result<f64, NotFloat> {
    match value.kind() {
        ValueKind::Number => f64::try_from(value.clone()).map_err(|_| NotFloat::Value),
        ValueKind::Bool => Ok(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::String | ValueKind::Undefined => {
            let text = py_str(value);
            let digits = python_digits(text.trim_matches(is_py_space)).ok_or(NotFloat::Value)?;
            digits.parse().map_err(|_| NotFloat::Value)
        }
        _ => Err(NotFloat::Type),
    }
}

/// The most decimal places `floatformat` writes.
const MAX_PLACES: u128 = 1000;

/// A finite Python `Decimal`: sign, coefficient digits (no leading zeros) and exponent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

/// What `Decimal(text)` makes of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Parsed {
    Finite(Decimal),
    /// Infinity or NaN, which `floatformat` gives back as they were.
    Special,
}

fn parse_decimal(text: &str) -> Option<Parsed> {
    let text = text.trim_matches(is_py_space);
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let is_nan = |prefix: &str| {
        lower
            .strip_prefix(prefix)
            .is_some_and(|payload| payload.bytes().all(|b| b.is_ascii_digit()))
    };
    if lower == "inf" || lower == "infinity" || is_nan("nan") || is_nan("snan") {
        return Some(Parsed::Special);
    }
    let body = python_digits(body)?;
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], body[at + 1..].parse::<i64>().ok()?),
        None => (body.as_str(), 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return None;
    }
    let mut digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    strip_leading_zeros(&mut digits);
    Some(Parsed::Finite(Decimal {
        negative,
        digits,
        exponent: exponent.checked_sub(frac_part.len() as i64)?,
    }))
}

impl Decimal {
    /// Whether `int(d) - d` is not zero.
    fn has_fraction(&self) -> bool {
        let fraction_len = usize::try_from(-self.exponent).unwrap_or(0);
        self.digits.iter().rev().take(fraction_len).any(|&d| d != 0)
    }

    /// `"%d" % int(d)`.
    fn integer_text(&self) -> String {
        let kept = self.digits.len() as i64 + self.exponent.min(0);
        let mut text: String = self
            .digits
            .iter()
            .take(kept.max(0) as usize)
            .map(|d| char::from(b'0' + d))
            .collect();
        if self.exponent > 0 {
            text.push_str(&"0".repeat(self.exponent as usize));
        }
        let text = text.trim_start_matches('0');
        match (text.is_empty(), self.negative) {
            (true, _) => "0".to_owned(),
            (false, true) => format!("-{text}"),
            (false, false) => text.to_owned(),
        }
    }

    /// `d.quantize(Decimal(1).scaleb(target), ROUND_HALF_UP)`.
    fn quantize(&self, target: i64) -> Decimal {
        let mut digits = self.digits.clone();
        if self.exponent >= target {
            digits.extend(std::iter::repeat_n(0, (self.exponent - target) as usize));
        } else {
            let dropped = (target - self.exponent) as usize;
            if digits.len() <= dropped {
                let pad = dropped + 1 - digits.len();
                digits.splice(0..0, std::iter::repeat_n(0, pad));
            }
            let round_up = digits[digits.len() - dropped] >= 5;
            digits.truncate(digits.len() - dropped);
            if round_up {
                let mut at = digits.len();
                loop {
                    if at == 0 {
                        digits.insert(0, 1);
                        break;
                    }
                    at -= 1;
                    if digits[at] == 9 {
                        digits[at] = 0;
                    } else {
                        digits[at] += 1;
                        break;
                    }
                }
            }
        }
        strip_leading_zeros(&mut digits);
        Decimal {
            negative: self.negative,
            digits,
            exponent: target,
        }
    }

    fn is_zero(&self) -> bool {
        self.digits.iter().all(|&d| d == 0)
    }
}

/// The `floatformat` filter.
pub(super) fn floatformat(text: &Value, arg: Option<&Value>) -> Result<Value, Error> {
    let input_val = py_str(text);
    let as_is = || {
        if text.is_safe() {
            Value::from_safe_string(input_val.clone())
        } else {
            Value::from(input_val.clone())
        }
    };
    let mut force_grouping = false;
    let places = match arg {
        Some(arg) if arg.kind() == ValueKind::String => {
            let arg = py_str(arg);
            let stripped = if arg.ends_with("gu") || arg.ends_with("ug") {
                // Unlocalized grouping takes settings.NUMBER_GROUPING, 0 by default: none.
                &arg[..arg.len() - 2]
            } else if arg.ends_with('g') {
                force_grouping = true;
                &arg[..arg.len() - 1]
            } else if arg.ends_with('u') {
                &arg[..arg.len() - 1]
            } else if arg.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "floatformat argument is empty",
                ));
            } else {
                &arg
            };
            if stripped.is_empty() {
                Some(-1)
            } else {
                parse_int(stripped)
            }
        }
        Some(arg) => py_int(arg)?,
        None => Some(-1),
    };
    let parsed = match parse_decimal(&input_val) {
        Some(parsed) => parsed,
        None => match py_float(text) {
            Ok(x) => match parse_decimal(&float_repr(x)) {
                Some(parsed) => parsed,
                None => return Ok(Value::from("")),
            },
            Err(_) => return Ok(Value::from("")),
        },
    };
    let Some(places) = places else {
        return Ok(as_is());
    };
    let Parsed::Finite(d) = parsed else {
        return Ok(as_is());
    };
    // Django's guard against huge inputs: more than 200 digits come back as they were.
    if d.digits.len() as u64 + d.exponent.unsigned_abs() > 200 {
        return Ok(as_is());
    }
    if !d.has_fraction() && places <= 0 {
        return Ok(Value::from_safe_string(number_format(
            &d.integer_text(),
            0,
            force_grouping,
        )));
    }
    let decimal_pos = places.unsigned_abs();
    // Python would build the number however long; a page asking for more is refused instead.
    if decimal_pos > MAX_PLACES {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("floatformat: more than {MAX_PLACES} decimal places"),
        ));
    }
    let rounded = d.quantize(-(decimal_pos as i64));
    let mut reversed: Vec<char> = rounded
        .digits
        .iter()
        .rev()
        .map(|d| char::from(b'0' + d))
        .collect();
    let point = decimal_pos as usize;
    while reversed.len() <= point {
        reversed.push('0');
    }
    reversed.insert(point, '.');
    if rounded.negative && !rounded.is_zero() {
        reversed.push('-');
    }
    let number: String = reversed.into_iter().rev().collect();
    Ok(Value::from_safe_string(number_format(
        &number,
        decimal_pos as usize,
        force_grouping,
    )))
}

/// `numberformat.format` of a number already written out: the decimals cut or padded to
/// `decimal_pos`, the integer part grouped by threes with `,` when asked.
fn number_format(number: &str, decimal_pos: usize, grouping: bool) -> String {
    let (sign, number) = match number.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", number),
    };
    let (int_part, dec_part) = number.split_once('.').unwrap_or((number, ""));
    let mut dec_part: String = dec_part.chars().take(decimal_pos).collect();
    while dec_part.len() < decimal_pos {
        dec_part.push('0');
    }
    let int_part = if grouping {
        let digits: Vec<char> = int_part.chars().collect();
        let groups: Vec<String> = digits
            .rchunks(3)
            .rev()
            .map(|chunk| chunk.iter().collect())
            .collect();
        groups.join(",")
    } else {
        int_part.to_owned()
    };
    if dec_part.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{dec_part}")
    }
}

/// The `filesizeformat` filter: `13\u{a0}KB`, `1\u{a0}byte`, one decimal from a KiB up.
pub(super) fn filesizeformat(value: &Value) -> Result<Value, Error> {
    let zero = || Ok(Value::from("0\u{a0}bytes"));
    let bytes = match value.kind() {
        ValueKind::Number | ValueKind::Bool | ValueKind::String | ValueKind::Undefined => {
            match py_int(value)? {
                Some(bytes) => bytes,
                None => return zero(),
            }
        }
        _ => return zero(),
    };
    let negative = bytes < 0;
    let bytes = bytes.unsigned_abs();
    let units = [
        (1u128 << 50, "PB"),
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
    ];
    let text = match units.iter().find(|(size, _)| bytes >= *size) {
        None if bytes == 1 => "1\u{a0}byte".to_owned(),
        None => format!("{bytes}\u{a0}bytes"),
        Some((size, unit)) => format!("{:.1}\u{a0}{unit}", bytes as f64 / *size as f64),
    };
    Ok(Value::from(if negative {
        format!("-{text}")
    } else {
        text
    }))
}

/// Drops leading zero digits, keeping one digit at least.
fn strip_leading_zeros(digits: &mut Vec<u8>) {
    let leading = digits
        .iter()
        .take_while(|&&d| d == 0)
        .count()
        .min(digits.len().saturating_sub(1));
    digits.drain(..leading);
}

#[cfg(test)]
mod tests {
    //! The expected strings are Django 5.2's `{{ v|floatformat:arg }}` and
    //! `{{ v|filesizeformat }}` output for the same values.

    use super::*;

    fn ff(value: Value, arg: Option<Value>) -> String {
        match floatformat(&value, arg.as_ref()) {
            Ok(value) => value.to_string(),
            Err(err) => format!("ERR {err}"),
        }
    }

    #[test]
    fn floatformat_default_shows_one_place_only_when_needed() {
        assert_eq!(ff(Value::from(34.23234), None), "34.2");
        assert_eq!(ff(Value::from(34.0), None), "34");
        assert_eq!(ff(Value::from(34.26), None), "34.3");
        assert_eq!(ff(Value::from(34.0001), None), "34.0");
        assert_eq!(ff(Value::from(-0.04), None), "0.0");
        assert_eq!(ff(Value::from(7), None), "7");
    }

    #[test]
    fn floatformat_places_round_half_up_on_decimal_digits() {
        assert_eq!(ff(Value::from(34.23234), Some(Value::from(3))), "34.232");
        assert_eq!(ff(Value::from(34.0), Some(Value::from(3))), "34.000");
        assert_eq!(ff(Value::from(34.26), Some(Value::from("-3"))), "34.260");
        assert_eq!(ff(Value::from(34.0), Some(Value::from("-3"))), "34");
        assert_eq!(ff(Value::from(2.675), Some(Value::from(2))), "2.68");
        assert_eq!(ff(Value::from(-34.5), Some(Value::from(0))), "-35");
        assert_eq!(ff(Value::from(-0.4), Some(Value::from(0))), "0");
        assert_eq!(ff(Value::from(0.0005), Some(Value::from(2))), "0.00");
        assert_eq!(ff(Value::from(9.999), Some(Value::from(2))), "10.00");
        assert_eq!(ff(Value::from("1e3"), Some(Value::from(2))), "1000.00");
    }

    #[test]
    fn floatformat_grouping_and_odd_input() {
        assert_eq!(
            ff(Value::from(6666.6666), Some(Value::from("2g"))),
            "6,666.67"
        );
        assert_eq!(ff(Value::from(10000), Some(Value::from("g"))), "10,000");
        assert_eq!(
            ff(Value::from(-1234567.891), Some(Value::from("1gu"))),
            "-1234567.9"
        );
        assert_eq!(ff(Value::from("abc"), None), "");
        assert_eq!(ff(Value::from(()), None), "");
        assert_eq!(ff(Value::from(true), None), "1");
        assert_eq!(ff(Value::from(f64::INFINITY), None), "inf");
        assert_eq!(ff(Value::from(1.5), Some(Value::from("x"))), "1.5");
    }

    fn size(value: Value) -> String {
        filesizeformat(&value)
            .map(|v| v.to_string())
            .unwrap_or_else(|err| format!("ERR {err}"))
    }

    #[test]
    fn filesizeformat_uses_binary_units_and_non_breaking_spaces() {
        assert_eq!(size(Value::from(0)), "0\u{a0}bytes");
        assert_eq!(size(Value::from(1)), "1\u{a0}byte");
        assert_eq!(size(Value::from(1023)), "1023\u{a0}bytes");
        assert_eq!(size(Value::from(1024)), "1.0\u{a0}KB");
        assert_eq!(
            size(Value::from(10 * 1024 * 1024 + 512 * 1024)),
            "10.5\u{a0}MB"
        );
        assert_eq!(size(Value::from(1_u64 << 50)), "1.0\u{a0}PB");
        assert_eq!(size(Value::from(-2048)), "-2.0\u{a0}KB");
        assert_eq!(size(Value::from("2048")), "2.0\u{a0}KB");
        assert_eq!(size(Value::from("big")), "0\u{a0}bytes");
        assert_eq!(size(Value::from(())), "0\u{a0}bytes");
    }
}
