//! Sending a chunk's requests: the intent first, back-pressure bounded by
//! `--wait-timeout`, quota refusals answered with smaller requests.

use std::time::Duration;

use tracing::{debug, info, warn};

use super::Event;
use super::hook;
use super::poll::backoff;
use super::run::{Flow, Run, Step, Work};
use crate::backend::{BackendError, QuotaRefusal, Submit};
use crate::error::Error;

/// What we wait for while the provider answers busy.
const BUSY_WHAT: &str = "the provider to accept an import job (it is at its limit of running jobs)";

impl Run {
    /// Runs a chunk's steps until it is polling, finished or abandoned.
    pub(super) async fn start(&mut self, mut work: Work) {
        loop {
            let flow = match std::mem::replace(&mut work.step, Step::Submit) {
                Step::Poll { job, part, resumed } => {
                    if resumed {
                        info!(chunk = work.chunk(), job = %job, "polling a job an earlier run submitted");
                        self.emit(&Event::Resumed {
                            chunk: work.chunk(),
                            job: &job,
                        });
                    }
                    work.step = Step::Poll { job, part, resumed };
                    if self.stop.is_some() {
                        Flow::Abandon
                    } else {
                        self.spawn_poll(work);
                        return;
                    }
                }
                step @ Step::Resolve { .. } => self.resolve(&mut work, step).await,
                Step::Submit => self.submit_part(&mut work).await,
            };
            match flow {
                Flow::Continue => {}
                Flow::Abandon => return self.abandon(&work, None),
                Flow::Finish => return self.finish_chunk(&work, None),
            }
        }
    }

    /// Sends the chunk's pending records (as many as the quota lets one request hold).
    async fn submit_part(&mut self, work: &mut Work) -> Flow {
        let pending = work.pending();
        if pending.is_empty() {
            return Flow::Finish;
        }
        let n = pending
            .len()
            .min(self.quota_cap.unwrap_or(usize::MAX).max(1));
        let part = work.part(pending[..n].to_vec());
        let chunk = work.chunk();
        let mut transient = 0u32;
        loop {
            if self.stop.is_some() {
                return Flow::Abandon;
            }
            work.sent += 1;
            let indices: Vec<u64> = part.batch.records.iter().map(|r| r.index).collect();
            if let Some(journal) = &mut self.journal
                && let Err(e) =
                    journal.submitting(chunk, work.sent, &indices, part.whole(work), work.doubt)
            {
                self.stop_with(e);
                return Flow::Abandon;
            }
            hook::reached("before-post");
            let answer = self.backend.submit(&part.batch).await;
            if !matches!(
                answer,
                Ok(Submit::Accepted(_)) | Err(BackendError::InDoubt(_))
            ) && let Some(journal) = &mut self.journal
                && let Err(e) = journal.refused(chunk)
            {
                self.stop_with(e);
            }
            match answer {
                Ok(Submit::Accepted(job)) => {
                    hook::reached("after-post");
                    work.accepted += 1;
                    self.busy_since = None;
                    let count = indices.len();
                    info!(chunk, job = %job, records = count, attempt = work.accepted, "job submitted");
                    if let Some(journal) = &mut self.journal
                        && let Err(e) = journal.submitted(chunk, &job, indices[0], count as u64)
                    {
                        // The job runs anyway: poll it to its end, but stop afterwards.
                        self.stop_with(e);
                    }
                    hook::reached("after-journal");
                    self.emit(&Event::Submitted {
                        chunk,
                        job: &job,
                        records: count,
                        attempt: work.accepted,
                    });
                    work.step = Step::Poll {
                        job,
                        part,
                        resumed: false,
                    };
                    return Flow::Continue;
                }
                Ok(Submit::Busy { retry_after }) => {
                    transient = 0;
                    if !self.wait_busy(chunk, retry_after).await {
                        return Flow::Abandon;
                    }
                }
                Ok(Submit::QuotaExceeded(refusal)) => {
                    let refused = part.positions.len();
                    if refused > 1 {
                        let next = refused / 2;
                        info!(chunk, refused, next, period = %refusal.period, "quota refused the request: sending a smaller one");
                        self.quota_cap = Some(next);
                        self.emit(&Event::QuotaSplit {
                            chunk,
                            refused,
                            next,
                            period: &refusal.period,
                        });
                        return Flow::Continue;
                    }
                    let e = self.quota_error(&refusal);
                    self.stop_with(e);
                    return Flow::Abandon;
                }
                Err(BackendError::InDoubt(message)) => {
                    warn!(chunk, error = %message, "submission in doubt: the provider may have accepted it");
                    work.doubt = true;
                    work.step = Step::Resolve {
                        part,
                        reason: format!("the answer to its request was lost: {message}"),
                    };
                    return Flow::Continue;
                }
                Err(BackendError::Transient(message)) => {
                    transient += 1;
                    if transient >= self.options.max_transient_errors.max(1) {
                        self.stop_with(Error::Backend(BackendError::fatal(
                            format!(
                                "submitting chunk {chunk} failed {transient} times in a row: {message}"
                            ),
                            Some(self.options.resume_hint()),
                        )));
                        return Flow::Abandon;
                    }
                    warn!(chunk, failures = transient, error = %message, "submission failed, retrying");
                    self.emit(&Event::Retrying {
                        chunk,
                        message: &message,
                        failures: transient,
                    });
                    tokio::time::sleep(backoff(self.options.transient_backoff, transient)).await;
                }
                Err(e @ BackendError::Fatal { .. }) => {
                    self.stop_with(Error::Backend(e));
                    return Flow::Abandon;
                }
            }
        }
    }

