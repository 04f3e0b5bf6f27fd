//! Roles, permissions, organizations and members (issue 13), over plain HTTP.

mod common;

use authmigrate_sandbox::FaultConfig;
use authmigrate_sandbox::Sandbox;
use authmigrate_sandbox::auth0::Auth0Config;
use common::*;
use serde_json::{Value, json};

async fn call(
    sb: &Sandbox,
    t: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = client()
        .request(method, format!("{}{path}", sb.base_url()))
        .bearer_auth(t);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v, headers)
}

async fn get(sb: &Sandbox, t: &str, path: &str) -> (u16, Value) {
    let (s, v, h) = call(sb, t, reqwest::Method::GET, path, None).await;
    assert!(h.contains_key("x-ratelimit-remaining"), "{path}");
    (s, v)
}

async fn post(sb: &Sandbox, t: &str, path: &str, body: Value) -> (u16, Value) {
    let (s, v, h) = call(sb, t, reqwest::Method::POST, path, Some(body)).await;
    assert!(h.contains_key("x-ratelimit-remaining"), "{path}");
    (s, v)
}

/// A tenant with `n` users `auth0|u000…`.
async fn tenant(n: usize) -> (Sandbox, String) {
    let sb = start().await;
    let t = token(&sb).await;
    let users: Vec<Value> = (0..n)
        .map(|i| json!({"email": format!("u{i:03}@example.com"), "user_id": format!("u{i:03}")}))
        .collect();
    if n > 0 {
        let id = import(&sb, &t, &Value::Array(users), false).await;
        wait_job(&sb, &t, &id).await;
    }
    (sb, t)
}

#[tokio::test]
async fn roles_create_list_get_and_permissions() {
    let (sb, t) = tenant(0).await;
    sb.auth0().seed_resource_server(
        "https://api.example.com/",
        "Example API",
        &[
            ("read:things", "Read things"),
            ("write:things", "Write things"),
        ],
    );
    let (s, admin) = post(
        &sb,
        &t,
        "/api/v2/roles",
        json!({"name":"admin","description":"Admins"}),
    )
    .await;
    assert_eq!(s, 200, "POST /roles answers 200");
    let admin_id = admin["id"].as_str().unwrap().to_owned();
    assert!(admin_id.starts_with("rol_") && admin_id.len() == 20);
    assert_eq!(
        admin,
        json!({"id": admin_id, "name":"admin","description":"Admins"})
    );
    let (s, dup) = post(&sb, &t, "/api/v2/roles", json!({"name":"admin"})).await;
    assert_eq!(s, 409);
    assert_eq!(dup["message"], "The role already exists.");
    assert_eq!(
        post(&sb, &t, "/api/v2/roles", json!({"description":"x"}))
            .await
            .0,
        400
    );
    post(
        &sb,
        &t,
        "/api/v2/roles",
        json!({"name":"Support","description":"S"}),
    )
    .await;

    let (s, all) = get(&sb, &t, "/api/v2/roles").await;
    assert_eq!(s, 200);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, filtered) = get(
        &sb,
        &t,
        "/api/v2/roles?include_totals=true&name_filter=SUPP&per_page=50",
    )
    .await;
    assert_eq!(filtered["total"], 1);
    assert_eq!(filtered["start"], 0);
    assert_eq!(filtered["limit"], 50);
    assert_eq!(filtered["roles"][0]["name"], "Support");
    assert_eq!(
        get(&sb, &t, &format!("/api/v2/roles/{admin_id}")).await.1["name"],
        "admin"
    );
    let (s, missing) = get(&sb, &t, "/api/v2/roles/rol_nope").await;
    assert_eq!(s, 404);
    assert_eq!(missing["message"], "The role does not exist.");

    let path = format!("/api/v2/roles/{admin_id}/permissions");
    let (s, empty) = get(&sb, &t, &format!("{path}?include_totals=true")).await;
    assert_eq!(s, 200);
    assert_eq!(
        empty,
        json!({"permissions":[],"start":0,"limit":50,"total":0})
    );
    let (s, body) = post(&sb, &t, &path, json!({"permissions":[
        {"resource_server_identifier":"https://api.example.com/","permission_name":"read:things"}]})).await;
    assert_eq!((s, body), (201, json!({})));
    let (s, body) = post(
        &sb,
        &t,
        &path,
        json!({"permissions":[
        {"resource_server_identifier":"https://nope.example.com/","permission_name":"x"}]}),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(body["message"], "The resource server does not exist.");
    assert_eq!(post(&sb, &t, &path, json!({"permissions":[]})).await.0, 400);
    let (_, perms) = get(&sb, &t, &path).await;
    assert_eq!(
        perms,
        json!([{"resource_server_identifier":"https://api.example.com/","permission_name":"read:things",
                "resource_server_name":"Example API","description":"Read things"}])
    );
    let (_, servers) = get(
        &sb,
        &t,
        "/api/v2/resource-servers?identifiers=https%3A%2F%2Fapi.example.com%2F&include_totals=true",
    )
    .await;
    assert_eq!(servers["total"], 1);
    assert_eq!(
        servers["resource_servers"][0]["identifier"],
        "https://api.example.com/"
    );
    assert_eq!(
        servers["resource_servers"][0]["scopes"][1]["value"],
        "write:things"
    );
}

