//! The tenant engine: crawl, plan, create, and the membership look-up.
//!
//! State lives in the run's [`WorkStore`] under the schema `tenant` (version 1):
//! - `tenant_meta`: `crawled` once the source's directory and memberships are in;
//! - `tenant_entry`: one row per source role or group: its key and what happens to
//!   it (`create`, `reuse`; `sent` while a create request is out, `created` after);
//! - `tenant_user_role` / `tenant_user_group`: user id → role / group keys;
//! - `tenant_group_role`: how many members of a group hold a role in it only;
//! - `tenant_grant`: the roles a group gives all its members (Authgear group roles),
//!   by target keys;
//! - `tenant_assign` / `tenant_target_user`: memberships recorded from the user
//!   stream and the target's ids of those users (see [`super::assign`]);
//! - `tenant_exact`: users whose recorded memberships are their whole ones at the
//!   target (a delta's changed users), with a status once [`super::sync`] made them so.
//!
//! Resume: a rerun with the same store does not crawl again, lists the target's keys
//! again, and creates only keys the target does not hold, so a kill during creation
//! gives every role and group once. A key that exists and was `sent`/`created` by
//! this run is counted created, not reused.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::keys::{KeyRule, Naming, auth0_role_names};
use super::{NewEntry, Permission, TenantSource, TenantTarget};
use crate::backend::BackendError;
use crate::workstore::{StoreError, WorkStore};

const DDL: &str = "
CREATE TABLE tenant_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE tenant_entry (kind TEXT NOT NULL, source_id TEXT NOT NULL, key TEXT NOT NULL,
  name TEXT NOT NULL, description TEXT, permissions TEXT NOT NULL, status TEXT NOT NULL,
  PRIMARY KEY (kind, source_id));
CREATE TABLE tenant_user_role (user_id TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (user_id, key))
  WITHOUT ROWID;
CREATE TABLE tenant_user_group (user_id TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (user_id, key))
  WITHOUT ROWID;
CREATE TABLE tenant_group_role (group_key TEXT NOT NULL, role_key TEXT NOT NULL,
  members INTEGER NOT NULL, PRIMARY KEY (group_key, role_key));
CREATE TABLE tenant_grant (group_id TEXT NOT NULL, role_key TEXT NOT NULL,
  PRIMARY KEY (group_id, role_key)) WITHOUT ROWID;
CREATE TABLE tenant_assign (ukey TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
  status INTEGER NOT NULL DEFAULT 0, reason TEXT, PRIMARY KEY (ukey, kind, key)) WITHOUT ROWID;
CREATE INDEX tenant_assign_pending ON tenant_assign (kind, key, status);
CREATE TABLE tenant_target_user (ukey TEXT PRIMARY KEY, id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE tenant_exact (ukey TEXT PRIMARY KEY, status INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
";

/// The version of the `tenant` tables.
pub(super) const SCHEMA: u32 = 3;

/// How [`run`] runs.
pub struct TenantOptions {
    /// Carry roles (not `--skip roles`).
    pub roles: bool,
    /// Carry groups / organizations (not `--skip groups`).
    pub groups: bool,
    /// `--role-map NAME=KEY` overrides.
    pub role_map: Vec<(String, String)>,
    /// Plan only: read the source and the target's keys, write nothing.
    pub dry_run: bool,
    /// The durable store (in the run's work dir).
    pub store: PathBuf,
    /// Keep what the store holds (a resumed run); else start afresh.
    pub resume: bool,
    /// Whether the target's roles hold permissions (Authgear's do not; Authgear, as a
    /// source, has none to give).
    pub target_holds_permissions: bool,
    /// Called after each create request with how many requests succeeded so far
    /// (a test hook for crash tests).
    pub after_batch: Option<Box<dyn Fn(usize) + Send + Sync>>,
}

impl std::fmt::Debug for TenantOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantOptions")
            .field("roles", &self.roles)
            .field("groups", &self.groups)
            .field("dry_run", &self.dry_run)
            .field("store", &self.store)
            .field("resume", &self.resume)
            .finish_non_exhaustive()
    }
}

