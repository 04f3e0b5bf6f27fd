//! Auth0's file formats and their mapping to and from the neutral [`UserRecord`].
//!
//! - [`to_bulk_user`]: neutral → one user of a bulk-import file (`POST /api/v2/jobs/users-imports`).
//! - [`from_bulk_user`]: a bulk-import user → neutral (the inverse).
//! - [`from_export_user`]: one line of an Auth0 user export (NDJSON) → neutral.
//! - [`from_password_export`]: one line of the password-hash export (support ticket) → [`PasswordHashEntry`].
//!
//! Nothing here does I/O or HTTP. Field-by-field notes are in `docs/mapping.md`.

use std::fmt;

use authmigrate_core::backend::RecordFailure;
use authmigrate_core::record::{
    Address, Encoding, JsonObject, MfaFactor, PasswordHash, UserRecord,
};
use authmigrate_core::secret::Secret;
use serde_json::{Map, Value};

/// The prefix Auth0 prepends to `user_id` in database connections.
pub const AUTH0_ID_PREFIX: &str = "auth0|";

/// Keys Auth0 forbids in `app_metadata` (bulk-import schema).
pub const FORBIDDEN_APP_METADATA_KEYS: [&str; 18] = [
    "__tenant",
    "_id",
    "blocked",
    "clientID",
    "created_at",
    "email_verified",
    "email",
    "globalClientID",
    "global_client_id",
    "identities",
    "lastIP",
    "lastLogin",
    "loginsCount",
    "metadata",
    "multifactor_last_modified",
    "multifactor",
    "updated_at",
    "user_id",
];

/// The most MFA factors one bulk-import user may carry.
pub const MAX_MFA_FACTORS: usize = 10;

/// Options of [`to_bulk_user`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth0MapOptions {
    /// Keep the fields Auth0 cannot hold (`middle_name`, `address`, unmapped source
    /// fields...) in `user_metadata` under their own names instead of leaving them
    /// out. A key already present in `user_metadata` is never overwritten.
    pub keep_unmapped_in_metadata: bool,
}

pub use authmigrate_core::format::{FieldError, Mapped};
pub(crate) use authmigrate_core::format::{kind, take_bool};

fn invalid(field: &str, reason: impl fmt::Display) -> RecordFailure {
    RecordFailure::new("INVALID_RECORD", format!("`{field}`: {reason}"))
}

fn cannot_hold(field: &str) -> String {
    format!("`{field}` cannot be imported into Auth0: left out")
}

/// Puts a string field, omitting `None` and empty strings (with a warning for the latter).
fn put_str(out: &mut Map<String, Value>, warnings: &mut Vec<String>, key: &str, v: Option<&str>) {
    match v {
        None => {}
        Some("") => warnings.push(format!("`{key}` is empty: left out")),
        Some(s) => {
            out.insert(key.to_owned(), Value::String(s.to_owned()));
        }
    }
}

/// Whether a hash can go into Auth0's `password_hash` (plain bcrypt `$2a$`/`$2b$`, cost 10).
pub fn is_auth0_password_hash(hash: &PasswordHash) -> bool {
    hash.as_plain_bcrypt().is_some()
        && matches!(hash.bcrypt_version(), Some("2a" | "2b"))
        && hash.bcrypt_cost() == Some(10)
        && matches!(hash.hash.encoding, None | Some(Encoding::Utf8))
        && hash.password.is_none()
}

