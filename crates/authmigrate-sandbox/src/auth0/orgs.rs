//! Organizations, members and member roles (auth0-rbac-orgs-mfa.md §2).
//!
//! Organizations and members page by offset (`page` ≤ 1000, at most 1000 records) or
//! by checkpoint; a members checkpoint page that is not empty always carries `next`
//! and the end is an empty page, as recorded. At most 10 members per
//! `POST …/members` (and, by the same rule, per `DELETE …/members`), at most 50 roles
//! per member. Member roles are kept apart from the membership: real tenants accepted a
//! role assignment before the membership; removing a member drops their member roles.
//! `GET /users/{id}/organizations` lists a user's organizations in creation order.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::handlers::{bad_request, query_get, query_pairs};
use super::paging::{self, CHECKPOINT, PLAIN, Rules};
use super::rbac::{list_body, object_body};
use super::{Auth0State, Inner, api_error};

const MEMBERS: Rules = Rules {
    next_until_empty: true,
    ..CHECKPOINT
};

/// An organization.
#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) display_name: Option<String>,
    pub(crate) metadata: Option<Map<String, Value>>,
    /// Member user ids in the order added.
    pub(crate) members: Vec<String>,
    /// user id → role ids (org-scoped).
    pub(crate) member_roles: HashMap<String, Vec<String>>,
}

impl Org {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        if let Some(d) = &self.display_name {
            m.insert("display_name".into(), json!(d));
        }
        if let Some(md) = &self.metadata {
            m.insert("metadata".into(), Value::Object(md.clone()));
        }
        Value::Object(m)
    }

    pub(crate) fn forget_user(&mut self, user_id: &str) {
        self.members.retain(|u| u != user_id);
        self.member_roles.remove(user_id);
    }

    /// Removes these members and their member roles; ids that are not members are left
    /// alone (any roles assigned to them before a membership stay).
    fn remove_members<S: AsRef<str>>(&mut self, user_ids: &[S]) {
        for u in user_ids {
            let u = u.as_ref();
            if self.members.iter().any(|m| m == u) {
                self.forget_user(u);
            }
        }
    }
}

/// The documented name rule: lowercase letters, digits, `_` and `-`, 1 to 50
/// characters (`^[a-z0-9_-]{1,50}$`, the regex itself is our reading).
fn valid_name(name: &str) -> bool {
    (1..=50).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn org_not_found() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "The organization does not exist.",
        "inexistent_organization",
    )
}

impl Inner {
    fn create_org(
        &mut self,
        name: &str,
        display_name: Option<String>,
        metadata: Option<Map<String, Value>>,
    ) -> Option<usize> {
        if self.rbac.orgs.iter().any(|o| o.name == name) {
            return None;
        }
        let id = format!("org_{}", self.random_alnum(16));
        self.rbac.orgs.push(Org {
            id,
            name: name.to_owned(),
            display_name,
            metadata,
            members: Vec::new(),
            member_roles: HashMap::new(),
        });
        Some(self.rbac.orgs.len() - 1)
    }

    fn org_index(&self, id: &str) -> Option<usize> {
        self.rbac.orgs.iter().position(|o| o.id == id)
    }
}

pub(super) fn routes() -> axum::Router<Arc<Auth0State>> {
    axum::Router::new()
        .route("/api/v2/organizations", get(list_orgs).post(create_org))
        .route("/api/v2/organizations/name/{name}", get(org_by_name))
        .route("/api/v2/organizations/{id}", get(org_by_id))
        .route(
            "/api/v2/organizations/{id}/members",
            get(list_members).post(add_members).delete(remove_members),
        )
        .route("/api/v2/users/{id}/organizations", get(user_orgs))
        .route(
            "/api/v2/organizations/{id}/members/{user_id}/roles",
            get(member_roles).post(assign_member_roles),
        )
}

