//! Query and mutation resolvers (authgear-admin-graphql.md §2, §3). Error names,
//! reasons and messages are the ones the doc quotes from the server.

use serde_json::{Map, Value, json};

use super::parser::{Document, Field};
use super::render::{Out, decode_node_id, offset_conn, render};
use super::{GqlError, eval};
use crate::authgear::AuthgearConfig;
use crate::authgear::api::api_error;
use crate::authgear::roles::{Directory, Entry, check_key, unknown_groups, unknown_roles};
use crate::authgear::store::{Kind, Store};

/// What resolvers work on: the project's data (inside the request's transaction).
pub(super) struct Ctx<'a> {
    pub(super) store: &'a mut Store,
    pub(super) directory: &'a mut Directory,
    pub(super) config: &'a AuthgearConfig,
    pub(super) now: jiff::Timestamp,
    pub(super) vars: &'a Map<String, Value>,
    pub(super) doc: &'a Document,
}

impl Ctx<'_> {
    /// A field's arguments with variables substituted.
    pub(super) fn args(&self, f: &Field) -> Map<String, Value> {
        f.args
            .iter()
            .map(|(k, v)| (k.clone(), eval(v, self.vars)))
            .collect()
    }
}

fn err(name: &str, reason: &str, message: &str) -> GqlError {
    GqlError::Api(api_error(name, reason, message, None))
}

fn unknown_field(f: &Field, ty: &str) -> GqlError {
    GqlError::Validation(
        format!("Cannot query field \"{}\" on type \"{ty}\".", f.name),
        f.pos,
    )
}

fn str_arg<'v>(args: &'v Map<String, Value>, name: &str, f: &Field) -> Result<&'v str, GqlError> {
    args.get(name).and_then(Value::as_str).ok_or_else(|| {
        GqlError::Validation(
            format!("Field \"{}\" argument \"{name}\" of type \"String!\" is required but not provided.", f.name),
            f.pos,
        )
    })
}

/// Query fields whose type is non-null: an error there nulls the whole `data`.
pub(super) fn non_null_query_field(name: &str) -> bool {
    matches!(name, "nodes" | "getUsersByStandardAttribute")
}

fn user_out(store: &Store, raw_id: &str) -> Out {
    if store.position(raw_id).is_some() {
        Out::User(raw_id.to_owned())
    } else {
        Out::Null
    }
}

fn node_out(ctx: &Ctx<'_>, id: &str) -> Out {
    match decode_node_id(id) {
        Some((ty, raw)) if ty == "User" => user_out(ctx.store, &raw),
        Some((ty, raw)) if ty == "Role" && ctx.directory.roles.iter().any(|r| r.id == raw) => {
            Out::Role(raw)
        }
        Some((ty, raw)) if ty == "Group" && ctx.directory.groups.iter().any(|g| g.id == raw) => {
            Out::Group(raw)
        }
        _ => Out::Null,
    }
}

fn matches_keyword(ctx: &Ctx<'_>, idx: usize, keyword: &str) -> bool {
    let u = &ctx.store.users[idx];
    let k = keyword.to_lowercase();
    u.id.contains(&k)
        || u.login_ids
            .iter()
            .any(|l| l.value.to_lowercase().contains(&k))
        || u.standard
            .values()
            .filter_map(Value::as_str)
            .any(|s| s.to_lowercase().contains(&k))
}

fn list_entries(
    entries: &[Entry],
    ty: &str,
    args: &Map<String, Value>,
) -> Result<Vec<Out>, GqlError> {
    let keyword = args
        .get("searchKeyword")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let mut excluded = Vec::new();
    for id in args
        .get("excludedIDs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match id.as_str().and_then(decode_node_id) {
            Some((t, raw)) if t == ty => excluded.push(raw),
            _ => {
                return Err(err(
                    "Invalid",
                    "Invalid",
                    &format!("invalid {} ID", ty.to_lowercase()),
                ));
            }
        }
    }
    let mut list: Vec<&Entry> = entries
        .iter()
        .filter(|e| !excluded.contains(&e.id))
        .filter(|e| {
            keyword.as_ref().is_none_or(|k| {
                e.key.to_lowercase().contains(k)
                    || e.name
                        .as_ref()
                        .is_some_and(|n| n.to_lowercase().contains(k))
            })
        })
        .collect();
    list.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(list
        .into_iter()
        .map(|e| {
            if ty == "Role" {
                Out::Role(e.id.clone())
            } else {
                Out::Group(e.id.clone())
            }
        })
        .collect())
}

