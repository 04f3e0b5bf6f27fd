//! `authmigrate demo`: the whole story on an in-process sandbox, no credentials.
//!
//! 1. generate test users (bcrypt `$2b$` cost 10, password = username);
//! 2. import them into the Auth0 emulator (bulk jobs, through the real backend);
//! 3. export them from Auth0 (the export job) with their password hashes (the
//!    sandbox's stand-in for the support-ticket export);
//! 4. migrate them to the Authgear emulator, joining the hashes;
//! 5. log every user in at Authgear with its original password;
//! 6. print the summary. Exit 0 only if every step succeeded for every user.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use authmigrate_auth0::{Auth0Auth, Auth0Backend, Auth0Settings};
use authmigrate_authgear::{AuthgearAuth, AuthgearBackend, AuthgearSettings};
use authmigrate_core::driver::{DriverOptions, InputRecord};
use authmigrate_core::generate::{GenerateOptions, generate};
use authmigrate_core::io::{NdjsonWriter, create_output};
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::json;

use super::import::{Run, import};
use crate::Status;
use crate::backends::backend_error;
use crate::cli::DemoArgs;
use crate::input::{Inputs, survey};
use crate::output::Output;

pub(crate) fn run(args: DemoArgs, out: &Output) -> anyhow::Result<Status> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args, out))
}

struct Step {
    name: &'static str,
    detail: String,
    took: Duration,
}

