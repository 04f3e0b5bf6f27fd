//! The key rule: Auth0 role and organization names → Authgear role and group keys.
//!
//! Authgear keys (authgear-admin-graphql.md §2.1) are 1–40 characters matching
//! `^[a-zA-Z_][a-zA-Z0-9:_]*$`, must not start with `authgear:`, and are unique per
//! kind, case-sensitively. The rule, applied to each name in turn:
//!
//! 1. lower-case it; every run of characters outside `[a-z0-9:_]` becomes one `_`;
//!    leading and trailing `_` are trimmed (`"Billing Admin"` → `billing_admin`);
//! 2. a key that would start with a digit or `:` is prefixed with `_`; an empty one
//!    becomes `_`; one starting with `authgear:` is prefixed with `_`;
//! 3. a key longer than 40 characters, or one already taken by another name (two
//!    names that differ only in case or punctuation), becomes its first 33 characters,
//!    `_` and the first 6 hex digits of the FNV-1a hash of the *original* name: stable
//!    across runs and independent of the order names arrive in.
//!
//! `--role-map NAME=KEY` overrides the rule for one name (the key is checked).
//!
//! The other direction, Authgear → Auth0 ([`Naming::Auth0`]):
//! - **organization names** (auth0-rbac-orgs-mfa.md §2: lowercase letters, digits,
//!   `_` and `-`, 1–50 characters; Auth0 publishes no regex, `^[a-z0-9_-]{1,50}$` is
//!   the docs' prose) are made from Authgear group keys by the same three steps with
//!   that alphabet: lower-case, every run of other characters (Authgear keys may hold
//!   `:`) becomes one `-`, `-` trimmed; too long or taken: 43 characters, `_`, 6 hex
//!   digits ([`KeyRule::auth0_organizations`]);
//! - **role names** are free text at Auth0 (no documented pattern; unique, and taken
//!   here as unique case-insensitively, since the docs do not say): an Authgear role's
//!   name (else its key) is kept; a name two roles share keeps its text for the first
//!   key in sorted order and becomes `NAME (KEY)` for the others ([`auth0_role_names`]).
//!   `--role-map KEY=NAME` overrides by the Authgear key.

use std::collections::{HashMap, HashSet};

/// How a target's keys are made from the source's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Authgear role and group keys from Auth0 role and organization names.
    AuthgearKeys,
    /// Auth0 role names and organization names from Authgear roles and group keys.
    Auth0,
}

/// Longest Auth0 organization name.
pub const MAX_ORG_NAME: usize = 50;

/// Why `name` is not a valid Auth0 organization name, if it is not.
pub fn check_org_name(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_ORG_NAME {
        return Some(format!(
            "`{name}`: an organization name is 1 to {MAX_ORG_NAME} characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Some(format!(
            "`{name}` may hold only lowercase letters, digits, `_` and `-`"
        ));
    }
    None
}

/// Step 1 of both rules: lower-case `name`, each run of characters outside
/// `[a-z0-9]` and `extra` becomes one `sep`, and `sep` is trimmed from both ends.
fn squeeze(name: &str, extra: &[char], sep: char) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || extra.contains(&c) {
            if gap && !out.is_empty() {
                out.push(sep);
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    out.trim_matches(sep).to_owned()
}

/// The organization name of an Authgear group key by steps 1 and 2.
fn base_org_name(name: &str) -> String {
    let out = squeeze(name, &['_', '-'], '-');
    if out.is_empty() { "_".into() } else { out }
}

/// Auth0 role names for Authgear roles given as `(key, name)`, in the order given;
/// `overrides` are `--role-map KEY=NAME`. See the module docs.
pub fn auth0_role_names(roles: &[(String, String)], overrides: &[(String, String)]) -> Vec<String> {
    let overrides: HashMap<&str, &str> = overrides
        .iter()
        .map(|(k, n)| (k.as_str(), n.as_str()))
        .collect();
    let mut order: Vec<usize> = (0..roles.len()).collect();
    order.sort_by(|&a, &b| roles[a].0.cmp(&roles[b].0));
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = vec![String::new(); roles.len()];
    // Overrides first, then each role's own name, then `NAME (KEY)` for the rest.
    let mut rest = Vec::new();
    for &i in &order {
        if let Some(n) = overrides.get(roles[i].0.as_str()) {
            taken.insert(n.to_lowercase());
            out[i] = (*n).to_owned();
        }
    }
    for &i in &order {
        if !out[i].is_empty() {
            continue;
        }
        let name = roles[i].1.trim();
        let name = if name.is_empty() {
            roles[i].0.as_str()
        } else {
            name
        };
        if taken.insert(name.to_lowercase()) {
            out[i] = name.to_owned();
        } else {
            rest.push(i);
        }
    }
    for i in rest {
        let (key, name) = (&roles[i].0, roles[i].1.trim());
        let mut candidate = format!("{name} ({key})");
        let mut n = 2;
        while !taken.insert(candidate.to_lowercase()) {
            candidate = format!("{name} ({key}) {n}");
            n += 1;
        }
        out[i] = candidate;
    }
    out
}

/// Longest key Authgear accepts.
pub const MAX_KEY: usize = 40;

/// Why a key is not a valid Authgear role or group key, if it is not.
pub fn check_key(key: &str) -> Option<String> {
    let mut chars = key.chars();
    match chars.next() {
        None => return Some("a key is 1 to 40 characters; it is empty".into()),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            return Some(format!(
                "`{key}` must start with a letter or `_` (pattern `^[a-zA-Z_][a-zA-Z0-9:_]*$`)"
            ));
        }
        _ => {}
    }
    if key.len() > MAX_KEY {
        return Some(format!("`{key}` is longer than {MAX_KEY} characters"));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '_') {
        return Some(format!(
            "`{key}` may hold only letters, digits, `:` and `_` (pattern `^[a-zA-Z_][a-zA-Z0-9:_]*$`)"
        ));
    }
    if key.starts_with("authgear:") {
        return Some(format!(
            "`{key}` starts with the reserved prefix `authgear:`"
        ));
    }
    None
}

