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
//! - [`Submit::Busy`] is back-pressure, never a failure.
//! - With a resume journal ([`DriverOptions::state`]), a chunk recorded as finished
//!   is never submitted again: its outcomes are replayed. A chunk recorded as
//!   submitted is polled again with its job id (and resubmitted only if the
//!   provider says that job failed or is gone). Journal lines are written before
//!   the matching events are emitted. The one window that cannot be closed: a
//!   process killed after the provider accepted a job but before its `submitted`
//!   line was written resubmits that chunk on the next run.
//!
//! # Failure codes the driver gives records
//! `RECORD_TOO_LARGE` (a record alone exceeds the array limit), `BACKEND_PROTOCOL`
//! (the backend answered the wrong number of outcomes), `JOB_FAILED` (the job failed
//! [`DriverOptions::max_job_attempts`] times), `NOT_IMPORTED` (the run stopped before
//! the record was submitted), `UNKNOWN_JOB_STATE` (the run stopped while the record's
//! job was running and its outcome could not be read).
//!
//! # Stopping
//! A [`BackendError::Fatal`], [`DriverOptions::max_transient_errors`] consecutive
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

mod journal;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tracing::{debug, info, warn};

use crate::backend::{
    BackendError, Batch, BatchRecord, ImportBackend, JobId, JobState, Limits, Outcome,
    RecordFailure, RecordOutcome, Submit,
};
use crate::error::{Error, Result};
use crate::record::UserRecord;

use journal::{Journal, JournalOutcome, Recorded};

/// Failure code: a record whose JSON alone exceeds the provider's array limit.
pub const RECORD_TOO_LARGE: &str = "RECORD_TOO_LARGE";
/// Failure code: the backend answered a job with the wrong number of outcomes.
pub const BACKEND_PROTOCOL: &str = "BACKEND_PROTOCOL";
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

    let mut run = Run {
        max_jobs: limits.max_jobs_in_flight.max(1),
        limits,
        backend,
        options,
        observer,
        summary: Summary::default(),
        journal,
        ready: VecDeque::new(),
        running: JoinSet::new(),
        in_flight: HashMap::new(),
        stop: None,
        abort,
        chunks_seen: 0,
        job_time: Arc::new(JobTimer::default()),
    };
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

/// Items in flight between the reader thread and the driver (a chunk is up to
/// one upload in size, so this bounds memory to a few uploads).
const CHANNEL_CAPACITY: usize = 8;

/// What the reader thread sends.
enum Item {
    /// A record that cannot be submitted.
    Failed {
        index: u64,
        label: Option<String>,
        email: Option<String>,
        failure: RecordFailure,
    },
    /// A record read after the run stopped (not encoded).
    Unread {
        index: u64,
        label: Option<String>,
        email: Option<String>,
    },
    /// A chunk ready to submit.
    Chunk {
        batch: Batch,
        emails: Vec<Option<String>>,
    },
}