/// One top-level query field, rendered.
pub(super) fn query_field(ctx: &mut Ctx<'_>, f: &Field) -> Result<Value, GqlError> {
    let args = ctx.args(f);
    let out = match f.name.as_str() {
        "__typename" => Out::Json(json!("Query")),
        "node" => node_out(ctx, str_arg(&args, "id", f)?),
        "nodes" => {
            let ids = args
                .get("ids")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Out::List(
                ids.iter()
                    .map(|id| id.as_str().map_or(Out::Null, |id| node_out(ctx, id)))
                    .collect(),
            )
        }
        "getUserByLoginID" => {
            let key = str_arg(&args, "loginIDKey", f)?;
            let value = str_arg(&args, "loginIDValue", f)?;
            // The default keys are the type names; the message for an unknown key is the
            // sandbox's (the doc names only the reason).
            let kind = match key {
                "email" if ctx.config.login_id_keys.email => Kind::Email,
                "phone" if ctx.config.login_id_keys.phone => Kind::Phone,
                "username" if ctx.config.login_id_keys.username => Kind::Username,
                _ => {
                    return Err(err(
                        "Invalid",
                        "GetUsersInvalidArgument",
                        "invalid loginIDKey",
                    ));
                }
            };
            let normalised = kind.normalise(ctx.config, value.trim());
            match ctx.store.by_login_id(kind, &normalised).first() {
                Some(&idx) => Out::User(ctx.store.users[idx].id.clone()),
                None => Out::Null,
            }
        }
        "getUsersByStandardAttribute" => {
            let name = str_arg(&args, "attributeName", f)?;
            let value = str_arg(&args, "attributeValue", f)?;
            let kind = match name {
                "email" => Kind::Email,
                "phone_number" => Kind::Phone,
                "preferred_username" => Kind::Username,
                _ => {
                    return Err(err(
                        "Invalid",
                        "GetUsersInvalidArgument",
                        "attributeName must be email, phone_number or preferred_username",
                    ));
                }
            };
            if kind == Kind::Email && !value.contains('@') {
                return Err(err(
                    "Invalid",
                    "GetUsersInvalidArgument",
                    "invalid attributeValue",
                ));
            }
            let normalised = kind.normalise(ctx.config, value.trim());
            Out::List(
                ctx.store
                    .by_login_id(kind, &normalised)
                    .into_iter()
                    .map(|i| Out::User(ctx.store.users[i].id.clone()))
                    .collect(),
            )
        }
        "users" => {
            let keyword = args
                .get("searchKeyword")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty());
            let keys = |name: &str| -> Vec<String> {
                args.get(name)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (role_keys, group_keys) = (keys("roleKeys"), keys("groupKeys"));
            let mut idxs: Vec<usize> = (0..ctx.store.users.len())
                .filter(|&i| keyword.is_none_or(|k| matches_keyword(ctx, i, k)))
                .filter(|&i| {
                    role_keys.is_empty()
                        || ctx.store.users[i]
                            .roles
                            .iter()
                            .any(|r| role_keys.contains(r))
                })
                .filter(|&i| {
                    group_keys.is_empty()
                        || ctx.store.users[i]
                            .groups
                            .iter()
                            .any(|g| group_keys.contains(g))
                })
                .collect();
            if args.get("sortDirection").and_then(Value::as_str) == Some("DESC") {
                idxs.reverse();
            }
            let searched = keyword.is_some() || !role_keys.is_empty() || !group_keys.is_empty();
            // With a search, `totalCount` is null (pgsearch); without, the user count.
            let total = (!searched).then_some(ctx.store.users.len());
            let users = idxs
                .into_iter()
                .map(|i| Out::User(ctx.store.users[i].id.clone()))
                .collect();
            Out::Conn(offset_conn("UserConnection", users, &args, total)?)
        }
        "roles" | "groups" => {
            let (entries, ty, conn) = if f.name == "roles" {
                (&ctx.directory.roles, "Role", "RoleConnection")
            } else {
                (&ctx.directory.groups, "Group", "GroupConnection")
            };
            // `totalCount` counts every role/group, ignoring the filters.
            let total = entries.len();
            let list = list_entries(entries, ty, &args)?;
            Out::Conn(offset_conn(conn, list, &args, Some(total))?)
        }
        _ => return Err(unknown_field(f, "Query")),
    };
    render(ctx, out, &f.selection)
}

