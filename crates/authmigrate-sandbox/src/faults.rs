//! Fault injection, latency and rate limiting shared by both emulators.
//!
//! A [`Faults`] value holds a [`FaultConfig`] and a ChaCha RNG seeded from
//! [`FaultConfig::seed`], so the same seed and the same sequence of requests give the
//! same sequence of outcomes. [`inject`] is the axum middleware that lib.rs puts in
//! front of the provider routes (`/oauth/token`, `/api/v2/*`, `/_api/admin/*`); it never
//! touches the sandbox helper routes under `/_sandbox/`.
//!
//! Per request, in this order:
//! 1. the token bucket ([`FaultConfig::rate_limit`]): an empty bucket gives a 429.
//!    Every Auth0 `/api/v2` response (successful or throttled) carries
//!    `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` (UNIX
//!    seconds), as `auth0-api.md` §8 (CORRECTED) says; when no rate limit is configured
//!    the Auth0 routes use a generous default bucket ([`DEFAULT_AUTH0_RATE_LIMIT`]) so
//!    the headers are still there;
//! 2. unless [`FaultConfig::max_faults`] faults were already injected: a burst of 429s
//!    ([`FaultConfig::burst_429`]), a dropped connection ([`FaultConfig::drop_rate`]),
//!    a 500 ([`FaultConfig::error_rate`]) or a delay ([`FaultConfig::slow`]).
//!
//! Every request draws the same number of random values whatever its outcome, which
//! keeps the sequence deterministic.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A token bucket: `burst` requests at once, refilled at `per_second` requests a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Bucket size (the burst limit).
    pub burst: u32,
    /// Refill rate (the sustained limit), in requests per second.
    pub per_second: f64,
}

/// The bucket the Auth0 routes use when [`FaultConfig::rate_limit`] is `None`: generous
/// enough never to refuse a test, but it still produces the `x-ratelimit-*` headers.
pub const DEFAULT_AUTH0_RATE_LIMIT: RateLimit = RateLimit {
    burst: 10_000,
    per_second: 10_000.0,
};

/// What to inject. Everything is off by default; all randomness comes from `seed`.
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// Seed of the deterministic RNG.
    pub seed: u64,
    /// How long an import/export job takes from creation to done.
    pub job_latency: Duration,
    /// Token-bucket rate limit on the provider routes (both providers share it); `None`
    /// means Authgear is unlimited and Auth0 uses [`DEFAULT_AUTH0_RATE_LIMIT`].
    pub rate_limit: Option<RateLimit>,
    /// Share (0..=1) of requests answered with a 500.
    pub error_rate: f64,
    /// `(n, m)`: every `n`th request starts a burst of `m` 429s (that request included).
    pub burst_429: Option<(u32, u32)>,
    /// `(share, delay)`: a share of requests is delayed by `delay` before being served.
    pub slow: Option<(f64, Duration)>,
    /// Share (0..=1) of requests whose connection is dropped without a response.
    pub drop_rate: f64,
    /// 0-based creation numbers of import jobs (counted per provider) that end as failed.
    pub fail_jobs: Vec<u32>,
    /// Stop injecting faults (bursts, drops, errors, delays) after this many.
    pub max_faults: Option<u32>,
    /// 0-based creation numbers of Auth0 import jobs whose `POST /jobs/users-imports`
    /// answers 500 "Internal error." although the job was created (and runs).
    pub import_500_after_create: Vec<u32>,
    /// 0-based creation numbers of Auth0 import jobs whose `POST /jobs/users-imports`
    /// connection is dropped after the job was created (and runs).
    pub import_drop_after_create: Vec<u32>,
    /// `(n, k)`: the Auth0 import job with 0-based creation number `n` ends `failed`
    /// after inserting (or updating) its first `k` users.
    pub fail_jobs_after: Vec<(u32, usize)>,
}

/// What to do with a `POST /jobs/users-imports` answer after the job was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCreate {
    /// Answer 202 as usual.
    Answer,
    /// Answer 500 "Internal error.".
    Error,
    /// Drop the connection.
    Drop,
}

/// Which provider's error shapes a response must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Auth0 (`/oauth/token`, `/api/v2/...`).
    Auth0,
    /// Authgear (`/_api/admin/...`).
    Authgear,
}

impl Provider {
    /// The provider whose API serves `path`, or `None` for sandbox helper routes and
    /// anything else that faults must not touch.
    pub fn for_path(path: &str) -> Option<Self> {
        if path == "/oauth/token" || path.starts_with("/oauth/") || path.starts_with("/api/v2/") {
            Some(Self::Auth0)
        } else if path.starts_with("/_api/admin/") || path == "/_api/admin" {
            Some(Self::Authgear)
        } else {
            None
        }
    }
}

