//! The Auth0 backend against the sandbox emulator, driven by the real driver.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authmigrate_auth0::backend::{MAX_UPLOAD_BYTES, is_connection_id};
use authmigrate_auth0::{Auth0Auth, Auth0Backend, Auth0Settings};
use authmigrate_core::backend::{
    BackendError, Batch, BatchRecord, ImportBackend, Outcome, RecordOutcome, Submit,
};
use authmigrate_core::driver::{self, DriverOptions, Event, InputRecord, Observer, Summary};
use authmigrate_core::generate::GenerateOptions;
use authmigrate_core::record::{JsonObject, PasswordHash};
use authmigrate_core::retry::RetryPolicy;
use authmigrate_core::{Error, UserRecord};
use authmigrate_sandbox::auth0::Auth0Config;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use secrecy::SecretString;
use serde_json::{Value, json};

const CONN: &str = "Username-Password-Authentication";

async fn sandbox_with(mut faults: FaultConfig, mut auth0: Auth0Config) -> Sandbox {
    if faults.job_latency.is_zero() {
        faults.job_latency = Duration::from_millis(25);
    }
    auth0.bcrypt_cost = 4;
    Sandbox::start(SandboxConfig {
        faults,
        auth0,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

async fn sandbox() -> Sandbox {
    sandbox_with(FaultConfig::default(), Auth0Config::default()).await
}

fn settings(sb: &Sandbox) -> Auth0Settings {
    let mut s = Auth0Settings::new(
        sb.base_url(),
        Auth0Auth::ClientCredentials {
            client_id: sb.auth0().client_id().to_owned(),
            client_secret: SecretString::from(sb.auth0().client_secret().to_owned()),
        },
    );
    s.retry = RetryPolicy::immediate(12);
    s
}

fn options() -> DriverOptions {
    DriverOptions {
        poll_initial: Duration::from_millis(10),
        poll_max: Duration::from_millis(40),
        busy_wait: Duration::from_millis(10),
        transient_backoff: Duration::from_millis(5),
        fingerprint: "test".into(),
        ..DriverOptions::default()
    }
}

/// What a run reported, owned.
#[derive(Default)]
struct Seen {
    planned: Vec<(u64, usize, f64)>,
    submitted: Vec<u64>,
    finished: u32,
    replayed: Vec<u64>,
    records: Vec<(u64, RecordOutcome)>,
}

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Seen>>);

impl Recorder {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap()
    }

    /// Outcomes by index; panics if an index was reported twice.
    fn by_index(&self) -> BTreeMap<u64, RecordOutcome> {
        let mut out = BTreeMap::new();
        for (i, o) in &self.seen().records {
            assert!(
                out.insert(*i, o.clone()).is_none(),
                "index {i} reported twice"
            );
        }
        out
    }
}

impl Observer for Recorder {
    fn event(&self, event: &Event<'_>) {
        let mut s = self.0.lock().unwrap();
        match event {
            Event::Planned {
                chunk, bytes, fill, ..
            } => s.planned.push((*chunk, *bytes, *fill)),
            Event::Submitted { chunk, .. } => s.submitted.push(*chunk),
            Event::JobFinished { .. } => s.finished += 1,
            Event::Replayed { chunk, .. } => s.replayed.push(*chunk),
            Event::Record { index, outcome, .. } => s.records.push((*index, (*outcome).clone())),
            _ => {}
        }
    }
}

fn input(records: Vec<UserRecord>) -> impl Iterator<Item = InputRecord> + Send + 'static {
    records.into_iter().enumerate().map(|(i, r)| InputRecord {
        index: i as u64,
        record: Ok(r),
    })
}

async fn run(
    backend: Auth0Backend,
    records: Vec<UserRecord>,
    options: DriverOptions,
) -> (authmigrate_core::Result<Summary>, Recorder) {
    let rec = Recorder::default();
    let result = driver::run_import(
        Arc::new(backend),
        input(records),
        options,
        Arc::new(rec.clone()),
    )
    .await;
    (result, rec)
}

/// `count` generated users (bcrypt cost 4, password = username), each with
/// `pad` bytes of user_metadata.
fn generated(count: u64, pad: usize) -> Vec<UserRecord> {
    let opts = GenerateOptions {
        count,
        cost: 4,
        seed: Some(11),
        ..GenerateOptions::default()
    };
    let mut out = Vec::new();
    authmigrate_core::generate::generate(&opts, |mut u| {
        u.user_metadata = Some(padding(pad));
        out.push(u);
        Ok(())
    })
    .unwrap();
    out
}

