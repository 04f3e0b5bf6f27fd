//! Offline checks of an Auth0 bulk-import file (`authmigrate validate --for auth0`).
//!
//! [`check_user`] applies every rule of Auth0's bulk-import JSON schema to one raw
//! user object; [`Duplicates`] / [`check_file_items`] find users given twice in one
//! file; [`check_file_size`] flags files over the upload limit; [`check_file`] does
//! all of it for a whole JSON array. Problems name the field and never quote a
//! secret (password hashes, salts, keys, TOTP secrets).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use authmigrate_core::record::PasswordHash;
use serde_json::{Map, Value};

use crate::format::{FORBIDDEN_APP_METADATA_KEYS, MAX_MFA_FACTORS, kind};

/// Auth0's hard limit on the upload request, in bytes (413 above it). The docs say
/// "500KB"; the multipart envelope counts too, so a file should stay below this.
pub const MAX_FILE_BYTES: usize = 512000;

pub use authmigrate_core::format::{Located, Problem, Severity, is_plausible_email};

const ROOT_FIELDS: [&str; 17] = [
    "email",
    "email_verified",
    "phone_number",
    "phone_verified",
    "user_id",
    "username",
    "given_name",
    "family_name",
    "name",
    "nickname",
    "picture",
    "blocked",
    "password_hash",
    "custom_password_hash",
    "app_metadata",
    "user_metadata",
    "mfa_factors",
];

/// `^\+[1-9][0-9]{1,14}$` (E.164).
fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

fn expect_type(out: &mut Vec<Problem>, field: &str, v: &Value, want: &str) -> bool {
    let ok = match want {
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => false,
    };
    if !ok {
        out.push(Problem::error(
            field,
            format!("must be a {want}, got {}", kind(v)),
        ));
    }
    ok
}

/// Checks one raw user object against Auth0's bulk-import schema.
pub fn check_user(obj: &Map<String, Value>) -> Vec<Problem> {
    let mut out = Vec::new();
    for key in obj.keys() {
        if !ROOT_FIELDS.contains(&key.as_str()) {
            out.push(Problem::error(
                key,
                "is not a field of Auth0's bulk-import schema (no additional properties are allowed)",
            ));
        }
    }
    match obj.get("email") {
        None => out.push(Problem::error("email", "is required")),
        Some(v) => {
            if expect_type(&mut out, "email", v, "string")
                && !v.as_str().is_some_and(is_plausible_email)
            {
                out.push(Problem::error("email", "is not a valid e-mail address"));
            }
        }
    }
    for key in ["email_verified", "phone_verified", "blocked"] {
        if let Some(v) = obj.get(key) {
            expect_type(&mut out, key, v, "boolean");
        }
    }
    for key in [
        "user_id",
        "username",
        "given_name",
        "family_name",
        "name",
        "nickname",
        "picture",
    ] {
        if let Some(v) = obj.get(key) {
            expect_type(&mut out, key, v, "string");
        }
    }
    if let Some(v) = obj.get("phone_number")
        && expect_type(&mut out, "phone_number", v, "string")
        && !v.as_str().is_some_and(is_e164)
    {
        out.push(Problem::error(
            "phone_number",
            "must be an E.164 number: `+` then up to 15 digits, not starting with 0 (e.g. +12125550001)",
        ));
    }
    if let Some(v) = obj.get("password_hash")
        && expect_type(&mut out, "password_hash", v, "string")
    {
        check_password_hash(&mut out, v.as_str().unwrap_or_default());
    }
    if let Some(v) = obj.get("custom_password_hash") {
        check_custom_hash(&mut out, v);
        if obj.contains_key("password_hash") {
            out.push(Problem::error(
                "custom_password_hash",
                "cannot be used together with `password_hash`",
            ));
        }
    }
    if let Some(v) = obj.get("app_metadata")
        && expect_type(&mut out, "app_metadata", v, "object")
    {
        for key in v.as_object().into_iter().flat_map(|m| m.keys()) {
            if FORBIDDEN_APP_METADATA_KEYS.contains(&key.as_str()) {
                out.push(Problem::error(
                    format!("app_metadata.{key}"),
                    "is reserved by Auth0 and not allowed in `app_metadata`",
                ));
            }
        }
    }
    if let Some(v) = obj.get("user_metadata") {
        expect_type(&mut out, "user_metadata", v, "object");
    }
    if let Some(v) = obj.get("mfa_factors") {
        check_mfa(&mut out, v);
    }
    out
}

