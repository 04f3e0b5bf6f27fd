//! `authmigrate demo`: the whole story on an in-process sandbox, no credentials.
//!
//! 1. generate test users (bcrypt `$2b$` cost 10, password = username); every 10th
//!    has a TOTP authenticator (`mfa_factors`);
//! 2. import them into the Auth0 emulator (bulk jobs, through the real backend), then
//!    seed the tenant: roles `admin`, `support`, `viewer` with permissions, their
//!    members, organizations `acme` and `globex` with members and a member role
//!    (`demo_tenant` says who holds what);
//! 3. export them from Auth0 (the export job) with their password hashes and MFA
//!    secrets (the sandbox's stand-ins for the support-ticket exports);
//! 4. migrate to the Authgear emulator through `migrate`'s own tenant step (roles and
//!    groups created first) and joins (hashes, memberships, TOTP secrets);
//! 5. log every user in at Authgear with its original password, TOTP users with a
//!    code too (and refused without one);
//! 6. check every user holds at Authgear the roles and groups it had at Auth0;
//! 7. print the summary. Exit 0 only if every check passed for every user.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use authmigrate_auth0::{Auth0Auth, Auth0Backend, Auth0Settings};
use authmigrate_authgear::{AuthgearAuth, AuthgearBackend, AuthgearSettings};
use authmigrate_core::driver::DriverOptions;
use authmigrate_core::generate::{GenerateOptions, generate};
use authmigrate_core::io::{NdjsonWriter, create_output};
use authmigrate_core::record::MfaFactor;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::json;

