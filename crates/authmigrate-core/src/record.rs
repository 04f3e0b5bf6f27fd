//! The provider-neutral user record.
//!
//! One [`UserRecord`] is one user as authmigrate understands it, whatever provider it
//! came from or goes to. Its JSON form is the *neutral* NDJSON format (one record a
//! line), documented field by field in `docs/neutral-format.md`.
//!
//! Everything secret (password hashes, salts, HMAC keys, TOTP secrets) is held in
//! [`Secret`], so `{:?}` of a record never shows it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::secret::Secret;

/// A JSON object (metadata and similar free-form maps).
pub type JsonObject = Map<String, Value>;

/// One user, provider-neutral.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The user's id at the source provider (`auth0|abc`, an Authgear `sub`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,

    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the e-mail address is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Phone number, E.164 (`+12125550001`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Whether the phone number is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_verified: Option<bool>,
    /// Login username (Auth0 `username`, Authgear `preferred_username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,

    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Middle name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Nickname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// Picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Profile page URL (OIDC `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Web site URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Locale, BCP 47 (`en`, `zh-Hant-HK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Time zone, IANA name (`Europe/Paris`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoneinfo: Option<String>,
    /// Birth date (`YYYY-MM-DD`, `--MM-DD` or `YYYY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    /// Gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,

    /// Blocked / disabled: the user may not log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,

    /// Metadata the user may edit (Auth0 `user_metadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<JsonObject>,
    /// Metadata only the application may edit (Auth0 `app_metadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_metadata: Option<JsonObject>,
    /// Typed custom attributes (Authgear `custom_attributes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_attributes: Option<JsonObject>,

    /// Role keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Group keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// `roles` is the user's whole list, also when empty (set by a tenant step that
    /// read the roles from the source). A target that sets roles exactly on update
    /// (Authgear's upsert) is then sent an empty list too, so that a user who lost
    /// their last role loses it there. False (the default): an empty list means "none
    /// given", and the target's roles are left as they are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub roles_exact: bool,
    /// `groups` is the user's whole list, also when empty: as `roles_exact`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub groups_exact: bool,

    /// The password, hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordHash>,

    /// Second factors to enrol.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mfa: Vec<MfaFactor>,

    /// Source fields that have no neutral equivalent (social identities, login
    /// counts, timestamps...). Kept so that converters can report them per user
    /// instead of dropping them silently.
    #[serde(default, skip_serializing_if = "JsonObject::is_empty")]
    pub unmapped: JsonObject,
}

impl UserRecord {
    /// A short, non-secret label for messages: e-mail, else username, else phone,
    /// else the source id.
    pub fn label(&self) -> Option<&str> {
        self.email
            .as_deref()
            .or(self.username.as_deref())
            .or(self.phone_number.as_deref())
            .or(self.source_id.as_deref())
    }
}

/// A postal address (OIDC `address` claim).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Full address, formatted for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// Street.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// State or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A second factor to enrol. The JSON form is Auth0's `mfa_factors` item:
/// `{"totp":{"secret":"..."}}`, `{"phone":{"value":"+1..."}}`, `{"email":{"value":"..."}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum MfaFactor {
    /// A TOTP authenticator.
    Totp {
        /// Unpadded base32 secret.
        secret: Secret,
    },
    /// SMS / voice to a phone number.
    Phone {
        /// E.164 number.
        value: String,
    },
    /// One-time codes by e-mail.
    Email {
        /// E-mail address.
        value: String,
    },
}

/// A hashed password, in the shape of Auth0's `custom_password_hash` (the documented
/// superset of what either provider accepts).
///
/// Plain bcrypt is `{"algorithm":"bcrypt","hash":{"value":"$2b$10$..."}}`; see
/// [`PasswordHash::bcrypt`]. Which parameters apply to which algorithm is checked by
/// [`PasswordHash::problems`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordHash {
    /// The hash algorithm.
    pub algorithm: HashAlgorithm,
    /// The hash value and how it is encoded.
    pub hash: HashValue,
    /// Salt, where the algorithm takes one outside the hash string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<Salt>,
    /// How the plaintext password was encoded before hashing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordEncodingSpec>,
    /// scrypt: derived key length in bytes (required for scrypt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keylen: Option<u32>,
    /// scrypt: CPU/memory cost N (default 16384).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<u32>,
    /// scrypt: block size r (default 8).
    #[serde(default, rename = "blockSize", skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// scrypt: parallelization p (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelization: Option<u32>,
}

