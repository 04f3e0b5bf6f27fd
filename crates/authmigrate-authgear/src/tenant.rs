//! Authgear's roles and groups over the Admin GraphQL API ([`crate::graphql`]):
//!
//! - as a [`TenantTarget`]: users get their roles and groups in their import records
//!   (`roles`, `groups`), so assignment costs no request here;
//! - as a [`TenantSource`]: the directory from the `roles` and `groups` queries (a
//!   group with its roles), memberships from the users' export records (`roles`: the
//!   direct roles only, `groups`; authgear-api.md, the export), so no member list is
//!   crawled (`Role.users` is not even stably ordered, authgear-admin-graphql.md §2.4).
//!   A role is named by its key; its name (else the key) and description carry over;
//!   a group's key is its machine name and its name its human name (Auth0:
//!   `display_name`). Authgear roles hold no permissions.

use async_trait::async_trait;
use authmigrate_core::backend::BackendError;
use authmigrate_core::tenant::{
    Group, GroupMember, NewEntry, Role, Sink, TenantSource, TenantTarget,
};

use crate::auth::TokenSource;
use crate::client::AdminClient;
use crate::config::{AuthgearSettings, parse_endpoint};
use crate::graphql::{Directory, Graphql, MAX_MUTATIONS, NewKey};

/// The Authgear [`TenantTarget`].
#[derive(Debug)]
pub struct AuthgearTenant {
    client: AdminClient,
}

impl AuthgearTenant {
    /// A target for the settings' project (no request is sent).
    pub fn new(settings: &AuthgearSettings) -> Result<Self, BackendError> {
        let base = parse_endpoint(&settings.endpoint).map_err(|e| BackendError::fatal(e, None))?;
        let tokens = TokenSource::new(&settings.auth).map_err(|e| BackendError::fatal(e, None))?;
        let client = AdminClient::new(base, tokens, settings.retry.clone())
            .map_err(|e| BackendError::fatal(e, None))?;
        Ok(Self { client })
    }

    fn graphql(&self) -> Graphql<'_> {
        Graphql::new(&self.client)
    }
}

fn keys(entries: &[NewEntry]) -> Vec<NewKey> {
    entries
        .iter()
        .map(|e| NewKey {
            key: e.key.clone(),
            name: Some(e.name.clone()),
            description: e.description.clone(),
        })
        .collect()
}

#[async_trait]
impl TenantTarget for AuthgearTenant {
    async fn role_keys(&self) -> Result<Vec<String>, BackendError> {
        self.graphql().keys(Directory::Roles).await
    }

    async fn group_keys(&self) -> Result<Vec<String>, BackendError> {
        self.graphql().keys(Directory::Groups).await
    }

    async fn create_roles(&self, roles: &[NewEntry]) -> Result<(), BackendError> {
        self.graphql()
            .create_entries(Directory::Roles, &keys(roles))
            .await
    }

    async fn create_groups(&self, groups: &[NewEntry]) -> Result<(), BackendError> {
        self.graphql()
            .create_entries(Directory::Groups, &keys(groups))
            .await
    }

    fn batch(&self) -> usize {
        MAX_MUTATIONS
    }
}

#[async_trait(?Send)]
impl TenantSource for AuthgearTenant {
    fn members_in_records(&self) -> bool {
        true
    }

    async fn roles(&self) -> Result<Vec<Role>, BackendError> {
        Ok(self
            .graphql()
            .entries(Directory::Roles)
            .await?
            .into_iter()
            .map(|e| Role {
                name: e.name.unwrap_or_else(|| e.key.clone()),
                id: e.key,
                description: e.description,
                permissions: Vec::new(),
            })
            .collect())
    }

    async fn role_members(&self, _: &Role, _: Sink<'_, String>) -> Result<(), BackendError> {
        Ok(())
    }

    async fn groups(&self) -> Result<Vec<Group>, BackendError> {
        Ok(self
            .graphql()
            .entries(Directory::Groups)
            .await?
            .into_iter()
            .map(|e| Group {
                id: e.key.clone(),
                name: e.key,
                description: e.name.or(e.description),
                roles: e.roles,
            })
            .collect())
    }

    async fn group_members(&self, _: &Group, _: Sink<'_, GroupMember>) -> Result<(), BackendError> {
        Ok(())
    }
}
