//! HTTP handlers of the Auth0 emulator other than job creation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::import::{self, is_connection_id, job_json};
use super::validate::is_email;
use super::{Auth0State, JobOutcome, Ticket, User, api_error, now_iso};
use crate::passwords::{self, StoredPassword};

pub(super) fn routes(state: Arc<Auth0State>) -> axum::Router {
    axum::Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v2/connections", get(list_connections))
        .route("/api/v2/connections/{id}/clients", get(connection_clients))
        .route(
            "/api/v2/jobs/users-imports",
            // The handler enforces `max_upload_bytes` itself (413 with Auth0's text).
            post(import::create_import).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v2/jobs/users-exports", post(import::create_export))
        .route("/api/v2/jobs/{id}", get(get_job))
        .route("/api/v2/jobs/{id}/errors", get(job_errors))
        .route("/api/v2/users", get(list_users).post(create_user))
        .route("/api/v2/users/{id}", get(get_user).delete(delete_user))
        .route("/api/v2/users-by-email", get(users_by_email))
        .route("/api/v2/tickets/password-change", post(password_change))
        .route("/_sandbox/auth0/exports/{job}/{file}", get(download_export))
        .route("/_sandbox/auth0/password-hashes", get(password_hashes))
        .with_state(state)
}

impl Auth0State {
    /// Checks the bearer token and its scopes; returns the caller's client id.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the finished HTTP answer"
    )]
    pub(super) fn authorize(
        &self,
        headers: &HeaderMap,
        any_of: &[&str],
    ) -> Result<String, Response> {
        let invalid = || api_error(StatusCode::UNAUTHORIZED, "Invalid token.", "invalid_token");
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(invalid)?;
        let client = self.token_client(token.trim()).ok_or_else(invalid)?;
        if !any_of
            .iter()
            .any(|s| self.config.scopes.iter().any(|g| g == s))
        {
            return Err(api_error(
                StatusCode::FORBIDDEN,
                &format!("Insufficient scope; expected any of: {}.", any_of.join(",")),
                "insufficient_scope",
            ));
        }
        Ok(client)
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, message, "invalid_body")
}

/// Query pairs in order (repeated keys kept).
fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// `page` (0-based) and `per_page` (1..=100, default `default_per_page`), with the
/// Management API's validation messages.
#[allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP answer"
)]
fn paging(pairs: &[(String, String)], default_per_page: usize) -> Result<(usize, usize), Response> {
    let per_page = match query_get(pairs, "per_page").map(str::parse::<usize>) {
        None => default_per_page,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return Err(bad_request(
                "Query validation error: 'Invalid value' on property per_page (Number of results per page).",
            ));
        }
    };
    let page = match query_get(pairs, "page").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return Err(bad_request(
                "Query validation error: 'Invalid value' on property page.",
            ));
        }
    };
    Ok((page, per_page))
}

fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

async fn token(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let params: HashMap<String, String> = if is_json {
        match serde_json::from_slice::<Map<String, Value>>(&body) {
            Ok(m) => m
                .into_iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, s)
                })
                .collect(),
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid JSON body",
                );
            }
        }
    } else {
        url::form_urlencoded::parse(&body).into_owned().collect()
    };
    let p = |k: &str| params.get(k).map(String::as_str);
    let Some(grant) = p("grant_type") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: grant_type",
        );
    };
    match grant {
        "client_credentials" => {
            let (Some(id), Some(secret)) = (p("client_id"), p("client_secret")) else {
                return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
            };
            if id != state.config.client_id || secret != state.config.client_secret {
                return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
            }
            let audience = state.audience();
            match p("audience") {
                None => {
                    return oauth_error(
                        StatusCode::FORBIDDEN,
                        "access_denied",
                        "No audience parameter was provided, and no default audience has been configured",
                    );
                }
                Some(a) if a != audience => {
                    return oauth_error(
                        StatusCode::FORBIDDEN,
                        "access_denied",
                        &format!("Service not found: {a}"),
                    );
                }
                Some(_) => {}
            }
            let (token, expires_in) = state.issue_token(id);
            Json(json!({
                "access_token": token,
                "expires_in": expires_in,
                "scope": state.config.scopes.join(" "),
                "token_type": "Bearer",
            }))
            .into_response()
        }
        "http://auth0.com/oauth/grant-type/password-realm" => password_realm(&state, &params),
        other => oauth_error(
            StatusCode::FORBIDDEN,
            "unsupported_grant_type",
            &format!("Grant type '{other}' not allowed for the client."),
        ),
    }
}