use super::demo_tenant;
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
    let totp_users = (0..args.count)
        .filter(|k| demo_tenant::has_totp(*k))
        .count() as u64;
    let bar = out.bar(args.count, "hashing");
    {
        let mut w = NdjsonWriter::new(create_output(&users_path, true)?);
        let mut k = 0u64;
        generate(&options, |mut u| {
            bar.inc(1);
            if demo_tenant::has_totp(k) {
                u.mfa.push(MfaFactor::Totp {
                    secret: demo_tenant::base32(&demo_tenant::totp_key(k)).into(),
                });
            }
            k += 1;
            w.write(&u)
                .map_err(|e| authmigrate_core::Error::io("write", &users_path, e))
        })?;
        w.finish()?.finish()?;
    }
    bar.finish_and_clear();
    steps.push(Step {
        name: "generate",
        detail: format!(
            "{} users, bcrypt $2b$ cost {}, {totp_users} with TOTP",
            args.count, options.cost
        ),
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

    // The tenant around the users: roles, organizations, memberships.
    let t = Instant::now();
    let by_email: std::collections::HashMap<String, String> = sandbox
        .auth0()
        .users()
        .iter()
        .filter_map(|u| {
            Some((
                u["email"].as_str()?.to_lowercase(),
                u["user_id"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let users: Vec<(String, String)> = (options.start..options.start + options.count)
        .map(|i| {
            let email = format!("{}@{}", options.username(i), options.domain);
            let id = by_email
                .get(&email.to_lowercase())
                .cloned()
                .unwrap_or_default();
            (id, email)
        })
        .collect();
    let ids: Vec<String> = users.iter().map(|(id, _)| id.clone()).collect();
    let seeded = demo_tenant::seed(&sandbox, &ids);
    steps.push(Step {
        name: "tenant at Auth0",
        detail: format!(
            "{} roles, {} role members, {} organizations, {} members",
            seeded.roles, seeded.role_assignments, seeded.organizations, seeded.memberships
        ),
        took: t.elapsed(),
    });

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
    let mfa_path = dir.join("auth0-mfa-secrets.ndjson");
    let mfa = reqwest::get(format!(
        "{}/_sandbox/auth0/mfa-secrets?connection={}",
        sandbox.base_url(),
        auth0.connection
    ))
    .await
    .and_then(|r| r.error_for_status())
    .context("cannot fetch the sandbox's MFA export")?
    .bytes()
    .await?;
    let mut f = create_output(&mfa_path, true)?;
    f.write_all(&mfa)?;
    f.finish()?;
    steps.push(Step {
        name: "export ← Auth0",
        detail: format!(
            "{exported} users (export job), {hash_lines} password hashes + MFA secrets (support files)"
        ),
        took: t.elapsed(),
    });

    // 4. Migrate to Authgear: the tenant step first (as `migrate` runs it), then the
    // users, joining the hashes, memberships and TOTP secrets.
    let t = Instant::now();
    let (plan, memberships) = super::tenant::carry(super::tenant::Step {
        auth0: auth0.clone(),
        authgear: authgear.clone(),
        roles: true,
        groups: true,
        role_map: Vec::new(),
        dry_run: false,
        store: dir.join("tenant.sqlite"),
        resume: false,
        after_batch: None,
    })
    .await?;
    super::tenant::render(false, &dir, &plan, out)?;
    let mfa = super::tenant::load_mfa(&mfa_path, &dir, out)?;
    let mfa_joined = Arc::new(super::tenant::MfaJoined::default());
    let backend = Arc::new(AuthgearBackend::new(authgear).map_err(backend_error)?);
    let inputs = Inputs::new(vec![export_path.clone()]);
    let mut readers = inputs.error_handles();
    let joined = super::hashes::join_checked(inputs, &hashes_path, out)?;
    readers.push(joined.status());
    let joined = super::tenant::annotate(
        Box::new(joined),
        Some(memberships),
        Some(mfa),
        false,
        mfa_joined.clone(),
    );
    let report = dir.join("authgear-import-report.json");
    let total = survey(std::slice::from_ref(&export_path))?.records;
    let status = import(
        backend,
        joined,
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
        detail: format!(
            "{} users, {} roles, {} groups in the project; {} TOTP secrets joined",
            sandbox.authgear().users().len(),
            sandbox.authgear().role_keys().len(),
            sandbox.authgear().groups().len(),
            mfa_joined.joined.load(std::sync::atomic::Ordering::Relaxed)
        ),
        took: t.elapsed(),
    });
    ensure(status, "the Authgear import")?;

    // 5. Every user logs in at Authgear with its original password (TOTP users with a
    // code, after being refused without one), over HTTP.
    let t = Instant::now();
    let login_url = format!("{}/_sandbox/authgear/login", sandbox.base_url());
    let http = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let logins: Vec<Login> = futures::stream::iter(0..options.count)
        .map(|k| {
            let username = options.username(options.start + k);
            let login_id = format!("{username}@{}", options.domain);
            let (http, url) = (http.clone(), login_url.clone());
            async move {
                let totp = demo_tenant::has_totp(k);
                let post = |body: serde_json::Value| {
                    let req = http.post(&url).json(&body).send();
                    async move {
                        match req.await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                (status, r.text().await.unwrap_or_default())
                            }
                            Err(_) => (0, String::new()),
                        }
                    }
                };
                let password = json!({ "login_id": login_id, "password": username });
                if !totp {
                    let (status, _) = post(password).await;
                    return Login {
                        totp,
                        refused_without_code: false,
                        ok: status == 200,
                    };
                }
                let (status, body) = post(password).await;
                let refused_without_code = status == 401 && body.contains("TOTPRequired");
                let code =
                    authmigrate_sandbox::auth0::mfa::totp_code(&demo_tenant::totp_key(k), now);
                let (status, _) =
                    post(json!({ "login_id": login_id, "password": username, "totp": code })).await;
                Login {
                    totp,
                    refused_without_code,
                    ok: status == 200,
                }
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let ok = logins.iter().filter(|l| l.ok).count() as u64;
    let totp_ok = logins.iter().filter(|l| l.totp && l.ok).count() as u64;
    let totp_refused = logins
        .iter()
        .filter(|l| l.totp && l.refused_without_code)
        .count() as u64;
    steps.push(Step {
        name: "log in at Authgear",
        detail: format!(
            "{ok} of {} users, {totp_ok} of them with a TOTP code",
            args.count
        ),
        took: t.elapsed(),
    });

    // 6. Every user holds the roles and groups it had at Auth0.
    let t = Instant::now();
    let held = demo_tenant::check(&sandbox, &plan, &users);
    steps.push(Step {
        name: "check memberships",
        detail: format!(
            "{} users' roles and {} users' groups as at Auth0",
            held.roles_ok, held.groups_ok
        ),
        took: t.elapsed(),
    });

    // 7. Summary.
    let n = args.count;
    let checks = [
        (
            ok == n,
            format!("passwords: {ok}/{n} users log in at Authgear with their original password"),
        ),
        (
            held.roles_defined == held.roles_planned && held.roles_ok == n,
            format!(
                "roles: {} created in Authgear, {}/{n} users hold their roles ({} with at least one)",
                held.roles_defined, held.roles_ok, held.with_roles
            ),
        ),
        (
            held.groups_defined == held.groups_planned && held.groups_ok == n,
            format!(
                "groups: {} created in Authgear from Auth0 organizations, {}/{n} users in their groups ({} in at least one)",
                held.groups_defined, held.groups_ok, held.with_groups
            ),
        ),
        (
            totp_ok == totp_users && totp_refused == totp_users,
            format!(
                "mfa: {totp_ok}/{totp_users} TOTP users log in with password + code ({totp_refused} refused without a code)"
            ),
        ),
    ];
    let passed = checks.iter().all(|(pass, _)| *pass);
    out.event(
        "summary",
        json!({ "users": args.count, "auth0_users": a0_users, "exported": exported,
                "authgear_users": sandbox.authgear().users().len(), "logins_ok": ok,
                "roles_created": held.roles_defined, "users_with_roles_ok": held.roles_ok,
                "groups_created": held.groups_defined, "users_with_groups_ok": held.groups_ok,
                "totp_users": totp_users, "totp_logins_ok": totp_ok,
                "totp_refused_without_code": totp_refused, "passed": passed,
                "seconds": started.elapsed().as_secs_f64() }),
    );
    out.say("\nauthmigrate demo");
    for s in &steps {
        out.say(format!(
            "  {:<20} {:<76} {:>6.1}s",
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
    out.say("");
    for (pass, line) in &checks {
        out.say(format!("{} {line}", if *pass { "ok  " } else { "FAIL" }));
    }
    sandbox.shutdown().await;
    if passed {
        out.say(format!(
            "\nevery one of the {n} users moved from Auth0 to Authgear with its password, roles, groups and TOTP"
        ));
        Ok(Status::Ok)
    } else {
        out.say("\nsome users did not arrive whole at Authgear: see the FAIL lines above");
        Ok(Status::SomeFailed)
    }
}

/// One user's login at Authgear.
#[derive(Debug)]
struct Login {
    totp: bool,
    refused_without_code: bool,
    ok: bool,
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
