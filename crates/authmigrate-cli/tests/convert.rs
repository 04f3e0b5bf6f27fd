//! `convert`, run as the real binary on the repository's fixtures.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn authmigrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authmigrate"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run authmigrate")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn auth0_export_plus_password_hashes_to_authgear() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("authgear.ndjson");
    let report = dir.path().join("report.json");
    let o = authmigrate(&[
        "convert",
        "--to",
        "authgear",
        &fixture("auth0-export.ndjson"),
        "--password-hashes",
        &fixture("auth0-password-hashes.ndjson"),
        "--custom-attribute",
        "user_metadata.plan=plan",
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let records = lines(&out);
    assert_eq!(records.len(), 4, "every user, in input order");
    let by_email = |e: &str| {
        records
            .iter()
            .find(|r| r["email"] == e)
            .unwrap_or_else(|| panic!("{e}"))
            .clone()
    };

    // Joined by id (`auth0|<oid>`).
    let ada = by_email("ada@example.com");
    assert_eq!(records[0]["email"], "ada@example.com");
    assert_eq!(ada["password"]["type"], "bcrypt");
    assert_eq!(
        ada["password"]["password_hash"],
        "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K"
    );
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["given_name"], "Ada");
    assert_eq!(ada["family_name"], "Lovelace");
    assert_eq!(ada["preferred_username"], "ada");
    assert_eq!(
        ada["custom_attributes"]["plan"], "pro",
        "--custom-attribute carried user_metadata.plan"
    );
    // Joined through `alt_id` (user_id `auth0|euclid`), and blocked → disabled.
    let euclid = by_email("euclid@example.com");
    assert!(
        euclid["password"]["password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$2b$10$")
    );
    assert_eq!(euclid["disabled"], true);
    // A social user has no password anywhere.
    let grace = by_email("grace@example.com");
    assert!(grace.get("password").is_none());

    // What could not be carried is counted, never dropped silently.
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["summary"]["total"], 4);
    assert_eq!(r["summary"]["converted"], 4);
    let left_out = r["summary"]["left_out"].as_object().unwrap();
    assert!(!left_out.is_empty());
    assert!(
        left_out.keys().any(|k| k.contains("theme")),
        "metadata without a custom attribute: {left_out:?}"
    );
    assert!(
        !std::fs::read_to_string(&report).unwrap().contains("$2b$"),
        "no hashes in reports"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("records:"), "counts on stderr: {stderr}");
}

