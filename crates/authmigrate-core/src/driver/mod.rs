//! The generic import driver: runs an import into any [`ImportBackend`].
//!
//! [`run_import`] reads the input on a blocking thread (bounded channel, so only
//! the batches being built or in flight are held in memory), encodes each record
//! with the backend, cuts the encoded records into chunks by exact serialized size,
//! keeps up to [`Limits::max_jobs_in_flight`] provider jobs running, polls each
//! adaptively and records the outcome of every record.
//!
//! # Guarantees
//! - Every input record gets exactly one [`Event::Record`], whatever happens
//!   (backend errors, protocol bugs, a job that keeps failing, an aborted run). The
//!   returned [`Summary`] counts those events.
//! - Chunks are a deterministic function of the input and the backend's encoding:
//!   records are appended greedily while the records array stays within
//!   [`Limits::max_array_bytes`] (and [`Limits::max_records_per_job`]); invalid
//!   records are left out and do not break a chunk. Chunks are numbered from 0 in
//!   input order.
//! - [`Submit::Busy`] is back-pressure, never a failure; the whole of one stretch of
//!   back-pressure (no request accepted) is bounded by [`DriverOptions::wait_timeout`].
//! - A record given twice in the input (same e-mail or username, compared
//!   case-insensitively, or same source id) fails as `DUPLICATE_IN_INPUT` naming
//!   its first occurrence, before chunking (`driver/dups.rs`).
//! - With a resume journal ([`DriverOptions::state`]), every request is journaled
//!   (`submitting`) before it is sent and its job id (`submitted`) once accepted. A
//!   chunk recorded as finished is never submitted again: its outcomes are
//!   replayed. A chunk with a job id is polled again with it.
//! - **In doubt**: a request the provider may have accepted without our knowing
//!   (an intent without a job id after a kill, [`BackendError::InDoubt`] from
//!   `submit`, [`JobState::InDoubt`] / [`JobState::Gone`] from `poll`) never makes
//!   its records fail. The driver first asks [`ImportBackend::resolve`]: records
//!   found are reported with the provider's answer and a warning that an earlier,
//!   interrupted attempt imported them; the rest (all of them if the backend cannot
//!   look records up) are sent again as a smaller request, and that job's "already
//!   exists" answers (`skipped`, or a failed `DUPLICATED_USER` / "already exist")
//!   are reported `skipped` from an earlier attempt. At most
//!   [`DriverOptions::max_job_attempts`] requests per chunk are made in doubt;
//!   then the run stops and the records are `UNKNOWN_JOB_STATE` (a resume picks
//!   them up).
//! - **Quota** ([`Submit::QuotaExceeded`]): the provider reserves a request's whole
//!   count or nothing, and never gives it back. The driver halves its requests
//!   until one of a single record is refused (the quota is then used up exactly),
//!   and stops: jobs running are polled to their end, every record not accepted is
//!   `NOT_IMPORTED`, and the error names the period, when it resets and the command
//!   that resumes. A resume sends only the records never accepted (the journal
//!   records each accepted sub-request and its outcomes, `part`).
//! - Journal lines are written before the matching events are emitted.
//!
//! # Failure codes the driver gives records
//! `RECORD_TOO_LARGE` (a record alone exceeds the array limit), `DUPLICATE_IN_INPUT`
//! (a record given twice), `BACKEND_PROTOCOL`
//! (the backend answered the wrong number of outcomes), `JOB_FAILED` (the job failed
//! [`DriverOptions::max_job_attempts`] times), `NOT_IMPORTED` (the run stopped before
//! the record was submitted), `UNKNOWN_JOB_STATE` (the run stopped while the record's
//! job was running and its outcome could not be read).
//!
//! # Stopping
//! A [`BackendError::Fatal`], a used-up quota, a back-pressure wait longer than
//! [`DriverOptions::wait_timeout`], [`DriverOptions::max_transient_errors`] consecutive
//! [`BackendError::Transient`] on one step, a journal that does not match the input,
//! or a journal write failure stop the run: nothing more is submitted, jobs already
//! running are still polled to their end (their outcomes are real), every other
//! record is reported `NOT_IMPORTED`/`UNKNOWN_JOB_STATE` (the rest of the input is
//! drained without encoding), and then the first error is returned.
//!
//! # Dry run
//! Nothing is submitted, the backend's `prepare` is not called and the journal is
//! neither read nor written. A [`Event::Planned`] is emitted per chunk and an
//! [`Event::Record`] only for records that cannot be read or encoded (or are too
//! large). [`Summary::planned`] counts the records that would be submitted;
//! [`Summary::total`] counts planned plus failed records.

