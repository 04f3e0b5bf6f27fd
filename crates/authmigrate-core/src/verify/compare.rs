//! Field-by-field comparison of an [`Expected`] user with what the target holds.

use serde_json::{Value, json};

use super::Expected;
use crate::UserRecord;
use crate::record::MfaFactor;

/// A field `verify` compares. `source_id` (each provider assigns its own ids; the id
/// map pairs them) and `unmapped` (no target holds it) are never compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Field {
    Email,
    EmailVerified,
    PhoneNumber,
    PhoneVerified,
    Username,
    Name,
    GivenName,
    FamilyName,
    MiddleName,
    Nickname,
    Picture,
    Profile,
    Website,
    Locale,
    Zoneinfo,
    Birthdate,
    Gender,
    Address,
    Blocked,
    UserMetadata,
    AppMetadata,
    CustomAttributes,
    Roles,
    Groups,
    /// The MFA factors by kind (`totp`; `phone:<number>`, `email:<address>`): never a secret.
    Mfa,
    /// Whether a password was carried (`"carried"` or absent): never the hash.
    Password,
}

impl Field {
    /// Every field, in report order.
    pub const ALL: [Self; 26] = [
        Self::Email,
        Self::EmailVerified,
        Self::PhoneNumber,
        Self::PhoneVerified,
        Self::Username,
        Self::Name,
        Self::GivenName,
        Self::FamilyName,
        Self::MiddleName,
        Self::Nickname,
        Self::Picture,
        Self::Profile,
        Self::Website,
        Self::Locale,
        Self::Zoneinfo,
        Self::Birthdate,
        Self::Gender,
        Self::Address,
        Self::Blocked,
        Self::UserMetadata,
        Self::AppMetadata,
        Self::CustomAttributes,
        Self::Roles,
        Self::Groups,
        Self::Mfa,
        Self::Password,
    ];

    /// The neutral field name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::EmailVerified => "email_verified",
            Self::PhoneNumber => "phone_number",
            Self::PhoneVerified => "phone_verified",
            Self::Username => "username",
            Self::Name => "name",
            Self::GivenName => "given_name",
            Self::FamilyName => "family_name",
            Self::MiddleName => "middle_name",
            Self::Nickname => "nickname",
            Self::Picture => "picture",
            Self::Profile => "profile",
            Self::Website => "website",
            Self::Locale => "locale",
            Self::Zoneinfo => "zoneinfo",
            Self::Birthdate => "birthdate",
            Self::Gender => "gender",
            Self::Address => "address",
            Self::Blocked => "blocked",
            Self::UserMetadata => "user_metadata",
            Self::AppMetadata => "app_metadata",
            Self::CustomAttributes => "custom_attributes",
            Self::Roles => "roles",
            Self::Groups => "groups",
            Self::Mfa => "mfa",
            Self::Password => "password",
        }
    }
}

/// How one field is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The values must be equal (after [`field_value`]'s normalisation).
    Exact,
    /// Equal ignoring letter case (ASCII and Unicode lower-casing).
    CaseInsensitive,
    /// When the expected record has no value, the target generates one (Auth0's
    /// `name`, `nickname`, `picture`): with `Some(v)` it must equal `v` ignoring case,
    /// with `None` any value is accepted. An expected value compares exactly.
    Generated(Option<String>),
    /// The target's export does not tell (Authgear never exports password hashes):
    /// not compared.
    NotObservable,
}

