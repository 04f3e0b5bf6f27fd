//! Auth0's file formats and their mapping to and from the neutral [`UserRecord`].
//!
//! - [`to_bulk_user`]: neutral → one user of a bulk-import file (`POST /api/v2/jobs/users-imports`).
//! - [`from_bulk_user`]: a bulk-import user → neutral (the inverse).
//! - [`from_export_user`]: one line of an Auth0 user export (NDJSON) → neutral.
//! - [`from_password_export`]: one line of the password-hash export (support ticket) → [`PasswordHashEntry`].
//! - [`from_export_str`], [`password_entry_from_str`]: fast paths of the two export
//!   readers, straight from a line's text; they decline (`None`) anything the
//!   `Map` readers would refuse, and those then say why.
//!
//! Nothing here does I/O or HTTP. Field-by-field notes are in `docs/mapping.md`.

use std::borrow::Cow;
use std::fmt;

use authmigrate_core::backend::RecordFailure;
use authmigrate_core::record::{
    Address, Encoding, JsonObject, MfaFactor, PasswordHash, UserRecord,
};
use authmigrate_core::secret::Secret;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
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
        // Auth0 takes TOTP secrets as unpadded upper-case base32 (`^[A-Z2-7]+$`,
        // bulk-user-import-schema); padding, case and spacing are not part of the secret
        // (RFC 4648 §3.2, §6), so they are removed, which keeps the same key.
        let factors: Vec<MfaFactor> = record.mfa[..take]
            .iter()
            .map(|f| match f {
                MfaFactor::Totp { secret } => MfaFactor::Totp {
                    secret: Secret::new(
                        secret
                            .expose()
                            .chars()
                            .filter(|c| *c != '=' && !c.is_whitespace() && *c != '-')
                            .map(|c| c.to_ascii_uppercase())
                            .collect::<String>(),
                    ),
                },
                other => other.clone(),
            })
            .collect();
        let factors = serde_json::to_value(&factors)
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
    match obj.shift_remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(FieldError::new(
            key,
            format!("must be a string, got {}", kind(&other)),
        )),
    }
}

