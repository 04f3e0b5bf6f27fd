//! In doubt, duplicates in the input, quota and bounded waits (issue 12).

use super::*;
use crate::driver::doubt::FROM_EARLIER_ATTEMPT;

fn with_state(dir: &tempfile::TempDir) -> DriverOptions {
    DriverOptions {
        state: Some(dir.path().join("state.ndjson")),
        ..opts()
    }
}

/// Records of chunk 0 of `n` records (from a dry run).
async fn chunk0(n: u64) -> Vec<u64> {
    let (_, plan) = run(
        &backend(),
        input(n),
        DriverOptions {
            dry_run: true,
            ..opts()
        },
    )
    .await;
    chunk_indices(&plan)[0].clone()
}

/// A journal whose chunk 0 request was sent but never answered (killed after the
/// POST, before the job id was journaled).
fn intent_only(options: &DriverOptions, chunk0: &[u64]) {
    std::fs::write(
        options.state.as_ref().unwrap(),
        format!(
            "{{\"type\":\"header\",\"version\":2,\"fingerprint\":\"fp\",\"backend\":\"memory\"}}\n\
             {{\"type\":\"submitting\",\"chunk\":0,\"attempt\":1,\"first_index\":0,\"count\":{}}}\n",
            chunk0.len()
        ),
    )
    .unwrap();
}

fn assert_all_once_no_failure(c: &Collect, n: u64) {
    let recs = c.records();
    assert_eq!(
        recs.keys().copied().collect::<Vec<_>>(),
        (0..n).collect::<Vec<_>>()
    );
    for (i, o) in &recs {
        assert!(o.outcome.is_success(), "record {i}: {o:?}");
    }
}

fn earlier(o: &RecordOutcome) -> bool {
    o.outcome == Outcome::Skipped && o.warnings.iter().any(|w| w == FROM_EARLIER_ATTEMPT)
}

#[tokio::test]
async fn an_intent_without_job_is_resolved_at_the_provider() {
    let c0 = chunk0(10).await;
    let dir = tempfile::tempdir().unwrap();
    let options = with_state(&dir);
    intent_only(&options, &c0);
    // The earlier request did import chunk 0.
    let b = backend()
        .with_resolve(true)
        .with_users(c0.iter().map(|&i| email(i)));
    let (r, c) = run(&b, input(10), options.clone()).await;
    let s = r.unwrap();
    assert_eq!(
        (s.skipped, s.inserted, s.failed),
        (c0.len() as u64, 10 - c0.len() as u64, 0)
    );
    assert_all_once_no_failure(&c, 10);
    let recs = c.records();
    for i in &c0 {
        assert!(earlier(&recs[i]), "{:?}", recs[i]);
        assert!(recs[i].user_id.is_some());
    }
    // Nothing of chunk 0 was sent again (no quota spent twice).
    assert_eq!(b.submissions_of(0), 0);
    assert_eq!(b.resolve_calls(), 1);
    assert!(c.events().contains(&Ev::Resolved {
        chunk: 0,
        found: c0.len(),
        resend: 0
    }));
    assert_eq!(b.users(), all_emails(10));
    // A third run replays it all.
    let (r, c3) = run(&backend(), input(10), options).await;
    assert_eq!(r.unwrap().skipped, c0.len() as u64);
    assert_eq!(c3.records(), recs);
}

#[tokio::test]
async fn an_intent_without_job_is_resent_and_already_exists_is_skipped() {
    let c0 = chunk0(10).await;
    let dir = tempfile::tempdir().unwrap();
    let options = with_state(&dir);
    intent_only(&options, &c0);
    // The earlier request imported only the first record; no look-up possible.
    let b = backend().with_users([email(c0[0])]);
    let (r, c) = run(&b, input(10), options).await;
    let s = r.unwrap();
    assert_eq!((s.skipped, s.failed), (1, 0));
    assert_all_once_no_failure(&c, 10);
    let recs = c.records();
    assert!(earlier(&recs[&c0[0]]), "{:?}", recs[&c0[0]]);
    // The provider's own code and message are kept.
    assert_eq!(recs[&c0[0]].code.as_deref(), Some("DUPLICATED_USER"));
    for i in &c0[1..] {
        assert_eq!(recs[i].outcome, Outcome::Inserted);
    }
    assert_eq!(b.submissions_of(0), 1);
    assert_eq!(b.users(), all_emails(10));
}

