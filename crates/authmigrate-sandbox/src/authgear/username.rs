//! Username login IDs (authgear-api.md §1.3, `preferred_username`): at most 40 bytes
//! after trimming spaces, the `ascii_only` regex `^[a-zA-Z0-9_\-.]*$`, then the
//! reserved-name list, compared case-insensitively.
//!
//! The real reserved list (about 625 names) is in authgear-server's
//! `resources/authgear/reserved_name.txt`; it is not copied here. The built-in list is
//! only the names the project's docs name (`test`, `user`, `api`, `guest`, `www`,
//! `admin`, `root`, `support`); [`super::AuthgearConfig::reserved_usernames`] replaces it.
//!
//! Error shape (the docs say only "a violation fails the record"): the login-ID checker's
//! `Invalid`/`ValidationFailed` "invalid login ID" with one cause at `/login_id`, kinds
//! `maxLength` `{expected, actual}`, `format` `{format: "username"}` and `blocked`
//! `{reason: "UsernameReserved"}`, as read in authgear-server
//! `pkg/lib/authn/identity/loginid/checker.go` and `type_checkers.go`.

use serde_json::{Value, json};

use super::api::api_error;

/// The names the docs list explicitly (not Authgear's full list).
pub const BUILT_IN_RESERVED: [&str; 8] = [
    "test", "user", "api", "guest", "www", "admin", "root", "support",
];

/// The default `max_length` of the username and phone keys.
pub(super) const MAX_LEN: usize = 40;

/// `Invalid`/`ValidationFailed` "invalid login ID" with one cause at `/login_id`.
pub(super) fn invalid_login_id(kind: &str, details: Value) -> Value {
    api_error(
        "Invalid",
        "ValidationFailed",
        "invalid login ID",
        Some(
            json!({ "causes": [ { "location": "/login_id", "kind": kind, "details": details } ] }),
        ),
    )
}

/// Checks a raw username; `reserved` is the project's list (`None`: the built-in one).
pub(super) fn check(raw: &str, reserved: Option<&[String]>) -> Result<(), Value> {
    let trimmed = raw.trim();
    if trimmed.len() > MAX_LEN {
        return Err(invalid_login_id(
            "maxLength",
            json!({ "expected": MAX_LEN, "actual": trimmed.len() }),
        ));
    }
    let ascii = trimmed
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !ascii {
        return Err(invalid_login_id("format", json!({ "format": "username" })));
    }
    let blocked = match reserved {
        Some(list) => list.iter().any(|r| r.trim().eq_ignore_ascii_case(trimmed)),
        None => BUILT_IN_RESERVED
            .iter()
            .any(|r| r.eq_ignore_ascii_case(trimmed)),
    };
    if blocked {
        return Err(invalid_login_id(
            "blocked",
            json!({ "reason": "UsernameReserved" }),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check("ada.lovelace-1_x", None).is_ok());
        assert!(check(&"a".repeat(40), None).is_ok());
        assert!(check(&format!("  {}  ", "a".repeat(40)), None).is_ok());
        let e = check(&"a".repeat(41), None).unwrap_err();
        assert_eq!(e["info"]["causes"][0]["kind"], "maxLength");
        assert_eq!(e["info"]["causes"][0]["details"]["actual"], 41);
        assert_eq!(
            check("é", None).unwrap_err()["info"]["causes"][0]["kind"],
            "format"
        );
        assert_eq!(
            check("a b", None).unwrap_err()["info"]["causes"][0]["kind"],
            "format"
        );
        assert_eq!(
            check("ADMIN", None).unwrap_err()["info"]["causes"][0]["kind"],
            "blocked"
        );
        let own = vec!["ada".to_owned()];
        assert!(check("admin", Some(&own)).is_ok());
        assert!(check("Ada", Some(&own)).is_err());
    }
}
