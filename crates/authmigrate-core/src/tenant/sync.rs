//! Makes the memberships of the users recorded as exact ([`super::Recorder::record_with`],
//! a delta's changed users) exactly what was recorded, at a [`MemberTarget`] that only
//! adds them on import (Auth0): run after [`super::assign`], it reads what each such
//! user holds at the target ([`MemberTarget::held`]) and takes away the roles and
//! groups the recording does not name ([`MemberTarget::unassign`]). Keys compare
//! ignoring case (Auth0 role and organization names are matched so by the tenant step).
//!
//! Resume: each exact user has a status (`0` pending, `1` done); a rerun reads and
//! changes only pending users. A user the target does not hold is left pending and
//! reported (its import failed).

use std::collections::HashSet;

use rusqlite::params;
use serde::Serialize;

use super::Kind;
use super::assign::{Assigned, MemberTarget};
use super::engine::TenantError;
use crate::workstore::WorkStore;

/// How [`sync`] runs.
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// Count the users to check; read and send nothing.
    pub dry_run: bool,
    /// Roles are carried (not `--skip roles`).
    pub roles: bool,
    /// Groups are carried (not `--skip groups`).
    pub groups: bool,
}

/// What [`sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Nothing was read or sent.
    pub dry_run: bool,
    /// Users whose memberships are to be exact (pending before this run).
    pub users: u64,
    /// Of those, read at the target by this run.
    pub checked: u64,
    /// Not at the target (left pending).
    pub not_found: u64,
    /// Role assignments taken away.
    pub roles_removed: u64,
    /// Group memberships taken away.
    pub groups_removed: u64,
    /// The target's refusals, `kind key: reason` (the first 100).
    pub refused: Vec<String>,
}

fn tenant_err(store: &WorkStore) -> impl Fn(rusqlite::Error) -> TenantError + '_ {
    move |e| TenantError::Store(store.error(e))
}

/// Removes what the exact users hold beyond their recorded memberships (see the
/// module docs).
pub async fn sync(
    target: &dyn MemberTarget,
    store: &WorkStore,
    opts: &SyncOptions,
) -> Result<SyncReport, TenantError> {
    let mut report = SyncReport {
        dry_run: opts.dry_run,
        users: super::assign::count(store, "SELECT COUNT(*) FROM tenant_exact WHERE status = 0")?,
        ..SyncReport::default()
    };
    if opts.dry_run {
        return Ok(report);
    }
    // Page by page in key order (bounded memory however many users changed).
    let mut after = String::new();
    loop {
        let page = pending_page(store, &after)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = last.clone();
        for (ukey, id) in page {
            let Some(id) = id else {
                report.not_found += 1;
                continue;
            };
            make_exact(target, store, opts, &ukey, &id, &mut report).await?;
        }
    }
    Ok(report)
}

/// Users a page: the pending exact users after `after`, with their target ids.
const PAGE: i64 = 1000;

fn pending_page(
    store: &WorkStore,
    after: &str,
) -> Result<Vec<(String, Option<String>)>, TenantError> {
    let conn = store.conn();
    let mut st = conn
        .prepare_cached(
            "SELECT e.ukey, t.id FROM tenant_exact e LEFT JOIN tenant_target_user t USING (ukey)
             WHERE e.status = 0 AND e.ukey > ?1 ORDER BY e.ukey LIMIT ?2",
        )
        .map_err(tenant_err(store))?;
    st.query_map(params![after, PAGE], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(tenant_err(store))?
        .collect::<Result<_, _>>()
        .map_err(tenant_err(store))
}

/// Reads what one user holds, removes what was not recorded, marks the user done.
async fn make_exact(
    target: &dyn MemberTarget,
    store: &WorkStore,
    opts: &SyncOptions,
    ukey: &str,
    id: &str,
    report: &mut SyncReport,
) -> Result<(), TenantError> {
    let held = target.held(id, opts.roles, opts.groups).await?;
    report.checked += 1;
    let wanted = recorded(store, ukey)?;
    for (kind, carried, have) in [
        (Kind::Role, opts.roles, held.roles),
        (Kind::Group, opts.groups, held.groups),
    ] {
        if !carried {
            continue;
        }
        let extra: Vec<String> = have
            .into_iter()
            .filter(|k| !wanted.contains(&(kind, k.to_lowercase())))
            .collect();
        if extra.is_empty() {
            continue;
        }
        match target.unassign(id, kind, &extra).await? {
            Assigned::Done => match kind {
                Kind::Role => report.roles_removed += extra.len() as u64,
                Kind::Group => report.groups_removed += extra.len() as u64,
            },
            Assigned::Refused(why) => {
                if report.refused.len() < 100 {
                    report
                        .refused
                        .push(format!("{} {}: {why}", kind.as_str(), extra.join(", ")));
                }
            }
        }
    }
    store
        .conn()
        .execute(
            "UPDATE tenant_exact SET status = 1 WHERE ukey = ?1",
            params![ukey],
        )
        .map_err(tenant_err(store))?;
    Ok(())
}

/// The recorded (kind, lower-cased key) pairs of one user.
fn recorded(store: &WorkStore, ukey: &str) -> Result<HashSet<(Kind, String)>, TenantError> {
    let conn = store.conn();
    let mut st = conn
        .prepare_cached("SELECT kind, key FROM tenant_assign WHERE ukey = ?1")
        .map_err(tenant_err(store))?;
    st.query_map(params![ukey], |r| {
        let kind: String = r.get(0)?;
        let key: String = r.get(1)?;
        let kind = if kind == "role" {
            Kind::Role
        } else {
            Kind::Group
        };
        Ok((kind, key.to_lowercase()))
    })
    .map_err(tenant_err(store))?
    .collect::<Result<_, _>>()
    .map_err(tenant_err(store))
}
