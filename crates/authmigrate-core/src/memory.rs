//! An in-memory [`ImportBackend`] that behaves like a real provider, used to prove
//! the [driver](crate::driver) and by tests of the CLI.
//!
//! [`MemoryBackend`] holds users keyed by lowercase e-mail and runs asynchronous
//! jobs: a submitted batch becomes a job that answers `Running` for a configurable
//! number of polls, then imports its records in order (a new e-mail is
//! `inserted` as `mem|<n>`; an existing one is `DUPLICATED_USER`, or `updated` when
//! built with [`MemoryBackend::with_upsert`]; duplicates inside one batch behave the
//! same way). Like Auth0 it can refuse new jobs with [`Submit::Busy`] while too many
//! of its own jobs run, and it rejects a batch whose records array exceeds
//! [`Limits::max_array_bytes`] as a fatal error (the provider's 413).
//!
//! Faults are scripted with the `fail_*`, `transient_*`, `busy_*`,
//! `fatal_on_submit`, `in_doubt_*` / `gone_job` (the job ran, but its answer is
//! lost or it ends without outcomes) and `with_quota` (a daily quota reserved per
//! request, all or nothing, like Authgear's) builders; `with_resolve` lets
//! [`ImportBackend::resolve`] look records up by e-mail. The backend is cheaply cloneable: clones share state,
//! so a test can keep a handle for inspection ([`MemoryBackend::users`],
//! [`MemoryBackend::submissions`], [`MemoryBackend::max_in_flight_seen`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::backend::{
    BackendError, Batch, Encoded, ImportBackend, JobId, JobState, Limits, Outcome, RecordFailure,
    RecordOutcome, Submit,
};
use crate::record::{HashAlgorithm, UserRecord};

/// The JSON one record is encoded to: `{"email":..,"username":..,"password":..}`.
#[derive(Serialize, Deserialize)]
struct MemoryUser {
    email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// A plain bcrypt hash (the wire form holds it; it is never logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

struct Job {
    chunk: u64,
    attempt: u32,
    polls_left: u32,
    records: Vec<Vec<u8>>,
    done: Option<JobState>,
}

struct State {
    limits: Limits,
    latency: u32,
    job_limit: Option<usize>,
    upsert: bool,
    busy_submits: u32,
    busy_hint: Option<Duration>,
    transient_submits: u32,
    transient_polls: u32,
    fatal_on_submit: Option<u64>,
    fail_attempts: HashSet<(u64, u32)>,
    fail_always: HashSet<u64>,
    truncate: HashSet<u64>,
    in_doubt_submits: HashSet<u64>,
    in_doubt_jobs: HashSet<(u64, u32)>,
    gone_jobs: HashSet<(u64, u32)>,
    quota: Option<u64>,
    resolve: bool,
    resolve_calls: u64,
    submitted_records: u64,

