//! The driver's main loop: chunks from the reader, job slots, polling tasks, the
//! journal, and each record's one final outcome.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tracing::{debug, info, warn};

use super::doubt::from_earlier_attempt;
use super::journal::{ChunkLog, Journal, JournalOutcome, Recorded};
use super::poll::{JobTimer, PollEnd, poll_until_done};
use super::reader::Item;
use super::{
    BACKEND_PROTOCOL, DriverOptions, Event, JOB_FAILED, NOT_IMPORTED, Observer, Summary,
    UNKNOWN_JOB_STATE,
};
use crate::backend::{
    BackendError, Batch, ImportBackend, JobId, Limits, RecordFailure, RecordOutcome,
};
use crate::error::{Error, Result};

/// A chunk on its way through the driver.
pub(super) struct Work {
    pub(super) batch: Arc<Batch>,
    pub(super) emails: Arc<[Option<String>]>,
    /// Final outcomes known so far, by position in the chunk.
    pub(super) outcomes: Vec<Option<RecordOutcome>>,
    /// Jobs of this chunk that failed as a whole (bounded by `max_job_attempts`).
    pub(super) failures: u32,
    /// Requests of this chunk that ended in doubt (bounded by `max_job_attempts`).
    pub(super) doubts: u32,
    /// Requests journaled for this chunk, in every run (the journal's `attempt`).
    pub(super) sent: u32,
    /// Requests the provider accepted in this run (the events' `attempt`).
    pub(super) accepted: u32,
    /// Whether an earlier request of this chunk may have imported its records:
    /// "already exists" answers are then that request's work.
    pub(super) doubt: bool,
    /// What to do next.
    pub(super) step: Step,
}

/// What the caller of a step does next with the chunk.
pub(super) enum Flow {
    /// Run its next step (`work.step`).
    Continue,
    /// Report it as the run stopped (see [`Run::abandon`]).
    Abandon,
    /// Every record has its outcome: finish it.
    Finish,
}

/// The next step of a chunk.
pub(super) enum Step {
    /// Send its pending records (as many as the quota lets one request hold).
    Submit,
    /// Poll this job, which holds `part`.
    Poll {
        job: JobId,
        part: Part,
        /// The job was recorded by an earlier run.
        resumed: bool,
    },
    /// `part` may have been imported: look it up, then resend what is missing.
    Resolve { part: Part, reason: String },
}

/// Some of a chunk's records, as one request.
#[derive(Clone)]
pub(super) struct Part {
    /// Positions in the chunk.
    pub(super) positions: Vec<usize>,
    pub(super) batch: Arc<Batch>,
}

impl Part {
    pub(super) fn whole(&self, work: &Work) -> bool {
        self.positions.len() == work.batch.records.len()
    }
}

impl Work {
    pub(super) fn new(batch: Batch, emails: Vec<Option<String>>) -> Self {
        let n = batch.records.len();
        Self {
            batch: Arc::new(batch),
            emails: emails.into(),
            outcomes: vec![None; n],
            failures: 0,
            doubts: 0,
            sent: 0,
            accepted: 0,
            doubt: false,
            step: Step::Submit,
        }
    }

    pub(super) fn chunk(&self) -> u64 {
        self.batch.chunk
    }

    /// Positions without a final outcome.
    pub(super) fn pending(&self) -> Vec<usize> {
        (0..self.outcomes.len())
            .filter(|&i| self.outcomes[i].is_none())
            .collect()
    }

    /// The request holding these positions.
    pub(super) fn part(&self, positions: Vec<usize>) -> Part {
        let batch = if positions.len() == self.batch.records.len() {
            self.batch.clone()
        } else {
            Arc::new(Batch {
                chunk: self.batch.chunk,
                records: positions
                    .iter()
                    .map(|&p| self.batch.records[p].clone())
                    .collect(),
            })
        };
        Part { positions, batch }
    }

    /// The position of input record `index` in this chunk.
    fn position(&self, index: u64) -> Option<usize> {
        self.batch
            .records
            .binary_search_by_key(&index, |r| r.index)
            .ok()
    }
}

