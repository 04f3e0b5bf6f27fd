//! The one embedded store for a run's keyed working data.
//!
//! Keyed look-ups over a million users (pairing two exports in `verify`, the per-user
//! digests a `migrate --delta` compares against, id maps, the tenant's memberships)
//! live in one SQLite database (through `rusqlite` with its bundled library, so no
//! system library is needed) instead of another hand-written on-disk structure. A
//! feature owns its tables: it creates them with [`WorkStore::ensure_schema`] under a
//! name and version of its own, and reads and writes them through
//! [`WorkStore::conn`].
//!
//! Two kinds of store:
//! - [`WorkStore::open`]: a file in the run's work dir that outlives the process (a
//!   delta snapshot, a resumable crawl). Written with SQLite's write-ahead log, so a
//!   kill loses at most the transaction in progress, never what was committed.
//! - [`WorkStore::temporary`]: a scratch database in a temporary directory, deleted on
//!   drop, without durability (a crash discards it anyway), for working sets that only
//!   must not be held in memory.
//!
//! Memory is bounded by SQLite's page cache ([`CACHE_KIB`]), not by the number of rows.

use std::fmt;
use std::path::{Path, PathBuf};

pub use rusqlite;
use rusqlite::{Connection, OptionalExtension, params};

/// The page cache per connection, in KiB: the store's memory, whatever it holds.
pub const CACHE_KIB: i64 = 16 * 1024;

/// An error of the work store, naming its file.
#[derive(Debug, thiserror::Error)]
#[error("work store {}: {source}", path.display())]
pub struct StoreError {
    path: PathBuf,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// Wraps an error (SQLite's, the file system's, or a message) of the store at `path`.
    pub fn new(path: &Path, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            path: path.to_owned(),
            source: source.into(),
        }
    }
}

/// A run's embedded store (see the module docs).
pub struct WorkStore {
    conn: Connection,
    path: PathBuf,
    /// Keeps a temporary store's directory alive (and removes it on drop).
    _temp: Option<tempfile::TempDir>,
}

impl fmt::Debug for WorkStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkStore")
            .field("path", &self.path)
            .field("temporary", &self._temp.is_some())
            .finish()
    }
}

impl WorkStore {
    /// Opens (or creates) the durable store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|e| StoreError::new(path, e))?;
        let store = Self {
            conn,
            path: path.to_owned(),
            _temp: None,
        };
        store.pragmas("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        Ok(store)
    }

    /// A scratch store in a new temporary directory (under `dir` when given, else the
    /// system's), removed when the store is dropped.
    pub fn temporary(dir: Option<&Path>) -> Result<Self, StoreError> {
        let temp = match dir {
            Some(d) => tempfile::Builder::new()
                .prefix("authmigrate-")
                .tempdir_in(d),
            None => tempfile::Builder::new().prefix("authmigrate-").tempdir(),
        };
        let temp = temp
            .map_err(|e| StoreError::new(dir.unwrap_or(Path::new("(temporary directory)")), e))?;
        let path = temp.path().join("work.sqlite");
        let conn = Connection::open(&path).map_err(|e| StoreError::new(&path, e))?;
        let store = Self {
            conn,
            path,
            _temp: Some(temp),
        };
        store.pragmas("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
        Ok(store)
    }

    fn pragmas(&self, durability: &str) -> Result<(), StoreError> {
        let sql = format!(
            "{durability} PRAGMA temp_store = FILE; PRAGMA cache_size = -{CACHE_KIB};
             CREATE TABLE IF NOT EXISTS authmigrate_schema (
                 name TEXT PRIMARY KEY, version INTEGER NOT NULL);"
        );
        self.conn.execute_batch(&sql).map_err(|e| self.error(e))
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for the feature's own statements.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection, mutably (transactions).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Wraps an SQLite error with this store's path.
    pub fn error(&self, e: rusqlite::Error) -> StoreError {
        StoreError::new(&self.path, e)
    }

    /// Creates the tables of the feature `name` at `version` by running `ddl`, once.
    ///
    /// Returns `true` when the tables were created now, `false` when they existed at
    /// this version. A store written by another version of the feature is refused
    /// (its rows could mean something else), naming the file.
    pub fn ensure_schema(&self, name: &str, version: u32, ddl: &str) -> Result<bool, StoreError> {
        let found: Option<u32> = self
            .conn
            .query_row(
                "SELECT version FROM authmigrate_schema WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.error(e))?;
        match found {
            Some(v) if v == version => Ok(false),
            Some(v) => Err(StoreError::new(
                &self.path,
                format!(
                    "its `{name}` tables are version {v}, this authmigrate writes version \
                     {version}: use a new work dir or remove the file"
                ),
            )),
            None => {
                let tx = self
                    .conn
                    .unchecked_transaction()
                    .map_err(|e| self.error(e))?;
                tx.execute_batch(ddl).map_err(|e| self.error(e))?;
                tx.execute(
                    "INSERT INTO authmigrate_schema (name, version) VALUES (?1, ?2)",
                    params![name, version],
                )
                .map_err(|e| self.error(e))?;
                tx.commit().map_err(|e| self.error(e))?;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DDL: &str = "CREATE TABLE pairs (key TEXT PRIMARY KEY, value INTEGER NOT NULL);";

    #[test]
    fn a_durable_store_keeps_its_rows_and_schema_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.sqlite");
        {
            let store = WorkStore::open(&path).unwrap();
            assert!(store.ensure_schema("pairs", 1, DDL).unwrap());
            store
                .conn()
                .execute("INSERT INTO pairs VALUES ('a@example.com', 7)", [])
                .unwrap();
        }
        let store = WorkStore::open(&path).unwrap();
        assert!(!store.ensure_schema("pairs", 1, DDL).unwrap());
        let v: i64 = store
            .conn()
            .query_row(
                "SELECT value FROM pairs WHERE key = 'a@example.com'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(v, 7);
        let err = store
            .ensure_schema("pairs", 2, DDL)
            .unwrap_err()
            .to_string();
        assert!(err.contains("run.sqlite"), "{err}");
        assert!(
            err.contains("version 1") && err.contains("version 2"),
            "{err}"
        );
    }

    #[test]
    fn a_temporary_store_is_removed_on_drop() {
        let store = WorkStore::temporary(None).unwrap();
        store.ensure_schema("pairs", 1, DDL).unwrap();
        let path = store.path().to_owned();
        assert!(path.exists());
        drop(store);
        assert!(!path.exists());
    }
}
