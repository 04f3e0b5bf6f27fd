//! `migrate --from auth0 --to authgear` carries roles, organizations → groups and
//! memberships (issue 13), run as the real binary against the in-process sandbox,
//! asserting what the Authgear emulator holds afterwards.

mod common;

use std::process::Command;

use common::{Env, env, text};

/// Six Auth0 users `auth0|u01…u06`, seven roles (one with permissions), and the
/// organization `acme` (u01, u02; u02 is `editor` in it only).
async fn seeded() -> Env {
    let env = env().await;
    let users = env.path("users.ndjson");
    let body: String = (1..=6)
        .map(|i| format!("{{\"source_id\":\"auth0|u{i:02}\",\"email\":\"u{i:02}@example.com\"}}\n"))
        .collect();
    std::fs::write(&users, body).unwrap();
    let o = env
        .run(&["import", "--to", "auth0", users.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let a = env.sandbox.auth0();
    a.seed_resource_server(
        "https://api.example.com/",
        "API",
        &[("read:things", "Read")],
    );
    let admin = a.seed_role(
        "Admin",
        "Administrators",
        &[("https://api.example.com/", "read:things")],
    );
    a.seed_role_users(&admin, &["auth0|u01"]);
    let viewer = a.seed_role("Billing Viewer", "Sees invoices", &[]);
    a.seed_role_users(&viewer, &["auth0|u01", "auth0|u03"]);
    let editor = a.seed_role("editor", "", &[]);
    for i in 4..=7 {
        a.seed_role(&format!("R{i}"), "", &[]);
    }
    let org = a.seed_organization("acme", "Acme Inc");
    a.seed_org_members(&org, &["auth0|u01", "auth0|u02"]);
    a.seed_org_member_roles(&org, "auth0|u02", &[&editor]);
    env
}

fn user(env: &Env, email: &str) -> (Vec<String>, Vec<String>) {
    let u = env
        .sandbox
        .authgear()
        .user_by_login_id(email)
        .unwrap_or_else(|| panic!("{email} at authgear"));
    let (mut r, mut g) = (u.roles, u.groups);
    r.sort();
    g.sort();
    (r, g)
}

const ALL_ROLES: [&str; 7] = ["admin", "billing_viewer", "editor", "r4", "r5", "r6", "r7"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_groups_and_memberships_reach_authgear_and_a_dry_run_writes_nothing() {
    let env = seeded().await;
    let work = env.path("work");
    let w = work.to_str().unwrap();
    let o = env
        .run(&[
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--work-dir",
            w,
            "--dry-run",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("would create 7"), "{out}");
    assert!(env.sandbox.authgear().role_keys().is_empty(), "dry run");
    assert!(env.sandbox.authgear().groups().is_empty(), "dry run");
    assert!(env.sandbox.authgear().users().is_empty(), "dry run");

    let o = env
        .run(&[
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--work-dir",
            w,
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    let ag = env.sandbox.authgear();
    assert_eq!(ag.role_keys(), ALL_ROLES);
    assert_eq!(ag.groups(), [("acme".to_owned(), Vec::<String>::new())]);
    assert_eq!(
        user(&env, "u01@example.com"),
        (
            vec!["admin".into(), "billing_viewer".into()],
            vec!["acme".into()]
        )
    );
    assert_eq!(
        user(&env, "u02@example.com"),
        (vec!["editor".into()], vec!["acme".into()])
    );
    assert_eq!(
        user(&env, "u03@example.com"),
        (vec!["billing_viewer".into()], vec![])
    );
    assert_eq!(user(&env, "u04@example.com"), (vec![], vec![]));
    // What Authgear cannot hold is reported.
    assert!(
        out.contains("role `Admin` (key `admin`): Authgear roles hold no permissions: read:things"),
        "{out}"
    );
    assert!(
        out.contains("1 member(s) of `acme` held role `editor`"),
        "{out}"
    );
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("tenant.json")).unwrap()).unwrap();
    assert_eq!(plan["summary"]["roles"]["created"], 7);
    assert_eq!(plan["summary"]["groups"]["created"], 1);
    assert_eq!(plan["summary"]["roles"]["assignments"], 4);

    // A second migration into the same project reuses the keys.
    let o = env
        .run(&[
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--work-dir",
            w,
        ])
        .await;
    assert!(text(&o).contains("created 0, reused 7"), "{}", text(&o));
    assert_eq!(ag.role_keys(), ALL_ROLES);
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_roles_carries_only_the_groups() {
    // `--skip` takes a comma-separated list.
    let env = seeded().await;
    let w = env.path("work");
    let o = env
        .run(&[
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--work-dir",
            w.to_str().unwrap(),
            "--skip",
            "roles,mfa",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ag = env.sandbox.authgear();
    assert!(ag.role_keys().is_empty());
    assert_eq!(ag.groups().len(), 1);
    assert_eq!(user(&env, "u01@example.com"), (vec![], vec!["acme".into()]));
    assert_eq!(user(&env, "u02@example.com"), (vec![], vec!["acme".into()]));
    assert!(
        text(&o).contains("not carried: 1 organization member role"),
        "{}",
        text(&o)
    );
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_role_creation_then_a_rerun_creates_every_role_once() {
    let env = seeded().await;
    let (work, state) = (env.path("work"), env.path("run.state"));
    let args = [
        "migrate",
        "--from",
        "auth0",
        "--to",
        "authgear",
        "--work-dir",
        work.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authmigrate"));
    cmd.args(args)
        .current_dir(env.dir.path())
        .env_remove("RUST_LOG");
    for (k, v) in env.sandbox.env_vars() {
        cmd.env(k, v);
    }
    cmd.env("AUTHGEAR_PRIVATE_KEY_FILE", &env.key)
        .env("AUTHMIGRATE_TEST_ABORT_AT", "tenant-create:1");
    let o = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "aborted: {}", text(&o));
    let ag = env.sandbox.authgear();
    assert_eq!(
        ag.role_keys().len(),
        5,
        "the first request of five went through"
    );
    assert!(ag.users().is_empty());

    let o = env.run(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(ag.role_keys(), ALL_ROLES, "every role once");
    assert!(
        text(&o).contains("resuming the tenant step"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("created 7, reused 0"), "{}", text(&o));
    assert_eq!(
        user(&env, "u02@example.com"),
        (vec!["editor".into()], vec!["acme".into()])
    );
    env.sandbox.shutdown().await;
}

/// RFC 4648 base32 (no padding) to bytes.
fn base32(s: &str) -> Vec<u8> {
    let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32"),
        };
        bits = (bits << 5) | u32::from(v);
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_user_logs_in_at_authgear_with_password_and_totp() {
    let env = env().await;
    const SECRET: &str = "JBSWY3DPEHPK3PXP";
    let hash = bcrypt::hash_with_salt("Sekret-1", 10, [9; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    let users = env.path("users.ndjson");
    let rows = [
        serde_json::json!({"source_id": "auth0|m1", "email": "m1@example.com",
            "password": {"algorithm": "bcrypt", "hash": {"value": hash}},
            "mfa": [{"totp": {"secret": SECRET}}]}),
        serde_json::json!({"source_id": "auth0|m2", "email": "m2@example.com",
            "password": {"algorithm": "bcrypt", "hash": {"value": hash}}}),
    ];
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&users, body).unwrap();
    let o = env
        .run(&["import", "--to", "auth0", users.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        env.sandbox
            .auth0()
            .seed_recovery_code("auth0|m1", "RECOVERY-CODE-1")
    );
    // The support-ticket exports (the sandbox serves them).
    let get = |what: &str| {
        let url = format!(
            "{}/_sandbox/auth0/{what}?connection=Username-Password-Authentication",
            env.sandbox.base_url()
        );
        async move { reqwest::get(url).await.unwrap().bytes().await.unwrap() }
    };
    let (hashes, mfa) = (env.path("hashes.ndjson"), env.path("mfa.ndjson"));
    std::fs::write(&hashes, get("password-hashes").await).unwrap();
    std::fs::write(&mfa, get("mfa-secrets").await).unwrap();
    let w = env.path("work");
    let o = env
        .run(&[
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--work-dir",
            w.to_str().unwrap(),
            "--password-hashes",
            hashes.to_str().unwrap(),
            "--mfa-secrets",
            mfa.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("mfa: 1 users with a TOTP secret"), "{out}");
    assert!(out.contains("not carried: 1 recovery-code rows"), "{out}");
    assert!(
        out.contains("mfa: 1 users carry their TOTP secret"),
        "{out}"
    );
    assert!(!out.contains(SECRET), "the secret never reaches the output");

    let login = |body: serde_json::Value| {
        let url = format!("{}/_sandbox/authgear/login", env.sandbox.base_url());
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (s, v) =
        login(serde_json::json!({"login_id": "m1@example.com", "password": "Sekret-1"})).await;
    assert_eq!(s, 401, "{v}");
    assert!(v.to_string().contains("TOTPRequired"), "{v}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let code = authmigrate_sandbox::auth0::mfa::totp_code(&base32(SECRET), now);
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    let (s, _) = login(
        serde_json::json!({"login_id": "m1@example.com", "password": "Sekret-1", "totp": wrong}),
    )
    .await;
    assert_eq!(s, 401, "a wrong code is refused");
    let (s, v) = login(
        serde_json::json!({"login_id": "m1@example.com", "password": "Sekret-1", "totp": code}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) =
        login(serde_json::json!({"login_id": "m2@example.com", "password": "Sekret-1"})).await;
    assert_eq!(s, 200, "a user without TOTP logs in with the password: {v}");
    assert_eq!(
        env.sandbox
            .authgear()
            .user_by_login_id("m1@example.com")
            .unwrap()
            .totp_count,
        1
    );
    env.sandbox.shutdown().await;
}

/// Contract v2: `migrate`'s `summary` event gains `roles`, `groups` and `mfa` counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_event_counts_roles_groups_and_mfa() {
    let env = seeded().await;
    let w = env.path("work");
    let o = env
        .run(&[
            "--json",
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--work-dir",
            w.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let summary: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|v| v["type"] == "summary")
        .expect("a summary event");
    let data = &summary["data"];
    assert_eq!(data["roles"]["created"], 7, "{data}");
    assert_eq!(data["groups"]["created"], 1, "{data}");
    assert_eq!(data["roles"]["assignments"], 4, "{data}");
    assert!(data["mfa"].is_null(), "no --mfa-secrets given: {data}");
    assert!(data["summary"]["inserted"].as_u64().unwrap() > 0, "{data}");
    env.sandbox.shutdown().await;
}