async fn list_orgs(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = state.authorize(
        &headers,
        &["read:organizations", "read:organizations_summary"],
    ) {
        return r;
    }
    let req = match paging::request(&query_pairs(q.as_deref()), CHECKPOINT) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let inner = state.lock();
    let all: Vec<Value> = inner.rbac.orgs.iter().map(Org::to_json).collect();
    paging::respond(all, "organizations", req, CHECKPOINT)
}

async fn create_org(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["create:organizations"]) {
        return r;
    }
    let body = match object_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    const ALLOWED: &[&str] = &[
        "name",
        "display_name",
        "branding",
        "metadata",
        "enabled_connections",
        "token_quota",
    ];
    if let Some(k) = body.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return bad_request(&format!(
            "Payload validation error: 'Additional properties not allowed: {k}'."
        ));
    }
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return bad_request("Payload validation error: 'Missing required property: name'.");
    };
    if !valid_name(name) {
        // The OAS names the format `organization-name`; the message wording follows
        // the API's other format errors.
        return bad_request(&format!(
            "Payload validation error: 'Object didn't pass validation for format organization-name: {name}' on property name."
        ));
    }
    let display_name = match body.get("display_name") {
        None => None,
        Some(Value::String(d)) if (1..=255).contains(&d.chars().count()) => Some(d.clone()),
        Some(_) => {
            return bad_request(
                "Payload validation error: 'String length is out of range' on property display_name.",
            );
        }
    };
    let metadata = match body.get("metadata") {
        None => None,
        Some(Value::Object(m)) if m.len() > 25 => {
            return bad_request("Maximum of 25 metadata properties allowed.");
        }
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => {
            return bad_request(
                "Payload validation error: 'Expected type object' on property metadata.",
            );
        }
    };
    let mut inner = state.lock();
    match inner.create_org(name, display_name, metadata) {
        Some(i) => {
            let mut out = inner.rbac.orgs[i].to_json();
            out["enabled_connections"] = json!([]);
            (StatusCode::CREATED, Json(out)).into_response()
        }
        None => api_error(
            StatusCode::CONFLICT,
            "An organization with this name already exists.",
            "organization_conflict",
        ),
    }
}

async fn org_by_name(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:organizations"]) {
        return r;
    }
    let inner = state.lock();
    match inner.rbac.orgs.iter().find(|o| o.name == name) {
        Some(o) => Json(o.to_json()).into_response(),
        None => org_not_found(),
    }
}

async fn org_by_id(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:organizations"]) {
        return r;
    }
    let inner = state.lock();
    match inner.org_index(&id) {
        Some(i) => Json(inner.rbac.orgs[i].to_json()).into_response(),
        None => org_not_found(),
    }
}

async fn list_members(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    let with_roles =
        query_get(&pairs, "fields").is_some_and(|f| f.split(',').any(|f| f == "roles"));
    // `fields=roles` needs `read:organization_member_roles` as well.
    let scopes: &[&str] = if with_roles {
        &[
            "read:organization_members",
            "read:organization_member_roles",
        ]
    } else {
        &["read:organization_members"]
    };
    if let Err(r) = state.authorize_all(&headers, scopes) {
        return r;
    }
    let req = match paging::request(&pairs, MEMBERS) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let inner = state.lock();
    let Some(i) = inner.org_index(&id) else {
        return org_not_found();
    };
    let org = &inner.rbac.orgs[i];
    let render = |u: &String| {
        let mut m = inner.user_summary(u);
        if with_roles {
            let roles: Vec<Value> = org
                .member_roles
                .get(u)
                .into_iter()
                .flatten()
                .filter_map(|r| inner.rbac.roles.get(r))
                .map(|r| json!({"id": r.id, "name": r.name}))
                .collect();
            m["roles"] = Value::Array(roles);
        }
        m
    };
    // Only the requested page is rendered: organizations can have many members.
    paging::respond_lazy(
        org.members.len(),
        |r| org.members[r].iter().map(render).collect(),
        "members",
        req,
        MEMBERS,
    )
}

