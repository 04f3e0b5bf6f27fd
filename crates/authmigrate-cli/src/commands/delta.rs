//! `migrate --delta`: carry what changed at the source since the last pass.
//!
//! The last finished `migrate` pass left a snapshot in `WORK_DIR/delta.sqlite` (per
//! user, a digest of each field: [`authmigrate_core::delta`]). A delta pass exports
//! the source again, classifies every user (new, changed and which fields,
//! unchanged), lists the snapshot's users that are gone from the source (removed),
//! writes the new and changed users to `WORK_DIR/delta-records.ndjson` (0600: it
//! holds hashes) and imports only those, as upserts, through the same driver as
//! every import. What the target accepted becomes the snapshot of the next pass.
//!
//! Auth0 → Authgear, the pass runs `migrate`'s tenant step again first (the tenant
//! crawled into a fresh store, `WORK_DIR/tenant-delta.sqlite`; roles and groups new at
//! the source created, existing keys reused) and annotates the re-exported users with
//! their roles, groups and TOTP exactly as the full pass did
//! ([`super::tenant::annotate`]), so that a user whose roles or organizations changed
//! is `changed` (fields `roles` / `groups`) and its upsert sets them at Authgear.
//!
//! Authgear → Auth0, the records carry their roles and groups themselves: the pass
//! runs the tenant step towards Auth0 again ([`super::tenant_auth0::prepare_delta`]:
//! roles and organizations new at Authgear created), records the memberships of the
//! users it sends (a changed user's as exact when its `roles` or `groups` changed),
//! and after the import assigns them and takes away at Auth0 what a changed user no
//! longer holds ([`authmigrate_core::tenant::sync`]).
//!
//! Resumable: once the records file is written the store says so ("prepared"), and
//! a rerun with the same `--state` imports it under its own journal
//! (`STATE.delta`) without exporting again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use authmigrate_core::UserRecord;
use authmigrate_core::delta::{Change, DeltaStore, FieldDigests, key_of};
use authmigrate_core::driver::{DriverOptions, InputRecord};
use authmigrate_core::tenant::Memberships;
use serde_json::json;

use super::export::{export, name};
use super::import::{POLL, Run, import};
use super::tenant::{MfaJoined, Step, annotate, carry, mfa_secrets, render};
use crate::Status;
use crate::backends::{auth0_settings, authgear_settings};
use crate::cli::{MigrateArgs, Provider, Skip};
use crate::input::{Inputs, survey};
use crate::output::Output;

/// The snapshot store of a work dir.
pub(super) fn store_path(work_dir: &Path) -> PathBuf {
    work_dir.join("delta.sqlite")
}

/// Outcomes the target accepted: the user is there as sent.
pub(super) fn accepted(outcome: &str) -> bool {
    matches!(outcome, "inserted" | "updated" | "skipped")
}

#[derive(Debug, Default, serde::Serialize)]
struct Counts {
    new: u64,
    changed: u64,
    unchanged: u64,
    removed: u64,
    invalid: u64,
}