/// Reads, encodes and chunks the input (blocking thread).
fn read_input(
    input: impl Iterator<Item = InputRecord>,
    backend: &dyn ImportBackend,
    limits: &Limits,
    tx: &mpsc::Sender<Item>,
    abort: &AtomicBool,
) {
    let max_bytes = limits.max_array_bytes;
    let max_records = limits.max_records_per_job.unwrap_or(usize::MAX).max(1);
    let mut next_chunk = 0u64;
    let mut records: Vec<BatchRecord> = Vec::new();
    let mut emails: Vec<Option<String>> = Vec::new();
    let mut array_len = 2usize;

    let mut flush = |records: &mut Vec<BatchRecord>, emails: &mut Vec<Option<String>>| -> bool {
        if records.is_empty() {
            return true;
        }
        let batch = Batch {
            chunk: next_chunk,
            records: std::mem::take(records),
        };
        next_chunk += 1;
        tx.blocking_send(Item::Chunk {
            batch,
            emails: std::mem::take(emails),
        })
        .is_ok()
    };

    for InputRecord { index, record } in input {
        let item = match record {
            Err(failure) => Item::Failed {
                index,
                label: None,
                email: None,
                failure,
            },
            Ok(record) if abort.load(Ordering::Relaxed) => {
                if !flush(&mut records, &mut emails) {
                    return;
                }
                Item::Unread {
                    index,
                    label: record.label().map(str::to_owned),
                    email: record.email.clone(),
                }
            }
            Ok(record) => {
                let label = record.label().map(str::to_owned);
                let email = record.email.clone();
                match backend.encode(&record) {
                    Err(failure) => Item::Failed {
                        index,
                        label,
                        email,
                        failure,
                    },
                    Ok(enc) if enc.json.len() + 2 > max_bytes => Item::Failed {
                        index,
                        label,
                        email,
                        failure: RecordFailure::new(
                            RECORD_TOO_LARGE,
                            format!(
                                "the encoded record is {} bytes; one request's records array may hold at most {max_bytes} bytes",
                                enc.json.len()
                            ),
                        ),
                    },
                    Ok(enc) => {
                        let len = enc.json.len();
                        if !records.is_empty()
                            && (array_len + 1 + len > max_bytes || records.len() >= max_records)
                        {
                            if !flush(&mut records, &mut emails) {
                                return;
                            }
                            array_len = 2;
                        }
                        array_len += len + usize::from(!records.is_empty());
                        records.push(BatchRecord {
                            index,
                            label,
                            json: enc.json,
                            warnings: enc.warnings,
                        });
                        emails.push(email);
                        continue;
                    }
                }
            }
        };
        if tx.blocking_send(item).is_err() {
            return;
        }
    }
    flush(&mut records, &mut emails);
}

/// A chunk on its way through the driver.
struct Work {
    batch: Arc<Batch>,
    emails: Arc<[Option<String>]>,
    /// Submissions made in this run.
    attempts: u32,
    /// A job an earlier run submitted, to poll instead of submitting.
    resume_job: Option<JobId>,
}

impl Work {
    fn chunk(&self) -> u64 {
        self.batch.chunk
    }
}

struct InFlight {
    work: Work,
    job: JobId,
}

/// How a job's polling ended.
enum PollEnd {
    Finished(Vec<RecordOutcome>),
    Failed(String),
    Error(BackendError),
}

struct Run {
    backend: Arc<dyn ImportBackend>,
    options: DriverOptions,
    observer: Arc<dyn Observer>,
    limits: Limits,
    max_jobs: usize,
    summary: Summary,
    journal: Option<Journal>,
    /// Chunks waiting for a job slot (resubmissions first).
    ready: VecDeque<Work>,
    running: JoinSet<PollEnd>,
    in_flight: HashMap<tokio::task::Id, InFlight>,
    /// The first error that stopped the run.
    stop: Option<Error>,
    abort: Arc<AtomicBool>,
    chunks_seen: u64,
    /// How long jobs take, learnt from the ones that finished.
    job_time: Arc<JobTimer>,
}

impl Run {
    async fn dry_run(&mut self, mut rx: mpsc::Receiver<Item>) -> Result<Summary> {
        while let Some(item) = rx.recv().await {
            match item {
                Item::Chunk { batch, .. } => {
                    self.planned(&batch);
                    self.summary.planned += batch.records.len() as u64;
                    self.summary.total += batch.records.len() as u64;
                }
                other => self.on_item(other),
            }
        }
        Ok(self.summary)
    }

