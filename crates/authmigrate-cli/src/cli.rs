//! Command-line arguments (clap derive). Names, flags and environment variables follow
//! `shared/docs/cli-contract.md`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Move user accounts between Auth0 and Authgear, and generate identical test users
/// for both.
///
/// Exit codes: 0 every record reached an acceptable outcome (inserted, updated, or
/// skipped because it already exists); 1 the run finished but some record failed;
/// 2 usage, configuration, authentication or fatal error.
#[derive(Debug, Parser)]
#[command(name = "authmigrate", version, max_term_width = 100)]
pub struct Cli {
    /// Global flags.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug, -vvv trace; RUST_LOG overrides)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: only warnings and errors on stderr
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,
    /// JSON Lines events on stdout, the last one a `summary`
    #[arg(long, global = true)]
    pub json: bool,
    /// Never draw progress bars
    #[arg(long, global = true)]
    pub no_progress: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate test users with bcrypt hashes, usable for either provider
    Generate(GenerateArgs),
    /// Check a file against a provider's import rules, offline
    Validate(ValidateArgs),
}

/// Output formats of `generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenerateFormat {
    /// NDJSON, one provider-neutral user record per line
    Neutral,
    /// A JSON array of Auth0 bulk-import users
    Auth0,
    /// An Authgear import body `{"identifier":"email","records":[...]}`
    Authgear,
}

/// `authmigrate generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// How many users
    #[arg(long)]
    pub count: u64,
    /// Username prefix: users are `{prefix}_{i:02}`
    #[arg(long, default_value = "user")]
    pub prefix: String,
    /// E-mail domain: e-mails are `{username}@{domain}`
    #[arg(long, default_value = "example.com")]
    pub domain: String,
    /// Number of the first user
    #[arg(long, default_value_t = 1)]
    pub start: u64,
    /// One password for every user (default: each user's username)
    #[arg(long, env = "AUTHMIGRATE_GENERATE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// bcrypt cost
    #[arg(long, default_value_t = 10)]
    pub cost: u32,
    /// Seed for reproducible output (byte-identical reruns)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output format
    #[arg(long, value_enum, default_value_t = GenerateFormat::Neutral)]
    pub format: GenerateFormat,
    /// Output file (`-` or absent: stdout; `.gz`: gzip). Created with mode 0600
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// Auth0
    Auth0,
    /// Authgear
    Authgear,
}

/// `authmigrate validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The provider whose rules apply
    #[arg(long = "for", value_enum)]
    pub target: Provider,
    /// Authgear: the identifier, when the file does not say (`email`, `phone_number`, `preferred_username`)
    #[arg(long)]
    pub identifier: Option<String>,
    /// The file to check (`-`: stdin; `.gz` accepted)
    pub file: PathBuf,
}
