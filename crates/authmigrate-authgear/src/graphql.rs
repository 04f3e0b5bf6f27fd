//! The Admin API GraphQL client (`POST /_api/admin/graphql`), after
//! shared/docs/authgear-admin-graphql.md §1 and §3.
//!
//! - Requests are `application/json` `{"query","variables"}` POSTs through
//!   [`AdminClient::post_json`]: the same admin JWT as the import API, the shared
//!   retry policy (429 and 5xx retried).
//! - A reply is HTTP 200 with `{"data", "errors"}`; an error's `extensions` carry
//!   `errorName` and `reason` ([`GraphqlError`]). A 403 (`Forbidden`, text) is a
//!   refused token; a 400 `{"error":{…}}` is a request the server refused to run
//!   (more than 5 mutation fields, a fragment cycle).
//! - One request may hold at most [`MAX_MUTATIONS`] mutation fields, and it runs in
//!   one transaction: one failing field rolls the others back and `data` is `null`.
//!   [`Graphql::delete_users`] therefore sends up to five `deleteUser` fields and,
//!   when the request fails, sends each of them alone to learn which one failed.
//! - Users are named by node ID: base64url without padding of `User:<raw id>`
//!   ([`user_node_id`]).
//!
//! - Roles and groups (§2): [`Graphql::keys`] pages `roles`/`groups` (100 a page,
//!   forward cursors; an exact-multiple last page still says `hasNextPage`, the next
//!   one is empty); [`Graphql::create_entries`] sends up to five `createRole` /
//!   `createGroup` fields a request and treats `RoleDuplicateKey` /
//!   `GroupDuplicateKey` as "already there".

use std::fmt;

use authmigrate_core::backend::BackendError;
use authmigrate_core::delete::Deleted;
use authmigrate_core::retry::{HttpReply, default_verdict};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::backend::FORBIDDEN_HINT;
use crate::client::{AdminClient, CallError};

/// Mutation fields one request may hold (`maxMutationFieldsPerRequest = 5`).
pub const MAX_MUTATIONS: usize = 5;

/// The fields read of a `User` node.
const USER_FIELDS: &str = "id standardAttributes lastLoginAt";

/// One error of a GraphQL reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphqlError {
    /// The message.
    pub message: String,
    /// `extensions.errorName` (`NotFound`, `Invalid`, …), if any.
    pub name: Option<String>,
    /// `extensions.reason` (`UserNotFound`, …), if any.
    pub reason: Option<String>,
    /// The field path (`["d0"]`).
    pub path: Vec<String>,
}

impl fmt::Display for GraphqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, &self.reason) {
            (Some(n), Some(r)) if n != r => write!(f, "{n}/{r}: {}", self.message),
            (Some(n), _) => write!(f, "{n}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A GraphQL reply: `data` (maybe `null`) and the errors.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `data`.
    pub data: Value,
    /// `errors` (empty when none).
    pub errors: Vec<GraphqlError>,
}

/// A user node as read by the look-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The node ID.
    pub id: String,
    /// `standardAttributes.email`.
    pub email: Option<String>,
    /// `standardAttributes.preferred_username`.
    pub preferred_username: Option<String>,
    /// `lastLoginAt`.
    pub last_login_at: Option<String>,
}

impl User {
    fn from_value(v: &Value) -> Option<Self> {
        let s = |k: &str| v["standardAttributes"][k].as_str().map(str::to_owned);
        Some(Self {
            id: v["id"].as_str()?.to_owned(),
            email: s("email"),
            preferred_username: s("preferred_username"),
            last_login_at: v["lastLoginAt"].as_str().map(str::to_owned),
        })
    }

    /// The raw user id (the node ID decoded), if it is a `User` node ID.
    pub fn raw_id(&self) -> Option<String> {
        raw_user_id(&self.id)
    }
}

/// The Admin GraphQL client, borrowing an [`AdminClient`].
#[derive(Debug, Clone, Copy)]
pub struct Graphql<'a> {
    client: &'a AdminClient,
}

impl<'a> Graphql<'a> {
    /// A client speaking through `client`.
    pub fn new(client: &'a AdminClient) -> Self {
        Self { client }
    }

