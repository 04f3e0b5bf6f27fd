//! `authmigrate import --to auth0|authgear FILE...`: any supported input, through the
//! one generic driver, with a report, `--json` events, a progress bar and resume.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use authmigrate_core::backend::{ImportBackend, Outcome, RecordOutcome};
use authmigrate_core::driver::{DriverOptions, Event, InputRecord, Observer, Summary, run_import};
use authmigrate_core::io::ReaderStatus;
use authmigrate_core::report::{ReportObserver, ReportWriter};
use indicatif::ProgressBar;
use serde_json::json;

use super::mfa_join::{MfaTap, TotpMarks, UPDATED_WARNING};
use crate::Status;
use crate::cli::{ImportArgs, Provider};
use crate::input::{Inputs, Native, Records, survey};
use crate::output::Output;

pub(crate) fn run(args: ImportArgs, out: &Output) -> anyhow::Result<Status> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args, out))
}

async fn run_async(args: ImportArgs, out: &Output) -> anyhow::Result<Status> {
    if args.to == Provider::Auth0 && args.mode == crate::cli::Auth0Mode::Create {
        for (flag, given) in [
            ("--password-hashes", args.password_hashes.is_some()),
            ("--mfa-secrets", args.mfa_secrets.is_some()),
        ] {
            if given {
                anyhow::bail!(
                    "`{flag}` needs `--mode bulk`: `--mode create` creates each user with a random password and no MFA factor"
                );
            }
        }
        return super::create::run(&args, out).await;
    }
    if args.mfa_secrets.is_some() {
        super::mfa_join::check_inputs(&args.files)?;
    }
    // Read every input once first: a broken file is refused before anything is sent.
    let survey = survey(&args.files)?;
    let backend = crate::backends::import_backend(&args)?;
    let mfa = match &args.mfa_secrets {
        Some(path) => Some(super::mfa_join::load(path, out)?),
        None => None,
    };
    // Authgear imports `mfa` on insert only.
    let totp_ignored_on_update = args.run.upsert && args.to == Provider::Authgear;
    if mfa.is_some() && totp_ignored_on_update {
        out.say(super::mfa_join::UPSERT_NOTE);
    }
    let fingerprint = fingerprint(&args, survey.fingerprint);
    let options = DriverOptions {
        dry_run: args.run.dry_run,
        state: args.run.state.clone(),
        fingerprint,
        poll_initial: POLL.0,
        poll_max: POLL.1,
        wait_timeout: args.run.wait_timeout,
        resume_command: resume_command(&args.run),
        ..DriverOptions::default()
    };
    let native = match args.to {
        Provider::Auth0 => Native::Auth0,
        Provider::Authgear => {
            let o = crate::commands::authgear_options(&args.map)?;
            Native::Authgear(o.identifier, o.reserved_usernames)
        }
    };
    let inputs = Inputs::new(args.files.clone()).native(native);
    let mut readers = inputs.error_handles();
    // Password hashes first, then TOTP secrets, as `migrate` joins them.
    let records: Records = match &args.password_hashes {
        Some(path) => {
            let joined = super::hashes::join_checked(inputs, path, out)?;
            readers.push(joined.status());
            Box::new(joined)
        }
        None => Box::new(inputs),
    };
    let (records, mfa) = match mfa {
        Some(secrets) => {
            let (records, tap) = super::mfa_join::join(records, secrets, totp_ignored_on_update);
            (records, Some(tap))
        }
        None => (records, None),
    };
    let run = Run {
        options,
        report: args.run.report.clone(),
        total: survey.records,
        daily_quota: args.run.daily_quota,
    };
    import_with(backend, records, readers, run, out, mfa.as_ref()).await
}

/// The command that resumes this run: this very command line, when it has a `--state`.
pub(crate) fn resume_command(run: &crate::cli::RunArgs) -> Option<String> {
    run.state.as_ref()?;
    crate::command_line().map(str::to_owned)
}

/// What one import run needs besides the backend and its records.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) options: DriverOptions,
    pub(crate) report: Option<PathBuf>,
    /// Records to expect (for the progress bar), if known.
    pub(crate) total: Option<u64>,
    /// `--daily-quota` (dry run: how many days the import needs).
    pub(crate) daily_quota: Option<u64>,
}