pub(super) async fn run(mut args: MigrateArgs, out: &Output) -> anyhow::Result<Status> {
    let Some(state) = args.run.state.clone() else {
        anyhow::bail!(
            "`--delta` needs the `--state` (and `--work-dir`) of the earlier finished `migrate`"
        );
    };
    let store_file = store_path(&args.work_dir);
    if !store_file.exists() {
        anyhow::bail!(
            "`--delta`: no snapshot in `{}`: run `migrate` without `--delta` (same `--work-dir`) first",
            args.work_dir.display()
        );
    }
    let mut store = DeltaStore::open(&store_file)?;
    let passes = store.passes()?;
    if passes == 0 {
        anyhow::bail!(
            "`--delta`: the `migrate` in `{}` has not finished: rerun it with its `--state` first",
            args.work_dir.display()
        );
    }
    // Changed users are updated: the delta always upserts.
    args.run.upsert = true;
    let records_path = args.work_dir.join("delta-records.ndjson");
    let delta_report = args.work_dir.join("delta-report.ndjson");
    let removed_csv = args.work_dir.join("removed.csv");
    let mut counts = Counts::default();
    let prepared = store.prepared()? && records_path.exists();
    if prepared {
        out.say(format!(
            "resuming the delta pass: reusing `{}`",
            records_path.display()
        ));
    }
    // Authgear → Auth0: roles and organizations new at Authgear are created first; the
    // sent users' memberships are recorded while classifying, assigned (and, for the
    // changed ones, made exact) after the import.
    let to_auth0 = super::tenant_auth0::prepare_delta(&args, prepared, out).await?;
    if !prepared {
        counts = classify(
            &args,
            &mut store,
            &records_path,
            &delta_report,
            to_auth0.as_ref(),
            out,
        )
        .await?;
        if let Some(t) = &to_auth0 {
            t.commit()?;
        }
        counts.removed = removed(&mut store, &delta_report, &removed_csv, out)?;
        if !args.run.dry_run {
            store.set_prepared()?;
        }
    }
    if !prepared {
        out.say(format!(
            "delta since pass {passes}: {} new, {} changed, {} unchanged, {} removed at the source{}",
            counts.new,
            counts.changed,
            counts.unchanged,
            counts.removed,
            if counts.invalid > 0 {
                format!(", {} unreadable", counts.invalid)
            } else {
                String::new()
            }
        ));
        out.event("delta", &counts);
        if counts.removed > 0 {
            out.say(format!(
                "{} users are gone from the source but still at the target (listed in `{}`); \
                 to remove them there too: authmigrate delete --from {} --id-map {}",
                counts.removed,
                delta_report.display(),
                name(args.to),
                removed_csv.display()
            ));
        }
    }
    if args.run.dry_run {
        if let Some(t) = to_auth0 {
            t.finish(out).await?;
        }
        return Ok(Status::Ok);
    }
    let journal = PathBuf::from(format!("{}.delta", state.display()));
    let empty = std::fs::metadata(&records_path).map_or(true, |m| m.len() == 0);
    let status = if empty {
        out.say("nothing to send: the target holds the source as it is");
        Status::Ok
    } else {
        let report = args
            .run
            .report
            .clone()
            .unwrap_or_else(|| args.work_dir.join("delta-import-report.json"));
        let to_send = survey(std::slice::from_ref(&records_path))?;
        let backend = super::migrate::target_backend(&args)?;
        let inputs = Inputs::new(vec![records_path.clone()]);
        let readers = inputs.error_handles();
        let options = DriverOptions {
            dry_run: false,
            state: Some(journal.clone()),
            fingerprint: format!("delta-{passes}-{}", to_send.fingerprint),
            poll_initial: POLL.0,
            poll_max: POLL.1,
            wait_timeout: args.run.wait_timeout,
            resume_command: super::import::resume_command(&args.run),
            ..DriverOptions::default()
        };
        let run = Run {
            options,
            report: Some(report.clone()),
            total: to_send.records,
            daily_quota: args.run.daily_quota,
        };
        let records: Box<dyn Iterator<Item = InputRecord> + Send> = Box::new(inputs);
        let status = import(backend, records, readers, run, out).await?;
        super::migrate::for_each_outcome(&report, |index, outcome, target_id| {
            if accepted(outcome) {
                store.commit(index, target_id)?;
            }
            Ok(())
        })?;
        status
    };
    if let Some(t) = to_auth0 {
        t.finish(out).await?;
    }
    let status = match (args.delete_removed, status) {
        (true, Status::Ok) => delete_removed(&args, &mut store, &removed_csv, &state, out).await?,
        (_, status) => status,
    };
    // The journal first: a kill between the two re-imports the same upserts.
    if journal.exists() {
        std::fs::remove_file(&journal)
            .with_context(|| format!("cannot remove `{}`", journal.display()))?;
    }
    let pass = store.finish_pass()?;
    out.say(format!("delta pass {pass} finished"));
    Ok(status)
}

