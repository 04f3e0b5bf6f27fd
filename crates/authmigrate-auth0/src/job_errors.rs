//! Reading a completed Auth0 import job's answer: its `summary` and `/errors`
//! entries, mapped back to the positions of the batch it was started with.
//!
//! Entries are matched by the user they echo (e-mail, else user_id, else username,
//! preferring an entry equal to the record as sent, `*****` standing for a redacted
//! value), never by an error's `path`: real entries have none (auth0-api.md §1,
//! CORRECTED).

use std::collections::HashSet;

use authmigrate_core::backend::{Batch, JobId, Outcome, RecordFailure, RecordOutcome};
use serde_json::Value;

use crate::format::AUTH0_ID_PREFIX;

/// A completed job's `summary`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    failed: Option<u64>,
    updated: u64,
    inserted: u64,
}

impl Summary {
    pub(crate) fn of(job: &Value) -> Self {
        let s = job.get("summary");
        let n = |k: &str| s.and_then(|s| s.get(k)).and_then(Value::as_u64);
        Self {
            failed: n("failed"),
            updated: n("updated").unwrap_or(0),
            inserted: n("inserted").unwrap_or(0),
        }
    }
}

/// The identifying fields of one bulk-import user.
#[derive(Debug, Default)]
struct Keys {
    email: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
}

impl Keys {
    fn of(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Self {
            email: s("email"),
            user_id: s("user_id"),
            username: s("username"),
        }
    }

    /// Whether `other` (a user from `/errors`) names this record: by email, else
    /// user_id, else username.
    fn matches(&self, other: &Keys) -> bool {
        if let Some(e) = &other.email {
            return self
                .email
                .as_deref()
                .is_some_and(|m| m == e || m.eq_ignore_ascii_case(e));
        }
        if let Some(id) = &other.user_id {
            return self.user_id.as_deref() == Some(id.as_str());
        }
        if let Some(u) = &other.username {
            return self.username.as_deref() == Some(u.as_str());
        }
        false
    }
}

/// Whether a user from `/errors` equals a record as sent, where the redacted `*****`
/// stands for any string.
fn same_user(returned: &Value, sent: &Value) -> bool {
    match (returned, sent) {
        (Value::String(r), Value::String(_)) if r == "*****" => true,
        (Value::Object(r), Value::Object(s)) => {
            r.len() == s.len()
                && r.iter()
                    .all(|(k, rv)| s.get(k).is_some_and(|sv| same_user(rv, sv)))
        }
        (Value::Array(r), Value::Array(s)) => {
            r.len() == s.len() && r.iter().zip(s).all(|(a, b)| same_user(a, b))
        }
        (r, s) => r == s,
    }
}

/// Maps a completed job's errors back to batch positions and builds one outcome per
/// record, in batch order.
pub(crate) fn outcomes(
    job: &JobId,
    batch: &Batch,
    errors: &[Value],
    summary: Summary,
    upsert: bool,
) -> Vec<RecordOutcome> {
    let sent: Vec<Value> = batch
        .records
        .iter()
        .map(|r| serde_json::from_slice(&r.json).unwrap_or(Value::Null))
        .collect();
    let keys: Vec<Keys> = sent.iter().map(Keys::of).collect();
    let mut failures: Vec<Option<RecordFailure>> = vec![None; batch.records.len()];
    let mut matched = HashSet::new();
    let mut unmatched = 0usize;
    for entry in errors {
        let user = entry.get("user").cloned().unwrap_or(Value::Null);
        let failure = failure_of(entry);
        // "already provided": the entry is a later occurrence in the file.
        let later = failure.message.contains("already provided");
        let wanted = Keys::of(&user);
        let candidates: Vec<usize> = (0..sent.len())
            .filter(|i| !matched.contains(i) && keys[*i].matches(&wanted))
            .collect();
        let exact: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|i| same_user(&user, &sent[*i]))
            .collect();
        let pool = if exact.is_empty() {
            &candidates
        } else {
            &exact
        };
        let pick = if later { pool.last() } else { pool.first() };
        match pick {
            Some(&i) => {
                matched.insert(i);
                failures[i] = Some(failure);
            }
            None => {
                unmatched += 1;
                tracing::warn!(
                    job = %job,
                    chunk = batch.chunk,
                    code = %failure.code,
                    "an error entry of the job matches no record of its batch"
                );
            }
        }
    }
    let mut job_warnings = Vec::new();
    if unmatched > 0 {
        job_warnings.push(format!(
            "job {job}: {unmatched} error entr{} matched no record of the batch",
            if unmatched == 1 { "y" } else { "ies" }
        ));
    }
    if let Some(failed) = summary.failed
        && failed != matched.len() as u64
    {
        tracing::warn!(
            job = %job,
            summary_failed = failed,
            matched = matched.len(),
            "the job's summary disagrees with its errors list"
        );
        job_warnings.push(format!(
            "job {job}: auth0's summary counts {failed} failed user(s) but {} error entr{} matched",
            matched.len(),
            if matched.len() == 1 { "y" } else { "ies" }
        ));
    }
    let (success, mixed) = if !upsert || summary.updated == 0 {
        (Outcome::Inserted, false)
    } else if summary.inserted == 0 {
        (Outcome::Updated, false)
    } else {
        (Outcome::Inserted, true)
    };
    failures
        .into_iter()
        .zip(&keys)
        .enumerate()
        .map(|(position, (failure, k))| {
            let outcome = match failure {
                Some(f) if is_existing_user(&f) => RecordOutcome {
                    outcome: Outcome::Skipped,
                    user_id: None,
                    code: Some(f.code),
                    message: Some(f.message),
                    warnings: Vec::new(),
                },
                Some(f) => RecordOutcome::failed(f),
                None => {
                    let user_id = k
                        .user_id
                        .as_ref()
                        .map(|id| format!("{AUTH0_ID_PREFIX}{id}"));
                    let mut o = RecordOutcome::success(success, user_id);
                    if mixed {
                        o.warnings.push(format!(
                            "job {job} updated {} and inserted {} user(s); auth0 does not say which, so this one is counted as inserted",
                            summary.updated, summary.inserted
                        ));
                    }
                    o
                }
            };
            // Job-level warnings go on the batch's first record only (once per job).
            if position == 0 {
                outcome.with_warnings(job_warnings.iter().cloned())
            } else {
                outcome
            }
        })
        .collect()
}