fn input(args: &Map<String, Value>) -> Map<String, Value> {
    args.get("input")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// A node id of type `ty` (`"invalid user ID"` otherwise), decoded to the raw id.
fn raw_id(v: Option<&Value>, ty: &str) -> Result<String, GqlError> {
    match v.and_then(Value::as_str).and_then(decode_node_id) {
        Some((t, raw)) if t == ty => Ok(raw),
        _ => Err(err(
            "Invalid",
            "Invalid",
            &format!("invalid {} ID", ty.to_lowercase()),
        )),
    }
}

/// A list argument the resolver reads unchecked (`input["userIDs"].([]any)`): a
/// missing or null list is a Go panic, i.e. "unexpected error".
fn list<'v>(input: &'v Map<String, Value>, name: &str) -> Result<Vec<&'v str>, GqlError> {
    let items = input
        .get(name)
        .and_then(Value::as_array)
        .ok_or(GqlError::Unexpected)?;
    Ok(items.iter().filter_map(Value::as_str).collect())
}

fn user_idx(store: &Store, input: &Map<String, Value>) -> Result<usize, GqlError> {
    let raw = raw_id(input.get("userID"), "User")?;
    store
        .position(&raw)
        .ok_or_else(|| err("NotFound", "UserNotFound", "user not found"))
}

fn opt_text(v: Option<&Value>) -> Option<Option<String>> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)),
    }
}

/// `(roles or groups, is_role)` of the directory.
fn entries(dir: &mut Directory, role: bool) -> &mut Vec<Entry> {
    if role {
        &mut dir.roles
    } else {
        &mut dir.groups
    }
}

fn not_found(role: bool) -> GqlError {
    if role {
        err("NotFound", "RoleNotFound", "role not found")
    } else {
        err("NotFound", "GroupNotFound", "group not found")
    }
}

fn create(ctx: &mut Ctx<'_>, input: &Map<String, Value>, role: bool) -> Result<Out, GqlError> {
    let key = input.get("key").and_then(Value::as_str).unwrap_or("");
    check_key(key).map_err(GqlError::Api)?;
    let now = ctx.now;
    let list = entries(ctx.directory, role);
    if list.iter().any(|e| e.key == key) {
        return Err(if role {
            err("BadRequest", "RoleDuplicateKey", "duplicate role key")
        } else {
            err("BadRequest", "GroupDuplicateKey", "duplicate group key")
        });
    }
    let mut e = Entry::new(key, now);
    // On create an empty string is treated as absent.
    e.name = opt_text(input.get("name")).flatten();
    e.description = opt_text(input.get("description")).flatten();
    let id = e.id.clone();
    list.push(e);
    Ok(if role {
        Out::Obj("CreateRolePayload", vec![("role", Out::Role(id))])
    } else {
        Out::Obj("CreateGroupPayload", vec![("group", Out::Group(id))])
    })
}

