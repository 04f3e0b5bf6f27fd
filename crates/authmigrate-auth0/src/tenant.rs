//! Auth0's roles, permissions and organizations as a [`TenantSource`]
//! (shared/docs/auth0-rbac-orgs-mfa.md §1, §2).
//!
//! - `GET /roles` (offset paging, 100 a page; a tenant has at most 1000 roles) and
//!   `GET /roles/{id}/permissions` (offset paging).
//! - `GET /roles/{id}/users` and `GET /organizations`: checkpoint paging (`take=100`,
//!   then `from=<next>`), since offset paging stops at 1000 records; the end is a
//!   reply without `next`.
//! - `GET /organizations/{id}/members?fields=user_id,roles`: checkpoint paging, with
//!   each member's organization roles in the same reply (no request per member). A
//!   short page can still carry `next`: the end is a missing `next` or an empty page.
//!
//! Every request goes through [`Auth0Client`] (token, retries, the rate-limit pacer).
//! A 403 stops the run before anything is written, naming the scope and the `--skip`
//! that avoids it.

use std::sync::Arc;

use async_trait::async_trait;
use authmigrate_core::backend::BackendError;
use authmigrate_core::retry::HttpReply;
use authmigrate_core::tenant::{Group, GroupMember, Permission, Role, Sink, TenantSource};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::client::{Auth0Client, api_message, auth_error};
use crate::config::Auth0Settings;

/// Items per page (the Management API's maximum).
const PAGE: usize = 100;

/// The Auth0 [`TenantSource`].
#[derive(Debug)]
pub struct Auth0Tenant {
    pub(crate) client: Arc<Auth0Client>,
    requests: std::sync::atomic::AtomicU64,
}

/// Which `--skip` avoids an endpoint, and the scopes it needs.
#[derive(Clone, Copy)]
pub(crate) struct Needs {
    pub(crate) skip: &'static str,
    pub(crate) scopes: &'static str,
    /// The request comes after the users' import (assigning or reading memberships):
    /// a 403 then says the users are in and a rerun finishes, not that nothing was
    /// written.
    pub(crate) after_import: bool,
}

pub(crate) const ROLES: Needs = Needs {
    skip: "roles",
    scopes: "read:roles",
    after_import: false,
};
const ROLE_USERS: Needs = Needs {
    skip: "roles",
    scopes: "read:users, read:roles, read:role_members",
    after_import: false,
};
pub(crate) const ORGS: Needs = Needs {
    skip: "groups",
    scopes: "read:organizations",
    after_import: false,
};
const MEMBERS: Needs = Needs {
    skip: "groups",
    scopes: "read:organization_members, read:organization_member_roles",
    after_import: false,
};

impl Auth0Tenant {
    /// A source for the settings' tenant (no request is sent).
    pub fn new(settings: &Auth0Settings) -> Result<Self, BackendError> {
        Ok(Self::with_client(Arc::new(Auth0Client::new(settings)?)))
    }

    /// A source over an existing client (sharing its token and pacer).
    pub fn with_client(client: Arc<Auth0Client>) -> Self {
        Self {
            client,
            requests: Default::default(),
        }
    }

    /// Counts one request sent outside [`Auth0Tenant::get_json`].
    pub(crate) fn count_request(&self) {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many Management API requests were sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) async fn get_json(
        &self,
        what: &str,
        url: Url,
        needs: Needs,
    ) -> Result<Value, BackendError> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reply = self.client.get(what, &url).await?;
        check(what, &reply, needs)?;
        reply
            .json()
            .map_err(|e| BackendError::Transient(format!("{what}: invalid JSON from auth0: {e}")))
    }

    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.client.api_url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Offset paging with totals: every item of `key`.
    pub(crate) async fn offset_all(
        &self,
        what: &str,
        segments: &[&str],
        key: &str,
        needs: Needs,
    ) -> Result<Vec<Value>, BackendError> {
        let mut all = Vec::new();
        for page in 0.. {
            let (p, n) = (page.to_string(), PAGE.to_string());
            let url = self.url(
                segments,
                &[("page", &p), ("per_page", &n), ("include_totals", "true")],
            );
            let v = self.get_json(what, url, needs).await?;
            let items = items(&v, key);
            let got = items.len();
            all.extend(items);
            let total = v["total"].as_u64().map(|t| t as usize);
            if got < PAGE || total.is_some_and(|t| all.len() >= t) {
                break;
            }
        }
        Ok(all)
    }

    /// Checkpoint paging: every item of `key`, page by page, through `each`.
    pub(crate) async fn checkpoint_each(
        &self,
        what: &str,
        segments: &[&str],
        extra: &[(&str, &str)],
        key: &str,
        needs: Needs,
        mut each: impl FnMut(Value) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        let take = PAGE.to_string();
        let mut from: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = vec![("take", &take)];
            if let Some(f) = &from {
                q.push(("from", f));
            }
            q.extend_from_slice(extra);
            let v = self.get_json(what, self.url(segments, &q), needs).await?;
            let page = items(&v, key);
            let empty = page.is_empty();
            for item in page {
                each(item)?;
            }
            match v["next"].as_str() {
                Some(n) if !n.is_empty() && !empty => from = Some(n.to_owned()),
                _ => return Ok(()),
            }
        }
    }
}

