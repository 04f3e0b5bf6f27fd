//! Bulk import jobs: creation, lazy completion (of export jobs too) and per-user
//! processing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::validate::validate_user;
use super::{Auth0Config, Auth0State, Inner, Job, JobKind, JobOutcome, User, api_error};
use crate::faults::{self, AfterCreate, Provider};
use crate::passwords::StoredPassword;

/// Fields an upsert may change (everything else is kept).
const UPSERTABLE: &[&str] = &[
    "app_metadata",
    "email_verified",
    "family_name",
    "given_name",
    "name",
    "nickname",
    "picture",
    "user_metadata",
];

pub(crate) fn bad_request(message: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, message, "invalid_body")
}

fn too_large(max: usize) -> Response {
    api_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Payload content length greater than maximum allowed: {max}."),
        "payload_too_large",
    )
}

fn invalid_multipart() -> Response {
    bad_request("Payload validation error: 'Invalid multipart payload format'.")
}

#[allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP answer"
)]
fn parse_bool(value: &str, field: &str) -> Result<bool, Response> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad_request(&format!(
            "Payload validation error: 'Expected type boolean but found type string' on property {field}."
        ))),
    }
}

pub(crate) fn is_connection_id(s: &str) -> bool {
    s.strip_prefix("con_")
        .is_some_and(|r| r.len() == 16 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `POST /api/v2/jobs/users-imports`.
pub(crate) async fn create_import(State(state): State<Arc<Auth0State>>, req: Request) -> Response {
    if let Err(r) = state.authorize(req.headers(), &["create:users"]) {
        return r;
    }
    let max = state.config.max_upload_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large(max);
    }
    let (parts, body) = req.into_parts();
    // Counts bytes while reading, for chunked bodies without a Content-Length.
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(_) => return too_large(max),
    };
    let req = Request::from_parts(parts, Body::from(bytes));
    let mut multipart = match Multipart::from_request(req, &()).await {
        Ok(m) => m,
        Err(_) => return invalid_multipart(),
    };
    let mut users: Option<Vec<u8>> = None;
    let mut fields: Map<String, Value> = Map::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return invalid_multipart(),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let data = match field.bytes().await {
            Ok(d) => d,
            Err(_) => return invalid_multipart(),
        };
        if name == "users" {
            users = Some(data.to_vec());
        } else {
            fields.insert(
                name,
                Value::String(String::from_utf8_lossy(&data).into_owned()),
            );
        }
    }
    let field = |k: &str| fields.get(k).and_then(Value::as_str);
    let Some(users) = users else {
        return bad_request("Must provide 'users' file as multipart part.");
    };
    if users.iter().all(u8::is_ascii_whitespace) {
        return bad_request("Users file must not be empty.");
    }
    let Some(connection_id) = field("connection_id") else {
        return bad_request("Must provide 'connection_id' as multipart part.");
    };
    if !is_connection_id(connection_id) {
        return bad_request(
            "Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property connection_id.",
        );
    }
    #[allow(clippy::result_large_err)]
    let upsert = match field("upsert").map(|v| parse_bool(v, "upsert")).transpose() {
        Ok(v) => v.unwrap_or(false),
        Err(r) => return r,
    };
    #[allow(clippy::result_large_err)]
    let send_completion_email = match field("send_completion_email")
        .map(|v| parse_bool(v, "send_completion_email"))
        .transpose()
    {
        Ok(v) => v.unwrap_or(true),
        Err(r) => return r,
    };
    let external_id = field("external_id").map(str::to_owned);
    let users: Vec<Value> = match serde_json::from_slice::<Value>(&users) {
        Ok(Value::Array(a)) => a,
        _ => {
            return bad_request(
                "Payload validation error: 'Users file must contain a JSON array of user objects'.",
            );
        }
    };

    let latency = state.faults.job_latency();
    let mut inner = state.lock();
    let Some(conn) = inner.connection_by_id(connection_id).cloned() else {
        return bad_request("The connection does not exist.");
    };
    if !conn.is_database() {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Connection must be a database connection.",
            "operation_not_supported",
        );
    }
    if conn.enabled_clients.is_empty() {
        return bad_request("Connection must be enabled.");
    }
    let limit = state.config.max_active_import_jobs;
    if inner.active_imports() >= limit {
        return api_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "There are {limit} active import users jobs, please wait until some of them are finished and try again"
            ),
            "too_many_requests",
        );
    }
    let number = inner.import_jobs_created;
    inner.import_jobs_created += 1;
    let after_create = state.faults.import_after_create(number);
    let fail_after = state.faults.job_fails_after(number);
    if send_completion_email {
        inner.completion_emails += 1;
    }
    let id = format!("job_{}", inner.random_alnum(16));
    let job = Job {
        id: id.clone(),
        kind: JobKind::Import {
            connection_id: conn.id.clone(),
            connection: conn.name.clone(),
            upsert,
            external_id,
            send_completion_email,
            users,
            fails: state.faults.job_fails(number),
        },
        created_at: inner.now_iso(),
        created: inner.clock.now(),
        latency,
        outcome: None,
        fail_after,
        failure: None,
    };
    let body = job_json(&job, None, job.created);
    inner.jobs.push(job);
    let active = inner.active_imports();
    inner.max_active_seen = inner.max_active_seen.max(active);
    drop(inner);
    schedule(&state, latency);
    // Faults that hit the answer, not the job: the job exists and runs either way.
    match after_create {
        AfterCreate::Answer => (StatusCode::ACCEPTED, axum::Json(body)).into_response(),
        AfterCreate::Error => faults::internal(Provider::Auth0),
        AfterCreate::Drop => faults::dropped(),
    }
}

