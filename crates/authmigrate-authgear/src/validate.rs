//! Offline checks of an Authgear import body (`authmigrate validate --for authgear`).
//!
//! [`check_body_top`] checks the body's own keys, [`check_record`] applies the
//! record schema of the chosen identifier to one raw record, [`check_body_size`]
//! flags bodies over the server's limit, and [`check_body`] does all of it for a
//! whole body. Problems name the field and never quote a secret.
//!
//! Approximations (the server uses Go libraries we do not have): phone numbers are
//! checked with `^\+[1-9][0-9]{6,14}$` instead of libphonenumber, e-mails with a
//! pragmatic check instead of `net/mail`, time zones by shape (`Area/City`) instead
//! of loading the IANA database, and locales with a simple canonical-BCP-47 check.

use serde_json::{Map, Value};

use crate::format::{Identifier, kind};
use crate::username::{ReservedUsernames, check_username};

/// The server's body limit in bytes (`BodyMaxSize = 500 * 1000`, decimal).
pub const MAX_BODY_BYTES: usize = 500_000;

pub use authmigrate_core::format::{Located, Problem, Severity, is_plausible_email};

/// Authgear's rule for a role or group key (authgear-admin-graphql.md, roles and
/// groups): `^[a-zA-Z_][a-zA-Z0-9:_]*$`, 1 to 40 characters, and not starting with
/// the reserved `authgear:` prefix. A key that passes may still be unknown at the
/// project (`RoleUnknownKeys`/`GroupUnknownKeys`): only the server knows that.
/// The error says which part of the rule the key breaks (it never echoes the key).
pub fn check_role_or_group_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if key.len() > 40 {
        return Err(format!(
            "must be at most 40 characters, got {}",
            key.chars().count()
        ));
    }
    if key.starts_with("authgear:") {
        return Err("must not start with the reserved prefix `authgear:`".to_owned());
    }
    let mut chars = key.chars();
    let first = chars.next().unwrap_or('_');
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err("must start with an ASCII letter or `_`".to_owned());
    }
    if !chars.all(|ch| ch.is_ascii_alphanumeric() || ch == ':' || ch == '_') {
        return Err("may contain only ASCII letters, digits, `:` and `_`".to_owned());
    }
    Ok(())
}

/// Checks the body's top level: `identifier` (required, one of the three),
/// `upsert` (optional boolean) and no other key than `records`. Returns the
/// identifier when it is valid.
pub fn check_body_top<'a>(
    identifier: Option<&Value>,
    upsert: Option<&Value>,
    other_keys: impl IntoIterator<Item = &'a str>,
) -> (Option<Identifier>, Vec<Problem>) {
    let mut out = Vec::new();
    for key in other_keys {
        if key != "records" && key != "identifier" && key != "upsert" {
            out.push(Problem::error(
                key,
                "is not allowed in the body (only `identifier`, `upsert` and `records`)",
            ));
        }
    }
    let id = match identifier {
        None => {
            out.push(Problem::error("identifier", "is required"));
            None
        }
        Some(Value::String(s)) => match s.parse::<Identifier>() {
            Ok(i) => Some(i),
            Err(_) => {
                out.push(Problem::error(
                    "identifier",
                    format!("must be `email`, `phone_number` or `preferred_username`, got `{s}`"),
                ));
                None
            }
        },
        Some(other) => {
            out.push(Problem::error(
                "identifier",
                format!("must be a string, got {}", kind(other)),
            ));
            None
        }
    };
    if let Some(u) = upsert
        && !u.is_boolean()
    {
        out.push(Problem::error(
            "upsert",
            format!("must be a boolean, got {}", kind(u)),
        ));
    }
    (id, out)
}

