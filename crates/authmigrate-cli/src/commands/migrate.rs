//! `authmigrate migrate --from X --to Y`: export, convert (join password hashes) and
//! import in one resumable run.
//!
//! The export is kept in `--work-dir`; a run resumed with the same `--state` reuses it
//! (a fresh export would change the input under the journal). Conversion happens on
//! the fly: each exported user is read, joined with its hash, encoded by the target
//! backend and submitted through the same driver as `import`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use authmigrate_auth0::Auth0Backend;
use authmigrate_authgear::AuthgearBackend;
use authmigrate_core::backend::ImportBackend;
use authmigrate_core::delta::{DeltaStore, FieldDigests, key_of};
use authmigrate_core::driver::{DriverOptions, InputRecord};

use super::export::{export, name};
use super::import::{POLL, Run, import};
use crate::Status;
use crate::backends::{auth0_settings, authgear_settings, backend_error};
use crate::cli::{MigrateArgs, Provider};
use crate::input::{Inputs, survey};
use crate::output::Output;

pub(crate) fn run(args: MigrateArgs, out: &Output) -> anyhow::Result<Status> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args, out))
}

async fn run_async(args: MigrateArgs, out: &Output) -> anyhow::Result<Status> {
    if args.from == args.to {
        anyhow::bail!(
            "`--from` and `--to` are both {}: nothing to migrate",
            name(args.from)
        );
    }
    if args.password_hashes.is_some() && args.from != Provider::Auth0 {
        anyhow::bail!(
            "`--password-hashes` is an Auth0 password-hash export: it only applies with `--from auth0`"
        );
    }
    if args.password_reset_tickets.is_some() && args.to != Provider::Auth0 {
        anyhow::bail!(
            "`--password-reset-tickets` creates Auth0 tickets: it only applies with `--to auth0`"
        );
    }
    if args.delta {
        return super::delta::run(args, out).await;
    }
    // Check the target's settings before a long export.
    let backend = target_backend(&args)?;

    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("cannot create `{}`", args.work_dir.display()))?;
    // The summary event carries the tenant's counts (`null` where not carried).
    for key in ["roles", "groups", "mfa"] {
        out.add_to_summary(key, serde_json::Value::Null);
    }
    // Roles and groups first: users' records name them (docs/tenant.md).
    let memberships = super::tenant::prepare(&args, out).await?;
    let to_auth0 = super::tenant_auth0::prepare(&args, out).await?;
    let mfa = super::tenant::mfa_secrets(&args, out)?;
    let mfa_joined = Arc::new(super::tenant::MfaJoined::default());
    let export_path = args
        .work_dir
        .join(format!("export-{}.ndjson.gz", name(args.from)));
    let resuming = args.run.state.as_ref().is_some_and(|s| s.exists()) && export_path.exists();
    if resuming {
        out.say(format!(
            "resuming: reusing the export in `{}`",
            export_path.display()
        ));
    } else {
        let connection = (args.from == Provider::Auth0).then(|| args.connection.clone());
        export(
            args.from,
            &args.auth0,
            &args.authgear,
            connection,
            args.export_timeout,
            &export_path,
            out,
        )
        .await?;
    }
    if args.from == Provider::Authgear && args.to == Provider::Auth0 {
        out.say(
            "note: Authgear never exports password hashes: users arrive in Auth0 without a password\n\
             hint: `--password-reset-tickets FILE` creates password-change tickets for them",
        );
    }

    let survey = survey(std::slice::from_ref(&export_path))?;
    let inputs = Inputs::new(vec![export_path.clone()]);
    let mut readers = inputs.error_handles();
    let joined: Box<dyn Iterator<Item = InputRecord> + Send> = match &args.password_hashes {
        Some(path) => {
            let joined = super::hashes::join_checked(inputs, path, out)?;
            readers.push(joined.status());
            Box::new(joined)
        }
        None => Box::new(inputs),
    };
    let joined = super::tenant::annotate(
        joined,
        memberships,
        mfa,
        args.skip.contains(&crate::cli::Skip::Mfa),
        mfa_joined.clone(),
    );
    // Remember, in input order on disk, what the id map and the tickets need.
    let sidecar_path = args.work_dir.join("records.tsv");
    let sidecar = Arc::new(Mutex::new(BufWriter::new(
        std::fs::File::create(&sidecar_path)
            .with_context(|| format!("cannot create `{}`", sidecar_path.display()))?,
    )));
    // The snapshot a later `--delta` compares with (not for a dry run).
    let snapshot = if args.run.dry_run {
        None
    } else {
        let mut store = DeltaStore::open(&super::delta::store_path(&args.work_dir))?;
        store.begin_pass()?;
        Some(Arc::new(Mutex::new(store)))
    };
    let snapshot_error: Arc<Mutex<Option<String>>> = Arc::default();
    let tap = {
        let sidecar = sidecar.clone();
        let (snapshot, snapshot_error) = (snapshot.clone(), snapshot_error.clone());
        joined.inspect(move |r| {
            if let (Some(store), Ok(u)) = (&snapshot, &r.record)
                && let Some(key) = key_of(u)
            {
                let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = store.stage(r.index, &key, u.email.as_deref(), &FieldDigests::of(u))
                {
                    snapshot_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(e.to_string());
                }
            }
            let (id, email, has_password, has_totp) = match &r.record {
                Ok(u) => (
                    u.source_id.clone().unwrap_or_default(),
                    u.email.clone().unwrap_or_default(),
                    u.password.is_some(),
                    u.mfa
                        .iter()
                        .any(|f| matches!(f, authmigrate_core::record::MfaFactor::Totp { .. })),
                ),
                Err(_) => (String::new(), String::new(), false, false),
            };
            let mut w = sidecar.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(
                w,
                "{}\t{}\t{}\t{}\t{}",
                r.index,
                clean(&id),
                clean(&email),
                u8::from(has_password),
                u8::from(has_totp)
            );
        })
    };

    let mut h = DefaultHasher::new();
    (
        survey.fingerprint,
        name(args.from),
        name(args.to),
        args.run.upsert,
        &args.connection,
    )
        .hash(&mut h);
    (&args.map.identifier, &args.map.custom_attributes).hash(&mut h);
    args.password_hashes
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .hash(&mut h);
    let options = DriverOptions {
        dry_run: args.run.dry_run,
        state: args.run.state.clone(),
        fingerprint: format!("migrate-{:016x}", h.finish()),
        poll_initial: POLL.0,
        poll_max: POLL.1,
        wait_timeout: args.run.wait_timeout,
        resume_command: super::import::resume_command(&args.run),
        ..DriverOptions::default()
    };
    // The id map and the tickets are built from the report: keep one even if not asked.
    // (and the delta snapshot is committed from it)
    let report = args
        .run
        .report
        .clone()
        .or_else(|| Some(args.work_dir.join("report.json")));
    let run = Run {
        options,
        report: report.clone(),
        total: survey.records,
        daily_quota: args.run.daily_quota,
    };
    // The snapshot digests the records as exported (a `--delta` compares them so);
    // Authgear → Auth0 the recorder then takes their roles and groups out.
    let tapped: Box<dyn Iterator<Item = InputRecord> + Send> = Box::new(tap);
    let records = match &to_auth0 {
        Some(t) => t.record(tapped),
        None => tapped,
    };
    let status = import(backend, records, readers, run, out).await;
    sidecar.lock().unwrap_or_else(|e| e.into_inner()).flush()?;
    let status = status?;
    if let Some(t) = to_auth0 {
        t.finish(out).await?;
    }
    if args.mfa_secrets.is_some() {
        let n = mfa_joined.joined.load(std::sync::atomic::Ordering::Relaxed);
        out.say(format!("mfa: {n} users carry their TOTP secret"));
        out.event("mfa", serde_json::json!({ "totp_joined": n }));
    }

    if !args.run.dry_run
        && let Some(report) = &report
    {
        let mut id_map = match &args.id_map {
            Some(path) => {
                let mut w = authmigrate_core::io::create_output(path, false)?;
                writeln!(w, "index,source_id,email,outcome,target_id")?;
                Some(w)
            }
            None => None,
        };
        let mut users: Vec<(String, Option<String>)> = Vec::new();
        let mut totp_ignored = 0u64;
        if let Some(e) = snapshot_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            anyhow::bail!("cannot write the delta snapshot: {e}");
        }
        let mut store = snapshot
            .as_ref()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()));
        for_each_outcome(report, |index, outcome, target_id| {
            if let Some(store) = store.as_mut()
                && super::delta::accepted(outcome)
            {
                store.commit(index, target_id)?;
            }
            Ok(())
        })?;
        if let Some(store) = store.as_mut() {
            store.finish_pass()?;
        }
        drop(store);
        for_each_row(report, &sidecar_path, |r| {
            if r.has_totp && r.outcome == "updated" && args.to == Provider::Authgear {
                totp_ignored += 1;
                out.say(format!(
                    "warning: record {} ({}) was updated: Authgear ignores `mfa.totp` on update, its TOTP secret was not carried",
                    r.index, r.email
                ));
            }
            if let Some(w) = &mut id_map {
                writeln!(
                    w,
                    "{},{},{},{},{}",
                    r.index,
                    authmigrate_core::io::csv::field(&r.source_id),
                    authmigrate_core::io::csv::field(&r.email),
                    r.outcome,
                    authmigrate_core::io::csv::field(r.target_id.as_deref().unwrap_or(""))
                )?;
            }
            if args.password_reset_tickets.is_some()
                && r.outcome == "inserted"
                && !r.has_password
                && !r.email.is_empty()
            {
                users.push((r.email, r.target_id));
            }
            Ok(())
        })?;
        if totp_ignored > 0 {
            out.event(
                "mfa_not_carried",
                serde_json::json!({ "updated_users": totp_ignored }),
            );
        }
        if let (Some(w), Some(path)) = (id_map, &args.id_map) {
            w.finish()?;
            out.say(format!("wrote the id map to `{}`", path.display()));
        }
        if let Some(path) = &args.password_reset_tickets {
            let settings = auth0_settings(&args.auth0)?;
            let n = authmigrate_auth0::tickets::password_tickets(&settings, users, path)
                .await
                .map_err(backend_error)?;
            out.say(format!(
                "wrote {n} password-change tickets to `{}`",
                path.display()
            ));
        }
    }
    Ok(status)
}

