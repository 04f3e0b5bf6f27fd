//! Command-line arguments (clap derive). Names, flags and environment variables follow
//! `shared/docs/cli-contract.md`.

use std::path::PathBuf;

use authmigrate_core::Secret;
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
    /// Import user files into Auth0 or Authgear, with per-user outcomes
    Import(ImportArgs),
    /// Run a provider's export job and stream it to NDJSON
    Export(ExportArgs),
    /// Convert any supported user file to another format, offline
    Convert(ConvertArgs),
    /// Export, convert and import in one resumable run
    Migrate(MigrateArgs),
    /// Delete users: the ones `generate` made, the ones a run created (`--id-map`),
    /// or a list of e-mails
    Delete(DeleteArgs),
    /// Check that the target holds every source user as the mapping says it should
    Verify(VerifyArgs),
    /// The whole story on an in-process sandbox, no credentials
    Demo(DemoArgs),
    /// Serve local emulators of Auth0 and Authgear until interrupted
    Sandbox(SandboxArgs),
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
    #[arg(long, id = "email_domain", default_value = "example.com")]
    pub domain: String,
    /// Number of the first user
    #[arg(long, default_value_t = 1)]
    pub start: u64,
    /// One password for every user (default: each user's username)
    #[arg(long, env = "AUTHMIGRATE_GENERATE_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
    /// bcrypt cost
    #[arg(long, default_value_t = 10)]
    pub cost: u32,
    /// Seed for reproducible output (byte-identical reruns)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output format
    #[arg(long, value_enum, default_value_t = GenerateFormat::Neutral)]
    pub format: GenerateFormat,
    /// Output file (`-` or absent: stdout, unless `--to` is given; `.gz`: gzip). Created with mode 0600
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also import the users into this provider, through `import`'s driver; repeatable
    /// (`--to auth0 --to authgear`: the same hashes in both)
    #[arg(long, value_enum, help_heading = "Import (--to)")]
    pub to: Vec<Provider>,
    /// How the import runs. With two `--to`, `--report`/`--state` paths get the
    /// provider's name before their extension (`report.auth0.json`)
    #[command(flatten, next_help_heading = "Import (--to)")]
    pub run: RunArgs,
    /// Auth0: the database connection's name
    #[arg(
        long,
        default_value = "Username-Password-Authentication",
        help_heading = "Import (--to)"
    )]
    pub connection: String,
    /// Authgear: the login ID users are matched on
    #[arg(long, default_value = "email", help_heading = "Import (--to)")]
    pub identifier: String,
    /// Auth0 credentials
    #[command(flatten, next_help_heading = "Auth0 credentials")]
    pub auth0: Auth0Creds,
    /// Authgear credentials
    #[command(flatten, next_help_heading = "Authgear credentials")]
    pub authgear: AuthgearCreds,
}

/// `authmigrate delete`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["prefix", "id_map", "emails"])))]
pub struct DeleteArgs {
    /// The provider to delete users from
    #[arg(long, value_enum)]
    pub from: Provider,
    /// The users `generate --prefix P` made: `{P}_{i:02}@{domain}`, each looked up by e-mail
    #[arg(long, requires = "count", help_heading = "Selection (exactly one)")]
    pub prefix: Option<String>,
    /// With `--prefix`: how many users
    #[arg(long, requires = "prefix", help_heading = "Selection (exactly one)")]
    pub count: Option<u64>,
    /// With `--prefix`: the number of the first user
    #[arg(
        long,
        default_value_t = 1,
        requires = "prefix",
        help_heading = "Selection (exactly one)"
    )]
    pub start: u64,
    /// The e-mail domain (`--prefix`: default `example.com`); any user whose e-mail is
    /// in another domain is left alone unless `--force`
    #[arg(long, id = "email_domain", help_heading = "Selection (exactly one)")]
    pub domain: Option<String>,
    /// The users a run created: a `migrate --id-map` CSV or an `import --report`
    /// (only `inserted` users are taken)
    #[arg(long, help_heading = "Selection (exactly one)")]
    pub id_map: Option<PathBuf>,
    /// A file of e-mails, one per line
    #[arg(long, help_heading = "Selection (exactly one)")]
    pub emails: Option<PathBuf>,
    /// Delete without asking (required when stdin is not a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Only list what would be deleted
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete users that do not look like what the selection made (another
    /// domain, a user that has logged in)
    #[arg(long)]
    pub force: bool,
    /// Write a JSON report with every selected user's outcome
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Resume journal: re-running with the same state skips users already deleted
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Requests in flight at once (default: 16 for Auth0, paced by its rate-limit
    /// headers; 4 for Authgear, each deleting up to 5 users)
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Auth0: only users of this database connection are looked up by e-mail
    #[arg(
        long,
        default_value = "Username-Password-Authentication",
        help_heading = "Auth0"
    )]
    pub connection: String,
    /// Auth0 credentials
    #[command(flatten, next_help_heading = "Auth0 credentials")]
    pub auth0: Auth0Creds,
    /// Authgear credentials
    #[command(flatten, next_help_heading = "Authgear credentials")]
    pub authgear: AuthgearCreds,
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
    /// Authgear: the project's reserved usernames, one per line (replaces the built-in list)
    #[arg(long = "reserved-usernames", value_name = "FILE")]
    pub reserved_usernames: Option<PathBuf>,
    /// Authgear: custom attributes as `import`/`convert` take them, `SRC=DST[:TYPE]`;
    /// values that do not fit their TYPE are reported (repeatable)
    #[arg(long = "custom-attribute", value_name = "SRC=DST[:TYPE]")]
    pub custom_attributes: Vec<String>,
    /// The file to check (`-`: stdin; `.gz` accepted)
    pub file: PathBuf,
}

