//! The Auth0 emulator, driven over HTTP with plain reqwest.

mod common;

use std::error::Error as _;
use std::io::Read as _;
use std::time::Duration;

use authmigrate_sandbox::auth0::Auth0Config;
use authmigrate_sandbox::{FaultConfig, RateLimit};
use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use sha2::Digest as _;

fn err_body(status: u16, error: &str, message: &str, code: &str) -> Value {
    json!({"statusCode": status, "error": error, "message": message, "errorCode": code})
}

#[tokio::test]
async fn token_good_and_bad_credentials_and_401s() {
    let sb = start().await;
    let base = sb.base_url();
    let good = token(&sb).await;
    assert!(good.len() >= 32);

    let bad = client()
        .post(format!("{base}/oauth/token"))
        .json(
            &json!({"grant_type":"client_credentials","client_id":"sandbox-client",
            "client_secret":"nope","audience": format!("{base}/api/v2/")}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let wrong_aud = client()
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
            ("audience", "https://elsewhere/api/v2/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_aud.status(), 403);

    let invalid = err_body(401, "Unauthorized", "Invalid token.", "invalid_token");
    let none = client()
        .get(format!("{base}/api/v2/connections"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.json::<Value>().await.unwrap(), invalid);
    let unknown = client()
        .get(format!("{base}/api/v2/connections"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let ok = client()
        .get(format!("{base}/api/v2/connections"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let sb = start_with(
        FaultConfig::default(),
        Auth0Config {
            token_lifetime: Duration::ZERO,
            ..Auth0Config::default()
        },
    )
    .await;
    let t = token(&sb).await;
    let res = client()
        .get(format!("{}/api/v2/connections", sb.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn connections_by_name_strategy_and_clients() {
    let sb = start().await;
    let t = token(&sb).await;
    let base = sb.base_url();
    let get = |q: &str| {
        client()
            .get(format!("{base}/api/v2/connections{q}"))
            .bearer_auth(&t)
            .send()
    };
    let all: Value = get("").await.unwrap().json().await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let by_name: Value = get("?name=Disabled-DB")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_name.as_array().unwrap().len(), 1);
    let id = by_name[0]["id"].as_str().unwrap();
    assert!(id.starts_with("con_") && id.len() == 20);
    assert_eq!(by_name[0]["strategy"], "auth0");
    let email: Value = get("?strategy=email").await.unwrap().json().await.unwrap();
    assert_eq!(email[0]["name"], "email");
    let both: Value = get("?strategy%5B0%5D=auth0&strategy%5B1%5D=email")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(both.as_array().unwrap().len(), 3);
    let totals: Value = get("?include_totals=true&per_page=1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(totals["total"], 3);
    assert_eq!(totals["connections"].as_array().unwrap().len(), 1);

    let clients = |id: String| {
        client()
            .get(format!("{base}/api/v2/connections/{id}/clients"))
            .bearer_auth(&t)
            .send()
    };
    let enabled: Value = clients(conn_id(&sb, "Username-Password-Authentication"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(enabled, json!({"clients":[{"client_id":"sandbox-client"}]}));
    let disabled: Value = clients(conn_id(&sb, "Disabled-DB"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disabled, json!({"clients":[]}));
}

#[tokio::test]
async fn import_happy_path_then_login() {
    let sb = start().await;
    let t = token(&sb).await;
    let users = json!([
        {"email":"ada@example.com","email_verified":true,"password_hash":bcrypt4("s3cret!"),
         "user_id":"ada1","username":"ada","given_name":"Ada","app_metadata":{"plan":"pro"}},
        {"email":"bob@example.com"}
    ]);
    let id = import(&sb, &t, &users, false).await;
    assert!(id.starts_with("job_"));
    let first = get_job(&sb, &t, &id).await;
    assert_eq!(first["type"], "users_import");
    assert_eq!(first["connection"], "Username-Password-Authentication");
    let job = wait_job(&sb, &t, &id).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(
        job["summary"],
        json!({"failed":0,"updated":0,"inserted":2,"total":2})
    );
    let ada = sb.auth0().user_by_email("ada@example.com").unwrap();
    assert_eq!(ada["user_id"], "auth0|ada1");
    assert_eq!(ada["app_metadata"], json!({"plan":"pro"}));
    assert_eq!(
        ada["identities"],
        json!([{"connection":"Username-Password-Authentication","provider":"auth0","user_id":"ada1","isSocial":false}])
    );
    assert_eq!(ada["logins_count"], 0);
    assert!(!ada.to_string().contains("$2b$"));
    assert_eq!(sb.auth0().completion_emails_requested(), 0);

    let ok = login(&sb, "ada@example.com", "s3cret!").await;
    assert_eq!(ok.status(), 200);
    assert!(ok.json::<Value>().await.unwrap()["access_token"].is_string());
    let bad = login(&sb, "ada@example.com", "s3cret?").await;
    assert_eq!(bad.status(), 403);
    assert_eq!(
        bad.json::<Value>().await.unwrap(),
        json!({"error":"invalid_grant","error_description":"Wrong email or password."})
    );
    assert!(sb.auth0().check_password("ada@example.com", "s3cret!"));
    assert_eq!(
        sb.auth0().user_by_email("ada@example.com").unwrap()["logins_count"],
        1
    );
    // /errors of a clean job: 204 with an empty body.
    let errors = client()
        .get(format!("{}/api/v2/jobs/{id}/errors", sb.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(errors.status(), 204);
    assert!(errors.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn blocked_user_cannot_log_in() {
    let sb = start().await;
    let t = token(&sb).await;
    let users = json!([{"email":"b@example.com","blocked":true,"password_hash":bcrypt4("pw")}]);
    let id = import(&sb, &t, &users, false).await;
    wait_job(&sb, &t, &id).await;
    let res = login(&sb, "b@example.com", "pw").await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error":"unauthorized","error_description":"user is blocked"})
    );
}

fn padded_users(pad: usize) -> Vec<u8> {
    format!(
        "[{{\"email\":\"p@example.com\",\"name\":\"{}\"}}]",
        "x".repeat(pad)
    )
    .into_bytes()
}

#[tokio::test]
async fn upload_limit_is_512000_bytes() {
    let sb = start().await;
    let t = token(&sb).await;
    let cid = conn_id(&sb, "Username-Password-Authentication");
    // reqwest declares the Content-Length of an all-bytes form; the multipart overhead
    // is the same for every form with these parts (boundaries have a fixed length).
    let form = reqwest::multipart::Form::new()
        .part(
            "users",
            reqwest::multipart::Part::bytes(padded_users(0))
                .file_name("users.json")
                .mime_str("application/json")
                .unwrap(),
        )
        .text("connection_id", cid.clone());
    let req = client()
        .post(format!("{}/api/v2/jobs/users-imports", sb.base_url()))
        .bearer_auth(&t)
        .multipart(form)
        .build()
        .unwrap();
    let declared: usize = req.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let pad_for = |total: usize| total - declared;

    let at_limit = import_raw(
        &sb,
        &t,
        Some(padded_users(pad_for(512_000))),
        &[("connection_id", &cid)],
    )
    .await;
    assert_eq!(at_limit.status(), 202);
    let over = import_raw(
        &sb,
        &t,
        Some(padded_users(pad_for(512_001))),
        &[("connection_id", &cid)],
    )
    .await;
    assert_eq!(over.status(), 413);
    assert_eq!(
        over.json::<Value>().await.unwrap(),
        err_body(
            413,
            "Request Entity Too Large",
            "Payload content length greater than maximum allowed: 512000.",
            "payload_too_large"
        )
    );
    // A chunked body without Content-Length is counted while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b'-'; 300_000]), Ok(vec![b'-'; 300_000])];
    let res = client()
        .post(format!("{}/api/v2/jobs/users-imports", sb.base_url()))
        .bearer_auth(&t)
        .header("content-type", "multipart/form-data; boundary=abc")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn every_documented_400() {
    let sb = start().await;
    let t = token(&sb).await;
    let cid = conn_id(&sb, "Username-Password-Authentication");
    let disabled = conn_id(&sb, "Disabled-DB");
    let email = conn_id(&sb, "email");
    let users = Some(br#"[{"email":"a@example.com"}]"#.to_vec());
    type Case<'a> = (Option<Vec<u8>>, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            None,
            vec![("connection_id", &cid)],
            "Must provide 'users' file as multipart part.",
            "invalid_body",
        ),
        (
            Some(Vec::new()),
            vec![("connection_id", &cid)],
            "Users file must not be empty.",
            "invalid_body",
        ),
        (
            users.clone(),
            vec![],
            "Must provide 'connection_id' as multipart part.",
            "invalid_body",
        ),
        (
            users.clone(),
            vec![("connection_id", "Username-Password-Authentication")],
            "Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property connection_id.",
            "invalid_body",
        ),
        (
            users.clone(),
            vec![("connection_id", "con_AAAAAAAAAAAAAAAA")],
            "The connection does not exist.",
            "invalid_body",
        ),
        (
            users.clone(),
            vec![("connection_id", &email)],
            "Connection must be a database connection.",
            "operation_not_supported",
        ),
        (
            users.clone(),
            vec![("connection_id", &disabled)],
            "Connection must be enabled.",
            "invalid_body",
        ),
        (
            users.clone(),
            vec![("connection_id", &cid), ("upsert", "True")],
            "Payload validation error: 'Expected type boolean but found type string' on property upsert.",
            "invalid_body",
        ),
        (
            users.clone(),
            vec![("connection_id", &cid), ("send_completion_email", "1")],
            "Payload validation error: 'Expected type boolean but found type string' on property send_completion_email.",
            "invalid_body",
        ),
        (
            Some(br#"{"email":"a@example.com"}"#.to_vec()),
            vec![("connection_id", &cid)],
            "Payload validation error: 'Users file must contain a JSON array of user objects'.",
            "invalid_body",
        ),
    ];
    for (users, fields, message, code) in cases {
        let res = import_raw(&sb, &t, users, &fields).await;
        assert_eq!(res.status(), 400, "{message}");
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            err_body(400, "Bad Request", message, code)
        );
    }
    // Not multipart at all.
    let res = client()
        .post(format!("{}/api/v2/jobs/users-imports", sb.base_url()))
        .bearer_auth(&t)
        .header("content-type", "multipart/form-data; boundary=xyz")
        .body("garbage without boundaries")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        "Payload validation error: 'Invalid multipart payload format'."
    );
    assert_eq!(sb.auth0().jobs_created(), 0);
}

#[tokio::test]
async fn third_concurrent_job_gets_429() {
    let sb = start_with(
        FaultConfig {
            job_latency: Duration::from_secs(30),
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let t = token(&sb).await;
    let users = json!([{"email":"a@example.com"}]);
    import(&sb, &t, &users, false).await;
    import(&sb, &t, &users, false).await;
    let cid = conn_id(&sb, "Username-Password-Authentication");
    let res = import_raw(
        &sb,
        &t,
        Some(serde_json::to_vec(&users).unwrap()),
        &[("connection_id", &cid)],
    )
    .await;
    assert_eq!(res.status(), 429);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"statusCode":429,"error":"Too Many Requests","message":"There are 2 active import users jobs, please wait until some of them are finished and try again","errorCode":"too_many_requests"}"#
    );
    assert_eq!(sb.auth0().max_active_jobs_seen(), 2);
    assert_eq!(sb.auth0().jobs_created(), 2);
    assert_eq!(sb.auth0().completion_emails_requested(), 0);
}

#[tokio::test]
async fn errors_list_redacts_and_reports_duplicates() {
    let sb = start().await;
    let t = token(&sb).await;
    let users = json!([
        {"email":"dup@example.com","password_hash":bcrypt4("a")},
        {"email":"dup@example.com","custom_password_hash":{"algorithm":"md5",
            "hash":{"value":"00112233445566778899aabbccddeeff","encoding":"hex"}}},
        {"email":"not-an-email"},
        {"email":"ok@example.com","unknown":1}
    ]);
    let id = import(&sb, &t, &users, false).await;
    let job = wait_job(&sb, &t, &id).await;
    assert_eq!(
        job["summary"],
        json!({"failed":3,"updated":0,"inserted":1,"total":4})
    );
    let res = client()
        .get(format!("{}/api/v2/jobs/{id}/errors", sb.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let errors: Value = res.json().await.unwrap();
    let errors = errors.as_array().unwrap();
    assert_eq!(errors.len(), 3);
    assert_eq!(
        errors[0]["errors"],
        json!([{"code":"DUPLICATED_USER","message":"A user with this email was already provided."}])
    );
    assert_eq!(
        errors[0]["user"]["custom_password_hash"]["hash"]["value"],
        "*****"
    );
    assert_eq!(errors[1]["errors"][0]["code"], "FORMAT");
    assert_eq!(errors[1]["errors"][0]["path"], "email");
    assert_eq!(errors[1]["user"], json!({"email":"not-an-email"}));
    assert_eq!(
        errors[2]["errors"][0]["code"],
        "OBJECT_ADDITIONAL_PROPERTIES"
    );

    let missing = client()
        .get(format!("{}/api/v2/jobs/job_nope/errors", sb.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["message"],
        "The job does not exist"
    );
    let missing = client()
        .get(format!("{}/api/v2/jobs/job_nope", sb.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["message"],
        "Job not found."
    );
}

#[tokio::test]
async fn existing_user_without_and_with_upsert() {
    let sb = start().await;
    let t = token(&sb).await;
    let first = json!([{"email":"u@example.com","username":"uu","blocked":false,
        "name":"Old","user_metadata":{"a":1,"b":2},"password_hash":bcrypt4("pw")}]);
    let id = import(&sb, &t, &first, false).await;
    wait_job(&sb, &t, &id).await;

    let again = json!([{"email":"u@example.com","username":"changed","blocked":true,
        "name":"New","user_metadata":{"c":3},"password_hash":bcrypt4("other")}]);
    let id = import(&sb, &t, &again, false).await;
    let job = wait_job(&sb, &t, &id).await;
    assert_eq!(
        job["summary"],
        json!({"failed":1,"updated":0,"inserted":0,"total":1})
    );
    let errors: Value = client()
        .get(format!("{}/api/v2/jobs/{id}/errors", sb.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errors[0]["errors"][0]["code"], "DUPLICATED_USER");
    assert_eq!(
        errors[0]["errors"][0]["message"],
        "The user already exist and upsert parameter is false"
    );
    assert_eq!(errors[0]["user"]["password_hash"], "*****");

    let id = import(&sb, &t, &again, true).await;
    let job = wait_job(&sb, &t, &id).await;
    assert_eq!(
        job["summary"],
        json!({"failed":0,"updated":1,"inserted":0,"total":1})
    );
    let u = sb.auth0().user_by_email("u@example.com").unwrap();
    assert_eq!(u["name"], "New");
    assert_eq!(
        u["user_metadata"],
        json!({"c":3}),
        "overwritten, not merged"
    );
    assert_eq!(u["username"], "uu", "username is not upsertable");
    assert_eq!(u["blocked"], false, "blocked is not upsertable");
    assert!(sb.auth0().check_password("u@example.com", "pw"));
    assert!(!sb.auth0().check_password("u@example.com", "other"));
    assert_eq!(sb.auth0().users().len(), 1);
}

#[tokio::test]
async fn fail_jobs_fault_fails_the_job() {
    let sb = start_with(
        FaultConfig {
            fail_jobs: vec![0],
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let t = token(&sb).await;
    let users = json!([{"email":"f@example.com"}]);
    let id = import(&sb, &t, &users, false).await;
    let job = wait_job(&sb, &t, &id).await;
    assert_eq!(job["status"], "failed");
    assert!(job.get("summary").is_none());
    assert!(sb.auth0().users().is_empty());
    // Leaving send_completion_email out means true (the API default).
    let cid = conn_id(&sb, "Username-Password-Authentication");
    let res = import_raw(
        &sb,
        &t,
        Some(serde_json::to_vec(&users).unwrap()),
        &[("connection_id", &cid), ("external_id", "batch-7")],
    )
    .await;
    assert_eq!(res.status(), 202);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["send_completion_email"], true);
    assert_eq!(created["upsert"], false);
    assert_eq!(created["external_id"], "batch-7");
    assert_eq!(created["status"], "pending");
    assert_eq!(sb.auth0().completion_emails_requested(), 1);
    let id = created["id"].as_str().unwrap();
    assert_eq!(wait_job(&sb, &t, id).await["status"], "completed");
    assert_eq!(sb.auth0().users().len(), 1);
}

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[tokio::test]
async fn export_job_location_expiry_and_fresh_link() {
    let sb = start_with(
        FaultConfig::default(),
        Auth0Config {
            export_link_ttl: Duration::from_millis(150),
            ..Auth0Config::default()
        },
    )
    .await;
    let t = token(&sb).await;
    let users = json!([
        {"email":"e1@example.com","user_id":"e1","user_metadata":{"k":"v"}},
        {"email":"e2@example.com","name":"Two"}
    ]);
    let id = import(&sb, &t, &users, false).await;
    wait_job(&sb, &t, &id).await;
    let cid = conn_id(&sb, "Username-Password-Authentication");
    let res = client()
        .post(format!("{}/api/v2/jobs/users-exports", sb.base_url()))
        .bearer_auth(&t)
        .json(&json!({"connection_id": cid, "format": "json"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["type"], "users_export");
    let job = wait_job(&sb, &t, job["id"].as_str().unwrap()).await;
    let location = job["location"].as_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{}/_sandbox/auth0/exports/", sb.base_url())));
    let gz = client().get(&location).send().await.unwrap();
    assert_eq!(gz.status(), 200);
    let text = gunzip(&gz.bytes().await.unwrap());
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["user_id"], "auth0|e1");
    assert_eq!(lines[0]["user_metadata"], json!({"k":"v"}));
    assert_eq!(lines[1]["name"], "Two");
    assert_eq!(lines[1]["identities"][0]["provider"], "auth0");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client().get(&location).send().await.unwrap().status(), 403);
    let again = get_job(&sb, &t, job["id"].as_str().unwrap()).await;
    let fresh = again["location"].as_str().unwrap();
    assert_ne!(fresh, location);
    assert_eq!(client().get(fresh).send().await.unwrap().status(), 200);

    // fields + export_as.
    let res: Value = client()
        .post(format!("{}/api/v2/jobs/users-exports", sb.base_url()))
        .bearer_auth(&t)
        .json(&json!({"format":"json","fields":[{"name":"email"},
            {"name":"identities[0].connection","export_as":"provider"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = wait_job(&sb, &t, res["id"].as_str().unwrap()).await;
    let text = gunzip(
        &client()
            .get(job["location"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    );
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        first,
        json!({"email":"e1@example.com","provider":"Username-Password-Authentication"})
    );
}

#[tokio::test]
async fn password_hash_export_shape() {
    let sb = start().await;
    let t = token(&sb).await;
    let hash = bcrypt4("pw");
    let users = json!([
        {"email":"h1@example.com","user_id":"euclid","password_hash":hash},
        {"email":"h2@example.com","password_hash":hash,"email_verified":true},
        {"email":"h3@example.com","custom_password_hash":{"algorithm":"md5",
            "hash":{"value":"00112233445566778899aabbccddeeff","encoding":"hex"}}}
    ]);
    let id = import(&sb, &t, &users, false).await;
    wait_job(&sb, &t, &id).await;
    let text = client()
        .get(format!(
            "{}/_sandbox/auth0/password-hashes?connection=Username-Password-Authentication",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "only bcrypt users");
    let a = &lines[0];
    assert_eq!(a["email"], "h1@example.com");
    assert_eq!(a["passwordHash"], hash.as_str());
    assert_eq!(a["alt_id"], "euclid");
    assert_eq!(a["connection"], "Username-Password-Authentication");
    assert_eq!(a["tenant"], "sandbox");
    assert!(
        a["password_set_date"]["$date"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(a["identifiers"][0]["type"], "email");
    let b = &lines[1];
    assert!(b.get("alt_id").is_none());
    let oid = b["_id"]["$oid"].as_str().unwrap();
    assert_eq!(oid.len(), 24);
    assert_eq!(b["email_verified"], true);
    let stored = sb.auth0().user_by_email("h2@example.com").unwrap();
    assert_eq!(stored["user_id"], format!("auth0|{oid}"));
}

#[tokio::test]
async fn create_user_201_409_and_disabled_400() {
    let sb = start().await;
    let t = token(&sb).await;
    let post = |body: Value| {
        client()
            .post(format!("{}/api/v2/users", sb.base_url()))
            .bearer_auth(&t)
            .json(&body)
            .send()
    };
    let body = json!({"connection":"Username-Password-Authentication",
        "email":"new@example.com","password":"Passw0rd!","name":"New"});
    let res = post(body.clone()).await.unwrap();
    assert_eq!(res.status(), 201);
    let u: Value = res.json().await.unwrap();
    assert!(u["user_id"].as_str().unwrap().starts_with("auth0|"));
    assert_eq!(u["email"], "new@example.com");
    assert!(sb.auth0().check_password("new@example.com", "Passw0rd!"));
    assert_eq!(
        login(&sb, "new@example.com", "Passw0rd!").await.status(),
        200
    );

    let dup = post(body).await.unwrap();
    assert_eq!(dup.status(), 409);
    assert_eq!(
        dup.json::<Value>().await.unwrap()["message"],
        "User already exists."
    );

    let disabled = post(json!({"connection":"Disabled-DB","email":"d@example.com","password":"x"}))
        .await
        .unwrap();
    assert_eq!(disabled.status(), 400);
    assert_eq!(
        disabled.json::<Value>().await.unwrap()["message"],
        "Connection must be enabled for this client to perform single user creation and signup operations (client_id: sandbox-client - connection: Disabled-DB)"
    );
    let no_conn = post(json!({"email":"d@example.com","password":"x"}))
        .await
        .unwrap();
    assert_eq!(no_conn.status(), 400);
}

#[tokio::test]
async fn tickets_and_user_lookups() {
    let sb = start().await;
    let t = token(&sb).await;
    let base = sb.base_url();
    let users = json!([{"email":"Case@Example.com","user_id":"tk1"}]);
    let id = import(&sb, &t, &users, false).await;
    wait_job(&sb, &t, &id).await;

    let ticket = |body: Value| {
        client()
            .post(format!("{base}/api/v2/tickets/password-change"))
            .bearer_auth(&t)
            .json(&body)
            .send()
    };
    let res = ticket(json!({"user_id":"auth0|tk1","ttl_sec":3600}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let url = res.json::<Value>().await.unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with(&base));
    let cid = conn_id(&sb, "Username-Password-Authentication");
    let res = ticket(json!({"connection_id":cid,"email":"Case@Example.com"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let tickets = sb.auth0().tickets();
    assert_eq!(tickets.len(), 2);
    assert_eq!(tickets[0].ttl_sec, 3600);
    assert_eq!(tickets[1].ttl_sec, 432_000);
    let missing = ticket(json!({"user_id":"auth0|nobody"})).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["message"],
        "User not found."
    );

    let by_email = |e: &str| {
        client()
            .get(format!("{base}/api/v2/users-by-email"))
            .query(&[("email", e)])
            .bearer_auth(&t)
            .send()
    };
    // Auth0 saves e-mails lower-cased and users-by-email is case-sensitive.
    let exact: Value = by_email("case@example.com")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(exact.as_array().unwrap().len(), 1);
    let upper: Value = by_email("Case@Example.com")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(upper, json!([]), "case-sensitive");

    let found: Value = client()
        .get(format!("{base}/api/v2/users"))
        .query(&[("q", "email:\"Case@Example.com\""), ("per_page", "10")])
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found[0]["user_id"], "auth0|tk1");
    let too_deep = client()
        .get(format!("{base}/api/v2/users?per_page=100&page=10"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(too_deep.status(), 400);
    let big_page = client()
        .get(format!("{base}/api/v2/users?per_page=101"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(big_page.status(), 400);

    let one = client()
        .get(format!("{base}/api/v2/users/auth0%7Ctk1"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let del = client()
        .delete(format!("{base}/api/v2/users/auth0%7Ctk1"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let gone = client()
        .get(format!("{base}/api/v2/users/auth0%7Ctk1"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert!(sb.auth0().users().is_empty());
}

#[tokio::test]
async fn custom_password_hash_users_log_in() {
    let sb = start().await;
    let t = token(&sb).await;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let sha = hex::encode(sha2::Sha256::digest(b"abc123hunter2"));
    let mut pbk = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"hunter2", b"saltsalt", 1000, &mut pbk);
    let mut arg = [0u8; 32];
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(64, 1, 1, Some(32)).unwrap(),
    )
    .hash_password_into(b"hunter2", b"saltsaltsaltsalt", &mut arg)
    .unwrap();
    let users = json!([
        {"email":"sha@example.com","custom_password_hash":{"algorithm":"sha256",
            "hash":{"value":sha,"encoding":"hex"},"salt":{"value":"abc123","position":"prefix"}}},
        {"email":"pbk@example.com","custom_password_hash":{"algorithm":"pbkdf2",
            "hash":{"value":format!("$pbkdf2-sha256$i=1000,l=32${}${}", b64.encode(b"saltsalt"), b64.encode(pbk)),
                    "encoding":"utf8"}}},
        {"email":"arg@example.com","custom_password_hash":{"algorithm":"argon2",
            "hash":{"value":format!("$argon2id$v=19$m=64,t=1,p=1${}${}", b64.encode(b"saltsaltsaltsalt"), b64.encode(arg))}}}
    ]);
    let id = import(&sb, &t, &users, false).await;
    let job = wait_job(&sb, &t, &id).await;
    assert_eq!(job["summary"]["inserted"], 3, "{job}");
    for email in ["sha@example.com", "pbk@example.com", "arg@example.com"] {
        assert_eq!(login(&sb, email, "hunter2").await.status(), 200, "{email}");
        assert_eq!(login(&sb, email, "hunter3").await.status(), 403, "{email}");
    }
}

#[tokio::test]
async fn rate_limit_headers_and_429_after_burst() {
    let sb = start_with(
        FaultConfig {
            rate_limit: Some(RateLimit {
                burst: 3,
                per_second: 0.01,
            }),
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let t = token(&sb).await; // consumes one token
    let mut remaining = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = client()
            .get(format!("{}/api/v2/connections", sb.base_url()))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        let h = res.headers();
        assert_eq!(h["x-ratelimit-limit"], "3");
        let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!(reset > 1_600_000_000);
        remaining.push(h["x-ratelimit-remaining"].to_str().unwrap().to_owned());
        if res.status() == 429 {
            assert_eq!(
                res.json::<Value>().await.unwrap(),
                err_body(
                    429,
                    "Too Many Requests",
                    "Global limit has been reached",
                    "too_many_requests"
                )
            );
        }
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    assert_eq!(remaining, vec!["1", "0", "0"]);
    assert_eq!(sb.faults().rate_limited(), 1);
    // Faults never touch sandbox helper routes.
    let helper = client()
        .get(format!("{}/_sandbox/auth0/password-hashes", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(helper.status(), 200);
}

/// Status of each of `n` requests; a transport error is reported as 0.
async fn status_sequence(seed: u64, n: usize) -> (Vec<u16>, u64) {
    let sb = start_with(
        FaultConfig {
            seed,
            error_rate: 0.3,
            drop_rate: 0.2,
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let mut out = Vec::new();
    for _ in 0..n {
        // A fresh client per request so a dropped connection cannot affect the next one.
        let res = client()
            .get(format!("{}/api/v2/connections", sb.base_url()))
            .send()
            .await;
        out.push(match res {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.bytes().await {
                    Ok(_) => status,
                    Err(_) => 0,
                }
            }
            Err(_) => 0,
        });
    }
    (out, sb.faults().injected())
}

#[tokio::test]
async fn error_and_drop_rates_are_deterministic_per_seed() {
    let (a, injected) = status_sequence(42, 40).await;
    let (b, _) = status_sequence(42, 40).await;
    let (c, _) = status_sequence(43, 40).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.contains(&0), "some connections dropped: {a:?}");
    assert!(a.contains(&500), "some 500s: {a:?}");
    assert!(a.contains(&401), "the rest reach the handler: {a:?}");
    let faults = a.iter().filter(|s| **s == 0 || **s == 500).count() as u64;
    assert_eq!(injected, faults);
}

#[tokio::test]
async fn dropped_connection_is_a_transport_error_and_500_body() {
    let sb = start_with(
        FaultConfig {
            drop_rate: 1.0,
            max_faults: Some(1),
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let res = client()
        .get(format!("{}/api/v2/connections", sb.base_url()))
        .send()
        .await;
    let err = match res {
        Err(e) => e,
        Ok(r) => r.bytes().await.expect_err("body must fail"),
    };
    assert!(!err.is_status());
    // The storm is over after max_faults: the next request is served.
    let res = client()
        .get(format!("{}/api/v2/connections", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    sb.faults().set(FaultConfig {
        error_rate: 1.0,
        ..FaultConfig::default()
    });
    let res = client()
        .get(format!("{}/api/v2/connections", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        err_body(
            500,
            "Internal Server Error",
            "Internal error.",
            "internal_error"
        )
    );
    assert_eq!(sb.faults().injected(), 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn env_vars_point_at_the_sandbox() {
    let sb = start().await;
    let vars = sb.env_vars();
    let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("AUTH0_DOMAIN"), Some(sb.base_url()));
    assert_eq!(get("AUTH0_CLIENT_ID").as_deref(), Some("sandbox-client"));
    assert_eq!(
        get("AUTH0_CLIENT_SECRET").as_deref(),
        Some("sandbox-secret")
    );
    assert_eq!(get("AUTHGEAR_ENDPOINT"), Some(sb.base_url()));
    assert_eq!(
        get("AUTHGEAR_PROJECT_ID").as_deref(),
        Some(sb.authgear().project_id())
    );
    assert_eq!(
        get("AUTHGEAR_KEY_ID").as_deref(),
        Some(sb.authgear().key_id())
    );
    assert!(get("AUTHGEAR_PRIVATE_KEY_FILE").is_none());
    let addr = sb.addr();
    drop(sb);
    // Dropping stops the server.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn dropped_connection_fails_at_send() {
    let sb = start_with(
        FaultConfig {
            drop_rate: 1.0,
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let res = client()
        .post(format!("{}/oauth/token", sb.base_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await;
    let err = res.expect_err("no response head reaches the client");
    // hyper reports the connection closed before a response head arrived.
    assert!(err.is_request(), "{err:?}");
    assert!(err.source().is_some());
    assert_eq!(sb.faults().injected(), 1);
}
