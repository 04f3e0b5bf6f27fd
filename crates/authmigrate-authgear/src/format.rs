//! Authgear's file formats and their mapping to and from the neutral [`UserRecord`].
//!
//! - [`to_import_record`]: neutral → one record of a User Import API body
//!   (`POST /_api/admin/users/import`); [`encode_import_record`] gives the same
//!   record as bytes without the intermediate `Value`; [`body_envelope`] gives the
//!   bytes around the records array.
//! - [`from_import_record`]: an import record → neutral (the inverse).
//! - [`from_export_record`]: one line of an Authgear user export (NDJSON) → neutral.
//!
//! Nothing here does I/O or HTTP. Field-by-field notes are in `docs/mapping.md`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use authmigrate_core::backend::{Encoded, RecordFailure};
use authmigrate_core::record::{
    Address, HashAlgorithm, JsonObject, MfaFactor, PasswordHash, UserRecord,
};
use authmigrate_core::secret::Secret;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The login ID an import body matches users on (`identifier`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identifier {
    /// `email`.
    #[default]
    Email,
    /// `phone_number`.
    PhoneNumber,
    /// `preferred_username`.
    PreferredUsername,
}

impl Identifier {
    /// Every identifier.
    pub const ALL: [Self; 3] = [Self::Email, Self::PhoneNumber, Self::PreferredUsername];

    /// The wire name, which is also the record field it names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::PhoneNumber => "phone_number",
            Self::PreferredUsername => "preferred_username",
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Identifier {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| format!("unknown identifier `{s}`: expected `email`, `phone_number` or `preferred_username`"))
    }
}

/// Options of [`to_import_record`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthgearMapOptions {
    /// The body's `identifier`: its field is required in every record.
    pub identifier: Identifier,
    /// `--custom-attribute SRC=DST`: a metadata path (`user_metadata.plan`,
    /// `app_metadata.tier.name`) → the name of a custom attribute declared in the
    /// project. A path without a `user_metadata.`/`app_metadata.` prefix is looked up
    /// in `user_metadata`, then `app_metadata`.
    pub custom_attributes: Vec<(String, String)>,
    /// `--custom-attribute SRC=DST:TYPE`: the declared type of attribute DST. A
    /// mapped value is converted where exact, else left out with a warning.
    pub custom_attribute_types: Vec<(String, crate::custom_attrs::AttrType)>,
    /// The reserved usernames (`--reserved-usernames FILE`; built-in by default).
    pub reserved_usernames: crate::username::ReservedUsernames,
}

pub use authmigrate_core::format::{FieldError, Mapped};
pub(crate) use authmigrate_core::format::{kind, take_bool};

/// The exact bytes around the records array of an import body:
/// `prefix + [rec,rec,...] + suffix` is the whole body, for example
/// `{"identifier":"email","upsert":false,"records":` and `}`.
pub fn body_envelope(identifier: Identifier, upsert: bool) -> (String, String) {
    (
        format!(
            "{{\"identifier\":\"{}\",\"upsert\":{},\"records\":",
            identifier.as_str(),
            upsert
        ),
        "}".to_owned(),
    )
}

/// Checks that a hash can be imported into Authgear and returns the bcrypt string.
#[doc(hidden)]
pub fn authgear_bcrypt(hash: &PasswordHash) -> Result<&Secret, RecordFailure> {
    let unsupported = |what: &str| {
        RecordFailure::new(
            "UNSUPPORTED_HASH",
            format!("`password`: Authgear imports bcrypt only; {what} hashes cannot be imported"),
        )
    };
    if hash.algorithm != HashAlgorithm::Bcrypt {
        return Err(unsupported(&format!("`{}`", hash.algorithm.as_str())));
    }
    if hash.salt.is_some() {
        return Err(unsupported("bcrypt with a separate `salt`"));
    }
    if hash.password.is_some()
        || hash
            .hash
            .encoding
            .is_some_and(|e| e != authmigrate_core::record::Encoding::Utf8)
    {
        return Err(unsupported("re-encoded bcrypt"));
    }
    let value = &hash.hash.value;
    authgear_bcrypt_str(value.expose())?;
    Ok(value)
}

