//! The project's declared custom attributes and the value check of
//! authgear-admin-graphql.md §4.2: a value of the wrong type fails the whole record with
//! `Invalid`/`ValidationFailed` "invalid value" (authgear-api.md §2.6); undeclared keys
//! are dropped; `null` deletes the attribute.

use serde_json::{Map, Value, json};

use super::api::api_error;
use super::schema::{is_absolute_uri, is_e164, is_email};

/// A custom attribute's declared type (`user_profile.custom_attributes.attributes[].type`).
/// There is no boolean, object or array type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeType {
    /// `type: string`, `minLength: 1`.
    String,
    /// `type: number`, optional `minimum`/`maximum`.
    Number,
    /// `type: integer`, optional `minimum`/`maximum`.
    Integer,
    /// `type: string` from a fixed list.
    Enum,
    /// `format: phone` (E.164).
    PhoneNumber,
    /// `format: email`.
    Email,
    /// `format: uri`.
    Url,
    /// `format: iso3166-1-alpha-2`.
    CountryCode,
}

/// One declared custom attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomAttribute {
    /// The pointer's name (`/x_age` is `x_age`).
    pub name: String,
    /// The declared type.
    pub kind: AttributeType,
    /// `minimum` (number and integer only).
    pub minimum: Option<f64>,
    /// `maximum` (number and integer only).
    pub maximum: Option<f64>,
    /// The allowed values of an `enum` attribute.
    pub enum_values: Vec<String>,
}

impl CustomAttribute {
    /// An attribute of `kind` without bounds.
    pub fn new(name: impl Into<String>, kind: AttributeType) -> Self {
        Self {
            name: name.into(),
            kind,
            minimum: None,
            maximum: None,
            enum_values: Vec::new(),
        }
    }

    /// Sets `minimum` / `maximum`.
    pub fn with_range(mut self, minimum: Option<f64>, maximum: Option<f64>) -> Self {
        self.minimum = minimum;
        self.maximum = maximum;
        self
    }

    /// An `enum` attribute with these values.
    pub fn with_enum<I, S>(name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            enum_values: values.into_iter().map(Into::into).collect(),
            ..Self::new(name, AttributeType::Enum)
        }
    }
}

/// A bare name declares a `string` attribute.
impl From<&str> for CustomAttribute {
    fn from(name: &str) -> Self {
        Self::new(name, AttributeType::String)
    }
}

/// A bare name declares a `string` attribute.
impl From<String> for CustomAttribute {
    fn from(name: String) -> Self {
        Self::new(name, AttributeType::String)
    }
}

/// JSON-schema type names of a value as the Go validator reports them: an integral
/// number is both `integer` and `number` (`map[actual:[integer number] ...]`).
fn actual_types(v: &Value) -> Value {
    match v {
        Value::Null => json!(["null"]),
        Value::Bool(_) => json!(["boolean"]),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!(["integer", "number"]),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            json!(["integer", "number"])
        }
        Value::Number(_) => json!(["number"]),
        Value::String(_) => json!(["string"]),
        Value::Array(_) => json!(["array"]),
        Value::Object(_) => json!(["object"]),
    }
}

fn cause(location: &str, kind: &str, details: Value) -> Value {
    json!({ "location": location, "kind": kind, "details": details })
}