fn take_object(obj: &mut Map<String, Value>, key: &str) -> Result<Option<JsonObject>, FieldError> {
    match obj.shift_remove(key) {
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
    match obj.shift_remove(key) {
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
    let custom = match obj.shift_remove("custom_password_hash") {
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
///
/// The CLI's Auth0 → Authgear transcoder (`authmigrate-cli/src/transcode.rs`) reads the
/// same field set without building a record: a field added here must be added there (its
/// tests compare the two line by line on generated lines that use every known field).
pub fn from_export_user(mut obj: Map<String, Value>) -> Result<UserRecord, FieldError> {
    let mut r = UserRecord::default();
    take_profile(&mut obj, &mut r)?;
    r.source_id = take_str(&mut obj, "user_id")?;
    // `identities` stays in place (and so reaches `unmapped` in file order) only when
    // it is carried.
    if let Some(ids) = obj.get("identities") {
        let list = ids.as_array().ok_or_else(|| {
            FieldError::new("identities", format!("must be an array, got {}", kind(ids)))
        })?;
        if !carries_identities(list) {
            obj.shift_remove("identities");
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

/// Whether an export's `identities` list is kept in `unmapped`: when one identity is
/// social (`isSocial: true` or a provider other than `auth0`) or there are several.
/// Shared by the slow path (over `Value`) and the fast one (over [`Lite`]).
#[doc(hidden)]
pub fn carries_identities<I: IdentityFields>(list: &[I]) -> bool {
    list.len() > 1
        || list.iter().any(|i| {
            i.bool_field("isSocial") == Some(true)
                || i.str_field("provider").is_some_and(|p| p != "auth0")
        })
}

/// What [`carries_identities`] reads of one identity: a field of the object, when it
/// is an object and the field has that type (for duplicate keys, the last value).
#[doc(hidden)]
pub trait IdentityFields {
    /// The last value of `key` when the identity is an object and that value is a boolean.
    fn bool_field(&self, key: &str) -> Option<bool>;
    /// The last value of `key` when the identity is an object and that value is a string.
    fn str_field(&self, key: &str) -> Option<&str>;
}

impl IdentityFields for Value {
    fn bool_field(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }
    fn str_field(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
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

// ---------------------------------------------------------------------------
// Fast readers: typed parses straight from the text of one line
// ---------------------------------------------------------------------------
//
// They must agree exactly with the `Map` readers above, which stay the reference
// (and give the error messages). Three serde_json details matter:
// - a `Value` object keeps the LAST value of a duplicate key at its FIRST position,
//   so every field here is overwritten, never refused, when it comes again, and a
//   wrong type only counts if it is the last value;
// - `IgnoredAny` skips more than `Value` accepts (lone surrogates in `\u` escapes,
//   floats out of range, nesting deeper than 128), so skipped values go through
//   [`Skip`], which parses like `Value` and keeps nothing;
// - with the `raw_value` feature, a `Value` object whose first key is serde_json's
//   raw-value token is not an object at all: the fast readers decline it.

/// The first key that makes serde_json read an object as a raw value.
#[doc(hidden)]
pub const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// A string borrowed from the input when it holds no escape.
struct CowStr<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads the next key of an object; refuses the raw-value token as a first key.
fn next_key<'de, A: MapAccess<'de>>(
    map: &mut A,
    first: &mut bool,
) -> Result<Option<Cow<'de, str>>, A::Error> {
    let key = map.next_key::<CowStr<'de>>()?.map(|k| k.0);
    if std::mem::take(first) && key.as_deref() == Some(RAW_VALUE_TOKEN) {
        return Err(de::Error::custom("raw value token"));
    }
    Ok(key)
}

/// Any JSON value, checked exactly as `Value` would check it, then dropped.
#[doc(hidden)]
#[derive(Debug)]
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

/// The visitor of [`Skip`], for visitors that skip a container they were handed.
#[doc(hidden)]
#[derive(Debug)]
pub struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        let mut first = true;
        while next_key(&mut map, &mut first)?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// Implements every `Visitor` method serde_json calls besides the ones a visitor
/// cares about, mapping them to `$other` (containers are skipped first).
macro_rules! other_values {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

/// The value of a string field: `Some` for a string, `None` for null, `Err(())` for
/// any other type (only an error if no later duplicate replaces it).
type Slot<T> = Result<Option<T>, ()>;

/// A string-or-null field, read without going through `Value`.
struct StrField(Slot<String>);

impl<'de> Deserialize<'de> for StrField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StrField, E> {
                Ok(StrField(Ok(Some(s.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<StrField, E> {
                Ok(StrField(Ok(Some(s))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StrField, E> {
                Ok(StrField(Ok(None)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<StrField, E> {
                Ok(StrField(Err(())))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<StrField, E> {
                Ok(StrField(Err(())))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<StrField, E> {
                Ok(StrField(Err(())))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<StrField, E> {
                Ok(StrField(Err(())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<StrField, A::Error> {
                SkipVisitor.visit_seq(seq)?;
                Ok(StrField(Err(())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StrField, A::Error> {
                SkipVisitor.visit_map(map)?;
                Ok(StrField(Err(())))
            }
        }
        d.deserialize_any(V)
    }
}

/// Stores the last value of a field, remembering (in `bad`) whether it has the wrong type.
fn store<T>(slot: &mut Option<T>, bad: &mut u32, bit: u32, value: Slot<T>) {
    match value {
        Ok(v) => {
            *slot = v;
            *bad &= !(1 << bit);
        }
        Err(()) => *bad |= 1 << bit,
    }
}

fn bool_slot(v: Value) -> Slot<bool> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        _ => Err(()),
    }
}

fn object_slot(v: Value) -> Slot<JsonObject> {
    match v {
        Value::Null => Ok(None),
        Value::Object(o) => Ok(Some(o)),
        _ => Err(()),
    }
}

/// A JSON value whose strings are borrowed from the input where possible, for
/// `identities`: usually a single `auth0` identity that is dropped, so building a
/// `Value` (maps, hashed keys, owned strings) would be wasted. Parsed exactly as
/// `Value` would be, and turned into one by [`Lite::into_value`] when kept.
enum Lite<'de> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(Cow<'de, str>),
    Array(Vec<Lite<'de>>),
    /// Entries in file order, duplicates included.
    Object(Vec<(Cow<'de, str>, Lite<'de>)>),
}

impl Lite<'_> {
    /// The `Value` serde_json would have built: for duplicate keys, the last value
    /// at the first position.
    fn into_value(self) -> Value {
        match self {
            Lite::Null => Value::Null,
            Lite::Bool(b) => Value::Bool(b),
            Lite::Number(n) => Value::Number(n),
            Lite::Str(s) => Value::String(s.into_owned()),
            Lite::Array(items) => Value::Array(items.into_iter().map(Lite::into_value).collect()),
            Lite::Object(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k.into_owned(), v.into_value());
                }
                Value::Object(map)
            }
        }
    }

    /// The last value of `key`, if this is an object that has it.
    fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Lite::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl IdentityFields for Lite<'_> {
    fn bool_field(&self, key: &str) -> Option<bool> {
        match self.get(key) {
            Some(Lite::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    fn str_field(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Lite::Str(s)) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Lite<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lite<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Lite<'de>, E> {
                Ok(Lite::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Lite<'de>, E> {
                Ok(Lite::Number(n.into()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Lite<'de>, E> {
                Ok(Lite::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Lite<'de>, E> {
                // As `Value` does (serde_json never yields a non-finite float).
                Ok(serde_json::Number::from_f64(n).map_or(Lite::Null, Lite::Number))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Lite<'de>, E> {
                Ok(Lite::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Lite<'de>, E> {
                Ok(Lite::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Lite<'de>, E> {
                Ok(Lite::Str(Cow::Owned(s)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Lite<'de>, E> {
                Ok(Lite::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lite<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Lite::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lite<'de>, A::Error> {
                let mut first = true;
                let mut entries = Vec::new();
                while let Some(key) = next_key(&mut map, &mut first)? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Lite::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads one export line into a record; `Ok(None)` when a field has the wrong type.
struct ExportVisitor;

impl<'de> Visitor<'de> for ExportVisitor {
    type Value = Option<UserRecord>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = UserRecord {
            unmapped: Map::with_capacity(8),
            ..UserRecord::default()
        };
        let mut bad = 0u32;
        let mut first = true;
        // The last `identities` and the place of the first one among the unmapped keys.
        let mut identities: Option<(usize, Lite<'de>)> = None;
        let mut nulls = false;
        while let Some(key) = next_key(&mut map, &mut first)? {
            let (slot, bit) = match &*key {
                "email" => (&mut r.email, 0),
                "phone_number" => (&mut r.phone_number, 1),
                "username" => (&mut r.username, 2),
                "name" => (&mut r.name, 3),
                "given_name" => (&mut r.given_name, 4),
                "family_name" => (&mut r.family_name, 5),
                "nickname" => (&mut r.nickname, 6),
                "picture" => (&mut r.picture, 7),
                "user_id" => (&mut r.source_id, 8),
                "middle_name" => (&mut r.middle_name, 9),
                "locale" => (&mut r.locale, 10),
                "zoneinfo" => (&mut r.zoneinfo, 11),
                "birthdate" => (&mut r.birthdate, 12),
                "gender" => (&mut r.gender, 13),
                "website" => (&mut r.website, 14),
                "profile" => (&mut r.profile, 15),
                "email_verified" => {
                    let v = bool_slot(map.next_value()?);
                    store(&mut r.email_verified, &mut bad, 16, v);
                    continue;
                }
                "phone_verified" => {
                    let v = bool_slot(map.next_value()?);
                    store(&mut r.phone_verified, &mut bad, 17, v);
                    continue;
                }
                "blocked" => {
                    let v = bool_slot(map.next_value()?);
                    store(&mut r.blocked, &mut bad, 18, v);
                    continue;
                }
                "app_metadata" => {
                    let v = object_slot(map.next_value()?);
                    store(&mut r.app_metadata, &mut bad, 19, v);
                    continue;
                }
                "user_metadata" => {
                    let v = object_slot(map.next_value()?);
                    store(&mut r.user_metadata, &mut bad, 20, v);
                    continue;
                }
                "identities" => {
                    let v: Lite<'de> = map.next_value()?;
                    let at = identities.map_or(r.unmapped.len(), |(at, _)| at);
                    identities = Some((at, v));
                    continue;
                }
                _ => {
                    // Unknown keys keep their place; nulls go once the last
                    // duplicate is known.
                    let v: Value = map.next_value()?;
                    nulls |= v.is_null();
                    r.unmapped.insert(key.into_owned(), v);
                    continue;
                }
            };
            let v = map.next_value::<StrField>()?.0;
            store(slot, &mut bad, bit, v);
        }
        if bad != 0 {
            return Ok(None);
        }
        if let Some((at, ids)) = identities {
            let Lite::Array(list) = &ids else {
                return Ok(None);
            };
            if carries_identities(list) {
                r.unmapped
                    .shift_insert(at, "identities".to_owned(), ids.into_value());
            }
        }
        if nulls {
            r.unmapped.retain(|_, v| !v.is_null());
        }
        Ok(Some(r))
    }
}

/// Runs `visitor` on the object that is all of `text`; `None` on any error.
fn read_object<'de, V>(text: &'de str, visitor: V) -> Option<V::Value>
where
    V: Visitor<'de>,
{
    let mut de = serde_json::Deserializer::from_str(text);
    let value = de::Deserializer::deserialize_map(&mut de, visitor).ok()?;
    de.end().ok()?;
    Some(value)
}

/// Fast path of [`from_export_user`]: reads one export line straight from its JSON text.
/// `Some(record)` equals `from_export_user(parsed object)` exactly; `None` whenever
/// anything is off (invalid JSON, not an object, a field of the wrong type, trailing text):
/// the caller then runs the slow path, which says precisely what is wrong.
pub fn from_export_str(text: &str) -> Option<UserRecord> {
    read_object(text, ExportVisitor).flatten()
}

/// The `_id` of a password-export line: the id it gives, if it gives a usable one
/// (a non-empty string, or an object whose last `$oid` is a non-empty string).
struct IdField<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for IdField<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            other_values!(IdField(None));
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<IdField<'de>, E> {
                Ok(IdField((!s.is_empty()).then_some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<IdField<'de>, E> {
                Ok(IdField((!s.is_empty()).then(|| Cow::Owned(s.to_owned()))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<IdField<'de>, A::Error> {
                SkipVisitor.visit_seq(seq)?;
                Ok(IdField(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdField<'de>, A::Error> {
                let mut first = true;
                let mut oid = None;
                while let Some(key) = next_key(&mut map, &mut first)? {
                    if key == "$oid" {
                        oid = map.next_value::<NonEmptyStr<'de>>()?.0;
                    } else {
                        map.next_value::<Skip>()?;
                    }
                }
                Ok(IdField(oid))
            }
        }
        d.deserialize_any(V)
    }
}

/// Any value, kept only when it is a non-empty string.
struct NonEmptyStr<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for NonEmptyStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NonEmptyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            other_values!(NonEmptyStr(None));
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<NonEmptyStr<'de>, E> {
                Ok(NonEmptyStr((!s.is_empty()).then_some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<NonEmptyStr<'de>, E> {
                Ok(NonEmptyStr(
                    (!s.is_empty()).then(|| Cow::Owned(s.to_owned())),
                ))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<NonEmptyStr<'de>, A::Error> {
                SkipVisitor.visit_seq(seq)?;
                Ok(NonEmptyStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NonEmptyStr<'de>, A::Error> {
                SkipVisitor.visit_map(map)?;
                Ok(NonEmptyStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `alt_id`: `Ok(None)` when absent, null or empty; `Err(())` when not a string.
struct AltId(Slot<String>);

impl<'de> Deserialize<'de> for AltId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let StrField(v) = StrField::deserialize(d)?;
        Ok(AltId(v.map(|s| s.filter(|s| !s.is_empty()))))
    }
}

/// Whether a value is the string `email`.
struct IsEmail(bool);

impl<'de> Deserialize<'de> for IsEmail {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IsEmail;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            other_values!(IsEmail(false));
            fn visit_str<E: de::Error>(self, s: &str) -> Result<IsEmail, E> {
                Ok(IsEmail(s == "email"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<IsEmail, A::Error> {
                SkipVisitor.visit_seq(seq)?;
                Ok(IsEmail(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<IsEmail, A::Error> {
                SkipVisitor.visit_map(map)?;
                Ok(IsEmail(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// `identifiers`: the value of the first entry of type `email` with a non-empty
/// string value, if any (anything that is not an array gives none).
struct IdentifiersEmail<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for IdentifiersEmail<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entry<'a>(Option<Cow<'a, str>>);
        impl<'de> Deserialize<'de> for Entry<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Entry<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("any JSON value")
                    }
                    other_values!(Entry(None));
                    fn visit_str<E: de::Error>(self, _: &str) -> Result<Entry<'de>, E> {
                        Ok(Entry(None))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Entry<'de>, A::Error> {
                        SkipVisitor.visit_seq(seq)?;
                        Ok(Entry(None))
                    }
                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Entry<'de>, A::Error> {
                        let mut first = true;
                        let mut is_email = false;
                        let mut value = None;
                        while let Some(key) = next_key(&mut map, &mut first)? {
                            match &*key {
                                "type" => is_email = map.next_value::<IsEmail>()?.0,
                                "value" => value = map.next_value::<NonEmptyStr<'de>>()?.0,
                                _ => {
                                    map.next_value::<Skip>()?;
                                }
                            }
                        }
                        Ok(Entry(value.filter(|_| is_email)))
                    }
                }
                d.deserialize_any(V)
            }
        }

        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdentifiersEmail<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            other_values!(IdentifiersEmail(None));
            fn visit_str<E: de::Error>(self, _: &str) -> Result<IdentifiersEmail<'de>, E> {
                Ok(IdentifiersEmail(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<IdentifiersEmail<'de>, A::Error> {
                let mut found = None;
                while let Some(Entry(e)) = seq.next_element::<Entry<'de>>()? {
                    if found.is_none() {
                        found = e;
                    }
                }
                Ok(IdentifiersEmail(found))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<IdentifiersEmail<'de>, A::Error> {
                SkipVisitor.visit_map(map)?;
                Ok(IdentifiersEmail(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads one password-export line; `Ok(None)` when the slow path would refuse it.
struct PasswordVisitor;

impl<'de> Visitor<'de> for PasswordVisitor {
    type Value = Option<PasswordParts<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut first = true;
        let mut alt: Slot<String> = Ok(None);
        let mut id = None;
        let mut hash = None;
        let mut email = None;
        let mut from_identifiers = None;
        while let Some(key) = next_key(&mut map, &mut first)? {
            match &*key {
                "alt_id" => alt = map.next_value::<AltId>()?.0,
                "_id" => id = map.next_value::<IdField<'de>>()?.0,
                "passwordHash" => hash = map.next_value::<NonEmptyStr<'de>>()?.0,
                "email" => email = map.next_value::<NonEmptyStr<'de>>()?.0,
                "identifiers" => from_identifiers = map.next_value::<IdentifiersEmail<'de>>()?.0,
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        let Ok(alt) = alt else { return Ok(None) };
        let Some(id) = alt.map(Cow::Owned).or(id) else {
            return Ok(None);
        };
        let Some(hash) = hash else { return Ok(None) };
        Ok(Some(PasswordParts {
            id,
            email: email.or(from_identifiers),
            hash,
        }))
    }
}

/// One line of the password-hash export, borrowed from its text where it can be.
pub struct PasswordParts<'a> {
    /// The id without its `auth0|` prefix (`alt_id`, else `_id.$oid`).
    pub id: Cow<'a, str>,
    /// The e-mail address (root `email`, else the `identifiers` entry of type `email`).
    pub email: Option<Cow<'a, str>>,
    /// The hash (`$2b$10$…`).
    pub hash: Cow<'a, str>,
}

impl fmt::Debug for PasswordParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordParts")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("hash", &"[REDACTED]")
            .finish()
    }
}

impl PasswordParts<'_> {
    /// The owned entry [`from_password_export`] gives for the same line.
    pub fn into_entry(self) -> PasswordHashEntry {
        PasswordHashEntry {
            user_id: format!("{AUTH0_ID_PREFIX}{}", self.id),
            email: self.email.map(Cow::into_owned),
            hash: Secret::new(self.hash.into_owned()),
        }
    }
}

/// Fast path of [`from_password_export`] without copying: the parts of one line, borrowed
/// from `text` unless they hold escapes. Same contract as [`password_entry_from_str`].
pub fn password_parts_from_str(text: &str) -> Option<PasswordParts<'_>> {
    read_object(text, PasswordVisitor).flatten()
}

/// Fast path of [`from_password_export`] for one line of the password-hash export, same contract.
pub fn password_entry_from_str(text: &str) -> Option<PasswordHashEntry> {
    password_parts_from_str(text).map(PasswordParts::into_entry)
}
