//! Auth0 export line → Authgear import record, without building a `UserRecord`.
//!
//! The general path of `convert --to authgear` reads a line into a full neutral record
//! (`from_export_str`), attaches its password (`PasswordIndex::attach`) and encodes it
//! (`encode_import_record`): about thirty allocations a record. The common export line
//! needs none of that: every value the Authgear record takes is a string of the line,
//! and every warning is built from the line's keys. [`Transcoder`] reads the line with
//! borrowed strings into fixed-size tables and writes the record straight out.
//!
//! The general path stays the reference. The transcoder gives byte-identical records
//! and the same warnings in the same order, and declines (`Ok(None)`) every line whose
//! shape it does not handle, before any side effect: the caller then runs the general
//! path on it. It declines invalid JSON, fields of the wrong type, a missing
//! identifier, repeated or escaped keys, the raw-value token, more than
//! [`MAX_KEYS`] unknown or metadata keys, more than [`MAX_IDENTITIES`] identities,
//! and a looked-up hash Authgear cannot import (the general path says why).
//!
//! The rules themselves are not re-typed here: the identities keep-rule, the
//! validating skipper and the raw-value token come from `authmigrate_auth0::format`;
//! the lower-casing of login ids, empty-string handling, hash checks and warning texts
//! from `authmigrate_authgear::format`.

// Until `commands/convert.rs` calls it.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use authmigrate_auth0::format::{
    IdentityFields, RAW_VALUE_TOKEN, Skip, SkipVisitor, carries_identities,
};
use authmigrate_authgear::format::{
    AuthgearMapOptions, Identifier, SOURCE_ID_WARNING, authgear_bcrypt_str, login_id,
    metadata_warning, non_empty, unmapped_warning,
};
use authmigrate_core::format::NO_PASSWORD;
use authmigrate_core::join::{JoinStats, PasswordIndex};
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

#[cfg(test)]
mod tests;

/// Most unknown keys of a line, and most keys of one metadata object, handled here.
const MAX_KEYS: usize = 16;
/// Most entries of `identities` handled here.
const MAX_IDENTITIES: usize = 8;

/// The string fields of an export line, by index in [`Parsed::strs`].
const STR_KEYS: [&str; 16] = [
    "email",
    "phone_number",
    "username",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "picture",
    "user_id",
    "middle_name",
    "locale",
    "zoneinfo",
    "birthdate",
    "gender",
    "website",
    "profile",
];
const EMAIL: usize = 0;
const PHONE_NUMBER: usize = 1;
const USERNAME: usize = 2;
const NAME: usize = 3;
const NICKNAME: usize = 6;
const USER_ID: usize = 8;
/// `(index in STR_KEYS, Authgear key)` of the plain string fields after
/// `phone_number_verified`, in the order Authgear's record lists them.
const PROFILE_FIELDS: [(usize, &str); 10] = [
    (4, "given_name"),
    (5, "family_name"),
    (9, "middle_name"),
    (7, "picture"),
    (15, "profile"),
    (14, "website"),
    (13, "gender"),
    (12, "birthdate"),
    (11, "zoneinfo"),
    (10, "locale"),
];

/// Boolean fields, by index in [`Parsed::bools`].
const BOOL_KEYS: [&str; 3] = ["email_verified", "phone_verified", "blocked"];
const EMAIL_VERIFIED: usize = 0;
const PHONE_VERIFIED: usize = 1;
const BLOCKED: usize = 2;

/// Metadata objects, by index in [`Parsed::meta`], in the order their warnings come.
const META_KEYS: [&str; 2] = ["user_metadata", "app_metadata"];

/// Bits of [`Parsed::seen`] after the string fields.
const BOOL_BIT: usize = STR_KEYS.len();
const META_BIT: usize = BOOL_BIT + BOOL_KEYS.len();
const IDENTITIES_BIT: usize = META_BIT + META_KEYS.len();

