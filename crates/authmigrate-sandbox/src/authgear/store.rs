//! The project's users and the per-record import procedure of §2.4.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value, json};

use super::AuthgearConfig;
use super::api::api_error;
use super::roles::{Directory, unknown_groups, unknown_roles};
use super::schema::{check_password_hash, redact, validate_record};

/// What a record is imported against: the settings, the roles and groups, the clock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Project<'a> {
    pub(super) config: &'a AuthgearConfig,
    pub(super) directory: &'a Directory,
    pub(super) now: jiff::Timestamp,
}

/// Standard attributes that are not login IDs.
pub(super) const STD_ATTRS: [&str; 13] = [
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "address",
];

/// A login-ID type; the key name equals the type (`email`, `phone`, `username`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Email,
    Phone,
    Username,
}

impl Kind {
    pub(super) const ALL: [Kind; 3] = [Kind::Email, Kind::Phone, Kind::Username];

    pub(super) fn key(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Username => "username",
        }
    }

    /// The record field / standard claim.
    pub(super) fn field(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone_number",
            Kind::Username => "preferred_username",
        }
    }

    fn of_field(field: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.field() == field)
    }

    fn enabled(self, config: &AuthgearConfig) -> bool {
        match self {
            Kind::Email => config.login_id_keys.email,
            Kind::Phone => config.login_id_keys.phone,
            Kind::Username => config.login_id_keys.username,
        }
    }

    /// Authgear's login-ID normaliser.
    pub(super) fn normalise(self, config: &AuthgearConfig, raw: &str) -> String {
        match self {
            Kind::Email if config.case_insensitive_login_ids => raw.to_lowercase(),
            Kind::Email => match raw.rsplit_once('@') {
                Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
                None => raw.to_owned(),
            },
            Kind::Username if config.case_insensitive_login_ids => raw.to_lowercase(),
            Kind::Phone | Kind::Username => raw.to_owned(),
        }
    }
}

/// A login-ID identity.
#[derive(Debug, Clone)]
pub(super) struct LoginId {
    pub(super) kind: Kind,
    /// The normalised value (the stored claim).
    pub(super) value: String,
    /// The value as imported.
    pub(super) original: String,
}

/// One stored user.
#[derive(Clone)]
pub(super) struct StoredUser {
    pub(super) id: String,
    pub(super) created_at: jiff::Timestamp,
    pub(super) login_ids: Vec<LoginId>,
    /// Verified claims: (`email` | `phone_number`, value).
    pub(super) verified: Vec<(String, String)>,
    pub(super) standard: Map<String, Value>,
    pub(super) custom: Map<String, Value>,
    pub(super) roles: Vec<String>,
    pub(super) groups: Vec<String>,
    pub(super) disabled: bool,
    pub(super) account_valid_from: Option<String>,
    pub(super) account_valid_until: Option<String>,
    pub(super) password_hash: Option<String>,
    pub(super) mfa_password_hash: Option<String>,
    pub(super) mfa_emails: Vec<String>,
    pub(super) mfa_phone_numbers: Vec<String>,
    pub(super) totp_secrets: Vec<String>,
    /// Set by a successful sandbox login.
    pub(super) last_login_at: Option<jiff::Timestamp>,
}

impl fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredUser")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A user as tests see it (no secrets: hashes and TOTP secrets are only counted).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthgearUser {
    /// The user id (a UUID).
    pub id: String,
    /// When the user was created.
    pub created_at: jiff::Timestamp,
    /// The email login ID (normalised).
    pub email: Option<String>,
    /// The phone login ID.
    pub phone_number: Option<String>,
    /// The username login ID (normalised).
    pub preferred_username: Option<String>,
    /// Whether the email claim is verified.
    pub email_verified: bool,
    /// Whether the phone claim is verified.
    pub phone_number_verified: bool,
    /// Standard attributes other than login IDs (`name`, `address`, ...).
    pub standard_attributes: Map<String, Value>,
    /// Custom attributes (declared names only).
    pub custom_attributes: Map<String, Value>,
    /// Role keys.
    pub roles: Vec<String>,
    /// Group keys.
    pub groups: Vec<String>,
    /// Whether the account is disabled (by flag or outside its validity period).
    pub disabled: bool,
    /// Whether a primary password exists.
    pub has_password: bool,
    /// Whether a secondary (MFA) password exists.
    pub has_mfa_password: bool,
    /// Secondary OOB email authenticators.
    pub mfa_emails: Vec<String>,
    /// Secondary OOB SMS authenticators.
    pub mfa_phone_numbers: Vec<String>,
    /// How many TOTP authenticators exist.
    pub totp_count: usize,
}