/// Completes the jobs when due even if nobody polls.
pub(crate) fn schedule(state: &Arc<Auth0State>, latency: std::time::Duration) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        tokio::time::sleep(latency).await;
        if let Some(state) = weak.upgrade() {
            drop(state.lock());
        }
    });
}

/// The job as `GET /jobs/{id}` shows it at `now`; `location` for completed exports.
pub(crate) fn job_json(job: &Job, location: Option<String>, now: Instant) -> Value {
    let elapsed_d = now.saturating_duration_since(job.created);
    let mut m = Map::new();
    m.insert("id".into(), json!(job.id));
    let (status, pct) = match &job.outcome {
        Some(JobOutcome::Failed) => ("failed", None),
        Some(_) => ("completed", None),
        None => {
            let elapsed = elapsed_d.as_secs_f64();
            let total = job.latency.as_secs_f64().max(f64::EPSILON);
            if elapsed < total / 2.0 {
                ("pending", None)
            } else {
                (
                    "processing",
                    Some(((elapsed / total) * 100.0).min(99.0) as u64),
                )
            }
        }
    };
    m.insert("status".into(), json!(status));
    match &job.kind {
        JobKind::Import {
            connection_id,
            connection,
            upsert,
            external_id,
            send_completion_email,
            ..
        } => {
            m.insert("type".into(), json!("users_import"));
            m.insert("connection".into(), json!(connection));
            m.insert("connection_id".into(), json!(connection_id));
            m.insert("created_at".into(), json!(job.created_at));
            if let Some(e) = external_id {
                m.insert("external_id".into(), json!(e));
            }
            m.insert("upsert".into(), json!(upsert));
            m.insert("send_completion_email".into(), json!(send_completion_email));
        }
        JobKind::Export {
            connection_id,
            connection,
            format,
            fields,
            limit,
        } => {
            m.insert("type".into(), json!("users_export"));
            m.insert(
                "connection".into(),
                json!(connection.as_deref().unwrap_or("all")),
            );
            if let Some(c) = connection_id {
                m.insert("connection_id".into(), json!(c));
            }
            m.insert("created_at".into(), json!(job.created_at));
            m.insert("format".into(), json!(format));
            if let Some(l) = limit {
                m.insert("limit".into(), json!(l));
            }
            if let Some(f) = fields {
                m.insert("fields".into(), json!(f));
            }
        }
    }
    if let Some(p) = pct {
        m.insert("percentage_done".into(), json!(p));
        let left = job.latency.saturating_sub(elapsed_d).as_secs();
        m.insert("time_left_seconds".into(), json!(left));
    }
    match &job.outcome {
        Some(JobOutcome::Import { summary, .. }) => {
            let [failed, updated, inserted, total] = *summary;
            m.insert(
                "summary".into(),
                json!({"failed": failed, "updated": updated, "inserted": inserted, "total": total}),
            );
        }
        Some(JobOutcome::Failed) => {
            m.insert(
                "status_details".into(),
                json!(job.failure.as_deref().unwrap_or("the job failed")),
            );
        }
        _ => {}
    }
    if let Some(l) = location {
        m.insert("location".into(), json!(l));
    }
    Value::Object(m)
}