/// One warning of a transcoded record, in a form that is cheap to make and compare:
/// records of one export tend to carry the same warnings, and the tally compares
/// them with the record before's before spelling any text out
/// ([`Warning::write_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Warning<'t> {
    /// The whole text.
    Text(Cow<'t, str>),
    /// A key of the metadata object `META_KEYS[.0]` that no custom attribute takes.
    Metadata(usize, Cow<'t, str>),
    /// A top-level key Authgear cannot hold.
    Unmapped(Cow<'t, str>),
}

impl Warning<'_> {
    /// Appends the text `encode_import_record` gives for this warning.
    pub(crate) fn write_text(&self, out: &mut String) {
        match self {
            Warning::Text(text) => out.push_str(text),
            Warning::Metadata(meta, key) => {
                for part in metadata_warning(META_KEYS[*meta], key) {
                    out.push_str(part);
                }
            }
            Warning::Unmapped(key) => {
                for part in unmapped_warning(key) {
                    out.push_str(part);
                }
            }
        }
    }

    /// The text, in a new string.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out);
        out
    }

    /// The same warning, owning its strings (what a run of records keeps).
    pub(crate) fn to_static(&self) -> Warning<'static> {
        let own = |s: &Cow<'_, str>| Cow::Owned(s.as_ref().to_owned());
        match self {
            Warning::Text(text) => Warning::Text(own(text)),
            Warning::Metadata(meta, key) => Warning::Metadata(*meta, own(key)),
            Warning::Unmapped(key) => Warning::Unmapped(own(key)),
        }
    }
}

/// Turns Auth0 export lines into Authgear import records without building a `UserRecord`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transcoder<'a> {
    opts: &'a AuthgearMapOptions,
}

/// What one transcoded line gave.
#[derive(Debug)]
pub(crate) struct Transcoded<'t> {
    /// The record's `email` as written in the line (for reports), if any.
    pub(crate) email: Option<Cow<'t, str>>,
}

impl<'a> Transcoder<'a> {
    /// `None` when these options need the general path (`--custom-attribute` mappings
    /// declared). Every identifier is supported.
    pub(crate) fn new(opts: &'a AuthgearMapOptions) -> Option<Self> {
        opts.custom_attributes.is_empty().then_some(Self { opts })
    }

