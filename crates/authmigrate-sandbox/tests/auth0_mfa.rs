//! The MFA-secrets export and TOTP logins (issue 13), over plain HTTP.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use authmigrate_sandbox::Sandbox;
use common::*;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

// "Hello!" followed by 0xDEADBEEF, base32.
const SECRET: &str = "JBSWY3DPEHPK3PXP";
const KEY: &[u8] = b"Hello!\xde\xad\xbe\xef";

/// RFC 6238 with HMAC-SHA1, 30 s steps and 6 digits, written here independently of the
/// emulator.
fn totp(key: &[u8], unix: u64) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(&(unix / 30).to_be_bytes());
    let d = mac.finalize().into_bytes();
    let o = (d[19] & 0xf) as usize;
    let n = u32::from_be_bytes([d[o] & 0x7f, d[o + 1], d[o + 2], d[o + 3]]);
    format!("{:06}", n % 1_000_000)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn grant(sb: &Sandbox, body: Value) -> (u16, Value) {
    let res = client()
        .post(format!("{}/oauth/token", sb.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn otp(sb: &Sandbox, mfa_token: &str, code: &str) -> (u16, Value) {
    grant(
        sb,
        json!({"grant_type":"http://auth0.com/oauth/grant-type/mfa-otp","client_id":"sandbox-client",
               "mfa_token": mfa_token, "otp": code}),
    )
    .await
}

async fn enrolled() -> (Sandbox, String) {
    let sb = start().await;
    let t = token(&sb).await;
    let users = json!([
        {"email":"totp@example.com","user_id":"t1","password_hash": bcrypt4("pw"),
         "mfa_factors":[{"totp":{"secret": SECRET}}]},
        {"email":"phone@example.com","user_id":"p1","password_hash": bcrypt4("pw"),
         "mfa_factors":[{"phone":{"value":"+15551234567"}}]},
        {"email":"plain@example.com","user_id":"n1","password_hash": bcrypt4("pw")}
    ]);
    let id = import(&sb, &t, &users, false).await;
    wait_job(&sb, &t, &id).await;
    (sb, t)
}

#[tokio::test]
async fn mfa_secrets_export_rows() {
    let (sb, _t) = enrolled().await;
    assert!(
        sb.auth0()
            .seed_recovery_code("auth0|t1", "ABCD1234EFGH5678")
    );
    assert!(!sb.auth0().seed_recovery_code("auth0|ghost", "x"));
    let res = client()
        .get(format!("{}/_sandbox/auth0/mfa-secrets", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = res.text().await.unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(
        rows[0],
        json!({"user_id":"auth0|t1","tenant":"sandbox","type":"otp","otp_secret": SECRET})
    );
    assert_eq!(rows[1]["user_id"], "auth0|t1");
    assert_eq!(rows[1]["type"], "recovery-code");
    let hash = rows[1]["recovery_code"].as_str().unwrap();
    assert!(bcrypt::verify("ABCD1234EFGH5678", hash).unwrap());
    let none = client()
        .get(format!(
            "{}/_sandbox/auth0/mfa-secrets?connection=Disabled-DB",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(none, "");
}

#[tokio::test]
async fn totp_user_logs_in_with_password_and_code() {
    let (sb, t) = enrolled().await;
    let (s, challenge) = grant(
        &sb,
        json!({"grant_type":"http://auth0.com/oauth/grant-type/password-realm","client_id":"sandbox-client",
               "username":"totp@example.com","password":"pw","realm":"Username-Password-Authentication"}),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(challenge["error"], "mfa_required");
    let mfa_token = challenge["mfa_token"].as_str().unwrap().to_owned();
    // A wrong password never reaches the challenge.
    assert_eq!(login(&sb, "totp@example.com", "nope").await.status(), 403);
    let profile = |sb: &Sandbox| sb.auth0().user_by_email("totp@example.com").unwrap();
    assert_eq!(
        profile(&sb)["logins_count"],
        0,
        "not logged in before the code"
    );

    let right = totp(KEY, now());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (s, body) = otp(&sb, &mfa_token, wrong).await;
    assert_eq!(s, 403);
    assert_eq!(body["error"], "invalid_grant");
    let (s, body) = otp(&sb, &mfa_token, &right).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].as_str().is_some_and(|a| !a.is_empty()));
    assert_eq!(profile(&sb)["logins_count"], 1);
    // The challenge is spent.
    assert_eq!(otp(&sb, &mfa_token, &right).await.0, 403);

    // Users without TOTP log in with the password alone.
    assert_eq!(login(&sb, "plain@example.com", "pw").await.status(), 200);
    assert_eq!(login(&sb, "phone@example.com", "pw").await.status(), 200);

    // A challenge expires, on the emulator's clock.
    let (_, challenge) = grant(
        &sb,
        json!({"grant_type":"http://auth0.com/oauth/grant-type/password-realm","client_id":"sandbox-client",
               "username":"totp@example.com","password":"pw","realm":"Username-Password-Authentication"}),
    )
    .await;
    sb.auth0()
        .advance_clock(std::time::Duration::from_secs(3600));
    let later = totp(KEY, now() + 3600);
    let (s, body) = otp(&sb, challenge["mfa_token"].as_str().unwrap(), &later).await;
    assert_eq!(s, 403);
    assert_eq!(body["error"], "expired_token");
    let _ = t;
}