/// Auth0 credentials and endpoint (flags override the environment and `.env`).
#[derive(Debug, Clone, Args)]
pub struct Auth0Creds {
    /// Tenant host (`dev-x.us.auth0.com`) or base URL; `http://` only for loopback hosts
    #[arg(long = "auth0-domain", env = "AUTH0_DOMAIN")]
    pub domain: Option<String>,
    /// A Management API access token (or use the client credentials)
    #[arg(long = "auth0-token", env = "AUTH0_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// Client id for the client-credentials grant
    #[arg(long = "auth0-client-id", env = "AUTH0_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Client secret for the client-credentials grant
    #[arg(
        long = "auth0-client-secret",
        env = "AUTH0_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<Secret>,
    /// Management API audience of the client-credentials request (default
    /// `https://{AUTH0_DOMAIN}/api/v2/`); with a custom domain, the canonical tenant's
    #[arg(long = "auth0-audience", env = "AUTH0_AUDIENCE")]
    pub audience: Option<String>,
}

/// Authgear credentials and endpoint (flags override the environment and `.env`).
#[derive(Debug, Clone, Args)]
pub struct AuthgearCreds {
    /// Project base URL (`https://myapp.authgear.cloud`); `http://` only for loopback hosts
    #[arg(long = "authgear-endpoint", env = "AUTHGEAR_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Project id: the Admin API JWT audience
    #[arg(long = "authgear-project-id", env = "AUTHGEAR_PROJECT_ID")]
    pub project_id: Option<String>,
    /// Admin API key id: the JWT `kid`
    #[arg(long = "authgear-key-id", env = "AUTHGEAR_KEY_ID")]
    pub key_id: Option<String>,
    /// Admin API RSA private key, PEM (PKCS#8 or PKCS#1)
    #[arg(long = "authgear-private-key-file", env = "AUTHGEAR_PRIVATE_KEY_FILE")]
    pub private_key_file: Option<PathBuf>,
    /// A ready-made Admin API JWT instead of the key
    #[arg(
        long = "authgear-admin-token",
        env = "AUTHGEAR_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<Secret>,
}

/// How to create Auth0 users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Auth0Mode {
    /// Bulk `users-imports` jobs (any size)
    Bulk,
    /// One `POST /api/v2/users` per user with a random password (at most 1,000 users)
    Create,
}

