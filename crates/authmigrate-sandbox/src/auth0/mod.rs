//! The Auth0 Management API emulator.
//!
//! Follows `shared/docs/auth0-api.md`: `/oauth/token` (client credentials and the
//! password-realm grant), `/api/v2/connections`, bulk import and export jobs, single-user
//! creation, users search and password-change tickets, plus the sandbox-only helpers
//! under `/_sandbox/auth0/` (export downloads and the password-hash export that real
//! Auth0 only gives through a support ticket).
//!
//! State lives in memory behind one mutex. Jobs complete `job_latency` after creation:
//! lazily whenever any request or accessor looks at the state, and also from a timer.

mod clock;
mod export;
mod handlers;
mod import;
pub mod mfa;
mod orgs;
mod paging;
mod rbac;
mod users;
mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use self::clock::Clock;
use crate::faults::Faults;
use crate::passwords::{self, StoredPassword};

/// The default M2M client id of the sandbox tenant.
pub const DEFAULT_CLIENT_ID: &str = "sandbox-client";
/// The default M2M client secret of the sandbox tenant.
pub const DEFAULT_CLIENT_SECRET: &str = "sandbox-secret";
/// The scopes granted to the M2M client by default (everything authmigrate needs).
pub const DEFAULT_SCOPES: &[&str] = &[
    "read:users",
    "create:users",
    "delete:users",
    "read:connections",
    "update:connections",
    "create:user_tickets",
    "update:users",
    "read:roles",
    "create:roles",
    "update:roles",
    "read:role_members",
    "create:role_members",
    "delete:role_members",
    "read:resource_servers",
    "read:organizations",
    "create:organizations",
    "read:organization_members",
    "create:organization_members",
    "delete:organization_members",
    "read:organization_member_roles",
    "create:organization_member_roles",
];

/// One connection of the emulated tenant.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `con_` + 16 alphanumerics; `None` generates one (deterministically).
    pub id: Option<String>,
    /// The connection name (the `realm` of the password-realm grant).
    pub name: String,
    /// `auth0` for database connections, `email`/`sms` for passwordless, etc.
    pub strategy: String,
    /// Whether the sandbox's M2M client is enabled on it (else no client is).
    pub enabled_for_client: bool,
    /// Whether the connection requires a username.
    pub requires_username: bool,
    /// The password policy `POST /api/v2/users` enforces (`None`: any password).
    pub password_policy: Option<PasswordPolicy>,
    /// `options.validation.username {min, max}` (`None`: the API's 1..=128).
    pub username_length: Option<(usize, usize)>,
}

impl ConnectionConfig {
    /// A connection with no password policy and no username rules.
    pub fn new(name: &str, strategy: &str, enabled: bool) -> Self {
        Self {
            id: None,
            name: name.to_owned(),
            strategy: strategy.to_owned(),
            enabled_for_client: enabled,
            requires_username: false,
            password_policy: None,
            username_length: None,
        }
    }
}

/// A database connection's password policy (auth0-api.md §6 (NEW)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// `options.password_complexity_options.min_length`.
    pub min_length: usize,
    /// At most this many identical characters in a row ("excellent": 2).
    pub max_identical_in_row: Option<usize>,
    /// Lower case, upper case, digit and special character all required.
    pub all_character_classes: bool,
    /// Refuse three or more sequential characters (`abc`, `123`, `cba`), as a flexible
    /// policy can.
    pub block_sequential: bool,
}

impl PasswordPolicy {
    /// The strictest built-in level, "excellent": no more than 2 identical characters in
    /// a row, every character class, and `min_length`.
    pub fn excellent(min_length: usize) -> Self {
        Self {
            min_length,
            max_identical_in_row: Some(2),
            all_character_classes: true,
            block_sequential: false,
        }
    }

    /// "excellent" plus the flexible policy's sequential-character block.
    pub fn strictest(min_length: usize) -> Self {
        Self {
            block_sequential: true,
            ..Self::excellent(min_length)
        }
    }

    /// Whether `password` satisfies the policy.
    pub fn allows(&self, password: &str) -> bool {
        let chars: Vec<char> = password.chars().collect();
        if chars.len() < self.min_length {
            return false;
        }
        if self.all_character_classes {
            let classes = [
                chars.iter().any(char::is_ascii_lowercase),
                chars.iter().any(char::is_ascii_uppercase),
                chars.iter().any(char::is_ascii_digit),
                chars.iter().any(|c| !c.is_ascii_alphanumeric()),
            ];
            if classes.contains(&false) {
                return false;
            }
        }
        if let Some(max) = self.max_identical_in_row
            && chars.windows(max + 1).any(|w| w.iter().all(|c| *c == w[0]))
        {
            return false;
        }
        if self.block_sequential
            && chars.windows(3).any(|w| {
                let (a, b, c) = (w[0] as i64, w[1] as i64, w[2] as i64);
                w.iter().all(char::is_ascii_alphanumeric)
                    && ((b - a == 1 && c - b == 1) || (a - b == 1 && b - c == 1))
            })
        {
            return false;
        }
        true
    }
}