mod doubt;
mod dups;
mod hook;
mod journal;
mod poll;
mod reader;
mod run;
mod submit;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{info, warn};

#[allow(unused_imports)] // for the docs
use crate::backend::{BackendError, JobState, Submit};
use crate::backend::{ImportBackend, JobId, Outcome, RecordFailure, RecordOutcome};
use crate::error::{Error, Result};
use crate::record::UserRecord;

pub use hook::{ABORT_AT, reached as test_hook};
use journal::Journal;
use reader::{CHANNEL_CAPACITY, read_input};
use run::Run;

/// Failure code: a record whose JSON alone exceeds the provider's array limit.
pub const RECORD_TOO_LARGE: &str = "RECORD_TOO_LARGE";
/// Failure code: the backend answered a job with the wrong number of outcomes.
pub const BACKEND_PROTOCOL: &str = "BACKEND_PROTOCOL";
/// Failure code: the same user appears earlier in the input.
pub const DUPLICATE_IN_INPUT: &str = "DUPLICATE_IN_INPUT";
/// Failure code: the record's job failed on every attempt.
pub const JOB_FAILED: &str = "JOB_FAILED";
/// Failure code: the run stopped before the record was submitted.
pub const NOT_IMPORTED: &str = "NOT_IMPORTED";
/// Failure code: the run stopped while the record's job ran; its outcome is unknown.
pub const UNKNOWN_JOB_STATE: &str = "UNKNOWN_JOB_STATE";

/// One input record, or why it could not be read.
#[derive(Debug)]
pub struct InputRecord {
    /// 0-based position in the whole input.
    pub index: u64,
    /// The record, or the failure reported for it (unreadable or invalid input).
    pub record: Result<UserRecord, RecordFailure>,
}

/// How [`run_import`] runs.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Plan only: submit nothing (see the [module docs](self)).
    pub dry_run: bool,
    /// The resume journal (`--state`).
    pub state: Option<PathBuf>,
    /// Identifies the input and options; a journal with another fingerprint is refused.
    pub fingerprint: String,
    /// First wait before polling a new job.
    pub poll_initial: Duration,
    /// Longest wait between polls (the wait grows ×1.5 per poll up to this).
    pub poll_max: Duration,
    /// Submissions of one batch whose job ends `Failed` before its records are
    /// reported `JOB_FAILED` (at least 1).
    pub max_job_attempts: u32,
    /// Wait after [`Submit::Busy`] without a hint.
    pub busy_wait: Duration,
    /// Consecutive [`BackendError::Transient`] on one step (a submission, a job's
    /// polling) after which the run stops as on a fatal error (at least 1).
    pub max_transient_errors: u32,
    /// First wait after a transient error; doubles per consecutive error, up to
    /// 32 times this value.
    pub transient_backoff: Duration,
    /// The longest one stretch of provider back-pressure ([`Submit::Busy`]: no
    /// request accepted) may last before the run stops (`--wait-timeout`).
    pub wait_timeout: Duration,
    /// The command that resumes this run (with its `--state`), for messages.
    pub resume_command: Option<String>,
}

