//! `authmigrate delete`, run as the real binary against in-test stand-ins of the
//! providers' user endpoints on 127.0.0.1 (see `delete_stub`), asserting what the
//! stand-ins hold afterwards.

mod delete_stub;

use std::process::{Command, Output, Stdio};

use authmigrate_sandbox::{FaultConfig, RateLimit};
use delete_stub::{Stub, auth0_user, authgear_user};
use serde_json::{Value, json};

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs the binary against `stub` as `provider`, stdin not a terminal.
async fn run(
    stub: &Stub,
    provider: &str,
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authmigrate"));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("RUST_LOG");
    for k in [
        "AUTH0_DOMAIN",
        "AUTH0_TOKEN",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "AUTHGEAR_ENDPOINT",
        "AUTHGEAR_ADMIN_TOKEN",
        "AUTHGEAR_PROJECT_ID",
        "AUTHGEAR_KEY_ID",
        "AUTHGEAR_PRIVATE_KEY_FILE",
    ] {
        cmd.env_remove(k);
    }
    if provider == "auth0" {
        cmd.env("AUTH0_DOMAIN", &stub.url)
            .env("AUTH0_TOKEN", "test-token");
    } else {
        cmd.env("AUTHGEAR_ENDPOINT", &stub.url)
            .env("AUTHGEAR_ADMIN_TOKEN", "test-token");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn report(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The users `generate --prefix qa --count 12 --domain t.io` made, plus neighbours
/// that merely share the prefix or the name.
fn qa_emails() -> Vec<String> {
    let mut v: Vec<String> = (1..=12).map(|i| format!("qa_{i:02}@t.io")).collect();
    v.extend(["qa_1000@t.io", "qaa_01@t.io", "qa_01@other.io"].map(String::from));
    v
}

const NEIGHBOURS: [&str; 3] = ["qa_01@other.io", "qa_1000@t.io", "qaa_01@t.io"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_prefix_from_auth0_touches_nothing_else() {
    let users = qa_emails()
        .iter()
        .enumerate()
        .map(|(i, e)| auth0_user(i as u32, e))
        .collect();
    let stub = delete_stub::auth0(users, FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("report.json");
    let o = run(
        &stub,
        "auth0",
        dir.path(),
        &[
            "delete",
            "--from",
            "auth0",
            "--prefix",
            "qa",
            "--count",
            "13",
            "--domain",
            "t.io",
            "--yes",
            "--report",
            rep.to_str().unwrap(),
            "--json",
            "--no-progress",
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        stub.store.emails(),
        NEIGHBOURS,
        "exactly the 12 generated users are gone"
    );
    let r = report(&rep);
    assert_eq!(
        r["summary"],
        json!({"total": 13, "deleted": 12, "skipped": 1, "failed": 0})
    );
    let records = r["records"].as_array().unwrap();
    assert_eq!(records[0]["email"], "qa_01@t.io");
    assert_eq!(records[0]["outcome"], "deleted");
    assert_eq!(records[0]["user_id"], "auth0|0");
    assert_eq!(records[12]["outcome"], "skipped");
    assert_eq!(records[12]["code"], "NOT_FOUND");
    let last: Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["data"]["summary"]["deleted"], 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_prefix_from_authgear_in_requests_of_five() {
    let users = qa_emails()
        .iter()
        .enumerate()
        .map(|(i, e)| authgear_user(&format!("uuid-{i}"), e))
        .collect();
    let stub = delete_stub::authgear(users).await;
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("report.json");
    let o = run(
        &stub,
        "authgear",
        dir.path(),
        &[
            "delete",
            "--from",
            "authgear",
            "--prefix",
            "qa",
            "--count",
            "12",
            "--domain",
            "t.io",
            "--yes",
            "--report",
            rep.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(stub.store.emails(), NEIGHBOURS);
    assert_eq!(report(&rep)["summary"]["deleted"], 12);
    let requests = stub.store.requests.lock().unwrap().clone();
    assert!(requests.iter().all(|n| *n <= 5), "{requests:?}");
    assert_eq!(requests.iter().sum::<usize>(), 12);
    assert!(requests.len() <= 4, "batched: {requests:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_without_yes_when_stdin_is_not_a_terminal_and_dry_run_changes_nothing() {
    let users = qa_emails()
        .iter()
        .enumerate()
        .map(|(i, e)| auth0_user(i as u32, e))
        .collect();
    let stub = delete_stub::auth0(users, FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "delete", "--from", "auth0", "--prefix", "qa", "--count", "3", "--domain", "t.io",
    ];
    let o = run(&stub, "auth0", dir.path(), &args, &[]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--yes"),
        "{}",
        text(&o)
    );
    assert_eq!(stub.store.emails().len(), 15, "nothing deleted");

    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let o = run(&stub, "auth0", dir.path(), &dry, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("delete qa_01@t.io") && err.contains("delete qa_03@t.io"),
        "{err}"
    );
    assert!(!err.contains("qa_04@t.io"), "{err}");
    assert_eq!(stub.store.emails().len(), 15, "nothing deleted");
    assert_eq!(*stub.store.deletes.lock().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_that_logged_in_or_have_another_domain_are_left_alone_unless_forced() {
    let mut a = auth0_user(1, "qa_01@t.io");
    a["logins_count"] = json!(2);
    a["last_login"] = json!("2026-12-01T10:00:00.000Z");
    let stub =
        delete_stub::auth0(vec![a, auth0_user(2, "x@other.io")], FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("ids.csv");
    std::fs::write(&ids, "index,source_id,email,outcome,target_id\n0,s1,qa_01@t.io,inserted,auth0|1\n1,s2,x@other.io,inserted,auth0|2\n").unwrap();
    let rep = dir.path().join("r.json");
    let base = [
        "delete",
        "--from",
        "auth0",
        "--id-map",
        ids.to_str().unwrap(),
        "--domain",
        "t.io",
        "--yes",
        "--report",
        rep.to_str().unwrap(),
    ];
    let o = run(&stub, "auth0", dir.path(), &base, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&rep);
    assert_eq!(r["records"][0]["code"], "LOGGED_IN", "{r}");
    assert_eq!(r["records"][1]["code"], "OTHER_DOMAIN", "{r}");
    assert_eq!(stub.store.emails().len(), 2);
    let mut forced = base.to_vec();
    forced.push("--force");
    let o = run(&stub, "auth0", dir.path(), &forced, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stub.store.emails().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_of_an_import_by_its_report_deletes_only_inserted_users() {
    let users = vec![
        authgear_user("u1", "new1@t.io"),
        authgear_user("u2", "new2@t.io"),
        authgear_user("u3", "existing@t.io"),
    ];
    let stub = delete_stub::authgear(users).await;
    let dir = tempfile::tempdir().unwrap();
    // An `import --report`: raw user ids, as Authgear's import API reports them.
    let import_report = dir.path().join("import.json");
    std::fs::write(
        &import_report,
        r#"{"summary":{"total":3},"records":[
{"index":0,"email":"new1@t.io","outcome":"inserted","user_id":"u1"},
{"index":1,"email":"existing@t.io","outcome":"skipped","user_id":"u3"},
{"index":2,"email":"new2@t.io","outcome":"inserted","user_id":"u2"}]}"#,
    )
    .unwrap();
    let o = run(
        &stub,
        "authgear",
        dir.path(),
        &[
            "delete",
            "--from",
            "authgear",
            "--id-map",
            import_report.to_str().unwrap(),
            "--yes",
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(stub.store.emails(), ["existing@t.io"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_delete_resumes_with_its_state_and_deletes_each_user_once() {
    let users = qa_emails()
        .iter()
        .enumerate()
        .map(|(i, e)| auth0_user(i as u32, e))
        .collect();
    let stub = delete_stub::auth0(users, FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("delete.state");
    let rep = dir.path().join("r.json");
    let args = [
        "delete",
        "--from",
        "auth0",
        "--prefix",
        "qa",
        "--count",
        "12",
        "--domain",
        "t.io",
        "--yes",
        "--concurrency",
        "2",
        "--state",
        state.to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ];
    // The test hook aborts the process (like kill -9) after the 5th journaled outcome.
    let o = run(
        &stub,
        "auth0",
        dir.path(),
        &args,
        &[("AUTHMIGRATE_TEST_ABORT_AT", "delete:5")],
    )
    .await;
    assert!(!o.status.success(), "{}", text(&o));
    let left = stub.store.emails().len();
    assert!(
        left < 15 && left > 3,
        "the first run stopped midway: {left} left"
    );
    let o = run(&stub, "auth0", dir.path(), &args, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(stub.store.emails(), NEIGHBOURS);
    let r = report(&rep);
    assert_eq!(r["summary"]["failed"], 0, "{r}");
    // Users the first run journaled are `deleted` (replayed); one deleted but not yet
    // journaled when the process died is `skipped` NOT_FOUND.
    let records = r["records"].as_array().unwrap();
    let replayed = records.iter().filter(|x| x["replayed"] == true).count();
    assert!(replayed >= 5, "{r}");
    for x in records {
        assert!(x["outcome"] == "deleted" || x["code"] == "NOT_FOUND", "{x}");
    }
    // Each of the 12 got exactly one DELETE across both runs.
    assert_eq!(*stub.store.deletes.lock().unwrap(), 12);
}

/// The delete benchmark (docs/benchmarks.md): 5,000 users from the Auth0 emulator
/// behind the sandbox's token bucket at 16 requests/s (burst 50), printing the wall
/// time against 5000/16 s and the 429s the bucket gave. Not a timed assertion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p authmigrate-cli --test delete bench -- --ignored --nocapture"]
async fn bench_delete_5000_from_auth0_at_16_per_second() {
    // `AUTHMIGRATE_BENCH_USERS` shrinks it for a quick look.
    let n_users: u32 = std::env::var("AUTHMIGRATE_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let sandbox = authmigrate_sandbox::Sandbox::start(authmigrate_sandbox::SandboxConfig {
        faults: FaultConfig {
            rate_limit: Some(RateLimit {
                burst: 50,
                per_second: 16.0,
            }),
            ..FaultConfig::default()
        },
        ..authmigrate_sandbox::SandboxConfig::default()
    })
    .await
    .unwrap();
    let users: Vec<Value> = (1..=n_users)
        .map(|i| json!({"email": format!("bench_{i:02}@t.io"), "email_verified": true}))
        .collect();
    let (inserted, _) = sandbox
        .auth0()
        .seed_users("Username-Password-Authentication", &users);
    assert_eq!(inserted, u64::from(n_users));
    let dir = tempfile::tempdir().unwrap();
    let n = n_users.to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authmigrate"));
    cmd.args([
        "delete", "--from", "auth0", "--prefix", "bench", "--count", &n, "--domain", "t.io",
        "--yes", "-q",
    ])
    .current_dir(dir.path())
    .stdin(Stdio::null())
    .env_remove("RUST_LOG")
    .env_remove("AUTH0_TOKEN");
    for (k, v) in sandbox.env_vars() {
        cmd.env(k, v);
    }
    let started = std::time::Instant::now();
    let o = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(sandbox.auth0().users().is_empty());
    // The token, the look-ups and the deletes share the bucket: 1 + 2 requests per user.
    let requests = 1.0 + 2.0 * f64::from(n_users);
    println!(
        "deleted {n_users} users in {wall:.1} s; at 16/s after a burst of 50: {:.1} s for the deletes alone (users/16), {:.1} s for the token, look-ups and deletes; 429s: {}",
        f64::from(n_users) / 16.0,
        (requests - 50.0) / 16.0,
        sandbox.faults().rate_limited()
    );
}

// ---------------------------------------------------------------------------
// Against the sandbox's emulators (generate --to, then delete)
// ---------------------------------------------------------------------------

mod common;

fn auth0_emails(env: &common::Env) -> Vec<String> {
    let mut v: Vec<String> = env
        .sandbox
        .auth0()
        .users()
        .iter()
        .filter_map(|u| u["email"].as_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

fn authgear_emails(env: &common::Env) -> Vec<String> {
    let mut v: Vec<String> = env
        .sandbox
        .authgear()
        .users()
        .into_iter()
        .filter_map(|u| u.email)
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_into_both_then_delete_by_prefix_from_both() {
    let env = common::env().await;
    for (prefix, start, count, domain) in [
        ("qa", "1", "6", "t.io"),
        ("qa", "1000", "1", "t.io"),
        ("qaa", "1", "1", "t.io"),
    ] {
        let o = env
            .run(&[
                "generate", "--prefix", prefix, "--start", start, "--count", count, "--domain",
                domain, "--cost", "4", "--to", "auth0", "--to", "authgear",
            ])
            .await;
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    // The same name in another domain (seeded: the username `qa_01` is taken).
    let other = json!({"email": "qa_01@other.io", "email_verified": true});
    let (inserted, _) = env.sandbox.auth0().seed_users(
        "Username-Password-Authentication",
        std::slice::from_ref(&other),
    );
    assert_eq!(inserted, 1);
    env.sandbox.authgear().seed_user(other).unwrap();
    assert_eq!(auth0_emails(&env).len(), 9);
    assert_eq!(authgear_emails(&env).len(), 9);
    // qa_02 logs in at Auth0 (the password-realm grant counts logins): it is left
    // alone there unless --force. (The Authgear emulator's GraphQL `lastLoginAt` is
    // always null for now, so Authgear's side of the guard is tested with the stub.)
    let login = reqwest::Client::new()
        .post(format!("{}/oauth/token", env.sandbox.base_url()))
        .json(
            &json!({"grant_type": "http://auth0.com/oauth/grant-type/password-realm",
                      "client_id": env.sandbox.auth0().client_id(), "username": "qa_02@t.io",
                      "password": "qa_02", "realm": "Username-Password-Authentication"}),
        )
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success(), "{}", login.status());

    let mut left = NEIGHBOURS.map(String::from).to_vec();
    left.push("qa_02@t.io".into());
    left.sort();
    let rep = env.path("auth0.json");
    let args = [
        "delete",
        "--from",
        "auth0",
        "--prefix",
        "qa",
        "--count",
        "6",
        "--domain",
        "t.io",
        "--yes",
        "--report",
        rep.to_str().unwrap(),
    ];
    let o = env.run(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(auth0_emails(&env), left);
    let r = report(&rep);
    assert_eq!(
        r["summary"],
        json!({"total": 6, "deleted": 5, "skipped": 1, "failed": 0}),
        "{r}"
    );
    assert_eq!(r["records"][1]["code"], "LOGGED_IN", "{r}");
    let mut forced = args.to_vec();
    forced.push("--force");
    let o = env.run(&forced).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&rep);
    assert_eq!(r["summary"]["deleted"], 1, "{r}");
    assert_eq!(r["summary"]["skipped"], 5, "the others are gone: {r}");
    assert_eq!(auth0_emails(&env), NEIGHBOURS);

    let rep = env.path("authgear.json");
    let o = env
        .run(&[
            "delete",
            "--from",
            "authgear",
            "--prefix",
            "qa",
            "--count",
            "6",
            "--domain",
            "t.io",
            "--yes",
            "--report",
            rep.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        report(&rep)["summary"],
        json!({"total": 6, "deleted": 6, "skipped": 0, "failed": 0})
    );
    assert_eq!(authgear_emails(&env), NEIGHBOURS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_of_a_migrate_by_its_id_map() {
    let env = common::env().await;
    let o = env
        .run(&[
            "generate", "--prefix", "mig", "--count", "8", "--domain", "t.io", "--cost", "4",
            "--to", "auth0",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // One user is at the target already: the migrate skips it, and the undo must keep it.
    let o = env
        .run(&[
            "generate", "--prefix", "mig", "--count", "1", "--domain", "t.io", "--cost", "4",
            "--to", "authgear",
        ])
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
            "--id-map",
            ids.to_str().unwrap(),
            "--work-dir",
            env.path("work").to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(authgear_emails(&env).len(), 8);
    let o = env
        .run(&[
            "delete",
            "--from",
            "authgear",
            "--id-map",
            ids.to_str().unwrap(),
            "--yes",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        authgear_emails(&env),
        ["mig_01@t.io"],
        "only what the migrate created is gone"
    );
    assert_eq!(auth0_emails(&env).len(), 8, "the source is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_delete_from_the_auth0_emulator_resumes_with_its_state() {
    let env = common::env().await;
    for (prefix, start, count) in [("qa", "1", "12"), ("qa", "1000", "1"), ("qaa", "1", "1")] {
        let o = env
            .run(&[
                "generate", "--prefix", prefix, "--start", start, "--count", count, "--domain",
                "t.io", "--cost", "4", "--to", "auth0",
            ])
            .await;
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let state = env.path("delete.state");
    let rep = env.path("r.json");
    let args = [
        "delete",
        "--from",
        "auth0",
        "--prefix",
        "qa",
        "--count",
        "12",
        "--domain",
        "t.io",
        "--yes",
        "--concurrency",
        "3",
        "--state",
        state.to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ];
    // The test hook aborts the process (like kill -9) after the 4th outcome.
    let o = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authmigrate"));
        cmd.args(args)
            .current_dir(env.dir.path())
            .stdin(Stdio::null())
            .env_remove("RUST_LOG");
        for (k, v) in env.sandbox.env_vars() {
            cmd.env(k, v);
        }
        cmd.env("AUTHGEAR_PRIVATE_KEY_FILE", &env.key)
            .env_remove("AUTH0_TOKEN");
        cmd.env("AUTHMIGRATE_TEST_ABORT_AT", "delete:4");
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    };
    assert!(!o.status.success(), "{}", text(&o));
    let left = auth0_emails(&env).len();
    assert!(left > 2 && left < 14, "stopped midway: {left} left");
    let o = env.run(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(auth0_emails(&env), ["qa_1000@t.io", "qaa_01@t.io"]);
    let r = report(&rep);
    assert_eq!(r["summary"]["failed"], 0, "{r}");
    for x in r["records"].as_array().unwrap() {
        assert!(x["outcome"] == "deleted" || x["code"] == "NOT_FOUND", "{x}");
    }
}
