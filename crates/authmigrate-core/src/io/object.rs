//! Typed decoding of one raw object, naming the failing field.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why one object could not be decoded: the field path and the reason.
///
/// The reason never contains the offending value (it could be a password hash or a
/// TOTP secret): serde's type errors keep the kinds (`invalid type: integer, expected a
/// string`) but lose the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", if field.is_empty() { String::new() } else { format!("field `{field}`: ") })]
pub struct FieldError {
    /// Dotted path of the failing field (`password.hash.encoding`; `mfa[0].totp.secret`
    /// for sequences); empty for the object itself.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Decodes `obj` into `T`, reporting the path of the first failing field.
pub fn from_object<T: DeserializeOwned>(obj: Map<String, Value>) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(Value::Object(obj)).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        let reason = redact(&e.inner().to_string(), &field);
        FieldError { field, reason }
    })
}

/// Field names whose values are (or sit next to) secrets.
const SECRET_FIELDS: &[&str] = &[
    "value",
    "hash",
    "salt",
    "key",
    "secret",
    "password",
    "password_hash",
    "passwordhash",
    "custom_password_hash",
    "token",
    "client_secret",
    "private_key",
];

fn is_secret_field(field: &str) -> bool {
    field
        .rsplit('.')
        .next()
        .is_some_and(|last| SECRET_FIELDS.contains(&last.to_ascii_lowercase().as_str()))
}

/// Removes any echoed value from a serde message.
fn redact(message: &str, field: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some(tail) = strip_unexpected(rest) {
                return format!("{prefix}{tail}");
            }
        }
    }
    let structural = [
        "missing field `",
        "unknown field `",
        "invalid length ",
        "duplicate field `",
    ];
    if structural.iter().any(|p| message.starts_with(p)) {
        return message.to_owned();
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if !is_secret_field(field) {
            return message.to_owned();
        }
        if let Some(end) = rest.find("`, ") {
            return format!("unknown variant{}", &rest[end + 1..]);
        }
    }
    if is_secret_field(field) {
        "invalid value (not shown: the field may hold a secret)".to_owned()
    } else {
        message.to_owned()
    }
}

/// `string "abc", expected X` → `string, expected X`; `integer `5`, expected X` →
/// `integer, expected X`; kinds without a value are kept as they are.
fn strip_unexpected(rest: &str) -> Option<String> {
    if let Some(after) = rest.strip_prefix("string \"") {
        // A Debug-quoted string: skip to its closing unescaped quote.
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return Some(format!("string{}", &after[i + 1..])),
                _ => {}
            }
        }
        return None;
    }
    for kind in ["boolean", "integer", "floating point", "character"] {
        if let Some(after) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix(" `")) {
            let end = after.find('`')?;
            return Some(format!("{kind}{}", &after[end + 1..]));
        }
    }
    // `map`, `sequence`, `null`, `unit value`, ... carry no value.
    Some(rest.to_owned())
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{HashAlgorithm, UserRecord};
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn decodes_a_valid_record() {
        let rec: UserRecord = from_object(obj(json!({
            "email": "a@example.com",
            "password": {"algorithm": "bcrypt", "hash": {"value": "$2b$04$abc"}}
        })))
        .unwrap();
        assert_eq!(rec.email.as_deref(), Some("a@example.com"));
        assert_eq!(rec.password.unwrap().algorithm, HashAlgorithm::Bcrypt);
    }

    #[test]
    fn wrong_enum_value_names_the_field() {
        let err = from_object::<UserRecord>(obj(json!({
            "email": "a@example.com",
            "password": {"algorithm": "md55", "hash": {"value": "x"}}
        })))
        .unwrap_err();
        assert_eq!(err.field, "password.algorithm");
        assert!(
            err.reason
                .starts_with("unknown variant `md55`, expected one of"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn unknown_and_missing_fields() {
        let err = from_object::<UserRecord>(obj(json!({"emial": "a@example.com"}))).unwrap_err();
        assert_eq!(err.field, "emial");
        assert!(err.reason.starts_with("unknown field `emial`"));

        let err = from_object::<UserRecord>(obj(json!({
            "password": {"algorithm": "bcrypt"}
        })))
        .unwrap_err();
        assert_eq!(err.field, "password");
        assert_eq!(err.reason, "missing field `hash`");
        assert_eq!(err.to_string(), "field `password`: missing field `hash`");
    }

    #[test]
    fn type_errors_keep_kinds_and_lose_values() {
        let err = from_object::<UserRecord>(obj(json!({
            "password": {"algorithm": "bcrypt", "hash": {"value": 918273645}}
        })))
        .unwrap_err();
        assert_eq!(err.field, "password.hash.value");
        assert_eq!(err.reason, "invalid type: integer, expected a string");
        assert!(!err.to_string().contains("918273645"));

        let err = from_object::<UserRecord>(obj(json!({"email_verified": "yes, \"really\""})))
            .unwrap_err();
        assert_eq!(err.field, "email_verified");
        assert_eq!(err.reason, "invalid type: string, expected a boolean");

        let err = from_object::<UserRecord>(obj(json!({
            "mfa": [{"totp": {"secret": ["JBSWY3DPEHPK3PXP"]}}]
        })))
        .unwrap_err();
        assert_eq!(err.field, "mfa[0].totp.secret");
        assert!(!err.to_string().contains("JBSWY3DPEHPK3PXP"));
    }

    #[test]
    fn unknown_variant_in_a_secret_field_is_hidden() {
        assert_eq!(
            redact("unknown variant `s3cr3t`, expected `a` or `b`", "mfa.value"),
            "unknown variant, expected `a` or `b`"
        );
        assert_eq!(
            redact("something custom about s3cr3t", "password.hash.value"),
            "invalid value (not shown: the field may hold a secret)"
        );
        assert_eq!(
            redact(
                "invalid value: floating point `1.5`, expected u32",
                "keylen"
            ),
            "invalid value: floating point, expected u32"
        );
    }
}
