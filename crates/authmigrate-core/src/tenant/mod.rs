//! The tenant beyond users: roles (with permissions), groups / organizations and
//! memberships, provider-neutral (issue 13, `docs/tenant.md`).
//!
//! - [`TenantSource`]: reads a provider's directory (paged inside the provider crate).
//! - [`TenantTarget`]: lists the target's existing role and group keys and creates
//!   the missing ones in batches.
//! - [`run`] (in [`engine`]): the one engine: crawl the source into the
//!   [`WorkStore`](crate::workstore::WorkStore) (memberships of any number of users),
//!   plan (create vs reuse, what cannot be carried and why), create at the target,
//!   and hand back a [`Memberships`] look-up the user stream annotates records from.
//! - [`MemberTarget`] and [`assign`]: a target whose users do not carry their roles
//!   and groups in their import records (Auth0): the memberships are recorded from the
//!   user stream ([`Recorder`]), the new users' ids found with one export after the
//!   import, and the assignments sent in batches, resumably.
//! - [`translate`]: what a records-borne user (Authgear) holds at the target, one
//!   definition for the recorder and `verify`; [`sync`]: a delta's changed users'
//!   memberships made exact (what the target holds beyond them is taken away);
//!   [`held`]: what every user holds at such a target, read for `verify`.
//! - [`keys`]: the naming rules (Authgear keys, Auth0 role and organization names).
//! - [`mfa`]: the Auth0 MFA export joined to users by id (TOTP secrets).

pub mod assign;
pub mod engine;
pub mod held;
pub mod keys;
pub mod mfa;
pub mod sync;
pub mod translate;

use async_trait::async_trait;
use serde::Serialize;

use crate::backend::BackendError;

pub use assign::{AssignOptions, AssignReport, Assigned, Held, MemberTarget, Recorder, assign};
pub use engine::{Memberships, Plan, TenantOptions, TenantSummary, run};
pub use held::{HeldMemberships, read_held};
pub use keys::Naming;
pub use sync::{SyncOptions, SyncReport, sync};
pub use translate::{Translated, Translation};

/// Roles or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Roles.
    Role,
    /// Groups (Auth0: organizations).
    Group,
}

impl Kind {
    /// The store's and the report's name: `role` or `group`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Role => "role",
            Self::Group => "group",
        }
    }
}

/// A permission a role carries at the source (Auth0: an API's scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    /// The API (resource server) identifier.
    pub resource_server: String,
    /// The permission (scope) name.
    pub name: String,
}

/// A role as the source holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The source's id: what its user records and memberships name it by (Auth0:
    /// `rol_…`; Authgear: the role's key).
    pub id: String,
    /// Its human name (Auth0: `name`; Authgear: `name`, else the key).
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its permissions.
    pub permissions: Vec<Permission>,
}

/// A group (Auth0: an organization) as the source holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The source's id: what memberships name it by (Auth0: `org_…`; Authgear: the key).
    pub id: String,
    /// Its machine name, which the target's key or name is made from (Auth0: the
    /// organization's `name`; Authgear: the group's key).
    pub name: String,
    /// Its human name (Auth0: `display_name`; Authgear: `name`).
    pub description: Option<String>,
    /// Source ids of the roles every member holds through the group (Authgear's
    /// group roles; Auth0 organizations have none).
    pub roles: Vec<String>,
}

/// One member of a group, with the roles held within that group only (Auth0:
/// organization member roles, by role id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member's user id at the source.
    pub user_id: String,
    /// Role ids held in this group only.
    pub roles: Vec<String>,
}

/// A role or group to create at the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// The target key.
    pub key: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
}

/// Receives items one by one while a source pages through a list.
pub type Sink<'a, T> = &'a mut dyn FnMut(T) -> Result<(), BackendError>;

/// What the engine reads from a provider. Its futures need not be `Send`: the
/// engine writes each item to its store as it arrives.
#[async_trait(?Send)]
pub trait TenantSource {
    /// Whether the source's user records name their roles and groups themselves
    /// (Authgear's export: `roles`, `groups`), so that memberships come from the user
    /// stream and [`TenantSource::role_members`] / [`TenantSource::group_members`] are
    /// not crawled. Default: no (Auth0).
    fn members_in_records(&self) -> bool {
        false
    }
    /// Every role, with its permissions.
    async fn roles(&self) -> Result<Vec<Role>, BackendError>;
    /// The ids of the users holding `role` tenant-wide, through `sink`.
    async fn role_members(&self, role: &Role, sink: Sink<'_, String>) -> Result<(), BackendError>;
    /// Every group.
    async fn groups(&self) -> Result<Vec<Group>, BackendError>;
    /// The members of `group` (with their in-group roles), through `sink`.
    async fn group_members(
        &self,
        group: &Group,
        sink: Sink<'_, GroupMember>,
    ) -> Result<(), BackendError>;
}

/// What the engine writes to a provider.
#[async_trait]
pub trait TenantTarget: Send + Sync {
    /// The keys of the roles the target already holds.
    async fn role_keys(&self) -> Result<Vec<String>, BackendError>;
    /// The keys of the groups the target already holds.
    async fn group_keys(&self) -> Result<Vec<String>, BackendError>;
    /// Creates these roles (at most [`TenantTarget::batch`] a call). A key that
    /// exists already is not an error.
    async fn create_roles(&self, roles: &[NewEntry]) -> Result<(), BackendError>;
    /// Creates these groups (at most [`TenantTarget::batch`] a call), likewise.
    async fn create_groups(&self, groups: &[NewEntry]) -> Result<(), BackendError>;
    /// How many entries one create call takes.
    fn batch(&self) -> usize {
        5
    }
    /// How the target's keys are made from the source's names.
    fn naming(&self) -> Naming {
        Naming::AuthgearKeys
    }
}

#[cfg(test)]
mod held_bench;
#[cfg(test)]
mod tests;