/// The normalised, non-secret comparison value of `field` in `record`; `None` is
/// "absent". Booleans are never absent (absent is `false`, as both providers store
/// it); empty strings, objects and lists are absent; lists compare as sorted sets.
pub fn field_value(record: &UserRecord, field: Field) -> Option<Value> {
    use Field as F;
    let s = |v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
    };
    let b = |v: Option<bool>| Some(Value::Bool(v.unwrap_or(false)));
    let obj = |v: &Option<crate::record::JsonObject>| {
        v.as_ref()
            .filter(|o| !o.is_empty())
            .map(|o| Value::Object(o.clone()))
    };
    let set = |v: &[String]| {
        let mut v: Vec<&str> = v
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        v.sort_unstable();
        v.dedup();
        (!v.is_empty()).then(|| json!(v))
    };
    match field {
        F::Email => s(&record.email),
        F::EmailVerified => b(record.email_verified),
        F::PhoneNumber => s(&record.phone_number),
        F::PhoneVerified => b(record.phone_verified),
        F::Username => s(&record.username),
        F::Name => s(&record.name),
        F::GivenName => s(&record.given_name),
        F::FamilyName => s(&record.family_name),
        F::MiddleName => s(&record.middle_name),
        F::Nickname => s(&record.nickname),
        F::Picture => s(&record.picture),
        F::Profile => s(&record.profile),
        F::Website => s(&record.website),
        F::Locale => s(&record.locale),
        F::Zoneinfo => s(&record.zoneinfo),
        F::Birthdate => s(&record.birthdate),
        F::Gender => s(&record.gender),
        F::Address => record
            .address
            .as_ref()
            .and_then(|a| serde_json::to_value(a).ok())
            .filter(|v| v.as_object().is_some_and(|o| !o.is_empty())),
        F::Blocked => b(record.blocked),
        F::UserMetadata => obj(&record.user_metadata),
        F::AppMetadata => obj(&record.app_metadata),
        F::CustomAttributes => obj(&record.custom_attributes),
        F::Roles => set(&record.roles),
        F::Groups => set(&record.groups),
        F::Mfa => {
            let kinds: Vec<String> = record
                .mfa
                .iter()
                .map(|f| match f {
                    MfaFactor::Totp { .. } => "totp".to_owned(),
                    MfaFactor::Phone { value } => format!("phone:{value}"),
                    MfaFactor::Email { value } => format!("email:{value}"),
                })
                .collect();
            set(&kinds)
        }
        F::Password => record.password.as_ref().map(|_| json!("carried")),
    }
}

/// One field of a paired user that is not as expected.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDiff {
    /// The field.
    pub field: Field,
    /// What the target should hold (`None`: nothing).
    pub expected: Option<Value>,
    /// What it holds (`None`: nothing).
    pub got: Option<Value>,
}

fn lower(v: &Value) -> Option<String> {
    v.as_str().map(str::to_lowercase)
}

/// A string lower-cased, or a list of strings lower-cased as a sorted set (Auth0
/// matches role and organization names ignoring case).
fn lower_any(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) => Some(Value::String(s.to_lowercase())),
        Value::Array(items) => {
            let mut l: Vec<String> = items.iter().filter_map(lower).collect();
            l.sort();
            l.dedup();
            Some(json!(l))
        }
        _ => None,
    }
}

