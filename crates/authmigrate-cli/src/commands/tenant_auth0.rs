//! `migrate --from authgear --to auth0`'s tenant step (issue 13, `docs/tenant.md`):
//! Authgear roles and groups become Auth0 roles and organizations before the users
//! move (the core engine, Auth0's naming rules), each user's roles (own and through
//! groups) and groups are recorded from the user stream, and once the import finished
//! they are assigned at Auth0 in batches ([`authmigrate_core::tenant::assign`]).
//!
//! `migrate --delta` runs the same step into a store of its own
//! (`tenant-delta.sqlite`): it records the new and changed users only, the changed
//! ones as exact, and after the assignments [`authmigrate_core::tenant::sync`] takes
//! away at Auth0 the roles and organizations those users no longer hold at Authgear.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use authmigrate_auth0::tenant_target::Auth0TenantTarget;
use authmigrate_authgear::tenant::AuthgearTenant;
use authmigrate_core::UserRecord;
use authmigrate_core::driver::InputRecord;
use authmigrate_core::tenant::assign::RecordCounts;
use authmigrate_core::tenant::engine::TenantError;
use authmigrate_core::tenant::{
    AssignOptions, AssignReport, Plan, Recorder, SyncOptions, SyncReport, TenantOptions, assign,
    run, sync,
};
use serde_json::json;

use super::tenant::{abort_hook, resuming};
use crate::backends::{auth0_settings, authgear_settings, backend_error};
use crate::cli::{MigrateArgs, Provider, Skip};
use crate::output::Output;

/// Users the export did not list that are looked up one by one, at most.
const LOOKUPS_MAX: usize = 1000;

/// The files of one tenant step in the work dir.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Files {
    store: &'static str,
    pending: &'static str,
    plan: &'static str,
}

/// The full pass's.
const FULL: Files = Files {
    store: "tenant.sqlite",
    pending: "tenant.pending",
    plan: "tenant.json",
};

/// A delta pass's.
const DELTA: Files = Files {
    store: "tenant-delta.sqlite",
    pending: "tenant-delta.pending",
    plan: "tenant-delta.json",
};

/// The tenant step towards Auth0, between its two halves.
pub(crate) struct ToAuth0 {
    target: Auth0TenantTarget,
    recorder: Arc<Mutex<Option<Recorder>>>,
    plan: Plan,
    dry_run: bool,
    roles: bool,
    groups: bool,
    work_dir: PathBuf,
    pending: PathBuf,
    plan_file: PathBuf,
}

impl std::fmt::Debug for ToAuth0 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToAuth0")
            .field("dry_run", &self.dry_run)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

pub(crate) fn tenant_error(e: TenantError) -> anyhow::Error {
    match e {
        TenantError::Backend(b) => backend_error(b),
        other => anyhow::anyhow!(other),
    }
}

/// Crawls Authgear's roles and groups and creates them at Auth0; `None` unless
/// migrating from Authgear to Auth0 with roles or groups carried.
pub(crate) async fn prepare(args: &MigrateArgs, out: &Output) -> anyhow::Result<Option<ToAuth0>> {
    let resume = resuming(
        args,
        &args.work_dir.join(FULL.store),
        &args.work_dir.join(FULL.pending),
    );
    prepare_in(args, FULL, resume, out).await
}

/// The delta pass's step: a fresh store, unless the pass resumes a prepared one
/// (`resume`: its records file was written, so the memberships are recorded).
pub(crate) async fn prepare_delta(
    args: &MigrateArgs,
    resume: bool,
    out: &Output,
) -> anyhow::Result<Option<ToAuth0>> {
    let resume = resume && args.work_dir.join(DELTA.store).exists();
    prepare_in(args, DELTA, resume, out).await
}

