//! Records-borne memberships (an Authgear-like source) assigned at an Auth0-like
//! target after the import.

use std::collections::BTreeSet;
use std::sync::Mutex;

use async_trait::async_trait;

use super::super::*;
use super::*;

/// Roles `admin` ("Admin"), `viewer` (no name), `billing` ("Admin" too); group
/// `team:emea` ("EMEA") gives `viewer`.
struct RecordsSource;

#[async_trait(?Send)]
impl TenantSource for RecordsSource {
    fn members_in_records(&self) -> bool {
        true
    }
    async fn roles(&self) -> Result<Vec<Role>, BackendError> {
        let role = |id: &str, name: &str| Role {
            id: id.into(),
            name: name.into(),
            description: None,
            permissions: Vec::new(),
        };
        Ok(vec![
            role("admin", "Admin"),
            role("viewer", "viewer"),
            role("billing", "Admin"),
        ])
    }
    async fn role_members(&self, _: &Role, _: Sink<'_, String>) -> Result<(), BackendError> {
        panic!("memberships come from the records")
    }
    async fn groups(&self) -> Result<Vec<Group>, BackendError> {
        Ok(vec![Group {
            id: "team:emea".into(),
            name: "team:emea".into(),
            description: Some("EMEA".into()),
            roles: vec!["viewer".into()],
        }])
    }
    async fn group_members(&self, _: &Group, _: Sink<'_, GroupMember>) -> Result<(), BackendError> {
        panic!("memberships come from the records")
    }
}

#[derive(Default)]
struct Auth0Like {
    roles: Mutex<Vec<NewEntry>>,
    orgs: Mutex<Vec<NewEntry>>,
    /// (kind, key) → the users holding it.
    held: Mutex<Vec<(Kind, String, String)>>,
    /// Users the export lists (id, email, username) and those only a look-up finds.
    exported: Vec<(String, Option<String>, Option<String>)>,
    lagging: Vec<(String, String)>,
    exports: Mutex<usize>,
    lookups: Mutex<usize>,
    requests: Mutex<usize>,
    /// Fail the nth assignment request (1-based) once, before applying it.
    kill_at: Mutex<Option<usize>>,
    /// Refuse assignments of this key.
    refuse: Option<String>,
}

#[async_trait]
impl TenantTarget for Auth0Like {
    async fn role_keys(&self) -> Result<Vec<String>, BackendError> {
        Ok(self
            .roles
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.key.clone())
            .collect())
    }
    async fn group_keys(&self) -> Result<Vec<String>, BackendError> {
        Ok(self
            .orgs
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.key.clone())
            .collect())
    }
    async fn create_roles(&self, roles: &[NewEntry]) -> Result<(), BackendError> {
        self.roles.lock().unwrap().extend_from_slice(roles);
        Ok(())
    }
    async fn create_groups(&self, groups: &[NewEntry]) -> Result<(), BackendError> {
        self.orgs.lock().unwrap().extend_from_slice(groups);
        Ok(())
    }
    fn batch(&self) -> usize {
        1
    }
    fn naming(&self) -> Naming {
        Naming::Auth0
    }
}

