//! `generate` and `validate`, run as the real binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const HELLO_COST_10: &str = "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K";

fn authmigrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authmigrate"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run authmigrate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn generate_is_byte_identical_with_a_seed_and_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.ndjson");
    let b = dir.path().join("b.ndjson");
    for p in [&a, &b] {
        let o = authmigrate(&[
            "generate",
            "--count",
            "12",
            "--seed",
            "42",
            "--cost",
            "4",
            "--out",
            p.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap());
    let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "files with hashes must be 0600");

    let lines: Vec<Value> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    assert_eq!(lines[0]["username"], "user_01");
    assert_eq!(lines[11]["email"], "user_12@example.com");
    assert_eq!(lines[11]["name"], "user_12@example.com");
    assert_eq!(lines[11]["nickname"], "user_12");
    assert_eq!(lines[11]["email_verified"], true);
    let hash = lines[3]["password"]["hash"]["value"].as_str().unwrap();
    assert!(hash.starts_with("$2b$04$"));
    assert!(
        bcrypt::verify("user_04", hash).unwrap(),
        "password defaults to the username"
    );

    let other = dir.path().join("c.ndjson");
    authmigrate(&[
        "generate",
        "--count",
        "12",
        "--seed",
        "43",
        "--cost",
        "4",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&other).unwrap());
}