pub(super) fn target_backend(args: &MigrateArgs) -> anyhow::Result<Arc<dyn ImportBackend>> {
    Ok(match args.to {
        Provider::Auth0 => {
            let mut s = auth0_settings(&args.auth0)?;
            s.connection = args.connection.clone();
            s.upsert = args.run.upsert;
            s.send_completion_email = args.send_completion_email;
            Arc::new(Auth0Backend::new(s).map_err(backend_error)?)
        }
        Provider::Authgear => {
            let mut s = authgear_settings(&args.authgear, &args.map)?;
            s.upsert = args.run.upsert;
            Arc::new(AuthgearBackend::new(s).map_err(backend_error)?)
        }
    })
}

fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// One record of the run: its source id, e-mail, whether it had a password, and
/// what happened at the target.
#[derive(Debug)]
struct Row {
    index: u64,
    source_id: String,
    email: String,
    has_password: bool,
    has_totp: bool,
    outcome: String,
    target_id: Option<String>,
}

/// Calls `f(index, outcome, target_id)` for each record of a report, in bounded memory.
pub(super) fn for_each_outcome(
    report: &Path,
    mut f: impl FnMut(u64, &str, Option<String>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(report)
        .with_context(|| format!("cannot read `{}`", report.display()))?;
    // The report writer puts one record object on each line after the first.
    for line in BufReader::new(file).lines().skip(1) {
        let line = line?;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim().trim_end_matches(','))
        else {
            continue;
        };
        let (Some(index), Some(outcome)) = (v["index"].as_u64(), v["outcome"].as_str()) else {
            continue;
        };
        f(index, outcome, v["user_id"].as_str().map(str::to_owned))?;
    }
    Ok(())
}