const RECORD_FIELDS: [&str; 26] = [
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

/// `^\+[1-9][0-9]{6,14}$`: E.164, approximating libphonenumber's `isValidNumber`.
pub fn is_plausible_phone(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// An absolute URI with a scheme and a host (`https://example.com/x`).
pub(crate) fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    scheme_ok && !host.is_empty() && !s.chars().any(char::is_whitespace)
}

fn is_picture(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return is_absolute_uri(s);
    }
    s.strip_prefix("authgearimages:")
        .is_some_and(|p| p.starts_with('/') && !p.starts_with("//") || p.starts_with("///"))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// `YYYY-MM-DD`, `--MM-DD` or `YYYY`.
fn is_birthdate(s: &str) -> bool {
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    let md = |year: u32, m: &str, d: &str| {
        if !digits(m, 2) || !digits(d, 2) {
            return false;
        }
        let (m, d): (u32, u32) = (m.parse().unwrap_or(0), d.parse().unwrap_or(0));
        (1..=12).contains(&m) && d >= 1 && d <= days_in_month(year, m)
    };
    if digits(s, 4) {
        return true;
    }
    if let Some(rest) = s.strip_prefix("--") {
        return rest.split_once('-').is_some_and(|(m, d)| md(2000, m, d));
    }
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3 && digits(parts[0], 4) && md(parts[0].parse().unwrap_or(0), parts[1], parts[2])
}

/// `Area/Location` shaped IANA name.
fn is_timezone(s: &str) -> bool {
    s.contains('/')
        && !s.starts_with('/')
        && !s.ends_with('/')
        && !s.contains("//")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
}

/// A simple canonical BCP 47 check: `en`, `en-US`, `zh-Hant-HK`, `es-419` pass;
/// `en_US`, `EN`, `en-us` fail.
fn is_canonical_locale(s: &str) -> bool {
    let mut parts = s.split('-');
    let Some(lang) = parts.next() else {
        return false;
    };
    if !((2..=3).contains(&lang.len()) || (5..=8).contains(&lang.len()))
        || !lang.bytes().all(|b| b.is_ascii_lowercase())
    {
        return false;
    }
    let mut stage = 0; // 0: script allowed, 1: region allowed, 2: variants
    for p in parts {
        let is_script = p.len() == 4
            && p.as_bytes()[0].is_ascii_uppercase()
            && p.bytes().skip(1).all(|b| b.is_ascii_lowercase());
        let is_region = (p.len() == 2 && p.bytes().all(|b| b.is_ascii_uppercase()))
            || (p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit()));
        let is_variant = ((5..=8).contains(&p.len())
            || (p.len() == 4 && p.as_bytes()[0].is_ascii_digit()))
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if stage == 0 && is_script {
            stage = 1;
        } else if (stage <= 1 && is_region) || is_variant {
            stage = 2;
        } else {
            return false;
        }
    }
    true
}

fn parse_rfc3339(s: &str) -> Option<jiff::Timestamp> {
    // Go's time.RFC3339 needs `T` and an offset or `Z`; jiff is a bit laxer on input,
    // so check the shape first.
    let b = s.as_bytes();
    let shaped = b.len() >= 20
        && b.get(10) == Some(&b'T')
        && (s.ends_with('Z')
            || s.ends_with('z')
            || b[b.len() - 6] == b'+'
            || b[b.len() - 6] == b'-');
    if !shaped {
        return None;
    }
    s.parse().ok()
}

/// The bcrypt shape checks Go's `bcrypt.Cost` applies (length ≥ 59, `$` structure,
/// major version ≤ 2, one minor letter, two-digit cost in 4..31).
fn bcrypt_problem(h: &str) -> Option<String> {
    if h.is_empty() {
        return Some("must not be empty".into());
    }
    let Some(rest) = h.strip_prefix('$') else {
        return Some("must be a bcrypt hash in modular-crypt form (`$2b$10$…`)".into());
    };
    if !rest.contains('$') {
        return Some("must be a bcrypt hash in modular-crypt form (`$2b$10$…`)".into());
    }
    if rest.starts_with("bcrypt-sha512$") {
        return None; // Authgear's own format
    }
    if h.len() < 59 {
        return Some(format!(
            "bcrypt hash is too short ({} characters, at least 59)",
            h.len()
        ));
    }
    let b = h.as_bytes();
    let major_ok = b[1].is_ascii_digit() && b[1] <= b'2';
    let (minor_ok, cost_at) = if b[2] == b'$' {
        (true, 3)
    } else {
        (b[2].is_ascii_alphabetic() && b[3] == b'$', 4)
    };
    if !major_ok || !minor_ok {
        return Some(
            "bcrypt version must be `2` with at most one letter (`$2a$`, `$2b$`, `$2y$`)".into(),
        );
    }
    let cost = &h[cost_at..cost_at + 2];
    match cost.parse::<u32>() {
        Ok(c) if (4..=31).contains(&c) && h.as_bytes()[cost_at + 2] == b'$' => None,
        Ok(c) => Some(format!(
            "bcrypt cost {c} is outside the allowed range 4..31"
        )),
        Err(_) => Some("bcrypt hash has no two-digit cost".into()),
    }
}