impl StoredUser {
    fn new(now: jiff::Timestamp) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: now,
            login_ids: Vec::new(),
            verified: Vec::new(),
            standard: Map::new(),
            custom: Map::new(),
            roles: Vec::new(),
            groups: Vec::new(),
            disabled: false,
            account_valid_from: None,
            account_valid_until: None,
            password_hash: None,
            mfa_password_hash: None,
            mfa_emails: Vec::new(),
            mfa_phone_numbers: Vec::new(),
            totp_secrets: Vec::new(),
            last_login_at: None,
        }
    }

    fn login(&self, kind: Kind) -> Option<&str> {
        self.login_ids
            .iter()
            .find(|l| l.kind == kind)
            .map(|l| l.value.as_str())
    }

    pub(super) fn is_verified(&self, claim: &str, kind: Kind) -> bool {
        self.login(kind)
            .is_some_and(|v| self.verified.iter().any(|(c, x)| c == claim && x == v))
    }

    /// Disabled by flag, or outside its `account_valid_from`/`until` period at `now`
    /// (authgear-api.md §2.6: the account status check fails, so the user is disabled).
    pub(super) fn is_disabled(&self, now: jiff::Timestamp) -> bool {
        let ts = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<jiff::Timestamp>().ok());
        self.disabled
            || ts(&self.account_valid_from).is_some_and(|from| now < from)
            || ts(&self.account_valid_until).is_some_and(|until| now >= until)
    }

    pub(super) fn login_value(&self, kind: Kind) -> Option<&str> {
        self.login(kind)
    }

    pub(super) fn view(&self, now: jiff::Timestamp) -> AuthgearUser {
        AuthgearUser {
            id: self.id.clone(),
            created_at: self.created_at,
            email: self.login(Kind::Email).map(str::to_owned),
            phone_number: self.login(Kind::Phone).map(str::to_owned),
            preferred_username: self.login(Kind::Username).map(str::to_owned),
            email_verified: self.is_verified("email", Kind::Email),
            phone_number_verified: self.is_verified("phone_number", Kind::Phone),
            standard_attributes: self.standard.clone(),
            custom_attributes: self.custom.clone(),
            roles: self.roles.clone(),
            groups: self.groups.clone(),
            disabled: self.is_disabled(now),
            has_password: self.password_hash.is_some(),
            has_mfa_password: self.mfa_password_hash.is_some(),
            mfa_emails: self.mfa_emails.clone(),
            mfa_phone_numbers: self.mfa_phone_numbers.clone(),
            totp_count: self.totp_secrets.len(),
        }
    }
}

/// All users, with an index of their login IDs (a scan per imported record would
/// make imports quadratic in the project's size, which Authgear's database is not).
#[derive(Debug, Clone, Default)]
pub(super) struct Store {
    pub(super) users: Vec<StoredUser>,
    by_login: HashMap<(Kind, String), Vec<usize>>,
}

impl Store {
    /// Adds a user (the only way users are added).
    pub(super) fn push(&mut self, user: StoredUser) {
        let idx = self.users.len();
        for l in &user.login_ids {
            self.by_login
                .entry((l.kind, l.value.clone()))
                .or_default()
                .push(idx);
        }
        self.users.push(user);
    }

    /// Replaces user `idx` (the only way users change), keeping the index current.
    pub(super) fn replace(&mut self, idx: usize, user: StoredUser) {
        for l in &self.users[idx].login_ids {
            if let Some(v) = self.by_login.get_mut(&(l.kind, l.value.clone())) {
                v.retain(|&i| i != idx);
            }
        }
        for l in &user.login_ids {
            self.by_login
                .entry((l.kind, l.value.clone()))
                .or_default()
                .push(idx);
        }
        self.users[idx] = user;
    }