/// Runs one import with the CLI's observers (report, `--json`, progress) and turns
/// the result into an exit status. Shared by `import`, `migrate` and `demo`.
pub(crate) async fn import(
    backend: Arc<dyn ImportBackend>,
    records: Box<dyn Iterator<Item = InputRecord> + Send>,
    readers: Vec<ReaderStatus>,
    run: Run,
    out: &Output,
) -> anyhow::Result<Status> {
    import_with(backend, records, readers, run, out, None).await
}

/// [`import`], counting a `--mfa-secrets` join: its counts go into the `summary`
/// event, and with [`MfaTap::marks`] each updated user whose TOTP secret the target
/// ignored gets a warning (on stderr, in the report and in its `record` event).
async fn import_with(
    backend: Arc<dyn ImportBackend>,
    records: Box<dyn Iterator<Item = InputRecord> + Send>,
    readers: Vec<ReaderStatus>,
    run: Run,
    out: &Output,
    mfa: Option<&MfaTap>,
) -> anyhow::Result<Status> {
    let Run {
        options,
        report,
        total,
        daily_quota,
    } = run;
    let dry_run = options.dry_run;
    let target = backend.name();
    let report = match &report {
        Some(path) => Some(ReportObserver::new(ReportWriter::create(path.clone())?)),
        None => None,
    };
    let observer = Arc::new(CliObserver {
        out: out.clone(),
        bar: out.bar(
            total.unwrap_or(0),
            if dry_run { "planning" } else { "importing" },
        ),
        plain: !out.json(),
        in_flight: AtomicI64::new(0),
        waiting_logged: AtomicU64::new(u64::MAX),
        summary: Mutex::new(Summary::default()),
        report,
        totp_marks: mfa.and_then(|m| m.marks.clone()),
    });
    let result = run_import(backend, records, options, observer.clone()).await;
    observer.bar.finish_and_clear();

    let mut summary = *observer.summary.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(report) = &observer.report {
        report.finish(&summary).context("cannot write the report")?;
    }
    if let (true, Ok(planned)) = (dry_run, &result) {
        // A dry run reports only the records that cannot be sent (and so does its
        // report); the driver's summary also counts the planned ones.
        summary = *planned;
    }
    let read_error = readers.iter().find_map(|r| r.take_error());
    // The quota is reserved per request, all or nothing; the driver fills it exactly
    // (halving its requests), so the days are the records over the daily quota.
    let days = daily_quota
        .filter(|_| dry_run)
        .map(|q| summary.planned.div_ceil(q));
    let totp_ignored = observer
        .totp_marks
        .as_ref()
        .map_or(0, |m| m.ignored.load(Ordering::Relaxed));
    if let Some(tap) = mfa {
        tap.events(out);
        if totp_ignored > 0 {
            out.event("mfa_not_carried", json!({ "updated_users": totp_ignored }));
        }
    }
    out.event(
        "summary",
        json!({ "target": target, "dry_run": dry_run, "summary": summary, "days": days }),
    );
    let result = result.map_err(|e| match e {
        authmigrate_core::Error::Backend(be) => crate::backends::backend_error(be),
        other => other.into(),
    });
    if result.is_err() && summary.total == 0 {
        // Nothing was read or sent (credentials, connection...): only the error matters.
        return result.map(|_| Status::Ok);
    }
    let verb = if dry_run { "planned" } else { "imported" };
    out.say(format!(
        "{verb} into {target}: {} records: {} inserted, {} updated, {} skipped, {} failed{}",
        summary.total,
        summary.inserted,
        summary.updated,
        summary.skipped,
        summary.failed,
        if dry_run {
            format!(", {} would be sent", summary.planned)
        } else {
            String::new()
        }
    ));
    if let Some(tap) = mfa {
        tap.say(out);
        if totp_ignored > 0 {
            out.say(format!(
                "mfa: of those, {totp_ignored} users were updated: Authgear ignores `mfa.totp` on update, their TOTP secret was not carried"
            ));
        }
    }
    if let (Some(days), Some(q)) = (days, daily_quota) {
        out.say(format!(
            "with a daily quota of {q} records: {days} day(s) ({} records); after each day's stop, resume with the same --state",
            summary.planned
        ));
    }
    match (result, read_error) {
        (Err(e), _) => Err(e),
        (Ok(_), Some(e)) => {
            Err(anyhow::Error::new(e).context("an input file could not be read to its end"))
        }
        (Ok(_), None) if summary.failed > 0 => Ok(Status::SomeFailed),
        (Ok(_), None) => Ok(Status::Ok),
    }
}

