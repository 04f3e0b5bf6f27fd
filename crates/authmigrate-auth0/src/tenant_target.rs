//! Auth0 as the target of a tenant: roles and organizations created through the
//! Management API ([`TenantTarget`]), and memberships assigned after the bulk import
//! ([`MemberTarget`]), from shared/docs/auth0-rbac-orgs-mfa.md:
//!
//! - `GET /roles` (offset paging, ≤ 1000 roles a tenant) and `GET /organizations`
//!   (checkpoint paging) list what exists; names map to ids for the assignments.
//! - `POST /roles` `{name, description}`: 200 with the role; 409 "The role already
//!   exists." (its body is not recorded) is a reuse: the id is found with
//!   `GET /roles?name_filter=` (case-insensitive, so a name Auth0 holds in another
//!   case is reused, not created twice).
//! - `POST /organizations` `{name, display_name}`: 201; 409 is a reuse, the id from
//!   `GET /organizations/name/{name}`.
//! - `POST /roles/{id}/users` `{"users": [...]}`: 200 `{}`. The docs give no maximum
//!   per call (§8.1); [`ROLE_BATCH`] keeps a request the size of a page of the API's
//!   own listings. 404 "One or more of the users do not exist." refuses the batch.
//! - `POST /organizations/{id}/members` `{"members": [...]}`: 204, at most 10 members a
//!   request ("You can send a maximum of 10 members per organization per request").
//! - A delta's changed users are made exact ([`authmigrate_core::tenant::sync`]):
//!   what they hold is read with `GET /users/{id}/roles` and
//!   `GET /users/{id}/organizations`, and what the source no longer gives them is
//!   taken away with `DELETE /users/{id}/roles` and `DELETE /organizations/{id}/members`.
//! - New users' ids: Auth0's import job returns counts, not ids (§4), so they are found
//!   with one users-export job of the connection (`user_id`, `email`, `username`), and
//!   users it does not list yet with `users-by-email` / a username search one by one.
//!
//! Every request goes through the one [`Auth0Client`] (token, retries, the shared
//! rate-limit pacer). A 403 stops the run naming the scopes and the `--skip` that
//! avoids them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use authmigrate_core::backend::BackendError;
use authmigrate_core::delete::{Key, UserDirectory};
use authmigrate_core::retry::HttpReply;
use authmigrate_core::tenant::{
    Assigned, Held, Kind, MemberTarget, Naming, NewEntry, TenantTarget,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{Auth0Client, api_message};
use crate::config::Auth0Settings;
use crate::export::{ExportOptions, export_users};
use crate::tenant::{Auth0Tenant, Needs, ORGS, ROLES, check, items, text};
use crate::users::Auth0Users;

/// Users per `POST /roles/{id}/users` (no documented maximum; see the module docs).
pub const ROLE_BATCH: usize = 100;
/// Members per `POST /organizations/{id}/members` (the documented maximum).
pub const MEMBER_BATCH: usize = 10;
/// Longest organization `display_name`.
const MAX_DISPLAY_NAME: usize = 255;

const CREATE_ROLES: Needs = Needs {
    skip: "roles",
    scopes: "create:roles, read:roles",
    after_import: false,
};
const ASSIGN_ROLES: Needs = Needs {
    skip: "roles",
    scopes: "update:roles, create:role_members",
    after_import: true,
};
const CREATE_ORGS: Needs = Needs {
    skip: "groups",
    scopes: "create:organizations, read:organizations",
    after_import: false,
};
const ADD_MEMBERS: Needs = Needs {
    skip: "groups",
    scopes: "create:organization_members",
    after_import: true,
};
const USER_ROLES: Needs = Needs {
    skip: "roles",
    scopes: "read:users, read:roles, read:role_members",
    after_import: true,
};
const USER_ORGS: Needs = Needs {
    skip: "groups",
    scopes: "read:organizations",
    after_import: true,
};
const REMOVE_ROLES: Needs = Needs {
    skip: "roles",
    scopes: "update:users, delete:role_members",
    after_import: true,
};
const REMOVE_MEMBERS: Needs = Needs {
    skip: "groups",
    scopes: "delete:organization_members",
    after_import: true,
};

/// The Auth0 [`TenantTarget`] and [`MemberTarget`].
#[derive(Debug)]
pub struct Auth0TenantTarget {
    api: Auth0Tenant,
    users: Auth0Users,
    settings: Auth0Settings,
    /// (kind, name) → id, from the listings and the creates.
    ids: Mutex<HashMap<(Kind, String), String>>,
}

impl Auth0TenantTarget {
    /// A target for the settings' tenant and connection (no request is sent).
    pub fn new(settings: &Auth0Settings) -> Result<Self, BackendError> {
        let client = Arc::new(Auth0Client::new(settings)?);
        Ok(Self {
            api: Auth0Tenant::with_client(client.clone()),
            users: Auth0Users::with_client(client, settings.connection.clone()),
            settings: settings.clone(),
            ids: Mutex::default(),
        })
    }

    /// How many Management API requests were sent so far (not counting the export).
    pub fn requests(&self) -> u64 {
        self.api.requests()
    }

    fn remember(&self, kind: Kind, name: &str, id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((kind, name.to_owned()), id.to_owned());
    }

    fn known(&self, kind: Kind, name: &str) -> Option<String> {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(kind, name.to_owned()))
            .cloned()
    }

    async fn list(&self, kind: Kind) -> Result<Vec<String>, BackendError> {
        let mut names = Vec::new();
        match kind {
            Kind::Role => {
                for r in self
                    .api
                    .offset_all("list auth0 roles", &["roles"], "roles", ROLES)
                    .await?
                {
                    if let (Some(id), Some(name)) = (text(&r, "id"), text(&r, "name")) {
                        self.remember(kind, &name, &id);
                        names.push(name);
                    }
                }
            }
            Kind::Group => {
                let mut found = Vec::new();
                self.api
                    .checkpoint_each(
                        "list auth0 organizations",
                        &["organizations"],
                        &[],
                        "organizations",
                        ORGS,
                        |o| {
                            if let (Some(id), Some(name)) = (text(&o, "id"), text(&o, "name")) {
                                found.push((name, id));
                            }
                            Ok(())
                        },
                    )
                    .await?;
                for (name, id) in found {
                    self.remember(kind, &name, &id);
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    /// The id of a role or organization by its name, listing once if unknown.
    async fn id_of(&self, kind: Kind, name: &str) -> Result<String, BackendError> {
        if let Some(id) = self.known(kind, name) {
            return Ok(id);
        }
        self.list(kind).await?;
        if let Some(id) = self.known(kind, name) {
            return Ok(id);
        }
        if kind == Kind::Role {
            // Auth0 may hold the name in another case (its 409 said so).
            return self.role_by_name(name).await;
        }
        Err(BackendError::fatal(
            format!("auth0 holds no organization named `{name}`"),
            None,
        ))
    }

    async fn post(
        &self,
        what: &str,
        segments: &[&str],
        body: Value,
    ) -> Result<HttpReply, BackendError> {
        self.send(what, Method::POST, segments, body).await
    }

    async fn send(
        &self,
        what: &str,
        method: Method,
        segments: &[&str],
        body: Value,
    ) -> Result<HttpReply, BackendError> {
        self.api.count_request();
        let url = self.api.url(segments, &[]);
        self.api
            .client
            .send(what, |http| {
                http.request(method.clone(), url.clone()).json(&body)
            })
            .await
    }

    /// The names of the roles (tenant-wide) or organizations a user holds, by
    /// `GET /users/{id}/roles` (auth0-rbac-orgs-mfa.md: "all roles assigned to a user
    /// in the context of your whole tenant"; offset paging) or
    /// `GET /users/{id}/organizations` (not in the shared docs: the Management API's
    /// `get_user_organizations`, scope `read:organizations`, offset paging with
    /// `include_totals`, as go-auth0's `UserManager.Organizations` calls it). The ids
    /// are remembered for [`MemberTarget::unassign`].
    async fn user_holds(&self, user_id: &str, kind: Kind) -> Result<Vec<String>, BackendError> {
        let (what, segment, key, needs) = match kind {
            Kind::Role => ("list an auth0 user's roles", "roles", "roles", USER_ROLES),
            Kind::Group => (
                "list an auth0 user's organizations",
                "organizations",
                "organizations",
                USER_ORGS,
            ),
        };
        let mut names = Vec::new();
        for item in self
            .api
            .offset_all(what, &["users", user_id, segment], key, needs)
            .await?
        {
            if let (Some(id), Some(name)) = (text(&item, "id"), text(&item, "name")) {
                self.remember(kind, &name, &id);
                names.push(name);
            }
        }
        Ok(names)
    }

    async fn role_by_name(&self, name: &str) -> Result<String, BackendError> {
        let url = self
            .api
            .url(&["roles"], &[("name_filter", name), ("per_page", "100")]);
        let v = self
            .api
            .get_json("find an auth0 role by name", url, ROLES)
            .await?;
        items(&v, "roles")
            .iter()
            .find(|r| text(r, "name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|r| text(r, "id"))
            .inspect(|id| self.remember(Kind::Role, name, id))
            .ok_or_else(|| {
                BackendError::fatal(
                    format!("auth0 answered that the role `{name}` exists, but lists no such role"),
                    None,
                )
            })
    }

    /// Remembers the id of what a create request answered with.
    fn remember_created(
        &self,
        what: &str,
        reply: &HttpReply,
        kind: Kind,
        name: &str,
    ) -> Result<(), BackendError> {
        let v: Value = reply.json().map_err(|err| {
            BackendError::Transient(format!("{what}: invalid JSON from auth0: {err}"))
        })?;
        if let Some(id) = text(&v, "id") {
            self.remember(kind, name, &id);
        }
        Ok(())
    }

    async fn create_role(&self, e: &NewEntry) -> Result<(), BackendError> {
        let mut body = json!({ "name": e.key });
        if let Some(d) = e.description.as_deref().filter(|d| !d.is_empty()) {
            body["description"] = json!(d);
        }
        let what = "create an auth0 role";
        let reply = self.post(what, &["roles"], body).await?;
        if reply.status == StatusCode::CONFLICT {
            self.role_by_name(&e.key).await?;
            return Ok(());
        }
        check(what, &reply, CREATE_ROLES)?;
        self.remember_created(what, &reply, Kind::Role, &e.key)
    }

    async fn create_org(&self, e: &NewEntry) -> Result<(), BackendError> {
        let display: String = e
            .description
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or(&e.name)
            .chars()
            .take(MAX_DISPLAY_NAME)
            .collect();
        let what = "create an auth0 organization";
        let reply = self
            .post(
                what,
                &["organizations"],
                json!({ "name": e.key, "display_name": display }),
            )
            .await?;
        if reply.status == StatusCode::CONFLICT {
            let url = self.api.url(&["organizations", "name", &e.key], &[]);
            let v = self
                .api
                .get_json("find an auth0 organization by name", url, ORGS)
                .await?;
            if let Some(id) = text(&v, "id") {
                self.remember(Kind::Group, &e.key, &id);
            }
            return Ok(());
        }
        check(what, &reply, CREATE_ORGS)?;
        self.remember_created(what, &reply, Kind::Group, &e.key)
    }
}

#[async_trait]
impl TenantTarget for Auth0TenantTarget {
    async fn role_keys(&self) -> Result<Vec<String>, BackendError> {
        self.list(Kind::Role).await
    }

    async fn group_keys(&self) -> Result<Vec<String>, BackendError> {
        self.list(Kind::Group).await
    }

    async fn create_roles(&self, roles: &[NewEntry]) -> Result<(), BackendError> {
        for e in roles {
            self.create_role(e).await?;
        }
        Ok(())
    }

    async fn create_groups(&self, groups: &[NewEntry]) -> Result<(), BackendError> {
        for e in groups {
            self.create_org(e).await?;
        }
        Ok(())
    }

    /// One entry per request: Auth0 creates one role or organization a call.
    fn batch(&self) -> usize {
        1
    }

    fn naming(&self) -> Naming {
        Naming::Auth0
    }
}

#[async_trait]
impl MemberTarget for Auth0TenantTarget {
    async fn export_users(
        &self,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<(), BackendError> {
        let options = ExportOptions {
            connection: Some(self.settings.connection.clone()),
            fields: Some(
                ["user_id", "email", "username"]
                    .iter()
                    .map(|f| (*f).to_owned())
                    .collect(),
            ),
        };
        export_users(&self.settings, &options, out).await.map(drop)
    }

    async fn find_user(&self, key: &Key) -> Result<Option<String>, BackendError> {
        self.api.count_request();
        Ok(self
            .users
            .lookup(key)
            .await?
            .into_iter()
            .next()
            .map(|u| u.id))
    }

    async fn assign(
        &self,
        kind: Kind,
        key: &str,
        user_ids: &[String],
    ) -> Result<Assigned, BackendError> {
        let id = self.id_of(kind, key).await?;
        let (what, reply, needs) = match kind {
            Kind::Role => {
                let what = "assign users to an auth0 role";
                (
                    what,
                    self.post(what, &["roles", &id, "users"], json!({ "users": user_ids }))
                        .await?,
                    ASSIGN_ROLES,
                )
            }
            Kind::Group => {
                let what = "add members to an auth0 organization";
                (
                    what,
                    self.post(
                        what,
                        &["organizations", &id, "members"],
                        json!({ "members": user_ids }),
                    )
                    .await?,
                    ADD_MEMBERS,
                )
            }
        };
        answer(what, &reply, needs)
    }

    async fn held(&self, user_id: &str, roles: bool, groups: bool) -> Result<Held, BackendError> {
        let mut held = Held::default();
        if roles {
            held.roles = self.user_holds(user_id, Kind::Role).await?;
        }
        if groups {
            held.groups = self.user_holds(user_id, Kind::Group).await?;
        }
        Ok(held)
    }

    /// `DELETE /users/{id}/roles` `{"roles": [ids]}` (204; scopes `update:users`,
    /// `delete:role_members`), or `DELETE /organizations/{id}/members`
    /// `{"members": [user id]}` (204; scope `delete:organization_members`), one request
    /// per organization (auth0-rbac-orgs-mfa.md §1, §2).
    async fn unassign(
        &self,
        user_id: &str,
        kind: Kind,
        keys: &[String],
    ) -> Result<Assigned, BackendError> {
        let mut ids = Vec::with_capacity(keys.len());
        for key in keys {
            ids.push(self.id_of(kind, key).await?);
        }
        match kind {
            Kind::Role => {
                let what = "remove roles from an auth0 user";
                let reply = self
                    .send(
                        what,
                        Method::DELETE,
                        &["users", user_id, "roles"],
                        json!({ "roles": ids }),
                    )
                    .await?;
                answer(what, &reply, REMOVE_ROLES)
            }
            Kind::Group => {
                let what = "remove a member from an auth0 organization";
                for id in &ids {
                    let reply = self
                        .send(
                            what,
                            Method::DELETE,
                            &["organizations", id, "members"],
                            json!({ "members": [user_id] }),
                        )
                        .await?;
                    if let Assigned::Refused(why) = answer(what, &reply, REMOVE_MEMBERS)? {
                        return Ok(Assigned::Refused(why));
                    }
                }
                Ok(Assigned::Done)
            }
        }
    }

    fn batch(&self, kind: Kind) -> usize {
        match kind {
            Kind::Role => ROLE_BATCH,
            Kind::Group => MEMBER_BATCH,
        }
    }
}

/// A membership request's answer: success, a refusal of this request (400, 404, 409:
/// reported, the run goes on), or an error that stops the run (403, 401, 5xx).
fn answer(what: &str, reply: &HttpReply, needs: Needs) -> Result<Assigned, BackendError> {
    match reply.status {
        s if s.is_success() => Ok(Assigned::Done),
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::CONFLICT => {
            Ok(Assigned::Refused(format!(
                "auth0 answered HTTP {}: {}",
                reply.status.as_u16(),
                api_message(reply)
            )))
        }
        _ => check(what, reply, needs).map(|()| Assigned::Done),
    }
}
