//! Authgear's username (`preferred_username`) rules with the project defaults
//! (authgear-api.md §1.3: `max_length` 40 bytes after trimming spaces, `ascii_only`,
//! `block_reserved_usernames`, `case_sensitive` false).
//!
//! What is implemented exactly: the `ascii_only` pattern `^[a-zA-Z0-9_\-.]*$`, the
//! minimum length 1, the 40-byte maximum (after trimming spaces) and the reserved-name
//! list compared case-insensitively. The server also runs a PRECIS identifier-class
//! check and a confusable-characters check; every string the ASCII pattern admits
//! passes the PRECIS identifier class (ASCII letters, digits and `_ - .` are all
//! PVALID/ASCII7), and a single-script ASCII string has no mixed-script confusables,
//! so with `ascii_only` on they reject nothing more. Projects that turn `ascii_only`
//! off are not modelled (those two checks would need new dependencies).
//!
//! The built-in reserved list holds only the names the shared docs name (`test`,
//! `user`, `api`, `guest`, `www`, `admin`, `root`, `support`); the server's full list
//! (`resources/authgear/reserved_name.txt`, about 625 names) is not copied into this
//! repository: `--reserved-usernames FILE` replaces the built-in list with the
//! project's own.

use std::collections::BTreeSet;
use std::sync::Arc;

/// The names the shared docs list among Authgear's reserved usernames.
pub const BUILT_IN_RESERVED: [&str; 8] = [
    "test", "user", "api", "guest", "www", "admin", "root", "support",
];

/// The maximum length of a username in bytes, after trimming spaces.
pub const MAX_USERNAME_BYTES: usize = 40;

/// The reserved usernames, lower-cased (compared case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedUsernames {
    names: Arc<BTreeSet<String>>,
    built_in: bool,
}

impl Default for ReservedUsernames {
    fn default() -> Self {
        Self {
            names: Arc::new(BUILT_IN_RESERVED.iter().map(|s| (*s).to_owned()).collect()),
            built_in: true,
        }
    }
}

impl ReservedUsernames {
    /// A project's list, one name per line (blank lines and lines starting with `#`
    /// are ignored; surrounding spaces are trimmed). Replaces the built-in list.
    pub fn from_list(text: &str) -> Self {
        let names = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect();
        Self {
            names: Arc::new(names),
            built_in: false,
        }
    }

    /// Whether this is the built-in list.
    pub fn is_built_in(&self) -> bool {
        self.built_in
    }

    /// Whether `name` is reserved (case-insensitive).
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(&name.to_lowercase())
    }

    /// How many names the list holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Checks a username against the rules above. The error names the rule broken
/// (never the value itself, which the caller may show next to its field).
pub fn check_username(raw: &str, reserved: &ReservedUsernames) -> Result<(), String> {
    let s = raw.trim_matches(' ');
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(
            "may contain only ASCII letters, digits, `_`, `-` and `.` (Authgear's `ascii_only` username rule)"
                .to_owned(),
        );
    }
    if s.len() > MAX_USERNAME_BYTES {
        return Err(format!(
            "must be at most {MAX_USERNAME_BYTES} bytes, got {}",
            s.len()
        ));
    }
    if reserved.contains(s) {
        return Err("is a reserved username (Authgear's `block_reserved_usernames`)".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rules() {
        let r = ReservedUsernames::default();
        assert!(check_username("ada.lovelace_1-x", &r).is_ok());
        assert!(check_username(" ada ", &r).is_ok(), "spaces are trimmed");
        assert_eq!(check_username("", &r).unwrap_err(), "must not be empty");
        assert!(
            check_username("ädä", &r)
                .unwrap_err()
                .contains("only ASCII")
        );
        assert!(
            check_username("a b", &r)
                .unwrap_err()
                .contains("only ASCII")
        );
        assert!(
            check_username("a\u{7}", &r)
                .unwrap_err()
                .contains("only ASCII")
        );
        assert!(check_username(&"x".repeat(40), &r).is_ok());
        assert_eq!(
            check_username(&"x".repeat(41), &r).unwrap_err(),
            "must be at most 40 bytes, got 41"
        );
        for name in ["admin", "Admin", "ROOT", "support"] {
            assert!(
                check_username(name, &r).unwrap_err().contains("reserved"),
                "{name}"
            );
        }
        let own = ReservedUsernames::from_list("# ours\nBoss\n\n  chief \n");
        assert!(!own.is_built_in());
        assert_eq!(own.len(), 2);
        assert!(
            check_username("admin", &own).is_ok(),
            "the list is replaced"
        );
        assert!(
            check_username("boss", &own)
                .unwrap_err()
                .contains("reserved")
        );
        assert!(
            check_username("CHIEF", &own)
                .unwrap_err()
                .contains("reserved")
        );
    }
}