    users: BTreeMap<String, String>,
    next_user: u64,
    jobs: HashMap<String, Job>,
    next_job: u64,
    attempts: HashMap<u64, u32>,
    submit_calls: u64,
    submissions: u64,
    busy_answers: u64,
    running: usize,
    max_in_flight: usize,
}

/// An in-memory provider. See the [module docs](self).
#[derive(Clone)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Jobs hold encoded records (password hashes): show counts only.
        let s = self.lock();
        f.debug_struct("MemoryBackend")
            .field("users", &s.users.len())
            .field("jobs", &s.jobs.len())
            .field("running", &s.running)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    /// An empty backend with Auth0-like limits (512000-byte arrays, 2 jobs in
    /// flight), jobs that finish on their first poll, and no faults.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                limits: Limits {
                    max_upload_bytes: 512_000,
                    max_array_bytes: 512_000,
                    max_jobs_in_flight: 2,
                    max_records_per_job: None,
                    accepted_hashes: vec![HashAlgorithm::Bcrypt],
                },
                latency: 0,
                job_limit: None,
                upsert: false,
                busy_submits: 0,
                busy_hint: None,
                transient_submits: 0,
                transient_polls: 0,
                fatal_on_submit: None,
                fail_attempts: HashSet::new(),
                fail_always: HashSet::new(),
                truncate: HashSet::new(),
                in_doubt_submits: HashSet::new(),
                in_doubt_jobs: HashSet::new(),
                gone_jobs: HashSet::new(),
                quota: None,
                resolve: false,
                resolve_calls: 0,
                submitted_records: 0,
                users: BTreeMap::new(),
                next_user: 1,
                jobs: HashMap::new(),
                next_job: 1,
                attempts: HashMap::new(),
                submit_calls: 0,
                submissions: 0,
                busy_answers: 0,
                running: 0,
                max_in_flight: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters consistent enough for tests.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with(self, f: impl FnOnce(&mut State)) -> Self {
        f(&mut self.lock());
        self
    }

    /// Uses these limits.
    pub fn with_limits(self, limits: Limits) -> Self {
        self.with(|s| s.limits = limits)
    }

    /// Sets the records-array limit (and the upload limit) to `bytes`.
    pub fn with_max_array_bytes(self, bytes: usize) -> Self {
        self.with(|s| {
            s.limits.max_array_bytes = bytes;
            s.limits.max_upload_bytes = bytes;
        })
    }

    /// Sets the number of jobs the driver may keep in flight.
    pub fn with_max_jobs_in_flight(self, jobs: usize) -> Self {
        self.with(|s| s.limits.max_jobs_in_flight = jobs)
    }

    /// A job answers `Running` to this many polls before it finishes.
    pub fn with_latency(self, polls: u32) -> Self {
        self.with(|s| s.latency = polls)
    }

    /// Answers [`Submit::Busy`] while `jobs` of its own jobs are running (Auth0's
    /// `active import users jobs`), whatever [`Limits::max_jobs_in_flight`] says.
    pub fn with_job_limit(self, jobs: usize) -> Self {
        self.with(|s| s.job_limit = Some(jobs))
    }

    /// Existing users are updated instead of failing with `DUPLICATED_USER`.
    pub fn with_upsert(self, upsert: bool) -> Self {
        self.with(|s| s.upsert = upsert)
    }

    /// Starts with these users (e-mails) already present.
    pub fn with_users<I, S>(self, emails: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with(|s| {
            for email in emails {
                let id = format!("mem|{}", s.next_user);
                s.next_user += 1;
                s.users.insert(email.into().to_lowercase(), id);
            }
        })
    }

    /// The first `n` submissions are answered [`Submit::Busy`] with this hint,
    /// as if someone else's job were running.
    pub fn busy_submits(self, n: u32, retry_after: Option<Duration>) -> Self {
        self.with(|s| {
            s.busy_submits = n;
            s.busy_hint = retry_after;
        })
    }

    /// The first `n` submissions fail with [`BackendError::Transient`].
    pub fn transient_submits(self, n: u32) -> Self {
        self.with(|s| s.transient_submits = n)
    }

    /// The first `n` polls fail with [`BackendError::Transient`].
    pub fn transient_polls(self, n: u32) -> Self {
        self.with(|s| s.transient_polls = n)
    }

    /// The `k`-th call to `submit` (1-based) fails with [`BackendError::Fatal`].
    pub fn fatal_on_submit(self, k: u64) -> Self {
        self.with(|s| s.fatal_on_submit = Some(k))
    }

    /// Attempt `attempt` (1-based) of chunk `chunk` ends as [`JobState::Failed`].
    pub fn fail_job_attempt(self, chunk: u64, attempt: u32) -> Self {
        self.with(|s| {
            s.fail_attempts.insert((chunk, attempt));
        })
    }

    /// Every attempt of chunk `chunk` ends as [`JobState::Failed`].
    pub fn fail_chunk_always(self, chunk: u64) -> Self {
        self.with(|s| {
            s.fail_always.insert(chunk);
        })
    }

    /// Jobs of chunk `chunk` answer one outcome too few (a protocol bug).
    pub fn truncate_outcomes(self, chunk: u64) -> Self {
        self.with(|s| {
            s.truncate.insert(chunk);
        })
    }

    /// The `k`-th call to `submit` (1-based) runs its job at once (importing its
    /// records) but answers [`BackendError::InDoubt`], as if the
    /// answer had been lost after the request was sent.
    pub fn in_doubt_on_submit(self, k: u64) -> Self {
        self.with(|s| {
            s.in_doubt_submits.insert(k);
        })
    }

    /// Attempt `attempt` (1-based, accepted submissions) of chunk `chunk` imports
    /// its records, then ends as [`JobState::InDoubt`] (Auth0's `failed` after 2 h).
    pub fn in_doubt_job(self, chunk: u64, attempt: u32) -> Self {
        self.with(|s| {
            s.in_doubt_jobs.insert((chunk, attempt));
        })
    }

    /// Attempt `attempt` of chunk `chunk` imports its records, then is
    /// [`JobState::Gone`] (its results expired).
    pub fn gone_job(self, chunk: u64, attempt: u32) -> Self {
        self.with(|s| {
            s.gone_jobs.insert((chunk, attempt));
        })
    }

    /// A daily quota of `records`: a request whose records exceed what is left is
    /// refused as a whole ([`Submit::QuotaExceeded`]); an accepted one uses its
    /// whole count, whatever its outcomes.
    pub fn with_quota(self, records: u64) -> Self {
        self.with(|s| s.quota = Some(records))
    }

    /// Records can be looked up by e-mail ([`ImportBackend::resolve`]).
    pub fn with_resolve(self, resolve: bool) -> Self {
        self.with(|s| s.resolve = resolve)
    }

    /// Calls to `resolve`.
    pub fn resolve_calls(&self) -> u64 {
        self.lock().resolve_calls
    }

    /// Records in accepted submissions (what a quota was charged).
    pub fn submitted_records(&self) -> u64 {
        self.lock().submitted_records
    }

    /// The e-mails held, sorted.
    pub fn users(&self) -> Vec<String> {
        self.lock().users.keys().cloned().collect()
    }

    /// Accepted submissions (jobs started).
    pub fn submissions(&self) -> u64 {
        self.lock().submissions
    }

    /// Accepted submissions per chunk number.
    pub fn submissions_of(&self, chunk: u64) -> u32 {
        self.lock().attempts.get(&chunk).copied().unwrap_or(0)
    }

    /// Calls to `submit`, whatever their answer.
    pub fn submit_calls(&self) -> u64 {
        self.lock().submit_calls
    }

    /// Submissions answered [`Submit::Busy`].
    pub fn busy_answers(&self) -> u64 {
        self.lock().busy_answers
    }

    /// The most jobs that were running at once.
    pub fn max_in_flight_seen(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.lock().running
    }
}

