//! The import schemas (§1.2, §1.3), their formats, the bcrypt hash check (§3) and the
//! redaction of echoed records (§2.3).

use serde_json::{Map, Value, json};

use super::api::{api_error, unexpected_error};
use super::object;

/// Identifier values of the request schema.
pub(super) const IDENTIFIERS: [&str; 3] = ["preferred_username", "email", "phone_number"];

const STRING_ATTRS: [&str; 6] = [
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "gender",
];

const RECORD_KEYS: [&str; 26] = [
    "email",
    "phone_number",
    "preferred_username",
    "email_verified",
    "phone_number_verified",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "gender",
    "profile",
    "website",
    "picture",
    "birthdate",
    "zoneinfo",
    "locale",
    "address",
    "custom_attributes",
    "roles",
    "groups",
    "disabled",
    "account_valid_from",
    "account_valid_until",
    "password",
    "mfa",
];

const ADDRESS_KEYS: [&str; 6] = [
    "formatted",
    "street_address",
    "locality",
    "region",
    "postal_code",
    "country",
];

/// Collected schema failures (`info.causes[]`).
#[derive(Default)]
pub(super) struct Causes(Vec<Value>);

impl Causes {
    fn push(&mut self, location: &str, kind: &str, details: Option<Value>) {
        let mut cause = object([("location", json!(location)), ("kind", json!(kind))]);
        if let (Some(d), Some(map)) = (details, cause.as_object_mut()) {
            map.insert("details".to_owned(), d);
        }
        self.0.push(cause);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `Invalid`/`ValidationFailed` APIError carrying these causes.
    pub(super) fn into_error(self, message: &str) -> Value {
        api_error(
            "Invalid",
            "ValidationFailed",
            message,
            Some(json!({ "causes": self.0 })),
        )
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

/// Checks `v` against a JSON-schema `type` list; records a `type` cause on mismatch.
fn check_type(c: &mut Causes, loc: &str, v: &Value, expected: &[&str]) -> bool {
    let actual = type_name(v);
    let ok = expected
        .iter()
        .any(|e| *e == actual || (*e == "number" && actual == "integer"));
    if !ok {
        c.push(
            loc,
            "type",
            Some(json!({ "actual": [actual], "expected": expected })),
        );
    }
    ok
}

fn check_additional(c: &mut Causes, loc: &str, obj: &Map<String, Value>, allowed: &[&str]) {
    let mut added: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if !added.is_empty() {
        added.sort_unstable();
        c.push(loc, "additionalProperties", Some(json!({ "added": added })));
    }
}

fn check_required(c: &mut Causes, loc: &str, obj: &Map<String, Value>, required: &[&str]) {
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| !obj.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        let mut actual: Vec<&str> = obj.keys().map(String::as_str).collect();
        actual.sort_unstable();
        c.push(
            loc,
            "required",
            Some(json!({ "actual": actual, "expected": required, "missing": missing })),
        );
    }
}

fn check_min_length(c: &mut Causes, loc: &str, s: &str) {
    if s.is_empty() {
        c.push(
            loc,
            "minLength",
            Some(json!({ "actual": 0, "expected": 1 })),
        );
    }
}

fn check_format(c: &mut Causes, loc: &str, s: &str, format: &str) {
    let ok = match format {
        "email" => is_email(s),
        "phone" => is_e164(s),
        "uri" => is_absolute_uri(s),
        "x_picture" => is_picture(s),
        "birthdate" => is_birthdate(s),
        "timezone" => is_timezone(s),
        "bcp47" => is_bcp47(s),
        "date-time" => is_date_time(s),
        _ => true,
    };
    if !ok {
        c.push(loc, "format", Some(json!({ "format": format })));
    }
}

/// A string with a format (and `minLength` where given), optionally nullable.
fn check_string(
    c: &mut Causes,
    loc: &str,
    v: &Value,
    nullable: bool,
    min_length: bool,
    format: Option<&str>,
) {
    let types: &[&str] = if nullable {
        &["string", "null"]
    } else {
        &["string"]
    };
    if !check_type(c, loc, v, types) {
        return;
    }
    if let Value::String(s) = v {
        if min_length {
            check_min_length(c, loc, s);
        }
        if let Some(f) = format {
            check_format(c, loc, s, f);
        }
    }
}

/// The top-level request schema (§1.2). Returns the causes (empty when valid).
pub(super) fn validate_request(body: &Value) -> Causes {
    let mut c = Causes::default();
    let Some(obj) = body.as_object() else {
        check_type(&mut c, "", body, &["object"]);
        return c;
    };
    check_additional(&mut c, "", obj, &["upsert", "identifier", "records"]);
    check_required(&mut c, "", obj, &["identifier", "records"]);
    if let Some(v) = obj.get("upsert") {
        check_type(&mut c, "/upsert", v, &["boolean"]);
    }
    if let Some(v) = obj.get("identifier") {
        if check_type(&mut c, "/identifier", v, &["string"])
            && !v.as_str().is_some_and(|s| IDENTIFIERS.contains(&s))
        {
            c.push(
                "/identifier",
                "enum",
                Some(json!({ "actual": v, "expected": IDENTIFIERS })),
            );
        }
    }
    if let Some(v) = obj.get("records") {
        if check_type(&mut c, "/records", v, &["array"]) {
            let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
            if items.is_empty() {
                c.push(
                    "/records",
                    "minItems",
                    Some(json!({ "actual": 0, "expected": 1 })),
                );
            }
            for (i, item) in items.iter().enumerate() {
                check_type(&mut c, &format!("/records/{i}"), item, &["object"]);
            }
        }
    }
    c
}

fn check_password_object(c: &mut Causes, loc: &str, v: &Value) {
    if !check_type(c, loc, v, &["object"]) {
        return;
    }
    let Some(obj) = v.as_object() else { return };
    check_additional(c, loc, obj, &["type", "password_hash", "expire_after"]);
    check_required(c, loc, obj, &["type", "password_hash"]);
    if let Some(t) = obj.get("type") {
        let tl = format!("{loc}/type");
        if check_type(c, &tl, t, &["string"]) && t.as_str() != Some("bcrypt") {
            c.push(
                &tl,
                "enum",
                Some(json!({ "actual": t, "expected": ["bcrypt"] })),
            );
        }
    }
    if let Some(h) = obj.get("password_hash") {
        check_string(c, &format!("{loc}/password_hash"), h, false, true, None);
    }
    if let Some(e) = obj.get("expire_after") {
        check_string(
            c,
            &format!("{loc}/expire_after"),
            e,
            false,
            false,
            Some("date-time"),
        );
    }
}

fn check_string_array(c: &mut Causes, loc: &str, v: &Value) {
    if !check_type(c, loc, v, &["array"]) {
        return;
    }
    for (i, item) in v.as_array().into_iter().flatten().enumerate() {
        check_string(c, &format!("{loc}/{i}"), item, false, true, None);
    }
}

/// The per-identifier record schema (§1.3). Returns the causes (empty when valid).
pub(super) fn validate_record(identifier: &str, record: &Map<String, Value>) -> Causes {
    let mut c = Causes::default();
    check_additional(&mut c, "", record, &RECORD_KEYS);
    check_required(&mut c, "", record, &[identifier]);
    for (key, format, min_length) in [
        ("email", Some("email"), false),
        ("phone_number", Some("phone"), false),
        ("preferred_username", None, true),
    ] {
        if let Some(v) = record.get(key) {
            let loc = format!("/{key}");
            check_string(&mut c, &loc, v, key != identifier, min_length, format);
        }
    }
    for key in ["email_verified", "phone_number_verified", "disabled"] {
        if let Some(v) = record.get(key) {
            check_type(&mut c, &format!("/{key}"), v, &["boolean"]);
        }
    }
    for key in STRING_ATTRS {
        if let Some(v) = record.get(key) {
            check_string(&mut c, &format!("/{key}"), v, true, true, None);
        }
    }
    for (key, format) in [
        ("profile", "uri"),
        ("website", "uri"),
        ("picture", "x_picture"),
        ("birthdate", "birthdate"),
        ("zoneinfo", "timezone"),
        ("locale", "bcp47"),
    ] {
        if let Some(v) = record.get(key) {
            check_string(&mut c, &format!("/{key}"), v, true, false, Some(format));
        }
    }
    if let Some(v) = record.get("address") {
        if check_type(&mut c, "/address", v, &["object", "null"]) {
            if let Some(obj) = v.as_object() {
                for key in ADDRESS_KEYS {
                    if let Some(s) = obj.get(key) {
                        check_string(&mut c, &format!("/address/{key}"), s, false, true, None);
                    }
                }
            }
        }
    }
    if let Some(v) = record.get("custom_attributes") {
        check_type(&mut c, "/custom_attributes", v, &["object"]);
    }
    for key in ["roles", "groups"] {
        if let Some(v) = record.get(key) {
            check_string_array(&mut c, &format!("/{key}"), v);
        }
    }
    for key in ["account_valid_from", "account_valid_until"] {
        if let Some(v) = record.get(key) {
            check_string(
                &mut c,
                &format!("/{key}"),
                v,
                false,
                false,
                Some("date-time"),
            );
        }
    }
    if let Some(v) = record.get("password") {
        check_password_object(&mut c, "/password", v);
    }
    if let Some(v) = record.get("mfa") {
        if check_type(&mut c, "/mfa", v, &["object"]) {
            if let Some(mfa) = v.as_object() {
                check_additional(
                    &mut c,
                    "/mfa",
                    mfa,
                    &["email", "phone_number", "password", "totp"],
                );
                if let Some(e) = mfa.get("email") {
                    check_string(&mut c, "/mfa/email", e, true, false, Some("email"));
                }
                if let Some(p) = mfa.get("phone_number") {
                    check_string(&mut c, "/mfa/phone_number", p, true, false, Some("phone"));
                }
                if let Some(p) = mfa.get("password") {
                    check_password_object(&mut c, "/mfa/password", p);
                }
                if let Some(t) = mfa.get("totp") {
                    if check_type(&mut c, "/mfa/totp", t, &["object"]) {
                        if let Some(totp) = t.as_object() {
                            check_additional(&mut c, "/mfa/totp", totp, &["secret"]);
                            check_required(&mut c, "/mfa/totp", totp, &["secret"]);
                            if let Some(s) = totp.get("secret") {
                                check_string(&mut c, "/mfa/totp/secret", s, false, true, None);
                            }
                        }
                    }
                }
            }
        }
    }
    c
}

/// `Record.Redact()`: secrets become `REDACTED`, keys sorted like Go's map encoding.
pub(super) fn redact(record: &Value) -> Value {
    const R: &str = "REDACTED";
    let mut record = sorted(record);
    let Some(obj) = record.as_object_mut() else {
        return record;
    };
    let redact_password = |v: &mut Value| match v.as_object_mut() {
        Some(p) => {
            if p.contains_key("password_hash") {
                p.insert("password_hash".to_owned(), json!(R));
            }
        }
        None => *v = json!(R),
    };
    if let Some(p) = obj.get_mut("password") {
        redact_password(p);
    }
    if let Some(m) = obj.get_mut("mfa") {
        match m.as_object_mut() {
            Some(mfa) => {
                if let Some(p) = mfa.get_mut("password") {
                    redact_password(p);
                }
                if let Some(t) = mfa.get_mut("totp") {
                    match t.as_object_mut() {
                        Some(totp) => {
                            if totp.contains_key("secret") {
                                totp.insert("secret".to_owned(), json!(R));
                            }
                        }
                        None => *t = json!(R),
                    }
                }
            }
            None => *m = json!(R),
        }
    }
    record
}

/// A copy with every object's keys sorted (Go encodes maps that way).
pub(super) fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(inner) = map.get(k) {
                    out.insert(k.clone(), sorted(inner));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `pwd.CheckHash`: `$id$...` structure, then Go's `bcrypt.Cost`. Errors are the
/// APIError a record fails with.
pub(super) fn check_password_hash(hash: &str) -> Result<(), Value> {
    // parsePasswordFormat: `$`, an id, a second `$`.
    let Some(rest) = hash.strip_prefix('$') else {
        return Err(unexpected_error());
    };
    let Some((id, data)) = rest.split_once('$') else {
        return Err(unexpected_error());
    };
    let bcrypt_hash = if id == "bcrypt-sha512" { data } else { hash };
    go_bcrypt_cost(bcrypt_hash)
}

fn invalid_bcrypt(message: String) -> Value {
    api_error("Invalid", "InvalidBcryptHash", &message, None)
}

/// Go's `bcrypt.Cost` (`newFromHash` up to `decodeCost`).
fn go_bcrypt_cost(hash: &str) -> Result<(), Value> {
    let b = hash.as_bytes();
    if b.len() < 59 {
        return Err(invalid_bcrypt(
            "crypto/bcrypt: hashedSecret too short to be a bcrypted password".to_owned(),
        ));
    }
    if b[0] != b'$' {
        return Err(invalid_bcrypt(format!(
            "crypto/bcrypt: bcrypt hashes must start with '$', but hashedSecret started with '{}'",
            b[0] as char
        )));
    }
    if b[1] > b'2' {
        return Err(invalid_bcrypt(format!(
            "crypto/bcrypt: bcrypt algorithm version '{}' requested is newer than current version '2'",
            b[1] as char
        )));
    }
    let n = if b[2] != b'$' { 4 } else { 3 };
    let cost = go_atoi(&b[n..n + 2]).ok_or_else(unexpected_error)?;
    if !(4..=31).contains(&cost) {
        return Err(invalid_bcrypt(format!(
            "crypto/bcrypt: cost {cost} is outside allowed inclusive range 4..31"
        )));
    }
    Ok(())
}

/// Go's `strconv.Atoi` on a short byte string.
fn go_atoi(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first() {
        Some(b'+') => (false, &b[1..]),
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    Some(if neg { -v } else { v })
}

// ---- formats ----

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|part| !part.is_empty() && part.chars().all(is_atext))
}

pub(super) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let local_ok = if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        let inner = &local[1..local.len() - 1];
        !inner.contains('"') && !inner.chars().any(char::is_control)
    } else {
        is_dot_atom(local)
    };
    let domain_ok = if domain.starts_with('[') && domain.ends_with(']') {
        domain.len() > 2
    } else {
        is_dot_atom(domain)
    };
    local_ok && domain_ok
}

