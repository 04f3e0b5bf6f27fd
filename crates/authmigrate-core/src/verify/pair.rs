//! Pairing source users with target users through the run's [`WorkStore`].
//!
//! The target's users go into one table (their pairing keys and a secret-free copy of
//! the record), indexed once after loading; the source then streams past, each user
//! looked up by the id map, else by e-mail, username or phone number. Memory is the
//! store's page cache plus one bit per target user (which were paired, for `extra`).

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::{DiffKind, Difference, Expected, Summary, compare, label};
use crate::UserRecord;
use crate::backend::RecordFailure;
use crate::record::{MfaFactor, PasswordHash};
use crate::secret::Secret;
use crate::workstore::{StoreError, WorkStore};

const SCHEMA: &str = "verify";
const VERSION: u32 = 1;
const DDL: &str = "
CREATE TABLE verify_target (
    seq INTEGER PRIMARY KEY, tid TEXT, email TEXT, uname TEXT, phone TEXT,
    record BLOB NOT NULL);
CREATE TABLE verify_idmap (source_id TEXT PRIMARY KEY, target_id TEXT NOT NULL) WITHOUT ROWID;
";

/// The keys a user is paired on, normalised as the targets store login ids (e-mail
/// and username lower-cased).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairKeys {
    /// The provider's user id.
    pub id: Option<String>,
    /// E-mail, lower-cased.
    pub email: Option<String>,
    /// Username, lower-cased.
    pub username: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
}

impl PairKeys {
    /// The keys of `record`.
    pub fn of(record: &UserRecord) -> Self {
        fn nonempty(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        Self {
            id: nonempty(&record.source_id).map(str::to_owned),
            email: nonempty(&record.email).map(str::to_lowercase),
            username: nonempty(&record.username).map(str::to_lowercase),
            phone: nonempty(&record.phone_number).map(str::to_owned),
        }
    }
}

/// One target user, ready to store: its keys and a copy without secrets.
#[derive(Debug, Clone)]
pub struct TargetRow {
    keys: PairKeys,
    record: Vec<u8>,
}

impl TargetRow {
    /// The row of a target user. Secrets are removed first (a password becomes an
    /// empty marker, TOTP secrets empty): the store never holds one.
    pub fn new(mut record: UserRecord) -> Self {
        let keys = PairKeys::of(&record);
        if record.password.is_some() {
            record.password = Some(PasswordHash::bcrypt(""));
        }
        for f in &mut record.mfa {
            if let MfaFactor::Totp { secret } = f {
                *secret = Secret::new("");
            }
        }
        record.unmapped.clear();
        let record = serde_json::to_vec(&record).unwrap_or_default();
        Self { keys, record }
    }
}

/// What [`Pairing::check`] found for one source user.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// At the target as expected.
    Matched,
    /// Not at the target (one [`Difference`] of kind `Missing`).
    Missing(Box<Difference>),
    /// At the target, with these fields not as expected.
    Different(Vec<Difference>),
}

/// The pairing of one verify run (see the module docs).
#[derive(Debug)]
pub struct Pairing {
    store: WorkStore,
    paired: Vec<u64>,
    summary: Summary,
    indexed: bool,
}

impl Pairing {
    /// A pairing in `store` (its `verify` tables are created, or emptied).
    pub fn new(store: WorkStore) -> Result<Self, StoreError> {
        if !store.ensure_schema(SCHEMA, VERSION, DDL)? {
            store
                .conn()
                .execute_batch(
                    "DROP INDEX IF EXISTS verify_target_tid; DROP INDEX IF EXISTS verify_target_email;
                     DROP INDEX IF EXISTS verify_target_uname; DROP INDEX IF EXISTS verify_target_phone;
                     DELETE FROM verify_target; DELETE FROM verify_idmap;",
                )
                .map_err(|e| store.error(e))?;
        }
        Ok(Self {
            store,
            paired: Vec::new(),
            summary: Summary::default(),
            indexed: false,
        })
    }

