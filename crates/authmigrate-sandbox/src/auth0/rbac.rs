//! Roles, permissions, role members and resource servers (auth0-rbac-orgs-mfa.md §1).
//!
//! Success codes as recorded: `POST /roles` 200, `POST /roles/{id}/users` 200 `{}`,
//! `POST /roles/{id}/permissions` 201 `{}`, `POST /users/{id}/roles` 204. Role users
//! page by offset (stopping at 1000 records) or by checkpoint (`from`/`take`/`next`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, MutexGuard};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::handlers::{bad_request, query_get, query_pairs};
use super::orgs::Org;
use super::paging::{self, CHECKPOINT, PLAIN};
use super::{Auth0State, Inner, api_error};

/// A role and its permissions.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// `(resource_server_identifier, permission_name)`, in the order added.
    pub(crate) permissions: Vec<(String, String)>,
    /// Assigned user ids in assignment order, plus a set for look-ups.
    pub(crate) users: Vec<String>,
    pub(crate) user_set: HashSet<String>,
}

impl Role {
    pub(crate) fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "description": self.description})
    }
}

/// An API (resource server) whose scopes roles can carry as permissions.
#[derive(Debug, Clone)]
pub(crate) struct ResourceServer {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) identifier: String,
    pub(crate) scopes: Vec<(String, String)>,
}

impl ResourceServer {
    fn to_json(&self) -> Value {
        let scopes: Vec<Value> = self
            .scopes
            .iter()
            .map(|(v, d)| json!({"value": v, "description": d}))
            .collect();
        json!({
            "id": self.id,
            "name": self.name,
            "identifier": self.identifier,
            "is_system": false,
            "scopes": scopes,
            "enforce_policies": true,
            "token_dialect": "access_token_authz",
        })
    }
}

/// Roles, resource servers and organizations of the tenant.
#[derive(Debug, Default)]
pub(crate) struct Rbac {
    pub(crate) roles: BTreeMap<String, Role>,
    /// Role ids in creation order.
    pub(crate) role_order: Vec<String>,
    pub(crate) resource_servers: Vec<ResourceServer>,
    pub(crate) orgs: Vec<Org>,
}

impl Rbac {
    /// Drops a deleted user from every role and organization.
    pub(crate) fn forget_user(&mut self, user_id: &str) {
        for r in self.roles.values_mut() {
            if r.user_set.remove(user_id) {
                r.users.retain(|u| u != user_id);
            }
        }
        for o in &mut self.orgs {
            o.forget_user(user_id);
        }
    }

    pub(crate) fn ordered_roles(&self) -> impl Iterator<Item = &Role> {
        self.role_order.iter().filter_map(|id| self.roles.get(id))
    }

    /// The roles assigned to `user_id`, in role creation order.
    pub(crate) fn roles_of(&self, user_id: &str) -> Vec<&Role> {
        self.ordered_roles()
            .filter(|r| r.user_set.contains(user_id))
            .collect()
    }

    pub(crate) fn unassign(&mut self, role_id: &str, user_id: &str) {
        if let Some(r) = self.roles.get_mut(role_id)
            && r.user_set.remove(user_id)
        {
            r.users.retain(|u| u != user_id);
        }
    }

    pub(crate) fn assign(&mut self, role_id: &str, user_id: &str) {
        if let Some(r) = self.roles.get_mut(role_id)
            && r.user_set.insert(user_id.to_owned())
        {
            r.users.push(user_id.to_owned());
        }
    }
}

impl Inner {
    fn create_role(&mut self, name: &str, description: Option<String>) -> Option<String> {
        if self.rbac.roles.values().any(|r| r.name == name) {
            return None;
        }
        let id = format!("rol_{}", self.random_alnum(16));
        self.rbac.roles.insert(
            id.clone(),
            Role {
                id: id.clone(),
                name: name.to_owned(),
                description,
                permissions: Vec::new(),
                users: Vec::new(),
                user_set: HashSet::new(),
            },
        );
        self.rbac.role_order.push(id.clone());
        Some(id)
    }

    pub(crate) fn user_exists(&self, user_id: &str) -> bool {
        self.user_pos(user_id).is_some()
    }

    /// `{user_id, picture, name, email}` of a user (role users, org members).
    pub(crate) fn user_summary(&self, user_id: &str) -> Value {
        match self.user_pos(user_id).map(|i| &self.users[i]) {
            Some(u) => json!({
                "user_id": user_id,
                "email": u.str_field("email"),
                "picture": u.str_field("picture"),
                "name": u.str_field("name"),
            }),
            None => json!({"user_id": user_id}),
        }
    }
}