/// Streams the sidecar (input order) zipped with the report (one record a line,
/// sorted by index), in bounded memory, calling `f` for each record.
fn for_each_row(
    report: &Path,
    sidecar: &Path,
    mut f: impl FnMut(Row) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let open = |p: &Path| -> anyhow::Result<BufReader<std::fs::File>> {
        Ok(BufReader::new(std::fs::File::open(p).with_context(
            || format!("cannot read `{}`", p.display()),
        )?))
    };
    // The report writer puts one record object on each line after the first.
    let mut outcomes = open(report)?.lines().skip(1).filter_map(|line| {
        let line = line.ok()?;
        // Records are `{...}` lines separated by `,`; the envelope's `]}` has a line of its own.
        let v: serde_json::Value = serde_json::from_str(line.trim().trim_end_matches(',')).ok()?;
        Some((
            v["index"].as_u64()?,
            v["outcome"].as_str().unwrap_or("").to_owned(),
            v["user_id"].as_str().map(str::to_owned),
        ))
    });
    let mut next = outcomes.next();
    for line in open(sidecar)?.lines() {
        let line = line?;
        let mut fields = line.split('\t');
        let (Some(i), Some(id), Some(email), Some(pw), totp) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        let Ok(index) = i.parse::<u64>() else {
            continue;
        };
        while next.as_ref().is_some_and(|(i, _, _)| *i < index) {
            next = outcomes.next();
        }
        let (outcome, target_id) = match &next {
            Some((i, o, t)) if *i == index => (o.clone(), t.clone()),
            _ => (String::new(), None),
        };
        f(Row {
            index,
            source_id: id.to_owned(),
            email: email.to_owned(),
            has_password: pw == "1",
            has_totp: totp == Some("1"),
            outcome,
            target_id,
        })?;
    }
    Ok(())
}