pub(super) struct Run {
    pub(super) backend: Arc<dyn ImportBackend>,
    pub(super) options: DriverOptions,
    observer: Arc<dyn Observer>,
    limits: Limits,
    max_jobs: usize,
    pub(super) summary: Summary,
    pub(super) journal: Option<Journal>,
    /// Chunks waiting for a job slot (resubmissions first).
    ready: VecDeque<Work>,
    pub(super) running: JoinSet<PollEnd>,
    in_flight: HashMap<tokio::task::Id, Work>,
    /// The first error that stopped the run.
    pub(super) stop: Option<Error>,
    abort: Arc<AtomicBool>,
    chunks_seen: u64,
    /// How long jobs take, learnt from the ones that finished.
    job_time: Arc<JobTimer>,
    /// The most records one request may hold after quota refusals.
    pub(super) quota_cap: Option<usize>,
    /// When the current stretch of back-pressure began.
    pub(super) busy_since: Option<tokio::time::Instant>,
}

impl Run {
    pub(super) fn new(
        backend: Arc<dyn ImportBackend>,
        options: DriverOptions,
        observer: Arc<dyn Observer>,
        limits: Limits,
        journal: Option<Journal>,
        abort: Arc<AtomicBool>,
    ) -> Self {
        Self {
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
            quota_cap: None,
            busy_since: None,
        }
    }

    pub(super) async fn dry_run(&mut self, mut rx: mpsc::Receiver<Item>) -> Result<Summary> {
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

    pub(super) async fn run(&mut self, mut rx: mpsc::Receiver<Item>) -> Result<Summary> {
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

    pub(super) fn emit(&self, event: &Event<'_>) {
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
    pub(super) fn stop_with(&mut self, error: Error) {
        if self.stop.is_none() {
            warn!(error = %error, "stopping the run: nothing more will be submitted");
            self.abort.store(true, Ordering::Relaxed);
            self.stop = Some(error);
        }
    }

    pub(super) fn stop_reason(&self) -> String {
        self.stop
            .as_ref()
            .map_or_else(|| "the run stopped".to_owned(), ToString::to_string)
    }

    /// Reports a chunk that will not be (fully) imported in this run: known outcomes
    /// as they are, the records of an in-flight or in-doubt request as unknown (a
    /// resume picks them up), every other pending record `NOT_IMPORTED`.
    pub(super) fn abandon(&mut self, work: &Work, job_failure: Option<&str>) {
        let reason = self.stop_reason();
        let not_imported = match job_failure {
            Some(job_reason) => RecordFailure::new(
                NOT_IMPORTED,
                format!(
                    "not imported: its job failed ({job_reason}) and was not resubmitted because the run stopped: {reason}"
                ),
            ),
            None => RecordFailure::new(
                NOT_IMPORTED,
                format!("not imported: the run stopped before this record was submitted: {reason}"),
            ),
        };
        let (unknown, positions): (Option<RecordFailure>, &[usize]) = match &work.step {
            Step::Submit => (None, &[]),
            Step::Poll { job, part, .. } => (
                Some(self.unknown_failure(job, work.chunk(), &reason)),
                &part.positions,
            ),
            Step::Resolve { part, reason: why } => (
                Some(RecordFailure::new(
                    UNKNOWN_JOB_STATE,
                    format!(
                        "an interrupted request of chunk {} may have imported this record ({why}); {}: {reason}",
                        work.chunk(),
                        self.resume_note()
                    ),
                )),
                &part.positions,
            ),
        };
        debug!(
            chunk = work.chunk(),
            records = work.batch.records.len(),
            "chunk abandoned"
        );
        for (i, r) in work.batch.records.iter().enumerate() {
            let o = match (&work.outcomes[i], &unknown) {
                (Some(o), _) => o.clone(),
                (None, Some(u)) if positions.contains(&i) => {
                    RecordOutcome::failed(u.clone()).with_warnings(r.warnings.iter().cloned())
                }
                (None, _) => RecordOutcome::failed(not_imported.clone())
                    .with_warnings(r.warnings.iter().cloned()),
            };
            self.record(r.index, r.label.as_deref(), work.emails[i].as_deref(), &o);
        }
    }

    fn resume_note(&self) -> &'static str {
        if self.journal.is_some() {
            "re-running with the same --state will find out"
        } else {
            "re-running without a --state file would submit it again (an existing user is then skipped)"
        }
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
                let work = Work::new(batch, emails);
                self.on_chunk(work);
            }
        }
    }