/// Maps a neutral record to one user of an Auth0 bulk-import file.
///
/// Keys come in a fixed order: `email`, `email_verified`, `username`, `name`,
/// `nickname`, `password_hash`, then `phone_number`, `phone_verified`, `user_id`,
/// `given_name`, `family_name`, `picture`, `blocked`, `custom_password_hash`,
/// `app_metadata`, `user_metadata`, `mfa_factors`. Fields Auth0 cannot hold are
/// left out with one warning each. Fails with `MISSING_EMAIL` when there is no
/// e-mail, and with `INVALID_RECORD` for a reserved `app_metadata` key or a
/// malformed password hash.
pub fn to_bulk_user(record: &UserRecord, opts: &Auth0MapOptions) -> Result<Mapped, RecordFailure> {
    let mut w = Vec::new();
    let mut o = Map::new();

    match record.email.as_deref() {
        None | Some("") => {
            return Err(RecordFailure::new(
                "MISSING_EMAIL",
                "`email`: Auth0 bulk import requires an e-mail address",
            ));
        }
        Some(e) => {
            o.insert("email".into(), Value::String(e.to_owned()));
        }
    }
    if let Some(v) = record.email_verified {
        o.insert("email_verified".into(), Value::Bool(v));
    }
    put_str(&mut o, &mut w, "username", record.username.as_deref());
    put_str(&mut o, &mut w, "name", record.name.as_deref());
    put_str(&mut o, &mut w, "nickname", record.nickname.as_deref());

    let mut custom_hash = None;
    if let Some(hash) = &record.password {
        let plain = is_auth0_password_hash(hash);
        let field = if plain {
            "password_hash"
        } else {
            "custom_password_hash"
        };
        if let Some((path, reason)) = hash.problems().into_iter().next() {
            let path = if plain {
                field.to_owned()
            } else {
                format!("{field}.{path}")
            };
            return Err(invalid(&path, reason));
        }
        if plain {
            o.insert(
                "password_hash".into(),
                Value::String(hash.hash.value.expose().to_owned()),
            );
        } else {
            custom_hash = Some(
                serde_json::to_value(hash)
                    .map_err(|e| invalid("custom_password_hash", format!("cannot encode: {e}")))?,
            );
        }
    }

    put_str(
        &mut o,
        &mut w,
        "phone_number",
        record.phone_number.as_deref(),
    );
    if let Some(v) = record.phone_verified {
        o.insert("phone_verified".into(), Value::Bool(v));
    }
    match record.source_id.as_deref() {
        None | Some("") => {}
        Some(id) => match id.strip_prefix(AUTH0_ID_PREFIX) {
            Some("") => w.push("`source_id` has an empty id after `auth0|`: not sent".into()),
            Some(rest) => {
                o.insert("user_id".into(), Value::String(rest.to_owned()));
            }
            None => w.push(
                "`source_id` is not sent: Auth0 assigns its own id to users that were not `auth0|` users"
                    .into(),
            ),
        },
    }
    put_str(&mut o, &mut w, "given_name", record.given_name.as_deref());
    put_str(&mut o, &mut w, "family_name", record.family_name.as_deref());
    put_str(&mut o, &mut w, "picture", record.picture.as_deref());
    if let Some(b) = record.blocked {
        o.insert("blocked".into(), Value::Bool(b));
    }
    if let Some(h) = custom_hash {
        o.insert("custom_password_hash".into(), h);
    }

    if let Some(app) = &record.app_metadata {
        if let Some(key) = app
            .keys()
            .find(|k| FORBIDDEN_APP_METADATA_KEYS.contains(&k.as_str()))
        {
            return Err(invalid(
                &format!("app_metadata.{key}"),
                "this key is reserved by Auth0 and not allowed in `app_metadata`",
            ));
        }
        o.insert("app_metadata".into(), Value::Object(app.clone()));
    }

    // Fields Auth0 cannot hold: warn, or keep them in user_metadata.
    let mut dropped: Vec<(String, Value)> = Vec::new();
    let mut drop_str = |name: &str, v: &Option<String>| {
        if let Some(s) = v {
            dropped.push((name.to_owned(), Value::String(s.clone())));
        }
    };
    drop_str("middle_name", &record.middle_name);
    drop_str("profile", &record.profile);
    drop_str("website", &record.website);
    drop_str("locale", &record.locale);
    drop_str("zoneinfo", &record.zoneinfo);
    drop_str("birthdate", &record.birthdate);
    drop_str("gender", &record.gender);
    if let Some(a) = &record.address
        && *a != Address::default()
    {
        dropped.push((
            "address".into(),
            serde_json::to_value(a).unwrap_or(Value::Null),
        ));
    }
    if let Some(c) = &record.custom_attributes
        && !c.is_empty()
    {
        dropped.push(("custom_attributes".into(), Value::Object(c.clone())));
    }
    if !record.roles.is_empty() {
        dropped.push(("roles".into(), Value::from(record.roles.clone())));
    }
    if !record.groups.is_empty() {
        dropped.push(("groups".into(), Value::from(record.groups.clone())));
    }
    for (k, v) in &record.unmapped {
        dropped.push((k.clone(), v.clone()));
    }

    let mut user_meta: Option<JsonObject> = record.user_metadata.clone();
    for (name, value) in dropped {
        if opts.keep_unmapped_in_metadata {
            let meta = user_meta.get_or_insert_with(Map::new);
            if meta.contains_key(&name) {
                w.push(format!(
                    "`{name}` cannot be imported into Auth0 and `user_metadata.{name}` already exists: left out"
                ));
            } else {
                meta.insert(name.clone(), value);
                w.push(format!(
                    "`{name}` cannot be imported into Auth0: kept in `user_metadata.{name}`"
                ));
            }
        } else {
            w.push(cannot_hold(&name));
        }
    }
    if let Some(meta) = user_meta {
        o.insert("user_metadata".into(), Value::Object(meta));
    }

    if !record.mfa.is_empty() {
        let take = record.mfa.len().min(MAX_MFA_FACTORS);
        if record.mfa.len() > MAX_MFA_FACTORS {
            w.push(format!(
                "`mfa_factors`: Auth0 takes at most {MAX_MFA_FACTORS} factors; {} left out",
                record.mfa.len() - MAX_MFA_FACTORS
            ));
        }
        let factors = serde_json::to_value(&record.mfa[..take])
            .map_err(|e| invalid("mfa_factors", format!("cannot encode: {e}")))?;
        o.insert("mfa_factors".into(), factors);
    }

    if record.password.is_none() {
        w.push(authmigrate_core::format::NO_PASSWORD.to_owned());
    }

    Ok(Mapped {
        json: Value::Object(o),
        warnings: w,
    })
}

