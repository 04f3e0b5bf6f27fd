//! `migrate`'s tenant step (issue 13, `docs/tenant.md`): roles, organizations →
//! groups and memberships, wired from the provider crates into the core engine, and
//! rendered. The user stream is annotated from the membership look-up by source id.

use std::path::PathBuf;

use anyhow::Context;
use authmigrate_core::driver::InputRecord;
use authmigrate_core::tenant::{Memberships, Plan, TenantOptions, run};
use serde_json::json;

use crate::backends::{auth0_settings, authgear_settings, backend_error};
use crate::cli::{MigrateArgs, Provider, Skip};
use crate::output::Output;

/// The tenant store in the work dir.
fn store(args: &MigrateArgs) -> PathBuf {
    args.work_dir.join("tenant.sqlite")
}

/// Test hook (crash tests only): `AUTHMIGRATE_TEST_ABORT_AT=tenant-create:<n>` aborts
/// the process after the nth create request succeeded.
fn abort_hook() -> Option<Box<dyn Fn(usize) + Send + Sync>> {
    let v = std::env::var("AUTHMIGRATE_TEST_ABORT_AT").ok()?;
    let n: usize = v.strip_prefix("tenant-create:")?.parse().ok()?;
    Some(Box::new(move |done| {
        if done >= n {
            std::process::abort();
        }
    }))
}

/// Runs the tenant step before the users move; `None` when nothing is carried.
pub(crate) async fn prepare(
    args: &MigrateArgs,
    out: &Output,
) -> anyhow::Result<Option<Memberships>> {
    let roles = !args.skip.contains(&Skip::Roles);
    let groups = !args.skip.contains(&Skip::Groups);
    if !roles && !groups {
        return Ok(None);
    }
    if args.from != Provider::Auth0 || args.to != Provider::Authgear {
        out.say(
            "note: roles and groups are carried from Auth0 to Authgear only so far; \
             the users' roles and groups are reported per user where the target leaves them out",
        );
        return Ok(None);
    }
    let path = store(args);
    // A marker kept while the step runs: a rerun after a kill here resumes the step
    // (the driver's state file does not exist yet then).
    let pending = args.work_dir.join("tenant.pending");
    let resume = path.exists()
        && args
            .run
            .state
            .as_ref()
            .is_some_and(|s| s.exists() || pending.exists());
    if !args.run.dry_run {
        std::fs::write(&pending, b"")
            .with_context(|| format!("cannot write `{}`", pending.display()))?;
    }
    let source = authmigrate_auth0::tenant::Auth0Tenant::new(&auth0_settings(&args.auth0)?)
        .map_err(backend_error)?;
    let target = authmigrate_authgear::tenant::AuthgearTenant::new(&authgear_settings(
        &args.authgear,
        &args.map,
    )?)
    .map_err(backend_error)?;
    let opts = TenantOptions {
        roles,
        groups,
        role_map: args.role_map.clone(),
        dry_run: args.run.dry_run,
        store: path,
        resume,
        target_holds_permissions: false,
        after_batch: abort_hook(),
    };
    if resume {
        out.say("resuming the tenant step: reusing the crawled roles and organizations");
    }
    let (plan, memberships) = run(&source, &target, &opts).await.map_err(|e| match e {
        authmigrate_core::tenant::engine::TenantError::Backend(b) => backend_error(b),
        other => anyhow::anyhow!(other),
    })?;
    if !args.run.dry_run {
        let _ = std::fs::remove_file(&pending);
    }
    render(args, &plan, out)?;
    Ok(Some(memberships))
}

fn render(args: &MigrateArgs, plan: &Plan, out: &Output) -> anyhow::Result<()> {
    let s = &plan.summary;
    let verb = if args.run.dry_run {
        "would create"
    } else {
        "created"
    };
    out.say(format!(
        "roles: {} at the source, {verb} {}, reused {}; {} user role assignments",
        s.roles.source, s.roles.created, s.roles.reused, s.roles.assignments
    ));
    out.say(format!(
        "groups (Auth0 organizations): {} at the source, {verb} {}, reused {}; {} memberships",
        s.groups.source, s.groups.created, s.groups.reused, s.groups.assignments
    ));
    for r in plan
        .roles
        .iter()
        .filter(|r| !r.permissions_not_carried.is_empty())
    {
        let names: Vec<String> = r
            .permissions_not_carried
            .iter()
            .map(|p| format!("{} ({})", p.name, p.resource_server))
            .collect();
        out.say(format!(
            "not carried: role `{}` (key `{}`): Authgear roles hold no permissions: {}",
            r.name,
            r.key,
            names.join(", ")
        ));
    }
    for g in &plan.group_roles {
        out.say(format!(
            "changed: {} member(s) of `{}` held role `{}` in that organization only; in Authgear it is their direct role, in every context",
            g.members, g.group, g.role
        ));
    }
    if s.group_roles_not_carried > 0 {
        out.say(format!(
            "not carried: {} organization member role assignment(s) (roles skipped or unknown)",
            s.group_roles_not_carried
        ));
    }
    let path = args.work_dir.join("tenant.json");
    std::fs::write(&path, serde_json::to_vec_pretty(plan)?)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    out.event(
        "tenant",
        json!({ "dry_run": args.run.dry_run, "roles": s.roles, "groups": s.groups,
                "permissions_not_carried": s.permissions_not_carried,
                "group_roles_as_direct": s.group_roles_as_direct,
                "group_roles_not_carried": s.group_roles_not_carried,
                "plan": path }),
    );
    Ok(())
}

/// Sets each user's roles and groups from the look-up, by source user id.
pub(crate) fn annotate(
    records: Box<dyn Iterator<Item = InputRecord> + Send>,
    memberships: Option<Memberships>,
) -> Box<dyn Iterator<Item = InputRecord> + Send> {
    let Some(m) = memberships else {
        return records;
    };
    Box::new(records.map(move |mut r| {
        if let Ok(u) = &mut r.record
            && let Some(id) = u.source_id.as_deref()
        {
            match m.of(id) {
                Ok((roles, groups)) => {
                    u.roles = roles;
                    u.groups = groups;
                }
                Err(e) => tracing::error!("tenant look-up for a user failed: {e}"),
            }
        }
        r
    }))
}
