//! `migrate`'s tenant step (issue 13, `docs/tenant.md`): roles, organizations →
//! groups and memberships, wired from the provider crates into the core engine, and
//! rendered. The user stream is annotated from the membership look-up by source id.

use std::path::PathBuf;

use anyhow::Context;
use authmigrate_core::driver::InputRecord;
use authmigrate_core::record::MfaFactor;
use authmigrate_core::tenant::mfa::MfaSecrets;
use authmigrate_core::tenant::{Memberships, Plan, TenantOptions, run};
use serde_json::json;

use crate::backends::{auth0_settings, authgear_settings, backend_error};
use crate::cli::{MigrateArgs, Provider, Skip};
use crate::output::Output;

/// The tenant store in the work dir.
fn store(args: &MigrateArgs) -> PathBuf {
    args.work_dir.join("tenant.sqlite")
}

/// Test hook (crash tests only): `AUTHMIGRATE_TEST_ABORT_AT=<prefix><n>` (prefix
/// `tenant-create:` or `tenant-assign:`) aborts the process after the nth create or
/// assignment request succeeded.
pub(crate) fn abort_hook(prefix: &str) -> Option<Box<dyn Fn(usize) + Send + Sync>> {
    let v = std::env::var("AUTHMIGRATE_TEST_ABORT_AT").ok()?;
    let n: usize = v.strip_prefix(prefix)?.parse().ok()?;
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
        // Authgear → Auth0: `tenant_auth0`.
        return Ok(None);
    }
    let path = store(args);
    let pending = args.work_dir.join("tenant.pending");
    let resume = resuming(args, &path, &pending);
    if !args.run.dry_run {
        std::fs::write(&pending, b"")
            .with_context(|| format!("cannot write `{}`", pending.display()))?;
    }
    let step = Step {
        auth0: auth0_settings(&args.auth0)?,
        authgear: authgear_settings(&args.authgear, &args.map)?,
        roles,
        groups,
        role_map: args.role_map.clone(),
        dry_run: args.run.dry_run,
        store: path,
        resume,
        after_batch: abort_hook("tenant-create:"),
    };
    if resume {
        out.say("resuming the tenant step: reusing the crawled roles and organizations");
    }
    let (plan, memberships) = carry(step).await?;
    if !args.run.dry_run {
        let _ = std::fs::remove_file(&pending);
    }
    render(args.run.dry_run, &args.work_dir, &plan, out)?;
    Ok(Some(memberships))
}

/// Whether the tenant step resumes from `store`: a run with `--state` whose state
/// exists, or whose last run was killed during the step (`pending`, a marker kept while
/// the step runs: the driver's state file does not exist yet then).
pub(crate) fn resuming(
    args: &MigrateArgs,
    store: &std::path::Path,
    pending: &std::path::Path,
) -> bool {
    store.exists()
        && args
            .run
            .state
            .as_ref()
            .is_some_and(|s| s.exists() || pending.exists())
}

/// One Auth0 → Authgear tenant step (what `migrate` and `demo` both run).
pub(crate) struct Step {
    pub(crate) auth0: authmigrate_auth0::Auth0Settings,
    pub(crate) authgear: authmigrate_authgear::AuthgearSettings,
    pub(crate) roles: bool,
    pub(crate) groups: bool,
    pub(crate) role_map: Vec<(String, String)>,
    pub(crate) dry_run: bool,
    pub(crate) store: PathBuf,
    pub(crate) resume: bool,
    pub(crate) after_batch: Option<Box<dyn Fn(usize) + Send + Sync>>,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("roles", &self.roles)
            .field("groups", &self.groups)
            .field("dry_run", &self.dry_run)
            .field("resume", &self.resume)
            .finish_non_exhaustive()
    }
}

/// Crawls the Auth0 tenant, creates the roles and groups in Authgear and returns the
/// plan with the users' membership look-up.
pub(crate) async fn carry(step: Step) -> anyhow::Result<(Plan, Memberships)> {
    let source = authmigrate_auth0::tenant::Auth0Tenant::new(&step.auth0).map_err(backend_error)?;
    let target =
        authmigrate_authgear::tenant::AuthgearTenant::new(&step.authgear).map_err(backend_error)?;
    let opts = TenantOptions {
        roles: step.roles,
        groups: step.groups,
        role_map: step.role_map,
        dry_run: step.dry_run,
        store: step.store,
        resume: step.resume,
        target_holds_permissions: false,
        after_batch: step.after_batch,
    };
    run(&source, &target, &opts).await.map_err(|e| match e {
        authmigrate_core::tenant::engine::TenantError::Backend(b) => backend_error(b),
        other => anyhow::anyhow!(other),
    })
}

