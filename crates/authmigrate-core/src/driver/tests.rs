use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::backend::{BackendError, Limits, array_len_of};
use crate::memory::MemoryBackend;
use crate::record::{HashAlgorithm, PasswordHash};

/// An owned copy of an event, for assertions.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Planned {
        chunk: u64,
        records: usize,
        bytes: usize,
    },
    Submitted {
        chunk: u64,
        attempt: u32,
    },
    Busy,
    Waiting,
    QuotaSplit {
        refused: usize,
        next: usize,
    },
    InDoubt {
        chunk: u64,
        records: usize,
    },
    Resolved {
        chunk: u64,
        found: usize,
        resend: usize,
    },
    Retrying,
    Resumed {
        chunk: u64,
    },
    Replayed {
        chunk: u64,
        records: usize,
    },
    JobFinished {
        chunk: u64,
    },
    JobFailed {
        chunk: u64,
        will_retry: bool,
    },
    Record {
        index: u64,
        email: Option<String>,
        outcome: RecordOutcome,
    },
}

#[derive(Default)]
struct Collect {
    events: Mutex<Vec<Ev>>,
    /// Fires once when this chunk is submitted.
    notify_on_submit: Option<(u64, Arc<tokio::sync::Notify>)>,
}

impl Observer for Collect {
    fn event(&self, event: &Event<'_>) {
        let ev = match *event {
            Event::Planned {
                chunk,
                records,
                bytes,
                ..
            } => Ev::Planned {
                chunk,
                records,
                bytes,
            },
            Event::Submitted { chunk, attempt, .. } => {
                if let Some((c, n)) = &self.notify_on_submit
                    && *c == chunk
                {
                    n.notify_one();
                }
                Ev::Submitted { chunk, attempt }
            }
            Event::Busy { .. } => Ev::Busy,
            Event::Waiting { .. } => Ev::Waiting,
            Event::QuotaSplit { refused, next, .. } => Ev::QuotaSplit { refused, next },
            Event::InDoubt { chunk, records, .. } => Ev::InDoubt { chunk, records },
            Event::Resolved {
                chunk,
                found,
                resend,
            } => Ev::Resolved {
                chunk,
                found,
                resend,
            },
            Event::Retrying { .. } => Ev::Retrying,
            Event::Resumed { chunk, .. } => Ev::Resumed { chunk },
            Event::Replayed { chunk, records } => Ev::Replayed { chunk, records },
            Event::JobFinished { chunk, .. } => Ev::JobFinished { chunk },
            Event::JobFailed {
                chunk, will_retry, ..
            } => Ev::JobFailed { chunk, will_retry },
            Event::Record {
                index,
                email,
                outcome,
                ..
            } => Ev::Record {
                index,
                email: email.map(str::to_owned),
                outcome: outcome.clone(),
            },
        };
        self.events.lock().unwrap().push(ev);
    }
}

impl Collect {
    fn events(&self) -> Vec<Ev> {
        self.events.lock().unwrap().clone()
    }

    /// Record outcomes by index, asserting each index appears once.
    fn records(&self) -> BTreeMap<u64, RecordOutcome> {
        let mut out = BTreeMap::new();
        for ev in self.events() {
            if let Ev::Record { index, outcome, .. } = ev {
                assert!(
                    out.insert(index, outcome).is_none(),
                    "index {index} reported twice"
                );
            }
        }
        out
    }

    /// (chunk, records, bytes) of every Planned event.
    fn planned(&self) -> Vec<(u64, usize, usize)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Planned {
                    chunk,
                    records,
                    bytes,
                } => Some((chunk, records, bytes)),
                _ => None,
            })
            .collect()
    }

    fn count(&self, f: impl Fn(&Ev) -> bool) -> usize {
        self.events().iter().filter(|e| f(e)).count()
    }
}

fn email(i: u64) -> String {
    format!("user{i:02}@example.com")
}