struct Checker<'a> {
    out: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn err(&mut self, field: &str, reason: impl Into<String>) {
        self.out.push(Problem::error(field, reason));
    }

    /// A string of at least one character (`nullable`: null allowed). Returns it.
    fn string<'v>(&mut self, field: &str, v: &'v Value, nullable: bool) -> Option<&'v str> {
        match v {
            Value::Null if nullable => None,
            Value::String(s) if s.is_empty() => {
                self.err(field, "must not be empty (Authgear rejects empty strings)");
                None
            }
            Value::String(s) => Some(s),
            other => {
                let want = if nullable {
                    "a string or null"
                } else {
                    "a string"
                };
                self.err(field, format!("must be {want}, got {}", kind(other)));
                None
            }
        }
    }

    fn boolean(&mut self, field: &str, v: &Value) {
        if !v.is_boolean() {
            self.err(field, format!("must be a boolean, got {}", kind(v)));
        }
    }

    fn email(&mut self, field: &str, v: &Value, nullable: bool, warn_case: bool) {
        if let Some(s) = self.string(field, v, nullable) {
            if !is_plausible_email(s) {
                self.err(field, "is not a valid e-mail address");
            } else if warn_case && s.chars().any(char::is_uppercase) {
                self.out.push(Problem::warning(
                    field,
                    "has upper-case letters: Authgear stores login IDs lower-cased by default",
                ));
            }
        }
    }

    fn phone(&mut self, field: &str, v: &Value, nullable: bool) {
        if let Some(s) = self.string(field, v, nullable)
            && !is_plausible_phone(s)
        {
            self.err(
                field,
                "must be an E.164 number: `+`, then 7 to 15 digits not starting with 0 (checked with `^\\+[1-9][0-9]{6,14}$`, approximating libphonenumber)",
            );
        }
    }

    fn password(&mut self, field: &str, v: &Value) {
        let Some(o) = v.as_object() else {
            self.err(field, format!("must be an object, got {}", kind(v)));
            return;
        };
        for key in o.keys() {
            if !["type", "password_hash", "expire_after"].contains(&key.as_str()) {
                self.err(
                    &format!("{field}.{key}"),
                    "is not allowed (only `type`, `password_hash`, `expire_after`)",
                );
            }
        }
        match o.get("type") {
            None => self.err(&format!("{field}.type"), "is required"),
            Some(Value::String(t)) if t == "bcrypt" => {}
            Some(Value::String(t)) => self.err(
                &format!("{field}.type"),
                format!("must be `bcrypt` (the only type Authgear imports), got `{t}`"),
            ),
            Some(other) => self.err(
                &format!("{field}.type"),
                format!("must be `bcrypt`, got {}", kind(other)),
            ),
        }
        let hf = format!("{field}.password_hash");
        match o.get("password_hash") {
            None => self.err(&hf, "is required"),
            Some(Value::String(h)) => {
                if let Some(reason) = bcrypt_problem(h) {
                    self.err(&hf, reason);
                }
            }
            Some(other) => self.err(&hf, format!("must be a string, got {}", kind(other))),
        }
        if let Some(e) = o.get("expire_after") {
            let ef = format!("{field}.expire_after");
            if let Some(s) = self.string(&ef, e, false)
                && parse_rfc3339(s).is_none()
            {
                self.err(
                    &ef,
                    "must be an RFC 3339 date-time (`2030-01-02T03:04:05Z`)",
                );
            }
        }
    }
}

/// Checks one raw record against the record schema of `identifier`, with the
/// built-in reserved usernames (see [`check_record_with`]).
pub fn check_record(obj: &Map<String, Value>, identifier: Identifier) -> Vec<Problem> {
    static BUILT_IN: std::sync::LazyLock<ReservedUsernames> =
        std::sync::LazyLock::new(ReservedUsernames::default);
    check_record_with(obj, identifier, &BUILT_IN)
}

