//! `django.utils.dateformat`: the PHP-style format characters of the `date` and `time` filters.
//!
//! Dates are formatted as Django formats them under `LANGUAGE_CODE = "en-us"`: English names,
//! `a.m.`/`p.m.`, `midnight` and `noon`, and the `en` locale's named formats (`DATE_FORMAT`,
//! `SHORT_DATE_FORMAT`, ...). An aware value is first converted to `TIME_ZONE` when `USE_TZ` is
//! set (`template_localtime`); a naive one is taken to be in `TIME_ZONE`, as Django takes it.
//! What must not be here: parsing values (`moment.rs`) or other locales.

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike,
};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

use super::Options;
use super::moment::{Moment, iso_offset, local_wall, microsecond};

/// Every character `re_formatchars` treats as a format specifier.
const SPECIFIERS: &str = "aAbcdDeEfFgGhHiIjlLmMnNoOPrsStTUuwWyYzZ";
/// The specifiers `TimeFormat` has, which a `date` may not use.
const TIME_SPECIFIERS: &str = "aAefgGhHiOPsTuZ";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_3: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const MONTHS_AP: [&str; 12] = [
    "Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.",
    "Dec.",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const WEEKDAYS_ABBR: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Why Django would not format the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// The `TypeError` Django raises for a time specifier on a `date`; it escapes the `date`
    /// filter, so the page fails to render.
    TimeOnDate(char),
    /// The `AttributeError` of a specifier the value has no field for; the filters give `""`.
    Unsupported,
}

/// `settings`/locale formats that `get_format` resolves by name, as the `en` locale sets them.
pub(super) fn named_format(name: &str) -> &str {
    match name {
        "DATE_FORMAT" => "N j, Y",
        "TIME_FORMAT" => "P",
        "DATETIME_FORMAT" => "N j, Y, P",
        "YEAR_MONTH_FORMAT" => "F Y",
        "MONTH_DAY_FORMAT" => "F j",
        "SHORT_DATE_FORMAT" => "m/d/Y",
        "SHORT_DATETIME_FORMAT" => "m/d/Y P",
        "FIRST_DAY_OF_WEEK" => "0",
        "DECIMAL_SEPARATOR" => ".",
        "THOUSAND_SEPARATOR" => ",",
        "NUMBER_GROUPING" => "3",
        other => other,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Date,
    Time,
    DateTime,
}

/// `TimeFormat.timezone`: what `O`, `T`, `Z`, `I` and `e` report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Zone {
    offset: i32,
    name: String,
    dst: bool,
}

/// A value as `DateFormat` sees it, after `template_localtime`.
#[derive(Debug, Clone)]
pub(super) struct Subject {
    kind: Kind,
    wall: NaiveDateTime,
    /// The UTC offset of an aware datetime, in seconds.
    aware_offset: Option<i32>,
    /// `None` for dates and times, and for datetimes ambiguous or imaginary in their zone.
    zone: Option<Zone>,
    default_tz: Tz,
}

impl Subject {
    /// The value the `date` and `time` filters (`expects_localtime`) and `{{ v }}` format;
    /// `None` for an aware value whose wall time is past chrono's range.
    pub(super) fn new(moment: Moment, opts: &Options) -> Option<Subject> {
        let default_tz = opts.time_zone;
        let subject = |kind, wall, aware_offset, zone| {
            Some(Subject {
                kind,
                wall,
                aware_offset,
                zone,
                default_tz,
            })
        };
        match moment {
            Moment::Date(date) => subject(
                Kind::Date,
                date.and_time(chrono::NaiveTime::MIN),
                None,
                None,
            ),
            Moment::Time(time) => subject(Kind::Time, NaiveDate::MIN.and_time(time), None, None),
            Moment::Naive(wall) => {
                let zone = default_tz
                    .from_local_datetime(&wall)
                    .single()
                    .map(|local| zone_of(&local));
                subject(Kind::DateTime, wall, None, zone)
            }
            Moment::Aware(aware) if opts.use_tz => {
                let local = aware.with_timezone(&default_tz);
                let wall = local_wall(&local)?;
                let unambiguous = default_tz.from_local_datetime(&wall).single().is_some();
                let zone = unambiguous.then(|| zone_of(&local));
                subject(
                    Kind::DateTime,
                    wall,
                    Some(local.offset().fix().local_minus_utc()),
                    zone,
                )
            }
            Moment::Aware(aware) => {
                let offset = aware.offset().local_minus_utc();
                let zone = Zone {
                    offset,
                    name: fixed_offset_name(offset),
                    dst: false,
                };
                subject(
                    Kind::DateTime,
                    local_wall(&aware)?,
                    Some(offset),
                    Some(zone),
                )
            }
        }
    }