fn password_realm(state: &Auth0State, params: &HashMap<String, String>) -> Response {
    let p = |k: &str| params.get(k).map(String::as_str);
    if p("client_id") != Some(state.config.client_id.as_str()) {
        return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
    }
    let (Some(username), Some(password), Some(realm)) = (p("username"), p("password"), p("realm"))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: username, password or realm",
        );
    };
    let wrong = || {
        oauth_error(
            StatusCode::FORBIDDEN,
            "invalid_grant",
            "Wrong email or password.",
        )
    };
    let found = {
        let inner = state.lock();
        inner
            .users
            .iter()
            .position(|u| {
                u.connection == realm
                    && (u.str_field("email") == Some(username)
                        || u.str_field("username") == Some(username))
            })
            .map(|i| (i, inner.users[i].password.clone(), inner.users[i].blocked()))
    };
    let Some((index, Some(stored), blocked)) = found else {
        return wrong();
    };
    // bcrypt and friends are slow: verify outside the lock.
    if !passwords::verify(password, &stored) {
        return wrong();
    }
    if blocked {
        return oauth_error(StatusCode::UNAUTHORIZED, "unauthorized", "user is blocked");
    }
    let client = state.config.client_id.clone();
    {
        let mut inner = state.lock();
        if let Some(u) = inner.users.get_mut(index) {
            u.logins_count += 1;
            u.last_login = Some(now_iso());
            u.logged_in_with_imported_hash = true;
        }
    }
    let (token, expires_in) = state.issue_token(&client);
    Json(json!({
        "access_token": token,
        "expires_in": expires_in,
        "scope": "openid",
        "token_type": "Bearer",
    }))
    .into_response()
}

async fn list_connections(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:connections"]) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let strategies: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "strategy" || k.starts_with("strategy["))
        .map(|(_, v)| v.as_str())
        .collect();
    let name = query_get(&pairs, "name");
    let (page, per_page) = match paging(&pairs, 100) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let include_totals = query_get(&pairs, "include_totals") == Some("true");
    let inner = state.lock();
    let all: Vec<Value> = inner
        .connections
        .iter()
        .filter(|c| strategies.is_empty() || strategies.contains(&c.strategy.as_str()))
        .filter(|c| name.is_none_or(|n| c.name == n))
        .map(|c| c.to_json())
        .collect();
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip(page * per_page)
        .take(per_page)
        .collect();
    if include_totals {
        Json(json!({"start": page * per_page, "limit": per_page, "total": total, "connections": items}))
            .into_response()
    } else {
        Json(Value::Array(items)).into_response()
    }
}

async fn connection_clients(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:connections"]) {
        return r;
    }
    let inner = state.lock();
    match inner.connection_by_id(&id) {
        Some(c) => {
            let clients: Vec<Value> = c
                .enabled_clients
                .iter()
                .map(|id| json!({"client_id": id}))
                .collect();
            Json(json!({"clients": clients})).into_response()
        }
        None => api_error(
            StatusCode::NOT_FOUND,
            "The connection does not exist",
            "inexistent_connection",
        ),
    }
}

async fn get_job(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["create:users", "read:users"]) {
        return r;
    }
    let mut inner = state.lock();
    let Some(job) = inner.jobs.iter().find(|j| j.id == id).cloned() else {
        return api_error(StatusCode::NOT_FOUND, "Job not found.", "inexistent_job");
    };
    // Every look at a completed export gets a fresh, short-lived download link.
    let location = matches!(job.outcome, Some(JobOutcome::Export { .. }))
        .then(|| state.new_export_link(&mut inner, &job.id));
    Json(job_json(&job, location)).into_response()
}

