//! Validation of one bulk-import user against the §3 schema of `auth0-api.md`.
//!
//! Error codes come from the documented list (`INVALID_TYPE`, `FORMAT`,
//! `OBJECT_REQUIRED`, `ENUM_MISMATCH`, `PATTERN`, `ARRAY_LENGTH_SHORT`,
//! `ARRAY_LENGTH_LONG`, `MINIMUM`, `NOT_PASSED`, `CONFLICT`); messages follow the
//! z-schema wording Auth0's validator produces. `additionalProperties` violations have
//! no code in the documented list: they use z-schema's `OBJECT_ADDITIONAL_PROPERTIES`.

use serde_json::{Map, Value, json};

const FORBIDDEN_APP_METADATA: &[&str] = &[
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

const ALGORITHMS: &[&str] = &[
    "argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512", "pbkdf2",
    "scrypt",
];

struct Errors(Vec<Value>);

impl Errors {
    fn push(&mut self, code: &str, message: String, path: &str) {
        self.0
            .push(json!({"code": code, "message": message, "path": path}));
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A pragmatic email check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub(crate) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

fn is_base32_unpadded(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// Checks the type of `obj[key]` when present; returns the value when it has that type.
fn typed<'a>(
    errs: &mut Errors,
    obj: &'a Map<String, Value>,
    key: &str,
    want: &str,
    path: &str,
) -> Option<&'a Value> {
    let v = obj.get(key)?;
    let ok = match want {
        "integer" => v.is_i64() || v.is_u64(),
        other => type_name(v) == other,
    };
    if ok {
        Some(v)
    } else {
        errs.push(
            "INVALID_TYPE",
            format!("Expected type {want} but found type {}", type_name(v)),
            &join(path, key),
        );
        None
    }
}

fn additional(errs: &mut Errors, obj: &Map<String, Value>, allowed: &[&str], path: &str) {
    let extra: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if !extra.is_empty() {
        errs.push(
            "OBJECT_ADDITIONAL_PROPERTIES",
            format!("Additional properties not allowed: {}", extra.join(",")),
            path,
        );
    }
}

fn enum_of(errs: &mut Errors, obj: &Map<String, Value>, key: &str, allowed: &[&str], path: &str) {
    if let Some(s) = typed(errs, obj, key, "string", path).and_then(Value::as_str)
        && !allowed.contains(&s)
    {
        errs.push(
            "ENUM_MISMATCH",
            format!("No enum match for: \"{s}\""),
            &join(path, key),
        );
    }
}

fn required(errs: &mut Errors, obj: &Map<String, Value>, key: &str, path: &str) -> bool {
    if obj.contains_key(key) {
        true
    } else {
        errs.push(
            "OBJECT_REQUIRED",
            format!("Missing required property: {key}"),
            path,
        );
        false
    }
}

/// Validates one user object; returns `[{code, message, path}]` (empty when valid).
pub(crate) fn validate_user(user: &Value) -> Vec<Value> {
    let mut errs = Errors(Vec::new());
    let Some(obj) = user.as_object() else {
        errs.push(
            "INVALID_TYPE",
            format!("Expected type object but found type {}", type_name(user)),
            "",
        );
        return errs.0;
    };
    additional(
        &mut errs,
        obj,
        &[
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
        ],
        "",
    );
    if required(&mut errs, obj, "email", "")
        && let Some(email) = typed(&mut errs, obj, "email", "string", "").and_then(Value::as_str)
        && !is_email(email)
    {
        errs.push(
            "FORMAT",
            format!("Object didn't pass validation for format email: {email}"),
            "email",
        );
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
        typed(&mut errs, obj, key, "string", "");
    }
    for key in ["email_verified", "phone_verified", "blocked"] {
        typed(&mut errs, obj, key, "boolean", "");
    }
    if let Some(p) = typed(&mut errs, obj, "phone_number", "string", "").and_then(Value::as_str)
        && !is_e164(p)
    {
        errs.push(
            "PATTERN",
            format!("String does not match pattern ^\\+[0-9]{{1,15}}$: {p}"),
            "phone_number",
        );
    }
    if let Some(h) = typed(&mut errs, obj, "password_hash", "string", "").and_then(Value::as_str)
        && !is_bcrypt_2a_2b(h)
    {
        errs.push(
            "PATTERN",
            "String does not match pattern ^\\$2[ab]\\$[0-9]{2}\\$[./A-Za-z0-9]{53}$: *****"
                .to_owned(),
            "password_hash",
        );
    }
    if obj.contains_key("password_hash") && obj.contains_key("custom_password_hash") {
        errs.push(
            "CONFLICT",
            "password_hash and custom_password_hash cannot be used together".to_owned(),
            "custom_password_hash",
        );
    }
    if let Some(c) =
        typed(&mut errs, obj, "custom_password_hash", "object", "").and_then(Value::as_object)
    {
        validate_custom_hash(&mut errs, c);
    }
    typed(&mut errs, obj, "user_metadata", "object", "");
    if let Some(app) =
        typed(&mut errs, obj, "app_metadata", "object", "").and_then(Value::as_object)
    {
        for key in app.keys() {
            if FORBIDDEN_APP_METADATA.contains(&key.as_str()) {
                errs.push(
                    "NOT_PASSED",
                    format!("Forbidden attribute in app_metadata: {key}"),
                    &join("app_metadata", key),
                );
            }
        }
    }
    if let Some(factors) =
        typed(&mut errs, obj, "mfa_factors", "array", "").and_then(Value::as_array)
    {
        validate_mfa(&mut errs, factors);
    }
    errs.0
}

/// `$2a$`/`$2b$`, a two-digit cost and 53 characters of bcrypt base64.
pub(crate) fn is_bcrypt_2a_2b(h: &str) -> bool {
    let b = h.as_bytes();
    b.len() == 60
        && (h.starts_with("$2a$") || h.starts_with("$2b$"))
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

fn validate_custom_hash(errs: &mut Errors, c: &Map<String, Value>) {
    let p = "custom_password_hash";
    additional(
        errs,
        c,
        &[
            "algorithm",
            "hash",
            "salt",
            "password",
            "keylen",
            "cost",
            "blockSize",
            "parallelization",
        ],
        p,
    );
    let has_alg = required(errs, c, "algorithm", p);
    let has_hash = required(errs, c, "hash", p);
    let algorithm = if has_alg {
        enum_of(errs, c, "algorithm", ALGORITHMS, p);
        c.get("algorithm")
            .and_then(Value::as_str)
            .filter(|a| ALGORITHMS.contains(a))
    } else {
        None
    };
    let hp = "custom_password_hash.hash";
    let hash = if has_hash {
        typed(errs, c, "hash", "object", p).and_then(Value::as_object)
    } else {
        None
    };
    let mut hash_encoding = "utf8";
    if let Some(h) = hash {
        additional(errs, h, &["value", "encoding", "digest", "key"], hp);
        if required(errs, h, "value", hp) {
            typed(errs, h, "value", "string", hp);
        }
        enum_of(errs, h, "encoding", &["base64", "hex", "utf8"], hp);
        if let Some(e) = h.get("encoding").and_then(Value::as_str) {
            hash_encoding = e;
        }
        enum_of(
            errs,
            h,
            "digest",
            &[
                "md4",
                "md5",
                "ripemd160",
                "sha1",
                "sha224",
                "sha256",
                "sha384",
                "sha512",
                "whirlpool",
            ],
            hp,
        );
        if let Some(k) = typed(errs, h, "key", "object", hp).and_then(Value::as_object) {
            let kp = "custom_password_hash.hash.key";
            additional(errs, k, &["value", "encoding"], kp);
            if required(errs, k, "value", kp) {
                typed(errs, k, "value", "string", kp);
            }
            enum_of(errs, k, "encoding", &["base64", "hex", "utf8"], kp);
        }
    }
    if let Some(s) = typed(errs, c, "salt", "object", p).and_then(Value::as_object) {
        let sp = "custom_password_hash.salt";
        additional(errs, s, &["value", "encoding", "position"], sp);
        if required(errs, s, "value", sp) {
            typed(errs, s, "value", "string", sp);
        }
        enum_of(errs, s, "encoding", &["base64", "hex", "utf8"], sp);
        enum_of(errs, s, "position", &["prefix", "suffix"], sp);
    }
    if let Some(pw) = typed(errs, c, "password", "object", p).and_then(Value::as_object) {
        let pp = "custom_password_hash.password";
        additional(errs, pw, &["encoding"], pp);
        enum_of(
            errs,
            pw,
            "encoding",
            &["ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"],
            pp,
        );
    }
    for key in ["keylen", "cost", "blockSize", "parallelization"] {
        if let Some(n) = typed(errs, c, key, "integer", p).and_then(Value::as_i64)
            && n < 1
        {
            errs.push(
                "MINIMUM",
                format!("Value {n} is less than minimum 1"),
                &join(p, key),
            );
        }
    }

    // Per-algorithm rules (the table in §3).
    let Some(alg) = algorithm else { return };
    let not_passed = |errs: &mut Errors, msg: String, path: &str| {
        errs.push("NOT_PASSED", msg, path);
    };
    let has_salt = c.contains_key("salt");
    let value = hash
        .and_then(|h| h.get("value"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let enc_path = "custom_password_hash.hash.encoding";
    match alg {
        "argon2" | "ldap" | "pbkdf2" | "bcrypt" if hash_encoding != "utf8" => not_passed(
            errs,
            format!("hash.encoding must be utf8 for algorithm {alg}"),
            enc_path,
        ),
        "hmac" | "md4" | "md5" | "sha1" | "sha256" | "sha512" | "scrypt"
            if hash_encoding == "utf8" =>
        {
            not_passed(
                errs,
                format!("hash.encoding must be hex or base64 for algorithm {alg}"),
                enc_path,
            )
        }
        _ => {}
    }
    if matches!(alg, "argon2" | "ldap" | "pbkdf2") && has_salt {
        not_passed(
            errs,
            format!("salt is not allowed for algorithm {alg}"),
            "custom_password_hash.salt",
        );
    }
    match alg {
        "bcrypt"
            if !["$2a$", "$2b$", "$2y$"]
                .iter()
                .any(|x| value.starts_with(x)) =>
        {
            not_passed(
                errs,
                "bcrypt hash.value must start with $2a$, $2b$ or $2y$".to_owned(),
                "custom_password_hash.hash.value",
            )
        }
        "argon2" if !value.starts_with("$argon2") => not_passed(
            errs,
            "argon2 hash.value must be a PHC string".to_owned(),
            "custom_password_hash.hash.value",
        ),
        "pbkdf2" if !value.starts_with("$pbkdf2-") => not_passed(
            errs,
            "pbkdf2 hash.value must be a PHC string".to_owned(),
            "custom_password_hash.hash.value",
        ),
        "ldap" if !value.starts_with('{') || value.to_ascii_uppercase().starts_with("{CRYPT}") => {
            not_passed(
                errs,
                "ldap hash.value must be an RFC 2307 {SCHEME} value (not {CRYPT})".to_owned(),
                "custom_password_hash.hash.value",
            )
        }
        "hmac" => {
            let h = hash.cloned().unwrap_or_default();
            if !h.contains_key("digest") {
                errs.push(
                    "OBJECT_REQUIRED",
                    "Missing required property: digest".to_owned(),
                    "custom_password_hash.hash",
                );
            }
            if !h.contains_key("key") {
                errs.push(
                    "OBJECT_REQUIRED",
                    "Missing required property: key".to_owned(),
                    "custom_password_hash.hash",
                );
            }
        }
        "scrypt" if !c.contains_key("keylen") => errs.push(
            "OBJECT_REQUIRED",
            "Missing required property: keylen".to_owned(),
            p,
        ),
        _ => {}
    }
    if alg == "scrypt"
        && let Some(cost) = c.get("cost").and_then(Value::as_u64)
        && (cost < 2 || !cost.is_power_of_two())
    {
        not_passed(
            errs,
            "cost must be a power of two greater than 1".to_owned(),
            "custom_password_hash.cost",
        );
    }
}

fn validate_mfa(errs: &mut Errors, factors: &[Value]) {
    let p = "mfa_factors";
    if factors.is_empty() {
        errs.push(
            "ARRAY_LENGTH_SHORT",
            "Array is too short (0), minimum 1".to_owned(),
            p,
        );
    }
    if factors.len() > 10 {
        errs.push(
            "ARRAY_LENGTH_LONG",
            format!("Array is too long ({}), maximum 10", factors.len()),
            p,
        );
    }
    for (i, f) in factors.iter().enumerate() {
        let ip = format!("{p}[{i}]");
        let Some(o) = f.as_object() else {
            errs.push(
                "INVALID_TYPE",
                format!("Expected type object but found type {}", type_name(f)),
                &ip,
            );
            continue;
        };
        if o.len() != 1 {
            errs.push(
                "NOT_PASSED",
                "Data does not match exactly one of totp, phone or email".to_owned(),
                &ip,
            );
            continue;
        }
        let (kind, body) = o
            .iter()
            .next()
            .map_or(("", &Value::Null), |(k, v)| (k.as_str(), v));
        let (field, ok): (&str, fn(&str) -> bool) = match kind {
            "totp" => ("secret", is_base32_unpadded),
            "phone" => ("value", is_e164),
            "email" => ("value", is_email),
            other => {
                errs.push(
                    "OBJECT_ADDITIONAL_PROPERTIES",
                    format!("Additional properties not allowed: {other}"),
                    &ip,
                );
                continue;
            }
        };
        let kp = format!("{ip}.{kind}");
        let Some(b) = body.as_object() else {
            errs.push(
                "INVALID_TYPE",
                format!("Expected type object but found type {}", type_name(body)),
                &kp,
            );
            continue;
        };
        additional(errs, b, &[field], &kp);
        if !required(errs, b, field, &kp) {
            continue;
        }
        match b.get(field).and_then(Value::as_str) {
            None => errs.push(
                "INVALID_TYPE",
                format!(
                    "Expected type string but found type {}",
                    type_name(&b[field])
                ),
                &format!("{kp}.{field}"),
            ),
            Some(s) if !ok(s) => {
                let (code, msg) = match kind {
                    "totp" => (
                        "PATTERN",
                        "String does not match pattern ^[A-Z2-7]+$".to_owned(),
                    ),
                    "phone" => (
                        "PATTERN",
                        "String does not match pattern ^\\+[0-9]{1,15}$".to_owned(),
                    ),
                    _ => (
                        "FORMAT",
                        "Object didn't pass validation for format email".to_owned(),
                    ),
                };
                errs.push(code, msg, &format!("{kp}.{field}"));
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(v: Value) -> Vec<(String, String)> {
        validate_user(&v)
            .into_iter()
            .map(|e| {
                (
                    e["code"].as_str().unwrap_or("").to_owned(),
                    e["path"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    fn one(code: &str, path: &str) -> Vec<(String, String)> {
        vec![(code.to_owned(), path.to_owned())]
    }

    #[test]
    fn valid_users_pass() {
        assert!(codes(json!({"email":"a@b.co"})).is_empty());
        assert!(
            codes(json!({"email":"a@b.co","custom_password_hash":{"algorithm":"sha256",
            "hash":{"value":"ab","encoding":"hex"},"salt":{"value":"x","position":"suffix"}},
            "mfa_factors":[{"totp":{"secret":"JBSWY3DPEHPK3PXP"}},{"phone":{"value":"+15551234567"}}],
            "app_metadata":{"roles":["a"]}}))
            .is_empty()
        );
    }

    #[test]
    fn each_rule_reports_its_code_and_path() {
        assert_eq!(codes(json!({})), one("OBJECT_REQUIRED", ""));
        assert_eq!(codes(json!({"email":"nope"})), one("FORMAT", "email"));
        assert_eq!(
            codes(json!({"email":"a@b.co","blocked":"yes"})),
            one("INVALID_TYPE", "blocked")
        );
        assert_eq!(
            codes(json!({"email":"a@b.co","extra":1})),
            one("OBJECT_ADDITIONAL_PROPERTIES", "")
        );
        assert_eq!(
            codes(json!({"email":"a@b.co","password_hash":"$2x$10$abc"})),
            one("PATTERN", "password_hash")
        );
        assert_eq!(
            codes(json!({"email":"a@b.co","app_metadata":{"email":"x"}})),
            one("NOT_PASSED", "app_metadata.email")
        );
        assert_eq!(
            codes(
                json!({"email":"a@b.co","custom_password_hash":{"algorithm":"rot13","hash":{"value":"x"}}})
            ),
            one("ENUM_MISMATCH", "custom_password_hash.algorithm")
        );
        assert_eq!(
            codes(
                json!({"email":"a@b.co","custom_password_hash":{"algorithm":"argon2",
                "hash":{"value":"$argon2id$x"},"salt":{"value":"s"}}})
            ),
            one("NOT_PASSED", "custom_password_hash.salt")
        );
        assert_eq!(
            codes(
                json!({"email":"a@b.co","custom_password_hash":{"algorithm":"scrypt",
                "hash":{"value":"ab","encoding":"hex"}}})
            ),
            one("OBJECT_REQUIRED", "custom_password_hash")
        );
        assert_eq!(
            codes(json!({"email":"a@b.co","mfa_factors":[{"totp":{"secret":"lower"}}]})),
            one("PATTERN", "mfa_factors[0].totp.secret")
        );
        assert_eq!(
            codes(json!({"email":"a@b.co","mfa_factors":[]})),
            one("ARRAY_LENGTH_SHORT", "mfa_factors")
        );
        let both = codes(json!({"email":"a@b.co",
            "password_hash":"$2b$04$abcdefghijklmnopqrstuvabcdefghijklmnopqrstuvwxyz01234",
            "custom_password_hash":{"algorithm":"md5","hash":{"value":"ab","encoding":"hex"}}}));
        assert_eq!(both, one("CONFLICT", "custom_password_hash"));
    }
}
