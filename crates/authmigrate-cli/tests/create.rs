//! `import --to auth0 --mode create` as the real binary against the sandbox.

mod common;

use common::{env, report, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_is_skipped_in_the_summary_and_the_report_names_each_email() {
    let env = env().await;
    let users = env.path("users.ndjson");
    let o = env
        .run(&[
            "generate",
            "--count",
            "3",
            "--cost",
            "4",
            "--out",
            users.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rep = env.path("report.json");
    let args = [
        "import",
        "--to",
        "auth0",
        "--mode",
        "create",
        users.to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ];
    let o = env.run(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("3 inserted, 0 skipped, 0 failed"),
        "{}",
        text(&o)
    );
    let o = env.run(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("0 inserted, 3 skipped, 0 failed"),
        "{}",
        text(&o)
    );
    let r = report(&rep);
    let emails: Vec<&str> = r["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "user_01@example.com",
            "user_02@example.com",
            "user_03@example.com"
        ]
    );
    assert!(
        r["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["outcome"] == "skipped")
    );
}