    /// The offset `r` and `U` use: the value's own, or for naive values and dates the one
    /// `TIME_ZONE` has at that wall time with `fold=0` (the earlier of two, the one before a gap).
    fn effective_offset(&self) -> i32 {
        if let Some(offset) = self.aware_offset {
            return offset;
        }
        let tz = self.default_tz;
        match tz.offset_from_local_datetime(&self.wall).earliest() {
            Some(offset) => offset.fix().local_minus_utc(),
            None => {
                let before = self
                    .wall
                    .checked_sub_days(Days::new(1))
                    .unwrap_or(self.wall);
                tz.offset_from_utc_datetime(&before).fix().local_minus_utc()
            }
        }
    }
}

fn zone_of(local: &DateTime<Tz>) -> Zone {
    let offset = local.offset();
    Zone {
        offset: offset.fix().local_minus_utc(),
        name: offset.abbreviation().unwrap_or_default().to_owned(),
        dst: offset.dst_offset() != TimeDelta::zero(),
    }
}

/// `datetime.timezone(offset).tzname()`: `UTC`, or `UTC+02:00`.
fn fixed_offset_name(offset: i32) -> String {
    if offset == 0 {
        "UTC".to_owned()
    } else {
        format!("UTC{}", iso_offset(offset))
    }
}

/// What `{{ value }}` prints for a date, time or datetime: `localize()` with the locale's
/// `DATETIME_FORMAT`, `DATE_FORMAT` or `TIME_FORMAT`.
pub(super) fn localized(moment: Moment, opts: &Options) -> String {
    let (name, time_only) = match moment {
        Moment::Date(_) => ("DATE_FORMAT", false),
        Moment::Time(_) => ("TIME_FORMAT", true),
        Moment::Naive(_) | Moment::Aware(_) => ("DATETIME_FORMAT", false),
    };
    format(
        Subject::new(moment, opts).as_ref(),
        named_format(name),
        time_only,
    )
    .unwrap_or_default()
}

/// `DateFormat(value).format(format)`, or `TimeFormat`'s when `time_only`. `subject` is `None`
/// for a value that is no date at all, which still formats a format without specifiers.
pub(super) fn format(
    subject: Option<&Subject>,
    format: &str,
    time_only: bool,
) -> Result<String, Failure> {
    let mut out = String::new();
    let mut literal = String::new();
    let mut after_backslash = false;
    for c in format.chars() {
        // `(?<!\\)` looks at the raw previous character, escaped or not.
        if !after_backslash && SPECIFIERS.contains(c) {
            push_unescaped(&mut out, &literal);
            literal.clear();
            out.push_str(&specifier(
                subject.ok_or(Failure::Unsupported)?,
                c,
                time_only,
            )?);
        } else {
            literal.push(c);
        }
        after_backslash = c == '\\';
    }
    push_unescaped(&mut out, &literal);
    Ok(out)
}

/// `re_escaped.sub(r"\1", piece)`: a backslash gives the next character, except a newline.
fn push_unescaped(out: &mut String, piece: &str) {
    let mut chars = piece.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(&next) if c == '\\' && next != '\n' => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
}

