//! User export from Auth0: `POST /api/v2/jobs/users-exports` (format `json`), poll
//! `GET /api/v2/jobs/{id}` to the end, then download the job's `location` (a presigned
//! gzip NDJSON file, valid 60 s) and stream the decompressed lines to a writer.
//!
//! The presigned download goes through a separate plain HTTP client: it never carries
//! the Management API token, and its URL (whose query holds a signature) is never
//! logged or put in an error. An expired or refused link (403/404/410) is replaced by
//! a fresh one from `GET /jobs/{id}`, a bounded number of times.
//!
//! The API calls go through [`authmigrate_core::retry`]. The download cannot (that
//! module buffers whole bodies): it is streamed in bounded memory, with the same
//! policy's attempt count and backoff, and a download cut short resumes from a fresh
//! link while skipping the bytes already written.

pub use authmigrate_core::download::MIN_DOWNLOAD_ATTEMPTS;
use authmigrate_core::download::{DownloadLabel, LineSink, download, download_client};
use std::io::Write;
use std::time::Duration;

use authmigrate_core::backend::BackendError;
use authmigrate_core::retry::HttpReply;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{Auth0Client, api_message};
use crate::config::Auth0Settings;

/// Fields requested from the export, each as a whole value.
///
/// The docs do not say which fields an export without `fields` carries ("default
/// fields" means the normalized profile, which may leave out the metadata), so the
/// export asks for everything [`crate::format::from_export_user`] reads, with
/// `user_metadata`, `app_metadata` and `identities` as whole objects (allowed for the
/// JSON format only).
pub const DEFAULT_FIELDS: &[&str] = &[
    "user_id",
    "email",
    "email_verified",
    "username",
    "phone_number",
    "phone_verified",
    "name",
    "nickname",
    "given_name",
    "family_name",
    "picture",
    "blocked",
    "user_metadata",
    "app_metadata",
    "identities",
    "created_at",
    "updated_at",
    "last_login",
    "logins_count",
];

/// Longest field name Auth0 accepts in `fields[].name`.
pub const MAX_FIELD_NAME_LEN: usize = 100;
/// First wait between two polls of the export job.
pub const FIRST_POLL_DELAY: Duration = Duration::from_millis(250);
/// Longest wait between two polls of the export job.
pub const MAX_POLL_DELAY: Duration = Duration::from_secs(5);

/// How long an export job may run before the export gives up (`--export-timeout`).
/// Auth0 runs one export job at a time per tenant and times jobs out itself after 2 h
/// ("User import jobs time out after two (2) hours"; exports are queued the same way):
/// waiting longer than that cannot help.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// How often the wait for an export job is reported (`tracing` info).
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Scopes the export needs, for hints.
pub const EXPORT_SCOPES: &str = "read:users, read:connections";

/// What to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// A connection NAME; `None` exports the users of all connections.
    pub connection: Option<String>,
    /// Field names to export (each as a whole value); `None` means [`DEFAULT_FIELDS`].
    pub fields: Option<Vec<String>>,
}

pub use authmigrate_core::backend::ExportStats;

/// Runs a users-exports job (format json), polls it to the end, downloads
/// `location` at once (gzip NDJSON), and streams the DECOMPRESSED NDJSON lines into
/// `out` (each line ends with '\n'). Returns counts.
pub async fn export_users(
    settings: &Auth0Settings,
    options: &ExportOptions,
    out: &mut (dyn Write + Send),
) -> Result<ExportStats, BackendError> {
    export_users_within(settings, options, DEFAULT_EXPORT_TIMEOUT, out).await
}

/// [`export_users`] with an overall deadline for the export job (`--export-timeout`):
/// a job still running after `timeout` ends the export with an error naming the job.
pub async fn export_users_within(
    settings: &Auth0Settings,
    options: &ExportOptions,
    timeout: Duration,
    out: &mut (dyn Write + Send),
) -> Result<ExportStats, BackendError> {
    let client = Auth0Client::new(settings)?;
    let body = request_body(&client, options).await?;
    let job = create_job(&client, &body).await?;
    tracing::info!(job = %job, "auth0 users export job created");
    let location = wait_for_location(&client, &job, timeout).await?;
    let http = download_client()?;
    let mut sink = LineSink::new(out);
    let what = format!("the users export of job {job}");
    let label = DownloadLabel {
        what: &what,
        valid_for: "60 seconds",
    };
    download(&http, client.policy(), label, location, &mut sink, |last| {
        let (client, job) = (&client, job.as_str());
        async move {
            fresh_location(client, job).await.map_err(|e| match e {
                BackendError::Fatal { message, hint } => BackendError::Fatal {
                    message: format!("{message} (after a failed download: {last})"),
                    hint,
                },
                other => other,
            })
        }
    })
    .await?;
    sink.finish()
        .map_err(|e| BackendError::fatal(format!("cannot write the exported users: {e}"), None))?;
    tracing::info!(job = %job, users = sink.lines, bytes = sink.emitted, "auth0 users export written");
    Ok(ExportStats {
        users: sink.lines,
        bytes: sink.emitted,
        job,
    })
}

