//! Stand-ins for the provider endpoints `delete` uses, until the sandbox serves them
//! (branches h-sbx-auth0 / h-sbx-authgear): Auth0 `users-by-email`, `GET` and
//! `DELETE /api/v2/users/{id}`; Authgear Admin GraphQL `getUsersByStandardAttribute`,
//! `getUserByLoginID`, `node` and `deleteUser` (at most 5 mutation fields per
//! request, all rolled back when one fails), after shared/docs. Written for these
//! tests only: they hold users in memory and count requests, and the Auth0 one is
//! wrapped in the sandbox's fault middleware so its token bucket and rate-limit
//! headers apply.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

use authmigrate_sandbox::{FaultConfig, Faults};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Debug, Default)]
pub struct Store {
    pub users: Mutex<Vec<Value>>,
    pub deletes: Mutex<u64>,
    pub requests: Mutex<Vec<usize>>,
}

impl Store {
    pub fn emails(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .users
            .lock()
            .unwrap()
            .iter()
            .filter_map(|u| u["email"].as_str().map(str::to_owned))
            .collect();
        v.sort();
        v
    }
}

pub struct Stub {
    pub url: String,
    pub store: Arc<Store>,
    pub faults: Arc<Faults>,
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Auth0 users: `{"user_id","email","logins_count"?,"identities":[{"connection"}]}`.
pub async fn auth0(users: Vec<Value>, faults: FaultConfig) -> Stub {
    let store = Arc::new(Store {
        users: Mutex::new(users),
        ..Store::default()
    });
    let faults = Arc::new(Faults::new(faults));
    let app = axum::Router::new()
        .route("/api/v2/users-by-email", get(by_email))
        .route("/api/v2/users/{id}", get(get_user).delete(delete_user))
        .with_state(store.clone())
        .layer(axum::middleware::from_fn_with_state(
            faults.clone(),
            authmigrate_sandbox::faults::inject,
        ));
    Stub {
        url: serve(app).await,
        store,
        faults,
    }
}

pub fn auth0_user(id: u32, email: &str) -> Value {
    json!({ "user_id": format!("auth0|{id}"), "email": email,
            "identities": [{ "connection": "Username-Password-Authentication", "provider": "auth0" }] })
}

async fn by_email(State(s): State<Arc<Store>>, Query(q): Query<Vec<(String, String)>>) -> Response {
    let Some((_, email)) = q.iter().find(|(k, _)| k == "email") else {
        return (StatusCode::BAD_REQUEST, "email required").into_response();
    };
    let users = s.users.lock().unwrap();
    let found: Vec<Value> = users
        .iter()
        .filter(|u| u["email"] == *email.as_str())
        .cloned()
        .collect();
    Json(found).into_response()
}

async fn get_user(State(s): State<Arc<Store>>, Path(id): Path<String>) -> Response {
    let users = s.users.lock().unwrap();
    match users.iter().find(|u| u["user_id"] == *id.as_str()) {
        Some(u) => Json(u.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"statusCode":404,"error":"Not Found","message":"The user does not exist.","errorCode":"inexistent_user"})),
        )
            .into_response(),
    }
}

async fn delete_user(State(s): State<Arc<Store>>, Path(id): Path<String>) -> StatusCode {
    s.users
        .lock()
        .unwrap()
        .retain(|u| u["user_id"] != *id.as_str());
    *s.deletes.lock().unwrap() += 1;
    // Deleting twice answers 204 again (go-auth0's recordings).
    StatusCode::NO_CONTENT
}

/// Authgear users: `{"id": <node id>, "email", "preferred_username"?, "lastLoginAt"?}`.
pub async fn authgear(users: Vec<Value>) -> Stub {
    let store = Arc::new(Store {
        users: Mutex::new(users),
        ..Store::default()
    });
    let app = axum::Router::new()
        .route("/_api/admin/graphql", post(graphql))
        .with_state(store.clone());
    Stub {
        url: serve(app).await,
        store,
        faults: Arc::new(Faults::new(FaultConfig::default())),
    }
}

pub fn authgear_user(raw: &str, email: &str) -> Value {
    json!({ "id": authmigrate_authgear::graphql::user_node_id(raw), "email": email })
}

fn node(u: &Value) -> Value {
    json!({ "id": u["id"], "lastLoginAt": u.get("lastLoginAt").cloned().unwrap_or(Value::Null),
            "standardAttributes": { "email": u["email"], "preferred_username": u.get("preferred_username") } })
}

/// Understands exactly the documents the client sends (one look-up field, or
/// `dN: deleteUser(input: {userID: $uN})` fields).
async fn graphql(State(s): State<Arc<Store>>, Json(body): Json<Value>) -> Response {
    let query = body["query"].as_str().unwrap_or("");
    let vars = &body["variables"];
    let users = &mut *s.users.lock().unwrap();
    if query.starts_with("mutation") {
        let n = query.matches("deleteUser(").count();
        if n > 5 {
            let msg = format!("too many mutation fields in one request: got {n}, limit is 5");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error":{"name":"BadRequest","reason":"BadRequest","message":msg,"code":400}})),
            )
                .into_response();
        }
        s.requests.lock().unwrap().push(n);
        let mut data = serde_json::Map::new();
        let before = users.clone();
        for i in 0..n {
            let id = vars[format!("u{i}")].as_str().unwrap_or("");
            let Some(p) = users.iter().position(|u| u["id"] == id) else {
                // One failing field rolls the whole request back; data is null.
                *users = before;
                return Json(json!({"data": null, "errors": [{"message":"user not found","locations":[],"path":[format!("d{i}")],
                    "extensions":{"errorName":"NotFound","reason":"UserNotFound"}}]})).into_response();
            };
            users.remove(p);
            data.insert(format!("d{i}"), json!({ "deletedUserID": id }));
        }
        *s.deletes.lock().unwrap() += n as u64;
        return Json(json!({ "data": data })).into_response();
    }
    if query.contains("getUsersByStandardAttribute") {
        let (name, value) = (
            vars["n"].as_str().unwrap_or(""),
            vars["v"].as_str().unwrap_or(""),
        );
        let found: Vec<Value> = users
            .iter()
            .filter(|u| u[name] == value)
            .map(node)
            .collect();
        return Json(json!({ "data": { "users": found } })).into_response();
    }
    if query.contains("getUserByLoginID") {
        let value = vars["v"].as_str().unwrap_or("");
        let found = users
            .iter()
            .find(|u| u["preferred_username"] == value)
            .map(node);
        return Json(json!({ "data": { "user": found } })).into_response();
    }
    if query.contains("node(") {
        let id = vars["id"].as_str().unwrap_or("");
        let found = users.iter().find(|u| u["id"] == id).map(node);
        return Json(json!({ "data": { "node": found } })).into_response();
    }
    Json(json!({"data": null, "errors": [{"message":"unknown query"}]})).into_response()
}
