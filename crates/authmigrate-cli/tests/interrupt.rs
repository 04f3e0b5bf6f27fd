//! The kill matrix (issue 12 §2): the real binary is stopped at many points of an
//! import into the in-process sandbox (the `AUTHMIGRATE_TEST_ABORT_AT` test hook,
//! and a real SIGKILL), then run again with the same `--state`. Afterwards every
//! user is exactly once in the emulator, every index exactly once in the report,
//! no record is falsely failed, and the rerun exits 0.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use common::{Env, report, text};

/// A sandbox whose jobs run long enough to be polled while running.
async fn env() -> Env {
    let sandbox = Sandbox::start(SandboxConfig {
        faults: FaultConfig {
            job_latency: Duration::from_millis(400),
            ..FaultConfig::default()
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

const USERS: u64 = 12;

fn command(env: &Env, args: &[&str], abort_at: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authmigrate"));
    cmd.args(args)
        .current_dir(env.dir.path())
        .env_remove("RUST_LOG")
        .env_remove("AUTHMIGRATE_TEST_ABORT_AT");
    for (k, v) in env.sandbox.env_vars() {
        cmd.env(k, v);
    }
    cmd.env("AUTHGEAR_PRIVATE_KEY_FILE", &env.key);
    for k in ["AUTH0_TOKEN", "AUTHGEAR_ADMIN_TOKEN"] {
        cmd.env_remove(k);
    }
    if let Some(point) = abort_at {
        cmd.env("AUTHMIGRATE_TEST_ABORT_AT", point);
    }
    cmd
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

async fn generate(env: &Env, to: &str) -> String {
    let users = env.path(&format!("users-{to}.ndjson"));
    let o = env
        .run(&[
            "generate",
            "--count",
            &USERS.to_string(),
            "--cost",
            "4",
            "--seed",
            "7",
            "--out",
            users.to_str().unwrap(),
        ])
        .await;
    assert!(o.status.success(), "{}", text(&o));
    users.to_str().unwrap().to_owned()
}

fn import_args<'a>(to: &'a str, users: &'a str, state: &'a str, report: &'a str) -> Vec<&'a str> {
    vec![
        "import", "--to", to, users, "--state", state, "--report", report,
    ]
}

fn sandbox_emails(env: &Env, to: &str) -> Vec<String> {
    let mut emails: Vec<String> = match to {
        "auth0" => env
            .sandbox
            .auth0()
            .users()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_lowercase())
            .collect(),
        _ => env
            .sandbox
            .authgear()
            .users()
            .iter()
            .map(|u| u.email.clone().unwrap().to_lowercase())
            .collect(),
    };
    emails.sort();
    emails
}

/// After the rerun: everything exactly once, nothing failed, exit 0.
fn assert_whole(env: &Env, to: &str, rerun: &Output, report_path: &Path, case: &str) {
    assert_eq!(rerun.status.code(), Some(0), "{case}: {}", text(rerun));
    let r = report(report_path);
    let records = r["records"].as_array().unwrap();
    let mut seen: Vec<u64> = records
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..USERS).collect::<Vec<_>>(), "{case}");
    for rec in records {
        assert_ne!(rec["outcome"], "failed", "{case}: {rec}");
    }
    let emails = sandbox_emails(env, to);
    let mut unique = emails.clone();
    unique.dedup();
    assert_eq!(unique, emails, "{case}: a user twice in the emulator");
    assert_eq!(emails.len() as u64, USERS, "{case}: {emails:?}");
}

async fn kill_at(to: &str, point: &str) {
    let env = env().await;
    let users = generate(&env, to).await;
    let state = env.path("state.ndjson");
    let report_path = env.path("report.json");
    let args = import_args(
        to,
        &users,
        state.to_str().unwrap(),
        report_path.to_str().unwrap(),
    );
    let first = output(command(&env, &args, Some(point))).await;
    assert_eq!(
        first.status.code(),
        None,
        "{to} {point}: the hook must abort the run: {}",
        text(&first)
    );
    let rerun = output(command(&env, &args, None)).await;
    assert_whole(
        &env,
        to,
        &rerun,
        &report_path,
        &format!("{to} killed at {point}"),
    );
    if point.starts_with("after-post") {
        // The job ran but its id was never journaled: its users are the earlier
        // attempt's work, reported skipped with that said, never failed.
        let r = report(&report_path);
        for rec in r["records"].as_array().unwrap() {
            assert_eq!(rec["outcome"], "skipped", "{to} {point}: {rec}");
            assert!(
                rec["warnings"]
                    .to_string()
                    .contains("earlier, interrupted attempt"),
                "{to} {point}: {rec}"
            );
        }
    }
    // A third run has nothing left to send.
    let jobs = match to {
        "auth0" => env.sandbox.auth0().jobs_created(),
        _ => env.sandbox.authgear().jobs_created(),
    };
    let third = output(command(&env, &args, None)).await;
    assert_whole(
        &env,
        to,
        &third,
        &report_path,
        &format!("{to} {point}, third run"),
    );
    let after = match to {
        "auth0" => env.sandbox.auth0().jobs_created(),
        _ => env.sandbox.authgear().jobs_created(),
    };
    assert_eq!(jobs, after, "{to} {point}: a finished import sent again");
}

const POINTS: [&str; 5] = [
    "before-post:1",
    "after-post:1",
    "after-journal:1",
    "polling:1",
    "report:3",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth0_killed_at_every_point_resumes_exactly_once() {
    for point in POINTS {
        kill_at("auth0", point).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authgear_killed_at_every_point_resumes_exactly_once() {
    for point in POINTS {
        kill_at("authgear", point).await;
    }
}

/// A real SIGKILL once the journal shows the given line type.
async fn sigkill_after(to: &str, line: &str) {
    let env = env().await;
    let users = generate(&env, to).await;
    let state = env.path("state.ndjson");
    let report_path = env.path("report.json");
    let args = import_args(
        to,
        &users,
        state.to_str().unwrap(),
        report_path.to_str().unwrap(),
    );
    let mut cmd = command(&env, &args, None);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let needle = format!("\"type\":\"{line}\"");
    let state_path = state.clone();
    let killed = tokio::task::spawn_blocking(move || {
        loop {
            if std::fs::read_to_string(&state_path).is_ok_and(|s| s.contains(&needle)) {
                child.kill().unwrap();
                return child.wait().unwrap();
            }
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
    .await
    .unwrap();
    let rerun = output(command(&env, &args, None)).await;
    assert_whole(
        &env,
        to,
        &rerun,
        &report_path,
        &format!("{to} SIGKILL after `{line}` ({killed})"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_journal_points_resumes_exactly_once() {
    for to in ["auth0", "authgear"] {
        for line in ["submitting", "submitted", "finished"] {
            sigkill_after(to, line).await;
        }
    }
}

/// A job the provider ends `failed` (nothing imported) is sent again in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_is_resubmitted_without_false_failures() {
    for to in ["auth0", "authgear"] {
        let env = env().await;
        env.sandbox.faults().set(FaultConfig {
            job_latency: Duration::from_millis(50),
            fail_jobs: vec![0],
            ..FaultConfig::default()
        });
        let users = generate(&env, to).await;
        let state = env.path("state.ndjson");
        let report_path = env.path("report.json");
        let args = import_args(
            to,
            &users,
            state.to_str().unwrap(),
            report_path.to_str().unwrap(),
        );
        let o = output(command(&env, &args, None)).await;
        assert_whole(&env, to, &o, &report_path, &format!("{to} failed job"));
    }
}

/// `--dry-run --daily-quota N` says how many days the import needs; a bad
/// `--wait-timeout` is refused naming the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_days_of_quota_and_wait_timeout_is_parsed() {
    let env = env().await;
    let users = generate(&env, "authgear").await;
    let o = output(command(
        &env,
        &[
            "--json",
            "import",
            "--to",
            "authgear",
            &users,
            "--dry-run",
            "--daily-quota",
            "5",
            "--wait-timeout",
            "90s",
        ],
        None,
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    // 12 records at 5 a day: 3 days.
    assert_eq!(summary["data"]["days"], 3, "{summary}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("with a daily quota of 5 records: 3 day(s)"),
        "{}",
        text(&o)
    );
    assert_eq!(env.sandbox.authgear().jobs_created(), 0);

    let o = output(command(
        &env,
        &[
            "import",
            "--to",
            "authgear",
            &users,
            "--wait-timeout",
            "soon",
        ],
        None,
    ))
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("`soon` is not a duration"),
        "{}",
        text(&o)
    );
}