#[tokio::test]
async fn in_doubt_from_submit_is_not_resent_blindly() {
    // The first request's answer is lost after the job ran.
    let b = backend().in_doubt_on_submit(1).with_resolve(true);
    let (r, c) = run(&b, input(20), opts()).await;
    let s = r.unwrap();
    assert_eq!(s.failed, 0);
    assert_all_once_no_failure(&c, 20);
    let c0 = chunk_indices(&c)[0].clone();
    let recs = c.records();
    for i in &c0 {
        assert!(earlier(&recs[i]), "{i}: {:?}", recs[i]);
    }
    // Accepted once (the lost one), never resent.
    assert_eq!(b.submissions_of(0), 1);
    assert_eq!(b.users(), all_emails(20));

    // Without look-ups it is resent, and the users it made are skipped.
    let b = backend().in_doubt_on_submit(1);
    let (r, c) = run(&b, input(20), opts()).await;
    assert_eq!(r.unwrap().failed, 0);
    assert_all_once_no_failure(&c, 20);
    assert_eq!(b.submissions_of(0), 2);
    let recs = c.records();
    assert!(c0.iter().all(|i| earlier(&recs[i])));
    assert_eq!(b.users(), all_emails(20));
}

#[tokio::test]
async fn in_doubt_and_gone_jobs_from_poll_never_fail_their_records() {
    for resolve in [false, true] {
        let b = backend()
            .in_doubt_job(1, 1)
            .gone_job(2, 1)
            .with_resolve(resolve);
        let (r, c) = run(&b, input(30), opts()).await;
        assert_eq!(r.unwrap().failed, 0, "resolve {resolve}");
        assert_all_once_no_failure(&c, 30);
        let chunks = chunk_indices(&c);
        let recs = c.records();
        for k in [1, 2] {
            assert!(
                c.events()
                    .iter()
                    .any(|e| matches!(e, Ev::InDoubt { chunk, .. } if *chunk == k))
            );
            for i in &chunks[k as usize] {
                assert!(earlier(&recs[i]), "chunk {k} record {i}: {:?}", recs[i]);
            }
            assert_eq!(b.submissions_of(k), if resolve { 1 } else { 2 });
        }
        assert_eq!(b.users(), all_emails(30));
    }
}

#[tokio::test]
async fn a_job_that_completed_is_never_resubmitted() {
    let dir = tempfile::tempdir().unwrap();
    let options = with_state(&dir);
    let b = backend();
    let (r, _) = run(&b, input(20), options.clone()).await;
    assert_eq!(r.unwrap().inserted, 20);
    let sent = b.submissions();
    let (r, c) = run(&b, input(20), options).await;
    assert_eq!(r.unwrap().inserted, 20);
    assert_eq!(b.submissions(), sent);
    assert_eq!(b.resolve_calls(), 0);
    assert!(c.count(|e| matches!(e, Ev::Replayed { .. })) > 0);
}

#[tokio::test]
async fn in_doubt_resubmissions_are_bounded() {
    // Every request of chunk 0 is in doubt and nothing can be looked up.
    let mut b = backend();
    for attempt in 1..=5 {
        b = b.in_doubt_job(0, attempt);
    }
    let (r, c) = run(&b, input(10), opts()).await;
    let err = r.unwrap_err();
    assert!(err.to_string().contains("ended in doubt"), "{err}");
    let recs = c.records();
    assert_eq!(recs.len(), 10);
    let c0 = chunk_indices(&c)[0].clone();
    for i in &c0 {
        assert_eq!(recs[i].code.as_deref(), Some(UNKNOWN_JOB_STATE), "{i}");
    }
    assert_eq!(b.submissions_of(0), 4, "the first request and 3 resends");
}

