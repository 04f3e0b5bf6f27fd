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
