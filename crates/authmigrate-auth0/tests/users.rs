//! `Auth0Users` (the `delete` directory) against a stub of the user endpoints on
//! 127.0.0.1 (the sandbox's are on another branch): look-ups keep only users of the
//! configured database connection, e-mails are sent in lower case, ids are
//! percent-encoded, a 403 is fatal with the scopes.

use std::sync::{Arc, Mutex};

use authmigrate_auth0::users::Auth0Users;
use authmigrate_auth0::{Auth0Auth, Auth0Settings};
use authmigrate_core::backend::BackendError;
use authmigrate_core::delete::{Deleted, Key, UserDirectory};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

type Seen = Arc<Mutex<Vec<String>>>;

async fn by_email(
    State(seen): State<Seen>,
    uri: Uri,
    Query(q): Query<Vec<(String, String)>>,
) -> Json<Value> {
    seen.lock().unwrap().push(uri.to_string());
    let email = q
        .iter()
        .find(|(k, _)| k == "email")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if email != "qa_01@t.io" {
        return Json(json!([]));
    }
    Json(json!([
        {"user_id":"auth0|1","email":"qa_01@t.io","logins_count":0,
         "identities":[{"connection":"Username-Password-Authentication","provider":"auth0"}]},
        {"user_id":"google-oauth2|9","email":"qa_01@t.io","logins_count":4,
         "identities":[{"connection":"google-oauth2","provider":"google-oauth2"}]}
    ]))
}

async fn user(State(seen): State<Seen>, uri: Uri, Path(id): Path<String>) -> Response {
    seen.lock().unwrap().push(uri.to_string());
    match id.as_str() {
        "auth0|1" => Json(json!({"user_id":"auth0|1","email":"qa_01@t.io","last_login":"2026-12-01T00:00:00.000Z"})).into_response(),
        "auth0|forbidden" => (StatusCode::FORBIDDEN, Json(json!({"statusCode":403,"error":"Forbidden",
            "message":"Insufficient scope; expected any of: delete:users,delete:current_user."}))).into_response(),
        _ => (StatusCode::NOT_FOUND, Json(json!({"statusCode":404,"message":"The user does not exist."}))).into_response(),
    }
}

async fn start() -> (Seen, Auth0Users) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/api/v2/users-by-email", get(by_email))
        .route(
            "/api/v2/users/{id}",
            get(user).delete(|| async { StatusCode::NO_CONTENT }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut s = Auth0Settings::new(
        format!("http://{addr}"),
        Auth0Auth::Token("tok-SECRET".to_owned().into()),
    );
    s.retry = authmigrate_core::retry::RetryPolicy::immediate(2);
    (seen, Auth0Users::new(&s).unwrap())
}

#[tokio::test]
async fn look_ups_keep_the_database_connection_and_read_logins() {
    let (seen, users) = start().await;
    let found = users
        .lookup(&Key::Email("QA_01@t.io".into()))
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        1,
        "the social user with the same e-mail is not taken: {found:?}"
    );
    assert_eq!(found[0].id, "auth0|1");
    assert_eq!(found[0].logins, Some(0));
    assert!(
        seen.lock().unwrap()[0].ends_with("email=qa_01%40t.io"),
        "{:?}",
        seen.lock().unwrap()
    );
    let by_id = users.lookup(&Key::Id("auth0|1".into())).await.unwrap();
    assert_eq!(
        by_id[0].last_login.as_deref(),
        Some("2026-12-01T00:00:00.000Z")
    );
    assert!(
        seen.lock().unwrap()[1].contains("auth0%7C1"),
        "{:?}",
        seen.lock().unwrap()
    );
    assert!(
        users
            .lookup(&Key::Id("auth0|gone".into()))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn deletes_one_per_request_and_a_403_is_fatal_with_the_scopes() {
    let (_seen, users) = start().await;
    assert_eq!(users.max_per_request(), 1);
    assert_eq!(
        users.delete(&["auth0|1".to_owned()]).await.unwrap(),
        [Deleted::Deleted]
    );
    let e = users
        .lookup(&Key::Id("auth0|forbidden".into()))
        .await
        .unwrap_err();
    let BackendError::Fatal { message, hint } = &e else {
        panic!("{e:?}")
    };
    assert!(
        message.contains("403") && message.contains("Insufficient scope"),
        "{message}"
    );
    assert!(hint.as_deref().unwrap().contains("scope"), "{hint:?}");
    assert!(!format!("{e:?}{e}").contains("SECRET"));
}
