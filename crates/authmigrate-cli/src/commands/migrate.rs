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
    // Check the target's settings before a long export.
    let backend = target_backend(&args)?;

    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("cannot create `{}`", args.work_dir.display()))?;
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
    // Remember, in input order on disk, what the id map and the tickets need.
    let sidecar_path = args.work_dir.join("records.tsv");
    let sidecar = Arc::new(Mutex::new(BufWriter::new(
        std::fs::File::create(&sidecar_path)
            .with_context(|| format!("cannot create `{}`", sidecar_path.display()))?,
    )));
    let tap = {
        let sidecar = sidecar.clone();
        joined.inspect(move |r| {
            let (id, email, has_password) = match &r.record {
                Ok(u) => (
                    u.source_id.clone().unwrap_or_default(),
                    u.email.clone().unwrap_or_default(),
                    u.password.is_some(),
                ),
                Err(_) => (String::new(), String::new(), false),
            };
            let mut w = sidecar.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(
                w,
                "{}\t{}\t{}\t{}",
                r.index,
                clean(&id),
                clean(&email),
                u8::from(has_password)
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
    let report = args.run.report.clone().or_else(|| {
        (args.id_map.is_some() || args.password_reset_tickets.is_some())
            .then(|| args.work_dir.join("report.json"))
    });
    let run = Run {
        options,
        report: report.clone(),
        total: survey.records,
        daily_quota: args.run.daily_quota,
    };
    let status = import(backend, Box::new(tap), readers, run, out).await;
    sidecar.lock().unwrap_or_else(|e| e.into_inner()).flush()?;
    let status = status?;

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
        for_each_row(report, &sidecar_path, |r| {
            if let Some(w) = &mut id_map {
                writeln!(
                    w,
                    "{},{},{},{},{}",
                    r.index,
                    csv(&r.source_id),
                    csv(&r.email),
                    r.outcome,
                    csv(r.target_id.as_deref().unwrap_or(""))
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

fn target_backend(args: &MigrateArgs) -> anyhow::Result<Arc<dyn ImportBackend>> {
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
    outcome: String,
    target_id: Option<String>,
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
        let (Some(i), Some(id), Some(email), Some(pw)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
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
            outcome,
            target_id,
        })?;
    }
    Ok(())
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
