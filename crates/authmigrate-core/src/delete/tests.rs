use std::sync::Mutex;

use super::*;

/// An in-memory provider: users by id, e-mail look-up, deletes counted.
#[derive(Debug, Default)]
struct Fake {
    users: Mutex<Vec<FoundUser>>,
    requests: Mutex<Vec<usize>>,
    per: usize,
    /// Fail the delete of this id.
    refuse: Option<String>,
}

impl Fake {
    fn with(emails: &[&str], per: usize) -> Self {
        let users = emails
            .iter()
            .enumerate()
            .map(|(i, e)| FoundUser {
                id: format!("id{i}"),
                email: Some((*e).to_owned()),
                ..FoundUser::default()
            })
            .collect();
        Self {
            users: Mutex::new(users),
            per,
            ..Self::default()
        }
    }
    fn emails(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .users
            .lock()
            .unwrap()
            .iter()
            .filter_map(|u| u.email.clone())
            .collect();
        v.sort();
        v
    }
}

#[async_trait]
impl UserDirectory for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn max_per_request(&self) -> usize {
        self.per
    }
    async fn lookup(&self, key: &Key) -> std::result::Result<Vec<FoundUser>, BackendError> {
        let users = self.users.lock().unwrap();
        Ok(users
            .iter()
            .filter(|u| match key {
                Key::Email(e) => u.email.as_deref() == Some(e),
                Key::Username(n) => u.username.as_deref() == Some(n),
                Key::Id(i) => &u.id == i,
            })
            .cloned()
            .collect())
    }
    async fn delete(&self, ids: &[String]) -> std::result::Result<Vec<Deleted>, BackendError> {
        assert!(ids.len() <= self.per, "{} ids in one request", ids.len());
        self.requests.lock().unwrap().push(ids.len());
        let mut users = self.users.lock().unwrap();
        Ok(ids
            .iter()
            .map(|id| {
                if self.refuse.as_deref() == Some(id) {
                    return Deleted::Failed {
                        code: "Forbidden".into(),
                        message: "no".into(),
                    };
                }
                match users.iter().position(|u| &u.id == id) {
                    Some(p) => {
                        users.remove(p);
                        Deleted::Deleted
                    }
                    None => Deleted::NotFound,
                }
            })
            .collect())
    }
}

fn opts() -> DeleteOptions {
    DeleteOptions {
        concurrency: 4,
        fingerprint: "t".into(),
        ..DeleteOptions::default()
    }
}

async fn run(fake: &Fake, sel: &Selection, o: &DeleteOptions) -> Vec<DeleteOutcome> {
    let planned = plan(fake, sel, o).await.unwrap();
    let out = Mutex::new(Vec::new());
    execute(fake, planned, o, &|r| out.lock().unwrap().push(r.clone()))
        .await
        .unwrap();
    let mut out = out.into_inner().unwrap();
    out.sort_by_key(|o| o.index);
    out
}

#[test]
fn generated_selection_is_exact() {
    let s = Selection::generated("qa", 3, 9, "t.io");
    let texts: Vec<&str> = s.keys.iter().map(Key::text).collect();
    assert_eq!(texts, ["qa_09@t.io", "qa_10@t.io", "qa_11@t.io"]);
}

#[tokio::test]
async fn deletes_only_the_selected_users_in_batches() {
    let fake = Fake::with(
        &[
            "qa_01@t.io",
            "qa_02@t.io",
            "qa_03@t.io",
            "qa_1000@t.io",
            "qaa_01@t.io",
            "qa_01@other.io",
        ],
        2,
    );
    let out = run(&fake, &Selection::generated("qa", 4, 1, "t.io"), &opts()).await;
    let outcomes: Vec<&str> = out.iter().map(|o| o.outcome.as_str()).collect();
    assert_eq!(outcomes, ["deleted", "deleted", "deleted", "skipped"]);
    assert_eq!(out[3].code.as_deref(), Some(NOT_FOUND));
    assert_eq!(
        fake.emails(),
        ["qa_01@other.io", "qa_1000@t.io", "qaa_01@t.io"]
    );
    let reqs = fake.requests.lock().unwrap().clone();
    assert_eq!(reqs.iter().sum::<usize>(), 3);
    assert!(reqs.iter().all(|n| *n <= 2));
}