/// Prints the plan's counts and what is not carried; writes `tenant.json` into `work_dir`.
pub(crate) fn render(
    dry_run: bool,
    work_dir: &std::path::Path,
    plan: &Plan,
    out: &Output,
) -> anyhow::Result<()> {
    let s = &plan.summary;
    let verb = if dry_run { "would create" } else { "created" };
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
    let path = work_dir.join("tenant.json");
    std::fs::write(&path, serde_json::to_vec_pretty(plan)?)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    out.add_to_summary("roles", json!(s.roles));
    out.add_to_summary("groups", json!(s.groups));
    out.event(
        "tenant",
        json!({ "dry_run": dry_run, "roles": s.roles, "groups": s.groups,
                "permissions_not_carried": s.permissions_not_carried,
                "group_roles_as_direct": s.group_roles_as_direct,
                "group_roles_not_carried": s.group_roles_not_carried,
                "plan": path }),
    );
    Ok(())
}

/// `--mfa-secrets`: the Auth0 MFA export, loaded for the join (`None` without it or
/// with `--skip mfa`).
pub(crate) fn mfa_secrets(args: &MigrateArgs, out: &Output) -> anyhow::Result<Option<MfaSecrets>> {
    let Some(path) = &args.mfa_secrets else {
        return Ok(None);
    };
    if args.skip.contains(&Skip::Mfa) {
        out.say("note: `--skip mfa`: the MFA export is not read");
        return Ok(None);
    }
    if args.from != Provider::Auth0 {
        anyhow::bail!(
            "`--mfa-secrets` is an Auth0 MFA export: it only applies with `--from auth0`"
        );
    }
    let secrets = load_mfa(path, &args.work_dir, out)?;
    if args.run.upsert && args.to == Provider::Authgear {
        out.say(
            "note: with `--upsert`, Authgear ignores `mfa.totp` for users that exist already: \
             their TOTP secret is not carried (each one is listed after the run)",
        );
    }
    Ok(Some(secrets))
}

/// Loads an Auth0 MFA export for the join (its index in `work_dir`) and says what it holds.
pub(crate) fn load_mfa(
    path: &std::path::Path,
    work_dir: &std::path::Path,
    out: &Output,
) -> anyhow::Result<MfaSecrets> {
    let (secrets, c) = MfaSecrets::load(path, Some(work_dir)).map_err(|e| anyhow::anyhow!(e))?;
    out.say(format!(
        "mfa: {} users with a TOTP secret in `{}`; not carried: {} recovery-code rows (Authgear imports none), {} rows of other factor types, {} extra TOTP rows (one TOTP per user)",
        c.otp_users,
        path.display(),
        c.recovery_codes,
        c.other,
        c.otp_duplicates
    ));
    out.add_to_summary("mfa", json!(c));
    out.event("mfa_secrets", json!({ "file": path, "counts": c }));
    Ok(secrets)
}

/// Counts of the MFA join, for the summary.
#[derive(Debug, Default)]
pub(crate) struct MfaJoined {
    /// Users given a TOTP secret from the export.
    pub(crate) joined: std::sync::atomic::AtomicU64,
}

/// Sets each user's roles and groups from the look-up and their TOTP secret from the
/// MFA export, by source user id; `--skip mfa` drops the records' MFA factors.
pub(crate) fn annotate(
    records: Box<dyn Iterator<Item = InputRecord> + Send>,
    memberships: Option<Memberships>,
    mfa: Option<MfaSecrets>,
    skip_mfa: bool,
    joined: std::sync::Arc<MfaJoined>,
) -> Box<dyn Iterator<Item = InputRecord> + Send> {
    if memberships.is_none() && mfa.is_none() && !skip_mfa {
        return records;
    }
    Box::new(records.map(move |mut r| {
        let Ok(u) = &mut r.record else { return r };
        if skip_mfa {
            u.mfa.clear();
        }
        let Some(id) = u.source_id.clone() else {
            return r;
        };
        if let Some(m) = &memberships {
            match m.of(&id) {
                Ok((roles, groups)) => {
                    u.roles = roles;
                    u.groups = groups;
                    // The lists read are whole: an empty one is sent as such, so that
                    // an upsert removes what the user no longer holds.
                    (u.roles_exact, u.groups_exact) = m.carried();
                }
                Err(e) => tracing::error!("tenant look-up for a user failed: {e}"),
            }
        }
        if let Some(m) = &mfa
            && !u.mfa.iter().any(|f| matches!(f, MfaFactor::Totp { .. }))
        {
            match m.totp(&id) {
                Ok(Some(secret)) => {
                    u.mfa.push(MfaFactor::Totp { secret });
                    joined
                        .joined
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(None) => {}
                Err(e) => tracing::error!("mfa look-up for a user failed: {e}"),
            }
        }
        r
    }))
}
