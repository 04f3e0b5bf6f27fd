//! What every user holds at a target whose user records do not name their roles and
//! groups (Auth0), read through its [`TenantSource`] side: each role's members and
//! each group's members, by name, into a [`WorkStore`] keyed by the target's user id
//! (bounded memory, any number of users). `verify` pairs a target user with it.
//!
//! Only tenant-wide roles count: roles held within one group only (Auth0
//! organization member roles) are not what the tenant step assigns.

use rusqlite::params;
use serde::Serialize;

use super::TenantSource;
use super::engine::TenantError;
use crate::workstore::{StoreError, WorkStore};

const DDL: &str = "
CREATE TABLE held (user_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  PRIMARY KEY (user_id, kind, name)) WITHOUT ROWID;
";

/// Rows written per store transaction.
const COMMIT_EVERY: usize = 5000;

/// How much [`read_held`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HeldCounts {
    /// Roles at the target.
    pub roles: u64,
    /// User role assignments.
    pub role_assignments: u64,
    /// Groups (organizations) at the target.
    pub groups: u64,
    /// Memberships.
    pub memberships: u64,
}

/// The keyed look-up [`read_held`] leaves.
#[derive(Debug)]
pub struct HeldMemberships {
    store: WorkStore,
    counts: HeldCounts,
}

impl HeldMemberships {
    /// The role names and group names the target user `user_id` holds, sorted (one
    /// look-up).
    pub fn of(&self, user_id: &str) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let conn = self.store.conn();
        let mut st = conn
            .prepare_cached("SELECT kind, name FROM held WHERE user_id = ?1 ORDER BY kind, name")
            .map_err(|e| self.store.error(e))?;
        let rows = st
            .query_map(params![user_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.store.error(e))?;
        let (mut roles, mut groups) = (Vec::new(), Vec::new());
        for row in rows {
            let (kind, name) = row.map_err(|e| self.store.error(e))?;
            if kind == "role" {
                roles.push(name);
            } else {
                groups.push(name);
            }
        }
        Ok((roles, groups))
    }

    /// What was read.
    pub fn counts(&self) -> HeldCounts {
        self.counts
    }
}

/// Reads every role's and group's members of `source` into `store` (emptied first);
/// `roles` / `groups`: which to read.
pub async fn read_held(
    source: &dyn TenantSource,
    store: WorkStore,
    roles: bool,
    groups: bool,
) -> Result<HeldMemberships, TenantError> {
    store.ensure_schema("held", 1, DDL)?;
    let db = |e| TenantError::Store(store.error(e));
    store.conn().execute_batch("DELETE FROM held").map_err(db)?;
    let mut counts = HeldCounts::default();
    let mut writer = Writer {
        store: &store,
        open: false,
        rows: 0,
        error: None,
    };
    if roles {
        let list = source.roles().await?;
        counts.roles = list.len() as u64;
        for role in &list {
            let mut n = 0u64;
            source
                .role_members(role, &mut |user_id| {
                    n += 1;
                    writer.put(&user_id, "role", &role.name);
                    Ok(())
                })
                .await?;
            counts.role_assignments += n;
        }
    }
    if groups {
        let list = source.groups().await?;
        counts.groups = list.len() as u64;
        for group in &list {
            let mut n = 0u64;
            source
                .group_members(group, &mut |m| {
                    n += 1;
                    writer.put(&m.user_id, "group", &group.name);
                    Ok(())
                })
                .await?;
            counts.memberships += n;
        }
    }
    writer.commit()?;
    Ok(HeldMemberships { store, counts })
}

struct Writer<'a> {
    store: &'a WorkStore,
    open: bool,
    rows: usize,
    error: Option<StoreError>,
}

impl Writer<'_> {
    fn put(&mut self, user_id: &str, kind: &str, name: &str) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_put(user_id, kind, name) {
            self.error = Some(self.store.error(e));
        }
    }

    fn try_put(&mut self, user_id: &str, kind: &str, name: &str) -> rusqlite::Result<()> {
        let conn = self.store.conn();
        if !self.open {
            conn.execute_batch("BEGIN")?;
            self.open = true;
        }
        conn.prepare_cached("INSERT OR IGNORE INTO held VALUES (?1, ?2, ?3)")?
            .execute(params![user_id, kind, name])?;
        self.rows += 1;
        if self.rows >= COMMIT_EVERY {
            conn.execute_batch("COMMIT")?;
            self.open = false;
            self.rows = 0;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), TenantError> {
        if let Some(e) = self.error.take() {
            return Err(TenantError::Store(e));
        }
        if self.open {
            self.store
                .conn()
                .execute_batch("COMMIT")
                .map_err(|e| TenantError::Store(self.store.error(e)))?;
            self.open = false;
        }
        Ok(())
    }
}