    /// Runs one query or mutation. Transport failures, a refused token and a
    /// refused request are errors; GraphQL errors are in the [`Reply`].
    pub async fn request(&self, query: &str, variables: Value) -> Result<Reply, BackendError> {
        const WHAT: &str = "authgear admin graphql request";
        let url = self.client.url(&["_api", "admin", "graphql"]);
        let body = serde_json::to_vec(&json!({ "query": query, "variables": variables }))
            .map_err(|e| BackendError::fatal(format!("{WHAT}: {e}"), None))?;
        let reply = self
            .client
            .post_json(WHAT, &url, body.into(), default_verdict)
            .await
            .map_err(|e| match e {
                CallError::Token(m) => BackendError::fatal(m, None),
                CallError::Retry(r) => BackendError::Transient(r.to_string()),
            })?;
        parse_reply(WHAT, &reply)
    }

    /// `getUsersByStandardAttribute(attributeName, attributeValue)`: every user
    /// with an identity carrying the claim (`email`, `phone_number`,
    /// `preferred_username`).
    pub async fn users_by_standard_attribute(
        &self,
        name: &str,
        value: &str,
    ) -> Result<Vec<User>, BackendError> {
        let q = format!(
            "query($n: String!, $v: String!) {{ users: getUsersByStandardAttribute(attributeName: $n, attributeValue: $v) {{ {USER_FIELDS} }} }}"
        );
        let r = self.request(&q, json!({ "n": name, "v": value })).await?;
        query_error("getUsersByStandardAttribute", &r)?;
        Ok(r.data["users"]
            .as_array()
            .map(|a| a.iter().filter_map(User::from_value).collect())
            .unwrap_or_default())
    }

    /// `getUserByLoginID(loginIDKey, loginIDValue)`: `None` when no user has it.
    pub async fn user_by_login_id(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Option<User>, BackendError> {
        let q = format!(
            "query($k: String!, $v: String!) {{ user: getUserByLoginID(loginIDKey: $k, loginIDValue: $v) {{ {USER_FIELDS} }} }}"
        );
        let r = self.request(&q, json!({ "k": key, "v": value })).await?;
        query_error("getUserByLoginID", &r)?;
        Ok(User::from_value(&r.data["user"]))
    }

    /// `node(id:)` as a `User`: `None` for an unknown or undecodable id.
    pub async fn user(&self, node_id: &str) -> Result<Option<User>, BackendError> {
        let q =
            format!("query($id: ID!) {{ node(id: $id) {{ ... on User {{ {USER_FIELDS} }} }} }}");
        let r = self.request(&q, json!({ "id": node_id })).await?;
        query_error("node", &r)?;
        Ok(User::from_value(&r.data["node"]))
    }

    /// Deletes users by node ID, at most [`MAX_MUTATIONS`] per request; one answer
    /// per id, in order. A failed request is rolled back whole by Authgear, so its
    /// ids are then sent one by one.
    pub async fn delete_users(&self, node_ids: &[String]) -> Result<Vec<Deleted>, BackendError> {
        let mut out = Vec::with_capacity(node_ids.len());
        for group in node_ids.chunks(MAX_MUTATIONS) {
            let r = self.delete_group(group).await?;
            if r.errors.is_empty() {
                out.extend(group.iter().map(|_| Deleted::Deleted));
                continue;
            }
            if group.len() == 1 {
                out.push(delete_failure(&r.errors[0]));
                continue;
            }
            for id in group {
                let r = self.delete_group(std::slice::from_ref(id)).await?;
                out.push(match r.errors.first() {
                    None => Deleted::Deleted,
                    Some(e) => delete_failure(e),
                });
            }
        }
        Ok(out)
    }

    async fn delete_group(&self, ids: &[String]) -> Result<Reply, BackendError> {
        let params: Vec<String> = (0..ids.len()).map(|i| format!("$u{i}: ID!")).collect();
        let fields: Vec<String> = (0..ids.len())
            .map(|i| format!("d{i}: deleteUser(input: {{userID: $u{i}}}) {{ deletedUserID }}"))
            .collect();
        let query = format!("mutation({}) {{ {} }}", params.join(", "), fields.join(" "));
        let vars: Map<String, Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (format!("u{i}"), json!(id)))
            .collect();
        self.request(&query, Value::Object(vars)).await
    }
}

