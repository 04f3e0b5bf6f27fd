//! A shared pacer that keeps requests within a provider's announced rate limit.
//!
//! Providers such as Auth0 tell, on every answer, how many requests their bucket
//! still holds (`remaining`, of `limit`) and when it is refilled (`reset`, UNIX
//! seconds). A [`Pacer`] shared by every task that talks to one tenant holds the next
//! request back while the bucket is empty, so a paced run is not refused at all. It is
//! provider-neutral: it takes those three numbers ([`RateInfo`]), not HTTP types; the
//! retry layer ([`crate::retry`]) reads them from the headers.
//!
//! How it counts (the lessons of docs/benchmarks.md "Deleting 5,000 users"):
//! - Every request gets a sequence number when it is let through. A reply's
//!   `remaining` is the server's count when it served that request; the requests let
//!   through after it may already have spent tokens, so a reply allows at most
//!   `remaining - (requests let through since)`.
//! - Concurrent requests reach the server in any order, so a reply never raises the
//!   budget, it only lowers it.
//! - At a budget of zero, requests wait until `reset` plus [`RESET_SLACK`] (not at
//!   all when the reset's second has begun), then one request goes alone (the probe)
//!   and its reply sets the budget afresh (the tokens added meanwhile).
//! - Without rate information nothing is held back.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Added to every wait for `reset`: the value has whole seconds, and a server may name
/// a second that starts up to one second before its next token (the sandbox's bucket
/// does: `reset = floor(now) + ceil(wait)`). Waiting one second more costs no
/// throughput as long as the bucket holds more than two seconds of refill (Auth0's
/// buckets do: burst 50 at 16/s, or 10 at 2/s), because the tokens keep accumulating
/// meanwhile and the probe's reply hands them all out.
pub const RESET_SLACK: Duration = Duration::from_secs(1);

/// The longest wait for a `reset`: buckets refill at least every minute, so a reset
/// further away means the clocks disagree.
pub const MAX_PACE_WAIT: Duration = Duration::from_secs(60);

/// How often a request re-checks while the budget is spent and the reply that sets it
/// afresh is still on its way.
const RECHECK: Duration = Duration::from_millis(20);

/// What one answer said about the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    /// The bucket's size (`x-ratelimit-limit`), if given.
    pub limit: Option<u64>,
    /// Requests left in the bucket when the server answered (`x-ratelimit-remaining`).
    pub remaining: u64,
    /// When tokens are added again, in UNIX seconds (`x-ratelimit-reset`).
    pub reset_unix: u64,
}

/// Holds requests back while the provider's bucket is empty. Share one per tenant
/// (it is `Sync`; wrap it in an `Arc` or keep it in the shared client).
#[derive(Debug, Default)]
pub struct Pacer {
    state: Mutex<PaceState>,
}

#[derive(Debug, Default)]
struct PaceState {
    /// Requests the budget still allows (`None`: unknown, nothing held back).
    remaining: Option<u64>,
    /// When the bucket is refilled (slack included).
    reset: Option<Instant>,
    /// Requests let through whose reply was not observed yet.
    in_flight: u64,
    /// Requests let through so far.
    sent: u64,
    /// The request sent alone after the bucket was empty, whose reply sets the budget.
    probe: Option<u64>,
    /// Times a request was held back.
    waits: u64,
}

/// A request let through by [`Pacer::acquire`]. Give its reply's rate information
/// back with [`Permit::observe`]; dropping it unobserved (a transport error, a
/// cancelled call) just ends it.
#[derive(Debug)]
pub struct Permit<'a> {
    pacer: &'a Pacer,
    seq: u64,
    done: bool,
}

impl Pacer {
    /// A pacer that knows nothing yet (lets everything through until a reply says
    /// otherwise).
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PaceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Times a request was held back so far (for tests and reports).
    pub fn waits(&self) -> u64 {
        self.lock().waits
    }

