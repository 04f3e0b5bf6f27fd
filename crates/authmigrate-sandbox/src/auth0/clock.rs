//! The emulator's controllable clock: real time plus an offset that only grows.
//!
//! Tests jump time forward (job timeouts after 2 h, job data deleted after 24 h, token
//! and link expiry) through [`super::Auth0Config::clock_offset`], [`super::Auth0State::advance_clock`]
//! or `POST /_sandbox/auth0/clock` `{"advance_seconds": N}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Real time shifted forward by an offset (milliseconds).
#[derive(Debug)]
pub(crate) struct Clock {
    offset_ms: AtomicU64,
}

impl Clock {
    pub(crate) fn new(offset: Duration) -> Self {
        Self {
            offset_ms: AtomicU64::new(u64::try_from(offset.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    pub(crate) fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// The emulated "now" as an [`Instant`].
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + self.offset()
    }

    /// The emulated "now" as a timestamp.
    pub(crate) fn timestamp(&self) -> jiff::Timestamp {
        let offset = jiff::SignedDuration::try_from(self.offset()).unwrap_or_default();
        jiff::Timestamp::now()
            .checked_add(offset)
            .unwrap_or_else(|_| jiff::Timestamp::now())
    }

    /// The emulated "now" as Auth0 writes it: ISO 8601 with milliseconds and `Z`.
    pub(crate) fn now_iso(&self) -> String {
        let ms = self.timestamp().as_millisecond();
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| format!("{t:.3}"))
            .unwrap_or_default()
    }

    /// The emulated "now" in UNIX seconds.
    pub(crate) fn unix_seconds(&self) -> i64 {
        self.timestamp().as_second()
    }
}
