//! The Authgear Admin API emulator, driven over HTTP with reqwest.

use std::sync::OnceLock;
use std::time::Duration;

use authmigrate_sandbox::authgear::AuthgearConfig;
use authmigrate_sandbox::{Sandbox, SandboxConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// One RSA key for every sandbox in this file (key generation is the slow part).
fn project_key() -> String {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("rsa key");
        key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string()
    })
    .clone()
}

fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("bcrypt")
}

fn config() -> AuthgearConfig {
    AuthgearConfig {
        private_key_pem: Some(project_key()),
        custom_attributes: vec!["tier".into()],
        roles: vec!["admin".to_owned(), "editor".to_owned()],
        groups: vec!["staff".to_owned()],
        ..AuthgearConfig::default()
    }
}

async fn start(authgear: AuthgearConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        authgear,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

struct Api {
    sb: Sandbox,
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn new(authgear: AuthgearConfig) -> Self {
        let sb = start(authgear).await;
        let token = sb.authgear().mint_admin_token(Duration::from_secs(300));
        Self {
            sb,
            http: reqwest::Client::new(),
            token,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sb.base_url())
    }

    async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let (status, text) = self
            .post_raw(path, "application/json", body.to_string().into_bytes())
            .await;
        (status, serde_json::from_str(&text).expect("json body"))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.expect("json body"))
    }

    /// Polls until the job is completed (no time assertion: it only bounds the wait).
    async fn wait(&self, kind: &str, id: &str) -> Value {
        for _ in 0..2000 {
            let (status, body) = self.get(&format!("/_api/admin/users/{kind}/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["result"]["status"] == "completed" {
                return body["result"].clone();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("job {id} never completed");
    }

    async fn import(&self, body: Value) -> Value {
        let (status, resp) = self.post("/_api/admin/users/import", &body).await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        let id = resp["result"]["id"].as_str().expect("id").to_owned();
        self.wait("import", &id).await
    }

    async fn login(&self, login_id: &str, password: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url("/_sandbox/authgear/login"))
            .json(&json!({ "login_id": login_id, "password": password }))
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.expect("json body"))
    }
}

fn sign(header: Header, claims: &Value, pem: &str) -> String {
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[tokio::test]
async fn admin_jwt_rules() {
    let api = Api::new(config()).await;
    let ag = api.sb.authgear();
    assert_eq!(ag.project_id(), "sandbox");
    assert!(
        ag.private_key_pem()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        ag.public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let pem = ag.private_key_pem();
    let kid = ag.key_id().to_owned();
    let rs256 = |kid: &str| {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(kid.to_owned());
        h
    };
    let other_key = {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let k = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("rsa");
        k.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string()
    };
    let hs256 = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.clone());
        jsonwebtoken::encode(
            &h,
            &json!({"aud": "sandbox", "exp": now() + 60}),
            &EncodingKey::from_secret(b"secret"),
        )
        .expect("sign")
    };
    let good = sign(
        rs256(&kid),
        &json!({"aud": "sandbox", "iat": now() - 30, "exp": now() + 60}),
        &pem,
    );
    let aud_array = sign(rs256(&kid), &json!({"aud": ["x", "sandbox"]}), &pem);
    let cases: Vec<(String, String, bool)> = vec![
        ("good".into(), format!("Bearer {good}"), true),
        (
            "aud array, no times".into(),
            format!("Bearer {aud_array}"),
            true,
        ),
        ("minted".into(), format!("Bearer {}", api.token), true),
        (
            "wrong kid".into(),
            format!(
                "Bearer {}",
                sign(rs256("other"), &json!({"aud": "sandbox"}), &pem)
            ),
            false,
        ),
        (
            "wrong aud".into(),
            format!(
                "Bearer {}",
                sign(rs256(&kid), &json!({"aud": "other"}), &pem)
            ),
            false,
        ),
        (
            "no aud".into(),
            format!(
                "Bearer {}",
                sign(rs256(&kid), &json!({"exp": now() + 60}), &pem)
            ),
            false,
        ),
        (
            "expired beyond skew".into(),
            format!(
                "Bearer {}",
                sign(
                    rs256(&kid),
                    &json!({"aud": "sandbox", "exp": now() - 400}),
                    &pem
                )
            ),
            false,
        ),
        (
            "iat in the future beyond skew".into(),
            format!(
                "Bearer {}",
                sign(
                    rs256(&kid),
                    &json!({"aud": "sandbox", "iat": now() + 400}),
                    &pem
                )
            ),
            false,
        ),
        (
            "other key".into(),
            format!(
                "Bearer {}",
                sign(rs256(&kid), &json!({"aud": "sandbox"}), &other_key)
            ),
            false,
        ),
        ("lowercase bearer".into(), format!("bearer {good}"), false),
        ("hs256".into(), format!("Bearer {hs256}"), false),
        ("garbage".into(), "Bearer not.a.jwt".into(), false),
    ];
    for (name, auth, ok) in cases {
        let resp = api
            .http
            .get(api.url("/_api/admin/users/import/userimport_NOPE"))
            .header("authorization", auth)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        if ok {
            assert_eq!(status, StatusCode::NOT_FOUND, "{name}: {text}");
            let v: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(v["error"]["reason"], "TaskNotFound", "{name}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{name}");
            assert_eq!(text, "Forbidden\n", "{name}");
        }
    }
    // No header at all.
    let resp = api
        .http
        .post(api.url("/_api/admin/users/import"))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.text().await.expect("body"), "Forbidden\n");
}