fn check_password_hash(out: &mut Vec<Problem>, h: &str) {
    let mut parts = h.split('$');
    let _ = parts.next();
    let version = parts.next().unwrap_or_default();
    let cost = parts.next().unwrap_or_default();
    if !h.starts_with('$') || !matches!(version, "2a" | "2b") {
        out.push(Problem::error(
            "password_hash",
            "must be a bcrypt hash starting with `$2a$` or `$2b$`; use `custom_password_hash` for other algorithms and `$2y$`",
        ));
    } else if cost != "10" {
        out.push(Problem::error(
            "password_hash",
            "must be a bcrypt hash with cost 10 (Auth0 requires 10 salt rounds); use `custom_password_hash` for other costs",
        ));
    } else if h.len() != 60 {
        out.push(Problem::error(
            "password_hash",
            format!("bcrypt hash must be 60 characters, got {}", h.len()),
        ));
    }
}

/// A serde error without any quoted input (it may be a secret).
fn safe_serde_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    if msg.starts_with("invalid type")
        || msg.starts_with("invalid value")
        || msg.starts_with("invalid length")
    {
        match msg.split_once(", expected ") {
            Some((_, want)) => format!("has the wrong type or value: expected {want}"),
            None => "has the wrong type or value".into(),
        }
    } else {
        msg.to_owned()
    }
}

fn check_custom_hash(out: &mut Vec<Problem>, v: &Value) {
    const F: &str = "custom_password_hash";
    let Some(o) = v.as_object() else {
        out.push(Problem::error(
            F,
            format!("must be an object, got {}", kind(v)),
        ));
        return;
    };
    let mut missing = false;
    for key in ["algorithm", "hash"] {
        if !o.contains_key(key) {
            out.push(Problem::error(format!("{F}.{key}"), "is required"));
            missing = true;
        }
    }
    if missing {
        return;
    }
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(v, &mut track);
    match <PasswordHash as serde::Deserialize>::deserialize(de) {
        Ok(hash) => {
            for (path, reason) in hash.problems() {
                out.push(Problem::error(format!("{F}.{path}"), reason));
            }
        }
        Err(e) => {
            let path = track.path().to_string();
            let field = if path == "." || path.is_empty() {
                F.to_owned()
            } else {
                format!("{F}.{path}")
            };
            out.push(Problem::error(field, safe_serde_reason(&e)));
        }
    }
}

