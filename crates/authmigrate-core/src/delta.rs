//! What changed at the source since the last pass (`migrate --delta`).
//!
//! A finished `migrate` pass leaves a *snapshot* in the run's work dir: for every
//! source user the target accepted (inserted, updated, or skipped because it is
//! there), a digest of each field of its neutral [`UserRecord`], and its target id. A
//! delta pass exports the source again, and [`DeltaStore::classify`] tells each user
//! `new`, `changed` (naming the fields) or `unchanged`; the snapshot's users the new
//! export did not contain are `removed` ([`DeltaStore::removed`]). Only new and
//! changed users are sent; once the target accepted them, [`DeltaStore::commit`]
//! moves their digests into the snapshot, so a second delta right after sends
//! nothing.
//!
//! Users are keyed by their source id (`auth0|…`, an Authgear `sub`), else by their
//! lower-cased e-mail. The digests are 64-bit FNV-1a of each field's JSON: secrets
//! (password hashes, TOTP secrets) are only ever stored as such digests, never as
//! themselves. `unmapped` (login counts, timestamps, identities) is left out: it
//! changes on every login and is never carried to the target.
//!
//! Everything lives in the run's one embedded store ([`crate::workstore`]), so memory
//! stays bounded for millions of users.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{OptionalExtension, params};

use crate::record::UserRecord;
use crate::workstore::{StoreError, WorkStore};

#[cfg(test)]
mod tests;

/// The store's schema name and version (see [`WorkStore::ensure_schema`]).
const SCHEMA: (&str, u32) = ("delta", 1);

const DDL: &str = "
CREATE TABLE snapshot (key TEXT PRIMARY KEY, email TEXT, fields BLOB NOT NULL, target_id TEXT) WITHOUT ROWID;
CREATE TABLE pending (idx INTEGER PRIMARY KEY, key TEXT NOT NULL, email TEXT, fields BLOB NOT NULL);
CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
";

/// Rows written per transaction.
const BATCH: usize = 10_000;

/// The digest of each field of a record, by field name (sorted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldDigests(BTreeMap<String, u64>);

impl FieldDigests {
    /// The digests of `user`'s fields (all but `source_id` and `unmapped`).
    pub fn of(user: &UserRecord) -> Self {
        let value = serde_json::to_value(user).unwrap_or_default();
        let mut map = BTreeMap::new();
        if let serde_json::Value::Object(fields) = value {
            for (name, v) in fields {
                if matches!(
                    name.as_str(),
                    "source_id" | "unmapped" | "roles_exact" | "groups_exact"
                ) {
                    continue;
                }
                map.insert(name, fnv1a(v.to_string().as_bytes()));
            }
        }
        Self(map)
    }

    /// The fields whose values differ (present in one and not the other included),
    /// sorted.
    pub fn changed(&self, before: &Self) -> Vec<String> {
        let mut names: Vec<String> = self
            .0
            .iter()
            .filter(|(k, v)| before.0.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .chain(
                before
                    .0
                    .keys()
                    .filter(|k| !self.0.contains_key(*k))
                    .cloned(),
            )
            .collect();
        names.sort();
        names
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 20);
        for (name, digest) in &self.0 {
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&digest.to_le_bytes());
        }
        out
    }

    fn decode(mut bytes: &[u8]) -> Self {
        let mut map = BTreeMap::new();
        while let Some((&len, rest)) = bytes.split_first() {
            let len = usize::from(len);
            if rest.len() < len + 8 {
                break;
            }
            let name = String::from_utf8_lossy(&rest[..len]).into_owned();
            let mut d = [0u8; 8];
            d.copy_from_slice(&rest[len..len + 8]);
            map.insert(name, u64::from_le_bytes(d));
            bytes = &rest[len + 8..];
        }
        Self(map)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// How a user is keyed across passes: its source id, else `email:` and its
/// lower-cased e-mail; `None` when it has neither.
pub fn key_of(user: &UserRecord) -> Option<String> {
    if let Some(id) = user.source_id.as_deref().filter(|s| !s.is_empty()) {
        return Some(id.to_owned());
    }
    user.email
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(|e| format!("email:{}", e.to_lowercase()))
}

/// What a user is to the last pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Not in the snapshot.
    New,
    /// In the snapshot with other values in these fields.
    Changed(Vec<String>),
    /// In the snapshot as it is.
    Unchanged,
}

/// A snapshot user the new export did not contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The user's key ([`key_of`]).
    pub key: String,
    /// Its e-mail, if known.
    pub email: Option<String>,
    /// Its id at the target, if known.
    pub target_id: Option<String>,
}

/// The delta snapshot and the working tables of a pass, in one work store.
#[derive(Debug)]
pub struct DeltaStore {
    store: WorkStore,
    /// Rows waiting for the next transaction.
    staged: Vec<(u64, String, Option<String>, Vec<u8>)>,
    seen: Vec<String>,
    committed: Vec<(u64, Option<String>)>,
}

