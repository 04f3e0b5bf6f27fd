//! `migrate --from authgear --to auth0` carries roles (own and through groups),
//! groups → organizations, memberships and TOTP enrolments (issue 13), run as the real
//! binary against the in-process sandbox, asserting what the Auth0 emulator holds.

mod common;

use common::{Env, env, text};
use serde_json::json;

const TOTP: &str = "JBSWY3DPEHPK3PXP";

/// Authgear: roles `admin` ("Admin"), `billing` ("Billing", described), `viewer` (no
/// name); groups `team_emea` ("EMEA", gives `viewer`) and `Ops` (no roles). Users:
/// a (admin, team_emea, TOTP), b (billing), c (team_emea, Ops), d (nothing). Auth0
/// already holds a role `Admin`.
async fn seeded() -> Env {
    let env = env().await;
    let ag = env.sandbox.authgear();
    ag.seed_role("admin", Some("Admin"), None);
    ag.seed_role("billing", Some("Billing"), Some("Sees invoices"));
    ag.seed_role("viewer", None, None);
    ag.seed_group("team_emea", Some("EMEA"), &["viewer"]);
    ag.seed_group("Ops", None, &[]);
    for record in [
        json!({"email": "a@example.com", "roles": ["admin"], "groups": ["team_emea"],
               "mfa": {"totp": {"secret": TOTP}}}),
        json!({"email": "b@example.com", "roles": ["billing"]}),
        json!({"email": "c@example.com", "groups": ["team_emea", "Ops"]}),
        json!({"email": "d@example.com"}),
    ] {
        ag.seed_user(record).unwrap();
    }
    env.sandbox.auth0().seed_role("Admin", "Pre-existing", &[]);
    env
}

fn id(env: &Env, email: &str) -> String {
    common::auth0_id(env, email)
}

fn roles_of(env: &Env, email: &str) -> Vec<String> {
    let mut r = env.sandbox.auth0().user_role_names(&id(env, email));
    r.sort();
    r
}

/// Organization name → (display name, member e-mails sorted).
fn orgs(env: &Env) -> Vec<(String, String, Vec<String>)> {
    let a = env.sandbox.auth0();
    let users = a.users();
    let email_of = |uid: &str| {
        users
            .iter()
            .find(|u| u["user_id"] == uid)
            .and_then(|u| u["email"].as_str())
            .unwrap_or("?")
            .to_owned()
    };
    let mut out: Vec<(String, String, Vec<String>)> = a
        .organizations()
        .iter()
        .map(|o| {
            let mut members: Vec<String> = a
                .org_member_ids(o["id"].as_str().unwrap())
                .iter()
                .map(|m| email_of(m))
                .collect();
            members.sort();
            (
                o["name"].as_str().unwrap().to_owned(),
                o["display_name"].as_str().unwrap_or("").to_owned(),
                members,
            )
        })
        .collect();
    out.sort();
    out
}

