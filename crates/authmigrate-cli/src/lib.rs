//! The `authmigrate` command line. `main` is a thin shim over [`run`], so tests can
//! call the whole CLI in-process.
//!
//! Exit codes (the contract): 0 every record reached an acceptable outcome; 1 the run
//! finished but some record failed (each is reported with its reason); 2 usage,
//! configuration, authentication or fatal error.

mod backends;
mod cli;
mod commands;
mod input;
mod output;
mod pipeline;
mod transcode;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;
use output::Output;

/// How a command that ran to the end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every record reached an acceptable outcome.
    Ok,
    /// Some record failed (exit 1).
    SomeFailed,
}

/// An error with a hint for the user (printed as `hint: ...`).
#[derive(Debug)]
pub struct Hinted {
    /// The error.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// Runs the CLI with these arguments (the first is the program name).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<T> = args.into_iter().collect();
    let _ = COMMAND_LINE.set(quote_args(args.iter().cloned().map(Into::into)));
    // `.env` in the working directory, if any; real environment variables win.
    let _ = dotenvy::dotenv();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_tracing(cli.global.verbose, cli.global.quiet);
    let out = Output::new(cli.global.json, cli.global.quiet, cli.global.no_progress);
    match commands::dispatch(cli.command, &out) {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::SomeFailed) => ExitCode::from(1),
        Err(err) => {
            report_error(&out, &err);
            ExitCode::from(2)
        }
    }
}

/// The command line this process runs (shell-quoted), for "resume with" messages.
static COMMAND_LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The command line this process runs, with `authmigrate` as the program name.
pub(crate) fn command_line() -> Option<&'static str> {
    COMMAND_LINE.get().map(String::as_str)
}

/// Flags whose value is a secret: shown as `$NAME` (the variable that can hold it).
const SECRET_FLAGS: [(&str, &str); 3] = [
    ("--auth0-token", "$AUTH0_TOKEN"),
    ("--auth0-client-secret", "$AUTH0_CLIENT_SECRET"),
    ("--authgear-admin-token", "$AUTHGEAR_ADMIN_TOKEN"),
];

fn quote_args(args: impl Iterator<Item = OsString>) -> String {
    let mut out = vec!["authmigrate".to_owned()];
    let mut secret_next: Option<&str> = None;
    for a in args.skip(1) {
        let a = a.to_string_lossy().into_owned();
        if let Some(var) = secret_next.take() {
            out.push(format!("\"{var}\""));
            continue;
        }
        if let Some((flag, var)) = SECRET_FLAGS
            .iter()
            .find(|(f, _)| a == *f || a.starts_with(&format!("{f}=")))
        {
            if a == *flag {
                out.push(a.clone());
                secret_next = Some(var);
            } else {
                out.push(format!("{flag}=\"{var}\""));
            }
            continue;
        }
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
        out.push(if plain {
            a
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        });
    }
    out.join(" ")
}

fn init_tracing(verbose: u8, quiet: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (q, _) if q > 0 => "error",
        // Long waits (export jobs) say what they wait for on the `progress` target.
        (_, 0) => "warn,progress=info",
        (_, 1) => "info,authmigrate=info",
        (_, 2) => "debug,hyper=info,reqwest=info,h2=info,rustls=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn report_error(out: &Output, err: &anyhow::Error) {
    let hint = err
        .chain()
        .find_map(|e| e.downcast_ref::<Hinted>())
        .map(|h| h.hint.clone());
    let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
    out.event(
        "error",
        serde_json::json!({ "message": err.to_string(), "causes": causes, "hint": hint }),
    );
    eprintln!("error: {err}");
    if !causes.is_empty() {
        eprintln!("  Caused by:");
        for c in &causes {
            eprintln!("    {c}");
        }
    }
    if let Some(h) = hint {
        eprintln!("\nhint: {h}");
    }
}
