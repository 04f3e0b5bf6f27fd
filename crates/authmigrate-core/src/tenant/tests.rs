//! The engine against an in-memory source and target.

use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::backend::BackendError;

#[derive(Default)]
struct FakeSource {
    roles: Vec<(Role, Vec<String>)>,
    groups: Vec<(Group, Vec<GroupMember>)>,
}

#[async_trait(?Send)]
impl TenantSource for FakeSource {
    async fn roles(&self) -> Result<Vec<Role>, BackendError> {
        Ok(self.roles.iter().map(|(r, _)| r.clone()).collect())
    }
    async fn role_members(&self, role: &Role, sink: Sink<'_, String>) -> Result<(), BackendError> {
        for (r, users) in &self.roles {
            if r.id == role.id {
                for u in users {
                    sink(u.clone())?;
                }
            }
        }
        Ok(())
    }
    async fn groups(&self) -> Result<Vec<Group>, BackendError> {
        Ok(self.groups.iter().map(|(g, _)| g.clone()).collect())
    }
    async fn group_members(
        &self,
        group: &Group,
        sink: Sink<'_, GroupMember>,
    ) -> Result<(), BackendError> {
        for (g, members) in &self.groups {
            if g.id == group.id {
                for m in members {
                    sink(m.clone())?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct FakeTarget {
    roles: Mutex<Vec<String>>,
    groups: Mutex<Vec<String>>,
    /// Every create call's keys, in order.
    calls: Mutex<Vec<Vec<String>>>,
    /// Fail the nth create call (1-based) once, as if the process died there.
    fail_at: Mutex<Option<usize>>,
}

impl FakeTarget {
    fn create(&self, list: &Mutex<Vec<String>>, new: &[NewEntry]) -> Result<(), BackendError> {
        let mut calls = self.calls.lock().unwrap();
        calls.push(new.iter().map(|e| e.key.clone()).collect());
        if *self.fail_at.lock().unwrap() == Some(calls.len()) {
            *self.fail_at.lock().unwrap() = None;
            return Err(BackendError::fatal("killed", None));
        }
        assert!(new.len() <= 5);
        let mut l = list.lock().unwrap();
        for e in new {
            assert!(!l.contains(&e.key), "{} created twice", e.key);
            l.push(e.key.clone());
        }
        Ok(())
    }
}

#[async_trait]
impl TenantTarget for FakeTarget {
    async fn role_keys(&self) -> Result<Vec<String>, BackendError> {
        Ok(self.roles.lock().unwrap().clone())
    }
    async fn group_keys(&self) -> Result<Vec<String>, BackendError> {
        Ok(self.groups.lock().unwrap().clone())
    }
    async fn create_roles(&self, roles: &[NewEntry]) -> Result<(), BackendError> {
        self.create(&self.roles, roles)
    }
    async fn create_groups(&self, groups: &[NewEntry]) -> Result<(), BackendError> {
        self.create(&self.groups, groups)
    }
}

fn source() -> FakeSource {
    let mut s = FakeSource::default();
    for i in 0..12 {
        s.roles.push((
            Role {
                id: format!("rol_{i}"),
                name: format!("Role {i}"),
                description: Some(format!("Role number {i}")),
                permissions: vec![Permission {
                    resource_server: "https://api.example.com/".into(),
                    name: format!("read:r{i}"),
                }],
            },
            (0..=i).map(|u| format!("auth0|u{u}")).collect(),
        ));
    }
    s.groups.push((
        Group {
            id: "org_1".into(),
            name: "acme".into(),
            description: Some("Acme Inc".into()),
            roles: Vec::new(),
        },
        vec![
            GroupMember {
                user_id: "auth0|u1".into(),
                roles: vec!["rol_11".into()],
            },
            GroupMember {
                user_id: "auth0|u50".into(),
                roles: vec!["rol_missing".into()],
            },
        ],
    ));
    s
}

fn opts(dir: &std::path::Path, resume: bool) -> TenantOptions {
    TenantOptions {
        roles: true,
        groups: true,
        role_map: vec![("Role 0".into(), "zero".into())],
        dry_run: false,
        store: dir.join("tenant.sqlite"),
        resume,
        target_holds_permissions: false,
        after_batch: None,
    }
}

#[tokio::test]
async fn creates_missing_reuses_existing_and_answers_memberships() {
    let dir = tempfile::tempdir().unwrap();
    let target = FakeTarget::default();
    target.roles.lock().unwrap().push("role_3".into());
    let (plan, members) = run(&source(), &target, &opts(dir.path(), false))
        .await
        .unwrap();
    assert_eq!(plan.summary.roles.source, 12);
    assert_eq!(plan.summary.roles.reused, 1);
    assert_eq!(plan.summary.roles.created, 11);
    assert_eq!(plan.summary.groups.created, 1);
    assert_eq!(plan.summary.permissions_not_carried, 12);
    let r3 = plan.roles.iter().find(|r| r.key == "role_3").unwrap();
    assert_eq!(r3.action, "reuse");
    assert_eq!(r3.permissions_not_carried[0].name, "read:r3");
    assert!(
        plan.roles
            .iter()
            .any(|r| r.key == "zero" && r.action == "created")
    );
    let roles = target.roles.lock().unwrap().clone();
    assert_eq!(roles.len(), 12);
    assert_eq!(
        target.calls.lock().unwrap().len(),
        3 + 1,
        "11 roles in 5s, 1 group"
    );
    // u1 holds Role 1..11, and Role 11 again through acme; u0 holds Role 0 as `zero`.
    let (r, g) = members.of("auth0|u1").unwrap();
    assert_eq!(r.len(), 11);
    assert_eq!(g, ["acme"]);
    let (r, g) = members.of("auth0|u0").unwrap();
    assert_eq!(r.len(), 12);
    assert!(r.contains(&"zero".to_owned()) && !r.contains(&"role_0".to_owned()));
    assert!(g.is_empty());
    let (r, g) = members.of("auth0|u50").unwrap();
    assert!(r.is_empty());
    assert_eq!(g, ["acme"]);
    assert_eq!(plan.summary.group_roles_as_direct, 1);
    assert_eq!(plan.summary.group_roles_not_carried, 1);
    assert_eq!(plan.group_roles[0].group, "acme");
    assert_eq!(members.of("nobody").unwrap(), (vec![], vec![]));
}

#[tokio::test]
async fn a_kill_during_creation_then_a_rerun_creates_each_role_once() {
    let dir = tempfile::tempdir().unwrap();
    let target = FakeTarget::default();
    // The second create request "dies" after the target applied it? No: before.
    *target.fail_at.lock().unwrap() = Some(2);
    let err = run(&source(), &target, &opts(dir.path(), false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("killed"), "{err}");
    assert_eq!(target.roles.lock().unwrap().len(), 5);
    // A request that reached the target but whose answer was lost: apply it by hand.
    target.roles.lock().unwrap().push("role_5".into());
    let (plan, _) = run(&source(), &target, &opts(dir.path(), true))
        .await
        .unwrap();
    let mut roles = target.roles.lock().unwrap().clone();
    roles.sort();
    let n = roles.len();
    roles.dedup();
    assert_eq!(roles.len(), n, "no role twice");
    assert_eq!(n, 12);
    assert_eq!(
        plan.summary.roles.created, 12,
        "the sent one counts as created"
    );
    assert_eq!(plan.summary.roles.reused, 0);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_skips_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let target = FakeTarget::default();
    let mut o = opts(dir.path(), false);
    o.dry_run = true;
    o.groups = false;
    let (plan, members) = run(&source(), &target, &o).await.unwrap();
    assert!(target.calls.lock().unwrap().is_empty());
    assert_eq!(plan.summary.roles.created, 12, "would be created");
    assert!(plan.roles.iter().all(|r| r.action == "create"));
    assert_eq!(plan.summary.groups, Default::default());
    assert!(members.of("auth0|u50").unwrap().1.is_empty());
}

#[tokio::test]
async fn the_target_read_back_answers_what_each_user_holds_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = source();
    let store = crate::workstore::WorkStore::open(&dir.path().join("held.sqlite")).unwrap();
    let held = read_held(&src, store, true, true).await.unwrap();
    let c = held.counts();
    assert_eq!((c.roles, c.role_assignments), (12, (1..=12).sum::<u64>()));
    assert_eq!(c.groups, src.groups.len() as u64);
    // u0 holds every role; u11 only Role 11.
    let (roles, _) = held.of("auth0|u0").unwrap();
    assert_eq!(roles.len(), 12);
    let (roles, _) = held.of("auth0|u11").unwrap();
    assert_eq!(roles, ["Role 11"]);
    assert_eq!(held.of("auth0|nobody").unwrap(), (Vec::new(), Vec::new()));
    // Groups by name, for each member.
    let (group, members) = &src.groups[0];
    let (_, groups) = held.of(&members[0].user_id).unwrap();
    assert!(groups.contains(&group.name), "{groups:?}");
    // Skipped parts are not read.
    let store = crate::workstore::WorkStore::open(&dir.path().join("held2.sqlite")).unwrap();
    let held = read_held(&src, store, false, true).await.unwrap();
    assert_eq!(held.counts().roles, 0);
    assert!(held.of("auth0|u0").unwrap().0.is_empty());
}