    /// Waits until the budget allows one more request and lets it through.
    pub async fn acquire(&self) -> Permit<'_> {
        let mut counted = false;
        loop {
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                let wait = match (s.remaining, s.reset) {
                    (Some(0), Some(reset)) if reset > now => Some(reset - now),
                    (Some(0), _) if s.in_flight > 0 => Some(RECHECK),
                    _ => None,
                };
                match wait {
                    Some(w) => {
                        if !counted {
                            s.waits += 1;
                            counted = true;
                        }
                        w
                    }
                    None => {
                        let probe = s.remaining == Some(0);
                        s.remaining = s.remaining.map(|r| r.saturating_sub(1));
                        s.in_flight += 1;
                        s.sent += 1;
                        if probe {
                            s.probe = Some(s.sent);
                        }
                        return Permit {
                            pacer: self,
                            seq: s.sent,
                            done: false,
                        };
                    }
                }
            };
            if counted && wait > RECHECK {
                tracing::debug!(
                    wait_ms = wait.as_millis() as u64,
                    "rate limit reached: waiting for the bucket to refill"
                );
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn finish(&self, seq: u64, info: Option<RateInfo>, now_wall: SystemTime) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        let Some(info) = info else { return };
        let allowed = info.remaining.saturating_sub(s.sent - seq);
        s.remaining = match s.remaining {
            Some(budget) if s.probe != Some(seq) => Some(budget.min(allowed)),
            _ => Some(allowed),
        };
        if s.probe == Some(seq) {
            s.probe = None;
        }
        let now_unix = now_wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let until = Duration::from_secs(info.reset_unix).saturating_sub(now_unix);
        // A reset in a second that has begun already: the next request goes (as the
        // probe) at once.
        let wait = if info.reset_unix <= now_unix.as_secs() {
            Duration::ZERO
        } else {
            (until + RESET_SLACK).min(MAX_PACE_WAIT)
        };
        let reset = Instant::now() + wait;
        // Keep the later of two resets while the budget is spent: a reply that was
        // served earlier may name an earlier second.
        s.reset = match s.reset {
            Some(old) if s.remaining == Some(0) && old > reset && old > Instant::now() => Some(old),
            _ => Some(reset),
        };
        tracing::trace!(seq, sent = s.sent, header = info.remaining, budget = ?s.remaining, reset = info.reset_unix, "pacer");
    }
}

