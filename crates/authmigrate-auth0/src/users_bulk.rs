//! Looking many users up with one users-export job.
//!
//! Auth0 has no batch look-up: `users-by-email` takes one address, and the search
//! endpoint is eventually consistent and stops at 1,000 results (shared docs,
//! auth0-rbac-orgs-mfa.md §4). Deleting 5,000 generated users one look-up at a time
//! doubles the rate-limited requests (a look-up and a delete per user). The docs call
//! the users-export job "the scalable path": one job of the connection's users with
//! five fields, streamed through [`KeyMatcher`], which keeps only the users whose
//! e-mail, username or id is selected (memory is the selection, not the tenant).
//!
//! An export may lag behind writes (the docs promise immediate consistency only for
//! the look-up endpoints), so the delete engine looks a key the export did not
//! contain up again one by one: a lag never turns into a false "not found".

use std::collections::HashMap;
use std::io::{self, Write};

use authmigrate_core::backend::BackendError;
use authmigrate_core::delete::{FoundUser, Key};
use serde::Deserialize;

use crate::config::Auth0Settings;
use crate::export::{ExportOptions, export_users};

/// Below this many keys, one look-up per key is cheaper than an export job.
pub(crate) const BULK_MIN_KEYS: usize = 100;

/// The fields the export job is asked for.
const FIELDS: &[&str] = &["user_id", "email", "username", "logins_count", "last_login"];

/// The users of `connection` that `keys` name, one entry per key, from one export.
pub(crate) async fn lookup_many(
    settings: &Auth0Settings,
    connection: &str,
    keys: &[Key],
) -> Result<Vec<Vec<FoundUser>>, BackendError> {
    let options = ExportOptions {
        connection: Some(connection.to_owned()),
        fields: Some(FIELDS.iter().map(|f| (*f).to_owned()).collect()),
    };
    let mut matcher = KeyMatcher::new(keys);
    export_users(settings, &options, &mut matcher).await?;
    matcher
        .finish()
        .map_err(|e| BackendError::fatal(format!("the users export: {e}"), None))
}

/// A writer of export NDJSON lines that keeps the users the keys name.
#[derive(Debug)]
pub(crate) struct KeyMatcher {
    /// Lower-cased e-mail (Auth0 stores database e-mails lower-cased), username or
    /// id → the positions of the keys naming it.
    wanted: HashMap<(u8, String), Vec<usize>>,
    found: Vec<Vec<FoundUser>>,
    /// The unfinished last line.
    partial: Vec<u8>,
    line: u64,
}

#[derive(Deserialize)]
struct ExportedUser {
    user_id: String,
    email: Option<String>,
    username: Option<String>,
    logins_count: Option<u64>,
    last_login: Option<String>,
}

impl KeyMatcher {
    pub(crate) fn new(keys: &[Key]) -> Self {
        let mut wanted: HashMap<(u8, String), Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            let k = match key {
                Key::Email(e) => (0, e.to_lowercase()),
                Key::Username(u) => (1, u.clone()),
                Key::Id(id) => (2, id.clone()),
            };
            wanted.entry(k).or_default().push(i);
        }
        Self {
            wanted,
            found: vec![Vec::new(); keys.len()],
            partial: Vec::new(),
            line: 0,
        }
    }

    fn take_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.line += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let user: ExportedUser = serde_json::from_slice(line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {}: not an exported user: {e}", self.line),
            )
        })?;
        let mut positions: Vec<usize> = Vec::new();
        if let Some(e) = &user.email {
            positions.extend(
                self.wanted
                    .get(&(0, e.to_lowercase()))
                    .into_iter()
                    .flatten(),
            );
        }
        if let Some(u) = &user.username {
            positions.extend(self.wanted.get(&(1, u.clone())).into_iter().flatten());
        }
        positions.extend(
            self.wanted
                .get(&(2, user.user_id.clone()))
                .into_iter()
                .flatten(),
        );
        if positions.is_empty() {
            return Ok(());
        }
        let found = FoundUser {
            id: user.user_id,
            email: user.email,
            username: user.username,
            logins: user.logins_count,
            last_login: user.last_login,
        };
        positions.sort_unstable();
        positions.dedup();
        for p in positions {
            self.found[p].push(found.clone());
        }
        Ok(())
    }

    /// The users found per key, once the whole export was written.
    pub(crate) fn finish(mut self) -> io::Result<Vec<Vec<FoundUser>>> {
        let rest = std::mem::take(&mut self.partial);
        self.take_line(&rest)?;
        Ok(self.found)
    }
}

impl Write for KeyMatcher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        while let Some(n) = memchr_newline(&buf[start..]) {
            let end = start + n;
            if self.partial.is_empty() {
                self.take_line(&buf[start..end])?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&buf[start..end]);
                self.take_line(&line)?;
            }
            start = end + 1;
        }
        self.partial.extend_from_slice(&buf[start..]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_named_users_across_split_writes() {
        let keys = vec![
            Key::Email("QA_01@t.io".into()),
            Key::Id("auth0|2".into()),
            Key::Username("nobody".into()),
            Key::Email("qa_01@t.io".into()),
        ];
        let mut m = KeyMatcher::new(&keys);
        let text = concat!(
            "{\"user_id\":\"auth0|1\",\"email\":\"qa_01@t.io\",\"logins_count\":3}\n",
            "{\"user_id\":\"auth0|2\",\"email\":\"qa_02@t.io\",\"last_login\":\"2026-01-01T00:00:00Z\"}\n",
            "{\"user_id\":\"auth0|3\",\"email\":\"real@customer.com\"}",
        );
        // Written in pieces that split lines anywhere.
        for piece in text.as_bytes().chunks(7) {
            m.write_all(piece).unwrap();
        }
        let found = m.finish().unwrap();
        let ids: Vec<Vec<&str>> = found
            .iter()
            .map(|f| f.iter().map(|u| u.id.as_str()).collect())
            .collect();
        assert_eq!(
            ids,
            [vec!["auth0|1"], vec!["auth0|2"], vec![], vec!["auth0|1"]]
        );
        assert_eq!(found[0][0].logins, Some(3));
        assert_eq!(
            found[1][0].last_login.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn a_line_that_is_not_a_user_names_its_line() {
        let mut m = KeyMatcher::new(&[Key::Email("a@t.io".into())]);
        let err = m
            .write_all(b"{\"user_id\":\"auth0|1\"}\nnot json\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        let err = KeyMatcher::new(&[])
            .write_all(b"{}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
