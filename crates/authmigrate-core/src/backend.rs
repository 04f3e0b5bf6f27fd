//! The [`ImportBackend`] trait: what a provider must do so the generic
//! [driver](crate::driver) can import users into it.
//!
//! A backend is a *wire protocol*: it turns one neutral record into the provider's
//! JSON, submits a batch of such JSON records as one provider job, and polls that
//! job until every record of the batch has an outcome. Everything else (reading the
//! input, chunking by exact byte size, keeping the provider's job limit full,
//! back-pressure, resubmitting failed jobs, the resume journal, reports) is the
//! driver's, so it is written once for every provider.
//!
//! # Contract
//! - [`ImportBackend::encode`] is pure and deterministic: the same record always
//!   gives the same bytes. The driver relies on it to rebuild identical chunks when
//!   a run is resumed.
//! - A batch body sent by [`ImportBackend::submit`] is at most
//!   [`Limits::max_upload_bytes`] when its records array ([`Batch::array_len`]) is at
//!   most [`Limits::max_array_bytes`]. The backend computes `max_array_bytes` from
//!   its exact envelope overhead.
//! - [`ImportBackend::poll`] returns [`JobState::Finished`] with exactly one
//!   [`RecordOutcome`] per record of the batch, in batch order.
//! - Transient HTTP failures (429, 5xx, timeouts) are retried inside the backend
//!   through [`crate::retry`]; an error returned to the driver is either
//!   [`BackendError::Fatal`] (stop the run) or [`BackendError::Transient`] (the
//!   driver may try the step again later).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::record::{HashAlgorithm, UserRecord};

/// What a provider accepts, and how much of it at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The provider's request size limit, in bytes (Auth0 512000, Authgear 500000).
    pub max_upload_bytes: usize,
    /// The largest records array (`[rec,rec,...]`, bytes) that keeps one request
    /// within `max_upload_bytes` once the backend's envelope is added.
    pub max_array_bytes: usize,
    /// Jobs the provider runs at once for one tenant (Auth0: 2).
    pub max_jobs_in_flight: usize,
    /// Records one job may hold, if the provider caps it.
    pub max_records_per_job: Option<usize>,
    /// Password hash algorithms the provider can import.
    pub accepted_hashes: Vec<HashAlgorithm>,
}

/// One record encoded for the provider.
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The record's JSON, exactly as it will appear in the request's records array.
    pub json: Vec<u8>,
    /// Things the provider cannot hold that were left out (one message each).
    pub warnings: Vec<String>,
}

impl fmt::Debug for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The JSON holds password hashes: show its size only.
        f.debug_struct("Encoded")
            .field("json_bytes", &self.json.len())
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Why a record cannot be imported (the `code` and `message` of a failed outcome).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFailure {
    /// A stable machine-readable code (`INVALID_RECORD`, `UNSUPPORTED_HASH`,
    /// the provider's own code such as `DUPLICATED_USER`...).
    pub code: String,
    /// A human-readable reason naming the field. Never contains a secret.
    pub message: String,
}

impl RecordFailure {
    /// A failure with a code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for RecordFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// One record inside a [`Batch`].
#[derive(Clone)]
pub struct BatchRecord {
    /// The record's 0-based position in the whole input.
    pub index: u64,
    /// A non-secret label (e-mail or username) for matching provider answers and
    /// for messages.
    pub label: Option<String>,
    /// The encoded JSON.
    pub json: Vec<u8>,
    /// Warnings from encoding, carried into the record's outcome.
    pub warnings: Vec<String>,
}

impl fmt::Debug for BatchRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchRecord")
            .field("index", &self.index)
            .field("label", &self.label)
            .field("json_bytes", &self.json.len())
            .finish()
    }
}

/// The records of one provider job.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// 0-based chunk number within the run (stable across resumed runs).
    pub chunk: u64,
    /// The records, in input order.
    pub records: Vec<BatchRecord>,
}