/// The cost of a modular-crypt bcrypt string (`$2b$10$...` → 10), as
/// [`PasswordHash::bcrypt_cost`] reads it.
pub fn bcrypt_cost_of(hash: &str) -> Option<u32> {
    let mut parts = hash.split('$');
    parts.next()?; // empty before the first '$'
    parts.next()?; // version
    parts.next()?.parse().ok()
}

/// The version tag of a modular-crypt bcrypt string (`$2b$10$...` → `2b`), as
/// [`PasswordHash::bcrypt_version`] reads it.
pub fn bcrypt_version_of(hash: &str) -> Option<&str> {
    hash.strip_prefix('$')?.split('$').next()
}

impl PasswordHash {
    /// A plain bcrypt hash in modular-crypt form (`$2b$10$...`).
    pub fn bcrypt(hash: impl Into<Secret>) -> Self {
        Self {
            algorithm: HashAlgorithm::Bcrypt,
            hash: HashValue {
                value: hash.into(),
                encoding: None,
                digest: None,
                key: None,
            },
            salt: None,
            password: None,
            keylen: None,
            cost: None,
            block_size: None,
            parallelization: None,
        }
    }

    /// The modular-crypt bcrypt string when this is plain bcrypt (no external salt).
    pub fn as_plain_bcrypt(&self) -> Option<&Secret> {
        (self.algorithm == HashAlgorithm::Bcrypt && self.salt.is_none()).then_some(&self.hash.value)
    }

    /// The bcrypt cost encoded in a plain bcrypt hash (`$2b$10$...` → 10).
    pub fn bcrypt_cost(&self) -> Option<u32> {
        bcrypt_cost_of(self.as_plain_bcrypt()?.expose())
    }

    /// The bcrypt version tag (`2a`, `2b`, `2y`) of a plain bcrypt hash.
    pub fn bcrypt_version(&self) -> Option<&str> {
        bcrypt_version_of(self.as_plain_bcrypt()?.expose())
    }

