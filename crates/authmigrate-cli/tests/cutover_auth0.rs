//! The cutover of a whole tenant, Authgear → Auth0, run as the real binary against the
//! in-process sandbox: after `migrate`, `verify` compares every user's roles (own and
//! through groups) and organizations and passes; roles and groups taken away and
//! given at Authgear, and a role given at Auth0 by hand, are exactly the differences;
//! `migrate --delta` sends exactly the changed users, assigns what they gained and
//! takes away at Auth0 what they lost; afterwards only the target-side change is
//! left, and a second delta sends nothing. A delta killed during its assignments
//! finishes (assignments and removals) when run again.

mod common;

use common::{Env, args, argv, auth0_id, authgear_gql, diffs, env, report, text};
use serde_json::{Value, json};

/// Admin GraphQL at the Authgear emulator (the source); it must succeed.
async fn gql(env: &Env, query: &str, variables: Value) {
    let v = authgear_gql(env, query, variables).await;
    assert!(v["errors"].is_null(), "{v}");
}

fn node(env: &Env, email: &str) -> String {
    let u = env.sandbox.authgear().user_by_login_id(email).unwrap();
    authmigrate_authgear::graphql::user_node_id(&u.id)
}

/// (roles, organizations) of a user at Auth0, sorted.
fn at_auth0(env: &Env, email: &str) -> (Vec<String>, Vec<String>) {
    let id = auth0_id(env, email);
    let a = env.sandbox.auth0();
    let mut roles = a.user_role_names(&id);
    roles.sort();
    (roles, a.user_org_names(&id))
}

