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