    async fn run(&mut self, mut rx: mpsc::Receiver<Item>) -> Result<Summary> {
        let mut input_done = false;
        loop {
            if self.stop.is_none() && self.running.len() < self.max_jobs {
                if let Some(work) = self.ready.pop_front() {
                    self.start(work).await;
                    continue;
                }
            }
            if self.stop.is_some() {
                while let Some(work) = self.ready.pop_front() {
                    self.abandon(&work, None);
                }
            }
            let want_input =
                !input_done && (self.stop.is_some() || self.running.len() < self.max_jobs);
            if !want_input && self.running.is_empty() {
                break;
            }
            tokio::select! {
                item = rx.recv(), if want_input => match item {
                    Some(item) => self.on_item(item),
                    None => input_done = true,
                },
                Some(joined) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    self.on_joined(joined);
                }
            }
        }
        if self.stop.is_none()
            && let Some(journal) = &self.journal
            && let Some(max) = journal.max_recorded_chunk()
            && max >= self.chunks_seen
        {
            self.stop = Some(Error::State {
                path: journal.path().to_owned(),
                reason: format!(
                    "it records chunk {max} but the input now makes only {} chunks: the input changed",
                    self.chunks_seen
                ),
            });
        }
        match self.stop.take() {
            Some(e) => Err(e),
            None => Ok(self.summary),
        }
    }

    fn emit(&self, event: &Event<'_>) {
        self.observer.event(event);
    }

    fn record(
        &mut self,
        index: u64,
        label: Option<&str>,
        email: Option<&str>,
        outcome: &RecordOutcome,
    ) {
        self.summary.add(outcome.outcome);
        self.observer.event(&Event::Record {
            index,
            label,
            email,
            outcome,
        });
    }

    /// Reports every record of `work` with an outcome made from its position.
    fn record_all(&mut self, work: &Work, mut outcome: impl FnMut(usize) -> RecordOutcome) {
        for (i, r) in work.batch.records.iter().enumerate() {
            let o = outcome(i).with_warnings(r.warnings.iter().cloned());
            self.record(r.index, r.label.as_deref(), work.emails[i].as_deref(), &o);
        }
    }

    fn stop_with(&mut self, error: Error) {
        if self.stop.is_none() {
            warn!(error = %error, "stopping the run: nothing more will be submitted");
            self.abort.store(true, Ordering::Relaxed);
            self.stop = Some(error);
        }
    }

    fn stop_reason(&self) -> String {
        self.stop
            .as_ref()
            .map_or_else(|| "the run stopped".to_owned(), ToString::to_string)
    }

    /// Reports a chunk that will not be submitted.
    fn abandon(&mut self, work: &Work, job_failure: Option<&str>) {
        let reason = self.stop_reason();
        let failure = match (&work.resume_job, job_failure) {
            (_, Some(job_reason)) => RecordFailure::new(
                NOT_IMPORTED,
                format!(
                    "not imported: its job failed ({job_reason}) and was not resubmitted because the run stopped: {reason}"
                ),
            ),
            (Some(job), None) => self.unknown_failure(job, work.chunk(), &reason),
            (None, None) => RecordFailure::new(
                NOT_IMPORTED,
                format!("not imported: the run stopped before this record was submitted: {reason}"),
            ),
        };
        debug!(chunk = work.chunk(), records = work.batch.records.len(), code = %failure.code, "chunk abandoned");
        self.record_all(work, |_| RecordOutcome::failed(failure.clone()));
    }

    fn unknown_failure(&self, job: &JobId, chunk: u64, reason: &str) -> RecordFailure {
        let next = if self.journal.is_some() {
            "re-running with the same --state will pick it up"
        } else {
            "re-running without a --state file would submit it again"
        };
        RecordFailure::new(
            UNKNOWN_JOB_STATE,
            format!("the outcome of job `{job}` (chunk {chunk}) is unknown: {reason}; {next}"),
        )
    }

    fn planned(&self, batch: &Batch) {
        let bytes = batch.array_len();
        self.emit(&Event::Planned {
            chunk: batch.chunk,
            records: batch.records.len(),
            bytes,
            fill: bytes as f64 / self.limits.max_array_bytes as f64,
        });
    }

    fn on_item(&mut self, item: Item) {
        match item {
            Item::Failed {
                index,
                label,
                email,
                failure,
            } => {
                debug!(index, code = %failure.code, "record cannot be submitted");
                self.record(
                    index,
                    label.as_deref(),
                    email.as_deref(),
                    &RecordOutcome::failed(failure),
                );
            }
            Item::Unread {
                index,
                label,
                email,
            } => {
                let failure = RecordFailure::new(
                    NOT_IMPORTED,
                    format!(
                        "not imported: the run stopped before this record was submitted: {}",
                        self.stop_reason()
                    ),
                );
                self.record(
                    index,
                    label.as_deref(),
                    email.as_deref(),
                    &RecordOutcome::failed(failure),
                );
            }
            Item::Chunk { batch, emails } => {
                self.chunks_seen = self.chunks_seen.max(batch.chunk + 1);
                self.planned(&batch);
                let work = Work {
                    batch: Arc::new(batch),
                    emails: emails.into(),
                    attempts: 0,
                    resume_job: None,
                };
                self.on_chunk(work);
            }
        }
    }

    fn on_chunk(&mut self, mut work: Work) {
        let recorded = match &self.journal {
            Some(j) if self.stop.is_none() => j.recorded(work.chunk()),
            _ => Recorded::Nothing,
        };
        if self.stop.is_some() {
            return self.abandon(&work, None);
        }
        match recorded {
            Recorded::Nothing => self.ready.push_back(work),
            Recorded::Submitted(entry) => {
                let first = work.batch.records.first().map_or(0, |r| r.index);
                let count = work.batch.records.len() as u64;
                if entry.first_index != first || entry.count != count {
                    let e = self.input_changed(
                        work.chunk(),
                        format!(
                            "it records chunk {} as records {}..{} but the input now makes it records {first}..{}",
                            work.chunk(),
                            entry.first_index,
                            entry.first_index + entry.count,
                            first + count
                        ),
                    );
                    self.stop_with(e);
                    // Its job may hold other records: report them as unknown.
                    work.resume_job = Some(entry.job);
                    return self.abandon(&work, None);
                }
                work.resume_job = Some(entry.job);
                self.ready.push_back(work);
            }
            Recorded::Finished => self.replay(&work),
        }
    }

    fn input_changed(&self, chunk: u64, reason: String) -> Error {
        debug!(chunk, "journal does not match the input");
        Error::State {
            path: self
                .journal
                .as_ref()
                .map(|j| j.path().to_owned())
                .unwrap_or_default(),
            reason: format!("{reason}: the input changed"),
        }
    }

    /// Replays a chunk an earlier run finished.
    fn replay(&mut self, work: &Work) {
        let Some(journal) = &self.journal else { return };
        let outcomes = match journal.finished_outcomes(work.chunk()) {
            Ok(o) => o,
            Err(e) => {
                self.stop_with(e);
                return self.abandon(work, None);
            }
        };
        let matches = outcomes.len() == work.batch.records.len()
            && outcomes
                .iter()
                .zip(&work.batch.records)
                .all(|(o, r)| o.index == r.index);
        if !matches {
            let e = self.input_changed(
                work.chunk(),
                format!(
                    "its outcomes of chunk {} are for other records than the input now puts in it",
                    work.chunk()
                ),
            );
            self.stop_with(e);
            return self.abandon(work, None);
        }
        info!(
            chunk = work.chunk(),
            records = outcomes.len(),
            "chunk already finished: replaying its outcomes"
        );
        self.emit(&Event::Replayed {
            chunk: work.chunk(),
            records: outcomes.len(),
        });
        for (i, o) in outcomes.iter().enumerate() {
            let r = &work.batch.records[i];
            self.record(
                o.index,
                r.label.as_deref(),
                work.emails[i].as_deref(),
                &o.outcome,
            );
        }
    }

    /// Starts a chunk: polls its recorded job, or submits it.
    async fn start(&mut self, mut work: Work) {
        if let Some(job) = work.resume_job.clone() {
            info!(chunk = work.chunk(), job = %job, "polling a job an earlier run submitted");
            self.emit(&Event::Resumed {
                chunk: work.chunk(),
                job: &job,
            });
            return self.spawn_poll(work, job);
        }
        let mut transient = 0u32;
        loop {
            if self.stop.is_some() {
                return self.abandon(&work, None);
            }
            match self.backend.submit(&work.batch).await {
                Ok(Submit::Accepted(job)) => {
                    work.attempts += 1;
                    let first = work.batch.records.first().map_or(0, |r| r.index);
                    let count = work.batch.records.len();
                    info!(chunk = work.chunk(), job = %job, records = count, attempt = work.attempts, "job submitted");
                    if let Some(journal) = &mut self.journal
                        && let Err(e) = journal.submitted(work.chunk(), &job, first, count as u64)
                    {
                        // The job runs anyway: poll it to its end, but stop afterwards.
                        self.stop_with(e);
                    }
                    self.emit(&Event::Submitted {
                        chunk: work.chunk(),
                        job: &job,
                        records: count,
                        attempt: work.attempts,
                    });
                    return self.spawn_poll(work, job);
                }
                Ok(Submit::Busy { retry_after }) => {
                    transient = 0;
                    debug!(
                        chunk = work.chunk(),
                        ?retry_after,
                        running = self.running.len(),
                        "provider busy"
                    );
                    self.emit(&Event::Busy {
                        chunk: work.chunk(),
                        retry_after,
                    });
                    let wait = retry_after.unwrap_or(self.options.busy_wait);
                    if self.running.is_empty() {
                        tokio::time::sleep(wait).await;
                    } else {
                        tokio::select! {
                            Some(joined) = self.running.join_next_with_id() => self.on_joined(joined),
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }
                Ok(Submit::QuotaExceeded(refusal)) => {
                    // Interim: a quota refusal stops the run (issue 12 splits requests).
                    self.stop_with(Error::Backend(BackendError::fatal(
                        refusal.message.clone(),
                        Some(format!("the {} quota is used up", refusal.period)),
                    )));
                    return self.abandon(&work, None);
                }
                Err(BackendError::Transient(message) | BackendError::InDoubt(message)) => {
                    transient += 1;
                    if transient >= self.options.max_transient_errors.max(1) {
                        self.stop_with(Error::Backend(BackendError::fatal(
                            format!(
                                "submitting chunk {} failed {transient} times in a row: {message}",
                                work.chunk()
                            ),
                            Some("re-run later, with the same --state to continue".to_owned()),
                        )));
                        return self.abandon(&work, None);
                    }
                    warn!(chunk = work.chunk(), failures = transient, error = %message, "submission failed, retrying");
                    self.emit(&Event::Retrying {
                        chunk: work.chunk(),
                        message: &message,
                        failures: transient,
                    });
                    tokio::time::sleep(backoff(self.options.transient_backoff, transient)).await;
                }
                Err(e @ BackendError::Fatal { .. }) => {
                    self.stop_with(Error::Backend(e));
                    return self.abandon(&work, None);
                }
            }
        }
    }

    fn spawn_poll(&mut self, work: Work, job: JobId) {
        let backend = self.backend.clone();
        let batch = work.batch.clone();
        let options = self.options.clone();
        let observer = self.observer.clone();
        let poll_job = job.clone();
        let job_time = self.job_time.clone();
        let handle = self.running.spawn(async move {
            poll_until_done(
                &*backend, &poll_job, &batch, &options, &*observer, &job_time,
            )
            .await
        });
        self.in_flight.insert(handle.id(), InFlight { work, job });
    }

    fn on_joined(&mut self, joined: Result<(tokio::task::Id, PollEnd), JoinError>) {
        let (id, end) = match joined {
            Ok((id, end)) => (id, Ok(end)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(InFlight { work, job }) = self.in_flight.remove(&id) else {
            warn!("a polling task ended that the driver does not know");
            return;
        };
        match end {
            Ok(end) => self.job_done(work, job, end),
            Err(e) => {
                let error = BackendError::fatal(format!("polling job `{job}` failed: {e}"), None);
                self.job_done(work, job, PollEnd::Error(error));
            }
        }
    }

    fn job_done(&mut self, mut work: Work, job: JobId, end: PollEnd) {
        let chunk = work.chunk();
        match end {
            PollEnd::Finished(outcomes) => {
                let n = work.batch.records.len();
                let got = outcomes.len();
                if got != n {
                    warn!(chunk, job = %job, expected = n, got, "backend answered the wrong number of outcomes");
                }
                let mut outcomes = outcomes.into_iter();
                let journaled: Vec<JournalOutcome> = work
                    .batch
                    .records
                    .iter()
                    .map(|r| {
                        let outcome = outcomes.next().unwrap_or_else(|| {
                            RecordOutcome::failed(RecordFailure::new(
                                BACKEND_PROTOCOL,
                                format!(
                                    "job `{job}` answered {got} outcomes for {n} records: no outcome for this record"
                                ),
                            ))
                        });
                        let mut warnings = r.warnings.clone();
                        warnings.extend(outcome.warnings);
                        JournalOutcome {
                            index: r.index,
                            outcome: RecordOutcome { warnings, ..outcome },
                        }
                    })
                    .collect();
                info!(chunk, job = %job, records = n, "job finished");
                self.finish_chunk(&work, Some(&job), journaled);
            }
            PollEnd::Failed(reason) => {
                let will_retry =
                    self.stop.is_none() && work.attempts < self.options.max_job_attempts.max(1);
                warn!(chunk, job = %job, attempts = work.attempts, will_retry, reason = %reason, "job failed");
                self.emit(&Event::JobFailed {
                    chunk,
                    job: &job,
                    reason: &reason,
                    will_retry,
                });
                if will_retry {
                    work.resume_job = None;
                    self.ready.push_front(work);
                } else if self.stop.is_some() {
                    work.resume_job = None;
                    self.abandon(&work, Some(&reason));
                } else {
                    let failure = RecordFailure::new(
                        JOB_FAILED,
                        format!(
                            "job `{job}` (chunk {chunk}) failed {} times, last: {reason}",
                            work.attempts
                        ),
                    );
                    let journaled = work
                        .batch
                        .records
                        .iter()
                        .map(|r| JournalOutcome {
                            index: r.index,
                            outcome: RecordOutcome::failed(failure.clone())
                                .with_warnings(r.warnings.iter().cloned()),
                        })
                        .collect();
                    self.finish_chunk(&work, None, journaled);
                }
            }
            PollEnd::Error(error) => {
                let reason = error.to_string();
                self.stop_with(Error::Backend(error));
                let failure = self.unknown_failure(&job, chunk, &reason);
                self.record_all(&work, |_| RecordOutcome::failed(failure.clone()));
            }
        }
    }

    /// Journals, then reports, a chunk's final outcomes.
    fn finish_chunk(&mut self, work: &Work, job: Option<&JobId>, outcomes: Vec<JournalOutcome>) {
        if let Some(journal) = &mut self.journal
            && let Err(e) = journal.finished(work.chunk(), &outcomes)
        {
            self.stop_with(e);
        }
        if let Some(job) = job {
            self.emit(&Event::JobFinished {
                chunk: work.chunk(),
                job,
            });
        }
        for (i, o) in outcomes.iter().enumerate() {
            let r = &work.batch.records[i];
            self.record(
                o.index,
                r.label.as_deref(),
                work.emails[i].as_deref(),
                &o.outcome,
            );
        }
    }
}

/// Waits `transient_backoff × 2^(failures-1)`, at most 32 × `transient_backoff`.
fn backoff(base: Duration, failures: u32) -> Duration {
    base.saturating_mul(1 << failures.saturating_sub(1).min(5))
}

/// What the driver has learnt about how long this provider's jobs take: a smoothed
/// estimate of the moment a job finishes (the midpoint between its last "running"
/// answer and its "finished" one).
///
/// Polling then adapts: a new job is first polled just before the expected end,
/// then in short steps (5% of the estimate, growing ×1.5 up to `poll_max`). Jobs of
/// similar size finish within a few percent of when they really end, with few
/// polls; until a job has finished, `poll_initial` growing ×1.5 is used.
#[derive(Debug, Default)]
struct JobTimer {
    estimate: std::sync::Mutex<Option<Duration>>,
}

impl JobTimer {
    fn get(&self) -> Option<Duration> {
        *self.estimate.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn observe(&self, last_running: Duration, finished: Duration) {
        let sample = (last_running + finished) / 2;
        let mut e = self.estimate.lock().unwrap_or_else(|e| e.into_inner());
        *e = Some(match *e {
            None => sample,
            Some(prev) => prev.mul_f64(0.7) + sample.mul_f64(0.3),
        });
    }

    /// The first wait for a new job, and the step after it.
    fn schedule(&self, options: &DriverOptions) -> (Duration, Duration) {
        match self.get() {
            Some(expected) => (
                expected.mul_f64(0.9).min(options.poll_max),
                expected
                    .mul_f64(0.05)
                    .max(Duration::from_millis(5))
                    .min(options.poll_max),
            ),
            None => (options.poll_initial, options.poll_initial.mul_f64(1.5)),
        }
    }
}

/// Polls one job until it finishes, fails, or polling gives up.
async fn poll_until_done(
    backend: &dyn ImportBackend,
    job: &JobId,
    batch: &Batch,
    options: &DriverOptions,
    observer: &dyn Observer,
    timer: &JobTimer,
) -> PollEnd {
    let started = tokio::time::Instant::now();
    let (mut wait, mut step) = timer.schedule(options);
    let mut last_running = Duration::ZERO;
    let mut transient = 0u32;
    let cap = options.poll_max.max(options.poll_initial);
    loop {
        tokio::time::sleep(wait).await;
        match backend.poll(job, batch).await {
            Ok(JobState::Running { percent }) => {
                transient = 0;
                last_running = started.elapsed();
                debug!(chunk = batch.chunk, job = %job, ?percent, "job running");
                wait = step.min(cap);
                step = step.mul_f64(1.5).min(cap);
            }
            Ok(JobState::Finished(outcomes)) => {
                timer.observe(last_running, started.elapsed());
                return PollEnd::Finished(outcomes);
            }
            // Interim: in-doubt and gone jobs are handled like failed ones until the
            // driver resolves them (issue 12).
            Ok(
                JobState::Failed { reason }
                | JobState::InDoubt { reason }
                | JobState::Gone { reason },
            ) => return PollEnd::Failed(reason),
            Err(BackendError::Transient(message) | BackendError::InDoubt(message)) => {
                transient += 1;
                if transient >= options.max_transient_errors.max(1) {
                    return PollEnd::Error(BackendError::fatal(
                        format!("polling job `{job}` failed {transient} times in a row: {message}"),
                        Some("re-run later, with the same --state to continue".to_owned()),
                    ));
                }
                warn!(chunk = batch.chunk, job = %job, failures = transient, error = %message, "polling failed, retrying");
                observer.event(&Event::Retrying {
                    chunk: batch.chunk,
                    message: &message,
                    failures: transient,
                });
                wait = backoff(options.transient_backoff, transient);
            }
            Err(e @ BackendError::Fatal { .. }) => return PollEnd::Error(e),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod job_timer_tests {
    use super::*;

    #[test]
    fn polling_learns_when_jobs_finish() {
        let options = DriverOptions {
            poll_initial: Duration::from_millis(250),
            poll_max: Duration::from_secs(5),
            ..DriverOptions::default()
        };
        let t = JobTimer::default();
        // Nothing learnt: the configured start.
        assert_eq!(
            t.schedule(&options),
            (Duration::from_millis(250), Duration::from_millis(375))
        );
        // A job last seen running at 400 ms and finished at 600 ms ended near 500 ms.
        t.observe(Duration::from_millis(400), Duration::from_millis(600));
        let (first, step) = t.schedule(&options);
        assert_eq!(
            first,
            Duration::from_millis(450),
            "first poll just before the expected end"
        );
        assert_eq!(step, Duration::from_millis(25), "then steps of 5%");
        // Later samples are smoothed in.
        t.observe(Duration::from_millis(1000), Duration::from_millis(1000));
        assert_eq!(t.get(), Some(Duration::from_millis(650)));
        // Never beyond poll_max.
        t.observe(Duration::from_secs(60), Duration::from_secs(60));
        t.observe(Duration::from_secs(60), Duration::from_secs(60));
        assert!(t.schedule(&options).0 <= options.poll_max);
    }
}
