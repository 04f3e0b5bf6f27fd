//! Deleting users: the provider-neutral half of `authmigrate delete`.
//!
//! - [`Key`]: how one selected user is named (an e-mail, a username, a provider id).
//! - [`Selection`]: the keys a run works on, built from `generate`'s arguments, an id
//!   map, or a file of e-mails; each key is looked up on its own, so nothing that
//!   merely shares a prefix is ever touched.
//! - [`UserDirectory`]: what a provider must do (look a key up, delete users by id).
//! - [`plan`] and [`execute`]: the one engine: look-ups, the guard (another domain,
//!   a user that has logged in), concurrent deletes in requests of at most
//!   [`UserDirectory::max_per_request`], and a resume journal for `--state`.
//!
//! Every selected key ends with exactly one [`DeleteOutcome`]: `deleted`, `skipped`
//! (not found, or left alone by the guard) or `failed` (with the reason).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::backend::BackendError;
use crate::error::{Error, Result};

/// How one selected user is named.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum Key {
    /// An e-mail address.
    Email(String),
    /// A username (Auth0 `username`, Authgear `preferred_username` / login ID `username`).
    Username(String),
    /// The provider's own user id (Auth0 `auth0|…`, Authgear's raw user id or node ID).
    Id(String),
}

impl Key {
    /// The key's text, as the report and the journal show it.
    pub fn text(&self) -> &str {
        match self {
            Self::Email(s) | Self::Username(s) | Self::Id(s) => s,
        }
    }
}

/// A user found at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FoundUser {
    /// The provider's id, as [`UserDirectory::delete`] takes it.
    pub id: String,
    /// The user's e-mail, if any.
    pub email: Option<String>,
    /// The user's username, if any.
    pub username: Option<String>,
    /// How many times the user logged in, when the provider tells (Auth0 `logins_count`).
    pub logins: Option<u64>,
    /// When the user last logged in, when the provider tells (Auth0 `last_login`,
    /// Authgear `lastLoginAt`).
    pub last_login: Option<String>,
}

/// What happened to one id of a delete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The provider deleted it.
    Deleted,
    /// The provider does not hold it (any more).
    NotFound,
    /// The provider refused; the reason never holds a secret.
    Failed {
        /// The provider's code (or authmigrate's).
        code: String,
        /// A human-readable reason.
        message: String,
    },
}

/// What a provider must do so the engine can delete users from it.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// `auth0` or `authgear`.
    fn name(&self) -> &'static str;
    /// Ids one [`UserDirectory::delete`] call may take (Auth0 1, Authgear 5).
    fn max_per_request(&self) -> usize;
    /// Every user the provider holds under `key` (normally zero or one).
    async fn lookup(&self, key: &Key) -> std::result::Result<Vec<FoundUser>, BackendError>;
    /// Looks many keys up at once, where the provider has a cheaper way than one
    /// request per key (Auth0: one users-export job instead of a rate-limited
    /// `users-by-email` per user). One entry per key, in order; `Ok(None)` when the
    /// provider has no such way (the default) or it does not pay for these keys.
    ///
    /// A key answered with no users is looked up again with
    /// [`UserDirectory::lookup`]: a bulk source may lag behind the provider's
    /// immediately consistent look-ups, and a user must never be reported "not
    /// found" because of that lag.
    async fn lookup_many(
        &self,
        keys: &[Key],
    ) -> std::result::Result<Option<Vec<Vec<FoundUser>>>, BackendError> {
        let _ = keys;
        Ok(None)
    }
    /// Deletes `ids` (at most [`UserDirectory::max_per_request`]); one answer per id,
    /// in order.
    async fn delete(&self, ids: &[String]) -> std::result::Result<Vec<Deleted>, BackendError>;
}

/// The keys a run works on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// The keys, in order; a key's position is its `index` in the report.
    pub keys: Vec<Key>,
    /// The e-mail domain every user must have (`--domain`), if set.
    pub domain: Option<String>,
}

impl Selection {
    /// The e-mails `generate --prefix P --count N --start S --domain D` made:
    /// `{P}_{i:02}@{D}` for `i` in `S..S+N`.
    pub fn generated(prefix: &str, count: u64, start: u64, domain: &str) -> Self {
        let keys = (start..start.saturating_add(count))
            .map(|i| Key::Email(format!("{prefix}_{i:02}@{domain}")))
            .collect();
        Self {
            keys,
            domain: Some(domain.to_owned()),
        }
    }