async fn job_errors(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["create:users", "read:users"]) {
        return r;
    }
    let inner = state.lock();
    let Some(job) = inner.jobs.iter().find(|j| j.id == id) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "The job does not exist",
            "inexistent_job",
        );
    };
    match &job.outcome {
        Some(JobOutcome::Import { errors, .. }) if !errors.is_empty() => {
            Json(Value::Array(errors.clone())).into_response()
        }
        // No errors (yet), a failed job, or an export job: 204 with an empty body.
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn download_export(
    State(state): State<Arc<Auth0State>>,
    Path((job_id, file)): Path<(String, String)>,
) -> Response {
    let Some(token) = file.strip_suffix(".json.gz") else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let inner = state.lock();
    let valid = inner
        .export_links
        .get(token)
        .is_some_and(|l| l.job_id == job_id && Instant::now() < l.expires);
    if !valid {
        return (
            StatusCode::FORBIDDEN,
            "AccessDenied: Request has expired or the link is invalid",
        )
            .into_response();
    }
    match inner
        .jobs
        .iter()
        .find(|j| j.id == job_id)
        .map(|j| &j.outcome)
    {
        Some(Some(JobOutcome::Export { gz })) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/gzip"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"export.json.gz\"",
                ),
            ],
            gz.clone(),
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

async fn password_hashes(State(state): State<Arc<Auth0State>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let connection = query_get(&pairs, "connection");
    let inner = state.lock();
    let mut out = String::new();
    for u in inner
        .users
        .iter()
        .filter(|u| connection.is_none_or(|c| u.connection == c))
    {
        let Some(StoredPassword::Bcrypt(hash)) = &u.password else {
            continue;
        };
        let email = u.str_field("email").unwrap_or_default();
        let verified = u
            .profile
            .get("email_verified")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut m = Map::new();
        m.insert("_id".into(), json!({"$oid": u.oid}));
        m.insert("email_verified".into(), json!(verified));
        m.insert("email".into(), json!(email));
        m.insert("passwordHash".into(), json!(hash));
        m.insert(
            "password_set_date".into(),
            json!({"$date": u.password_set_date.clone().unwrap_or_else(|| u.created_at.clone())}),
        );
        m.insert("tenant".into(), json!(state.config.tenant));
        m.insert("connection".into(), json!(u.connection));
        m.insert("_tmp_is_unique".into(), json!(true));
        let mut identifiers = vec![json!({"type": "email", "value": email, "verified": verified})];
        if let Some(name) = u.str_field("username") {
            identifiers.push(json!({"type": "username", "value": name}));
        }
        m.insert("identifiers".into(), Value::Array(identifiers));
        if let Some(alt) = &u.alt_id {
            m.insert("alt_id".into(), json!(alt));
        }
        out.push_str(&Value::Object(m).to_string());
        out.push('\n');
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        out,
    )
        .into_response()
}

async fn create_user(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let client = match state.authorize(&headers, &["create:users"]) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("Payload validation error: 'Expected type object'.");
    };
    const ALLOWED: &[&str] = &[
        "connection",
        "email",
        "phone_number",
        "user_metadata",
        "app_metadata",
        "blocked",
        "email_verified",
        "phone_verified",
        "given_name",
        "family_name",
        "name",
        "nickname",
        "picture",
        "user_id",
        "password",
        "verify_email",
        "username",
    ];
    if let Some(k) = body.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return bad_request(&format!(
            "Payload validation error: 'Additional properties not allowed: {k}'."
        ));
    }
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    let Some(connection) = s("connection").filter(|c| !c.is_empty()) else {
        return bad_request("Payload validation error: 'Missing required property: connection'.");
    };
    for (k, min, max) in [
        ("given_name", 1, 150),
        ("family_name", 1, 150),
        ("name", 1, 300),
        ("nickname", 1, 300),
        ("username", 1, 128),
        ("user_id", 0, 255),
        ("password", 1, usize::MAX),
    ] {
        match body.get(k) {
            None => {}
            Some(Value::String(v)) if (min..=max).contains(&v.chars().count()) => {}
            Some(Value::String(_)) => {
                return bad_request(&format!(
                    "Payload validation error: 'String length is out of range' on property {k}."
                ));
            }
            Some(_) => {
                return bad_request(&format!(
                    "Payload validation error: 'Expected type string' on property {k}."
                ));
            }
        }
    }
    if let Some(e) = s("email")
        && !is_email(e)
    {
        return bad_request(&format!(
            "Payload validation error: 'Object didn't pass validation for format email: {e}' on property email."
        ));
    }
    let conn = {
        let inner = state.lock();
        inner.connection_by_name(connection).cloned()
    };
    let Some(conn) = conn else {
        return bad_request("Connection does not exist.");
    };
    if !conn.is_database() && conn.strategy != "email" && conn.strategy != "sms" {
        return bad_request(
            "Connection does not support user creation through the API. It must either be a database or passwordless connection.",
        );
    }
    if !conn.enabled_clients.contains(&client) {
        return bad_request(&format!(
            "Connection must be enabled for this client to perform single user creation and signup operations (client_id: {client} - connection: {})",
            conn.name
        ));
    }
    if body.contains_key("username") && !conn.requires_username {
        return bad_request("Cannot set username for connection without requires_username.");
    }
    let Some(email) = s("email") else {
        return bad_request("Payload validation error: 'Missing required property: email'.");
    };
    let password = if conn.is_database() {
        let Some(pw) = s("password") else {
            return bad_request("Payload validation error: 'Missing required property: password'.");
        };
        // Hash before taking the lock (bcrypt is slow).
        match bcrypt::hash(pw, state.config.bcrypt_cost) {
            Ok(h) => Some(StoredPassword::Bcrypt(h)),
            Err(_) => return bad_request("PasswordStrengthError: Password is not allowed."),
        }
    } else {
        None
    };
    let mut inner = state.lock();
    let exists = inner.users.iter().any(|u| {
        u.connection == conn.name
            && (u.str_field("email") == Some(email)
                || (s("user_id").is_some() && u.alt_id.as_deref() == s("user_id")))
    });
    if exists {
        return api_error(
            StatusCode::CONFLICT,
            "User already exists.",
            "auth0_idp_error",
        );
    }
    let now = now_iso();
    let mut profile = Map::new();
    for (k, v) in &body {
        if !matches!(
            k.as_str(),
            "connection" | "password" | "user_id" | "verify_email"
        ) {
            profile.insert(k.clone(), v.clone());
        }
    }
    profile
        .entry("email_verified")
        .or_insert_with(|| json!(false));
    let oid = inner.new_oid();
    let user = User {
        oid,
        alt_id: s("user_id").filter(|id| !id.is_empty()).map(str::to_owned),
        connection: conn.name.clone(),
        profile,
        password_set_date: password.as_ref().map(|_| now.clone()),
        password,
        logged_in_with_imported_hash: false,
        logins_count: 0,
        created_at: now.clone(),
        updated_at: now,
        last_login: None,
    };
    let out = user.to_json();
    inner.users.push(user);
    (StatusCode::CREATED, Json(out)).into_response()
}

