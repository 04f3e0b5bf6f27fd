use super::*;
use crate::record::{MfaFactor, PasswordHash};
use crate::secret::Secret;

fn user(id: &str, email: &str, name: &str) -> UserRecord {
    UserRecord {
        source_id: Some(id.into()),
        email: Some(email.into()),
        name: Some(name.into()),
        ..UserRecord::default()
    }
}

/// One pass over `users`: classify each, stage and commit the new and changed ones.
fn pass(store: &mut DeltaStore, users: &[UserRecord]) -> Vec<Change> {
    store.begin_pass().unwrap();
    let mut out = Vec::new();
    let mut idx = 0;
    for u in users {
        let key = key_of(u).unwrap();
        let fields = FieldDigests::of(u);
        let change = store.classify(&key, &fields).unwrap();
        if change != Change::Unchanged {
            store.stage(idx, &key, u.email.as_deref(), &fields).unwrap();
            store.commit(idx, Some(format!("t-{key}"))).unwrap();
            idx += 1;
        }
        out.push(change);
    }
    out
}

#[test]
fn a_second_pass_finds_exactly_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("delta.sqlite");
    let mut store = DeltaStore::open(&path).unwrap();
    let first = [
        user("auth0|1", "a@t.io", "Ann"),
        user("auth0|2", "b@t.io", "Bob"),
        user("auth0|3", "c@t.io", "Cy"),
    ];
    assert_eq!(pass(&mut store, &first), vec![Change::New; 3]);
    assert_eq!(store.finish_pass().unwrap(), 1);
    drop(store);

    // Reopened from disk: Bob renamed, Cy gone, Dee new, Ann's login count changed
    // (unmapped: not a change).
    let mut store = DeltaStore::open(&path).unwrap();
    let mut ann = first[0].clone();
    ann.unmapped.insert("logins_count".into(), 7.into());
    let second = [
        ann,
        user("auth0|2", "b@t.io", "Robert"),
        user("auth0|4", "d@t.io", "Dee"),
    ];
    assert_eq!(
        pass(&mut store, &second),
        [
            Change::Unchanged,
            Change::Changed(vec!["name".into()]),
            Change::New
        ]
    );
    let mut removed = Vec::new();
    assert_eq!(store.removed(|r| removed.push(r)).unwrap(), 1);
    assert_eq!(
        removed,
        [Removed {
            key: "auth0|3".into(),
            email: Some("c@t.io".into()),
            target_id: Some("t-auth0|3".into())
        }]
    );
    store.forget("auth0|3").unwrap();
    store.finish_pass().unwrap();
    // A third pass right after finds nothing.
    assert_eq!(pass(&mut store, &second), vec![Change::Unchanged; 3]);
    assert_eq!(store.removed(|_| ()).unwrap(), 0);
    assert_eq!(store.snapshot_len().unwrap(), 3);
}

#[test]
fn a_record_staged_but_not_committed_stays_out_of_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = DeltaStore::open(&dir.path().join("d.sqlite")).unwrap();
    store.begin_pass().unwrap();
    let u = user("auth0|1", "a@t.io", "Ann");
    let fields = FieldDigests::of(&u);
    assert_eq!(store.classify("auth0|1", &fields).unwrap(), Change::New);
    store.stage(0, "auth0|1", Some("a@t.io"), &fields).unwrap();
    // The target failed it: not committed.
    store.finish_pass().unwrap();
    assert_eq!(store.snapshot_len().unwrap(), 0);
    store.begin_pass().unwrap();
    assert_eq!(store.classify("auth0|1", &fields).unwrap(), Change::New);
}

#[test]
fn secrets_change_the_digest_and_are_named_as_fields_only() {
    let mut a = user("auth0|1", "a@t.io", "Ann");
    a.password = Some(PasswordHash::bcrypt(Secret::new(
        "$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
    )));
    let mut b = a.clone();
    b.password = Some(PasswordHash::bcrypt(Secret::new(
        "$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ56789",
    )));
    b.mfa = vec![MfaFactor::Totp {
        secret: Secret::new("JBSWY3DPEHPK3PXP"),
    }];
    let (da, db) = (FieldDigests::of(&a), FieldDigests::of(&b));
    assert_eq!(db.changed(&da), ["mfa", "password"]);
    // Encoded digests hold no secret.
    let bytes = db.encode();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains("JBSWY3DP") && !text.contains("$2b$"),
        "{text}"
    );
    assert_eq!(FieldDigests::decode(&bytes), db);
}

#[test]
fn users_are_keyed_by_source_id_else_lower_cased_email() {
    let mut u = user("", "Ann@T.io", "Ann");
    assert_eq!(key_of(&u).as_deref(), Some("email:ann@t.io"));
    u.source_id = Some("auth0|9".into());
    assert_eq!(key_of(&u).as_deref(), Some("auth0|9"));
    assert_eq!(key_of(&UserRecord::default()), None);
}
