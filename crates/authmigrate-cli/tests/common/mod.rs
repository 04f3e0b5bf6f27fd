//! The sandbox harness shared by the CLI's integration tests: an in-process
//! sandbox on 127.0.0.1 and the real binary pointed at it.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use serde_json::Value;

pub struct Env {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
}

pub async fn env() -> Env {
    env_with(SandboxConfig::default()).await
}

/// [`env`] with the sandbox configured by `config` (its job latency is kept short).
pub async fn env_with(config: SandboxConfig) -> Env {
    let sandbox = Sandbox::start(SandboxConfig {
        faults: FaultConfig {
            job_latency: Duration::from_millis(20),
            ..config.faults
        },
        ..config
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, sandbox.authgear().private_key_pem()).unwrap();
    Env { sandbox, dir, key }
}

impl Env {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the binary with the sandbox's variables (off the async runtime's threads).
    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[]).await
    }

    /// [`Env::run`] with extra environment variables (test hooks).
    pub async fn run_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authmigrate"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        for (k, v) in self.sandbox.env_vars() {
            cmd.env(k, v);
        }
        cmd.env("AUTHGEAR_PRIVATE_KEY_FILE", &self.key);
        for k in ["AUTH0_TOKEN", "AUTHGEAR_ADMIN_TOKEN"] {
            cmd.env_remove(k);
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn report(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Borrowed arguments for [`Env::run`].
pub fn argv(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `base` followed by `extra`, owned.
pub fn args(base: &[&str], extra: &[&str]) -> Vec<String> {
    base.iter().chain(extra).map(|s| (*s).to_owned()).collect()
}

/// The `(user, field, expected, got)` of each difference of a verify report, sorted.
pub fn diffs(r: &Value) -> Vec<(String, String, Value, Value)> {
    let mut d: Vec<_> = r["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["user"].as_str().unwrap_or("").to_owned(),
                d["field"].as_str().unwrap_or("").to_owned(),
                d["expected"].clone(),
                d["got"].clone(),
            )
        })
        .collect();
    d.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    d
}

/// Admin GraphQL at the Authgear emulator: the answer.
pub async fn authgear_gql(env: &Env, query: &str, variables: Value) -> Value {
    let token = env
        .sandbox
        .authgear()
        .mint_admin_token(Duration::from_secs(300));
    reqwest::Client::new()
        .post(format!("{}/_api/admin/graphql", env.sandbox.base_url()))
        .bearer_auth(token)
        .json(&serde_json::json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The Auth0 emulator's `user_id` of the user with this e-mail.
pub fn auth0_id(env: &Env, email: &str) -> String {
    env.sandbox
        .auth0()
        .user_by_email(email)
        .unwrap_or_else(|| panic!("{email} at auth0"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}
