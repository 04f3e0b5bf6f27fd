//! `authmigrate export --from auth0|authgear --out PATH`.

use std::path::Path;

use anyhow::Context;
use authmigrate_core::io::create_output;
use serde_json::json;

use crate::Status;
use crate::backends::{auth0_settings, authgear_settings, backend_error};
use crate::cli::{Auth0Creds, AuthgearCreds, ExportArgs, MapArgs, Provider};
use crate::output::Output;

pub(crate) fn run(args: ExportArgs, out: &Output) -> anyhow::Result<Status> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let users = export(args.from, &args.auth0, &args.authgear, args.connection.clone(), args.export_timeout, &args.out, out).await?;
        out.event("summary", json!({ "from": name(args.from), "users": users, "out": args.out.display().to_string() }));
        out.say(format!("exported {users} users from {} into `{}`", name(args.from), args.out.display()));
        Ok(Status::Ok)
    })
}

pub(crate) fn name(p: Provider) -> &'static str {
    match p {
        Provider::Auth0 => "auth0",
        Provider::Authgear => "authgear",
    }
}

/// Runs the provider's export job into `path` (written to a `.partial` file first and
/// renamed when complete, created 0600); returns the number of users.
pub(crate) async fn export(
    from: Provider,
    auth0: &Auth0Creds,
    authgear: &AuthgearCreds,
    connection: Option<String>,
    timeout: std::time::Duration,
    path: &Path,
    out: &Output,
) -> anyhow::Result<u64> {
    let partial = path.with_file_name(format!(
        "{}.partial",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    // Keep the real extension last so `.gz` still selects gzip.
    let partial = match path.extension() {
        Some(ext) => partial.with_extension(format!("partial.{}", ext.to_string_lossy())),
        None => partial,
    };
    let mut sink = create_output(&partial, true)?;
    out.say(format!("exporting users from {}...", name(from)));
    let stats = match from {
        Provider::Auth0 => {
            let settings = auth0_settings(auth0)?;
            let options = authmigrate_auth0::export::ExportOptions {
                connection,
                fields: None,
            };
            authmigrate_auth0::export::export_users_within(&settings, &options, timeout, &mut sink)
                .await
        }
        Provider::Authgear => {
            let settings = authgear_settings(authgear, &MapArgs::default())?;
            authmigrate_authgear::export::export_users_within(&settings, timeout, &mut sink).await
        }
    }
    .map_err(backend_error)?;
    sink.finish()?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    out.event("export", json!({ "from": name(from), "users": stats.users, "bytes": stats.bytes, "job": stats.job, "out": path.display().to_string() }));
    Ok(stats.users)
}