pub(super) fn routes() -> axum::Router<Arc<Auth0State>> {
    axum::Router::new()
        .route("/api/v2/roles", get(list_roles).post(create_role))
        .route("/api/v2/roles/{id}", get(get_role))
        .route(
            "/api/v2/roles/{id}/permissions",
            get(role_permissions).post(add_role_permissions),
        )
        .route(
            "/api/v2/roles/{id}/users",
            get(role_users).post(assign_role_users),
        )
        .route(
            "/api/v2/users/{id}/roles",
            get(user_roles)
                .post(assign_user_roles)
                .delete(unassign_user_roles),
        )
        .route("/api/v2/resource-servers", get(list_resource_servers))
}

fn not_found(message: &str) -> Response {
    api_error(StatusCode::NOT_FOUND, message, "inexistent_role")
}

/// The JSON object of a body, or the 400 Auth0 answers.
#[allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP answer"
)]
pub(crate) fn object_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad_request(
            "Payload validation error: 'Expected type object'.",
        )),
    }
}

/// The required, non-empty array of strings `key` of a JSON object body.
#[allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP answer"
)]
pub(crate) fn list_body(body: &[u8], key: &str) -> Result<Vec<String>, Response> {
    string_list(&object_body(body)?, key)
}

/// A required array of strings with at least one item.
#[allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP answer"
)]
pub(crate) fn string_list(
    body: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Vec<String>, Response> {
    let Some(v) = body.get(key) else {
        return Err(bad_request(&format!(
            "Payload validation error: 'Missing required property: {key}'."
        )));
    };
    let items: Option<Vec<String>> = v
        .as_array()
        .map(|a| a.iter().map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or(None);
    match items {
        Some(items) if !items.is_empty() && items.iter().all(|s| !s.is_empty()) => Ok(items),
        Some(items) if items.is_empty() => Err(bad_request(&format!(
            "Payload validation error: 'Array is too short (0), minimum 1' on property {key}."
        ))),
        _ => Err(bad_request(&format!(
            "Payload validation error: 'Expected type array of non-empty strings' on property {key}."
        ))),
    }
}

async fn list_roles(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:roles"]) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let req = match paging::request(&pairs, PLAIN) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let filter = query_get(&pairs, "name_filter").map(str::to_lowercase);
    let inner = state.lock();
    let all: Vec<Value> = inner
        .rbac
        .ordered_roles()
        .filter(|r| {
            filter
                .as_deref()
                .is_none_or(|f| r.name.to_lowercase().contains(f))
        })
        .map(Role::to_json)
        .collect();
    paging::respond(all, "roles", req, PLAIN)
}

async fn create_role(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["create:roles"]) {
        return r;
    }
    let body = match object_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(k) = body
        .keys()
        .find(|k| !["name", "description"].contains(&k.as_str()))
    {
        return bad_request(&format!(
            "Payload validation error: 'Additional properties not allowed: {k}'."
        ));
    }
    let Some(name) = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return bad_request("Payload validation error: 'Missing required property: name'.");
    };
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut inner = state.lock();
    // The 1000 roles per tenant of the entity-limit policy; the real answer's text is
    // not in the sources read.
    if inner.rbac.roles.len() >= 1000 {
        return bad_request("You reached the limit of 1000 roles per tenant.");
    }
    match inner.create_role(name, description) {
        Some(id) => Json(inner.rbac.roles[&id].to_json()).into_response(),
        // The 409 body is not in any source read; the message is the OAS description.
        None => api_error(StatusCode::CONFLICT, "The role already exists.", "conflict"),
    }
}

async fn get_role(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:roles"]) {
        return r;
    }
    let inner = state.lock();
    match inner.rbac.roles.get(&id) {
        Some(r) => Json(r.to_json()).into_response(),
        None => not_found("The role does not exist."),
    }
}

async fn role_permissions(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:roles"]) {
        return r;
    }
    let req = match paging::request(&query_pairs(q.as_deref()), PLAIN) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let inner = state.lock();
    let Some(role) = inner.rbac.roles.get(&id) else {
        return not_found("Role not found.");
    };
    let all: Vec<Value> = role
        .permissions
        .iter()
        .map(|(rs, p)| {
            let server = inner
                .rbac
                .resource_servers
                .iter()
                .find(|s| &s.identifier == rs);
            let description = server
                .and_then(|s| s.scopes.iter().find(|(v, _)| v == p))
                .map(|(_, d)| d.clone());
            json!({
                "resource_server_identifier": rs,
                "permission_name": p,
                "resource_server_name": server.map(|s| s.name.clone()),
                "description": description,
            })
        })
        .collect();
    paging::respond(all, "permissions", req, PLAIN)
}