    /// Removes user `idx` (`deleteUser`), rebuilding the login-ID index.
    pub(super) fn remove(&mut self, idx: usize) -> StoredUser {
        let user = self.users.remove(idx);
        self.by_login.clear();
        for (i, u) in self.users.iter().enumerate() {
            for l in &u.login_ids {
                self.by_login
                    .entry((l.kind, l.value.clone()))
                    .or_default()
                    .push(i);
            }
        }
        user
    }

    /// The index of the user with this id.
    pub(super) fn position(&self, id: &str) -> Option<usize> {
        self.users.iter().position(|u| u.id == id)
    }

    /// Users owning this normalised login ID of `kind`.
    pub(super) fn by_login_id(&self, kind: Kind, normalised: &str) -> Vec<usize> {
        self.list_by_claim(kind, normalised)
    }

    /// `ListByClaim`: exact match of the raw value against stored (normalised) claims.
    fn list_by_claim(&self, kind: Kind, raw: &str) -> Vec<usize> {
        let mut v = self
            .by_login
            .get(&(kind, raw.to_owned()))
            .cloned()
            .unwrap_or_default();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// A login ID, normalised like Authgear, of any type.
    pub(super) fn find_by_login_id(
        &self,
        config: &AuthgearConfig,
        login_id: &str,
    ) -> Option<&StoredUser> {
        self.users.iter().find(|u| {
            u.login_ids
                .iter()
                .any(|l| l.value == l.kind.normalise(config, login_id))
        })
    }

    /// `CheckDuplicated`: another user already has this login ID.
    fn check_duplicate(&self, li: &LoginId, owner: &str) -> Result<(), Value> {
        let dup = self
            .by_login
            .get(&(li.kind, li.value.clone()))
            .is_some_and(|idxs| idxs.iter().any(|&i| self.users[i].id != owner));
        if dup {
            return Err(api_error(
                "Invalid",
                "InvariantViolated",
                "identity already exists",
                Some(json!({
                    "cause": { "kind": "DuplicatedIdentity" },
                    "IdentityTypeIncoming": "login_id",
                    "LoginIDTypeIncoming": li.kind.key(),
                    "IdentityTypeExisting": "login_id",
                    "LoginIDTypeExisting": li.kind.key(),
                })),
            ));
        }
        Ok(())
    }
}

/// A per-record outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Inserted,
    Updated,
    Skipped,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Inserted => "inserted",
            Outcome::Updated => "updated",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// `details[]` entry.
#[derive(Debug, Clone)]
pub(super) struct Detail {
    pub(super) index: usize,
    pub(super) record: Option<Value>,
    pub(super) outcome: Outcome,
    pub(super) user_id: Option<String>,
    pub(super) warnings: Vec<String>,
    pub(super) errors: Vec<Value>,
}

impl Detail {
    fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    pub(super) fn to_json(&self) -> Value {
        let mut d = Map::new();
        d.insert("index".to_owned(), json!(self.index));
        if let Some(r) = &self.record {
            d.insert("record".to_owned(), r.clone());
        }
        d.insert("outcome".to_owned(), json!(self.outcome.as_str()));
        if let Some(id) = &self.user_id {
            d.insert("user_id".to_owned(), json!(id));
        }
        if !self.warnings.is_empty() {
            let w: Vec<Value> = self
                .warnings
                .iter()
                .map(|m| json!({ "message": m }))
                .collect();
            d.insert("warnings".to_owned(), json!(w));
        }
        if !self.errors.is_empty() {
            d.insert("errors".to_owned(), json!(self.errors));
        }
        Value::Object(d)
    }
}

/// Imports one record (its own "transaction": on error nothing is stored).
pub(super) fn import_record(
    store: &mut Store,
    project: &Project<'_>,
    identifier: &str,
    upsert: bool,
    index: usize,
    raw: &Value,
) -> Detail {
    let mut detail = Detail {
        index,
        record: Some(redact(raw)),
        outcome: Outcome::Failed,
        user_id: None,
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let result = import_in_txn(store, project, identifier, upsert, raw, &mut detail);
    if let Err(err) = result {
        detail.outcome = Outcome::Failed;
        detail.user_id = None;
        detail.errors = vec![err];
    }
    detail
}

fn import_in_txn(
    store: &mut Store,
    project: &Project<'_>,
    identifier: &str,
    upsert: bool,
    raw: &Value,
    detail: &mut Detail,
) -> Result<(), Value> {
    let Some(record) = raw.as_object() else {
        return Err(super::api::unexpected_error());
    };
    let causes = validate_record(identifier, record);
    if !causes.is_empty() {
        return Err(causes.into_error("invalid value"));
    }
    let kind = Kind::of_field(identifier).ok_or_else(super::api::unexpected_error)?;
    let value = record
        .get(identifier)
        .and_then(Value::as_str)
        .ok_or_else(super::api::unexpected_error)?;
    let matches = store.list_by_claim(kind, value);
    match matches.as_slice() {
        [] => insert(store, project, record, detail),
        [idx] if upsert => update(store, project, identifier, record, *idx, detail),
        [idx] => {
            detail.user_id = Some(store.users[*idx].id.clone());
            detail.outcome = Outcome::Skipped;
            detail.warn("skipping because upsert = false and user exists");
            Ok(())
        }
        many => Err(unexpected_identities(many.len())),
    }
}

fn unexpected_identities(_n: usize) -> Value {
    // Go: `unexpected number of identities found: N`, surfaced untranslated.
    super::api::unexpected_error()
}

/// `Identities.New` for a login ID: the login-ID checker (on the trimmed value), then
/// normalisation.
fn new_login_id(config: &AuthgearConfig, kind: Kind, raw: &str) -> Result<LoginId, Value> {
    let max = match kind {
        Kind::Email => 320,
        Kind::Phone | Kind::Username => super::username::MAX_LEN,
    };
    let trimmed = raw.trim();
    match kind {
        Kind::Username => super::username::check(raw, config.reserved_usernames.as_deref())?,
        _ if trimmed.len() > max => {
            return Err(super::username::invalid_login_id(
                "maxLength",
                json!({ "expected": max, "actual": trimmed.len() }),
            ));
        }
        _ => {}
    }
    Ok(LoginId {
        kind,
        value: kind.normalise(config, raw),
        original: raw.to_owned(),
    })
}

fn field<'a>(record: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    record.get(key)
}

fn merge_standard(user: &mut StoredUser, record: &Map<String, Value>) {
    for key in STD_ATTRS {
        match record.get(key) {
            None => {}
            Some(Value::Null) => {
                user.standard.remove(key);
            }
            Some(v) => {
                user.standard.insert(key.to_owned(), v.clone());
            }
        }
    }
}

/// Sets the role or group keys to exactly `record[field]` (absent: unchanged). Keys
/// to add that the project does not define fail the record (`RoleUnknownKeys` /
/// `GroupUnknownKeys`); keys the user already holds are not re-checked.
fn reset_keys(
    held: &mut Vec<String>,
    record: &Map<String, Value>,
    field: &str,
    defined: impl Fn(&str) -> bool,
) -> Result<(), Value> {
    let Some(items) = record.get(field).and_then(Value::as_array) else {
        return Ok(());
    };
    let mut wanted: Vec<String> = Vec::new();
    for item in items.iter().filter_map(Value::as_str) {
        if !wanted.iter().any(|w| w == item) {
            wanted.push(item.to_owned());
        }
    }
    let unknown: Vec<String> = wanted
        .iter()
        .filter(|k| !held.contains(k) && !defined(k))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(if field == "roles" {
            unknown_roles(&unknown)
        } else {
            unknown_groups(&unknown)
        });
    }
    held.retain(|k| wanted.contains(k));
    for k in wanted {
        if !held.contains(&k) {
            held.push(k);
        }
    }
    Ok(())
}