/// What the middleware decided for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Serve the request normally, after an optional delay.
    Pass {
        /// Injected delay, if any.
        delay: Option<Duration>,
    },
    /// The token bucket is empty.
    RateLimited,
    /// An injected 429 (part of a burst).
    Burst429,
    /// An injected 500.
    Error,
    /// Drop the connection without a response.
    Drop,
}

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last_refill: Instant,
}

impl Bucket {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            last_refill: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let rl = self.limit;
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * rl.per_second).min(f64::from(rl.burst));
        self.last_refill = now;
    }

    /// Takes one token; `false` when the bucket is empty.
    fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn headers(&self) -> RateHeaders {
        let rl = self.limit;
        let remaining = self.tokens.floor().max(0.0) as u64;
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // When the next token arrives (or now when the bucket is full).
        let reset = if self.tokens >= f64::from(rl.burst) || rl.per_second <= 0.0 {
            now_unix
        } else {
            let missing = 1.0 - self.tokens.fract();
            let wait = (missing / rl.per_second).ceil().max(1.0) as u64;
            now_unix + wait
        };
        RateHeaders {
            limit: u64::from(rl.burst),
            remaining,
            reset,
        }
    }
}

#[derive(Debug)]
struct Inner {
    config: FaultConfig,
    rng: ChaCha8Rng,
    /// The configured bucket, shared by both providers.
    bucket: Option<Bucket>,
    /// The Auth0 default bucket, used when none is configured.
    auth0_default: Bucket,
    requests: u64,
    burst_left: u32,
    injected_since_set: u64,
}

impl Inner {
    fn new(config: FaultConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Self {
            bucket: config.rate_limit.map(Bucket::new),
            auth0_default: Bucket::new(DEFAULT_AUTH0_RATE_LIMIT),
            config,
            rng,
            requests: 0,
            burst_left: 0,
            injected_since_set: 0,
        }
    }

