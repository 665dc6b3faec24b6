//! The calendar month in UTC (`YYYY-MM`) that a listen or a subscription belongs to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// A calendar month in UTC, from 1970-01 to 9999-12.
///
/// Ordered by time. A listen belongs to the month in which it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: u16,
    month: u8,
}

/// Why a month is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MonthError {
    /// Not of the form `YYYY-MM`.
    #[error("{0:?} is not a month of the form YYYY-MM")]
    Format(String),
    /// Year or month out of range.
    #[error("{year}-{month:02} is out of range (1970-01 to 9999-12)")]
    Range {
        /// The year given.
        year: u16,
        /// The month given.
        month: u8,
    },
}

const MS_PER_DAY: u64 = 86_400_000;

impl Month {
    /// The month `year`-`month`; `month` runs from 1 to 12.
    pub fn new(year: u16, month: u8) -> Result<Self, MonthError> {
        if (1970..=9999).contains(&year) && (1..=12).contains(&month) {
            Ok(Self { year, month })
        } else {
            Err(MonthError::Range { year, month })
        }
    }

    /// The month in which the Unix time `ms` (milliseconds, UTC) falls.
    ///
    /// Returns `None` past 9999-12.
    pub fn containing(ms: u64) -> Option<Self> {
        let days = i64::try_from(ms / MS_PER_DAY).ok()?;
        let (year, month) = civil_from_days(days);
        Self::new(u16::try_from(year).ok()?, month).ok()
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month of the year, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The month after this one, if it is in range.
    pub fn next(self) -> Option<Self> {
        match self.month {
            12 => Self::new(self.year + 1, 1).ok(),
            m => Self::new(self.year, m + 1).ok(),
        }
    }

    /// The month before this one, if it is in range.
    pub fn previous(self) -> Option<Self> {
        match self.month {
            1 => Self::new(self.year.checked_sub(1)?, 12).ok(),
            m => Self::new(self.year, m - 1).ok(),
        }
    }

    /// First millisecond of the month and first millisecond after it: `start <= t < end`.
    pub fn bounds_ms(self) -> (u64, u64) {
        let start = first_ms(i64::from(self.year), self.month);
        let end = match self.month {
            12 => first_ms(i64::from(self.year) + 1, 1),
            m => first_ms(i64::from(self.year), m + 1),
        };
        (start, end)
    }

    /// Whether the Unix time `ms` falls in this month.
    pub fn contains(self, ms: u64) -> bool {
        let (start, end) = self.bounds_ms();
        (start..end).contains(&ms)
    }
}

fn first_ms(year: i64, month: u8) -> u64 {
    let days = days_from_civil(year, month, 1);
    u64::try_from(days).expect("months start in 1970 or later") * MS_PER_DAY
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year and month of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u8::try_from(month).expect("month is 1..=12"))
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = MonthError;
    fn from_str(text: &str) -> Result<Self, MonthError> {
        let bytes = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| bytes[r].iter().all(u8::is_ascii_digit);
        if bytes.len() != 7 || bytes[4] != b'-' || !digits(0..4) || !digits(5..7) {
            return Err(MonthError::Format(text.to_string()));
        }
        let year = text[0..4].parse().expect("four digits");
        let month = text[5..7].parse().expect("two digits");
        Self::new(year, month)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_match_known_dates() {
        // 2026-10-01T00:00:00Z and 2026-11-01T00:00:00Z.
        let m: Month = "2026-10".parse().unwrap();
        assert_eq!(m.bounds_ms(), (1_790_812_800_000, 1_793_491_200_000));
        assert_eq!("1970-01".parse::<Month>().unwrap().bounds_ms().0, 0);
        // Leap February: 2024-02 has 29 days.
        let (s, e) = "2024-02".parse::<Month>().unwrap().bounds_ms();
        assert_eq!(e - s, 29 * MS_PER_DAY);
        let (s, e) = "2100-02".parse::<Month>().unwrap().bounds_ms();
        assert_eq!(e - s, 28 * MS_PER_DAY);
    }

    #[test]
    fn containing_inverts_bounds() {
        for text in [
            "1970-01", "1999-12", "2000-02", "2026-10", "2026-12", "9999-12",
        ] {
            let m: Month = text.parse().unwrap();
            let (s, e) = m.bounds_ms();
            assert_eq!(Month::containing(s), Some(m));
            assert_eq!(Month::containing(e - 1), Some(m));
            assert!(m.contains(s) && m.contains(e - 1) && !m.contains(e));
            assert_eq!(Month::containing(e), m.next());
        }
    }

    #[test]
    fn parse_is_strict() {
        for bad in [
            "2026-1", "2026-13", "2026-00", "26-10", "2026/10", "1969-12", "2026-10 ",
        ] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
        assert_eq!("2026-10".parse::<Month>().unwrap().to_string(), "2026-10");
    }
}
