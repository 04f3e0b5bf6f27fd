//! The Authgear Admin API emulator: user import, user export and admin-JWT auth, as
//! `shared/docs/authgear-api.md` describes the server's *code* (§1, §2, §4, §5).
//!
//! # Routes
//! Admin routes (all behind the admin JWT check of §4.1; any failure is a 403 with the
//! plain-text body `Forbidden\n`, exactly what Go's `http.Error` writes):
//! - `POST /_api/admin/users/import`: content-type, 500,000-byte body limit (413
//!   `JSONTooLarge`), top-level schema (400 `ValidationFailed`), usage limit (429
//!   `UsageLimitExceeded`); answers `{"result": {"id": "userimport_…", "status": "pending", …}}`.
//! - `GET /_api/admin/users/import/{id}`: the job, `pending` until every task is done,
//!   then `completed` with `summary` and `details`; unknown ids give 404 `TaskNotFound`.
//! - `POST /_api/admin/users/export` and `GET /_api/admin/users/export/{id}`: NDJSON
//!   exports; a completed export gets a fresh `download_url` on every GET.
//!
//! - `POST /_api/admin/graphql`: the Admin GraphQL API (see the `graphql` module).
//!
//! A non-JSON body on any admin route is a 415 `text/plain` `invalid content type: …`,
//! after the JWT check.
//!
//! Sandbox-only routes (no admin auth, no faults):
//! - `GET /_sandbox/authgear/exports/{key}?token=…`: the presigned download; it expires
//!   after [`AuthgearConfig::download_url_ttl`] (403 `Request has expired` afterwards).
//! - `POST /_sandbox/authgear/login` with `{"login_id", "password", "totp"?}`: an end
//!   user's login, with a TOTP code for users that have one (see the `login` module).
//! - `GET`/`POST /_sandbox/authgear/clock`: the project clock, `{"now": RFC 3339}` or
//!   `{"advance": "25h"}` (quota periods, job expiry, account validity, TOTP).
//! - `POST /_sandbox/authgear/import-faults` with `{"nth": n, "fault": "error500" |
//!   "drop" | null}`: the nth accepted import POST (0-based) answers 500 or drops the
//!   connection after its job was created (the job runs), for in-doubt tests.
//!
//! # Jobs
//! An import is cut into tasks of [`AuthgearConfig::records_per_task`] records. Task `i`
//! of `n` completes `job_latency × (i + 1) / n` after the POST (the latency comes from
//! [`Faults::job_latency`]); tasks of all jobs are processed one at a time, in order,
//! like Authgear's single queue consumer. [`AuthgearState::pause_jobs`] holds all
//! processing, so tests can observe `pending` deterministically. An import job whose
//! creation number is listed in the fault config's `fail_jobs` ends `completed` with an
//! `error` (`InternalError`/`UnexpectedError`), no details and a zero summary, as a task
//! that errored would in Authgear (there is no `failed` status).
//!
//! # Approximations
//! - `phone` format: E.164 shape only (`+`, 7 to 15 digits, no leading 0), not
//!   libphonenumber's `isValidNumber`.
//! - `email` format: a dot-atom or quoted local part, `@`, and a dot-atom or literal
//!   domain, no display name (Go's `net/mail.ParseAddress` is more lenient in places).
//! - `bcp47` locale: a structural check of the canonical form (`en`, `zh-Hant-HK`,
//!   `en-US`; `en_US` and `en-us` fail), not golang.org/x/text canonicalisation.
//! - `timezone`: must contain `/` and be found in the IANA database that jiff sees.
//! - username login IDs: at most 40 bytes trimmed, ASCII letters, digits, `_`, `-`, `.`,
//!   and the docs' eight reserved names unless the config gives the project's list (no
//!   PRECIS or confusable-character check).
//! - the usage quota counts only `user_import`, with `block` limits.
//! - `bcrypt-sha512` hashes are accepted on import but never verify at login.

mod api;
mod attrs;
mod auth;
mod export;
mod graphql;
mod import;
mod login;
mod quota;
mod roles;
mod schema;
mod store;
mod totp;
mod username;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Map, Value};

use crate::faults::Faults;

pub use attrs::{AttributeType, CustomAttribute};
pub use store::AuthgearUser;
pub use username::BUILT_IN_RESERVED;

/// The key id used when [`AuthgearConfig::key_id`] is left at its default.
pub const DEFAULT_KEY_ID: &str = "6b1e3c2a-4f5d-4e8b-9a7c-0d2f1e3b5a79";

/// Which login-ID keys (`identity.login_id.keys`) the project allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginIdKeys {
    /// The `email` key.
    pub email: bool,
    /// The `phone` key.
    pub phone: bool,
    /// The `username` key.
    pub username: bool,
}

