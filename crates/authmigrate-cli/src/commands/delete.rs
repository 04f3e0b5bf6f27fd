//! `authmigrate delete --from auth0|authgear`: look the selected users up, list them,
//! ask (or need `--yes`), delete them through the core engine, report each one.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use authmigrate_auth0::users::Auth0Users;
use authmigrate_authgear::delete::AuthgearUsers;
use authmigrate_core::delete::{
    Action, DeleteOptions, DeleteOutcome, Key, Outcome, Planned, Selection, UserDirectory, execute,
    plan,
};
use serde_json::{Value, json};

use crate::Status;
use crate::backends::{auth0_settings, authgear_settings, backend_error};
use crate::cli::{DeleteArgs, MapArgs, Provider};
use crate::output::Output;

pub(crate) fn run(args: DeleteArgs, out: &Output) -> anyhow::Result<Status> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args, out))
}

fn selection(args: &DeleteArgs) -> anyhow::Result<Selection> {
    let mut s = if let Some(prefix) = &args.prefix {
        let domain = args.domain.as_deref().unwrap_or("example.com");
        Selection::generated(prefix, args.count.unwrap_or(0), args.start, domain)
    } else if let Some(path) = &args.id_map {
        Selection::id_map(path)?
    } else if let Some(path) = &args.emails {
        Selection::emails_file(path)?
    } else {
        anyhow::bail!("select users with one of --prefix/--count, --id-map or --emails");
    };
    if args.prefix.is_none() {
        s.domain = args.domain.clone();
    }
    Ok(s)
}

fn directory(args: &DeleteArgs) -> anyhow::Result<Arc<dyn UserDirectory>> {
    Ok(match args.from {
        Provider::Auth0 => {
            let mut s = auth0_settings(&args.auth0)?;
            s.connection = args.connection.clone();
            Arc::new(Auth0Users::new(&s).map_err(backend_error)?)
        }
        Provider::Authgear => {
            let s = authgear_settings(&args.authgear, &MapArgs::default())?;
            Arc::new(AuthgearUsers::new(&s).map_err(backend_error)?)
        }
    })
}

/// Identifies a run for the journal: the provider, the selection and the options
/// that change what is deleted.
fn fingerprint(args: &DeleteArgs, selection: &Selection) -> String {
    let mut h = DefaultHasher::new();
    format!("{:?}", args.from).hash(&mut h);
    selection.keys.hash(&mut h);
    selection.domain.hash(&mut h);
    args.force.hash(&mut h);
    args.connection.hash(&mut h);
    format!("delete-{:016x}", h.finish())
}

pub(super) async fn run_async(args: DeleteArgs, out: &Output) -> anyhow::Result<Status> {
    let selection = selection(&args)?;
    let directory = directory(&args)?;
    let name = directory.name();
    let options = DeleteOptions {
        force: args.force,
        concurrency: args.concurrency.unwrap_or(match args.from {
            Provider::Auth0 => 16,
            Provider::Authgear => 4,
        }),
        state: args.state.clone(),
        fingerprint: fingerprint(&args, &selection),
    };
    let bar = out.bar(selection.keys.len() as u64, "looking up");
    let planned = plan(directory.as_ref(), &selection, &options)
        .await
        .map_err(|e| match e {
            authmigrate_core::Error::Backend(be) => backend_error(be),
            other => other.into(),
        })?;
    bar.finish_and_clear();
    let to_delete: usize = planned
        .iter()
        .map(|p| match &p.action {
            Action::Delete(users) => users.len(),
            Action::Done(_) => 0,
        })
        .sum();
    list(&planned, name, out);
    if args.dry_run {
        let mut summary = Summary::default();
        for p in &planned {
            if let Action::Done(o) = &p.action {
                summary.add(o.outcome);
            }
        }
        out.event(
            "summary",
            json!({ "from": name, "dry_run": true, "would_delete": to_delete, "summary": summary.json(selection.keys.len()) }),
        );
        out.say(format!(
            "dry run: would delete {to_delete} users from {name}; nothing was changed"
        ));
        return Ok(Status::Ok);
    }
    if to_delete > 0 && !args.yes {
        confirm(to_delete, name)?;
    }

    let outcomes: Mutex<Vec<DeleteOutcome>> = Mutex::new(Vec::with_capacity(planned.len()));
    let bar = out.bar(selection.keys.len() as u64, "deleting");
    let abort_at = test_abort_at();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let result = execute(directory.as_ref(), planned, &options, &|o| {
        let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if abort_at == Some(n) {
            // Test hook: die like `kill -9` (no cleanup) after the n-th outcome.
            std::process::abort();
        }
        bar.inc(1);
        out.event("record", record_json(o));
        if o.outcome == Outcome::Failed && !out.json() {
            bar.suspend(|| {
                out.say(format!(
                    "{}: failed: {}: {}",
                    o.key.text(),
                    o.code.as_deref().unwrap_or("FAILED"),
                    o.message.as_deref().unwrap_or("")
                ))
            });
        }
        outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(o.clone());
    })
    .await;
    bar.finish_and_clear();
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    outcomes.sort_by_key(|o| o.index);
    let mut summary = Summary::default();
    for o in &outcomes {
        summary.add(o.outcome);
    }
    let total = selection.keys.len();
    if let Some(path) = &args.report {
        write_report(path, &outcomes, &summary, total)?;
    }
    out.event(
        "summary",
        json!({ "from": name, "dry_run": false, "summary": summary.json(total) }),
    );
    out.say(format!(
        "deleted from {name}: {total} selected: {} deleted, {} skipped, {} failed",
        summary.deleted, summary.skipped, summary.failed
    ));
    result.map_err(|e| match e {
        authmigrate_core::Error::Backend(be) => backend_error(be),
        other => other.into(),
    })?;
    Ok(if summary.failed > 0 {
        Status::SomeFailed
    } else {
        Status::Ok
    })
}

