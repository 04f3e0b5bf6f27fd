//! Authgear → Auth0: the roles and organizations each user should hold at Auth0, and
//! those it holds there.
//!
//! - Expected: `migrate`'s tenant step towards Auth0 as a dry run (its store in the
//!   work dir, `verify-tenant.sqlite`; nothing is written at Auth0) gives the Auth0
//!   name of every Authgear role and group; each source user's own roles, the roles
//!   its groups give, and its groups are turned into those names by the one
//!   [`Translation`] the recorder of `migrate` uses.
//! - Held: every Auth0 role's users and every organization's members, read through
//!   the Auth0 tenant source into a scratch store in the work dir ([`read_held`]), and set on
//!   each exported Auth0 user by its id before the comparison.
//!
//! Both reads run while the export jobs do. `--skip roles|groups` leaves a part
//! unread and uncompared.

use anyhow::Context;
use authmigrate_auth0::tenant::Auth0Tenant;
use authmigrate_auth0::tenant_target::Auth0TenantTarget;
use authmigrate_authgear::tenant::AuthgearTenant;
use authmigrate_core::driver::InputRecord;
use authmigrate_core::tenant::{HeldMemberships, Plan, TenantOptions, Translation, read_held, run};
use authmigrate_core::workstore::WorkStore;

use super::super::tenant_auth0::tenant_error;
use crate::backends::{auth0_settings, authgear_settings, backend_error};
use crate::cli::{Provider, Skip, VerifyArgs};
use crate::output::Output;

/// What was read, for the two streams.
pub(super) struct Members {
    pub(super) translation: Translation,
    pub(super) held: HeldMemberships,
    plan: Plan,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field("held", &self.held.counts())
            .finish_non_exhaustive()
    }
}

/// Whether roles and groups are compared this way (each): Authgear → Auth0, not
/// `--skip`ped.
pub(super) fn compared(args: &VerifyArgs) -> (bool, bool) {
    if args.from != Provider::Authgear || args.to != Provider::Auth0 {
        return (false, false);
    }
    (
        !args.skip.contains(&Skip::Roles),
        !args.skip.contains(&Skip::Groups),
    )
}

/// Reads the expected names (a dry-run tenant step) and what Auth0 holds; `None`
/// when neither roles nor groups are compared.
pub(super) async fn read(args: &VerifyArgs, out: &Output) -> anyhow::Result<Option<Members>> {
    let (roles, groups) = compared(args);
    if !roles && !groups {
        return Ok(None);
    }
    let context = "verify compares the users' roles and organizations at Auth0 with their \
                   Authgear roles and groups (`--skip roles,groups` leaves them uncompared)";
    let mut auth0 = auth0_settings(&args.auth0).context(context)?;
    auth0.connection = args.connection.clone();
    let authgear = authgear_settings(&args.authgear, &args.map).context(context)?;
    out.say(
        "reading the Authgear roles and groups and the Auth0 roles' users and organizations' members",
    );
    let source = AuthgearTenant::new(&authgear).map_err(backend_error)?;
    let target = Auth0TenantTarget::new(&auth0).map_err(backend_error)?;
    let opts = TenantOptions {
        roles,
        groups,
        role_map: args.role_map.clone(),
        dry_run: true,
        store: args.work_dir.join("verify-tenant.sqlite"),
        resume: false,
        target_holds_permissions: true,
        after_batch: None,
    };
    let (plan, memberships) = run(&source, &target, &opts)
        .await
        .map_err(tenant_error)
        .context(context)?;
    let translation = Translation::new(&memberships.into_store(), roles, groups)?;
    // Scratch data: a temporary store in the work dir, removed when verify ends.
    let tenant = Auth0Tenant::new(&auth0).map_err(backend_error)?;
    let held = read_held(
        &tenant,
        WorkStore::temporary(Some(&args.work_dir))?,
        roles,
        groups,
    )
    .await
    .map_err(tenant_error)
    .context(context)?;
    Ok(Some(Members {
        translation,
        held,
        plan,
    }))
}

impl Members {
    /// Says what was read, and which Authgear roles and groups Auth0 lacks (their
    /// users are then listed as different).
    pub(super) fn say(&self, out: &Output) {
        let (roles, groups) = super::lacking(&self.plan);
        let s = &self.plan.summary;
        let h = self.held.counts();
        out.say(format!(
            "roles: {} at Authgear, {} of them at Auth0 ({} user role assignments there); \
             groups: {} at Authgear, {} of them Auth0 organizations ({} memberships there)",
            s.roles.source,
            s.roles.source.saturating_sub(roles.len() as u64),
            h.role_assignments,
            s.groups.source,
            s.groups.source.saturating_sub(groups.len() as u64),
            h.memberships,
        ));
        super::say_lacking(
            &self.plan,
            (h.role_assignments, h.memberships),
            ("organization", "Auth0"),
            (&roles, &groups),
            out,
        );
    }

    /// The source users with their roles and groups as Auth0 names.
    pub(super) fn sources(
        translation: Translation,
        records: Box<dyn Iterator<Item = InputRecord> + Send>,
    ) -> Box<dyn Iterator<Item = InputRecord> + Send> {
        Box::new(records.map(move |mut r| {
            if let Ok(u) = &mut r.record {
                let t = translation.of(&u.roles, &u.groups);
                u.roles = t.roles;
                u.groups = t.groups;
            }
            r
        }))
    }

    /// The Auth0 users with the roles and organizations they hold there.
    pub(super) fn targets(
        held: HeldMemberships,
        records: Box<dyn Iterator<Item = InputRecord> + Send>,
    ) -> Box<dyn Iterator<Item = InputRecord> + Send> {
        Box::new(records.map(move |mut r| {
            if let Ok(u) = &mut r.record
                && let Some(id) = u.source_id.as_deref()
            {
                match held.of(id) {
                    Ok((roles, groups)) => {
                        u.roles = roles;
                        u.groups = groups;
                    }
                    Err(e) => {
                        r.record = Err(authmigrate_core::backend::RecordFailure::new(
                            "STORE",
                            format!("cannot read what the user holds at Auth0: {e}"),
                        ));
                    }
                }
            }
            r
        }))
    }
}