/// Compares every [`Field`] of `expected` with the target's user `got`.
pub fn compare(expected: &Expected, got: &UserRecord) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    for field in Field::ALL {
        let rule = expected.rule(field);
        if *rule == Rule::NotObservable {
            continue;
        }
        let want = field_value(&expected.record, field);
        let have = field_value(got, field);
        let same = match (rule, &want, &have) {
            (_, Some(w), Some(h)) if matches!(rule, Rule::CaseInsensitive) => {
                lower_any(w).is_some() && lower_any(w) == lower_any(h)
            }
            (Rule::Generated(_), None, None) => true,
            (Rule::Generated(None), None, Some(_)) => true,
            (Rule::Generated(Some(g)), None, Some(h)) => {
                lower(h).as_deref() == Some(&g.to_lowercase())
            }
            _ => want == have,
        };
        if !same {
            out.push(FieldDiff {
                field,
                expected: match (rule, &want) {
                    (Rule::Generated(Some(g)), None) => Some(Value::String(g.clone())),
                    _ => want,
                },
                got: have,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Address, PasswordHash};
    use crate::secret::Secret;

    fn user() -> UserRecord {
        UserRecord {
            email: Some("ada@example.com".into()),
            name: Some("Ada".into()),
            ..Default::default()
        }
    }

    fn fields(d: &[FieldDiff]) -> Vec<&'static str> {
        d.iter().map(|d| d.field.as_str()).collect()
    }

    #[test]
    fn equal_records_have_no_difference_and_a_changed_field_is_named_with_both_values() {
        let e = Expected::exact(user());
        assert!(compare(&e, &user()).is_empty());
        let mut got = user();
        got.name = Some("Ada L.".into());
        let d = compare(&e, &got);
        assert_eq!(fields(&d), ["name"]);
        assert_eq!(d[0].expected, Some(json!("Ada")));
        assert_eq!(d[0].got, Some(json!("Ada L.")));
        got.name = None;
        let d = compare(&e, &got);
        assert_eq!(
            (d[0].expected.clone(), d[0].got.clone()),
            (Some(json!("Ada")), None)
        );
    }

    #[test]
    fn absent_booleans_are_false_and_empty_values_are_absent() {
        let mut want = user();
        want.email_verified = Some(false);
        want.blocked = None;
        want.user_metadata = Some(Default::default());
        want.roles = vec!["b".into(), "a".into(), "a".into()];
        want.address = Some(Address::default());
        let mut got = user();
        got.email_verified = None;
        got.blocked = Some(false);
        got.name = Some("Ada".into());
        got.roles = vec!["a".into(), "b".into()];
        assert!(compare(&Expected::exact(want.clone()), &got).is_empty());
        got.blocked = Some(true);
        got.roles = vec!["a".into()];
        let d = compare(&Expected::exact(want), &got);
        assert_eq!(fields(&d), ["blocked", "roles"]);
        assert_eq!(d[0].expected, Some(json!(false)));
        assert_eq!(d[1].expected, Some(json!(["a", "b"])));
    }

    #[test]
    fn generated_fields_accept_what_the_target_fills_only_when_nothing_was_expected() {
        let mut want = user();
        want.name = None;
        let e = Expected::exact(want)
            .with(Field::Name, Rule::Generated(Some("ada@example.com".into())))
            .with(Field::Picture, Rule::Generated(None));
        let mut got = user();
        got.name = Some("Ada@Example.com".into());
        got.picture = Some("https://gravatar.example/x".into());
        assert!(compare(&e, &got).is_empty());
        got.name = Some("someone else".into());
        let d = compare(&e, &got);
        assert_eq!(fields(&d), ["name"]);
        assert_eq!(d[0].expected, Some(json!("ada@example.com")));
        // With an expected value the rule is exact; without the rule, a value the
        // source did not have is a difference.
        let e = Expected::exact(user()).with(Field::Name, Rule::Generated(None));
        assert_eq!(fields(&compare(&e, &got)), ["name", "picture"]);
    }

    #[test]
    fn not_observable_fields_and_case_insensitive_fields() {
        let mut want = user();
        want.password = Some(PasswordHash::bcrypt("$2b$10$x"));
        let got = user();
        let e = Expected::exact(want.clone());
        let d = compare(&e, &got);
        assert_eq!(fields(&d), ["password"]);
        assert_eq!(
            (d[0].expected.clone(), d[0].got.clone()),
            (Some(json!("carried")), None)
        );
        assert!(compare(&e.with(Field::Password, Rule::NotObservable), &got).is_empty());
        let mut got = user();
        got.email = Some("ADA@example.com".into());
        let e = Expected::exact(user());
        assert_eq!(fields(&compare(&e, &got)), ["email"]);
        assert!(compare(&e.with(Field::Email, Rule::CaseInsensitive), &got).is_empty());
        // Lists compare as sets of lower-cased names.
        let mut want = user();
        want.roles = vec!["Admin".into(), "viewer".into()];
        let mut have = user();
        have.roles = vec!["VIEWER".into(), "admin".into()];
        let e = Expected::exact(want).with(Field::Roles, Rule::CaseInsensitive);
        assert!(compare(&e, &have).is_empty());
        have.roles.pop();
        assert_eq!(fields(&compare(&e, &have)), ["roles"]);
    }

    #[test]
    fn mfa_compares_by_kind_and_never_shows_a_totp_secret() {
        let mut want = user();
        want.mfa = vec![
            MfaFactor::Totp {
                secret: Secret::new("JBSWY3DPEHPK3PXP"),
            },
            MfaFactor::Phone {
                value: "+12125550001".into(),
            },
        ];
        let mut got = user();
        got.mfa = vec![
            MfaFactor::Phone {
                value: "+12125550001".into(),
            },
            MfaFactor::Totp {
                secret: Secret::new("OTHERSECRET23456"),
            },
        ];
        assert!(compare(&Expected::exact(want.clone()), &got).is_empty());
        got.mfa.pop();
        let d = compare(&Expected::exact(want), &got);
        assert_eq!(fields(&d), ["mfa"]);
        let shown = format!("{:?}", d);
        assert!(!shown.contains("JBSWY3DP"), "{shown}");
        assert_eq!(d[0].expected, Some(json!(["phone:+12125550001", "totp"])));
    }

    #[test]
    fn metadata_compares_as_objects_in_any_key_order() {
        let mut want = user();
        let mut got = user();
        want.user_metadata = serde_json::from_str(r#"{"a":1,"b":{"c":true}}"#).unwrap();
        got.user_metadata = serde_json::from_str(r#"{"b":{"c":true},"a":1}"#).unwrap();
        assert!(compare(&Expected::exact(want.clone()), &got).is_empty());
        got.user_metadata = serde_json::from_str(r#"{"b":{"c":false},"a":1}"#).unwrap();
        assert_eq!(
            fields(&compare(&Expected::exact(want), &got)),
            ["user_metadata"]
        );
    }
}