fn update(ctx: &mut Ctx<'_>, input: &Map<String, Value>, role: bool) -> Result<Out, GqlError> {
    let ty = if role { "Role" } else { "Group" };
    let id = raw_id(input.get("id"), ty)?;
    let now = ctx.now;
    let list = entries(ctx.directory, role);
    let idx = list
        .iter()
        .position(|e| e.id == id)
        .ok_or_else(|| not_found(role))?;
    let old_key = list[idx].key.clone();
    let new_key = input.get("key").and_then(Value::as_str).map(str::to_owned);
    if let Some(k) = &new_key {
        check_key(k).map_err(GqlError::Api)?;
        if list.iter().any(|e| e.key == *k && e.id != id) {
            return Err(if role {
                err("BadRequest", "RoleDuplicateKey", "duplicate role key")
            } else {
                err("BadRequest", "GroupDuplicateKey", "duplicate group key")
            });
        }
    }
    let e = &mut list[idx];
    // On update `""` clears; null/absent leaves unchanged.
    if let Some(name) = opt_text(input.get("name")) {
        e.name = name;
    }
    if let Some(d) = opt_text(input.get("description")) {
        e.description = d;
    }
    e.updated_at = now;
    if let Some(k) = new_key.filter(|k| *k != old_key) {
        e.key = k.clone();
        rename(ctx, &old_key, &k, role);
    }
    Ok(if role {
        Out::Obj("UpdateRolePayload", vec![("role", Out::Role(id))])
    } else {
        Out::Obj("UpdateGroupPayload", vec![("group", Out::Group(id))])
    })
}

fn rename(ctx: &mut Ctx<'_>, old: &str, new: &str, role: bool) {
    for i in 0..ctx.store.users.len() {
        let mut u = ctx.store.users[i].clone();
        let keys = if role { &mut u.roles } else { &mut u.groups };
        if let Some(k) = keys.iter_mut().find(|k| *k == old) {
            *k = new.to_owned();
            ctx.store.replace(i, u);
        }
    }
    if role {
        for g in &mut ctx.directory.groups {
            for k in g.roles.iter_mut().filter(|k| *k == old) {
                *k = new.to_owned();
            }
        }
    }
}

fn delete(ctx: &mut Ctx<'_>, input: &Map<String, Value>, role: bool) -> Result<Out, GqlError> {
    let id = raw_id(input.get("id"), if role { "Role" } else { "Group" })?;
    let list = entries(ctx.directory, role);
    let idx = list
        .iter()
        .position(|e| e.id == id)
        .ok_or_else(|| not_found(role))?;
    let key = list.remove(idx).key;
    for i in 0..ctx.store.users.len() {
        let mut u = ctx.store.users[i].clone();
        let keys = if role { &mut u.roles } else { &mut u.groups };
        if keys.contains(&key) {
            keys.retain(|k| *k != key);
            ctx.store.replace(i, u);
        }
    }
    if role {
        for g in &mut ctx.directory.groups {
            g.roles.retain(|k| *k != key);
        }
    }
    let payload = if role {
        "DeleteRolePayload"
    } else {
        "DeleteGroupPayload"
    };
    Ok(Out::Obj(payload, vec![("ok", Out::Json(json!(true)))]))
}

/// `addUserToRoles` & co.: one user, several keys.
fn user_keys(
    ctx: &mut Ctx<'_>,
    input: &Map<String, Value>,
    role: bool,
    add: bool,
) -> Result<Out, GqlError> {
    let idx = user_idx(ctx.store, input)?;
    let keys = list(input, if role { "roleKeys" } else { "groupKeys" })?;
    let defined = |k: &str| {
        if role {
            ctx.directory.has_role(k)
        } else {
            ctx.directory.has_group(k)
        }
    };
    let unknown: Vec<String> = keys
        .iter()
        .filter(|k| !defined(k))
        .map(|k| (*k).to_owned())
        .collect();
    if !unknown.is_empty() {
        return Err(GqlError::Api(if role {
            unknown_roles(&unknown)
        } else {
            unknown_groups(&unknown)
        }));
    }
    let mut u = ctx.store.users[idx].clone();
    let held = if role { &mut u.roles } else { &mut u.groups };
    for k in keys {
        if add && !held.iter().any(|h| h == k) {
            held.push(k.to_owned());
        } else if !add {
            held.retain(|h| h != k);
        }
    }
    let id = u.id.clone();
    ctx.store.replace(idx, u);
    let payload = match (role, add) {
        (true, true) => "AddUserToRolesPayload",
        (true, false) => "RemoveUserFromRolesPayload",
        (false, true) => "AddUserToGroupsPayload",
        (false, false) => "RemoveUserFromGroupsPayload",
    };
    Ok(Out::Obj(payload, vec![("user", Out::User(id))]))
}

