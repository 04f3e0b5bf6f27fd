//! Reading an Auth0 password-hash export and joining it to users (`--password-hashes`).
//!
//! Two ways, the same result: [`index`] keeps only the keys in memory (about 11 to 21 bytes
//! an entry) and lets every core attach hashes while the users stream through once;
//! when even that outgrows the memory budget, [`join`] runs the Grace hash join, which
//! spills to disk and works for any size. See `docs/join.md`.

use std::ops::ControlFlow;
use std::path::Path;

use authmigrate_core::driver::InputRecord;
use authmigrate_core::io::ReaderStatus;
use authmigrate_core::join::{
    EncodedBlock, HashEntry, IndexBuilder, JoinOptions, JoinStats, PasswordIndex, PasswordJoin,
    join_passwords,
};

use crate::input::{ParallelLines, parse_object};
use crate::output::Output;
use crate::pipeline::{self, TextChunks};

/// The join's options. `AUTHMIGRATE_JOIN_MEMORY` (bytes) overrides the memory budget
/// of its tables (default 32 MiB; see `docs/join.md`).
fn join_options() -> JoinOptions {
    let mut options = JoinOptions::default();
    if let Some(bytes) = std::env::var("AUTHMIGRATE_JOIN_MEMORY")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        options.memory_budget = bytes;
    }
    options
}

/// Refuses a file that is not an Auth0 password-hash export.
fn check_format(path: &Path) -> anyhow::Result<()> {
    let format = authmigrate_core::io::detect_format(path)?;
    if format != authmigrate_core::io::InputFormat::Auth0PasswordExport {
        return Err(crate::Hinted {
            message: format!(
                "`{}` is not an Auth0 password-hash export (it reads as {})",
                path.display(),
                format.name()
            ),
            hint: "`--password-hashes` takes the NDJSON file Auth0 support sends, with `_id.$oid` and `passwordHash` on each line".into(),
        }
        .into());
    }
    Ok(())
}

/// Reads one line of the hash export, or says why not (line and reason, never the hash).
fn hash_line(line: u64, text: &str) -> Result<HashEntry, String> {
    match authmigrate_auth0::format::password_entry_from_str(text) {
        Some(entry) => Ok(to_hash_entry(entry)),
        None => hash_line_checked(line, text),
    }
}

/// [`hash_line`] through the reference reader only: for lines the fast path declined,
/// so that it says precisely what is wrong.
fn hash_line_checked(line: u64, text: &str) -> Result<HashEntry, String> {
    let obj = parse_object(line, text)?;
    authmigrate_auth0::format::from_password_export(obj)
        .map(to_hash_entry)
        .map_err(|e| format!("line {line}: {e}"))
}

fn to_hash_entry(entry: authmigrate_auth0::format::PasswordHashEntry) -> HashEntry {
    HashEntry {
        id: Some(entry.user_id),
        email: entry.email,
        hash: entry.hash,
    }
}

fn skipped(out: &Output, path: &Path, reason: &str) {
    out.say(format!("warning: `{}`, {reason}: skipped", path.display()));
}