async fn add_role_permissions(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["update:roles"]) {
        return r;
    }
    let body = match object_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(list) = body.get("permissions").and_then(Value::as_array) else {
        return bad_request("Payload validation error: 'Missing required property: permissions'.");
    };
    if list.is_empty() {
        return bad_request(
            "Payload validation error: 'Array is too short (0), minimum 1' on property permissions.",
        );
    }
    let mut wanted = Vec::new();
    for p in list {
        let rs = p.get("resource_server_identifier").and_then(Value::as_str);
        let name = p.get("permission_name").and_then(Value::as_str);
        let (Some(rs), Some(name)) = (rs, name) else {
            return bad_request(
                "Payload validation error: 'Missing required property: resource_server_identifier or permission_name' on property permissions.",
            );
        };
        wanted.push((rs.to_owned(), name.to_owned()));
    }
    let mut inner = state.lock();
    if !inner.rbac.roles.contains_key(&id) {
        return not_found("The role does not exist.");
    }
    if wanted.iter().any(|(rs, _)| {
        !inner
            .rbac
            .resource_servers
            .iter()
            .any(|s| &s.identifier == rs)
    }) {
        return api_error(
            StatusCode::NOT_FOUND,
            "The resource server does not exist.",
            "inexistent_resource_server",
        );
    }
    if let Some(role) = inner.rbac.roles.get_mut(&id) {
        for w in wanted {
            if !role.permissions.contains(&w) {
                role.permissions.push(w);
            }
        }
    }
    (StatusCode::CREATED, Json(json!({}))).into_response()
}

async fn role_users(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = state.authorize_all(&headers, &["read:users", "read:roles"]) {
        return r;
    }
    let req = match paging::request(&query_pairs(q.as_deref()), CHECKPOINT) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let inner = state.lock();
    let Some(role) = inner.rbac.roles.get(&id) else {
        return not_found("Role not found.");
    };
    // Only the requested page is rendered: roles of a large tenant have many users.
    paging::respond_lazy(
        role.users.len(),
        |r| {
            role.users[r]
                .iter()
                .map(|u| inner.user_summary(u))
                .collect()
        },
        "users",
        req,
        CHECKPOINT,
    )
}

async fn assign_role_users(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["update:roles", "create:role_members"]) {
        return r;
    }
    let users = match list_body(&body, "users") {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut inner = state.lock();
    if !inner.rbac.roles.contains_key(&id) {
        return not_found("Role not found.");
    }
    if !users.iter().all(|u| inner.user_exists(u)) {
        return api_error(
            StatusCode::NOT_FOUND,
            "One or more of the users do not exist.",
            "inexistent_user",
        );
    }
    for u in &users {
        inner.rbac.assign(&id, u);
    }
    Json(json!({})).into_response()
}

async fn user_roles(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) =
        state.authorize_all(&headers, &["read:users", "read:roles", "read:role_members"])
    {
        return r;
    }
    let req = match paging::request(&query_pairs(q.as_deref()), PLAIN) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let inner = state.lock();
    if !inner.user_exists(&id) {
        return api_error(StatusCode::NOT_FOUND, "User not found.", "inexistent_user");
    }
    let all: Vec<Value> = inner
        .rbac
        .roles_of(&id)
        .into_iter()
        .map(Role::to_json)
        .collect();
    paging::respond(all, "roles", req, PLAIN)
}

/// What `POST` and `DELETE /users/{id}/roles` check alike, in order: the scopes (any
/// of), the body's `roles`, the user, each role id. The lock and the role ids, or the
/// answer.
#[allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP answer"
)]
fn user_roles_request<'a>(
    state: &'a Auth0State,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
    scopes: &[&str],
) -> Result<(MutexGuard<'a, Inner>, Vec<String>), Response> {
    state.authorize(headers, scopes)?;
    let roles = list_body(body, "roles")?;
    let inner = state.lock();
    if !inner.user_exists(id) {
        return Err(api_error(
            StatusCode::NOT_FOUND,
            "The user does not exist.",
            "inexistent_user",
        ));
    }
    // An unknown role id: the answer's text is not in the sources read.
    if let Some(r) = roles.iter().find(|r| !inner.rbac.roles.contains_key(*r)) {
        return Err(not_found(&format!("The role {r} does not exist.")));
    }
    Ok((inner, roles))
}

