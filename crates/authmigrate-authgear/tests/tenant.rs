//! `AuthgearTenant` (the tenant target) against the sandbox's Admin GraphQL emulator:
//! keys listed across pages, roles and groups created at most five a request, an
//! existing key reused, names and descriptions kept.

use std::time::Duration;

use authmigrate_authgear::tenant::AuthgearTenant;
use authmigrate_authgear::{AuthgearAuth, AuthgearSettings};
use authmigrate_core::retry::RetryPolicy;
use authmigrate_core::tenant::{NewEntry, TenantTarget};
use authmigrate_sandbox::authgear::AuthgearConfig;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use secrecy::SecretString;
use serde_json::{Value, json};

async fn sandbox(authgear: AuthgearConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        port: 0,
        faults: FaultConfig {
            job_latency: Duration::from_millis(20),
            ..FaultConfig::default()
        },
        auth0: Default::default(),
        authgear,
    })
    .await
    .unwrap()
}

fn target(sb: &Sandbox) -> AuthgearTenant {
    let s = AuthgearSettings {
        retry: RetryPolicy::immediate(3),
        ..AuthgearSettings::new(
            sb.base_url(),
            AuthgearAuth::Key {
                project_id: sb.authgear().project_id().to_owned(),
                key_id: sb.authgear().key_id().to_owned(),
                private_key_pem: SecretString::from(sb.authgear().private_key_pem()),
            },
        )
    };
    AuthgearTenant::new(&s).unwrap()
}

async fn query(sb: &Sandbox, q: &str) -> Value {
    let token = sb.authgear().mint_admin_token(Duration::from_secs(60));
    reqwest::Client::new()
        .post(format!("{}/_api/admin/graphql", sb.base_url()))
        .bearer_auth(token)
        .json(&json!({ "query": q }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn entry(key: &str) -> NewEntry {
    NewEntry {
        key: key.into(),
        name: format!("Name of {key}"),
        description: Some(format!("About {key}")),
    }
}

#[tokio::test]
async fn creates_roles_and_groups_in_batches_and_reuses_existing_keys() {
    let cfg = AuthgearConfig {
        roles: vec!["existing".into()],
        ..AuthgearConfig::default()
    };
    let sb = sandbox(cfg).await;
    let t = target(&sb);
    assert_eq!(t.role_keys().await.unwrap(), ["existing"]);
    assert_eq!(t.batch(), 5);
    // 5 new roles and the existing one in one batch: the duplicate rolls the request
    // back, the entries are sent one by one, the existing key is not an error.
    let mut batch: Vec<NewEntry> = (0..4).map(|i| entry(&format!("r{i}"))).collect();
    batch.push(entry("existing"));
    t.create_roles(&batch).await.unwrap();
    t.create_roles(&[entry("r4")]).await.unwrap();
    let mut keys = t.role_keys().await.unwrap();
    keys.sort();
    assert_eq!(keys, ["existing", "r0", "r1", "r2", "r3", "r4"]);
    assert_eq!(sb.authgear().role_keys(), keys);
    let v = query(
        &sb,
        "{ roles(searchKeyword: \"r2\") { edges { node { key name description } } } }",
    )
    .await;
    assert_eq!(v["data"]["roles"]["edges"][0]["node"]["name"], "Name of r2");
    assert_eq!(
        v["data"]["roles"]["edges"][0]["node"]["description"],
        "About r2"
    );

    t.create_groups(&[entry("acme"), entry("globex")])
        .await
        .unwrap();
    assert_eq!(t.group_keys().await.unwrap(), ["acme", "globex"]);
    let groups: Vec<String> = sb.authgear().groups().into_iter().map(|g| g.0).collect();
    assert_eq!(groups, ["acme", "globex"]);
    sb.shutdown().await;
}

#[tokio::test]
async fn lists_keys_across_pages() {
    let cfg = AuthgearConfig {
        roles: (0..200).map(|i| format!("role_{i:03}")).collect(),
        ..AuthgearConfig::default()
    };
    let sb = sandbox(cfg).await;
    let keys = target(&sb).role_keys().await.unwrap();
    assert_eq!(
        keys.len(),
        200,
        "an exact multiple of 100: the empty third page ends it"
    );
    assert_eq!(keys[199], "role_199");
    sb.shutdown().await;
}