fn user(i: u64) -> UserRecord {
    UserRecord {
        email: Some(email(i)),
        // Varying sizes make the greedy chunking non-trivial.
        username: Some(format!("user{i:02}{}", "x".repeat((i % 7) as usize))),
        password: Some(PasswordHash::bcrypt(format!("$2b$04${:053}", i))),
        ..Default::default()
    }
}

fn input(n: u64) -> Vec<InputRecord> {
    (0..n)
        .map(|i| InputRecord {
            index: i,
            record: Ok(user(i)),
        })
        .collect()
}

fn opts() -> DriverOptions {
    DriverOptions {
        poll_initial: Duration::from_millis(1),
        poll_max: Duration::from_millis(2),
        busy_wait: Duration::from_millis(1),
        transient_backoff: Duration::from_millis(1),
        fingerprint: "fp".into(),
        ..DriverOptions::default()
    }
}

fn backend() -> MemoryBackend {
    // ~100-byte records: 3 or 4 per chunk.
    MemoryBackend::new()
        .with_max_array_bytes(400)
        .with_latency(2)
}

async fn run(
    b: &MemoryBackend,
    records: Vec<InputRecord>,
    options: DriverOptions,
) -> (Result<Summary>, Arc<Collect>) {
    let c = Arc::new(Collect::default());
    let r = run_import(Arc::new(b.clone()), records.into_iter(), options, c.clone()).await;
    (r, c)
}

fn all_emails(n: u64) -> Vec<String> {
    (0..n).map(email).collect()
}

/// The indices of each chunk, from the Planned events (all inputs valid).
fn chunk_indices(c: &Collect) -> Vec<Vec<u64>> {
    let mut next = 0u64;
    c.planned()
        .iter()
        .map(|&(_, n, _)| {
            let v: Vec<u64> = (next..next + n as u64).collect();
            next += n as u64;
            v
        })
        .collect()
}

