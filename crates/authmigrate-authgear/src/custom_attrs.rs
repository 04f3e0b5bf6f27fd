//! Typed custom attributes: `--custom-attribute SRC=DST:TYPE` (cli-contract.md v2,
//! authgear-admin-graphql.md §4).
//!
//! A value is converted only where the conversion is exact; otherwise the attribute
//! is left out of that user's record with a warning (the user is still imported):
//! - `string`: a JSON string of at least 1 character; a number or a bool is never
//!   turned into a string (its text form is a choice the source never made);
//! - `number[:MIN:MAX]`: a finite JSON number, or a string that parses as one and
//!   prints back identically (`"1.5"`, not `"1.50"` or `" 1"`);
//! - `integer[:MIN:MAX]`: a JSON number with an integer value (`3`, `3.0`), or a
//!   string of an integer that prints back identically (`"42"`, not `"042"`);
//! - `enum:A|B|…`: a string equal to one of the values (case-sensitive);
//! - `phone_number`: E.164 by shape (`^\+[1-9][0-9]{6,14}$`), `email`: the plausible
//!   e-mail check, `url`: an absolute URI with a scheme and a host, `country_code`:
//!   two upper-case ASCII letters (the ISO 3166-1 alpha-2 shape; the list itself is
//!   not checked).
//!
//! MIN and MAX are inclusive, either may be empty (`integer::10`).

use std::fmt;
use std::str::FromStr;

use serde_json::{Number, Value};

use crate::format::kind;

/// A declared custom-attribute type.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrType {
    /// `string`.
    String,
    /// `number[:MIN:MAX]`.
    Number { min: Option<f64>, max: Option<f64> },
    /// `integer[:MIN:MAX]`.
    Integer { min: Option<i64>, max: Option<i64> },
    /// `enum:A|B|…`.
    Enum(Vec<String>),
    /// `phone_number`.
    PhoneNumber,
    /// `email`.
    Email,
    /// `url`.
    Url,
    /// `country_code`.
    CountryCode,
}

impl Eq for AttrType {}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = |b: Option<String>| b.unwrap_or_default();
        match self {
            Self::String => f.write_str("string"),
            Self::Number {
                min: None,
                max: None,
            } => f.write_str("number"),
            Self::Number { min, max } => write!(
                f,
                "number:{}:{}",
                bound(min.map(|m| m.to_string())),
                bound(max.map(|m| m.to_string()))
            ),
            Self::Integer {
                min: None,
                max: None,
            } => f.write_str("integer"),
            Self::Integer { min, max } => write!(
                f,
                "integer:{}:{}",
                bound(min.map(|m| m.to_string())),
                bound(max.map(|m| m.to_string()))
            ),
            Self::Enum(values) => write!(f, "enum:{}", values.join("|")),
            Self::PhoneNumber => f.write_str("phone_number"),
            Self::Email => f.write_str("email"),
            Self::Url => f.write_str("url"),
            Self::CountryCode => f.write_str("country_code"),
        }
    }
}

fn bounds<T: FromStr + PartialOrd>(
    rest: &str,
    what: &str,
) -> Result<(Option<T>, Option<T>), String> {
    let Some((lo, hi)) = rest.split_once(':') else {
        return Err(format!(
            "`{what}` bounds must be `MIN:MAX` (either may be empty)"
        ));
    };
    let parse = |s: &str| -> Result<Option<T>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<T>()
            .map(Some)
            .map_err(|_| format!("`{s}` is not a valid {what} bound"))
    };
    let (min, max) = (parse(lo)?, parse(hi)?);
    if let (Some(a), Some(b)) = (&min, &max)
        && a > b
    {
        return Err(format!("the {what} minimum is greater than its maximum"));
    }
    Ok((min, max))
}