    /// One e-mail per line of `path` (blank lines and `#` comments skipped). A line
    /// that is not an e-mail is an error naming the file and line.
    pub fn emails_file(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io("read", path, e))?;
        let mut keys = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| Error::io("read", path, e))?;
            let email = line.trim();
            if email.is_empty() || email.starts_with('#') {
                continue;
            }
            if !looks_like_email(email) {
                return Err(Error::Config(format!(
                    "`{}`, line {}: `{email}` is not an e-mail address",
                    path.display(),
                    n + 1
                )));
            }
            keys.push(Key::Email(email.to_owned()));
        }
        Ok(Self { keys, domain: None })
    }

    /// The users a run created, from an id map (`migrate --id-map`: CSV
    /// `index,source_id,email,outcome,target_id`) or an `import --report` (JSON,
    /// records with `outcome` and `user_id`). Only `inserted` users are taken: a user
    /// that already existed (`skipped`) or was `updated` was not made by the run.
    pub fn id_map(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let mut keys = Vec::new();
        if text.trim_start().starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Error::Config(format!("`{}`: not a valid report: {e}", path.display()))
            })?;
            let records = v["records"].as_array().ok_or_else(|| {
                Error::Config(format!("`{}`: a report needs `records`", path.display()))
            })?;
            for (i, r) in records.iter().enumerate() {
                if r["outcome"] != "inserted" {
                    continue;
                }
                let id = r["user_id"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "`{}`, record {i}: field `user_id`: an inserted user has no id",
                            path.display()
                        ))
                    })?;
                keys.push(Key::Id(id.to_owned()));
            }
            return Ok(Self { keys, domain: None });
        }
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
        let columns: Vec<&str> = header.split(',').map(str::trim).collect();
        let col = |name: &str| {
            columns.iter().position(|c| *c == name).ok_or_else(|| {
                Error::Config(format!(
                    "`{}`: the id map's header has no `{name}` column (expected index,source_id,email,outcome,target_id)",
                    path.display()
                ))
            })
        };
        let (outcome, target) = (col("outcome")?, col("target_id")?);
        for (n, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let fields = crate::io::csv::split_line(line);
            let field = |c: usize| fields.get(c).map(String::as_str).unwrap_or("");
            if field(outcome) != "inserted" {
                continue;
            }
            let id = field(target);
            if id.is_empty() {
                return Err(Error::Config(format!(
                    "`{}`, line {}: field `target_id`: an inserted user has no id",
                    path.display(),
                    n + 1
                )));
            }
            keys.push(Key::Id(id.to_owned()));
        }
        Ok(Self { keys, domain: None })
    }
}

fn looks_like_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !s.contains(char::is_whitespace))
}

/// The outcome of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every user found under the key was deleted.
    Deleted,
    /// Not found, or left alone by the guard (the code says which).
    Skipped,
    /// A delete failed.
    Failed,
}

impl Outcome {
    /// `deleted`, `skipped` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// Code of a key the provider holds no user for.
pub const NOT_FOUND: &str = "NOT_FOUND";
/// Code of a user whose e-mail is not in `--domain`.
pub const OTHER_DOMAIN: &str = "OTHER_DOMAIN";
/// Code of a user that has logged in (the provider said so).
pub const LOGGED_IN: &str = "LOGGED_IN";
/// Code of a user that another key of the same run already covers.
pub const DUPLICATE_KEY: &str = "DUPLICATE_KEY";

/// One key's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteOutcome {
    /// The key's position in the selection.
    pub index: u64,
    /// The key.
    pub key: Key,
    /// What happened.
    pub outcome: Outcome,
    /// The provider ids concerned.
    pub user_ids: Vec<String>,
    /// Why (`NOT_FOUND`, `LOGGED_IN`, `OTHER_DOMAIN`, the provider's code...).
    pub code: Option<String>,
    /// A human-readable reason.
    pub message: Option<String>,
    /// Whether the outcome was read from the journal of an earlier run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// What the engine will do with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delete these users.
    Delete(Vec<FoundUser>),
    /// Nothing to do: the outcome is already known (not found, left alone, or
    /// finished in an earlier run).
    Done(DeleteOutcome),
}

/// One key of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The key's position in the selection.
    pub index: u64,
    /// The key.
    pub key: Key,
    /// What will happen.
    pub action: Action,
}