pub(crate) fn items(v: &Value, key: &str) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        _ => v[key].as_array().cloned().unwrap_or_default(),
    }
}

pub(crate) fn check(what: &str, reply: &HttpReply, needs: Needs) -> Result<(), BackendError> {
    match reply.status {
        s if s.is_success() => Ok(()),
        StatusCode::FORBIDDEN => Err(BackendError::fatal(
            format!(
                "{what}: auth0 answered HTTP 403: {} ({})",
                api_message(reply),
                if needs.after_import {
                    "the users are imported; rerun the same command with the same `--state` \
                     once the scopes are granted to finish the memberships"
                } else {
                    "nothing was written"
                }
            ),
            Some(format!(
                "grant the application the scopes {} on the Management API, or run with `--skip {}`",
                needs.scopes, needs.skip
            )),
        )),
        StatusCode::UNAUTHORIZED => Err(auth_error(what, reply)),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            Err(BackendError::Transient(format!(
                "{what}: auth0 answered HTTP {}: {}",
                s.as_u16(),
                api_message(reply)
            )))
        }
        s => Err(BackendError::fatal(
            format!(
                "{what}: auth0 answered HTTP {}: {}",
                s.as_u16(),
                api_message(reply)
            ),
            None,
        )),
    }
}

pub(crate) fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

#[async_trait(?Send)]
impl TenantSource for Auth0Tenant {
    async fn roles(&self) -> Result<Vec<Role>, BackendError> {
        let list = self
            .offset_all("list auth0 roles", &["roles"], "roles", ROLES)
            .await?;
        let mut roles = Vec::with_capacity(list.len());
        for r in list {
            let Some(id) = text(&r, "id") else { continue };
            let perms = self
                .offset_all(
                    "list an auth0 role's permissions",
                    &["roles", &id, "permissions"],
                    "permissions",
                    ROLES,
                )
                .await?;
            roles.push(Role {
                name: text(&r, "name").unwrap_or_else(|| id.clone()),
                description: text(&r, "description"),
                permissions: perms
                    .iter()
                    .map(|p| Permission {
                        resource_server: text(p, "resource_server_identifier").unwrap_or_default(),
                        name: text(p, "permission_name").unwrap_or_default(),
                    })
                    .collect(),
                id,
            });
        }
        Ok(roles)
    }

    async fn role_members(&self, role: &Role, sink: Sink<'_, String>) -> Result<(), BackendError> {
        self.checkpoint_each(
            "list an auth0 role's users",
            &["roles", &role.id, "users"],
            &[],
            "users",
            ROLE_USERS,
            |u| match text(&u, "user_id") {
                Some(id) => sink(id),
                None => Ok(()),
            },
        )
        .await
    }

    async fn groups(&self) -> Result<Vec<Group>, BackendError> {
        let mut out = Vec::new();
        self.checkpoint_each(
            "list auth0 organizations",
            &["organizations"],
            &[],
            "organizations",
            ORGS,
            |o| {
                if let (Some(id), Some(name)) = (text(&o, "id"), text(&o, "name")) {
                    out.push(Group {
                        id,
                        name,
                        description: text(&o, "display_name"),
                        roles: Vec::new(),
                    });
                }
                Ok(())
            },
        )
        .await?;
        Ok(out)
    }

    async fn group_members(
        &self,
        group: &Group,
        sink: Sink<'_, GroupMember>,
    ) -> Result<(), BackendError> {
        self.checkpoint_each(
            "list an auth0 organization's members",
            &["organizations", &group.id, "members"],
            &[("fields", "user_id,roles"), ("include_fields", "true")],
            "members",
            MEMBERS,
            |m| {
                let Some(user_id) = text(&m, "user_id") else {
                    return Ok(());
                };
                let roles = m["roles"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|r| text(r, "id")).collect())
                    .unwrap_or_default();
                sink(GroupMember { user_id, roles })
            },
        )
        .await
    }
}