    /// Appends the Authgear import record of one Auth0 export line to `out` (no
    /// trailing newline), appends its warnings to `warnings` in the order
    /// `encode_import_record` lists them (their texts are the same), and attaches the
    /// password through `index.lookup(user_id, email, stats)` when `index` is Some.
    ///
    /// `Ok(None)`: the line is not in the shape handled here: `out`, `stats`,
    /// `warnings` untouched; the caller then runs the general path on the same line.
    /// `Err`: only an I/O error of the index (fatal).
    pub(crate) fn transcode<'t>(
        &self,
        line: &'t str,
        index: Option<&PasswordIndex>,
        stats: &mut JoinStats,
        out: &mut Vec<u8>,
        warnings: &mut Vec<Warning<'t>>,
    ) -> authmigrate_core::Result<Option<Transcoded<'t>>> {
        let mut p = Parsed::default();
        let mut de = serde_json::Deserializer::from_str(line);
        if Deserializer::deserialize_map(&mut de, Top(&mut p)).is_err() || de.end().is_err() {
            return Ok(None);
        }
        let identities_at = match p.identities_at {
            Some(at) => {
                let items = p.identities.items();
                let carried = carries_identities(items);
                if items.iter().any(|i| i.asked_other.get()) {
                    return Ok(None);
                }
                carried.then_some(at)
            }
            None => None,
        };

        let s = |i: usize| p.strs[i].as_deref();
        let id_value = match self.opts.identifier {
            Identifier::Email => s(EMAIL),
            Identifier::PhoneNumber => s(PHONE_NUMBER),
            Identifier::PreferredUsername => s(USERNAME),
        };
        if id_value.is_none_or(str::is_empty) {
            return Ok(None);
        }

        // The field rules of `encode_import_record`, in its order; `w` allocates only
        // when a field is empty or lower-cased.
        let mut w: Vec<String> = Vec::new();
        let email = login_id(&mut w, "email", s(EMAIL));
        let email_verified = p.bools[EMAIL_VERIFIED].filter(|_| email.is_some());
        let username = login_id(&mut w, "preferred_username", s(USERNAME));
        if username.as_deref().is_some_and(|u| {
            authmigrate_authgear::username::check_username(u, &self.opts.reserved_usernames)
                .is_err()
        }) {
            // The general path fails the record with its reason.
            return Ok(None);
        }
        let name = non_empty(&mut w, "name", s(NAME));
        let nickname = non_empty(&mut w, "nickname", s(NICKNAME));
        let phone_number = non_empty(&mut w, "phone_number", s(PHONE_NUMBER));
        let phone_verified = p.bools[PHONE_VERIFIED].filter(|_| phone_number.is_some());
        let profile = PROFILE_FIELDS.map(|(i, key)| non_empty(&mut w, key, s(i)));

        // The hash is looked up where the record takes it, and written from the read
        // buffer: no copy of it is made.
        let before = *stats;
        let mut password = false;
        let mut index_error = None;
        // serde_json lends a string only when it holds no escape, and it refuses raw
        // control characters: such a string, or its lower-case form, is written as is.
        let plain = !p.strs.iter().any(|v| matches!(v, Some(Cow::Owned(_))));
        let start = out.len();
        // `Ok(false)`: decline the line.
        let written = (|| -> serde_json::Result<bool> {
            let mut rec = Record::new(out, plain);
            rec.str("email", email.as_deref())?;
            rec.bool("email_verified", email_verified);
            rec.str("preferred_username", username.as_deref())?;
            rec.str("name", name)?;
            rec.str("nickname", nickname)?;
            if let Some(ix) = index {
                let hit = ix.lookup_with(s(USER_ID), s(EMAIL), stats, |hash| {
                    if authgear_bcrypt_str(hash).is_err() {
                        // The general path fails this record and says why.
                        return Ok(false);
                    }
                    rec.key("password");
                    rec.out
                        .extend_from_slice(br#"{"type":"bcrypt","password_hash":"#);
                    write_json_str(rec.out, hash)?;
                    rec.out.push(b'}');
                    Ok(true)
                });
                match hit {
                    Err(e) => {
                        index_error = Some(e);
                        return Ok(false);
                    }
                    Ok(Some(Ok(true))) => password = true,
                    Ok(Some(Ok(false))) => return Ok(false),
                    Ok(Some(Err(e))) => return Err(e),
                    Ok(None) => {}
                }
            }
            rec.str("phone_number", phone_number)?;
            rec.bool("phone_number_verified", phone_verified);
            for ((_, key), v) in PROFILE_FIELDS.iter().zip(profile) {
                rec.str(key, v)?;
            }
            rec.bool("disabled", (p.bools[BLOCKED] == Some(true)).then_some(true));
            rec.out.push(b'}');
            Ok(true)
        })();
        if let Some(e) = index_error {
            return Err(e);
        }
        if !matches!(written, Ok(true)) {
            out.truncate(start);
            *stats = before;
            return Ok(None);
        }

        warnings.extend(w.into_iter().map(|text| Warning::Text(Cow::Owned(text))));
        for (meta, keys) in p.meta.iter().enumerate() {
            warnings.extend(
                keys.iter()
                    .map(|key| Warning::Metadata(meta, Cow::Borrowed(key))),
            );
        }
        if s(USER_ID).is_some_and(|id| !id.is_empty()) {
            warnings.push(Warning::Text(Cow::Borrowed(SOURCE_ID_WARNING)));
        }
        for i in 0..=p.unknown.len {
            if identities_at == Some(i) {
                warnings.push(Warning::Unmapped(Cow::Borrowed("identities")));
            }
            if i < p.unknown.len && p.unknown.nulls & (1 << i) == 0 {
                warnings.push(Warning::Unmapped(Cow::Borrowed(p.unknown.keys[i])));
            }
        }
        if !password {
            warnings.push(Warning::Text(Cow::Borrowed(NO_PASSWORD)));
        }
        let email = p.strs[EMAIL].take();
        Ok(Some(Transcoded { email }))
    }
}

