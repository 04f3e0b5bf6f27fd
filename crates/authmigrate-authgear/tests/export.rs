//! User export from the Authgear sandbox: task, polling, download, URL refresh.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use authmigrate_authgear::backend::FORBIDDEN_HINT;
use authmigrate_authgear::config::{AuthgearAuth, AuthgearSettings};
use authmigrate_authgear::export::export_users;
use authmigrate_core::backend::BackendError;
use authmigrate_core::retry::RetryPolicy;
use authmigrate_sandbox::authgear::AuthgearConfig;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rsa::pkcs8::LineEnding;
use secrecy::SecretString;
use serde_json::{Value, json};

/// One RSA key for every sandbox (key generation is slow).
fn project_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    })
}

async fn sandbox_with(config: AuthgearConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        port: 0,
        faults: FaultConfig {
            job_latency: Duration::from_millis(20),
            ..FaultConfig::default()
        },
        auth0: Default::default(),
        authgear: AuthgearConfig {
            private_key_pem: Some(project_key().to_owned()),
            custom_attributes: vec!["plan".into()],
            ..config
        },
    })
    .await
    .unwrap()
}

fn settings(base: &str, sb: &Sandbox) -> AuthgearSettings {
    AuthgearSettings {
        retry: RetryPolicy::immediate(5),
        ..AuthgearSettings::new(
            base,
            AuthgearAuth::Key {
                project_id: sb.authgear().project_id().to_owned(),
                key_id: sb.authgear().key_id().to_owned(),
                private_key_pem: SecretString::from(project_key().to_owned()),
            },
        )
    }
}

/// bcrypt hashes of the seeded users (cost 4).
fn seed(sb: &Sandbox) -> Vec<String> {
    let hashes: Vec<String> = ["pw-ada-1", "pw-bob-2"]
        .iter()
        .map(|p| bcrypt::hash(p, 4).unwrap())
        .collect();
    let records = [
        json!({"email": "ada@example.com", "email_verified": true, "name": "Ada Lovelace",
               "custom_attributes": {"plan": "pro"},
               "password": {"type": "bcrypt", "password_hash": hashes[0]}}),
        json!({"email": "bob@example.com", "email_verified": false, "disabled": true,
               "password": {"type": "bcrypt", "password_hash": hashes[1]}}),
        json!({"preferred_username": "cy", "family_name": "Young"}),
    ];
    for r in records {
        sb.authgear().seed_user(r).unwrap();
    }
    hashes
}

fn parse(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn fatal(e: BackendError) -> (String, String) {
    match e {
        BackendError::Fatal { message, hint } => (message, hint.unwrap_or_default()),
        other => panic!("expected a fatal error, got {other:?}"),
    }
}

fn check_users(out: &[u8], hashes: &[String]) {
    let lines = parse(out);
    assert_eq!(lines.len(), 3);
    let find = |k: &str, v: &str| {
        lines
            .iter()
            .find(|u| u[k] == v)
            .unwrap_or_else(|| panic!("{v} missing"))
            .clone()
    };
    let ada = find("email", "ada@example.com");
    assert_eq!(ada["email_verified"], true);
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["disabled"], false);
    assert_eq!(ada["custom_attributes"], json!({"plan": "pro"}));
    assert_eq!(ada["identities"][0]["type"], "login_id");
    let bob = find("email", "bob@example.com");
    assert_eq!(bob["disabled"], true);
    assert_eq!(bob["email_verified"], false);
    let cy = find("preferred_username", "cy");
    assert_eq!(cy["family_name"], "Young");
    for u in &lines {
        assert!(u["sub"].as_str().is_some_and(|s| !s.is_empty()));
    }
    // No password hash anywhere.
    let text = std::str::from_utf8(out).unwrap();
    for h in hashes {
        assert!(!text.contains(h.as_str()));
    }
    assert!(!text.contains("$2b$") && !text.contains("$2y$") && !text.contains("password"));
}

#[tokio::test]
async fn exports_every_user_without_password_hashes() {
    let sb = sandbox_with(AuthgearConfig::default()).await;
    let hashes = seed(&sb);
    let mut out = Vec::new();
    let stats = export_users(&settings(&sb.base_url(), &sb), &mut out)
        .await
        .unwrap();
    assert_eq!(stats.users, 3);
    assert_eq!(stats.bytes, out.len() as u64);
    assert!(stats.job.starts_with("userexport_"), "{}", stats.job);
    assert_eq!(sb.authgear().exports_created(), 1);
    check_users(&out, &hashes);
}

