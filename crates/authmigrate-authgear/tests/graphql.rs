//! The Admin GraphQL client against a stub of `/_api/admin/graphql` on 127.0.0.1
//! (the sandbox's GraphQL emulator is on another branch): batching of at most five
//! `deleteUser` fields, the whole-request rollback, error mapping, the bearer token.

use std::sync::{Arc, Mutex};

use authmigrate_authgear::AuthgearAuth;
use authmigrate_authgear::auth::TokenSource;
use authmigrate_authgear::client::AdminClient;
use authmigrate_authgear::graphql::{Graphql, user_node_id};
use authmigrate_core::backend::BackendError;
use authmigrate_core::delete::Deleted;
use authmigrate_core::retry::RetryPolicy;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Default)]
struct Stub {
    users: Mutex<Vec<String>>,
    fields_per_request: Mutex<Vec<usize>>,
}

async fn graphql(
    State(s): State<Arc<Stub>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer good-token") {
        return (StatusCode::FORBIDDEN, "Forbidden").into_response();
    }
    let q = body["query"].as_str().unwrap_or("");
    let n = q.matches("deleteUser(").count();
    if n > 5 {
        return (StatusCode::BAD_REQUEST, Json(json!({"error":{"name":"BadRequest","reason":"BadRequest",
            "message": format!("too many mutation fields in one request: got {n}, limit is 5"),"code":400}}))).into_response();
    }
    s.fields_per_request.lock().unwrap().push(n);
    let mut users = s.users.lock().unwrap();
    let before = users.clone();
    for i in 0..n {
        let id = body["variables"][format!("u{i}")]
            .as_str()
            .unwrap_or("")
            .to_owned();
        match users.iter().position(|u| *u == id) {
            Some(p) => {
                users.remove(p);
            }
            None => {
                *users = before;
                return Json(json!({"data":null,"errors":[{"message":"user not found","locations":[],
                    "path":[format!("d{i}")],"extensions":{"errorName":"NotFound","reason":"UserNotFound"}}]})).into_response();
            }
        }
    }
    Json(json!({"data": {}})).into_response()
}

async fn start(users: Vec<String>) -> (Arc<Stub>, url::Url) {
    let stub = Arc::new(Stub {
        users: Mutex::new(users),
        ..Stub::default()
    });
    let app = axum::Router::new()
        .route("/_api/admin/graphql", post(graphql))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (stub, url::Url::parse(&format!("http://{addr}")).unwrap())
}

fn client(base: url::Url, token: &str) -> AdminClient {
    let tokens = TokenSource::new(&AuthgearAuth::Token(token.to_owned().into())).unwrap();
    AdminClient::new(base, tokens, RetryPolicy::immediate(2)).unwrap()
}

#[tokio::test]
async fn deletes_in_requests_of_five_and_finds_the_one_that_fails() {
    let ids: Vec<String> = (0..12).map(|i| user_node_id(&format!("u{i}"))).collect();
    // u7 is gone already: its request of five is rolled back and sent again one by one.
    let held: Vec<String> = ids.iter().filter(|id| **id != ids[7]).cloned().collect();
    let (stub, base) = start(held).await;
    let c = client(base, "good-token");
    let answers = Graphql::new(&c).delete_users(&ids).await.unwrap();
    assert_eq!(answers.len(), 12);
    for (i, a) in answers.iter().enumerate() {
        let want = if i == 7 {
            Deleted::NotFound
        } else {
            Deleted::Deleted
        };
        assert_eq!(*a, want, "user {i}");
    }
    assert!(stub.users.lock().unwrap().is_empty());
    // 5 + (5 rolled back, then 5 alone) + 2.
    assert_eq!(
        *stub.fields_per_request.lock().unwrap(),
        [5, 5, 1, 1, 1, 1, 1, 2]
    );
}

#[tokio::test]
async fn a_refused_token_is_fatal_with_the_hint() {
    let (stub, base) = start(vec!["x".into()]).await;
    let c = client(base, "bad-SECRET-token");
    let e = Graphql::new(&c)
        .delete_users(&["x".to_owned()])
        .await
        .unwrap_err();
    let BackendError::Fatal { message, hint } = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains("403"), "{message}");
    assert!(hint.as_deref().unwrap().contains("kid"), "{hint:?}");
    assert!(!format!("{e:?}{e}").contains("SECRET"));
    assert_eq!(stub.users.lock().unwrap().len(), 1);
}

/// `AuthgearBackend::resolve` against the sandbox's GraphQL emulator: a record whose
/// e-mail the project holds is `skipped` with the user's raw id; one it does not
/// hold is left to be sent again.
#[tokio::test]
async fn resolve_finds_the_records_the_project_holds() {
    use authmigrate_authgear::{AuthgearBackend, AuthgearSettings};
    use authmigrate_core::backend::{Batch, BatchRecord, ImportBackend, Outcome};
    let sb = authmigrate_sandbox::Sandbox::start(authmigrate_sandbox::SandboxConfig::default())
        .await
        .unwrap();
    let raw = sb
        .authgear()
        .seed_user(json!({"email": "held@t.io"}))
        .unwrap();
    let token = sb
        .authgear()
        .mint_admin_token(std::time::Duration::from_secs(300));
    let backend = AuthgearBackend::new(AuthgearSettings::new(
        sb.base_url(),
        AuthgearAuth::Token(token.into()),
    ))
    .unwrap();
    let record = |i: u64, email: &str| BatchRecord {
        index: i,
        label: Some(email.to_owned()),
        json: serde_json::to_vec(&json!({ "email": email })).unwrap(),
        warnings: Vec::new(),
    };
    let batch = Batch {
        chunk: 0,
        records: vec![record(0, "held@t.io"), record(1, "new@t.io")],
    };
    let resolved = backend
        .resolve(&batch)
        .await
        .unwrap()
        .expect("authgear can look up");
    assert_eq!(resolved.len(), 2);
    let found = resolved[0].as_ref().expect("held@t.io is found");
    assert_eq!(found.outcome, Outcome::Skipped);
    assert_eq!(found.user_id.as_deref(), Some(raw.as_str()));
    assert!(resolved[1].is_none(), "new@t.io is to be sent again");
}