async fn prepare_in(
    args: &MigrateArgs,
    files: Files,
    resume: bool,
    out: &Output,
) -> anyhow::Result<Option<ToAuth0>> {
    let roles = !args.skip.contains(&Skip::Roles);
    let groups = !args.skip.contains(&Skip::Groups);
    if args.from != Provider::Authgear || args.to != Provider::Auth0 || !(roles || groups) {
        return Ok(None);
    }
    let store = args.work_dir.join(files.store);
    let pending = args.work_dir.join(files.pending);
    if !args.run.dry_run {
        std::fs::write(&pending, b"")
            .with_context(|| format!("cannot write `{}`", pending.display()))?;
    }
    if resume {
        out.say("resuming the tenant step: reusing the crawled roles and groups and the recorded memberships");
    }
    let mut auth0 = auth0_settings(&args.auth0)?;
    auth0.connection = args.connection.clone();
    let source = AuthgearTenant::new(&authgear_settings(&args.authgear, &args.map)?)
        .map_err(backend_error)?;
    let target = Auth0TenantTarget::new(&auth0).map_err(backend_error)?;
    let opts = TenantOptions {
        roles,
        groups,
        role_map: args.role_map.clone(),
        dry_run: args.run.dry_run,
        store,
        resume,
        target_holds_permissions: true,
        after_batch: abort_hook("tenant-create:"),
    };
    let (plan, memberships) = run(&source, &target, &opts).await.map_err(tenant_error)?;
    render_plan(args.run.dry_run, &plan, out);
    let recorder = Recorder::new(memberships.into_store(), roles, groups)?;
    Ok(Some(ToAuth0 {
        target,
        recorder: Arc::new(Mutex::new(Some(recorder))),
        plan,
        dry_run: args.run.dry_run,
        roles,
        groups,
        work_dir: args.work_dir.clone(),
        pending,
        plan_file: args.work_dir.join(files.plan),
    }))
}

fn render_plan(dry_run: bool, plan: &Plan, out: &Output) {
    let s = &plan.summary;
    let verb = if dry_run { "would create" } else { "created" };
    out.say(format!(
        "roles: {} at Authgear, {verb} {} at Auth0, reused {}",
        s.roles.source, s.roles.created, s.roles.reused
    ));
    if s.groups.source > 0 {
        out.say(format!(
            "groups → Auth0 organizations: {} at Authgear, {verb} {}, reused {}",
            s.groups.source, s.groups.created, s.groups.reused
        ));
    }
    for (kind, entries) in [("role", &plan.roles), ("organization", &plan.groups)] {
        for e in entries.iter().filter(|e| e.name != e.key) {
            out.say(format!("{kind} `{}` is `{}` at Auth0", e.name, e.key));
        }
    }
}

impl ToAuth0 {
    /// Records each user's roles and groups (taking them out of the record, so that
    /// the Auth0 mapping does not report them as left out).
    pub(crate) fn record(
        &self,
        records: Box<dyn Iterator<Item = InputRecord> + Send>,
    ) -> Box<dyn Iterator<Item = InputRecord> + Send> {
        let recorder = self.recorder.clone();
        Box::new(records.map(move |mut r| {
            if let Ok(u) = &mut r.record
                && let Some(rec) = recorder.lock().unwrap_or_else(|e| e.into_inner()).as_mut()
            {
                rec.record(u);
            }
            r
        }))
    }

