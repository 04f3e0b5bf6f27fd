//! The tenant half of `authmigrate demo`: which demo users hold which roles,
//! organizations and TOTP authenticators at Auth0 (seeded through the sandbox's
//! public seed helpers), and the checks that they hold the same at Authgear.
//!
//! Users are numbered by position `k` (0-based) in the generated file: every 10th
//! (`k % 10 == 0`) has TOTP; `viewer` unless `k % 4 == 3`, `support` if `k % 5 == 0`,
//! `admin` if `k % 25 == 0`; member of `acme` if `k` is even (and `support` in it
//! if `k % 8 == 0`), of `globex` if `k % 3 == 0`.

use std::collections::{BTreeMap, BTreeSet};

use authmigrate_core::tenant::Plan;
use authmigrate_sandbox::Sandbox;

/// Whether the user at position `k` has a TOTP authenticator.
pub(super) fn has_totp(k: u64) -> bool {
    k % 10 == 0
}

/// The TOTP key of the user at position `k` (20 bytes, deterministic).
pub(super) fn totp_key(k: u64) -> Vec<u8> {
    (0..20u64)
        .map(|j| (k.wrapping_mul(31).wrapping_add(j * 17 + 7) % 251) as u8)
        .collect()
}

/// RFC 4648 base32 without padding (the form Auth0's `mfa_factors` take).
pub(super) fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut bits, mut n) = (String::new(), 0u32, 0u32);
    for b in bytes {
        bits = (bits << 8) | u32::from(*b);
        n += 8;
        while n >= 5 {
            n -= 5;
            out.push(ALPHABET[((bits >> n) & 31) as usize] as char);
        }
        bits &= (1 << n) - 1;
    }
    if n > 0 {
        out.push(ALPHABET[((bits << (5 - n)) & 31) as usize] as char);
    }
    out
}

/// What the demo seeded at Auth0.
#[derive(Debug)]
pub(super) struct Seeded {
    pub(super) roles: usize,
    pub(super) organizations: usize,
    pub(super) role_assignments: usize,
    pub(super) memberships: usize,
}

/// Seeds roles (with permissions), organizations with members and member roles.
/// `ids[k]` is the Auth0 user id of the user at position `k`.
pub(super) fn seed(sandbox: &Sandbox, ids: &[String]) -> Seeded {
    const API: &str = "https://api.demo.example/";
    let a = sandbox.auth0();
    a.seed_resource_server(
        API,
        "Demo API",
        &[
            ("read:reports", "Read reports"),
            ("write:reports", "Write reports"),
            ("read:tickets", "Read tickets"),
        ],
    );
    let admin = a.seed_role(
        "admin",
        "Administrators",
        &[(API, "read:reports"), (API, "write:reports")],
    );
    let support = a.seed_role("support", "Support staff", &[(API, "read:tickets")]);
    let viewer = a.seed_role("viewer", "Read-only access", &[(API, "read:reports")]);
    let pick = |f: &dyn Fn(u64) -> bool| -> Vec<&str> {
        ids.iter()
            .enumerate()
            .filter(|(k, _)| f(*k as u64))
            .map(|(_, id)| id.as_str())
            .collect()
    };
    let mut role_assignments = 0;
    for (role, members) in [
        (&viewer, pick(&|k| k % 4 != 3)),
        (&support, pick(&|k| k % 5 == 0)),
        (&admin, pick(&|k| k % 25 == 0)),
    ] {
        role_assignments += members.len();
        a.seed_role_users(role, &members);
    }
    let acme = a.seed_organization("acme", "Acme Inc");
    let acme_members = pick(&|k| k % 2 == 0);
    a.seed_org_members(&acme, &acme_members);
    for id in pick(&|k| k % 8 == 0) {
        a.seed_org_member_roles(&acme, id, &[&support]);
    }
    let globex = a.seed_organization("globex", "Globex Corp");
    let globex_members = pick(&|k| k % 3 == 0);
    a.seed_org_members(&globex, &globex_members);
    Seeded {
        roles: 3,
        organizations: 2,
        role_assignments,
        memberships: acme_members.len() + globex_members.len(),
    }
}