/// Exports the source again and writes the new and changed users to `records`.
async fn classify(
    args: &MigrateArgs,
    store: &mut DeltaStore,
    records: &Path,
    delta_report: &Path,
    to_auth0: Option<&super::tenant_auth0::ToAuth0>,
    out: &Output,
) -> anyhow::Result<Counts> {
    let export_path = args
        .work_dir
        .join(format!("export-{}-delta.ndjson.gz", name(args.from)));
    // Roles and groups first, as in the full pass: the users' records name them.
    let memberships = tenant(args, out).await?;
    let mfa = mfa_secrets(args, out)?;
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
    store.begin_pass()?;
    let inputs = Inputs::new(vec![export_path.clone()]);
    let source: Box<dyn Iterator<Item = InputRecord> + Send> = match &args.password_hashes {
        Some(path) => Box::new(super::hashes::join_checked(inputs, path, out)?),
        None => Box::new(inputs),
    };
    // The records as the full pass's snapshot saw them: annotated the same way.
    let source = annotate(
        source,
        memberships,
        mfa,
        args.skip.contains(&Skip::Mfa),
        Arc::new(MfaJoined::default()),
    );
    let mut w = authmigrate_core::io::create_output(records, true)?;
    let mut rep = authmigrate_core::io::create_output(delta_report, false)?;
    let mut counts = Counts::default();
    let mut sent = 0u64;
    for rec in source {
        let mut user = match rec.record {
            Ok(u) => u,
            Err(f) => {
                counts.invalid += 1;
                let line = json!({"index": rec.index, "change": "invalid", "code": f.code, "message": f.message});
                writeln!(rep, "{line}")?;
                continue;
            }
        };
        let key = key_of(&user).unwrap_or_else(|| format!("index:{}", rec.index));
        let fields = FieldDigests::of(&user);
        let change = store.classify(&key, &fields)?;
        let (label, changed) = match &change {
            Change::New => ("new", Vec::new()),
            Change::Changed(f) => ("changed", f.clone()),
            Change::Unchanged => ("unchanged", Vec::new()),
        };
        let mut line =
            json!({"index": rec.index, "key": key, "email": user.email, "change": label});
        if !changed.is_empty() {
            line["fields"] = json!(changed);
        }
        let warnings: Vec<String> = changed
            .iter()
            .filter_map(|f| {
                not_updated(args.to, f, &user)
                    .map(|why| format!("`{f}` changed at the source: {why}"))
            })
            .collect();
        for warning in &warnings {
            out.say(format!(
                "warning: {} ({}): {warning}",
                key,
                user.email.as_deref().unwrap_or("")
            ));
        }
        if !warnings.is_empty() {
            line["warnings"] = json!(warnings);
        }
        writeln!(rep, "{line}")?;
        match change {
            Change::Unchanged => counts.unchanged += 1,
            Change::New | Change::Changed(_) => {
                if matches!(change, Change::New) {
                    counts.new += 1;
                } else {
                    counts.changed += 1;
                }
                if let Some(t) = to_auth0 {
                    // After the digests: the recorder takes the roles and groups out
                    // of the record (Auth0's import cannot hold them).
                    let exact = changed.iter().any(|f| f == "roles" || f == "groups");
                    t.record_one(&mut user, exact);
                }
                serde_json::to_writer(&mut w, &user)?;
                writeln!(w)?;
                store.stage(sent, &key, user.email.as_deref(), &fields)?;
                sent += 1;
            }
        }
    }
    w.finish()?;
    rep.finish()?;
    Ok(counts)
}

