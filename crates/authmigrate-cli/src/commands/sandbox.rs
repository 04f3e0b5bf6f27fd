//! `authmigrate sandbox`: both emulators on 127.0.0.1 until interrupted.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use authmigrate_core::io::create_output;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use serde_json::json;

use crate::Status;
use crate::cli::SandboxArgs;
use crate::output::Output;

pub(crate) fn run(args: SandboxArgs, out: &Output) -> anyhow::Result<Status> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let sandbox = Sandbox::start(SandboxConfig {
            port: args.port,
            faults: FaultConfig {
                job_latency: Duration::from_millis(args.job_latency_ms),
                ..FaultConfig::default()
            },
            ..SandboxConfig::default()
        })
        .await
        .context("cannot start the sandbox")?;

        let key_file = std::path::absolute(&args.key_file).unwrap_or(args.key_file.clone());
        write_private(&key_file, sandbox.authgear().private_key_pem().as_bytes())?;
        let mut vars = sandbox.env_vars();
        vars.push(("AUTHGEAR_PRIVATE_KEY_FILE".into(), key_file.display().to_string()));
        if let Some(path) = &args.env_file {
            let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            // Holds a client secret: private.
            write_private(path, text.as_bytes())?;
        }

        out.event("sandbox_started", json!({ "url": sandbox.base_url(), "env": vars.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>() }));
        if !out.json() {
            let mut stdout = std::io::stdout().lock();
            for (k, v) in &vars {
                writeln!(stdout, "export {k}={v}")?;
            }
            stdout.flush()?;
        }
        out.say(format!(
            "sandbox: Auth0 and Authgear emulators on {} (Ctrl-C to stop)\n\
             Paste the lines above into another shell{}, then for example:\n  \
             authmigrate generate --count 50 --format auth0 --out users.json\n  \
             authmigrate import --to auth0 users.json --report report.json",
            sandbox.base_url(),
            match &args.env_file {
                Some(p) => format!(" (or run commands where `{}` is read)", p.display()),
                None => String::new(),
            }
        ));
        shutdown_signal().await;
        out.say("sandbox: stopping");
        sandbox.shutdown().await;
        Ok(Status::Ok)
    })
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = create_output(path, true)?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    file.finish()?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