#[tokio::test]
async fn the_guard_leaves_logged_in_and_other_domain_users_unless_forced() {
    let fake = Fake::with(&["a@t.io", "b@x.io"], 1);
    fake.users.lock().unwrap()[0].logins = Some(3);
    let sel = Selection {
        keys: vec![Key::Id("id0".into()), Key::Id("id1".into())],
        domain: Some("t.io".into()),
    };
    let out = run(&fake, &sel, &opts()).await;
    assert_eq!(out[0].code.as_deref(), Some(LOGGED_IN));
    assert!(out[0].message.as_deref().unwrap().contains("3 logins"));
    assert_eq!(out[1].code.as_deref(), Some(OTHER_DOMAIN));
    assert!(out.iter().all(|o| o.outcome == Outcome::Skipped));
    assert_eq!(fake.emails().len(), 2);
    let forced = DeleteOptions {
        force: true,
        ..opts()
    };
    let out = run(&fake, &sel, &forced).await;
    assert!(out.iter().all(|o| o.outcome == Outcome::Deleted), "{out:?}");
    assert!(fake.emails().is_empty());
}

#[tokio::test]
async fn a_refusal_fails_its_key_only_and_duplicates_are_deleted_once() {
    let mut fake = Fake::with(&["a@t.io", "b@t.io"], 5);
    fake.refuse = Some("id1".into());
    let sel = Selection {
        keys: vec![
            Key::Email("a@t.io".into()),
            Key::Email("b@t.io".into()),
            Key::Id("id0".into()),
        ],
        domain: None,
    };
    let out = run(&fake, &sel, &opts()).await;
    assert_eq!(out[0].outcome, Outcome::Deleted);
    assert_eq!(out[1].outcome, Outcome::Failed);
    assert_eq!(out[1].code.as_deref(), Some("Forbidden"));
    assert_eq!(out[2].code.as_deref(), Some(DUPLICATE_KEY));
    assert_eq!(fake.emails(), ["b@t.io"]);
}

#[tokio::test]
async fn a_rerun_with_the_state_replays_finished_keys_as_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("delete.state");
    let o = DeleteOptions {
        state: Some(state.clone()),
        ..opts()
    };
    let fake = Fake::with(&["qa_01@t.io", "qa_02@t.io", "keep@t.io"], 1);
    let sel = Selection::generated("qa", 2, 1, "t.io");
    let first = run(&fake, &sel, &o).await;
    assert!(first.iter().all(|r| r.outcome == Outcome::Deleted));
    // Simulate a kill mid-write: a torn last line.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&state)
        .unwrap()
        .write_all(b"{\"key\":{\"ind")
        .unwrap();
    let lookups_before = fake.requests.lock().unwrap().len();
    let again = run(&fake, &sel, &o).await;
    assert!(
        again
            .iter()
            .all(|r| r.outcome == Outcome::Deleted && r.replayed),
        "{again:?}"
    );
    assert_eq!(
        fake.requests.lock().unwrap().len(),
        lookups_before,
        "nothing deleted twice"
    );
    assert_eq!(fake.emails(), ["keep@t.io"]);
    // Another run's state is refused.
    let other = DeleteOptions {
        fingerprint: "other".into(),
        ..o.clone()
    };
    let e = plan(&fake, &sel, &other).await.unwrap_err().to_string();
    assert!(e.contains("another delete run"), "{e}");
}

#[test]
fn id_maps_and_email_files_take_only_what_the_run_made() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ids.csv");
    std::fs::write(
        &csv,
        "index,source_id,email,outcome,target_id\n0,s0,a@t.io,inserted,auth0|1\n1,s1,\"b,c\"@t.io,skipped,auth0|2\n2,s2,d@t.io,inserted,\"auth0|3\"\n",
    )
    .unwrap();
    let s = Selection::id_map(&csv).unwrap();
    assert_eq!(
        s.keys,
        [Key::Id("auth0|1".into()), Key::Id("auth0|3".into())]
    );
    let report = dir.path().join("report.json");
    std::fs::write(
        &report,
        r#"{"summary":{},"records":[{"index":0,"outcome":"inserted","user_id":"u1"},{"index":1,"outcome":"skipped","user_id":"u2"}]}"#,
    )
    .unwrap();
    assert_eq!(
        Selection::id_map(&report).unwrap().keys,
        [Key::Id("u1".into())]
    );
    std::fs::write(
        &csv,
        "index,source_id,email,outcome,target_id\n0,s0,a@t.io,inserted,\n",
    )
    .unwrap();
    let e = Selection::id_map(&csv).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("target_id"), "{e}");
    let emails = dir.path().join("emails.txt");
    std::fs::write(&emails, "# qa\na@t.io\n\nnot-an-email\n").unwrap();
    let e = Selection::emails_file(&emails).unwrap_err().to_string();
    assert!(e.contains("line 4") && e.contains("not-an-email"), "{e}");
}