    fn on_chunk(&mut self, work: Work) {
        let recorded = match &self.journal {
            Some(j) if self.stop.is_none() => j.recorded(work.chunk()),
            _ => Recorded::Nothing,
        };
        if self.stop.is_some() {
            return self.abandon(&work, None);
        }
        match recorded {
            Recorded::Nothing => self.ready.push_back(work),
            Recorded::Partial(log) => self.resume_chunk(work, log),
            Recorded::Finished => self.replay(&work),
        }
    }

    /// Continues a chunk an earlier run started.
    fn resume_chunk(&mut self, mut work: Work, log: ChunkLog) {
        let chunk = work.chunk();
        for o in log.done {
            let Some(p) = work.position(o.index) else {
                let e = self.input_changed(
                    chunk,
                    format!("it records an outcome of record {} in chunk {chunk}, which the input no longer puts there", o.index),
                );
                self.stop_with(e);
                return self.abandon(&work, None);
            };
            work.outcomes[p] = Some(o.outcome);
        }
        work.sent = log.attempts;
        work.doubt = log.doubt;
        if let Some(last) = log.last {
            let first = work.batch.records.first().map_or(0, |r| r.index);
            let count = work.batch.records.len() as u64;
            let positions: Option<Vec<usize>> = match &last.indices {
                None if last.first_index == first && last.count == count => {
                    Some((0..work.batch.records.len()).collect())
                }
                None => None,
                Some(indices) => indices.iter().map(|&i| work.position(i)).collect(),
            };
            let Some(positions) =
                positions.filter(|p| p.iter().all(|&p| work.outcomes[p].is_none()))
            else {
                let e = self.input_changed(
                    chunk,
                    format!(
                        "it records a request of chunk {chunk} for records {}.. ({} of them) that the input no longer puts in it",
                        last.first_index, last.count
                    ),
                );
                self.stop_with(e);
                if let Some(job) = last.job {
                    // Its job may hold other records: report them as unknown.
                    let part = work.part(
                        (0..work.batch.records.len())
                            .filter(|&p| work.outcomes[p].is_none())
                            .collect(),
                    );
                    work.step = Step::Poll {
                        job,
                        part,
                        resumed: true,
                    };
                }
                return self.abandon(&work, None);
            };
            work.doubt |= last.doubt;
            let part = work.part(positions);
            work.step = match last.job {
                Some(job) => Step::Poll {
                    job,
                    part,
                    resumed: true,
                },
                None => {
                    work.doubt = true;
                    Step::Resolve {
                        part,
                        reason: "an earlier run stopped after sending it and before recording the provider's answer".to_owned(),
                    }
                }
            };
        }
        if work.pending().is_empty() {
            return self.finish_chunk(&work, None);
        }
        self.ready.push_back(work);
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

    pub(super) fn spawn_poll(&mut self, work: Work) {
        let Step::Poll { job, part, .. } = &work.step else {
            unreachable!("spawn_poll without a job");
        };
        let backend = self.backend.clone();
        let batch = part.batch.clone();
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
        self.in_flight.insert(handle.id(), work);
    }

    pub(super) fn on_joined(&mut self, joined: Result<(tokio::task::Id, PollEnd), JoinError>) {
        let (id, end) = match joined {
            Ok((id, end)) => (id, Ok(end)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(work) = self.in_flight.remove(&id) else {
            warn!("a polling task ended that the driver does not know");
            return;
        };
        match end {
            Ok(end) => self.job_done(work, end),
            Err(e) => {
                let error = BackendError::fatal(format!("polling a job failed: {e}"), None);
                self.job_done(work, PollEnd::Error(error));
            }
        }
    }

    fn job_done(&mut self, mut work: Work, end: PollEnd) {
        let chunk = work.chunk();
        let Step::Poll { job, part, .. } = std::mem::replace(&mut work.step, Step::Submit) else {
            unreachable!("a job ended for a chunk that was not polling");
        };
        match end {
            PollEnd::Finished(outcomes) => {
                let n = part.positions.len();
                let got = outcomes.len();
                if got != n {
                    warn!(chunk, job = %job, expected = n, got, "backend answered the wrong number of outcomes");
                }
                let mut outcomes = outcomes.into_iter();
                let mut journaled = Vec::with_capacity(n);
                for &p in &part.positions {
                    let r = &work.batch.records[p];
                    let outcome = outcomes.next().unwrap_or_else(|| {
                        RecordOutcome::failed(RecordFailure::new(
                            BACKEND_PROTOCOL,
                            format!(
                                "job `{job}` answered {got} outcomes for {n} records: no outcome for this record"
                            ),
                        ))
                    });
                    let outcome = if work.doubt {
                        from_earlier_attempt(outcome)
                    } else {
                        outcome
                    };
                    let mut warnings = r.warnings.clone();
                    warnings.extend(outcome.warnings);
                    let outcome = RecordOutcome {
                        warnings,
                        ..outcome
                    };
                    journaled.push(JournalOutcome {
                        index: r.index,
                        outcome: outcome.clone(),
                    });
                    work.outcomes[p] = Some(outcome);
                }
                info!(chunk, job = %job, records = n, "job finished");
                self.part_done(work, Some(&job), &journaled);
            }
            PollEnd::Failed(reason) => {
                work.failures += 1;
                let will_retry =
                    self.stop.is_none() && work.failures < self.options.max_job_attempts.max(1);
                warn!(chunk, job = %job, failures = work.failures, will_retry, reason = %reason, "job failed");
                self.emit(&Event::JobFailed {
                    chunk,
                    job: &job,
                    reason: &reason,
                    will_retry,
                });
                if will_retry {
                    self.ready.push_front(work);
                } else if self.stop.is_some() {
                    self.abandon(&work, Some(&reason));
                } else {
                    let failure = RecordFailure::new(
                        JOB_FAILED,
                        format!(
                            "job `{job}` (chunk {chunk}) failed {} times, last: {reason}",
                            work.failures
                        ),
                    );
                    let journaled: Vec<JournalOutcome> = part
                        .positions
                        .iter()
                        .map(|&p| {
                            let r = &work.batch.records[p];
                            let o = RecordOutcome::failed(failure.clone())
                                .with_warnings(r.warnings.iter().cloned());
                            work.outcomes[p] = Some(o.clone());
                            JournalOutcome {
                                index: r.index,
                                outcome: o,
                            }
                        })
                        .collect();
                    self.part_done(work, None, &journaled);
                }
            }
            PollEnd::InDoubt(reason) => {
                warn!(chunk, job = %job, reason = %reason, "job ended in doubt");
                work.doubt = true;
                let reason = format!("job `{job}` ended without outcomes: {reason}");
                work.step = Step::Resolve { part, reason };
                if self.stop.is_some() {
                    self.abandon(&work, None);
                } else {
                    self.ready.push_front(work);
                }
            }
            PollEnd::Error(error) => {
                self.stop_with(Error::Backend(error));
                work.step = Step::Poll {
                    job,
                    part,
                    resumed: false,
                };
                self.abandon(&work, None);
            }
        }
    }

    /// Journals outcomes of part of a chunk; finishes the chunk if they were the
    /// last, or queues the rest.
    pub(super) fn part_done(
        &mut self,
        work: Work,
        job: Option<&JobId>,
        outcomes: &[JournalOutcome],
    ) {
        if work.outcomes.iter().all(Option::is_some) {
            return self.finish_chunk(&work, job);
        }
        if let Some(journal) = &mut self.journal
            && let Err(e) = journal.part(work.chunk(), outcomes)
        {
            self.stop_with(e);
        }
        if let Some(job) = job {
            self.emit(&Event::JobFinished {
                chunk: work.chunk(),
                job,
            });
        }
        if self.stop.is_some() {
            self.abandon(&work, None);
        } else {
            self.ready.push_front(work);
        }
    }

    /// Journals, then reports, a chunk's final outcomes.
    pub(super) fn finish_chunk(&mut self, work: &Work, job: Option<&JobId>) {
        let outcomes: Vec<JournalOutcome> = work
            .batch
            .records
            .iter()
            .zip(&work.outcomes)
            .map(|(r, o)| JournalOutcome {
                index: r.index,
                // Callers finish a chunk only when every record has its outcome.
                outcome: o.clone().unwrap_or_else(|| {
                    RecordOutcome::failed(RecordFailure::new(
                        UNKNOWN_JOB_STATE,
                        "the driver finished this record's chunk without an outcome for it (a bug); re-running with the same --state sends it again",
                    ))
                }),
            })
            .collect();
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