/// Checks that a plain bcrypt string (`$2b$10$...`) can be imported into Authgear: the
/// string-level half of [`authgear_bcrypt`], for a hash that is not (yet) a
/// [`PasswordHash`].
#[doc(hidden)]
pub fn authgear_bcrypt_str(value: &str) -> Result<(), RecordFailure> {
    use authmigrate_core::record::{bcrypt_cost_of, bcrypt_version_of};
    let bad = |reason: String| {
        RecordFailure::new(
            "INVALID_RECORD",
            format!("`password.password_hash`: {reason}"),
        )
    };
    if !matches!(bcrypt_version_of(value), Some("2a" | "2b" | "2y")) {
        return Err(bad(
            "bcrypt hash must start with `$2a$`, `$2b$` or `$2y$`".into()
        ));
    }
    match bcrypt_cost_of(value) {
        Some(c) if (4..=31).contains(&c) => {}
        Some(c) => return Err(bad(format!("bcrypt cost {c} is outside 4..31"))),
        None => return Err(bad("bcrypt hash has no two-digit cost".into())),
    }
    if value.len() < 59 {
        return Err(bad(format!(
            "bcrypt hash is too short ({} characters)",
            value.len()
        )));
    }
    Ok(())
}

/// Looks a dotted path up in a JSON object.
fn lookup<'a>(obj: &'a JsonObject, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = obj.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// The parts joined into one string. A per-record warning is built this way rather
/// than with `format!`, which costs about three times as much, and a typical record
/// carries several warnings.
fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// Warns about an empty string, which is left out; passes anything else through.
#[doc(hidden)]
pub fn non_empty<'a>(w: &mut Vec<String>, key: &str, v: Option<&'a str>) -> Option<&'a str> {
    match v {
        Some("") => {
            // "`{key}` is empty: left out (Authgear rejects empty strings)"
            w.push(concat(&[
                "`",
                key,
                "` is empty: left out (Authgear rejects empty strings)",
            ]));
            None
        }
        other => other,
    }
}

/// Lower-cases a login ID, with a warning when that changes it; an empty one is
/// left out with a warning.
#[doc(hidden)]
pub fn login_id<'a>(w: &mut Vec<String>, key: &str, v: Option<&'a str>) -> Option<Cow<'a, str>> {
    let s = non_empty(w, key, v)?;
    // ASCII is by far the common case: only `A-Z` change, and nothing is allocated
    // when none is there.
    let lower = if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        match s.to_lowercase() {
            l if l == s => Cow::Borrowed(s),
            l => Cow::Owned(l),
        }
    };
    if matches!(lower, Cow::Owned(_)) {
        // "`{key}` lower-cased: Authgear login IDs are case-insensitive by default"
        w.push(concat(&[
            "`",
            key,
            "` lower-cased: Authgear login IDs are case-insensitive by default",
        ]));
    }
    Some(lower)
}

/// One Authgear import record borrowed from a neutral record, serialized in the
/// fixed key order of [`to_import_record`]. Holds the password hash and TOTP
/// secret: no `Debug`.
#[derive(Serialize)]
struct ImportRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nickname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<BcryptPassword<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    middle_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    picture: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    website: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gender: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    birthdate: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zoneinfo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<AddressOut<'a>>,
    #[serde(skip_serializing_if = "CustomAttributes::is_empty")]
    custom_attributes: CustomAttributes<'a>,
    #[serde(skip_serializing_if = "NonEmptyKeys::omitted")]
    roles: NonEmptyKeys<'a>,
    #[serde(skip_serializing_if = "NonEmptyKeys::omitted")]
    groups: NonEmptyKeys<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled: Option<bool>,
    #[serde(skip_serializing_if = "MfaOut::is_empty")]
    mfa: MfaOut<'a>,
}

/// `password`: `{"type":"bcrypt","password_hash":"$2b$..."}`.
#[derive(Serialize)]
struct BcryptPassword<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    password_hash: &'a Secret,
}

/// `address`, without its empty parts.
#[derive(Serialize)]
struct AddressOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    formatted: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    street_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locality: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postal_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
}