pub(super) fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

fn valid_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Path part of a URL (before `?`/`#`) must be empty or absolute without dot segments.
fn valid_abs_path(path: &str) -> bool {
    path.is_empty()
        || (path.starts_with('/') && !path.split('/').any(|seg| seg == "." || seg == ".."))
}

pub(super) fn is_absolute_uri(s: &str) -> bool {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    if !valid_scheme(scheme) {
        return false;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = if host.starts_with('[') {
        host
    } else {
        host.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return false;
    }
    let after = &rest[end..];
    let path_end = after.find(['?', '#']).unwrap_or(after.len());
    valid_abs_path(&after[..path_end])
}

fn is_picture(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix("authgearimages:") {
        // No host: `authgearimages:///path` or `authgearimages:/path`.
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
        return path.starts_with('/') && valid_abs_path(path);
    }
    let scheme = s.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    matches!(scheme.as_deref(), Some("http" | "https")) && is_absolute_uri(s)
}

fn is_birthdate(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i16> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let date = |y: i16, m: i16, d: i16| -> bool {
        match (i8::try_from(m), i8::try_from(d)) {
            (Ok(m), Ok(d)) => jiff::civil::Date::new(y, m, d).is_ok(),
            _ => false,
        }
    };
    match b.len() {
        4 => digits(0..4).is_some(),
        7 if s.starts_with("--") && b[4] == b'-' => match (digits(2..4), digits(5..7)) {
            (Some(m), Some(d)) => date(0, m, d),
            _ => false,
        },
        10 if b[4] == b'-' && b[7] == b'-' => match (digits(0..4), digits(5..7), digits(8..10)) {
            (Some(y), Some(m), Some(d)) => date(y, m, d),
            _ => false,
        },
        _ => false,
    }
}

fn is_timezone(s: &str) -> bool {
    if !s.contains('/') {
        return false;
    }
    let db = jiff::tz::db();
    if db.is_definitively_empty() {
        // No tz database to ask: accept IANA-looking names.
        return s
            .split('/')
            .all(|p| p.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c));
    }
    db.get(s).is_ok()
}

