//! `POST /_sandbox/authgear/login` (sandbox only, no admin auth): a stand-in for an end
//! user's login, to prove what an import produced.
//!
//! Body `{"login_id": …, "password": …, "totp"?: "123456"}`. The login ID is normalised
//! like Authgear's. Answers:
//! - 200 `{"user_id": …}` (and the user's `lastLoginAt` / `last_login_at` is set): the primary password verifies (bcrypt `$2a$`/`$2b$`/`$2y$`)
//!   and, for a user with a TOTP authenticator, `totp` is a valid code (RFC 6238,
//!   SHA-1, 30 s, 6 digits, ±1 step, on the project's clock) of one of them;
//! - 401 `Unauthorized`/`InvalidCredentials`: unknown login ID, no password, wrong
//!   password, or a wrong TOTP code;
//! - 401 `Unauthorized`/`TOTPRequired` "totp code required": the password is right, the
//!   user has TOTP and no `totp` was sent;
//! - 403 `Forbidden`/`UserDisabled`: credentials right, but the user is disabled (by flag
//!   or outside its `account_valid_from`/`until` period).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::{api_error, error_response};
use super::store::verify_password;
use super::{AuthgearState, object};

/// The handler.
pub(super) async fn login(
    State(state): State<Arc<AuthgearState>>,
    body: axum::body::Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let login_id = v.get("login_id").and_then(Value::as_str);
    let password = v.get("password").and_then(Value::as_str);
    let totp = v.get("totp").and_then(Value::as_str).map(str::to_owned);
    let (Some(login_id), Some(password)) = (login_id, password) else {
        return error_response(api_error(
            "BadRequest",
            "BadRequest",
            "body must be {\"login_id\": string, \"password\": string, \"totp\"?: string}",
            None,
        ));
    };
    let password = password.to_owned();
    let now = state.now();
    let found = {
        let inner = state.lock();
        inner
            .store
            .find_by_login_id(&state.config, login_id)
            .map(|u| {
                (
                    u.id.clone(),
                    u.password_hash.clone(),
                    u.is_disabled(now),
                    u.totp_secrets.clone(),
                )
            })
    };
    let unauthorized = |reason: &str, message: &str| {
        error_response(api_error("Unauthorized", reason, message, None))
    };
    let Some((user_id, Some(hash), disabled, totps)) = found else {
        return unauthorized("InvalidCredentials", "invalid credentials");
    };
    // bcrypt is CPU-heavy; keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        return unauthorized("InvalidCredentials", "invalid credentials");
    }
    if !totps.is_empty() {
        let Some(code) = totp else {
            return unauthorized("TOTPRequired", "totp code required");
        };
        if !totps.iter().any(|s| super::totp::verify(s, &code, now)) {
            return unauthorized("InvalidCredentials", "invalid credentials");
        }
    }
    if disabled {
        return error_response(api_error(
            "Forbidden",
            "UserDisabled",
            "user is disabled",
            None,
        ));
    }
    {
        let mut inner = state.lock();
        if let Some(idx) = inner.store.position(&user_id) {
            let mut user = inner.store.users[idx].clone();
            user.last_login_at = Some(now);
            inner.store.replace(idx, user);
        }
    }
    (
        StatusCode::OK,
        axum::Json(object([("user_id", json!(user_id))])),
    )
        .into_response()
}
