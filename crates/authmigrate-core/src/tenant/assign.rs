//! Memberships assigned after the import, for a target whose import records cannot
//! name roles or groups (Auth0: a bulk-import user has no `roles`, and organizations
//! take members only through the Management API).
//!
//! 1. [`Recorder`]: while the users stream to the import, each record's roles (its
//!    own plus those its groups give: what its token carried) and groups are written
//!    to the tenant store under the user's identifier at the target (lower-cased
//!    e-mail, else username), by target key, and taken out of the record so that the
//!    mapping does not report them as left out.
//! 2. [`assign`], once the import finished: the target's ids of those users are found
//!    with one export of the target's users streamed into the store (bounded memory,
//!    one request however many users; auth0-rbac-orgs-mfa.md §4 calls the export job
//!    "the scalable path"), users the export did not list yet (exports may lag) are
//!    looked up one by one up to [`AssignOptions::lookups_max`], and each role's and
//!    group's members are sent in batches of [`MemberTarget::batch`].
//!
//! Resume: every assignment row has a status (`0` pending, `1` assigned, `2` refused by
//! the target, with its reason). A rerun sends only pending rows, so a kill during the
//! assignments gives every assignment once; the batch that was in flight is sent
//! again, which the target must treat as a no-op for members it already holds
//! (Auth0: adding a role's existing user or an organization's existing member
//! succeeds; the docs list no conflict answer for either).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::Kind;
use super::engine::TenantError;
use super::translate::Translation;
use crate::UserRecord;
use crate::backend::BackendError;
use crate::delete::Key;
use crate::workstore::{StoreError, WorkStore};

/// Rows written per store transaction while recording.
const COMMIT_EVERY: usize = 5000;

/// What the target answered to one batch of assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assigned {
    /// Every user of the batch holds it now.
    Done,
    /// The target refused the batch as a whole (its message): those assignments are
    /// reported, the run goes on.
    Refused(String),
}

/// A target that takes memberships after the import (Auth0).
#[async_trait]
pub trait MemberTarget: Send + Sync {
    /// Writes every user of the target's connection as NDJSON lines holding at least
    /// `user_id`, and `email` / `username` where the user has them.
    async fn export_users(&self, out: &mut (dyn std::io::Write + Send))
    -> Result<(), BackendError>;
    /// The target's id of the user with this e-mail or username, if any.
    async fn find_user(&self, key: &Key) -> Result<Option<String>, BackendError>;
    /// Gives `kind` `key` to these users (at most [`MemberTarget::batch`] of them).
    async fn assign(
        &self,
        kind: Kind,
        key: &str,
        user_ids: &[String],
    ) -> Result<Assigned, BackendError>;
    /// How many users one assignment request takes.
    fn batch(&self, kind: Kind) -> usize;
    /// The role and group keys (names) the user with this target id holds,
    /// tenant-wide; a part not asked for (`roles` / `groups` false) is empty.
    async fn held(&self, user_id: &str, roles: bool, groups: bool) -> Result<Held, BackendError>;
    /// Takes `kind` `keys` away from the user with this target id.
    async fn unassign(
        &self,
        user_id: &str,
        kind: Kind,
        keys: &[String],
    ) -> Result<Assigned, BackendError>;
}

/// What a user holds at a [`MemberTarget`], by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Role keys.
    pub roles: Vec<String>,
    /// Group keys (Auth0: organization names).
    pub groups: Vec<String>,
}

/// Counts of what the [`Recorder`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecordCounts {
    /// Users with at least one role or group.
    pub users: u64,
    /// Role assignments recorded (own and through groups).
    pub roles: u64,
    /// Of those, roles held through a group only.
    pub roles_through_groups: u64,
    /// Group memberships recorded.
    pub groups: u64,
    /// Role or group keys a record names that the source's directory does not hold.
    pub unknown_keys: u64,
    /// Users with roles or groups but neither e-mail nor username to find them by.
    pub no_identifier: u64,
}

/// Records the user stream's memberships into the tenant store (see the module docs).
pub struct Recorder {
    store: WorkStore,
    translation: Translation,
    open: bool,
    rows: usize,
    counts: RecordCounts,
    error: Option<String>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("store", &self.store.path())
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

fn db(store: &WorkStore) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| store.error(e)
}