/// Deletes the data of jobs past their retention (24 h), fails import jobs running past
/// their timeout (2 h) after processing the share of users they got through, and
/// completes every job whose latency has passed.
pub(crate) fn complete_due_jobs(inner: &mut Inner, config: &Auth0Config) {
    let now = inner.clock.now();
    inner
        .jobs
        .retain(|j| now.saturating_duration_since(j.created) < config.job_retention);
    for i in 0..inner.jobs.len() {
        let job = &inner.jobs[i];
        let elapsed = now.saturating_duration_since(job.created);
        let is_import = matches!(job.kind, JobKind::Import { .. });
        let timed_out =
            is_import && job.latency > config.job_timeout && elapsed >= config.job_timeout;
        if job.outcome.is_some() || (elapsed < job.latency && !timed_out) {
            continue;
        }
        let (latency, fail_after) = (job.latency, job.fail_after);
        let mut failure = None;
        let outcome = match job.kind.clone() {
            JobKind::Import { fails: true, .. } => {
                failure = Some("the job failed (sandbox fail_jobs fault)".to_owned());
                JobOutcome::Failed
            }
            JobKind::Import {
                connection,
                upsert,
                users,
                ..
            } => {
                // A timed-out job got through the share of its users that fits in the
                // timeout; the fault `fail_jobs_after` names the count itself.
                let cut = if timed_out {
                    failure = Some(format!(
                        "Job timed out after {} hours",
                        config.job_timeout.as_secs() / 3600
                    ));
                    Some(share(users.len(), config.job_timeout, latency))
                } else {
                    fail_after.inspect(|k| {
                        failure = Some(format!(
                            "the job failed after {k} users (sandbox fail_jobs_after fault)"
                        ));
                    })
                };
                match cut {
                    Some(k) => {
                        let _ =
                            run_import(inner, &connection, upsert, &users[..k.min(users.len())]);
                        JobOutcome::Failed
                    }
                    None => run_import(inner, &connection, upsert, &users),
                }
            }
            JobKind::Export {
                connection,
                fields,
                limit,
                ..
            } => super::export::run_export(inner, connection.as_deref(), fields.as_deref(), limit),
        };
        inner.jobs[i].outcome = Some(outcome);
        inner.jobs[i].failure = failure;
    }
}

/// How many of `n` users a job of `latency` gets through in `timeout`.
fn share(n: usize, timeout: Duration, latency: Duration) -> usize {
    let f = timeout.as_secs_f64() / latency.as_secs_f64().max(f64::EPSILON);
    ((n as f64) * f).floor() as usize
}

/// Replaces secrets in a user as given with `*****` for the `/errors` report.
fn redact(user: &Value) -> Value {
    let mut u = user.clone();
    if let Some(o) = u.as_object_mut() {
        if o.contains_key("password_hash") {
            o.insert("password_hash".into(), json!("*****"));
        }
        if let Some(h) = o
            .get_mut("custom_password_hash")
            .and_then(|c| c.get_mut("hash"))
            .and_then(Value::as_object_mut)
        {
            if h.contains_key("value") {
                h.insert("value".into(), json!("*****"));
            }
            if let Some(k) = h.get_mut("key").and_then(Value::as_object_mut)
                && k.contains_key("value")
            {
                k.insert("value".into(), json!("*****"));
            }
        }
        if let Some(factors) = o.get_mut("mfa_factors").and_then(Value::as_array_mut) {
            for f in factors {
                if let Some(t) = f.get_mut("totp").and_then(Value::as_object_mut)
                    && t.contains_key("secret")
                {
                    t.insert("secret".into(), json!("*****"));
                }
            }
        }
    }
    u
}

/// A non-schema error entry. Real tenant traffic shows these without `path`
/// (auth0-api.md §1 (CORRECTED), go-auth0 recording `TestJobManager_ReadErrors`).
fn user_error(user: &Value, code: &str, message: &str) -> Value {
    json!({"user": redact(user), "errors": [{"code": code, "message": message}]})
}

