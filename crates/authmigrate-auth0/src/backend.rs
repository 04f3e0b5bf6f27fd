//! [`Auth0Backend`]: the [`ImportBackend`] for Auth0 bulk user imports
//! (`POST /api/v2/jobs/users-imports`, `GET /api/v2/jobs/{id}`, `GET /api/v2/jobs/{id}/errors`).
//!
//! The driver in `authmigrate_core::driver` does the chunking, pipelining,
//! back-pressure and resuming; this module speaks Auth0's wire protocol only.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use authmigrate_core::backend::{
    BackendError, Batch, Encoded, ImportBackend, JobId, JobState, Limits, Outcome, RecordFailure,
    RecordOutcome, Submit,
};
use authmigrate_core::delete::{Key, UserDirectory};
use authmigrate_core::record::{HashAlgorithm, UserRecord};
use authmigrate_core::retry::{self, HttpReply, Verdict};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::client::{Auth0Client, api_message, auth_error};
use crate::config::Auth0Settings;
use crate::format;
pub use crate::job_errors::DUPLICATED_USER;
use crate::job_errors::{Summary, outcomes};
use crate::users::Auth0Users;

/// Auth0's hard limit on an import request's content, in bytes.
pub const MAX_UPLOAD_BYTES: usize = 512_000;
/// Import jobs Auth0 runs at once per tenant.
pub const MAX_JOBS_IN_FLIGHT: usize = 2;
/// Length of the multipart boundary (fixed, so the body size is exact).
pub const BOUNDARY_LEN: usize = 40;
/// Length of a connection id: `con_` + 16 alphanumerics (`^con_[A-Za-z0-9]{16}$`).
pub const CONNECTION_ID_LEN: usize = 20;
/// The substring of Auth0's 429 that means "too many import jobs", not a rate limit.
pub const BUSY_MARKER: &str = "active import users jobs";
/// The reason given when a polled job no longer exists.
pub const JOB_NOT_FOUND: &str = "job not found (expired?)";

/// The Auth0 bulk-import backend. Build it with [`Auth0Backend::new`].
pub struct Auth0Backend {
    settings: Auth0Settings,
    client: Arc<Auth0Client>,
    connection_id: OnceCell<String>,
}

impl fmt::Debug for Auth0Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth0Backend")
            .field("settings", &self.settings)
            .field("connection_id", &self.connection_id.get())
            .finish_non_exhaustive()
    }
}