impl Recorder {
    /// A recorder over the store a finished [`super::run`] left (its directory and
    /// keys); `roles` / `groups`: what is carried (not `--skip`).
    pub fn new(store: WorkStore, roles: bool, groups: bool) -> Result<Self, StoreError> {
        let translation = Translation::new(&store, roles, groups)?;
        Ok(Self {
            store,
            translation,
            open: false,
            rows: 0,
            counts: RecordCounts::default(),
            error: None,
        })
    }

    /// The identifier the target finds `user` by: `e:` + lower-cased e-mail, else
    /// `u:` + lower-cased username.
    pub fn user_key(user: &UserRecord) -> Option<String> {
        if let Some(e) = user.email.as_deref().filter(|e| !e.is_empty()) {
            return Some(format!("e:{}", e.to_lowercase()));
        }
        user.username
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|u| format!("u:{}", u.to_lowercase()))
    }

    /// Takes `user`'s roles and groups out of the record and records them.
    pub fn record(&mut self, user: &mut UserRecord) {
        self.record_with(user, false);
    }

    /// Like [`Self::record`]; `exact`: the recorded lists are the user's whole roles
    /// and groups at the target, so that [`super::sync`] removes what else the target
    /// holds (a delta's changed user), even when both lists are empty.
    pub fn record_with(&mut self, user: &mut UserRecord, exact: bool) {
        let own_roles = std::mem::take(&mut user.roles);
        let own_groups = std::mem::take(&mut user.groups);
        let t = self.translation.of(&own_roles, &own_groups);
        self.counts.unknown_keys += t.unknown;
        if t.roles.is_empty() && t.groups.is_empty() && !exact {
            return;
        }
        let Some(ukey) = Self::user_key(user) else {
            if !(t.roles.is_empty() && t.groups.is_empty()) {
                self.counts.no_identifier += 1;
            }
            return;
        };
        if !(t.roles.is_empty() && t.groups.is_empty()) {
            self.counts.users += 1;
        }
        self.counts.roles += t.roles.len() as u64;
        self.counts.roles_through_groups += t.through_groups;
        self.counts.groups += t.groups.len() as u64;
        let rows: Vec<(&'static str, String)> = t
            .roles
            .into_iter()
            .map(|k| ("role", k))
            .chain(t.groups.into_iter().map(|k| ("group", k)))
            .collect();
        let written = self.write(&ukey, &rows).and_then(|()| {
            if exact {
                self.mark_exact(&ukey)
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            self.error.get_or_insert(e.to_string());
        }
    }

    fn mark_exact(&mut self, ukey: &str) -> Result<(), StoreError> {
        self.store
            .conn()
            .prepare_cached("INSERT OR IGNORE INTO tenant_exact (ukey) VALUES (?1)")
            .and_then(|mut st| st.execute(params![ukey]))
            .map(drop)
            .map_err(db(&self.store))
    }

    fn write(&mut self, ukey: &str, rows: &[(&'static str, String)]) -> Result<(), StoreError> {
        let conn = self.store.conn();
        if !self.open {
            conn.execute_batch("BEGIN").map_err(db(&self.store))?;
            self.open = true;
        }
        let mut st = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO tenant_assign (ukey, kind, key) VALUES (?1, ?2, ?3)",
            )
            .map_err(db(&self.store))?;
        for (kind, key) in rows {
            st.execute(params![ukey, kind, key])
                .map_err(db(&self.store))?;
        }
        self.rows += rows.len().max(1);
        if self.rows >= COMMIT_EVERY {
            conn.execute_batch("COMMIT").map_err(db(&self.store))?;
            self.open = false;
            self.rows = 0;
        }
        Ok(())
    }

    /// What was recorded so far.
    pub fn counts(&self) -> RecordCounts {
        self.counts
    }

    /// Commits what was recorded so far (the recorder goes on); the first store
    /// error of the stream, if any.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.open {
            self.store
                .conn()
                .execute_batch("COMMIT")
                .map_err(db(&self.store))?;
            self.open = false;
            self.rows = 0;
        }
        match self.error.take() {
            Some(e) => Err(StoreError::new(self.store.path(), e)),
            None => Ok(()),
        }
    }

    /// Commits what was recorded; the first store error of the stream, if any.
    pub fn finish(mut self) -> Result<(WorkStore, RecordCounts), StoreError> {
        self.commit()?;
        Ok((self.store, self.counts))
    }
}

/// How [`assign`] runs.
pub struct AssignOptions {
    /// Count what would be assigned; send nothing.
    pub dry_run: bool,
    /// Where the export of the target's users is spooled (and removed).
    pub work_dir: PathBuf,
    /// Users the export did not list are looked up one by one up to this many (more
    /// are reported not found: a failed import, not a lagging export).
    pub lookups_max: usize,
    /// Called after each assignment request with how many were sent (crash tests).
    pub after_batch: Option<Box<dyn Fn(usize) + Send + Sync>>,
}

impl std::fmt::Debug for AssignOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssignOptions")
            .field("dry_run", &self.dry_run)
            .field("work_dir", &self.work_dir)
            .field("lookups_max", &self.lookups_max)
            .finish_non_exhaustive()
    }
}

/// Counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AssignCounts {
    /// Assigned by this run (in a dry run: that would be).
    pub assigned: u64,
    /// Assigned by an earlier run of the same store (a resumed run).
    pub earlier: u64,
    /// Refused by the target (reasons in [`AssignReport::refused`]).
    pub refused: u64,
    /// Not sent: the user is not at the target (its import failed).
    pub user_not_found: u64,
    /// Assignment requests sent.
    pub requests: u64,
}

/// Assignments refused for one role or group, with the target's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `role` or `group`.
    pub kind: Kind,
    /// Its target key.
    pub key: String,
    /// How many users.
    pub users: u64,
    /// The target's message.
    pub reason: String,
}

/// What [`assign`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AssignReport {
    /// Nothing was sent.
    pub dry_run: bool,
    /// Users with memberships.
    pub users: u64,
    /// Of those, found at the target.
    pub users_found: u64,
    /// Users looked up one by one (not in the export).
    pub looked_up: u64,
    /// Roles.
    pub roles: AssignCounts,
    /// Groups (Auth0: organization memberships).
    pub groups: AssignCounts,
    /// Refusals.
    pub refused: Vec<Refusal>,
    /// Identifiers of users not at the target (the first 100).
    pub not_found: Vec<String>,
}

#[derive(Deserialize)]
struct ExportedUser {
    user_id: String,
    email: Option<String>,
    username: Option<String>,
}

fn tenant_err(store: &WorkStore) -> impl Fn(rusqlite::Error) -> TenantError + '_ {
    move |e| TenantError::Store(store.error(e))
}

/// A count over the tenant tables.
pub(super) fn count(store: &WorkStore, sql: &str) -> Result<u64, TenantError> {
    scalar(store, sql, [])
}