// ---------------------------------------------------------------------------
// Readers
// ---------------------------------------------------------------------------

/// Takes a string field: `None` when absent or null.
fn take_str(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>, FieldError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(FieldError::new(
            key,
            format!("must be a string, got {}", kind(&other)),
        )),
    }
}

fn take_object(obj: &mut Map<String, Value>, key: &str) -> Result<Option<JsonObject>, FieldError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(FieldError::new(
            key,
            format!("must be an object, got {}", kind(&other)),
        )),
    }
}

/// Reads the fields common to the bulk-import and export shapes.
fn take_profile(obj: &mut Map<String, Value>, r: &mut UserRecord) -> Result<(), FieldError> {
    r.email = take_str(obj, "email")?;
    r.email_verified = take_bool(obj, "email_verified")?;
    r.phone_number = take_str(obj, "phone_number")?;
    r.phone_verified = take_bool(obj, "phone_verified")?;
    r.username = take_str(obj, "username")?;
    r.name = take_str(obj, "name")?;
    r.given_name = take_str(obj, "given_name")?;
    r.family_name = take_str(obj, "family_name")?;
    r.nickname = take_str(obj, "nickname")?;
    r.picture = take_str(obj, "picture")?;
    r.blocked = take_bool(obj, "blocked")?;
    r.app_metadata = take_object(obj, "app_metadata")?;
    r.user_metadata = take_object(obj, "user_metadata")?;
    Ok(())
}

/// Reads `mfa_factors` (the neutral `mfa` uses the same item shape).
fn take_mfa(obj: &mut Map<String, Value>, key: &str) -> Result<Vec<MfaFactor>, FieldError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                serde_json::from_value::<MfaFactor>(item)
                    .map_err(|e| FieldError::new(format!("{key}[{i}]"), redact_serde(&e)))
            })
            .collect(),
        Some(other) => Err(FieldError::new(
            key,
            format!("must be an array, got {}", kind(&other)),
        )),
    }
}

/// A serde error message with anything quoted from the input removed (it may be a secret).
pub(crate) fn redact_serde(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    // serde_json appends " at line L column C"; the useful part comes first.
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    // `invalid value: string "…"` and `invalid type: string "…"` quote the input.
    let mut out = String::with_capacity(msg.len());
    let mut in_quote = false;
    for c in msg.chars() {
        if c == '"' {
            if !in_quote {
                out.push_str("\"…\"");
            }
            in_quote = !in_quote;
        } else if !in_quote {
            out.push(c);
        }
    }
    out
}

/// Reads one user of an Auth0 bulk-import file (the inverse of [`to_bulk_user`]).
///
/// `user_id` becomes `source_id` `auth0|<id>`; `password_hash` becomes a plain bcrypt
/// [`PasswordHash`]; `custom_password_hash` is read as is. Keys outside the
/// bulk-import schema are kept in `unmapped`.
pub fn from_bulk_user(mut obj: Map<String, Value>) -> Result<UserRecord, FieldError> {
    let mut r = UserRecord::default();
    take_profile(&mut obj, &mut r)?;
    r.source_id = take_str(&mut obj, "user_id")?.map(|id| {
        if id.starts_with(AUTH0_ID_PREFIX) {
            id
        } else {
            format!("{AUTH0_ID_PREFIX}{id}")
        }
    });
    let plain = take_str(&mut obj, "password_hash")?.map(|h| PasswordHash::bcrypt(Secret::new(h)));
    let custom = match obj.remove("custom_password_hash") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<PasswordHash>(v)
                .map_err(|e| FieldError::new("custom_password_hash", redact_serde(&e)))?,
        ),
    };
    r.password = match (plain, custom) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                "custom_password_hash",
                "cannot be used together with `password_hash`",
            ));
        }
        (p, c) => p.or(c),
    };
    r.mfa = take_mfa(&mut obj, "mfa_factors")?;
    r.unmapped = obj;
    Ok(r)
}