/// The `users-exports` request body for the options (resolves the connection name).
async fn request_body(
    client: &Auth0Client,
    options: &ExportOptions,
) -> Result<Value, BackendError> {
    let names: Vec<&str> = match &options.fields {
        Some(f) => f.iter().map(String::as_str).collect(),
        None => DEFAULT_FIELDS.to_vec(),
    };
    if names.is_empty() {
        return Err(BackendError::fatal(
            "the export field list is empty",
            Some(
                "name at least one field, or leave the list out for the default fields".to_owned(),
            ),
        ));
    }
    for (i, name) in names.iter().enumerate() {
        let n = name.trim();
        if n.is_empty() || n.len() > MAX_FIELD_NAME_LEN {
            return Err(BackendError::fatal(
                format!(
                    "export field {i} (`{name}`): a field name must be 1 to {MAX_FIELD_NAME_LEN} characters"
                ),
                None,
            ));
        }
    }
    let fields: Vec<Value> = names.iter().map(|n| json!({ "name": n.trim() })).collect();
    let mut body = json!({ "format": "json", "fields": fields });
    if let Some(name) = &options.connection {
        let id = connection_id(client, name).await?;
        body["connection_id"] = Value::String(id);
    }
    Ok(body)
}

/// Resolves a connection NAME (any strategy: an export may read social users too) to
/// its id.
async fn connection_id(client: &Auth0Client, name: &str) -> Result<String, BackendError> {
    let what = "look up the connection to export";
    let mut url = client.api_url(&["connections"]);
    url.query_pairs_mut().append_pair("name", name);
    let reply = client.get(what, &url).await?;
    let list = match reply.status.as_u16() {
        200 => connections(&reply).map_err(|e| {
            BackendError::fatal(format!("invalid connections list from auth0: {e}"), None)
        })?,
        401 | 403 => return Err(export_auth_error(what, &reply)),
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
    if let Some(c) = list
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        && let Some(id) = c.get("id").and_then(Value::as_str)
    {
        return Ok(id.to_owned());
    }
    let names = connection_names(client).await;
    let hint = if names.is_empty() {
        "pass the name of one of the tenant's connections (Dashboard > Authentication), or leave --connection out to export every connection".to_owned()
    } else {
        format!(
            "pass one of the tenant's connections: {}; or leave --connection out to export every connection",
            names.join(", ")
        )
    };
    Err(BackendError::fatal(
        format!("connection `{name}` not found"),
        Some(hint),
    ))
}

/// The connections of a `GET /connections` answer (bare array or wrapped).
fn connections(reply: &HttpReply) -> Result<Vec<Value>, serde_json::Error> {
    Ok(match reply.json::<Value>()? {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("connections") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    })
}

/// Names of the tenant's connections (first 1000), best effort: for a hint only.
async fn connection_names(client: &Auth0Client) -> Vec<String> {
    let mut names = Vec::new();
    for page in 0..10u32 {
        let mut url = client.api_url(&["connections"]);
        url.query_pairs_mut()
            .append_pair("per_page", "100")
            .append_pair("page", &page.to_string());
        let Ok(reply) = client.get("list connections", &url).await else {
            break;
        };
        if !reply.status.is_success() {
            break;
        }
        let list = connections(&reply).unwrap_or_default();
        names.extend(
            list.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_owned),
        );
        if list.len() < 100 {
            break;
        }
    }
    names
}

/// `POST /api/v2/jobs/users-exports`; returns the job id.
async fn create_job(client: &Auth0Client, body: &Value) -> Result<String, BackendError> {
    let what = "create the users export job";
    let url = client.api_url(&["jobs", "users-exports"]);
    let reply = client
        .send(what, |http| http.post(url.clone()).json(body))
        .await?;
    match reply.status.as_u16() {
        200..=299 => {
            let v: Value = reply.json().map_err(|e| {
                BackendError::fatal(format!("invalid export job answer from auth0: {e}"), None)
            })?;
            v.get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    BackendError::fatal("auth0 created the export job without an `id`", None)
                })
        }
        401 | 403 => Err(export_auth_error(what, &reply)),
        code => Err(BackendError::fatal(
            format!("{what}: auth0 answered HTTP {code}: {}", api_message(&reply)),
            (code == 400).then(|| {
                "check the connection and the field names (JSON exports take whole objects such as `app_metadata`)".to_owned()
            }),
        )),
    }
}

/// A completed job's state, or why it is not usable.
enum Poll {
    Running(Option<u64>),
    Completed(Option<String>),
}