fn roles_and_groups(
    user: &mut StoredUser,
    project: &Project<'_>,
    record: &Map<String, Value>,
) -> Result<(), Value> {
    reset_keys(&mut user.roles, record, "roles", |k| {
        project.directory.has_role(k)
    })?;
    reset_keys(&mut user.groups, record, "groups", |k| {
        project.directory.has_group(k)
    })
}

fn account_validity(user: &mut StoredUser, record: &Map<String, Value>) -> Result<(), Value> {
    let utc = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .map(|t| t.to_string())
    };
    if let Some(v) = record.get("account_valid_from") {
        user.account_valid_from = utc(v);
    }
    if let Some(v) = record.get("account_valid_until") {
        user.account_valid_until = utc(v);
    }
    if let (Some(from), Some(until)) = (&user.account_valid_from, &user.account_valid_until) {
        let (Ok(from), Ok(until)) = (
            from.parse::<jiff::Timestamp>(),
            until.parse::<jiff::Timestamp>(),
        ) else {
            return Err(super::api::unexpected_error());
        };
        if from >= until {
            return Err(api_error(
                "Invalid",
                "InvalidAccountStatusTransition",
                "the start timestamp of account valid period must be less than the end timestamp of the account valid period",
                Some(
                    json!({ "cause": { "kind": "AccountValidFromShouldBeBeforeAccountValidUntil" } }),
                ),
            ));
        }
    }
    Ok(())
}