/// Checks one raw record against the record schema of `identifier`; usernames are
/// checked with [`check_username`] against `reserved`.
pub fn check_record_with(
    obj: &Map<String, Value>,
    identifier: Identifier,
    reserved: &ReservedUsernames,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut c = Checker { out: &mut out };
    for key in obj.keys() {
        if !RECORD_FIELDS.contains(&key.as_str()) {
            c.err(
                key,
                "is not a field of Authgear's import record (no additional properties are allowed)",
            );
        }
    }
    let id = identifier.as_str();
    match obj.get(id) {
        None | Some(Value::Null) => c.err(
            id,
            format!("is required (non-null) because the identifier is `{id}`"),
        ),
        Some(_) => {}
    }
    for (key, v) in obj {
        let f = key.as_str();
        let nullable = f != id;
        if !nullable && v.is_null() {
            continue; // already reported as required
        }
        match f {
            "email" => c.email(f, v, nullable, true),
            "phone_number" => c.phone(f, v, nullable),
            "preferred_username" => {
                if let Some(s) = c.string(f, v, nullable) {
                    if let Err(why) = check_username(s, reserved) {
                        c.err(f, why);
                    } else if s.chars().any(|ch| ch.is_ascii_uppercase()) {
                        c.out.push(Problem::warning(
                            f,
                            "has upper-case letters: Authgear stores usernames lower-cased by default",
                        ));
                    }
                }
            }
            "email_verified" | "phone_number_verified" | "disabled" => c.boolean(f, v),
            "name" | "given_name" | "family_name" | "middle_name" | "nickname" | "gender" => {
                c.string(f, v, true);
            }
            "profile" | "website" => {
                if let Some(s) = c.string(f, v, true)
                    && !is_absolute_uri(s)
                {
                    c.err(f, "must be an absolute URI with a scheme and a host");
                }
            }
            "picture" => {
                if let Some(s) = c.string(f, v, true)
                    && !is_picture(s)
                {
                    c.err(
                        f,
                        "must be an `http`/`https` URL or an `authgearimages:` URI",
                    );
                }
            }
            "birthdate" => {
                if let Some(s) = c.string(f, v, true)
                    && !is_birthdate(s)
                {
                    c.err(f, "must be `YYYY-MM-DD`, `--MM-DD` or `YYYY`");
                }
            }
            "zoneinfo" => {
                if let Some(s) = c.string(f, v, true)
                    && !is_timezone(s)
                {
                    c.err(f, "must be an IANA time zone name such as `Europe/Paris`");
                }
            }
            "locale" => {
                if let Some(s) = c.string(f, v, true)
                    && !is_canonical_locale(s)
                {
                    c.err(
                        f,
                        "must be a canonical BCP 47 tag such as `en`, `en-US` or `zh-Hant-HK`",
                    );
                }
            }
            "address" => match v {
                Value::Null => {}
                Value::Object(a) => {
                    for sub in [
                        "formatted",
                        "street_address",
                        "locality",
                        "region",
                        "postal_code",
                        "country",
                    ] {
                        if let Some(sv) = a.get(sub) {
                            c.string(&format!("address.{sub}"), sv, false);
                        }
                    }
                }
                other => c.err(f, format!("must be an object or null, got {}", kind(other))),
            },
            "custom_attributes" if !v.is_object() => {
                c.err(f, format!("must be an object, got {}", kind(v)));
            }
            "roles" | "groups" => match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let field = format!("{f}[{i}]");
                        if let Some(key) = c.string(&field, item, false)
                            && let Err(why) = check_role_or_group_key(key)
                        {
                            c.err(&field, why);
                        }
                    }
                }
                other => c.err(
                    f,
                    format!("must be an array of strings, got {}", kind(other)),
                ),
            },
            "account_valid_from" | "account_valid_until" => {
                if let Some(s) = c.string(f, v, false)
                    && parse_rfc3339(s).is_none()
                {
                    c.err(f, "must be an RFC 3339 date-time (`2030-01-02T03:04:05Z`)");
                }
            }
            "password" => c.password(f, v),
            "mfa" => {
                match v {
                    Value::Object(m) => {
                        for (k, mv) in m {
                            let mf = format!("mfa.{k}");
                            match k.as_str() {
                            "email" => c.email(&mf, mv, true, false),
                            "phone_number" => c.phone(&mf, mv, true),
                            "password" => c.password(&mf, mv),
                            "totp" => match mv {
                                Value::Object(t) => {
                                    for tk in t.keys().filter(|k| *k != "secret") {
                                        c.err(&format!("mfa.totp.{tk}"), "is not allowed (only `secret`)");
                                    }
                                    match t.get("secret") {
                                        None => c.err("mfa.totp.secret", "is required"),
                                        Some(s) => {
                                            c.string("mfa.totp.secret", s, false);
                                        }
                                    }
                                }
                                other => c.err(&mf, format!("must be an object, got {}", kind(other))),
                            },
                            _ => c.err(&mf, "is not allowed (only `email`, `phone_number`, `password`, `totp`)"),
                        }
                        }
                    }
                    other => c.err(f, format!("must be an object, got {}", kind(other))),
                }
            }
            _ => {}
        }
    }
    if let (Some(from), Some(until)) = (
        obj.get("account_valid_from")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339),
        obj.get("account_valid_until")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339),
    ) && from >= until
    {
        c.err(
            "account_valid_until",
            "must be later than `account_valid_from`",
        );
    }
    out
}