/// Writes a JSON string exactly as serde_json does. serde_json escapes only `"`, `\`
/// and control characters below 0x20; a string without them (every string of the
/// common line) is copied as is, after one branch-free scan.
fn write_json_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    let needs_escape = s.bytes().fold(false, |acc, b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if needs_escape {
        return serde_json::to_writer(&mut *out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Writes the members of one JSON object, in the compact form serde_json writes.
struct Record<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
    /// The string values need no escaping (see [`Transcoder::transcode`]).
    plain: bool,
}

impl<'o> Record<'o> {
    fn new(out: &'o mut Vec<u8>, plain: bool) -> Self {
        out.push(b'{');
        Self {
            out,
            first: true,
            plain,
        }
    }

    /// Writes `,"key":` (keys are plain ASCII: no escape needed).
    fn key(&mut self, key: &str) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn str(&mut self, key: &str, v: Option<&str>) -> serde_json::Result<()> {
        if let Some(v) = v {
            self.key(key);
            if self.plain {
                debug_assert!(!v.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
                self.out.push(b'"');
                self.out.extend_from_slice(v.as_bytes());
                self.out.push(b'"');
            } else {
                write_json_str(self.out, v)?;
            }
        }
        Ok(())
    }

    fn bool(&mut self, key: &str, v: Option<bool>) {
        if let Some(v) = v {
            self.key(key);
            self.out
                .extend_from_slice(if v { b"true" } else { b"false" });
        }
    }
}

// ---------------------------------------------------------------------------
// Reading one line
// ---------------------------------------------------------------------------

/// What a line holds, as far as the Authgear record and its warnings need it.
#[derive(Default)]
struct Parsed<'t> {
    /// By index of [`STR_KEYS`]: the last value, `None` for null.
    strs: [Option<Cow<'t, str>>; STR_KEYS.len()],
    /// By index of [`BOOL_KEYS`].
    bools: [Option<bool>; BOOL_KEYS.len()],
    /// By index of [`META_KEYS`]: the object's keys (none when absent or null).
    meta: [Keys<'t>; META_KEYS.len()],
    /// `identities`, when present.
    identities: Ids<'t>,
    /// The place of `identities` among the unknown keys, when present.
    identities_at: Option<usize>,
    /// Unknown keys in file order; `nulls` marks those whose value is null.
    unknown: Keys<'t>,
    /// Known keys met so far (a repeated key is declined).
    seen: u32,
}

/// Up to [`MAX_KEYS`] keys borrowed from the line.
#[derive(Default)]
struct Keys<'t> {
    keys: [&'t str; MAX_KEYS],
    len: usize,
    /// Bit `i`: the value of key `i` is null.
    nulls: u32,
}

impl<'t> Keys<'t> {
    fn iter(&self) -> impl Iterator<Item = &'t str> + '_ {
        self.keys[..self.len].iter().copied()
    }

    fn contains(&self, key: &str) -> bool {
        self.iter().any(|k| k == key)
    }

    /// Appends a key; `false` when the table is full.
    fn push(&mut self, key: &'t str, null: bool) -> bool {
        let Some(slot) = self.keys.get_mut(self.len) else {
            return false;
        };
        *slot = key;
        if null {
            self.nulls |= 1 << self.len;
        }
        self.len += 1;
        true
    }
}

/// What the identities keep-rule reads of each entry of `identities`.
#[derive(Default)]
struct Ids<'t> {
    items: [IdItem<'t>; MAX_IDENTITIES],
    len: usize,
}

impl<'t> Ids<'t> {
    fn items(&self) -> &[IdItem<'t>] {
        &self.items[..self.len]
    }
}

/// One entry of `identities`: the last `isSocial` and `provider`, when the entry is
/// an object and they have the type the rule reads.
#[derive(Default)]
struct IdItem<'t> {
    is_social: Option<bool>,
    provider: Option<Cow<'t, str>>,
    /// The rule asked about a field not read here: decline the line.
    asked_other: Cell<bool>,
}

impl IdentityFields for IdItem<'_> {
    fn bool_field(&self, key: &str) -> Option<bool> {
        if key == "isSocial" {
            self.is_social
        } else {
            self.asked_other.set(true);
            None
        }
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        if key == "provider" {
            self.provider.as_deref()
        } else {
            self.asked_other.set(true);
            None
        }
    }
}

/// Aborts the parse: the line is declined.
fn decline<E: de::Error>() -> E {
    E::custom("not handled by the transcoder")
}

/// A key without escapes, borrowed from the line (an escaped key is declined, and
/// so is the raw-value token).
struct Key<'t>(&'t str);

impl<'t> Deserialize<'t> for Key<'t> {
    fn deserialize<D: Deserializer<'t>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'t> Visitor<'t> for V {
            type Value = Key<'t>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key without escapes")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'t str) -> Result<Key<'t>, E> {
                if s == RAW_VALUE_TOKEN {
                    return Err(decline());
                }
                Ok(Key(s))
            }
        }
        d.deserialize_str(V)
    }
}

/// What a top-level key is.
enum Field {
    /// Index in [`STR_KEYS`].
    Str(usize),
    /// Index in [`BOOL_KEYS`].
    Bool(usize),
    /// Index in [`META_KEYS`].
    Meta(usize),
    Identities,
    Unknown,
}

