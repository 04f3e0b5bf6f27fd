//! Native files are imported as written; converted records are repaired with each
//! warning once (issue 12 §3).

mod common;

use common::{env, report, text};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authgear_body_is_imported_as_written_and_converted_warnings_come_once() {
    let env = env().await;
    // The user's own Authgear body: record 1 has an empty name and an unknown key.
    let body = env.path("body.json");
    std::fs::write(
        &body,
        json!({"identifier": "email", "records": [
            {"email": "ok@example.com", "name": "Ok"},
            {"email": "bad@example.com", "name": "", "foo": 1}
        ]})
        .to_string(),
    )
    .unwrap();
    let rep = env.path("r1.json");
    let o = env
        .run(&[
            "import",
            "--to",
            "authgear",
            body.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    let recs = r["records"].as_array().unwrap();
    let bad = recs.iter().find(|x| x["index"] == 1).unwrap();
    assert_eq!(bad["outcome"], "failed");
    assert_eq!(bad["code"], "INVALID_RECORD");
    let msg = bad["message"].as_str().unwrap();
    assert!(msg.contains("field `foo`: is not a field"), "{msg}");
    assert!(msg.contains("field `name`: must not be empty"), "{msg}");
    let ok = recs.iter().find(|x| x["index"] == 0).unwrap();
    assert_eq!(ok["outcome"], "inserted");
    let users = env.sandbox.authgear().users();
    assert_eq!(users.len(), 1, "the invalid record was not sent");

    // A converted record (Auth0 export line): repaired, each warning exactly once.
    let export = env.path("export.ndjson");
    std::fs::write(
        &export,
        "{\"user_id\":\"auth0|1\",\"email\":\"conv@example.com\",\"name\":\"\"}\n",
    )
    .unwrap();
    let rep = env.path("r2.json");
    let o = env
        .run(&[
            "import",
            "--to",
            "authgear",
            export.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&rep);
    let warnings: Vec<&str> = r["records"][0]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(r["records"][0]["outcome"], "inserted");
    assert_eq!(
        warnings,
        vec![
            "`name` is empty: left out (Authgear rejects empty strings)",
            "`source_id` is not sent: Authgear assigns new ids (--id-map records the mapping)",
            "no password hash: the user cannot log in with a password until it is reset",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth0_bulk_array_is_imported_as_written() {
    let env = env().await;
    let users = env.path("bulk.json");
    std::fs::write(
        &users,
        json!([
            {"email": "a@example.com", "name": "A"},
            {"email": "b@example.com", "email_verified": "yes"},
            {"email": "c@example.com", "favourite": "x"}
        ])
        .to_string(),
    )
    .unwrap();
    let rep = env.path("r.json");
    let o = env
        .run(&[
            "import",
            "--to",
            "auth0",
            users.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    let by = |i: u64| {
        r["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["index"] == i)
            .unwrap()
            .clone()
    };
    assert_eq!(by(0)["outcome"], "inserted");
    assert_eq!(by(1)["outcome"], "failed");
    assert!(
        by(1)["message"]
            .as_str()
            .unwrap()
            .starts_with("field `email_verified`: must be a boolean"),
        "{}",
        by(1)
    );
    assert!(
        by(2)["message"]
            .as_str()
            .unwrap()
            .starts_with("field `favourite`: is not a field of Auth0's bulk-import schema"),
        "{}",
        by(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_fail_before_sending_and_unknown_role_keys_fail_at_the_server() {
    let env = env().await;
    let users = env.path("users.ndjson");
    std::fs::write(
        &users,
        concat!(
            "{\"email\":\"a@example.com\",\"username\":\"ada\"}\n",
            "{\"email\":\"r@example.com\",\"username\":\"Admin\"}\n",
            "{\"email\":\"s@example.com\",\"username\":\"s p\"}\n",
        ),
    )
    .unwrap();
    let rep = env.path("r1.json");
    let o = env
        .run(&[
            "import",
            "--to",
            "authgear",
            users.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    let by = |i: u64| {
        r["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["index"] == i)
            .unwrap()
            .clone()
    };
    assert_eq!(by(0)["outcome"], "inserted");
    assert_eq!(by(1)["outcome"], "failed");
    assert_eq!(by(1)["code"], "INVALID_USERNAME");
    assert_eq!(
        by(1)["message"],
        "`preferred_username` is a reserved username (Authgear's `block_reserved_usernames`): Authgear would fail this record"
    );
    assert_eq!(by(2)["code"], "INVALID_USERNAME");
    assert!(by(2)["message"].as_str().unwrap().contains("only ASCII"));
    assert_eq!(
        env.sandbox.authgear().users().len(),
        1,
        "the refused records were not sent"
    );

    // A native body with a valid-looking but unknown role key: sent as written, and
    // the server's refusal names the key.
    let body = env.path("body.json");
    std::fs::write(
        &body,
        json!({"identifier": "email", "records": [
            {"email": "role@example.com", "roles": ["no_such_role"]}
        ]})
        .to_string(),
    )
    .unwrap();
    let rep = env.path("r2.json");
    let o = env
        .run(&[
            "import",
            "--to",
            "authgear",
            body.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    let rec = &r["records"][0];
    assert_eq!(rec["outcome"], "failed", "{rec}");
    assert_eq!(rec["code"], "RoleUnknownKeys", "{rec}");
    assert_eq!(
        rec["message"], "unknown role keys (keys: no_such_role)",
        "{rec}"
    );
}