    /// Adds `source_id → target_id` pairs of a run's id map (a later pair for the same
    /// source id replaces the earlier). Returns how many were added.
    pub fn add_id_map(
        &mut self,
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<u64, StoreError> {
        let tx = self
            .store
            .conn()
            .unchecked_transaction()
            .map_err(|e| self.store.error(e))?;
        let mut n = 0;
        {
            let mut st = tx
                .prepare(
                    "INSERT OR REPLACE INTO verify_idmap (source_id, target_id) VALUES (?1, ?2)",
                )
                .map_err(|e| self.store.error(e))?;
            for (s, t) in pairs {
                st.execute(params![s, t]).map_err(|e| self.store.error(e))?;
                n += 1;
            }
        }
        tx.commit().map_err(|e| self.store.error(e))?;
        Ok(n)
    }

    /// Adds target users (one transaction per call: pass them in blocks).
    pub fn add_targets(
        &mut self,
        rows: impl IntoIterator<Item = TargetRow>,
    ) -> Result<(), StoreError> {
        let tx = self
            .store
            .conn()
            .unchecked_transaction()
            .map_err(|e| self.store.error(e))?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO verify_target (tid, email, uname, phone, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| self.store.error(e))?;
            for r in rows {
                st.execute(params![
                    r.keys.id,
                    r.keys.email,
                    r.keys.username,
                    r.keys.phone,
                    r.record
                ])
                .map_err(|e| self.store.error(e))?;
                self.summary.target += 1;
            }
        }
        tx.commit().map_err(|e| self.store.error(e))
    }

    /// Indexes the target users once all are added (before the first [`Self::check`]).
    fn index(&mut self) -> Result<(), StoreError> {
        self.store
            .conn()
            .execute_batch(
                "CREATE INDEX verify_target_tid ON verify_target(tid) WHERE tid IS NOT NULL;
                 CREATE INDEX verify_target_email ON verify_target(email) WHERE email IS NOT NULL;
                 CREATE INDEX verify_target_uname ON verify_target(uname) WHERE uname IS NOT NULL;
                 CREATE INDEX verify_target_phone ON verify_target(phone) WHERE phone IS NOT NULL;",
            )
            .map_err(|e| self.store.error(e))?;
        self.paired = vec![0; (self.summary.target as usize).div_ceil(64) + 1];
        self.indexed = true;
        Ok(())
    }