/// Parses a `--wait-timeout`-style duration (`90s`, `30m`, `2h`: jiff's friendly
/// format) into a non-negative [`Duration`].
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("`{text}` is not a duration such as 90s, 30m or 2h: {e}"))?;
    Duration::try_from(d).map_err(|_| format!("`{text}`: a duration may not be negative"))
}

/// The default [`DriverOptions::wait_timeout`]: 30 minutes (Auth0 import jobs of a
/// full 500 kB upload usually end within minutes; half an hour of "busy" means
/// someone else's long jobs hold the tenant's slots, and a resume later is better
/// than an unattended run that never ends).
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl DriverOptions {
    /// How to resume, for messages.
    pub(crate) fn resume_hint(&self) -> String {
        match (&self.resume_command, &self.state) {
            (Some(cmd), _) => format!("resume with: {cmd}"),
            (None, Some(state)) => format!(
                "resume by running the same command again with --state {}",
                state.display()
            ),
            (None, None) => "run the same command again, with --state FILE this time to make it resumable (without one every record is sent again; users already imported are skipped)".to_owned(),
        }
    }
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            state: None,
            fingerprint: String::new(),
            poll_initial: Duration::from_millis(500),
            poll_max: Duration::from_secs(10),
            max_job_attempts: 3,
            busy_wait: Duration::from_secs(2),
            max_transient_errors: 5,
            transient_backoff: Duration::from_secs(1),
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            resume_command: None,
        }
    }
}

