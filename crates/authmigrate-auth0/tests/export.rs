//! User export from the Auth0 sandbox: job, polling, gzip download, link refresh.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use authmigrate_auth0::export::{ExportOptions, export_users};
use authmigrate_auth0::format::from_export_user;
use authmigrate_auth0::{Auth0Auth, Auth0Backend, Auth0Settings};
use authmigrate_core::backend::{
    BackendError, Batch, BatchRecord, ImportBackend, JobState, Outcome, Submit,
};
use authmigrate_core::retry::RetryPolicy;
use authmigrate_sandbox::auth0::Auth0Config;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::{Value, json};

async fn sandbox_with(auth0: Auth0Config) -> Sandbox {
    Sandbox::start(SandboxConfig {
        port: 0,
        faults: FaultConfig {
            job_latency: Duration::from_millis(20),
            ..FaultConfig::default()
        },
        auth0,
        authgear: Default::default(),
    })
    .await
    .unwrap()
}

fn settings(base: &str, sb: &Sandbox) -> Auth0Settings {
    let mut s = Auth0Settings::new(
        base,
        Auth0Auth::ClientCredentials {
            client_id: sb.auth0().client_id().to_owned(),
            client_secret: SecretString::from(sb.auth0().client_secret().to_owned()),
        },
    );
    s.retry = RetryPolicy::immediate(5);
    s
}

fn users() -> Vec<Value> {
    vec![
        json!({"email": "ada@example.com", "email_verified": true, "name": "Ada Lovelace",
               "user_metadata": {"theme": "dark", "langs": ["en", "fr"]},
               "app_metadata": {"plan": "pro", "roles": ["admin"]}}),
        json!({"email": "bob@example.com", "email_verified": false, "blocked": true,
               "user_metadata": {}, "app_metadata": {"plan": "free"}}),
        json!({"email": "cy@example.com", "given_name": "Cy", "family_name": "Young"}),
    ]
}

