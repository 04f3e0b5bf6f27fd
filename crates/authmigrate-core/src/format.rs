//! Types shared by the provider format modules (`authmigrate_auth0::format`,
//! `authmigrate_authgear::format`) and their offline validators.

use std::fmt;

use serde_json::{Map, Value};

use crate::backend::{Encoded, RecordFailure};

pub use crate::io::FieldError;

/// The warning a mapper gives a user that has no password hash (a social user, or one
/// exported from Authgear, which never exports hashes).
pub const NO_PASSWORD: &str =
    "no password hash: the user cannot log in with a password until it is reset";

/// One record mapped to a provider's JSON, with what was left out.
#[derive(Clone, PartialEq)]
pub struct Mapped {
    /// The JSON object, keys in a fixed order.
    pub json: Value,
    /// One message per field that could not be carried over.
    pub warnings: Vec<String>,
}

impl fmt::Debug for Mapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The JSON holds password hashes and TOTP secrets: never print it.
        let keys: Vec<&str> = self
            .json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        f.debug_struct("Mapped")
            .field("keys", &keys)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl Mapped {
    /// The record's exact JSON bytes for an import request, with its warnings.
    pub fn encode(self) -> Result<Encoded, RecordFailure> {
        let json = serde_json::to_vec(&self.json).map_err(|e| {
            RecordFailure::new(
                "INVALID_RECORD",
                format!("cannot serialize the record: {e}"),
            )
        })?;
        Ok(Encoded {
            json,
            warnings: self.warnings,
        })
    }
}

/// The kind of a JSON value, for messages (`a string`, `an object`...): never the value.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Removes a boolean field: `None` when absent or null.
pub fn take_bool(obj: &mut Map<String, Value>, key: &str) -> Result<Option<bool>, FieldError> {
    match obj.shift_remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(FieldError::new(
            key,
            format!("must be a boolean, got {}", kind(&other)),
        )),
    }
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The provider would reject the record (or the file).
    Error,
    /// Accepted, but probably not what was meant.
    Warning,
}

/// One problem with one field, found by offline validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field path (`custom_password_hash.hash.encoding`, `mfa_factors[0].totp.secret`);
    /// empty for the record or file as a whole.
    pub field: String,
    /// What is wrong, in lowercase. Never contains a secret value.
    pub reason: String,
    /// Error or warning.
    pub severity: Severity,
}

impl Problem {
    /// An error.
    pub fn error(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
            severity: Severity::Error,
        }
    }

    /// A warning.
    pub fn warning(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(field, reason)
        }
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "field `{}`: {}", self.field, self.reason)
        }
    }
}

/// A problem and the 0-based index of the record it is about (`None`: the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The record's 0-based index in the file, or `None` for a file-level problem.
    pub index: Option<usize>,
    /// The problem.
    pub problem: Problem,
}

/// A pragmatic e-mail check: one `@`, a non-empty local part, a domain with a dot
/// (not at either end), no whitespace, no display name (`<`, `>`).
pub fn is_plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_plausible_email("a@b.co"));
        for bad in [
            "",
            "a",
            "@b.co",
            "a@b",
            "a@.b",
            "a@b.",
            "a b@c.d",
            "A <a@b.co>",
            "a@b@c.d",
        ] {
            assert!(!is_plausible_email(bad), "{bad}");
        }
    }

    #[test]
    fn problem_display_and_mapped_debug() {
        assert_eq!(
            Problem::error("email", "is required").to_string(),
            "field `email`: is required"
        );
        assert_eq!(Problem::warning("", "empty file").to_string(), "empty file");
        let m = Mapped {
            json: serde_json::json!({"password_hash": "$2b$10$secret"}),
            warnings: vec![],
        };
        assert!(!format!("{m:?}").contains("secret"));
    }
}
