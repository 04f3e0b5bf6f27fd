//! The Auth0 emulator follows the corrected docs (issue 12 §6), driven over plain HTTP.

mod common;

use std::time::Duration;

use authmigrate_sandbox::auth0::{Auth0Config, ConnectionConfig, PasswordPolicy};
use authmigrate_sandbox::{FaultConfig, RateLimit};
use common::*;
use serde_json::{Value, json};

async fn errors_of(sb: &authmigrate_sandbox::Sandbox, t: &str, id: &str) -> reqwest::Response {
    client()
        .get(format!("{}/api/v2/jobs/{id}/errors", sb.base_url()))
        .bearer_auth(t)
        .send()
        .await
        .unwrap()
}

async fn by_email(sb: &authmigrate_sandbox::Sandbox, t: &str, email: &str) -> Value {
    client()
        .get(format!("{}/api/v2/users-by-email", sb.base_url()))
        .query(&[("email", email)])
        .bearer_auth(t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn advance(sb: &authmigrate_sandbox::Sandbox, seconds: u64) -> Value {
    let res = client()
        .post(format!("{}/_sandbox/auth0/clock", sb.base_url()))
        .json(&json!({"advance_seconds": seconds}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn existing_user_and_in_file_duplicates_are_duplicated_user_without_path() {
    let sb = start().await;
    let t = token(&sb).await;
    let first = json!([{"email":"dup@example.com","username":"dupname","user_id":"d1"}]);
    let id = import(&sb, &t, &first, false).await;
    wait_job(&sb, &t, &id).await;

    let again = json!([{"email":"dup@example.com","email_verified":true}]);
    let id = import(&sb, &t, &again, false).await;
    let job = wait_job(&sb, &t, &id).await;
    assert_eq!(
        job["summary"],
        json!({"failed":1,"updated":0,"inserted":0,"total":1})
    );
    let res = errors_of(&sb, &t, &id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!([{"user":{"email":"dup@example.com","email_verified":true},
                "errors":[{"code":"DUPLICATED_USER","message":"The user already exist and upsert parameter is false"}]}])
    );

    // Twice in one file: by e-mail (in another case), username and user_id.
    let twice = json!([
        {"email":"a@example.com","username":"ua","user_id":"ia"},
        {"email":"A@Example.com"},
        {"email":"b@example.com","username":"ua"},
        {"email":"c@example.com","user_id":"ia"}
    ]);
    let id = import(&sb, &t, &twice, false).await;
    let job = wait_job(&sb, &t, &id).await;
    assert_eq!(job["summary"]["inserted"], 1);
    assert_eq!(job["summary"]["failed"], 3);
    let errors: Value = errors_of(&sb, &t, &id).await.json().await.unwrap();
    let got: Vec<Value> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["errors"].clone())
        .collect();
    let expect = |what: &str| json!([{"code":"DUPLICATED_USER","message":format!("A user with this {what} was already provided.")}]);
    assert_eq!(
        got,
        vec![expect("email"), expect("username"), expect("user_id")]
    );
}

#[tokio::test]
async fn import_fills_name_nickname_and_gravatar_picture() {
    let sb = start().await;
    let t = token(&sb).await;
    let users = json!([
        {"email":"Jane.Doe@Example.com"},
        {"email":"kept@example.com","name":"Kept Name","nickname":"kn","picture":"https://p.example/x.png"}
    ]);
    let id = import(&sb, &t, &users, false).await;
    wait_job(&sb, &t, &id).await;
    let jane = by_email(&sb, &t, "jane.doe@example.com").await;
    let jane = &jane[0];
    assert_eq!(jane["email"], "jane.doe@example.com");
    assert_eq!(jane["name"], "jane.doe@example.com");
    assert_eq!(jane["nickname"], "jane.doe");
    // md5("jane.doe@example.com")
    let md5 = {
        use md5::Digest as _;
        hex::encode(md5::Md5::digest(b"jane.doe@example.com"))
    };
    let picture = jane["picture"].as_str().unwrap();
    assert!(
        picture.starts_with(&format!("https://secure.gravatar.com/avatar/{md5}?")),
        "{picture}"
    );
    let kept = by_email(&sb, &t, "kept@example.com").await;
    assert_eq!(kept[0]["name"], "Kept Name");
    assert_eq!(kept[0]["nickname"], "kn");
    assert_eq!(kept[0]["picture"], "https://p.example/x.png");
}

#[tokio::test]
async fn mfa_factors_are_upsertable_and_a_bad_factor_keeps_other_changes() {
    let sb = start().await;
    let t = token(&sb).await;
    let users =
        json!([{"email":"m@example.com","mfa_factors":[{"totp":{"secret":"JBSWY3DPEHPK3PXP"}}]}]);
    let id = import(&sb, &t, &users, false).await;
    wait_job(&sb, &t, &id).await;
    let uid = by_email(&sb, &t, "m@example.com").await[0]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sb.auth0().mfa_factor_kinds(&uid), vec!["totp"]);

    // Upsert replaces the factors.
    let users =
        json!([{"email":"m@example.com","mfa_factors":[{"phone":{"value":"+15551234567"}}]}]);
    let id = import(&sb, &t, &users, true).await;
    let job = wait_job(&sb, &t, &id).await;
    assert_eq!(job["summary"]["updated"], 1);
    assert_eq!(errors_of(&sb, &t, &id).await.status(), 204);
    assert_eq!(sb.auth0().mfa_factor_kinds(&uid), vec!["phone"]);

    // A factor that cannot be enrolled (two TOTP secrets): MFA_FACTORS_FAILED, while the
    // profile change applies.
    let users = json!([{"email":"m@example.com","given_name":"Changed",
        "mfa_factors":[{"totp":{"secret":"JBSWY3DPEHPK3PXP"}},{"totp":{"secret":"GEZDGNBVGY3TQOJQ"}}]}]);
    let id = import(&sb, &t, &users, true).await;
    let job = wait_job(&sb, &t, &id).await;
    assert_eq!(job["summary"]["updated"], 1);
    let errors: Value = errors_of(&sb, &t, &id).await.json().await.unwrap();
    assert_eq!(
        errors[0]["errors"],
        json!([{"code":"MFA_FACTORS_FAILED","message":"Unable to import factors"}])
    );
    assert_eq!(
        errors[0]["user"]["mfa_factors"][0]["totp"]["secret"],
        "*****"
    );
    assert_eq!(
        by_email(&sb, &t, "m@example.com").await[0]["given_name"],
        "Changed"
    );
    assert_eq!(sb.auth0().mfa_factor_kinds(&uid), vec!["phone"]);
}

#[tokio::test]
async fn failed_job_errors_is_the_job_object_and_clean_job_is_204_empty() {
    let sb = start_with(
        FaultConfig {
            fail_jobs: vec![0],
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let t = token(&sb).await;
    let id = import(&sb, &t, &json!([{"email":"f@example.com"}]), false).await;
    assert_eq!(wait_job(&sb, &t, &id).await["status"], "failed");
    let res = errors_of(&sb, &t, &id).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["status"], "failed");
    assert_eq!(body["type"], "users_import");
    assert!(body["status_details"].is_string());
    assert!(body["connection_id"].as_str().unwrap().starts_with("con_"));

    let id = import(&sb, &t, &json!([{"email":"ok@example.com"}]), false).await;
    assert_eq!(wait_job(&sb, &t, &id).await["status"], "completed");
    let res = errors_of(&sb, &t, &id).await;
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn jobs_time_out_after_two_hours_and_are_deleted_after_a_day() {
    // Every job takes 3 h; the clock starts 10 s ahead (the config offset).
    let sb = start_with(
        FaultConfig {
            job_latency: Duration::from_secs(3 * 3600),
            ..FaultConfig::default()
        },
        Auth0Config {
            clock_offset: Duration::from_secs(10),
            ..Auth0Config::default()
        },
    )
    .await;
    assert_eq!(
        client()
            .get(format!("{}/_sandbox/auth0/clock", sb.base_url()))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        json!({"offset_seconds": 10})
    );
    let t = token(&sb).await;
    let users: Vec<Value> = (0..6)
        .map(|i| json!({"email": format!("t{i}@example.com")}))
        .collect();
    let id = import(&sb, &t, &Value::Array(users), false).await;
    let job = get_job(&sb, &t, &id).await;
    assert_eq!(job["status"], "pending");
    assert_eq!(advance(&sb, 5400).await, json!({"offset_seconds": 5410}));
    let job = get_job(&sb, &t, &id).await;
    assert_eq!(job["status"], "processing");
    assert_eq!(job["percentage_done"], 50);
    advance(&sb, 1800).await;
    let job = get_job(&sb, &t, &id).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["status_details"], "Job timed out after 2 hours");
    // 2 h of a 3 h job: the first 4 of 6 users were inserted.
    let emails: Vec<String> = sb
        .auth0()
        .users()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        emails,
        ["t0", "t1", "t2", "t3"].map(|e| format!("{e}@example.com"))
    );
    // The failed job no longer counts against the two-job limit; its data goes at 24 h.
    advance(&sb, 22 * 3600).await;
    let t = token(&sb).await;
    let res = client()
        .get(format!("{}/api/v2/jobs/{id}", sb.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        "Job not found."
    );
    let bad = client()
        .post(format!("{}/_sandbox/auth0/clock", sb.base_url()))
        .json(&json!({"advance_seconds": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn import_answer_faults_after_the_job_was_created() {
    let sb = start_with(
        FaultConfig {
            import_500_after_create: vec![0],
            import_drop_after_create: vec![1],
            fail_jobs_after: vec![(2, 2)],
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let t = token(&sb).await;
    let cid = conn_id(&sb, "Username-Password-Authentication");
    let send = |users: Value| {
        let (sb, t, cid) = (&sb, &t, &cid);
        async move {
            import_raw(
                sb,
                t,
                Some(serde_json::to_vec(&users).unwrap()),
                &[("connection_id", cid), ("send_completion_email", "false")],
            )
            .await
        }
    };
    // Job 0: 500 "Internal error." but the job runs.
    let res = send(json!([{"email":"e0@example.com"}])).await;
    assert_eq!(res.status(), 500);
    assert!(res.headers().contains_key("x-ratelimit-remaining"));
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"statusCode":500,"error":"Internal Server Error","message":"Internal error.","errorCode":"internal_error"})
    );
    // Job 1: the connection drops, the job runs.
    let mut form = reqwest::multipart::Form::new();
    form = form.part(
        "users",
        reqwest::multipart::Part::bytes(br#"[{"email":"e1@example.com"}]"#.to_vec())
            .file_name("users.json"),
    );
    form = form.text("connection_id", cid.clone());
    let dropped = client()
        .post(format!("{}/api/v2/jobs/users-imports", sb.base_url()))
        .bearer_auth(&t)
        .multipart(form)
        .send()
        .await;
    let body = match dropped {
        Err(_) => None,
        Ok(r) => Some(r.bytes().await),
    };
    assert!(
        body.is_none() || body.as_ref().is_some_and(Result::is_err),
        "the answer must not arrive"
    );
    // Job 2 (once the first two are done): ends failed after its first 2 users.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let res = send(json!([
        {"email":"k0@example.com"},{"email":"k1@example.com"},{"email":"k2@example.com"}
    ]))
    .await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(wait_job(&sb, &t, &id).await["status"], "failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut emails: Vec<String> = sb
        .auth0()
        .users()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        vec![
            "e0@example.com",
            "e1@example.com",
            "k0@example.com",
            "k1@example.com"
        ]
    );
    assert_eq!(sb.auth0().jobs_created(), 3);
}

#[tokio::test]
async fn rate_limit_headers_on_every_management_answer_by_default() {
    let sb = start().await;
    let t = token(&sb).await;
    let base = sb.base_url();
    for (url, auth, status) in [
        (format!("{base}/api/v2/connections"), true, 200),
        (format!("{base}/api/v2/jobs/job_nope"), true, 404),
        (format!("{base}/api/v2/users"), false, 401),
    ] {
        let mut req = client().get(&url);
        if auth {
            req = req.bearer_auth(&t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), status, "{url}");
        let h = res.headers();
        assert_eq!(h["x-ratelimit-limit"], "10000", "{url}");
        let remaining: u64 = h["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(remaining > 9_000 && remaining < 10_000, "{remaining}");
        let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!(reset > 1_600_000_000);
    }
}

#[tokio::test]
async fn configured_bucket_refuses_with_the_real_429_body_and_headers() {
    let sb = start_with(
        FaultConfig {
            rate_limit: Some(RateLimit {
                burst: 2,
                per_second: 0.001,
            }),
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let t = token(&sb).await;
    let get = || {
        client()
            .get(format!("{}/api/v2/connections", sb.base_url()))
            .bearer_auth(&t)
            .send()
    };
    let ok = get().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-ratelimit-limit"], "2");
    assert_eq!(ok.headers()["x-ratelimit-remaining"], "0");
    let refused = get().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    assert!(refused.headers().contains_key("x-ratelimit-reset"));
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        json!({"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached","errorCode":"too_many_requests"})
    );
}

#[tokio::test]
async fn custom_domain_tenant_wants_the_canonical_audience() {
    let sb = start_with(
        FaultConfig::default(),
        Auth0Config {
            canonical_domain: Some("acme.eu.auth0.com".to_owned()),
            ..Auth0Config::default()
        },
    )
    .await;
    let ask = |audience: String| {
        client()
            .post(format!("{}/oauth/token", sb.base_url()))
            .form(&[
                ("grant_type", "client_credentials".to_owned()),
                ("client_id", "sandbox-client".to_owned()),
                ("client_secret", "sandbox-secret".to_owned()),
                ("audience", audience),
            ])
            .send()
    };
    let wrong = ask(format!("{}/api/v2/", sb.base_url())).await.unwrap();
    assert_eq!(wrong.status(), 403);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");
    assert!(body["error_description"].is_string());
    let right = ask("https://acme.eu.auth0.com/api/v2/".to_owned())
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(sb.auth0().audience(), "https://acme.eu.auth0.com/api/v2/");
}

#[tokio::test]
async fn create_mode_password_policy_and_username_length() {
    let mut conn = ConnectionConfig::new("Strict-DB", "auth0", true);
    conn.requires_username = true;
    conn.password_policy = Some(PasswordPolicy::strictest(10));
    conn.username_length = Some((1, 15));
    let mut cfg = Auth0Config::default();
    cfg.connections.push(conn);
    let sb = start_with(FaultConfig::default(), cfg).await;
    let t = token(&sb).await;
    let conns: Value = client()
        .get(format!(
            "{}/api/v2/connections?name=Strict-DB",
            sb.base_url()
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let options = &conns[0]["options"];
    assert_eq!(options["passwordPolicy"], "excellent");
    assert_eq!(options["password_complexity_options"]["min_length"], 10);
    assert_eq!(options["validation"]["username"], json!({"min":1,"max":15}));

    let create = |username: &str, password: &str| {
        client()
            .post(format!("{}/api/v2/users", sb.base_url()))
            .bearer_auth(&t)
            .json(
                &json!({"connection":"Strict-DB","email":format!("{username}@example.com"),
                          "username":username,"password":password}),
            )
            .send()
    };
    for weak in [
        "Sh0rt!",        // too short
        "nouppercase1!", // a class missing
        "NoDigitsHere!", // a class missing
        "Paaass1!word",  // three identical in a row
        "Pabc1!wordXy",  // three sequential
        "Pa321!wordXy",  // three sequential, descending
    ] {
        let res = create("weak", weak).await.unwrap();
        assert_eq!(res.status(), 400, "{weak}");
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            json!({"statusCode":400,"error":"Bad Request","message":"PasswordStrengthError: Password is too weak","errorCode":"invalid_password"})
        );
    }
    let long = create("a-very-long-username", "Go0d!Pa55word")
        .await
        .unwrap();
    assert_eq!(long.status(), 400);
    assert_eq!(
        long.json::<Value>().await.unwrap()["message"],
        "The username must have between 1 and 15 characters."
    );
    let ok = create("gooduser", "Go0d!Pa55word").await.unwrap();
    assert_eq!(ok.status(), 201);
    assert!(
        sb.auth0()
            .check_password("gooduser@example.com", "Go0d!Pa55word")
    );
    // The default connection has no policy.
    let lax = client()
        .post(format!("{}/api/v2/users", sb.base_url()))
        .bearer_auth(&t)
        .json(&json!({"connection":"Username-Password-Authentication","email":"lax@example.com","password":"x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(lax.status(), 201);
}