impl AddressOut<'_> {
    fn has_any(&self) -> bool {
        [
            self.formatted,
            self.street_address,
            self.locality,
            self.region,
            self.postal_code,
            self.country,
        ]
        .iter()
        .any(Option::is_some)
    }
}

/// `custom_attributes`: the record's own map, with some of its values replaced by
/// declared metadata mappings (a replaced key keeps its position), then the keys
/// the mappings added, in the order they were first set. Every value is borrowed.
#[derive(Default)]
struct CustomAttributes<'a> {
    own: Option<&'a JsonObject>,
    /// Keys of `own` set from metadata, each once.
    replaced: Vec<(&'a str, Cow<'a, Value>)>,
    /// Keys not in `own`, each once, in first-insertion order.
    added: Vec<(&'a str, Cow<'a, Value>)>,
}

impl<'a> CustomAttributes<'a> {
    fn is_empty(&self) -> bool {
        self.own.is_none_or(JsonObject::is_empty) && self.added.is_empty()
    }

    fn contains_key(&self, key: &str) -> bool {
        self.own.is_some_and(|o| o.contains_key(key)) || self.added.iter().any(|(k, _)| *k == key)
    }

    /// Sets a key like `Map::insert`: an existing key keeps its position.
    fn insert(&mut self, key: &'a str, value: Cow<'a, Value>) {
        let list = if self.own.is_some_and(|o| o.contains_key(key)) {
            &mut self.replaced
        } else {
            &mut self.added
        };
        match list.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => list.push((key, value)),
        }
    }
}

impl Serialize for CustomAttributes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let own = self.own.into_iter().flatten().map(|(k, v)| {
            let v = self
                .replaced
                .iter()
                .find(|(r, _)| *r == k.as_str())
                .map_or(v, |(_, r)| r.as_ref());
            (k.as_str(), v)
        });
        serializer.collect_map(own.chain(self.added.iter().map(|(k, v)| (*k, v.as_ref()))))
    }
}

/// `roles` / `groups`: the non-empty keys of a list.
///
/// Authgear's import sets a record's `roles` / `groups` exactly and leaves them as
/// they are when the key is absent (authgear-api.md, the `roles`, `groups` row, from
/// `pkg/lib/userimport/service.go`). So an empty list is left out, unless the record's
/// list is exact (`UserRecord::roles_exact` / `groups_exact`): then `[]` is sent, and an
/// upsert removes the user's roles or groups.
struct NonEmptyKeys<'a> {
    list: &'a [String],
    kept: usize,
    exact: bool,
}

impl<'a> NonEmptyKeys<'a> {
    fn new(list: &'a [String], exact: bool) -> Self {
        let kept = list.iter().filter(|s| !s.is_empty()).count();
        Self { list, kept, exact }
    }

    /// Whether the key is left out of the record.
    fn omitted(&self) -> bool {
        self.kept == 0 && !self.exact
    }
}

impl Serialize for NonEmptyKeys<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.list.iter().filter(|s| !s.is_empty()))
    }
}

/// One entry of `mfa`.
#[derive(Clone, Copy)]
enum MfaEntry<'a> {
    Totp(&'a Secret),
    Phone(&'a str),
    Email(&'a str),
}

/// `mfa`: the first factor of each kind, keys in the order each kind first appears.
#[derive(Default)]
struct MfaOut<'a> {
    entries: [Option<MfaEntry<'a>>; 3],
}

impl<'a> MfaOut<'a> {
    fn is_empty(&self) -> bool {
        self.entries[0].is_none()
    }

    fn push(&mut self, entry: MfaEntry<'a>) {
        if let Some(slot) = self.entries.iter_mut().find(|e| e.is_none()) {
            *slot = Some(entry);
        }
    }
}

impl Serialize for MfaOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Totp<'a> {
            secret: &'a Secret,
        }
        let mut map = serializer.serialize_map(None)?;
        for e in self.entries.iter().flatten() {
            match *e {
                MfaEntry::Totp(secret) => map.serialize_entry("totp", &Totp { secret })?,
                MfaEntry::Phone(v) => map.serialize_entry("phone_number", v)?,
                MfaEntry::Email(v) => map.serialize_entry("email", v)?,
            }
        }
        map.end()
    }
}