#[tokio::test]
async fn every_record_once_and_chunks_are_greedy_by_exact_size() {
    let b = backend();
    let (r, c) = run(&b, input(50), opts()).await;
    let s = r.unwrap();
    assert_eq!(
        s,
        Summary {
            total: 50,
            inserted: 50,
            ..Default::default()
        }
    );
    let recs = c.records();
    assert_eq!(
        recs.keys().copied().collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    assert!(
        recs.values()
            .all(|o| o.outcome == Outcome::Inserted && o.user_id.is_some())
    );
    assert_eq!(b.users(), all_emails(50));

    // Greedy invariant with exact byte math.
    let sizes: Vec<usize> = (0..50)
        .map(|i| b.encode(&user(i)).unwrap().json.len())
        .collect();
    let planned = c.planned();
    assert!(planned.len() >= 4, "{} chunks", planned.len());
    let mut next = 0usize;
    for (k, &(chunk, n, bytes)) in planned.iter().enumerate() {
        assert_eq!(chunk, k as u64);
        let mine = &sizes[next..next + n];
        assert_eq!(bytes, array_len_of(mine.iter().copied()));
        assert!(bytes <= 400);
        next += n;
        if k + 1 < planned.len() {
            let with_next = array_len_of(mine.iter().copied().chain([sizes[next]]));
            assert!(with_next > 400, "chunk {k} could take record {next}");
        }
    }
    assert_eq!(next, 50);
    assert_eq!(b.submissions(), planned.len() as u64);
    // Every Record event carries the e-mail.
    assert!(
        c.events()
            .iter()
            .any(|e| matches!(e, Ev::Record { index: 7, email: Some(m), .. } if *m == email(7)))
    );
}

#[tokio::test]
async fn keeps_the_job_limit_full_but_never_exceeds_it() {
    let b = backend().with_max_jobs_in_flight(3).with_latency(6);
    let (r, c) = run(&b, input(50), opts()).await;
    assert_eq!(r.unwrap().inserted, 50);
    assert_eq!(b.max_in_flight_seen(), 3);
    assert_eq!(c.records().len(), 50);
}

#[tokio::test]
async fn max_records_per_job_is_respected() {
    let b = MemoryBackend::new().with_limits(Limits {
        max_records_per_job: Some(4),
        ..MemoryBackend::new().limits()
    });
    let (r, c) = run(&b, input(10), opts()).await;
    assert_eq!(r.unwrap().inserted, 10);
    let counts: Vec<usize> = c.planned().iter().map(|p| p.1).collect();
    assert_eq!(counts, vec![4, 4, 2]);
}

#[tokio::test]
async fn busy_is_back_pressure_not_failure() {
    // The provider runs fewer jobs than the limits claim.
    let b = backend()
        .with_max_jobs_in_flight(3)
        .with_job_limit(2)
        .with_latency(3);
    let (r, c) = run(&b, input(50), opts()).await;
    assert_eq!(r.unwrap().inserted, 50);
    assert!(b.busy_answers() > 0);
    assert_eq!(c.count(|e| *e == Ev::Busy), b.busy_answers() as usize);
    assert_eq!(b.max_in_flight_seen(), 2);
    assert_eq!(b.users(), all_emails(50));

    // Someone else's job: busy while none of ours runs, with and without a hint.
    for hint in [None, Some(Duration::from_millis(1))] {
        let b = backend().busy_submits(3, hint);
        let (r, c) = run(&b, input(10), opts()).await;
        assert_eq!(r.unwrap().inserted, 10);
        assert_eq!(c.count(|e| *e == Ev::Busy), 3);
    }
}

#[tokio::test]
async fn a_job_failing_once_is_resubmitted() {
    let b = backend().fail_job_attempt(1, 1);
    let (r, c) = run(&b, input(20), opts()).await;
    assert_eq!(r.unwrap().inserted, 20);
    assert_eq!(b.submissions_of(1), 2);
    assert_eq!(b.submissions_of(0), 1);
    assert!(c.events().contains(&Ev::JobFailed {
        chunk: 1,
        will_retry: true
    }));
    assert!(c.events().contains(&Ev::Submitted {
        chunk: 1,
        attempt: 2
    }));
    assert_eq!(b.users(), all_emails(20));
}

#[tokio::test]
async fn a_job_failing_always_fails_exactly_its_records() {
    let b = backend().fail_chunk_always(2);
    let (r, c) = run(&b, input(30), opts()).await;
    let s = r.unwrap();
    assert_eq!(b.submissions_of(2), 3);
    let chunk2 = chunk_indices(&c)[2].clone();
    assert_eq!(s.failed, chunk2.len() as u64);
    assert_eq!(s.inserted, 30 - chunk2.len() as u64);
    for (i, o) in c.records() {
        if chunk2.contains(&i) {
            assert_eq!(o.code.as_deref(), Some(JOB_FAILED), "{i}");
            assert!(o.message.as_deref().unwrap().contains("failed 3 times"));
        } else {
            assert_eq!(o.outcome, Outcome::Inserted, "{i}");
        }
    }
    assert_eq!(
        c.count(|e| matches!(
            e,
            Ev::JobFailed {
                chunk: 2,
                will_retry: false
            }
        )),
        1
    );
}

#[tokio::test]
async fn fatal_mid_run_reports_every_record_then_fails() {
    let b = backend().fatal_on_submit(3);
    let (r, c) = run(&b, input(50), opts()).await;
    let err = r.unwrap_err();
    assert!(
        matches!(err, Error::Backend(BackendError::Fatal { .. })),
        "{err}"
    );
    let recs = c.records();
    assert_eq!(
        recs.keys().copied().collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    // Chunks 0 and 1 ran to their end; everything else was not imported.
    let chunks = chunk_indices(&c);
    let done: Vec<u64> = chunks[0].iter().chain(&chunks[1]).copied().collect();
    for (i, o) in &recs {
        if done.contains(i) {
            assert_eq!(o.outcome, Outcome::Inserted, "{i}");
        } else {
            assert_eq!(o.code.as_deref(), Some(NOT_IMPORTED), "{i}");
            assert!(
                o.message.as_deref().unwrap().contains("scripted fatal"),
                "{o:?}"
            );
        }
    }
    assert_eq!(b.users().len(), done.len());
}

#[tokio::test]
async fn invalid_and_too_large_records_fail_and_neighbours_import() {
    let mut records = input(12);
    records[3].record = Err(RecordFailure::new(
        "INVALID_RECORD",
        "record 3: field `email`: not a string",
    ));
    records[5].record = Ok(UserRecord {
        username: Some("noemail".into()),
        ..Default::default()
    });
    records[7].record = Ok(UserRecord {
        email: Some(email(7)),
        username: Some("y".repeat(500)),
        ..Default::default()
    });
    // A non-bcrypt hash: imported with a warning from encoding.
    let mut sha = PasswordHash::bcrypt("abc");
    sha.algorithm = HashAlgorithm::Sha256;
    records[9].record = Ok(UserRecord {
        email: Some(email(9)),
        password: Some(sha),
        ..Default::default()
    });
    let b = backend();
    let (r, c) = run(&b, records, opts()).await;
    let s = r.unwrap();
    assert_eq!((s.total, s.inserted, s.failed), (12, 9, 3));
    let recs = c.records();
    assert_eq!(recs[&3].code.as_deref(), Some("INVALID_RECORD"));
    assert_eq!(recs[&5].code.as_deref(), Some("MISSING_EMAIL"));
    assert_eq!(recs[&7].code.as_deref(), Some(RECORD_TOO_LARGE));
    let msg = recs[&7].message.as_deref().unwrap();
    assert!(msg.contains("bytes") && msg.contains("400"), "{msg}");
    assert_eq!(recs[&9].outcome, Outcome::Inserted);
    assert_eq!(
        recs[&9].warnings,
        vec!["password: `sha256` hashes are not kept by the memory backend".to_owned()]
    );
    for i in [0, 1, 2, 4, 6, 8, 10, 11] {
        assert_eq!(recs[&i].outcome, Outcome::Inserted, "{i}");
    }
    assert!(!b.users().contains(&email(7)));
}

#[tokio::test]
async fn transient_errors_are_retried_then_give_up() {
    let b = backend().transient_submits(2).transient_polls(2);
    let (r, c) = run(&b, input(20), opts()).await;
    assert_eq!(r.unwrap().inserted, 20);
    assert_eq!(c.count(|e| *e == Ev::Retrying), 4);

    let b = backend().transient_submits(100);
    let options = DriverOptions {
        max_transient_errors: 3,
        ..opts()
    };
    let (r, c) = run(&b, input(20), options).await;
    let err = r.unwrap_err().to_string();
    assert!(err.contains("failed 3 times in a row"), "{err}");
    let recs = c.records();
    assert_eq!(recs.len(), 20);
    assert!(
        recs.values()
            .all(|o| o.code.as_deref() == Some(NOT_IMPORTED))
    );
    assert_eq!(b.submit_calls(), 3);

    // Polling that keeps failing: the job's records are of unknown state.
    let b = backend().transient_polls(100);
    let options = DriverOptions {
        max_transient_errors: 2,
        ..opts()
    };
    let (r, c) = run(&b, input(20), options).await;
    assert!(r.is_err());
    let recs = c.records();
    assert_eq!(recs.len(), 20);
    let unknown = recs
        .values()
        .filter(|o| o.code.as_deref() == Some(UNKNOWN_JOB_STATE))
        .count();
    assert!(unknown > 0);
    let o = recs
        .values()
        .find(|o| o.code.as_deref() == Some(UNKNOWN_JOB_STATE))
        .unwrap();
    assert!(
        o.message.as_deref().unwrap().contains("job `job_mem"),
        "{o:?}"
    );
    assert!(
        recs.values()
            .all(|o| matches!(o.code.as_deref(), Some(NOT_IMPORTED | UNKNOWN_JOB_STATE)))
    );
}

#[tokio::test]
async fn missing_outcomes_are_a_protocol_error_not_a_loss() {
    let b = backend().truncate_outcomes(0);
    let (r, c) = run(&b, input(10), opts()).await;
    let s = r.unwrap();
    assert_eq!((s.total, s.failed), (10, 1));
    let last_of_0 = *chunk_indices(&c)[0].last().unwrap();
    let recs = c.records();
    assert_eq!(recs[&last_of_0].code.as_deref(), Some(BACKEND_PROTOCOL));
}

#[tokio::test]
async fn dry_run_submits_nothing() {
    let mut records = input(20);
    records[4].record = Err(RecordFailure::new("INVALID_RECORD", "bad"));
    let b = backend();
    let dir = tempfile::tempdir().unwrap();
    let options = DriverOptions {
        dry_run: true,
        state: Some(dir.path().join("state")),
        ..opts()
    };
    let (r, c) = run(&b, records, options).await;
    let s = r.unwrap();
    assert_eq!((s.total, s.planned, s.failed, s.inserted), (20, 19, 1, 0));
    assert_eq!(b.submit_calls(), 0);
    assert_eq!(c.records().len(), 1);
    assert_eq!(c.planned().iter().map(|p| p.1).sum::<usize>(), 19);
    assert!(!dir.path().join("state").exists());
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        r#"{"total":20,"inserted":0,"updated":0,"skipped":0,"failed":1,"planned":19}"#
    );
}

#[tokio::test]
async fn resume_after_fatal_submits_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.ndjson");
    let options = DriverOptions {
        state: Some(state.clone()),
        ..opts()
    };
    let first = backend().fatal_on_submit(3);
    let (r, c1) = run(&first, input(50), options.clone()).await;
    assert!(r.is_err());
    let done1: Vec<u64> = c1
        .records()
        .into_iter()
        .filter(|(_, o)| o.outcome == Outcome::Inserted)
        .map(|(i, _)| i)
        .collect();
    assert!(!done1.is_empty());

    let second = backend().with_users(first.users());
    let (r, c2) = run(&second, input(50), options.clone()).await;
    let s = r.unwrap();
    assert_eq!((s.total, s.inserted, s.failed), (50, 50, 0));
    let chunks = chunk_indices(&c2).len() as u64;
    assert!(chunks >= 4);
    assert_eq!(second.submissions(), chunks - 2);
    assert_eq!(second.submissions_of(0) + second.submissions_of(1), 0);
    let recs = c2.records();
    assert_eq!(
        recs.keys().copied().collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    assert!(
        recs.values()
            .all(|o| o.code.as_deref() != Some("DUPLICATED_USER"))
    );
    // Replayed outcomes are the first run's.
    let r1 = c1.records();
    for i in &done1 {
        assert_eq!(recs[i], r1[i]);
    }
    assert_eq!(c2.count(|e| matches!(e, Ev::Replayed { .. })), 2);
    assert_eq!(second.users(), all_emails(50));

    // A third run replays everything and submits nothing.
    let third = backend();
    let (r, c3) = run(&third, input(50), options).await;
    assert_eq!(r.unwrap().inserted, 50);
    assert_eq!(third.submit_calls(), 0);
    assert_eq!(c3.records(), recs);
}

#[tokio::test]
async fn a_killed_run_resumes_without_resubmitting() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.ndjson");
    let options = DriverOptions {
        state: Some(state.clone()),
        ..opts()
    };
    let b = backend().with_latency(4);
    let notify = Arc::new(tokio::sync::Notify::new());
    let c1 = Arc::new(Collect {
        notify_on_submit: Some((3, notify.clone())),
        ..Default::default()
    });
    let fut = run_import(
        Arc::new(b.clone()),
        input(50).into_iter(),
        options.clone(),
        c1.clone(),
    );
    tokio::select! {
        r = fut => panic!("the run ended before it was killed: {r:?}"),
        () = notify.notified() => {}
    }
    // Killed: the future is dropped with jobs in flight.
    let submitted_before = b.submissions();
    assert!(submitted_before >= 4);

    let (r, c2) = run(&b, input(50), options).await;
    let s = r.unwrap();
    assert_eq!((s.total, s.inserted, s.failed), (50, 50, 0));
    let chunks = chunk_indices(&c2).len() as u64;
    // Each chunk was submitted exactly once over both runs.
    assert_eq!(b.submissions(), chunks);
    for k in 0..chunks {
        assert_eq!(b.submissions_of(k), 1, "chunk {k}");
    }
    assert!(c2.count(|e| matches!(e, Ev::Resumed { .. })) >= 1);
    assert_eq!(c2.records().len(), 50);
    assert_eq!(b.users(), all_emails(50));
}

