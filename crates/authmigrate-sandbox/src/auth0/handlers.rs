//! HTTP handlers of the Auth0 emulator other than job creation.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::import::{self, is_connection_id, job_json};
use super::{Auth0State, JobOutcome, Ticket, User, api_error};
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
        .route(
            "/api/v2/jobs/users-exports",
            post(super::export::create_export),
        )
        .route("/api/v2/jobs/{id}", get(get_job))
        .route("/api/v2/jobs/{id}/errors", get(job_errors))
        .merge(super::users::routes())
        .merge(super::rbac::routes())
        .merge(super::orgs::routes())
        .merge(super::mfa::routes())
        .route("/api/v2/tickets/password-change", post(password_change))
        .route("/_sandbox/auth0/exports/{job}/{file}", get(download_export))
        .route("/_sandbox/auth0/password-hashes", get(password_hashes))
        .route("/_sandbox/auth0/clock", get(clock).post(clock))
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
        if !any_of.is_empty()
            && !any_of
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

    /// Like [`Auth0State::authorize`] for operations whose 403 says "expected all of".
    #[allow(
        clippy::result_large_err,
        reason = "the error is the finished HTTP answer"
    )]
    pub(super) fn authorize_all(
        &self,
        headers: &HeaderMap,
        all_of: &[&str],
    ) -> Result<String, Response> {
        let client = self.authorize(headers, &[])?;
        if !all_of
            .iter()
            .all(|s| self.config.scopes.iter().any(|g| g == s))
        {
            return Err(api_error(
                StatusCode::FORBIDDEN,
                &format!(
                    "Insufficient scope; expected all of: {}.",
                    all_of.join(", ")
                ),
                "insufficient_scope",
            ));
        }
        Ok(client)
    }
}

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

pub(super) fn bad_request(message: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, message, "invalid_body")
}

/// Query pairs in order (repeated keys kept).
pub(super) fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
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
pub(super) fn paging(
    pairs: &[(String, String)],
    default_per_page: usize,
) -> Result<(usize, usize), Response> {
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

pub(super) fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
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
                // With a custom domain the audience stays the canonical tenant domain
                // (auth0-api.md §7 (NEW)); a wrong one is 403 `access_denied`. The real
                // `error_description` is not in the sources read: "Service not found"
                // is the emulator's wording.
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
        "http://auth0.com/oauth/grant-type/mfa-otp" => state.mfa_otp(&params),
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
                    && (u
                        .str_field("email")
                        .is_some_and(|e| e.eq_ignore_ascii_case(username))
                        || u.str_field("username") == Some(username))
            })
            .map(|i| {
                let u = &inner.users[i];
                (i, u.password.clone(), u.blocked())
            })
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
    // A user enrolled in TOTP must finish with the mfa-otp grant (see `mfa.rs`).
    let enrolled = {
        let inner = state.lock();
        inner
            .users
            .get(index)
            .filter(|u| super::mfa::totp_secret(u).is_some())
            .map(User::user_id)
    };
    if let Some(user_id) = enrolled {
        return state.mfa_required(&user_id);
    }
    let client = state.config.client_id.clone();
    {
        let mut inner = state.lock();
        let now = inner.now_iso();
        if let Some(u) = inner.users.get_mut(index) {
            u.logins_count += 1;
            u.last_login = Some(now);
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
    Json(job_json(&job, location, inner.clock.now())).into_response()
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
        // A failed job answers the job object (the OAS `oneOf` (b)).
        Some(JobOutcome::Failed) => {
            let mut j = job_json(job, None, inner.clock.now());
            if let Some(o) = j.as_object_mut() {
                o.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "id" | "type"
                            | "status"
                            | "created_at"
                            | "connection_id"
                            | "status_details"
                    )
                });
            }
            Json(j).into_response()
        }
        // No errors (yet), or an export job: 204 with an empty body.
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
        .is_some_and(|l| l.job_id == job_id && inner.clock.now() < l.expires);
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
                .find(|u| {
                    u.connection == name
                        && u.str_field("email")
                            .is_some_and(|e| e.eq_ignore_ascii_case(email))
                })
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

/// `GET` or `POST /_sandbox/auth0/clock`: `{"advance_seconds": N}` moves the emulator's
/// clock N seconds forward; both answer `{"offset_seconds": …}`.
async fn clock(State(state): State<Arc<Auth0State>>, body: axum::body::Bytes) -> Response {
    if !body.is_empty() {
        match serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("advance_seconds").and_then(Value::as_u64))
        {
            Some(n) => state.advance_clock(std::time::Duration::from_secs(n)),
            None => return bad_request("Expected {\"advance_seconds\": <non-negative integer>}."),
        }
    }
    Json(json!({"offset_seconds": state.clock_offset().as_secs()})).into_response()
}