#[tokio::test]
async fn role_users_assign_and_page_by_offset_and_checkpoint() {
    let (sb, t) = tenant(5).await;
    let role = sb.auth0().seed_role("reader", "Readers", &[]);
    let path = format!("/api/v2/roles/{role}/users");
    let (s, body) = post(
        &sb,
        &t,
        &path,
        json!({"users":["auth0|u000","auth0|u001","auth0|u002"]}),
    )
    .await;
    assert_eq!((s, body), (200, json!({})));
    let (s, body) = post(
        &sb,
        &t,
        &path,
        json!({"users":["auth0|u003","auth0|ghost"]}),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(body["message"], "One or more of the users do not exist.");
    assert_eq!(
        sb.auth0().role_user_ids(&role).len(),
        3,
        "nothing assigned on a 404"
    );
    assert_eq!(
        post(
            &sb,
            &t,
            "/api/v2/roles/rol_nope/users",
            json!({"users":["auth0|u000"]})
        )
        .await
        .0,
        404
    );

    let (_, offset) = get(
        &sb,
        &t,
        &format!("{path}?include_totals=true&per_page=2&page=1"),
    )
    .await;
    assert_eq!(offset["total"], 3);
    assert_eq!(offset["users"].as_array().unwrap().len(), 1);
    assert_eq!(
        offset["users"][0],
        json!({"user_id":"auth0|u002","email":"u002@example.com","name":"u002@example.com",
               "picture": offset["users"][0]["picture"]})
    );
    // `take` switches to checkpoint paging even with include_totals.
    let (_, first) = get(
        &sb,
        &t,
        &format!("{path}?include_totals=true&per_page=50&take=2"),
    )
    .await;
    assert!(first.get("total").is_none());
    assert_eq!(first["users"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap();
    let (_, last) = get(&sb, &t, &format!("{path}?take=2&from={next}")).await;
    assert_eq!(last["users"][0]["user_id"], "auth0|u002");
    assert!(last.get("next").is_none(), "no next at the end");
    // Offset paging stops at 1000 records.
    let (s, deep) = get(&sb, &t, &format!("{path}?per_page=100&page=10")).await;
    assert_eq!(s, 400);
    assert_eq!(deep["errorCode"], "invalid_paging");
    assert_eq!(get(&sb, &t, &format!("{path}?take=101")).await.0, 400);
}

#[tokio::test]
async fn user_roles_list_and_assign() {
    let (sb, t) = tenant(2).await;
    let a = sb.auth0().seed_role("a", "A", &[]);
    let b = sb.auth0().seed_role("b", "B", &[]);
    let path = "/api/v2/users/auth0%7Cu001/roles";
    let (s, body) = post(&sb, &t, path, json!({"roles":[b.clone(), a.clone()]})).await;
    assert_eq!((s, body), (204, Value::Null));
    let (s, roles) = get(&sb, &t, &format!("{path}?include_totals=true")).await;
    assert_eq!(s, 200);
    assert_eq!(roles["total"], 2);
    assert_eq!(
        roles["roles"][0],
        json!({"id": a, "name":"a","description":"A"})
    );
    assert_eq!(sb.auth0().user_role_names("auth0|u001"), vec!["a", "b"]);
    assert_eq!(sb.auth0().role_user_ids(&a), vec!["auth0|u001"]);
    let (s, body) = post(
        &sb,
        &t,
        "/api/v2/users/auth0%7Cghost/roles",
        json!({"roles":[a.clone()]}),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(body["message"], "The user does not exist.");
    assert_eq!(post(&sb, &t, path, json!({"roles":[]})).await.0, 400);
    let (s, body) = get(&sb, &t, "/api/v2/users/auth0%7Cghost/roles").await;
    assert_eq!(s, 404);
    assert_eq!(body["message"], "User not found.");
    // A deleted user leaves its roles.
    call(
        &sb,
        &t,
        reqwest::Method::DELETE,
        "/api/v2/users/auth0%7Cu001",
        None,
    )
    .await;
    assert!(sb.auth0().role_user_ids(&a).is_empty());
    assert_eq!(
        post(&sb, &t, path, json!({"roles":[a.clone()]})).await.0,
        404
    );
    // A user imported after the look-ups above is found.
    let id = import(
        &sb,
        &t,
        &json!([{"email":"late@example.com","user_id":"late"}]),
        false,
    )
    .await;
    wait_job(&sb, &t, &id).await;
    let late = "/api/v2/users/auth0%7Clate/roles";
    assert_eq!(
        post(&sb, &t, late, json!({"roles":[a.clone()]})).await.0,
        204
    );
    assert_eq!(sb.auth0().role_user_ids(&a), vec!["auth0|late"]);
}

#[tokio::test]
async fn scopes_are_checked_with_the_documented_texts() {
    let sb = start_with(
        FaultConfig::default(),
        Auth0Config {
            scopes: vec!["read:users".to_owned()],
            ..Auth0Config::default()
        },
    )
    .await;
    let t = token(&sb).await;
    let (s, body) = get(&sb, &t, "/api/v2/roles").await;
    assert_eq!(s, 403);
    assert_eq!(
        body["message"],
        "Insufficient scope; expected any of: read:roles."
    );
    let (s, body) = get(&sb, &t, "/api/v2/roles/rol_x/users").await;
    assert_eq!(s, 403);
    assert_eq!(
        body["message"],
        "Insufficient scope; expected all of: read:users, read:roles."
    );
    assert_eq!(get(&sb, &t, "/api/v2/organizations").await.0, 403);
    assert_eq!(
        get(&sb, &t, "/api/v2/organizations/org_x/members").await.0,
        403
    );
}

#[tokio::test]
async fn organizations_create_get_by_name_and_checkpoint_list() {
    let (sb, t) = tenant(0).await;
    let (s, org) = post(
        &sb,
        &t,
        "/api/v2/organizations",
        json!({"name":"acme","display_name":"Acme Inc."}),
    )
    .await;
    assert_eq!(s, 201);
    let id = org["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("org_") && id.len() == 20);
    assert_eq!(org["enabled_connections"], json!([]));
    let (s, dup) = post(&sb, &t, "/api/v2/organizations", json!({"name":"acme"})).await;
    assert_eq!(s, 409);
    assert_eq!(
        dup["message"],
        "An organization with this name already exists."
    );
    assert_eq!(dup["errorCode"], "organization_conflict");
    for bad in ["Acme", "has space", "", &"x".repeat(51)] {
        assert_eq!(
            post(&sb, &t, "/api/v2/organizations", json!({"name": bad}))
                .await
                .0,
            400,
            "{bad}"
        );
    }
    let (s, by_name) = get(&sb, &t, "/api/v2/organizations/name/acme").await;
    assert_eq!(s, 200);
    assert_eq!(
        by_name,
        json!({"id": id, "name":"acme","display_name":"Acme Inc."})
    );
    let (s, missing) = get(&sb, &t, "/api/v2/organizations/name/nope").await;
    assert_eq!(s, 404);
    assert_eq!(missing["message"], "The organization does not exist.");
    post(&sb, &t, "/api/v2/organizations", json!({"name":"beta"})).await;
    post(&sb, &t, "/api/v2/organizations", json!({"name":"gamma"})).await;

    let (_, first) = get(
        &sb,
        &t,
        "/api/v2/organizations?include_totals=true&per_page=50&take=2",
    )
    .await;
    assert_eq!(first["organizations"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap();
    let (_, rest) = get(
        &sb,
        &t,
        &format!("/api/v2/organizations?take=2&from={next}"),
    )
    .await;
    assert_eq!(
        rest,
        json!({"organizations":[{"id": rest["organizations"][0]["id"], "name":"gamma"}]})
    );
    let (_, totals) = get(&sb, &t, "/api/v2/organizations?include_totals=true").await;
    assert_eq!(totals["total"], 3);
    let (s, deep) = get(&sb, &t, "/api/v2/organizations?page=20&per_page=50").await;
    assert_eq!(s, 400);
    assert_eq!(
        deep["message"],
        "Requesting page exceeds the allowed maximum of 1000 records."
    );
}

#[tokio::test]
async fn members_at_most_ten_per_request_checkpoint_and_member_roles() {
    let (sb, t) = tenant(12).await;
    let org = sb.auth0().seed_organization("acme", "Acme");
    let role = sb.auth0().seed_role("org-admin", "Org admin", &[]);
    let path = format!("/api/v2/organizations/{org}/members");
    let eleven: Vec<String> = (0..11).map(|i| format!("auth0|u{i:03}")).collect();
    let (s, body) = post(&sb, &t, &path, json!({"members": eleven})).await;
    assert_eq!(s, 400);
    assert_eq!(
        body["message"],
        "You can send a maximum of 10 members per organization per request."
    );
    assert!(sb.auth0().org_member_ids(&org).is_empty());
    let (s, body) = post(&sb, &t, &path, json!({"members": &eleven[..10]})).await;
    assert_eq!((s, body), (204, Value::Null));
    assert_eq!(
        post(&sb, &t, &path, json!({"members": ["auth0|ghost"]}))
            .await
            .0,
        400
    );
    assert_eq!(post(&sb, &t, &path, json!({"members": []})).await.0, 400);
    assert_eq!(
        post(
            &sb,
            &t,
            "/api/v2/organizations/org_nope/members",
            json!({"members": ["auth0|u000"]})
        )
        .await
        .0,
        404
    );
    post(
        &sb,
        &t,
        &path,
        json!({"members": ["auth0|u010", "auth0|u011"]}),
    )
    .await;
    assert_eq!(sb.auth0().org_member_ids(&org).len(), 12);

    // Member roles.
    let rpath = format!("{path}/auth0%7Cu003/roles");
    let (s, body) = post(&sb, &t, &rpath, json!({"roles": [role.clone()]})).await;
    assert_eq!((s, body), (204, Value::Null));
    let (s, roles) = get(&sb, &t, &format!("{rpath}?include_totals=true")).await;
    assert_eq!(s, 200);
    assert_eq!(
        roles,
        json!({"roles":[{"id": role, "name":"org-admin","description":"Org admin"}],"start":0,"limit":50,"total":1})
    );
    assert_eq!(
        sb.auth0().org_member_role_names(&org, "auth0|u003"),
        vec!["org-admin"]
    );

    // Checkpoint: a short page still carries `next`; the end is an empty page.
    let mut seen = Vec::new();
    let mut url = format!("{path}?take=5&fields=roles");
    let mut pages = 0;
    loop {
        let (s, page) = get(&sb, &t, &url).await;
        assert_eq!(s, 200);
        pages += 1;
        let members = page["members"].as_array().unwrap();
        for m in members {
            seen.push(m["user_id"].as_str().unwrap().to_owned());
            if m["user_id"] == "auth0|u003" {
                assert_eq!(m["roles"], json!([{"id": role, "name":"org-admin"}]));
            } else {
                assert_eq!(m["roles"], json!([]));
            }
        }
        match page.get("next").and_then(Value::as_str) {
            Some(next) => {
                assert!(!members.is_empty());
                url = format!("{path}?take=5&fields=roles&from={next}");
            }
            None => {
                assert!(members.is_empty());
                break;
            }
        }
    }
    assert_eq!(pages, 4, "5 + 5 + 2 + an empty page");
    let expected: Vec<String> = (0..12).map(|i| format!("auth0|u{i:03}")).collect();
    assert_eq!(seen, expected);
    // Offset paging with totals.
    let (_, offset) = get(
        &sb,
        &t,
        &format!("{path}?include_totals=true&per_page=10&page=1"),
    )
    .await;
    assert_eq!(offset["total"], 12);
    assert_eq!(offset["members"].as_array().unwrap().len(), 2);
    assert!(
        offset["members"][0].get("roles").is_none(),
        "roles only with fields=roles"
    );

    // 50 roles per member at most.
    let many: Vec<String> = (0..51)
        .map(|i| sb.auth0().seed_role(&format!("r{i}"), "", &[]))
        .collect();
    let (s, body) = post(
        &sb,
        &t,
        &format!("{path}/auth0%7Cu004/roles"),
        json!({"roles": many}),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(
        body["message"],
        "No more roles can be assigned to this organization member."
    );
}

#[tokio::test]
async fn seed_users_roles_and_orgs_without_http() {
    let sb = start().await;
    let (inserted, errors) = sb.auth0().seed_users(
        "Username-Password-Authentication",
        &[
            json!({"email":"s1@example.com","user_id":"s1","mfa_factors":[{"totp":{"secret":"JBSWY3DPEHPK3PXP"}}]}),
            json!({"email":"s1@example.com"}),
        ],
    );
    assert_eq!(inserted, 1);
    assert_eq!(errors[0]["errors"][0]["code"], "DUPLICATED_USER");
    assert_eq!(sb.auth0().mfa_factor_kinds("auth0|s1"), vec!["totp"]);
    let role = sb
        .auth0()
        .seed_role("admin", "Admins", &[("https://api/", "do:all")]);
    assert_eq!(
        sb.auth0().seed_role("admin", "again", &[]),
        role,
        "found by name"
    );
    sb.auth0().seed_role_users(&role, &["auth0|s1"]);
    let org = sb.auth0().seed_organization("acme", "Acme");
    sb.auth0().seed_org_members(&org, &["auth0|s1"]);
    sb.auth0().seed_org_member_roles(&org, "auth0|s1", &[&role]);
    let t = token(&sb).await;
    let (_, users) = get(&sb, &t, &format!("/api/v2/roles/{role}/users")).await;
    assert_eq!(users[0]["user_id"], "auth0|s1");
    let (_, perms) = get(&sb, &t, &format!("/api/v2/roles/{role}/permissions")).await;
    assert_eq!(perms[0]["permission_name"], "do:all");
    let (_, members) = get(
        &sb,
        &t,
        &format!("/api/v2/organizations/{org}/members?fields=roles"),
    )
    .await;
    assert_eq!(members[0]["roles"][0]["name"], "admin");
    assert_eq!(sb.auth0().organizations()[0]["name"], "acme");
    assert_eq!(sb.auth0().roles().len(), 1);
}