/// Options of a delete run.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Delete users the guard would leave alone (another domain, logged in).
    pub force: bool,
    /// Look-ups and delete requests in flight at once (at least 1).
    pub concurrency: usize,
    /// The resume journal (`--state`).
    pub state: Option<PathBuf>,
    /// Identifies the run; a journal written by another run is refused.
    pub fingerprint: String,
}

fn done(
    index: u64,
    key: &Key,
    outcome: Outcome,
    ids: Vec<String>,
    code: &str,
    msg: String,
) -> Action {
    Action::Done(DeleteOutcome {
        index,
        key: key.clone(),
        outcome,
        user_ids: ids,
        code: Some(code.to_owned()),
        message: Some(msg),
        replayed: false,
    })
}

/// Why the guard leaves a user alone, if it does.
fn guard(user: &FoundUser, domain: Option<&str>) -> Option<(&'static str, String)> {
    if let Some(domain) = domain {
        let theirs = user
            .email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d);
        if !theirs.is_some_and(|d| d.eq_ignore_ascii_case(domain)) {
            return Some((
                OTHER_DOMAIN,
                format!(
                    "the user's e-mail {} is not in {domain}; left alone (use --force to delete it)",
                    user.email
                        .as_deref()
                        .map_or("(none)".to_owned(), |e| format!("`{e}`"))
                ),
            ));
        }
    }
    if user.logins.is_some_and(|n| n > 0) || user.last_login.is_some() {
        let mut what = Vec::new();
        if let Some(n) = user.logins.filter(|n| *n > 0) {
            what.push(format!("{n} logins"));
        }
        if let Some(at) = &user.last_login {
            what.push(format!("last at {at}"));
        }
        return Some((
            LOGGED_IN,
            format!(
                "the user has logged in ({}); left alone (use --force to delete it)",
                what.join(", ")
            ),
        ));
    }
    None
}

/// Looks every key up (concurrently) and decides what to do with it. Keys the
/// journal already finished are not looked up again.
pub async fn plan(
    directory: &dyn UserDirectory,
    selection: &Selection,
    options: &DeleteOptions,
) -> std::result::Result<Vec<Planned>, Error> {
    let journal = match &options.state {
        Some(path) => read_journal(path, &options.fingerprint)?,
        None => HashMap::new(),
    };
    let domain = selection.domain.as_deref();
    let prefetched = prefetch(directory, &selection.keys, &journal).await?;
    let lookups = futures::stream::iter(selection.keys.iter().enumerate())
        .map(|(i, key)| {
            let (journal, prefetched) = (&journal, &prefetched);
            async move {
                let index = i as u64;
                if let Some(prev) = journal.get(key) {
                    let mut prev = prev.clone();
                    prev.index = index;
                    prev.replayed = true;
                    return Ok(Planned {
                        index,
                        key: key.clone(),
                        action: Action::Done(prev),
                    });
                }
                let found = match prefetched.get(key) {
                    Some(users) if !users.is_empty() => users.clone(),
                    _ => directory.lookup(key).await?,
                };
                let action = if found.is_empty() {
                    done(
                        index,
                        key,
                        Outcome::Skipped,
                        Vec::new(),
                        NOT_FOUND,
                        format!("no {} user has {}", directory.name(), describe(key)),
                    )
                } else if let Some((code, msg)) = (!options.force)
                    .then(|| found.iter().find_map(|u| guard(u, domain)))
                    .flatten()
                {
                    done(index, key, Outcome::Skipped, ids(&found), code, msg)
                } else {
                    Action::Delete(found)
                };
                Ok::<_, BackendError>(Planned {
                    index,
                    key: key.clone(),
                    action,
                })
            }
        })
        .buffered(options.concurrency.max(1));
    let mut planned: Vec<Planned> = lookups
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<std::result::Result<_, _>>()?;
    // Two keys naming the same user (an id map and an e-mail list can): delete once.
    let mut seen: HashMap<String, u64> = HashMap::new();
    for p in &mut planned {
        if let Action::Delete(users) = &p.action {
            if let Some(first) = users.iter().find_map(|u| seen.get(&u.id)) {
                p.action = done(
                    p.index,
                    &p.key,
                    Outcome::Skipped,
                    ids(users),
                    DUPLICATE_KEY,
                    format!("the same user as key {first}; deleted once"),
                );
            } else {
                for u in users {
                    seen.insert(u.id.clone(), p.index);
                }
            }
        }
    }
    Ok(planned)
}