/// Counts of one kind (roles or groups).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// Entries at the source.
    pub source: u64,
    /// Created at the target by this run (or, in a dry run, that would be).
    pub created: u64,
    /// Already at the target under the same key, reused.
    pub reused: u64,
    /// User assignments carried in the users' records.
    pub assignments: u64,
}

/// The summary of the tenant step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TenantSummary {
    /// Roles.
    pub roles: KindCounts,
    /// Groups.
    pub groups: KindCounts,
    /// Permissions the target cannot hold (listed per role in the plan).
    pub permissions_not_carried: u64,
    /// In-group role assignments (Auth0 organization member roles) carried as the
    /// user's direct roles.
    pub group_roles_as_direct: u64,
    /// In-group role assignments not carried (roles skipped).
    pub group_roles_not_carried: u64,
}

/// One planned role or group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedEntry {
    /// The source name.
    pub name: String,
    /// The target key.
    pub key: String,
    /// `create`, `reuse` or `created`.
    pub action: String,
    /// Permissions the target cannot hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions_not_carried: Vec<Permission>,
}

/// An in-group role carried as the members' direct role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRole {
    /// The group key.
    pub group: String,
    /// The role key.
    pub role: String,
    /// How many members held it in that group.
    pub members: u64,
}

/// The plan and what was done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The counts.
    pub summary: TenantSummary,
    /// Every role.
    pub roles: Vec<PlannedEntry>,
    /// Every group.
    pub groups: Vec<PlannedEntry>,
    /// Organization member roles that became direct roles (what changes: the role
    /// holds in every context, not only in its organization).
    pub group_roles: Vec<GroupRole>,
}

/// An error of the tenant step.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The source or target refused or failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Bad options (`--role-map`).
    #[error("{0}")]
    Options(String),
}

/// The keyed look-up of memberships for the user stream.
#[derive(Debug)]
pub struct Memberships {
    store: WorkStore,
    roles: bool,
    groups: bool,
}

impl Memberships {
    /// Opens the memberships a finished [`run`] left in `store`; `roles` / `groups`:
    /// whether that run read them (else they are empty for every user).
    pub fn open(store: WorkStore, roles: bool, groups: bool) -> Self {
        Self {
            store,
            roles,
            groups,
        }
    }

    /// Whether the lists [`Self::of`] returns are the users' whole roles and whole
    /// groups (the run read them), each.
    pub fn carried(&self) -> (bool, bool) {
        (self.roles, self.groups)
    }

    /// The store, for the [`super::Recorder`] of a target that is assigned after the
    /// import.
    pub fn into_store(self) -> WorkStore {
        self.store
    }

    /// The role keys and group keys of a source user id, sorted.
    pub fn of(&self, user_id: &str) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let q = |sql: &str| -> Result<Vec<String>, StoreError> {
            let conn = self.store.conn();
            let mut st = conn.prepare_cached(sql).map_err(|e| self.store.error(e))?;
            let rows = st
                .query_map(params![user_id], |r| r.get::<_, String>(0))
                .map_err(|e| self.store.error(e))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.store.error(e))
        };
        Ok((
            q("SELECT key FROM tenant_user_role WHERE user_id = ?1 ORDER BY key")?,
            q("SELECT key FROM tenant_user_group WHERE user_id = ?1 ORDER BY key")?,
        ))
    }
}

fn db(store: &WorkStore) -> impl Fn(rusqlite::Error) -> TenantError + '_ {
    move |e| TenantError::Store(store.error(e))
}