    /// Records one user (a delta's new or changed user); `exact`: its roles and
    /// groups changed, so what else it holds at Auth0 is taken away after the import.
    pub(crate) fn record_one(&self, user: &mut UserRecord, exact: bool) {
        if let Some(rec) = self
            .recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            rec.record_with(user, exact);
        }
    }

    /// Commits what was recorded so far (before a delta pass says it is prepared).
    pub(crate) fn commit(&self) -> anyhow::Result<()> {
        if let Some(rec) = self
            .recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            rec.commit()?;
        }
        Ok(())
    }

    /// After the import: assigns what was recorded, makes the exact users' memberships
    /// exact, says what happened and writes the plan file (`tenant.json`, a delta's
    /// `tenant-delta.json`: the plan, the assignments and the removals).
    pub(crate) async fn finish(self, out: &Output) -> anyhow::Result<()> {
        let recorder = self
            .recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .context("the tenant step's recorder was already finished")?;
        let (store, counts) = recorder.finish()?;
        let opts = AssignOptions {
            dry_run: self.dry_run,
            work_dir: self.work_dir.clone(),
            lookups_max: LOOKUPS_MAX,
            after_batch: abort_hook("tenant-assign:"),
        };
        let report = assign(&self.target, &store, &opts)
            .await
            .map_err(tenant_error)?;
        let sync_opts = SyncOptions {
            dry_run: self.dry_run,
            roles: self.roles,
            groups: self.groups,
        };
        let removals = sync(&self.target, &store, &sync_opts)
            .await
            .map_err(tenant_error)?;
        if !self.dry_run {
            let _ = std::fs::remove_file(&self.pending);
        }
        render_assign(&self.plan, &counts, &report, out);
        render_sync(&removals, out);
        let path = self.plan_file.clone();
        let doc = json!({ "plan": self.plan, "recorded": counts, "assignments": report,
                          "removals": removals });
        std::fs::write(&path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        let s = &self.plan.summary;
        let kind = |k: &authmigrate_core::tenant::engine::KindCounts,
                    a: &authmigrate_core::tenant::assign::AssignCounts| {
            json!({ "source": k.source, "created": k.created, "reused": k.reused,
                    "assignments": a.assigned + a.earlier, "refused": a.refused,
                    "user_not_found": a.user_not_found, "requests": a.requests })
        };
        out.add_to_summary("roles", kind(&s.roles, &report.roles));
        out.add_to_summary("groups", kind(&s.groups, &report.groups));
        out.event(
            "tenant",
            json!({ "dry_run": self.dry_run, "roles": kind(&s.roles, &report.roles),
                    "groups": kind(&s.groups, &report.groups), "recorded": counts,
                    "users": report.users, "users_found": report.users_found,
                    "looked_up": report.looked_up, "plan": path }),
        );
        if removals.users > 0 {
            out.event("tenant_removals", &removals);
        }
        Ok(())
    }
}

/// What [`sync`] took away (a delta's changed users).
fn render_sync(r: &SyncReport, out: &Output) {
    if r.users == 0 {
        return;
    }
    if r.dry_run {
        out.say(format!(
            "would read {} changed users' roles and organizations at Auth0 and remove what Authgear no longer gives them",
            r.users
        ));
        return;
    }
    out.say(format!(
        "changed users at Auth0: {} read, removed {} role assignments and {} organization memberships they no longer hold at Authgear",
        r.checked, r.roles_removed, r.groups_removed
    ));
    if r.not_found > 0 {
        out.say(format!(
            "not made exact: {} changed users are not at Auth0 (their import failed)",
            r.not_found
        ));
    }
    for why in &r.refused {
        out.say(format!("not removed: {why}"));
    }
}

fn render_assign(plan: &Plan, counts: &RecordCounts, r: &AssignReport, out: &Output) {
    let verb = if r.dry_run {
        "would assign"
    } else {
        "assigned"
    };
    let earlier = |n: u64| {
        if n > 0 {
            format!(" ({n} by an earlier run)")
        } else {
            String::new()
        }
    };
    out.say(format!(
        "roles at Auth0: {verb} {} user role assignments in {} requests{} ({} of them held through an Authgear group)",
        r.roles.assigned,
        r.roles.requests,
        earlier(r.roles.earlier),
        counts.roles_through_groups
    ));
    if plan.summary.groups.source > 0 {
        out.say(format!(
            "organizations at Auth0: {verb} {} memberships in {} requests{}",
            r.groups.assigned,
            r.groups.requests,
            earlier(r.groups.earlier)
        ));
    }
    if !r.dry_run && r.looked_up > 0 {
        out.say(format!(
            "{} users were not in Auth0's export yet and were looked up one by one",
            r.looked_up
        ));
    }
    let not_found = r.roles.user_not_found + r.groups.user_not_found;
    if not_found > 0 {
        out.say(format!(
            "not assigned: {not_found} assignments of {} users who are not at Auth0 (their import failed), e.g. {}",
            r.users - r.users_found,
            r.not_found.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    for f in &r.refused {
        out.say(format!(
            "not assigned: {} `{}` to {} users: {}",
            f.kind.as_str(),
            f.key,
            f.users,
            f.reason
        ));
    }
    if counts.no_identifier > 0 {
        out.say(format!(
            "not assigned: {} users with roles or groups have neither e-mail nor username to find them at Auth0",
            counts.no_identifier
        ));
    }
    if counts.unknown_keys > 0 {
        out.say(format!(
            "not assigned: {} role or group keys named by users that Authgear's directory does not hold",
            counts.unknown_keys
        ));
    }
}