/// One `GET /jobs/{id}`.
async fn read_job(client: &Auth0Client, job: &str) -> Result<Poll, BackendError> {
    let what = "read the users export job";
    let url = client.api_url(&["jobs", job]);
    let reply = client.get(what, &url).await?;
    let v: Value = match reply.status.as_u16() {
        200 => reply.json().map_err(|e| {
            BackendError::Transient(format!("job {job}: invalid job status from auth0: {e}"))
        })?,
        404 => {
            return Err(BackendError::fatal(
                format!("users export job {job} not found: {}", api_message(&reply)),
                Some("export results are kept 24 hours; run the export again".to_owned()),
            ));
        }
        401 | 403 => return Err(export_auth_error(what, &reply)),
        code => {
            return Err(BackendError::Transient(format!(
                "job {job}: auth0 answered HTTP {code}: {}",
                api_message(&reply)
            )));
        }
    };
    let status = v.get("status").and_then(Value::as_str).unwrap_or_default();
    match status {
        "completed" => Ok(Poll::Completed(
            v.get("location")
                .and_then(Value::as_str)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        )),
        "failed" | "expired" => {
            let details = v
                .get("status_details")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("auth0 gave no details");
            Err(BackendError::fatal(
                format!("users export job {job} {status}: {details}"),
                Some(
                    "run the export again; if it keeps failing, check the tenant's logs".to_owned(),
                ),
            ))
        }
        _ => Ok(Poll::Running(
            v.get("percentage_done").and_then(Value::as_u64),
        )),
    }
}

/// Polls the job (250 ms, ×1.5, at most 5 s apart) until it completes or `timeout`
/// has passed; returns its download link. Says every [`PROGRESS_EVERY`] what it waits
/// for, for how long, and the percent Auth0 gives.
async fn wait_for_location(
    client: &Auth0Client,
    job: &str,
    timeout: Duration,
) -> Result<String, BackendError> {
    let start = tokio::time::Instant::now();
    let mut delay = FIRST_POLL_DELAY;
    let mut reported = Duration::ZERO;
    loop {
        let percent = match read_job(client, job).await? {
            Poll::Completed(location) => {
                return location.ok_or_else(|| {
                    BackendError::fatal(
                        format!("users export job {job} completed without a download location"),
                        None,
                    )
                });
            }
            Poll::Running(percent) => percent,
        };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(export_timeout(job, timeout, percent));
        }
        if waited >= reported + PROGRESS_EVERY {
            reported = waited;
            tracing::info!(
                target: "progress",
                job,
                waited_s = waited.as_secs(),
                percent = percent.map_or_else(|| "unknown".to_owned(), |p| format!("{p}%")),
                "waiting for the auth0 users export job"
            );
        }
        tokio::time::sleep(delay.min(timeout - waited)).await;
        delay = delay.mul_f64(1.5).min(MAX_POLL_DELAY);
    }
}

/// `2h`, `90m`, `45s`: a duration as `--export-timeout` takes it.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s > 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else if s > 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The error when an export job did not finish within `--export-timeout`.
pub(crate) fn export_timeout(job: &str, timeout: Duration, percent: Option<u64>) -> BackendError {
    let done = percent.map_or_else(String::new, |p| format!(" ({p}% done)"));
    BackendError::fatal(
        format!(
            "users export job {job} did not finish within the export timeout of {}{done}",
            human(timeout)
        ),
        Some(format!(
            "the job may still finish at auth0 (job data is kept 24 h): run the export again with a longer --export-timeout (e.g. --export-timeout 4h); GET /api/v2/jobs/{job} shows its state"
        )),
    )
}

/// A fresh download link for a completed job.
async fn fresh_location(client: &Auth0Client, job: &str) -> Result<String, BackendError> {
    match read_job(client, job).await? {
        Poll::Completed(Some(l)) => Ok(l),
        _ => Err(BackendError::fatal(
            format!("users export job {job} gave no fresh download location"),
            None,
        )),
    }
}

/// The fatal error for a 401/403 while exporting.
fn export_auth_error(what: &str, reply: &HttpReply) -> BackendError {
    let hint = if reply.status == StatusCode::FORBIDDEN {
        format!(
            "the token lacks a scope: grant the application {EXPORT_SCOPES} on the Management API"
        )
    } else {
        format!(
            "the token is invalid or expired: check AUTH0_TOKEN (or AUTH0_CLIENT_ID/AUTH0_CLIENT_SECRET) and that it was issued for this tenant with the scopes {EXPORT_SCOPES}"
        )
    };
    BackendError::fatal(
        format!(
            "{what}: auth0 answered HTTP {}: {}",
            reply.status.as_u16(),
            api_message(reply)
        ),
        Some(hint),
    )
}