#[async_trait]
impl MemberTarget for Auth0Like {
    async fn export_users(
        &self,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<(), BackendError> {
        *self.exports.lock().unwrap() += 1;
        for (id, email, username) in &self.exported {
            let line = serde_json::json!({ "user_id": id, "email": email, "username": username });
            writeln!(out, "{line}").unwrap();
        }
        Ok(())
    }
    async fn find_user(&self, key: &Key) -> Result<Option<String>, BackendError> {
        *self.lookups.lock().unwrap() += 1;
        let Key::Username(u) = key else {
            return Ok(None);
        };
        Ok(self
            .lagging
            .iter()
            .find(|(_, name)| name == u)
            .map(|(id, _)| id.clone()))
    }
    async fn assign(
        &self,
        kind: Kind,
        key: &str,
        user_ids: &[String],
    ) -> Result<Assigned, BackendError> {
        let n = {
            let mut r = self.requests.lock().unwrap();
            *r += 1;
            *r
        };
        if *self.kill_at.lock().unwrap() == Some(n) {
            *self.kill_at.lock().unwrap() = None;
            return Err(BackendError::Transient("killed".into()));
        }
        assert!(user_ids.len() <= MemberTarget::batch(self, kind));
        if self.refuse.as_deref() == Some(key) {
            return Ok(Assigned::Refused("No more roles can be assigned.".into()));
        }
        let mut held = self.held.lock().unwrap();
        for u in user_ids {
            let row = (kind, key.to_owned(), u.clone());
            assert!(!held.contains(&row), "{row:?} assigned twice");
            held.push(row);
        }
        Ok(Assigned::Done)
    }
    fn batch(&self, kind: Kind) -> usize {
        match kind {
            Kind::Role => 2,
            Kind::Group => 10,
        }
    }
    async fn held(&self, user_id: &str, roles: bool, groups: bool) -> Result<Held, BackendError> {
        *self.requests.lock().unwrap() += 1;
        let mut h = Held::default();
        for (kind, key, u) in self.held.lock().unwrap().iter() {
            match kind {
                Kind::Role if roles && u == user_id => h.roles.push(key.clone()),
                Kind::Group if groups && u == user_id => h.groups.push(key.clone()),
                _ => {}
            }
        }
        Ok(h)
    }
    async fn unassign(
        &self,
        user_id: &str,
        kind: Kind,
        keys: &[String],
    ) -> Result<Assigned, BackendError> {
        *self.requests.lock().unwrap() += 1;
        self.held
            .lock()
            .unwrap()
            .retain(|(k, key, u)| !(*k == kind && u == user_id && keys.contains(key)));
        Ok(Assigned::Done)
    }
}

fn target() -> Auth0Like {
    Auth0Like {
        exported: vec![
            ("auth0|1".into(), Some("ann@x.io".into()), None),
            ("auth0|2".into(), Some("bob@x.io".into()), None),
            ("auth0|9".into(), Some("someone@else.io".into()), None),
        ],
        lagging: vec![("auth0|3".into(), "carol".into())],
        ..Auth0Like::default()
    }
}

fn opts(dir: &std::path::Path, resume: bool) -> TenantOptions {
    TenantOptions {
        roles: true,
        groups: true,
        role_map: Vec::new(),
        dry_run: false,
        store: dir.join("tenant.sqlite"),
        resume,
        target_holds_permissions: false,
        after_batch: None,
    }
}

fn user(
    email: Option<&str>,
    username: Option<&str>,
    roles: &[&str],
    groups: &[&str],
) -> UserRecord {
    UserRecord {
        email: email.map(Into::into),
        username: username.map(Into::into),
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
        groups: groups.iter().map(|s| (*s).to_owned()).collect(),
        ..UserRecord::default()
    }
}

/// Runs the tenant step and records the users; returns the recorder's counts.
async fn record(dir: &std::path::Path, target: &Auth0Like, resume: bool) -> RecordCounts {
    let (plan, members) = run(&RecordsSource, target, &opts(dir, resume))
        .await
        .unwrap();
    assert_eq!(plan.summary.roles.source, 3);
    let mut rec = Recorder::new(members.into_store(), true, true).unwrap();
    let mut users = vec![
        user(Some("Ann@X.io"), None, &["admin"], &["team:emea"]),
        user(Some("bob@x.io"), None, &["viewer", "billing"], &[]),
        user(None, Some("Carol"), &[], &["team:emea"]),
        user(Some("dan@x.io"), None, &["admin"], &[]),
        user(None, None, &["admin"], &[]),
        user(Some("eve@x.io"), None, &["ghost"], &[]),
        user(Some("fay@x.io"), None, &[], &[]),
    ];
    for u in &mut users {
        rec.record(u);
        assert!(
            u.roles.is_empty() && u.groups.is_empty(),
            "taken out of the record"
        );
    }
    let (_, counts) = rec.finish().unwrap();
    counts
}

fn assign_opts(dir: &std::path::Path) -> AssignOptions {
    AssignOptions {
        dry_run: false,
        work_dir: dir.to_owned(),
        lookups_max: 10,
        after_batch: None,
    }
}

fn held(t: &Auth0Like) -> BTreeSet<(Kind, String, String)> {
    t.held.lock().unwrap().iter().cloned().collect()
}

#[tokio::test]
async fn names_follow_auth0_rules_and_group_roles_become_direct_roles() {
    let dir = tempfile::tempdir().unwrap();
    let t = target();
    let counts = record(dir.path(), &t, false).await;
    let roles: Vec<String> = t
        .roles
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.key.clone())
        .collect();
    assert_eq!(roles, ["Admin", "Admin (billing)", "viewer"]);
    let orgs = t.orgs.lock().unwrap().clone();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].key, "team-emea");
    assert_eq!(orgs[0].description.as_deref(), Some("EMEA"));
    assert_eq!(counts.users, 4, "ann, bob, carol, dan");
    assert_eq!(
        counts.roles_through_groups, 2,
        "viewer via team:emea for ann and carol"
    );
    assert_eq!(counts.no_identifier, 1);
    assert_eq!(counts.unknown_keys, 1, "ghost");

    let store = WorkStore::open(&dir.path().join("tenant.sqlite")).unwrap();
    let report = assign(&t, &store, &assign_opts(dir.path())).await.unwrap();
    let want: BTreeSet<(Kind, String, String)> = [
        (Kind::Role, "Admin", "auth0|1"),
        (Kind::Role, "viewer", "auth0|1"),
        (Kind::Group, "team-emea", "auth0|1"),
        (Kind::Role, "viewer", "auth0|2"),
        (Kind::Role, "Admin (billing)", "auth0|2"),
        (Kind::Role, "viewer", "auth0|3"),
        (Kind::Group, "team-emea", "auth0|3"),
    ]
    .into_iter()
    .map(|(k, key, u)| (k, key.to_owned(), u.to_owned()))
    .collect();
    assert_eq!(held(&t), want);
    assert_eq!(*t.exports.lock().unwrap(), 1, "one export finds every user");
    assert_eq!(
        report.looked_up, 2,
        "carol (lagging) and dan (not imported)"
    );
    assert_eq!(report.users, 4);
    assert_eq!(report.users_found, 3);
    assert_eq!(report.roles.assigned, 5);
    assert_eq!(report.roles.user_not_found, 1, "dan's Admin");
    assert_eq!(report.not_found, ["dan@x.io"]);
    assert_eq!(report.groups.assigned, 2);
    assert_eq!(report.groups.requests, 1, "both members in one request");
    // Admin: ann; Admin (billing): bob; viewer: ann, bob, carol → 2 requests.
    assert_eq!(report.roles.requests, 4);

    // A second pass sends nothing.
    let again = assign(&t, &store, &assign_opts(dir.path())).await.unwrap();
    assert_eq!(again.roles.assigned + again.groups.assigned, 0);
    assert_eq!(again.roles.earlier, 5);
    assert_eq!(*t.exports.lock().unwrap(), 1, "the export is not repeated");
}

