//! Polling a job until it ends, adaptively.

use std::time::Duration;

use tracing::{debug, warn};

use super::{DriverOptions, Event, Observer, hook};
use crate::backend::{BackendError, Batch, ImportBackend, JobId, JobState, RecordOutcome};

/// How a job's polling ended.
pub(super) enum PollEnd {
    Finished(Vec<RecordOutcome>),
    /// The job failed as a whole; nothing of it was imported.
    Failed(String),
    /// The job ended (or vanished) without outcomes and may have imported some.
    InDoubt(String),
    Error(BackendError),
}

/// Waits `transient_backoff × 2^(failures-1)`, at most 32 × `transient_backoff`.
pub(super) fn backoff(base: Duration, failures: u32) -> Duration {
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
pub(super) struct JobTimer {
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
pub(super) async fn poll_until_done(
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
                hook::reached("polling");
                wait = step.min(cap);
                step = step.mul_f64(1.5).min(cap);
            }
            Ok(JobState::Finished(outcomes)) => {
                timer.observe(last_running, started.elapsed());
                return PollEnd::Finished(outcomes);
            }
            Ok(JobState::Failed { reason }) => return PollEnd::Failed(reason),
            Ok(JobState::InDoubt { reason } | JobState::Gone { reason }) => {
                return PollEnd::InDoubt(reason);
            }
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