/// What `POST` and `DELETE /organizations/{id}/members` check alike, in order: the
/// scope, the body's `members`, at most 10 of them, the organization. The lock, the
/// organization's index and the member ids, or the answer.
#[allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP answer"
)]
fn members_request<'a>(
    state: &'a Auth0State,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
    scope: &str,
) -> Result<(MutexGuard<'a, Inner>, usize, Vec<String>), Response> {
    state.authorize(headers, &[scope])?;
    let members = list_body(body, "members")?;
    if members.len() > 10 {
        // DOCS assign-members.mdx: "You can send a maximum of 10 members per
        // organization per request." (the answer's exact text is not recorded); applied
        // to the DELETE as well (our reading: the docs state it for adding).
        return Err(bad_request(
            "You can send a maximum of 10 members per organization per request.",
        ));
    }
    let inner = state.lock();
    let Some(i) = inner.org_index(id) else {
        return Err(org_not_found());
    };
    Ok((inner, i, members))
}

async fn add_members(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (mut inner, i, members) =
        match members_request(&state, &headers, &id, &body, "create:organization_members") {
            Ok(v) => v,
            Err(r) => return r,
        };
    // "the user must already exist in your tenant"; the answer's text is not recorded.
    if let Some(u) = members.iter().find(|u| !inner.user_exists(u)) {
        return bad_request(&format!("The user {u} does not exist."));
    }
    let org = &mut inner.rbac.orgs[i];
    for m in members {
        if !org.members.contains(&m) {
            org.members.push(m);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /api/v2/organizations/{id}/members` (`delete_members`): 204.
///
/// auth0-rbac-orgs-mfa.md §2: "`DELETE /organizations/{id}/members` (scope
/// `delete:organization_members`) takes body `{"members":[…]}` and returns **204**."
/// The body rules and the 10-member limit are the POST's, answered as the POST answers
/// them.
async fn remove_members(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (mut inner, i, members) =
        match members_request(&state, &headers, &id, &body, "delete:organization_members") {
            Ok(v) => v,
            Err(r) => return r,
        };
    // Our choice: ids that are not members (or not users at all) are a no-op. The docs
    // list no answer for them, and the end state is the one asked for.
    inner.rbac.orgs[i].remove_members(&members);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /api/v2/users/{id}/organizations` (`get_user_organizations`, scope
/// `read:organizations`; not in the shared docs): offset paging (`page`, `per_page`
/// 1..=100 default 50, `include_totals` → `{start, limit, total, organizations}`). The
/// organizations come in creation order, the order of `GET /organizations`.
async fn user_orgs(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:organizations"]) {
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
        .orgs
        .iter()
        .filter(|o| o.members.contains(&id))
        .map(Org::to_json)
        .collect();
    paging::respond(all, "organizations", req, PLAIN)
}

async fn member_roles(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path((id, user_id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:organization_member_roles"]) {
        return r;
    }
    let req = match paging::request(&query_pairs(q.as_deref()), PLAIN) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let inner = state.lock();
    let Some(i) = inner.org_index(&id) else {
        return org_not_found();
    };
    if !inner.user_exists(&user_id) {
        return api_error(
            StatusCode::NOT_FOUND,
            "The user does not exist.",
            "inexistent_user",
        );
    }
    let all: Vec<Value> = inner.rbac.orgs[i]
        .member_roles
        .get(&user_id)
        .into_iter()
        .flatten()
        .filter_map(|r| inner.rbac.roles.get(r))
        .map(|r| r.to_json())
        .collect();
    paging::respond(all, "roles", req, PLAIN)
}

async fn assign_member_roles(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path((id, user_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["create:organization_member_roles"]) {
        return r;
    }
    let roles = match list_body(&body, "roles") {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut inner = state.lock();
    let Some(i) = inner.org_index(&id) else {
        return org_not_found();
    };
    if let Some(r) = roles.iter().find(|r| !inner.rbac.roles.contains_key(*r)) {
        return api_error(
            StatusCode::NOT_FOUND,
            &format!("The role {r} does not exist."),
            "inexistent_role",
        );
    }
    let held = inner.rbac.orgs[i].member_roles.entry(user_id).or_default();
    let mut after = held.clone();
    for r in roles {
        if !after.contains(&r) {
            after.push(r);
        }
    }
    if after.len() > 50 {
        return api_error(
            StatusCode::CONFLICT,
            "No more roles can be assigned to this organization member.",
            "conflict",
        );
    }
    *held = after;
    StatusCode::NO_CONTENT.into_response()
}

/// Seed helpers for tests and the demo (no HTTP, no rate limit).
impl Auth0State {
    /// Creates an organization (or finds the one with this name); returns its id.
    pub fn seed_organization(&self, name: &str, display_name: &str) -> String {
        let mut inner = self.lock();
        let i = match inner.create_org(name, Some(display_name.to_owned()), None) {
            Some(i) => i,
            None => inner
                .rbac
                .orgs
                .iter()
                .position(|o| o.name == name)
                .unwrap_or_default(),
        };
        inner.rbac.orgs[i].id.clone()
    }

    /// Adds members (ids as `auth0|…`) to an organization, any number at once.
    pub fn seed_org_members(&self, org_id: &str, user_ids: &[&str]) {
        let mut inner = self.lock();
        if let Some(i) = inner.org_index(org_id) {
            let org = &mut inner.rbac.orgs[i];
            for u in user_ids {
                if !org.members.iter().any(|m| m == u) {
                    org.members.push((*u).to_owned());
                }
            }
        }
    }

    /// Removes members from an organization, with their org-scoped roles (what an
    /// admin's `DELETE /organizations/{id}/members` does, any number at once).
    pub fn unseed_org_members(&self, org_id: &str, user_ids: &[&str]) {
        let mut inner = self.lock();
        if let Some(i) = inner.org_index(org_id) {
            inner.rbac.orgs[i].remove_members(user_ids);
        }
    }

    /// Gives a member org-scoped roles.
    pub fn seed_org_member_roles(&self, org_id: &str, user_id: &str, role_ids: &[&str]) {
        let mut inner = self.lock();
        if let Some(i) = inner.org_index(org_id) {
            let held = inner.rbac.orgs[i]
                .member_roles
                .entry(user_id.to_owned())
                .or_default();
            for r in role_ids {
                if !held.iter().any(|h| h == r) {
                    held.push((*r).to_owned());
                }
            }
        }
    }

    /// Every organization as `{id, name, display_name}`, in creation order.
    pub fn organizations(&self) -> Vec<Value> {
        self.lock().rbac.orgs.iter().map(Org::to_json).collect()
    }

    /// The member ids of an organization, in the order added.
    pub fn org_member_ids(&self, org_id: &str) -> Vec<String> {
        let inner = self.lock();
        inner
            .org_index(org_id)
            .map(|i| inner.rbac.orgs[i].members.clone())
            .unwrap_or_default()
    }

    /// The names of the organizations a user is a member of, sorted.
    pub fn user_org_names(&self, user_id: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .lock()
            .rbac
            .orgs
            .iter()
            .filter(|o| o.members.iter().any(|m| m == user_id))
            .map(|o| o.name.clone())
            .collect();
        names.sort();
        names
    }

    /// The names of a member's org-scoped roles.
    pub fn org_member_role_names(&self, org_id: &str, user_id: &str) -> Vec<String> {
        let inner = self.lock();
        let Some(i) = inner.org_index(org_id) else {
            return Vec::new();
        };
        inner.rbac.orgs[i]
            .member_roles
            .get(user_id)
            .into_iter()
            .flatten()
            .filter_map(|r| inner.rbac.roles.get(r))
            .map(|r| r.name.clone())
            .collect()
    }
}