#[tokio::test]
async fn a_kill_during_the_assignments_then_a_rerun_assigns_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let t = target();
    record(dir.path(), &t, false).await;
    *t.kill_at.lock().unwrap() = Some(3);
    let store = WorkStore::open(&dir.path().join("tenant.sqlite")).unwrap();
    let err = assign(&t, &store, &assign_opts(dir.path()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("killed"), "{err}");
    drop(store);
    // The rerun: the tenant step resumes from the store, the users are recorded again.
    record(dir.path(), &t, true).await;
    let store = WorkStore::open(&dir.path().join("tenant.sqlite")).unwrap();
    let report = assign(&t, &store, &assign_opts(dir.path())).await.unwrap();
    assert_eq!(held(&t).len(), 7, "every assignment once");
    assert_eq!(report.roles.earlier + report.roles.assigned, 5);
    assert_eq!(t.roles.lock().unwrap().len(), 3, "each role created once");
}

#[tokio::test]
async fn refusals_are_reported_and_a_dry_run_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = Auth0Like {
        refuse: Some("viewer".into()),
        ..target()
    };
    record(dir.path(), &t, false).await;
    let store = WorkStore::open(&dir.path().join("tenant.sqlite")).unwrap();
    let mut o = assign_opts(dir.path());
    o.dry_run = true;
    let dry = assign(&t, &store, &o).await.unwrap();
    assert_eq!(
        dry.roles.assigned, 6,
        "would be assigned (dan's too: not looked up)"
    );
    assert_eq!(*t.requests.lock().unwrap(), 0);
    assert_eq!(*t.exports.lock().unwrap(), 0);
    let report = assign(&t, &store, &assign_opts(dir.path())).await.unwrap();
    assert_eq!(report.roles.refused, 3);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].key, "viewer");
    assert_eq!(report.refused[0].users, 3);
    assert!(report.refused[0].reason.contains("No more roles"));
}