    /// The bucket a request of `provider` draws from, if any.
    fn bucket_for(&mut self, provider: Option<Provider>) -> Option<&mut Bucket> {
        match (&mut self.bucket, provider) {
            (Some(b), _) => Some(b),
            (None, Some(Provider::Auth0)) => Some(&mut self.auth0_default),
            (None, _) => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct RateHeaders {
    limit: u64,
    remaining: u64,
    reset: u64,
}

/// Live fault state, shared by the emulators' handlers.
#[derive(Debug)]
pub struct Faults {
    inner: Mutex<Inner>,
    injected: AtomicU64,
    rate_limited: AtomicU64,
}

impl Faults {
    /// Builds the live state.
    pub fn new(config: FaultConfig) -> Self {
        Self {
            inner: Mutex::new(Inner::new(config)),
            injected: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent plain data behind.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the configuration at run time (reseeds the RNG, refills the bucket and
    /// restarts the `max_faults` budget; the [`Faults::injected`] total is kept).
    pub fn set(&self, config: FaultConfig) {
        *self.lock() = Inner::new(config);
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    /// The job latency.
    pub fn job_latency(&self) -> Duration {
        self.lock().config.job_latency
    }

    /// Whether the import job with this 0-based creation number (counted per provider)
    /// must end as failed.
    pub fn job_fails(&self, creation_number: u32) -> bool {
        self.lock().config.fail_jobs.contains(&creation_number)
    }

    /// After how many users the Auth0 import job with this creation number ends failed.
    pub fn job_fails_after(&self, creation_number: u32) -> Option<usize> {
        let inner = self.lock();
        let found = inner.config.fail_jobs_after.iter();
        found
            .filter(|(n, _)| *n == creation_number)
            .map(|(_, k)| *k)
            .next()
    }

    /// What the answer to the Auth0 import POST that created job `creation_number` is.
    pub fn import_after_create(&self, creation_number: u32) -> AfterCreate {
        let inner = self.lock();
        if inner
            .config
            .import_drop_after_create
            .contains(&creation_number)
        {
            AfterCreate::Drop
        } else if inner
            .config
            .import_500_after_create
            .contains(&creation_number)
        {
            AfterCreate::Error
        } else {
            AfterCreate::Answer
        }
    }

    /// How many faults (429 bursts, 500s, drops, delays) were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// How many requests the token bucket turned away with a 429.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Decides the fate of one provider request (advances the RNG and the counters),
    /// drawing from the configured bucket only.
    pub fn decide(&self) -> Decision {
        self.decide_with_headers(None).0
    }

    fn decide_with_headers(&self, provider: Option<Provider>) -> (Decision, Option<RateHeaders>) {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.requests += 1;
        // Always draw the same values, whatever the outcome, for determinism.
        let r_drop: f64 = inner.rng.r#gen();
        let r_err: f64 = inner.rng.r#gen();
        let r_slow: f64 = inner.rng.r#gen();

        let mut headers = None;
        if let Some(bucket) = inner.bucket_for(provider) {
            let taken = bucket.take(now);
            headers = Some(bucket.headers());
            if !taken {
                drop(inner);
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
                return (Decision::RateLimited, headers);
            }
        }

        let budget_left = inner
            .config
            .max_faults
            .is_none_or(|max| inner.injected_since_set < u64::from(max));
        let decision = if !budget_left {
            Decision::Pass { delay: None }
        } else {
            if inner.burst_left == 0
                && let Some((every, len)) = inner.config.burst_429
                && every > 0
                && inner.requests % u64::from(every) == 0
            {
                inner.burst_left = len;
            }
            if inner.burst_left > 0 {
                inner.burst_left -= 1;
                Decision::Burst429
            } else if r_drop < inner.config.drop_rate {
                Decision::Drop
            } else if r_err < inner.config.error_rate {
                Decision::Error
            } else if let Some((share, delay)) = inner.config.slow
                && r_slow < share
            {
                Decision::Pass { delay: Some(delay) }
            } else {
                Decision::Pass { delay: None }
            }
        };
        if decision != (Decision::Pass { delay: None }) {
            inner.injected_since_set += 1;
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        (decision, headers)
    }
}

/// The body of a provider's 429 answer.
fn too_many(provider: Provider) -> Response {
    match provider {
        // The body of a real global-limit 429 (auth0-rbac-orgs-mfa.md §6, I31).
        Provider::Auth0 => auth0_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "Global limit has been reached",
            "too_many_requests",
        ),
        Provider::Authgear => authgear_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequest",
            "RateLimited",
            "request rate limited",
        ),
    }
}

/// The body of a provider's 500 answer.
pub(crate) fn internal(provider: Provider) -> Response {
    match provider {
        Provider::Auth0 => auth0_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "Internal error.",
            "internal_error",
        ),
        Provider::Authgear => authgear_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "UnexpectedError",
            "unexpected error occurred",
        ),
    }
}

fn auth0_error(status: StatusCode, error: &str, message: &str, code: &str) -> Response {
    let body = serde_json::json!({
        "statusCode": status.as_u16(),
        "error": error,
        "message": message,
        "errorCode": code,
    });
    (status, axum::Json(body)).into_response()
}

fn authgear_error(status: StatusCode, name: &str, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "error": {"name": name, "reason": reason, "message": message, "code": status.as_u16()}
    });
    (status, axum::Json(body)).into_response()
}

/// A response whose body fails on first read, so hyper aborts the connection and the
/// client sees a transport error instead of a response.
pub(crate) fn dropped() -> Response {
    let stream = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: connection dropped",
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    // Tell hyper not to reuse the connection either way.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn add_rate_headers(response: &mut Response, headers: RateHeaders) {
    let h = response.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(headers.limit));
    h.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(headers.remaining),
    );
    h.insert("x-ratelimit-reset", HeaderValue::from(headers.reset));
}