    fn lookup(&self, column: &str, key: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let sql = match column {
            "tid" => "SELECT seq, record FROM verify_target WHERE tid = ?1 ORDER BY seq LIMIT 1",
            "email" => {
                "SELECT seq, record FROM verify_target WHERE email = ?1 ORDER BY seq LIMIT 1"
            }
            "uname" => {
                "SELECT seq, record FROM verify_target WHERE uname = ?1 ORDER BY seq LIMIT 1"
            }
            _ => "SELECT seq, record FROM verify_target WHERE phone = ?1 ORDER BY seq LIMIT 1",
        };
        let mut st = self
            .store
            .conn()
            .prepare_cached(sql)
            .map_err(|e| self.store.error(e))?;
        st.query_row(params![key], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })
        .optional()
        .map_err(|e| self.store.error(e))
    }

    fn mapped_id(&self, source_id: &str) -> Result<Option<String>, StoreError> {
        let mut st = self
            .store
            .conn()
            .prepare_cached("SELECT target_id FROM verify_idmap WHERE source_id = ?1")
            .map_err(|e| self.store.error(e))?;
        st.query_row(params![source_id], |r| r.get(0))
            .optional()
            .map_err(|e| self.store.error(e))
    }

    /// Pairs the source user at `index` and compares it with `expected` (`Err`: the
    /// mapping refused the user, so it cannot be at the target).
    pub fn check(
        &mut self,
        index: u64,
        source: &UserRecord,
        expected: Result<&Expected, &RecordFailure>,
    ) -> Result<Verdict, StoreError> {
        if !self.indexed {
            self.index()?;
        }
        self.summary.source += 1;
        let user = label(source, index);
        let missing = |reason: Option<String>| Difference {
            index,
            user: user.clone(),
            source_id: source.source_id.clone(),
            target_id: None,
            kind: DiffKind::Missing,
            field: None,
            expected: None,
            got: None,
            reason,
        };
        let expected = match expected {
            Ok(e) => e,
            Err(f) => {
                self.summary.missing += 1;
                return Ok(Verdict::Missing(Box::new(missing(Some(format!(
                    "the mapping does not send it: {} {}",
                    f.code, f.message
                ))))));
            }
        };
        let mut found = None;
        let mut reason = None;
        let mapped = match source.source_id.as_deref() {
            Some(id) => self.mapped_id(id)?,
            None => None,
        };
        if let Some(tid) = mapped {
            found = self.lookup("tid", &tid)?;
            if found.is_none() {
                reason = Some(format!(
                    "the id map's target user `{tid}` is not at the target"
                ));
            }
        } else {
            // The expected record's keys, normalised as the target stores them; the
            // target rows' keys went through the same normalisation.
            let keys = PairKeys::of(&expected.record);
            for (column, key) in [
                ("email", &keys.email),
                ("uname", &keys.username),
                ("phone", &keys.phone),
            ] {
                if let Some(k) = key {
                    found = self.lookup(column, k)?;
                    if found.is_some() {
                        break;
                    }
                }
            }
        }
        let Some((seq, blob)) = found else {
            self.summary.missing += 1;
            return Ok(Verdict::Missing(Box::new(missing(reason))));
        };
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if let Some(w) = self.paired.get_mut(word) {
            if *w & (1 << bit) != 0 {
                self.summary.missing += 1;
                return Ok(Verdict::Missing(Box::new(missing(Some(
                    "its target user is already paired with an earlier source user (a duplicate in the source)"
                        .into(),
                )))));
            }
            *w |= 1 << bit;
        }
        let got: UserRecord =
            serde_json::from_slice(&blob).map_err(|e| StoreError::new(self.store.path(), e))?;
        let diffs = compare(expected, &got);
        if diffs.is_empty() {
            self.summary.matched += 1;
            return Ok(Verdict::Matched);
        }
        self.summary.different += 1;
        Ok(Verdict::Different(
            diffs
                .into_iter()
                .map(|d| Difference {
                    index,
                    user: user.clone(),
                    source_id: source.source_id.clone(),
                    target_id: got.source_id.clone(),
                    kind: DiffKind::Different,
                    field: Some(d.field.as_str()),
                    expected: Some(d.expected.unwrap_or(Value::Null)),
                    got: Some(d.got.unwrap_or(Value::Null)),
                    reason: None,
                })
                .collect(),
        ))
    }

    /// The counts so far; `extra` is the target users no source user paired with.
    pub fn summary(&self) -> Summary {
        let paired: u64 = self.paired.iter().map(|w| u64::from(w.count_ones())).sum();
        Summary {
            extra: self.summary.target - paired,
            ..self.summary
        }
    }

    /// The store (for its path in messages).
    pub fn store(&self) -> &WorkStore {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Field, Rule};

    fn u(email: Option<&str>, username: Option<&str>, name: &str) -> UserRecord {
        UserRecord {
            email: email.map(str::to_owned),
            username: username.map(str::to_owned),
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn with_id(mut r: UserRecord, id: &str) -> UserRecord {
        r.source_id = Some(id.into());
        r
    }

    fn pairing(targets: Vec<UserRecord>) -> Pairing {
        let mut p = Pairing::new(WorkStore::temporary(None).unwrap()).unwrap();
        p.add_targets(targets.into_iter().map(TargetRow::new))
            .unwrap();
        p
    }

    fn check(p: &mut Pairing, i: u64, source: &UserRecord) -> Verdict {
        let mut want = source.clone();
        want.email = want.email.map(|e| e.to_lowercase());
        want.username = want.username.map(|e| e.to_lowercase());
        want.source_id = None;
        p.check(i, source, Ok(&Expected::exact(want))).unwrap()
    }

    #[test]
    fn pairs_by_email_case_insensitively_then_username_and_counts_extras() {
        let mut p = pairing(vec![
            with_id(u(Some("ada@example.com"), None, "Ada"), "t1"),
            with_id(u(None, Some("grace"), "Grace"), "t2"),
            with_id(u(Some("extra@example.com"), None, "X"), "t3"),
        ]);
        assert_eq!(
            check(&mut p, 0, &u(Some("Ada@Example.COM"), None, "Ada")),
            Verdict::Matched
        );
        assert_eq!(
            check(&mut p, 1, &u(None, Some("Grace"), "Grace")),
            Verdict::Matched
        );
        let Verdict::Missing(d) = check(&mut p, 2, &u(Some("nobody@example.com"), None, "N"))
        else {
            panic!("expected missing");
        };
        assert_eq!(d.to_string(), "nobody@example.com: missing at the target");
        let s = p.summary();
        assert_eq!(
            (
                s.source,
                s.target,
                s.matched,
                s.missing,
                s.different,
                s.extra
            ),
            (3, 3, 2, 1, 0, 1)
        );
        assert!(!s.passed());
    }

    #[test]
    fn an_email_changed_at_the_target_still_pairs_by_username_and_is_reported() {
        let mut p = pairing(vec![u(Some("new@example.com"), Some("ada"), "Ada")]);
        let Verdict::Different(d) =
            check(&mut p, 0, &u(Some("ada@example.com"), Some("ada"), "Ada"))
        else {
            panic!("expected different");
        };
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].to_string(),
            r#"ada@example.com, email: expected "ada@example.com", got "new@example.com""#
        );
    }

    #[test]
    fn the_id_map_wins_over_the_email_and_a_mapped_user_gone_is_missing_with_why() {
        let mut p = pairing(vec![
            with_id(u(Some("ada@example.com"), None, "Impostor"), "t-other"),
            with_id(u(Some("ada@example.com"), None, "Ada"), "t-ada"),
        ]);
        assert_eq!(
            p.add_id_map([
                ("auth0|1".to_owned(), "t-ada".to_owned()),
                ("auth0|2".to_owned(), "t-gone".to_owned())
            ])
            .unwrap(),
            2
        );
        let ada = with_id(u(Some("ada@example.com"), None, "Ada"), "auth0|1");
        assert_eq!(check(&mut p, 0, &ada), Verdict::Matched);
        let bob = with_id(u(Some("bob@example.com"), None, "Bob"), "auth0|2");
        let Verdict::Missing(d) = check(&mut p, 1, &bob) else {
            panic!("expected missing");
        };
        assert!(d.reason.as_deref().unwrap().contains("t-gone"), "{d}");
        assert_eq!(p.summary().extra, 1);
    }

    #[test]
    fn a_source_duplicate_cannot_pair_twice_and_a_refused_record_is_missing_with_its_code() {
        let mut p = pairing(vec![u(Some("ada@example.com"), None, "Ada")]);
        let ada = u(Some("ada@example.com"), None, "Ada");
        assert_eq!(check(&mut p, 0, &ada), Verdict::Matched);
        let Verdict::Missing(d) = check(&mut p, 1, &ada) else {
            panic!("expected missing");
        };
        assert!(d.reason.unwrap().contains("duplicate"));
        let refusal = RecordFailure::new("UNSUPPORTED_HASH", "`password`: bcrypt only");
        let Verdict::Missing(d) = p
            .check(2, &u(Some("c@example.com"), None, "C"), Err(&refusal))
            .unwrap()
        else {
            panic!("expected missing");
        };
        assert!(d.to_string().contains("UNSUPPORTED_HASH"), "{d}");
        assert_eq!(p.summary().missing, 2);
    }

    #[test]
    fn the_store_never_holds_a_secret_and_rules_apply_after_pairing() {
        let mut t = u(Some("ada@example.com"), None, "Ada");
        t.password = Some(PasswordHash::bcrypt("$2b$10$SECRETSECRETSECRET"));
        t.mfa = vec![MfaFactor::Totp {
            secret: Secret::new("JBSWY3DPEHPK3PXP"),
        }];
        let row = TargetRow::new(t);
        let text = String::from_utf8_lossy(&row.record).into_owned();
        assert!(
            !text.contains("SECRET") && !text.contains("JBSWY3DP"),
            "{text}"
        );
        let mut p = Pairing::new(WorkStore::temporary(None).unwrap()).unwrap();
        p.add_targets([row]).unwrap();
        let mut want = u(Some("ada@example.com"), None, "Ada");
        want.password = Some(PasswordHash::bcrypt("$2b$10$other"));
        want.mfa = vec![MfaFactor::Totp {
            secret: Secret::new("ZZZZ"),
        }];
        let e = Expected::exact(want.clone()).with(Field::Name, Rule::NotObservable);
        assert_eq!(p.check(0, &want, Ok(&e)).unwrap(), Verdict::Matched);
    }
}
