//! Authgear's usage quota (issue 12 §3) end to end: the import fills the day's quota
//! exactly, stops naming the period, its reset and the command that resumes; the
//! resume on the next (sandbox) day sends only what was never accepted.

mod common;

use authmigrate_sandbox::SandboxConfig;
use authmigrate_sandbox::authgear::AuthgearConfig;
use common::{env_with, report, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_daily_quota_stops_then_the_next_day_sends_only_the_rest() {
    let env = env_with(SandboxConfig {
        authgear: AuthgearConfig {
            import_daily_limit: Some(25),
            ..AuthgearConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let users = env.path("users.ndjson");
    let o = env
        .run(&[
            "generate",
            "--count",
            "40",
            "--cost",
            "4",
            "--out",
            users.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (state, rep) = (env.path("run.state"), env.path("report.json"));
    let args = [
        "import",
        "--to",
        "authgear",
        users.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ];
    let o = env.run(&args).await;
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("day"), "names the period: {out}");
    assert!(out.contains("00:00"), "names the reset: {out}");
    assert!(out.contains("--state"), "names the resume command: {out}");
    let authgear = env.sandbox.authgear();
    assert_eq!(authgear.users().len(), 25, "the quota used exactly");
    assert_eq!(authgear.usage_used(), 25);
    let r = report(&rep);
    assert_eq!(r["summary"]["inserted"], 25, "{r}");
    let not_imported = r["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["code"] == "NOT_IMPORTED")
        .count();
    assert_eq!(not_imported, 15, "{r}");

    // The next day: only the 15 never accepted are sent.
    authgear.advance_clock(jiff::SignedDuration::from_hours(24));
    let o = env.run(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(authgear.users().len(), 40);
    assert_eq!(authgear.usage_used(), 40, "nothing accepted was sent again");
    let r = report(&rep);
    assert_eq!(r["summary"]["total"], 40, "{r}");
    assert_eq!(r["summary"]["failed"], 0, "{r}");
}
