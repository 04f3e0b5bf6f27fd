//! Mapping tests for the Authgear formats.

use authmigrate_authgear::format::{
    AuthgearMapOptions, Identifier, body_envelope, from_export_record, from_import_record,
    to_import_record,
};
use authmigrate_core::record::{
    Encoding, HashAlgorithm, MfaFactor, PasswordHash, Salt, UserRecord,
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

fn opts() -> AuthgearMapOptions {
    AuthgearMapOptions::default()
}

#[test]
fn generate_case_is_exact() {
    let m = to_import_record(&user_01(), &opts()).unwrap();
    assert_eq!(
        serde_json::to_string(&m.json).unwrap(),
        format!(
            r#"{{"email":"user_01@example.com","email_verified":true,"preferred_username":"user_01","name":"user_01@example.com","nickname":"user_01","password":{{"type":"bcrypt","password_hash":"{HELLO}"}}}}"#
        )
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert!(!format!("{m:?}").contains("nFguVi9L"));
}

#[test]
fn envelope_wraps_records_into_the_documented_body() {
    let (prefix, suffix) = body_envelope(Identifier::Email, false);
    assert_eq!(prefix, r#"{"identifier":"email","upsert":false,"records":"#);
    assert_eq!(suffix, "}");
    let rec = serde_json::to_string(&to_import_record(&user_01(), &opts()).unwrap().json).unwrap();
    let body = format!("{prefix}[{rec},{rec}]{suffix}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["identifier"], "email");
    assert_eq!(v["upsert"], false);
    assert_eq!(v["records"].as_array().unwrap().len(), 2);
    let (p, _) = body_envelope(Identifier::PreferredUsername, true);
    assert_eq!(
        p,
        r#"{"identifier":"preferred_username","upsert":true,"records":"#
    );
}

#[test]
fn identifier_parses_and_prints() {
    for i in Identifier::ALL {
        assert_eq!(i.as_str().parse::<Identifier>().unwrap(), i);
        assert_eq!(serde_json::to_value(i).unwrap(), json!(i.as_str()));
    }
    assert!(
        "phone"
            .parse::<Identifier>()
            .unwrap_err()
            .contains("`phone`")
    );
}

#[test]
fn only_bcrypt_is_accepted() {
    for v in ["$2a$", "$2b$", "$2y$"] {
        let mut r = user_01();
        r.password = Some(PasswordHash::bcrypt(
            HELLO.replace("$2b$", v).replace("$10$", "$04$"),
        ));
        let m = to_import_record(&r, &opts()).unwrap();
        assert_eq!(m.json["password"]["type"], "bcrypt");
    }
    let mut r = user_01();
    let mut sha = PasswordHash::bcrypt("d24e794f");
    sha.algorithm = HashAlgorithm::Sha256;
    sha.hash.encoding = Some(Encoding::Hex);
    r.password = Some(sha);
    let f = to_import_record(&r, &opts()).unwrap_err();
    assert_eq!(f.code, "UNSUPPORTED_HASH");
    assert_eq!(
        f.message,
        "`password`: Authgear imports bcrypt only; `sha256` hashes cannot be imported"
    );
    let mut salted = PasswordHash::bcrypt(HELLO);
    salted.salt = Some(Salt {
        value: Secret::new("pepper"),
        encoding: None,
        position: None,
    });
    r.password = Some(salted);
    assert_eq!(
        to_import_record(&r, &opts()).unwrap_err().code,
        "UNSUPPORTED_HASH"
    );
    r.password = Some(PasswordHash::bcrypt(HELLO.replace("$10$", "$03$")));
    let f = to_import_record(&r, &opts()).unwrap_err();
    assert_eq!(f.code, "INVALID_RECORD");
    assert!(
        f.message.contains("cost 3 is outside 4..31") && !f.message.contains("nFguVi9L"),
        "{}",
        f.message
    );
}

#[test]
fn identifier_field_is_required() {
    let mut r = user_01();
    r.phone_number = None;
    let f = to_import_record(
        &r,
        &AuthgearMapOptions {
            identifier: Identifier::PhoneNumber,
            ..opts()
        },
    )
    .unwrap_err();
    assert_eq!(f.code, "MISSING_IDENTIFIER");
    assert!(f.message.starts_with("`phone_number`"), "{}", f.message);
    r.email = None;
    assert_eq!(
        to_import_record(&r, &opts()).unwrap_err().code,
        "MISSING_IDENTIFIER"
    );
    let ok = to_import_record(
        &r,
        &AuthgearMapOptions {
            identifier: Identifier::PreferredUsername,
            ..opts()
        },
    )
    .unwrap();
    assert!(ok.json.get("email").is_none() && ok.json.get("email_verified").is_none());
}

#[test]
fn login_ids_are_lower_cased_and_blocked_becomes_disabled() {
    let mut r = user_01();
    r.email = Some("Ada.Lovelace@Example.COM".into());
    r.username = Some("Ada".into());
    r.blocked = Some(true);
    let m = to_import_record(&r, &opts()).unwrap();
    assert_eq!(m.json["email"], "ada.lovelace@example.com");
    assert_eq!(m.json["preferred_username"], "ada");
    assert_eq!(m.json["disabled"], true);
    assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
    assert!(m.warnings[0].starts_with("`email` lower-cased"));
    r.blocked = Some(false);
    assert!(
        to_import_record(&r, &opts())
            .unwrap()
            .json
            .get("disabled")
            .is_none()
    );
}

#[test]
fn full_order_metadata_mfa_and_warnings() {
    let mut r = user_01();
    r.phone_number = Some("+85298765432".into());
    r.phone_verified = Some(true);
    r.middle_name = Some(String::new());
    r.locale = Some("en".into());
    r.roles = vec!["admin".into()];
    r.blocked = Some(true);
    r.source_id = Some("auth0|abc".into());
    r.user_metadata = Some(obj(json!({"plan": "pro", "theme": "dark"})));
    r.app_metadata = Some(obj(json!({"tier": {"name": "gold"}})));
    r.custom_attributes = Some(obj(json!({"x": 1})));
    r.unmapped.insert("logins_count".into(), json!(3));
    r.mfa = vec![
        MfaFactor::Totp {
            secret: Secret::new("JBSWY3DPEHPK3PXP"),
        },
        MfaFactor::Totp {
            secret: Secret::new("KRSXG5CTMVRXEZLU"),
        },
        MfaFactor::Email {
            value: "mfa@example.com".into(),
        },
    ];
    let o = AuthgearMapOptions {
        identifier: Identifier::Email,
        custom_attributes: vec![
            ("user_metadata.plan".into(), "plan".into()),
            ("app_metadata.tier.name".into(), "tier".into()),
        ],
        ..Default::default()
    };
    let m = to_import_record(&r, &o).unwrap();
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
            "preferred_username",
            "name",
            "nickname",
            "password",
            "phone_number",
            "phone_number_verified",
            "locale",
            "custom_attributes",
            "roles",
            "disabled",
            "mfa"
        ]
    );
    assert_eq!(
        m.json["custom_attributes"],
        json!({"x": 1, "plan": "pro", "tier": "gold"})
    );
    assert_eq!(
        m.json["mfa"],
        json!({"totp": {"secret": "JBSWY3DPEHPK3PXP"}, "email": "mfa@example.com"})
    );
    assert_eq!(
        m.warnings,
        [
            "`middle_name` is empty: left out (Authgear rejects empty strings)",
            "`user_metadata.theme` not imported: no declared custom attribute (use --custom-attribute user_metadata.theme=NAME)",
            "`mfa`: Authgear imports one totp factor per user; 1 more left out",
            "`source_id` is not sent: Authgear assigns new ids (--id-map records the mapping)",
            "`logins_count` cannot be imported into Authgear: left out",
        ]
    );
}

#[test]
fn import_record_round_trips() {
    let mut r = user_01();
    r.phone_number = Some("+85298765432".into());
    r.phone_verified = Some(false);
    r.blocked = Some(true);
    r.mfa = vec![MfaFactor::Totp {
        secret: Secret::new("JBSWY3DPEHPK3PXP"),
    }];
    let m = to_import_record(&r, &opts()).unwrap();
    let back = from_import_record(m.json.as_object().unwrap().clone()).unwrap();
    assert_eq!(back, r);
    let err = from_import_record(obj(
        json!({"email": "a@b.co", "password": {"type": "argon2", "password_hash": "x"}}),
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "field `password.type`: must be `bcrypt`, got `argon2`"
    );
}

#[test]
fn export_sample_lines() {
    let p = format!(
        "{}/../../fixtures/authgear-export.ndjson",
        env!("CARGO_MANIFEST_DIR")
    );
    let recs: Vec<UserRecord> = std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| from_export_record(serde_json::from_str(l).unwrap()).unwrap())
        .collect();
    assert!(recs.len() >= 3);
    let a = &recs[0];
    assert_eq!(
        a.source_id.as_deref(),
        Some("0b0a6d1e-6d5a-4c4c-9a51-3f4c1b3b6f01")
    );
    assert_eq!(a.email.as_deref(), Some("ada@example.com"));
    assert_eq!(a.username.as_deref(), Some("ada"));
    assert_eq!(
        a.mfa,
        [MfaFactor::Totp {
            secret: Secret::new("JBSWY3DPEHPK3PXP")
        }]
    );
    assert_eq!(a.custom_attributes.as_ref().unwrap()["plan"], "pro");
    assert!(a.password.is_none() && a.blocked.is_none() && a.address.is_none());
    assert!(a.unmapped.contains_key("created_at") && a.unmapped.contains_key("last_login_at"));
    assert!(!a.unmapped.contains_key("identities") && !a.unmapped.contains_key("is_anonymized"));
    let social = recs
        .iter()
        .find(|r| r.unmapped.contains_key("identities"))
        .unwrap();
    assert_eq!(social.unmapped["identities"][0]["type"], "oauth");
    let blocked = recs.iter().find(|r| r.blocked == Some(true)).unwrap();
    assert_eq!(blocked.phone_number.as_deref(), Some("+85298765432"));
}

#[test]
fn an_exact_empty_membership_list_is_sent_and_an_unknown_one_left_out() {
    // Authgear's upsert sets `roles` / `groups` exactly and leaves them when absent:
    // a user who lost their last role needs `"roles": []`.
    let mut u = user_01();
    let m = to_import_record(&u, &opts()).unwrap();
    assert!(m.json.get("roles").is_none() && m.json.get("groups").is_none());
    u.roles_exact = true;
    let m = to_import_record(&u, &opts()).unwrap();
    assert_eq!(m.json["roles"], json!([]));
    assert!(m.json.get("groups").is_none(), "groups were not read");
    u.groups_exact = true;
    u.groups = vec!["acme".into()];
    let m = to_import_record(&u, &opts()).unwrap();
    assert_eq!(m.json["groups"], json!(["acme"]));
    let e = authmigrate_authgear::format::encode_import_record(&u, &opts()).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&e.json).unwrap(), m.json);
}
