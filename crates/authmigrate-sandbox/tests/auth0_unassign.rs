//! Taking roles and memberships away (`DELETE /users/{id}/roles`,
//! `DELETE /organizations/{id}/members`) and `GET /users/{id}/organizations`, over
//! plain HTTP.

mod common;

use authmigrate_sandbox::FaultConfig;
use authmigrate_sandbox::Sandbox;
use authmigrate_sandbox::auth0::{Auth0Config, DEFAULT_SCOPES};
use common::*;
use serde_json::{Value, json};

async fn call(
    sb: &Sandbox,
    t: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, format!("{}{path}", sb.base_url()))
        .bearer_auth(t);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    assert!(
        res.headers().contains_key("x-ratelimit-remaining"),
        "{path}"
    );
    let bytes = res.bytes().await.unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v)
}

async fn get(sb: &Sandbox, t: &str, path: &str) -> (u16, Value) {
    call(sb, t, reqwest::Method::GET, path, None).await
}

async fn delete(sb: &Sandbox, t: &str, path: &str, body: Value) -> (u16, Value) {
    call(sb, t, reqwest::Method::DELETE, path, Some(body)).await
}

/// Users `auth0|u000…` stored without HTTP (so any scope set works).
fn seed_users(sb: &Sandbox, n: usize) {
    let users: Vec<Value> = (0..n)
        .map(|i| json!({"email": format!("u{i:03}@example.com"), "user_id": format!("u{i:03}")}))
        .collect();
    let (inserted, errors) = sb
        .auth0()
        .seed_users("Username-Password-Authentication", &users);
    assert_eq!((inserted, errors.len()), (n as u64, 0));
}

async fn tenant(n: usize) -> (Sandbox, String) {
    let sb = start().await;
    seed_users(&sb, n);
    let t = token(&sb).await;
    (sb, t)
}

async fn tenant_with_scopes(n: usize, scopes: &[&str]) -> (Sandbox, String) {
    let sb = start_with(
        FaultConfig::default(),
        Auth0Config {
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..Auth0Config::default()
        },
    )
    .await;
    seed_users(&sb, n);
    let t = token(&sb).await;
    (sb, t)
}

#[test]
fn default_scopes_cover_the_new_endpoints() {
    for s in [
        "delete:role_members",
        "delete:organization_members",
        "read:organizations",
    ] {
        assert!(DEFAULT_SCOPES.contains(&s), "{s}");
    }
}