/// Roles or groups, for [`Graphql::keys`] and [`Graphql::create_entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directory {
    /// Roles.
    Roles,
    /// Groups.
    Groups,
}

impl Directory {
    fn names(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Self::Roles => ("roles", "createRole", "role", "RoleDuplicateKey"),
            Self::Groups => ("groups", "createGroup", "group", "GroupDuplicateKey"),
        }
    }
}

/// A role or group the project holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The name.
    pub name: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// A group's role keys (empty for a role).
    pub roles: Vec<String>,
}

/// A role or group to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The key.
    pub key: String,
    /// The name (an empty one is sent as absent).
    pub name: Option<String>,
    /// The description.
    pub description: Option<String>,
}

impl Graphql<'_> {
    /// Every key of the project's roles or groups.
    pub async fn keys(&self, dir: Directory) -> Result<Vec<String>, BackendError> {
        Ok(self
            .entries(dir)
            .await?
            .into_iter()
            .map(|e| e.key)
            .collect())
    }

    /// Every role or group of the project (a group with the keys of its roles:
    /// `Group.roles` is an array connection, whole without `first`, §1.6), 100 a page.
    pub async fn entries(&self, dir: Directory) -> Result<Vec<Entry>, BackendError> {
        let (field, ..) = dir.names();
        let extra = match dir {
            Directory::Roles => "",
            Directory::Groups => " roles { edges { node { key } } }",
        };
        let q = format!(
            "query($after: String) {{ list: {field}(first: 100, after: $after) {{ edges {{ node {{ key name description{extra} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        );
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let r = self.request(&q, json!({ "after": after })).await?;
            query_error(field, &r)?;
            let edges = r.data["list"]["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for e in &edges {
                let node = &e["node"];
                let Some(key) = text(&node["key"]) else {
                    continue;
                };
                out.push(Entry {
                    key,
                    name: text(&node["name"]),
                    description: text(&node["description"]),
                    roles: node["roles"]["edges"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| text(&r["node"]["key"]))
                        .collect(),
                });
            }
            let info = &r.data["list"]["pageInfo"];
            match info["endCursor"].as_str() {
                Some(c) if !c.is_empty() && !edges.is_empty() && info["hasNextPage"] == true => {
                    after = Some(c.to_owned());
                }
                _ => return Ok(out),
            }
        }
    }

    /// Creates roles or groups, at most [`MAX_MUTATIONS`] a request. A key the project
    /// holds already is not an error. A failed request is rolled back whole, so its
    /// entries are then sent one by one to learn which failed.
    pub async fn create_entries(
        &self,
        dir: Directory,
        entries: &[NewKey],
    ) -> Result<(), BackendError> {
        for group in entries.chunks(MAX_MUTATIONS) {
            let r = self.create_group(dir, group).await?;
            if r.errors.is_empty() {
                continue;
            }
            for e in group {
                let r = self.create_group(dir, std::slice::from_ref(e)).await?;
                if let Some(err) = r.errors.first() {
                    let (_, mutation, _, duplicate) = dir.names();
                    if err.reason.as_deref() == Some(duplicate) {
                        continue;
                    }
                    return Err(BackendError::fatal(
                        format!("authgear {mutation} `{}`: {err}", e.key),
                        None,
                    ));
                }
            }
        }
        Ok(())
    }

    async fn create_group(
        &self,
        dir: Directory,
        entries: &[NewKey],
    ) -> Result<Reply, BackendError> {
        let (_, mutation, node, _) = dir.names();
        let ty = if dir == Directory::Roles {
            "CreateRoleInput"
        } else {
            "CreateGroupInput"
        };
        let params: Vec<String> = (0..entries.len())
            .map(|i| format!("$i{i}: {ty}!"))
            .collect();
        let fields: Vec<String> = (0..entries.len())
            .map(|i| format!("c{i}: {mutation}(input: $i{i}) {{ {node} {{ id key }} }}"))
            .collect();
        let query = format!("mutation({}) {{ {} }}", params.join(", "), fields.join(" "));
        let vars: Map<String, Value> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut input = json!({ "key": e.key });
                if let Some(n) = e.name.as_ref().filter(|n| !n.is_empty()) {
                    input["name"] = json!(n);
                }
                if let Some(d) = e.description.as_ref().filter(|d| !d.is_empty()) {
                    input["description"] = json!(d);
                }
                (format!("i{i}"), input)
            })
            .collect();
        self.request(&query, Value::Object(vars)).await
    }
}