fn check_mfa(out: &mut Vec<Problem>, v: &Value) {
    const F: &str = "mfa_factors";
    let Some(items) = v.as_array() else {
        out.push(Problem::error(
            F,
            format!("must be an array, got {}", kind(v)),
        ));
        return;
    };
    if items.is_empty() {
        out.push(Problem::error(F, "must hold at least 1 factor"));
    }
    if items.len() > MAX_MFA_FACTORS {
        out.push(Problem::error(
            F,
            format!(
                "must hold at most {MAX_MFA_FACTORS} factors, got {}",
                items.len()
            ),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        let at = format!("{F}[{i}]");
        let Some(o) = item.as_object() else {
            out.push(Problem::error(
                at,
                format!("must be an object, got {}", kind(item)),
            ));
            continue;
        };
        if o.len() != 1 {
            out.push(Problem::error(
                &at,
                "must hold exactly one of `totp`, `phone` or `email`",
            ));
            continue;
        }
        let Some((name, inner)) = o.iter().next() else {
            continue;
        };
        let (key, check): (&str, fn(&str) -> bool) = match name.as_str() {
            "totp" => ("secret", |s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
            }),
            "phone" => ("value", |s| {
                s.strip_prefix('+').is_some_and(|d| {
                    (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
                })
            }),
            "email" => ("value", is_plausible_email),
            other => {
                out.push(Problem::error(
                    format!("{at}.{other}"),
                    "is not a factor type: expected `totp`, `phone` or `email`",
                ));
                continue;
            }
        };
        let at = format!("{at}.{name}");
        let Some(inner) = inner.as_object() else {
            out.push(Problem::error(
                at,
                format!("must be an object, got {}", kind(inner)),
            ));
            continue;
        };
        for extra in inner.keys().filter(|k| *k != key) {
            out.push(Problem::error(
                format!("{at}.{extra}"),
                format!("is not allowed: only `{key}`"),
            ));
        }
        match inner.get(key) {
            None => out.push(Problem::error(format!("{at}.{key}"), "is required")),
            Some(Value::String(s)) => {
                if !check(s) {
                    let reason = match name.as_str() {
                        "totp" => "must be unpadded base32 (`^[A-Z2-7]+$`)",
                        "phone" => "must match `^\\+[0-9]{1,15}$`",
                        _ => "is not a valid e-mail address",
                    };
                    out.push(Problem::error(format!("{at}.{key}"), reason));
                }
            }
            Some(other) => out.push(Problem::error(
                format!("{at}.{key}"),
                format!("must be a string, got {}", kind(other)),
            )),
        }
    }
}

/// Finds users given twice in one file (same e-mail, username or user_id), in
/// bounded memory: only a 64-bit hash of each key and the index of its first record
/// are kept.
#[derive(Debug, Default)]
pub struct Duplicates {
    seen: HashMap<u64, usize>,
}

impl Duplicates {
    /// A fresh tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the record at `index`; returns one problem per key already seen.
    /// E-mails compare case-insensitively.
    pub fn check(&mut self, index: usize, obj: &Map<String, Value>) -> Vec<Problem> {
        let mut out = Vec::new();
        for field in ["email", "username", "user_id"] {
            let Some(value) = obj.get(field).and_then(Value::as_str) else {
                continue;
            };
            let mut h = DefaultHasher::new();
            field.hash(&mut h);
            if field == "email" {
                value.to_lowercase().hash(&mut h);
            } else {
                value.hash(&mut h);
            }
            let key = h.finish();
            match self.seen.get(&key) {
                Some(&first) => out.push(Problem::error(
                    field,
                    format!(
                        "duplicate of record {first}: a user with this {field} was already provided"
                    ),
                )),
                None => {
                    self.seen.insert(key, index);
                }
            }
        }
        out
    }
}

/// Duplicate checks over all records of one file (0-based indexes).
pub fn check_file_items<'a>(
    items: impl IntoIterator<Item = &'a Map<String, Value>>,
) -> Vec<Located> {
    let mut d = Duplicates::new();
    let mut out = Vec::new();
    for (i, obj) in items.into_iter().enumerate() {
        out.extend(d.check(i, obj).into_iter().map(|problem| Located {
            index: Some(i),
            problem,
        }));
    }
    out
}

/// A file-level problem when a single JSON array file is larger than [`MAX_FILE_BYTES`].
pub fn check_file_size(bytes: u64) -> Option<Problem> {
    (bytes > MAX_FILE_BYTES as u64).then(|| {
        Problem::error(
            "",
            format!(
                "the file is {bytes} bytes; Auth0 accepts at most {MAX_FILE_BYTES} bytes per upload (the docs say 500KB) \
                 and the multipart envelope adds to the file: split it (`authmigrate import` splits files automatically)"
            ),
        )
    })
}

/// Checks a whole bulk-import file (a JSON array of users): size, shape, every
/// user, and duplicates.
pub fn check_file(bytes: &[u8]) -> Vec<Located> {
    let mut out: Vec<Located> = check_file_size(bytes.len() as u64)
        .into_iter()
        .map(|problem| Located {
            index: None,
            problem,
        })
        .collect();
    let file = |reason: String| Located {
        index: None,
        problem: Problem::error("", reason),
    };
    let items: Vec<Value> = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(items)) => items,
        Ok(other) => {
            out.push(file(format!(
                "must be a JSON array of users, got {}",
                kind(&other)
            )));
            return out;
        }
        Err(e) => {
            out.push(file(format!(
                "is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )));
            return out;
        }
    };
    if items.is_empty() {
        out.push(file(
            "holds no users (Auth0 rejects an empty users file)".into(),
        ));
    }
    let mut dups = Duplicates::new();
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            out.push(Located {
                index: Some(i),
                problem: Problem::error("", format!("must be an object, got {}", kind(item))),
            });
            continue;
        };
        for problem in check_user(obj).into_iter().chain(dups.check(i, obj)) {
            out.push(Located {
                index: Some(i),
                problem,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HELLO: &str = "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K";

    fn check(v: Value) -> Vec<(String, String)> {
        check_user(v.as_object().unwrap())
            .into_iter()
            .map(|p| (p.field, p.reason))
            .collect()
    }

    fn fields(v: Value) -> Vec<String> {
        check(v).into_iter().map(|p| p.0).collect()
    }

    #[test]
    fn valid_user_has_no_problems() {
        let v = json!({
            "email": "ada@example.com", "email_verified": true, "username": "ada", "user_id": "abc",
            "phone_number": "+12125550001", "phone_verified": false, "blocked": false,
            "password_hash": HELLO, "app_metadata": {"plan": "pro"}, "user_metadata": {},
            "mfa_factors": [{"totp": {"secret": "JBSWY3DPEHPK3PXP"}}, {"phone": {"value": "+12125550001"}},
                            {"email": {"value": "ada@example.com"}}]
        });
        assert_eq!(check(v), Vec::<(String, String)>::new());
    }

    #[test]
    fn root_shape_required_email_and_types() {
        assert_eq!(
            check(json!({"emial": "x"})),
            [
                ("emial".to_owned(), "is not a field of Auth0's bulk-import schema (no additional properties are allowed)".to_owned()),
                ("email".to_owned(), "is required".to_owned()),
            ]
        );
        assert_eq!(
            check(json!({"email": "a@b.co", "blocked": "no", "name": 3})),
            [
                (
                    "blocked".to_owned(),
                    "must be a boolean, got a string".to_owned()
                ),
                (
                    "name".to_owned(),
                    "must be a string, got a number".to_owned()
                ),
            ]
        );
        for bad in ["no-at", "a@b", "a b@c.de", "@c.de", "a@@c.de", "a@.com"] {
            assert_eq!(fields(json!({"email": bad})), ["email"], "{bad}");
        }
        assert_eq!(
            fields(json!({"email": "a@b.co", "phone_number": "2125550001"})),
            ["phone_number"]
        );
        assert_eq!(
            fields(json!({"email": "a@b.co", "phone_number": "+0125550001"})),
            ["phone_number"]
        );
    }

    #[test]
    fn password_hash_must_be_bcrypt_cost_10_and_is_never_echoed() {
        let y = HELLO.replace("$2b$", "$2y$");
        let c12 = HELLO.replace("$10$", "$12$");
        let short = "$2b$10$SECRETSECRET";
        for (h, want) in [
            (y.as_str(), "`$2a$` or `$2b$`"),
            (c12.as_str(), "cost 10"),
            (short, "60 characters"),
        ] {
            let p = check(json!({"email": "a@b.co", "password_hash": h}));
            assert_eq!(p.len(), 1);
            assert_eq!(p[0].0, "password_hash");
            assert!(p[0].1.contains(want), "{}", p[0].1);
            assert!(!p[0].1.contains("SECRET") && !p[0].1.contains("nFguVi9L"));
        }
    }

    #[test]
    fn custom_hash_structure_and_algorithm_table() {
        let p = check(json!({"email": "a@b.co", "custom_password_hash": {"hash": {"value": "x"}}}));
        assert_eq!(
            p,
            [(
                "custom_password_hash.algorithm".to_owned(),
                "is required".to_owned()
            )]
        );
        let p = check(json!({"email": "a@b.co",
            "custom_password_hash": {"algorithm": "sha3", "hash": {"value": "SECRETVAL"}}}));
        assert_eq!(p[0].0, "custom_password_hash.algorithm");
        assert!(p[0].1.contains("unknown variant `sha3`"), "{}", p[0].1);
        let p = check(json!({"email": "a@b.co",
            "custom_password_hash": {"algorithm": "md5", "hash": {"value": "SECRETVAL", "encoding": "hex", "extra": 1}}}));
        assert_eq!(p[0].0, "custom_password_hash.hash.extra");
        assert!(p[0].1.contains("unknown field `extra`"), "{}", p[0].1);
        let p = check(json!({"email": "a@b.co",
            "custom_password_hash": {"algorithm": "scrypt", "hash": {"value": "SECRETVAL", "encoding": "hex"}, "keylen": "SECRETVAL"}}));
        assert_eq!(p[0].0, "custom_password_hash.keylen");
        assert!(!p[0].1.contains("SECRETVAL"), "{}", p[0].1);
        // The per-algorithm table (from core's PasswordHash::problems).
        let p = check(json!({"email": "a@b.co",
            "custom_password_hash": {"algorithm": "scrypt", "hash": {"value": "097f", "encoding": "hex"}, "keylen": 32, "cost": 1000}}));
        assert_eq!(
            p,
            [(
                "custom_password_hash.cost".to_owned(),
                "must be a power of two greater than 1".to_owned()
            )]
        );
        let p = fields(json!({"email": "a@b.co",
            "custom_password_hash": {"algorithm": "hmac", "hash": {"value": "SECRETVAL", "encoding": "utf8"}}}));
        assert_eq!(
            p,
            [
                "custom_password_hash.hash.encoding",
                "custom_password_hash.hash.digest",
                "custom_password_hash.hash.key"
            ]
        );
        let p = fields(json!({"email": "a@b.co",
            "custom_password_hash": {"algorithm": "argon2", "hash": {"value": "SECRETVAL"}, "salt": {"value": "s"}}}));
        assert_eq!(
            p,
            [
                "custom_password_hash.salt",
                "custom_password_hash.hash.value"
            ]
        );
        let p = check(json!({"email": "a@b.co",
            "custom_password_hash": {"algorithm": "ldap", "hash": {"value": "{CRYPT}SECRETVAL"}}}));
        assert_eq!(p[0].0, "custom_password_hash.hash.value");
        assert!(!p.iter().any(|x| x.1.contains("SECRETVAL")));
        let p = fields(json!({"email": "a@b.co", "password_hash": HELLO,
            "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": HELLO}}}));
        assert_eq!(p, ["custom_password_hash"]);
    }

    #[test]
    fn app_metadata_forbidden_keys() {
        let p = check(json!({"email": "a@b.co", "app_metadata": {"ok": 1, "clientID": "x"}}));
        assert_eq!(
            p,
            [(
                "app_metadata.clientID".to_owned(),
                "is reserved by Auth0 and not allowed in `app_metadata`".to_owned()
            )]
        );
    }

    #[test]
    fn mfa_factor_rules() {
        assert_eq!(
            check(json!({"email": "a@b.co", "mfa_factors": []}))[0].1,
            "must hold at least 1 factor"
        );
        let eleven: Vec<Value> = (0..11)
            .map(|_| json!({"email": {"value": "a@b.co"}}))
            .collect();
        assert_eq!(
            fields(json!({"email": "a@b.co", "mfa_factors": eleven})),
            ["mfa_factors"]
        );
        let p = check(json!({"email": "a@b.co", "mfa_factors": [
            {"totp": {"secret": "jbswy3dp"}},
            {"phone": {"value": "12125550001"}},
            {"email": {"value": "nope"}},
            {"totp": {"secret": "JBSW", "label": "x"}},
            {"sms": {"value": "+1"}},
            {"totp": {"secret": "A"}, "phone": {"value": "+1"}}
        ]}));
        let f: Vec<&str> = p.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            f,
            [
                "mfa_factors[0].totp.secret",
                "mfa_factors[1].phone.value",
                "mfa_factors[2].email.value",
                "mfa_factors[3].totp.label",
                "mfa_factors[4].sms",
                "mfa_factors[5]"
            ]
        );
        assert!(!p[0].1.contains("jbswy3dp"), "{}", p[0].1);
    }

    #[test]
    fn duplicates_point_at_the_first_record() {
        let a = json!({"email": "ada@example.com", "username": "ada"});
        let b = json!({"email": "grace@example.com"});
        let c = json!({"email": "ADA@example.com", "username": "ada2"});
        let d = json!({"email": "x@example.com", "username": "ada"});
        let items = [a, b, c, d];
        let found = check_file_items(items.iter().map(|v| v.as_object().unwrap()));
        assert_eq!(
            found,
            [
                Located {
                    index: Some(2),
                    problem: Problem::error(
                        "email",
                        "duplicate of record 0: a user with this email was already provided"
                    )
                },
                Located {
                    index: Some(3),
                    problem: Problem::error(
                        "username",
                        "duplicate of record 0: a user with this username was already provided"
                    )
                },
            ]
        );
    }

    #[test]
    fn file_size_and_file_shape() {
        assert_eq!(check_file_size(512000), None);
        let p = check_file_size(512001).unwrap();
        assert!(
            p.reason.contains("512001 bytes") && p.reason.contains("splits files automatically"),
            "{}",
            p.reason
        );
        let body = format!(
            "[{{\"email\":\"a@b.co\",\"password_hash\":\"{HELLO}\"}},{{\"email\":\"a@b.co\"}},3]"
        );
        let found = check_file(body.as_bytes());
        let got: Vec<(Option<usize>, &str)> = found
            .iter()
            .map(|l| (l.index, l.problem.field.as_str()))
            .collect();
        assert_eq!(got, [(Some(1), "email"), (Some(2), "")]);
        assert_eq!(
            check_file(b"{}")[0].problem.reason,
            "must be a JSON array of users, got an object"
        );
        let padded = format!(
            "[{{\"email\":\"a@b.co\",\"user_metadata\":{{\"pad\":\"{}\"}}}}]",
            "x".repeat(MAX_FILE_BYTES)
        );
        let found = check_file(padded.as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].index, None);
    }
}