impl DeltaStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let store = WorkStore::open(path)?;
        store.ensure_schema(SCHEMA.0, SCHEMA.1, DDL)?;
        Ok(Self {
            store,
            staged: Vec::new(),
            seen: Vec::new(),
            committed: Vec::new(),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    fn meta(&self, name: &str) -> Result<i64, StoreError> {
        self.store
            .conn()
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0))
            .map_err(|e| self.store.error(e))
    }

    fn set_meta(&self, name: &str, value: i64) -> Result<(), StoreError> {
        self.store
            .conn()
            .execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)",
                params![name, value],
            )
            .map(|_| ())
            .map_err(|e| self.store.error(e))
    }

    /// How many passes finished (0: no snapshot yet).
    pub fn passes(&self) -> Result<u64, StoreError> {
        self.meta("passes").map(|v| v.max(0) as u64)
    }

    /// Users in the snapshot.
    pub fn snapshot_len(&self) -> Result<u64, StoreError> {
        self.store
            .conn()
            .query_row("SELECT COUNT(*) FROM snapshot", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.store.error(e))
    }

    /// Whether a delta pass was prepared (classified and its records written) and
    /// not finished: a rerun resumes it instead of exporting again.
    pub fn prepared(&self) -> Result<bool, StoreError> {
        self.meta("prepared").map(|v| v != 0)
    }

    /// Marks the pass prepared (after [`DeltaStore::flush`]).
    pub fn set_prepared(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        self.set_meta("prepared", 1)
    }

    /// Starts a pass: forgets what an unfinished earlier pass staged and saw.
    pub fn begin_pass(&mut self) -> Result<(), StoreError> {
        self.staged.clear();
        self.seen.clear();
        self.committed.clear();
        self.store
            .conn()
            .execute_batch("DELETE FROM pending; DELETE FROM seen;")
            .map_err(|e| self.store.error(e))?;
        self.set_meta("prepared", 0)
    }

    /// Remembers the record sent at `idx` of this pass, to be committed to the
    /// snapshot once the target accepted it.
    pub fn stage(
        &mut self,
        idx: u64,
        key: &str,
        email: Option<&str>,
        fields: &FieldDigests,
    ) -> Result<(), StoreError> {
        self.staged.push((
            idx,
            key.to_owned(),
            email.map(str::to_owned),
            fields.encode(),
        ));
        if self.staged.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// What `key` with `fields` is to the snapshot; remembers it as seen by this pass.
    pub fn classify(&mut self, key: &str, fields: &FieldDigests) -> Result<Change, StoreError> {
        let before: Option<Vec<u8>> = self
            .store
            .conn()
            .prepare_cached("SELECT fields FROM snapshot WHERE key = ?1")
            .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
            .map_err(|e| self.store.error(e))?;
        self.seen.push(key.to_owned());
        if self.seen.len() >= BATCH {
            self.flush()?;
        }
        Ok(match before {
            None => Change::New,
            Some(bytes) => {
                let changed = fields.changed(&FieldDigests::decode(&bytes));
                if changed.is_empty() {
                    Change::Unchanged
                } else {
                    Change::Changed(changed)
                }
            }
        })
    }

    /// The staged record at `idx` was accepted by the target (as `target_id`, when
    /// known): it becomes the snapshot's entry for its key.
    pub fn commit(&mut self, idx: u64, target_id: Option<String>) -> Result<(), StoreError> {
        self.committed.push((idx, target_id));
        if self.committed.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is buffered, in one transaction.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.staged.is_empty() && self.seen.is_empty() && self.committed.is_empty() {
            return Ok(());
        }
        let staged = std::mem::take(&mut self.staged);
        let seen = std::mem::take(&mut self.seen);
        let committed = std::mem::take(&mut self.committed);
        let conn = self.store.conn_mut();
        let result = (|| {
            let tx = conn.transaction()?;
            {
                let mut put = tx.prepare_cached(
                    "INSERT OR REPLACE INTO pending (idx, key, email, fields) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (idx, key, email, fields) in &staged {
                    put.execute(params![*idx as i64, key, email, fields])?;
                }
                let mut saw = tx.prepare_cached("INSERT OR IGNORE INTO seen (key) VALUES (?1)")?;
                for key in &seen {
                    saw.execute(params![key])?;
                }
                let mut promote = tx.prepare_cached(
                    "INSERT OR REPLACE INTO snapshot (key, email, fields, target_id)
                     SELECT p.key, p.email, p.fields,
                            COALESCE(?2, (SELECT s.target_id FROM snapshot s WHERE s.key = p.key))
                     FROM pending p WHERE p.idx = ?1",
                )?;
                for (idx, target) in &committed {
                    promote.execute(params![*idx as i64, target])?;
                }
            }
            tx.commit()
        })();
        result.map_err(|e| self.store.error(e))
    }

    /// Calls `f` for each snapshot user this pass has not seen, in key order.
    pub fn removed(&mut self, mut f: impl FnMut(Removed)) -> Result<u64, StoreError> {
        self.flush()?;
        let mut n = 0;
        let conn = self.store.conn();
        let mut stmt = conn
            .prepare(
                "SELECT key, email, target_id FROM snapshot
                 WHERE key NOT IN (SELECT key FROM seen) ORDER BY key",
            )
            .map_err(|e| self.store.error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Removed {
                    key: r.get(0)?,
                    email: r.get(1)?,
                    target_id: r.get(2)?,
                })
            })
            .map_err(|e| self.store.error(e))?;
        for row in rows {
            f(row.map_err(|e| self.store.error(e))?);
            n += 1;
        }
        Ok(n)
    }

    /// Drops `key` from the snapshot (the user was removed from the target too).
    pub fn forget(&mut self, key: &str) -> Result<(), StoreError> {
        self.flush()?;
        self.store
            .conn()
            .execute("DELETE FROM snapshot WHERE key = ?1", params![key])
            .map(|_| ())
            .map_err(|e| self.store.error(e))
    }

    /// Ends the pass: what was committed is the snapshot the next pass compares with.
    pub fn finish_pass(&mut self) -> Result<u64, StoreError> {
        self.flush()?;
        let passes = self.passes()? + 1;
        self.set_meta("passes", passes as i64)?;
        self.set_meta("prepared", 0)?;
        self.store
            .conn()
            .execute_batch("DELETE FROM pending; DELETE FROM seen;")
            .map_err(|e| self.store.error(e))?;
        Ok(passes)
    }
}
