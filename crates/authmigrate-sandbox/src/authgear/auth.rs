//! Admin API authentication (§4.1): `Authorization: Bearer <RS256 JWT>`, `kid` = the
//! project's key id, `aud` containing the project id, `exp`/`iat`/`nbf` checked only
//! when present, with 5 minutes of skew. Any failure is a 403 `Forbidden` text body.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Value, json};

use super::AuthgearState;

/// Accepted clock skew, in seconds.
const SKEW: f64 = 300.0;

/// Rejects requests without a valid admin JWT.
pub(super) async fn require_admin(
    State(state): State<Arc<AuthgearState>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(token) if verify(&state, token) => next.run(request).await,
        _ => forbidden(),
    }
}

/// What Go's `http.Error(w, "Forbidden", 403)` writes.
fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        "Forbidden\n",
    )
        .into_response()
}

fn verify(state: &AuthgearState, token: &str) -> bool {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return false;
    };
    if header.alg != Algorithm::RS256 || header.kid.as_deref() != Some(state.key_id()) {
        return false;
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let Ok(data) = jsonwebtoken::decode::<Value>(token, &state.decoding_key, &validation) else {
        return false;
    };
    claims_ok(&data.claims, state.project_id(), now_seconds())
}

fn now_seconds() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

/// jwx `jwt.Validate(WithAudience(project), WithAcceptableSkew(5m))`.
fn claims_ok(claims: &Value, project_id: &str, now: f64) -> bool {
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == project_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(project_id)),
        _ => false,
    };
    if !aud_ok {
        return false;
    }
    // A time claim that is present must be a number.
    let time = |name: &str| -> Result<Option<f64>, ()> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or(()),
        }
    };
    let (Ok(exp), Ok(iat), Ok(nbf)) = (time("exp"), time("iat"), time("nbf")) else {
        return false;
    };
    if exp.is_some_and(|exp| now - SKEW > exp) {
        return false;
    }
    if iat.is_some_and(|iat| iat > now + SKEW) {
        return false;
    }
    if nbf.is_some_and(|nbf| nbf > now + SKEW) {
        return false;
    }
    true
}

/// Signs a token the server accepts.
pub(super) fn mint(state: &AuthgearState, ttl: Duration) -> String {
    let now = jiff::Timestamp::now().as_second();
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(state.key_id().to_owned());
    let claims = json!({
        "aud": state.project_id(),
        "iat": now,
        "exp": now.saturating_add(ttl),
    });
    // Signing with a key we generated and loaded ourselves cannot fail in practice;
    // an empty token is simply rejected by the server.
    jsonwebtoken::encode(&header, &claims, &state.encoding_key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_rules() {
        let now = 1_000_000.0;
        assert!(claims_ok(&json!({"aud": "p"}), "p", now));
        assert!(claims_ok(&json!({"aud": ["x", "p"]}), "p", now));
        assert!(!claims_ok(&json!({"aud": "x"}), "p", now));
        assert!(!claims_ok(&json!({}), "p", now));
        assert!(claims_ok(
            &json!({"aud": "p", "exp": now - 299.0}),
            "p",
            now
        ));
        assert!(!claims_ok(
            &json!({"aud": "p", "exp": now - 301.0}),
            "p",
            now
        ));
        assert!(claims_ok(
            &json!({"aud": "p", "iat": now + 299.0}),
            "p",
            now
        ));
        assert!(!claims_ok(
            &json!({"aud": "p", "iat": now + 301.0}),
            "p",
            now
        ));
        assert!(!claims_ok(
            &json!({"aud": "p", "nbf": now + 301.0}),
            "p",
            now
        ));
        assert!(!claims_ok(&json!({"aud": "p", "exp": "soon"}), "p", now));
    }
}
