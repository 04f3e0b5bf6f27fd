//! The one HTTP retry policy both backends use (feature `http`).
//!
//! [`send`] runs a request until the server gives an answer worth returning, retrying
//! `429`, `408`, `500`, `502`, `503`, `504`, connection errors and timeouts with
//! exponential backoff and full jitter, honouring `Retry-After` and Auth0's
//! `x-ratelimit-reset`. Everything else (any 2xx, any other 4xx) is returned to the
//! caller, who knows what it means. [`send_with`] takes a classifier to change that,
//! e.g. Auth0's 429 `active import users jobs` is back-pressure for the import driver,
//! not something to retry here:
//!
//! ```no_run
//! # async fn demo(client: reqwest::Client) -> Result<(), authmigrate_core::retry::RetryError> {
//! use authmigrate_core::retry::{RetryPolicy, Verdict, default_verdict, send_with};
//! let reply = send_with(&RetryPolicy::default(), "create import job",
//!     || client.post("https://tenant.example/api/v2/jobs/users-imports"),
//!     |reply| {
//!         let busy = reply.status == reqwest::StatusCode::TOO_MANY_REQUESTS
//!             && String::from_utf8_lossy(&reply.body).contains("active import users jobs");
//!         if busy { Verdict::Done } else { default_verdict(reply) }
//!     }).await?;
//! # Ok(()) }
//! ```
//!
//! Logs say what was retried (the caller's `what`, attempt, wait, status or transport
//! error kind); never URLs with their query, headers or bodies, which may carry tokens.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};

/// Longest wait taken from `x-ratelimit-reset`. Auth0 buckets refill at least every
/// minute, so a reset further away than this means the clocks disagree.
pub const MAX_RESET_WAIT: Duration = Duration::from_secs(60);

/// How hard to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (at least 1 is always made).
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry; doubles each retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling (waits asked for by the server are not capped by it).
    pub max_delay: Duration,
    /// Time budget for the whole call, waits included: a wait that would end after it
    /// stops retrying early.
    pub max_total: Duration,
    /// Timeout of each attempt (connect, send and reading the whole body).
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, 500 ms base, 30 s per backoff wait, 10 min in all, 60 s per request.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_total: Duration::from_secs(600),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// For tests: `attempts` attempts with no backoff waits. A wait the server asks for
    /// (`Retry-After`, `x-ratelimit-reset`) is still honoured within `max_total`.
    pub fn immediate(attempts: u32) -> Self {
        Self {
            max_attempts: attempts,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..Self::default()
        }
    }

    /// The backoff before retry number `retry` (0 = the first retry): uniformly random
    /// in `[0, min(max_delay, base_delay × 2^retry)]` (full jitter).
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
    }
}

/// A complete HTTP answer (API bodies are small, so the body is read in full).
#[derive(Clone)]
pub struct HttpReply {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl fmt::Debug for HttpReply {
    /// Shows the status and the body length only: bodies may hold tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpReply")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl HttpReply {
    /// Decodes the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// What to do with a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Return it to the caller.
    Done,
    /// Try again, after the given wait (`None` = exponential backoff).
    Retry {
        /// The wait the server asked for.
        after: Option<Duration>,
    },
}

/// Why [`send`] gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryError {
    /// Every attempt failed in a retryable way (or the time budget ran out).
    #[error("{what}: gave up after {attempts} attempt(s), last: {last}")]
    Exhausted {
        /// The caller's description of the call.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure: `HTTP 503`, `timeout`, `connection error: …` (never a URL
        /// query, header or body).
        last: String,
    },
    /// The request could not be built (bad URL, bad header value...).
    #[error("{0}")]
    Build(String),
}

/// The default classifier: `429` → retry after `Retry-After` (seconds or HTTP-date),
/// else after `x-ratelimit-reset` (capped at [`MAX_RESET_WAIT`]), else with backoff;
/// `408`, `500`, `502`, `503`, `504` → retry (a `503` honours `Retry-After`); anything
/// else → [`Verdict::Done`].
pub fn default_verdict(reply: &HttpReply) -> Verdict {
    let now = SystemTime::now();
    match reply.status.as_u16() {
        429 => Verdict::Retry {
            after: parse_retry_after(&reply.headers, now).or_else(|| {
                parse_ratelimit_reset(&reply.headers, now)
                    .filter(|d| !d.is_zero())
                    .map(|d| d.min(MAX_RESET_WAIT))
            }),
        },
        503 => Verdict::Retry {
            after: parse_retry_after(&reply.headers, now),
        },
        408 | 500 | 502 | 504 => Verdict::Retry { after: None },
        _ => Verdict::Done,
    }
}