    /// Every problem with this hash's shape, as (field path under `password`, reason).
    /// Follows the per-algorithm rules of Auth0's bulk-import schema.
    pub fn problems(&self) -> Vec<(String, String)> {
        use HashAlgorithm as A;
        let mut out = Vec::new();
        let mut bad = |field: &str, reason: String| out.push((field.to_owned(), reason));
        if self.hash.value.is_empty() {
            bad("hash.value", "must not be empty".into());
        }
        let enc = self.hash.encoding.unwrap_or(Encoding::Utf8);
        match self.algorithm {
            A::Argon2 | A::Bcrypt | A::Ldap | A::Pbkdf2 => {
                if enc != Encoding::Utf8 {
                    bad(
                        "hash.encoding",
                        format!("must be `utf8` for {}", self.algorithm.as_str()),
                    );
                }
            }
            A::Hmac | A::Md4 | A::Md5 | A::Sha1 | A::Sha256 | A::Sha512 | A::Scrypt => {
                if self.hash.encoding.is_none() || enc == Encoding::Utf8 {
                    bad(
                        "hash.encoding",
                        format!("must be `hex` or `base64` for {}", self.algorithm.as_str()),
                    );
                }
            }
        }
        if matches!(self.algorithm, A::Argon2 | A::Ldap | A::Pbkdf2) && self.salt.is_some() {
            bad(
                "salt",
                format!(
                    "is not allowed for {} (the salt is inside the hash string)",
                    self.algorithm.as_str()
                ),
            );
        }
        if self.algorithm == A::Hmac {
            if self.hash.digest.is_none() {
                bad("hash.digest", "is required for hmac".into());
            }
            if self.hash.key.is_none() {
                bad("hash.key", "is required for hmac".into());
            }
        } else {
            if self.hash.digest.is_some() {
                bad("hash.digest", "is only allowed for hmac".into());
            }
            if self.hash.key.is_some() {
                bad("hash.key", "is only allowed for hmac".into());
            }
        }
        if self.algorithm == A::Scrypt {
            match self.keylen {
                None => bad("keylen", "is required for scrypt".into()),
                Some(0) => bad("keylen", "must be greater than 0".into()),
                Some(_) => {}
            }
            if let Some(cost) = self.cost
                && (cost < 2 || !cost.is_power_of_two())
            {
                bad("cost", "must be a power of two greater than 1".into());
            }
            if self.block_size == Some(0) {
                bad("blockSize", "must be positive".into());
            }
            if self.parallelization == Some(0) {
                bad("parallelization", "must be positive".into());
            }
        } else {
            for (name, v) in [
                ("keylen", self.keylen),
                ("cost", self.cost),
                ("blockSize", self.block_size),
                ("parallelization", self.parallelization),
            ] {
                if v.is_some() {
                    bad(name, "is only allowed for scrypt".into());
                }
            }
        }
        let value = self.hash.value.expose();
        match self.algorithm {
            A::Bcrypt => {
                if !["$2a$", "$2b$", "$2y$"]
                    .iter()
                    .any(|p| value.starts_with(p))
                {
                    bad(
                        "hash.value",
                        "bcrypt hash must start with `$2a$`, `$2b$` or `$2y$`".into(),
                    );
                } else if value.len() != 60 {
                    bad(
                        "hash.value",
                        format!("bcrypt hash must be 60 characters, got {}", value.len()),
                    );
                }
            }
            A::Argon2 if !value.starts_with("$argon2") => {
                bad(
                    "hash.value",
                    "argon2 hash must be a PHC string starting with `$argon2`".into(),
                );
            }
            A::Pbkdf2 if !value.starts_with("$pbkdf2-") => {
                bad(
                    "hash.value",
                    "pbkdf2 hash must be a PHC string starting with `$pbkdf2-`".into(),
                );
            }
            A::Ldap => {
                let scheme = value
                    .strip_prefix('{')
                    .and_then(|v| v.split_once('}'))
                    .map(|(s, _)| s.to_ascii_lowercase());
                match scheme {
                    Some(s)
                        if s == "md5"
                            || s == "smd5"
                            || s.starts_with("sha")
                            || s.starts_with("ssha") => {}
                    _ => bad(
                        "hash.value",
                        "ldap hash must be RFC 2307 `{SCHEME}...` with MD5, SMD5, SHA* or SSHA*"
                            .into(),
                    ),
                }
            }
            _ => {}
        }
        out
    }
}

/// Hash algorithms (Auth0's `custom_password_hash.algorithm` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum HashAlgorithm {
    Argon2,
    Bcrypt,
    Hmac,
    Ldap,
    Md4,
    Md5,
    Sha1,
    Sha256,
    Sha512,
    Pbkdf2,
    Scrypt,
}

impl HashAlgorithm {
    /// Every algorithm.
    pub const ALL: [Self; 11] = [
        Self::Argon2,
        Self::Bcrypt,
        Self::Hmac,
        Self::Ldap,
        Self::Md4,
        Self::Md5,
        Self::Sha1,
        Self::Sha256,
        Self::Sha512,
        Self::Pbkdf2,
        Self::Scrypt,
    ];

    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Argon2 => "argon2",
            Self::Bcrypt => "bcrypt",
            Self::Hmac => "hmac",
            Self::Ldap => "ldap",
            Self::Md4 => "md4",
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
            Self::Pbkdf2 => "pbkdf2",
            Self::Scrypt => "scrypt",
        }
    }
}

/// The hash value of a [`PasswordHash`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashValue {
    /// The hash itself.
    pub value: Secret,
    /// How `value` is encoded (`utf8` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// HMAC only: the digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<HmacDigest>,
    /// HMAC only: the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<EncodedSecret>,
}

/// A secret with its encoding (an HMAC key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodedSecret {
    /// The value.
    pub value: Secret,
    /// Its encoding (`utf8` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

/// A salt kept outside the hash string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Salt {
    /// The salt.
    pub value: Secret,
    /// Its encoding (`utf8` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Whether it goes before or after the password (`prefix` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<SaltPosition>,
}