fn scalar(store: &WorkStore, sql: &str, p: impl rusqlite::Params) -> Result<u64, TenantError> {
    store
        .conn()
        .query_row(sql, p, |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
        .map_err(tenant_err(store))
}

/// Assigns what the [`Recorder`] recorded (see the module docs).
pub async fn assign(
    target: &dyn MemberTarget,
    store: &WorkStore,
    opts: &AssignOptions,
) -> Result<AssignReport, TenantError> {
    let mut report = AssignReport {
        dry_run: opts.dry_run,
        users: scalar(store, "SELECT COUNT(DISTINCT ukey) FROM tenant_assign", [])?,
        ..AssignReport::default()
    };
    for kind in [Kind::Role, Kind::Group] {
        let c = counts_mut(&mut report, kind);
        c.earlier = scalar(
            store,
            "SELECT COUNT(*) FROM tenant_assign WHERE kind = ?1 AND status = 1",
            params![kind.as_str()],
        )?;
    }
    if opts.dry_run {
        for kind in [Kind::Role, Kind::Group] {
            let n = scalar(
                store,
                "SELECT COUNT(*) FROM tenant_assign WHERE kind = ?1 AND status = 0",
                params![kind.as_str()],
            )?;
            counts_mut(&mut report, kind).assigned = n;
        }
        return Ok(report);
    }
    let exact = scalar(store, "SELECT COUNT(*) FROM tenant_exact", [])?;
    if report.users == 0 && exact == 0 {
        return Ok(report);
    }
    resolve(target, store, opts, &mut report).await?;
    report.users_found = scalar(
        store,
        "SELECT COUNT(DISTINCT a.ukey) FROM tenant_assign a JOIN tenant_target_user t USING (ukey)",
        [],
    )?;
    let mut sent = 0usize;
    for kind in [Kind::Role, Kind::Group] {
        let keys: Vec<String> = {
            let conn = store.conn();
            let mut st = conn
                .prepare(
                    "SELECT DISTINCT key FROM tenant_assign WHERE kind = ?1 AND status = 0 ORDER BY key",
                )
                .map_err(tenant_err(store))?;
            st.query_map(params![kind.as_str()], |r| r.get(0))
                .map_err(tenant_err(store))?
                .collect::<Result<_, _>>()
                .map_err(tenant_err(store))?
        };
        let batch = target.batch(kind).max(1);
        for key in keys {
            loop {
                let rows: Vec<(String, String)> = {
                    let conn = store.conn();
                    let mut st = conn
                        .prepare_cached(
                            "SELECT a.ukey, t.id FROM tenant_assign a JOIN tenant_target_user t USING (ukey)
                             WHERE a.kind = ?1 AND a.key = ?2 AND a.status = 0 ORDER BY a.ukey LIMIT ?3",
                        )
                        .map_err(tenant_err(store))?;
                    st.query_map(params![kind.as_str(), key, batch as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(tenant_err(store))?
                    .collect::<Result<_, _>>()
                    .map_err(tenant_err(store))?
                };
                if rows.is_empty() {
                    break;
                }
                let ids: Vec<String> = rows.iter().map(|(_, id)| id.clone()).collect();
                let answer = target.assign(kind, &key, &ids).await?;
                let (status, reason) = match &answer {
                    Assigned::Done => (1, None),
                    Assigned::Refused(why) => (2, Some(why.as_str())),
                };
                {
                    let tx = store
                        .conn()
                        .unchecked_transaction()
                        .map_err(tenant_err(store))?;
                    for (ukey, _) in &rows {
                        tx.execute(
                            "UPDATE tenant_assign SET status = ?4, reason = ?5
                             WHERE ukey = ?1 AND kind = ?2 AND key = ?3",
                            params![ukey, kind.as_str(), key, status, reason],
                        )
                        .map_err(tenant_err(store))?;
                    }
                    tx.commit().map_err(tenant_err(store))?;
                }
                let c = counts_mut(&mut report, kind);
                c.requests += 1;
                match answer {
                    Assigned::Done => c.assigned += rows.len() as u64,
                    Assigned::Refused(_) => c.refused += rows.len() as u64,
                }
                sent += 1;
                if let Some(hook) = &opts.after_batch {
                    hook(sent);
                }
            }
        }
        counts_mut(&mut report, kind).user_not_found = scalar(
            store,
            "SELECT COUNT(*) FROM tenant_assign WHERE kind = ?1 AND status = 0
             AND ukey NOT IN (SELECT ukey FROM tenant_target_user)",
            params![kind.as_str()],
        )?;
    }
    report.refused = refusals(store)?;
    report.not_found = {
        let conn = store.conn();
        let mut st = conn
            .prepare(
                "SELECT DISTINCT ukey FROM tenant_assign WHERE status = 0
                 AND ukey NOT IN (SELECT ukey FROM tenant_target_user) ORDER BY ukey LIMIT 100",
            )
            .map_err(tenant_err(store))?;
        st.query_map([], |r| r.get::<_, String>(0))
            .map_err(tenant_err(store))?
            .map(|k| k.map(|k| k.get(2..).unwrap_or_default().to_owned()))
            .collect::<Result<_, _>>()
            .map_err(tenant_err(store))?
    };
    Ok(report)
}

fn counts_mut(report: &mut AssignReport, kind: Kind) -> &mut AssignCounts {
    match kind {
        Kind::Role => &mut report.roles,
        Kind::Group => &mut report.groups,
    }
}

fn refusals(store: &WorkStore) -> Result<Vec<Refusal>, TenantError> {
    let conn = store.conn();
    let mut st = conn
        .prepare(
            "SELECT kind, key, COUNT(*), reason FROM tenant_assign WHERE status = 2
             GROUP BY kind, key, reason ORDER BY kind, key",
        )
        .map_err(tenant_err(store))?;
    st.query_map([], |r| {
        let kind: String = r.get(0)?;
        Ok(Refusal {
            kind: if kind == "role" {
                Kind::Role
            } else {
                Kind::Group
            },
            key: r.get(1)?,
            users: r.get::<_, i64>(2)?.max(0) as u64,
            reason: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        })
    })
    .map_err(tenant_err(store))?
    .collect::<Result<_, _>>()
    .map_err(tenant_err(store))
}

/// Finds the target's ids of the recorded users: one export (once per store), then
/// single look-ups of the users it did not list.
async fn resolve(
    target: &dyn MemberTarget,
    store: &WorkStore,
    opts: &AssignOptions,
    report: &mut AssignReport,
) -> Result<(), TenantError> {
    let exported: Option<String> = store
        .conn()
        .query_row("SELECT v FROM tenant_meta WHERE k = 'exported'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(tenant_err(store))?;
    if exported.is_none() {
        let spool = opts.work_dir.join("tenant-target-users.ndjson");
        let result = spool_export(target, store, &spool).await;
        let _ = std::fs::remove_file(&spool);
        result?;
        store
            .conn()
            .execute("INSERT INTO tenant_meta VALUES ('exported', '1')", [])
            .map_err(tenant_err(store))?;
    }
    let missing: Vec<String> = {
        let conn = store.conn();
        let mut st = conn
            .prepare(
                "SELECT ukey FROM tenant_assign WHERE status = 0
                 UNION SELECT ukey FROM tenant_exact WHERE status = 0
                 EXCEPT SELECT ukey FROM tenant_target_user ORDER BY ukey",
            )
            .map_err(tenant_err(store))?;
        st.query_map([], |r| r.get(0))
            .map_err(tenant_err(store))?
            .collect::<Result<_, _>>()
            .map_err(tenant_err(store))?
    };
    if missing.is_empty() || missing.len() > opts.lookups_max {
        if !missing.is_empty() {
            tracing::info!(
                users = missing.len(),
                "not looking up, one by one, users the target's export did not list (more than {})",
                opts.lookups_max
            );
        }
        return Ok(());
    }
    for ukey in missing {
        let key = match ukey.split_at(2) {
            ("e:", v) => Key::Email(v.to_owned()),
            (_, v) => Key::Username(v.to_owned()),
        };
        report.looked_up += 1;
        if let Some(id) = target.find_user(&key).await? {
            store
                .conn()
                .execute(
                    "INSERT OR REPLACE INTO tenant_target_user VALUES (?1, ?2)",
                    params![ukey, id],
                )
                .map_err(tenant_err(store))?;
        }
    }
    Ok(())
}

async fn spool_export(
    target: &dyn MemberTarget,
    store: &WorkStore,
    spool: &std::path::Path,
) -> Result<(), TenantError> {
    let io = |e: std::io::Error| {
        TenantError::Store(StoreError::new(
            spool,
            format!("cannot spool the target's users: {e}"),
        ))
    };
    {
        let file = std::fs::File::create(spool).map_err(io)?;
        let mut w = std::io::BufWriter::new(file);
        target.export_users(&mut w).await?;
        std::io::Write::flush(&mut w).map_err(io)?;
    }
    let reader = BufReader::new(std::fs::File::open(spool).map_err(io)?);
    let tx = store
        .conn()
        .unchecked_transaction()
        .map_err(tenant_err(store))?;
    {
        let mut st = tx
            .prepare(
                "INSERT OR REPLACE INTO tenant_target_user SELECT ?1, ?2
                 WHERE EXISTS (SELECT 1 FROM tenant_assign WHERE ukey = ?1)
                    OR EXISTS (SELECT 1 FROM tenant_exact WHERE ukey = ?1)",
            )
            .map_err(tenant_err(store))?;
        for (n, line) in reader.lines().enumerate() {
            let line = line.map_err(io)?;
            if line.trim().is_empty() {
                continue;
            }
            let u: ExportedUser = serde_json::from_str(&line).map_err(|e| {
                TenantError::Backend(BackendError::fatal(
                    format!("the target's users export, line {}: not a user: {e}", n + 1),
                    None,
                ))
            })?;
            if let Some(e) = u.email.filter(|e| !e.is_empty()) {
                st.execute(params![format!("e:{}", e.to_lowercase()), u.user_id])
                    .map_err(tenant_err(store))?;
            }
            if let Some(name) = u.username.filter(|n| !n.is_empty()) {
                st.execute(params![format!("u:{}", name.to_lowercase()), u.user_id])
                    .map_err(tenant_err(store))?;
            }
        }
    }
    tx.commit().map_err(tenant_err(store))?;
    Ok(())
}

#[cfg(test)]
#[path = "assign_tests.rs"]
mod tests;
