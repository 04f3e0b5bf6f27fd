//! `POST /_api/admin/users/export`, `GET /_api/admin/users/export/{id}` (§5) and the
//! sandbox's presigned download route.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::api::{
    ADMIN_BODY_LIMIT, api_error, check_json_content_type, error_response, new_id, parse_json,
    read_body, result_response, rfc3339,
};
use super::store::{Kind, STD_ATTRS, StoredUser};
use super::{AuthgearState, object};

/// An export job.
#[derive(Debug)]
pub(super) struct ExportJob {
    id: String,
    created_at: jiff::Timestamp,
    request: Value,
    completed_at: Option<jiff::Timestamp>,
    /// Object key of the finished file.
    key: Option<String>,
    file: Vec<u8>,
}

/// A presigned download URL's grant.
#[derive(Debug)]
pub(super) struct Download {
    job_id: String,
    expires: Instant,
}

fn validate(body: &Value) -> Result<(), Value> {
    // Reuses the cause shapes of the import schema.
    let mut causes = Vec::new();
    let cause = |loc: &str, kind: &str, details: Value| {
        object([
            ("location", json!(loc)),
            ("kind", json!(kind)),
            ("details", details),
        ])
    };
    let Some(obj) = body.as_object() else {
        causes.push(cause(
            "",
            "type",
            json!({"actual": ["non-object"], "expected": ["object"]}),
        ));
        return Err(wrap(causes));
    };
    let added: Vec<&String> = obj
        .keys()
        .filter(|k| !["format", "csv"].contains(&k.as_str()))
        .collect();
    if !added.is_empty() {
        causes.push(cause("", "additionalProperties", json!({ "added": added })));
    }
    match obj.get("format") {
        None => causes.push(cause(
            "",
            "required",
            json!({"expected": ["format"], "missing": ["format"]}),
        )),
        Some(Value::String(f)) if f == "ndjson" || f == "csv" => {}
        Some(other) => causes.push(cause(
            "/format",
            "enum",
            json!({"actual": other, "expected": ["ndjson", "csv"]}),
        )),
    }
    if let Some(csv) = obj.get("csv") {
        let fields = csv.get("fields").and_then(Value::as_array);
        match fields {
            Some(fields) if !fields.is_empty() => {
                let mut names = HashSet::new();
                let mut dups = Vec::new();
                for (i, f) in fields.iter().enumerate() {
                    let pointer = f.get("pointer").and_then(Value::as_str);
                    let Some(pointer) = pointer.filter(|p| p.is_empty() || p.starts_with('/'))
                    else {
                        causes.push(cause(
                            &format!("/csv/fields/{i}/pointer"),
                            "format",
                            json!({"format": "json-pointer"}),
                        ));
                        continue;
                    };
                    let name = match f.get("field_name").and_then(Value::as_str) {
                        Some(n) => n.to_owned(),
                        None => pointer.trim_start_matches('/').replace('/', "."),
                    };
                    if !names.insert(name.clone()) {
                        dups.push(name);
                    }
                }
                if causes.is_empty() && !dups.is_empty() {
                    return Err(api_error(
                        "Invalid",
                        "UserExportNonUniqueFieldNames",
                        "field names are not unique",
                        Some(json!({ "field_names": dups })),
                    ));
                }
            }
            _ => causes.push(cause(
                "/csv/fields",
                "minItems",
                json!({"actual": 0, "expected": 1}),
            )),
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(wrap(causes))
    }
}

fn wrap(causes: Vec<Value>) -> Value {
    api_error(
        "Invalid",
        "ValidationFailed",
        "invalid request body",
        Some(json!({ "causes": causes })),
    )
}

/// `POST /_api/admin/users/export`.
pub(super) async fn create(
    State(state): State<Arc<AuthgearState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(err) = check_json_content_type(&headers) {
        return error_response(err);
    }
    let bytes = match read_body(body, ADMIN_BODY_LIMIT).await {
        Ok(b) => b,
        Err(err) => return error_response(err),
    };
    let request = match parse_json(&bytes) {
        Ok(v) => v,
        Err(err) => return error_response(err),
    };
    if let Err(err) = validate(&request) {
        return error_response(err);
    }
    if request.get("format").and_then(Value::as_str) == Some("csv") {
        return error_response(api_error(
            "BadRequest",
            "UserExportFormatUnsupported",
            "the sandbox only exports ndjson",
            None,
        ));
    }
    let job = ExportJob {
        id: new_id("userexport_"),
        created_at: state.now(),
        request,
        completed_at: None,
        key: None,
        file: Vec::new(),
    };
    let response = job_json(&job);
    let id = job.id.clone();
    state.lock().exports.insert(id.clone(), job);
    let st = state.clone();
    tokio::spawn(async move { run(st, id).await });
    result_response(response)
}

async fn run(state: Arc<AuthgearState>, id: String) {
    tokio::time::sleep(state.faults.job_latency()).await;
    state.wait_unpaused().await;
    let _turn = state.queue.lock().await;
    let now = state.now();
    let mut inner = state.lock();
    let mut file = Vec::new();
    for user in &inner.store.users {
        let line = user
            .export_record(&state.config.project_id, now)
            .to_string();
        file.extend_from_slice(line.as_bytes());
        file.push(b'\n');
    }
    let stamp = now.strftime("%Y%m%d%H%M%SZ").to_string();
    if let Some(job) = inner.exports.get_mut(&id) {
        job.key = Some(format!(
            "{}-{}-{stamp}.ndjson",
            state.config.project_id, job.id
        ));
        job.file = file;
        job.completed_at = Some(now);
    }
}

fn job_json(job: &ExportJob) -> Value {
    let mut r = Map::new();
    r.insert("id".to_owned(), json!(job.id));
    r.insert("created_at".to_owned(), rfc3339(job.created_at));
    let status = if job.completed_at.is_some() {
        "completed"
    } else {
        "pending"
    };
    r.insert("status".to_owned(), json!(status));
    r.insert("request".to_owned(), job.request.clone());
    if let Some(done) = job.completed_at {
        r.insert("completed_at".to_owned(), rfc3339(done));
    }
    Value::Object(r)
}

/// `GET /_api/admin/users/export/{id}`: a fresh download URL on every call once done.
pub(super) async fn get(
    State(state): State<Arc<AuthgearState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let now = state.now();
    let mut inner = state.lock();
    // Results expire 24 h after the task completes (retention TTL).
    let expired = inner
        .exports
        .get(&id)
        .and_then(|j| j.completed_at)
        .is_some_and(|done| now >= done + jiff::SignedDuration::from_hours(24));
    if expired {
        inner.exports.remove(&id);
    }
    let Some(job) = inner.exports.get(&id) else {
        return error_response(api_error(
            "NotFound",
            "TaskNotFound",
            "task not found",
            None,
        ));
    };
    let mut result = job_json(job);
    if let Some(key) = job.key.clone() {
        let token = new_id("").to_lowercase();
        let url = format!("http://{host}/_sandbox/authgear/exports/{key}?token={token}");
        if let Some(map) = result.as_object_mut() {
            map.insert("download_url".to_owned(), json!(url));
        }
        inner.downloads.insert(
            token,
            Download {
                job_id: id,
                expires: Instant::now() + state.config.download_url_ttl,
            },
        );
    }
    result_response(result)
}

/// Query of the download route.
#[derive(Debug, Deserialize)]
pub(super) struct DownloadQuery {
    token: Option<String>,
}

/// `GET /_sandbox/authgear/exports/{key}?token=...`.
pub(super) async fn download(
    State(state): State<Arc<AuthgearState>>,
    Path(key): Path<String>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    let denied = |msg: &'static str| {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            msg,
        )
            .into_response()
    };
    let inner = state.lock();
    let Some(grant) = query.token.as_deref().and_then(|t| inner.downloads.get(t)) else {
        return denied("Access denied");
    };
    if Instant::now() >= grant.expires {
        return denied("Request has expired");
    }
    let Some(job) = inner.exports.get(&grant.job_id) else {
        return denied("Access denied");
    };
    if job.key.as_deref() != Some(key.as_str()) {
        return denied("Access denied");
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename={key}"),
            ),
        ],
        job.file.clone(),
    )
        .into_response()
}