/// `migrate` (work dir `work`, state `state.json`) or `verify` (work dir `vwork`,
/// report `verify.json`) from Authgear to Auth0, then `extra`.
fn command(env: &Env, which: &str, extra: &[&str]) -> Vec<String> {
    let path = |name: &str| env.path(name).to_str().unwrap().to_owned();
    let mut v = strings(&[which, "--from", "authgear", "--to", "auth0"]);
    match which {
        "migrate" => v.extend([
            "--work-dir".into(),
            path("work"),
            "--state".into(),
            path("state.json"),
        ]),
        _ => v.extend([
            "--work-dir".into(),
            path("vwork"),
            "--report".into(),
            path("verify.json"),
        ]),
    }
    v.extend(strings(extra));
    v
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_delta_check_and_carry_roles_and_organizations_to_auth0() {
    let env = env().await;
    let ag = env.sandbox.authgear();
    ag.seed_role("admin", Some("Admin"), None);
    ag.seed_role("billing", Some("Billing"), None);
    ag.seed_role("viewer", None, None);
    ag.seed_group("team_emea", Some("EMEA"), &["viewer"]);
    ag.seed_group("ops", Some("Ops"), &[]);
    for record in [
        json!({"email": "a@example.com", "roles": ["admin"], "groups": ["team_emea"]}),
        json!({"email": "b@example.com", "roles": ["billing"]}),
        json!({"email": "c@example.com", "groups": ["team_emea", "ops"]}),
        json!({"email": "d@example.com"}),
    ] {
        ag.seed_user(record).unwrap();
    }
    let migrate = command(&env, "migrate", &[]);
    let migrate = argv(&migrate);
    let o = env.run(&argv(&args(&migrate, &[]))).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        at_auth0(&env, "a@example.com"),
        (strings(&["Admin", "viewer"]), strings(&["team_emea"]))
    );

    let rep = env.path("verify.json");
    let verify = command(&env, "verify", &[]);
    let verify = argv(&verify);
    let o = env.run(&argv(&args(&verify, &[]))).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        report(&rep)["summary"],
        json!({"source": 4, "target": 4, "matched": 4, "missing": 0, "different": 0,
               "extra": 0}),
        "{}",
        text(&o)
    );
    let out = text(&o);
    assert!(
        out.contains("roles: 3 at Authgear, 3 of them at Auth0 (4 user role assignments there)"),
        "{out}"
    );
    assert!(
        out.contains("groups: 2 at Authgear, 2 of them Auth0 organizations (3 memberships there)"),
        "{out}"
    );

    // At the source: a loses admin and team_emea (so viewer too), b joins ops. At the
    // target: d is given viewer by hand.
    gql(
        &env,
        "mutation($u: ID!) { removeUserFromRoles(input: {userID: $u, roleKeys: [\"admin\"]}) { user { id } } }",
        json!({ "u": node(&env, "a@example.com") }),
    )
    .await;
    gql(
        &env,
        "mutation($u: ID!) { removeUserFromGroups(input: {userID: $u, groupKeys: [\"team_emea\"]}) { user { id } } }",
        json!({ "u": node(&env, "a@example.com") }),
    )
    .await;
    gql(
        &env,
        "mutation($u: ID!) { addUserToGroups(input: {userID: $u, groupKeys: [\"ops\"]}) { user { id } } }",
        json!({ "u": node(&env, "b@example.com") }),
    )
    .await;
    let a0 = env.sandbox.auth0();
    let viewer = a0
        .roles()
        .into_iter()
        .find(|r| r["name"] == "viewer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = auth0_id(&env, "d@example.com");
    a0.seed_role_users(&viewer, &[&d]);

    let o = env.run(&argv(&args(&verify, &[]))).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    assert_eq!(
        diffs(&r),
        [
            (
                "a@example.com".to_owned(),
                "groups".to_owned(),
                Value::Null,
                json!(["team_emea"])
            ),
            (
                "a@example.com".to_owned(),
                "roles".to_owned(),
                Value::Null,
                json!(["Admin", "viewer"])
            ),
            (
                "b@example.com".to_owned(),
                "groups".to_owned(),
                json!(["ops"]),
                Value::Null
            ),
            (
                "d@example.com".to_owned(),
                "roles".to_owned(),
                Value::Null,
                json!(["viewer"])
            ),
        ],
        "{r}"
    );

    // The delta sends exactly a and b, assigns b's organization and takes a's roles
    // and organization away; d (unchanged at the source) is not touched.
    let drep = env.path("delta.json");
    let o = env
        .run(&argv(&args(
            &migrate,
            &["--delta", "--report", drep.to_str().unwrap()],
        )))
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("0 new, 2 changed, 2 unchanged, 0 removed"),
        "{out}"
    );
    assert!(out.contains("assigned 1 memberships"), "{out}");
    assert!(
        out.contains("removed 2 role assignments and 1 organization memberships"),
        "{out}"
    );
    assert_eq!(report(&drep)["summary"]["total"], 2, "{out}");
    assert_eq!(at_auth0(&env, "a@example.com"), (vec![], vec![]));
    assert_eq!(
        at_auth0(&env, "b@example.com"),
        (strings(&["Billing"]), strings(&["ops"]))
    );
    assert_eq!(
        at_auth0(&env, "c@example.com"),
        (strings(&["viewer"]), strings(&["ops", "team_emea"]))
    );
    assert_eq!(
        at_auth0(&env, "d@example.com"),
        (strings(&["viewer"]), vec![])
    );

    // Only the target-side change is left; undone, verify passes.
    let o = env.run(&argv(&args(&verify, &[]))).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&rep);
    assert_eq!(diffs(&r).len(), 1, "{r}");
    assert_eq!(diffs(&r)[0].0, "d@example.com");
    env.sandbox.auth0().unseed_role_users(&viewer, &[&d]);
    let o = env.run(&argv(&args(&verify, &[]))).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A second delta right after sends nothing and removes nothing.
    let o = env.run(&argv(&args(&migrate, &["--delta"]))).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("0 new, 0 changed, 4 unchanged, 0 removed"),
        "{out}"
    );
    assert!(out.contains("nothing to send"), "{out}");
    assert!(!out.contains("removed 1"), "{out}");
    assert_eq!(at_auth0(&env, "a@example.com"), (vec![], vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_lists_a_role_not_carried_and_skips_on_request() {
    let env = env().await;
    let ag = env.sandbox.authgear();
    ag.seed_role("admin", Some("Admin"), None);
    ag.seed_user(json!({"email": "a@example.com", "roles": ["admin"]}))
        .unwrap();
    let migrate = command(&env, "migrate", &["--skip", "roles"]);
    let migrate = argv(&migrate);
    let o = env.run(&argv(&args(&migrate, &[]))).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(at_auth0(&env, "a@example.com"), (vec![], vec![]));
    let rep = env.path("verify.json");
    let verify = command(&env, "verify", &[]);
    let verify = argv(&verify);
    // The role was not carried: verify says so for a.
    let o = env.run(&argv(&args(&verify, &[]))).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        diffs(&report(&rep)),
        [(
            "a@example.com".to_owned(),
            "roles".to_owned(),
            json!(["Admin"]),
            Value::Null
        )]
    );
    assert!(
        text(&o).contains("warning: the role `Admin` is not at Auth0"),
        "{}",
        text(&o)
    );
    let o = env
        .run(&argv(&args(&verify, &["--skip", "roles,groups"])))
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_without_the_scope_to_remove_members_stops_naming_it_and_the_skip() {
    let mut auth0 = authmigrate_sandbox::auth0::Auth0Config::default();
    auth0.scopes.retain(|s| s != "delete:organization_members");
    let env = common::env_with(authmigrate_sandbox::SandboxConfig {
        auth0,
        ..authmigrate_sandbox::SandboxConfig::default()
    })
    .await;
    let ag = env.sandbox.authgear();
    ag.seed_group("ops", Some("Ops"), &[]);
    ag.seed_user(json!({"email": "a@example.com", "groups": ["ops"]}))
        .unwrap();
    let migrate = command(&env, "migrate", &[]);
    let migrate = argv(&migrate);
    let o = env.run(&argv(&args(&migrate, &[]))).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(at_auth0(&env, "a@example.com").1, ["ops"]);
    gql(
        &env,
        "mutation($u: ID!) { removeUserFromGroups(input: {userID: $u, groupKeys: [\"ops\"]}) { user { id } } }",
        json!({ "u": node(&env, "a@example.com") }),
    )
    .await;
    let o = env.run(&argv(&args(&migrate, &["--delta"]))).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("403"), "{stderr}");
    assert!(stderr.contains("delete:organization_members"), "{stderr}");
    assert!(stderr.contains("the users are imported"), "{stderr}");
    assert!(stderr.contains("--skip groups"), "{stderr}");
    assert_eq!(
        at_auth0(&env, "a@example.com").1,
        ["ops"],
        "nothing removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_killed_during_its_assignments_finishes_when_run_again() {
    let env = env().await;
    let ag = env.sandbox.authgear();
    ag.seed_role("admin", Some("Admin"), None);
    ag.seed_group("ops", Some("Ops"), &[]);
    ag.seed_user(json!({"email": "a@example.com", "roles": ["admin"]}))
        .unwrap();
    ag.seed_user(json!({"email": "b@example.com"})).unwrap();
    let migrate = command(&env, "migrate", &[]);
    let migrate = argv(&migrate);
    let o = env.run(&migrate).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // a loses admin and joins ops; b joins ops.
    for (email, mutation) in [
        (
            "a@example.com",
            "removeUserFromRoles(input: {userID: $u, roleKeys: [\"admin\"]})",
        ),
        (
            "a@example.com",
            "addUserToGroups(input: {userID: $u, groupKeys: [\"ops\"]})",
        ),
        (
            "b@example.com",
            "addUserToGroups(input: {userID: $u, groupKeys: [\"ops\"]})",
        ),
    ] {
        gql(
            &env,
            &format!("mutation($u: ID!) {{ {mutation} {{ user {{ id }} }} }}"),
            json!({ "u": node(&env, email) }),
        )
        .await;
    }
    let delta = args(&migrate, &["--delta"]);
    let o = env
        .run_env(
            &argv(&delta),
            &[("AUTHMIGRATE_TEST_ABORT_AT", "tenant-assign:1")],
        )
        .await;
    assert_ne!(o.status.code(), Some(0), "aborted: {}", text(&o));
    assert_eq!(
        at_auth0(&env, "a@example.com"),
        (strings(&["Admin"]), strings(&["ops"])),
        "killed after the memberships, before the removals"
    );
    let o = env.run(&argv(&delta)).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("resuming the delta pass"), "{out}");
    assert!(
        out.contains("removed 1 role assignments and 0 organization memberships"),
        "{out}"
    );
    assert_eq!(at_auth0(&env, "a@example.com"), (vec![], strings(&["ops"])));
    assert_eq!(at_auth0(&env, "b@example.com"), (vec![], strings(&["ops"])));
    // Nothing is left to send.
    let o = env.run(&argv(&delta)).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("0 new, 0 changed, 2 unchanged"),
        "{}",
        text(&o)
    );
}
