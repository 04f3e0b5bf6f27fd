//! MFA: the MFA-secrets export Auth0 support hands over, and TOTP logins.
//!
//! - `GET /_sandbox/auth0/mfa-secrets[?connection=NAME]` stands in for the support
//!   ticket's MFA export: NDJSON, one row per enrolment, as auth0-rbac-orgs-mfa.md §5
//!   gives it (the only public example, WorkOS PR #8): `{"user_id","tenant","type":"otp",
//!   "otp_secret"}` for a TOTP factor, `{"user_id","tenant","type":"recovery-code",
//!   "recovery_code":"<bcrypt hash>"}` for a recovery code (only users seeded with one:
//!   recovery codes cannot be imported).
//! - Logging in: the password-realm grant of a user with a `totp` factor answers 403
//!   `mfa_required` with an `mfa_token` (Auth0's resource-owner-password flow with MFA,
//!   docs-v2 `authenticate-using-ropg-flow-with-mfa`); `grant_type=
//!   http://auth0.com/oauth/grant-type/mfa-otp` with `client_id`, `mfa_token` and `otp`
//!   then gives the token. Codes are RFC 6238 (HMAC-SHA1, 30 s steps, 6 digits), one
//!   step of clock drift either way accepted, on the emulator's clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hmac::{KeyInit, Mac};
use serde_json::json;

use super::handlers::{oauth_error, query_get, query_pairs};
use super::{Auth0State, User};

/// How long an `mfa_token` stays valid (Auth0 documents 10 minutes for it).
const MFA_TOKEN_TTL: Duration = Duration::from_secs(600);

/// Pending MFA challenges and seeded recovery codes (`Debug` shows counts only).
#[derive(Default)]
pub(crate) struct MfaState {
    /// `mfa_token` → (user id, expiry).
    pending: HashMap<String, (String, Instant)>,
    /// user id → bcrypt hash of a recovery code (seeded only).
    pub(crate) recovery_codes: HashMap<String, String>,
}

impl std::fmt::Debug for MfaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaState")
            .field("pending", &self.pending.len())
            .field("recovery_codes", &self.recovery_codes.len())
            .finish()
    }
}

pub(super) fn routes() -> axum::Router<Arc<Auth0State>> {
    axum::Router::new().route("/_sandbox/auth0/mfa-secrets", get(mfa_secrets))
}

/// The TOTP secret of a user's imported factors.
pub(crate) fn totp_secret(user: &User) -> Option<&str> {
    user.mfa_factors
        .iter()
        .find_map(|f| f.get("totp")?.get("secret")?.as_str())
}