/// The warning for a record with a `source_id` (no id in the text: warnings are
/// tallied by text across millions of users).
#[doc(hidden)]
pub const SOURCE_ID_WARNING: &str =
    "`source_id` is not sent: Authgear assigns new ids (--id-map records the mapping)";

/// The parts of the warning for a metadata key no declared custom attribute takes:
/// "`{meta_name}.{key}` not imported: no declared custom attribute
/// (use --custom-attribute {meta_name}.{key}=NAME)".
#[doc(hidden)]
pub fn metadata_warning<'a>(meta_name: &'a str, key: &'a str) -> [&'a str; 9] {
    [
        "`",
        meta_name,
        ".",
        key,
        "` not imported: no declared custom attribute (use --custom-attribute ",
        meta_name,
        ".",
        key,
        "=NAME)",
    ]
}

/// The parts of the warning for an unmapped key:
/// "`{key}` cannot be imported into Authgear: left out".
#[doc(hidden)]
pub fn unmapped_warning(key: &str) -> [&str; 3] {
    ["`", key, "` cannot be imported into Authgear: left out"]
}

/// Maps a neutral record to its borrowed import record and its warnings: the one
/// place the mapping rules live (see [`to_import_record`]).
fn build<'a>(
    record: &'a UserRecord,
    opts: &'a AuthgearMapOptions,
) -> Result<(ImportRecord<'a>, Vec<String>), RecordFailure> {
    let id_value = match opts.identifier {
        Identifier::Email => record.email.as_deref(),
        Identifier::PhoneNumber => record.phone_number.as_deref(),
        Identifier::PreferredUsername => record.username.as_deref(),
    };
    if id_value.is_none_or(str::is_empty) {
        let neutral = match opts.identifier {
            Identifier::Email => "email",
            Identifier::PhoneNumber => "phone_number",
            Identifier::PreferredUsername => "username",
        };
        return Err(RecordFailure::new(
            "MISSING_IDENTIFIER",
            format!(
                "`{}`: required because the identifier is `{}`, but the record has no `{neutral}`",
                opts.identifier.as_str(),
                opts.identifier.as_str()
            ),
        ));
    }
    let password = record.password.as_ref().map(authgear_bcrypt).transpose()?;

    // Room for the usual warnings: one per unmapped or metadata key, and `source_id`.
    let meta_keys = |m: &Option<JsonObject>| m.as_ref().map_or(0, JsonObject::len);
    let mut w = Vec::with_capacity(
        record.unmapped.len()
            + meta_keys(&record.user_metadata)
            + meta_keys(&record.app_metadata)
            + 1,
    );
    let email = login_id(&mut w, "email", record.email.as_deref());
    let email_verified = record.email_verified.filter(|_| email.is_some());
    let preferred_username = login_id(&mut w, "preferred_username", record.username.as_deref());
    if let Some(u) = &preferred_username
        && let Err(why) = crate::username::check_username(u, &opts.reserved_usernames)
    {
        return Err(RecordFailure::new(
            "INVALID_USERNAME",
            format!("`preferred_username` {why}: Authgear would fail this record"),
        ));
    }
    let name = non_empty(&mut w, "name", record.name.as_deref());
    let nickname = non_empty(&mut w, "nickname", record.nickname.as_deref());
    let phone_number = non_empty(&mut w, "phone_number", record.phone_number.as_deref());
    let phone_number_verified = record.phone_verified.filter(|_| phone_number.is_some());
    let [
        given_name,
        family_name,
        middle_name,
        picture,
        profile,
        website,
        gender,
        birthdate,
        zoneinfo,
        locale,
    ] = [
        ("given_name", &record.given_name),
        ("family_name", &record.family_name),
        ("middle_name", &record.middle_name),
        ("picture", &record.picture),
        ("profile", &record.profile),
        ("website", &record.website),
        ("gender", &record.gender),
        ("birthdate", &record.birthdate),
        ("zoneinfo", &record.zoneinfo),
        ("locale", &record.locale),
    ]
    .map(|(key, v)| non_empty(&mut w, key, v.as_deref()));

    let address = record.address.as_ref().and_then(|a| {
        let [
            formatted,
            street_address,
            locality,
            region,
            postal_code,
            country,
        ] = [
            ("address.formatted", &a.formatted),
            ("address.street_address", &a.street_address),
            ("address.locality", &a.locality),
            ("address.region", &a.region),
            ("address.postal_code", &a.postal_code),
            ("address.country", &a.country),
        ]
        .map(|(key, v)| non_empty(&mut w, key, v.as_deref()));
        let out = AddressOut {
            formatted,
            street_address,
            locality,
            region,
            postal_code,
            country,
        };
        out.has_any().then_some(out)
    });

    // Custom attributes: the neutral ones, then the declared metadata mappings.
    let mut attrs = CustomAttributes {
        own: record.custom_attributes.as_ref(),
        ..Default::default()
    };
    let mut used_meta: Vec<(&str, &str)> = Vec::new(); // (metadata, top-level key)
    for (src, dst) in &opts.custom_attributes {
        let (candidates, path): (&[(&str, &Option<JsonObject>)], &str) =
            if let Some(p) = src.strip_prefix("user_metadata.") {
                (&[("user_metadata", &record.user_metadata)], p)
            } else if let Some(p) = src.strip_prefix("app_metadata.") {
                (&[("app_metadata", &record.app_metadata)], p)
            } else {
                (
                    &[
                        ("user_metadata", &record.user_metadata),
                        ("app_metadata", &record.app_metadata),
                    ],
                    src.as_str(),
                )
            };
        for (meta_name, meta) in candidates {
            if let Some(meta) = meta
                && let Some(v) = lookup(meta, path)
            {
                used_meta.push((meta_name, path.split('.').next().unwrap_or(path)));
                let value = match opts.custom_attribute_types.iter().find(|(d, _)| d == dst) {
                    None => Cow::Borrowed(v),
                    Some((_, ty)) => match ty.convert(v) {
                        Ok(c) if c == *v => Cow::Borrowed(v),
                        Ok(c) => Cow::Owned(c),
                        Err(why) => {
                            w.push(format!(
                                "`custom_attributes.{dst}` from `{meta_name}.{path}`: {why}: left out"
                            ));
                            break;
                        }
                    },
                };
                if attrs.contains_key(dst) {
                    w.push(format!(
                        "`custom_attributes.{dst}` set from `{meta_name}.{path}` over the record's own value"
                    ));
                }
                attrs.insert(dst, value);
                break;
            }
        }
    }
    for (meta_name, meta) in [
        ("user_metadata", &record.user_metadata),
        ("app_metadata", &record.app_metadata),
    ] {
        for key in meta.iter().flat_map(|m| m.keys()) {
            if !used_meta.contains(&(meta_name, key.as_str())) {
                w.push(concat(&metadata_warning(meta_name, key)));
            }
        }
    }

    let roles = NonEmptyKeys::new(&record.roles, record.roles_exact);
    let groups = NonEmptyKeys::new(&record.groups, record.groups_exact);
    for (key, keys) in [("roles", &roles), ("groups", &groups)] {
        if keys.kept < keys.list.len() {
            w.push(format!("`{key}`: empty keys left out"));
        }
    }

    let mut mfa = MfaOut::default();
    let (mut totps, mut phones, mut emails) = (0usize, 0usize, 0usize);
    for f in &record.mfa {
        let (n, entry) = match f {
            MfaFactor::Totp { secret } => (&mut totps, MfaEntry::Totp(secret)),
            MfaFactor::Phone { value } => (&mut phones, MfaEntry::Phone(value)),
            MfaFactor::Email { value } => (&mut emails, MfaEntry::Email(value)),
        };
        *n += 1;
        if *n == 1 {
            mfa.push(entry);
        }
    }
    for (n, what) in [(totps, "totp"), (phones, "phone"), (emails, "email")] {
        if n > 1 {
            w.push(format!(
                "`mfa`: Authgear imports one {what} factor per user; {} more left out",
                n - 1
            ));
        }
    }

    if record.source_id.as_deref().is_some_and(|s| !s.is_empty()) {
        // No id in the text: warnings are tallied by text across millions of users.
        w.push(SOURCE_ID_WARNING.into());
    }
    for key in record.unmapped.keys() {
        w.push(concat(&unmapped_warning(key)));
    }
    if record.password.is_none() {
        w.push(authmigrate_core::format::NO_PASSWORD.to_owned());
    }

    let out = ImportRecord {
        email,
        email_verified,
        preferred_username,
        name,
        nickname,
        password: password.map(|password_hash| BcryptPassword {
            kind: "bcrypt",
            password_hash,
        }),
        phone_number,
        phone_number_verified,
        given_name,
        family_name,
        middle_name,
        picture,
        profile,
        website,
        gender,
        birthdate,
        zoneinfo,
        locale,
        address,
        custom_attributes: attrs,
        roles,
        groups,
        disabled: (record.blocked == Some(true)).then_some(true),
        mfa,
    };
    Ok((out, w))
}