#[test]
fn auth0_document_output_strips_the_prefix_and_uses_password_hash() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("users.json");
    let o = authmigrate(&[
        "convert",
        "--to",
        "auth0",
        &fixture("auth0-export.ndjson"),
        "--password-hashes",
        &fixture("auth0-password-hashes.ndjson"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let users = doc.as_array().unwrap();
    assert_eq!(users.len(), 4);
    assert_eq!(
        users[0]["user_id"], "5f7c8ec7c33c6c004bbafe82",
        "`auth0|` stripped"
    );
    assert!(
        users[0]["password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$2b$10$")
    );
    assert!(users[0].get("custom_password_hash").is_none());
    // The result passes Auth0 validation.
    let o = authmigrate(&["validate", "--for", "auth0", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_document_over_the_upload_limit_is_refused_and_ndjson_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.ndjson");
    let o = authmigrate(&[
        "generate",
        "--count",
        "3000",
        "--cost",
        "4",
        "--out",
        users.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let doc = dir.path().join("big.json");
    let o = authmigrate(&[
        "convert",
        "--to",
        "auth0",
        users.to_str().unwrap(),
        "--out",
        doc.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("512000") && err.contains("hint:"), "{err}");
    assert!(!doc.exists(), "no half-written document is left behind");

    let lines_out = dir.path().join("big.ndjson.gz");
    let o = authmigrate(&[
        "convert",
        "--to",
        "auth0",
        users.to_str().unwrap(),
        "--out",
        lines_out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(&std::fs::read(&lines_out).unwrap()[..2], &[0x1f, 0x8b]);
}

#[test]
fn an_unknown_output_extension_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = authmigrate(&[
        "convert",
        "--to",
        "neutral",
        &fixture("auth0-export.ndjson"),
        "--out",
        dir.path().join("x.txt").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(".ndjson"));
}

#[test]
fn a_password_hash_export_is_refused_once_as_a_user_file() {
    let dir = tempfile::tempdir().unwrap();
    let hashes = fixture("auth0-password-hashes.ndjson");
    let out = dir.path().join("x.ndjson");
    let runs: [Vec<&str>; 3] = [
        vec!["validate", "--for", "auth0", &hashes],
        vec![
            "convert",
            "--to",
            "neutral",
            "--out",
            out.to_str().unwrap(),
            &hashes,
        ],
        vec![
            "import",
            "--to",
            "auth0",
            "--auth0-domain",
            "http://127.0.0.1:9",
            "--auth0-token",
            "t",
            &hashes,
        ],
    ];
    for args in runs {
        let o = authmigrate(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err.matches("password-hash export").count(),
            1,
            "one error, not one per line: {err}"
        );
        assert!(err.contains("--password-hashes"), "{err}");
    }
}

/// `n` Auth0 export lines and a password-hash export for most of them: by id, by
/// e-mail in another case (an `alt_id` that matches no user), and none at all. Lines
/// listed in `broken` are not JSON (their hash lines are still written).
fn synthetic_export(dir: &std::path::Path, n: usize, broken: &[usize]) -> (PathBuf, PathBuf) {
    let (users, hashes) = (dir.join("users.ndjson"), dir.join("hashes.ndjson"));
    let (mut u, mut h) = (String::new(), Vec::new());
    for i in 0..n {
        if broken.contains(&i) {
            u.push_str("{\"user_id\": \"auth0|broken\", \n");
        } else {
            u.push_str(&format!(
            r#"{{"user_id":"auth0|{i:024x}","email":"user.{i}@example.com","email_verified":true,"name":"User {i}","nickname":"u{i}","identities":[{{"connection":"Username-Password-Authentication","provider":"auth0","user_id":"{i:024x}","isSocial":false}}],"logins_count":{i},"user_metadata":{{"plan":"p{}"}}}}"#,
            i % 3
            ));
            u.push('\n');
        }
        let hash = format!("$2b$10${:053}", i);
        match i % 10 {
            0 => {} // no hash: unmatched
            1 => h.push(format!(
                r#"{{"_id":{{"$oid":"ffff{i:020x}"}},"alt_id":"other{i}","email":"USER.{i}@Example.COM","passwordHash":"{hash}"}}"#
            )),
            _ => h.push(format!(
                r#"{{"_id":{{"$oid":"{i:024x}"}},"email":"user.{i}@example.com","passwordHash":"{hash}"}}"#
            )),
        }
    }
    // Shuffle the hash file deterministically: the join must not rely on order.
    h.reverse();
    let half = h.len() / 2;
    h.rotate_left(half);
    std::fs::write(&users, u).unwrap();
    std::fs::write(&hashes, h.join("\n") + "\n").unwrap();
    (users, hashes)
}

fn convert_with_budget(
    users: &std::path::Path,
    hashes: &std::path::Path,
    out: &std::path::Path,
    report: &std::path::Path,
    budget: Option<&str>,
) -> (Output, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authmigrate"));
    cmd.args([
        "convert",
        "--to",
        "authgear",
        users.to_str().unwrap(),
        "--password-hashes",
        hashes.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ])
    .env_remove("RUST_LOG")
    .env_remove("AUTHMIGRATE_JOIN_MEMORY");
    if let Some(b) = budget {
        cmd.env("AUTHMIGRATE_JOIN_MEMORY", b);
    }
    let o = cmd.output().unwrap();
    let r: Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    (o, r)
}

#[test]
fn the_index_in_memory_or_on_disk_and_the_spilling_join_give_the_same_file_across_many_chunks() {
    // 8,000 lines of ~330 bytes: several 1 MiB chunks, so record indexes and line
    // numbers must be carried across chunk boundaries.
    let n = 8_000;
    let broken = [0, 1_777, 7_999];
    let dir = tempfile::tempdir().unwrap();
    let (users, hashes) = synthetic_export(dir.path(), n, &broken);
    assert!(std::fs::metadata(&users).unwrap().len() > 2_500_000);
    let mut outputs = Vec::new();
    let mut left_outs = Vec::new();
    // The default budget keeps the whole index in memory; 400,000 bytes hold its keys
    // (21 bytes an entry) but not its entries, which go to the temp file; 1 byte holds
    // nothing, and the spilling join takes over.
    for budget in [None, Some("400000"), Some("1")] {
        let out = dir.path().join(format!("out-{budget:?}.ndjson"));
        let report = dir.path().join(format!("report-{budget:?}.json"));
        let (o, r) = convert_with_budget(&users, &hashes, &out, &report, budget);
        assert_eq!(o.status.code(), Some(1), "three broken lines: {}", text(&o));
        let s = &r["summary"];
        assert_eq!(
            (
                s["total"].as_u64(),
                s["converted"].as_u64(),
                s["failed"].as_u64()
            ),
            (Some(8_000), Some(7_997), Some(3))
        );
        let p = &s["passwords"];
        // Users 0..8000 minus the broken ones; i%10==0 have no hash, i%10==1 match by e-mail only.
        let users_ok: Vec<usize> = (0..n).filter(|i| !broken.contains(i)).collect();
        let by_email = users_ok.iter().filter(|i| *i % 10 == 1).count() as u64;
        let unmatched = users_ok.iter().filter(|i| *i % 10 == 0).count() as u64;
        assert_eq!(p["by_email"].as_u64(), Some(by_email), "{budget:?}: {p}");
        assert_eq!(
            p["unmatched_users"].as_u64(),
            Some(unmatched),
            "{budget:?}: {p}"
        );
        assert_eq!(
            p["by_id"].as_u64(),
            Some(users_ok.len() as u64 - by_email - unmatched),
            "{budget:?}: {p}"
        );
        // Hash lines of the broken users (1777 and 7999: by id) are left unused.
        assert_eq!(p["unused_hashes"].as_u64(), Some(2), "{budget:?}: {p}");
        // Every tenth user has no hash: the warnings change from record to record.
        let left_out = s["left_out"].as_object().unwrap();
        let no_hash = left_out
            .iter()
            .find(|(k, _)| k.starts_with("no password hash"))
            .map(|(_, v)| v.as_u64());
        assert_eq!(no_hash, Some(Some(unmatched)), "{budget:?}: {left_out:?}");
        assert_eq!(
            left_out["`user_metadata.plan` not imported: no declared custom attribute (use --custom-attribute user_metadata.plan=NAME)"],
            7_997,
            "{budget:?}: {left_out:?}"
        );
        left_outs.push(left_out.clone());
        let failed: Vec<(u64, String)> = r["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["outcome"] == "failed")
            .map(|x| {
                (
                    x["index"].as_u64().unwrap(),
                    x["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(failed.len(), 3, "{failed:?}");
        for ((index, message), line) in failed.iter().zip([1u64, 1_778, 8_000]) {
            assert_eq!(*index, line - 1);
            assert!(
                message.starts_with(&format!("line {line}: invalid JSON")),
                "{message}"
            );
        }
        let converted = r["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["outcome"] == "converted")
            .unwrap();
        assert_eq!(converted["index"], 1, "the first good record");
        assert_eq!(converted["email"], "user.1@example.com");
        outputs.push(std::fs::read(&out).unwrap());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("users matched by id"), "{stderr}");
    }
    assert!(
        outputs[0] == outputs[1],
        "the index writes the same bytes either way"
    );
    assert!(outputs[0] == outputs[2], "both joins write the same bytes");
    // The index path transcodes; the spilling join takes the general path: same tally.
    assert_eq!(left_outs[0], left_outs[1]);
    assert_eq!(left_outs[0], left_outs[2]);
    let records: Vec<Value> = String::from_utf8(outputs[0].clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 7_997);
    // Input order, hashes attached to the right users.
    assert_eq!(records[0]["email"], "user.1@example.com");
    assert_eq!(
        records[0]["password"]["password_hash"],
        format!("$2b$10${:053}", 1)
    );
    assert_eq!(records[1]["email"], "user.2@example.com");
    assert_eq!(
        records[1]["password"]["password_hash"],
        format!("$2b$10${:053}", 2)
    );
    let user_10 = records
        .iter()
        .find(|r| r["email"] == "user.10@example.com")
        .unwrap();
    assert!(
        user_10.get("password").is_none(),
        "no hash line for user 10"
    );
}

#[test]
fn a_json_array_input_is_joined_through_the_index_too() {
    let dir = tempfile::tempdir().unwrap();
    let (users, hashes) = synthetic_export(dir.path(), 30, &[]);
    let array = dir.path().join("users.json");
    let items: Vec<Value> = lines(&users);
    std::fs::write(&array, serde_json::to_vec(&items).unwrap()).unwrap();
    let out = dir.path().join("out.ndjson");
    let report = dir.path().join("report.json");
    let (o, r) = convert_with_budget(&array, &hashes, &out, &report, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r["summary"]["passwords"]["by_id"], 24);
    assert_eq!(r["summary"]["passwords"]["by_email"], 3);
    let records = lines(&out);
    assert_eq!(records.len(), 30);
    assert_eq!(
        records[13]["password"]["password_hash"],
        format!("$2b$10${:053}", 13)
    );
}

#[test]
fn typed_custom_attributes_convert_exactly_or_are_left_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    std::fs::write(
        &input,
        "{\"email\":\"a@example.com\",\"user_metadata\":{\"age\":\"42\",\"plan\":5,\"tier\":\"Gold\"}}\n",
    )
    .unwrap();
    let out = dir.path().join("out.ndjson");
    let o = authmigrate(&[
        "convert",
        "--to",
        "authgear",
        "--out",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
        "--custom-attribute",
        "user_metadata.age=age:integer:0:150",
        "--custom-attribute",
        "user_metadata.plan=plan:string",
        "--custom-attribute",
        "user_metadata.tier=tier:enum:gold|silver",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        lines(&out),
        vec![serde_json::json!({"email": "a@example.com", "custom_attributes": {"age": 42}})]
    );
    let t = text(&o);
    assert!(t.contains("`custom_attributes.plan` from `user_metadata.plan`: a number value does not fit `string`: not a string: left out"), "{t}");
    assert!(t.contains("`custom_attributes.tier` from `user_metadata.tier`: a string value does not fit `enum:gold|silver`: not one of the values: left out"), "{t}");

    let o = authmigrate(&[
        "convert",
        "--to",
        "authgear",
        "--out",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
        "--custom-attribute",
        "user_metadata.age=age:int",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("`--custom-attribute user_metadata.age=age:int`: unknown type `int`"),
        "{}",
        text(&o)
    );
}