/// The users [`UserDirectory::lookup_many`] found for the keys the journal has not
/// finished (empty when the directory has no bulk look-up).
async fn prefetch(
    directory: &dyn UserDirectory,
    keys: &[Key],
    journal: &HashMap<Key, DeleteOutcome>,
) -> std::result::Result<HashMap<Key, Vec<FoundUser>>, BackendError> {
    let pending: Vec<Key> = keys
        .iter()
        .filter(|k| !journal.contains_key(*k))
        .cloned()
        .collect();
    if pending.is_empty() {
        return Ok(HashMap::new());
    }
    let Some(found) = directory.lookup_many(&pending).await? else {
        return Ok(HashMap::new());
    };
    if found.len() != pending.len() {
        return Err(BackendError::Fatal {
            message: format!(
                "{}: the bulk look-up answered {} keys of {}",
                directory.name(),
                found.len(),
                pending.len()
            ),
            hint: None,
        });
    }
    Ok(pending.into_iter().zip(found).collect())
}

fn ids(users: &[FoundUser]) -> Vec<String> {
    users.iter().map(|u| u.id.clone()).collect()
}

fn describe(key: &Key) -> String {
    match key {
        Key::Email(e) => format!("the e-mail `{e}`"),
        Key::Username(u) => format!("the username `{u}`"),
        Key::Id(i) => format!("the id `{i}`"),
    }
}

/// Runs a plan: deletes every `Delete` entry's users in requests of at most
/// [`UserDirectory::max_per_request`] ids, `concurrency` requests at once, journals
/// each finished key, and calls `on_outcome` once per key (in completion order).
/// A [`BackendError::Fatal`] stops the run; keys not finished are then reported
/// `failed` with code `NOT_DELETED`.
pub async fn execute(
    directory: &dyn UserDirectory,
    plan: Vec<Planned>,
    options: &DeleteOptions,
    on_outcome: &(dyn Fn(&DeleteOutcome) + Sync),
) -> std::result::Result<(), Error> {
    let journal = match &options.state {
        Some(path) => Some(Arc::new(Mutex::new(open_journal(
            path,
            &options.fingerprint,
        )?))),
        None => None,
    };
    let mut pending = Vec::new();
    for p in plan {
        match p.action {
            Action::Done(o) => on_outcome(&o),
            Action::Delete(users) => pending.push((p.index, p.key, users)),
        }
    }
    // Cut requests: each holds whole keys, at most max_per_request ids.
    let per = directory.max_per_request().max(1);
    let mut requests: Vec<Vec<(u64, Key, Vec<FoundUser>)>> = Vec::new();
    let mut cur: Vec<(u64, Key, Vec<FoundUser>)> = Vec::new();
    let mut cur_ids = 0;
    for entry in pending {
        let n = entry.2.len();
        if cur_ids + n > per && !cur.is_empty() {
            requests.push(std::mem::take(&mut cur));
            cur_ids = 0;
        }
        cur_ids += n;
        cur.push(entry);
    }
    if !cur.is_empty() {
        requests.push(cur);
    }
    let fatal: Mutex<Option<BackendError>> = Mutex::new(None);
    let finish = |o: DeleteOutcome| -> std::result::Result<(), Error> {
        if let Some(j) = &journal
            && o.outcome == Outcome::Deleted
        {
            let mut j = j.lock().unwrap_or_else(|e| e.into_inner());
            let line = serde_json::to_string(&JournalLine::Key(o.clone()))
                .map_err(|e| Error::Config(e.to_string()))?;
            writeln!(j.1, "{line}")
                .and_then(|_| j.1.flush())
                .map_err(|e| Error::io("write", &j.0, e))?;
        }
        on_outcome(&o);
        Ok(())
    };
    let results = futures::stream::iter(requests)
        .map(|request| {
            let fatal = &fatal;
            async move {
                let stopped = fatal.lock().unwrap_or_else(|e| e.into_inner()).is_some();
                let answers = if stopped {
                    Err(BackendError::Fatal {
                        message: "the run stopped before this user was deleted".into(),
                        hint: None,
                    })
                } else {
                    let all: Vec<String> = request.iter().flat_map(|r| ids(&r.2)).collect();
                    directory.delete(&all).await
                };
                (request, answers)
            }
        })
        .buffer_unordered(options.concurrency.max(1));
    futures::pin_mut!(results);
    while let Some((request, answers)) = results.next().await {
        match answers {
            Ok(answers) => {
                let mut answers = answers.into_iter();
                for (index, key, users) in request {
                    let mine: Vec<Deleted> = users
                        .iter()
                        .map(|_| {
                            answers.next().unwrap_or(Deleted::Failed {
                                code: "NO_ANSWER".into(),
                                message: "the provider gave no answer for this user".into(),
                            })
                        })
                        .collect();
                    finish(key_outcome(index, key, &users, &mine))?;
                }
            }
            Err(e) => {
                let (code, message) = match &e {
                    BackendError::Fatal { .. } => ("NOT_DELETED", e.to_string()),
                    _ => ("DELETE_FAILED", e.to_string()),
                };
                if matches!(e, BackendError::Fatal { .. }) {
                    let mut f = fatal.lock().unwrap_or_else(|p| p.into_inner());
                    if f.is_none() {
                        *f = Some(e);
                    }
                }
                for (index, key, users) in request {
                    finish(DeleteOutcome {
                        index,
                        key,
                        outcome: Outcome::Failed,
                        user_ids: ids(&users),
                        code: Some(code.into()),
                        message: Some(message.clone()),
                        replayed: false,
                    })?;
                }
            }
        }
    }
    let fatal = fatal.lock().unwrap_or_else(|e| e.into_inner()).take();
    match fatal {
        Some(e) => Err(Error::Backend(e)),
        None => Ok(()),
    }
}