impl Permit<'_> {
    /// Records what the reply to this request said (`None`: no rate information).
    pub fn observe(self, info: Option<RateInfo>) {
        self.observe_at(info, SystemTime::now());
    }

    /// [`Permit::observe`] with the wall clock given (tests use a fake one).
    pub fn observe_at(mut self, info: Option<RateInfo>, now_wall: SystemTime) {
        self.done = true;
        self.pacer.finish(self.seq, info, now_wall);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut s = self.pacer.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A token bucket like a provider's, on tokio's (paused) clock, answering with
    /// whole-second resets as the sandbox does.
    struct FakeBucket {
        state: Mutex<(f64, Instant)>,
        burst: f64,
        per_second: f64,
        wall_base: SystemTime,
        start: Instant,
        served: AtomicU64,
        refused: AtomicU64,
    }

    impl FakeBucket {
        fn new(burst: u32, per_second: f64) -> Self {
            Self {
                state: Mutex::new((f64::from(burst), Instant::now())),
                burst: f64::from(burst),
                per_second,
                wall_base: UNIX_EPOCH + Duration::from_millis(1_700_000_000_730),
                start: Instant::now(),
                served: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }
        }

        fn wall(&self) -> SystemTime {
            self.wall_base + (Instant::now() - self.start)
        }

        /// Serves one request: takes a token or refuses; returns the headers.
        fn serve(&self) -> RateInfo {
            let mut st = self.state.lock().unwrap();
            let now = Instant::now();
            st.0 = (st.0 + (now - st.1).as_secs_f64() * self.per_second).min(self.burst);
            st.1 = now;
            if st.0 >= 1.0 {
                st.0 -= 1.0;
                self.served.fetch_add(1, Ordering::SeqCst);
            } else {
                self.refused.fetch_add(1, Ordering::SeqCst);
            }
            let now_unix = self.wall().duration_since(UNIX_EPOCH).unwrap().as_secs();
            let missing = 1.0 - st.0.fract();
            let wait = (missing / self.per_second).ceil().max(1.0) as u64;
            RateInfo {
                limit: Some(self.burst as u64),
                remaining: st.0.floor() as u64,
                reset_unix: now_unix + wait,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_bucket_holds_the_next_request_until_the_reset() {
        let pacer = Pacer::new();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let p = pacer.acquire().await;
        p.observe_at(
            Some(RateInfo {
                limit: Some(10),
                remaining: 0,
                reset_unix: 1_700_000_003,
            }),
            wall,
        );
        let start = Instant::now();
        // Not before the reset (3 s) plus the slack.
        let early = tokio::time::timeout(Duration::from_millis(3_990), pacer.acquire()).await;
        assert!(early.is_err(), "let through before the reset");
        let p = pacer.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(3) + RESET_SLACK);
        assert_eq!(pacer.waits(), 2);
        // The probe's reply sets the budget afresh: 2 requests go at once.
        p.observe_at(
            Some(RateInfo {
                limit: Some(10),
                remaining: 2,
                reset_unix: 1_700_000_005,
            }),
            wall + Duration::from_secs(4),
        );
        let t = Instant::now();
        let a = pacer.acquire().await;
        let b = pacer.acquire().await;
        assert_eq!(Instant::now(), t, "the budget allowed two without waiting");
        drop((a, b));
    }

    #[tokio::test(start_paused = true)]
    async fn without_rate_information_nothing_is_held_back() {
        let pacer = Pacer::new();
        let t = Instant::now();
        for _ in 0..100 {
            pacer.acquire().await.observe(None);
        }
        assert_eq!(Instant::now(), t);
        assert_eq!(pacer.waits(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_far_away_is_capped() {
        let pacer = Pacer::new();
        pacer.acquire().await.observe_at(
            Some(RateInfo {
                limit: None,
                remaining: 0,
                reset_unix: 99_999_999_999,
            }),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let t = Instant::now();
        let _p = pacer.acquire().await;
        assert_eq!(Instant::now() - t, MAX_PACE_WAIT);
    }

    /// Several tasks share one pacer in front of a bucket of 5 refilled at 4/s: 120
    /// requests, none refused.
    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_at_the_limit_are_never_refused() {
        for (burst, rate, tasks) in [(5u32, 4.0, 4usize), (10, 16.0, 8), (3, 2.0, 3)] {
            let bucket = Arc::new(FakeBucket::new(burst, rate));
            let pacer = Arc::new(Pacer::new());
            let mut handles = Vec::new();
            for t in 0..tasks {
                let bucket = bucket.clone();
                let pacer = pacer.clone();
                handles.push(tokio::spawn(async move {
                    for i in 0..(120 / tasks) {
                        let permit = pacer.acquire().await;
                        // Requests take a little while, different per task.
                        tokio::time::sleep(Duration::from_millis(3 + ((t * 7 + i) % 11) as u64))
                            .await;
                        let info = bucket.serve();
                        tokio::time::sleep(Duration::from_millis(2 + (i % 5) as u64)).await;
                        permit.observe_at(Some(info), bucket.wall());
                    }
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
            assert_eq!(
                bucket.refused.load(Ordering::SeqCst),
                0,
                "burst {burst} at {rate}/s, {tasks} tasks"
            );
            assert_eq!(bucket.served.load(Ordering::SeqCst), 120);
            assert!(pacer.waits() > 0, "the limit was reached");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_permit_does_not_block_the_probe() {
        let pacer = Pacer::new();
        pacer.acquire().await.observe_at(
            Some(RateInfo {
                limit: None,
                remaining: 1,
                reset_unix: 0,
            }),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let p = pacer.acquire().await; // spends the last token
        drop(p); // cancelled: no reply
        let t = Instant::now();
        // Budget 0, reset passed, nothing in flight: the next request goes as a probe
        // instead of waiting for a reply that never comes.
        let p = tokio::time::timeout(Duration::from_secs(30), pacer.acquire()).await;
        assert!(p.is_ok(), "a dropped permit left the pacer waiting");
        assert_eq!(Instant::now(), t);
    }
}