/// `addRoleToUsers` & co.: one key, several users.
fn key_users(
    ctx: &mut Ctx<'_>,
    input: &Map<String, Value>,
    role: bool,
    add: bool,
) -> Result<Out, GqlError> {
    let key = input
        .get(if role { "roleKey" } else { "groupKey" })
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let entry_id = entries(ctx.directory, role)
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.id.clone())
        .ok_or_else(|| not_found(role))?;
    let mut raws = Vec::new();
    for id in list(input, "userIDs")? {
        raws.push(raw_id(Some(&json!(id)), "User")?);
    }
    let missing: Vec<&String> = raws
        .iter()
        .filter(|r| ctx.store.position(r).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(GqlError::Api(api_error(
            "NotFound",
            "UserUnknownKeys",
            "unknown user ids",
            Some(json!({ "ids": missing })),
        )));
    }
    for raw in &raws {
        let Some(idx) = ctx.store.position(raw) else {
            continue;
        };
        let mut u = ctx.store.users[idx].clone();
        let held = if role { &mut u.roles } else { &mut u.groups };
        if add && !held.contains(&key) {
            held.push(key.clone());
        } else if !add {
            held.retain(|h| *h != key);
        }
        ctx.store.replace(idx, u);
    }
    let payload = match (role, add) {
        (true, true) => "AddRoleToUsersPayload",
        (true, false) => "RemoveRoleFromUsersPayload",
        (false, true) => "AddGroupToUsersPayload",
        (false, false) => "RemoveGroupToUsersPayload",
    };
    Ok(if role {
        Out::Obj(payload, vec![("role", Out::Role(entry_id))])
    } else {
        Out::Obj(payload, vec![("group", Out::Group(entry_id))])
    })
}

/// `addRoleToGroups` / `removeRoleFromGroups` (`by_role`) and `addGroupToRoles` /
/// `removeGroupFromRoles`. Unknown role keys in the latter keep the server's quirk:
/// reason `GroupUnknownKeys`, message "unknown role keys".
fn role_groups(
    ctx: &mut Ctx<'_>,
    input: &Map<String, Value>,
    by_role: bool,
    add: bool,
) -> Result<Out, GqlError> {
    let dir = &mut *ctx.directory;
    let pairs: Vec<(String, String)>;
    let payload_out;
    if by_role {
        let key = input.get("roleKey").and_then(Value::as_str).unwrap_or("");
        let role = dir
            .roles
            .iter()
            .find(|r| r.key == key)
            .ok_or_else(|| not_found(true))?;
        payload_out = Out::Role(role.id.clone());
        let groups = list(input, "groupKeys")?;
        let unknown: Vec<String> = groups
            .iter()
            .filter(|g| !dir.has_group(g))
            .map(|g| (*g).to_owned())
            .collect();
        if !unknown.is_empty() {
            return Err(GqlError::Api(unknown_groups(&unknown)));
        }
        pairs = groups
            .iter()
            .map(|g| ((*g).to_owned(), key.to_owned()))
            .collect();
    } else {
        let key = input.get("groupKey").and_then(Value::as_str).unwrap_or("");
        let group = dir
            .groups
            .iter()
            .find(|g| g.key == key)
            .ok_or_else(|| not_found(false))?;
        payload_out = Out::Group(group.id.clone());
        let roles = list(input, "roleKeys")?;
        let unknown: Vec<String> = roles
            .iter()
            .filter(|r| !dir.has_role(r))
            .map(|r| (*r).to_owned())
            .collect();
        if !unknown.is_empty() {
            return Err(GqlError::Api(api_error(
                "NotFound",
                "GroupUnknownKeys",
                "unknown role keys",
                Some(json!({ "keys": unknown })),
            )));
        }
        pairs = roles
            .iter()
            .map(|r| (key.to_owned(), (*r).to_owned()))
            .collect();
    }
    for (group_key, role_key) in pairs {
        if let Some(g) = dir.groups.iter_mut().find(|g| g.key == group_key) {
            if add && !g.roles.contains(&role_key) {
                g.roles.push(role_key);
            } else if !add {
                g.roles.retain(|r| *r != role_key);
            }
        }
    }
    let payload = match (by_role, add) {
        (true, true) => "AddRoleToGroupsPayload",
        (true, false) => "RemoveRoleFromGroupsPayload",
        (false, true) => "AddGroupToRolesPayload",
        (false, false) => "RemoveGroupFromRolesPayload",
    };
    let field = if by_role { "role" } else { "group" };
    Ok(Out::Obj(payload, vec![(field, payload_out)]))
}

