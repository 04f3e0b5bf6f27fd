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
//! A job submission is not idempotent: sent twice, it may create two jobs. With
//! [`Idempotency::NotIdempotent`] ([`send_call`]) a request is retried only when it
//! certainly did not reach the server (connection refused, DNS, TLS: reqwest's
//! `is_connect`) or the server refused it unprocessed (429); a timeout, a connection
//! lost after sending, a body cut short or a 5xx end with [`RetryError::InDoubt`]: the
//! server may have acted on it, and only the caller can find out.
//!
//! A [`Call`] may also carry a shared [`Pacer`](crate::pace::Pacer): every attempt then
//! waits for its permit, and the `x-ratelimit-limit/remaining/reset` headers of every
//! answer are handed to it.
//!
//! Logs say what was retried (the caller's `what`, attempt, wait, status or transport
//! error kind); never URLs with their query, headers or bodies, which may carry tokens.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};

use crate::pace::{Pacer, RateInfo};

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
    /// A request that must not be sent twice ([`Idempotency::NotIdempotent`]) went out
    /// and its answer was lost or was a server error: the server may have acted on it.
    #[error(
        "{what}: the request was sent but its answer was lost ({last}); the provider may have acted on it"
    )]
    InDoubt {
        /// The caller's description of the call.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// What happened: `timeout`, `HTTP 500`, `request error: …` (never a URL
        /// query, header or body).
        last: String,
    },
}

/// Whether a request may be sent again once it went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Idempotency {
    /// Reads, deletes, token requests: retried as the policy says.
    #[default]
    Idempotent,
    /// Job submissions: retried only when not sent (a connection error) or refused
    /// unprocessed (429); otherwise [`RetryError::InDoubt`].
    NotIdempotent,
}

/// How one call is made, beyond the policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Call<'a> {
    /// Whether the request may be sent again after it went out.
    pub idempotency: Idempotency,
    /// The tenant's shared pacer, if the provider announces its rate limit.
    pub pacer: Option<&'a Pacer>,
}

impl Call<'_> {
    /// A job submission (not idempotent, not paced).
    pub fn submission() -> Self {
        Self {
            idempotency: Idempotency::NotIdempotent,
            pacer: None,
        }
    }
}

/// The `x-ratelimit-limit`, `-remaining` and `-reset` headers of an answer, if
/// `remaining` and `reset` are there and are numbers.
pub fn rate_info(headers: &HeaderMap) -> Option<RateInfo> {
    let number =
        |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    Some(RateInfo {
        limit: number("x-ratelimit-limit"),
        remaining: number("x-ratelimit-remaining")?,
        reset_unix: number("x-ratelimit-reset")?,
    })
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
    make: impl FnMut() -> RequestBuilder,
    classify: impl Fn(&HttpReply) -> Verdict,
) -> Result<HttpReply, RetryError> {
    send_call(policy, what, Call::default(), make, classify).await
}

/// [`send_with`] for a [`Call`]: a request that is not idempotent is never sent again
/// once it may have reached the server, and a pacer, if given, holds every attempt
/// back while the provider's bucket is empty.
pub async fn send_call(
    policy: &RetryPolicy,
    what: &str,
    call: Call<'_>,
    mut make: impl FnMut() -> RequestBuilder,
    classify: impl Fn(&HttpReply) -> Verdict,
) -> Result<HttpReply, RetryError> {
    let start = Instant::now();
    let max_attempts = policy.max_attempts.max(1);
    let once = call.idempotency == Idempotency::NotIdempotent;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let request = make().timeout(policy.request_timeout);
        let permit = match call.pacer {
            Some(p) => Some(p.acquire().await),
            None => None,
        };
        let answer = attempt_once(request).await;
        if let Some(permit) = permit {
            permit.observe(answer.as_ref().ok().and_then(|r| rate_info(&r.headers)));
        }
        let in_doubt = |last: String| RetryError::InDoubt {
            what: what.to_owned(),
            attempts: attempt,
            last,
        };
        let (after, last) = match answer {
            Ok(reply) => match classify(&reply) {
                Verdict::Done => return Ok(reply),
                // A 5xx (or anything else to retry but a 429, which is refused
                // before it is processed) may come after the server acted on it.
                Verdict::Retry { .. } if once && reply.status != StatusCode::TOO_MANY_REQUESTS => {
                    return Err(in_doubt(format!("HTTP {}", reply.status.as_u16())));
                }
                Verdict::Retry { after } => (after, format!("HTTP {}", reply.status.as_u16())),
            },
            Err(e) if e.is_builder() => {
                return Err(RetryError::Build(format!(
                    "{what}: cannot build the request: {}",
                    describe(&e)
                )));
            }
            // A connection that was never made carried nothing: safe to send again.
            // Anything else (a timeout, a connection lost after sending, a body cut
            // short) may have reached the server.
            Err(e) if once && !e.is_connect() => return Err(in_doubt(describe(&e))),
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
mod tests;
