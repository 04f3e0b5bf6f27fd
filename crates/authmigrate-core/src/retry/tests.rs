//! Tests of the retry layer, against servers on 127.0.0.1:0.

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
async fn a_submission_is_in_doubt_after_a_5xx_or_a_timeout_and_never_resent() {
    let client = reqwest::Client::new();
    let (url, count) = serve(|_| boxed(status(500))).await;
    let err = send_call(
        &RetryPolicy::immediate(5),
        "create job",
        Call::submission(),
        || client.post(format!("{url}/jobs?token=s3cr3t")),
        default_verdict,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        RetryError::InDoubt {
            what: "create job".into(),
            attempts: 1,
            last: "HTTP 500".into()
        }
    );
    assert!(!err.to_string().contains("s3cr3t"));
    assert_eq!(count.load(Ordering::SeqCst), 1);

    let (url, count) = serve(|_| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            status(202)
        })
    })
    .await;
    let policy = RetryPolicy {
        request_timeout: Duration::from_millis(100),
        ..RetryPolicy::immediate(5)
    };
    let err = send_call(
        &policy,
        "create job",
        Call::submission(),
        || client.post(format!("{url}/jobs")),
        default_verdict,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, RetryError::InDoubt { last, attempts: 1, .. } if last == "timeout"),
        "{err:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_submission_whose_connection_drops_after_sending_is_in_doubt() {
    // A server that reads the request and closes the connection without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = accepted.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 4096];
            let _ = sock.read(&mut buf).await;
            drop(sock);
        }
    });
    let client = reqwest::Client::new();
    let err = send_call(
        &RetryPolicy::immediate(5),
        "create job",
        Call::submission(),
        || client.post(format!("http://{addr}/jobs")).body("[]"),
        default_verdict,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RetryError::InDoubt { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // The same request as a read is retried.
    let err = send(&RetryPolicy::immediate(3), "read job", || {
        client.get(format!("http://{addr}/jobs"))
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, RetryError::Exhausted { attempts: 3, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_submission_is_resent_after_a_429_or_a_refused_connection() {
    let (url, count) = serve(|n| {
        boxed(if n == 0 {
            let mut r = status(429);
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("0"));
            r
        } else {
            status(202)
        })
    })
    .await;
    let client = reqwest::Client::new();
    let reply = send_call(
        &RetryPolicy::immediate(3),
        "create job",
        Call::submission(),
        || client.post(format!("{url}/jobs")),
        default_verdict,
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(count.load(Ordering::SeqCst), 2);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut made = 0;
    let err = send_call(
        &RetryPolicy::immediate(3),
        "create job",
        Call::submission(),
        || {
            made += 1;
            client.post(format!("http://{addr}/jobs"))
        },
        default_verdict,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RetryError::Exhausted { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(made, 3);
}

#[tokio::test]
async fn a_paced_call_hands_the_rate_headers_to_the_pacer() {
    let (url, _count) = serve(|_| {
        let mut r = status(200);
        let reset = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        let h = r.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from_static("10"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from(reset));
        boxed(r)
    })
    .await;
    let client = reqwest::Client::new();
    let pacer = Pacer::new();
    let call = Call {
        pacer: Some(&pacer),
        ..Call::default()
    };
    for _ in 0..2 {
        send_call(
            &RetryPolicy::immediate(1),
            "get",
            call,
            || client.get(format!("{url}/x")),
            default_verdict,
        )
        .await
        .unwrap();
    }
    // The first answer said the bucket was empty until the next second: the second
    // request waited.
    assert_eq!(pacer.waits(), 1);
}

#[test]
fn rate_headers_are_read_as_numbers() {
    let h = headers(&[
        ("x-ratelimit-limit", "50"),
        ("x-ratelimit-remaining", " 7 "),
        ("x-ratelimit-reset", "1700000000"),
    ]);
    assert_eq!(
        rate_info(&h),
        Some(RateInfo {
            limit: Some(50),
            remaining: 7,
            reset_unix: 1_700_000_000
        })
    );
    assert_eq!(rate_info(&headers(&[("x-ratelimit-remaining", "7")])), None);
    assert_eq!(rate_info(&HeaderMap::new()), None);
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
        let ceiling = Duration::from_millis(100 * 2u64.pow(retry.min(10))).min(policy.max_delay);
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
