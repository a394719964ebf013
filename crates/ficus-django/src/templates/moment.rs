//! The date, time and datetime values templates hold, and the strings taken as them.
//!
//! Django formats `datetime.date`, `datetime.time` and naive or aware `datetime.datetime`
//! objects; a handler gives those either through the `*_value` functions (an object that also
//! prints and compares as Python's would) or as ISO-8601 strings, which is what serde makes of
//! chrono values and what databases return. What must not be here: formatting (that is
//! `dateformat.rs`) or time zone conversion.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Timelike,
};
use minijinja::Value;
use minijinja::value::{DynObject, Object, ObjectRepr};

/// One of the four kinds of value Django's date filters accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Moment {
    /// A `datetime.date`.
    Date(NaiveDate),
    /// A `datetime.time` (without a time zone).
    Time(NaiveTime),
    /// A naive `datetime.datetime`.
    Naive(NaiveDateTime),
    /// An aware `datetime.datetime`, with the offset it was given in.
    Aware(DateTime<FixedOffset>),
}

/// Turns a chrono `DateTime` into the template value of an aware Python datetime.
///
/// The value keeps the instant and its UTC offset (not the zone's name); `{{ v }}` prints it as
/// Django prints an aware datetime (converted to `TIME_ZONE` when `USE_TZ`), the date filters
/// format it, and two such values compare by instant. ISO-8601 strings with an offset
/// (`2024-01-01T12:00:00+00:00`, `...Z`) are accepted by the same filters.
pub fn datetime_value<Tz: TimeZone>(value: &DateTime<Tz>) -> Value {
    Moment::Aware(value.fixed_offset()).into_value()
}

/// Turns a chrono `NaiveDateTime` into the template value of a naive Python datetime, which
/// Django takes to be in `TIME_ZONE`. Strings such as `2024-01-01 12:00:00` are accepted too.
pub fn naive_datetime_value(value: &NaiveDateTime) -> Value {
    Moment::Naive(*value).into_value()
}

/// Turns a chrono `NaiveDate` into the template value of a Python `date` (`2024-01-01` strings
/// are accepted too).
pub fn date_value(value: &NaiveDate) -> Value {
    Moment::Date(*value).into_value()
}

/// Turns a chrono `NaiveTime` into the template value of a Python `time` (`14:30:00` strings
/// are accepted too).
pub fn time_value(value: &NaiveTime) -> Value {
    Moment::Time(*value).into_value()
}

impl Moment {
    fn into_value(self) -> Value {
        Value::from_object(MomentObject(self))
    }

    /// The moment a template value stands for: one of ours, or a string of ISO-8601 form.
    pub(super) fn from_value(value: &Value) -> Option<Moment> {
        Moment::from_object(value).or_else(|| value.as_str().and_then(parse))
    }

    /// The moment only when the value is one of our objects (strings print as strings).
    pub(super) fn from_object(value: &Value) -> Option<Moment> {
        value
            .downcast_object_ref::<MomentObject>()
            .map(|object| object.0)
    }

    /// An order over all moments: by kind first, then by instant or wall time.
    fn sort_key(&self) -> (u8, NaiveDateTime) {
        match *self {
            Moment::Date(date) => (0, date.and_time(NaiveTime::MIN)),
            Moment::Time(time) => (1, NaiveDate::MIN.and_time(time)),
            Moment::Naive(naive) => (2, naive),
            Moment::Aware(aware) => (3, aware.naive_utc()),
        }
    }
}

/// Python's `str()` of the value: `2024-01-01 12:00:00+00:00`, `2024-01-01`, `14:30:00`.
impl fmt::Display for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Moment::Date(date) => write_date(f, *date),
            Moment::Time(time) => write_time(f, *time),
            Moment::Naive(naive) => {
                write_date(f, naive.date())?;
                f.write_str(" ")?;
                write_time(f, naive.time())
            }
            Moment::Aware(aware) => {
                let wall = local_wall(aware).unwrap_or(aware.naive_utc());
                write_date(f, wall.date())?;
                f.write_str(" ")?;
                write_time(f, wall.time())?;
                f.write_str(&iso_offset(aware.offset().local_minus_utc()))
            }
        }
    }
}

fn write_date(f: &mut fmt::Formatter<'_>, date: NaiveDate) -> fmt::Result {
    write!(
        f,
        "{:04}-{:02}-{:02}",
        date.year(),
        date.month(),
        date.day()
    )
}

fn write_time(f: &mut fmt::Formatter<'_>, time: NaiveTime) -> fmt::Result {
    write!(
        f,
        "{:02}:{:02}:{:02}",
        time.hour(),
        time.minute(),
        time.second()
    )?;
    match microsecond(time) {
        0 => Ok(()),
        micro => write!(f, ".{micro:06}"),
    }
}

/// The wall time of an aware value, or `None` where chrono's range ends (chrono's own
/// `naive_local` panics there; Python's datetimes never get so far).
pub(super) fn local_wall<T: TimeZone>(value: &DateTime<T>) -> Option<NaiveDateTime> {
    value.naive_utc().checked_add_offset(value.offset().fix())
}

/// Python's microseconds; a chrono leap second (nanoseconds past 1e9) is folded back.
pub(super) fn microsecond(time: NaiveTime) -> u32 {
    (time.nanosecond() % 1_000_000_000) / 1000
}