/// Why imported `mfa_factors` cannot be enrolled, beyond the schema: a TOTP secret
/// whose length is not a possible unpadded base32 length (1, 3 or 6 characters past a
/// multiple of 8 decode to no whole byte), or two TOTP factors. The docs give no list
/// of such cases; these are the emulator's.
fn mfa_factors_fail(factors: &[Value]) -> bool {
    let secrets: Vec<&str> = factors
        .iter()
        .filter_map(|f| f.get("totp")?.get("secret")?.as_str())
        .collect();
    secrets.len() > 1 || secrets.iter().any(|s| matches!(s.len() % 8, 1 | 3 | 6))
}

const MFA_FAILED: (&str, &str) = ("MFA_FACTORS_FAILED", "Unable to import factors");

/// The profile fields Auth0 fills on import when they are missing (auth0-api.md §1
/// (NEW)): `name` = the e-mail, `nickname` = its local part, a gravatar `picture`.
pub(crate) fn fill_profile_defaults(profile: &mut Map<String, Value>) {
    let Some(email) = profile
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let local = email.split('@').next().unwrap_or_default().to_owned();
    profile.entry("name").or_insert_with(|| json!(email));
    profile.entry("nickname").or_insert_with(|| json!(local));
    profile.entry("picture").or_insert_with(|| {
        use md5::Digest as _;
        let hash = hex::encode(md5::Md5::digest(email.trim().to_lowercase().as_bytes()));
        let initials: String = local.chars().take(2).collect::<String>().to_lowercase();
        json!(format!(
            "https://secure.gravatar.com/avatar/{hash}?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{initials}.png"
        ))
    });
}

