//! User export from Authgear: `POST /_api/admin/users/export` (`{"format":"ndjson"}`),
//! poll `GET /_api/admin/users/export/{id}` until `completed`, then download the
//! presigned `download_url` (valid 1 minute) and stream its NDJSON lines to a writer.
//! Exports hold every user of the project and never any password hash.
//!
//! The presigned download goes through a separate plain HTTP client: it never carries
//! the admin token, and its URL (whose query holds a token) is never logged or put in
//! an error. An expired or refused link (403/404/410) is replaced by a fresh one (each
//! `GET` of the task presigns a new URL), a bounded number of times.
//!
//! The API calls go through [`authmigrate_core::retry`]. The download cannot (that
//! module buffers whole bodies): it is streamed in bounded memory with the same
//! policy's attempt count and backoff, and a download cut short resumes from a fresh
//! URL while skipping the bytes already written.

pub use authmigrate_core::download::MIN_DOWNLOAD_ATTEMPTS;
use authmigrate_core::download::{DownloadLabel, LineSink, download, download_client};
use std::io::Write;
use std::time::Duration;

use authmigrate_core::backend::BackendError;
use authmigrate_core::retry::{self, HttpReply, RetryError, RetryPolicy, Verdict};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use secrecy::ExposeSecret;
use serde_json::Value;
use url::Url;

use crate::auth::TokenSource;
use crate::backend::FORBIDDEN_HINT;
use crate::client::{ApiError, is_usage_limit};
use crate::config::{AuthgearSettings, parse_endpoint};

/// First wait between two polls of the export task.
pub const FIRST_POLL_DELAY: Duration = Duration::from_millis(250);
/// Longest wait between two polls of the export task.
pub const MAX_POLL_DELAY: Duration = Duration::from_secs(5);
/// How long an export task may stay pending before the export gives up
/// (`--export-timeout`). Authgear's tasks run one at a time per server process, in FIFO
/// order across all projects (authgear-api.md §1), so a busy deployment can queue an
/// export for a while; its result is kept 24 h. Two hours bounds a wait that would
/// otherwise never end, with room for a large project behind a queue.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// How often the wait for an export task is reported (`tracing` info).
const PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// The export request body.
pub const EXPORT_REQUEST: &[u8] = br#"{"format":"ndjson"}"#;

pub use authmigrate_core::backend::ExportStats;

/// The Admin API side of an export.
struct Api {
    http: reqwest::Client,
    base: Url,
    tokens: TokenSource,
    policy: RetryPolicy,
}

impl Api {
    fn new(settings: &AuthgearSettings) -> Result<Self, BackendError> {
        let base = parse_endpoint(&settings.endpoint).map_err(|e| BackendError::fatal(e, None))?;
        let tokens = TokenSource::new(&settings.auth).map_err(|e| BackendError::fatal(e, None))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("authmigrate/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BackendError::fatal(format!("cannot build the http client: {e}"), None))?;
        Ok(Self {
            http,
            base,
            tokens,
            policy: settings.retry.clone(),
        })
    }

    /// `/_api/admin/users/export[/{id}]`.
    fn url(&self, id: Option<&str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty()
                .extend(["_api", "admin", "users", "export"]);
            if let Some(id) = id {
                segs.push(id);
            }
        }
        url
    }

