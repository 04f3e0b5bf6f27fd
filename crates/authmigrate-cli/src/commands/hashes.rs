//! Reading an Auth0 password-hash export and joining it to users (`--password-hashes`).

use std::path::Path;

use authmigrate_core::driver::InputRecord;
use authmigrate_core::io::{InputFormat, RecordReader};
use authmigrate_core::join::{HashEntry, JoinOptions, PasswordJoin, join_passwords};

use crate::output::Output;

/// Joins the hashes in `path` to `users` (by id, then by e-mail), in bounded memory.
/// Unreadable hash lines are reported (line and reason, never the hash) and skipped.
pub(crate) fn join<U: Iterator<Item = InputRecord>>(
    users: U,
    path: &Path,
    out: &Output,
) -> anyhow::Result<PasswordJoin<U>> {
    let reader = RecordReader::open(path, InputFormat::Auth0PasswordExport)?;
    let shown = path.display().to_string();
    let out = out.clone();
    let entries = reader.filter_map(move |raw| {
        let at = raw
            .line
            .map(|l| format!("line {l}"))
            .unwrap_or_else(|| format!("record {}", raw.index));
        match raw.value.and_then(|obj| {
            authmigrate_auth0::format::from_password_export(obj).map_err(|e| e.to_string())
        }) {
            Ok(entry) => Some(HashEntry {
                id: Some(entry.user_id),
                email: entry.email,
                hash: entry.hash,
            }),
            Err(reason) => {
                out.say(format!("warning: `{shown}`, {at}: skipped: {reason}"));
                None
            }
        }
    });
    Ok(join_passwords(
        users,
        entries.map(Ok::<_, authmigrate_core::Error>),
        JoinOptions::default(),
    )?)
}