#[test]
fn auth0_and_authgear_outputs_carry_the_same_hashes_at_cost_10() {
    let dir = tempfile::tempdir().unwrap();
    let a0 = dir.path().join("auth0.json");
    let ag = dir.path().join("authgear.json");
    let common = [
        "generate",
        "--count",
        "2",
        "--seed",
        "7",
        "--prefix",
        "qa",
        "--domain",
        "test.example.org",
    ];
    let o = authmigrate(
        &[
            &common[..],
            &["--format", "auth0", "--out", a0.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = authmigrate(
        &[
            &common[..],
            &["--format", "authgear", "--out", ag.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let users = read_json(&a0);
    let body = read_json(&ag);
    assert_eq!(body["identifier"], "email");
    let records = body["records"].as_array().unwrap();
    for (i, (u, r)) in users.as_array().unwrap().iter().zip(records).enumerate() {
        let username = format!("qa_{:02}", i + 1);
        assert_eq!(u["username"], username.as_str());
        assert_eq!(r["preferred_username"], username.as_str());
        assert_eq!(u["email"], format!("{username}@test.example.org").as_str());
        let h0 = u["password_hash"]
            .as_str()
            .expect("cost-10 $2b$ goes in password_hash");
        assert!(h0.starts_with("$2b$10$"), "{h0}");
        assert_eq!(r["password"]["type"], "bcrypt");
        assert_eq!(
            r["password"]["password_hash"], h0,
            "same hash for both providers"
        );
        assert!(bcrypt::verify(&username, h0).unwrap());
        assert!(u.get("custom_password_hash").is_none());
    }
    // The exact key order of the contract.
    let text = std::fs::read_to_string(&a0).unwrap();
    assert!(text.starts_with(r#"[{"email":"qa_01@test.example.org","email_verified":true,"username":"qa_01","name":"qa_01@test.example.org","nickname":"qa_01","password_hash":"$2b$10$"#), "{text}");
}

#[test]
fn generate_json_summary_and_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("u.ndjson.gz");
    let o = authmigrate(&[
        "--json",
        "generate",
        "--count",
        "3",
        "--cost",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let last: Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["data"]["generated"], 3);
    // gzip by extension
    assert_eq!(&std::fs::read(&out).unwrap()[..2], &[0x1f, 0x8b]);

    let o = authmigrate(&["generate", "--count", "1", "--cost", "3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--cost"), "{}", stderr(&o));
    let o = authmigrate(&["generate"]);
    assert_eq!(o.status.code(), Some(2), "missing --count is a usage error");
}

#[test]
fn validate_accepts_the_documented_hello_vector_for_both_providers() {
    let dir = tempfile::tempdir().unwrap();
    let a0 = dir.path().join("a0.json");
    std::fs::write(
        &a0,
        format!(r#"[{{"email":"hello@example.com","email_verified":true,"password_hash":"{HELLO_COST_10}"}}]"#),
    )
    .unwrap();
    let o = authmigrate(&["validate", "--for", "auth0", a0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(bcrypt::verify("hello", HELLO_COST_10).unwrap());

    let ag = dir.path().join("ag.json");
    std::fs::write(
        &ag,
        format!(r#"{{"identifier":"email","records":[{{"email":"hello@example.com","password":{{"type":"bcrypt","password_hash":"{HELLO_COST_10}"}}}}]}}"#),
    )
    .unwrap();
    let o = authmigrate(&["validate", "--for", "authgear", ag.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn validate_lists_every_problem_with_index_and_field_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(
        &file,
        r#"[
  {"email":"ok@example.com"},
  {"email":"not-an-email","password_hash":"$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K"},
  {"email":"ok2@example.com","favourite_colour":"blue"},
  {"email":"ok@example.com"},
  {"email":"x@example.com","password_hash":"$2b$12$SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRE"}
]"#,
    )
    .unwrap();
    let o = authmigrate(&["validate", "--for", "auth0", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("record 1: field `email`"), "{text}");
    assert!(
        text.contains("record 2: field `favourite_colour`"),
        "{text}"
    );
    assert!(
        text.contains("record 3: field `email`") && text.contains("duplicate of record 0"),
        "{text}"
    );
    assert!(text.contains("record 4: field `password_hash`"), "{text}");
    assert!(!text.contains(", record 0:"), "record 0 is valid: {text}");
    assert!(
        !text.contains("SECRETSECRET"),
        "hash values never printed: {text}"
    );

    // JSON mode: problems as events, summary last.
    let o = authmigrate(&[
        "--json",
        "validate",
        "--for",
        "auth0",
        file.to_str().unwrap(),
    ]);
    let events: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["data"]["records"], 5);
    assert_eq!(summary["data"]["invalid_records"], 4);
    assert_eq!(summary["data"]["valid"], false);
    assert!(events.iter().any(|e| e["type"] == "problem"
        && e["data"]["index"] == 2
        && e["data"]["field"] == "favourite_colour"));
}

#[test]
fn validate_maps_other_formats_before_checking() {
    // A neutral file with a sha256 hash is fine for Auth0 (custom_password_hash) but
    // cannot go to Authgear, which imports bcrypt only.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.ndjson");
    std::fs::write(
        &file,
        concat!(
            r#"{"email":"a@example.com","password":{"algorithm":"sha256","hash":{"value":"d24e794f","encoding":"hex"}}}"#,
            "\n",
            r#"{"email":"b@example.com","username":"bee"}"#,
            "\n"
        ),
    )
    .unwrap();
    let o = authmigrate(&["validate", "--for", "auth0", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = authmigrate(&["validate", "--for", "authgear", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains("record 0") && text.contains("UNSUPPORTED_HASH"),
        "{text}"
    );
    // Record 1 has no password: a warning (it will have to reset it), not an error.
    let record1: Vec<&str> = text.lines().filter(|l| l.contains(", record 1:")).collect();
    assert!(
        !record1.is_empty()
            && record1
                .iter()
                .all(|l| l.contains("warning: no password hash")),
        "{text}"
    );
}

#[test]
fn validate_authgear_checks_the_record_schema() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.json");
    std::fs::write(
        &file,
        r#"{"identifier":"email","records":[{"email":"a@example.com","name":""},{"name":"No Email"},{"email":"c@example.com","password":{"type":"md5","password_hash":"x"}}]}"#,
    )
    .unwrap();
    let o = authmigrate(&["validate", "--for", "authgear", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("record 0: field `name`"), "{text}");
    assert!(text.contains("record 1: field `email`"), "{text}");
    assert!(text.contains("record 2: field `password"), "{text}");
}

#[test]
fn validate_authgear_applies_the_username_and_role_key_rules() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    let names = ["ok_user", "Admin", "ädä", &"x".repeat(41), "boss"];
    let mut records: Vec<Value> = names
        .iter()
        .map(|u| serde_json::json!({ "preferred_username": u }))
        .collect();
    records.push(serde_json::json!({"preferred_username": "r1", "roles": ["0bad", "good"]}));
    std::fs::write(
        &body,
        serde_json::json!({"identifier": "preferred_username", "records": records}).to_string(),
    )
    .unwrap();
    let ascii = "may contain only ASCII letters, digits, `_`, `-` and `.` (Authgear's `ascii_only` username rule)";
    let reserved = "is a reserved username (Authgear's `block_reserved_usernames`)";
    let b = body.display();
    let o = authmigrate(&["validate", "--for", "authgear", body.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let expect = [
        format!("{b}, record 1: field `preferred_username`: {reserved}"),
        format!("{b}, record 2: field `preferred_username`: {ascii}"),
        format!("{b}, record 3: field `preferred_username`: must be at most 40 bytes, got 41"),
        format!("{b}, record 5: field `roles[0]`: must start with an ASCII letter or `_`"),
    ];
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        expect,
        "{}",
        stderr(&o)
    );

    // `--reserved-usernames` replaces the built-in list: `Admin` is now allowed
    // (a warning for its case), `boss` is not.
    let list = dir.path().join("reserved.txt");
    std::fs::write(&list, "# ours\nBoss\n").unwrap();
    let o = authmigrate(&[
        "validate",
        "--for",
        "authgear",
        "--reserved-usernames",
        list.to_str().unwrap(),
        body.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains("record 1: field `preferred_username`: warning: has upper-case"),
        "{text}"
    );
    assert!(
        text.contains(&format!("record 4: field `preferred_username`: {reserved}")),
        "{text}"
    );
    assert!(
        !text.contains(&format!("record 1: field `preferred_username`: {reserved}")),
        "{text}"
    );

    // Converted records: the same rule, reported on the field.
    let neutral = dir.path().join("users.ndjson");
    std::fs::write(
        &neutral,
        "{\"email\":\"a@example.com\",\"username\":\"root\"}\n{\"email\":\"b@example.com\",\"username\":\"b b\"}\n{\"email\":\"c@example.com\",\"username\":\"Cee\"}\n",
    )
    .unwrap();
    let n = neutral.display();
    let o = authmigrate(&["validate", "--for", "authgear", neutral.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let errors: Vec<&str> = stdout_lines_with(&o, "record 0", "record 1");
    assert_eq!(
        errors,
        [
            format!(
                "{n}, record 0: field `preferred_username`: {reserved}: Authgear would fail this record"
            ),
            format!(
                "{n}, record 1: field `preferred_username`: {ascii}: Authgear would fail this record"
            ),
        ]
    );
}

fn stdout_lines_with<'a>(o: &'a Output, a: &str, b: &str) -> Vec<&'a str> {
    std::str::from_utf8(&o.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!(", {a}:")) || l.contains(&format!(", {b}:")))
        .collect()
}