fn padding(pad: usize) -> JsonObject {
    let mut m = JsonObject::new();
    if pad > 0 {
        m.insert("bio".into(), json!("x".repeat(pad)));
    }
    m
}

/// Cheap users sharing one cost-4 hash of `pw`.
fn cheap(count: usize, prefix: &str, pad: usize) -> Vec<UserRecord> {
    let hash = bcrypt::hash("pw", 4).unwrap();
    (0..count)
        .map(|i| UserRecord {
            email: Some(format!("{prefix}{i}@example.com")),
            email_verified: Some(true),
            name: Some(format!("{prefix} {i}")),
            password: Some(PasswordHash::bcrypt(hash.clone())),
            user_metadata: Some(padding(pad)),
            ..Default::default()
        })
        .collect()
}

async fn login(sb: &Sandbox, username: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/oauth/token", sb.base_url()))
        .form(&[
            (
                "grant_type",
                "http://auth0.com/oauth/grant-type/password-realm",
            ),
            ("client_id", sb.auth0().client_id()),
            ("username", username),
            ("password", password),
            ("realm", CONN),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn fatal_parts(e: BackendError) -> (String, String) {
    match e {
        BackendError::Fatal { message, hint } => (message, hint.unwrap_or_default()),
        other => panic!("expected a fatal error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_import_fills_files_keeps_two_jobs_and_passwords_log_in() {
    let sb = sandbox_with(
        FaultConfig {
            // Long enough that a job is still running when the next one is sent
            // (a 500 kB upload takes a while in a debug build).
            job_latency: Duration::from_millis(300),
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let users = generated(1200, 1700);
    let emails: HashSet<String> = users.iter().map(|u| u.email.clone().unwrap()).collect();
    let backend = Auth0Backend::new(settings(&sb)).unwrap();
    let (summary, rec) = run(backend, users, options()).await;
    let summary = summary.unwrap();
    assert_eq!(summary.total, 1200);
    assert_eq!(summary.inserted, 1200, "{summary:?}");

    let planned = rec.seen().planned.clone();
    assert!(planned.len() >= 4, "{} chunks", planned.len());
    for (chunk, bytes, fill) in &planned[..planned.len() - 1] {
        assert!(*fill >= 0.95, "chunk {chunk}: {bytes} bytes, fill {fill}");
    }
    assert_eq!(sb.auth0().jobs_created(), planned.len());
    assert_eq!(sb.auth0().max_active_jobs_seen(), 2);
    assert_eq!(sb.auth0().completion_emails_requested(), 0);

    let stored: HashSet<String> = sb
        .auth0()
        .users()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, emails);
    for i in [1u64, 2, 333, 777, 1199, 1200] {
        let name = format!("user_{i:02}");
        assert_eq!(
            login(&sb, &format!("{name}@example.com"), &name).await,
            200,
            "{name}"
        );
    }
    assert_eq!(login(&sb, "user_05@example.com", "user_06").await, 403);
}

#[tokio::test]
async fn a_429_storm_and_a_5xx_storm_still_complete() {
    for faults in [
        FaultConfig {
            seed: 3,
            burst_429: Some((3, 2)),
            max_faults: Some(30),
            ..FaultConfig::default()
        },
        FaultConfig {
            seed: 4,
            error_rate: 0.4,
            max_faults: Some(30),
            ..FaultConfig::default()
        },
    ] {
        let sb = sandbox_with(faults.clone(), Auth0Config::default()).await;
        let users = cheap(600, "storm", 1500);
        let backend = Auth0Backend::new(settings(&sb)).unwrap();
        let (summary, rec) = run(backend, users, options()).await;
        let summary = summary.unwrap_or_else(|e| panic!("{faults:?}: {e}"));
        assert_eq!(summary.inserted, 600, "{faults:?}: {summary:?}");
        assert_eq!(rec.by_index().len(), 600);
        assert!(sb.faults().injected() > 0, "{faults:?}: no fault injected");
        assert_eq!(sb.auth0().users().len(), 600);
        assert!(rec.seen().planned.len() >= 2);
    }
}

#[tokio::test]
async fn resume_after_a_fatal_stop_never_resubmits_finished_chunks() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.jsonl");
    let users = cheap(1500, "resume", 1500);
    let n = users.len() as u64;

    // Run 1: after two jobs finished, every request fails with a 500.
    let faults = sb.faults().clone();
    let finished = Arc::new(AtomicU32::new(0));
    let rec1 = Recorder::default();
    let observer = {
        let rec1 = rec1.clone();
        let finished = finished.clone();
        move |e: &Event<'_>| {
            rec1.event(e);
            if matches!(e, Event::JobFinished { .. })
                && finished.fetch_add(1, Ordering::SeqCst) + 1 == 2
            {
                faults.set(FaultConfig {
                    job_latency: Duration::from_millis(25),
                    error_rate: 1.0,
                    ..FaultConfig::default()
                });
            }
        }
    };
    let mut s = settings(&sb);
    s.retry = RetryPolicy::immediate(2);
    let opts = DriverOptions {
        state: Some(state.clone()),
        max_transient_errors: 1,
        ..options()
    };
    let result = driver::run_import(
        Arc::new(Auth0Backend::new(s).unwrap()),
        input(users.clone()),
        opts.clone(),
        Arc::new(observer),
    )
    .await;
    assert!(result.is_err(), "run 1 should stop: {result:?}");
    let first = rec1.by_index();
    assert_eq!(first.len() as u64, n, "every record reported in run 1");
    let done_1 = first.values().filter(|o| o.outcome.is_success()).count();
    assert!(done_1 > 0 && (done_1 as u64) < n, "{done_1} done in run 1");
    let jobs_1 = sb.auth0().jobs_created();

    // Run 2: faults off, same state.
    sb.faults().set(FaultConfig {
        job_latency: Duration::from_millis(25),
        ..FaultConfig::default()
    });
    let (summary, rec2) = run(Auth0Backend::new(settings(&sb)).unwrap(), users, opts).await;
    let summary = summary.unwrap();
    assert_eq!(summary.total, n);
    assert_eq!(summary.failed, 0, "{summary:?}");
    let second = rec2.by_index();
    assert_eq!(second.len() as u64, n);
    assert!(second.keys().copied().eq(0..n));
    let seen2 = rec2.seen();
    assert!(seen2.replayed.len() >= 2, "replayed {:?}", seen2.replayed);
    // Every chunk was submitted exactly once across both runs.
    let chunks = seen2.planned.len();
    assert_eq!(
        sb.auth0().jobs_created(),
        chunks,
        "jobs after run 1: {jobs_1}"
    );
    for c in &seen2.submitted {
        assert!(
            !seen2.replayed.contains(c),
            "chunk {c} replayed and resubmitted"
        );
    }
    drop(seen2);
    assert_eq!(sb.auth0().users().len() as u64, n);
}

#[tokio::test]
async fn upsert_updates_upsertable_fields_only() {
    let sb = sandbox().await;
    let users = cheap(3, "up", 0);
    let (summary, _) = run(
        Auth0Backend::new(settings(&sb)).unwrap(),
        users.clone(),
        options(),
    )
    .await;
    assert_eq!(summary.unwrap().inserted, 3);

    let changed: Vec<UserRecord> = users
        .into_iter()
        .map(|mut u| {
            u.name = Some("New Name".into());
            u.blocked = Some(true);
            u
        })
        .collect();
    let mut s = settings(&sb);
    s.upsert = true;
    let (summary, rec) = run(Auth0Backend::new(s).unwrap(), changed, options()).await;
    let summary = summary.unwrap();
    assert_eq!(summary.updated, 3, "{summary:?}");
    assert!(
        rec.by_index()
            .values()
            .all(|o| o.outcome == Outcome::Updated)
    );
    for i in 0..3 {
        let u = sb
            .auth0()
            .user_by_email(&format!("up{i}@example.com"))
            .unwrap();
        assert_eq!(u["name"], "New Name");
        assert_ne!(u["blocked"], json!(true), "blocked is not upsertable");
    }
    // Without upsert, the same users fail as existing.
    let (summary, rec) = run(
        Auth0Backend::new(settings(&sb)).unwrap(),
        cheap(3, "up", 0),
        options(),
    )
    .await;
    assert_eq!(summary.unwrap().failed, 3);
    assert!(
        rec.by_index()
            .values()
            .all(|o| o.code.as_deref() == Some("DUPLICATED_USER"))
    );
}

#[tokio::test]
async fn per_user_errors_fail_exactly_those_indexes() {
    let sb = sandbox().await;
    let existing = cheap(1, "old", 0);
    let (summary, _) = run(
        Auth0Backend::new(settings(&sb)).unwrap(),
        existing.clone(),
        options(),
    )
    .await;
    assert_eq!(summary.unwrap().inserted, 1);

    let mut users = cheap(4, "ok", 0);
    let mut dup = users[1].clone();
    dup.name = Some("second copy".into());
    let mut bad = users[0].clone();
    bad.email = Some("not-an-email".into());
    // 0 ok0, 1 ok1, 2 dup of ok1 (in the input), 3 old0 (exists), 4 ok2, 5 bad email, 6 ok3
    let ok3 = users.pop().unwrap();
    let ok2 = users.pop().unwrap();
    users.push(dup);
    users.push(existing[0].clone());
    users.push(ok2);
    users.push(bad);
    users.push(ok3);
    let (summary, rec) = run(Auth0Backend::new(settings(&sb)).unwrap(), users, options()).await;
    let summary = summary.unwrap();
    assert_eq!((summary.inserted, summary.failed), (4, 3), "{summary:?}");
    let out = rec.by_index();
    let failed: Vec<(u64, &str)> = out
        .iter()
        .filter(|(_, o)| o.outcome == Outcome::Failed)
        .map(|(i, o)| (*i, o.code.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        failed,
        [
            // A duplicate inside the input is caught by the driver before sending.
            (2, "DUPLICATE_IN_INPUT"),
            (3, "DUPLICATED_USER"),
            (5, "FORMAT")
        ]
    );
    assert!(
        out[&2]
            .message
            .as_deref()
            .unwrap()
            .contains("same e-mail as record 1")
    );
    assert!(out[&5].message.as_deref().unwrap().contains("format email"));
    let stored = sb.auth0().user_by_email("ok1@example.com").unwrap();
    assert_eq!(stored["name"], "ok 1", "the first occurrence was inserted");
    assert_eq!(sb.auth0().users().len(), 5);
}

#[tokio::test]
async fn completion_email_only_when_asked_and_external_id_is_sent() {
    let sb = sandbox().await;
    let (summary, _) = run(
        Auth0Backend::new(settings(&sb)).unwrap(),
        cheap(2, "a", 0),
        options(),
    )
    .await;
    assert_eq!(summary.unwrap().inserted, 2);
    assert_eq!(sb.auth0().completion_emails_requested(), 0);

    let mut s = settings(&sb);
    s.send_completion_email = true;
    s.external_id = Some("migration-42".into());
    let (summary, _) = run(Auth0Backend::new(s).unwrap(), cheap(2, "b", 0), options()).await;
    assert_eq!(summary.unwrap().inserted, 2);
    assert_eq!(sb.auth0().completion_emails_requested(), 1);
}

#[tokio::test]
async fn connection_problems_are_fatal_with_hints() {
    let sb = sandbox().await;
    let prepare = |name: &str| {
        let mut s = settings(&sb);
        s.connection = name.to_owned();
        async move { Auth0Backend::new(s).unwrap().prepare().await.unwrap_err() }
    };
    let (msg, hint) = fatal_parts(prepare("Nope").await);
    assert_eq!(msg, "connection `Nope` not found");
    assert_eq!(
        hint,
        "pass --connection with one of the tenant's database connections: Username-Password-Authentication, Disabled-DB"
    );
    let (msg, hint) = fatal_parts(prepare("email").await);
    assert!(
        msg.contains("is not a database connection (strategy `email`)"),
        "{msg}"
    );
    assert!(hint.contains("Username-Password-Authentication"), "{hint}");
    let (msg, hint) = fatal_parts(prepare("Disabled-DB").await);
    assert!(msg.contains("`Disabled-DB` being disabled"), "{msg}");
    assert!(
        hint.starts_with("enable an application on this connection"),
        "{hint}"
    );

    // Through the driver: nothing is submitted, the error comes back.
    let mut s = settings(&sb);
    s.connection = "Nope".into();
    let (result, rec) = run(Auth0Backend::new(s).unwrap(), cheap(2, "x", 0), options()).await;
    assert!(matches!(
        result,
        Err(Error::Backend(BackendError::Fatal { .. }))
    ));
    assert!(rec.seen().submitted.is_empty());
    assert_eq!(sb.auth0().jobs_created(), 0);

    // A good connection resolves to its id.
    let b = Auth0Backend::new(settings(&sb)).unwrap();
    b.prepare().await.unwrap();
    let id = b.connection_id().unwrap();
    assert!(is_connection_id(id));
    assert_eq!(Some(id.to_owned()), sb.auth0().connection_id(CONN));
}

#[tokio::test]
async fn bad_credentials_and_scopes_are_fatal_with_hints() {
    let sb = sandbox().await;
    let mut s = settings(&sb);
    s.auth = Auth0Auth::Token(SecretString::from("not-a-token".to_owned()));
    let (msg, hint) = fatal_parts(Auth0Backend::new(s).unwrap().prepare().await.unwrap_err());
    assert!(msg.contains("HTTP 401: Invalid token."), "{msg}");
    assert!(hint.contains("read:connections"), "{hint}");

    let mut s = settings(&sb);
    s.auth = Auth0Auth::ClientCredentials {
        client_id: "sandbox-client".into(),
        client_secret: SecretString::from("wrong".to_owned()),
    };
    let (msg, hint) = fatal_parts(Auth0Backend::new(s).unwrap().prepare().await.unwrap_err());
    assert!(
        msg.starts_with("auth0 refused the client credentials (HTTP 401)"),
        "{msg}"
    );
    assert!(!msg.contains("wrong") && !hint.contains("wrong"));

    let scoped = sandbox_with(
        FaultConfig::default(),
        Auth0Config {
            scopes: vec!["read:users".into()],
            ..Auth0Config::default()
        },
    )
    .await;
    let (msg, hint) = fatal_parts(
        Auth0Backend::new(settings(&scoped))
            .unwrap()
            .prepare()
            .await
            .unwrap_err(),
    );
    assert!(msg.contains("HTTP 403"), "{msg}");
    assert!(hint.contains("lacks a scope"), "{hint}");
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_any_request() {
    let s = Auth0Settings::new(
        "http://dev-x.us.auth0.com",
        Auth0Auth::Token(SecretString::from("t".to_owned())),
    );
    let (msg, hint) = fatal_parts(Auth0Backend::new(s).unwrap_err());
    assert!(
        msg.starts_with("refusing plain http:// for non-loopback"),
        "{msg}"
    );
    assert!(hint.contains("https://"));
}

#[tokio::test]
async fn debug_never_shows_secrets() {
    let sb = sandbox().await;
    let b = Auth0Backend::new(settings(&sb)).unwrap();
    b.prepare().await.unwrap();
    let shown = format!("{b:?} {:?} {:?}", b.settings(), b.client());
    assert!(!shown.contains("sandbox-secret"), "{shown}");
    assert!(shown.contains("sandbox-client"));
    let mut s = settings(&sb);
    s.auth = Auth0Auth::Token(SecretString::from("eyJsecret-token".to_owned()));
    let b = Auth0Backend::new(s).unwrap();
    assert!(!format!("{b:?}").contains("eyJsecret-token"));
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    let sb = sandbox_with(
        FaultConfig::default(),
        Auth0Config {
            token_lifetime: Duration::from_secs(1),
            ..Auth0Config::default()
        },
    )
    .await;
    let b = Auth0Backend::new(settings(&sb)).unwrap();
    b.prepare().await.unwrap();
    assert_eq!(b.client().tokens_fetched(), 1);
    let url = b.client().api_url(&["connections"]);
    assert_eq!(b.client().get("list", &url).await.unwrap().status, 200);
    assert_eq!(b.client().tokens_fetched(), 1, "cached token reused");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(b.client().get("list", &url).await.unwrap().status, 200);
    assert_eq!(b.client().tokens_fetched(), 2, "refreshed after expiry");
}

fn one_record_batch(json: Vec<u8>) -> Batch {
    Batch {
        chunk: 0,
        records: vec![BatchRecord {
            index: 0,
            label: None,
            json,
            warnings: vec![],
        }],
    }
}

fn record_of_len(email: &str, len: usize) -> Vec<u8> {
    let head = format!("{{\"email\":\"{email}\",\"user_metadata\":{{\"p\":\"");
    let tail = "\"}}";
    let pad = len - head.len() - tail.len();
    let out = format!("{head}{}{tail}", "x".repeat(pad)).into_bytes();
    assert_eq!(out.len(), len);
    out
}

#[tokio::test]
async fn max_array_bytes_is_exact() {
    for (upsert, external_id) in [(false, None), (true, Some("ext-1".to_owned()))] {
        let sb = sandbox().await;
        let mut s = settings(&sb);
        s.upsert = upsert;
        s.external_id = external_id;
        let b = Auth0Backend::new(s).unwrap();
        b.prepare().await.unwrap();
        let limits = b.limits();
        assert_eq!(limits.max_upload_bytes, MAX_UPLOAD_BYTES);
        assert_eq!(limits.max_jobs_in_flight, 2);
        assert_eq!(
            limits.max_array_bytes + b.multipart_overhead(),
            MAX_UPLOAD_BYTES
        );
        let con = b.connection_id().unwrap().to_owned();

        // An array of exactly max_array_bytes: a body of exactly 512000, accepted.
        let full = one_record_batch(record_of_len(
            "full@example.com",
            limits.max_array_bytes - 2,
        ));
        assert_eq!(full.array_len(), limits.max_array_bytes);
        assert_eq!(
            b.import_body(&full.to_array(), &con).bytes.len(),
            MAX_UPLOAD_BYTES
        );
        assert!(matches!(
            b.submit(&full).await.unwrap(),
            Submit::Accepted(_)
        ));

        // One byte more: 512001 bytes, refused with 413 (fatal: a chunking bug).
        let over = one_record_batch(record_of_len(
            "over@example.com",
            limits.max_array_bytes - 1,
        ));
        assert_eq!(
            b.import_body(&over.to_array(), &con).bytes.len(),
            MAX_UPLOAD_BYTES + 1
        );
        let (msg, hint) = fatal_parts(b.submit(&over).await.unwrap_err());
        assert!(
            msg.contains("Payload content length greater than maximum allowed: 512000."),
            "{msg}"
        );
        assert!(hint.contains("bug"));
    }
}

#[tokio::test]
async fn a_third_job_is_busy_not_an_error() {
    let sb = sandbox_with(
        FaultConfig {
            job_latency: Duration::from_secs(30),
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let b = Auth0Backend::new(settings(&sb)).unwrap();
    b.prepare().await.unwrap();
    let batch = |e: &str| one_record_batch(format!("{{\"email\":\"{e}\"}}").into_bytes());
    assert!(matches!(
        b.submit(&batch("a@x.com")).await.unwrap(),
        Submit::Accepted(_)
    ));
    assert!(matches!(
        b.submit(&batch("b@x.com")).await.unwrap(),
        Submit::Accepted(_)
    ));
    // Every Management API answer now carries the x-ratelimit-* headers, this 429 too,
    // so a retry hint may come with it.
    assert!(matches!(
        b.submit(&batch("c@x.com")).await.unwrap(),
        Submit::Busy { .. }
    ));
    assert_eq!(sb.auth0().jobs_created(), 2);
}

#[tokio::test]
async fn a_failed_job_is_resubmitted_and_a_missing_job_reports_failed() {
    let sb = sandbox_with(
        FaultConfig {
            fail_jobs: vec![0],
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let (summary, rec) = run(
        Auth0Backend::new(settings(&sb)).unwrap(),
        cheap(5, "f", 0),
        options(),
    )
    .await;
    assert_eq!(summary.unwrap().inserted, 5);
    assert_eq!(rec.seen().submitted.len(), 2);
    assert_eq!(sb.auth0().jobs_created(), 2);

    let b = Auth0Backend::new(settings(&sb)).unwrap();
    let state = b
        .poll(
            &authmigrate_core::backend::JobId("job_doesnotexist0000".into()),
            &Batch::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        state,
        authmigrate_core::backend::JobState::Failed {
            reason: "job not found (expired?)".into()
        }
    );
}

#[tokio::test]
async fn encode_is_the_bulk_user_json() {
    let sb = sandbox().await;
    let b = Auth0Backend::new(settings(&sb)).unwrap();
    let u = &cheap(1, "enc", 0)[0];
    let e = b.encode(u).unwrap();
    let v: Value = serde_json::from_slice(&e.json).unwrap();
    assert_eq!(v["email"], "enc0@example.com");
    let hash = v["password_hash"]
        .as_str()
        .or(v["custom_password_hash"]["hash"]["value"].as_str())
        .unwrap();
    assert!(hash.starts_with("$2b$04$"), "{v}");
    assert_eq!(b.encode(u).unwrap().json, e.json, "deterministic");
    let missing = UserRecord::default();
    assert_eq!(b.encode(&missing).unwrap_err().code, "MISSING_EMAIL");
}
