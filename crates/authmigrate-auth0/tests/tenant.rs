//! `Auth0Tenant` (the tenant source) against the sandbox's Auth0 emulator: roles with
//! permissions, role users past the 1000 offset cap (checkpoint paging), organizations,
//! members with their organization roles, and a 403 naming the scope and the `--skip`.

use std::time::Duration;

use authmigrate_auth0::tenant::Auth0Tenant;
use authmigrate_auth0::{Auth0Auth, Auth0Settings};
use authmigrate_core::retry::RetryPolicy;
use authmigrate_core::tenant::TenantSource;
use authmigrate_sandbox::auth0::Auth0Config;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use secrecy::SecretString;

async fn sandbox(auth0: Auth0Config) -> Sandbox {
    Sandbox::start(SandboxConfig {
        port: 0,
        faults: FaultConfig {
            job_latency: Duration::from_millis(20),
            ..FaultConfig::default()
        },
        auth0,
        authgear: Default::default(),
    })
    .await
    .unwrap()
}

fn source(sb: &Sandbox) -> Auth0Tenant {
    let mut s = Auth0Settings::new(
        sb.base_url(),
        Auth0Auth::ClientCredentials {
            client_id: sb.auth0().client_id().to_owned(),
            client_secret: SecretString::from(sb.auth0().client_secret().to_owned()),
        },
    );
    s.retry = RetryPolicy::immediate(3);
    Auth0Tenant::new(&s).unwrap()
}

#[tokio::test]
async fn reads_roles_permissions_members_past_1000_and_organizations() {
    let sb = sandbox(Auth0Config::default()).await;
    let a = sb.auth0();
    a.seed_resource_server(
        "https://api.example.com/",
        "API",
        &[("read:things", "Read"), ("write:things", "Write")],
    );
    let big = a.seed_role(
        "Everyone",
        "All users",
        &[("https://api.example.com/", "read:things")],
    );
    let admin = a.seed_role(
        "Admin",
        "Admins",
        &[
            ("https://api.example.com/", "read:things"),
            ("https://api.example.com/", "write:things"),
        ],
    );
    let ids: Vec<String> = (0..1234).map(|i| format!("auth0|u{i:05}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    a.seed_role_users(&big, &refs);
    a.seed_role_users(&admin, &refs[..3]);
    let org = a.seed_organization("acme", "Acme Inc");
    a.seed_org_members(&org, &refs[..250]);
    a.seed_org_member_roles(&org, "auth0|u00007", &[&admin]);
    a.seed_organization("empty-org", "Nobody");

    let src = source(&sb);
    let roles = src.roles().await.unwrap();
    assert_eq!(roles.len(), 2);
    let r_admin = roles.iter().find(|r| r.name == "Admin").unwrap();
    assert_eq!(r_admin.description.as_deref(), Some("Admins"));
    let mut perms: Vec<&str> = r_admin
        .permissions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    perms.sort();
    assert_eq!(perms, ["read:things", "write:things"]);
    assert_eq!(
        r_admin.permissions[0].resource_server,
        "https://api.example.com/"
    );

    let before = src.requests();
    let everyone = roles.iter().find(|r| r.id == big).unwrap();
    let mut got = Vec::new();
    src.role_members(everyone, &mut |u| {
        got.push(u);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(got, ids, "every member once, in order, past the 1000 cap");
    assert_eq!(src.requests() - before, 13, "ceil(1234 / 100) pages");

    let groups = src.groups().await.unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["acme", "empty-org"]);
    assert_eq!(groups[0].description.as_deref(), Some("Acme Inc"));
    let mut members = Vec::new();
    src.group_members(&groups[0], &mut |m| {
        members.push(m);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(members.len(), 250);
    let m7 = members
        .iter()
        .find(|m| m.user_id == "auth0|u00007")
        .unwrap();
    assert_eq!(m7.roles, std::slice::from_ref(&admin));
    assert!(members.iter().filter(|m| !m.roles.is_empty()).count() == 1);
    let mut none = 0;
    src.group_members(&groups[1], &mut |_| {
        none += 1;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(none, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_missing_scope_names_the_scope_and_the_skip() {
    let mut cfg = Auth0Config::default();
    cfg.scopes.retain(|s| s != "read:organizations");
    let sb = sandbox(cfg).await;
    sb.auth0().seed_organization("acme", "Acme");
    let err = source(&sb).groups().await.unwrap_err();
    let authmigrate_core::backend::BackendError::Fatal { message, hint } = err else {
        panic!("not fatal: {err}");
    };
    let text = format!("{message} {}", hint.unwrap_or_default());
    assert!(text.contains("403"), "{text}");
    assert!(text.contains("read:organizations"), "{text}");
    assert!(text.contains("--skip groups"), "{text}");
    sb.shutdown().await;
}

/// Benchmark (not a test; `cargo test --release -p authmigrate-auth0 --test tenant --
/// --ignored --nocapture`): crawling a 100,000-user, 20-role, 50-organization tenant at
/// a 100 requests/s (burst 50) rate limit. Prints requests made against the minimum the
/// paging needs, wall time against requests ÷ rate, and the 429s the emulator sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_crawl_100k_users_20_roles_50_orgs() {
    let sb = Sandbox::start(SandboxConfig {
        port: 0,
        faults: FaultConfig {
            rate_limit: Some(authmigrate_sandbox::RateLimit {
                burst: 50,
                per_second: 100.0,
            }),
            ..FaultConfig::default()
        },
        auth0: Auth0Config::default(),
        authgear: Default::default(),
    })
    .await
    .unwrap();
    let a = sb.auth0();
    let ids: Vec<String> = (0..100_000).map(|i| format!("auth0|u{i:06}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    for r in 0..20 {
        let id = a.seed_role(&format!("role-{r}"), "", &[]);
        a.seed_role_users(&id, &refs[r * 5000..(r + 1) * 5000]);
    }
    for o in 0..50 {
        let id = a.seed_organization(&format!("org-{o}"), "");
        a.seed_org_members(&id, &refs[o * 2000..(o + 1) * 2000]);
    }
    let src = source(&sb);
    let started = std::time::Instant::now();
    let (mut role_members, mut org_members) = (0u64, 0u64);
    let roles = src.roles().await.unwrap();
    for r in &roles {
        src.role_members(r, &mut |_| {
            role_members += 1;
            Ok(())
        })
        .await
        .unwrap();
    }
    let orgs = src.groups().await.unwrap();
    for g in &orgs {
        src.group_members(g, &mut |_| {
            org_members += 1;
            Ok(())
        })
        .await
        .unwrap();
    }
    let wall = started.elapsed();
    assert_eq!((role_members, org_members), (100_000, 100_000));
    // 1 roles page + 20 permissions + 20 × 50 role-user pages + 1 organizations page
    // + 50 × (20 member pages + the empty page that ends a member list).
    let minimum = 1 + 20 + 20 * 50 + 1 + 50 * 21;
    println!(
        "requests {} (minimum {minimum}), wall {:.1} s (requests / rate = {:.1} s), 429s {}",
        src.requests(),
        wall.as_secs_f64(),
        src.requests() as f64 / 100.0,
        sb.faults().rate_limited()
    );
    sb.shutdown().await;
}