pub(crate) fn run_import(
    inner: &mut Inner,
    connection: &str,
    upsert: bool,
    users: &[Value],
) -> JobOutcome {
    let (mut failed, mut updated, mut inserted) = (0u64, 0u64, 0u64);
    let mut errors = Vec::new();
    let mut seen: [HashSet<String>; 3] = Default::default();
    // This connection's users by e-mail, username and custom id, built once per job and
    // kept current as the job inserts: a scan per imported user would make every job
    // slower as the tenant grows, which real Auth0 does not do.
    let mut by_email_idx: HashMap<String, usize> = HashMap::new();
    let mut by_username_idx: HashMap<String, usize> = HashMap::new();
    let mut by_alt_idx: HashMap<String, usize> = HashMap::new();
    for (i, u) in inner.users.iter().enumerate() {
        if u.connection != connection {
            continue;
        }
        if let Some(e) = u.str_field("email") {
            by_email_idx.entry(e.to_lowercase()).or_insert(i);
        }
        if let Some(n) = u.str_field("username") {
            by_username_idx.entry(n.to_owned()).or_insert(i);
        }
        if let Some(a) = &u.alt_id {
            by_alt_idx.entry(a.clone()).or_insert(i);
        }
    }
    for user in users {
        let errs = validate_user(user);
        if !errs.is_empty() {
            failed += 1;
            errors.push(json!({"user": redact(user), "errors": errs}));
            continue;
        }
        let get = |k: &str| user.get(k).and_then(Value::as_str).map(str::to_owned);
        // Auth0 keeps e-mails lower-cased, so the same address in another case is the
        // same user.
        let keys = [
            get("email").map(|e| e.to_lowercase()),
            get("username"),
            get("user_id"),
        ];
        // A later occurrence of the same email, username or user_id in one file.
        let dup = ["email", "username", "user_id"]
            .iter()
            .zip(&keys)
            .zip(&seen)
            .find(|((_, k), s)| k.as_ref().is_some_and(|k| s.contains(k)))
            .map(|((name, _), _)| *name);
        for (k, s) in keys.iter().zip(seen.iter_mut()) {
            if let Some(k) = k {
                s.insert(k.clone());
            }
        }
        if let Some(name) = dup {
            failed += 1;
            errors.push(user_error(
                user,
                "DUPLICATED_USER",
                &format!("A user with this {name} was already provided."),
            ));
            continue;
        }
        let [email, username, user_id] = keys;
        let email = email.unwrap_or_default();
        let by_email = by_email_idx.get(&email).copied();
        let by_other = [
            username.as_ref().and_then(|n| by_username_idx.get(n)),
            user_id.as_ref().and_then(|a| by_alt_idx.get(a)),
        ]
        .into_iter()
        .flatten()
        .copied()
        .min();
        if !upsert && (by_email.is_some() || by_other.is_some()) {
            // Choice: `DUPLICATED_USER`. The doc's code list has both DUPLICATED_USER and
            // CONFLICT; the only observed message for this case ("The user already exist
            // and upsert parameter is false") is reported with DUPLICATED_USER.
            failed += 1;
            errors.push(user_error(
                user,
                "DUPLICATED_USER",
                "The user already exist and upsert parameter is false",
            ));
            continue;
        }
        if let Some(i) = by_email {
            if by_other.is_some_and(|o| o != i) {
                failed += 1;
                errors.push(user_error(
                    user,
                    "CONFLICT",
                    "Another user already has this username or user_id",
                ));
                continue;
            }
            let now = inner.now_iso();
            let factors = user.get("mfa_factors").and_then(Value::as_array);
            let existing = &mut inner.users[i];
            // `mfa_factors` are upsertable; a failure leaves the other changes applied.
            if let Some(f) = factors {
                if mfa_factors_fail(f) {
                    errors.push(user_error(user, MFA_FAILED.0, MFA_FAILED.1));
                } else {
                    existing.mfa_factors = f.clone();
                }
            }
            for key in UPSERTABLE {
                if let Some(v) = user.get(*key) {
                    existing.profile.insert((*key).to_owned(), v.clone());
                }
            }
            if let Some(c) = user.get("custom_password_hash")
                && !existing.logged_in_with_imported_hash
            {
                existing.password = Some(StoredPassword::Custom(c.clone()));
                existing.password_set_date = Some(now.clone());
            }
            existing.updated_at = now;
            updated += 1;
            continue;
        }
        if by_other.is_some() {
            failed += 1;
            errors.push(user_error(
                user,
                "CONFLICT",
                "Another user already has this username or user_id",
            ));
            continue;
        }
        let now = inner.now_iso();
        let mut profile = Map::new();
        for (k, v) in user.as_object().into_iter().flatten() {
            if !matches!(
                k.as_str(),
                "password_hash" | "custom_password_hash" | "user_id" | "mfa_factors"
            ) {
                profile.insert(k.clone(), v.clone());
            }
        }
        profile.insert("email".into(), json!(email));
        profile
            .entry("email_verified")
            .or_insert_with(|| json!(false));
        fill_profile_defaults(&mut profile);
        let mut mfa_factors = Vec::new();
        if let Some(f) = user.get("mfa_factors").and_then(Value::as_array) {
            if mfa_factors_fail(f) {
                errors.push(user_error(user, MFA_FAILED.0, MFA_FAILED.1));
            } else {
                mfa_factors = f.clone();
            }
        }
        let password = if let Some(h) = get("password_hash") {
            Some(StoredPassword::Bcrypt(h))
        } else {
            user.get("custom_password_hash")
                .map(|c| StoredPassword::Custom(c.clone()))
        };
        let oid = inner.new_oid();
        let at = inner.users.len();
        by_email_idx.entry(email.clone()).or_insert(at);
        if let Some(n) = &username {
            by_username_idx.entry(n.clone()).or_insert(at);
        }
        if let Some(a) = &user_id {
            by_alt_idx.entry(a.clone()).or_insert(at);
        }
        inner.users.push(User {
            oid,
            alt_id: user_id,
            connection: connection.to_owned(),
            profile,
            password_set_date: password.as_ref().map(|_| now.clone()),
            password,
            logged_in_with_imported_hash: false,
            logins_count: 0,
            created_at: now.clone(),
            updated_at: now,
            last_login: None,
            mfa_factors,
        });
        inserted += 1;
    }
    inner.users_changed();
    JobOutcome::Import {
        summary: [failed, updated, inserted, users.len() as u64],
        errors,
    }
}

impl Auth0State {
    /// Imports users into connection `connection` at once, as a finished import job
    /// (upsert off) would, without HTTP or a job (for tests and the demo). Returns the
    /// number inserted and the `/errors` entries of the others.
    pub fn seed_users(&self, connection: &str, users: &[Value]) -> (u64, Vec<Value>) {
        let mut inner = self.lock();
        match run_import(&mut inner, connection, false, users) {
            JobOutcome::Import { summary, errors } => (summary[2], errors),
            _ => (0, Vec::new()),
        }
    }
}
