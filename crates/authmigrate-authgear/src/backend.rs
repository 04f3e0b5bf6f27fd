//! [`AuthgearBackend`]: the [`ImportBackend`] for Authgear's User Import API
//! (`POST /_api/admin/users/import`, `GET /_api/admin/users/import/{id}`).
//!
//! Chunking, jobs in flight, resubmission and the resume journal are the core
//! driver's; this module only speaks the wire protocol.

use std::collections::HashMap;

use async_trait::async_trait;
use authmigrate_core::backend::{
    BackendError, Batch, Encoded, ImportBackend, JobId, JobState, Limits, Outcome, QuotaRefusal,
    RecordFailure, RecordOutcome, Submit,
};
use authmigrate_core::record::{HashAlgorithm, UserRecord};
use authmigrate_core::retry::{RetryError, Verdict, default_verdict};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::TokenSource;
use crate::client::{AdminClient, ApiError, CallError, is_usage_limit};
use crate::config::{AuthgearSettings, parse_endpoint};
use crate::format::{self, AuthgearMapOptions};

/// Authgear's import body limit (`BodyMaxSize = 500 * 1000`).
pub const MAX_BODY_BYTES: usize = 500_000;

/// A well-formed import job id that cannot exist, read by [`ImportBackend::prepare`]
/// to check the credentials (404 `TaskNotFound` means they work).
pub const PROBE_JOB_ID: &str = "userimport_AUTHMIGRATEPR0BE0000000000000000";

/// Code of a record the provider gave no outcome for.
pub const MISSING_OUTCOME: &str = "MISSING_OUTCOME";
/// Code of a record whose outcome the provider named in an unknown way.
pub const UNKNOWN_OUTCOME: &str = "UNKNOWN_OUTCOME";

/// The hint given with a 403 from the Admin API.
pub const FORBIDDEN_HINT: &str = "Authgear answered 403 Forbidden: the admin token was refused. Likely causes: a wrong key id (the JWT `kid`, AUTHGEAR_KEY_ID), a wrong project id (the JWT `aud`, AUTHGEAR_PROJECT_ID), a private key that is not this project's Admin API key (portal: Advanced > Admin API), or a local clock more than 5 minutes off";

/// The hint given with a 403 when a ready-made token is used.
const FORBIDDEN_TOKEN_HINT: &str = "Authgear answered 403 Forbidden: the admin token (AUTHGEAR_ADMIN_TOKEN) was refused. It may have expired (portal tokens last 5 minutes) or belong to another project; or use the admin key (AUTHGEAR_KEY_ID, AUTHGEAR_PRIVATE_KEY_FILE) instead";

/// The Authgear import backend.
#[derive(Debug)]
pub struct AuthgearBackend {
    client: AdminClient,
    upsert: bool,
    map: AuthgearMapOptions,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    max_jobs_in_flight: usize,
}

impl AuthgearBackend {
    /// Checks the settings (endpoint, key) without any request. An `http://`
    /// endpoint that is not loopback, or a key that cannot sign, is a
    /// [`BackendError::Fatal`].
    pub fn new(settings: AuthgearSettings) -> Result<Self, BackendError> {
        let base = parse_endpoint(&settings.endpoint).map_err(|e| BackendError::fatal(e, None))?;
        let tokens = TokenSource::new(&settings.auth).map_err(|e| BackendError::fatal(e, None))?;
        let client = AdminClient::new(base, tokens, settings.retry)
            .map_err(|e| BackendError::fatal(e, None))?;
        let (prefix, suffix) = format::body_envelope(settings.map.identifier, settings.upsert);
        Ok(Self {
            client,
            upsert: settings.upsert,
            map: settings.map,
            prefix: prefix.into_bytes(),
            suffix: suffix.into_bytes(),
            max_jobs_in_flight: settings.max_jobs_in_flight.max(1),
        })
    }

    /// Whether existing users are updated.
    pub fn upsert(&self) -> bool {
        self.upsert
    }

    /// The whole request body for a batch: envelope prefix, records array, suffix.
    pub fn body(&self, batch: &Batch) -> Vec<u8> {
        let array = batch.to_array();
        let mut body = Vec::with_capacity(self.prefix.len() + array.len() + self.suffix.len());
        body.extend_from_slice(&self.prefix);
        body.extend_from_slice(&array);
        body.extend_from_slice(&self.suffix);
        body
    }