/// The emulated tenant's settings.
#[derive(Clone)]
pub struct Auth0Config {
    /// Tenant name (used in export file names and the password-hash export).
    pub tenant: String,
    /// The M2M client id (default [`DEFAULT_CLIENT_ID`]).
    pub client_id: String,
    /// The M2M client secret (default [`DEFAULT_CLIENT_SECRET`]).
    pub client_secret: String,
    /// Scopes granted to the M2M client (default [`DEFAULT_SCOPES`]).
    pub scopes: Vec<String>,
    /// Connections. Default: `Username-Password-Authentication` (auth0, enabled),
    /// `Disabled-DB` (auth0, no enabled clients) and `email` (passwordless, enabled).
    pub connections: Vec<ConnectionConfig>,
    /// Access-token lifetime (default 86400 s).
    pub token_lifetime: Duration,
    /// Maximum import jobs not yet completed (default 2).
    pub max_active_import_jobs: usize,
    /// Maximum import request content in bytes (default 512000).
    pub max_upload_bytes: usize,
    /// How long an export `location` stays valid (default 60 s).
    pub export_link_ttl: Duration,
    /// bcrypt cost used by `POST /api/v2/users` (default 10).
    pub bcrypt_cost: u32,
    /// The canonical tenant domain (`tenant.eu.auth0.com`), for tenants reached through
    /// a custom domain: the client-credentials `audience` must then be
    /// `https://{canonical_domain}/api/v2/`. `None`: `{base_url}/api/v2/`.
    pub canonical_domain: Option<String>,
    /// How far the emulator's clock starts ahead of real time (default 0).
    pub clock_offset: Duration,
    /// An import job still running after this long ends `failed` (default 2 h).
    pub job_timeout: Duration,
    /// Job data is deleted this long after creation (default 24 h).
    pub job_retention: Duration,
}

impl Default for Auth0Config {
    fn default() -> Self {
        Self {
            tenant: "sandbox".to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            connections: vec![
                ConnectionConfig::new("Username-Password-Authentication", "auth0", true),
                ConnectionConfig::new("Disabled-DB", "auth0", false),
                ConnectionConfig::new("email", "email", true),
            ],
            token_lifetime: Duration::from_secs(86_400),
            max_active_import_jobs: 2,
            max_upload_bytes: 512_000,
            export_link_ttl: Duration::from_secs(60),
            bcrypt_cost: 10,
            canonical_domain: None,
            clock_offset: Duration::ZERO,
            job_timeout: Duration::from_secs(2 * 3600),
            job_retention: Duration::from_secs(24 * 3600),
        }
    }
}

impl std::fmt::Debug for Auth0Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth0Config")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("connections", &self.connections)
            .field("token_lifetime", &self.token_lifetime)
            .field("max_active_import_jobs", &self.max_active_import_jobs)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("export_link_ttl", &self.export_link_ttl)
            .field("bcrypt_cost", &self.bcrypt_cost)
            .field("canonical_domain", &self.canonical_domain)
            .field("clock_offset", &self.clock_offset)
            .field("job_timeout", &self.job_timeout)
            .field("job_retention", &self.job_retention)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) strategy: String,
    pub(crate) enabled_clients: Vec<String>,
    pub(crate) requires_username: bool,
    pub(crate) password_policy: Option<PasswordPolicy>,
    pub(crate) username_length: Option<(usize, usize)>,
}

