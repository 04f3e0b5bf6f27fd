//! The `user_import` usage quota (authgear-api.md §1.1 CORRECTED): the whole request's
//! record count is reserved all or nothing (`usage_before + n > quota` refuses), the day
//! is checked before the month, a reservation is never refunded, the day resets at
//! 00:00 UTC and the month on the 1st (both by the sandbox clock).

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::api::api_error;

/// Counters per period, keyed by the period's first day in UTC.
#[derive(Debug, Default)]
pub(super) struct Usage {
    days: HashMap<Date, u64>,
    months: HashMap<Date, u64>,
    /// Every record ever reserved.
    pub(super) total: u64,
}

/// Which period refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Period {
    Day,
    Month,
}

impl Period {
    fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

fn keys(now: jiff::Timestamp) -> (Date, Date) {
    let date = now.to_zoned(TimeZone::UTC).date();
    (date, date.first_of_month())
}

impl Usage {
    /// Reserves `n` records, or names the first period (day, then month) that refuses.
    pub(super) fn reserve(
        &mut self,
        now: jiff::Timestamp,
        daily: Option<u64>,
        monthly: Option<u64>,
        n: u64,
    ) -> Result<(), Period> {
        let (day, month) = keys(now);
        let used_day = self.days.get(&day).copied().unwrap_or(0);
        let used_month = self.months.get(&month).copied().unwrap_or(0);
        if daily.is_some_and(|q| used_day.saturating_add(n) > q) {
            return Err(Period::Day);
        }
        if monthly.is_some_and(|q| used_month.saturating_add(n) > q) {
            return Err(Period::Month);
        }
        *self.days.entry(day).or_default() += n;
        *self.months.entry(month).or_default() += n;
        self.total = self.total.saturating_add(n);
        Ok(())
    }

    /// Records reserved in the current day and month.
    pub(super) fn current(&self, now: jiff::Timestamp) -> (u64, u64) {
        let (day, month) = keys(now);
        (
            self.days.get(&day).copied().unwrap_or(0),
            self.months.get(&month).copied().unwrap_or(0),
        )
    }
}

/// The 429 body's error.
pub(super) fn refusal(period: Period) -> Value {
    api_error(
        "TooManyRequest",
        "UsageLimitExceeded",
        "usage limit exceeded",
        Some(json!({
            "name": "UserImport",
            "usage_name": "user_import",
            "period": period.as_str(),
        })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_or_nothing_day_before_month_and_resets() {
        let mut u = Usage::default();
        let t: jiff::Timestamp = "2026-01-31T23:00:00Z".parse().unwrap();
        assert_eq!(u.reserve(t, Some(10), Some(15), 8), Ok(()));
        assert_eq!(u.reserve(t, Some(10), Some(15), 3), Err(Period::Day));
        assert_eq!(u.reserve(t, Some(10), Some(15), 2), Ok(()));
        let next_day: jiff::Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
        // New day and new month.
        assert_eq!(u.reserve(next_day, Some(10), Some(15), 10), Ok(()));
        let same_month: jiff::Timestamp = "2026-02-02T00:00:00Z".parse().unwrap();
        assert_eq!(
            u.reserve(same_month, Some(10), Some(15), 6),
            Err(Period::Month)
        );
        assert_eq!(u.reserve(same_month, Some(10), Some(15), 5), Ok(()));
        assert_eq!(u.total, 25);
    }
}