fn serialize_failure(e: &serde_json::Error) -> RecordFailure {
    RecordFailure::new(
        "INVALID_RECORD",
        format!("cannot serialize the record: {e}"),
    )
}

/// Maps a neutral record to one record of an Authgear import body.
///
/// Keys come in a fixed order: `email`, `email_verified`, `preferred_username`,
/// `name`, `nickname`, `password`, then `phone_number`, `phone_number_verified`,
/// `given_name`, `family_name`, `middle_name`, `picture`, `profile`, `website`,
/// `gender`, `birthdate`, `zoneinfo`, `locale`, `address`, `custom_attributes`,
/// `roles`, `groups`, `disabled`, `mfa`. E-mails and usernames are lower-cased.
/// Fails with `MISSING_IDENTIFIER` when the identifier's field is missing,
/// `UNSUPPORTED_HASH` for anything but plain bcrypt, `INVALID_RECORD` for a
/// malformed bcrypt hash.
///
/// To send or write the record, [`encode_import_record`] gives the same bytes
/// without building a [`Value`].
pub fn to_import_record(
    record: &UserRecord,
    opts: &AuthgearMapOptions,
) -> Result<Mapped, RecordFailure> {
    let (rec, warnings) = build(record, opts)?;
    let json = serde_json::to_value(&rec).map_err(|e| serialize_failure(&e))?;
    Ok(Mapped { json, warnings })
}