async fn assign_user_roles(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (mut inner, roles) = match user_roles_request(
        &state,
        &headers,
        &id,
        &body,
        &["update:users", "create:role_members"],
    ) {
        Ok(v) => v,
        Err(r) => return r,
    };
    // "Roles per User | 50" (entity-limit policy); the real answer's text is unknown.
    let mut after: HashSet<&str> = inner
        .rbac
        .roles_of(&id)
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    after.extend(roles.iter().map(String::as_str));
    if after.len() > 50 {
        return bad_request("A user can have at most 50 roles.");
    }
    for r in &roles {
        inner.rbac.assign(r, &id);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /api/v2/users/{id}/roles` (`delete_user_roles`): 204.
///
/// Relies on auth0-rbac-orgs-mfa.md §1, the lines under `POST /api/v2/users/{id}/roles`:
/// "`DELETE /users/{id}/roles` with the same body shape returned 204. Its scopes are
/// `["update:users","delete:role_members"]`." So the body is the POST's (`roles`,
/// required, `minItems: 1`), the scopes are checked as "any of" like the POST's, and the
/// unknown-user and unknown-role answers are the POST's. A role the user does not hold
/// is left alone (no answer for it is documented; the end state is the one asked for).
async fn unassign_user_roles(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (mut inner, roles) = match user_roles_request(
        &state,
        &headers,
        &id,
        &body,
        &["update:users", "delete:role_members"],
    ) {
        Ok(v) => v,
        Err(r) => return r,
    };
    for r in &roles {
        inner.rbac.unassign(r, &id);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn list_resource_servers(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:resource_servers"]) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let req = match paging::request(&pairs, PLAIN) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let wanted: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "identifiers" || k.starts_with("identifiers["))
        .map(|(_, v)| v.as_str())
        .collect();
    let inner = state.lock();
    let all: Vec<Value> = inner
        .rbac
        .resource_servers
        .iter()
        .filter(|s| wanted.is_empty() || wanted.contains(&s.identifier.as_str()))
        .map(ResourceServer::to_json)
        .collect();
    paging::respond(all, "resource_servers", req, PLAIN)
}

/// Seed helpers for tests and the demo (no HTTP, no rate limit).
impl Auth0State {
    /// Creates an API with these `(scope, description)` pairs; returns its id.
    pub fn seed_resource_server(
        &self,
        identifier: &str,
        name: &str,
        scopes: &[(&str, &str)],
    ) -> String {
        let mut inner = self.lock();
        let id = inner.random_alnum(24).to_lowercase();
        inner.rbac.resource_servers.push(ResourceServer {
            id: id.clone(),
            name: name.to_owned(),
            identifier: identifier.to_owned(),
            scopes: scopes
                .iter()
                .map(|(v, d)| ((*v).to_owned(), (*d).to_owned()))
                .collect(),
        });
        id
    }

    /// Creates a role (or finds the one with this name) with these
    /// `(resource_server_identifier, permission_name)` permissions; returns its id.
    pub fn seed_role(&self, name: &str, description: &str, permissions: &[(&str, &str)]) -> String {
        let mut inner = self.lock();
        let id = match inner.create_role(name, Some(description.to_owned())) {
            Some(id) => id,
            None => inner
                .rbac
                .roles
                .values()
                .find(|r| r.name == name)
                .map(|r| r.id.clone())
                .unwrap_or_default(),
        };
        if let Some(role) = inner.rbac.roles.get_mut(&id) {
            for (rs, p) in permissions {
                let w = ((*rs).to_owned(), (*p).to_owned());
                if !role.permissions.contains(&w) {
                    role.permissions.push(w);
                }
            }
        }
        id
    }

    /// Assigns a role to users (ids as `auth0|…`), whether or not they exist.
    pub fn seed_role_users(&self, role_id: &str, user_ids: &[&str]) {
        let mut inner = self.lock();
        for u in user_ids {
            inner.rbac.assign(role_id, u);
        }
    }

    /// Takes a role away from users (what an admin's `DELETE /roles/{id}/users` does).
    pub fn unseed_role_users(&self, role_id: &str, user_ids: &[&str]) {
        let mut inner = self.lock();
        for u in user_ids {
            inner.rbac.unassign(role_id, u);
        }
    }

    /// Every role as `{id, name, description}`, in creation order.
    pub fn roles(&self) -> Vec<Value> {
        self.lock()
            .rbac
            .ordered_roles()
            .map(Role::to_json)
            .collect()
    }

    /// The ids of the users holding a role, in assignment order.
    pub fn role_user_ids(&self, role_id: &str) -> Vec<String> {
        self.lock()
            .rbac
            .roles
            .get(role_id)
            .map(|r| r.users.clone())
            .unwrap_or_default()
    }

    /// The names of the roles a user holds (tenant-wide roles).
    pub fn user_role_names(&self, user_id: &str) -> Vec<String> {
        self.lock()
            .rbac
            .roles_of(user_id)
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }
}