    fn forbidden(&self, what: &str) -> BackendError {
        let hint = if self.client.uses_key() {
            FORBIDDEN_HINT
        } else {
            FORBIDDEN_TOKEN_HINT
        };
        BackendError::fatal(
            format!("{what}: authgear refused the admin token (HTTP 403 Forbidden)"),
            Some(hint.to_owned()),
        )
    }

    fn call_error(&self, e: CallError) -> BackendError {
        match e {
            CallError::Token(msg) => BackendError::fatal(msg, None),
            CallError::Retry(RetryError::Exhausted { .. }) => {
                BackendError::Transient(e.to_string())
            }
            CallError::Retry(RetryError::InDoubt { .. }) => BackendError::InDoubt(e.to_string()),
            CallError::Retry(_) => BackendError::fatal(e.to_string(), None),
        }
    }
}

/// Describes a reply: status and the API error, if any (never the body of a reply
/// that is not an API error).
fn reply_error(reply: &authmigrate_core::retry::HttpReply) -> String {
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

fn unexpected(what: &str, reply: &authmigrate_core::retry::HttpReply) -> String {
    format!("{what}: {}", reply_error(reply))
}

/// The refusal of a 429 `UsageLimitExceeded`: its `info.period`, when that period
/// starts again (day: the next 00:00 UTC, month: the 1st of the next month 00:00 UTC,
/// anything else unknown) and the server's message.
pub fn quota_refusal(error: &ApiError, now: jiff::Timestamp) -> QuotaRefusal {
    let period = error
        .info
        .as_ref()
        .and_then(|i| i.get("period"))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let start = match period.as_str() {
        "day" => today.tomorrow().ok(),
        "month" => today
            .first_of_month()
            .checked_add(jiff::Span::new().months(1))
            .ok(),
        _ => None,
    };
    let resets_at = start
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp());
    let message = non_empty(&error.message, "usage limit exceeded");
    QuotaRefusal {
        period,
        resets_at,
        message: format!(
            "{}: {message}",
            non_empty(&error.reason, "UsageLimitExceeded")
        ),
    }
}

#[derive(Deserialize)]
struct ResultWrapper<T> {
    result: T,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct JobResult {
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    details: Option<Vec<Detail>>,
}

#[derive(Deserialize)]
struct Detail {
    index: Option<i64>,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    warnings: Vec<Warning>,
    #[serde(default)]
    errors: Vec<ApiError>,
}

#[derive(Deserialize)]
struct Warning {
    #[serde(default)]
    message: String,
}

/// Maps a completed job's details to one outcome per batch position. Missing
/// positions get the job's `error` (or [`MISSING_OUTCOME`]); duplicate and
/// out-of-range indexes are ignored.
fn map_details(
    batch: &Batch,
    details: Vec<Detail>,
    job_error: Option<&ApiError>,
) -> Vec<RecordOutcome> {
    let n = batch.records.len();
    let mut by_index: HashMap<usize, Detail> = HashMap::with_capacity(details.len());
    for d in details {
        let Some(i) = d
            .index
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| *i < n)
        else {
            tracing::warn!(index = ?d.index, records = n, "authgear detail with an out-of-range index ignored");
            continue;
        };
        if by_index.contains_key(&i) {
            tracing::warn!(index = i, "authgear detail with a duplicate index ignored");
            continue;
        }
        by_index.insert(i, d);
    }
    batch
        .records
        .iter()
        .enumerate()
        .map(|(i, _)| {
            // The record's own encoding warnings (`BatchRecord::warnings`) are not
            // added here: the driver carries them into the outcome, and adding them
            // here too printed each warning twice.
            let Some(d) = by_index.remove(&i) else {
                let failure = match job_error {
                    Some(e) => RecordFailure::new(
                        non_empty(&e.reason, "JobError"),
                        format!("the import job failed: {}", e.describe()),
                    ),
                    None => RecordFailure::new(
                        MISSING_OUTCOME,
                        "authgear reported no outcome for this record",
                    ),
                };
                return RecordOutcome::failed(failure);
            };
            let provider = d.warnings.into_iter().map(|w| w.message);
            let outcome = match d.outcome.as_str() {
                "inserted" => RecordOutcome::success(Outcome::Inserted, d.user_id),
                "updated" => RecordOutcome::success(Outcome::Updated, d.user_id),
                "skipped" => RecordOutcome::success(Outcome::Skipped, d.user_id),
                "failed" => {
                    let failure = match d.errors.first() {
                        Some(e) => RecordFailure::new(
                            non_empty(&e.reason, non_empty(&e.name, "Failed")),
                            record_message(e),
                        ),
                        None => RecordFailure::new("Failed", "authgear gave no reason"),
                    };
                    let mut o = RecordOutcome::failed(failure);
                    o.user_id = d.user_id;
                    o
                }
                other => RecordOutcome::failed(RecordFailure::new(
                    UNKNOWN_OUTCOME,
                    format!("authgear reported the unknown outcome `{other}`"),
                )),
            };
            outcome.with_warnings(provider)
        })
        .collect()
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() { default } else { s }
}