#[tokio::test]
async fn content_type_body_limit_and_top_level_schema() {
    let api = Api::new(config()).await;
    let body = json!({"identifier": "email", "records": [{"email": "a@example.com"}]});
    for ct in ["application/json; charset=latin1", "application/json; x=y"] {
        let (status, text) = api
            .post_raw(
                "/_api/admin/users/import",
                ct,
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{ct}");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            v,
            json!({"error": {"name": "BadRequest", "reason": "BadRequest",
                "message": "request content type is invalid", "code": 400}})
        );
    }
    let (status, _) = api
        .post_raw(
            "/_api/admin/users/import",
            "application/json; charset=UTF-8",
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Exactly 500,000 bytes passes; 500,001 is too large.
    let mut exact = body.to_string().into_bytes();
    exact.resize(500_000, b' ');
    let (status, text) = api
        .post_raw(
            "/_api/admin/users/import",
            "application/json",
            exact.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    exact.push(b' ');
    let (status, text) = api
        .post_raw("/_api/admin/users/import", "application/json", exact)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        v,
        json!({"error": {"name": "RequestEntityTooLarge", "reason": "JSONTooLarge",
            "message": "request body too large", "code": 413, "info": {"limit": 500000}}})
    );

    let (status, text) = api
        .post_raw(
            "/_api/admin/users/import",
            "application/json",
            b"{\"identifier\":".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["error"]["name"], "BadRequest");
    assert_eq!(v["error"]["reason"], "InvalidJSON");

    let schema_cases = [
        (
            json!({"identifier": "email", "records": []}),
            "/records",
            "minItems",
        ),
        (
            json!({"identifier": "nickname", "records": [{}]}),
            "/identifier",
            "enum",
        ),
        (
            json!({"identifier": "email", "records": [{}], "x": 1}),
            "",
            "additionalProperties",
        ),
        (json!({"identifier": "email"}), "", "required"),
        (
            json!({"identifier": "email", "records": [{}], "upsert": "yes"}),
            "/upsert",
            "type",
        ),
        (
            json!({"identifier": "email", "records": [1]}),
            "/records/0",
            "type",
        ),
    ];
    for (body, location, kind) in schema_cases {
        let (status, v) = api.post("/_api/admin/users/import", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let err = &v["error"];
        assert_eq!(err["name"], "Invalid");
        assert_eq!(err["reason"], "ValidationFailed");
        assert_eq!(err["message"], "invalid request body");
        assert_eq!(err["code"], 400);
        let causes = err["info"]["causes"].as_array().expect("causes");
        assert!(
            causes
                .iter()
                .any(|c| c["location"] == location && c["kind"] == kind),
            "{body}: {causes:?}"
        );
    }
    // Only the accepted requests created jobs.
    assert_eq!(api.sb.authgear().jobs_created(), 2);
}

#[tokio::test]
async fn insert_250_then_skip_then_upsert() {
    let api = Api::new(config()).await;
    let ag = api.sb.authgear().clone();
    let h = hash("correct horse");
    let records: Vec<Value> = (0..250)
        .map(|i| {
            let mut hash = h.clone();
            if i == 7 {
                hash = hash.replacen("$2b$", "$2y$", 1);
            }
            json!({
                "email": format!("user{i}@example.com"),
                "name": format!("User {i}"),
                "password": {"type": "bcrypt", "password_hash": hash},
            })
        })
        .collect();

    ag.pause_jobs(true);
    let (status, resp) = api
        .post(
            "/_api/admin/users/import",
            &json!({"identifier": "email", "records": records}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let result = &resp["result"];
    let id = result["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("userimport_") && id.len() == "userimport_".len() + 32);
    assert_eq!(result["status"], "pending");
    assert!(result["created_at"].is_string());
    let (_, pending) = api.get(&format!("/_api/admin/users/import/{id}")).await;
    assert_eq!(pending["result"]["status"], "pending");
    assert!(pending["result"].get("summary").is_none());
    assert!(pending["result"].get("details").is_none());
    assert!(pending["result"].get("completed_at").is_none());
    assert_eq!(ag.users().len(), 0);
    ag.pause_jobs(false);

    let done = api.wait("import", &id).await;
    assert!(done["completed_at"].is_string());
    assert_eq!(
        done["summary"],
        json!({"total": 250, "inserted": 250, "updated": 0, "skipped": 0, "failed": 0})
    );
    let details = done["details"].as_array().expect("details");
    assert_eq!(details.len(), 250);
    for (i, d) in details.iter().enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(d["outcome"], "inserted");
        assert_eq!(d["record"]["email"], format!("user{i}@example.com"));
        assert_eq!(d["record"]["password"]["password_hash"], "REDACTED");
    }
    assert_eq!(ag.users().len(), 250);
    let u0 = ag.user_by_login_id("USER0@example.com").expect("user0");
    assert_eq!(details[0]["user_id"], u0.id.as_str());
    assert!(u0.has_password);

    // Login with the original password, including the $2y$ variant.
    let (status, v) = api.login("user0@example.com", "correct horse").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["user_id"], u0.id.as_str());
    let (status, _) = api.login("user7@example.com", "correct horse").await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = api.login("user7@example.com", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["reason"], "InvalidCredentials");
    assert!(ag.check_password("user249@example.com", "correct horse"));

    // Re-import: all skipped with the existing user ids.
    let again = api
        .import(json!({"identifier": "email", "records": records}))
        .await;
    assert_eq!(
        again["summary"],
        json!({"total": 250, "inserted": 0, "updated": 0, "skipped": 250, "failed": 0})
    );
    assert_eq!(again["details"][0]["outcome"], "skipped");
    assert_eq!(again["details"][0]["user_id"], u0.id.as_str());
    assert_eq!(
        again["details"][0]["warnings"],
        json!([{"message": "skipping because upsert = false and user exists"}])
    );

    // Upsert: updated, name changes, password does not.
    let updated = api
        .import(json!({"identifier": "email", "upsert": true, "records": [{
            "email": "user0@example.com",
            "name": "Renamed",
            "password": {"type": "bcrypt", "password_hash": hash("new password")},
        }]}))
        .await;
    assert_eq!(updated["details"][0]["outcome"], "updated");
    assert_eq!(updated["details"][0]["user_id"], u0.id.as_str());
    assert!(updated["details"][0].get("warnings").is_none());
    let u0 = ag.user_by_login_id("user0@example.com").expect("user0");
    assert_eq!(u0.standard_attributes["name"], "Renamed");
    assert!(ag.check_password("user0@example.com", "correct horse"));
    assert!(!ag.check_password("user0@example.com", "new password"));
    assert_eq!(ag.users().len(), 250);
    assert_eq!(ag.jobs_created(), 3);
}

#[tokio::test]
async fn per_record_outcomes_errors_and_warnings() {
    let api = Api::new(config()).await;
    let ag = api.sb.authgear().clone();
    ag.seed_user(json!({"email": "foo@x.com"})).expect("seed");
    let good_hash = hash("pw");
    let records = json!([
        {"email": "a@x.com", "name": "A"},
        {"email": "b@x.com", "name": ""},
        {"email": "c@x.com", "email_verified": false, "disabled": false,
         "custom_attributes": {"tier": "gold", "unknown": 1},
         "roles": ["admin"], "groups": ["staff"],
         "mfa": {"totp": {"secret": "JBSWY3DPEHPK3PXP"}}},
        {"email": "Foo@x.com"},
        {"email": "d@x.com", "password": {"type": "bcrypt", "password_hash": "$2b$10$short"}},
        {"email": "e@x.com", "password": {"type": "bcrypt", "password_hash": good_hash.replacen("$04$", "$99$", 1)}},
        {"email": "f@x.com", "password": {"type": "bcrypt", "password_hash": "plaintext-not-a-hash"}},
        {"email": "g@x.com", "password": {"type": "md5", "password_hash": "x"}},
        {"email": "h@x.com", "email_verified": true, "phone_number": "+85298765432", "phone_number_verified": true},
        {"email": "not an email"},
        {"email": "i@x.com", "unknown_field": 1},
        {"email": "j@x.com", "preferred_username": "admin"},
    ]);
    let done = api
        .import(json!({"identifier": "email", "records": records}))
        .await;
    let d = done["details"].as_array().expect("details");
    let outcomes: Vec<&str> = d
        .iter()
        .map(|x| x["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        outcomes,
        [
            "inserted", "failed", "inserted", "failed", "failed", "failed", "failed", "failed",
            "inserted", "failed", "failed", "failed"
        ]
    );
    assert_eq!(
        done["summary"],
        json!({"total": 12, "inserted": 3, "updated": 0, "skipped": 0, "failed": 9})
    );

    // "" name.
    let e = &d[1]["errors"][0];
    assert_eq!(e["name"], "Invalid");
    assert_eq!(e["reason"], "ValidationFailed");
    assert_eq!(e["code"], 400);
    assert!(
        e["info"]["causes"]
            .as_array()
            .expect("causes")
            .iter()
            .any(|c| c["location"] == "/name" && c["kind"] == "minLength")
    );
    assert!(d[1].get("user_id").is_none());

    // Warnings, custom attributes, roles, groups, TOTP redaction.
    assert_eq!(
        d[2]["warnings"],
        json!([
            {"message": "email_verified = false has no effect in insert."},
            {"message": "disabled = false has no effect in insert."}
        ])
    );
    assert_eq!(d[2]["record"]["mfa"]["totp"]["secret"], "REDACTED");
    let c = ag.user_by_login_id("c@x.com").expect("c");
    assert_eq!(
        c.custom_attributes,
        json!({"tier": "gold"}).as_object().cloned().expect("obj")
    );
    assert_eq!(c.roles, ["admin"]);
    assert_eq!(c.groups, ["staff"]);
    assert_eq!(c.totp_count, 1);
    assert!(!c.email_verified);

    // Case-variant duplicate.
    assert_eq!(d[3]["errors"][0]["reason"], "InvariantViolated", "{}", d[3]);
    assert_eq!(d[3]["errors"][0]["message"], "identity already exists");
    assert_eq!(
        d[3]["errors"][0]["info"]["cause"]["kind"],
        "DuplicatedIdentity"
    );

    // Bad hashes.
    assert_eq!(d[4]["errors"][0]["reason"], "InvalidBcryptHash");
    assert_eq!(
        d[4]["errors"][0]["message"],
        "crypto/bcrypt: hashedSecret too short to be a bcrypted password"
    );
    assert_eq!(d[4]["record"]["password"]["password_hash"], "REDACTED");
    assert_eq!(
        d[5]["errors"][0]["message"],
        "crypto/bcrypt: cost 99 is outside allowed inclusive range 4..31"
    );
    assert_eq!(d[6]["errors"][0]["reason"], "UnexpectedError");
    assert_eq!(d[6]["errors"][0]["code"], 500);
    assert_eq!(d[7]["errors"][0]["reason"], "ValidationFailed");
    // Verified claims.
    let h = ag.user_by_login_id("h@x.com").expect("h");
    assert!(h.email_verified && h.phone_number_verified);
    assert_eq!(h.phone_number.as_deref(), Some("+85298765432"));
    // Format, additionalProperties, reserved username.
    assert_eq!(d[9]["errors"][0]["info"]["causes"][0]["kind"], "format");
    assert_eq!(
        d[10]["errors"][0]["info"]["causes"][0]["kind"],
        "additionalProperties"
    );
    assert_eq!(d[11]["errors"][0]["reason"], "ValidationFailed");
    // Failed records left nothing behind (rolled back).
    for email in ["b@x.com", "d@x.com", "e@x.com", "f@x.com", "j@x.com"] {
        assert!(ag.user_by_login_id(email).is_none(), "{email}");
    }
    assert_eq!(ag.users().len(), 1 + 3);
}

#[tokio::test]
async fn usage_limit_gives_429() {
    let api = Api::new(AuthgearConfig {
        import_usage_limit: Some(3),
        ..config()
    })
    .await;
    let two =
        json!({"identifier": "email", "records": [{"email": "a@x.com"}, {"email": "b@x.com"}]});
    let (status, _) = api.post("/_api/admin/users/import", &two).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = api.post("/_api/admin/users/import", &two).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        v,
        json!({"error": {"name": "TooManyRequest", "reason": "UsageLimitExceeded",
            "message": "usage limit exceeded", "code": 429,
            "info": {"name": "UserImport", "usage_name": "user_import", "period": "month"}}})
    );
    assert_eq!(api.sb.authgear().jobs_created(), 1);
}

#[tokio::test]
async fn unknown_jobs_are_task_not_found() {
    let api = Api::new(config()).await;
    for path in [
        "/_api/admin/users/import/userimport_0000",
        "/_api/admin/users/export/userexport_0000",
    ] {
        let (status, v) = api.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            v,
            json!({"error": {"name": "NotFound", "reason": "TaskNotFound",
                "message": "task not found", "code": 404}})
        );
    }
}

#[tokio::test]
async fn disabled_user_cannot_log_in() {
    let api = Api::new(config()).await;
    api.sb
        .authgear()
        .seed_user(json!({"email": "off@x.com", "disabled": true,
            "password": {"type": "bcrypt", "password_hash": hash("pw")}}))
        .expect("seed");
    let (status, v) = api.login("off@x.com", "pw").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["reason"], "UserDisabled");
    let (status, _) = api.login("off@x.com", "nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn export_round_trip_and_fresh_urls() {
    let api = Api::new(config()).await;
    let ag = api.sb.authgear().clone();
    let secret_hash = hash("pw");
    ag.seed_user(json!({
        "email": "Exported@X.com", "email_verified": true, "name": "Ex",
        "preferred_username": "exporter",
        "custom_attributes": {"tier": "gold"}, "roles": ["editor"],
        "password": {"type": "bcrypt", "password_hash": secret_hash},
        "mfa": {"totp": {"secret": "JBSWY3DPEHPK3PXP"}, "email": "mfa@x.com"},
    }))
    .expect("seed");
    ag.seed_user(json!({"phone_number": "+85298765432"}))
        .expect("seed");

    let (status, v) = api
        .post("/_api/admin/users/export", &json!({"format": "ndjson"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let id = v["result"]["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("userexport_"));
    assert_eq!(v["result"]["status"], "pending");
    assert_eq!(v["result"]["request"], json!({"format": "ndjson"}));

    let done = api.wait("export", &id).await;
    assert!(done["completed_at"].is_string());
    let url1 = done["download_url"].as_str().expect("url").to_owned();
    let (_, again) = api.get(&format!("/_api/admin/users/export/{id}")).await;
    let url2 = again["result"]["download_url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_ne!(url1, url2);

    let mut files = Vec::new();
    for url in [&url1, &url2] {
        let resp = api.http.get(url).send().await.expect("download");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
        files.push(resp.text().await.expect("file"));
    }
    assert_eq!(files[0], files[1]);
    let file = &files[0];
    assert!(!file.contains(&secret_hash) && !file.contains("$2b$"));
    let lines: Vec<Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson line"))
        .collect();
    assert_eq!(lines.len(), 2);
    let u = &lines[0];
    assert_eq!(u["email"], "exported@x.com");
    assert_eq!(u["preferred_username"], "exporter");
    assert_eq!(u["email_verified"], true);
    assert_eq!(u["phone_number_verified"], false);
    assert_eq!(u["name"], "Ex");
    assert_eq!(u["custom_attributes"], json!({"tier": "gold"}));
    assert_eq!(u["roles"], json!(["editor"]));
    assert_eq!(u["disabled"], false);
    assert_eq!(u["is_anonymized"], false);
    assert_eq!(u["address"], json!({}));
    assert_eq!(u["mfa"]["emails"], json!(["mfa@x.com"]));
    assert_eq!(u["mfa"]["totps"][0]["secret"], "JBSWY3DPEHPK3PXP");
    assert!(
        u["mfa"]["totps"][0]["uri"]
            .as_str()
            .expect("uri")
            .starts_with("otpauth://totp/")
    );
    assert_eq!(u["biometric_count"], 0);
    assert_eq!(u["passkey_count"], 0);
    let ids = u["identities"].as_array().expect("identities");
    assert!(ids.iter().any(|i| i["login_id"]["key"] == "email"
        && i["login_id"]["value"] == "exported@x.com"
        && i["login_id"]["original_value"] == "Exported@X.com"));
    assert_eq!(lines[1]["phone_number"], "+85298765432");
    assert_eq!(lines[1]["mfa"], json!({}));

    // A tampered token is refused.
    let bad = format!("{}x", url1);
    let resp = api.http.get(&bad).send().await.expect("download");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Bad export requests.
    let (status, v) = api
        .post("/_api/admin/users/export", &json!({"format": "xml"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["reason"], "ValidationFailed");
}

#[tokio::test]
async fn download_urls_expire() {
    let api = Api::new(AuthgearConfig {
        download_url_ttl: Duration::ZERO,
        ..config()
    })
    .await;
    let (_, v) = api
        .post("/_api/admin/users/export", &json!({"format": "ndjson"}))
        .await;
    let id = v["result"]["id"].as_str().expect("id").to_owned();
    let done = api.wait("export", &id).await;
    let url = done["download_url"].as_str().expect("url");
    let resp = api.http.get(url).send().await.expect("download");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.text().await.expect("body"), "Request has expired");
}

#[tokio::test]
async fn config_debug_hides_the_key() {
    let cfg = config();
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("****"));
}
