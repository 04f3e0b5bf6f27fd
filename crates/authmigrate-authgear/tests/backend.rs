//! The Authgear backend against the sandbox emulator, through the real core driver.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use authmigrate_authgear::backend::{AuthgearBackend, FORBIDDEN_HINT, MAX_BODY_BYTES};
use authmigrate_authgear::config::{AuthgearAuth, AuthgearSettings};
use authmigrate_authgear::format::{self, Identifier};
use authmigrate_core::Error;
use authmigrate_core::backend::{
    BackendError, Batch, BatchRecord, ImportBackend, JobState, Outcome, RecordOutcome, Submit,
};
use authmigrate_core::driver::{DriverOptions, Event, InputRecord, Summary, run_import};
use authmigrate_core::record::{HashAlgorithm, PasswordHash, UserRecord};
use authmigrate_core::retry::RetryPolicy;
use authmigrate_sandbox::authgear::AuthgearConfig;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, LineEnding};
use secrecy::SecretString;

/// One RSA key for every sandbox (key generation is slow).
fn project_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand_core_rng(), 2048).unwrap();
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    })
}

/// Another key, not the project's.
fn other_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand_core_rng(), 2048).unwrap();
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    })
}

fn rand_core_rng() -> rand::rngs::OsRng {
    rand::rngs::OsRng
}

async fn sandbox_with(faults: FaultConfig, authgear: AuthgearConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        port: 0,
        faults: FaultConfig {
            job_latency: Duration::from_millis(20),
            ..faults
        },
        auth0: Default::default(),
        authgear: AuthgearConfig {
            private_key_pem: Some(project_key().to_owned()),
            ..authgear
        },
    })
    .await
    .unwrap()
}

async fn sandbox() -> Sandbox {
    sandbox_with(FaultConfig::default(), AuthgearConfig::default()).await
}

fn key_auth(sb: &Sandbox, pem: &str) -> AuthgearAuth {
    AuthgearAuth::Key {
        project_id: sb.authgear().project_id().to_owned(),
        key_id: sb.authgear().key_id().to_owned(),
        private_key_pem: SecretString::from(pem.to_owned()),
    }
}

fn settings(sb: &Sandbox) -> AuthgearSettings {
    AuthgearSettings {
        retry: RetryPolicy::immediate(12),
        ..AuthgearSettings::new(sb.base_url(), key_auth(sb, project_key()))
    }
}

fn backend(settings: AuthgearSettings) -> Arc<AuthgearBackend> {
    Arc::new(AuthgearBackend::new(settings).unwrap())
}

fn options(state: Option<PathBuf>) -> DriverOptions {
    DriverOptions {
        state,
        fingerprint: "authgear-backend-test".into(),
        poll_initial: Duration::from_millis(10),
        poll_max: Duration::from_millis(50),
        busy_wait: Duration::from_millis(10),
        transient_backoff: Duration::from_millis(10),
        ..DriverOptions::default()
    }
}

/// What a run reported.
#[derive(Default)]
struct Seen {
    planned: Vec<(u64, usize, usize, f64)>,
    submitted: Vec<u64>,
    replayed: Vec<u64>,
    outcomes: BTreeMap<u64, RecordOutcome>,
}

async fn run(
    backend: Arc<AuthgearBackend>,
    users: &[UserRecord],
    opts: DriverOptions,
) -> (Result<Summary, Error>, Seen) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = seen.clone();
    let observer = move |e: &Event<'_>| {
        let mut s = sink.lock().unwrap();
        match e {
            Event::Planned {
                chunk,
                records,
                bytes,
                fill,
            } => s.planned.push((*chunk, *records, *bytes, *fill)),
            Event::Submitted { chunk, .. } => s.submitted.push(*chunk),
            Event::Replayed { chunk, .. } => s.replayed.push(*chunk),
            Event::Record { index, outcome, .. } => {
                assert!(s.outcomes.insert(*index, (*outcome).clone()).is_none());
            }
            _ => {}
        }
    };
    let input: Vec<InputRecord> = users
        .iter()
        .enumerate()
        .map(|(i, u)| InputRecord {
            index: i as u64,
            record: Ok(u.clone()),
        })
        .collect();
    let result = run_import(backend, input.into_iter(), opts, Arc::new(observer)).await;
    let seen = Arc::try_unwrap(seen)
        .ok()
        .expect("observer dropped")
        .into_inner()
        .unwrap();
    (result, seen)
}

