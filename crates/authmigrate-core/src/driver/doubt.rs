//! Requests in doubt: the provider may have accepted them without our knowing.
//!
//! The records of such a request are looked up first ([`ImportBackend::resolve`]);
//! those found are the earlier attempt's work. The rest are sent again, and the
//! "already exists" answers to that request are the earlier attempt's work too:
//! `skipped`, never `failed`.
//!
//! [`ImportBackend::resolve`]: crate::backend::ImportBackend::resolve

use tracing::{info, warn};

use super::Event;
use super::journal::JournalOutcome;
use super::poll::backoff;
use super::run::{Flow, Run, Step, Work};
use crate::backend::{BackendError, Outcome, RecordOutcome};
use crate::error::Error;

/// The warning on an outcome an earlier, interrupted attempt produced.
pub(super) const FROM_EARLIER_ATTEMPT: &str =
    "already at the provider: imported by an earlier, interrupted attempt of this import";

/// Auth0's code for a user that already exists (without upsert).
const DUPLICATED_USER: &str = "DUPLICATED_USER";

/// Whether a failed answer says the user already exists.
fn already_exists(o: &RecordOutcome) -> bool {
    o.code.as_deref() == Some(DUPLICATED_USER)
        || o.message
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains("already exist"))
}

/// An answer to a request that resent records an earlier request may have
/// imported: "already exists" is that request's work.
pub(super) fn from_earlier_attempt(o: RecordOutcome) -> RecordOutcome {
    match o.outcome {
        Outcome::Skipped => o.with_warnings([FROM_EARLIER_ATTEMPT.to_owned()]),
        Outcome::Failed if already_exists(&o) => RecordOutcome {
            outcome: Outcome::Skipped,
            ..o
        }
        .with_warnings([FROM_EARLIER_ATTEMPT.to_owned()]),
        _ => o,
    }
}

impl Run {
    /// Looks up the records of a request in doubt; records what was found and
    /// queues the rest to be sent again.
    pub(super) async fn resolve(&mut self, work: &mut Work, step: Step) -> Flow {
        let Step::Resolve { part, reason } = step else {
            unreachable!("resolve without a request in doubt");
        };
        let chunk = work.chunk();
        info!(chunk, records = part.positions.len(), reason = %reason, "request in doubt: looking its records up");
        self.emit(&Event::InDoubt {
            chunk,
            records: part.positions.len(),
            reason: &reason,
        });
        let mut transient = 0u32;
        let answer = loop {
            if self.stop.is_some() {
                work.step = Step::Resolve { part, reason };
                return Flow::Abandon;
            }
            match self.backend.resolve(&part.batch).await {
                Ok(answer) => break answer,
                Err(BackendError::Transient(message) | BackendError::InDoubt(message)) => {
                    transient += 1;
                    if transient >= self.options.max_transient_errors.max(1) {
                        self.stop_with(Error::Backend(BackendError::fatal(
                            format!("looking up the records of chunk {chunk} failed {transient} times in a row: {message}"),
                            Some(self.options.resume_hint()),
                        )));
                        work.step = Step::Resolve { part, reason };
                        return Flow::Abandon;
                    }
                    self.emit(&Event::Retrying {
                        chunk,
                        message: &message,
                        failures: transient,
                    });
                    tokio::time::sleep(backoff(self.options.transient_backoff, transient)).await;
                }
                Err(e @ BackendError::Fatal { .. }) => {
                    self.stop_with(Error::Backend(e));
                    work.step = Step::Resolve { part, reason };
                    return Flow::Abandon;
                }
            }
        };
        let answer = match answer {
            Some(v) if v.len() == part.positions.len() => v,
            Some(v) => {
                warn!(
                    chunk,
                    expected = part.positions.len(),
                    got = v.len(),
                    "backend resolved the wrong number of records: sending them all again"
                );
                vec![None; part.positions.len()]
            }
            None => vec![None; part.positions.len()],
        };
        let mut found = Vec::new();
        let mut resend = Vec::new();
        for (&p, o) in part.positions.iter().zip(answer) {
            match o {
                Some(o) => {
                    let r = &work.batch.records[p];
                    let o = o
                        .with_warnings([FROM_EARLIER_ATTEMPT.to_owned()])
                        .with_warnings(r.warnings.iter().cloned());
                    found.push(JournalOutcome {
                        index: r.index,
                        outcome: o.clone(),
                    });
                    work.outcomes[p] = Some(o);
                }
                None => resend.push(p),
            }
        }
        self.emit(&Event::Resolved {
            chunk,
            found: found.len(),
            resend: resend.len(),
        });
        if !found.is_empty()
            && !work.outcomes.iter().all(Option::is_some)
            && let Some(journal) = &mut self.journal
            && let Err(e) = journal.part(chunk, &found)
        {
            self.stop_with(e);
        }
        if work.outcomes.iter().all(Option::is_some) {
            return Flow::Finish;
        }
        if resend.is_empty() {
            return Flow::Continue;
        }
        work.doubts += 1;
        if work.doubts > self.options.max_job_attempts.max(1) {
            self.stop_with(Error::Backend(BackendError::fatal(
                format!(
                    "chunk {chunk}: {} requests in a row ended in doubt (last: {reason})",
                    work.doubts
                ),
                Some(self.options.resume_hint()),
            )));
            work.step = Step::Resolve {
                part: work.part(resend),
                reason,
            };
            return Flow::Abandon;
        }
        work.doubt = true;
        Flow::Continue
    }
}
