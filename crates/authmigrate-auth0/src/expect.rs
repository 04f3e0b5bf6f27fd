//! What an Auth0 tenant holds of a user imported through [`to_bulk_user`]: the
//! bulk-import mapping, read back with [`from_bulk_user`], plus what Auth0 itself does
//! on import (for `authmigrate verify`).
//!
//! - E-mails are stored lower-cased (auth0-rbac-orgs-mfa.md: "the email address
//!   associated with a user is saved in lower case").
//! - A missing `name`, `nickname` or `picture` is filled on import (auth0-api.md §1
//!   (NEW)): `name` = the e-mail, `nickname` = its local part (compared ignoring
//!   case), a gravatar `picture` (any value accepted).
//! - The user export carries neither enrolled MFA factors, roles nor organizations,
//!   nor password hashes: those fields are not observable, except the password when
//!   the caller has a password-hash export of the target, and roles and groups when
//!   the caller read them from the tenant ([`Observable`]). The record then names
//!   the roles and organizations Auth0 should hold (the tenant step's names), and
//!   they compare ignoring case, as Auth0 matches role names.

use authmigrate_core::UserRecord;
use authmigrate_core::backend::RecordFailure;
use authmigrate_core::verify::{Expected, Field, Rule};
use serde_json::Value;

use crate::format::{Auth0MapOptions, from_bulk_user, to_bulk_user};

/// What the caller can see of the target besides its user export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observable {
    /// The target was read with a password-hash export: `password` (carried or not)
    /// is compared.
    pub passwords: bool,
    /// The target's roles were read (each user's, by name): `record.roles` (target
    /// names) are compared.
    pub roles: bool,
    /// The target's organization memberships were read: `record.groups`
    /// (organization names) are compared.
    pub groups: bool,
}