/// Identifies a run for the resume journal: the target, the inputs and every option
/// that changes what is sent.
fn fingerprint(args: &ImportArgs, inputs: u64) -> String {
    let mut h = DefaultHasher::new();
    inputs.hash(&mut h);
    format!("{:?}", args.to).hash(&mut h);
    args.run.upsert.hash(&mut h);
    args.connection.hash(&mut h);
    args.map.identifier.hash(&mut h);
    args.map.custom_attributes.hash(&mut h);
    // What the joins add changes what is sent (hashed only when given, so that the
    // journals of runs without them keep their fingerprint).
    for (flag, path) in [
        ("password-hashes", &args.password_hashes),
        ("mfa-secrets", &args.mfa_secrets),
    ] {
        if let Some(path) = path {
            flag.hash(&mut h);
            std::fs::metadata(path).ok().map(|m| m.len()).hash(&mut h);
        }
    }
    format!("{:016x}", h.finish())
}

/// Fans driver events out to the report, `--json` lines, the progress bar and
/// plain log lines.
struct CliObserver {
    out: Output,
    bar: ProgressBar,
    plain: bool,
    in_flight: AtomicI64,
    /// The last 30-second step of waiting that was logged.
    waiting_logged: AtomicU64,
    summary: Mutex<Summary>,
    report: Option<ReportObserver>,
    /// The records that went out with a TOTP secret the target ignores on update.
    totp_marks: Option<Arc<TotpMarks>>,
}

impl CliObserver {
    /// The outcome of an updated record that went out with a TOTP secret the target
    /// ignores on update, with a warning saying so (and counted); `None` otherwise.
    fn totp_ignored(&self, event: &Event<'_>) -> Option<RecordOutcome> {
        let marks = self.totp_marks.as_ref()?;
        let Event::Record {
            index,
            email,
            outcome,
            ..
        } = *event
        else {
            return None;
        };
        if outcome.outcome != Outcome::Updated || !marks.contains(index) {
            return None;
        }
        marks.ignored.fetch_add(1, Ordering::Relaxed);
        let who = email.map(|e| format!(" `{e}`")).unwrap_or_default();
        self.bar.suspend(|| {
            self.out.say(format!(
                "warning: record {index}{who} was updated: Authgear ignores `mfa.totp` on update, its TOTP secret was not carried"
            ))
        });
        let mut amended = outcome.clone();
        amended.warnings.push(UPDATED_WARNING.to_owned());
        Some(amended)
    }
}

