//! What an Authgear project holds of a user imported through [`to_import_record`]:
//! the import mapping, read back with [`from_import_record`] (for `authmigrate
//! verify`).
//!
//! The mapping already gives what Authgear stores: lower-cased `email` and
//! `preferred_username`, `disabled` only when `true`, custom attributes from
//! `--custom-attribute`, the first factor of each MFA kind. The User Export API never
//! exports password hashes (authgear-api.md §5), so `password` is not observable.

use authmigrate_core::UserRecord;
use authmigrate_core::backend::RecordFailure;
use authmigrate_core::verify::{Expected, Field, Rule};
use serde_json::Value;

use crate::format::{AuthgearMapOptions, from_import_record, to_import_record};

/// What Authgear holds of `record` after an import with `opts`; `Err` when the
/// mapping refuses it (`MISSING_IDENTIFIER`, `UNSUPPORTED_HASH`...: it is never sent).
pub fn expected(record: &UserRecord, opts: &AuthgearMapOptions) -> Result<Expected, RecordFailure> {
    let mapped = to_import_record(record, opts)?;
    let Value::Object(obj) = mapped.json else {
        return Err(RecordFailure::new(
            "INVALID_RECORD",
            "the Authgear mapping did not give an object",
        ));
    };
    let mut r = from_import_record(obj).map_err(|e| {
        RecordFailure::new(
            "INVALID_RECORD",
            format!("field `{}`: {}", e.field, e.reason),
        )
    })?;
    r.source_id = None;
    r.unmapped.clear();
    Ok(Expected::exact(r).with(Field::Password, Rule::NotObservable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Identifier, from_export_record};
    use authmigrate_core::verify::compare;

    fn opts() -> AuthgearMapOptions {
        AuthgearMapOptions {
            identifier: Identifier::Email,
            custom_attributes: vec![("user_metadata.plan".into(), "plan".into())],
            ..AuthgearMapOptions::default()
        }
    }

    #[test]
    fn the_target_view_is_what_the_authgear_export_of_the_imported_user_reads_as() {
        let source: UserRecord = serde_json::from_str(
            r#"{"source_id":"auth0|1","email":"Ada@Example.com","email_verified":true,
                "username":"Ada","name":"Ada","blocked":false,
                "user_metadata":{"plan":"pro","theme":"dark"},
                "password":{"algorithm":"bcrypt","hash":{"value":"$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K"}},
                "mfa":[{"phone":{"value":"+12125550001"}},{"phone":{"value":"+12125550002"}}]}"#,
        )
        .unwrap();
        let e = expected(&source, &opts()).unwrap();
        assert_eq!(e.record.email.as_deref(), Some("ada@example.com"));
        assert_eq!(e.record.username.as_deref(), Some("ada"));
        assert_eq!(e.record.user_metadata, None);
        assert_eq!(
            e.record.mfa.len(),
            1,
            "only the first phone factor is imported"
        );
        let line = r#"{"sub":"u-1","email":"ada@example.com","email_verified":true,
            "phone_number_verified":false,"preferred_username":"ada","name":"Ada",
            "address":{},"custom_attributes":{"plan":"pro"},"disabled":false,
            "is_anonymized":false,"mfa":{"phone_numbers":["+12125550001"]},
            "biometric_count":0,"passkey_count":0,"created_at":"2026-01-01T00:00:00Z"}"#;
        let Value::Object(obj) = serde_json::from_str(line).unwrap() else {
            unreachable!()
        };
        let got = from_export_record(obj).unwrap();
        assert!(compare(&e, &got).is_empty(), "{:?}", compare(&e, &got));
        let mut changed = got;
        changed.custom_attributes = None;
        changed.blocked = Some(true);
        let fields: Vec<_> = compare(&e, &changed).iter().map(|d| d.field).collect();
        assert_eq!(fields, [Field::Blocked, Field::CustomAttributes]);
    }

    #[test]
    fn a_hash_authgear_cannot_import_makes_the_user_missing_with_the_code() {
        let source: UserRecord = serde_json::from_str(
            r#"{"email":"a@example.com","password":{"algorithm":"sha256","hash":{"value":"abcd","encoding":"hex"}}}"#,
        )
        .unwrap();
        assert_eq!(
            expected(&source, &opts()).unwrap_err().code,
            "UNSUPPORTED_HASH"
        );
    }
}