/// Runs the tenant step (see the module docs); returns the plan (with what was
/// done) and the membership look-up.
pub async fn run(
    source: &dyn TenantSource,
    target: &dyn TenantTarget,
    opts: &TenantOptions,
) -> Result<(Plan, Memberships), TenantError> {
    if !opts.resume {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = opts.store.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
    let store = WorkStore::open(&opts.store)?;
    store.ensure_schema("tenant", SCHEMA, DDL)?;
    let crawled: Option<String> = store
        .conn()
        .query_row("SELECT v FROM tenant_meta WHERE k = 'crawled'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db(&store))?;
    if crawled.is_none() {
        crawl(source, target.naming(), opts, &store).await?;
    }
    let plan = plan_and_create(target, opts, &store).await?;
    Ok((plan, Memberships::open(store, opts.roles, opts.groups)))
}

async fn crawl(
    source: &dyn TenantSource,
    naming: Naming,
    opts: &TenantOptions,
    store: &WorkStore,
) -> Result<(), TenantError> {
    let conn = store.conn();
    conn.execute_batch(
        "DELETE FROM tenant_entry; DELETE FROM tenant_user_role; DELETE FROM tenant_user_group;
         DELETE FROM tenant_group_role; DELETE FROM tenant_grant; DELETE FROM tenant_assign;
         DELETE FROM tenant_target_user; DELETE FROM tenant_exact;",
    )
    .map_err(db(store))?;
    let in_records = source.members_in_records();
    // The directory first: a missing scope stops here, before anything is written.
    let roles = if opts.roles {
        source.roles().await?
    } else {
        Vec::new()
    };
    // Groups are read for their roles too when only roles are carried: a member's
    // roles through a group are roles they hold (Authgear's effective roles).
    let groups = if opts.groups || (opts.roles && in_records) {
        source.groups().await?
    } else {
        Vec::new()
    };
    let role_names: Vec<String> = roles.iter().map(|r| r.name.clone()).collect();
    let group_names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let (role_keys, group_keys) = match naming {
        Naming::AuthgearKeys => (
            KeyRule::new(&opts.role_map)
                .map_err(TenantError::Options)?
                .assign(&role_names),
            KeyRule::default().assign(&group_names),
        ),
        Naming::Auth0 => {
            let pairs: Vec<(String, String)> = roles
                .iter()
                .map(|r| (r.id.clone(), r.name.clone()))
                .collect();
            for (key, _) in &opts.role_map {
                if !roles.iter().any(|r| &r.id == key) {
                    return Err(TenantError::Options(format!(
                        "--role-map {key}=…: the source has no role with the key `{key}`"
                    )));
                }
            }
            (
                auth0_role_names(&pairs, &opts.role_map),
                KeyRule::auth0_organizations().assign(&group_names),
            )
        }
    };
    let role_key: HashMap<&str, &str> = roles
        .iter()
        .zip(&role_keys)
        .map(|(r, k)| (r.id.as_str(), k.as_str()))
        .collect();
    {
        let tx = conn.unchecked_transaction().map_err(db(store))?;
        for (r, k) in roles.iter().zip(&role_keys) {
            let perms = serde_json::to_string(&r.permissions).unwrap_or_default();
            tx.execute(
                "INSERT INTO tenant_entry VALUES ('role', ?1, ?2, ?3, ?4, ?5, 'plan')",
                params![r.id, k, r.name, r.description, perms],
            )
            .map_err(db(store))?;
        }
        for (g, k) in groups.iter().zip(&group_keys) {
            if opts.groups {
                tx.execute(
                    "INSERT INTO tenant_entry VALUES ('group', ?1, ?2, ?3, ?4, '[]', 'plan')",
                    params![g.id, k, g.name, g.description],
                )
                .map_err(db(store))?;
            }
            for rid in &g.roles {
                if let Some(rk) = role_key.get(rid.as_str()) {
                    tx.execute(
                        "INSERT OR IGNORE INTO tenant_grant VALUES (?1, ?2)",
                        params![g.id, rk],
                    )
                    .map_err(db(store))?;
                }
            }
        }
        tx.commit().map_err(db(store))?;
    }
    if in_records {
        // Memberships arrive with the users ([`super::assign::Recorder`]).
        conn.execute("INSERT INTO tenant_meta VALUES ('crawled', '1')", [])
            .map_err(db(store))?;
        return Ok(());
    }
    for (r, k) in roles.iter().zip(&role_keys) {
        let tx = conn.unchecked_transaction().map_err(db(store))?;
        let mut failed = None;
        {
            let mut st = tx
                .prepare("INSERT OR IGNORE INTO tenant_user_role VALUES (?1, ?2)")
                .map_err(db(store))?;
            let mut sink = |u: String| {
                if let Err(e) = st.execute(params![u, k]) {
                    failed.get_or_insert(e.to_string());
                }
                Ok(())
            };
            source.role_members(r, &mut sink).await?;
        }
        if let Some(e) = failed {
            return Err(TenantError::Store(StoreError::new(store.path(), e)));
        }
        tx.commit().map_err(db(store))?;
    }
    for (g, gk) in groups.iter().zip(&group_keys) {
        let tx = conn.unchecked_transaction().map_err(db(store))?;
        let mut failed = None;
        let mut in_group: HashMap<String, u64> = HashMap::new();
        let mut not_carried = 0u64;
        {
            let mut add_group = tx
                .prepare("INSERT OR IGNORE INTO tenant_user_group VALUES (?1, ?2)")
                .map_err(db(store))?;
            let mut add_role = tx
                .prepare("INSERT OR IGNORE INTO tenant_user_role VALUES (?1, ?2)")
                .map_err(db(store))?;
            let mut sink = |m: super::GroupMember| {
                if let Err(e) = add_group.execute(params![m.user_id, gk]) {
                    failed.get_or_insert(e.to_string());
                }
                for rid in &m.roles {
                    match role_key.get(rid.as_str()) {
                        Some(rk) => {
                            *in_group.entry((*rk).to_owned()).or_default() += 1;
                            if let Err(e) = add_role.execute(params![m.user_id, rk]) {
                                failed.get_or_insert(e.to_string());
                            }
                        }
                        None => not_carried += 1,
                    }
                }
                Ok(())
            };
            source.group_members(g, &mut sink).await?;
        }
        if let Some(e) = failed {
            return Err(TenantError::Store(StoreError::new(store.path(), e)));
        }
        for (rk, n) in &in_group {
            tx.execute(
                "INSERT OR REPLACE INTO tenant_group_role VALUES (?1, ?2, ?3)",
                params![gk, rk, *n as i64],
            )
            .map_err(db(store))?;
        }
        if not_carried > 0 {
            tx.execute(
                "INSERT INTO tenant_meta VALUES ('group_roles_not_carried', ?1)
                 ON CONFLICT(k) DO UPDATE SET v = CAST(v AS INTEGER) + ?1",
                params![not_carried as i64],
            )
            .map_err(db(store))?;
        }
        tx.commit().map_err(db(store))?;
    }
    conn.execute("INSERT INTO tenant_meta VALUES ('crawled', '1')", [])
        .map_err(db(store))?;
    Ok(())
}

struct Entry {
    source_id: String,
    key: String,
    name: String,
    description: Option<String>,
    permissions: Vec<Permission>,
    status: String,
}

fn entries(store: &WorkStore, kind: &str) -> Result<Vec<Entry>, TenantError> {
    let conn = store.conn();
    let mut st = conn
        .prepare(
            "SELECT source_id, key, name, description, permissions, status FROM tenant_entry
             WHERE kind = ?1 ORDER BY key",
        )
        .map_err(db(store))?;
    let rows = st
        .query_map(params![kind], |r| {
            let perms: String = r.get(4)?;
            Ok(Entry {
                source_id: r.get(0)?,
                key: r.get(1)?,
                name: r.get(2)?,
                description: r.get(3)?,
                permissions: permissions_from_objects(&perms).unwrap_or_default(),
                status: r.get(5)?,
            })
        })
        .map_err(db(store))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db(store))
}

fn permissions_from_objects(s: &str) -> Result<Vec<Permission>, serde_json::Error> {
    let v: Vec<serde_json::Value> = serde_json::from_str(s)?;
    Ok(v.iter()
        .map(|p| Permission {
            resource_server: p["resource_server"].as_str().unwrap_or("").to_owned(),
            name: p["name"].as_str().unwrap_or("").to_owned(),
        })
        .collect())
}

fn count(store: &WorkStore, sql: &str) -> Result<u64, TenantError> {
    store
        .conn()
        .query_row(sql, [], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
        .map_err(db(store))
}

async fn plan_and_create(
    target: &dyn TenantTarget,
    opts: &TenantOptions,
    store: &WorkStore,
) -> Result<Plan, TenantError> {
    let mut plan = Plan::default();
    let mut batches = 0usize;
    for kind in ["role", "group"] {
        let list = entries(store, kind)?;
        if list.is_empty() {
            continue;
        }
        let existing: HashSet<String> = if kind == "role" {
            target.role_keys().await?
        } else {
            target.group_keys().await?
        }
        .into_iter()
        .collect();
        let mut planned = Vec::new();
        let mut to_create = Vec::new();
        let mut counts = KindCounts {
            source: list.len() as u64,
            ..KindCounts::default()
        };
        for e in &list {
            let action = if existing.contains(&e.key) {
                if matches!(e.status.as_str(), "sent" | "created") {
                    "created"
                } else {
                    "reuse"
                }
            } else {
                to_create.push(e);
                "create"
            };
            if action == "reuse" {
                counts.reused += 1;
            } else {
                counts.created += 1;
            }
            let not_carried = if opts.target_holds_permissions {
                Vec::new()
            } else {
                e.permissions.clone()
            };
            plan.summary.permissions_not_carried += not_carried.len() as u64;
            planned.push(PlannedEntry {
                name: e.name.clone(),
                key: e.key.clone(),
                action: action.into(),
                permissions_not_carried: not_carried,
            });
            if !opts.dry_run && action == "reuse" && e.status == "plan" {
                set_status(store, kind, &e.source_id, "reuse")?;
            }
        }
        if !opts.dry_run {
            for batch in to_create.chunks(target.batch().max(1)) {
                for e in batch {
                    set_status(store, kind, &e.source_id, "sent")?;
                }
                let new: Vec<NewEntry> = batch
                    .iter()
                    .map(|e| NewEntry {
                        key: e.key.clone(),
                        name: e.name.clone(),
                        description: e.description.clone(),
                    })
                    .collect();
                if kind == "role" {
                    target.create_roles(&new).await?;
                } else {
                    target.create_groups(&new).await?;
                }
                for e in batch {
                    set_status(store, kind, &e.source_id, "created")?;
                }
                batches += 1;
                if let Some(hook) = &opts.after_batch {
                    hook(batches);
                }
            }
            for p in &mut planned {
                if p.action == "create" {
                    p.action = "created".into();
                }
            }
        }
        counts.assignments = count(
            store,
            if kind == "role" {
                "SELECT (SELECT COUNT(*) FROM tenant_user_role)
                   + (SELECT COUNT(*) FROM tenant_assign WHERE kind = 'role')"
            } else {
                "SELECT (SELECT COUNT(*) FROM tenant_user_group)
                   + (SELECT COUNT(*) FROM tenant_assign WHERE kind = 'group')"
            },
        )?;
        if kind == "role" {
            plan.summary.roles = counts;
            plan.roles = planned;
        } else {
            plan.summary.groups = counts;
            plan.groups = planned;
        }
    }
    let conn = store.conn();
    let mut st = conn
        .prepare("SELECT group_key, role_key, members FROM tenant_group_role ORDER BY 1, 2")
        .map_err(db(store))?;
    plan.group_roles = st
        .query_map([], |r| {
            Ok(GroupRole {
                group: r.get(0)?,
                role: r.get(1)?,
                members: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })
        .map_err(db(store))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db(store))?;
    plan.summary.group_roles_as_direct = plan.group_roles.iter().map(|g| g.members).sum();
    plan.summary.group_roles_not_carried = count(
        store,
        "SELECT COALESCE((SELECT CAST(v AS INTEGER) FROM tenant_meta
          WHERE k = 'group_roles_not_carried'), 0)",
    )?;
    Ok(plan)
}

fn set_status(store: &WorkStore, kind: &str, id: &str, status: &str) -> Result<(), TenantError> {
    store
        .conn()
        .execute(
            "UPDATE tenant_entry SET status = ?3 WHERE kind = ?1 AND source_id = ?2",
            params![kind, id, status],
        )
        .map(drop)
        .map_err(db(store))
}
