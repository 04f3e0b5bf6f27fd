//! `authmigrate generate`: test users, hashed once, in the neutral, Auth0 or Authgear format.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use authmigrate_core::UserRecord;
use authmigrate_core::generate::{GenerateOptions, generate};
use authmigrate_core::io::{JsonArrayWriter, NdjsonWriter, create_output};
use serde_json::json;

use crate::Status;
use crate::cli::{Auth0Mode, GenerateArgs, GenerateFormat, ImportArgs, MapArgs, Provider, RunArgs};
use crate::output::Output;

/// The envelope of `generate --format authgear` (the contract's exact body shape).
const AUTHGEAR_PREFIX: &str = r#"{"identifier":"email","records":"#;
const AUTHGEAR_SUFFIX: &str = "}";

enum Writer<W: Write> {
    Lines(NdjsonWriter<W>),
    Array(JsonArrayWriter<W>),
}

pub(crate) fn run(args: GenerateArgs, out: &Output) -> anyhow::Result<Status> {
    let options = GenerateOptions {
        count: args.count,
        prefix: args.prefix.clone(),
        domain: args.domain.clone(),
        start: args.start,
        password: args.password.clone(),
        cost: args.cost,
        seed: args.seed,
    };
    options.validate()?;
    if !args.to.is_empty() && args.run.state.is_some() && args.seed.is_none() {
        return Err(crate::Hinted {
            message: "`generate --to` with `--state` needs `--seed`: without it a rerun generates other hashes, so it is another run".to_owned(),
            hint: "add --seed N (any number) and use the same one when you run the command again".to_owned(),
        }
        .into());
    }
    // With `--to`, the users are generated once into a private neutral file that
    // every target imports (the same hashes in each); `--out` is then optional.
    // With `--state` the file sits at a fixed path next to it (`STATE.users.ndjson`,
    // 0600, removed at the end), because the import journal identifies its input by
    // path: a rerun with the same `--seed` regenerates the same file at the same path.
    let staging = if args.to.is_empty() {
        None
    } else {
        let dir = tempfile::Builder::new()
            .prefix("authmigrate-generate-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let file = match &args.run.state {
            Some(state) => {
                let mut name = state.file_name().unwrap_or_default().to_owned();
                name.push(".users.ndjson");
                state.with_file_name(name)
            }
            None => dir.path().join("users.ndjson"),
        };
        Some((dir, file))
    };
    let path = match (&args.out, &staging) {
        (Some(p), _) => Some(p.clone()),
        (None, None) => Some(PathBuf::from("-")),
        (None, Some(_)) => None,
    };
    // Every format holds password hashes: create the files 0600 before writing.
    let mut writer = match &path {
        Some(path) => {
            let sink = create_output(path, true)?;
            Some(match args.format {
                GenerateFormat::Neutral => Writer::Lines(NdjsonWriter::new(sink)),
                GenerateFormat::Auth0 => Writer::Array(JsonArrayWriter::new(sink)),
                GenerateFormat::Authgear => Writer::Array(JsonArrayWriter::with_envelope(
                    sink,
                    AUTHGEAR_PREFIX,
                    AUTHGEAR_SUFFIX,
                )),
            })
        }
        None => None,
    };
    let mut staged = match &staging {
        Some((_, file)) => Some(NdjsonWriter::new(create_output(file, true)?)),
        None => None,
    };
    let auth0_opts = authmigrate_auth0::format::Auth0MapOptions::default();
    let authgear_opts = authmigrate_authgear::format::AuthgearMapOptions::default();
    let bar = out.bar(options.count, "hashing");
    let encode = |user: &UserRecord| -> anyhow::Result<serde_json::Value> {
        Ok(match args.format {
            GenerateFormat::Neutral => serde_json::to_value(user)?,
            GenerateFormat::Auth0 => {
                authmigrate_auth0::format::to_bulk_user(user, &auth0_opts)
                    .map_err(|f| anyhow::anyhow!("{f}"))?
                    .json
            }
            GenerateFormat::Authgear => {
                authmigrate_authgear::format::to_import_record(user, &authgear_opts)
                    .map_err(|f| anyhow::anyhow!("{f}"))?
                    .json
            }
        })
    };
    let io_error = |p: &std::path::Path, e| authmigrate_core::Error::io("write", p, e);
    let mut written = 0u64;
    generate(&options, |user| {
        if let (Some(w), Some(path)) = (&mut writer, &path) {
            let value =
                encode(&user).map_err(|e| authmigrate_core::Error::Config(e.to_string()))?;
            let result = match w {
                Writer::Lines(w) => w.write(&value),
                Writer::Array(w) => w.write(&value).map(|_| ()),
            };
            result.map_err(|e| io_error(path, e))?;
        }
        if let (Some(w), Some((_, file))) = (&mut staged, &staging) {
            let value = serde_json::to_value(&user)
                .map_err(|e| authmigrate_core::Error::Config(e.to_string()))?;
            w.write(&value).map_err(|e| io_error(file, e))?;
        }
        written += 1;
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();
    if let (Some(w), Some(path)) = (writer, &path) {
        let sink = match w {
            Writer::Lines(w) => w.finish(),
            Writer::Array(w) => w.finish(),
        }
        .with_context(|| format!("cannot write `{}`", path.display()))?;
        sink.finish()?;
    }
    if let (Some(w), Some((_, file))) = (staged, &staging) {
        w.finish()
            .with_context(|| format!("cannot write `{}`", file.display()))?
            .finish()?;
    }
    let format = match args.format {
        GenerateFormat::Neutral => "neutral",
        GenerateFormat::Auth0 => "auth0",
        GenerateFormat::Authgear => "authgear",
    };
    if let Some(path) = path.as_ref().filter(|p| p.as_os_str() != "-") {
        out.say(format!(
            "generated {written} users ({format}, bcrypt cost {}) into `{}`",
            options.cost,
            path.display()
        ));
    }
    let mut status = Status::Ok;
    let mut imported = Vec::new();
    if let Some((_dir, file)) = &staging {
        let mut targets = args.to.clone();
        targets.dedup();
        let mut result = Ok(());
        for &target in &targets {
            match super::import::run(import_args(&args, target, targets.len(), file), out) {
                Ok(s) => {
                    imported.push(provider_name(target));
                    if s == Status::SomeFailed {
                        status = Status::SomeFailed;
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(file);
        result?;
    }
    out.event(
        "summary",
        json!({ "generated": written, "format": format,
                "out": path.as_ref().map(|p| p.display().to_string()),
                "cost": options.cost, "imported_to": imported }),
    );
    Ok(status)
}

fn provider_name(p: Provider) -> &'static str {
    match p {
        Provider::Auth0 => "auth0",
        Provider::Authgear => "authgear",
    }
}

/// `report.json` → `report.auth0.json` when there are several targets (one path as
/// it is for one target).
pub(crate) fn per_target(path: &std::path::Path, target: &str, targets: usize) -> PathBuf {
    if targets < 2 {
        return path.to_owned();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{target}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{target}"),
    };
    path.with_file_name(name)
}

/// The `import --to TARGET FILE` that `generate --to TARGET` runs.
fn import_args(
    args: &GenerateArgs,
    to: Provider,
    targets: usize,
    file: &std::path::Path,
) -> ImportArgs {
    let name = provider_name(to);
    let mut run: RunArgs = args.run.clone();
    run.report = run.report.map(|p| per_target(&p, name, targets));
    run.state = run.state.map(|p| per_target(&p, name, targets));
    ImportArgs {
        to,
        files: vec![file.to_owned()],
        run,
        connection: args.connection.clone(),
        send_completion_email: false,
        external_id: None,
        mode: Auth0Mode::Bulk,
        password_tickets: None,
        password_hashes: None,
        mfa_secrets: None,
        map: MapArgs {
            identifier: args.identifier.clone(),
            custom_attributes: Vec::new(),
            reserved_usernames: None,
        },
        auth0: args.auth0.clone(),
        authgear: args.authgear.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::per_target;

    #[test]
    fn two_targets_get_the_provider_before_the_extension() {
        assert_eq!(
            per_target(Path::new("r.json"), "auth0", 1),
            Path::new("r.json")
        );
        assert_eq!(
            per_target(Path::new("d/r.json"), "auth0", 2),
            Path::new("d/r.auth0.json")
        );
        assert_eq!(
            per_target(Path::new("run.state"), "authgear", 2),
            Path::new("run.authgear.state")
        );
        assert_eq!(
            per_target(Path::new("state"), "auth0", 2),
            Path::new("state.auth0")
        );
    }
}
