//! The user endpoints a delete tool needs (issue 15), over plain HTTP.

mod common;

use authmigrate_sandbox::auth0::Auth0Config;
use authmigrate_sandbox::{FaultConfig, Sandbox};
use common::*;
use serde_json::{Value, json};

async fn get(sb: &Sandbox, t: &str, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", sb.base_url()))
        .bearer_auth(t)
        .send()
        .await
        .unwrap()
}

fn assert_rate_headers(res: &reqwest::Response) {
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(res.headers().contains_key(h), "{h} missing");
    }
}

async fn seeded() -> (Sandbox, String) {
    let sb = start().await;
    let t = token(&sb).await;
    let mut users: Vec<Value> = (0..12)
        .map(|i| {
            json!({"email": format!("qa-{i:02}@test.example"), "user_id": format!("qa{i:02}"),
                        "password_hash": bcrypt4("pw")})
        })
        .collect();
    users.push(json!({"email":"real@customer.example","user_id":"real","given_name":"Real"}));
    let id = import(&sb, &t, &Value::Array(users), false).await;
    wait_job(&sb, &t, &id).await;
    (sb, t)
}

#[tokio::test]
async fn delete_is_204_then_the_user_is_gone_and_a_repeat_is_204() {
    let (sb, t) = seeded().await;
    let del = || {
        client()
            .delete(format!("{}/api/v2/users/auth0%7Cqa03", sb.base_url()))
            .bearer_auth(&t)
            .send()
    };
    let res = del().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_rate_headers(&res);
    assert!(res.bytes().await.unwrap().is_empty());
    let gone = get(&sb, &t, "/api/v2/users/auth0%7Cqa03").await;
    assert_eq!(gone.status(), 404);
    assert_rate_headers(&gone);
    assert_eq!(
        gone.json::<Value>().await.unwrap(),
        json!({"statusCode":404,"error":"Not Found","message":"The user does not exist.","errorCode":"inexistent_user"})
    );
    // Real tenants answer 204 to a repeated delete (the OAS lists no 404).
    assert_eq!(del().await.unwrap().status(), 204);
    assert_eq!(sb.auth0().users().len(), 12);
    assert!(sb.auth0().user_by_email("qa-03@test.example").is_none());
    assert!(sb.auth0().user_by_email("qa-04@test.example").is_some());
}

#[tokio::test]
async fn delete_needs_the_delete_users_scope() {
    let sb = start_with(
        FaultConfig::default(),
        Auth0Config {
            scopes: vec!["read:users".to_owned()],
            ..Auth0Config::default()
        },
    )
    .await;
    let t = token(&sb).await;
    let res = client()
        .delete(format!("{}/api/v2/users/auth0%7Cx", sb.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        "Insufficient scope; expected any of: delete:users,delete:current_user."
    );
}

#[tokio::test]
async fn users_by_email_is_exact_and_case_sensitive() {
    let (sb, t) = seeded().await;
    let res = get(&sb, &t, "/api/v2/users-by-email?email=qa-01%40test.example").await;
    assert_eq!(res.status(), 200);
    assert_rate_headers(&res);
    let found: Value = res.json().await.unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["user_id"], "auth0|qa01");
    assert_eq!(found[0]["identities"][0]["user_id"], "qa01");
    for miss in ["QA-01%40test.example", "qa-01%40test.exampl", "qa-0"] {
        let v: Value = get(&sb, &t, &format!("/api/v2/users-by-email?email={miss}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v, json!([]), "{miss}");
    }
}

#[tokio::test]
async fn list_users_q_paging_and_totals() {
    let (sb, t) = seeded().await;
    let page: Value = get(
        &sb,
        &t,
        "/api/v2/users?q=email%3Aqa-*&per_page=5&page=1&include_totals=true&search_engine=v3",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(page["start"], 5);
    assert_eq!(page["limit"], 5);
    assert_eq!(page["length"], 5);
    assert_eq!(page["total"], 12);
    let ids: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "auth0|qa05",
            "auth0|qa06",
            "auth0|qa07",
            "auth0|qa08",
            "auth0|qa09"
        ]
    );
    // Normalized fields compare case-insensitively; a bare array without totals.
    let one: Value = get(
        &sb,
        &t,
        "/api/v2/users?q=email%3A%22REAL%40Customer.example%22",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["given_name"], "Real");
    let both: Value = get(
        &sb,
        &t,
        "/api/v2/users?q=identities.connection%3A%22Username-Password-Authentication%22%20AND%20user_id%3A%22auth0%7Cqa11%22",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(both.as_array().unwrap().len(), 1);
    let deep = get(&sb, &t, "/api/v2/users?per_page=100&page=10").await;
    assert_eq!(deep.status(), 400);
    assert_rate_headers(&deep);
    assert_eq!(
        deep.json::<Value>().await.unwrap()["message"],
        "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation."
    );
    assert_eq!(
        get(&sb, &t, "/api/v2/users?per_page=101").await.status(),
        400
    );
}

#[tokio::test]
async fn a_password_login_updates_last_login_and_logins_count() {
    let (sb, t) = seeded().await;
    let before: Value = get(&sb, &t, "/api/v2/users/auth0%7Cqa02")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["logins_count"], 0);
    assert!(before.get("last_login").is_none());
    assert_eq!(
        login(&sb, "qa-02@test.example", "wrong").await.status(),
        403
    );
    assert_eq!(login(&sb, "qa-02@test.example", "pw").await.status(), 200);
    assert_eq!(login(&sb, "QA-02@test.example", "pw").await.status(), 200);
    let after: Value = get(&sb, &t, "/api/v2/users/auth0%7Cqa02")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["logins_count"], 2);
    assert!(after["last_login"].as_str().unwrap().ends_with('Z'));
    let other: Value = get(&sb, &t, "/api/v2/users/auth0%7Cqa01")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["logins_count"], 0);
}
