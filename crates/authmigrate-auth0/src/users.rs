//! Looking Auth0 users up and deleting them: the [`UserDirectory`] of
//! `authmigrate delete --from auth0`.
//!
//! - E-mail: `GET /api/v2/users-by-email?email=` (immediately consistent; Auth0 keeps
//!   database users' e-mails in lower case and the match is case-sensitive, so the
//!   e-mail is sent in lower case). Only users with an identity in the configured
//!   database connection are taken: a social user sharing the e-mail is left alone.
//! - Username: `GET /api/v2/users?q=username:"…"&search_engine=v3` (eventually
//!   consistent, per the docs).
//! - Id: `GET /api/v2/users/{id}` (404 = not found).
//! - Delete: `DELETE /api/v2/users/{id}`, one user per request (Auth0 has no bulk
//!   delete); 204 = deleted. Deleting an id twice answers 204 again (go-auth0's
//!   recordings, in shared/docs/auth0-rbac-orgs-mfa.md §3).
//!
//! Every request goes through [`Auth0Client`] (retries, token refresh) and a small
//! pacer that reads `x-ratelimit-remaining` / `x-ratelimit-reset` on every reply and
//! holds requests back while the bucket is empty, so concurrent deletes reach the
//! tenant's rate without being refused.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use authmigrate_core::backend::BackendError;
use authmigrate_core::delete::{Deleted, FoundUser, Key, UserDirectory};
use authmigrate_core::retry::HttpReply;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::client::{Auth0Client, api_message, auth_error};
use crate::config::Auth0Settings;

/// Scopes `delete` needs.
pub const DELETE_SCOPES: &str = "read:users, delete:users";

/// The Auth0 [`UserDirectory`].
#[derive(Debug)]
pub struct Auth0Users {
    client: Auth0Client,
    connection: String,
    pacer: Pacer,
}

impl Auth0Users {
    /// A directory for the settings' tenant and connection (no request is sent).
    pub fn new(settings: &Auth0Settings) -> Result<Self, BackendError> {
        Ok(Self {
            client: Auth0Client::new(settings)?,
            connection: settings.connection.clone(),
            pacer: Pacer::default(),
        })
    }

    async fn call(
        &self,
        what: &str,
        method: Method,
        url: url::Url,
    ) -> Result<HttpReply, BackendError> {
        let seq = self.pacer.acquire().await;
        let reply = self
            .client
            .send(what, |http| http.request(method.clone(), url.clone()))
            .await;
        self.pacer.observe(seq, reply.as_ref().ok());
        let reply = reply?;
        if matches!(
            reply.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(auth_error(what, &reply));
        }
        Ok(reply)
    }

    /// `{base}/api/v2/users/{id}`, the id encoded by [`path_id`].
    fn user_url(&self, id: &str) -> url::Url {
        let mut url = self.client.api_url(&["users"]);
        let path = format!("{}/{}", url.path(), path_id(id));
        url.set_path(&path);
        url
    }

    fn users(
        &self,
        what: &str,
        reply: &HttpReply,
        by_connection: bool,
    ) -> Result<Vec<FoundUser>, BackendError> {
        if !reply.status.is_success() {
            return Err(BackendError::Transient(format!(
                "{what}: auth0 answered HTTP {}: {}",
                reply.status.as_u16(),
                api_message(reply)
            )));
        }
        let v: Value = reply.json().map_err(|e| {
            BackendError::Transient(format!("{what}: invalid JSON from auth0: {e}"))
        })?;
        let list = match &v {
            Value::Array(a) => a.clone(),
            Value::Object(o) if o.contains_key("users") => {
                o["users"].as_array().cloned().unwrap_or_default()
            }
            Value::Object(_) => vec![v.clone()],
            _ => Vec::new(),
        };
        Ok(list
            .iter()
            .filter_map(|u| serde_json::from_value::<User>(u.clone()).ok())
            .filter(|u| {
                !by_connection || u.identities.iter().any(|i| i.connection == self.connection)
            })
            .map(|u| FoundUser {
                id: u.user_id,
                email: u.email,
                username: u.username,
                logins: u.logins_count,
                last_login: u.last_login,
            })
            .collect())
    }
}

#[derive(Deserialize)]
struct User {
    user_id: String,
    email: Option<String>,
    username: Option<String>,
    logins_count: Option<u64>,
    last_login: Option<String>,
    #[serde(default)]
    identities: Vec<Identity>,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(default)]
    connection: String,
}

