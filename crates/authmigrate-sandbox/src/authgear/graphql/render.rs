//! Turning resolved values into the response shape of a selection set: node ids,
//! connections and paging (§1.5, §1.6), and the `User`, `Role`, `Group` fields.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use super::GqlError;
use super::parser::{Field, Selection};
use super::resolve::Ctx;
use crate::authgear::api::{api_error, rfc3339};
use crate::authgear::roles::Entry;
use crate::authgear::store::Kind;

/// The page size cap (`DEFAULT_MAX_PAGE_SIZE`).
pub(super) const MAX_PAGE: usize = 100;

/// A resolved value, rendered against a selection set.
#[derive(Debug, Clone)]
pub(super) enum Out {
    Null,
    Json(Value),
    List(Vec<Out>),
    /// A user, by id.
    User(String),
    /// A role, by id.
    Role(String),
    /// A group, by id.
    Group(String),
    Conn(Conn),
    /// A payload or other plain object: type name and fields.
    Obj(&'static str, Vec<(&'static str, Out)>),
}

/// A resolved connection.
#[derive(Debug, Clone)]
pub(super) struct Conn {
    pub(super) typename: &'static str,
    pub(super) edges: Vec<(String, Out)>,
    pub(super) has_next: bool,
    pub(super) has_previous: bool,
    pub(super) total: Option<usize>,
}

/// `base64url(<Type>:<id>)` without padding.
pub(super) fn node_id(ty: &str, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{ty}:{id}"))
}

/// `FromGlobalID`: `(type, id)`, or `None` for an undecodable id.
pub(super) fn decode_node_id(id: &str) -> Option<(String, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(id.trim_end_matches('=')).ok()?;
    let s = String::from_utf8(bytes).ok()?;
    let (ty, raw) = s.split_once(':')?;
    Some((ty.to_owned(), raw.to_owned()))
}

fn api(name: &str, reason: &str, message: &str) -> GqlError {
    GqlError::Api(api_error(name, reason, message, None))
}

/// Offset paging for DB-backed lists: `(offset, limit, first_given)`.
pub(super) fn offset_page(args: &Map<String, Value>) -> Result<(usize, usize, bool), GqlError> {
    let first = args.get("first").and_then(Value::as_i64);
    let last = args.get("last").filter(|v| !v.is_null());
    let before = args.get("before").filter(|v| !v.is_null());
    let after = args.get("after").and_then(Value::as_str);
    if (last.is_some() && before.is_none())
        || (before.is_some() && after.is_none() && first.is_none())
    {
        return Err(api("BadRequest", "InvalidQuery", "unsupported pagination"));
    }
    let limit = first.map_or(MAX_PAGE, |f| {
        usize::try_from(f.max(0)).unwrap_or(0).min(MAX_PAGE)
    });
    let offset = match after {
        None => 0,
        Some(cursor) => {
            let n = URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.strip_prefix("offset:")
                        .and_then(|n| n.parse::<usize>().ok())
                })
                .ok_or_else(|| api("Invalid", "InvalidCursor", "invalid pagination cursor"))?;
            n + 1
        }
    };
    Ok((offset, limit, first.is_some()))
}

/// A DB-backed connection over `items` (offset cursors; `hasNextPage` false only on a
/// short page).
pub(super) fn offset_conn(
    typename: &'static str,
    items: Vec<Out>,
    args: &Map<String, Value>,
    total: Option<usize>,
) -> Result<Conn, GqlError> {
    let (offset, limit, first_given) = offset_page(args)?;
    let edges: Vec<(String, Out)> = items
        .into_iter()
        .enumerate()
        .skip(offset)
        .take(limit)
        .map(|(i, o)| (URL_SAFE_NO_PAD.encode(format!("offset:{i}")), o))
        .collect();
    Ok(Conn {
        typename,
        has_next: edges.len() >= limit && limit > 0,
        has_previous: first_given || offset > 0,
        edges,
        total,
    })
}

/// An array-backed connection (`relay.ConnectionFromArray`): padded base64 cursors of
/// `arrayconnection:<n>`, no cap, `totalCount` = the full length.
pub(super) fn array_conn(
    typename: &'static str,
    items: Vec<Out>,
    args: &Map<String, Value>,
) -> Conn {
    let len = items.len();
    let decode = |c: &str| {
        STANDARD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("arrayconnection:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
    };
    let start = args
        .get("after")
        .and_then(Value::as_str)
        .and_then(decode)
        .map_or(0, |n| n + 1);
    let end = args.get("first").and_then(Value::as_u64).map_or(len, |f| {
        start
            .saturating_add(usize::try_from(f).unwrap_or(usize::MAX))
            .min(len)
    });
    let edges: Vec<(String, Out)> = items
        .into_iter()
        .enumerate()
        .skip(start)
        .take(end.saturating_sub(start))
        .map(|(i, o)| (STANDARD.encode(format!("arrayconnection:{i}")), o))
        .collect();
    Conn {
        typename,
        has_next: end < len,
        has_previous: false,
        edges,
        total: Some(len),
    }
}

fn unknown_field(field: &Field, ty: &str) -> GqlError {
    GqlError::Validation(
        format!("Cannot query field \"{}\" on type \"{ty}\".", field.name),
        field.pos,
    )
}

/// The fields of `selection` that apply to an object of type `ty` (fragments expanded;
/// a type condition matches the type itself or the `Node`/`Entity` interfaces).
fn fields_of<'a>(ctx: &Ctx<'a>, selection: &'a [Selection], ty: &str, out: &mut Vec<&'a Field>) {
    for s in selection {
        match s {
            Selection::Field(f) => out.push(f),
            Selection::Inline(on, inner) => {
                if on
                    .as_deref()
                    .is_none_or(|on| on == ty || on == "Node" || on == "Entity")
                {
                    fields_of(ctx, inner, ty, out);
                }
            }
            Selection::Spread(name) => {
                if let Some(frag) = ctx.doc.fragments.get(name) {
                    if frag.on == ty || frag.on == "Node" || frag.on == "Entity" {
                        fields_of(ctx, &frag.selection, ty, out);
                    }
                }
            }
        }
    }
}