    /// Waits after a busy answer; `false` when the stretch of back-pressure has
    /// lasted [`DriverOptions::wait_timeout`](super::DriverOptions::wait_timeout)
    /// (the run is then stopped).
    async fn wait_busy(&mut self, chunk: u64, retry_after: Option<Duration>) -> bool {
        let limit = self.options.wait_timeout;
        let since = *self
            .busy_since
            .get_or_insert_with(tokio::time::Instant::now);
        let waited = since.elapsed();
        debug!(
            chunk,
            ?retry_after,
            ?waited,
            running = self.running.len(),
            "provider busy"
        );
        self.emit(&Event::Busy { chunk, retry_after });
        if waited >= limit {
            self.stop_with(Error::Backend(BackendError::fatal(
                format!(
                    "waited {} for {BUSY_WHAT} (limit --wait-timeout {}); stopping: the records not sent are NOT_IMPORTED",
                    human(waited),
                    human(limit)
                ),
                Some(self.options.resume_hint()),
            )));
            return false;
        }
        self.emit(&Event::Waiting {
            chunk,
            what: BUSY_WHAT,
            waited,
            limit,
        });
        let wait = retry_after
            .unwrap_or(self.options.busy_wait)
            .min(limit - waited);
        if self.running.is_empty() {
            tokio::time::sleep(wait).await;
        } else {
            tokio::select! {
                Some(joined) = self.running.join_next_with_id() => self.on_joined(joined),
                () = tokio::time::sleep(wait) => {}
            }
        }
        true
    }

    /// The error that stops a run whose quota is used up.
    fn quota_error(&self, refusal: &QuotaRefusal) -> Error {
        let resets = refusal
            .resets_at
            .or_else(|| next_reset(&refusal.period, jiff::Timestamp::now()))
            .map(|t| format!("; it resets at {} UTC", t.strftime("%Y-%m-%d %H:%M")))
            .unwrap_or_default();
        Error::Backend(BackendError::fatal(
            format!(
                "the provider's {} usage quota is used up ({}){resets}; the records it did not accept are NOT_IMPORTED",
                refusal.period, refusal.message
            ),
            Some(format!(
                "{} once the quota has reset; only the records never accepted are sent",
                self.options.resume_hint()
            )),
        ))
    }
}

/// When a quota period starts again: 00:00 UTC the next day for `day`, the 1st of
/// the next month for `month` (Authgear's periods, per the shared docs).
pub(super) fn next_reset(period: &str, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let utc = jiff::tz::TimeZone::UTC;
    let today = now.to_zoned(utc.clone()).date();
    let start = match period {
        "day" => today.tomorrow().ok()?,
        "month" => today
            .first_of_month()
            .checked_add(jiff::Span::new().months(1))
            .ok()?,
        _ => return None,
    };
    Some(start.to_zoned(utc).ok()?.timestamp())
}

/// `90s`, `12m 5s`, `2h 3m`.
pub(super) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_periods_reset_at_midnight_and_on_the_first() {
        let now: jiff::Timestamp = "2026-12-07T06:15:00Z".parse().unwrap();
        assert_eq!(
            next_reset("day", now).unwrap().to_string(),
            "2026-12-08T00:00:00Z"
        );
        assert_eq!(
            next_reset("month", now).unwrap().to_string(),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(next_reset("week", now), None);
        assert_eq!(human(Duration::from_secs(1800)), "30m 0s");
    }
}