/// Imports users through the real backend (submit, then poll to the end).
async fn seed(sb: &Sandbox, users: &[Value]) {
    let backend = Auth0Backend::new(settings(&sb.base_url(), sb)).unwrap();
    backend.prepare().await.unwrap();
    let batch = Batch {
        chunk: 0,
        records: users
            .iter()
            .enumerate()
            .map(|(i, u)| BatchRecord {
                index: i as u64,
                label: None,
                json: serde_json::to_vec(u).unwrap(),
                warnings: vec![],
            })
            .collect(),
    };
    let Submit::Accepted(job) = backend.submit(&batch).await.unwrap() else {
        panic!("import job refused");
    };
    loop {
        match backend.poll(&job, &batch).await.unwrap() {
            JobState::Finished(outcomes) => {
                assert!(
                    outcomes.iter().all(|o| o.outcome == Outcome::Inserted),
                    "{outcomes:?}"
                );
                return;
            }
            JobState::Failed { reason }
            | JobState::InDoubt { reason }
            | JobState::Gone { reason } => {
                panic!("import failed: {reason}")
            }
            JobState::Running { .. } => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn parse(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn by_email<'a>(lines: &'a [Value], email: &str) -> &'a Value {
    lines
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("{email} missing from the export"))
}

fn fatal(e: BackendError) -> (String, String) {
    match e {
        BackendError::Fatal { message, hint } => (message, hint.unwrap_or_default()),
        other => panic!("expected a fatal error, got {other:?}"),
    }
}

#[tokio::test]
async fn exports_every_user_with_metadata_blocked_and_identities() {
    let sb = sandbox_with(Auth0Config::default()).await;
    seed(&sb, &users()).await;
    let mut out = Vec::new();
    let stats = export_users(
        &settings(&sb.base_url(), &sb),
        &ExportOptions::default(),
        &mut out,
    )
    .await
    .unwrap();
    let lines = parse(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(stats.users, 3);
    assert_eq!(stats.bytes, out.len() as u64);
    assert!(stats.job.starts_with("job_"), "{}", stats.job);

    let ada = by_email(&lines, "ada@example.com");
    assert_eq!(ada["email_verified"], true);
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(
        ada["user_metadata"],
        json!({"theme": "dark", "langs": ["en", "fr"]})
    );
    assert_eq!(
        ada["app_metadata"],
        json!({"plan": "pro", "roles": ["admin"]})
    );
    assert_eq!(
        ada["identities"][0]["connection"],
        "Username-Password-Authentication"
    );
    assert_eq!(ada["identities"][0]["provider"], "auth0");
    assert!(ada["user_id"].as_str().unwrap().starts_with("auth0|"));
    let bob = by_email(&lines, "bob@example.com");
    assert_eq!(bob["blocked"], true);
    assert_eq!(bob["app_metadata"], json!({"plan": "free"}));
    let cy = by_email(&lines, "cy@example.com");
    assert_eq!(cy["family_name"], "Young");

    // Every line maps to the neutral record.
    for line in &lines {
        let record = from_export_user(line.as_object().unwrap().clone()).unwrap();
        assert_eq!(record.source_id.as_deref(), line["user_id"].as_str());
    }
    // No password material.
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("$2b$") && !text.contains("password"));
}

#[tokio::test]
async fn connection_filter_and_custom_fields() {
    let sb = sandbox_with(Auth0Config::default()).await;
    seed(&sb, &users()).await;
    let s = settings(&sb.base_url(), &sb);

    let mut out = Vec::new();
    let options = ExportOptions {
        connection: Some("Username-Password-Authentication".into()),
        fields: Some(vec!["email".into(), "app_metadata".into()]),
    };
    let stats = export_users(&s, &options, &mut out).await.unwrap();
    assert_eq!(stats.users, 3);
    let lines = parse(&out);
    let bob = by_email(&lines, "bob@example.com");
    assert_eq!(
        bob,
        &json!({"email": "bob@example.com", "app_metadata": {"plan": "free"}})
    );

    // The passwordless connection holds none of them: an empty export.
    let mut out = Vec::new();
    let options = ExportOptions {
        connection: Some("email".into()),
        fields: None,
    };
    let stats = export_users(&s, &options, &mut out).await.unwrap();
    assert_eq!((stats.users, stats.bytes), (0, 0));
    assert!(out.is_empty());
}

#[tokio::test]
async fn unknown_connection_is_fatal_with_a_hint() {
    let sb = sandbox_with(Auth0Config::default()).await;
    let options = ExportOptions {
        connection: Some("No-Such-DB".into()),
        fields: None,
    };
    let mut out = Vec::new();
    let err = export_users(&settings(&sb.base_url(), &sb), &options, &mut out)
        .await
        .unwrap_err();
    let (msg, hint) = fatal(err);
    assert_eq!(msg, "connection `No-Such-DB` not found");
    assert!(hint.contains("Username-Password-Authentication"), "{hint}");
    assert!(hint.contains("Disabled-DB"), "{hint}");
    assert!(out.is_empty());
}

#[tokio::test]
async fn bad_field_names_are_refused_before_any_job() {
    let sb = sandbox_with(Auth0Config::default()).await;
    let options = ExportOptions {
        connection: None,
        fields: Some(vec!["email".into(), "x".repeat(101)]),
    };
    let err = export_users(&settings(&sb.base_url(), &sb), &options, &mut Vec::new())
        .await
        .unwrap_err();
    let (msg, _) = fatal(err);
    assert!(msg.starts_with("export field 1 "), "{msg}");
    assert_eq!(sb.auth0().jobs_created(), 0);
}

#[tokio::test]
async fn a_link_that_always_expires_gives_up_without_leaking_it() {
    let sb = sandbox_with(Auth0Config {
        export_link_ttl: Duration::ZERO,
        ..Auth0Config::default()
    })
    .await;
    seed(&sb, &users()).await;
    let mut out = Vec::new();
    let err = export_users(
        &settings(&sb.base_url(), &sb),
        &ExportOptions::default(),
        &mut out,
    )
    .await
    .unwrap_err();
    let (msg, hint) = fatal(err);
    assert!(msg.contains("the link was refused 5 time(s)"), "{msg}");
    assert!(msg.contains("HTTP 403"), "{msg}");
    assert!(
        !msg.contains("/_sandbox/") && !msg.contains(".json.gz"),
        "{msg}"
    );
    assert!(hint.contains("60 seconds"), "{hint}");
    assert!(out.is_empty());
}

/// What the proxy saw of the download requests.
#[derive(Debug, Default)]
struct Seen {
    /// The `Authorization` header of each download request.
    download_auth: Vec<Option<String>>,
}

/// A reverse proxy in front of the sandbox that rewrites the sandbox's URL in answers
/// to its own (so downloads come through it too), refuses the first `fail` downloads
/// with S3's 403 and records what each download carried.
async fn proxy(target: String, fail: usize) -> (String, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let http = reqwest::Client::new();
    let (me2, seen2) = (me.clone(), seen.clone());
    let app = axum::Router::new().fallback(move |req: Request| {
        let (http, target, me, seen) = (http.clone(), target.clone(), me2.clone(), seen2.clone());
        async move { forward(req, &http, &target, &me, &seen, fail).await }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (me, seen)
}

fn encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn forward(
    req: Request,
    http: &reqwest::Client,
    target: &str,
    me: &str,
    seen: &Mutex<Seen>,
    fail: usize,
) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    if path.starts_with("/_sandbox/") {
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        let mut seen = seen.lock().unwrap();
        seen.download_auth.push(auth);
        if seen.download_auth.len() <= fail {
            return (
                StatusCode::FORBIDDEN,
                "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
            )
                .into_response();
        }
    }
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    // The client computes the token audience from our URL: point it at the sandbox.
    let body = String::from_utf8_lossy(&body)
        .replace(&encoded(me), &encoded(target))
        .replace(me, target);
    let mut out = http.request(parts.method.clone(), format!("{target}{path}"));
    for (k, v) in &parts.headers {
        if k != header::HOST && k != header::CONTENT_LENGTH {
            out = out.header(k, v);
        }
    }
    let reply = out.body(body).send().await.unwrap();
    let status = reply.status();
    let ctype = reply.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = reply.bytes().await.unwrap();
    let is_json = ctype
        .as_ref()
        .is_some_and(|c| c.to_str().unwrap_or("").contains("json"));
    let bytes = if is_json {
        String::from_utf8_lossy(&bytes)
            .replace(target, me)
            .into_bytes()
    } else {
        bytes.to_vec()
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    if let Some(c) = ctype {
        resp.headers_mut().insert(header::CONTENT_TYPE, c);
    }
    resp.headers_mut()
        .insert("x-proxied", HeaderValue::from_static("1"));
    resp
}

#[tokio::test]
async fn an_expired_link_is_refreshed_and_downloads_carry_no_token() {
    let sb = sandbox_with(Auth0Config::default()).await;
    seed(&sb, &users()).await;
    let (base, seen) = proxy(sb.base_url(), 2).await;
    let mut out = Vec::new();
    let stats = export_users(&settings(&base, &sb), &ExportOptions::default(), &mut out)
        .await
        .unwrap();
    assert_eq!(stats.users, 3);
    let lines = parse(&out);
    let mut emails: Vec<&str> = lines.iter().map(|u| u["email"].as_str().unwrap()).collect();
    emails.sort_unstable();
    assert_eq!(
        emails,
        ["ada@example.com", "bob@example.com", "cy@example.com"]
    );
    let seen = seen.lock().unwrap();
    // Two refused links, then a fresh one that worked; none carried the token.
    assert_eq!(seen.download_auth, vec![None, None, None]);
}

/// An export job that does not finish within the timeout ends the export with an
/// error naming the job and `--export-timeout`.
#[tokio::test]
async fn an_export_that_outlasts_its_timeout_names_the_job() {
    let sb = sandbox_with(Auth0Config::default()).await;
    sb.faults().set(FaultConfig {
        job_latency: Duration::from_secs(600),
        ..FaultConfig::default()
    });
    let mut out = Vec::new();
    let err = authmigrate_auth0::export::export_users_within(
        &settings(&sb.base_url(), &sb),
        &ExportOptions::default(),
        Duration::from_millis(400),
        &mut out,
    )
    .await
    .unwrap_err();
    let BackendError::Fatal { message, hint } = err else {
        panic!("{err:?}")
    };
    assert!(message.contains("users export job job_"), "{message}");
    assert!(
        message.contains("did not finish within the export timeout"),
        "{message}"
    );
    assert!(hint.unwrap().contains("--export-timeout"));
    assert!(out.is_empty());
}