/// One top-level mutation field, executed and rendered.
pub(super) fn mutation_field(ctx: &mut Ctx<'_>, f: &Field) -> Result<Value, GqlError> {
    let args = ctx.args(f);
    let input = input(&args);
    let out = match f.name.as_str() {
        "__typename" => Out::Json(json!("Mutation")),
        "deleteUser" => {
            let sent = input
                .get("userID")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let idx = user_idx(ctx.store, &input)?;
            ctx.store.remove(idx);
            // `deletedUserID` echoes the node id as sent.
            Out::Obj(
                "DeleteUserPayload",
                vec![("deletedUserID", Out::Json(json!(sent)))],
            )
        }
        "createRole" => create(ctx, &input, true)?,
        "createGroup" => create(ctx, &input, false)?,
        "updateRole" => update(ctx, &input, true)?,
        "updateGroup" => update(ctx, &input, false)?,
        "deleteRole" => delete(ctx, &input, true)?,
        "deleteGroup" => delete(ctx, &input, false)?,
        "addUserToRoles" => user_keys(ctx, &input, true, true)?,
        "removeUserFromRoles" => user_keys(ctx, &input, true, false)?,
        "addUserToGroups" => user_keys(ctx, &input, false, true)?,
        "removeUserFromGroups" => user_keys(ctx, &input, false, false)?,
        "addRoleToUsers" => key_users(ctx, &input, true, true)?,
        "removeRoleFromUsers" => key_users(ctx, &input, true, false)?,
        "addGroupToUsers" => key_users(ctx, &input, false, true)?,
        "removeGroupFromUsers" => key_users(ctx, &input, false, false)?,
        "addRoleToGroups" => role_groups(ctx, &input, true, true)?,
        "removeRoleFromGroups" => role_groups(ctx, &input, true, false)?,
        "addGroupToRoles" => role_groups(ctx, &input, false, true)?,
        "removeGroupFromRoles" => role_groups(ctx, &input, false, false)?,
        _ => return Err(unknown_field(f, "Mutation")),
    };
    render(ctx, out, &f.selection)
}

#[cfg(test)]
mod tests {
    use super::super::render::node_id;
    use super::*;

    #[test]
    fn node_ids_are_unpadded_base64url() {
        let id = node_id("User", "97b1c929-842c-415c-a7df-6967efdda160");
        assert_eq!(
            id,
            "VXNlcjo5N2IxYzkyOS04NDJjLTQxNWMtYTdkZi02OTY3ZWZkZGExNjA"
        );
        assert_eq!(
            decode_node_id(&id),
            Some((
                "User".to_owned(),
                "97b1c929-842c-415c-a7df-6967efdda160".to_owned()
            ))
        );
        assert_eq!(decode_node_id("!!"), None);
    }
}
