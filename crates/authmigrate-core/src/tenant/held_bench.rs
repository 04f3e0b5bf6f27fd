//! What `verify --from authgear --to auth0` adds per user: reading every Auth0 role's
//! users and organization's members into the store ([`read_held`]), then one look-up
//! per target user ([`HeldMemberships::of`]). 1,000,000 users; 20 roles and 50
//! organizations, each user holding one role and one organization (2,000,000 rows).
//! Run with
//! `cargo test --release -p authmigrate-core tenant::held_bench -- --ignored --nocapture`
//! (`HELD_BENCH_N` changes the number of users). The figures are in docs/benchmarks.md.

use std::time::Instant;

use async_trait::async_trait;

use super::*;

const ROLES: u64 = 20;
const GROUPS: u64 = 50;

struct Generated(u64);

fn user(i: u64) -> String {
    format!("auth0|{i:024x}")
}

#[async_trait(?Send)]
impl TenantSource for Generated {
    async fn roles(&self) -> Result<Vec<Role>, BackendError> {
        Ok((0..ROLES)
            .map(|r| Role {
                id: format!("rol_{r}"),
                name: format!("Role {r}"),
                description: None,
                permissions: Vec::new(),
            })
            .collect())
    }
    async fn role_members(&self, role: &Role, sink: Sink<'_, String>) -> Result<(), BackendError> {
        let r: u64 = role.id[4..].parse().unwrap();
        for i in (r..self.0).step_by(ROLES as usize) {
            sink(user(i))?;
        }
        Ok(())
    }
    async fn groups(&self) -> Result<Vec<Group>, BackendError> {
        Ok((0..GROUPS)
            .map(|g| Group {
                id: format!("org_{g}"),
                name: format!("org-{g}"),
                description: None,
                roles: Vec::new(),
            })
            .collect())
    }
    async fn group_members(
        &self,
        group: &Group,
        sink: Sink<'_, GroupMember>,
    ) -> Result<(), BackendError> {
        let g: u64 = group.id[4..].parse().unwrap();
        for i in (g..self.0).step_by(GROUPS as usize) {
            sink(GroupMember {
                user_id: user(i),
                roles: Vec::new(),
            })?;
        }
        Ok(())
    }
}

#[tokio::test]
#[ignore = "a benchmark: run it in release"]
async fn held_bench() {
    let n: u64 = std::env::var("HELD_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    // What verify uses: a scratch store in its work dir.
    let store = crate::workstore::WorkStore::temporary(Some(dir.path())).unwrap();
    let path = store.path().to_owned();
    let started = Instant::now();
    let held = read_held(&Generated(n), store, true, true).await.unwrap();
    let read = started.elapsed();
    assert_eq!(held.counts().role_assignments, n);
    assert_eq!(held.counts().memberships, n);
    let started = Instant::now();
    let mut found = 0u64;
    // Another order than the crawl's, as an export lists users.
    for k in 0..n {
        let i = k.wrapping_mul(7_368_787) % n;
        let (roles, groups) = held.of(&user(i)).unwrap();
        found += (roles.len() + groups.len()) as u64;
    }
    let looked = started.elapsed();
    assert_eq!(found, 2 * n);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "held: {n} users, {} rows: read into the store in {:.2} s ({:.0} rows/s), \
         looked up in {:.2} s ({:.1} µs a user), store {:.0} MiB",
        2 * n,
        read.as_secs_f64(),
        (2 * n) as f64 / read.as_secs_f64(),
        looked.as_secs_f64(),
        looked.as_secs_f64() * 1e6 / n as f64,
        size as f64 / 1048576.0
    );
}
