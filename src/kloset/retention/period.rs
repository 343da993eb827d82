//! Calendar buckets for retention rules. Every bucket is computed in UTC, as Plakar does
//! (kloset's locate package), so a policy keeps the same snapshots whatever the machine's
//! time zone. A bucket is named by its start; weeks are ISO weeks (Monday to Sunday); a
//! weekday period (`monday`...) has one bucket per such day and holds nothing else.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Timelike, Utc, Weekday};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
    On(Weekday),
}

pub const WEEKDAYS: [Weekday; 7] =
    [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];

impl Period {
    /// Every period, in the order rules are evaluated and printed.
    pub fn all() -> Vec<Period> {
        let mut v = vec![Period::Minute, Period::Hour, Period::Day];
        v.extend(WEEKDAYS.map(Period::On));
        v.extend([Period::Week, Period::Month, Period::Year]);
        v
    }

    /// Plakar's singular name: the `-per-NAME` flag and the rule printed beside a kept snapshot.
    pub fn name(&self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Year => "year",
            Period::On(d) => match d {
                Weekday::Mon => "monday",
                Weekday::Tue => "tuesday",
                Weekday::Wed => "wednesday",
                Weekday::Thu => "thursday",
                Weekday::Fri => "friday",
                Weekday::Sat => "saturday",
                Weekday::Sun => "sunday",
            },
        }
    }

    /// The plural: the flag that counts buckets (`-days`, `-mondays`).
    pub fn plural(&self) -> String {
        format!("{}s", self.name())
    }

    /// The start of the bucket holding `t`; None when `t` is in no bucket of this period
    /// (a Tuesday for `monday`).
    pub fn start(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let day = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"));
        let date = t.date_naive();
        Some(match self {
            Period::Minute => t.with_second(0)?.with_nanosecond(0)?,
            Period::Hour => t.with_minute(0)?.with_second(0)?.with_nanosecond(0)?,
            Period::Day => day(date),
            Period::Week => day(date - Duration::days(date.weekday().num_days_from_monday() as i64)),
            Period::Month => day(date.with_day(1)?),
            Period::Year => day(NaiveDate::from_ymd_opt(date.year(), 1, 1)?),
            Period::On(w) => {
                if date.weekday() != *w {
                    return None;
                }
                day(date)
            }
        })
    }

    /// The start of the newest bucket at or before `now`.
    pub fn current(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Period::On(w) => {
                let back = (7 + now.weekday().num_days_from_monday() - w.num_days_from_monday()) % 7;
                let d = now.date_naive() - Duration::days(back as i64);
                Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
            }
            p => p.start(now).unwrap_or(now),
        }
    }

    /// The start of the bucket `n` buckets before the one starting at `start`.
    pub fn back(&self, start: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let n64 = n as i64;
        match self {
            Period::Minute => start - Duration::minutes(n64),
            Period::Hour => start - Duration::hours(n64),
            Period::Day => start - Duration::days(n64),
            Period::Week | Period::On(_) => start - Duration::weeks(n64),
            Period::Month => start.checked_sub_months(Months::new(n)).unwrap_or(DateTime::<Utc>::MIN_UTC),
            Period::Year => {
                start.checked_sub_months(Months::new(n.saturating_mul(12))).unwrap_or(DateTime::<Utc>::MIN_UTC)
            }
        }
    }

    /// The bucket's label, from its start.
    pub fn label(&self, start: DateTime<Utc>) -> String {
        match self {
            Period::Minute => start.format("%Y-%m-%d %H:%M").to_string(),
            Period::Hour => start.format("%Y-%m-%d %Hh").to_string(),
            Period::Day | Period::On(_) => start.format("%Y-%m-%d").to_string(),
            Period::Week => start.format("%G-W%V").to_string(),
            Period::Month => start.format("%Y-%m").to_string(),
            Period::Year => start.format("%Y").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn buckets_are_utc_calendar_units() {
        let x = t("2025-06-30T23:59:59+00:00");
        assert_eq!(Period::Week.label(Period::Week.start(x).unwrap()), "2025-W27");
        assert_eq!(Period::Week.start(t("2025-06-29T10:00:00Z")).unwrap(), t("2025-06-23T00:00:00Z"));
        assert_eq!(Period::Month.back(t("2025-03-01T00:00:00Z"), 3), t("2024-12-01T00:00:00Z"));
        assert_eq!(Period::Year.back(t("2025-01-01T00:00:00Z"), 1), t("2024-01-01T00:00:00Z"));
        // 2025-06-30 23:30 in UTC+02:00 is still June 30 in UTC.
        assert_eq!(Period::Day.label(Period::Day.start(t("2025-07-01T01:30:00+02:00")).unwrap()), "2025-06-30");
    }

    #[test]
    fn weekday_periods_hold_only_that_day() {
        let mon = Period::On(Weekday::Mon);
        assert!(mon.start(t("2025-07-01T10:00:00Z")).is_none());
        assert_eq!(mon.start(t("2025-06-30T10:00:00Z")).unwrap(), t("2025-06-30T00:00:00Z"));
        // On a Wednesday, the current Monday bucket is two days back.
        assert_eq!(mon.current(t("2025-07-02T08:00:00Z")), t("2025-06-30T00:00:00Z"));
        assert_eq!(mon.back(t("2025-06-30T00:00:00Z"), 1), t("2025-06-23T00:00:00Z"));
        assert_eq!(Period::all().len(), 13);
    }
}
