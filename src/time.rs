//! Timestamps as unix seconds (UTC): parsing the formats purchase logs use, and printing.
//!
//! Accepted: unix seconds (`1291191960`), `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fff]]`,
//! and RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`). Times without an offset are
//! taken as UTC; fractions of a second are dropped. Hand-written because it is small,
//! exact and keeps chrono out of the dependency tree.

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// The accepted range: years 0000 to 9999, so that differences of times never overflow.
pub const MIN: i64 = -62_167_219_200;
/// See [`MIN`].
pub const MAX: i64 = 253_402_300_799;

/// Parses one timestamp; `None` when the text is in none of the accepted formats or
/// names an impossible date.
pub fn parse(text: &str) -> Option<i64> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let unsigned = b.strip_prefix(b"-").unwrap_or(b);
    if !unsigned.is_empty() && unsigned.iter().all(u8::is_ascii_digit) {
        return s.parse().ok().filter(|t| (MIN..=MAX).contains(t));
    }
    parse_datetime(b).filter(|t| (MIN..=MAX).contains(t))
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = b.get(at..at + n)?;
    part.iter().try_fold(0i64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
}

fn parse_datetime(b: &[u8]) -> Option<i64> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * DAY;
    if b.len() == 10 {
        return Some(secs);
    }
    if b[10] != b' ' && b[10] != b'T' && b[10] != b't' {
        return None;
    }
    let (hour, minute) = (digits(b, 11, 2)?, digits(b, 14, 2)?);
    if b.get(13) != Some(&b':') || hour > 23 || minute > 59 {
        return None;
    }
    let mut at = 16;
    let mut second = 0;
    if b.get(at) == Some(&b':') {
        second = digits(b, 17, 2)?;
        if second > 60 {
            return None;
        }
        at = 19;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            if at == start {
                return None;
            }
        }
    }
    secs += hour * 3600 + minute * 60 + second;
    match b.get(at) {
        None => Some(secs),
        Some(b'Z' | b'z') if at + 1 == b.len() => Some(secs),
        Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() && b[at + 3] == b':' => {
            let (oh, om) = (digits(b, at + 1, 2)?, digits(b, at + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            Some(if sign == b'+' { secs - offset } else { secs + offset })
        }
        _ => None,
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC). A year outside 0000 to 9999 (a
/// time computed beyond [`MIN`]..=[`MAX`], never a parsed one) is printed in full, `-` and
/// all, so the text is longer: take the date part with [`date`], never by slicing.
pub fn format(secs: i64) -> String {
    let rem = secs.rem_euclid(DAY);
    format!("{} {:02}:{:02}:{:02}", date(secs), rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Formats the date of unix seconds as `YYYY-MM-DD` (UTC); years outside 0000 to 9999 are
/// printed in full (`10000-01-03`, `-0001-12-31`), never cut.
pub fn date(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(DAY));
    if y < 0 { format!("-{:04}-{m:02}-{d:02}", -y) } else { format!("{y:04}-{m:02}-{d:02}") }
}

/// Where the bulk of a log's purchase times lies, and the fences beyond which a time is
/// an outlier: kept as data, reported, but never the "now" that time decay counts back from.
///
/// The rule, on times counted per day: drop the `max(1, n / 100)` earliest and as many
/// latest days' worth of times (1% at each end), so the bulk runs from `q_lo` (the 1st
/// percentile) to `q_hi` (the 99th); its width is `w = max(q_hi - q_lo, 365 days)`; a time
/// is an outlier when it falls on a day after `q_hi + w` or before `q_lo - w`.
///
/// Why this rule: the decay reference must stay exactly the newest purchase on clean data
/// (so every existing model and list stays byte-identical), which rules out a quantile as
/// the reference itself (it would move the reference of every log). A fence keeps the
/// newest time whenever it is plausibly part of the same log, and drops a time only when
/// it lies a whole bulk-width (and at least a year) past where 99% of the purchases end: a
/// placeholder (9999-12-31, 1900-01-01, unix 0) or a mistyped year on a log of a few
/// years. Quantiles, not the extremes, define the bulk, so up to 1% of the times can be
/// bad in either direction without moving it; the width floor of a year keeps a short log
/// (a few weeks) from calling a real purchase a few months later an outlier; and the
/// fences scale with the log, so a log that spans decades keeps its whole history. Below
/// [`Bulk::MIN_TIMES`] times there is no bulk to speak of, and nothing is an outlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bulk {
    /// The first day (unix seconds at 00:00) inside the fences.
    pub from: i64,
    /// The last second inside the fences.
    pub to: i64,
}

impl Bulk {
    /// Fewer times than this have no bulk: every time is inside.
    pub const MIN_TIMES: u64 = 20;
    /// The least width of the bulk, in days.
    pub const MIN_WIDTH_DAYS: i64 = 365;

    /// The fences of a histogram of days (day number since 1970-01-01, times on that day),
    /// sorted by day; `None` when it holds fewer than [`Bulk::MIN_TIMES`] times.
    pub fn of_days(days: &[(i64, u64)]) -> Option<Bulk> {
        let n: u64 = days.iter().map(|d| d.1).sum();
        if n < Self::MIN_TIMES {
            return None;
        }
        let k = (n / 100).max(1);
        // The day holding the time of 0-based rank r.
        let at = |r: u64| {
            let mut seen = 0;
            days.iter().find(|d| {
                seen += d.1;
                seen > r
            })
        };
        let (lo, hi) = (at(k)?.0, at(n - 1 - k)?.0);
        let w = (hi - lo).max(Self::MIN_WIDTH_DAYS);
        Some(Bulk { from: (lo - w) * DAY, to: (hi + w + 1) * DAY - 1 })
    }

    /// The fences of a set of times.
    pub fn of_times(times: impl IntoIterator<Item = i64>) -> Option<Bulk> {
        let mut days: Vec<i64> = times.into_iter().map(|t| t.div_euclid(DAY)).collect();
        days.sort_unstable();
        let mut hist: Vec<(i64, u64)> = Vec::new();
        for d in days {
            match hist.last_mut() {
                Some(last) if last.0 == d => last.1 += 1,
                _ => hist.push((d, 1)),
            }
        }
        Self::of_days(&hist)
    }

    /// Whether `t` lies within the fences.
    pub fn contains(&self, t: i64) -> bool {
        (self.from..=self.to).contains(&t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_accepted_format() {
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("881250949"), Some(881_250_949));
        assert_eq!(parse("1291191960"), Some(1_291_191_960));
        assert_eq!(parse("1970-01-02"), Some(DAY));
        assert_eq!(parse("2010-12-01 08:26:00"), Some(1_291_191_960));
        assert_eq!(parse("2010-12-01 08:26"), Some(1_291_191_960));
        assert_eq!(parse("2010-12-01T08:26:00Z"), Some(1_291_191_960));
        assert_eq!(parse("2010-12-01T09:26:00.250+01:00"), Some(1_291_191_960));
        assert_eq!(parse("2010-12-01T03:26:00-05:00"), Some(1_291_191_960));
        assert_eq!(parse("2000-02-29"), Some(951_782_400));
        assert_eq!(parse("0000-01-01"), Some(MIN));
        assert_eq!(parse("9999-12-31 23:59:59"), Some(MAX));
    }

    #[test]
    fn rejects_impossible_or_foreign_text() {
        for bad in [
            "",
            "abc",
            "2011-02-29",
            "2011-13-01",
            "2011-12-32",
            "2011-12-09 24:00:00",
            "12/09/2011",
            "2011-12-09 10:00:00+1",
            "2011-12-09X10:00",
            "2011-12-09 10:00:00.",
            "1.5",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dates_beyond_the_parsed_range_print_whole() {
        assert_eq!(date(MAX), "9999-12-31");
        assert_eq!(date(MAX + 3 * DAY), "10000-01-03");
        assert_eq!(format(MAX + 3 * DAY), "10000-01-03 23:59:59");
        assert_eq!(date(MIN), "0000-01-01");
        assert_eq!(date(MIN - 1), "-0001-12-31");
        assert_eq!(date(parse("2011-12-09 12:50:00").unwrap()), "2011-12-09");
    }

    #[test]
    fn the_bulk_ignores_a_few_outliers_and_keeps_a_clean_log_whole() {
        let start = parse("2023-01-01").unwrap();
        // A year of purchases, one every ~9 hours.
        let clean: Vec<i64> = (0..1000).map(|k| start + k * 365 * DAY / 1000).collect();
        let b = Bulk::of_times(clean.iter().copied()).unwrap();
        assert!(clean.iter().all(|&t| b.contains(t)), "{b:?}");
        let mut bad = clean.clone();
        bad.extend([MAX, parse("1900-01-01").unwrap(), parse("2035-06-01").unwrap(), 0]);
        let b2 = Bulk::of_times(bad.iter().copied()).unwrap();
        assert!(clean.iter().all(|&t| b2.contains(t)), "{b2:?}");
        assert_eq!(bad.iter().filter(|&&t| !b2.contains(t)).count(), 4, "{b2:?}");
        // Too few times: no bulk.
        assert_eq!(Bulk::of_times([start, MAX]), None);
        // A log of a few weeks keeps a purchase a few months later.
        let mut short: Vec<i64> = (0..100).map(|k| start + k * 3600).collect();
        short.push(start + 200 * DAY);
        let b3 = Bulk::of_times(short.iter().copied()).unwrap();
        assert!(short.iter().all(|&t| b3.contains(t)), "{b3:?}");
        // A log spanning decades keeps its oldest and newest purchases.
        let long: Vec<i64> = (0..1000).map(|k| MIN / 2 + k * 40 * DAY).collect();
        let b4 = Bulk::of_times(long.iter().copied()).unwrap();
        assert!(long.iter().all(|&t| b4.contains(t)), "{b4:?}");
    }

    #[test]
    fn format_round_trips() {
        for s in ["1970-01-01 00:00:00", "2011-12-09 12:50:00", "2000-02-29 23:59:59", "1969-12-31 23:59:59"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