#[async_trait]
impl UserDirectory for Auth0Users {
    fn name(&self) -> &'static str {
        "auth0"
    }

    fn max_per_request(&self) -> usize {
        1
    }

    async fn lookup(&self, key: &Key) -> Result<Vec<FoundUser>, BackendError> {
        match key {
            Key::Email(email) => {
                let mut url = self.client.api_url(&["users-by-email"]);
                url.query_pairs_mut()
                    .append_pair("email", &email.to_lowercase());
                let reply = self
                    .call("look a user up by e-mail", Method::GET, url)
                    .await?;
                self.users("look a user up by e-mail", &reply, true)
            }
            Key::Username(name) => {
                let mut url = self.client.api_url(&["users"]);
                let q = format!(
                    "username:\"{}\" AND identities.connection:\"{}\"",
                    name.replace('"', "\\\""),
                    self.connection.replace('"', "\\\"")
                );
                url.query_pairs_mut()
                    .append_pair("q", &q)
                    .append_pair("search_engine", "v3");
                let reply = self
                    .call("look a user up by username", Method::GET, url)
                    .await?;
                self.users("look a user up by username", &reply, true)
            }
            Key::Id(id) => {
                let url = self.user_url(id);
                let reply = self.call("look a user up by id", Method::GET, url).await?;
                if reply.status == StatusCode::NOT_FOUND {
                    return Ok(Vec::new());
                }
                self.users("look a user up by id", &reply, false)
            }
        }
    }

    async fn delete(&self, ids: &[String]) -> Result<Vec<Deleted>, BackendError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let url = self.user_url(id);
            let reply = self.call("delete a user", Method::DELETE, url).await?;
            out.push(match reply.status.as_u16() {
                200..=299 => Deleted::Deleted,
                404 => Deleted::NotFound,
                s => Deleted::Failed {
                    code: format!("HTTP_{s}"),
                    message: api_message(&reply),
                },
            });
        }
        Ok(out)
    }
}

/// A user id as a path segment, every byte but `A-Za-z0-9-._~` percent-encoded, so
/// `|` goes as `%7C` as go-auth0's recordings show (`DELETE
/// /api/v2/users/auth0%7C63d1…`); the URL parser would leave `|` as it is.
fn path_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 4);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Holds requests back while Auth0's bucket is empty.
///
/// Every request gets a sequence number when it is let through. A reply's
/// `x-ratelimit-remaining` is the server's count when it served that request; the
/// requests let through after it may already have spent tokens, so a reply allows
/// at most `remaining - (requests let through since)`. Concurrent requests reach the
/// server in any order, so a reply never raises the budget: it only lowers it. At a
/// budget of zero, requests wait for `x-ratelimit-reset` (UNIX seconds, when tokens
/// are added), then one request goes alone and its reply sets the budget afresh
/// (the tokens added meanwhile). Without the headers nothing is held back.
#[derive(Debug, Default)]
struct Pacer {
    state: Mutex<PaceState>,
}

#[derive(Debug, Default)]
struct PaceState {
    remaining: Option<u64>,
    reset: Option<Instant>,
    in_flight: u64,
    /// Requests let through so far.
    sent: u64,
    /// The request sent alone after the bucket was empty, whose reply sets the budget.
    probe: Option<u64>,
}

impl Pacer {
    /// Waits for a token; returns the request's sequence number.
    async fn acquire(&self) -> u64 {
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                match (s.remaining, s.reset) {
                    (Some(0), Some(reset)) if reset > now => Some(reset - now),
                    (Some(0), _) if s.in_flight > 0 => Some(Duration::from_millis(20)),
                    (r, _) => {
                        s.remaining = r.map(|r| r.saturating_sub(1));
                        s.in_flight += 1;
                        s.sent += 1;
                        if r == Some(0) {
                            s.probe = Some(s.sent);
                        }
                        return s.sent;
                    }
                }
            };
            if let Some(w) = wait {
                tokio::time::sleep(w).await;
            }
        }
    }

    fn observe(&self, seq: u64, reply: Option<&HttpReply>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.in_flight = s.in_flight.saturating_sub(1);
        let Some(reply) = reply else { return };
        let header = |name: &str| -> Option<u64> {
            reply.headers.get(name)?.to_str().ok()?.trim().parse().ok()
        };
        let (Some(remaining), Some(reset)) =
            (header("x-ratelimit-remaining"), header("x-ratelimit-reset"))
        else {
            return;
        };
        let allowed = remaining.saturating_sub(s.sent - seq);
        s.remaining = match s.remaining {
            Some(budget) if s.probe != Some(seq) => Some(budget.min(allowed)),
            _ => Some(allowed),
        };
        if s.probe == Some(seq) {
            s.probe = None;
        }
        tracing::trace!(seq, sent = s.sent, header = remaining, budget = ?s.remaining, reset, "pacer");
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let until = Duration::from_secs(reset).saturating_sub(now_unix);
        s.reset = Some(Instant::now() + until);
    }
}