impl Connection {
    pub(crate) fn is_database(&self) -> bool {
        self.strategy == "auth0"
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "display_name": self.name,
            "strategy": self.strategy,
            "realms": [self.name],
            "is_domain_connection": false,
            "options": if self.is_database() {
                self.database_options()
            } else {
                json!({})
            },
        })
    }

    /// `options` of a database connection: `passwordPolicy`,
    /// `password_complexity_options.min_length` and `validation.username {min, max}`
    /// (field names from the OAS `ConnectionOptionsAuth0`, see auth0-api.md §6).
    fn database_options(&self) -> Value {
        let mut o = Map::new();
        o.insert("requires_username".into(), json!(self.requires_username));
        o.insert("import_mode".into(), json!(false));
        match &self.password_policy {
            Some(p) => {
                let level =
                    if p.max_identical_in_row.is_some_and(|m| m <= 2) && p.all_character_classes {
                        "excellent"
                    } else {
                        "good"
                    };
                o.insert("passwordPolicy".into(), json!(level));
                o.insert(
                    "password_complexity_options".into(),
                    json!({"min_length": p.min_length}),
                );
            }
            None => {
                o.insert("passwordPolicy".into(), json!("none"));
            }
        }
        if let Some((min, max)) = self.username_length {
            o.insert(
                "validation".into(),
                json!({"username": {"min": min, "max": max}}),
            );
            o.insert(
                "attributes".into(),
                json!({"username": {"validation": {"min_length": min, "max_length": max}}}),
            );
        }
        Value::Object(o)
    }
}

/// A stored user.
#[derive(Clone)]
pub(crate) struct User {
    /// 24 hex digits, like a MongoDB ObjectId.
    pub(crate) oid: String,
    /// The custom id given at import or creation, without `auth0|`.
    pub(crate) alt_id: Option<String>,
    pub(crate) connection: String,
    pub(crate) profile: Map<String, Value>,
    pub(crate) password: Option<StoredPassword>,
    pub(crate) password_set_date: Option<String>,
    pub(crate) logged_in_with_imported_hash: bool,
    pub(crate) logins_count: u64,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) last_login: Option<String>,
    /// Imported `mfa_factors` (secrets stay here; never shown by the API).
    pub(crate) mfa_factors: Vec<Value>,
}

impl User {
    pub(crate) fn user_id(&self) -> String {
        format!("auth0|{}", self.alt_id.as_deref().unwrap_or(&self.oid))
    }

    pub(crate) fn str_field(&self, key: &str) -> Option<&str> {
        self.profile.get(key).and_then(Value::as_str)
    }

    pub(crate) fn blocked(&self) -> bool {
        self.profile
            .get("blocked")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The Auth0 user profile (never any password material).
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        let uid = self.user_id();
        m.insert("user_id".into(), json!(uid));
        for key in [
            "email",
            "email_verified",
            "username",
            "phone_number",
            "phone_verified",
            "name",
            "nickname",
            "given_name",
            "family_name",
            "picture",
            "blocked",
        ] {
            if let Some(v) = self.profile.get(key) {
                m.insert(key.into(), v.clone());
            }
        }
        if !m.contains_key("email_verified") && m.contains_key("email") {
            m.insert("email_verified".into(), json!(false));
        }
        for key in ["app_metadata", "user_metadata"] {
            m.insert(
                key.into(),
                self.profile.get(key).cloned().unwrap_or_else(|| json!({})),
            );
        }
        m.insert(
            "identities".into(),
            json!([{
                "connection": self.connection,
                "provider": "auth0",
                "user_id": uid.trim_start_matches("auth0|"),
                "isSocial": false,
            }]),
        );
        m.insert("created_at".into(), json!(self.created_at));
        m.insert("updated_at".into(), json!(self.updated_at));
        m.insert("logins_count".into(), json!(self.logins_count));
        if let Some(l) = &self.last_login {
            m.insert("last_login".into(), json!(l));
        }
        Value::Object(m)
    }
}

/// A job's request. `Debug` shows counts only: the users carry password hashes.
#[derive(Clone)]
pub(crate) enum JobKind {
    Import {
        connection_id: String,
        connection: String,
        upsert: bool,
        external_id: Option<String>,
        send_completion_email: bool,
        users: Vec<Value>,
        fails: bool,
    },
    Export {
        connection_id: Option<String>,
        connection: Option<String>,
        format: String,
        fields: Option<Vec<Value>>,
        limit: Option<u64>,
    },
}

impl std::fmt::Debug for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobKind::Import {
                connection,
                upsert,
                users,
                ..
            } => f
                .debug_struct("Import")
                .field("connection", connection)
                .field("upsert", upsert)
                .field("users", &users.len())
                .finish_non_exhaustive(),
            JobKind::Export { connection, .. } => f
                .debug_struct("Export")
                .field("connection", connection)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum JobOutcome {
    Import {
        summary: [u64; 4],
        errors: Vec<Value>,
    },
    Failed,
    Export {
        gz: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) kind: JobKind,
    pub(crate) created_at: String,
    pub(crate) created: Instant,
    pub(crate) latency: Duration,
    pub(crate) outcome: Option<JobOutcome>,
    /// End `failed` after processing this many users (fault or 2-hour timeout).
    pub(crate) fail_after: Option<usize>,
    /// Why the job failed (`status_details`).
    pub(crate) failure: Option<String>,
}