/// One `users-imports` request body, exactly as sent.
#[derive(Clone)]
pub struct ImportBody {
    /// `multipart/form-data; boundary=…`.
    pub content_type: String,
    /// The whole body.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for ImportBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body holds password hashes: size only.
        f.debug_struct("ImportBody")
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Auth0Backend {
    /// Checks the settings (base URL, `http://` only for loopback) and builds the
    /// backend. Sends nothing.
    pub fn new(settings: Auth0Settings) -> Result<Self, BackendError> {
        let client = Arc::new(Auth0Client::new(&settings)?);
        Ok(Self {
            settings,
            client,
            connection_id: OnceCell::new(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Auth0Settings {
        &self.settings
    }

    /// The HTTP client (shared with [`crate::create`]).
    pub fn client(&self) -> &Arc<Auth0Client> {
        &self.client
    }

    /// The resolved `con_…` id, once [`ImportBackend::prepare`] ran.
    pub fn connection_id(&self) -> Option<&str> {
        self.connection_id.get().map(String::as_str)
    }

    /// Bytes a request adds around a records array (exact: the boundary and the
    /// connection id have fixed lengths, the other fields come from the settings).
    pub fn multipart_overhead(&self) -> usize {
        let boundary = "b".repeat(BOUNDARY_LEN);
        let con = "c".repeat(CONNECTION_ID_LEN);
        self.build_body_with(&[], &con, &boundary).bytes.len()
    }

    /// The exact `users-imports` body for a records array and a connection id.
    pub fn import_body(&self, array: &[u8], connection_id: &str) -> ImportBody {
        let boundary = loop {
            let b = random_boundary();
            if !contains(array, b.as_bytes()) {
                break b;
            }
        };
        self.build_body_with(array, connection_id, &boundary)
    }

    fn build_body_with(&self, array: &[u8], connection_id: &str, boundary: &str) -> ImportBody {
        let mut out = Vec::with_capacity(array.len() + 1024);
        let mut part = |headers: &str, value: &[u8]| {
            out.extend_from_slice(b"--");
            out.extend_from_slice(boundary.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(headers.as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        };
        part(
            "Content-Disposition: form-data; name=\"users\"; filename=\"users.json\"\r\nContent-Type: application/json",
            array,
        );
        let field = |name: &str| format!("Content-Disposition: form-data; name=\"{name}\"");
        part(&field("connection_id"), connection_id.as_bytes());
        part(&field("upsert"), bool_str(self.settings.upsert).as_bytes());
        part(
            &field("send_completion_email"),
            bool_str(self.settings.send_completion_email).as_bytes(),
        );
        if let Some(id) = &self.settings.external_id {
            part(&field("external_id"), id.as_bytes());
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"--\r\n");
        ImportBody {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            bytes: out,
        }
    }

    async fn resolved_connection(&self) -> Result<&str, BackendError> {
        self.connection_id
            .get_or_try_init(|| resolve_connection(&self.client, &self.settings.connection))
            .await
            .map(String::as_str)
    }

    async fn job_errors(&self, job: &JobId) -> Result<Option<Vec<Value>>, BackendError> {
        let url = self.client.api_url(&["jobs", &job.0, "errors"]);
        let reply = self.client.get("read import job errors", &url).await?;
        match reply.status.as_u16() {
            204 => Ok(Some(Vec::new())),
            200 if reply.body.iter().all(u8::is_ascii_whitespace) => Ok(Some(Vec::new())),
            200 => match reply.json::<Value>() {
                Ok(Value::Array(a)) => Ok(Some(a)),
                // The documented alternative answer: the job object itself.
                Ok(_) => Ok(Some(Vec::new())),
                Err(e) => Err(BackendError::Transient(format!(
                    "job {job}: invalid errors list from auth0: {e}"
                ))),
            },
            404 => Ok(None),
            401 | 403 => Err(auth_error("read import job errors", &reply)),
            code => Err(BackendError::Transient(format!(
                "job {job}: reading its errors answered HTTP {code}: {}",
                api_message(&reply)
            ))),
        }
    }
}

fn key_name(key: &Key) -> &'static str {
    match key {
        Key::Email(_) => "e-mail",
        Key::Username(_) => "username",
        Key::Id(_) => "user_id",
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn random_boundary() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..BOUNDARY_LEN - 12)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("authmigrate-{tail}")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `s` matches `^con_[A-Za-z0-9]{16}$`.
pub fn is_connection_id(s: &str) -> bool {
    s.len() == CONNECTION_ID_LEN
        && s.strip_prefix("con_")
            .is_some_and(|r| r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The connections of an answer of `GET /connections` (bare array or wrapped).
fn connections_of(v: Value) -> Vec<Map<String, Value>> {
    let list = match v {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("connections") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    list.into_iter()
        .filter_map(|c| match c {
            Value::Object(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn str_of<'a>(o: &'a Map<String, Value>, key: &str) -> &'a str {
    o.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A connection found by name.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionInfo {
    pub(crate) id: String,
    pub(crate) requires_username: bool,
    /// `options.password_complexity_options.min_length`, if set.
    pub(crate) password_min_length: Option<usize>,
    /// `options.validation.username {min, max}`, if set (flexible identifiers).
    pub(crate) username_length: Option<(usize, usize)>,
}

/// Resolves a database connection's NAME to its id and checks it is usable: strategy
/// `auth0` and at least one enabled application.
pub(crate) async fn find_connection(
    client: &Auth0Client,
    name: &str,
) -> Result<ConnectionInfo, BackendError> {
    let what = "look up the connection";
    let mut url = client.api_url(&["connections"]);
    url.query_pairs_mut().append_pair("name", name);
    let reply = client.get(what, &url).await?;
    let found = match reply.status.as_u16() {
        200 => connections_of(reply.json::<Value>().map_err(|e| {
            BackendError::fatal(format!("invalid connections list from auth0: {e}"), None)
        })?),
        401 | 403 => return Err(auth_error(what, &reply)),
        code => {
            return Err(BackendError::fatal(
                format!(
                    "{what} `{name}`: auth0 answered HTTP {code}: {}",
                    api_message(&reply)
                ),
                None,
            ));
        }
    };
    let Some(conn) = found.into_iter().find(|c| str_of(c, "name") == name) else {
        let names = database_connections(client).await?;
        return Err(BackendError::fatal(
            format!("connection `{name}` not found"),
            Some(list_hint(&names)),
        ));
    };
    let strategy = str_of(&conn, "strategy");
    if strategy != "auth0" {
        let names = database_connections(client).await?;
        return Err(BackendError::fatal(
            format!(
                "connection `{name}` is not a database connection (strategy `{strategy}`); bulk import needs strategy `auth0`"
            ),
            Some(list_hint(&names)),
        ));
    }
    let id = str_of(&conn, "id").to_owned();
    if !is_connection_id(&id) {
        return Err(BackendError::fatal(
            format!(
                "connection `{name}` has id `{id}`, which does not match ^con_[A-Za-z0-9]{{16}}$"
            ),
            None,
        ));
    }
    let mut url = client.api_url(&["connections", &id, "clients"]);
    url.query_pairs_mut().append_pair("take", "1");
    let what = "read the connection's enabled applications";
    let reply = client.get(what, &url).await?;
    let enabled = match reply.status.as_u16() {
        200 => reply
            .json::<Value>()
            .ok()
            .and_then(|v| v.get("clients").and_then(Value::as_array).map(Vec::len))
            .unwrap_or(0),
        401 | 403 => return Err(auth_error(what, &reply)),
        code => {
            return Err(BackendError::fatal(
                format!(
                    "{what} of `{name}`: auth0 answered HTTP {code}: {}",
                    api_message(&reply)
                ),
                None,
            ));
        }
    };
    if enabled == 0 {
        return Err(BackendError::fatal(
            format!(
                "failed to continue due to the connection with name `{name}` being disabled: no application is enabled on it"
            ),
            Some(format!(
                "enable an application on this connection (Dashboard > Authentication > Database > {name} > Applications, or PATCH /api/v2/connections/{id}/clients) and try again"
            )),
        ));
    }
    let requires_username = conn
        .get("options")
        .and_then(|o| o.get("requires_username"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let options = conn.get("options");
    let password_min_length = options
        .and_then(|o| o.pointer("/password_complexity_options/min_length"))
        .and_then(Value::as_u64)
        .map(|n| n as usize);
    let username_length = options
        .and_then(|o| o.pointer("/validation/username"))
        .and_then(|v| {
            Some((
                v.get("min")?.as_u64()? as usize,
                v.get("max")?.as_u64()? as usize,
            ))
        });
    Ok(ConnectionInfo {
        id,
        requires_username,
        password_min_length,
        username_length,
    })
}

async fn resolve_connection(client: &Auth0Client, name: &str) -> Result<String, BackendError> {
    find_connection(client, name).await.map(|c| c.id)
}

fn list_hint(names: &[String]) -> String {
    if names.is_empty() {
        "this tenant has no database connection (strategy `auth0`): create one first".to_owned()
    } else {
        format!(
            "pass --connection with one of the tenant's database connections: {}",
            names.join(", ")
        )
    }
}

/// Names of the tenant's database connections (first 1000).
async fn database_connections(client: &Auth0Client) -> Result<Vec<String>, BackendError> {
    let mut names = Vec::new();
    for page in 0..10u32 {
        let mut url = client.api_url(&["connections"]);
        url.query_pairs_mut()
            .append_pair("strategy", "auth0")
            .append_pair("per_page", "100")
            .append_pair("page", &page.to_string());
        let reply = client.get("list database connections", &url).await?;
        if !reply.status.is_success() {
            break;
        }
        let list = connections_of(reply.json::<Value>().unwrap_or(Value::Null));
        let n = list.len();
        names.extend(
            list.iter()
                .filter(|c| str_of(c, "strategy") == "auth0")
                .map(|c| str_of(c, "name").to_owned()),
        );
        if n < 100 {
            break;
        }
    }
    Ok(names)
}

fn busy_classifier(reply: &HttpReply) -> Verdict {
    if is_busy(reply) {
        Verdict::Done
    } else {
        retry::default_verdict(reply)
    }
}

fn is_busy(reply: &HttpReply) -> bool {
    reply.status == StatusCode::TOO_MANY_REQUESTS && reply.text_lossy().contains(BUSY_MARKER)
}

#[async_trait]
impl ImportBackend for Auth0Backend {
    fn name(&self) -> &'static str {
        "auth0"
    }

    fn limits(&self) -> Limits {
        Limits {
            max_upload_bytes: MAX_UPLOAD_BYTES,
            max_array_bytes: MAX_UPLOAD_BYTES.saturating_sub(self.multipart_overhead()),
            max_jobs_in_flight: MAX_JOBS_IN_FLIGHT,
            max_records_per_job: None,
            accepted_hashes: HashAlgorithm::ALL.to_vec(),
        }
    }

    fn encode(&self, record: &UserRecord) -> Result<Encoded, RecordFailure> {
        format::to_bulk_user(record, &self.settings.map)?.encode()
    }

    async fn prepare(&self) -> Result<(), BackendError> {
        self.resolved_connection().await.map(|_| ())
    }

    async fn submit(&self, batch: &Batch) -> Result<Submit, BackendError> {
        let connection_id = self.resolved_connection().await?;
        let body = self.import_body(&batch.to_array(), connection_id);
        let size = body.bytes.len();
        let bytes = bytes::Bytes::from(body.bytes);
        let url = self.client.api_url(&["jobs", "users-imports"]);
        let what = "create an import job";
        // Not idempotent: a POST whose answer is lost may have created the job
        // (auth0-api.md §2 NEW: even a 500 "Internal error." may have), so it is never
        // sent again blindly; the driver resolves it as in doubt.
        let reply = self
            .client
            .send_submission(
                what,
                |http| {
                    http.post(url.clone())
                        .header(CONTENT_TYPE, body.content_type.as_str())
                        .body(bytes.clone())
                },
                busy_classifier,
            )
            .await?;
        let status = reply.status.as_u16();
        if reply.status.is_success() {
            let id = reply
                .json::<Value>()
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
                .ok_or_else(|| {
                    BackendError::fatal(
                        format!(
                            "auth0 accepted chunk {} but its answer has no job id",
                            batch.chunk
                        ),
                        None,
                    )
                })?;
            tracing::debug!(chunk = batch.chunk, job = %id, bytes = size, "import job created");
            return Ok(Submit::Accepted(JobId(id)));
        }
        if is_busy(&reply) {
            let now = SystemTime::now();
            let retry_after = retry::parse_retry_after(&reply.headers, now)
                .or_else(|| retry::parse_ratelimit_reset(&reply.headers, now))
                .filter(|d| !d.is_zero())
                .map(|d| d.min(retry::MAX_RESET_WAIT));
            return Ok(Submit::Busy { retry_after });
        }
        let message = api_message(&reply);
        Err(match status {
            413 => BackendError::fatal(
                format!(
                    "auth0 refused chunk {} ({size} bytes) as too large: {message}",
                    batch.chunk
                ),
                Some("this is a bug in authmigrate's chunking; please report it".to_owned()),
            ),
            400 => BackendError::fatal(
                format!(
                    "auth0 refused the import job for chunk {}: {message}",
                    batch.chunk
                ),
                Some(format!(
                    "check the connection `{}` (a database connection with an enabled application)",
                    self.settings.connection
                )),
            ),
            401 | 403 => auth_error(what, &reply),
            _ => BackendError::fatal(
                format!(
                    "auth0 answered HTTP {status} creating the import job for chunk {}: {message}",
                    batch.chunk
                ),
                None,
            ),
        })
    }

    async fn poll(&self, job: &JobId, batch: &Batch) -> Result<JobState, BackendError> {
        let url = self.client.api_url(&["jobs", &job.0]);
        let what = "read an import job";
        let reply = self.client.get(what, &url).await?;
        let v = match reply.status.as_u16() {
            200 => reply.json::<Value>().map_err(|e| {
                BackendError::Transient(format!("job {job}: invalid job status from auth0: {e}"))
            })?,
            // "Job not found.": job data is deleted 24 h after creation; whether it
            // ran is unknown.
            404 => {
                return Ok(JobState::Gone {
                    reason: format!(
                        "{JOB_NOT_FOUND}: auth0 answered 404 {}",
                        api_message(&reply)
                    ),
                });
            }
            401 | 403 => return Err(auth_error(what, &reply)),
            code => {
                return Err(BackendError::Transient(format!(
                    "job {job}: auth0 answered HTTP {code}: {}",
                    api_message(&reply)
                )));
            }
        };
        let status = v.get("status").and_then(Value::as_str).unwrap_or_default();
        match status {
            "completed" => {}
            // A job that ran and then failed (the 2 h timeout) or expired may have
            // inserted part of its users (auth0-api.md §2 NEW): in doubt, never failed
            // records. Its `/errors` would be the job object (oneOf b) or a 204, which
            // say nothing per user, so it is not read.
            "failed" | "expired" => {
                let details = v
                    .get("status_details")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty());
                let reason = match details {
                    Some(d) => format!("job {job} ended {status}: {d}"),
                    None => format!("job {job} ended {status}"),
                };
                return Ok(JobState::InDoubt { reason });
            }
            _ => {
                let percent = v
                    .get("percentage_done")
                    .and_then(Value::as_u64)
                    .map(|p| p.min(100) as u8);
                return Ok(JobState::Running { percent });
            }
        }
        let Some(errors) = self.job_errors(job).await? else {
            return Ok(JobState::Gone {
                reason: format!("{JOB_NOT_FOUND}: its errors list answered 404"),
            });
        };
        let summary = Summary::of(&v);
        Ok(JobState::Finished(outcomes(
            job,
            batch,
            &errors,
            summary,
            self.settings.upsert,
        )))
    }

    /// Looks each record of a batch in doubt up at Auth0, as `delete` does
    /// ([`crate::users`]): by e-mail (`users-by-email`, immediately consistent, only
    /// users of the configured connection), else by `user_id` (`GET /users/auth0|…`),
    /// else by username (user search, eventually consistent: a user just imported may
    /// not be found yet, and is then sent again and answered `DUPLICATED_USER`, which
    /// the driver counts as the earlier attempt's work). A record found is `skipped`
    /// with its user id. With `upsert`, found users must still be updated, so the whole
    /// batch is sent again (`Ok(None)`).
    async fn resolve(
        &self,
        batch: &Batch,
    ) -> Result<Option<Vec<Option<RecordOutcome>>>, BackendError> {
        if self.settings.upsert {
            return Ok(None);
        }
        let users = Auth0Users::with_client(self.client.clone(), self.settings.connection.clone());
        let mut out = Vec::with_capacity(batch.records.len());
        for record in &batch.records {
            let v: Value = serde_json::from_slice(&record.json).unwrap_or(Value::Null);
            let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            let key = if let Some(e) = text("email") {
                Key::Email(e)
            } else if let Some(id) = text("user_id") {
                Key::Id(format!("{}{id}", format::AUTH0_ID_PREFIX))
            } else if let Some(u) = text("username") {
                Key::Username(u)
            } else {
                out.push(None);
                continue;
            };
            let found = users.lookup(&key).await?;
            out.push(found.first().map(|u| {
                let mut o = RecordOutcome::success(Outcome::Skipped, Some(u.id.clone()));
                o.code = Some("FOUND_AFTER_IN_DOUBT".to_owned());
                o.message = Some(format!(
                    "the user with this {} was found at auth0 after an import in doubt; not sent again",
                    key_name(&key)
                ));
                o
            }));
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids() {
        assert!(is_connection_id("con_ABCDEFGHijklmn12"));
        assert!(!is_connection_id("con_ABCDEFGHijklmn1"));
        assert!(!is_connection_id("con_ABCDEFGHijklmn1-"));
        assert!(!is_connection_id("Username-Password"));
    }
}