/// Auth0's code for a user that already exists, and for a user given twice in one file.
pub const DUPLICATED_USER: &str = "DUPLICATED_USER";

/// Whether an `/errors` entry says the user already exists at the tenant (and was left
/// alone because `upsert` is off): `DUPLICATED_USER` "The user already exist and upsert
/// parameter is false" (auth0-api.md §1, CORRECTED: go-auth0's recording
/// `TestJobManager_ReadErrors`; no `path`). Such a record is `skipped`, keeping Auth0's
/// code and message. The same code with "A user with this email was already provided."
/// is a duplicate inside the uploaded file and stays a failure.
///
/// The older `CONFLICT`, `CONFLICT_EMAIL` and `CONFLICT_USERNAME` codes stay failures:
/// the docs list them without a message, real traffic reports an existing user as
/// `DUPLICATED_USER`, and a conflict on one field may be a *different* user holding that
/// e-mail or username, which "skipped" would hide.
fn is_existing_user(f: &RecordFailure) -> bool {
    f.code == DUPLICATED_USER
        && !f.message.contains("already provided")
        && f.message.to_ascii_lowercase().contains("already exist")
}

/// The failure of one `/errors` entry: the first error's code, all messages joined.
fn failure_of(entry: &Value) -> RecordFailure {
    let errs: Vec<&Value> = entry
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let code = errs
        .first()
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("IMPORT_ERROR")
        .to_owned();
    let messages: Vec<String> = errs
        .iter()
        .filter_map(|e| {
            let m = e.get("message").and_then(Value::as_str)?;
            let path = e.get("path").and_then(Value::as_str).unwrap_or_default();
            Some(if path.is_empty() || m.contains(path) {
                m.to_owned()
            } else {
                format!("{m} (path `{path}`)")
            })
        })
        .collect();
    let message = if messages.is_empty() {
        "auth0 rejected this user without a message".to_owned()
    } else {
        messages.join("; ")
    };
    RecordFailure::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use authmigrate_core::backend::BatchRecord;
    use serde_json::json;

    fn batch(users: &[Value]) -> Batch {
        Batch {
            chunk: 0,
            records: users
                .iter()
                .enumerate()
                .map(|(i, u)| BatchRecord {
                    index: i as u64,
                    label: None,
                    json: serde_json::to_vec(u).unwrap(),
                    warnings: vec![],
                })
                .collect(),
        }
    }

    /// An `/errors` entry as real tenants send it: no `path`.
    fn err(user: Value, code: &str, message: &str) -> Value {
        json!({"user": user, "errors": [{"code": code, "message": message}]})
    }

    #[test]
    fn duplicates_map_to_the_later_occurrence_and_hashes_are_wildcards() {
        let users = [
            json!({"email":"a@x.com","password_hash":"$2b$04$aaa"}),
            json!({"email":"b@x.com"}),
            json!({"email":"a@x.com","password_hash":"$2b$04$aaa"}),
            json!({"email":"c@x.com","name":"C"}),
            json!({"email":"c@x.com","name":"C2"}),
        ];
        let errors = [
            err(
                json!({"email":"a@x.com","password_hash":"*****"}),
                "DUPLICATED_USER",
                "A user with this email was already provided.",
            ),
            err(
                json!({"email":"c@x.com","name":"C"}),
                "DUPLICATED_USER",
                "The user already exist and upsert parameter is false",
            ),
            err(
                json!({"email":"c@x.com","name":"C2"}),
                "DUPLICATED_USER",
                "A user with this email was already provided.",
            ),
        ];
        let job = JobId("job_1".into());
        let summary = Summary {
            failed: Some(3),
            updated: 0,
            inserted: 2,
        };
        let out = outcomes(&job, &batch(&users), &errors, summary, false);
        let kinds: Vec<Outcome> = out.iter().map(|o| o.outcome).collect();
        assert_eq!(
            kinds,
            [
                Outcome::Inserted,
                Outcome::Inserted,
                Outcome::Failed,
                Outcome::Skipped,
                Outcome::Failed
            ]
        );
        assert_eq!(out[2].code.as_deref(), Some("DUPLICATED_USER"));
        // The existing user keeps Auth0's code and message.
        assert_eq!(out[3].code.as_deref(), Some("DUPLICATED_USER"));
        assert_eq!(
            out[3].message.as_deref(),
            Some("The user already exist and upsert parameter is false")
        );
        assert!(out.iter().all(|o| o.warnings.is_empty()));
    }

    #[test]
    fn conflict_codes_and_in_file_duplicates_stay_failures() {
        let users = [json!({"email":"a@x.com"}), json!({"email":"b@x.com"})];
        let errors = [
            err(json!({"email":"a@x.com"}), "CONFLICT_EMAIL", "conflict"),
            err(
                json!({"email":"b@x.com"}),
                "DUPLICATED_USER",
                "A user with this email was already provided.",
            ),
        ];
        let summary = Summary {
            failed: Some(2),
            updated: 0,
            inserted: 0,
        };
        let out = outcomes(&JobId("j".into()), &batch(&users), &errors, summary, false);
        assert_eq!(out[0].outcome, Outcome::Failed);
        assert_eq!(out[1].outcome, Outcome::Failed);
    }

    #[test]
    fn unmatched_entries_and_summary_mismatch_warn() {
        let users = [json!({"email":"a@x.com"})];
        let errors = [err(json!({"email":"zz@x.com"}), "FORMAT", "bad")];
        let summary = Summary {
            failed: Some(1),
            updated: 0,
            inserted: 0,
        };
        let out = outcomes(&JobId("j".into()), &batch(&users), &errors, summary, false);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, Outcome::Inserted);
        assert_eq!(out[0].warnings.len(), 2, "{:?}", out[0].warnings);
    }

    #[test]
    fn several_messages_are_joined() {
        let e = json!({"user": {}, "errors": [
            {"code":"FORMAT","message":"bad format","path":"email"},
            {"code":"INVALID_TYPE","message":"not a bool","path":"blocked"}]});
        let f = failure_of(&e);
        assert_eq!(f.code, "FORMAT");
        assert_eq!(
            f.message,
            "bad format (path `email`); not a bool (path `blocked`)"
        );
    }

    #[test]
    fn upsert_outcomes_follow_the_summary() {
        let users = [
            json!({"email":"a@x.com","user_id":"u1"}),
            json!({"email":"b@x.com"}),
        ];
        let job = JobId("j".into());
        let s = |updated, inserted| Summary {
            failed: Some(0),
            updated,
            inserted,
        };
        let all = |o: &[RecordOutcome]| o.iter().map(|o| o.outcome).collect::<Vec<_>>();
        let out = outcomes(&job, &batch(&users), &[], s(2, 0), true);
        assert_eq!(all(&out), [Outcome::Updated, Outcome::Updated]);
        assert_eq!(out[0].user_id.as_deref(), Some("auth0|u1"));
        let out = outcomes(&job, &batch(&users), &[], s(0, 2), true);
        assert_eq!(all(&out), [Outcome::Inserted, Outcome::Inserted]);
        let out = outcomes(&job, &batch(&users), &[], s(1, 1), true);
        assert_eq!(all(&out), [Outcome::Inserted, Outcome::Inserted]);
        assert_eq!(out[0].warnings.len(), 1);
        // Without upsert, the summary's `updated` is ignored.
        let out = outcomes(&job, &batch(&users), &[], s(2, 0), false);
        assert_eq!(all(&out), [Outcome::Inserted, Outcome::Inserted]);
    }
}
