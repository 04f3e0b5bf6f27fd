//! Authgear's HTTP plumbing: APIError bodies, the JSON content-type rule, the body limit,
//! JSON syntax errors, ids and timestamps.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rand::Rng;
use serde_json::{Value, json};

use super::{AuthgearState, object};

/// Crockford-style base32 alphabet of `pkg/util/base32`.
const BASE32: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The import body limit (`BodyMaxSize = 500 * 1000`).
pub(super) const IMPORT_BODY_LIMIT: usize = 500_000;

/// The admin middleware's body limit (`MaxBodySize = 1 MiB`).
pub(super) const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

/// An APIError object (`name`, `reason`, `message`, `code`, optional `info`).
pub(super) fn api_error(name: &str, reason: &str, message: &str, info: Option<Value>) -> Value {
    let code = match name {
        "BadRequest" | "Invalid" => 400,
        "Unauthorized" => 401,
        "Forbidden" => 403,
        "NotFound" => 404,
        "AlreadyExists" | "DataRace" => 409,
        "RequestEntityTooLarge" => 413,
        "TooManyRequest" => 429,
        "ServiceUnavailable" => 503,
        _ => 500,
    };
    let mut err = object([
        ("name", json!(name)),
        ("reason", json!(reason)),
        ("message", json!(message)),
        ("code", json!(code)),
    ]);
    if let (Some(info), Some(map)) = (info, err.as_object_mut()) {
        map.insert("info".to_owned(), info);
    }
    err
}

/// `InternalError`/`UnexpectedError`, what any untranslated Go error becomes.
pub(super) fn unexpected_error() -> Value {
    api_error(
        "InternalError",
        "UnexpectedError",
        "unexpected error occurred",
        None,
    )
}

/// `{"error": err}` with the HTTP status taken from `err.code`.
pub(super) fn error_response(err: Value) -> Response {
    let status = err
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(json!({ "error": err }))).into_response()
}

/// `{"result": result}` with 200.
pub(super) fn result_response(result: Value) -> Response {
    axum::Json(json!({ "result": result })).into_response()
}

/// `IsJSONContentType`: `application/json`, optionally with `charset=utf-8` only.
pub(super) fn check_json_content_type(headers: &HeaderMap) -> Result<(), Value> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_content_type);
    if ok {
        Ok(())
    } else {
        Err(api_error(
            "BadRequest",
            "BadRequest",
            "request content type is invalid",
            None,
        ))
    }
}

fn is_json_content_type(value: &str) -> bool {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| {
        let param = param.trim();
        let Some((k, v)) = param.split_once('=') else {
            return false;
        };
        let v = v.trim().trim_matches('"');
        k.trim().eq_ignore_ascii_case("charset") && v.eq_ignore_ascii_case("utf-8")
    })
}

/// The admin router's content-type middleware (after authorization): a request with a
/// body whose media type is not JSON (or, on the GraphQL route, `application/graphql`)
/// gets 415 `text/plain` `invalid content type: <type>`, like Go's `http.Error`. On the
/// GraphQL route a `charset` other than `utf-8`/`utf8` is refused the same way; on the
/// other routes JSON with a bad parameter goes on to the handler's 400.
pub(super) async fn content_type_gate(request: Request, next: Next) -> Response {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return next.run(request).await;
    }
    let raw = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let graphql = request.uri().path().ends_with("/graphql");
    let mut parts = raw.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let media_ok = media == "application/json" || (graphql && media == "application/graphql");
    let charset_ok = !graphql
        || parts.all(|p| match p.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
                let v = v.trim().trim_matches('"');
                v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("utf8")
            }
            _ => true,
        });
    if media_ok && charset_ok {
        return next.run(request).await;
    }
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("invalid content type: {raw}\n"),
    )
        .into_response()
}