/// One key's outcome from its users' answers: `deleted` when every one was deleted
/// (or was already gone: deletes are idempotent), else `failed` naming the first
/// refusal.
fn key_outcome(index: u64, key: Key, users: &[FoundUser], answers: &[Deleted]) -> DeleteOutcome {
    let failed = answers.iter().find_map(|a| match a {
        Deleted::Failed { code, message } => Some((code.clone(), message.clone())),
        _ => None,
    });
    let all_gone = answers.iter().all(|a| *a == Deleted::NotFound);
    let (outcome, code, message) = match failed {
        Some((c, m)) => (Outcome::Failed, Some(c), Some(m)),
        None if all_gone => (
            Outcome::Skipped,
            Some(NOT_FOUND.to_owned()),
            Some("the user was gone by the time it was deleted".to_owned()),
        ),
        None => (Outcome::Deleted, None, None),
    };
    DeleteOutcome {
        index,
        key,
        outcome,
        user_ids: ids(users),
        code,
        message,
        replayed: false,
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JournalLine {
    Header { fingerprint: String },
    Key(DeleteOutcome),
}

/// Reads what an earlier run with the same fingerprint finished. A torn last line
/// (a kill mid-write) is ignored.
fn read_journal(path: &Path, fingerprint: &str) -> Result<HashMap<Key, DeleteOutcome>> {
    let mut out = HashMap::new();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io("read", path, e))?;
        match serde_json::from_str::<JournalLine>(&line) {
            Ok(JournalLine::Header { fingerprint: f }) if f != fingerprint => {
                return Err(Error::Config(format!(
                    "`{}` is the state of another delete run (other provider or selection); use another --state file",
                    path.display()
                )));
            }
            Ok(JournalLine::Header { .. }) => {}
            Ok(JournalLine::Key(o)) => {
                out.insert(o.key.clone(), o);
            }
            Err(_) if n > 0 => {} // a torn line from a kill
            Err(e) => {
                return Err(Error::Config(format!(
                    "`{}`, line {}: not a delete state file: {e}",
                    path.display(),
                    n + 1
                )));
            }
        }
    }
    Ok(out)
}

fn open_journal(path: &Path, fingerprint: &str) -> Result<(PathBuf, File)> {
    let fresh = std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    if fresh {
        let line = serde_json::to_string(&JournalLine::Header {
            fingerprint: fingerprint.to_owned(),
        })
        .map_err(|e| Error::Config(e.to_string()))?;
        writeln!(file, "{line}").map_err(|e| Error::io("write", path, e))?;
    } else {
        // A torn last line (kill mid-write) must not glue onto the next one.
        let text = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        if text.last().is_some_and(|b| *b != b'\n') {
            writeln!(file).map_err(|e| Error::io("write", path, e))?;
        }
    }
    Ok((path.to_owned(), file))
}

#[cfg(test)]
mod tests;