    /// Sends an authenticated request through the retry policy.
    async fn send(
        &self,
        what: &str,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<HttpReply, BackendError> {
        let mut token_error = None;
        let reply = retry::send_with(
            &self.policy,
            what,
            || {
                let req = make(&self.http);
                match self.tokens.bearer() {
                    Ok(t) => req.header(AUTHORIZATION, format!("Bearer {}", t.expose_secret())),
                    Err(e) => {
                        token_error = Some(e);
                        req
                    }
                }
            },
            classify,
        )
        .await;
        if let Some(e) = token_error {
            return Err(BackendError::fatal(e, None));
        }
        reply.map_err(|e| match e {
            RetryError::Exhausted { .. } => BackendError::Transient(e.to_string()),
            other => BackendError::fatal(other.to_string(), None),
        })
    }

    fn refused(&self, what: &str, reply: &HttpReply) -> BackendError {
        let hint = if self.tokens.is_key() {
            FORBIDDEN_HINT
        } else {
            "the admin token (AUTHGEAR_ADMIN_TOKEN) was refused: it may have expired (portal tokens last 5 minutes) or belong to another project; or use the admin key (AUTHGEAR_KEY_ID, AUTHGEAR_PRIVATE_KEY_FILE) instead"
        };
        BackendError::fatal(
            format!(
                "{what}: authgear refused the admin token (HTTP {})",
                reply.status.as_u16()
            ),
            Some(hint.to_owned()),
        )
    }
}

/// The default verdict, except that refusals no retry can fix are returned at once:
/// the usage limit (429 `UsageLimitExceeded`) and a deployment without export (500
/// `UserExportDisabled`).
fn classify(reply: &HttpReply) -> Verdict {
    if is_usage_limit(reply) || is_export_disabled(reply) {
        Verdict::Done
    } else {
        retry::default_verdict(reply)
    }
}

fn is_export_disabled(reply: &HttpReply) -> bool {
    reply.status.is_server_error()
        && ApiError::from_reply(reply).is_some_and(|e| e.reason == "UserExportDisabled")
}

/// Status and the API error, if any (never a body that is not an API error).
fn reply_error(reply: &HttpReply) -> String {
    match ApiError::from_reply(reply) {
        Some(e) => format!(
            "authgear answered HTTP {}: {}",
            reply.status.as_u16(),
            e.describe()
        ),
        None => format!(
            "authgear answered HTTP {} ({} bytes, not an authgear API error; is the endpoint the project's URL?)",
            reply.status.as_u16(),
            reply.body.len()
        ),
    }
}

/// The `result` of a `{"result": ...}` answer.
fn result_of(reply: &HttpReply, what: &str) -> Result<Value, BackendError> {
    let v: Value = reply.json().map_err(|e| {
        BackendError::fatal(format!("{what}: invalid answer from authgear: {e}"), None)
    })?;
    match v {
        Value::Object(mut o) => o.remove("result").ok_or_else(|| {
            BackendError::fatal(format!("{what}: authgear's answer has no `result`"), None)
        }),
        _ => Err(BackendError::fatal(
            format!("{what}: authgear's answer is not a JSON object"),
            None,
        )),
    }
}

/// Runs a user export task (NDJSON), polls it until `completed`, downloads the
/// `download_url` at once without the admin token, and streams the NDJSON lines into
/// `out` (each line ends with '\n'). Returns counts.
pub async fn export_users(
    settings: &AuthgearSettings,
    out: &mut (dyn Write + Send),
) -> Result<ExportStats, BackendError> {
    export_users_within(settings, DEFAULT_EXPORT_TIMEOUT, out).await
}

/// [`export_users`] with an overall deadline for the export task (`--export-timeout`):
/// a task still pending after `timeout` ends the export with an error naming it.
pub async fn export_users_within(
    settings: &AuthgearSettings,
    timeout: Duration,
    out: &mut (dyn Write + Send),
) -> Result<ExportStats, BackendError> {
    let api = Api::new(settings)?;
    let job = create_task(&api).await?;
    tracing::info!(job = %job, "authgear users export task created");
    let first = wait_for_url(&api, &job, timeout).await?;
    let http = download_client()?;
    let mut sink = LineSink::new(out);
    let what = format!("the users export {job}");
    let label = DownloadLabel {
        what: &what,
        valid_for: "1 minute",
    };
    download(&http, &api.policy, label, first, &mut sink, |last| {
        let (api, job) = (&api, job.as_str());
        async move {
            match read_task(api, job).await? {
                Poll::Ready(url) => Ok(url),
                Poll::Pending => Err(BackendError::fatal(
                    format!("users export task {job} gave no fresh download URL (after a failed download: {last})"),
                    None,
                )),
            }
        }
    })
    .await?;
    sink.finish()
        .map_err(|e| BackendError::fatal(format!("cannot write the exported users: {e}"), None))?;
    tracing::info!(job = %job, users = sink.lines, bytes = sink.emitted, "authgear users export written");
    Ok(ExportStats {
        users: sink.lines,
        bytes: sink.emitted,
        job,
    })
}

/// `POST /_api/admin/users/export`; returns the task id.
async fn create_task(api: &Api) -> Result<String, BackendError> {
    let what = "create the authgear users export";
    let url = api.url(None);
    let reply = api
        .send(what, |http| {
            http.post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(EXPORT_REQUEST)
        })
        .await?;
    match reply.status.as_u16() {
        200..=299 => {
            let result = result_of(&reply, what)?;
            result
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    BackendError::fatal(format!("{what}: authgear's answer has no `result.id`"), None)
                })
        }
        401 | 403 => Err(api.refused(what, &reply)),
        429 if is_usage_limit(&reply) => Err(BackendError::fatal(
            format!("{what}: {}", reply_error(&reply)),
            Some("the project's user export quota is used up; wait for the period to end or raise the plan's limit".to_owned()),
        )),
        _ if is_export_disabled(&reply) => Err(BackendError::fatal(
            format!("{what}: {}", reply_error(&reply)),
            Some("user export is not enabled on this deployment (self-hosted: set USEREXPORT_OBJECT_STORE_TYPE and its bucket)".to_owned()),
        )),
        _ => Err(BackendError::fatal(
            format!("{what}: {}", reply_error(&reply)),
            None,
        )),
    }
}