/// The key of `name` by steps 1 and 2 of the rule (before length and collisions).
pub fn base_key(name: &str) -> String {
    let out = squeeze(name, &[':', '_'], '_');
    if out.is_empty() {
        return "_".into();
    }
    if out.starts_with(|c: char| c.is_ascii_digit() || c == ':') || out.starts_with("authgear:") {
        return format!("_{out}");
    }
    out
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn hashed(base: &str, name: &str, salt: u32, max: usize) -> String {
    let prefix: String = base.chars().take(max - 7).collect();
    let h = fnv1a(&format!("{name}\u{0}{salt}"));
    let h = if salt == 0 { fnv1a(name) } else { h };
    format!("{prefix}_{:06x}", h & 0xff_ffff)
}

/// Assigns keys to a set of names (one kind: roles, or groups), collision-free.
#[derive(Debug)]
pub struct KeyRule {
    overrides: HashMap<String, String>,
    base: fn(&str) -> String,
    max: usize,
}

impl Default for KeyRule {
    /// The Authgear key rule without overrides.
    fn default() -> Self {
        Self {
            overrides: HashMap::new(),
            base: base_key,
            max: MAX_KEY,
        }
    }
}

impl KeyRule {
    /// Auth0 organization names from Authgear group keys (see the module docs).
    pub fn auth0_organizations() -> Self {
        Self {
            overrides: HashMap::new(),
            base: base_org_name,
            max: MAX_ORG_NAME,
        }
    }

    /// A rule with `--role-map NAME=KEY` overrides; an invalid key is an error.
    pub fn new(overrides: &[(String, String)]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (name, key) in overrides {
            if let Some(why) = check_key(key) {
                return Err(format!("--role-map {name}={key}: {why}"));
            }
            map.insert(name.clone(), key.clone());
        }
        Ok(Self {
            overrides: map,
            ..Self::default()
        })
    }

    /// The key of every name, in the order given. A name's key does not depend on
    /// the order: names are resolved sorted, plain keys before hashed ones.
    pub fn assign(&self, names: &[String]) -> Vec<String> {
        let mut taken: HashMap<String, String> = HashMap::new();
        let mut out: HashMap<&str, String> = HashMap::new();
        // Overrides first, then names whose plain key is short enough, in sorted order.
        let mut sorted: Vec<&String> = names.iter().collect();
        sorted.sort();
        sorted.dedup();
        for name in &sorted {
            if let Some(k) = self.overrides.get(name.as_str()) {
                taken.insert(k.clone(), (*name).clone());
                out.insert(name, k.clone());
            }
        }
        let mut later = Vec::new();
        for name in &sorted {
            if out.contains_key(name.as_str()) {
                continue;
            }
            let base = (self.base)(name);
            // The plain key goes to the name that is exactly its own base (e.g. `admin`),
            // else to the first name in sorted order.
            if base.len() <= self.max && !taken.contains_key(&base) {
                let exact = sorted.iter().any(|n| n.as_str() == base);
                if exact && name.as_str() != base {
                    later.push(*name);
                    continue;
                }
                taken.insert(base.clone(), (*name).clone());
                out.insert(name, base);
            } else {
                later.push(*name);
            }
        }
        for name in later {
            let base = (self.base)(name);
            let mut salt = 0;
            let key = loop {
                let k = if base.len() <= self.max && !taken.contains_key(&base) {
                    base.clone()
                } else {
                    hashed(&base, name, salt, self.max)
                };
                if !taken.contains_key(&k) {
                    break k;
                }
                salt += 1;
            };
            taken.insert(key.clone(), name.clone());
            out.insert(name, key);
        }
        names.iter().map(|n| out[n.as_str()].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn keys_follow_the_rule_and_are_valid() {
        let rule = KeyRule::default();
        let n = names(&[
            "Billing Admin",
            "admin",
            "read:things",
            "2fa-users",
            "",
            "authgear:user",
            "Ünïcode rôle",
            &"x".repeat(60),
        ]);
        let keys = rule.assign(&n);
        assert_eq!(keys[0], "billing_admin");
        assert_eq!(keys[1], "admin");
        assert_eq!(keys[2], "read:things");
        assert_eq!(keys[3], "_2fa_users");
        assert_eq!(keys[4], "_");
        assert_eq!(keys[5], "_authgear:user");
        assert_eq!(keys[6], "n_code_r_le");
        assert_eq!(keys[7].len(), 40);
        for k in &keys {
            assert_eq!(check_key(k), None, "{k}");
        }
    }

    #[test]
    fn keys_are_collision_free_and_stable_in_any_order() {
        let rule = KeyRule::default();
        let a = names(&["Admin", "admin", "ADMIN!", "a d m i n", "ad-min", "ad min"]);
        let keys = rule.assign(&a);
        let mut uniq = keys.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), keys.len(), "{keys:?}");
        assert_eq!(keys[1], "admin", "the exact name keeps its plain key");
        let mut b = a.clone();
        b.reverse();
        let mut keys_b = rule.assign(&b);
        keys_b.reverse();
        assert_eq!(keys, keys_b, "a name's key does not depend on the order");
        // Long names sharing a prefix stay distinct and ≤ 40.
        let long = names(&[
            &format!("{}1", "y".repeat(50)),
            &format!("{}2", "y".repeat(50)),
        ]);
        let k = rule.assign(&long);
        assert_ne!(k[0], k[1]);
        assert!(
            k.iter()
                .all(|k| k.len() <= MAX_KEY && check_key(k).is_none())
        );
    }

    #[test]
    fn auth0_organization_names_follow_the_docs_rule() {
        let rule = KeyRule::auth0_organizations();
        let n = names(&[
            "Sales",
            "sales",
            "team:emea",
            "_",
            &"k".repeat(45),
            "Ops_Team",
        ]);
        let got = rule.assign(&n);
        assert_eq!(got[1], "sales", "the exact name keeps its plain name");
        assert!(
            got[0].starts_with("sales_") && got[0].len() == 12,
            "{got:?}"
        );
        assert_eq!(got[2], "team-emea");
        assert_eq!(got[3], "_");
        assert_eq!(got[4], "k".repeat(45), "45 characters fit in 50");
        assert_eq!(got[5], "ops_team");
        for g in &got {
            assert_eq!(check_org_name(g), None, "{g}");
        }
        assert!(check_org_name("Upper").is_some());
        assert!(check_org_name(&"a".repeat(51)).is_some());
    }

    #[test]
    fn auth0_role_names_keep_names_and_stay_unique() {
        let roles = vec![
            ("billing_admin".to_owned(), "Billing Admin".to_owned()),
            ("viewer".to_owned(), String::new()),
            ("admin2".to_owned(), "admin".to_owned()),
            ("admin".to_owned(), "Admin".to_owned()),
            ("ops".to_owned(), "Ops".to_owned()),
        ];
        let got = auth0_role_names(&roles, &[("ops".into(), "Operations".into())]);
        assert_eq!(
            got,
            [
                "Billing Admin",
                "viewer",
                "admin (admin2)",
                "Admin",
                "Operations"
            ]
        );
    }

    #[test]
    fn overrides_win_and_are_checked() {
        let rule = KeyRule::new(&[("Admin".into(), "superuser".into())]).unwrap();
        let k = rule.assign(&names(&["Admin", "superuser"]));
        assert_eq!(k[0], "superuser");
        assert_eq!(
            k[1],
            format!("superuser_{:06x}", fnv1a("superuser") & 0xff_ffff)
        );
        let err = KeyRule::new(&[("Admin".into(), "0bad".into())]).unwrap_err();
        assert!(err.contains("--role-map Admin=0bad"), "{err}");
        assert!(check_key(&"k".repeat(41)).is_some());
        assert!(check_key("manager:SUPER_ADMIN1").is_none());
    }
}