fn specifier(s: &Subject, c: char, time_only: bool) -> Result<String, Failure> {
    let is_time = TIME_SPECIFIERS.contains(c);
    if s.kind == Kind::Date && is_time {
        return Err(Failure::TimeOnDate(c));
    }
    if (time_only && !is_time) || (s.kind == Kind::Time && !is_time && !matches!(c, 'c' | 'I')) {
        return Err(Failure::Unsupported);
    }
    let (date, time) = (s.wall.date(), s.wall.time());
    let hour12 = match time.hour() % 12 {
        0 => 12,
        h => h,
    };
    let month = date.month0() as usize;
    let zone = s.zone.as_ref();
    Ok(match c {
        'a' => if time.hour() > 11 { "p.m." } else { "a.m." }.to_owned(),
        'A' => if time.hour() > 11 { "PM" } else { "AM" }.to_owned(),
        'e' => match zone {
            Some(zone) if s.aware_offset.is_some() => zone.name.clone(),
            _ => String::new(),
        },
        'f' => hour_minutes(hour12, time.minute()),
        'g' => hour12.to_string(),
        'G' => time.hour().to_string(),
        'h' => format!("{hour12:02}"),
        'H' => format!("{:02}", time.hour()),
        'i' => format!("{:02}", time.minute()),
        'O' => zone.map(|z| compact_offset(z.offset)).unwrap_or_default(),
        'P' => match (time.hour(), time.minute()) {
            (0, 0) => "midnight".to_owned(),
            (12, 0) => "noon".to_owned(),
            (hour, minute) => {
                let meridiem = if hour > 11 { "p.m." } else { "a.m." };
                format!("{} {meridiem}", hour_minutes(hour12, minute))
            }
        },
        's' => format!("{:02}", time.second()),
        'T' => zone.map(|z| z.name.clone()).unwrap_or_default(),
        'u' => format!("{:06}", microsecond(time)),
        'Z' => zone.map(|z| z.offset.to_string()).unwrap_or_default(),
        'b' => MONTHS_3[month].to_owned(),
        'c' => isoformat(s),
        'd' => format!("{:02}", date.day()),
        'D' => WEEKDAYS_ABBR[date.weekday().num_days_from_monday() as usize].to_owned(),
        'E' | 'F' => MONTHS[month].to_owned(),
        'I' => zone
            .map(|z| if z.dst { "1" } else { "0" }.to_owned())
            .unwrap_or_default(),
        'j' => date.day().to_string(),
        'l' => WEEKDAYS[date.weekday().num_days_from_monday() as usize].to_owned(),
        'L' => if is_leap(date.year()) {
            "True"
        } else {
            "False"
        }
        .to_owned(),
        'm' => format!("{:02}", date.month()),
        'M' => MONTHS[month][..3].to_owned(),
        'n' => date.month().to_string(),
        'N' => MONTHS_AP[month].to_owned(),
        'o' => date.iso_week().year().to_string(),
        'r' => rfc5322(s),
        'S' => ordinal_suffix(date.day()).to_owned(),
        't' => days_in_month(date).to_string(),
        'U' => (s.wall.and_utc().timestamp() - i64::from(s.effective_offset())).to_string(),
        'w' => date.weekday().num_days_from_sunday().to_string(),
        'W' => date.iso_week().week().to_string(),
        'y' => format!("{:02}", date.year().rem_euclid(100)),
        'Y' => format!("{:04}", date.year()),
        'z' => date.ordinal().to_string(),
        _ => return Err(Failure::Unsupported),
    })
}

/// `f`: `1`, `1:30`.
fn hour_minutes(hour12: u32, minute: u32) -> String {
    if minute == 0 {
        hour12.to_string()
    } else {
        format!("{hour12}:{minute:02}")
    }
}

/// `O` and `%z`: `+0200`, `-0430` (with seconds when the offset has them, as `%z` does).
fn compact_offset(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let seconds = offset.unsigned_abs();
    format!("{sign}{:02}{:02}", seconds / 3600, seconds / 60 % 60)
}

/// `isoformat()`: `2008-01-02T10:30:00.000123+02:00`, a date's `2008-01-02`, a time's `10:30:00`.
fn isoformat(s: &Subject) -> String {
    let time = s.wall.time();
    let mut clock = format!(
        "{:02}:{:02}:{:02}",
        time.hour(),
        time.minute(),
        time.second()
    );
    if microsecond(time) != 0 {
        clock.push_str(&format!(".{:06}", microsecond(time)));
    }
    let date = s.wall.date().format("%Y-%m-%d").to_string();
    match s.kind {
        Kind::Date => date,
        Kind::Time => clock,
        Kind::DateTime => {
            let offset = s.aware_offset.map(iso_offset).unwrap_or_default();
            format!("{date}T{clock}{offset}")
        }
    }
}

