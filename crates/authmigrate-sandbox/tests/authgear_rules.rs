//! The Authgear emulator follows the corrected docs (issue 12 §6), over plain HTTP.

mod agcommon;

use agcommon::{Api, hash};
use authmigrate_sandbox::authgear::{AttributeType, AuthgearConfig, CustomAttribute, ImportFault};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn config() -> AuthgearConfig {
    AuthgearConfig {
        roles: vec!["admin".into(), "editor".into()],
        groups: vec!["staff".into()],
        ..AuthgearConfig::default()
    }
}

fn outcomes(done: &Value) -> Vec<String> {
    done["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["outcome"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn unknown_role_or_group_keys_fail_the_whole_record() {
    let api = Api::new(config()).await;
    let done = api
        .import(json!([
            {"email": "a@x.com", "roles": ["admin", "ghost", "ghoul"]},
            {"email": "b@x.com", "groups": ["staff", "nope"]},
            {"email": "c@x.com", "roles": ["admin", "admin"], "groups": ["staff"]},
        ]))
        .await;
    assert_eq!(outcomes(&done), ["failed", "failed", "inserted"]);
    assert_eq!(
        done["details"][0]["errors"],
        json!([{"name": "NotFound", "reason": "RoleUnknownKeys", "message": "unknown role keys",
            "code": 404, "info": {"keys": ["ghost", "ghoul"]}}])
    );
    assert_eq!(
        done["details"][1]["errors"],
        json!([{"name": "NotFound", "reason": "GroupUnknownKeys", "message": "unknown group keys",
            "code": 404, "info": {"keys": ["nope"]}}])
    );
    let ag = api.sb.authgear();
    assert!(ag.user_by_login_id("a@x.com").is_none());
    assert!(ag.user_by_login_id("b@x.com").is_none());
    let c = ag.user_by_login_id("c@x.com").expect("c");
    assert_eq!(
        (c.roles, c.groups),
        (vec!["admin".to_owned()], vec!["staff".to_owned()])
    );
}

#[tokio::test]
async fn typed_custom_attributes_fail_the_record_and_undeclared_keys_drop() {
    let api = Api::new(AuthgearConfig {
        custom_attributes: vec![
            CustomAttribute::new("x_age", AttributeType::Integer)
                .with_range(Some(0.0), Some(150.0)),
            CustomAttribute::with_enum("plan", ["free", "pro"]),
            CustomAttribute::new("x_phone", AttributeType::PhoneNumber),
            "nick".into(),
        ],
        ..config()
    })
    .await;
    let done = api
        .import(json!([
            {"email": "a@x.com", "custom_attributes": {"x_age": 30, "plan": "pro", "undeclared": true}},
            {"email": "b@x.com", "custom_attributes": {"x_age": "30"}},
            {"email": "c@x.com", "custom_attributes": {"x_age": 151}},
            {"email": "d@x.com", "custom_attributes": {"plan": "gold"}},
            {"email": "e@x.com", "custom_attributes": {"x_phone": "12345"}},
            {"email": "f@x.com", "custom_attributes": {"nick": ""}},
            {"email": "g@x.com", "custom_attributes": {"x_age": 30.5}},
        ]))
        .await;
    assert_eq!(
        outcomes(&done),
        [
            "inserted", "failed", "failed", "failed", "failed", "failed", "failed"
        ]
    );
    let d = &done["details"];
    assert_eq!(
        d[1]["errors"][0],
        json!({"name": "Invalid", "reason": "ValidationFailed", "message": "invalid value", "code": 400,
            "info": {"causes": [{"location": "/x_age", "kind": "type",
                "details": {"actual": ["string"], "expected": ["integer"]}}]}})
    );
    assert_eq!(
        d[2]["errors"][0]["info"]["causes"][0],
        json!({"location": "/x_age", "kind": "maximum", "details": {"actual": 151, "maximum": 150.0}})
    );
    assert_eq!(d[3]["errors"][0]["info"]["causes"][0]["kind"], "enum");
    assert_eq!(
        d[3]["errors"][0]["info"]["causes"][0]["details"]["expected"],
        json!(["free", "pro"])
    );
    assert_eq!(d[4]["errors"][0]["info"]["causes"][0]["kind"], "format");
    assert_eq!(
        d[4]["errors"][0]["info"]["causes"][0]["details"]["format"],
        "phone"
    );
    assert_eq!(d[5]["errors"][0]["info"]["causes"][0]["kind"], "minLength");
    assert_eq!(
        d[6]["errors"][0]["info"]["causes"][0]["details"]["actual"],
        json!(["number"])
    );
    let a = api.sb.authgear().user_by_login_id("a@x.com").expect("a");
    assert_eq!(
        Value::Object(a.custom_attributes),
        json!({"x_age": 30, "plan": "pro"})
    );
    assert_eq!(api.sb.authgear().users().len(), 1);
}

#[tokio::test]
async fn usernames_follow_the_default_rules_and_the_configured_reserved_list() {
    let api = Api::new(config()).await;
    let done = api
        .import(json!([
            {"email": "a@x.com", "preferred_username": "ada.l-1_x"},
            {"email": "b@x.com", "preferred_username": "a".repeat(41)},
            {"email": "c@x.com", "preferred_username": "josé"},
            {"email": "d@x.com", "preferred_username": "Support"},
            {"email": "e@x.com", "preferred_username": "GUEST"},
            {"email": "f@x.com", "preferred_username": "a".repeat(40)},
        ]))
        .await;
    assert_eq!(
        outcomes(&done),
        [
            "inserted", "failed", "failed", "failed", "failed", "inserted"
        ]
    );
    let cause = |i: usize| done["details"][i]["errors"][0]["info"]["causes"][0].clone();
    assert_eq!(
        done["details"][1]["errors"][0],
        json!({"name": "Invalid", "reason": "ValidationFailed", "message": "invalid login ID", "code": 400,
            "info": {"causes": [{"location": "/login_id", "kind": "maxLength",
                "details": {"expected": 40, "actual": 41}}]}})
    );
    assert_eq!(
        cause(2),
        json!({"location": "/login_id", "kind": "format", "details": {"format": "username"}})
    );
    assert_eq!(
        cause(3),
        json!({"location": "/login_id", "kind": "blocked", "details": {"reason": "UsernameReserved"}})
    );
    assert_eq!(cause(4)["kind"], "blocked");

    // The project's own list replaces the built-in one.
    let api = Api::new(AuthgearConfig {
        reserved_usernames: Some(vec!["ada".into()]),
        ..config()
    })
    .await;
    let done = api
        .import(json!([
            {"email": "a@x.com", "preferred_username": "admin"},
            {"email": "b@x.com", "preferred_username": "ADA"},
        ]))
        .await;
    assert_eq!(outcomes(&done), ["inserted", "failed"]);
}

fn emails(prefix: &str, n: usize) -> Value {
    json!(
        (0..n)
            .map(|i| json!({"email": format!("{prefix}{i}@x.com")}))
            .collect::<Vec<_>>()
    )
}

async fn submit(api: &Api, records: Value) -> (StatusCode, Value) {
    api.post(
        "/_api/admin/users/import",
        &json!({"identifier": "email", "records": records}),
    )
    .await
}

#[tokio::test]
async fn quota_is_reserved_all_or_nothing_day_before_month_and_resets_by_the_clock() {
    let api = Api::new(AuthgearConfig {
        import_daily_limit: Some(5),
        import_usage_limit: Some(8),
        // Start at noon on the 30th so that "next day" and "next month" are predictable.
        ..config()
    })
    .await;
    api.clock(json!({"now": "2026-04-30T12:00:00Z"})).await;
    let day_refusal = json!({"error": {"name": "TooManyRequest", "reason": "UsageLimitExceeded",
        "message": "usage limit exceeded", "code": 429,
        "info": {"name": "UserImport", "usage_name": "user_import", "period": "day"}}});
    assert_eq!(submit(&api, emails("a", 4)).await.0, StatusCode::OK);
    // 4 + 2 > 5: refused whole, nothing reserved.
    assert_eq!(
        submit(&api, emails("b", 2)).await,
        (StatusCode::TOO_MANY_REQUESTS, day_refusal.clone())
    );
    assert_eq!(api.sb.authgear().usage_current(), (4, 4));
    // A smaller request still fits, exactly.
    assert_eq!(submit(&api, emails("c", 1)).await.0, StatusCode::OK);
    assert_eq!(
        submit(&api, emails("d", 1)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Still the same day one second before midnight UTC.
    api.clock(json!({"now": "2026-04-30T23:59:59Z"})).await;
    assert_eq!(
        submit(&api, emails("e", 1)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    api.clock(json!({"advance": "2s"})).await;
    let (status, body) = submit(&api, emails("f", 4)).await;
    // 2026-05-01 is also the 1st: the month reset too, so 4 fits.
    assert_eq!(status, StatusCode::OK, "{body}");
    api.clock(json!({"advance": "24h"})).await;
    assert_eq!(submit(&api, emails("g", 4)).await.0, StatusCode::OK);
    let (status, body) = submit(&api, emails("h", 1)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["info"]["period"], "month");
    // Never refunded: a resubmission of the same records counts again.
    assert_eq!(api.sb.authgear().usage_used(), 4 + 1 + 4 + 4);
    assert_eq!(api.sb.authgear().jobs_created(), 4);
}

#[tokio::test]
async fn content_types_415_after_auth_and_400_for_a_bad_json_parameter() {
    let api = Api::new(config()).await;
    let body = json!({"identifier": "email", "records": [{"email": "a@x.com"}]}).to_string();
    for (path, ct) in [
        ("/_api/admin/users/import", "text/plain"),
        (
            "/_api/admin/users/import",
            "application/x-www-form-urlencoded",
        ),
        ("/_api/admin/users/export", "text/csv"),
        ("/_api/admin/graphql", "text/plain; charset=utf-8"),
    ] {
        let resp = api.post_raw(path, ct, body.clone().into_bytes()).await;
        assert_eq!(
            resp.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{path} {ct}"
        );
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"),
            "{path}"
        );
        assert_eq!(
            resp.text().await.unwrap(),
            format!("invalid content type: {ct}\n")
        );
    }
    // Authorization comes first.
    let resp = api
        .http
        .post(api.url("/_api/admin/users/import"))
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // JSON with a bad parameter reaches the handler.
    let resp = api
        .post_raw(
            "/_api/admin/users/import",
            "application/json; charset=latin1",
            body.into_bytes(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "request content type is invalid");
    assert_eq!(api.sb.authgear().jobs_created(), 0);
}

#[tokio::test]
async fn export_leaves_out_empty_arrays() {
    let api = Api::new(config()).await;
    let ag = api.sb.authgear();
    ag.seed_user(json!({"email": "plain@x.com"})).unwrap();
    ag.seed_user(
        json!({"email": "rich@x.com", "roles": ["admin"], "groups": ["staff"],
        "mfa": {"totp": {"secret": "JBSWY3DPEHPK3PXP"}}}),
    )
    .unwrap();
    let lines = api.export().await;
    let plain = &lines[0];
    assert_eq!(plain["email"], "plain@x.com");
    assert_eq!(plain["mfa"], json!({}));
    assert!(plain.get("roles").is_none() && plain.get("groups").is_none());
    assert_eq!(plain["identities"].as_array().map(Vec::len), Some(1));
    let rich = &lines[1];
    assert_eq!(rich["roles"], json!(["admin"]));
    assert_eq!(rich["groups"], json!(["staff"]));
    assert!(rich["mfa"].get("emails").is_none());
    assert_eq!(rich["mfa"]["totps"][0]["secret"], "JBSWY3DPEHPK3PXP");
}

#[tokio::test]
async fn import_jobs_expire_after_24_hours() {
    let api = Api::new(config()).await;
    let done = api.import(emails("a", 2)).await;
    let id = done["id"].as_str().unwrap().to_owned();
    api.clock(json!({"advance": "23h59m"})).await;
    assert_eq!(
        api.get(&format!("/_api/admin/users/import/{id}")).await.0,
        StatusCode::OK
    );
    api.clock(json!({"advance": "2m"})).await;
    let (status, v) = api.get(&format!("/_api/admin/users/import/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["reason"], "TaskNotFound");
    // The users stay.
    assert_eq!(api.sb.authgear().users().len(), 2);
}

#[tokio::test]
async fn faults_after_the_job_was_created_still_run_the_job() {
    let api = Api::new(AuthgearConfig {
        import_faults: vec![(0, ImportFault::Error500)],
        ..config()
    })
    .await;
    api.sb
        .authgear()
        .set_import_fault(2, Some(ImportFault::Drop));
    let (status, v) = submit(&api, emails("a", 3)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(v["error"]["reason"], "UnexpectedError");
    assert_eq!(submit(&api, emails("b", 1)).await.0, StatusCode::OK);
    let dropped = api
        .http
        .post(api.url("/_api/admin/users/import"))
        .bearer_auth(&api.token)
        .json(&json!({"identifier": "email", "records": emails("c", 2)}))
        .send()
        .await;
    let failed = match dropped {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "the third POST must not get an answer");
    assert_eq!(api.sb.authgear().jobs_created(), 3);
    // A cleared fault answers normally.
    assert_eq!(submit(&api, emails("d", 1)).await.0, StatusCode::OK);
    // Every job ran: 3 + 1 + 2 + 1 users.
    for _ in 0..4000 {
        if api.sb.authgear().users().len() == 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(api.sb.authgear().users().len(), 7);
    assert_eq!(api.sb.authgear().usage_used(), 7);
}

#[tokio::test]
async fn accounts_outside_their_valid_period_are_disabled_and_inverted_periods_fail() {
    let api = Api::new(config()).await;
    let pw = || json!({"type": "bcrypt", "password_hash": hash("pw")});
    let done = api
        .import(json!([
            {"email": "future@x.com", "account_valid_from": "2999-01-01T00:00:00Z", "password": pw()},
            {"email": "past@x.com", "account_valid_until": "2001-01-01T00:00:00Z", "password": pw()},
            {"email": "now@x.com", "account_valid_from": "2001-01-01T00:00:00Z",
             "account_valid_until": "2999-01-01T00:00:00Z", "password": pw()},
            {"email": "inverted@x.com", "account_valid_from": "2030-01-01T00:00:00Z",
             "account_valid_until": "2030-01-01T00:00:00Z"},
        ]))
        .await;
    assert_eq!(
        outcomes(&done),
        ["inserted", "inserted", "inserted", "failed"]
    );
    assert_eq!(
        done["details"][3]["errors"][0],
        json!({"name": "Invalid", "reason": "InvalidAccountStatusTransition",
            "message": "the start timestamp of account valid period must be less than the end timestamp of the account valid period",
            "code": 400, "info": {"cause": {"kind": "AccountValidFromShouldBeBeforeAccountValidUntil"}}})
    );
    let lines = api.export().await;
    let disabled: Vec<(String, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["email"].as_str().unwrap().to_owned(),
                l["disabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        disabled,
        [
            ("future@x.com".into(), true),
            ("past@x.com".into(), true),
            ("now@x.com".into(), false)
        ]
    );
    for (email, status) in [
        ("future@x.com", StatusCode::FORBIDDEN),
        ("past@x.com", StatusCode::FORBIDDEN),
        ("now@x.com", StatusCode::OK),
    ] {
        let (s, v) = api
            .login(json!({"login_id": email, "password": "pw"}))
            .await;
        assert_eq!(s, status, "{email} {v}");
    }
}