/// `authmigrate import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The provider to import into
    #[arg(long, value_enum)]
    pub to: Provider,
    /// User files: neutral NDJSON, Auth0 bulk-import array, Authgear import body,
    /// Auth0 or Authgear export NDJSON (`.gz` accepted, `-` for stdin)
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How the import runs
    #[command(flatten)]
    pub run: RunArgs,
    /// Auth0: the database connection's name
    #[arg(
        long,
        default_value = "Username-Password-Authentication",
        help_heading = "Auth0"
    )]
    pub connection: String,
    /// Auth0: e-mail every tenant owner when each job ends (Auth0's own default is on)
    #[arg(long, help_heading = "Auth0")]
    pub send_completion_email: bool,
    /// Auth0: a customer-defined id attached to every job
    #[arg(long, help_heading = "Auth0")]
    pub external_id: Option<String>,
    /// Auth0: bulk jobs, or single-user creation for small sets
    #[arg(long, value_enum, default_value_t = Auth0Mode::Bulk, help_heading = "Auth0")]
    pub mode: Auth0Mode,
    /// Auth0 `--mode create`: create password-change tickets and write `email,ticket` lines here (0600)
    #[arg(long, help_heading = "Auth0")]
    pub password_tickets: Option<PathBuf>,
    /// An Auth0 password-hash export (NDJSON, `_id.$oid` / `passwordHash`) to join to the
    /// users by id, then by e-mail (as `convert` and `migrate` do)
    #[arg(long, value_name = "FILE")]
    pub password_hashes: Option<PathBuf>,
    /// The Auth0 MFA export (NDJSON `{"user_id","type":"otp","otp_secret"}` rows) to join
    /// to the users by Auth0 user id; the inputs must be Auth0 user exports
    #[arg(long, value_name = "FILE")]
    pub mfa_secrets: Option<PathBuf>,
    /// Mapping options
    #[command(flatten)]
    pub map: MapArgs,
    /// Auth0 credentials
    #[command(flatten, next_help_heading = "Auth0 credentials")]
    pub auth0: Auth0Creds,
    /// Authgear credentials
    #[command(flatten, next_help_heading = "Authgear credentials")]
    pub authgear: AuthgearCreds,
}

/// `authmigrate sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Where to write the emulated Authgear project's private key (mode 0600)
    #[arg(long, default_value = "authmigrate-sandbox-key.pem")]
    pub key_file: PathBuf,
    /// How long each emulated import/export job takes, in milliseconds
    #[arg(long, default_value_t = 200)]
    pub job_latency_ms: u64,
    /// Also write the variables to this file (`.env` makes every authmigrate command
    /// run in this directory use the sandbox)
    #[arg(long)]
    pub env_file: Option<PathBuf>,
}

/// Targets of `convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConvertTarget {
    /// Neutral NDJSON
    Neutral,
    /// Auth0 bulk-import users
    Auth0,
    /// Authgear import records
    Authgear,
}

/// Options that change how records are mapped to a target.
#[derive(Debug, Clone, Args)]
pub struct MapArgs {
    /// Authgear: the login ID users are matched on
    #[arg(long, default_value = "email", help_heading = "Authgear")]
    pub identifier: String,
    /// Authgear: carry metadata into a declared custom attribute, `SRC=DST[:TYPE]`
    /// (e.g. `user_metadata.plan=plan`, `user_metadata.age=age:integer:0:150`); TYPE is
    /// string, number[:MIN:MAX], integer[:MIN:MAX], enum:A|B, phone_number, email, url
    /// or country_code; repeatable
    #[arg(
        long = "custom-attribute",
        value_name = "SRC=DST[:TYPE]",
        help_heading = "Authgear"
    )]
    pub custom_attributes: Vec<String>,
    /// Authgear: the project's reserved usernames, one per line; replaces the
    /// built-in list (`test`, `user`, `api`, `guest`, `www`, `admin`, `root`, `support`)
    #[arg(
        long = "reserved-usernames",
        value_name = "FILE",
        help_heading = "Authgear"
    )]
    pub reserved_usernames: Option<PathBuf>,
}

/// `authmigrate convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The target format
    #[arg(long, value_enum)]
    pub to: ConvertTarget,
    /// The input file (any supported format; `.gz` accepted; `-` for stdin)
    pub input: PathBuf,
    /// Output: `.ndjson`/`.jsonl` one record per line (any size); `.json` one
    /// ready-to-upload document, refused if over the provider's upload limit; `.gz` appended compresses
    #[arg(long)]
    pub out: PathBuf,
    /// An Auth0 password-hash export (NDJSON, `_id.$oid` / `passwordHash`) to join to the
    /// users by id, then by e-mail
    #[arg(long)]
    pub password_hashes: Option<PathBuf>,
    /// The Auth0 MFA export (NDJSON `{"user_id","type":"otp","otp_secret"}` rows) to join
    /// to the users by Auth0 user id; the input must be an Auth0 user export
    #[arg(long, value_name = "FILE")]
    pub mfa_secrets: Option<PathBuf>,
    /// Write a JSON report of every record: converted or failed, with what was left out
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Mapping options
    #[command(flatten)]
    pub map: MapArgs,
}