#[tokio::test]
async fn delete_user_roles_removes_only_the_named_roles_of_that_user() {
    let (sb, t) = tenant(3).await;
    let a0 = sb.auth0();
    let admin = a0.seed_role("admin", "Admins", &[]);
    let viewer = a0.seed_role("viewer", "Viewers", &[]);
    let editor = a0.seed_role("editor", "Editors", &[]);
    a0.seed_role_users(&admin, &["auth0|u000", "auth0|u001"]);
    a0.seed_role_users(&viewer, &["auth0|u000"]);

    // `editor` is not held by u000: a no-op next to the real removal.
    let (s, body) = delete(
        &sb,
        &t,
        "/api/v2/users/auth0%7Cu000/roles",
        json!({"roles": [admin.clone(), editor.clone()]}),
    )
    .await;
    assert_eq!((s, body), (204, Value::Null));
    assert_eq!(a0.user_role_names("auth0|u000"), vec!["viewer"]);
    assert_eq!(a0.user_role_names("auth0|u001"), vec!["admin"]);
    assert_eq!(a0.role_user_ids(&admin), vec!["auth0|u001"]);
    assert!(a0.role_user_ids(&editor).is_empty());
    let (s, roles) = get(&sb, &t, "/api/v2/users/auth0%7Cu000/roles").await;
    assert_eq!(s, 200);
    assert_eq!(
        roles,
        json!([{"id": viewer, "name": "viewer", "description": "Viewers"}])
    );

    // Doing it again changes nothing and still answers 204.
    let (s, _) = delete(
        &sb,
        &t,
        "/api/v2/users/auth0%7Cu000/roles",
        json!({"roles": [admin.clone()]}),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(a0.user_role_names("auth0|u001"), vec!["admin"]);

    // Unknown user.
    let (s, body) = delete(
        &sb,
        &t,
        "/api/v2/users/auth0%7Cghost/roles",
        json!({"roles": [viewer.clone()]}),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(body["message"], "The user does not exist.");
    assert_eq!(body["errorCode"], "inexistent_user");

    // An unknown role is answered as the POST answers it, and nothing is removed.
    let (s, body) = delete(
        &sb,
        &t,
        "/api/v2/users/auth0%7Cu000/roles",
        json!({"roles": [viewer.clone(), "rol_nope"]}),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(body["message"], "The role rol_nope does not exist.");
    let (ps, post_body) = call(
        &sb,
        &t,
        reqwest::Method::POST,
        "/api/v2/users/auth0%7Cu000/roles",
        Some(json!({"roles": ["rol_nope"]})),
    )
    .await;
    assert_eq!((ps, &post_body["message"]), (s, &body["message"]));
    assert_eq!(a0.user_role_names("auth0|u000"), vec!["viewer"]);

    // Body rules are the POST's: required, at least one item.
    let (s, body) = delete(
        &sb,
        &t,
        "/api/v2/users/auth0%7Cu000/roles",
        json!({"roles": []}),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        body["message"],
        "Payload validation error: 'Array is too short (0), minimum 1' on property roles."
    );
    let (s, body) = delete(&sb, &t, "/api/v2/users/auth0%7Cu000/roles", json!({})).await;
    assert_eq!(s, 400);
    assert_eq!(
        body["message"],
        "Payload validation error: 'Missing required property: roles'."
    );
    assert_eq!(a0.user_role_names("auth0|u000"), vec!["viewer"]);
}

#[tokio::test]
async fn delete_org_members_removes_them_and_their_member_roles_only() {
    let (sb, t) = tenant(12).await;
    let a0 = sb.auth0();
    let acme = a0.seed_organization("acme", "Acme");
    let beta = a0.seed_organization("beta", "Beta");
    let role = a0.seed_role("org-admin", "Org admin", &[]);
    a0.seed_org_members(
        &acme,
        &["auth0|u000", "auth0|u001", "auth0|u002", "auth0|u003"],
    );
    a0.seed_org_members(&beta, &["auth0|u000"]);
    a0.seed_org_member_roles(&acme, "auth0|u000", &[&role]);
    a0.seed_org_member_roles(&acme, "auth0|u002", &[&role]);
    a0.seed_org_member_roles(&beta, "auth0|u000", &[&role]);
    let path = format!("/api/v2/organizations/{acme}/members");

    // u005 is a user but not a member, auth0|ghost is not even a user: no-ops.
    let (s, body) = delete(
        &sb,
        &t,
        &path,
        json!({"members": ["auth0|u000", "auth0|u001", "auth0|u005", "auth0|ghost"]}),
    )
    .await;
    assert_eq!((s, body), (204, Value::Null));
    assert_eq!(a0.org_member_ids(&acme), vec!["auth0|u002", "auth0|u003"]);
    assert_eq!(a0.org_member_ids(&beta), vec!["auth0|u000"]);
    assert!(a0.org_member_role_names(&acme, "auth0|u000").is_empty());
    assert_eq!(
        a0.org_member_role_names(&acme, "auth0|u002"),
        vec!["org-admin"]
    );
    assert_eq!(
        a0.org_member_role_names(&beta, "auth0|u000"),
        vec!["org-admin"]
    );
    assert_eq!(a0.user_org_names("auth0|u000"), vec!["beta"]);
    let (s, members) = get(&sb, &t, &format!("{path}?include_totals=true")).await;
    assert_eq!(s, 200);
    assert_eq!(members["total"], 2);
    assert_eq!(members["members"][0]["user_id"], "auth0|u002");
    assert_eq!(members["members"][1]["user_id"], "auth0|u003");
    let (_, roles) = get(&sb, &t, &format!("{path}/auth0%7Cu000/roles")).await;
    assert_eq!(roles, json!([]));

    // More than 10: the POST's answer, and nothing is removed.
    let eleven: Vec<String> = (0..11).map(|i| format!("auth0|u{i:03}")).collect();
    a0.seed_org_members(
        &acme,
        &eleven.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(a0.org_member_ids(&acme).len(), 11);
    let (s, body) = delete(&sb, &t, &path, json!({"members": eleven})).await;
    assert_eq!(s, 400);
    assert_eq!(
        body["message"],
        "You can send a maximum of 10 members per organization per request."
    );
    let (ps, post_body) = call(
        &sb,
        &t,
        reqwest::Method::POST,
        &path,
        Some(json!({"members": eleven})),
    )
    .await;
    assert_eq!((ps, &post_body["message"]), (s, &body["message"]));
    assert_eq!(a0.org_member_ids(&acme).len(), 11);
    // Exactly 10 is allowed.
    let (s, _) = delete(&sb, &t, &path, json!({"members": &eleven[..10]})).await;
    assert_eq!(s, 204);
    assert_eq!(a0.org_member_ids(&acme), vec!["auth0|u010"]);
    assert_eq!(a0.org_member_ids(&beta), vec!["auth0|u000"]);

    // Unknown organization, empty and missing lists.
    let (s, body) = delete(
        &sb,
        &t,
        "/api/v2/organizations/org_nope/members",
        json!({"members": ["auth0|u010"]}),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(body["message"], "The organization does not exist.");
    let (s, body) = delete(&sb, &t, &path, json!({"members": []})).await;
    assert_eq!(s, 400);
    assert_eq!(
        body["message"],
        "Payload validation error: 'Array is too short (0), minimum 1' on property members."
    );
    assert_eq!(delete(&sb, &t, &path, json!({})).await.0, 400);
    assert_eq!(a0.org_member_ids(&acme), vec!["auth0|u010"]);
}

#[tokio::test]
async fn user_organizations_lists_exactly_the_users_orgs_with_paging() {
    let (sb, t) = tenant(3).await;
    let a0 = sb.auth0();
    // Created in a non-alphabetical order: the answer keeps creation order.
    let names = ["zeta", "alpha", "mid", "beta", "other"];
    let ids: Vec<String> = names
        .iter()
        .map(|n| a0.seed_organization(n, &n.to_uppercase()))
        .collect();
    for id in &ids[..4] {
        a0.seed_org_members(id, &["auth0|u000"]);
    }
    a0.seed_org_members(&ids[4], &["auth0|u001"]);
    let org_json =
        |i: usize| json!({"id": ids[i], "name": names[i], "display_name": names[i].to_uppercase()});

    let base = "/api/v2/users/auth0%7Cu000/organizations";
    let (s, all) = get(&sb, &t, base).await;
    assert_eq!(s, 200);
    assert_eq!(
        all,
        json!([org_json(0), org_json(1), org_json(2), org_json(3)])
    );
    // The same objects as the organization list gives.
    let (_, list) = get(&sb, &t, "/api/v2/organizations").await;
    assert_eq!(all.as_array().unwrap()[..], list.as_array().unwrap()[..4]);
    assert_eq!(
        a0.user_org_names("auth0|u000"),
        vec!["alpha", "beta", "mid", "zeta"]
    );

    let (_, page) = get(&sb, &t, &format!("{base}?per_page=3&page=1")).await;
    assert_eq!(page, json!([org_json(3)]));
    let (_, totals) = get(&sb, &t, &format!("{base}?include_totals=true&per_page=2")).await;
    assert_eq!(
        totals,
        json!({"start": 0, "limit": 2, "total": 4, "organizations": [org_json(0), org_json(1)]})
    );
    let (_, totals) = get(
        &sb,
        &t,
        &format!("{base}?include_totals=true&per_page=2&page=1"),
    )
    .await;
    assert_eq!(
        totals,
        json!({"start": 2, "limit": 2, "total": 4, "organizations": [org_json(2), org_json(3)]})
    );
    let (_, totals) = get(&sb, &t, &format!("{base}?include_totals=true")).await;
    assert_eq!(
        (&totals["limit"], &totals["total"]),
        (&json!(50), &json!(4))
    );
    let (_, past) = get(&sb, &t, &format!("{base}?per_page=2&page=5")).await;
    assert_eq!(past, json!([]));
    assert_eq!(get(&sb, &t, &format!("{base}?per_page=101")).await.0, 400);
    assert_eq!(get(&sb, &t, &format!("{base}?per_page=0")).await.0, 400);

    let (_, other) = get(&sb, &t, "/api/v2/users/auth0%7Cu001/organizations").await;
    assert_eq!(other, json!([org_json(4)]));
    let (_, none) = get(
        &sb,
        &t,
        "/api/v2/users/auth0%7Cu002/organizations?include_totals=true",
    )
    .await;
    assert_eq!(
        none,
        json!({"start": 0, "limit": 50, "total": 0, "organizations": []})
    );
    assert!(a0.user_org_names("auth0|u002").is_empty());

    let (s, body) = get(&sb, &t, "/api/v2/users/auth0%7Cghost/organizations").await;
    assert_eq!(s, 404);
    assert_eq!(body["message"], "User not found.");

    // After a DELETE the organization is gone from the user's list.
    let (s, _) = delete(
        &sb,
        &t,
        &format!("/api/v2/organizations/{}/members", ids[1]),
        json!({"members": ["auth0|u000"]}),
    )
    .await;
    assert_eq!(s, 204);
    let (_, all) = get(&sb, &t, base).await;
    assert_eq!(all, json!([org_json(0), org_json(2), org_json(3)]));
    assert_eq!(a0.user_org_names("auth0|u000"), vec!["beta", "mid", "zeta"]);
}

#[tokio::test]
async fn scope_less_token_gets_403_naming_the_scope() {
    let (sb, t) = tenant_with_scopes(2, &[]).await;
    let a0 = sb.auth0();
    let role = a0.seed_role("admin", "Admins", &[]);
    a0.seed_role_users(&role, &["auth0|u000"]);
    let org = a0.seed_organization("acme", "Acme");
    a0.seed_org_members(&org, &["auth0|u000"]);

    let (s, body) = delete(
        &sb,
        &t,
        "/api/v2/users/auth0%7Cu000/roles",
        json!({"roles": [role.clone()]}),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        body["message"],
        "Insufficient scope; expected any of: update:users,delete:role_members."
    );
    assert_eq!(body["errorCode"], "insufficient_scope");
    let (s, body) = delete(
        &sb,
        &t,
        &format!("/api/v2/organizations/{org}/members"),
        json!({"members": ["auth0|u000"]}),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        body["message"],
        "Insufficient scope; expected any of: delete:organization_members."
    );
    let (s, body) = get(&sb, &t, "/api/v2/users/auth0%7Cu000/organizations").await;
    assert_eq!(s, 403);
    assert_eq!(
        body["message"],
        "Insufficient scope; expected any of: read:organizations."
    );
    // The scope check comes first: an unknown user or org is still a 403.
    let (s, _) = get(&sb, &t, "/api/v2/users/auth0%7Cghost/organizations").await;
    assert_eq!(s, 403);
    // Nothing changed.
    assert_eq!(a0.user_role_names("auth0|u000"), vec!["admin"]);
    assert_eq!(a0.org_member_ids(&org), vec!["auth0|u000"]);
}

#[tokio::test]
async fn each_new_endpoint_needs_only_its_own_scope() {
    let (sb, t) = tenant_with_scopes(
        2,
        &[
            "delete:role_members",
            "delete:organization_members",
            "read:organizations",
        ],
    )
    .await;
    let a0 = sb.auth0();
    let role = a0.seed_role("admin", "Admins", &[]);
    a0.seed_role_users(&role, &["auth0|u000", "auth0|u001"]);
    let org = a0.seed_organization("acme", "Acme");
    a0.seed_org_members(&org, &["auth0|u000", "auth0|u001"]);

    let (s, _) = delete(
        &sb,
        &t,
        "/api/v2/users/auth0%7Cu000/roles",
        json!({"roles": [role.clone()]}),
    )
    .await;
    assert_eq!(s, 204, "delete:role_members alone is enough (any of)");
    assert!(a0.user_role_names("auth0|u000").is_empty());
    assert_eq!(a0.user_role_names("auth0|u001"), vec!["admin"]);
    let (s, _) = get(&sb, &t, "/api/v2/users/auth0%7Cu000/organizations").await;
    assert_eq!(s, 200);
    let (s, _) = delete(
        &sb,
        &t,
        &format!("/api/v2/organizations/{org}/members"),
        json!({"members": ["auth0|u000"]}),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(a0.org_member_ids(&org), vec!["auth0|u001"]);

    // `update:users` alone also opens the roles DELETE.
    let (sb, t) = tenant_with_scopes(1, &["update:users"]).await;
    let role = sb.auth0().seed_role("admin", "Admins", &[]);
    sb.auth0().seed_role_users(&role, &["auth0|u000"]);
    let (s, _) = delete(
        &sb,
        &t,
        "/api/v2/users/auth0%7Cu000/roles",
        json!({"roles": [role]}),
    )
    .await;
    assert_eq!(s, 204);
    assert!(sb.auth0().user_role_names("auth0|u000").is_empty());
}

#[tokio::test]
async fn unseed_org_members_and_user_org_names_without_http() {
    let sb = start().await;
    let a0 = sb.auth0();
    let acme = a0.seed_organization("acme", "Acme");
    let beta = a0.seed_organization("beta", "Beta");
    let role = a0.seed_role("admin", "Admins", &[]);
    a0.seed_org_members(&beta, &["auth0|a", "auth0|b"]);
    a0.seed_org_members(&acme, &["auth0|a", "auth0|b", "auth0|c"]);
    a0.seed_org_member_roles(&acme, "auth0|a", &[&role]);
    assert_eq!(a0.user_org_names("auth0|a"), vec!["acme", "beta"]);

    a0.unseed_org_members(&acme, &["auth0|a", "auth0|c", "auth0|nobody"]);
    assert_eq!(a0.org_member_ids(&acme), vec!["auth0|b"]);
    assert_eq!(a0.org_member_ids(&beta), vec!["auth0|a", "auth0|b"]);
    assert!(a0.org_member_role_names(&acme, "auth0|a").is_empty());
    assert_eq!(a0.user_org_names("auth0|a"), vec!["beta"]);
    assert_eq!(a0.user_org_names("auth0|b"), vec!["acme", "beta"]);
    assert!(a0.user_org_names("auth0|c").is_empty());
    // An unknown organization is ignored.
    a0.unseed_org_members("org_nope", &["auth0|b"]);
    assert_eq!(a0.user_org_names("auth0|b"), vec!["acme", "beta"]);
}
