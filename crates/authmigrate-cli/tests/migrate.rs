//! `migrate` in both directions, and `demo`, run as the real binary against an
//! in-process sandbox, with field-by-field assertions and password logins.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{env, report, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth0_to_authgear_keeps_fields_and_passwords_and_writes_the_id_map() {
    let env = env().await;
    // Users in the Auth0 tenant: generated ones plus one with a full profile, with
    // cost-10 `$2b$` hashes (what Auth0's `password_hash` and its hash export hold).
    let users = env.path("users.ndjson");
    env.run(&[
        "generate",
        "--count",
        "12",
        "--seed",
        "5",
        "--out",
        users.to_str().unwrap(),
    ])
    .await;
    let mut body = std::fs::read_to_string(&users).unwrap();
    let hash = bcrypt::hash_with_salt("Sekret-1", 10, [7; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    body.push_str(
        &serde_json::json!({
            "email": "Mixed.Case@Example.com", "email_verified": true, "username": "mixed",
            "given_name": "Mixed", "family_name": "Case", "name": "Mixed Case", "nickname": "mc",
            "picture": "https://example.com/p.png", "blocked": true,
            "user_metadata": {"plan": "pro", "colour": "teal"},
            "password": {"algorithm": "bcrypt", "hash": {"value": hash}}
        })
        .to_string(),
    );
    body.push('\n');
    std::fs::write(&users, body).unwrap();
    let o = env
        .run(&["import", "--to", "auth0", users.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // The support-ticket password export (the sandbox serves it).
    let hashes = env.path("hashes.ndjson");
    let url = format!(
        "{}/_sandbox/auth0/password-hashes?connection=Username-Password-Authentication",
        env.sandbox.base_url()
    );
    std::fs::write(
        &hashes,
        reqwest::get(url).await.unwrap().bytes().await.unwrap(),
    )
    .unwrap();

    let (report_path, ids, state) = (
        env.path("report.json"),
        env.path("ids.csv"),
        env.path("run.state"),
    );
    let o = env
        .run(&[
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--password-hashes",
            hashes.to_str().unwrap(),
            "--custom-attribute",
            "user_metadata.plan=plan",
            "--report",
            report_path.to_str().unwrap(),
            "--id-map",
            ids.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&report_path);
    assert_eq!(r["summary"]["inserted"], 13);

    let authgear = env.sandbox.authgear();
    assert_eq!(authgear.users().len(), 13);
    for i in 1..=12 {
        let u = format!("user_{i:02}");
        assert!(
            authgear.check_password(&format!("{u}@example.com"), &u),
            "{u} logs in with its original password"
        );
    }
    // Field by field; the e-mail was lower-cased (Authgear's lookups are exact).
    assert!(authgear.check_password("mixed.case@example.com", "Sekret-1"));
    let m = authgear
        .users()
        .into_iter()
        .find(|u| u.email.as_deref() == Some("mixed.case@example.com"))
        .unwrap();
    assert_eq!(m.preferred_username.as_deref(), Some("mixed"));
    assert!(m.email_verified);
    assert!(m.disabled, "Auth0 `blocked` becomes Authgear `disabled`");
    assert_eq!(m.standard_attributes["given_name"], "Mixed");
    assert_eq!(m.standard_attributes["family_name"], "Case");
    assert_eq!(m.standard_attributes["nickname"], "mc");
    assert_eq!(
        m.standard_attributes["picture"],
        "https://example.com/p.png"
    );
    // Metadata without a declared custom attribute is reported, not dropped silently.
    let rec = r["records"]
        .as_array()
        .unwrap()
        .iter()
        // Auth0 keeps e-mails lower-cased, so its export carries the lower-cased one.
        .find(|x| x["email"] == "mixed.case@example.com")
        .unwrap()
        .clone();
    assert!(rec["warnings"].to_string().contains("colour"), "{rec}");

    // The id map: source Auth0 id → new Authgear id, for every user.
    let map = std::fs::read_to_string(&ids).unwrap();
    let rows: Vec<&str> = map.lines().collect();
    assert_eq!(rows[0], "index,source_id,email,outcome,target_id");
    assert_eq!(rows.len(), 14);
    let authgear_ids: Vec<String> = authgear.users().into_iter().map(|u| u.id).collect();
    for row in &rows[1..] {
        let f: Vec<&str> = row.split(',').collect();
        assert!(f[1].starts_with("auth0|"), "{row}");
        assert_eq!(f[3], "inserted");
        assert!(authgear_ids.iter().any(|id| id == f[4]), "{row}");
    }

    // Re-running with the same state resumes: nothing is submitted again.
    let jobs = authgear.jobs_created();
    let o = env
        .run(&[
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--password-hashes",
            hashes.to_str().unwrap(),
            "--custom-attribute",
            "user_metadata.plan=plan",
            "--state",
            state.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        authgear.jobs_created(),
        jobs,
        "finished work is never resubmitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authgear_to_auth0_arrives_without_passwords_and_gets_tickets() {
    let env = env().await;
    let users = env.path("users.json");
    env.run(&[
        "generate",
        "--count",
        "12",
        "--cost",
        "4",
        "--format",
        "authgear",
        "--out",
        users.to_str().unwrap(),
    ])
    .await;
    let o = env
        .run(&["import", "--to", "authgear", users.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let (report_path, tickets) = (env.path("report.json"), env.path("tickets.csv"));
    let o = env
        .run(&[
            "migrate",
            "--from",
            "authgear",
            "--to",
            "auth0",
            "--report",
            report_path.to_str().unwrap(),
            "--password-reset-tickets",
            tickets.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("never exports password hashes"),
        "{}",
        text(&o)
    );

    let auth0 = env.sandbox.auth0();
    let held = auth0.users();
    assert_eq!(held.len(), 12);
    let u = auth0
        .user_by_email("user_03@example.com")
        .expect("migrated");
    assert_eq!(u["username"], "user_03");
    assert_eq!(u["nickname"], "user_03");
    assert_eq!(u["email_verified"], true);
    assert!(
        !auth0.check_password("user_03@example.com", "user_03"),
        "no password came across"
    );

    // Reported per user, and every one got a ticket in a private file.
    let r = report(&report_path);
    assert!(
        r["records"][0]["warnings"]
            .to_string()
            .contains("no password hash"),
        "{}",
        r["records"][0]
    );
    let text_tickets = std::fs::read_to_string(&tickets).unwrap();
    assert_eq!(text_tickets.lines().count(), 12);
    assert!(
        text_tickets
            .lines()
            .all(|l| l.contains("@example.com,http")),
        "{text_tickets}"
    );
    assert_eq!(
        std::fs::metadata(&tickets).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(auth0.tickets().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tells_the_whole_story() {
    let env = env().await;
    // 12 users: positions 0 and 10 have TOTP; every role and both organizations
    // have members (see commands/demo_tenant.rs).
    let o = env.run(&["--json", "demo", "--count", "12"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "summary");
    let d = &last["data"];
    assert_eq!(d["logins_ok"], 12);
    assert_eq!(d["auth0_users"], 12);
    assert_eq!(d["authgear_users"], 12);
    assert_eq!(d["roles_created"], 3);
    assert_eq!(d["users_with_roles_ok"], 12);
    assert_eq!(d["groups_created"], 2);
    assert_eq!(d["users_with_groups_ok"], 12);
    assert_eq!(d["totp_users"], 2);
    assert_eq!(d["totp_logins_ok"], 2);
    assert_eq!(d["totp_refused_without_code"], 2);
    assert_eq!(d["passed"], true);
    let out = text(&o);
    for line in [
        "ok   passwords: 12/12 users log in at Authgear with their original password",
        // viewer: k % 4 != 3 (9), support: k % 5 == 0 or support in acme (k % 8 == 0):
        // everyone but k = 3, 7, 11 holds a role.
        "ok   roles: 3 created in Authgear, 12/12 users hold their roles (9 with at least one)",
        // acme: even k (6), globex: k % 3 == 0 (4; 0 and 6 are in both).
        "ok   groups: 2 created in Authgear from Auth0 organizations, 12/12 users in their groups (8 in at least one)",
        "ok   mfa: 2/2 TOTP users log in with password + code (2 refused without a code)",
        "not carried: role `admin` (key `admin`): Authgear roles hold no permissions",
        "mfa: 2 users with a TOTP secret",
    ] {
        assert!(out.contains(line), "missing `{line}` in:\n{out}");
    }
    assert!(!out.contains("FAIL"), "{out}");
}