/// A body-level problem when the body is larger than [`MAX_BODY_BYTES`].
pub fn check_body_size(bytes: u64) -> Option<Problem> {
    (bytes > MAX_BODY_BYTES as u64).then(|| {
        Problem::error(
            "",
            format!(
                "the body is {bytes} bytes; Authgear accepts at most {MAX_BODY_BYTES} bytes per request: \
                 split it (`authmigrate import` splits bodies automatically)"
            ),
        )
    })
}

/// Checks a whole import body: size, top level, `records`, every record.
pub fn check_body(bytes: &[u8]) -> Vec<Located> {
    let body = |problem: Problem| Located {
        index: None,
        problem,
    };
    let mut out: Vec<Located> = check_body_size(bytes.len() as u64)
        .into_iter()
        .map(body)
        .collect();
    let top = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => o,
        Ok(other) => {
            out.push(body(Problem::error(
                "",
                format!(
                    "must be a JSON object with `identifier` and `records`, got {}",
                    kind(&other)
                ),
            )));
            return out;
        }
        Err(e) => {
            out.push(body(Problem::error(
                "",
                format!(
                    "is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )));
            return out;
        }
    };
    let (identifier, problems) = check_body_top(
        top.get("identifier"),
        top.get("upsert"),
        top.keys().map(String::as_str),
    );
    out.extend(problems.into_iter().map(body));
    let records = match top.get("records") {
        None => {
            out.push(body(Problem::error("records", "is required")));
            return out;
        }
        Some(Value::Array(r)) => r,
        Some(other) => {
            out.push(body(Problem::error(
                "records",
                format!("must be an array, got {}", kind(other)),
            )));
            return out;
        }
    };
    if records.is_empty() {
        out.push(body(Problem::error(
            "records",
            "must hold at least 1 record",
        )));
    }
    let Some(identifier) = identifier else {
        return out;
    };
    for (i, rec) in records.iter().enumerate() {
        match rec.as_object() {
            Some(o) => out.extend(
                check_record(o, identifier)
                    .into_iter()
                    .map(|problem| Located {
                        index: Some(i),
                        problem,
                    }),
            ),
            None => out.push(Located {
                index: Some(i),
                problem: Problem::error("", format!("must be an object, got {}", kind(rec))),
            }),
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
        check_record(v.as_object().unwrap(), Identifier::Email)
            .into_iter()
            .map(|p| (p.field, p.reason))
            .collect()
    }

    fn fields(v: Value) -> Vec<String> {
        check(v).into_iter().map(|p| p.0).collect()
    }

    #[test]
    fn full_valid_record_has_no_problems() {
        let v = json!({
            "email": "ada@example.com", "email_verified": true, "preferred_username": "ada",
            "phone_number": "+85298765432", "phone_number_verified": false,
            "name": "Ada", "given_name": null, "picture": "https://example.com/a.png",
            "profile": "https://example.com/ada", "website": "http://ada.example.com",
            "birthdate": "1815-12-10", "zoneinfo": "Europe/London", "locale": "en-GB",
            "address": {"country": "GB"}, "custom_attributes": {"plan": null},
            "roles": ["admin"], "groups": [], "disabled": false,
            "account_valid_from": "2024-01-01T00:00:00Z", "account_valid_until": "2030-01-01T00:00:00+08:00",
            "password": {"type": "bcrypt", "password_hash": HELLO, "expire_after": "2030-01-01T00:00:00Z"},
            "mfa": {"email": "ada@example.com", "phone_number": null, "totp": {"secret": "JBSWY3DPEHPK3PXP"},
                    "password": {"type": "bcrypt", "password_hash": HELLO}}
        });
        assert_eq!(check(v), Vec::<(String, String)>::new());
        assert!(
            check(json!({"email": "a@b.co", "picture": "authgearimages:///app/obj"})).is_empty()
        );
        assert!(check(json!({"email": "a@b.co", "birthdate": "--02-29"})).is_empty());
        assert!(check(json!({"email": "a@b.co", "birthdate": "1990"})).is_empty());
        assert!(check(json!({"email": "a@b.co", "locale": "zh-Hant-HK"})).is_empty());
    }

    #[test]
    fn body_top_level() {
        let (id, p) = check_body_top(
            Some(&json!("phone_number")),
            Some(&json!(true)),
            ["records", "identifier"],
        );
        assert_eq!((id, p), (Some(Identifier::PhoneNumber), vec![]));
        let (id, p) = check_body_top(
            Some(&json!("phone")),
            Some(&json!("yes")),
            ["records", "extra"],
        );
        assert_eq!(id, None);
        let f: Vec<&str> = p.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(f, ["extra", "identifier", "upsert"]);
        assert_eq!(
            check_body_top(None, None, []).1,
            [Problem::error("identifier", "is required")]
        );
    }

    #[test]
    fn root_keys_identifier_and_types() {
        assert_eq!(
            check(json!({"emial": "x"})),
            [
                ("emial".to_owned(), "is not a field of Authgear's import record (no additional properties are allowed)".to_owned()),
                ("email".to_owned(), "is required (non-null) because the identifier is `email`".to_owned()),
            ]
        );
        assert_eq!(fields(json!({"email": null})), ["email"]);
        let by_phone = check_record(
            json!({"email": null, "phone_number": "+85298765432"})
                .as_object()
                .unwrap(),
            Identifier::PhoneNumber,
        );
        assert!(by_phone.is_empty(), "{by_phone:?}");
        assert_eq!(
            check(json!({"email": "a@b.co", "email_verified": null, "disabled": "no", "name": ""})),
            [
                (
                    "email_verified".to_owned(),
                    "must be a boolean, got null".to_owned()
                ),
                (
                    "disabled".to_owned(),
                    "must be a boolean, got a string".to_owned()
                ),
                (
                    "name".to_owned(),
                    "must not be empty (Authgear rejects empty strings)".to_owned()
                ),
            ]
        );
        assert_eq!(
            fields(json!({"email": "a@b.co", "custom_attributes": null, "roles": ["", 3]})),
            ["custom_attributes", "roles[0]", "roles[1]"]
        );
    }

    #[test]
    fn formats() {
        for (field, bad) in [
            ("email", json!("not-an-email")),
            ("email", json!("Ada <ada@example.com>")),
            ("phone_number", json!("+1234")),
            ("phone_number", json!("85298765432")),
            ("preferred_username", json!("ädä")),
            ("preferred_username", json!("x".repeat(41))),
            ("profile", json!("example.com/ada")),
            ("website", json!("https://")),
            ("picture", json!("ftp://example.com/a.png")),
            ("picture", json!("authgearimages:app/obj")),
            ("birthdate", json!("1990-02-30")),
            ("birthdate", json!("10-12-1990")),
            ("zoneinfo", json!("UTC")),
            ("locale", json!("en_US")),
            ("locale", json!("en-us")),
            ("account_valid_from", json!("2024-01-01")),
        ] {
            let mut o = json!({"email": "a@b.co"});
            o[field] = bad.clone();
            assert_eq!(fields(o), [field], "{field} = {bad}");
        }
        assert_eq!(
            fields(json!({"email": "a@b.co", "address": {"country": "", "extra": 1}})),
            ["address.country"]
        );
        assert_eq!(
            check(
                json!({"email": "a@b.co", "account_valid_from": "2030-01-01T00:00:00Z", "account_valid_until": "2024-01-01T00:00:00Z"})
            ),
            [(
                "account_valid_until".to_owned(),
                "must be later than `account_valid_from`".to_owned()
            )]
        );
    }

    #[test]
    fn upper_case_login_ids_are_warnings_only() {
        let p = check_record(
            json!({"email": "Ada@Example.com", "preferred_username": "Ada"})
                .as_object()
                .unwrap(),
            Identifier::Email,
        );
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|x| !x.is_error()));
        assert_eq!(p[0].field, "email");
        assert!(p[0].reason.contains("lower-cased"));
    }

    #[test]
    fn password_rules_never_echo_the_hash() {
        let cases = [
            (
                json!({"type": "argon2", "password_hash": HELLO}),
                "password.type",
                "must be `bcrypt`",
            ),
            (
                json!({"type": "bcrypt"}),
                "password.password_hash",
                "is required",
            ),
            (
                json!({"type": "bcrypt", "password_hash": ""}),
                "password.password_hash",
                "must not be empty",
            ),
            (
                json!({"type": "bcrypt", "password_hash": "SECRETSECRET"}),
                "password.password_hash",
                "modular-crypt",
            ),
            (
                json!({"type": "bcrypt", "password_hash": "$2b$10$SECRETSECRET"}),
                "password.password_hash",
                "too short",
            ),
            (
                json!({"type": "bcrypt", "password_hash": HELLO.replace("$10$", "$32$")}),
                "password.password_hash",
                "cost 32",
            ),
            (
                json!({"type": "bcrypt", "password_hash": HELLO.replace("$2b$", "$3b$")}),
                "password.password_hash",
                "version",
            ),
            (
                json!({"type": "bcrypt", "password_hash": HELLO, "salt": "x"}),
                "password.salt",
                "is not allowed",
            ),
        ];
        for (pw, field, want) in cases {
            let p = check(json!({"email": "a@b.co", "password": pw}));
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].0, field);
            assert!(p[0].1.contains(want), "{}", p[0].1);
            assert!(
                !p[0].1.contains("SECRET") && !p[0].1.contains("nFguVi9L"),
                "{}",
                p[0].1
            );
        }
        // $2y$ and $2x$ pass, as in Go's bcrypt.Cost.
        assert!(check(json!({"email": "a@b.co", "password": {"type": "bcrypt", "password_hash": HELLO.replace("$2b$", "$2y$")}})).is_empty());
    }

    #[test]
    fn mfa_shape() {
        assert_eq!(
            fields(
                json!({"email": "a@b.co", "mfa": {"totp": {"secret": "", "uri": "x"}, "phone_number": "12", "sms": 1}})
            ),
            [
                "mfa.totp.uri",
                "mfa.totp.secret",
                "mfa.phone_number",
                "mfa.sms"
            ]
        );
        assert_eq!(fields(json!({"email": "a@b.co", "mfa": null})), ["mfa"]);
    }

    #[test]
    fn whole_body() {
        let body = format!(
            r#"{{"identifier":"email","upsert":false,"records":[{{"email":"a@b.co","password":{{"type":"bcrypt","password_hash":"{HELLO}"}}}},{{"name":"x"}},7]}}"#
        );
        let found = check_body(body.as_bytes());
        let got: Vec<(Option<usize>, &str)> = found
            .iter()
            .map(|l| (l.index, l.problem.field.as_str()))
            .collect();
        assert_eq!(got, [(Some(1), "email"), (Some(2), "")]);
        let found = check_body(br#"{"identifier":"email","records":[]}"#);
        assert_eq!(
            found,
            [Located {
                index: None,
                problem: Problem::error("records", "must hold at least 1 record")
            }]
        );
        assert_eq!(check_body_size(500_000), None);
        assert!(
            check_body_size(500_001)
                .unwrap()
                .reason
                .contains("500001 bytes")
        );
    }
}

#[cfg(test)]
mod key_rule_tests {
    use super::check_role_or_group_key;

    #[test]
    fn role_or_group_key_rule_follows_the_server() {
        assert!(check_role_or_group_key("manager:SUPER_ADMIN1").is_ok());
        assert!(check_role_or_group_key("_x").is_ok());
        assert_eq!(
            check_role_or_group_key("").unwrap_err(),
            "must not be empty"
        );
        assert!(check_role_or_group_key(&"a".repeat(40)).is_ok());
        assert!(
            check_role_or_group_key(&"a".repeat(41))
                .unwrap_err()
                .contains("at most 40")
        );
        assert!(
            check_role_or_group_key("0admin")
                .unwrap_err()
                .contains("start with")
        );
        assert!(
            check_role_or_group_key("authgear:user")
                .unwrap_err()
                .contains("authgear:")
        );
        assert!(
            check_role_or_group_key("a-b")
                .unwrap_err()
                .contains("only ASCII")
        );
        assert!(
            check_role_or_group_key("é")
                .unwrap_err()
                .contains("start with")
        );
    }
}
