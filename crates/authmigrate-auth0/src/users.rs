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
//! Every request goes through [`Auth0Client`] (retries, token refresh and the
//! client's shared pacer, `authmigrate_core::pace`, which reads `x-ratelimit-*` on
//! every reply and holds requests back while the bucket is empty), so concurrent
//! deletes reach the tenant's rate without being refused.

use std::sync::Arc;

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
pub const DELETE_SCOPES: &str =
    "read:users, delete:users, read:connections (for the export that finds 100 users or more)";

/// The Auth0 [`UserDirectory`].
#[derive(Debug)]
pub struct Auth0Users {
    client: Arc<Auth0Client>,
    connection: String,
    /// For the users-export job of a bulk look-up (`None` over a borrowed client:
    /// look-ups one by one).
    settings: Option<Auth0Settings>,
}

impl Auth0Users {
    /// A directory for the settings' tenant and connection (no request is sent).
    pub fn new(settings: &Auth0Settings) -> Result<Self, BackendError> {
        Ok(Self {
            client: Arc::new(Auth0Client::new(settings)?),
            connection: settings.connection.clone(),
            settings: Some(settings.clone()),
        })
    }

    /// A directory over an existing client (sharing its token and pacer), for the
    /// users of `connection`.
    pub fn with_client(client: Arc<Auth0Client>, connection: impl Into<String>) -> Self {
        Self {
            client,
            connection: connection.into(),
            settings: None,
        }
    }

    async fn call(
        &self,
        what: &str,
        method: Method,
        url: url::Url,
    ) -> Result<HttpReply, BackendError> {
        let reply = self
            .client
            .send(what, |http| http.request(method.clone(), url.clone()))
            .await?;
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

    /// One users-export job of the connection instead of a look-up per key, from
    /// [`crate::users_bulk::BULK_MIN_KEYS`] keys on (see [`crate::users_bulk`]).
    async fn lookup_many(&self, keys: &[Key]) -> Result<Option<Vec<Vec<FoundUser>>>, BackendError> {
        let Some(settings) = &self.settings else {
            return Ok(None);
        };
        if keys.len() < crate::users_bulk::BULK_MIN_KEYS {
            return Ok(None);
        }
        crate::users_bulk::lookup_many(settings, &self.connection, keys)
            .await
            .map(Some)
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