#[tokio::test]
async fn a_delta_makes_the_changed_users_memberships_exact() {
    let dir = tempfile::tempdir().unwrap();
    let t = target();
    // What the full pass left at the target, plus a role given there by hand.
    for (kind, key, u) in [
        (Kind::Role, "Admin", "auth0|1"),
        (Kind::Role, "viewer", "auth0|1"),
        (Kind::Group, "team-emea", "auth0|1"),
        (Kind::Role, "Admin (billing)", "auth0|2"),
        (Kind::Role, "viewer", "auth0|9"),
    ] {
        t.held
            .lock()
            .unwrap()
            .push((kind, key.to_owned(), u.to_owned()));
    }
    let (_, members) = run(&RecordsSource, &t, &opts(dir.path(), false))
        .await
        .unwrap();
    let mut rec = Recorder::new(members.into_store(), true, true).unwrap();
    // ann left team:emea and lost admin but got billing; bob lost everything;
    // dan is new (not at the target).
    let mut changed = [
        (user(Some("ann@x.io"), None, &["billing"], &[]), true),
        (user(Some("bob@x.io"), None, &[], &[]), true),
        (user(Some("dan@x.io"), None, &["admin"], &[]), false),
    ];
    for (u, exact) in &mut changed {
        rec.record_with(u, *exact);
    }
    let (store, counts) = rec.finish().unwrap();
    assert_eq!(counts.users, 2, "ann and dan hold something");
    let report = assign(&t, &store, &assign_opts(dir.path())).await.unwrap();
    assert_eq!(report.roles.assigned, 1, "ann's billing");
    let sync_opts = SyncOptions {
        dry_run: false,
        roles: true,
        groups: true,
    };
    let s = sync(&t, &store, &sync_opts).await.unwrap();
    assert_eq!((s.users, s.checked, s.not_found), (2, 2, 0));
    assert_eq!((s.roles_removed, s.groups_removed), (3, 1));
    let want: BTreeSet<(Kind, String, String)> = [
        (Kind::Role, "Admin (billing)", "auth0|1"),
        (Kind::Role, "viewer", "auth0|9"),
    ]
    .into_iter()
    .map(|(k, key, u)| (k, key.to_owned(), u.to_owned()))
    .collect();
    assert_eq!(
        held(&t),
        want,
        "ann holds billing only, bob nothing, the unchanged user keeps his"
    );
    // Done users are not read again.
    let before = *t.requests.lock().unwrap();
    let again = sync(&t, &store, &sync_opts).await.unwrap();
    assert_eq!((again.users, again.roles_removed), (0, 0));
    assert_eq!(*t.requests.lock().unwrap(), before);
}

#[test]
fn the_translation_gives_own_roles_then_group_roles_and_counts_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let t = target();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (_, members) = rt
        .block_on(run(&RecordsSource, &t, &opts(dir.path(), false)))
        .unwrap();
    let store = members.into_store();
    let tr = Translation::new(&store, true, true).unwrap();
    let got = tr.of(&["billing".into(), "ghost".into()], &["team:emea".into()]);
    assert_eq!(got.roles, ["Admin (billing)", "viewer"]);
    assert_eq!(got.groups, ["team-emea"]);
    assert_eq!((got.through_groups, got.unknown), (1, 1));
    let roles_only = Translation::new(&store, true, false).unwrap();
    let got = roles_only.of(&[], &["team:emea".into()]);
    assert_eq!(
        got.roles,
        ["viewer"],
        "group roles are roles even when groups are skipped"
    );
    assert!(got.groups.is_empty());
}

#[tokio::test]
async fn sync_pages_through_more_changed_users_than_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let n = 2500;
    let t = Auth0Like {
        exported: (0..n)
            .map(|i| (format!("auth0|{i}"), Some(format!("u{i}@x.io")), None))
            .collect(),
        ..Auth0Like::default()
    };
    for i in 0..n {
        t.held
            .lock()
            .unwrap()
            .push((Kind::Role, "viewer".into(), format!("auth0|{i}")));
    }
    let (_, members) = run(&RecordsSource, &t, &opts(dir.path(), false))
        .await
        .unwrap();
    let mut rec = Recorder::new(members.into_store(), true, true).unwrap();
    for i in 0..n {
        rec.record_with(&mut user(Some(&format!("u{i}@x.io")), None, &[], &[]), true);
    }
    let (store, _) = rec.finish().unwrap();
    assign(&t, &store, &assign_opts(dir.path())).await.unwrap();
    let s = sync(
        &t,
        &store,
        &SyncOptions {
            dry_run: false,
            roles: true,
            groups: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (s.users, s.checked, s.roles_removed),
        (n as u64, n as u64, n as u64)
    );
    assert!(held(&t).is_empty(), "every changed user lost the role");
}