fn delete_failure(e: &GraphqlError) -> Deleted {
    if e.reason.as_deref() == Some("UserNotFound") || e.name.as_deref() == Some("NotFound") {
        Deleted::NotFound
    } else {
        Deleted::Failed {
            code: e
                .reason
                .clone()
                .or_else(|| e.name.clone())
                .unwrap_or_else(|| "GRAPHQL_ERROR".into()),
            message: e.message.clone(),
        }
    }
}

/// A look-up whose field failed: an error (these queries are nullable, so other
/// fields would survive, but each look-up asks for one field only).
fn query_error(field: &str, r: &Reply) -> Result<(), BackendError> {
    match r.errors.first() {
        None => Ok(()),
        Some(e)
            if e.name.as_deref() == Some("TooManyRequest")
                || e.name.as_deref() == Some("ServiceUnavailable") =>
        {
            Err(BackendError::Transient(format!("{field}: {e}")))
        }
        Some(e) => Err(BackendError::fatal(format!("authgear {field}: {e}"), None)),
    }
}

fn parse_reply(what: &str, reply: &HttpReply) -> Result<Reply, BackendError> {
    match reply.status {
        StatusCode::FORBIDDEN => {
            return Err(BackendError::fatal(
                format!("{what}: authgear refused the admin token (HTTP 403 Forbidden)"),
                Some(FORBIDDEN_HINT.to_owned()),
            ));
        }
        s if !s.is_success() => {
            // `{"error":{"name","reason","message"}}` from the pre-execution checks.
            let v: Value = reply.json().unwrap_or(Value::Null);
            let message = v["error"]["message"].as_str().map_or_else(
                || format!("HTTP {}", s.as_u16()),
                |m| format!("HTTP {}: {m}", s.as_u16()),
            );
            return Err(BackendError::fatal(format!("{what}: {message}"), None));
        }
        _ => {}
    }
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default)]
        data: Value,
        #[serde(default)]
        errors: Vec<Value>,
    }
    let env: Envelope = reply
        .json()
        .map_err(|e| BackendError::Transient(format!("{what}: not a GraphQL reply: {e}")))?;
    let errors = env
        .errors
        .iter()
        .map(|e| GraphqlError {
            message: e["message"].as_str().unwrap_or("").to_owned(),
            name: e["extensions"]["errorName"].as_str().map(str::to_owned),
            reason: e["extensions"]["reason"].as_str().map(str::to_owned),
            path: e["path"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    Ok(Reply {
        data: env.data,
        errors,
    })
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The node ID of a user: base64url, no padding, of `User:<raw id>`.
pub fn user_node_id(raw: &str) -> String {
    let bytes = format!("User:{raw}").into_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The raw user id of a `User` node ID; `None` if it is not one.
pub fn raw_user_id(node_id: &str) -> Option<String> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut bytes = Vec::new();
    for c in node_id.bytes() {
        let v = B64URL.iter().position(|b| *b == c)? as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            bytes.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("User:")
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_base64url_without_padding() {
        // The example in shared/docs/authgear-admin-graphql.md §1.5.
        let raw = "97b1c929-842c-415c-a7df-6967efdda160";
        let id = user_node_id(raw);
        assert_eq!(
            id,
            "VXNlcjo5N2IxYzkyOS04NDJjLTQxNWMtYTdkZi02OTY3ZWZkZGExNjA"
        );
        assert_eq!(raw_user_id(&id).as_deref(), Some(raw));
        for raw in ["a", "ab", "abc", "abcd"] {
            assert_eq!(raw_user_id(&user_node_id(raw)).as_deref(), Some(raw));
        }
        assert_eq!(raw_user_id("Um9sZTox"), None, "a Role node");
        assert_eq!(raw_user_id("not base64!"), None);
    }
}