/// The record [`to_import_record`] maps, as its exact JSON bytes (what
/// `to_import_record(..)?.encode()` gives) with the same warnings, serialized
/// straight from the neutral record without an intermediate [`Value`].
pub fn encode_import_record(
    record: &UserRecord,
    opts: &AuthgearMapOptions,
) -> Result<Encoded, RecordFailure> {
    let (rec, warnings) = build(record, opts)?;
    let mut json = Vec::with_capacity(512);
    serde_json::to_writer(&mut json, &rec).map_err(|e| serialize_failure(&e))?;
    Ok(Encoded { json, warnings })
}

// ---------------------------------------------------------------------------
// Readers
// ---------------------------------------------------------------------------

fn as_str_field(v: Value, field: &str) -> Result<Option<String>, FieldError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(FieldError::new(
            field,
            format!("must be a string, got {}", kind(&other)),
        )),
    }
}

fn take_str(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>, FieldError> {
    obj.remove(key).map_or(Ok(None), |v| as_str_field(v, key))
}

fn take_string_list(obj: &mut Map<String, Value>, key: &str) -> Result<Vec<String>, FieldError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                other => Err(FieldError::new(
                    format!("{key}[{i}]"),
                    format!("must be a string, got {}", kind(&other)),
                )),
            })
            .collect(),
        Some(other) => Err(FieldError::new(
            key,
            format!("must be an array, got {}", kind(&other)),
        )),
    }
}

