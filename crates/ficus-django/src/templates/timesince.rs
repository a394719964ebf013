//! `django.utils.timesince`: "2 days, 3 hours" between two moments, for `timesince`/`timeuntil`.
//!
//! Django's algorithm counts calendar years and months from a pivot, then weeks, days, hours
//! and minutes, and shows at most two adjacent units joined by ", ", each with a non-breaking
//! space between number and unit. What must not be here: reading the clock (the caller passes
//! "now") or formatting dates.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

use super::moment::{Moment, local_wall};

/// `MONTHS_DAYS`: February is always 28 for the pivot, as in Django.
const MONTHS_DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/// Weeks, days, hours and minutes, in microseconds.
const CHUNKS: [i64; 4] = [604_800_000_000, 86_400_000_000, 3_600_000_000, 60_000_000];
const UNITS: [(&str, &str); 6] = [
    ("year", "years"),
    ("month", "months"),
    ("week", "weeks"),
    ("day", "days"),
    ("hour", "hours"),
    ("minute", "minutes"),
];
const DEPTH: usize = 2;

/// `timesince(d, now, reversed)`, or `None` where Django raises (a naive value against an
/// aware one, or a `time`), which its filters turn into `""`.
///
/// `now` is the argument given to the filter; without one it is `current`, seen as Django sees
/// `datetime.now()`: in `d`'s offset when `d` is aware, in `default_tz` when it is naive.
pub(super) fn timesince(
    d: Moment,
    now: Option<Moment>,
    reversed: bool,
    current: DateTime<Utc>,
    default_tz: Tz,
) -> Option<String> {
    let d = Instant::of(d)?;
    let now = match now {
        Some(now) => Instant::of(now)?,
        None => match d {
            Instant::Aware(d) => Instant::Aware(current.with_timezone(d.offset())),
            Instant::Naive(_) => Instant::Naive(local_wall(&current.with_timezone(&default_tz))?),
        },
    };
    // Python subtracts aware datetimes of one tzinfo by wall time, so both go to d's offset.
    let (d, now) = match (d, now) {
        (Instant::Naive(d), Instant::Naive(now)) => (d, now),
        (Instant::Aware(d), Instant::Aware(now)) => {
            (local_wall(&d)?, local_wall(&now.with_timezone(d.offset()))?)
        }
        _ => return None,
    };
    let (d, now) = if reversed { (now, d) } else { (d, now) };
    Some(between(d, now))
}

#[derive(Debug, Clone, Copy)]
enum Instant {
    Naive(NaiveDateTime),
    Aware(DateTime<FixedOffset>),
}

impl Instant {
    /// Dates count from their midnight, as `datetime.datetime(d.year, d.month, d.day)`.
    fn of(moment: Moment) -> Option<Instant> {
        match moment {
            Moment::Date(date) => Some(Instant::Naive(date.and_time(NaiveTime::MIN))),
            Moment::Naive(naive) => Some(Instant::Naive(naive)),
            Moment::Aware(aware) => Some(Instant::Aware(aware)),
            Moment::Time(_) => None,
        }
    }
}

fn between(d: NaiveDateTime, now: NaiveDateTime) -> String {
    let zero = || text(5, 0);
    // Whole seconds, as `delta.days * 86400 + delta.seconds`: microseconds are dropped.
    if (now - d)
        .num_microseconds()
        .is_none_or(|us| us.div_euclid(1_000_000) <= 0)
    {
        return zero();
    }
    let mut total_months = (now.year() - d.year()) * 12 + now.month() as i32 - d.month() as i32;
    if d.day() > now.day() || (d.day() == now.day() && d.time() > now.time()) {
        total_months -= 1;
    }
    let (years, months) = (total_months.div_euclid(12), total_months.rem_euclid(12));
    let pivot = if years != 0 || months != 0 {
        let mut year = d.year() + years;
        let mut month = d.month() + months as u32;
        if month > 12 {
            month -= 12;
            year += 1;
        }
        let day = MONTHS_DAYS[month as usize - 1].min(d.day());
        NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|date| date.and_hms_opt(d.hour(), d.minute(), d.second()))
    } else {
        Some(d)
    };
    let Some(mut remaining) = pivot.and_then(|pivot| (now - pivot).num_microseconds()) else {
        return zero();
    };
    let mut partials = vec![i64::from(years), i64::from(months)];
    for chunk in CHUNKS {
        let count = remaining.div_euclid(chunk);
        partials.push(count);
        remaining -= chunk * count;
    }
    let Some(first) = partials.iter().position(|&n| n != 0) else {
        return zero();
    };
    let parts: Vec<String> = partials[first..]
        .iter()
        .enumerate()
        .take(DEPTH)
        .take_while(|(_, n)| **n != 0)
        .map(|(i, &n)| text(first + i, n))
        .collect();
    parts.join(", ")
}