/// The wait a `Retry-After` header asks for: delay-seconds, or an HTTP-date (a date in
/// the past means now). `None` when absent or unparseable.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let at = SystemTime::from(at);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The time until an `x-ratelimit-reset` UNIX timestamp (seconds): zero when it has
/// passed, `None` when absent or unparseable.
pub fn parse_ratelimit_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get("x-ratelimit-reset")?.to_str().ok()?.trim();
    let secs: u64 = value.parse().ok()?;
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(secs))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Sends with the [`default_verdict`]. `make` builds the request afresh for each attempt.
pub async fn send(
    policy: &RetryPolicy,
    what: &str,
    make: impl FnMut() -> RequestBuilder,
) -> Result<HttpReply, RetryError> {
    send_with(policy, what, make, default_verdict).await
}

/// Sends, letting `classify` decide which replies are retried. Transport errors
/// (connection failures, timeouts, a body cut short) are always retried.
pub async fn send_with(
    policy: &RetryPolicy,
    what: &str,
    mut make: impl FnMut() -> RequestBuilder,
    classify: impl Fn(&HttpReply) -> Verdict,
) -> Result<HttpReply, RetryError> {
    let start = Instant::now();
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let request = make().timeout(policy.request_timeout);
        let (after, last) = match attempt_once(request).await {
            Ok(reply) => match classify(&reply) {
                Verdict::Done => return Ok(reply),
                Verdict::Retry { after } => (after, format!("HTTP {}", reply.status.as_u16())),
            },
            Err(e) if e.is_builder() => {
                return Err(RetryError::Build(format!(
                    "{what}: cannot build the request: {}",
                    describe(&e)
                )));
            }
            Err(e) => (None, describe(&e)),
        };
        let exhausted = |last: String| RetryError::Exhausted {
            what: what.to_owned(),
            attempts: attempt,
            last,
        };
        if attempt >= max_attempts {
            return Err(exhausted(last));
        }
        let wait = after.unwrap_or_else(|| policy.backoff(attempt - 1));
        let remaining = policy.max_total.saturating_sub(start.elapsed());
        if wait > remaining {
            tracing::warn!(
                what,
                attempt,
                wait_ms = wait.as_millis() as u64,
                last = %last,
                "not retrying: the wait would exceed the time budget"
            );
            return Err(exhausted(format!(
                "{last} (the next wait, {} ms, would exceed the time budget)",
                wait.as_millis()
            )));
        }
        tracing::warn!(
            what,
            attempt,
            max_attempts,
            wait_ms = wait.as_millis() as u64,
            server_wait = after.is_some(),
            last = %last,
            "retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

async fn attempt_once(request: RequestBuilder) -> Result<HttpReply, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    tracing::debug!(
        status = status.as_u16(),
        body_len = body.len(),
        "http reply"
    );
    Ok(HttpReply {
        status,
        headers,
        body,
    })
}

/// The error kind and its innermost cause, without the URL (whose query may hold a
/// token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection error"
    } else if e.is_body() || e.is_decode() {
        "error reading the response body"
    } else if e.is_builder() {
        "invalid request"
    } else if e.is_redirect() {
        "redirect error"
    } else {
        "request error"
    };
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    if std::ptr::addr_eq(root, e as &dyn std::error::Error) {
        return kind.to_owned();
    }
    let cause = root.to_string();
    if cause.contains("://") || cause.is_empty() || kind == "timeout" {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::{HeaderValue, StatusCode as AxStatus};
    use axum::response::{IntoResponse, Response};
    use axum::routing::any;

    /// A server whose handler gets the 0-based request number; returns its base URL and
    /// the request counter.
    async fn serve<F>(handler: F) -> (String, Arc<AtomicUsize>)
    where
        F: Fn(usize) -> futures::future::BoxFuture<'static, Response> + Send + Sync + 'static,
    {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = count.clone();
        let handler = Arc::new(handler);
        let app = Router::new().route(
            "/{*path}",
            any(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                async move { handler(n).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (format!("http://{addr}"), count)
    }

    fn status(code: u16) -> Response {
        AxStatus::from_u16(code).unwrap().into_response()
    }

    fn boxed(r: Response) -> futures::future::BoxFuture<'static, Response> {
        Box::pin(async move { r })
    }

    #[tokio::test]
    async fn transient_503s_then_success() {
        let (url, count) = serve(|n| {
            boxed(if n < 2 {
                status(503)
            } else {
                (AxStatus::OK, "{\"ok\":true}").into_response()
            })
        })
        .await;
        let client = reqwest::Client::new();
        let reply = send(&RetryPolicy::immediate(5), "get thing", || {
            client.get(format!("{url}/thing?token=secret"))
        })
        .await
        .unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json::<serde_json::Value>().unwrap()["ok"], true);
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn too_many_requests_with_retry_after_zero_is_retried() {
        let (url, count) = serve(|n| {
            boxed(if n == 0 {
                let mut r = status(429);
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from_static("0"));
                r
            } else {
                status(204)
            })
        })
        .await;
        let client = reqwest::Client::new();
        let reply = send(&RetryPolicy::immediate(3), "post", || {
            client.post(format!("{url}/x"))
        })
        .await
        .unwrap();
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn client_errors_are_returned_at_once() {
        let (url, count) =
            serve(|_| boxed((AxStatus::BAD_REQUEST, "{\"error\":\"bad\"}").into_response())).await;
        let client = reqwest::Client::new();
        let reply = send(&RetryPolicy::immediate(5), "post", || {
            client.post(format!("{url}/x"))
        })
        .await
        .unwrap();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(&reply.body[..], b"{\"error\":\"bad\"}");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn always_500_exhausts_after_max_attempts() {
        let (url, count) = serve(|_| boxed(status(500))).await;
        let client = reqwest::Client::new();
        let err = send(&RetryPolicy::immediate(3), "create job", || {
            client.post(format!("{url}/jobs?access_token=hunter2"))
        })
        .await
        .unwrap_err();
        assert_eq!(
            err,
            RetryError::Exhausted {
                what: "create job".into(),
                attempts: 3,
                last: "HTTP 500".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "create job: gave up after 3 attempt(s), last: HTTP 500"
        );
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn slow_handler_times_out_and_is_retried() {
        let (url, count) = serve(|n| {
            Box::pin(async move {
                if n == 0 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                status(200)
            })
        })
        .await;
        let client = reqwest::Client::new();
        let policy = RetryPolicy {
            request_timeout: Duration::from_millis(200),
            ..RetryPolicy::immediate(3)
        };
        let reply = send(&policy, "get", || client.get(format!("{url}/slow")))
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(count.load(Ordering::SeqCst), 2);

        // Always slow: exhausted, and the reason says timeout without the URL.
        let (url, count) = serve(|_| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                status(200)
            })
        })
        .await;
        let policy = RetryPolicy {
            request_timeout: Duration::from_millis(100),
            ..RetryPolicy::immediate(2)
        };
        let err = send(&policy, "get", || {
            client.get(format!("{url}/slow?token=s3cr3t"))
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "get: gave up after 2 attempt(s), last: timeout"
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn classifier_can_turn_a_429_into_back_pressure() {
        let (url, count) = serve(|_| {
            boxed(
                (
                    AxStatus::TOO_MANY_REQUESTS,
                    "{\"statusCode\":429,\"error\":\"Too Many Requests\",\"message\":\"There are 2 active import users jobs\"}",
                )
                    .into_response(),
            )
        })
        .await;
        let client = reqwest::Client::new();
        let reply = send_with(
            &RetryPolicy::immediate(5),
            "create import job",
            || client.post(format!("{url}/api/v2/jobs/users-imports")),
            |reply| {
                if reply.status == StatusCode::TOO_MANY_REQUESTS
                    && reply.text_lossy().contains("active import users jobs")
                {
                    Verdict::Done
                } else {
                    default_verdict(reply)
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_server_wait_beyond_the_budget_stops_early() {
        let (url, count) = serve(|_| {
            let mut r = status(429);
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("3600"));
            boxed(r)
        })
        .await;
        let client = reqwest::Client::new();
        let policy = RetryPolicy {
            max_total: Duration::from_secs(60),
            ..RetryPolicy::immediate(5)
        };
        let err = send(&policy, "get", || client.get(format!("{url}/x")))
            .await
            .unwrap_err();
        match err {
            RetryError::Exhausted { attempts, last, .. } => {
                assert_eq!(attempts, 1);
                assert!(
                    last.starts_with("HTTP 429 (the next wait, 3600000 ms"),
                    "{last}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn connection_refused_is_retried_then_exhausted() {
        // Bind then drop a listener so the port is (very likely) closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = reqwest::Client::new();
        let mut made = 0;
        let err = send(&RetryPolicy::immediate(3), "get", || {
            made += 1;
            client.get(format!("http://{addr}/x?token=s3cr3t"))
        })
        .await
        .unwrap_err();
        assert_eq!(made, 3);
        let text = err.to_string();
        assert!(
            text.starts_with("get: gave up after 3 attempt(s), last: connection error"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"));
    }

    #[tokio::test]
    async fn bad_url_is_a_build_error_without_retry() {
        let client = reqwest::Client::new();
        let mut made = 0;
        let err = send(&RetryPolicy::immediate(3), "get", || {
            made += 1;
            client.get("not a url")
        })
        .await
        .unwrap_err();
        assert!(matches!(err, RetryError::Build(_)), "{err:?}");
        assert_eq!(made, 1);
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "120")]), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", " 0 ")]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT")]),
                now
            ),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")]),
                now
            ),
            Some(Duration::ZERO),
            "a past date means now"
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "-5")]), now),
            None
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "soon")]), now),
            None
        );
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn ratelimit_reset_is_a_unix_timestamp() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        assert_eq!(
            parse_ratelimit_reset(&headers(&[("x-ratelimit-reset", "1700000003")]), now),
            Some(Duration::from_millis(2_750))
        );
        assert_eq!(
            parse_ratelimit_reset(&headers(&[("x-ratelimit-reset", "1600000000")]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_ratelimit_reset(&headers(&[("x-ratelimit-reset", "abc")]), now),
            None
        );
        assert_eq!(parse_ratelimit_reset(&HeaderMap::new(), now), None);
    }

    fn reply(code: u16, pairs: &[(&'static str, &'static str)]) -> HttpReply {
        HttpReply {
            status: StatusCode::from_u16(code).unwrap(),
            headers: headers(pairs),
            body: Bytes::new(),
        }
    }

    #[test]
    fn default_verdicts() {
        assert_eq!(
            default_verdict(&reply(429, &[("retry-after", "7")])),
            Verdict::Retry {
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            default_verdict(&reply(429, &[])),
            Verdict::Retry { after: None }
        );
        // A reset far in the future (clock skew) is capped.
        assert_eq!(
            default_verdict(&reply(429, &[("x-ratelimit-reset", "99999999999")])),
            Verdict::Retry {
                after: Some(MAX_RESET_WAIT)
            }
        );
        for code in [408, 500, 502, 503, 504] {
            assert_eq!(
                default_verdict(&reply(code, &[])),
                Verdict::Retry { after: None },
                "{code}"
            );
        }
        for code in [200, 201, 202, 204, 400, 401, 403, 404, 409, 413, 501] {
            assert_eq!(default_verdict(&reply(code, &[])), Verdict::Done, "{code}");
        }
    }

    #[test]
    fn backoff_is_full_jitter_under_the_cap() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        for retry in 0..40 {
            let ceiling =
                Duration::from_millis(100 * 2u64.pow(retry.min(10))).min(policy.max_delay);
            for _ in 0..20 {
                assert!(policy.backoff(retry) <= ceiling);
            }
        }
        assert_eq!(RetryPolicy::immediate(3).backoff(5), Duration::ZERO);
        // Jitter: not always the same value.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn send_futures_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let client = reqwest::Client::new();
        let policy = RetryPolicy::immediate(1);
        let future = send(&policy, "x", || client.get("http://127.0.0.1:9/"));
        assert_send(&future);
        let future = send_with(
            &policy,
            "x",
            || client.get("http://127.0.0.1:9/"),
            default_verdict,
        );
        assert_send(&future);
    }

    #[test]
    fn reply_debug_hides_the_body() {
        let r = HttpReply {
            status: StatusCode::OK,
            headers: headers(&[("set-cookie", "session=abc")]),
            body: Bytes::from_static(b"{\"access_token\":\"eyJhbGciOi\"}"),
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("eyJhbGciOi"));
        assert!(!shown.contains("session=abc"));
        assert!(shown.contains("200"));
    }
}