impl Job {
    fn is_active_import(&self) -> bool {
        matches!(self.kind, JobKind::Import { .. }) && self.outcome.is_none()
    }
}

#[derive(Debug, Clone)]
struct Token {
    client_id: String,
    expires: Instant,
}

#[derive(Debug, Clone)]
struct ExportLink {
    job_id: String,
    expires: Instant,
}

/// A password-change ticket created through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    /// The user the ticket is for.
    pub user_id: String,
    /// The ticket URL returned to the caller.
    pub url: String,
    /// Requested lifetime in seconds (432000 when 0 or missing).
    pub ttl_sec: u64,
}

pub(crate) struct Inner {
    pub(crate) connections: Vec<Connection>,
    pub(crate) users: Vec<User>,
    pub(crate) jobs: Vec<Job>,
    tokens: HashMap<String, Token>,
    export_links: HashMap<String, ExportLink>,
    pub(crate) tickets: Vec<Ticket>,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) import_jobs_created: u32,
    pub(crate) completion_emails: u32,
    pub(crate) max_active_seen: usize,
    pub(crate) clock: Arc<Clock>,
    pub(crate) rbac: rbac::Rbac,
    pub(crate) mfa: mfa::MfaState,
    /// `user_id` → position in `users`; rebuilt on demand after [`Inner::users_changed`].
    user_index: std::cell::RefCell<Option<HashMap<String, usize>>>,
}

impl Inner {
    pub(crate) fn random_alnum(&mut self, n: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| CHARS[self.rng.gen_range(0..CHARS.len())] as char)
            .collect()
    }

    pub(crate) fn new_oid(&mut self) -> String {
        let bytes: [u8; 12] = self.rng.r#gen();
        hex::encode(bytes)
    }

    pub(crate) fn connection_by_id(&self, id: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.id == id)
    }

    pub(crate) fn connection_by_name(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// Must follow every change to `users` (insert, delete).
    pub(crate) fn users_changed(&self) {
        self.user_index.replace(None);
    }

    /// The position of the user with this `user_id` (`auth0|…`).
    pub(crate) fn user_pos(&self, user_id: &str) -> Option<usize> {
        let mut cache = self.user_index.borrow_mut();
        let index = cache.get_or_insert_with(|| {
            self.users
                .iter()
                .enumerate()
                .map(|(i, u)| (u.user_id(), i))
                .collect()
        });
        index.get(user_id).copied()
    }

    pub(crate) fn now_iso(&self) -> String {
        self.clock.now_iso()
    }

    fn active_imports(&self) -> usize {
        self.jobs.iter().filter(|j| j.is_active_import()).count()
    }
}

/// The emulated tenant's state.
pub struct Auth0State {
    config: Auth0Config,
    base_url: String,
    faults: Arc<Faults>,
    clock: Arc<Clock>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Auth0State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth0State")
            .field("config", &self.config)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Auth0State {
    /// A fresh tenant served at `base_url` (`http://127.0.0.1:PORT`, used for the token
    /// audience `{base_url}/api/v2/` and for download and ticket URLs).
    pub fn new(config: Auth0Config, faults: Arc<Faults>, base_url: String) -> Self {
        let clock = Arc::new(Clock::new(config.clock_offset));
        let mut inner = Inner {
            connections: Vec::new(),
            users: Vec::new(),
            jobs: Vec::new(),
            tokens: HashMap::new(),
            export_links: HashMap::new(),
            tickets: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(0x0a07_0001),
            import_jobs_created: 0,
            completion_emails: 0,
            max_active_seen: 0,
            clock: clock.clone(),
            rbac: rbac::Rbac::default(),
            mfa: mfa::MfaState::default(),
            user_index: std::cell::RefCell::new(None),
        };
        for c in &config.connections {
            let id = match &c.id {
                Some(id) => id.clone(),
                None => format!("con_{}", inner.random_alnum(16)),
            };
            inner.connections.push(Connection {
                id,
                name: c.name.clone(),
                strategy: c.strategy.clone(),
                enabled_clients: if c.enabled_for_client {
                    vec![config.client_id.clone()]
                } else {
                    Vec::new()
                },
                requires_username: c.requires_username,
                password_policy: c.password_policy,
                username_length: c.username_length,
            });
        }
        Self {
            config,
            base_url,
            faults,
            clock,
            inner: Mutex::new(inner),
        }
    }

    /// Moves the emulator's clock forward (job timeouts and retention, token and link
    /// expiry all follow it).
    pub fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// How far the emulator's clock is ahead of real time.
    pub fn clock_offset(&self) -> Duration {
        self.clock.offset()
    }

    /// The settings this tenant runs with.
    pub fn config(&self) -> &Auth0Config {
        &self.config
    }

    /// The sandbox's M2M client id.
    pub fn client_id(&self) -> &str {
        &self.config.client_id
    }

    /// The sandbox's M2M client secret.
    pub fn client_secret(&self) -> &str {
        &self.config.client_secret
    }

    /// The audience the token endpoint expects: `https://{canonical_domain}/api/v2/`
    /// when a canonical domain is configured, else `{base_url}/api/v2/`.
    pub fn audience(&self) -> String {
        match &self.config.canonical_domain {
            Some(d) => format!("https://{d}/api/v2/"),
            None => format!("{}/api/v2/", self.base_url),
        }
    }

    /// The id of the connection called `name`.
    pub fn connection_id(&self, name: &str) -> Option<String> {
        self.lock().connection_by_name(name).map(|c| c.id.clone())
    }

    /// Locks the state after completing every job that is due.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        import::complete_due_jobs(&mut inner, &self.config);
        inner
    }