/// A parsed `q` of the form `email:"x"` or `email:x` (the only search supported).
fn email_query(q: &str) -> Option<String> {
    let v = q.trim().strip_prefix("email:")?;
    Some(v.trim_matches('"').to_owned())
}

async fn list_users(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:users"]) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let (page, per_page) = match paging(&pairs, 50) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if (page + 1) * per_page > 1000 {
        return bad_request(
            "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation",
        );
    }
    let filter = match query_get(&pairs, "q") {
        None | Some("") => None,
        Some(q) => match email_query(q) {
            Some(e) => Some(e),
            None => {
                return bad_request("The sandbox only supports q=email:\"address\" searches.");
            }
        },
    };
    let connection = query_get(&pairs, "connection");
    let inner = state.lock();
    let all: Vec<Value> = inner
        .users
        .iter()
        .filter(|u| {
            filter.as_deref().is_none_or(|e| {
                u.str_field("email")
                    .is_some_and(|m| m.eq_ignore_ascii_case(e))
            })
        })
        .filter(|u| connection.is_none_or(|c| u.connection == c))
        .map(User::to_json)
        .collect();
    let total = all.len().min(1000);
    let items: Vec<Value> = all
        .into_iter()
        .skip(page * per_page)
        .take(per_page)
        .collect();
    if query_get(&pairs, "include_totals") == Some("true") {
        Json(json!({
            "start": page * per_page,
            "limit": per_page,
            "length": items.len(),
            "total": total,
            "users": items,
        }))
        .into_response()
    } else {
        Json(Value::Array(items)).into_response()
    }
}