/// `authmigrate export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The provider to export from
    #[arg(long, value_enum)]
    pub from: Provider,
    /// Output NDJSON file (gzip if it ends in `.gz`); created 0600
    #[arg(long)]
    pub out: PathBuf,
    /// Auth0: export only this connection (default: every connection)
    #[arg(long, help_heading = "Auth0")]
    pub connection: Option<String>,
    /// The longest wait for the provider's export job before the export stops with an
    /// error naming the job (`90s`, `30m`, `2h`)
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = authmigrate_core::driver::parse_duration)]
    pub export_timeout: std::time::Duration,
    /// Auth0 credentials
    #[command(flatten, next_help_heading = "Auth0 credentials")]
    pub auth0: Auth0Creds,
    /// Authgear credentials
    #[command(flatten, next_help_heading = "Authgear credentials")]
    pub authgear: AuthgearCreds,
}

/// `authmigrate migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The provider to move users from
    #[arg(long, value_enum)]
    pub from: Provider,
    /// The provider to move users to
    #[arg(long, value_enum)]
    pub to: Provider,
    /// Where the export and the run's files are kept (reused when resuming with `--state`)
    #[arg(long, default_value = "authmigrate-migration")]
    pub work_dir: PathBuf,
    /// An Auth0 password-hash export (from Auth0 support) to join to the users
    #[arg(long)]
    pub password_hashes: Option<PathBuf>,
    /// After a finished `migrate` (same `--state` and `--work-dir`): export the source
    /// again and send only the users that are new or changed since the last pass
    #[arg(long)]
    pub delta: bool,
    /// With `--delta`: also delete, at the target, the users gone from the source
    /// (asked like `delete`; `--yes` in scripts)
    #[arg(long, requires = "delta")]
    pub delete_removed: bool,
    /// With `--delete-removed`: delete without asking
    #[arg(long, requires = "delete_removed")]
    pub yes: bool,
    /// The longest wait for the provider's export job before the export stops with an
    /// error naming the job (`90s`, `30m`, `2h`)
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = authmigrate_core::driver::parse_duration)]
    pub export_timeout: std::time::Duration,
    /// How the import runs
    #[command(flatten)]
    pub run: RunArgs,
    /// Write a CSV of source user id -> target user id
    #[arg(long)]
    pub id_map: Option<PathBuf>,
    /// To Auth0: create password-change tickets for imported users that have no
    /// password and write `email,ticket` lines here (0600)
    #[arg(long)]
    pub password_reset_tickets: Option<PathBuf>,
    /// Auth0 (source or target): the database connection's name
    #[arg(
        long,
        default_value = "Username-Password-Authentication",
        help_heading = "Auth0"
    )]
    pub connection: String,
    /// Auth0 target: e-mail tenant owners when each job ends
    #[arg(long, help_heading = "Auth0")]
    pub send_completion_email: bool,
    /// Mapping options
    #[command(flatten)]
    pub map: MapArgs,
    /// Leave part of the tenant behind: `roles`, `groups` (Auth0 organizations /
    /// Authgear groups), `mfa` (repeatable or comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', help_heading = "Tenant")]
    pub skip: Vec<Skip>,
    /// Give an Auth0 role this Authgear key instead of the one the key rule makes
    /// (repeatable)
    #[arg(long, value_name = "NAME=KEY", value_parser = parse_role_map, help_heading = "Tenant")]
    pub role_map: Vec<(String, String)>,
    /// The Auth0 MFA export (NDJSON `{"user_id","type":"otp","otp_secret"}` rows) to
    /// join to the users
    #[arg(long, value_name = "FILE", help_heading = "Tenant")]
    pub mfa_secrets: Option<PathBuf>,
    /// Auth0 credentials
    #[command(flatten, next_help_heading = "Auth0 credentials")]
    pub auth0: Auth0Creds,
    /// Authgear credentials
    #[command(flatten, next_help_heading = "Authgear credentials")]
    pub authgear: AuthgearCreds,
}

