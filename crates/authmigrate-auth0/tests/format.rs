//! Mapping tests for the Auth0 formats.

use authmigrate_auth0::format::{
    Auth0MapOptions, from_bulk_user, from_export_user, from_password_export, to_bulk_user,
};
use authmigrate_core::record::{
    Address, Encoding, HashAlgorithm, MfaFactor, PasswordHash, Salt, UserRecord,
};
use authmigrate_core::secret::Secret;
use serde_json::{Map, Value, json};

const HELLO: &str = "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K";

fn user_01() -> UserRecord {
    UserRecord {
        email: Some("user_01@example.com".into()),
        email_verified: Some(true),
        username: Some("user_01".into()),
        name: Some("user_01@example.com".into()),
        nickname: Some("user_01".into()),
        password: Some(PasswordHash::bcrypt(HELLO)),
        ..Default::default()
    }
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

fn lines(path: &str) -> Vec<Map<String, Value>> {
    let p = format!("{}/../../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p)
        .expect("fixture")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn generate_case_is_exact() {
    let m = to_bulk_user(&user_01(), &Auth0MapOptions::default()).unwrap();
    assert_eq!(
        serde_json::to_string(&m.json).unwrap(),
        format!(
            r#"{{"email":"user_01@example.com","email_verified":true,"username":"user_01","name":"user_01@example.com","nickname":"user_01","password_hash":"{HELLO}"}}"#
        )
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert!(!format!("{m:?}").contains("nFguVi9L"));
}

#[test]
fn full_field_order_is_fixed() {
    let mut r = user_01();
    r.phone_number = Some("+12125550001".into());
    r.phone_verified = Some(false);
    r.source_id = Some("auth0|abc123".into());
    r.given_name = Some("Ada".into());
    r.family_name = Some("Lovelace".into());
    r.picture = Some("https://example.com/a.png".into());
    r.blocked = Some(true);
    r.app_metadata = Some(obj(json!({"plan": "pro"})));
    r.user_metadata = Some(obj(json!({"theme": "dark"})));
    r.mfa = vec![MfaFactor::Totp {
        secret: Secret::new("JBSWY3DPEHPK3PXP"),
    }];
    let m = to_bulk_user(&r, &Auth0MapOptions::default()).unwrap();
    let keys: Vec<&str> = m
        .json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "email",
            "email_verified",
            "username",
            "name",
            "nickname",
            "password_hash",
            "phone_number",
            "phone_verified",
            "user_id",
            "given_name",
            "family_name",
            "picture",
            "blocked",
            "app_metadata",
            "user_metadata",
            "mfa_factors"
        ]
    );
    assert_eq!(m.json["user_id"], "abc123", "auth0| prefix stripped");
    assert_eq!(
        m.json["mfa_factors"],
        json!([{"totp": {"secret": "JBSWY3DPEHPK3PXP"}}])
    );
}

#[test]
fn hash_selection_plain_vs_custom() {
    let opts = Auth0MapOptions::default();
    let with = |h: PasswordHash| {
        let mut r = user_01();
        r.password = Some(h);
        to_bulk_user(&r, &opts).unwrap().json
    };
    // $2a$ at cost 10 → password_hash.
    let a = with(PasswordHash::bcrypt(HELLO.replace("$2b$", "$2a$")));
    assert!(a.get("password_hash").is_some() && a.get("custom_password_hash").is_none());
    // $2y$ → custom_password_hash.
    let y = with(PasswordHash::bcrypt(HELLO.replace("$2b$", "$2y$")));
    assert!(y.get("password_hash").is_none());
    assert_eq!(y["custom_password_hash"]["algorithm"], "bcrypt");
    assert_eq!(
        y["custom_password_hash"]["hash"]["value"],
        HELLO.replace("$2b$", "$2y$")
    );
    // Other cost → custom.
    let c12 = with(PasswordHash::bcrypt(HELLO.replace("$10$", "$12$")));
    assert!(c12.get("password_hash").is_none() && c12.get("custom_password_hash").is_some());
    // Salted bcrypt → custom, with the salt.
    let mut salted = PasswordHash::bcrypt(HELLO);
    salted.salt = Some(Salt {
        value: Secret::new("pepper"),
        encoding: None,
        position: None,
    });
    let s = with(salted);
    assert!(s.get("password_hash").is_none());
    assert_eq!(s["custom_password_hash"]["salt"]["value"], "pepper");
    // sha256 → custom, exact shape, after `blocked`'s slot.
    let mut sha = PasswordHash::bcrypt("d24e794f");
    sha.algorithm = HashAlgorithm::Sha256;
    sha.hash.encoding = Some(Encoding::Hex);
    let j = with(sha);
    assert_eq!(
        j["custom_password_hash"],
        json!({"algorithm": "sha256", "hash": {"value": "d24e794f", "encoding": "hex"}})
    );
    let keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.last(), Some(&"custom_password_hash"));
}

#[test]
fn malformed_hash_fails_without_echoing_it() {
    let mut r = user_01();
    let mut bad = PasswordHash::bcrypt("d24e794fSECRETVALUE");
    bad.algorithm = HashAlgorithm::Sha256; // missing encoding
    r.password = Some(bad);
    let f = to_bulk_user(&r, &Auth0MapOptions::default()).unwrap_err();
    assert_eq!(f.code, "INVALID_RECORD");
    assert!(
        f.message
            .starts_with("`custom_password_hash.hash.encoding`"),
        "{}",
        f.message
    );
    assert!(!f.message.contains("SECRETVALUE"));
}

#[test]
fn dropped_fields_warn_once_each() {
    let mut r = user_01();
    r.middle_name = Some("B".into());
    r.locale = Some("en".into());
    r.address = Some(Address {
        country: Some("FR".into()),
        ..Default::default()
    });
    r.roles = vec!["admin".into()];
    r.source_id = Some("google-oauth2|123".into());
    r.unmapped.insert("logins_count".into(), json!(4));
    r.nickname = Some(String::new());
    let m = to_bulk_user(&r, &Auth0MapOptions::default()).unwrap();
    assert_eq!(
        m.warnings,
        [
            "`nickname` is empty: left out",
            "`source_id` is not sent: Auth0 assigns its own id to users that were not `auth0|` users",
            "`middle_name` cannot be imported into Auth0: left out",
            "`locale` cannot be imported into Auth0: left out",
            "`address` cannot be imported into Auth0: left out",
            "`roles` cannot be imported into Auth0: left out",
            "`logins_count` cannot be imported into Auth0: left out",
        ]
    );
    let o = m.json.as_object().unwrap();
    assert!(
        !o.contains_key("nickname")
            && !o.contains_key("user_id")
            && !o.contains_key("user_metadata")
    );

    let kept = to_bulk_user(
        &r,
        &Auth0MapOptions {
            keep_unmapped_in_metadata: true,
        },
    )
    .unwrap();
    assert_eq!(kept.json["user_metadata"]["middle_name"], "B");
    assert_eq!(kept.json["user_metadata"]["logins_count"], 4);
    assert!(
        kept.warnings.contains(
            &"`middle_name` cannot be imported into Auth0: kept in `user_metadata.middle_name`"
                .to_owned()
        )
    );
}

#[test]
fn missing_email_and_forbidden_metadata_fail() {
    let mut r = user_01();
    r.email = None;
    let f = to_bulk_user(&r, &Auth0MapOptions::default()).unwrap_err();
    assert_eq!(f.code, "MISSING_EMAIL");
    let mut r = user_01();
    r.app_metadata = Some(obj(json!({"ok": 1, "loginsCount": 3})));
    let f = to_bulk_user(&r, &Auth0MapOptions::default()).unwrap_err();
    assert_eq!(f.code, "INVALID_RECORD");
    assert!(
        f.message.contains("`app_metadata.loginsCount`"),
        "{}",
        f.message
    );
}

#[test]
fn bulk_user_round_trips() {
    let mut r = user_01();
    r.source_id = Some("auth0|abc".into());
    r.blocked = Some(false);
    r.mfa = vec![MfaFactor::Email {
        value: "a@b.co".into(),
    }];
    let m = to_bulk_user(&r, &Auth0MapOptions::default()).unwrap();
    let back = from_bulk_user(m.json.as_object().unwrap().clone()).unwrap();
    assert_eq!(back, r);
    // custom_password_hash read back via serde.
    let back = from_bulk_user(obj(json!({
        "email": "a@b.co", "user_id": "xyz",
        "custom_password_hash": {"algorithm": "md5", "hash": {"value": "abcd", "encoding": "hex"}}
    })))
    .unwrap();
    assert_eq!(back.source_id.as_deref(), Some("auth0|xyz"));
    assert_eq!(back.password.unwrap().algorithm, HashAlgorithm::Md5);
    let err = from_bulk_user(obj(json!({"email": "a@b.co", "email_verified": "yes"}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field `email_verified`: must be a boolean, got a string"
    );
}

#[test]
fn export_sample_lines() {
    let users = lines("auth0-export.ndjson");
    let recs: Vec<UserRecord> = users
        .into_iter()
        .map(|u| from_export_user(u).unwrap())
        .collect();
    assert!(recs.len() >= 3);
    let ada = &recs[0];
    assert_eq!(
        ada.source_id.as_deref(),
        Some("auth0|5f7c8ec7c33c6c004bbafe82")
    );
    assert_eq!(ada.email.as_deref(), Some("ada@example.com"));
    assert_eq!(ada.email_verified, Some(true));
    assert_eq!(ada.user_metadata.as_ref().unwrap()["plan"], "pro");
    assert!(
        !ada.unmapped.contains_key("identities"),
        "a single auth0 identity is not kept"
    );
    assert!(ada.unmapped.contains_key("created_at") && ada.unmapped.contains_key("logins_count"));
    assert!(ada.password.is_none());
    let social = recs
        .iter()
        .find(|r| {
            r.source_id
                .as_deref()
                .is_some_and(|s| s.starts_with("google-oauth2|"))
        })
        .unwrap();
    assert!(social.unmapped.contains_key("identities"));
    let blocked = recs.iter().find(|r| r.blocked == Some(true)).unwrap();
    assert!(blocked.email.is_some());
}

#[test]
fn password_export_lines() {
    let entries: Vec<_> = lines("auth0-password-hashes.ndjson")
        .into_iter()
        .map(|l| from_password_export(l).unwrap())
        .collect();
    assert_eq!(entries[0].user_id, "auth0|5f7c8ec7c33c6c004bbafe82");
    assert_eq!(entries[0].email.as_deref(), Some("ada@example.com"));
    assert!(entries[0].hash.expose().starts_with("$2b$10$"));
    // alt_id wins; email from identifiers.
    let alt = entries
        .iter()
        .find(|e| e.user_id == "auth0|euclid")
        .unwrap();
    assert_eq!(alt.email.as_deref(), Some("euclid@example.com"));
    assert!(!format!("{alt:?}").contains("$2b$"));
    let err = from_password_export(obj(json!({"_id": {"$oid": "x"}}))).unwrap_err();
    assert_eq!(err.field, "passwordHash");
}