/// The message of a per-record error: the message plus the safe parts of `info`.
fn record_message(e: &ApiError) -> String {
    let extra = e.info_summary();
    let msg = non_empty(&e.message, &e.name);
    if extra.is_empty() {
        msg.to_owned()
    } else {
        format!("{msg} ({extra})")
    }
}

#[async_trait]
impl ImportBackend for AuthgearBackend {
    fn name(&self) -> &'static str {
        "authgear"
    }

    fn limits(&self) -> Limits {
        Limits {
            max_upload_bytes: MAX_BODY_BYTES,
            max_array_bytes: MAX_BODY_BYTES - self.prefix.len() - self.suffix.len(),
            max_jobs_in_flight: self.max_jobs_in_flight,
            max_records_per_job: None,
            accepted_hashes: vec![HashAlgorithm::Bcrypt],
        }
    }

    fn encode(&self, record: &UserRecord) -> Result<Encoded, RecordFailure> {
        format::encode_import_record(record, &self.map)
    }

    async fn prepare(&self) -> Result<(), BackendError> {
        const WHAT: &str = "checking the authgear credentials";
        let reply =
            self.client
                .get_import(PROBE_JOB_ID)
                .await
                .map_err(|e| match self.call_error(e) {
                    BackendError::Transient(m) => BackendError::fatal(
                        format!("{WHAT}: {m}"),
                        Some(
                            "check AUTHGEAR_ENDPOINT and that the project is reachable".to_owned(),
                        ),
                    ),
                    other => other,
                })?;
        match reply.status {
            StatusCode::NOT_FOUND
                if ApiError::from_reply(&reply).is_some_and(|e| e.reason == "TaskNotFound") =>
            {
                Ok(())
            }
            s if s.is_success() => Ok(()),
            StatusCode::FORBIDDEN => Err(self.forbidden(WHAT)),
            _ => Err(BackendError::fatal(
                unexpected(WHAT, &reply),
                Some("check AUTHGEAR_ENDPOINT: it must be the project's base URL, e.g. https://myapp.authgear.cloud".to_owned()),
            )),
        }
    }

    async fn submit(&self, batch: &Batch) -> Result<Submit, BackendError> {
        const WHAT: &str = "creating an authgear import job";
        let body = self.body(batch);
        let reply = self
            .client
            .create_import(body, |reply| {
                if is_usage_limit(reply) {
                    Verdict::Done
                } else {
                    default_verdict(reply)
                }
            })
            .await
            .map_err(|e| self.call_error(e))?;
        match reply.status {
            StatusCode::OK | StatusCode::CREATED | StatusCode::ACCEPTED => {
                let created: ResultWrapper<Created> = reply.json().map_err(|e| {
                    BackendError::fatal(
                        format!("{WHAT}: unexpected reply from authgear (no `result.id`): {e}"),
                        None,
                    )
                })?;
                Ok(Submit::Accepted(JobId(created.result.id)))
            }
            StatusCode::FORBIDDEN => Err(self.forbidden(WHAT)),
            // The quota is reserved all or nothing per request and never given back
            // (authgear-api.md §1 CORRECTED): nothing of this request was accepted, and
            // a smaller one may still fit. The driver halves, then stops.
            StatusCode::TOO_MANY_REQUESTS if is_usage_limit(&reply) => {
                let error = ApiError::from_reply(&reply).unwrap_or_default();
                Ok(Submit::QuotaExceeded(quota_refusal(
                    &error,
                    jiff::Timestamp::now(),
                )))
            }
            StatusCode::PAYLOAD_TOO_LARGE => Err(BackendError::fatal(
                format!(
                    "{WHAT}: authgear refused a {}-byte body as too large (limit {MAX_BODY_BYTES}); this is a bug in authmigrate's chunking: {}",
                    self.prefix.len() + batch.array_len() + self.suffix.len(),
                    reply_error(&reply)
                ),
                None,
            )),
            StatusCode::BAD_REQUEST => Err(BackendError::fatal(
                format!(
                    "{WHAT}: the request was rejected as a whole: {}",
                    reply_error(&reply)
                ),
                None,
            )),
            _ => Err(BackendError::fatal(unexpected(WHAT, &reply), None)),
        }
    }

    async fn poll(&self, job: &JobId, batch: &Batch) -> Result<JobState, BackendError> {
        let what = format!("reading authgear import job {job}");
        let reply = self
            .client
            .get_import(&job.0)
            .await
            .map_err(|e| self.call_error(e))?;
        match reply.status {
            StatusCode::OK => {}
            // `TaskNotFound`: results are kept 24 h (authgear-api.md §1); whether the
            // job ran is unknown, and its users can be looked up (`resolve`).
            StatusCode::NOT_FOUND => {
                let reason = ApiError::from_reply(&reply)
                    .map(|e| e.describe())
                    .unwrap_or_else(|| "HTTP 404".to_owned());
                return Ok(JobState::Gone {
                    reason: format!("the import job {job} is gone ({reason})"),
                });
            }
            StatusCode::FORBIDDEN => return Err(self.forbidden(&what)),
            _ => return Err(BackendError::fatal(unexpected(&what, &reply), None)),
        }
        let job_result: ResultWrapper<JobResult> = reply.json().map_err(|e| {
            BackendError::fatal(format!("{what}: unexpected reply from authgear: {e}"), None)
        })?;
        let result = job_result.result;
        match result.status.as_str() {
            "pending" => Ok(JobState::Running { percent: None }),
            "completed" => {
                let details = result.details.unwrap_or_default();
                if details.is_empty() && !batch.records.is_empty() {
                    // A task that errored as a whole: nothing is known about the records,
                    // and each record runs in its own transaction (authgear-api.md §1), so
                    // those before the error may exist: in doubt, never failed records.
                    let reason = result
                        .error
                        .as_ref()
                        .map(ApiError::describe)
                        .unwrap_or_else(|| {
                            "the job completed without any record outcome".to_owned()
                        });
                    return Ok(JobState::InDoubt {
                        reason: format!("the import job {job} ended without outcomes: {reason}"),
                    });
                }
                Ok(JobState::Finished(map_details(
                    batch,
                    details,
                    result.error.as_ref(),
                )))
            }
            other => Err(BackendError::fatal(
                format!("{what}: unknown job status `{other}`"),
                None,
            )),
        }
    }

    /// Looks each record's identifier up with `getUsersByStandardAttribute` (read
    /// from the database, immediately consistent): a record found is `skipped` with
    /// the user's raw id, one not found is to be sent again. With `upsert`, found
    /// users must still be updated, so the whole batch is sent again (`Ok(None)`).
    async fn resolve(
        &self,
        batch: &Batch,
    ) -> Result<Option<Vec<Option<RecordOutcome>>>, BackendError> {
        if self.upsert {
            return Ok(None);
        }
        let graphql = crate::graphql::Graphql::new(&self.client);
        let field = self.map.identifier.as_str();
        let mut out = Vec::with_capacity(batch.records.len());
        for record in &batch.records {
            let value: Value = serde_json::from_slice(&record.json).unwrap_or(Value::Null);
            let Some(id) = value.get(field).and_then(Value::as_str) else {
                out.push(None);
                continue;
            };
            let users = graphql.users_by_standard_attribute(field, id).await?;
            out.push(users.first().map(|u| {
                let mut o = RecordOutcome::success(Outcome::Skipped, u.raw_id());
                o.code = Some("FOUND_AFTER_IN_DOUBT".to_owned());
                o.message = Some(format!(
                    "the user with this {field} was found at authgear after an import in doubt; not sent again"
                ));
                o.with_warnings(record.warnings.clone())
            }));
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authmigrate_core::backend::BatchRecord;

    fn batch(n: usize) -> Batch {
        Batch {
            chunk: 0,
            records: (0..n)
                .map(|i| BatchRecord {
                    index: 100 + i as u64,
                    label: None,
                    json: b"{}".to_vec(),
                    warnings: vec![format!("local {i}")],
                })
                .collect(),
        }
    }

    fn details(v: Value) -> Vec<Detail> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn quota_periods_reset_at_midnight_and_on_the_first() {
        let error = |period: &str| ApiError {
            name: "TooManyRequest".into(),
            reason: "UsageLimitExceeded".into(),
            message: "usage limit exceeded".into(),
            code: Some(429),
            info: serde_json::json!({"name":"UserImport","period": period})
                .as_object()
                .cloned(),
        };
        let now: jiff::Timestamp = "2026-12-31T17:45:00Z".parse().unwrap();
        let day = quota_refusal(&error("day"), now);
        assert_eq!(day.period, "day");
        assert_eq!(day.resets_at, Some("2027-01-01T00:00:00Z".parse().unwrap()));
        assert_eq!(day.message, "UsageLimitExceeded: usage limit exceeded");
        let month = quota_refusal(&error("month"), "2026-02-14T00:00:00Z".parse().unwrap());
        assert_eq!(
            month.resets_at,
            Some("2026-03-01T00:00:00Z".parse().unwrap())
        );
        let month = quota_refusal(&error("month"), now);
        assert_eq!(
            month.resets_at,
            Some("2027-01-01T00:00:00Z".parse().unwrap())
        );
        let other = quota_refusal(&error("week"), now);
        assert_eq!((other.period.as_str(), other.resets_at), ("week", None));
    }

    #[test]
    fn details_map_by_index_with_gaps_duplicates_and_errors() {
        let d = details(serde_json::json!([
            {"index": 2, "outcome": "failed", "errors": [{"name": "Invalid", "reason": "ValidationFailed",
              "message": "invalid value", "code": 400,
              "info": {"causes": [{"location": "/name", "kind": "minLength", "details": {"actual": "secretvalue"}}]}}]},
            {"index": 0, "outcome": "skipped", "user_id": "u0", "warnings": [{"message": "skipping because upsert = false and user exists"}]},
            {"index": 0, "outcome": "inserted", "user_id": "dup"},
            {"index": 9, "outcome": "inserted"},
            {"index": -1, "outcome": "inserted"},
            {"index": 3, "outcome": "weird"}
        ]));
        let job_error = ApiError {
            name: "InternalError".into(),
            reason: "UnexpectedError".into(),
            message: "unexpected error occurred".into(),
            ..ApiError::default()
        };
        let out = map_details(&batch(5), d, Some(&job_error));
        assert_eq!(out.len(), 5);
        assert_eq!(out[0].outcome, Outcome::Skipped);
        assert_eq!(out[0].user_id.as_deref(), Some("u0"));
        assert_eq!(
            out[0].warnings,
            // Only the provider's: the driver adds the local ones (once).
            vec!["skipping because upsert = false and user exists".to_owned()]
        );
        assert_eq!(out[1].outcome, Outcome::Failed);
        assert_eq!(out[1].code.as_deref(), Some("UnexpectedError"));
        assert_eq!(out[2].code.as_deref(), Some("ValidationFailed"));
        assert_eq!(
            out[2].message.as_deref(),
            Some("invalid value (causes: /name: minLength)")
        );
        assert!(!format!("{out:?}").contains("secretvalue"));
        assert_eq!(out[3].code.as_deref(), Some(UNKNOWN_OUTCOME));
        assert_eq!(out[4].code.as_deref(), Some("UnexpectedError"));

        let out = map_details(&batch(1), Vec::new(), None);
        assert_eq!(out[0].code.as_deref(), Some(MISSING_OUTCOME));
    }
}
