//! One definition of what a records-borne source user holds at the target: its own
//! roles and groups (source keys, as an Authgear export names them) turned into the
//! target's keys, plus the roles its groups give every member (Authgear group roles:
//! what its token carried). The [`super::Recorder`] (migrate, delta) and `verify`
//! both read users through it, so what is assigned and what is expected cannot drift
//! apart.

use std::collections::HashMap;

use rusqlite::params;

use crate::workstore::{StoreError, WorkStore};

/// The source → target key maps a finished [`super::run`] left in its store.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    roles: HashMap<String, String>,
    groups: HashMap<String, String>,
    /// Source group id → target role keys its members hold through it.
    grants: HashMap<String, Vec<String>>,
    carry_roles: bool,
    carry_groups: bool,
}

/// One user's memberships at the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translated {
    /// Target role keys: own roles first, then those held through groups only.
    pub roles: Vec<String>,
    /// Target group keys.
    pub groups: Vec<String>,
    /// How many of `roles` come through a group only.
    pub through_groups: u64,
    /// Source keys the record names that the source's directory does not hold.
    pub unknown: u64,
}

impl Translation {
    /// Reads the maps from `store`; `roles` / `groups`: what is carried (not `--skip`).
    pub fn new(store: &WorkStore, roles: bool, groups: bool) -> Result<Self, StoreError> {
        let db = |e| store.error(e);
        let map = |kind: &str| -> Result<HashMap<String, String>, StoreError> {
            let conn = store.conn();
            let mut st = conn
                .prepare("SELECT source_id, key FROM tenant_entry WHERE kind = ?1")
                .map_err(db)?;
            let rows = st
                .query_map(params![kind], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        };
        let mut grants: HashMap<String, Vec<String>> = HashMap::new();
        {
            let conn = store.conn();
            let mut st = conn
                .prepare("SELECT group_id, role_key FROM tenant_grant ORDER BY 1, 2")
                .map_err(db)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(db)?;
            for row in rows {
                let (g, r) = row.map_err(db)?;
                grants.entry(g).or_default().push(r);
            }
        }
        Ok(Self {
            roles: map("role")?,
            groups: map("group")?,
            grants,
            carry_roles: roles,
            carry_groups: groups,
        })
    }

    /// Whether roles and groups are carried (each).
    pub fn carried(&self) -> (bool, bool) {
        (self.carry_roles, self.carry_groups)
    }

    /// What a user naming `own_roles` and `own_groups` (source keys) holds at the
    /// target. A part not carried is empty.
    pub fn of(&self, own_roles: &[String], own_groups: &[String]) -> Translated {
        let mut t = Translated::default();
        if self.carry_roles {
            for r in own_roles {
                match self.roles.get(r) {
                    Some(k) if !t.roles.contains(k) => t.roles.push(k.clone()),
                    Some(_) => {}
                    None => t.unknown += 1,
                }
            }
        }
        for g in own_groups {
            if self.carry_groups {
                match self.groups.get(g) {
                    Some(k) if !t.groups.contains(k) => t.groups.push(k.clone()),
                    Some(_) => {}
                    None => t.unknown += 1,
                }
            }
            if self.carry_roles {
                for k in self.grants.get(g).into_iter().flatten() {
                    if !t.roles.contains(k) {
                        t.roles.push(k.clone());
                        t.through_groups += 1;
                    }
                }
            }
        }
        t
    }
}