/// Renders an object: `get(field)` resolves each selected field (`None`: unknown).
fn object<'a>(
    ctx: &Ctx<'a>,
    ty: &str,
    selection: &'a [Selection],
    mut get: impl FnMut(&Field, &Map<String, Value>) -> Result<Option<Out>, GqlError>,
) -> Result<Value, GqlError> {
    let mut fields = Vec::new();
    fields_of(ctx, selection, ty, &mut fields);
    let mut map = Map::new();
    for f in fields {
        if map.contains_key(f.key()) {
            continue;
        }
        if f.name == "__typename" {
            map.insert(f.key().to_owned(), json!(ty));
            continue;
        }
        let args = ctx.args(f);
        let out = get(f, &args)?.ok_or_else(|| unknown_field(f, ty))?;
        map.insert(f.key().to_owned(), render(ctx, out, &f.selection)?);
    }
    Ok(Value::Object(map))
}

fn opt_str(v: &Option<String>) -> Out {
    v.as_ref().map_or(Out::Null, |s| Out::Json(json!(s)))
}

/// Renders `out` for `selection`.
pub(super) fn render<'a>(
    ctx: &Ctx<'a>,
    out: Out,
    selection: &'a [Selection],
) -> Result<Value, GqlError> {
    match out {
        Out::Null => Ok(Value::Null),
        Out::Json(v) => Ok(v),
        Out::List(items) => Ok(Value::Array(
            items
                .into_iter()
                .map(|o| render(ctx, o, selection))
                .collect::<Result<_, _>>()?,
        )),
        Out::Obj(ty, fields) => object(ctx, ty, selection, |f, _| {
            Ok(fields
                .iter()
                .find(|(n, _)| *n == f.name)
                .map(|(_, o)| o.clone()))
        }),
        Out::Conn(conn) => render_conn(ctx, conn, selection),
        Out::User(id) => render_user(ctx, &id, selection),
        Out::Role(id) => match ctx.directory.roles.iter().find(|r| r.id == id) {
            Some(role) => render_entry(ctx, role, "Role", selection),
            None => Ok(Value::Null),
        },
        Out::Group(id) => match ctx.directory.groups.iter().find(|g| g.id == id) {
            Some(group) => render_entry(ctx, group, "Group", selection),
            None => Ok(Value::Null),
        },
    }
}

fn render_conn<'a>(
    ctx: &Ctx<'a>,
    conn: Conn,
    selection: &'a [Selection],
) -> Result<Value, GqlError> {
    let edge_type = match conn.typename {
        "UserConnection" => "UserEdge",
        "RoleConnection" => "RoleEdge",
        _ => "GroupEdge",
    };
    let start = conn
        .edges
        .first()
        .map(|(c, _)| c.clone())
        .unwrap_or_default();
    let end = conn
        .edges
        .last()
        .map(|(c, _)| c.clone())
        .unwrap_or_default();
    let page_info = Out::Obj(
        "PageInfo",
        vec![
            ("hasNextPage", Out::Json(json!(conn.has_next))),
            ("hasPreviousPage", Out::Json(json!(conn.has_previous))),
            ("startCursor", Out::Json(json!(start))),
            ("endCursor", Out::Json(json!(end))),
        ],
    );
    let edges = Out::List(
        conn.edges
            .into_iter()
            .map(|(cursor, node)| {
                Out::Obj(
                    edge_type,
                    vec![("cursor", Out::Json(json!(cursor))), ("node", node)],
                )
            })
            .collect(),
    );
    let total = conn.total.map_or(Out::Null, |t| Out::Json(json!(t)));
    render(
        ctx,
        Out::Obj(
            conn.typename,
            vec![
                ("edges", edges),
                ("pageInfo", page_info),
                ("totalCount", total),
            ],
        ),
        selection,
    )
}