/// `email.utils.format_datetime`: `Thu, 21 Dec 2000 16:01:07 +0200`.
fn rfc5322(s: &Subject) -> String {
    let (date, time) = (s.wall.date(), s.wall.time());
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} {}",
        WEEKDAYS_ABBR[date.weekday().num_days_from_monday() as usize],
        date.day(),
        &MONTHS[date.month0() as usize][..3],
        date.year(),
        time.hour(),
        time.minute(),
        time.second(),
        compact_offset(s.effective_offset())
    )
}

fn ordinal_suffix(day: u32) -> &'static str {
    match (day, day % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    }
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(date: NaiveDate) -> u32 {
    match date.month() {
        2 if is_leap(date.year()) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    //! The expected strings are Django 5.2's `{{ d|date:"..." }}` output for the same values,
    //! with `TIME_ZONE` as named and the process `TZ` set to it (as Django's settings set it).

    use super::*;
    use crate::templates::moment::parse;

    fn opts(time_zone: Tz, use_tz: bool) -> Options {
        Options { time_zone, use_tz }
    }

    fn date(value: &str, fmt: &str, options: Options) -> Result<String, Failure> {
        let subject = parse(value).and_then(|m| Subject::new(m, &options));
        format(subject.as_ref(), fmt, false)
    }

    fn ok(value: &str, fmt: &str, options: Options) -> String {
        match date(value, fmt, options) {
            Ok(text) => text,
            Err(err) => panic!("{value} {fmt}: {err:?}"),
        }
    }

    const ALL: &str = "d D j l N S w z W m M b F E n y Y L o t|a A f g G h H i s u|P|c|r|U";

    #[test]
    fn every_specifier_matches_django() {
        let utc = opts(chrono_tz::UTC, true);
        assert_eq!(
            ok("2024-02-29T09:05:03.000120Z", ALL, utc),
            "29 Thu 29 Thursday Feb. th 4 60 9 02 Feb feb February February 2 24 2024 True 2024 29\
             |a.m. AM 9:05 9 9 09 09 05 03 000120|9:05 a.m.|2024-02-29T09:05:03.000120+00:00\
             |Thu, 29 Feb 2024 09:05:03 +0000|1709197503"
        );
        assert_eq!(
            ok("2021-01-03T23:00:00Z", ALL, utc),
            "03 Sun 3 Sunday Jan. rd 0 3 53 01 Jan jan January January 1 21 2021 False 2020 31\
             |p.m. PM 11 11 23 11 23 00 00 000000|11 p.m.|2021-01-03T23:00:00+00:00\
             |Sun, 03 Jan 2021 23:00:00 +0000|1609714800"
        );
    }

    #[test]
    fn midnight_noon_and_ordinals() {
        let utc = opts(chrono_tz::UTC, true);
        assert_eq!(ok("2024-09-11T00:00:00Z", "P jS", utc), "midnight 11th");
        assert_eq!(ok("2024-09-22T12:00:00Z", "P jS", utc), "noon 22nd");
        assert_eq!(
            ok("2024-09-01T12:30:00Z", "P jS f", utc),
            "12:30 p.m. 1st 12:30"
        );
    }

    #[test]
    fn backslash_escapes_a_specifier() {
        let utc = opts(chrono_tz::UTC, true);
        assert_eq!(
            ok("2024-01-05T10:00:00Z", "\\Y\\e\\s: Y \\\\d", utc),
            "Yes: 2024 \\d"
        );
        assert_eq!(
            ok("2024-01-05T10:00:00Z", "jS \\o\\f F", utc),
            "5th of January"
        );
    }

    #[test]
    fn aware_values_are_shown_in_paris_time() {
        let paris = opts(chrono_tz::Europe::Paris, true);
        let fmt = "Y-m-d H:i:s O T e Z I U|r";
        assert_eq!(
            ok("2024-01-01T12:00:00Z", fmt, paris),
            "2024-01-01 13:00:00 +0100 CET CET 3600 0 1704110400|Mon, 01 Jan 2024 13:00:00 +0100"
        );
        assert_eq!(
            ok("2024-07-01T12:00:00+00:00", fmt, paris),
            "2024-07-01 14:00:00 +0200 CEST CEST 7200 1 1719835200|Mon, 01 Jul 2024 14:00:00 +0200"
        );
        assert_eq!(
            ok("2024-01-01T12:00:00+05:30", fmt, paris),
            "2024-01-01 07:30:00 +0100 CET CET 3600 0 1704090600|Mon, 01 Jan 2024 07:30:00 +0100"
        );
    }

    #[test]
    fn the_hour_repeated_in_autumn_has_no_zone() {
        let paris = opts(chrono_tz::Europe::Paris, true);
        let fmt = "Y-m-d H:i:s O T e Z I U|r";
        assert_eq!(
            ok("2024-10-27T00:30:00Z", fmt, paris),
            "2024-10-27 02:30:00      1729989000|Sun, 27 Oct 2024 02:30:00 +0200"
        );
        assert_eq!(
            ok("2024-10-27T01:30:00Z", fmt, paris),
            "2024-10-27 02:30:00      1729992600|Sun, 27 Oct 2024 02:30:00 +0100"
        );
    }

    #[test]
    fn naive_values_are_taken_in_the_time_zone() {
        let paris = opts(chrono_tz::Europe::Paris, true);
        let fmt = "Y-m-d H:i:s O T e Z I U|r";
        assert_eq!(
            ok("2024-07-01 12:00:00", fmt, paris),
            "2024-07-01 12:00:00 +0200 CEST  7200 1 1719828000|Mon, 01 Jul 2024 12:00:00 +0200"
        );
        assert_eq!(
            ok("2024-10-27 02:30:00", fmt, paris),
            "2024-10-27 02:30:00      1729989000|Sun, 27 Oct 2024 02:30:00 +0200"
        );
        assert_eq!(
            ok("2024-03-31 02:30:00", fmt, paris),
            "2024-03-31 02:30:00      1711848600|Sun, 31 Mar 2024 02:30:00 +0100"
        );
    }

    #[test]
    fn without_use_tz_aware_values_keep_their_offset() {
        let paris = opts(chrono_tz::Europe::Paris, false);
        let fmt = "Y-m-d H:i:s O T e Z I U c|r";
        assert_eq!(
            ok("2024-01-01T12:00:00Z", fmt, paris),
            "2024-01-01 12:00:00 +0000 UTC UTC 0 0 1704110400 2024-01-01T12:00:00+00:00|Mon, 01 Jan 2024 12:00:00 +0000"
        );
        assert_eq!(
            ok("2024-07-01T12:00:00+02:00", fmt, paris),
            "2024-07-01 12:00:00 +0200 UTC+02:00 UTC+02:00 7200 0 1719828000 2024-07-01T12:00:00+02:00\
             |Mon, 01 Jul 2024 12:00:00 +0200"
        );
    }

    #[test]
    fn dates_format_date_specifiers_and_refuse_time_ones() {
        let paris = opts(chrono_tz::Europe::Paris, true);
        assert_eq!(
            ok("2024-07-01", "c|U|r|I", paris),
            "2024-07-01|1719784800|Mon, 01 Jul 2024 00:00:00 +0200|"
        );
        assert_eq!(
            date("2024-07-01", "j H", paris),
            Err(Failure::TimeOnDate('H'))
        );
    }

    #[test]
    fn times_format_time_specifiers_only() {
        let utc = opts(chrono_tz::UTC, true);
        assert_eq!(ok("14:30", "H:i P c O", utc), "14:30 2:30 p.m. 14:30:00 ");
        assert_eq!(date("14:30", "Y", utc), Err(Failure::Unsupported));
        let time_only = parse("2024-01-01T14:30:00Z").and_then(|m| Subject::new(m, &utc));
        assert_eq!(
            format(time_only.as_ref(), "Y", true),
            Err(Failure::Unsupported)
        );
    }

    #[test]
    fn named_formats_resolve_as_get_format() {
        assert_eq!(named_format("SHORT_DATE_FORMAT"), "m/d/Y");
        assert_eq!(named_format("Y-m"), "Y-m");
    }
}
