//! Shared helpers for the Auth0 emulator tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig, auth0::Auth0Config};
use serde_json::Value;

/// A sandbox with fast jobs and cheap bcrypt.
pub async fn start() -> Sandbox {
    start_with(FaultConfig::default(), Auth0Config::default()).await
}

pub async fn start_with(mut faults: FaultConfig, mut auth0: Auth0Config) -> Sandbox {
    if faults.job_latency.is_zero() {
        faults.job_latency = Duration::from_millis(20);
    }
    auth0.bcrypt_cost = 4;
    Sandbox::start(SandboxConfig {
        faults,
        auth0,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// A plain-HTTP client (no root certificates to load: the sandbox is http://).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .expect("reqwest client")
}

pub async fn token(sb: &Sandbox) -> String {
    let res = client()
        .post(format!("{}/oauth/token", sb.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
            ("audience", &format!("{}/api/v2/", sb.base_url())),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("token json");
    v["access_token"].as_str().expect("access_token").to_owned()
}

pub fn conn_id(sb: &Sandbox, name: &str) -> String {
    sb.auth0().connection_id(name).expect("connection exists")
}

/// Posts a users-imports multipart with the given users bytes and extra text fields.
pub async fn import_raw(
    sb: &Sandbox,
    token: &str,
    users: Option<Vec<u8>>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    if let Some(users) = users {
        let part = reqwest::multipart::Part::bytes(users)
            .file_name("users.json")
            .mime_str("application/json")
            .expect("mime");
        form = form.part("users", part);
    }
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    client()
        .post(format!("{}/api/v2/jobs/users-imports", sb.base_url()))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("import request")
}

/// Imports into Username-Password-Authentication; returns the job id.
pub async fn import(sb: &Sandbox, token: &str, users: &Value, upsert: bool) -> String {
    let cid = conn_id(sb, "Username-Password-Authentication");
    let res = import_raw(
        sb,
        token,
        Some(serde_json::to_vec(users).expect("json")),
        &[
            ("connection_id", &cid),
            ("upsert", if upsert { "true" } else { "false" }),
            ("send_completion_email", "false"),
        ],
    )
    .await;
    assert_eq!(res.status(), 202);
    let v: Value = res.json().await.expect("job json");
    v["id"].as_str().expect("job id").to_owned()
}

pub async fn get_job(sb: &Sandbox, token: &str, id: &str) -> Value {
    client()
        .get(format!("{}/api/v2/jobs/{id}", sb.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("job request")
        .json()
        .await
        .expect("job json")
}

/// Polls until the job is completed or failed.
pub async fn wait_job(sb: &Sandbox, token: &str, id: &str) -> Value {
    for _ in 0..500 {
        let job = get_job(sb, token, id).await;
        let status = job["status"].as_str().unwrap_or_default();
        if status == "completed" || status == "failed" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} never finished");
}

pub fn bcrypt4(pw: &str) -> String {
    bcrypt::hash(pw, 4).expect("bcrypt")
}

pub async fn login(sb: &Sandbox, email: &str, password: &str) -> reqwest::Response {
    client()
        .post(format!("{}/oauth/token", sb.base_url()))
        .json(&serde_json::json!({
            "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
            "username": email,
            "password": password,
            "realm": "Username-Password-Authentication",
            "client_id": "sandbox-client",
        }))
        .send()
        .await
        .expect("login request")
}