/// The delta pass's tenant step, Auth0 → Authgear: `migrate`'s, crawling the tenant
/// again into a fresh store (the full pass's is not reused: memberships change), then
/// creating the roles and groups new at the source and reusing the others. `None`
/// when roles and groups are both skipped, or in the other direction.
async fn tenant(args: &MigrateArgs, out: &Output) -> anyhow::Result<Option<Memberships>> {
    let roles = !args.skip.contains(&Skip::Roles);
    let groups = !args.skip.contains(&Skip::Groups);
    if !roles && !groups {
        return Ok(None);
    }
    if args.from != Provider::Auth0 || args.to != Provider::Authgear {
        // Authgear → Auth0: the records name them (super::tenant_auth0).
        return Ok(None);
    }
    let step = Step {
        auth0: auth0_settings(&args.auth0)?,
        authgear: authgear_settings(&args.authgear, &args.map)?,
        roles,
        groups,
        role_map: args.role_map.clone(),
        dry_run: args.run.dry_run,
        store: args.work_dir.join("tenant-delta.sqlite"),
        resume: false,
        after_batch: None,
    };
    let (plan, memberships) = carry(step).await?;
    render(args.run.dry_run, &args.work_dir, &plan, out)?;
    Ok(Some(memberships))
}

/// `--delete-removed`: runs `delete --id-map WORK_DIR/removed.csv` against the target
/// (asking as `delete` does, resumable under `STATE.delete`), then drops the users it
/// deleted (or found gone) from the snapshot.
async fn delete_removed(
    args: &MigrateArgs,
    store: &mut DeltaStore,
    removed_csv: &Path,
    state: &Path,
    out: &Output,
) -> anyhow::Result<Status> {
    let rows: Vec<Vec<String>> = std::fs::read_to_string(removed_csv)
        .with_context(|| format!("cannot read `{}`", removed_csv.display()))?
        .lines()
        .skip(1)
        .map(authmigrate_core::io::csv::split_line)
        .collect();
    if rows.is_empty() {
        return Ok(Status::Ok);
    }
    let report = args.work_dir.join("removed-report.json");
    let delete = crate::cli::DeleteArgs {
        from: args.to,
        prefix: None,
        count: None,
        start: 1,
        domain: None,
        id_map: Some(removed_csv.to_owned()),
        emails: None,
        yes: args.yes,
        dry_run: false,
        force: false,
        report: Some(report.clone()),
        state: Some(PathBuf::from(format!("{}.delete", state.display()))),
        concurrency: None,
        connection: args.connection.clone(),
        auth0: args.auth0.clone(),
        authgear: args.authgear.clone(),
    };
    let status = super::delete::run_async(delete, out).await?;
    let r: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(
        std::fs::File::open(&report)
            .with_context(|| format!("cannot read `{}`", report.display()))?,
    ))?;
    let gone: std::collections::HashSet<&str> = r["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["outcome"] == "deleted" || x["code"] == "NOT_FOUND")
        .filter_map(|x| x["key"]["value"].as_str())
        .collect();
    for row in &rows {
        if let (Some(key), Some(target)) = (row.get(1), row.get(4))
            && gone.contains(target.as_str())
        {
            store.forget(key)?;
        }
    }
    Ok(status)
}