/// Classifies a top-level key (a `match` compiles to a length-then-bytes dispatch).
fn classify(key: &str) -> Field {
    let field = match key {
        "email" => Field::Str(0),
        "phone_number" => Field::Str(1),
        "username" => Field::Str(2),
        "name" => Field::Str(3),
        "given_name" => Field::Str(4),
        "family_name" => Field::Str(5),
        "nickname" => Field::Str(6),
        "picture" => Field::Str(7),
        "user_id" => Field::Str(8),
        "middle_name" => Field::Str(9),
        "locale" => Field::Str(10),
        "zoneinfo" => Field::Str(11),
        "birthdate" => Field::Str(12),
        "gender" => Field::Str(13),
        "website" => Field::Str(14),
        "profile" => Field::Str(15),
        "email_verified" => Field::Bool(0),
        "phone_verified" => Field::Bool(1),
        "blocked" => Field::Bool(2),
        "user_metadata" => Field::Meta(0),
        "app_metadata" => Field::Meta(1),
        "identities" => Field::Identities,
        _ => Field::Unknown,
    };
    debug_assert!(match field {
        Field::Str(i) => STR_KEYS[i] == key,
        Field::Bool(i) => BOOL_KEYS[i] == key,
        Field::Meta(i) => META_KEYS[i] == key,
        Field::Identities | Field::Unknown => true,
    });
    field
}

/// The top-level object of a line.
struct Top<'p, 't>(&'p mut Parsed<'t>);

impl<'t> Visitor<'t> for Top<'_, 't> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'t>>(self, mut map: A) -> Result<(), A::Error> {
        let p = self.0;
        while let Some(Key(key)) = map.next_key()? {
            let bit = match classify(key) {
                Field::Str(i) => {
                    p.strs[i] = map.next_value::<StrValue<'t>>()?.0;
                    i
                }
                Field::Bool(i) => {
                    p.bools[i] = map.next_value::<BoolValue>()?.0;
                    BOOL_BIT + i
                }
                Field::Meta(i) => {
                    if p.seen & (1 << (META_BIT + i)) != 0 {
                        return Err(decline());
                    }
                    map.next_value_seed(MetaSeed(&mut p.meta[i]))?;
                    META_BIT + i
                }
                Field::Identities => {
                    if p.identities_at.is_some() {
                        return Err(decline());
                    }
                    map.next_value_seed(IdsSeed(&mut p.identities))?;
                    p.identities_at = Some(p.unknown.len);
                    IDENTITIES_BIT
                }
                Field::Unknown => {
                    if p.unknown.contains(key) {
                        return Err(decline());
                    }
                    let null = map.next_value::<IsNull>()?.0;
                    if !p.unknown.push(key, null) {
                        return Err(decline());
                    }
                    continue;
                }
            };
            if p.seen & (1 << bit) != 0 {
                return Err(decline());
            }
            p.seen |= 1 << bit;
        }
        Ok(())
    }
}

/// A string-or-null field (any other type is declined).
struct StrValue<'t>(Option<Cow<'t, str>>);