impl Default for LoginIdKeys {
    fn default() -> Self {
        Self {
            email: true,
            phone: true,
            username: true,
        }
    }
}

/// The emulated project's settings.
#[derive(Clone)]
pub struct AuthgearConfig {
    /// The project (app) id; admin JWTs must carry it in `aud`. Default `sandbox`.
    pub project_id: String,
    /// The admin key's id; admin JWTs must carry it as `kid`. Default [`DEFAULT_KEY_ID`].
    pub key_id: String,
    /// The admin key (PKCS#8 or PKCS#1 PEM); `None` generates a fresh 2048-bit key.
    pub private_key_pem: Option<String>,
    /// Allowed login-ID keys (default: all three).
    pub login_id_keys: LoginIdKeys,
    /// Whether email and username login IDs are case-insensitive (default true).
    pub case_insensitive_login_ids: bool,
    /// Declared custom attributes (name, type, bounds, enum); a bare name (`"tier".into()`)
    /// declares a `string` attribute.
    pub custom_attributes: Vec<CustomAttribute>,
    /// Role keys that exist in the project at start (more can be created over GraphQL).
    pub roles: Vec<String>,
    /// Group keys that exist in the project at start.
    pub groups: Vec<String>,
    /// The reserved usernames, compared case-insensitively; `None` uses
    /// [`BUILT_IN_RESERVED`] (only the names the docs list, not Authgear's ~625).
    pub reserved_usernames: Option<Vec<String>>,
    /// Monthly `user_import` block quota (records); `None` = no limit.
    pub import_usage_limit: Option<u64>,
    /// Daily `user_import` block quota (records, resets 00:00 UTC); `None` = no limit.
    pub import_daily_limit: Option<u64>,
    /// Where the project's clock starts relative to the real one (quota periods, job
    /// expiry, account validity, TOTP). Admin JWTs are checked on the real clock.
    pub clock_offset: jiff::SignedDuration,
    /// Faults on the nth accepted import POST (0-based), after the job was created.
    pub import_faults: Vec<(u32, ImportFault)>,
    /// Records per import task (Authgear: 100).
    pub records_per_task: usize,
    /// How long a presigned export download URL stays valid (Authgear: 1 minute).
    pub download_url_ttl: Duration,
}

impl Default for AuthgearConfig {
    fn default() -> Self {
        Self {
            project_id: "sandbox".to_owned(),
            key_id: DEFAULT_KEY_ID.to_owned(),
            private_key_pem: None,
            login_id_keys: LoginIdKeys::default(),
            case_insensitive_login_ids: true,
            custom_attributes: Vec::new(),
            roles: Vec::new(),
            groups: Vec::new(),
            reserved_usernames: None,
            import_usage_limit: None,
            import_daily_limit: None,
            clock_offset: jiff::SignedDuration::ZERO,
            import_faults: Vec::new(),
            records_per_task: 100,
            download_url_ttl: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for AuthgearConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthgearConfig")
            .field("project_id", &self.project_id)
            .field("key_id", &self.key_id)
            .field(
                "private_key_pem",
                &self.private_key_pem.as_ref().map(|_| "****"),
            )
            .field("login_id_keys", &self.login_id_keys)
            .field(
                "case_insensitive_login_ids",
                &self.case_insensitive_login_ids,
            )
            .field("custom_attributes", &self.custom_attributes)
            .field("roles", &self.roles)
            .field("groups", &self.groups)
            .field("reserved_usernames", &self.reserved_usernames)
            .field("import_usage_limit", &self.import_usage_limit)
            .field("import_daily_limit", &self.import_daily_limit)
            .field("clock_offset", &self.clock_offset)
            .field("import_faults", &self.import_faults)
            .field("records_per_task", &self.records_per_task)
            .field("download_url_ttl", &self.download_url_ttl)
            .finish()
    }
}

/// What an import POST does wrong after its job was created (the job runs anyway), for
/// in-doubt tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFault {
    /// Answer 500 `InternalError`/`UnexpectedError`.
    Error500,
    /// Drop the connection without an answer.
    Drop,
}

/// Mutable project data, behind one lock.
#[derive(Default)]
struct Inner {
    store: store::Store,
    directory: roles::Directory,
    imports: HashMap<String, import::ImportJob>,
    imports_created: u32,
    usage: quota::Usage,
    clock_offset: jiff::SignedDuration,
    import_faults: HashMap<u32, ImportFault>,
    exports: HashMap<String, export::ExportJob>,
    downloads: HashMap<String, export::Download>,
}

/// The emulated project's state.
pub struct AuthgearState {
    config: AuthgearConfig,
    faults: Arc<Faults>,
    private_key_pem: String,
    public_key_pem: String,
    encoding_key: jsonwebtoken::EncodingKey,
    decoding_key: jsonwebtoken::DecodingKey,
    inner: Mutex<Inner>,
    paused: tokio::sync::watch::Sender<bool>,
    queue: tokio::sync::Mutex<()>,
}