impl Observer for CliObserver {
    fn event(&self, event: &Event<'_>) {
        let amended = self.totp_ignored(event);
        let rebuilt;
        let event = match (&amended, event) {
            (
                Some(outcome),
                &Event::Record {
                    index,
                    label,
                    email,
                    ..
                },
            ) => {
                rebuilt = Event::Record {
                    index,
                    label,
                    email,
                    outcome,
                };
                &rebuilt
            }
            _ => event,
        };
        if let Some(report) = &self.report {
            report.event(event);
        }
        match *event {
            Event::Planned {
                chunk,
                records,
                bytes,
                fill,
            } => {
                self.out.event(
                    "chunk_planned",
                    json!({ "chunk": chunk, "records": records, "bytes": bytes, "fill": fill }),
                );
            }
            Event::Submitted {
                chunk,
                job,
                records,
                attempt,
            } => {
                let n = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                self.bar.set_message(format!("{n} jobs in flight"));
                self.out.event(
                    "job_submitted",
                    json!({ "chunk": chunk, "job": job.0, "records": records, "attempt": attempt }),
                );
                tracing::info!(chunk, job = %job, records, "job submitted");
            }
            Event::Resumed { chunk, job } => {
                let n = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                self.bar.set_message(format!("{n} jobs in flight"));
                self.out
                    .event("job_resumed", json!({ "chunk": chunk, "job": job.0 }));
            }
            Event::Replayed { chunk, records } => {
                self.out.event(
                    "chunk_replayed",
                    json!({ "chunk": chunk, "records": records }),
                );
                if self.plain {
                    self.bar.suspend(|| {
                        self.out.say(format!(
                            "chunk {chunk}: {records} records already done in an earlier run"
                        ))
                    });
                }
            }
            Event::Busy { chunk, retry_after } => {
                self.out.event("busy", json!({ "chunk": chunk, "retry_after_ms": retry_after.map(|d| d.as_millis() as u64) }));
            }
            Event::Waiting {
                chunk,
                what,
                waited,
                limit,
            } => {
                self.out.event(
                    "waiting",
                    json!({ "chunk": chunk, "what": what, "waited_ms": waited.as_millis() as u64, "limit_ms": limit.as_millis() as u64 }),
                );
                self.bar.set_message(format!(
                    "waiting {}s of at most {}s for {what}",
                    waited.as_secs(),
                    limit.as_secs()
                ));
                // Once per 30 s of waiting in plain output.
                if self.plain
                    && self.bar.is_hidden()
                    && waited.as_secs() / 30
                        != self
                            .waiting_logged
                            .swap(waited.as_secs() / 30, Ordering::Relaxed)
                {
                    self.out.say(format!(
                        "chunk {chunk}: waiting for {what}: {}s so far (--wait-timeout {}s)",
                        waited.as_secs(),
                        limit.as_secs()
                    ));
                }
            }
            Event::QuotaSplit {
                chunk,
                refused,
                next,
                period,
            } => {
                self.out.event(
                    "quota_split",
                    json!({ "chunk": chunk, "refused": refused, "next": next, "period": period }),
                );
                if self.plain {
                    self.bar.suspend(|| {
                        self.out.say(format!(
                            "chunk {chunk}: the {period} quota refused {refused} records; sending {next} at a time"
                        ))
                    });
                }
            }
            Event::InDoubt {
                chunk,
                records,
                reason,
            } => {
                self.out.event(
                    "in_doubt",
                    json!({ "chunk": chunk, "records": records, "reason": reason }),
                );
                if self.plain {
                    self.bar.suspend(|| {
                        self.out.say(format!(
                            "chunk {chunk}: {records} records may already be imported ({reason}): looking them up"
                        ))
                    });
                }
            }
            Event::Resolved {
                chunk,
                found,
                resend,
            } => {
                self.out.event(
                    "resolved",
                    json!({ "chunk": chunk, "found": found, "resend": resend }),
                );
                if self.plain {
                    self.bar.suspend(|| {
                        self.out.say(format!(
                            "chunk {chunk}: {found} found at the provider (imported by the earlier attempt), {resend} to send again"
                        ))
                    });
                }
            }
            Event::Retrying {
                chunk,
                message,
                failures,
            } => {
                self.out.event(
                    "retrying",
                    json!({ "chunk": chunk, "message": message, "failures": failures }),
                );
            }
            Event::JobFinished { chunk, job } => {
                let n = self.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
                self.bar.set_message(format!("{} jobs in flight", n.max(0)));
                self.out
                    .event("job_finished", json!({ "chunk": chunk, "job": job.0 }));
                if self.plain && self.bar.is_hidden() {
                    self.out.say(format!("job {job} (chunk {chunk}) finished"));
                }
            }
            Event::JobFailed {
                chunk,
                job,
                reason,
                will_retry,
            } => {
                let n = self.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
                self.bar.set_message(format!("{} jobs in flight", n.max(0)));
                self.out.event("job_failed", json!({ "chunk": chunk, "job": job.0, "reason": reason, "will_retry": will_retry }));
                self.bar.suspend(|| {
                    self.out.say(format!(
                        "job {job} (chunk {chunk}) failed: {reason}{}",
                        if will_retry {
                            "; submitting it again"
                        } else {
                            ""
                        }
                    ))
                });
            }
            Event::Record {
                index,
                email,
                outcome,
                ..
            } => {
                self.summary
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .add(outcome.outcome);
                self.bar.inc(1);
                self.out.event(
                    "record",
                    json!({ "index": index, "email": email, "outcome": outcome.outcome, "user_id": outcome.user_id,
                            "code": outcome.code, "message": outcome.message, "warnings": outcome.warnings }),
                );
                if outcome.outcome == Outcome::Failed && self.plain {
                    let who = email.map(|e| format!(" `{e}`")).unwrap_or_default();
                    self.bar.suspend(|| {
                        self.out.say(format!(
                            "record {index}{who}: failed: {}: {}",
                            outcome.code.as_deref().unwrap_or("FAILED"),
                            outcome.message.as_deref().unwrap_or("")
                        ))
                    });
                }
            }
            _ => {}
        }
    }
}

/// How long the CLI waits between polls of a job (the driver backs off ×1.5 up to the max).
pub(crate) const POLL: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));