#[tokio::test]
async fn an_empty_project_gives_an_empty_export() {
    let sb = sandbox_with(AuthgearConfig::default()).await;
    let mut out = Vec::new();
    let stats = export_users(&settings(&sb.base_url(), &sb), &mut out)
        .await
        .unwrap();
    assert_eq!((stats.users, stats.bytes), (0, 0));
    assert!(out.is_empty());
}

#[tokio::test]
async fn a_refused_token_is_fatal_with_a_hint() {
    let sb = sandbox_with(AuthgearConfig::default()).await;
    let mut s = settings(&sb.base_url(), &sb);
    s.auth = AuthgearAuth::Key {
        project_id: "another-project".into(),
        key_id: sb.authgear().key_id().to_owned(),
        private_key_pem: SecretString::from(project_key().to_owned()),
    };
    let (msg, hint) = fatal(export_users(&s, &mut Vec::new()).await.unwrap_err());
    assert!(
        msg.starts_with(
            "create the authgear users export: authgear refused the admin token (HTTP 40"
        ),
        "{msg}"
    );
    assert_eq!(hint, FORBIDDEN_HINT);
    assert_eq!(sb.authgear().exports_created(), 0);
}

#[tokio::test]
async fn a_url_that_always_expires_gives_up_without_leaking_it() {
    let sb = sandbox_with(AuthgearConfig {
        download_url_ttl: Duration::ZERO,
        ..AuthgearConfig::default()
    })
    .await;
    seed(&sb);
    let mut out = Vec::new();
    let err = export_users(&settings(&sb.base_url(), &sb), &mut out)
        .await
        .unwrap_err();
    let (msg, hint) = fatal(err);
    assert!(
        msg.contains("the link was refused 5 time(s), last: HTTP 403: Request has expired"),
        "{msg}"
    );
    assert!(
        !msg.contains("token=") && !msg.contains("/_sandbox/"),
        "{msg}"
    );
    assert!(hint.contains("1 minute"), "{hint}");
    assert!(out.is_empty());
}

/// The `Authorization` header of each download request the proxy saw.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// A reverse proxy in front of the sandbox that rewrites the sandbox's URL in JSON
/// answers to its own (so downloads come through it too), refuses the first `fail`
/// downloads with 403 and records what each download carried.
async fn proxy(target: String, fail: usize) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let http = reqwest::Client::new();
    let (me2, seen2) = (me.clone(), seen.clone());
    let app = axum::Router::new().fallback(move |req: Request| {
        let (http, target, me, seen) = (http.clone(), target.clone(), me2.clone(), seen2.clone());
        async move { forward(req, &http, &target, &me, &seen, fail).await }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (me, seen)
}

async fn forward(
    req: Request,
    http: &reqwest::Client,
    target: &str,
    me: &str,
    seen: &Seen,
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
        seen.push(auth);
        if seen.len() <= fail {
            return (StatusCode::FORBIDDEN, "Request has expired").into_response();
        }
    }
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
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
        .is_some_and(|c| c.to_str().unwrap_or("").contains("application/json"));
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
    resp
}

#[tokio::test]
async fn an_expired_url_is_refreshed_and_downloads_carry_no_token() {
    let sb = sandbox_with(AuthgearConfig::default()).await;
    let hashes = seed(&sb);
    let (base, seen) = proxy(sb.base_url(), 2).await;
    let mut out = Vec::new();
    let stats = export_users(&settings(&base, &sb), &mut out).await.unwrap();
    assert_eq!(stats.users, 3);
    check_users(&out, &hashes);
    // Two refused URLs, then a fresh one that worked; none carried the admin token.
    assert_eq!(*seen.lock().unwrap(), vec![None, None, None]);
    assert_eq!(sb.authgear().exports_created(), 1);
}

/// An export task still pending after the timeout ends the export with an error naming
/// the task and `--export-timeout`.
#[tokio::test]
async fn an_export_that_outlasts_its_timeout_names_the_task() {
    let sb = sandbox_with(AuthgearConfig::default()).await;
    sb.faults().set(FaultConfig {
        job_latency: Duration::from_secs(600),
        ..FaultConfig::default()
    });
    let mut out = Vec::new();
    let err = authmigrate_authgear::export::export_users_within(
        &settings(&sb.base_url(), &sb),
        Duration::from_millis(400),
        &mut out,
    )
    .await
    .unwrap_err();
    let (message, hint) = fatal(err);
    assert!(message.contains("users export task "), "{message}");
    assert!(
        message.contains("did not finish within the export timeout"),
        "{message}"
    );
    assert!(hint.contains("--export-timeout"), "{hint}");
    assert!(out.is_empty());
}
