//! `generate --to auth0 --to authgear`: one command from nothing to the same test
//! users in both emulators, through `import`'s driver.

mod common;

use common::{env, report, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_into_both_providers_with_the_same_hashes() {
    let env = env().await;
    let rep = env.path("report.json");
    let state = env.path("run.state");
    let out = env.path("users.json");
    let args = [
        "generate",
        "--count",
        "25",
        "--prefix",
        "qa",
        "--domain",
        "t.io",
        "--cost",
        "4",
        "--seed",
        "3",
        "--to",
        "auth0",
        "--to",
        "authgear",
        "--report",
        rep.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--format",
        "auth0",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = env.run(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // One report and one journal per target.
    let r0 = report(&env.path("report.auth0.json"));
    let r1 = report(&env.path("report.authgear.json"));
    assert_eq!(r0["summary"]["inserted"], 25, "{r0}");
    assert_eq!(r1["summary"]["inserted"], 25, "{r1}");
    assert!(env.path("run.auth0.state").exists() && env.path("run.authgear.state").exists());
    assert!(!rep.exists());
    // Both emulators hold the 25 users, and each logs in with its username.
    assert_eq!(env.sandbox.auth0().users().len(), 25);
    assert_eq!(env.sandbox.authgear().users().len(), 25);
    for i in [1, 13, 25] {
        let (email, pw) = (format!("qa_{i:02}@t.io"), format!("qa_{i:02}"));
        assert!(env.sandbox.auth0().check_password(&email, &pw), "{email}");
        assert!(
            env.sandbox.authgear().check_password(&email, &pw),
            "{email}"
        );
    }
    // `--out` is written in the same pass (one hash per user, shared by the file and
    // both imports): its hashes check the same passwords.
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let file = file.as_array().unwrap();
    assert_eq!(file.len(), 25);
    assert_eq!(file[0]["email"], "qa_01@t.io");
    // At cost 4 the auth0 format carries the bcrypt hash as `custom_password_hash`.
    let hash = file[0]["custom_password_hash"]["hash"]["value"]
        .as_str()
        .unwrap();
    assert!(bcrypt::verify("qa_01", hash).unwrap());
    assert!(
        !env.path("run.state.users.ndjson").exists(),
        "the staged users are removed"
    );
    // A rerun with the same state resubmits nothing.
    let jobs = (
        env.sandbox.auth0().jobs_created(),
        env.sandbox.authgear().jobs_created(),
    );
    let o = env.run(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        jobs,
        (
            env.sandbox.auth0().jobs_created(),
            env.sandbox.authgear().jobs_created()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_to_with_state_needs_a_seed() {
    let env = env().await;
    let o = env
        .run(&["generate", "--count", "2", "--to", "auth0", "--state", "s"])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--seed"),
        "{}",
        text(&o)
    );
    assert_eq!(env.sandbox.auth0().users().len(), 0);
}