fn render_entry<'a>(
    ctx: &Ctx<'a>,
    e: &Entry,
    ty: &'static str,
    selection: &'a [Selection],
) -> Result<Value, GqlError> {
    object(ctx, ty, selection, |f, args| {
        Ok(Some(match f.name.as_str() {
            "id" => Out::Json(json!(node_id(ty, &e.id))),
            "key" => Out::Json(json!(e.key)),
            "name" => opt_str(&e.name),
            "description" => opt_str(&e.description),
            "createdAt" => Out::Json(rfc3339(e.created_at)),
            "updatedAt" => Out::Json(rfc3339(e.updated_at)),
            "users" => {
                let users: Vec<Out> = ctx
                    .store
                    .users
                    .iter()
                    .filter(|u| {
                        if ty == "Role" {
                            u.roles.contains(&e.key)
                        } else {
                            u.groups.contains(&e.key)
                        }
                    })
                    .map(|u| Out::User(u.id.clone()))
                    .collect();
                // `totalCount` is always null here (facade/rolesgroups.go).
                Out::Conn(offset_conn("UserConnection", users, args, None)?)
            }
            "groups" if ty == "Role" => {
                let groups = ctx
                    .directory
                    .groups
                    .iter()
                    .filter(|g| g.roles.contains(&e.key))
                    .map(|g| Out::Group(g.id.clone()))
                    .collect();
                Out::Conn(array_conn("GroupConnection", groups, args))
            }
            "roles" if ty == "Group" => {
                let roles = e
                    .roles
                    .iter()
                    .filter_map(|k| ctx.directory.roles.iter().find(|r| r.key == *k))
                    .map(|r| Out::Role(r.id.clone()))
                    .collect();
                Out::Conn(array_conn("RoleConnection", roles, args))
            }
            _ => return Ok(None),
        }))
    })
}

fn render_user<'a>(ctx: &Ctx<'a>, id: &str, selection: &'a [Selection]) -> Result<Value, GqlError> {
    let Some(u) = ctx.store.users.iter().find(|u| u.id == id) else {
        return Ok(Value::Null);
    };
    let now = ctx.now;
    let role_outs = |keys: &[String]| -> Vec<Out> {
        keys.iter()
            .filter_map(|k| ctx.directory.roles.iter().find(|r| r.key == *k))
            .map(|r| Out::Role(r.id.clone()))
            .collect()
    };
    object(ctx, "User", selection, |f, args| {
        Ok(Some(match f.name.as_str() {
            "id" => Out::Json(json!(node_id("User", &u.id))),
            "createdAt" | "updatedAt" => Out::Json(rfc3339(u.created_at)),
            "lastLoginAt"
            | "deleteAt"
            | "deleteReason"
            | "anonymizeAt"
            | "disableReason"
            | "temporarilyDisabledFrom"
            | "temporarilyDisabledUntil" => Out::Null,
            "accountValidFrom" => opt_str(&u.account_valid_from),
            "accountValidUntil" => opt_str(&u.account_valid_until),
            "isDisabled" => Out::Json(json!(u.is_disabled(now))),
            "isDeactivated" | "isAnonymous" | "isAnonymized" => Out::Json(json!(false)),
            "endUserAccountID" => Out::Json(json!(
                u.login_ids
                    .first()
                    .map_or(u.id.as_str(), |l| l.value.as_str())
            )),
            "standardAttributes" => {
                let mut attrs = u.standard.clone();
                for kind in Kind::ALL {
                    if let Some(v) = u.login_value(kind) {
                        attrs.insert(kind.field().to_owned(), json!(v));
                    }
                }
                let view = u.view(now);
                if u.login_value(Kind::Email).is_some() {
                    attrs.insert("email_verified".to_owned(), json!(view.email_verified));
                }
                if u.login_value(Kind::Phone).is_some() {
                    attrs.insert(
                        "phone_number_verified".to_owned(),
                        json!(view.phone_number_verified),
                    );
                }
                attrs.insert("updated_at".to_owned(), json!(u.created_at.as_second()));
                Out::Json(Value::Object(attrs))
            }
            "customAttributes" => Out::Json(Value::Object(u.custom.clone())),
            "roles" => Out::Conn(array_conn("RoleConnection", role_outs(&u.roles), args)),
            "groups" => {
                let groups = u
                    .groups
                    .iter()
                    .filter_map(|k| ctx.directory.groups.iter().find(|g| g.key == *k))
                    .map(|g| Out::Group(g.id.clone()))
                    .collect();
                Out::Conn(array_conn("GroupConnection", groups, args))
            }
            "effectiveRoles" => {
                let mut keys = u.roles.clone();
                for g in ctx
                    .directory
                    .groups
                    .iter()
                    .filter(|g| u.groups.contains(&g.key))
                {
                    for k in &g.roles {
                        if !keys.contains(k) {
                            keys.push(k.clone());
                        }
                    }
                }
                // Sorted by the role's creation (then key, for roles created together).
                let mut roles: Vec<&Entry> = ctx
                    .directory
                    .roles
                    .iter()
                    .filter(|r| keys.contains(&r.key))
                    .collect();
                roles.sort_by(|a, b| (a.created_at, &a.key).cmp(&(b.created_at, &b.key)));
                let outs = roles.into_iter().map(|r| Out::Role(r.id.clone())).collect();
                Out::Conn(array_conn("RoleConnection", outs, args))
            }
            _ => return Ok(None),
        }))
    })
}