/// ISO 3166-1 alpha-2 shape: two upper-case ASCII letters. Approximation: the real
/// format checks the assigned code list, which the sandbox does not carry.
fn is_country_code(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// The causes for one value of a declared attribute (empty when it is valid).
fn check_value(attr: &CustomAttribute, v: &Value) -> Vec<Value> {
    let loc = format!("/{}", attr.name);
    let type_error = |expected: &str| {
        vec![cause(
            &loc,
            "type",
            json!({ "actual": actual_types(v), "expected": [expected] }),
        )]
    };
    match attr.kind {
        AttributeType::Number | AttributeType::Integer => {
            let Some(n) = v.as_f64() else {
                return type_error(if attr.kind == AttributeType::Number {
                    "number"
                } else {
                    "integer"
                });
            };
            if attr.kind == AttributeType::Integer && n.fract() != 0.0 {
                return type_error("integer");
            }
            let mut out = Vec::new();
            if let Some(min) = attr.minimum.filter(|min| n < *min) {
                out.push(cause(
                    &loc,
                    "minimum",
                    json!({ "actual": v, "minimum": min }),
                ));
            }
            if let Some(max) = attr.maximum.filter(|max| n > *max) {
                out.push(cause(
                    &loc,
                    "maximum",
                    json!({ "actual": v, "maximum": max }),
                ));
            }
            out
        }
        _ => {
            let Some(s) = v.as_str() else {
                return type_error("string");
            };
            match attr.kind {
                AttributeType::String if s.is_empty() => vec![cause(
                    &loc,
                    "minLength",
                    json!({ "actual": 0, "expected": 1 }),
                )],
                AttributeType::Enum if !attr.enum_values.iter().any(|e| e == s) => vec![cause(
                    &loc,
                    "enum",
                    json!({ "actual": s, "expected": attr.enum_values }),
                )],
                // The `error` texts are the sandbox's wording where the docs only
                // give the phone one ("not in E.164 format").
                AttributeType::PhoneNumber if !is_e164(s) => vec![cause(
                    &loc,
                    "format",
                    json!({ "error": "not in E.164 format", "format": "phone" }),
                )],
                AttributeType::Email if !is_email(s) => vec![cause(
                    &loc,
                    "format",
                    json!({ "error": "invalid email address", "format": "email" }),
                )],
                AttributeType::Url if !is_absolute_uri(s) => vec![cause(
                    &loc,
                    "format",
                    json!({ "error": "input URL must be absolute", "format": "uri" }),
                )],
                AttributeType::CountryCode if !is_country_code(s) => vec![cause(
                    &loc,
                    "format",
                    json!({ "error": "invalid country code", "format": "iso3166-1-alpha-2" }),
                )],
                _ => Vec::new(),
            }
        }
    }
}

/// Applies a record's `custom_attributes` to `custom`: declared keys only, `null`
/// deletes, a wrong value fails with every cause found (in the record's key order).
pub(super) fn apply(
    declared: &[CustomAttribute],
    custom: &mut Map<String, Value>,
    input: Option<&Value>,
) -> Result<(), Value> {
    let Some(input) = input.and_then(Value::as_object) else {
        return Ok(());
    };
    let mut causes = Vec::new();
    let mut updates = Vec::new();
    for (key, v) in input {
        let Some(attr) = declared.iter().find(|a| a.name == *key) else {
            continue;
        };
        if v.is_null() {
            updates.push((key.clone(), None));
            continue;
        }
        let found = check_value(attr, v);
        if found.is_empty() {
            updates.push((key.clone(), Some(v.clone())));
        }
        causes.extend(found);
    }
    if !causes.is_empty() {
        return Err(api_error(
            "Invalid",
            "ValidationFailed",
            "invalid value",
            Some(json!({ "causes": causes })),
        ));
    }
    for (key, v) in updates {
        match v {
            Some(v) => custom.insert(key, v),
            None => custom.remove(&key),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_bounds() {
        let age = CustomAttribute::new("x_age", AttributeType::Integer)
            .with_range(Some(0.0), Some(150.0));
        assert!(check_value(&age, &json!(30)).is_empty());
        assert!(check_value(&age, &json!(30.0)).is_empty());
        assert_eq!(
            check_value(&age, &json!("30")),
            vec![cause(
                "/x_age",
                "type",
                json!({"actual": ["string"], "expected": ["integer"]})
            )]
        );
        assert_eq!(
            check_value(&age, &json!(30.5))[0]["details"]["actual"],
            json!(["number"])
        );
        assert_eq!(check_value(&age, &json!(151))[0]["kind"], "maximum");
        assert_eq!(check_value(&age, &json!(-1))[0]["kind"], "minimum");
        let plan = CustomAttribute::with_enum("plan", ["a", "b"]);
        assert_eq!(check_value(&plan, &json!("c"))[0]["kind"], "enum");
        let s = CustomAttribute::from("nick");
        assert_eq!(check_value(&s, &json!(""))[0]["kind"], "minLength");
        assert_eq!(
            check_value(&s, &json!(true))[0]["details"]["actual"],
            json!(["boolean"])
        );
        let cc = CustomAttribute::new("cc", AttributeType::CountryCode);
        assert!(check_value(&cc, &json!("HK")).is_empty());
        assert_eq!(check_value(&cc, &json!("hk"))[0]["kind"], "format");
    }
}
