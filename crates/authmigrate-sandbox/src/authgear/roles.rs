//! The project's roles and groups (authgear-admin-graphql.md §2): keys, names,
//! descriptions, and the roles each group carries. Users hold the keys of their direct
//! roles and groups (`StoredUser::roles` / `groups`).

use serde_json::{Value, json};

use super::api::api_error;

/// A role or a group.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) id: String,
    pub(super) key: String,
    pub(super) name: Option<String>,
    pub(super) description: Option<String>,
    pub(super) created_at: jiff::Timestamp,
    pub(super) updated_at: jiff::Timestamp,
    /// Groups only: the keys of the group's roles, in the order they were added.
    pub(super) roles: Vec<String>,
}

impl Entry {
    pub(super) fn new(key: &str, now: jiff::Timestamp) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            key: key.to_owned(),
            name: None,
            description: None,
            created_at: now,
            updated_at: now,
            roles: Vec::new(),
        }
    }
}

/// Every role and group of the project.
#[derive(Debug, Clone, Default)]
pub(super) struct Directory {
    pub(super) roles: Vec<Entry>,
    pub(super) groups: Vec<Entry>,
}

impl Directory {
    pub(super) fn new(roles: &[String], groups: &[String], now: jiff::Timestamp) -> Self {
        let mut d = Self::default();
        for r in roles {
            if !d.has_role(r) {
                d.roles.push(Entry::new(r, now));
            }
        }
        for g in groups {
            if !d.has_group(g) {
                d.groups.push(Entry::new(g, now));
            }
        }
        d
    }

    pub(super) fn has_role(&self, key: &str) -> bool {
        self.roles.iter().any(|r| r.key == key)
    }

    pub(super) fn has_group(&self, key: &str) -> bool {
        self.groups.iter().any(|g| g.key == key)
    }
}

/// `NotFound`/`RoleUnknownKeys` "unknown role keys" with `info.keys`.
pub(super) fn unknown_roles(keys: &[String]) -> Value {
    api_error(
        "NotFound",
        "RoleUnknownKeys",
        "unknown role keys",
        Some(json!({ "keys": keys })),
    )
}

/// `NotFound`/`GroupUnknownKeys` "unknown group keys" with `info.keys`.
pub(super) fn unknown_groups(keys: &[String]) -> Value {
    api_error(
        "NotFound",
        "GroupUnknownKeys",
        "unknown group keys",
        Some(json!({ "keys": keys })),
    )
}

/// The role/group key rule (`pkg/lib/rolesgroups/key.go`): 1 to 40 characters,
/// `^[a-zA-Z_][a-zA-Z0-9:_]*$`, no `authgear:` prefix. All causes at location `""`.
pub(super) fn check_key(key: &str) -> Result<(), Value> {
    const PATTERN: &str = "^[a-zA-Z_][a-zA-Z0-9:_]*$";
    let mut causes = Vec::new();
    let len = key.chars().count();
    if len < 1 {
        causes.push(
            json!({"location": "", "kind": "minLength", "details": {"actual": len, "expected": 1}}),
        );
    }
    if len > 40 {
        causes.push(json!({"location": "", "kind": "maxLength", "details": {"actual": len, "expected": 40}}));
    }
    let mut chars = key.chars();
    let pattern_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '_');
    if !pattern_ok {
        causes.push(json!({"location": "", "kind": "pattern", "details": {"actual": key, "expected": PATTERN}}));
    }
    if key.starts_with("authgear:") {
        causes.push(json!({"location": "", "kind": "format", "details": {
            "error": "key cannot start with the preserved prefix: `authgear:`",
            "format": "x_role_group_key"}}));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(api_error(
            "Invalid",
            "ValidationFailed",
            "invalid value",
            Some(json!({ "causes": causes })),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        assert!(check_key("manager:SUPER_ADMIN1").is_ok());
        let kinds = |k: &str| -> Vec<String> {
            check_key(k).unwrap_err()["info"]["causes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["kind"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(kinds(""), ["minLength", "pattern"]);
        assert_eq!(kinds(&"a".repeat(41)), ["maxLength"]);
        assert_eq!(kinds("0admin"), ["pattern"]);
        assert_eq!(kinds("authgear:user"), ["format"]);
    }
}
