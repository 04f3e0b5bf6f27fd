//! `authmigrate generate`: test users, hashed once, in the neutral, Auth0 or Authgear format.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use authmigrate_core::UserRecord;
use authmigrate_core::generate::{GenerateOptions, generate};
use authmigrate_core::io::{JsonArrayWriter, NdjsonWriter, create_output};
use serde_json::json;

use crate::Status;
use crate::cli::{GenerateArgs, GenerateFormat};
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
        prefix: args.prefix,
        domain: args.domain,
        start: args.start,
        password: args.password,
        cost: args.cost,
        seed: args.seed,
    };
    options.validate()?;
    let path = args.out.unwrap_or_else(|| PathBuf::from("-"));
    // Every format holds password hashes: create the file 0600 before writing.
    let sink = create_output(&path, true)?;
    let mut writer = match args.format {
        GenerateFormat::Neutral => Writer::Lines(NdjsonWriter::new(sink)),
        GenerateFormat::Auth0 => Writer::Array(JsonArrayWriter::new(sink)),
        GenerateFormat::Authgear => Writer::Array(JsonArrayWriter::with_envelope(
            sink,
            AUTHGEAR_PREFIX,
            AUTHGEAR_SUFFIX,
        )),
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
    let mut written = 0u64;
    generate(&options, |user| {
        let value = encode(&user).map_err(|e| authmigrate_core::Error::Config(e.to_string()))?;
        let result = match &mut writer {
            Writer::Lines(w) => w.write(&value),
            Writer::Array(w) => w.write(&value).map(|_| ()),
        };
        result.map_err(|e| authmigrate_core::Error::io("write", &path, e))?;
        written += 1;
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();
    let sink = match writer {
        Writer::Lines(w) => w.finish(),
        Writer::Array(w) => w.finish(),
    }
    .with_context(|| format!("cannot write `{}`", path.display()))?;
    sink.finish()?;
    let format = match args.format {
        GenerateFormat::Neutral => "neutral",
        GenerateFormat::Auth0 => "auth0",
        GenerateFormat::Authgear => "authgear",
    };
    out.event(
        "summary",
        json!({ "generated": written, "format": format, "out": path.display().to_string(), "cost": options.cost }),
    );
    if path.as_os_str() != "-" {
        out.say(format!(
            "generated {written} users ({format}, bcrypt cost {}) into `{}`",
            options.cost,
            path.display()
        ));
    }
    Ok(Status::Ok)
}