/// `"%(num)d day"`/`"%(num)d days"` with English plural rules, after `avoid_wrapping`.
fn text(unit: usize, count: i64) -> String {
    let (singular, plural) = UNITS[unit];
    format!(
        "{count}\u{a0}{}",
        if count == 1 { singular } else { plural }
    )
}

#[cfg(test)]
mod tests {
    //! The expected strings are Django 5.2's `{{ d|timesince:now }}` and `{{ now|timeuntil:d }}`.

    use super::*;
    use crate::templates::moment::parse;

    fn since(d: &str, now: &str) -> Option<String> {
        timesince(
            parse(d)?,
            Some(parse(now)?),
            false,
            Utc::now(),
            chrono_tz::UTC,
        )
    }

    fn until(d: &str, now: &str) -> Option<String> {
        timesince(
            parse(d)?,
            Some(parse(now)?),
            true,
            Utc::now(),
            chrono_tz::UTC,
        )
    }

    #[test]
    fn two_adjacent_units_with_non_breaking_spaces() {
        let now = "2024-03-10T15:30:00Z";
        let cases = [
            ("2024-03-08T12:00:00Z", "2\u{a0}days, 3\u{a0}hours"),
            ("2024-03-10T15:29:30Z", "0\u{a0}minutes"),
            ("2024-03-10T16:00:00Z", "0\u{a0}minutes"),
            ("2023-01-31T10:00:00Z", "1\u{a0}year, 1\u{a0}month"),
            ("2024-02-10T15:30:00Z", "1\u{a0}month"),
            ("2024-01-31T15:30:00Z", "1\u{a0}month, 1\u{a0}week"),
            ("2023-03-10T15:30:00Z", "1\u{a0}year"),
            ("2024-02-25T15:30:00Z", "2\u{a0}weeks"),
            ("2024-03-10T14:30:00Z", "1\u{a0}hour"),
            ("2024-03-03T15:00:00Z", "1\u{a0}week"),
        ];
        for (d, want) in cases {
            assert_eq!(since(d, now).as_deref(), Some(want), "{d}");
            assert_eq!(until(now, d).as_deref(), Some(want), "{d}");
        }
    }

    #[test]
    fn month_ends_and_leap_days_pivot_as_django() {
        let leap = since("2024-02-29T12:00:00Z", "2025-02-28T13:00:00Z");
        assert_eq!(leap.as_deref(), Some("11\u{a0}months, 4\u{a0}weeks"));
        let month_end = since("2024-01-31T12:00:00Z", "2024-03-01T13:00:00Z");
        assert_eq!(month_end.as_deref(), Some("1\u{a0}month"));
    }

    #[test]
    fn dates_naive_and_offset_values() {
        assert_eq!(
            since("2024-03-01", "2024-03-10").as_deref(),
            Some("1\u{a0}week, 2\u{a0}days")
        );
        let naive = since("2024-03-01 12:00:00", "2024-03-10 12:01:00");
        assert_eq!(naive.as_deref(), Some("1\u{a0}week, 2\u{a0}days"));
        let offset = since("2024-03-01T12:00:00+02:00", "2024-03-10T15:30:00Z");
        assert_eq!(offset.as_deref(), Some("1\u{a0}week, 2\u{a0}days"));
    }

    #[test]
    fn naive_against_aware_is_refused() {
        assert_eq!(since("2024-03-01 12:00:00", "2024-03-10T15:30:00Z"), None);
        assert_eq!(since("2024-03-01", "2024-03-10T15:30:00Z"), None);
    }

    /// Django's clock was frozen at 2024-03-10 15:30 UTC with `TIME_ZONE = "Europe/Paris"`.
    #[test]
    fn without_now_the_clock_is_used() {
        let now = parse("2024-03-10T15:30:00Z").map(|m| match m {
            Moment::Aware(aware) => aware.with_timezone(&Utc),
            _ => Utc::now(),
        });
        let d = parse("2020-03-01T12:00:00Z");
        let (Some(now), Some(d)) = (now, d) else {
            panic!("parse")
        };
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            timesince(d, None, false, now, paris).as_deref(),
            Some("4\u{a0}years")
        );
        assert_eq!(
            timesince(d, None, true, now, paris).as_deref(),
            Some("0\u{a0}minutes")
        );
        let naive =
            parse("2024-03-10 15:00:00").and_then(|d| timesince(d, None, false, now, paris));
        assert_eq!(naive.as_deref(), Some("1\u{a0}hour, 30\u{a0}minutes"));
        let date = parse("2024-03-12").and_then(|d| timesince(d, None, true, now, paris));
        assert_eq!(date.as_deref(), Some("1\u{a0}day, 7\u{a0}hours"));
    }
}