fn is_bcp47(s: &str) -> bool {
    let mut parts = s.split('-').peekable();
    let Some(lang) = parts.next() else {
        return false;
    };
    if !((2..=3).contains(&lang.len()) && lang.bytes().all(|c| c.is_ascii_lowercase())) {
        return false;
    }
    if let Some(script) = parts.peek() {
        let b = script.as_bytes();
        if b.len() == 4 && b.iter().all(u8::is_ascii_alphabetic) {
            if !(b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_lowercase)) {
                return false;
            }
            parts.next();
        }
    }
    if let Some(region) = parts.peek() {
        let b = region.as_bytes();
        let alpha = b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic);
        let numeric = b.len() == 3 && b.iter().all(u8::is_ascii_digit);
        if alpha && !b.iter().all(u8::is_ascii_uppercase) {
            return false;
        }
        if alpha || numeric {
            parts.next();
        }
    }
    // Variants and extensions: lowercase alphanumerics.
    parts.all(|p| {
        !p.is_empty()
            && p.len() <= 8
            && p.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || {
            let tz = &b[b.len() - 6..];
            (tz[0] == b'+' || tz[0] == b'-') && tz[3] == b':'
        });
    shape && s.parse::<jiff::Timestamp>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(is_email("a.b+c@example.com"));
        assert!(!is_email("John <a@b.com>"));
        assert!(!is_email("no-at-sign"));
        assert!(!is_email("a..b@x.com"));
        assert!(is_e164("+85298765432"));
        assert!(!is_e164("85298765432"));
        assert!(!is_e164("+852 9876 5432"));
        assert!(is_absolute_uri("https://example.com/a/b?x=1"));
        assert!(is_absolute_uri("https://example.com"));
        assert!(!is_absolute_uri("/relative"));
        assert!(!is_absolute_uri("https:///nohost"));
        assert!(is_picture("https://cdn.example.com/p.png"));
        assert!(is_picture("authgearimages:///app/obj"));
        assert!(!is_picture("ftp://example.com/p.png"));
        assert!(is_birthdate("1990-02-28"));
        assert!(is_birthdate("0000-02-29"));
        assert!(is_birthdate("--02-29"));
        assert!(is_birthdate("1990"));
        assert!(!is_birthdate("1990-02-30"));
        assert!(!is_birthdate("90-02-28"));
        assert!(is_timezone("Asia/Hong_Kong"));
        assert!(!is_timezone("UTC"));
        assert!(!is_timezone("Mars/Olympus"));
        assert!(is_bcp47("en"));
        assert!(is_bcp47("zh-Hant-HK"));
        assert!(is_bcp47("en-US"));
        assert!(!is_bcp47("en_US"));
        assert!(!is_bcp47("en-us"));
        assert!(is_date_time("2024-01-02T03:04:05Z"));
        assert!(is_date_time("2024-01-02T03:04:05.5+08:00"));
        assert!(!is_date_time("2024-01-02"));
    }

    #[test]
    fn bcrypt_checks_match_go() {
        let good = "$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
        assert_eq!(good.len(), 60);
        assert!(check_password_hash(good).is_ok());
        assert!(check_password_hash(&good[..59]).is_ok());
        assert_eq!(
            check_password_hash(&good[..58]).unwrap_err()["reason"],
            "InvalidBcryptHash"
        );
        let short = check_password_hash("$2b$10$short").unwrap_err();
        assert_eq!(short["reason"], "InvalidBcryptHash");
        assert_eq!(
            short["message"],
            "crypto/bcrypt: hashedSecret too short to be a bcrypted password"
        );
        let cost = check_password_hash(&good.replace("$10$", "$99$")).unwrap_err();
        assert_eq!(
            cost["message"],
            "crypto/bcrypt: cost 99 is outside allowed inclusive range 4..31"
        );
        let no_dollar = check_password_hash("plaintext").unwrap_err();
        assert_eq!(no_dollar["reason"], "UnexpectedError");
        assert_eq!(no_dollar["code"], 500);
    }

    #[test]
    fn redaction() {
        let r = redact(&json!({
            "email": "a@b.c",
            "password": {"type": "bcrypt", "password_hash": "$2b$..."},
            "mfa": {"totp": {"secret": "JBSW"}, "password": "oops"}
        }));
        assert_eq!(r["password"]["password_hash"], "REDACTED");
        assert_eq!(r["mfa"]["totp"]["secret"], "REDACTED");
        assert_eq!(r["mfa"]["password"], "REDACTED");
        assert_eq!(r["email"], "a@b.c");
    }
}