#[tokio::test]
async fn duplicates_in_the_input_fail_naming_the_first_across_chunks() {
    let mut records = input(30);
    records[25].record = Ok(UserRecord {
        email: Some(email(2).to_uppercase()),
        ..user(25)
    });
    records[26].record = Ok(UserRecord {
        username: Some(user(3).username.unwrap().to_uppercase()),
        ..user(26)
    });
    records[27].record = Ok(UserRecord {
        source_id: Some("src-1".into()),
        ..user(27)
    });
    records[28].record = Ok(UserRecord {
        source_id: Some("src-1".into()),
        ..user(28)
    });
    let b = backend();
    let (r, c) = run(&b, records, opts()).await;
    let s = r.unwrap();
    assert_eq!((s.inserted, s.failed), (27, 3));
    let recs = c.records();
    let msg = |i: u64| {
        assert_eq!(recs[&i].code.as_deref(), Some(DUPLICATE_IN_INPUT), "{i}");
        recs[&i].message.clone().unwrap()
    };
    assert!(msg(25).contains("same e-mail as record 2"), "{}", msg(25));
    assert!(msg(26).contains("same username as record 3"), "{}", msg(26));
    assert!(
        msg(28).contains("same source user id as record 27"),
        "{}",
        msg(28)
    );
    // The first occurrences were imported, the duplicates never sent.
    assert_eq!(recs[&2].outcome, Outcome::Inserted);
    assert_eq!(b.users().len(), 27);
}

#[tokio::test]
async fn quota_is_used_up_exactly_then_the_run_stops_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let options = DriverOptions {
        resume_command: Some("authmigrate import --to memory in.ndjson --state s".into()),
        ..with_state(&dir)
    };
    // Chunks of 3-4 records; 11 records of quota today.
    let b = backend().with_quota(11);
    let (r, c) = run(&b, input(30), options.clone()).await;
    let err = r.unwrap_err();
    let text = match &err {
        Error::Backend(BackendError::Fatal { message, hint }) => {
            format!("{message} / {}", hint.as_deref().unwrap_or(""))
        }
        e => panic!("{e}"),
    };
    assert!(text.contains("day usage quota is used up"), "{text}");
    assert!(
        text.contains("resets at") && text.contains("00:00 UTC"),
        "{text}"
    );
    assert!(
        text.contains("resume with: authmigrate import --to memory in.ndjson --state s"),
        "{text}"
    );
    // Exactly the quota was imported; a 1-record request was refused.
    assert_eq!(b.submitted_records(), 11);
    assert_eq!(b.users().len(), 11);
    // Requests were halved down to single records (the last one refused).
    assert!(
        c.events().iter().any(|e| matches!(
            e,
            Ev::QuotaSplit {
                refused: 3,
                next: 1
            }
        )),
        "{:?}",
        c.events()
    );
    let recs = c.records();
    assert_eq!(recs.len(), 30);
    let ok = recs
        .values()
        .filter(|o| o.outcome == Outcome::Inserted)
        .count();
    assert_eq!(ok, 11);
    for o in recs.values().filter(|o| o.outcome == Outcome::Failed) {
        assert_eq!(o.code.as_deref(), Some(NOT_IMPORTED), "{o:?}");
    }

    // The next day: a resume sends only the 19 never accepted.
    let b2 = backend().with_users(b.users()).with_quota(100);
    let (r, c2) = run(&b2, input(30), options).await;
    let s = r.unwrap();
    assert_eq!((s.inserted, s.failed), (30, 0));
    assert_eq!(b2.submitted_records(), 19);
    assert_eq!(c2.records().len(), 30);
    assert_eq!(b2.users(), all_emails(30));
}

#[tokio::test]
async fn a_busy_provider_is_waited_for_at_most_wait_timeout() {
    let b = backend().busy_submits(u32::MAX, None);
    let options = DriverOptions {
        wait_timeout: Duration::from_millis(30),
        resume_command: Some("authmigrate import x --state s".into()),
        ..opts()
    };
    let (r, c) = run(&b, input(10), options).await;
    let err = r.unwrap_err();
    let Error::Backend(BackendError::Fatal { message, hint }) = &err else {
        panic!("{err}")
    };
    assert!(message.contains("--wait-timeout"), "{message}");
    assert!(
        message.contains("busy") || message.contains("limit of running jobs"),
        "{message}"
    );
    assert_eq!(
        hint.as_deref(),
        Some("resume with: authmigrate import x --state s")
    );
    assert!(c.count(|e| *e == Ev::Waiting) >= 1);
    let recs = c.records();
    assert_eq!(recs.len(), 10);
    assert!(
        recs.values()
            .all(|o| o.code.as_deref() == Some(NOT_IMPORTED))
    );
    assert_eq!(b.submissions(), 0);
}