/// Reads the standard attributes shared by the import and export shapes.
fn take_profile(obj: &mut Map<String, Value>, r: &mut UserRecord) -> Result<(), FieldError> {
    r.email = take_str(obj, "email")?;
    r.email_verified = take_bool(obj, "email_verified")?;
    r.phone_number = take_str(obj, "phone_number")?;
    r.phone_verified = take_bool(obj, "phone_number_verified")?;
    r.username = take_str(obj, "preferred_username")?;
    r.name = take_str(obj, "name")?;
    r.given_name = take_str(obj, "given_name")?;
    r.family_name = take_str(obj, "family_name")?;
    r.middle_name = take_str(obj, "middle_name")?;
    r.nickname = take_str(obj, "nickname")?;
    r.picture = take_str(obj, "picture")?;
    r.profile = take_str(obj, "profile")?;
    r.website = take_str(obj, "website")?;
    r.gender = take_str(obj, "gender")?;
    r.birthdate = take_str(obj, "birthdate")?;
    r.zoneinfo = take_str(obj, "zoneinfo")?;
    r.locale = take_str(obj, "locale")?;
    r.address = match obj.remove("address") {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut a)) => {
            let mut addr = Address::default();
            for (key, slot) in [
                ("formatted", &mut addr.formatted),
                ("street_address", &mut addr.street_address),
                ("locality", &mut addr.locality),
                ("region", &mut addr.region),
                ("postal_code", &mut addr.postal_code),
                ("country", &mut addr.country),
            ] {
                if let Some(v) = a.remove(key) {
                    *slot = as_str_field(v, &format!("address.{key}"))?;
                }
            }
            if let Some(extra) = a.keys().next() {
                return Err(FieldError::new(
                    format!("address.{extra}"),
                    "is not an address field",
                ));
            }
            (addr != Address::default()).then_some(addr)
        }
        Some(other) => {
            return Err(FieldError::new(
                "address",
                format!("must be an object, got {}", kind(&other)),
            ));
        }
    };
    r.custom_attributes = match obj.remove("custom_attributes") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => (!c.is_empty()).then_some(c),
        Some(other) => {
            return Err(FieldError::new(
                "custom_attributes",
                format!("must be an object, got {}", kind(&other)),
            ));
        }
    };
    r.roles = take_string_list(obj, "roles")?;
    r.groups = take_string_list(obj, "groups")?;
    r.blocked = take_bool(obj, "disabled")?;
    Ok(())
}

/// Reads one record of an Authgear import body (the inverse of [`to_import_record`]).
///
/// `password.password_hash` becomes a plain bcrypt [`PasswordHash`] (`type` must be
/// `bcrypt`); `mfa.totp.secret`, `mfa.phone_number`, `mfa.email` become factors.
/// `password.expire_after`, `mfa.password`, `account_valid_from`/`until` and unknown
/// keys are kept in `unmapped`.
pub fn from_import_record(mut obj: Map<String, Value>) -> Result<UserRecord, FieldError> {
    let mut r = UserRecord::default();
    take_profile(&mut obj, &mut r)?;
    if let Some(p) = obj.remove("password").filter(|v| !v.is_null()) {
        let Value::Object(mut p) = p else {
            return Err(FieldError::new(
                "password",
                format!("must be an object, got {}", kind(&p)),
            ));
        };
        match p.remove("type") {
            Some(Value::String(t)) if t == "bcrypt" => {}
            Some(Value::String(t)) => {
                return Err(FieldError::new(
                    "password.type",
                    format!("must be `bcrypt`, got `{t}`"),
                ));
            }
            _ => return Err(FieldError::new("password.type", "must be `bcrypt`")),
        }
        match p.remove("password_hash") {
            Some(Value::String(h)) if !h.is_empty() => {
                r.password = Some(PasswordHash::bcrypt(Secret::new(h)))
            }
            _ => {
                return Err(FieldError::new(
                    "password.password_hash",
                    "must be a non-empty string",
                ));
            }
        }
        for (k, v) in p {
            r.unmapped.insert(format!("password.{k}"), v);
        }
    }
    if let Some(m) = obj.remove("mfa").filter(|v| !v.is_null()) {
        let Value::Object(mut m) = m else {
            return Err(FieldError::new(
                "mfa",
                format!("must be an object, got {}", kind(&m)),
            ));
        };
        if let Some(t) = m.remove("totp").filter(|v| !v.is_null()) {
            match t.get("secret") {
                Some(Value::String(s)) if !s.is_empty() => r.mfa.push(MfaFactor::Totp {
                    secret: Secret::new(s.clone()),
                }),
                _ => {
                    return Err(FieldError::new(
                        "mfa.totp.secret",
                        "must be a non-empty string",
                    ));
                }
            }
        }
        if let Some(v) = m.remove("phone_number") {
            if let Some(value) = as_str_field(v, "mfa.phone_number")? {
                r.mfa.push(MfaFactor::Phone { value });
            }
        }
        if let Some(v) = m.remove("email") {
            if let Some(value) = as_str_field(v, "mfa.email")? {
                r.mfa.push(MfaFactor::Email { value });
            }
        }
        for (k, v) in m {
            r.unmapped.insert(format!("mfa.{k}"), v);
        }
    }
    for (k, v) in obj {
        r.unmapped.insert(k, v);
    }
    Ok(r)
}