/// The fault-injection middleware, for `axum::middleware::from_fn_with_state`.
/// Requests outside the provider APIs (see [`Provider::for_path`]) pass untouched.
pub async fn inject(State(faults): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let Some(provider) = Provider::for_path(req.uri().path()) else {
        return next.run(req).await;
    };
    let with_headers = provider == Provider::Auth0 && req.uri().path().starts_with("/api/v2/");
    // The bucket is tenant-wide, so the token endpoint draws from it too, but only the
    // Management API answers carry the headers.
    let (decision, headers) = faults.decide_with_headers(Some(provider));
    let mut response = match decision {
        Decision::RateLimited | Decision::Burst429 => too_many(provider),
        Decision::Error => internal(provider),
        Decision::Drop => return dropped(),
        Decision::Pass { delay } => {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            next.run(req).await
        }
    };
    if with_headers && let Some(mut headers) = headers {
        if matches!(decision, Decision::Burst429) {
            headers.remaining = 0;
        }
        add_rate_headers(&mut response, headers);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(config: FaultConfig, n: usize) -> Vec<Decision> {
        let f = Faults::new(config);
        (0..n).map(|_| f.decide()).collect()
    }

    #[test]
    fn same_seed_same_sequence_and_other_seed_differs() {
        let cfg = |seed| FaultConfig {
            seed,
            error_rate: 0.3,
            drop_rate: 0.1,
            ..FaultConfig::default()
        };
        let a = seq(cfg(7), 200);
        assert_eq!(a, seq(cfg(7), 200));
        assert_ne!(a, seq(cfg(8), 200));
        let errors = a.iter().filter(|d| **d == Decision::Error).count();
        assert!(errors > 20 && errors < 120, "{errors} errors out of 200");
        assert!(a.contains(&Decision::Drop));
    }

    #[test]
    fn burst_every_nth_request() {
        let d = seq(
            FaultConfig {
                burst_429: Some((5, 2)),
                ..FaultConfig::default()
            },
            12,
        );
        let burst: Vec<usize> = d
            .iter()
            .enumerate()
            .filter(|(_, d)| **d == Decision::Burst429)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(burst, vec![4, 5, 9, 10]);
    }

    #[test]
    fn max_faults_ends_the_storm_and_set_restarts_it() {
        let f = Faults::new(FaultConfig {
            error_rate: 1.0,
            max_faults: Some(3),
            ..FaultConfig::default()
        });
        let d: Vec<Decision> = (0..6).map(|_| f.decide()).collect();
        assert_eq!(&d[..3], &[Decision::Error; 3]);
        assert_eq!(&d[3..], &[Decision::Pass { delay: None }; 3]);
        assert_eq!(f.injected(), 3);
        f.set(FaultConfig::default());
        assert_eq!(f.decide(), Decision::Pass { delay: None });
        f.set(FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        });
        assert_eq!(f.decide(), Decision::Error);
        assert_eq!(f.injected(), 4);
    }

    #[test]
    fn token_bucket_empties_after_burst() {
        let f = Faults::new(FaultConfig {
            rate_limit: Some(RateLimit {
                burst: 3,
                per_second: 0.001,
            }),
            ..FaultConfig::default()
        });
        let d: Vec<Decision> = (0..4).map(|_| f.decide()).collect();
        assert_eq!(&d[..3], &[Decision::Pass { delay: None }; 3]);
        assert_eq!(d[3], Decision::RateLimited);
        assert_eq!(f.rate_limited(), 1);
        assert_eq!(f.injected(), 0);
    }

    #[test]
    fn slow_share_delays_requests() {
        let d = seq(
            FaultConfig {
                slow: Some((1.0, Duration::from_millis(5))),
                ..FaultConfig::default()
            },
            2,
        );
        assert_eq!(
            d,
            vec![
                Decision::Pass {
                    delay: Some(Duration::from_millis(5))
                };
                2
            ]
        );
    }

    #[test]
    fn post_create_faults_by_job_number() {
        let f = Faults::new(FaultConfig {
            import_500_after_create: vec![0, 2],
            import_drop_after_create: vec![2, 3],
            fail_jobs_after: vec![(1, 5)],
            ..FaultConfig::default()
        });
        let got: Vec<AfterCreate> = (0..5).map(|n| f.import_after_create(n)).collect();
        assert_eq!(
            got,
            vec![
                AfterCreate::Error,
                AfterCreate::Answer,
                AfterCreate::Drop,
                AfterCreate::Drop,
                AfterCreate::Answer
            ]
        );
        assert_eq!(f.job_fails_after(1), Some(5));
        assert_eq!(f.job_fails_after(0), None);
    }

    #[test]
    fn auth0_gets_a_default_bucket_and_authgear_none() {
        let f = Faults::new(FaultConfig::default());
        let (d, h) = f.decide_with_headers(Some(Provider::Auth0));
        assert_eq!(d, Decision::Pass { delay: None });
        let h = h.expect("auth0 headers");
        assert_eq!(h.limit, u64::from(DEFAULT_AUTH0_RATE_LIMIT.burst));
        assert_eq!(h.remaining, u64::from(DEFAULT_AUTH0_RATE_LIMIT.burst) - 1);
        assert!(f.decide_with_headers(Some(Provider::Authgear)).1.is_none());
        assert_eq!(f.rate_limited(), 0);
    }

    #[test]
    fn fail_jobs_and_paths() {
        let f = Faults::new(FaultConfig {
            fail_jobs: vec![1, 3],
            ..FaultConfig::default()
        });
        assert!(!f.job_fails(0));
        assert!(f.job_fails(1));
        assert!(f.job_fails(3));
        assert_eq!(Provider::for_path("/oauth/token"), Some(Provider::Auth0));
        assert_eq!(Provider::for_path("/api/v2/jobs/x"), Some(Provider::Auth0));
        assert_eq!(
            Provider::for_path("/_api/admin/users/import"),
            Some(Provider::Authgear)
        );
        assert_eq!(Provider::for_path("/_sandbox/auth0/exports/x"), None);
    }
}