fn password_hash_of(v: Option<&Value>) -> Option<&str> {
    v?.get("password_hash")?.as_str()
}

fn insert(
    store: &mut Store,
    project: &Project<'_>,
    record: &Map<String, Value>,
    detail: &mut Detail,
) -> Result<(), Value> {
    let config = project.config;
    let mut user = StoredUser::new(project.now);
    let mut specs = Vec::new();
    for kind in Kind::ALL {
        let f = kind.field();
        match field(record, f) {
            None => {}
            Some(Value::Null) => detail.warn(format!("{f} = null has no effect in insert.")),
            Some(v) => {
                if !kind.enabled(config) {
                    detail.warn(format!(
                        "{f} is ignored because it is not an allowed login ID."
                    ));
                } else if let Some(s) = v.as_str() {
                    specs.push((kind, s));
                }
            }
        }
    }
    let mut infos = Vec::new();
    for (kind, s) in specs {
        infos.push(new_login_id(config, kind, s)?);
    }
    for info in infos {
        store.check_duplicate(&info, &user.id)?;
        user.login_ids.push(info);
    }
    for (kind, claim, flag) in [
        (Kind::Email, "email", "email_verified"),
        (Kind::Phone, "phone_number", "phone_number_verified"),
    ] {
        match field(record, flag).and_then(Value::as_bool) {
            None => {}
            Some(false) => detail.warn(format!("{flag} = false has no effect in insert.")),
            Some(true) => match user.login(kind).map(str::to_owned) {
                Some(v) => user.verified.push((claim.to_owned(), v)),
                None => detail.warn(format!(
                    "{flag} = true has no effect when {claim} is absent."
                )),
            },
        }
    }
    merge_standard(&mut user, record);
    super::attrs::apply(
        &config.custom_attributes,
        &mut user.custom,
        record.get("custom_attributes"),
    )?;
    match field(record, "disabled").and_then(Value::as_bool) {
        Some(false) => detail.warn("disabled = false has no effect in insert."),
        Some(true) => user.disabled = true,
        None => {}
    }
    account_validity(&mut user, record)?;
    roles_and_groups(&mut user, project, record)?;
    if let Some(hash) = password_hash_of(record.get("password")) {
        check_password_hash(hash)?;
        user.password_hash = Some(hash.to_owned());
    }
    let mfa = record.get("mfa").and_then(Value::as_object);
    if let Some(hash) = password_hash_of(mfa.and_then(|m| m.get("password"))) {
        check_password_hash(hash)?;
        user.mfa_password_hash = Some(hash.to_owned());
    }
    if let Some(mfa) = mfa {
        match mfa.get("email") {
            None => {}
            Some(Value::Null) => detail.warn("mfa.email = null has no effect in insert."),
            Some(v) => user.mfa_emails.extend(v.as_str().map(str::to_owned)),
        }
        match mfa.get("phone_number") {
            None => {}
            Some(Value::Null) => detail.warn("mfa.phone_number = null has no effect in insert."),
            Some(v) => user.mfa_phone_numbers.extend(v.as_str().map(str::to_owned)),
        }
        if let Some(secret) = mfa
            .get("totp")
            .and_then(|t| t.get("secret"))
            .and_then(Value::as_str)
        {
            user.totp_secrets.push(secret.to_owned());
        }
    }
    detail.user_id = Some(user.id.clone());
    detail.outcome = Outcome::Inserted;
    store.push(user);
    Ok(())
}