/// Reads one line of an Authgear user export (NDJSON).
///
/// `sub` becomes `source_id`; `mfa.totps[].secret`, `mfa.phone_numbers[]`,
/// `mfa.emails[]` become factors; OAuth/LDAP `identities`, `created_at`,
/// `last_login_at` and the other account-status fields go to `unmapped` (only when
/// they carry information: `is_anonymized: false` and zero counts are dropped).
/// Exports hold no password.
pub fn from_export_record(mut obj: Map<String, Value>) -> Result<UserRecord, FieldError> {
    let mut r = UserRecord::default();
    take_profile(&mut obj, &mut r)?;
    r.source_id = take_str(&mut obj, "sub")?;
    if r.blocked == Some(false) {
        r.blocked = None;
    }
    if let Some(m) = obj.remove("mfa").filter(|v| !v.is_null()) {
        let Value::Object(mut m) = m else {
            return Err(FieldError::new(
                "mfa",
                format!("must be an object, got {}", kind(&m)),
            ));
        };
        if let Some(Value::Array(totps)) = m.remove("totps") {
            for (i, t) in totps.into_iter().enumerate() {
                match t.get("secret") {
                    Some(Value::String(s)) if !s.is_empty() => r.mfa.push(MfaFactor::Totp {
                        secret: Secret::new(s.clone()),
                    }),
                    _ => {
                        return Err(FieldError::new(
                            format!("mfa.totps[{i}].secret"),
                            "must be a non-empty string",
                        ));
                    }
                }
            }
        }
        for (key, f) in [("phone_numbers", 0u8), ("emails", 1u8)] {
            for (i, v) in take_string_list(&mut m, key)
                .map_err(|e| FieldError::new(format!("mfa.{}", e.field), e.reason))?
                .into_iter()
                .enumerate()
            {
                if v.is_empty() {
                    return Err(FieldError::new(
                        format!("mfa.{key}[{i}]"),
                        "must not be empty",
                    ));
                }
                r.mfa.push(if f == 0 {
                    MfaFactor::Phone { value: v }
                } else {
                    MfaFactor::Email { value: v }
                });
            }
        }
    }
    if let Some(ids) = obj.remove("identities") {
        let Value::Array(list) = ids else {
            return Err(FieldError::new(
                "identities",
                format!("must be an array, got {}", kind(&ids)),
            ));
        };
        let foreign: Vec<Value> = list
            .into_iter()
            .filter(|i| i.get("type").and_then(Value::as_str) != Some("login_id"))
            .collect();
        if !foreign.is_empty() {
            r.unmapped
                .insert("identities".into(), Value::Array(foreign));
        }
    }
    for (k, v) in obj {
        let empty = match (&*k, &v) {
            (_, Value::Null) => true,
            ("is_anonymized", Value::Bool(false)) => true,
            ("biometric_count" | "passkey_count", n) => n.as_u64() == Some(0),
            _ => false,
        };
        if !empty {
            r.unmapped.insert(k, v);
        }
    }
    Ok(r)
}
