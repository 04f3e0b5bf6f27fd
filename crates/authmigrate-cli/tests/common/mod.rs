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