async fn users_by_email(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:users"]) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let Some(email) = query_get(&pairs, "email") else {
        return bad_request("Query validation error: 'Missing required property: email'.");
    };
    let inner = state.lock();
    // Case-sensitive, as documented.
    let users: Vec<Value> = inner
        .users
        .iter()
        .filter(|u| u.str_field("email") == Some(email))
        .map(User::to_json)
        .collect();
    Json(Value::Array(users)).into_response()
}

async fn get_user(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:users"]) {
        return r;
    }
    let inner = state.lock();
    match inner.users.iter().find(|u| u.user_id() == id) {
        Some(u) => Json(u.to_json()).into_response(),
        None => api_error(StatusCode::NOT_FOUND, "User not found.", "inexistent_user"),
    }
}

async fn delete_user(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["delete:users"]) {
        return r;
    }
    state.lock().users.retain(|u| u.user_id() != id);
    StatusCode::NO_CONTENT.into_response()
}

async fn password_change(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["create:user_tickets"]) {
        return r;
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("Payload validation error: 'Expected type object'.");
    };
    const ALLOWED: &[&str] = &[
        "user_id",
        "connection_id",
        "email",
        "result_url",
        "client_id",
        "organization_id",
        "ttl_sec",
        "mark_email_as_verified",
        "includeEmailInRedirect",
        "identity",
    ];
    if let Some(k) = body.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return bad_request(&format!(
            "Payload validation error: 'Additional properties not allowed: {k}'."
        ));
    }
    let ttl_sec = match body.get("ttl_sec") {
        None => 0,
        Some(v) => match v.as_u64() {
            Some(n) => n,
            None => {
                return bad_request(
                    "Payload validation error: 'Value is less than minimum 0' on property ttl_sec.",
                );
            }
        },
    };
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    let mut inner = state.lock();
    let user_id = match (s("user_id"), s("connection_id"), s("email")) {
        (Some(id), None, None) => inner
            .users
            .iter()
            .find(|u| u.user_id() == id)
            .map(User::user_id),
        (None, Some(cid), Some(email)) => {
            if !is_connection_id(cid) || inner.connection_by_id(cid).is_none() {
                return bad_request(&format!("The connection with id {cid} does not exist."));
            }
            let name = inner
                .connection_by_id(cid)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            inner
                .users
                .iter()
                .find(|u| u.connection == name && u.str_field("email") == Some(email))
                .map(User::user_id)
        }
        _ => {
            return bad_request(
                "Payload validation error: 'Give either user_id, or connection_id and email'.",
            );
        }
    };
    let Some(user_id) = user_id else {
        return api_error(StatusCode::NOT_FOUND, "User not found.", "inexistent_user");
    };
    let ticket = inner.random_alnum(32);
    let url = format!("{}/lo/reset?ticket={ticket}#", state.base_url);
    inner.tickets.push(Ticket {
        user_id,
        url: url.clone(),
        ttl_sec: if ttl_sec == 0 { 432_000 } else { ttl_sec },
    });
    (StatusCode::CREATED, Json(json!({"ticket": url}))).into_response()
}