/// Why the target keeps its old value of a changed field of `user` on upsert, if it
/// does.
///
/// Authgear: `password` and `mfa.totp` are ignored on update (shared docs,
/// authgear-api.md, "ignored on update"); `roles` / `groups` are set exactly, but a
/// record without the key leaves them as they are (absent = unchanged,
/// authgear-admin-graphql.md §5.3): the tenant step marks the lists it read as whole
/// (`roles_exact` / `groups_exact`), and the mapping then sends an empty one, so only a
/// list not read (`--skip`) stays as it is. Auth0: a
/// bulk-import upsert does not update `password_hash`, `blocked`, `email`, `username`
/// or `phone_*` (auth0-api.md, "Upsert semantics"; `mfa_factors` are upsertable, per
/// its CORRECTED note). An e-mail change at an Auth0 target cannot be matched by the
/// upsert at all (it matches on e-mail).
fn not_updated(to: Provider, field: &str, user: &UserRecord) -> Option<&'static str> {
    match (to, field) {
        (Provider::Authgear, "roles") if user.roles.is_empty() && !user.roles_exact => Some(
            "the user holds no role at the source any more, and Authgear's import leaves the roles \
             of a record without any as they are: remove them at Authgear by hand (Admin API \
             `removeUserFromRoles`); `verify` lists them",
        ),
        (Provider::Authgear, "groups") if user.groups.is_empty() && !user.groups_exact => Some(
            "the user is in no organization at the source any more, and Authgear's import leaves \
             the groups of a record without any as they are: remove them at Authgear by hand \
             (Admin API `removeUserFromGroups`); `verify` lists them",
        ),
        (Provider::Authgear, "password") => Some(
            "Authgear ignores `password` on update: the user keeps the old password there \
             (send a password reset)",
        ),
        (Provider::Authgear, "mfa") => {
            Some("Authgear ignores `mfa.totp` on update: the user keeps the old enrolment there")
        }
        (Provider::Auth0, "password") => Some(
            "Auth0 never updates `password_hash` on upsert: the user keeps the old password there \
             (send a password reset)",
        ),
        (Provider::Auth0, "blocked" | "email" | "username" | "phone_number" | "phone_verified") => {
            Some("Auth0 does not update this field on upsert: change it there by hand")
        }
        _ => None,
    }
}

/// Appends the snapshot's users the export did not contain to the delta report and
/// writes them as an id map `delete --id-map` takes.
fn removed(
    store: &mut DeltaStore,
    delta_report: &Path,
    removed_csv: &Path,
    out: &Output,
) -> anyhow::Result<u64> {
    let mut rep = std::fs::OpenOptions::new()
        .append(true)
        .open(delta_report)
        .with_context(|| format!("cannot append to `{}`", delta_report.display()))?;
    let mut csv = authmigrate_core::io::create_output(removed_csv, false)?;
    writeln!(csv, "index,source_id,email,outcome,target_id")?;
    let mut io_error = None;
    let mut index = 0u64;
    let n = store.removed(|r| {
        let line =
            json!({"key": r.key, "email": r.email, "change": "removed", "target_id": r.target_id});
        let res = writeln!(rep, "{line}").and_then(|()| {
            writeln!(
                csv,
                "{index},{},{},inserted,{}",
                authmigrate_core::io::csv::field(&r.key),
                authmigrate_core::io::csv::field(r.email.as_deref().unwrap_or("")),
                authmigrate_core::io::csv::field(r.target_id.as_deref().unwrap_or(""))
            )
        });
        if let Err(e) = res {
            io_error.get_or_insert(e);
        }
        index += 1;
        out.event("removed", json!({"key": r.key, "email": r.email}));
    })?;
    if let Some(e) = io_error {
        return Err(e.into());
    }
    csv.finish()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_or_groups_emptied_at_the_source_are_warned_for_authgear_only() {
        let mut user = UserRecord::default();
        assert!(not_updated(Provider::Authgear, "roles", &user).is_some());
        assert!(not_updated(Provider::Authgear, "groups", &user).is_some());
        assert!(not_updated(Provider::Auth0, "roles", &user).is_none());
        user.roles = vec!["admin".into()];
        user.groups = vec!["acme".into()];
        assert!(
            not_updated(Provider::Authgear, "roles", &user).is_none(),
            "a new non-empty list is set exactly"
        );
        assert!(not_updated(Provider::Authgear, "groups", &user).is_none());
        assert!(not_updated(Provider::Authgear, "mfa", &user).is_some());
        let emptied = UserRecord {
            roles_exact: true,
            groups_exact: true,
            ..UserRecord::default()
        };
        assert!(
            not_updated(Provider::Authgear, "roles", &emptied).is_none(),
            "an exact empty list is sent as `roles: []` and removes them"
        );
        assert!(not_updated(Provider::Authgear, "groups", &emptied).is_none());
    }
}