fn password(i: usize) -> String {
    format!("pw-{i}-Secret!")
}

/// Users with cost-4 bcrypt hashes; `pad` bytes of name make records fat.
fn users(prefix: &str, n: usize, pad: usize) -> Vec<UserRecord> {
    (0..n)
        .map(|i| UserRecord {
            email: Some(format!("{prefix}{i}@example.com")),
            email_verified: Some(true),
            name: Some(format!("User {i} {}", "x".repeat(pad))),
            password: Some(PasswordHash::bcrypt(
                bcrypt::hash(password(i), 4).unwrap().as_str(),
            )),
            ..UserRecord::default()
        })
        .collect()
}

fn fatal(result: Result<Summary, Error>) -> (String, Option<String>) {
    match result {
        Err(Error::Backend(BackendError::Fatal { message, hint })) => (message, hint),
        other => panic!("expected a fatal backend error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_body_import_then_skip_then_upsert() {
    let sb = sandbox().await;
    let n = 900;
    let list = users("multi", n, 1500);
    let (result, seen) = run(backend(settings(&sb)), &list, options(None)).await;
    let summary = result.unwrap();
    assert_eq!(summary.inserted, n as u64, "{summary:?}");
    assert_eq!(summary.total, n as u64);

    // At least three bodies, each within Authgear's limit and well filled.
    let (prefix, suffix) = format::body_envelope(Identifier::Email, false);
    assert!(seen.planned.len() >= 3, "{:?}", seen.planned);
    assert_eq!(sb.authgear().jobs_created(), seen.planned.len());
    for (i, (_, records, bytes, fill)) in seen.planned.iter().enumerate() {
        assert!(prefix.len() + bytes + suffix.len() <= MAX_BODY_BYTES);
        if i + 1 < seen.planned.len() {
            assert!(
                *fill > 0.99,
                "chunk {i} only {fill} full ({records} records)"
            );
        }
    }
    assert_eq!(
        seen.planned.iter().map(|p| p.1).sum::<usize>(),
        n,
        "every record planned once"
    );

    // Every user is stored and logs in with the original password.
    let stored = sb.authgear().users();
    assert_eq!(stored.len(), n);
    for (i, u) in list.iter().enumerate() {
        let email = u.email.as_deref().unwrap();
        assert!(sb.authgear().check_password(email, &password(i)), "{email}");
        let out = &seen.outcomes[&(i as u64)];
        assert_eq!(out.outcome, Outcome::Inserted);
        assert!(out.user_id.is_some());
    }
    assert!(!sb.authgear().check_password("multi0@example.com", "wrong"));

    // Again without upsert: every user is skipped, which is success.
    let (result, seen) = run(backend(settings(&sb)), &list, options(None)).await;
    let summary = result.unwrap();
    assert_eq!(summary.skipped, n as u64, "{summary:?}");
    assert!(summary.all_succeeded());
    let first = &seen.outcomes[&0];
    assert_eq!(first.outcome, Outcome::Skipped);
    assert_eq!(first.user_id.as_deref(), Some(stored[0].id.as_str()));
    assert!(
        first
            .warnings
            .iter()
            .any(|w| w == "skipping because upsert = false and user exists"),
        "{:?}",
        first.warnings
    );
    assert_eq!(sb.authgear().users().len(), n);

    // With upsert: every user is updated.
    let renamed: Vec<UserRecord> = list
        .iter()
        .map(|u| UserRecord {
            name: Some("Renamed".into()),
            ..u.clone()
        })
        .collect();
    let upsert = AuthgearSettings {
        upsert: true,
        ..settings(&sb)
    };
    let (result, _) = run(backend(upsert), &renamed, options(None)).await;
    let summary = result.unwrap();
    assert_eq!(summary.updated, n as u64, "{summary:?}");
    let user = sb
        .authgear()
        .user_by_login_id("multi7@example.com")
        .unwrap();
    assert_eq!(user.standard_attributes["name"], "Renamed");
}

#[tokio::test]
async fn invalid_records_fail_alone() {
    let sb = sandbox().await;
    let mut list = users("inv", 8, 0);
    // 1: an empty name is left out with a warning (Authgear rejects "").
    list[1].name = Some(String::new());
    // 2: a bcrypt hash with an impossible cost.
    list[2].password = Some(PasswordHash::bcrypt(
        "$2b$99$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
    ));
    // 3: a sha256 hash: Authgear cannot import it, so it is never sent.
    let mut sha =
        PasswordHash::bcrypt("5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8");
    sha.algorithm = HashAlgorithm::Sha256;
    list[3].password = Some(sha);
    // 5: the same username as 4: a duplicate inside the input.
    list[4].username = Some("sameuser".into());
    list[5].username = Some("sameuser".into());
    // 6: no e-mail, the identifier.
    list[6].email = None;

    let (result, seen) = run(backend(settings(&sb)), &list, options(None)).await;
    let summary = result.unwrap();
    let failed: BTreeMap<u64, String> = seen
        .outcomes
        .iter()
        .filter(|(_, o)| o.outcome == Outcome::Failed)
        .map(|(i, o)| (*i, o.code.clone().unwrap()))
        .collect();
    let expected: BTreeMap<u64, String> = [
        (2, "INVALID_RECORD"),
        (3, "UNSUPPORTED_HASH"),
        // A duplicate inside the input is caught by the driver before sending.
        (5, "DUPLICATE_IN_INPUT"),
        (6, "MISSING_IDENTIFIER"),
    ]
    .into_iter()
    .map(|(i, c)| (i, c.to_owned()))
    .collect();
    assert_eq!(failed, expected, "{:?}", seen.outcomes);
    assert_eq!(summary.failed, 4);
    assert_eq!(summary.inserted, 4);
    let dup = &seen.outcomes[&5];
    assert!(
        dup.message
            .as_deref()
            .unwrap()
            .contains("same username as record 4"),
        "{dup:?}"
    );
    assert!(
        seen.outcomes[&1]
            .warnings
            .iter()
            .any(|w| w.contains("`name` is empty")),
        "{:?}",
        seen.outcomes[&1]
    );
    for i in [0usize, 1, 4, 7] {
        let email = format!("inv{i}@example.com");
        assert!(
            sb.authgear().check_password(&email, &password(i)),
            "{email}"
        );
    }
    for i in [2usize, 3, 5] {
        assert!(
            sb.authgear()
                .user_by_login_id(&format!("inv{i}@example.com"))
                .is_none()
        );
    }
    // The one job held only the four records that could be encoded and are not
    // duplicates inside the input.
    assert_eq!(sb.authgear().jobs_created(), 1);
    assert_eq!(seen.planned.len(), 1);
    assert_eq!(seen.planned[0].1, 4);
}

#[tokio::test]
async fn server_side_record_errors_are_mapped() {
    let sb = sandbox().await;
    let be = backend(settings(&sb));
    let hash = bcrypt::hash("pw", 4).unwrap();
    let records = [
        format!(r#"{{"email":"ok@example.com","password":{{"type":"bcrypt","password_hash":"{hash}"}}}}"#),
        r#"{"email":"empty@example.com","name":""}"#.to_owned(),
        r#"{"email":"bad@example.com","password":{"type":"bcrypt","password_hash":"$2b$99$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234"}}"#.to_owned(),
    ];
    let batch = Batch {
        chunk: 0,
        records: records
            .iter()
            .enumerate()
            .map(|(i, r)| BatchRecord {
                index: i as u64,
                label: None,
                json: r.as_bytes().to_vec(),
                warnings: vec![],
            })
            .collect(),
    };
    be.prepare().await.unwrap();
    sb.authgear().pause_jobs(true);
    let Submit::Accepted(job) = be.submit(&batch).await.unwrap() else {
        panic!("not accepted")
    };
    assert!(job.0.starts_with("userimport_"), "{job}");
    assert_eq!(
        be.poll(&job, &batch).await.unwrap(),
        JobState::Running { percent: None }
    );
    sb.authgear().pause_jobs(false);
    let outcomes = loop {
        match be.poll(&job, &batch).await.unwrap() {
            JobState::Finished(o) => break o,
            JobState::Running { .. } => tokio::time::sleep(Duration::from_millis(10)).await,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0].outcome, Outcome::Inserted);
    assert_eq!(outcomes[1].code.as_deref(), Some("ValidationFailed"));
    let msg = outcomes[1].message.as_deref().unwrap();
    assert!(msg.contains("/name"), "{msg}");
    assert_eq!(outcomes[2].code.as_deref(), Some("InvalidBcryptHash"));
    assert!(!format!("{outcomes:?}").contains("abcdefghijklmnop"));

    // An unknown job is gone: the driver resubmits.
    let gone = be
        .poll(
            &authmigrate_core::backend::JobId("userimport_NOPE".into()),
            &batch,
        )
        .await
        .unwrap();
    match gone {
        JobState::Failed { reason } => assert!(reason.contains("TaskNotFound"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wrong_credentials_are_fatal_with_a_hint() {
    let sb = sandbox().await;
    let list = users("cred", 2, 0);
    let cases = [
        (
            "kid",
            AuthgearAuth::Key {
                project_id: sb.authgear().project_id().to_owned(),
                key_id: "00000000-0000-0000-0000-000000000000".into(),
                private_key_pem: SecretString::from(project_key().to_owned()),
            },
        ),
        (
            "aud",
            AuthgearAuth::Key {
                project_id: "another-project".into(),
                key_id: sb.authgear().key_id().to_owned(),
                private_key_pem: SecretString::from(project_key().to_owned()),
            },
        ),
        ("key", key_auth(&sb, other_key())),
    ];
    for (what, auth) in cases {
        let s = AuthgearSettings {
            auth,
            ..settings(&sb)
        };
        let (result, seen) = run(backend(s), &list, options(None)).await;
        let (message, hint) = fatal(result);
        assert!(message.contains("403 Forbidden"), "{what}: {message}");
        let hint = hint.unwrap();
        assert_eq!(hint, FORBIDDEN_HINT);
        assert!(
            hint.contains("`kid`") && hint.contains("`aud`") && hint.contains("clock"),
            "{hint}"
        );
        assert!(seen.outcomes.values().all(|o| o.outcome == Outcome::Failed));
    }
    assert_eq!(sb.authgear().jobs_created(), 0);

    // A ready-made token is used as is.
    let token = sb.authgear().mint_admin_token(Duration::from_secs(300));
    let s = AuthgearSettings {
        auth: AuthgearAuth::Token(SecretString::from(token)),
        ..settings(&sb)
    };
    let (result, _) = run(backend(s), &list, options(None)).await;
    assert_eq!(result.unwrap().inserted, 2);
    let s = AuthgearSettings {
        auth: AuthgearAuth::Token(SecretString::from("not-a-jwt".to_owned())),
        ..settings(&sb)
    };
    let (message, hint) = fatal(run(backend(s), &list, options(None)).await.0);
    assert!(message.contains("403"), "{message}");
    assert!(hint.unwrap().contains("AUTHGEAR_ADMIN_TOKEN"));
}

#[tokio::test]
async fn pkcs1_and_pkcs8_with_public_block_keys_work() {
    let sb = sandbox().await;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(project_key()).unwrap();
    let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let public = sb.authgear().public_key_pem();
    let pkcs8_then_public = format!("{}{public}", project_key());
    let public_then_pkcs1 = format!("{public}\n{pkcs1}");
    let dir = tempfile::tempdir().unwrap();
    for (i, pem) in [pkcs1.clone(), pkcs8_then_public, public_then_pkcs1]
        .into_iter()
        .enumerate()
    {
        let path = dir.path().join(format!("key{i}.pem"));
        std::fs::write(&path, &pem).unwrap();
        let auth =
            AuthgearAuth::key_from_file(sb.authgear().project_id(), sb.authgear().key_id(), &path)
                .unwrap();
        assert!(!format!("{auth:?}").contains(&pem[40..80]));
        let s = AuthgearSettings {
            auth,
            ..settings(&sb)
        };
        let shown = format!("{:?}", backend(s.clone()));
        assert!(!shown.contains(&pem[40..80]), "{shown}");
        let (result, _) = run(backend(s), &users(&format!("k{i}-"), 2, 0), options(None)).await;
        assert_eq!(result.unwrap().inserted, 2, "key {i}");
    }
    assert_eq!(sb.authgear().users().len(), 6);

    // Bad files name the file and what was expected, never the key.
    let path = dir.path().join("public-only.pem");
    std::fs::write(&path, &public).unwrap();
    let e = AuthgearAuth::key_from_file("p", "k", &path).unwrap_err();
    assert!(e.contains("public-only.pem"), "{e}");
    assert!(e.contains("`PRIVATE KEY` (PKCS#8)"), "{e}");
    assert!(!e.contains(&public[30..60]), "{e}");
    let path = dir.path().join("missing.pem");
    let e = AuthgearAuth::key_from_file("p", "k", &path).unwrap_err();
    assert!(
        e.contains("missing.pem") && e.contains("cannot read"),
        "{e}"
    );
    let path = dir.path().join("garbage.pem");
    std::fs::write(
        &path,
        "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = AuthgearAuth::key_from_file("p", "k", &path).unwrap_err();
    assert!(e.contains("garbage.pem") && e.contains("RSA"), "{e}");
    assert!(!e.contains("Z2FyYmFnZQ"), "{e}");
}

#[tokio::test]
async fn quota_exceeded_is_fatal_not_retried() {
    let sb = sandbox_with(
        FaultConfig::default(),
        AuthgearConfig {
            import_usage_limit: Some(3),
            ..AuthgearConfig::default()
        },
    )
    .await;
    let list = users("quota", 5, 0);
    let (result, seen) = run(backend(settings(&sb)), &list, options(None)).await;
    let (message, hint) = fatal(result);
    assert!(
        message.starts_with("the project's user import quota is used up (period: month)"),
        "{message}"
    );
    assert!(hint.unwrap().contains("--state"));
    assert_eq!(sb.authgear().jobs_created(), 0);
    assert_eq!(sb.authgear().usage_used(), 0);
    assert_eq!(seen.outcomes.len(), 5);
    assert!(seen.outcomes.values().all(|o| o.outcome == Outcome::Failed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_500s_still_completes() {
    let sb = sandbox_with(
        FaultConfig {
            seed: 7,
            error_rate: 0.5,
            burst_429: Some((5, 2)),
            max_faults: Some(60),
            ..FaultConfig::default()
        },
        AuthgearConfig {
            records_per_task: 10,
            ..AuthgearConfig::default()
        },
    )
    .await;
    let list = users("storm", 300, 3000);
    let (result, seen) = run(backend(settings(&sb)), &list, options(None)).await;
    let summary = result.unwrap();
    assert_eq!(summary.inserted + summary.skipped, 300, "{summary:?}");
    assert!(seen.planned.len() >= 2);
    assert!(
        sb.faults().injected() >= 10,
        "only {} faults",
        sb.faults().injected()
    );
    assert_eq!(sb.authgear().users().len(), 300);
    assert!(
        sb.authgear()
            .check_password("storm299@example.com", &password(299))
    );
}

#[tokio::test]
async fn a_job_that_errors_as_a_whole_is_resubmitted() {
    let sb = sandbox_with(
        FaultConfig {
            fail_jobs: vec![0],
            ..FaultConfig::default()
        },
        AuthgearConfig::default(),
    )
    .await;
    let list = users("jobfail", 3, 0);
    let (result, seen) = run(backend(settings(&sb)), &list, options(None)).await;
    let summary = result.unwrap();
    assert_eq!(summary.inserted, 3, "{summary:?}");
    assert_eq!(seen.submitted, vec![0, 0]);
    assert_eq!(sb.authgear().jobs_created(), 2);
}

#[tokio::test]
async fn resume_does_not_resubmit_finished_bodies() {
    let list = users("resume", 600, 1500);
    // How the driver cuts the input (a dry run submits nothing).
    let sb1 = sandbox_with(
        FaultConfig::default(),
        AuthgearConfig {
            import_usage_limit: Some(0),
            ..AuthgearConfig::default()
        },
    )
    .await;
    let dry = DriverOptions {
        dry_run: true,
        ..options(None)
    };
    let (_, plan) = run(backend(settings(&sb1)), &list, dry).await;
    assert!(plan.planned.len() >= 3, "{:?}", plan.planned);
    let first_two = (plan.planned[0].1 + plan.planned[1].1) as u64;
    drop(sb1);

    // Run 1: the quota lets the first two bodies through, then stops the run.
    let sb1 = sandbox_with(
        FaultConfig::default(),
        AuthgearConfig {
            import_usage_limit: Some(first_two),
            ..AuthgearConfig::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.jsonl");
    let s1 = AuthgearSettings {
        max_jobs_in_flight: 1,
        ..settings(&sb1)
    };
    let (result, seen1) = run(backend(s1), &list, options(Some(state.clone()))).await;
    let (message, _) = fatal(result);
    assert!(message.contains("quota"), "{message}");
    assert_eq!(sb1.authgear().jobs_created(), 2);
    assert_eq!(sb1.authgear().users().len() as u64, first_two);
    let inserted1 = seen1
        .outcomes
        .values()
        .filter(|o| o.outcome == Outcome::Inserted)
        .count() as u64;
    assert_eq!(inserted1, first_two);

    // Run 2, same journal, a fresh project: only the unfinished bodies are sent.
    let sb2 = sandbox().await;
    let (result, seen2) = run(backend(settings(&sb2)), &list, options(Some(state))).await;
    let summary = result.unwrap();
    assert_eq!(summary.total, 600);
    assert_eq!(summary.inserted, 600, "{summary:?}");
    assert_eq!(seen2.replayed, vec![0, 1]);
    assert!(!seen2.submitted.contains(&0) && !seen2.submitted.contains(&1));
    assert_eq!(
        sb2.authgear().users().len() as u64,
        600 - first_two,
        "finished bodies were resubmitted"
    );
    assert!(
        sb2.authgear()
            .user_by_login_id("resume0@example.com")
            .is_none()
    );
    assert!(
        sb2.authgear()
            .check_password("resume599@example.com", &password(599))
    );
}

#[test]
fn plain_http_is_refused_for_remote_hosts() {
    let auth = AuthgearAuth::Token(SecretString::from("t".to_owned()));
    let e = AuthgearBackend::new(AuthgearSettings::new(
        "http://myapp.authgear.cloud",
        auth.clone(),
    ))
    .unwrap_err();
    match e {
        BackendError::Fatal { message, .. } => {
            assert!(
                message.contains("http:// is allowed only for loopback hosts"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        AuthgearBackend::new(AuthgearSettings::new("http://127.0.0.1:1", auth.clone())).is_ok()
    );
    assert!(
        AuthgearBackend::new(AuthgearSettings::new("https://myapp.authgear.cloud", auth)).is_ok()
    );
}

#[test]
fn limits_follow_the_envelope() {
    for upsert in [false, true] {
        for identifier in Identifier::ALL {
            let mut s = AuthgearSettings::new(
                "https://x.authgear.cloud",
                AuthgearAuth::Token(SecretString::from("t".to_owned())),
            );
            s.upsert = upsert;
            s.map.identifier = identifier;
            s.max_jobs_in_flight = 3;
            let be = AuthgearBackend::new(s).unwrap();
            let limits = be.limits();
            let (p, x) = format::body_envelope(identifier, upsert);
            assert_eq!(limits.max_upload_bytes, 500_000);
            assert_eq!(limits.max_array_bytes, 500_000 - p.len() - x.len());
            assert_eq!(limits.max_jobs_in_flight, 3);
            assert_eq!(limits.accepted_hashes, vec![HashAlgorithm::Bcrypt]);
            let body = be.body(&Batch::default());
            assert_eq!(body.len(), p.len() + 2 + x.len());
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["upsert"], upsert);
            assert_eq!(v["identifier"], identifier.as_str());
        }
    }
}