/// An offset as `isoformat` writes it: `+02:00`, or `+05:30:15` when it has seconds.
pub(super) fn iso_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let seconds = seconds.unsigned_abs();
    let (hours, minutes, rest) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if rest == 0 {
        format!("{sign}{hours:02}:{minutes:02}")
    } else {
        format!("{sign}{hours:02}:{minutes:02}:{rest:02}")
    }
}

/// The template object behind the `*_value` functions.
#[derive(Debug)]
struct MomentObject(Moment);

impl Object for MomentObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    /// The attributes a Django template reads off a date or time (`{{ d.year }}`).
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (date, time) = match self.0 {
            Moment::Date(date) => (Some(date), None),
            Moment::Time(time) => (None, Some(time)),
            Moment::Naive(naive) => (Some(naive.date()), Some(naive.time())),
            Moment::Aware(aware) => {
                let wall = local_wall(&aware)?;
                (Some(wall.date()), Some(wall.time()))
            }
        };
        let number = match key.as_str()? {
            "year" => date?.year(),
            "month" => date?.month() as i32,
            "day" => date?.day() as i32,
            "hour" => time?.hour() as i32,
            "minute" => time?.minute() as i32,
            "second" => time?.second() as i32,
            "microsecond" => microsecond(time?) as i32,
            _ => return None,
        };
        Some(Value::from(number))
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some(self.0.sort_key().cmp(&other.0.sort_key()))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Reads `YYYY-MM-DD`, `HH:MM[:SS[.ffffff]]`, or the two joined by `T` or a space, with an
/// optional `Z`, `±HH:MM`, `±HHMM` or `±HH` offset, as Python's `fromisoformat` reads them.
pub(super) fn parse(text: &str) -> Option<Moment> {
    let text = text.trim();
    if text.len() == 10 {
        return parse_date(text).map(Moment::Date);
    }
    if text.as_bytes().get(2) == Some(&b':') {
        return parse_time(text).map(Moment::Time);
    }
    let date = parse_date(text.get(..10)?)?;
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let rest = text.get(11..)?;
    let zone_at = rest.find(['Z', 'z', '+', '-']);
    let (clock, zone) = match zone_at {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    };
    let naive = date.and_time(parse_time(clock)?);
    match zone {
        None => Some(Moment::Naive(naive)),
        Some(zone) => {
            let offset = FixedOffset::east_opt(parse_offset(zone)?)?;
            offset
                .from_local_datetime(&naive)
                .single()
                .map(Moment::Aware)
        }
    }
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(
        digits(&text[..4])? as i32,
        digits(&text[5..7])?,
        digits(&text[8..])?,
    )
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    let (clock, fraction) = match text.split_once(['.', ',']) {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (text, None),
    };
    let mut parts = clock.split(':');
    let hour = two_digits(parts.next()?)?;
    let minute = two_digits(parts.next()?)?;
    let second = match parts.next() {
        Some(second) => two_digits(second)?,
        None if fraction.is_none() => 0,
        None => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    let micro = match fraction {
        None => 0,
        Some(fraction) if !fraction.is_empty() && fraction.len() <= 9 => {
            let six: String = fraction.chars().chain("000000".chars()).take(6).collect();
            digits(fraction)?;
            digits(&six)?
        }
        Some(_) => return None,
    };
    NaiveTime::from_hms_micro_opt(hour, minute, second, micro)
}

/// The offset in seconds east of UTC.
fn parse_offset(zone: &str) -> Option<i32> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes, seconds) = match body.len() {
        2 => (digits(&body)?, 0, 0),
        4 => (digits(&body[..2])?, digits(&body[2..])?, 0),
        6 => (
            digits(&body[..2])?,
            digits(&body[2..4])?,
            digits(&body[4..])?,
        ),
        _ => return None,
    };
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60 + seconds) as i32)
}

fn two_digits(text: &str) -> Option<u32> {
    if text.len() == 2 { digits(text) } else { None }
}

fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    //! The printed forms expected are Python 3.11's `str()` of the same `date`, `time` and
    //! `datetime` objects, which is what Django's string filters start from.

    use super::*;

    fn naive(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|date| date.and_hms_opt(h, min, s))
            .unwrap_or_default()
    }

    #[test]
    fn iso_strings_parse_to_their_kind() {
        let noon = naive(2024, 1, 1, 12, 0, 0);
        assert_eq!(
            parse("2024-01-01").map(|m| m.to_string()).as_deref(),
            Some("2024-01-01")
        );
        assert_eq!(parse("2024-01-01 12:00:00"), Some(Moment::Naive(noon)));
        assert_eq!(parse("2024-01-01T12:00"), Some(Moment::Naive(noon)));
        let aware = parse("2024-01-01T14:00:00+02:00");
        assert_eq!(
            aware.map(|m| m.to_string()).as_deref(),
            Some("2024-01-01 14:00:00+02:00")
        );
        assert_eq!(
            parse("2024-01-01T12:00:00Z").map(|m| m.sort_key()),
            Some((3, noon))
        );
        assert_eq!(
            parse("2024-01-01T12:00:00.5-0530")
                .map(|m| m.to_string())
                .as_deref(),
            Some("2024-01-01 12:00:00.500000-05:30")
        );
        assert_eq!(
            parse("14:30").map(|m| m.to_string()).as_deref(),
            Some("14:30:00")
        );
    }

    #[test]
    fn other_strings_are_not_moments() {
        for text in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-01-01X12:00",
            "12:3",
            "2024-01-01T12:00+99",
            "2024-01-01T12:00+1é1",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
