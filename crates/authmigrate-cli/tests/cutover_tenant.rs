//! The cutover of a whole tenant, Auth0 → Authgear, run as the real binary against the
//! in-process sandbox: `migrate` with roles, organizations and TOTP users, `verify`
//! (roles, groups, MFA kinds and a sampled login check) passes; a role removed at
//! Authgear and a membership added at Auth0 are exactly the two differences;
//! `migrate --delta` creates a role new at Auth0 and sends exactly the users changed
//! at the source, with their new memberships; afterwards only the target-side change
//! is left.

mod common;

use common::{Env, args, argv, auth0_id, authgear_gql, diffs, env, report, text};
use serde_json::{Value, json};

const SECRET: &str = "JBSWY3DPEHPK3PXP";

fn at_authgear(env: &Env, email: &str) -> (Vec<String>, Vec<String>) {
    let u = env.sandbox.authgear().user_by_login_id(email).unwrap();
    let (mut r, mut g) = (u.roles, u.groups);
    r.sort();
    g.sort();
    (r, g)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_delta_carry_and_check_roles_groups_and_totp() {
    let env = env().await;
    // Six users with passwords (their usernames; bcrypt cost 10, the one Auth0 keeps as
    // `password_hash` and hands over in its hash export); user_02 enrolled in TOTP.
    let users = env.path("users.ndjson");
    let o = env
        .run(&[
            "generate",
            "--count",
            "6",
            "--seed",
            "5",
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
            if v["email"] == "user_02@example.com" {
                v["mfa"] = json!([{ "totp": { "secret": SECRET } }]);
            }
            format!("{v}\n")
        })
        .collect();
    std::fs::write(&users, body).unwrap();
    let o = env
        .run(&["import", "--to", "auth0", users.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let id = |i: u32| auth0_id(&env, &format!("user_{i:02}@example.com"));
    let a = env.sandbox.auth0();
    let admin = a.seed_role("Admin", "Administrators", &[]);
    a.seed_role_users(&admin, &[&id(1)]);
    let viewer = a.seed_role("Viewer", "Sees things", &[]);
    a.seed_role_users(&viewer, &[&id(1), &id(3)]);
    let editor = a.seed_role("editor", "", &[]);
    let org = a.seed_organization("acme", "Acme Inc");
    a.seed_org_members(&org, &[&id(1), &id(2)]);
    a.seed_org_member_roles(&org, &id(2), &[&editor]);
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
    let (work, state, ids) = (env.path("work"), env.path("run.state"), env.path("ids.csv"));
    let (h, m) = (hashes.to_str().unwrap(), mfa.to_str().unwrap());
    let migrate = [
        "migrate",
        "--from",
        "auth0",
        "--to",
        "authgear",
        "--work-dir",
        work.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--password-hashes",
        h,
        "--mfa-secrets",
        m,
    ];
    let o = env
        .run(&argv(&args(&migrate, &["--id-map", ids.to_str().unwrap()])))
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        at_authgear(&env, "user_01@example.com"),
        (vec!["admin".into(), "viewer".into()], vec!["acme".into()])
    );
    assert_eq!(
        at_authgear(&env, "user_02@example.com"),
        (vec!["editor".into()], vec!["acme".into()])
    );

    let (rep, vwork) = (env.path("verify.json"), env.path("vwork"));
    let verify = [
        "verify",
        "--from",
        "auth0",
        "--to",
        "authgear",
        "--work-dir",
        vwork.to_str().unwrap(),
        "--id-map",
        ids.to_str().unwrap(),
        "--password-hashes",
        h,
        "--mfa-secrets",
        m,
        "--report",
        rep.to_str().unwrap(),
    ];
    let o = env
        .run(&argv(&args(&verify, &["--login-check", "6"])))
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        report(&rep)["summary"],
        json!({"source": 6, "target": 6, "matched": 6, "missing": 0, "different": 0,
               "extra": 0, "login": {"checked": 6, "failed": 0}}),
        "{}",
        text(&o)
    );
    let out = text(&o);
    assert!(
        out.contains("roles: 3 at the source (4 user role assignments), 3 of them at the target"),
        "{out}"
    );
    assert!(
        out.contains("groups (Auth0 organizations): 1 at the source (2 memberships), 1 of them"),
        "{out}"
    );
    assert!(!out.contains(SECRET), "no secret in the output");
    // Without `--mfa-secrets`, nobody is expected to hold TOTP: user_02 is different.
    let no_mfa: Vec<String> = verify
        .iter()
        .filter(|a| **a != "--mfa-secrets" && **a != m)
        .map(|s| (*s).to_owned())
        .collect();
    let o = env.run(&argv(&no_mfa)).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        diffs(&report(&rep)),
        [(
            "user_02@example.com".into(),
            "mfa".into(),
            Value::Null,
            json!(["totp"])
        )]
    );

    // At Authgear, user_03 loses `viewer`; at Auth0, user_04 joins `acme`.
    let three = env
        .sandbox
        .authgear()
        .user_by_login_id("user_03@example.com")
        .unwrap();
    let v = authgear_gql(
        &env,
        "mutation($u: ID!) { removeRoleFromUsers(input: {roleKey: \"viewer\", userIDs: [$u]}) { role { key } } }",
        json!({ "u": authmigrate_authgear::graphql::user_node_id(&three.id) }),
    )
    .await;
    assert!(v["errors"].is_null(), "{v}");
    assert_eq!(at_authgear(&env, "user_03@example.com"), (vec![], vec![]));
    a.seed_org_members(&org, &[&id(4)]);

    let o = env.run(&argv(&args(&verify, &[]))).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        diffs(&report(&rep)),
        [
            (
                "user_03@example.com".into(),
                "roles".into(),
                json!(["viewer"]),
                Value::Null
            ),
            (
                "user_04@example.com".into(),
                "groups".into(),
                json!(["acme"]),
                Value::Null
            ),
        ]
    );
    let out = text(&o);
    assert!(
        out.contains(r#"user_03@example.com, roles: expected ["viewer"], got (none)"#),
        "{out}"
    );
    assert!(
        out.contains(r#"user_04@example.com, groups: expected ["acme"], got (none)"#),
        "{out}"
    );

    // Meanwhile a role is created at Auth0 and given to user_05, and user_01 loses
    // both its tenant roles (it keeps organization acme).
    let auditor = a.seed_role("Auditor", "", &[]);
    a.seed_role_users(&auditor, &[&id(5)]);
    a.unseed_role_users(&admin, &[&id(1)]);
    a.unseed_role_users(&viewer, &[&id(1)]);
    assert_eq!(
        at_authgear(&env, "user_01@example.com"),
        (vec!["admin".into(), "viewer".into()], vec!["acme".into()])
    );

    // The delta creates the new role and sends exactly the users changed at the
    // source: user_01 without roles, user_04 with its new group, user_05 with its new
    // role.
    let jobs = env.sandbox.authgear().jobs_created();
    let drep = env.path("delta.json");
    let delta = args(&migrate, &["--delta", "--report", drep.to_str().unwrap()]);
    let o = env.run(&argv(&delta)).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("0 new, 3 changed, 3 unchanged, 0 removed"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("created 1, reused 3"), "{}", text(&o));
    let r = report(&drep);
    assert_eq!(r["summary"]["total"], 3, "{r}");
    assert_eq!(r["summary"]["updated"], 3, "{r}");
    let mut sent: Vec<&str> = r["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["email"].as_str().unwrap())
        .collect();
    sent.sort_unstable();
    assert_eq!(
        sent,
        [
            "user_01@example.com",
            "user_04@example.com",
            "user_05@example.com"
        ],
        "{r}"
    );
    let mut changed: Vec<(String, Value)> =
        std::fs::read_to_string(work.join("delta-report.ndjson"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l["change"] == "changed")
            .map(|l| (l["email"].as_str().unwrap().to_owned(), l["fields"].clone()))
            .collect();
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        changed,
        [
            ("user_01@example.com".into(), json!(["roles"])),
            ("user_04@example.com".into(), json!(["groups"])),
            ("user_05@example.com".into(), json!(["roles"]))
        ]
    );
    assert!(
        env.sandbox
            .authgear()
            .role_keys()
            .contains(&"auditor".to_owned())
    );
    // The roles user_01 lost are gone at Authgear (the record said `"roles": []`); its
    // group stays.
    assert_eq!(
        at_authgear(&env, "user_01@example.com"),
        (vec![], vec!["acme".into()])
    );
    assert!(
        !text(&o).contains("holds no role at the source any more"),
        "{}",
        text(&o)
    );
    assert_eq!(
        at_authgear(&env, "user_04@example.com"),
        (vec![], vec!["acme".into()])
    );
    assert_eq!(
        at_authgear(&env, "user_05@example.com"),
        (vec!["auditor".into()], vec![])
    );
    // The role removed at the target is not restored: user_03 did not change at the
    // source, so the delta did not send it.
    assert_eq!(at_authgear(&env, "user_03@example.com"), (vec![], vec![]));

    let o = env.run(&argv(&args(&verify, &[]))).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        diffs(&report(&rep)),
        [(
            "user_03@example.com".into(),
            "roles".into(),
            json!(["viewer"]),
            Value::Null
        )]
    );

    // A second delta right after sends nothing.
    let jobs_after = env.sandbox.authgear().jobs_created();
    assert_eq!(jobs_after, jobs + 1);
    let delta = args(&migrate, &["--delta"]);
    let o = env.run(&argv(&delta)).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("0 new, 0 changed, 6 unchanged, 0 removed"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("nothing to send"), "{}", text(&o));
    assert_eq!(env.sandbox.authgear().jobs_created(), jobs_after);
    env.sandbox.shutdown().await;
}