impl FromStr for AttrType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rest) = match s.split_once(':') {
            Some((n, r)) => (n, Some(r)),
            None => (s, None),
        };
        let no_args = |t: Self| match rest {
            None => Ok(t),
            Some(_) => Err(format!("type `{name}` takes no arguments")),
        };
        match name {
            "string" => no_args(Self::String),
            "phone_number" => no_args(Self::PhoneNumber),
            "email" => no_args(Self::Email),
            "url" => no_args(Self::Url),
            "country_code" => no_args(Self::CountryCode),
            "number" => {
                let (min, max) = match rest {
                    None => (None, None),
                    Some(r) => bounds::<f64>(r, "number")?,
                };
                if min.is_some_and(|m: f64| !m.is_finite())
                    || max.is_some_and(|m: f64| !m.is_finite())
                {
                    return Err("number bounds must be finite".to_owned());
                }
                Ok(Self::Number { min, max })
            }
            "integer" => {
                let (min, max) = match rest {
                    None => (None, None),
                    Some(r) => bounds::<i64>(r, "integer")?,
                };
                Ok(Self::Integer { min, max })
            }
            "enum" => {
                let values: Vec<String> =
                    rest.unwrap_or("").split('|').map(str::to_owned).collect();
                if values.iter().any(String::is_empty) {
                    return Err("`enum` needs its values, `enum:A|B`, none empty".to_owned());
                }
                Ok(Self::Enum(values))
            }
            other => Err(format!(
                "unknown type `{other}`: expected string, number[:MIN:MAX], integer[:MIN:MAX], enum:A|B, phone_number, email, url or country_code"
            )),
        }
    }
}

impl AttrType {
    /// The value as this type, or why it does not fit (naming the value's JSON type
    /// and never quoting the value).
    pub fn convert(&self, v: &Value) -> Result<Value, String> {
        let no = |why: &str| Err(format!("{} value does not fit `{self}`: {why}", kind(v)));
        match self {
            Self::String => match v {
                Value::String(s) if !s.is_empty() => Ok(v.clone()),
                Value::String(_) => no("empty"),
                _ => no("not a string"),
            },
            Self::Number { min, max } => {
                let n = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .and_then(Number::from_f64)
                        .filter(|n| n.to_string() == *s || integer_text(s))
                        .and_then(|n| n.as_f64()),
                    _ => None,
                };
                let Some(n) = n.filter(|f| f.is_finite()) else {
                    return no("not an exact number");
                };
                if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                    return no("out of range");
                }
                match v {
                    Value::Number(_) => Ok(v.clone()),
                    Value::String(s) if integer_text(s) => Ok(s
                        .parse::<i64>()
                        .map_or_else(|_| Value::from(n), Value::from)),
                    _ => Ok(Value::from(n)),
                }
            }
            Self::Integer { min, max } => {
                let i = match v {
                    Value::Number(n) => n.as_i64().or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15)
                            .map(|f| f as i64)
                    }),
                    Value::String(s) if integer_text(s) => s.parse::<i64>().ok(),
                    _ => None,
                };
                let Some(i) = i else {
                    return no("not an exact integer");
                };
                if min.is_some_and(|m| i < m) || max.is_some_and(|m| i > m) {
                    return no("out of range");
                }
                Ok(Value::from(i))
            }
            Self::Enum(values) => match v {
                Value::String(s) if values.iter().any(|x| x == s) => Ok(v.clone()),
                Value::String(_) => no("not one of the values"),
                _ => no("not a string"),
            },
            Self::PhoneNumber => match v {
                Value::String(s) if crate::validate::is_plausible_phone(s) => Ok(v.clone()),
                _ => no("not an E.164 phone number"),
            },
            Self::Email => match v {
                Value::String(s) if crate::validate::is_plausible_email(s) => Ok(v.clone()),
                _ => no("not an e-mail address"),
            },
            Self::Url => match v {
                Value::String(s) if crate::validate::is_absolute_uri(s) => Ok(v.clone()),
                _ => no("not an absolute URL"),
            },
            Self::CountryCode => match v {
                Value::String(s) if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) => {
                    Ok(v.clone())
                }
                _ => no("not a two-letter country code"),
            },
        }
    }
}

