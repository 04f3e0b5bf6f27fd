//! `migrate --delta` against the in-process sandbox: a migration, then changes at
//! the source; the delta sends exactly those, and a second delta sends nothing.

mod common;

use common::{env, report, text};
use serde_json::{Value, json};

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_sends_exactly_the_source_changes_and_a_second_sends_nothing() {
    let env = env().await;
    let users = env.path("users.ndjson");
    let o = env
        .run(&[
            "generate",
            "--count",
            "8",
            "--cost",
            "4",
            "--out",
            users.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = env
        .run(&["import", "--to", "auth0", users.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (work, state) = (env.path("work"), env.path("run.state"));
    let migrate = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--work-dir",
            work.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let args = migrate(&[]);
    let o = env
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(env.sandbox.authgear().users().len(), 8);

    // At the source: two sign-ups, a rename, a deletion.
    let changes = env.path("changes.ndjson");
    std::fs::write(
        &changes,
        "{\"email\":\"new_1@example.com\",\"email_verified\":true}\n\
         {\"email\":\"new_2@example.com\",\"email_verified\":true}\n\
         {\"email\":\"user_03@example.com\",\"email_verified\":true,\"name\":\"Renamed Three\"}\n",
    )
    .unwrap();
    let o = env
        .run(&[
            "import",
            "--to",
            "auth0",
            "--upsert",
            changes.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let gone = env.path("gone.txt");
    std::fs::write(&gone, "user_05@example.com\n").unwrap();
    let o = env
        .run(&[
            "delete",
            "--from",
            "auth0",
            "--emails",
            gone.to_str().unwrap(),
            "--yes",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let jobs = env.sandbox.authgear().jobs_created();
    let rep = env.path("delta.json");
    let args = migrate(&["--delta", "--report", rep.to_str().unwrap()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    // Killed right after its import request was sent (before the job id was
    // journaled), then run again: it resumes without exporting again.
    let o = env
        .run_env(&argv, &[("AUTHMIGRATE_TEST_ABORT_AT", "after-post:1")])
        .await;
    assert_eq!(o.status.code(), None, "the hook aborts: {}", text(&o));
    assert!(
        text(&o).contains("2 new, 1 changed, 6 unchanged, 1 removed"),
        "{}",
        text(&o)
    );
    let o = env.run(&argv).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("resuming the delta pass"), "{}", text(&o));
    // Exactly the three changed users were sent.
    let r = report(&rep);
    assert_eq!(r["summary"]["total"], 3, "{r}");
    assert_eq!(r["summary"]["failed"], 0, "{r}");
    let mut emails: Vec<String> = env
        .sandbox
        .authgear()
        .users()
        .into_iter()
        .filter_map(|u| u.email)
        .collect();
    emails.sort();
    let before = emails.len();
    emails.dedup();
    assert_eq!(before, emails.len(), "a user twice at the target");
    let authgear = env.sandbox.authgear();
    assert_eq!(
        authgear.users().len(),
        10,
        "the removed user stays until deleted"
    );
    let three = authgear.user_by_login_id("user_03@example.com").unwrap();
    assert_eq!(three.standard_attributes["name"], "Renamed Three");
    assert!(authgear.user_by_login_id("new_2@example.com").is_some());
    // The per-user delta report.
    let delta = lines(&work.join("delta-report.ndjson"));
    let of =
        |change: &str| -> Vec<&Value> { delta.iter().filter(|l| l["change"] == change).collect() };
    assert_eq!(of("new").len(), 2);
    assert_eq!(of("unchanged").len(), 6);
    let changed = of("changed");
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["email"], "user_03@example.com");
    assert_eq!(changed[0]["fields"], json!(["name"]));
    let removed = of("removed");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["email"], "user_05@example.com");
    assert!(removed[0]["target_id"].is_string(), "{}", removed[0]);
    // The removed list is an id map that `delete` takes.
    let csv = std::fs::read_to_string(work.join("removed.csv")).unwrap();
    assert!(csv.contains("user_05@example.com,inserted,"), "{csv}");

    // And the target now holds the source as the mapping says (the removed user is
    // only `extra` there).
    let vrep = env.path("verify.json");
    let o = env
        .run(&[
            "verify",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--work-dir",
            env.path("vwork").to_str().unwrap(),
            "--report",
            vrep.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = report(&vrep);
    assert_eq!(v["summary"]["matched"], 9, "{v}");
    assert_eq!(v["summary"]["extra"], 1, "{v}");

    // A second delta right after sends nothing.
    let jobs_after = authgear.jobs_created();
    assert!(jobs_after > jobs);
    let o = env
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("0 new, 0 changed, 9 unchanged, 1 removed"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("nothing to send"), "{}", text(&o));
    assert_eq!(authgear.jobs_created(), jobs_after);

    // --delete-removed removes the user gone from the source at the target too, and
    // the snapshot forgets it: the next delta has nothing removed.
    let args = migrate(&["--delta", "--delete-removed", "--yes"]);
    let o = env
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(authgear.users().len(), 9);
    assert!(authgear.user_by_login_id("user_05@example.com").is_none());
    let args = migrate(&["--delta"]);
    let o = env
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("0 new, 0 changed, 9 unchanged, 0 removed"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_without_an_earlier_pass_is_refused() {
    let env = env().await;
    let (work, state) = (env.path("work"), env.path("run.state"));
    let o = env
        .run(&[
            "migrate",
            "--from",
            "auth0",
            "--to",
            "authgear",
            "--delta",
            "--work-dir",
            work.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("run `migrate` without `--delta`"),
        "{}",
        text(&o)
    );
    let o = env
        .run(&["migrate", "--from", "auth0", "--to", "authgear", "--delta"])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("needs the `--state`"), "{}", text(&o));
}
