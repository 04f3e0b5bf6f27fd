//! Reading an Auth0 password-hash export and joining it to users (`--password-hashes`).

use std::path::Path;

use authmigrate_core::driver::InputRecord;
use authmigrate_core::join::{HashEntry, JoinOptions, PasswordJoin, join_passwords};

use crate::input::{ParallelLines, parse_object};
use crate::output::Output;

/// Joins the hashes in `path` to `users` (by id, then by e-mail), in bounded memory.
/// Unreadable hash lines are reported (line and reason, never the hash) and skipped.
pub(crate) fn join<U: Iterator<Item = InputRecord>>(
    users: U,
    path: &Path,
    out: &Output,
) -> anyhow::Result<PasswordJoin<U>> {
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
    // Parsed on every core, in file order; unreadable lines are reported (line and
    // reason, never the hash) and skipped.
    let entries = ParallelLines::open(path, |_, line, text| {
        parse_object(line, text)
            .and_then(|obj| {
                authmigrate_auth0::format::from_password_export(obj)
                    .map_err(|e| format!("line {line}: {e}"))
            })
            .map(|entry| HashEntry {
                id: Some(entry.user_id),
                email: entry.email,
                hash: entry.hash,
            })
    })?;
    let shown = path.display().to_string();
    let out = out.clone();
    let entries = entries.filter_map(move |parsed| match parsed {
        Ok(entry) => Some(entry),
        Err(reason) => {
            out.say(format!("warning: `{shown}`, {reason}: skipped"));
            None
        }
    });
    Ok(join_passwords(
        users,
        entries.map(Ok::<_, authmigrate_core::Error>),
        JoinOptions::default(),
    )?)
}