/// The outcome of comparing what each user holds at Authgear with Auth0.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Role keys the plan names that Authgear defines.
    pub(super) roles_defined: usize,
    /// Role keys the plan names.
    pub(super) roles_planned: usize,
    /// Group keys the plan names that Authgear defines.
    pub(super) groups_defined: usize,
    /// Group keys the plan names.
    pub(super) groups_planned: usize,
    /// Users whose Authgear roles equal their Auth0 roles (direct and organization
    /// member roles, which become direct roles: docs/tenant.md).
    pub(super) roles_ok: u64,
    /// Users whose Authgear groups equal their Auth0 organizations.
    pub(super) groups_ok: u64,
    /// Users holding at least one role at Auth0.
    pub(super) with_roles: u64,
    /// Users in at least one organization at Auth0.
    pub(super) with_groups: u64,
}

/// Compares, for every user `(auth0 id, email)`, the roles and organizations it holds
/// at Auth0 (the emulator's accessors) with its roles and groups at Authgear, through
/// the plan's name → key mapping.
pub(super) fn check(sandbox: &Sandbox, plan: &Plan, users: &[(String, String)]) -> Held {
    let a = sandbox.auth0();
    let ag = sandbox.authgear();
    let role_key: BTreeMap<&str, &str> = plan
        .roles
        .iter()
        .map(|r| (r.name.as_str(), r.key.as_str()))
        .collect();
    let group_key: BTreeMap<&str, &str> = plan
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.key.as_str()))
        .collect();
    let defined_roles: BTreeSet<String> = ag.role_keys().into_iter().collect();
    let defined_groups: BTreeSet<String> = ag.groups().into_iter().map(|(k, _)| k).collect();
    let mut held = Held {
        roles_planned: role_key.len(),
        roles_defined: role_key
            .values()
            .filter(|k| defined_roles.contains(**k))
            .count(),
        groups_planned: group_key.len(),
        groups_defined: group_key
            .values()
            .filter(|k| defined_groups.contains(**k))
            .count(),
        ..Held::default()
    };
    let orgs: Vec<(String, String)> = a
        .organizations()
        .iter()
        .filter_map(|o| Some((o["id"].as_str()?.to_owned(), o["name"].as_str()?.to_owned())))
        .collect();
    let at_authgear: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = ag
        .users()
        .into_iter()
        .filter_map(|u| {
            let email = u.email?;
            Some((
                email,
                (
                    u.roles.into_iter().collect(),
                    u.groups.into_iter().collect(),
                ),
            ))
        })
        .collect();
    let key = |map: &BTreeMap<&str, &str>, name: &str| {
        map.get(name)
            .map_or_else(|| format!("<unmapped {name}>"), |k| (*k).to_owned())
    };
    let members: Vec<BTreeSet<String>> = orgs
        .iter()
        .map(|(id, _)| a.org_member_ids(id).into_iter().collect())
        .collect();
    for (id, email) in users {
        let mut roles: BTreeSet<String> = a
            .user_role_names(id)
            .iter()
            .map(|n| key(&role_key, n))
            .collect();
        let mut groups = BTreeSet::new();
        for ((org_id, name), m) in orgs.iter().zip(&members) {
            if m.contains(id) {
                groups.insert(key(&group_key, name));
                roles.extend(
                    a.org_member_role_names(org_id, id)
                        .iter()
                        .map(|n| key(&role_key, n)),
                );
            }
        }
        held.with_roles += u64::from(!roles.is_empty());
        held.with_groups += u64::from(!groups.is_empty());
        if let Some((r, g)) = at_authgear.get(&email.to_lowercase()) {
            held.roles_ok += u64::from(*r == roles);
            held.groups_ok += u64::from(*g == groups);
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"Hello!\xde\xad\xbe\xef"), "JBSWY3DPEHPK3PXP");
    }
}