impl fmt::Debug for AuthgearState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthgearState")
            .field("config", &self.config)
            .field("private_key_pem", &"****")
            .finish_non_exhaustive()
    }
}

impl AuthgearState {
    /// A fresh project (generates its RSA key pair unless the config gives one).
    pub fn new(config: AuthgearConfig, faults: Arc<Faults>) -> Result<Self, String> {
        if config.records_per_task == 0 {
            return Err("records_per_task must be at least 1".to_owned());
        }
        let key = match &config.private_key_pem {
            Some(pem) => rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
                .map_err(|_| {
                    "private_key_pem is neither a PKCS#8 nor a PKCS#1 RSA private key".to_owned()
                })?,
            None => rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(|e| format!("cannot generate an RSA key: {e}"))?,
        };
        let private_key_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("cannot encode the RSA private key: {e}"))?
            .to_string();
        let public_key_pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| format!("cannot encode the RSA public key: {e}"))?;
        let encoding_key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
            .map_err(|e| format!("cannot load the RSA private key for signing: {e}"))?;
        let decoding_key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .map_err(|e| format!("cannot load the RSA public key for verifying: {e}"))?;
        let offset = config.clock_offset;
        let start = jiff::Timestamp::now()
            .checked_add(offset)
            .map_err(|e| format!("clock_offset is out of range: {e}"))?;
        let inner = Inner {
            directory: roles::Directory::new(&config.roles, &config.groups, start),
            clock_offset: offset,
            import_faults: config.import_faults.iter().copied().collect(),
            ..Inner::default()
        };
        Ok(Self {
            config,
            faults,
            private_key_pem,
            public_key_pem,
            encoding_key,
            decoding_key,
            inner: Mutex::new(inner),
            paused: tokio::sync::watch::Sender::new(false),
            queue: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Handlers never leave the data half-updated across a panic point.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The project's clock: the real time plus the offset.
    pub fn now(&self) -> jiff::Timestamp {
        let offset = self.lock().clock_offset;
        jiff::Timestamp::now()
            .checked_add(offset)
            .unwrap_or_else(|_| jiff::Timestamp::now())
    }

    /// Moves the project's clock by `by` (quota periods, job expiry, validity, TOTP).
    pub fn advance_clock(&self, by: jiff::SignedDuration) {
        let mut inner = self.lock();
        inner.clock_offset = inner.clock_offset.saturating_add(by);
    }

    /// Sets the project's clock to `now` (it runs on from there).
    pub fn set_clock(&self, now: jiff::Timestamp) {
        self.lock().clock_offset = now.duration_since(jiff::Timestamp::now());
    }

    /// Makes the nth accepted import POST (0-based) fail after its job was created.
    pub fn set_import_fault(&self, nth: u32, fault: Option<ImportFault>) {
        let mut inner = self.lock();
        match fault {
            Some(f) => inner.import_faults.insert(nth, f),
            None => inner.import_faults.remove(&nth),
        };
    }

    /// The role keys the project defines, sorted.
    pub fn role_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .lock()
            .directory
            .roles
            .iter()
            .map(|r| r.key.clone())
            .collect();
        keys.sort();
        keys
    }

    /// The group keys the project defines with each group's role keys, sorted by key.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = self
            .lock()
            .directory
            .groups
            .iter()
            .map(|g| (g.key.clone(), g.roles.clone()))
            .collect();
        groups.sort();
        groups
    }

    /// Adds (or renames) a role with a name and description, as `createRole` would.
    pub fn seed_role(&self, key: &str, name: Option<&str>, description: Option<&str>) {
        let now = self.now();
        let mut inner = self.lock();
        let roles = &mut inner.directory.roles;
        let i = match roles.iter().position(|r| r.key == key) {
            Some(i) => i,
            None => {
                roles.push(roles::Entry::new(key, now));
                roles.len() - 1
            }
        };
        roles[i].name = name.map(str::to_owned);
        roles[i].description = description.map(str::to_owned);
    }

    /// Adds a group with a name and its roles (keys of existing roles), as
    /// `createGroup` and `addRoleToGroups` would.
    pub fn seed_group(&self, key: &str, name: Option<&str>, role_keys: &[&str]) {
        let now = self.now();
        let mut inner = self.lock();
        let mut g = roles::Entry::new(key, now);
        g.name = name.map(str::to_owned);
        g.roles = role_keys.iter().map(|r| (*r).to_owned()).collect();
        inner.directory.groups.retain(|e| e.key != key);
        inner.directory.groups.push(g);
    }

    /// `(day, month)` records the import quota has counted in the current periods.
    pub fn usage_current(&self) -> (u64, u64) {
        let now = self.now();
        self.lock().usage.current(now)
    }

    /// The project id (the `aud` admin JWTs must carry).
    pub fn project_id(&self) -> &str {
        &self.config.project_id
    }

    /// The admin key's id (the `kid` admin JWTs must carry).
    pub fn key_id(&self) -> &str {
        &self.config.key_id
    }

    /// The admin private key as PKCS#8 PEM (what the portal's "Download" gives).
    pub fn private_key_pem(&self) -> String {
        self.private_key_pem.clone()
    }

    /// The admin public key as SPKI PEM.
    pub fn public_key_pem(&self) -> String {
        self.public_key_pem.clone()
    }

    /// The project's configuration.
    pub fn config(&self) -> &AuthgearConfig {
        &self.config
    }

    /// A valid admin JWT (RS256, `kid`, `aud` = project id, `iat` = now, `exp` = now + ttl).
    pub fn mint_admin_token(&self, ttl: Duration) -> String {
        auth::mint(self, ttl)
    }

    /// Every user, in creation order.
    pub fn users(&self) -> Vec<AuthgearUser> {
        let now = self.now();
        let inner = self.lock();
        inner.store.users.iter().map(|u| u.view(now)).collect()
    }

    /// The user owning this login ID (normalised like Authgear before the lookup).
    pub fn user_by_login_id(&self, login_id: &str) -> Option<AuthgearUser> {
        let now = self.now();
        let inner = self.lock();
        inner
            .store
            .find_by_login_id(&self.config, login_id)
            .map(|u| u.view(now))
    }

    /// Whether `password` verifies against the primary password of the user owning
    /// `login_id` (disabled users included).
    pub fn check_password(&self, login_id: &str, password: &str) -> bool {
        let hash = {
            let inner = self.lock();
            inner
                .store
                .find_by_login_id(&self.config, login_id)
                .and_then(|u| u.password_hash.clone())
        };
        hash.is_some_and(|h| store::verify_password(password, &h))
    }

    /// How many import jobs were accepted so far.
    pub fn jobs_created(&self) -> usize {
        self.lock().imports_created as usize
    }

    /// How many export jobs were accepted so far.
    pub fn exports_created(&self) -> usize {
        self.lock().exports.len()
    }

    /// How many records the usage limit has counted so far.
    pub fn usage_used(&self) -> u64 {
        self.lock().usage.total
    }

    /// Adds a user directly, as an import record (§1.3 shape) inserted with the first of
    /// `email`, `phone_number`, `preferred_username` present as identifier. Returns the
    /// new user id, or the failed detail (`{"outcome": "failed", "errors": [...], ...}`).
    pub fn seed_user(&self, record: Value) -> Result<String, Value> {
        let identifier = ["email", "phone_number", "preferred_username"]
            .into_iter()
            .find(|k| record.get(*k).is_some_and(Value::is_string))
            .unwrap_or("email");
        let now = self.now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let project = store::Project {
            config: &self.config,
            directory: &inner.directory,
            now,
        };
        let detail =
            store::import_record(&mut inner.store, &project, identifier, false, 0, &record);
        match (&detail.outcome, &detail.user_id) {
            (store::Outcome::Inserted, Some(id)) => Ok(id.clone()),
            _ => Err(detail.to_json()),
        }
    }

    /// Holds (`true`) or releases (`false`) all job processing. Jobs created while paused
    /// stay `pending` until released.
    pub fn pause_jobs(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    async fn wait_unpaused(&self) {
        let mut rx = self.paused.subscribe();
        // The sender lives in `self`, so the channel cannot close here.
        let _ = rx.wait_for(|p| !*p).await;
    }
}

/// The project's routes (`/_api/admin/...`, `/_sandbox/authgear/...`).
pub fn router(state: Arc<AuthgearState>) -> Router {
    let admin = Router::new()
        .route("/_api/admin/users/import", post(import::create))
        .route("/_api/admin/users/import/{id}", get(import::get))
        .route("/_api/admin/users/export", post(export::create))
        .route("/_api/admin/users/export/{id}", get(export::get))
        .route("/_api/admin/graphql", post(graphql::handle))
        // Layers run outside in: the JWT check first, then the content type (415).
        .route_layer(axum::middleware::from_fn(api::content_type_gate))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    let sandbox = Router::new()
        .route("/_sandbox/authgear/login", post(login::login))
        .route(
            "/_sandbox/authgear/clock",
            get(api::clock_get).post(api::clock_set),
        )
        .route(
            "/_sandbox/authgear/import-faults",
            post(api::import_faults_set),
        )
        .route("/_sandbox/authgear/exports/{key}", get(export::download));
    admin.merge(sandbox).with_state(state)
}

/// A JSON object built from `(key, value)` pairs, keeping their order.
fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}