/// Reads one user of an Auth0 user export (NDJSON line, user-profile shape).
///
/// `user_id` (already `auth0|…` or `google-oauth2|…`) becomes `source_id`. Fields
/// without a neutral equivalent go to `unmapped`: `identities` only when the user
/// has a social identity or more than one identity, and always `created_at`,
/// `updated_at`, `last_login`, `logins_count`, `last_ip`, `multifactor` and any
/// other unknown key. Exports never hold password hashes.
pub fn from_export_user(mut obj: Map<String, Value>) -> Result<UserRecord, FieldError> {
    let mut r = UserRecord::default();
    take_profile(&mut obj, &mut r)?;
    r.source_id = take_str(&mut obj, "user_id")?;
    if let Some(ids) = obj.remove("identities") {
        let list = ids.as_array().ok_or_else(|| {
            FieldError::new(
                "identities",
                format!("must be an array, got {}", kind(&ids)),
            )
        })?;
        let social = list.iter().any(|i| {
            i.get("isSocial").and_then(Value::as_bool) == Some(true)
                || i.get("provider")
                    .and_then(Value::as_str)
                    .is_some_and(|p| p != "auth0")
        });
        if social || list.len() > 1 {
            r.unmapped.insert("identities".into(), ids);
        }
    }
    // The export may also carry neutral-named OIDC fields that Auth0 keeps at the root.
    for key in [
        "middle_name",
        "locale",
        "zoneinfo",
        "birthdate",
        "gender",
        "website",
        "profile",
    ] {
        if let Some(v) = take_str(&mut obj, key)? {
            let slot = match key {
                "middle_name" => &mut r.middle_name,
                "locale" => &mut r.locale,
                "zoneinfo" => &mut r.zoneinfo,
                "birthdate" => &mut r.birthdate,
                "gender" => &mut r.gender,
                "website" => &mut r.website,
                _ => &mut r.profile,
            };
            *slot = Some(v);
        }
    }
    for (k, v) in obj {
        if !v.is_null() {
            r.unmapped.insert(k, v);
        }
    }
    Ok(r)
}

/// One user of Auth0's password-hash export.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordHashEntry {
    /// The Auth0 user id: `auth0|<alt_id>` when present, else `auth0|<_id.$oid>`.
    pub user_id: String,
    /// The e-mail address (root `email`, else the `identifiers` entry of type `email`).
    pub email: Option<String>,
    /// The hash (`$2b$10$…`).
    pub hash: Secret,
}

/// Reads one line of Auth0's password-hash export (`_id.$oid`, `alt_id`, `email`,
/// `passwordHash`, `identifiers`).
pub fn from_password_export(obj: Map<String, Value>) -> Result<PasswordHashEntry, FieldError> {
    let alt = match obj.get("alt_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) => None,
        Some(other) => {
            return Err(FieldError::new(
                "alt_id",
                format!("must be a string, got {}", kind(other)),
            ));
        }
    };
    let id = match alt {
        Some(a) => a,
        None => match obj.get("_id") {
            Some(Value::Object(o)) => match o.get("$oid") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => return Err(FieldError::new("_id.$oid", "must be a non-empty string")),
            },
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None | Some(Value::Null) => {
                return Err(FieldError::new(
                    "_id",
                    "is required when `alt_id` is absent",
                ));
            }
            Some(other) => {
                return Err(FieldError::new(
                    "_id",
                    format!("must be an object with `$oid`, got {}", kind(other)),
                ));
            }
        },
    };
    let hash = match obj.get("passwordHash") {
        Some(Value::String(s)) if !s.is_empty() => Secret::new(s.clone()),
        None | Some(Value::Null) => return Err(FieldError::new("passwordHash", "is required")),
        Some(Value::String(_)) => return Err(FieldError::new("passwordHash", "must not be empty")),
        Some(other) => {
            return Err(FieldError::new(
                "passwordHash",
                format!("must be a string, got {}", kind(other)),
            ));
        }
    };
    let email = match obj.get("email") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => obj
            .get("identifiers")
            .and_then(Value::as_array)
            .and_then(|ids| {
                ids.iter().find_map(|i| {
                    (i.get("type").and_then(Value::as_str) == Some("email"))
                        .then(|| i.get("value").and_then(Value::as_str))
                        .flatten()
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                })
            }),
    };
    Ok(PasswordHashEntry {
        user_id: format!("{AUTH0_ID_PREFIX}{id}"),
        email,
        hash,
    })
}
