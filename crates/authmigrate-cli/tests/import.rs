//! `import` and `sandbox`-facing behaviour, run as the real binary against an
//! in-process sandbox on 127.0.0.1.

mod common;

use common::{env, report, text};
use serde_json::Value;

/// Every index from 0 to n-1 exactly once.
fn assert_every_index_once(report: &Value, n: u64) {
    let mut seen: Vec<u64> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
    assert_eq!(report["summary"]["total"], n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth0_import_reports_every_record_and_users_log_in() {
    let env = env().await;
    let users = env.path("users.ndjson");
    let o = env
        .run(&[
            "generate",
            "--count",
            "40",
            "--cost",
            "4",
            "--seed",
            "9",
            "--out",
            users.to_str().unwrap(),
        ])
        .await;
    assert!(o.status.success(), "{}", text(&o));
    // Append bad records: a broken line, a record without e-mail, a duplicate of user_01.
    let mut body = std::fs::read_to_string(&users).unwrap();
    body.push_str("{not json\n");
    body.push_str("{\"username\":\"nomail\"}\n");
    body.push_str("{\"email\":\"user_01@example.com\",\"username\":\"again\"}\n");
    std::fs::write(&users, body).unwrap();

    let report_path = env.path("report.json");
    let o = env
        .run(&[
            "import",
            "--to",
            "auth0",
            users.to_str().unwrap(),
            "--report",
            report_path.to_str().unwrap(),
        ])
        .await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "some records failed: {}",
        text(&o)
    );
    let r = report(&report_path);
    assert_every_index_once(&r, 43);
    assert_eq!(r["summary"]["inserted"], 40);
    assert_eq!(r["summary"]["failed"], 3);
    let records = r["records"].as_array().unwrap();
    assert_eq!(records[40]["outcome"], "failed");
    assert_eq!(records[40]["code"], "INVALID_RECORD");
    assert_eq!(records[41]["code"], "MISSING_EMAIL");
    // The same e-mail twice in the input: failed before sending, naming the first.
    assert_eq!(records[42]["outcome"], "failed");
    assert_eq!(records[42]["code"], "DUPLICATE_IN_INPUT", "{}", records[42]);
    assert!(
        records[42]["message"]
            .as_str()
            .unwrap()
            .contains("same e-mail as record 0"),
        "{}",
        records[42]
    );
    assert_eq!(
        records[0]["outcome"], "inserted",
        "the first occurrence is imported"
    );

    // Importing the same file again without --upsert: every user exists already.
    let o = env
        .run(&[
            "import",
            "--to",
            "auth0",
            users.to_str().unwrap(),
            "--report",
            report_path.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let again = report(&report_path);
    assert_eq!(again["summary"]["inserted"], 0);
    assert_eq!(again["summary"]["failed"], 43);

    // What the emulator holds, and that the original passwords log in.
    let auth0 = env.sandbox.auth0();
    assert_eq!(auth0.users().len(), 40);
    assert!(auth0.check_password("user_07@example.com", "user_07"));
    assert!(!auth0.check_password("user_07@example.com", "user_08"));
    assert_eq!(
        auth0.completion_emails_requested(),
        0,
        "completion e-mails are off by default"
    );
    // Report carries no hashes.
    assert!(
        !std::fs::read_to_string(&report_path)
            .unwrap()
            .contains("$2b$")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authgear_import_then_reimport_is_all_skipped_and_upsert_updates() {
    let env = env().await;
    let users = env.path("users.json");
    let o = env
        .run(&[
            "generate",
            "--count",
            "25",
            "--cost",
            "4",
            "--format",
            "authgear",
            "--out",
            users.to_str().unwrap(),
        ])
        .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = env
        .run(&[
            "--json",
            "import",
            "--to",
            "authgear",
            users.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let events: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["data"]["summary"]["inserted"], 25);
    assert_eq!(events.iter().filter(|e| e["type"] == "record").count(), 25);

    let authgear = env.sandbox.authgear();
    assert_eq!(authgear.users().len(), 25);
    assert!(authgear.check_password("user_25@example.com", "user_25"));

    let report_path = env.path("again.json");
    let o = env
        .run(&[
            "import",
            "--to",
            "authgear",
            users.to_str().unwrap(),
            "--report",
            report_path.to_str().unwrap(),
        ])
        .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "skipped because they exist is success: {}",
        text(&o)
    );
    let r = report(&report_path);
    assert_eq!(r["summary"]["skipped"], 25);
    assert!(
        r["records"][0]["warnings"]
            .to_string()
            .contains("skipping because upsert = false and user exists")
    );

    let o = env
        .run(&[
            "import",
            "--to",
            "authgear",
            "--upsert",
            users.to_str().unwrap(),
            "--report",
            report_path.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report(&report_path)["summary"]["updated"], 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_sends_nothing_and_shows_the_plan() {
    let env = env().await;
    let users = env.path("users.json");
    env.run(&[
        "generate",
        "--count",
        "30",
        "--cost",
        "4",
        "--format",
        "auth0",
        "--out",
        users.to_str().unwrap(),
    ])
    .await;
    let o = env
        .run(&[
            "--json",
            "import",
            "--to",
            "auth0",
            "--dry-run",
            users.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("\"chunk_planned\""), "{stdout}");
    assert_eq!(env.sandbox.auth0().jobs_created(), 0);
    assert!(env.sandbox.auth0().users().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_exit_2_before_anything_is_sent() {
    let env = env().await;
    let users = env.path("users.ndjson");
    env.run(&[
        "generate",
        "--count",
        "2",
        "--cost",
        "4",
        "--out",
        users.to_str().unwrap(),
    ])
    .await;

    // Plain http to a non-loopback host is refused.
    let o = env
        .run(&[
            "import",
            "--to",
            "auth0",
            "--auth0-domain",
            "http://example.com",
            users.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("http"),
        "{}",
        text(&o)
    );

    // A wrong Authgear key id: 403, explained.
    let o = env
        .run(&[
            "import",
            "--to",
            "authgear",
            "--authgear-key-id",
            "not-the-key",
            users.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(err.contains("kid") || err.contains("key id"), "{err}");
    assert_eq!(env.sandbox.authgear().jobs_created(), 0);

    // An Auth0 connection that does not exist.
    let o = env
        .run(&[
            "import",
            "--to",
            "auth0",
            "--connection",
            "Nope",
            users.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Nope"),
        "{}",
        text(&o)
    );
    assert_eq!(env.sandbox.auth0().jobs_created(), 0);

    // A truncated input file is refused before anything is sent.
    let broken = env.path("broken.json");
    std::fs::write(&broken, r#"[{"email":"a@example.com"},{"email":"b@exa"#).unwrap();
    let o = env
        .run(&["import", "--to", "auth0", broken.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("broken.json"),
        "{}",
        text(&o)
    );
    assert_eq!(env.sandbox.auth0().jobs_created(), 0);
}