/// What Auth0 holds of `record` after a bulk import with `opts`; `Err` when the
/// mapping refuses it (it is never sent).
pub fn expected(
    record: &UserRecord,
    opts: &Auth0MapOptions,
    observe: Observable,
) -> Result<Expected, RecordFailure> {
    let mapped = to_bulk_user(record, opts)?;
    let Value::Object(obj) = mapped.json else {
        return Err(RecordFailure::new(
            "INVALID_RECORD",
            "the Auth0 mapping did not give an object",
        ));
    };
    let mut r = from_bulk_user(obj).map_err(|e| {
        RecordFailure::new(
            "INVALID_RECORD",
            format!("field `{}`: {}", e.field, e.reason),
        )
    })?;
    r.source_id = None;
    r.unmapped.clear();
    r.email = r.email.map(|e| e.to_lowercase());
    let email = r.email.clone().unwrap_or_default();
    let local = email.split('@').next().unwrap_or_default().to_owned();
    let mut e = Expected::exact(r)
        .with(Field::Name, Rule::Generated(Some(email)))
        .with(Field::Nickname, Rule::Generated(Some(local)))
        .with(Field::Picture, Rule::Generated(None))
        .with(Field::Mfa, Rule::NotObservable);
    // The bulk-import user has no roles or organizations: they are assigned after
    // the import, under the names the record names.
    e.record.roles = Vec::new();
    e.record.groups = Vec::new();
    for (field, observed, names) in [
        (Field::Roles, observe.roles, &record.roles),
        (Field::Groups, observe.groups, &record.groups),
    ] {
        if observed {
            e.set(field, Rule::CaseInsensitive);
            match field {
                Field::Roles => e.record.roles = names.clone(),
                _ => e.record.groups = names.clone(),
            }
        } else {
            e.set(field, Rule::NotObservable);
        }
    }
    if !observe.passwords {
        e.set(Field::Password, Rule::NotObservable);
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use authmigrate_core::record::{MfaFactor, PasswordHash};
    use authmigrate_core::verify::compare;

    fn source() -> UserRecord {
        serde_json::from_str(
            r#"{"source_id":"x1","email":"Ada@Example.com","email_verified":true,
                "username":"ada","middle_name":"M","given_name":"Ada",
                "roles":["admin"],"user_metadata":{"plan":"pro"},
                "unmapped":{"logins_count":3}}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_target_view_lowercases_the_email_and_leaves_out_what_auth0_cannot_hold() {
        let e = expected(
            &source(),
            &Auth0MapOptions::default(),
            Observable::default(),
        )
        .unwrap();
        assert_eq!(e.record.email.as_deref(), Some("ada@example.com"));
        assert_eq!(e.record.middle_name, None);
        assert!(e.record.unmapped.is_empty() && e.record.source_id.is_none());
        assert_eq!(e.rule(Field::Roles), &Rule::NotObservable);
        // What an Auth0 export of the imported user reads as: generated profile fields.
        let got: UserRecord = serde_json::from_str(
            r#"{"source_id":"auth0|abc","email":"ada@example.com","email_verified":true,
                "username":"ada","given_name":"Ada","name":"ada@example.com",
                "nickname":"ada","picture":"https://s.gravatar.com/x.png",
                "user_metadata":{"plan":"pro"}}"#,
        )
        .unwrap();
        assert!(compare(&e, &got).is_empty(), "{:?}", compare(&e, &got));
        let mut changed = got.clone();
        changed.nickname = Some("someone".into());
        let d = compare(&e, &changed);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, Field::Nickname);
    }

    #[test]
    fn passwords_and_mfa_are_compared_only_where_observable() {
        let mut s = source();
        s.password = Some(PasswordHash::bcrypt(
            "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K",
        ));
        s.mfa = vec![MfaFactor::Phone {
            value: "+12125550001".into(),
        }];
        let e = expected(&s, &Auth0MapOptions::default(), Observable::default()).unwrap();
        assert_eq!(e.rule(Field::Password), &Rule::NotObservable);
        assert_eq!(e.rule(Field::Mfa), &Rule::NotObservable);
        let passwords = Observable {
            passwords: true,
            ..Observable::default()
        };
        let e = expected(&s, &Auth0MapOptions::default(), passwords).unwrap();
        assert_eq!(e.rule(Field::Password), &Rule::Exact);
        assert!(e.record.password.is_some());
    }

    #[test]
    fn roles_and_organizations_read_from_the_tenant_compare_by_name_ignoring_case() {
        let mut s = source();
        s.roles = vec!["Admin".into(), "viewer".into()];
        s.groups = vec!["acme".into()];
        let observe = Observable {
            roles: true,
            groups: true,
            ..Observable::default()
        };
        let e = expected(&s, &Auth0MapOptions::default(), observe).unwrap();
        assert_eq!(e.rule(Field::Roles), &Rule::CaseInsensitive);
        let mut got: UserRecord = serde_json::from_str(
            r#"{"source_id":"auth0|abc","email":"ada@example.com","email_verified":true,
                "username":"ada","given_name":"Ada","user_metadata":{"plan":"pro"}}"#,
        )
        .unwrap();
        got.roles = vec!["VIEWER".into(), "admin".into()];
        got.groups = vec!["acme".into()];
        assert!(compare(&e, &got).is_empty(), "{:?}", compare(&e, &got));
        got.roles.pop();
        got.groups.clear();
        let d = compare(&e, &got);
        let fields: Vec<Field> = d.iter().map(|d| d.field).collect();
        assert_eq!(fields, [Field::Roles, Field::Groups]);
        // Not read: not compared, whatever the target holds.
        let e = expected(&s, &Auth0MapOptions::default(), Observable::default()).unwrap();
        assert!(compare(&e, &got).is_empty());
    }

    #[test]
    fn a_record_the_mapping_refuses_is_an_error_with_its_code() {
        let mut s = source();
        s.email = None;
        let err = expected(&s, &Auth0MapOptions::default(), Observable::default()).unwrap_err();
        assert_eq!(err.code, "MISSING_EMAIL");
    }
}