#[tokio::test]
async fn a_resumed_job_that_is_gone_is_resubmitted() {
    let b = backend();
    let (_, plan) = run(
        &b,
        input(10),
        DriverOptions {
            dry_run: true,
            ..opts()
        },
    )
    .await;
    let n0 = plan.planned()[0].1;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.ndjson");
    std::fs::write(
        &state,
        format!(
            "{{\"type\":\"header\",\"version\":1,\"fingerprint\":\"fp\",\"backend\":\"memory\"}}\n\
             {{\"type\":\"submitted\",\"chunk\":0,\"job\":\"job_gone\",\"first_index\":0,\"count\":{n0}}}\n"
        ),
    )
    .unwrap();
    let options = DriverOptions {
        state: Some(state.clone()),
        ..opts()
    };
    let (r, c) = run(&b, input(10), options).await;
    assert_eq!(r.unwrap().inserted, 10);
    assert_eq!(b.submissions_of(0), 1);
    assert!(c.events().contains(&Ev::Resumed { chunk: 0 }));
    assert!(c.events().contains(&Ev::JobFailed {
        chunk: 0,
        will_retry: true
    }));
}

#[tokio::test]
async fn a_journal_of_another_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.ndjson");
    let options = DriverOptions {
        state: Some(state.clone()),
        ..opts()
    };
    let (r, _) = run(&backend(), input(5), options.clone()).await;
    r.unwrap();
    let other = DriverOptions {
        fingerprint: "another".into(),
        ..options
    };
    let b = backend();
    let (r, c) = run(&b, input(5), other).await;
    let err = r.unwrap_err();
    assert!(
        matches!(&err, Error::State { path, .. } if *path == state),
        "{err}"
    );
    assert!(err.to_string().contains("fingerprint"), "{err}");
    assert!(c.events().is_empty());
    assert_eq!(b.submit_calls(), 0);
}

