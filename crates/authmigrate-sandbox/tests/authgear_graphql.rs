//! The Authgear Admin GraphQL emulator over plain HTTP (issues 15 and 13).

mod agcommon;

use agcommon::{Api, hash};
use authmigrate_sandbox::authgear::AuthgearConfig;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn user_node(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("User:{id}"))
}

async fn seeded(n: usize) -> (Api, Vec<String>) {
    let api = Api::new(AuthgearConfig {
        roles: vec!["admin".into()],
        groups: vec!["staff".into()],
        ..AuthgearConfig::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = api
            .sb
            .authgear()
            .seed_user(
                json!({"email": format!("user{i}@x.com"), "preferred_username": format!("user_{i}"),
                "name": format!("User {i}")}),
            )
            .expect("seed");
        ids.push(id);
    }
    (api, ids)
}

#[tokio::test]
async fn look_ups_by_attribute_login_id_and_node() {
    let (api, ids) = seeded(3).await;
    let (status, v) = api
        .gql(
            r#"query Q($v: String!) {
                byAttr: getUsersByStandardAttribute(attributeName: "email", attributeValue: $v) { id standardAttributes }
                byLogin: getUserByLoginID(loginIDKey: "username", loginIDValue: "USER_2") { id }
                none: getUserByLoginID(loginIDKey: "email", loginIDValue: "nobody@x.com") { id }
            }"#,
            json!({"v": "User1@X.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(v.get("errors").is_none(), "{v}");
    assert_eq!(v["data"]["byAttr"][0]["id"], user_node(&ids[1]));
    assert_eq!(
        v["data"]["byAttr"][0]["standardAttributes"]["email"],
        "user1@x.com"
    );
    assert_eq!(
        v["data"]["byAttr"][0]["standardAttributes"]["name"],
        "User 1"
    );
    assert_eq!(v["data"]["byLogin"]["id"], user_node(&ids[2]));
    assert_eq!(v["data"]["none"], Value::Null);

    let (_, v) = api
        .gql(
            "query($ids: [ID!]!) { nodes(ids: $ids) { __typename ... on User { id isDisabled } } \
             node(id: \"bm90aGluZw\") { id } }",
            json!({"ids": [user_node(&ids[0]), user_node("00000000-0000-0000-0000-000000000000"), "%%%"]}),
        )
        .await;
    assert_eq!(
        v["data"],
        json!({"nodes": [{"__typename": "User", "id": user_node(&ids[0]), "isDisabled": false}, null, null],
               "node": null})
    );

    let (_, v) = api
        .gql(
            r#"{ getUsersByStandardAttribute(attributeName: "name", attributeValue: "x") { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(v["data"], Value::Null);
    assert_eq!(
        v["errors"][0]["message"],
        "attributeName must be email, phone_number or preferred_username"
    );
    assert_eq!(
        v["errors"][0]["extensions"],
        json!({"errorName": "Invalid", "reason": "GetUsersInvalidArgument"})
    );
    assert_eq!(
        v["errors"][0]["path"],
        json!(["getUsersByStandardAttribute"])
    );
    assert_eq!(
        v["errors"][0]["locations"],
        json!([{"line": 1, "column": 3}])
    );

    // Unknown fields are validation errors without extensions.
    let (_, v) = api
        .gql("{ users { edges { node { nope } } } }", json!({}))
        .await;
    assert_eq!(v["data"], Value::Null);
    assert_eq!(
        v["errors"][0]["message"],
        "Cannot query field \"nope\" on type \"User\"."
    );
    assert!(v["errors"][0].get("extensions").is_none());
}

#[tokio::test]
async fn users_pages_100_at_a_time_with_cursors() {
    let (api, ids) = seeded(205).await;
    let q = "query($after: String) { users(first: 500, after: $after) { totalCount \
             edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }";
    let mut after = Value::Null;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, v) = api.gql(q, json!({"after": after})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let conn = &v["data"]["users"];
        assert_eq!(conn["totalCount"], 205);
        let edges = conn["edges"].as_array().expect("edges");
        assert!(edges.len() <= 100);
        seen.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids.iter().map(|i| user_node(i)).collect::<Vec<_>>());
    // The first cursor is offset 0.
    let (_, v) = api
        .gql("{ users(first: 1) { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(v["data"]["users"]["edges"][0]["cursor"], "b2Zmc2V0OjA");
    // Search, and bad paging.
    let (_, v) = api
        .gql(
            r#"{ users(searchKeyword: "user_20") { totalCount edges { node { id } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(v["data"]["users"]["totalCount"], Value::Null);
    assert_eq!(v["data"]["users"]["edges"].as_array().unwrap().len(), 6); // 20, 200-204
    let (_, v) = api
        .gql(r#"{ users(after: "bad!") { totalCount } }"#, json!({}))
        .await;
    assert_eq!(v["data"]["users"], Value::Null);
    assert_eq!(v["errors"][0]["extensions"]["reason"], "InvalidCursor");
    let (_, v) = api
        .gql("{ users(last: 3) { totalCount } }", json!({}))
        .await;
    assert_eq!(v["errors"][0]["extensions"]["reason"], "InvalidQuery");
}

#[tokio::test]
async fn delete_user_five_mutations_at_most_and_rollback() {
    let (api, ids) = seeded(8).await;
    let mutation = |n: usize, offset: usize| -> String {
        let fields: String = (0..n)
            .map(|i| {
                format!(
                    "d{i}: deleteUser(input: {{userID: \"{}\"}}) {{ deletedUserID }}\n",
                    user_node(&ids[offset + i])
                )
            })
            .collect();
        format!("mutation {{ {fields} }}")
    };
    let (status, v) = api.gql(&mutation(6, 0), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v,
        json!({"error": {"name": "BadRequest", "reason": "BadRequest",
            "message": "too many mutation fields in one request: got 6, limit is 5", "code": 400}})
    );
    // Fragments count too.
    let (status, _) = api
        .gql(
            &format!(
                "mutation {{ ...F ...F2 }} fragment F on Mutation {{ {} }} fragment F2 on Mutation {{ {} }}",
                mutation(3, 0).trim_start_matches("mutation {").trim_end_matches('}'),
                mutation(3, 3).trim_start_matches("mutation {").trim_end_matches('}'),
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(api.sb.authgear().users().len(), 8);

    let (status, v) = api.gql(&mutation(5, 0), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["data"]["d0"]["deletedUserID"], user_node(&ids[0]));
    assert_eq!(api.sb.authgear().users().len(), 3);
    assert!(api.sb.authgear().user_by_login_id("user0@x.com").is_none());

    // One failing field rolls the whole request back.
    let (_, v) = api
        .gql(
            "mutation($a: ID!, $b: ID!) { a: deleteUser(input: {userID: $a}) { deletedUserID } \
             b: deleteUser(input: {userID: $b}) { deletedUserID } }",
            json!({"a": user_node(&ids[5]), "b": user_node(&ids[0])}),
        )
        .await;
    assert_eq!(
        v,
        json!({"data": null, "errors": [{"message": "user not found", "locations": [{"line": 1, "column": 83}],
            "path": ["b"], "extensions": {"errorName": "NotFound", "reason": "UserNotFound"}}]})
    );
    assert_eq!(api.sb.authgear().users().len(), 3);
    let (_, v) = api
        .gql(
            r#"mutation { deleteUser(input: {userID: "Um9sZTox"}) { deletedUserID } }"#,
            json!({}),
        )
        .await;
    assert_eq!(v["errors"][0]["message"], "invalid user ID");
    assert_eq!(v["errors"][0]["extensions"]["errorName"], "Invalid");
    // A syntax error is a 500 outside the envelope; application/graphql works.
    let (status, v) = api.gql("mutation { deleteUser(", json!({})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(v["error"]["reason"], "UnexpectedError");
    let resp = api
        .post_raw(
            "/_api/admin/graphql",
            "application/graphql",
            b"{ users { totalCount } }".to_vec(),
        )
        .await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v, json!({"data": {"users": {"totalCount": 3}}}));
}

#[tokio::test]
async fn roles_and_groups_mutations_queries_and_key_rules() {
    let (api, ids) = seeded(2).await;
    let (_, v) = api
        .gql(
            r#"mutation {
                a: createRole(input: {key: "editor", name: "Editor", description: "Edits"}) { role { id key name description } }
                b: createRole(input: {key: "viewer"}) { role { key name } }
                c: createGroup(input: {key: "org:acme", name: "Acme"}) { group { id key name } }
            }"#,
            json!({}),
        )
        .await;
    assert!(v.get("errors").is_none(), "{v}");
    assert_eq!(v["data"]["a"]["role"]["name"], "Editor");
    assert_eq!(
        v["data"]["b"]["role"],
        json!({"key": "viewer", "name": null})
    );
    let editor_id = v["data"]["a"]["role"]["id"].as_str().unwrap().to_owned();
    assert!(
        URL_SAFE_NO_PAD
            .decode(&editor_id)
            .map(|b| b.starts_with(b"Role:"))
            .unwrap()
    );

    // Duplicate keys and key rules; the failed request created nothing.
    let (_, v) = api
        .gql(r#"mutation { x: createRole(input: {key: "zzz"}) { role { key } } y: createRole(input: {key: "editor"}) { role { key } } }"#, json!({}))
        .await;
    assert_eq!(v["data"], Value::Null);
    assert_eq!(v["errors"][0]["message"], "duplicate role key");
    assert_eq!(
        v["errors"][0]["extensions"],
        json!({"errorName": "BadRequest", "reason": "RoleDuplicateKey"})
    );
    let (_, v) = api
        .gql(
            r#"mutation { createGroup(input: {key: "org:acme"}) { group { key } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(v["errors"][0]["extensions"]["reason"], "GroupDuplicateKey");
    for bad in ["0admin", "authgear:user", &"a".repeat(41), "has space"] {
        let (_, v) = api
            .gql(
                "mutation($k: String!) { createRole(input: {key: $k}) { role { key } } }",
                json!({"k": bad}),
            )
            .await;
        assert_eq!(
            v["errors"][0]["extensions"]["reason"], "ValidationFailed",
            "{bad}: {v}"
        );
        assert_eq!(v["errors"][0]["message"], "invalid value");
        assert_eq!(
            v["errors"][0]["extensions"]["info"]["causes"][0]["location"],
            ""
        );
    }
    assert_eq!(api.sb.authgear().role_keys(), ["admin", "editor", "viewer"]);

    // Associations.
    let u0 = user_node(&ids[0]);
    let u1 = user_node(&ids[1]);
    let (_, v) = api
        .gql(
            r#"mutation($u0: ID!, $u1: ID!) {
                addRoleToGroups(input: {roleKey: "editor", groupKeys: ["org:acme"]}) { role { key groups { totalCount } } }
                addUserToGroups(input: {userID: $u0, groupKeys: ["org:acme"]}) { user { id } }
                addUserToRoles(input: {userID: $u0, roleKeys: ["viewer", "admin"]}) { user { roles { totalCount edges { node { key } } } } }
                addRoleToUsers(input: {roleKey: "viewer", userIDs: [$u1]}) { role { users { edges { node { id } } } } }
            }"#,
            json!({"u0": u0, "u1": u1}),
        )
        .await;
    assert!(v.get("errors").is_none(), "{v}");
    assert_eq!(
        v["data"]["addRoleToGroups"]["role"]["groups"]["totalCount"],
        1
    );
    assert_eq!(
        v["data"]["addUserToRoles"]["user"]["roles"],
        json!({"totalCount": 2, "edges": [{"node": {"key": "viewer"}}, {"node": {"key": "admin"}}]})
    );
    assert_eq!(
        v["data"]["addRoleToUsers"]["role"]["users"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let ag = api.sb.authgear();
    let user0 = ag.user_by_login_id("user0@x.com").unwrap();
    assert_eq!(
        (user0.roles.clone(), user0.groups.clone()),
        (
            vec!["viewer".into(), "admin".into()],
            vec!["org:acme".into()]
        )
    );
    assert_eq!(
        ag.groups(),
        [
            ("org:acme".to_owned(), vec!["editor".to_owned()]),
            ("staff".to_owned(), vec![])
        ]
    );

    // Reading back: a user's roles, groups and effective roles; roles() and groups().
    let (_, v) = api
        .gql(
            r#"query($u0: ID!) { node(id: $u0) { ... on User { groups { edges { node { key roles { edges { node { key } } } } } }
                effectiveRoles { totalCount } } }
              roles(searchKeyword: "E") { totalCount edges { node { key } } }
              groups { edges { node { key name users { edges { node { id } } } } } } }"#,
            json!({"u0": u0}),
        )
        .await;
    assert!(v.get("errors").is_none(), "{v}");
    assert_eq!(
        v["data"]["node"]["groups"]["edges"][0]["node"]["roles"]["edges"][0]["node"]["key"],
        "editor"
    );
    assert_eq!(v["data"]["node"]["effectiveRoles"]["totalCount"], 3);
    // searchKeyword matches key or name, case-insensitively; totalCount ignores it.
    assert_eq!(
        v["data"]["roles"],
        json!({"totalCount": 3, "edges": [{"node": {"key": "editor"}}, {"node": {"key": "viewer"}}]})
    );
    assert_eq!(
        v["data"]["groups"]["edges"][0]["node"]["users"]["edges"][0]["node"]["id"],
        u0
    );

    // Unknown keys and ids, with the server's quirk for addGroupToRoles.
    let cases = [
        (
            format!(
                r#"addUserToRoles(input: {{userID: "{u0}", roleKeys: ["ghost"]}}) {{ user {{ id }} }}"#
            ),
            "RoleUnknownKeys",
            "unknown role keys",
            json!({"keys": ["ghost"]}),
        ),
        (
            format!(
                r#"addUserToGroups(input: {{userID: "{u0}", groupKeys: ["nope"]}}) {{ user {{ id }} }}"#
            ),
            "GroupUnknownKeys",
            "unknown group keys",
            json!({"keys": ["nope"]}),
        ),
        (
            r#"addGroupToRoles(input: {groupKey: "staff", roleKeys: ["ghost"]}) { group { key } }"#
                .to_owned(),
            "GroupUnknownKeys",
            "unknown role keys",
            json!({"keys": ["ghost"]}),
        ),
        (
            r#"addRoleToUsers(input: {roleKey: "ghost", userIDs: []}) { role { key } }"#.to_owned(),
            "RoleNotFound",
            "role not found",
            Value::Null,
        ),
        (
            format!(
                r#"addRoleToUsers(input: {{roleKey: "admin", userIDs: ["{}"]}}) {{ role {{ key }} }}"#,
                user_node("11111111-1111-1111-1111-111111111111")
            ),
            "UserUnknownKeys",
            "unknown user ids",
            json!({"ids": ["11111111-1111-1111-1111-111111111111"]}),
        ),
    ];
    for (field, reason, message, info) in cases {
        let (_, v) = api.gql(&format!("mutation {{ {field} }}"), json!({})).await;
        assert_eq!(
            v["errors"][0]["extensions"]["reason"], reason,
            "{field}: {v}"
        );
        assert_eq!(v["errors"][0]["message"], message);
        assert_eq!(
            v["errors"][0]["extensions"]
                .get("info")
                .cloned()
                .unwrap_or(Value::Null),
            info
        );
    }

    // Imports can now name the created keys; removes and update/delete.
    let done = api
        .import(json!([{"email": "new@x.com", "roles": ["editor"], "groups": ["org:acme"]}]))
        .await;
    assert_eq!(done["details"][0]["outcome"], "inserted", "{done}");
    let (_, v) = api
        .gql(
            r#"mutation($u0: ID!, $id: ID!) {
                removeUserFromRoles(input: {userID: $u0, roleKeys: ["admin"]}) { user { roles { totalCount } } }
                updateRole(input: {id: $id, key: "writer", name: ""}) { role { key name } }
            }"#,
            json!({"u0": u0, "id": editor_id}),
        )
        .await;
    assert!(v.get("errors").is_none(), "{v}");
    assert_eq!(
        v["data"]["removeUserFromRoles"]["user"]["roles"]["totalCount"],
        1
    );
    assert_eq!(
        v["data"]["updateRole"]["role"],
        json!({"key": "writer", "name": null})
    );
    assert_eq!(ag.user_by_login_id("new@x.com").unwrap().roles, ["writer"]);
    assert_eq!(ag.groups()[0].1, ["writer"]);
    let (_, v) = api
        .gql(
            "mutation($id: ID!) { deleteRole(input: {id: $id}) { ok } }",
            json!({"id": editor_id}),
        )
        .await;
    assert_eq!(v["data"]["deleteRole"]["ok"], true);
    assert!(ag.user_by_login_id("new@x.com").unwrap().roles.is_empty());
    assert_eq!(ag.role_keys(), ["admin", "viewer"]);
}

/// RFC 4226 HOTP, written out here so the test does not trust the emulator's own.
fn totp(key: &[u8], unix: i64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(&((unix / 30) as u64).to_be_bytes());
    let d = mac.finalize().into_bytes();
    let o = (d[19] & 0x0f) as usize;
    let bin = (u32::from(d[o] & 0x7f) << 24)
        | (u32::from(d[o + 1]) << 16)
        | (u32::from(d[o + 2]) << 8)
        | u32::from(d[o + 3]);
    format!("{:06}", bin % 1_000_000)
}

#[tokio::test]
async fn totp_login_requires_a_current_code() {
    let api = Api::new(AuthgearConfig::default()).await;
    // RFC 6238's key "12345678901234567890" in base32.
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let key = b"12345678901234567890";
    assert_eq!(totp(key, 59), "287082");
    let done = api
        .import(json!([
            {"email": "mfa@x.com", "password": {"type": "bcrypt", "password_hash": hash("pw")},
             "mfa": {"totp": {"secret": secret}}},
            {"email": "plain@x.com", "password": {"type": "bcrypt", "password_hash": hash("pw")}},
        ]))
        .await;
    assert_eq!(done["summary"]["inserted"], 2);
    // Mid-step, so the real time that passes during the test cannot cross two steps.
    let t0 = 1_700_000_015;
    api.clock(json!({"now": jiff::Timestamp::from_second(t0).unwrap().to_string()}))
        .await;
    let login = |totp: Option<String>| {
        let mut body = json!({"login_id": "mfa@x.com", "password": "pw"});
        if let Some(code) = totp {
            body["totp"] = json!(code);
        }
        api.login(body)
    };
    let (s, v) = login(None).await;
    assert_eq!(
        (s, v["error"]["reason"].clone()),
        (StatusCode::UNAUTHORIZED, json!("TOTPRequired"))
    );
    for (offset, ok) in [
        (0, true),
        (-30, true),
        (30, true),
        (-60, false),
        (90, false),
    ] {
        let (s, v) = login(Some(totp(key, t0 + offset))).await;
        assert_eq!(s == StatusCode::OK, ok, "offset {offset}: {v}");
    }
    let (s, v) = api
        .login(json!({"login_id": "mfa@x.com", "password": "nope", "totp": totp(key, t0)}))
        .await;
    assert_eq!(
        (s, v["error"]["reason"].clone()),
        (StatusCode::UNAUTHORIZED, json!("InvalidCredentials"))
    );
    // A user without TOTP logs in with the password alone.
    let (s, _) = api
        .login(json!({"login_id": "plain@x.com", "password": "pw"}))
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn groups_update_delete_and_users_filtered_by_role_or_group() {
    let (api, ids) = seeded(3).await;
    let ag = api.sb.authgear();
    let u1 = user_node(&ids[1]);
    let (_, v) = api
        .gql(
            r#"mutation($u1: ID!) {
                addGroupToUsers(input: {groupKey: "staff", userIDs: [$u1]}) { group { id key } }
                addGroupToRoles(input: {groupKey: "staff", roleKeys: ["admin"]}) { group { roles { totalCount } } }
                addUserToRoles(input: {userID: $u1, roleKeys: ["admin"]}) { user { id } }
            }"#,
            json!({"u1": u1}),
        )
        .await;
    assert!(v.get("errors").is_none(), "{v}");
    let staff_id = v["data"]["addGroupToUsers"]["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, v) = api
        .gql(
            r#"{ r: users(roleKeys: ["admin"]) { edges { node { id } } }
                 g: users(groupKeys: ["staff"]) { totalCount edges { node { id } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(v["data"]["r"]["edges"], json!([{"node": {"id": u1}}]));
    assert_eq!(
        v["data"]["g"],
        json!({"totalCount": null, "edges": [{"node": {"id": u1}}]})
    );
    let (_, v) = api
        .gql(
            r#"mutation($id: ID!) {
                removeGroupFromRoles(input: {groupKey: "staff", roleKeys: ["admin"]}) { group { roles { totalCount } } }
                updateGroup(input: {id: $id, name: "Staff", description: "All staff"}) { group { key name description } }
            }"#,
            json!({"id": staff_id}),
        )
        .await;
    assert!(v.get("errors").is_none(), "{v}");
    assert_eq!(
        v["data"]["removeGroupFromRoles"]["group"]["roles"]["totalCount"],
        0
    );
    assert_eq!(
        v["data"]["updateGroup"]["group"],
        json!({"key": "staff", "name": "Staff", "description": "All staff"})
    );
    // A Role id where a Group id belongs, then a real delete.
    let (_, v) = api
        .gql(
            r#"mutation { deleteGroup(input: {id: "VXNlcjox"}) { ok } }"#,
            json!({}),
        )
        .await;
    assert_eq!(v["errors"][0]["message"], "invalid group ID");
    let (_, v) = api
        .gql(
            "mutation($id: ID!) { deleteGroup(input: {id: $id}) { ok } }",
            json!({"id": staff_id}),
        )
        .await;
    assert_eq!(v["data"]["deleteGroup"]["ok"], true);
    assert!(ag.groups().is_empty());
    assert!(
        ag.user_by_login_id("user1@x.com")
            .unwrap()
            .groups
            .is_empty()
    );
    assert_eq!(ag.user_by_login_id("user1@x.com").unwrap().roles, ["admin"]);
    // Missing list arguments are the resolver's unchecked cast: "unexpected error".
    let (_, v) = api
        .gql(
            "mutation($u1: ID!) { addUserToRoles(input: {userID: $u1}) { user { id } } }",
            json!({"u1": u1}),
        )
        .await;
    assert_eq!(
        v,
        json!({"data": null, "errors": [{"message": "unexpected error", "locations": []}]})
    );
}