/// A response whose body fails on first read: hyper aborts the connection and the
/// client sees a transport error, not an answer.
pub(super) fn dropped() -> Response {
    let stream = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: connection dropped",
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn clock_json(state: &AuthgearState) -> Response {
    let now = state.now();
    let offset = now.duration_since(jiff::Timestamp::now());
    axum::Json(json!({ "now": now.to_string(), "offset_seconds": offset.as_secs() }))
        .into_response()
}

/// `GET /_sandbox/authgear/clock`: `{"now": RFC 3339, "offset_seconds": n}`.
pub(super) async fn clock_get(State(state): State<Arc<AuthgearState>>) -> Response {
    clock_json(&state)
}

/// `POST /_sandbox/authgear/clock` with `{"now": "<RFC 3339>"}` or
/// `{"advance": "<duration>"}` (`25h`, `90s`, `-1h`, jiff's friendly format).
pub(super) async fn clock_set(
    State(state): State<Arc<AuthgearState>>,
    body: axum::body::Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let bad = || {
        error_response(api_error(
            "BadRequest",
            "BadRequest",
            "body must be {\"now\": RFC 3339} or {\"advance\": duration}",
            None,
        ))
    };
    if let Some(now) = v.get("now").and_then(Value::as_str) {
        let Ok(ts) = now.parse::<jiff::Timestamp>() else {
            return bad();
        };
        state.set_clock(ts);
    } else if let Some(by) = v.get("advance").and_then(Value::as_str) {
        let Ok(d) = by.parse::<jiff::SignedDuration>() else {
            return bad();
        };
        state.advance_clock(d);
    } else {
        return bad();
    }
    clock_json(&state)
}

/// `POST /_sandbox/authgear/import-faults` with `{"nth": n, "fault": "error500" | "drop" |
/// null}`: the nth accepted import POST (0-based, counting from the project's start)
/// fails that way after its job was created; `null` clears it.
pub(super) async fn import_faults_set(
    State(state): State<Arc<AuthgearState>>,
    body: axum::body::Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let nth = v
        .get("nth")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    let fault = match v.get("fault") {
        Some(Value::String(f)) if f == "error500" => Some(Some(super::ImportFault::Error500)),
        Some(Value::String(f)) if f == "drop" => Some(Some(super::ImportFault::Drop)),
        Some(Value::Null) => Some(None),
        _ => None,
    };
    let (Some(nth), Some(fault)) = (nth, fault) else {
        return error_response(api_error(
            "BadRequest",
            "BadRequest",
            "body must be {\"nth\": integer, \"fault\": \"error500\" | \"drop\" | null}",
            None,
        ));
    };
    state.set_import_fault(nth, fault);
    axum::Json(json!({ "nth": nth, "fault": v["fault"] })).into_response()
}

/// Reads the body; more than `limit` bytes gives 413 `JSONTooLarge` with `info.limit`.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, Value> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut too_large = false;
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Err(api_error(
                "BadRequest",
                "BadRequest",
                "failed to read request body",
                None,
            ));
        };
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            too_large = true;
            // Drain a bounded amount so the client sees the answer, not a reset.
            if seen > 16 * ADMIN_BODY_LIMIT {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    if too_large {
        return Err(api_error(
            "RequestEntityTooLarge",
            "JSONTooLarge",
            "request body too large",
            Some(json!({ "limit": limit })),
        ));
    }
    Ok(buf)
}

/// Parses JSON; a syntax error gives 400 `BadRequest`/`InvalidJSON` with `byte_offset`,
/// worded like Go's `encoding/json`.
pub(super) fn parse_json(bytes: &[u8]) -> Result<Value, Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        let (message, offset) = if e.is_eof() {
            ("unexpected end of JSON input".to_owned(), bytes.len())
        } else {
            let offset = byte_offset(bytes, e.line(), e.column());
            let ch = bytes
                .get(offset.saturating_sub(1))
                .map(|b| *b as char)
                .unwrap_or(' ');
            (
                format!("invalid character '{ch}' looking for beginning of value"),
                offset,
            )
        };
        api_error(
            "BadRequest",
            "InvalidJSON",
            &message,
            Some(json!({ "byte_offset": offset })),
        )
    })
}

fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut current_line = 1;
    let mut line_start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if current_line == line {
            break;
        }
        if *b == b'\n' {
            current_line += 1;
            line_start = i + 1;
        }
    }
    (line_start + column).min(bytes.len())
}

/// `prefix` + 32 random base32 characters.
pub(super) fn new_id(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    for _ in 0..32 {
        id.push(BASE32[rng.gen_range(0..BASE32.len())] as char);
    }
    id
}

/// RFC 3339 in UTC, like Go's `time.Time` JSON encoding.
pub(super) fn rfc3339(ts: jiff::Timestamp) -> Value {
    Value::String(ts.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_rules() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("Application/JSON;charset=UTF-8"));
        assert!(!is_json_content_type("application/json; charset=latin1"));
        assert!(!is_json_content_type("application/json; foo=bar"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/jsonx"));
    }

    #[test]
    fn ids_use_the_base32_alphabet() {
        let id = new_id("userimport_");
        assert_eq!(id.len(), "userimport_".len() + 32);
        assert!(
            id["userimport_".len()..]
                .bytes()
                .all(|b| BASE32.contains(&b))
        );
    }
}