async fn mfa_secrets(State(state): State<Arc<Auth0State>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let connection = query_get(&pairs, "connection");
    let inner = state.lock();
    let mut out = String::new();
    let tenant = &state.config.tenant;
    for u in inner
        .users
        .iter()
        .filter(|u| connection.is_none_or(|c| u.connection == c))
    {
        let id = u.user_id();
        let mut rows = Vec::new();
        if let Some(secret) = totp_secret(u) {
            rows.push(
                json!({"user_id": id, "tenant": tenant, "type": "otp", "otp_secret": secret}),
            );
        }
        if let Some(hash) = inner.mfa.recovery_codes.get(&id) {
            rows.push(json!({"user_id": id, "tenant": tenant, "type": "recovery-code", "recovery_code": hash}));
        }
        for r in rows {
            out.push_str(&r.to_string());
            out.push('\n');
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        out,
    )
        .into_response()
}

impl Auth0State {
    /// Starts an MFA challenge for `user_id`: the 403 `mfa_required` answer.
    pub(super) fn mfa_required(&self, user_id: &str) -> Response {
        let mut inner = self.lock();
        let token = inner.random_alnum(40);
        let expires = inner.clock.now() + MFA_TOKEN_TTL;
        inner
            .mfa
            .pending
            .insert(token.clone(), (user_id.to_owned(), expires));
        (
            StatusCode::FORBIDDEN,
            Json(json!({
                "error": "mfa_required",
                "error_description": "Multifactor authentication required",
                "mfa_token": token,
            })),
        )
            .into_response()
    }

    /// The `mfa-otp` grant: checks `mfa_token` and `otp`, then logs the user in.
    pub(super) fn mfa_otp(&self, params: &HashMap<String, String>) -> Response {
        let p = |k: &str| params.get(k).map(String::as_str);
        if p("client_id") != Some(self.config.client_id.as_str()) {
            return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
        }
        let (Some(mfa_token), Some(otp)) = (p("mfa_token"), p("otp")) else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: mfa_token or otp",
            );
        };
        let mut inner = self.lock();
        let now = inner.clock.now();
        let unix = inner.clock.unix_seconds();
        let Some((user_id, _)) = inner
            .mfa
            .pending
            .get(mfa_token)
            .filter(|(_, exp)| now < *exp)
            .cloned()
        else {
            return oauth_error(
                StatusCode::FORBIDDEN,
                "expired_token",
                "mfa_token is expired",
            );
        };
        let Some(index) = inner.users.iter().position(|u| u.user_id() == user_id) else {
            return oauth_error(StatusCode::FORBIDDEN, "invalid_grant", "Invalid otp_code.");
        };
        let ok = totp_secret(&inner.users[index])
            .and_then(base32_decode)
            .is_some_and(|key| totp_matches(&key, unix, otp));
        if !ok {
            return oauth_error(StatusCode::FORBIDDEN, "invalid_grant", "Invalid otp_code.");
        }
        inner.mfa.pending.remove(mfa_token);
        let stamp = inner.now_iso();
        let u = &mut inner.users[index];
        u.logins_count += 1;
        u.last_login = Some(stamp);
        u.logged_in_with_imported_hash = true;
        drop(inner);
        let (token, expires_in) = self.issue_token(&self.config.client_id);
        Json(json!({
            "access_token": token,
            "expires_in": expires_in,
            "scope": "openid",
            "token_type": "Bearer",
        }))
        .into_response()
    }

    /// The user's imported MFA factors without secrets: `["totp", "phone", …]`.
    pub fn mfa_factor_kinds(&self, user_id: &str) -> Vec<String> {
        self.lock()
            .users
            .iter()
            .find(|u| u.user_id() == user_id)
            .map(|u| {
                u.mfa_factors
                    .iter()
                    .filter_map(|f| f.as_object()?.keys().next().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The TOTP secret the user was enrolled with (tests compare it with what was
    /// migrated; the API never shows it).
    pub fn totp_secret_of(&self, user_id: &str) -> Option<String> {
        self.lock()
            .users
            .iter()
            .find(|u| u.user_id() == user_id)
            .and_then(|u| totp_secret(u).map(str::to_owned))
    }

    /// Seeds a recovery-code enrolment for a user (it shows up in the MFA export as a
    /// bcrypt hash; the code itself is not kept).
    pub fn seed_recovery_code(&self, user_id: &str, code: &str) -> bool {
        let Ok(hash) = bcrypt::hash(code, 4) else {
            return false;
        };
        let mut inner = self.lock();
        if !inner.users.iter().any(|u| u.user_id() == user_id) {
            return false;
        }
        inner.mfa.recovery_codes.insert(user_id.to_owned(), hash);
        true
    }
}

/// Decodes unpadded (or padded) RFC 4648 base32; `None` on any other character.
pub(crate) fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u64, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buf = (buf << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The RFC 6238 code (HMAC-SHA1, 30 s, 6 digits) for `unix` seconds.
pub fn totp_code(key: &[u8], unix: i64) -> String {
    let counter = (unix.max(0) as u64) / 30;
    hotp(key, counter)
}

fn hotp(key: &[u8], counter: u64) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let bin = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    format!("{:06}", bin % 1_000_000)
}

fn totp_matches(key: &[u8], unix: i64, otp: &str) -> bool {
    let counter = (unix.max(0) as u64) / 30;
    [counter.saturating_sub(1), counter, counter + 1]
        .iter()
        .any(|c| hotp(key, *c) == otp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890", truncated to 6 digits.
        let key = b"12345678901234567890";
        assert_eq!(totp_code(key, 59), "287082");
        assert_eq!(totp_code(key, 1_111_111_109), "081804");
        assert_eq!(totp_code(key, 1_234_567_890), "005924");
        assert_eq!(totp_code(key, 2_000_000_000), "279037");
    }

    #[test]
    fn base32_round_trip() {
        assert_eq!(
            base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(),
            b"12345678901234567890"
        );
        assert_eq!(
            base32_decode("JBSWY3DPEHPK3PXP").unwrap(),
            b"Hello!\xde\xad\xbe\xef"
        );
        assert!(base32_decode("not base32!").is_none());
    }
}
