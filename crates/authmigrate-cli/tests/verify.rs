//! `verify`, run as the real binary: from export files (every output and exit code),
//! and live against the in-process sandbox after a real `migrate`, before and after
//! changes made at the target through the emulator's own routes.

mod common;

use std::time::Duration;

use authmigrate_sandbox::authgear::AuthgearConfig;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use common::{Env, env, report, text};
use serde_json::{Value, json};

/// The shared harness, with the Authgear project declaring the custom attribute
/// `plan` (an undeclared one is dropped by Authgear: `verify` reports that).
async fn env_declaring_plan() -> Env {
    let sandbox = Sandbox::start(SandboxConfig {
        faults: FaultConfig {
            job_latency: Duration::from_millis(20),
            ..FaultConfig::default()
        },
        authgear: AuthgearConfig {
            custom_attributes: vec!["plan".into()],
            ..AuthgearConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, sandbox.authgear().private_key_pem()).unwrap();
    Env { sandbox, dir, key }
}

/// An Authgear export line (authgear-api.md §5 shape) of a user imported from `email`.
fn authgear_line(sub: &str, email: &str, name: &str) -> String {
    let local = email.split('@').next().unwrap();
    json!({
        "sub": sub, "email": email, "email_verified": true, "phone_number_verified": false,
        "preferred_username": local, "name": name, "nickname": local, "address": {},
        "disabled": false, "is_anonymized": false, "mfa": {}, "biometric_count": 0,
        "passkey_count": 0, "created_at": "2026-12-01T00:00:00Z",
        "identities": [{"type": "login_id", "login_id": {"key": "email", "type": "email", "value": email}}]
    })
    .to_string()
}

/// An Auth0 export line of a user.
fn auth0_line(id: &str, email: &str, name: &str) -> String {
    let local = email.split('@').next().unwrap();
    json!({
        "user_id": format!("auth0|{id}"), "email": email, "email_verified": true,
        "username": local, "name": name, "nickname": local.to_lowercase(),
        "created_at": "2026-11-01T00:00:00Z", "logins_count": 4,
        "identities": [{"provider": "auth0", "user_id": id, "connection": "Username-Password-Authentication", "isSocial": false}]
    })
    .to_string()
}

fn lines(v: &[String]) -> String {
    v.iter().map(|l| format!("{l}\n")).collect()
}

fn events(o: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_files_pass_then_exactly_the_changes_are_reported() {
    let env = env().await;
    let (source, target, rep) = (
        env.path("auth0.ndjson"),
        env.path("authgear.ndjson"),
        env.path("report.json"),
    );
    // Auth0 source: mixed-case e-mail (Authgear stores it lower-cased).
    let src: Vec<String> = vec![
        auth0_line("a1", "Ada@Example.com", "Ada"),
        auth0_line("a2", "bob@example.com", "Bob"),
        auth0_line("a3", "cy@example.com", "Cy"),
    ];
    std::fs::write(&source, lines(&src)).unwrap();
    let mut tgt = vec![
        authgear_line("g1", "ada@example.com", "Ada"),
        authgear_line("g2", "bob@example.com", "Bob"),
        authgear_line("g3", "cy@example.com", "Cy"),
        authgear_line("g4", "extra@example.com", "Extra"),
    ];
    std::fs::write(&target, lines(&tgt)).unwrap();
    let args = |rep: &std::path::Path| {
        vec![
            "verify".to_owned(),
            "--from".into(),
            "auth0".into(),
            "--to".into(),
            "authgear".into(),
            "--source-file".into(),
            source.to_str().unwrap().into(),
            "--target-file".into(),
            target.to_str().unwrap().into(),
            "--report".into(),
            rep.to_str().unwrap().into(),
        ]
    };
    let argv = args(&rep);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let o = env.run(&argv).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&rep);
    assert_eq!(
        r["summary"],
        json!({"source": 3, "target": 4, "matched": 3, "missing": 0, "different": 0, "extra": 1})
    );
    assert_eq!(r["differences"], json!([]));

    // Bob renamed at the target, Cy gone.
    tgt[1] = authgear_line("g2", "bob@example.com", "Robert");
    tgt.remove(2);
    std::fs::write(&target, lines(&tgt)).unwrap();
    let mut argv = args(&rep);
    argv.push("--json".into());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let o = env.run(&argv).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(r#"bob@example.com, name: expected "Bob", got "Robert""#),
        "{stderr}"
    );
    assert!(
        stderr.contains("cy@example.com: missing at the target"),
        "{stderr}"
    );
    let ev = events(&o);
    let diffs: Vec<&Value> = ev.iter().filter(|e| e["type"] == "difference").collect();
    assert_eq!(diffs.len(), 2, "{ev:?}");
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(
        (
            &last["data"]["matched"],
            &last["data"]["missing"],
            &last["data"]["different"],
            &last["data"]["extra"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(1))
    );
    let r = report(&rep);
    assert_eq!(
        r["differences"],
        json!([
            {"index": 1, "user": "bob@example.com", "source_id": "auth0|a2", "target_id": "g2",
             "kind": "different", "field": "name", "expected": "Bob", "got": "Robert"},
            {"index": 2, "user": "cy@example.com", "source_id": "auth0|a3", "kind": "missing"}
        ])
    );

    // With an id map, pairing follows it: Ada's mapped user is the "extra" one, whose
    // e-mail differs.
    let ids = env.path("ids.csv");
    std::fs::write(
        &ids,
        "index,source_id,email,outcome,target_id\n0,auth0|a1,ada@example.com,inserted,g4\n",
    )
    .unwrap();
    let mut argv = args(&rep);
    argv.extend(["--id-map".into(), ids.to_str().unwrap().into()]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let o = env.run(&argv).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    let ada: Vec<&Value> = r["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["user"] == "Ada@Example.com")
        .collect();
    let fields: Vec<&Value> = ada.iter().map(|d| &d["field"]).collect();
    assert_eq!(
        fields,
        [
            &json!("email"),
            &json!("username"),
            &json!("name"),
            &json!("nickname")
        ],
        "{ada:?}"
    );
    assert_eq!(ada[0]["target_id"], "g4");
    assert_eq!(r["summary"]["extra"], 1, "g1 is now the unpaired one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_usage_errors_exit_2_naming_the_file_record_and_field() {
    let env = env().await;
    let (source, target) = (env.path("auth0.ndjson"), env.path("authgear.ndjson"));
    std::fs::write(
        &source,
        lines(&[auth0_line("a1", "ada@example.com", "Ada")]),
    )
    .unwrap();
    let mut bad = json!({"sub": "g1", "email": "x@example.com", "disabled": "yes"}).to_string();
    bad.push('\n');
    std::fs::write(
        &target,
        format!("{}\n{bad}", authgear_line("g0", "ada@example.com", "Ada")),
    )
    .unwrap();
    let (s, t) = (source.to_str().unwrap(), target.to_str().unwrap());
    let o = env
        .run(&[
            "verify",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--source-file",
            s,
            "--target-file",
            t,
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("authgear.ndjson`, record 1") && stderr.contains("`disabled`"),
        "{stderr}"
    );
    // Same provider on both sides needs two files.
    let o = env
        .run(&[
            "verify",
            "--from",
            "auth0",
            "--to",
            "auth0",
            "--source-file",
            s,
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--target-file"));
    // A malformed id map names its column.
    let ids = env.path("ids.csv");
    std::fs::write(&ids, "a,b\n1,2\n").unwrap();
    let o = env
        .run(&[
            "verify",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--source-file",
            s,
            "--target-file",
            s,
            "--id-map",
            ids.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no `source_id` column"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_real_migration_verify_passes_then_finds_exactly_the_target_changes() {
    let env = env_declaring_plan().await;
    let users = env.path("users.ndjson");
    env.run(&[
        "generate",
        "--count",
        "10",
        "--seed",
        "3",
        "--cost",
        "4",
        "--out",
        users.to_str().unwrap(),
    ])
    .await;
    let mut body = std::fs::read_to_string(&users).unwrap();
    body.push_str(
        &json!({
            "email": "Mixed.Case@Example.com", "email_verified": true, "username": "mixed",
            "given_name": "Mixed", "family_name": "Case", "name": "Mixed Case",
            "picture": "https://example.com/p.png", "blocked": true,
            "user_metadata": {"plan": "pro", "colour": "teal"}
        })
        .to_string(),
    );
    body.push('\n');
    std::fs::write(&users, body).unwrap();
    let o = env
        .run(&["import", "--to", "auth0", users.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ids = env.path("ids.csv");
    let o = env
        .run(&[
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--custom-attribute",
            "user_metadata.plan=plan",
            "--id-map",
            ids.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let authgear = env.sandbox.authgear();
    assert_eq!(authgear.users().len(), 11);

    let rep = env.path("verify.json");
    let verify = |extra: &[&str]| {
        let mut v = vec![
            "verify",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--custom-attribute",
            "user_metadata.plan=plan",
            "--id-map",
            ids.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let argv = verify(&[]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let exports = authgear.exports_created();
    let o = env.run(&argv).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        authgear.exports_created(),
        exports + 1,
        "the target was exported"
    );
    let r = report(&rep);
    assert_eq!(
        r["summary"],
        json!({"source": 11, "target": 11, "matched": 11, "missing": 0, "different": 0, "extra": 0}),
        "{}",
        text(&o)
    );

    // At the target: one user deleted, one renamed, one added.
    let gone = env.path("gone.txt");
    std::fs::write(&gone, "user_04@example.com\n").unwrap();
    let o = env
        .run(&[
            "delete",
            "--from",
            "authgear",
            "--emails",
            gone.to_str().unwrap(),
            "--yes",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let renamed = env.path("renamed.json");
    std::fs::write(
        &renamed,
        json!({"identifier": "email", "upsert": true,
               "records": [{"email": "mixed.case@example.com", "name": "Someone Else"}]})
        .to_string(),
    )
    .unwrap();
    let o = env
        .run(&[
            "import",
            "--to",
            "authgear",
            "--upsert",
            renamed.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    authgear
        .seed_user(json!({"email": "newcomer@example.com"}))
        .unwrap();

    let o = env.run(&argv).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    assert_eq!(
        r["summary"],
        json!({"source": 11, "target": 11, "matched": 9, "missing": 1, "different": 1, "extra": 1})
    );
    let d = r["differences"].as_array().unwrap();
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0]["user"], "user_04@example.com");
    assert_eq!(d[0]["kind"], "missing");
    assert!(
        d[0]["reason"].as_str().unwrap().contains("id map"),
        "{:?}",
        d[0]
    );
    assert_eq!(d[1]["user"], "mixed.case@example.com");
    assert_eq!(
        (&d[1]["field"], &d[1]["expected"], &d[1]["got"]),
        (&json!("name"), &json!("Mixed Case"), &json!("Someone Else"))
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr
            .contains(r#"mixed.case@example.com, name: expected "Mixed Case", got "Someone Else""#),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authgear_to_auth0_accepts_the_profile_fields_auth0_generates() {
    let env = env().await;
    let authgear = env.sandbox.authgear();
    // A user with no name, nickname or picture: Auth0 fills them on import.
    authgear
        .seed_user(json!({"email": "bare@example.com", "email_verified": true}))
        .unwrap();
    authgear
        .seed_user(
            json!({"email": "full@example.com", "name": "Full Name", "nickname": "fully",
                          "given_name": "Full", "middle_name": "M"}),
        )
        .unwrap();
    let o = env
        .run(&["migrate", "--from", "authgear", "--to", "auth0"])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let bare = env
        .sandbox
        .auth0()
        .user_by_email("bare@example.com")
        .unwrap();
    assert_eq!(bare["name"], "bare@example.com", "Auth0 generated the name");
    let rep = env.path("verify.json");
    let argv = [
        "verify",
        "--from",
        "authgear",
        "--to",
        "auth0",
        "--report",
        rep.to_str().unwrap(),
    ];
    let o = env.run(&argv).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report(&rep)["summary"]["matched"], 2);
    // `middle_name` cannot be held by Auth0: left out by design, not a difference.
    // A user removed from the Auth0 tenant is missing.
    let id = env
        .sandbox
        .auth0()
        .user_by_email("full@example.com")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = env.path("gone.txt");
    std::fs::write(&gone, "full@example.com\n").unwrap();
    let o = env
        .run(&[
            "delete",
            "--from",
            "auth0",
            "--emails",
            gone.to_str().unwrap(),
            "--yes",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        env.sandbox
            .auth0()
            .user_by_email("full@example.com")
            .is_none(),
        "{id} deleted"
    );
    let o = env.run(&argv).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    assert_eq!(
        r["differences"],
        json!([{"index": 1, "user": "full@example.com", "source_id": r["differences"][0]["source_id"], "kind": "missing"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_both_password_hash_exports_a_password_not_carried_is_a_difference() {
    let env = env().await;
    let users = env.path("users.ndjson");
    env.run(&[
        "generate",
        "--count",
        "3",
        "--seed",
        "9",
        "--out",
        users.to_str().unwrap(),
    ])
    .await;
    let o = env
        .run(&["import", "--to", "auth0", users.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let export = env.path("auth0.ndjson");
    let o = env
        .run(&[
            "export",
            "--from",
            "auth0",
            "--out",
            export.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let url = format!(
        "{}/_sandbox/auth0/password-hashes?connection=Username-Password-Authentication",
        env.sandbox.base_url()
    );
    let hashes_text = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert_eq!(hashes_text.lines().count(), 3);
    let (hashes, fewer) = (env.path("hashes.ndjson"), env.path("fewer.ndjson"));
    std::fs::write(&hashes, &hashes_text).unwrap();
    // The "target" tenant lost user_02's password.
    let kept: String = hashes_text
        .lines()
        .filter(|l| !l.contains("user_02@"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&fewer, kept).unwrap();
    let rep = env.path("verify.json");
    let run = |target_hashes: &std::path::Path| {
        [
            "verify",
            "--from",
            "auth0",
            "--to",
            "auth0",
            "--source-file",
            export.to_str().unwrap(),
            "--target-file",
            export.to_str().unwrap(),
            "--password-hashes",
            hashes.to_str().unwrap(),
            "--target-password-hashes",
            target_hashes.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ]
        .map(str::to_owned)
    };
    let argv = run(&hashes);
    let o = env
        .run(&argv.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let argv = run(&fewer);
    let o = env
        .run(&argv.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    let d = r["differences"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (
            &d[0]["user"],
            &d[0]["field"],
            &d[0]["expected"],
            &d[0]["got"]
        ),
        (
            &json!("user_02@example.com"),
            &json!("password"),
            &json!("carried"),
            &Value::Null
        )
    );
    let all = format!("{}{}", text(&o), std::fs::read_to_string(&rep).unwrap());
    assert!(!all.contains("$2b$"), "no hash in any output");
    // Only an Auth0 target has a password-hash export.
    let o = env
        .run(&[
            "verify",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--source-file",
            export.to_str().unwrap(),
            "--target-file",
            export.to_str().unwrap(),
            "--target-password-hashes",
            hashes.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// `n` generated users (passwords = usernames, cost 10 so Auth0 keeps the hashes)
/// imported into the Auth0 emulator, user_01 enrolled in TOTP; returns the users file.
async fn auth0_users(env: &Env, n: u32) -> std::path::PathBuf {
    let users = env.path("users.ndjson");
    let o = env
        .run(&[
            "generate",
            "--count",
            &n.to_string(),
            "--seed",
            "7",
            "--out",
            users.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let body: String = std::fs::read_to_string(&users)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if v["email"] == "user_01@example.com" {
                v["mfa"] = json!([{ "totp": { "secret": "JBSWY3DPEHPK3PXP" } }]);
            }
            format!("{v}\n")
        })
        .collect();
    std::fs::write(&users, body).unwrap();
    let o = env
        .run(&["import", "--to", "auth0", users.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    users
}

/// One of the emulator's support-ticket exports, written to `name` in the test dir.
async fn sandbox_export(env: &Env, what: &str, name: &str) -> std::path::PathBuf {
    let url = format!(
        "{}/_sandbox/auth0/{what}?connection=Username-Password-Authentication",
        env.sandbox.base_url()
    );
    let path = env.path(name);
    std::fs::write(
        &path,
        reqwest::get(url).await.unwrap().bytes().await.unwrap(),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_user_without_totp_at_the_target_is_an_mfa_difference_unless_skipped() {
    let env = env().await;
    auth0_users(&env, 2).await;
    let mfa = sandbox_export(&env, "mfa-secrets", "mfa.ndjson").await;
    // The TOTP secret is left behind.
    let o = env
        .run(&[
            "migrate", "--from", "auth0", "--to", "authgear", "--skip", "mfa",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        env.sandbox
            .authgear()
            .user_by_login_id("user_01@example.com")
            .unwrap()
            .totp_count,
        0
    );
    let rep = env.path("verify.json");
    let verify = |extra: &[&str]| {
        let mut v = vec![
            "verify",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--mfa-secrets",
            mfa.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let argv = verify(&[]);
    let o = env
        .run(&argv.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    assert_eq!(
        r["differences"],
        json!([{"index": 0, "user": "user_01@example.com",
                "source_id": r["differences"][0]["source_id"],
                "target_id": r["differences"][0]["target_id"],
                "kind": "different", "field": "mfa", "expected": ["totp"], "got": null}])
    );
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains(r#"user_01@example.com, mfa: expected ["totp"], got (none)"#),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("JBSWY3DP"), "no secret in the output");
    // `--skip mfa`, as given to `migrate`: not compared.
    let argv = verify(&["--skip", "mfa"]);
    let o = env
        .run(&argv.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report(&rep)["summary"]["matched"], 2);
    // The MFA export is Auth0's.
    let o = env
        .run(&[
            "verify",
            "--from",
            "authgear",
            "--to",
            "auth0",
            "--mfa-secrets",
            mfa.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_auth0_scope_stops_verify_naming_the_scope_and_the_skip() {
    let mut auth0 = authmigrate_sandbox::auth0::Auth0Config::default();
    auth0.scopes.retain(|s| s != "read:organizations");
    let env = common::env_with(SandboxConfig {
        auth0,
        ..SandboxConfig::default()
    })
    .await;
    auth0_users(&env, 1).await;
    env.sandbox.auth0().seed_organization("acme", "Acme");
    let o = env
        .run(&[
            "migrate", "--from", "auth0", "--to", "authgear", "--skip", "groups",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = env
        .run(&["verify", "--from", "auth0", "--to", "authgear"])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("403"), "{stderr}");
    assert!(stderr.contains("read:organizations"), "{stderr}");
    assert!(stderr.contains("--skip groups"), "{stderr}");
    let o = env
        .run(&[
            "verify", "--from", "auth0", "--to", "authgear", "--skip", "groups",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_check_reports_each_refused_login_as_a_difference() {
    let env = env().await;
    auth0_users(&env, 3).await;
    // Without `--password-hashes` no password reaches Authgear: nobody can log in.
    let o = env
        .run(&["migrate", "--from", "auth0", "--to", "authgear"])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rep = env.path("verify.json");
    let o = env
        .run(&[
            "--json",
            "verify",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--login-check",
            "2",
            "--report",
            rep.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    assert_eq!(
        r["summary"],
        json!({"source": 3, "target": 3, "matched": 1, "missing": 0, "different": 2,
               "extra": 0, "login": {"checked": 2, "failed": 2}})
    );
    let d = r["differences"].as_array().unwrap();
    assert_eq!(d.len(), 2, "{d:?}");
    for d in d {
        assert_eq!(d["field"], "login", "{d}");
        assert_eq!(d["expected"], "logs in", "{d}");
        assert!(
            d["got"].as_str().unwrap().contains("InvalidCredentials"),
            "{d}"
        );
    }
    let ev = events(&o);
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["data"]["login"], json!({"checked": 2, "failed": 2}));
    assert_eq!(last["data"]["passed"], false);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("login check: 2 sampled users"),
        "{}",
        text(&o)
    );
    // Only an Authgear target can be checked.
    let o = env
        .run(&[
            "verify",
            "--from",
            "authgear",
            "--to",
            "auth0",
            "--login-check",
            "1",
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--to authgear"),
        "{}",
        text(&o)
    );
}