impl State {
    fn run_job(&mut self, job_id: &str) -> JobState {
        let Some(job) = self.jobs.get(job_id) else {
            return JobState::Failed {
                reason: format!("job `{job_id}` not found"),
            };
        };
        let (chunk, attempt) = (job.chunk, job.attempt);
        if self.fail_always.contains(&chunk) || self.fail_attempts.contains(&(chunk, attempt)) {
            return JobState::Failed {
                reason: format!("scripted failure of chunk {chunk} attempt {attempt}"),
            };
        }
        let records = job.records.clone();
        let mut outcomes = Vec::with_capacity(records.len());
        for json in &records {
            let user: MemoryUser = match serde_json::from_slice(json) {
                Ok(u) => u,
                Err(e) => {
                    outcomes.push(RecordOutcome::failed(RecordFailure::new(
                        "INVALID_JSON",
                        format!("record is not a memory user: {e}"),
                    )));
                    continue;
                }
            };
            let key = user.email.to_lowercase();
            if let Some(id) = self.users.get(&key) {
                if self.upsert {
                    outcomes.push(RecordOutcome::success(Outcome::Updated, Some(id.clone())));
                } else {
                    outcomes.push(RecordOutcome::failed(RecordFailure::new(
                        "DUPLICATED_USER",
                        format!("the user already exists: `{key}`"),
                    )));
                }
            } else {
                let id = format!("mem|{}", self.next_user);
                self.next_user += 1;
                self.users.insert(key, id.clone());
                outcomes.push(RecordOutcome::success(Outcome::Inserted, Some(id)));
            }
        }
        if self.truncate.contains(&chunk) {
            outcomes.pop();
        }
        if self.in_doubt_jobs.contains(&(chunk, attempt)) {
            return JobState::InDoubt {
                reason: format!("scripted: chunk {chunk} attempt {attempt} ran but ended `failed`"),
            };
        }
        if self.gone_jobs.contains(&(chunk, attempt)) {
            return JobState::Gone {
                reason: format!("scripted: job of chunk {chunk} attempt {attempt} not found"),
            };
        }
        JobState::Finished(outcomes)
    }
}