impl Batch {
    /// Bytes of the records array `[a,b,...]` this batch serializes to.
    pub fn array_len(&self) -> usize {
        array_len_of(self.records.iter().map(|r| r.json.len()))
    }

    /// The records array `[a,b,...]`.
    pub fn to_array(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.array_len());
        out.push(b'[');
        for (i, r) in self.records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&r.json);
        }
        out.push(b']');
        out
    }
}

/// Bytes of a JSON array holding elements of the given sizes.
pub fn array_len_of(sizes: impl IntoIterator<Item = usize>) -> usize {
    let mut n = 0usize;
    let mut total = 2usize; // '[' and ']'
    for s in sizes {
        total += s;
        n += 1;
    }
    total + n.saturating_sub(1)
}

/// A provider job id (`job_...`, `userimport_...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submit {
    /// The provider accepted the batch as this job.
    Accepted(JobId),
    /// The provider is at its job limit (Auth0's 429 `active import users jobs`):
    /// back-pressure, not an error. Submit again when a job ends, or after the hint.
    Busy {
        /// How long the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The provider refused the whole request because its records would exceed a
    /// usage quota (Authgear's 429 `UsageLimitExceeded`). Nothing of the request was
    /// accepted; a request with fewer records may still fit, because the quota is
    /// reserved all or nothing per request and never given back.
    QuotaExceeded(QuotaRefusal),
}

/// Why a request was refused for a usage quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRefusal {
    /// The quota period the provider named (`day`, `month`).
    pub period: String,
    /// When that period starts again, if known (day: 00:00 UTC, month: the 1st).
    pub resets_at: Option<jiff::Timestamp>,
    /// The provider's message (never a secret).
    pub message: String,
}

/// The state of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// Still running.
    Running {
        /// Percent done, if the provider says.
        percent: Option<u8>,
    },
    /// Done: one outcome per batch record, in batch order.
    Finished(Vec<RecordOutcome>),
    /// The job as a whole failed or expired; no record outcome is known. The
    /// driver resubmits the batch (up to its attempt limit) or reports every
    /// record failed with this reason.
    Failed {
        /// The provider's reason.
        reason: String,
    },
    /// The job ended without per-record outcomes but may have imported some of its
    /// records (Auth0 marks a job running over 2 hours `failed`; `expired`): the
    /// batch is *in doubt*. The driver never counts such a batch as failed records:
    /// it resolves it ([`ImportBackend::resolve`]) or resubmits it, treating "already
    /// exists" answers as the earlier attempt's work.
    InDoubt {
        /// The provider's reason.
        reason: String,
    },
    /// The provider no longer knows the job (404 after its retention: Auth0 24 h,
    /// Authgear `TaskNotFound`). Whether it ran is unknown: in doubt, like
    /// [`JobState::InDoubt`].
    Gone {
        /// The provider's reason.
        reason: String,
    },
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Created.
    Inserted,
    /// Existed and was updated (upsert).
    Updated,
    /// Existed and was left alone: counts as success.
    Skipped,
    /// Not imported; see the code and message.
    Failed,
}

impl Outcome {
    /// Inserted, updated or skipped.
    pub fn is_success(self) -> bool {
        self != Self::Failed
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inserted => "inserted",
            Self::Updated => "updated",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// The outcome of one record, with details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordOutcome {
    /// What happened.
    pub outcome: Outcome,
    /// The user's id at the target provider, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Failure code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Failure message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Warnings (fields dropped, provider warnings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl RecordOutcome {
    /// A successful outcome.
    pub fn success(outcome: Outcome, user_id: Option<String>) -> Self {
        Self {
            outcome,
            user_id,
            code: None,
            message: None,
            warnings: Vec::new(),
        }
    }

    /// A failed outcome.
    pub fn failed(failure: RecordFailure) -> Self {
        Self {
            outcome: Outcome::Failed,
            user_id: None,
            code: Some(failure.code),
            message: Some(failure.message),
            warnings: Vec::new(),
        }
    }

    /// Adds warnings.
    pub fn with_warnings(mut self, warnings: impl IntoIterator<Item = String>) -> Self {
        self.warnings.extend(warnings);
        self
    }
}

/// What a provider export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Users (non-empty NDJSON lines) written.
    pub users: u64,
    /// Bytes of NDJSON written (decompressed).
    pub bytes: u64,
    /// The provider's export job or task id.
    pub job: String,
}