/// Test hook (crash tests only): `AUTHMIGRATE_TEST_ABORT_AT=delete:<n>` aborts the
/// process after the n-th outcome (journaled first, when `--state` is given).
fn test_abort_at() -> Option<u64> {
    std::env::var("AUTHMIGRATE_TEST_ABORT_AT")
        .ok()?
        .strip_prefix("delete:")?
        .parse()
        .ok()
}

/// Lists what will be deleted and what is left alone (stderr; `planned` events with `--json`).
fn list(planned: &[Planned], name: &str, out: &Output) {
    for p in planned {
        match &p.action {
            Action::Delete(users) => {
                for u in users {
                    out.event(
                        "planned",
                        json!({ "index": p.index, "key": p.key.text(), "action": "delete", "user_id": u.id, "email": u.email }),
                    );
                    out.say(format!("delete {}  ({name} id {})", p.key.text(), u.id));
                }
            }
            Action::Done(o) => {
                out.event(
                    "planned",
                    json!({ "index": p.index, "key": p.key.text(), "action": o.outcome.as_str(), "code": o.code, "message": o.message }),
                );
                if o.replayed {
                    continue;
                }
                out.say(format!(
                    "leave  {}: {}",
                    p.key.text(),
                    o.message.as_deref().unwrap_or("")
                ));
            }
        }
    }
}

/// Asks on a terminal; refuses (exit 2, naming `--yes`) when stdin is not one.
fn confirm(n: usize, name: &str) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(crate::Hinted {
            message: format!(
                "refusing to delete {n} users from {name} without confirmation: stdin is not a terminal"
            ),
            hint: "pass --yes to delete without asking (or --dry-run to only list them)".to_owned(),
        }
        .into());
    }
    eprint!("delete these {n} users from {name}? This cannot be undone. [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        anyhow::bail!("not confirmed: nothing was deleted")
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Summary {
    deleted: u64,
    skipped: u64,
    failed: u64,
}

impl Summary {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Deleted => self.deleted += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed => self.failed += 1,
        }
    }
    fn json(&self, total: usize) -> Value {
        json!({ "total": total, "deleted": self.deleted, "skipped": self.skipped, "failed": self.failed })
    }
}

fn record_json(o: &DeleteOutcome) -> Value {
    let email = match &o.key {
        Key::Email(e) => Some(e.clone()),
        _ => None,
    };
    json!({
        "index": o.index,
        "email": email,
        "key": o.key,
        "outcome": o.outcome.as_str(),
        "user_id": o.user_ids.first(),
        "user_ids": o.user_ids,
        "code": o.code,
        "message": o.message,
        "replayed": o.replayed,
    })
}

/// The report: `{"summary":{total,deleted,skipped,failed},"records":[…]}`, one record
/// per line, sorted by index, every selected key exactly once.
fn write_report(
    path: &std::path::Path,
    outcomes: &[DeleteOutcome],
    summary: &Summary,
    total: usize,
) -> anyhow::Result<()> {
    let mut w = authmigrate_core::io::create_output(path, false)?;
    writeln!(w, "{{\"summary\":{},\"records\":[", summary.json(total))?;
    for (i, o) in outcomes.iter().enumerate() {
        let sep = if i + 1 < outcomes.len() { "," } else { "" };
        writeln!(w, "{}{sep}", record_json(o))?;
    }
    writeln!(w, "]}}")?;
    w.finish()?;
    Ok(())
}