fn update(
    store: &mut Store,
    project: &Project<'_>,
    identifier: &str,
    record: &Map<String, Value>,
    idx: usize,
    detail: &mut Detail,
) -> Result<(), Value> {
    let config = project.config;
    let mut user = store.users[idx].clone();
    // 1. login IDs other than the identifier.
    for kind in Kind::ALL {
        let f = kind.field();
        if f == identifier {
            continue;
        }
        match field(record, f) {
            None => {}
            Some(Value::Null) => user.login_ids.retain(|l| l.kind != kind),
            Some(v) => {
                let Some(s) = v.as_str() else { continue };
                let info = new_login_id(config, kind, s)?;
                store.check_duplicate(&info, &user.id)?;
                match user.login_ids.iter_mut().find(|l| l.kind == kind) {
                    Some(existing) => *existing = info,
                    None => user.login_ids.push(info),
                }
            }
        }
    }
    // 2. verified claims.
    for (kind, claim, flag) in [
        (Kind::Email, "email", "email_verified"),
        (Kind::Phone, "phone_number", "phone_number_verified"),
    ] {
        let Some(verified) = field(record, flag).and_then(Value::as_bool) else {
            continue;
        };
        match field(record, claim) {
            None => detail.warn(format!("{flag} has no effect when {claim} is absent.")),
            Some(Value::Null) => detail.warn(format!("{flag} has no effect when {claim} = null.")),
            Some(v) => {
                let raw = v.as_str().unwrap_or_default();
                if user.login(kind) == Some(raw) {
                    let pair = (claim.to_owned(), raw.to_owned());
                    user.verified.retain(|p| *p != pair);
                    if verified {
                        user.verified.push(pair);
                    }
                }
            }
        }
    }
    // 3-4. standard and custom attributes.
    merge_standard(&mut user, record);
    super::attrs::apply(
        &config.custom_attributes,
        &mut user.custom,
        record.get("custom_attributes"),
    )?;
    // 5. account status: invalid transitions are warnings.
    match field(record, "disabled").and_then(Value::as_bool) {
        Some(true) if user.disabled => {
            detail.warn("invalid account status transition: disabled -> disabled")
        }
        Some(false) if !user.disabled => {
            detail.warn("invalid account status transition: normal -> normal")
        }
        Some(d) => user.disabled = d,
        None => {}
    }
    account_validity(&mut user, record)?;
    // 6-7. roles and groups.
    roles_and_groups(&mut user, project, record)?;
    // password, mfa.password and mfa.totp are ignored on update.
    // 8. mfa.email / mfa.phone_number.
    if let Some(mfa) = record.get("mfa").and_then(Value::as_object) {
        for (key, list) in [
            ("email", &mut user.mfa_emails),
            ("phone_number", &mut user.mfa_phone_numbers),
        ] {
            match mfa.get(key) {
                None => {}
                Some(Value::Null) => list.clear(),
                Some(v) => {
                    let Some(s) = v.as_str() else { continue };
                    if !(list.len() == 1 && list[0] == s) {
                        *list = vec![s.to_owned()];
                    }
                }
            }
        }
    }
    detail.user_id = Some(user.id.clone());
    detail.outcome = Outcome::Updated;
    store.replace(idx, user);
    Ok(())
}

/// bcrypt verification (`$2a$`, `$2b$`, `$2y$`); other formats never verify.
pub(super) fn verify_password(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}