/// Byte encodings of hash values, keys and salts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Encoding {
    Base64,
    Hex,
    Utf8,
}

/// Where a salt goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum SaltPosition {
    Prefix,
    Suffix,
}

/// HMAC digests Auth0 accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum HmacDigest {
    Md4,
    Md5,
    Ripemd160,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Whirlpool,
}

/// How the plaintext was encoded before hashing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordEncodingSpec {
    /// The encoding (`utf8` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<PasswordEncoding>,
}

/// Plaintext encodings Auth0 accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum PasswordEncoding {
    Ascii,
    Utf8,
    Utf16le,
    Ucs2,
    Latin1,
    Binary,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K";

    fn full_record() -> UserRecord {
        let mut sha = PasswordHash::bcrypt("unused");
        sha.algorithm = HashAlgorithm::Hmac;
        sha.hash = HashValue {
            value: Secret::new("cg7f42jH39/2EaAU4wNd4s2lKIk="),
            encoding: Some(Encoding::Base64),
            digest: Some(HmacDigest::Sha1),
            key: Some(EncodedSecret {
                value: Secret::new("736868"),
                encoding: Some(Encoding::Hex),
            }),
        };
        UserRecord {
            email: Some("ada@example.com".into()),
            password: Some(sha),
            mfa: vec![MfaFactor::Totp {
                secret: Secret::new("JBSWY3DPEHPK3PXP"),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn debug_never_shows_hashes_keys_or_totp_secrets() {
        let mut r = full_record();
        let dbg = format!("{r:?}");
        for secret in ["cg7f42jH39", "736868", "JBSWY3DPEHPK3PXP"] {
            assert!(!dbg.contains(secret), "{secret} leaked in {dbg}");
        }
        assert!(dbg.contains("ada@example.com"));
        r.password = Some(PasswordHash::bcrypt(HELLO));
        assert!(!format!("{r:?}").contains("nFguVi9L"));
        assert!(!format!("{:#?}", r).contains("nFguVi9L"));
    }

    #[test]
    fn neutral_json_round_trips_and_uses_auth0_shapes() {
        let r = full_record();
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(r#""mfa":[{"totp":{"secret":"JBSWY3DPEHPK3PXP"}}]"#),
            "{json}"
        );
        assert!(json.contains(r#""digest":"sha1""#));
        let back: UserRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let err = serde_json::from_str::<UserRecord>(r#"{"emial":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("emial"), "{err}");
    }

    #[test]
    fn bcrypt_helpers_and_rules() {
        let h = PasswordHash::bcrypt(HELLO);
        assert_eq!(h.bcrypt_cost(), Some(10));
        assert_eq!(h.bcrypt_version(), Some("2b"));
        assert!(h.problems().is_empty(), "{:?}", h.problems());
        let bad = PasswordHash::bcrypt("$2x$10$short");
        let problems = bad.problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "hash.value");
        assert!(
            !problems[0].1.contains("short"),
            "reason must not echo the hash"
        );
    }

    #[test]
    fn per_algorithm_parameter_rules() {
        let mut s = PasswordHash::bcrypt("097f6197");
        s.algorithm = HashAlgorithm::Scrypt;
        s.hash.encoding = Some(Encoding::Hex);
        let fields: Vec<_> = s.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, ["keylen"]);
        s.keylen = Some(32);
        s.cost = Some(4096);
        assert!(s.problems().is_empty());
        s.cost = Some(1000);
        assert_eq!(s.problems()[0].0, "cost");

        let mut a = PasswordHash::bcrypt("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$aGFzaA");
        a.algorithm = HashAlgorithm::Argon2;
        a.salt = Some(Salt {
            value: Secret::new("x"),
            encoding: None,
            position: None,
        });
        assert_eq!(a.problems()[0].0, "salt");

        let mut h = PasswordHash::bcrypt("abc");
        h.algorithm = HashAlgorithm::Hmac;
        h.hash.encoding = Some(Encoding::Hex);
        let fields: Vec<_> = h.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, ["hash.digest", "hash.key"]);
    }
}