/// `-?[1-9][0-9]*` or `0`: an integer that prints back as written.
fn integer_text(s: &str) -> bool {
    s.parse::<i64>().is_ok_and(|i| i.to_string() == s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> AttrType {
        s.parse().unwrap()
    }

    #[test]
    fn parses_types_and_names_what_is_wrong() {
        assert_eq!(
            t("integer:1:10"),
            AttrType::Integer {
                min: Some(1),
                max: Some(10)
            }
        );
        assert_eq!(
            t("number::2.5"),
            AttrType::Number {
                min: None,
                max: Some(2.5)
            }
        );
        assert_eq!(t("enum:a|b"), AttrType::Enum(vec!["a".into(), "b".into()]));
        assert_eq!(t("integer:1:10").to_string(), "integer:1:10");
        assert!(
            "integer:1"
                .parse::<AttrType>()
                .unwrap_err()
                .contains("MIN:MAX")
        );
        assert!(
            "integer:5:1"
                .parse::<AttrType>()
                .unwrap_err()
                .contains("greater")
        );
        assert!(
            "integer:x:"
                .parse::<AttrType>()
                .unwrap_err()
                .contains("`x`")
        );
        assert!("enum:".parse::<AttrType>().unwrap_err().contains("values"));
        assert!(
            "email:x"
                .parse::<AttrType>()
                .unwrap_err()
                .contains("no arguments")
        );
        assert!(
            "bool"
                .parse::<AttrType>()
                .unwrap_err()
                .contains("unknown type `bool`")
        );
    }

    #[test]
    fn converts_only_exactly() {
        let int = t("integer:0:100");
        assert_eq!(int.convert(&json!(3)), Ok(json!(3)));
        assert_eq!(int.convert(&json!(3.0)), Ok(json!(3)));
        assert_eq!(int.convert(&json!("42")), Ok(json!(42)));
        assert_eq!(
            int.convert(&json!("042")).unwrap_err(),
            "a string value does not fit `integer:0:100`: not an exact integer"
        );
        assert!(
            int.convert(&json!(3.5))
                .unwrap_err()
                .contains("not an exact integer")
        );
        assert!(
            int.convert(&json!(101))
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            int.convert(&json!(true))
                .unwrap_err()
                .starts_with("a boolean value")
        );
        let num = t("number");
        assert_eq!(num.convert(&json!("1.5")), Ok(json!(1.5)));
        assert_eq!(num.convert(&json!("7")), Ok(json!(7)));
        assert!(num.convert(&json!("1.50")).is_err());
        assert!(num.convert(&json!(" 1")).is_err());
        assert!(num.convert(&json!("NaN")).is_err());
        let s = t("string");
        assert_eq!(s.convert(&json!("x")), Ok(json!("x")));
        assert!(s.convert(&json!("")).unwrap_err().contains("empty"));
        assert!(s.convert(&json!(1)).unwrap_err().contains("not a string"));
        assert!(s.convert(&json!(false)).is_err());
        let e = t("enum:gold|silver");
        assert!(e.convert(&json!("gold")).is_ok());
        assert!(e.convert(&json!("Gold")).is_err());
        assert!(t("phone_number").convert(&json!("+14155550100")).is_ok());
        assert!(t("phone_number").convert(&json!("555")).is_err());
        assert!(t("email").convert(&json!("a@example.com")).is_ok());
        assert!(t("email").convert(&json!("nope")).is_err());
        assert!(t("url").convert(&json!("https://example.com/x")).is_ok());
        assert!(t("url").convert(&json!("example.com")).is_err());
        assert!(t("country_code").convert(&json!("HK")).is_ok());
        assert!(t("country_code").convert(&json!("hk")).is_err());
    }
}