async fn run_async(args: DemoArgs, out: &Output) -> anyhow::Result<Status> {
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("cannot create `{}`", d.display()))?;
            d.clone()
        }
        None => temp.path().to_owned(),
    };
    let mut steps: Vec<Step> = Vec::new();
    let started = Instant::now();

    let sandbox = Sandbox::start(SandboxConfig {
        faults: FaultConfig {
            job_latency: Duration::from_millis(100),
            ..FaultConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .context("cannot start the sandbox")?;
    out.say(format!(
        "demo: Auth0 and Authgear emulators on {}",
        sandbox.base_url()
    ));
    let auth0 = Auth0Settings::new(
        sandbox.base_url(),
        Auth0Auth::ClientCredentials {
            client_id: sandbox.auth0().client_id().to_owned(),
            client_secret: SecretString::from(sandbox.auth0().client_secret().to_owned()),
        },
    );
    let authgear = AuthgearSettings::new(
        sandbox.base_url(),
        AuthgearAuth::Key {
            project_id: sandbox.authgear().project_id().to_owned(),
            key_id: sandbox.authgear().key_id().to_owned(),
            private_key_pem: SecretString::from(sandbox.authgear().private_key_pem()),
        },
    );

    // 1. Generate.
    let t = Instant::now();
    let users_path = dir.join("users.ndjson");
    let options = GenerateOptions {
        count: args.count,
        prefix: "demo".into(),
        seed: Some(2026),
        ..GenerateOptions::default()
    };
    let bar = out.bar(args.count, "hashing");
    {
        let mut w = NdjsonWriter::new(create_output(&users_path, true)?);
        generate(&options, |u| {
            bar.inc(1);
            w.write(&u)
                .map_err(|e| authmigrate_core::Error::io("write", &users_path, e))
        })?;
        w.finish()?.finish()?;
    }
    bar.finish_and_clear();
    steps.push(Step {
        name: "generate",
        detail: format!("{} users, bcrypt $2b$ cost {}", args.count, options.cost),
        took: t.elapsed(),
    });

    // 2. Import into Auth0.
    let t = Instant::now();
    let backend = Arc::new(Auth0Backend::new(auth0.clone()).map_err(backend_error)?);
    let report = dir.join("auth0-import-report.json");
    let status = import_file(backend, &users_path, &report, out).await?;
    let a0_users = sandbox.auth0().users().len();
    steps.push(Step {
        name: "import → Auth0",
        detail: format!(
            "{a0_users} users in the tenant, {} jobs",
            sandbox.auth0().jobs_created()
        ),
        took: t.elapsed(),
    });
    ensure(status, "the Auth0 import")?;

    // 3. Export from Auth0, with the password hashes.
    let t = Instant::now();
    let export_path = dir.join("auth0-export.ndjson.gz");
    let exported = {
        let mut sink = create_output(&export_path, true)?;
        let stats = authmigrate_auth0::export::export_users(
            &auth0,
            &authmigrate_auth0::export::ExportOptions {
                connection: Some(auth0.connection.clone()),
                fields: None,
            },
            &mut sink,
        )
        .await
        .map_err(backend_error)?;
        sink.finish()?;
        stats.users
    };
    let hashes_path = dir.join("auth0-password-hashes.ndjson");
    let hashes = reqwest::get(format!(
        "{}/_sandbox/auth0/password-hashes?connection={}",
        sandbox.base_url(),
        auth0.connection
    ))
    .await
    .and_then(|r| r.error_for_status())
    .context("cannot fetch the sandbox's password-hash export")?
    .bytes()
    .await?;
    let mut f = create_output(&hashes_path, true)?;
    f.write_all(&hashes)?;
    f.finish()?;
    let hash_lines = hashes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    steps.push(Step {
        name: "export ← Auth0",
        detail: format!(
            "{exported} users (export job), {hash_lines} password hashes (support-ticket file)"
        ),
        took: t.elapsed(),
    });

    // 4. Migrate to Authgear, joining the hashes.
    let t = Instant::now();
    let backend = Arc::new(AuthgearBackend::new(authgear).map_err(backend_error)?);
    let inputs = Inputs::new(vec![export_path.clone()]);
    let mut readers = inputs.error_handles();
    let joined = super::hashes::join_checked(inputs, &hashes_path, out)?;
    readers.push(joined.status());
    let report = dir.join("authgear-import-report.json");
    let total = survey(std::slice::from_ref(&export_path))?.records;
    let status = import(
        backend,
        Box::new(joined) as Box<dyn Iterator<Item = InputRecord> + Send>,
        readers,
        Run {
            options: demo_options(),
            report: Some(report),
            total,
            daily_quota: None,
        },
        out,
    )
    .await?;
    steps.push(Step {
        name: "migrate → Authgear",
        detail: format!("{} users in the project", sandbox.authgear().users().len()),
        took: t.elapsed(),
    });
    ensure(status, "the Authgear import")?;

    // 5. Every user logs in at Authgear with its original password, over HTTP.
    let t = Instant::now();
    let login_url = format!("{}/_sandbox/authgear/login", sandbox.base_url());
    let http = reqwest::Client::new();
    let ok = futures::stream::iter(options.start..options.start + options.count)
        .map(|i| {
            let username = options.username(i);
            let body = json!({ "login_id": format!("{username}@{}", options.domain), "password": username });
            let req = http.post(&login_url).json(&body).send();
            async move { req.await.map(|r| r.status().is_success()).unwrap_or(false) }
        })
        .buffer_unordered(8)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await as u64;
    steps.push(Step {
        name: "log in at Authgear",
        detail: format!("{ok} of {} users with their original passwords", args.count),
        took: t.elapsed(),
    });

    // 6. Summary.
    out.event(
        "summary",
        json!({ "users": args.count, "auth0_users": a0_users, "exported": exported,
                "authgear_users": sandbox.authgear().users().len(), "logins_ok": ok,
                "seconds": started.elapsed().as_secs_f64() }),
    );
    out.say("\nauthmigrate demo");
    for s in &steps {
        out.say(format!(
            "  {:<20} {:<68} {:>6.1}s",
            s.name,
            s.detail,
            s.took.as_secs_f64()
        ));
    }
    out.say(format!(
        "  {:<20} {:.1}s",
        "total",
        started.elapsed().as_secs_f64()
    ));
    if let Some(d) = &args.keep {
        out.say(format!("  files kept in `{}`", d.display()));
    }
    sandbox.shutdown().await;
    if ok == args.count {
        out.say(format!("\nevery one of the {ok} users moved from Auth0 to Authgear and logs in with its original password"));
        Ok(Status::Ok)
    } else {
        out.say(format!(
            "\n{} users could not log in at Authgear",
            args.count - ok
        ));
        Ok(Status::SomeFailed)
    }
}

fn demo_options() -> DriverOptions {
    DriverOptions {
        poll_initial: Duration::from_millis(50),
        poll_max: Duration::from_millis(500),
        ..DriverOptions::default()
    }
}

async fn import_file(
    backend: Arc<dyn authmigrate_core::backend::ImportBackend>,
    path: &std::path::Path,
    report: &std::path::Path,
    out: &Output,
) -> anyhow::Result<Status> {
    let inputs = Inputs::new(vec![path.to_owned()]);
    let readers = inputs.error_handles();
    let total = survey(&[path.to_owned()])?.records;
    import(
        backend,
        Box::new(inputs),
        readers,
        Run {
            options: demo_options(),
            report: Some(report.to_owned()),
            total,
            daily_quota: None,
        },
        out,
    )
    .await
}

fn ensure(status: Status, what: &str) -> anyhow::Result<()> {
    match status {
        Status::Ok => Ok(()),
        Status::SomeFailed => {
            anyhow::bail!("{what} had failed records: see the report (rerun with `--keep DIR`)")
        }
    }
}