/// Receives the driver's events (progress bars, `--json` lines, reports).
pub trait Observer: Send + Sync {
    /// Called for each event. Events come from the driver's task, except
    /// [`Event::Retrying`] for polling, which comes from the job's polling task; keep
    /// it quick (journal writes and polling wait for it).
    fn event(&self, event: &Event<'_>);
}

impl<F> Observer for F
where
    F: Fn(&Event<'_>) + Send + Sync,
{
    fn event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn event(&self, _event: &Event<'_>) {}
}

/// Something that happened during a run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A chunk was cut from the input.
    Planned {
        /// Chunk number.
        chunk: u64,
        /// Records in it.
        records: usize,
        /// Bytes of its records array.
        bytes: usize,
        /// `bytes / max_array_bytes`.
        fill: f64,
    },
    /// A chunk was submitted as a job.
    Submitted {
        /// Chunk number.
        chunk: u64,
        /// The job.
        job: &'a JobId,
        /// Records in it.
        records: usize,
        /// 1-based attempt within this run.
        attempt: u32,
    },
    /// The provider is at its job limit; the chunk waits.
    Busy {
        /// Chunk number.
        chunk: u64,
        /// The provider's hint, if any.
        retry_after: Option<Duration>,
    },
    /// Waiting for the provider to accept a request (back-pressure).
    Waiting {
        /// Chunk number.
        chunk: u64,
        /// What we wait for.
        what: &'a str,
        /// How long this stretch of waiting has lasted.
        waited: Duration,
        /// When it gives up ([`DriverOptions::wait_timeout`]).
        limit: Duration,
    },
    /// The provider refused a request for its usage quota; a smaller one follows.
    QuotaSplit {
        /// Chunk number.
        chunk: u64,
        /// Records in the refused request.
        refused: usize,
        /// Records in the next request.
        next: usize,
        /// The quota period (`day`, `month`).
        period: &'a str,
    },
    /// A request may have been accepted without our knowing: it is being resolved.
    InDoubt {
        /// Chunk number.
        chunk: u64,
        /// Records whose import is in doubt.
        records: usize,
        /// Why.
        reason: &'a str,
    },
    /// Records of an in-doubt request were looked up at the provider.
    Resolved {
        /// Chunk number.
        chunk: u64,
        /// Records found (imported by the earlier attempt).
        found: usize,
        /// Records to send again.
        resend: usize,
    },
    /// A step failed transiently and will be tried again.
    Retrying {
        /// Chunk number.
        chunk: u64,
        /// The error.
        message: &'a str,
        /// Consecutive failures so far.
        failures: u32,
    },
    /// A chunk an earlier run submitted is being polled again (resume).
    Resumed {
        /// Chunk number.
        chunk: u64,
        /// The job recorded in the journal.
        job: &'a JobId,
    },
    /// A chunk an earlier run finished: its outcomes follow from the journal.
    Replayed {
        /// Chunk number.
        chunk: u64,
        /// Records in it.
        records: usize,
    },
    /// A job finished; its records' outcomes follow.
    JobFinished {
        /// Chunk number.
        chunk: u64,
        /// The job.
        job: &'a JobId,
    },
    /// A job failed as a whole.
    JobFailed {
        /// Chunk number.
        chunk: u64,
        /// The job.
        job: &'a JobId,
        /// The provider's reason.
        reason: &'a str,
        /// Whether the chunk will be submitted again.
        will_retry: bool,
    },
    /// The final outcome of one input record (exactly once per record).
    Record {
        /// 0-based input position.
        index: u64,
        /// Non-secret label (e-mail, username, phone or source id).
        label: Option<&'a str>,
        /// The record's e-mail, if it has one.
        email: Option<&'a str>,
        /// What happened.
        outcome: &'a RecordOutcome,
    },
}

/// Counts of record outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Records seen.
    pub total: u64,
    /// Created.
    pub inserted: u64,
    /// Updated.
    pub updated: u64,
    /// Already there, left alone.
    pub skipped: u64,
    /// Failed (including not imported).
    pub failed: u64,
    /// Dry run only: records that would be submitted (0 otherwise, then omitted).
    #[serde(skip_serializing_if = "is_zero")]
    pub planned: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: Outcome) {
        self.total += 1;
        match outcome {
            Outcome::Inserted => self.inserted += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    /// Whether no record failed.
    pub fn all_succeeded(&self) -> bool {
        self.failed == 0
    }
}

/// Runs an import. See the [module docs](self).
///
/// Returns the summary, or the error that stopped the run after every record has
/// been reported; a journal that belongs to another run is refused up front with
/// [`Error::State`].
pub async fn run_import(
    backend: Arc<dyn ImportBackend>,
    input: impl Iterator<Item = InputRecord> + Send + 'static,
    options: DriverOptions,
    observer: Arc<dyn Observer>,
) -> Result<Summary> {
    let limits = backend.limits();
    if limits.max_array_bytes < 3 {
        return Err(Error::Config(format!(
            "backend `{}` allows records arrays of {} bytes: too small for any record",
            backend.name(),
            limits.max_array_bytes
        )));
    }
    let journal = match (&options.state, options.dry_run) {
        (Some(path), false) => Some(Journal::open(path, &options.fingerprint, backend.name())?),
        _ => None,
    };
    if !options.dry_run {
        backend.prepare().await?;
    }

    let abort = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let reader = {
        let backend = backend.clone();
        let limits = limits.clone();
        let abort = abort.clone();
        tokio::task::spawn_blocking(move || read_input(input, &*backend, &limits, &tx, &abort))
    };
    info!(
        backend = backend.name(),
        max_array_bytes = limits.max_array_bytes,
        max_jobs = limits.max_jobs_in_flight,
        dry_run = options.dry_run,
        "import started"
    );

    let mut run = Run::new(backend, options, observer, limits, journal, abort);
    let result = if run.options.dry_run {
        run.dry_run(rx).await
    } else {
        run.run(rx).await
    };
    if let Err(e) = reader.await {
        // The reader only ends early when the channel closes; a panic in the input
        // iterator or in `encode` lands here.
        warn!(error = %e, "input reader failed");
        return Err(Error::Input {
            location: Default::default(),
            reason: format!("reading the input failed: {e}"),
        });
    }
    let summary = result?;
    info!(
        total = summary.total,
        inserted = summary.inserted,
        updated = summary.updated,
        skipped = summary.skipped,
        failed = summary.failed,
        "import finished"
    );
    Ok(summary)
}

#[cfg(test)]
mod tests;