/// `authmigrate verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The provider the users came from
    #[arg(long, value_enum)]
    pub from: Provider,
    /// The provider they were moved to
    #[arg(long, value_enum)]
    pub to: Provider,
    /// Read the source users from this export (any supported user file; `.gz`
    /// accepted) instead of running the source's export job
    #[arg(long)]
    pub source_file: Option<PathBuf>,
    /// Read the target users from this export instead of running the target's export job
    #[arg(long)]
    pub target_file: Option<PathBuf>,
    /// An Auth0 password-hash export to join to the source users (as `migrate` did)
    #[arg(long)]
    pub password_hashes: Option<PathBuf>,
    /// Auth0 target: its password-hash export, so that whether each user's password was
    /// carried is compared (no user export tells)
    #[arg(long)]
    pub target_password_hashes: Option<PathBuf>,
    /// Pair users by the CSV `migrate --id-map` wrote (else by e-mail, username, phone)
    #[arg(long)]
    pub id_map: Option<PathBuf>,
    /// Write `{"summary":{...},"differences":[...]}` here
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Where the exports and the scratch store are kept
    #[arg(long, default_value = "authmigrate-verify")]
    pub work_dir: PathBuf,
    /// The longest wait for each export job (`90s`, `30m`, `2h`)
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = authmigrate_core::driver::parse_duration)]
    pub export_timeout: std::time::Duration,
    /// Auth0 (source or target): the database connection's name
    #[arg(
        long,
        default_value = "Username-Password-Authentication",
        help_heading = "Auth0"
    )]
    pub connection: String,
    /// Mapping options (as given to `migrate`)
    #[command(flatten)]
    pub map: MapArgs,
    /// Do not compare these, as `migrate --skip` left them behind: `roles`, `groups`,
    /// `mfa` (repeatable or comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', help_heading = "Tenant")]
    pub skip: Vec<Skip>,
    /// `--role-map NAME=KEY` as given to `migrate` (the Authgear key of an Auth0 role)
    #[arg(long, value_name = "NAME=KEY", value_parser = parse_role_map, help_heading = "Tenant")]
    pub role_map: Vec<(String, String)>,
    /// The Auth0 MFA export given to `migrate`: its TOTP users are expected to hold TOTP
    /// at the target
    #[arg(long, value_name = "FILE", help_heading = "Tenant")]
    pub mfa_secrets: Option<PathBuf>,
    /// Sandbox only: log N sampled matched users in at the Authgear target with the
    /// password `generate` gave them (their username) and, for TOTP users, a code;
    /// each refusal is a difference
    #[arg(long, value_name = "N")]
    pub login_check: Option<u64>,
    /// Auth0 credentials
    #[command(flatten, next_help_heading = "Auth0 credentials")]
    pub auth0: Auth0Creds,
    /// Authgear credentials
    #[command(flatten, next_help_heading = "Authgear credentials")]
    pub authgear: AuthgearCreds,
}

/// What `migrate --skip` leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Skip {
    /// Roles (and their members)
    Roles,
    /// Groups / organizations (and their members)
    Groups,
    /// MFA enrolments
    Mfa,
}

fn parse_role_map(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, k)) if !n.is_empty() && !k.is_empty() => Ok((n.to_owned(), k.to_owned())),
        _ => Err(format!("`{s}` is not NAME=KEY")),
    }
}

/// `authmigrate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many test users
    #[arg(long, default_value_t = 200)]
    pub count: u64,
    /// Keep the demo's files (generated users, exports, reports) in this directory
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

impl Default for MapArgs {
    fn default() -> Self {
        Self {
            identifier: "email".into(),
            custom_attributes: Vec::new(),
            reserved_usernames: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_parsed_arguments_shows_no_secret() {
        let cli = Cli::try_parse_from([
            "authmigrate",
            "import",
            "--to",
            "auth0",
            "users.json",
            "--auth0-token",
            "tok-SECRET-1",
            "--auth0-client-secret",
            "cs-SECRET-2",
            "--authgear-admin-token",
            "adm-SECRET-3",
        ])
        .unwrap();
        let dbg = format!("{cli:?}");
        for secret in ["tok-SECRET-1", "cs-SECRET-2", "adm-SECRET-3"] {
            assert!(!dbg.contains(secret), "{secret} leaked: {dbg}");
        }
        let cli = Cli::try_parse_from([
            "authmigrate",
            "generate",
            "--count",
            "1",
            "--password",
            "pw-SECRET-4",
        ])
        .unwrap();
        assert!(!format!("{cli:?}").contains("pw-SECRET-4"));
    }
}

/// The options of an import run, shared by `import` and `migrate`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Update users that already exist at the target
    #[arg(long)]
    pub upsert: bool,
    /// Plan the import (uploads, bytes, fill) and send nothing to the target
    #[arg(long)]
    pub dry_run: bool,
    /// Write a JSON report with every record's outcome
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Resume journal: re-running the same command with the same state continues
    /// where it stopped, never resubmitting finished work
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The longest one stretch of provider back-pressure (Auth0 busy: its job
    /// limit is reached) is waited for before the run stops (`90s`, `30m`, `2h`)
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = authmigrate_core::driver::parse_duration)]
    pub wait_timeout: std::time::Duration,
    /// Authgear, with `--dry-run`: the project's daily import quota (records), to
    /// show how many days the import needs
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub daily_quota: Option<u64>,
}