impl<'t> Deserialize<'t> for StrValue<'t> {
    fn deserialize<D: Deserializer<'t>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'t> Visitor<'t> for V {
            type Value = StrValue<'t>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'t str) -> Result<Self::Value, E> {
                Ok(StrValue(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(StrValue(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrValue(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean-or-null field (any other type is declined).
struct BoolValue(Option<bool>);

impl<'t> Deserialize<'t> for BoolValue {
    fn deserialize<D: Deserializer<'t>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'t> Visitor<'t> for V {
            type Value = BoolValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean or null")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(BoolValue(Some(b)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(BoolValue(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a metadata object's keys into an empty table, each once, in
/// first-appearance order (as `Value` keeps them); values are checked as `Value`
/// would check them and dropped. Null leaves the table empty; any other type is
/// declined.
struct MetaSeed<'p, 't>(&'p mut Keys<'t>);

impl<'t> DeserializeSeed<'t> for MetaSeed<'_, 't> {
    type Value = ();

    fn deserialize<D: Deserializer<'t>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'t> Visitor<'t> for MetaSeed<'_, 't> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'t>>(self, mut map: A) -> Result<(), A::Error> {
        let keys = self.0;
        while let Some(Key(key)) = map.next_key()? {
            map.next_value::<Skip>()?;
            if !keys.contains(key) && !keys.push(key, false) {
                return Err(decline());
            }
        }
        Ok(())
    }
}

/// Whether a value is null; anything else is checked as `Value` would check it.
struct IsNull(bool);

impl<'t> Deserialize<'t> for IsNull {
    fn deserialize<D: Deserializer<'t>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'t> Visitor<'t> for V {
            type Value = IsNull;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<IsNull, E> {
                Ok(IsNull(true))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<IsNull, E> {
                Ok(IsNull(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<IsNull, E> {
                Ok(IsNull(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<IsNull, E> {
                Ok(IsNull(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<IsNull, E> {
                Ok(IsNull(false))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<IsNull, E> {
                Ok(IsNull(false))
            }
            fn visit_seq<A: SeqAccess<'t>>(self, seq: A) -> Result<IsNull, A::Error> {
                SkipVisitor.visit_seq(seq)?;
                Ok(IsNull(false))
            }
            fn visit_map<A: MapAccess<'t>>(self, map: A) -> Result<IsNull, A::Error> {
                SkipVisitor.visit_map(map)?;
                Ok(IsNull(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads `identities` into an empty table: an array (anything else is declined, as
/// the general path refuses it).
struct IdsSeed<'p, 't>(&'p mut Ids<'t>);

impl<'t> DeserializeSeed<'t> for IdsSeed<'_, 't> {
    type Value = ();

    fn deserialize<D: Deserializer<'t>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'t> Visitor<'t> for IdsSeed<'_, 't> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'t>>(self, mut seq: A) -> Result<(), A::Error> {
        let ids = self.0;
        while let Some(item) = seq.next_element::<IdItem<'t>>()? {
            let Some(slot) = ids.items.get_mut(ids.len) else {
                return Err(decline());
            };
            *slot = item;
            ids.len += 1;
        }
        Ok(())
    }
}

/// A key of an identity object, as far as the keep-rule cares. Escapes are fine here:
/// the key is compared, never kept.
enum IdKey {
    IsSocial,
    Provider,
    Other,
}

impl<'t> Deserialize<'t> for IdKey {
    fn deserialize<D: Deserializer<'t>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'t> Visitor<'t> for V {
            type Value = IdKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<IdKey, E> {
                Ok(match s {
                    "isSocial" => IdKey::IsSocial,
                    "provider" => IdKey::Provider,
                    RAW_VALUE_TOKEN => return Err(decline()),
                    _ => IdKey::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// Implements the scalar `Visitor` methods as "not of the wanted type", and skips
/// containers the same way.
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
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_seq<A: SeqAccess<'t>>(self, seq: A) -> Result<Self::Value, A::Error> {
            SkipVisitor.visit_seq(seq)?;
            Ok($other)
        }
    };
}

impl<'t> Deserialize<'t> for IdItem<'t> {
    fn deserialize<D: Deserializer<'t>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'t> Visitor<'t> for V {
            type Value = IdItem<'t>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            other_values!(IdItem::default());
            fn visit_map<A: MapAccess<'t>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut item = IdItem::default();
                while let Some(key) = map.next_key::<IdKey>()? {
                    match key {
                        IdKey::IsSocial => item.is_social = map.next_value::<AsBool>()?.0,
                        IdKey::Provider => item.provider = map.next_value::<AsStr<'t>>()?.0,
                        IdKey::Other => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(item)
            }
        }
        d.deserialize_any(V)
    }
}

/// Any value, kept when it is a boolean.
struct AsBool(Option<bool>);

impl<'t> Deserialize<'t> for AsBool {
    fn deserialize<D: Deserializer<'t>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'t> Visitor<'t> for V {
            type Value = AsBool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(AsBool(Some(b)))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(AsBool(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(AsBool(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(AsBool(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(AsBool(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(AsBool(None))
            }
            fn visit_seq<A: SeqAccess<'t>>(self, seq: A) -> Result<Self::Value, A::Error> {
                SkipVisitor.visit_seq(seq)?;
                Ok(AsBool(None))
            }
            fn visit_map<A: MapAccess<'t>>(self, map: A) -> Result<Self::Value, A::Error> {
                SkipVisitor.visit_map(map)?;
                Ok(AsBool(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Any value, kept when it is a string.
struct AsStr<'t>(Option<Cow<'t, str>>);

impl<'t> Deserialize<'t> for AsStr<'t> {
    fn deserialize<D: Deserializer<'t>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'t> Visitor<'t> for V {
            type Value = AsStr<'t>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(AsStr(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(AsStr(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(AsStr(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(AsStr(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(AsStr(None))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'t str) -> Result<Self::Value, E> {
                Ok(AsStr(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(AsStr(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_seq<A: SeqAccess<'t>>(self, seq: A) -> Result<Self::Value, A::Error> {
                SkipVisitor.visit_seq(seq)?;
                Ok(AsStr(None))
            }
            fn visit_map<A: MapAccess<'t>>(self, map: A) -> Result<Self::Value, A::Error> {
                SkipVisitor.visit_map(map)?;
                Ok(AsStr(None))
            }
        }
        d.deserialize_any(V)
    }
}