/// An error a backend returns to the driver.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Stop the run: bad credentials, missing connection, a request the provider
    /// rejects as a whole. `hint` says what to do.
    #[error("{message}")]
    Fatal {
        /// What went wrong (never a secret).
        message: String,
        /// What the user can do about it.
        hint: Option<String>,
    },
    /// Retries inside the backend ran out on a transient failure; the driver may
    /// try the step again later.
    #[error("{0}")]
    Transient(String),
    /// A non-idempotent request (a job submission) was sent and its answer was lost
    /// (a timeout or a 5xx after the body went out): the provider may have accepted
    /// it. The backend does not retry such a request itself; the driver treats the
    /// batch as in doubt.
    #[error("{0}")]
    InDoubt(String),
}

impl BackendError {
    /// A fatal error with a hint.
    pub fn fatal(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Self::Fatal {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// A provider that can import users. See the [module docs](self) for the contract.
#[async_trait]
pub trait ImportBackend: Send + Sync + fmt::Debug {
    /// The provider's name (`auth0`, `authgear`, `memory`).
    fn name(&self) -> &'static str;

    /// The provider's limits.
    fn limits(&self) -> Limits;

    /// Encodes one record in the provider's import format, or says why it cannot
    /// be imported (for example a hash algorithm the provider does not accept).
    fn encode(&self, record: &UserRecord) -> Result<Encoded, RecordFailure>;

    /// Checks credentials and resolves what the run needs (a connection id...)
    /// before anything is submitted. The default does nothing.
    async fn prepare(&self) -> Result<(), BackendError> {
        Ok(())
    }

    /// Starts a job for the batch.
    async fn submit(&self, batch: &Batch) -> Result<Submit, BackendError>;

    /// Reads a job's state. `batch` is the batch the job was started with, so
    /// the backend can map the provider's per-user answers back to positions.
    async fn poll(&self, job: &JobId, batch: &Batch) -> Result<JobState, BackendError>;

    /// Looks up, for a batch in doubt, which of its records the provider already
    /// holds, so that they need not be sent (and charged) again. Returns one entry
    /// per batch record, in batch order: `Some(outcome)` for a record found at the
    /// provider (normally [`Outcome::Skipped`] with its `user_id`), `None` for one
    /// not found (to be submitted again). `Ok(None)` means the backend cannot look
    /// records up; the driver then resubmits the whole batch. The default cannot.
    async fn resolve(
        &self,
        batch: &Batch,
    ) -> Result<Option<Vec<Option<RecordOutcome>>>, BackendError> {
        let _ = batch;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_len_matches_serialized_array() {
        let mut b = Batch::default();
        assert_eq!(b.array_len(), b.to_array().len());
        for (i, s) in ["{\"a\":1}", "{}", "{\"email\":\"x@y.z\"}"]
            .iter()
            .enumerate()
        {
            b.records.push(BatchRecord {
                index: i as u64,
                label: None,
                json: s.as_bytes().to_vec(),
                warnings: vec![],
            });
            assert_eq!(b.array_len(), b.to_array().len());
        }
        assert_eq!(b.to_array(), b"[{\"a\":1},{},{\"email\":\"x@y.z\"}]");
    }

    #[test]
    fn encoded_debug_hides_json() {
        let e = Encoded {
            json: br#"{"password_hash":"$2b$10$secret"}"#.to_vec(),
            warnings: vec![],
        };
        assert!(!format!("{e:?}").contains("secret"));
    }
}