/// The state of the task.
enum Poll {
    Pending,
    /// Completed with this (fresh) download URL.
    Ready(String),
}

/// One `GET /_api/admin/users/export/{id}`.
async fn read_task(api: &Api, job: &str) -> Result<Poll, BackendError> {
    let what = "read the authgear users export";
    let url = api.url(Some(job));
    let reply = api.send(what, |http| http.get(url.clone())).await?;
    match reply.status.as_u16() {
        200 => {}
        401 | 403 => return Err(api.refused(what, &reply)),
        404 => {
            return Err(BackendError::fatal(
                format!("users export task {job} not found: {}", reply_error(&reply)),
                Some("export results are kept 24 hours; run the export again".to_owned()),
            ));
        }
        _ => {
            return Err(BackendError::fatal(
                format!("{what} {job}: {}", reply_error(&reply)),
                None,
            ));
        }
    }
    let result = result_of(&reply, what)?;
    let failed = result.get("failed_at").is_some_and(|v| !v.is_null())
        || result.get("error").is_some_and(|v| !v.is_null());
    if failed {
        return Err(BackendError::fatal(
            format!(
                "users export task {job} failed: {}",
                task_error(result.get("error"))
            ),
            Some("run the export again; if it keeps failing, check the project's logs".to_owned()),
        ));
    }
    match result.get("status").and_then(Value::as_str) {
        Some("completed") => result
            .get("download_url")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(|u| Poll::Ready(u.to_owned()))
            .ok_or_else(|| {
                BackendError::fatal(
                    format!("users export task {job} completed without a `download_url`"),
                    None,
                )
            }),
        _ => Ok(Poll::Pending),
    }
}

/// A task's `error`, as an API error or a plain string.
fn task_error(error: Option<&Value>) -> String {
    match error {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v @ Value::Object(_)) => serde_json::from_value::<ApiError>(v.clone())
            .map(|e| e.describe())
            .unwrap_or_else(|_| "authgear gave an unreadable error".to_owned()),
        _ => "authgear gave no details".to_owned(),
    }
}

/// Polls the task (250 ms, ×1.5, at most 5 s apart) until it completes or `timeout`
/// has passed; returns its download URL. Says every [`PROGRESS_EVERY`] what it waits
/// for and for how long.
async fn wait_for_url(api: &Api, job: &str, timeout: Duration) -> Result<String, BackendError> {
    let start = tokio::time::Instant::now();
    let mut delay = FIRST_POLL_DELAY;
    let mut reported = Duration::ZERO;
    loop {
        if let Poll::Ready(url) = read_task(api, job).await? {
            return Ok(url);
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(BackendError::fatal(
                format!(
                    "users export task {job} did not finish within the export timeout of {}s",
                    timeout.as_secs()
                ),
                Some(format!(
                    "the task may still finish at authgear (results are kept 24 h): run the export again with a longer --export-timeout (e.g. --export-timeout 4h); GET /_api/admin/users/export/{job} shows its state"
                )),
            ));
        }
        if waited >= reported + PROGRESS_EVERY {
            reported = waited;
            tracing::info!(
                target: "progress",
                job,
                waited_s = waited.as_secs(),
                "waiting for the authgear users export task (authgear gives no percentage)"
            );
        }
        tokio::time::sleep(delay.min(timeout - waited)).await;
        delay = delay.mul_f64(1.5).min(MAX_POLL_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_errors_and_details_are_described_without_secrets() {
        let e = serde_json::json!({"name":"InternalError","reason":"UserExportFailed","message":"boom"});
        assert_eq!(task_error(Some(&e)), "UserExportFailed: boom");
        assert_eq!(task_error(Some(&Value::String("x".into()))), "x");
        assert_eq!(task_error(None), "authgear gave no details");
    }
}