    /// Every stored user as an Auth0 user profile (no password material).
    pub fn users(&self) -> Vec<Value> {
        self.lock().users.iter().map(User::to_json).collect()
    }

    /// The user with this email (any connection, case-insensitive: Auth0 keeps e-mails
    /// lower-cased), as a profile.
    pub fn user_by_email(&self, email: &str) -> Option<Value> {
        self.lock()
            .users
            .iter()
            .find(|u| {
                u.str_field("email")
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .map(User::to_json)
    }

    /// How many jobs (import and export) were created.
    pub fn jobs_created(&self) -> usize {
        self.lock().jobs.len()
    }

    /// How many import jobs asked for `send_completion_email=true` (the API default
    /// when the field is left out).
    pub fn completion_emails_requested(&self) -> u32 {
        self.lock().completion_emails
    }

    /// The largest number of import jobs that were active at the same time.
    pub fn max_active_jobs_seen(&self) -> usize {
        self.lock().max_active_seen
    }

    /// Password-change tickets created so far.
    pub fn tickets(&self) -> Vec<Ticket> {
        self.lock().tickets.clone()
    }

    /// Whether the user with this email has a stored password that `password` matches.
    pub fn check_password(&self, email: &str, password: &str) -> bool {
        let stored = self
            .lock()
            .users
            .iter()
            .find(|u| {
                u.str_field("email")
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .and_then(|u| u.password.clone());
        stored.is_some_and(|s| passwords::verify(password, &s))
    }

    fn issue_token(&self, client_id: &str) -> (String, u64) {
        let mut inner = self.lock();
        let token = inner.random_alnum(48);
        inner.tokens.insert(
            token.clone(),
            Token {
                client_id: client_id.to_owned(),
                expires: self.clock.now() + self.config.token_lifetime,
            },
        );
        (token, self.config.token_lifetime.as_secs())
    }

    /// The client id behind a bearer token, if valid and not expired.
    fn token_client(&self, token: &str) -> Option<String> {
        let inner = self.lock();
        let t = inner.tokens.get(token)?;
        (self.clock.now() < t.expires).then(|| t.client_id.clone())
    }

    fn new_export_link(&self, inner: &mut Inner, job_id: &str) -> String {
        let token = inner.random_alnum(32);
        inner.export_links.insert(
            token.clone(),
            ExportLink {
                job_id: job_id.to_owned(),
                expires: self.clock.now() + self.config.export_link_ttl,
            },
        );
        format!(
            "{}/_sandbox/auth0/exports/{job_id}/{token}.json.gz",
            self.base_url
        )
    }
}

/// The tenant's routes (`/oauth/token`, `/api/v2/...`, `/_sandbox/auth0/...`).
pub fn router(state: Arc<Auth0State>) -> axum::Router {
    handlers::routes(state)
}

/// The canonical reason phrase Auth0 puts in `error`.
fn reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

/// A Management API error: `{"statusCode","error","message","errorCode"}`.
pub(crate) fn api_error(status: StatusCode, message: &str, error_code: &str) -> Response {
    (
        status,
        Json(json!({
            "statusCode": status.as_u16(),
            "error": reason(status),
            "message": message,
            "errorCode": error_code,
        })),
    )
        .into_response()
}