fn migrate<'a>(work: &'a str, state: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "migrate",
        "--from",
        "authgear",
        "--to",
        "auth0",
        "--work-dir",
        work,
        "--state",
        state,
    ];
    v.extend_from_slice(extra);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_organizations_memberships_and_totp_reach_auth0() {
    let env = seeded().await;
    let (work, state) = (env.path("work"), env.path("state.json"));
    let (w, s) = (work.to_str().unwrap(), state.to_str().unwrap());

    let dry = env.run(&migrate(w, s, &["--dry-run"])).await;
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let out = text(&dry);
    assert!(
        out.contains("roles: 3 at Authgear, would create 2 at Auth0, reused 1"),
        "{out}"
    );
    assert!(
        out.contains("would assign 4 user role assignments"),
        "{out}"
    );
    assert!(out.contains("would assign 3 memberships"), "{out}");
    assert_eq!(
        env.sandbox.auth0().roles().len(),
        1,
        "dry run: nothing created"
    );
    assert!(env.sandbox.auth0().organizations().is_empty(), "dry run");
    assert!(env.sandbox.auth0().users().is_empty(), "dry run");

    let o = env.run(&migrate(w, s, &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    let mut names: Vec<String> = env
        .sandbox
        .auth0()
        .roles()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["Admin", "Billing", "viewer"],
        "Admin reused, not doubled"
    );
    let billing = env
        .sandbox
        .auth0()
        .roles()
        .into_iter()
        .find(|r| r["name"] == "Billing")
        .unwrap();
    assert_eq!(billing["description"], "Sees invoices");
    // Direct roles plus roles through groups: a holds viewer through team_emea.
    assert_eq!(roles_of(&env, "a@example.com"), ["Admin", "viewer"]);
    assert_eq!(roles_of(&env, "b@example.com"), ["Billing"]);
    assert_eq!(roles_of(&env, "c@example.com"), ["viewer"]);
    assert!(roles_of(&env, "d@example.com").is_empty());
    assert_eq!(
        orgs(&env),
        [
            (
                "ops".to_owned(),
                "Ops".to_owned(),
                vec!["c@example.com".to_owned()]
            ),
            (
                "team_emea".to_owned(),
                "EMEA".to_owned(),
                vec!["a@example.com".to_owned(), "c@example.com".to_owned()]
            ),
        ]
    );
    // TOTP → mfa_factors, unpadded base32.
    let a = id(&env, "a@example.com");
    assert_eq!(env.sandbox.auth0().mfa_factor_kinds(&a), ["totp"]);
    assert_eq!(
        env.sandbox.auth0().totp_secret_of(&a).as_deref(),
        Some(TOTP)
    );
    assert!(
        env.sandbox
            .auth0()
            .mfa_factor_kinds(&id(&env, "b@example.com"))
            .is_empty()
    );
    assert!(!out.contains(TOTP), "the secret is never printed");
    assert!(out.contains("assigned 4 user role assignments"), "{out}");
    assert!(
        out.contains("2 of them held through an Authgear group"),
        "{out}"
    );
    assert!(
        out.contains("assigned 3 memberships in 2 requests"),
        "{out}"
    );
    assert!(
        out.contains("organization `Ops` is `ops` at Auth0"),
        "{out}"
    );
    assert!(
        !out.contains("left out: roles"),
        "roles are carried, not left out: {out}"
    );
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("tenant.json")).unwrap()).unwrap();
    assert_eq!(plan["assignments"]["users_found"], 3, "{plan}");

    // A rerun with the same state sends no assignment again.
    let again = env.run(&migrate(w, s, &[])).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let out = text(&again);
    assert!(
        out.contains("assigned 0 user role assignments in 0 requests (4 by an earlier run)"),
        "{out}"
    );
    assert_eq!(env.sandbox.auth0().roles().len(), 3);
    assert_eq!(env.sandbox.auth0().organizations().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_the_assignments_then_the_rerun_assigns_each_once() {
    let env = seeded().await;
    let (work, state) = (env.path("work"), env.path("state.json"));
    let (w, s) = (work.to_str().unwrap(), state.to_str().unwrap());
    let o = env
        .run_env(
            &migrate(w, s, &[]),
            &[("AUTHMIGRATE_TEST_ABORT_AT", "tenant-assign:2")],
        )
        .await;
    assert_ne!(o.status.code(), Some(0), "aborted: {}", text(&o));
    assert_eq!(
        env.sandbox.auth0().users().len(),
        4,
        "the users were imported"
    );
    let o = env.run(&migrate(w, s, &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("by an earlier run"), "{out}");
    assert_eq!(roles_of(&env, "a@example.com"), ["Admin", "viewer"]);
    assert_eq!(roles_of(&env, "c@example.com"), ["viewer"]);
    assert_eq!(env.sandbox.auth0().roles().len(), 3, "each role once");
    assert_eq!(
        env.sandbox.auth0().organizations().len(),
        2,
        "each organization once"
    );
    assert_eq!(env.sandbox.auth0().users().len(), 4, "each user once");
    let orgs = orgs(&env);
    assert_eq!(orgs[1].2, ["a@example.com", "c@example.com"]);
}

/// A seeded sandbox after `migrate --skip SKIP` (no state).
async fn migrated_skipping(skip: &str) -> Env {
    let env = seeded().await;
    let work = env.path("work");
    let w = work.to_str().unwrap();
    let args = [
        "migrate",
        "--from",
        "authgear",
        "--to",
        "auth0",
        "--work-dir",
        w,
        "--skip",
        skip,
    ];
    let o = env.run(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_groups_keeps_roles_through_groups_and_skip_roles_keeps_organizations() {
    let env = migrated_skipping("groups").await;
    assert!(
        env.sandbox.auth0().organizations().is_empty(),
        "--skip groups"
    );
    assert_eq!(
        roles_of(&env, "c@example.com"),
        ["viewer"],
        "a role held through a group is still the user's role"
    );
    let env = migrated_skipping("roles,mfa").await;
    assert_eq!(
        env.sandbox.auth0().roles().len(),
        1,
        "only the pre-existing role"
    );
    assert!(roles_of(&env, "a@example.com").is_empty());
    assert_eq!(orgs(&env).len(), 2);
    assert!(
        env.sandbox
            .auth0()
            .mfa_factor_kinds(&id(&env, "a@example.com"))
            .is_empty(),
        "--skip mfa"
    );
}