/// Indexes the hashes in `path` on every core. `None` when the index would outgrow
/// the memory budget: use [`join`] then. Unreadable lines are reported and skipped.
pub(crate) fn index(path: &Path, out: &Output) -> anyhow::Result<Option<PasswordIndex>> {
    check_format(path)?;
    // The shortest real line is about 100 bytes; unused capacity costs no memory.
    let expected = std::fs::metadata(path).map_or(0, |m| m.len() / 100) as usize;
    let mut builder = IndexBuilder::new(&join_options(), expected)?;
    let hasher = builder.hasher().clone();
    let mut chunks = TextChunks::open(path)?;
    let mut fits = true;
    pipeline::ordered(
        || chunks.next_chunk(),
        |chunk| {
            let mut problems = Vec::new();
            if chunk.too_long {
                problems.push(format!(
                    "line {}: longer than {} bytes",
                    chunk.first_line,
                    pipeline::MAX_LINE_BYTES
                ));
            }
            let mut block = EncodedBlock::default();
            let mut id = String::new();
            for (line, bytes) in chunk.lines() {
                let text = match std::str::from_utf8(bytes) {
                    Ok(text) if text.trim().is_empty() => continue,
                    Ok(text) => text,
                    Err(_) => {
                        problems.push(format!("line {line}: not valid UTF-8"));
                        continue;
                    }
                };
                // The common case borrows from the line; what the fast path declines
                // goes through the reference reader, which also says what is wrong.
                if let Some(parts) = authmigrate_auth0::format::password_parts_from_str(text) {
                    id.clear();
                    id.push_str(authmigrate_auth0::format::AUTH0_ID_PREFIX);
                    id.push_str(&parts.id);
                    block.push(&hasher, Some(&id), parts.email.as_deref(), &parts.hash);
                    continue;
                }
                match hash_line_checked(line, text) {
                    Ok(e) => block.push(
                        &hasher,
                        e.id.as_deref(),
                        e.email.as_deref(),
                        e.hash.expose(),
                    ),
                    Err(reason) => problems.push(reason),
                }
            }
            (block, problems)
        },
        |(block, problems)| {
            for reason in &problems {
                skipped(out, path, reason);
            }
            if builder.push(block)? {
                Ok(ControlFlow::Continue(()))
            } else {
                fits = false;
                Ok(ControlFlow::Break(()))
            }
        },
    )?;
    if !fits {
        tracing::info!(
            entries = builder.entries(),
            "password-hash index outgrew its memory budget: using the spilling join"
        );
        return Ok(None);
    }
    Ok(Some(builder.finish()?))
}

/// Joins the hashes in `path` to `users` (by id, then by e-mail) with the Grace hash
/// join, in bounded memory whatever the sizes. Unreadable hash lines are reported and
/// skipped. Call [`PasswordJoin::finish`] after iterating.
pub(crate) fn join<U: Iterator<Item = InputRecord>>(
    users: U,
    path: &Path,
    out: &Output,
) -> anyhow::Result<PasswordJoin<U>> {
    check_format(path)?;
    let entries = ParallelLines::open(path, |_, line, text| hash_line(line, text))?;
    let shown = path.to_owned();
    let out = out.clone();
    let entries = entries.filter_map(move |parsed| match parsed {
        Ok(entry) => Some(entry),
        Err(reason) => {
            skipped(&out, &shown, &reason);
            None
        }
    });
    Ok(join_passwords(
        users,
        entries.map(Ok::<_, authmigrate_core::Error>),
        join_options(),
    )?)
}

/// A [`PasswordJoin`] for callers that only see an iterator (the import driver):
/// when the join cannot finish (a temp file that cannot be read back), the error is
/// put in [`Checked::status`] instead of the input silently ending early.
pub(crate) struct Checked<U> {
    join: Option<PasswordJoin<U>>,
    status: ReaderStatus,
}

impl<U> Checked<U> {
    /// Where the error of an unfinished join is reported: check it with the readers'.
    pub(crate) fn status(&self) -> ReaderStatus {
        self.status.clone()
    }
}

impl<U: Iterator<Item = InputRecord>> Iterator for Checked<U> {
    type Item = InputRecord;

    fn next(&mut self) -> Option<InputRecord> {
        let next = self.join.as_mut()?.next();
        if next.is_none()
            && let Some(join) = self.join.take()
            && let Err(e) = join.finish()
        {
            self.status.set(e);
        }
        next
    }
}

/// [`join`], wrapped in [`Checked`].
pub(crate) fn join_checked<U: Iterator<Item = InputRecord>>(
    users: U,
    path: &Path,
    out: &Output,
) -> anyhow::Result<Checked<U>> {
    Ok(Checked {
        join: Some(join(users, path, out)?),
        status: ReaderStatus::default(),
    })
}

/// The join's counts for the summary.
pub(crate) fn stats_json(s: &JoinStats) -> serde_json::Value {
    serde_json::json!({
        "hashes": s.hashes,
        "by_id": s.by_id,
        "by_email": s.by_email,
        "kept_password": s.kept_password,
        "unmatched_users": s.unmatched_users,
        "unused_hashes": s.unused_hashes,
        "duplicate_keys": s.duplicate_keys,
    })
}

/// The join's counts in one human line.
pub(crate) fn say_stats(out: &Output, s: &JoinStats) {
    out.say(format!(
        "password hashes: {} read; {} users matched by id, {} by e-mail, {} kept their own, {} without a hash; {} hashes unused",
        s.hashes, s.by_id, s.by_email, s.kept_password, s.unmatched_users, s.unused_hashes
    ));
}