impl StoredUser {
    /// The §5 export record (no password hashes; TOTP secrets included, like Authgear).
    pub(super) fn export_record(&self, project_id: &str, now: jiff::Timestamp) -> Value {
        let mut rec = Map::new();
        rec.insert("sub".to_owned(), json!(self.id));
        for kind in Kind::ALL {
            if let Some(v) = self.login_value(kind) {
                rec.insert(kind.field().to_owned(), json!(v));
            }
        }
        rec.insert(
            "email_verified".to_owned(),
            json!(self.is_verified("email", Kind::Email)),
        );
        rec.insert(
            "phone_number_verified".to_owned(),
            json!(self.is_verified("phone_number", Kind::Phone)),
        );
        for key in STD_ATTRS {
            if key == "address" {
                continue;
            }
            if let Some(v) = self.standard.get(key) {
                rec.insert(key.to_owned(), v.clone());
            }
        }
        let address = self
            .standard
            .get("address")
            .cloned()
            .unwrap_or_else(|| json!({}));
        rec.insert("address".to_owned(), address);
        if !self.custom.is_empty() {
            rec.insert("custom_attributes".to_owned(), json!(self.custom));
        }
        if !self.roles.is_empty() {
            rec.insert("roles".to_owned(), json!(self.roles));
        }
        if !self.groups.is_empty() {
            rec.insert("groups".to_owned(), json!(self.groups));
        }
        rec.insert(
            "created_at".to_owned(),
            super::api::rfc3339(self.created_at),
        );
        rec.insert("disabled".to_owned(), json!(self.is_disabled(now)));
        if let Some(t) = self.last_login_at {
            rec.insert("last_login_at".to_owned(), super::api::rfc3339(t));
        }
        rec.insert("is_anonymized".to_owned(), json!(false));
        if let Some(v) = &self.account_valid_from {
            rec.insert("account_valid_from".to_owned(), json!(v));
        }
        if let Some(v) = &self.account_valid_until {
            rec.insert("account_valid_until".to_owned(), json!(v));
        }
        let identities: Vec<Value> = self
            .login_ids
            .iter()
            .map(|l| {
                json!({
                    "type": "login_id",
                    "login_id": {
                        "key": l.kind.key(),
                        "type": l.kind.key(),
                        "value": l.value,
                        "original_value": l.original,
                    },
                    "claims": { l.kind.field(): l.value },
                })
            })
            .collect();
        // `identities`, `roles`, `groups` and the `mfa` arrays are omitempty slices.
        if !identities.is_empty() {
            rec.insert("identities".to_owned(), json!(identities));
        }
        let label = self
            .login_ids
            .first()
            .map(|l| l.value.clone())
            .unwrap_or_else(|| self.id.clone());
        let totps: Vec<Value> = self
            .totp_secrets
            .iter()
            .map(|secret| {
                json!({
                    "secret": secret,
                    "uri": format!(
                        "otpauth://totp/{project_id}:{label}?algorithm=SHA1&digits=6&issuer={project_id}&period=30&secret={secret}"
                    ),
                })
            })
            .collect();
        let mut mfa = Map::new();
        if !self.mfa_emails.is_empty() {
            mfa.insert("emails".to_owned(), json!(self.mfa_emails));
        }
        if !self.mfa_phone_numbers.is_empty() {
            mfa.insert("phone_numbers".to_owned(), json!(self.mfa_phone_numbers));
        }
        if !totps.is_empty() {
            mfa.insert("totps".to_owned(), json!(totps));
        }
        rec.insert("mfa".to_owned(), Value::Object(mfa));
        rec.insert("biometric_count".to_owned(), json!(0));
        rec.insert("passkey_count".to_owned(), json!(0));
        Value::Object(rec)
    }
}