#[tokio::test]
async fn a_changed_input_is_detected_and_still_reported() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.ndjson");
    let options = DriverOptions {
        state: Some(state.clone()),
        ..opts()
    };
    let (r, _) = run(&backend(), input(20), options.clone()).await;
    r.unwrap();
    // Same fingerprint (a careless caller), but record 1 became much larger.
    let mut changed = input(20);
    changed[1].record = Ok(UserRecord {
        email: Some(email(1)),
        username: Some("z".repeat(200)),
        ..Default::default()
    });
    let b = backend();
    let (r, c) = run(&b, changed, options).await;
    let err = r.unwrap_err();
    assert!(matches!(err, Error::State { .. }), "{err}");
    assert!(err.to_string().contains("the input changed"), "{err}");
    assert_eq!(c.records().len(), 20);
    assert_eq!(b.submit_calls(), 0);
}

#[tokio::test]
async fn a_chunk_is_filled_to_the_exact_byte() {
    // Records of identical size s; the limit holds exactly three: 2 + 3s + 2.
    let same = |i: u64| UserRecord {
        email: Some(email(i)),
        ..Default::default()
    };
    let probe = MemoryBackend::new();
    let s = probe.encode(&same(0)).unwrap().json.len();
    let b = MemoryBackend::new().with_max_array_bytes(2 + 3 * s + 2);
    let records = (0..7)
        .map(|i| InputRecord {
            index: i,
            record: Ok(same(i)),
        })
        .collect();
    let (r, c) = run(&b, records, opts()).await;
    assert_eq!(r.unwrap().inserted, 7);
    let planned = c.planned();
    assert_eq!(
        planned,
        vec![(0, 3, 2 + 3 * s + 2), (1, 3, 2 + 3 * s + 2), (2, 1, 2 + s)]
    );
}

mod issue12;
