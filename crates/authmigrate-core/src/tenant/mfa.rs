//! The Auth0 MFA export (from a support ticket; shared/docs/auth0-rbac-orgs-mfa.md §5)
//! joined to users by id: NDJSON rows `{"user_id","type":"otp","otp_secret"}` (one per
//! enrolment; `recovery-code` rows hold a bcrypt hash, not a usable code).
//!
//! The secrets go into a temporary [`WorkStore`] (one SQLite row per user, keyed by
//! user id): memory stays bounded whatever the export's size, look-ups by the user
//! stream are one indexed read each, and the file is removed when the run ends, so
//! no TOTP secret outlives the process on disk. (The password join's Grace hash join
//! in `core::join` is built for a second streamed input matched in order; a plain
//! keyed table is all this join needs, and the workstore is the project's one store.)

use std::io::BufRead;
use std::path::Path;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::secret::Secret;
use crate::workstore::{StoreError, WorkStore};

/// What the export held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MfaCounts {
    /// Users with an `otp` secret (carried when the user is migrated).
    pub otp_users: u64,
    /// Extra `otp` rows for a user that has one already (Authgear imports one TOTP).
    pub otp_duplicates: u64,
    /// `recovery-code` rows (not carried: they are hashes, and Authgear imports none).
    pub recovery_codes: u64,
    /// Rows of any other type (not carried).
    pub other: u64,
}

/// The secrets by user id.
#[derive(Debug)]
pub struct MfaSecrets {
    store: WorkStore,
}

impl MfaSecrets {
    /// Reads the export at `path` into a temporary store under `dir`. A line that is
    /// not a JSON object, or an `otp` row without `user_id` or `otp_secret`, is an
    /// error naming the file, the line and the field.
    pub fn load(path: &Path, dir: Option<&Path>) -> Result<(Self, MfaCounts), String> {
        let store = WorkStore::temporary(dir).map_err(|e| e.to_string())?;
        store
            .ensure_schema(
                "tenant_mfa",
                1,
                "CREATE TABLE mfa_totp (user_id TEXT PRIMARY KEY, secret TEXT NOT NULL);",
            )
            .map_err(|e| e.to_string())?;
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let mut counts = MfaCounts::default();
        let tx = store
            .conn()
            .unchecked_transaction()
            .map_err(|e| store.error(e).to_string())?;
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let at = |what: &str| format!("`{}` line {}: {what}", path.display(), i + 1);
            let line = line.map_err(|e| at(&e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(&line).map_err(|_| at("not a JSON object"))?;
            match v["type"].as_str() {
                Some("otp") => {
                    let user = v["user_id"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| at("`user_id` is missing"))?;
                    let secret = v["otp_secret"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| at("`otp_secret` is missing"))?;
                    let n = tx
                        .execute(
                            "INSERT OR IGNORE INTO mfa_totp VALUES (?1, ?2)",
                            params![user, secret.trim_end_matches('=').to_uppercase()],
                        )
                        .map_err(|e| store.error(e).to_string())?;
                    if n == 1 {
                        counts.otp_users += 1;
                    } else {
                        counts.otp_duplicates += 1;
                    }
                }
                Some("recovery-code") => counts.recovery_codes += 1,
                _ => counts.other += 1,
            }
        }
        tx.commit().map_err(|e| store.error(e).to_string())?;
        Ok((Self { store }, counts))
    }

    /// The TOTP secret of a user id, if the export has one.
    pub fn totp(&self, user_id: &str) -> Result<Option<Secret>, StoreError> {
        let conn = self.store.conn();
        let mut st = conn
            .prepare_cached("SELECT secret FROM mfa_totp WHERE user_id = ?1")
            .map_err(|e| self.store.error(e))?;
        st.query_row(params![user_id], |r| r.get::<_, String>(0))
            .optional()
            .map(|s| s.map(Secret::from))
            .map_err(|e| self.store.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_otp_rows_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("mfa.ndjson");
        std::fs::write(
            &f,
            concat!(
                r#"{"user_id":"auth0|a","tenant":"t","type":"otp","otp_secret":"PA6FWZ3EGU2DMZCSKU2DOQCNNY2X26L2"}"#, "\n",
                r#"{"user_id":"auth0|a","tenant":"t","type":"recovery-code","recovery_code":"$2b$10$x"}"#, "\n",
                r#"{"user_id":"auth0|a","type":"otp","otp_secret":"JBSWY3DPEHPK3PXP"}"#, "\n",
                r#"{"user_id":"auth0|b","type":"push"}"#, "\n",
            ),
        )
        .unwrap();
        let (m, c) = MfaSecrets::load(&f, Some(dir.path())).unwrap();
        assert_eq!(
            c,
            MfaCounts {
                otp_users: 1,
                otp_duplicates: 1,
                recovery_codes: 1,
                other: 1
            }
        );
        assert_eq!(
            m.totp("auth0|a").unwrap().unwrap().expose(),
            "PA6FWZ3EGU2DMZCSKU2DOQCNNY2X26L2"
        );
        assert!(m.totp("auth0|b").unwrap().is_none());
        std::fs::write(&f, "{\"type\":\"otp\",\"user_id\":\"x\"}\n").unwrap();
        let err = MfaSecrets::load(&f, None).unwrap_err();
        assert!(
            err.contains("mfa.ndjson` line 1: `otp_secret` is missing"),
            "{err}"
        );
    }
}