#[async_trait]
impl ImportBackend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn limits(&self) -> Limits {
        self.lock().limits.clone()
    }

    fn encode(&self, record: &UserRecord) -> Result<Encoded, RecordFailure> {
        let Some(email) = record.email.clone() else {
            return Err(RecordFailure::new(
                "MISSING_EMAIL",
                "field `email` is required by the memory backend",
            ));
        };
        let mut warnings = Vec::new();
        let password = match &record.password {
            None => None,
            Some(p) => match p.as_plain_bcrypt() {
                Some(h) => Some(h.expose().to_owned()),
                None => {
                    warnings.push(format!(
                        "password: `{}` hashes are not kept by the memory backend",
                        p.algorithm.as_str()
                    ));
                    None
                }
            },
        };
        let user = MemoryUser {
            email,
            username: record.username.clone(),
            password,
        };
        let json = serde_json::to_vec(&user)
            .map_err(|e| RecordFailure::new("INVALID_RECORD", format!("cannot encode: {e}")))?;
        Ok(Encoded { json, warnings })
    }

    async fn submit(&self, batch: &Batch) -> Result<Submit, BackendError> {
        let mut s = self.lock();
        s.submit_calls += 1;
        if s.fatal_on_submit == Some(s.submit_calls) {
            return Err(BackendError::fatal(
                format!("scripted fatal error on submission {}", s.submit_calls),
                Some("this is a test".to_owned()),
            ));
        }
        if s.transient_submits > 0 {
            s.transient_submits -= 1;
            return Err(BackendError::Transient(
                "scripted transient submit error".into(),
            ));
        }
        if s.busy_submits > 0 {
            s.busy_submits -= 1;
            s.busy_answers += 1;
            return Ok(Submit::Busy {
                retry_after: s.busy_hint,
            });
        }
        if let Some(limit) = s.job_limit
            && s.running >= limit
        {
            s.busy_answers += 1;
            return Ok(Submit::Busy { retry_after: None });
        }
        let len = batch.array_len();
        if len > s.limits.max_array_bytes {
            return Err(BackendError::fatal(
                format!(
                    "request too large: records array of {len} bytes exceeds {} bytes",
                    s.limits.max_array_bytes
                ),
                None,
            ));
        }
        if let Some(max) = s.limits.max_records_per_job
            && batch.records.len() > max
        {
            return Err(BackendError::fatal(
                format!("too many records: {} exceeds {max}", batch.records.len()),
                None,
            ));
        }
        if let Some(left) = s.quota {
            let n = batch.records.len() as u64;
            if n > left {
                return Ok(Submit::QuotaExceeded(crate::backend::QuotaRefusal {
                    period: "day".to_owned(),
                    resets_at: None,
                    message: format!(
                        "usage limit exceeded: {n} records requested, {left} left today"
                    ),
                }));
            }
            s.quota = Some(left - n);
        }
        s.submitted_records += batch.records.len() as u64;
        let attempt = {
            let a = s.attempts.entry(batch.chunk).or_insert(0);
            *a += 1;
            *a
        };
        let id = format!("job_mem{}", s.next_job);
        s.next_job += 1;
        s.submissions += 1;
        s.running += 1;
        s.max_in_flight = s.max_in_flight.max(s.running);
        let polls_left = s.latency;
        s.jobs.insert(
            id.clone(),
            Job {
                chunk: batch.chunk,
                attempt,
                polls_left,
                records: batch.records.iter().map(|r| r.json.clone()).collect(),
                done: None,
            },
        );
        if s.in_doubt_submits.contains(&s.submit_calls) {
            // The job ran at once; nobody will poll it.
            let state = s.run_job(&id);
            s.running = s.running.saturating_sub(1);
            if let Some(j) = s.jobs.get_mut(&id) {
                j.records.clear();
                j.done = Some(state);
            }
            return Err(BackendError::InDoubt(format!(
                "scripted: the answer to submission {} was lost",
                s.submit_calls
            )));
        }
        Ok(Submit::Accepted(JobId(id)))
    }

    async fn resolve(
        &self,
        batch: &Batch,
    ) -> Result<Option<Vec<Option<RecordOutcome>>>, BackendError> {
        let mut s = self.lock();
        s.resolve_calls += 1;
        if !s.resolve {
            return Ok(None);
        }
        Ok(Some(
            batch
                .records
                .iter()
                .map(|r| {
                    let user: MemoryUser = serde_json::from_slice(&r.json).ok()?;
                    let id = s.users.get(&user.email.to_lowercase())?;
                    Some(RecordOutcome::success(Outcome::Skipped, Some(id.clone())))
                })
                .collect(),
        ))
    }

    async fn poll(&self, job: &JobId, _batch: &Batch) -> Result<JobState, BackendError> {
        let mut s = self.lock();
        if s.transient_polls > 0 {
            s.transient_polls -= 1;
            return Err(BackendError::Transient(
                "scripted transient poll error".into(),
            ));
        }
        let Some(j) = s.jobs.get_mut(&job.0) else {
            return Ok(JobState::Failed {
                reason: format!("job `{job}` not found"),
            });
        };
        if let Some(done) = &j.done {
            return Ok(done.clone());
        }
        if j.polls_left > 0 {
            j.polls_left -= 1;
            return Ok(JobState::Running { percent: None });
        }
        let state = s.run_job(&job.0);
        s.running = s.running.saturating_sub(1);
        if let Some(j) = s.jobs.get_mut(&job.0) {
            j.records.clear();
            j.done = Some(state.clone());
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BatchRecord;
    use crate::record::PasswordHash;

    fn rec(email: &str) -> UserRecord {
        UserRecord {
            email: Some(email.into()),
            password: Some(PasswordHash::bcrypt(format!("$2b$04${}", "a".repeat(53)))),
            ..Default::default()
        }
    }

    fn batch(b: &MemoryBackend, chunk: u64, emails: &[&str]) -> Batch {
        Batch {
            chunk,
            records: emails
                .iter()
                .enumerate()
                .map(|(i, e)| BatchRecord {
                    index: i as u64,
                    label: Some((*e).into()),
                    json: b.encode(&rec(e)).unwrap().json,
                    warnings: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn encode_rejects_missing_email_and_keeps_bcrypt() {
        let b = MemoryBackend::new();
        let err = b.encode(&UserRecord::default()).unwrap_err();
        assert_eq!(err.code, "MISSING_EMAIL");
        let e = b.encode(&rec("a@x.io")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(v["email"], "a@x.io");
        assert!(v["password"].as_str().unwrap().starts_with("$2b$04$"));
        assert!(!format!("{b:?}").contains("$2b$"));
    }

    #[tokio::test]
    async fn job_runs_after_latency_and_detects_duplicates() {
        let b = MemoryBackend::new()
            .with_latency(1)
            .with_users(["Old@x.io"]);
        let batch = batch(&b, 0, &["new@x.io", "old@x.io", "NEW@x.io"]);
        let Submit::Accepted(job) = b.submit(&batch).await.unwrap() else {
            panic!("busy")
        };
        assert_eq!(
            b.poll(&job, &batch).await.unwrap(),
            JobState::Running { percent: None }
        );
        let JobState::Finished(out) = b.poll(&job, &batch).await.unwrap() else {
            panic!()
        };
        assert_eq!(out[0].outcome, Outcome::Inserted);
        assert_eq!(out[1].code.as_deref(), Some("DUPLICATED_USER"));
        assert_eq!(out[2].code.as_deref(), Some("DUPLICATED_USER"));
        assert_eq!(
            b.users(),
            vec!["new@x.io".to_owned(), "old@x.io".to_owned()]
        );
        assert_eq!(b.running(), 0);
        // Unknown jobs are reported gone.
        let gone = b.poll(&JobId("job_nope".into()), &batch).await.unwrap();
        assert!(matches!(gone, JobState::Failed { .. }));
    }

    #[tokio::test]
    async fn busy_when_own_job_limit_is_reached_and_too_large_is_fatal() {
        let b = MemoryBackend::new().with_job_limit(1).with_latency(5);
        let one = batch(&b, 0, &["a@x.io"]);
        assert!(matches!(b.submit(&one).await.unwrap(), Submit::Accepted(_)));
        assert_eq!(
            b.submit(&one).await.unwrap(),
            Submit::Busy { retry_after: None }
        );
        let small = MemoryBackend::new().with_max_array_bytes(10);
        assert!(matches!(
            small.submit(&one).await,
            Err(BackendError::Fatal { .. })
        ));
    }
}
