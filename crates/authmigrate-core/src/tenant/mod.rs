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
//! - [`keys`]: the naming rule for Authgear keys.
//! - [`mfa`]: the Auth0 MFA export joined to users by id (TOTP secrets).

pub mod engine;
pub mod keys;
pub mod mfa;

use async_trait::async_trait;
use serde::Serialize;

use crate::backend::BackendError;

pub use engine::{Memberships, Plan, TenantOptions, TenantSummary, run};

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
    /// The source's id (`rol_…`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its permissions.
    pub permissions: Vec<Permission>,
}

/// A group (Auth0: an organization) as the source holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The source's id (`org_…`).
    pub id: String,
    /// Its name (Auth0: the organization's `name`).
    pub name: String,
    /// A human name or description (Auth0: `display_name`).
    pub description: Option<String>,
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
}

#[cfg(test)]
mod tests;
